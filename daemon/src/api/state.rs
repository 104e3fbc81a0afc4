//! The one state every handler shares.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::cert::TrustStore;
use crate::clock::{Clock, Timestamp};
use crate::config::MakerConfig;
use crate::custody::{Custodians, PinPolicy};
use crate::device::Devices;
use crate::services::Services;
use crate::stamp::keys::SigningKeys;
use crate::stamp::results::LegacyResults;

use super::events::Events;
use super::guard::GuardPolicy;
use super::ratelimit::RateLimiter;

/// Services, devices, clock, events and guards: everything a handler may need.
#[derive(Debug)]
pub struct AppState {
    /// Identities, seals, approvals and the usage log.
    pub services: Services,
    /// PKCS#11 modules and token owners.
    pub devices: Arc<Devices>,
    /// The daemon's clock.
    pub clock: Arc<dyn Clock>,
    /// The event broadcast behind `GET /v1/events`.
    pub events: Events,
    /// Host/Origin/body guards.
    pub policy: Arc<GuardPolicy>,
    /// Per-identity request limits.
    pub limiter: RateLimiter,
    /// Roots for `POST /v1/verify`.
    pub trust: Arc<TrustStore>,
    /// SES_Signatures that a store from before schema 4 kept in files.
    pub legacy_signatures: LegacyResults,
    /// Custody and PIN-change records (PIN age comes from these, never from a stored PIN).
    pub custodians: Custodians,
    /// The `[pin_policy]` of the config: new PINs and PIN age are judged by it.
    pub pin_policy: PinPolicy,
    /// The `[maker]` of the config: the key that signs SES_Seals at enrolment (none: no
    /// enrolment through the API).
    pub maker: Option<MakerConfig>,
    /// When each token (by serial) was last logged in through the API.
    pub logins: Mutex<HashMap<String, Timestamp>>,
    /// Seal keys kept open between stamps, for one login of their token.
    pub signing_keys: SigningKeys,
    /// Open event streams, capped per identity and in all.
    pub streams: super::streams::Streams,
}

/// The state as handlers receive it.
pub type SharedState = Arc<AppState>;

impl AppState {
    /// When the token `serial` was last logged in, if it was through this daemon.
    pub fn last_login(&self, serial: &str) -> Option<Timestamp> {
        self.logins
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(serial)
            .copied()
    }

    /// Records a login (`Some`) or logout (`None`) of token `serial`; its open signing keys
    /// are closed either way.
    pub fn set_login(&self, serial: &str, at: Option<Timestamp>) {
        self.signing_keys.forget(serial);
        let mut logins = self.logins.lock().unwrap_or_else(|e| e.into_inner());
        match at {
            Some(at) => logins.insert(serial.to_owned(), at),
            None => logins.remove(serial),
        };
    }
}
