//! A real time-stamping authority on loopback for the timestamp tests: OpenSSL's
//! `openssl ts -reply` behind a minimal HTTP responder (one thread, a `TcpListener` on
//! 127.0.0.1:0). Each POSTed `application/timestamp-query` is written to a file, answered by
//! `openssl ts -reply` with a TSA key and certificate made here (ECDSA P-256, extended key
//! usage timeStamping, critical, under a test root), and sent back as
//! `application/timestamp-reply`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// The OpenSSL extensions of the test root and the TSA certificate.
const CA_CONF: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = seald test TSA root
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[v3_tsa]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,nonRepudiation
extendedKeyUsage = critical,timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";

/// A running test TSA. Stops when dropped.
#[derive(Debug)]
pub struct TestTsa {
    dir: tempfile::TempDir,
    url: String,
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicUsize>,
    addr: std::net::SocketAddr,
    thread: Option<JoinHandle<()>>,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl TestTsa {
    /// Makes the root, the TSA key and certificate and the `openssl ts` config, and starts
    /// answering on a free loopback port.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        std::fs::write(d.join("ca.cnf"), CA_CONF).expect("ca.cnf");
        openssl(
            d,
            &[
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
                "root.key",
            ],
        );
        openssl(
            d,
            &[
                "req",
                "-new",
                "-x509",
                "-key",
                "root.key",
                "-out",
                "root.pem",
                "-days",
                "3650",
                "-config",
                "ca.cnf",
                "-extensions",
                "v3_ca",
            ],
        );
        openssl(
            d,
            &[
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
                "tsa.key",
            ],
        );
        openssl(
            d,
            &[
                "req",
                "-new",
                "-key",
                "tsa.key",
                "-out",
                "tsa.csr",
                "-config",
                "ca.cnf",
                "-subj",
                "/CN=seald test TSA/O=seald tests",
            ],
        );
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "tsa.csr",
                "-CA",
                "root.pem",
                "-CAkey",
                "root.key",
                "-CAcreateserial",
                "-out",
                "tsa.pem",
                "-days",
                "3650",
                "-extfile",
                "ca.cnf",
                "-extensions",
                "v3_tsa",
            ],
        );
        std::fs::write(d.join("tsaserial"), "01\n").expect("serial");
        let ts_conf = format!(
            "[tsa]\ndefault_tsa = tsa_config1\n[tsa_config1]\nserial = {}\ncrypto_device = builtin\nsigner_digest = sha256\ndefault_policy = 1.2.3.4.1\ndigests = sm3, sha256\naccuracy = secs:1\nordering = no\ntsa_name = yes\ness_cert_id_chain = no\ness_cert_id_alg = sha256\n",
            d.join("tsaserial").display()
        );
        std::fs::write(d.join("ts.cnf"), ts_conf).expect("ts.cnf");

        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the TSA");
        let addr = listener.local_addr().expect("address");
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicUsize::new(0));
        let work = d.to_path_buf();
        let thread = {
            let stop = stop.clone();
            let answered = answered.clone();
            std::thread::spawn(move || {
                for (n, conn) in listener.incoming().enumerate() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    if answer(conn, &work, n).is_ok() {
                        answered.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        };
        Self {
            url: format!("http://{addr}/tsa"),
            dir,
            stop,
            answered,
            addr,
            thread: Some(thread),
        }
    }

    /// The TSA's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The test root that issued the TSA certificate (PEM).
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root.pem")
    }

    /// The TSA's certificate (PEM).
    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("tsa.pem")
    }

    /// How many queries were answered with a token.
    pub fn answered(&self) -> usize {
        self.answered.load(Ordering::SeqCst)
    }

    /// The `[tsa]` config table for this TSA under `policy` with imprint `hash`.
    pub fn config(&self, policy: &str, hash: &str) -> String {
        tsa_table(self.url(), &self.root(), policy, hash)
    }
}

/// A `[tsa]` table.
pub fn tsa_table(url: &str, root: &Path, policy: &str, hash: &str) -> String {
    format!(
        "\n[tsa]\nurl = \"{url}\"\ntrusted_certs = [\"{}\"]\nhash = \"{hash}\"\ntimeout_secs = 5\npolicy = \"{policy}\"\n",
        root.display()
    )
}

/// A loopback URL where nothing listens (a TSA that is down).
pub fn closed_url() -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port();
    format!("http://127.0.0.1:{port}/tsa")
}

impl Drop for TestTsa {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one POST, answers it with `openssl ts -reply`.
fn answer(conn: TcpStream, dir: &Path, n: usize) -> std::io::Result<()> {
    conn.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut length = 0usize;
    let mut first = String::new();
    reader.read_line(&mut first)?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; length.min(64 * 1024)];
    reader.read_exact(&mut body)?;
    let query = dir.join(format!("q{n}.tsq"));
    let reply = dir.join(format!("r{n}.tsr"));
    std::fs::write(&query, &body)?;
    let out = Command::new("openssl")
        .current_dir(dir)
        .arg("ts")
        .arg("-reply")
        .arg("-queryfile")
        .arg(&query)
        .args([
            "-config", "ts.cnf", "-inkey", "tsa.key", "-signer", "tsa.pem", "-out",
        ])
        .arg(&reply)
        .output()?;
    let mut conn = conn;
    if !first.starts_with("POST ") || !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr).into_owned();
        write!(
            conn,
            "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{msg}",
            msg.len()
        )?;
        return Err(std::io::Error::other(msg));
    }
    let bytes = std::fs::read(&reply)?;
    write!(
        conn,
        "HTTP/1.1 200 OK\r\nContent-Type: application/timestamp-reply\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        bytes.len()
    )?;
    conn.write_all(&bytes)?;
    conn.flush()
}
