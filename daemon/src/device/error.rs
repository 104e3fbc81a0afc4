//! Typed device errors, each with a message a custodian understands.

use cryptoki::error::{Error as CkError, RvError};

/// What went wrong talking to a token, in words a custodian can act on.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The PIN was wrong. `tries` says what the token reports about the tries left.
    #[error("the PIN is incorrect{}", .tries.suffix())]
    PinIncorrect {
        /// What the token says about the remaining tries after this failure.
        tries: TriesLeft,
    },
    /// The PIN is locked after too many failures.
    #[error("the PIN is locked after too many wrong tries; the security officer must unblock it (sealctl pin unblock)")]
    PinLocked,
    /// The security officer's PIN was wrong (on an unblock). `tries` is what the token reports.
    #[error("the SO (security officer) PIN is incorrect{}", .tries.suffix())]
    SoPinIncorrect {
        /// What the token says about the SO PIN's remaining tries after this failure.
        tries: TriesLeft,
    },
    /// The security officer's PIN is locked: the token cannot be unblocked any more.
    #[error("the SO (security officer) PIN is locked after too many wrong tries; the user PIN can no longer be unblocked on this token (ask the device's vendor or re-issue the seal on a new token)")]
    SoPinLocked,
    /// The token reports one SO PIN try left and the caller did not confirm spending it.
    #[error("the token has one SO (security officer) PIN try left; a wrong SO PIN now locks it for good, so seald will not try it without an explicit confirmation")]
    SoFinalTryNotConfirmed,
    /// The token reports one try left and the caller did not confirm the attempt.
    #[error("the token has one PIN try left before it locks; seald will not spend it without an explicit confirmation")]
    FinalTryNotConfirmed,
    /// The PIN's length is outside the token's limits.
    #[error("the PIN's length is outside what the token accepts ({min}–{max} characters)")]
    PinLenRange {
        /// Shortest PIN the token accepts.
        min: usize,
        /// Longest PIN the token accepts.
        max: usize,
    },
    /// The token refuses the PIN's characters or strength.
    #[error("the token refuses this PIN (invalid characters or too weak)")]
    PinInvalid,
    /// The PIN has expired on the token and must be changed.
    #[error("the PIN has expired on the token; change it before use")]
    PinExpired,
    /// The user PIN was never set.
    #[error("the token's user PIN has not been set; the security officer must initialise it")]
    UserPinNotInitialized,
    /// An operation needs a logged-in user.
    #[error("the token is not logged in; the custodian must log in with the PIN first")]
    UserNotLoggedIn,
    /// A login was attempted while already logged in.
    #[error("the token is already logged in; log out first to log in again")]
    AlreadyLoggedIn,
    /// The token was pulled out or powered off during the operation.
    #[error("the device was removed; insert it and log in again")]
    DeviceRemoved,
    /// No token with the requested serial number is present.
    #[error("no token with serial number {serial} is present; insert the device")]
    TokenNotPresent {
        /// The serial number that was looked for.
        serial: String,
    },
    /// The module does not offer the mechanism a profile names.
    #[error("the device does not support mechanism {mechanism:#x} ({what}); check the module's mechanism profile")]
    MechanismInvalid {
        /// The mechanism code.
        mechanism: u64,
        /// What the mechanism was for.
        what: &'static str,
    },
    /// The module's profile has no SM2 support.
    #[error("module `{module}` has no SM2 mechanism profile; set `profile` for it in the config")]
    NoSm2Profile {
        /// The module's configured name.
        module: String,
    },
    /// The session went away (closed by the module or after a removal).
    #[error(
        "the device session is no longer valid; the token will be opened again on the next request"
    )]
    SessionHandleInvalid,
    /// A key or certificate was not found.
    #[error("no {what} matching {selector} on token {serial}")]
    ObjectNotFound {
        /// What was looked for.
        what: &'static str,
        /// How it was looked for.
        selector: String,
        /// The token.
        serial: String,
    },
    /// A cached key handle no longer names an object (the key was deleted or replaced).
    #[error("the key on token {serial} changed since it was opened; try again")]
    KeyHandleInvalid {
        /// The token.
        serial: String,
    },
    /// A key attribute is missing or malformed.
    #[error("the key on the token is unusable: {0}")]
    BadKey(String),
    /// The signature the device returned could not be read.
    #[error("the device returned a signature seald cannot read: {0}")]
    BadSignature(String),
    /// The module could not be loaded.
    #[error("cannot load device library {path}: {reason}")]
    ModuleLoad {
        /// The library path.
        path: String,
        /// Why.
        reason: String,
    },
    /// The module's library runs in a helper process, and that process crashed or stopped
    /// answering: its devices are not present until the helper is back.
    #[error("the device library of module `{module}` {reason}; its devices are not present until seald has restarted it{}, then the custodian must log in again", .retry.map(retry_phrase).unwrap_or_default())]
    LibraryDown {
        /// The module's configured name.
        module: String,
        /// What happened ("crashed (signal 6, SIGABRT)", "stopped answering …").
        reason: String,
        /// Seconds until the next restart attempt, when known.
        retry: Option<u64>,
    },
    /// The device reported a hardware or memory failure.
    #[error("the device reported a hardware failure ({0}); try again, and replace the device if it persists")]
    DeviceFailure(RvError),
    /// The device's interface has no such operation (the message says what to use instead).
    #[error("{0}")]
    Unsupported(String),
    /// A failure relayed from seald's device helper, in the helper's words.
    #[error("{0}")]
    Reported(String),
    /// Any other failure, with the function that returned it.
    #[error("the device refused the operation: {0}")]
    Other(String),
}

/// " (next attempt in 4 s)", or for an attempt due now " (it is started again at its next use)".
fn retry_phrase(seconds: u64) -> String {
    match seconds {
        0 => " (it is started again at its next use)".into(),
        s => format!(" (next attempt in {s} s)"),
    }
}

/// What a token says about the PIN tries left, from its token-info flags.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum TriesLeft {
    /// The token gives no warning.
    NotReported,
    /// The token reports that the count is low.
    Few,
    /// The next wrong PIN locks the token.
    One,
}

impl TriesLeft {
    fn suffix(&self) -> &'static str {
        match self {
            TriesLeft::NotReported => "",
            TriesLeft::Few => "; the token reports few tries left",
            TriesLeft::One => "; one try left before the token locks",
        }
    }
}

impl DeviceError {
    /// True when the error means the token's sessions and login are gone.
    pub fn is_removal(&self) -> bool {
        matches!(
            self,
            DeviceError::DeviceRemoved
                | DeviceError::TokenNotPresent { .. }
                | DeviceError::SessionHandleInvalid
                | DeviceError::LibraryDown { .. }
        )
    }

    /// Maps a cryptoki error; `serial` names the token for TokenNotPresent.
    pub(crate) fn from_cryptoki(error: CkError, serial: &str) -> Self {
        let CkError::Pkcs11(rv, function) = error else {
            return DeviceError::Other(error.to_string());
        };
        match rv {
            RvError::PinIncorrect => DeviceError::PinIncorrect {
                tries: TriesLeft::NotReported,
            },
            RvError::PinLocked => DeviceError::PinLocked,
            RvError::PinLenRange => DeviceError::PinLenRange { min: 0, max: 0 },
            RvError::PinInvalid | RvError::PinTooWeak => DeviceError::PinInvalid,
            RvError::PinExpired => DeviceError::PinExpired,
            RvError::UserPinNotInitialized => DeviceError::UserPinNotInitialized,
            RvError::UserNotLoggedIn => DeviceError::UserNotLoggedIn,
            RvError::UserAlreadyLoggedIn | RvError::UserAnotherAlreadyLoggedIn => {
                DeviceError::AlreadyLoggedIn
            }
            RvError::MechanismInvalid | RvError::MechanismParamInvalid => {
                DeviceError::MechanismInvalid {
                    mechanism: 0,
                    what: "the requested operation",
                }
            }
            RvError::KeyHandleInvalid | RvError::ObjectHandleInvalid => {
                DeviceError::KeyHandleInvalid {
                    serial: serial.to_owned(),
                }
            }
            RvError::DeviceRemoved => DeviceError::DeviceRemoved,
            RvError::TokenNotPresent | RvError::TokenNotRecognized => {
                DeviceError::TokenNotPresent {
                    serial: serial.to_owned(),
                }
            }
            RvError::SessionHandleInvalid | RvError::SessionClosed => {
                DeviceError::SessionHandleInvalid
            }
            RvError::DeviceError | RvError::DeviceMemory | RvError::GeneralError => {
                DeviceError::DeviceFailure(rv)
            }
            other => DeviceError::Other(format!("{function}: {other}")),
        }
    }
}

/// Result of a device operation.
pub type DeviceResult<T> = Result<T, DeviceError>;
