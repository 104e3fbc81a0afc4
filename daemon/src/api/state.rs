//! The one state every handler shares: the service layer's [`Runtime`] and what only the HTTP
//! front end needs beside it.

use std::ops::Deref;
use std::sync::Arc;

use crate::cert::TrustRoots;
use crate::config::MakerConfig;
use crate::custody::{Custodians, PinPolicy};
use crate::runtime::Runtime;
use crate::stamp::results::LegacyResults;

use super::guard::GuardPolicy;
use super::ratelimit::RateLimiter;

/// The runtime (services, devices, clock, events, logins, signing keys; reached through
/// `Deref`) and the API's guards, limits and settings: everything a handler may need.
#[derive(Debug)]
pub struct AppState {
    /// What the signing worker and background tasks share with the API.
    pub runtime: Arc<Runtime>,
    /// Host/Origin/body guards.
    pub policy: Arc<GuardPolicy>,
    /// Per-identity request limits.
    pub limiter: RateLimiter,
    /// Roots for `POST /v1/verify` (the registry's: a config reload replaces both).
    pub trust: Arc<TrustRoots>,
    /// SES_Signatures that a store from before schema 4 kept in files.
    pub legacy_signatures: LegacyResults,
    /// Custody and PIN-change records (PIN age comes from these, never from a stored PIN).
    pub custodians: Custodians,
    /// The `[pin_policy]` of the config: new PINs and PIN age are judged by it.
    pub pin_policy: PinPolicy,
    /// The `[maker]` of the config: the key that signs SES_Seals at enrolment (none: no
    /// enrolment through the API).
    pub maker: Option<MakerConfig>,
    /// Open event streams, capped per identity and in all.
    pub streams: super::streams::Streams,
    /// The web console's sessions and one-time sign-in codes (memory only).
    pub console: super::console::sessions::ConsoleSessions,
    /// `[metrics] public`: `GET /metrics` without a token (a config reload may change it).
    pub metrics_public: std::sync::atomic::AtomicBool,
}

impl Deref for AppState {
    type Target = Runtime;

    fn deref(&self) -> &Runtime {
        &self.runtime
    }
}

/// The state as handlers receive it.
pub type SharedState = Arc<AppState>;
