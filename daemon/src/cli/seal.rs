//! `sealctl seal list|history|expiring|suspend|resume|revoke|report-lost|enroll`: the seal
//! registry, directly in the store, or for state changes through a running daemon
//! (`--daemon URL`), so it fails the seal's open requests and announces the change on its
//! events stream. Enrolment needs the device and the seal-maker key: it only goes through
//! seald (`enroll --daemon URL`, see [`crate::cli::enroll`]).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use serde_json::Value;

use crate::cert::TrustStore;
use crate::cli::client::DaemonClient;
use crate::cli::enroll::EnrollArgs;
use crate::clock::{SystemClock, Timestamp};
use crate::identity::Caller;
use crate::seal::{Registry, SealId, SealState};
use crate::store::Store;

/// Show seals and change their state (revoked and lost are final).
#[derive(Debug, Args)]
pub struct SealArgs {
    /// The seald store: a SQLite file, or a `postgres://` URL (with `SEALD_DATA_DIR`).
    #[arg(long, value_name = "PATH")]
    pub store: Option<PathBuf>,
    /// Change state through the running daemon at this URL (e.g. http://127.0.0.1:7780).
    #[arg(long, value_name = "URL")]
    pub daemon: Option<String>,
    /// The 0600 file holding your API token (admin); default: the file `SEALD_TOKEN_FILE` names.
    #[arg(long, value_name = "FILE", requires = "daemon")]
    pub token_file: Option<PathBuf>,
    #[command(subcommand)]
    command: SealCommand,
}

#[derive(Debug, Subcommand)]
enum SealCommand {
    /// List seals with state and validity.
    List,
    /// A seal's state changes, with reason, actor and time.
    History {
        /// Seal id.
        id: SealId,
    },
    /// Seals that expire within 30 days or have expired.
    Expiring,
    /// Suspend a seal (it refuses stamps until resumed).
    Suspend {
        /// Seal id.
        id: SealId,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Return a suspended seal to active.
    Resume {
        /// Seal id.
        id: SealId,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Revoke a seal for good.
    Revoke {
        /// Seal id.
        id: SealId,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Enrol a seal through the daemon (needs --daemon): its key on a token, its certificate,
    /// image and policy; the daemon's `[maker]` key signs its SES_Seal.
    Enroll(Box<EnrollArgs>),
    /// Report a seal's key or device lost (final; the seal refuses at once).
    ReportLost {
        /// Seal id.
        id: SealId,
        /// What happened.
        #[arg(long)]
        reason: String,
    },
}

fn when(ts: Timestamp) -> String {
    OffsetDateTime::from_unix_timestamp(ts)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| ts.to_string())
}

/// The state change a command asks for, if it is one: (seal, API action, reason).
fn state_change(command: &SealCommand) -> Option<(SealId, &'static str, &str)> {
    match command {
        SealCommand::Suspend { id, reason } => Some((*id, "suspend", reason)),
        SealCommand::Resume { id, reason } => Some((*id, "resume", reason)),
        SealCommand::Revoke { id, reason } => Some((*id, "revoke", reason)),
        SealCommand::ReportLost { id, reason } => Some((*id, "report-lost", reason)),
        _ => None,
    }
}

/// `POST /v1/seals/{id}/{action}` on the daemon at `url`.
fn change_through_daemon(
    url: &str,
    token_file: Option<&std::path::Path>,
    (id, action, reason): (SealId, &str, &str),
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let client = DaemonClient::new(url, token_file)?;
    let answer = client.call(
        "POST",
        &format!("/v1/seals/{id}/{action}"),
        Some(&serde_json::json!({ "reason": reason })),
    )?;
    let seal = &answer["seal"];
    eprintln!(
        "seal {id} ({}) is now {}",
        seal["name"].as_str().unwrap_or("?"),
        seal["state"].as_str().unwrap_or("?")
    );
    if let Some(failed) = answer["failed_requests"]
        .as_array()
        .filter(|f| !f.is_empty())
    {
        let ids: Vec<String> = failed.iter().map(Value::to_string).collect();
        eprintln!("open requests failed with the reason: {}", ids.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

/// Why `enroll` needs `--daemon`.
pub const ENROLL_NEEDS_DAEMON: &str = "enrolment needs the seal's device and the seal-maker key, which seald holds: run `sealctl seal --daemon URL [--token-file F] enroll …` against the running daemon (admin token)";

/// Runs `sealctl seal …`.
pub fn run(args: SealArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    if let SealCommand::Enroll(enroll) = &args.command {
        let Some(url) = &args.daemon else {
            return Err(ENROLL_NEEDS_DAEMON.into());
        };
        return crate::cli::enroll::run(url, args.token_file.as_deref(), enroll);
    }
    if let Some(url) = &args.daemon {
        let Some(change) = state_change(&args.command) else {
            return Err("--daemon is for enroll, suspend, resume, revoke and report-lost; list, history and expiring read the store (--store)".into());
        };
        return change_through_daemon(url, args.token_file.as_deref(), change);
    }
    let Some(store) = &args.store else {
        return Err(
            "name the store with --store PATH, or a running daemon with --daemon URL".into(),
        );
    };
    let store = Arc::new(Store::open_existing(store)?);
    // No enrolment here, so no trust roots are needed.
    let registry = Registry::new(
        store,
        Arc::new(SystemClock),
        Arc::new(TrustStore::default()),
    );
    let me = Caller::local_from_env();
    let change = |id, to, reason: &str| -> Result<ExitCode, Box<dyn std::error::Error>> {
        let seal = registry.change_state(&me, id, to, reason)?;
        eprintln!("seal {id} ({}) is now {}", seal.name, seal.state);
        Ok(ExitCode::SUCCESS)
    };
    match args.command {
        SealCommand::List => {
            println!(
                "{:<5} {:<14} {:<10} {:<26} {:<26} name",
                "id", "kind", "state", "valid from", "valid to"
            );
            for s in registry.list()? {
                println!(
                    "{:<5} {:<14} {:<10} {:<26} {:<26} {}",
                    s.id,
                    s.kind,
                    s.state,
                    when(s.valid_from),
                    when(s.valid_to),
                    s.name
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        SealCommand::History { id } => {
            registry.get(id)?;
            for e in registry.history(id)? {
                let from = e.from.map(|s| s.as_str()).unwrap_or("-");
                println!(
                    "{} {from} -> {} by {}: {}",
                    when(e.at),
                    e.to,
                    e.actor,
                    e.reason
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        SealCommand::Expiring => {
            for w in registry.expiry_warnings()? {
                println!(
                    "seal {} ({}) ends {}: {}",
                    w.seal_id,
                    w.name,
                    when(w.valid_to),
                    serde_json::to_string(&w.expiry)?
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        SealCommand::Suspend { id, reason } => change(id, SealState::Suspended, &reason),
        SealCommand::Resume { id, reason } => change(id, SealState::Active, &reason),
        SealCommand::Revoke { id, reason } => change(id, SealState::Revoked, &reason),
        SealCommand::ReportLost { id, reason } => change(id, SealState::Lost, &reason),
        SealCommand::Enroll(_) => Err(ENROLL_NEEDS_DAEMON.into()),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::seal::tests::{enrol_legal, fixture};

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: SealArgs,
    }

    fn sealctl(args: &[&str]) -> Result<ExitCode, Box<dyn std::error::Error>> {
        run(Cli::try_parse_from([&["seal"], args].concat())?.args)
    }

    #[test]
    fn state_changes_from_the_command_line() {
        let f = fixture();
        let seal = enrol_legal(&f, "ES-1");
        let path = f.dir.path().join("seald.db");
        let p = path.to_str().unwrap();
        let id = seal.id.to_string();
        sealctl(&["--store", p, "list"]).unwrap();
        sealctl(&["--store", p, "suspend", &id, "--reason", "inspection"]).unwrap();
        assert_eq!(f.registry.get(seal.id).unwrap().state, SealState::Suspended);
        sealctl(&["--store", p, "resume", &id, "--reason", "done"]).unwrap();
        sealctl(&["--store", p, "report-lost", &id, "--reason", "UKey lost"]).unwrap();
        assert_eq!(f.registry.get(seal.id).unwrap().state, SealState::Lost);
        // Lost is final.
        let err = sealctl(&["--store", p, "resume", &id, "--reason", "found it"]).unwrap_err();
        assert!(err.to_string().contains("final"), "{err}");
        // A reason is required.
        assert!(sealctl(&["--store", p, "revoke", &id]).is_err());
        let history = f.registry.history(seal.id).unwrap();
        assert_eq!(history.len(), 4);
        assert!(history[1].actor.starts_with("local:"));
        sealctl(&["--store", p, "history", &id]).unwrap();
        assert!(sealctl(&["--store", p, "history", "99"]).is_err());
        // Enrolment refuses without the daemon, naming why.
        for prefix in [&["--store", p][..], &[]] {
            let enroll = [
                "enroll",
                "--image",
                "i.png",
                "--kind",
                "contract",
                "--organisation",
                "O",
                "--name",
                "O章",
                "--es-id",
                "E",
                "--device",
                "S",
                "--key-id",
                "02",
                "--cert",
                "c.pem",
                "--policy",
                "p.toml",
            ];
            let err = sealctl(&[prefix, &enroll].concat()).unwrap_err();
            assert!(err.to_string().contains("seal-maker key"), "{err}");
        }
        assert_eq!(f.registry.list().unwrap().len(), 1);
    }
}
