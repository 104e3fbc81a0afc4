//! A real time-stamping authority on loopback for the timestamp tests: OpenSSL's
//! `openssl ts -reply` behind a minimal HTTP responder ([`Server`], on
//! 127.0.0.1). Each POSTed `application/timestamp-query` is written to a file, answered by
//! `openssl ts -reply` with a TSA key and certificate made here (ECDSA P-256, extended key
//! usage timeStamping, critical, under a test root), and sent back as
//! `application/timestamp-reply`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};

use crate::loopback_http::Server;
use crate::openssl::{openssl, try_openssl};

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
    /// First, so that it stops before its directory goes.
    server: Server,
    dir: tempfile::TempDir,
    url: String,
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

        let work = d.to_path_buf();
        let mut n = 0usize;
        let server = Server::start(move |method, _path, body| {
            n += 1;
            match reply(&work, n, method, body) {
                Ok(token) => (200, "application/timestamp-reply", token),
                Err(msg) => (500, "text/plain", msg.into_bytes()),
            }
        });
        Self {
            url: format!("{}/tsa", server.base_url()),
            dir,
            server,
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
        self.server.answered()
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

/// Answers one query (a POST) with `openssl ts -reply`; the token, or why there is none.
fn reply(dir: &Path, n: usize, method: &str, query: &[u8]) -> Result<Vec<u8>, String> {
    if method != "POST" {
        return Err(format!("{method} is not POST"));
    }
    let (q, r) = (format!("q{n}.tsq"), format!("r{n}.tsr"));
    std::fs::write(dir.join(&q), query).map_err(|e| e.to_string())?;
    try_openssl(
        dir,
        &[
            "ts",
            "-reply",
            "-queryfile",
            &q,
            "-config",
            "ts.cnf",
            "-inkey",
            "tsa.key",
            "-signer",
            "tsa.pem",
            "-out",
            &r,
        ],
    )?;
    std::fs::read(dir.join(&r)).map_err(|e| e.to_string())
}
