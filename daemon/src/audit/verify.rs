//! Recomputes the chain and names the first record that does not fit.

use serde::Serialize;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::store::model::{AuditAnchor, AuditKind, AuditRow, Digest32};
use crate::store::{StoreResult, Tx};

use super::chain::{record_hash, GENESIS};
use super::{retention_limit, unix_ms, RETENTION_YEARS};

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
    /// A prune record the chain cannot prove legitimate (who, when, up to which record).
    UnprovenPrune {
        /// What does not hold.
        why: String,
    },
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
            BreakReason::UnprovenPrune { why } => write!(
                f,
                "prune record {} cannot be proven legitimate: {why}; the records it removed may have been cut off",
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
    /// When the last record was written (ms since the Unix epoch).
    pub head_at_ms: Option<i64>,
    /// Sequence number of the prune anchor, when old records were pruned.
    pub anchor_seq: Option<i64>,
    /// The cutoff of the latest prune (ms): every pruned record was written before it.
    pub pruned_before_ms: Option<i64>,
    /// The first break, if any.
    pub broken: Option<ChainBreak>,
}

impl VerifyReport {
    /// Whether the chain is intact.
    pub fn is_intact(&self) -> bool {
        self.broken.is_none()
    }
}

/// Verifies the whole chain inside one read transaction. `now_ms` (the verifier's clock)
/// dates prune records: one dated in the future cannot prove its cutoff.
pub fn verify(tx: &mut dyn Tx, now_ms: i64) -> StoreResult<VerifyReport> {
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
        head_at_ms: None,
        anchor_seq: anchor.as_ref().map(|a| a.seq),
        pruned_before_ms: None,
        broken: None,
    };
    let mut first_at_ms = None;
    let mut last_prune: Option<(i64, Option<PruneClaim>)> = None;
    loop {
        let rows = tx.audit_rows(prev_seq.max(report.last_seq.unwrap_or(0)), PAGE)?;
        if rows.is_empty() {
            break;
        }
        for row in rows {
            report.first_seq.get_or_insert(row.seq);
            first_at_ms.get_or_insert(row.at_ms);
            let broken = if row.seq != prev_seq + 1 {
                Some(BreakReason::Missing { found: row.seq })
            } else if row.prev_hash != prev_hash {
                Some(BreakReason::PrevHashMismatch)
            } else if record_hash(&prev_hash, &row).as_slice() != row.hash.as_slice() {
                Some(BreakReason::HashMismatch)
            } else if row.kind == AuditKind::Prune.as_str() {
                let claim = PruneClaim::read(&row.detail);
                let problem = match &claim {
                    Some(c) => c.problem(&row, now_ms),
                    None => Some("it names no anchor and cutoff".to_string()),
                };
                last_prune = Some((row.seq, claim));
                problem.map(|why| BreakReason::UnprovenPrune { why })
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
            report.records += 1;
            report.last_seq = Some(row.seq);
            report.head = row.hash.as_slice().try_into().ok().map(Digest32);
            report.head_at_ms = Some(row.at_ms);
            prev_seq = row.seq;
            prev_hash = row.hash;
        }
    }
    let latest = last_prune
        .as_ref()
        .and_then(|(seq, c)| Some((*seq, c.as_ref()?)));
    let broken = match (&anchor, latest) {
        (None, None) => None,
        (Some(a), Some((_, claim))) if *a == claim.anchor => {
            report.pruned_before_ms = Some(claim.cutoff_ms);
            // The records kept must all be at or after the cutoff: the prune deleted exactly
            // the records written before it.
            first_at_ms
                .filter(|at| *at < claim.cutoff_ms)
                .map(|at| ChainBreak {
                    seq: a.seq + 1,
                    reason: BreakReason::UnprovenPrune {
                        why: format!(
                            "record {} (written at {}) is older than the prune's cutoff {}, so the prune did not remove the records before its cutoff as a prune does",
                            a.seq + 1,
                            ms_text(at),
                            ms_text(claim.cutoff_ms)
                        ),
                    },
                })
        }
        _ => Some(ChainBreak {
            seq: anchor.as_ref().map(|a| a.seq + 1).unwrap_or(1),
            reason: BreakReason::AnchorMismatch,
        }),
    };
    report.broken = broken;
    Ok(report)
}

/// What a prune record claims: which records it removed and by which rule.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PruneClaim {
    anchor: AuditAnchor,
    cutoff_ms: i64,
    /// When the last removed record was written (prunes since this check was added).
    anchor_at_ms: Option<i64>,
    /// The anchor before this prune and the count removed (same).
    previous_anchor_seq: Option<i64>,
    deleted: Option<i64>,
}

impl PruneClaim {
    fn read(detail: &str) -> Option<Self> {
        let v: serde_json::Value = serde_json::from_str(detail).ok()?;
        Some(Self {
            anchor: AuditAnchor {
                seq: v.get("anchor_seq")?.as_i64()?,
                hash: hex::decode(v.get("anchor_hash")?.as_str()?).ok()?,
            },
            cutoff_ms: v.get("cutoff_ms")?.as_i64()?,
            anchor_at_ms: v.get("anchor_at_ms").and_then(|x| x.as_i64()),
            previous_anchor_seq: v.get("previous_anchor_seq").and_then(|x| x.as_i64()),
            deleted: v.get("deleted").and_then(|x| x.as_i64()),
        })
    }

    /// Why the prune `row` making this claim is not one the rules allow, if it is not.
    fn problem(&self, row: &AuditRow, now_ms: i64) -> Option<String> {
        let at = |ms: i64| OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000);
        let Ok(written) = at(row.at_ms) else {
            return Some("its date cannot be read".into());
        };
        let limit = unix_ms(retention_limit(written));
        if row.actor.trim().is_empty() {
            Some("it names nobody as the one who pruned".into())
        } else if row.at_ms > now_ms + FUTURE_SLACK_MS {
            Some(format!("it is dated {}, in the future", ms_text(row.at_ms)))
        } else if self.cutoff_ms > limit {
            Some(format!(
                "its cutoff {} is less than {RETENTION_YEARS} years before its own date {}",
                ms_text(self.cutoff_ms),
                ms_text(row.at_ms)
            ))
        } else if self.anchor.seq >= row.seq {
            Some(format!(
                "it claims to remove records up to {}, not before itself",
                self.anchor.seq
            ))
        } else if self.anchor_at_ms.is_some_and(|a| a >= self.cutoff_ms) {
            Some("the last record it removed is not older than its cutoff".into())
        } else if let (Some(previous), Some(deleted)) = (self.previous_anchor_seq, self.deleted) {
            (deleted != self.anchor.seq - previous).then(|| {
                format!(
                    "it removed {deleted} records, but records {}..={} are {}",
                    previous + 1,
                    self.anchor.seq,
                    self.anchor.seq - previous
                )
            })
        } else {
            None
        }
    }
}

/// How far in the future a prune may be dated (clocks of two machines differ a little).
const FUTURE_SLACK_MS: i64 = 10 * 60 * 1000;

/// A time in ms as RFC 3339 text.
fn ms_text(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// A chain head noted earlier, as `SEQ:HASH@TIME` (what `sealctl audit verify` prints; the
/// time may be left out). The chain alone cannot show that its newest records were cut off; a
/// head kept outside the store can, and its time shows whether a prune could have removed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotedHead {
    /// The record's sequence number.
    pub seq: i64,
    /// Its hash.
    pub hash: Digest32,
    /// When it was written (ms since the Unix epoch), when noted.
    pub at_ms: Option<i64>,
}

impl std::fmt::Display for NotedHead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.seq, self.hash)?;
        match self.at_ms {
            Some(ms) => write!(f, "@{}", ms_text(ms)),
            None => Ok(()),
        }
    }
}

impl std::str::FromStr for NotedHead {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "{s:?} is not SEQ:HASH[@TIME] (e.g. 1042:9f86…@2026-11-29T08:00:00.123Z, as `sealctl audit verify` prints it)"
            )
        };
        let (head, at) = match s.trim().split_once('@') {
            Some((head, at)) => (head, Some(at)),
            None => (s.trim(), None),
        };
        let (seq, hash) = head.split_once(':').ok_or_else(bad)?;
        let at_ms = match at {
            Some(at) => Some(unix_ms(
                OffsetDateTime::parse(at, &Rfc3339).map_err(|_| bad())?,
            )),
            None => None,
        };
        Ok(Self {
            seq: seq.parse().ok().filter(|n| *n > 0).ok_or_else(bad)?,
            hash: Digest32::from_hex(hash).map_err(|_| bad())?,
            at_ms,
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
    /// The record was removed by a prune whose record verifies and whose cutoff the noted
    /// head's time is before (or the head was noted without its time); it can no longer be
    /// checked.
    Pruned {
        /// Whether the head's time was noted and checked against the cutoff.
        time_checked: bool,
    },
    /// The record lies below the prune anchor but was written after the latest prune's
    /// cutoff (or no prune record vouches for the anchor): records were cut off under the
    /// cover of a prune.
    PrunedUnproven,
}

impl HeadCheck {
    /// Whether the check shows the log was cut off or rewritten.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            Self::Missing { .. } | Self::Replaced | Self::PrunedUnproven
        )
    }
}

/// Looks for a noted head in the log (run it with [`verify`] in one snapshot, passing its
/// report).
pub fn check_noted_head(
    tx: &mut dyn Tx,
    report: &VerifyReport,
    noted: &NotedHead,
) -> StoreResult<HeadCheck> {
    if let Some(anchor) = tx.audit_anchor()? {
        if noted.seq < anchor.seq {
            let proven = report.broken.is_none();
            return Ok(match (report.pruned_before_ms, noted.at_ms) {
                (Some(cutoff), Some(at)) if proven && at < cutoff => {
                    HeadCheck::Pruned { time_checked: true }
                }
                (Some(_), None) if proven => HeadCheck::Pruned {
                    time_checked: false,
                },
                _ => HeadCheck::PrunedUnproven,
            });
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
