//! A whole deployment for API tests: `seald demo --setup-only` makes an hsm-sim token with a CA,
//! maker and seal keys, a store with identities, seals and policies and a config; the real
//! `seald` then runs on it as a child with its own `HSM_SIM_CONF`.
//!
//! [`Deployment::softhsm_p256`] builds the same shape by hand for a P-256 seal key on SoftHSM
//! (which `seald demo` does not provision): the daemon runs with the shared store's
//! `SOFTHSM2_CONF`; [`Deployment::softhsm_p256_revocable`] does the same with certificates
//! a [`TestCa`] answers OCSP and CRL requests for.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use seald::approval::{PinMode, Policy};
use seald::cert::testing::{issue, name, CertSpec};
use seald::cert::{Certificate, TrustStore};
use seald::clock::{Clock, SystemClock};
use seald::crypto::soft::SoftSigner;
use seald::crypto::{KeyAlgorithm, PrehashSigner};
use seald::device::{KeySelector, TokenKey};
use seald::identity::{Caller, Role};
use seald::seal::{NewSeal, SealMaker};
use seald::services::Services;
use seald::store::model::SealKind;
use serde_json::Value;

use crate::bins::bin;
use crate::daemon::{Daemon, RawResponse};
use crate::revocation::TestCa;
use crate::softhsm::{Curve, SoftHsm, LIBRARY, USER_PIN};
use crate::sse::Events;

/// The demo token's serial.
pub const SERIAL: &str = "DEMOUKEY00000001";

/// The serial of the SoftHSM deployment's maker certificate.
pub const MAKER_CERT_SERIAL: u64 = 8;

/// The serial of the SoftHSM deployment's seal certificate.
pub const SEAL_CERT_SERIAL: u64 = 9;

/// The secret scalar of the SoftHSM deployment's P-256 root: the key
/// `SoftSigner::from_seed(KeyAlgorithm::P256, 40)` makes (see its derivation).
const ROOT_SECRET: [u8; 32] = {
    let mut secret = [0x11u8; 32];
    secret[0] = 0x01;
    secret[31] = 40;
    secret
};

/// The device model line `seald demo` writes in both hsm-sim's config and the daemon's.
const DEMO_MODEL: &str = "model = \"ukey\"";

/// A provisioned deployment and its running daemon.
#[derive(Debug)]
pub struct Deployment {
    /// The demo directory.
    pub dir: tempfile::TempDir,
    /// The running daemon.
    pub daemon: Daemon,
    /// Tokens by variable name (`CLIENT_TOKEN`, `APPROVER1_TOKEN`, …).
    pub tokens: HashMap<String, String>,
    /// The seal the client asks for (the demo's seal 1; the SoftHSM deployment's only seal).
    pub seal_id: i64,
    /// The serial of the token holding that seal's key.
    pub serial: String,
    /// Where the store, `seald.toml` and `login.json` are (the demo directory for hsm-sim).
    home: PathBuf,
    config_text: String,
    /// The device's config for the daemon: `HSM_SIM_CONF` or `SOFTHSM2_CONF`, and its path.
    device_env: (&'static str, PathBuf),
}

/// The roles of the demo identities.
#[derive(Debug, Clone, Copy)]
pub enum Who {
    /// demo-client.
    Client,
    /// alice.
    Approver1,
    /// bob.
    Approver2,
    /// carol.
    Custodian,
    /// audrey.
    Auditor,
    /// dave: client and approver (seal 2 lets him ask and approve).
    Dual,
    /// erin: admin (seal states).
    Admin,
}

impl Who {
    fn var(self) -> &'static str {
        match self {
            Who::Client => "CLIENT_TOKEN",
            Who::Approver1 => "APPROVER1_TOKEN",
            Who::Approver2 => "APPROVER2_TOKEN",
            Who::Custodian => "CUSTODIAN_TOKEN",
            Who::Auditor => "AUDITOR_TOKEN",
            Who::Dual => "DUAL_TOKEN",
            Who::Admin => "ADMIN_TOKEN",
        }
    }
}

/// Runs `seald demo --setup-only` into `dir`; returns its stdout.
pub fn provision(dir: &Path, profile: &str) {
    provision_on(dir, profile, None)
}

/// [`provision`] with the store on the PostgreSQL database `store` when given.
pub fn provision_on(dir: &Path, profile: &str, store: Option<&str>) {
    let mut command = Command::new(bin("seald"));
    if let Some(url) = store {
        command.args(["demo", "--store", url]);
    } else {
        command.arg("demo");
    }
    let out = command
        .args([
            "--setup-only",
            "--extra-seals",
            "--listen",
            "127.0.0.1:0",
            "--profile",
            profile,
            "--dir",
        ])
        .arg(dir)
        .output()
        .expect("run seald demo");
    assert!(
        out.status.success(),
        "seald demo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Deployment {
    /// Provisions with hsm-sim's `profile` (`sansec` raw, `tass` DER) and starts the daemon.
    pub fn hsm_sim(profile: &str) -> Self {
        Self::hsm_sim_with(profile, "")
    }

    /// Like [`Deployment::hsm_sim`], with `extra` TOML appended to the daemon's config.
    pub fn hsm_sim_with(profile: &str, extra: &str) -> Self {
        Self::build(profile, extra, |_| {}, &[], false)
    }

    /// Like [`Deployment::hsm_sim_with`]; `prepare` runs on the provisioned demo directory
    /// before the daemon starts (to change the hsm-sim config, eject the token, …) and `env`
    /// is added to the daemon's environment. The daemon's log is kept (`daemon.log()`).
    pub fn hsm_sim_prepared(
        profile: &str,
        extra: &str,
        prepare: impl FnOnce(&Path),
        env: &[(&str, &Path)],
    ) -> Self {
        Self::build(profile, extra, prepare, env, true)
    }

    /// Like [`Deployment::hsm_sim_with`], with the daemon's log kept (`self.daemon.log()`).
    pub fn hsm_sim_logged(profile: &str, extra: &str) -> Self {
        Self::build(profile, extra, |_| {}, &[], true)
    }

    /// Like [`Deployment::hsm_sim_with`], with the demo's `model = "ukey"` line replaced by
    /// `device` in hsm-sim's config (e.g. `model = "cipher-machine"\nparallel = 8`) and by
    /// `module` in the daemon's `[[module]]` (e.g. `model = "cipher-machine"\nmax_sessions = 8`).
    pub fn hsm_sim_tuned(profile: &str, device: &str, module: &str, extra: &str) -> Self {
        let tune = |demo: &Path| {
            replace_model(&demo.join("hsm-sim.toml"), device);
            replace_model(&demo.join("seald.toml"), module);
        };
        Self::build(profile, extra, tune, &[], false)
    }

    /// Like [`Deployment::hsm_sim_tuned`], with the store on the PostgreSQL database `store`,
    /// `postgres` added to the config's `[postgres]` table, `extra` TOML appended, and the
    /// daemon's log kept.
    pub fn hsm_sim_on_postgres_with(
        store: &str,
        profile: &str,
        device: &str,
        module: &str,
        postgres: &str,
        extra: &str,
    ) -> Self {
        let tune = |demo: &Path| {
            replace_model(&demo.join("hsm-sim.toml"), device);
            replace_model(&demo.join("seald.toml"), module);
            let config = demo.join("seald.toml");
            let text = std::fs::read_to_string(&config).expect("config");
            let text = text.replacen("[postgres]\n", &format!("[postgres]\n{postgres}"), 1);
            std::fs::write(&config, text).expect("write config");
        };
        Self::build_on(Some(store), profile, extra, tune, &[], true)
    }

    fn build(
        profile: &str,
        extra: &str,
        prepare: impl FnOnce(&Path),
        env: &[(&str, &Path)],
        logged: bool,
    ) -> Self {
        Self::build_on(None, profile, extra, prepare, env, logged)
    }

    fn build_on(
        store: Option<&str>,
        profile: &str,
        extra: &str,
        prepare: impl FnOnce(&Path),
        env: &[(&str, &Path)],
        logged: bool,
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let demo = dir.path().join("demo");
        provision_on(&demo, profile, store);
        prepare(&demo);
        let config_text = std::fs::read_to_string(demo.join("seald.toml")).expect("config") + extra;
        let hsm_sim_conf = demo.join("hsm-sim.toml");
        let tokens = std::fs::read_to_string(demo.join("tokens.env"))
            .expect("tokens")
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let mut daemon_env = vec![("HSM_SIM_CONF", hsm_sim_conf.as_path())];
        daemon_env.extend_from_slice(env);
        let daemon = if logged {
            Daemon::start_logged(&config_text, &daemon_env)
        } else {
            Daemon::start(&config_text, &daemon_env)
        };
        Self {
            dir,
            daemon,
            tokens,
            seal_id: 1,
            serial: SERIAL.to_owned(),
            home: demo,
            config_text,
            device_env: ("HSM_SIM_CONF", hsm_sim_conf),
        }
    }

    /// The deployment's directory: the demo directory, or the SoftHSM deployment's equivalent.
    pub fn demo_dir(&self) -> PathBuf {
        self.home.clone()
    }

    /// The store file.
    pub fn store(&self) -> PathBuf {
        self.demo_dir().join("seald.db")
    }

    /// The hsm-sim config.
    pub fn hsm_sim_conf(&self) -> &Path {
        assert_eq!(
            self.device_env.0, "HSM_SIM_CONF",
            "not an hsm-sim deployment"
        );
        &self.device_env.1
    }

    /// Starts another daemon on the same store, token and config, with `extra` TOML appended;
    /// its log is kept.
    pub fn another_node(&self, extra: &str) -> Daemon {
        let (var, path) = &self.device_env;
        Daemon::start_logged(&format!("{}{extra}", self.config_text), &[(var, path)])
    }

    /// [`Deployment::another_node`] whose device config is `device_conf` (the same kind of
    /// device as the deployment's, e.g. hsm-sim's config without a fault).
    pub fn another_node_with_device(&self, extra: &str, device_conf: &Path) -> Daemon {
        let (var, _) = &self.device_env;
        Daemon::start_logged(
            &format!("{}{extra}", self.config_text),
            &[(var, device_conf)],
        )
    }

    /// Stops the daemon and starts a new one on the same store and token.
    pub fn restart(&mut self) {
        let (var, path) = &self.device_env;
        let new = Daemon::start(&self.config_text, &[(var, path)]);
        self.daemon = new; // the old one is killed on drop
    }

    /// Stops the daemon and starts a new one on the same store and token with the config
    /// `edit` makes of the current one (the token's login belonged to the old process).
    pub fn restart_with_config(&mut self, edit: impl FnOnce(&str) -> String) {
        self.config_text = edit(&self.config_text);
        self.restart();
    }

    /// The bearer token of `who`.
    pub fn token(&self, who: Who) -> &str {
        &self.tokens[who.var()]
    }

    /// Sends a JSON request as `who` (or anonymously).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        who: Option<Who>,
        body: Option<&Value>,
    ) -> RawResponse {
        self.call_at(&self.daemon, method, path, who, body)
    }

    /// [`Deployment::call`] on `daemon` (another node of the deployment's store).
    pub fn call_at(
        &self,
        daemon: &Daemon,
        method: &str,
        path: &str,
        who: Option<Who>,
        body: Option<&Value>,
    ) -> RawResponse {
        let auth = who.map(|w| format!("Bearer {}", self.token(w)));
        let mut headers: Vec<(&str, &str)> = Vec::new();
        if let Some(auth) = &auth {
            headers.push(("Authorization", auth));
        }
        let bytes = body.map(|b| serde_json::to_vec(b).expect("json"));
        if bytes.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        daemon.raw(method, path, &headers, bytes.as_deref())
    }

    /// Logs the custodian in with the PIN from the deployment's 0600 `login.json`.
    pub fn login_custodian(&self) {
        self.login_custodian_at(&self.daemon)
    }

    /// [`Deployment::login_custodian`] on `daemon` (a token login is per node).
    pub fn login_custodian_at(&self, daemon: &Daemon) {
        let body: Value = serde_json::from_slice(
            &std::fs::read(self.demo_dir().join("login.json")).expect("login.json"),
        )
        .expect("login json");
        let r = self.call_at(
            daemon,
            "POST",
            &format!("/v1/devices/{}/login", self.serial),
            Some(Who::Custodian),
            Some(&body),
        );
        assert!(
            r.status == 200 || r.json()["code"] == "already_logged_in",
            "login: {} {}",
            r.status,
            r.body
        );
    }

    /// Subscribes to `GET /v1/events` as `who` (bounded reads).
    pub fn subscribe(&self, who: Who) -> Events {
        self.subscribe_after(who, None)
    }

    /// Subscribes as `who`, resuming after the SSE id `last_event_id` if given.
    pub fn subscribe_after(&self, who: Who, last_event_id: Option<&str>) -> Events {
        self.subscribe_to(&self.daemon, who, last_event_id)
    }

    /// [`Deployment::subscribe`] to the events of `daemon` (another node of the store).
    pub fn subscribe_at(&self, daemon: &Daemon, who: Who) -> Events {
        self.subscribe_to(daemon, who, None)
    }

    fn subscribe_to(&self, daemon: &Daemon, who: Who, last_event_id: Option<&str>) -> Events {
        let (tx, rx) = mpsc::channel::<String>();
        let mut stream = std::net::TcpStream::connect(daemon.authority()).expect("connect");
        let resume = last_event_id
            .map(|id| format!("Last-Event-ID: {id}\r\n"))
            .unwrap_or_default();
        write!(
            stream,
            "GET /v1/events HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nAccept: text/event-stream\r\n{resume}\r\n",
            daemon.authority(),
            self.token(who)
        )
        .expect("send");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let head = rx.recv_timeout(Duration::from_secs(10)).expect("SSE head");
        assert!(head.contains("200"), "{head}");
        while let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            if line.is_empty() {
                break;
            }
        }
        Events::new(rx)
    }

    /// The custodian tries to log the seal's token in with `pin`; the raw answer.
    pub fn login_attempt(&self, pin: &str) -> RawResponse {
        self.call(
            "POST",
            &format!("/v1/devices/{}/login", self.serial),
            Some(Who::Custodian),
            Some(&serde_json::json!({ "pin": pin })),
        )
    }

    /// Logs the custodian in with `pin` (or finds the token already logged in).
    pub fn login_custodian_with(&self, pin: &str) {
        let r = self.login_attempt(pin);
        assert!(
            r.status == 200 || r.json()["code"] == "already_logged_in",
            "login: {} {}",
            r.status,
            r.body
        );
    }

    /// `who` asks for a stamp of `digests` with `seal`; the raw answer.
    pub fn request_as(&self, who: Who, seal: i64, digests: &[[u8; 32]]) -> RawResponse {
        let hex: Vec<String> = digests.iter().map(hex::encode).collect();
        self.call(
            "POST",
            "/v1/stamp-requests",
            Some(who),
            Some(&serde_json::json!({ "seal_id": seal, "digests": hex, "document_name": "contract.pdf", "purpose": "test" })),
        )
    }

    /// The client asks for a stamp of `digests` with `seal`; returns the request id.
    pub fn request(&self, seal: i64, digests: &[[u8; 32]]) -> i64 {
        let r = self.request_as(Who::Client, seal, digests);
        assert_eq!(r.status, 202, "{}", r.body);
        r.json()["id"].as_i64().expect("id")
    }

    /// Waits (up to 60 s) for a request to be pending for the first approver (e.g. one a
    /// `sealctl stamp` running beside the test makes), then has both approve it; its id.
    pub fn approve_when_pending(&self) -> i64 {
        let deadline = Instant::now() + Duration::from_secs(60);
        let id = loop {
            let r = self.call(
                "GET",
                "/v1/stamp-requests?state=pending",
                Some(Who::Approver1),
                None,
            );
            if let Some(id) = r.json()["requests"][0]["id"].as_i64() {
                break id;
            }
            assert!(Instant::now() < deadline, "no request came");
            std::thread::sleep(Duration::from_millis(100));
        };
        self.approve_both(id);
        id
    }

    /// Both approvers approve request `id`.
    pub fn approve_both(&self, id: i64) {
        for who in [Who::Approver1, Who::Approver2] {
            let r = self.call(
                "POST",
                &format!("/v1/stamp-requests/{id}/approve"),
                Some(who),
                None,
            );
            assert_eq!(r.status, 200, "{}", r.body);
        }
    }

    /// Waits (bounded) until request `id` is final; returns it.
    pub fn wait_final(&self, id: i64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = self.call(
                "GET",
                &format!("/v1/stamp-requests/{id}"),
                Some(Who::Client),
                None,
            );
            assert_eq!(r.status, 200, "{}", r.body);
            let v = r.json();
            let state = v["state"].as_str().unwrap_or_default().to_owned();
            if ["signed", "failed", "rejected", "expired"].contains(&state.as_str()) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "request {id} still {state} after 60 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Request `i` of a batch spread over `nodes` (daemons of one store): asked for seal 1
    /// with digest `(tag, i)` on node `i % k`, approved by the two approvers on the next two
    /// nodes round-robin; returns its id.
    pub fn ask_and_approve_spread(&self, nodes: &[&Daemon], i: usize, tag: u8) -> i64 {
        let k = nodes.len();
        let r = self.call_at(
            nodes[i % k],
            "POST",
            "/v1/stamp-requests",
            Some(Who::Client),
            Some(&serde_json::json!({
                "seal_id": 1,
                "digests": [hex::encode(crate::stamping::digest(tag, i as u32))],
                "document_name": format!("licence-{i}.pdf"),
                "purpose": "batch issuance",
            })),
        );
        assert_eq!(r.status, 202, "ask on node {}: {}", i % k, r.body);
        let id = r.json()["id"].as_i64().expect("id");
        for (j, who) in [Who::Approver1, Who::Approver2].into_iter().enumerate() {
            let r = self.call_at(
                nodes[(i + j + 1) % k],
                "POST",
                &format!("/v1/stamp-requests/{id}/approve"),
                Some(who),
                None,
            );
            assert_eq!(r.status, 200, "approve {id}: {}", r.body);
        }
        id
    }

    /// Waits (up to `limit`) until none of `ids` is pending or approved, asking `node`;
    /// returns their states, in order.
    pub fn wait_all_final_at(&self, node: &Daemon, ids: &[i64], limit: Duration) -> Vec<String> {
        let deadline = Instant::now() + limit;
        let mut states = HashMap::new();
        loop {
            for id in ids {
                if states.contains_key(id) {
                    continue;
                }
                let r = self.call_at(
                    node,
                    "GET",
                    &format!("/v1/stamp-requests/{id}"),
                    Some(Who::Client),
                    None,
                );
                assert_eq!(r.status, 200, "{}", r.body);
                let state = r.json()["state"].as_str().unwrap_or_default().to_owned();
                if !["pending", "approved"].contains(&state.as_str()) {
                    states.insert(*id, state);
                }
            }
            if states.len() == ids.len() {
                return ids.iter().map(|id| states[id].clone()).collect();
            }
            assert!(
                Instant::now() < deadline,
                "{} of {} requests still open after {limit:?}",
                ids.len() - states.len(),
                ids.len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs `sealctl` with `args` (the store is appended as `--store`) and returns its stdout.
    pub fn sealctl(&self, group: &str, args: &[&str]) -> String {
        let out = Command::new(bin("sealctl"))
            .arg(group)
            .arg("--store")
            .arg(self.store())
            .args(args)
            .output()
            .expect("run sealctl");
        assert!(
            out.status.success(),
            "sealctl {group} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The usage-log records of `kind` (as the auditor sees them).
    pub fn audit(&self, kind: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let r = self.call(
                "GET",
                &format!("/v1/audit?kind={kind}&after={after}&limit=1000"),
                Some(Who::Auditor),
                None,
            );
            assert_eq!(r.status, 200, "{}", r.body);
            let v = r.json();
            out.extend(v["records"].as_array().cloned().unwrap_or_default());
            match v["next_after"].as_i64() {
                Some(next) => after = next,
                None => return out,
            }
        }
    }
}

impl Deployment {
    /// A P-256 seal whose key lives on a new token of the shared SoftHSM store
    /// ([`SoftHsm::shared`]), set up by hand as `seald demo` would: a software test CA (P-256)
    /// certifying the maker (SM2) and the token's P-256 seal key (CKA_ID 02), identities
    /// `app` (client), `alice` and `bob` (approvers), `carol` (custodian), `audrey` (auditor),
    /// the seal enrolled with a policy of two approvals by alice and bob in `pin_mode`, then the
    /// real `seald` started with the store's `SOFTHSM2_CONF`. `module` is added to the daemon's
    /// `[[module]]` (e.g. `model = "cipher-machine"\nmax_sessions = 2`; empty: a UKey), `extra`
    /// TOML to its config. The custodian is not logged in ([`Deployment::login_custodian`]).
    pub fn softhsm_p256(module: &str, pin_mode: PinMode, extra: &str) -> Self {
        Self::softhsm_p256_built(module, pin_mode, extra, None)
    }

    /// Like [`Deployment::softhsm_p256`], with the maker's and the seal's certificates
    /// (serials [`MAKER_CERT_SERIAL`], [`SEAL_CERT_SERIAL`]) naming `ca`'s OCSP and CRL URLs:
    /// `ca` is given the deployment's root (certificate and key) and records both serials as
    /// valid in its index.
    pub fn softhsm_p256_revocable(
        module: &str,
        pin_mode: PinMode,
        extra: &str,
        ca: &TestCa,
    ) -> Self {
        Self::softhsm_p256_built(module, pin_mode, extra, Some(ca))
    }

    fn softhsm_p256_built(
        module: &str,
        pin_mode: PinMode,
        extra: &str,
        ca: Option<&TestCa>,
    ) -> Self {
        static TOKENS: AtomicUsize = AtomicUsize::new(0);
        const ORG: &str = "北京示例科技有限公司";
        let dir = tempfile::tempdir().expect("temp dir");
        let home = dir.path().join("softhsm-p256");
        std::fs::create_dir(&home).expect("deployment dir");
        let hsm = SoftHsm::shared();
        let label = format!(
            "p256-seal-{}",
            TOKENS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let token = hsm.new_token(&label);
        hsm.generate_key(&token, &[2], Curve::P256);
        let owner = hsm.devices.token(&token.serial).expect("owner");
        let key = TokenKey::open(owner, KeySelector::Id(vec![2])).expect("key");

        // A software test CA (P-256, so that independent PAdES validators such as pyHanko can
        // check the chain) certifying the maker (SM2) and the device's P-256 seal key; each
        // certificate has its own serial, as a real CA's do.
        let now = SystemClock.now();
        let root = SoftSigner::p256_from_secret(&ROOT_SECRET).expect("root key");
        assert_eq!(
            root.public_key(),
            SoftSigner::from_seed(KeyAlgorithm::P256, 40).public_key()
        );
        let maker = SoftSigner::from_seed(KeyAlgorithm::Sm2, 41);
        let root_name = name("测试根CA", "Test Root");
        let not_after = now + time::Duration::days(365);
        let spec = |o: &str, cn: &str, is_ca: bool, ku: u8, serial: u64| CertSpec {
            cn: cn.into(),
            o: o.into(),
            serial,
            not_before: now - time::Duration::days(1),
            not_after,
            key_usage: Some(ku),
            ca: is_ca,
            ocsp_url: None,
            crl_url: None,
        };
        let revocable = |spec: CertSpec| CertSpec {
            ocsp_url: ca.map(TestCa::ocsp_url),
            crl_url: ca.map(TestCa::crl_url),
            ..spec
        };
        let root_cert = issue(
            &spec("测试根CA", "Test Root", true, 0x06, 7),
            root.public_key(),
            &root_name,
            &root,
        );
        let maker_cert = issue(
            &revocable(spec(
                "测试根CA",
                "Seal maker",
                false,
                0x80,
                MAKER_CERT_SERIAL,
            )),
            maker.public_key(),
            &root_name,
            &root,
        );
        let seal_cert = issue(
            &revocable(spec(ORG, ORG, false, 0xc0, SEAL_CERT_SERIAL)),
            key.public_key(),
            &root_name,
            &root,
        );
        let root_path = home.join("root.der");
        std::fs::write(&root_path, &root_cert).expect("root");
        std::fs::write(home.join("maker.der"), &maker_cert).expect("maker certificate");
        std::fs::write(home.join("seal.der"), &seal_cert).expect("seal certificate");
        if let Some(ca) = ca {
            ca.adopt_root(&root_cert, &ROOT_SECRET);
            ca.record(
                MAKER_CERT_SERIAL,
                "/C=CN/O=测试根CA/CN=Seal maker",
                not_after,
            );
            ca.record(
                SEAL_CERT_SERIAL,
                &format!("/C=CN/O={ORG}/CN={ORG}"),
                not_after,
            );
        }

        let store = home.join("seald.db");
        let trust = TrustStore::new(vec![Certificate::from_der(&root_cert).expect("root")]);
        let services =
            Services::open(&store, Arc::new(SystemClock), Arc::new(trust)).expect("store");
        let admin = Caller::Local("test".into());
        let mut tokens = HashMap::new();
        let mut ids = Vec::new();
        for (n, role, who) in [
            ("app", Role::Client, Who::Client),
            ("alice", Role::Approver, Who::Approver1),
            ("bob", Role::Approver, Who::Approver2),
            ("carol", Role::Custodian, Who::Custodian),
            ("audrey", Role::Auditor, Who::Auditor),
        ] {
            let (identity, t) = services
                .identities
                .add(&admin, n, &[role])
                .expect("identity");
            ids.push(identity.id);
            tokens.insert(who.var().to_owned(), t.expose().to_owned());
        }
        let seal = services
            .registry
            .enrol(
                &admin,
                NewSeal {
                    kind: SealKind::Contract,
                    organisation: ORG.into(),
                    name: format!("{ORG}合同专用章"),
                    image: b"GIF89a\x01\x00\x01\x00".to_vec(),
                    width_mm: 40.0,
                    height_mm: 40.0,
                    es_id: "11010800000001".into(),
                    device_serial: token.serial.clone(),
                    key_id: "02".into(),
                    device_key: key.public_key().clone(),
                    certificate: seal_cert,
                    intermediates: Vec::new(),
                    valid_from: None,
                    valid_to: None,
                },
                &SealMaker {
                    signer: &maker,
                    certificate: &maker_cert,
                },
            )
            .expect("enrol");
        services
            .approvals
            .set_policy(
                &admin,
                Policy {
                    seal_id: seal.id,
                    allowed_clients: vec![ids[0]],
                    approvers: vec![ids[1], ids[2]],
                    required_approvals: 2,
                    daily_quota: None,
                    quota_utc_offset_minutes: 480,
                    office_hours: None,
                    pin_mode,
                    request_ttl_secs: 3600,
                    timestamp: None,
                },
            )
            .expect("policy");
        drop(services);
        write_private(
            &home.join("login.json"),
            &serde_json::json!({ "pin": USER_PIN }).to_string(),
        );

        let config_text = format!(
            "store = \"{}\"\ntrust_roots = [\"{}\"]\n\n[[module]]\nname = \"softhsm\"\npath = \"{LIBRARY}\"\n{module}\n{extra}",
            store.display(),
            root_path.display()
        );
        std::fs::write(home.join("seald.toml"), &config_text).expect("write config");
        let conf = hsm.conf_path();
        let daemon = Daemon::start(&config_text, &[("SOFTHSM2_CONF", &conf)]);
        Self {
            dir,
            daemon,
            tokens,
            seal_id: seal.id,
            serial: token.serial,
            home,
            config_text,
            device_env: ("SOFTHSM2_CONF", conf),
        }
    }

    /// Runs the hsm-sim CLI on the deployment's simulator config (eject, insert, list, …);
    /// returns its standard output.
    pub fn hsm_sim_run(&self, args: &[&str]) -> String {
        let out = Command::new(crate::bins::hsm_sim_cli())
            .arg("--config")
            .arg(self.hsm_sim_conf())
            .args(args)
            .output()
            .expect("run hsm-sim");
        assert!(
            out.status.success(),
            "hsm-sim {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The trust root the deployment's certificates chain to (the SoftHSM deployment's DER file).
    pub fn trust_root(&self) -> PathBuf {
        self.home.join("root.der")
    }

    /// The SoftHSM deployment's seal certificate (DER file; serial [`SEAL_CERT_SERIAL`]).
    pub fn seal_certificate(&self) -> PathBuf {
        self.home.join("seal.der")
    }

    /// The SoftHSM deployment's maker certificate (DER file; serial [`MAKER_CERT_SERIAL`]).
    pub fn maker_certificate(&self) -> PathBuf {
        self.home.join("maker.der")
    }

    /// Writes `who`'s bearer token to a 0600 file (for `sealctl … --token-file`).
    pub fn token_file(&self, who: Who) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let file = self.dir.path().join(format!("{}.token", who.var()));
        std::fs::write(&file, self.token(who)).expect("token file");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        file
    }

    /// Runs `sealctl GROUP --daemon URL --token-file F ARGS…` with `stdin` piped in (PINs one
    /// per line for `--pin-stdin`); the output, whatever the exit status.
    pub fn sealctl_daemon(
        &self,
        group: &str,
        token_file: &Path,
        args: &[&str],
        stdin: &str,
    ) -> std::process::Output {
        crate::bins::run_with_stdin(
            Command::new(bin("sealctl"))
                .arg(group)
                .args(["--daemon", &format!("http://{}", self.daemon.authority())])
                .arg("--token-file")
                .arg(token_file)
                .args(args),
            stdin,
        )
    }

    /// Asserts that none of `pins` is in the daemon's log (start it logged), the process table
    /// or any file of the store.
    pub fn assert_pins_absent(&self, pins: &[&str]) {
        let log = self.daemon.log();
        assert!(!log.is_empty(), "the daemon's log was kept");
        let ps = Command::new("ps")
            .args(["-eo", "args"])
            .output()
            .expect("ps");
        let ps = String::from_utf8_lossy(&ps.stdout).into_owned();
        let mut store = Vec::new();
        for entry in std::fs::read_dir(self.demo_dir())
            .expect("demo dir")
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("seald.db") {
                store.extend(std::fs::read(entry.path()).unwrap_or_default());
            }
        }
        assert!(!store.is_empty(), "the store was read");
        let store = String::from_utf8_lossy(&store).into_owned();
        for pin in pins {
            assert!(!pin.is_empty());
            assert!(!log.contains(pin), "a PIN is in the daemon's log");
            assert!(!ps.contains(pin), "a PIN is in the process table");
            assert!(!store.contains(pin), "a PIN is in the store");
        }
    }
}

/// Writes `text` to a new 0600 file.
fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).expect("write private file");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

/// Replaces the demo's `model = "ukey"` line in a config file.
fn replace_model(path: &Path, with: &str) {
    let text = std::fs::read_to_string(path).expect("demo config");
    assert!(
        text.contains(DEMO_MODEL),
        "{} has no {DEMO_MODEL}",
        path.display()
    );
    std::fs::write(path, text.replacen(DEMO_MODEL, with, 1)).expect("write demo config");
}
