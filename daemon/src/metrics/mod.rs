//! Prometheus metrics (`GET /metrics`, text format): counters and histograms the daemon keeps
//! as it works ([`Metrics`]), and gauges read from the store and the devices at each scrape
//! ([`scrape`]).

pub mod scrape;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use serde::Deserialize;

use crate::crypto::encoding::RawSignature;
use crate::crypto::signer::{PrehashSigner, PublicKey, SignerError};

/// The `[metrics]` table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Serve `/metrics` without a token (default: an auditor's or admin's token is needed).
    /// It is still on loopback only, behind the Host and Origin checks.
    #[serde(default)]
    pub public: bool,
}

/// A histogram for latencies: 0.5 ms to about 16 s.
pub fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// A histogram for waits on people: 1 s to 2^18 s (about 3 days).
fn wait_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 19))
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SealDevice {
    seal: String,
    device: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Part {
    part: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Code {
    code: String,
}

/// What the daemon counts as it works (the handles are shared: clones count together).
#[derive(Debug)]
pub struct Metrics {
    signatures: Family<SealDevice, Counter>,
    signing_seconds: Family<Part, Histogram>,
    refusals: Family<Code, Counter>,
    approval_wait_seconds: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            signatures: Family::default(),
            signing_seconds: Family::new_with_constructor(latency_histogram),
            refusals: Family::default(),
            approval_wait_seconds: wait_histogram(),
        }
    }
}

impl Metrics {
    /// A request of seal `seal` on token `device` was signed: `count` signatures, `device`
    /// time spent in the token's sign calls, `total` time the worker took in all.
    pub fn signed(
        &self,
        seal: crate::store::model::SealId,
        device: &str,
        count: usize,
        in_device: Duration,
        total: Duration,
    ) {
        let labels = SealDevice {
            seal: seal.to_string(),
            device: device.to_owned(),
        };
        self.signatures.get_or_create(&labels).inc_by(count as u64);
        self.signing_seconds
            .get_or_create(&Part { part: "device" })
            .observe(in_device.as_secs_f64());
        self.signing_seconds
            .get_or_create(&Part { part: "seald" })
            .observe(total.saturating_sub(in_device).as_secs_f64());
    }

    /// The API refused a call with `code`.
    pub fn refused(&self, code: &str) {
        self.refusals
            .get_or_create(&Code { code: code.into() })
            .inc();
    }

    /// A request was approved `seconds` after it was made.
    pub fn approved_after(&self, seconds: i64) {
        self.approval_wait_seconds.observe(seconds.max(0) as f64);
    }

    /// Registers these metrics (shared handles) in `registry`.
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "seald_signatures",
            "Signatures made, by seal id and token serial",
            self.signatures.clone(),
        );
        registry.register(
            "seald_signing_seconds",
            "Time to sign one request: part=\"device\" is the token's sign calls, part=\"seald\" everything else (checks, building, verifying, a timestamp from the TSA if asked, the durable commit)",
            self.signing_seconds.clone(),
        );
        registry.register(
            "seald_refusals",
            "Calls the API refused, by error code",
            self.refusals.clone(),
        );
        registry.register(
            "seald_approval_wait_seconds",
            "Time from a stamp request to its approval",
            self.approval_wait_seconds.clone(),
        );
    }
}

/// A signer that adds up the time its calls spend in the device.
pub struct TimedSigner<'a> {
    inner: &'a dyn PrehashSigner,
    nanos: AtomicU64,
}

impl std::fmt::Debug for TimedSigner<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimedSigner")
            .field("spent", &self.spent())
            .finish()
    }
}

impl<'a> TimedSigner<'a> {
    /// Times `inner`'s calls.
    pub fn new(inner: &'a dyn PrehashSigner) -> Self {
        Self {
            inner,
            nanos: AtomicU64::new(0),
        }
    }

    /// Time spent in the device so far.
    pub fn spent(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::Relaxed))
    }

    fn timed<T>(&self, call: impl FnOnce() -> T) -> T {
        let started = std::time::Instant::now();
        let out = call();
        let nanos = started.elapsed().as_nanos().min(u64::MAX as u128) as u64;
        self.nanos.fetch_add(nanos, Ordering::Relaxed);
        out
    }
}

impl PrehashSigner for TimedSigner<'_> {
    fn public_key(&self) -> &PublicKey {
        self.inner.public_key()
    }

    fn sign_prehash(&self, digest: &[u8; 32]) -> Result<RawSignature, SignerError> {
        self.timed(|| self.inner.sign_prehash(digest))
    }

    fn device_digest(&self, message: &[u8]) -> Option<Result<[u8; 32], SignerError>> {
        self.timed(|| self.inner.device_digest(message))
    }
}
