//! Events across nodes (shared stores): what one node publishes about requests, enrolments and
//! custody reaches every node's subscribers, through PostgreSQL `NOTIFY`/`LISTEN`.
//!
//! Only facts shared through the store travel; a node's own tokens (insertions, removals, PIN
//! age) stay with it, and seal state changes are seen by each node's own sweep. Who an event
//! concerns is not sent: the receiving node reads it from the store, as for its own events.

use std::sync::mpsc;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Event, RequestParties, Runtime};
use crate::approval::RequestState;
use crate::identity::Caller;
use crate::store::model::{RequestId, SealId};

/// The channel nodes notify on.
const CHANNEL: &str = "seald_events";

/// An event as it travels between nodes.
#[derive(Debug, Serialize, Deserialize)]
struct Relayed {
    /// The claimant name of the node that published it (a node ignores its own).
    from: String,
    event: Shared,
}

/// The events other nodes' subscribers see.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
enum Shared {
    RequestCreated {
        request_id: RequestId,
        seal_id: SealId,
    },
    RequestDecided {
        request_id: RequestId,
        state: RequestState,
    },
    RequestSigned {
        request_id: RequestId,
    },
    RequestFailed {
        request_id: RequestId,
        reason: String,
    },
    SealEnrolled {
        seal_id: SealId,
        es_id: String,
        name: String,
    },
    CustodyTransferred {
        seal_id: SealId,
        from: Option<String>,
        to: String,
        pin_change_required: bool,
    },
}

impl Shared {
    /// The shared form of `event`, if it travels.
    fn of(event: &Event) -> Option<Self> {
        Some(match event.clone() {
            Event::RequestCreated {
                request_id,
                seal_id,
                ..
            } => Shared::RequestCreated {
                request_id,
                seal_id,
            },
            Event::RequestDecided {
                request_id, state, ..
            } => Shared::RequestDecided { request_id, state },
            Event::RequestSigned { request_id, .. } => Shared::RequestSigned { request_id },
            Event::RequestFailed {
                request_id, reason, ..
            } => Shared::RequestFailed { request_id, reason },
            Event::SealEnrolled {
                seal_id,
                es_id,
                name,
            } => Shared::SealEnrolled {
                seal_id,
                es_id,
                name,
            },
            Event::CustodyTransferred {
                seal_id,
                from,
                to,
                pin_change_required,
            } => Shared::CustodyTransferred {
                seal_id,
                from,
                to,
                pin_change_required,
            },
            _ => return None,
        })
    }

    /// The event again, with who it concerns read from the store.
    fn into_event(self, runtime: &Runtime) -> Option<Event> {
        let parties = |id: RequestId| {
            runtime
                .services
                .approvals
                .get(&Caller::Daemon, id)
                .ok()
                .map(|r| RequestParties::of(&r))
        };
        Some(match self {
            Shared::RequestCreated {
                request_id,
                seal_id,
            } => Event::RequestCreated {
                request_id,
                seal_id,
                parties: parties(request_id)?,
            },
            Shared::RequestDecided { request_id, state } => Event::RequestDecided {
                request_id,
                state,
                parties: parties(request_id)?,
            },
            Shared::RequestSigned { request_id } => Event::RequestSigned {
                request_id,
                parties: parties(request_id)?,
            },
            Shared::RequestFailed { request_id, reason } => Event::RequestFailed {
                request_id,
                reason,
                parties: parties(request_id)?,
            },
            Shared::SealEnrolled {
                seal_id,
                es_id,
                name,
            } => Event::SealEnrolled {
                seal_id,
                es_id,
                name,
            },
            Shared::CustodyTransferred {
                seal_id,
                from,
                to,
                pin_change_required,
            } => Event::CustodyTransferred {
                seal_id,
                from,
                to,
                pin_change_required,
            },
        })
    }
}

/// On a PostgreSQL store: sends this node's shared events to the other nodes and publishes
/// theirs here. Does nothing on SQLite.
pub(crate) fn spawn(runtime: &Arc<Runtime>) {
    let Some(pg) = runtime.services.store.postgres() else {
        return;
    };
    let me = runtime.services.approvals.claimant().to_owned();

    // Out: a thread sends what this node publishes (publishing never waits for PostgreSQL).
    let (out, outgoing) = mpsc::channel::<String>();
    let from = me.clone();
    runtime.events.set_relay(Box::new(move |event: &Event| {
        if let Some(event) = Shared::of(event) {
            if let Ok(json) = serde_json::to_string(&Relayed {
                from: from.clone(),
                event,
            }) {
                let _ = out.send(json);
            }
        }
    }));
    let sender = runtime.clone();
    let _ = std::thread::Builder::new()
        .name("seald-relay-out".into())
        .spawn(move || {
            for payload in outgoing {
                if let Some(pg) = sender.services.store.postgres() {
                    if let Err(e) = pg.notify(CHANNEL, &payload) {
                        tracing::warn!(error = %e, "cannot send an event to the other nodes");
                    }
                }
            }
        });

    // In: the listener hands payloads to a thread (it must not wait on the store itself).
    let (inn, incoming) = mpsc::channel::<String>();
    let notifications = pg.listen(CHANNEL, move |payload| {
        let _ = inn.send(payload);
    });
    let receiver = runtime.clone();
    let _ = std::thread::Builder::new()
        .name("seald-relay-in".into())
        .spawn(move || {
            let _listening = notifications;
            for payload in incoming {
                let Ok(relayed) = serde_json::from_str::<Relayed>(&payload) else {
                    tracing::warn!("an event from another node could not be read");
                    continue;
                };
                if relayed.from == me {
                    continue;
                }
                let approved = matches!(
                    relayed.event,
                    Shared::RequestDecided {
                        state: RequestState::Approved,
                        ..
                    }
                );
                if let Some(event) = relayed.event.into_event(&receiver) {
                    receiver.events.publish_remote(event);
                }
                if approved {
                    receiver.approved.notify_one();
                }
            }
        });
}
