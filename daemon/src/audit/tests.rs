use std::sync::Arc;

use serde_json::json;
use time::macros::datetime;

use super::*;
use crate::clock::ManualClock;
use crate::store::model::Digest32;
use crate::store::testing::{Raw, RawValue};
use crate::store::Store;

struct Fixture {
    _dir: tempfile::TempDir,
    location: crate::store::StoreLocation,
    clock: Arc<ManualClock>,
    log: AuditLog,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let location = crate::store::testing::location(dir.path());
    let store = Arc::new(Store::open_at(&location).unwrap());
    let clock = Arc::new(ManualClock::new(datetime!(2026-01-05 09:00 UTC)));
    let log = AuditLog::new(store, clock.clone());
    Fixture {
        _dir: dir,
        location,
        clock,
        log,
    }
}

fn note(i: usize) -> NewRecord {
    NewRecord::new(AuditKind::Note, "tester", None, json!({ "i": i }))
}

/// A direct connection, as an attacker with the file or the database's credentials would
/// have: the append-only triggers out of the way.
fn raw(f: &Fixture) -> Raw {
    Raw::attacker(&f.location)
}

#[test]
fn appends_link_and_verify() {
    let f = fixture();
    let a = f.log.append(note(1)).unwrap();
    let b = f.log.append(note(2)).unwrap();
    assert_eq!((a.seq, b.seq), (1, 2));
    assert_eq!(a.prev_hash, chain::GENESIS.to_vec());
    assert_eq!(b.prev_hash, a.hash);
    let report = f.log.verify().unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.records, 2);
    assert_eq!(report.head.unwrap().0.to_vec(), b.hash);
}

#[test]
fn ten_thousand_records_from_eight_threads_verify() {
    let f = fixture();
    let log = Arc::new(f.log.clone());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                for i in 0..1250 {
                    log.append(note(t * 10_000 + i)).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let report = f.log.verify().unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.records, 10_000);
    assert_eq!(report.last_seq, Some(10_000));
    let stats = f.log.store.stats();
    assert_eq!(stats.writes, 10_000);
    assert!(stats.commits < stats.writes, "no group commit: {stats:?}");
}

#[test]
fn appends_arriving_together_share_one_commit() {
    let f = fixture();
    let store = f.log.store.clone();
    let before = store.stats();
    // Hold the writer busy so the appends below queue up behind it.
    let (started, wait_started) = std::sync::mpsc::channel();
    let blocker = {
        let store = store.clone();
        std::thread::spawn(move || {
            store
                .write(move |_tx| {
                    started.send(()).unwrap();
                    std::thread::sleep(std::time::Duration::from_millis(300));
                    Ok::<_, StoreError>(())
                })
                .unwrap()
        })
    };
    wait_started.recv().unwrap();
    let appenders: Vec<_> = (0..32)
        .map(|i| {
            let log = f.log.clone();
            std::thread::spawn(move || log.append(note(i)).unwrap())
        })
        .collect();
    blocker.join().unwrap();
    for a in appenders {
        a.join().unwrap();
    }
    let after = store.stats();
    assert_eq!(after.writes - before.writes, 33);
    assert!(
        after.commits - before.commits <= 3,
        "32 queued appends took {} commits",
        after.commits - before.commits
    );
    assert!(f.log.verify().unwrap().is_intact());
}

#[test]
fn a_failed_write_in_a_batch_leaves_the_others_and_the_chain_intact() {
    let f = fixture();
    let store = f.log.store.clone();
    let (started, wait_started) = std::sync::mpsc::channel();
    let blocker = {
        let store = store.clone();
        std::thread::spawn(move || {
            store
                .write(move |_tx| {
                    started.send(()).unwrap();
                    std::thread::sleep(std::time::Duration::from_millis(200));
                    Ok::<_, StoreError>(())
                })
                .unwrap()
        })
    };
    wait_started.recv().unwrap();
    let mut handles = Vec::new();
    for i in 0..10 {
        let store = store.clone();
        handles.push(std::thread::spawn(move || {
            store.write(move |tx| {
                chain::append(tx, &note(i), 1_700_000_000_000)?;
                if i % 3 == 0 {
                    // A rule refuses after the record was written: all of it must vanish.
                    return Err(AuditError::Io(std::io::Error::other("refused")));
                }
                Ok(())
            })
        }));
    }
    blocker.join().unwrap();
    let failed = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(Result::is_err)
        .count();
    assert_eq!(failed, 4);
    let report = f.log.verify().unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.records, 6);
    let kept: Vec<i64> = store
        .read(|tx| tx.audit_rows(0, 100))
        .unwrap()
        .iter()
        .map(|r| {
            serde_json::from_str::<serde_json::Value>(&r.detail).unwrap()["i"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert!(kept.iter().all(|i| i % 3 != 0), "{kept:?}");
}

#[test]
fn edited_row_is_named() {
    let f = fixture();
    for i in 0..20 {
        f.log.append(note(i)).unwrap();
    }
    raw(&f)
        .execute(
            "UPDATE audit_log SET detail = '{\"i\":99}' WHERE seq = 13",
            &[],
        )
        .unwrap();
    let report = f.log.verify().unwrap();
    assert_eq!(
        report.broken,
        Some(ChainBreak {
            seq: 13,
            reason: BreakReason::HashMismatch
        })
    );
}

#[test]
fn rehashed_row_breaks_the_next_link() {
    let f = fixture();
    for i in 0..5 {
        f.log.append(note(i)).unwrap();
    }
    // An attacker edits record 3 and recomputes its own hash: record 4 no longer links.
    let mut conn = raw(&f);
    let mut row = f.log.store.read(|tx| tx.audit_row(3)).unwrap().unwrap();
    row.actor = "mallory".into();
    let h = chain::record_hash(&row.prev_hash, &row);
    conn.execute(
        "UPDATE audit_log SET actor = 'mallory', hash = ?1 WHERE seq = 3",
        &[RawValue::Bytes(h.to_vec())],
    )
    .unwrap();
    let report = f.log.verify().unwrap();
    assert_eq!(report.broken.unwrap().seq, 4);
}

#[test]
fn deleted_row_is_named() {
    let f = fixture();
    for i in 0..5 {
        f.log.append(note(i)).unwrap();
    }
    raw(&f)
        .execute("DELETE FROM audit_log WHERE seq = 2", &[])
        .unwrap();
    let broken = f.log.verify().unwrap().broken.unwrap();
    assert_eq!(broken.seq, 2);
    assert_eq!(broken.reason, BreakReason::Missing { found: 3 });
}

#[test]
fn prune_refuses_records_younger_than_three_years() {
    let f = fixture();
    f.log.append(note(0)).unwrap();
    let err = f
        .log
        .prune_before(datetime!(2023-02-01 00:00 UTC), "admin")
        .unwrap_err();
    assert!(matches!(err, AuditError::RetentionTooShort { .. }), "{err}");
    assert_eq!(f.log.verify().unwrap().records, 1);
}

#[test]
fn prune_keeps_the_rest_verifiable() {
    let f = fixture();
    f.clock.set(datetime!(2020-01-01 00:00 UTC));
    for i in 0..10 {
        f.log.append(note(i)).unwrap();
    }
    f.clock.set(datetime!(2022-06-01 00:00 UTC));
    for i in 10..15 {
        f.log.append(note(i)).unwrap();
    }
    f.clock.set(datetime!(2026-01-01 00:00 UTC));
    let report = f
        .log
        .prune_before(datetime!(2021-01-01 00:00 UTC), "admin")
        .unwrap();
    assert_eq!(report.deleted, 10);
    assert_eq!(report.anchor.as_ref().unwrap().seq, 10);
    let after = f.log.append(note(99)).unwrap();
    assert_eq!(after.seq, 17); // 11..15 kept, 16 = prune record

    // Heads noted before the prune: pruned ones cannot be checked, the anchor still can.
    let anchor = report.anchor.clone().unwrap();
    let at_anchor = NotedHead {
        seq: anchor.seq,
        hash: Digest32(anchor.hash.clone().try_into().unwrap()),
        at_ms: None,
    };
    let before_anchor = NotedHead {
        seq: 3,
        hash: at_anchor.hash,
        at_ms: Some(unix_ms(datetime!(2020-01-01 00:00 UTC))),
    };
    let before_anchor_untimed = NotedHead {
        at_ms: None,
        ..before_anchor
    };
    let latest = NotedHead {
        seq: after.seq,
        hash: Digest32(after.hash.clone().try_into().unwrap()),
        at_ms: Some(after.at_ms),
    };
    let (_, checks) = f
        .log
        .verify_with_heads(&[before_anchor, before_anchor_untimed, at_anchor, latest])
        .unwrap();
    assert_eq!(
        checks,
        vec![
            HeadCheck::Pruned { time_checked: true },
            HeadCheck::Pruned {
                time_checked: false
            },
            HeadCheck::Present,
            HeadCheck::Present
        ]
    );
    assert_eq!(latest.to_string().parse::<NotedHead>().unwrap(), latest);
    assert_eq!(
        at_anchor.to_string().parse::<NotedHead>().unwrap(),
        at_anchor
    );
    assert!("17".parse::<NotedHead>().is_err());
    assert!("0:00".parse::<NotedHead>().is_err());
    assert!(format!("{}@yesterday", at_anchor)
        .parse::<NotedHead>()
        .is_err());
    let v = f.log.verify().unwrap();
    assert!(v.is_intact(), "{v:?}");
    assert_eq!(
        (v.first_seq, v.records, v.anchor_seq),
        (Some(11), 7, Some(10))
    );

    // Moving the anchor by hand is detected.
    raw(&f)
        .execute("UPDATE audit_anchor SET seq = 12", &[])
        .unwrap();
    assert!(f.log.verify().unwrap().broken.is_some());
}

/// Appends `n` notes at 2026-01-05 and returns the head noted after the third, with its time.
fn recent_log_with_noted_head(f: &Fixture, n: usize) -> NotedHead {
    f.clock.set(datetime!(2026-01-05 09:00 UTC));
    let mut noted = None;
    for i in 0..n {
        let row = f.log.append(note(i)).unwrap();
        if i == 2 {
            noted = Some(NotedHead {
                seq: row.seq,
                hash: Digest32(row.hash.clone().try_into().unwrap()),
                at_ms: Some(row.at_ms),
            });
        }
    }
    noted.unwrap()
}

/// As an attacker with the file would: deletes the records up to `through` (all when None),
/// anchors the chain on the last one deleted, and appends a prune record with `actor` and
/// `detail` (given the deleted records' last seq and hash) written at `at`.
fn forge_prune(
    f: &Fixture,
    through: Option<i64>,
    actor: &str,
    at: OffsetDateTime,
    detail: impl FnOnce(i64, &[u8]) -> serde_json::Value,
) {
    let mut conn = raw(f);
    let through = through.unwrap_or_else(|| conn.int("SELECT MAX(seq) FROM audit_log", &[]));
    let hash = conn.bytes(
        "SELECT hash FROM audit_log WHERE seq = ?1",
        &[RawValue::Int(through)],
    );
    conn.execute(
        "DELETE FROM audit_log WHERE seq <= ?1",
        &[RawValue::Int(through)],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO audit_anchor (id, seq, hash) VALUES (1, ?1, ?2)",
        &[RawValue::Int(through), RawValue::Bytes(hash.clone())],
    )
    .unwrap();
    drop(conn);
    f.clock.set(at);
    f.log
        .append(NewRecord::new(
            AuditKind::Prune,
            actor,
            None,
            detail(through, &hash),
        ))
        .unwrap();
}

fn anchor_detail(seq: i64, hash: &[u8], cutoff: OffsetDateTime) -> serde_json::Value {
    json!({
        "anchor_seq": seq,
        "anchor_hash": hex::encode(hash),
        "deleted": seq,
        "cutoff_ms": unix_ms(cutoff),
    })
}

#[test]
fn a_forged_prune_that_wipes_recent_records_fails_a_noted_head() {
    let f = fixture();
    let noted = recent_log_with_noted_head(&f, 6);
    // Every record deleted, and a prune record that looks right: dated now, cutoff three
    // years earlier, anchored on the real last record.
    forge_prune(
        &f,
        None,
        "admin",
        datetime!(2026-01-06 09:00 UTC),
        |seq, hash| anchor_detail(seq, hash, datetime!(2023-01-06 09:00 UTC)),
    );
    // The chain alone cannot tell: the forgery is consistent.
    let (report, checks) = f
        .log
        .verify_with_heads(&[
            noted,
            NotedHead {
                at_ms: None,
                ..noted
            },
        ])
        .unwrap();
    assert!(report.is_intact(), "{report:?}");
    // The head noted with its time can: it was written after the cutoff.
    assert_eq!(
        checks,
        vec![
            HeadCheck::PrunedUnproven,
            HeadCheck::Pruned {
                time_checked: false
            }
        ]
    );
    assert!(checks[0].is_failure());
}

#[test]
fn a_prune_record_that_breaks_the_rules_breaks_the_chain() {
    let cases = [
        // Cutoff less than three years before the prune's own date.
        (
            "admin",
            datetime!(2026-01-06 09:00 UTC),
            datetime!(2026-01-06 00:00 UTC),
            "less than 3 years",
        ),
        // Dated in the future (so that its cutoff could be recent).
        (
            "admin",
            datetime!(2030-01-06 09:00 UTC),
            datetime!(2026-01-06 00:00 UTC),
            "in the future",
        ),
        // Nobody named.
        (
            "",
            datetime!(2026-01-06 09:00 UTC),
            datetime!(2022-01-06 00:00 UTC),
            "names nobody",
        ),
    ];
    for (actor, at, cutoff, why) in cases {
        let f = fixture();
        recent_log_with_noted_head(&f, 4);
        forge_prune(&f, None, actor, at, |seq, hash| {
            anchor_detail(seq, hash, cutoff)
        });
        f.clock.set(datetime!(2026-01-06 09:00 UTC));
        let broken = f
            .log
            .verify()
            .unwrap()
            .broken
            .unwrap_or_else(|| panic!("{why}: not caught"));
        assert!(
            matches!(broken.reason, BreakReason::UnprovenPrune { .. }),
            "{why}: {broken:?}"
        );
        assert!(broken.to_string().contains(why), "{broken}");
    }
}

#[test]
fn a_prune_whose_counts_or_kept_records_do_not_fit_breaks_the_chain() {
    // The deleted count disagrees with the anchors it names.
    let f = fixture();
    recent_log_with_noted_head(&f, 4);
    forge_prune(
        &f,
        None,
        "admin",
        datetime!(2026-01-06 09:00 UTC),
        |seq, hash| {
            let mut d = anchor_detail(seq, hash, datetime!(2022-06-01 00:00 UTC));
            d["previous_anchor_seq"] = json!(0);
            d["deleted"] = json!(1);
            d
        },
    );
    let text = f.log.verify().unwrap().broken.unwrap().to_string();
    assert!(
        text.contains("removed 1 records, but records 1..=4 are 4"),
        "{text}"
    );

    // Old records, of which a forged prune removes only the first two: the record kept after
    // its anchor is older than the cutoff it claims, so it did not prune as a prune does.
    let f = fixture();
    f.clock.set(datetime!(2020-01-01 00:00 UTC));
    for i in 0..4 {
        f.log.append(note(i)).unwrap();
    }
    forge_prune(
        &f,
        Some(2),
        "admin",
        datetime!(2026-01-06 09:00 UTC),
        |seq, hash| anchor_detail(seq, hash, datetime!(2022-01-01 00:00 UTC)),
    );
    let broken = f.log.verify().unwrap().broken.unwrap();
    assert_eq!(broken.seq, 3);
    assert!(
        broken.to_string().contains("older than the prune's cutoff"),
        "{broken}"
    );
}

#[test]
fn a_legitimate_prune_records_who_when_and_what() {
    let f = fixture();
    f.clock.set(datetime!(2020-01-01 00:00 UTC));
    for i in 0..5 {
        f.log.append(note(i)).unwrap();
    }
    f.clock.set(datetime!(2021-01-01 00:00 UTC));
    for i in 5..8 {
        f.log.append(note(i)).unwrap();
    }
    f.clock.set(datetime!(2026-01-01 00:00 UTC));
    f.log
        .prune_before(datetime!(2020-06-01 00:00 UTC), "admin")
        .unwrap();
    f.clock.set(datetime!(2026-06-01 00:00 UTC));
    f.log
        .prune_before(datetime!(2021-06-01 00:00 UTC), "auditor")
        .unwrap();
    let report = f.log.verify().unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(
        report.pruned_before_ms,
        Some(unix_ms(datetime!(2021-06-01 00:00 UTC)))
    );
    let row = Raw::plain(&f.location).row(
        "SELECT actor, detail FROM audit_log WHERE kind = 'prune' ORDER BY seq DESC LIMIT 1",
        &[],
    );
    let text = |v: &RawValue| match v {
        RawValue::Bytes(b) => String::from_utf8(b.clone()).unwrap(),
        RawValue::Int(_) => panic!("text expected"),
    };
    let (actor, detail) = (text(&row[0]), text(&row[1]));
    let d: serde_json::Value = serde_json::from_str(&detail).unwrap();
    assert_eq!(actor, "auditor");
    assert_eq!(
        (&d["previous_anchor_seq"], &d["anchor_seq"], &d["deleted"]),
        (&json!(5), &json!(8), &json!(3))
    );
    assert_eq!(
        d["anchor_at_ms"],
        json!(unix_ms(datetime!(2021-01-01 00:00 UTC)))
    );
}

#[test]
fn prune_of_everything_continues_the_chain() {
    let f = fixture();
    f.clock.set(datetime!(2019-01-01 00:00 UTC));
    for i in 0..3 {
        f.log.append(note(i)).unwrap();
    }
    f.clock.set(datetime!(2026-01-01 00:00 UTC));
    f.log
        .prune_before(datetime!(2022-01-01 00:00 UTC), "admin")
        .unwrap();
    let v = f.log.verify().unwrap();
    assert!(v.is_intact(), "{v:?}");
    assert_eq!((v.first_seq, v.records), (Some(4), 1));
}

#[test]
fn export_selects_the_time_range() {
    let f = fixture();
    f.clock.set(datetime!(2026-01-01 00:00 UTC));
    f.log.append(note(1)).unwrap();
    f.clock.set(datetime!(2026-01-02 00:00 UTC));
    f.log.append(note(2)).unwrap();
    f.clock.set(datetime!(2026-01-03 00:00 UTC));
    f.log.append(note(3)).unwrap();
    let mut out = Vec::new();
    let n = f
        .log
        .export(
            datetime!(2026-01-02 00:00 UTC),
            datetime!(2026-01-03 00:00 UTC),
            ExportFormat::Jsonl,
            &mut out,
        )
        .unwrap();
    assert_eq!(n, 1);
    let line: serde_json::Value = serde_json::from_slice(out.trim_ascii_end()).unwrap();
    assert_eq!(line["detail"]["i"], 2);
    assert_eq!(line["at"], "2026-01-02T00:00:00Z");

    let mut csv = Vec::new();
    f.log
        .export(
            datetime!(2026-01-01 00:00 UTC),
            datetime!(2027-01-01 00:00 UTC),
            ExportFormat::Csv,
            &mut csv,
        )
        .unwrap();
    let text = String::from_utf8(csv).unwrap();
    assert_eq!(text.lines().count(), 4);
    assert!(text.starts_with(export::CSV_HEADER));
}

#[test]
fn retention_limit_is_three_calendar_years() {
    assert_eq!(
        retention_limit(datetime!(2026-03-10 12:00 UTC)),
        datetime!(2023-03-10 12:00 UTC)
    );
    assert_eq!(
        retention_limit(datetime!(2028-02-29 00:00 UTC)),
        datetime!(2025-02-28 00:00 UTC)
    );
}

#[test]
fn store_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let f = fixture();
    f.log.append(note(1)).unwrap();
    let crate::store::Database::Sqlite(path) = &f.location.database else {
        return; // PostgreSQL keeps no file of the store here
    };
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{p:?}");
    }
}

#[test]
fn async_appends_from_many_tasks_chain_with_blocking_ones() {
    let f = fixture();
    let log = Arc::new(f.log);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let rows = runtime.block_on(async {
        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let log = log.clone();
                tokio::spawn(async move { log.append_async(note(i)).await.unwrap() })
            })
            .collect();
        let mut rows = Vec::new();
        for t in tasks {
            rows.push(t.await.unwrap());
        }
        rows
    });
    log.append(note(64)).unwrap();
    let mut seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=64).collect::<Vec<_>>(), "each acknowledged once");
    let report = log.verify().unwrap();
    assert_eq!(report.records, 65);
    assert!(report.broken.is_none(), "{report:?}");
    // Acknowledged means committed: a fresh connection sees every record.
    let n = Raw::plain(&f.location).int("SELECT count(*) FROM audit_log", &[]);
    assert_eq!(n, 65);
}

fn refusal(i: usize) -> NewRecord {
    NewRecord::new(
        AuditKind::Refusal,
        "erp",
        None,
        json!({ "i": i, "code": "forbidden" }),
    )
}

#[test]
fn operational_records_stay_out_of_the_chain() {
    let f = fixture();
    let err = f.log.append(refusal(1)).unwrap_err();
    assert!(
        matches!(err, AuditError::Operational(AuditKind::Refusal)),
        "{err}"
    );
    f.log.append(note(1)).unwrap();
    let ops = f.log.append_operational(refusal(1)).unwrap();
    assert_eq!(ops.kind, "refusal");
    let report = f.log.verify().unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.records, 1, "only the note is chained");
    let listed = f.log.operational(Some(AuditKind::Refusal), 0, 10).unwrap();
    assert_eq!(listed, vec![ops]);
    assert!(f
        .log
        .operational(Some(AuditKind::Verification), 0, 10)
        .unwrap()
        .is_empty());
}

#[test]
fn operational_records_are_pruned_after_their_retention_and_the_chain_still_verifies() {
    let f = fixture();
    let log = f.log.clone().with_settings(AuditSettings {
        refusal_summary_window: std::time::Duration::from_secs(60),
        operational_retention_days: 90,
    });
    // Evidence and operational records interleaved over a year.
    for (i, at) in [
        datetime!(2025-01-01 00:00 UTC),
        datetime!(2025-06-01 00:00 UTC),
        datetime!(2025-10-01 00:00 UTC),
        datetime!(2025-12-20 00:00 UTC),
    ]
    .into_iter()
    .enumerate()
    {
        f.clock.set(at);
        log.append(note(i)).unwrap();
        log.append_operational(refusal(i)).unwrap();
        log.append(note(100 + i)).unwrap();
    }
    f.clock.set(datetime!(2026-01-05 09:00 UTC));
    assert_eq!(log.prune_operational().unwrap(), 3);
    let left = log.operational(None, 0, 100).unwrap();
    assert_eq!(left.len(), 1);
    assert!(left[0].detail.contains("\"i\":3"), "{}", left[0].detail);
    // The chain lost nothing and still verifies; the 3-year rule still guards it.
    let report = log.verify().unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.records, 8);
    assert!(log
        .prune_before(datetime!(2025-12-01 00:00 UTC), "auditor")
        .is_err());
    // And the database refuses to change an operational record.
    let err = Raw::plain(&f.location)
        .execute("UPDATE ops_log SET actor = 'x'", &[])
        .unwrap_err();
    assert!(err.to_string().contains("cannot be changed"), "{err}");
}

#[test]
fn anonymous_refusals_become_one_summary_per_window() {
    let f = fixture();
    let log = f.log.clone().with_settings(AuditSettings {
        refusal_summary_window: std::time::Duration::from_secs(60),
        operational_retention_days: 90,
    });
    assert!(
        log.flush_refusals(true).unwrap().is_none(),
        "nothing counted"
    );
    let path = format!("/{}", "A".repeat(60_000));
    for _ in 0..1000 {
        log.count_refusal(404, "not_found", "GET", &path, None);
    }
    log.count_refusal(429, "rate_limited", "GET", "/v1/seals", Some("erp"));
    f.clock.set(datetime!(2026-01-05 09:00:59 UTC));
    assert!(
        log.flush_refusals(false).unwrap().is_none(),
        "window not over"
    );
    f.clock.set(datetime!(2026-01-05 09:01 UTC));
    let summary = log.flush_refusals(false).unwrap().expect("a summary");
    assert_eq!(summary.kind, "refusal-summary");
    assert!(summary.detail.len() < 2_000, "{}", summary.detail.len());
    let detail: serde_json::Value = serde_json::from_str(&summary.detail).unwrap();
    assert_eq!(detail["counts"]["404 not_found"], 1000);
    assert_eq!(detail["rate_limited_callers"]["erp"], 1);
    assert!(
        log.flush_refusals(true).unwrap().is_none(),
        "window emptied"
    );
    assert_eq!(log.verify().unwrap().records, 0, "nothing chained");
}
