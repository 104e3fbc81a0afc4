//! The console's API side against the real seald, without a browser: its own origin is
//! allowed and no other, console sessions (from an API token or a one-time code) work until
//! signed out, idle, or their token is replaced, and cannot mint other sessions or links.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use seald_tests::daemon::RawResponse;
use seald_tests::deployment::{Deployment, Who};
use serde_json::{json, Value};

const FAST: &str =
    "\n[pcsc]\nenabled = false\n[api]\nstream_recheck_secs = 1\nconsole_idle_secs = 2\n";

fn with_bearer(
    d: &Deployment,
    method: &str,
    path: &str,
    bearer: &str,
    body: Option<&Value>,
) -> RawResponse {
    let auth = format!("Bearer {bearer}");
    let mut headers = vec![("Authorization", auth.as_str())];
    let bytes = body.map(|b| b.to_string());
    if bytes.is_some() {
        headers.push(("Content-Type", "application/json"));
    }
    d.daemon
        .raw(method, path, &headers, bytes.as_deref().map(str::as_bytes))
}

fn start_session(d: &Deployment, who: Who) -> (String, Value) {
    let r = d.call("POST", "/v1/console/session", Some(who), None);
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    let session = v["session"].as_str().expect("session").to_owned();
    assert!(session.starts_with("sldc_"), "{session}");
    (session, v)
}

#[test]
fn the_console_origin_is_its_own_and_no_other() {
    let d = Deployment::hsm_sim_with("sansec", FAST);
    let authority = d.daemon.authority().to_owned();
    let port = authority.rsplit(':').next().expect("port").to_owned();
    let token = format!("Bearer {}", d.token(Who::Auditor));
    let call = |host: &str, origin: &str| {
        d.daemon.raw(
            "POST",
            "/v1/console/links",
            &[
                ("Host", host),
                ("Origin", origin),
                ("Authorization", &token),
            ],
            None,
        )
    };
    // The page's own origin, as the request names the daemon.
    let same = call(&authority, &format!("http://{authority}"));
    assert_eq!(same.status, 200, "{}", same.body);
    let local = format!("localhost:{port}");
    assert_eq!(call(&local, &format!("http://{local}")).status, 200);
    // Another name of the daemon, another port, another scheme: other origins.
    for origin in [
        format!("http://localhost:{port}"),
        "http://127.0.0.1:1".to_owned(),
        format!("https://{authority}"),
        "null".to_owned(),
    ] {
        let r = call(&authority, &origin);
        assert_eq!(r.status, 403, "{origin}: {}", r.body);
        assert_eq!(r.json()["code"], "origin_not_allowed");
        assert!(r.header("access-control-allow-origin").is_none());
    }
    // A preflight from another loopback origin is refused too.
    let r = d.daemon.raw(
        "OPTIONS",
        "/v1/seals",
        &[
            ("Origin", "http://127.0.0.1:1"),
            ("Access-Control-Request-Method", "GET"),
            ("Access-Control-Request-Headers", "authorization"),
        ],
        None,
    );
    assert_eq!(r.status, 403, "{}", r.body);
}

#[test]
fn console_sessions_work_until_ended_and_cannot_multiply() {
    let d = Deployment::hsm_sim_with("sansec", FAST);
    let (session, v) = start_session(&d, Who::Approver1);
    assert_eq!(v["name"], "alice");
    assert_eq!(v["roles"], json!(["approver"]));
    assert_eq!(v["idle_timeout_secs"], 2);
    let r = with_bearer(&d, "GET", "/v1/console/session", &session, None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["console_session"], true);
    let r = with_bearer(
        &d,
        "GET",
        "/v1/stamp-requests?state=pending",
        &session,
        None,
    );
    assert_eq!(
        r.status, 200,
        "the session acts as its identity: {}",
        r.body
    );

    // A session makes neither sessions nor links.
    for path in ["/v1/console/session", "/v1/console/links"] {
        let r = with_bearer(&d, "POST", path, &session, None);
        assert_eq!(r.status, 403, "{path}: {}", r.body);
        assert_eq!(r.json()["code"], "session_not_allowed", "{path}");
    }

    // One-time codes: one session each, once, and never for a made-up code.
    let r = d.call("POST", "/v1/console/links", Some(Who::Approver2), None);
    assert_eq!(r.status, 200, "{}", r.body);
    let link = r.json();
    let code = link["code"].as_str().expect("code").to_owned();
    assert_eq!(link["path"], format!("/#code={code}"));
    assert!(!r.body.contains(d.token(Who::Approver2)));
    let exchange = |code: &str| {
        d.daemon.raw(
            "POST",
            "/v1/console/session",
            &[("Content-Type", "application/json")],
            Some(json!({ "code": code }).to_string().as_bytes()),
        )
    };
    let r = exchange(&code);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["name"], "bob");
    let bob = r.json()["session"].as_str().expect("session").to_owned();
    let again = exchange(&code);
    assert_eq!(again.status, 401, "a code works once: {}", again.body);
    assert!(again.json()["message"]
        .as_str()
        .unwrap_or_default()
        .contains("sealctl console"));
    assert_eq!(exchange(&"0".repeat(64)).status, 401);
    let r = d.daemon.raw("POST", "/v1/console/session", &[], None);
    assert_eq!(r.status, 401, "neither token nor code: {}", r.body);

    // Signing out ends that session, not the other, nor the API token.
    let r = with_bearer(&d, "POST", "/v1/console/session/end", &session, None);
    assert_eq!(r.status, 200, "{}", r.body);
    let r = with_bearer(&d, "GET", "/v1/seals", &session, None);
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("sign in again"), "{}", r.body);
    assert_eq!(with_bearer(&d, "GET", "/v1/seals", &bob, None).status, 200);
    assert_eq!(
        d.call("GET", "/v1/seals", Some(Who::Approver1), None)
            .status,
        200
    );
    let r = d.call(
        "POST",
        "/v1/console/session/end",
        Some(Who::Approver1),
        None,
    );
    assert_eq!(r.status, 422, "an API token is not ended: {}", r.body);
    assert_eq!(r.json()["code"], "not_a_session");

    // Replacing the identity's token ends its sessions; so does disabling the identity.
    let (client, _) = start_session(&d, Who::Client);
    let (auditor, _) = start_session(&d, Who::Auditor);
    d.sealctl("user", &["token", "demo-client"]);
    assert_eq!(
        with_bearer(&d, "GET", "/v1/seals", &client, None).status,
        401
    );
    d.sealctl("user", &["disable", "audrey"]);
    assert_eq!(
        with_bearer(&d, "GET", "/v1/seals", &auditor, None).status,
        401
    );
}

#[test]
fn an_idle_session_ends_and_its_event_stream_with_it() {
    let d = Deployment::hsm_sim_with("sansec", FAST);
    let (session, _) = start_session(&d, Who::Auditor);
    // An event stream opened with the session is re-checked every second; the checks do not
    // count as use, so it ends when the session idles out.
    let mut socket = TcpStream::connect(d.daemon.authority()).expect("connect");
    write!(
        socket,
        "GET /v1/events HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {session}\r\nAccept: text/event-stream\r\n\r\n",
        d.daemon.authority()
    )
    .expect("send");
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(socket).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let started = Instant::now();
    let first = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("status line");
    assert!(first.contains("200"), "{first}");
    let mut revoked = false;
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(10)) {
        if line == "event: revoked" {
            revoked = true;
            break;
        }
    }
    assert!(revoked, "the idle session's stream did not end");
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    let r = with_bearer(&d, "GET", "/v1/seals", &session, None);
    assert_eq!(r.status, 401, "{}", r.body);
    // Use keeps a session alive past the idle time.
    let (busy, _) = start_session(&d, Who::Auditor);
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(800));
        assert_eq!(with_bearer(&d, "GET", "/v1/seals", &busy, None).status, 200);
    }
}
