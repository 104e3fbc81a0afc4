//! Crash isolation for SKF and SDF libraries: the vendor's library runs in a helper process
//! (`seald-device-host`) that seald starts, talks to over the helper's stdin and stdout, and
//! restarts with backoff.
//!
//! A library that crashes takes only its helper down; one that hangs is killed when a call
//! outlives the module's `call_timeout_secs`. Either way every call in flight and every call
//! until the restart fail with [`DeviceError::LibraryDown`] (a removal: the devices count as
//! not present, their logins are forgotten), and the daemon, its other devices, its approvals
//! and its usage log go on. The next call after the backoff (1 s, doubling to 60 s, back to
//! 1 s after a call succeeds) starts a fresh helper.

mod p11kit;
mod remote;
mod serve;
mod wire;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use p11kit::{CallGuard, P11KitRemote};
pub use remote::RemoteBackend;
pub use serve::serve;
pub use wire::Setup;

use super::backend::DeviceEvent;
use super::error::{DeviceError, DeviceResult};
use super::token::TokenInfo;
use wire::{Answer, Call, Reply, Request};

/// The helper program's file name; it is looked for beside the running executable.
pub const HELPER_PROGRAM: &str = "seald-device-host";

/// The first restart waits this long; each failure in a row doubles it up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// A vendor library running in a helper process.
#[derive(Debug)]
pub struct DeviceHost {
    setup: Setup,
    program: PathBuf,
    timeout: Duration,
    state: Mutex<State>,
    /// Helpers started so far: part of every device's reset counter, so a login made in an
    /// earlier helper is never taken for a live one.
    starts: AtomicU64,
}

#[derive(Debug)]
enum State {
    /// A helper runs; `failures` counts the helpers before it that failed in a row.
    Up {
        connection: Arc<Connection>,
        failures: u32,
    },
    Down {
        reason: String,
        retry_at: Instant,
        failures: u32,
    },
}

impl DeviceHost {
    /// Starts the helper for `setup`; an error (the library cannot be loaded) comes back as it
    /// would from an in-process load.
    pub fn start(setup: Setup, timeout: Duration) -> DeviceResult<Self> {
        let program = helper_program().map_err(|reason| DeviceError::ModuleLoad {
            path: setup.path.display().to_string(),
            reason,
        })?;
        let mut host = Self {
            setup,
            program,
            timeout,
            state: Mutex::new(State::Down {
                reason: "has not started".into(),
                retry_at: Instant::now(),
                failures: 0,
            }),
            starts: AtomicU64::new(0),
        };
        let connection = host.spawn()?;
        *host.state.get_mut().expect("fresh lock") = State::Up {
            connection,
            failures: 0,
        };
        Ok(host)
    }

    /// The module's configured name.
    pub fn name(&self) -> &str {
        &self.setup.name
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The running helper, starting a new one when the backoff allows.
    fn connection(&self) -> DeviceResult<Arc<Connection>> {
        let mut state = self.lock();
        if let State::Up { connection, .. } = &*state {
            if connection.failure().is_none() {
                return Ok(connection.clone());
            }
            let connection = connection.clone();
            Self::mark_down(&mut state, &connection, &self.setup.name);
        }
        let State::Down {
            reason,
            retry_at,
            failures,
        } = &*state
        else {
            unreachable!("a live helper returned above");
        };
        let now = Instant::now();
        if now < *retry_at {
            return Err(self.down(reason.clone(), *retry_at - now));
        }
        let failures = *failures;
        match self.spawn() {
            Ok(connection) => {
                tracing::info!(module = %self.setup.name, "the device library's helper was restarted");
                *state = State::Up {
                    connection: connection.clone(),
                    failures,
                };
                Ok(connection)
            }
            Err(e) => {
                let reason = format!("could not be restarted ({e})");
                let wait = backoff(failures + 1);
                *state = State::Down {
                    reason: reason.clone(),
                    retry_at: now + wait,
                    failures: failures + 1,
                };
                Err(self.down(reason, wait))
            }
        }
    }

    /// Moves from the failed `connection` to Down, with the backoff its run of failures earns
    /// (a helper that ran for a minute ends the run).
    fn mark_down(state: &mut State, connection: &Arc<Connection>, module: &str) {
        let State::Up {
            connection: current,
            failures,
        } = &*state
        else {
            return;
        };
        if !Arc::ptr_eq(current, connection) {
            return;
        }
        let reason = connection
            .failure()
            .unwrap_or_else(|| "closed its connection".into());
        let failures = if connection.started.elapsed() >= MAX_BACKOFF {
            1
        } else {
            failures + 1
        };
        tracing::error!(module = %module, %reason, "the device library's helper is gone; its devices count as not present until it is restarted");
        *state = State::Down {
            reason,
            retry_at: Instant::now() + backoff(failures),
            failures,
        };
    }

    /// The error for calls while the helper is down, after `connection` failed.
    fn failed(&self, connection: &Arc<Connection>) -> DeviceError {
        let mut state = self.lock();
        Self::mark_down(&mut state, connection, &self.setup.name);
        match &*state {
            State::Down {
                reason, retry_at, ..
            } => self.down(
                reason.clone(),
                retry_at.saturating_duration_since(Instant::now()),
            ),
            State::Up { .. } => self.down("was restarted during the call".into(), Duration::ZERO),
        }
    }

    fn down(&self, reason: String, retry: Duration) -> DeviceError {
        DeviceError::LibraryDown {
            module: self.setup.name.clone(),
            reason,
            retry: Some(retry.as_secs_f64().ceil() as u64),
        }
    }

    /// Starts a helper and waits for it to open the library.
    fn spawn(&self) -> DeviceResult<Arc<Connection>> {
        let load_error = |reason: String| DeviceError::ModuleLoad {
            path: self.setup.path.display().to_string(),
            reason,
        };
        let mut child = Command::new(&self.program)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| load_error(format!("cannot start {}: {e}", self.program.display())))?;
        let mut stdin = child.stdin.take().expect("piped stdin");
        let mut stdout = child.stdout.take().expect("piped stdout");
        self.starts.fetch_add(1, Ordering::SeqCst);
        let opened = wire::write_frame(&mut stdin, &self.setup)
            .and_then(|()| wire::read_frame(&mut stdout))
            .and_then(|frame| match frame {
                Some(frame) => wire::decode::<Reply>(&frame),
                None => Err(std::io::ErrorKind::UnexpectedEof.into()),
            });
        match opened {
            Ok(Reply { result: Ok(_), .. }) => {}
            Ok(Reply { result: Err(e), .. }) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e.into());
            }
            Err(e) => {
                let _ = child.kill();
                let status = child.wait().map(describe_exit).unwrap_or_default();
                return Err(load_error(format!(
                    "the helper failed at start ({e}){status}"
                )));
            }
        }
        let connection = Arc::new(Connection {
            started: Instant::now(),
            child: Mutex::new(child),
            stdin: Mutex::new(stdin),
            pending: Mutex::new(Pending::default()),
            next_id: AtomicU64::new(1),
        });
        let reader = connection.clone();
        std::thread::Builder::new()
            .name(format!("device-host-{}", self.setup.name))
            .spawn(move || reader.read_replies(stdout))
            .map_err(|e| load_error(format!("cannot start the reader thread: {e}")))?;
        Ok(connection)
    }

    /// Sends `call` and waits for its answer (without a time limit when `timeout` is `None`).
    fn call_with(&self, call: Call, timeout: Option<Duration>) -> DeviceResult<Answer> {
        let connection = self.connection()?;
        let what = call.name();
        let Some((id, answer)) = connection.send(call) else {
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
            Ok(result) => result.map_err(DeviceError::from),
            Err(()) => Err(self.failed(&connection)),
        }
    }

    fn call(&self, call: Call) -> DeviceResult<Answer> {
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

    /// Waits, without a time limit, for the next device event.
    pub fn wait_event(&self) -> DeviceResult<Option<DeviceEvent>> {
        match self.call_with(Call::WaitEvent, None)? {
            Answer::Event(event) => Ok(event),
            other => Err(unexpected(other)),
        }
    }

    /// How many helpers have been started (the current one's number).
    pub(crate) fn starts(&self) -> u64 {
        self.starts.load(Ordering::SeqCst)
    }
}

impl Drop for DeviceHost {
    fn drop(&mut self) {
        if let State::Up { connection, .. } = &*self.lock() {
            connection.kill("was stopped with its module".into());
        }
    }
}

fn unexpected(answer: Answer) -> DeviceError {
    DeviceError::Other(format!(
        "the device helper gave an answer of the wrong kind: {answer:?}"
    ))
}

/// 1 s, 2 s, 4 s … up to a minute, for the `failures`-th failure in a row.
fn backoff(failures: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(1 << failures.saturating_sub(1).min(6))
        .min(MAX_BACKOFF)
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

/// " (killed by signal 6, SIGABRT)", " (exit status 3)".
fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!(" (exit status {code})"),
        (None, Some(signal)) => format!(" (killed by signal {signal}{})", signal_name(signal)),
        _ => String::new(),
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

/// One running helper.
#[derive(Debug)]
struct Connection {
    started: Instant,
    child: Mutex<Child>,
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

    /// Sends `call`; `None` when the helper has failed (see [`Connection::failure`]).
    fn send(&self, call: Call) -> Option<(u64, AnswerReceiver)> {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let (tx, rx) = mpsc::channel();
        {
            let mut pending = self.pending();
            if pending.failure.is_some() {
                return None;
            }
            pending.waiting.insert(id, tx);
        }
        let mut stdin = self.stdin.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = wire::write_frame(&mut *stdin, &Request { id, call }) {
            drop(stdin);
            self.pending().waiting.remove(&id);
            // Most likely the helper has just died: let the reader record how.
            let _ = self.child.lock().unwrap_or_else(|e| e.into_inner()).kill();
            self.await_failure(format!("cannot be written to ({e})"));
            return None;
        }
        Some((id, rx))
    }

    fn forget(&self, id: u64) {
        self.pending().waiting.remove(&id);
    }

    /// Waits (briefly) for the reader thread to record why the helper ended, else records
    /// `fallback`.
    fn await_failure(&self, fallback: String) {
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.failure().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.pending().failure.get_or_insert(fallback);
    }

    /// Kills the helper (a hang); the reader thread then fails every call in flight.
    fn kill(&self, reason: String) {
        self.pending().failure.get_or_insert(reason);
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        let _ = child.kill();
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
                    Err(e) => break format!("sent a reply seald cannot read ({e})"),
                },
                Ok(None) => break "crashed".to_owned(),
                Err(e) => break format!("broke its connection ({e})"),
            }
        };
        let status = {
            let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
            let _ = child.kill();
            child.wait().map(describe_exit).unwrap_or_default()
        };
        let mut pending = self.pending();
        if pending.failure.is_none() {
            pending.failure = Some(format!("{ended}{status}"));
        }
        // Dropping the senders wakes every caller still waiting.
        pending.waiting.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_to_a_minute() {
        let waits: Vec<u64> = (1..=9).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn exits_are_described_for_people() {
        use std::os::unix::process::ExitStatusExt;
        let abort = std::process::ExitStatus::from_raw(libc::SIGABRT);
        assert_eq!(describe_exit(abort), " (killed by signal 6, SIGABRT)");
        let code = std::process::ExitStatus::from_raw(3 << 8);
        assert_eq!(describe_exit(code), " (exit status 3)");
    }
}
