//! `POST /v1/verify`: any SES_Signature (ours or another vendor's) against a document digest,
//! or a whole sealed OFD (`{"ofd": base64}`) or PDF (`{"pdf": base64}`), within the body size
//! limit, checked as a document.

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

/// The signature to check and the document's digest, or a whole OFD.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyBody {
    /// The SES_Signature, DER, base64 (with `digest`).
    #[serde(default)]
    pub ses_signature: Option<String>,
    /// The digest the signature should carry (hex): SM3 for SM2 seals, SHA-256 for P-256.
    #[serde(default)]
    pub digest: Option<Digest32>,
    /// A sealed OFD document, base64 (instead of `ses_signature` and `digest`).
    #[serde(default)]
    pub ofd: Option<String>,
    /// A sealed PDF document, base64 (instead of the others).
    #[serde(default)]
    pub pdf: Option<String>,
}

fn decode(field: &str, code: &'static str, b64: &str) -> Result<Vec<u8>, ApiError> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                code,
                format!("`{field}` is not base64: {e}"),
            )
        })
}

/// Records the verification (an operational record: who, what digest, the verdict) and
/// answers with the report.
fn recorded(
    state: &SharedState,
    who: &str,
    digest: &Digest32,
    valid: bool,
    report: &impl serde::Serialize,
) -> Result<Json<Value>, ApiError> {
    let outcome = if valid { "valid" } else { "invalid" };
    state
        .services
        .audit
        .append_operational(NewRecord::verification(who, digest, outcome))?;
    serde_json::to_value(report)
        .map(Json)
        .map_err(|e| ApiError::internal(format!("cannot write the report: {e}")))
}

/// A whole OFD: the `ofd` module's document report (same as `sealctl verify --json`).
async fn verify_ofd_body(
    state: SharedState,
    who: String,
    b64: String,
) -> Result<Json<Value>, ApiError> {
    let bytes = decode("ofd", "invalid_ofd_encoding", &b64)?;
    blocking(move || {
        let trust = state.trust.current();
        let report = crate::ofd::verify_ofd_with(
            std::io::Cursor::new(&bytes),
            Some(&trust),
            state.runtime.tsa_trust(),
            state.runtime.revocation.as_deref(),
        )
        .map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unreadable_ofd",
                e.to_string(),
            )
        })?;
        let digest = Digest32(crate::crypto::sm3(&bytes));
        recorded(&state, &who, &digest, report.valid, &report)
    })
    .await
}

/// A whole PDF: the `pdf` module's report (same as `sealctl verify --json`).
async fn verify_pdf_body(
    state: SharedState,
    who: String,
    b64: String,
) -> Result<Json<Value>, ApiError> {
    let bytes = decode("pdf", "invalid_pdf_encoding", &b64)?;
    blocking(move || {
        let trust = state.trust.current();
        let report = crate::pdf::verify_pdf_with(
            &bytes,
            crate::cms::Anchors {
                roots: Some(&trust),
                tsa: state.runtime.tsa_trust(),
                revocation: state.runtime.revocation.as_deref(),
            },
        )
        .map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unreadable_pdf",
                e.to_string(),
            )
        })?;
        let digest = Digest32(crate::crypto::sm3(&bytes));
        recorded(&state, &who, &digest, report.valid, &report)
    })
    .await
}

/// `POST /v1/verify` (any role): the format layer's structured report.
#[utoipa::path(post, path = "/v1/verify", operation_id = "verify", tag = "verify",
    summary = "Verify a SES_Signature against a digest, or a whole sealed OFD (`ofd`, base64) or PDF (`pdf`, base64): the format layer's report (any role)",
    request_body = VerifyBody,
    responses(
        (status = 200, description = "the report: `object`, `valid`, `seal`, `signer`, `time_info`, `timestamp` (a signature's RFC 3161 token: TSA, serial, genTime, hash), `judged_at` and `judged_by` (`timestamp` or `timeInfo`: when validity was judged), `revocation` (the signer's and maker's certificate status under `[revocation]`: good, revoked with date and reason, or unknown), `property_info`, `data_hash`, `checks`", body = Object),
        (status = 422, description = "`invalid_verify_body` (neither or both forms), `invalid_signature_encoding`, `unreadable_signature`, `invalid_ofd_encoding`, `unreadable_ofd`, `invalid_pdf_encoding`, `unreadable_pdf`, `invalid_request`", body = ApiError)),
    security(("bearer" = [])))]
pub async fn verify(
    State(state): State<SharedState>,
    auth: Auth,
    ApiJson(body): ApiJson<VerifyBody>,
) -> Result<Json<Value>, ApiError> {
    let who = auth.0.name.clone();
    let (sig, digest) = match body {
        VerifyBody {
            ofd: Some(ofd),
            pdf: None,
            ses_signature: None,
            digest: None,
        } => return verify_ofd_body(state, who, ofd).await,
        VerifyBody {
            pdf: Some(pdf),
            ofd: None,
            ses_signature: None,
            digest: None,
        } => return verify_pdf_body(state, who, pdf).await,
        VerifyBody {
            ofd: None,
            pdf: None,
            ses_signature: Some(s),
            digest: Some(d),
        } => (s, d),
        _ => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_verify_body",
                "give either `ses_signature` and `digest`, or `ofd`, or `pdf`",
            ))
        }
    };
    let der = decode("ses_signature", "invalid_signature_encoding", &sig)?;
    blocking(move || {
        let trust = state.trust.current();
        let report = verify_der(
            &der,
            &VerifyOptions {
                document: Document::Digest(&digest.0),
                trust: Some(&trust),
                at: None,
                tsa_trust: state.runtime.tsa_trust(),
                revocation: state.runtime.revocation.as_deref(),
            },
        )
        .map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unreadable_signature",
                format!("this is not a SES_Signature seald can read: {e}"),
            )
        })?;
        recorded(&state, &who, &digest, report.valid, &report)
    })
    .await
}
