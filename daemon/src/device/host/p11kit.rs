//! Crash isolation for PKCS#11 modules through p11-kit's remoting: seald starts
//! `p11-kit server --provider <vendor module>` on a private Unix socket and loads
//! `p11-kit-client.so` instead of the vendor module. The server forks a `p11-kit-remote` per
//! connection, so the vendor code runs there: when it crashes, every call through the client
//! answers CKR_DEVICE_ERROR and the server stays up; when it hangs, the watchdog kills the
//! server's process group after `call_timeout_secs`. Either way the module counts as lost (its
//! tokens not present, their sessions and logins gone) and [`super::super::Module`] loads a
//! fresh client after the backoff, restarting the server if it is gone.
//!
//! p11-kit's client reads the server's address from the `P11_KIT_SERVER_ADDRESS` environment
//! variable when it is loaded, one value per process: one PKCS#11 module per seald can be
//! isolated this way (SKF and SDF libraries have their own helper and no such limit). `seald`
//! sets the variable before it starts any thread ([`prepare_address`]).

use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use super::super::error::DeviceError;
use super::backoff::Backoff;
use super::{describe_exit, library_down, Leader};

/// Where Debian (and others) install p11-kit's client module.
const CLIENT_MODULES: [&str; 4] = [
    "/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so",
    "/usr/lib/aarch64-linux-gnu/pkcs11/p11-kit-client.so",
    "/usr/lib64/pkcs11/p11-kit-client.so",
    "/usr/lib/pkcs11/p11-kit-client.so",
];

/// The environment variable p11-kit's client reads its server's address from.
const ADDRESS_VARIABLE: &str = "P11_KIT_SERVER_ADDRESS";

/// The process's one p11-kit socket (its private directory, its path).
static ADDRESS: OnceLock<Result<(tempfile::TempDir, PathBuf), String>> = OnceLock::new();
/// The module that uses it.
static CLAIMED: Mutex<Option<String>> = Mutex::new(None);

/// Makes the process's private p11-kit socket directory and points `P11_KIT_SERVER_ADDRESS`
/// at it. Call it before any thread starts (setting the environment races with threads
/// reading it); a later call returns the same path.
pub fn prepare_address() -> Result<PathBuf, String> {
    let prepared = ADDRESS.get_or_init(|| {
        let threads = std::fs::read_dir("/proc/self/task").map_or(1, |d| d.count());
        if threads > 1 {
            return Err(format!("{ADDRESS_VARIABLE} must be set before seald starts threads (this program did not prepare it): run the module with isolation = \"none\" here"));
        }
        // SAFETY: getauxval reads the process's auxiliary vector.
        if unsafe { libc::getauxval(libc::AT_SECURE) } != 0 {
            return Err("seald runs with raised privileges (setuid or file capabilities): p11-kit's client then ignores P11_KIT_SERVER_ADDRESS, so a PKCS#11 module cannot be isolated; set isolation = \"none\"".into());
        }
        let dir = tempfile::Builder::new()
            .prefix("seald-p11-kit-")
            .tempdir()
            .map_err(|e| format!("cannot make the p11-kit socket's directory: {e}"))?;
        let socket = dir.path().join("pkcs11");
        std::env::set_var(ADDRESS_VARIABLE, format!("unix:path={}", socket.display()));
        Ok((dir, socket))
    });
    prepared
        .as_ref()
        .map(|(_, socket)| socket.clone())
        .map_err(Clone::clone)
}

/// A vendor PKCS#11 module served by a `p11-kit server` that seald runs.
#[derive(Debug)]
pub struct P11KitRemote {
    module: String,
    client: PathBuf,
    socket: PathBuf,
    timeout: Duration,
    server: Mutex<Option<Leader>>,
    /// Starts servers from one long-lived thread (see [`spawner`]).
    spawn: mpsc::Sender<mpsc::Sender<std::io::Result<Child>>>,
    state: Mutex<Loss>,
    /// Signalled at each loss, for [`P11KitRemote::wait_for_loss`].
    lost: Condvar,
    calls: Mutex<HashMap<u64, (Instant, &'static str)>>,
    next_call: AtomicU64,
}

#[derive(Debug, Default)]
struct Loss {
    backoff: Backoff,
    /// Losses so far: part of every token's reset counter.
    count: u64,
    /// Why it was lost last.
    reason: String,
}

impl P11KitRemote {
    /// Starts the server for `provider` (on the process's socket, see [`prepare_address`]);
    /// a watchdog thread kills it when a watched call outlives `timeout`.
    pub fn start(module: &str, provider: &Path, timeout: Duration) -> Result<Arc<Self>, String> {
        let client = CLIENT_MODULES
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .ok_or("p11-kit's client module (p11-kit-client.so, Debian package p11-kit-modules) is not installed")?;
        let socket = prepare_address()?;
        {
            let mut claimed = CLAIMED.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(other) = claimed.as_ref() {
                return Err(format!(
                    "module `{other}` already runs behind p11-kit, whose client takes one server per process: set isolation = \"none\" for `{module}`"
                ));
            }
            *claimed = Some(module.to_owned());
        }
        let command = server_command(provider, &socket);
        let (spawn, requests) = mpsc::channel();
        let started = std::thread::Builder::new()
            .name(format!("p11-kit-spawner-{module}"))
            .spawn(move || spawner(command, requests));
        let remote = Arc::new(Self {
            module: module.to_owned(),
            client,
            socket,
            timeout,
            server: Mutex::new(None),
            spawn,
            state: Mutex::default(),
            lost: Condvar::new(),
            calls: Mutex::default(),
            next_call: AtomicU64::new(1),
        });
        started.map_err(|e| format!("cannot start the p11-kit spawner: {e}"))?;
        remote.ensure_server()?;
        remote.lock_state().backoff.up();
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

    fn lock_state(&self) -> std::sync::MutexGuard<'_, Loss> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the server unless it runs; waits (at most 10 s) for its socket.
    pub fn ensure_server(&self) -> Result<(), String> {
        {
            let mut server = self.server.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(leader) = server.as_mut() {
                if !leader.has_exited() {
                    return Ok(());
                }
                // Gone: what it forked goes too.
                leader.kill_group();
                *server = None;
            }
        }
        let _ = std::fs::remove_file(&self.socket);
        let (reply, spawned) = mpsc::channel();
        let ended = || "the p11-kit spawner thread has ended".to_owned();
        self.spawn.send(reply).map_err(|_| ended())?;
        let child = spawned
            .recv()
            .map_err(|_| ended())?
            .map_err(|e| format!("cannot start `p11-kit server` (Debian package p11-kit): {e}"))?;
        *self.server.lock().unwrap_or_else(|e| e.into_inner()) = Some(Leader::new(child));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.socket.exists() {
            let mut server = self.server.lock().unwrap_or_else(|e| e.into_inner());
            let Some(leader) = server.as_mut() else {
                return Err("`p11-kit server` was stopped while it started".into());
            };
            if leader.has_exited() {
                let status = leader.kill_group();
                *server = None;
                return Err(format!(
                    "`p11-kit server` {} at start",
                    status.map_or_else(|| "ended".into(), describe_exit)
                ));
            }
            if Instant::now() > deadline {
                leader.kill_group();
                *server = None;
                return Err("`p11-kit server` made no socket within 10 s".into());
            }
            drop(server);
            std::thread::sleep(Duration::from_millis(20));
        }
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
        let mut state = self.lock_state();
        if state.backoff.is_down() {
            return;
        }
        tracing::error!(module = %self.module, %reason, "the PKCS#11 module's p11-kit remote is gone; its tokens count as not present until it is reconnected");
        state.count += 1;
        state.reason = reason.clone();
        state.backoff.fail(reason);
        self.lost.notify_all();
    }

    /// Losses so far (a token's sessions from before a loss are dead).
    pub fn losses(&self) -> u64 {
        self.lock_state().count
    }

    /// Blocks until the loss after the `seen`-th, and returns its count and reason.
    pub fn wait_for_loss(&self, seen: u64) -> (u64, String) {
        let mut state = self.lock_state();
        while state.count <= seen {
            state = self.lost.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        (state.count, state.reason.clone())
    }

    /// `Ok(true)` when the module is lost and may be reconnected now, `Ok(false)` when it is
    /// not lost, the error to report while its backoff runs.
    pub fn may_reconnect(&self) -> Result<bool, DeviceError> {
        match self.lock_state().backoff.down() {
            None => Ok(false),
            Some((reason, wait)) if !wait.is_zero() => Err(self.down(reason, wait)),
            Some(_) => Ok(true),
        }
    }

    /// After a reconnection: the module is back.
    pub fn reconnected(&self) {
        self.lock_state().backoff.up();
    }

    /// A failed reconnection: waits longer before the next.
    pub fn reconnect_failed(&self, why: String) -> DeviceError {
        let mut state = self.lock_state();
        state
            .backoff
            .retry_failed(format!("could not be reconnected ({why})"));
        let (reason, wait) = state.backoff.down().expect("just failed");
        self.down(reason, wait)
    }

    /// The error for calls while the module is lost (one already reconnected: the call's
    /// session is simply gone).
    pub fn lost_error(&self) -> DeviceError {
        match self.lock_state().backoff.down() {
            Some((reason, wait)) => self.down(reason, wait),
            None => DeviceError::SessionHandleInvalid,
        }
    }

    fn down(&self, reason: String, retry: Duration) -> DeviceError {
        library_down(&self.module, reason, retry)
    }

    /// Kills the server and its remotes (a hang); the next reconnection starts a new one.
    fn kill_server(&self) {
        let server = self.server.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mut leader) = server {
            leader.kill_group();
        }
    }
}

impl Drop for P11KitRemote {
    fn drop(&mut self) {
        self.kill_server();
        let mut claimed = CLAIMED.lock().unwrap_or_else(|e| e.into_inner());
        if claimed.as_deref() == Some(self.module.as_str()) {
            *claimed = None;
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
