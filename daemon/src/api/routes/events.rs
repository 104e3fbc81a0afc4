//! `GET /v1/events`: server-sent events (requests, seals, devices).

use std::convert::Infallible;

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use tokio::sync::broadcast::error::RecvError;

use crate::api::auth::Auth;
use crate::api::state::SharedState;

/// `GET /v1/events` (any role): one SSE event per [`crate::api::events::Event`], named by its type.
pub async fn stream(
    State(state): State<SharedState>,
    _auth: Auth,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let receiver = state.events.subscribe();
    let events = stream::unfold(receiver, |mut receiver| async move {
        let sse = match receiver.recv().await {
            Ok(event) => SseEvent::default()
                .event(event.name())
                .json_data(&event)
                .unwrap_or_else(|_| SseEvent::default().comment("unencodable event")),
            Err(RecvError::Lagged(n)) => SseEvent::default().event("lagged").data(n.to_string()),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(sse), receiver))
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}
