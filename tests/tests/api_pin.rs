//! Custodian PIN change over the API: policy rejections without echoing the PIN, a wrong old
//! PIN with the device's word on tries, the change itself, PIN status; and a custody transfer
//! that forces a PIN change before the new custodian's first stamp. No PIN used here appears
//! in the daemon's log, the process table or the store.

use seald_tests::deployment::{Deployment, Who, SERIAL};
use seald_tests::stamping::digest;

const NEW_PIN: &str = "Qv7tR2mX9k";
const WEAK_PIN: &str = "zzzzzzzzzz";
const WRONG_PIN: &str = "Wr0ngPin55";

fn change(d: &Deployment, who: Who, old: &str, new: &str) -> seald_tests::daemon::RawResponse {
    d.call(
        "POST",
        &format!("/v1/devices/{SERIAL}/pin"),
        Some(who),
        Some(&serde_json::json!({"old_pin": old, "new_pin": new})),
    )
}

/// The demo token's `pin_warning` in `GET /v1/devices`.
fn device_warning(d: &Deployment) -> Option<String> {
    let v = d.call("GET", "/v1/devices", Some(Who::Client), None).json();
    let token = v["modules"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|m| m["tokens"].as_array().cloned().unwrap_or_default())
        .find(|t| t["serial"] == SERIAL)
        .expect("the demo token is listed");
    token["pin_warning"].as_str().map(str::to_owned)
}

fn grep_pins(d: &Deployment, pins: &[&str]) {
    d.assert_pins_absent(pins);
}

#[test]
fn pin_change_over_the_api_and_custody_transfer_forces_it() {
    let d = Deployment::hsm_sim_logged("sansec", "");
    let login: serde_json::Value = serde_json::from_slice(
        &std::fs::read(d.demo_dir().join("login.json")).expect("login.json"),
    )
    .expect("login json");
    let pin = login["pin"].as_str().expect("pin").to_owned();

    // No change recorded yet: the login, the device list and the events stream warn.
    let events = d.subscribe(Who::Custodian);
    let r = d.call(
        "POST",
        &format!("/v1/devices/{SERIAL}/login"),
        Some(Who::Custodian),
        Some(&login),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let warning = r.json()["pin_warning"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(warning.contains("no record of a PIN change"), "{}", r.body);
    assert_eq!(device_warning(&d), Some(warning.clone()));
    events.expect("pin-age", &["no record of a PIN change"]);

    // Only custodians; the policy refuses a weak PIN and says why, without the PIN.
    let r = change(&d, Who::Client, &pin, NEW_PIN);
    assert_eq!(r.status, 403, "{}", r.body);
    let r = change(&d, Who::Custodian, &pin, WEAK_PIN);
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.json()["code"], "pin_policy");
    assert!(r.body.contains("digit"), "{}", r.body);
    assert!(!r.body.contains(WEAK_PIN));
    // A body of the wrong shape is refused without quoting it.
    let r = d.call(
        "POST",
        &format!("/v1/devices/{SERIAL}/pin"),
        Some(Who::Custodian),
        Some(&serde_json::json!({"old_pin": 12345678, "new_pin": NEW_PIN})),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        !r.body.contains(NEW_PIN) && !r.body.contains("12345678"),
        "{}",
        r.body
    );

    // A wrong old PIN: the device's refusal.
    let r = change(&d, Who::Custodian, WRONG_PIN, NEW_PIN);
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.json()["code"], "pin_incorrect");
    assert!(!r.body.contains(WRONG_PIN));

    // The custody transfer (on the store) forces a change before the next stamp.
    d.sealctl("custody", &["transfer", "1", "--to", "carol"]);
    let id = d.request(1, &[digest(11, 1)]);
    d.approve_both(id);
    let v = d.wait_final(id);
    assert_eq!(v["state"], "failed", "{v}");
    assert!(
        v["failure"].as_str().unwrap_or_default().contains("PIN"),
        "the failure names the PIN change: {v}"
    );

    // The change itself clears it; the status shows the change.
    let r = change(&d, Who::Custodian, &pin, NEW_PIN);
    assert_eq!(r.status, 200, "{}", r.body);
    let r = d.call(
        "GET",
        &format!("/v1/devices/{SERIAL}/pin-status"),
        Some(Who::Custodian),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let s = r.json();
    assert!(s["age"].is_object(), "{s}");
    assert!(s["warning"].is_null(), "a fresh PIN has no warning: {s}");
    assert_eq!(device_warning(&d), None, "no warning once changed");

    d.login_custodian_with(NEW_PIN);
    let id = d.request(1, &[digest(11, 2)]);
    d.approve_both(id);
    assert_eq!(d.wait_final(id)["state"], "signed");

    grep_pins(&d, &[&pin, NEW_PIN, WEAK_PIN, WRONG_PIN]);
}

/// Runs `sealctl GROUP --daemon URL --token-file F --token SERIAL --pin-stdin` with `stdin`.
fn sealctl_remote(
    d: &Deployment,
    group: &str,
    token_file: &std::path::Path,
    stdin: &str,
) -> std::process::Output {
    d.sealctl_daemon(
        group,
        token_file,
        &["--token", SERIAL, "--pin-stdin"],
        stdin,
    )
}

#[test]
fn sealctl_login_pin_change_and_logout_through_the_daemon() {
    use std::os::unix::fs::PermissionsExt;
    let d = Deployment::hsm_sim_logged("sansec", "");
    let pin = std::fs::read_to_string(d.demo_dir().join("custodian.pin"))
        .expect("pin file")
        .trim()
        .to_owned();
    let file = d.dir.path().join("carol.token");
    std::fs::write(&file, d.token(Who::Custodian)).expect("token file");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");

    let out = sealctl_remote(&d, "login", &file, &format!("{WRONG_PIN}\n"));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("pin_incorrect"),
        "{out:?}"
    );
    let out = sealctl_remote(&d, "login", &file, &format!("{pin}\n"));
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("logged in"),
        "{out:?}"
    );

    let out = sealctl_remote(
        &d,
        "pin-change",
        &file,
        &format!("{pin}\n{WEAK_PIN}\n{WEAK_PIN}\n"),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        err.contains("pin_policy") && !err.contains(WEAK_PIN),
        "{err}"
    );
    let out = sealctl_remote(
        &d,
        "pin-change",
        &file,
        &format!("{pin}\n{NEW_PIN}\n{NEW_PIN}\n"),
    );
    assert!(out.status.success(), "{out:?}");
    let out = sealctl_remote(&d, "logout", &file, "");
    assert!(out.status.success(), "{out:?}");
    d.login_custodian_with(NEW_PIN);
    let id = d.request(1, &[digest(12, 1)]);
    d.approve_both(id);
    assert_eq!(d.wait_final(id)["state"], "signed");

    grep_pins(&d, &[&pin, NEW_PIN, WEAK_PIN, WRONG_PIN]);
}

fn pin_flags(d: &Deployment) -> serde_json::Value {
    let r = d.call(
        "GET",
        &format!("/v1/devices/{SERIAL}/pin-status"),
        Some(Who::Auditor),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["flags"].clone()
}

/// The final-try guard is not check-then-act: with two tries left, concurrent wrong PINs
/// (logins and changes at once) spend one try between them; the others find the final try
/// and are refused without a confirmation, so the token never locks.
#[test]
fn concurrent_wrong_pins_at_count_low_never_lock_the_token() {
    let d = Deployment::hsm_sim_logged("sansec", "");
    let pin = std::fs::read_to_string(d.demo_dir().join("custodian.pin"))
        .expect("custodian.pin")
        .trim()
        .to_owned();
    // hsm-sim locks after 6 wrong user PINs: 4 leave two tries.
    for _ in 0..4 {
        let r = change(&d, Who::Custodian, WRONG_PIN, NEW_PIN);
        assert_eq!(r.status, 403, "{}", r.body);
    }
    let flags = pin_flags(&d);
    assert_eq!(
        (flags["count_low"].clone(), flags["final_try"].clone()),
        (serde_json::json!(true), serde_json::json!(false)),
        "{flags}"
    );
    let login_path = format!("/v1/devices/{SERIAL}/login");
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let (d, login_path) = (&d, &login_path);
                s.spawn(move || {
                    if i % 2 == 0 {
                        d.call(
                            "POST",
                            login_path,
                            Some(Who::Custodian),
                            Some(&serde_json::json!({ "pin": WRONG_PIN })),
                        )
                        .status
                    } else {
                        change(d, Who::Custodian, WRONG_PIN, NEW_PIN).status
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 403).count(),
        1,
        "one wrong PIN reached the device: {statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        7,
        "the rest found the final try: {statuses:?}"
    );
    let flags = pin_flags(&d);
    assert_eq!(flags["locked"], false, "{flags}");
    assert_eq!(flags["final_try"], true, "{flags}");
    // The right PIN still works, with the confirmation.
    let r = d.call(
        "POST",
        &login_path,
        Some(Who::Custodian),
        Some(&serde_json::json!({ "pin": pin, "confirm_final_try": true })),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    grep_pins(&d, &[&pin, NEW_PIN, WRONG_PIN]);
}
