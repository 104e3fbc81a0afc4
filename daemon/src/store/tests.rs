//! The write path and the usage-log head, on the backend the tests run on
//! ([`super::testing`]).

use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::time::Duration;

use super::model::*;
use super::{testing, Store, StoreError};

/// Holds the writer inside a job until the returned sender is used, so writes queued
/// meanwhile run together in the next batch.
fn hold_writer(store: &Arc<Store>) -> (Sender<()>, std::thread::JoinHandle<()>) {
    let (started, wait_started) = mpsc::channel();
    let (release, wait_release) = mpsc::channel::<()>();
    let store = store.clone();
    let blocker = std::thread::spawn(move || {
        store
            .write(move |_tx| {
                started.send(()).unwrap();
                let _ = wait_release.recv();
                Ok::<_, StoreError>(())
            })
            .unwrap()
    });
    wait_started.recv().unwrap();
    (release, blocker)
}

#[test]
fn a_failed_or_panicking_write_in_a_batch_rolls_back_only_its_own_changes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(testing::open(dir.path()));
    let before = store.stats();
    let (release, blocker) = hold_writer(&store);
    let mut handles = Vec::new();
    for i in 0..12 {
        let store = store.clone();
        handles.push(std::thread::spawn(move || {
            store.write(move |tx| {
                let name = format!("user-{i}");
                tx.insert_identity(&name, &[Role::Client], name.as_bytes(), 0)?;
                match i % 4 {
                    1 => Err(StoreError::Failed("refused".into())),
                    2 => {
                        // A second change, then a failure: both must vanish.
                        tx.insert_identity(&format!("{name}-b"), &[], b"x", 0)?;
                        Err(StoreError::Failed("refused late".into()))
                    }
                    3 if i == 3 => panic!("a bug in a write"),
                    _ => Ok(i),
                }
            })
        }));
    }
    // Let every writer queue its job behind the held one.
    std::thread::sleep(Duration::from_millis(200));
    release.send(()).unwrap();
    blocker.join().unwrap();
    let outcomes: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for (i, outcome) in outcomes.iter().enumerate() {
        let ok = i % 4 == 0 || (i % 4 == 3 && i != 3);
        assert_eq!(outcome.is_ok(), ok, "write {i}: {outcome:?}");
    }
    let after = store.stats();
    assert!(
        after.commits - before.commits <= 3,
        "the writes did not share commits: {before:?} → {after:?}"
    );
    let names: Vec<String> = store
        .read(|tx| tx.identities())
        .unwrap()
        .into_iter()
        .map(|i| i.name)
        .collect();
    let mut expected: Vec<String> = (0..12)
        .filter(|i| i % 4 == 0 || (i % 4 == 3 && *i != 3))
        .map(|i| format!("user-{i}"))
        .collect();
    expected.sort();
    assert_eq!(names, expected);
    // The writer carries on after the failures.
    store
        .write(|tx| tx.insert_identity("later", &[], b"later", 0))
        .unwrap();
}

#[test]
fn a_usage_log_head_read_after_a_rolled_back_append_is_the_committed_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(testing::open(dir.path()));
    let row = |seq: i64, prev: &[u8]| AuditRow {
        seq,
        at_ms: 0,
        kind: "note".into(),
        actor: "t".into(),
        seal_id: None,
        detail: "{}".into(),
        prev_hash: prev.to_vec(),
        hash: vec![seq as u8; 32],
    };
    store
        .write(move |tx| {
            assert_eq!(tx.audit_last()?, None);
            tx.insert_audit(&row(1, &[0; 32]))
        })
        .unwrap();
    let (release, blocker) = hold_writer(&store);
    let first = {
        let store = store.clone();
        std::thread::spawn(move || {
            store.write(move |tx| {
                assert_eq!(tx.audit_last()?, Some((1, vec![1; 32])));
                tx.insert_audit(&row(2, &[1; 32]))?;
                assert_eq!(tx.audit_last()?, Some((2, vec![2; 32])));
                Err::<(), _>(StoreError::Failed("refused".into()))
            })
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    let second = {
        let store = store.clone();
        std::thread::spawn(move || store.write(|tx| tx.audit_last()))
    };
    std::thread::sleep(Duration::from_millis(100));
    release.send(()).unwrap();
    blocker.join().unwrap();
    assert!(first.join().unwrap().is_err());
    assert_eq!(second.join().unwrap().unwrap(), Some((1, vec![1; 32])));
}
