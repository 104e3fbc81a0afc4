//! A full stamp through the API with a P-256 seal whose key lives on SoftHSM (CKM_ECDSA),
//! checked by the format layer and OpenSSL.

use seald::approval::PinMode;
use seald_tests::checks::{b64, format_layer_accepts, openssl_accepts_with};
use seald_tests::deployment::{Deployment, Who};
use seald_tests::softhsm::USER_PIN;

#[test]
fn p256_seal_on_softhsm_stamps_end_to_end() {
    // The daemon's `[[module]]` as before: no model, i.e. a UKey (one session).
    let deployment = Deployment::softhsm_p256("", PinMode::EachStamp, "");
    let seal = deployment.seal_id;
    let r = deployment.call(
        "POST",
        &format!("/v1/devices/{}/login", deployment.serial),
        Some(Who::Custodian),
        Some(&serde_json::json!({ "pin": USER_PIN })),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let digest = [0x5a; 32];
    let id = deployment.request(seal, &[digest]);
    deployment.approve_both(id);
    let v = deployment.wait_final(id);
    assert_eq!(v["state"], "signed", "{v}");
    let der = b64(v["signatures"][0]["ses_signature"]
        .as_str()
        .expect("signature"));
    let parsed = format_layer_accepts(&der, &digest, &deployment.trust_root());
    openssl_accepts_with(&parsed, deployment.dir.path(), "p256", false);

    // Each-stamp PIN mode: the token was logged out after the stamp.
    let id = deployment.request(seal, &[[0x5b; 32]]);
    deployment.approve_both(id);
    let v = deployment.wait_final(id);
    assert_eq!(v["state"], "failed", "{v}");
    assert!(
        v["failure"].as_str().unwrap().contains("not logged in"),
        "{v}"
    );
}
