//! The module's process-wide state: sessions, login per token, operations in progress.
//! Safe Rust; `ffi` translates C pointers to and from these calls.

use cryptoki_sys::*;
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;
use zeroize::Zeroizing;

use crate::config::{Config, Model, TokenSettings};
use crate::crypto;
use crate::profile::{MechKind, SigEncoding};
use crate::store::{Obj, SlotState, Store};
use crate::token::{self, Rv, Who};

/// First handle of session (non-token) objects.
const SESSION_OBJ_BASE: u64 = 1 << 40;

/// The loaded module, once C_Initialize ran.
static MODULE: Mutex<Option<Module>> = Mutex::new(None);

/// Locks the global state, ignoring poisoning (panics are caught at the boundary).
pub fn global() -> MutexGuard<'static, Option<Module>> {
    MODULE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `f` on the initialized module.
pub fn with<T>(f: impl FnOnce(&mut Module) -> Rv<T>) -> Rv<T> {
    let mut g = global();
    let m = g.as_mut().ok_or(CKR_CRYPTOKI_NOT_INITIALIZED)?;
    f(m)
}

#[derive(Debug)]
struct Login {
    who: Who,
    epoch: u64,
    key: Zeroizing<Vec<u8>>,
}

#[derive(Debug, Clone)]
struct SignOp {
    kind: MechKind,
    key: u64,
    id: Vec<u8>,
    data: Vec<u8>,
}

#[derive(Debug)]
struct Session {
    slot: u64,
    rw: bool,
    epoch: u64,
    find: Option<Vec<u64>>,
    sign: Option<SignOp>,
    verify: Option<SignOp>,
    digest: Option<Vec<u8>>,
}

#[derive(Debug)]
struct SessObj {
    slot: u64,
    session: u64,
    obj: Obj,
}

/// Counting semaphore for a cipher machine's parallel engines.
#[derive(Debug)]
pub struct Engines {
    free: Mutex<usize>,
    cv: Condvar,
}

impl Engines {
    /// `n` engines, all free.
    pub(crate) fn new(n: usize) -> Engines {
        Engines {
            free: Mutex::new(n),
            cv: Condvar::new(),
        }
    }
    pub(crate) fn acquire(&self) {
        let mut n = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *n == 0 {
            n = self.cv.wait(n).unwrap_or_else(|e| e.into_inner());
        }
        *n -= 1;
    }
    pub(crate) fn release(&self) {
        *self.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.cv.notify_one();
    }
}

/// Kinds of multi-call operations a session holds.
#[derive(Debug, Clone, Copy)]
pub enum Op {
    /// C_SignInit…C_Sign.
    Sign,
    /// C_VerifyInit…C_Verify.
    Verify,
    /// C_DigestInit…C_Digest.
    Digest,
}

/// A signature to compute outside the global lock.
#[derive(Debug)]
pub struct SignJob {
    d: Zeroizing<Vec<u8>>,
    e: [u8; 32],
    encoding: SigEncoding,
    settings: TokenSettings,
    store: Store,
    slot: u64,
    engines: Arc<Engines>,
}

impl SignJob {
    /// Runs the signature on the simulated device (latency, serialization), returns the encoded signature.
    pub fn run(self) -> Rv<Vec<u8>> {
        crate::fault::before_sign(self.settings.sign_fault_file.as_deref());
        let latency = Duration::from_millis(self.settings.sign_latency_ms);
        let rs = match self.settings.model {
            Model::Ukey => {
                let _dev = self.store.device(self.slot).map_err(|_| CKR_DEVICE_ERROR)?;
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
        let rs = rs.ok_or(CKR_FUNCTION_FAILED)?;
        Ok(crypto::encode_sig(&rs, self.encoding))
    }
}

/// Token info fields.
#[derive(Debug)]
pub struct TokenInfo {
    /// Label.
    pub label: String,
    /// Manufacturer.
    pub manufacturer: String,
    /// Model.
    pub model: String,
    /// Serial.
    pub serial: String,
    /// Flags.
    pub flags: CK_FLAGS,
    /// Sessions of this process on the token.
    pub sessions: u64,
    /// R/W sessions.
    pub rw_sessions: u64,
    /// PIN length limits.
    pub min_pin: u64,
    /// PIN length limits.
    pub max_pin: u64,
}

/// Result of reading one attribute.
#[derive(Debug)]
pub enum Attr {
    /// Its value.
    Value(Vec<u8>),
    /// Exists but may not be read.
    Sensitive,
    /// Not an attribute of this object.
    Invalid,
}

/// The module.
#[derive(Debug)]
pub struct Module {
    cfg: Config,
    store: Store,
    sessions: HashMap<u64, Session>,
    next_session: u64,
    logins: HashMap<u64, Login>,
    sobjs: HashMap<u64, SessObj>,
    next_sobj: u64,
    engines: HashMap<u64, Arc<Engines>>,
}

/// C_Initialize.
pub fn initialize() -> Rv<()> {
    let mut g = global();
    if g.is_some() {
        return Err(CKR_CRYPTOKI_ALREADY_INITIALIZED);
    }
    let cfg = Config::from_env().map_err(|e| {
        eprintln!("hsm-sim: {e}");
        CKR_GENERAL_ERROR
    })?;
    let store = Store::open(&cfg.store, cfg.slots, |s| cfg.serial_for_slot(s)).map_err(|e| {
        eprintln!("hsm-sim: cannot open store {}: {e}", cfg.store.display());
        CKR_GENERAL_ERROR
    })?;
    *g = Some(Module {
        cfg,
        store,
        sessions: HashMap::new(),
        next_session: 1,
        logins: HashMap::new(),
        sobjs: HashMap::new(),
        next_sobj: SESSION_OBJ_BASE,
        engines: HashMap::new(),
    });
    Ok(())
}

/// C_Finalize.
pub fn finalize() -> Rv<()> {
    let mut g = global();
    if g.take().is_none() {
        return Err(CKR_CRYPTOKI_NOT_INITIALIZED);
    }
    Ok(())
}

fn io<T>(r: std::io::Result<T>) -> Rv<T> {
    r.map_err(|e| {
        eprintln!("hsm-sim: store error: {e}");
        CKR_DEVICE_ERROR
    })
}

impl Module {
    fn check_slot(&self, slot: u64) -> Rv<()> {
        if slot < self.cfg.slots {
            Ok(())
        } else {
            Err(CKR_SLOT_ID_INVALID)
        }
    }

    fn settings(&self, slot: u64, st: &SlotState) -> TokenSettings {
        self.cfg.settings(slot, &st.serial)
    }

    /// Reads a slot that must hold a present token.
    fn present(&mut self, slot: u64) -> Rv<SlotState> {
        self.check_slot(slot)?;
        let st = io(self.store.read(slot))?;
        self.drop_stale(slot, &st);
        if !st.present {
            return Err(CKR_TOKEN_NOT_PRESENT);
        }
        Ok(st)
    }

    /// Forgets logins and session objects from before an eject.
    fn drop_stale(&mut self, slot: u64, st: &SlotState) {
        if let Some(l) = self.logins.get(&slot) {
            if l.epoch != st.epoch || !st.present || st.token.is_none() {
                self.logins.remove(&slot);
            }
        }
    }

    /// Validates a session: alive, token present and not replugged since it was opened.
    fn session(&mut self, h: u64) -> Rv<(u64, SlotState)> {
        let s = self.sessions.get(&h).ok_or(CKR_SESSION_HANDLE_INVALID)?;
        let (slot, epoch) = (s.slot, s.epoch);
        let st = io(self.store.read(slot))?;
        self.drop_stale(slot, &st);
        if !st.present || st.epoch != epoch || st.token.is_none() {
            self.remove_session(h);
            return Err(CKR_DEVICE_REMOVED);
        }
        Ok((slot, st))
    }

    fn sess_mut(&mut self, h: u64) -> Rv<&mut Session> {
        self.sessions.get_mut(&h).ok_or(CKR_SESSION_HANDLE_INVALID)
    }

    fn remove_session(&mut self, h: u64) {
        if let Some(s) = self.sessions.remove(&h) {
            self.sobjs.retain(|_, o| o.session != h);
            if !self.sessions.values().any(|o| o.slot == s.slot) {
                self.logins.remove(&s.slot);
            }
        }
    }

    fn login(&self, slot: u64, st: &SlotState) -> Option<&Login> {
        self.logins.get(&slot).filter(|l| l.epoch == st.epoch)
    }

    fn user_key(&self, slot: u64, st: &SlotState) -> Option<&[u8]> {
        self.login(slot, st)
            .filter(|l| l.who == Who::User)
            .map(|l| l.key.as_slice())
    }

    /// C_GetSlotList.
    pub fn slot_list(&mut self, present_only: bool) -> Rv<Vec<u64>> {
        let mut v = Vec::new();
        for slot in 0..self.cfg.slots {
            if !present_only || io(self.store.read(slot))?.present {
                v.push(slot);
            }
        }
        Ok(v)
    }

    /// C_GetSlotInfo: (present, manufacturer).
    pub fn slot_info(&mut self, slot: u64) -> Rv<(bool, &'static str)> {
        self.check_slot(slot)?;
        let st = io(self.store.read(slot))?;
        Ok((st.present, self.settings(slot, &st).profile.manufacturer))
    }

    /// C_GetTokenInfo.
    pub fn token_info(&mut self, slot: u64) -> Rv<TokenInfo> {
        let st = self.present(slot)?;
        let s = self.settings(slot, &st);
        let mine: Vec<&Session> = self
            .sessions
            .values()
            .filter(|x| x.slot == slot && x.epoch == st.epoch)
            .collect();
        Ok(TokenInfo {
            label: st
                .token
                .as_ref()
                .map(|t| t.label.clone())
                .unwrap_or_default(),
            manufacturer: s.profile.manufacturer.to_string(),
            model: match s.model {
                Model::Ukey => "SM2 UKey".into(),
                Model::CipherMachine => "SM2 CipherMach".into(),
            },
            serial: st.serial.clone(),
            flags: token::token_flags(&st, &s),
            sessions: mine.len() as u64,
            rw_sessions: mine.iter().filter(|x| x.rw).count() as u64,
            min_pin: s.min_pin_len as u64,
            max_pin: s.max_pin_len as u64,
        })
    }

    /// C_GetMechanismList.
    pub fn mech_list(&mut self, slot: u64) -> Rv<Vec<CK_MECHANISM_TYPE>> {
        let st = self.present(slot)?;
        Ok(self
            .settings(slot, &st)
            .profile
            .mechs
            .iter()
            .map(|(m, _)| *m)
            .collect())
    }

    /// C_GetMechanismInfo: (min key bits, max key bits, flags).
    pub fn mech_info(&mut self, slot: u64, mech: CK_MECHANISM_TYPE) -> Rv<(u64, u64, CK_FLAGS)> {
        let st = self.present(slot)?;
        let kind = self
            .settings(slot, &st)
            .profile
            .kind(mech)
            .ok_or(CKR_MECHANISM_INVALID)?;
        Ok(match kind {
            MechKind::KeyGen => (256, 256, CKF_HW | CKF_GENERATE_KEY_PAIR),
            MechKind::SignRaw | MechKind::SignSm3 => (256, 256, CKF_HW | CKF_SIGN | CKF_VERIFY),
            MechKind::Digest => (0, 0, CKF_HW | CKF_DIGEST),
        })
    }

    /// C_InitToken.
    pub fn init_token(&mut self, slot: u64, so_pin: &[u8], label: &str) -> Rv<()> {
        let st = self.present(slot)?;
        if self.sessions.values().any(|s| s.slot == slot) {
            return Err(CKR_SESSION_EXISTS);
        }
        let s = self.settings(slot, &st);
        io(self
            .store
            .update(slot, |st| token::init_token(st, so_pin, label, &s)))?
    }

    /// C_OpenSession.
    pub fn open_session(&mut self, slot: u64, flags: CK_FLAGS) -> Rv<u64> {
        if flags & CKF_SERIAL_SESSION == 0 {
            return Err(CKR_SESSION_PARALLEL_NOT_SUPPORTED);
        }
        let st = self.present(slot)?;
        if st.token.is_none() {
            return Err(CKR_TOKEN_NOT_RECOGNIZED);
        }
        let rw = flags & CKF_RW_SESSION != 0;
        if !rw && self.login(slot, &st).map(|l| l.who) == Some(Who::So) {
            return Err(CKR_SESSION_READ_WRITE_SO_EXISTS);
        }
        let h = self.next_session;
        self.next_session += 1;
        self.sessions.insert(
            h,
            Session {
                slot,
                rw,
                epoch: st.epoch,
                find: None,
                sign: None,
                verify: None,
                digest: None,
            },
        );
        Ok(h)
    }

    /// C_CloseSession.
    pub fn close_session(&mut self, h: u64) -> Rv<()> {
        if !self.sessions.contains_key(&h) {
            return Err(CKR_SESSION_HANDLE_INVALID);
        }
        self.remove_session(h);
        Ok(())
    }

    /// C_CloseAllSessions.
    pub fn close_all(&mut self, slot: u64) -> Rv<()> {
        self.check_slot(slot)?;
        let hs: Vec<u64> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.slot == slot)
            .map(|(h, _)| *h)
            .collect();
        for h in hs {
            self.remove_session(h);
        }
        self.logins.remove(&slot);
        Ok(())
    }

    /// C_GetSessionInfo: (slot, state, flags).
    pub fn session_info(&mut self, h: u64) -> Rv<(u64, CK_STATE, CK_FLAGS)> {
        let (slot, st) = self.session(h)?;
        let who = self.login(slot, &st).map(|l| l.who);
        let rw = self.sess_mut(h)?.rw;
        let state = match (rw, who) {
            (false, None) => CKS_RO_PUBLIC_SESSION,
            (false, Some(_)) => CKS_RO_USER_FUNCTIONS,
            (true, None) => CKS_RW_PUBLIC_SESSION,
            (true, Some(Who::User)) => CKS_RW_USER_FUNCTIONS,
            (true, Some(Who::So)) => CKS_RW_SO_FUNCTIONS,
        };
        let flags = CKF_SERIAL_SESSION | if rw { CKF_RW_SESSION } else { 0 };
        Ok((slot, state, flags))
    }

    /// C_Login.
    pub fn login_as(&mut self, h: u64, user: CK_USER_TYPE, pin: &[u8]) -> Rv<()> {
        let (slot, st) = self.session(h)?;
        let who = match user {
            CKU_USER => Who::User,
            CKU_SO => Who::So,
            CKU_CONTEXT_SPECIFIC => return Err(CKR_OPERATION_NOT_INITIALIZED),
            _ => return Err(CKR_USER_TYPE_INVALID),
        };
        if let Some(l) = self.login(slot, &st) {
            return Err(if l.who == who {
                CKR_USER_ALREADY_LOGGED_IN
            } else {
                CKR_USER_ANOTHER_ALREADY_LOGGED_IN
            });
        }
        if who == Who::So && self.sessions.values().any(|s| s.slot == slot && !s.rw) {
            return Err(CKR_SESSION_READ_ONLY_EXISTS);
        }
        let s = self.settings(slot, &st);
        let key = io(self
            .store
            .update(slot, |st| token::verify_pin(st, who, pin, &s)))??;
        self.logins.insert(
            slot,
            Login {
                who,
                epoch: st.epoch,
                key,
            },
        );
        Ok(())
    }

    /// C_Logout.
    pub fn logout(&mut self, h: u64) -> Rv<()> {
        let (slot, st) = self.session(h)?;
        if self.login(slot, &st).is_none() {
            return Err(CKR_USER_NOT_LOGGED_IN);
        }
        self.logins.remove(&slot);
        Ok(())
    }

    /// C_InitPIN (SO logged in, R/W session).
    pub fn init_pin(&mut self, h: u64, pin: &[u8]) -> Rv<()> {
        let (slot, st) = self.session(h)?;
        if !self.sess_mut(h)?.rw {
            return Err(CKR_SESSION_READ_ONLY);
        }
        let key = match self.login(slot, &st) {
            Some(l) if l.who == Who::So => Zeroizing::new(l.key.to_vec()),
            _ => return Err(CKR_USER_NOT_LOGGED_IN),
        };
        let s = self.settings(slot, &st);
        io(self
            .store
            .update(slot, |st| token::init_pin(st, &key, pin, &s)))?
    }

    /// C_SetPIN: the SO's PIN if the SO is logged in, else the user's.
    pub fn set_pin(&mut self, h: u64, old: &[u8], new: &[u8]) -> Rv<()> {
        let (slot, st) = self.session(h)?;
        if !self.sess_mut(h)?.rw {
            return Err(CKR_SESSION_READ_ONLY);
        }
        let who = match self.login(slot, &st) {
            Some(l) if l.who == Who::So => Who::So,
            _ => Who::User,
        };
        let s = self.settings(slot, &st);
        io(self
            .store
            .update(slot, |st| token::set_pin(st, who, old, new, &s)))?
    }

    /// Objects visible to a session, by handle.
    fn visible(&self, slot: u64, st: &SlotState) -> Vec<Obj> {
        let logged = self.user_key(slot, st).is_some();
        let token_objs = st.token.iter().flat_map(|t| t.objects.iter());
        let sess_objs = self
            .sobjs
            .values()
            .filter(|o| o.slot == slot && self.sessions.contains_key(&o.session))
            .map(|o| &o.obj);
        token_objs
            .chain(sess_objs)
            .filter(|o| logged || !token::is_private(o))
            .cloned()
            .collect()
    }

    fn object(&self, slot: u64, st: &SlotState, oh: u64) -> Rv<Obj> {
        self.visible(slot, st)
            .into_iter()
            .find(|o| o.handle == oh)
            .ok_or(CKR_OBJECT_HANDLE_INVALID)
    }

    /// Stores a new object as a token or session object, enforcing login and R/W rules.
    fn store_object(&mut self, h: u64, slot: u64, st: &SlotState, mut o: Obj) -> Rv<u64> {
        let on_token = token::get_bool(&o.attrs, CKA_TOKEN).unwrap_or(false);
        if token::is_private(&o) && self.user_key(slot, st).is_none() {
            return Err(CKR_USER_NOT_LOGGED_IN);
        }
        if on_token {
            if !self.sess_mut(h)?.rw {
                return Err(CKR_SESSION_READ_ONLY);
            }
            io(self.store.update(slot, |st| match st.token.as_mut() {
                Some(t) => Ok(token::add_object(t, o)),
                None => Err(CKR_DEVICE_REMOVED),
            }))?
        } else {
            o.handle = self.next_sobj;
            self.next_sobj += 1;
            let oh = o.handle;
            self.sobjs.insert(
                oh,
                SessObj {
                    slot,
                    session: h,
                    obj: o,
                },
            );
            Ok(oh)
        }
    }

    /// C_CreateObject.
    pub fn create_object(&mut self, h: u64, tmpl: &[(u64, Vec<u8>)]) -> Rv<u64> {
        let (slot, st) = self.session(h)?;
        let kt = self.settings(slot, &st).profile.key_type;
        let o = token::object_from_template(self.user_key(slot, &st), kt, tmpl)?;
        self.store_object(h, slot, &st, o)
    }

    /// C_DestroyObject.
    pub fn destroy_object(&mut self, h: u64, oh: u64) -> Rv<()> {
        let (slot, st) = self.session(h)?;
        // Must exist and be visible to this session.
        self.object(slot, &st, oh)?;
        if oh >= SESSION_OBJ_BASE {
            self.sobjs.remove(&oh);
            return Ok(());
        }
        if !self.sess_mut(h)?.rw {
            return Err(CKR_SESSION_READ_ONLY);
        }
        io(self.store.update(slot, |st| {
            if let Some(t) = st.token.as_mut() {
                t.objects.retain(|x| x.handle != oh);
            }
        }))
    }

    /// C_FindObjectsInit.
    pub fn find_init(&mut self, h: u64, tmpl: &[(u64, Vec<u8>)]) -> Rv<()> {
        let (slot, st) = self.session(h)?;
        if self.sess_mut(h)?.find.is_some() {
            return Err(CKR_OPERATION_ACTIVE);
        }
        let mut found: Vec<u64> = self
            .visible(slot, &st)
            .iter()
            .filter(|o| token::matches(o, tmpl))
            .map(|o| o.handle)
            .collect();
        found.reverse();
        self.sess_mut(h)?.find = Some(found);
        Ok(())
    }

    /// C_FindObjects.
    pub fn find(&mut self, h: u64, max: usize) -> Rv<Vec<u64>> {
        self.session(h)?;
        let f = self
            .sess_mut(h)?
            .find
            .as_mut()
            .ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        let mut out = Vec::new();
        while out.len() < max {
            match f.pop() {
                Some(x) => out.push(x),
                None => break,
            }
        }
        Ok(out)
    }

    /// C_FindObjectsFinal.
    pub fn find_final(&mut self, h: u64) -> Rv<()> {
        self.session(h)?;
        let s = self.sess_mut(h)?;
        s.find.take().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        Ok(())
    }

    /// C_GetAttributeValue: one result per requested type.
    pub fn get_attrs(&mut self, h: u64, oh: u64, types: &[u64]) -> Rv<Vec<Attr>> {
        let (slot, st) = self.session(h)?;
        let o = self.object(slot, &st, oh)?;
        Ok(types
            .iter()
            .map(|t| {
                if *t == CKA_VALUE && o.secret.is_some() {
                    Attr::Sensitive
                } else {
                    o.attrs
                        .get(t)
                        .map(|v| Attr::Value(v.clone()))
                        .unwrap_or(Attr::Invalid)
                }
            })
            .collect())
    }

    /// C_SetAttributeValue.
    pub fn set_attrs(&mut self, h: u64, oh: u64, tmpl: &[(u64, Vec<u8>)]) -> Rv<()> {
        let (slot, st) = self.session(h)?;
        let o = self.object(slot, &st, oh)?;
        if token::get_bool(&o.attrs, CKA_MODIFIABLE) == Some(false) {
            return Err(CKR_ATTRIBUTE_READ_ONLY);
        }
        if tmpl.iter().any(|(t, v)| token::read_only(&o, *t, v)) {
            return Err(CKR_ATTRIBUTE_READ_ONLY);
        }
        let apply = |o: &mut Obj| {
            for (t, v) in tmpl {
                o.attrs.insert(*t, v.clone());
            }
        };
        if oh >= SESSION_OBJ_BASE {
            if let Some(so) = self.sobjs.get_mut(&oh) {
                apply(&mut so.obj);
            }
            return Ok(());
        }
        if !self.sess_mut(h)?.rw {
            return Err(CKR_SESSION_READ_ONLY);
        }
        io(self.store.update(slot, |st| {
            if let Some(x) = st
                .token
                .as_mut()
                .and_then(|t| t.objects.iter_mut().find(|x| x.handle == oh))
            {
                apply(x);
            }
        }))
    }

    /// C_GenerateKeyPair: (public, private) handles.
    pub fn generate_keypair(
        &mut self,
        h: u64,
        mech: CK_MECHANISM_TYPE,
        pub_t: &[(u64, Vec<u8>)],
        priv_t: &[(u64, Vec<u8>)],
    ) -> Rv<(u64, u64)> {
        let (slot, st) = self.session(h)?;
        let s = self.settings(slot, &st);
        if s.profile.kind(mech) != Some(MechKind::KeyGen) {
            return Err(CKR_MECHANISM_INVALID);
        }
        let key = Zeroizing::new(
            self.user_key(slot, &st)
                .ok_or(CKR_USER_NOT_LOGGED_IN)?
                .to_vec(),
        );
        let (pubk, privk) = token::keypair_objects(&key, s.profile.key_type, mech, pub_t, priv_t)?;
        let _dev = match s.model {
            Model::Ukey => Some(io(self.store.device(slot))?),
            Model::CipherMachine => None,
        };
        let ph = self.store_object(h, slot, &st, pubk)?;
        let kh = self.store_object(h, slot, &st, privk)?;
        Ok((ph, kh))
    }

    fn sign_op(
        &mut self,
        h: u64,
        mech: CK_MECHANISM_TYPE,
        param: Option<Vec<u8>>,
        key: u64,
        sign: bool,
    ) -> Rv<()> {
        let (slot, st) = self.session(h)?;
        let s = self.settings(slot, &st);
        {
            let sess = self.sess_mut(h)?;
            if (sign && sess.sign.is_some()) || (!sign && sess.verify.is_some()) {
                return Err(CKR_OPERATION_ACTIVE);
            }
        }
        let kind = match s.profile.kind(mech) {
            Some(k @ (MechKind::SignRaw | MechKind::SignSm3)) => k,
            _ => return Err(CKR_MECHANISM_INVALID),
        };
        if sign && self.user_key(slot, &st).is_none() {
            return Err(CKR_USER_NOT_LOGGED_IN);
        }
        let o = self
            .object(slot, &st, key)
            .map_err(|_| CKR_KEY_HANDLE_INVALID)?;
        if token::get_ulong(&o.attrs, CKA_KEY_TYPE) != Some(s.profile.key_type) {
            return Err(CKR_KEY_TYPE_INCONSISTENT);
        }
        let class = token::class(&o);
        let allowed = if sign {
            class == Some(CKO_PRIVATE_KEY) && token::get_bool(&o.attrs, CKA_SIGN) == Some(true)
        } else {
            matches!(class, Some(CKO_PUBLIC_KEY) | Some(CKO_PRIVATE_KEY))
                && token::get_bool(&o.attrs, CKA_VERIFY).unwrap_or(true)
        };
        if !allowed {
            return Err(CKR_KEY_FUNCTION_NOT_PERMITTED);
        }
        if kind == MechKind::SignRaw && param.as_ref().is_some_and(|p| !p.is_empty()) {
            return Err(CKR_MECHANISM_PARAM_INVALID);
        }
        let id = param
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| crypto::DEFAULT_ID.to_vec());
        let op = SignOp {
            kind,
            key,
            id,
            data: Vec::new(),
        };
        let sess = self.sess_mut(h)?;
        if sign {
            sess.sign = Some(op);
        } else {
            sess.verify = Some(op);
        }
        Ok(())
    }

    /// C_SignInit.
    pub fn sign_init(
        &mut self,
        h: u64,
        mech: CK_MECHANISM_TYPE,
        param: Option<Vec<u8>>,
        key: u64,
    ) -> Rv<()> {
        self.sign_op(h, mech, param, key, true)
    }

    /// C_VerifyInit.
    pub fn verify_init(
        &mut self,
        h: u64,
        mech: CK_MECHANISM_TYPE,
        param: Option<Vec<u8>>,
        key: u64,
    ) -> Rv<()> {
        self.sign_op(h, mech, param, key, false)
    }

    /// Maximum signature length of the active sign operation.
    pub fn sign_len(&mut self, h: u64) -> Rv<usize> {
        let (slot, st) = self.session(h)?;
        self.sess_mut(h)?
            .sign
            .as_ref()
            .ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        Ok(match self.settings(slot, &st).encoding {
            SigEncoding::Raw => 64,
            SigEncoding::Der => 72,
        })
    }

    /// Appends data to a multi-part sign or verify (SM3-with-SM2 only).
    pub fn update(&mut self, h: u64, data: &[u8], sign: bool) -> Rv<()> {
        self.session(h)?;
        let s = self.sess_mut(h)?;
        let op = if sign {
            s.sign.as_mut()
        } else {
            s.verify.as_mut()
        }
        .ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        if op.kind != MechKind::SignSm3 {
            return Err(CKR_FUNCTION_NOT_SUPPORTED);
        }
        op.data.extend_from_slice(data);
        Ok(())
    }

    fn e_of(&self, op: &SignOp, point: &[u8], data: &[u8]) -> Rv<[u8; 32]> {
        match op.kind {
            MechKind::SignRaw => data.try_into().map_err(|_| CKR_DATA_LEN_RANGE),
            _ => crypto::e_value(&op.id, point, data).ok_or(CKR_FUNCTION_FAILED),
        }
    }

    /// Prepares a signature over `data` (None: over the multi-part data) to run outside the lock.
    pub fn sign_job(&mut self, h: u64, data: Option<&[u8]>) -> Rv<SignJob> {
        let (slot, st) = self.session(h)?;
        let op = self
            .sess_mut(h)?
            .sign
            .clone()
            .ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        let res = (|| {
            let key = self.user_key(slot, &st).ok_or(CKR_USER_NOT_LOGGED_IN)?;
            let o = self
                .object(slot, &st, op.key)
                .map_err(|_| CKR_KEY_HANDLE_INVALID)?;
            let sealed = o.secret.as_ref().ok_or(CKR_KEY_HANDLE_INVALID)?;
            let d = crypto::open(key, sealed, b"hsm-sim private key").ok_or(CKR_DEVICE_ERROR)?;
            let point = o.point.as_deref().ok_or(CKR_DEVICE_ERROR)?;
            let e = self.e_of(&op, point, data.unwrap_or(&op.data))?;
            let s = self.settings(slot, &st);
            let engines = self
                .engines
                .entry(slot)
                .or_insert_with(|| {
                    Arc::new(Engines {
                        free: Mutex::new(s.parallel),
                        cv: Condvar::new(),
                    })
                })
                .clone();
            Ok(SignJob {
                d,
                e,
                encoding: s.encoding,
                settings: s,
                store: self.store.clone(),
                slot,
                engines,
            })
        })();
        if res.is_err() {
            self.end_sign(h);
        }
        res
    }

    /// Ends the sign operation of a session (if it still exists).
    pub fn end_sign(&mut self, h: u64) {
        self.end(h, Op::Sign);
    }

    /// Ends an operation of a session (if it still exists).
    pub fn end(&mut self, h: u64, op: Op) {
        if let Some(s) = self.sessions.get_mut(&h) {
            match op {
                Op::Sign => s.sign = None,
                Op::Verify => s.verify = None,
                Op::Digest => s.digest = None,
            }
        }
    }

    /// C_Verify / C_VerifyFinal (data None: the multi-part data).
    pub fn verify(&mut self, h: u64, data: Option<&[u8]>, sig: &[u8]) -> Rv<()> {
        let (slot, st) = self.session(h)?;
        let op = self
            .sess_mut(h)?
            .verify
            .take()
            .ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        let o = self
            .object(slot, &st, op.key)
            .map_err(|_| CKR_KEY_HANDLE_INVALID)?;
        let point = match &o.point {
            Some(p) => p.clone(),
            None => o
                .attrs
                .get(&CKA_EC_POINT)
                .and_then(|p| crypto::point_from_attr(p))
                .ok_or(CKR_KEY_HANDLE_INVALID)?,
        };
        let e = self.e_of(&op, &point, data.unwrap_or(&op.data))?;
        let rs = crypto::decode_sig(sig).ok_or(CKR_SIGNATURE_LEN_RANGE)?;
        if crypto::verify_e(&point, &e, &rs) {
            Ok(())
        } else {
            Err(CKR_SIGNATURE_INVALID)
        }
    }

    /// C_DigestInit.
    pub fn digest_init(&mut self, h: u64, mech: CK_MECHANISM_TYPE) -> Rv<()> {
        let (slot, st) = self.session(h)?;
        if self.settings(slot, &st).profile.kind(mech) != Some(MechKind::Digest) {
            return Err(CKR_MECHANISM_INVALID);
        }
        let s = self.sess_mut(h)?;
        if s.digest.is_some() {
            return Err(CKR_OPERATION_ACTIVE);
        }
        s.digest = Some(Vec::new());
        Ok(())
    }

    /// C_DigestUpdate.
    pub fn digest_update(&mut self, h: u64, data: &[u8]) -> Rv<()> {
        self.session(h)?;
        self.sess_mut(h)?
            .digest
            .as_mut()
            .ok_or(CKR_OPERATION_NOT_INITIALIZED)?
            .extend_from_slice(data);
        Ok(())
    }

    /// C_Digest / C_DigestFinal: with `cap` None only checks an operation is active.
    pub fn digest(&mut self, h: u64, data: Option<&[u8]>, cap: Option<usize>) -> Rv<[u8; 32]> {
        self.session(h)?;
        let s = self.sess_mut(h)?;
        let buf = s.digest.as_ref().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        let out = crypto::sm3(data.unwrap_or(buf));
        if cap.is_some_and(|c| c >= 32) {
            s.digest = None;
        }
        Ok(out)
    }

    /// C_GenerateRandom.
    pub fn random(&mut self, h: u64, n: usize) -> Rv<Vec<u8>> {
        self.session(h)?;
        Ok(crypto::random(n))
    }
}
