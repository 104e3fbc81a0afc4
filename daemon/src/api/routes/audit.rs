//! `GET /v1/audit` (auditor): usage-log records with filters and paging.

use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::auth::Auth;
use crate::api::error::ApiError;
use crate::api::mapping::blocking;
use crate::api::state::SharedState;
use crate::audit::NotedHead;
use crate::identity::Role;
use crate::store::model::{AuditKind, Digest32, SealId};

/// Filters and paging.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only records of this kind (`signature`, `refusal`, `decision`, …).
    pub kind: Option<String>,
    /// Only records about this seal.
    pub seal_id: Option<SealId>,
    /// Only records by this actor.
    pub actor: Option<String>,
    /// Records after this sequence number (paging: pass the previous `next_after`).
    #[serde(default)]
    pub after: i64,
    /// Most records to return (1–1000, default 100).
    pub limit: Option<usize>,
}

/// The most usage-log records one `GET /v1/audit` examines; past that it answers what it
/// found with `next_after`.
const MAX_EXAMINED: usize = 10_000;

/// Records read from the store at a time.
const BATCH: usize = 1000;

/// One usage-log record as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditRecord {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// Time in milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// Record kind.
    pub kind: String,
    /// Who caused it.
    pub actor: String,
    /// The seal concerned, if any.
    pub seal_id: Option<SealId>,
    /// Details (null if unreadable).
    #[schema(value_type = Object)]
    pub detail: Value,
    /// The record's hash, hex (none for an operational record: they are outside the chain).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// True for an operational record (refusals, refusal summaries, verifications), read
    /// from the operational log: `seq` is its own numbering there.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub operational: bool,
}

/// The answer of `GET /v1/audit`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    /// The records, oldest first.
    pub records: Vec<AuditRecord>,
    /// Pass as `after` for the next page; null when there are no more.
    pub next_after: Option<i64>,
}

/// `GET /v1/audit`.
#[utoipa::path(get, path = "/v1/audit", operation_id = "list_audit", tag = "audit",
    summary = "Auditor or admin: usage-log records, filtered and paged by `next_after`",
    params(AuditQuery),
    responses(
        (status = 200, description = "a page of records", body = AuditPage),
        (status = 400, description = "`invalid_query`", body = ApiError)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<SharedState>,
    auth: Auth,
    Query(q): Query<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    auth.require_any(&[Role::Auditor, Role::Admin])?;
    let kind = match &q.kind {
        Some(k) => Some(
            k.parse::<AuditKind>()
                .map_err(|e| ApiError::bad_request("invalid_query", format!("`kind`: {e}")))?,
        ),
        None => None,
    };
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "`limit` must be between 1 and 1000",
        ));
    }
    if let Some(kind) = kind.filter(|k| k.is_operational()) {
        return blocking(move || operational(&state, kind, &q, limit)).await;
    }
    blocking(move || {
        let page = page(
            &q,
            limit,
            |after| {
                state
                    .services
                    .store
                    .read(|tx| match kind {
                        Some(k) => tx.audit_rows_of_kind(k.as_str(), after, BATCH),
                        None => tx.audit_rows(after, BATCH),
                    })
                    .map_err(ApiError::from)
            },
            |row| (row.seq, row.seal_id, row.actor.as_str()),
            |row| AuditRecord {
                seq: row.seq,
                at_ms: row.at_ms,
                kind: row.kind,
                actor: row.actor,
                seal_id: row.seal_id,
                detail: serde_json::from_str::<Value>(&row.detail).unwrap_or(Value::Null),
                hash: Some(hex::encode(&row.hash)),
                operational: false,
            },
        )?;
        Ok::<_, ApiError>(Json(page))
    })
    .await
}

/// One page of records after `q.after` that match `q`'s seal and actor, from `fetch` (rows
/// after a key, in key order, `BATCH` at a time; `key` gives a row's key, seal and actor).
/// At most `MAX_EXAMINED` rows are examined a call: a rare filter answers a short page with
/// `next_after` to go on from rather than scanning the whole log in one request.
fn page<R>(
    q: &AuditQuery,
    limit: usize,
    mut fetch: impl FnMut(i64) -> Result<Vec<R>, ApiError>,
    key: impl Fn(&R) -> (i64, Option<SealId>, &str),
    record: impl Fn(R) -> AuditRecord,
) -> Result<AuditPage, ApiError> {
    let mut out = Vec::new();
    let mut after = q.after;
    let mut end = false;
    let mut examined = 0;
    while out.len() < limit && !end && examined < MAX_EXAMINED {
        let rows = fetch(after)?;
        end = rows.len() < BATCH;
        for row in rows {
            let (seq, seal_id, actor) = key(&row);
            after = seq;
            examined += 1;
            let wanted = q.seal_id.is_none_or(|s| seal_id == Some(s))
                && q.actor.as_deref().is_none_or(|a| actor == a);
            if wanted {
                out.push(record(row));
                if out.len() == limit {
                    break;
                }
            }
        }
    }
    let next_after = if out.len() == limit || !end {
        Some(after)
    } else {
        None
    };
    Ok(AuditPage {
        records: out,
        next_after,
    })
}

/// The newest usage-log record.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Head {
    /// Its sequence number.
    pub seq: i64,
    /// Its hash, hex.
    pub hash: String,
    /// When it was written (ms since the Unix epoch).
    pub at_ms: i64,
    /// `SEQ:HASH@TIME`, for `sealctl audit verify --expect-head`.
    pub expect_head: String,
}

/// The answer of `GET /v1/audit/head`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HeadAnswer {
    /// The newest record; null when the log is empty.
    pub head: Option<Head>,
}

/// Operational records (refusals, refusal summaries, verifications) come from the operational
/// log, outside the chain: `seq` is their own numbering there and they carry no hash.
fn operational(
    state: &SharedState,
    kind: AuditKind,
    q: &AuditQuery,
    limit: usize,
) -> Result<Json<AuditPage>, ApiError> {
    let page = page(
        q,
        limit,
        |after| Ok(state.services.audit.operational(Some(kind), after, BATCH)?),
        |row| (row.id, row.seal_id, row.actor.as_str()),
        |row| AuditRecord {
            seq: row.id,
            at_ms: row.at_ms,
            kind: row.kind,
            actor: row.actor,
            seal_id: row.seal_id,
            detail: serde_json::from_str::<Value>(&row.detail).unwrap_or(Value::Null),
            hash: None,
            operational: true,
        },
    )?;
    Ok(Json(page))
}

/// `GET /v1/audit/head` (auditor, admin): the newest usage-log record's `SEQ:HASH@TIME`, to keep
/// outside the store; `sealctl audit verify --expect-head` later shows whether anything after
/// it was cut off or rewritten.
#[utoipa::path(get, path = "/v1/audit/head", operation_id = "audit_head", tag = "audit",
    summary = "Auditor or admin: the newest usage-log record as `SEQ:HASH@TIME`, to keep outside the store and check later with `sealctl audit verify --expect-head`",
    responses((status = 200, description = "the newest record", body = HeadAnswer)),
    security(("bearer" = [])))]
pub async fn head(
    State(state): State<SharedState>,
    auth: Auth,
) -> Result<Json<HeadAnswer>, ApiError> {
    auth.require_any(&[Role::Auditor, Role::Admin])?;
    blocking(move || {
        let last = state
            .services
            .store
            .read(|tx| match tx.audit_last()? {
                Some((seq, _)) => tx.audit_row(seq),
                None => Ok(None),
            })
            .map_err(ApiError::from)?;
        let head = last.and_then(|row| {
            let noted = NotedHead {
                seq: row.seq,
                hash: Digest32(row.hash.as_slice().try_into().ok()?),
                at_ms: Some(row.at_ms),
            };
            Some(Head {
                seq: row.seq,
                hash: hex::encode(&row.hash),
                at_ms: row.at_ms,
                expect_head: noted.to_string(),
            })
        });
        Ok::<_, ApiError>(Json(HeadAnswer { head }))
    })
    .await
}
