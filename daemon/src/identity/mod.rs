//! Identities and roles: client apps, approvers, custodians, auditors, admins, each with a
//! bearer token stored only as an HMAC-SM3 hash.

pub mod token;

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::json;

use crate::audit::{chain, unix_ms, NewRecord};
use crate::clock::Clock;
use crate::store::model::AuditKind;
use crate::store::{Store, StoreError};

pub use crate::store::model::{Identity, IdentityId, Role};
pub use token::{key_path_for, IssuedToken, TokenKey, TOKEN_PREFIX};

/// Who is asking. The API layer authenticates and passes this value into every call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// An authenticated identity (bearer token).
    User(Identity),
    /// Someone with direct access to the store file (`sealctl` on the host): trusted as admin.
    Local(String),
    /// seald itself (signing worker, expiry sweeps).
    Daemon,
}

impl Caller {
    /// The name written to the usage log.
    pub fn name(&self) -> String {
        match self {
            Caller::User(i) => i.name.clone(),
            Caller::Local(who) => format!("local:{who}"),
            Caller::Daemon => "seald".to_owned(),
        }
    }

    /// Refuses unless the caller holds `role` (local and daemon callers hold every role).
    pub fn require(&self, role: Role) -> Result<(), Forbidden> {
        match self {
            Caller::User(i) if !i.has_role(role) => Err(Forbidden {
                who: i.name.clone(),
                role,
            }),
            _ => Ok(()),
        }
    }

    /// The local operator running `sealctl`, named from `$USER` (or "operator").
    pub fn local_from_env() -> Self {
        Caller::Local(std::env::var("USER").unwrap_or_else(|_| "operator".to_owned()))
    }

    /// The identity, if the caller is a user.
    pub fn identity(&self) -> Option<&Identity> {
        match self {
            Caller::User(i) => Some(i),
            _ => None,
        }
    }
}

/// A caller lacks a role.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{who} is not allowed to do this: it needs the {role} role")]
pub struct Forbidden {
    /// The caller.
    pub who: String,
    /// The role needed.
    pub role: Role,
}

/// Identity errors.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The caller may not manage identities.
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// The token key file could not be read or written.
    #[error("cannot use the token key file {path}: {source}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The token key file is readable by others.
    #[error("the token key file {path} has mode {mode:o}; make it 0600 (chmod 600) and rotate all tokens")]
    KeyFileExposed {
        /// The file.
        path: PathBuf,
        /// Its mode.
        mode: u32,
    },
    /// The OS random generator failed.
    #[error("the system random generator failed: {0}")]
    Random(String),
    /// The name is taken.
    #[error("an identity named {0:?} already exists")]
    NameTaken(String),
    /// The name is empty or has control characters.
    #[error("identity name {0:?} is invalid: use 1-64 visible characters")]
    BadName(String),
    /// No roles were given.
    #[error("an identity needs at least one role")]
    NoRoles,
    /// No identity by that name.
    #[error("no identity named {0:?}")]
    NotFound(String),
}

/// Why a bearer token was refused. Deliberately vague towards the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Unknown or malformed token.
    #[error("the bearer token is not valid")]
    Invalid,
    /// The identity is disabled.
    #[error("this identity is disabled; ask an administrator")]
    Disabled,
    /// The store failed while checking.
    #[error("cannot check the token now: {0}")]
    Unavailable(String),
}

/// The identity service.
#[derive(Debug, Clone)]
pub struct Identities {
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    key: Arc<TokenKey>,
}

fn valid_name(name: &str) -> bool {
    let n = name.chars().count();
    (1..=64).contains(&n) && !name.chars().any(|c| c.is_control() || c.is_whitespace())
}

impl Identities {
    /// The identities kept in `store`, tokens hashed with `key`.
    pub fn new(store: Arc<Store>, clock: Arc<dyn Clock>, key: Arc<TokenKey>) -> Self {
        Self { store, clock, key }
    }

    /// Adds an identity and returns it with its first token (show it once).
    pub fn add(
        &self,
        by: &Caller,
        name: &str,
        roles: &[Role],
    ) -> Result<(Identity, IssuedToken), IdentityError> {
        by.require(Role::Admin)?;
        if !valid_name(name) {
            return Err(IdentityError::BadName(name.to_owned()));
        }
        let mut roles = roles.to_vec();
        roles.sort();
        roles.dedup();
        if roles.is_empty() {
            return Err(IdentityError::NoRoles);
        }
        let token = IssuedToken::generate()?;
        let hash = self.key.hash(token.expose());
        let (name, actor, clock) = (name.to_owned(), by.name(), self.clock.clone());
        let identity = self.store.write(move |tx| {
            if tx.identity_by_name(&name)?.is_some() {
                return Err(IdentityError::NameTaken(name));
            }
            let now = clock.now();
            let id = tx.insert_identity(&name, &roles, &hash, now.unix_timestamp())?;
            let identity = tx
                .identity(id)?
                .ok_or_else(|| StoreError::Corrupt("identity vanished".into()))?;
            let rec = NewRecord::new(
                AuditKind::Identity,
                actor,
                None,
                json!({ "action": "add", "name": identity.name, "roles": identity.roles }),
            );
            chain::append(tx, &rec, unix_ms(now))?;
            Ok(identity)
        })?;
        Ok((identity, token))
    }

    /// All identities, by name.
    pub fn list(&self, by: &Caller) -> Result<Vec<Identity>, IdentityError> {
        by.require(Role::Admin)?;
        Ok(self.store.read(|tx| tx.identities())?)
    }

    /// The identity with this id (for showing approvers' names).
    pub fn get(&self, id: IdentityId) -> Result<Option<Identity>, IdentityError> {
        Ok(self.store.read(|tx| tx.identity(id))?)
    }

    /// The identity with this name.
    pub fn by_name(&self, name: &str) -> Result<Option<Identity>, IdentityError> {
        Ok(self.store.read(|tx| tx.identity_by_name(name))?)
    }

    /// Disables (or re-enables) an identity; its token stops (or resumes) working at once.
    pub fn set_disabled(
        &self,
        by: &Caller,
        name: &str,
        disabled: bool,
    ) -> Result<Identity, IdentityError> {
        by.require(Role::Admin)?;
        let (name, actor, clock) = (name.to_owned(), by.name(), self.clock.clone());
        self.store.write(move |tx| {
            let Some(mut identity) = tx.identity_by_name(&name)? else {
                return Err(IdentityError::NotFound(name));
            };
            tx.set_identity_disabled(identity.id, disabled)?;
            identity.disabled = disabled;
            let action = if disabled { "disable" } else { "enable" };
            let rec = NewRecord::new(
                AuditKind::Identity,
                actor,
                None,
                json!({ "action": action, "name": name }),
            );
            chain::append(tx, &rec, unix_ms(clock.now()))?;
            Ok(identity)
        })
    }

    /// Issues a new token for an identity; the old one stops working.
    pub fn rotate_token(&self, by: &Caller, name: &str) -> Result<IssuedToken, IdentityError> {
        by.require(Role::Admin)?;
        let token = IssuedToken::generate()?;
        let hash = self.key.hash(token.expose());
        let (name, actor, clock) = (name.to_owned(), by.name(), self.clock.clone());
        self.store.write(move |tx| {
            let Some(identity) = tx.identity_by_name(&name)? else {
                return Err(IdentityError::NotFound(name));
            };
            tx.set_token_hash(identity.id, &hash)?;
            let rec = NewRecord::new(
                AuditKind::Identity,
                actor,
                None,
                json!({ "action": "token", "name": name }),
            );
            chain::append(tx, &rec, unix_ms(clock.now()))?;
            Ok(())
        })?;
        Ok(token)
    }

    /// The keyed hash an API token is stored as (what a console session keeps instead of the
    /// token), or `None` for a value that is not an API token.
    pub fn token_hash(&self, token: &str) -> Option<Vec<u8>> {
        (token.starts_with(TOKEN_PREFIX) && token.len() <= 256).then(|| self.key.hash(token))
    }

    /// Finds the identity whose API token has this keyed hash (a console session's grant):
    /// refused once the identity is disabled or its token replaced.
    pub fn authenticate_hash(&self, hash: &[u8]) -> Result<Identity, AuthError> {
        let found = self
            .store
            .read(|tx| tx.identity_by_token_hash(hash))
            .map_err(|e: StoreError| AuthError::Unavailable(e.to_string()))?;
        match found {
            Some((identity, stored)) if stored.as_slice() == hash => {
                if identity.disabled {
                    Err(AuthError::Disabled)
                } else {
                    Ok(identity)
                }
            }
            _ => Err(AuthError::Invalid),
        }
    }

    /// Finds the identity a bearer token belongs to.
    pub fn authenticate(&self, token: &str) -> Result<Identity, AuthError> {
        if !token.starts_with(TOKEN_PREFIX) || token.len() > 256 {
            return Err(AuthError::Invalid);
        }
        let hash = self.key.hash(token);
        let found = self
            .store
            .read(|tx| tx.identity_by_token_hash(&hash))
            .map_err(|e: StoreError| AuthError::Unavailable(e.to_string()))?;
        match found {
            Some((identity, stored)) if self.key.matches(token, &stored) => {
                if identity.disabled {
                    Err(AuthError::Disabled)
                } else {
                    Ok(identity)
                }
            }
            _ => Err(AuthError::Invalid),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use time::macros::datetime;

    fn service() -> (tempfile::TempDir, Identities) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path().join("s.db")).unwrap());
        let clock = Arc::new(ManualClock::new(datetime!(2026-01-05 09:00 UTC)));
        let key = Arc::new(TokenKey::from_bytes([7; 32]));
        (dir, Identities::new(store, clock, key))
    }

    fn admin() -> Caller {
        Caller::Local("root".into())
    }

    #[test]
    fn token_authenticates_until_rotated_or_disabled() {
        let (_d, ids) = service();
        let (alice, token) = ids.add(&admin(), "alice", &[Role::Approver]).unwrap();
        assert_eq!(ids.authenticate(token.expose()).unwrap(), alice);
        assert_eq!(ids.authenticate("sld_00"), Err(AuthError::Invalid));
        assert_eq!(ids.authenticate("bogus"), Err(AuthError::Invalid));

        let new = ids.rotate_token(&admin(), "alice").unwrap();
        assert_eq!(ids.authenticate(token.expose()), Err(AuthError::Invalid));
        assert_eq!(ids.authenticate(new.expose()).unwrap().id, alice.id);

        ids.set_disabled(&admin(), "alice", true).unwrap();
        assert_eq!(ids.authenticate(new.expose()), Err(AuthError::Disabled));
    }

    #[test]
    fn only_admins_manage_identities() {
        let (_d, ids) = service();
        let (bob, _) = ids.add(&admin(), "bob", &[Role::Approver]).unwrap();
        let err = ids
            .add(&Caller::User(bob), "eve", &[Role::Admin])
            .unwrap_err();
        assert!(matches!(err, IdentityError::Forbidden(_)), "{err}");
    }

    #[test]
    fn names_are_unique_and_roles_required() {
        let (_d, ids) = service();
        ids.add(&admin(), "app", &[Role::Client]).unwrap();
        assert!(matches!(
            ids.add(&admin(), "app", &[Role::Client]),
            Err(IdentityError::NameTaken(_))
        ));
        assert!(matches!(
            ids.add(&admin(), "x", &[]),
            Err(IdentityError::NoRoles)
        ));
        assert!(matches!(
            ids.add(&admin(), "a b", &[Role::Client]),
            Err(IdentityError::BadName(_))
        ));
    }

    #[test]
    fn store_keeps_only_the_hash() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let store = Arc::new(Store::open(&path).unwrap());
        let ids = Identities::new(
            store.clone(),
            Arc::new(ManualClock::new(datetime!(2026-01-05 09:00 UTC))),
            Arc::new(TokenKey::from_bytes([7; 32])),
        );
        let (_, token) = ids.add(&admin(), "app", &[Role::Client]).unwrap();
        store.close();
        let secret = token.expose().as_bytes().to_vec();
        for suffix in ["", "-wal"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            if let Ok(bytes) = std::fs::read(&p) {
                assert!(!bytes.windows(secret.len()).any(|w| w == secret));
            }
        }
    }
}
