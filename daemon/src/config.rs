//! The daemon's configuration file (`seald.toml`): typed, validated, every error naming its key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::custody::PinPolicy;
use crate::device::pcsc::{AtrConfig, AtrTable};

// Each section's type lives with the module that owns it; the config file only assembles them
// (config imports device and custody, never the other way round).
pub use crate::device::pcsc::PcscConfig;
pub use crate::device::ModuleConfig;

/// Default listen address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7780";

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address the API listens on; must be a loopback address.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// PKCS#11 modules to load.
    #[serde(default, rename = "module")]
    pub modules: Vec<ModuleConfig>,
    /// HTTP guards.
    #[serde(default)]
    pub api: ApiConfig,
    /// The PC/SC watcher (`[pcsc]`).
    #[serde(default)]
    pub pcsc: PcscConfig,
    /// Cards by ATR (`[[atr]]`): which module, profile and model each card is.
    #[serde(default, rename = "atr")]
    pub atrs: Vec<AtrConfig>,
    /// What new PINs must look like and how old they may grow.
    #[serde(default)]
    pub pin_policy: PinPolicy,
    /// The store: identities, seals, requests and the usage log. A SQLite file (relative
    /// paths are relative to the config file) or a `postgres://` URL (see `[postgres]`).
    #[serde(default = "default_store")]
    pub store: PathBuf,
    /// The log's format and level (`[log]`).
    #[serde(default)]
    pub log: crate::logging::LogConfig,
    /// Who may read `GET /metrics` (`[metrics]`).
    #[serde(default)]
    pub metrics: crate::metrics::MetricsConfig,
    /// A PostgreSQL store shared by several nodes (`[postgres]`).
    #[serde(default)]
    pub postgres: PostgresConfig,
    /// Trust roots (PEM or DER files) that seal certificates must chain to.
    #[serde(default)]
    pub trust_roots: Vec<PathBuf>,
    /// The seal-maker key, used when seals are enrolled (its certificate is read from the token).
    #[serde(default)]
    pub maker: Option<MakerConfig>,
    /// Refusal summaries and the retention of operational records (`[audit]`).
    #[serde(default)]
    pub audit: AuditConfig,
    /// Bounds on what clients may ask (`[limits]`).
    #[serde(default)]
    pub limits: LimitsConfig,
    /// How PDFs are signed (`[pdf]`).
    #[serde(default)]
    pub pdf: PdfConfig,
    /// RFC 3161 timestamps at stamping and the TSAs trusted at verification (`[tsa]`).
    #[serde(default)]
    pub tsa: Option<TsaConfig>,
    /// Certificate status from OCSP and CRLs, at stamping and at verification
    /// (`[revocation]`); absent: status is not checked, and reports say so.
    #[serde(default)]
    pub revocation: Option<RevocationConfig>,
}

/// The `[revocation]` table: where certificate status is found (OCSP responders, CRLs) and
/// what stamping does when it cannot be.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevocationConfig {
    /// CRL files (PEM or DER) from the CAs, read again whenever they change: how a
    /// deployment without network keeps status. Relative paths are relative to the config
    /// file.
    #[serde(default)]
    pub crl_files: Vec<PathBuf>,
    /// An OCSP responder (`http://…`) asked for every certificate, before any a certificate
    /// names.
    #[serde(default)]
    pub ocsp_url: Option<String>,
    /// Follow the OCSP responders and CRL distribution points written in certificates issued
    /// by a trust root (default true; set false where there is no network).
    #[serde(default = "default_true")]
    pub fetch: bool,
    /// Seconds one OCSP or CRL exchange may take (1 to 300).
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// At stamping, when no source can give a certificate's status: `refuse` (default:
    /// nothing is signed) or `allow` (sign, and say so in the usage log).
    #[serde(default)]
    pub on_unknown: crate::revocation::OnUnknown,
}

fn default_true() -> bool {
    true
}

impl RevocationConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            key: format!("revocation.{key}"),
            message,
        };
        if let Some(url) = &self.ocsp_url {
            crate::fetch::check_http_url(url).map_err(|why| {
                invalid(
                    "ocsp_url",
                    format!("{why} (OCSP is asked over plain HTTP, RFC 6960 appendix A: the answer is signed)"),
                )
            })?;
        }
        if self.timeout_secs == 0 || self.timeout_secs > 300 {
            return Err(invalid("timeout_secs", "must be between 1 and 300".into()));
        }
        Ok(())
    }

    /// The checker these settings make.
    pub fn checker(&self) -> crate::revocation::Checker {
        crate::revocation::Checker::new(crate::revocation::Settings {
            crl_files: self.crl_files.clone(),
            ocsp_url: self.ocsp_url.clone(),
            fetch: self.fetch,
            timeout: std::time::Duration::from_secs(self.timeout_secs),
            on_unknown: self.on_unknown,
        })
    }
}

/// The `[tsa]` table: a time-stamping authority (RFC 3161) asked for a token over every
/// signature value, and the TSA certificates trusted when tokens are verified.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TsaConfig {
    /// The TSA's URL (`http://host[:port]/path`; loopback or any host: the request holds only
    /// a digest and the token is signed). Absent: no timestamps are asked for, and
    /// `trusted_certs` still serve verification.
    #[serde(default)]
    pub url: Option<String>,
    /// PEM or DER files of trusted TSA certificates: the TSA roots (or the TSA certificates
    /// themselves) that tokens must chain to, at stamping and at verification. Relative paths
    /// are relative to the config file.
    #[serde(default)]
    pub trusted_certs: Vec<PathBuf>,
    /// The imprint's digest: `sm3` (default) or `sha256`.
    #[serde(default)]
    pub hash: crate::tsa::HashAlgorithm,
    /// Seconds to wait for the TSA's answer (1 to 300).
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// What happens when no token can be had: `off` (default: none asked for),
    /// `best-effort` (warn, keep the signature without one) or `required` (the request fails,
    /// nothing is released). Daemon-wide: it applies to every seal.
    #[serde(default)]
    pub policy: crate::tsa::TsaPolicy,
}

fn default_timeout_secs() -> u64 {
    10
}

impl TsaConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            key: format!("tsa.{key}"),
            message,
        };
        if let Some(url) = &self.url {
            crate::fetch::check_http_url(url).map_err(|why| {
                invalid(
                    "url",
                    format!("{why} (seald asks TSAs over plain HTTP, as RFC 3161 §3.4 does: the request holds only a digest and the answer is signed)"),
                )
            })?;
        }
        if self.timeout_secs == 0 || self.timeout_secs > 300 {
            return Err(invalid("timeout_secs", "must be between 1 and 300".into()));
        }
        if self.policy != crate::tsa::TsaPolicy::Off {
            if self.url.is_none() {
                return Err(invalid(
                    "policy",
                    format!("`{}` needs `tsa.url`, the TSA to ask", self.policy.as_str()),
                ));
            }
            if self.trusted_certs.is_empty() {
                return Err(invalid(
                    "trusted_certs",
                    "name the TSA's root (or its certificate): seald checks every token before it uses it".into(),
                ));
            }
        }
        Ok(())
    }
}

/// What `[tsa]` sets up: the client (when a URL is given), the policy and the trusted TSA
/// certificates.
#[derive(Debug, Clone)]
pub struct TsaSetup {
    /// The client, when `[tsa] url` is set.
    pub client: Option<std::sync::Arc<crate::tsa::TsaClient>>,
    /// The policy at stamping.
    pub policy: crate::tsa::TsaPolicy,
    /// The trusted TSA certificates, for verification.
    pub trust: std::sync::Arc<crate::cert::TrustStore>,
}

/// The `[pdf]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PdfConfig {
    /// What a PDF signature's `/Contents` holds: `cms` (default: PAdES for P-256 seals,
    /// GB/T 35275 SM2 SignedData for SM2 seals) or `ses` (a GB/T 38540 SES_Signature, for
    /// readers that expect it; SM2 seals).
    #[serde(default)]
    pub form: crate::pdf::seal::PdfSignatureForm,
}

/// The `[postgres]` table: used when `store` is a `postgres://` URL.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// Where this node keeps the store's files: the token key (`seald.token-key`, the same
    /// file on every node) and uploaded documents (`seald.documents/`, on storage every node
    /// that signs uploaded documents shares). Relative to the config file.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Idle read connections kept open.
    #[serde(default = "default_pool")]
    pub pool: usize,
    /// The CA (PEM) the server's certificate must chain to (needed for `sslmode=require`).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// This node's name in claims and logs (default: the host name).
    #[serde(default)]
    pub node: Option<String>,
    /// Seconds a node's claim on an approved request lasts without renewal; after that another
    /// node that can reach the seal's device takes the request over (5 or more).
    #[serde(default = "default_lease_secs")]
    pub lease_secs: u64,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        Self {
            data_dir: default_data_dir(),
            pool: default_pool(),
            ca_file: None,
            node: None,
            lease_secs: default_lease_secs(),
        }
    }
}

fn default_data_dir() -> PathBuf {
    PathBuf::from(".")
}

fn default_pool() -> usize {
    8
}

fn default_lease_secs() -> u64 {
    30
}

/// The `[audit]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Seconds over which anonymous and rate-limited refusals are counted before one
    /// `refusal-summary` record is written (1 or more).
    #[serde(default = "default_refusal_summary_secs")]
    pub refusal_summary_secs: u64,
    /// Days operational records (refusals, refusal summaries, verifications) are kept before
    /// they are pruned (1 or more). Uses of seals, decisions, PIN, custody and lifecycle
    /// records are kept 3 years whatever this says.
    #[serde(default = "default_operational_retention_days")]
    pub operational_retention_days: u32,
}

fn default_refusal_summary_secs() -> u64 {
    60
}

fn default_operational_retention_days() -> u32 {
    90
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            refusal_summary_secs: default_refusal_summary_secs(),
            operational_retention_days: default_operational_retention_days(),
        }
    }
}

impl AuditConfig {
    /// The settings the usage log runs with.
    pub fn settings(&self) -> crate::audit::AuditSettings {
        crate::audit::AuditSettings {
            refusal_summary_window: std::time::Duration::from_secs(self.refusal_summary_secs),
            operational_retention_days: self.operational_retention_days,
        }
    }
}

/// The `[limits]` table: bounds on stamp requests (text lengths are fixed: see
/// `approval::limits`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Most documents in one stamp request.
    #[serde(default = "default_max_documents")]
    pub max_documents_per_request: usize,
    /// Most pending requests one client may have open.
    #[serde(default = "default_max_pending_per_client")]
    pub max_pending_per_client: u64,
    /// Most pending requests one seal may have open.
    #[serde(default = "default_max_pending_per_seal")]
    pub max_pending_per_seal: u64,
}

fn default_max_documents() -> usize {
    crate::approval::RequestLimits::default().max_documents
}

fn default_max_pending_per_client() -> u64 {
    crate::approval::RequestLimits::default().max_pending_per_client
}

fn default_max_pending_per_seal() -> u64 {
    crate::approval::RequestLimits::default().max_pending_per_seal
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_documents_per_request: default_max_documents(),
            max_pending_per_client: default_max_pending_per_client(),
            max_pending_per_seal: default_max_pending_per_seal(),
        }
    }
}

impl LimitsConfig {
    /// The limits the approval engine runs with.
    pub fn request_limits(&self) -> crate::approval::RequestLimits {
        crate::approval::RequestLimits {
            max_documents: self.max_documents_per_request,
            max_pending_per_client: self.max_pending_per_client,
            max_pending_per_seal: self.max_pending_per_seal,
        }
    }
}

/// The `[maker]` table: where the seal-maker's key lives.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MakerConfig {
    /// Serial of the token holding the key.
    pub device_serial: String,
    /// CKA_ID of the key, hex.
    pub key_id: String,
}

fn default_store() -> PathBuf {
    PathBuf::from("seald.db")
}

/// The `[api]` table: who may talk to the daemon, and how much.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Extra `Host` header values to accept (`name:port`), beyond the loopback names of the port.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Browser origins (`scheme://host[:port]`) allowed to call the API. Empty: none.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Largest request body in bytes.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Largest upload of OFD documents (`POST /v1/stamp-requests` as `multipart/form-data`,
    /// all files of one request together) in bytes; only that route takes more than
    /// `max_body_bytes`.
    #[serde(default = "default_max_document_bytes")]
    pub max_document_bytes: usize,
    /// Seconds before a request is abandoned.
    #[serde(default = "default_request_timeout_secs")]
    pub request_timeout_secs: u64,
    /// Requests one identity may make in a burst (token bucket size).
    #[serde(default = "default_rate_limit_burst")]
    pub rate_limit_burst: u32,
    /// Requests per second one identity may keep up (bucket refill rate).
    #[serde(default = "default_rate_limit_per_second")]
    pub rate_limit_per_second: u32,
    /// Connections open at once; one more is answered 503 and closed at once.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Seconds a client has to send a whole request head; also how long a kept-alive
    /// connection may wait for its next request.
    #[serde(default = "default_header_read_timeout_secs")]
    pub header_read_timeout_secs: u64,
    /// Seconds a connection may go without a byte moving either way (a stalled body, a client
    /// that stops reading) before it is closed. Absent: 120, or `request_timeout_secs` + 30 if
    /// that is longer.
    #[serde(default)]
    pub idle_timeout_secs: Option<u64>,
    /// Event streams (`GET /v1/events`) one identity may hold open.
    #[serde(default = "default_max_streams_per_identity")]
    pub max_streams_per_identity: usize,
    /// Event streams open at once in all.
    #[serde(default = "default_max_streams")]
    pub max_streams: usize,
    /// Seconds between checks that an open event stream's token still works (a disabled
    /// identity or a replaced token stops receiving).
    #[serde(default = "default_stream_recheck_secs")]
    pub stream_recheck_secs: u64,
    /// Seconds a web-console session may go unused before it ends (the page also signs out
    /// after this long without a key press or click).
    #[serde(default = "default_console_idle_secs")]
    pub console_idle_secs: u64,
}

fn default_console_idle_secs() -> u64 {
    900
}

fn default_max_streams_per_identity() -> usize {
    8
}

fn default_max_streams() -> usize {
    256
}

fn default_stream_recheck_secs() -> u64 {
    30
}

/// Server-sent events send a keep-alive comment this often; an idle timeout must be longer.
pub const SSE_KEEP_ALIVE_SECS: u64 = 15;

fn default_max_connections() -> usize {
    512
}

fn default_header_read_timeout_secs() -> u64 {
    10
}

impl ApiConfig {
    /// The idle timeout in force: the configured one, or 120 s (`request_timeout_secs` + 30 s
    /// when that is longer) so that a slow answer is never cut off as idle.
    pub fn idle_timeout_secs(&self) -> u64 {
        self.idle_timeout_secs
            .unwrap_or_else(|| 120.max(self.request_timeout_secs.saturating_add(30)))
    }
}

fn default_rate_limit_burst() -> u32 {
    200
}

fn default_rate_limit_per_second() -> u32 {
    50
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            max_body_bytes: default_max_body_bytes(),
            max_document_bytes: default_max_document_bytes(),
            request_timeout_secs: default_request_timeout_secs(),
            rate_limit_burst: default_rate_limit_burst(),
            rate_limit_per_second: default_rate_limit_per_second(),
            max_connections: default_max_connections(),
            header_read_timeout_secs: default_header_read_timeout_secs(),
            idle_timeout_secs: None,
            max_streams_per_identity: default_max_streams_per_identity(),
            max_streams: default_max_streams(),
            stream_recheck_secs: default_stream_recheck_secs(),
            console_idle_secs: default_console_idle_secs(),
        }
    }
}

fn default_max_body_bytes() -> usize {
    1024 * 1024
}

fn default_max_document_bytes() -> usize {
    64 * 1024 * 1024
}

fn default_request_timeout_secs() -> u64 {
    30
}

fn default_listen() -> SocketAddr {
    DEFAULT_LISTEN.parse().expect("valid default")
}

/// A configuration that could not be read or does not make sense.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML is malformed or a key has the wrong type.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, which names the key.
        message: String,
    },
    /// A value parsed but is not allowed.
    #[error("config key `{key}`: {message}")]
    Invalid {
        /// The offending key.
        key: String,
        /// What was expected.
        message: String,
    },
}

impl Config {
    /// Where the store is: the SQLite file, or the PostgreSQL database with this node's data
    /// directory.
    pub fn store_location(&self) -> crate::store::StoreLocation {
        let text = self.store.to_string_lossy();
        if crate::store::is_postgres_url(&text) {
            let options = crate::store::PgOptions {
                url: text.into_owned(),
                pool: self.postgres.pool,
                ca_file: self.postgres.ca_file.clone(),
            };
            crate::store::StoreLocation::postgres(options, &self.postgres.data_dir)
        } else {
            crate::store::StoreLocation::sqlite(&self.store)
        }
    }

    /// The store as people read it (a PostgreSQL URL without its password).
    pub fn store_display(&self) -> String {
        crate::store::redacted_url(&self.store.to_string_lossy())
    }

    /// This node's name: `[postgres] node`, else the host name.
    pub fn node_name(&self) -> String {
        self.postgres.node.clone().unwrap_or_else(host_name)
    }
}

/// The machine's host name (`localhost` if it cannot be read).
fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into our buffer.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Refuses a store file that does not exist unless `init` (`seald --init`, the first start): a
/// moved, deleted or unmounted store must not become a new, empty one, with every seal and the
/// usage log silently gone.
pub fn require_store(store: &Path, init: bool) -> Result<(), ConfigError> {
    if init || store.exists() || crate::store::is_postgres_url(&store.to_string_lossy()) {
        return Ok(());
    }
    Err(ConfigError::Invalid {
        key: "store".into(),
        message: format!(
            "{} does not exist; seald does not start on a new, empty store by itself (a moved or lost store would look like one). On the first start run `seald --init`; to bring a store back, `sealctl restore`",
            store.display()
        ),
    })
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::load_with_text(path).map(|(config, _)| config)
    }

    /// [`Config::load`], also giving the file's text as read (for a reload to compare).
    pub fn load_with_text(path: &Path) -> Result<(Self, String), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Self::parse(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_owned(),
                message,
            },
            other => other,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        if !crate::store::is_postgres_url(&config.store.to_string_lossy()) {
            config.store = base.join(&config.store);
        }
        config.postgres.data_dir = base.join(&config.postgres.data_dir);
        if let Some(ca) = &mut config.postgres.ca_file {
            *ca = base.join(&*ca);
        }
        for root in &mut config.trust_roots {
            *root = base.join(&*root);
        }
        if let Some(tsa) = &mut config.tsa {
            for cert in &mut tsa.trusted_certs {
                *cert = base.join(&*cert);
            }
        }
        if let Some(revocation) = &mut config.revocation {
            for file in &mut revocation.crl_files {
                *file = base.join(&*file);
            }
        }
        Ok((config, text))
    }

    /// Reads the trust roots named by `trust_roots`; an unreadable or malformed file is an
    /// error naming its key.
    pub fn load_trust(&self) -> Result<crate::cert::TrustStore, ConfigError> {
        let mut trust = crate::cert::TrustStore::new(Vec::new());
        for (i, path) in self.trust_roots.iter().enumerate() {
            let invalid = |message: String| ConfigError::Invalid {
                key: format!("trust_roots[{i}]"),
                message,
            };
            let bytes = std::fs::read(path)
                .map_err(|e| invalid(format!("cannot read {}: {e}", path.display())))?;
            let roots = crate::cert::TrustStore::from_pem_or_der(&bytes).map_err(|e| {
                invalid(format!(
                    "{} is not a PEM or DER certificate: {e}",
                    path.display()
                ))
            })?;
            for root in roots.roots() {
                trust.add(root.clone());
            }
        }
        Ok(trust)
    }

    /// Reads `[tsa]`: its trusted certificates (an unreadable or malformed file is an error
    /// naming its key) and the client. `None` without a `[tsa]` table.
    pub fn load_tsa(&self) -> Result<Option<TsaSetup>, ConfigError> {
        let Some(tsa) = &self.tsa else {
            return Ok(None);
        };
        let mut trust = crate::cert::TrustStore::new(Vec::new());
        for (i, path) in tsa.trusted_certs.iter().enumerate() {
            let invalid = |message: String| ConfigError::Invalid {
                key: format!("tsa.trusted_certs[{i}]"),
                message,
            };
            let bytes = std::fs::read(path)
                .map_err(|e| invalid(format!("cannot read {}: {e}", path.display())))?;
            let certs = crate::cert::TrustStore::from_pem_or_der(&bytes).map_err(|e| {
                invalid(format!(
                    "{} is not a PEM or DER certificate: {e}",
                    path.display()
                ))
            })?;
            for cert in certs.roots() {
                trust.add(cert.clone());
            }
        }
        let client = tsa.url.as_deref().map(|url| {
            std::sync::Arc::new(crate::tsa::TsaClient::new(
                url,
                tsa.hash,
                std::time::Duration::from_secs(tsa.timeout_secs),
                trust.clone(),
            ))
        });
        Ok(Some(TsaSetup {
            client,
            policy: tsa.policy,
            trust: std::sync::Arc::new(trust),
        }))
    }

    /// Parses and validates config text.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::new(),
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            (
                "audit.refusal_summary_secs",
                self.audit.refusal_summary_secs,
            ),
            (
                "audit.operational_retention_days",
                u64::from(self.audit.operational_retention_days),
            ),
            (
                "limits.max_documents_per_request",
                self.limits.max_documents_per_request as u64,
            ),
            (
                "limits.max_pending_per_client",
                self.limits.max_pending_per_client,
            ),
            (
                "limits.max_pending_per_seal",
                self.limits.max_pending_per_seal,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    key: key.into(),
                    message: "must be 1 or more".into(),
                });
            }
        }
        if let Some(revocation) = &self.revocation {
            revocation.validate()?;
        }
        if let Some(tsa) = &self.tsa {
            tsa.validate()?;
        }
        if !self.listen.ip().is_loopback() {
            return Err(ConfigError::Invalid {
                key: "listen".into(),
                message: format!(
                    "{} is not a loopback address; seald serves this machine only (use 127.0.0.1 or [::1])",
                    self.listen
                ),
            });
        }
        for (i, origin) in self.api.allowed_origins.iter().enumerate() {
            let valid = (origin.starts_with("http://") || origin.starts_with("https://"))
                && !origin.trim_end_matches('/').contains('*')
                && !origin.ends_with('/');
            if !valid {
                return Err(ConfigError::Invalid {
                    key: format!("api.allowed_origins[{i}]"),
                    message: format!(
                        "`{origin}` is not an origin; write scheme://host[:port] with no path and no wildcard"
                    ),
                });
            }
        }
        if self.api.rate_limit_burst == 0 || self.api.rate_limit_per_second == 0 {
            return Err(ConfigError::Invalid {
                key: "api.rate_limit_burst / api.rate_limit_per_second".into(),
                message: "must be greater than zero".into(),
            });
        }
        if self.store.as_os_str().is_empty() {
            return Err(ConfigError::Invalid {
                key: "store".into(),
                message: "must name the store file, e.g. \"seald.db\"".into(),
            });
        }
        self.log
            .validate()
            .map_err(|message| ConfigError::Invalid {
                key: "log.level".into(),
                message,
            })?;
        if self.postgres.lease_secs < 5 || self.postgres.pool == 0 {
            return Err(ConfigError::Invalid {
                key: "postgres.lease_secs / postgres.pool".into(),
                message: "lease_secs must be 5 or more and pool 1 or more".into(),
            });
        }
        if let Some(maker) = &self.maker {
            if maker.device_serial.trim().is_empty() {
                return Err(ConfigError::Invalid {
                    key: "maker.device_serial".into(),
                    message: "must be the serial number of the token holding the seal-maker key"
                        .into(),
                });
            }
            if maker.key_id.is_empty() || hex::decode(&maker.key_id).is_err() {
                return Err(ConfigError::Invalid {
                    key: "maker.key_id".into(),
                    message: format!("`{}` is not a hex CKA_ID (e.g. \"a1\")", maker.key_id),
                });
            }
        }
        if self.api.max_body_bytes == 0 || self.api.request_timeout_secs == 0 {
            return Err(ConfigError::Invalid {
                key: "api.max_body_bytes / api.request_timeout_secs".into(),
                message: "must be greater than zero".into(),
            });
        }
        if self.api.max_document_bytes < self.api.max_body_bytes {
            return Err(ConfigError::Invalid {
                key: "api.max_document_bytes".into(),
                message: format!(
                    "must be at least api.max_body_bytes ({}): it is the limit of document uploads, which also carry the request's JSON",
                    self.api.max_body_bytes
                ),
            });
        }
        if self.api.max_connections == 0 {
            return Err(ConfigError::Invalid {
                key: "api.max_connections".into(),
                message: "must be at least 1".into(),
            });
        }
        if self.api.console_idle_secs == 0 || self.api.console_idle_secs > 8 * 3600 {
            return Err(ConfigError::Invalid {
                key: "api.console_idle_secs".into(),
                message: "must be between 1 and 28800 (8 hours, a console session's longest life)"
                    .into(),
            });
        }
        if self.api.max_streams_per_identity == 0
            || self.api.max_streams == 0
            || self.api.stream_recheck_secs == 0
        {
            return Err(ConfigError::Invalid {
                key: "api.max_streams_per_identity / api.max_streams / api.stream_recheck_secs"
                    .into(),
                message: "must be at least 1".into(),
            });
        }
        if self.api.header_read_timeout_secs == 0 {
            return Err(ConfigError::Invalid {
                key: "api.header_read_timeout_secs".into(),
                message: "must be at least 1".into(),
            });
        }
        if let Some(idle) = self.api.idle_timeout_secs {
            if idle <= self.api.request_timeout_secs || idle <= SSE_KEEP_ALIVE_SECS {
                return Err(ConfigError::Invalid {
                    key: "api.idle_timeout_secs".into(),
                    message: format!(
                        "must be longer than api.request_timeout_secs ({}) and than the {SSE_KEEP_ALIVE_SECS} s between event-stream keep-alives, or a working connection is cut off",
                        self.api.request_timeout_secs
                    ),
                });
            }
        }
        if self.pin_policy.max_age_days != 0
            && self.pin_policy.warn_days >= self.pin_policy.max_age_days
        {
            return Err(ConfigError::Invalid {
                key: "pin_policy.warn_days".into(),
                message: "must be shorter than pin_policy.max_age_days".into(),
            });
        }
        for (i, module) in self.modules.iter().enumerate() {
            if module.max_sessions == 0 {
                return Err(ConfigError::Invalid {
                    key: format!("module[{i}].max_sessions"),
                    message: "must be at least 1".into(),
                });
            }
            if self.modules[..i].iter().any(|m| m.path == module.path) {
                return Err(ConfigError::Invalid {
                    key: format!("module[{i}].path"),
                    message: format!(
                        "{} is loaded by another module entry; a library can be loaded once per process",
                        module.path.display()
                    ),
                });
            }
            if self.modules[..i].iter().any(|m| m.name == module.name) {
                return Err(ConfigError::Invalid {
                    key: format!("module[{i}].name"),
                    message: format!("`{}` is used by another module", module.name),
                });
            }
        }
        if self.pcsc.debounce_ms > 10_000 {
            return Err(ConfigError::Invalid {
                key: "pcsc.debounce_ms".into(),
                message: "must be at most 10000 (10 s); a UKey settles in well under a second"
                    .into(),
            });
        }
        if self.pcsc.retry_ms < 100 {
            return Err(ConfigError::Invalid {
                key: "pcsc.retry_ms".into(),
                message: "must be at least 100".into(),
            });
        }
        self.atr_table()?;
        for (i, atr) in self.atrs.iter().enumerate() {
            if !self.modules.iter().any(|m| m.name == atr.module) {
                return Err(ConfigError::Invalid {
                    key: format!("atr[{i}].module"),
                    message: format!(
                        "no [[module]] is named `{}`; name one of the configured modules",
                        atr.module
                    ),
                });
            }
        }
        Ok(())
    }

    /// The parsed `[[atr]]` table; the error names the bad key (`atr[2].mask`).
    pub fn atr_table(&self) -> Result<AtrTable, ConfigError> {
        AtrTable::from_config(&self.atrs).map_err(|(i, e)| ConfigError::Invalid {
            key: format!("atr[{i}].{}", e.field),
            message: e.message,
        })
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            modules: Vec::new(),
            api: ApiConfig::default(),
            pcsc: PcscConfig::default(),
            atrs: Vec::new(),
            pin_policy: PinPolicy::default(),
            store: default_store(),
            postgres: PostgresConfig::default(),
            log: Default::default(),
            metrics: Default::default(),
            trust_roots: Vec::new(),
            maker: None,
            audit: AuditConfig::default(),
            limits: LimitsConfig::default(),
            pdf: PdfConfig::default(),
            tsa: None,
            revocation: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::custody::policy::CharClass;

    const MODULE: &str = "[[module]]\nname = \"ukey\"\npath = \"/x.so\"\n";

    fn invalid_key(text: &str) -> String {
        match Config::parse(text) {
            Err(ConfigError::Invalid { key, .. }) => key,
            other => panic!("expected an invalid key, got {other:?}"),
        }
    }

    #[test]
    fn the_revocation_table_parses_and_is_checked() {
        let c = Config::parse("").unwrap();
        assert!(c.revocation.is_none(), "no status checks unless asked for");
        let c = Config::parse("[revocation]\n").unwrap();
        let r = c.revocation.as_ref().unwrap();
        assert!(r.fetch, "certificates' URLs followed by default");
        assert_eq!(r.on_unknown, crate::revocation::OnUnknown::Refuse);
        assert_eq!(r.timeout_secs, 10);
        let c = Config::parse(
            "[revocation]\ncrl_files = [\"ca.crl\"]\nocsp_url = \"http://127.0.0.1:8/ocsp\"\n\
             fetch = false\non_unknown = \"allow\"\n",
        )
        .unwrap();
        let r = c.revocation.as_ref().unwrap();
        assert!(!r.fetch);
        assert_eq!(r.on_unknown, crate::revocation::OnUnknown::Allow);
        for (bad, key) in [
            (
                "[revocation]\nocsp_url = \"ldap://ca/\"\n",
                "revocation.ocsp_url",
            ),
            (
                "[revocation]\ntimeout_secs = 301\n",
                "revocation.timeout_secs",
            ),
        ] {
            let err = Config::parse(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("`{key}`")), "{bad}: {err}");
        }
        assert!(Config::parse("[revocation]\non_unknown = \"maybe\"\n").is_err());
        // CRL files are relative to the config file.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seald.toml");
        std::fs::write(&path, "[revocation]\ncrl_files = [\"ca.crl\"]\n").unwrap();
        let c = Config::load(&path).unwrap();
        assert_eq!(
            c.revocation.unwrap().crl_files,
            vec![dir.path().join("ca.crl")]
        );
    }

    #[test]
    fn the_tsa_table_parses_and_is_checked() {
        let c = Config::parse(
            "[tsa]\nurl = \"http://127.0.0.1:3180/tsa\"\ntrusted_certs = [\"tsa-root.pem\"]\n\
             hash = \"sha256\"\ntimeout_secs = 5\npolicy = \"required\"\n",
        )
        .unwrap();
        let tsa = c.tsa.as_ref().unwrap();
        assert_eq!(tsa.hash, crate::tsa::HashAlgorithm::Sha256);
        assert_eq!(tsa.policy, crate::tsa::TsaPolicy::Required);
        let c = Config::parse("[tsa]\ntrusted_certs = [\"tsa-root.pem\"]\n").unwrap();
        let tsa = c.tsa.as_ref().unwrap();
        assert_eq!(tsa.policy, crate::tsa::TsaPolicy::Off, "off by default");
        assert_eq!(tsa.hash, crate::tsa::HashAlgorithm::Sm3, "SM3 by default");
        assert_eq!(tsa.timeout_secs, 10);
        for (bad, key) in [
            ("[tsa]\nurl = \"https://tsa.example/\"\n", "tsa.url"),
            ("[tsa]\nurl = \"http:///tsa\"\n", "tsa.url"),
            ("[tsa]\ntimeout_secs = 0\n", "tsa.timeout_secs"),
            (
                "[tsa]\npolicy = \"required\"\ntrusted_certs = [\"r.pem\"]\n",
                "tsa.policy",
            ),
            (
                "[tsa]\nurl = \"http://127.0.0.1/\"\npolicy = \"best-effort\"\n",
                "tsa.trusted_certs",
            ),
        ] {
            let err = Config::parse(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("`{key}`")), "{bad}: {err}");
        }
        assert!(Config::parse("[tsa]\npolicy = \"sometimes\"\n").is_err());
        // Files are read at start-up, each error naming its key.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seald.toml");
        std::fs::write(&path, "[tsa]\ntrusted_certs = [\"missing.pem\"]\n").unwrap();
        let err = Config::load(&path)
            .unwrap()
            .load_tsa()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("tsa.trusted_certs[0]") && err.contains("missing.pem"),
            "{err}"
        );
    }

    #[test]
    fn audit_and_limits_tables_parse_and_refuse_zero() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.audit.settings(), crate::audit::AuditSettings::default());
        assert_eq!(
            c.limits.request_limits(),
            crate::approval::RequestLimits::default()
        );
        let c = Config::parse(
            "[audit]\nrefusal_summary_secs = 5\noperational_retention_days = 30\n\
             [limits]\nmax_documents_per_request = 10\nmax_pending_per_client = 2\n",
        )
        .unwrap();
        assert_eq!(c.audit.settings().refusal_summary_window.as_secs(), 5);
        assert_eq!(c.audit.operational_retention_days, 30);
        assert_eq!(c.limits.request_limits().max_documents, 10);
        assert_eq!(c.limits.max_pending_per_seal, 1_000);
        for bad in [
            "[audit]\noperational_retention_days = 0\n",
            "[audit]\nrefusal_summary_secs = 0\n",
            "[limits]\nmax_pending_per_seal = 0\n",
        ] {
            let err = Config::parse(bad).unwrap_err().to_string();
            assert!(err.contains("must be 1 or more"), "{bad}: {err}");
        }
        let example =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/seald.toml"))
                .unwrap();
        let c = Config::parse(&example).unwrap();
        assert_eq!(c.audit.operational_retention_days, 90);
        assert_eq!(c.limits.max_pending_per_client, 100);
    }

    #[test]
    fn pcsc_and_atr_tables_parse() {
        let config = Config::parse(&format!(
            "{MODULE}[pcsc]\ndebounce_ms = 50\n[[atr]]\nname = \"virtual\"\natr = \"3B 8D 01\"\nprefix = true\nmodule = \"ukey\"\nmodel = \"ukey\"\nserial_apdus = [\"80CA010100\"]\n"
        ))
        .unwrap();
        assert_eq!(config.pcsc.debounce_ms, 50);
        assert!(config.pcsc.enabled);
        let table = config.atr_table().unwrap();
        let entry = table.lookup(&[0x3B, 0x8D, 0x01, 0x80]).unwrap();
        assert_eq!(entry.name, "virtual");
        assert_eq!(entry.serial_apdus, vec![vec![0x80, 0xCA, 1, 1, 0]]);
    }

    #[test]
    fn bad_atr_entries_name_their_key() {
        let atr = |body: &str| format!("{MODULE}[[atr]]\nmodule = \"ukey\"\n{body}\n");
        assert_eq!(invalid_key(&atr("atr = \"zz\"")), "atr[0].atr");
        assert_eq!(
            invalid_key(&atr("atr = \"3B 8D\"\nmask = \"FF\"")),
            "atr[0].mask"
        );
        assert_eq!(
            invalid_key(&atr("atr = \"3B\"\nserial_apdus = [\"80\"]")),
            "atr[0].serial_apdus"
        );
        assert_eq!(
            invalid_key(&format!(
                "{MODULE}[[atr]]\natr = \"3B\"\nmodule = \"other\"\n"
            )),
            "atr[0].module"
        );
        assert_eq!(
            invalid_key("[pcsc]\ndebounce_ms = 60000\n"),
            "pcsc.debounce_ms"
        );
        assert!(matches!(
            Config::parse("[[atr]]\natr = \"3B\"\nmodule = \"m\"\nbogus = 1\n"),
            Err(ConfigError::Parse { .. })
        ));
    }

    #[test]
    fn reads_the_pin_policy_table() {
        let config = Config::parse(
            "[pin_policy]\nmin_length = 10\nrequire = [\"upper\", \"symbol\"]\nmax_age_days = 60\nwarn_days = 7\n",
        )
        .unwrap();
        assert_eq!(config.pin_policy.min_length, 10);
        assert_eq!(
            config.pin_policy.require,
            vec![CharClass::Upper, CharClass::Symbol]
        );
        assert_eq!(Config::parse("").unwrap().pin_policy, PinPolicy::default());
        let err = Config::parse("[pin_policy]\nmax_age_days = 10\nwarn_days = 14\n").unwrap_err();
        assert!(err.to_string().contains("pin_policy.warn_days"), "{err}");
        assert!(Config::parse("[pin_policy]\nrequire = [\"emoji\"]\n").is_err());
        let example =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/seald.toml"))
                .unwrap();
        assert_eq!(
            Config::parse(&example).unwrap().pin_policy,
            PinPolicy::default()
        );
    }

    #[test]
    fn connection_limits_default_and_are_checked() {
        let config = Config::parse("").unwrap();
        assert_eq!(config.api.max_connections, 512);
        assert_eq!(config.api.header_read_timeout_secs, 10);
        assert_eq!(config.api.idle_timeout_secs(), 120);
        assert_eq!(config.api.max_streams_per_identity, 8);
        assert_eq!(config.api.max_streams, 256);
        assert_eq!(config.api.stream_recheck_secs, 30);
        let slow = Config::parse("[api]\nrequest_timeout_secs = 300\n").unwrap();
        assert_eq!(slow.api.idle_timeout_secs(), 330);
        assert_eq!(
            invalid_key("[api]\nmax_connections = 0\n"),
            "api.max_connections"
        );
        assert_eq!(
            invalid_key("[api]\nheader_read_timeout_secs = 0\n"),
            "api.header_read_timeout_secs"
        );
        assert_eq!(
            invalid_key("[api]\nidle_timeout_secs = 30\n"),
            "api.idle_timeout_secs"
        );
        assert_eq!(
            invalid_key("[api]\nidle_timeout_secs = 10\nrequest_timeout_secs = 5\n"),
            "api.idle_timeout_secs"
        );
    }

    #[test]
    fn a_missing_store_needs_init() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("seald.db");
        let err = require_store(&missing, false).unwrap_err();
        assert!(err.to_string().contains("seald --init"), "{err}");
        require_store(&missing, true).unwrap();
        std::fs::write(&missing, b"").unwrap();
        require_store(&missing, false).unwrap();
    }

    #[test]
    fn the_log_table_takes_a_format_and_a_level() {
        let c = Config::parse("[log]\nformat = \"json\"\nlevel = \"info,seald::stamp=debug\"\n")
            .unwrap();
        assert_eq!(c.log.format, crate::logging::LogFormat::Json);
        assert_eq!(c.log.level.as_deref(), Some("info,seald::stamp=debug"));
        let err = Config::parse("[log]\nlevel = \"seald=loud\"\n").unwrap_err();
        assert!(err.to_string().contains("log.level"), "{err}");
        let err = Config::parse("[log]\nformat = \"xml\"\n").unwrap_err();
        assert!(err.to_string().contains("xml"), "{err}");
    }

    #[test]
    fn a_postgres_store_keeps_its_url_and_its_files_under_the_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seald.toml");
        std::fs::write(
            &path,
            "store = \"postgres://seald:pw@db:5432/seald\"\n[postgres]\ndata_dir = \"data\"\n\
             ca_file = \"ca.pem\"\nlease_secs = 10\nnode = \"n1\"\n",
        )
        .unwrap();
        let c = Config::load(&path).unwrap();
        let location = c.store_location();
        match &location.database {
            crate::store::Database::Postgres(o) => {
                assert_eq!(o.url, "postgres://seald:pw@db:5432/seald");
                assert_eq!(
                    o.ca_file.as_deref(),
                    Some(dir.path().join("ca.pem").as_path())
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(location.files, dir.path().join("data").join("seald"));
        assert_eq!(c.store_display(), "postgres://seald:***@db:5432/seald");
        assert_eq!(c.node_name(), "n1");
        assert_eq!(c.postgres.lease_secs, 10);
        // A PostgreSQL store is never a missing file.
        require_store(&c.store, false).unwrap();
        let err =
            Config::parse("store = \"postgres://db/s\"\n[postgres]\nlease_secs = 1\n").unwrap_err();
        assert!(err.to_string().contains("lease_secs"), "{err}");
    }
}
