//! The real binaries against SoftHSM: `seald` answers on loopback, `sealctl devices` lists tokens.

use std::process::Command;

use seald_tests::bins::bin;
use seald_tests::daemon::Daemon;
use seald_tests::softhsm::{SoftHsm, LIBRARY};

#[test]
fn seald_starts_and_answers_health() {
    let daemon = Daemon::start("", &[]);
    assert!(
        daemon.url.starts_with("http://127.0.0.1:"),
        "{}",
        daemon.url
    );
    let (status, body) = daemon.get("/v1/health");
    assert_eq!(status, 200);
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "ok");
}

#[test]
fn sealctl_devices_lists_tokens_and_pin_state() {
    let hsm = SoftHsm::shared();
    let token = hsm.new_token("devices-cli");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("seald.toml");
    std::fs::write(
        &config,
        format!(
            "[[module]]\nname = \"softhsm\"\npath = \"{LIBRARY}\"\nmodel = \"cipher-machine\"\n"
        ),
    )
    .unwrap();
    let run = |json: bool| {
        let mut command = Command::new(bin("sealctl"));
        command
            .args(["devices", "--config"])
            .arg(&config)
            .env("SOFTHSM2_CONF", hsm.conf_path());
        if json {
            command.arg("--json");
        }
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let reports: serde_json::Value = serde_json::from_str(&run(true)).unwrap();
    let tokens = reports["modules"][0]["tokens"].as_array().unwrap();
    let listed = tokens
        .iter()
        .find(|t| t["serial"] == token.serial.as_str())
        .expect("the new token is listed by serial");
    assert_eq!(listed["label"], "devices-cli");
    assert_eq!(listed["pin"]["user_pin_initialized"], true);
    assert_eq!(listed["pin"]["locked"], false);

    let table = run(false);
    assert!(table.contains("module softhsm"), "{table}");
    let row = table
        .lines()
        .find(|l| l.contains(&token.serial))
        .expect("a row for the token");
    assert!(
        row.contains("devices-cli") && row.trim_end().ends_with("ok"),
        "{row}"
    );
}
