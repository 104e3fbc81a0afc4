//! The store (never created or migrated here) and the usage-log chain.

use super::*;

/// Checks the store without creating or migrating it; returns it opened when it can be used.
pub(super) fn store(config: &Config) -> (Check, Option<Arc<Store>>) {
    let location = config.store_location();
    match &location.database {
        Database::Sqlite(path) => sqlite_store(path, &location),
        Database::Postgres(options) => postgres_store(options, &location, config),
    }
}

/// A PostgreSQL store: reachable, holding a seald store of the schema this build writes (read
/// first: the doctor never migrates a store other nodes use).
pub(super) fn postgres_store(
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

pub(super) fn sqlite_store(
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
pub(super) fn inspect_sqlite(path: &Path) -> Result<(i64, String), rusqlite::Error> {
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
pub(super) fn usage_log(store: Option<Arc<Store>>, expect: &[NotedHead]) -> Vec<Check> {
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

pub(super) fn head_check(noted: &NotedHead, check: HeadCheck) -> Check {
    let name = format!("usage_log:head:{}", noted.seq);
    match check {
        HeadCheck::Present => Check::ok(name, format!("noted head {noted} is present: nothing up to it was cut off or rewritten")),
        HeadCheck::Pruned { .. } => Check::ok(name, format!("noted head {noted} was removed by a legitimate prune; it can no longer be checked")),
        HeadCheck::PrunedUnproven => Check::fail(name, format!("noted head {noted} was removed without a legitimate prune: records were cut off; restore the last good backup and investigate")),
        HeadCheck::Replaced => Check::fail(name, format!("noted head {noted} was REWRITTEN: record {} has another hash now; the log was changed after the head was noted; restore the last good backup and investigate", noted.seq)),
        HeadCheck::Missing { last_seq } => Check::fail(name, format!("noted head {noted} is MISSING: the log ends at record {}; records were cut off after the head was noted; restore the last good backup and investigate", last_seq.unwrap_or(0))),
    }
}
