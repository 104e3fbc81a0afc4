//! GM/T 0018 SDF view of the same tokens the PKCS#11 side serves: "the cipher machine" is the
//! token in the slot named by `[sdf] slot` (default: the first initialized token); key index N
//! is the SM2 key pair whose CKA_ID is the single byte N; the private-key access right is the
//! token's user PIN (`token::verify_pin`: same counter and lock as C_Login), held per session
//! and per key index.
//!
//! Safe Rust; `ffi` turns C pointers into these calls. State is per process, made at the first
//! SDF call from `HSM_SIM_CONF` (and made again if that variable names another file).

pub mod abi;
#[allow(non_snake_case)]
mod ffi;

use cryptoki_sys::*;
use std::collections::HashMap;
use std::ffi::OsString;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use zeroize::Zeroizing;

use crate::config::{Config, Model, TokenSettings, CONF_ENV};
use crate::crypto;
use crate::module::Engines;
use crate::skf::{containers, ConEntry};
use crate::store::{SlotState, Store};
use crate::token::{self, Who};
use abi::*;

/// Result with an SDR_* code as error.
pub type Sdr<T> = Result<T, u32>;

static STATE: Mutex<Option<Sdf>> = Mutex::new(None);

/// Runs `f` on the process's SDF state, loading the config first if needed.
pub fn with<T>(f: impl FnOnce(&mut Sdf) -> Sdr<T>) -> Sdr<T> {
    let mut g = STATE.lock().unwrap_or_else(|e| e.into_inner());
    let path = std::env::var_os(CONF_ENV);
    if g.as_ref().map(|s| &s.conf_path) != Some(&path) || g.is_none() {
        *g = Some(Sdf::load(path)?);
    }
    match g.as_mut() {
        Some(s) => f(s),
        None => Err(SDR_UNKNOWERR),
    }
}

/// A device handle's target.
#[derive(Debug, Clone)]
struct Dev {
    slot: u64,
    epoch: u64,
    serial: String,
}

#[derive(Debug)]
enum Handle {
    Dev(Dev),
    Session { dev: usize },
}

/// A private-key access right held by one session for one key index: the token key the user
/// PIN unwrapped.
#[derive(Debug)]
struct Right {
    key: Zeroizing<Vec<u8>>,
}

/// A signature to run outside the state lock (device lock or engines, and latency, like C_Sign).
#[derive(Debug)]
pub struct SignJob {
    d: Zeroizing<Vec<u8>>,
    e: [u8; 32],
    settings: TokenSettings,
    store: Store,
    slot: u64,
    engines: Arc<Engines>,
}

impl SignJob {
    /// Signs e; returns r‖s.
    pub fn run(self) -> Sdr<[u8; 64]> {
        crate::fault::before_sign(self.settings.sign_fault_file.as_deref());
        let latency = Duration::from_millis(self.settings.sign_latency_ms);
        let rs = match self.settings.model {
            Model::Ukey => {
                let _dev = self.store.device(self.slot).map_err(|_| SDR_COMMFAIL)?;
                std::thread::sleep(latency);
                crypto::sign_e(&self.d, &self.e)
            }
            Model::CipherMachine => {
                self.engines.acquire();
                std::thread::sleep(latency);
                let r = crypto::sign_e(&self.d, &self.e);
                self.engines.release();
                r
            }
        };
        rs.ok_or(SDR_UNKNOWERR)
    }
}

/// The process's SDF state.
#[derive(Debug)]
pub struct Sdf {
    conf_path: Option<OsString>,
    cfg: Config,
    store: Store,
    /// Widths in effect.
    pub abi: Abi,
    handles: HashMap<usize, Handle>,
    next: usize,
    /// Access rights by (session handle, key index).
    rights: HashMap<(usize, u32), Right>,
    /// A cipher machine's parallel engines, per slot (this process's SDF side).
    engines: HashMap<u64, Arc<Engines>>,
}

fn io<T>(r: std::io::Result<T>) -> Sdr<T> {
    r.map_err(|e| {
        eprintln!("hsm-sim: store error: {e}");
        SDR_UNKNOWERR
    })
}

fn trim(s: &str) -> String {
    s.trim_end_matches([' ', '\0']).to_string()
}

impl Sdf {
    fn load(path: Option<OsString>) -> Sdr<Sdf> {
        let cfg = Config::from_env().map_err(|e| {
            eprintln!("hsm-sim: {e}");
            SDR_UNKNOWERR
        })?;
        let store = io(Store::open(&cfg.store, cfg.slots, |s| {
            cfg.serial_for_slot(s)
        }))?;
        Ok(Sdf {
            conf_path: path,
            abi: Abi::of(&cfg.sdf),
            cfg,
            store,
            handles: HashMap::new(),
            next: 0x5D00_0001,
            rights: HashMap::new(),
            engines: HashMap::new(),
        })
    }

    fn settings(&self, slot: u64, st: &SlotState) -> TokenSettings {
        self.cfg.settings(slot, &st.serial)
    }

    /// The slot of the cipher machine: `[sdf] slot`, else the first slot with an initialized
    /// token (present or not, so the choice does not move when it is ejected).
    fn device_slot(&self) -> Sdr<Option<u64>> {
        if let Some(s) = self.cfg.sdf.slot {
            return Ok(Some(s));
        }
        for slot in 0..self.cfg.slots {
            if io(self.store.read(slot))?.token.is_some() {
                return Ok(Some(slot));
            }
        }
        Ok(None)
    }

    fn new_handle(&mut self, h: Handle) -> usize {
        let n = self.next;
        self.next += 1;
        self.handles.insert(n, h);
        n
    }

    /// SDF_OpenDevice: no initialized, present token in the device slot → SDR_OPENDEVICE.
    pub fn open_device(&mut self) -> Sdr<usize> {
        let slot = self.device_slot()?.ok_or(SDR_OPENDEVICE)?;
        let st = io(self.store.read(slot))?;
        if !st.present || st.token.is_none() {
            return Err(SDR_OPENDEVICE);
        }
        let dev = Dev {
            slot,
            epoch: st.epoch,
            serial: trim(&st.serial),
        };
        Ok(self.new_handle(Handle::Dev(dev)))
    }

    /// The device behind a device or session handle, checked present and unchanged since the
    /// device was opened (else SDR_COMMFAIL).
    fn dev_of(&self, h: usize) -> Sdr<(Dev, SlotState)> {
        let d = match self.handles.get(&h) {
            Some(Handle::Dev(d)) => d.clone(),
            Some(Handle::Session { dev }) => return self.dev_of(*dev),
            None => return Err(SDR_INARGERR),
        };
        let st = io(self.store.read(d.slot))?;
        if !st.present || st.epoch != d.epoch || trim(&st.serial) != d.serial || st.token.is_none()
        {
            return Err(SDR_COMMFAIL);
        }
        Ok((d, st))
    }

    fn is_dev(&self, h: usize) -> Sdr<()> {
        match self.handles.get(&h) {
            Some(Handle::Dev(_)) => Ok(()),
            _ => Err(SDR_INARGERR),
        }
    }

    fn is_session(&self, h: usize) -> Sdr<()> {
        match self.handles.get(&h) {
            Some(Handle::Session { .. }) => Ok(()),
            _ => Err(SDR_INARGERR),
        }
    }

    /// A session's device, checked.
    fn session(&self, h: usize) -> Sdr<(Dev, SlotState)> {
        self.is_session(h)?;
        self.dev_of(h)
    }

    /// SDF_CloseDevice: closes the device's sessions (dropping their rights) too. Succeeds on
    /// any open device handle, ejected or not.
    pub fn close_device(&mut self, h: usize) -> Sdr<()> {
        self.is_dev(h)?;
        let sessions: Vec<usize> = self
            .handles
            .iter()
            .filter(|(_, x)| matches!(x, Handle::Session { dev } if *dev == h))
            .map(|(k, _)| *k)
            .collect();
        for s in sessions {
            self.drop_session(s);
        }
        self.handles.remove(&h);
        Ok(())
    }

    fn drop_session(&mut self, h: usize) {
        self.rights.retain(|(s, _), _| *s != h);
        self.handles.remove(&h);
    }

    /// SDF_OpenSession.
    pub fn open_session(&mut self, hdev: usize) -> Sdr<usize> {
        self.is_dev(hdev)?;
        self.dev_of(hdev)?;
        Ok(self.new_handle(Handle::Session { dev: hdev }))
    }

    /// SDF_CloseSession: drops the session's access rights. Succeeds on any open session.
    pub fn close_session(&mut self, h: usize) -> Sdr<()> {
        self.is_session(h)?;
        self.drop_session(h);
        Ok(())
    }

    /// SDF_GetDeviceInfo: the DEVICEINFO bytes.
    pub fn device_info(&self, h: usize) -> Sdr<[u8; DEVICEINFO_LEN]> {
        let (d, st) = self.session(h)?;
        let t = st.token.as_ref().ok_or(SDR_COMMFAIL)?;
        Ok(deviceinfo(&DevInfo {
            issuer: "hsm-sim".into(),
            name: trim(&t.label),
            serial: d.serial,
        }))
    }

    /// The key pair at a 1-based index: the SM2 private key (of the profile's key type) whose
    /// CKA_ID is the single byte `index`.
    fn key(&self, d: &Dev, st: &SlotState, index: u32) -> Sdr<ConEntry> {
        let id = u8::try_from(index)
            .ok()
            .filter(|i| *i != 0)
            .ok_or(SDR_KEYNOTEXIST)?;
        let kt = self.settings(d.slot, st).profile.key_type;
        containers(st, kt, true)
            .into_iter()
            .find(|c| c.id == [id])
            .ok_or(SDR_KEYNOTEXIST)
    }

    /// SDF_GetPrivateKeyAccessRight: checks the user PIN with C_Login's counter and lock;
    /// grants the right to this session for this index.
    pub fn get_right(&mut self, h: usize, index: u32, pwd: &[u8]) -> Sdr<()> {
        let (d, st) = self.session(h)?;
        self.key(&d, &st, index)?;
        let s = self.settings(d.slot, &st);
        let r = io(self
            .store
            .update(d.slot, |st| token::verify_pin(st, Who::User, pwd, &s)))?;
        match r {
            Ok(key) => {
                self.rights.insert((h, index), Right { key });
                Ok(())
            }
            Err(CKR_PIN_LOCKED) => Err(SDR_PIN_LOCKED),
            Err(CKR_PIN_INCORRECT | CKR_PIN_LEN_RANGE | CKR_USER_PIN_NOT_INITIALIZED) => {
                Err(SDR_PRKRERR)
            }
            Err(CKR_TOKEN_NOT_PRESENT | CKR_TOKEN_NOT_RECOGNIZED | CKR_DEVICE_REMOVED) => {
                Err(SDR_COMMFAIL)
            }
            Err(_) => Err(SDR_UNKNOWERR),
        }
    }

    /// SDF_ReleasePrivateKeyAccessRight: drops this session's right for the index (none held:
    /// still SDR_OK).
    pub fn release_right(&mut self, h: usize, index: u32) -> Sdr<()> {
        self.is_session(h)?;
        self.rights.remove(&(h, index));
        Ok(())
    }

    /// SDF_ExportSignPublicKey_ECC: the ECCrefPublicKey bytes; no access right needed.
    pub fn export_sign_pub(&self, h: usize, index: u32) -> Sdr<Vec<u8>> {
        let (d, st) = self.session(h)?;
        let c = self.key(&d, &st, index)?;
        self.abi.pubkey(&c.point).ok_or(SDR_UNKNOWERR)
    }

    /// SDF_InternalSign_ECC, first half: checks and the job to run outside the lock.
    pub fn sign_job(&mut self, h: usize, index: u32, e: &[u8]) -> Sdr<SignJob> {
        let (d, st) = self.session(h)?;
        let c = self.key(&d, &st, index)?;
        let e: [u8; 32] = e.try_into().map_err(|_| SDR_INARGERR)?;
        let right = self.rights.get(&(h, index)).ok_or(SDR_PRKRERR)?;
        let o = st
            .token
            .iter()
            .flat_map(|t| t.objects.iter())
            .find(|o| o.handle == c.key)
            .ok_or(SDR_KEYNOTEXIST)?;
        let sealed = o.secret.as_ref().ok_or(SDR_KEYNOTEXIST)?;
        // A token re-initialized since the right was granted has another token key.
        let dsc = crypto::open(&right.key, sealed, b"hsm-sim private key").ok_or(SDR_PRKRERR)?;
        let settings = self.settings(d.slot, &st);
        let engines = self
            .engines
            .entry(d.slot)
            .or_insert_with(|| Arc::new(Engines::new(settings.parallel)))
            .clone();
        Ok(SignJob {
            d: dsc,
            e,
            settings,
            store: self.store.clone(),
            slot: d.slot,
            engines,
        })
    }

    /// SDF_InternalVerify_ECC: verifies r‖s over the 32-byte e with the public key at the
    /// index; no access right needed. Ok, or SDR_VERIFYERR.
    pub fn verify(&self, h: usize, index: u32, e: &[u8], sig: &[u8]) -> Sdr<()> {
        let (d, st) = self.session(h)?;
        let c = self.key(&d, &st, index)?;
        if e.len() != 32 {
            return Err(SDR_INARGERR);
        }
        let rs = self.abi.sig_from(sig).ok_or(SDR_VERIFYERR)?;
        if crypto::verify_e(&c.point, e, &rs) {
            Ok(())
        } else {
            Err(SDR_VERIFYERR)
        }
    }

    /// SDF_GenerateRandom: checks the session.
    pub fn random_check(&self, h: usize) -> Sdr<()> {
        self.session(h).map(|_| ())
    }
}
