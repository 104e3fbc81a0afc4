//! Running `sealctl` for the custodian tests: with PIN lines on stdin (`--pin-stdin`) or on a
//! pty, against a config naming one module, with a fresh store.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::bins::bin;
use crate::pty::PtyChild;

/// A scratch directory with `seald.toml` (one module) and an empty store `seald.db`.
#[derive(Debug)]
pub struct Setup {
    /// The directory.
    pub dir: tempfile::TempDir,
    /// The config file.
    pub config: PathBuf,
    /// The store.
    pub store: PathBuf,
    env: Vec<(String, PathBuf)>,
}

impl Setup {
    /// `module_toml` is the `[[module]]` table; `env` what the module needs (its config file).
    pub fn new(module_toml: &str, env: &[(&str, &Path)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("seald.toml");
        std::fs::write(&config, module_toml).expect("write config");
        let store = dir.path().join("seald.db");
        drop(seald::store::Store::open(&store).expect("create store"));
        Self {
            dir,
            config,
            store,
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.to_path_buf()))
                .collect(),
        }
    }

    /// `sealctl --config … args…`, ready to run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(bin("sealctl"));
        command.arg("--config").arg(&self.config).args(args);
        for (k, v) in &self.env {
            command.env(k, v);
        }
        command
    }

    /// Runs sealctl with `stdin` piped in; returns its output (no assertion on success).
    pub fn run(&self, args: &[&str], stdin: &str) -> Output {
        crate::bins::run_with_stdin(&mut self.command(args), stdin)
    }

    /// Runs sealctl and panics with its stderr unless it succeeds; returns stdout + stderr.
    pub fn ok(&self, args: &[&str], stdin: &str) -> String {
        let out = self.run(args, stdin);
        let text = text(&out);
        assert!(out.status.success(), "sealctl {args:?} failed:\n{text}");
        text
    }

    /// Runs sealctl and panics unless it fails; returns stdout + stderr.
    pub fn fails(&self, args: &[&str], stdin: &str) -> String {
        let out = self.run(args, stdin);
        let text = text(&out);
        assert!(
            !out.status.success(),
            "sealctl {args:?} should fail:\n{text}"
        );
        text
    }

    /// Starts sealctl on a pty.
    pub fn pty(&self, args: &[&str]) -> PtyChild {
        PtyChild::spawn(self.command(args))
    }

    /// Every byte of the store's files (database, WAL), for scanning.
    pub fn store_bytes(&self) -> Vec<u8> {
        let mut all = Vec::new();
        for entry in std::fs::read_dir(self.dir.path())
            .expect("read dir")
            .flatten()
        {
            if entry.file_name().to_string_lossy().starts_with("seald.db") {
                all.extend(std::fs::read(entry.path()).unwrap_or_default());
            }
        }
        all
    }
}

/// stdout and stderr together.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The process table (`ps -eo args`), to check no PIN shows there.
pub fn process_table() -> String {
    let out = Command::new("ps")
        .args(["-eo", "args"])
        .output()
        .expect("run ps");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Panics if `haystack` contains any of `pins`.
pub fn assert_no_pin(what: &str, haystack: &[u8], pins: &[&str]) {
    for pin in pins {
        let found = haystack.windows(pin.len()).any(|w| w == pin.as_bytes());
        assert!(!found, "a PIN appears in {what}");
    }
}

/// Runs `openssl` with args; returns (success, stdout + stderr).
pub fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl");
    (out.status.success(), text(&out))
}
