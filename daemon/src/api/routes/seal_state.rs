//! `POST /v1/seals/{id}/revoke|suspend|resume|report-lost` `{"reason"}` (admin; report-lost
//! also custodian): effective at once. The seal's open requests (pending, or approved and not
//! yet signed) fail with the reason, `seal-state` and `request-failed` events go out, and the
//! registry writes the usage record.

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::api::auth::Auth;
use crate::api::error::ApiError;
use crate::api::mapping::blocking;
use crate::api::routes::seals::SealView;
use crate::api::state::SharedState;
use crate::api::ApiJson;
use crate::identity::{Caller, Role};
use crate::runtime::{Event, RequestParties};
use crate::store::model::{RequestId, SealId, SealState};

/// The body: why the state changes (required, kept in the history and the usage log).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    /// Why, for people.
    pub reason: String,
}

/// The answer of a state change.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StateChanged {
    /// The seal as it is now.
    pub seal: SealView,
    /// The open requests of the seal that failed with the reason.
    pub failed_requests: Vec<RequestId>,
}

/// `POST /v1/seals/{id}/revoke`: revoke for good.
#[utoipa::path(post, path = "/v1/seals/{id}/revoke", operation_id = "revoke_seal", tag = "seals",
    summary = "Admin: revoke for good; open requests of the seal fail with the reason; `seal-state` event",
    params(("id" = i64, Path, description = "the seal's id")),
    request_body = ReasonBody,
    responses(
        (status = 200, description = "the seal's new state", body = StateChanged),
        (status = 403, description = "`forbidden`", body = ApiError),
        (status = 404, description = "`seal_not_found`", body = ApiError),
        (status = 409, description = "`seal_refused` (no reason, illegal transition)", body = ApiError)),
    security(("bearer" = [])))]
pub async fn revoke(
    state: State<SharedState>,
    auth: Auth,
    id: Path<SealId>,
    body: ApiJson<ReasonBody>,
) -> Result<Json<StateChanged>, ApiError> {
    change(state, auth, id, SealState::Revoked, body).await
}

/// `POST /v1/seals/{id}/suspend`: refuse stamps until resumed.
#[utoipa::path(post, path = "/v1/seals/{id}/suspend", operation_id = "suspend_seal", tag = "seals",
    summary = "Admin: suspend; open requests of the seal fail with the reason; `seal-state` event",
    params(("id" = i64, Path, description = "the seal's id")),
    request_body = ReasonBody,
    responses(
        (status = 200, description = "the seal's new state", body = StateChanged),
        (status = 403, description = "`forbidden`", body = ApiError),
        (status = 404, description = "`seal_not_found`", body = ApiError),
        (status = 409, description = "`seal_refused` (no reason, illegal transition)", body = ApiError)),
    security(("bearer" = [])))]
pub async fn suspend(
    state: State<SharedState>,
    auth: Auth,
    id: Path<SealId>,
    body: ApiJson<ReasonBody>,
) -> Result<Json<StateChanged>, ApiError> {
    change(state, auth, id, SealState::Suspended, body).await
}

/// `POST /v1/seals/{id}/resume`: a suspended seal stamps again.
#[utoipa::path(post, path = "/v1/seals/{id}/resume", operation_id = "resume_seal", tag = "seals",
    summary = "Admin: a suspended seal stamps again; `seal-state` event",
    params(("id" = i64, Path, description = "the seal's id")),
    request_body = ReasonBody,
    responses(
        (status = 200, description = "the seal's new state", body = StateChanged),
        (status = 403, description = "`forbidden`", body = ApiError),
        (status = 404, description = "`seal_not_found`", body = ApiError),
        (status = 409, description = "`seal_refused` (no reason, illegal transition)", body = ApiError)),
    security(("bearer" = [])))]
pub async fn resume(
    state: State<SharedState>,
    auth: Auth,
    id: Path<SealId>,
    body: ApiJson<ReasonBody>,
) -> Result<Json<StateChanged>, ApiError> {
    change(state, auth, id, SealState::Active, body).await
}

/// `POST /v1/seals/{id}/report-lost`: the key or device is lost; refuses at once, for good.
#[utoipa::path(post, path = "/v1/seals/{id}/report-lost", operation_id = "report_seal_lost", tag = "seals",
    summary = "Admin, or the seal's custodian: key or device lost; open requests fail with the reason; `seal-state` event",
    params(("id" = i64, Path, description = "the seal's id")),
    request_body = ReasonBody,
    responses(
        (status = 200, description = "the seal's new state", body = StateChanged),
        (status = 403, description = "`forbidden`; `not_your_seal` (a custodian who does not hold the seal)", body = ApiError),
        (status = 404, description = "`seal_not_found`", body = ApiError),
        (status = 409, description = "`seal_refused` (no reason, illegal transition)", body = ApiError)),
    security(("bearer" = [])))]
pub async fn report_lost(
    state: State<SharedState>,
    auth: Auth,
    id: Path<SealId>,
    body: ApiJson<ReasonBody>,
) -> Result<Json<StateChanged>, ApiError> {
    // A custodian reports only the seals it holds (or seals without a custody record on a
    // token it holds); administrators any seal.
    if !auth.0.has_role(Role::Admin) && auth.0.has_role(Role::Custodian) {
        let (st, who, seal) = (state.0.clone(), auth.0.name.clone(), id.0);
        blocking(move || Ok::<_, ApiError>(st.custodians.may_act_on_seal(&who, seal)?)).await?;
    }
    change(state, auth, id, SealState::Lost, body).await
}

async fn change(
    State(state): State<SharedState>,
    auth: Auth,
    Path(id): Path<SealId>,
    to: SealState,
    ApiJson(body): ApiJson<ReasonBody>,
) -> Result<Json<StateChanged>, ApiError> {
    let caller = auth.caller();
    let st = state.clone();
    let (seal, failed, why) = blocking(move || {
        let seal = st
            .services
            .registry
            .change_state(&caller, id, to, &body.reason)?;
        let why = format!(
            "seal {id} was {to} by {}: {}",
            caller.name(),
            body.reason.trim()
        );
        let failed = if to == SealState::Active {
            Vec::new()
        } else {
            st.services
                .approvals
                .fail_open_for_seal(&Caller::Daemon, id, &why)?
        };
        Ok::<_, ApiError>((seal, failed, why))
    })
    .await?;
    state.events.publish(Event::SealState {
        seal_id: id,
        state: seal.state,
    });
    for request in &failed {
        state.events.publish(Event::RequestFailed {
            request_id: request.id,
            reason: why.clone(),
            parties: RequestParties::of(request),
        });
    }
    let failed: Vec<_> = failed.iter().map(|r| r.id).collect();
    let now = state.clock.timestamp();
    Ok(Json(StateChanged {
        seal: SealView::new(seal, now),
        failed_requests: failed,
    }))
}
