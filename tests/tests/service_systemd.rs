//! seald under a service manager (issue 21 §2): with `NOTIFY_SOCKET` it sends `READY=1` once
//! it answers, `WATCHDOG=1` keep-alives when `WATCHDOG_USEC` asks for them, and on SIGHUP
//! reloads what is safe (allow-lists, trust roots, log level, /metrics access), names what
//! needs a restart, records the reload in the usage log, and keeps running unchanged on a
//! config that does not load.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::{Duration, Instant};

use seald_tests::deployment::{Deployment, Who};

/// A socket standing in for systemd's notification socket.
struct Notifications {
    socket: UnixDatagram,
    _dir: tempfile::TempDir,
}

impl Notifications {
    fn bind() -> (Self, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        socket
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        (Self { socket, _dir: dir }, path)
    }

    /// The next message (its lines), or a panic after 30 s.
    fn next(&self) -> Vec<String> {
        let mut buf = [0u8; 4096];
        let n = self
            .socket
            .recv(&mut buf)
            .expect("a notification within 30 s");
        String::from_utf8_lossy(&buf[..n])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Messages until one has `line`; returns that one.
    fn until(&self, line: &str) -> Vec<String> {
        loop {
            let message = self.next();
            if message.iter().any(|l| l == line) {
                return message;
            }
        }
    }
}

fn hangup(d: &Deployment) {
    // SAFETY: kill(2) on our own child's pid.
    let rc = unsafe { libc::kill(d.daemon.pid() as i32, libc::SIGHUP) };
    assert_eq!(rc, 0, "SIGHUP");
}

fn origin_allowed(d: &Deployment, origin: &str) -> bool {
    let r = d
        .daemon
        .raw("GET", "/v1/health", &[("Origin", origin)], None);
    match r.status {
        200 => true,
        403 => false,
        other => panic!("unexpected {other}: {}", r.body),
    }
}

#[test]
fn ready_after_the_listener_answers_then_watchdog_keep_alives() {
    let (notes, socket) = Notifications::bind();
    let d = Deployment::hsm_sim_prepared(
        "sansec",
        "",
        |_| {},
        &[
            ("NOTIFY_SOCKET", socket.as_path()),
            ("WATCHDOG_USEC", Path::new("400000")),
        ],
    );
    let ready = notes.until("READY=1");
    assert!(
        ready
            .iter()
            .any(|l| l.starts_with("STATUS=listening on http://")),
        "{ready:?}"
    );
    let r = d.call("GET", "/v1/health", None, None);
    assert_eq!(r.status, 200, "ready means answering: {}", r.body);
    // Keep-alives every 200 ms: a few within a couple of seconds.
    let started = Instant::now();
    for _ in 0..3 {
        notes.until("WATCHDOG=1");
    }
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn sighup_applies_the_safe_settings_and_names_the_rest() {
    let (notes, socket) = Notifications::bind();
    let d =
        Deployment::hsm_sim_prepared("sansec", "", |_| {}, &[("NOTIFY_SOCKET", socket.as_path())]);
    notes.until("READY=1");
    let origin = "http://approvals.example:8443";
    assert!(!origin_allowed(&d, origin));
    assert_eq!(
        d.call("GET", "/metrics", None, None).status,
        401,
        "metrics need a token"
    );
    let reloads_before = d.audit("config-reload").len();

    // An allowed origin, public metrics (both applied) and a larger body limit (needs a restart).
    let config = d.daemon.config_path();
    let text = std::fs::read_to_string(&config).expect("config");
    let edited = format!(
        "{text}\n[api]\nallowed_origins = [\"{origin}\"]\nmax_body_bytes = 2000000\n\n[metrics]\npublic = true\n"
    );
    assert_ne!(edited, text, "the test's edit must change the file");
    std::fs::write(&config, &edited).expect("write config");
    hangup(&d);
    notes.until("RELOADING=1");
    let done = notes.until("READY=1");
    let status = done
        .iter()
        .find_map(|l| l.strip_prefix("STATUS="))
        .expect("a status");
    assert!(status.starts_with("config reloaded"), "{status}");
    assert!(
        status.contains("not applied until seald restarts: api.max_body_bytes"),
        "{status}"
    );
    assert!(origin_allowed(&d, origin), "the new origin is allowed");
    assert_eq!(d.call("GET", "/metrics", None, None).status, 200);
    let records = d.audit("config-reload");
    assert_eq!(records.len(), reloads_before + 1, "{records:?}");

    // A config that does not load changes nothing.
    std::fs::write(&config, "listen = [oops\n").expect("write config");
    hangup(&d);
    let failed = notes.until("READY=1");
    assert!(
        failed
            .iter()
            .any(|l| l.starts_with("STATUS=config not reloaded, nothing changed")),
        "{failed:?}"
    );
    // Only a first line reaches the manager's status: the file's text (it may hold a
    // password) is not quoted there.
    assert!(!failed.iter().any(|l| l.contains("oops")), "{failed:?}");
    assert!(origin_allowed(&d, origin), "the last good settings stay");
    assert_eq!(
        d.call("GET", "/v1/seals", Some(Who::Client), None).status,
        200
    );
    assert_eq!(d.audit("config-reload").len(), reloads_before + 1);
}
