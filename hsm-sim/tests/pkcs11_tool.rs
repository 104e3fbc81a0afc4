//! OpenSC's pkcs11-tool as an independent client of the module.

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

fn tool(conf: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("pkcs11-tool")
        .env("HSM_SIM_CONF", conf)
        .arg("--module")
        .arg(lib_path())
        .args(args)
        .output()
        .expect("pkcs11-tool (OpenSC) must be installed: scripts/setup.sh");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn store(profile: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("c.toml");
    std::fs::write(
        &conf,
        format!("store = \"{}\"\nslots = 2\nprofile = \"{profile}\"\n[[token]]\nslot = 0\nserial = \"{SERIAL0}\"\n", dir.path().join("t").display()),
    )
    .unwrap();
    (dir, conf)
}

#[test]
fn lists_slots_and_vendor_mechanisms() {
    for (profile, raw, sm3) in [
        ("sansec", "0x80008104", "0x80009001"),
        ("tass", "0x80008000", "0x80000005"),
    ] {
        let (_d, conf) = store(profile);
        let (ok, out) = tool(&conf, &["-L"]);
        assert!(ok, "{out}");
        assert!(out.contains("uninitialized"), "{out}");
        assert!(run_cli(
            &conf,
            &["init-token", "--slot", "0", "--label", "tool"],
            &format!("{SO_PIN}\n{USER_PIN}\n")
        )
        .status
        .success());
        let (ok, out) = tool(&conf, &["-L"]);
        assert!(
            ok && out.contains("tool") && out.contains(SERIAL0) && out.contains("PIN initialized"),
            "{out}"
        );
        assert!(out.contains("pin min/max        : 4/16"), "{out}");
        let (ok, out) = tool(&conf, &["-M", "--slot", "0"]);
        assert!(ok, "{out}");
        for code in ["0x80008001", raw, "0x80008100", sm3] {
            assert!(
                out.to_lowercase().contains(code),
                "{profile}: {code} missing in\n{out}"
            );
        }
    }
}

#[test]
fn signs_with_the_vendor_mechanism() {
    let (d, conf) = store("tass");
    assert!(run_cli(
        &conf,
        &["init-token", "--slot", "0", "--label", "tool"],
        &format!("{SO_PIN}\n{USER_PIN}\n")
    )
    .status
    .success());
    let out = run_cli(
        &conf,
        &["keygen", "--serial", SERIAL0, "--id", "0a", "--label", "k"],
        &format!("{USER_PIN}\n"),
    );
    let pt = hex::decode(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    let (msg, sig) = (d.path().join("m.bin"), d.path().join("s.bin"));
    std::fs::write(&msg, b"signed by pkcs11-tool").unwrap();
    let (ok, out) = tool(
        &conf,
        &[
            "--slot",
            "0",
            "--login",
            "--pin",
            USER_PIN,
            "--sign",
            "-m",
            "0x80008100",
            "--id",
            "0a",
            "-i",
            msg.to_str().unwrap(),
            "-o",
            sig.to_str().unwrap(),
        ],
    );
    assert!(ok, "{out}");
    assert!(!out.contains("ALWAYS_AUTHENTICATE"), "{out}");
    let rs = rs_of(&std::fs::read(&sig).unwrap());
    assert!(sm2_verify_msg(&pt, b"signed by pkcs11-tool", &rs));
    assert!(openssl_verify(d.path(), &pt, b"signed by pkcs11-tool", &rs));
}

#[test]
fn login_list_change_pin_and_init_pin() {
    let (_d, conf) = store("sansec");
    assert!(run_cli(
        &conf,
        &["init-token", "--slot", "0", "--label", "tool"],
        &format!("{SO_PIN}\n{USER_PIN}\n")
    )
    .status
    .success());
    assert!(run_cli(
        &conf,
        &["keygen", "--serial", SERIAL0, "--id", "0102", "--label", "seal-key"],
        &format!("{USER_PIN}\n")
    )
    .status
    .success());

    let (ok, out) = tool(&conf, &["--slot", "0", "--login", "--pin", USER_PIN, "-O"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("Private Key Object") && out.contains("seal-key") && out.contains("0102"),
        "{out}"
    );
    // Without login only the public key shows.
    let (ok, out) = tool(&conf, &["--slot", "0", "-O"]);
    assert!(
        ok && !out.contains("Private Key Object") && out.contains("Public Key Object"),
        "{out}"
    );

    let (ok, out) = tool(
        &conf,
        &[
            "--slot",
            "0",
            "--login",
            "--pin",
            USER_PIN,
            "--change-pin",
            "--new-pin",
            "new-pin-1",
        ],
    );
    assert!(ok, "{out}");
    let (ok, out) = tool(&conf, &["--slot", "0", "--login", "--pin", USER_PIN, "-O"]);
    assert!(
        !ok && out.contains("CKR_PIN_INCORRECT"),
        "old PIN still works: {out}"
    );
    let (ok, out) = tool(
        &conf,
        &["--slot", "0", "--login", "--pin", "new-pin-1", "-O"],
    );
    assert!(ok && out.contains("Private Key Object"), "{out}");

    let (ok, out) = tool(
        &conf,
        &[
            "--slot",
            "0",
            "--init-pin",
            "--login",
            "--login-type",
            "so",
            "--so-pin",
            SO_PIN,
            "--pin",
            "reset-pin",
        ],
    );
    assert!(ok, "{out}");
    let (ok, out) = tool(
        &conf,
        &["--slot", "0", "--login", "--pin", "reset-pin", "-O"],
    );
    assert!(ok && out.contains("Private Key Object"), "{out}");
    // A wrong SO PIN is counted.
    let (ok, _) = tool(
        &conf,
        &[
            "--slot",
            "0",
            "--init-pin",
            "--login",
            "--login-type",
            "so",
            "--so-pin",
            "wrong-so",
            "--pin",
            "x12345",
        ],
    );
    assert!(!ok);
    assert!(String::from_utf8_lossy(&run_cli(&conf, &["list"], "").stdout).contains("so_fails 1"));
}
