//! `GET /v1/devices`; custodian `POST /v1/devices/{serial}/login` and `/logout`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::api::auth::Auth;
use crate::api::error::ApiError;
use crate::api::mapping::blocking;
use crate::api::state::SharedState;
use crate::audit::NewRecord;
use crate::custody::PinAge;
use crate::device::{DeviceError, FinalTry, ModuleReport, Pin, TokenInfo, TriesLeft};
use crate::identity::Role;

/// A token as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenView {
    /// What the token says about itself (serial, label, PIN flags).
    #[serde(flatten)]
    pub info: TokenInfo,
    /// Whether seald holds a login on it.
    pub logged_in: bool,
    /// The PIN flags in a word or two.
    pub pin_summary: String,
    /// A PIN-age warning (due within the policy's window, overdue, or never changed through
    /// seald), if one applies.
    pub pin_warning: Option<String>,
}

/// The PIN-age warning for token `serial`, from seald's own change records.
pub fn pin_warning(state: &crate::api::AppState, serial: &str) -> Result<Option<String>, ApiError> {
    let last = state.custodians.last_pin_change(serial)?;
    Ok(PinAge::judge(last, &state.pin_policy, state.clock.now()).warning())
}

/// Refuses (403 `not_your_token`, naming what the caller may act on) a custodian who holds no
/// seal on token `serial`, when the token has custody records; administrators act on every
/// token. Asked before the device is touched, so a refusal spends no PIN try.
pub fn require_token(
    state: &crate::api::AppState,
    auth: &Auth,
    serial: &str,
) -> Result<(), ApiError> {
    if auth.0.has_role(Role::Admin) {
        return Ok(());
    }
    Ok(state.custodians.may_act_on_token(&auth.0.name, serial)?)
}

/// A module and its tokens.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ModuleView {
    /// Configured name.
    pub name: String,
    /// Device model.
    pub model: crate::device::DeviceModel,
    /// The library's interface: `pkcs11` or `skf`.
    pub api: crate::device::DeviceApi,
    /// SM2 profile in use, if known.
    pub profile: Option<String>,
    /// Tokens present now.
    pub tokens: Vec<TokenView>,
    /// Why tokens could not be listed.
    pub error: Option<String>,
}

/// The answer of `GET /v1/devices`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ModuleList {
    /// Every configured module.
    pub modules: Vec<ModuleView>,
}

/// `GET /v1/devices`: modules, tokens present, PIN state and login (any role).
#[utoipa::path(get, path = "/v1/devices", operation_id = "list_devices", tag = "devices",
    summary = "PKCS#11 modules, tokens present, PIN state, login (any role)",
    responses((status = 200, description = "the modules and their tokens", body = ModuleList)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<SharedState>,
    _auth: Auth,
) -> Result<Json<ModuleList>, ApiError> {
    let modules = blocking(move || {
        let reports: Vec<ModuleReport> = state.devices.scan();
        let mut views = Vec::with_capacity(reports.len());
        for m in reports {
            let mut tokens = Vec::with_capacity(m.tokens.len());
            for info in m.tokens {
                tokens.push(TokenView {
                    logged_in: state.devices.is_logged_in(&info.serial),
                    pin_summary: info.pin.summary(),
                    pin_warning: pin_warning(&state, &info.serial)?,
                    info,
                });
            }
            views.push(ModuleView {
                tokens,
                name: m.name,
                model: m.model,
                api: m.api,
                profile: m.profile,
                error: m.error,
            });
        }
        Ok::<_, ApiError>(views)
    })
    .await?;
    Ok(Json(ModuleList { modules }))
}

/// Body of a login: the PIN, and the confirmation to spend a final try.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    /// The token's user PIN (never logged).
    #[schema(value_type = String, format = Password)]
    pub pin: Pin,
    /// Set when the custodian saw the final-try warning and wants to go on.
    #[serde(default)]
    pub confirm_final_try: bool,
    /// The stamp request (pending or approved, of a seal on this token) this PIN entry is
    /// for. Seals with `pin_mode = each-stamp` sign only the request their login names, and
    /// the token is logged out after that request (signed or failed).
    #[serde(default)]
    pub for_request: Option<crate::store::model::RequestId>,
}

/// The answer of a login.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LoginAnswer {
    /// The token.
    pub serial: String,
    /// Always true.
    pub logged_in: bool,
    /// A PIN-age warning, if one applies (also sent as a `pin-age` event).
    pub pin_warning: Option<String>,
}

/// `POST /v1/devices/{serial}/login` (custodian of a seal on the token, or any custodian when
/// no seal on it has a custody record): logs the token in with the PIN.
#[utoipa::path(post, path = "/v1/devices/{serial}/login", operation_id = "login", tag = "devices",
    summary = "Custodian: log the token in with its PIN (never logged)",
    params(("serial" = String, Path, description = "the token's serial")),
    request_body = LoginBody,
    responses(
        (status = 200, description = "logged in", body = LoginAnswer),
        (status = 403, description = "`pin_incorrect`; `not_your_token` (the caller holds no seal on the token)", body = ApiError),
        (status = 404, description = "`device_not_present`", body = ApiError),
        (status = 409, description = "`pin_final_try` (send `confirm_final_try`), `already_logged_in`, `request_not_for_token` (`for_request` names no open request of a seal on the token)", body = ApiError),
        (status = 422, description = "`pin_invalid`, `invalid_request`", body = ApiError),
        (status = 423, description = "`pin_locked`", body = ApiError),
        (status = 502, description = "`device_error`", body = ApiError)),
    security(("bearer" = [])))]
pub async fn login(
    State(state): State<SharedState>,
    auth: Auth,
    Path(serial): Path<String>,
    body: Bytes,
) -> Result<Json<LoginAnswer>, ApiError> {
    auth.require(Role::Custodian)?;
    // Parsed by parse_pin_body, not ApiJson: serde's messages can quote values.
    let body: LoginBody = super::pin::parse_pin_body(
        body,
        "send {\"pin\": \"...\"} (a string), optionally with \"confirm_final_try\": true",
    )?;
    let who = auth.0.name.clone();
    blocking(move || {
        require_token(&state, &auth, &serial)?;
        let for_request = body.for_request;
        if let Some(id) = for_request {
            let request = state
                .services
                .approvals
                .get(&crate::identity::Caller::Daemon, id)?;
            let seal = state.services.registry.get(request.seal_id)?;
            let open = matches!(
                request.state,
                crate::store::model::RequestState::Pending
                    | crate::store::model::RequestState::Approved
            );
            if seal.device_serial != serial || !open {
                return Err(ApiError::conflict(
                    "request_not_for_token",
                    format!("request {id} is not an open request of a seal on token {serial}: name a pending or approved request whose seal's key is on this token"),
                ));
            }
        }
        let owner = state.devices.token(&serial)?;
        let result = owner.login(&body.pin, FinalTry::confirmed_if(body.confirm_final_try));
        drop(body);
        let record = match &result {
            Ok(()) => Some(NewRecord::pin_login(&who, &serial, true, None)),
            Err(DeviceError::PinIncorrect { tries }) => Some(NewRecord::pin_login(
                &who,
                &serial,
                false,
                match tries {
                    TriesLeft::One => Some(1),
                    _ => None,
                },
            )),
            Err(DeviceError::PinLocked) => {
                Some(NewRecord::pin_login(&who, &serial, false, Some(0)))
            }
            Err(_) => None,
        };
        if let Some(record) = record {
            state.services.audit.append(record)?;
        }
        result?;
        state.set_login(&serial, Some(state.clock.timestamp()));
        if let Some(id) = for_request {
            state.bind_login(&serial, id);
        }
        tracing::info!(%serial, custodian = %who, "token logged in");
        let warning = pin_warning(&state, &serial)?;
        if let Some(warning) = &warning {
            state.events.publish(crate::runtime::Event::PinAge {
                serial: serial.clone(),
                warning: warning.clone(),
            });
        }
        Ok::<_, ApiError>(Json(LoginAnswer {
            serial,
            logged_in: true,
            pin_warning: warning,
        }))
    })
    .await
}

/// The answer of a logout.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LogoutAnswer {
    /// The token.
    pub serial: String,
    /// Always false.
    pub logged_in: bool,
}

/// `POST /v1/devices/{serial}/logout` (custodian holding the token, as for login).
#[utoipa::path(post, path = "/v1/devices/{serial}/logout", operation_id = "logout", tag = "devices",
    summary = "Custodian: log the token out",
    params(("serial" = String, Path, description = "the token's serial")),
    responses(
        (status = 200, description = "logged out", body = LogoutAnswer),
        (status = 403, description = "`forbidden`; `not_your_token` (the caller holds no seal on the token)", body = ApiError),
        (status = 404, description = "`device_not_present`", body = ApiError),
        (status = 502, description = "`device_error`", body = ApiError)),
    security(("bearer" = [])))]
pub async fn logout(
    State(state): State<SharedState>,
    auth: Auth,
    Path(serial): Path<String>,
) -> Result<Json<LogoutAnswer>, ApiError> {
    auth.require(Role::Custodian)?;
    let who = auth.0.name.clone();
    blocking(move || {
        require_token(&state, &auth, &serial)?;
        let owner = state.devices.token(&serial)?;
        owner.logout()?;
        state.set_login(&serial, None);
        state.services.audit.append(NewRecord::new(
            crate::store::model::AuditKind::PinLogin,
            &who,
            None,
            json!({ "device_serial": serial, "logout": true }),
        ))?;
        Ok::<_, ApiError>(Json(LogoutAnswer {
            serial,
            logged_in: false,
        }))
    })
    .await
}
