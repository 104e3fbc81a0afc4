//! `sealctl`: custodian and administrator tool.

use std::process::ExitCode;

use clap::Parser;
use seald::cli::args::{SealctlArgs as Cli, SealctlCommand as Command};
use seald::config::Config;

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
        // Exit codes: 0 no check failed, 1 a check failed, 2 the config could not be read.
        Command::Doctor(args) => {
            seald::cli::doctor::run(&cli.config, &args, &mut std::io::stdout())
                .map(ExitCode::from)
                .map_err(Into::into)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sealctl: {e}");
            ExitCode::FAILURE
        }
    }
}
