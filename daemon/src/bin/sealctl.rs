//! `sealctl`: custodian and administrator tool.

use clap::Parser;

/// Custodian and administrator tool for seald.
#[derive(Debug, Parser)]
#[command(version)]
enum Command {
    /// Show the version (placeholder until the first command lands).
    Version,
    /// Verify a seal (.esl), a SES_Signature (.dat/.der) or every signature in an OFD file.
    Verify(seald::cli::verify::VerifyArgs),
}

fn main() {
    match Command::parse() {
        Command::Version => println!("sealctl {}", env!("CARGO_PKG_VERSION")),
        Command::Verify(args) => std::process::exit(seald::cli::verify::run(&args)),
    }
}
