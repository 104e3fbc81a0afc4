//! The daemon's background tasks, over the [`Runtime`] (no front-end types): signing requests
//! approved before a restart, the expiry sweeps, the operational log's refusal summaries and
//! retention, and carrying the PC/SC watcher's changes into events and usage records
//! ([`hotplug`]).

pub mod device_events;
pub mod hotplug;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::approval::RequestState;
use crate::runtime::{Event, Runtime};
use crate::store::model::RequestId;

/// How often due seals and stale requests are expired.
const SWEEP_EVERY: Duration = Duration::from_secs(2);

/// Start-up work that must finish before the API serves: removes the uploads and sealed files
/// a stopped daemon left unfinished, and lists the requests approved before the restart (to
/// give to [`spawn`]). Nothing can be uploaded, approved or sealed meanwhile, so no file in use
/// is removed and no request gets two workers.
pub fn recover(runtime: &Runtime) -> Vec<RequestId> {
    if runtime.services.store.is_shared() {
        // Other nodes upload, seal and sign meanwhile (their files in progress are named by
        // no row yet); what nobody holds is found by the takeover round.
        return Vec::new();
    }
    match runtime.services.store.read(|tx| tx.document_paths()) {
        Ok(named) => match runtime.documents.remove_strays(&named) {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "unfinished uploads and sealed files removed"),
            Err(e) => tracing::error!(error = %e, "cannot tidy the documents directory"),
        },
        Err(e) => tracing::error!(error = %e, "cannot list the stored documents"),
    }
    // No other process signs on this store: claims left by a stopped daemon are void.
    if let Err(e) = runtime.services.approvals.release_claims() {
        tracing::error!(error = %e, "cannot release the claims of the previous run");
    }
    match runtime
        .services
        .store
        .read(|tx| tx.requests_in_state(RequestState::Approved))
    {
        Ok(approved) => approved.into_iter().map(|r| r.id).collect(),
        Err(e) => {
            tracing::error!(error = %e, "cannot list the requests approved before the restart");
            Vec::new()
        }
    }
}

/// Signs the requests `approved` before a restart (from [`recover`]), then every few seconds
/// expires due seals and stale requests and publishes seal state changes; writes refusal
/// summaries and prunes operational records. Call inside the runtime.
pub fn spawn(runtime: Arc<Runtime>, approved: Vec<RequestId>) {
    spawn_operational_log(runtime.clone());
    crate::stamp::claims::spawn_takeover(runtime.clone());
    crate::runtime::relay::spawn(&runtime);
    tokio::spawn(async move {
        for id in approved {
            crate::stamp::spawn_signing(runtime.clone(), id);
        }
        let mut known = HashMap::new();
        loop {
            let rt = runtime.clone();
            let seals = tokio::task::spawn_blocking(move || {
                let _ = rt.services.registry.expire_due();
                let _ = rt.services.approvals.expire_stale();
                // Uploads of requests now rejected, expired or failed are not needed.
                crate::stamp::remove_final_uploads(&rt);
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

/// Writes the refusal summary of each window when it has run, and prunes operational records
/// past their retention at start and then hourly.
fn spawn_operational_log(runtime: Arc<Runtime>) {
    tokio::spawn(async move {
        let mut ticks: u64 = 0;
        loop {
            let audit = runtime.services.audit.clone();
            let prune = ticks % 3600 == 0;
            let done = tokio::task::spawn_blocking(move || {
                if let Err(e) = audit.flush_refusals(false) {
                    tracing::error!(error = %e, "cannot write the refusal summary");
                }
                if prune {
                    match audit.prune_operational() {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(deleted = n, "operational records pruned"),
                        Err(e) => tracing::error!(error = %e, "cannot prune operational records"),
                    }
                }
            })
            .await;
            if let Err(e) = done {
                tracing::error!(error = %e, "operational log task failed");
            }
            ticks = ticks.wrapping_add(1);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}

/// Writes the refusals counted so far as one summary: call once the server has stopped.
pub fn flush_on_shutdown(runtime: &Runtime) {
    if let Err(e) = runtime.services.audit.flush_refusals(true) {
        tracing::error!(error = %e, "cannot write the refusal summary at shutdown");
    }
}
