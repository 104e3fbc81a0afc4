//! The HTTP guards of the real `seald`: Host and Origin allow-lists, preflights, JSON-only
//! bodies, size limits, JSON errors everywhere.

use seald_tests::daemon::Daemon;

const ALLOWED_ORIGIN: &str = "http://localhost:5173";

/// A daemon of the test's own, stopped when the test drops it (a `static` one would outlive the
/// test process).
fn daemon() -> Daemon {
    Daemon::start(
        &format!("[api]\nallowed_origins = [\"{ALLOWED_ORIGIN}\"]\nmax_body_bytes = 1024\n"),
        &[],
    )
}

#[test]
fn loopback_host_names_are_served() {
    let d = daemon();
    let port = d.authority().rsplit(':').next().unwrap().to_owned();
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
        let r = d.raw("GET", "/v1/health", &[("Host", &host)], None);
        assert_eq!(r.status, 200, "{host}: {}", r.body);
        assert_eq!(r.header("cache-control"), Some("no-store"));
    }
}

#[test]
fn foreign_host_is_refused_against_dns_rebinding() {
    let d = daemon();
    let port = d.authority().rsplit(':').next().unwrap().to_owned();
    for host in [
        format!("evil.example:{port}"),
        "localhost".to_owned(),
        format!("localhost:{}", 1),
    ] {
        let r = d.raw("GET", "/v1/health", &[("Host", &host)], None);
        assert_eq!(r.status, 421, "{host}");
        assert_eq!(r.json()["code"], "host_not_allowed");
        assert!(r.json()["message"].as_str().unwrap().contains("loopback"));
    }
}

#[test]
fn an_absolute_form_target_is_judged_by_its_own_authority() {
    let d = daemon();
    let own = d.authority().to_owned();
    // RFC 9112 §3.2.2: the target's authority replaces Host, so a foreign one is refused
    // even under an allowed Host.
    let r = d.raw(
        "GET",
        "http://evil.example/v1/health",
        &[("Host", &own)],
        None,
    );
    assert_eq!(r.status, 421, "{}", r.body);
    assert_eq!(r.json()["code"], "host_not_allowed");
    // The daemon's own authority in the target is served, whatever Host says.
    let r = d.raw(
        "GET",
        &format!("http://{own}/v1/health"),
        &[("Host", "evil.example")],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn two_host_fields_are_a_bad_request() {
    let d = daemon();
    let own = d.authority().to_owned();
    for hosts in [[own.as_str(), "evil.example"], [own.as_str(), own.as_str()]] {
        let r = d.raw(
            "GET",
            "/v1/health",
            &[("Host", hosts[0]), ("Host", hosts[1])],
            None,
        );
        assert_eq!(r.status, 400, "{hosts:?}: {}", r.body);
        assert_eq!(r.json()["code"], "duplicate_host");
    }
}

#[test]
fn foreign_origin_is_refused_and_never_echoed() {
    let r = daemon().raw(
        "GET",
        "/v1/health",
        &[("Origin", "https://evil.example")],
        None,
    );
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["code"], "origin_not_allowed");
    assert_eq!(r.header("access-control-allow-origin"), None);
    assert!(!r.body.contains("evil.example"));
}

#[test]
fn allowed_origin_gets_cors_headers() {
    let r = daemon().raw("GET", "/v1/health", &[("Origin", ALLOWED_ORIGIN)], None);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some(ALLOWED_ORIGIN)
    );
    assert_eq!(r.header("vary"), Some("Origin"));
}

#[test]
fn preflights_are_answered_only_for_allowed_origins() {
    let d = daemon();
    let ask = |origin: &str| {
        d.raw(
            "OPTIONS",
            "/v1/stamp-requests",
            &[
                ("Origin", origin),
                ("Access-Control-Request-Method", "POST"),
                (
                    "Access-Control-Request-Headers",
                    "authorization, content-type",
                ),
                ("Access-Control-Request-Private-Network", "true"),
            ],
            None,
        )
    };
    let ok = ask(ALLOWED_ORIGIN);
    assert_eq!(ok.status, 204);
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some(ALLOWED_ORIGIN)
    );
    assert_eq!(
        ok.header("access-control-allow-private-network"),
        Some("true")
    );
    assert!(ok
        .header("access-control-allow-headers")
        .unwrap()
        .contains("authorization"));

    let foreign = ask("https://evil.example");
    assert_eq!(foreign.status, 403);
    assert_eq!(foreign.header("access-control-allow-origin"), None);
    assert_eq!(foreign.header("access-control-allow-private-network"), None);
}

#[test]
fn bodies_must_be_json() {
    let r = daemon().raw(
        "POST",
        "/v1/verify",
        &[("Content-Type", "text/plain")],
        Some(b"{\"a\":1}"),
    );
    assert_eq!(r.status, 415);
    assert_eq!(r.json()["code"], "unsupported_media_type");
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .contains("application/json"));
}

#[test]
fn oversize_body_is_refused() {
    let body = vec![b'x'; 4096];
    let r = daemon().raw(
        "POST",
        "/v1/verify",
        &[("Content-Type", "application/json")],
        Some(&body),
    );
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["code"], "body_too_large");
}

#[test]
fn unknown_paths_and_methods_answer_json() {
    let r = daemon().raw("GET", "/v1/nope", &[], None);
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["code"], "not_found");
    let r = daemon().raw("DELETE", "/v1/health", &[], None);
    assert_eq!(r.status, 405);
    assert_eq!(r.json()["code"], "method_not_allowed");
}
