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
        loop {
            match receiver.recv().await {
                Ok(event) => {
                    let sse = SseEvent::default()
                        .event(event.name())
                        .json_data(&event)
                        .unwrap_or_else(|_| SseEvent::default().comment("unencodable event"));
                    return Some((Ok(sse), receiver));
                }
                Err(RecvError::Lagged(n)) => {
                    let sse = SseEvent::default().event("lagged").data(n.to_string());
                    return Some((Ok(sse), receiver));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}
