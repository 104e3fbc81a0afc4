//! Custodian PIN endpoints: `POST /v1/devices/{serial}/pin` (change),
//! `POST /v1/devices/{serial}/pin-unblock` (re-set with the SO PIN) and
//! `GET /v1/devices/{serial}/pin-status` (tries left, last change, age against policy).
//! PINs are parsed here, never by serde's quoting error paths, and never logged or stored.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::auth::Auth;
use crate::api::error::ApiError;
use crate::api::events::Event;
use crate::api::mapping::blocking;
use crate::api::state::SharedState;
use crate::custody::PinRecord;
use crate::device::{FinalTry, Pin};
use crate::identity::Role;

/// Parses a JSON body that holds PINs. serde's messages can quote values, and these are PINs,
/// so a refusal uses only our own words: `expected` says what to send.
pub(crate) fn parse_pin_body<T: DeserializeOwned>(
    body: &[u8],
    expected: &'static str,
) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            ApiError::bad_request("malformed_json", "the body is not valid JSON")
        } else {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                expected,
            )
        }
    })
}

/// Body of a PIN change: the current and the new user PIN.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinChangeBody {
    /// The current user PIN.
    pub old_pin: Pin,
    /// The new user PIN (checked against `[pin_policy]` before the device sees it).
    pub new_pin: Pin,
    /// Set when the custodian saw the final-try warning and wants to go on.
    #[serde(default)]
    pub confirm_final_try: bool,
}

/// `POST /v1/devices/{serial}/pin` (custodian): changes the token's user PIN.
pub async fn change(
    State(state): State<SharedState>,
    auth: Auth,
    Path(serial): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    auth.require(Role::Custodian)?;
    let body: PinChangeBody = parse_pin_body(
        &body,
        "send {\"old_pin\": \"...\", \"new_pin\": \"...\"} (strings), optionally with \"confirm_final_try\": true",
    )?;
    let who = auth.0.name.clone();
    blocking(move || {
        let owner = state.devices.token(&serial)?;
        let final_try = FinalTry::confirmed_if(body.confirm_final_try);
        let result = state.custodians.change_pin(
            &owner,
            &who,
            &body.old_pin,
            &body.new_pin,
            &state.pin_policy,
            final_try,
        );
        drop(body);
        // Once the device changed the PIN this is a success, even if the record failed.
        let record = result?;
        tracing::info!(%serial, custodian = %who, "user PIN changed");
        let status = state.custodians.pin_status(&owner, &state.pin_policy)?;
        Ok::<_, ApiError>(Json(json!({
            "serial": serial,
            "changed": true,
            "recorded": record == PinRecord::Written,
            "warning": record.warning(),
            "age": status.age,
        })))
    })
    .await
}

/// `GET /v1/devices/{serial}/pin-status` (custodian, admin or auditor): the device's PIN
/// flags and tries left, the last change seald recorded, the age against policy and a warning.
pub async fn status(
    State(state): State<SharedState>,
    auth: Auth,
    Path(serial): Path<String>,
) -> Result<Json<Value>, ApiError> {
    auth.require_any(&[Role::Custodian, Role::Admin, Role::Auditor])?;
    blocking(move || {
        let owner = state.devices.token(&serial)?;
        let status = state.custodians.pin_status(&owner, &state.pin_policy)?;
        let warning = status.age.warning();
        Ok::<_, ApiError>(Json(json!({
            "serial": status.serial,
            "flags": status.flags,
            "tries_left": status.tries_left,
            "age": status.age,
            "warning": warning,
        })))
    })
    .await
}

/// Body of an unblock: the security officer's PIN and the new user PIN.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinUnblockBody {
    /// The security officer (SO) PIN.
    pub so_pin: Pin,
    /// The new user PIN (checked against `[pin_policy]` before the device sees it).
    pub new_pin: Pin,
    /// Set when the caller saw that one SO PIN try is left and wants to go on.
    #[serde(default)]
    pub confirm_final_try: bool,
}

/// `POST /v1/devices/{serial}/pin-unblock` (custodian or admin): re-sets the user PIN with the
/// SO PIN. The token is logged out afterwards (whatever the outcome, once the device was asked:
/// the SO cannot log in while the user is); a custodian logs in with the new PIN and must
/// change it before any seal on the token stamps again.
pub async fn unblock(
    State(state): State<SharedState>,
    auth: Auth,
    Path(serial): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    auth.require_any(&[Role::Custodian, Role::Admin])?;
    let body: PinUnblockBody = parse_pin_body(
        &body,
        "send {\"so_pin\": \"...\", \"new_pin\": \"...\"} (strings), optionally with \"confirm_final_try\": true",
    )?;
    let who = auth.0.name.clone();
    let st = state.clone();
    let answer = blocking(move || {
        let owner = st.devices.token(&serial)?;
        let generation = owner.generation();
        let result = st.custodians.unblock(
            &owner,
            &who,
            &body.so_pin,
            &body.new_pin,
            &st.pin_policy,
            FinalTry::confirmed_if(body.confirm_final_try),
        );
        drop(body);
        // The device layer dropped the token's sessions, and with them the user login.
        let logged_out = owner.generation() != generation;
        if logged_out {
            st.set_login(&serial, None);
        }
        // Once the device re-set the PIN this is a success, even if the record failed.
        let record = result?;
        tracing::info!(%serial, by = %who, "user PIN unblocked with the SO PIN");
        let status = st.custodians.pin_status(&owner, &st.pin_policy)?;
        Ok::<_, ApiError>((
            serial.clone(),
            json!({
                "serial": serial,
                "unblocked": true,
                "recorded": record == PinRecord::Written,
                "warning": record.warning(),
                "pin_change_required": true,
                "logged_in": false,
                "flags": status.flags,
                "age": status.age,
                "next": format!("log the token in with the new PIN (POST /v1/devices/{serial}/login); the custodian must then change it (POST /v1/devices/{serial}/pin): until then no seal on the token stamps"),
            }),
        ))
    })
    .await;
    let (serial, answer) = answer?;
    state.events.publish(Event::PinUnblocked { serial });
    Ok(Json(answer))
}
