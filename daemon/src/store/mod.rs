//! Storage: embedded SQLite by default (WAL, fsync per commit, group commit), versioned schema
//! migrations, and the [`Tx`] interface the rules are written against.

pub mod documents;
mod error;
pub mod lock;
pub mod migrations;
pub mod model;
mod sqlite;
mod tx;

pub use documents::DocumentStore;
pub use error::StoreError;
pub use lock::StoreLock;
pub(crate) use sqlite::DOCUMENT_PATHS;
pub use sqlite::{Store, StoreStats};
pub use tx::{StoreResult, Tx};
