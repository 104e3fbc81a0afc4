//! The localhost HTTP API (axum): guards, errors, routes.

pub mod error;
pub mod guard;
pub mod json;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::{middleware, routing::get, Json, Router};
use serde_json::{json, Value};

pub use error::ApiError;
pub use guard::GuardPolicy;
pub use json::ApiJson;

/// Builds the API router behind the guards.
pub fn router(policy: Arc<GuardPolicy>) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(policy.max_body_bytes))
        .layer(middleware::from_fn_with_state(policy, guard::guard))
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
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
