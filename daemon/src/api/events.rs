//! Server-sent events: one broadcast of [`Event`]s that requests, seals and devices publish to.

use serde::Serialize;
use tokio::sync::broadcast;

use crate::approval::{RequestId, RequestState};
use crate::seal::SealState;
use crate::store::model::SealId;

/// Something a desktop client may want to show at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Event {
    /// A client asked for a stamp.
    RequestCreated {
        /// The request.
        request_id: RequestId,
        /// The seal asked for.
        seal_id: SealId,
    },
    /// An approver voted; `state` is the request's state afterwards.
    RequestDecided {
        /// The request.
        request_id: RequestId,
        /// Its state after the vote.
        state: RequestState,
    },
    /// The request's signatures are ready.
    RequestSigned {
        /// The request.
        request_id: RequestId,
    },
    /// Signing failed; nothing was signed.
    RequestFailed {
        /// The request.
        request_id: RequestId,
        /// Why, for people.
        reason: String,
    },
    /// A seal was enrolled (with its policy) and can be asked for.
    SealEnrolled {
        /// The new seal.
        seal_id: SealId,
        /// Its esID.
        es_id: String,
        /// Its name.
        name: String,
    },
    /// A seal changed state (suspended, revoked, lost, expired, active).
    SealState {
        /// The seal.
        seal_id: SealId,
        /// Its new state.
        state: SealState,
    },
    /// A token was inserted (from the PC/SC watcher, or seen by a device call).
    DeviceInserted {
        /// Token serial.
        serial: String,
    },
    /// A token was removed.
    DeviceRemoved {
        /// Token serial.
        serial: String,
    },
    /// A reader or card change seen through PC/SC, as the watcher reported it.
    Pcsc {
        /// The watcher's event (`reader-added`, `card-removed`, `pcsc-unavailable`, …).
        change: crate::device::pcsc::DeviceEvent,
    },
    /// At a custodian's login: the token's PIN is due for a change soon, overdue, or of
    /// unknown age (no change recorded by seald).
    PinAge {
        /// Token serial.
        serial: String,
        /// The warning for the custodian.
        warning: String,
    },
    /// A seal was handed to another custodian, who must change the PIN before its next stamp.
    CustodyTransferred {
        /// The seal.
        seal_id: SealId,
        /// The previous custodian, if one was on record.
        from: Option<String>,
        /// The new custodian.
        to: String,
        /// The new custodian must change the token PIN before the seal stamps again.
        pin_change_required: bool,
    },
    /// The security officer re-set a token's user PIN: the token is logged out and a custodian
    /// must log in with the new PIN.
    PinUnblocked {
        /// Token serial.
        serial: String,
    },
}

impl Event {
    /// The SSE event name (`request-created`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Event::RequestCreated { .. } => "request-created",
            Event::RequestDecided { .. } => "request-decided",
            Event::RequestSigned { .. } => "request-signed",
            Event::RequestFailed { .. } => "request-failed",
            Event::SealEnrolled { .. } => "seal-enrolled",
            Event::SealState { .. } => "seal-state",
            Event::DeviceInserted { .. } => "device-inserted",
            Event::DeviceRemoved { .. } => "device-removed",
            Event::Pcsc { .. } => "pcsc",
            Event::PinAge { .. } => "pin-age",
            Event::CustodyTransferred { .. } => "custody-transferred",
            Event::PinUnblocked { .. } => "pin-unblocked",
        }
    }
}

/// The event broadcaster. Cheap to clone; publishing with no subscriber is not an error.
#[derive(Debug, Clone)]
pub struct Events {
    sender: broadcast::Sender<Event>,
}

impl Default for Events {
    fn default() -> Self {
        Self::new(1024)
    }
}

impl Events {
    /// A broadcaster keeping up to `capacity` events for slow subscribers.
    pub fn new(capacity: usize) -> Self {
        Self {
            sender: broadcast::channel(capacity).0,
        }
    }

    /// Sends an event to every subscriber.
    pub fn publish(&self, event: Event) {
        let _ = self.sender.send(event);
    }

    /// A new subscription.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.sender.subscribe()
    }

    /// Forwards another broadcast (e.g. the PC/SC watcher's device events) into this one until
    /// it closes. Call from inside a tokio runtime.
    pub fn forward<T>(&self, mut source: broadcast::Receiver<T>)
    where
        T: Clone + Send + 'static + Into<Event>,
    {
        let events = self.clone();
        tokio::spawn(async move {
            loop {
                match source.recv().await {
                    Ok(item) => events.publish(item.into()),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
    }
}
