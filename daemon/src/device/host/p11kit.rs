//! Crash isolation for PKCS#11 modules through p11-kit's remoting: seald starts
//! `p11-kit server --provider <vendor module>` on a private Unix socket and loads
//! `p11-kit-client.so` instead of the vendor module. The server forks a `p11-kit-remote` per
//! connection, so the vendor code runs there: when it crashes, every call through the client
//! answers CKR_DEVICE_ERROR and the server stays up; when it hangs, the watchdog kills the
//! server's process group after `call_timeout_secs`. Either way the module counts as lost (its
//! tokens not present, their logins gone) and [`super::super::Module`] reconnects a fresh
//! client after a backoff, restarting the server if it is gone.
//!
//! p11-kit's client reads the server's address from the `P11_KIT_SERVER_ADDRESS` environment
//! variable when it is loaded, one value per process: one PKCS#11 module per seald can be
//! isolated this way (SKF and SDF libraries have their own helper and no such limit).

use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use super::super::error::{DeviceError, DeviceResult};
use super::{backoff, describe_exit, MAX_BACKOFF};

/// Where Debian (and others) install p11-kit's client module.
const CLIENT_MODULES: [&str; 4] = [
    "/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so",
    "/usr/lib/aarch64-linux-gnu/pkcs11/p11-kit-client.so",
    "/usr/lib64/pkcs11/p11-kit-client.so",
    "/usr/lib/pkcs11/p11-kit-client.so",
];

/// The environment variable p11-kit's client reads its server's address from.
const ADDRESS_VARIABLE: &str = "P11_KIT_SERVER_ADDRESS";

/// A vendor PKCS#11 module served by a `p11-kit server` that seald runs.
#[derive(Debug)]
pub struct P11KitRemote {
    module: String,
    provider: PathBuf,
    client: PathBuf,
    socket: PathBuf,
    /// Holds the socket; removed with seald's run.
    _dir: tempfile::TempDir,
    server: Mutex<Option<Child>>,
    /// Starts servers from one long-lived thread (see [`spawner`]).
    spawn: Mutex<mpsc::Sender<mpsc::Sender<std::io::Result<Child>>>>,
    lost: Mutex<Option<Lost>>,
    /// Failures in a row, for the backoff.
    failures: AtomicU64,
    calls: Mutex<HashMap<u64, (Instant, &'static str)>>,
    next_call: AtomicU64,
    timeout: Duration,
}

#[derive(Debug, Clone)]
struct Lost {
    reason: String,
    retry_at: Instant,
}

impl P11KitRemote {
    /// Starts the server for `provider` and points p11-kit's client at it; returns the client
    /// module's path for seald to load. A watchdog thread kills the server when a call
    /// outlives `timeout`.
    pub fn start(module: &str, provider: &Path, timeout: Duration) -> Result<Arc<Self>, String> {
        let client = CLIENT_MODULES
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .ok_or("p11-kit's client module (p11-kit-client.so, Debian package p11-kit-modules) is not installed")?;
        let dir = tempfile::Builder::new()
            .prefix("seald-p11-kit-")
            .tempdir()
            .map_err(|e| format!("cannot make the p11-kit socket's directory: {e}"))?;
        let socket = dir.path().join("pkcs11");
        let address = format!("unix:path={}", socket.display());
        match std::env::var(ADDRESS_VARIABLE) {
            Ok(other) if other != address => {
                return Err(format!(
                    "another PKCS#11 module already runs isolated through p11-kit ({ADDRESS_VARIABLE} is set): one per seald; set isolation = \"none\" for this one"
                ))
            }
            // Read by p11-kit-client.so when it is loaded, just after this. Set once per
            // process, while seald starts its devices.
            _ => std::env::set_var(ADDRESS_VARIABLE, &address),
        }
        let command = server_command(provider, &socket);
        let (spawn, requests) = mpsc::channel();
        std::thread::Builder::new()
            .name(format!("p11-kit-spawner-{module}"))
            .spawn(move || spawner(command, requests))
            .map_err(|e| format!("cannot start the p11-kit spawner: {e}"))?;
        let remote = Arc::new(Self {
            module: module.to_owned(),
            provider: provider.to_owned(),
            client,
            socket,
            _dir: dir,
            server: Mutex::new(None),
            spawn: Mutex::new(spawn),
            lost: Mutex::new(None),
            failures: AtomicU64::new(0),
            calls: Mutex::default(),
            next_call: AtomicU64::new(1),
            timeout,
        });
        remote.ensure_server()?;
        let watched = Arc::downgrade(&remote);
        std::thread::Builder::new()
            .name(format!("p11-kit-watchdog-{module}"))
            .spawn(move || watchdog(watched))
            .map_err(|e| format!("cannot start the p11-kit watchdog: {e}"))?;
        Ok(remote)
    }

    /// The client module seald loads in place of the vendor's.
    pub fn client(&self) -> &Path {
        &self.client
    }

    /// Starts the server unless it runs; waits for its socket.
    pub fn ensure_server(&self) -> Result<(), String> {
        let mut server = self.server.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(child) = server.as_mut() {
            if matches!(child.try_wait(), Ok(None)) {
                return Ok(());
            }
        }
        let _ = std::fs::remove_file(&self.socket);
        let (reply, spawned) = mpsc::channel();
        self.spawn
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(reply)
            .map_err(|_| "the p11-kit spawner thread has ended".to_owned())?;
        let mut child = spawned
            .recv()
            .map_err(|_| "the p11-kit spawner thread has ended".to_owned())?
            .map_err(|e| format!("cannot start `p11-kit server` (Debian package p11-kit): {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.socket.exists() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "`p11-kit server` for {} ended at start{}",
                    self.provider.display(),
                    describe_exit(status)
                ));
            }
            if Instant::now() > deadline {
                kill_group(&mut child);
                return Err("`p11-kit server` made no socket within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        *server = Some(child);
        Ok(())
    }

    /// Registers a call to the module; the returned guard ends it. The watchdog kills the
    /// server when one lasts longer than the module's time limit.
    pub fn watch(self: &Arc<Self>, what: &'static str) -> CallGuard {
        let id = self.next_call.fetch_add(1, Ordering::Relaxed);
        self.lock_calls().insert(id, (Instant::now(), what));
        CallGuard {
            remote: self.clone(),
            id,
        }
    }

    fn lock_calls(&self) -> std::sync::MutexGuard<'_, HashMap<u64, (Instant, &'static str)>> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that the vendor module is gone (the first reason wins until it is back).
    pub fn mark_lost(&self, reason: String) {
        let mut lost = self.lost.lock().unwrap_or_else(|e| e.into_inner());
        if lost.is_none() {
            let failures = self.failures.fetch_add(1, Ordering::SeqCst) + 1;
            tracing::error!(module = %self.module, %reason, "the PKCS#11 module's p11-kit remote is gone; its tokens count as not present until it is reconnected");
            *lost = Some(Lost {
                reason,
                retry_at: Instant::now() + backoff(failures as u32),
            });
        }
    }

    /// `Ok(true)` when a lost module may be reconnected now, `Ok(false)` when it is not lost,
    /// the error to report while its backoff runs.
    pub fn may_reconnect(&self) -> DeviceResult<bool> {
        let lost = self.lost.lock().unwrap_or_else(|e| e.into_inner());
        let Some(lost) = lost.as_ref() else {
            return Ok(false);
        };
        let now = Instant::now();
        if now < lost.retry_at {
            return Err(self.down(lost.reason.clone(), Some(lost.retry_at - now)));
        }
        Ok(true)
    }

    /// After a reconnection: the module is back. A module that stays up for a minute ends
    /// the run of failures.
    pub fn reconnected(self: &Arc<Self>) {
        *self.lost.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let remote = Arc::downgrade(self);
        let _ = std::thread::Builder::new()
            .name("p11-kit-backoff".into())
            .spawn(move || {
                std::thread::sleep(MAX_BACKOFF);
                if let Some(remote) = remote.upgrade() {
                    if remote
                        .lost
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .is_none()
                    {
                        remote.failures.store(0, Ordering::SeqCst);
                    }
                }
            });
    }

    /// A failed reconnection: waits longer before the next.
    pub fn reconnect_failed(&self, why: String) -> DeviceError {
        let failures = self.failures.fetch_add(1, Ordering::SeqCst) + 1;
        let wait = backoff(failures as u32);
        let reason = format!("could not be reconnected ({why})");
        *self.lost.lock().unwrap_or_else(|e| e.into_inner()) = Some(Lost {
            reason: reason.clone(),
            retry_at: Instant::now() + wait,
        });
        self.down(reason, Some(wait))
    }

    /// The error for calls while the module is lost.
    pub fn lost_error(&self) -> DeviceError {
        let lost = self.lost.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match lost {
            Some(lost) => self.down(
                lost.reason,
                Some(lost.retry_at.saturating_duration_since(Instant::now())),
            ),
            None => self.down("was reconnected during the call".into(), None),
        }
    }

    fn down(&self, reason: String, retry: Option<Duration>) -> DeviceError {
        DeviceError::LibraryDown {
            module: self.module.clone(),
            reason,
            retry: retry.map(|d| d.as_secs_f64().ceil() as u64),
        }
    }

    /// Kills the server and its remotes (a hang); the next reconnection starts a new one.
    fn kill_server(&self) {
        let server = self.server.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mut child) = server {
            kill_group(&mut child);
        }
    }
}

impl Drop for P11KitRemote {
    fn drop(&mut self) {
        if let Some(child) = self.server.get_mut().ok().and_then(|s| s.as_mut()) {
            kill_group(child);
        }
    }
}

/// Ends one watched call.
#[derive(Debug)]
pub struct CallGuard {
    remote: Arc<P11KitRemote>,
    id: u64,
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.remote.lock_calls().remove(&self.id);
    }
}

/// `p11-kit server` for `provider` on `socket`, in its own process group (killing the group
/// also kills the remotes it forked), killed by the kernel if seald dies.
fn server_command(provider: &Path, socket: &Path) -> Command {
    let mut command = Command::new("p11-kit");
    command
        .arg("server")
        .arg("--foreground")
        .arg("--provider")
        .arg(provider)
        .arg("--name")
        .arg(socket)
        .arg("pkcs11:")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .process_group(0);
    // SAFETY: prctl(2) is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command
}

/// Starts each server asked for. The kernel's parent-death signal follows the thread that
/// forked the child, so servers are forked from this thread, which lives as long as the module.
fn spawner(mut command: Command, requests: mpsc::Receiver<mpsc::Sender<std::io::Result<Child>>>) {
    for reply in requests {
        let _ = reply.send(command.spawn());
    }
}

fn kill_group(child: &mut Child) {
    // SAFETY: kill(2) on the group this child leads (process_group(0) made its pgid its pid).
    unsafe {
        libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL);
    }
    let _ = child.wait();
}

/// Every 100 ms: a call older than the limit means the vendor module hangs; the server's
/// group is killed, which makes the blocked call return.
fn watchdog(remote: Weak<P11KitRemote>) {
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let Some(remote) = remote.upgrade() else {
            return;
        };
        // Calls nest (a signature inside a call on the token): name the innermost.
        let stuck = remote
            .lock_calls()
            .values()
            .filter(|(since, _)| since.elapsed() > remote.timeout)
            .max_by_key(|(since, _)| *since)
            .map(|(_, what)| *what);
        if let Some(what) = stuck {
            remote.mark_lost(format!(
                "stopped answering (no reply to \"{what}\" in {} s) and was killed",
                remote.timeout.as_secs()
            ));
            remote.kill_server();
        }
    }
}
