//! The daemon's background tasks, over the [`Runtime`] (no front-end types): signing requests
//! approved before a restart, the expiry sweeps, and carrying the PC/SC watcher's changes into
//! events and usage records ([`hotplug`]).

pub mod hotplug;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::approval::RequestState;
use crate::runtime::{Event, Runtime};

/// How often due seals and stale requests are expired.
const SWEEP_EVERY: Duration = Duration::from_secs(2);

/// Signs requests approved before a restart, then every few seconds expires due seals and
/// stale requests and publishes seal state changes. Call inside the runtime.
pub fn spawn(runtime: Arc<Runtime>) {
    tokio::spawn(async move {
        let rt = runtime.clone();
        let approved = tokio::task::spawn_blocking(move || {
            rt.services
                .store
                .read(|tx| tx.requests_in_state(RequestState::Approved))
        })
        .await;
        if let Ok(Ok(approved)) = approved {
            for request in approved {
                crate::stamp::spawn_signing(runtime.clone(), request.id);
            }
        }
        let mut known = HashMap::new();
        loop {
            let rt = runtime.clone();
            let seals = tokio::task::spawn_blocking(move || {
                let _ = rt.services.registry.expire_due();
                let _ = rt.services.approvals.expire_stale();
                rt.services.registry.list()
            })
            .await;
            if let Ok(Ok(seals)) = seals {
                for seal in seals {
                    if let Some(previous) = known.insert(seal.id, seal.state) {
                        if previous != seal.state {
                            runtime.events.publish(Event::SealState {
                                seal_id: seal.id,
                                state: seal.state,
                            });
                        }
                    }
                }
            }
            tokio::time::sleep(SWEEP_EVERY).await;
        }
    });
}
