use std::sync::Arc;

use time::macros::datetime;

use super::*;
use crate::identity::{Identities, TokenKey};
use crate::seal::tests::{admin, enrol_legal, fixture, Fixture};
use crate::seal::SealState;

struct World {
    f: Fixture,
    approvals: Approvals,
    seal: SealId,
    client: Caller,
    other_client: Caller,
    a: Caller,
    b: Caller,
    c: Caller,
    stranger: Caller,
}

fn caller(ids: &Identities, name: &str, roles: &[Role]) -> Caller {
    let (identity, _token) = ids.add(&admin(), name, roles).unwrap();
    Caller::User(identity)
}

fn id_of(c: &Caller) -> IdentityId {
    c.identity().unwrap().id
}

fn policy(w_seal: SealId, clients: &[&Caller], approvers: &[&Caller], n: u32) -> Policy {
    Policy {
        seal_id: w_seal,
        allowed_clients: clients.iter().map(|c| id_of(c)).collect(),
        approvers: approvers.iter().map(|c| id_of(c)).collect(),
        required_approvals: n,
        daily_quota: None,
        quota_utc_offset_minutes: 480,
        office_hours: None,
        pin_mode: PinMode::EachStamp,
        request_ttl_secs: 3600,
        timestamp: None,
    }
}

/// A legal-name seal with a 2-of-3 policy; Monday 2026-01-05 09:00 UTC (17:00 Beijing).
fn world() -> World {
    let f = fixture();
    let ids = Identities::new(
        f.store.clone(),
        f.clock.clone(),
        Arc::new(TokenKey::from_bytes([3; 32])),
    );
    let client = caller(&ids, "oa-app", &[Role::Client]);
    let other_client = caller(&ids, "crm-app", &[Role::Client]);
    let a = caller(&ids, "alice", &[Role::Approver]);
    let b = caller(&ids, "bob", &[Role::Approver]);
    let c = caller(&ids, "carol", &[Role::Approver]);
    let stranger = caller(&ids, "dave", &[Role::Approver]);
    let seal = enrol_legal(&f, "ES-1").id;
    let approvals = Approvals::new(f.store.clone(), f.clock.clone());
    approvals
        .set_policy(&admin(), policy(seal, &[&client], &[&a, &b, &c], 2))
        .unwrap();
    World {
        f,
        approvals,
        seal,
        client,
        other_client,
        a,
        b,
        c,
        stranger,
    }
}

fn doc(n: u8) -> StampDocument {
    StampDocument {
        digest: Digest32([n; 32]),
        name: format!("contract-{n}.ofd"),
    }
}

fn ask(w: &World, docs: &[u8]) -> Result<StampRequest, ApprovalError> {
    w.approvals.create_request(
        &w.client,
        NewStampRequest {
            seal_id: w.seal,
            documents: docs.iter().map(|&n| doc(n)).collect(),
            purpose: "sign contract".into(),
            origin: Some("https://oa.example.cn".into()),
        },
    )
}

/// Both approvers approve request `id`; the request as the second decision left it.
fn approve_both(w: &World, id: RequestId) -> StampRequest {
    w.approvals.decide(&w.a, id, Decision::Approve, "").unwrap();
    w.approvals.decide(&w.b, id, Decision::Approve, "").unwrap()
}

fn approved(w: &World, docs: &[u8]) -> StampRequest {
    let r = approve_both(w, ask(w, docs).unwrap().id);
    assert_eq!(r.state, RequestState::Approved);
    r
}

fn signed_all(r: &StampRequest) -> Vec<SignedDocument> {
    r.documents
        .iter()
        .map(|d| SignedDocument {
            digest: d.digest,
            ses_signature: vec![0xEE; 16],
        })
        .collect()
}

fn set_policy(w: &World, edit: impl FnOnce(&mut Policy)) {
    let mut p = w.approvals.policy(w.seal).unwrap().unwrap();
    edit(&mut p);
    w.approvals.set_policy(&admin(), p).unwrap();
}

#[test]
fn two_of_three_then_signed_with_a_full_usage_record() {
    let w = world();
    let r = ask(&w, &[1]).unwrap();
    assert_eq!(r.state, RequestState::Pending);
    let r = w
        .approvals
        .decide(&w.a, r.id, Decision::Approve, "ok")
        .unwrap();
    assert_eq!(r.state, RequestState::Pending, "one of two is not enough");
    let r = w
        .approvals
        .decide(&w.c, r.id, Decision::Approve, "ok")
        .unwrap();
    assert_eq!(r.state, RequestState::Approved);

    let ticket = w.approvals.begin_signing(&Caller::Daemon, r.id).unwrap();
    assert_eq!(ticket.client, "oa-app");
    assert_eq!(ticket.approvers, vec!["alice", "carol"]);
    assert!(matches!(
        w.approvals.mark_signed(&w.a, r.id, signed_all(&r)),
        Err(ApprovalError::DaemonOnly(_))
    ));
    let r = w
        .approvals
        .mark_signed(&Caller::Daemon, r.id, signed_all(&r))
        .unwrap();
    assert_eq!(r.state, RequestState::Signed);

    let rows = w.f.store.read(|tx| tx.audit_rows(0, 1000)).unwrap();
    let sig = rows.iter().find(|r| r.kind == "signature").unwrap();
    let d: serde_json::Value = serde_json::from_str(&sig.detail).unwrap();
    assert_eq!(d["document_digest"], Digest32([1; 32]).to_hex());
    assert_eq!(d["document_name"], "contract-1.ofd");
    assert_eq!(d["client"], "oa-app");
    assert_eq!(d["origin"], "https://oa.example.cn");
    assert_eq!(d["approvers"], serde_json::json!(["alice", "carol"]));
    assert_eq!(d["cert_serial"], "0a1b2c");
    assert_eq!(sig.seal_id, Some(w.seal));
    let kinds: Vec<&str> = rows.iter().map(|r| r.kind.as_str()).collect();
    for k in ["stamp-request", "decision", "signature"] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    let log = crate::audit::AuditLog::new(w.f.store.clone(), w.f.clock.clone());
    assert!(log.verify().unwrap().is_intact());
}

#[test]
fn the_requester_may_never_approve() {
    let w = world();
    let ids = Identities::new(
        w.f.store.clone(),
        w.f.clock.clone(),
        Arc::new(TokenKey::from_bytes([3; 32])),
    );
    let both = caller(&ids, "selfish", &[Role::Client, Role::Approver]);
    set_policy(&w, |p| {
        p.allowed_clients.push(id_of(&both));
        p.approvers.push(id_of(&both));
    });
    let r = w
        .approvals
        .create_request(
            &both,
            NewStampRequest {
                seal_id: w.seal,
                documents: vec![doc(1)],
                purpose: "mine".into(),
                origin: None,
            },
        )
        .unwrap();
    let err = w
        .approvals
        .decide(&both, r.id, Decision::Approve, "")
        .unwrap_err();
    assert!(matches!(err, ApprovalError::SelfApproval { .. }), "{err}");
    assert!(w.approvals.get(&admin(), r.id).unwrap().votes.is_empty());
}

#[test]
fn one_vote_per_approver() {
    let w = world();
    let r = ask(&w, &[1]).unwrap();
    w.approvals
        .decide(&w.a, r.id, Decision::Approve, "")
        .unwrap();
    for d in [Decision::Approve, Decision::Reject] {
        let err = w.approvals.decide(&w.a, r.id, d, "again").unwrap_err();
        assert!(matches!(err, ApprovalError::AlreadyVoted { .. }), "{err}");
    }
    let r = w.approvals.get(&admin(), r.id).unwrap();
    assert_eq!((r.state, r.votes.len()), (RequestState::Pending, 1));
}

#[test]
fn only_listed_clients_and_approvers() {
    let w = world();
    let err = w
        .approvals
        .create_request(
            &w.other_client,
            NewStampRequest {
                seal_id: w.seal,
                documents: vec![doc(1)],
                purpose: "x".into(),
                origin: None,
            },
        )
        .unwrap_err();
    assert!(
        matches!(err, ApprovalError::ClientNotAllowed { .. }),
        "{err}"
    );
    let r = ask(&w, &[1]).unwrap();
    // An approver of another seal learns nothing of the request: the answer is GET's.
    let err = w
        .approvals
        .decide(&w.stranger, r.id, Decision::Approve, "")
        .unwrap_err();
    let hidden = w.approvals.get(&w.stranger, r.id).unwrap_err();
    assert!(matches!(err, ApprovalError::NotFound(_)), "{err}");
    assert_eq!(err.to_string(), hidden.to_string());
    let err = w
        .approvals
        .decide(&w.stranger, r.id + 1000, Decision::Reject, "")
        .unwrap_err();
    assert!(matches!(err, ApprovalError::NotFound(_)), "{err}");
    // A client cannot approve, an approver cannot ask.
    assert!(matches!(
        w.approvals.decide(&w.client, r.id, Decision::Approve, ""),
        Err(ApprovalError::Forbidden(_))
    ));
    assert!(matches!(
        w.approvals.create_request(
            &w.a,
            NewStampRequest {
                seal_id: w.seal,
                documents: vec![doc(2)],
                purpose: "x".into(),
                origin: None
            }
        ),
        Err(ApprovalError::Forbidden(_))
    ));
}

#[test]
fn one_rejection_rejects() {
    let w = world();
    let r = ask(&w, &[1]).unwrap();
    w.approvals
        .decide(&w.a, r.id, Decision::Approve, "")
        .unwrap();
    let r = w
        .approvals
        .decide(&w.b, r.id, Decision::Reject, "wrong party")
        .unwrap();
    assert_eq!(r.state, RequestState::Rejected);
}

fn sign(w: &World, r: &StampRequest) -> Result<StampRequest, ApprovalError> {
    w.approvals
        .mark_signed(&Caller::Daemon, r.id, signed_all(r))
}

#[test]
fn daily_quota_counts_documents_stamped_per_local_day() {
    let w = world();
    set_policy(&w, |p| {
        p.daily_quota = Some(3);
        p.request_ttl_secs = 86_400;
    });
    // 2026-01-05 09:00 UTC = 17:00 Beijing. Pending requests use none of the quota: any
    // number of them may be asked (up to the pending caps).
    for n in 0..10 {
        ask(&w, &[100 + n]).unwrap();
    }
    // More documents than the quota in one request can never be stamped today.
    let err = ask(&w, &[1, 2, 3, 4]).unwrap_err();
    assert!(
        matches!(
            err,
            ApprovalError::QuotaExceeded {
                quota: 3,
                used: 0,
                requested: 4,
                ..
            }
        ),
        "{err}"
    );
    let first = approved(&w, &[1, 2]);
    let second = approved(&w, &[3, 4]);
    w.approvals
        .begin_signing(&Caller::Daemon, first.id)
        .unwrap();
    sign(&w, &first).unwrap();
    // Two stamped: a request for two more is refused when asked, before signing and when
    // its signatures would be kept.
    let err = ask(&w, &[5, 6]).unwrap_err();
    assert!(
        matches!(
            err,
            ApprovalError::QuotaExceeded {
                used: 2,
                requested: 2,
                ..
            }
        ),
        "{err}"
    );
    assert!(matches!(
        w.approvals.begin_signing(&Caller::Daemon, second.id),
        Err(ApprovalError::QuotaExceeded { used: 2, .. })
    ));
    assert!(matches!(
        sign(&w, &second),
        Err(ApprovalError::QuotaExceeded { used: 2, .. })
    ));
    let third = approved(&w, &[5]);
    sign(&w, &third).unwrap();
    assert!(matches!(
        ask(&w, &[6]),
        Err(ApprovalError::QuotaExceeded { used: 3, .. })
    ));
    // 16:00 UTC is midnight in Beijing: a new day.
    w.f.clock.set(datetime!(2026-01-05 15:59 UTC));
    assert!(ask(&w, &[6]).is_err());
    w.f.clock.set(datetime!(2026-01-05 16:00 UTC));
    ask(&w, &[6, 7, 8]).unwrap();
    w.approvals
        .begin_signing(&Caller::Daemon, second.id)
        .unwrap();
    sign(&w, &second).unwrap();
}

#[test]
fn pending_requests_are_capped_per_client_and_per_seal() {
    let mut w = world();
    w.approvals = w.approvals.clone().with_limits(RequestLimits {
        max_documents: 3,
        max_pending_per_client: 2,
        max_pending_per_seal: 3,
    });
    set_policy(&w, |p| {
        p.allowed_clients.push(id_of(&w.other_client));
        p.request_ttl_secs = 600;
    });
    let too_many = ask(&w, &[1, 2, 3, 4]).unwrap_err();
    assert!(
        too_many.to_string().contains("at most 3 per request"),
        "{too_many}"
    );
    let first = ask(&w, &[1]).unwrap();
    ask(&w, &[2]).unwrap();
    let err = ask(&w, &[3]).unwrap_err();
    assert!(
        matches!(
            &err,
            ApprovalError::TooManyPending {
                open: 2,
                limit: 2,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("client oa-app"), "{err}");
    // Another client still may, up to the seal's cap.
    let other = |n: u8| {
        w.approvals.create_request(
            &w.other_client,
            NewStampRequest {
                seal_id: w.seal,
                documents: vec![doc(n)],
                purpose: "crm".into(),
                origin: None,
            },
        )
    };
    other(10).unwrap();
    let err = other(11).unwrap_err();
    assert!(
        err.to_string().contains(&format!("seal {}", w.seal)),
        "{err}"
    );
    // A decided request frees its place; so does one past its time.
    w.approvals
        .decide(&w.a, first.id, Decision::Reject, "no")
        .unwrap();
    ask(&w, &[3]).unwrap();
    assert!(ask(&w, &[4]).is_err());
    w.f.clock.set(datetime!(2026-01-05 09:11 UTC));
    ask(&w, &[4]).unwrap();
}

#[test]
fn long_or_hidden_text_is_refused_and_changes_nothing() {
    let w = world();
    let long = w
        .approvals
        .create_request(
            &w.client,
            NewStampRequest {
                seal_id: w.seal,
                documents: vec![doc(1)],
                purpose: "p".repeat(1_001),
                origin: None,
            },
        )
        .unwrap_err();
    assert!(matches!(long, ApprovalError::BadText { .. }), "{long}");
    assert_eq!(
        long.to_string(),
        "`purpose` is 1001 characters long; at most 1000 are allowed"
    );
    let named = w
        .approvals
        .create_request(
            &w.client,
            NewStampRequest {
                seal_id: w.seal,
                documents: vec![StampDocument {
                    digest: Digest32([1; 32]),
                    name: "invoice\u{202E}fdp.exe".into(),
                }],
                purpose: "ok".into(),
                origin: None,
            },
        )
        .unwrap_err();
    assert!(named.to_string().contains("`document name`"), "{named}");
    assert!(named.to_string().contains("U+202E"), "{named}");
    let r = ask(&w, &[1]).unwrap();
    let comment = w
        .approvals
        .decide(&w.a, r.id, Decision::Approve, "fine\nreally")
        .unwrap_err();
    assert!(comment.to_string().contains("`comment`"), "{comment}");
    // Nothing was recorded but the one good request.
    let r = w.approvals.get(&admin(), r.id).unwrap();
    assert!(r.votes.is_empty());
    let pending =
        w.f.store
            .read(|tx| tx.requests_in_state(RequestState::Pending))
            .unwrap();
    assert_eq!(pending.len(), 1);
}

#[test]
fn office_hours_in_their_time_zone() {
    let w = world();
    set_policy(&w, |p| {
        p.request_ttl_secs = 86_400;
        p.office_hours = Some(OfficeHours {
            utc_offset_minutes: 480,
            weekdays: vec![1, 2, 3, 4, 5],
            start_minute: 9 * 60,
            end_minute: 18 * 60,
        })
    });
    // Tuesday 00:30 UTC (the seal became valid on Monday 09:00 UTC) = 08:30 Beijing.
    w.f.clock.set(datetime!(2026-01-06 00:30 UTC));
    let err = ask(&w, &[1]).unwrap_err();
    assert!(
        matches!(err, ApprovalError::OutsideOfficeHours { .. }),
        "{err}"
    );
    // 01:00 UTC = 09:00 Beijing.
    w.f.clock.set(datetime!(2026-01-06 01:00 UTC));
    let r = approved(&w, &[1]);
    // Signing is checked too: 10:00 UTC = 18:00 Beijing.
    w.f.clock.set(datetime!(2026-01-06 09:59 UTC));
    w.approvals.begin_signing(&Caller::Daemon, r.id).unwrap();
    w.f.clock.set(datetime!(2026-01-06 10:00 UTC));
    assert!(matches!(
        w.approvals.begin_signing(&Caller::Daemon, r.id),
        Err(ApprovalError::OutsideOfficeHours { .. })
    ));
    // Saturday in Beijing.
    w.f.clock.set(datetime!(2026-01-10 02:00 UTC));
    assert!(matches!(
        ask(&w, &[2]),
        Err(ApprovalError::OutsideOfficeHours { .. })
    ));
}

/// Puts a request into `state` by allowed steps.
fn request_in(w: &World, state: RequestState, n: u8) -> RequestId {
    match state {
        RequestState::Pending => ask(w, &[n]).unwrap().id,
        RequestState::Approved => approved(w, &[n]).id,
        RequestState::Signed => {
            let r = approved(w, &[n]);
            w.approvals
                .mark_signed(&Caller::Daemon, r.id, signed_all(&r))
                .unwrap()
                .id
        }
        RequestState::Rejected => {
            let r = ask(w, &[n]).unwrap();
            w.approvals
                .decide(&w.a, r.id, Decision::Reject, "")
                .unwrap()
                .id
        }
        RequestState::Failed => {
            let r = approved(w, &[n]);
            w.approvals
                .mark_failed(&Caller::Daemon, r.id, "UKey removed")
                .unwrap()
                .id
        }
        RequestState::Expired => {
            let r = ask(w, &[n]).unwrap();
            w.f.clock.advance(time::Duration::hours(2));
            assert_eq!(w.approvals.expire_stale().unwrap(), vec![r.id]);
            r.id
        }
    }
}

#[test]
fn every_illegal_transition_is_refused() {
    #[derive(Debug, Clone, Copy)]
    enum Op {
        Approve,
        Reject,
        Sign,
        Fail,
    }
    let mut n = 0u8;
    for &from in RequestState::ALL {
        for op in [Op::Approve, Op::Reject, Op::Sign, Op::Fail] {
            n += 1;
            let w = world(); // fresh clock and quota for each case
            let id = request_in(&w, from, n);
            let r = w.approvals.get(&admin(), id).unwrap();
            let (to, result) = match op {
                // The approve that completes the quorum (c has not voted in any setup).
                Op::Approve => (
                    RequestState::Approved,
                    w.approvals.decide(&w.c, id, Decision::Approve, ""),
                ),
                Op::Reject => (
                    RequestState::Rejected,
                    w.approvals.decide(&w.c, id, Decision::Reject, ""),
                ),
                Op::Sign => (
                    RequestState::Signed,
                    w.approvals.mark_signed(&Caller::Daemon, id, signed_all(&r)),
                ),
                Op::Fail => (
                    RequestState::Failed,
                    w.approvals.mark_failed(&Caller::Daemon, id, "x"),
                ),
            };
            if from == RequestState::Pending && matches!(op, Op::Approve) {
                // One approval of two leaves it pending: legal, no transition yet.
                assert_eq!(result.unwrap().state, RequestState::Pending);
                continue;
            }
            if rules::transition_allowed(from, to) {
                assert_eq!(result.unwrap().state, to, "{from} --{op:?}-->");
            } else {
                let err = result.unwrap_err();
                assert!(
                    matches!(err, ApprovalError::IllegalTransition { from: f, to: t, .. } if f == from && t == to),
                    "{from} --{op:?}--> {to}: {err}"
                );
                assert_eq!(w.approvals.get(&admin(), id).unwrap().state, from);
            }
        }
    }
    // Expiry only takes open requests, and asks the writer for nothing when none is due.
    let w = world();
    let done = request_in(&w, RequestState::Signed, 1);
    w.f.clock.advance(time::Duration::days(2));
    let commits = w.f.store.stats().commits;
    assert!(w.approvals.expire_stale().unwrap().is_empty());
    assert_eq!(w.f.store.stats().commits, commits, "nothing due: no write");
    assert_eq!(
        w.approvals.get(&admin(), done).unwrap().state,
        RequestState::Signed
    );
    // begin_signing on a pending request is the pending → signed transition.
    let p = request_in(&w, RequestState::Pending, 2);
    assert!(matches!(
        w.approvals.begin_signing(&Caller::Daemon, p),
        Err(ApprovalError::IllegalTransition { .. })
    ));
}

#[test]
fn late_decisions_expire_the_request() {
    let w = world();
    let r = ask(&w, &[1]).unwrap();
    w.f.clock.advance(time::Duration::seconds(3600));
    let err = w
        .approvals
        .decide(&w.a, r.id, Decision::Approve, "")
        .unwrap_err();
    assert!(
        matches!(err, ApprovalError::Expired(id) if id == r.id),
        "{err}"
    );
    assert_eq!(
        w.approvals.get(&admin(), r.id).unwrap().state,
        RequestState::Expired,
        "the expiry is recorded even though the call failed"
    );
    // An approved request not signed in time expires too.
    let r = approved(&w, &[2]);
    w.f.clock.advance(time::Duration::seconds(3600));
    assert!(matches!(
        w.approvals.begin_signing(&Caller::Daemon, r.id),
        Err(ApprovalError::Expired(_))
    ));
    assert_eq!(
        w.approvals.get(&admin(), r.id).unwrap().state,
        RequestState::Expired,
        "begin_signing records the expiry"
    );
}

#[test]
fn unusable_seal_refuses_at_once() {
    let w = world();
    let r = approved(&w, &[1]);
    w.f.registry
        .change_state(&admin(), w.seal, SealState::Suspended, "inspection")
        .unwrap();
    assert!(matches!(
        ask(&w, &[2]),
        Err(ApprovalError::Seal(SealError::NotUsable { .. }))
    ));
    assert!(matches!(
        w.approvals.begin_signing(&Caller::Daemon, r.id),
        Err(ApprovalError::Seal(SealError::NotUsable { .. }))
    ));
}

#[test]
fn only_approved_digests_are_signed_and_batches_complete() {
    let w = world();
    let r = approved(&w, &[1, 2, 3]);
    let mut wrong = signed_all(&r);
    wrong[0].digest = Digest32([9; 32]);
    assert!(matches!(
        w.approvals.mark_signed(&Caller::Daemon, r.id, wrong),
        Err(ApprovalError::DigestMismatch { .. })
    ));
    let partial = signed_all(&r)[..2].to_vec();
    assert!(matches!(
        w.approvals.mark_signed(&Caller::Daemon, r.id, partial),
        Err(ApprovalError::DigestMismatch { .. })
    ));
    assert!(w.approvals.signatures(r.id).unwrap().is_empty());
    // Reported out of order, kept in the request's document order.
    let mut reported: Vec<SignedDocument> = signed_all(&r)
        .into_iter()
        .enumerate()
        .map(|(i, mut s)| {
            s.ses_signature = vec![i as u8; 3];
            s
        })
        .collect();
    reported.reverse();
    let r = w
        .approvals
        .mark_signed(&Caller::Daemon, r.id, reported)
        .unwrap();
    assert_eq!(r.state, RequestState::Signed);
    let kept = w.approvals.signatures(r.id).unwrap();
    let digests: Vec<_> = kept.iter().map(|k| k.digest).collect();
    let wanted: Vec<_> = r.documents.iter().map(|d| d.digest).collect();
    assert_eq!(digests, wanted);
    assert_eq!(kept[2].ses_signature, vec![2; 3]);
    let sigs =
        w.f.store
            .read(|tx| tx.audit_rows(0, 1000))
            .unwrap()
            .into_iter()
            .filter(|r| r.kind == "signature")
            .count();
    assert_eq!(sigs, 3, "one usage record per document");
}

#[test]
fn bad_documents_are_refused() {
    let w = world();
    assert!(matches!(ask(&w, &[]), Err(ApprovalError::BadDocuments(_))));
    assert!(matches!(
        ask(&w, &[1, 1]),
        Err(ApprovalError::BadDocuments(_))
    ));
}

#[test]
fn pending_lists_follow_the_caller() {
    let w = world();
    let r1 = ask(&w, &[1]).unwrap();
    let r2 = ask(&w, &[2]).unwrap();
    w.approvals
        .decide(&w.a, r1.id, Decision::Approve, "")
        .unwrap();
    let ids = |c: &Caller| -> Vec<RequestId> {
        w.approvals
            .list_pending(c)
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect()
    };
    assert_eq!(ids(&w.a), vec![r2.id], "alice already voted on r1");
    assert_eq!(ids(&w.b), vec![r1.id, r2.id]);
    assert_eq!(ids(&w.client), vec![r1.id, r2.id]);
    assert!(ids(&w.other_client).is_empty());
    assert!(ids(&w.stranger).is_empty());
    assert!(matches!(
        w.approvals.get(&w.stranger, r1.id),
        Err(ApprovalError::NotFound(_))
    ));
}

#[test]
fn policies_are_checked() {
    let w = world();
    let mut p = w.approvals.policy(w.seal).unwrap().unwrap();
    p.required_approvals = 4;
    assert!(matches!(
        w.approvals.set_policy(&admin(), p.clone()),
        Err(ApprovalError::BadPolicy(_))
    ));
    p.required_approvals = 1;
    p.approvers.push(id_of(&w.client)); // a client, not an approver
    assert!(matches!(
        w.approvals.set_policy(&admin(), p.clone()),
        Err(ApprovalError::BadPolicy(_))
    ));
    p.approvers.pop();
    assert!(matches!(
        w.approvals.set_policy(&w.a, p),
        Err(ApprovalError::Forbidden(_))
    ));
    // No policy, no stamping.
    let other = crate::seal::tests::enrol(
        &w.f,
        crate::seal::tests::new_seal(
            &w.f,
            crate::seal::SealKind::Contract,
            crate::seal::tests::ORG,
            "ES-9",
        ),
    )
    .unwrap();
    let err = w
        .approvals
        .create_request(
            &w.client,
            NewStampRequest {
                seal_id: other.id,
                documents: vec![doc(1)],
                purpose: "x".into(),
                origin: None,
            },
        )
        .unwrap_err();
    assert!(matches!(err, ApprovalError::NoPolicy(_)), "{err}");
}

#[test]
fn pin_modes() {
    let mut p = policy(1, &[], &[], 1);
    assert!(pin_needed(&p, Some(0), 0));
    p.pin_mode = PinMode::Window { minutes: 15 };
    assert!(!pin_needed(&p, Some(0), 899));
    assert!(pin_needed(&p, Some(0), 900));
}

/// The custody records of `w`'s store, with `wang` enrolled as a custodian to hand seals to.
fn custodians_with_wang(w: &World) -> crate::custody::Custodians {
    let ids = Identities::new(
        w.f.store.clone(),
        w.f.clock.clone(),
        Arc::new(TokenKey::from_bytes([3; 32])),
    );
    caller(&ids, "wang", &[Role::Custodian]);
    crate::custody::Custodians::new(w.f.store.clone(), w.f.clock.clone())
}

#[test]
fn a_custody_transfer_holds_signing_until_the_new_custodian_changes_the_pin() {
    let w = world();
    let custodians = custodians_with_wang(&w);
    let r = approved(&w, &[1]);
    custodians.transfer("root", w.seal, "wang").unwrap();
    let err = w
        .approvals
        .begin_signing(&Caller::Daemon, r.id)
        .unwrap_err();
    assert!(
        matches!(err, ApprovalError::PinChangeRequired { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("must change the token PIN"),
        "{err}"
    );
    let serial = w.f.registry.get(w.seal).unwrap().device_serial;
    custodians
        .record_pin_change("wang", &serial, "change")
        .unwrap();
    w.approvals.begin_signing(&Caller::Daemon, r.id).unwrap();
}

#[test]
fn what_changes_while_the_device_signs_keeps_nothing() {
    // Revoked directly in the store (no open request is failed that way) after signing began.
    let w = world();
    let r = approved(&w, &[1]);
    w.approvals.begin_signing(&Caller::Daemon, r.id).unwrap();
    w.f.registry
        .change_state(&admin(), w.seal, SealState::Revoked, "key compromised")
        .unwrap();
    assert!(matches!(
        w.approvals
            .mark_signed(&Caller::Daemon, r.id, signed_all(&r)),
        Err(ApprovalError::Seal(SealError::NotUsable { .. }))
    ));
    assert!(w.approvals.signatures(r.id).unwrap().is_empty());
    assert_eq!(
        w.approvals.get(&admin(), r.id).unwrap().state,
        RequestState::Approved,
        "the worker marks it failed with the reason"
    );

    // Handed to a new custodian while signing: held until the new custodian changes the PIN.
    let w = world();
    let custodians = custodians_with_wang(&w);
    let r = approved(&w, &[1]);
    w.approvals.begin_signing(&Caller::Daemon, r.id).unwrap();
    custodians.transfer("root", w.seal, "wang").unwrap();
    assert!(matches!(
        w.approvals
            .mark_signed(&Caller::Daemon, r.id, signed_all(&r)),
        Err(ApprovalError::PinChangeRequired { .. })
    ));
    let records = w.f.store.read(|tx| tx.audit_rows(0, 1000)).unwrap();
    assert!(
        !records.iter().any(|row| row.kind == "signature"),
        "no usage record of a signature that was not kept"
    );
}

#[test]
fn an_unblock_holds_a_seal_without_a_custodian_until_the_pin_is_changed() {
    let w = world();
    let custodians = crate::custody::Custodians::new(w.f.store.clone(), w.f.clock.clone());
    let serial = w.f.registry.get(w.seal).unwrap().device_serial;
    let r = approved(&w, &[1]);
    custodians
        .record_pin_change("so", &serial, "unblock")
        .unwrap();
    let err = w
        .approvals
        .begin_signing(&Caller::Daemon, r.id)
        .unwrap_err();
    assert!(
        matches!(err, ApprovalError::PinResetBySecurityOfficer { .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("custodian must change the PIN (sealctl pin-change"),
        "{err}"
    );
    custodians
        .record_pin_change("wang", &serial, "change")
        .unwrap();
    w.approvals.begin_signing(&Caller::Daemon, r.id).unwrap();
}

#[test]
fn enrolment_keeps_the_seal_and_its_policy_together_or_neither() {
    use crate::seal::tests::{new_seal, ORG};
    use crate::seal::SealKind;

    let w = world();
    let before = w.f.registry.list().unwrap().len();
    let records = |w: &World| w.f.store.read(|tx| tx.audit_rows(0, 1000)).unwrap().len();
    let logged = records(&w);
    // The shape is right, but a client is named as an approver: the policy step, inside the
    // enrolment's transaction, refuses after the seal was inserted.
    let bad = policy(0, &[&w.client], &[&w.a, &w.client], 1);
    let err = w
        .approvals
        .enrol(
            &w.f.registry,
            &admin(),
            new_seal(
                &w.f,
                SealKind::Contract,
                "示例科技（北京）有限公司合同专用章",
                "ES-2",
            ),
            &w.f.pki.maker(),
            bad,
        )
        .unwrap_err();
    assert!(
        matches!(&err, ApprovalError::BadPolicy(m) if m.contains("approver role")),
        "{err}"
    );
    assert_eq!(
        w.f.registry.list().unwrap().len(),
        before,
        "no seal was kept"
    );
    assert_eq!(
        records(&w),
        logged,
        "no usage record of an enrolment that did not happen"
    );
    // The same seal with a good policy: both are there, the seal's id in the policy.
    let good = policy(0, &[&w.client], &[&w.a, &w.b], 2);
    let (seal, set) = w
        .approvals
        .enrol(
            &w.f.registry,
            &admin(),
            new_seal(
                &w.f,
                SealKind::Contract,
                "示例科技（北京）有限公司合同专用章",
                "ES-2",
            ),
            &w.f.pki.maker(),
            good,
        )
        .unwrap();
    assert_eq!(seal.organisation, ORG);
    assert_eq!(set.seal_id, seal.id);
    assert_eq!(w.approvals.policy(seal.id).unwrap(), Some(set));
    assert_eq!(w.f.registry.list().unwrap().len(), before + 1);
}

fn file_row(n: u32, d: &StampDocument) -> StampFileRow {
    use crate::ofd::seal::{Placement, SealMode, SealPlan};
    StampFileRow {
        file: StampFile {
            n,
            format: crate::store::model::DocumentFormat::Ofd,
            name: d.name.clone(),
            size: 100,
            sm3: d.digest,
            mode: SealMode::Continue,
            placements: vec![Placement::At {
                page: 1,
                x: 10.0,
                y: 10.0,
                width: None,
                height: None,
            }],
            plan: SealPlan {
                pages: 1,
                stamps: Vec::new(),
            },
            sealed: false,
        },
        upload: Some("uploads/u.ofd".into()),
        offset: u64::from(n) * 100,
        sealed: None,
    }
}

#[test]
fn uploaded_files_go_with_the_request_and_every_one_must_be_sealed() {
    let w = world();
    let docs = vec![doc(1), doc(2)];
    let new = |docs: Vec<StampDocument>| NewStampRequest {
        seal_id: w.seal,
        documents: docs,
        purpose: "licences".into(),
        origin: None,
    };
    // Files that do not match the documents (order, digest) are refused; nothing is kept.
    let swapped = vec![file_row(1, &docs[1]), file_row(2, &docs[0])];
    let err = w
        .approvals
        .create_request_with_files(&w.client, new(docs.clone()), swapped)
        .unwrap_err();
    assert!(matches!(err, ApprovalError::BadDocuments(_)), "{err}");

    let rows = vec![file_row(1, &docs[0]), file_row(2, &docs[1])];
    let r = w
        .approvals
        .create_request_with_files(&w.client, new(docs.clone()), rows)
        .unwrap();
    assert_eq!(r.files.len(), 2);
    let seen = w.approvals.get(&w.a, r.id).unwrap();
    assert_eq!(seen.files[1].name, "contract-2.ofd");
    assert_eq!(seen.files[1].sm3, docs[1].digest);
    let r = approve_both(&w, r.id);
    // Signatures for both documents but a sealed file for only one: refused, still approved.
    let err = w
        .approvals
        .mark_signed_with_files(
            &Caller::Daemon,
            r.id,
            signed_all(&r),
            vec![(1, "sealed/1-1.ofd".into())],
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("1 of 2 documents reported sealed"),
        "{err}"
    );
    assert_eq!(
        w.approvals.get(&w.a, r.id).unwrap().state,
        RequestState::Approved
    );
    let done = w
        .approvals
        .mark_signed_with_files(
            &Caller::Daemon,
            r.id,
            signed_all(&r),
            vec![(1, "sealed/1-1.ofd".into()), (2, "sealed/1-2.ofd".into())],
        )
        .unwrap();
    assert_eq!(done.state, RequestState::Signed);
    assert!(done.files.iter().all(|f| f.sealed));
    let rows = w.f.store.read(|tx| tx.files(r.id)).unwrap();
    assert_eq!(rows[1].sealed.as_deref(), Some("sealed/1-2.ofd"));
    assert_eq!(rows[1].offset, 200);
    // Final: its upload is due for removal.
    let due = w.f.store.read(|tx| tx.final_uploads()).unwrap();
    assert_eq!(due.len(), 2);
}

#[test]
fn a_claim_holds_until_its_lease_runs_out_and_only_its_holder_keeps_signatures() {
    let w = world();
    let r = approved(&w, &[1]);
    let lease = std::time::Duration::from_secs(30);
    let node_a = w.approvals.clone().with_claimant("a/1-00");
    let node_b = w.approvals.clone().with_claimant("b/2-00");
    assert_eq!(node_b.claimable(&[w.seal], 10).unwrap(), vec![r.id]);
    assert!(node_a.claim(r.id, lease).unwrap(), "nobody held it");
    assert!(!node_b.claim(r.id, lease).unwrap(), "a holds it");
    assert!(
        !node_a.claim(r.id, lease).unwrap(),
        "not twice, even by its holder"
    );
    assert!(node_b.claimable(&[w.seal], 10).unwrap().is_empty());
    // a renews at 20 s; at 40 s the renewed lease (till 50 s) still holds.
    w.f.clock.advance(time::Duration::seconds(20));
    assert!(node_a.renew_claim(r.id, lease).unwrap());
    w.f.clock.advance(time::Duration::seconds(20));
    assert!(!node_b.claim(r.id, lease).unwrap());
    // a stops renewing (it died): after the lease, b takes the request over.
    w.f.clock.advance(time::Duration::seconds(11));
    assert_eq!(node_b.claimable(&[w.seal], 10).unwrap(), vec![r.id]);
    assert!(node_b.claim(r.id, lease).unwrap());
    assert!(
        !node_a.renew_claim(r.id, lease).unwrap(),
        "a's claim is gone"
    );
    // a, slow rather than dead, signed too: nothing of it is kept, nor may it fail the request.
    let refused = node_a
        .mark_signed(&Caller::Daemon, r.id, signed_all(&r))
        .unwrap_err();
    assert!(
        matches!(&refused, ApprovalError::ClaimedElsewhere { holder, .. } if holder == "b/2-00"),
        "{refused:?}"
    );
    assert!(matches!(
        node_a.mark_failed(&Caller::Daemon, r.id, "timed out"),
        Err(ApprovalError::ClaimedElsewhere { .. })
    ));
    let signed = node_b
        .mark_signed(&Caller::Daemon, r.id, signed_all(&r))
        .unwrap();
    assert_eq!(signed.state, RequestState::Signed);
    assert!(
        !node_a.claim(r.id, lease).unwrap(),
        "a signed request is not claimable"
    );
    assert!(node_a.claimable(&[w.seal], 10).unwrap().is_empty());
}

#[test]
fn releasing_claims_frees_what_a_stopped_process_held() {
    let w = world();
    let r = approved(&w, &[2]);
    let lease = std::time::Duration::from_secs(30);
    let before = w.approvals.clone().with_claimant("seald/1-aa");
    assert!(before.claim(r.id, lease).unwrap());
    let after = w.approvals.clone().with_claimant("seald/2-bb");
    assert!(!after.claim(r.id, lease).unwrap());
    assert_eq!(after.release_claims().unwrap(), 1);
    assert!(after.claim(r.id, lease).unwrap());
}
