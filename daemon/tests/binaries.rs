//! The binaries start, and refuse a bad configuration with a message that names the key.

use std::process::Command;

#[test]
fn seald_refuses_a_non_loopback_listen_address() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("seald.toml");
    std::fs::write(&config, "listen = \"0.0.0.0:7780\"\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_seald"))
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("`listen`") && stderr.contains("loopback"),
        "{stderr}"
    );
}

#[test]
fn seald_names_the_bad_key_in_a_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("seald.toml");
    std::fs::write(
        &config,
        "[[module]]\nname = \"x\"\npath = \"/nowhere.so\"\nmax_sessions = \"four\"\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_seald"))
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("max_sessions"), "{stderr}");
}

#[test]
fn sealctl_reports_an_unloadable_module() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("seald.toml");
    std::fs::write(
        &config,
        "[[module]]\nname = \"ghost\"\npath = \"/nowhere/libghost.so\"\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_sealctl"))
        .arg("devices")
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot load PKCS#11 module /nowhere/libghost.so"),
        "{stderr}"
    );
}
