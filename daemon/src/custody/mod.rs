//! Custodian operations (保管人): PIN change, unblock and status against the PIN policy, custody
//! transfer, key generation / CSR / certificate import, backup and restore.
//!
//! Everything here is a library function taking the caller's name as a value, so `sealctl`
//! (directly on the device and store) and the HTTP API call the same code.

pub mod backup;
pub mod csr;
pub mod keys;
pub mod policy;

use std::sync::Arc;

use serde::Serialize;

use crate::audit::{chain, unix_ms, NewRecord};
use crate::clock::Clock;
use crate::device::{DeviceError, FinalTry, Pin, PinState, TokenOwner, TriesLeft};
use crate::store::model::{AuditKind, Custody, Role, SealId};
use crate::store::{Store, StoreError};

pub use policy::{check_new_pin, AgeStatus, CharClass, PinAge, PinPolicy, PolicyViolation};

/// Why a custodian operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CustodyError {
    /// The store or log failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The device refused or failed (wrong PIN with tries left, locked, removed, …).
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// The new PIN breaks the policy; nothing was sent to the device.
    #[error(transparent)]
    Policy(#[from] PolicyViolation),
    /// No such seal.
    #[error("there is no seal {0}")]
    UnknownSeal(SealId),
    /// The new custodian is unknown, disabled or lacks the custodian role.
    #[error("`{0}` cannot hold seals: {1}")]
    NotACustodian(String, &'static str),
    /// The caller is not a custodian of any seal on the token, and the token has custody
    /// records (a token without any is open to every custodian).
    #[error(
        "`{who}` is not the custodian of any seal on token {serial}; {}",
        may_act(who, holds)
    )]
    NotYourToken {
        /// The caller.
        who: String,
        /// The token.
        serial: String,
        /// What the caller holds: (seal, token) pairs.
        holds: Vec<(SealId, String)>,
    },
    /// The caller is not the seal's custodian (or, for a seal without a custody record, does
    /// not hold its token).
    #[error("`{who}` is not the custodian of seal {seal}; {}", may_act(who, holds))]
    NotYourSeal {
        /// The caller.
        who: String,
        /// The seal.
        seal: SealId,
        /// What the caller holds: (seal, token) pairs.
        holds: Vec<(SealId, String)>,
    },
    /// The seal already has this custodian.
    #[error("seal {seal} is already held by `{custodian}`")]
    SameCustodian {
        /// The seal.
        seal: SealId,
        /// Its custodian.
        custodian: String,
    },
}

/// "`who` may act on seals … on tokens …", or that it holds none, for a refusal.
fn may_act(who: &str, holds: &[(SealId, String)]) -> String {
    if holds.is_empty() {
        return format!(
            "`{who}` holds no seal, so it may act only on tokens without any custody record; ask an administrator"
        );
    }
    let seals: Vec<String> = holds.iter().map(|(s, _)| s.to_string()).collect();
    let mut tokens: Vec<&str> = holds.iter().map(|(_, t)| t.as_str()).collect();
    tokens.sort_unstable();
    tokens.dedup();
    format!(
        "`{who}` may act on seals {} and tokens {} (and on tokens without any custody record)",
        seals.join(", "),
        tokens.join(", ")
    )
}

/// Whether `who` holds token `serial`: it is the custodian of at least one seal on it, or no
/// seal on it has a custody record (such a token is open to every custodian).
fn holds_token(all: &[(Custody, String)], who: &str, serial: &str) -> bool {
    let mut on_token = all.iter().filter(|(_, d)| d == serial).peekable();
    on_token.peek().is_none() || on_token.any(|(c, _)| c.custodian == who)
}

fn held_by(all: &[(Custody, String)], who: &str) -> Vec<(SealId, String)> {
    all.iter()
        .filter(|(c, _)| c.custodian == who)
        .map(|(c, d)| (c.seal_id, d.clone()))
        .collect()
}

/// What `pin status` shows: the device's PIN flags, and the PIN's age from seald's own records.
#[derive(Debug, Clone, Serialize)]
pub struct PinStatus {
    /// The token's serial.
    pub serial: String,
    /// The PIN flags the device reports.
    pub flags: PinState,
    /// What the device says about tries left.
    pub tries_left: TriesLeft,
    /// Age against policy.
    pub age: PinAge,
}

/// A seal's custody and whether a PIN change is owed before its next stamp.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CustodyStatus {
    /// The seal.
    pub seal_id: SealId,
    /// The token holding its key.
    pub device_serial: String,
    /// Its custodian, if one was assigned.
    pub custody: Option<Custody>,
    /// When (Unix seconds) the security officer re-set the token's user PIN, if the custodian
    /// has not changed it since.
    pub pin_reset_at: Option<i64>,
    /// The seal refuses to stamp until its custodian changes the token's PIN.
    pub pin_change_required: bool,
}

/// What became of the usage-log record of a PIN change or unblock the device has made.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum PinRecord {
    /// Recorded, with its effect on the seals (cleared or required PIN change).
    Written,
    /// The device changed the PIN, but the store refused the record.
    NotWritten {
        /// The token.
        serial: String,
        /// "change" or "unblock".
        what: &'static str,
        /// Why the store refused.
        error: String,
    },
}

impl PinRecord {
    /// What the caller must be told when the record is missing: the PIN WAS changed on the
    /// device, the record was not written, and what to do now.
    pub fn warning(&self) -> Option<String> {
        let PinRecord::NotWritten {
            serial,
            what,
            error,
        } = self
        else {
            return None;
        };
        Some(if *what == "unblock" {
            format!(
                "the user PIN of token {serial} WAS re-set on the device: the new PIN is in force and the old one no longer works. \
                 seald could not write the usage-log record ({error}), so the change the custodian owes after an unblock is not on record either. \
                 The custodian should log in with the new PIN and change it at once (sealctl pin-change); tell an administrator, who should check the store"
            )
        } else {
            format!(
                "the user PIN of token {serial} WAS changed on the device: use the new PIN from now on, not the old one. \
                 seald could not write the usage-log record ({error}), so the change is not on record and seals that were waiting for it still refuse to stamp. \
                 Tell an administrator; once the store accepts writes again, change the PIN once more (sealctl pin-change) so the change is recorded"
            )
        })
    }
}

/// Custody and PIN records over the store's usage log.
#[derive(Debug, Clone)]
pub struct Custodians {
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
}

fn tries_number(tries: TriesLeft) -> Option<u32> {
    match tries {
        TriesLeft::One => Some(1),
        _ => None,
    }
}

impl Custodians {
    /// Custody records in `store`, timed by `clock`.
    pub fn new(store: Arc<Store>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Hands `seal` to the identity named `to` (a custodian) and requires a PIN change before
    /// the new custodian's first stamp. Logged as a `custody` record.
    pub fn transfer(&self, actor: &str, seal: SealId, to: &str) -> Result<Custody, CustodyError> {
        self.hand_over(actor, seal, to).map(|(custody, _)| custody)
    }

    /// Like [`Custodians::transfer`], also naming the previous custodian (if one was on
    /// record), read in the same transaction.
    pub fn hand_over(
        &self,
        actor: &str,
        seal: SealId,
        to: &str,
    ) -> Result<(Custody, Option<String>), CustodyError> {
        let now = self.clock.now();
        let (actor, to) = (actor.to_owned(), to.to_owned());
        self.store.write(move |tx| {
            let found = tx.seal(seal)?.ok_or(CustodyError::UnknownSeal(seal))?;
            let who = tx
                .identity_by_name(&to)?
                .ok_or_else(|| CustodyError::NotACustodian(to.clone(), "no such identity"))?;
            if who.disabled {
                return Err(CustodyError::NotACustodian(to, "the identity is disabled"));
            }
            if !who.has_role(Role::Custodian) {
                return Err(CustodyError::NotACustodian(
                    to,
                    "the identity lacks the custodian role",
                ));
            }
            let previous = tx.custody(seal)?;
            if previous.as_ref().is_some_and(|p| p.custodian == to) {
                return Err(CustodyError::SameCustodian {
                    seal,
                    custodian: to,
                });
            }
            let custody = Custody {
                seal_id: seal,
                custodian: to.clone(),
                assigned_by: actor.clone(),
                assigned_at: now.unix_timestamp(),
                pin_change_required: true,
            };
            tx.put_custody(&custody)?;
            let previous = previous.map(|p| p.custodian);
            let record = NewRecord::new(
                AuditKind::Custody,
                actor,
                Some(seal),
                serde_json::json!({
                    "from": previous,
                    "to": to,
                    "device_serial": found.device_serial,
                    "pin_change_required": true,
                }),
            );
            chain::append(tx, &record, unix_ms(now))?;
            Ok((custody, previous))
        })
    }

    /// Records a key-lifecycle event on a token (`event`: "generated", "csr",
    /// "certificate-imported") with its public facts (ids, digests, subjects; never a PIN).
    pub fn record_key_event(
        &self,
        actor: &str,
        device_serial: &str,
        event: &str,
        mut detail: serde_json::Value,
    ) -> Result<(), CustodyError> {
        if let Some(map) = detail.as_object_mut() {
            map.insert("device_serial".into(), device_serial.into());
            map.insert("event".into(), event.into());
        }
        let at = unix_ms(self.clock.now());
        let record = NewRecord::new(AuditKind::Key, actor, None, detail);
        self.store
            .write(move |tx| chain::append(tx, &record, at).map(|_| ()))?;
        Ok(())
    }

    /// A seal's custodian, if one was assigned.
    pub fn custody(&self, seal: SealId) -> Result<Option<Custody>, CustodyError> {
        Ok(self.store.read(|tx| tx.custody(seal))?)
    }

    /// Who holds `seal` and whether a PIN change is owed before its next stamp, either by a
    /// new custodian (transfer) or because the security officer re-set the token's PIN.
    pub fn status(&self, seal: SealId) -> Result<CustodyStatus, CustodyError> {
        self.store.read(|tx| {
            let found = tx.seal(seal)?.ok_or(CustodyError::UnknownSeal(seal))?;
            let custody = tx.custody(seal)?;
            let pin_reset_at = tx
                .device_pin_change(&found.device_serial)?
                .map(|(_, at)| at);
            Ok::<_, CustodyError>(CustodyStatus {
                seal_id: seal,
                pin_change_required: pin_reset_at.is_some()
                    || custody.as_ref().is_some_and(|c| c.pin_change_required),
                device_serial: found.device_serial,
                custody,
                pin_reset_at,
            })
        })
    }

    /// True when the seal's custodian must change the PIN before stamping (after a transfer,
    /// or after the security officer re-set the token's PIN). The stamping worker refuses such
    /// a seal with a message saying so.
    pub fn pin_change_required(&self, seal: SealId) -> Result<bool, CustodyError> {
        Ok(self.status(seal)?.pin_change_required)
    }

    /// May custodian `who` act on token `serial` (log in or out, change or unblock its PIN)?
    /// Yes when it is the custodian of at least one seal whose key is on the token, or when no
    /// seal on the token has a custody record. Administrators are not asked: the caller checks
    /// roles. A refusal names what `who` may act on.
    pub fn may_act_on_token(&self, who: &str, serial: &str) -> Result<(), CustodyError> {
        let all = self.store.read(|tx| tx.custody_all())?;
        if holds_token(&all, who, serial) {
            Ok(())
        } else {
            Err(CustodyError::NotYourToken {
                who: who.to_owned(),
                serial: serial.to_owned(),
                holds: held_by(&all, who),
            })
        }
    }

    /// May custodian `who` act on `seal` (report it lost)? Yes when it is the seal's
    /// custodian; for a seal without a custody record, when `who` may act on its token (see
    /// [`Custodians::may_act_on_token`]). An unknown seal is left to the caller's own lookup.
    pub fn may_act_on_seal(&self, who: &str, seal: SealId) -> Result<(), CustodyError> {
        let (found, all) = self
            .store
            .read(|tx| Ok::<_, StoreError>((tx.seal(seal)?, tx.custody_all()?)))?;
        let Some(found) = found else { return Ok(()) };
        let allowed = match all.iter().find(|(c, _)| c.seal_id == seal) {
            Some((c, _)) => c.custodian == who,
            None => holds_token(&all, who, &found.device_serial),
        };
        if allowed {
            Ok(())
        } else {
            Err(CustodyError::NotYourSeal {
                who: who.to_owned(),
                seal,
                holds: held_by(&all, who),
            })
        }
    }

    /// Records a PIN change or unblock (`what`) on the device by `actor`. A change clears the
    /// PIN-change flag of the seals on that device whose custodian is `actor` (a previous
    /// custodian who still knows the PIN cannot lift the flag a transfer set for the new one),
    /// and the device's marker after an unblock when `actor` holds the token (is the custodian
    /// of a seal on it, or no seal on it has a custody record); an unblock (the security officer now knows the PIN)
    /// requires a change before any seal on the device stamps again. Never records the PIN.
    pub fn record_pin_change(
        &self,
        actor: &str,
        device_serial: &str,
        what: &'static str,
    ) -> Result<(), CustodyError> {
        let now = self.clock.now();
        let record = NewRecord::pin_change(actor, device_serial, what);
        let serial = device_serial.to_owned();
        let actor = actor.to_owned();
        self.store.write(move |tx| {
            chain::append(tx, &record, unix_ms(now))?;
            match what {
                "change" => {
                    // Only a seal's own custodian lifts its flag; the device's marker (after
                    // an unblock) goes when a holder of the token, or anyone on a token
                    // without custody records, changes the PIN.
                    let all = tx.custody_all()?;
                    tx.clear_custodian_pin_change(&serial, &actor)?;
                    if holds_token(&all, &actor, &serial) {
                        tx.clear_device_pin_change(&serial)?;
                    }
                }
                "unblock" => tx.require_device_pin_change(&serial, what, now.unix_timestamp())?,
                _ => {}
            }
            Ok::<_, StoreError>(())
        })?;
        Ok(())
    }

    /// Records a PIN change the device has already made. A failure to write the record does
    /// not undo the device's change, so it is not an error: the answer says what happened.
    fn record_device_change(&self, actor: &str, serial: &str, what: &'static str) -> PinRecord {
        match self.record_pin_change(actor, serial, what) {
            Ok(()) => PinRecord::Written,
            Err(e) => {
                tracing::error!(error = %e, %serial, what, "the device changed the PIN, but the record could not be written");
                PinRecord::NotWritten {
                    serial: serial.to_owned(),
                    what,
                    error: e.to_string(),
                }
            }
        }
    }

    fn record_failure(&self, actor: &str, serial: &str, error: &DeviceError) {
        let tries = match error {
            DeviceError::PinIncorrect { tries } => tries_number(*tries),
            DeviceError::PinLocked => Some(0),
            _ => return,
        };
        let at = unix_ms(self.clock.now());
        let record = NewRecord::pin_login(actor, serial, false, tries);
        if let Err(e) = self
            .store
            .write(move |tx| chain::append(tx, &record, at).map(|_| ()))
        {
            tracing::error!(error = %e, "cannot record a PIN failure");
        }
    }

    /// Logs the token in for the custodian (one PIN try at most, the last one only when
    /// `final_try` says a person confirmed it) and records the outcome, never the PIN.
    pub fn login(
        &self,
        owner: &TokenOwner,
        actor: &str,
        pin: &Pin,
        final_try: FinalTry,
    ) -> Result<(), CustodyError> {
        match owner.login(pin, final_try) {
            Ok(()) => {
                let at = unix_ms(self.clock.now());
                let record = NewRecord::pin_login(actor, owner.serial(), true, None);
                self.store
                    .write(move |tx| chain::append(tx, &record, at).map(|_| ()))?;
                Ok(())
            }
            Err(error) => {
                self.record_failure(actor, owner.serial(), &error);
                Err(error.into())
            }
        }
    }

    /// When seald last recorded a PIN change or unblock for the device (Unix ms).
    pub fn last_pin_change(&self, device_serial: &str) -> Result<Option<i64>, CustodyError> {
        let kind = AuditKind::PinChange.as_str();
        Ok(self
            .store
            .read(|tx| tx.audit_last_for_device(kind, device_serial))?)
    }

    /// Changes the user PIN: the policy first (nothing reaches the device if it refuses), then
    /// C_SetPIN (a wrong old PIN spends one try and says what the device reports), then the
    /// record. The owner must not be logged in by someone else's session in another process.
    /// Once the device has changed the PIN the answer is `Ok`: a record the store refused is
    /// [`PinRecord::NotWritten`], whose warning the caller must show.
    ///
    /// When the token reports one try left, the change is refused unless `final_try` is
    /// [`FinalTry::Confirmed`] (a person saw the warning and confirmed).
    pub fn change_pin(
        &self,
        owner: &TokenOwner,
        actor: &str,
        old: &Pin,
        new: &Pin,
        policy: &PinPolicy,
        final_try: FinalTry,
    ) -> Result<PinRecord, CustodyError> {
        check_new_pin(new, Some(old), policy)?;
        // The final-try check and the device's change under one per-token lock.
        if let Err(error) = owner.change_pin_guarded(old, new, final_try) {
            self.record_failure(actor, owner.serial(), &error);
            return Err(error.into());
        }
        Ok(self.record_device_change(actor, owner.serial(), "change"))
    }

    /// Unblocks the user PIN with the SO PIN and sets `new` (checked against the policy first;
    /// nothing reaches the device if it refuses). The token's sessions, and with them any user
    /// login, are dropped. A refused SO PIN is recorded with the tries the device reports.
    /// The record requires the custodian to change the PIN before any seal on the token stamps
    /// again; like [`Custodians::change_pin`], a record the store refused after the device
    /// acted is [`PinRecord::NotWritten`], not an error.
    ///
    /// When the token reports one SO PIN try left, the unblock is refused unless `final_try`
    /// is [`FinalTry::Confirmed`]: a wrong SO PIN then would lock the token for good.
    pub fn unblock(
        &self,
        owner: &TokenOwner,
        actor: &str,
        so_pin: &Pin,
        new: &Pin,
        policy: &PinPolicy,
        final_try: FinalTry,
    ) -> Result<PinRecord, CustodyError> {
        check_new_pin(new, None, policy)?;
        if let Err(error) = owner.unblock_guarded(so_pin, new, final_try) {
            self.record_so_failure(actor, owner.serial(), &error);
            return Err(error.into());
        }
        Ok(self.record_device_change(actor, owner.serial(), "unblock"))
    }

    /// Records a refused SO PIN (what the device said about tries; never the PIN).
    fn record_so_failure(&self, actor: &str, serial: &str, error: &DeviceError) {
        let tries = match error {
            DeviceError::SoPinIncorrect { tries } => tries_number(*tries),
            DeviceError::SoPinLocked => Some(0),
            _ => return,
        };
        let at = unix_ms(self.clock.now());
        let record = NewRecord::new(
            AuditKind::PinFailure,
            actor,
            None,
            serde_json::json!({ "device_serial": serial, "pin": "so", "tries_left": tries }),
        );
        if let Err(e) = self
            .store
            .write(move |tx| chain::append(tx, &record, at).map(|_| ()))
        {
            tracing::error!(error = %e, "cannot record an SO PIN failure");
        }
    }

    /// The device's PIN flags and the PIN's age against `policy`, now.
    pub fn pin_status(
        &self,
        owner: &TokenOwner,
        policy: &PinPolicy,
    ) -> Result<PinStatus, CustodyError> {
        let info = owner.info()?;
        let last = self.last_pin_change(owner.serial())?;
        Ok(PinStatus {
            serial: info.serial,
            flags: info.pin,
            tries_left: info.pin.tries_left(),
            age: PinAge::judge(last, policy, self.clock.now()),
        })
    }
}

#[cfg(test)]
mod tests;
