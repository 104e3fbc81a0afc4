//! Custody transfer and its PIN-change flag; PIN records and age; backup and restore.

use std::os::unix::fs::PermissionsExt;

use time::Duration;

use super::backup::{self, BackupError};
use super::*;
use crate::identity::{Caller, Identities, TokenKey};
use crate::seal::tests::{enrol_legal, fixture};

fn custodians(f: &crate::seal::tests::Fixture) -> Custodians {
    Custodians::new(f.store.clone(), f.clock.clone())
}

fn add_user(f: &crate::seal::tests::Fixture, name: &str, roles: &[Role]) {
    let key = TokenKey::load_or_create(&crate::identity::key_path_for(
        &f.dir.path().join("seald.db"),
    ))
    .unwrap();
    Identities::new(f.store.clone(), f.clock.clone(), Arc::new(key))
        .add(&Caller::Local("root".into()), name, roles)
        .unwrap();
}

#[test]
fn a_transfer_requires_a_pin_change_before_the_first_stamp() {
    let f = fixture();
    let seal = enrol_legal(&f, "ES-1");
    add_user(&f, "wang", &[Role::Custodian]);
    add_user(&f, "li", &[Role::Approver]);
    let c = custodians(&f);
    assert!(!c.pin_change_required(seal.id).unwrap());
    let err = c.transfer("root", seal.id, "li").unwrap_err();
    assert!(err.to_string().contains("custodian role"), "{err}");
    assert!(matches!(
        c.transfer("root", 99, "wang"),
        Err(CustodyError::UnknownSeal(99))
    ));
    let custody = c.transfer("root", seal.id, "wang").unwrap();
    assert_eq!(custody.custodian, "wang");
    assert!(c.pin_change_required(seal.id).unwrap());
    assert!(matches!(
        c.transfer("root", seal.id, "wang"),
        Err(CustodyError::SameCustodian { .. })
    ));
    // An unblock does not clear it (the SO knows that PIN); the custodian's own change does.
    c.record_pin_change("wang", &seal.device_serial, "unblock")
        .unwrap();
    assert!(c.pin_change_required(seal.id).unwrap());
    c.record_pin_change("wang", "another-device", "change")
        .unwrap();
    assert!(c.pin_change_required(seal.id).unwrap());
    c.record_pin_change("wang", &seal.device_serial, "change")
        .unwrap();
    assert!(!c.pin_change_required(seal.id).unwrap());
    let log = crate::audit::AuditLog::new(f.store.clone(), f.clock.clone());
    assert!(log.verify().unwrap().broken.is_none());
}

#[test]
fn only_the_current_custodian_lifts_the_flag_after_a_transfer() {
    let f = fixture();
    let seal = enrol_legal(&f, "ES-1");
    add_user(&f, "wang", &[Role::Custodian]);
    add_user(&f, "zhao", &[Role::Custodian]);
    let c = custodians(&f);
    let serial = seal.device_serial.clone();
    // Before any custody record the token is open to every custodian.
    c.may_act_on_token("zhao", &serial).unwrap();
    c.may_act_on_seal("zhao", seal.id).unwrap();
    c.transfer("root", seal.id, "wang").unwrap();
    c.record_pin_change("wang", &serial, "change").unwrap();
    assert!(!c.pin_change_required(seal.id).unwrap());
    c.transfer("root", seal.id, "zhao").unwrap();
    // wang still knows the PIN, but a change by wang does not lift zhao's flag.
    c.record_pin_change("wang", &serial, "change").unwrap();
    assert!(c.pin_change_required(seal.id).unwrap());
    let err = c.may_act_on_token("wang", &serial).unwrap_err();
    assert!(matches!(err, CustodyError::NotYourToken { .. }), "{err}");
    assert!(err.to_string().contains("holds no seal"), "{err}");
    let err = c.may_act_on_seal("wang", seal.id).unwrap_err();
    assert!(matches!(err, CustodyError::NotYourSeal { .. }), "{err}");
    c.may_act_on_token("zhao", &serial).unwrap();
    c.may_act_on_seal("zhao", seal.id).unwrap();
    // After an unblock, neither does wang's change lift the device's marker.
    c.record_pin_change("zhao", &serial, "change").unwrap();
    c.record_pin_change("so", &serial, "unblock").unwrap();
    c.record_pin_change("wang", &serial, "change").unwrap();
    assert!(c.pin_change_required(seal.id).unwrap());
    c.record_pin_change("zhao", &serial, "change").unwrap();
    assert!(!c.pin_change_required(seal.id).unwrap());
    let err = c.may_act_on_seal("wang", seal.id).unwrap_err();
    assert!(
        err.to_string()
            .contains("`wang` is not the custodian of seal"),
        "{err}"
    );
    let zhao = c.may_act_on_token("li", &serial).unwrap_err().to_string();
    assert!(zhao.contains("holds no seal"), "{zhao}");
}

#[test]
fn pin_age_comes_from_the_change_records() {
    let f = fixture();
    let c = custodians(&f);
    let policy = PinPolicy::default();
    assert_eq!(c.last_pin_change("T1").unwrap(), None);
    c.record_pin_change("wang", "T1", "change").unwrap();
    let changed = c.last_pin_change("T1").unwrap().unwrap();
    assert_eq!(c.last_pin_change("T2").unwrap(), None);
    f.clock.advance(Duration::days(80));
    let age = PinAge::judge(Some(changed), &policy, f.clock.now());
    assert_eq!(age.status, AgeStatus::Warn);
    f.clock.advance(Duration::days(11));
    let age = PinAge::judge(c.last_pin_change("T1").unwrap(), &policy, f.clock.now());
    assert_eq!(age.status, AgeStatus::Overdue);
    assert_eq!(age.age_days, Some(91));
    // The newest change of that token counts, whatever other tokens did since.
    c.record_pin_change("wang", "T1", "change").unwrap();
    let newer = c.last_pin_change("T1").unwrap().unwrap();
    f.clock.advance(Duration::days(1));
    c.record_pin_change("wang", "T2", "unblock").unwrap();
    assert_eq!(c.last_pin_change("T1").unwrap(), Some(newer));
    assert!(newer > changed);
    assert!(c.last_pin_change("T2").unwrap().unwrap() > newer);
}

#[test]
fn backup_round_trip_and_tamper_refusal() {
    let f = fixture();
    let seal = enrol_legal(&f, "ES-1");
    add_user(&f, "wang", &[Role::Custodian]);
    let c = custodians(&f);
    c.transfer("root", seal.id, "wang").unwrap();
    let store_path = f.dir.path().join("seald.db");
    let key_before = std::fs::read(crate::identity::key_path_for(&store_path)).unwrap();

    // While the store is open (as in a running seald).
    let file = f.dir.path().join("backup.sqlite");
    let report = backup::create(&store_path, &file).unwrap();
    assert!(report.token_key);
    assert!(report.log.broken.is_none());
    assert!(report.log.records >= 2);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(matches!(
        backup::create(&store_path, &file),
        Err(BackupError::Exists(_))
    ));

    // Refused while the store is open.
    let err = backup::restore(&file, &store_path, false).unwrap_err();
    assert!(matches!(err, BackupError::InUse(_)), "{err}");

    // More happens after the backup; then the store is closed and the backup restored.
    c.record_pin_change("wang", &seal.device_serial, "change")
        .unwrap();
    let head_after = crate::audit::AuditLog::new(f.store.clone(), f.clock.clone())
        .verify()
        .unwrap()
        .records;
    assert_eq!(head_after, report.log.records + 1);
    let head_after_seq = crate::audit::AuditLog::new(f.store.clone(), f.clock.clone())
        .verify()
        .unwrap()
        .last_seq
        .unwrap();
    drop(c);
    f.store.close();
    let crate::seal::tests::Fixture {
        dir,
        store,
        clock,
        registry,
        pki,
    } = f;
    drop((store, registry, pki));
    // The backup lacks the store's newest record: refused unless forced.
    let err = backup::restore(&file, &store_path, false).unwrap_err();
    assert!(matches!(err, BackupError::GoesBackwards(_)), "{err}");
    assert!(err.to_string().contains("--force"), "{err}");
    let restored = backup::restore(&file, &store_path, true).unwrap();
    assert!(restored.forced);
    assert!(restored.previous.is_some());
    assert!(restored.token_key);
    assert_eq!(
        std::fs::read(crate::identity::key_path_for(&store_path)).unwrap(),
        key_before
    );
    let store = Arc::new(Store::open(&store_path).unwrap());
    let log = crate::audit::AuditLog::new(store.clone(), clock.clone());
    let verified = log.verify().unwrap();
    assert!(verified.broken.is_none());
    // The backup's records, and the forced restore's own record naming the head it replaced.
    assert_eq!(verified.records, report.log.records + 1);
    let last = store
        .read(|tx| tx.audit_row(verified.last_seq.unwrap()))
        .unwrap()
        .unwrap();
    assert_eq!(last.kind, "restore");
    assert!(
        last.detail
            .contains(&format!("\"replaced_head_seq\":{}", head_after_seq)),
        "{}",
        last.detail
    );
    let c = Custodians::new(store.clone(), clock);
    assert!(
        c.pin_change_required(seal.id).unwrap(),
        "state as at the backup"
    );

    // A tampered backup is refused.
    let tampered = dir.path().join("tampered.sqlite");
    std::fs::copy(&file, &tampered).unwrap();
    let conn = rusqlite::Connection::open(&tampered).unwrap();
    conn.execute_batch(
        "DROP TRIGGER audit_log_no_update; UPDATE audit_log SET actor = 'mallory' WHERE seq = 1;",
    )
    .unwrap();
    drop(conn);
    drop(c);
    drop(log);
    store.close();
    drop(store);
    let err = backup::restore(&tampered, &store_path, true).unwrap_err();
    assert!(matches!(err, BackupError::BrokenChain(_)), "{err}");
    assert!(err.to_string().contains("record 1"), "{err}");
    // A file that is not a backup is refused too.
    let err = backup::restore(&store_path, &dir.path().join("other.db"), false).unwrap_err();
    assert!(matches!(err, BackupError::NotABackup(_)), "{err}");
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not a database at all").unwrap();
    let err = backup::restore(&text, &store_path, false).unwrap_err();
    assert!(matches!(err, BackupError::NotABackup(_)), "{err}");
    // A backup that holds the store's head restores without --force.
    let current = dir.path().join("current.sqlite");
    backup::create(&store_path, &current).unwrap();
    let restored = backup::restore(&current, &store_path, false).unwrap();
    assert!(!restored.forced);
}

#[test]
fn a_backup_taken_during_writes_is_consistent() {
    let f = fixture();
    let log = crate::audit::AuditLog::new(f.store.clone(), f.clock.clone());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (log, stop) = (log.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 5000 {
                log.append(NewRecord::new(
                    AuditKind::Note,
                    "load",
                    None,
                    serde_json::json!({ "n": n }),
                ))
                .unwrap();
                n += 1;
            }
            n
        })
    };
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while log.verify().unwrap().records < 20 {
        assert!(
            std::time::Instant::now() < until,
            "the writer made no progress"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let store_path = f.dir.path().join("seald.db");
    let mut reports = Vec::new();
    for i in 0..3 {
        let file = f.dir.path().join(format!("during-{i}.sqlite"));
        reports.push(backup::create(&store_path, &file).unwrap());
        backup::check(&file).unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let written = writer.join().unwrap();
    for r in &reports {
        assert!(r.log.broken.is_none());
        assert!(r.log.records >= 20 && r.log.records <= written);
    }
}

#[test]
fn an_unblock_holds_every_seal_on_the_token_until_the_custodian_changes_the_pin() {
    let f = fixture();
    let seal = enrol_legal(&f, "ES-1");
    let c = custodians(&f);
    // No custody record: the marker is the token's, not the seal's.
    assert!(c.custody(seal.id).unwrap().is_none());
    assert!(!c.pin_change_required(seal.id).unwrap());
    c.record_pin_change("so", &seal.device_serial, "unblock")
        .unwrap();
    let status = c.status(seal.id).unwrap();
    assert!(status.pin_change_required, "{status:?}");
    assert_eq!(status.pin_reset_at, Some(f.clock.timestamp()));
    assert!(status.custody.is_none());
    c.record_pin_change("wang", "another-device", "change")
        .unwrap();
    assert!(c.pin_change_required(seal.id).unwrap());
    c.record_pin_change("wang", &seal.device_serial, "change")
        .unwrap();
    let status = c.status(seal.id).unwrap();
    assert!(!status.pin_change_required, "{status:?}");
    assert_eq!(status.pin_reset_at, None);
    assert!(matches!(c.status(99), Err(CustodyError::UnknownSeal(99))));
}

#[test]
fn a_pin_change_the_store_cannot_record_is_reported_as_made_on_the_device() {
    let f = fixture();
    let seal = enrol_legal(&f, "ES-1");
    let c = custodians(&f);
    let refuse = rusqlite::Connection::open(f.dir.path().join("seald.db")).unwrap();
    refuse
        .execute_batch(
            "CREATE TRIGGER refuse_all BEFORE INSERT ON audit_log \
             BEGIN SELECT RAISE(ABORT, 'the disk is full'); END;",
        )
        .unwrap();
    let record = c.record_device_change("wang", &seal.device_serial, "change");
    assert!(
        matches!(&record, PinRecord::NotWritten { what: "change", .. }),
        "{record:?}"
    );
    let warning = record.warning().unwrap();
    assert!(
        warning.contains("WAS changed on the device")
            && warning.contains("use the new PIN")
            && warning.contains("the disk is full")
            && warning.contains("change the PIN once more"),
        "{warning}"
    );
    let record = c.record_device_change("so", &seal.device_serial, "unblock");
    let warning = record.warning().unwrap();
    assert!(
        warning.contains("WAS re-set on the device") && warning.contains("change it at once"),
        "{warning}"
    );
    // Nothing was half-written: the unblock's marker went with its record.
    assert!(!c.pin_change_required(seal.id).unwrap());
    refuse.execute_batch("DROP TRIGGER refuse_all;").unwrap();
    let record = c.record_device_change("so", &seal.device_serial, "unblock");
    assert_eq!(record, PinRecord::Written);
    assert_eq!(record.warning(), None);
    assert!(c.pin_change_required(seal.id).unwrap());
}
