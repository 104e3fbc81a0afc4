//! Usage-log append (hash-chained, durable before return, group-committed) with one writer and
//! many, beside the cost of one bare `fdatasync` on the same disk.
//!
//! `cargo bench -p seald --bench usage_log`. Files go to `$SEALD_BENCH_DIR`, else cargo's
//! target tmp dir (a real disk, unlike a tmpfs `/tmp`).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use seald::audit::{AuditLog, NewRecord};
use seald::clock::SystemClock;
use seald::store::model::AuditKind;
use seald::store::Store;
use serde_json::json;

fn quick() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
}

fn bench_dir() -> tempfile::TempDir {
    let base = std::env::var_os("SEALD_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    std::fs::create_dir_all(&base).unwrap();
    tempfile::tempdir_in(base).unwrap()
}

/// A record shaped like the one a stamp writes (digests and names, no document).
fn stamp_record(i: u64) -> NewRecord {
    NewRecord::new(
        AuditKind::Signature,
        "client:desktop-app",
        None,
        json!({
            "request_id": i,
            "seal_cert_serial": "0123456789abcdef",
            "document_digest": "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0",
            "document_name": "合同-2026-0001.ofd",
            "client": "desktop-app",
            "origin": "http://localhost:5173",
            "approvers": ["alice", "bob"],
            "signature_digest": "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732",
        }),
    )
}

/// Appends `total` records from `writers` threads; returns the wall time.
fn append_from(log: &AuditLog, writers: u64, total: u64) -> Duration {
    let per = total.div_ceil(writers);
    let start = Instant::now();
    std::thread::scope(|s| {
        for w in 0..writers {
            s.spawn(move || {
                for i in 0..per {
                    log.append(stamp_record(w * per + i)).unwrap();
                }
            });
        }
    });
    start.elapsed()
}

fn bench_append(c: &mut Criterion) {
    let dir = bench_dir();
    let store = Arc::new(Store::open(dir.path().join("seald.db")).unwrap());
    let log = AuditLog::new(store.clone(), Arc::new(SystemClock));
    let mut group = c.benchmark_group("usage_log/append");
    group.throughput(Throughput::Elements(1));
    for writers in [1u64, 8, 64, 256] {
        let before = store.stats();
        group.bench_with_input(BenchmarkId::new("writers", writers), &writers, |b, &w| {
            b.iter_custom(|iters| append_from(&log, w, iters.max(w)))
        });
        let after = store.stats();
        let (writes, commits) = (after.writes - before.writes, after.commits - before.commits);
        eprintln!(
            "usage_log, {writers} writers: {writes} records in {commits} commits ({:.1} per commit)",
            writes as f64 / commits.max(1) as f64
        );
    }
    group.finish();
}

/// Appends `total` records from `tasks` concurrent tasks on a two-thread runtime, as the API's
/// handlers do (`append_async`: no thread waits per record); returns the wall time.
fn append_async_from(
    runtime: &tokio::runtime::Runtime,
    log: &Arc<AuditLog>,
    tasks: u64,
    total: u64,
) -> Duration {
    let per = total.div_ceil(tasks);
    let start = Instant::now();
    runtime.block_on(async {
        let handles: Vec<_> = (0..tasks)
            .map(|t| {
                let log = log.clone();
                tokio::spawn(async move {
                    for i in 0..per {
                        log.append_async(stamp_record(t * per + i)).await.unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.await.unwrap();
        }
    });
    start.elapsed()
}

fn bench_append_async(c: &mut Criterion) {
    let dir = bench_dir();
    let store = Arc::new(Store::open(dir.path().join("seald.db")).unwrap());
    let log = Arc::new(AuditLog::new(store.clone(), Arc::new(SystemClock)));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let mut group = c.benchmark_group("usage_log/append_async");
    group.throughput(Throughput::Elements(1));
    for tasks in [8u64, 64, 256, 1024] {
        let before = store.stats();
        group.bench_with_input(BenchmarkId::new("tasks", tasks), &tasks, |b, &t| {
            b.iter_custom(|iters| append_async_from(&runtime, &log, t, iters.max(t)))
        });
        let after = store.stats();
        let (writes, commits) = (after.writes - before.writes, after.commits - before.commits);
        eprintln!(
            "usage_log async, {tasks} tasks: {writes} records in {commits} commits ({:.1} per commit)",
            writes as f64 / commits.max(1) as f64
        );
    }
    group.finish();
}

/// The floor under one commit: a 4 KiB write and `fdatasync` (SQLite's WAL commit is at least
/// one of these).
fn bench_fsync(c: &mut Criterion) {
    let dir = bench_dir();
    let mut file = std::fs::File::create(dir.path().join("fsync-probe")).unwrap();
    let page = [0u8; 4096];
    c.bench_function("fsync/write_4KiB_fdatasync", |b| {
        b.iter(|| {
            file.write_all(&page).unwrap();
            file.sync_data().unwrap();
        })
    });
}

criterion_group! {
    name = benches;
    config = quick();
    targets = bench_fsync, bench_append, bench_append_async
}
criterion_main!(benches);
