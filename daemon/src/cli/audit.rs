//! `sealctl audit verify|export|prune`: check, export and prune the usage log.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime};

use crate::audit::{AuditLog, ExportFormat, HeadCheck, NewRecord, NotedHead, RETENTION_YEARS};
use crate::clock::SystemClock;
use crate::identity::Caller;
use crate::store::model::AuditKind;
use crate::store::Store;

/// Check, export or prune the usage log.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The seald store: a SQLite file, or a `postgres://` URL (with `SEALD_DATA_DIR`).
    #[arg(long, value_name = "PATH")]
    pub store: PathBuf,
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Recompute the hash chain; name the first broken record (exit status 1 if broken, or if
    /// a head noted earlier is gone or different).
    Verify {
        /// A head printed by an earlier `verify` and kept outside the store: it must still be
        /// in the log with the same hash, which shows no newer records were cut off. Repeatable.
        #[arg(long = "expect-head", value_name = "SEQ:HASH")]
        expect_head: Vec<NotedHead>,
    },
    /// Write records with FROM <= time < TO as JSON lines or CSV to standard output.
    Export {
        /// Start (RFC 3339, or YYYY-MM-DD meaning 00:00 UTC).
        #[arg(long, value_parser = parse_time)]
        from: OffsetDateTime,
        /// End, exclusive (RFC 3339, or YYYY-MM-DD meaning 00:00 UTC).
        #[arg(long, value_parser = parse_time)]
        to: OffsetDateTime,
        /// Output format.
        #[arg(long, value_enum, default_value = "jsonl")]
        format: ExportFormat,
    },
    /// Delete records older than BEFORE (refused unless BEFORE is at least 3 years ago).
    Prune {
        /// Cutoff (RFC 3339, or YYYY-MM-DD meaning 00:00 UTC).
        #[arg(long, value_parser = parse_time)]
        before: OffsetDateTime,
    },
    /// Test helper: append records from several threads until killed, printing
    /// "thread index seq" after each acknowledged append.
    #[command(hide = true)]
    AppendLoop {
        /// Writer threads.
        #[arg(long, default_value_t = 4)]
        threads: usize,
    },
}

/// Parses RFC 3339 or a bare date (midnight UTC).
pub fn parse_time(s: &str) -> Result<OffsetDateTime, String> {
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t);
    }
    Date::parse(s, format_description!("[year]-[month]-[day]"))
        .map(|d| d.midnight().assume_utc())
        .map_err(|_| format!("{s:?} is not a date: use 2026-01-31 or 2026-01-31T08:00:00+08:00"))
}

/// Runs `sealctl audit …`.
pub fn run(args: AuditArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    // Only the test helper may create a store; the real commands check an existing one.
    let store = Arc::new(match args.command {
        AuditCommand::AppendLoop { .. } => Store::open(&args.store)?,
        _ => Store::open_existing(&args.store)?,
    });
    let log = AuditLog::new(store, Arc::new(SystemClock));
    match args.command {
        AuditCommand::Verify { expect_head } => {
            let verifying = super::progress::Progress::spinner("verifying the usage log's chain");
            let (report, checks) = log.verify_with_heads(&expect_head)?;
            verifying.finish();
            let mut intact = match &report.broken {
                None => {
                    println!(
                        "chain intact: {} records ({}..{}), head {}",
                        report.records,
                        report.first_seq.unwrap_or(0),
                        report.last_seq.unwrap_or(0),
                        report
                            .head
                            .map(|h| h.to_hex())
                            .unwrap_or_else(|| "-".into())
                    );
                    if let Some(a) = report.anchor_seq {
                        println!(
                            "records up to {a} were pruned; the chain continues from their anchor"
                        );
                    }
                    if let (Some(seq), Some(hash)) = (report.last_seq, report.head) {
                        let at_ms = report.head_at_ms;
                        println!(
                            "head to keep outside the store: {} (a later `verify --expect-head` with it shows whether newer records were cut off)",
                            NotedHead { seq, hash, at_ms }
                        );
                    }
                    true
                }
                Some(broken) => {
                    println!("CHAIN BROKEN at record {}: {broken}", broken.seq);
                    println!("{} records before it verified", report.records);
                    false
                }
            };
            for (noted, check) in expect_head.iter().zip(checks) {
                intact &= !check.is_failure();
                match check {
                    HeadCheck::Present => println!("noted head {noted}: present"),
                    HeadCheck::Pruned { time_checked: true } => println!(
                        "noted head {noted}: pruned legitimately (written before the prune's cutoff, which is at least {RETENTION_YEARS} years before the prune); not checked further"
                    ),
                    HeadCheck::Pruned { time_checked: false } => println!(
                        "noted head {noted}: pruned; the prune record verifies, but the head was noted without its time, so whether it was older than the cutoff cannot be checked (note heads as SEQ:HASH@TIME)"
                    ),
                    HeadCheck::PrunedUnproven => println!(
                        "NOTED HEAD {noted} REMOVED WITHOUT A LEGITIMATE PRUNE: it lies below the prune anchor, but {}; records were cut off under the cover of a prune",
                        match (report.pruned_before_ms, noted.at_ms) {
                            (Some(cutoff), Some(at)) if report.is_intact() && at >= cutoff =>
                                "it was written after the latest prune's cutoff".to_string(),
                            _ => "no verified prune record vouches for its removal".to_string(),
                        }
                    ),
                    HeadCheck::Replaced => {
                        println!("NOTED HEAD {noted} REWRITTEN: record {} has another hash; the log was changed after the head was noted", noted.seq);
                    }
                    HeadCheck::Missing { last_seq } => {
                        println!(
                            "NOTED HEAD {noted} MISSING: the log ends at record {}; records were cut off after the head was noted",
                            last_seq.unwrap_or(0)
                        );
                    }
                }
            }
            Ok(if intact {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        AuditCommand::Export { from, to, format } => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let n = log.export(from, to, format, &mut out)?;
            eprintln!("exported {n} records");
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Prune { before } => {
            let report = log.prune_before(before, &Caller::local_from_env().name())?;
            eprintln!("pruned {} records", report.deleted);
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::AppendLoop { threads } => {
            let log = Arc::new(log);
            let handles: Vec<_> = (0..threads.max(1))
                .map(|t| {
                    let log = log.clone();
                    std::thread::spawn(move || -> Result<(), String> {
                        for i in 0u64.. {
                            let rec = NewRecord::new(
                                AuditKind::Note,
                                "append-loop",
                                None,
                                json!({ "thread": t, "i": i }),
                            );
                            let row = log.append(rec).map_err(|e| e.to_string())?;
                            let mut out = std::io::stdout().lock();
                            writeln!(out, "{t} {i} {}", row.seq).map_err(|e| e.to_string())?;
                            out.flush().map_err(|e| e.to_string())?;
                        }
                        Ok(())
                    })
                })
                .collect();
            for h in handles {
                if let Ok(Err(e)) = h.join() {
                    return Err(e.into());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
