//! Shared by the custodian commands: find a token by serial and log it in with a PIN read
//! from the terminal (or `--pin-stdin`).

use std::sync::Arc;

use clap::Args;

use crate::config::Config;
use crate::device::{Devices, FinalTry, TokenOwner};

use super::prompt::PinSource;

/// Which token, and where its PIN comes from.
#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    /// The token's serial number (`sealctl devices` lists them).
    #[arg(long, value_name = "SERIAL")]
    pub token: String,
    /// Read PINs one per line from standard input instead of the terminal (automation).
    #[arg(long)]
    pub pin_stdin: bool,
}

/// The configured devices and the owner of the token asked for.
pub fn open(
    config: &Config,
    args: &TokenArgs,
) -> Result<(Devices, Arc<TokenOwner>), Box<dyn std::error::Error>> {
    let devices = Devices::open(&config.modules)?;
    let owner = devices.token(&args.token)?;
    Ok((devices, owner))
}

/// Logs the token in with the user PIN; refuses to spend the last try.
pub fn login(owner: &TokenOwner, pins: &mut PinSource) -> Result<(), Box<dyn std::error::Error>> {
    let pin = pins.read(&format!("user PIN of token {}", owner.serial()))?;
    owner.login(&pin, FinalTry::Refuse)?;
    Ok(())
}
