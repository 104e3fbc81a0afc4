//! Storage errors.

use std::path::PathBuf;

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database engine reported an error.
    #[error("the store failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
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
    /// The writer thread has stopped, or failed on this write; nothing of it was written.
    #[error("the write was not stored: the store's writer stopped or failed on it (see seald's log); restart seald if it persists")]
    WriterStopped,
}

impl StoreError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
