//! The PostgreSQL schema: versioned migrations tracked in `seald_schema`, applied under an
//! advisory lock so nodes starting together migrate once.
//!
//! Version 1 is the SQLite schema at its version 10 (same tables, PostgreSQL types), plus the
//! usage log's head row: every record must extend it (a trigger checks sequence and previous
//! hash), so the chain cannot fork whichever node appends.

use tokio_postgres::Client;

use super::block_on;
use crate::store::StoreError;

/// The migrations in order; index `i` upgrades version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE identities (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    roles       TEXT NOT NULL,
    token_hash  BYTEA UNIQUE,
    disabled    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  BIGINT NOT NULL
);
CREATE TABLE seals (
    id               BIGSERIAL PRIMARY KEY,
    kind             TEXT NOT NULL,
    organisation     TEXT NOT NULL,
    name             TEXT NOT NULL,
    image_format     TEXT NOT NULL,
    image            BYTEA NOT NULL,
    width_mm         DOUBLE PRECISION NOT NULL,
    height_mm        DOUBLE PRECISION NOT NULL,
    es_id            TEXT NOT NULL UNIQUE,
    device_serial    TEXT NOT NULL,
    key_id           TEXT NOT NULL,
    certificate      BYTEA NOT NULL,
    cert_org         TEXT,
    cert_cn          TEXT NOT NULL,
    cert_serial      TEXT NOT NULL,
    cert_not_before  BIGINT NOT NULL,
    cert_not_after   BIGINT NOT NULL,
    valid_from       BIGINT NOT NULL,
    valid_to         BIGINT NOT NULL,
    state            TEXT NOT NULL,
    state_changed_at BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    ses_seal         BYTEA
);
CREATE UNIQUE INDEX seals_one_active_legal_name ON seals(organisation)
    WHERE kind = 'legal-name' AND state = 'active';
CREATE TABLE seal_events (
    id          BIGSERIAL PRIMARY KEY,
    seal_id     BIGINT NOT NULL REFERENCES seals(id),
    from_state  TEXT,
    to_state    TEXT NOT NULL,
    reason      TEXT NOT NULL,
    actor       TEXT NOT NULL,
    at          BIGINT NOT NULL
);
CREATE INDEX seal_events_seal ON seal_events(seal_id);
CREATE TABLE policies (
    seal_id     BIGINT PRIMARY KEY REFERENCES seals(id),
    body        TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE TABLE stamp_requests (
    id          BIGSERIAL PRIMARY KEY,
    seal_id     BIGINT NOT NULL REFERENCES seals(id),
    requester   BIGINT NOT NULL REFERENCES identities(id),
    documents   TEXT NOT NULL,
    doc_count   BIGINT NOT NULL,
    purpose     TEXT NOT NULL,
    origin      TEXT,
    state       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    failure     TEXT,
    claimed_by  TEXT,
    lease_until BIGINT
);
CREATE INDEX stamp_requests_state ON stamp_requests(state);
CREATE INDEX stamp_requests_seal_created ON stamp_requests(seal_id, created_at);
CREATE TABLE votes (
    request_id  BIGINT NOT NULL REFERENCES stamp_requests(id),
    approver    BIGINT NOT NULL REFERENCES identities(id),
    approve     BOOLEAN NOT NULL,
    comment     TEXT NOT NULL,
    at          BIGINT NOT NULL,
    PRIMARY KEY (request_id, approver)
);
CREATE TABLE audit_log (
    seq         BIGINT PRIMARY KEY,
    at_ms       BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    actor       TEXT NOT NULL,
    seal_id     BIGINT,
    detail      TEXT NOT NULL,
    prev_hash   BYTEA NOT NULL,
    hash        BYTEA NOT NULL
);
CREATE INDEX audit_log_at ON audit_log(at_ms);
CREATE INDEX audit_log_kind ON audit_log(kind, seq);
CREATE TABLE audit_anchor (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    seq         BIGINT NOT NULL,
    hash        BYTEA NOT NULL
);
-- The chain head: the last record ever appended (kept when records are pruned). Every write
-- batch of every node locks it first, so appends are serialised across nodes.
CREATE TABLE audit_head (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    seq         BIGINT NOT NULL,
    hash        BYTEA NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '\x0000000000000000000000000000000000000000000000000000000000000000');
CREATE FUNCTION audit_log_extend_head() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE audit_head SET seq = NEW.seq, hash = NEW.hash
        WHERE id = 1 AND seq + 1 = NEW.seq AND hash = NEW.prev_hash;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'usage-log record % does not extend the chain head (the chain cannot fork)', NEW.seq;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER audit_log_append BEFORE INSERT ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_extend_head();
CREATE FUNCTION audit_log_refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'usage-log records cannot be changed';
END $$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_update();
CREATE FUNCTION audit_log_retention() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.at_ms > (extract(epoch FROM now() - interval '3 years') * 1000)::bigint THEN
        RAISE EXCEPTION 'usage-log records younger than 3 years cannot be deleted';
    END IF;
    RETURN OLD;
END $$;
CREATE TRIGGER audit_log_retention BEFORE DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_retention();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_update();
CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_update();
CREATE TABLE seal_custody (
    seal_id              BIGINT PRIMARY KEY REFERENCES seals(id),
    custodian            TEXT NOT NULL,
    assigned_by          TEXT NOT NULL,
    assigned_at          BIGINT NOT NULL,
    pin_change_required  BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE TABLE stamp_signatures (
    request_id     BIGINT NOT NULL REFERENCES stamp_requests(id),
    position       BIGINT NOT NULL,
    digest         TEXT NOT NULL,
    name           TEXT NOT NULL,
    ses_signature  BYTEA NOT NULL,
    PRIMARY KEY (request_id, position)
);
CREATE TABLE ops_log (
    id          BIGSERIAL PRIMARY KEY,
    at_ms       BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    actor       TEXT NOT NULL,
    seal_id     BIGINT,
    detail      TEXT NOT NULL
);
CREATE INDEX ops_log_at ON ops_log(at_ms);
CREATE INDEX ops_log_kind ON ops_log(kind, id);
CREATE FUNCTION ops_log_refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'operational records cannot be changed';
END $$;
CREATE TRIGGER ops_log_no_update BEFORE UPDATE ON ops_log
    FOR EACH ROW EXECUTE FUNCTION ops_log_refuse_update();
CREATE FUNCTION ops_log_retention() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.at_ms > (extract(epoch FROM now() - interval '1 day') * 1000)::bigint THEN
        RAISE EXCEPTION 'operational records younger than a day cannot be deleted';
    END IF;
    RETURN OLD;
END $$;
CREATE TRIGGER ops_log_retention BEFORE DELETE ON ops_log
    FOR EACH ROW EXECUTE FUNCTION ops_log_retention();
CREATE TABLE device_pin_change (
    device_serial  TEXT PRIMARY KEY,
    reason         TEXT NOT NULL,
    required_at    BIGINT NOT NULL
);
CREATE TABLE stamp_files (
    request_id   BIGINT NOT NULL REFERENCES stamp_requests(id),
    position     BIGINT NOT NULL,
    name         TEXT NOT NULL,
    size         BIGINT NOT NULL,
    sm3          TEXT NOT NULL,
    mode         TEXT NOT NULL,
    placements   TEXT NOT NULL,
    plan         TEXT NOT NULL,
    upload_path  TEXT,
    upload_offset BIGINT NOT NULL DEFAULT 0,
    sealed_path  TEXT,
    format       TEXT NOT NULL DEFAULT 'ofd',
    PRIMARY KEY (request_id, position)
);
"#];

/// The schema version this build writes.
pub fn latest_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Any number: the advisory lock nodes take while they migrate.
const MIGRATION_LOCK: i64 = 0x5ea1_d000;

/// The schema version of the database (0: no seald store in it).
pub fn version(client: &Client) -> Result<i64, StoreError> {
    let exists: bool =
        block_on(client.query_one("SELECT to_regclass('seald_schema') IS NOT NULL", &[]))?.get(0);
    if !exists {
        return Ok(0);
    }
    let row = block_on(client.query_opt("SELECT version FROM seald_schema WHERE id = 1", &[]))?;
    Ok(row.map_or(0, |r| r.get(0)))
}

/// Brings the schema up to [`latest_version`]; refuses a database written by a newer build.
pub fn migrate(client: &Client) -> Result<i64, StoreError> {
    block_on(client.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})")))?;
    let out = migrate_locked(client);
    let _ = block_on(client.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})")));
    out
}

fn migrate_locked(client: &Client) -> Result<i64, StoreError> {
    let found = version(client)?;
    let known = latest_version();
    if found > known {
        return Err(StoreError::NewerSchema { found, known });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let next = index as i64 + 1;
        block_on(client.batch_execute(&format!(
            "BEGIN; CREATE TABLE IF NOT EXISTS seald_schema (id INTEGER PRIMARY KEY \
             CHECK (id = 1), version BIGINT NOT NULL); {sql}; \
             INSERT INTO seald_schema (id, version) VALUES (1, {next}) \
             ON CONFLICT (id) DO UPDATE SET version = excluded.version; COMMIT;"
        )))
        .inspect_err(|_| {
            let _ = block_on(client.batch_execute("ROLLBACK"));
        })?;
    }
    Ok(known)
}
