//! The running daemon's shared service state: what the signing worker, the background tasks and
//! every front end use beside the [`Services`] (devices, clock, the event bus, the token logins
//! and the signing keys kept open between stamps).
//!
//! It belongs to the service layer: it knows nothing of HTTP. The API's `AppState` holds one and
//! adds only what the HTTP front end needs (guards, rate limits, …).

pub mod audience;
pub mod events;
pub mod keys;
pub mod relay;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::clock::{Clock, Timestamp};
use crate::device::Devices;
use crate::services::Services;

pub use audience::{may_see, Audience, Viewer};
pub use events::{Event, Events, Numbered, RequestParties, Resumed};
pub use keys::SigningKeys;

/// Services, devices, clock, events, token logins and open signing keys of one daemon.
#[derive(Debug)]
pub struct Runtime {
    /// Identities, seals, approvals and the usage log.
    pub services: Services,
    /// PKCS#11 modules and token owners.
    pub devices: Arc<Devices>,
    /// The daemon's clock.
    pub clock: Arc<dyn Clock>,
    /// The event bus (behind `GET /v1/events`).
    pub events: Events,
    /// When each token (by serial) was last logged in through this daemon.
    pub logins: Mutex<HashMap<String, Timestamp>>,
    /// Seal keys kept open between stamps, for one login of their token.
    pub signing_keys: SigningKeys,
    /// The request each token's current login was given for (`for_request` of a login): under
    /// `pin_mode = each-stamp` a seal signs only the request its PIN entry named.
    pub login_for: Mutex<HashMap<String, crate::store::model::RequestId>>,
    /// The store's documents directory (OFD and PDF uploads and sealed files).
    pub documents: crate::store::DocumentStore,
    /// What a PDF signature's `/Contents` holds (`[pdf] form`).
    pub pdf_form: crate::pdf::seal::PdfSignatureForm,
    /// `[tsa]`: the TSA asked at stamping (with its policy) and the TSA certificates trusted at
    /// verification; `None` without a `[tsa]` table.
    pub tsa: Option<crate::config::TsaSetup>,
    /// `[revocation]`: where certificate status is found, at stamping and at verification;
    /// `None` without a `[revocation]` table.
    pub revocation: Option<Arc<crate::revocation::Checker>>,
    /// How long this process's claim on an approved request lasts unrenewed (`[postgres]
    /// lease_secs`); renewed every third of it while the request is signed.
    pub lease: std::time::Duration,
    /// The requests this process is signing now (one worker per request).
    pub signing: crate::stamp::claims::InFlight,
    /// Woken when a request is approved on another node (shared stores): the takeover round
    /// looks at once instead of at its next second.
    pub approved: tokio::sync::Notify,
    /// What the daemon counts as it works, for `GET /metrics`.
    pub metrics: crate::metrics::Metrics,
}

impl Runtime {
    /// A runtime over `services` and `devices`, with no token logged in and a new event bus.
    pub fn new(services: Services, devices: Arc<Devices>, clock: Arc<dyn Clock>) -> Self {
        let documents = crate::store::DocumentStore::beside(services.store.path());
        Self {
            services,
            devices,
            clock,
            events: Events::default(),
            logins: Mutex::new(HashMap::new()),
            signing_keys: SigningKeys::default(),
            login_for: Mutex::new(HashMap::new()),
            documents,
            pdf_form: Default::default(),
            tsa: None,
            revocation: None,
            lease: std::time::Duration::from_secs(30),
            signing: Default::default(),
            approved: tokio::sync::Notify::new(),
            metrics: Default::default(),
        }
    }

    /// The trusted TSA certificates (`[tsa] trusted_certs`), for verifying timestamps.
    pub fn tsa_trust(&self) -> Option<&crate::cert::TrustStore> {
        self.tsa.as_ref().map(|t| t.trust.as_ref())
    }

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
        self.login_for
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(serial);
        let mut logins = self.logins.lock().unwrap_or_else(|e| e.into_inner());
        match at {
            Some(at) => logins.insert(serial.to_owned(), at),
            None => logins.remove(serial),
        };
    }

    /// Binds the current login of token `serial` to `request` (after [`Runtime::set_login`]).
    pub fn bind_login(&self, serial: &str, request: crate::store::model::RequestId) {
        self.login_for
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(serial.to_owned(), request);
    }

    /// The request the current login of token `serial` was given for, if one was named.
    pub fn login_bound_to(&self, serial: &str) -> Option<crate::store::model::RequestId> {
        self.login_for
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(serial)
            .copied()
    }
}
