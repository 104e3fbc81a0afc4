//! `sealctl doctor`: checks a deployment end to end (config, device modules, pcscd, tokens and
//! their PIN state, seal and certificate expiries, trust roots, the store, the usage-log chain,
//! the listener and the HTTP guards) and prints one `ok`/`warn`/`FAIL` line per check.
//!
//! Each check runs on its own: one that fails does not stop the others (only a config that
//! cannot be read stops everything, since every other check needs it). Exit status: 0 when
//! nothing failed (warnings alone are 0), 1 when a check failed, 2 when the config could not
//! be read. Nothing here prints a PIN or an API token.

mod checks;

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::Serialize;

use crate::audit::NotedHead;
use crate::config::Config;

/// Check the whole deployment and say what is wrong and what to do.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print JSON (`{"checks":[{"name","status","message"}],"ok":N,"warn":N,"fail":N}`)
    /// instead of lines.
    #[arg(long)]
    pub json: bool,
    /// The running daemon to probe (default: `http://` + `listen` from the config).
    #[arg(long, value_name = "URL")]
    pub daemon: Option<String>,
    /// A 0600 file holding an API token (any role): with it the doctor asks the running
    /// daemon which tokens are logged in. Default: the file `SEALD_TOKEN_FILE` names, if set.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// A usage-log head noted earlier (`SEQ:HASH[@TIME]`, as `sealctl audit verify` and this
    /// command print it): it must still be in the log with the same hash. Repeatable.
    #[arg(long = "expect-head", value_name = "SEQ:HASH")]
    pub expect_head: Vec<NotedHead>,
    /// A seal, certificate or trust root ending within this many days is a warning (one
    /// already ended is a failure).
    #[arg(long, value_name = "DAYS", default_value_t = 30)]
    pub warn_days: u32,
}

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Nothing to do.
    Ok,
    /// Works now, but needs attention (soon).
    Warn,
    /// Broken: seald cannot do (part of) its work until this is fixed.
    Fail,
}

impl Status {
    /// The word at the start of a line, padded to one width.
    fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok  ",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        }
    }
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable id: `config`, `module:<name>`, `pcscd`, `token:<serial>`, `seal:<id>`,
    /// `trust_roots`, `store`, `usage_log`, `usage_log:head:<seq>`, `login_state`,
    /// `listener`, `api_guards`.
    pub name: String,
    /// Its outcome.
    pub status: Status,
    /// What was found, and for a warning or failure what to do about it.
    pub message: String,
}

impl Check {
    /// A check with `status`.
    pub fn new(name: impl Into<String>, status: Status, message: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            status,
            message: message.into(),
        }
    }

    /// A passed check.
    pub fn ok(name: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(name, Status::Ok, message)
    }

    /// A warning.
    pub fn warn(name: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(name, Status::Warn, message)
    }

    /// A failure.
    pub fn fail(name: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(name, Status::Fail, message)
    }
}

/// Every check, in the order they are printed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The checks.
    pub checks: Vec<Check>,
}

impl Report {
    /// How many checks came out `status`.
    pub fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }

    /// 0: nothing failed; 1: a check failed.
    pub fn exit_code(&self) -> u8 {
        u8::from(self.count(Status::Fail) > 0)
    }

    /// Writes the report as lines (`ok    name: message`) and a summary, or as JSON.
    pub fn write(&self, json: bool, out: &mut dyn Write) -> std::io::Result<()> {
        let (ok, warn, fail) = (
            self.count(Status::Ok),
            self.count(Status::Warn),
            self.count(Status::Fail),
        );
        if json {
            let value = serde_json::json!({
                "checks": self.checks,
                "ok": ok,
                "warn": warn,
                "fail": fail,
            });
            serde_json::to_writer_pretty(&mut *out, &value)?;
            return writeln!(out);
        }
        for check in &self.checks {
            writeln!(
                out,
                "{}  {}: {}",
                check.status.label(),
                check.name,
                check.message
            )?;
        }
        writeln!(out, "{ok} ok, {warn} warn, {fail} fail")
    }
}

/// Runs every check on the deployment `config_path` describes and writes the report to `out`;
/// returns the exit status (0 no failure, 1 a check failed, 2 the config could not be read).
pub fn run(config_path: &Path, args: &DoctorArgs, out: &mut dyn Write) -> std::io::Result<u8> {
    let config = match Config::load(config_path) {
        Ok(config) => config,
        Err(e) => {
            let report = Report {
                checks: vec![Check::fail(
                    "config",
                    format!(
                        "{e}; fix the file (every key is described in config/seald.toml) or give the right one with --config, then run sealctl doctor again"
                    ),
                )],
            };
            report.write(args.json, out)?;
            return Ok(2);
        }
    };
    let report = checks::all(config_path, &config, args);
    report.write(args.json, out)?;
    Ok(report.exit_code())
}
