//! `GET /v1/events`: server-sent events (requests, seals, devices). Each has an `id`; a client
//! that reconnects with `Last-Event-ID` first gets the events it missed, or a `reset` event when
//! they cannot be replayed (seald restarted, or too many came since) and it should fetch the
//! state again.

use std::convert::Infallible;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::stream::{self, Stream, StreamExt};
use tokio::sync::broadcast::error::RecvError;

use crate::api::auth::Auth;
use crate::api::error::ApiError;
use crate::api::events::{Events, Numbered};
use crate::api::state::SharedState;
use crate::api::streams;

fn sse(events: &Events, numbered: &Numbered) -> SseEvent {
    SseEvent::default()
        .id(events.sse_id(numbered.id))
        .event(numbered.event.name())
        .json_data(&numbered.event)
        .unwrap_or_else(|_| SseEvent::default().comment("unencodable event"))
}

/// `GET /v1/events` (any role): one SSE event per [`crate::api::events::Event`], named by its type.
pub async fn stream(
    State(state): State<SharedState>,
    auth: Auth,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    // Capped per identity and in all; held by the stream, given back when it closes.
    let slot = state.streams.acquire(auth.0.id)?;
    let events = state.events.clone();
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (first, receiver) = match last {
        Some(last) => {
            let resumed = events.resume(&last);
            let mut first: Vec<SseEvent> = resumed
                .reset
                .map(|why| {
                    SseEvent::default()
                        .id(events.sse_id(resumed.latest))
                        .event("reset")
                        .data(why)
                })
                .into_iter()
                .collect();
            first.extend(resumed.missed.iter().map(|n| sse(&events, n)));
            (first, resumed.receiver)
        }
        None => (Vec::new(), events.subscribe()),
    };
    let live = stream::unfold((receiver, events), |(mut receiver, events)| async move {
        let item = match receiver.recv().await {
            Ok(numbered) => sse(&events, &numbered),
            Err(RecvError::Lagged(n)) => SseEvent::default().event("lagged").data(n.to_string()),
            Err(RecvError::Closed) => return None,
        };
        Some((item, (receiver, events)))
    });
    let all = stream::iter(first).chain(live).map(Ok);
    let all = streams::for_caller(&state, &auth, &headers, slot, all);
    Ok(Sse::new(all).keep_alive(KeepAlive::default()))
}
