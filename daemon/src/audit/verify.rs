//! Recomputes the chain and names the first record that does not fit.

use serde::Serialize;

use crate::store::model::{AuditAnchor, AuditKind, Digest32};
use crate::store::{StoreResult, Tx};

use super::chain::{record_hash, GENESIS};

/// Records read per query while verifying.
const PAGE: usize = 2000;

/// Why a record breaks the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BreakReason {
    /// Records are missing before this sequence number.
    Missing {
        /// The sequence number found instead.
        found: i64,
    },
    /// The record's `prev_hash` is not the previous record's hash.
    PrevHashMismatch,
    /// The record's content does not hash to its stored hash (edited).
    HashMismatch,
    /// The prune anchor does not match the latest prune record.
    AnchorMismatch,
}

/// The first record that breaks the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainBreak {
    /// Its sequence number.
    pub seq: i64,
    /// What is wrong with it.
    pub reason: BreakReason,
}

impl std::fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.reason {
            BreakReason::Missing { found } => write!(
                f,
                "record {} is missing (the next record present is {found}): records were deleted",
                self.seq
            ),
            BreakReason::PrevHashMismatch => write!(
                f,
                "record {} does not link to the record before it: records were removed or reordered",
                self.seq
            ),
            BreakReason::HashMismatch => write!(
                f,
                "record {} does not match its hash: it was altered after it was written",
                self.seq
            ),
            BreakReason::AnchorMismatch => write!(
                f,
                "the prune anchor (before record {}) does not match the latest prune record",
                self.seq
            ),
        }
    }
}

/// The outcome of a chain check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Records checked.
    pub records: u64,
    /// First sequence number present.
    pub first_seq: Option<i64>,
    /// Last sequence number present.
    pub last_seq: Option<i64>,
    /// Hash of the last record (the chain head); publish it to detect truncation.
    pub head: Option<Digest32>,
    /// Sequence number of the prune anchor, when old records were pruned.
    pub anchor_seq: Option<i64>,
    /// The first break, if any.
    pub broken: Option<ChainBreak>,
}

impl VerifyReport {
    /// Whether the chain is intact.
    pub fn is_intact(&self) -> bool {
        self.broken.is_none()
    }
}

/// Verifies the whole chain inside one read transaction.
pub fn verify(tx: &mut dyn Tx) -> StoreResult<VerifyReport> {
    let anchor = tx.audit_anchor()?;
    let (mut prev_seq, mut prev_hash) = match &anchor {
        Some(a) => (a.seq, a.hash.clone()),
        None => (0, GENESIS.to_vec()),
    };
    let mut report = VerifyReport {
        records: 0,
        first_seq: None,
        last_seq: None,
        head: None,
        anchor_seq: anchor.as_ref().map(|a| a.seq),
        broken: None,
    };
    let mut last_prune: Option<(i64, Option<AuditAnchor>)> = None;
    loop {
        let rows = tx.audit_rows(prev_seq.max(report.last_seq.unwrap_or(0)), PAGE)?;
        if rows.is_empty() {
            break;
        }
        for row in rows {
            report.first_seq.get_or_insert(row.seq);
            let broken = if row.seq != prev_seq + 1 {
                Some(BreakReason::Missing { found: row.seq })
            } else if row.prev_hash != prev_hash {
                Some(BreakReason::PrevHashMismatch)
            } else if record_hash(&prev_hash, &row).as_slice() != row.hash.as_slice() {
                Some(BreakReason::HashMismatch)
            } else {
                None
            };
            if let Some(reason) = broken {
                let seq = match reason {
                    BreakReason::Missing { .. } => prev_seq + 1,
                    _ => row.seq,
                };
                report.broken = Some(ChainBreak { seq, reason });
                return Ok(report);
            }
            if row.kind == AuditKind::Prune.as_str() {
                last_prune = Some((row.seq, anchor_in(&row.detail)));
            }
            report.records += 1;
            report.last_seq = Some(row.seq);
            report.head = row.hash.as_slice().try_into().ok().map(Digest32);
            prev_seq = row.seq;
            prev_hash = row.hash;
        }
    }
    let anchor_ok = match (&anchor, &last_prune) {
        (None, None) => true,
        (Some(a), Some((_, Some(claimed)))) => a == claimed,
        _ => false,
    };
    if !anchor_ok {
        report.broken = Some(ChainBreak {
            seq: anchor.map(|a| a.seq + 1).unwrap_or(1),
            reason: BreakReason::AnchorMismatch,
        });
    }
    Ok(report)
}

/// The anchor a prune record names.
fn anchor_in(detail: &str) -> Option<AuditAnchor> {
    let v: serde_json::Value = serde_json::from_str(detail).ok()?;
    Some(AuditAnchor {
        seq: v.get("anchor_seq")?.as_i64()?,
        hash: hex::decode(v.get("anchor_hash")?.as_str()?).ok()?,
    })
}

/// A chain head noted earlier, as `SEQ:HASH` (what `sealctl audit verify` prints). The chain
/// alone cannot show that its newest records were cut off; a head kept outside the store can.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotedHead {
    /// The record's sequence number.
    pub seq: i64,
    /// Its hash.
    pub hash: Digest32,
}

impl std::fmt::Display for NotedHead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.seq, self.hash)
    }
}

impl std::str::FromStr for NotedHead {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!("{s:?} is not SEQ:HASH (e.g. 1042:9f86…, as `sealctl audit verify` prints it)")
        };
        let (seq, hash) = s.trim().split_once(':').ok_or_else(bad)?;
        Ok(Self {
            seq: seq.parse().ok().filter(|n| *n > 0).ok_or_else(bad)?,
            hash: Digest32::from_hex(hash).map_err(|_| bad())?,
        })
    }
}

/// What became of a noted head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadCheck {
    /// The record is there with the same hash: nothing up to it was cut off or rewritten.
    Present,
    /// The record is gone: the log was cut back to `last_seq`.
    Missing {
        /// The newest record left, if any.
        last_seq: Option<i64>,
    },
    /// A record with that number is there, with another hash: the log was rewritten.
    Replaced,
    /// The record was pruned (older than the retention period); it can no longer be checked.
    Pruned,
}

/// Looks for a noted head in the log (run it with [`verify`] in one snapshot).
pub fn check_noted_head(tx: &mut dyn Tx, noted: &NotedHead) -> StoreResult<HeadCheck> {
    if let Some(anchor) = tx.audit_anchor()? {
        if noted.seq < anchor.seq {
            return Ok(HeadCheck::Pruned);
        }
        if noted.seq == anchor.seq {
            return Ok(if anchor.hash == noted.hash.0 {
                HeadCheck::Present
            } else {
                HeadCheck::Replaced
            });
        }
    }
    Ok(match tx.audit_row(noted.seq)? {
        Some(row) if row.hash == noted.hash.0 => HeadCheck::Present,
        Some(_) => HeadCheck::Replaced,
        None => HeadCheck::Missing {
            last_seq: tx.audit_last()?.map(|(seq, _)| seq),
        },
    })
}
