//! Versioned schema migrations, tracked in SQLite's `user_version`.
//!
//! Each entry upgrades the schema by one version inside one transaction. Never edit a released
//! migration: add a new one.

use rusqlite::Connection;

use super::StoreError;

/// The migrations in order; index `i` upgrades version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: identities, seals, policies, stamp requests, votes, usage log.
    r#"
CREATE TABLE identities (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    roles       TEXT NOT NULL,
    token_hash  BLOB UNIQUE,
    disabled    INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL
);
CREATE TABLE seals (
    id               INTEGER PRIMARY KEY,
    kind             TEXT NOT NULL,
    organisation     TEXT NOT NULL,
    name             TEXT NOT NULL,
    image_format     TEXT NOT NULL,
    image            BLOB NOT NULL,
    width_mm         REAL NOT NULL,
    height_mm        REAL NOT NULL,
    es_id            TEXT NOT NULL UNIQUE,
    device_serial    TEXT NOT NULL,
    key_id           TEXT NOT NULL,
    certificate      BLOB NOT NULL,
    cert_org         TEXT,
    cert_cn          TEXT NOT NULL,
    cert_serial      TEXT NOT NULL,
    cert_not_before  INTEGER NOT NULL,
    cert_not_after   INTEGER NOT NULL,
    valid_from       INTEGER NOT NULL,
    valid_to         INTEGER NOT NULL,
    state            TEXT NOT NULL,
    state_changed_at INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    ses_seal         BLOB
);
CREATE UNIQUE INDEX seals_one_active_legal_name ON seals(organisation)
    WHERE kind = 'legal-name' AND state = 'active';
CREATE TABLE seal_events (
    id          INTEGER PRIMARY KEY,
    seal_id     INTEGER NOT NULL REFERENCES seals(id),
    from_state  TEXT,
    to_state    TEXT NOT NULL,
    reason      TEXT NOT NULL,
    actor       TEXT NOT NULL,
    at          INTEGER NOT NULL
);
CREATE INDEX seal_events_seal ON seal_events(seal_id);
CREATE TABLE policies (
    seal_id     INTEGER PRIMARY KEY REFERENCES seals(id),
    body        TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE TABLE stamp_requests (
    id          INTEGER PRIMARY KEY,
    seal_id     INTEGER NOT NULL REFERENCES seals(id),
    requester   INTEGER NOT NULL REFERENCES identities(id),
    documents   TEXT NOT NULL,
    doc_count   INTEGER NOT NULL,
    purpose     TEXT NOT NULL,
    origin      TEXT,
    state       TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    failure     TEXT
);
CREATE INDEX stamp_requests_state ON stamp_requests(state);
CREATE INDEX stamp_requests_seal_created ON stamp_requests(seal_id, created_at);
CREATE TABLE votes (
    request_id  INTEGER NOT NULL REFERENCES stamp_requests(id),
    approver    INTEGER NOT NULL REFERENCES identities(id),
    approve     INTEGER NOT NULL,
    comment     TEXT NOT NULL,
    at          INTEGER NOT NULL,
    PRIMARY KEY (request_id, approver)
);
CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY,
    at_ms       INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    actor       TEXT NOT NULL,
    seal_id     INTEGER,
    detail      TEXT NOT NULL,
    prev_hash   BLOB NOT NULL,
    hash        BLOB NOT NULL
);
CREATE INDEX audit_log_at ON audit_log(at_ms);
CREATE TABLE audit_anchor (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    seq         INTEGER NOT NULL,
    hash        BLOB NOT NULL
);
"#,
    // 2: the usage log is append-only, and records younger than 3 years cannot be deleted,
    // whoever asks (defence in depth: the library refuses first, against its own clock).
    r#"
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'usage-log records cannot be changed');
END;
CREATE TRIGGER audit_log_retention BEFORE DELETE ON audit_log
WHEN old.at_ms > CAST(strftime('%s', 'now', '-3 years') AS INTEGER) * 1000
BEGIN
    SELECT RAISE(ABORT, 'usage-log records younger than 3 years cannot be deleted');
END;
"#,
    // 3: who holds each seal, and whether that custodian must change the PIN before stamping.
    r#"
CREATE TABLE seal_custody (
    seal_id              INTEGER PRIMARY KEY REFERENCES seals(id),
    custodian            TEXT NOT NULL,
    assigned_by          TEXT NOT NULL,
    assigned_at          INTEGER NOT NULL,
    pin_change_required  INTEGER NOT NULL DEFAULT 0
);
"#,
    // 4: the SES_Signatures of signed requests, written in the transaction that marks the
    // request signed (one durable commit per stamp; they travel with backups).
    r#"
CREATE TABLE stamp_signatures (
    request_id     INTEGER NOT NULL REFERENCES stamp_requests(id),
    position       INTEGER NOT NULL,
    digest         TEXT NOT NULL,
    name           TEXT NOT NULL,
    ses_signature  BLOB NOT NULL,
    PRIMARY KEY (request_id, position)
);
"#,
    // 5: the operational log: refusals, refusal summaries and verifications, outside the hash
    // chain. Append-only like the usage log, but prunable after its own, shorter retention
    // (`[audit] operational_retention_days`, at least one day: the floor is enforced here too).
    r#"
CREATE TABLE ops_log (
    id          INTEGER PRIMARY KEY,
    at_ms       INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    actor       TEXT NOT NULL,
    seal_id     INTEGER,
    detail      TEXT NOT NULL
);
CREATE INDEX ops_log_at ON ops_log(at_ms);
CREATE INDEX ops_log_kind ON ops_log(kind, id);
CREATE TRIGGER ops_log_no_update BEFORE UPDATE ON ops_log
BEGIN
    SELECT RAISE(ABORT, 'operational records cannot be changed');
END;
CREATE TRIGGER ops_log_retention BEFORE DELETE ON ops_log
WHEN old.at_ms > CAST(strftime('%s', 'now', '-1 day') AS INTEGER) * 1000
BEGIN
    SELECT RAISE(ABORT, 'operational records younger than a day cannot be deleted');
END;
"#,
    // 6: tokens whose user PIN was set by someone other than the custodian (the security
    // officer's unblock): every seal whose key is on the token refuses to stamp until the
    // custodian changes the PIN, whether or not the seal has a custody record.
    r#"
CREATE TABLE device_pin_change (
    device_serial  TEXT PRIMARY KEY,
    reason         TEXT NOT NULL,
    required_at    INTEGER NOT NULL
);
"#,
    // 7: usage-log records by kind, newest first reachable: a token's last PIN change and
    // `GET /v1/audit?kind=` read only records of that kind, not the whole log.
    r#"
CREATE INDEX audit_log_kind ON audit_log(kind, seq);
"#,
    // 8: OFD documents uploaded with a stamp request: what approvers saw (name, size, SM3, page
    // count, placements resolved), and where the upload (one file per request, the documents
    // back to back: the file and this document's offset in it) and the sealed file are kept,
    // relative to the store's documents directory (`<store>.documents/`).
    r#"
CREATE TABLE stamp_files (
    request_id   INTEGER NOT NULL REFERENCES stamp_requests(id),
    position     INTEGER NOT NULL,
    name         TEXT NOT NULL,
    size         INTEGER NOT NULL,
    sm3          TEXT NOT NULL,
    mode         TEXT NOT NULL,
    placements   TEXT NOT NULL,
    plan         TEXT NOT NULL,
    upload_path  TEXT,
    upload_offset INTEGER NOT NULL DEFAULT 0,
    sealed_path  TEXT,
    PRIMARY KEY (request_id, position)
);
"#,
    // 9: uploaded documents are OFD or PDF (recognised by their content at upload).
    r#"
ALTER TABLE stamp_files ADD COLUMN format TEXT NOT NULL DEFAULT 'ofd';
"#,
    // 10: which node signs an approved request, and until when its claim holds (a lease: on
    // PostgreSQL another node takes the request over after it runs out).
    r#"
ALTER TABLE stamp_requests ADD COLUMN claimed_by TEXT;
ALTER TABLE stamp_requests ADD COLUMN lease_until INTEGER;
"#,
];

/// The schema version this build writes.
pub fn latest_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Brings the schema up to [`latest_version`]; refuses a store written by a newer build.
pub fn migrate(conn: &mut Connection) -> Result<i64, StoreError> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    let known = latest_version();
    if found > known {
        return Err(StoreError::NewerSchema { found, known });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)?;
        tx.commit()?;
    }
    Ok(known)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_a_fresh_store_and_refuses_a_newer_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut conn = Connection::open(&path).unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), latest_version());
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, latest_version());
        // Idempotent.
        assert_eq!(migrate(&mut conn).unwrap(), latest_version());
        conn.pragma_update(None, "user_version", latest_version() + 1)
            .unwrap();
        assert!(matches!(
            migrate(&mut conn),
            Err(StoreError::NewerSchema { .. })
        ));
    }

    #[test]
    fn a_kind_is_read_through_its_index_not_the_whole_log() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("s.db")).unwrap();
        migrate(&mut conn).unwrap();
        let plan: Vec<String> = conn
            .prepare(
                "EXPLAIN QUERY PLAN SELECT at_ms FROM audit_log WHERE kind = 'pin-change' \
                 AND json_extract(detail, '$.device_serial') = 'T1' ORDER BY seq DESC LIMIT 1",
            )
            .unwrap()
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter()
                .any(|p| p.contains("USING INDEX audit_log_kind")),
            "{plan:?}"
        );
    }

    #[test]
    fn the_database_itself_refuses_edits_and_early_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("s.db")).unwrap();
        migrate(&mut conn).unwrap();
        let now_ms = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
        let old_ms = now_ms - 4 * 366 * 86_400_000;
        for (seq, at) in [(1, old_ms), (2, now_ms)] {
            conn.execute(
                "INSERT INTO audit_log VALUES (?1, ?2, 'note', 'a', NULL, '{}', x'00', x'00')",
                rusqlite::params![seq, at],
            )
            .unwrap();
        }
        let err = conn
            .execute("UPDATE audit_log SET actor = 'b' WHERE seq = 1", [])
            .unwrap_err();
        assert!(err.to_string().contains("cannot be changed"), "{err}");
        let err = conn
            .execute("DELETE FROM audit_log WHERE seq = 2", [])
            .unwrap_err();
        assert!(err.to_string().contains("younger than 3 years"), "{err}");
        assert_eq!(
            conn.execute("DELETE FROM audit_log WHERE seq = 1", [])
                .unwrap(),
            1
        );
    }
}
