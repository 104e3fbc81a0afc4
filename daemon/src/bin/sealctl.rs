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
    /// List seals, show their history, suspend, resume, revoke or report them lost; enrol
    /// one through the daemon.
    Seal(seald::cli::seal::SealArgs),
    /// Generate a key pair on a token, write a CSR signed on it, import the CA's certificate.
    Key(seald::cli::key::KeyArgs),
    /// Change, unblock or inspect a token's user PIN (read from the terminal, never argv).
    Pin(seald::cli::pin::PinArgs),
    /// Log a token in through the running daemon (PIN from the terminal, or --pin-stdin).
    Login(seald::cli::remote::RemoteArgs),
    /// Log a token out through the running daemon.
    Logout(seald::cli::remote::RemoteArgs),
    /// Change a token's user PIN through the running daemon (current, then new twice).
    PinChange(seald::cli::remote::RemoteArgs),
    /// Re-set a locked user PIN with the SO PIN through the running daemon (SO PIN, then the
    /// new user PIN twice).
    PinUnblock(seald::cli::remote::RemoteArgs),
    /// Hand a seal to another custodian (who must then change the PIN).
    Custody(seald::cli::custody::CustodyArgs),
    /// Write a consistent snapshot of the store, usage log and token key (works while seald runs).
    Backup(seald::cli::backup::BackupArgs),
    /// Replace the store with a backup whose usage log verifies (seald must be stopped).
    Restore(seald::cli::backup::BackupArgs),
    /// Seal OFD files through the running daemon: one request, approvals, sealed files back.
    Stamp(seald::cli::stamp::StampArgs),
    /// Print a one-time link that opens the web console signed in (the code in it works
    /// once, for 2 minutes; the API token stays in its file).
    Console(seald::cli::console::ConsoleArgs),
    /// Verify a seal (.esl), a SES_Signature (.dat/.der) or every signature in an OFD file.
    Verify(seald::cli::verify::VerifyArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // PINs pass through this process: no core dumps.
    seald::hardening::forbid_core_dumps();
    let result: Result<ExitCode, Box<dyn std::error::Error>> = match cli.command {
        Command::Devices { json } => Config::load(&cli.config)
            .map_err(Into::into)
            .and_then(|config| seald::cli::devices::run(&config, json, &mut std::io::stdout()))
            .map(|()| ExitCode::SUCCESS),
        Command::Key(args) => Config::load(&cli.config)
            .map_err(Into::into)
            .and_then(|config| seald::cli::key::run(&config, args)),
        Command::Pin(args) => Config::load(&cli.config)
            .map_err(Into::into)
            .and_then(|config| seald::cli::pin::run(&config, args)),
        Command::Custody(args) => seald::cli::custody::run(args),
        Command::Login(args) => seald::cli::remote::login(args),
        Command::Logout(args) => seald::cli::remote::logout(args),
        Command::PinChange(args) => seald::cli::remote::pin_change(args),
        Command::PinUnblock(args) => seald::cli::remote::pin_unblock(args),
        Command::Backup(args) => seald::cli::backup::run_backup(args),
        Command::Restore(args) => seald::cli::backup::run_restore(args),
        Command::User(args) => seald::cli::user::run(args),
        Command::Audit(args) => seald::cli::audit::run(args),
        Command::Seal(args) => seald::cli::seal::run(args),
        Command::Stamp(args) => seald::cli::stamp::run(args),
        Command::Console(args) => seald::cli::console::run(args),
        // Exit codes: 0 valid, 1 invalid, 2 could not read.
        Command::Verify(args) => return ExitCode::from(seald::cli::verify::run(&args) as u8),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sealctl: {e}");
            ExitCode::FAILURE
        }
    }
}
