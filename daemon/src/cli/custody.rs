//! `sealctl custody transfer|show`: who holds a seal, directly in the store (`--store`), or
//! for a transfer through a running daemon (`--daemon URL`, admin token from a 0600 file), so
//! the `custody-transferred` event goes out.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};

use super::client::DaemonClient;
use crate::clock::SystemClock;
use crate::custody::Custodians;
use crate::identity::Caller;
use crate::seal::SealId;
use crate::store::Store;

/// Hand a seal to another custodian.
#[derive(Debug, Args)]
pub struct CustodyArgs {
    /// The seald store (SQLite file).
    #[arg(long, value_name = "PATH", global = true)]
    store: Option<PathBuf>,
    /// Transfer through the running daemon at this URL (e.g. http://127.0.0.1:7780).
    #[arg(long, value_name = "URL", global = true, conflicts_with = "store")]
    daemon: Option<String>,
    /// The 0600 file holding your API token (admin); default: the file `SEALD_TOKEN_FILE` names.
    #[arg(long, value_name = "FILE", global = true)]
    token_file: Option<PathBuf>,
    #[command(subcommand)]
    command: CustodyCommand,
}

#[derive(Debug, Subcommand)]
enum CustodyCommand {
    /// Name a new custodian; they must change the PIN before their first stamp.
    Transfer {
        /// Seal id.
        seal: SealId,
        /// The new custodian's identity name.
        #[arg(long)]
        to: String,
    },
    /// Show a seal's custodian.
    Show {
        /// Seal id.
        seal: SealId,
    },
}

/// Runs `sealctl custody …`.
pub fn run(args: CustodyArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    if let Some(url) = &args.daemon {
        return through_daemon(url, args.token_file.as_deref(), args.command);
    }
    if args.token_file.is_some() {
        return Err("--token-file goes with --daemon URL".into());
    }
    let Some(store) = &args.store else {
        return Err("name the store (--store PATH) or the running daemon (--daemon URL)".into());
    };
    let store = Arc::new(Store::open_existing(store)?);
    let custodians = Custodians::new(store, Arc::new(SystemClock));
    match args.command {
        CustodyCommand::Transfer { seal, to } => {
            let c = custodians.transfer(&Caller::local_from_env().name(), seal, &to)?;
            println!(
                "seal {} is now held by {}; they must change the PIN (sealctl pin change) before its next stamp",
                c.seal_id, c.custodian
            );
        }
        CustodyCommand::Show { seal } => match custodians.custody(seal)? {
            Some(c) => println!(
                "seal {} held by {} (assigned by {} at {}){}",
                c.seal_id,
                c.custodian,
                c.assigned_by,
                c.assigned_at,
                if c.pin_change_required {
                    "; PIN change required before the next stamp"
                } else {
                    ""
                }
            ),
            None => println!("seal {seal} has no custodian on record"),
        },
    }
    Ok(ExitCode::SUCCESS)
}

/// `POST /v1/seals/{id}/custody` on the daemon at `url` (transfer only).
fn through_daemon(
    url: &str,
    token_file: Option<&Path>,
    command: CustodyCommand,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let CustodyCommand::Transfer { seal, to } = command else {
        return Err("custody show reads the store: use --store PATH".into());
    };
    let client = DaemonClient::new(url, token_file)?;
    let answer = client.call(
        "POST",
        &format!("/v1/seals/{seal}/custody"),
        Some(&serde_json::json!({ "to": to })),
    )?;
    let custody = &answer["custody"];
    let from = match answer["previous_custodian"].as_str() {
        Some(previous) => format!(" (from {previous})"),
        None => String::new(),
    };
    println!(
        "seal {} is now held by {}{from}; they must change the PIN (sealctl pin-change) before its next stamp",
        custody["seal_id"],
        custody["custodian"].as_str().unwrap_or("?"),
    );
    Ok(ExitCode::SUCCESS)
}
