//! `sealctl doctor` on the hsm-sim demo: all ok when healthy (lines and JSON); a module that
//! cannot load, a token nobody logged in, a certificate within the warning period, a seal past
//! its end, a tampered usage log and a stopped daemon each give a line a person understands,
//! and the other checks still run. Needs pcscd (`scripts/pcscd.sh start`).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use seald_tests::bins::bin;
use seald_tests::deployment::{provision, Deployment, Who, SERIAL};

/// What one doctor run printed, and its exit status.
struct Doctor {
    code: i32,
    stdout: String,
}

impl Doctor {
    /// Runs `sealctl --config CONFIG doctor ARGS…` with the demo's hsm-sim config.
    fn run(config: &Path, hsm_sim_conf: &Path, args: &[&str]) -> Self {
        let out = Command::new(bin("sealctl"))
            .arg("--config")
            .arg(config)
            .arg("doctor")
            .args(args)
            .env("HSM_SIM_CONF", hsm_sim_conf)
            .env_remove("SEALD_TOKEN_FILE")
            .output()
            .expect("run sealctl doctor");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        eprintln!(
            "sealctl doctor {args:?} (exit {:?}):\n{stdout}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        Self {
            code: out.status.code().unwrap_or(-1),
            stdout,
        }
    }

    /// Runs the doctor on a running deployment (its daemon probed at its real port).
    fn on(d: &Deployment, args: &[&str]) -> Self {
        let url = format!("http://{}", d.daemon.authority());
        let mut all = vec!["--daemon", &url];
        all.extend_from_slice(args);
        Self::run(&d.demo_dir().join("seald.toml"), d.hsm_sim_conf(), &all)
    }

    /// The line of check `name` (`ok    name: …`), which must be there.
    fn line(&self, name: &str) -> &str {
        let prefix = format!("{name}: ");
        self.stdout
            .lines()
            .find(|l| l.get(6..).is_some_and(|rest| rest.starts_with(&prefix)))
            .unwrap_or_else(|| panic!("no `{name}` line in:\n{}", self.stdout))
    }

    /// The status word of check `name`: `ok`, `warn` or `FAIL`.
    fn status(&self, name: &str) -> &str {
        self.line(name)
            .split_whitespace()
            .next()
            .unwrap_or_default()
    }

    fn lines_with(&self, status: &str) -> Vec<&str> {
        self.stdout
            .lines()
            .filter(|l| l.split_whitespace().next() == Some(status) && l.contains(": "))
            .collect()
    }
}

/// The checks every run on the demo prints (the demo has seals 1-4 on one hsm-sim token).
const DEMO_CHECKS: &[&str] = &[
    "config",
    "module:hsm-sim",
    "pcscd",
    "token:DEMOUKEY00000001",
    "seal:1",
    "seal:2",
    "seal:3",
    "seal:4",
    "trust_roots",
    "store",
    "usage_log",
    "listener",
    "api_guards",
];

/// Waits until the daemon has marked the demo's short-lived seal 4 expired (it is valid for a
/// few seconds after provisioning).
fn wait_seal_4_expired(d: &Deployment) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = d.call("GET", "/v1/seals/4", Some(Who::Admin), None);
        assert_eq!(r.status, 200, "{}", r.body);
        if r.json()["seal"]["state"] == "expired" {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "seal 4 never expired: {}",
            r.body
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A loopback port nothing listens on.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

#[test]
fn a_healthy_demo_is_all_ok_in_lines_and_json() {
    let d = Deployment::hsm_sim("sansec");
    wait_seal_4_expired(&d);
    d.login_custodian();
    let token = d.token_file(Who::Auditor);
    let token = token.to_str().expect("path");
    let doctor = Doctor::on(&d, &["--token-file", token]);
    assert_eq!(doctor.code, 0, "{}", doctor.stdout);
    for name in DEMO_CHECKS {
        assert_eq!(doctor.status(name), "ok", "{}", doctor.line(name));
    }
    assert!(doctor.lines_with("warn").is_empty(), "{}", doctor.stdout);
    assert!(doctor.lines_with("FAIL").is_empty(), "{}", doctor.stdout);
    assert!(
        doctor
            .stdout
            .ends_with(&format!("{} ok, 0 warn, 0 fail\n", DEMO_CHECKS.len())),
        "{}",
        doctor.stdout
    );
    let token_line = doctor.line(&format!("token:{SERIAL}"));
    assert!(
        token_line.contains("logged in through seald"),
        "{token_line}"
    );
    assert!(token_line.contains("PIN state ok"), "{token_line}");
    assert!(
        doctor.line("module:hsm-sim").contains("SM2 profile sansec"),
        "{}",
        doctor.line("module:hsm-sim")
    );
    assert!(doctor.line("seal:4").contains("is expired since"));
    assert!(doctor.line("listener").contains("answers on"));
    assert!(doctor.line("store").contains("integrity_check ok"));
    // The head it prints is kept and checked on the next run.
    let usage = doctor.line("usage_log");
    let head = usage
        .split("; head ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("head in the usage_log line")
        .to_owned();

    let json = Doctor::on(
        &d,
        &["--token-file", token, "--json", "--expect-head", &head],
    );
    assert_eq!(json.code, 0);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    let names: Vec<&str> = v["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| c["name"].as_str().expect("name"))
        .collect();
    for name in DEMO_CHECKS {
        assert!(names.contains(name), "{name} missing from {names:?}");
    }
    let head_seq = head.split(':').next().expect("seq");
    assert!(names.contains(&format!("usage_log:head:{head_seq}").as_str()));
    assert!(v["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .all(|c| c["status"] == "ok" && !c["message"].as_str().unwrap_or_default().is_empty()));
    assert_eq!(v["ok"], names.len());
    assert_eq!((v["warn"].as_u64(), v["fail"].as_u64()), (Some(0), Some(0)));
}

#[test]
fn a_module_that_cannot_load_fails_naming_its_path_and_the_rest_still_runs() {
    let d = Deployment::hsm_sim("sansec");
    let missing = d.demo_dir().join("libvendor-ukey.so");
    let config = d.demo_dir().join("seald-missing-module.toml");
    let text = std::fs::read_to_string(d.demo_dir().join("seald.toml")).expect("config")
        + &format!(
            "\n[[module]]\nname = \"vendor-ukey\"\npath = \"{}\"\n",
            missing.display()
        );
    std::fs::write(&config, text).expect("write config");
    let url = format!("http://{}", d.daemon.authority());
    let doctor = Doctor::run(&config, d.hsm_sim_conf(), &["--daemon", &url]);
    assert_eq!(doctor.code, 1, "{}", doctor.stdout);
    let line = doctor.line("module:vendor-ukey");
    assert!(
        line.starts_with("FAIL  module:vendor-ukey: cannot load "),
        "{line}"
    );
    assert!(line.contains(&missing.display().to_string()), "{line}");
    assert!(line.contains("No such file or directory"), "{line}");
    assert!(
        line.contains("check `path` in the [[module]] named `vendor-ukey`"),
        "{line}"
    );
    // The module that loads, and every other check, are still there.
    assert_eq!(doctor.status("module:hsm-sim"), "ok");
    for name in DEMO_CHECKS {
        doctor.line(name);
    }
    assert_eq!(doctor.status("store"), "ok");
    assert_eq!(doctor.status("listener"), "ok");
}

#[test]
fn a_token_nobody_logged_in_is_a_warning_that_says_how_to_log_in() {
    let d = Deployment::hsm_sim("sansec");
    wait_seal_4_expired(&d);
    let token = d.token_file(Who::Auditor);
    let doctor = Doctor::on(&d, &["--token-file", token.to_str().expect("path")]);
    assert_eq!(doctor.code, 0, "a warning alone exits 0: {}", doctor.stdout);
    let line = doctor.line(&format!("token:{SERIAL}"));
    assert!(line.starts_with("warn  "), "{line}");
    assert!(
        line.contains("it is not logged in: stamps of seals 1, 2, 3 will fail until a custodian logs in (sealctl login --daemon http://"),
        "{line}"
    );
    assert!(line.contains(&format!("--token {SERIAL})")), "{line}");

    // Without a token file the login is not asked for, and the line says so.
    let doctor = Doctor::on(&d, &[]);
    let line = doctor.line(&format!("token:{SERIAL}"));
    assert!(line.starts_with("ok    "), "{line}");
    assert!(
        line.contains("login not checked (give --token-file"),
        "{line}"
    );

    // Once the custodian logs in, the warning is gone.
    d.login_custodian();
    let doctor = Doctor::on(&d, &["--token-file", token.to_str().expect("path")]);
    assert_eq!(doctor.status(&format!("token:{SERIAL}")), "ok");
}

#[test]
fn a_certificate_within_the_warning_period_is_a_warning() {
    let d = Deployment::hsm_sim("sansec");
    // The demo's certificates are valid for a year: with 100000 warning days they are close.
    let doctor = Doctor::on(&d, &["--warn-days", "100000"]);
    let line = doctor.line("seal:1");
    assert!(line.starts_with("warn  seal:1: seal 1 ("), "{line}");
    assert!(line.contains("its certificate (serial "), "{line}");
    assert!(!line.contains("its validity ends"), "said once: {line}");
    assert!(line.contains("within the 100000 warning days): have the CA issue a new certificate and enrol a new seal before then"), "{line}");
    let roots = doctor.line("trust_roots");
    assert!(roots.starts_with("warn  "), "{roots}");
    assert!(
        roots.contains("get the CA's new root before then"),
        "{roots}"
    );
    // With the default 30 days the same seal is fine.
    let doctor = Doctor::on(&d, &[]);
    assert_eq!(doctor.status("seal:1"), "ok", "{}", doctor.line("seal:1"));
}

#[test]
fn a_seal_past_its_end_fails_while_seald_is_stopped() {
    let dir = tempfile::tempdir().expect("temp dir");
    let demo = dir.path().join("demo");
    provision(&demo, "sansec");
    let provisioned = std::time::Instant::now();
    let (config, hsm_sim_conf) = (demo.join("seald.toml"), demo.join("hsm-sim.toml"));
    // Seal 4 is valid for 6 seconds from its enrolment; seald, stopped, has not marked it.
    let doctor = Doctor::run(&config, &hsm_sim_conf, &[]);
    let line = doctor.line("seal:4");
    // Judged within its 6 seconds (unless this machine was too slow to tell): a warning.
    if provisioned.elapsed() < Duration::from_secs(4) {
        assert!(line.starts_with("warn  "), "{line}");
        assert!(line.contains("its validity ends within a day"), "{line}");
    }
    std::thread::sleep(Duration::from_secs(7));
    let doctor = Doctor::run(&config, &hsm_sim_conf, &[]);
    assert_eq!(doctor.code, 1);
    let line = doctor.line("seal:4");
    assert!(line.starts_with("FAIL  seal:4: seal 4 ("), "{line}");
    assert!(line.contains("its validity ended on "), "{line}");
    assert!(line.contains("it cannot stamp; enrol a new seal"), "{line}");
    assert_eq!(doctor.status("seal:1"), "ok");
}

#[test]
fn a_stopped_daemon_fails_the_listener_only() {
    let dir = tempfile::tempdir().expect("temp dir");
    let demo = dir.path().join("demo");
    provision(&demo, "sansec");
    let (config, hsm_sim_conf) = (demo.join("seald.toml"), demo.join("hsm-sim.toml"));
    let url = format!("http://127.0.0.1:{}", free_port());
    let doctor = Doctor::run(&config, &hsm_sim_conf, &["--daemon", &url]);
    assert_eq!(doctor.code, 1);
    let line = doctor.line("listener");
    assert!(
        line.starts_with(&format!(
            "FAIL  listener: seald is not answering on {url} ("
        )),
        "{line}"
    );
    assert!(
        line.contains("is it running? (systemctl status seald"),
        "{line}"
    );
    for name in DEMO_CHECKS {
        doctor.line(name);
    }
    for name in [
        "config",
        "module:hsm-sim",
        "pcscd",
        "store",
        "usage_log",
        "api_guards",
    ] {
        assert_eq!(doctor.status(name), "ok", "{}", doctor.line(name));
    }
    // The login state needs the daemon: the token line says it was not checked.
    assert!(doctor
        .line(&format!("token:{SERIAL}"))
        .contains("login not checked (seald is not answering)"));
    // Without --daemon, the demo's `listen = "127.0.0.1:0"` cannot be probed.
    let doctor = Doctor::run(&config, &hsm_sim_conf, &[]);
    assert!(doctor
        .line("listener")
        .contains("give --daemon http://127.0.0.1:PORT"));
}

#[test]
fn a_tampered_usage_log_fails_naming_the_record() {
    let dir = tempfile::tempdir().expect("temp dir");
    let demo = dir.path().join("demo");
    provision(&demo, "sansec");
    let (config, hsm_sim_conf) = (demo.join("seald.toml"), demo.join("hsm-sim.toml"));
    let doctor = Doctor::run(&config, &hsm_sim_conf, &[]);
    assert_eq!(doctor.status("usage_log"), "ok");
    // An attacker with the file edits record 3 (past the triggers that refuse updates).
    let conn = rusqlite::Connection::open(demo.join("seald.db")).expect("open store");
    conn.execute_batch(
        "DROP TRIGGER audit_log_no_update; UPDATE audit_log SET actor = 'mallory' WHERE seq = 3;",
    )
    .expect("tamper");
    drop(conn);
    let doctor = Doctor::run(&config, &hsm_sim_conf, &["--json"]);
    assert_eq!(doctor.code, 1);
    let v: serde_json::Value = serde_json::from_str(&doctor.stdout).expect("JSON");
    let check = v["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == "usage_log")
        .expect("usage_log check")
        .clone();
    assert_eq!(check["status"], "fail");
    let message = check["message"].as_str().expect("message");
    assert!(
        message.starts_with("CHAIN BROKEN at record 3: record 3 does not match its hash: it was altered after it was written; 2 records before it verified"),
        "{message}"
    );
    assert!(
        message.contains("restore the last good backup"),
        "{message}"
    );
    assert!(v["fail"].as_u64() >= Some(1));
    // The store itself is sound: only the chain is broken.
    let store = v["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == "store")
        .expect("store check");
    assert_eq!(store["status"], "ok", "{store}");
}
