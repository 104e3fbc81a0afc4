//! `POST /v1/verify`: any SES_Signature (ours or another vendor's) against a document digest.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

use crate::api::auth::Auth;
use crate::api::error::ApiError;
use crate::api::mapping::blocking;
use crate::api::state::SharedState;
use crate::api::ApiJson;
use crate::audit::NewRecord;
use crate::ses::{verify_der, Document, VerifyOptions};
use crate::store::model::Digest32;

/// The signature to check and the document's digest.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyBody {
    /// The SES_Signature, DER, base64.
    #[schema(format = Byte)]
    pub ses_signature: String,
    /// The digest the signature should carry (hex): SM3 for SM2 seals, SHA-256 for P-256.
    pub digest: Digest32,
}

/// `POST /v1/verify` (any role): the format layer's structured report.
#[utoipa::path(post, path = "/v1/verify", operation_id = "verify", tag = "verify",
    summary = "Verify a SES_Signature against a digest: the format layer's report (any role)",
    request_body = VerifyBody,
    responses(
        (status = 200, description = "the report: `object`, `valid`, `seal`, `signer`, `time_info`, `property_info`, `data_hash`, `checks`", body = Object),
        (status = 422, description = "`invalid_signature_encoding`, `unreadable_signature`, `invalid_request`", body = ApiError)),
    security(("bearer" = [])))]
pub async fn verify(
    State(state): State<SharedState>,
    auth: Auth,
    ApiJson(body): ApiJson<VerifyBody>,
) -> Result<Json<Value>, ApiError> {
    use base64::Engine;
    let der = base64::engine::general_purpose::STANDARD
        .decode(body.ses_signature.trim())
        .map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_signature_encoding",
                format!("`ses_signature` is not base64: {e}"),
            )
        })?;
    let who = auth.0.name.clone();
    blocking(move || {
        let report = verify_der(
            &der,
            &VerifyOptions {
                document: Document::Digest(&body.digest.0),
                trust: Some(&state.trust),
                at: None,
            },
        )
        .map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unreadable_signature",
                format!("this is not a SES_Signature seald can read: {e}"),
            )
        })?;
        let outcome = if report.valid { "valid" } else { "invalid" };
        state
            .services
            .audit
            .append_operational(NewRecord::verification(&who, &body.digest, outcome))?;
        serde_json::to_value(&report)
            .map(Json)
            .map_err(|e| ApiError::internal(format!("cannot write the report: {e}")))
    })
    .await
}
