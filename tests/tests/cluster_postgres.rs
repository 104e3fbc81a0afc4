//! Several seald daemons on one PostgreSQL database, sharing a cipher machine (hsm-sim, one
//! key store reached by every node): any node takes requests and votes, each approved request
//! is signed exactly once by a node that has the token logged in, the usage log stays one
//! unforked chain, events reach every node's subscribers, and a node killed with SIGKILL in the
//! middle of a batch leaves its requests to another node once its lease runs out.
//!
//! The tests need the PostgreSQL server `scripts/test.sh` starts (`SEALD_TEST_POSTGRES`).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use seald_tests::bins::bin;
use seald_tests::daemon::Daemon;
use seald_tests::deployment::{Deployment, Who};
use seald_tests::postgres::fresh_database;
use seald_tests::stamping::digest;
use serde_json::{json, Value};

/// The cipher machine: 8 sessions signing in parallel, in hsm-sim and in seald's module.
const DEVICE: &str = "model = \"cipher-machine\"\nparallel = 8";
const MODULE: &str = "model = \"cipher-machine\"\nmax_sessions = 8";

/// A deployment whose store is a new PostgreSQL database, claims lasting `lease_secs`, the
/// first node's hsm-sim signing under `fault_file` if given. `None` without a server.
fn on_postgres(lease_secs: u64, fault_file: Option<&Path>) -> Option<(Deployment, String)> {
    let url = fresh_database()?;
    let mut extra = String::new();
    if let Some(fault) = fault_file {
        extra = format!("sign_fault_file = \"{}\"\n", fault.display());
    }
    let d = Deployment::hsm_sim_on_postgres_with(
        &url,
        "sansec",
        &format!("{extra}{DEVICE}"),
        MODULE,
        &format!("lease_secs = {lease_secs}\n"),
        // Rate limits are per node and per identity: these tests are the whole OA system.
        "\n[api]\nrate_limit_per_second = 100000\nrate_limit_burst = 100000\n",
    );
    Some((d, url))
}

/// Creates `n` requests for seal 1, each asked on one node and approved on the others
/// (round-robin over `nodes`); returns their ids in order. Eight clients at a time.
fn ask_and_approve(d: &Deployment, nodes: &[&Daemon], n: usize, tag: u8) -> Vec<i64> {
    let per_thread = n.div_ceil(8);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|t| {
                scope.spawn(move || {
                    let mut ids = Vec::new();
                    for i in (t * per_thread)..((t + 1) * per_thread).min(n) {
                        let id = d.ask_and_approve_spread(nodes, i, tag);
                        ids.push(id);
                    }
                    ids
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("client thread"))
            .collect()
    })
}

/// The request ids of the usage log's `signature` records, with how often each appears.
fn signature_records(d: &Deployment, node: &Daemon) -> HashMap<i64, usize> {
    let mut count = HashMap::new();
    let mut after = 0;
    loop {
        let r = d.call_at(
            node,
            "GET",
            &format!("/v1/audit?kind=signature&after={after}&limit=1000"),
            Some(Who::Auditor),
            None,
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let v = r.json();
        for record in v["records"].as_array().cloned().unwrap_or_default() {
            let id = record["detail"]["request_id"].as_i64().expect("request_id");
            *count.entry(id).or_insert(0) += 1;
        }
        match v["next_after"].as_i64() {
            Some(next) => after = next,
            None => return count,
        }
    }
}

/// `sealctl audit verify` against the database: the chain's report.
fn verify_chain(url: &str, data_dir: &Path) -> String {
    let out = Command::new(bin("sealctl"))
        .args(["audit", "--store", url, "verify"])
        .env("SEALD_DATA_DIR", data_dir)
        .output()
        .expect("run sealctl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "sealctl audit verify: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// Every request signed, each by exactly one `signature` record, the chain intact.
fn assert_signed_once(d: &Deployment, node: &Daemon, url: &str, ids: &[i64], states: &[String]) {
    let failed: Vec<_> = ids
        .iter()
        .zip(states)
        .filter(|(_, s)| s.as_str() != "signed")
        .collect();
    assert!(failed.is_empty(), "not signed: {failed:?}");
    let records = signature_records(d, node);
    let twice: Vec<_> = records.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "signed more than once: {twice:?}");
    let asked: HashSet<i64> = ids.iter().copied().collect();
    let recorded: HashSet<i64> = records.keys().copied().collect();
    assert_eq!(asked, recorded, "every acknowledged request has its record");
    let report = verify_chain(url, &d.demo_dir());
    assert!(report.contains("chain intact"), "{report}");
}

#[test]
fn three_nodes_sign_five_hundred_requests_each_exactly_once() {
    let Some((d, url)) = on_postgres(30, None) else {
        return;
    };
    let b = d.another_node("");
    let c = d.another_node("");
    for node in [&d.daemon, &b, &c] {
        d.login_custodian_at(node);
    }
    let nodes = [&d.daemon, &b, &c];
    let started = Instant::now();
    let ids = ask_and_approve(&d, &nodes, 500, 3);
    let states = d.wait_all_final_at(&c, &ids, Duration::from_secs(240));
    eprintln!(
        "500 requests asked, approved and signed on 3 nodes in {:?}",
        started.elapsed()
    );
    assert_signed_once(&d, &b, &url, &ids, &states);
    // The nodes shared the signing (each was asked to approve a third of the requests).
    for (name, node) in [("a", &d.daemon), ("b", &b), ("c", &c)] {
        let r = d.call_at(node, "GET", "/v1/stamp-requests/1", Some(Who::Client), None);
        assert_eq!(r.status, 200, "node {name} answers: {}", r.body);
    }
}

#[test]
fn two_nodes_share_requests_votes_and_events() {
    let Some((d, url)) = on_postgres(30, None) else {
        return;
    };
    let b = d.another_node("");
    // Only node b has the token logged in: node a takes requests and votes, b signs.
    d.login_custodian_at(&b);
    let mut events = NodeEvents(d.subscribe_at(&b, Who::Approver1));
    let id = d.request(1, &[digest(9, 1)]);
    let created = events.next_of("request-created", Duration::from_secs(10));
    assert_eq!(
        created["request_id"], id,
        "node a's request reached b's subscriber"
    );
    d.approve_both(id);
    let signed = events.next_of("request-signed", Duration::from_secs(30));
    assert_eq!(signed["request_id"], id);
    assert_eq!(d.wait_final(id)["state"], "signed");

    let nodes = [&d.daemon, &b];
    let ids = ask_and_approve(&d, &nodes, 200, 2);
    let states = d.wait_all_final_at(&d.daemon, &ids, Duration::from_secs(120));
    let mut all = ids.clone();
    all.push(id);
    let mut states = states;
    states.push("signed".into());
    assert_signed_once(&d, &d.daemon, &url, &all, &states);
}

/// Events of one node.
struct NodeEvents(seald_tests::sse::Events);

impl NodeEvents {
    /// The data of the next event named `name` (others skipped), bounded.
    fn next_of(&mut self, name: &str, limit: Duration) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let event = self
                .0
                .next_within(left)
                .unwrap_or_else(|| panic!("no {name} event within {limit:?}"));
            if event.name == name {
                return event.json();
            }
        }
    }
}

#[test]
fn a_node_killed_mid_batch_leaves_its_requests_to_another_after_its_lease() {
    // Node a's device never answers a signature (hsm-sim's fault file says "hang"), so its
    // workers hold their claims, renewing them, until a is killed with SIGKILL.
    let fault = tempfile::NamedTempFile::new().expect("fault file");
    std::fs::write(fault.path(), "hang").expect("fault");
    let Some((mut d, url)) = on_postgres(5, Some(fault.path())) else {
        return;
    };
    // Node b reaches the same key store without the fault.
    let clean_conf = clean_hsm_sim_conf(&d);
    let b = d.another_node_with_device("", &clean_conf);
    d.login_custodian_at(&d.daemon);
    let nodes = [&d.daemon];
    let ids = ask_and_approve(&d, &nodes, 40, 7);
    // Node a claimed them (b has no login yet, so it leaves them alone) and hangs in signing.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let approved = ids
            .iter()
            .filter(|id| {
                let r = d.call_at(
                    &b,
                    "GET",
                    &format!("/v1/stamp-requests/{id}"),
                    Some(Who::Client),
                    None,
                );
                r.json()["state"] == "approved"
            })
            .count();
        assert!(
            signature_records(&d, &b).is_empty(),
            "nothing can be signed while a hangs"
        );
        if approved == ids.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{approved} of {} approved",
            ids.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    d.login_custodian_at(&b);
    let killed_at = Instant::now();
    d.daemon.kill_hard();
    let states = d.wait_all_final_at(&b, &ids, Duration::from_secs(120));
    eprintln!(
        "40 requests finished by node b {:?} after node a was killed",
        killed_at.elapsed()
    );
    assert_signed_once(&d, &b, &url, &ids, &states);
}

/// A copy of the deployment's hsm-sim config without the fault file (same key store).
fn clean_hsm_sim_conf(d: &Deployment) -> PathBuf {
    let text = std::fs::read_to_string(d.hsm_sim_conf()).expect("hsm-sim config");
    let clean: String = text
        .lines()
        .filter(|l| !l.starts_with("sign_fault_file"))
        .map(|l| format!("{l}\n"))
        .collect();
    let path = d.demo_dir().join("hsm-sim-clean.toml");
    std::fs::write(&path, clean).expect("write config");
    path
}

/// Asks for, and has both approvers approve, a stamp on `node`, retrying each step while the
/// store is unavailable (503 `store_unavailable` or `unavailable`, never another failure);
/// returns the request id and how many answers were 503.
fn ask_through_outages(d: &Deployment, node: &Daemon, i: u32) -> (i64, usize) {
    let mut unavailable = 0;
    let mut call = |method: &str, path: &str, who: Who, body: Option<&Value>, ok: u16| {
        let mut retried = false;
        loop {
            let r = d.call_at(node, method, path, Some(who), body);
            if r.status == ok {
                return r;
            }
            // A vote whose commit's answer was lost with the connection may have been kept: its
            // retry finds the vote there (or the request approved by it).
            if retried
                && r.status == 409
                && ["already_voted", "invalid_state"]
                    .contains(&r.json()["code"].as_str().unwrap_or(""))
            {
                return r;
            }
            retried = true;
            assert_eq!(r.status, 503, "{method} {path}: {}", r.body);
            let message = r.json()["message"].as_str().unwrap_or_default().to_owned();
            assert!(
                message.contains("PostgreSQL") || message.contains("store"),
                "a 503 says what is wrong: {message}"
            );
            unavailable += 1;
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let body = json!({
        "seal_id": 1,
        "digests": [hex::encode(digest(11, i))],
        "document_name": format!("licence-{i}.pdf"),
        "purpose": "batch issuance",
    });
    let id = call("POST", "/v1/stamp-requests", Who::Client, Some(&body), 202).json()["id"]
        .as_i64()
        .expect("id");
    for who in [Who::Approver1, Who::Approver2] {
        call(
            "POST",
            &format!("/v1/stamp-requests/{id}/approve"),
            who,
            None,
            200,
        );
    }
    (id, unavailable)
}

#[test]
fn postgres_restarted_under_load_fails_clearly_and_the_nodes_recover_by_themselves() {
    // A server of its own: the shared one serves the other tests.
    let Some(server) = seald_tests::postgres::PrivateServer::start() else {
        return;
    };
    let url = seald::store::create_postgres_database(&server.url, "seald").expect("database");
    let d = Deployment::hsm_sim_on_postgres_with(
        &url,
        "sansec",
        DEVICE,
        MODULE,
        "",
        "\n[api]\nrate_limit_per_second = 100000\nrate_limit_burst = 100000\n",
    );
    let b = d.another_node("");
    d.login_custodian_at(&d.daemon);
    d.login_custodian_at(&b);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (ids, unavailable) = std::thread::scope(|scope| {
        let load: Vec<_> = [&d.daemon, &b]
            .into_iter()
            .enumerate()
            .map(|(n, node)| {
                let (d, stop) = (&d, &stop);
                scope.spawn(move || {
                    let mut ids = Vec::new();
                    let mut unavailable = 0;
                    let mut i = n as u32 * 10_000;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let (id, refused) = ask_through_outages(d, node, i);
                        ids.push(id);
                        unavailable += refused;
                        i += 1;
                    }
                    (ids, unavailable)
                })
            })
            .collect();
        std::thread::sleep(Duration::from_secs(2));
        server.down();
        std::thread::sleep(Duration::from_secs(3));
        server.up();
        std::thread::sleep(Duration::from_secs(3));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        load.into_iter()
            .map(|h| h.join().expect("load thread"))
            .fold((Vec::new(), 0), |(mut ids, n), (more, m)| {
                ids.extend(more);
                (ids, n + m)
            })
    });
    assert!(unavailable > 0, "the outage was seen by the clients");
    // Every request acknowledged, before, during or after the outage, is signed exactly once.
    let states = d.wait_all_final_at(&b, &ids, Duration::from_secs(120));
    assert_signed_once(&d, &d.daemon, &url, &ids, &states);
    eprintln!(
        "{} requests across a PostgreSQL restart; {unavailable} answers were 503 while it was down",
        ids.len()
    );
}
