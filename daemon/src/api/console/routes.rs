//! The console's session routes: `POST /v1/console/links` (a one-time sign-in code for
//! `sealctl console`), `POST /v1/console/session` (an API token or a code exchanged for a
//! console session), `GET /v1/console/session` (who the bearer is) and
//! `POST /v1/console/session/end` (sign out).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::api::auth::{self, Anonymous, Auth};
use crate::api::error::ApiError;
use crate::api::state::SharedState;
use crate::identity::{AuthError, Identity, Role};

use super::sessions::{ConsoleSessions, Grant};

/// The answer of `POST /v1/console/links`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Link {
    /// The one-time code (hex).
    pub code: String,
    /// Seconds it stays valid.
    pub expires_in_secs: u64,
    /// Where to open it on this daemon: `/#code=…` (a fragment, so the code never reaches a
    /// server log or a `Referer`; the console takes it out of the address bar at once).
    pub path: String,
}

fn random_failed(e: String) -> ApiError {
    ApiError::internal(format!("cannot make a console credential: {e}"))
}

/// The keyed hash of the API token `headers` send; refused for a console session (a session
/// cannot make other sessions or sign-in links, so it cannot outlive its own limits).
fn api_token_grant(state: &SharedState, headers: &HeaderMap) -> Result<Grant, ApiError> {
    let bearer = auth::bearer(headers).unwrap_or_default();
    if ConsoleSessions::is_session(bearer) {
        return Err(ApiError::forbidden(
            "session_not_allowed",
            "a console session cannot start another session or make a sign-in link; use your API token",
        ));
    }
    let token_hash = state
        .services
        .identities
        .token_hash(bearer)
        .ok_or_else(|| ApiError::internal("the token that authenticated is not an API token"))?;
    Ok(Grant { token_hash })
}

/// `POST /v1/console/links` (any role, with its API token): a one-time code that opens a
/// console session for the caller; what `sealctl console` prints as a link.
#[utoipa::path(post, path = "/v1/console/links", operation_id = "console_link", tag = "console",
    summary = "A one-time sign-in code for the web console (any role, API token only); valid for 2 minutes, once",
    responses(
        (status = 200, description = "the code and the path to open", body = Link),
        (status = 403, description = "`session_not_allowed` (sent with a console session)", body = ApiError)),
    security(("bearer" = [])))]
pub async fn link(
    State(state): State<SharedState>,
    auth: Auth,
    headers: HeaderMap,
) -> Result<Json<Link>, ApiError> {
    let grant = api_token_grant(&state, &headers)?;
    let code = state.console.new_code(grant).map_err(random_failed)?;
    tracing::info!(identity = %auth.0.name, "console sign-in link made");
    Ok(Json(Link {
        path: format!("/#code={code}"),
        code,
        expires_in_secs: state.console.code_ttl().as_secs(),
    }))
}

/// Body of `POST /v1/console/session` with a sign-in code.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionBody {
    /// The one-time code from `sealctl console` (omit it and send the API token instead).
    pub code: String,
}

/// The answer of `POST /v1/console/session`: the session credential and who it is for.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionStarted {
    /// The session credential: send it as `Authorization: Bearer …` (it starts `sldc_`).
    pub session: String,
    /// Who signed in.
    #[serde(flatten)]
    pub who: Whoami,
}

/// Who a bearer is, and how long a console session may idle.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Whoami {
    /// The identity's name.
    pub name: String,
    /// Its roles.
    pub roles: Vec<Role>,
    /// A console session unused this long ends.
    pub idle_timeout_secs: u64,
    /// Whether the bearer is a console session (not an API token); in the answer of
    /// `POST /v1/console/session`, always true (it describes the new session).
    pub console_session: bool,
}

fn whoami(state: &SharedState, identity: &Identity, console_session: bool) -> Whoami {
    Whoami {
        name: identity.name.clone(),
        roles: identity.roles.clone(),
        idle_timeout_secs: state.console.idle().as_secs(),
        console_session,
    }
}

fn code_refused() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
        "this sign-in link is not valid: it was used already, is older than 2 minutes, or seald restarted; run `sealctl console` again",
    )
}

/// `POST /v1/console/session`: starts a console session, for the API token sent as bearer
/// (no body) or for a one-time code from `sealctl console` (body `{"code"}`, no token).
#[utoipa::path(post, path = "/v1/console/session", operation_id = "console_session_start", tag = "console",
    summary = "Start a web-console session: send your API token as bearer (no body), or a one-time code `{\"code\"}` from `sealctl console` (no token). The session ends after `api.console_idle_secs` unused (default 15 minutes), 8 hours in all, on sign-out, or when the token is replaced or the identity disabled",
    request_body(content = Option<SessionBody>, description = "the one-time code; omit the body when sending the API token"),
    responses(
        (status = 200, description = "the session", body = SessionStarted),
        (status = 401, description = "`unauthenticated` (no token and no code, or the code is used, expired or unknown)", body = ApiError),
        (status = 403, description = "`session_not_allowed` (sent with a console session)", body = ApiError)),
    security((), ("bearer" = [])))]
pub async fn start(
    State(state): State<SharedState>,
    // Rate-limited per connection before anything is checked (codes are tried without a token).
    _connection: Anonymous,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<SessionStarted>, ApiError> {
    let (grant, identity) = if body.is_empty() {
        let bearer = auth::bearer(&headers).ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "send your API token as `Authorization: Bearer <token>`, or a sign-in code as {\"code\": \"...\"}",
            )
        })?;
        let identity = authenticated(&state, bearer).await?;
        if !state
            .limiter
            .allow(crate::api::ratelimit::BucketKey::Identity(identity.id))
        {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests from this client; slow down and retry in a moment",
            ));
        }
        (api_token_grant(&state, &headers)?, identity)
    } else {
        let body: SessionBody = serde_json::from_slice(&body).map_err(|_| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                "send {\"code\": \"...\"} (the code from `sealctl console`), or no body and your API token",
            )
        })?;
        let grant = state
            .console
            .take_code(&body.code)
            .ok_or_else(code_refused)?;
        let identities = state.services.identities.clone();
        let hash = grant.token_hash.clone();
        let identity = tokio::task::spawn_blocking(move || identities.authenticate_hash(&hash))
            .await
            .map_err(|_| ApiError::internal("authentication failed unexpectedly"))?
            .map_err(|e| refused(&e))?;
        (grant, identity)
    };
    let session = state.console.start(grant).map_err(random_failed)?;
    tracing::info!(identity = %identity.name, "console session started");
    Ok(Json(SessionStarted {
        session,
        who: whoami(&state, &identity, true),
    }))
}

fn refused(e: &AuthError) -> ApiError {
    match e {
        AuthError::Unavailable(e) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("cannot check the token now: {e}"),
        ),
        e => ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", e.to_string()),
    }
}

async fn authenticated(state: &SharedState, bearer: &str) -> Result<Identity, ApiError> {
    if ConsoleSessions::is_session(bearer) {
        return Err(ApiError::forbidden(
            "session_not_allowed",
            "a console session cannot start another session; use your API token",
        ));
    }
    auth::identify(state, bearer, true)
        .await
        .map_err(|e| refused(&e))
}

/// `GET /v1/console/session`: who the bearer (API token or console session) is.
#[utoipa::path(get, path = "/v1/console/session", operation_id = "console_whoami", tag = "console",
    summary = "Who the bearer is (name, roles), and the console's idle timeout",
    responses((status = 200, description = "the caller", body = Whoami)),
    security(("bearer" = [])))]
pub async fn current(
    State(state): State<SharedState>,
    auth: Auth,
    headers: HeaderMap,
) -> Json<Whoami> {
    let session = ConsoleSessions::is_session(auth::bearer(&headers).unwrap_or_default());
    Json(whoami(&state, &auth.0, session))
}

/// The answer of `POST /v1/console/session/end`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Ended {
    /// Always true: the session credential no longer works.
    pub ended: bool,
}

/// `POST /v1/console/session/end`: signs out (the session credential stops working at once).
#[utoipa::path(post, path = "/v1/console/session/end", operation_id = "console_session_end", tag = "console",
    summary = "Sign out of the console: the session credential sent as bearer stops working",
    responses(
        (status = 200, description = "ended", body = Ended),
        (status = 422, description = "`not_a_session` (the bearer is an API token, which this does not end)", body = ApiError)),
    security(("bearer" = [])))]
pub async fn end(
    State(state): State<SharedState>,
    auth: Auth,
    headers: HeaderMap,
) -> Result<Json<Ended>, ApiError> {
    let bearer = auth::bearer(&headers).unwrap_or_default();
    if !ConsoleSessions::is_session(bearer) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_a_session",
            "the bearer is an API token, not a console session; nothing was ended",
        ));
    }
    state.console.end(bearer);
    tracing::info!(identity = %auth.0.name, "console session ended");
    Ok(Json(Ended { ended: true }))
}
