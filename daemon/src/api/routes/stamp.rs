//! Stamp requests: create (client), read, list pending (approvers), approve and reject.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::api::auth::Auth;
use crate::api::error::ApiError;
use crate::api::mapping::blocking;
use crate::api::state::{AppState, SharedState};
use crate::api::ApiJson;
use crate::approval::{Decision, NewStampRequest, RequestId, RequestState, StampRequest};
use crate::identity::Role;
use crate::runtime::{Event, RequestParties};
use crate::stamp::results::SignedResult;
use crate::store::model::{Digest32, SealId, StampDocument};

/// `POST /v1/stamp-requests` body: one digest, a batch of digests, or named documents.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    /// The seal to stamp with.
    pub seal_id: SealId,
    /// One document's SM3 digest (hex).
    #[serde(default)]
    pub digest: Option<Digest32>,
    /// A batch of digests under one approval.
    #[serde(default)]
    pub digests: Vec<Digest32>,
    /// Documents with their own names.
    #[serde(default)]
    pub documents: Vec<StampDocument>,
    /// Name shown to approvers (batch members get `name #n`).
    #[serde(default)]
    pub document_name: Option<String>,
    /// Why.
    pub purpose: String,
}

impl CreateBody {
    fn documents(self) -> Result<(SealId, Vec<StampDocument>, String), ApiError> {
        let name = self.document_name.unwrap_or_else(|| "document".into());
        let mut docs = self.documents;
        if let Some(digest) = self.digest {
            docs.push(StampDocument {
                digest,
                name: name.clone(),
            });
        }
        let batch = self.digests.len();
        for (i, digest) in self.digests.into_iter().enumerate() {
            docs.push(StampDocument {
                digest,
                name: if batch == 1 {
                    name.clone()
                } else {
                    format!("{name} #{}", i + 1)
                },
            });
        }
        if docs.is_empty() {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_documents",
                "name at least one document: `digest`, `digests` or `documents`",
            ));
        }
        Ok((self.seal_id, docs, self.purpose))
    }
}

/// A stamp request as the API shows it; `signatures` once it is signed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RequestView {
    /// The request.
    #[serde(flatten)]
    pub request: StampRequest,
    /// The SES_Signatures (base64 DER), present only when `state` is `signed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signatures: Option<Vec<SignedResult>>,
    /// Names of the requester and of each voter, by identity id (for people reading it).
    pub names: Names,
    /// Approvals the seal's policy requires (none if the seal has no policy now).
    pub required_approvals: Option<u32>,
}

/// Identity names by id (`"3": "demo-client"`).
pub type Names = std::collections::BTreeMap<String, String>;

/// The names of `request`'s requester and voters, added to `names`.
fn add_names(state: &AppState, request: &StampRequest, names: &mut Names) -> Result<(), ApiError> {
    let ids = std::iter::once(request.requester).chain(request.votes.iter().map(|v| v.approver));
    for id in ids {
        let key = id.to_string();
        if names.contains_key(&key) {
            continue;
        }
        let identity = state
            .services
            .identities
            .get(id)
            .map_err(|e| ApiError::internal(format!("cannot read an identity: {e}")))?;
        if let Some(identity) = identity {
            names.insert(key, identity.name);
        }
    }
    Ok(())
}

fn view(state: &AppState, request: StampRequest) -> Result<RequestView, ApiError> {
    let signatures = if request.state == RequestState::Signed {
        let kept = state.services.approvals.signatures(request.id)?;
        if kept.is_empty() {
            state.legacy_signatures.get(request.id).map_err(|e| {
                ApiError::internal(format!("cannot read the request's signatures: {e}"))
            })?
        } else {
            Some(kept.into_iter().map(SignedResult::from).collect())
        }
    } else {
        None
    };
    let mut names = Names::new();
    add_names(state, &request, &mut names)?;
    let required_approvals = state
        .services
        .approvals
        .policy(request.seal_id)?
        .map(|p| p.required_approvals);
    Ok(RequestView {
        request,
        signatures,
        names,
        required_approvals,
    })
}

/// The answer of `POST /v1/stamp-requests`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Created {
    /// The request's id.
    pub id: RequestId,
    /// Its state (`pending`).
    pub state: RequestState,
}

/// `POST /v1/stamp-requests` (client): records the request; 202 with its id.
#[utoipa::path(post, path = "/v1/stamp-requests", operation_id = "create_stamp_request", tag = "stamp-requests",
    summary = "Client: ask to stamp one digest or a batch; 202 with the request id",
    request_body = CreateBody,
    responses(
        (status = 202, description = "recorded; approvers are asked", body = Created),
        (status = 403, description = "`client_not_allowed`", body = ApiError),
        (status = 404, description = "`seal_not_found`", body = ApiError),
        (status = 409, description = "`seal_not_usable` (revoked, lost, suspended, expired), `no_policy`, `quota_exceeded`, `outside_office_hours`, `too_many_pending`", body = ApiError),
        (status = 422, description = "`invalid_documents`, `invalid_text` (purpose or a document name too long, or with control or bidi characters), `invalid_request`", body = ApiError)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<SharedState>,
    auth: Auth,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    auth.require(Role::Client)?;
    let (seal_id, documents, purpose) = body.documents()?;
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let caller = auth.caller();
    let st = state.clone();
    let request = blocking(move || {
        st.services.approvals.create_request(
            &caller,
            NewStampRequest {
                seal_id,
                documents,
                purpose,
                origin,
            },
        )
    })
    .await?;
    state.events.publish(Event::RequestCreated {
        request_id: request.id,
        seal_id: request.seal_id,
        parties: RequestParties::of(&request),
    });
    Ok((
        StatusCode::ACCEPTED,
        Json(Created {
            id: request.id,
            state: request.state,
        }),
    ))
}

/// `GET /v1/stamp-requests/{id}`: the request, with its signatures once signed.
#[utoipa::path(get, path = "/v1/stamp-requests/{id}", operation_id = "get_stamp_request", tag = "stamp-requests",
    summary = "A request (requester, its approvers, auditor); `signatures` (base64 DER SES_Signature) once signed",
    params(("id" = i64, Path, description = "the request's id")),
    responses(
        (status = 200, description = "the request", body = RequestView),
        (status = 404, description = "`request_not_found`", body = ApiError)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<SharedState>,
    auth: Auth,
    Path(id): Path<RequestId>,
) -> Result<Json<RequestView>, ApiError> {
    let caller = auth.caller();
    blocking(move || {
        let request = state.services.approvals.get(&caller, id)?;
        view(&state, request).map(Json)
    })
    .await
}

/// Query of `GET /v1/stamp-requests`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only `pending` is listed.
    pub state: Option<String>,
}

/// The answer of `GET /v1/stamp-requests`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RequestList {
    /// Requests waiting for the caller's vote.
    pub requests: Vec<StampRequest>,
    /// Names of their requesters and voters, by identity id.
    pub names: Names,
}

/// `GET /v1/stamp-requests?state=pending`: requests waiting for the caller's decision.
#[utoipa::path(get, path = "/v1/stamp-requests", operation_id = "list_stamp_requests", tag = "stamp-requests",
    summary = "Approver: requests waiting for the caller's vote (`?state=pending`)",
    params(ListQuery),
    responses(
        (status = 200, description = "the pending requests", body = RequestList),
        (status = 400, description = "`invalid_query`", body = ApiError)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<SharedState>,
    auth: Auth,
    Query(query): Query<ListQuery>,
) -> Result<Json<RequestList>, ApiError> {
    if query.state.as_deref().unwrap_or("pending") != "pending" {
        return Err(ApiError::bad_request(
            "invalid_query",
            "only `state=pending` can be listed; fetch other requests by id",
        ));
    }
    let caller = auth.caller();
    blocking(move || {
        let requests = state.services.approvals.list_pending(&caller)?;
        let mut names = Names::new();
        for request in &requests {
            add_names(&state, request, &mut names)?;
        }
        Ok::<_, ApiError>(Json(RequestList { requests, names }))
    })
    .await
}

/// Optional body of approve / reject.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecideBody {
    /// Free text kept with the vote.
    #[serde(default)]
    pub comment: String,
}

fn decide_body(bytes: &Bytes) -> Result<DecideBody, ApiError> {
    if bytes.is_empty() {
        return Ok(DecideBody::default());
    }
    serde_json::from_slice(bytes).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            ApiError::bad_request("malformed_json", format!("the body is not valid JSON: {e}"))
        } else {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                format!("the JSON does not match what this endpoint takes: {e}"),
            )
        }
    })
}

async fn decide(
    state: SharedState,
    auth: Auth,
    id: RequestId,
    decision: Decision,
    body: Bytes,
) -> Result<Json<RequestView>, ApiError> {
    auth.require(Role::Approver)?;
    let body = decide_body(&body)?;
    let caller = auth.caller();
    let st = state.clone();
    let request = blocking(move || {
        st.services
            .approvals
            .decide(&caller, id, decision, &body.comment)
    })
    .await?;
    state.events.publish(Event::RequestDecided {
        request_id: id,
        state: request.state,
        parties: RequestParties::of(&request),
    });
    if request.state == RequestState::Approved {
        crate::stamp::spawn_signing(state.runtime.clone(), id);
    }
    let st = state.clone();
    blocking(move || view(&st, request)).await.map(Json)
}

/// `POST /v1/stamp-requests/{id}/approve` (approver).
#[utoipa::path(post, path = "/v1/stamp-requests/{id}/approve", operation_id = "approve_stamp_request", tag = "stamp-requests",
    summary = "Approver: approve (N of M); signing starts when approved",
    params(("id" = i64, Path, description = "the request's id")),
    request_body(content = Option<DecideBody>, description = "optional: an empty body is no comment"),
    responses(
        (status = 200, description = "the request after the vote", body = RequestView),
        (status = 403, description = "`not_an_approver`, `self_approval`", body = ApiError),
        (status = 404, description = "`request_not_found`", body = ApiError),
        (status = 409, description = "`already_voted`, `invalid_state`, `request_expired`, `seal_not_usable`", body = ApiError),
        (status = 422, description = "`invalid_request`, `invalid_text` (the comment is too long or has control or bidi characters)", body = ApiError)),
    security(("bearer" = [])))]
pub async fn approve(
    State(state): State<SharedState>,
    auth: Auth,
    Path(id): Path<RequestId>,
    body: Bytes,
) -> Result<Json<RequestView>, ApiError> {
    decide(state, auth, id, Decision::Approve, body).await
}

/// `POST /v1/stamp-requests/{id}/reject` (approver).
#[utoipa::path(post, path = "/v1/stamp-requests/{id}/reject", operation_id = "reject_stamp_request", tag = "stamp-requests",
    summary = "Approver: reject (one rejection rejects)",
    params(("id" = i64, Path, description = "the request's id")),
    request_body(content = Option<DecideBody>, description = "optional: an empty body is no comment"),
    responses(
        (status = 200, description = "the request after the vote", body = RequestView),
        (status = 403, description = "`not_an_approver`, `self_approval`", body = ApiError),
        (status = 404, description = "`request_not_found`", body = ApiError),
        (status = 409, description = "`already_voted`, `invalid_state`, `request_expired`", body = ApiError),
        (status = 422, description = "`invalid_request`, `invalid_text` (the comment is too long or has control or bidi characters)", body = ApiError)),
    security(("bearer" = [])))]
pub async fn reject(
    State(state): State<SharedState>,
    auth: Auth,
    Path(id): Path<RequestId>,
    body: Bytes,
) -> Result<Json<RequestView>, ApiError> {
    decide(state, auth, id, Decision::Reject, body).await
}
