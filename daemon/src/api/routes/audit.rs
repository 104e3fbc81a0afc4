//! `GET /v1/audit` (auditor): usage-log records with filters and paging.

use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::auth::Auth;
use crate::api::error::ApiError;
use crate::api::mapping::blocking;
use crate::api::state::SharedState;
use crate::identity::Role;
use crate::store::model::{AuditKind, SealId};

/// Filters and paging.
#[derive(Debug, Deserialize)]
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

/// `GET /v1/audit`.
pub async fn list(
    State(state): State<SharedState>,
    auth: Auth,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
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
        let mut out = Vec::new();
        let mut after = q.after;
        let mut end = false;
        while out.len() < limit && !end {
            let rows = state
                .services
                .store
                .read(|tx| tx.audit_rows(after, 1000))
                .map_err(|e| ApiError::internal(e.to_string()))?;
            end = rows.len() < 1000;
            for row in rows {
                after = row.seq;
                let wanted = kind.is_none_or(|k| row.kind == k.as_str())
                    && q.seal_id.is_none_or(|s| row.seal_id == Some(s))
                    && q.actor.as_deref().is_none_or(|a| row.actor == a);
                if wanted {
                    out.push(json!({
                        "seq": row.seq,
                        "at_ms": row.at_ms,
                        "kind": row.kind,
                        "actor": row.actor,
                        "seal_id": row.seal_id,
                        "detail": serde_json::from_str::<Value>(&row.detail).unwrap_or(Value::Null),
                        "hash": hex::encode(&row.hash),
                    }));
                    if out.len() == limit {
                        break;
                    }
                }
            }
        }
        let next_after = if out.len() == limit {
            Some(after)
        } else {
            None
        };
        Ok::<_, ApiError>(Json(json!({ "records": out, "next_after": next_after })))
    })
    .await
}

/// Operational records (refusals, refusal summaries, verifications) come from the operational
/// log, outside the chain: `seq` is their own numbering there and they carry no hash.
fn operational(
    state: &SharedState,
    kind: AuditKind,
    q: &AuditQuery,
    limit: usize,
) -> Result<Json<Value>, ApiError> {
    let mut out = Vec::new();
    let mut after = q.after;
    loop {
        let rows = state.services.audit.operational(Some(kind), after, 1000)?;
        let end = rows.len() < 1000;
        for row in rows {
            after = row.id;
            let wanted = q.seal_id.is_none_or(|s| row.seal_id == Some(s))
                && q.actor.as_deref().is_none_or(|a| row.actor == a);
            if wanted {
                out.push(json!({
                    "seq": row.id,
                    "at_ms": row.at_ms,
                    "kind": row.kind,
                    "actor": row.actor,
                    "seal_id": row.seal_id,
                    "detail": serde_json::from_str::<Value>(&row.detail).unwrap_or(Value::Null),
                    "operational": true,
                }));
                if out.len() == limit {
                    return Ok(Json(json!({ "records": out, "next_after": after })));
                }
            }
        }
        if end {
            return Ok(Json(json!({ "records": out, "next_after": null })));
        }
    }
}

/// `GET /v1/audit/head` (auditor, admin): the newest usage-log record's `SEQ:HASH`, to keep
/// outside the store; `sealctl audit verify --expect-head` later shows whether anything after
/// it was cut off or rewritten.
pub async fn head(State(state): State<SharedState>, auth: Auth) -> Result<Json<Value>, ApiError> {
    auth.require_any(&[Role::Auditor, Role::Admin])?;
    blocking(move || {
        let last = state
            .services
            .store
            .read(|tx| tx.audit_last())
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let head = last.map(|(seq, hash)| {
            json!({
                "seq": seq,
                "hash": hex::encode(&hash),
                "expect_head": format!("{seq}:{}", hex::encode(&hash)),
            })
        });
        Ok::<_, ApiError>(Json(json!({ "head": head })))
    })
    .await
}
