//! The localhost HTTP API (axum).

use axum::{routing::get, Json, Router};
use serde_json::{json, Value};

/// Builds the API router.
pub fn router() -> Router {
    Router::new().route("/v1/health", get(health))
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}
