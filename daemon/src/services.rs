//! The core services over one store, opened together: what the HTTP layer holds in its state.

use std::path::Path;
use std::sync::Arc;

use crate::approval::Approvals;
use crate::audit::AuditLog;
use crate::clock::Clock;
use crate::identity::{key_path_for, Identities, IdentityError, TokenKey};
use crate::seal::Registry;
use crate::store::{Store, StoreError};

/// Why the core services could not start.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The store could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The token key could not be read or made.
    #[error(transparent)]
    TokenKey(#[from] IdentityError),
}

/// Usage log, identities, seal registry and approvals sharing one store and clock.
#[derive(Debug, Clone)]
pub struct Services {
    /// The store.
    pub store: Arc<Store>,
    /// The usage log.
    pub audit: AuditLog,
    /// Identities and bearer tokens.
    pub identities: Identities,
    /// The seal registry.
    pub registry: Registry,
    /// Approval policies and stamp requests.
    pub approvals: Approvals,
}

impl Services {
    /// Opens the store at `path` (0600, migrated) and its token key `<path>.token-key`.
    pub fn open(path: &Path, clock: Arc<dyn Clock>) -> Result<Self, OpenError> {
        let store = Arc::new(Store::open(path)?);
        let key = Arc::new(TokenKey::load_or_create(&key_path_for(path))?);
        Ok(Self {
            audit: AuditLog::new(store.clone(), clock.clone()),
            identities: Identities::new(store.clone(), clock.clone(), key),
            registry: Registry::new(store.clone(), clock.clone()),
            approvals: Approvals::new(store.clone(), clock),
            store,
        })
    }
}
