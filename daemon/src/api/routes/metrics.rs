//! `GET /metrics`: Prometheus text format (see [`crate::metrics`]).

use axum::extract::{FromRequestParts, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

use crate::api::auth::{Anonymous, Auth};
use crate::api::mapping::blocking;
use crate::api::{ApiError, SharedState};
use crate::identity::Role;

/// The content type of the OpenMetrics text format `prometheus-client` writes.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `GET /metrics` (auditor or admin; no token with `[metrics] public = true`).
#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "daemon",
    summary = "Metrics in Prometheus (OpenMetrics) text format: auditor or admin, or no token with [metrics] public = true",
    responses(
        (status = 200, description = "the metrics", body = String, content_type = "application/openmetrics-text"),
        (status = 401, description = "`unauthenticated`", body = ApiError),
        (status = 403, description = "`forbidden` (not an auditor or admin)", body = ApiError),
        (status = 503, description = "`store_unavailable`", body = ApiError)),
    security(("bearer" = [])))]
pub async fn metrics(
    State(state): State<SharedState>,
    mut parts: Parts,
) -> Result<Response, ApiError> {
    if state
        .metrics_public
        .load(std::sync::atomic::Ordering::Relaxed)
    {
        // Rate-limited like every open route: each scrape asks every device.
        Anonymous::from_request_parts(&mut parts, &state).await?;
    } else {
        Auth::from_request_parts(&mut parts, &state)
            .await?
            .require_any(&[Role::Auditor, Role::Admin])?;
    }
    let st = state.clone();
    let text =
        blocking(move || crate::metrics::scrape::render(&st.runtime, st.streams.total())).await?;
    Ok(([(CONTENT_TYPE, OPENMETRICS)], text).into_response())
}
