//! Storage errors.

use std::path::PathBuf;

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database engine reported an error.
    #[error("the store failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL reported an error, or cannot be reached.
    #[error("the PostgreSQL store failed: {}", postgres_message(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// A file next to the store could not be created or read.
    #[error("cannot use {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// No store at the path given.
    #[error("there is no seald store at {0}; check --store")]
    Missing(PathBuf),
    /// The store was written by a newer seald.
    #[error("the store has schema version {found} but this seald knows only up to {known}; upgrade seald")]
    NewerSchema {
        /// Version found in the file.
        found: i64,
        /// Newest version this build knows.
        known: i64,
    },
    /// A stored value could not be read back (damaged or edited by hand).
    #[error("the store holds a value it cannot read ({0}); run `sealctl audit verify` and restore from backup if needed")]
    Corrupt(String),
    /// A write could not be committed; nothing of it was stored.
    #[error("the store could not write ({0}); nothing of this change was stored")]
    Failed(String),
    /// The database cannot be reached now (PostgreSQL down or restarting); nothing was
    /// written. seald connects again by itself.
    #[error("the store cannot be reached ({0}); nothing was changed; seald reconnects by itself, so retry in a moment")]
    Unavailable(String),
    /// The writer thread has stopped, or failed on this write; nothing of it was written.
    #[error("the write was not stored: the store's writer stopped or failed on it (see seald's log); restart seald if it persists")]
    WriterStopped,
}

/// A PostgreSQL error as a person reads it: the server's message (and detail) when it sent
/// one, otherwise what went wrong with the connection.
fn postgres_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_owned(),
        },
        None if e.is_closed() => {
            "the connection to PostgreSQL is closed (is the server running?)".into()
        }
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text.push_str(&format!(": {s}"));
                source = s.source();
            }
            text
        }
    }
}

/// The inner text of an error: PostgreSQL's message, or the whole error.
fn postgres_or_text(e: &StoreError) -> String {
    match e {
        StoreError::Postgres(pg) => postgres_message(pg),
        other => other.to_string(),
    }
}

impl StoreError {
    /// Whether the database could not be reached (as opposed to refusing what was asked).
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unavailable(_) => true,
            StoreError::Postgres(e) => match e.as_db_error() {
                // Connection exceptions, operator intervention (shutdown), insufficient
                // resources (too many connections), a lock not had in time.
                Some(db) => {
                    let code = db.code().code();
                    ["08", "57", "53"]
                        .iter()
                        .any(|class| code.starts_with(class))
                        || code == "55P03"
                }
                None => {
                    e.is_closed()
                        || std::error::Error::source(e)
                            .is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some())
                }
            },
            _ => false,
        }
    }

    /// The same error for another waiting write: an unreachable database stays
    /// [`StoreError::Unavailable`], anything else becomes [`StoreError::Failed`] saying `what`.
    pub fn retold(&self, what: &str) -> StoreError {
        match self {
            StoreError::Unavailable(text) => StoreError::Unavailable(text.clone()),
            e if e.is_unavailable() => StoreError::Unavailable(postgres_or_text(e)),
            StoreError::Failed(text) => StoreError::Failed(format!("{what}: {text}")),
            e => StoreError::Failed(format!("{what}: {e}")),
        }
    }
    /// Whether this is a uniqueness violation on a constraint or index naming `column`.
    pub fn is_unique_violation(&self, column: &str) -> bool {
        match self {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, Some(msg))) => {
                f.code == rusqlite::ErrorCode::ConstraintViolation && msg.contains(column)
            }
            StoreError::Postgres(e) => e.as_db_error().is_some_and(|db| {
                *db.code() == tokio_postgres::error::SqlState::UNIQUE_VIOLATION
                    && db.constraint().is_some_and(|c| c.contains(column))
            }),
            _ => false,
        }
    }

    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
