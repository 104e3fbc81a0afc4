//! The token owner: one per token (found by serial), owning its sessions and login state.
//!
//! A UKey gets one session, a cipher machine a pool. PKCS#11 login state is per token and per
//! process, so a login on any pooled session applies to all of them; the pool keeps its sessions
//! open so the login lasts. When the token goes away every session is dropped and the next call
//! finds the token again by serial, in whatever slot it now sits.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;

use super::backend::DeviceBackend;
use super::error::{DeviceError, DeviceResult, TriesLeft};
use super::module::Module;
use super::pin::Pin;
use super::token::TokenInfo;

/// Sessions and login state of one token.
#[derive(Debug)]
pub struct TokenOwner {
    module: Arc<Module>,
    serial: String,
    capacity: usize,
    pool: Mutex<Pool>,
    returned: Condvar,
    /// Held across every PIN operation (login, change, unblock), from the final-try check to
    /// the device's answer: two concurrent attempts cannot both pass the check and spend the
    /// last try between them.
    pin_ops: Mutex<()>,
    /// Set when the device speaks another interface than PKCS#11 (SKF, SDF): every operation
    /// goes through it instead of the PKCS#11 session pool.
    backend: Option<Box<dyn DeviceBackend>>,
}

#[derive(Debug, Default)]
struct Pool {
    slot: Option<Slot>,
    idle: Vec<Session>,
    open: usize,
    generation: u64,
    /// The module's loss count when these sessions were opened (see [`Module::losses`]).
    losses: u64,
}

/// A session borrowed from the pool; returned on drop unless the token went away meanwhile.
pub(crate) struct Lease<'a> {
    owner: &'a TokenOwner,
    session: Option<Session>,
    /// The pool generation the session belongs to; bumped on every reset.
    pub(crate) generation: u64,
    pub(crate) slot: Slot,
}

impl Lease<'_> {
    pub(crate) fn session(&self) -> &Session {
        self.session.as_ref().expect("session present until drop")
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            let mut pool = self.owner.lock();
            if pool.generation == self.generation {
                pool.idle.push(session);
            } else {
                drop(pool);
                drop(session); // from before a reset: close it
            }
            self.owner.returned.notify_one();
        }
    }
}

/// Whether a login may spend the token's last PIN try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalTry {
    /// Refuse when the token reports final try (automatic and unconfirmed logins).
    Refuse,
    /// A person saw the warning and confirmed.
    Confirmed,
}

impl FinalTry {
    /// `Confirmed` when a person confirmed spending the last try, else `Refuse`.
    pub fn confirmed_if(confirmed: bool) -> Self {
        if confirmed {
            FinalTry::Confirmed
        } else {
            FinalTry::Refuse
        }
    }
}

impl TokenOwner {
    /// An owner for the token with this serial on `module`; sessions open on first use.
    pub fn new(module: Arc<Module>, serial: impl Into<String>) -> Self {
        let serial = serial.into();
        let backend = module.backend_for(&serial);
        let capacity = module.sessions_per_token();
        let losses = module.losses();
        Self {
            module,
            serial,
            capacity,
            pool: Mutex::new(Pool {
                losses,
                ..Pool::default()
            }),
            returned: Condvar::new(),
            pin_ops: Mutex::new(()),
            backend,
        }
    }

    /// The token's serial number.
    pub fn serial(&self) -> &str {
        &self.serial
    }

    /// The module the token sits in.
    pub fn module(&self) -> &Arc<Module> {
        &self.module
    }

    /// How many sessions this owner may hold at once.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Counts resets: changes whenever the token's sessions were dropped after a removal, or
    /// its module's library was lost.
    pub fn generation(&self) -> u64 {
        match &self.backend {
            Some(backend) => backend.generation(),
            None => {
                let mut pool = self.lock();
                let dead = self.forget_lost_sessions(&mut pool);
                let generation = pool.generation;
                drop(pool);
                drop(dead);
                generation
            }
        }
    }

    /// After the module's library was lost, its sessions belong to a client that is gone:
    /// takes them out of the pool (returned, to be dropped after the pool lock) and counts a
    /// reset, once per loss.
    fn forget_lost_sessions(&self, pool: &mut Pool) -> Vec<Session> {
        let losses = self.module.losses();
        if pool.losses == losses {
            return Vec::new();
        }
        pool.losses = losses;
        self.drop_sessions(pool)
    }

    /// The interface other than PKCS#11 the device is driven through, if any.
    pub(crate) fn backend(&self) -> Option<&dyn DeviceBackend> {
        self.backend.as_deref()
    }

    /// Sessions not lent out now (idle, or not yet opened): how many more signatures the token
    /// could make at once.
    pub fn free_sessions(&self) -> usize {
        let pool = self.lock();
        self.capacity - (pool.open - pool.idle.len())
    }

    /// Sessions open now (idle and lent out); zero after a reset until the next use.
    pub fn open_sessions(&self) -> usize {
        self.lock().open
    }

    fn lock(&self) -> MutexGuard<'_, Pool> {
        // A panic while holding the pool lock leaves nothing half-written worth refusing over.
        self.pool.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Maps a cryptoki error for this token.
    pub(crate) fn error(&self, e: cryptoki::error::Error) -> DeviceError {
        self.module.error(e, &self.serial)
    }

    /// Drops every session and with them the login: after a removal, or to log out at once.
    pub fn reset(&self) {
        if let Some(backend) = &self.backend {
            backend.reset();
        }
        let mut pool = self.lock();
        let idle = self.drop_sessions(&mut pool);
        drop(pool);
        drop(idle);
    }

    /// Forgets the pool's sessions and counts a reset; returns the idle sessions, to be
    /// closed after the pool lock.
    fn drop_sessions(&self, pool: &mut Pool) -> Vec<Session> {
        pool.open = 0;
        pool.slot = None;
        pool.generation += 1;
        self.returned.notify_all();
        std::mem::take(&mut pool.idle)
    }

    fn slot(&self, pool: &mut Pool) -> DeviceResult<Slot> {
        if let Some(slot) = pool.slot {
            return Ok(slot);
        }
        let slot = self.module.find_slot(&self.serial)?;
        pool.slot = Some(slot);
        Ok(slot)
    }

    /// Borrows a session, opening one if the pool has room, else waiting for one.
    pub(crate) fn checkout(&self) -> DeviceResult<Lease<'_>> {
        if self.backend.is_some() {
            return Err(DeviceError::Unsupported(format!(
                "token {} is driven through an SKF or SDF library or in seald's device helper: this operation needs a PKCS#11 module loaded in seald (isolation = \"none\"), or the vendor's tool",
                self.serial
            )));
        }
        let mut pool = self.lock();
        let dead = self.forget_lost_sessions(&mut pool);
        if !dead.is_empty() {
            drop(pool);
            drop(dead);
            pool = self.lock();
        }
        loop {
            let slot = self.slot(&mut pool)?;
            if let Some(session) = pool.idle.pop() {
                return Ok(Lease {
                    owner: self,
                    session: Some(session),
                    generation: pool.generation,
                    slot,
                });
            }
            if pool.open < self.capacity {
                pool.open += 1;
                let generation = pool.generation;
                drop(pool);
                let opened = self.module.context().and_then(|c| {
                    let _watch = self.module.watch("open session");
                    c.open_rw_session(slot).map_err(|e| self.error(e))
                });
                return match opened {
                    Ok(session) => Ok(Lease {
                        owner: self,
                        session: Some(session),
                        generation,
                        slot,
                    }),
                    Err(error) => {
                        let mut pool = self.lock();
                        if pool.generation == generation {
                            pool.open -= 1;
                        }
                        drop(pool);
                        self.returned.notify_one();
                        if error.is_removal() {
                            self.reset();
                        }
                        Err(error)
                    }
                };
            }
            pool = self.returned.wait(pool).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Runs `op` on a pooled session; a removal drops all sessions so the next call starts afresh.
    pub(crate) fn run<T>(&self, op: impl FnOnce(&Lease<'_>) -> DeviceResult<T>) -> DeviceResult<T> {
        let lease = self.checkout()?;
        let watch = self.module.watch("a call on the token");
        let result = op(&lease);
        drop(watch);
        if let Err(error) = &result {
            if error.is_removal() {
                let generation = lease.generation;
                drop(lease);
                if self.generation() == generation {
                    self.reset();
                }
            }
        }
        result
    }

    /// The token's current information and PIN flags.
    pub fn info(&self) -> DeviceResult<TokenInfo> {
        if let Some(backend) = &self.backend {
            return backend.info();
        }
        let (slot, dead) = {
            let mut pool = self.lock();
            let dead = self.forget_lost_sessions(&mut pool);
            (self.slot(&mut pool), dead)
        };
        drop(dead);
        let slot = slot?;
        let info = self.module.context().and_then(|c| {
            let _watch = self.module.watch("read token info");
            c.get_token_info(slot).map_err(|e| self.error(e))
        });
        match info {
            Ok(info) => Ok(TokenInfo::from(&info)),
            Err(error) => {
                if error.is_removal() {
                    self.reset();
                }
                Err(error)
            }
        }
    }

    /// True when the token's sessions are logged in as the user.
    pub fn logged_in(&self) -> DeviceResult<bool> {
        if let Some(backend) = &self.backend {
            return backend.logged_in();
        }
        self.run(|lease| super::key::is_user_session(self, lease.session()))
    }

    fn check_pin_length(info: &TokenInfo, pin: &Pin) -> DeviceResult<()> {
        let (min, max) = info.pin_length;
        if max > 0 && (pin.len() < min || pin.len() > max) {
            return Err(DeviceError::PinLenRange { min, max });
        }
        Ok(())
    }

    /// Re-reads the flags after a PIN failure to say how many tries are left.
    fn explain_pin_failure(&self, error: DeviceError) -> DeviceError {
        match error {
            DeviceError::PinIncorrect { .. } => match self.info() {
                Ok(info) if info.pin.locked => DeviceError::PinLocked,
                Ok(info) => DeviceError::PinIncorrect {
                    tries: info.pin.tries_left(),
                },
                Err(_) => error,
            },
            other => other,
        }
    }

    /// An SO PIN failure in the SO's words, with the tries left as the token's flags tell.
    fn explain_so_pin_failure(&self, error: DeviceError) -> DeviceError {
        match error {
            DeviceError::PinLocked => DeviceError::SoPinLocked,
            DeviceError::PinIncorrect { .. } => match self.info() {
                Ok(info) if info.pin.so_locked => DeviceError::SoPinLocked,
                Ok(info) => DeviceError::SoPinIncorrect {
                    tries: info.pin.so_tries_left(),
                },
                Err(_) => DeviceError::SoPinIncorrect {
                    tries: TriesLeft::NotReported,
                },
            },
            other => other,
        }
    }

    /// One PIN operation at a time on this token (see `pin_ops`).
    fn pin_lock(&self) -> MutexGuard<'_, ()> {
        self.pin_ops.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Logs the user in. Never retried: one call spends at most one PIN try. PIN operations
    /// on the token are serialised, so the final-try check holds until the device answers.
    pub fn login(&self, pin: &Pin, final_try: FinalTry) -> DeviceResult<()> {
        let _one_at_a_time = self.pin_lock();
        let info = self.info()?;
        if info.pin.locked {
            return Err(DeviceError::PinLocked);
        }
        if info.pin.final_try && final_try == FinalTry::Refuse {
            return Err(DeviceError::FinalTryNotConfirmed);
        }
        Self::check_pin_length(&info, pin)?;
        let result = match &self.backend {
            Some(backend) => backend.login(pin),
            None => self.run(|lease| {
                let _watch = self.module.watch("login");
                lease
                    .session()
                    .login(UserType::User, Some(pin.auth()))
                    .map_err(|e| self.error(e))
            }),
        };
        match result {
            Ok(()) => {
                tracing::info!(token = %self.serial, "user login accepted");
                Ok(())
            }
            Err(error) => {
                tracing::warn!(token = %self.serial, error = %error, "user login refused");
                Err(self.explain_pin_failure(error))
            }
        }
    }

    /// Logs the user out (all sessions of this token). Logging out twice is not an error.
    pub fn logout(&self) -> DeviceResult<()> {
        if let Some(backend) = &self.backend {
            return backend.logout();
        }
        let result = self.run(|lease| lease.session().logout().map_err(|e| self.error(e)));
        match result {
            Ok(()) | Err(DeviceError::UserNotLoggedIn) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Changes the user PIN (C_SetPIN). A wrong old PIN spends one try, like a login. No
    /// final-try check: see [`TokenOwner::change_pin_guarded`].
    pub fn change_pin(&self, old: &Pin, new: &Pin) -> DeviceResult<()> {
        self.change_pin_guarded(old, new, FinalTry::Confirmed)
    }

    /// Changes the user PIN, refusing when the token reports one try left unless `final_try`
    /// is [`FinalTry::Confirmed`]; serialised with the token's other PIN operations, so the
    /// check holds until the device answers.
    pub fn change_pin_guarded(
        &self,
        old: &Pin,
        new: &Pin,
        final_try: FinalTry,
    ) -> DeviceResult<()> {
        let _one_at_a_time = self.pin_lock();
        let info = self.info()?;
        if info.pin.locked {
            return Err(DeviceError::PinLocked);
        }
        if info.pin.final_try && final_try == FinalTry::Refuse {
            return Err(DeviceError::FinalTryNotConfirmed);
        }
        Self::check_pin_length(&info, new)?;
        let result = match &self.backend {
            Some(backend) => backend.change_pin(old, new),
            None => self.run(|lease| {
                lease
                    .session()
                    .set_pin(old.auth(), new.auth())
                    .map_err(|e| self.error(e))
            }),
        };
        match result {
            Ok(()) => {
                tracing::info!(token = %self.serial, "user PIN changed");
                Ok(())
            }
            Err(error) => Err(self.explain_pin_failure(error)),
        }
    }

    /// Unblocks (or re-sets) the user PIN as the security officer: SO login, C_InitPIN, logout.
    /// Drops the pool first, since the SO cannot log in while the user is.
    pub fn unblock(&self, so_pin: &Pin, new_user_pin: &Pin) -> DeviceResult<()> {
        self.unblock_guarded(so_pin, new_user_pin, FinalTry::Confirmed)
    }

    /// Like [`TokenOwner::unblock`], refusing when the token reports one SO PIN try left
    /// unless `final_try` is [`FinalTry::Confirmed`]; serialised with the token's other PIN
    /// operations.
    pub fn unblock_guarded(
        &self,
        so_pin: &Pin,
        new_user_pin: &Pin,
        final_try: FinalTry,
    ) -> DeviceResult<()> {
        let _one_at_a_time = self.pin_lock();
        let info = self.info()?;
        if info.pin.so_final_try && final_try == FinalTry::Refuse {
            return Err(DeviceError::SoFinalTryNotConfirmed);
        }
        Self::check_pin_length(&info, new_user_pin)?;
        if let Some(backend) = &self.backend {
            backend.unblock(so_pin, new_user_pin)?;
            tracing::info!(token = %self.serial, "user PIN re-set with the administrator PIN");
            return Ok(());
        }
        self.reset();
        let slot = {
            let mut pool = self.lock();
            self.slot(&mut pool)?
        };
        let session = self
            .module
            .context()?
            .open_rw_session(slot)
            .map_err(|e| self.error(e))?;
        session
            .login(UserType::So, Some(so_pin.auth()))
            .map_err(|e| self.explain_so_pin_failure(self.error(e)))?;
        let result = session
            .init_pin(new_user_pin.auth())
            .map_err(|e| self.error(e));
        let _ = session.logout();
        result?;
        tracing::info!(token = %self.serial, "user PIN re-set by the security officer");
        Ok(())
    }
}
