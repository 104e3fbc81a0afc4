//! Test bodies shared by the per-profile test binaries.

use serde_json::Value;

use crate::checks::{b64, format_layer_accepts, openssl_accepts};
use crate::deployment::{Deployment, Who};

/// A digest that differs per `(tag, i)`.
pub fn digest(tag: u8, i: u32) -> [u8; 32] {
    let mut d = [tag; 32];
    d[..4].copy_from_slice(&i.to_be_bytes());
    d
}

/// Checks every signature of a signed request `v` against `digests`, by the format layer and
/// (for the first few) by OpenSSL.
pub fn check_signed(d: &Deployment, v: &Value, digests: &[[u8; 32]], openssl_count: usize) {
    assert_eq!(v["state"], "signed", "{v}");
    let sigs = v["signatures"].as_array().expect("signatures");
    assert_eq!(sigs.len(), digests.len());
    let root = d.demo_dir().join("ca/root.pem");
    let tmp = tempfile::tempdir().expect("tmp");
    for (i, (s, want)) in sigs.iter().zip(digests).enumerate() {
        assert_eq!(s["digest"], hex::encode(want));
        let der = b64(s["ses_signature"].as_str().expect("ses_signature"));
        let parsed = format_layer_accepts(&der, want, &root);
        if i < openssl_count {
            openssl_accepts(&parsed, tmp.path(), &format!("sig{i}"));
        }
    }
}

/// The full flow on one deployment: login, request, two approvals, signature checked by the
/// format layer, OpenSSL and `/v1/verify`, the signature in the usage log; then a batch of 100.
pub fn full_stamp_and_batch(d: &Deployment) {
    d.login_custodian();
    let one = [digest(1, 1)];
    let id = d.request(1, &one);
    let pending = d.call(
        "GET",
        "/v1/stamp-requests?state=pending",
        Some(Who::Approver1),
        None,
    );
    assert_eq!(pending.status, 200);
    assert!(pending.json()["requests"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["id"] == id));
    d.approve_both(id);
    let v = d.wait_final(id);
    check_signed(d, &v, &one, 1);

    let sig = v["signatures"][0]["ses_signature"].as_str().unwrap();
    let r = d.call(
        "POST",
        "/v1/verify",
        Some(Who::Client),
        Some(&serde_json::json!({ "ses_signature": sig, "digest": hex::encode(one[0]) })),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["valid"], true, "{}", r.body);
    let r = d.call(
        "POST",
        "/v1/verify",
        Some(Who::Client),
        Some(&serde_json::json!({ "ses_signature": sig, "digest": hex::encode(digest(9, 9)) })),
    );
    assert_eq!(
        r.json()["valid"],
        false,
        "another digest must not verify: {}",
        r.body
    );

    let logged: Vec<Value> = d
        .audit("signature")
        .into_iter()
        .filter(|r| r["detail"]["request_id"] == id)
        .collect();
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0]["detail"]["document_digest"], hex::encode(one[0]));
    assert_eq!(
        logged[0]["detail"]["approvers"],
        serde_json::json!(["alice", "bob"])
    );

    let batch: Vec<[u8; 32]> = (0..100).map(|i| digest(2, i)).collect();
    let id = d.request(1, &batch);
    d.approve_both(id);
    let v = d.wait_final(id);
    check_signed(d, &v, &batch, 2);
    let logged = d
        .audit("signature")
        .into_iter()
        .filter(|r| r["detail"]["request_id"] == id)
        .count();
    assert_eq!(logged, 100);
}

/// The custodian logs the seal's token out; an approved request then fails saying the device
/// is not logged in.
pub fn logged_out_request_fails(d: &Deployment, digest: [u8; 32]) {
    let r = d.call(
        "POST",
        &format!("/v1/devices/{}/logout", d.serial),
        Some(Who::Custodian),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let id = d.request(1, &[digest]);
    d.approve_both(id);
    let v = d.wait_final(id);
    assert_eq!(v["state"], "failed", "{v}");
    assert!(
        v["failure"]
            .as_str()
            .unwrap_or_default()
            .contains("not logged in"),
        "{v}"
    );
}
