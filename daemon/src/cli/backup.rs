//! `sealctl backup FILE` / `sealctl restore FILE`: see [`crate::custody::backup`].

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use crate::custody::backup;

/// Where the store is and which backup file.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The seald store (SQLite file).
    #[arg(long, value_name = "PATH")]
    store: PathBuf,
    /// The backup file.
    file: PathBuf,
    /// Restore even if the backup's usage log does not reach the current store's newest record
    /// (an older backup): those records are given up, and a `restore` record says so.
    #[arg(long)]
    force: bool,
}

fn head(report: &crate::audit::VerifyReport) -> String {
    report
        .head
        .map(|h| h.to_hex())
        .unwrap_or_else(|| "-".into())
}

/// Refuses a PostgreSQL store: its backups are PostgreSQL's own (docs/postgres.md).
fn sqlite_only(store: &Path) -> Result<(), Box<dyn std::error::Error>> {
    if crate::store::is_postgres_url(&store.to_string_lossy()) {
        return Err(
            "sealctl backup and restore work on a SQLite store; back up a PostgreSQL store \
             with pg_dump (and the data directory's seald.token-key and seald.documents/), then \
             check the copy with `sealctl audit --store <copy> verify --expect-head <head>`; \
             see docs/postgres.md"
                .into(),
        );
    }
    Ok(())
}

/// `sealctl backup`.
pub fn run_backup(args: BackupArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    sqlite_only(&args.store)?;
    let report = backup::create(&args.store, &args.file)?;
    println!(
        "backup written to {} ({} bytes, mode 0600): {} usage-log records, chain head {}, token key {}, {} stored documents",
        report.file.display(),
        report.bytes,
        report.log.records,
        head(&report.log),
        if report.token_key { "included" } else { "absent" },
        report.documents
    );
    println!("keep it as secret as the store: it holds the token key that bearer tokens are checked with");
    Ok(ExitCode::SUCCESS)
}

/// `sealctl restore`.
pub fn run_restore(args: BackupArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    sqlite_only(&args.store)?;
    let report = backup::restore(&args.file, &args.store, args.force)?;
    println!(
        "restored {} from {}: {} usage-log records verified, chain head {}, {} stored documents",
        args.store.display(),
        args.file.display(),
        report.log.records,
        head(&report.log),
        report.documents
    );
    if report.forced {
        println!("forced: usage records newer than the backup were given up; a `restore` record in the log says so");
    }
    if let Some(previous) = &report.previous {
        println!("the replaced store was kept as {}", display(previous));
    }
    Ok(ExitCode::SUCCESS)
}

fn display(path: &Path) -> String {
    path.display().to_string()
}
