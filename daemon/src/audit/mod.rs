//! Hash-chained usage log: append (durable, group-committed), retention, export, chain
//! verification.
//!
//! Each record's hash is SM3(prev_hash ‖ canonical record bytes) ([`chain`]). Records are
//! written by the store's writer thread: an append returns only after its transaction is
//! fsynced, and appends arriving together share one commit.

pub mod chain;
pub mod export;
pub mod operational;
pub mod records;
pub mod verify;

use std::io::Write;
use std::sync::{Arc, Mutex};

use time::OffsetDateTime;

use crate::clock::Clock;
use crate::store::model::{AuditAnchor, AuditKind, AuditRow, OpsRow, SealId};
use crate::store::{Store, StoreError};

pub use export::ExportFormat;
pub use operational::{clip, AuditSettings, RefusalWindow};
pub use records::SignatureFacts;
pub use verify::{BreakReason, ChainBreak, HeadCheck, NotedHead, VerifyReport};

/// Records younger than this many years may never be deleted.
pub const RETENTION_YEARS: i32 = 3;

/// A record to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRecord {
    /// What it is about.
    pub kind: AuditKind,
    /// Who caused it (identity name, or "seald").
    pub actor: String,
    /// The seal concerned.
    pub seal_id: Option<SealId>,
    /// Details (digests and names, never document contents or PINs).
    pub detail: serde_json::Value,
}

/// Usage-log errors.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A prune would delete records younger than the retention period.
    #[error("records newer than {earliest_allowed} must be kept ({RETENTION_YEARS} years); refusing to prune up to {cutoff}")]
    RetentionTooShort {
        /// Requested cutoff.
        cutoff: String,
        /// The latest cutoff allowed now.
        earliest_allowed: String,
    },
    /// An operational kind was given to the chain (or the other way round).
    #[error("`{0}` records are operational: they are kept outside the hash chain")]
    Operational(AuditKind),
    /// Writing an export failed.
    #[error("cannot write the export: {0}")]
    Io(#[from] std::io::Error),
}

/// What a prune did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PruneReport {
    /// Records deleted.
    pub deleted: u64,
    /// The new anchor, if anything was deleted.
    pub anchor: Option<AuditAnchor>,
}

/// The usage log service.
#[derive(Debug, Clone)]
pub struct AuditLog {
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    settings: AuditSettings,
    refusals: Arc<Mutex<RefusalWindow>>,
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// The newest cutoff a prune may use at `now`: `now` minus [`RETENTION_YEARS`] calendar years
/// (29 February maps to 28 February, the stricter choice).
pub fn retention_limit(now: OffsetDateTime) -> OffsetDateTime {
    let year = now.year() - RETENTION_YEARS;
    now.replace_year(year)
        .or_else(|_| now.replace_day(28).and_then(|t| t.replace_year(year)))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

impl AuditLog {
    /// The log kept in `store`, timed by `clock`.
    pub fn new(store: Arc<Store>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            settings: AuditSettings::default(),
            refusals: Arc::default(),
        }
    }

    /// The same log with the `[audit]` settings of the config.
    pub fn with_settings(mut self, settings: AuditSettings) -> Self {
        self.settings = settings;
        self
    }

    /// The settings in force.
    pub fn settings(&self) -> AuditSettings {
        self.settings
    }

    /// Appends a record to the chain; returns once it is durable. Operational kinds are
    /// refused: they go through [`AuditLog::append_operational`].
    pub fn append(&self, record: NewRecord) -> Result<AuditRow, AuditError> {
        if record.kind.is_operational() {
            return Err(AuditError::Operational(record.kind));
        }
        // Serialise here, in the caller's thread: the store's one writer only links, hashes
        // and inserts.
        let record = chain::PreparedRecord::new(&record);
        let clock = self.clock.clone();
        self.store
            .write(move |tx| Ok(chain::append_prepared(tx, record, unix_ms(clock.now()))?))
    }

    /// [`AuditLog::append`] for async callers: the task, not a thread, waits for the commit.
    pub async fn append_async(&self, record: NewRecord) -> Result<AuditRow, AuditError> {
        if record.kind.is_operational() {
            return Err(AuditError::Operational(record.kind));
        }
        let record = chain::PreparedRecord::new(&record);
        let clock = self.clock.clone();
        self.store
            .write_async(move |tx| Ok(chain::append_prepared(tx, record, unix_ms(clock.now()))?))
            .await
    }

    /// Appends an operational record (refusal, summary, verification) outside the chain;
    /// returns once it is durable.
    pub fn append_operational(&self, record: NewRecord) -> Result<OpsRow, AuditError> {
        let mut row = OpsRow {
            id: 0,
            at_ms: unix_ms(self.clock.now()),
            kind: record.kind.as_str().to_owned(),
            actor: record.actor,
            seal_id: record.seal_id,
            detail: record.detail.to_string(),
        };
        Ok(self.store.write(move |tx| {
            row.id = tx.insert_ops(&row)?;
            Ok::<_, StoreError>(row)
        })?)
    }

    /// Counts an anonymous or rate-limited refusal in memory; nothing is written until the
    /// window's summary ([`AuditLog::flush_refusals`]).
    pub fn count_refusal(
        &self,
        status: u16,
        code: &str,
        method: &str,
        path: &str,
        caller: Option<&str>,
    ) {
        let now_ms = unix_ms(self.clock.now());
        self.refusals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .count(now_ms, status, code, method, path, caller);
    }

    /// Writes one `refusal-summary` record for the refusals counted since the last one, if
    /// the window has run (or at once with `force`, as at shutdown). Returns it, if written.
    pub fn flush_refusals(&self, force: bool) -> Result<Option<OpsRow>, AuditError> {
        let now_ms = unix_ms(self.clock.now());
        let detail = {
            let mut window = self.refusals.lock().unwrap_or_else(|e| e.into_inner());
            if !force && !window.is_due(now_ms, self.settings.refusal_summary_window) {
                return Ok(None);
            }
            window.take_detail(now_ms)
        };
        let Some(detail) = detail else {
            return Ok(None);
        };
        let record = NewRecord::new(AuditKind::RefusalSummary, "seald", None, detail);
        self.append_operational(record).map(Some)
    }

    /// Up to `limit` operational records after `after_id`, of `kind` if given.
    pub fn operational(
        &self,
        kind: Option<AuditKind>,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<OpsRow>, AuditError> {
        Ok(self
            .store
            .read(|tx| tx.ops_rows(kind.map(AuditKind::as_str), after_id, limit))?)
    }

    /// Deletes operational records older than the operational retention; returns how many.
    /// The hash chain is not touched.
    pub fn prune_operational(&self) -> Result<u64, AuditError> {
        let days = i64::from(self.settings.operational_retention_days.max(1));
        let before_ms = unix_ms(self.clock.now()) - days * 86_400_000;
        Ok(self
            .store
            .write(move |tx| tx.delete_ops_before(before_ms))?)
    }

    /// Recomputes the chain; the report names the first broken record.
    pub fn verify(&self) -> Result<VerifyReport, AuditError> {
        let now_ms = unix_ms(self.clock.now());
        Ok(self.store.read(|tx| verify::verify(tx, now_ms))?)
    }

    /// Recomputes the chain and looks for heads noted earlier, in one snapshot: a noted head
    /// that is gone or different shows the newest records were cut off or rewritten.
    pub fn verify_with_heads(
        &self,
        noted: &[NotedHead],
    ) -> Result<(VerifyReport, Vec<HeadCheck>), AuditError> {
        let now_ms = unix_ms(self.clock.now());
        Ok(self.store.read(|tx| {
            let report = verify::verify(tx, now_ms)?;
            let checks = noted
                .iter()
                .map(|n| verify::check_noted_head(tx, &report, n))
                .collect::<Result<Vec<_>, _>>()?;
            Ok::<_, crate::store::StoreError>((report, checks))
        })?)
    }

    /// Writes the records with `from <= time < to` to `out`; returns how many.
    pub fn export(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
        format: ExportFormat,
        out: &mut dyn Write,
    ) -> Result<u64, AuditError> {
        if format == ExportFormat::Csv {
            writeln!(out, "{}", export::CSV_HEADER)?;
        }
        let (from_ms, to_ms) = (unix_ms(from), unix_ms(to));
        let mut after = 0;
        let mut count = 0;
        loop {
            let rows = self
                .store
                .read(|tx| tx.audit_rows_between(from_ms, to_ms, after, 2000))?;
            let Some(last) = rows.last() else { break };
            after = last.seq;
            for row in &rows {
                export::write_record(out, format, row)?;
                count += 1;
            }
        }
        out.flush()?;
        Ok(count)
    }

    /// Deletes records older than `cutoff`, which must be at least [`RETENTION_YEARS`] ago.
    /// The last deleted record's hash becomes the anchor the chain continues from, and a
    /// `prune` record naming that anchor is appended, so the rest still verifies.
    pub fn prune_before(
        &self,
        cutoff: OffsetDateTime,
        actor: &str,
    ) -> Result<PruneReport, AuditError> {
        let now = self.clock.now();
        let limit = retention_limit(now);
        if cutoff > limit {
            return Err(AuditError::RetentionTooShort {
                cutoff: cutoff.to_string(),
                earliest_allowed: limit.to_string(),
            });
        }
        let actor = actor.to_owned();
        let cutoff_ms = unix_ms(cutoff);
        let now_ms = unix_ms(now);
        self.store.write(move |tx| {
            let Some(last) = tx.audit_last_before(cutoff_ms)? else {
                return Ok(PruneReport {
                    deleted: 0,
                    anchor: None,
                });
            };
            let anchor = AuditAnchor {
                seq: last.seq,
                hash: last.hash.clone(),
            };
            let previous_anchor_seq = tx.audit_anchor()?.map_or(0, |a| a.seq);
            tx.set_audit_anchor(&anchor)?;
            let deleted = tx.delete_audit_through(last.seq)?;
            let record = NewRecord::new(
                AuditKind::Prune,
                actor,
                None,
                serde_json::json!({
                    "anchor_seq": anchor.seq,
                    "anchor_hash": hex::encode(&anchor.hash),
                    "anchor_at_ms": last.at_ms,
                    "previous_anchor_seq": previous_anchor_seq,
                    "deleted": deleted,
                    "cutoff_ms": cutoff_ms,
                }),
            );
            chain::append(tx, &record, now_ms)?;
            Ok(PruneReport {
                deleted,
                anchor: Some(anchor),
            })
        })
    }
}

#[cfg(test)]
mod tests;
