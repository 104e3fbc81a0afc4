//! `GET /v1/seals`, `GET /v1/seals/{id}`: state, validity and expiry warning;
//! `GET /v1/seals/{id}/status`: the public status for verifiers (no token).

use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;

use crate::api::auth::{Anonymous, Auth};
use crate::api::error::ApiError;
use crate::api::mapping::blocking;
use crate::api::state::SharedState;
use crate::clock::Timestamp;
use crate::seal::rules::expiry;
use crate::seal::{Expiry, SealEvent};
use crate::store::model::{CertFacts, ImageFormat, Seal, SealId, SealKind, SealState};

/// A seal as the API shows it (no image bytes, no key material).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SealView {
    /// Id.
    pub id: SealId,
    /// Type.
    pub kind: SealKind,
    /// Owner organisation.
    pub organisation: String,
    /// Name on the seal.
    pub name: String,
    /// esID.
    pub es_id: String,
    /// Token serial holding the key.
    pub device_serial: String,
    /// Key id on the token.
    pub key_id: String,
    /// The certificate's facts.
    pub certificate: CertFacts,
    /// Start of validity (Unix seconds).
    pub valid_from: Timestamp,
    /// End of validity (Unix seconds).
    pub valid_to: Timestamp,
    /// Lifecycle state.
    pub state: SealState,
    /// Whether it can stamp now (active and inside its validity).
    pub usable: bool,
    /// Expiry status: `valid`, `expires-soon` (renew within 30 days), `expired`, `not-yet-valid`.
    pub expiry: Expiry,
}

impl SealView {
    /// The view of `seal` at `now`.
    pub fn new(seal: Seal, now: Timestamp) -> Self {
        Self {
            usable: crate::seal::check_usable(&seal, now).is_ok(),
            expiry: expiry(seal.valid_from, seal.valid_to, now),
            id: seal.id,
            kind: seal.kind,
            organisation: seal.organisation,
            name: seal.name,
            es_id: seal.es_id,
            device_serial: seal.device_serial,
            key_id: seal.key_id,
            certificate: seal.cert,
            valid_from: seal.valid_from,
            valid_to: seal.valid_to,
            state: seal.state,
        }
    }
}

/// The answer of `GET /v1/seals`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SealList {
    /// Every seal.
    pub seals: Vec<SealView>,
}

/// `GET /v1/seals`: every seal (any role).
#[utoipa::path(get, path = "/v1/seals", operation_id = "list_seals", tag = "seals",
    summary = "Seals with state, validity and expiry warning (any role)",
    responses((status = 200, description = "every seal", body = SealList)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<SharedState>,
    _auth: Auth,
) -> Result<Json<SealList>, ApiError> {
    let seals = blocking(move || {
        let now = state.clock.timestamp();
        let seals = state.services.registry.list()?;
        Ok::<_, ApiError>(
            seals
                .into_iter()
                .map(|s| SealView::new(s, now))
                .collect::<Vec<_>>(),
        )
    })
    .await?;
    Ok(Json(SealList { seals }))
}

/// The answer of `GET /v1/seals/{id}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SealDetail {
    /// The seal.
    pub seal: SealView,
    /// Its state changes, oldest first.
    pub history: Vec<SealEvent>,
    /// The impression image, for people to compare with the physical seal.
    pub image: SealImageView,
}

/// A seal's impression image.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SealImageView {
    /// `image/png`, `image/gif` or `image/jpeg`.
    pub media_type: &'static str,
    /// The image bytes, base64.
    pub base64: String,
    /// Printed width in mm.
    pub width_mm: f64,
    /// Printed height in mm.
    pub height_mm: f64,
}

impl SealImageView {
    fn of(seal: &Seal) -> Self {
        use base64::Engine;
        let media_type = match seal.image.format {
            ImageFormat::Png => "image/png",
            ImageFormat::Gif => "image/gif",
            ImageFormat::Jpeg => "image/jpeg",
        };
        Self {
            media_type,
            base64: base64::engine::general_purpose::STANDARD.encode(&seal.image.data),
            width_mm: seal.image.width_mm,
            height_mm: seal.image.height_mm,
        }
    }
}

/// `GET /v1/seals/{id}`: one seal with its state history.
#[utoipa::path(get, path = "/v1/seals/{id}", operation_id = "get_seal", tag = "seals",
    summary = "One seal and its state history (any role)",
    params(("id" = i64, Path, description = "the seal's id")),
    responses(
        (status = 200, description = "the seal", body = SealDetail),
        (status = 404, description = "`seal_not_found`", body = ApiError)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<SharedState>,
    _auth: Auth,
    Path(id): Path<SealId>,
) -> Result<Json<SealDetail>, ApiError> {
    blocking(move || {
        let now = state.clock.timestamp();
        let seal = state.services.registry.get(id)?;
        let history: Vec<SealEvent> = state.services.registry.history(id)?;
        Ok::<_, ApiError>(Json(SealDetail {
            image: SealImageView::of(&seal),
            seal: SealView::new(seal, now),
            history,
        }))
    })
    .await
}

/// A seal's public status, for verifiers elsewhere: nothing about its device, key or custodian.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SealStatus {
    /// Id.
    pub id: SealId,
    /// esID.
    pub es_id: String,
    /// Name on the seal.
    pub name: String,
    /// Owner organisation.
    pub organisation: String,
    /// Lifecycle state (`active`, `suspended`, `revoked`, `lost`, `expired`).
    pub state: SealState,
    /// When the state last changed (Unix seconds).
    pub state_changed_at: Timestamp,
    /// Start of validity (Unix seconds).
    pub valid_from: Timestamp,
    /// End of validity (Unix seconds).
    pub valid_to: Timestamp,
    /// Expiry status: `valid`, `expires-soon`, `expired`, `not-yet-valid`.
    pub expiry: Expiry,
    /// Whether it can stamp now (active and inside its validity).
    pub usable: bool,
    /// The certificate's serial (hex).
    pub cert_serial: String,
    /// When this answer was made (Unix seconds).
    pub checked_at: Timestamp,
}

impl SealStatus {
    /// The status of `seal` at `now`.
    pub fn new(seal: Seal, now: Timestamp) -> Self {
        Self {
            usable: crate::seal::check_usable(&seal, now).is_ok(),
            expiry: expiry(seal.valid_from, seal.valid_to, now),
            id: seal.id,
            es_id: seal.es_id,
            name: seal.name,
            organisation: seal.organisation,
            state: seal.state,
            state_changed_at: seal.state_changed_at,
            valid_from: seal.valid_from,
            valid_to: seal.valid_to,
            cert_serial: seal.cert.serial_hex,
            checked_at: now,
        }
    }
}

/// `GET /v1/seals/{id}/status`: the seal's state for verifiers; no token, rate-limited.
#[utoipa::path(get, path = "/v1/seals/{id}/status", operation_id = "seal_status", tag = "seals",
    summary = "Public seal status for verifiers (no token; rate-limited): state, when it changed, validity",
    params(("id" = i64, Path, description = "the seal's id")),
    responses(
        (status = 200, description = "the seal's status", body = SealStatus),
        (status = 404, description = "`seal_not_found`", body = ApiError),
        (status = 429, description = "`rate_limited`", body = ApiError)))]
pub async fn status(
    State(state): State<SharedState>,
    _anonymous: Anonymous,
    Path(id): Path<SealId>,
) -> Result<Json<SealStatus>, ApiError> {
    blocking(move || {
        let now = state.clock.timestamp();
        let seal = state.services.registry.get(id)?;
        Ok::<_, ApiError>(Json(SealStatus::new(seal, now)))
    })
    .await
}
