//! Stamp requests: create (client), read, list pending (approvers), approve and reject.

use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::api::auth::Auth;
use crate::api::error::ApiError;
use crate::api::guard::is_upload;
use crate::api::mapping::blocking;
use crate::api::routes::upload::UploadForm;
use crate::api::state::{AppState, SharedState};
use crate::api::ApiJson;
use crate::approval::{
    Decision, NewStampRequest, RequestId, RequestState, StampFile, StampRequest,
};
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
        let identity = state.services.identities.get(id).map_err(|e| match e {
            crate::identity::IdentityError::Store(s) => {
                crate::api::mapping::store_error(&s, format!("cannot read an identity: {s}"))
            }
            other => ApiError::internal(format!("cannot read an identity: {other}")),
        })?;
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
    /// For an upload: each document as approvers will see it (name, size, SM3, pages, every
    /// placement resolved to a page and a box in mm).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<StampFile>,
}

/// `POST /v1/stamp-requests` (client): records the request; 202 with its id.
#[utoipa::path(post, path = "/v1/stamp-requests", operation_id = "create_stamp_request", tag = "stamp-requests",
    summary = "Client: ask to stamp one digest or a batch (JSON), or OFD documents to seal (multipart upload); 202 with the request id",
    description = "JSON: digests of documents the client keeps. `multipart/form-data` (up to `[api] max_document_bytes`, default 64 MiB, all files together): a part `request` (JSON: `seal_id`, `purpose`, `placements` and `mode` for every document, or per document in `documents`) and one part `file` per OFD document, in order. Each file is checked and its placements resolved before anything is recorded; approvers then see name, size, SM3, pages and every stamp's page and box, and the worker seals exactly that file. The sealed files are fetched with `GET /v1/stamp-requests/{id}/documents/{n}`.",
    request_body(content(
        (CreateBody = "application/json"),
        (UploadForm = "multipart/form-data"))),
    responses(
        (status = 202, description = "recorded; approvers are asked", body = Created),
        (status = 400, description = "`malformed_multipart`, `malformed_json`", body = ApiError),
        (status = 403, description = "`client_not_allowed`", body = ApiError),
        (status = 404, description = "`seal_not_found`", body = ApiError),
        (status = 409, description = "`seal_not_usable` (revoked, lost, suspended, expired), `no_policy`, `quota_exceeded`, `outside_office_hours`, `too_many_pending`", body = ApiError),
        (status = 413, description = "`body_too_large` (JSON over `max_body_bytes`, an upload over `max_document_bytes`)", body = ApiError),
        (status = 422, description = "`invalid_documents`, `invalid_text` (purpose or a document name too long, or with control or bidi characters), `invalid_request`; for uploads `invalid_document` (not an OFD package, unsafe or duplicate member names, too large when unpacked, no OFD.xml or DocRoot, locked by an earlier signature, a page out of range, a keyword not found: the reason names the document) and `invalid_placement`", body = ApiError)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<SharedState>,
    auth: Auth,
    request: Request,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    auth.require(Role::Client)?;
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let caller = auth.caller();
    let request = if is_upload(&request) {
        super::upload::create(&state, caller, origin, request).await?
    } else {
        let body = json_body(&state, request).await?;
        let (seal_id, documents, purpose) = body.documents()?;
        let st = state.clone();
        blocking(move || {
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
        .await?
    };
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
            files: request.files,
        }),
    ))
}

/// The JSON body of a digest request, within `[api] max_body_bytes` (the route itself takes
/// uploads up to the larger document limit).
async fn json_body(state: &SharedState, request: Request) -> Result<CreateBody, ApiError> {
    let limit = state.policy.max_body_bytes;
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body is larger than {limit} bytes"),
        )
    })?;
    let ApiJson(body) = ApiJson::<CreateBody>::from_request(
        Request::from_parts(parts, axum::body::Body::from(bytes)),
        state,
    )
    .await?;
    Ok(body)
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
    crate::api::json::parse_json(bytes, "the body")
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
        state
            .metrics
            .approved_after(request.updated_at - request.created_at);
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

/// Bytes read from a sealed file per chunk of the answer.
const DOWNLOAD_CHUNK: usize = 256 * 1024;

/// `filename*` of a Content-Disposition: RFC 5987 percent-encoding of UTF-8.
fn disposition_name(name: &str) -> String {
    let mut out = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `GET /v1/stamp-requests/{id}/documents/{n}`: the sealed OFD or PDF document `n` (from 1).
#[utoipa::path(get, path = "/v1/stamp-requests/{id}/documents/{n}", operation_id = "get_sealed_document", tag = "stamp-requests",
    summary = "The sealed OFD or PDF document n (from 1) of a signed request made by upload (requester, its approvers, auditor)",
    params(("id" = i64, Path, description = "the request's id"), ("n" = u32, Path, description = "the document's position, from 1")),
    responses(
        (status = 200, description = "the sealed document: an OFD package (`application/ofd`) or a PDF (`application/pdf`), as uploaded", content_type = "application/ofd", body = Vec<u8>),
        (status = 404, description = "`request_not_found` (also a request the caller may not see), `document_not_found`", body = ApiError),
        (status = 409, description = "`not_signed` (the request is not signed yet, or failed)", body = ApiError)),
    security(("bearer" = [])))]
pub async fn document(
    State(state): State<SharedState>,
    auth: Auth,
    Path((id, n)): Path<(String, String)>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    // Parsed here so that a malformed path is answered like any other miss, in JSON.
    let id: RequestId = id.parse().map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "request_not_found",
            format!("no stamp request {id:?}: request ids are numbers"),
        )
    })?;
    let n: u32 = n.parse().map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "document_not_found",
            format!("no document {n:?}: documents are numbered from 1"),
        )
    })?;
    let caller = auth.caller();
    let st = state.clone();
    let (name, format, file, size) = blocking(move || {
        let request = st.services.approvals.get(&caller, id)?;
        let not_found = || {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "document_not_found",
                format!(
                    "request {id} has no uploaded document {n} (it has {}; documents are numbered from 1)",
                    request.files.len()
                ),
            )
        };
        if request.files.is_empty() || n == 0 || n as usize > request.files.len() {
            return Err(not_found());
        }
        if request.state != RequestState::Signed {
            return Err(ApiError::conflict(
                "not_signed",
                format!(
                    "request {id} is {}; its sealed documents can be fetched once it is signed",
                    request.state
                ),
            ));
        }
        let rows = st
            .services
            .store
            .read(|tx| tx.files(id))
            .map_err(|e| {
                crate::api::mapping::store_error(
                    &e,
                    format!("cannot read the request's documents: {e}"),
                )
            })?;
        let row = rows.into_iter().find(|r| r.file.n == n).ok_or_else(not_found)?;
        let relative = row.sealed.ok_or_else(|| {
            ApiError::internal(format!("request {id} is signed but document {n} has no sealed file on record"))
        })?;
        let path = st.documents.path(&relative).map_err(|e| ApiError::internal(e.to_string()))?;
        let file = std::fs::File::open(&path).map_err(|e| {
            ApiError::internal(format!(
                "the sealed document {n} of request {id} cannot be read from the store's documents directory ({e}); restore it from a backup"
            ))
        })?;
        let size = file
            .metadata()
            .map_err(|e| ApiError::internal(e.to_string()))?
            .len();
        Ok::<_, ApiError>((row.file.name, row.file.format, file, size))
    })
    .await?;
    let stream = futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let read = tokio::task::spawn_blocking(move || {
            use std::io::Read;
            let mut buf = vec![0u8; DOWNLOAD_CHUNK];
            let got = file.read(&mut buf);
            (file, buf, got)
        })
        .await;
        match read {
            Ok((_, _, Ok(0))) => None,
            Ok((file, mut buf, Ok(got))) => {
                buf.truncate(got);
                Some((Ok::<_, std::io::Error>(Bytes::from(buf)), Some(file)))
            }
            Ok((_, _, Err(e))) => Some((Err(e), None)),
            Err(e) => Some((Err(std::io::Error::other(e.to_string())), None)),
        }
    });
    let disposition = format!(
        "attachment; filename=\"request-{id}-{n}.{format}\"; filename*=UTF-8''{}",
        disposition_name(&name)
    );
    Ok((
        [
            (header::CONTENT_TYPE, format.media_type().to_owned()),
            (header::CONTENT_LENGTH, size.to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}
