//! `POST /v1/seals/{id}/custody` `{"to"}` (admin): hands a seal to another custodian, who must
//! change the token PIN before the seal's next stamp. The custody record and the usage-log
//! entry are written by [`crate::custody::Custodians::hand_over`]; a `custody-transferred`
//! event goes out. `GET /v1/seals/{id}/custody` (admin, auditor, custodian) shows who holds
//! the seal and whether a PIN change is owed.

use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::auth::Auth;
use crate::api::error::ApiError;
use crate::api::events::Event;
use crate::api::mapping::blocking;
use crate::api::state::SharedState;
use crate::api::ApiJson;
use crate::identity::Role;
use crate::store::model::SealId;

/// The body: the identity name of the new custodian.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferBody {
    /// The new custodian (an enabled identity with the custodian role).
    pub to: String,
}

/// `POST /v1/seals/{id}/custody` (admin): names the seal's new custodian.
pub async fn transfer(
    State(state): State<SharedState>,
    auth: Auth,
    Path(id): Path<SealId>,
    ApiJson(body): ApiJson<TransferBody>,
) -> Result<Json<Value>, ApiError> {
    auth.require(Role::Admin)?;
    let who = auth.0.name.clone();
    let st = state.clone();
    let (custody, previous) =
        blocking(move || st.custodians.hand_over(&who, id, body.to.trim())).await?;
    tracing::info!(seal = id, from = ?previous, to = %custody.custodian, by = %custody.assigned_by, "custody transferred");
    state.events.publish(Event::CustodyTransferred {
        seal_id: id,
        from: previous.clone(),
        to: custody.custodian.clone(),
        pin_change_required: custody.pin_change_required,
    });
    Ok(Json(json!({
        "custody": custody,
        "previous_custodian": previous,
    })))
}

/// `GET /v1/seals/{id}/custody` (admin, auditor or custodian): the seal's custodian (or
/// null), its token, and whether a PIN change is owed before its next stamp.
pub async fn show(
    State(state): State<SharedState>,
    auth: Auth,
    Path(id): Path<SealId>,
) -> Result<Json<Value>, ApiError> {
    auth.require_any(&[Role::Admin, Role::Auditor, Role::Custodian])?;
    let st = state.clone();
    let status = blocking(move || st.custodians.status(id)).await?;
    Ok(Json(json!(status)))
}
