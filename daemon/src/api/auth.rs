//! Bearer-token authentication (no cookies) and role checks, as an extractor.

use std::sync::{Arc, Mutex};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};

use crate::identity::{AuthError, Caller, Identity, Role};

use super::connections::ConnectionId;
use super::console::sessions::ConsoleSessions;
use super::error::ApiError;
use super::ratelimit::BucketKey;
use super::state::SharedState;

/// Filled by the auth extractor so the refusal log can name who was refused.
#[derive(Debug, Clone, Default)]
pub struct CallerSlot(pub Arc<Mutex<Option<String>>>);

/// An authenticated caller: `Authorization: Bearer <token>`.
#[derive(Debug, Clone)]
pub struct Auth(pub Identity);

impl Auth {
    /// The caller as the core services take it.
    pub fn caller(&self) -> Caller {
        Caller::User(self.0.clone())
    }

    /// Refuses with 403 `forbidden` unless the caller holds `role`.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.0.has_role(role) {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "forbidden",
                format!("{} may not do this: it needs the {role} role", self.0.name),
            ))
        }
    }

    /// Refuses unless the caller holds one of `roles`.
    pub fn require_any(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.iter().any(|r| self.0.has_role(*r)) {
            Ok(())
        } else {
            let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            Err(ApiError::forbidden(
                "forbidden",
                format!(
                    "{} may not do this: it needs one of the roles {}",
                    self.0.name,
                    names.join(", ")
                ),
            ))
        }
    }
}

/// A caller without a token, on a route open to all (e.g. seal status for verifiers);
/// rate-limited per connection, so one flooding connection cannot starve the others.
#[derive(Debug, Clone, Copy)]
pub struct Anonymous;

impl FromRequestParts<SharedState> for Anonymous {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        let bucket = match parts.extensions.get::<ConnectionId>() {
            Some(ConnectionId(id)) => BucketKey::Connection(*id),
            None => BucketKey::Anonymous,
        };
        if state.limiter.allow(bucket) {
            Ok(Anonymous)
        } else {
            Err(rate_limited())
        }
    }
}

fn rate_limited() -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        "too many requests from this client; slow down and retry in a moment",
    )
}

fn unauthenticated(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
}

/// The bearer credential of a request, if it sends one.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// The identity `bearer` stands for: an API token, or a console session (whose API token must
/// still authenticate the same identity). `touch`: this use keeps the session from idling out.
pub async fn identify(
    state: &SharedState,
    bearer: &str,
    touch: bool,
) -> Result<Identity, AuthError> {
    let identities = state.services.identities.clone();
    if ConsoleSessions::is_session(bearer) {
        let grant = state
            .console
            .grant(bearer, touch)
            .ok_or(AuthError::Invalid)?;
        tokio::task::spawn_blocking(move || identities.authenticate_hash(&grant.token_hash))
            .await
            .map_err(|_| AuthError::Unavailable("authentication failed unexpectedly".into()))?
    } else {
        let token = bearer.to_owned();
        tokio::task::spawn_blocking(move || identities.authenticate(&token))
            .await
            .map_err(|_| AuthError::Unavailable("authentication failed unexpectedly".into()))?
    }
}

impl FromRequestParts<SharedState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(&parts.headers)
            .map(str::to_owned)
            .ok_or_else(|| unauthenticated("send your token as `Authorization: Bearer <token>`"))?;
        let identity = match identify(state, &token, true).await {
            Ok(identity) => identity,
            Err(AuthError::Unavailable(e)) => {
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    format!("cannot check the token now: {e}"),
                ))
            }
            Err(AuthError::Invalid) if ConsoleSessions::is_session(&token) => {
                return Err(unauthenticated(
                    "the console session has ended (signed out, idle too long, or seald restarted); sign in again",
                ))
            }
            Err(e) => return Err(unauthenticated(&e.to_string())),
        };
        if let Some(slot) = parts.extensions.get::<CallerSlot>() {
            *slot.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(identity.name.clone());
        }
        if !state.limiter.allow(BucketKey::Identity(identity.id)) {
            return Err(rate_limited());
        }
        Ok(Auth(identity))
    }
}
