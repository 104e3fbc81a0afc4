//! The SKF side of a token owner: one device (found by serial), its application kept open so
//! that a login lasts, and what the PKCS#11 owner offers (info, PIN operations, signing) in
//! SKF calls. GM/T 0016 cannot be asked whether the application is logged in: the owner
//! remembers its own successful login until a logout, a removal or a failure says otherwise.

use std::sync::{Arc, Mutex, MutexGuard};

use super::{SkfApplication, SkfError, SkfLibrary, SkfPinInfo, ADMIN_PIN, USER_PIN};
use crate::crypto::{PublicKey, RawSignature};
use crate::device::backend::DeviceBackend;
use crate::device::error::{DeviceError, DeviceResult, TriesLeft};
use crate::device::key::KeySelector;
use crate::device::pin::Pin;
use crate::device::token::{PinState, TokenInfo};

/// An SKF module's library and the application seals live in.
#[derive(Debug, Clone)]
pub struct SkfModule {
    /// The loaded library.
    pub library: Arc<SkfLibrary>,
    /// The application name (`[module.skf] application`).
    pub application: String,
}

#[derive(Debug, Default)]
struct State {
    app: Option<Arc<SkfApplication>>,
    logged_in: bool,
    generation: u64,
}

/// The SKF device with one serial number: its open application and login.
#[derive(Debug)]
pub struct SkfOwner {
    module: SkfModule,
    serial: String,
    state: Mutex<State>,
}

impl From<SkfError> for DeviceError {
    fn from(e: SkfError) -> Self {
        match e {
            SkfError::Removed | SkfError::NoSuchDevice(_) => DeviceError::DeviceRemoved,
            SkfError::PinLocked => DeviceError::PinLocked,
            SkfError::PinIncorrect { tries_left } => DeviceError::PinIncorrect {
                tries: tries(tries_left),
            },
            SkfError::NotLoggedIn => DeviceError::UserNotLoggedIn,
            other => DeviceError::Other(other.to_string()),
        }
    }
}

/// How the PKCS#11 side words a count of tries left.
fn tries(left: u64) -> TriesLeft {
    match left {
        1 => TriesLeft::One,
        2 | 3 => TriesLeft::Few,
        _ => TriesLeft::NotReported,
    }
}

impl SkfOwner {
    /// The owner of the device with `serial` in `module`; connected at first use.
    pub fn new(module: SkfModule, serial: &str) -> Self {
        Self {
            module,
            serial: serial.to_owned(),
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The open application, connecting and opening it if needed.
    fn app(&self) -> DeviceResult<Arc<SkfApplication>> {
        let mut state = self.lock();
        if let Some(app) = &state.app {
            return Ok(app.clone());
        }
        let opened = self
            .module
            .library
            .connect_serial(&self.serial)
            .and_then(|device| device.open_application(&self.module.application));
        match opened {
            Ok(app) => {
                let app = Arc::new(app);
                state.app = Some(app.clone());
                Ok(app)
            }
            Err(SkfError::NoSuchDevice(_)) => Err(DeviceError::TokenNotPresent {
                serial: self.serial.clone(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Runs `op` on the application; a removal resets the owner.
    fn run<T>(&self, op: impl FnOnce(&SkfApplication) -> Result<T, SkfError>) -> DeviceResult<T> {
        let app = self.app()?;
        match op(&app) {
            Ok(v) => Ok(v),
            Err(SkfError::Removed) => {
                self.reset();
                Err(DeviceError::DeviceRemoved)
            }
            Err(SkfError::NotLoggedIn) => {
                self.lock().logged_in = false;
                Err(DeviceError::UserNotLoggedIn)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A device error, or "no such container" for the open that failed on `name`.
    fn not_found(&self, e: DeviceError, name: &str) -> DeviceError {
        match e {
            DeviceError::Other(text) if text.starts_with("SKF_OpenContainer failed") => {
                DeviceError::ObjectNotFound {
                    what: "key container",
                    selector: name.to_owned(),
                    serial: self.serial.clone(),
                }
            }
            other => other,
        }
    }
}

impl DeviceBackend for SkfOwner {
    /// Counts resets (removals, logouts by reset).
    fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Closes the application and forgets the login.
    fn reset(&self) {
        let mut state = self.lock();
        state.app = None;
        state.logged_in = false;
        state.generation += 1;
    }

    /// Label, serial and PIN state (from `SKF_GetDevInfo` and `SKF_GetPINInfo`).
    fn info(&self) -> DeviceResult<TokenInfo> {
        let app = self.app()?;
        let device = self
            .module
            .library
            .connect_serial(&self.serial)
            .map_err(|e| match e {
                SkfError::NoSuchDevice(_) => DeviceError::TokenNotPresent {
                    serial: self.serial.clone(),
                },
                other => other.into(),
            })?
            .info()?;
        let user = app.pin_info(USER_PIN)?;
        let admin = app.pin_info(ADMIN_PIN)?;
        Ok(token_info(&device, user, admin))
    }

    /// Whether this owner's login still holds.
    fn logged_in(&self) -> DeviceResult<bool> {
        self.app()?;
        Ok(self.lock().logged_in)
    }

    /// Logs the user in (`SKF_VerifyPIN`).
    fn login(&self, pin: &Pin) -> DeviceResult<()> {
        let result = self.run(|app| app.verify_pin(USER_PIN, pin));
        self.lock().logged_in = result.is_ok();
        result
    }

    /// Logs out (`SKF_ClearSecureState`); logging out twice is not an error.
    fn logout(&self) -> DeviceResult<()> {
        let result = self.run(|app| app.log_out());
        self.lock().logged_in = false;
        match result {
            Ok(()) | Err(DeviceError::UserNotLoggedIn) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Changes the user PIN.
    fn change_pin(&self, old: &Pin, new: &Pin) -> DeviceResult<()> {
        self.run(|app| app.change_pin(USER_PIN, old, new))
    }

    /// Unblocks the user PIN with the administrator PIN; a wrong administrator PIN is told as
    /// the security officer's.
    fn unblock(&self, admin: &Pin, new_user: &Pin) -> DeviceResult<()> {
        self.reset();
        self.run(|app| app.unblock_pin(admin, new_user))
            .map_err(|e| match e {
                DeviceError::PinLocked => DeviceError::SoPinLocked,
                DeviceError::PinIncorrect { tries } => DeviceError::SoPinIncorrect { tries },
                other => other,
            })
    }

    /// The public key of container `name`.
    fn public_key(&self, name: &str) -> DeviceResult<PublicKey> {
        self.run(|app| app.open_container(name)?.public_key())
            .map_err(|e| self.not_found(e, name))
    }

    /// The sign certificate of container `name`.
    fn certificate(&self, name: &str) -> DeviceResult<Vec<u8>> {
        match self.run(|app| app.open_container(name)?.certificate()) {
            Ok(Some(der)) => Ok(der),
            Ok(None) => Err(DeviceError::ObjectNotFound {
                what: "certificate",
                selector: format!("container {name}"),
                serial: self.serial.clone(),
            }),
            Err(e) => Err(self.not_found(e, name)),
        }
    }

    /// Signs e with the sign key of container `name`.
    fn sign(&self, name: &str, e: &[u8; 32]) -> DeviceResult<RawSignature> {
        if !self.lock().logged_in {
            return Err(DeviceError::UserNotLoggedIn);
        }
        self.run(|app| app.open_container(name)?.sign_e(e))
            .map_err(|e| self.not_found(e, name))
    }

    fn key_name(&self, selector: &KeySelector) -> DeviceResult<String> {
        let names = self.run(|app| app.containers())?;
        names
            .into_iter()
            .find(|name| match selector {
                KeySelector::Label(label) => name == label,
                KeySelector::Id(id) => {
                    name.as_bytes() == id.as_slice() || name.eq_ignore_ascii_case(&hex::encode(id))
                }
            })
            .ok_or_else(|| DeviceError::ObjectNotFound {
                what: "key container",
                selector: selector.to_string(),
                serial: self.serial.clone(),
            })
    }

    fn key_present(&self, name: &str) -> DeviceResult<Option<bool>> {
        if !self.lock().logged_in {
            return Ok(None);
        }
        self.run(|app| app.containers())
            .map(|names| Some(names.iter().any(|n| n == name)))
    }
}

/// What the PKCS#11 side would say, from GM/T 0016's answers. SKF has no PIN length limits to
/// ask: (0, 0) means "the device decides".
fn token_info(device: &super::SkfDeviceInfo, user: SkfPinInfo, admin: SkfPinInfo) -> TokenInfo {
    let low = |p: &SkfPinInfo| p.tries_left > 0 && p.tries_left < p.max_tries;
    TokenInfo {
        label: device.label.clone(),
        serial: device.serial.clone(),
        manufacturer: device.manufacturer.clone(),
        model: "SKF".into(),
        pin: PinState {
            login_required: true,
            user_pin_initialized: true,
            count_low: low(&user),
            final_try: user.tries_left == 1,
            locked: user.tries_left == 0,
            to_be_changed: user.is_default,
            so_locked: admin.tries_left == 0,
            so_count_low: low(&admin),
            so_final_try: admin.tries_left == 1,
        },
        pin_length: (0, 0),
    }
}
