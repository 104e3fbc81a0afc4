//! `sealctl backup` / `restore`: a consistent snapshot of the store and usage log while seald
//! runs (SQLite `VACUUM INTO`, a transaction-consistent copy), in one 0600 file.
//!
//! The backup also carries the token key (`<store>.token-key`): bearer tokens are stored only as
//! HMACs under that key, so a store restored without it would refuse every client, approver and
//! custodian until each was given a new token. The price is that the backup file is as secret as
//! the store and key together: it is written 0600 and must be kept like them.
//!
//! A restore checks the backup's usage-log chain first and refuses a broken one; it refuses too
//! while any process holds the store open ([`StoreLock`]: seald holds it shared for its whole
//! run). The store it replaces is kept beside it as `<store>.pre-restore-<ms>`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;

use crate::audit::{verify, ChainBreak, VerifyReport};
use crate::identity::key_path_for;
use crate::store::{DocumentStore, Store, StoreError, StoreLock};

/// Format version of the metadata table a backup carries.
const FORMAT: i64 = 1;
const META_TABLE: &str = "seald_backup";
/// The files of the store's documents directory (uploads of open requests, sealed files)
/// travel inside the backup, one row each.
const DOCUMENTS_TABLE: &str = "seald_backup_documents";

/// Why a backup or restore was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A file could not be written or read.
    #[error("cannot use {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The target file already exists.
    #[error("{0} already exists; choose a new file name (a backup never overwrites)")]
    Exists(PathBuf),
    /// The file is not a seald backup.
    #[error("{0} is not a seald backup (no backup metadata); refusing to restore it")]
    NotABackup(PathBuf),
    /// The backup's usage log does not verify.
    #[error("the backup's usage log does not verify ({0}); refusing to restore a tampered or damaged backup")]
    BrokenChain(ChainBreak),
    /// The backup's usage log does not contain the current store's newest record: restoring
    /// it would silently drop or replace history.
    #[error("the backup's usage log does not reach the current store's head ({0}); restoring it would drop usage records. Back up the current store first if you need it, then restore with --force (a `restore` record is written)")]
    GoesBackwards(String),
    /// A process has the store open.
    #[error("{0} is open in a running seald or another sealctl (its lock file is held); stop seald and retry")]
    InUse(PathBuf),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What a backup holds.
#[derive(Debug, Clone, Serialize)]
pub struct BackupReport {
    /// The backup file.
    pub file: PathBuf,
    /// The usage log in it, as verified.
    pub log: VerifyReport,
    /// Whether the token key was included.
    pub token_key: bool,
    /// Size in bytes.
    pub bytes: u64,
    /// Files of the documents directory included (sealed OFDs, uploads of open requests).
    pub documents: usize,
}

/// Writes a snapshot of the store at `store` (and its token key, if there is one) to `dest`,
/// which must not exist. Safe while seald runs: readers never block the writer under WAL.
pub fn create(store: &Path, dest: &Path) -> Result<BackupReport, BackupError> {
    if !store.is_file() {
        return Err(StoreError::Missing(store.to_path_buf()).into());
    }
    // Created empty and 0600 first: VACUUM INTO fills an empty file and keeps its mode.
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dest)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                BackupError::Exists(dest.to_path_buf())
            } else {
                BackupError::Io {
                    path: dest.to_path_buf(),
                    source: e,
                }
            }
        })?;
    let result = (|| {
        let conn = Connection::open(store).map_err(StoreError::from)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(StoreError::from)?;
        let target = dest.to_str().ok_or_else(|| BackupError::Io {
            path: dest.to_path_buf(),
            source: std::io::Error::other("the path is not UTF-8"),
        })?;
        conn.execute("VACUUM INTO ?1", [target])
            .map_err(StoreError::from)?;
        drop(conn);
        let key = read_token_key(&key_path_for(store))?;
        let backup = Connection::open(dest).map_err(StoreError::from)?;
        backup
            .execute_batch(&format!(
                "CREATE TABLE {META_TABLE} (id INTEGER PRIMARY KEY CHECK (id = 1), \
                 format INTEGER NOT NULL, created_ms INTEGER NOT NULL, token_key BLOB)"
            ))
            .map_err(StoreError::from)?;
        backup
            .execute(
                &format!("INSERT INTO {META_TABLE} VALUES (1, ?1, ?2, ?3)"),
                rusqlite::params![
                    FORMAT,
                    crate::audit::unix_ms(time::OffsetDateTime::now_utc()),
                    key
                ],
            )
            .map_err(StoreError::from)?;
        let documents = copy_documents_in(&backup, &DocumentStore::beside(store))?;
        drop(backup);
        std::fs::set_permissions(dest, PermissionsExt::from_mode(0o600)).map_err(io(dest))?;
        File::open(dest)
            .and_then(|f| f.sync_all())
            .map_err(io(dest))?;
        let log = Store::read_file(dest, |tx| {
            verify::verify(tx, crate::audit::unix_ms(time::OffsetDateTime::now_utc()))
        })?;
        let bytes = std::fs::metadata(dest).map_err(io(dest))?.len();
        Ok(BackupReport {
            file: dest.to_path_buf(),
            log,
            token_key: key.is_some(),
            bytes,
            documents,
        })
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(dest);
    }
    result
}

/// The relative paths of the documents the snapshot's rows name (none for a store older than
/// schema 8).
/// Whether the database at `conn` has table `name` (backups made before it existed do not).
fn has_table(conn: &Connection, name: &str) -> Result<bool, BackupError> {
    let n: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [name],
            |r| r.get(0),
        )
        .map_err(StoreError::from)?;
    Ok(n > 0)
}

fn named_documents(conn: &Connection) -> Result<Vec<String>, BackupError> {
    if !has_table(conn, "stamp_files")? {
        return Ok(Vec::new());
    }
    let mut stmt = conn
        .prepare(crate::store::DOCUMENT_PATHS)
        .map_err(StoreError::from)?;
    let rows = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(StoreError::from)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::from)?;
    Ok(rows)
}

/// Copies every document the snapshot in `backup` names from `docs` into the backup (one file
/// in memory at a time). An upload removed since the snapshot (its request became final) is
/// left out: after a restore that request fails with a message saying so, if it is still open.
fn copy_documents_in(backup: &Connection, docs: &DocumentStore) -> Result<usize, BackupError> {
    backup
        .execute_batch(&format!(
            "CREATE TABLE {DOCUMENTS_TABLE} (path TEXT PRIMARY KEY, content BLOB NOT NULL)"
        ))
        .map_err(StoreError::from)?;
    let mut copied = 0;
    for relative in named_documents(backup)? {
        let path = docs
            .path(&relative)
            .map_err(|e| BackupError::Store(StoreError::Corrupt(e.to_string())))?;
        let content = match std::fs::read(&path) {
            Ok(content) => content,
            // An upload may be removed meanwhile (its request became final); a sealed file the
            // store names must be there: backing up without it would lose it for good.
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound && relative.starts_with("uploads/") =>
            {
                continue
            }
            Err(e) => return Err(io(&path)(e)),
        };
        backup
            .execute(
                &format!("INSERT INTO {DOCUMENTS_TABLE} (path, content) VALUES (?1, ?2)"),
                rusqlite::params![relative, content],
            )
            .map_err(StoreError::from)?;
        copied += 1;
    }
    Ok(copied)
}

/// Writes the documents a backup carries into a new directory `into` (0700, files 0600,
/// synced) and removes them from the backup copy at `staging`; returns how many.
fn copy_documents_out(staging: &Path, into: &Path) -> Result<usize, BackupError> {
    let conn = Connection::open(staging).map_err(StoreError::from)?;
    if !has_table(&conn, DOCUMENTS_TABLE)? {
        return Ok(0);
    }
    let _ = std::fs::remove_dir_all(into);
    let docs = DocumentStore::beside(Path::new(""));
    let mut written = 0;
    {
        let mut stmt = conn
            .prepare(&format!("SELECT path FROM {DOCUMENTS_TABLE} ORDER BY path"))
            .map_err(StoreError::from)?;
        let paths = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(StoreError::from)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(StoreError::from)?;
        for relative in paths {
            // Checked like a store row: only `uploads/NAME` and `sealed/NAME`.
            docs.path(&relative)
                .map_err(|e| BackupError::Store(StoreError::Corrupt(e.to_string())))?;
            let content: Vec<u8> = conn
                .query_row(
                    &format!("SELECT content FROM {DOCUMENTS_TABLE} WHERE path = ?1"),
                    [&relative],
                    |r| r.get(0),
                )
                .map_err(StoreError::from)?;
            let path = into.join(&relative);
            if let Some(dir) = path.parent() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(io(dir))?;
            }
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(io(&path))?;
            file.write_all(&content).map_err(io(&path))?;
            file.sync_all().map_err(io(&path))?;
            written += 1;
        }
    }
    conn.execute_batch(&format!("DROP TABLE {DOCUMENTS_TABLE}; VACUUM;"))
        .map_err(StoreError::from)?;
    Ok(written)
}

fn read_token_key(path: &Path) -> Result<Option<Vec<u8>>, BackupError> {
    match std::fs::read(path) {
        Ok(key) => Ok(Some(key)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(BackupError::Io {
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

/// Checks a backup without restoring it: its metadata and its usage-log chain.
pub fn check(backup: &Path) -> Result<VerifyReport, BackupError> {
    if !backup.is_file() {
        return Err(StoreError::Missing(backup.to_path_buf()).into());
    }
    // Any failure to read the metadata (not SQLite, no such table) means "not a backup".
    let format = Connection::open_with_flags(backup, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .and_then(|conn| {
            conn.query_row(
                &format!("SELECT format FROM {META_TABLE} WHERE id = 1"),
                [],
                |r| r.get::<_, i64>(0),
            )
            .optional()
        });
    if !matches!(format, Ok(Some(FORMAT))) {
        return Err(BackupError::NotABackup(backup.to_path_buf()));
    }
    let report = Store::read_file(backup, |tx| {
        verify::verify(tx, crate::audit::unix_ms(time::OffsetDateTime::now_utc()))
    })?;
    if let Some(broken) = report.broken.clone() {
        return Err(BackupError::BrokenChain(broken));
    }
    Ok(report)
}

/// What a restore did.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    /// The usage log restored, as verified.
    pub log: VerifyReport,
    /// Where the replaced store was moved, if there was one.
    pub previous: Option<PathBuf>,
    /// Whether the token key was restored.
    pub token_key: bool,
    /// Whether usage records of the replaced store were given up (`--force`); a `restore`
    /// record says so in the restored log.
    pub forced: bool,
    /// Files of the documents directory restored.
    pub documents: usize,
}

fn side(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Where the current store's usage log ends, if it has one: `(seq, hash)` of its head.
fn current_head(store: &Path) -> Result<Option<(i64, Vec<u8>)>, String> {
    if !store.exists() {
        return Ok(None);
    }
    let report = Store::read_file(store, |tx| {
        verify::verify(tx, crate::audit::unix_ms(time::OffsetDateTime::now_utc()))
    })
    .map_err(|e| format!("the current store cannot be read: {e}"))?;
    match (report.last_seq, report.head) {
        (Some(seq), Some(head)) => Ok(Some((seq, head.0.to_vec()))),
        _ => Ok(None),
    }
}

/// Refuses (as `GoesBackwards`) a backup whose log lacks the current head `(seq, hash)`.
fn contains_head(backup: &Path, head: &(i64, Vec<u8>)) -> Result<(), BackupError> {
    let (seq, hash) = head;
    let row = Store::read_file(backup, |tx| tx.audit_row(*seq))?;
    match row {
        Some(row) if &row.hash == hash => Ok(()),
        Some(_) => Err(BackupError::GoesBackwards(format!(
            "its record {seq} differs from the store's: another history"
        ))),
        None => Err(BackupError::GoesBackwards(format!(
            "the store's log runs to record {seq}, the backup's ends earlier"
        ))),
    }
}

/// Replaces the store at `store` with the backup: refuses a broken chain or a store in use,
/// and, unless `force`, a backup whose usage log does not contain the current store's head
/// (an older backup, or another history). A forced restore over such a store writes a
/// `restore` record naming the head it replaced.
pub fn restore(backup: &Path, store: &Path, force: bool) -> Result<RestoreReport, BackupError> {
    check(backup)?;
    let _lock =
        StoreLock::exclusive(store)?.ok_or_else(|| BackupError::InUse(store.to_path_buf()))?;
    let replaced = match current_head(store) {
        Ok(head) => head,
        Err(why) if force => {
            tracing::warn!(%why, "restoring over a store whose usage log cannot be read");
            None
        }
        Err(why) => return Err(BackupError::GoesBackwards(why)),
    };
    let mut dropped = None;
    if let Some(head) = &replaced {
        match contains_head(backup, head) {
            Ok(()) => {}
            Err(BackupError::GoesBackwards(why)) if force => dropped = Some((head.clone(), why)),
            Err(e) => return Err(e),
        }
    }
    let staging = side(store, ".restoring");
    let _ = std::fs::remove_file(&staging);
    std::fs::copy(backup, &staging).map_err(io(&staging))?;
    std::fs::set_permissions(&staging, PermissionsExt::from_mode(0o600)).map_err(io(&staging))?;
    // Checked again on the copy that becomes the store, so a file swapped after the first check
    // cannot slip through.
    let log = match check(&staging) {
        Ok(log) => log,
        Err(e) => {
            let _ = std::fs::remove_file(&staging);
            return Err(e);
        }
    };
    let restoring_docs = side(store, ".documents.restoring");
    let documents = match copy_documents_out(&staging, &restoring_docs) {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&staging);
            let _ = std::fs::remove_dir_all(&restoring_docs);
            return Err(e);
        }
    };
    let key = {
        let conn = Connection::open(&staging).map_err(StoreError::from)?;
        let key: Option<Vec<u8>> = conn
            .query_row(
                &format!("SELECT token_key FROM {META_TABLE} WHERE id = 1"),
                [],
                |r| r.get(0),
            )
            .map_err(StoreError::from)?;
        conn.execute_batch(&format!("DROP TABLE {META_TABLE}"))
            .map_err(StoreError::from)?;
        key
    };
    // Written into the copy before it becomes the store (the store's lock is ours).
    let dropped_recorded = dropped.is_some();
    if let Some(((seq, hash), why)) = dropped {
        let restored = std::sync::Arc::new(Store::open(&staging)?);
        let clock: std::sync::Arc<dyn crate::clock::Clock> =
            std::sync::Arc::new(crate::clock::SystemClock);
        let record = crate::audit::NewRecord::new(
            crate::store::model::AuditKind::Restore,
            crate::identity::Caller::local_from_env().name(),
            None,
            serde_json::json!({
                "forced": true,
                "why": why,
                "replaced_head_seq": seq,
                "replaced_head": hex::encode(&hash),
            }),
        );
        crate::audit::AuditLog::new(restored.clone(), clock)
            .append(record)
            .map_err(|e| BackupError::Store(StoreError::Corrupt(e.to_string())))?;
        restored.close();
        drop(restored);
        // The copy's own lock file; its WAL is folded in and removed at the last close.
        let _ = std::fs::remove_file(side(&staging, ".lock"));
    }
    File::open(&staging)
        .and_then(|f| f.sync_all())
        .map_err(io(&staging))?;
    let previous = if store.exists() {
        let stamp = crate::audit::unix_ms(time::OffsetDateTime::now_utc());
        let moved = side(store, &format!(".pre-restore-{stamp}"));
        for suffix in ["", "-wal", "-shm", ".token-key", ".documents"] {
            let from = side(store, suffix);
            if from.exists() {
                std::fs::rename(&from, side(&moved, suffix)).map_err(io(&from))?;
            }
        }
        Some(moved)
    } else {
        None
    };
    std::fs::rename(&staging, store).map_err(io(store))?;
    let docs_dir = side(store, ".documents");
    if restoring_docs.exists() {
        // Without an earlier store to move aside, a documents directory may still be there.
        if docs_dir.exists() {
            let stamp = crate::audit::unix_ms(time::OffsetDateTime::now_utc());
            let aside = side(store, &format!(".documents.pre-restore-{stamp}"));
            std::fs::rename(&docs_dir, &aside).map_err(io(&docs_dir))?;
        }
        std::fs::rename(&restoring_docs, &docs_dir).map_err(io(&docs_dir))?;
    }
    if let Some(key) = &key {
        let path = key_path_for(store);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io(&path))?;
        file.write_all(key).map_err(io(&path))?;
        file.sync_all().map_err(io(&path))?;
    }
    Ok(RestoreReport {
        log,
        previous,
        token_key: key.is_some(),
        forced: dropped_recorded,
        documents,
    })
}
