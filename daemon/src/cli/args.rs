//! The command lines of `seald` and `sealctl` (clap), in the library so that packaging can
//! generate their man pages and shell completions.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Where the Debian package installs the config.
pub const INSTALLED_CONFIG: &str = "/etc/seald/seald.toml";

/// The config file when `--config` is not given: `config/seald.toml` in a source checkout,
/// else the installed one (if neither exists, the local name, for the error to name).
pub fn default_config() -> PathBuf {
    let local = PathBuf::from("config/seald.toml");
    if !local.exists() && std::path::Path::new(INSTALLED_CONFIG).exists() {
        INSTALLED_CONFIG.into()
    } else {
        local
    }
}

/// The electronic seal daemon: serves the localhost API.
#[derive(Debug, Parser)]
#[command(name = "seald", version)]
pub struct SealdArgs {
    /// Configuration file (TOML). Default: `config/seald.toml` if there is one here, else
    /// the installed `/etc/seald/seald.toml`.
    #[arg(long, short, default_value_os_t = default_config())]
    pub config: PathBuf,
    /// Create the store (0600) if it does not exist yet: for the first start. Without it seald
    /// refuses to start on a missing store rather than begin again on an empty one.
    #[arg(long)]
    pub init: bool,
    #[command(subcommand)]
    pub command: Option<SealdCommand>,
}

#[derive(Debug, Subcommand)]
pub enum SealdCommand {
    /// Makes a demo store, hsm-sim token, seal and identities, starts the API and prints curl
    /// lines that carry one stamp from request to verified signature.
    Demo {
        /// Directory to create (default: a new one under the temp directory).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// hsm-sim vendor profile: sansec (raw signatures) or tass (DER signatures).
        #[arg(long, default_value = "sansec")]
        profile: String,
        /// Address to listen on.
        #[arg(long, default_value = crate::config::DEFAULT_LISTEN)]
        listen: String,
        /// Also enrol seals 2-4 (4 valid for a few seconds), for tests.
        #[arg(long, hide = true)]
        extra_seals: bool,
        /// Set up only; do not start the daemon.
        #[arg(long)]
        setup_only: bool,
        /// A PostgreSQL database to use as the store (`postgres://…`) instead of a SQLite
        /// file in the directory; the directory keeps the token key and documents.
        #[arg(long)]
        store: Option<String>,
    },
}

/// Custodian and administrator tool for seald.
#[derive(Debug, Parser)]
#[command(name = "sealctl", version)]
pub struct SealctlArgs {
    /// Configuration file (TOML). Default: `config/seald.toml` if there is one here, else
    /// the installed `/etc/seald/seald.toml`.
    #[arg(long, short, global = true, default_value_os_t = default_config())]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: SealctlCommand,
}

#[derive(Debug, Subcommand)]
pub enum SealctlCommand {
    /// List PKCS#11 modules, their tokens and PIN state (no PIN needed).
    Devices {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Manage identities (client apps, approvers, custodians, auditors, admins).
    User(crate::cli::user::UserArgs),
    /// Verify, export or prune the usage log.
    Audit(crate::cli::audit::AuditArgs),
    /// List seals, show their history, suspend, resume, revoke or report them lost; enrol
    /// one through the daemon.
    Seal(crate::cli::seal::SealArgs),
    /// Generate a key pair on a token, write a CSR signed on it, import the CA's certificate.
    Key(crate::cli::key::KeyArgs),
    /// Change, unblock or inspect a token's user PIN (read from the terminal, never argv).
    Pin(crate::cli::pin::PinArgs),
    /// Log a token in through the running daemon (PIN from the terminal, or --pin-stdin).
    Login(crate::cli::remote::RemoteArgs),
    /// Log a token out through the running daemon.
    Logout(crate::cli::remote::RemoteArgs),
    /// Change a token's user PIN through the running daemon (current, then new twice).
    PinChange(crate::cli::remote::RemoteArgs),
    /// Re-set a locked user PIN with the SO PIN through the running daemon (SO PIN, then the
    /// new user PIN twice).
    PinUnblock(crate::cli::remote::RemoteArgs),
    /// Hand a seal to another custodian (who must then change the PIN).
    Custody(crate::cli::custody::CustodyArgs),
    /// Write a consistent snapshot of the store, usage log and token key (works while seald runs).
    Backup(crate::cli::backup::BackupArgs),
    /// Replace the store with a backup whose usage log verifies (seald must be stopped).
    Restore(crate::cli::backup::BackupArgs),
    /// Seal OFD files through the running daemon: one request, approvals, sealed files back.
    Stamp(crate::cli::stamp::StampArgs),
    /// Print a one-time link that opens the web console signed in (the code in it works
    /// once, for 2 minutes; the API token stays in its file).
    Console(crate::cli::console::ConsoleArgs),
    /// Verify a seal (.esl), a SES_Signature (.dat/.der) or every signature in an OFD file.
    Verify(crate::cli::verify::VerifyArgs),
    /// Check the whole deployment: config, modules, pcscd, tokens and PINs, seal and
    /// certificate expiries, trust roots, store, usage log, listener and HTTP guards. Prints
    /// ok/warn/FAIL lines; exit status 0 (no failure), 1 (a check failed) or 2 (no config).
    Doctor(crate::cli::doctor::DoctorArgs),
}
