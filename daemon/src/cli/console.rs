//! `sealctl console --daemon URL [--token-file F]`: prints a one-time link that opens the web
//! console signed in as the token's identity. The link carries a short-lived, single-use code
//! in its fragment (never the API token, which stays in its 0600 file).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::client::DaemonClient;

/// Where the daemon is and who you are.
#[derive(Debug, Args)]
pub struct ConsoleArgs {
    /// The running daemon (e.g. http://127.0.0.1:7780).
    #[arg(long, value_name = "URL")]
    pub daemon: String,
    /// The 0600 file holding your API token; default: the file `SEALD_TOKEN_FILE` names.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

/// Asks the daemon for a sign-in code; prints the link on standard output.
pub fn run(args: ConsoleArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let client = DaemonClient::new(&args.daemon, args.token_file.as_deref())?;
    let answer = client.call_bytes("POST", "/v1/console/links", None)?;
    let path = answer["path"]
        .as_str()
        .ok_or("the daemon's answer has no link; is it an older seald?")?;
    let secs = answer["expires_in_secs"].as_u64().unwrap_or(0);
    println!("{}{path}", args.daemon.trim_end_matches('/'));
    eprintln!(
        "open this link in a browser on this machine within {secs} seconds; it works once. \
         The console session it opens ends when you sign out, or after a while without use (`api.console_idle_secs`)."
    );
    Ok(ExitCode::SUCCESS)
}
