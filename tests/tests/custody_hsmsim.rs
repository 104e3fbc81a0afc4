//! Custodian commands of the real `sealctl` on hsm-sim (a Sansec-style SM2 UKey): PIN change on
//! a terminal, policy rejections, tries left, lockout and unblock, PIN age warnings, SM2 key
//! generation and a CSR OpenSSL verifies, a certificate for another key refused. No PIN ever
//! shows in the terminal, the process table or the store.

use seald::device::{DeviceModel, ProfileSetting};
use seald_tests::bins::hsm_sim_module;
use seald_tests::hsmsim::{HsmSim, SO_PIN, USER_PIN};
use seald_tests::sealctl::{assert_no_pin, openssl, process_table, Setup};

const MAX_TRIES: usize = 3;

fn sim() -> &'static HsmSim {
    HsmSim::shared(
        &format!(
            "profile = \"sansec\"\nsignature_encoding = \"raw\"\nmodel = \"ukey\"\nsign_latency_ms = 0\nuser_pin_max_tries = {MAX_TRIES}"
        ),
        ProfileSetting::Named("sansec".into()),
        DeviceModel::Ukey,
    )
}

fn setup(sim: &HsmSim) -> Setup {
    Setup::new(
        &format!(
            "[[module]]\nname = \"hsm-sim\"\npath = \"{}\"\nprofile = \"sansec\"\nmodel = \"ukey\"\n",
            hsm_sim_module().display()
        ),
        &[("HSM_SIM_CONF", &sim.conf_path())],
    )
}

const NEW_1: &str = "Lantern-Ridge-5831";
const NEW_2: &str = "Harbour-Quill-9064";
const NEW_3: &str = "Meadow-Copper-2719";
const WRONG: &str = "Wrong-Guess-0000";

#[test]
fn pin_lifecycle_on_a_terminal_with_lockout_unblock_and_age_warnings() {
    let sim = sim();
    let token = sim.new_token("custody-pin");
    let s = setup(sim);
    let store = s.store.to_str().unwrap();
    let pin = |args: &[&str]| {
        let mut all = vec!["pin", "--token", &token.serial, "--store", store];
        all.extend_from_slice(args);
        all.iter().map(|a| a.to_string()).collect::<Vec<_>>()
    };
    let refs = |v: &[String]| {
        v.iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\u{0}")
    };
    let run_ok = |args: &[&str], stdin: &str| {
        let joined = refs(&pin(args));
        s.ok(&joined.split('\u{0}').collect::<Vec<_>>(), stdin)
    };
    let run_fail = |args: &[&str], stdin: &str| {
        let joined = refs(&pin(args));
        s.fails(&joined.split('\u{0}').collect::<Vec<_>>(), stdin)
    };
    let mut transcripts = String::new();
    let mut ps_during_prompts = String::new();

    // 1. A change on a terminal: prompts, no echo, the process table clean while it waits.
    let args = pin(&["change"]);
    let mut tty = s.pty(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let at = tty.expect(0, &format!("current PIN of token {}: ", token.serial));
    ps_during_prompts.push_str(&process_table());
    tty.type_line(USER_PIN);
    let at = tty.expect(at, "new PIN: ");
    tty.type_line(NEW_1);
    let at = tty.expect(at, "new PIN again: ");
    ps_during_prompts.push_str(&process_table());
    tty.type_line(NEW_1);
    tty.expect(at, "was changed");
    let (status, transcript) = tty.finish();
    assert!(status.success(), "{transcript}");
    transcripts.push_str(&transcript);

    // 2. Policy rejections: nothing reaches the device.
    let out = run_fail(&["--pin-stdin", "change"], &format!("{NEW_1}\nabc\nabc\n"));
    assert!(
        out.contains("at least 8 characters") && out.contains("a digit"),
        "{out}"
    );
    let out = run_fail(
        &["--pin-stdin", "change"],
        &format!("{NEW_1}\n12345678\n12345678\n"),
    );
    assert!(out.contains("simple run"), "{out}");
    let out = run_fail(
        &["--pin-stdin", "change"],
        &format!("{NEW_1}\n{NEW_1}\n{NEW_1}\n"),
    );
    assert!(out.contains("differ from the current PIN"), "{out}");
    let out = run_fail(
        &["--pin-stdin", "change"],
        &format!("{NEW_1}\n{NEW_2}\n{NEW_3}\n"),
    );
    assert!(out.contains("two entries of the new PIN differ"), "{out}");
    transcripts.push_str(&out);

    // 3. A wrong current PIN reports what the device says about tries left; then it locks.
    let wrong = format!("{WRONG}\n{NEW_2}\n{NEW_2}\n");
    let first = run_fail(&["--pin-stdin", "change"], &wrong);
    assert!(first.contains("the PIN is incorrect"), "{first}");
    let second = run_fail(&["--pin-stdin", "change"], &wrong);
    assert!(
        second.contains("one try left before the token locks"),
        "{second}"
    );
    let status = run_ok(&["status"], "");
    assert!(
        status.contains("final try") && status.contains("one (the next wrong PIN locks"),
        "{status}"
    );
    // The last try is not spent without --final-try.
    let unconfirmed = run_fail(&["--pin-stdin", "change"], &wrong);
    assert!(
        unconfirmed.contains("one PIN try left") && unconfirmed.contains("--final-try"),
        "{unconfirmed}"
    );
    let status = run_ok(&["status"], "");
    assert!(status.contains("final try"), "{status}");
    let third = run_fail(&["--pin-stdin", "change", "--final-try"], &wrong);
    assert!(third.contains("locked"), "{third}");
    let locked = run_fail(
        &["--pin-stdin", "change"],
        &format!("{NEW_1}\n{NEW_2}\n{NEW_2}\n"),
    );
    assert!(locked.contains("sealctl pin unblock"), "{locked}");
    transcripts.push_str(&(first + &second + &unconfirmed + &third + &locked));

    // 4. Unblock with the SO PIN on a terminal, then the custodian changes it.
    let args = pin(&["unblock"]);
    let mut tty = s.pty(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let at = tty.expect(0, &format!("SO PIN of token {}: ", token.serial));
    ps_during_prompts.push_str(&process_table());
    tty.type_line(SO_PIN);
    let at = tty.expect(at, "new user PIN: ");
    tty.type_line(NEW_2);
    let at = tty.expect(at, "new user PIN again: ");
    tty.type_line(NEW_2);
    tty.expect(at, "re-set by the security officer");
    let (status, transcript) = tty.finish();
    assert!(status.success(), "{transcript}");
    transcripts.push_str(&transcript);
    transcripts.push_str(&run_ok(
        &["--pin-stdin", "change"],
        &format!("{NEW_2}\n{NEW_3}\n{NEW_3}\n"),
    ));

    // 5. Age against the policy (90 days, warnings from 14 days before), at injected times.
    let now = time::OffsetDateTime::now_utc();
    let at = |days: i64| {
        (now + time::Duration::days(days))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let fresh = run_ok(&["status"], "");
    assert!(
        fresh.contains("status:      ok") && fresh.contains("0 days ago"),
        "{fresh}"
    );
    let soon = run_ok(&["status", "--at", &at(80)], "");
    assert!(
        soon.contains("change soon") && soon.contains("within 10 days"),
        "{soon}"
    );
    let overdue = run_ok(&["status", "--at", &at(100)], "");
    assert!(
        overdue.contains("overdue") && overdue.contains("warning: the PIN is 100 days old"),
        "{overdue}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&run_ok(&["status", "--json", "--at", &at(100)], "")).unwrap();
    assert_eq!(json["age"]["status"], "overdue");
    transcripts.push_str(&(fresh + &soon + &overdue));

    // 6. The usage log holds the changes and failures, and verifies.
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
    assert!(
        log.contains("pin-change") && log.contains("pin-failure"),
        "{log}"
    );
    let verify = s.ok(&["audit", "--store", store, "verify"], "");
    transcripts.push_str(&(log + &verify));

    // No PIN anywhere: terminal transcripts and messages, the process table, the store files.
    let pins = [USER_PIN, SO_PIN, NEW_1, NEW_2, NEW_3, WRONG];
    assert_no_pin("sealctl's output", transcripts.as_bytes(), &pins);
    assert_no_pin("the process table", ps_during_prompts.as_bytes(), &pins);
    assert_no_pin("the store", &s.store_bytes(), &pins);
}

#[test]
fn sm2_key_and_csr_verify_with_openssl_and_a_certificate_for_another_key_is_refused() {
    let sim = sim();
    let token = sim.new_token("custody-key");
    let s = setup(sim);
    let key = |args: &[&str]| {
        let mut all = vec![
            "key",
            "--token",
            token.serial.as_str(),
            "--pin-stdin",
            "--id",
            "0a",
        ];
        all.extend_from_slice(args);
        s.ok(&all, &format!("{USER_PIN}\n"))
    };
    let out = key(&["generate", "--algorithm", "sm2", "--label", "legal seal"]);
    assert!(out.lines().next().unwrap().starts_with("04"), "{out}");
    // The same id twice is refused.
    let again = s.fails(
        &[
            "key",
            "--token",
            &token.serial,
            "--pin-stdin",
            "--id",
            "0a",
            "generate",
        ],
        &format!("{USER_PIN}\n"),
    );
    assert!(again.contains("already used"), "{again}");

    let csr = s.dir.path().join("sm2.csr.pem");
    key(&[
        "csr",
        "--org",
        "某某市人民政府",
        "--cn",
        "某某市人民政府公章",
        "--ou",
        "办公室",
        "--country",
        "CN",
        "--out",
        csr.to_str().unwrap(),
    ]);
    let (ok, text) = openssl(&[
        "req",
        "-verify",
        "-noout",
        "-in",
        csr.to_str().unwrap(),
        "-vfyopt",
        "distid:1234567812345678",
    ]);
    assert!(ok, "openssl refused the SM2 CSR: {text}");
    assert!(
        text.contains("verify OK") || text.contains("Certificate request self-signature verify OK"),
        "{text}"
    );
    let (_, dump) = openssl(&["req", "-noout", "-text", "-in", csr.to_str().unwrap()]);
    assert!(
        dump.contains("SM2-with-SM3") || dump.contains("sm2sign-with-sm3"),
        "{dump}"
    );

    // A certificate the CA issued for a different key on the same token is refused.
    sim.keygen(&token, &[0x0b]);
    let ca = s.dir.path().join("ca");
    sim.cli(
        &[
            "ca",
            "init",
            "--dir",
            ca.to_str().unwrap(),
            "--org",
            "Test CA",
        ],
        "",
    );
    sim.cli(
        &[
            "ca",
            "issue",
            "--dir",
            ca.to_str().unwrap(),
            "--serial",
            &token.serial,
            "--id",
            "0b",
            "--org",
            "某某市人民政府",
            "--cn",
            "other key",
        ],
        "",
    );
    let other = std::fs::read_dir(ca.join("issued"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "pem"))
        .expect("an issued certificate");
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
            other.to_str().unwrap(),
        ],
        &format!("{USER_PIN}\n"),
    );
    assert!(
        refused.contains("this certificate is for another key"),
        "{refused}"
    );

    // An SM2 CA (OpenSSL) certifies the request; that certificate is accepted and stored.
    let path = |name: &str| s.dir.path().join(name).to_str().unwrap().to_owned();
    let distid = "distid:1234567812345678";
    for args in [
        vec!["genpkey", "-algorithm", "SM2", "-out", &path("ca.key")],
        vec![
            "req",
            "-x509",
            "-new",
            "-key",
            &path("ca.key"),
            "-sm3",
            "-sigopt",
            distid,
            "-subj",
            "/CN=SM2 Test CA",
            "-days",
            "30",
            "-out",
            &path("ca.pem"),
        ],
        vec![
            "x509",
            "-req",
            "-in",
            csr.to_str().unwrap(),
            "-CA",
            &path("ca.pem"),
            "-CAkey",
            &path("ca.key"),
            "-sm3",
            "-sigopt",
            distid,
            "-vfyopt",
            distid,
            "-CAcreateserial",
            "-days",
            "30",
            "-out",
            &path("0a.pem"),
        ],
    ] {
        let (ok, text) = openssl(&args);
        assert!(ok, "openssl {args:?}: {text}");
    }
    let imported = s.ok(
        &[
            "key",
            "--token",
            &token.serial,
            "--pin-stdin",
            "--id",
            "0a",
            "import-cert",
            "--cert",
            &path("0a.pem"),
        ],
        &format!("{USER_PIN}\n"),
    );
    assert!(
        imported.contains("imported the certificate of"),
        "{imported}"
    );
    let owner = sim.devices.token(&token.serial).unwrap();
    let stored =
        seald::device::certificate_der(&owner, &seald::device::KeySelector::Id(vec![0x0a]))
            .unwrap();
    let cert = seald::cert::Certificate::from_der(&stored).unwrap();
    assert_eq!(
        cert.facts().subject_cn.as_deref(),
        Some("某某市人民政府公章")
    );
    assert_no_pin(
        "sealctl's output",
        (refused + &imported).as_bytes(),
        &[USER_PIN],
    );
}

#[test]
fn library_login_and_pin_change_are_recorded_without_the_pin() {
    use std::sync::Arc;

    use seald::clock::SystemClock;
    use seald::custody::{Custodians, CustodyError, PinPolicy, PinRecord};
    use seald::device::{DeviceError, FinalTry, Pin};

    let sim = sim();
    let token = sim.new_token("custody-lib");
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(seald::store::Store::open(dir.path().join("seald.db")).unwrap());
    let custodians = Custodians::new(store.clone(), Arc::new(SystemClock));
    let owner = sim.devices.token(&token.serial).unwrap();
    let err = custodians
        .login(&owner, "wang", &Pin::new(WRONG), FinalTry::Refuse)
        .unwrap_err();
    assert!(
        matches!(err, CustodyError::Device(DeviceError::PinIncorrect { .. })),
        "{err}"
    );
    custodians
        .login(&owner, "wang", &Pin::new(USER_PIN), FinalTry::Refuse)
        .unwrap();
    owner.logout().unwrap();
    let policy = PinPolicy::default();
    let weak = custodians
        .change_pin(
            &owner,
            "wang",
            &Pin::new(USER_PIN),
            &Pin::new("short"),
            &policy,
            FinalTry::Refuse,
        )
        .unwrap_err();
    assert!(matches!(weak, CustodyError::Policy(_)), "{weak}");
    let record = custodians
        .change_pin(
            &owner,
            "wang",
            &Pin::new(USER_PIN),
            &Pin::new(NEW_1),
            &policy,
            FinalTry::Refuse,
        )
        .unwrap();
    assert_eq!(record, PinRecord::Written);
    let status = custodians.pin_status(&owner, &policy).unwrap();
    assert_eq!(status.age.age_days, Some(0));
    let kinds: Vec<String> = store
        .read(|tx| tx.audit_rows(0, 100))
        .unwrap()
        .into_iter()
        .map(|r| r.kind)
        .collect();
    assert_eq!(kinds, ["pin-failure", "pin-login", "pin-change"]);
    store.close();
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap().flatten() {
        bytes.extend(std::fs::read(entry.path()).unwrap_or_default());
    }
    assert_no_pin("the store", &bytes, &[USER_PIN, NEW_1, WRONG, "short"]);
}

#[test]
fn a_pin_change_the_store_refuses_to_record_is_still_reported_as_made() {
    use std::sync::Arc;

    use seald::clock::SystemClock;
    use seald::custody::{Custodians, PinPolicy, PinRecord};
    use seald::device::{FinalTry, Pin};

    let sim = sim();
    let token = sim.new_token("custody-unrecorded");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seald.db");
    let store = Arc::new(seald::store::Store::open(&path).unwrap());
    let custodians = Custodians::new(store.clone(), Arc::new(SystemClock));
    let owner = sim.devices.token(&token.serial).unwrap();
    // The store refuses every usage-log write from now on (a full disk, say).
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER refuse_all BEFORE INSERT ON audit_log \
             BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
        )
        .unwrap();
    let record = custodians
        .change_pin(
            &owner,
            "wang",
            &Pin::new(USER_PIN),
            &Pin::new(NEW_1),
            &PinPolicy::default(),
            FinalTry::Refuse,
        )
        .expect("the device changed the PIN: not an error");
    assert!(matches!(record, PinRecord::NotWritten { .. }), "{record:?}");
    let warning = record.warning().unwrap();
    assert!(
        warning.contains("WAS changed on the device") && warning.contains("disk full"),
        "{warning}"
    );
    assert_no_pin("the warning", warning.as_bytes(), &[USER_PIN, NEW_1]);
    // It really was changed: the new PIN logs in.
    owner.login(&Pin::new(NEW_1), FinalTry::Refuse).unwrap();
    owner.logout().unwrap();
}

/// PIN operations on one token are serialised: with two tries left, many threads trying wrong
/// PINs at once (logins and changes, none confirming a final try) spend one try between them;
/// the others find the final try and are refused, so the token never locks.
#[test]
fn concurrent_wrong_pins_at_count_low_never_lock() {
    use std::sync::Barrier;

    use seald::device::{DeviceError, FinalTry, Pin};

    let sim = sim();
    let token = sim.new_token("custody-race");
    let owner = sim.devices.token(&token.serial).unwrap();
    // MAX_TRIES is 3: one wrong PIN leaves two.
    let err = owner.login(&Pin::new(WRONG), FinalTry::Refuse).unwrap_err();
    assert!(matches!(err, DeviceError::PinIncorrect { .. }), "{err}");
    let info = owner.info().unwrap();
    assert!(info.pin.count_low && !info.pin.final_try, "{:?}", info.pin);
    const THREADS: usize = 16;
    let barrier = Barrier::new(THREADS);
    let results: Vec<Result<(), DeviceError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|i| {
                let (owner, barrier) = (&owner, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    if i % 2 == 0 {
                        owner.login(&Pin::new(WRONG), FinalTry::Refuse)
                    } else {
                        owner.change_pin_guarded(
                            &Pin::new(WRONG),
                            &Pin::new(NEW_1),
                            FinalTry::Refuse,
                        )
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let spent = results
        .iter()
        .filter(|r| matches!(r, Err(DeviceError::PinIncorrect { .. })))
        .count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(DeviceError::FinalTryNotConfirmed)))
        .count();
    assert_eq!((spent, refused), (1, THREADS - 1), "{results:?}");
    let info = owner.info().unwrap();
    assert!(!info.pin.locked && info.pin.final_try, "{:?}", info.pin);
    owner
        .login(&Pin::new(USER_PIN), FinalTry::Confirmed)
        .unwrap();
    owner.logout().unwrap();
}
