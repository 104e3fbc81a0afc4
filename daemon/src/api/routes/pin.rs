//! Custodian PIN endpoints: `POST /v1/devices/{serial}/pin` (change),
//! `POST /v1/devices/{serial}/pin-unblock` (re-set with the SO PIN) and
//! `GET /v1/devices/{serial}/pin-status` (tries left, last change, age against policy).
//! PINs are parsed here, never by serde's quoting error paths, and never logged or stored.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use bytes::BytesMut;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use crate::api::auth::Auth;
use crate::api::error::ApiError;
use crate::api::mapping::blocking;
use crate::api::state::SharedState;
use crate::custody::{PinAge, PinRecord};
use crate::device::{FinalTry, Pin, PinState, TriesLeft};
use crate::identity::Role;
use crate::runtime::Event;

/// Parses a JSON body that holds PINs, then wipes the body's buffer when this request is its
/// only holder (a buffer hyper still shares is not ours to wipe). serde's messages can quote
/// values, and these are PINs, so a refusal uses only our own words: `expected` says what to
/// send.
pub(crate) fn parse_pin_body<T: DeserializeOwned>(
    body: Bytes,
    expected: &'static str,
) -> Result<T, ApiError> {
    let parsed = serde_json::from_slice(&body);
    wipe(body);
    parsed.map_err(|e| {
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

/// Zeroes `body` if no one else holds it; returns the wiped buffer (dropped by callers).
fn wipe(body: Bytes) -> Option<BytesMut> {
    let mut buffer = body.try_into_mut().ok()?;
    buffer.as_mut().zeroize();
    Some(buffer)
}

/// Body of a PIN change: the current and the new user PIN.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PinChangeBody {
    /// The current user PIN.
    #[schema(value_type = String, format = Password)]
    pub old_pin: Pin,
    /// The new user PIN (checked against `[pin_policy]` before the device sees it).
    #[schema(value_type = String, format = Password)]
    pub new_pin: Pin,
    /// Set when the custodian saw the final-try warning and wants to go on.
    #[serde(default)]
    pub confirm_final_try: bool,
}

/// The answer of a PIN change.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PinChanged {
    /// The token.
    pub serial: String,
    /// Always true.
    pub changed: bool,
    /// Whether the usage-log record of the change was written (the device changed the PIN
    /// either way).
    pub recorded: bool,
    /// Set when the record could not be written: what happened and what to do.
    pub warning: Option<String>,
    /// The PIN's age against policy now.
    pub age: PinAge,
}

/// `POST /v1/devices/{serial}/pin` (custodian holding the token): changes the token's user
/// PIN. It lifts the PIN-change flag only of the seals on the token whose custodian is the
/// caller, and the unblock marker of the token.
#[utoipa::path(post, path = "/v1/devices/{serial}/pin", operation_id = "change_pin", tag = "devices",
    summary = "Custodian: change the user PIN (policy from `[pin_policy]`; PINs never logged or echoed)",
    params(("serial" = String, Path, description = "the token's serial")),
    request_body = PinChangeBody,
    responses(
        (status = 200, description = "changed", body = PinChanged),
        (status = 403, description = "`pin_incorrect` (tries as the device reports); `not_your_token` (the caller holds no seal on the token)", body = ApiError),
        (status = 404, description = "`device_not_present`", body = ApiError),
        (status = 409, description = "`pin_final_try` (send `confirm_final_try`)", body = ApiError),
        (status = 422, description = "`pin_policy` (every shortfall, no PIN), `pin_invalid`, `invalid_request`", body = ApiError),
        (status = 423, description = "`pin_locked`", body = ApiError),
        (status = 502, description = "`device_error`", body = ApiError)),
    security(("bearer" = [])))]
pub async fn change(
    State(state): State<SharedState>,
    auth: Auth,
    Path(serial): Path<String>,
    body: Bytes,
) -> Result<Json<PinChanged>, ApiError> {
    auth.require(Role::Custodian)?;
    let body: PinChangeBody = parse_pin_body(
        body,
        "send {\"old_pin\": \"...\", \"new_pin\": \"...\"} (strings), optionally with \"confirm_final_try\": true",
    )?;
    let who = auth.0.name.clone();
    blocking(move || {
        super::devices::require_token(&state, &auth, &serial)?;
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
        Ok::<_, ApiError>(Json(PinChanged {
            serial,
            changed: true,
            recorded: record == PinRecord::Written,
            warning: record.warning(),
            age: status.age,
        }))
    })
    .await
}

/// The answer of `GET /v1/devices/{serial}/pin-status`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PinStatusView {
    /// The token.
    pub serial: String,
    /// The PIN flags the device reports.
    pub flags: PinState,
    /// What the device says about tries left.
    pub tries_left: TriesLeft,
    /// Age against policy.
    pub age: PinAge,
    /// A PIN-age warning, if one applies.
    pub warning: Option<String>,
    /// What a new PIN must look like, and how old one may grow (`[pin_policy]`): shown to a
    /// custodian before a change.
    pub policy: PinPolicyView,
}

/// The `[pin_policy]` in force.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PinPolicyView {
    /// Shortest new PIN, in characters.
    pub min_length: usize,
    /// Character classes a new PIN must contain (`digit`, `letter`, `lower`, `upper`, `symbol`).
    #[schema(value_type = Vec<String>)]
    pub require: Vec<crate::custody::CharClass>,
    /// Days a PIN may be used (0: no limit).
    pub max_age_days: u32,
    /// Days before that from which warnings are shown.
    pub warn_days: u32,
}

/// `GET /v1/devices/{serial}/pin-status` (custodian, admin or auditor): the device's PIN
/// flags and tries left, the last change seald recorded, the age against policy and a warning.
#[utoipa::path(get, path = "/v1/devices/{serial}/pin-status", operation_id = "pin_status", tag = "devices",
    summary = "Custodian, admin or auditor: tries left, last change, PIN age against policy, warning",
    params(("serial" = String, Path, description = "the token's serial")),
    responses(
        (status = 200, description = "the PIN's state", body = PinStatusView),
        (status = 404, description = "`device_not_present`", body = ApiError),
        (status = 502, description = "`device_error`", body = ApiError)),
    security(("bearer" = [])))]
pub async fn status(
    State(state): State<SharedState>,
    auth: Auth,
    Path(serial): Path<String>,
) -> Result<Json<PinStatusView>, ApiError> {
    auth.require_any(&[Role::Custodian, Role::Admin, Role::Auditor])?;
    blocking(move || {
        let owner = state.devices.token(&serial)?;
        let status = state.custodians.pin_status(&owner, &state.pin_policy)?;
        let warning = status.age.warning();
        Ok::<_, ApiError>(Json(PinStatusView {
            serial: status.serial,
            flags: status.flags,
            tries_left: status.tries_left,
            age: status.age,
            warning,
            policy: PinPolicyView {
                min_length: state.pin_policy.min_length,
                require: state.pin_policy.require.clone(),
                max_age_days: state.pin_policy.max_age_days,
                warn_days: state.pin_policy.warn_days,
            },
        }))
    })
    .await
}

/// Body of an unblock: the security officer's PIN and the new user PIN.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PinUnblockBody {
    /// The security officer (SO) PIN.
    #[schema(value_type = String, format = Password)]
    pub so_pin: Pin,
    /// The new user PIN (checked against `[pin_policy]` before the device sees it).
    #[schema(value_type = String, format = Password)]
    pub new_pin: Pin,
    /// Set when the caller saw that one SO PIN try is left and wants to go on.
    #[serde(default)]
    pub confirm_final_try: bool,
}

/// The answer of an unblock.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Unblocked {
    /// The token.
    pub serial: String,
    /// Always true.
    pub unblocked: bool,
    /// Whether the usage-log record of the unblock was written (the device re-set the PIN
    /// either way).
    pub recorded: bool,
    /// Set when the record could not be written: what happened and what to do.
    pub warning: Option<String>,
    /// Always true: the custodian must change the PIN before any seal on the token stamps.
    pub pin_change_required: bool,
    /// Always false: the token was logged out.
    pub logged_in: bool,
    /// The PIN flags the device reports now.
    pub flags: PinState,
    /// Age against policy.
    pub age: PinAge,
    /// What to do next, for people.
    pub next: String,
}

/// `POST /v1/devices/{serial}/pin-unblock` (custodian or admin): re-sets the user PIN with the
/// SO PIN. The token is logged out afterwards (whatever the outcome, once the device was asked:
/// the SO cannot log in while the user is); a custodian logs in with the new PIN and must
/// change it before any seal on the token stamps again.
#[utoipa::path(post, path = "/v1/devices/{serial}/pin-unblock", operation_id = "unblock_pin", tag = "devices",
    summary = "Custodian or admin: re-set the user PIN with the SO PIN; the token is logged out afterwards and no seal on it stamps until the custodian changes the PIN; `pin-unblocked` event",
    params(("serial" = String, Path, description = "the token's serial")),
    request_body = PinUnblockBody,
    responses(
        (status = 200, description = "unblocked", body = Unblocked),
        (status = 403, description = "`so_pin_incorrect` (tries as the device reports); `not_your_token` (a custodian holding no seal on the token)", body = ApiError),
        (status = 404, description = "`device_not_present`", body = ApiError),
        (status = 409, description = "`so_pin_final_try` (send `confirm_final_try`)", body = ApiError),
        (status = 422, description = "`pin_policy`, `pin_invalid`, `invalid_request`", body = ApiError),
        (status = 423, description = "`so_pin_locked`", body = ApiError),
        (status = 502, description = "`device_error`", body = ApiError)),
    security(("bearer" = [])))]
pub async fn unblock(
    State(state): State<SharedState>,
    auth: Auth,
    Path(serial): Path<String>,
    body: Bytes,
) -> Result<Json<Unblocked>, ApiError> {
    auth.require_any(&[Role::Custodian, Role::Admin])?;
    let body: PinUnblockBody = parse_pin_body(
        body,
        "send {\"so_pin\": \"...\", \"new_pin\": \"...\"} (strings), optionally with \"confirm_final_try\": true",
    )?;
    let who = auth.0.name.clone();
    let st = state.clone();
    let answer = blocking(move || {
        super::devices::require_token(&st, &auth, &serial)?;
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
            Unblocked {
                next: format!("log the token in with the new PIN (POST /v1/devices/{serial}/login); the custodian must then change it (POST /v1/devices/{serial}/pin): until then no seal on the token stamps"),
                serial,
                unblocked: true,
                recorded: record == PinRecord::Written,
                warning: record.warning(),
                pin_change_required: true,
                logged_in: false,
                flags: status.flags,
                age: status.age,
            },
        ))
    })
    .await;
    let (serial, answer) = answer?;
    state.events.publish(Event::PinUnblocked { serial });
    Ok(Json(answer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pin_body_held_only_by_the_request_is_wiped_after_parsing() {
        let body = Bytes::from(br#"{"pin": "271828", "confirm_final_try": false}"#.to_vec());
        let wiped = wipe(body).expect("a buffer no one else holds is wiped");
        assert!(!wiped.is_empty() && wiped.iter().all(|b| *b == 0));

        // A buffer someone else still holds is left alone (it is not ours).
        let shared = Bytes::from(b"{\"pin\": \"1\"}".to_vec());
        let other = shared.clone();
        assert!(wipe(shared).is_none());
        assert_eq!(&other[..], b"{\"pin\": \"1\"}");
    }

    #[test]
    fn a_refused_pin_body_does_not_echo_the_pin() {
        for body in [
            r#"{"pin": 271828}"#,
            r#"{"pin": "271828", "x": 1}"#,
            r#"{"pin": "271828"#,
        ] {
            let err = parse_pin_body::<super::super::devices::LoginBody>(
                Bytes::from(body.as_bytes().to_vec()),
                "send a pin",
            )
            .unwrap_err();
            let text = format!("{err:?}");
            assert!(!text.contains("271828"), "{text}");
        }
    }
}
