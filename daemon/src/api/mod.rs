//! The localhost HTTP API (axum): guards, auth, errors, routes, events, OpenAPI.

pub mod auth;
pub mod connections;
pub mod console;
pub mod error;
pub mod guard;
pub mod json;
pub mod mapping;
pub mod openapi;
pub mod ratelimit;
pub mod reload;
pub mod request_id;
pub mod routes;
pub mod server;
pub mod state;
pub mod streams;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::audit::operational::REFUSAL_TEXT_BYTES;
use crate::audit::{clip, NewRecord};
use crate::store::model::AuditKind;

pub use error::ApiError;
pub use guard::GuardPolicy;
pub use json::ApiJson;
pub use state::{AppState, SharedState};

/// The guards and health only: for tests of the guards without a store.
pub fn router(policy: Arc<GuardPolicy>) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(policy.max_body_bytes))
        .layer(middleware::from_fn_with_state(policy, guard::guard))
        .layer(middleware::from_fn(request_id::request_id))
}

/// The whole API and the web console's page (see [`console`]) behind the guards; every
/// refusal is logged (see [`log_refusals`]).
pub fn app(state: SharedState) -> Router {
    use routes::{audit, custody, devices, enrol, events, pin, seal_state, seals, stamp, verify};
    let policy = state.policy.clone();
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/openapi.json", get(openapi_json))
        .route("/metrics", get(routes::metrics::metrics))
        .route("/v1/devices", get(devices::list))
        .route("/v1/devices/{serial}/login", post(devices::login))
        .route("/v1/devices/{serial}/logout", post(devices::logout))
        .route("/v1/devices/{serial}/pin", post(pin::change))
        .route("/v1/devices/{serial}/pin-unblock", post(pin::unblock))
        .route("/v1/devices/{serial}/pin-status", get(pin::status))
        .route("/v1/seals", get(seals::list).post(enrol::enrol))
        .route("/v1/seals/{id}", get(seals::get))
        .route("/v1/seals/{id}/status", get(seals::status))
        .route("/v1/seals/{id}/revoke", post(seal_state::revoke))
        .route("/v1/seals/{id}/suspend", post(seal_state::suspend))
        .route("/v1/seals/{id}/resume", post(seal_state::resume))
        .route("/v1/seals/{id}/report-lost", post(seal_state::report_lost))
        .route(
            "/v1/seals/{id}/custody",
            get(custody::show).post(custody::transfer),
        )
        .route(
            "/v1/stamp-requests",
            post(stamp::create)
                // Uploads of documents (multipart) have their own, larger limit; a JSON body
                // is still read within `max_body_bytes` (`stamp::create`).
                .layer(DefaultBodyLimit::max(policy.max_document_bytes))
                .get(stamp::list),
        )
        .route("/v1/stamp-requests/{id}", get(stamp::get))
        .route(
            "/v1/stamp-requests/{id}/documents/{n}",
            get(stamp::document),
        )
        .route("/v1/stamp-requests/{id}/approve", post(stamp::approve))
        .route("/v1/stamp-requests/{id}/reject", post(stamp::reject))
        .route("/v1/verify", post(verify::verify))
        .route("/v1/audit", get(audit::list))
        .route("/v1/audit/head", get(audit::head))
        .route("/v1/events", get(events::stream))
        .route("/v1/console/links", post(console::routes::link))
        .route(
            "/v1/console/session",
            get(console::routes::current).post(console::routes::start),
        )
        .route("/v1/console/session/end", post(console::routes::end))
        .merge(console::assets())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(policy.max_body_bytes))
        .layer(middleware::from_fn_with_state(policy, guard::guard))
        .layer(middleware::from_fn_with_state(state.clone(), log_refusals))
        .layer(middleware::from_fn(request_id::request_id))
        .with_state(state)
}

/// Logs every error answer. Anonymous and rate-limited refusals are only counted, and written
/// as one `refusal-summary` per window (a flood of junk requests must not fill the store or
/// queue fsyncs before stamps); an authenticated refusal is written as one `refusal` record
/// with its path and message clipped. Both are operational records, outside the hash chain.
async fn log_refusals(
    State(state): State<SharedState>,
    mut request: Request,
    next: Next,
) -> Response {
    let slot = auth::CallerSlot::default();
    request.extensions_mut().insert(slot.clone());
    let method = clip(request.method().as_str(), 32);
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    if let Some(refused) = response.extensions().get::<error::Refused>() {
        state.runtime.metrics.refused(refused.code);
        let status = response.status().as_u16();
        let who = slot.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let audit = state.services.audit.clone();
        let shown = clip(&path, REFUSAL_TEXT_BYTES);
        let caller = who.clone().unwrap_or_else(|| "anonymous".into());
        match who {
            Some(who) if status != 429 => {
                tracing::info!(%method, path = %shown, status, code = refused.code, %caller, "refused");
                let record = NewRecord::new(
                    AuditKind::Refusal,
                    &who,
                    None,
                    json!({
                        "method": method,
                        "path": shown,
                        "status": status,
                        "code": refused.code,
                        "message": clip(&refused.message, REFUSAL_TEXT_BYTES),
                    }),
                );
                match tokio::task::spawn_blocking(move || audit.append_operational(record)).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::error!(error = %e, "cannot log a refusal"),
                    Err(e) => tracing::error!(error = %e, "cannot log a refusal"),
                }
            }
            who => {
                // Counted only; one line per junk request would flood the log instead.
                tracing::debug!(%method, path = %shown, status, code = refused.code, %caller, "refused");
                audit.count_refusal(status, refused.code, &method, &path, who.as_deref());
            }
        }
    }
    response
}

/// The answer of `GET /v1/health`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: &'static str,
    /// seald's version.
    pub version: &'static str,
}

/// `GET /v1/health`: liveness and version (no token).
#[utoipa::path(get, path = "/v1/health", operation_id = "health", tag = "daemon",
    summary = "Liveness and version (no token)",
    responses((status = 200, description = "seald is up", body = Health)))]
async fn health() -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// `GET /v1/openapi.json`: the OpenAPI document, generated from the handlers.
#[utoipa::path(get, path = "/v1/openapi.json", operation_id = "openapi", tag = "daemon",
    summary = "This document (no token)",
    responses((status = 200, description = "the OpenAPI 3.1 document", body = Object)))]
async fn openapi_json() -> Json<Value> {
    Json(openapi::document())
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint; see GET /v1/openapi.json")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that HTTP method",
    )
}
