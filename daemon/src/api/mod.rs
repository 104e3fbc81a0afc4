//! The localhost HTTP API (axum): guards, auth, errors, routes, events, OpenAPI.

pub mod auth;
pub mod connections;
pub mod error;
pub mod events;
pub mod guard;
pub mod hotplug;
pub mod json;
pub mod mapping;
pub mod openapi;
pub mod ratelimit;
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

use crate::audit::NewRecord;
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
}

/// The whole API behind the guards; every refusal is written to the usage log.
pub fn app(state: SharedState) -> Router {
    use routes::{audit, custody, devices, enrol, events, pin, seal_state, seals, stamp, verify};
    let policy = state.policy.clone();
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/openapi.json", get(openapi_json))
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
        .route("/v1/seals/{id}/custody", post(custody::transfer))
        .route("/v1/stamp-requests", post(stamp::create).get(stamp::list))
        .route("/v1/stamp-requests/{id}", get(stamp::get))
        .route("/v1/stamp-requests/{id}/approve", post(stamp::approve))
        .route("/v1/stamp-requests/{id}/reject", post(stamp::reject))
        .route("/v1/verify", post(verify::verify))
        .route("/v1/audit", get(audit::list))
        .route("/v1/audit/head", get(audit::head))
        .route("/v1/events", get(events::stream))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(policy.max_body_bytes))
        .layer(middleware::from_fn_with_state(policy, guard::guard))
        .layer(middleware::from_fn_with_state(state.clone(), log_refusals))
        .with_state(state)
}

/// Writes a `refusal` record (method, path, status, code, who) for every error answer.
async fn log_refusals(
    State(state): State<SharedState>,
    mut request: Request,
    next: Next,
) -> Response {
    let slot = auth::CallerSlot::default();
    request.extensions_mut().insert(slot.clone());
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    if let Some(refused) = response.extensions().get::<error::Refused>() {
        let who = slot
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_else(|| "anonymous".into());
        let record = NewRecord::new(
            AuditKind::Refusal,
            &who,
            None,
            json!({
                "method": method,
                "path": path,
                "status": response.status().as_u16(),
                "code": refused.code,
                "message": refused.message,
            }),
        );
        tracing::info!(%method, %path, status = response.status().as_u16(), code = refused.code, caller = %who, "refused");
        let audit = state.services.audit.clone();
        match tokio::task::spawn_blocking(move || audit.append(record)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "cannot log a refusal"),
            Err(e) => tracing::error!(error = %e, "cannot log a refusal"),
        }
    }
    response
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

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
