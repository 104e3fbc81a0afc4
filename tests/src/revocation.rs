//! An independent CA for the revocation tests: OpenSSL's `ca` (index file and CRLs) and `ocsp`
//! (responder) over a root key and certificate made in Rust, served on loopback.
//!
//! The CA keeps an OpenSSL `index.txt` of the certificates the deployment issued
//! ([`TestCa::record`]) and revokes them there ([`TestCa::revoke`]). A [`Server`] on
//! 127.0.0.1 answers
//! - `POST /ocsp` (`application/ocsp-request`) by running `openssl ocsp -index index.txt -CA
//!   root.pem -rsigner root.pem -rkey root.key -reqin … -respout … -nmin 5` per request, so the
//!   answer is OpenSSL's own responder logic (`openssl ocsp -port` is not used: it listens on
//!   all interfaces, and test servers listen on loopback only); a request OpenSSL cannot
//!   parse is answered malformedRequest;
//! - `GET /crl` with a CRL freshly generated from the index (`openssl ca -gencrl`, DER).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use seald::crypto::soft::SoftSigner;
use seald::crypto::PrehashSigner;
use time::OffsetDateTime;

use crate::loopback_http::{Reply, Server};
use crate::openssl::{openssl, try_openssl};

/// Minutes until the nextUpdate of OCSP answers (`openssl ocsp -nmin`).
pub const OCSP_NEXT_UPDATE_MINUTES: u32 = 5;

/// OCSPResponse { responseStatus malformedRequest (1) }.
const MALFORMED_REQUEST: [u8; 5] = [0x30, 0x03, 0x0a, 0x01, 0x01];

/// The `openssl ca` configuration (run in the CA's directory).
const CA_CONF: &str = "\
[ca]
default_ca = test_ca
[test_ca]
database = index.txt
certificate = root.pem
private_key = root.key
crlnumber = crlnumber
default_md = sha256
default_crl_hours = 24
";

/// One certificate in the index.
#[derive(Debug, Clone)]
struct Entry {
    serial: u64,
    subject: String,
    not_after: OffsetDateTime,
    /// Revocation time and reason.
    revoked: Option<(OffsetDateTime, String)>,
}

/// The CA's directory and index; one lock for the index file and every `openssl` run.
#[derive(Debug)]
struct State {
    dir: PathBuf,
    entries: Vec<Entry>,
    has_root: bool,
}

/// An OpenSSL CA, CRL issuer and OCSP responder on loopback. Stops when dropped.
#[derive(Debug)]
pub struct TestCa {
    /// First, so that it stops before the directory goes.
    server: Server,
    state: Arc<Mutex<State>>,
    ocsp_answers: Arc<AtomicUsize>,
    crls_served: Arc<AtomicUsize>,
    dir: tempfile::TempDir,
}

impl TestCa {
    /// Starts the responder with no root yet (its URLs can go into certificates); give it the
    /// root with [`TestCa::adopt_root`] before asking it anything.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        std::fs::write(d.join("ca.cnf"), CA_CONF).expect("ca.cnf");
        std::fs::write(d.join("index.txt"), "").expect("index.txt");
        std::fs::write(d.join("index.txt.attr"), "unique_subject = no\n").expect("attr");
        std::fs::write(d.join("crlnumber"), "01\n").expect("crlnumber");
        let state = Arc::new(Mutex::new(State {
            dir: d.to_path_buf(),
            entries: Vec::new(),
            has_root: false,
        }));
        let ocsp_answers = Arc::new(AtomicUsize::new(0));
        let crls_served = Arc::new(AtomicUsize::new(0));
        let server = {
            let (state, ocsp_answers, crls_served) =
                (state.clone(), ocsp_answers.clone(), crls_served.clone());
            Server::start(move |method, path, body| {
                let state = lock(&state);
                match (method, path) {
                    ("POST", "/ocsp") => reply(ocsp_response(&state, body), || {
                        ocsp_answers.fetch_add(1, Ordering::SeqCst);
                        "application/ocsp-response"
                    }),
                    ("GET", "/crl") => reply(gen_crl(&state, None), || {
                        crls_served.fetch_add(1, Ordering::SeqCst);
                        "application/pkix-crl"
                    }),
                    _ => (404, "text/plain", b"not found".to_vec()),
                }
            })
        };
        Self {
            server,
            state,
            ocsp_answers,
            crls_served,
            dir,
        }
    }

    /// A CA over `root_der` whose P-256 secret scalar is `secret`.
    pub fn with_root(root_der: &[u8], secret: &[u8; 32]) -> Self {
        let ca = Self::start();
        ca.adopt_root(root_der, secret);
        ca
    }

    /// Takes the root certificate (DER) and its P-256 secret scalar: writes `root.pem` and
    /// `root.key` (SEC1 `ECPrivateKey`, converted by `openssl ec`).
    pub fn adopt_root(&self, root_der: &[u8], secret: &[u8; 32]) {
        let mut state = lock(&self.state);
        let d = self.dir.path();
        let signer = SoftSigner::p256_from_secret(secret).expect("a P-256 secret");
        std::fs::write(d.join("root.key.der"), ec_private_key(secret, &signer)).expect("key");
        openssl(
            d,
            &[
                "ec",
                "-inform",
                "DER",
                "-in",
                "root.key.der",
                "-out",
                "root.key",
            ],
        );
        std::fs::remove_file(d.join("root.key.der")).expect("remove the DER key");
        std::fs::write(d.join("root.der"), root_der).expect("root.der");
        openssl(
            d,
            &[
                "x509", "-inform", "DER", "-in", "root.der", "-out", "root.pem",
            ],
        );
        state.has_root = true;
    }

    /// Adds a valid (`V`) certificate to the index; `subject` as OpenSSL writes it
    /// (`/C=CN/O=…/CN=…`).
    pub fn record(&self, serial: u64, subject: &str, not_after: OffsetDateTime) {
        let mut state = lock(&self.state);
        assert!(
            state.entries.iter().all(|e| e.serial != serial),
            "serial {serial} is already in the index"
        );
        state.entries.push(Entry {
            serial,
            subject: subject.to_owned(),
            not_after,
            revoked: None,
        });
        state.write_index();
    }

    /// Revokes a recorded certificate as of `at` for `reason` (an OpenSSL reason name such as
    /// `keyCompromise`, `superseded`, `cessationOfOperation`).
    pub fn revoke(&self, serial: u64, at: OffsetDateTime, reason: &str) {
        let mut state = lock(&self.state);
        let entry = state
            .entries
            .iter_mut()
            .find(|e| e.serial == serial)
            .unwrap_or_else(|| panic!("serial {serial} is not in the index"));
        entry.revoked = Some((at, reason.to_owned()));
        state.write_index();
    }

    /// A CRL of the index now (`openssl ca -gencrl`, next update in 24 h), DER.
    pub fn crl_der(&self) -> Vec<u8> {
        gen_crl(&lock(&self.state), None).expect("openssl ca -gencrl")
    }

    /// A CRL with the given thisUpdate and nextUpdate (a past `next_update`: an expired CRL),
    /// DER.
    pub fn crl_der_between(
        &self,
        last_update: OffsetDateTime,
        next_update: OffsetDateTime,
    ) -> Vec<u8> {
        gen_crl(&lock(&self.state), Some((last_update, next_update))).expect("openssl ca -gencrl")
    }

    /// Writes [`TestCa::crl_der`] to `path` (the offline "CRL file" case).
    pub fn write_crl(&self, path: &Path) {
        std::fs::write(path, self.crl_der()).expect("write the CRL");
    }

    /// The OCSP responder's URL.
    pub fn ocsp_url(&self) -> String {
        format!("{}/ocsp", self.server.base_url())
    }

    /// The CRL's URL.
    pub fn crl_url(&self) -> String {
        format!("{}/crl", self.server.base_url())
    }

    /// How many OCSP requests were answered (counted before the answer is sent).
    pub fn answered(&self) -> usize {
        self.ocsp_answers.load(Ordering::SeqCst)
    }

    /// How many CRLs were served over HTTP.
    pub fn crls_served(&self) -> usize {
        self.crls_served.load(Ordering::SeqCst)
    }

    /// Stops the responder: both URLs then refuse connections (the responder is down).
    pub fn stop(&mut self) {
        self.server.stop();
    }

    /// The root certificate (PEM).
    pub fn root_pem(&self) -> PathBuf {
        self.dir.path().join("root.pem")
    }

    /// The CA's working directory (`ca.cnf`, `index.txt`, `root.pem`, `root.key`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// 200 with `ok`'s content type, or 500 with OpenSSL's complaint.
fn reply(result: Result<Vec<u8>, String>, ok: impl FnOnce() -> &'static str) -> Reply {
    match result {
        Ok(body) => (200, ok(), body),
        Err(msg) => (500, "text/plain", msg.into_bytes()),
    }
}

impl State {
    /// Rewrites `index.txt`: `V|R <TAB> expiry <TAB> [revoked,reason] <TAB> SERIAL <TAB>
    /// unknown <TAB> subject`.
    fn write_index(&self) {
        let mut text = String::new();
        for e in &self.entries {
            let (flag, revoked) = match &e.revoked {
                None => ("V", String::new()),
                Some((at, reason)) => ("R", format!("{},{reason}", index_time(*at))),
            };
            text.push_str(&format!(
                "{flag}\t{}\t{revoked}\t{}\tunknown\t{}\n",
                index_time(e.not_after),
                index_serial(e.serial),
                e.subject
            ));
        }
        std::fs::write(self.dir.join("index.txt"), text).expect("write index.txt");
    }
}

/// `openssl ocsp` as a responder for one DER request.
fn ocsp_response(state: &State, request: &[u8]) -> Result<Vec<u8>, String> {
    if !state.has_root {
        return Err("the test CA has no root yet".into());
    }
    let d = &state.dir;
    std::fs::write(d.join("req.der"), request).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(d.join("resp.der"));
    let run = try_openssl(
        d,
        &[
            "ocsp",
            "-index",
            "index.txt",
            "-CA",
            "root.pem",
            "-rsigner",
            "root.pem",
            "-rkey",
            "root.key",
            "-reqin",
            "req.der",
            "-respout",
            "resp.der",
            "-nmin",
            &OCSP_NEXT_UPDATE_MINUTES.to_string(),
        ],
    );
    match run {
        // With `-reqin`, OpenSSL gives up on a request it cannot parse; a responder answers it
        // malformedRequest (as `openssl ocsp -port` does).
        Err(e) if e.contains("Error reading OCSP request") => return Ok(MALFORMED_REQUEST.to_vec()),
        other => other?,
    };
    std::fs::read(d.join("resp.der")).map_err(|e| e.to_string())
}

/// `openssl ca -gencrl` (with `-crl_lastupdate/-crl_nextupdate` if `between`), DER.
fn gen_crl(
    state: &State,
    between: Option<(OffsetDateTime, OffsetDateTime)>,
) -> Result<Vec<u8>, String> {
    if !state.has_root {
        return Err("the test CA has no root yet".into());
    }
    let mut args: Vec<String> = ["ca", "-config", "ca.cnf", "-gencrl", "-out", "crl.pem"]
        .map(String::from)
        .to_vec();
    if let Some((last, next)) = between {
        args.extend([
            "-crl_lastupdate".into(),
            index_time(last),
            "-crl_nextupdate".into(),
            index_time(next),
        ]);
    }
    try_openssl(&state.dir, &args)?;
    try_openssl(&state.dir, &["crl", "-in", "crl.pem", "-outform", "DER"])
}

/// The SEC1 `ECPrivateKey` DER of a P-256 key (with its curve and public point).
fn ec_private_key(secret: &[u8; 32], signer: &SoftSigner) -> Vec<u8> {
    let point = &signer.public_key().point;
    assert_eq!(point.len(), 65, "an uncompressed P-256 point");
    let mut der = vec![0x30, 0x77, 0x02, 0x01, 0x01, 0x04, 0x20];
    der.extend_from_slice(secret);
    der.extend_from_slice(&[
        0xa0, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0xa1, 0x44, 0x03,
        0x42, 0x00,
    ]);
    der.extend_from_slice(point);
    der
}

/// A time as OpenSSL's index and `-crl_*update` take it: `YYMMDDHHMMSSZ` (UTCTime) up to
/// 2049, `YYYYMMDDHHMMSSZ` from 2050.
pub fn index_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let year = if t.year() < 2050 {
        format!("{:02}", t.year() % 100)
    } else {
        format!("{:04}", t.year())
    };
    format!(
        "{year}{:02}{:02}{:02}{:02}{:02}Z",
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// A serial as OpenSSL writes it in the index: uppercase hex, an even number of digits.
pub fn index_serial(serial: u64) -> String {
    let hex = format!("{serial:X}");
    if hex.len() % 2 == 1 {
        format!("0{hex}")
    } else {
        hex
    }
}
