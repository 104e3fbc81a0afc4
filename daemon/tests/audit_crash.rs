//! kill -9 of a process appending to the usage log, then reopen: every acknowledged record is
//! there and the chain is intact. Repeated at several points on the same store.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use seald::audit::AuditLog;
use seald::clock::SystemClock;
use seald::store::{Store, StoreError};
use std::sync::Arc;

/// Runs the append loop until `ack_target` acknowledgements are seen, kills it with SIGKILL and
/// returns every acknowledgement it printed: (thread, index, seq).
fn run_and_kill(store: &std::path::Path, ack_target: usize) -> Vec<(u64, u64, i64)> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sealctl"))
        .args(["audit", "--store"])
        .arg(store)
        .args(["append-loop", "--threads", "4"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn sealctl");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acks = Vec::new();
    while acks.len() < ack_target {
        let line = lines
            .next()
            .expect("append loop ended early")
            .expect("read");
        acks.push(parse(&line));
    }
    child.kill().expect("SIGKILL"); // Child::kill is SIGKILL on Unix
    child.wait().unwrap();
    // Acknowledgements printed before the kill but not yet read are still in the pipe.
    for line in lines {
        match line {
            Ok(l) if l.split(' ').count() == 3 => acks.push(parse(&l)),
            _ => break, // a line cut by the kill was never a complete acknowledgement
        }
    }
    acks
}

fn parse(line: &str) -> (u64, u64, i64) {
    let mut parts = line.split(' ');
    let mut next = || {
        parts
            .next()
            .expect("three fields")
            .parse::<i64>()
            .expect("number")
    };
    (next() as u64, next() as u64, next())
}

#[test]
fn acknowledged_records_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seald.db");
    let mut all_acks = Vec::new();
    for target in [1, 40, 250, 800] {
        let acks = run_and_kill(&path, target);
        assert!(acks.len() >= target);
        all_acks.extend(acks);

        let store = Arc::new(Store::open(&path).unwrap());
        let log = AuditLog::new(store.clone(), Arc::new(SystemClock));
        let report = log.verify().unwrap();
        assert!(report.is_intact(), "after kill at {target}: {report:?}");
        let seqs: HashSet<i64> = all_acks.iter().map(|a| a.2).collect();
        assert_eq!(
            seqs.len(),
            all_acks.len(),
            "a sequence number was acknowledged twice"
        );
        for &(thread, i, seq) in &all_acks {
            let row = store
                .read(|tx| tx.audit_row(seq))
                .unwrap_or_else(|e: StoreError| panic!("{e}"))
                .unwrap_or_else(|| panic!("acknowledged record {seq} is missing"));
            let detail: serde_json::Value = serde_json::from_str(&row.detail).unwrap();
            assert_eq!(detail["thread"], thread, "record {seq}");
            assert_eq!(detail["i"], i, "record {seq}");
        }
        assert!(report.last_seq.unwrap() >= *seqs.iter().max().unwrap());
    }
}
