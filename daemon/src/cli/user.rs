//! `sealctl user add|list|disable|enable|token`: manage identities directly in the store.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};

use crate::clock::SystemClock;
use crate::identity::{key_path_for, Caller, Identities, Role, TokenKey};
use crate::store::Store;

/// Manage client apps and people (admins only: needs write access to the store).
#[derive(Debug, Args)]
pub struct UserArgs {
    /// The seald store: a SQLite file (token key `<store>.token-key`) or a `postgres://` URL
    /// (token key `$SEALD_DATA_DIR/seald.token-key`).
    #[arg(long, value_name = "PATH")]
    pub store: PathBuf,
    #[command(subcommand)]
    command: UserCommand,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Add an identity and print its bearer token (shown only this once).
    Add {
        /// Unique name.
        name: String,
        /// Role: client, approver, custodian, auditor, admin (repeat for several).
        #[arg(long = "role", required = true, value_parser = parse_role)]
        roles: Vec<Role>,
    },
    /// List identities.
    List,
    /// Disable an identity: its token stops working at once.
    Disable {
        /// Name.
        name: String,
    },
    /// Re-enable a disabled identity.
    Enable {
        /// Name.
        name: String,
    },
    /// Issue a new token (the old one stops working) and print it once.
    Token {
        /// Name.
        name: String,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
        .map_err(|e| format!("{e}; use client, approver, custodian, auditor or admin"))
}

/// Runs `sealctl user …`.
pub fn run(args: UserArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    if crate::store::is_postgres_url(&args.store.to_string_lossy())
        && std::env::var_os("SEALD_DATA_DIR").is_none()
    {
        return Err(
            "with a PostgreSQL store, set SEALD_DATA_DIR to the data directory holding \
             the nodes' seald.token-key ([postgres] data_dir): tokens are hashed with it"
                .into(),
        );
    }
    let store = Arc::new(Store::open(&args.store)?);
    let key = Arc::new(TokenKey::load_or_create(&key_path_for(store.path()))?);
    let ids = Identities::new(store, Arc::new(SystemClock), key);
    let me = Caller::local_from_env();
    match args.command {
        UserCommand::Add { name, roles } => {
            let (identity, token) = ids.add(&me, &name, &roles)?;
            eprintln!(
                "added {} ({}); its token follows and will not be shown again:",
                identity.name,
                roles_text(&identity.roles)
            );
            println!("{}", token.expose());
        }
        UserCommand::List => {
            println!("{:<24} {:<40} {:<8} created", "name", "roles", "state");
            for i in ids.list(&me)? {
                let created = time::OffsetDateTime::from_unix_timestamp(i.created_at)
                    .map(|t| t.date().to_string())
                    .unwrap_or_default();
                let state = if i.disabled { "disabled" } else { "active" };
                println!(
                    "{:<24} {:<40} {:<8} {created}",
                    i.name,
                    roles_text(&i.roles),
                    state
                );
            }
        }
        UserCommand::Disable { name } => {
            ids.set_disabled(&me, &name, true)?;
            eprintln!("disabled {name}");
        }
        UserCommand::Enable { name } => {
            ids.set_disabled(&me, &name, false)?;
            eprintln!("enabled {name}");
        }
        UserCommand::Token { name } => {
            let token = ids.rotate_token(&me, &name)?;
            eprintln!(
                "new token for {name}; the old one no longer works; it will not be shown again:"
            );
            println!("{}", token.expose());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn roles_text(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(",")
}
