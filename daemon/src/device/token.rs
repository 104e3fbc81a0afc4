//! Typed token information: identity and PIN state.

use serde::{Deserialize, Serialize};

use super::error::TriesLeft;

/// What a token says about itself. Identity is the serial number, never the slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenInfo {
    /// Token label.
    pub label: String,
    /// Serial number: the token's identity across replugs.
    pub serial: String,
    /// Manufacturer ID.
    pub manufacturer: String,
    /// Device model.
    pub model: String,
    /// PIN flags.
    pub pin: PinState,
    /// Shortest and longest PIN the token accepts.
    #[schema(value_type = [u64; 2])]
    pub pin_length: (usize, usize),
}

/// The PIN flags of CK_TOKEN_INFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PinState {
    /// CKF_LOGIN_REQUIRED.
    pub login_required: bool,
    /// CKF_USER_PIN_INITIALIZED.
    pub user_pin_initialized: bool,
    /// CKF_USER_PIN_COUNT_LOW.
    pub count_low: bool,
    /// CKF_USER_PIN_FINAL_TRY.
    pub final_try: bool,
    /// CKF_USER_PIN_LOCKED.
    pub locked: bool,
    /// CKF_USER_PIN_TO_BE_CHANGED.
    pub to_be_changed: bool,
    /// CKF_SO_PIN_LOCKED.
    pub so_locked: bool,
    /// CKF_SO_PIN_COUNT_LOW.
    pub so_count_low: bool,
    /// CKF_SO_PIN_FINAL_TRY.
    pub so_final_try: bool,
}

impl PinState {
    /// No flag known (a device that could not be asked).
    pub fn unknown() -> Self {
        Self {
            login_required: true,
            user_pin_initialized: true,
            count_low: false,
            final_try: false,
            locked: false,
            to_be_changed: false,
            so_locked: false,
            so_count_low: false,
            so_final_try: false,
        }
    }

    /// What the flags say about tries left.
    pub fn tries_left(&self) -> TriesLeft {
        if self.final_try {
            TriesLeft::One
        } else if self.count_low {
            TriesLeft::Few
        } else {
            TriesLeft::NotReported
        }
    }

    /// What the flags say about the security officer's PIN tries left.
    pub fn so_tries_left(&self) -> TriesLeft {
        if self.so_final_try {
            TriesLeft::One
        } else if self.so_count_low {
            TriesLeft::Few
        } else {
            TriesLeft::NotReported
        }
    }

    /// A short human summary: `ok`, `count low`, `final try`, `locked`, …
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if !self.user_pin_initialized {
            parts.push("not initialised");
        }
        if self.locked {
            parts.push("locked");
        } else if self.final_try {
            parts.push("final try");
        } else if self.count_low {
            parts.push("count low");
        }
        if self.to_be_changed {
            parts.push("to be changed");
        }
        if self.so_locked {
            parts.push("SO PIN locked");
        }
        if parts.is_empty() {
            "ok".into()
        } else {
            parts.join(", ")
        }
    }
}

impl From<&cryptoki::slot::TokenInfo> for TokenInfo {
    fn from(info: &cryptoki::slot::TokenInfo) -> Self {
        Self {
            label: info.label().trim().to_owned(),
            serial: info.serial_number().trim().to_owned(),
            manufacturer: info.manufacturer_id().trim().to_owned(),
            model: info.model().trim().to_owned(),
            pin: PinState {
                login_required: info.login_required(),
                user_pin_initialized: info.user_pin_initialized(),
                count_low: info.user_pin_count_low(),
                final_try: info.user_pin_final_try(),
                locked: info.user_pin_locked(),
                to_be_changed: info.user_pin_to_be_changed(),
                so_locked: info.so_pin_locked(),
                so_count_low: info.so_pin_count_low(),
                so_final_try: info.so_pin_final_try(),
            },
            pin_length: (info.min_pin_length(), info.max_pin_length()),
        }
    }
}
