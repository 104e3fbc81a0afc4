//! GM/T 0018 SDF libraries, the interface most server cipher machines ship.
//!
//! The library opens "the" device; its serial number (DEVICEINFO) identifies it. A key is
//! named by its index. Private-key access rights belong to one session and one key index, so
//! a custodian's login opens the whole session pool and gets the right for every configured
//! key index on each session — checking the password on the first session before fanning out,
//! so a wrong password spends one try, not one per session — and the password is then
//! dropped: seald keeps no PIN. A session lost afterwards cannot get its rights back without
//! a new login. GM/T 0018 has no PIN change, unblock or certificate storage: those are the
//! cipher machine's management tool's.

mod library;

use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use secrecy::ExposeSecret;

use library::{Handle, SdfFailure, Symbols};

use super::backend::DeviceBackend;
use super::error::{DeviceError, DeviceResult, TriesLeft};
use super::key::KeySelector;
use super::pin::Pin;
use super::token::{PinState, TokenInfo};
use crate::crypto::{PublicKey, RawSignature};

/// A code hsm-sim (and some vendors) answer for a locked password: `SDR_BASE + 0x10000 +
/// 0x18`, outside the standard's list (see `firmware-notes/sdf.md`).
const LOCKED: u32 = 0x0101_0018;

/// A loaded SDF library, its ECC field width and the key indexes a login opens.
#[derive(Debug)]
pub struct SdfModule {
    symbols: Symbols,
    /// `ECCref_MAX_LEN`: 64 (GmSSL) or 32 (`SGD_MAX_ECC_BITS_256`).
    ecc_field: usize,
    /// Key indexes whose access rights a login gets.
    keys: Vec<u32>,
}

impl SdfModule {
    /// Loads the library at `path`.
    pub fn open(
        path: &std::path::Path,
        ecc_field: usize,
        keys: Vec<u32>,
    ) -> Result<Arc<Self>, String> {
        if !matches!(ecc_field, 32 | 64) {
            return Err(format!("ecc_max_len is {ecc_field}: it must be 64 or 32"));
        }
        if keys.is_empty() || keys.contains(&0) {
            return Err("keys must list the key indexes (1, 2, …) a login opens".into());
        }
        Ok(Arc::new(Self {
            symbols: Symbols::load(path)?,
            ecc_field,
            keys,
        }))
    }

    /// The serial number of the device, if it can be opened now.
    pub fn serial(&self) -> Result<String, SdfFailure> {
        let device = self.symbols.open_device()?;
        let result = self.symbols.open_session(device).and_then(|session| {
            let info = self.symbols.device_info(session);
            self.symbols.close_session(session);
            info
        });
        self.symbols.close_device(device);
        result.map(|(_, _, serial)| serial)
    }
}

/// A pooled session holding the access rights a login got.
#[derive(Debug)]
struct Session {
    handle: Handle,
}

#[derive(Debug, Default)]
struct State {
    device: Option<Handle>,
    idle: Vec<Session>,
    open: usize,
    logged_in: bool,
    generation: u64,
}

// Handles are opaque tokens of the library, used behind the owner's lock.
unsafe impl Send for State {}

/// The cipher machine with one serial number: its session pool and login.
#[derive(Debug)]
pub struct SdfOwner {
    module: Arc<SdfModule>,
    serial: String,
    capacity: usize,
    state: Mutex<State>,
    returned: Condvar,
}

fn device_error(failure: SdfFailure) -> DeviceError {
    match failure {
        SdfFailure::Code(_, library::SDR_COMMFAIL | library::SDR_OPENDEVICE) => {
            DeviceError::DeviceRemoved
        }
        SdfFailure::Code(_, LOCKED) => DeviceError::PinLocked,
        other => DeviceError::Other(other.to_string()),
    }
}

impl SdfOwner {
    /// The owner of the device `serial` of `module`, with a pool of `capacity` sessions.
    pub fn new(module: Arc<SdfModule>, serial: &str, capacity: usize) -> Self {
        Self {
            module,
            serial: serial.to_owned(),
            capacity: capacity.max(1),
            state: Mutex::new(State::default()),
            returned: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn symbols(&self) -> &Symbols {
        &self.module.symbols
    }

    /// The open device, opening it (and checking it is ours) if needed.
    fn device(&self, state: &mut State) -> DeviceResult<Handle> {
        if let Some(device) = state.device {
            return Ok(device);
        }
        let device = self
            .symbols()
            .open_device()
            .map_err(|_| DeviceError::TokenNotPresent {
                serial: self.serial.clone(),
            })?;
        let serial = self
            .symbols()
            .open_session(device)
            .and_then(|session| {
                let info = self.symbols().device_info(session);
                self.symbols().close_session(session);
                info
            })
            .map(|(_, _, serial)| serial);
        match serial {
            Ok(serial) if serial == self.serial => {
                state.device = Some(device);
                Ok(device)
            }
            _ => {
                self.symbols().close_device(device);
                Err(DeviceError::TokenNotPresent {
                    serial: self.serial.clone(),
                })
            }
        }
    }

    /// Runs `op` on a fresh session of its own (for what needs no access right).
    fn with_session<T>(
        &self,
        op: impl FnOnce(&Symbols, Handle) -> Result<T, SdfFailure>,
    ) -> DeviceResult<T> {
        let device = {
            let mut state = self.lock();
            self.device(&mut state)?
        };
        let session = self
            .symbols()
            .open_session(device)
            .map_err(|e| self.failed(e))?;
        let result = op(self.symbols(), session);
        self.symbols().close_session(session);
        result.map_err(|e| self.failed(e))
    }

    /// Maps a failure; a lost device resets the owner.
    fn failed(&self, failure: SdfFailure) -> DeviceError {
        let error = device_error(failure);
        if matches!(error, DeviceError::DeviceRemoved) {
            self.reset();
        }
        error
    }

    /// Signs on an idle logged-in session, waiting for one when all are busy.
    fn sign_on_pool(&self, index: u32, e: &[u8; 32]) -> DeviceResult<RawSignature> {
        let (session, generation) = {
            let mut state = self.lock();
            loop {
                if !state.logged_in {
                    return Err(DeviceError::UserNotLoggedIn);
                }
                if let Some(session) = state.idle.pop() {
                    break (session, state.generation);
                }
                state = self.returned.wait(state).unwrap_or_else(|e| e.into_inner());
            }
        };
        let result = self
            .symbols()
            .internal_sign(session.handle, index, e, self.module.ecc_field);
        let mut state = self.lock();
        if state.generation == generation {
            state.idle.push(session);
        } else {
            self.symbols().close_session(session.handle);
        }
        drop(state);
        self.returned.notify_one();
        match result {
            Ok(Ok(sig)) => Ok(sig),
            Ok(Err(garbled)) => Err(DeviceError::BadSignature(garbled)),
            Err(SdfFailure::Code(_, library::SDR_PRKRERR)) => Err(DeviceError::UserNotLoggedIn),
            Err(SdfFailure::Code(_, library::SDR_KEYNOTEXIST)) => {
                Err(DeviceError::ObjectNotFound {
                    what: "key",
                    selector: format!("index {index}"),
                    serial: self.serial.clone(),
                })
            }
            Err(e) => Err(self.failed(e)),
        }
    }

    fn index(&self, name: &str) -> DeviceResult<u32> {
        name.parse()
            .map_err(|_| DeviceError::BadKey(format!("`{name}` is not an SDF key index")))
    }

    /// Closes every session (their rights go with them) and the device.
    fn close_all(&self, state: &mut State) {
        for session in state.idle.drain(..) {
            self.symbols().close_session(session.handle);
        }
        if let Some(device) = state.device.take() {
            self.symbols().close_device(device);
        }
        state.open = 0;
        state.logged_in = false;
        state.generation += 1;
    }
}

impl DeviceBackend for SdfOwner {
    fn generation(&self) -> u64 {
        self.lock().generation
    }

    fn reset(&self) {
        let mut state = self.lock();
        self.close_all(&mut state);
        drop(state);
        self.returned.notify_all();
    }

    fn info(&self) -> DeviceResult<TokenInfo> {
        let (issuer, name, serial) =
            self.with_session(|symbols, session| symbols.device_info(session))?;
        let logged_in = self.lock().logged_in;
        Ok(TokenInfo {
            label: name,
            serial,
            manufacturer: issuer,
            model: "SDF".into(),
            pin: PinState {
                login_required: !logged_in,
                ..PinState::unknown()
            },
            pin_length: (0, 0),
        })
    }

    fn logged_in(&self) -> DeviceResult<bool> {
        Ok(self.lock().logged_in)
    }

    fn login(&self, pin: &Pin) -> DeviceResult<()> {
        let mut state = self.lock();
        self.close_all(&mut state);
        let device = self.device(&mut state)?;
        let password = pin.auth().expose_secret().as_bytes();
        let mut sessions = Vec::with_capacity(self.capacity);
        let mut outcome = Ok(());
        'open: for n in 0..self.capacity {
            let session = match self.symbols().open_session(device) {
                Ok(s) => s,
                Err(e) => {
                    outcome = Err(device_error(e));
                    break;
                }
            };
            sessions.push(Session { handle: session });
            for &index in &self.module.keys {
                if let Err(e) = self.symbols().get_access_right(session, index, password) {
                    outcome = Err(match e {
                        // The first check is the password's; a refusal later is the device's.
                        SdfFailure::Code(_, library::SDR_PRKRERR) if n == 0 => {
                            DeviceError::PinIncorrect {
                                tries: TriesLeft::NotReported,
                            }
                        }
                        SdfFailure::Code(_, library::SDR_KEYNOTEXIST) => {
                            DeviceError::ObjectNotFound {
                                what: "key",
                                selector: format!("index {index} ([module.sdf] keys)"),
                                serial: self.serial.clone(),
                            }
                        }
                        other => device_error(other),
                    });
                    break 'open;
                }
            }
        }
        if let Err(e) = outcome {
            for s in sessions {
                self.symbols().close_session(s.handle);
            }
            return Err(e);
        }
        state.open = sessions.len();
        state.idle = sessions;
        state.logged_in = true;
        drop(state);
        self.returned.notify_all();
        Ok(())
    }

    fn logout(&self) -> DeviceResult<()> {
        let mut state = self.lock();
        for session in &state.idle {
            for &index in &self.module.keys {
                self.symbols().release_access_right(session.handle, index);
            }
        }
        self.close_all(&mut state);
        drop(state);
        self.returned.notify_all();
        Ok(())
    }

    fn change_pin(&self, _old: &Pin, _new: &Pin) -> DeviceResult<()> {
        Err(DeviceError::Unsupported(
            "GM/T 0018 (SDF) has no PIN change: change the key's access password with the cipher machine's management tool".into(),
        ))
    }

    fn unblock(&self, _admin: &Pin, _new_user: &Pin) -> DeviceResult<()> {
        Err(DeviceError::Unsupported(
            "GM/T 0018 (SDF) has no PIN unblock: use the cipher machine's management tool".into(),
        ))
    }

    fn key_name(&self, selector: &KeySelector) -> DeviceResult<String> {
        let index = match selector {
            KeySelector::Id(id) if id.len() == 1 && id[0] > 0 => u32::from(id[0]),
            KeySelector::Label(label) => label.parse().unwrap_or(0),
            KeySelector::Id(_) => 0,
        };
        if index == 0 {
            return Err(DeviceError::BadKey(format!(
                "{selector} does not name an SDF key index (an id of one byte, 1 to 255)"
            )));
        }
        Ok(index.to_string())
    }

    fn public_key(&self, name: &str) -> DeviceResult<PublicKey> {
        let index = self.index(name)?;
        let field = self.module.ecc_field;
        match self.with_session(|symbols, session| symbols.sign_public_key(session, index, field)) {
            Ok(Ok(key)) => Ok(key),
            Ok(Err(garbled)) => Err(DeviceError::BadKey(garbled)),
            Err(DeviceError::Other(text))
                if text.contains(&format!("{:#010x}", library::SDR_KEYNOTEXIST)) =>
            {
                Err(DeviceError::ObjectNotFound {
                    what: "key",
                    selector: format!("index {index}"),
                    serial: self.serial.clone(),
                })
            }
            Err(e) => Err(e),
        }
    }

    fn key_present(&self, name: &str) -> DeviceResult<Option<bool>> {
        let index = self.index(name)?;
        if !self.lock().logged_in {
            return Ok(None);
        }
        Ok(Some(self.module.keys.contains(&index)))
    }

    fn certificate(&self, name: &str) -> DeviceResult<Vec<u8>> {
        Err(DeviceError::ObjectNotFound {
            what: "certificate (GM/T 0018 keeps none: give the certificate file)",
            selector: format!("index {name}"),
            serial: self.serial.clone(),
        })
    }

    fn sign(&self, name: &str, e: &[u8; 32]) -> DeviceResult<RawSignature> {
        let index = self.index(name)?;
        self.sign_on_pool(index, e)
    }
}

impl Drop for SdfOwner {
    fn drop(&mut self) {
        let mut state = self.lock();
        self.close_all(&mut state);
    }
}
