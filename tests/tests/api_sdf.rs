//! Seals on a cipher machine driven through its GM/T 0018 SDF library, end to end through the
//! API: the demo's hsm-sim token as "the cipher machine" (hsm-sim's `SDF_*` entry points,
//! `[[module]] api = "sdf"`, a pool of 4 sessions, key indexes 1 and 2 = the demo's key ids),
//! in GmSSL's layout and with 32-byte ECC fields. A wrong password, the full stamp flow with
//! OpenSSL checking the signatures and a batch of 100 over the pool, logout, the PIN
//! operations SDF does not have refused with a reason, and wrong passwords until the lock.

use std::path::Path;

use seald_tests::deployment::{Deployment, Who, SERIAL};
use seald_tests::stamping::{digest, full_stamp_and_batch};
use serde_json::json;

/// The demo with its token as an SDF cipher machine; `ecc_max_len` on both sides.
fn sdf_deployment(ecc_max_len: usize) -> Deployment {
    let edit = |path: &Path, model: &str, table: &str| {
        let text = std::fs::read_to_string(path).expect("demo config");
        assert!(text.contains("model = \"ukey\""), "{}", path.display());
        let text = text.replacen("model = \"ukey\"", model, 1) + table;
        std::fs::write(path, text).expect("write demo config");
    };
    Deployment::hsm_sim_prepared(
        "sansec",
        "",
        |demo| {
            edit(
                &demo.join("hsm-sim.toml"),
                "model = \"cipher-machine\"\nparallel = 4",
                &format!("\n[sdf]\necc_max_len = {ecc_max_len}\n"),
            );
            // `[[module]]` is the demo config's last table: `[module.sdf]` belongs to it.
            edit(
                &demo.join("seald.toml"),
                "model = \"cipher-machine\"\nmax_sessions = 4\napi = \"sdf\"",
                &format!("\n[module.sdf]\necc_max_len = {ecc_max_len}\nkeys = [1, 2]\n"),
            );
        },
        &[],
    )
}

#[test]
fn a_seal_on_an_sdf_cipher_machine_stamps_over_its_session_pool() {
    let d = sdf_deployment(64);
    let v = d.call("GET", "/v1/devices", Some(Who::Client), None).json();
    assert_eq!(v["modules"][0]["api"], "sdf", "{v:#}");
    assert_eq!(v["modules"][0]["tokens"][0]["serial"], SERIAL, "{v:#}");

    // A wrong password spends one try, not one per session and key (4 × 2 here).
    let r = d.login_attempt("Wr0ngPin55");
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.json()["code"], "pin_incorrect", "{}", r.body);
    assert!(
        d.hsm_sim_run(&["list"]).contains("user_fails 1 "),
        "one try spent"
    );
    full_stamp_and_batch(&d);

    // A wrong password while logged in leaves the pool signing.
    let r = d.login_attempt("Wr0ngPin55");
    assert_eq!(r.status, 403, "{}", r.body);
    let id = d.request(1, &[digest(8, 9)]);
    d.approve_both(id);
    seald_tests::stamping::check_signed(&d, &d.wait_final(id), &[digest(8, 9)], 0);
}

#[test]
fn narrow_ecc_fields_logout_and_what_sdf_cannot_do() {
    let d = sdf_deployment(32);
    d.login_custodian();
    let id = d.request(1, &[digest(8, 1)]);
    d.approve_both(id);
    seald_tests::stamping::check_signed(&d, &d.wait_final(id), &[digest(8, 1)], 1);

    let r = d.call(
        "POST",
        &format!("/v1/devices/{SERIAL}/pin"),
        Some(Who::Custodian),
        Some(&json!({ "old_pin": "Qv7tR2mX9k", "new_pin": "Hk4pW8zN2c" })),
    );
    assert_eq!(r.status, 501, "{}", r.body);
    assert_eq!(r.json()["code"], "device_unsupported");
    assert!(r.body.contains("management tool"), "{}", r.body);

    seald_tests::stamping::logged_out_request_fails(&d, digest(8, 2));

    // The link to the cipher machine drops (hsm-sim eject: SDR_COMMFAIL on every session):
    // the request fails saying so, and after it is back a new login opens a fresh pool.
    d.login_custodian();
    d.hsm_sim_run(&["eject", SERIAL]);
    let id = d.request(1, &[digest(8, 3)]);
    d.approve_both(id);
    let v = d.wait_final(id);
    assert_eq!(v["state"], "failed", "{v}");
    let failure = v["failure"].as_str().unwrap();
    assert!(
        failure.contains("removed") || failure.contains("not present"),
        "{failure}"
    );
    d.hsm_sim_run(&["insert", SERIAL]);
    d.login_custodian();
    let id = d.request(1, &[digest(8, 4)]);
    d.approve_both(id);
    seald_tests::stamping::check_signed(&d, &d.wait_final(id), &[digest(8, 4)], 0);

    // Wrong passwords until the cipher machine locks the key: 423 with what to do, and then
    // the right password is refused too (SDF has no unblock: the management tool's job).
    let mut refusals = 0;
    let locked = loop {
        let r = d.login_attempt("Wr0ngPin55");
        if r.status != 403 {
            break r;
        }
        refusals += 1;
        assert!(refusals < 10, "never locked: {}", r.body);
    };
    assert_eq!(locked.status, 423, "{}", locked.body);
    assert_eq!(locked.json()["code"], "pin_locked", "{}", locked.body);
    let pin = std::fs::read_to_string(d.demo_dir().join("login.json")).unwrap();
    let pin: serde_json::Value = serde_json::from_str(&pin).unwrap();
    let r = d.login_attempt(pin["pin"].as_str().unwrap());
    assert_eq!(
        r.status, 423,
        "the right password no longer opens it: {}",
        r.body
    );
}
