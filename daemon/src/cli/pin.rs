//! `sealctl pin change|unblock|status`: directly on the device, recorded in the store's usage
//! log (never the PIN).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::prompt::PinSource;
use super::token::{self, TokenArgs};
use crate::clock::{Clock, ManualClock, SystemClock};
use crate::config::Config;
use crate::custody::{AgeStatus, Custodians, CustodyError};
use crate::device::{DeviceError, FinalTry};
use crate::identity::Caller;
use crate::store::Store;

/// Change, unblock or inspect a token's user PIN.
#[derive(Debug, Args)]
pub struct PinArgs {
    #[command(flatten)]
    token: TokenArgs,
    /// The seald store (SQLite file or `postgres://` URL) whose usage log records PIN changes.
    #[arg(long, value_name = "PATH")]
    store: PathBuf,
    #[command(subcommand)]
    command: PinCommand,
}

#[derive(Debug, Subcommand)]
enum PinCommand {
    /// Change the user PIN: the current PIN, then the new one twice.
    Change {
        /// Spend the token's last PIN try if it reports one left (a wrong PIN then locks it).
        #[arg(long)]
        final_try: bool,
    },
    /// Unblock (re-set) the user PIN with the security officer's PIN, then the new one twice.
    Unblock {
        /// Spend the token's last SO PIN try if it reports one left (a wrong SO PIN then locks
        /// the token for good).
        #[arg(long)]
        final_try: bool,
    },
    /// Tries left (where the device says), last change and age against the PIN policy.
    Status {
        /// Judge the age at this time (RFC 3339) instead of now.
        #[arg(long, hide = true, value_parser = parse_time)]
        at: Option<OffsetDateTime>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

fn parse_time(text: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(text, &Rfc3339).map_err(|e| format!("`{text}`: {e}"))
}

fn when(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp(ms / 1000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// Runs `sealctl pin …`.
pub fn run(config: &Config, args: PinArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let clock: Arc<dyn Clock> = match &args.command {
        PinCommand::Status { at: Some(at), .. } => Arc::new(ManualClock::new(*at)),
        _ => Arc::new(SystemClock),
    };
    let store = Arc::new(Store::open_existing(&args.store)?);
    let custodians = Custodians::new(store, clock);
    let (_devices, owner) = token::open(config, &args.token)?;
    let actor = Caller::local_from_env().name();
    let policy = &config.pin_policy;
    match args.command {
        PinCommand::Change { final_try } => {
            let mut pins = PinSource::open(args.token.pin_stdin)?;
            let old = pins.read(&format!("current PIN of token {}", owner.serial()))?;
            let new = pins.read_new("new PIN")?;
            let final_try = FinalTry::confirmed_if(final_try);
            let record = custodians
                .change_pin(&owner, &actor, &old, &new, policy, final_try)
                .map_err(|e| match e {
                    CustodyError::Device(DeviceError::FinalTryNotConfirmed) => format!(
                        "{e}; if you are sure of the current PIN, run again with --final-try"
                    )
                    .into(),
                    other => Box::<dyn std::error::Error>::from(other),
                })?;
            println!("the PIN of token {} was changed", owner.serial());
            if let Some(warning) = record.warning() {
                eprintln!("warning: {warning}");
            }
        }
        PinCommand::Unblock { final_try } => {
            let mut pins = PinSource::open(args.token.pin_stdin)?;
            let so = pins.read(&format!("SO PIN of token {}", owner.serial()))?;
            let new = pins.read_new("new user PIN")?;
            let record = custodians
                .unblock(
                    &owner,
                    &actor,
                    &so,
                    &new,
                    policy,
                    FinalTry::confirmed_if(final_try),
                )
                .map_err(|e| match e {
                    CustodyError::Device(DeviceError::SoFinalTryNotConfirmed) => {
                        format!("{e}; if you are sure of the SO PIN, run again with --final-try")
                            .into()
                    }
                    other => Box::<dyn std::error::Error>::from(other),
                })?;
            println!(
                "the user PIN of token {} was re-set by the security officer; the custodian must now change it (sealctl pin change) before any seal on the token stamps again",
                owner.serial()
            );
            if let Some(warning) = record.warning() {
                eprintln!("warning: {warning}");
            }
        }
        PinCommand::Status { json, .. } => {
            let status = custodians.pin_status(&owner, policy)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                println!("token {}", status.serial);
                println!("  PIN flags:   {}", status.flags.summary());
                let tries = match status.tries_left {
                    crate::device::TriesLeft::NotReported => "not reported by the device",
                    crate::device::TriesLeft::Few => "few (the device reports the count is low)",
                    crate::device::TriesLeft::One => "one (the next wrong PIN locks the token)",
                };
                println!("  tries left:  {tries}");
                match (status.age.last_change_ms, status.age.age_days) {
                    (Some(at), Some(days)) => {
                        println!("  last change: {} ({days} days ago)", when(at))
                    }
                    _ => println!("  last change: none recorded by seald"),
                }
                if policy.max_age_days > 0 {
                    println!(
                        "  policy:      change every {} days (warnings from {} days before)",
                        policy.max_age_days, policy.warn_days
                    );
                }
                if let Some(due) = status.age.due_ms {
                    println!("  due by:      {}", when(due));
                }
                let verdict = match status.age.status {
                    AgeStatus::Ok => "ok",
                    AgeStatus::Warn => "change soon",
                    AgeStatus::Overdue => "overdue",
                    AgeStatus::Unknown => "unknown",
                    AgeStatus::NoLimit => "no age limit",
                };
                println!("  status:      {verdict}");
                if let Some(warning) = status.age.warning() {
                    println!("{warning}");
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
