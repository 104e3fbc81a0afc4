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

// ------------------------------------------------------------------ modules and pcscd

/// Loads each `[[module]]` on its own (so that each is reported) and lists its tokens; returns
/// what the loaded ones hold.
fn modules(config: &Config, checks: &mut Vec<Check>) -> Vec<ModuleReport> {
    if config.modules.is_empty() {
        checks.push(Check::warn(
            "module",
            "no [[module]] is configured: seald has no device to sign with; add a [[module]] table naming the device's library",
        ));
        return Vec::new();
    }
    let mut reports = Vec::new();
    for module in &config.modules {
        let name = format!("module:{}", module.name);
        let devices = match Devices::open(std::slice::from_ref(module)) {
            Ok(devices) => devices,
            Err(e) => {
                let path = module.path.display().to_string();
                let why = e.to_string();
                // The device layer's message usually names the library already.
                let what = if why.contains(&path) {
                    why
                } else {
                    format!("cannot load {path}: {why}")
                };
                checks.push(Check::fail(
                    name,
                    format!(
                        "{what}; check `path` in the [[module]] named `{}` (the library must exist and be readable by the user seald runs as)",
                        module.name
                    ),
                ));
                continue;
            }
        };
        let Some(report) = devices.scan().into_iter().next() else {
            continue;
        };
        checks.push(module_check(name, &report));
        reports.push(report);
    }
    reports
}

fn module_check(name: String, report: &ModuleReport) -> Check {
    let what = format!(
        "{} loaded ({}, model {}, SM2 profile {})",
        report.path,
        word(&report.api),
        word(&report.model),
        report.profile.as_deref().unwrap_or("none")
    );
    if let Some(error) = &report.error {
        return Check::fail(
            name,
            format!("{what}, but its tokens cannot be listed: {error}; check the device's connection and the vendor's driver"),
        );
    }
    let tokens = match report.tokens.len() {
        0 => "no token present".to_owned(),
        1 => "1 token present".to_owned(),
        n => format!("{n} tokens present"),
    };
    Check::ok(name, format!("{what}, {tokens}"))
}

/// Whether pcscd answers (when the PC/SC watcher is on).
fn pcscd(config: &Config) -> Check {
    if !config.pcsc.enabled {
        return Check::ok(
            "pcscd",
            "not checked: the PC/SC watcher is off ([pcsc] enabled = false)",
        );
    }
    let context = match pcsc::Context::establish(pcsc::Scope::User) {
        Ok(context) => context,
        Err(e) => {
            return Check::fail(
                "pcscd",
                format!(
                    "pcscd is not running or not reachable ({e}): seald will not notice UKeys being plugged in or pulled out; start it (systemctl start pcscd), or set [pcsc] enabled = false if no UKey is used"
                ),
            )
        }
    };
    match context.list_readers_owned() {
        Ok(readers) => Check::ok(
            "pcscd",
            format!("pcscd answers; {} reader(s) attached", readers.len()),
        ),
        Err(pcsc::Error::NoReadersAvailable) => {
            Check::ok("pcscd", "pcscd answers; no reader attached")
        }
        Err(e) => Check::fail(
            "pcscd",
            format!("pcscd answers but cannot list its readers ({e}); restart it (systemctl restart pcscd)"),
        ),
    }
}

// ------------------------------------------------------------------ tokens and seals

/// The seals and the PIN modes of their policies.
#[derive(Debug, Default)]
struct SealsRead {
    seals: Vec<Seal>,
    pin_modes: HashMap<SealId, PinMode>,
}

fn read_seals(store: &Store) -> Result<SealsRead, StoreError> {
    store.read(|tx| {
        let seals = tx.seals()?;
        let mut pin_modes = HashMap::new();
        for seal in &seals {
            if let Some(policy) = tx.policy(seal.id)? {
                pin_modes.insert(seal.id, policy.pin_mode);
            }
        }
        Ok(SealsRead { seals, pin_modes })
    })
}

/// Whether a seal can still stamp (or could again after a resume).
fn live(seal: &Seal) -> bool {
    seal.state.is_live()
}

/// What the running daemon says about token logins.
enum LoginState {
    /// Serial → logged in.
    Known(HashMap<String, bool>),
    /// Not asked, and why.
    NotAsked(String),
    /// Asked, and the question failed.
    Failed(String),
}

fn login_state(url: &Result<String, String>, answering: bool, args: &DoctorArgs) -> LoginState {
    let Ok(url) = url else {
        return LoginState::NotAsked("the daemon's address is not known".into());
    };
    if !answering {
        return LoginState::NotAsked("seald is not answering".into());
    }
    let token_file = args.token_file.clone().or_else(|| {
        std::env::var_os(crate::cli::client::TOKEN_FILE_ENV).map(std::path::PathBuf::from)
    });
    let Some(token_file) = token_file else {
        return LoginState::NotAsked(
            "give --token-file with an API token file so the doctor can ask seald".into(),
        );
    };
    let answer = crate::cli::client::DaemonClient::new(url, Some(&token_file))
        .and_then(|client| client.call("GET", "/v1/devices", None));
    match answer {
        Ok(value) => {
            let mut known = HashMap::new();
            for module in value["modules"].as_array().into_iter().flatten() {
                for token in module["tokens"].as_array().into_iter().flatten() {
                    if let Some(serial) = token["serial"].as_str() {
                        known.insert(
                            serial.to_owned(),
                            token["logged_in"].as_bool().unwrap_or(false),
                        );
                    }
                }
            }
            LoginState::Known(known)
        }
        Err(e) => LoginState::Failed(e.to_string()),
    }
}

/// "seal 1 (合同专用章)", "seals 1, 2 and 3".
fn seal_list(seals: &[&Seal]) -> String {
    match seals {
        [one] => format!("seal {} ({})", one.id, one.name),
        many => {
            let ids: Vec<String> = many.iter().map(|s| s.id.to_string()).collect();
            format!("seals {}", ids.join(", "))
        }
    }
}

/// One check per token present (PIN state, login) and per token a live seal needs but that is
/// not present.
fn tokens(modules: &[ModuleReport], read: &SealsRead, login: &LoginState, url: &str) -> Vec<Check> {
    let mut checks = Vec::new();
    let mut present = Vec::new();
    for module in modules {
        for token in &module.tokens {
            present.push(token.serial.clone());
            let seals: Vec<&Seal> = read
                .seals
                .iter()
                .filter(|s| live(s) && s.device_serial == token.serial)
                .collect();
            checks.push(token_check(&module.name, token, &seals, read, login, url));
        }
    }
    let mut missing: Vec<(&str, Vec<&Seal>)> = Vec::new();
    for seal in read.seals.iter().filter(|s| live(s)) {
        if present.contains(&seal.device_serial) {
            continue;
        }
        match missing
            .iter_mut()
            .find(|(serial, _)| *serial == seal.device_serial)
        {
            Some((_, seals)) => seals.push(seal),
            None => missing.push((&seal.device_serial, vec![seal])),
        }
    }
    for (serial, seals) in missing {
        checks.push(Check::warn(
            format!("token:{serial}"),
            format!(
                "token {serial} is not present, but {} {} on it: plug it in (or check the cipher machine's connection and the [[module]] it is in); stamps with {} fail until it is back",
                seal_list(&seals),
                if seals.len() == 1 { "lives" } else { "live" },
                if seals.len() == 1 { "it" } else { "them" },
            ),
        ));
    }
    checks
}

fn token_check(
    module: &str,
    token: &TokenInfo,
    seals: &[&Seal],
    read: &SealsRead,
    login: &LoginState,
    url: &str,
) -> Check {
    let serial = &token.serial;
    let holds = if seals.is_empty() {
        "no live seal on it".to_owned()
    } else {
        format!("holds {}", seal_list(seals))
    };
    let mut parts = vec![(
        Status::Ok,
        format!(
            "token {serial} (\"{}\", module {module}) is present, {holds}",
            token.label
        ),
    )];
    parts.extend(pin_problems(serial, &token.pin));
    if token.pin.summary() == "ok" {
        parts.push((Status::Ok, "PIN state ok".into()));
    }
    // Seals whose policy keeps a login open need one; each-stamp seals log in per request.
    let need_login = seals
        .iter()
        .any(|s| !matches!(read.pin_modes.get(&s.id), Some(PinMode::EachStamp)));
    match login {
        _ if !need_login => {}
        LoginState::Known(known) if known.get(serial).copied().unwrap_or(false) => {
            parts.push((Status::Ok, "logged in through seald".into()));
        }
        LoginState::Known(_) => parts.push((
            Status::Warn,
            format!(
                "it is not logged in: stamps of {} will fail until a custodian logs in (sealctl login --daemon {url} --token {serial})",
                seal_list(seals)
            ),
        )),
        LoginState::NotAsked(why) => {
            parts.push((Status::Ok, format!("login not checked ({why})")));
        }
        LoginState::Failed(_) => {
            parts.push((Status::Ok, "login not checked (see login_state)".into()));
        }
    }
    combine(format!("token:{serial}"), parts)
}

/// What the PIN flags say needs doing.
fn pin_problems(serial: &str, pin: &PinState) -> Vec<(Status, String)> {
    let mut out = Vec::new();
    if !pin.user_pin_initialized {
        out.push((Status::Fail, "its user PIN is not initialised: nothing on it can sign until the token is initialised with the vendor's tool".to_owned()));
    }
    if pin.locked {
        out.push((Status::Fail, format!("its user PIN is LOCKED: nothing on it can sign; re-set it with the SO PIN (sealctl pin-unblock --token {serial})")));
    } else if pin.final_try {
        out.push((Status::Warn, "one user PIN try is left: one more wrong PIN locks the token; log in only with the right PIN".to_owned()));
    } else if pin.count_low {
        out.push((Status::Warn, "wrong user PINs were entered and few tries are left before the token locks; make sure custodians use the right PIN".to_owned()));
    }
    if pin.to_be_changed {
        out.push((Status::Warn, format!("its user PIN must be changed before it signs (sealctl pin-change --token {serial})")));
    }
    if pin.so_locked {
        out.push((Status::Warn, "its SO PIN is locked: a locked user PIN could no longer be re-set; ask the vendor how to recover".to_owned()));
    }
    out
}

/// One check per seal that is not revoked: state, validity and certificate expiry.
fn seal_checks(seals: &[Seal], clock: &Clock) -> Vec<Check> {
    if seals.iter().all(|s| s.state == SealState::Revoked) {
        return vec![Check::ok(
            "seals",
            "no seal is enrolled (or every seal is revoked): nothing to check",
        )];
    }
    seals
        .iter()
        .filter(|s| s.state != SealState::Revoked)
        .map(|s| seal_check(s, clock))
        .collect()
}

fn seal_check(seal: &Seal, clock: &Clock) -> Check {
    let name = format!("seal:{}", seal.id);
    let who = format!("seal {} ({})", seal.id, seal.name);
    if !live(seal) {
        return Check::ok(
            name,
            format!(
                "{who} is {} since {}; it no longer stamps, nothing to check",
                seal.state,
                date(seal.state_changed_at)
            ),
        );
    }
    let mut parts = Vec::new();
    let state = if seal.state == SealState::Suspended {
        "suspended (it does not stamp until an admin resumes it: sealctl seal resume)"
    } else {
        "active"
    };
    let cert = format!("its certificate (serial {})", seal.cert.serial_hex);
    match clock.due(seal.cert.not_after) {
        Due::Ended => parts.push((Status::Fail, format!("{cert} expired on {}: the seal cannot stamp; have the CA issue a new certificate and enrol a new seal with it", date(seal.cert.not_after)))),
        Due::Soon(days) => parts.push((Status::Warn, format!("{cert} expires {} ({}, within the {} warning days): have the CA issue a new certificate and enrol a new seal before then", days_left(days), date(seal.cert.not_after), clock.warn_days))),
        Due::Later => {}
    }
    // A seal's validity ends with its certificate unless it was enrolled to end earlier: say
    // it once.
    let own_end = seal.valid_to < seal.cert.not_after;
    match clock.due(seal.valid_to) {
        _ if !own_end => {}
        Due::Ended => parts.push((Status::Fail, format!("its validity ended on {}: it cannot stamp; enrol a new seal if it is still needed (seald marks this one expired)", date(seal.valid_to)))),
        Due::Soon(days) => parts.push((Status::Warn, format!("its validity ends {} ({}, within the {} warning days): enrol a new seal before then", days_left(days), date(seal.valid_to), clock.warn_days))),
        Due::Later => {}
    }
    if seal.valid_from > clock.now {
        parts.push((
            Status::Warn,
            format!(
                "it is not valid before {}: it cannot stamp until then",
                date(seal.valid_from)
            ),
        ));
    }
    let summary = format!(
        "{who} is {state}, valid until {}, certificate until {}",
        date(seal.valid_to),
        date(seal.cert.not_after)
    );
    parts.insert(0, (Status::Ok, summary));
    combine(name, parts)
}

// ------------------------------------------------------------------ trust roots

fn trust_roots(config: &Config, clock: &Clock) -> Check {
    if config.trust_roots.is_empty() {
        return Check::warn(
            "trust_roots",
            "no trust_roots configured: enrolling seals is refused and verification reports signer chains as unchecked; name the CA's root certificate in trust_roots",
        );
    }
    let mut parts = Vec::new();
    for path in &config.trust_roots {
        parts.push(trust_root(path, clock));
    }
    combine("trust_roots".into(), parts)
}

fn trust_root(path: &Path, clock: &Clock) -> (Status, String) {
    let file = path.display();
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => {
            return (
                Status::Fail,
                format!(
                "cannot read {file}: {e}; fix the path in trust_roots or the file's permissions"
            ),
            )
        }
    };
    let roots = match crate::cert::TrustStore::from_pem_or_der(&bytes) {
        Ok(roots) => roots,
        Err(e) => {
            return (
                Status::Fail,
                format!(
                "{file} is not a PEM or DER certificate ({e}); put the CA's root certificate there"
            ),
            )
        }
    };
    let mut worst = Status::Ok;
    let mut notes = Vec::new();
    for root in roots.roots() {
        let facts = root.facts();
        let subject = facts.subject_cn.as_deref().unwrap_or(&facts.subject);
        let end = facts.not_after.unix_timestamp();
        match clock.due(end) {
            Due::Ended => {
                worst = Status::Fail;
                notes.push(format!("root \"{subject}\" in {file} EXPIRED on {}: certificates chained to it no longer verify; get the CA's new root and replace the file", date(end)));
            }
            Due::Soon(days) => {
                if worst == Status::Ok {
                    worst = Status::Warn;
                }
                notes.push(format!("root \"{subject}\" in {file} expires {} ({}): get the CA's new root before then", days_left(days), date(end)));
            }
            Due::Later => notes.push(format!(
                "root \"{subject}\" in {file} valid until {}",
                date(end)
            )),
        }
    }
    (worst, notes.join("; "))
}

// ------------------------------------------------------------------ store and usage log

/// Checks the store without creating or migrating it; returns it opened when it can be used.
fn store(config: &Config) -> (Check, Option<Arc<Store>>) {
    let location = config.store_location();
    match &location.database {
        Database::Sqlite(path) => sqlite_store(path, &location),
        Database::Postgres(options) => postgres_store(options, &location, config),
    }
}

/// A PostgreSQL store: reachable, holding a seald store of the schema this build writes (read
/// first: the doctor never migrates a store other nodes use).
fn postgres_store(
    options: &crate::store::PgOptions,
    location: &crate::store::StoreLocation,
    config: &Config,
) -> (Check, Option<Arc<Store>>) {
    let shown = config.store_display();
    let fail = |message: String| (Check::fail("store", message), None);
    let (version, known) = match crate::store::postgres_schema_versions(options) {
        Ok(found) => found,
        Err(e) => return fail(format!("PostgreSQL store {shown}: {e}; check that the server runs and the URL, [postgres] ca_file and the password are right (docs/postgres.md)")),
    };
    if version == 0 {
        return fail(format!("the database {shown} holds no seald store; check the URL (a new store is made by `seald --init`)"));
    }
    if version > known {
        return fail(format!("PostgreSQL store {shown} has schema version {version}, newer than this sealctl knows ({known}): it was written by a newer seald; run that version"));
    }
    if version < known {
        return (Check::warn("store", format!("PostgreSQL store {shown} has schema version {version}; this seald writes {known}: the first node started on this version migrates it (take a backup first); seals and the usage log were not checked")), None);
    }
    match Store::open_existing_at(location) {
        Ok(store) => (
            Check::ok(
                "store",
                format!("PostgreSQL store {shown} reachable, schema version {version} (current)"),
            ),
            Some(Arc::new(store)),
        ),
        Err(e) => fail(format!("PostgreSQL store {shown}: {e}")),
    }
}

fn sqlite_store(
    path: &Path,
    location: &crate::store::StoreLocation,
) -> (Check, Option<Arc<Store>>) {
    let file = path.display();
    let fail = |message: String| (Check::fail("store", message), None);
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return fail(format!("{file} does not exist: seald will not start without it; on a first installation create it with `seald --init`, otherwise bring the store back with `sealctl restore` (or fix `store` in the config)"));
        }
        Err(e) => return fail(format!("cannot look at {file}: {e}")),
    };
    if let Err(e) = std::fs::File::open(path) {
        return fail(format!("cannot read {file}: {e}; run sealctl doctor as the user seald runs as (the store is owner-only, 0600)"));
    }
    let (version, integrity) = match inspect_sqlite(path) {
        Ok(found) => found,
        Err(e) => return fail(format!("{file} cannot be read as a seald store: {e}; restore it from a backup (sealctl restore)")),
    };
    if integrity != "ok" {
        return fail(format!("{file} is damaged (PRAGMA integrity_check: {integrity}); stop seald and restore the store from a backup (sealctl restore)"));
    }
    let known = crate::store::migrations::latest_version();
    if version > known {
        return fail(format!("{file} has schema version {version}, newer than this sealctl knows ({known}): it was written by a newer seald; run that version (or upgrade this one)"));
    }
    if version < known {
        let check = Check::warn(
            "store",
            format!("{file} has schema version {version}; this seald writes {known}: seald migrates it at its next start (take a backup first with sealctl backup); seals and the usage log were not checked"),
        );
        return (check, None);
    }
    let mut notes =
        format!("SQLite store {file}: schema version {version} (current), integrity_check ok");
    let mut status = Status::Ok;
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            status = Status::Warn;
            notes.push_str(&format!(
                "; but it was open to other users (mode {mode:o}): opening it set it back to 0600, as seald does at each start; find out who changed it and who could read it meanwhile"
            ));
        }
    }
    // Opened as another user (root), the store's lock and journal files would be that user's,
    // and seald (user seald) could not start.
    let owner = std::os::unix::fs::MetadataExt::uid(&meta);
    // SAFETY: geteuid has no preconditions and cannot fail.
    if owner != unsafe { libc::geteuid() } {
        notes.push_str(&format!("; seals and the usage log were not checked: run sealctl doctor as the store's owner (uid {owner}, the user seald runs as: sudo -u seald sealctl doctor …)"));
        return (Check::warn("store", notes), None);
    }
    match Store::open_existing_at(location) {
        Ok(store) => (Check::new("store", status, notes), Some(Arc::new(store))),
        Err(e) => fail(format!(
            "{file} passed its integrity check but cannot be opened: {e}"
        )),
    }
}

/// `PRAGMA user_version` and `PRAGMA integrity_check` over a connection that cannot create the
/// file and writes nothing.
fn inspect_sqlite(path: &Path) -> Result<(i64, String), rusqlite::Error> {
    use rusqlite::OpenFlags;
    let conn = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "query_only", true)?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let mut statement = conn.prepare("PRAGMA integrity_check")?;
    let lines: Vec<String> = statement
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<_, _>>()?;
    let shown: Vec<&str> = lines.iter().take(3).map(String::as_str).collect();
    let mut text = shown.join("; ");
    if lines.len() > shown.len() {
        text.push_str(&format!(" (and {} more)", lines.len() - shown.len()));
    }
    Ok((version, text))
}

/// The usage-log chain, and each head noted earlier.
fn usage_log(store: Option<Arc<Store>>, expect: &[NotedHead]) -> Vec<Check> {
    let Some(store) = store else {
        return vec![Check::warn(
            "usage_log",
            "not checked: the store could not be opened (see the store line)",
        )];
    };
    let log = AuditLog::new(store, Arc::new(SystemClock));
    let (report, heads) = match log.verify_with_heads(expect) {
        Ok(found) => found,
        Err(e) => {
            return vec![Check::fail(
                "usage_log",
                format!("cannot read the usage log: {e}"),
            )]
        }
    };
    let mut checks = vec![match &report.broken {
        Some(broken) => Check::fail(
            "usage_log",
            format!(
                "CHAIN BROKEN at record {}: {broken}; {} records before it verified. Keep the store as evidence, restore the last good backup (sealctl restore) and investigate (sealctl audit verify --store … shows the same)",
                broken.seq, report.records
            ),
        ),
        None => match (report.last_seq, report.head) {
            (Some(seq), Some(hash)) => Check::ok(
                "usage_log",
                format!(
                    "chain intact: {} records ({}..{seq}); head {} (keep it outside the store and pass it as --expect-head next time: it shows whether records were cut off)",
                    report.records,
                    report.first_seq.unwrap_or(seq),
                    NotedHead { seq, hash, at_ms: report.head_at_ms }
                ),
            ),
            _ => Check::ok("usage_log", "chain intact: the usage log is empty"),
        },
    }];
    for (noted, check) in expect.iter().zip(heads) {
        checks.push(head_check(noted, check));
    }
    checks
}

fn head_check(noted: &NotedHead, check: HeadCheck) -> Check {
    let name = format!("usage_log:head:{}", noted.seq);
    match check {
        HeadCheck::Present => Check::ok(name, format!("noted head {noted} is present: nothing up to it was cut off or rewritten")),
        HeadCheck::Pruned { .. } => Check::ok(name, format!("noted head {noted} was removed by a legitimate prune; it can no longer be checked")),
        HeadCheck::PrunedUnproven => Check::fail(name, format!("noted head {noted} was removed without a legitimate prune: records were cut off; restore the last good backup and investigate")),
        HeadCheck::Replaced => Check::fail(name, format!("noted head {noted} was REWRITTEN: record {} has another hash now; the log was changed after the head was noted; restore the last good backup and investigate", noted.seq)),
        HeadCheck::Missing { last_seq } => Check::fail(name, format!("noted head {noted} is MISSING: the log ends at record {}; records were cut off after the head was noted; restore the last good backup and investigate", last_seq.unwrap_or(0))),
    }
}

// ------------------------------------------------------------------ listener and guards

/// The daemon's URL: `--daemon`, else `http://` + `listen`.
fn daemon_url(config: &Config, args: &DoctorArgs) -> Result<String, String> {
    if let Some(url) = &args.daemon {
        let trimmed = url.trim_end_matches('/');
        let authority = trimmed.strip_prefix("http://").unwrap_or_default();
        if authority.is_empty() || authority.contains('/') {
            return Err(format!(
                "--daemon {url:?} is not a URL like http://127.0.0.1:7780"
            ));
        }
        return Ok(trimmed.to_owned());
    }
    if config.listen.port() == 0 {
        return Err(format!(
            "listen = \"{}\" picks a free port at each start, so the doctor cannot know it; give --daemon http://127.0.0.1:PORT",
            config.listen
        ));
    }
    Ok(format!("http://{}", config.listen))
}

/// `GET /v1/health` on the daemon.
fn listener(url: &Result<String, String>) -> Check {
    let url = match url {
        Ok(url) => url,
        Err(why) => return Check::fail("listener", why.clone()),
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(HEALTH_TIMEOUT))
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .build()
        .into();
    let mut answer = match agent.get(format!("{url}/v1/health")).call() {
        Ok(answer) => answer,
        Err(e) => {
            return Check::fail(
                "listener",
                format!("seald is not answering on {url} ({e}); is it running? (systemctl status seald; its log says why it stopped)"),
            )
        }
    };
    let status = answer.status();
    if !status.is_success() {
        return Check::fail(
            "listener",
            format!("something answers on {url} but GET /v1/health gave HTTP {status}: it is not seald, or seald refused the Host; check listen and --daemon"),
        );
    }
    let body: serde_json::Value = answer.body_mut().read_json().unwrap_or_default();
    let Some(version) = body["version"].as_str() else {
        return Check::fail(
            "listener",
            format!("something answers on {url}, but not as seald does (no version in /v1/health); check that listen names seald's port"),
        );
    };
    let ours = env!("CARGO_PKG_VERSION");
    if version != ours {
        return Check::warn(
            "listener",
            format!("seald {version} answers on {url}, but this sealctl is {ours}: run the same version of both (an upgrade not finished?)"),
        );
    }
    Check::ok("listener", format!("seald {version} answers on {url}"))
}

/// `listen` loopback; `[api]` allowed_origins and allowed_hosts well formed.
fn api_guards(config: &Config) -> Check {
    let mut parts = vec![(
        if config.listen.ip().is_loopback() {
            Status::Ok
        } else {
            Status::Fail
        },
        format!(
            "listen {} is {}",
            config.listen,
            if config.listen.ip().is_loopback() {
                "loopback"
            } else {
                "NOT loopback: seald must serve this machine only; use 127.0.0.1 or [::1]"
            }
        ),
    )];
    for origin in &config.api.allowed_origins {
        if let Some(problem) = origin_problem(origin) {
            parts.push((
                Status::Warn,
                format!("allowed_origins entry \"{origin}\" {problem}"),
            ));
        }
    }
    for host in &config.api.allowed_hosts {
        if let Some(problem) = host_problem(host) {
            parts.push((
                Status::Warn,
                format!("allowed_hosts entry \"{host}\" {problem}"),
            ));
        }
    }
    parts.push((
        Status::Ok,
        format!(
            "{} extra Host value(s) and {} browser origin(s) allowed",
            config.api.allowed_hosts.len(),
            config.api.allowed_origins.len()
        ),
    ));
    combine("api_guards".into(), parts)
}

/// Whether `host` (the host part of an origin or Host value, port removed) is this machine.
fn loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Splits `host[:port]` (IPv6 in brackets) into host and port.
fn split_port(authority: &str) -> (&str, Option<&str>) {
    if authority.starts_with('[') {
        return match authority.split_once("]:") {
            Some((host, port)) => (&authority[..host.len() + 1], Some(port)),
            None => (authority, None),
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    }
}

fn origin_problem(origin: &str) -> Option<String> {
    let (scheme, rest) = origin.split_once("://")?;
    if rest.contains('/') || rest.contains('?') || rest.contains('#') {
        return Some("has a path: a browser's Origin never has one, so it never matches; write scheme://host[:port]".into());
    }
    if rest.contains('*') {
        return Some("has a wildcard, which never matches: list each origin".into());
    }
    let (host, port) = split_port(rest);
    if port.is_some_and(|p| p.parse::<u16>().is_err()) {
        return Some("has a port that is not a number".into());
    }
    if scheme.eq_ignore_ascii_case("http") && !loopback_host(host) {
        return Some("is plain http:// on another machine: anyone on the network path can change that page and call seald through the browser; serve it over https://".into());
    }
    None
}

fn host_problem(host: &str) -> Option<String> {
    if host.contains('*') {
        return Some(
            "has a wildcard: Host values are compared exactly, so it never matches; list each name:port".into(),
        );
    }
    if host.contains('/') || host.contains("://") {
        return Some("is not name:port (no scheme, no path)".into());
    }
    let (_, port) = split_port(host);
    match port {
        None => Some("has no port: browsers send name:port for seald's port, so it never matches; write name:port".into()),
        Some(p) if p.parse::<u16>().is_err() => Some("has a port that is not a number".into()),
        Some(_) => None,
    }
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
