//! hsm-sim, the SM2 token simulator, as the daemon's device layer sees it.
//!
//! Like SoftHSM, the module reads its config (`HSM_SIM_CONF`) at `C_Initialize` and loads once per
//! process, so each test binary starts one simulator and every test makes its own token.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use seald::config::ModuleConfig;
use seald::device::{DeviceModel, Devices, ProfileSetting};

use crate::bins::{hsm_sim_cli, hsm_sim_module};
use crate::softhsm::TestToken;

/// The SO PIN of every simulated token.
pub const SO_PIN: &str = "so-pin-8642";
/// The user PIN every simulated token starts with.
pub const USER_PIN: &str = "user-pin-1357";

/// How many slots the shared store offers: one token per test.
const SLOTS: usize = 32;

/// A simulator store and the daemon's device layer over it.
#[derive(Debug)]
pub struct HsmSim {
    dir: tempfile::TempDir,
    /// The device layer with one module, `hsm-sim`.
    pub devices: Arc<Devices>,
    next_slot: AtomicUsize,
}

static SHARED: OnceLock<HsmSim> = OnceLock::new();

impl HsmSim {
    /// Starts the process-wide simulator once: `sim_config` is hsm-sim TOML (profile, encoding,
    /// model, latency, tries), `module` the daemon's view of it (profile, model, sessions).
    pub fn shared(
        sim_config: &str,
        profile: ProfileSetting,
        model: DeviceModel,
    ) -> &'static HsmSim {
        Self::shared_with_sessions(sim_config, profile, model, 4)
    }

    /// [`Self::shared`] with `max_sessions` pooled sessions per token for a cipher machine.
    pub fn shared_with_sessions(
        sim_config: &str,
        profile: ProfileSetting,
        model: DeviceModel,
        max_sessions: usize,
    ) -> &'static HsmSim {
        SHARED.get_or_init(|| {
            let dir = tempfile::tempdir().expect("temp dir");
            let conf = dir.path().join("hsm-sim.toml");
            std::fs::write(
                &conf,
                format!(
                    "store = \"{}\"\nslots = {SLOTS}\nmin_pin_len = 4\nmax_pin_len = 32\n{sim_config}\n",
                    dir.path().join("tokens").display()
                ),
            )
            .expect("write hsm-sim.toml");
            // Read by the module at C_Initialize; set once, before it loads.
            std::env::set_var("HSM_SIM_CONF", &conf);
            let module = ModuleConfig {
                name: "hsm-sim".into(),
                path: hsm_sim_module(),
                profile: Some(profile),
                model,
                max_sessions,
                api: Default::default(),
                skf: Default::default(),
                sdf: Default::default(),
                isolation: None,
                call_timeout_secs: 30,
            };
            let devices = Arc::new(Devices::open(&[module]).expect("load hsm-sim"));
            HsmSim {
                dir,
                devices,
                next_slot: AtomicUsize::new(0),
            }
        })
    }

    /// The module entry the device layer was opened with (for a seald/sealctl config).
    pub fn module_path(&self) -> PathBuf {
        hsm_sim_module()
    }

    /// The simulator's config file, for child processes.
    pub fn conf_path(&self) -> PathBuf {
        self.dir.path().join("hsm-sim.toml")
    }

    /// Runs the `hsm-sim` CLI with PIN lines on stdin; panics with its stderr on failure.
    pub fn cli(&self, args: &[&str], stdin: &str) -> String {
        run_cli(&self.conf_path(), args, stdin)
    }

    /// Initialises the next free slot with [`SO_PIN`] and [`USER_PIN`].
    pub fn new_token(&self, label: &str) -> TestToken {
        let slot = self.next_slot.fetch_add(1, Ordering::SeqCst);
        assert!(slot < SLOTS, "raise SLOTS: more tokens than slots");
        let out = self.cli(
            &["init-token", "--slot", &slot.to_string(), "--label", label],
            &format!("{SO_PIN}\n{USER_PIN}\n"),
        );
        let serial = out
            .split_whitespace()
            .last()
            .expect("serial printed")
            .to_owned();
        TestToken {
            label: label.to_owned(),
            serial,
        }
    }

    /// Generates an SM2 key pair with CKA_ID `id` on the token.
    pub fn keygen(&self, token: &TestToken, id: &[u8]) {
        self.cli(
            &[
                "keygen",
                "--serial",
                &token.serial,
                "--id",
                &hex::encode(id),
                "--label",
                "seal key",
            ],
            &format!("{USER_PIN}\n"),
        );
    }

    /// Unplugs the token, as `hsm-sim eject` from another process.
    pub fn eject(&self, token: &TestToken) {
        self.cli(&["eject", &token.serial], "");
    }

    /// Plugs the token back in.
    pub fn insert(&self, token: &TestToken) {
        self.cli(&["insert", &token.serial], "");
    }
}

/// Runs the `hsm-sim` CLI against a config file.
pub fn run_cli(conf: &Path, args: &[&str], stdin: &str) -> String {
    let output = crate::bins::run_with_stdin(
        Command::new(hsm_sim_cli())
            .arg("--config")
            .arg(conf)
            .args(args),
        stdin,
    );
    assert!(
        output.status.success(),
        "hsm-sim {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}
