//! Closing and reopening the store keeps identities, seals, policies, requests and the log.

use std::sync::Arc;

use seald::approval::{Approvals, Decision, NewStampRequest, PinMode, Policy, RequestState};
use seald::audit::{AuditLog, NewRecord};
use seald::clock::{Clock, ManualClock};
use seald::identity::{Caller, Identities, Role};
use seald::seal::{CertFacts, NewSeal, Registry, SealKind, SealState};
use seald::services::Services;
use seald::store::model::{AuditKind, Digest32, StampDocument};
use time::macros::datetime;

struct Opened {
    log: AuditLog,
    ids: Identities,
    registry: Registry,
    approvals: Approvals,
}

fn open(path: &std::path::Path, clock: Arc<ManualClock>) -> Opened {
    let s = Services::open(path, clock).unwrap();
    Opened {
        log: s.audit,
        ids: s.identities,
        registry: s.registry,
        approvals: s.approvals,
    }
}

#[test]
fn restart_keeps_registry_identities_requests_and_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seald.db");
    let clock = Arc::new(ManualClock::new(datetime!(2026-03-02 02:00 UTC)));
    let root = Caller::Local("root".into());
    let now = clock.timestamp();
    let org = "上海示例贸易有限公司";

    let (client_token, seal_id, request_id, head) = {
        let s = open(&path, clock.clone());
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
                    certificate: vec![0x30, 0x00],
                    cert: CertFacts {
                        organisation: Some(org.into()),
                        common_name: "财务".into(),
                        serial_hex: "77".into(),
                        not_before: now - 86_400,
                        not_after: now + 400 * 86_400,
                    },
                    valid_from: None,
                    valid_to: None,
                },
                None,
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

    let s = open(&path, clock.clone());
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
