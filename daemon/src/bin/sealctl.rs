//! `sealctl`: custodian and administrator tool.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use seald::config::Config;

/// Custodian and administrator tool for seald.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Configuration file (TOML).
    #[arg(long, short, global = true, default_value = "config/seald.toml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List PKCS#11 modules, their tokens and PIN state (no PIN needed).
    Devices {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Manage identities (client apps, approvers, custodians, auditors, admins).
    User(seald::cli::user::UserArgs),
    /// Verify, export or prune the usage log.
    Audit(seald::cli::audit::AuditArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: Result<ExitCode, Box<dyn std::error::Error>> = match cli.command {
        Command::Devices { json } => Config::load(&cli.config)
            .map_err(Into::into)
            .and_then(|config| seald::cli::devices::run(&config, json, &mut std::io::stdout()))
            .map(|()| ExitCode::SUCCESS),
        Command::User(args) => seald::cli::user::run(args),
        Command::Audit(args) => seald::cli::audit::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sealctl: {e}");
            ExitCode::FAILURE
        }
    }
}
