//! Bounds on long-lived event streams: a [`StreamSlot`] per open stream, at most so many per
//! identity and in all (429 `too_many_streams` beyond), given back when the stream ends; and
//! [`guarded`], which ends a stream once its caller's token no longer authenticates (identity
//! disabled, token replaced).

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::Event as SseEvent;
use futures_util::stream::{self, Stream, StreamExt};
use secrecy::{ExposeSecret, SecretString};

use crate::identity::AuthError;
use crate::store::model::IdentityId;

use super::auth::Auth;
use super::error::ApiError;
use super::state::AppState;

/// The open streams, counted per identity and in all.
#[derive(Debug, Clone)]
pub struct Streams {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    per_identity: usize,
    total: usize,
    /// How often an open stream checks that its caller's token still works.
    recheck: Duration,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_identity: HashMap<IdentityId, usize>,
}

impl Streams {
    /// At most `per_identity` streams for one identity and `total` in all; each re-checks its
    /// caller every `recheck`.
    pub fn new(per_identity: usize, total: usize, recheck: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                per_identity,
                total,
                recheck,
                open: Mutex::new(Open::default()),
            }),
        }
    }

    /// How often an open stream re-checks its caller.
    pub fn recheck(&self) -> Duration {
        self.inner.recheck
    }

    /// A slot for one more stream of `identity`, or 429 `too_many_streams`.
    pub fn acquire(&self, identity: IdentityId) -> Result<StreamSlot, ApiError> {
        let mut open = self.inner.open.lock().unwrap_or_else(|e| e.into_inner());
        let mine = open.by_identity.get(&identity).copied().unwrap_or(0);
        if mine >= self.inner.per_identity {
            return Err(too_many(format!(
                "this client already has {mine} event streams open (at most {}); close one or share one stream",
                self.inner.per_identity
            )));
        }
        if open.total >= self.inner.total {
            return Err(too_many(format!(
                "seald has {} event streams open, its limit; try again later",
                open.total
            )));
        }
        open.total += 1;
        *open.by_identity.entry(identity).or_insert(0) += 1;
        Ok(StreamSlot {
            streams: self.inner.clone(),
            identity,
        })
    }

    /// Streams open now, in all.
    pub fn total(&self) -> usize {
        self.inner
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .total
    }

    /// Streams open now: (of `identity`, in all).
    pub fn open(&self, identity: IdentityId) -> (usize, usize) {
        let open = self.inner.open.lock().unwrap_or_else(|e| e.into_inner());
        (
            open.by_identity.get(&identity).copied().unwrap_or(0),
            open.total,
        )
    }
}

fn too_many(message: String) -> ApiError {
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_streams", message)
}

/// One open stream's place; given back when dropped (with the stream).
#[derive(Debug)]
pub struct StreamSlot {
    streams: Arc<Inner>,
    identity: IdentityId,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.streams.open.lock().unwrap_or_else(|e| e.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.by_identity.get_mut(&self.identity) {
            *n -= 1;
            if *n == 0 {
                open.by_identity.remove(&self.identity);
            }
        }
    }
}

/// Whether the caller of a stream may still receive it.
#[derive(Debug)]
pub struct Recheck {
    state: Arc<AppState>,
    token: SecretString,
    identity: IdentityId,
}

impl Recheck {
    /// Checks `token` (an API token or a console session, which authenticated `identity`)
    /// again each time.
    pub fn new(state: Arc<AppState>, token: &str, identity: IdentityId) -> Self {
        Self {
            state,
            token: SecretString::from(token.to_owned()),
            identity,
        }
    }

    /// False once the token no longer authenticates this identity (disabled, replaced, a
    /// console session ended); true while it does, or while the store cannot tell. A check
    /// does not count as use of a console session: an open stream alone does not keep it
    /// from idling out.
    pub async fn still_allowed(&self) -> bool {
        match super::auth::identify(&self.state, self.token.expose_secret(), false).await {
            Ok(identity) => identity.id == self.identity,
            Err(AuthError::Unavailable(_)) => true,
            Err(_) => false,
        }
    }
}

/// `inner`, holding `slot` while it runs, re-checking the caller every `every` with `check`;
/// when the check fails, `farewell` is sent and the stream ends.
pub fn guarded<S, C, F>(
    inner: S,
    slot: StreamSlot,
    every: Duration,
    check: C,
    farewell: S::Item,
) -> impl Stream<Item = S::Item>
where
    S: Stream + Send + 'static,
    S::Item: Send + 'static,
    C: Fn() -> F + Send + 'static,
    F: Future<Output = bool> + Send,
{
    let start = tokio::time::Instant::now() + every;
    let ticks = tokio::time::interval_at(start, every);
    let state = (Box::pin(inner), ticks, check, Some(farewell), slot);
    stream::unfold(state, |mut state| async move {
        let (inner, ticks, check, farewell, _slot) = &mut state;
        farewell.as_ref()?;
        loop {
            tokio::select! {
                item = inner.next() => return item.map(|item| (item, state)),
                _ = ticks.tick() => {
                    if !check().await {
                        let last = farewell.take()?;
                        return Some((last, state));
                    }
                }
            }
        }
    })
}

/// The name of the last event of a stream whose caller no longer authenticates.
pub const REVOKED_EVENT: &str = "revoked";

/// An SSE stream for `auth`'s caller: holds `slot`, and ends with a `revoked` event once the
/// bearer token in `headers` no longer authenticates that identity (checked every
/// `api.stream_recheck_secs`).
pub fn for_caller<S>(
    state: &Arc<AppState>,
    auth: &Auth,
    headers: &HeaderMap,
    slot: StreamSlot,
    events: S,
) -> impl Stream<Item = Result<SseEvent, Infallible>>
where
    S: Stream<Item = Result<SseEvent, Infallible>> + Send + 'static,
{
    let token = super::auth::bearer(headers).unwrap_or_default();
    let recheck = Arc::new(Recheck::new(state.clone(), token, auth.0.id));
    let farewell = SseEvent::default().event(REVOKED_EVENT).data(
        r#"{"code":"unauthenticated","message":"this identity was disabled, its token replaced or its console session ended; the stream ends"}"#,
    );
    let check = move || {
        let recheck = recheck.clone();
        async move { recheck.still_allowed().await }
    };
    guarded(events, slot, state.streams.recheck(), check, Ok(farewell))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_capped_per_identity_and_in_all_and_given_back() {
        let streams = Streams::new(2, 3, Duration::from_secs(30));
        let (a, b): (IdentityId, IdentityId) = (1, 2);
        let a1 = streams.acquire(a).unwrap();
        let a2 = streams.acquire(a).unwrap();
        let refused = streams.acquire(a).unwrap_err();
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.code, "too_many_streams");
        let b1 = streams.acquire(b).unwrap();
        // Three in all: b may not open a second, though it has one.
        assert_eq!(streams.acquire(b).unwrap_err().code, "too_many_streams");
        drop(a1);
        let b2 = streams.acquire(b).unwrap();
        assert_eq!(streams.open(b), (2, 3));
        drop((a2, b1, b2));
        assert_eq!(streams.open(a), (0, 0));
    }

    #[tokio::test]
    async fn a_guarded_stream_ends_with_a_farewell_when_the_check_fails() {
        let streams = Streams::new(1, 1, Duration::from_millis(10));
        let slot = streams.acquire(1).unwrap();
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = calls.clone();
        let check = move || {
            let n = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move { n < 2 }
        };
        let pending = stream::iter([1, 2]).chain(stream::pending());
        let items: Vec<i32> = guarded(pending, slot, Duration::from_millis(10), check, -1)
            .collect()
            .await;
        assert_eq!(items, vec![1, 2, -1]);
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 3);
        // The slot went with the stream.
        assert_eq!(streams.open(1), (0, 0));
        assert!(streams.acquire(1).is_ok());
    }
}
