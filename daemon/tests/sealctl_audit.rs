//! `sealctl audit` and `sealctl user` as a custodian runs them.

use std::process::{Command, Output};
use std::sync::Arc;

use seald::audit::{AuditLog, NewRecord};
use seald::clock::SystemClock;
use seald::store::model::AuditKind;
use seald::store::Store;

fn sealctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sealctl"))
        .args(args)
        .output()
        .expect("run sealctl")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn flipped_byte_in_the_database_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seald.db");
    {
        let store = Arc::new(Store::open(&path).unwrap());
        let log = AuditLog::new(store, Arc::new(SystemClock));
        for i in 1..=30 {
            let marker = format!("marker-{i:04}-abcdefgh");
            log.append(NewRecord::new(
                AuditKind::Note,
                "tester",
                None,
                serde_json::json!({ "m": marker }),
            ))
            .unwrap();
        }
    } // last connection closed: SQLite checkpoints the WAL into the main file

    let p = path.to_str().unwrap();
    let ok = sealctl(&["audit", "--store", p, "verify"]);
    assert!(ok.status.success(), "{}", text(&ok.stdout));
    assert!(text(&ok.stdout).contains("30 records"));

    let mut bytes = std::fs::read(&path).unwrap();
    let needle = b"marker-0017-abcdefgh";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("record 17 is in the main database file");
    bytes[at + needle.len() - 1] ^= 0x01; // 'h' -> 'i'
    std::fs::write(&path, &bytes).unwrap();

    let out = sealctl(&["audit", "--store", p, "verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("CHAIN BROKEN at record 17"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn export_and_prune_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seald.db");
    let p = path.to_str().unwrap();
    let add = sealctl(&["user", "--store", p, "add", "app", "--role", "client"]);
    assert!(add.status.success(), "{}", text(&add.stderr));

    let out = sealctl(&[
        "audit",
        "--store",
        p,
        "export",
        "--from",
        "2000-01-01",
        "--to",
        "2100-01-01",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let line: serde_json::Value =
        serde_json::from_str(text(&out.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(line["kind"], "identity");
    assert_eq!(line["detail"]["name"], "app");

    let csv = sealctl(&[
        "audit",
        "--store",
        p,
        "export",
        "--from",
        "2000-01-01",
        "--to",
        "2100-01-01",
        "--format",
        "csv",
    ]);
    assert!(text(&csv.stdout).starts_with("seq,at,kind"));

    let missing = dir.path().join("nope.db");
    let out = sealctl(&["audit", "--store", missing.to_str().unwrap(), "verify"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no seald store"),
        "{}",
        text(&out.stderr)
    );
    assert!(!missing.exists(), "verify must not create a store");

    let prune = sealctl(&["audit", "--store", p, "prune", "--before", "2099-01-01"]);
    assert!(!prune.status.success());
    assert!(
        text(&prune.stderr).contains("must be kept"),
        "{}",
        text(&prune.stderr)
    );
}

#[test]
fn user_commands_issue_list_disable_and_rotate() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seald.db");
    let p = path.to_str().unwrap();
    let add = sealctl(&[
        "user",
        "--store",
        p,
        "add",
        "alice",
        "--role",
        "approver",
        "--role",
        "custodian",
    ]);
    assert!(add.status.success(), "{}", text(&add.stderr));
    let token = text(&add.stdout).trim().to_owned();
    assert!(token.starts_with("sld_") && token.len() == 68, "{token}");

    let bad = sealctl(&["user", "--store", p, "add", "bob", "--role", "king"]);
    assert!(!bad.status.success());

    let list = sealctl(&["user", "--store", p, "list"]);
    let listing = text(&list.stdout);
    assert!(listing.contains("alice") && listing.contains("approver,custodian"));
    assert!(!listing.contains(&token), "tokens are never listed");

    assert!(sealctl(&["user", "--store", p, "disable", "alice"])
        .status
        .success());
    assert!(text(&sealctl(&["user", "--store", p, "list"]).stdout).contains("disabled"));

    let rotated = sealctl(&["user", "--store", p, "token", "alice"]);
    let new_token = text(&rotated.stdout).trim().to_owned();
    assert_ne!(new_token, token);

    let missing = sealctl(&["user", "--store", p, "token", "nobody"]);
    assert!(text(&missing.stderr).contains("no identity named"));
}

/// The chain cannot show that its newest records were cut off; a head noted outside the store
/// can. Deleting the tail (after dropping the retention trigger, as an intruder with the file
/// would) leaves a chain that verifies, and `--expect-head` catches it.
#[test]
fn a_noted_head_catches_a_cut_off_tail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seald.db");
    let append = |n: usize| {
        let store = Arc::new(Store::open(&path).unwrap());
        let log = AuditLog::new(store, Arc::new(SystemClock));
        for i in 0..n {
            log.append(NewRecord::new(
                AuditKind::Note,
                "tester",
                None,
                serde_json::json!({ "i": i }),
            ))
            .unwrap();
        }
    };
    let p = path.to_str().unwrap();
    let noted_head = |out: &Output| -> String {
        let stdout = text(&out.stdout);
        let label = "head to keep outside the store: ";
        let at = stdout.find(label).expect("the head to keep is printed") + label.len();
        stdout[at..].split_whitespace().next().unwrap().to_owned()
    };

    append(20);
    let first = sealctl(&["audit", "--store", p, "verify"]);
    assert!(first.status.success(), "{}", text(&first.stdout));
    let at_20 = noted_head(&first);
    assert!(at_20.starts_with("20:"), "{at_20}");

    append(10);
    let out = sealctl(&["audit", "--store", p, "verify", "--expect-head", &at_20]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains(&format!("noted head {at_20}: present")));
    let at_30 = noted_head(&out);

    // A head with the right number and another hash: the log was rewritten.
    let wrong = format!("20:{}", at_30.split_once(':').unwrap().1);
    let out = sealctl(&["audit", "--store", p, "verify", "--expect-head", &wrong]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("REWRITTEN"),
        "{}",
        text(&out.stdout)
    );

    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("DROP TRIGGER audit_log_retention; DELETE FROM audit_log WHERE seq > 24;")
        .unwrap();
    drop(conn);
    let cut = sealctl(&["audit", "--store", p, "verify"]);
    assert!(
        cut.status.success() && text(&cut.stdout).contains("24 records"),
        "the chain alone still verifies: {}",
        text(&cut.stdout)
    );
    let out = sealctl(&[
        "audit",
        "--store",
        p,
        "verify",
        "--expect-head",
        &at_20,
        "--expect-head",
        &at_30,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!("noted head {at_20}: present")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "NOTED HEAD {at_30} MISSING: the log ends at record 24"
        )),
        "{stdout}"
    );

    let bad = sealctl(&["audit", "--store", p, "verify", "--expect-head", "30"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("SEQ:HASH"),
        "{}",
        text(&bad.stderr)
    );
}
