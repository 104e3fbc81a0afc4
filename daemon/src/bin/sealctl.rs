//! `sealctl`: custodian and administrator tool.

use clap::Parser;

/// Custodian and administrator tool for seald.
#[derive(Debug, Parser)]
#[command(version)]
enum Command {
    /// Show the version (placeholder until the first command lands).
    Version,
}

fn main() {
    match Command::parse() {
        Command::Version => println!("sealctl {}", env!("CARGO_PKG_VERSION")),
    }
}
