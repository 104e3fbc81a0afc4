//! Storage: embedded SQLite by default (WAL, fsync per commit), PostgreSQL for several nodes on
//! one database; group commit through one writer per process ([`writer`]), versioned schema
//! migrations, and the [`Tx`] interface the rules are written against.

mod columns;
pub mod documents;
mod error;
mod handle;
pub mod lock;
pub mod migrations;
pub mod model;
mod postgres;
mod sqlite;
mod tx;
mod writer;

pub(crate) use columns::DOCUMENT_PATHS;
pub use documents::DocumentStore;
pub use error::StoreError;
pub use handle::{is_postgres_url, Database, Store, StoreLocation, StoreStats};
pub use lock::StoreLock;
pub use postgres::{
    create_database as create_postgres_database, redacted as redacted_url,
    schema_versions as postgres_schema_versions, PgOptions,
};
pub use tx::{StoreResult, Tx};

#[cfg(test)]
mod tests;

#[cfg(test)]
pub(crate) mod testing {
    //! The backend the store, seal, approval and usage-log tests run on: SQLite, or PostgreSQL
    //! when `SEALD_TEST_BACKEND=postgres` (`scripts/test.sh` runs them both ways), each test on
    //! a database of its own on the server `SEALD_TEST_POSTGRES` names.

    use std::path::Path;

    use super::{PgOptions, Store, StoreLocation};

    /// Whether the tests run on PostgreSQL.
    pub fn on_postgres() -> bool {
        std::env::var("SEALD_TEST_BACKEND").as_deref() == Ok("postgres")
    }

    /// A new, empty store for a test whose files go in `dir`.
    pub fn open(dir: &Path) -> Store {
        Store::open_at(&location(dir)).expect("test store")
    }

    /// A value bound to a [`Raw`] statement.
    pub enum RawValue {
        /// An integer.
        Int(i64),
        /// Bytes.
        Bytes(Vec<u8>),
    }

    /// A direct connection to a test store's database, past seald: what someone with the file
    /// or database credentials could do.
    pub enum Raw {
        /// The SQLite file.
        Sqlite(rusqlite::Connection),
        /// The PostgreSQL database.
        Postgres(super::postgres::RawPg),
    }

    impl Raw {
        /// A connection with the usage log's triggers out of the way (an attacker's).
        pub fn attacker(location: &StoreLocation) -> Self {
            Self::connect(location, true)
        }

        /// A connection as the database enforces it.
        pub fn plain(location: &StoreLocation) -> Self {
            Self::connect(location, false)
        }

        fn connect(location: &StoreLocation, past_triggers: bool) -> Self {
            match &location.database {
                super::Database::Sqlite(path) => {
                    let conn = rusqlite::Connection::open(path).unwrap();
                    if past_triggers {
                        conn.execute_batch(
                            "DROP TRIGGER IF EXISTS audit_log_no_update; \
                             DROP TRIGGER IF EXISTS audit_log_retention;",
                        )
                        .unwrap();
                    }
                    Raw::Sqlite(conn)
                }
                super::Database::Postgres(options) => {
                    Raw::Postgres(super::postgres::RawPg::connect(options, past_triggers))
                }
            }
        }

        /// Runs `sql` (`?1`-style parameters); the rows changed, or the database's refusal.
        pub fn execute(&mut self, sql: &str, params: &[RawValue]) -> Result<u64, String> {
            match self {
                Raw::Sqlite(conn) => conn
                    .execute(sql, sqlite_params(params))
                    .map(|n| n as u64)
                    .map_err(|e| e.to_string()),
                Raw::Postgres(conn) => conn.execute(sql, params),
            }
        }

        /// The first column of the one row `sql` returns, as an integer.
        pub fn int(&mut self, sql: &str, params: &[RawValue]) -> i64 {
            match self.row(sql, params).remove(0) {
                RawValue::Int(i) => i,
                RawValue::Bytes(_) => panic!("not an integer"),
            }
        }

        /// The first column of the one row `sql` returns, as bytes (text as UTF-8).
        pub fn bytes(&mut self, sql: &str, params: &[RawValue]) -> Vec<u8> {
            match self.row(sql, params).remove(0) {
                RawValue::Bytes(b) => b,
                RawValue::Int(_) => panic!("not bytes"),
            }
        }

        /// The one row `sql` returns.
        pub fn row(&mut self, sql: &str, params: &[RawValue]) -> Vec<RawValue> {
            match self {
                Raw::Sqlite(conn) => conn
                    .query_row(sql, sqlite_params(params), |row| {
                        let mut out = Vec::new();
                        for i in 0..row.as_ref().column_count() {
                            out.push(match row.get_ref(i)? {
                                rusqlite::types::ValueRef::Integer(i) => RawValue::Int(i),
                                rusqlite::types::ValueRef::Text(b)
                                | rusqlite::types::ValueRef::Blob(b) => RawValue::Bytes(b.to_vec()),
                                other => panic!("unexpected {other:?}"),
                            });
                        }
                        Ok(out)
                    })
                    .unwrap(),
                Raw::Postgres(conn) => conn.row(sql, params),
            }
        }
    }

    fn sqlite_params(params: &[RawValue]) -> rusqlite::ParamsFromIter<Vec<rusqlite::types::Value>> {
        rusqlite::params_from_iter(
            params
                .iter()
                .map(|v| match v {
                    RawValue::Int(i) => rusqlite::types::Value::Integer(*i),
                    RawValue::Bytes(b) => rusqlite::types::Value::Blob(b.clone()),
                })
                .collect::<Vec<_>>(),
        )
    }

    /// Where a new, empty store for a test whose files go in `dir` is.
    pub fn location(dir: &Path) -> StoreLocation {
        if !on_postgres() {
            return StoreLocation::sqlite(dir.join("seald.db"));
        }
        let server = std::env::var("SEALD_TEST_POSTGRES").expect(
            "SEALD_TEST_BACKEND=postgres needs SEALD_TEST_POSTGRES (scripts/postgres.sh url)",
        );
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).unwrap();
        let url = super::create_postgres_database(&server, &format!("t_{}", hex::encode(random)))
            .expect("create a test database");
        StoreLocation::postgres(PgOptions::new(&url), dir)
    }
}
