//! A small HTTP/1.1 client for `sealctl … --daemon URL`: loopback `http://` only, bearer token
//! read from a 0600 file (`--token-file`, or the file named by `SEALD_TOKEN_FILE`), never
//! from argv or the environment itself.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use zeroize::Zeroizing;

/// The environment variable naming the token file (the file, not the token).
pub const TOKEN_FILE_ENV: &str = "SEALD_TOKEN_FILE";

/// Why a call to the daemon did not get an answer, or got a refusal.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is not `http://host:port` on this machine.
    #[error("--daemon {0:?} is not a URL like http://127.0.0.1:7780 (loopback, plain HTTP)")]
    BadUrl(String),
    /// The URL names another machine: tokens and PINs would cross the network in clear text.
    #[error("--daemon {0:?} is not on this machine: sealctl sends tokens and PINs over plain HTTP, so it talks only to a loopback address (http://127.0.0.1:PORT, http://[::1]:PORT or http://localhost:PORT)")]
    NotLoopback(String),
    /// No token file was named.
    #[error("name your token file with --token-file FILE or SEALD_TOKEN_FILE=FILE")]
    NoTokenFile,
    /// The token file cannot be read or is open to others.
    #[error("token file {path}: {problem}")]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The connection failed.
    #[error("cannot reach seald at {url}: {source}; is the daemon running?")]
    Connect {
        /// The daemon URL.
        url: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A local file to send or write could not be used.
    #[error("{path}: {problem}")]
    File {
        /// The file.
        path: PathBuf,
        /// What the system said.
        problem: String,
    },
    /// The answer was not HTTP with a JSON body.
    #[error("seald's answer could not be read: {0}")]
    BadAnswer(String),
    /// The daemon refused, with its code and message.
    #[error("seald refused ({status} {code}): {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Stable error code.
        code: String,
        /// The daemon's message for people.
        message: String,
    },
}

/// A connection description: where the daemon is and who we are.
#[derive(Debug)]
pub struct DaemonClient {
    url: String,
    authority: String,
    token: Zeroizing<String>,
}

fn read_token(path: &Path) -> Result<Zeroizing<String>, ClientError> {
    use std::os::unix::fs::PermissionsExt;
    let err = |problem: String| ClientError::TokenFile {
        path: path.to_owned(),
        problem,
    };
    let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(err(format!(
            "it is readable by others (mode {:o}); run `chmod 600` on it",
            meta.permissions().mode() & 0o777
        )));
    }
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?);
    let token = text.trim();
    if token.is_empty() {
        return Err(err("it is empty".into()));
    }
    Ok(Zeroizing::new(token.to_owned()))
}

impl DaemonClient {
    /// A client for `url`, with the token from `token_file` or the file `SEALD_TOKEN_FILE` names.
    pub fn new(url: &str, token_file: Option<&Path>) -> Result<Self, ClientError> {
        let authority = url
            .strip_prefix("http://")
            .map(|rest| rest.trim_end_matches('/'))
            .filter(|a| !a.is_empty() && !a.contains('/'))
            .ok_or_else(|| ClientError::BadUrl(url.to_owned()))?;
        check_loopback(url, authority)?;
        let path = match token_file {
            Some(p) => p.to_owned(),
            None => std::env::var_os(TOKEN_FILE_ENV)
                .map(PathBuf::from)
                .ok_or(ClientError::NoTokenFile)?,
        };
        Ok(Self {
            url: url.to_owned(),
            authority: authority.to_owned(),
            token: read_token(&path)?,
        })
    }

    /// Sends `method path` with an optional JSON body; the JSON answer on 2xx, else the refusal.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let bytes = body.map(|b| Zeroizing::new(b.to_string()));
        self.call_bytes(method, path, bytes.as_ref().map(|b| b.as_bytes()))
    }

    /// Like [`DaemonClient::call`] with a body already serialised (e.g. holding a PIN in
    /// memory the caller wipes).
    pub fn call_bytes(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<Value, ClientError> {
        let bytes = body.unwrap_or_default();
        let content_type = body.map(|_| "application/json");
        let mut stream = self.send(method, path, content_type, bytes.len() as u64, |s| {
            s.write_all(bytes)
        })?;
        let mut answer = Vec::new();
        stream
            .read_to_end(&mut answer)
            .map_err(|e| self.connect_error(e))?;
        parse_answer(&answer)
    }

    /// POSTs a `multipart/form-data` body made of `parts` to `path`, streaming file parts from
    /// disk; the JSON answer on 2xx, else the refusal.
    pub fn upload(&self, path: &str, parts: &[Part]) -> Result<Value, ClientError> {
        let mut random = [0u8; 12];
        getrandom::fill(&mut random).map_err(|e| ClientError::BadAnswer(e.to_string()))?;
        let boundary = format!("seald-{}", hex::encode(random));
        let mut length = 0u64;
        let mut heads = Vec::with_capacity(parts.len());
        for part in parts {
            let head = part.head(&boundary);
            length += head.len() as u64 + part.len()? + 2;
            heads.push(head);
        }
        let tail = format!("--{boundary}--\r\n");
        length += tail.len() as u64;
        let content_type = format!("multipart/form-data; boundary={boundary}");
        let mut stream = self.send("POST", path, Some(&content_type), length, |s| {
            for (part, head) in parts.iter().zip(&heads) {
                s.write_all(head.as_bytes())?;
                part.write_body(s)?;
                s.write_all(b"\r\n")?;
            }
            s.write_all(tail.as_bytes())
        })?;
        let mut answer = Vec::new();
        stream
            .read_to_end(&mut answer)
            .map_err(|e| self.connect_error(e))?;
        parse_answer(&answer)
    }

    /// GETs `path` into the new file `dest` (2xx), streaming; the refusal otherwise. Returns
    /// the bytes written.
    pub fn download(&self, path: &str, dest: &Path) -> Result<u64, ClientError> {
        let stream = self.send("GET", path, None, 0, |_| Ok(()))?;
        let mut reader = std::io::BufReader::new(stream);
        let mut head = Vec::new();
        loop {
            let mut line = Vec::new();
            let n = std::io::BufRead::read_until(&mut reader, b'\n', &mut line)
                .map_err(|e| self.connect_error(e))?;
            if n == 0 {
                return Err(ClientError::BadAnswer(
                    "the answer ended in its header".into(),
                ));
            }
            head.extend_from_slice(&line);
            if line == b"\r\n" || head.len() > 64 * 1024 {
                break;
            }
        }
        let text = String::from_utf8_lossy(&head).into_owned();
        let status: u16 = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| ClientError::BadAnswer("no HTTP status".into()))?;
        if !(200..300).contains(&status) {
            let mut rest = Vec::new();
            reader
                .read_to_end(&mut rest)
                .map_err(|e| self.connect_error(e))?;
            let mut whole = head;
            whole.extend_from_slice(&rest);
            return parse_answer(&whole).map(|_| 0);
        }
        if text
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            return Err(ClientError::BadAnswer(
                "the document came chunked; this sealctl expects a Content-Length".into(),
            ));
        }
        use std::os::unix::fs::OpenOptionsExt;
        let io_err = |e: std::io::Error| ClientError::File {
            path: dest.to_owned(),
            problem: e.to_string(),
        };
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dest)
            .map_err(io_err)?;
        let written = std::io::copy(&mut reader, &mut file).map_err(io_err)?;
        file.sync_all().map_err(io_err)?;
        Ok(written)
    }

    fn connect_error(&self, source: std::io::Error) -> ClientError {
        ClientError::Connect {
            url: self.url.clone(),
            source,
        }
    }

    /// Connects, sends the request head and lets `body` write `length` bytes of body.
    fn send(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        length: u64,
        body: impl FnOnce(&mut TcpStream) -> std::io::Result<()>,
    ) -> Result<TcpStream, ClientError> {
        let connect = |source| self.connect_error(source);
        // `localhost` is looked up: connect only to the loopback addresses it names.
        let addresses: Vec<SocketAddr> = self
            .authority
            .to_socket_addrs()
            .map_err(connect)?
            .filter(|a| a.ip().is_loopback())
            .collect();
        if addresses.is_empty() {
            return Err(ClientError::NotLoopback(self.url.clone()));
        }
        let mut stream = TcpStream::connect(&addresses[..]).map_err(connect)?;
        let timeout = Some(Duration::from_secs(60));
        stream.set_read_timeout(timeout).map_err(connect)?;
        stream.set_write_timeout(timeout).map_err(connect)?;
        let mut head = Zeroizing::new(format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nConnection: close\r\nContent-Length: {length}\r\n",
            self.authority,
            self.token.as_str(),
        ));
        if let Some(content_type) = content_type {
            head.push_str(&format!("Content-Type: {content_type}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).map_err(connect)?;
        if let Err(e) = body(&mut stream) {
            // The daemon may have refused (e.g. too large) and closed: read its answer.
            let mut answer = Vec::new();
            if stream.read_to_end(&mut answer).is_ok() && !answer.is_empty() {
                parse_answer(&answer)?;
            }
            return Err(connect(e));
        }
        Ok(stream)
    }
}

/// One part of a `multipart/form-data` upload.
#[derive(Debug, Clone)]
pub enum Part {
    /// A JSON part.
    Json {
        /// The part's name.
        name: String,
        /// Its JSON.
        value: Value,
    },
    /// A file, streamed from disk.
    File {
        /// The part's name.
        name: String,
        /// The file name the daemon sees.
        file_name: String,
        /// The file.
        path: PathBuf,
        /// Its media type.
        content_type: String,
    },
}

impl Part {
    fn head(&self, boundary: &str) -> String {
        let quote = |s: &str| s.replace(['"', '\r', '\n'], "_");
        match self {
            Part::Json { name, .. } => format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"\r\nContent-Type: application/json\r\n\r\n",
                quote(name)
            ),
            Part::File {
                name,
                file_name,
                content_type,
                ..
            } => format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"; filename=\"{}\"\r\nContent-Type: {content_type}\r\n\r\n",
                quote(name),
                quote(file_name)
            ),
        }
    }

    fn len(&self) -> Result<u64, ClientError> {
        match self {
            Part::Json { value, .. } => Ok(value.to_string().len() as u64),
            Part::File { path, .. } => {
                std::fs::metadata(path)
                    .map(|m| m.len())
                    .map_err(|e| ClientError::File {
                        path: path.clone(),
                        problem: e.to_string(),
                    })
            }
        }
    }

    fn write_body(&self, out: &mut TcpStream) -> std::io::Result<()> {
        match self {
            Part::Json { value, .. } => out.write_all(value.to_string().as_bytes()),
            Part::File { path, .. } => {
                let mut file = std::fs::File::open(path)?;
                std::io::copy(&mut file, out).map(|_| ())
            }
        }
    }
}

/// Accepts `authority` (`host:port` of `url`) only for a loopback host: `localhost`, an IPv4
/// address in 127.0.0.0/8, or `[::1]`; and a port.
fn check_loopback(url: &str, authority: &str) -> Result<(), ClientError> {
    let bad = || ClientError::BadUrl(url.to_owned());
    if authority.contains('@') {
        return Err(bad());
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(rest) => {
            let (host, port) = rest.split_once("]:").ok_or_else(bad)?;
            let ip: Ipv6Addr = host.parse().map_err(|_| bad())?;
            (Some(IpAddr::V6(ip)), port)
        }
        None => {
            let (host, port) = authority.rsplit_once(':').ok_or_else(bad)?;
            if host.eq_ignore_ascii_case("localhost") {
                (None, port)
            } else {
                match host.parse::<std::net::Ipv4Addr>() {
                    Ok(ip) => (Some(IpAddr::V4(ip)), port),
                    Err(_) if host.is_empty() || host.contains(':') => return Err(bad()),
                    // A name other than localhost, e.g. 127.0.0.1.example.com.
                    Err(_) => return Err(ClientError::NotLoopback(url.to_owned())),
                }
            }
        }
    };
    if port.parse::<u16>().is_err() {
        return Err(bad());
    }
    match host {
        Some(ip) if !ip.is_loopback() => Err(ClientError::NotLoopback(url.to_owned())),
        _ => Ok(()),
    }
}

fn parse_answer(answer: &[u8]) -> Result<Value, ClientError> {
    let text = String::from_utf8_lossy(answer);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| ClientError::BadAnswer("no HTTP header".into()))?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ClientError::BadAnswer("no HTTP status".into()))?;
    let value: Value = serde_json::from_str(body.trim())
        .map_err(|e| ClientError::BadAnswer(format!("status {status}, body not JSON: {e}")))?;
    if (200..300).contains(&status) {
        Ok(value)
    } else {
        Err(ClientError::Refused {
            status,
            code: value["code"].as_str().unwrap_or("unknown").to_owned(),
            message: value["message"].as_str().unwrap_or_default().to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_and_refusals_are_read() {
        let ok = parse_answer(b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\n{\"a\":1}\n").unwrap();
        assert_eq!(ok["a"], 1);
        let err = parse_answer(
            b"HTTP/1.1 403 Forbidden\r\n\r\n{\"code\":\"forbidden\",\"message\":\"no\"}",
        )
        .unwrap_err();
        assert!(
            matches!(err, ClientError::Refused { status: 403, .. }),
            "{err}"
        );
        assert!(parse_answer(b"garbage").is_err());
    }

    #[test]
    fn only_loopback_style_http_urls_and_private_token_files() {
        assert!(matches!(
            DaemonClient::new("https://x/", None),
            Err(ClientError::BadUrl(_))
        ));
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("tok");
        std::fs::write(&f, "sealtk_x\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = DaemonClient::new("http://127.0.0.1:1", Some(&f)).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        let c = DaemonClient::new("http://127.0.0.1:1", Some(&f)).unwrap();
        assert_eq!(c.token.as_str(), "sealtk_x");
    }

    #[test]
    fn daemon_urls_off_this_machine_are_refused() {
        for url in [
            "http://127.0.0.1:7780",
            "http://127.1.2.3:7780/",
            "http://localhost:7780",
            "http://LOCALHOST:7780",
            "http://[::1]:7780",
        ] {
            assert!(
                check_loopback(url, url.trim_start_matches("http://").trim_end_matches('/'))
                    .is_ok(),
                "{url}"
            );
        }
        for url in [
            "http://192.168.1.5:7780",
            "http://10.0.0.1:7780",
            "http://0.0.0.0:7780",
            "http://[2001:db8::1]:7780",
            "http://[::ffff:127.0.0.1]:7780",
            "http://seald.example.com:7780",
            "http://127.0.0.1.example.com:7780",
        ] {
            let err = DaemonClient::new(url, None).unwrap_err();
            assert!(matches!(err, ClientError::NotLoopback(_)), "{url}: {err}");
            let message = err.to_string();
            assert!(
                message.contains("plain HTTP") && message.contains("127.0.0.1"),
                "{message}"
            );
        }
        for url in [
            "http://127.0.0.1",
            "http://user@127.0.0.1:7780",
            "http://[::1]",
            "http://:7780",
            "http://127.0.0.1:port",
        ] {
            assert!(
                matches!(DaemonClient::new(url, None), Err(ClientError::BadUrl(_))),
                "{url}"
            );
        }
    }
}
