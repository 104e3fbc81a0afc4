//! Request guards in front of every route: Host allow-list (DNS rebinding), browser Origin
//! allow-list with CORS and Private Network Access preflights, JSON-only bodies, size and time
//! limits. An unknown Origin is never echoed.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

/// What the guards allow.
#[derive(Debug)]
pub struct GuardPolicy {
    /// The port's loopback names; [`Allowed`] adds to them.
    port: u16,
    /// The allow-lists of the config, replaced on reload.
    allowed: RwLock<Allowed>,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Largest upload of documents (`multipart/form-data` to [`UPLOAD_PATH`] only).
    pub max_document_bytes: usize,
    /// Longest a request may take before it is answered with `timeout`.
    pub request_timeout: Duration,
}

/// The one route that takes `multipart/form-data` (OFD documents) and the larger limit.
pub const UPLOAD_PATH: &str = "/v1/stamp-requests";

const PREFLIGHT_REQUEST_METHOD: &str = "access-control-request-method";
const PREFLIGHT_PRIVATE_NETWORK: &str = "access-control-request-private-network";

/// The Host and Origin allow-lists.
#[derive(Debug)]
struct Allowed {
    hosts: HashSet<String>,
    origins: HashSet<String>,
}

impl Allowed {
    fn new(port: u16, extra_hosts: &[String], origins: &[String]) -> Self {
        let mut hosts: HashSet<String> = [
            format!("localhost:{port}"),
            format!("127.0.0.1:{port}"),
            format!("[::1]:{port}"),
        ]
        .into();
        hosts.extend(extra_hosts.iter().map(|h| h.to_ascii_lowercase()));
        Self {
            hosts,
            origins: origins.iter().map(|o| o.to_ascii_lowercase()).collect(),
        }
    }
}

impl GuardPolicy {
    /// A policy for a daemon bound to `bound`: the loopback names of that port, plus `extra_hosts`
    /// (each `name:port`) and `origins` (each `scheme://host[:port]`).
    pub fn new(
        bound: SocketAddr,
        extra_hosts: &[String],
        origins: &[String],
        max_body_bytes: usize,
        request_timeout: Duration,
    ) -> Self {
        let port = bound.port();
        Self {
            port,
            allowed: RwLock::new(Allowed::new(port, extra_hosts, origins)),
            max_body_bytes,
            max_document_bytes: max_body_bytes,
            request_timeout,
        }
    }

    /// The same policy with uploads of documents up to `bytes` (never below the body limit).
    pub fn with_document_limit(mut self, bytes: usize) -> Self {
        self.max_document_bytes = bytes.max(self.max_body_bytes);
        self
    }

    /// Replaces the allow-lists (a config reload): `extra_hosts` and `origins` as in [`Self::new`].
    pub fn set_allowed(&self, extra_hosts: &[String], origins: &[String]) {
        *self.allowed.write().unwrap_or_else(|e| e.into_inner()) =
            Allowed::new(self.port, extra_hosts, origins);
    }

    fn allowed(&self) -> std::sync::RwLockReadGuard<'_, Allowed> {
        self.allowed.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the request names an allowed authority. An absolute-form target
    /// (`GET http://host:port/path`) names it in the target, which replaces `Host`
    /// (RFC 9112 §3.2.2); otherwise the one `Host` field names it.
    fn host_allowed(&self, request: &Request) -> bool {
        request_authority(request)
            .is_some_and(|a| self.allowed().hosts.contains(&a.to_ascii_lowercase()))
    }

    /// Whether `origin` may call: one on the allow-list, or the daemon's own origin as this
    /// request names it (`http://` + its allowed authority: the console's page calling the API
    /// it was served with). A page on another of the daemon's names (`localhost` against
    /// `127.0.0.1`) or another port is another origin and is refused.
    fn origin_allowed(&self, origin: &HeaderValue, request: &Request) -> bool {
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        let origin = origin.to_ascii_lowercase();
        if self.allowed().origins.contains(&origin) {
            return true;
        }
        request_authority(request).is_some_and(|a| {
            origin.strip_prefix("http://") == Some(a.to_ascii_lowercase().as_str())
        })
    }
}

/// The authority a request names: that of an absolute-form target, or its `Host` field.
fn request_authority(request: &Request) -> Option<&str> {
    match request.uri().authority() {
        Some(authority) => Some(authority.as_str()),
        None => request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok()),
    }
}

fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || content_length(headers).is_some_and(|len| len > 0)
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn media_type(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim)
}

fn is_json(headers: &HeaderMap) -> bool {
    media_type(headers).is_some_and(|mime| mime.eq_ignore_ascii_case("application/json"))
}

/// Whether `request` is an upload of documents: `multipart/form-data` POSTed to
/// [`UPLOAD_PATH`]. Only it may have that media type and the larger size limit.
pub fn is_upload(request: &Request) -> bool {
    request.method() == Method::POST
        && request.uri().path() == UPLOAD_PATH
        && media_type(request.headers())
            .is_some_and(|mime| mime.eq_ignore_ascii_case("multipart/form-data"))
}

/// The guard middleware; install with `axum::middleware::from_fn_with_state`.
pub async fn guard(
    State(policy): State<Arc<GuardPolicy>>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    if headers.get_all(header::HOST).iter().nth(1).is_some() {
        // RFC 9112 §3.2: a request with more than one Host field is answered 400.
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "duplicate_host",
            "the request has more than one Host header; send exactly one",
        )
        .into_response();
    }
    if !policy.host_allowed(&request) {
        return ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            "host_not_allowed",
            "this daemon answers only to its loopback address (the Host header is not on the allow-list)",
        )
        .into_response();
    }
    let origin = headers.get(header::ORIGIN).cloned();
    if let Some(origin) = &origin {
        if !policy.origin_allowed(origin, &request) {
            return ApiError::forbidden(
                "origin_not_allowed",
                "requests from this web page's origin are not allowed; an administrator can add it to `api.allowed_origins`",
            )
            .into_response();
        }
    }
    if request.method() == Method::OPTIONS && headers.contains_key(PREFLIGHT_REQUEST_METHOD) {
        return match origin {
            Some(origin) => preflight(&origin, headers),
            None => ApiError::forbidden("origin_not_allowed", "a CORS preflight needs an Origin")
                .into_response(),
        };
    }
    let upload = is_upload(&request);
    if has_body(headers) && !is_json(headers) && !upload {
        return ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with `Content-Type: application/json` (OFD documents go to POST /v1/stamp-requests as `multipart/form-data`)",
        )
        .into_response();
    }
    let limit = if upload {
        policy.max_document_bytes
    } else {
        policy.max_body_bytes
    };
    if content_length(headers).is_some_and(|len| len > limit as u64) {
        let message = if upload {
            format!("the upload of documents is larger than {limit} bytes (`[api] max_document_bytes`); send fewer or smaller documents per request")
        } else {
            format!("the request body is larger than {limit} bytes")
        };
        return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", message)
            .into_response();
    }
    let mut response = match tokio::time::timeout(policy.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "the request took too long and was abandoned; try again",
        )
        .into_response(),
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Some(origin) = origin {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}

/// Answers a CORS preflight from an allowed origin, including Private Network Access.
fn preflight(origin: &HeaderValue, request: &HeaderMap) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("authorization, content-type"),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    if request
        .get(PREFLIGHT_PRIVATE_NETWORK)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"))
    {
        headers.insert(
            "access-control-allow-private-network",
            HeaderValue::from_static("true"),
        );
    }
    response
}
