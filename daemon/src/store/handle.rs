//! [`Store`]: the one handle the rest of seald holds, over SQLite (embedded, the default) or
//! PostgreSQL (several nodes on one database). Both give the same guarantees: a write returns
//! only once durable, concurrent writes are group-committed by one writer per process, reads
//! see a consistent snapshot, and the usage-log chain cannot fork.

use std::path::{Path, PathBuf};

use super::postgres::{PgOptions, PgStore};
use super::sqlite::SqliteStore;
use super::tx::Tx;
use super::writer::Writer;
use super::StoreError;

/// Where a store lives: its database, and the local directory anchor its files are named
/// from (token key `<anchor>.token-key`, documents `<anchor>.documents/`).
#[derive(Debug, Clone, PartialEq)]
pub struct StoreLocation {
    /// The database.
    pub database: Database,
    /// The path the store's files are named from (for SQLite, the database file itself).
    pub files: PathBuf,
}

/// A store's database.
#[derive(Debug, Clone, PartialEq)]
pub enum Database {
    /// An embedded SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL database shared by every node.
    Postgres(PgOptions),
}

/// Whether `text` names a PostgreSQL database (`postgres://…` or `postgresql://…`).
pub fn is_postgres_url(text: &str) -> bool {
    text.starts_with("postgres://") || text.starts_with("postgresql://")
}

impl StoreLocation {
    /// A SQLite file.
    pub fn sqlite(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        Self {
            database: Database::Sqlite(path.clone()),
            files: path,
        }
    }

    /// What a `--store` argument names: a PostgreSQL URL (its files under `data_dir`, by
    /// default `$SEALD_DATA_DIR`, else the current directory) or a SQLite file.
    pub fn from_arg(store: &Path, data_dir: Option<&Path>) -> Result<Self, StoreError> {
        let text = store.to_string_lossy();
        if !is_postgres_url(&text) {
            return Ok(Self::sqlite(store));
        }
        let dir = match data_dir {
            Some(dir) => dir.to_path_buf(),
            None => std::env::var_os("SEALD_DATA_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(".")),
        };
        Ok(Self::postgres(PgOptions::new(&text), &dir))
    }

    /// A PostgreSQL database whose token key and documents are kept under `data_dir` (the same
    /// token key on every node; the documents directory shared by every node that signs
    /// uploaded documents).
    pub fn postgres(options: PgOptions, data_dir: &Path) -> Self {
        Self {
            database: Database::Postgres(options),
            files: data_dir.join("seald"),
        }
    }
}

#[derive(Debug)]
enum Backend {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

/// The store.
#[derive(Debug)]
pub struct Store {
    backend: Backend,
    writer: Writer,
    files: PathBuf,
}

/// How much group commit saved: writes committed and the transactions they took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreStats {
    /// Write transactions committed since open.
    pub commits: u64,
    /// Writes (calls to [`Store::write`]) committed since open.
    pub writes: u64,
    /// Writes waiting for their commit now (queued or in the running batch).
    pub queued: u64,
}

impl Store {
    /// Opens (creating if needed) the SQLite store at `path`, or the PostgreSQL store a URL
    /// names (see [`StoreLocation::from_arg`]), and migrates it.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_at(&StoreLocation::from_arg(path.as_ref(), None)?)
    }

    /// Opens an existing store; refuses to create a SQLite file (for commands that only read
    /// or check).
    pub fn open_existing(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_existing_at(&StoreLocation::from_arg(path.as_ref(), None)?)
    }

    /// Opens the existing store at `location`: refuses to create a SQLite file, or to set up
    /// a PostgreSQL database that holds no seald store yet.
    pub fn open_existing_at(location: &StoreLocation) -> Result<Self, StoreError> {
        if let Database::Sqlite(file) = &location.database {
            if !file.is_file() {
                return Err(StoreError::Missing(file.clone()));
            }
        }
        Self::open_with(location, false)
    }

    /// Opens (creating if needed) and migrates the store at `location`.
    pub fn open_at(location: &StoreLocation) -> Result<Self, StoreError> {
        Self::open_with(location, true)
    }

    fn open_with(location: &StoreLocation, create: bool) -> Result<Self, StoreError> {
        let (backend, writer) = match &location.database {
            Database::Sqlite(path) => {
                let (store, conn) = SqliteStore::open(path)?;
                let writer = Writer::start(conn).map_err(|e| StoreError::io(path, e))?;
                (Backend::Sqlite(store), writer)
            }
            Database::Postgres(options) => {
                let (store, conn) = PgStore::open(options, create)?;
                let writer = Writer::start(conn)
                    .map_err(|e| StoreError::Failed(format!("cannot start the writer: {e}")))?;
                (Backend::Postgres(store), writer)
            }
        };
        Ok(Self {
            backend,
            writer,
            files: location.files.clone(),
        })
    }

    /// Runs `f` on a read-only connection to a SQLite file that is not a live store (a
    /// backup): no migration, no lock, no WAL switch. Refuses a schema newer than this build.
    pub fn read_file<T, E, F>(path: &Path, f: F) -> Result<T, E>
    where
        E: From<StoreError>,
        F: FnOnce(&mut dyn Tx) -> Result<T, E>,
    {
        SqliteStore::read_file(path, f)
    }

    /// The path the store's files are named from: the SQLite file, or `<data_dir>/seald`.
    pub fn path(&self) -> &Path {
        &self.files
    }

    /// The PostgreSQL store, if the store is one.
    pub(crate) fn postgres(&self) -> Option<&PgStore> {
        match &self.backend {
            Backend::Sqlite(_) => None,
            Backend::Postgres(store) => Some(store),
        }
    }

    /// Whether several seald nodes may share this store (PostgreSQL).
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// Runs `f` in a write transaction and returns once that transaction is durable.
    ///
    /// Concurrent calls are committed together. If `f` fails, its changes are rolled back
    /// (and only its own). Blocking: call from `spawn_blocking` in async code, or use
    /// [`Store::write_async`]. Never do slow work (device signing) inside `f`, and never call
    /// the store from inside `f` (a nested write would wait for itself).
    pub fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&mut dyn Tx) -> Result<T, E> + Send + 'static,
    {
        let (done, wait) = std::sync::mpsc::sync_channel::<Result<T, E>>(1);
        self.writer.submit(f, move |outcome| {
            let _ = done.send(outcome);
        })?;
        wait.recv()
            .map_err(|_| E::from(StoreError::WriterStopped))?
    }

    /// [`Store::write`] for async callers: no thread waits for the commit, the task is woken
    /// when its transaction is durable. `f` runs on the writer thread as with `write`.
    pub async fn write_async<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&mut dyn Tx) -> Result<T, E> + Send + 'static,
    {
        let (done, wait) = tokio::sync::oneshot::channel::<Result<T, E>>();
        self.writer.submit(f, move |outcome| {
            let _ = done.send(outcome);
        })?;
        wait.await.map_err(|_| E::from(StoreError::WriterStopped))?
    }

    /// Runs `f` on a consistent read-only snapshot. Writes through the `Tx` fail.
    pub fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        E: From<StoreError>,
        F: FnOnce(&mut dyn Tx) -> Result<T, E>,
    {
        match &self.backend {
            Backend::Sqlite(store) => store.read(f),
            Backend::Postgres(store) => store.read(f),
        }
    }

    /// Commit counters since open.
    pub fn stats(&self) -> StoreStats {
        use std::sync::atomic::Ordering;
        StoreStats {
            commits: self.writer.stats.commits.load(Ordering::Relaxed),
            writes: self.writer.stats.writes.load(Ordering::Relaxed),
            queued: self.writer.stats.queued.load(Ordering::Relaxed),
        }
    }

    /// Seconds each write waited from submission to its durable commit (every usage-log
    /// record is appended by such a write).
    pub fn write_latency(&self) -> prometheus_client::metrics::histogram::Histogram {
        self.writer.stats.latency.clone()
    }

    /// Stops the writer after the writes already queued; later writes fail.
    pub fn close(&self) {
        self.writer.close();
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.close();
    }
}
