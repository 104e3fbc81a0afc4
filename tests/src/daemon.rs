//! The real `seald` binary, started on a free loopback port and stopped on drop.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::bins::bin;

/// An HTTP answer read off the wire.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body text.
    pub body: String,
}

impl RawResponse {
    /// The first header with this (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }
}

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

    /// The config file the daemon was started with (a test may edit it and send SIGHUP).
    pub fn config_path(&self) -> std::path::PathBuf {
        self._dir.path().join("seald.toml")
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
        // `SEALD_WRAPPER="valgrind --tool=callgrind …"` runs the daemon under a profiler.
        let wrapper = std::env::var("SEALD_WRAPPER").unwrap_or_default();
        let mut wrapper = wrapper.split_whitespace();
        let mut command = match wrapper.next() {
            Some(program) => {
                let mut c = Command::new(program);
                c.args(wrapper).arg(bin("seald"));
                c
            }
            None => Command::new(bin("seald")),
        };
        // `--init`: a test's store may be new (it is created on this first start).
        command
            .arg("--init")
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

    /// Kills the daemon with SIGKILL (no clean-up of any kind) and reaps it.
    pub fn kill_hard(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The daemon's process id (to read its CPU time from `/proc`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The daemon's thread count (`Threads:` in /proc/PID/status), if readable.
    pub fn threads(&self) -> Option<usize> {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .and_then(|n| n.trim().parse().ok())
    }

    /// `host:port` of the daemon.
    pub fn authority(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    /// Sends one HTTP/1.1 request with exactly these headers (plus `Host` unless given,
    /// `Content-Length` for a body, `Connection: close`) and reads the whole answer.
    pub fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> RawResponse {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(self.authority()).expect("connect");
        // Every wait is bounded: no answer takes this long.
        let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(120)));
        let mut head = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
        if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
            head.push_str(&format!("Host: {}\r\n", self.authority()));
        }
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(body) = body {
            if !headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            {
                head.push_str(&format!("Content-Length: {}\r\n", body.len()));
            }
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).expect("send head");
        if let Some(body) = body {
            // The daemon may answer and close before reading a refused body.
            let _ = stream.write_all(body);
        }
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw);
        parse_response(&raw)
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
        if std::env::var_os("SEALD_WRAPPER").is_some() {
            // A profiler writes its output on a clean exit: ask, then wait a bounded time.
            // SAFETY: kill has no memory preconditions; the pid is our own child's.
            unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
            for _ in 0..600 {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn parse_response(raw: &[u8]) -> RawResponse {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").expect("HTTP head");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    RawResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}
