//! A JSON body extractor whose rejections are [`ApiError`]s, never axum's plain text.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// `Json<T>` for request bodies, answering malformed input with a clear JSON error.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(explain(rejection)),
        }
    }
}

/// Parses JSON read by the handler itself (a body that may be empty, a form part), refusing
/// as [`ApiJson`] does: `malformed_json` 400 or `invalid_request` 422. `what` names the text
/// in the message ("the body", "the `request` part").
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            ApiError::bad_request("malformed_json", format!("{what} is not valid JSON: {e}"))
        } else {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                format!("{what} does not match what this endpoint takes: {e}"),
            )
        }
    })
}

fn explain(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with `Content-Type: application/json`",
        ),
        JsonRejection::JsonSyntaxError(e) => ApiError::bad_request(
            "malformed_json",
            format!("the body is not valid JSON: {}", e.body_text()),
        ),
        JsonRejection::JsonDataError(e) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            format!(
                "the JSON does not match what this endpoint takes: {}",
                e.body_text()
            ),
        ),
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "the request body is too large",
            )
        }
        other => ApiError::bad_request(
            "bad_body",
            format!("cannot read the request body: {}", other.body_text()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::post;
    use axum::Router;
    use tower::ServiceExt;

    use super::ApiJson;

    #[derive(Debug, serde::Deserialize)]
    struct Digest {
        #[allow(dead_code)]
        digest: String,
    }

    async fn call(content_type: &str, body: &'static str) -> (StatusCode, serde_json::Value) {
        let app = Router::new().route("/", post(|ApiJson(_): ApiJson<Digest>| async { "ok" }));
        let response = app
            .oneshot(
                Request::post("/")
                    .header("content-type", content_type)
                    .body(Body::from(body))
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or_default())
    }

    #[tokio::test]
    async fn malformed_and_mismatched_json_get_clear_codes() {
        let (status, body) = call("application/json", "{\"digest\": ").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["code"], "malformed_json");

        let (status, body) = call("application/json", "{\"digest\": 5}").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["code"], "invalid_request");
        assert!(body["message"].as_str().unwrap().contains("digest"));

        let (status, body) = call("text/plain", "{\"digest\": \"aa\"}").await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(body["code"], "unsupported_media_type");

        let (status, _) = call("application/json; charset=utf-8", "{\"digest\": \"aa\"}").await;
        assert_eq!(status, StatusCode::OK);
    }
}
