//! Custodian commands of the real `sealctl` on SoftHSM: PIN change on a terminal, a wrong PIN
//! reporting tries, a P-256 key with a CSR OpenSSL verifies and a certificate OpenSSL issued
//! for it imported (one for another key refused); backup and restore of the store with the
//! chain checked, refused while another process holds the store or when tampered.

use seald_tests::sealctl::{assert_no_pin, openssl, process_table, Setup};
use seald_tests::softhsm::{SoftHsm, LIBRARY, USER_PIN};

fn setup(hsm: &SoftHsm) -> Setup {
    Setup::new(
        &format!(
            "[[module]]\nname = \"softhsm\"\npath = \"{LIBRARY}\"\nmodel = \"cipher-machine\"\n"
        ),
        &[("SOFTHSM2_CONF", &hsm.conf_path())],
    )
}

const NEW_1: &str = "Granite-Orchid-4417";
const WRONG: &str = "Wrong-Guess-1111";

#[test]
fn pin_change_on_a_terminal_and_a_wrong_pin() {
    let hsm = SoftHsm::shared();
    let token = hsm.new_token("custody-pin-soft");
    let s = setup(hsm);
    let store = s.store.to_str().unwrap();
    let args = ["pin", "--token", &token.serial, "--store", store, "change"];
    let mut tty = s.pty(&args);
    let at = tty.expect(0, &format!("current PIN of token {}: ", token.serial));
    let ps = process_table();
    tty.type_line(USER_PIN);
    let at = tty.expect(at, "new PIN: ");
    tty.type_line(NEW_1);
    let at = tty.expect(at, "new PIN again: ");
    tty.type_line(NEW_1);
    tty.expect(at, "was changed");
    let (status, transcript) = tty.finish();
    assert!(status.success(), "{transcript}");

    // The old PIN no longer works; SoftHSM reports the count is low (it never locks).
    let pin_args = [
        "pin",
        "--token",
        &token.serial,
        "--store",
        store,
        "--pin-stdin",
        "change",
    ];
    let wrong = s.fails(&pin_args, &format!("{WRONG}\n{USER_PIN}x\n{USER_PIN}x\n"));
    assert!(wrong.contains("the PIN is incorrect"), "{wrong}");
    assert!(wrong.contains("few tries left"), "{wrong}");
    let status = s.ok(
        &["pin", "--token", &token.serial, "--store", store, "status"],
        "",
    );
    assert!(
        status.contains("count low") && status.contains("status:      ok"),
        "{status}"
    );

    let pins = [USER_PIN, NEW_1, WRONG];
    assert_no_pin(
        "sealctl's output",
        (transcript + &wrong + &status).as_bytes(),
        &pins,
    );
    assert_no_pin("the process table", ps.as_bytes(), &pins);
    assert_no_pin("the store", &s.store_bytes(), &pins);
}

#[test]
fn p256_key_csr_and_certificate_import() {
    let hsm = SoftHsm::shared();
    let token = hsm.new_token("custody-key-soft");
    let s = setup(hsm);
    let dir = s.dir.path();
    let path = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    let store = s.store.to_str().unwrap();
    let key = |id: &str, args: &[&str]| {
        let mut all = vec![
            "key",
            "--token",
            token.serial.as_str(),
            "--pin-stdin",
            "--store",
            store,
            "--id",
            id,
        ];
        all.extend_from_slice(args);
        s.ok(&all, &format!("{USER_PIN}\n"))
    };
    for id in ["0a", "0b"] {
        key(id, &["generate", "--algorithm", "p256"]);
        key(
            id,
            &[
                "csr",
                "--org",
                "Example Co",
                "--cn",
                &format!("seal {id}"),
                "--out",
                &path(&format!("{id}.csr")),
            ],
        );
        let (ok, text) = openssl(&[
            "req",
            "-verify",
            "-noout",
            "-in",
            &path(&format!("{id}.csr")),
        ]);
        assert!(
            ok && text.contains("verify OK"),
            "openssl refused the P-256 CSR: {text}"
        );
    }
    // A test CA issues certificates for both requests.
    let (ok, text) = openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        &path("ca.key"),
        "-out",
        &path("ca.pem"),
        "-subj",
        "/CN=Test CA",
        "-days",
        "30",
    ]);
    assert!(ok, "{text}");
    for id in ["0a", "0b"] {
        let (ok, text) = openssl(&[
            "x509",
            "-req",
            "-in",
            &path(&format!("{id}.csr")),
            "-CA",
            &path("ca.pem"),
            "-CAkey",
            &path("ca.key"),
            "-CAcreateserial",
            "-days",
            "30",
            "-out",
            &path(&format!("{id}.pem")),
        ]);
        assert!(ok, "{text}");
    }
    let refused = s.fails(
        &[
            "key",
            "--token",
            &token.serial,
            "--pin-stdin",
            "--id",
            "0a",
            "import-cert",
            "--cert",
            &path("0b.pem"),
        ],
        &format!("{USER_PIN}\n"),
    );
    assert!(
        refused.contains("this certificate is for another key"),
        "{refused}"
    );
    let imported = key("0a", &["import-cert", "--cert", &path("0a.pem")]);
    assert!(
        imported.contains("imported the certificate of"),
        "{imported}"
    );
    // The daemon's device layer now finds the certificate beside the key.
    let owner = hsm.devices.token(&token.serial).unwrap();
    let der = seald::device::certificate_der(&owner, &seald::device::KeySelector::Id(vec![0x0a]))
        .unwrap();
    let (_, pem) = openssl(&[
        "x509",
        "-in",
        &path("0a.pem"),
        "-outform",
        "DER",
        "-out",
        &path("0a.der"),
    ]);
    assert_eq!(der, std::fs::read(path("0a.der")).unwrap(), "{pem}");
    // Each step is in the usage log, which still verifies.
    let log = s.ok(
        &[
            "audit",
            "--store",
            store,
            "export",
            "--from",
            "2000-01-01",
            "--to",
            "2100-01-01",
        ],
        "",
    );
    for event in ["\"generated\"", "\"csr\"", "\"certificate-imported\""] {
        assert!(log.contains(event), "{event} missing from the log:\n{log}");
    }
    s.ok(&["audit", "--store", store, "verify"], "");
    assert_no_pin("the store", &s.store_bytes(), &[USER_PIN]);
    assert_no_pin(
        "sealctl's output",
        (refused + &imported + &log).as_bytes(),
        &[USER_PIN],
    );
}

#[test]
fn backup_and_restore_round_trip_refusals_included() {
    let hsm = SoftHsm::shared();
    let token = hsm.new_token("custody-backup");
    let s = setup(hsm);
    let store = s.store.to_str().unwrap();
    // Some history: an identity, a PIN change.
    s.ok(
        &[
            "user",
            "--store",
            store,
            "add",
            "wang",
            "--role",
            "custodian",
        ],
        "",
    );
    s.ok(
        &[
            "pin",
            "--token",
            &token.serial,
            "--store",
            store,
            "--pin-stdin",
            "change",
        ],
        &format!("{USER_PIN}\n{NEW_1}\n{NEW_1}\n"),
    );
    let backup = s.dir.path().join("backup.sqlite");
    let b = backup.to_str().unwrap();
    let out = s.ok(&["backup", "--store", store, b], "");
    assert!(
        out.contains("mode 0600") && out.contains("token key included"),
        "{out}"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let again = s.fails(&["backup", "--store", store, b], "");
    assert!(again.contains("already exists"), "{again}");

    // Later history, then a restore brings back the state of the backup.
    s.ok(
        &["user", "--store", store, "add", "li", "--role", "approver"],
        "",
    );
    // Refused while another process holds the store: a `pin change` waiting at its prompt.
    let mut tty = s.pty(&["pin", "--token", &token.serial, "--store", store, "change"]);
    tty.expect(0, "current PIN of token");
    let busy = s.fails(&["restore", "--store", store, b], "");
    assert!(
        busy.contains("is open in a running seald or another sealctl"),
        "{busy}"
    );
    drop(tty);
    // The pty child ends when its terminal goes away; wait (bounded) for the lock to be free.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let older = loop {
        let out = s.run(&["restore", "--store", store, b], "");
        let text = seald_tests::sealctl::text(&out);
        assert!(
            !out.status.success(),
            "an older backup was restored: {text}"
        );
        if !text.contains("is open in") {
            break text;
        }
        assert!(std::time::Instant::now() < until, "{text}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    // The backup lacks the record that added li: refused unless forced.
    assert!(
        older.contains("does not reach the current store's head") && older.contains("--force"),
        "{older}"
    );
    let restored = s.ok(&["restore", "--force", "--store", store, b], "");
    assert!(
        restored.contains("usage-log records verified") && restored.contains("forced"),
        "{restored}"
    );
    let users = s.ok(&["user", "--store", store, "list"], "");
    assert!(users.contains("wang") && !users.contains("li"), "{users}");
    let verify = s.ok(&["audit", "--store", store, "verify"], "");
    assert!(!verify.contains("broken"), "{verify}");

    // A tampered backup is refused and the store left as it was.
    let tampered = s.dir.path().join("tampered.sqlite");
    std::fs::copy(&backup, &tampered).unwrap();
    tamper(&tampered);
    let refused = s.fails(
        &["restore", "--store", store, tampered.to_str().unwrap()],
        "",
    );
    assert!(
        refused.contains("does not verify") && refused.contains("refusing"),
        "{refused}"
    );
    let users = s.ok(&["user", "--store", store, "list"], "");
    assert!(users.contains("wang"), "{users}");
}

/// Edits one usage-log record in a backup directly, as an attacker with the file would.
fn tamper(path: &std::path::Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "DROP TRIGGER audit_log_no_update; UPDATE audit_log SET actor = 'mallory' WHERE seq = 1;",
    )
    .unwrap();
}
