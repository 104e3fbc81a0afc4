//! The hash chain: canonical record bytes and `hash = SM3(prev_hash ‖ canonical bytes)`.

use sm3::{Digest, Sm3};

use crate::store::model::AuditRow;
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
    out.extend_from_slice(b"seald-audit-v1");
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

/// Appends a record inside the caller's transaction, so a state change and its record commit
/// together. `at_ms` is milliseconds since the Unix epoch.
pub fn append(tx: &mut dyn Tx, record: &NewRecord, at_ms: i64) -> StoreResult<AuditRow> {
    let (seq, prev_hash) = match tx.audit_last()? {
        Some((seq, hash)) => (seq + 1, hash),
        None => match tx.audit_anchor()? {
            Some(anchor) => (anchor.seq + 1, anchor.hash),
            None => (1, GENESIS.to_vec()),
        },
    };
    let mut row = AuditRow {
        seq,
        at_ms,
        kind: record.kind.as_str().to_owned(),
        actor: record.actor.clone(),
        seal_id: record.seal_id,
        detail: record.detail.to_string(),
        prev_hash,
        hash: Vec::new(),
    };
    row.hash = record_hash(&row.prev_hash, &row).to_vec();
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
