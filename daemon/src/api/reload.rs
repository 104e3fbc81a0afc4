//! Reading the config file again while seald runs (SIGHUP, `systemctl reload seald`).
//!
//! Applied at once: the Host and Origin allow-lists (`[api] allowed_hosts`,
//! `allowed_origins`), the trust roots (`trust_roots`, files read again), the log level
//! (`[log] level`, unless `SEALD_LOG` is set) and who may read `/metrics` (`[metrics] public`).
//! Anything else that changed in the file (the listener, the store, modules, limits, …) keeps
//! its running value and is named as needing a restart. A file that does not load changes
//! nothing. Each applied reload is a `config-reload` record in the usage log (SM3 of the file).

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use crate::audit::NewRecord;
use crate::config::Config;
use crate::logging::LevelChange;
use crate::store::model::Digest32;

use super::state::AppState;

/// Keys a reload applies to the running daemon (`table.key`, or a top-level key).
pub const RELOADABLE: &[&str] = &[
    "api.allowed_hosts",
    "api.allowed_origins",
    "trust_roots",
    "log.level",
    "metrics.public",
];

/// What one reload did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// What was applied, one phrase each.
    pub applied: Vec<String>,
    /// Keys that changed in the file but take effect only after a restart.
    pub needs_restart: Vec<String>,
}

impl ReloadReport {
    /// One line for the log and the service manager's status.
    pub fn summary(&self) -> String {
        let mut text = format!("config reloaded: {}", self.applied.join("; "));
        if !self.needs_restart.is_empty() {
            text.push_str(&format!(
                "; changed but not applied until seald restarts: {}",
                self.needs_restart.join(", ")
            ));
        }
        text
    }
}

/// Reloads one config file into one running daemon.
#[derive(Debug)]
pub struct Reloader {
    path: PathBuf,
    /// The file's text as last applied (what "changed" is judged against).
    running: Mutex<String>,
}

impl Reloader {
    /// For the daemon started from `path`, whose text then was `text`.
    pub fn new(path: &Path, text: String) -> Self {
        Self {
            path: path.to_owned(),
            running: Mutex::new(text),
        }
    }

    /// Reads the file again and applies what is safe (see the module's doc). Blocking (file
    /// reads, the usage-log write).
    pub fn reload(&self, state: &Arc<AppState>) -> Result<ReloadReport, String> {
        let (config, text) = Config::load_with_text(&self.path)
            .map_err(|e| format!("config not reloaded, nothing changed: {e}"))?;
        let trust = config
            .load_trust()
            .map_err(|e| format!("config not reloaded, nothing changed: {e}"))?;
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let needs_restart = changed_keys(&running, &text)?
            .into_iter()
            .filter(|key| !RELOADABLE.contains(&key.as_str()))
            .collect();
        // On record before it takes effect: no change of trust without its usage record.
        let digest = Digest32(crate::crypto::sm3(text.as_bytes()));
        state
            .services
            .audit
            .append(NewRecord::config_reload("seald", &digest))
            .map_err(|e| {
                format!("config not reloaded, nothing changed: the usage log cannot record it: {e}")
            })?;

        let mut applied = Vec::new();
        state
            .policy
            .set_allowed(&config.api.allowed_hosts, &config.api.allowed_origins);
        applied.push(format!(
            "{} allowed hosts, {} allowed origins",
            config.api.allowed_hosts.len(),
            config.api.allowed_origins.len()
        ));
        let roots = trust.roots().len();
        state.trust.replace(Arc::new(trust));
        applied.push(format!("{roots} trust roots"));
        match crate::logging::reload_level(&config.log) {
            Ok(LevelChange::Set(level)) => applied.push(format!("log level {level}")),
            Ok(LevelChange::EnvironmentWins) => applied.push("log level left to SEALD_LOG".into()),
            Err(e) => applied.push(format!("log level unchanged ({e})")),
        }
        state
            .metrics_public
            .store(config.metrics.public, Ordering::Relaxed);
        applied.push(format!(
            "metrics {}",
            if config.metrics.public {
                "public"
            } else {
                "for auditors and admins"
            }
        ));
        *running = text;
        Ok(ReloadReport {
            applied,
            needs_restart,
        })
    }
}

/// The keys (`key` at the top level, `table.key` inside tables) whose values differ between
/// two config texts.
fn changed_keys(before: &str, after: &str) -> Result<Vec<String>, String> {
    let parse = |text: &str| {
        text.parse::<toml::Table>()
            .map_err(|e| format!("config not reloaded, nothing changed: {e}"))
    };
    let (before, after) = (parse(before)?, parse(after)?);
    let empty = toml::Table::new();
    let mut changed = Vec::new();
    for key in union(&before, &after) {
        let (a, b) = (before.get(&key), after.get(&key));
        match (as_table(a, &empty), as_table(b, &empty)) {
            // A table added or removed is all its keys changed.
            (Some(ta), Some(tb)) => {
                changed.extend(
                    union(ta, tb)
                        .into_iter()
                        .filter(|inner| ta.get(inner) != tb.get(inner))
                        .map(|inner| format!("{key}.{inner}")),
                );
            }
            _ if a != b => changed.push(key),
            _ => {}
        }
    }
    Ok(changed)
}

/// A table value as itself, a missing value as the empty table, anything else as `None`.
fn as_table<'a>(value: Option<&'a toml::Value>, empty: &'a toml::Table) -> Option<&'a toml::Table> {
    match value {
        Some(toml::Value::Table(t)) => Some(t),
        None => Some(empty),
        Some(_) => None,
    }
}

fn union(a: &toml::Table, b: &toml::Table) -> std::collections::BTreeSet<String> {
    a.keys().chain(b.keys()).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::changed_keys;

    #[test]
    fn changed_keys_name_tables_and_their_keys() {
        let before = "listen = \"127.0.0.1:1\"\n[api]\nallowed_origins = []\nmax_body_bytes = 10\n";
        let after = "listen = \"127.0.0.1:2\"\ntrust_roots = [\"a.pem\"]\n[api]\nallowed_origins = [\"http://x\"]\nmax_body_bytes = 10\n[metrics]\npublic = true\n";
        assert_eq!(
            changed_keys(before, after).unwrap(),
            [
                "api.allowed_origins",
                "listen",
                "metrics.public",
                "trust_roots"
            ]
        );
        assert!(changed_keys(before, before).unwrap().is_empty());
    }
}
