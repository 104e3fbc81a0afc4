//! Junk requests cannot fill the store: anonymous refusals are counted and written as one
//! summary per window (and at shutdown), outside the hash chain; client text is bounded.

use std::path::Path;
use std::time::{Duration, Instant};

use seald_tests::daemon::Daemon;
use seald_tests::deployment::{Deployment, Who};
use seald_tests::stamping::digest;

/// Bytes of the store and its WAL.
fn store_bytes(db: &Path) -> u64 {
    let wal = db.with_file_name("seald.db-wal");
    [db, wal.as_path()]
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum()
}

/// `(kind, detail)` of every operational record, read as another process would.
fn operational(db: &Path) -> Vec<(String, serde_json::Value)> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open the store");
    let mut stmt = conn
        .prepare("SELECT kind, detail FROM ops_log ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .unwrap()
        .map(|r| {
            let (kind, detail) = r.unwrap();
            (kind, serde_json::from_str(&detail).unwrap())
        })
        .collect()
}

fn chained(db: &Path, kind: &str) -> i64 {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open the store");
    conn.query_row(
        "SELECT COUNT(*) FROM audit_log WHERE kind = ?1",
        [kind],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn a_thousand_anonymous_60_kib_paths_cost_a_few_bytes_of_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("seald.db");
    // The default window (60 s) does not run out during the test: the summary is written at
    // shutdown.
    let d = Daemon::start(&format!("store = \"{}\"\n", db.display()), &[]);
    assert_eq!(d.raw("GET", "/v1/health", &[], None).status, 200);
    std::thread::sleep(Duration::from_millis(500));
    let before = store_bytes(&db);

    let path = format!("/{}", "A".repeat(60 * 1024));
    for i in 0..1000 {
        let r = d.raw("GET", &path, &[], None);
        assert_eq!(r.status, 404, "request {i}: {}", r.body);
        assert_eq!(r.json()["code"], "not_found");
    }
    let during = store_bytes(&db);
    assert!(
        during - before < 16 * 1024,
        "the store grew by {} bytes while refusing",
        during - before
    );

    // SIGTERM: the daemon stops serving and writes the window's summary.
    // SAFETY: kill has no memory preconditions; the pid is our own child's.
    unsafe { libc::kill(d.pid() as libc::pid_t, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(20);
    let records = loop {
        let records = operational(&db);
        if !records.is_empty() {
            break records;
        }
        assert!(Instant::now() < deadline, "no refusal summary at shutdown");
        std::thread::sleep(Duration::from_millis(100));
    };
    let after = store_bytes(&db);
    assert!(
        after.saturating_sub(before) < 64 * 1024,
        "the store grew by {} bytes for 1,000 refusals",
        after.saturating_sub(before)
    );
    eprintln!(
        "store + WAL: {before} bytes before, {during} after 1,000 refusals, {after} after shutdown; {} operational records",
        records.len()
    );
    assert!(records.len() <= 3, "{records:?}");
    let total: u64 = records
        .iter()
        .filter(|(kind, _)| kind == "refusal-summary")
        .map(|(_, d)| d["counts"]["404 not_found"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(total, 1000, "{records:?}");
    for (_, detail) in &records {
        let text = detail.to_string();
        assert!(text.len() < 4096, "a summary of {} bytes", text.len());
        assert!(text.contains("AAAA"), "samples are kept, clipped: {text}");
    }
    assert_eq!(chained(&db, "refusal"), 0, "refusals stay out of the chain");
}

#[test]
fn client_text_is_bounded_with_a_clear_message_and_changes_nothing() {
    let d = Deployment::hsm_sim("sansec");
    let doc = hex::encode(digest(9, 1));
    let before = d.audit("stamp-request").len();
    let ask = |body: serde_json::Value| {
        d.call("POST", "/v1/stamp-requests", Some(Who::Client), Some(&body))
    };

    let r = ask(serde_json::json!({"seal_id": 1, "digest": doc, "purpose": "p".repeat(1001)}));
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.json()["code"], "invalid_text");
    assert_eq!(
        r.json()["message"],
        "`purpose` is 1001 characters long; at most 1000 are allowed"
    );

    let r = ask(serde_json::json!({
        "seal_id": 1, "digest": doc, "purpose": "ok",
        "document_name": "invoice\u{202E}fdp.exe",
    }));
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.json()["code"], "invalid_text");
    let message = r.json()["message"].as_str().unwrap().to_owned();
    assert!(message.contains("U+202E"), "{message}");
    assert!(message.contains("bidirectional"), "{message}");

    let r = ask(serde_json::json!({
        "seal_id": 1, "digest": doc, "purpose": "ok", "document_name": "n".repeat(256),
    }));
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("at most 255"), "{}", r.body);

    assert_eq!(d.audit("stamp-request").len(), before, "nothing was asked");
    // The refusals were made by an authenticated client: logged one by one, clipped.
    let logged = d.audit("refusal");
    assert!(logged
        .iter()
        .any(|r| r["detail"]["code"] == "invalid_text" && r["actor"] == "demo-client"));
    assert!(logged
        .iter()
        .all(|r| r["detail"]["message"].as_str().unwrap_or("").len() < 400));
}
