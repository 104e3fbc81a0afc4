//! The core services over one store, opened together: what the HTTP layer holds in its state.

use std::path::Path;
use std::sync::Arc;

use crate::approval::Approvals;
use crate::audit::AuditLog;
use crate::cert::TrustStore;
use crate::clock::Clock;
use crate::identity::{key_path_for, Identities, IdentityError, TokenKey};
use crate::seal::Registry;
use crate::store::{Store, StoreError, StoreLocation};

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
    /// Opens the store at `path` (0600, migrated) and its token key `<path>.token-key`; seal
    /// certificates must chain to a root in `trust`.
    pub fn open(
        path: &Path,
        clock: Arc<dyn Clock>,
        trust: Arc<TrustStore>,
    ) -> Result<Self, OpenError> {
        Self::open_at(&StoreLocation::sqlite(path), clock, trust)
    }

    /// Opens the store at `location` (SQLite or PostgreSQL) and its token key beside the
    /// store's files.
    pub fn open_at(
        location: &StoreLocation,
        clock: Arc<dyn Clock>,
        trust: Arc<TrustStore>,
    ) -> Result<Self, OpenError> {
        let store = Arc::new(Store::open_at(location)?);
        let key = Arc::new(TokenKey::load_or_create(&key_path_for(store.path()))?);
        Ok(Self {
            audit: AuditLog::new(store.clone(), clock.clone()),
            identities: Identities::new(store.clone(), clock.clone(), key),
            registry: Registry::new(store.clone(), clock.clone(), trust),
            approvals: Approvals::new(store.clone(), clock),
            store,
        })
    }
}

#[cfg(test)]
mod tests {
    //! Closing and reopening the store keeps identities, seals, policies, requests and the log.

    use std::sync::Arc;

    use time::macros::datetime;

    use super::Services;
    use crate::approval::{Approvals, Decision, NewStampRequest, PinMode, Policy, RequestState};
    use crate::audit::{AuditLog, NewRecord};
    use crate::clock::{Clock, ManualClock};
    use crate::crypto::PrehashSigner;
    use crate::identity::{Caller, Identities, Role};
    use crate::seal::tests::Pki;
    use crate::seal::{NewSeal, Registry, SealKind, SealState};
    use crate::store::model::{AuditKind, Digest32, StampDocument};

    struct Opened {
        log: AuditLog,
        ids: Identities,
        registry: Registry,
        approvals: Approvals,
    }

    fn open(at: &crate::store::StoreLocation, clock: Arc<ManualClock>, pki: &Pki) -> Opened {
        let s = Services::open_at(at, clock, pki.trust()).unwrap();
        Opened {
            log: s.audit,
            ids: s.identities,
            registry: s.registry,
            approvals: s.approvals,
        }
    }

    #[test]
    fn reopening_keeps_registry_identities_requests_and_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = crate::store::testing::location(dir.path());
        let clock = Arc::new(ManualClock::new(datetime!(2026-03-02 02:00 UTC)));
        let root = Caller::Local("root".into());
        let now = clock.timestamp();
        let org = "上海示例贸易有限公司";

        let pki = Pki::new(50, now);
        let (client_token, seal_id, request_id, head) = {
            let s = open(&path, clock.clone(), &pki);
            let (client, token) = s.ids.add(&root, "oa-app", &[Role::Client]).unwrap();
            let (alice, _) = s.ids.add(&root, "alice", &[Role::Approver]).unwrap();
            let seal = s
                .registry
                .enrol(
                    &root,
                    NewSeal {
                        kind: SealKind::Finance,
                        organisation: org.into(),
                        name: format!("{org}财务专用章"),
                        image: b"GIF89a\x01\x00\x01\x00".to_vec(),
                        width_mm: 38.0,
                        height_mm: 38.0,
                        es_id: "31000012345678".into(),
                        device_serial: "TOKEN-7".into(),
                        key_id: "a1".into(),
                        device_key: pki.seal_key.public_key().clone(),
                        certificate: pki.seal_cert(org, "财务", now - 86_400, now + 400 * 86_400),
                        intermediates: Vec::new(),
                        valid_from: None,
                        valid_to: None,
                    },
                    &pki.maker(),
                )
                .unwrap();
            s.approvals
                .set_policy(
                    &root,
                    Policy {
                        seal_id: seal.id,
                        allowed_clients: vec![client.id],
                        approvers: vec![alice.id],
                        required_approvals: 1,
                        daily_quota: Some(100),
                        quota_utc_offset_minutes: 480,
                        office_hours: None,
                        pin_mode: PinMode::Window { minutes: 30 },
                        request_ttl_secs: 86_400,
                        timestamp: None,
                    },
                )
                .unwrap();
            let request = s
                .approvals
                .create_request(
                    &Caller::User(client),
                    NewStampRequest {
                        seal_id: seal.id,
                        documents: vec![StampDocument {
                            digest: Digest32([5; 32]),
                            name: "invoice.pdf".into(),
                        }],
                        purpose: "pay".into(),
                        origin: None,
                    },
                )
                .unwrap();
            s.registry
                .change_state(&root, seal.id, SealState::Suspended, "audit visit")
                .unwrap();
            let head = s.log.verify().unwrap().head.unwrap();
            (token, seal.id, request.id, head)
        };

        let s = open(&path, clock.clone(), &pki);
        let client = s.ids.authenticate(client_token.expose()).unwrap();
        assert_eq!(client.name, "oa-app");
        let seal = s.registry.get(seal_id).unwrap();
        assert_eq!(seal.state, SealState::Suspended);
        assert_eq!(s.registry.history(seal_id).unwrap().len(), 2);
        let request = s.approvals.get(&root, request_id).unwrap();
        assert_eq!(request.state, RequestState::Pending);
        assert_eq!(
            s.approvals.policy(seal_id).unwrap().unwrap().pin_mode,
            PinMode::Window { minutes: 30 }
        );

        let report = s.log.verify().unwrap();
        assert!(report.is_intact(), "{report:?}");
        assert_eq!(report.head.unwrap(), head);
        let next = s
            .log
            .append(NewRecord::new(
                AuditKind::Note,
                "t",
                None,
                serde_json::json!({}),
            ))
            .unwrap();
        assert_eq!(Some(next.seq - 1), report.last_seq);
        assert_eq!(next.prev_hash, head.0.to_vec());

        // Work continues after the restart.
        s.registry
            .change_state(&root, seal_id, SealState::Active, "visit over")
            .unwrap();
        let alice = s.ids.by_name("alice").unwrap().unwrap();
        let r = s
            .approvals
            .decide(&Caller::User(alice), request_id, Decision::Approve, "")
            .unwrap();
        assert_eq!(r.state, RequestState::Approved);
        assert!(s.log.verify().unwrap().is_intact());
    }
}
