//! `POST /v1/seals/{id}/custody` `{"to"}` (admin): hands a seal to another custodian, who must
//! change the token PIN before the seal's next stamp. The custody record and the usage-log
//! entry are written by [`crate::custody::Custodians::hand_over`]; a `custody-transferred`
//! event goes out. `GET /v1/seals/{id}/custody` (admin, auditor, custodian) shows who holds
//! the seal and whether a PIN change is owed.

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::api::auth::Auth;
use crate::api::error::ApiError;
use crate::api::mapping::blocking;
use crate::api::state::SharedState;
use crate::api::ApiJson;
use crate::custody::CustodyStatus;
use crate::identity::Role;
use crate::runtime::Event;
use crate::store::model::{Custody, SealId};

/// The body: the identity name of the new custodian.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferBody {
    /// The new custodian (an enabled identity with the custodian role).
    pub to: String,
}

/// The answer of a custody transfer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Transferred {
    /// The new custody.
    pub custody: Custody,
    /// Who held the seal before, if anyone was named.
    pub previous_custodian: Option<String>,
}

/// `POST /v1/seals/{id}/custody` (admin): names the seal's new custodian.
#[utoipa::path(post, path = "/v1/seals/{id}/custody", operation_id = "transfer_custody", tag = "seals",
    summary = "Admin: hand the seal to another custodian, who must change the token PIN before its next stamp; `custody-transferred` event",
    params(("id" = i64, Path, description = "the seal's id")),
    request_body = TransferBody,
    responses(
        (status = 200, description = "handed over", body = Transferred),
        (status = 404, description = "`seal_not_found`", body = ApiError),
        (status = 409, description = "`same_custodian`", body = ApiError),
        (status = 422, description = "`not_a_custodian` (unknown, disabled, or without the custodian role)", body = ApiError)),
    security(("bearer" = [])))]
pub async fn transfer(
    State(state): State<SharedState>,
    auth: Auth,
    Path(id): Path<SealId>,
    ApiJson(body): ApiJson<TransferBody>,
) -> Result<Json<Transferred>, ApiError> {
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
    Ok(Json(Transferred {
        custody,
        previous_custodian: previous,
    }))
}

/// `GET /v1/seals/{id}/custody` (admin, auditor or custodian): the seal's custodian (or
/// null), its token, and whether a PIN change is owed before its next stamp.
#[utoipa::path(get, path = "/v1/seals/{id}/custody", operation_id = "show_custody", tag = "seals",
    summary = "Admin, auditor or custodian: the seal's custodian and whether a PIN change is owed before its next stamp (after a transfer, or after the security officer re-set the token's PIN)",
    params(("id" = i64, Path, description = "the seal")),
    responses(
        (status = 200, description = "the seal's custody", body = CustodyStatus),
        (status = 404, description = "`seal_not_found`", body = ApiError)),
    security(("bearer" = [])))]
pub async fn show(
    State(state): State<SharedState>,
    auth: Auth,
    Path(id): Path<SealId>,
) -> Result<Json<CustodyStatus>, ApiError> {
    auth.require_any(&[Role::Admin, Role::Auditor, Role::Custodian])?;
    let st = state.clone();
    Ok(Json(blocking(move || st.custodians.status(id)).await?))
}
