//! Seals on a UKey driven through its GM/T 0016 SKF library, end to end through the API: the
//! demo's hsm-sim token, reached through hsm-sim's `SKF_*` entry points instead of PKCS#11
//! (`[[module]] api = "skf"`; containers named by key id), in GmSSL's ABI and in a wide one
//! (8-byte ULONG and BOOL, 32-byte ECC fields). Login with tries left, the full stamp flow
//! with OpenSSL checking the signatures, a batch, removal and insertion seen through
//! `SKF_WaitForDevEvent`, logout, PIN change and unblock; wrong PINs down to the final-try
//! guard and the lock, then the administrator's unblock.

use std::io::Write;
use std::path::Path;

use seald_tests::deployment::{Deployment, Who, SERIAL};
use seald_tests::stamping::{check_signed, digest, full_stamp_and_batch};
use serde_json::{json, Value};

/// Appends `text` to the file at `path`.
fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open for append");
    f.write_all(text.as_bytes()).expect("append");
}

/// The demo deployment with its token driven through SKF, both sides in the ABI `abi`
/// (`[skf]` keys of hsm-sim and `[module.skf]` keys of seald).
fn skf_deployment(abi: &str) -> Deployment {
    skf_deployment_with(abi, "")
}

/// Like [`skf_deployment`], with `seald_only` added to seald's `[module.skf]`.
fn skf_deployment_with(abi: &str, seald_only: &str) -> Deployment {
    Deployment::hsm_sim_prepared(
        "sansec",
        "",
        |demo| {
            append(
                &demo.join("hsm-sim.toml"),
                &format!("\n[skf]\ncontainer_names = \"id\"\n{abi}"),
            );
            // `[[module]]` is the demo config's last table.
            append(
                &demo.join("seald.toml"),
                &format!("api = \"skf\"\n[module.skf]\n{abi}{seald_only}"),
            );
        },
        &[],
    )
}

fn device(d: &Deployment) -> (Value, Value) {
    let v = d.call("GET", "/v1/devices", Some(Who::Client), None).json();
    let module = v["modules"][0].clone();
    let token = module["tokens"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["serial"] == SERIAL)
        .cloned()
        .unwrap_or_else(|| panic!("the demo token is listed: {v:#}"));
    (module, token)
}

#[test]
fn a_seal_on_an_skf_ukey_stamps_like_a_pkcs11_one() {
    let d = skf_deployment("");
    let (module, token) = device(&d);
    assert_eq!(module["api"], "skf", "{module:#}");
    assert_eq!(token["label"], "seald demo");

    // A wrong PIN: refused, with the device's count of tries.
    let r = d.login_attempt("Wr0ngPin55");
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.json()["code"], "pin_incorrect", "{}", r.body);
    let (_, token) = device(&d);
    assert_eq!(token["pin"]["count_low"], true, "one try spent: {token:#}");

    // Login, one stamp checked by OpenSSL and /v1/verify, then a batch of 100.
    full_stamp_and_batch(&d);

    // Pulled out: SKF_WaitForDevEvent tells seald at once; the login is gone with it.
    let events = d.subscribe(Who::Auditor);
    d.hsm_sim_run(&["eject", SERIAL]);
    events.expect("device-removed", &[SERIAL]);
    let v = d.call("GET", "/v1/devices", Some(Who::Client), None).json();
    assert!(
        v["modules"][0]["tokens"].as_array().unwrap().is_empty(),
        "{v:#}"
    );
    d.hsm_sim_run(&["insert", SERIAL]);
    events.expect("device-inserted", &[SERIAL]);
    let (_, token) = device(&d);
    assert_eq!(token["logged_in"], false, "{token:#}");
    let removals = d.audit("device");
    assert!(
        removals.iter().any(|r| r["detail"]["event"] == "removed"),
        "{removals:?}"
    );
    // Back in and logged in again, it stamps.
    d.login_custodian();
    let id = d.request(1, &[digest(9, 1)]);
    d.approve_both(id);
    check_signed(&d, &d.wait_final(id), &[digest(9, 1)], 0);
}

#[test]
fn a_wide_vendor_abi_and_the_pin_lifecycle() {
    // And the device computes SM3(Z‖M) (SKF_DigestInit with the key, SKF_Digest).
    let d = skf_deployment_with(
        "ulong = 8\nbool = 8\necc_field = 32\n",
        "digest = \"device\"\n",
    );
    d.login_custodian();
    let id = d.request(1, &[digest(7, 1)]);
    d.approve_both(id);
    check_signed(&d, &d.wait_final(id), &[digest(7, 1)], 1);

    // Logging out through SKF (ClearSecureState) stops stamping until the next login.
    seald_tests::stamping::logged_out_request_fails(&d, digest(7, 2));

    // PIN change (SKF_ChangePIN), then unblock with the administrator PIN (SKF_UnblockPIN).
    let old = std::fs::read_to_string(d.demo_dir().join("login.json")).unwrap();
    let old: Value = serde_json::from_str(&old).unwrap();
    let old = old["pin"].as_str().unwrap().to_owned();
    let r = d.call(
        "POST",
        &format!("/v1/devices/{SERIAL}/pin"),
        Some(Who::Custodian),
        Some(&json!({ "old_pin": old, "new_pin": "Qv7tR2mX9k" })),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        d.login_attempt(&old).status,
        403,
        "the old PIN no longer opens it"
    );
    assert_eq!(d.login_attempt("Qv7tR2mX9k").status, 200);
    let so = std::fs::read_to_string(d.demo_dir().join("so.pin")).unwrap();
    let r = d.call(
        "POST",
        &format!("/v1/devices/{SERIAL}/pin-unblock"),
        Some(Who::Custodian),
        Some(&json!({ "so_pin": so.trim(), "new_pin": "Hk4pW8zN2c" })),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // The SO knows the re-set PIN: seald has the custodian change it before the next stamp.
    let r = d.login_attempt("Hk4pW8zN2c");
    assert_eq!(r.status, 200, "{}", r.body);
    let r = d.call(
        "POST",
        &format!("/v1/devices/{SERIAL}/pin"),
        Some(Who::Custodian),
        Some(&json!({ "old_pin": "Hk4pW8zN2c", "new_pin": "Zt5yB3nQ8w" })),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(d.login_attempt("Zt5yB3nQ8w").status, 200);
    let id = d.request(1, &[digest(7, 3)]);
    d.approve_both(id);
    check_signed(&d, &d.wait_final(id), &[digest(7, 3)], 0);
}

#[test]
fn wrong_pins_through_skf_lock_the_ukey_and_the_administrator_unblocks_it() {
    let d = skf_deployment("");
    // hsm-sim gives 6 tries; the device's count (SKF_GetPINInfo) drives seald's warnings.
    for _ in 0..5 {
        let r = d.login_attempt("Wr0ngPin55");
        assert_eq!(r.status, 403, "{}", r.body);
    }
    let (_, token) = device(&d);
    assert_eq!(token["pin"]["final_try"], true, "{token:#}");
    // The last try is not spent unless a person confirms it.
    let r = d.login_attempt("Wr0ngPin55");
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.json()["code"], "pin_final_try", "{}", r.body);
    let r = d.call(
        "POST",
        &format!("/v1/devices/{SERIAL}/login"),
        Some(Who::Custodian),
        Some(&json!({ "pin": "Wr0ngPin55", "confirm_final_try": true })),
    );
    assert_eq!(r.status, 423, "{}", r.body);
    assert_eq!(r.json()["code"], "pin_locked", "{}", r.body);
    // Locked: even the right PIN is refused, and the listing says so.
    let pin: Value =
        serde_json::from_str(&std::fs::read_to_string(d.demo_dir().join("login.json")).unwrap())
            .unwrap();
    let r = d.login_attempt(pin["pin"].as_str().unwrap());
    assert_eq!(r.status, 423, "{}", r.body);
    let (_, token) = device(&d);
    assert_eq!(token["pin"]["locked"], true, "{token:#}");
    // The administrator PIN re-sets it (SKF_UnblockPIN); the new PIN opens the UKey.
    let so = std::fs::read_to_string(d.demo_dir().join("so.pin")).unwrap();
    let r = d.call(
        "POST",
        &format!("/v1/devices/{SERIAL}/pin-unblock"),
        Some(Who::Custodian),
        Some(&json!({ "so_pin": so.trim(), "new_pin": "Hk4pW8zN2c" })),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(d.login_attempt("Hk4pW8zN2c").status, 200);
    let (_, token) = device(&d);
    assert_eq!(token["pin"]["locked"], false, "{token:#}");
}
