//! `POST /v1/seals` (admin): enrols a seal whose key is on a token, with its approval policy.
//!
//! The policy is resolved (names exist with their roles, shape valid) first; then the seal
//! key's public half is read from its token (the private key never leaves), the `[maker]` key
//! signs the SES_Seal, the registry checks every rule, and the seal and its policy are written
//! in one transaction: a refusal at any step, the policy's included, leaves no seal.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::api::auth::Auth;
use crate::api::error::ApiError;
use crate::api::mapping::blocking;
use crate::api::routes::seals::SealView;
use crate::api::state::{AppState, SharedState};
use crate::api::ApiJson;
use crate::approval::NamedPolicy;
use crate::clock::Timestamp;
use crate::config::MakerConfig;
use crate::crypto::PrehashSigner;
use crate::device::{certificate_der, DeviceError, KeySelector, TokenKey};
use crate::identity::{Caller, Role};
use crate::runtime::Event;
use crate::seal::{NewSeal, Seal, SealKind, SealMaker};

/// Printed size (mm) when none is given: a common round seal.
pub const DEFAULT_SIZE_MM: f64 = 40.0;

fn default_size() -> f64 {
    DEFAULT_SIZE_MM
}

/// The body of `POST /v1/seals`. Binary fields are standard base64; the certificate is base64 of
/// its DER (a PEM file's body is exactly that, without the BEGIN/END lines).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrolBody {
    /// Seal type (`legal-name`, `contract`, `finance`, `invoice`, `business`, `personal-name`,
    /// `other`).
    pub kind: SealKind,
    /// Owner organisation: the certificate's O.
    pub organisation: String,
    /// Name on the seal.
    pub name: String,
    /// The seal image (PNG, GIF or JPEG), base64.
    #[schema(format = Byte)]
    pub image: String,
    /// Printed width, mm (default 40).
    #[serde(default = "default_size")]
    pub width_mm: f64,
    /// Printed height, mm (default 40).
    #[serde(default = "default_size")]
    pub height_mm: f64,
    /// esID (GB/T 38540), unique.
    pub es_id: String,
    /// Serial of the token holding the seal key.
    pub device_serial: String,
    /// CKA_ID of the seal key on that token, hex.
    #[schema(pattern = "^[0-9a-fA-F]+$")]
    pub key_id: String,
    /// The seal key's certificate: base64 of its DER.
    #[schema(format = Byte)]
    pub certificate: String,
    /// Intermediate CA certificates between it and a trust root, each base64 DER.
    #[serde(default)]
    pub intermediates: Vec<String>,
    /// Start of validity, Unix seconds (default: now, or the certificate's start if later).
    #[serde(default)]
    pub valid_from: Option<Timestamp>,
    /// End of validity, Unix seconds (default: the certificate's end; later is refused).
    #[serde(default)]
    pub valid_to: Option<Timestamp>,
    /// The approval policy, identities by name.
    pub policy: NamedPolicy,
}

fn invalid(message: String) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", message)
}

fn base64_field(field: &str, text: &str) -> Result<Vec<u8>, ApiError> {
    let compact: String = text.split_whitespace().collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|e| invalid(format!("`{field}` is not base64: {e}")))
}

fn hex_id(field: &str, text: &str) -> Result<Vec<u8>, ApiError> {
    hex::decode(text.trim())
        .ok()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
            invalid(format!(
                "`{field}` {text:?} is not a hex CKA_ID (e.g. \"02\")"
            ))
        })
}

/// The seal-maker key and its certificate, from the `[maker]` token, which must be present
/// and logged in.
fn open_maker(state: &AppState, config: &MakerConfig) -> Result<(TokenKey, Vec<u8>), ApiError> {
    let serial = config.device_serial.as_str();
    let login_hint = format!(
        "a custodian must log it in first: POST /v1/devices/{serial}/login (or `sealctl login --daemon URL --token {serial}`)"
    );
    let device = |e: DeviceError| {
        match e {
        DeviceError::TokenNotPresent { .. } | DeviceError::DeviceRemoved => ApiError::conflict(
            "maker_not_present",
            format!("the seal-maker token {serial} (`[maker] device_serial`) is not present; insert it, then {login_hint}"),
        ),
        other => ApiError::from(other),
    }
    };
    let owner = state.devices.token(serial).map_err(device)?;
    if !owner.logged_in().map_err(device)? {
        return Err(ApiError::conflict(
            "maker_not_logged_in",
            format!("the seal-maker token {serial} is not logged in, so it cannot sign the seal; {login_hint}"),
        ));
    }
    let selector = KeySelector::Id(hex_id("[maker] key_id", &config.key_id)?);
    let key = TokenKey::open(owner.clone(), selector.clone()).map_err(|e| match e {
        DeviceError::ObjectNotFound { .. } => ApiError::conflict(
            "maker_key_not_found",
            format!(
                "no seal-maker key with id {} on token {serial}; check `[maker] key_id` in the config",
                config.key_id
            ),
        ),
        other => device(other),
    })?;
    let certificate = certificate_der(&owner, &selector).map_err(|e| match e {
        DeviceError::ObjectNotFound { .. } => ApiError::conflict(
            "maker_certificate_not_found",
            format!(
                "the seal-maker key {} on token {serial} has no certificate beside it; import it (`sealctl key --token {serial} --id {} import-cert --cert FILE`)",
                config.key_id, config.key_id
            ),
        ),
        other => device(other),
    })?;
    Ok((key, certificate))
}

/// The seal key on its token: its public half is read; the private half must be there too
/// (checked when the token is logged in; it never leaves the token).
fn open_seal_key(state: &AppState, serial: &str, id: &[u8]) -> Result<TokenKey, ApiError> {
    let owner = state.devices.token(serial).map_err(|e| match e {
        DeviceError::TokenNotPresent { .. } | DeviceError::DeviceRemoved => ApiError::new(
            StatusCode::NOT_FOUND,
            "device_not_present",
            format!("the seal's token {serial} is not present; insert it and try again"),
        ),
        other => other.into(),
    })?;
    let key = TokenKey::open(owner, KeySelector::Id(id.to_vec())).map_err(|e| match e {
        DeviceError::ObjectNotFound { .. } => ApiError::new(
            StatusCode::NOT_FOUND,
            "key_not_found",
            format!(
                "no key with id {} on token {serial}; generate it there first (`sealctl key --token {serial} --id {} generate`)",
                hex::encode(id),
                hex::encode(id)
            ),
        ),
        other => other.into(),
    })?;
    if key.private_key_present()? == Some(false) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "key_not_found",
            format!(
                "token {serial} holds only the public half of key {}; a seal key's private key must be on the token (generate the pair there)",
                hex::encode(id)
            ),
        ));
    }
    Ok(key)
}

/// Everything after the role check, off the async threads.
fn enrol_blocking(
    state: &AppState,
    caller: &Caller,
    body: EnrolBody,
) -> Result<(Seal, NamedPolicy), ApiError> {
    let image = base64_field("image", &body.image)?;
    let certificate = base64_field("certificate", &body.certificate)?;
    let intermediates = body
        .intermediates
        .iter()
        .enumerate()
        .map(|(i, c)| base64_field(&format!("intermediates[{i}]"), c))
        .collect::<Result<Vec<_>, _>>()?;
    let key_id = hex_id("key_id", &body.key_id)?;
    // The policy first: a bad one changes nothing and touches no device.
    let policy = state.services.approvals.resolve_named(&body.policy, 0)?;
    let maker_config = state.maker.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "maker_not_configured",
            "no seal-maker key is configured, so seald cannot make seals; add to seald.toml:\n[maker]\ndevice_serial = \"SERIAL\"  # the token holding the maker key\nkey_id = \"01\"            # its CKA_ID, hex\nthen restart seald",
        )
    })?;
    let (maker_key, maker_certificate) = open_maker(state, maker_config)?;
    let seal_key = open_seal_key(state, &body.device_serial, &key_id)?;
    let maker = SealMaker {
        signer: &maker_key,
        certificate: &maker_certificate,
    };
    // The seal and its policy are written in one transaction: both or neither.
    let (seal, _) = state.services.approvals.enrol(
        &state.services.registry,
        caller,
        NewSeal {
            kind: body.kind,
            organisation: body.organisation,
            name: body.name,
            image,
            width_mm: body.width_mm,
            height_mm: body.height_mm,
            es_id: body.es_id,
            device_serial: body.device_serial,
            key_id: hex::encode(&key_id),
            device_key: seal_key.public_key().clone(),
            certificate,
            intermediates,
            valid_from: body.valid_from,
            valid_to: body.valid_to,
        },
        &maker,
        policy,
    )?;
    Ok((seal, body.policy))
}

/// The answer of an enrolment.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Enrolled {
    /// The new seal.
    pub seal: SealView,
    /// Its approval policy, identities by name.
    pub policy: NamedPolicy,
}

/// `POST /v1/seals` (admin): 201 with the seal and its policy; a `seal-enrolled` event.
#[utoipa::path(post, path = "/v1/seals", operation_id = "enrol_seal", tag = "seals",
    summary = "Admin: enrol a seal whose key is on a token, signed by the `[maker]` key, with its policy (identities by name); `seal-enrolled` event; a refusal changes nothing",
    request_body = EnrolBody,
    responses(
        (status = 201, description = "enrolled", body = Enrolled),
        (status = 404, description = "`device_not_present`, `key_not_found`", body = ApiError),
        (status = 409, description = "`bad_policy` (unknown identity, missing role, shape), `maker_not_present`, `maker_not_logged_in`, `maker_key_not_found`, `maker_certificate_not_found`, `es_id_taken`, `second_legal_name_seal`, `seal_refused`", body = ApiError),
        (status = 422, description = "`invalid_request`, `key_mismatch`, `certificate_refused`, `certificate_expired`, `bad_image`, `bad_es_id`, `name_mismatch`, `bad_validity`", body = ApiError),
        (status = 502, description = "`seal_maker_failed`, `device_error`", body = ApiError),
        (status = 503, description = "`maker_not_configured` (add `[maker]`)", body = ApiError)),
    security(("bearer" = [])))]
pub async fn enrol(
    State(state): State<SharedState>,
    auth: Auth,
    body: Result<ApiJson<EnrolBody>, ApiError>,
) -> Result<(StatusCode, Json<Enrolled>), ApiError> {
    auth.require(Role::Admin)?;
    let ApiJson(body) = body?;
    let caller = auth.caller();
    let st = state.clone();
    let (seal, policy) = blocking(move || enrol_blocking(&st, &caller, body)).await?;
    tracing::info!(seal_id = seal.id, es_id = %seal.es_id, by = %auth.0.name, "seal enrolled");
    state.events.publish(Event::SealEnrolled {
        seal_id: seal.id,
        es_id: seal.es_id.clone(),
        name: seal.name.clone(),
    });
    let now = state.clock.timestamp();
    Ok((
        StatusCode::CREATED,
        Json(Enrolled {
            seal: SealView::new(seal, now),
            policy,
        }),
    ))
}
