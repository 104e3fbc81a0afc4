//! Crash isolation for vendor libraries (`isolation = "process"`): the library (SKF, SDF or
//! PKCS#11) runs in a helper process (`seald-device-host`) that seald starts, talks to over
//! the helper's stdin and stdout, and restarts with backoff. ([`P11KitRemote`] is the other
//! way, for PKCS#11 modules with standard mechanisms.)
//!
//! A library that crashes takes only its helper down; one that hangs is killed when a call
//! outlives the module's `call_timeout_secs`. Either way every call in flight and every call
//! until the restart fail with [`DeviceError::LibraryDown`] (a removal: the devices count as
//! not present, their logins are forgotten), and the daemon, its other devices, its approvals
//! and its usage log go on. The next call after the backoff (see [`backoff`]) starts a fresh
//! helper.

mod backoff;
mod p11kit;
mod pkcs11;
mod remote;
mod serve;
mod wire;

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use p11kit::{prepare_address as prepare_p11_kit_address, CallGuard, P11KitRemote};
pub use remote::RemoteBackend;
pub use serve::serve;
pub use wire::Setup;

use super::backend::DeviceEvent;
use super::error::{DeviceError, DeviceResult};
use super::token::TokenInfo;
use backoff::Backoff;
use wire::{Answer, Call, Reply, Request};

/// The helper program's file name; it is looked for beside the running executable.
pub const HELPER_PROGRAM: &str = "seald-device-host";

/// A vendor library running in a helper process.
#[derive(Debug)]
pub struct DeviceHost {
    setup: Setup,
    program: PathBuf,
    timeout: Duration,
    state: Mutex<HostState>,
    /// Helpers started so far: part of every device's reset counter, so a login made in an
    /// earlier helper is never taken for a live one.
    starts: AtomicU64,
}

#[derive(Debug, Default)]
struct HostState {
    /// The helper answering calls, until it fails.
    connection: Option<Arc<Connection>>,
    backoff: Backoff,
}

impl DeviceHost {
    /// Starts the helper for `setup`; an error (the library cannot be loaded) comes back as it
    /// would from an in-process load.
    pub fn start(setup: Setup, timeout: Duration) -> DeviceResult<Self> {
        let program = helper_program().map_err(|reason| DeviceError::ModuleLoad {
            path: setup.path.display().to_string(),
            reason,
        })?;
        let host = Self {
            setup,
            program,
            timeout,
            state: Mutex::default(),
            starts: AtomicU64::new(0),
        };
        let connection = host.spawn()?;
        let mut state = host.lock();
        state.connection = Some(connection);
        state.backoff.up();
        drop(state);
        Ok(host)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HostState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The running helper, starting a new one when the backoff allows (the start is bounded
    /// by the call time limit).
    fn connection(&self) -> DeviceResult<Arc<Connection>> {
        let mut state = self.lock();
        if let Some(connection) = &state.connection {
            match connection.failure() {
                None => return Ok(connection.clone()),
                Some(reason) => self.lost(&mut state, reason),
            }
        }
        if let Some((reason, wait)) = state.backoff.down() {
            if !wait.is_zero() {
                return Err(self.down(reason, wait));
            }
        }
        match self.spawn() {
            Ok(connection) => {
                tracing::info!(module = %self.setup.name, "the device library's helper was restarted");
                state.connection = Some(connection.clone());
                state.backoff.up();
                Ok(connection)
            }
            Err(e) => {
                state
                    .backoff
                    .retry_failed(format!("could not be restarted ({e})"));
                let (reason, wait) = state.backoff.down().expect("just failed");
                Err(self.down(reason, wait))
            }
        }
    }

    /// Forgets the failed helper and starts the backoff.
    fn lost(&self, state: &mut HostState, reason: String) {
        tracing::error!(module = %self.setup.name, %reason, "the device library's helper is gone; its devices count as not present until it is restarted");
        state.connection = None;
        state.backoff.fail(reason);
    }

    /// The error for a call that `connection` failed.
    fn failed(&self, connection: &Arc<Connection>) -> DeviceError {
        let mut state = self.lock();
        if state
            .connection
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(c, connection))
        {
            let reason = connection
                .failure()
                .unwrap_or_else(|| "closed its connection".into());
            self.lost(&mut state, reason);
        }
        match state.backoff.down() {
            Some((reason, wait)) => self.down(reason, wait),
            // Already restarted by another call: this call's session is simply gone.
            None => DeviceError::SessionHandleInvalid,
        }
    }

    fn down(&self, reason: String, retry: Duration) -> DeviceError {
        library_down(&self.setup.name, reason, retry)
    }

    /// Starts a helper in its own process group and waits, at most the call time limit, for
    /// it to open the library.
    fn spawn(&self) -> DeviceResult<Arc<Connection>> {
        let load_error = |reason: String| DeviceError::ModuleLoad {
            path: self.setup.path.display().to_string(),
            reason,
        };
        let mut child = Command::new(&self.program)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()
            .map_err(|e| load_error(format!("cannot start {}: {e}", self.program.display())))?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let number = self.starts.load(Ordering::SeqCst) + 1;
        let connection = Arc::new(Connection {
            number,
            child: Mutex::new(Leader::new(child)),
            stdin: Mutex::new(stdin),
            pending: Mutex::new(Pending::default()),
            next_id: AtomicU64::new(1),
        });
        let reader = connection.clone();
        if let Err(e) = std::thread::Builder::new()
            .name(format!("device-host-{}", self.setup.name))
            .spawn(move || reader.read_replies(stdout))
        {
            connection.kill("was stopped: no reader thread".into());
            return Err(load_error(format!("cannot start the reader thread: {e}")));
        }
        // The set-up is answered as call 0.
        let (tx, opened) = mpsc::channel();
        connection.pending().waiting.insert(0, tx);
        let sent = {
            let mut stdin = connection.stdin.lock().unwrap_or_else(|e| e.into_inner());
            wire::write_frame(&mut *stdin, &self.setup)
        };
        let result = match sent {
            Ok(()) => opened.recv_timeout(self.timeout),
            Err(_) => Err(mpsc::RecvTimeoutError::Disconnected),
        };
        match result {
            Ok(Ok(_)) => {
                self.starts.store(number, Ordering::SeqCst);
                Ok(connection)
            }
            Ok(Err(e)) => {
                connection.kill("could not open the library".into());
                Err(e.into())
            }
            Err(e) => {
                if e == mpsc::RecvTimeoutError::Timeout {
                    connection.kill(format!(
                        "did not open the library within {} s and was killed",
                        self.timeout.as_secs()
                    ));
                }
                connection.await_failure("ended at start".into());
                Err(load_error(format!(
                    "the helper {}",
                    connection.failure().unwrap_or_default()
                )))
            }
        }
    }

    /// Sends `call` and waits for its answer (without a time limit when `timeout` is `None`);
    /// returns the answer with the number of the helper that gave it.
    fn call_with(&self, call: Call, timeout: Option<Duration>) -> DeviceResult<(Answer, u64)> {
        let connection = self.connection()?;
        let what = call.name();
        let id = connection.next_id();
        // A request that cannot be encoded is this call's error, not the helper's failure.
        let frame = wire::encode_frame(&Request { id, call }).map_err(|e| {
            DeviceError::Other(format!("cannot send \"{what}\" to the device helper: {e}"))
        })?;
        let Some(answer) = connection.send(id, frame) else {
            return Err(self.failed(&connection));
        };
        let reply = match timeout {
            None => answer.recv().map_err(|_| ()),
            Some(limit) => answer.recv_timeout(limit).map_err(|e| {
                if e == mpsc::RecvTimeoutError::Timeout {
                    connection.kill(format!(
                        "stopped answering (no reply to \"{what}\" in {} s) and was killed",
                        limit.as_secs()
                    ));
                }
            }),
        };
        connection.forget(id);
        match reply {
            Ok(result) => result
                .map(|answer| (answer, connection.number))
                .map_err(DeviceError::from),
            Err(()) => Err(self.failed(&connection)),
        }
    }

    fn call(&self, call: Call) -> DeviceResult<Answer> {
        self.call_numbered(call).map(|(answer, _)| answer)
    }

    /// A call with the time limit, answered with the number of the helper that made it.
    fn call_numbered(&self, call: Call) -> DeviceResult<(Answer, u64)> {
        self.call_with(call, Some(self.timeout))
    }

    /// The devices the library lists.
    pub fn devices(&self) -> DeviceResult<Vec<TokenInfo>> {
        match self.call(Call::Devices)? {
            Answer::Devices(devices) => Ok(devices),
            other => Err(unexpected(other)),
        }
    }

    /// Whether the device `serial` is present (false while the helper is down).
    pub fn holds(&self, serial: &str) -> bool {
        matches!(
            self.call(Call::Holds {
                serial: serial.to_owned()
            }),
            Ok(Answer::Flag(true))
        )
    }

    /// Waits, without a time limit, for the next device event (or the helper's end).
    pub fn wait_event(&self) -> DeviceResult<Option<DeviceEvent>> {
        match self.call_with(Call::WaitEvent, None)? {
            (Answer::Event(event), _) => Ok(event),
            (other, _) => Err(unexpected(other)),
        }
    }

    /// How many helpers have started so far (the running one's number).
    pub(crate) fn starts(&self) -> u64 {
        self.starts.load(Ordering::SeqCst)
    }
}

impl Drop for DeviceHost {
    fn drop(&mut self) {
        if let Some(connection) = &self.lock().connection {
            connection.kill("was stopped with its module".into());
        }
    }
}

/// The error for calls to `module` while its library is down, `retry` before the next try.
fn library_down(module: &str, reason: String, retry: Duration) -> DeviceError {
    DeviceError::LibraryDown {
        module: module.to_owned(),
        reason,
        retry: Some(retry.as_secs_f64().ceil() as u64),
    }
}

fn unexpected(answer: Answer) -> DeviceError {
    DeviceError::Other(format!(
        "the device helper gave an answer of the wrong kind: {answer:?}"
    ))
}

/// The helper beside the running program (or one directory up, for cargo's test binaries in
/// `target/<profile>/deps`).
fn helper_program() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find seald's own path: {e}"))?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    let candidates = [
        dir.join(HELPER_PROGRAM),
        dir.join("..").join(HELPER_PROGRAM),
    ];
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| {
            format!(
                "the isolation helper {HELPER_PROGRAM} is not installed beside {} (install it, or set isolation = \"none\" for this module)",
                exe.display()
            )
        })
}

/// "crashed (killed by signal 6, SIGABRT)", "ended (exit status 3)".
fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("ended (exit status {code})"),
        (None, Some(signal)) => {
            format!("crashed (killed by signal {signal}{})", signal_name(signal))
        }
        _ => "ended".into(),
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGABRT => ", SIGABRT",
        libc::SIGSEGV => ", SIGSEGV",
        libc::SIGBUS => ", SIGBUS",
        libc::SIGKILL => ", SIGKILL",
        libc::SIGILL => ", SIGILL",
        libc::SIGFPE => ", SIGFPE",
        _ => "",
    }
}

/// A child that leads its own process group (started with `process_group(0)`). Its group is
/// signalled only before the child is reaped: until then its pid, and so the group id, cannot
/// be given to another process.
#[derive(Debug)]
struct Leader {
    child: Child,
    status: Option<std::process::ExitStatus>,
}

impl Leader {
    fn new(child: Child) -> Self {
        Self {
            child,
            status: None,
        }
    }

    /// Whether the child has exited, without reaping it.
    fn has_exited(&self) -> bool {
        if self.status.is_some() {
            return true;
        }
        // SAFETY: waitid(2) with WNOWAIT only reads the state of our own child into `info`.
        unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let found = libc::waitid(
                libc::P_PID,
                self.child.id(),
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            );
            found == 0 && info.si_pid() != 0
        }
    }

    /// Kills whatever of the group still runs, reaps the child and says how it ended.
    fn kill_group(&mut self) -> Option<std::process::ExitStatus> {
        if self.status.is_none() {
            // SAFETY: kill(2) on the group of our child, which has not been reaped.
            unsafe {
                libc::kill(-(self.child.id() as libc::pid_t), libc::SIGKILL);
            }
            self.status = self.child.wait().ok();
        }
        self.status
    }
}

/// One running helper.
#[derive(Debug)]
struct Connection {
    /// Which start of the helper this is.
    number: u64,
    child: Mutex<Leader>,
    stdin: Mutex<ChildStdin>,
    pending: Mutex<Pending>,
    next_id: AtomicU64,
}

/// Calls waiting for replies, and why the helper ended once it has.
#[derive(Debug, Default)]
struct Pending {
    waiting: HashMap<u64, mpsc::Sender<Result<Answer, wire::WireError>>>,
    failure: Option<String>,
}

type AnswerReceiver = mpsc::Receiver<Result<Answer, wire::WireError>>;

impl Connection {
    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Why the helper ended, once it has.
    fn failure(&self) -> Option<String> {
        self.pending().failure.clone()
    }

    /// A fresh request id.
    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::SeqCst)
    }

    /// Sends an encoded request; `None` when the helper has failed (see
    /// [`Connection::failure`]).
    fn send(&self, id: u64, frame: zeroize::Zeroizing<Vec<u8>>) -> Option<AnswerReceiver> {
        let (tx, rx) = mpsc::channel();
        {
            let mut pending = self.pending();
            if pending.failure.is_some() {
                return None;
            }
            pending.waiting.insert(id, tx);
        }
        let mut stdin = self.stdin.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = stdin.write_all(&frame).and_then(|()| stdin.flush()) {
            drop(stdin);
            self.pending().waiting.remove(&id);
            // Most likely the helper has just died: let the reader record how.
            self.await_failure(format!("cannot be written to ({e})"));
            return None;
        }
        Some(rx)
    }

    fn forget(&self, id: u64) {
        self.pending().waiting.remove(&id);
    }

    /// Waits (briefly) for the reader thread to record why the helper ended, else kills it
    /// with `fallback` as the reason.
    fn await_failure(&self, fallback: String) {
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.failure().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if self.failure().is_none() {
            self.kill(fallback);
        }
    }

    /// Kills the helper's process group (a hang) and fails every call in flight.
    fn kill(&self, reason: String) {
        {
            let mut pending = self.pending();
            pending.failure.get_or_insert(reason);
            // Dropping the senders wakes every caller still waiting.
            pending.waiting.clear();
        }
        self.child
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .kill_group();
    }

    /// Hands each reply to its caller until the helper's stdout closes, then records why.
    fn read_replies(&self, mut stdout: std::process::ChildStdout) {
        let ended = loop {
            match wire::read_frame(&mut stdout) {
                Ok(Some(frame)) => match wire::decode::<Reply>(&frame) {
                    Ok(reply) => {
                        if let Some(tx) = self.pending().waiting.remove(&reply.id) {
                            let _ = tx.send(reply.result);
                        }
                    }
                    Err(e) => break Some(format!("sent a reply seald cannot read ({e})")),
                },
                Ok(None) => break None,
                Err(e) => break Some(format!("broke its connection ({e})")),
            }
        };
        // Its stdout is closed: whatever of its group still runs goes too.
        let status = self
            .child
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .kill_group()
            .map_or_else(|| "ended".into(), describe_exit);
        self.kill(ended.unwrap_or(status));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exits_are_described_for_people() {
        use std::os::unix::process::ExitStatusExt;
        let abort = std::process::ExitStatus::from_raw(libc::SIGABRT);
        assert_eq!(
            describe_exit(abort),
            "crashed (killed by signal 6, SIGABRT)"
        );
        let code = std::process::ExitStatus::from_raw(3 << 8);
        assert_eq!(describe_exit(code), "ended (exit status 3)");
    }
}
