//! `POST /v1/verify` with a whole OFD (`{"ofd": base64}`): the document report, a changed
//! document named, the usage-log record, and the body's either/or rule.

use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::json;

use seald_tests::deployment::{Deployment, Who};

fn fixture(name: &str) -> Vec<u8> {
    let dir: PathBuf = std::env::var_os("SEALD_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .ancestors()
                .map(|d| d.join("shared").join("fixtures"))
                .find(|d| d.is_dir())
                .expect("shared/fixtures above the tests crate; or set SEALD_FIXTURES")
        });
    std::fs::read(dir.join("ses").join(name)).expect("fixture")
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn a_whole_ofd_is_verified_as_a_document() {
    let d = Deployment::hsm_sim("sansec");
    let r = d.call(
        "POST",
        "/v1/verify",
        Some(Who::Client),
        Some(&json!({ "ofd": b64(&fixture("gomain-999.ofd")) })),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    // The daemon judges chains against its own trust roots: the tax bureau's test CA is not
    // one, so the real file is invalid here, with every reference and signature intact.
    let s = &v["signatures"][0];
    assert_eq!(s["references"]["checked"], 20);
    assert!(s["references"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["ok"] == true));
    assert_eq!(s["stamps"][0]["page"], 1);
    let check = |id: &str| {
        s["report"]["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap()["status"]
            .clone()
    };
    assert_eq!(check("signer-signature"), "passed");
    assert_eq!(check("data-hash"), "passed");
    assert_eq!(check("signer-chain"), "failed");
    assert_eq!(v["valid"], false);

    let r = d.call(
        "POST",
        "/v1/verify",
        Some(Who::Client),
        Some(&json!({ "ofd": b64(&fixture("tampered/gomain-999-date-changed.ofd")) })),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["valid"], false);
    assert!(
        r.body.contains("/Doc_0/Pages/Page_0/Content.xml"),
        "{}",
        r.body
    );
    let outcomes: Vec<String> = d
        .audit("verification")
        .iter()
        .map(|r| r["detail"]["outcome"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(outcomes, ["invalid", "invalid"], "{outcomes:?}");

    // Either an OFD or a signature with its digest; not both, not neither; not garbage.
    for body in [
        json!({}),
        json!({ "ofd": "AAAA", "ses_signature": "AAAA" }),
        json!({ "ses_signature": "AAAA" }),
    ] {
        let r = d.call("POST", "/v1/verify", Some(Who::Client), Some(&body));
        assert_eq!(r.status, 422, "{body}: {}", r.body);
        assert_eq!(r.json()["code"], "invalid_verify_body");
    }
    let r = d.call(
        "POST",
        "/v1/verify",
        Some(Who::Client),
        Some(&json!({ "ofd": "not base64!" })),
    );
    assert_eq!(r.json()["code"], "invalid_ofd_encoding", "{}", r.body);
    let r = d.call(
        "POST",
        "/v1/verify",
        Some(Who::Client),
        Some(&json!({ "ofd": b64(b"PK\x03\x04 not a zip") })),
    );
    assert_eq!(r.json()["code"], "unreadable_ofd", "{}", r.body);
}
