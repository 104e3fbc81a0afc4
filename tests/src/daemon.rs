//! The real `seald` binary, started on a free loopback port and stopped on drop.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::bins::bin;

/// A running daemon.
#[derive(Debug)]
pub struct Daemon {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Daemon {
    /// Starts `seald` with `config` (TOML; `listen` is set to a free port unless given) and waits
    /// until it prints its address. `env` adds variables such as `SOFTHSM2_CONF`.
    pub fn start(config: &str, env: &[(&str, &Path)]) -> Self {
        Self::spawn(config, env, false)
    }

    /// Like [`Daemon::start`], with the daemon's log (stderr) kept for [`Daemon::log`].
    pub fn start_logged(config: &str, env: &[(&str, &Path)]) -> Self {
        Self::spawn(config, env, true)
    }

    /// What the daemon has logged so far (empty unless started with [`Daemon::start_logged`]).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("seald.log")).unwrap_or_default()
    }

    fn spawn(config: &str, env: &[(&str, &Path)], logged: bool) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("seald.toml");
        let config = if config.contains("listen") {
            config.to_owned()
        } else {
            format!("listen = \"127.0.0.1:0\"\n{config}")
        };
        std::fs::write(&path, config).expect("write config");
        let mut command = Command::new(bin("seald"));
        command
            .arg("--config")
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(if logged {
                Stdio::from(std::fs::File::create(dir.path().join("seald.log")).expect("log file"))
            } else {
                Stdio::inherit()
            });
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("spawn seald");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read address");
        let url = line
            .trim()
            .strip_prefix("seald listening on ")
            .unwrap_or_else(|| panic!("seald did not start: {line:?}"))
            .to_owned();
        Self {
            child,
            url,
            _dir: dir,
        }
    }

    /// GETs `path` and returns (status, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut response = agent
            .get(format!("{}{path}", self.url))
            .call()
            .expect("HTTP request");
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_string().expect("body");
        (status, body)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
