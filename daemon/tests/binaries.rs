//! The binaries start, and refuse a bad configuration with a message that names the key.

use std::process::{Command, Output};

/// Runs `binary args… --config <file with config>` and returns its output.
fn run_with_config(binary: &str, args: &[&str], config: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seald.toml");
    std::fs::write(&path, config).unwrap();
    Command::new(binary)
        .args(args)
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap()
}

fn failure_text(output: &Output) -> String {
    assert!(!output.status.success(), "expected a refusal");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn seald_refuses_a_non_loopback_listen_address() {
    let output = run_with_config(
        env!("CARGO_BIN_EXE_seald"),
        &[],
        "listen = \"0.0.0.0:7780\"\n",
    );
    let stderr = failure_text(&output);
    assert!(
        stderr.contains("`listen`") && stderr.contains("loopback"),
        "{stderr}"
    );
}

#[test]
fn seald_names_the_bad_key_in_a_config() {
    let config = "[[module]]\nname = \"x\"\npath = \"/nowhere.so\"\nmax_sessions = \"four\"\n";
    let output = run_with_config(env!("CARGO_BIN_EXE_seald"), &[], config);
    let stderr = failure_text(&output);
    assert!(stderr.contains("max_sessions"), "{stderr}");
}

#[test]
fn sealctl_reports_an_unloadable_module() {
    let config = "[[module]]\nname = \"ghost\"\npath = \"/nowhere/libghost.so\"\n";
    let output = run_with_config(env!("CARGO_BIN_EXE_sealctl"), &["devices"], config);
    let stderr = failure_text(&output);
    assert!(
        stderr.contains("cannot load device library /nowhere/libghost.so"),
        "{stderr}"
    );
}
