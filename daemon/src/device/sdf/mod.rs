//! GM/T 0018 SDF libraries, the interface most server cipher machines ship.
//!
//! The library opens "the" device; its serial number (DEVICEINFO) identifies it. A key is
//! named by its index. Private-key access rights belong to one session and one key index, so
//! a custodian's login checks the password once on a new session and, only if it is right,
//! opens the whole session pool and gets the right for every configured key index on each
//! session; the password is then dropped: seald keeps no PIN. A session lost afterwards
//! cannot get its rights back without a new login. The device handle is shared by its
//! sessions and closed only after the last of them. GM/T 0018 has no PIN change, unblock or
//! certificate storage: those are the cipher machine's management tool's.

mod library;

use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use secrecy::ExposeSecret;
use zeroize::Zeroizing;

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
    /// Key indexes whose access rights a login gets (no duplicates).
    keys: Vec<u32>,
    /// The device's serial, once read.
    serial: Mutex<Option<String>>,
}

impl SdfModule {
    /// Checks the `[module.sdf]` settings.
    pub fn validate(ecc_field: usize, keys: &[u32]) -> Result<(), String> {
        if !matches!(ecc_field, 32 | 64) {
            return Err(format!(
                "[module.sdf] ecc_max_len is {ecc_field}: it must be 64 or 32"
            ));
        }
        if keys.is_empty() || keys.contains(&0) {
            return Err(
                "[module.sdf] keys must list the key indexes (1, 2, …) a login opens".into(),
            );
        }
        Ok(())
    }

    /// Loads the library at `path`.
    pub fn open(
        path: &std::path::Path,
        ecc_field: usize,
        mut keys: Vec<u32>,
    ) -> Result<Arc<Self>, String> {
        Self::validate(ecc_field, &keys)?;
        keys.sort_unstable();
        keys.dedup();
        Ok(Arc::new(Self {
            symbols: Symbols::load(path)?,
            ecc_field,
            keys,
            serial: Mutex::new(None),
        }))
    }

    /// The device's serial number: read once (opening the device and a session), then
    /// remembered, so that listing devices never opens a second handle beside a pool.
    pub fn serial(self: &Arc<Self>) -> DeviceResult<String> {
        if let Some(serial) = self
            .serial
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return Ok(serial);
        }
        let device = Device::open(self)?;
        let (_, _, serial) = Session::open(&device)?.info()?;
        *self.serial.lock().unwrap_or_else(|e| e.into_inner()) = Some(serial.clone());
        Ok(serial)
    }

    /// What the device says about itself, on a device handle of its own (only when no owner
    /// holds a pool).
    pub fn describe(self: &Arc<Self>) -> DeviceResult<TokenInfo> {
        let device = Device::open(self)?;
        let info = Session::open(&device)?.info()?;
        Ok(token_info(info))
    }
}

fn failure(f: SdfFailure) -> DeviceError {
    match f {
        SdfFailure::Missing(_) => DeviceError::Unsupported(f.to_string()),
        SdfFailure::Code(_, library::SDR_COMMFAIL | library::SDR_OPENDEVICE) => {
            DeviceError::DeviceRemoved
        }
        SdfFailure::Code(_, LOCKED) => DeviceError::PinLocked,
        other => DeviceError::Other(other.to_string()),
    }
}

/// An open device, closed when its last session and owner let go of it.
#[derive(Debug)]
struct Device {
    module: Arc<SdfModule>,
    handle: Handle,
}

// The handle is an opaque token of the library; GM/T 0018 devices are shared by sessions.
unsafe impl Send for Device {}
unsafe impl Sync for Device {}

impl Device {
    fn open(module: &Arc<SdfModule>) -> DeviceResult<Arc<Self>> {
        let handle = module.symbols.open_device().map_err(failure)?;
        Ok(Arc::new(Self {
            module: module.clone(),
            handle,
        }))
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        self.module.symbols.close_device(self.handle);
    }
}

/// A session (and the access rights it holds), closed when dropped, before its device.
#[derive(Debug)]
struct Session {
    device: Arc<Device>,
    handle: Handle,
}

unsafe impl Send for Session {}

impl Session {
    fn open(device: &Arc<Device>) -> DeviceResult<Self> {
        let handle = device
            .module
            .symbols
            .open_session(device.handle)
            .map_err(failure)?;
        Ok(Self {
            device: device.clone(),
            handle,
        })
    }

    fn symbols(&self) -> &Symbols {
        &self.device.module.symbols
    }

    fn info(&self) -> DeviceResult<(String, String, String)> {
        self.symbols().device_info(self.handle).map_err(failure)
    }

    /// Gets the access right to key `index` with `password` (NUL-terminated copy).
    fn grant(&self, index: u32, password: &[u8]) -> Result<(), SdfFailure> {
        self.symbols()
            .get_access_right(self.handle, index, password)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.device.module.symbols.close_session(self.handle);
    }
}

#[derive(Debug, Default)]
struct State {
    device: Option<Arc<Device>>,
    idle: Vec<Session>,
    logged_in: bool,
    generation: u64,
}

/// The cipher machine with one serial number: its session pool and login.
#[derive(Debug)]
pub struct SdfOwner {
    module: Arc<SdfModule>,
    serial: String,
    capacity: usize,
    state: Mutex<State>,
    returned: Condvar,
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

    /// The open device, opening it (and checking it is ours) if needed.
    fn device(&self) -> DeviceResult<Arc<Device>> {
        if let Some(device) = &self.lock().device {
            return Ok(device.clone());
        }
        let device = Device::open(&self.module).map_err(|e| match e {
            DeviceError::DeviceRemoved => DeviceError::TokenNotPresent {
                serial: self.serial.clone(),
            },
            other => other,
        })?;
        let (_, _, serial) = Session::open(&device)?.info()?;
        if serial != self.serial {
            return Err(DeviceError::Other(format!(
                "the SDF library's device has serial {serial}, not {}",
                self.serial
            )));
        }
        self.lock().device = Some(device.clone());
        Ok(device)
    }

    /// A new session of its own; a device handle gone stale (the link dropped since) is
    /// closed and the device opened again, once.
    fn session(&self) -> DeviceResult<Session> {
        let device = self.device()?;
        match Session::open(&device) {
            Err(DeviceError::DeviceRemoved) => {
                drop(device);
                self.close_all();
                Session::open(&self.device()?)
            }
            other => other,
        }
    }

    /// Drops the pool (sessions close now, or when returned) and the login.
    fn close_all(&self) {
        let mut state = self.lock();
        state.idle.clear();
        state.device = None;
        state.logged_in = false;
        state.generation += 1;
        drop(state);
        self.returned.notify_all();
    }

    /// Maps a failure of a pooled operation: a lost link or a lost right ends the login.
    fn failed(&self, f: SdfFailure) -> DeviceError {
        match f {
            SdfFailure::Code(_, library::SDR_PRKRERR) => {
                self.close_all();
                DeviceError::UserNotLoggedIn
            }
            f => {
                let error = failure(f);
                if matches!(error, DeviceError::DeviceRemoved) {
                    self.close_all();
                }
                error
            }
        }
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
        let result =
            session
                .symbols()
                .internal_sign(session.handle, index, e, self.module.ecc_field);
        {
            let mut state = self.lock();
            if state.generation == generation {
                state.idle.push(session);
            } // else dropped here: closed, and its device with the last session
        }
        self.returned.notify_one();
        match result {
            Ok(Ok(sig)) => Ok(sig),
            Ok(Err(garbled)) => Err(DeviceError::BadSignature(garbled)),
            Err(f) => Err(self.failed(f)),
        }
    }

    fn index(&self, name: &str) -> DeviceResult<u32> {
        name.parse()
            .map_err(|_| DeviceError::BadKey(format!("`{name}` is not an SDF key index")))
    }

    /// `capacity` sessions on `device` with the right to every configured key, the first
    /// being `first` (already granted its first key).
    fn open_pool(
        &self,
        device: &Arc<Device>,
        first: Session,
        password: &[u8],
    ) -> DeviceResult<Vec<Session>> {
        let mut sessions = vec![first];
        while sessions.len() < self.capacity {
            sessions.push(Session::open(device)?);
        }
        for (n, session) in sessions.iter().enumerate() {
            for &index in &self.module.keys {
                if n == 0 && index == self.module.keys[0] {
                    continue; // granted while checking the password
                }
                session.grant(index, password).map_err(|f| match f {
                    SdfFailure::Code(_, library::SDR_KEYNOTEXIST) => DeviceError::ObjectNotFound {
                        what: "key",
                        selector: format!("index {index} ([module.sdf] keys)"),
                        serial: self.serial.clone(),
                    },
                    other => failure(other),
                })?;
            }
        }
        Ok(sessions)
    }
}

impl DeviceBackend for SdfOwner {
    fn generation(&self) -> u64 {
        self.lock().generation
    }

    fn reset(&self) {
        self.close_all();
    }

    fn info(&self) -> DeviceResult<TokenInfo> {
        Ok(token_info(self.session()?.info()?))
    }

    fn logged_in(&self) -> DeviceResult<bool> {
        Ok(self.lock().logged_in)
    }

    fn login(&self, pin: &Pin) -> DeviceResult<()> {
        let mut password = Zeroizing::new(pin.auth().expose_secret().as_bytes().to_vec());
        // Some libraries read the password as a C string whatever its length says.
        password.push(0);
        let password = &password[..password.len() - 1];
        // One check of the password, on a session of its own: a wrong one spends one try and
        // leaves the current pool (and whoever is signing on it) alone.
        let first = self.session()?;
        let device = first.device.clone();
        first
            .grant(self.module.keys[0], password)
            .map_err(|f| match f {
                SdfFailure::Code(_, library::SDR_PRKRERR) => DeviceError::PinIncorrect {
                    tries: TriesLeft::NotReported,
                },
                SdfFailure::Code(_, library::SDR_KEYNOTEXIST) => DeviceError::ObjectNotFound {
                    what: "key",
                    selector: format!("index {} ([module.sdf] keys)", self.module.keys[0]),
                    serial: self.serial.clone(),
                },
                other => failure(other),
            })?;
        let sessions = self.open_pool(&device, first, password)?;
        let mut state = self.lock();
        state.idle = sessions;
        state.logged_in = true;
        state.generation += 1;
        drop(state);
        self.returned.notify_all();
        Ok(())
    }

    fn logout(&self) -> DeviceResult<()> {
        {
            let state = self.lock();
            for session in &state.idle {
                for &index in &self.module.keys {
                    session
                        .symbols()
                        .release_access_right(session.handle, index);
                }
            }
        }
        self.close_all();
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
            KeySelector::Id(id) if id.len() == 1 => u32::from(id[0]),
            KeySelector::Label(label) => label.parse().unwrap_or(0),
            KeySelector::Id(_) => 0,
        };
        if !self.module.keys.contains(&index) {
            return Err(DeviceError::BadKey(format!(
                "{selector} is not one of the key indexes a login opens ([module.sdf] keys = {:?})",
                self.module.keys
            )));
        }
        Ok(index.to_string())
    }

    fn public_key(&self, name: &str) -> DeviceResult<PublicKey> {
        let index = self.index(name)?;
        let session = self.session()?;
        match session
            .symbols()
            .sign_public_key(session.handle, index, self.module.ecc_field)
        {
            Ok(Ok(key)) => Ok(key),
            Ok(Err(garbled)) => Err(DeviceError::BadKey(garbled)),
            Err(SdfFailure::Code(_, library::SDR_KEYNOTEXIST)) => {
                Err(DeviceError::ObjectNotFound {
                    what: "key",
                    selector: format!("index {index}"),
                    serial: self.serial.clone(),
                })
            }
            Err(f) => Err(self.failed(f)),
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

/// What the PKCS#11 side would say: GM/T 0018 reports no PIN state (no tries, no lock).
fn token_info((issuer, name, serial): (String, String, String)) -> TokenInfo {
    TokenInfo {
        label: name,
        serial,
        manufacturer: issuer,
        model: "SDF".into(),
        pin: PinState::unknown(),
        pin_length: (0, 0),
    }
}
