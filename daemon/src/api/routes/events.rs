//! `GET /v1/events`: server-sent events (requests, seals, devices), each caller receiving the
//! events its role and relations let it see ([`crate::runtime::audience`]). Each has an `id`; a
//! client that reconnects with `Last-Event-ID` first gets the events it missed (filtered the
//! same way), or a `reset` event (sent to all) when they cannot be replayed (seald restarted,
//! or too many came since) and it should fetch the state again.

use std::convert::Infallible;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::stream::{self, Stream, StreamExt};
use tokio::sync::broadcast::error::RecvError;

use crate::api::auth::Auth;
use crate::api::error::ApiError;
use crate::api::mapping::blocking;
use crate::api::state::SharedState;
use crate::api::streams;
use crate::runtime::{Audience, Events, Numbered};

fn sse(events: &Events, numbered: &Numbered) -> SseEvent {
    SseEvent::default()
        .id(events.sse_id(numbered.id))
        .event(numbered.event.name())
        .json_data(&numbered.event)
        .unwrap_or_else(|_| SseEvent::default().comment("unencodable event"))
}

/// Reads the audience's relations again off the async threads; on failure keeps the old ones.
async fn reloaded(mut audience: Audience) -> Option<Audience> {
    tokio::task::spawn_blocking(move || {
        if let Err(e) = audience.reload() {
            tracing::warn!(error = %e, "cannot read an event subscriber's seals again; keeping the old ones");
        }
        audience
    })
    .await
    .ok()
}

/// `GET /v1/events` (any role): one SSE event per [`crate::runtime::Event`] the caller may see,
/// named by its type.
#[utoipa::path(get, path = "/v1/events", operation_id = "events", tag = "events",
    summary = "Server-sent events the caller may see (clients: their requests; approvers: their seals' requests; custodians: device, PIN and their custody events; everyone: seal events; auditors and admins: all): request-created/decided/signed/failed, seal-enrolled, seal-state, custody-transferred, pin-age, pin-unblocked, device-inserted/removed, pcsc; each with an id; send `Last-Event-ID` to replay what was missed (or get a `reset` event)",
    params(("Last-Event-ID" = Option<String>, Header, description = "the id of the last event seen, to replay what came after it")),
    responses(
        (status = 200, description = "an endless `text/event-stream`; each event's data is JSON; a stream whose identity is disabled or whose token is replaced ends with a `revoked` event", content_type = "text/event-stream", body = String),
        (status = 429, description = "`too_many_streams` (per identity or in all)", body = ApiError)),
    security(("bearer" = [])))]
pub async fn stream(
    State(state): State<SharedState>,
    auth: Auth,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    // Capped per identity and in all; held by the stream, given back when it closes.
    let slot = state.streams.acquire(auth.0.id)?;
    let approvals = state.services.approvals.clone();
    let caller = auth.caller();
    let audience = blocking(move || Audience::load(approvals, caller)).await?;
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
            first.extend(
                resumed
                    .missed
                    .iter()
                    .filter(|n| audience.admits(&n.event))
                    .map(|n| sse(&events, n)),
            );
            (first, resumed.receiver)
        }
        None => (Vec::new(), events.subscribe()),
    };
    let live = stream::unfold(
        (receiver, events, audience),
        |(mut receiver, events, mut audience)| async move {
            loop {
                let item = match receiver.recv().await {
                    Ok(numbered) => {
                        if audience.stale_for(&numbered.event) {
                            audience = reloaded(audience).await?;
                        }
                        if !audience.admits(&numbered.event) {
                            continue;
                        }
                        sse(&events, &numbered)
                    }
                    Err(RecvError::Lagged(n)) => {
                        SseEvent::default().event("lagged").data(n.to_string())
                    }
                    Err(RecvError::Closed) => return None,
                };
                return Some((item, (receiver, events, audience)));
            }
        },
    );
    let all = stream::iter(first).chain(live).map(Ok);
    let all = streams::for_caller(&state, &auth, &headers, slot, all);
    Ok(Sse::new(all).keep_alive(KeepAlive::default()))
}
