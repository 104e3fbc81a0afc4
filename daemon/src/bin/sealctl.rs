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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Devices { json } => Config::load(&cli.config)
            .map_err(Into::into)
            .and_then(|config| seald::cli::devices::run(&config, json, &mut std::io::stdout())),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sealctl: {e}");
            ExitCode::FAILURE
        }
    }
}
