//! [`Tx`] over a PostgreSQL connection inside a transaction (or a job's savepoint).

use tokio_postgres::Row;

use super::conn::PgConn;
use crate::clock::Timestamp;
use crate::store::columns::*;
use crate::store::model::*;
use crate::store::tx::{StoreResult, Tx};
use crate::store::StoreError;

/// [`Tx`] over a connection inside a transaction.
pub(crate) struct PgTx<'a> {
    pub(crate) conn: &'a mut PgConn,
    /// The last usage-log record's `(seq, hash)` as read under the head row's lock in this
    /// transaction (`None`: not read yet, or a job's changes were rolled back).
    pub(crate) head: &'a mut Option<(i64, Vec<u8>)>,
}

/// A stored value that cannot be read back.
fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

/// A TEXT column holding an enum's name.
fn parse_enum<T: std::str::FromStr>(row: &Row, idx: usize, what: &str) -> StoreResult<T>
where
    T::Err: std::fmt::Display,
{
    let s: String = row.try_get(idx)?;
    s.parse().map_err(|e| corrupt(what, e))
}

/// A TEXT column holding JSON.
fn parse_json<T: serde::de::DeserializeOwned>(row: &Row, idx: usize, what: &str) -> StoreResult<T> {
    let s: String = row.try_get(idx)?;
    serde_json::from_str(&s).map_err(|e| corrupt(what, e))
}

/// A BIGINT column holding a `u32` (a document's position).
fn read_u32(row: &Row, idx: usize, what: &str) -> StoreResult<u32> {
    let n: i64 = row.try_get(idx)?;
    u32::try_from(n).map_err(|e| corrupt(what, e))
}

fn identity_row(row: &Row) -> StoreResult<Identity> {
    let roles: String = row.try_get(2)?;
    let mut parsed = Vec::new();
    for r in roles.split(',').filter(|s| !s.is_empty()) {
        parsed.push(
            r.parse::<Role>()
                .map_err(|e| corrupt("identities.roles", e))?,
        );
    }
    Ok(Identity {
        id: row.try_get(0)?,
        name: row.try_get(1)?,
        roles: parsed,
        disabled: row.try_get(3)?,
        created_at: row.try_get(4)?,
    })
}

fn seal_row(row: &Row) -> StoreResult<Seal> {
    Ok(Seal {
        id: row.try_get(0)?,
        kind: parse_enum(row, 1, "seals.kind")?,
        organisation: row.try_get(2)?,
        name: row.try_get(3)?,
        image: SealImage {
            format: parse_enum(row, 4, "seals.image_format")?,
            data: row.try_get(5)?,
            width_mm: row.try_get(6)?,
            height_mm: row.try_get(7)?,
        },
        es_id: row.try_get(8)?,
        device_serial: row.try_get(9)?,
        key_id: row.try_get(10)?,
        certificate: row.try_get(11)?,
        cert: CertFacts {
            organisation: row.try_get(12)?,
            common_name: row.try_get(13)?,
            serial_hex: row.try_get(14)?,
            not_before: row.try_get(15)?,
            not_after: row.try_get(16)?,
        },
        valid_from: row.try_get(17)?,
        valid_to: row.try_get(18)?,
        state: parse_enum(row, 19, "seals.state")?,
        state_changed_at: row.try_get(20)?,
        created_at: row.try_get(21)?,
        ses_seal: row.try_get(22)?,
    })
}

fn request_row(row: &Row) -> StoreResult<StampRequest> {
    Ok(StampRequest {
        id: row.try_get(0)?,
        seal_id: row.try_get(1)?,
        requester: row.try_get(2)?,
        documents: parse_json(row, 3, "stamp_requests.documents")?,
        purpose: row.try_get(4)?,
        origin: row.try_get(5)?,
        state: parse_enum(row, 6, "stamp_requests.state")?,
        created_at: row.try_get(7)?,
        expires_at: row.try_get(8)?,
        updated_at: row.try_get(9)?,
        failure: row.try_get(10)?,
        votes: Vec::new(),
        files: Vec::new(),
    })
}

const FILE_COLS: &str = "position, name, size, sm3, mode, placements, plan, upload_path, \
    sealed_path, upload_offset, format";

fn file_row(row: &Row) -> StoreResult<StampFileRow> {
    let sm3: String = row.try_get(3)?;
    let mode: String = row.try_get(4)?;
    let sealed: Option<String> = row.try_get(8)?;
    let format: String = row.try_get(10)?;
    Ok(StampFileRow {
        file: StampFile {
            n: read_u32(row, 0, "stamp_files.position")?,
            name: row.try_get(1)?,
            format: format
                .parse()
                .map_err(|e| corrupt("stamp_files.format", e))?,
            size: row.try_get::<_, i64>(2)?.max(0) as u64,
            sm3: Digest32::from_hex(&sm3).map_err(|e| corrupt("stamp_files.sm3", e))?,
            mode: serde_json::from_value(serde_json::Value::String(mode))
                .map_err(|e| corrupt("stamp_files.mode", e))?,
            placements: parse_json(row, 5, "stamp_files.placements")?,
            plan: parse_json(row, 6, "stamp_files.plan")?,
            sealed: sealed.is_some(),
        },
        upload: row.try_get(7)?,
        offset: row.try_get::<_, i64>(9)?.max(0) as u64,
        sealed,
    })
}

fn audit_row(row: &Row) -> StoreResult<AuditRow> {
    Ok(AuditRow {
        seq: row.try_get(0)?,
        at_ms: row.try_get(1)?,
        kind: row.try_get(2)?,
        actor: row.try_get(3)?,
        seal_id: row.try_get(4)?,
        detail: row.try_get(5)?,
        prev_hash: row.try_get(6)?,
        hash: row.try_get(7)?,
    })
}

const CUSTODY_COLS: &str = "c.seal_id, c.custodian, c.assigned_by, c.assigned_at, \
    c.pin_change_required";

fn custody_row(row: &Row) -> StoreResult<Custody> {
    Ok(Custody {
        seal_id: row.try_get(0)?,
        custodian: row.try_get(1)?,
        assigned_by: row.try_get(2)?,
        assigned_at: row.try_get(3)?,
        pin_change_required: row.try_get(4)?,
    })
}

fn ops_row(row: &Row) -> StoreResult<OpsRow> {
    Ok(OpsRow {
        id: row.try_get(0)?,
        at_ms: row.try_get(1)?,
        kind: row.try_get(2)?,
        actor: row.try_get(3)?,
        seal_id: row.try_get(4)?,
        detail: row.try_get(5)?,
    })
}

/// Every row read with `f`.
fn all<T>(rows: Vec<Row>, f: impl Fn(&Row) -> StoreResult<T>) -> StoreResult<Vec<T>> {
    rows.iter().map(f).collect()
}

impl PgTx<'_> {
    /// A request's votes, oldest first.
    fn votes(&mut self, request: RequestId) -> StoreResult<Vec<Vote>> {
        let rows = self.conn.query(
            "SELECT approver, approve, comment, at FROM votes WHERE request_id = $1 \
             ORDER BY at, approver",
            &[&request],
        )?;
        all(rows, |row| {
            Ok(Vote {
                approver: row.try_get(0)?,
                approve: row.try_get(1)?,
                comment: row.try_get(2)?,
                at: row.try_get(3)?,
            })
        })
    }

    /// The requests with their votes and files.
    fn with_votes(&mut self, mut requests: Vec<StampRequest>) -> StoreResult<Vec<StampRequest>> {
        for r in &mut requests {
            r.votes = self.votes(r.id)?;
            r.files = self.file_rows(r.id)?.into_iter().map(|f| f.file).collect();
        }
        Ok(requests)
    }

    /// A request's files, in document order.
    fn file_rows(&mut self, request: RequestId) -> StoreResult<Vec<StampFileRow>> {
        let sql =
            format!("SELECT {FILE_COLS} FROM stamp_files WHERE request_id = $1 ORDER BY position");
        let rows = self.conn.query(&sql, &[&request])?;
        all(rows, file_row)
    }
}

impl Tx for PgTx<'_> {
    fn insert_identity(
        &mut self,
        name: &str,
        roles: &[Role],
        token_hash: &[u8],
        at: Timestamp,
    ) -> StoreResult<IdentityId> {
        let row = self.conn.query_one(
            "INSERT INTO identities (name, roles, token_hash, disabled, created_at) \
             VALUES ($1, $2, $3, FALSE, $4) RETURNING id",
            &[&name, &roles_text(roles), &token_hash, &at],
        )?;
        Ok(row.try_get(0)?)
    }

    fn identity(&mut self, id: IdentityId) -> StoreResult<Option<Identity>> {
        let sql = format!("SELECT {IDENTITY_COLS} FROM identities WHERE id = $1");
        self.conn
            .query_opt(&sql, &[&id])?
            .as_ref()
            .map(identity_row)
            .transpose()
    }

    fn identity_by_name(&mut self, name: &str) -> StoreResult<Option<Identity>> {
        let sql = format!("SELECT {IDENTITY_COLS} FROM identities WHERE name = $1");
        self.conn
            .query_opt(&sql, &[&name])?
            .as_ref()
            .map(identity_row)
            .transpose()
    }

    fn identity_by_token_hash(&mut self, hash: &[u8]) -> StoreResult<Option<(Identity, Vec<u8>)>> {
        let sql =
            format!("SELECT {IDENTITY_COLS}, token_hash FROM identities WHERE token_hash = $1");
        self.conn
            .query_opt(&sql, &[&hash])?
            .as_ref()
            .map(|row| Ok((identity_row(row)?, row.try_get(5)?)))
            .transpose()
    }

    fn identities(&mut self) -> StoreResult<Vec<Identity>> {
        let sql = format!("SELECT {IDENTITY_COLS} FROM identities ORDER BY name");
        let rows = self.conn.query(&sql, &[])?;
        all(rows, identity_row)
    }

    fn set_identity_disabled(&mut self, id: IdentityId, disabled: bool) -> StoreResult<()> {
        self.conn.execute(
            "UPDATE identities SET disabled = $2 WHERE id = $1",
            &[&id, &disabled],
        )?;
        Ok(())
    }

    fn set_token_hash(&mut self, id: IdentityId, hash: &[u8]) -> StoreResult<()> {
        self.conn.execute(
            "UPDATE identities SET token_hash = $2 WHERE id = $1",
            &[&id, &hash],
        )?;
        Ok(())
    }

    fn insert_seal(&mut self, s: &Seal) -> StoreResult<SealId> {
        let row = self.conn.query_one(
            "INSERT INTO seals (kind, organisation, name, image_format, image, width_mm, height_mm, \
             es_id, device_serial, key_id, certificate, cert_org, cert_cn, cert_serial, \
             cert_not_before, cert_not_after, valid_from, valid_to, state, state_changed_at, \
             created_at, ses_seal) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
             $13, $14, $15, $16, $17, $18, $19, $20, $21, $22) RETURNING id",
            &[
                &s.kind.as_str(),
                &s.organisation,
                &s.name,
                &s.image.format.as_str(),
                &s.image.data,
                &s.image.width_mm,
                &s.image.height_mm,
                &s.es_id,
                &s.device_serial,
                &s.key_id,
                &s.certificate,
                &s.cert.organisation,
                &s.cert.common_name,
                &s.cert.serial_hex,
                &s.cert.not_before,
                &s.cert.not_after,
                &s.valid_from,
                &s.valid_to,
                &s.state.as_str(),
                &s.state_changed_at,
                &s.created_at,
                &s.ses_seal,
            ],
        )?;
        Ok(row.try_get(0)?)
    }

    fn seal(&mut self, id: SealId) -> StoreResult<Option<Seal>> {
        let sql = format!("SELECT {SEAL_COLS} FROM seals WHERE id = $1");
        self.conn
            .query_opt(&sql, &[&id])?
            .as_ref()
            .map(seal_row)
            .transpose()
    }

    fn seals(&mut self) -> StoreResult<Vec<Seal>> {
        let sql = format!("SELECT {SEAL_COLS} FROM seals ORDER BY id");
        let rows = self.conn.query(&sql, &[])?;
        all(rows, seal_row)
    }

    fn active_legal_name_seals(&mut self) -> StoreResult<Vec<(SealId, String)>> {
        let rows = self.conn.query(
            "SELECT id, organisation FROM seals WHERE kind = 'legal-name' AND state = 'active' \
             ORDER BY id",
            &[],
        )?;
        all(rows, |row| Ok((row.try_get(0)?, row.try_get(1)?)))
    }

    fn set_seal_state(&mut self, id: SealId, state: SealState, at: Timestamp) -> StoreResult<()> {
        self.conn.execute(
            "UPDATE seals SET state = $2, state_changed_at = $3 WHERE id = $1",
            &[&id, &state.as_str(), &at],
        )?;
        Ok(())
    }

    fn set_ses_seal(&mut self, id: SealId, der: &[u8]) -> StoreResult<()> {
        self.conn
            .execute("UPDATE seals SET ses_seal = $2 WHERE id = $1", &[&id, &der])?;
        Ok(())
    }

    fn insert_seal_event(&mut self, e: &SealEvent) -> StoreResult<()> {
        self.conn.execute(
            "INSERT INTO seal_events (seal_id, from_state, to_state, reason, actor, at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &e.seal_id,
                &e.from.map(|s| s.as_str()),
                &e.to.as_str(),
                &e.reason,
                &e.actor,
                &e.at,
            ],
        )?;
        Ok(())
    }

    fn seal_events(&mut self, id: SealId) -> StoreResult<Vec<SealEvent>> {
        let rows = self.conn.query(
            "SELECT seal_id, from_state, to_state, reason, actor, at FROM seal_events \
             WHERE seal_id = $1 ORDER BY id",
            &[&id],
        )?;
        all(rows, |row| {
            let from: Option<String> = row.try_get(1)?;
            Ok(SealEvent {
                seal_id: row.try_get(0)?,
                from: from
                    .map(|s| s.parse().map_err(|e| corrupt("seal_events.from_state", e)))
                    .transpose()?,
                to: parse_enum(row, 2, "seal_events.to_state")?,
                reason: row.try_get(3)?,
                actor: row.try_get(4)?,
                at: row.try_get(5)?,
            })
        })
    }

    fn put_policy(&mut self, policy: &Policy, at: Timestamp) -> StoreResult<()> {
        self.conn.execute(
            "INSERT INTO policies (seal_id, body, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT(seal_id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
            &[&policy.seal_id, &to_json(policy)?, &at],
        )?;
        Ok(())
    }

    fn policy(&mut self, seal_id: SealId) -> StoreResult<Option<Policy>> {
        self.conn
            .query_opt("SELECT body FROM policies WHERE seal_id = $1", &[&seal_id])?
            .as_ref()
            .map(|row| parse_json(row, 0, "policies.body"))
            .transpose()
    }

    fn insert_request(&mut self, r: &StampRequest) -> StoreResult<RequestId> {
        let row = self.conn.query_one(
            "INSERT INTO stamp_requests (seal_id, requester, documents, doc_count, purpose, origin, \
             state, created_at, expires_at, updated_at, failure) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
            &[
                &r.seal_id,
                &r.requester,
                &to_json(&r.documents)?,
                &(r.documents.len() as i64),
                &r.purpose,
                &r.origin,
                &r.state.as_str(),
                &r.created_at,
                &r.expires_at,
                &r.updated_at,
                &r.failure,
            ],
        )?;
        Ok(row.try_get(0)?)
    }

    fn request(&mut self, id: RequestId) -> StoreResult<Option<StampRequest>> {
        let sql = format!("SELECT {REQUEST_COLS} FROM stamp_requests WHERE id = $1");
        let found = self
            .conn
            .query_opt(&sql, &[&id])?
            .as_ref()
            .map(request_row)
            .transpose()?;
        Ok(match found {
            Some(r) => self.with_votes(vec![r])?.pop(),
            None => None,
        })
    }

    fn requests_in_state(&mut self, state: RequestState) -> StoreResult<Vec<StampRequest>> {
        let sql = format!("SELECT {REQUEST_COLS} FROM stamp_requests WHERE state = $1 ORDER BY id");
        let rows = self.conn.query(&sql, &[&state.as_str()])?;
        let requests = all(rows, request_row)?;
        self.with_votes(requests)
    }

    fn requests_due(&mut self, now: Timestamp) -> StoreResult<Vec<RequestId>> {
        let rows = self.conn.query(
            "SELECT id FROM stamp_requests WHERE state IN ('pending', 'approved') \
             AND expires_at <= $1 ORDER BY id",
            &[&now],
        )?;
        all(rows, |row| Ok(row.try_get(0)?))
    }

    fn set_request_state(
        &mut self,
        id: RequestId,
        state: RequestState,
        at: Timestamp,
        failure: Option<&str>,
    ) -> StoreResult<()> {
        self.conn.execute(
            "UPDATE stamp_requests SET state = $2, updated_at = $3, \
             failure = COALESCE($4::TEXT, failure) WHERE id = $1",
            &[&id, &state.as_str(), &at, &failure],
        )?;
        Ok(())
    }

    fn claim_request(
        &mut self,
        id: RequestId,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> StoreResult<bool> {
        let n = self.conn.execute(
            "UPDATE stamp_requests SET claimed_by = $2, lease_until = $4 WHERE id = $1 \
             AND state = 'approved' AND (claimed_by IS NULL OR lease_until < $3)",
            &[&id, &owner, &now_ms, &until_ms],
        )?;
        Ok(n == 1)
    }

    fn renew_claim(&mut self, id: RequestId, owner: &str, until_ms: i64) -> StoreResult<bool> {
        let n = self.conn.execute(
            "UPDATE stamp_requests SET lease_until = $3 WHERE id = $1 AND claimed_by = $2",
            &[&id, &owner, &until_ms],
        )?;
        Ok(n == 1)
    }

    fn request_claim(&mut self, id: RequestId) -> StoreResult<Option<(String, i64)>> {
        self.conn
            .query_opt(
                "SELECT claimed_by, COALESCE(lease_until, 0) FROM stamp_requests \
                 WHERE id = $1 AND claimed_by IS NOT NULL",
                &[&id],
            )?
            .as_ref()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .transpose()
    }

    fn claimable_requests(
        &mut self,
        seal_id: SealId,
        now_ms: i64,
        limit: usize,
    ) -> StoreResult<Vec<RequestId>> {
        let rows = self.conn.query(
            "SELECT id FROM stamp_requests WHERE state = 'approved' AND seal_id = $1 \
             AND (claimed_by IS NULL OR lease_until < $2) ORDER BY id LIMIT $3",
            &[&seal_id, &now_ms, &(limit as i64)],
        )?;
        all(rows, |row| Ok(row.try_get(0)?))
    }

    fn release_claims(&mut self) -> StoreResult<u64> {
        Ok(self.conn.execute(
            "UPDATE stamp_requests SET claimed_by = NULL, lease_until = NULL \
             WHERE claimed_by IS NOT NULL",
            &[],
        )?)
    }

    fn insert_vote(&mut self, request: RequestId, v: &Vote) -> StoreResult<()> {
        self.conn.execute(
            "INSERT INTO votes (request_id, approver, approve, comment, at) \
             VALUES ($1, $2, $3, $4, $5)",
            &[&request, &v.approver, &v.approve, &v.comment, &v.at],
        )?;
        Ok(())
    }

    fn documents_signed_since(&mut self, seal_id: SealId, since: Timestamp) -> StoreResult<u64> {
        let row = self.conn.query_one(
            "SELECT COALESCE(SUM(doc_count), 0)::BIGINT FROM stamp_requests WHERE seal_id = $1 \
             AND state = 'signed' AND updated_at >= $2",
            &[&seal_id, &since],
        )?;
        let n: i64 = row.try_get(0)?;
        Ok(n.max(0) as u64)
    }

    fn request_counts(&mut self) -> StoreResult<Vec<(String, u64)>> {
        let rows = self.conn.query(
            "SELECT state, COUNT(*) FROM stamp_requests GROUP BY state",
            &[],
        )?;
        all(rows, |row| {
            let count: i64 = row.try_get(1)?;
            Ok((row.try_get(0)?, count.max(0) as u64))
        })
    }

    fn pending_counts(
        &mut self,
        seal_id: SealId,
        requester: IdentityId,
        now: Timestamp,
    ) -> StoreResult<(u64, u64)> {
        let row = self.conn.query_one(
            "SELECT COUNT(*) FILTER (WHERE requester = $2), COUNT(*) FILTER (WHERE seal_id = $1) \
             FROM stamp_requests WHERE state = 'pending' AND expires_at > $3 \
             AND (requester = $2 OR seal_id = $1)",
            &[&seal_id, &requester, &now],
        )?;
        let mine: i64 = row.try_get(0)?;
        let seal: i64 = row.try_get(1)?;
        Ok((mine.max(0) as u64, seal.max(0) as u64))
    }

    fn insert_signatures(
        &mut self,
        request: RequestId,
        signatures: &[StoredSignature],
    ) -> StoreResult<()> {
        for (position, s) in signatures.iter().enumerate() {
            self.conn.execute(
                "INSERT INTO stamp_signatures (request_id, position, digest, name, ses_signature) \
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &request,
                    &(position as i64),
                    &s.digest.to_string(),
                    &s.name,
                    &s.ses_signature,
                ],
            )?;
        }
        Ok(())
    }

    fn signatures(&mut self, request: RequestId) -> StoreResult<Vec<StoredSignature>> {
        let rows = self.conn.query(
            "SELECT digest, name, ses_signature FROM stamp_signatures WHERE request_id = $1 \
             ORDER BY position",
            &[&request],
        )?;
        all(rows, |row| {
            let digest: String = row.try_get(0)?;
            Ok(StoredSignature {
                digest: Digest32::from_hex(&digest)
                    .map_err(|e| corrupt("stamp_signatures.digest", e))?,
                name: row.try_get(1)?,
                ses_signature: row.try_get(2)?,
            })
        })
    }

    fn insert_files(&mut self, request: RequestId, files: &[StampFileRow]) -> StoreResult<()> {
        for f in files {
            let mode = serde_json::to_value(f.file.mode)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            self.conn.execute(
                "INSERT INTO stamp_files (request_id, position, name, size, sm3, mode, placements, \
                 plan, upload_path, sealed_path, upload_offset, format) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                &[
                    &request,
                    &(f.file.n as i64),
                    &f.file.name,
                    &(f.file.size as i64),
                    &f.file.sm3.to_string(),
                    &mode,
                    &to_json(&f.file.placements)?,
                    &to_json(&f.file.plan)?,
                    &f.upload,
                    &f.sealed,
                    &(f.offset as i64),
                    &f.file.format.as_str(),
                ],
            )?;
        }
        Ok(())
    }

    fn files(&mut self, request: RequestId) -> StoreResult<Vec<StampFileRow>> {
        self.file_rows(request)
    }

    fn set_file_sealed(&mut self, request: RequestId, n: u32, sealed: &str) -> StoreResult<()> {
        self.conn.execute(
            "UPDATE stamp_files SET sealed_path = $3 WHERE request_id = $1 AND position = $2",
            &[&request, &(n as i64), &sealed],
        )?;
        Ok(())
    }

    fn clear_file_upload(&mut self, request: RequestId, n: u32) -> StoreResult<()> {
        self.conn.execute(
            "UPDATE stamp_files SET upload_path = NULL WHERE request_id = $1 AND position = $2",
            &[&request, &(n as i64)],
        )?;
        Ok(())
    }

    fn final_uploads(&mut self) -> StoreResult<Vec<(RequestId, u32, String)>> {
        let rows = self.conn.query(
            "SELECT f.request_id, f.position, f.upload_path FROM stamp_files f \
             JOIN stamp_requests r ON r.id = f.request_id \
             WHERE f.upload_path IS NOT NULL AND r.state NOT IN ('pending', 'approved') \
             ORDER BY f.request_id, f.position",
            &[],
        )?;
        all(rows, |row| {
            Ok((
                row.try_get(0)?,
                read_u32(row, 1, "stamp_files.position")?,
                row.try_get(2)?,
            ))
        })
    }

    fn document_paths(&mut self) -> StoreResult<Vec<String>> {
        let rows = self.conn.query(DOCUMENT_PATHS, &[])?;
        all(rows, |row| Ok(row.try_get(0)?))
    }

    fn custody(&mut self, seal_id: SealId) -> StoreResult<Option<Custody>> {
        let sql = format!("SELECT {CUSTODY_COLS} FROM seal_custody c WHERE c.seal_id = $1");
        self.conn
            .query_opt(&sql, &[&seal_id])?
            .as_ref()
            .map(custody_row)
            .transpose()
    }

    fn put_custody(&mut self, c: &Custody) -> StoreResult<()> {
        self.conn.execute(
            "INSERT INTO seal_custody (seal_id, custodian, assigned_by, assigned_at, pin_change_required) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT(seal_id) DO UPDATE SET custodian = $2, \
             assigned_by = $3, assigned_at = $4, pin_change_required = $5",
            &[
                &c.seal_id,
                &c.custodian,
                &c.assigned_by,
                &c.assigned_at,
                &c.pin_change_required,
            ],
        )?;
        Ok(())
    }

    fn custody_all(&mut self) -> StoreResult<Vec<(Custody, String)>> {
        let sql = format!(
            "SELECT {CUSTODY_COLS}, s.device_serial FROM seal_custody c \
             JOIN seals s ON s.id = c.seal_id ORDER BY c.seal_id"
        );
        let rows = self.conn.query(&sql, &[])?;
        all(rows, |row| Ok((custody_row(row)?, row.try_get(5)?)))
    }

    fn clear_custodian_pin_change(
        &mut self,
        device_serial: &str,
        custodian: &str,
    ) -> StoreResult<u64> {
        Ok(self.conn.execute(
            "UPDATE seal_custody SET pin_change_required = FALSE WHERE pin_change_required \
             AND custodian = $2 AND seal_id IN (SELECT id FROM seals WHERE device_serial = $1)",
            &[&device_serial, &custodian],
        )?)
    }

    fn clear_device_pin_change(&mut self, device_serial: &str) -> StoreResult<()> {
        self.conn.execute(
            "DELETE FROM device_pin_change WHERE device_serial = $1",
            &[&device_serial],
        )?;
        Ok(())
    }

    fn require_device_pin_change(
        &mut self,
        device_serial: &str,
        reason: &str,
        at: Timestamp,
    ) -> StoreResult<()> {
        self.conn.execute(
            "INSERT INTO device_pin_change (device_serial, reason, required_at) VALUES ($1, $2, $3) \
             ON CONFLICT(device_serial) DO UPDATE SET reason = $2, required_at = $3",
            &[&device_serial, &reason, &at],
        )?;
        Ok(())
    }

    fn device_pin_change(
        &mut self,
        device_serial: &str,
    ) -> StoreResult<Option<(String, Timestamp)>> {
        self.conn
            .query_opt(
                "SELECT reason, required_at FROM device_pin_change WHERE device_serial = $1",
                &[&device_serial],
            )?
            .as_ref()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .transpose()
    }

    /// The head row, not the newest record: the head survives pruning (`seq` 0: nothing was
    /// ever appended). The writer locks the row at the start of each batch.
    fn audit_last(&mut self) -> StoreResult<Option<(i64, Vec<u8>)>> {
        if let Some(head) = self.head.as_ref() {
            return Ok(Some(head.clone()));
        }
        let Some(row) = self
            .conn
            .query_opt("SELECT seq, hash FROM audit_head WHERE id = 1", &[])?
        else {
            return Ok(None);
        };
        let seq: i64 = row.try_get(0)?;
        if seq == 0 {
            return Ok(None);
        }
        let last = (seq, row.try_get::<_, Vec<u8>>(1)?);
        *self.head = Some(last.clone());
        Ok(Some(last))
    }

    /// A trigger checks that the record extends the head row and advances it.
    fn insert_audit(&mut self, r: &AuditRow) -> StoreResult<()> {
        // Forgotten if the insert fails; known again once it succeeded.
        let head = self.head.take();
        self.conn.execute(
            "INSERT INTO audit_log (seq, at_ms, kind, actor, seal_id, detail, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &r.seq,
                &r.at_ms,
                &r.kind,
                &r.actor,
                &r.seal_id,
                &r.detail,
                &r.prev_hash,
                &r.hash,
            ],
        )?;
        // The trigger accepted it, so it is the head now.
        if head.is_none() || matches!(head, Some((seq, _)) if r.seq == seq + 1) {
            *self.head = Some((r.seq, r.hash.clone()));
        }
        Ok(())
    }

    fn audit_rows(&mut self, after_seq: i64, limit: usize) -> StoreResult<Vec<AuditRow>> {
        let sql =
            format!("SELECT {AUDIT_COLS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2");
        let rows = self.conn.query(&sql, &[&after_seq, &(limit as i64)])?;
        all(rows, audit_row)
    }

    fn audit_rows_of_kind(
        &mut self,
        kind: &str,
        after_seq: i64,
        limit: usize,
    ) -> StoreResult<Vec<AuditRow>> {
        let sql = format!(
            "SELECT {AUDIT_COLS} FROM audit_log WHERE kind = $1 AND seq > $2 ORDER BY seq LIMIT $3"
        );
        let rows = self
            .conn
            .query(&sql, &[&kind, &after_seq, &(limit as i64)])?;
        all(rows, audit_row)
    }

    fn audit_last_for_device(&mut self, kind: &str, serial: &str) -> StoreResult<Option<i64>> {
        self.conn
            .query_opt(
                "SELECT at_ms FROM audit_log WHERE kind = $1 \
                 AND (detail::jsonb ->> 'device_serial') = $2 ORDER BY seq DESC LIMIT 1",
                &[&kind, &serial],
            )?
            .as_ref()
            .map(|row| Ok(row.try_get(0)?))
            .transpose()
    }

    fn audit_rows_between(
        &mut self,
        from_ms: i64,
        to_ms: i64,
        after_seq: i64,
        limit: usize,
    ) -> StoreResult<Vec<AuditRow>> {
        let sql = format!(
            "SELECT {AUDIT_COLS} FROM audit_log WHERE seq > $1 AND at_ms >= $2 AND at_ms < $3 \
             ORDER BY seq LIMIT $4"
        );
        let rows = self
            .conn
            .query(&sql, &[&after_seq, &from_ms, &to_ms, &(limit as i64)])?;
        all(rows, audit_row)
    }

    fn audit_row(&mut self, seq: i64) -> StoreResult<Option<AuditRow>> {
        let sql = format!("SELECT {AUDIT_COLS} FROM audit_log WHERE seq = $1");
        self.conn
            .query_opt(&sql, &[&seq])?
            .as_ref()
            .map(audit_row)
            .transpose()
    }

    fn audit_last_before(&mut self, before_ms: i64) -> StoreResult<Option<AuditRow>> {
        let sql = format!(
            "SELECT {AUDIT_COLS} FROM audit_log WHERE seq < COALESCE((SELECT MIN(seq) FROM audit_log \
             WHERE at_ms >= $1), 9223372036854775807) ORDER BY seq DESC LIMIT 1"
        );
        self.conn
            .query_opt(&sql, &[&before_ms])?
            .as_ref()
            .map(audit_row)
            .transpose()
    }

    fn audit_anchor(&mut self) -> StoreResult<Option<AuditAnchor>> {
        self.conn
            .query_opt("SELECT seq, hash FROM audit_anchor WHERE id = 1", &[])?
            .as_ref()
            .map(|row| {
                Ok(AuditAnchor {
                    seq: row.try_get(0)?,
                    hash: row.try_get(1)?,
                })
            })
            .transpose()
    }

    /// Leaves the head alone: pruning does not move it here.
    fn set_audit_anchor(&mut self, a: &AuditAnchor) -> StoreResult<()> {
        self.conn.execute(
            "INSERT INTO audit_anchor (id, seq, hash) VALUES (1, $1, $2) \
             ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
            &[&a.seq, &a.hash],
        )?;
        Ok(())
    }

    /// Leaves the head alone: pruning does not move it here.
    fn delete_audit_through(&mut self, through: i64) -> StoreResult<u64> {
        Ok(self
            .conn
            .execute("DELETE FROM audit_log WHERE seq <= $1", &[&through])?)
    }

    fn insert_ops(&mut self, r: &OpsRow) -> StoreResult<i64> {
        let row = self.conn.query_one(
            "INSERT INTO ops_log (at_ms, kind, actor, seal_id, detail) VALUES ($1, $2, $3, $4, $5) \
             RETURNING id",
            &[&r.at_ms, &r.kind, &r.actor, &r.seal_id, &r.detail],
        )?;
        Ok(row.try_get(0)?)
    }

    fn ops_rows(
        &mut self,
        kind: Option<&str>,
        after_id: i64,
        limit: usize,
    ) -> StoreResult<Vec<OpsRow>> {
        let rows = self.conn.query(
            "SELECT id, at_ms, kind, actor, seal_id, detail FROM ops_log \
             WHERE id > $1 AND ($2::TEXT IS NULL OR kind = $2) ORDER BY id LIMIT $3",
            &[&after_id, &kind, &(limit as i64)],
        )?;
        all(rows, ops_row)
    }

    fn delete_ops_before(&mut self, before_ms: i64) -> StoreResult<u64> {
        Ok(self
            .conn
            .execute("DELETE FROM ops_log WHERE at_ms < $1", &[&before_ms])?)
    }
}
