//! The event bus: one broadcast of [`Event`]s that requests, seals and devices publish to, with
//! ids and a replay buffer for subscribers that reconnect. The API serves it as server-sent
//! events (`GET /v1/events`), each subscriber seeing what [`super::audience`] lets it see.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::broadcast;

use crate::approval::{RequestId, RequestState, StampRequest};
use crate::identity::IdentityId;
use crate::seal::SealState;
use crate::store::model::SealId;

/// Who a stamp request concerns: what the audience filter needs to decide who sees an event
/// about it. Kept inside the daemon: never serialised into what clients receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestParties {
    /// The client identity that asked.
    pub requester: IdentityId,
    /// The seal asked for (its policy names the approvers).
    pub seal_id: SealId,
}

impl RequestParties {
    /// The parties of `request`.
    pub fn of(request: &StampRequest) -> Self {
        Self {
            requester: request.requester,
            seal_id: request.seal_id,
        }
    }
}

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
        /// Who it concerns (not sent).
        #[serde(skip)]
        parties: RequestParties,
    },
    /// An approver voted; `state` is the request's state afterwards.
    RequestDecided {
        /// The request.
        request_id: RequestId,
        /// Its state after the vote.
        state: RequestState,
        /// Who it concerns (not sent).
        #[serde(skip)]
        parties: RequestParties,
    },
    /// The request's signatures are ready.
    RequestSigned {
        /// The request.
        request_id: RequestId,
        /// Who it concerns (not sent).
        #[serde(skip)]
        parties: RequestParties,
    },
    /// Signing failed; nothing was signed.
    RequestFailed {
        /// The request.
        request_id: RequestId,
        /// Why, for people.
        reason: String,
        /// Who it concerns (not sent).
        #[serde(skip)]
        parties: RequestParties,
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
    /// Who the event concerns, if it is about a stamp request.
    pub fn request_parties(&self) -> Option<&RequestParties> {
        match self {
            Event::RequestCreated { parties, .. }
            | Event::RequestDecided { parties, .. }
            | Event::RequestSigned { parties, .. }
            | Event::RequestFailed { parties, .. } => Some(parties),
            _ => None,
        }
    }

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

/// An event with its number in this run of the daemon (the SSE `id` is `RUN-NUMBER`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Numbered {
    /// Its number, from 1, in publication order.
    pub id: u64,
    /// The event.
    pub event: Event,
}

/// What a subscriber resuming after `Last-Event-ID` gets.
#[derive(Debug)]
pub struct Resumed {
    /// Set when the missed events cannot be replayed: the client should fetch the state again.
    pub reset: Option<&'static str>,
    /// The kept events after the one it saw, oldest first.
    pub missed: Vec<Numbered>,
    /// The number of the newest event published so far (0: none): the id a `reset` carries,
    /// so the client's next reconnect resumes from here.
    pub latest: u64,
    /// Everything published from now on.
    pub receiver: broadcast::Receiver<Numbered>,
}

/// The last events published, for subscribers that reconnect.
#[derive(Debug)]
struct Recent {
    next: u64,
    kept: VecDeque<Numbered>,
    capacity: usize,
}

/// The event broadcaster. Cheap to clone; publishing with no subscriber is not an error. It
/// keeps the last `capacity` events so a client that reconnects with `Last-Event-ID` misses
/// nothing.
#[derive(Clone)]
pub struct Events {
    sender: broadcast::Sender<Numbered>,
    recent: Arc<Mutex<Recent>>,
    run: u64,
    relay: Arc<std::sync::OnceLock<Relay>>,
}

/// Where this node's events also go (other nodes, on a shared store).
type Relay = Box<dyn Fn(&Event) + Send + Sync>;

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("run", &self.run)
            .field("relayed", &self.relay.get().is_some())
            .finish()
    }
}

impl Default for Events {
    fn default() -> Self {
        Self::new(1024)
    }
}

impl Events {
    /// A broadcaster keeping up to `capacity` events for slow and reconnecting subscribers.
    pub fn new(capacity: usize) -> Self {
        let run = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        Self {
            sender: broadcast::channel(capacity).0,
            recent: Arc::new(Mutex::new(Recent {
                next: 1,
                kept: VecDeque::with_capacity(capacity),
                capacity,
            })),
            run,
            relay: Arc::new(std::sync::OnceLock::new()),
        }
    }

    /// Also hands every event published here to `relay` (set once).
    pub fn set_relay(&self, relay: Relay) {
        let _ = self.relay.set(relay);
    }

    /// Publishes an event that came from another node (not relayed again).
    pub fn publish_remote(&self, event: Event) {
        self.publish_here(event);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.recent.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Numbers an event, keeps it and sends it to every subscriber.
    pub fn publish(&self, event: Event) {
        if let Some(relay) = self.relay.get() {
            relay(&event);
        }
        self.publish_here(event);
    }

    fn publish_here(&self, event: Event) {
        let mut recent = self.lock();
        let numbered = Numbered {
            id: recent.next,
            event,
        };
        recent.next += 1;
        if recent.kept.len() == recent.capacity {
            recent.kept.pop_front();
        }
        recent.kept.push_back(numbered.clone());
        // Sent under the lock, so a resuming subscriber sees each event once: kept or sent.
        let _ = self.sender.send(numbered);
    }

    /// A new subscription from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Numbered> {
        self.sender.subscribe()
    }

    /// The SSE id of event `id`: this run and the number.
    pub fn sse_id(&self, id: u64) -> String {
        format!("{}-{id}", self.run)
    }

    /// A subscription that first replays what came after `last_event_id` (an SSE id this
    /// broadcaster gave), or says why it cannot.
    pub fn resume(&self, last_event_id: &str) -> Resumed {
        let recent = self.lock();
        let receiver = self.sender.subscribe();
        let seen = last_event_id
            .trim()
            .split_once('-')
            .and_then(|(run, id)| Some((run.parse::<u64>().ok()?, id.parse::<u64>().ok()?)));
        let oldest = recent.kept.front().map_or(recent.next, |e| e.id);
        let reset = match seen {
            None => {
                Some("Last-Event-ID is not an id of this daemon's events; fetch the state again")
            }
            Some((run, _)) if run != self.run => {
                Some("seald restarted since that event; fetch the state again")
            }
            Some((_, id)) if id >= recent.next => {
                Some("Last-Event-ID is newer than any event sent; fetch the state again")
            }
            Some((_, id)) if id + 1 < oldest => {
                Some("more events came after that one than seald keeps; fetch the state again")
            }
            Some(_) => None,
        };
        let missed = match (reset, seen) {
            (None, Some((_, id))) => recent.kept.iter().filter(|e| e.id > id).cloned().collect(),
            _ => Vec::new(),
        };
        Resumed {
            reset,
            missed,
            latest: recent.next - 1,
            receiver,
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(id: RequestId) -> Event {
        Event::RequestSigned {
            request_id: id,
            parties: RequestParties {
                requester: 7,
                seal_id: 1,
            },
        }
    }

    #[test]
    fn what_clients_receive_keeps_its_shape_and_hides_the_parties() {
        let json = serde_json::to_value(Event::RequestCreated {
            request_id: 3,
            seal_id: 1,
            parties: RequestParties {
                requester: 7,
                seal_id: 1,
            },
        })
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type": "request-created", "request_id": 3, "seal_id": 1})
        );
        let json = serde_json::to_value(signed(3)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type": "request-signed", "request_id": 3})
        );
    }

    #[test]
    fn a_reconnecting_subscriber_gets_what_it_missed_once() {
        let events = Events::new(4);
        events.publish(signed(1));
        events.publish(signed(2));
        let mut resumed = events.resume(&events.sse_id(1));
        assert_eq!(resumed.reset, None);
        assert_eq!(
            resumed.missed,
            vec![Numbered {
                id: 2,
                event: signed(2)
            }]
        );
        events.publish(signed(3));
        assert_eq!(resumed.receiver.try_recv().unwrap().id, 3);
        assert!(resumed.receiver.try_recv().is_err(), "nothing twice");
        // Up to date: nothing to replay.
        assert!(events.resume(&events.sse_id(3)).missed.is_empty());
    }

    #[test]
    fn what_cannot_be_replayed_is_a_reset() {
        let events = Events::new(2);
        for id in 1..=5 {
            events.publish(signed(id));
        }
        // Kept: 4 and 5. After 3, nothing was dropped; after 2, event 3 was.
        assert_eq!(events.resume(&events.sse_id(3)).missed.len(), 2);
        let dropped = events.resume(&events.sse_id(2));
        assert!(dropped.reset.unwrap().contains("more events"));
        assert!(dropped.missed.is_empty());
        // The reset's id lets the next reconnect resume from now on.
        let after_reset = events.resume(&events.sse_id(dropped.latest));
        assert_eq!((after_reset.reset, after_reset.missed.len()), (None, 0));
        let other_run = format!("{}-3", events.run + 1);
        assert!(events
            .resume(&other_run)
            .reset
            .unwrap()
            .contains("restarted"));
        assert!(events.resume(&events.sse_id(9)).reset.is_some());
        assert!(events.resume("garbage").reset.is_some());
    }
}
