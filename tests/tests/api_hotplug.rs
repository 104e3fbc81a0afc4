//! UKey hot-plug through the real daemon: `seald` with an `[[atr]]` entry for hsm-sim's virtual
//! UKey, the demo seal's token driven by `hsm-sim vcard` on pcscd's vpcd reader (connect =
//! insert, exit = eject). Needs pcscd with vpcd (`scripts/pcscd.sh start`; scripts/test.sh does).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use seald_tests::bins::hsm_sim_cli;
use seald_tests::deployment::{Deployment, Who, SERIAL};
use seald_tests::pcsc::{reader_lock, require_pcscd, wait_until, VCard, PORT, VCARD_ATR_TOML};
use seald_tests::stamping::{check_signed, digest};

/// Each signature takes this long on the simulated UKey: the window to pull it mid-stamp.
const SIGN_LATENCY_MS: u64 = 3000;

/// A deployment whose token starts ejected, with the vcard's ATR entry and a slow signer.
fn deployment(sign_latency_ms: u64) -> Deployment {
    let extra = format!("\n[pcsc]\ndebounce_ms = 100\nretry_ms = 200\n{VCARD_ATR_TOML}");
    Deployment::hsm_sim_prepared(
        "sansec",
        &extra,
        |demo| {
            let conf = demo.join("hsm-sim.toml");
            let mut text = std::fs::read_to_string(&conf).expect("hsm-sim.toml");
            text.push_str(&format!("sign_latency_ms = {sign_latency_ms}\n"));
            std::fs::write(&conf, text).expect("write hsm-sim.toml");
            hsm_sim(&conf, &["eject", SERIAL]);
        },
        &[],
    )
}

fn hsm_sim(conf: &Path, args: &[&str]) {
    let out = Command::new(hsm_sim_cli())
        .arg("--config")
        .arg(conf)
        .args(args)
        .output()
        .expect("run hsm-sim");
    assert!(
        out.status.success(),
        "hsm-sim {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The demo token as `GET /v1/devices` shows it, if listed (asserting it is listed at most once).
fn listed_token(d: &Deployment) -> Option<Value> {
    let r = d.call("GET", "/v1/devices", Some(Who::Auditor), None);
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    let found: Vec<Value> = v["modules"]
        .as_array()
        .expect("modules")
        .iter()
        .flat_map(|m| m["tokens"].as_array().cloned().unwrap_or_default())
        .filter(|t| t["serial"] == SERIAL)
        .collect();
    assert!(found.len() <= 1, "token listed twice: {v}");
    found.into_iter().next()
}

fn wait_listed(d: &Deployment, want: bool) {
    wait_until(&format!("GET /v1/devices lists the token: {want}"), || {
        listed_token(d).is_some() == want
    });
}

/// Asks for and approves one stamp; returns the request id.
fn approved(d: &Deployment, tag: u8, i: u32) -> i64 {
    let id = d.request(1, &[digest(tag, i)]);
    d.approve_both(id);
    id
}

fn signatures_of(d: &Deployment, id: i64) -> usize {
    d.audit("signature")
        .into_iter()
        .filter(|r| r["detail"]["request_id"] == id)
        .count()
}

fn device_records(d: &Deployment, event: &str) -> usize {
    d.audit("device")
        .into_iter()
        .filter(|r| r["detail"]["device_serial"] == SERIAL && r["detail"]["event"] == event)
        .count()
}

#[test]
fn insert_remove_mid_stamp_and_reinsert() {
    require_pcscd();
    let _reader = reader_lock();
    let d = deployment(SIGN_LATENCY_MS);
    let conf = d.hsm_sim_conf().to_owned();
    let events = d.subscribe(Who::Auditor);
    assert!(listed_token(&d).is_none(), "the token starts ejected");

    // Insert: events, a usage record, and the token listed, not logged in.
    let card = VCard::insert(&conf, SERIAL, PORT);
    events.expect("device-inserted", &[SERIAL]);
    events.expect("pcsc", &["card-inserted"]);
    wait_listed(&d, true);
    assert_eq!(listed_token(&d).expect("listed")["logged_in"], false);
    wait_until("a device insertion record", || {
        device_records(&d, "inserted") == 1
    });

    // Remove while the approved stamp is on the device: it fails with the removal, unsigned.
    d.login_custodian();
    let id = approved(&d, 0x41, 1);
    std::thread::sleep(Duration::from_millis(SIGN_LATENCY_MS / 3));
    card.remove();
    let v = d.wait_final(id);
    assert_eq!(v["state"], "failed", "{v}");
    let reason = v["failure"].to_string();
    assert!(reason.contains("removed"), "reason: {v}");
    assert!(
        v["signatures"].as_array().is_none_or(|s| s.is_empty()),
        "{v}"
    );
    assert_eq!(signatures_of(&d, id), 0);
    let failed: Vec<Value> = d
        .audit("request-state")
        .into_iter()
        .filter(|r| r["detail"]["request_id"] == id && r["detail"]["to"] == "failed")
        .collect();
    assert_eq!(
        failed.len(),
        1,
        "one usage record of the failure: {failed:?}"
    );
    assert!(
        failed[0]["detail"]["failure"]
            .as_str()
            .is_some_and(|f| f.contains("removed")),
        "{failed:?}"
    );
    events.expect("device-removed", &[SERIAL]);
    wait_listed(&d, false);
    wait_until("a device removal record", || {
        device_records(&d, "removed") == 1
    });

    // Approved while the token is absent: fails at once with the removal, never signed later.
    let absent = approved(&d, 0x41, 2);
    let v = d.wait_final(absent);
    assert_eq!(v["state"], "failed", "{v}");
    let failure = v["failure"].as_str().unwrap_or_default();
    assert!(
        failure.contains("UKey was removed") && failure.contains("log in again"),
        "{v}"
    );

    // Reinsert: the login is gone; a stamp fails until a custodian logs in again.
    let card = VCard::insert(&conf, SERIAL, PORT);
    events.expect("device-inserted", &[SERIAL]);
    wait_listed(&d, true);
    assert_eq!(listed_token(&d).expect("listed")["logged_in"], false);
    let id = approved(&d, 0x41, 3);
    let v = d.wait_final(id);
    assert_eq!(v["state"], "failed", "{v}");
    assert!(v["failure"].to_string().contains("log in"), "{v}");
    assert_eq!(signatures_of(&d, id), 0);
    d.login_custodian();
    let id = approved(&d, 0x41, 4);
    check_signed(&d, &d.wait_final(id), &[digest(0x41, 4)], 1);
    // The request approved while the token was out stayed failed.
    let v = d.wait_final(absent);
    assert_eq!(v["state"], "failed", "{v}");
    assert_eq!(signatures_of(&d, absent), 0);
    card.remove();
}

#[test]
fn twenty_rapid_cycles_leave_a_consistent_daemon() {
    require_pcscd();
    let _reader = reader_lock();
    let d = deployment(0);
    let conf = d.hsm_sim_conf().to_owned();
    let card = VCard::insert(&conf, SERIAL, PORT);
    wait_listed(&d, true);
    card.remove();
    wait_listed(&d, false);
    let baseline = d.daemon.threads().expect("daemon threads");
    for cycle in 0..20 {
        let card = VCard::insert(&conf, SERIAL, PORT);
        if cycle % 2 == 0 {
            // Seen by the daemon (token re-opened) before it is pulled again at once.
            wait_listed(&d, true);
            if cycle == 10 {
                // A login that must not outlive the next pull.
                d.login_custodian();
            }
        } else {
            // Pulled before the debounce settles.
            std::thread::sleep(Duration::from_millis(30));
        }
        card.remove();
    }
    wait_listed(&d, false);
    let card = VCard::insert(&conf, SERIAL, PORT);
    wait_listed(&d, true);
    let token = listed_token(&d).expect("listed");
    assert_eq!(token["logged_in"], false, "a stale login survived: {token}");
    d.login_custodian();
    let id = approved(&d, 0x42, 1);
    check_signed(&d, &d.wait_final(id), &[digest(0x42, 1)], 1);
    let after = d.daemon.threads().expect("daemon threads");
    eprintln!("daemon threads: {baseline} before 20 plug cycles, {after} after");
    assert!(
        after <= baseline + 8,
        "daemon threads grew from {baseline} to {after} over 20 plug cycles"
    );
    card.remove();
    wait_listed(&d, false);
}

#[test]
fn without_pcscd_the_daemon_still_stamps_and_says_so_once() {
    let d = Deployment::hsm_sim_prepared(
        "sansec",
        &format!("\n[pcsc]\nretry_ms = 100\n{VCARD_ATR_TOML}"),
        |_| {},
        &[(
            "PCSCLITE_CSOCK_NAME",
            Path::new("/nonexistent/seald/pcscd.comm"),
        )],
    );
    wait_until("seald logs that pcscd is not running", || {
        d.daemon.log().contains("pcscd is not running")
    });
    d.login_custodian();
    let id = approved(&d, 0x43, 1);
    check_signed(&d, &d.wait_final(id), &[digest(0x43, 1)], 1);
    let log = d.daemon.log();
    assert_eq!(log.matches("pcscd is not running").count(), 1, "{log}");
}
