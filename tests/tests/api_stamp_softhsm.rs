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
    // Each-stamp PIN mode: the PIN is entered for one named request.
    let login_for = |id: i64| {
        deployment.call(
            "POST",
            &format!("/v1/devices/{}/login", deployment.serial),
            Some(Who::Custodian),
            Some(&serde_json::json!({ "pin": USER_PIN, "for_request": id })),
        )
    };
    let digest = [0x5a; 32];
    let id = deployment.request(seal, &[digest]);
    let r = login_for(id + 1000);
    assert_eq!(r.status, 404, "no such request: {}", r.body);
    let r = login_for(id);
    assert_eq!(r.status, 200, "{}", r.body);
    deployment.approve_both(id);
    let v = deployment.wait_final(id);
    assert_eq!(v["state"], "signed", "{v}");
    let der = b64(v["signatures"][0]["ses_signature"]
        .as_str()
        .expect("signature"));
    let parsed = format_layer_accepts(&der, &digest, &deployment.trust_root());
    openssl_accepts_with(&parsed, deployment.dir.path(), "p256", false);

    // The token was logged out after the stamp: the next request needs its own PIN entry.
    let id = deployment.request(seal, &[[0x5b; 32]]);
    deployment.approve_both(id);
    let v = deployment.wait_final(id);
    assert_eq!(v["state"], "failed", "{v}");
    assert!(
        v["failure"].as_str().unwrap().contains("not logged in"),
        "{v}"
    );

    // A PIN entered for request A does not sign request B, approved first; A still signs
    // with it, and B's stamp needs a second entry.
    let a = deployment.request(seal, &[[0x5c; 32]]);
    let b = deployment.request(seal, &[[0x5d; 32]]);
    assert_eq!(login_for(a).status, 200);
    deployment.approve_both(b);
    let v = deployment.wait_final(b);
    assert_eq!(v["state"], "failed", "{v}");
    assert!(
        v["failure"]
            .as_str()
            .unwrap()
            .contains(&format!("was not given for request {b}")),
        "{v}"
    );
    deployment.approve_both(a);
    assert_eq!(deployment.wait_final(a)["state"], "signed");
    let c = deployment.request(seal, &[[0x5e; 32]]);
    assert_eq!(login_for(c).status, 200, "a second PIN entry");
    deployment.approve_both(c);
    assert_eq!(deployment.wait_final(c)["state"], "signed");
}
