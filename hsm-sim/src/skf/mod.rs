//! GM/T 0016 SKF view of the same tokens the PKCS#11 side serves: one device per present,
//! initialized token, one application (named by `[skf] application`), one container per SM2
//! private key. PINs use the token's PINs, counters and lock (`token::verify_pin`).
//!
//! Safe Rust; `ffi` turns C pointers into these calls. State is per process, made at the first
//! SKF call from `HSM_SIM_CONF` (and made again if that variable names another file).

pub mod abi;
#[allow(non_snake_case)]
mod ffi;

use cryptoki_sys::*;
use std::collections::HashMap;
use std::ffi::OsString;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;
use zeroize::Zeroizing;

use crate::config::{Config, Model, TokenSettings, CONF_ENV};
use crate::crypto;
use crate::store::{SlotState, Store};
use crate::token::{self, Who};
use abi::*;

/// Result with a SAR_* code as error.
pub type Sar<T> = Result<T, u32>;

static STATE: Mutex<Option<Skf>> = Mutex::new(None);

/// Runs `f` on the process's SKF state, loading the config first if needed.
pub fn with<T>(f: impl FnOnce(&mut Skf) -> Sar<T>) -> Sar<T> {
    let mut g = STATE.lock().unwrap_or_else(|e| e.into_inner());
    let path = std::env::var_os(CONF_ENV);
    if g.as_ref().map(|s| &s.conf_path) != Some(&path) || g.is_none() {
        *g = Some(Skf::load(path)?);
    }
    match g.as_mut() {
        Some(s) => f(s),
        None => Err(SAR_FAIL),
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
    App {
        dev: usize,
    },
    Con {
        app: usize,
        key: u64,
        id: Vec<u8>,
    },
    /// An SM3 hash (SKF_DigestInit), with Z when a public key was given, and the data
    /// SKF_DigestUpdate has added.
    Hash {
        dev: usize,
        z: Option<[u8; 32]>,
        data: Vec<u8>,
    },
}

#[derive(Debug)]
struct Login {
    who: Who,
    epoch: u64,
    key: Zeroizing<Vec<u8>>,
}

/// One device as listed by SKF_EnumDev.
#[derive(Debug, Clone)]
pub struct DevEntry {
    /// Slot in the store.
    pub slot: u64,
    /// Token serial (trimmed).
    pub serial: String,
    /// SKF device name: the label, ` (serial)` appended if an earlier token has the same label.
    pub name: String,
    /// Not ejected.
    pub present: bool,
    /// Replug counter.
    pub epoch: u64,
}

/// One container: an SM2 private key on the token.
#[derive(Debug, Clone)]
pub struct ConEntry {
    /// Container name.
    pub name: String,
    /// Handle of the private key object.
    pub key: u64,
    /// Its CKA_ID.
    pub id: Vec<u8>,
    /// Its public point 04‖x‖y.
    pub point: Vec<u8>,
}

/// A signature to run outside the state lock (device lock and latency like C_Sign).
#[derive(Debug)]
pub struct SignJob {
    d: Zeroizing<Vec<u8>>,
    e: [u8; 32],
    settings: TokenSettings,
    store: Store,
    slot: u64,
}

impl SignJob {
    /// Signs e; returns r‖s.
    pub fn run(self) -> Sar<[u8; 64]> {
        crate::fault::before_sign(self.settings.sign_fault_file.as_deref());
        let latency = Duration::from_millis(self.settings.sign_latency_ms);
        let _dev = match self.settings.model {
            Model::Ukey => Some(self.store.device(self.slot).map_err(|_| SAR_FAIL)?),
            Model::CipherMachine => None,
        };
        std::thread::sleep(latency);
        crypto::sign_e(&self.d, &self.e).ok_or(SAR_FAIL)
    }
}

/// A device event for SKF_WaitForDevEvent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevEvent {
    /// Device name.
    pub name: String,
    /// EVENT_INSERTED or EVENT_REMOVED.
    pub event: u32,
    serial: String,
    epoch: u64,
}

/// The process's SKF state.
#[derive(Debug)]
pub struct Skf {
    conf_path: Option<OsString>,
    cfg: Config,
    store: Store,
    /// Widths in effect.
    pub abi: Abi,
    handles: HashMap<usize, Handle>,
    next: usize,
    logins: HashMap<u64, Login>,
    /// Present devices as last reported by SKF_WaitForDevEvent: (serial, epoch, name).
    known: Vec<(String, u64, String)>,
}

fn ck_to_sar(rv: CK_RV) -> u32 {
    match rv {
        CKR_PIN_INCORRECT => SAR_PIN_INCORRECT,
        CKR_PIN_LOCKED => SAR_PIN_LOCKED,
        CKR_PIN_LEN_RANGE => SAR_PIN_LEN_RANGE,
        CKR_PIN_INVALID => SAR_PIN_INVALID,
        CKR_USER_PIN_NOT_INITIALIZED => SAR_USER_PIN_NOT_INITIALIZED,
        CKR_USER_NOT_LOGGED_IN => SAR_USER_NOT_LOGGED_IN,
        CKR_TOKEN_NOT_PRESENT | CKR_TOKEN_NOT_RECOGNIZED | CKR_DEVICE_REMOVED => SAR_DEVICE_REMOVED,
        _ => SAR_FAIL,
    }
}

fn io<T>(r: std::io::Result<T>) -> Sar<T> {
    r.map_err(|e| {
        eprintln!("hsm-sim: store error: {e}");
        SAR_FAIL
    })
}

fn who(typ: u64) -> Sar<Who> {
    match typ {
        x if x == ADMIN_TYPE as u64 => Ok(Who::So),
        x if x == USER_TYPE as u64 => Ok(Who::User),
        _ => Err(SAR_USER_TYPE_INVALID),
    }
}

/// SM3(Z ‖ data), or SM3(data) without Z.
fn sm3_with(z: &Option<[u8; 32]>, data: &[u8]) -> [u8; 32] {
    match z {
        Some(z) => crypto::sm3(&[z.as_slice(), data].concat()),
        None => crypto::sm3(data),
    }
}

fn trim(s: &str) -> String {
    s.trim_end_matches([' ', '\0']).to_string()
}

/// Containers of a token: one per SM2 private key, named by CKA_LABEL (or, `by_id`, not),
/// else hex CKA_ID, else `key-<handle>`; a name already taken gets ` (<hex id or handle>)`
/// appended.
pub fn containers(st: &SlotState, key_type: CK_KEY_TYPE, by_id: bool) -> Vec<ConEntry> {
    let mut out: Vec<ConEntry> = Vec::new();
    let Some(t) = &st.token else { return out };
    for o in &t.objects {
        if token::class(o) != Some(CKO_PRIVATE_KEY)
            || token::get_ulong(&o.attrs, CKA_KEY_TYPE) != Some(key_type)
            || o.secret.is_none()
        {
            continue;
        }
        let Some(point) = o.point.clone() else {
            continue;
        };
        let id = o.attrs.get(&CKA_ID).cloned().unwrap_or_default();
        let label = o
            .attrs
            .get(&CKA_LABEL)
            .map(|l| trim(&String::from_utf8_lossy(l)))
            .unwrap_or_default();
        let tag = if id.is_empty() {
            format!("key-{}", o.handle)
        } else {
            hex::encode(&id)
        };
        let mut name = if label.is_empty() || by_id {
            tag.clone()
        } else {
            label
        };
        if out.iter().any(|c| c.name == name) {
            name = format!("{name} ({tag})");
        }
        out.push(ConEntry {
            name,
            key: o.handle,
            id,
            point,
        });
    }
    out
}

impl Skf {
    fn load(path: Option<OsString>) -> Sar<Skf> {
        let cfg = Config::from_env().map_err(|e| {
            eprintln!("hsm-sim: {e}");
            SAR_FAIL
        })?;
        let store = io(Store::open(&cfg.store, cfg.slots, |s| {
            cfg.serial_for_slot(s)
        }))?;
        let mut s = Skf {
            conf_path: path,
            abi: Abi::of(&cfg.skf),
            cfg,
            store,
            handles: HashMap::new(),
            next: 0x5F00_0001,
            logins: HashMap::new(),
            known: Vec::new(),
        };
        s.known = s
            .devices()?
            .into_iter()
            .filter(|d| d.present)
            .map(|d| (d.serial, d.epoch, d.name))
            .collect();
        Ok(s)
    }

    fn settings(&self, slot: u64, st: &SlotState) -> TokenSettings {
        self.cfg.settings(slot, &st.serial)
    }

    /// Every initialized token in slot order, present or not (names do not change on eject).
    pub fn devices(&self) -> Sar<Vec<DevEntry>> {
        let mut out: Vec<DevEntry> = Vec::new();
        for slot in 0..self.cfg.slots {
            let st = io(self.store.read(slot))?;
            let Some(t) = &st.token else { continue };
            let serial = trim(&st.serial);
            let label = trim(&t.label);
            let mut name = if label.is_empty() {
                serial.clone()
            } else {
                label
            };
            if out.iter().any(|d| d.name == name) {
                name = format!("{name} ({serial})");
            }
            out.push(DevEntry {
                slot,
                serial,
                name,
                present: st.present,
                epoch: st.epoch,
            });
        }
        Ok(out)
    }

    /// SKF_EnumDev: names of present devices (all initialized tokens if `present_only` is false).
    pub fn enum_dev(&self, present_only: bool) -> Sar<Vec<String>> {
        Ok(self
            .devices()?
            .into_iter()
            .filter(|d| d.present || !present_only)
            .map(|d| d.name)
            .collect())
    }

    fn new_handle(&mut self, h: Handle) -> usize {
        let n = self.next;
        self.next += 1;
        self.handles.insert(n, h);
        n
    }

    /// SKF_ConnectDev: by device name (or, failing that, by serial).
    pub fn connect(&mut self, name: &str) -> Sar<usize> {
        let devs = self.devices()?;
        let d = devs
            .iter()
            .find(|d| d.name == name)
            .or_else(|| devs.iter().find(|d| d.serial == name.trim()))
            .ok_or(SAR_FILE_NOT_EXIST)?;
        if !d.present {
            return Err(SAR_DEVICE_REMOVED);
        }
        let dev = Dev {
            slot: d.slot,
            epoch: d.epoch,
            serial: d.serial.clone(),
        };
        Ok(self.new_handle(Handle::Dev(dev)))
    }

    /// The device behind a device, application or container handle, checked present and
    /// unchanged since the handle was made.
    fn dev_of(&self, h: usize) -> Sar<(Dev, SlotState)> {
        let d = match self.handles.get(&h) {
            Some(Handle::Dev(d)) => d.clone(),
            Some(Handle::App { dev }) => return self.dev_of(*dev),
            Some(Handle::Con { app, .. }) => return self.dev_of(*app),
            Some(Handle::Hash { dev, .. }) => return self.dev_of(*dev),
            None => return Err(SAR_INVALIDHANDLEERR),
        };
        let st = io(self.store.read(d.slot))?;
        if !st.present || st.epoch != d.epoch || trim(&st.serial) != d.serial || st.token.is_none()
        {
            return Err(SAR_DEVICE_REMOVED);
        }
        Ok((d, st))
    }

    fn is_dev(&self, h: usize) -> Sar<()> {
        match self.handles.get(&h) {
            Some(Handle::Dev(_)) => Ok(()),
            _ => Err(SAR_INVALIDHANDLEERR),
        }
    }

    fn is_app(&self, h: usize) -> Sar<()> {
        match self.handles.get(&h) {
            Some(Handle::App { .. }) => Ok(()),
            _ => Err(SAR_INVALIDHANDLEERR),
        }
    }

    fn con(&self, h: usize) -> Sar<(u64, Vec<u8>)> {
        match self.handles.get(&h) {
            Some(Handle::Con { key, id, .. }) => Ok((*key, id.clone())),
            _ => Err(SAR_INVALIDHANDLEERR),
        }
    }

    /// Removes a handle and everything opened under it; forgets a login when no application
    /// of that device remains open.
    fn close(&mut self, h: usize) {
        let slot = self.dev_slot(h);
        let children: Vec<usize> = self
            .handles
            .iter()
            .filter(|(_, x)| match x {
                Handle::App { dev } | Handle::Hash { dev, .. } => *dev == h,
                Handle::Con { app, .. } => *app == h,
                Handle::Dev(_) => false,
            })
            .map(|(k, _)| *k)
            .collect();
        for c in children {
            self.close(c);
        }
        let was_app = matches!(self.handles.remove(&h), Some(Handle::App { .. }));
        if let (true, Some(slot)) = (was_app, slot) {
            let open = self.handles.keys().any(|k| {
                matches!(self.handles.get(k), Some(Handle::App { .. }))
                    && self.dev_slot(*k) == Some(slot)
            });
            if !open {
                self.logins.remove(&slot);
            }
        }
    }

    fn dev_slot(&self, h: usize) -> Option<u64> {
        match self.handles.get(&h)? {
            Handle::Dev(d) => Some(d.slot),
            Handle::App { dev } | Handle::Hash { dev, .. } => self.dev_slot(*dev),
            Handle::Con { app, .. } => self.dev_slot(*app),
        }
    }

    /// Closes a handle of the given kind; Err(SAR_DEVICE_REMOVED) after closing if the device
    /// is gone.
    fn close_checked(&mut self, h: usize, kind: fn(&Skf, usize) -> Sar<()>) -> Sar<()> {
        kind(self, h)?;
        let r = self.dev_of(h).map(|_| ());
        self.close(h);
        r
    }

    /// SKF_DisConnectDev.
    pub fn disconnect(&mut self, h: usize) -> Sar<()> {
        self.close_checked(h, Skf::is_dev)
    }

    /// SKF_CloseApplication.
    pub fn close_app(&mut self, h: usize) -> Sar<()> {
        self.close_checked(h, Skf::is_app)
    }

    /// SKF_CloseContainer.
    pub fn close_con(&mut self, h: usize) -> Sar<()> {
        self.close_checked(h, |s, h| s.con(h).map(|_| ()))
    }

    /// SKF_DigestInit with SGD_SM3 on a device; a public key blob (and ID) makes the hash
    /// start with Z, as GM/T 0016 has it for SM2 signing.
    pub fn digest_init(
        &mut self,
        h: usize,
        alg: u64,
        blob: Option<&[u8]>,
        id: &[u8],
    ) -> Sar<usize> {
        self.is_dev(h)?;
        self.dev_of(h)?;
        if alg != SGD_SM3 {
            return Err(SAR_NOTSUPPORTYETERR);
        }
        let z = match blob {
            None => None,
            Some(blob) => {
                let point = self.abi.point_from_blob(blob).ok_or(SAR_INVALIDPARAMERR)?;
                Some(crypto::z_value(id, &point).ok_or(SAR_INVALIDPARAMERR)?)
            }
        };
        Ok(self.new_handle(Handle::Hash {
            dev: h,
            z,
            data: Vec::new(),
        }))
    }

    /// SKF_Digest: SM3(Z ‖ data) (or SM3(data)) on a hash handle, in one call.
    pub fn digest(&self, h: usize, data: &[u8]) -> Sar<[u8; 32]> {
        let Some(Handle::Hash { z, .. }) = self.handles.get(&h) else {
            return Err(SAR_INVALIDHANDLEERR);
        };
        self.dev_of(h)?;
        Ok(sm3_with(z, data))
    }

    /// SKF_DigestUpdate: adds `more` to the hash.
    pub fn digest_update(&mut self, h: usize, more: &[u8]) -> Sar<()> {
        self.dev_of(h)?;
        match self.handles.get_mut(&h) {
            Some(Handle::Hash { data, .. }) => {
                data.extend_from_slice(more);
                Ok(())
            }
            _ => Err(SAR_INVALIDHANDLEERR),
        }
    }

    /// SKF_DigestFinal: SM3(Z ‖ everything added).
    pub fn digest_final(&self, h: usize) -> Sar<[u8; 32]> {
        let Some(Handle::Hash { z, data, .. }) = self.handles.get(&h) else {
            return Err(SAR_INVALIDHANDLEERR);
        };
        self.dev_of(h)?;
        Ok(sm3_with(z, data))
    }

    /// SKF_CloseHandle on a hash handle.
    pub fn close_hash(&mut self, h: usize) -> Sar<()> {
        match self.handles.remove(&h) {
            Some(Handle::Hash { .. }) => Ok(()),
            Some(other) => {
                self.handles.insert(h, other);
                Err(SAR_INVALIDHANDLEERR)
            }
            None => Err(SAR_INVALIDHANDLEERR),
        }
    }

    /// SKF_GetDevInfo: the packed DEVINFO bytes.
    pub fn dev_info(&self, h: usize) -> Sar<Vec<u8>> {
        self.is_dev(h)?;
        let (d, st) = self.dev_of(h)?;
        let s = self.settings(d.slot, &st);
        let t = st.token.as_ref().ok_or(SAR_DEVICE_REMOVED)?;
        let used: usize = t
            .objects
            .iter()
            .map(|o| o.attrs.values().map(|v| v.len()).sum::<usize>() + 64)
            .sum();
        let total = 64 * 1024u64;
        Ok(self.abi.devinfo(&DevInfo {
            manufacturer: s.profile.manufacturer.to_string(),
            issuer: "hsm-sim".into(),
            label: trim(&t.label),
            serial: d.serial,
            total_space: total,
            free_space: total.saturating_sub(used as u64),
        }))
    }

    /// SKF_EnumApplication.
    pub fn enum_app(&self, h: usize) -> Sar<Vec<String>> {
        self.is_dev(h)?;
        self.dev_of(h)?;
        Ok(vec![self.cfg.skf.application.clone()])
    }

    /// SKF_OpenApplication.
    pub fn open_app(&mut self, h: usize, name: &str) -> Sar<usize> {
        self.is_dev(h)?;
        self.dev_of(h)?;
        if name != self.cfg.skf.application {
            return Err(SAR_APPLICATION_NOT_EXISTS);
        }
        Ok(self.new_handle(Handle::App { dev: h }))
    }

    fn max_tries(s: &TokenSettings, who: Who) -> u32 {
        match who {
            Who::User => s.user_pin_max_tries,
            Who::So => s.so_pin_max_tries,
        }
    }

    fn remaining(st: &SlotState, s: &TokenSettings, who: Who) -> u64 {
        let fails = st
            .token
            .as_ref()
            .map(|t| match who {
                Who::User => t.user_fails,
                Who::So => t.so_fails,
            })
            .unwrap_or(0);
        Self::max_tries(s, who).saturating_sub(fails) as u64
    }

    /// SKF_GetPINInfo: (max retries, remaining, default PIN). hsm-sim has no "PIN to be
    /// changed" flag, so the last is always false.
    pub fn pin_info(&self, h: usize, typ: u64) -> Sar<(u64, u64, bool)> {
        self.is_app(h)?;
        let who = who(typ)?;
        let (d, st) = self.dev_of(h)?;
        let s = self.settings(d.slot, &st);
        Ok((
            Self::max_tries(&s, who) as u64,
            Self::remaining(&st, &s, who),
            false,
        ))
    }

    /// Runs a PIN check in the store with C_Login's counters; returns (result, tries left).
    fn pin_op<T>(
        &self,
        h: usize,
        who: Who,
        f: impl FnOnce(&mut SlotState, &TokenSettings) -> Result<T, CK_RV>,
    ) -> Sar<(Result<T, u32>, u64, Dev)> {
        let (d, st) = self.dev_of(h)?;
        let s = self.settings(d.slot, &st);
        let (r, left) = io(self.store.update(d.slot, |st| {
            let r = f(st, &s);
            (r, Self::remaining(st, &s, who))
        }))?;
        let r = r.map_err(ck_to_sar).map_err(|e| {
            if e == SAR_PIN_INCORRECT && left == 0 {
                SAR_PIN_LOCKED
            } else {
                e
            }
        });
        Ok((r, left, d))
    }

    /// SKF_VerifyPIN: Ok on success (the application is logged in as that user); on failure
    /// the error and the tries left.
    pub fn verify_pin(&mut self, h: usize, typ: u64, pin: &[u8]) -> Result<(), (u32, u64)> {
        self.is_app(h).map_err(|e| (e, 0))?;
        let who = who(typ).map_err(|e| (e, 0))?;
        let (r, left, d) = self
            .pin_op(h, who, |st, s| token::verify_pin(st, who, pin, s))
            .map_err(|e| (e, 0))?;
        match r {
            Ok(key) => {
                self.logins.insert(
                    d.slot,
                    Login {
                        who,
                        epoch: d.epoch,
                        key,
                    },
                );
                Ok(())
            }
            Err(e) => Err((e, left)),
        }
    }

    /// SKF_ChangePIN.
    pub fn change_pin(
        &mut self,
        h: usize,
        typ: u64,
        old: &[u8],
        new: &[u8],
    ) -> Result<(), (u32, u64)> {
        self.is_app(h).map_err(|e| (e, 0))?;
        let who = who(typ).map_err(|e| (e, 0))?;
        let (r, left, _) = self
            .pin_op(h, who, |st, s| token::set_pin(st, who, old, new, s))
            .map_err(|e| (e, 0))?;
        r.map_err(|e| (e, left))
    }

    /// SKF_UnblockPIN: the SO PIN sets a new user PIN and clears its failure count.
    pub fn unblock_pin(&mut self, h: usize, admin: &[u8], new: &[u8]) -> Result<(), (u32, u64)> {
        self.is_app(h).map_err(|e| (e, 0))?;
        let (r, left, _) = self
            .pin_op(h, Who::So, |st, s| {
                let key = token::verify_pin(st, Who::So, admin, s)?;
                token::init_pin(st, &key, new, s)
            })
            .map_err(|e| (e, 0))?;
        r.map_err(|e| (e, left))
    }

    /// SKF_ClearSecureState: logs the application out.
    pub fn clear_secure_state(&mut self, h: usize) -> Sar<()> {
        self.is_app(h)?;
        let (d, _) = self.dev_of(h)?;
        self.logins.remove(&d.slot);
        Ok(())
    }

    fn key_type(&self, d: &Dev, st: &SlotState) -> CK_KEY_TYPE {
        self.settings(d.slot, st).profile.key_type
    }

    /// SKF_EnumContainer.
    pub fn enum_con(&self, h: usize) -> Sar<Vec<String>> {
        self.is_app(h)?;
        let (d, st) = self.dev_of(h)?;
        Ok(
            containers(&st, self.key_type(&d, &st), self.cfg.skf.containers_by_id)
                .into_iter()
                .map(|c| c.name)
                .collect(),
        )
    }

    /// SKF_OpenContainer: unknown name → SAR_FILE_NOT_EXIST.
    pub fn open_con(&mut self, h: usize, name: &str) -> Sar<usize> {
        self.is_app(h)?;
        let (d, st) = self.dev_of(h)?;
        let c = containers(&st, self.key_type(&d, &st), self.cfg.skf.containers_by_id)
            .into_iter()
            .find(|c| c.name == name)
            .ok_or(SAR_FILE_NOT_EXIST)?;
        Ok(self.new_handle(Handle::Con {
            app: h,
            key: c.key,
            id: c.id,
        }))
    }

    fn con_entry(&self, h: usize) -> Sar<(ConEntry, Dev, SlotState)> {
        let (key, _) = self.con(h)?;
        let (d, st) = self.dev_of(h)?;
        let c = containers(&st, self.key_type(&d, &st), self.cfg.skf.containers_by_id)
            .into_iter()
            .find(|c| c.key == key)
            .ok_or(SAR_KEYNOTFOUNTERR)?;
        Ok((c, d, st))
    }

    /// SKF_GetContainerType: 2 (ECC).
    pub fn con_type(&self, h: usize) -> Sar<u64> {
        self.con_entry(h)?;
        Ok(CONTAINER_ECC as u64)
    }

    /// SKF_ExportPublicKey: the ECCPUBLICKEYBLOB of the signing key (no encryption key pair:
    /// `sign` false → SAR_KEYNOTFOUNTERR).
    pub fn export_pubkey(&self, h: usize, sign: bool) -> Sar<Vec<u8>> {
        let (c, _, _) = self.con_entry(h)?;
        if !sign {
            return Err(SAR_KEYNOTFOUNTERR);
        }
        self.abi.pubkey_blob(&c.point).ok_or(SAR_FAIL)
    }

    /// SKF_ExportCertificate: DER of the CKO_CERTIFICATE with the key's CKA_ID.
    pub fn export_cert(&self, h: usize, sign: bool) -> Sar<Vec<u8>> {
        let (c, _, st) = self.con_entry(h)?;
        if !sign || c.id.is_empty() {
            return Err(SAR_CERTNOTFOUNTERR);
        }
        st.token
            .iter()
            .flat_map(|t| t.objects.iter())
            .find(|o| {
                token::class(o) == Some(CKO_CERTIFICATE) && o.attrs.get(&CKA_ID) == Some(&c.id)
            })
            .and_then(|o| o.attrs.get(&CKA_VALUE).cloned())
            .ok_or(SAR_CERTNOTFOUNTERR)
    }

    /// SKF_ECCSignData, first half: checks and the job to run outside the lock.
    pub fn sign_job(&self, h: usize, e: &[u8]) -> Sar<SignJob> {
        let (c, d, st) = self.con_entry(h)?;
        let e: [u8; 32] = e.try_into().map_err(|_| SAR_INDATALENERR)?;
        let login = self
            .logins
            .get(&d.slot)
            .filter(|l| l.epoch == d.epoch && l.who == Who::User)
            .ok_or(SAR_USER_NOT_LOGGED_IN)?;
        let o = st
            .token
            .iter()
            .flat_map(|t| t.objects.iter())
            .find(|o| o.handle == c.key)
            .ok_or(SAR_KEYNOTFOUNTERR)?;
        let sealed = o.secret.as_ref().ok_or(SAR_KEYNOTFOUNTERR)?;
        // A token re-initialized since the login has another token key.
        let dsc = crypto::open(&login.key, sealed, b"hsm-sim private key")
            .ok_or(SAR_USER_NOT_LOGGED_IN)?;
        Ok(SignJob {
            d: dsc,
            e,
            settings: self.settings(d.slot, &st),
            store: self.store.clone(),
            slot: d.slot,
        })
    }

    /// The next device event relative to what was last reported, if any (not yet consumed).
    pub fn peek_event(&self) -> Sar<Option<DevEvent>> {
        let now: Vec<DevEntry> = self.devices()?.into_iter().filter(|d| d.present).collect();
        for (serial, epoch, name) in &self.known {
            if !now.iter().any(|d| &d.serial == serial && d.epoch == *epoch) {
                return Ok(Some(DevEvent {
                    name: name.clone(),
                    event: EVENT_REMOVED,
                    serial: serial.clone(),
                    epoch: *epoch,
                }));
            }
        }
        for d in now {
            if !self.known.iter().any(|(s, _, _)| s == &d.serial) {
                return Ok(Some(DevEvent {
                    name: d.name,
                    event: EVENT_INSERTED,
                    serial: d.serial,
                    epoch: d.epoch,
                }));
            }
        }
        Ok(None)
    }

    /// Marks an event as reported.
    pub fn commit_event(&mut self, ev: &DevEvent) {
        if ev.event == EVENT_REMOVED {
            self.known
                .retain(|(s, e, _)| !(s == &ev.serial && *e == ev.epoch));
        } else if !self.known.iter().any(|(s, _, _)| s == &ev.serial) {
            self.known
                .push((ev.serial.clone(), ev.epoch, ev.name.clone()));
        }
    }
}

/// Cancellation of SKF_WaitForDevEvent.
#[derive(Debug)]
struct Cancel {
    waiters: usize,
    generation: u64,
    pending: bool,
}

static CANCEL: Mutex<Cancel> = Mutex::new(Cancel {
    waiters: 0,
    generation: 0,
    pending: false,
});
static CANCEL_CV: Condvar = Condvar::new();

fn cancel_lock() -> MutexGuard<'static, Cancel> {
    CANCEL.lock().unwrap_or_else(|e| e.into_inner())
}

/// SKF_CancelWaitForDevEvent: wakes every blocked wait (they answer SAR_NOT_EVENTERR); with
/// none blocked, the next wait returns SAR_NOT_EVENTERR at once.
pub fn cancel_wait() {
    let mut c = cancel_lock();
    c.generation += 1;
    if c.waiters == 0 {
        c.pending = true;
    }
    CANCEL_CV.notify_all();
}

/// SKF_WaitForDevEvent: polls the store every 100 ms until a device is inserted or removed
/// (relative to the last event reported in this process), or the wait is cancelled.
/// `deliver` is given the event and says whether it was delivered (else it is kept).
pub fn wait_event(mut deliver: impl FnMut(Abi, &DevEvent) -> Sar<()>) -> Sar<()> {
    let generation = {
        let mut c = cancel_lock();
        if c.pending {
            c.pending = false;
            return Err(SAR_NOT_EVENTERR);
        }
        c.waiters += 1;
        c.generation
    };
    let done = |r: Sar<()>| {
        cancel_lock().waiters -= 1;
        r
    };
    loop {
        let r = with(|s| match s.peek_event()? {
            Some(ev) => {
                deliver(s.abi, &ev)?;
                s.commit_event(&ev);
                Ok(true)
            }
            None => Ok(false),
        });
        match r {
            Ok(true) => return done(Ok(())),
            Ok(false) => {}
            Err(e) => return done(Err(e)),
        }
        let c = cancel_lock();
        if c.generation != generation {
            drop(c);
            return done(Err(SAR_NOT_EVENTERR));
        }
        let (c, _) = CANCEL_CV
            .wait_timeout(c, Duration::from_millis(100))
            .unwrap_or_else(|e| e.into_inner());
        if c.generation != generation {
            drop(c);
            return done(Err(SAR_NOT_EVENTERR));
        }
    }
}
