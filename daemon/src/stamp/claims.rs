//! Which process signs an approved request: a claim with a lease, renewed while it signs.
//!
//! On a store several nodes share (PostgreSQL), any node can take a request and vote, and the
//! node that can reach the seal's device signs: a node leaves a request whose token it has not
//! logged in, and every node looks every second for approved requests nobody holds (never
//! claimed, or the holder's lease ran out because it died) and signs those it can. The claim
//! is checked again in the transaction that keeps the signatures, so a request is released
//! once even if two nodes signed it.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use crate::approval::{ApprovalError, PinMode, RequestId};
use crate::identity::Caller;
use crate::runtime::Runtime;

/// Most requests looked at per seal and round.
const ROUND: usize = 64;

/// How often a node looks for requests nobody holds.
const EVERY: Duration = Duration::from_secs(1);

/// The requests this process is signing now.
#[derive(Debug, Default)]
pub struct InFlight(std::sync::Mutex<std::collections::HashSet<RequestId>>);

/// This process signs a request while it is held; dropped, the request is free again.
#[derive(Debug)]
pub struct Signing<'a> {
    set: &'a InFlight,
    id: RequestId,
}

impl InFlight {
    /// Marks `id` as being signed here, unless it already is.
    pub fn start(&self, id: RequestId) -> Option<Signing<'_>> {
        let fresh = self.0.lock().unwrap_or_else(|e| e.into_inner()).insert(id);
        fresh.then_some(Signing { set: self, id })
    }
}

impl Drop for Signing<'_> {
    fn drop(&mut self) {
        self.set
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

/// Renews a claim every third of the lease until dropped.
#[derive(Debug)]
pub struct Renewal {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Renewal {
    /// Starts renewing this process's claim on `id`.
    pub fn start(runtime: &Runtime, id: RequestId) -> Self {
        let (stop, stopped) = mpsc::channel::<()>();
        let approvals = runtime.services.approvals.clone();
        let lease = runtime.lease;
        let thread = std::thread::Builder::new()
            .name("seald-claim".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(lease / 3) {
                    match approvals.renew_claim(id, lease) {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::warn!(request = id, "the claim on this request was lost");
                            return;
                        }
                        Err(e) => {
                            tracing::warn!(request = id, error = %e, "cannot renew the claim")
                        }
                    }
                }
            })
            .ok();
        Self {
            stop: Some(stop),
            thread,
        }
    }
}

impl Drop for Renewal {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Whether this node can sign with the token `serial` now: present and logged in here.
pub fn can_sign_here(runtime: &Runtime, serial: &str) -> bool {
    runtime.devices.is_logged_in(serial)
}

/// Whether this node can sign request `id` now: its seal's token is logged in here and, under
/// `pin_mode = each-stamp`, that login was given for this request (on this node).
pub fn signable_here(runtime: &Runtime, id: RequestId) -> Result<bool, ApprovalError> {
    let approvals = &runtime.services.approvals;
    let request = approvals.get(&Caller::Daemon, id)?;
    let seal = runtime.services.registry.get(request.seal_id)?;
    if !can_sign_here(runtime, &seal.device_serial) {
        return Ok(false);
    }
    let each_stamp = approvals
        .policy(request.seal_id)?
        .is_some_and(|p| p.pin_mode == PinMode::EachStamp);
    Ok(!each_stamp || runtime.login_bound_to(&seal.device_serial) == Some(id))
}

/// On a shared store: every second (or when woken), signs the approved requests nobody holds
/// whose token this node has logged in.
pub fn spawn_takeover(runtime: Arc<Runtime>) {
    if !runtime.services.store.is_shared() {
        return;
    }
    tokio::spawn(async move {
        loop {
            let rt = runtime.clone();
            let due = tokio::task::spawn_blocking(move || claimable_here(&rt)).await;
            for id in due.unwrap_or_default() {
                super::spawn_signing(runtime.clone(), id);
            }
            tokio::select! {
                _ = tokio::time::sleep(EVERY) => {}
                _ = runtime.approved.notified() => {}
            }
        }
    });
}

/// Approved requests nobody holds whose seal's token this node can sign with (looked for per
/// seal, so requests this node cannot sign never hide those it can).
fn claimable_here(runtime: &Runtime) -> Vec<RequestId> {
    let seals = match runtime.services.registry.list() {
        Ok(seals) => seals,
        Err(e) => {
            tracing::warn!(error = %e, "cannot look for approved requests to sign");
            return Vec::new();
        }
    };
    let mut reachable = std::collections::HashMap::new();
    let mine: Vec<_> = seals
        .into_iter()
        .filter(|seal| {
            *reachable
                .entry(seal.device_serial.clone())
                .or_insert_with(|| can_sign_here(runtime, &seal.device_serial))
        })
        .map(|seal| seal.id)
        .collect();
    if mine.is_empty() {
        return Vec::new();
    }
    // Whether a request's each-stamp PIN entry was made here is the worker's to check
    // (`signable_here`), as for any request it is given.
    match runtime.services.approvals.claimable(&mine, ROUND) {
        Ok(ids) => ids,
        Err(e) => {
            tracing::warn!(error = %e, "cannot look for approved requests to sign");
            Vec::new()
        }
    }
}
