//! The web console: a page, one script and one style sheet embedded in the binary, served at
//! `/` on the API's own address (same origin as `/v1`: no CORS, no Local Network Access
//! prompt), each answer with strict security headers; and the console's session routes
//! (`/v1/console/…`, see [`routes`]). The assets are plain files under `daemon/console/`;
//! building needs no Node toolchain.

pub mod routes;
pub mod sessions;

use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::state::SharedState;

/// The page.
pub const INDEX_HTML: &str = include_str!("../../../console/index.html");
/// The one script (plain JavaScript, no framework).
pub const APP_JS: &str = include_str!("../../../console/app.js");
/// The one style sheet.
pub const APP_CSS: &str = include_str!("../../../console/app.css");

/// Paths of the console's own assets (not API routes: not in the OpenAPI document).
pub const ASSETS: &[&str] = &["/", "/console/app.js", "/console/app.css"];

/// The Content-Security-Policy of every console answer: only this origin's script and style
/// (no inline code), images from this origin or data/blob URLs (seal images, previews),
/// fetches to this origin only, no frames, no forms posting anywhere, never framed.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The headers every console answer carries (the guards add `Cache-Control: no-store` and
/// `X-Content-Type-Options: nosniff` to every answer as well).
pub const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("content-security-policy", CSP),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    (
        "permissions-policy",
        "camera=(), microphone=(), geolocation=(), usb=(), serial=(), hid=()",
    ),
];

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    for (name, value) in SECURITY_HEADERS {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    response
}

async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}

/// The console's asset routes, to merge into the API's router (behind the same guards).
pub fn assets() -> Router<SharedState> {
    Router::new()
        .route("/", get(index))
        .route("/console/app.js", get(script))
        .route("/console/app.css", get(style))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_has_no_inline_script_or_style() {
        let page = INDEX_HTML.to_ascii_lowercase();
        // Every <script> names a file of this origin and holds nothing.
        for (i, _) in page.match_indices("<script") {
            let tag = &page[i..i + page[i..].find("</script>").expect("closed script")];
            assert!(tag.contains("src=\"/console/app.js\""), "{tag}");
            assert!(tag.ends_with('>'), "an inline script: {tag}");
        }
        assert!(!page.contains("<style"), "an inline style sheet");
        assert!(!page.contains(" style="), "an inline style attribute");
        for handler in [
            "onclick=",
            "onload=",
            "onerror=",
            "onsubmit=",
            "javascript:",
        ] {
            assert!(!page.contains(handler), "an inline handler: {handler}");
        }
        assert!(page.contains("href=\"/console/app.css\""));
    }

    #[test]
    fn the_script_builds_no_code_from_strings_and_no_html_from_data() {
        for banned in [
            "eval(",
            "new Function",
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "localStorage",
            "document.cookie",
        ] {
            assert!(!APP_JS.contains(banned), "app.js uses {banned}");
        }
    }

    #[test]
    fn the_policy_forbids_inline_code_and_framing() {
        assert!(CSP.contains("frame-ancestors 'none'"));
        assert!(CSP.contains("script-src 'self'"));
        assert!(!CSP.contains("unsafe-inline"));
        assert!(!CSP.contains("unsafe-eval"));
    }
}
