//! The checks of `sealctl doctor`, one function each; none stops the others.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use time::macros::format_description;
use time::OffsetDateTime;

use super::{Check, DoctorArgs, Report, Status};
use crate::audit::{AuditLog, HeadCheck, NotedHead};
use crate::clock::SystemClock;
use crate::config::Config;
use crate::device::{Devices, ModuleReport, PinState, TokenInfo};
use crate::store::model::{PinMode, Seal, SealId, SealState};
use crate::store::{Database, Store, StoreError};

// One module per area; each glob-imports the imports and helpers above.
mod devices;
mod network;
mod seals;
mod storage;

use devices::*;
use network::*;
use seals::*;
use storage::*;

/// How long the listener may take to answer `GET /v1/health`.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(3);

/// Runs every check on a loaded config, in the order they are printed.
pub(super) fn all(config_path: &Path, config: &Config, args: &DoctorArgs) -> Report {
    let clock = Clock::now(args.warn_days);
    let mut checks = vec![Check::ok(
        "config",
        format!("{} parsed and valid", config_path.display()),
    )];
    let modules = modules(config, &mut checks);
    checks.push(pcscd(config));
    let url = daemon_url(config, args);
    let listener = listener(&url);
    let answering = listener.status != Status::Fail;
    let (store_check, store) = store(config);
    let seals = store.as_ref().map(|s| read_seals(s));
    let login = login_state(&url, answering, args);
    if let LoginState::Failed(why) = &login {
        checks.push(Check::warn(
            "login_state",
            format!("could not ask seald which tokens are logged in: {why}"),
        ));
    }
    let url_text = url.as_deref().unwrap_or("http://127.0.0.1:7780");
    match &seals {
        Some(Ok(seals)) => {
            checks.extend(tokens(&modules, seals, &login, url_text));
            checks.extend(seal_checks(&seals.seals, &clock));
        }
        Some(Err(e)) => checks.push(Check::fail(
            "seals",
            format!("cannot read the seals from the store: {e}"),
        )),
        None => {
            checks.extend(tokens(&modules, &SealsRead::default(), &login, url_text));
            checks.push(Check::warn(
                "seals",
                "not checked: the store could not be opened (see the store line)",
            ));
        }
    }
    checks.push(trust_roots(config, &clock));
    checks.push(store_check);
    checks.extend(usage_log(store, &args.expect_head));
    checks.push(listener);
    checks.push(api_guards(config));
    Report { checks }
}

/// The time the checks judge by and how close to an end is a warning.
struct Clock {
    now: i64,
    warn_secs: i64,
    warn_days: u32,
}

/// Where an end of validity stands.
enum Due {
    /// Already past.
    Ended,
    /// Within the warning period: this many whole days left.
    Soon(i64),
    /// Later than that.
    Later,
}

impl Clock {
    fn now(warn_days: u32) -> Self {
        Self {
            now: OffsetDateTime::now_utc().unix_timestamp(),
            warn_secs: i64::from(warn_days) * 86_400,
            warn_days,
        }
    }

    fn due(&self, end: i64) -> Due {
        if end <= self.now {
            Due::Ended
        } else if end - self.now <= self.warn_secs {
            Due::Soon((end - self.now) / 86_400)
        } else {
            Due::Later
        }
    }
}

/// A Unix time as `2026-05-01 08:00 UTC`.
fn date(ts: i64) -> String {
    OffsetDateTime::from_unix_timestamp(ts)
        .ok()
        .and_then(|t| {
            t.format(format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
            ))
            .ok()
        })
        .unwrap_or_else(|| ts.to_string())
}

/// "in 3 days", "today".
fn days_left(days: i64) -> String {
    match days {
        0 => "within a day".into(),
        1 => "in 1 day".into(),
        n => format!("in {n} days"),
    }
}

/// The serde name of a unit enum value (`pkcs11`, `cipher-machine`).
fn word<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The worst of several statuses and their messages joined.
fn combine(name: String, parts: Vec<(Status, String)>) -> Check {
    let status = parts
        .iter()
        .map(|(s, _)| *s)
        .max_by_key(|s| match s {
            Status::Ok => 0,
            Status::Warn => 1,
            Status::Fail => 2,
        })
        .unwrap_or(Status::Ok);
    let message = parts
        .into_iter()
        .map(|(_, m)| m)
        .collect::<Vec<_>>()
        .join("; ");
    Check::new(name, status, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_and_hosts_that_never_match_or_are_unsafe_are_named() {
        assert_eq!(origin_problem("https://console.example.com"), None);
        assert_eq!(origin_problem("http://127.0.0.1:8080"), None);
        assert_eq!(origin_problem("http://localhost:3000"), None);
        assert_eq!(origin_problem("http://[::1]:3000"), None);
        assert!(origin_problem("https://a.example/app")
            .unwrap()
            .contains("path"));
        assert!(origin_problem("http://intranet.example")
            .unwrap()
            .contains("https://"));
        assert!(origin_problem("https://a.example:x")
            .unwrap()
            .contains("port"));
        assert_eq!(host_problem("seal.local:7780"), None);
        assert_eq!(host_problem("[::1]:7780"), None);
        assert!(host_problem("*.local:7780").unwrap().contains("wildcard"));
        assert!(host_problem("seal.local").unwrap().contains("no port"));
        assert!(host_problem("http://seal.local:7780")
            .unwrap()
            .contains("name:port"));
        assert_eq!(split_port("[::1]:80"), ("[::1]", Some("80")));
        assert_eq!(split_port("[::1]"), ("[::1]", None));
    }

    #[test]
    fn pin_flags_become_warnings_and_failures() {
        let ok = PinState::unknown();
        assert!(pin_problems("S", &ok).is_empty());
        let locked = PinState { locked: true, ..ok };
        let problems = pin_problems("S", &locked);
        assert_eq!(problems[0].0, Status::Fail);
        assert!(
            problems[0].1.contains("pin-unblock --token S"),
            "{problems:?}"
        );
        let low = PinState {
            count_low: true,
            to_be_changed: true,
            ..ok
        };
        let problems = pin_problems("S", &low);
        assert!(problems.iter().all(|(s, _)| *s == Status::Warn));
        assert_eq!(problems.len(), 2);
    }

    #[test]
    fn ends_are_judged_against_the_warning_period() {
        let clock = Clock {
            now: 1_000_000,
            warn_secs: 30 * 86_400,
            warn_days: 30,
        };
        assert!(matches!(clock.due(1_000_000), Due::Ended));
        assert!(matches!(
            clock.due(1_000_000 + 2 * 86_400 + 5),
            Due::Soon(2)
        ));
        assert!(matches!(clock.due(1_000_000 + 31 * 86_400), Due::Later));
        assert_eq!(date(0), "1970-01-01 00:00:00 UTC");
        let worst = combine(
            "x".into(),
            vec![(Status::Ok, "a".into()), (Status::Warn, "b".into())],
        );
        assert_eq!(
            (worst.status, worst.message.as_str()),
            (Status::Warn, "a; b")
        );
    }

    #[test]
    fn a_report_prints_lines_and_a_summary_or_json() {
        let report = Report {
            checks: vec![
                Check::ok("config", "parsed"),
                Check::warn("seal:1", "expires soon"),
                Check::fail("listener", "not answering"),
            ],
        };
        let mut text = Vec::new();
        report.write(false, &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert_eq!(
            text,
            "ok    config: parsed\nwarn  seal:1: expires soon\nFAIL  listener: not answering\n1 ok, 1 warn, 1 fail\n"
        );
        assert_eq!(report.exit_code(), 1);
        let mut json = Vec::new();
        report.write(true, &mut json).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(value["fail"], 1);
        assert_eq!(value["checks"][1]["status"], "warn");
        assert_eq!(value["checks"][2]["name"], "listener");
    }

    #[test]
    fn a_config_that_cannot_be_read_exits_2_with_a_fail_line() {
        let dir = tempfile::tempdir().unwrap();
        let args = DoctorArgs {
            json: false,
            daemon: None,
            token_file: None,
            expect_head: Vec::new(),
            warn_days: 30,
        };
        let mut out = Vec::new();
        let code = super::super::run(&dir.path().join("missing.toml"), &args, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(code, 2);
        assert!(
            text.starts_with("FAIL  config: cannot read config file"),
            "{text}"
        );
        assert!(text.ends_with("0 ok, 0 warn, 1 fail\n"), "{text}");
    }

    #[test]
    fn a_missing_store_is_not_created() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seald.db");
        let (check, store) = sqlite_store(&path, &crate::store::StoreLocation::sqlite(&path));
        assert_eq!(check.status, Status::Fail);
        assert!(check.message.contains("seald --init"), "{}", check.message);
        assert!(store.is_none());
        assert!(!path.exists(), "the doctor created the store");
    }
}
