//! pcscd with the vpcd driver, as the tests use it: the virtual UKey (`hsm-sim vcard`) in a
//! vpcd reader, waiting for watcher events with a deadline, counting threads.
//!
//! pcscd is started by `scripts/pcscd.sh start` (scripts/test.sh and .ci/run do it). vpcd
//! offers two readers; tests that plug cards serialise on [`reader_lock`].

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use seald::device::pcsc::DeviceEvent;
use tokio::sync::broadcast::{error::TryRecvError, Receiver};

use crate::bins::hsm_sim_cli;

/// The first vpcd reader's name and port.
pub const READER: &str = "Virtual PCD 00 00";
/// vpcd's port for [`READER`].
pub const PORT: u16 = 35963;
/// How long any wait in these tests may take before it fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// The ATR `hsm-sim vcard` presents (see firmware-notes/pcsc.md).
pub const VCARD_ATR: &str = "3B 8D 01 80 5B 48 53 4D 53 49 4D 2D 55 4B 45 59 79";
/// The `[[atr]]` entry matching it, reading the serial with SELECT and GET DATA.
pub const VCARD_ATR_TOML: &str = r#"
[[atr]]
name = "hsm-sim virtual UKey"
atr = "3B 8D 01 80 5B 48 53 4D 53 49 4D 2D 55 4B 45 59"
prefix = true
module = "hsm-sim"
model = "ukey"
serial_apdus = ["00 A4 04 00 09 F0 48 53 4D 53 49 4D 55 4B", "80 CA 01 01 00"]
"#;

static READERS: Mutex<()> = Mutex::new(());

/// Serialises the tests of one binary that plug cards into the shared vpcd readers.
pub fn reader_lock() -> MutexGuard<'static, ()> {
    READERS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Panics with the fix when pcscd (with vpcd) is not reachable.
pub fn require_pcscd() {
    let readers = pcsc::Context::establish(pcsc::Scope::User)
        .and_then(|c| c.list_readers_owned())
        .unwrap_or_else(|e| {
            panic!("pcscd is not reachable ({e}): run `scripts/pcscd.sh start` first (scripts/test.sh does)")
        });
    assert!(
        readers.iter().any(|r| r.to_string_lossy() == READER),
        "pcscd runs without the vpcd reader `{READER}` (readers: {readers:?}): install vsmartcard-vpcd and restart it with `scripts/pcscd.sh`"
    );
}

/// A running `hsm-sim vcard`: the token is in the reader until [`VCard::remove`] or drop.
#[derive(Debug)]
pub struct VCard {
    child: Option<Child>,
}

impl VCard {
    /// Plugs the token `serial` of the simulator configured by `conf` into the vpcd reader on
    /// `port` (127.0.0.1).
    pub fn insert(conf: &Path, serial: &str, port: u16) -> Self {
        let child = Command::new(hsm_sim_cli())
            .arg("--config")
            .arg(conf)
            .args(["vcard", "--token", serial, "--port", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn hsm-sim vcard");
        Self { child: Some(child) }
    }

    /// Pulls the card: SIGTERM, then waits (bounded) for the card to eject its token and exit.
    pub fn remove(mut self) {
        self.stop().expect("hsm-sim vcard exits cleanly on SIGTERM");
    }

    fn stop(&mut self) -> Result<(), String> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let pid = child.id() as libc::pid_t;
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + DEADLINE;
        loop {
            match child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => return Err(format!("hsm-sim vcard exited with {status}")),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err("hsm-sim vcard did not exit after SIGTERM".into());
                }
            }
        }
    }
}

impl Drop for VCard {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Waits (at most [`DEADLINE`]) for an event `want` accepts; panics with what was seen.
pub fn wait_for(
    events: &mut Receiver<DeviceEvent>,
    what: &str,
    want: impl Fn(&DeviceEvent) -> bool,
) -> DeviceEvent {
    let deadline = Instant::now() + DEADLINE;
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        match events.try_recv() {
            Ok(event) if want(&event) => return event,
            Ok(event) => seen.push(event),
            Err(TryRecvError::Empty) => std::thread::sleep(Duration::from_millis(10)),
            Err(TryRecvError::Lagged(n)) => seen.push(DeviceEvent::PcscUnavailable {
                reason: format!("(test: {n} events lagged)"),
            }),
            Err(TryRecvError::Closed) => break,
        }
    }
    panic!("no {what} event within {DEADLINE:?}; saw {seen:?}")
}

/// Waits (at most [`DEADLINE`]) until `ready` holds.
pub fn wait_until(what: &str, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !ready() {
        assert!(Instant::now() < deadline, "{what} within {DEADLINE:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Threads of this process (from /proc/self/task), and how many are named `name`.
pub fn threads(name: &str) -> (usize, usize) {
    let mut total = 0;
    let mut named = 0;
    for task in std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .flatten()
    {
        total += 1;
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() == name {
            named += 1;
        }
    }
    (total, named)
}
