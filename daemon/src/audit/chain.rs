//! The hash chain: canonical record bytes and `hash = SM3(prev_hash ‖ canonical bytes)`.

use sm3::{Digest, Sm3};

use crate::store::model::{AuditRow, SealId};
use crate::store::{StoreResult, Tx};

use super::NewRecord;

/// The `prev_hash` of the first record.
pub const GENESIS: [u8; 32] = [0; 32];

fn put_text(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(&(text.len() as u32).to_be_bytes());
    out.extend_from_slice(text.as_bytes());
}

/// The bytes of a record that its hash covers: every column but the two hashes, each
/// fixed-width or length-prefixed so no two records share an encoding.
pub fn canonical_bytes(row: &AuditRow) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + row.detail.len());
    out.extend_from_slice(TAG);
    out.extend_from_slice(&row.seq.to_be_bytes());
    out.extend_from_slice(&row.at_ms.to_be_bytes());
    put_text(&mut out, &row.kind);
    put_text(&mut out, &row.actor);
    match row.seal_id {
        Some(id) => {
            out.push(1);
            out.extend_from_slice(&id.to_be_bytes());
        }
        None => out.push(0),
    }
    put_text(&mut out, &row.detail);
    out
}

/// SM3(prev_hash ‖ canonical bytes of `row`).
pub fn record_hash(prev_hash: &[u8], row: &AuditRow) -> [u8; 32] {
    let mut h = Sm3::new();
    h.update(prev_hash);
    h.update(canonical_bytes(row));
    h.finalize().into()
}

/// The tag that starts every record's canonical bytes.
const TAG: &[u8] = b"seald-audit-v1";

/// A record with everything that does not depend on its place in the chain already in stored
/// form: the `detail` JSON text and the canonical bytes after `seq` and `at_ms`. Built in the
/// caller's thread, so the store's single writer only links, hashes and inserts.
#[derive(Debug, Clone)]
pub struct PreparedRecord {
    kind: &'static str,
    actor: String,
    seal_id: Option<SealId>,
    detail: String,
    /// `kind ‖ actor ‖ seal_id ‖ detail`, encoded as in [`canonical_bytes`].
    tail: Vec<u8>,
}

impl PreparedRecord {
    /// Serialises `record` (its `detail` to compact JSON text, as [`append`] always stored it).
    pub fn new(record: &NewRecord) -> Self {
        let kind = record.kind.as_str();
        let detail = record.detail.to_string();
        let mut tail = Vec::with_capacity(24 + kind.len() + record.actor.len() + detail.len());
        put_text(&mut tail, kind);
        put_text(&mut tail, &record.actor);
        match record.seal_id {
            Some(id) => {
                tail.push(1);
                tail.extend_from_slice(&id.to_be_bytes());
            }
            None => tail.push(0),
        }
        put_text(&mut tail, &detail);
        Self {
            kind,
            actor: record.actor.clone(),
            seal_id: record.seal_id,
            detail,
            tail,
        }
    }

    /// SM3(prev_hash ‖ canonical bytes) of this record at `seq`, `at_ms`: the same value as
    /// [`record_hash`] of the row it becomes, without building the canonical bytes again.
    fn hash(&self, prev_hash: &[u8], seq: i64, at_ms: i64) -> [u8; 32] {
        let mut head = [0u8; TAG.len() + 16];
        head[..TAG.len()].copy_from_slice(TAG);
        head[TAG.len()..TAG.len() + 8].copy_from_slice(&seq.to_be_bytes());
        head[TAG.len() + 8..].copy_from_slice(&at_ms.to_be_bytes());
        let mut h = Sm3::new();
        h.update(prev_hash);
        h.update(head);
        h.update(&self.tail);
        h.finalize().into()
    }
}

/// Appends a record inside the caller's transaction, so a state change and its record commit
/// together. `at_ms` is milliseconds since the Unix epoch.
pub fn append(tx: &mut dyn Tx, record: &NewRecord, at_ms: i64) -> StoreResult<AuditRow> {
    append_prepared(tx, PreparedRecord::new(record), at_ms)
}

/// [`append`] of a record prepared (serialised) beforehand, outside the writer.
pub fn append_prepared(
    tx: &mut dyn Tx,
    record: PreparedRecord,
    at_ms: i64,
) -> StoreResult<AuditRow> {
    let (seq, prev_hash) = match tx.audit_last()? {
        Some((seq, hash)) => (seq + 1, hash),
        None => match tx.audit_anchor()? {
            Some(anchor) => (anchor.seq + 1, anchor.hash),
            None => (1, GENESIS.to_vec()),
        },
    };
    let hash = record.hash(&prev_hash, seq, at_ms).to_vec();
    let row = AuditRow {
        seq,
        at_ms,
        kind: record.kind.to_owned(),
        actor: record.actor,
        seal_id: record.seal_id,
        detail: record.detail,
        prev_hash,
        hash,
    };
    tx.insert_audit(&row)?;
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(detail: &str) -> AuditRow {
        AuditRow {
            seq: 7,
            at_ms: 1_700_000_000_000,
            kind: "note".into(),
            actor: "alice".into(),
            seal_id: Some(3),
            detail: detail.into(),
            prev_hash: GENESIS.to_vec(),
            hash: Vec::new(),
        }
    }

    #[test]
    fn hash_covers_every_field_and_the_previous_hash() {
        let base = row("{}");
        let h = record_hash(&GENESIS, &base);
        assert_ne!(h, record_hash(&[1; 32], &base));
        let mut r = base.clone();
        r.seq = 8;
        assert_ne!(h, record_hash(&GENESIS, &r));
        let mut r = base.clone();
        r.at_ms += 1;
        assert_ne!(h, record_hash(&GENESIS, &r));
        let mut r = base.clone();
        r.actor = "mallory".into();
        assert_ne!(h, record_hash(&GENESIS, &r));
        let mut r = base.clone();
        r.seal_id = None;
        assert_ne!(h, record_hash(&GENESIS, &r));
        let mut r = base.clone();
        r.kind = "prune".into();
        assert_ne!(h, record_hash(&GENESIS, &r));
        assert_ne!(h, record_hash(&GENESIS, &row("{\"a\":1}")));
    }

    #[test]
    fn a_prepared_record_hashes_like_its_canonical_bytes() {
        use crate::store::model::AuditKind;
        let detail = serde_json::json!({ "b": [1, "two"], "a": "合同\"x\"", "n": null });
        for seal_id in [None, Some(42)] {
            let record =
                NewRecord::new(AuditKind::Signature, "client:app", seal_id, detail.clone());
            let prepared = PreparedRecord::new(&record);
            let prev = [7u8; 32];
            let row = AuditRow {
                seq: 12,
                at_ms: 1_700_000_000_123,
                kind: record.kind.as_str().to_owned(),
                actor: record.actor.clone(),
                seal_id,
                detail: record.detail.to_string(),
                prev_hash: prev.to_vec(),
                hash: Vec::new(),
            };
            assert_eq!(prepared.detail, row.detail);
            assert_eq!(
                prepared.hash(&prev, 12, 1_700_000_000_123),
                record_hash(&prev, &row)
            );
        }
    }

    #[test]
    fn length_prefixes_keep_field_boundaries() {
        let mut a = row("{}");
        a.kind = "ab".into();
        a.actor = "c".into();
        let mut b = row("{}");
        b.kind = "a".into();
        b.actor = "bc".into();
        assert_ne!(canonical_bytes(&a), canonical_bytes(&b));
    }
}
