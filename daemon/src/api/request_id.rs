//! Request ids: every API request gets one, in its response's `X-Request-Id` header and in
//! every log line written while it is handled (the `request` span's `id`), so a person can
//! find what seald logged about the answer they got.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// The response header carrying the id.
pub const HEADER: &str = "x-request-id";

/// A new id: 16 hex digits, random (never taken from the client).
fn new_id() -> String {
    let mut random = [0u8; 8];
    let _ = getrandom::fill(&mut random);
    hex::encode(random)
}

/// The middleware: names the request, logs within its span, returns the id.
pub async fn request_id(request: Request, next: Next) -> Response {
    let id = new_id();
    let span = tracing::info_span!("request", id = %id);
    let mut response = next.run(request).instrument(span).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, value);
    }
    response
}
