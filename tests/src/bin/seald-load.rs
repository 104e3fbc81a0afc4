//! Load benchmark: how fast a token signs directly through `cryptoki`, and through seald.
//!
//! ```text
//! cargo build --release -p hsm-sim -p seald-tests
//! target/release/seald-load [--secs S] [--scenario NAME]
//! ```
//!
//! Each scenario runs in its own child process (a PKCS#11 library is initialised once per
//! process) and measures, taking turns on the same token and the same number of sessions:
//!
//! - `cryptoki`: a bare `C_Sign` loop, one thread per session (the device's own limit);
//! - `TokenKey::sign`: the daemon's device layer, through the `TokenOwner` session pool;
//! - `sign+verify`: `ses::sign_message`, i.e. e = SM3(Z ‖ M), device sign, software verify.
//!
//! The paths alternate in three rounds so drift in a shared machine's load hits them alike.
//!
//! More rows go through the real `seald` release binary over HTTP (see [`api_workloads`]):
//! (b) batches approved once and signed by the worker, (b') on hsm-sim the same batches as OFD
//! invoices uploaded and sealed (issue 15), (c) single stamps each with its own request and two
//! approvals. hsm-sim scenarios run them on a `seald demo` deployment, SoftHSM P-256 ones
//! on `Deployment::softhsm_p256` (a P-256 seal on the same SoftHSM store).
//!
//! It prints signatures/s, p50/p99 latency, CPU µs per op of this process and of the daemon, and
//! the ratio to the bare loop.

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cryptoki::mechanism::vendor_defined::VendorDefinedMechanism;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use seald::approval::PinMode;
use seald::config::ModuleConfig;
use seald::crypto::{KeyAlgorithm, PrehashSigner};
use seald::device::{DeviceModel, Devices, FinalTry, KeySelector, Pin, ProfileSetting, TokenKey};
use seald_tests::deployment::Deployment;
use seald_tests::hsmsim::{self, HsmSim};
use seald_tests::softhsm::{self, Curve, SoftHsm};
use secrecy::SecretString;

/// One measured operation, run by many workers at once.
pub trait Workload: Sync {
    /// Column label.
    fn name(&self) -> String;
    /// Does one operation as worker `worker` (0..workers).
    fn run(&self, worker: usize) -> Result<(), String>;
    /// Does one operation and returns its latency: by default the whole call; an API batch
    /// times only from its last approval to `signed`.
    fn run_timed(&self, worker: usize) -> Result<Duration, String> {
        let t = Instant::now();
        self.run(worker)?;
        Ok(t.elapsed())
    }
    /// Signatures one operation makes (a batch: its size); ops/s counts signatures.
    fn per_run(&self) -> usize {
        1
    }
    /// Workers for this workload, given the scenario's (single stamps run one at a time).
    fn workers(&self, scenario_workers: usize) -> usize {
        scenario_workers
    }
    /// User + system CPU of a separate process doing the work (the daemon), if any.
    fn other_cpu(&self) -> Option<Duration> {
        None
    }
    /// Anything to print under the table (a latency breakdown).
    fn notes(&self) -> Option<String> {
        None
    }
}

/// What one workload achieved.
#[derive(Debug, Clone)]
struct Figures {
    name: String,
    ops: usize,
    secs: f64,
    p50: Duration,
    p99: Duration,
    cpu_us_per_op: f64,
    /// The daemon's CPU per signature, for API workloads.
    daemon_cpu_us_per_op: Option<f64>,
}

impl Figures {
    fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.secs
    }
}

/// User + system CPU time of this process (the device, when it is an in-process module such as
/// SoftHSM or hsm-sim, counts too: compare rows, not absolute values).
fn cpu_time() -> Duration {
    // SAFETY: getrusage writes into the struct we pass; RUSAGE_SELF is always valid.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Latencies and CPU time of one or more timed runs of a workload.
#[derive(Debug, Default)]
struct Samples {
    latencies: Vec<Duration>,
    secs: f64,
    cpu: Duration,
    other_cpu: Option<Duration>,
}

/// Runs `workload` on `workers` threads for `secs` (after a short warm-up), adding to `into`.
fn measure(workload: &dyn Workload, workers: usize, secs: f64, into: &mut Samples) {
    let warm = Instant::now() + Duration::from_millis(100);
    std::thread::scope(|s| {
        for w in 0..workers {
            s.spawn(move || {
                while Instant::now() < warm {
                    workload.run_timed(w).expect("warm-up operation");
                }
            });
        }
    });
    let cpu0 = cpu_time();
    let other0 = workload.other_cpu();
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(secs);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                s.spawn(move || {
                    let mut own = Vec::new();
                    while Instant::now() < until {
                        own.push(workload.run_timed(w).expect("operation"));
                    }
                    own
                })
            })
            .collect();
        for h in handles {
            into.latencies.extend(h.join().expect("worker"));
        }
    });
    into.secs += start.elapsed().as_secs_f64();
    into.cpu += cpu_time() - cpu0;
    if let (Some(before), Some(after)) = (other0, workload.other_cpu()) {
        *into.other_cpu.get_or_insert(Duration::ZERO) += after - before;
    }
}

/// Runs every workload in turn, `ROUNDS` times, so drift in the machine's load (shared
/// cores) spreads over all of them alike; `secs` is the total per workload.
fn measure_all(workloads: &[Box<dyn Workload>], workers: usize, secs: f64) -> Vec<Figures> {
    const ROUNDS: usize = 3;
    let mut samples: Vec<Samples> = workloads.iter().map(|_| Samples::default()).collect();
    for _ in 0..ROUNDS {
        for (w, into) in workloads.iter().zip(&mut samples) {
            measure(w.as_ref(), w.workers(workers), secs / ROUNDS as f64, into);
        }
    }
    workloads
        .iter()
        .zip(samples)
        .map(|(w, mut s)| {
            s.latencies.sort_unstable();
            let n = s.latencies.len();
            let pct = |p: f64| s.latencies[((n as f64 * p) as usize).min(n - 1)];
            let ops = n * w.per_run();
            Figures {
                name: w.name(),
                ops,
                secs: s.secs,
                p50: pct(0.50),
                p99: pct(0.99),
                cpu_us_per_op: s.cpu.as_secs_f64() * 1e6 / ops as f64,
                daemon_cpu_us_per_op: s.other_cpu.map(|c| c.as_secs_f64() * 1e6 / ops as f64),
            }
        })
        .collect()
}

/// The bare loop: one session per worker, logged in (login is per token and process).
struct RawLoop {
    sessions: Vec<Mutex<Session>>,
    /// `None`: CKM_ECDSA; else the profile's vendor-defined raw SM2 sign.
    vendor_mechanism: Option<u64>,
    key: ObjectHandle,
    digest: [u8; 32],
}

impl Workload for RawLoop {
    fn name(&self) -> String {
        "cryptoki C_Sign".into()
    }
    fn run(&self, worker: usize) -> Result<(), String> {
        // Built per call, as the daemon does (a `Mechanism` is not `Sync`).
        let mechanism = match self.vendor_mechanism {
            None => Mechanism::Ecdsa,
            Some(code) => Mechanism::VendorDefined(VendorDefinedMechanism::new::<()>(
                MechanismType::new_vendor_defined(code).map_err(|e| e.to_string())?,
                None,
            )),
        };
        let session = self.sessions[worker].lock().expect("session lock");
        session
            .sign(&mechanism, self.key, &self.digest)
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

/// `TokenKey::sign` through the token owner's pool.
struct DeviceLayer {
    key: TokenKey,
    digest: [u8; 32],
}

impl Workload for DeviceLayer {
    fn name(&self) -> String {
        "TokenKey::sign".into()
    }
    fn run(&self, _: usize) -> Result<(), String> {
        self.key
            .sign(&self.digest)
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

/// What a stamp does around the device: e from a TBS-sized message, sign, verify in software.
struct SignVerify {
    key: Arc<TokenKey>,
    tbs: Vec<u8>,
}

impl Workload for SignVerify {
    fn name(&self) -> String {
        "sign+verify".into()
    }
    fn run(&self, _: usize) -> Result<(), String> {
        seald::ses::sign_message(self.key.as_ref(), &self.tbs)
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

/// Parts (b) and (c) of the load benchmark, over the daemon's HTTP API on a deployment whose
/// token has the scenario's device model and sessions: (b) batches of `scenario.batch` digests,
/// `sessions` of them at once; (c) single stamps one at a time. hsm-sim: a `seald demo`
/// deployment; SoftHSM: a P-256 seal on a new token of the same SoftHSM store as part (a)
/// ([`Deployment::softhsm_p256`]), the daemon's `[[module]]` a cipher machine with the
/// scenario's sessions, as part (a)'s device layer has.
fn api_workloads(scenario: &Scenario) -> Vec<Box<dyn Workload>> {
    // The benchmark is one client: lift the per-client rate limit.
    const UNLIMITED: &str =
        "\n[api]\nrate_limit_burst = 1000000\nrate_limit_per_second = 1000000\n";
    let deployment = match scenario.kind {
        Kind::SoftHsmP256 => Deployment::softhsm_p256(
            &format!(
                "model = \"cipher-machine\"\nmax_sessions = {}\n",
                scenario.sessions
            ),
            PinMode::Window { minutes: 480 },
            UNLIMITED,
        ),
        Kind::HsmSim(device, model) => {
            // The demo's hsm-sim token gets the scenario's device model; its profile stays the
            // demo's.
            let device: String = device
                .lines()
                .filter(|l| !l.starts_with("profile"))
                .map(|l| format!("{l}\n"))
                .collect();
            let module = match model {
                DeviceModel::Ukey => "model = \"ukey\"\n".to_owned(),
                DeviceModel::CipherMachine => format!(
                    "model = \"cipher-machine\"\nmax_sessions = {}\n",
                    scenario.sessions
                ),
            };
            Deployment::hsm_sim_tuned("sansec", &device, &module, UNLIMITED)
        }
    };
    let api = Arc::new(api::Api::start(deployment));
    let mut workloads: Vec<Box<dyn Workload>> = vec![Box::new(api::Batch {
        api: api.clone(),
        size: scenario.batch,
    })];
    if matches!(scenario.kind, Kind::HsmSim(..)) {
        // The same batch as OFD invoices to seal: uploaded, planned, approved, each file
        // sealed on the device and kept durably, beside the digest batch on the same token.
        workloads.push(Box::new(api::OfdBatch::new(api.clone(), scenario.batch)));
    }
    workloads.push(Box::new(api::Single {
        api,
        phases: Default::default(),
    }));
    workloads
}

/// A token and how the daemon drives it.
#[derive(Debug, Clone, Copy)]
struct Scenario {
    name: &'static str,
    what: &'static str,
    /// Sessions (= workers) on the token.
    sessions: usize,
    /// Least seconds per path, so slow devices still give enough samples for a p99.
    min_secs: f64,
    /// Digests per API batch request.
    batch: usize,
    kind: Kind,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    SoftHsmP256,
    /// hsm-sim with this config text.
    HsmSim(&'static str, DeviceModel),
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "softhsm-p256-1",
        what: "SoftHSM 2 ECDSA P-256, 1 session",
        sessions: 1,
        min_secs: 0.0,
        batch: 40,
        kind: Kind::SoftHsmP256,
    },
    Scenario {
        name: "softhsm-p256-2",
        what: "SoftHSM 2 ECDSA P-256, 2 sessions",
        sessions: 2,
        min_secs: 0.0,
        batch: 40,
        kind: Kind::SoftHsmP256,
    },
    Scenario {
        name: "hsmsim-ukey",
        what: "hsm-sim SM2 ukey, 80 ms/signature, 1 session",
        sessions: 1,
        min_secs: 10.0,
        batch: 10,
        kind: Kind::HsmSim(
            "profile = \"sansec\"\nmodel = \"ukey\"\nsign_latency_ms = 80",
            DeviceModel::Ukey,
        ),
    },
    Scenario {
        name: "hsmsim-cipher",
        what: "hsm-sim SM2 cipher-machine, 8 engines x 5 ms, 8 sessions",
        sessions: 8,
        min_secs: 0.0,
        batch: 40,
        kind: Kind::HsmSim(
            "profile = \"sansec\"\nmodel = \"cipher-machine\"\nparallel = 8\nsign_latency_ms = 5",
            DeviceModel::CipherMachine,
        ),
    },
];

/// Provisions the scenario's token and key; returns the devices, the serial and the user PIN.
fn provision(scenario: &Scenario) -> (&'static Devices, String, &'static str) {
    let id = b"load".to_vec();
    match scenario.kind {
        Kind::SoftHsmP256 => {
            let hsm = SoftHsm::shared_with(ModuleConfig {
                name: "softhsm".into(),
                path: softhsm::LIBRARY.into(),
                profile: None,
                model: DeviceModel::CipherMachine,
                max_sessions: scenario.sessions,
                api: Default::default(),
                skf: Default::default(),
                sdf: Default::default(),
                isolation: None,
                call_timeout_secs: 30,
            });
            let token = hsm.new_token("load");
            hsm.generate_key(&token, &id, Curve::P256);
            (&hsm.devices, token.serial, softhsm::USER_PIN)
        }
        Kind::HsmSim(config, model) => {
            let sim = HsmSim::shared_with_sessions(
                config,
                ProfileSetting::Named("sansec".into()),
                model,
                scenario.sessions,
            );
            let token = sim.new_token("load");
            sim.keygen(&token, &id);
            (&sim.devices, token.serial, hsmsim::USER_PIN)
        }
    }
}

fn run_scenario(scenario: &Scenario, secs: f64) -> (Vec<Figures>, Vec<String>) {
    let (devices, serial, pin) = provision(scenario);
    let owner = devices.token(&serial).expect("token owner");
    owner
        .login(&Pin::new(pin), FinalTry::Refuse)
        .expect("user login");
    let selector = KeySelector::Id(b"load".to_vec());
    let key = Arc::new(TokenKey::open(owner.clone(), selector).expect("open key"));
    let digest = [0x5au8; 32];

    // The bare loop opens its own sessions (the pool's stay idle meanwhile).
    let module = owner.module();
    let slot = module.find_slot(&serial).expect("slot");
    let sessions: Vec<Mutex<Session>> = (0..scenario.sessions)
        .map(|_| {
            Mutex::new(
                module
                    .context()
                    .expect("context")
                    .open_rw_session(slot)
                    .expect("session"),
            )
        })
        .collect();
    let first = sessions[0].lock().expect("session lock");
    match first.login(UserType::User, Some(&SecretString::from(pin.to_owned()))) {
        Ok(())
        | Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::UserAlreadyLoggedIn, _)) => {
        }
        Err(e) => panic!("login: {e}"),
    }
    let handle = first
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Id(b"load".to_vec()),
        ])
        .expect("find key")[0];
    drop(first);
    let vendor_mechanism = match key.public_key().algorithm {
        KeyAlgorithm::P256 => None,
        KeyAlgorithm::Sm2 => Some(module.profile(slot).expect("profile").sign_raw),
    };
    let raw = RawLoop {
        sessions,
        vendor_mechanism,
        key: handle,
        digest,
    };

    let mut workloads: Vec<Box<dyn Workload>> = vec![
        Box::new(raw),
        Box::new(DeviceLayer {
            key: TokenKey::open(owner.clone(), KeySelector::Id(b"load".to_vec())).expect("key"),
            digest,
        }),
        Box::new(SignVerify {
            key,
            tbs: vec![0x30; 2048],
        }),
    ];
    workloads.extend(api_workloads(scenario));
    let figures = measure_all(&workloads, scenario.sessions, secs.max(scenario.min_secs));
    let notes = workloads.iter().filter_map(|w| w.notes()).collect();
    (figures, notes)
}

fn print_table(scenario: &Scenario, figures: &[Figures]) {
    println!("\n## {} — {}\n", scenario.name, scenario.what);
    println!(
        "| path | signatures | ops/s | p50 ms | p99 ms | CPU µs/op (this process) | daemon CPU µs/op | ratio to cryptoki |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let base = figures[0].ops_per_sec();
    for f in figures {
        println!(
            "| {} | {} | {:.1} | {:.3} | {:.3} | {:.1} | {} | {:.3} |",
            f.name,
            f.ops,
            f.ops_per_sec(),
            f.p50.as_secs_f64() * 1e3,
            f.p99.as_secs_f64() * 1e3,
            f.cpu_us_per_op,
            f.daemon_cpu_us_per_op
                .map_or_else(|| "–".to_owned(), |c| format!("{c:.1}")),
            f.ops_per_sec() / base
        );
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut secs = 3.0;
    let mut only: Option<String> = None;
    let mut child = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--secs" => secs = args.next().and_then(|s| s.parse().ok()).expect("--secs N"),
            "--scenario" => only = args.next(),
            "--child" => child = true,
            _ => {
                eprintln!(
                    "usage: seald-load [--secs S] [--scenario {}]",
                    SCENARIOS
                        .iter()
                        .map(|s| s.name)
                        .collect::<Vec<_>>()
                        .join("|")
                );
                std::process::exit(2);
            }
        }
    }
    let chosen: Vec<&Scenario> = SCENARIOS
        .iter()
        .filter(|s| only.as_deref().is_none_or(|o| o == s.name))
        .collect();
    if chosen.is_empty() {
        eprintln!("no scenario named {only:?}");
        std::process::exit(2);
    }
    if child {
        for scenario in chosen {
            let (figures, notes) = run_scenario(scenario, secs);
            print_table(scenario, &figures);
            for note in notes {
                println!("\n{note}");
            }
        }
        return;
    }
    println!("# seald-load: {secs} s per path (3 alternating rounds), workers = sessions");
    let exe = std::env::current_exe().expect("own path");
    for scenario in chosen {
        // A fresh process per scenario: each PKCS#11 library initialises once per process.
        let status = Command::new(&exe)
            .args([
                "--child",
                "--secs",
                &secs.to_string(),
                "--scenario",
                scenario.name,
            ])
            .status()
            .expect("run scenario");
        assert!(status.success(), "scenario {} failed", scenario.name);
    }
}

/// Parts (b) and (c): the real `seald` release binary on a provisioned deployment, driven over
/// HTTP as its client, approvers and custodian would.
mod api {
    use std::collections::HashMap;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpStream;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::{Arc, Condvar, Mutex};
    use std::time::{Duration, Instant};

    use seald_tests::deployment::{Deployment, Who};
    use seald_tests::stamping::digest;

    use super::Workload;

    /// When each request reached `signed` (or why it failed), as `/v1/events` announced it.
    #[derive(Debug, Default)]
    struct Outcomes {
        done: Mutex<HashMap<i64, Result<Instant, String>>>,
        changed: Condvar,
    }

    impl Outcomes {
        /// Blocks (bounded) until request `id` is final; returns when it was signed.
        fn wait(&self, id: i64) -> Result<Instant, String> {
            let deadline = Instant::now() + Duration::from_secs(120);
            let mut done = self.done.lock().expect("outcomes lock");
            loop {
                if let Some(outcome) = done.remove(&id) {
                    return outcome;
                }
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(format!("request {id} not final after 120 s"));
                }
                done = self
                    .changed
                    .wait_timeout(done, left)
                    .expect("outcomes lock")
                    .0;
            }
        }
    }

    /// A running daemon on a demo deployment, its custodian logged in, and an event listener.
    #[derive(Debug)]
    pub struct Api {
        deployment: Deployment,
        outcomes: Arc<Outcomes>,
        /// The daemon's CPU use when idle (logged in, nothing to do), in cores.
        pub idle_cpu_share: f64,
        /// Makes every digest distinct.
        counter: AtomicU32,
    }

    impl Api {
        /// Takes over a running deployment and logs its custodian in.
        pub fn start(deployment: Deployment) -> Self {
            deployment.login_custodian();
            let outcomes = Arc::new(Outcomes::default());
            listen(&deployment, outcomes.clone());
            let mut api = Self {
                deployment,
                outcomes,
                idle_cpu_share: 0.0,
                counter: AtomicU32::new(0),
            };
            // What the daemon burns doing nothing counts in every CPU-per-stamp figure.
            std::thread::sleep(Duration::from_millis(500));
            let (cpu0, t0) = (api.daemon_cpu(), Instant::now());
            std::thread::sleep(Duration::from_secs(2));
            api.idle_cpu_share =
                (api.daemon_cpu() - cpu0).as_secs_f64() / t0.elapsed().as_secs_f64();
            api
        }

        /// User + system CPU of the daemon so far, from `/proc/PID/stat`.
        fn daemon_cpu(&self) -> Duration {
            let (user, system) = self.daemon_cpu_split();
            user + system
        }

        /// User and system CPU of the daemon so far.
        fn daemon_cpu_split(&self) -> (Duration, Duration) {
            let stat =
                std::fs::read_to_string(format!("/proc/{}/stat", self.deployment.daemon.pid()))
                    .expect("daemon stat");
            // Fields after the `(comm)`: state is field 3, utime 14, stime 15.
            let rest = &stat[stat.rfind(')').expect("stat comm") + 2..];
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let ticks = |i: usize| fields[i - 3].parse::<u64>().expect("stat field");
            // SAFETY: sysconf has no preconditions.
            let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
            let time = |i: usize| Duration::from_micros(ticks(i) * 1_000_000 / hz);
            (time(14), time(15))
        }

        /// The client asks for `n` new digests with the deployment's seal; the request id.
        fn request(&self, n: usize) -> Result<i64, String> {
            let digests: Vec<[u8; 32]> = (0..n)
                .map(|_| digest(0xb0, self.counter.fetch_add(1, Ordering::Relaxed)))
                .collect();
            let r = self
                .deployment
                .request_as(Who::Client, self.deployment.seal_id, &digests);
            if r.status != 202 {
                return Err(format!("request: {} {}", r.status, r.body));
            }
            r.json()["id"].as_i64().ok_or("request: no id".into())
        }

        fn approve(&self, id: i64, who: Who) -> Result<(), String> {
            let r = self.deployment.call(
                "POST",
                &format!("/v1/stamp-requests/{id}/approve"),
                Some(who),
                None,
            );
            if r.status != 200 {
                return Err(format!("approve: {} {}", r.status, r.body));
            }
            Ok(())
        }
    }

    /// Follows `/v1/events` on a thread of its own, recording `request-signed` and
    /// `request-failed` in `outcomes`; returns once subscribed.
    fn listen(deployment: &Deployment, outcomes: Arc<Outcomes>) {
        let mut stream = TcpStream::connect(deployment.daemon.authority()).expect("connect events");
        write!(
            stream,
            "GET /v1/events HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nAccept: text/event-stream\r\n\r\n",
            deployment.daemon.authority(),
            deployment.token(Who::Client)
        )
        .expect("send events request");
        let mut reader = BufReader::new(stream);
        let mut status = String::new();
        reader.read_line(&mut status).expect("events status");
        assert!(status.contains(" 200 "), "events: {status}");
        std::thread::spawn(move || {
            for line in reader.lines() {
                let Ok(line) = line else { return };
                // Chunk-size lines of the chunked encoding are skipped with everything else.
                let Some(data) = line.strip_prefix("data:") else {
                    continue;
                };
                let Ok(event) = serde_json::from_str::<serde_json::Value>(data.trim()) else {
                    continue;
                };
                let Some(id) = event["request_id"].as_i64() else {
                    continue;
                };
                let outcome = match event["type"].as_str() {
                    Some("request-signed") => Ok(Instant::now()),
                    Some("request-failed") => Err(format!("request {id} failed: {event}")),
                    _ => continue,
                };
                outcomes
                    .done
                    .lock()
                    .expect("outcomes lock")
                    .insert(id, outcome);
                outcomes.changed.notify_all();
            }
        });
    }

    /// (b): one request for `size` digests, approved by both approvers, signed by the worker.
    /// Latency is from the second approval to `signed`; workers are concurrent batches.
    #[derive(Debug)]
    pub struct Batch {
        pub api: Arc<Api>,
        pub size: usize,
    }

    impl Workload for Batch {
        fn name(&self) -> String {
            format!("API batch ×{} (latency per batch)", self.size)
        }
        fn run(&self, worker: usize) -> Result<(), String> {
            self.run_timed(worker).map(drop)
        }
        fn run_timed(&self, _: usize) -> Result<Duration, String> {
            let id = self.api.request(self.size)?;
            self.api.approve(id, Who::Approver1)?;
            let t = Instant::now();
            self.api.approve(id, Who::Approver2)?;
            Ok(self.api.outcomes.wait(id)? - t)
        }
        fn per_run(&self) -> usize {
            self.size
        }
        fn other_cpu(&self) -> Option<Duration> {
            Some(self.api.daemon_cpu())
        }
    }

    /// (b'): one request uploading `size` OFD invoices (5 pages each, ~20 KiB, each distinct),
    /// a stamp at a position on page 1 of each, approved by both approvers; the worker checks
    /// each upload's SM3 and seals it on the device. Latency from the second approval to
    /// `signed` (every sealed file durable); ops/s counts sealed files and includes the
    /// upload and planning, as the digest batch's includes its request.
    #[derive(Debug)]
    pub struct OfdBatch {
        pub api: Arc<Api>,
        pub size: usize,
        files: Vec<(String, Vec<u8>)>,
    }

    impl OfdBatch {
        /// Generates the invoices once.
        pub fn new(api: Arc<Api>, size: usize) -> Self {
            let files = (0..size)
                .map(|i| {
                    let bytes = seald::ofd::sample::Sample::invoice_like(5)
                        .line(1, 20.0, 285.0, 3.0, &format!("发票号码 {i:08}"))
                        .build();
                    (format!("invoice-{i}.ofd"), bytes)
                })
                .collect();
            Self { api, size, files }
        }
    }

    impl Workload for OfdBatch {
        fn name(&self) -> String {
            format!(
                "API OFD batch ×{} (5-page invoices; latency per batch)",
                self.size
            )
        }
        fn run(&self, worker: usize) -> Result<(), String> {
            self.run_timed(worker).map(drop)
        }
        fn run_timed(&self, _: usize) -> Result<Duration, String> {
            let d = &self.api.deployment;
            let files: Vec<(&str, &[u8])> = self
                .files
                .iter()
                .map(|(n, b)| (n.as_str(), b.as_slice()))
                .collect();
            let request = serde_json::json!({
                "seal_id": d.seal_id,
                "purpose": "load",
                "placements": [{ "kind": "at", "page": 1, "x": 150, "y": 20 }],
            });
            let r = d.upload(Who::Client, &request, &files);
            if r.status != 202 {
                return Err(format!("upload: {} {}", r.status, r.body));
            }
            let id = r.json()["id"].as_i64().ok_or("upload: no id")?;
            self.api.approve(id, Who::Approver1)?;
            let t = Instant::now();
            self.api.approve(id, Who::Approver2)?;
            Ok(self.api.outcomes.wait(id)? - t)
        }
        fn per_run(&self) -> usize {
            self.size
        }
        fn other_cpu(&self) -> Option<Duration> {
            Some(self.api.daemon_cpu())
        }
    }

    /// (c): one digest per request, request → 2 approvals → `signed`, one at a time.
    #[derive(Debug)]
    pub struct Single {
        pub api: Arc<Api>,
        /// Per stamp: request, first approval, second approval, second approval → `signed`,
        /// then the daemon's user and system CPU over the stamp.
        pub phases: Mutex<Vec<[Duration; 6]>>,
    }

    impl Workload for Single {
        fn name(&self) -> String {
            "API single (request→signed, 1 worker)".into()
        }
        fn run(&self, worker: usize) -> Result<(), String> {
            self.run_timed(worker).map(drop)
        }
        fn run_timed(&self, _: usize) -> Result<Duration, String> {
            let (user0, system0) = self.api.daemon_cpu_split();
            let t0 = Instant::now();
            let id = self.api.request(1)?;
            let t1 = Instant::now();
            self.api.approve(id, Who::Approver1)?;
            let t2 = Instant::now();
            self.api.approve(id, Who::Approver2)?;
            let t3 = Instant::now();
            let signed = self.api.outcomes.wait(id)?;
            let (user1, system1) = self.api.daemon_cpu_split();
            self.phases.lock().expect("phases lock").push([
                t1 - t0,
                t2 - t1,
                t3 - t2,
                signed - t3,
                user1 - user0,
                system1 - system0,
            ]);
            Ok(signed - t0)
        }
        fn notes(&self) -> Option<String> {
            let mut phases = self.phases.lock().expect("phases lock");
            let n = phases.len();
            if n == 0 {
                return None;
            }
            let names = [
                "POST /v1/stamp-requests",
                "approve (1st)",
                "approve (2nd)",
                "2nd approval answered → signed event",
                "daemon user CPU (clock ticks, so a mean)",
                "daemon system CPU (mean)",
            ];
            let mut out = format!(
                "API single, median per phase ({n} stamps; daemon idle CPU {:.1} % of a core):\n",
                self.api.idle_cpu_share * 100.0
            );
            for (i, name) in names.iter().enumerate() {
                if i >= 4 {
                    let sum: Duration = phases.iter().map(|p| p[i]).sum();
                    out += &format!("- {name}: {:.3} ms\n", sum.as_secs_f64() * 1e3 / n as f64);
                    continue;
                }
                phases.sort_unstable_by_key(|p| p[i]);
                out += &format!("- {name}: {:.3} ms\n", phases[n / 2][i].as_secs_f64() * 1e3);
            }
            Some(out)
        }
        fn workers(&self, _: usize) -> usize {
            1
        }
        fn other_cpu(&self) -> Option<Duration> {
            Some(self.api.daemon_cpu())
        }
    }
}
