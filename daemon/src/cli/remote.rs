//! `sealctl login|logout|pin-change|pin-unblock --daemon URL`: custodian PIN operations through a running
//! seald, as an HTTP client. PINs come from the terminal without echo (or `--pin-stdin`) and
//! go only into the request body; the API token comes from a 0600 file.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use secrecy::ExposeSecret;
use zeroize::Zeroizing;

use super::client::DaemonClient;
use super::prompt::PinSource;
use crate::device::Pin;

/// Where the daemon is and who you are.
#[derive(Debug, Args)]
pub struct RemoteArgs {
    /// The running daemon (e.g. http://127.0.0.1:7780).
    #[arg(long, value_name = "URL")]
    pub daemon: String,
    /// The 0600 file holding your API token; default: the file `SEALD_TOKEN_FILE` names.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Token serial.
    #[arg(long, value_name = "SERIAL")]
    pub token: String,
    /// Read PINs as lines from standard input instead of the terminal (automation).
    #[arg(long)]
    pub pin_stdin: bool,
    /// Spend the token's last PIN try (the SO PIN's, for pin-unblock) if it reports one left.
    #[arg(long)]
    pub final_try: bool,
    /// login only: the stamp request this PIN entry is for (seals with
    /// `pin_mode = each-stamp` sign only the request their token's login names).
    #[arg(long, value_name = "ID")]
    pub for_request: Option<i64>,
}

/// A JSON string literal of `pin`, in memory that is wiped afterwards.
fn json_pin(pin: &Pin) -> Zeroizing<String> {
    Zeroizing::new(serde_json::to_string(pin.auth().expose_secret()).unwrap_or_default())
}

fn client(args: &RemoteArgs) -> Result<DaemonClient, Box<dyn std::error::Error>> {
    Ok(DaemonClient::new(&args.daemon, args.token_file.as_deref())?)
}

/// `sealctl login --daemon URL --token SERIAL`: the daemon logs the token in with your PIN.
pub fn login(args: RemoteArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let client = client(&args)?;
    let mut pins = PinSource::open(args.pin_stdin)?;
    let pin = pins.read(&format!("PIN of token {}", args.token))?;
    let for_request = args
        .for_request
        .map(|id| format!(",\"for_request\":{id}"))
        .unwrap_or_default();
    let body = Zeroizing::new(format!(
        "{{\"pin\":{},\"confirm_final_try\":{}{for_request}}}",
        json_pin(&pin).as_str(),
        args.final_try
    ));
    drop(pin);
    let answer = client.call_bytes(
        "POST",
        &format!("/v1/devices/{}/login", args.token),
        Some(body.as_bytes()),
    )?;
    eprintln!("token {} is logged in through seald", args.token);
    if let Some(warning) = answer["pin_warning"].as_str() {
        eprintln!("{warning}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `sealctl logout --daemon URL --token SERIAL`.
pub fn logout(args: RemoteArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    client(&args)?.call_bytes("POST", &format!("/v1/devices/{}/logout", args.token), None)?;
    eprintln!("token {} is logged out", args.token);
    Ok(ExitCode::SUCCESS)
}

/// `sealctl pin-change --daemon URL --token SERIAL`: current PIN, then the new one twice.
pub fn pin_change(args: RemoteArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let client = client(&args)?;
    let mut pins = PinSource::open(args.pin_stdin)?;
    let old = pins.read(&format!("current PIN of token {}", args.token))?;
    let new = pins.read_new("new PIN")?;
    let body = Zeroizing::new(format!(
        "{{\"old_pin\":{},\"new_pin\":{},\"confirm_final_try\":{}}}",
        json_pin(&old).as_str(),
        json_pin(&new).as_str(),
        args.final_try
    ));
    drop((old, new));
    let answer = client.call_bytes(
        "POST",
        &format!("/v1/devices/{}/pin", args.token),
        Some(body.as_bytes()),
    )?;
    eprintln!("the user PIN of token {} was changed", args.token);
    if let Some(warning) = answer["warning"].as_str() {
        eprintln!("warning: {warning}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `sealctl pin-unblock --daemon URL --token SERIAL`: the SO PIN, then the new user PIN twice.
/// The daemon checks the new PIN against its policy before the device sees it, and logs the
/// token out; a custodian then logs in with the new PIN.
pub fn pin_unblock(args: RemoteArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let client = DaemonClient::new(&args.daemon, args.token_file.as_deref())?;
    let mut pins = PinSource::open(args.pin_stdin)?;
    let so = pins.read(&format!("SO PIN of token {}", args.token))?;
    let new = pins.read_new("new user PIN")?;
    let body = Zeroizing::new(format!(
        "{{\"so_pin\":{},\"new_pin\":{},\"confirm_final_try\":{}}}",
        json_pin(&so).as_str(),
        json_pin(&new).as_str(),
        args.final_try
    ));
    drop((so, new));
    let answer = client.call_bytes(
        "POST",
        &format!("/v1/devices/{}/pin-unblock", args.token),
        Some(body.as_bytes()),
    )?;
    eprintln!(
        "the user PIN of token {} was re-set with the SO PIN; the token is logged out: the custodian logs in with the new PIN (sealctl login) and must change it (sealctl pin-change) before any seal on the token stamps again",
        args.token
    );
    if let Some(warning) = answer["warning"].as_str() {
        eprintln!("warning: {warning}");
    }
    Ok(ExitCode::SUCCESS)
}
