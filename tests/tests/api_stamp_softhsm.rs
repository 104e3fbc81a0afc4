//! A full stamp through the API with a P-256 seal whose key lives on SoftHSM (CKM_ECDSA),
//! checked by the format layer and OpenSSL.

use std::time::{Duration, Instant};

use seald::approval::PinMode;
use seald_tests::checks::{b64, format_layer_accepts, openssl_accepts_with};
use seald_tests::deployment::{Deployment, Who};
use seald_tests::softhsm::USER_PIN;

#[test]
fn p256_seal_on_softhsm_stamps_end_to_end() {
    // The daemon's `[[module]]` as before: no model, i.e. a UKey (one session).
    let deployment = Deployment::softhsm_p256("", PinMode::EachStamp, "");
    let seal = deployment.seal_id;
    let call = |method: &str, path: &str, who: Who, body: Option<serde_json::Value>| {
        deployment.call(method, path, Some(who), body.as_ref())
    };
    let r = call(
        "POST",
        &format!("/v1/devices/{}/login", deployment.serial),
        Who::Custodian,
        Some(serde_json::json!({ "pin": USER_PIN })),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let digest = [0x5a; 32];
    let r = call(
        "POST",
        "/v1/stamp-requests",
        Who::Client,
        Some(
            serde_json::json!({ "seal_id": seal, "digest": hex::encode(digest), "purpose": "p256" }),
        ),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.json()["id"].as_i64().expect("id");
    for who in [Who::Approver1, Who::Approver2] {
        let r = call(
            "POST",
            &format!("/v1/stamp-requests/{id}/approve"),
            who,
            None,
        );
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let v = loop {
        let v = call(
            "GET",
            &format!("/v1/stamp-requests/{id}"),
            Who::Client,
            None,
        )
        .json();
        if v["state"] != "pending" && v["state"] != "approved" {
            break v;
        }
        assert!(Instant::now() < deadline, "not signed in 60 s: {v}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(v["state"], "signed", "{v}");
    let der = b64(v["signatures"][0]["ses_signature"]
        .as_str()
        .expect("signature"));
    let parsed = format_layer_accepts(&der, &digest, &deployment.trust_root());
    openssl_accepts_with(&parsed, deployment.dir.path(), "p256", false);

    // Each-stamp PIN mode: the token was logged out after the stamp.
    let r = call(
        "POST",
        "/v1/stamp-requests",
        Who::Client,
        Some(
            serde_json::json!({ "seal_id": seal, "digest": hex::encode([0x5b; 32]), "purpose": "p256" }),
        ),
    );
    let id = r.json()["id"].as_i64().expect("id");
    for who in [Who::Approver1, Who::Approver2] {
        call(
            "POST",
            &format!("/v1/stamp-requests/{id}/approve"),
            who,
            None,
        );
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let v = loop {
        let v = call(
            "GET",
            &format!("/v1/stamp-requests/{id}"),
            Who::Client,
            None,
        )
        .json();
        if v["state"] != "pending" && v["state"] != "approved" {
            break v;
        }
        assert!(Instant::now() < deadline, "not final in 60 s: {v}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(v["state"], "failed", "{v}");
    assert!(
        v["failure"].as_str().unwrap().contains("not logged in"),
        "{v}"
    );
}
