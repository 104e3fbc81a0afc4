//! `sealctl`: custodian and administrator tool.

use std::process::ExitCode;

use clap::Parser;
use seald::cli;

/// Custodian and administrator tool for seald.
#[derive(Debug, Parser)]
#[command(version)]
enum Command {
    /// Show the version (placeholder until the first command lands).
    Version,
    /// Manage identities (client apps, approvers, custodians, auditors, admins).
    User(cli::user::UserArgs),
    /// Verify, export or prune the usage log.
    Audit(cli::audit::AuditArgs),
}

fn main() -> ExitCode {
    let result = match Command::parse() {
        Command::Version => {
            println!("sealctl {}", env!("CARGO_PKG_VERSION"));
            Ok(ExitCode::SUCCESS)
        }
        Command::User(args) => cli::user::run(args),
        Command::Audit(args) => cli::audit::run(args),
    };
    result.unwrap_or_else(|e| {
        eprintln!("sealctl: {e}");
        ExitCode::FAILURE
    })
}
