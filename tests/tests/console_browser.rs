//! The web console in a real browser: Debian's Chromium, headless, driven through
//! chromedriver against the real seald on hsm-sim. Each test writes screenshots of the views it
//! passes through under `target/console-screenshots/`.

use std::time::{Duration, Instant};

use base64::Engine;
use seald_tests::browser::{serve_other_origin, Browser};
use seald_tests::deployment::{Deployment, Who, SERIAL};
use serde_json::{json, Value};

const NEW_PIN: &str = "Cn5sole7Pin";
const WRONG_PIN: &str = "Wr0ngPin55";

fn demo_file(d: &Deployment, file: &str) -> String {
    std::fs::read_to_string(d.demo_dir().join(file))
        .unwrap_or_else(|e| panic!("{file}: {e}"))
        .trim()
        .to_owned()
}

/// Opens the console and signs in by pasting `who`'s API token.
fn sign_in(b: &Browser, d: &Deployment, who: Who) {
    b.goto(&format!("{}/", d.daemon.url));
    let token = b.wait("#token");
    b.type_into(&token, d.token(who));
    b.click(&b.wait("#signin"));
    b.wait("#signout:not([hidden])");
    // The API token was exchanged: it is not in the page nor in its storage.
    assert!(!b.dom_and_values().contains(d.token(who)));
    assert!(!b.storage().contains(d.token(who)));
    assert!(b.storage().contains("sldc_"), "a console session is kept");
}

fn sign_out(b: &Browser) {
    b.click(&b.wait("#signout"));
    b.wait("#signin-form");
    assert_eq!(b.storage(), "{}", "signing out empties the storage");
}

/// A `fetch` from the page, as the page's script would make it; `(status, body)` or the error.
fn page_fetch(b: &Browser, url: &str, method: &str, bearer: &str) -> Value {
    b.run_async(
        "const [url, method, bearer, done] = arguments;
         fetch(url, {method, headers: {Authorization: 'Bearer ' + bearer, 'Content-Type': 'application/json'}, body: method === 'POST' ? '{}' : undefined})
           .then(async r => done({status: r.status, body: await r.text()}))
           .catch(e => done({error: String(e)}));",
        &[json!(url), json!(method), json!(bearer)],
    )
}

#[test]
fn approvers_decide_in_the_console_and_the_requester_gets_the_signature() {
    let d = Deployment::hsm_sim_logged("sansec", "");
    d.login_custodian();
    let b = Browser::start("zh-CN");
    assert!(b
        .run("return navigator.language", &[])
        .as_str()
        .unwrap_or_default()
        .starts_with("zh"));

    // First approver: signs in with the token; the list is empty, then a request arrives
    // without a reload (the event stream), counted in the navigation.
    b.goto(&format!("{}/", d.daemon.url));
    b.wait("#signin-form");
    b.screenshot("01-sign-in");
    sign_in(&b, &d, Who::Approver1);
    b.wait_text("#pending-title", "(0)");
    b.wait_text("#live", "实时");
    let marker = b.run("window.__noReload = 1; return 1", &[]);
    assert_eq!(marker, json!(1));
    let id = d.request(d.seal_id, &[[7u8; 32]]);
    let row = b.wait(&format!("tr[data-request=\"{id}\"]"));
    assert!(
        b.text_of(&row).contains("demo-client"),
        "{}",
        b.text_of(&row)
    );
    b.wait_text("#pending-total", "(1)");
    b.wait_text("#pending-count", "1");
    assert_eq!(
        b.run("return window.__noReload", &[]),
        json!(1),
        "the page was not reloaded"
    );
    b.screenshot("02-approver-pending");

    // The request page: requester, purpose, seal with image and validity, the document.
    b.click_css(&format!("tr[data-request=\"{id}\"] a"));
    b.wait("#decide");
    assert_eq!(b.text("#request-requester"), "demo-client");
    assert_eq!(b.text("#request-purpose"), "test");
    assert_eq!(b.find("#request-state").map(|_| ()), Some(()));
    assert!(!b.text("#seal-name").is_empty());
    let image_ok = b.run(
        "const i = document.querySelector('.seal-image'); return !!i && i.complete && i.naturalWidth > 0;",
        &[],
    );
    assert_eq!(image_ok, json!(true), "the seal image is shown");
    assert_eq!(b.text(".doc-digest"), hex::encode([7u8; 32]));
    b.screenshot("03-request-page");

    // Approve with the keyboard: type a comment, Tab to the approve button, Enter.
    let comment = b.wait("#comment");
    b.click(&comment);
    b.keys("材料齐全，同意");
    b.keys("\u{E004}");
    assert_eq!(
        b.run("return document.activeElement.id", &[]),
        json!("approve"),
        "Tab from the comment reaches the approve button"
    );
    b.keys("\u{E007}");
    b.wait_text("#votes", "材料齐全，同意");
    assert!(b.find("#decide").is_none(), "no second vote");
    b.wait_text("#pending-count", "0");
    b.screenshot("04-approved-once");
    let alice = b.session();

    // Second approver: a one-time link from `sealctl console` (it works once), opened in the
    // same tab: alice's session is ended and bob's begins.
    let out = d.sealctl_daemon("console", &d.token_file(Who::Approver2), &[], "");
    assert!(out.status.success(), "{out:?}");
    let link = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        link.starts_with(&format!("{}/#code=", d.daemon.url)),
        "{link}"
    );
    assert!(!link.contains(d.token(Who::Approver2)));
    b.goto(&link);
    b.wait("#signout:not([hidden])");
    assert!(
        !b.current_url().contains("code="),
        "the code leaves the address bar: {}",
        b.current_url()
    );
    assert!(b.text("#who").contains("bob"), "{}", b.text("#who"));
    let r = d.daemon.raw(
        "GET",
        "/v1/seals",
        &[("Authorization", &format!("Bearer {alice}"))],
        None,
    );
    assert_eq!(r.status, 401, "the replaced session was ended: {}", r.body);
    b.goto(&format!("{}/#/requests/{id}", d.daemon.url));
    b.wait("#decide");
    b.alt('a');
    b.wait_text("#request-title", "已签章");
    let signed = d.wait_final(id);
    assert_eq!(signed["state"], "signed", "{signed}");
    sign_out(&b);
    b.goto(&link);
    b.wait_text("main", "登录链接无效或已使用");

    // The requester: sees `signed`, downloads the SES_Signature, which is the daemon's.
    sign_in(&b, &d, Who::Client);
    b.goto(&format!("{}/#/requests/{id}", d.daemon.url));
    b.wait_text("#request-state", "已签章");
    assert!(b.find("#decide").is_none());
    b.screenshot("05-requester-signed");
    b.click(&b.wait(".download-sig"));
    let got = b.downloaded(".ses.dat");
    let want = base64::engine::general_purpose::STANDARD
        .decode(
            signed["signatures"][0]["ses_signature"]
                .as_str()
                .expect("signature"),
        )
        .expect("base64");
    assert_eq!(
        got, want,
        "the downloaded SES_Signature is the one seald made"
    );

    // A new digest request from the console: the file's SM3 is computed in the page.
    b.goto(&format!("{}/#/new", d.daemon.url));
    b.wait("#new-seal option");
    let file = d.dir.path().join("合同.txt");
    std::fs::write(&file, "甲方与乙方签订本合同。".repeat(300)).expect("file");
    b.type_into(&b.wait("#new-file"), &file.display().to_string());
    let digest = hex::encode(seald::crypto::sm3(&std::fs::read(&file).expect("read")));
    let deadline = Instant::now() + Duration::from_secs(30);
    while b.run("return document.getElementById('new-digest').value", &[]) != json!(digest) {
        assert!(Instant::now() < deadline, "the page never computed the SM3");
        std::thread::sleep(Duration::from_millis(50));
    }
    b.type_into(&b.wait("#new-purpose"), "年度合同盖章");
    b.screenshot("06-requester-new");
    b.click(&b.wait("#new-submit"));
    let text = b.wait_text("#new-result", "已提交");
    let new_id: i64 = text
        .split('#')
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no id in {text:?}"));
    b.wait(&format!("#mine-table tr[data-request=\"{new_id}\"]"));
    let r = d.call(
        "GET",
        &format!("/v1/stamp-requests/{new_id}"),
        Some(Who::Client),
        None,
    );
    let v = r.json();
    assert_eq!(v["documents"][0]["digest"], json!(digest), "{v}");
    assert_eq!(v["documents"][0]["name"], "合同.txt");
    assert_eq!(v["purpose"], "年度合同盖章");
    assert_eq!(
        v["origin"],
        json!(d.daemon.url),
        "sent from the console's own origin"
    );
    sign_out(&b);
}

#[test]
fn a_custodian_logs_the_token_in_and_changes_the_pin_without_leaking_it() {
    let d = Deployment::hsm_sim_logged("sansec", "");
    let pin = demo_file(&d, "custodian.pin");
    let b = Browser::start("en-US");
    sign_in(&b, &d, Who::Custodian);
    assert_eq!(
        b.run("return document.documentElement.lang", &[]),
        json!("en")
    );
    b.goto(&format!("{}/#/devices", d.daemon.url));
    let card = format!("article[data-serial=\"{SERIAL}\"]");
    b.wait(&format!("{card} .tries-left"));
    assert_eq!(b.text(&format!("{card} .logged-in")), "no");
    b.wait_text(&format!("{card} .pin-form"), "At least");
    b.screenshot("07-custodian-devices");

    // Wrong PINs (through the API) until the token reports its final try.
    for n in 0.. {
        let r = d.call(
            "POST",
            &format!("/v1/devices/{SERIAL}/login"),
            Some(Who::Custodian),
            Some(&json!({ "pin": WRONG_PIN })),
        );
        if r.status == 409 {
            assert_eq!(r.json()["code"], "pin_final_try", "{}", r.body);
            break;
        }
        assert_eq!(r.status, 403, "{}", r.body);
        assert!(n < 10, "never reached the final try");
    }

    // The console asks for the confirmation before spending the last try.
    b.goto(&format!("{}/#/seals", d.daemon.url));
    b.wait("#seals-table");
    b.goto(&format!("{}/#/devices", d.daemon.url));
    let pin_input = b.wait(&format!("#pin-login-{SERIAL}"));
    b.type_into(&pin_input, &pin);
    b.click_css(&format!("{card} .login-form button[type=submit]"));
    b.wait_text(&format!("{card} .login-form"), "one try left");
    assert_eq!(
        b.run(
            "return document.getElementById(arguments[0]).value",
            &[json!(format!("pin-login-{SERIAL}"))]
        ),
        json!(""),
        "the PIN input is cleared after submit"
    );
    b.screenshot("08-custodian-final-try");
    b.click_css(&format!("#final-login-{SERIAL}"));
    b.type_into(&b.wait(&format!("#pin-login-{SERIAL}")), &pin);
    b.click_css(&format!("{card} .login-form button[type=submit]"));
    b.wait_text(&format!("{card} .logged-in"), "yes");

    // Change the PIN: old, new twice.
    b.type_into(&b.wait(&format!("#pin-old-{SERIAL}")), &pin);
    b.type_into(&b.wait(&format!("#pin-new-{SERIAL}")), NEW_PIN);
    b.type_into(&b.wait(&format!("#pin-new2-{SERIAL}")), NEW_PIN);
    b.click_css(&format!("{card} .pin-form button[type=submit]"));
    b.wait_text(&format!("{card} .pin-form"), "The PIN was changed");
    b.screenshot("09-custodian-pin-changed");

    // Neither PIN is in the page, its inputs, its storage, the daemon's log, the usage log,
    // the process table or the store; the change is recorded.
    for secret in [pin.as_str(), NEW_PIN] {
        assert!(!b.dom_and_values().contains(secret), "a PIN is in the page");
        assert!(!b.storage().contains(secret), "a PIN is in the storage");
    }
    let records = d.call("GET", "/v1/audit?limit=1000", Some(Who::Auditor), None);
    assert_eq!(records.status, 200);
    assert!(
        records.body.contains("pin-change"),
        "the change is recorded"
    );
    assert!(!records.body.contains(&pin) && !records.body.contains(NEW_PIN));
    d.assert_pins_absent(&[&pin, NEW_PIN]);
    // The new PIN is the token's PIN now.
    let r = d.call(
        "POST",
        &format!("/v1/devices/{SERIAL}/logout"),
        Some(Who::Custodian),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    d.login_custodian_with(NEW_PIN);

    // The UKey pulled out: its card says it is absent, naming the seals it holds.
    let out = std::process::Command::new(seald_tests::bins::hsm_sim_cli())
        .arg("--config")
        .arg(d.hsm_sim_conf())
        .args(["eject", SERIAL])
        .output()
        .expect("hsm-sim");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    b.goto(&format!("{}/#/seals", d.daemon.url));
    b.wait("#seals-table");
    b.goto(&format!("{}/#/devices", d.daemon.url));
    let absent = b.wait_text(
        &format!("article.absent[data-serial=\"{SERIAL}\"]"),
        "not plugged in",
    );
    assert!(absent.contains("合同专用章"), "{absent}");
    b.screenshot("10-custodian-token-absent");
    sign_out(&b);
}

#[test]
fn auditors_read_the_log_but_cannot_approve_and_other_origins_get_nothing() {
    let d = Deployment::hsm_sim("sansec");
    let id = d.request(d.seal_id, &[[9u8; 32]]);

    // Security headers on every console answer.
    for path in ["/", "/console/app.js", "/console/app.css"] {
        let r = d.daemon.raw("GET", path, &[], None);
        assert_eq!(r.status, 200, "{path}");
        let csp = r.header("content-security-policy").unwrap_or_default();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        assert_eq!(r.header("x-frame-options"), Some("DENY"), "{path}");
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{path}");
        assert_eq!(r.header("cache-control"), Some("no-store"), "{path}");
        assert!(r.header("set-cookie").is_none());
    }
    // The Host guard covers the console too (DNS rebinding).
    let r = d
        .daemon
        .raw("GET", "/", &[("Host", "evil.example:80")], None);
    assert_eq!(r.status, 421);

    let b = Browser::start("zh-CN");
    sign_in(&b, &d, Who::Auditor);
    b.goto(&format!("{}/#/audit", d.daemon.url));
    b.wait("#audit-table");
    b.wait("#expect-head");
    assert!(b.text("#audit-table").contains("stamp-request"));
    // A filter the API has: only decisions (none yet), then stamp requests.
    // The unfiltered table goes first, so that the wait below finds the filtered one (the
    // page replaces the table when the answer comes).
    b.run(
        "document.getElementById('audit-kind').value = 'stamp-request'; document.getElementById('audit-table').remove()",
        &[],
    );
    b.click(&b.wait("#audit-form button[type=submit]"));
    b.wait("#audit-table");
    let kinds = b.run(
        "return Array.from(document.querySelectorAll('#audit-table tbody tr td:nth-child(3)')).map(td => td.textContent)",
        &[],
    );
    assert!(
        kinds
            .as_array()
            .is_some_and(|k| !k.is_empty() && k.iter().all(|k| k == "stamp-request")),
        "{kinds}"
    );
    b.screenshot("11-auditor-log");

    // Paging: two records a page, the next page continues after the last seq shown; a page
    // exports as JSON Lines.
    let seqs = |b: &Browser| -> Vec<i64> {
        b.run(
            "return Array.from(document.querySelectorAll('#audit-table tbody tr')).map(tr => Number(tr.dataset.seq))",
            &[],
        )
        .as_array()
        .expect("seqs")
        .iter()
        .filter_map(Value::as_i64)
        .collect()
    };
    b.run("document.getElementById('audit-kind').value = ''; document.getElementById('audit-limit').value = '2'", &[]);
    b.click(&b.wait("#audit-form button[type=submit]"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while seqs(&b).len() != 2 {
        assert!(Instant::now() < deadline, "no page of two");
        std::thread::sleep(Duration::from_millis(50));
    }
    let first = seqs(&b);
    b.click(&b.wait("#audit-next"));
    // The table is emptied and refilled: wait for the new rows themselves.
    let deadline = Instant::now() + Duration::from_secs(30);
    let second = loop {
        let shown = seqs(&b);
        if !shown.is_empty() && shown.first() != first.first() {
            break shown;
        }
        assert!(Instant::now() < deadline, "the next page never came");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        second.iter().all(|s| *s > first[1]),
        "{first:?} then {second:?}"
    );
    b.click(&b.wait("#audit-export"));
    let exported = String::from_utf8(b.downloaded(".jsonl")).expect("utf-8");
    let lines: Vec<Value> = exported
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(
        lines
            .iter()
            .map(|l| l["seq"].as_i64().unwrap_or(0))
            .collect::<Vec<_>>(),
        second
    );
    // Everything the filters select, across pages, as the API lists it.
    b.click(&b.wait("#audit-export-all"));
    let all = String::from_utf8(b.downloaded("seald-usage-log.jsonl")).expect("utf-8");
    let mut listed = 0;
    let mut after = 0;
    loop {
        let r = d.call(
            "GET",
            &format!("/v1/audit?after={after}&limit=1000"),
            Some(Who::Auditor),
            None,
        );
        let v = r.json();
        listed += v["records"].as_array().map_or(0, Vec::len);
        match v["next_after"].as_i64() {
            Some(next) => after = next,
            None => break,
        }
    }
    assert!(listed > 2);
    assert_eq!(all.lines().count(), listed, "{all}");

    // The request page has no approve button for an auditor, and a forced call is refused.
    b.goto(&format!("{}/#/requests/{id}", d.daemon.url));
    b.wait("#documents");
    assert!(b.find("#approve").is_none() && b.find("#decide").is_none());
    b.screenshot("12-auditor-request");
    let session = b.session();
    let forced = page_fetch(
        &b,
        &format!("/v1/stamp-requests/{id}/approve"),
        "POST",
        &session,
    );
    assert_eq!(forced["status"], 403, "{forced}");
    assert!(
        forced["body"]
            .as_str()
            .unwrap_or_default()
            .contains("approver"),
        "{forced}"
    );
    let r = d.call(
        "GET",
        &format!("/v1/stamp-requests/{id}"),
        Some(Who::Auditor),
        None,
    );
    assert_eq!(r.json()["votes"], json!([]), "no vote was recorded");

    // Another loopback origin: cannot read the API with the session (CORS refused), and cannot
    // frame the console.
    let daemon = d.daemon.url.clone();
    let other = serve_other_origin(format!(
        "<!doctype html><title>other</title><iframe id=f src=\"{daemon}/\" width=600 height=300></iframe>"
    ));
    b.goto(&other);
    for (path, method) in [
        ("/v1/seals", "GET"),
        ("/v1/audit", "GET"),
        ("/v1/console/session", "POST"),
    ] {
        let answer = page_fetch(&b, &format!("{daemon}{path}"), method, &session);
        assert!(
            answer["error"]
                .as_str()
                .is_some_and(|e| e.contains("Failed to fetch")),
            "{method} {path} from another origin: {answer}"
        );
    }
    assert_eq!(
        b.storage(),
        "{}",
        "the console's storage belongs to its own origin"
    );
    let frame = b.wait("#f");
    std::thread::sleep(Duration::from_millis(500));
    b.frame(Some(&frame));
    assert!(
        b.find("#signin-form").is_none() && b.find("#main").is_none(),
        "the console rendered in a frame"
    );
    b.frame(None);
    b.screenshot("13-other-origin-frame-refused");

    // The session still works on its own origin; signing out ends it for good.
    b.goto(&format!("{daemon}/#/seals"));
    b.wait("#seals-table");
    sign_out(&b);
    let r = d.daemon.raw(
        "GET",
        "/v1/seals",
        &[("Authorization", &format!("Bearer {session}"))],
        None,
    );
    assert_eq!(
        r.status, 401,
        "the ended session no longer works: {}",
        r.body
    );
}

#[test]
fn an_admin_suspends_and_resumes_a_seal_with_a_reason() {
    let d = Deployment::hsm_sim("sansec");
    let b = Browser::start("en-US");
    sign_in(&b, &d, Who::Admin);
    b.goto(&format!("{}/#/seals", d.daemon.url));
    b.wait("#seals-table");
    b.click_css("tr[data-seal=\"2\"] button.manage");
    b.run(
        "document.getElementById('seal-verb').value = 'suspend'",
        &[],
    );
    // No reason: refused in the page before the API is asked.
    b.click(&b.wait("#seal-actions button[type=submit]"));
    b.wait_text("#seal-actions", "Give a reason");
    b.type_into(&b.wait("#seal-reason"), "key holder on leave");
    b.screenshot("14-admin-seal-action");
    b.click(&b.wait("#seal-actions button[type=submit]"));
    b.wait_text("tr[data-seal=\"2\"]", "suspended");
    let r = d.call("GET", "/v1/seals/2", Some(Who::Admin), None);
    assert_eq!(r.json()["seal"]["state"], "suspended");
    b.screenshot("15-admin-seals");
    b.click_css("tr[data-seal=\"2\"] button.manage");
    b.run("document.getElementById('seal-verb').value = 'resume'", &[]);
    b.type_into(&b.wait("#seal-reason"), "back at work");
    b.click(&b.wait("#seal-actions button[type=submit]"));
    b.wait_text("tr[data-seal=\"2\"]", "active");
    sign_out(&b);
}

#[test]
fn the_page_signs_out_by_itself_when_left_idle() {
    // The page's own idle timer (the event stream is re-checked only every 30 s here).
    let d = Deployment::hsm_sim_with("sansec", "\n[api]\nconsole_idle_secs = 2\n");
    let b = Browser::start("en-US");
    sign_in(&b, &d, Who::Auditor);
    let session = b.session();
    b.wait_for("#signin-form", Duration::from_secs(40));
    b.wait_text("main", "Signed out after a period without activity");
    assert_eq!(b.storage(), "{}");
    let r = d.daemon.raw(
        "GET",
        "/v1/seals",
        &[("Authorization", &format!("Bearer {session}"))],
        None,
    );
    assert_eq!(r.status, 401, "{}", r.body);
}

/// What an OFD request carries once uploads land (issue 15's `files`: size, SM3, pages, mode,
/// placements resolved to page boxes in mm, riding slices clipped), injected into the answer of
/// `GET /v1/stamp-requests/{id}` in the page: this branch's API has no uploads yet.
const OFD_FILES: &str = r#"[{"n": 1, "name": "invoice.ofd", "size": 12400, "sm3": null, "mode": "continue",
  "placements": [{"kind": "at", "page": 1, "x": 150, "y": 230}, {"kind": "riding", "edge": "right"}],
  "plan": {"pages": 3, "stamps": [
    {"page": 1, "page_ref": "p1", "boundary": [150, 230, 40, 40], "clip": null},
    {"page": 2, "page_ref": "p2", "boundary": [190, 100, 40, 40], "clip": [0, 0, 20, 40]},
    {"page": 3, "page_ref": "p3", "boundary": [170, 100, 40, 40], "clip": [20, 0, 20, 40]}]},
  "sealed": false}]"#;

#[test]
fn an_ofd_request_shows_its_placements_on_page_previews() {
    let d = Deployment::hsm_sim("sansec");
    let id = d.request(d.seal_id, &[[5u8; 32]]);
    let b = Browser::start("en-US");
    sign_in(&b, &d, Who::Approver1);
    b.wait(&format!("tr[data-request=\"{id}\"]"));
    b.run(
        "const files = JSON.parse(arguments[0]);
         const real = window.fetch;
         window.fetch = async (url, opts) => {
           const r = await real(url, opts);
           if (!/\\/v1\\/stamp-requests\\/\\d+$/.test(String(url))) return r;
           const v = await r.json();
           files[0].sm3 = v.documents[0].digest;
           v.files = files;
           return new Response(JSON.stringify(v), {status: r.status, headers: {'Content-Type': 'application/json'}});
         };
         location.hash = '#/requests/' + arguments[1];",
        &[json!(OFD_FILES), json!(id)],
    );
    b.wait("svg.page");
    let doc = b.text("#documents");
    assert!(
        doc.contains("12.1 KiB") && doc.contains("page 1: x 150, y 230, 40 × 40 mm"),
        "{doc}"
    );
    let shape = b.run(
        "return Array.from(document.querySelectorAll('svg.page')).map(s => ({
           label: s.getAttribute('aria-label'),
           boxes: Array.from(s.querySelectorAll('rect.stamp-box')).map(r => ['x','y','width','height'].map(a => Number(r.getAttribute(a)))),
           images: Array.from(s.querySelectorAll('image')).map(i => i.getAttribute('clip-path')),
           clips: Array.from(s.querySelectorAll('clipPath rect')).map(r => ['x','y','width','height'].map(a => Number(r.getAttribute(a)))),
         }))",
        &[],
    );
    assert_eq!(
        shape,
        json!([
            {"label": "page 1", "boxes": [[150, 230, 40, 40]], "images": [null], "clips": []},
            {"label": "page 2", "boxes": [[190, 100, 40, 40]], "images": ["url(#clip-1-1-0)"], "clips": [[190, 100, 20, 40]]},
            {"label": "page 3", "boxes": [[170, 100, 40, 40]], "images": ["url(#clip-1-2-0)"], "clips": [[190, 100, 20, 40]]},
        ]),
        "one preview per stamped page, the seal at its box, riding slices clipped"
    );
    b.run("document.getElementById('documents').scrollIntoView()", &[]);
    b.screenshot("16-ofd-placement-preview");

    // Reject from the keyboard (Alt+R), with a reason.
    b.click(&b.wait("#comment"));
    b.keys("the riding seal must be on the left edge");
    b.alt('r');
    b.wait_text("#request-title", "rejected");
    let r = d.call(
        "GET",
        &format!("/v1/stamp-requests/{id}"),
        Some(Who::Auditor),
        None,
    );
    let v = r.json();
    assert_eq!(v["state"], "rejected", "{v}");
    assert_eq!(v["votes"][0]["approve"], false);
    assert_eq!(
        v["votes"][0]["comment"],
        "the riding seal must be on the left edge"
    );
}
