//! Shared-store benchmark (issue 20): usage-log appends per second and stamps per second with
//! 1, 2 and 3 nodes on one PostgreSQL, beside the embedded SQLite store.
//!
//! ```text
//! scripts/postgres.sh start
//! cargo build --release -p hsm-sim -p seald -p seald-tests
//! SEALD_TEST_POSTGRES=$(scripts/postgres.sh url) target/release/seald-cluster-bench [--secs S]
//! ```
//!
//! - Appends: each node is a `Store` of its own (its own connections and group-committing
//!   writer, as in a daemon), with 8 threads appending usage records through `AuditLog`; the
//!   count is what every node had acknowledged (durable) when the time ran out.
//! - Stamps: real `seald` release daemons on a `seald demo` deployment whose hsm-sim is a
//!   cipher machine (8 sessions) every node reaches, each node's custodian logged in; 16
//!   clients ask and have both approvers approve single-document requests, round-robin over the
//!   nodes, for S seconds; stamps/s counts the requests signed from the first request until the
//!   last one asked is signed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use seald::audit::{AuditLog, NewRecord};
use seald::clock::SystemClock;
use seald::store::model::AuditKind;
use seald::store::{PgOptions, Store, StoreLocation};
use seald_tests::daemon::Daemon;
use seald_tests::deployment::Deployment;
use serde_json::json;

fn main() {
    let secs: f64 = std::env::args()
        .skip_while(|a| a != "--secs")
        .nth(1)
        .map(|s| s.parse().expect("--secs takes a number"))
        .unwrap_or(5.0);
    let run = Duration::from_secs_f64(secs);
    let server = std::env::var("SEALD_TEST_POSTGRES")
        .expect("set SEALD_TEST_POSTGRES=$(scripts/postgres.sh url) (scripts/postgres.sh start)");

    println!("usage-log appends (8 threads per node, {secs} s)");
    println!("| store | nodes | appends/s | per node |");
    println!("|---|---:|---:|---:|");
    let dir = tempfile::tempdir_in(seald_tests::bins::target_dir()).expect("dir");
    let sqlite = appends(&[StoreLocation::sqlite(dir.path().join("bench.db"))], run);
    println!("| SQLite | 1 | {sqlite:.0} | {sqlite:.0} |");
    for nodes in 1..=3 {
        let url = database(&server);
        let locations: Vec<_> = (0..nodes)
            .map(|_| StoreLocation::postgres(PgOptions::new(&url), dir.path()))
            .collect();
        let total = appends(&locations, run);
        println!(
            "| PostgreSQL | {nodes} | {total:.0} | {:.0} |",
            total / nodes as f64
        );
    }

    println!();
    println!("stamps through the API (16 clients, request + 2 approvals each, {secs} s)");
    println!("| store | nodes | stamps/s |");
    println!("|---|---:|---:|");
    let single = stamps(None, 1, run);
    println!("| SQLite | 1 | {single:.1} |");
    for nodes in 1..=3 {
        let rate = stamps(Some(&database(&server)), nodes, run);
        println!("| PostgreSQL | {nodes} | {rate:.1} |");
    }
}

/// A new database on `server`.
fn database(server: &str) -> String {
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).expect("random");
    seald::store::create_postgres_database(server, &format!("bench_{}", hex::encode(random)))
        .expect("create database")
}

/// Usage records acknowledged per second by all of `locations` together (one store each).
fn appends(locations: &[StoreLocation], run: Duration) -> f64 {
    let logs: Vec<AuditLog> = locations
        .iter()
        .map(|l| {
            AuditLog::new(
                Arc::new(Store::open_at(l).expect("open store")),
                Arc::new(SystemClock),
            )
        })
        .collect();
    let stop = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for (n, log) in logs.iter().enumerate() {
            for t in 0..8 {
                let (stop, done) = (&stop, &done);
                scope.spawn(move || {
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let rec = NewRecord::new(
                            AuditKind::Note,
                            "bench",
                            None,
                            json!({ "node": n, "thread": t, "i": i }),
                        );
                        log.append(rec).expect("append");
                        done.fetch_add(1, Ordering::Relaxed);
                        i += 1;
                    }
                });
            }
        }
        std::thread::sleep(run);
        stop.store(true, Ordering::Relaxed);
    });
    let rate = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    let report = logs[0].verify().expect("verify");
    assert!(report.broken.is_none(), "chain broken: {report:?}");
    rate
}

/// Requests signed per second on `nodes` daemons over the store `postgres` (SQLite if None).
fn stamps(postgres: Option<&str>, nodes: usize, run: Duration) -> f64 {
    const DEVICE: &str = "model = \"cipher-machine\"\nparallel = 8";
    const MODULE: &str = "model = \"cipher-machine\"\nmax_sessions = 8";
    const OPEN: &str = "\n[api]\nrate_limit_per_second = 1000000\nrate_limit_burst = 1000000\n";
    let d = match postgres {
        Some(url) => Deployment::hsm_sim_on_postgres_with(url, "sansec", DEVICE, MODULE, "", OPEN),
        None => Deployment::hsm_sim_tuned("sansec", DEVICE, MODULE, OPEN),
    };
    let others: Vec<Daemon> = (1..nodes).map(|_| d.another_node("")).collect();
    let all: Vec<&Daemon> = std::iter::once(&d.daemon).chain(others.iter()).collect();
    for node in &all {
        d.login_custodian_at(node);
    }
    let stop = AtomicBool::new(false);
    let next = AtomicU64::new(0);
    let started = Instant::now();
    let ids: Vec<i64> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..16)
            .map(|_| {
                let (d, all, stop, next) = (&d, &all, &stop, &next);
                scope.spawn(move || {
                    let mut ids = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                        let id = d.ask_and_approve_spread(all, i, 5);
                        ids.push(id);
                    }
                    ids
                })
            })
            .collect();
        std::thread::sleep(run);
        stop.store(true, Ordering::Relaxed);
        clients
            .into_iter()
            .flat_map(|c| c.join().expect("client"))
            .collect()
    });
    let states = d.wait_all_final_at(all[0], &ids, Duration::from_secs(300));
    assert!(states.iter().all(|s| s == "signed"), "not all signed");
    ids.len() as f64 / started.elapsed().as_secs_f64()
}
