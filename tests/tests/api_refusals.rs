//! Every refusal answers with its status, a stable code and a clear message; nothing is signed;
//! the refusal is in the usage log.

use std::time::{Duration, Instant};

use seald_tests::daemon::RawResponse;
use seald_tests::deployment::{Deployment, Who, SERIAL};
use seald_tests::stamping::digest;

fn refused(r: &RawResponse, status: u16, code: &str, words: &str) {
    assert_eq!(r.status, status, "{code}: {}", r.body);
    let v = r.json();
    assert_eq!(v["code"], code, "{}", r.body);
    let message = v["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(words),
        "{code}: message {message:?} should mention {words:?}"
    );
}

#[test]
fn refusals_have_codes_sign_nothing_and_are_logged() {
    let d = Deployment::hsm_sim_with("sansec", "\n[audit]\nrefusal_summary_secs = 1\n");
    d.login_custodian();
    let doc = [digest(7, 1)];
    let mut codes = Vec::new();
    let mut expect = |r: RawResponse, status: u16, code: &'static str, words: &str| {
        refused(&r, status, code, words);
        codes.push(code);
    };

    // No token, a bad token, the wrong role.
    expect(
        d.call(
            "POST",
            "/v1/stamp-requests",
            None,
            Some(&serde_json::json!({"seal_id": 1, "digest": hex::encode(doc[0]), "purpose": "x"})),
        ),
        401,
        "unauthenticated",
        "Bearer",
    );
    let r = d.daemon.raw(
        "GET",
        "/v1/seals",
        &[("Authorization", "Bearer sealtk_nonsense")],
        None,
    );
    expect(r, 401, "unauthenticated", "not valid");
    expect(
        d.request_as(Who::Approver1, 1, &doc),
        403,
        "forbidden",
        "client role",
    );
    let id = d.request(1, &doc);
    expect(
        d.call(
            "POST",
            &format!("/v1/stamp-requests/{id}/approve"),
            Some(Who::Client),
            None,
        ),
        403,
        "forbidden",
        "approver role",
    );
    expect(
        d.call("GET", "/v1/audit", Some(Who::Client), None),
        403,
        "forbidden",
        "auditor",
    );
    expect(
        d.call(
            "POST",
            &format!("/v1/devices/{SERIAL}/logout"),
            Some(Who::Client),
            None,
        ),
        403,
        "forbidden",
        "custodian",
    );

    // The same approver twice; approving a rejected request.
    d.call(
        "POST",
        &format!("/v1/stamp-requests/{id}/approve"),
        Some(Who::Approver1),
        None,
    );
    expect(
        d.call(
            "POST",
            &format!("/v1/stamp-requests/{id}/approve"),
            Some(Who::Approver1),
            None,
        ),
        409,
        "already_voted",
        "alice",
    );
    let rejected = d.request(1, &[digest(7, 2)]);
    let r = d.call(
        "POST",
        &format!("/v1/stamp-requests/{rejected}/reject"),
        Some(Who::Approver1),
        Some(&serde_json::json!({"comment": "wrong file"})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["state"], "rejected");
    expect(
        d.call(
            "POST",
            &format!("/v1/stamp-requests/{rejected}/approve"),
            Some(Who::Approver2),
            None,
        ),
        409,
        "invalid_state",
        "rejected",
    );

    // Self-approval: dave may ask and approve on seal 2, but not his own request.
    let r = d.request_as(Who::Dual, 2, &[digest(7, 3)]);
    assert_eq!(r.status, 202, "{}", r.body);
    let own = r.json()["id"].as_i64().unwrap();
    expect(
        d.call(
            "POST",
            &format!("/v1/stamp-requests/{own}/approve"),
            Some(Who::Dual),
            None,
        ),
        403,
        "self_approval",
        "made request",
    );

    // A seal suspended between approval and signing: the request fails, nothing signed.
    let late = d.request(3, &[digest(7, 4)]);
    d.call(
        "POST",
        &format!("/v1/stamp-requests/{late}/approve"),
        Some(Who::Approver1),
        None,
    );
    d.sealctl("seal", &["suspend", "3", "--reason", "audit visit"]);
    d.call(
        "POST",
        &format!("/v1/stamp-requests/{late}/approve"),
        Some(Who::Approver2),
        None,
    );
    let v = d.wait_final(late);
    assert_eq!(v["state"], "failed", "{v}");
    assert!(v["failure"].as_str().unwrap().contains("suspended"), "{v}");
    assert!(v.get("signatures").is_none());
    expect(
        d.request_as(Who::Client, 3, &doc),
        409,
        "seal_not_usable",
        "suspended",
    );

    // Revoked, lost, expired seals refuse at once.
    d.sealctl("seal", &["revoke", "2", "--reason", "replaced"]);
    expect(
        d.request_as(Who::Client, 2, &doc),
        409,
        "seal_not_usable",
        "revoked",
    );
    d.sealctl("seal", &["report-lost", "3", "--reason", "UKey lost"]);
    expect(
        d.request_as(Who::Client, 3, &doc),
        409,
        "seal_not_usable",
        "lost",
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let expired = loop {
        let r = d.request_as(Who::Client, 4, &doc);
        if r.status != 202 {
            break r;
        }
        assert!(Instant::now() < deadline, "seal 4 should have expired");
        std::thread::sleep(Duration::from_millis(500));
    };
    expect(expired, 409, "seal_not_usable", "seal 4");

    // A device not logged in: the approved request fails with a clear reason.
    seald_tests::stamping::logged_out_request_fails(&d, digest(7, 5));

    // Guards: Host, Origin, preflight, size, JSON, content type.
    let auth = format!("Bearer {}", d.token(Who::Client));
    let port = d.daemon.authority().rsplit(':').next().unwrap().to_owned();
    let body = serde_json::json!({"seal_id": 1, "digest": hex::encode(doc[0]), "purpose": "x"})
        .to_string();
    let json = ("Content-Type", "application/json");
    let a = ("Authorization", auth.as_str());
    let evil_host = format!("evil.example:{port}");
    expect(
        d.daemon.raw(
            "POST",
            "/v1/stamp-requests",
            &[a, json, ("Host", &evil_host)],
            Some(body.as_bytes()),
        ),
        421,
        "host_not_allowed",
        "loopback",
    );
    expect(
        d.daemon.raw(
            "POST",
            "/v1/stamp-requests",
            &[a, json, ("Origin", "https://evil.example")],
            Some(body.as_bytes()),
        ),
        403,
        "origin_not_allowed",
        "origin",
    );
    let r = d.daemon.raw(
        "OPTIONS",
        "/v1/stamp-requests",
        &[
            ("Origin", "https://evil.example"),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Private-Network", "true"),
        ],
        None,
    );
    assert_eq!(r.header("access-control-allow-origin"), None);
    assert_eq!(r.header("access-control-allow-private-network"), None);
    expect(r, 403, "origin_not_allowed", "origin");
    let big = vec![b' '; 2 * 1024 * 1024];
    expect(
        d.daemon
            .raw("POST", "/v1/stamp-requests", &[a, json], Some(&big)),
        413,
        "body_too_large",
        "larger",
    );
    expect(
        d.daemon.raw(
            "POST",
            "/v1/stamp-requests",
            &[a, json],
            Some(b"{\"seal_id\": 1,"),
        ),
        400,
        "malformed_json",
        "not valid JSON",
    );
    expect(
        d.daemon.raw(
            "POST",
            "/v1/stamp-requests",
            &[a, ("Content-Type", "text/plain")],
            Some(body.as_bytes()),
        ),
        415,
        "unsupported_media_type",
        "JSON",
    );

    // A malformed login body is refused without quoting the PIN anywhere.
    let r = d.call(
        "POST",
        &format!("/v1/devices/{SERIAL}/login"),
        Some(Who::Custodian),
        Some(&serde_json::json!({ "pin": 97531864 })),
    );
    assert!(!r.body.contains("97531864"), "{}", r.body);
    expect(r, 422, "invalid_request", "pin");

    // Nothing was signed, and every refusal is logged: an authenticated one as a `refusal`
    // record, an anonymous one counted in the window's `refusal-summary` (1 s here).
    assert!(d.audit("signature").is_empty(), "nothing may be signed");
    std::thread::sleep(Duration::from_millis(2500));
    let logged = d.audit("refusal");
    let summaries = d.audit("refusal-summary");
    for code in codes {
        let summarised = summaries.iter().any(|s| {
            s["detail"]["counts"]
                .as_object()
                .is_some_and(|c| c.keys().any(|k| k.ends_with(&format!(" {code}"))))
        });
        assert!(
            summarised || logged.iter().any(|r| r["detail"]["code"] == code),
            "refusal {code} is not logged"
        );
    }
    assert!(
        summaries
            .iter()
            .any(|s| s["detail"]["counts"]["401 unauthenticated"].as_u64() >= Some(2)),
        "{summaries:?}"
    );
    assert!(logged
        .iter()
        .any(|r| r["actor"] == "demo-client" && r["detail"]["code"] == "forbidden"));
    assert!(!logged.iter().any(|r| r.to_string().contains("97531864")));
    let out = d.sealctl("audit", &["verify"]);
    assert!(out.contains("chain intact"), "{out}");
}

#[test]
fn an_approver_of_another_seal_learns_nothing_by_voting() {
    let d = Deployment::hsm_sim("sansec");
    let id = d.request(1, &[digest(7, 9)]);
    let hidden = d.call(
        "GET",
        &format!("/v1/stamp-requests/{id}"),
        Some(Who::Dual),
        None,
    );
    refused(&hidden, 404, "request_not_found", &id.to_string());
    // dave approves seal 2, not seal 1: approve and reject answer as GET does, naming
    // neither the seal nor the state.
    for verb in ["approve", "reject"] {
        let r = d.call(
            "POST",
            &format!("/v1/stamp-requests/{id}/{verb}"),
            Some(Who::Dual),
            Some(&serde_json::json!({"comment": "curious"})),
        );
        assert_eq!(
            (r.status, r.json()),
            (hidden.status, hidden.json()),
            "{verb}"
        );
    }
    assert_eq!(
        d.call(
            "GET",
            &format!("/v1/stamp-requests/{id}"),
            Some(Who::Client),
            None
        )
        .json()["votes"],
        serde_json::json!([]),
        "no vote was recorded"
    );
}
