//! `sealctl custody transfer|show`: who holds a seal, directly in the store (`--store`), or
//! through a running daemon (`--daemon URL`, token from a 0600 file: admin to transfer, so the
//! `custody-transferred` event goes out; admin, auditor or custodian to show).

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
    /// The seald store: a SQLite file, or a `postgres://` URL (with `SEALD_DATA_DIR`).
    #[arg(long, value_name = "PATH", global = true)]
    store: Option<PathBuf>,
    /// Go through the running daemon at this URL (e.g. http://127.0.0.1:7780).
    #[arg(long, value_name = "URL", global = true, conflicts_with = "store")]
    daemon: Option<String>,
    /// The 0600 file holding your API token (admin to transfer; admin, auditor or custodian to
    /// show); default: the file `SEALD_TOKEN_FILE` names.
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
    /// Show a seal's custodian and whether a PIN change is owed before its next stamp.
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
        CustodyCommand::Show { seal } => {
            print_status(&serde_json::to_value(custodians.status(seal)?)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints a custody status (as [`crate::custody::CustodyStatus`] serialises, from the store or
/// from `GET /v1/seals/{id}/custody`).
fn print_status(v: &serde_json::Value) {
    let (seal, serial) = (&v["seal_id"], v["device_serial"].as_str().unwrap_or("?"));
    let custody = &v["custody"];
    let mut line = match custody["custodian"].as_str() {
        Some(custodian) => format!(
            "seal {seal} (token {serial}) held by {custodian} (assigned by {} at {})",
            custody["assigned_by"].as_str().unwrap_or("?"),
            custody["assigned_at"],
        ),
        None => format!("seal {seal} (token {serial}) has no custodian on record"),
    };
    if let Some(at) = v["pin_reset_at"].as_i64() {
        line.push_str(&format!(
            "; the security officer re-set the token's PIN at {at}: PIN change required before the next stamp (sealctl pin-change)"
        ));
    } else if v["pin_change_required"] == true {
        line.push_str("; PIN change required before the next stamp (sealctl pin-change)");
    }
    println!("{line}");
}

/// `POST` or `GET /v1/seals/{id}/custody` on the daemon at `url`.
fn through_daemon(
    url: &str,
    token_file: Option<&Path>,
    command: CustodyCommand,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let client = DaemonClient::new(url, token_file)?;
    let (seal, to) = match command {
        CustodyCommand::Show { seal } => {
            print_status(&client.call("GET", &format!("/v1/seals/{seal}/custody"), None)?);
            return Ok(ExitCode::SUCCESS);
        }
        CustodyCommand::Transfer { seal, to } => (seal, to),
    };
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
