//! Custodian operations over the API: custody transfer (admin) that forces a PIN change before
//! the seal's next stamp, unblock of a locked user PIN with the SO PIN (API and
//! `sealctl pin-unblock --daemon`), and PIN-age warnings for an overdue or soon-due PIN. No PIN
//! used here appears in the daemon's log, the process table or the store.

use seald_tests::daemon::RawResponse;
use seald_tests::deployment::{Deployment, Who, SERIAL};
use seald_tests::stamping::digest;
use serde_json::{json, Value};

const NEW_PIN: &str = "Qv7tR2mX9k";
const NEW_PIN_2: &str = "Lp4wZ8nB3c";
const NEW_PIN_3: &str = "Hx5kM3pQ8w";
const WEAK_PIN: &str = "zzzzzzzzzz";
const WRONG_PIN: &str = "Wr0ngPin55";
const WRONG_SO_PIN: &str = "S0wrongPin";

fn demo_pin(d: &Deployment, file: &str) -> String {
    std::fs::read_to_string(d.demo_dir().join(file))
        .unwrap_or_else(|e| panic!("{file}: {e}"))
        .trim()
        .to_owned()
}

fn transfer(d: &Deployment, who: Who, seal: i64, to: &str) -> RawResponse {
    d.call(
        "POST",
        &format!("/v1/seals/{seal}/custody"),
        Some(who),
        Some(&json!({ "to": to })),
    )
}

fn login(d: &Deployment, pin: &str, confirm_final_try: bool) -> RawResponse {
    d.call(
        "POST",
        &format!("/v1/devices/{SERIAL}/login"),
        Some(Who::Custodian),
        Some(&json!({ "pin": pin, "confirm_final_try": confirm_final_try })),
    )
}

fn unblock(d: &Deployment, who: Who, serial: &str, so: &str, new: &str) -> RawResponse {
    d.call(
        "POST",
        &format!("/v1/devices/{serial}/pin-unblock"),
        Some(who),
        Some(&json!({ "so_pin": so, "new_pin": new })),
    )
}

fn pin_status(d: &Deployment) -> Value {
    let r = d.call(
        "GET",
        &format!("/v1/devices/{SERIAL}/pin-status"),
        Some(Who::Auditor),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

/// The demo token as `GET /v1/devices` lists it.
fn device(d: &Deployment) -> Value {
    let v = d.call("GET", "/v1/devices", Some(Who::Client), None).json();
    v["modules"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|m| m["tokens"].as_array().cloned().unwrap_or_default())
        .find(|t| t["serial"] == SERIAL)
        .expect("the demo token is listed")
}

/// Asks for a stamp with `seal`, has both approvers approve, and returns the final request.
fn stamp(d: &Deployment, seal: i64, tag: u8) -> Value {
    let id = d.request(seal, &[digest(tag, 1)]);
    d.approve_both(id);
    d.wait_final(id)
}

/// Neither stream of a sealctl run shows any of `pins`.
fn output_pin_free(out: &std::process::Output, pins: &[&str]) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for pin in pins {
        assert!(!text.contains(pin), "sealctl shows a PIN: {text}");
    }
}

fn pin_free(r: &RawResponse, pins: &[&str]) {
    for pin in pins {
        assert!(!r.body.contains(pin), "a PIN is echoed: {}", r.body);
    }
}

#[test]
fn custody_transfer_over_the_api_forces_a_pin_change() {
    let d = Deployment::hsm_sim_logged("sansec", "");
    let pin = demo_pin(&d, "custodian.pin");
    d.login_custodian();
    let events = d.subscribe(Who::Auditor);
    d.sealctl("user", &["add", "frank", "--role", "custodian"]);
    d.sealctl("user", &["add", "gina", "--role", "custodian"]);
    d.sealctl("user", &["disable", "gina"]);

    // Who may, and what is refused, with the library's words.
    let r = transfer(&d, Who::Custodian, 1, "carol");
    assert_eq!(
        (r.status, r.json()["code"].clone()),
        (403, json!("forbidden"))
    );
    let r = transfer(&d, Who::Client, 1, "carol");
    assert_eq!(r.status, 403, "{}", r.body);
    let r = transfer(&d, Who::Admin, 999, "carol");
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(r.json()["code"], "seal_not_found");
    for (to, why) in [
        ("nobody", "no such identity"),
        ("alice", "lacks the custodian role"),
        ("gina", "disabled"),
    ] {
        let r = transfer(&d, Who::Admin, 1, to);
        assert_eq!(r.status, 422, "{to}: {}", r.body);
        assert_eq!(r.json()["code"], "not_a_custodian", "{}", r.body);
        let message = r.json()["message"].as_str().unwrap_or_default().to_owned();
        assert!(
            message.contains(to) && message.contains(why),
            "{to}: {message}"
        );
    }
    let r = d.call(
        "POST",
        "/v1/seals/1/custody",
        Some(Who::Admin),
        Some(&json!({ "to": "carol", "extra": 1 })),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    // None of the refusals changed anything: seal 1 still stamps.
    assert_eq!(stamp(&d, 1, 30)["state"], "signed");

    // The transfer itself: recorded, announced, and seal 1 refuses until the PIN is changed.
    let r = transfer(&d, Who::Admin, 1, "carol");
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["custody"]["custodian"], "carol", "{v}");
    assert_eq!(v["custody"]["assigned_by"], "erin", "{v}");
    assert_eq!(v["custody"]["pin_change_required"], true, "{v}");
    assert!(v["previous_custodian"].is_null(), "{v}");
    events.expect(
        "custody-transferred",
        &[
            "\"seal_id\":1",
            "\"to\":\"carol\"",
            "\"pin_change_required\":true",
        ],
    );
    let records = d.audit("custody");
    let last = records.last().expect("a custody record");
    assert_eq!(last["actor"], "erin", "{last}");
    assert_eq!(last["seal_id"], 1, "{last}");
    assert_eq!(last["detail"]["to"], "carol", "{last}");
    let r = transfer(&d, Who::Admin, 1, "carol");
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.json()["code"], "same_custodian");

    let v = stamp(&d, 1, 31);
    assert_eq!(v["state"], "failed", "{v}");
    let failure = v["failure"].as_str().unwrap_or_default();
    assert!(
        failure.contains("carol") && failure.contains("must change the token PIN"),
        "the failure names the custodian and the PIN change: {v}"
    );
    // Only seal 1 changed hands: seal 2 on the same token still signs.
    assert_eq!(stamp(&d, 2, 32)["state"], "signed");

    // The new custodian changes the PIN through the API; then seal 1 signs again.
    let r = d.call(
        "POST",
        &format!("/v1/devices/{SERIAL}/pin"),
        Some(Who::Custodian),
        Some(&json!({ "old_pin": pin, "new_pin": NEW_PIN })),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(stamp(&d, 1, 33)["state"], "signed");

    // sealctl custody transfer --daemon: the same endpoint, with an admin token file.
    let admin = d.token_file(Who::Admin);
    let custodian = d.token_file(Who::Custodian);
    let out = d.sealctl_daemon(
        "custody",
        &custodian,
        &["transfer", "1", "--to", "frank"],
        "",
    );
    assert!(!out.status.success(), "a custodian may not transfer");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("forbidden"),
        "{out:?}"
    );
    let out = d.sealctl_daemon("custody", &admin, &["transfer", "1", "--to", "frank"], "");
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("held by frank") && said.contains("from carol"),
        "{said}"
    );
    events.expect(
        "custody-transferred",
        &["\"from\":\"carol\"", "\"to\":\"frank\""],
    );
    let out = d.sealctl_daemon("custody", &admin, &["transfer", "1", "--to", "frank"], "");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("same_custodian"),
        "{out:?}"
    );
    assert_eq!(stamp(&d, 1, 34)["state"], "failed");
    // The store mode still works beside it.
    let shown = d.sealctl("custody", &["show", "1"]);
    assert!(
        shown.contains("held by frank") && shown.contains("PIN change required"),
        "{shown}"
    );
    // GET /v1/seals/{id}/custody and sealctl custody show --daemon: admin, auditor, custodian.
    let r = d.call("GET", "/v1/seals/1/custody", Some(Who::Client), None);
    assert_eq!(r.status, 403, "{}", r.body);
    let r = d.call("GET", "/v1/seals/999/custody", Some(Who::Auditor), None);
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(r.json()["code"], "seal_not_found", "{}", r.body);
    let r = d.call("GET", "/v1/seals/1/custody", Some(Who::Custodian), None);
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["custody"]["custodian"], "frank", "{v}");
    assert_eq!(v["custody"]["assigned_by"], "erin", "{v}");
    assert_eq!(v["pin_change_required"], true, "{v}");
    assert!(v["pin_reset_at"].is_null(), "{v}");
    let r = d.call("GET", "/v1/seals/2/custody", Some(Who::Admin), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()["custody"].is_null(), "{}", r.body);
    assert_eq!(r.json()["pin_change_required"], false, "{}", r.body);
    let auditor = d.token_file(Who::Auditor);
    let out = d.sealctl_daemon("custody", &auditor, &["show", "1"], "");
    assert!(out.status.success(), "{out:?}");
    let over_api = String::from_utf8_lossy(&out.stdout);
    assert_eq!(over_api, shown, "the daemon and the store say the same");
    let out = d.sealctl_daemon("custody", &d.token_file(Who::Client), &["show", "1"], "");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("forbidden"),
        "{out:?}"
    );

    d.assert_pins_absent(&[&pin, NEW_PIN]);
}

#[test]
fn locked_pin_is_unblocked_with_the_so_pin_over_the_api_and_sealctl() {
    let d = Deployment::hsm_sim_logged("sansec", "");
    let pin = demo_pin(&d, "custodian.pin");
    let so = demo_pin(&d, "so.pin");
    let events = d.subscribe(Who::Auditor);

    // Lock the user PIN through the API login: wrong PINs until the final try, which seald
    // spends only when confirmed.
    let r = login(&d, WRONG_PIN, false);
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.json()["code"], "pin_incorrect");
    assert!(r.body.contains("few tries left"), "{}", r.body);
    let mut wrong = 1;
    loop {
        let r = login(&d, WRONG_PIN, false);
        if r.status == 409 {
            assert_eq!(r.json()["code"], "pin_final_try", "{}", r.body);
            break;
        }
        assert_eq!(r.status, 403, "{}", r.body);
        wrong += 1;
        assert!(wrong < 10, "the token never reached its final try");
    }
    let r = login(&d, WRONG_PIN, true);
    assert_eq!(r.status, 423, "{}", r.body);
    assert_eq!(r.json()["code"], "pin_locked");
    let r = login(&d, &pin, true);
    assert_eq!(
        r.status, 423,
        "the right PIN no longer opens it: {}",
        r.body
    );
    assert_eq!(pin_status(&d)["flags"]["locked"], true);

    // Refusals: the wrong role, an absent token, a weak new PIN (the device is not asked: the
    // SO PIN count stays untouched), a body of the wrong shape, a wrong SO PIN.
    let r = unblock(&d, Who::Client, SERIAL, &so, NEW_PIN);
    assert_eq!(r.status, 403, "{}", r.body);
    let r = unblock(&d, Who::Auditor, SERIAL, &so, NEW_PIN);
    assert_eq!(r.status, 403, "{}", r.body);
    let r = unblock(&d, Who::Custodian, "NOSUCHTOKEN00001", &so, NEW_PIN);
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(r.json()["code"], "device_not_present");
    assert!(
        r.body
            .contains("no token with serial number NOSUCHTOKEN00001 is present"),
        "{}",
        r.body
    );
    let r = unblock(&d, Who::Custodian, SERIAL, &so, WEAK_PIN);
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.json()["code"], "pin_policy");
    assert!(r.body.contains("a digit"), "{}", r.body);
    pin_free(&r, &[&so, WEAK_PIN]);
    let flags = pin_status(&d)["flags"].clone();
    assert_eq!(flags["so_count_low"], false, "{flags}");
    assert_eq!(flags["locked"], true, "{flags}");
    let r = d.call(
        "POST",
        &format!("/v1/devices/{SERIAL}/pin-unblock"),
        Some(Who::Custodian),
        Some(&json!({ "so_pin": 31415926, "new_pin": NEW_PIN })),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.json()["code"], "invalid_request");
    pin_free(&r, &["31415926", NEW_PIN]);
    let r = unblock(&d, Who::Custodian, SERIAL, WRONG_SO_PIN, NEW_PIN);
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.json()["code"], "so_pin_incorrect");
    let message = r.json()["message"].as_str().unwrap_or_default().to_owned();
    assert!(
        message.contains("SO (security officer) PIN is incorrect")
            && message.contains("few tries left"),
        "the device's word on tries: {message}"
    );
    pin_free(&r, &[WRONG_SO_PIN, NEW_PIN]);
    let flags = pin_status(&d)["flags"].clone();
    assert_eq!(flags["so_count_low"], true, "{flags}");
    assert_eq!(flags["locked"], true, "still locked: {flags}");
    let failures = d.audit("pin-failure");
    assert!(
        failures
            .iter()
            .any(|f| f["detail"]["pin"] == "so" && f["actor"] == "carol"),
        "{failures:?}"
    );

    // More wrong SO PINs, until the device reports one try left: seald then refuses to spend
    // it, even on the right SO PIN, without a confirmation.
    let mut last_message = message;
    let mut wrong_so = 1;
    loop {
        let r = unblock(&d, Who::Custodian, SERIAL, WRONG_SO_PIN, NEW_PIN);
        if r.status == 409 {
            assert_eq!(r.json()["code"], "so_pin_final_try", "{}", r.body);
            assert!(r.body.contains("confirmation"), "{}", r.body);
            break;
        }
        assert_eq!(r.json()["code"], "so_pin_incorrect", "{}", r.body);
        last_message = r.json()["message"].as_str().unwrap_or_default().to_owned();
        wrong_so += 1;
        assert!(wrong_so < 10, "the token never reached its final SO try");
    }
    assert!(
        last_message.contains("one try left"),
        "the device's word before the final try: {last_message}"
    );
    let r = unblock(&d, Who::Custodian, SERIAL, &so, NEW_PIN);
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(pin_status(&d)["flags"]["so_final_try"], true);

    // The unblock (by the custodian, confirming the final try): recorded, announced, the
    // token logged out.
    let r = d.call(
        "POST",
        &format!("/v1/devices/{SERIAL}/pin-unblock"),
        Some(Who::Custodian),
        Some(&json!({ "so_pin": so, "new_pin": NEW_PIN, "confirm_final_try": true })),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["unblocked"], true, "{v}");
    assert_eq!(v["recorded"], true, "{v}");
    assert!(v["warning"].is_null(), "{v}");
    assert_eq!(v["pin_change_required"], true, "{v}");
    assert_eq!(v["logged_in"], false, "{v}");
    assert_eq!(v["flags"]["locked"], false, "{v}");
    assert_eq!(
        v["age"]["status"], "ok",
        "the unblock restarts the age: {v}"
    );
    pin_free(&r, &[&so, NEW_PIN]);
    events.expect("pin-unblocked", &[SERIAL]);
    let changes = d.audit("pin-change");
    let last = changes.last().expect("a pin-change record");
    assert_eq!(last["detail"]["what"], "unblock", "{last}");
    assert_eq!(last["actor"], "carol", "{last}");
    let flags = pin_status(&d)["flags"].clone();
    assert_eq!(
        (flags["so_count_low"].clone(), flags["so_final_try"].clone()),
        (json!(false), json!(false)),
        "a good SO PIN resets its count: {flags}"
    );

    // The old PIN is gone; the new one logs in, but the SO knows it: no seal on the token
    // (neither has a custody record) stamps until the custodian changes it.
    let r = login(&d, &pin, false);
    assert_eq!(r.status, 403, "{}", r.body);
    let r = login(&d, NEW_PIN, false);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(device(&d)["logged_in"], true);
    for (seal, tag) in [(1, 40), (2, 43)] {
        let v = stamp(&d, seal, tag);
        assert_eq!(v["state"], "failed", "{v}");
        let failure = v["failure"].as_str().unwrap_or_default();
        assert!(
            failure.contains("re-set by the security officer")
                && failure.contains("custodian must change the PIN"),
            "seal {seal}: {v}"
        );
    }
    let r = d.call("GET", "/v1/seals/2/custody", Some(Who::Auditor), None);
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert!(v["custody"].is_null(), "{v}");
    assert_eq!(v["device_serial"], SERIAL, "{v}");
    assert_eq!(v["pin_change_required"], true, "{v}");
    assert!(v["pin_reset_at"].is_i64(), "{v}");
    let out = d.sealctl_daemon("custody", &d.token_file(Who::Custodian), &["show", "1"], "");
    assert!(out.status.success(), "{out:?}");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("no custodian on record")
            && shown.contains("security officer re-set the token's PIN")
            && shown.contains("PIN change required"),
        "{shown}"
    );
    // The custodian's own change lifts it for every seal on the token.
    let r = d.call(
        "POST",
        &format!("/v1/devices/{SERIAL}/pin"),
        Some(Who::Custodian),
        Some(&json!({ "old_pin": NEW_PIN, "new_pin": NEW_PIN_3 })),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["recorded"], true, "{}", r.body);
    pin_free(&r, &[NEW_PIN, NEW_PIN_3]);
    assert_eq!(stamp(&d, 1, 44)["state"], "signed");
    assert_eq!(stamp(&d, 2, 45)["state"], "signed");
    let r = d.call("GET", "/v1/seals/2/custody", Some(Who::Auditor), None);
    assert_eq!(r.json()["pin_change_required"], false, "{}", r.body);

    // sealctl pin-unblock --daemon (admin) while the token is logged in: entries that differ
    // and a weak PIN are refused first; then the unblock logs the token out.
    let admin = d.token_file(Who::Admin);
    let args = ["--token", SERIAL, "--pin-stdin"];
    let out = d.sealctl_daemon(
        "pin-unblock",
        &admin,
        &args,
        &format!("{so}\n{NEW_PIN_2}\n{NEW_PIN}\n"),
    );
    output_pin_free(&out, &[&so, NEW_PIN, NEW_PIN_2, WEAK_PIN]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("differ"),
        "{out:?}"
    );
    let out = d.sealctl_daemon(
        "pin-unblock",
        &admin,
        &args,
        &format!("{so}\n{WEAK_PIN}\n{WEAK_PIN}\n"),
    );
    output_pin_free(&out, &[&so, NEW_PIN, NEW_PIN_2, WEAK_PIN]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        err.contains("pin_policy") && !err.contains(WEAK_PIN) && !err.contains(&so),
        "{err}"
    );
    assert_eq!(device(&d)["logged_in"], true, "refusals keep the login");
    let out = d.sealctl_daemon(
        "pin-unblock",
        &admin,
        &args,
        &format!("{so}\n{NEW_PIN_2}\n{NEW_PIN_2}\n"),
    );
    output_pin_free(&out, &[&so, NEW_PIN, NEW_PIN_2, WEAK_PIN]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("logged out"),
        "{out:?}"
    );
    let last = d.audit("pin-change");
    assert_eq!(last.last().expect("record")["actor"], "erin");

    // The daemon's login state agrees with the device: logged out, stamps refused (first of
    // all because the PIN the SO chose must be changed) until a custodian logs in with the new
    // PIN (a fresh login, not "already logged in") and changes it.
    assert_eq!(device(&d)["logged_in"], false);
    let v = stamp(&d, 1, 41);
    assert_eq!(v["state"], "failed", "{v}");
    assert!(
        v["failure"]
            .as_str()
            .unwrap_or_default()
            .contains("custodian must change the PIN"),
        "{v}"
    );
    let r = login(&d, NEW_PIN, false);
    assert_eq!(r.status, 403, "the previous PIN was replaced: {}", r.body);
    let r = login(&d, NEW_PIN_2, false);
    assert_eq!(r.status, 200, "{}", r.body);
    let v = stamp(&d, 1, 42);
    assert_eq!(v["state"], "failed", "after the second unblock too: {v}");
    // sealctl pin-change --daemon by the custodian lifts it.
    let out = d.sealctl_daemon(
        "pin-change",
        &d.token_file(Who::Custodian),
        &args,
        &format!("{NEW_PIN_2}\n{NEW_PIN}\n{NEW_PIN}\n"),
    );
    output_pin_free(&out, &[&so, NEW_PIN, NEW_PIN_2]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stamp(&d, 1, 46)["state"], "signed");

    d.assert_pins_absent(&[
        &pin,
        &so,
        NEW_PIN,
        NEW_PIN_2,
        NEW_PIN_3,
        WEAK_PIN,
        WRONG_PIN,
        WRONG_SO_PIN,
    ]);
}

/// Records a PIN change of the demo token `days` days ago, through the library, as seald
/// itself would have.
fn backdate_pin_change(store: &std::path::Path, days: i64) {
    use std::sync::Arc;
    let at = time::OffsetDateTime::now_utc() - time::Duration::days(days);
    let store = Arc::new(seald::store::Store::open_existing(store).expect("demo store"));
    let clock = Arc::new(seald::clock::ManualClock::new(at));
    seald::custody::Custodians::new(store, clock)
        .record_pin_change("carol", SERIAL, "change")
        .expect("record a PIN change");
}

#[test]
fn overdue_and_soon_due_pins_are_announced_over_the_api() {
    let d = Deployment::hsm_sim_prepared(
        "sansec",
        "",
        |demo| backdate_pin_change(&demo.join("seald.db"), 100),
        &[],
    );
    let events = d.subscribe(Who::Custodian);

    // Overdue: 100 days against the default 90.
    let s = pin_status(&d);
    assert_eq!(s["age"]["status"], "overdue", "{s}");
    assert_eq!(s["age"]["age_days"], 100, "{s}");
    let warning = s["warning"].as_str().unwrap_or_default().to_owned();
    assert!(
        warning.contains("100 days old") && warning.contains("past the policy's maximum age"),
        "{s}"
    );
    assert_eq!(device(&d)["pin_warning"], json!(warning));
    let body: Value = serde_json::from_slice(
        &std::fs::read(d.demo_dir().join("login.json")).expect("login.json"),
    )
    .expect("login json");
    let r = d.call(
        "POST",
        &format!("/v1/devices/{SERIAL}/login"),
        Some(Who::Custodian),
        Some(&body),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["pin_warning"], json!(warning), "{}", r.body);
    events.expect("pin-age", &[SERIAL, "past the policy's maximum age"]);

    // Due soon: a change 80 days ago leaves 10 days, inside the 14-day window.
    backdate_pin_change(&d.store(), 80);
    let s = pin_status(&d);
    assert_eq!(s["age"]["status"], "warn", "{s}");
    let warning = s["warning"].as_str().unwrap_or_default().to_owned();
    assert!(
        warning.contains("80 days old") && warning.contains("within 10 days"),
        "{s}"
    );
    assert_eq!(device(&d)["pin_warning"], json!(warning));
    let r = d.call(
        "POST",
        &format!("/v1/devices/{SERIAL}/logout"),
        Some(Who::Custodian),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = d.call(
        "POST",
        &format!("/v1/devices/{SERIAL}/login"),
        Some(Who::Custodian),
        Some(&body),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["pin_warning"], json!(warning), "{}", r.body);
    events.expect("pin-age", &[SERIAL, "within 10 days"]);

    // A change through the API ends the warnings.
    let pin = body["pin"].as_str().expect("pin").to_owned();
    let r = d.call(
        "POST",
        &format!("/v1/devices/{SERIAL}/pin"),
        Some(Who::Custodian),
        Some(&json!({ "old_pin": pin, "new_pin": NEW_PIN })),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let s = pin_status(&d);
    assert_eq!(s["age"]["status"], "ok", "{s}");
    assert!(s["warning"].is_null(), "{s}");
    assert!(device(&d)["pin_warning"].is_null());

    d.assert_pins_absent(&[&pin, NEW_PIN]);
}

/// Sends a JSON request with the bearer `token` of a user added in the test.
fn call_as(
    d: &Deployment,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> RawResponse {
    let auth = format!("Bearer {token}");
    let mut headers: Vec<(&str, &str)> = vec![("Authorization", &auth)];
    let bytes = body.map(|b| serde_json::to_vec(b).expect("json"));
    if bytes.is_some() {
        headers.push(("Content-Type", "application/json"));
    }
    d.daemon.raw(method, path, &headers, bytes.as_deref())
}

fn refused(r: &RawResponse, code: &str, names: &[&str]) {
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.json()["code"], code, "{}", r.body);
    let message = r.json()["message"].as_str().unwrap_or_default().to_owned();
    for name in names {
        assert!(
            message.contains(name),
            "the refusal names {name}: {message}"
        );
    }
}

#[test]
fn custodians_act_only_on_the_seals_and_tokens_they_hold() {
    let d = Deployment::hsm_sim_logged("sansec", "");
    let pin = demo_pin(&d, "custodian.pin");
    let so = demo_pin(&d, "so.pin");
    d.login_custodian();
    let frank = d
        .sealctl("user", &["add", "frank", "--role", "custodian"])
        .trim()
        .to_owned();
    let pin_path = format!("/v1/devices/{SERIAL}/pin");
    let change = |token: Option<&str>, old: &str, new: &str| {
        let body = json!({ "old_pin": old, "new_pin": new });
        match token {
            Some(t) => call_as(&d, t, "POST", &pin_path, Some(&body)),
            None => d.call("POST", &pin_path, Some(Who::Custodian), Some(&body)),
        }
    };
    let lost = |who: Who, seal: i64| {
        d.call(
            "POST",
            &format!("/v1/seals/{seal}/report-lost"),
            Some(who),
            Some(&json!({ "reason": "UKey lost on the train" })),
        )
    };
    let untouched = |d: &Deployment| {
        let flags = pin_status(d)["flags"].clone();
        assert_eq!(flags["count_low"], false, "no user PIN try spent: {flags}");
        assert_eq!(flags["so_count_low"], false, "no SO PIN try spent: {flags}");
        assert_eq!(device(d)["logged_in"], true, "still logged in");
    };

    // A token without any custody record is open to every custodian (the demo as it was).
    assert_eq!(transfer(&d, Who::Admin, 1, "carol").status, 200);
    assert_eq!(change(None, &pin, NEW_PIN).status, 200);
    assert_eq!(stamp(&d, 1, 60)["state"], "signed");

    // Seal 1 goes to frank; carol holds no seal on the token any more, but still knows the PIN.
    assert_eq!(transfer(&d, Who::Admin, 1, "frank").status, 200);
    // Her PIN change is refused before the device is asked (a wrong old PIN spends no try,
    // the right one changes nothing), and seal 1 stays blocked.
    refused(
        &change(None, WRONG_PIN, NEW_PIN_2),
        "not_your_token",
        &["carol", SERIAL, "holds no seal"],
    );
    refused(
        &change(None, NEW_PIN, NEW_PIN_2),
        "not_your_token",
        &["carol"],
    );
    untouched(&d);
    let r = d.call("GET", "/v1/seals/1/custody", Some(Who::Auditor), None);
    assert_eq!(r.json()["pin_change_required"], true, "{}", r.body);
    assert_eq!(stamp(&d, 1, 61)["state"], "failed");
    // Login, logout, unblock and report-lost: refused the same way, nothing touched.
    refused(&login(&d, WRONG_PIN, false), "not_your_token", &["carol"]);
    let r = d.call(
        "POST",
        &format!("/v1/devices/{SERIAL}/logout"),
        Some(Who::Custodian),
        None,
    );
    refused(&r, "not_your_token", &["carol"]);
    refused(
        &unblock(&d, Who::Custodian, SERIAL, WRONG_SO_PIN, NEW_PIN_3),
        "not_your_token",
        &["carol"],
    );
    untouched(&d);
    refused(
        &lost(Who::Custodian, 1),
        "not_your_seal",
        &["carol", "seal 1"],
    );
    // Seal 2 has no custody record, but its token is frank's now.
    refused(
        &lost(Who::Custodian, 2),
        "not_your_seal",
        &["carol", "seal 2"],
    );
    let r = d.call("GET", "/v1/seals/1", Some(Who::Auditor), None);
    assert_eq!(r.json()["seal"]["state"], "active", "{}", r.body);
    // The new custodian's change lifts the flag.
    let r = change(Some(&frank), NEW_PIN, NEW_PIN_2);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(stamp(&d, 1, 62)["state"], "signed");

    // Two custodians on one token: carol gets seal 2 and holds the token again. Her own
    // change lifts her seal's flag, not the flag of seal 3, newly frank's.
    assert_eq!(transfer(&d, Who::Admin, 2, "carol").status, 200);
    assert_eq!(transfer(&d, Who::Admin, 3, "frank").status, 200);
    let r = change(None, NEW_PIN_2, NEW_PIN_3);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(stamp(&d, 2, 63)["state"], "signed");
    assert_eq!(stamp(&d, 3, 64)["state"], "failed");
    let r = change(Some(&frank), NEW_PIN_3, NEW_PIN);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(stamp(&d, 3, 65)["state"], "signed");
    // Each reports only its own seals lost; an admin any seal.
    refused(
        &lost(Who::Custodian, 3),
        "not_your_seal",
        &["carol", "seals 2"],
    );
    let r = call_as(
        &d,
        &frank,
        "POST",
        "/v1/seals/2/report-lost",
        Some(&json!({ "reason": "not mine" })),
    );
    refused(&r, "not_your_seal", &["frank", "seals 1, 3"]);
    let r = lost(Who::Custodian, 2);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["seal"]["state"], "lost", "{}", r.body);
    let r = lost(Who::Admin, 3);
    assert_eq!(r.status, 200, "{}", r.body);
    // carol still holds the token through seal 2 (lost, but hers): she may log it out.
    let r = d.call(
        "POST",
        &format!("/v1/devices/{SERIAL}/logout"),
        Some(Who::Custodian),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);

    d.assert_pins_absent(&[
        &pin,
        &so,
        NEW_PIN,
        NEW_PIN_2,
        NEW_PIN_3,
        WRONG_PIN,
        WRONG_SO_PIN,
    ]);
}
