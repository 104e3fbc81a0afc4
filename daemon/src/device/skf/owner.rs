//! The SKF side of a token owner: one device (found by serial), its application kept open so
//! that a login lasts, and what the PKCS#11 owner offers (info, PIN operations, signing) in
//! SKF calls. GM/T 0016 promises no thread safety, so every call into the library for this
//! device holds the owner's I/O lock. GM/T 0016 cannot be asked whether the application is
//! logged in: the owner remembers its own successful login until a logout, a removal or a
//! failure says otherwise.

use std::sync::{Arc, Mutex, MutexGuard};

use super::{sar, SkfApplication, SkfError, SkfLibrary, SkfPinInfo, ADMIN_PIN, USER_PIN};
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
    /// Who computes SM3(Z‖M) (`[module.skf] digest`).
    pub digest: crate::device::SkfDigest,
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
    /// Held across every library call for this device.
    io: Mutex<()>,
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
            SkfError::Missing { .. } => DeviceError::Unsupported(e.to_string()),
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

/// Whether an error means the handles are stale: the device was pulled, or replugged and
/// the library no longer knows the old handle.
fn is_stale(e: &SkfError) -> bool {
    matches!(
        e,
        SkfError::Removed
            | SkfError::Code {
                code: sar::INVALID_HANDLE,
                ..
            }
    )
}

impl SkfOwner {
    /// The owner of the device with `serial` in `module`; connected at first use.
    pub fn new(module: SkfModule, serial: &str) -> Self {
        Self {
            module,
            serial: serial.to_owned(),
            state: Mutex::new(State::default()),
            io: Mutex::new(()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The open application, connecting and opening it if needed (under the I/O lock).
    fn app(&self) -> DeviceResult<Arc<SkfApplication>> {
        let mut state = self.lock();
        if let Some(app) = &state.app {
            return Ok(app.clone());
        }
        let library = &self.module.library;
        let device = library.connect_serial(&self.serial).map_err(|e| match e {
            SkfError::NoSuchDevice(_) => DeviceError::TokenNotPresent {
                serial: self.serial.clone(),
            },
            other => other.into(),
        })?;
        let app = device
            .open_application(&self.module.application)
            .map_err(|e| match e {
                SkfError::Code {
                    code: sar::APPLICATION_NOT_EXISTS,
                    ..
                } => DeviceError::Other(format!(
                    "the SKF device {} has no application `{}` ([module.skf] application); it has: {}",
                    self.serial,
                    self.module.application,
                    device.applications().unwrap_or_default().join(", ")
                )),
                other => other.into(),
            })?;
        // seald's view starts logged out: clear a login the device may still hold from an
        // earlier process (a helper that crashed never logged out).
        if let Err(e) = app.log_out() {
            tracing::debug!(token = %self.serial, error = %e, "SKF_ClearSecureState on a fresh application failed");
        }
        let app = Arc::new(app);
        state.app = Some(app.clone());
        Ok(app)
    }

    /// Runs `op` on the application under the I/O lock; stale handles reset the owner, and
    /// `map` may name an error more precisely before it becomes a device error.
    fn run_with<T>(
        &self,
        op: impl FnOnce(&SkfApplication) -> Result<T, SkfError>,
        map: impl FnOnce(SkfError) -> Result<DeviceError, SkfError>,
    ) -> DeviceResult<T> {
        let _io = self.io.lock().unwrap_or_else(|e| e.into_inner());
        let app = self.app()?;
        match op(&app) {
            Ok(v) => Ok(v),
            Err(e) if is_stale(&e) => {
                self.reset();
                Err(DeviceError::DeviceRemoved)
            }
            Err(SkfError::NotLoggedIn) => {
                self.lock().logged_in = false;
                Err(DeviceError::UserNotLoggedIn)
            }
            Err(e) => Err(match map(e) {
                Ok(named) => named,
                Err(e) => e.into(),
            }),
        }
    }

    fn run<T>(&self, op: impl FnOnce(&SkfApplication) -> Result<T, SkfError>) -> DeviceResult<T> {
        self.run_with(op, Err)
    }

    /// Runs `op` on container `name`; "no such file" from the open names the container.
    fn in_container<T>(
        &self,
        name: &str,
        op: impl FnOnce(&super::SkfContainer<'_>) -> Result<T, SkfError>,
    ) -> DeviceResult<T> {
        self.run_with(
            |app| op(&app.open_container(name)?),
            |e| match e {
                SkfError::Code {
                    function: "SKF_OpenContainer",
                    code: sar::FILE_NOT_EXIST,
                } => Ok(DeviceError::ObjectNotFound {
                    what: "key container",
                    selector: name.to_owned(),
                    serial: self.serial.clone(),
                }),
                other => Err(other),
            },
        )
    }
}

impl DeviceBackend for SkfOwner {
    fn generation(&self) -> u64 {
        self.lock().generation
    }

    fn reset(&self) {
        let mut state = self.lock();
        state.app = None;
        state.logged_in = false;
        state.generation += 1;
    }

    fn info(&self) -> DeviceResult<TokenInfo> {
        let (device, user, admin) = self.run(|app| {
            let device = app.device().info()?;
            // A library without SKF_GetPINInfo still logs in: its PIN state is unknown.
            let pin = |kind| match app.pin_info(kind) {
                Err(SkfError::Missing { .. }) => Ok(None),
                other => other.map(Some),
            };
            Ok((device, pin(USER_PIN)?, pin(ADMIN_PIN)?))
        })?;
        Ok(token_info(&device, user, admin))
    }

    fn logged_in(&self) -> DeviceResult<bool> {
        // Opening the application is a library call like any other: under the I/O lock.
        let _io = self.io.lock().unwrap_or_else(|e| e.into_inner());
        self.app()?;
        Ok(self.lock().logged_in)
    }

    fn login(&self, pin: &Pin) -> DeviceResult<()> {
        let generation = self.generation();
        let result = self.run(|app| app.verify_pin(USER_PIN, pin));
        let mut state = self.lock();
        // A reset while the PIN was checked leaves the new application logged out.
        state.logged_in = result.is_ok() && state.generation == generation;
        result
    }

    fn logout(&self) -> DeviceResult<()> {
        let result = self.run(|app| app.log_out());
        self.lock().logged_in = false;
        match result {
            Ok(()) | Err(DeviceError::UserNotLoggedIn) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn change_pin(&self, old: &Pin, new: &Pin) -> DeviceResult<()> {
        self.run(|app| app.change_pin(USER_PIN, old, new))
    }

    fn unblock(&self, admin: &Pin, new_user: &Pin) -> DeviceResult<()> {
        self.reset();
        self.run(|app| app.unblock_pin(admin, new_user))
            .map_err(|e| match e {
                DeviceError::PinLocked => DeviceError::SoPinLocked,
                DeviceError::PinIncorrect { tries } => DeviceError::SoPinIncorrect { tries },
                other => other,
            })
    }

    fn key_name(&self, selector: &KeySelector) -> DeviceResult<String> {
        let names = self.run(|app| app.containers())?;
        let matches: Vec<String> = names
            .into_iter()
            .filter(|name| match selector {
                KeySelector::Label(label) => name == label,
                KeySelector::Id(id) => {
                    name.as_bytes() == id.as_slice() || name.eq_ignore_ascii_case(&hex::encode(id))
                }
            })
            .collect();
        match matches.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(DeviceError::ObjectNotFound {
                what: "key container",
                selector: selector.to_string(),
                serial: self.serial.clone(),
            }),
            several => Err(DeviceError::BadKey(format!(
                "containers {} all match {selector}; name the container exactly",
                several.join(", ")
            ))),
        }
    }

    fn public_key(&self, name: &str) -> DeviceResult<PublicKey> {
        self.in_container(name, |c| c.public_key())
    }

    fn key_present(&self, name: &str) -> DeviceResult<Option<bool>> {
        if !self.lock().logged_in {
            return Ok(None);
        }
        self.run(|app| app.containers())
            .map(|names| Some(names.iter().any(|n| n == name)))
    }

    fn certificate(&self, name: &str) -> DeviceResult<Vec<u8>> {
        self.in_container(name, |c| c.certificate())?
            .ok_or_else(|| DeviceError::ObjectNotFound {
                what: "certificate",
                selector: format!("container {name}"),
                serial: self.serial.clone(),
            })
    }

    fn digest(&self, name: &str, message: &[u8]) -> DeviceResult<Option<[u8; 32]>> {
        if self.module.digest != crate::device::SkfDigest::Device {
            return Ok(None);
        }
        self.in_container(name, |c| {
            let key = c.public_key()?;
            c.device().sm3_with_z(&key, message)
        })
        .map(Some)
    }

    fn sign(&self, name: &str, e: &[u8; 32]) -> DeviceResult<RawSignature> {
        if !self.lock().logged_in {
            return Err(DeviceError::UserNotLoggedIn);
        }
        self.in_container(name, |c| c.sign_e(e))
    }
}

/// What the PKCS#11 side would say, from GM/T 0016's answers (`None`: the library cannot
/// tell). SKF has no PIN length limits to ask: (0, 0) means "the device decides".
fn token_info(
    device: &super::SkfDeviceInfo,
    user: Option<SkfPinInfo>,
    admin: Option<SkfPinInfo>,
) -> TokenInfo {
    let low = |p: &SkfPinInfo| p.tries_left > 0 && p.tries_left < p.max_tries;
    let mut pin = PinState::unknown();
    if let Some(user) = user {
        pin.count_low = low(&user);
        pin.final_try = user.tries_left == 1;
        pin.locked = user.tries_left == 0;
        pin.to_be_changed = user.is_default;
    }
    if let Some(admin) = admin {
        pin.so_locked = admin.tries_left == 0;
        pin.so_count_low = low(&admin);
        pin.so_final_try = admin.tries_left == 1;
    }
    TokenInfo {
        label: device.label.clone(),
        serial: device.serial.clone(),
        manufacturer: device.manufacturer.clone(),
        model: "SKF".into(),
        pin,
        pin_length: (0, 0),
    }
}
