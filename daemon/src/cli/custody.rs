//! `sealctl custody transfer|show`: who holds a seal.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};

use crate::clock::SystemClock;
use crate::custody::Custodians;
use crate::identity::Caller;
use crate::seal::SealId;
use crate::store::Store;

/// Hand a seal to another custodian.
#[derive(Debug, Args)]
pub struct CustodyArgs {
    /// The seald store (SQLite file).
    #[arg(long, value_name = "PATH")]
    store: PathBuf,
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
    let store = Arc::new(Store::open_existing(&args.store)?);
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
