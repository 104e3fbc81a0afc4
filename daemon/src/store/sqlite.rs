//! SQLite backend: WAL, `synchronous=FULL` (fsync at every commit), the writer's connection,
//! pooled read connections.

use std::fs::{OpenOptions, Permissions};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

use crate::clock::Timestamp;

use super::columns::*;
use super::lock::StoreLock;
use super::model::*;
use super::tx::{StoreResult, Tx};
use super::writer::{BatchConn, Head};
use super::{migrations, StoreError};

/// The embedded store's file, its read connections and its lock; writes go through the
/// [`Writer`] over the connection [`SqliteStore::open`] returns.
#[derive(Debug)]
pub(crate) struct SqliteStore {
    path: PathBuf,
    readers: Mutex<Vec<Connection>>,
    _lock: StoreLock,
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path`, owner-only (0600), and migrates it;
    /// returns it with the writer's connection.
    pub(crate) fn open(path: &Path) -> Result<(Self, SqliteWriter), StoreError> {
        let path = path.to_path_buf();
        let lock = StoreLock::shared(&path)?.ok_or_else(|| {
            StoreError::Failed(format!(
                "{} is being restored from a backup; try again when the restore has finished",
                path.display()
            ))
        })?;
        create_private(&path)?;
        let mut conn = Connection::open(&path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Corrupt(format!(
                "cannot switch {} to WAL (got {mode})",
                path.display()
            )));
        }
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        migrations::migrate(&mut conn)?;
        for suffix in ["-wal", "-shm"] {
            let side = sidecar(&path, suffix);
            if side.exists() {
                std::fs::set_permissions(&side, Permissions::from_mode(0o600))
                    .map_err(|e| StoreError::io(&side, e))?;
            }
        }
        // The writer's own statements (BEGIN, SAVEPOINT, RELEASE, ROLLBACK TO, ROLLBACK,
        // COMMIT) stay prepared next to the ones the jobs cache.
        conn.set_prepared_statement_cache_capacity(64);
        let reader = open_reader(&path)?;
        Ok((
            Self {
                path,
                readers: Mutex::new(vec![reader]),
                _lock: lock,
            },
            SqliteWriter(conn),
        ))
    }

    /// Runs `f` on a read-only connection to a database file that is not a live store (a
    /// backup): no migration, no lock, no WAL switch. Refuses a schema newer than this build.
    pub(crate) fn read_file<T, E, F>(path: &Path, f: F) -> Result<T, E>
    where
        E: From<StoreError>,
        F: FnOnce(&mut dyn Tx) -> Result<T, E>,
    {
        if !path.is_file() {
            return Err(StoreError::Missing(path.to_path_buf()).into());
        }
        let mut conn =
            Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .map_err(StoreError::from)?;
        let found: i64 = conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(StoreError::from)?;
        let known = migrations::latest_version();
        if found > known {
            return Err(StoreError::NewerSchema { found, known }.into());
        }
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Deferred)
            .map_err(StoreError::from)?;
        let out = f(&mut SqliteTx {
            conn: &tx,
            head: &mut None,
        })?;
        tx.finish().map_err(StoreError::from)?;
        Ok(out)
    }

    /// Runs `f` on a consistent read-only snapshot. Writes through the `Tx` fail.
    ///
    /// Reads run in parallel with each other and with the writer (WAL): a long chain check
    /// never holds up token lookups.
    pub(crate) fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        E: From<StoreError>,
        F: FnOnce(&mut dyn Tx) -> Result<T, E>,
    {
        let pooled = self.readers.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut conn = match pooled {
            Some(conn) => conn,
            None => open_reader(&self.path)?,
        };
        let out = (|| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Deferred)
                .map_err(StoreError::from)?;
            let out = f(&mut SqliteTx {
                conn: &tx,
                head: &mut None,
            })?;
            tx.finish().map_err(StoreError::from)?;
            Ok(out)
        })();
        let mut pool = self.readers.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < MAX_IDLE_READERS {
            pool.push(conn);
        }
        out
    }
}

/// The writer's connection.
pub(crate) struct SqliteWriter(Connection);

impl BatchConn for SqliteWriter {
    fn begin(&mut self) -> Result<Head, StoreError> {
        self.control("BEGIN IMMEDIATE")?;
        Ok(None)
    }

    /// Prepared once and kept in the connection's cache (parsing `SAVEPOINT`/`RELEASE` for
    /// every job cost as much as the job's `INSERT`).
    fn control(&mut self, sql: &str) -> Result<(), StoreError> {
        self.0.prepare_cached(sql)?.execute([])?;
        Ok(())
    }

    fn in_transaction(&self) -> bool {
        !self.0.is_autocommit()
    }

    fn run(&mut self, head: &mut Head, run: Box<dyn FnOnce(&mut dyn Tx) -> bool + Send>) -> bool {
        run(&mut SqliteTx {
            conn: &self.0,
            head,
        })
    }
}

/// Idle read connections kept open.
const MAX_IDLE_READERS: usize = 4;

fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let reader = Connection::open(path)?;
    reader.busy_timeout(std::time::Duration::from_secs(10))?;
    reader.pragma_update(None, "query_only", true)?;
    reader.set_prepared_statement_cache_capacity(64);
    Ok(reader)
}

fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Creates `path` with mode 0600 if missing, and tightens it to 0600 if it exists.
/// SQLite gives the -wal and -shm files the database file's mode.
fn create_private(path: &Path) -> Result<(), StoreError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| StoreError::io(path, e))?;
    std::fs::set_permissions(path, Permissions::from_mode(0o600))
        .map_err(|e| StoreError::io(path, e))
}

/// [`Tx`] over a SQLite connection inside a transaction or savepoint.
struct SqliteTx<'a> {
    conn: &'a Connection,
    /// The last usage-log record's `(seq, hash)`, when known to be current in this
    /// transaction: what [`Tx::audit_last`] would read.
    head: &'a mut Option<(i64, Vec<u8>)>,
}

/// Every statement comes from the connection's cache: parsing the SQL again each time cost
/// about as much as running a small statement.
impl SqliteTx<'_> {
    fn exec<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.conn.prepare_cached(sql)?.execute(params)
    }

    fn row<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    {
        self.conn.prepare_cached(sql)?.query_row(params, f)
    }
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        format!("{what}: {e}").into(),
    )
}

fn parse_enum<T: std::str::FromStr>(row: &Row<'_>, idx: usize) -> rusqlite::Result<T>
where
    T::Err: std::fmt::Display,
{
    let s: String = row.get(idx)?;
    s.parse().map_err(|e| corrupt("enum", e))
}

fn parse_json<T: serde::de::DeserializeOwned>(row: &Row<'_>, idx: usize) -> rusqlite::Result<T> {
    let s: String = row.get(idx)?;
    serde_json::from_str(&s).map_err(|e| corrupt("json", e))
}

fn identity_row(row: &Row<'_>) -> rusqlite::Result<Identity> {
    let roles: String = row.get(2)?;
    let mut parsed = Vec::new();
    for r in roles.split(',').filter(|s| !s.is_empty()) {
        parsed.push(r.parse::<Role>().map_err(|e| corrupt("role", e))?);
    }
    Ok(Identity {
        id: row.get(0)?,
        name: row.get(1)?,
        roles: parsed,
        disabled: row.get(3)?,
        created_at: row.get(4)?,
    })
}

fn seal_row(row: &Row<'_>) -> rusqlite::Result<Seal> {
    Ok(Seal {
        id: row.get(0)?,
        kind: parse_enum(row, 1)?,
        organisation: row.get(2)?,
        name: row.get(3)?,
        image: SealImage {
            format: parse_enum(row, 4)?,
            data: row.get(5)?,
            width_mm: row.get(6)?,
            height_mm: row.get(7)?,
        },
        es_id: row.get(8)?,
        device_serial: row.get(9)?,
        key_id: row.get(10)?,
        certificate: row.get(11)?,
        cert: CertFacts {
            organisation: row.get(12)?,
            common_name: row.get(13)?,
            serial_hex: row.get(14)?,
            not_before: row.get(15)?,
            not_after: row.get(16)?,
        },
        valid_from: row.get(17)?,
        valid_to: row.get(18)?,
        state: parse_enum(row, 19)?,
        state_changed_at: row.get(20)?,
        created_at: row.get(21)?,
        ses_seal: row.get(22)?,
    })
}

fn request_row(row: &Row<'_>) -> rusqlite::Result<StampRequest> {
    Ok(StampRequest {
        id: row.get(0)?,
        seal_id: row.get(1)?,
        requester: row.get(2)?,
        documents: parse_json(row, 3)?,
        purpose: row.get(4)?,
        origin: row.get(5)?,
        state: parse_enum(row, 6)?,
        created_at: row.get(7)?,
        expires_at: row.get(8)?,
        updated_at: row.get(9)?,
        failure: row.get(10)?,
        votes: Vec::new(),
        files: Vec::new(),
    })
}

/// Reads any column as bytes (text or blob), never failing: the chain check judges the content.
fn lenient_bytes(row: &Row<'_>, idx: usize) -> rusqlite::Result<Vec<u8>> {
    Ok(match row.get_ref(idx)? {
        ValueRef::Text(b) | ValueRef::Blob(b) => b.to_vec(),
        ValueRef::Integer(i) => i.to_string().into_bytes(),
        ValueRef::Real(f) => f.to_string().into_bytes(),
        ValueRef::Null => Vec::new(),
    })
}

fn lenient_text(row: &Row<'_>, idx: usize) -> rusqlite::Result<String> {
    Ok(String::from_utf8_lossy(&lenient_bytes(row, idx)?).into_owned())
}

fn lenient_int(row: &Row<'_>, idx: usize) -> rusqlite::Result<i64> {
    Ok(match row.get_ref(idx)? {
        ValueRef::Integer(i) => i,
        _ => i64::MIN,
    })
}

fn audit_row(row: &Row<'_>) -> rusqlite::Result<AuditRow> {
    Ok(AuditRow {
        seq: row.get(0)?,
        at_ms: lenient_int(row, 1)?,
        kind: lenient_text(row, 2)?,
        actor: lenient_text(row, 3)?,
        seal_id: match row.get_ref(4)? {
            ValueRef::Null => None,
            ValueRef::Integer(i) => Some(i),
            _ => Some(i64::MIN),
        },
        detail: lenient_text(row, 5)?,
        prev_hash: lenient_bytes(row, 6)?,
        hash: lenient_bytes(row, 7)?,
    })
}

impl SqliteTx<'_> {
    fn votes(&self, request: RequestId) -> StoreResult<Vec<Vote>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT approver, approve, comment, at FROM votes WHERE request_id = ?1 ORDER BY at, approver",
        )?;
        let rows = stmt.query_map([request], |row| {
            Ok(Vote {
                approver: row.get(0)?,
                approve: row.get(1)?,
                comment: row.get(2)?,
                at: row.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn with_votes(&self, mut requests: Vec<StampRequest>) -> StoreResult<Vec<StampRequest>> {
        for r in &mut requests {
            r.votes = self.votes(r.id)?;
            r.files = self.file_rows(r.id)?.into_iter().map(|f| f.file).collect();
        }
        Ok(requests)
    }

    fn file_rows(&self, request: RequestId) -> StoreResult<Vec<StampFileRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT position, name, size, sm3, mode, placements, plan, upload_path, sealed_path, \
             upload_offset, format FROM stamp_files WHERE request_id = ?1 ORDER BY position",
        )?;
        let rows = stmt.query_map([request], |row| {
            let sm3: String = row.get(3)?;
            let mode: String = row.get(4)?;
            let sealed: Option<String> = row.get(8)?;
            let format: String = row.get(10)?;
            Ok(StampFileRow {
                file: StampFile {
                    n: row.get(0)?,
                    name: row.get(1)?,
                    format: format
                        .parse()
                        .map_err(|e| corrupt("stamp_files.format", e))?,
                    size: row.get::<_, i64>(2)?.max(0) as u64,
                    sm3: Digest32::from_hex(&sm3).map_err(|e| corrupt("stamp_files.sm3", e))?,
                    mode: serde_json::from_value(serde_json::Value::String(mode))
                        .map_err(|e| corrupt("stamp_files.mode", e))?,
                    placements: parse_json(row, 5)?,
                    plan: parse_json(row, 6)?,
                    sealed: sealed.is_some(),
                },
                upload: row.get(7)?,
                offset: row.get::<_, i64>(9)?.max(0) as u64,
                sealed,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

impl Tx for SqliteTx<'_> {
    fn insert_identity(
        &mut self,
        name: &str,
        roles: &[Role],
        token_hash: &[u8],
        at: Timestamp,
    ) -> StoreResult<IdentityId> {
        self.exec(
            "INSERT INTO identities (name, roles, token_hash, disabled, created_at) VALUES (?1, ?2, ?3, 0, ?4)",
            params![name, roles_text(roles), token_hash, at],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    fn identity(&mut self, id: IdentityId) -> StoreResult<Option<Identity>> {
        let sql = format!("SELECT {IDENTITY_COLS} FROM identities WHERE id = ?1");
        Ok(self.row(&sql, [id], identity_row).optional()?)
    }

    fn identity_by_name(&mut self, name: &str) -> StoreResult<Option<Identity>> {
        let sql = format!("SELECT {IDENTITY_COLS} FROM identities WHERE name = ?1");
        Ok(self.row(&sql, [name], identity_row).optional()?)
    }

    fn identity_by_token_hash(&mut self, hash: &[u8]) -> StoreResult<Option<(Identity, Vec<u8>)>> {
        let sql =
            format!("SELECT {IDENTITY_COLS}, token_hash FROM identities WHERE token_hash = ?1");
        let mut stmt = self.conn.prepare_cached(&sql)?;
        Ok(stmt
            .query_row([hash], |row| Ok((identity_row(row)?, row.get(5)?)))
            .optional()?)
    }

    fn identities(&mut self) -> StoreResult<Vec<Identity>> {
        let sql = format!("SELECT {IDENTITY_COLS} FROM identities ORDER BY name");
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([], identity_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn set_identity_disabled(&mut self, id: IdentityId, disabled: bool) -> StoreResult<()> {
        self.exec(
            "UPDATE identities SET disabled = ?2 WHERE id = ?1",
            params![id, disabled],
        )?;
        Ok(())
    }

    fn set_token_hash(&mut self, id: IdentityId, hash: &[u8]) -> StoreResult<()> {
        self.exec(
            "UPDATE identities SET token_hash = ?2 WHERE id = ?1",
            params![id, hash],
        )?;
        Ok(())
    }

    fn insert_seal(&mut self, s: &Seal) -> StoreResult<SealId> {
        self.exec(
            "INSERT INTO seals (kind, organisation, name, image_format, image, width_mm, height_mm, \
             es_id, device_serial, key_id, certificate, cert_org, cert_cn, cert_serial, \
             cert_not_before, cert_not_after, valid_from, valid_to, state, state_changed_at, \
             created_at, ses_seal) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, \
             ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)",
            params![
                s.kind.as_str(),
                s.organisation,
                s.name,
                s.image.format.as_str(),
                s.image.data,
                s.image.width_mm,
                s.image.height_mm,
                s.es_id,
                s.device_serial,
                s.key_id,
                s.certificate,
                s.cert.organisation,
                s.cert.common_name,
                s.cert.serial_hex,
                s.cert.not_before,
                s.cert.not_after,
                s.valid_from,
                s.valid_to,
                s.state.as_str(),
                s.state_changed_at,
                s.created_at,
                s.ses_seal,
            ],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    fn seal(&mut self, id: SealId) -> StoreResult<Option<Seal>> {
        let sql = format!("SELECT {SEAL_COLS} FROM seals WHERE id = ?1");
        Ok(self.row(&sql, [id], seal_row).optional()?)
    }

    fn seals(&mut self) -> StoreResult<Vec<Seal>> {
        let sql = format!("SELECT {SEAL_COLS} FROM seals ORDER BY id");
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([], seal_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn active_legal_name_seals(&mut self) -> StoreResult<Vec<(SealId, String)>> {
        let mut statement = self.conn.prepare(
            "SELECT id, organisation FROM seals WHERE kind = 'legal-name' AND state = 'active' ORDER BY id",
        )?;
        let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn set_seal_state(&mut self, id: SealId, state: SealState, at: Timestamp) -> StoreResult<()> {
        self.exec(
            "UPDATE seals SET state = ?2, state_changed_at = ?3 WHERE id = ?1",
            params![id, state.as_str(), at],
        )?;
        Ok(())
    }

    fn set_ses_seal(&mut self, id: SealId, der: &[u8]) -> StoreResult<()> {
        self.exec(
            "UPDATE seals SET ses_seal = ?2 WHERE id = ?1",
            params![id, der],
        )?;
        Ok(())
    }

    fn insert_seal_event(&mut self, e: &SealEvent) -> StoreResult<()> {
        self.exec(
            "INSERT INTO seal_events (seal_id, from_state, to_state, reason, actor, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![e.seal_id, e.from.map(|s| s.as_str()), e.to.as_str(), e.reason, e.actor, e.at],
        )?;
        Ok(())
    }

    fn seal_events(&mut self, id: SealId) -> StoreResult<Vec<SealEvent>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seal_id, from_state, to_state, reason, actor, at FROM seal_events WHERE seal_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([id], |row| {
            let from: Option<String> = row.get(1)?;
            Ok(SealEvent {
                seal_id: row.get(0)?,
                from: from
                    .map(|s| s.parse().map_err(|e| corrupt("seal state", e)))
                    .transpose()?,
                to: parse_enum(row, 2)?,
                reason: row.get(3)?,
                actor: row.get(4)?,
                at: row.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn put_policy(&mut self, policy: &Policy, at: Timestamp) -> StoreResult<()> {
        self.exec(
            "INSERT INTO policies (seal_id, body, updated_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT(seal_id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
            params![policy.seal_id, to_json(policy)?, at],
        )?;
        Ok(())
    }

    fn policy(&mut self, seal_id: SealId) -> StoreResult<Option<Policy>> {
        Ok(self
            .conn
            .query_row(
                "SELECT body FROM policies WHERE seal_id = ?1",
                [seal_id],
                |row| parse_json(row, 0),
            )
            .optional()?)
    }

    fn insert_request(&mut self, r: &StampRequest) -> StoreResult<RequestId> {
        self.exec(
            "INSERT INTO stamp_requests (seal_id, requester, documents, doc_count, purpose, origin, \
             state, created_at, expires_at, updated_at, failure) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                r.seal_id,
                r.requester,
                to_json(&r.documents)?,
                r.documents.len() as i64,
                r.purpose,
                r.origin,
                r.state.as_str(),
                r.created_at,
                r.expires_at,
                r.updated_at,
                r.failure,
            ],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    fn request(&mut self, id: RequestId) -> StoreResult<Option<StampRequest>> {
        let sql = format!("SELECT {REQUEST_COLS} FROM stamp_requests WHERE id = ?1");
        let found = self.row(&sql, [id], request_row).optional()?;
        Ok(match found {
            Some(r) => self.with_votes(vec![r])?.pop(),
            None => None,
        })
    }

    fn requests_in_state(&mut self, state: RequestState) -> StoreResult<Vec<StampRequest>> {
        let sql = format!("SELECT {REQUEST_COLS} FROM stamp_requests WHERE state = ?1 ORDER BY id");
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt
            .query_map([state.as_str()], request_row)?
            .collect::<Result<Vec<_>, _>>()?;
        self.with_votes(rows)
    }

    fn requests_due(&mut self, now: Timestamp) -> StoreResult<Vec<RequestId>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id FROM stamp_requests WHERE state IN ('pending', 'approved') \
             AND expires_at <= ?1 ORDER BY id",
        )?;
        let ids = stmt.query_map([now], |row| row.get(0))?;
        Ok(ids.collect::<Result<_, _>>()?)
    }

    fn set_request_state(
        &mut self,
        id: RequestId,
        state: RequestState,
        at: Timestamp,
        failure: Option<&str>,
    ) -> StoreResult<()> {
        self.exec(
            "UPDATE stamp_requests SET state = ?2, updated_at = ?3, failure = COALESCE(?4, failure) WHERE id = ?1",
            params![id, state.as_str(), at, failure],
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
        let n = self.exec(
            "UPDATE stamp_requests SET claimed_by = ?2, lease_until = ?4 WHERE id = ?1 \
             AND state = 'approved' AND (claimed_by IS NULL OR lease_until < ?3)",
            params![id, owner, now_ms, until_ms],
        )?;
        Ok(n == 1)
    }

    fn renew_claim(&mut self, id: RequestId, owner: &str, until_ms: i64) -> StoreResult<bool> {
        let n = self.exec(
            "UPDATE stamp_requests SET lease_until = ?3 WHERE id = ?1 AND claimed_by = ?2",
            params![id, owner, until_ms],
        )?;
        Ok(n == 1)
    }

    fn request_claim(&mut self, id: RequestId) -> StoreResult<Option<(String, i64)>> {
        Ok(self
            .row(
                "SELECT claimed_by, COALESCE(lease_until, 0) FROM stamp_requests \
                 WHERE id = ?1 AND claimed_by IS NOT NULL",
                [id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?)
    }

    fn claimable_requests(
        &mut self,
        seal_id: SealId,
        now_ms: i64,
        limit: usize,
    ) -> StoreResult<Vec<RequestId>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id FROM stamp_requests WHERE state = 'approved' AND seal_id = ?1 \
             AND (claimed_by IS NULL OR lease_until < ?2) ORDER BY id LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![seal_id, now_ms, limit as i64], |row| row.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn release_claims(&mut self) -> StoreResult<u64> {
        let n = self.exec(
            "UPDATE stamp_requests SET claimed_by = NULL, lease_until = NULL \
             WHERE claimed_by IS NOT NULL",
            [],
        )?;
        Ok(n as u64)
    }

    fn insert_vote(&mut self, request: RequestId, v: &Vote) -> StoreResult<()> {
        self.exec(
            "INSERT INTO votes (request_id, approver, approve, comment, at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![request, v.approver, v.approve, v.comment, v.at],
        )?;
        Ok(())
    }

    fn insert_signatures(
        &mut self,
        request: RequestId,
        signatures: &[StoredSignature],
    ) -> StoreResult<()> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO stamp_signatures (request_id, position, digest, name, ses_signature) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for (position, s) in signatures.iter().enumerate() {
            stmt.execute(params![
                request,
                position as i64,
                s.digest.to_string(),
                s.name,
                s.ses_signature
            ])?;
        }
        Ok(())
    }

    fn signatures(&mut self, request: RequestId) -> StoreResult<Vec<StoredSignature>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT digest, name, ses_signature FROM stamp_signatures WHERE request_id = ?1 \
             ORDER BY position",
        )?;
        let rows = stmt.query_map([request], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, Vec<u8>>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (digest, name, ses_signature) = row?;
            let digest = Digest32::from_hex(&digest)
                .map_err(|e| StoreError::Corrupt(format!("stamp_signatures.digest: {e}")))?;
            out.push(StoredSignature {
                digest,
                name,
                ses_signature,
            });
        }
        Ok(out)
    }

    fn insert_files(&mut self, request: RequestId, files: &[StampFileRow]) -> StoreResult<()> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO stamp_files (request_id, position, name, size, sm3, mode, placements, \
             plan, upload_path, sealed_path, upload_offset, format) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?;
        for f in files {
            let mode = serde_json::to_value(f.file.mode)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            stmt.execute(params![
                request,
                f.file.n,
                f.file.name,
                f.file.size as i64,
                f.file.sm3.to_string(),
                mode,
                to_json(&f.file.placements)?,
                to_json(&f.file.plan)?,
                f.upload,
                f.sealed,
                f.offset as i64,
                f.file.format.as_str(),
            ])?;
        }
        Ok(())
    }

    fn files(&mut self, request: RequestId) -> StoreResult<Vec<StampFileRow>> {
        self.file_rows(request)
    }

    fn set_file_sealed(&mut self, request: RequestId, n: u32, sealed: &str) -> StoreResult<()> {
        self.exec(
            "UPDATE stamp_files SET sealed_path = ?3 WHERE request_id = ?1 AND position = ?2",
            params![request, n, sealed],
        )?;
        Ok(())
    }

    fn clear_file_upload(&mut self, request: RequestId, n: u32) -> StoreResult<()> {
        self.exec(
            "UPDATE stamp_files SET upload_path = NULL WHERE request_id = ?1 AND position = ?2",
            params![request, n],
        )?;
        Ok(())
    }

    fn final_uploads(&mut self) -> StoreResult<Vec<(RequestId, u32, String)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT f.request_id, f.position, f.upload_path FROM stamp_files f \
             JOIN stamp_requests r ON r.id = f.request_id \
             WHERE f.upload_path IS NOT NULL AND r.state NOT IN ('pending', 'approved') \
             ORDER BY f.request_id, f.position",
        )?;
        let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn document_paths(&mut self) -> StoreResult<Vec<String>> {
        let mut stmt = self.conn.prepare_cached(DOCUMENT_PATHS)?;
        let rows = stmt.query_map([], |row| row.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn documents_signed_since(&mut self, seal_id: SealId, since: Timestamp) -> StoreResult<u64> {
        let n: i64 = self.row(
            "SELECT COALESCE(SUM(doc_count), 0) FROM stamp_requests WHERE seal_id = ?1 \
             AND state = 'signed' AND updated_at >= ?2",
            params![seal_id, since],
            |row| row.get(0),
        )?;
        Ok(n.max(0) as u64)
    }

    fn request_counts(&mut self) -> StoreResult<Vec<(String, u64)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT state, COUNT(*) FROM stamp_requests GROUP BY state")?;
        let rows = stmt.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?.max(0) as u64,
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn pending_counts(
        &mut self,
        seal_id: SealId,
        requester: IdentityId,
        now: Timestamp,
    ) -> StoreResult<(u64, u64)> {
        let (mine, seal): (i64, i64) = self.conn.query_row(
            "SELECT COALESCE(SUM(requester = ?2), 0), COALESCE(SUM(seal_id = ?1), 0) \
             FROM stamp_requests WHERE state = 'pending' AND expires_at > ?3 \
             AND (requester = ?2 OR seal_id = ?1)",
            params![seal_id, requester, now],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
        Ok((mine.max(0) as u64, seal.max(0) as u64))
    }

    fn audit_last(&mut self) -> StoreResult<Option<(i64, Vec<u8>)>> {
        if let Some(head) = self.head.as_ref() {
            return Ok(Some(head.clone()));
        }
        let mut stmt = self
            .conn
            .prepare_cached("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")?;
        let last: Option<(i64, Vec<u8>)> = stmt
            .query_row([], |row| Ok((row.get(0)?, lenient_bytes(row, 1)?)))
            .optional()?;
        self.head.clone_from(&last);
        Ok(last)
    }

    fn insert_audit(&mut self, r: &AuditRow) -> StoreResult<()> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO audit_log (seq, at_ms, kind, actor, seal_id, detail, prev_hash, hash) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        // The head stays known only when this row is the one right after it.
        let head = self.head.take();
        stmt.execute(params![
            r.seq,
            r.at_ms,
            r.kind,
            r.actor,
            r.seal_id,
            r.detail,
            r.prev_hash,
            r.hash
        ])?;
        if matches!(head, Some((seq, _)) if r.seq == seq + 1) {
            *self.head = Some((r.seq, r.hash.clone()));
        }
        Ok(())
    }

    fn audit_rows(&mut self, after_seq: i64, limit: usize) -> StoreResult<Vec<AuditRow>> {
        let sql =
            format!("SELECT {AUDIT_COLS} FROM audit_log WHERE seq > ?1 ORDER BY seq LIMIT ?2");
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![after_seq, limit as i64], audit_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn audit_rows_of_kind(
        &mut self,
        kind: &str,
        after_seq: i64,
        limit: usize,
    ) -> StoreResult<Vec<AuditRow>> {
        let sql = format!(
            "SELECT {AUDIT_COLS} FROM audit_log WHERE kind = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![kind, after_seq, limit as i64], audit_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn audit_last_for_device(&mut self, kind: &str, serial: &str) -> StoreResult<Option<i64>> {
        Ok(self
            .row(
                "SELECT at_ms FROM audit_log WHERE kind = ?1 \
                 AND json_extract(detail, '$.device_serial') = ?2 ORDER BY seq DESC LIMIT 1",
                params![kind, serial],
                |row| row.get(0),
            )
            .optional()?)
    }

    fn audit_rows_between(
        &mut self,
        from_ms: i64,
        to_ms: i64,
        after_seq: i64,
        limit: usize,
    ) -> StoreResult<Vec<AuditRow>> {
        let sql = format!(
            "SELECT {AUDIT_COLS} FROM audit_log WHERE seq > ?1 AND at_ms >= ?2 AND at_ms < ?3 \
             ORDER BY seq LIMIT ?4"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![after_seq, from_ms, to_ms, limit as i64], audit_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn audit_row(&mut self, seq: i64) -> StoreResult<Option<AuditRow>> {
        let sql = format!("SELECT {AUDIT_COLS} FROM audit_log WHERE seq = ?1");
        Ok(self.row(&sql, [seq], audit_row).optional()?)
    }

    fn audit_last_before(&mut self, before_ms: i64) -> StoreResult<Option<AuditRow>> {
        let sql = format!(
            "SELECT {AUDIT_COLS} FROM audit_log WHERE seq < COALESCE((SELECT MIN(seq) FROM audit_log \
             WHERE at_ms >= ?1), 9223372036854775807) ORDER BY seq DESC LIMIT 1"
        );
        Ok(self
            .conn
            .query_row(&sql, [before_ms], audit_row)
            .optional()?)
    }

    fn audit_anchor(&mut self) -> StoreResult<Option<AuditAnchor>> {
        Ok(self
            .conn
            .query_row(
                "SELECT seq, hash FROM audit_anchor WHERE id = 1",
                [],
                |row| {
                    Ok(AuditAnchor {
                        seq: row.get(0)?,
                        hash: lenient_bytes(row, 1)?,
                    })
                },
            )
            .optional()?)
    }

    fn set_audit_anchor(&mut self, a: &AuditAnchor) -> StoreResult<()> {
        *self.head = None;
        self.exec(
            "INSERT INTO audit_anchor (id, seq, hash) VALUES (1, ?1, ?2) \
             ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
            params![a.seq, a.hash],
        )?;
        Ok(())
    }

    fn custody(&mut self, seal_id: SealId) -> StoreResult<Option<Custody>> {
        Ok(self
            .conn
            .query_row(
                "SELECT seal_id, custodian, assigned_by, assigned_at, pin_change_required \
                 FROM seal_custody WHERE seal_id = ?1",
                [seal_id],
                |row| {
                    Ok(Custody {
                        seal_id: row.get(0)?,
                        custodian: row.get(1)?,
                        assigned_by: row.get(2)?,
                        assigned_at: row.get(3)?,
                        pin_change_required: row.get(4)?,
                    })
                },
            )
            .optional()?)
    }

    fn put_custody(&mut self, c: &Custody) -> StoreResult<()> {
        self.exec(
            "INSERT INTO seal_custody (seal_id, custodian, assigned_by, assigned_at, pin_change_required) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(seal_id) DO UPDATE SET custodian = ?2, \
             assigned_by = ?3, assigned_at = ?4, pin_change_required = ?5",
            params![c.seal_id, c.custodian, c.assigned_by, c.assigned_at, c.pin_change_required],
        )?;
        Ok(())
    }

    fn custody_all(&mut self) -> StoreResult<Vec<(Custody, String)>> {
        let mut stmt = self.conn.prepare(
            "SELECT c.seal_id, c.custodian, c.assigned_by, c.assigned_at, c.pin_change_required, \
             s.device_serial FROM seal_custody c JOIN seals s ON s.id = c.seal_id ORDER BY c.seal_id",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok((
                Custody {
                    seal_id: row.get(0)?,
                    custodian: row.get(1)?,
                    assigned_by: row.get(2)?,
                    assigned_at: row.get(3)?,
                    pin_change_required: row.get(4)?,
                },
                row.get(5)?,
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn clear_custodian_pin_change(
        &mut self,
        device_serial: &str,
        custodian: &str,
    ) -> StoreResult<u64> {
        let n = self.exec(
            "UPDATE seal_custody SET pin_change_required = 0 WHERE pin_change_required = 1 \
             AND custodian = ?2 AND seal_id IN (SELECT id FROM seals WHERE device_serial = ?1)",
            params![device_serial, custodian],
        )?;
        Ok(n as u64)
    }

    fn clear_device_pin_change(&mut self, device_serial: &str) -> StoreResult<()> {
        self.conn.execute(
            "DELETE FROM device_pin_change WHERE device_serial = ?1",
            [device_serial],
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
            "INSERT INTO device_pin_change (device_serial, reason, required_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT(device_serial) DO UPDATE SET reason = ?2, required_at = ?3",
            params![device_serial, reason, at],
        )?;
        Ok(())
    }

    fn device_pin_change(
        &mut self,
        device_serial: &str,
    ) -> StoreResult<Option<(String, Timestamp)>> {
        Ok(self
            .conn
            .query_row(
                "SELECT reason, required_at FROM device_pin_change WHERE device_serial = ?1",
                [device_serial],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?)
    }

    fn delete_audit_through(&mut self, through: i64) -> StoreResult<u64> {
        *self.head = None;
        let n = self
            .conn
            .execute("DELETE FROM audit_log WHERE seq <= ?1", [through])?;
        Ok(n as u64)
    }

    fn insert_ops(&mut self, r: &OpsRow) -> StoreResult<i64> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO ops_log (at_ms, kind, actor, seal_id, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        stmt.execute(params![r.at_ms, r.kind, r.actor, r.seal_id, r.detail])?;
        Ok(self.conn.last_insert_rowid())
    }

    fn ops_rows(
        &mut self,
        kind: Option<&str>,
        after_id: i64,
        limit: usize,
    ) -> StoreResult<Vec<OpsRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, at_ms, kind, actor, seal_id, detail FROM ops_log \
             WHERE id > ?1 AND (?2 IS NULL OR kind = ?2) ORDER BY id LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![after_id, kind, limit as i64], |row| {
            Ok(OpsRow {
                id: row.get(0)?,
                at_ms: row.get(1)?,
                kind: row.get(2)?,
                actor: row.get(3)?,
                seal_id: row.get(4)?,
                detail: row.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn delete_ops_before(&mut self, before_ms: i64) -> StoreResult<u64> {
        let n = self
            .conn
            .execute("DELETE FROM ops_log WHERE at_ms < ?1", [before_ms])?;
        Ok(n as u64)
    }
}
