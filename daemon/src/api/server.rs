//! Starting the API: services, devices and state from the config.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::device::Devices;
use crate::runtime::Runtime;
use crate::services::Services;
use crate::stamp::results::LegacyResults;

use super::guard::GuardPolicy;
use super::ratelimit::RateLimiter;
use super::state::{AppState, SharedState};

/// Opens everything the API needs for a daemon bound to `bound`.
pub fn build_state(config: &Config, bound: SocketAddr) -> Result<SharedState, String> {
    let trust = Arc::new(config.load_trust().map_err(|e| e.to_string())?);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut services =
        Services::open_at(&config.store_location(), clock.clone(), trust).map_err(|e| {
            format!(
                "config key `store`: cannot open {}: {e}",
                config.store_display()
            )
        })?;
    services.audit = services
        .audit
        .clone()
        .with_settings(config.audit.settings());
    services.approvals = services
        .approvals
        .clone()
        .with_limits(config.limits.request_limits())
        .with_claimant(&crate::approval::claimant_for(&config.node_name()));
    let tsa = config.load_tsa().map_err(|e| e.to_string())?;
    let devices =
        Devices::open(&config.modules).map_err(|e| format!("config key `module`: {e}"))?;

    let policy = GuardPolicy::new(
        bound,
        &config.api.allowed_hosts,
        &config.api.allowed_origins,
        config.api.max_body_bytes,
        Duration::from_secs(config.api.request_timeout_secs),
    )
    .with_document_limit(config.api.max_document_bytes);
    let custodians = crate::custody::Custodians::new(services.store.clone(), clock.clone());
    let services_trust = services.registry.trust_roots().clone();
    Ok(Arc::new(AppState {
        custodians,
        metrics_public: config.metrics.public.into(),
        pin_policy: config.pin_policy.clone(),
        maker: config.maker.clone(),
        runtime: Arc::new(Runtime {
            pdf_form: config.pdf.form,
            tsa,
            revocation: config.revocation.as_ref().map(|r| Arc::new(r.checker())),
            lease: Duration::from_secs(config.postgres.lease_secs),
            ..Runtime::new(services, Arc::new(devices), clock)
        }),
        policy: Arc::new(policy),
        limiter: RateLimiter::new(
            config.api.rate_limit_burst,
            config.api.rate_limit_per_second,
        ),
        trust: services_trust,
        legacy_signatures: LegacyResults::beside(&config.store),
        streams: super::streams::Streams::new(
            config.api.max_streams_per_identity,
            config.api.max_streams,
            Duration::from_secs(config.api.stream_recheck_secs),
        ),
        console: super::console::sessions::ConsoleSessions::new(
            Duration::from_secs(config.api.console_idle_secs),
            super::console::sessions::LIFETIME,
            super::console::sessions::CODE_TTL,
        ),
    }))
}
