//! Starting the API: services, devices and state from the config; background sweeps.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::approval::RequestState;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::device::Devices;
use crate::services::Services;
use crate::stamp::results::LegacyResults;

use super::events::{Event, Events};
use super::guard::GuardPolicy;
use super::ratelimit::RateLimiter;
use super::state::{AppState, SharedState};

/// Opens everything the API needs for a daemon bound to `bound`.
pub fn build_state(config: &Config, bound: SocketAddr) -> Result<SharedState, String> {
    let trust = Arc::new(config.load_trust().map_err(|e| e.to_string())?);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let services = Services::open(&config.store, clock.clone(), trust.clone()).map_err(|e| {
        format!(
            "config key `store`: cannot open {}: {e}",
            config.store.display()
        )
    })?;
    let devices =
        Devices::open(&config.modules).map_err(|e| format!("config key `module`: {e}"))?;

    let policy = GuardPolicy::new(
        bound,
        &config.api.allowed_hosts,
        &config.api.allowed_origins,
        config.api.max_body_bytes,
        Duration::from_secs(config.api.request_timeout_secs),
    );
    let custodians = crate::custody::Custodians::new(services.store.clone(), clock.clone());
    Ok(Arc::new(AppState {
        custodians,
        pin_policy: config.pin_policy.clone(),
        maker: config.maker.clone(),
        services,
        devices: Arc::new(devices),
        clock,
        events: Events::default(),
        policy: Arc::new(policy),
        limiter: RateLimiter::new(
            config.api.rate_limit_burst,
            config.api.rate_limit_per_second,
        ),
        trust,
        legacy_signatures: LegacyResults::beside(&config.store),
        logins: Mutex::new(HashMap::new()),
        signing_keys: Default::default(),
        streams: super::streams::Streams::new(
            config.api.max_streams_per_identity,
            config.api.max_streams,
            Duration::from_secs(config.api.stream_recheck_secs),
        ),
    }))
}

/// Signs requests approved before a restart, then every few seconds expires due seals and
/// stale requests and publishes seal state changes. Call inside the runtime.
pub fn spawn_background(state: SharedState) {
    tokio::spawn(async move {
        let st = state.clone();
        let approved = tokio::task::spawn_blocking(move || {
            st.services
                .store
                .read(|tx| tx.requests_in_state(RequestState::Approved))
        })
        .await;
        if let Ok(Ok(approved)) = approved {
            for request in approved {
                super::routes::stamp::spawn_signing(state.clone(), request.id);
            }
        }
        let mut known = HashMap::new();
        loop {
            let st = state.clone();
            let seals = tokio::task::spawn_blocking(move || {
                let _ = st.services.registry.expire_due();
                let _ = st.services.approvals.expire_stale();
                st.services.registry.list()
            })
            .await;
            if let Ok(Ok(seals)) = seals {
                for seal in seals {
                    if let Some(previous) = known.insert(seal.id, seal.state) {
                        if previous != seal.state {
                            state.events.publish(Event::SealState {
                                seal_id: seal.id,
                                state: seal.state,
                            });
                        }
                    }
                }
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    });
}
