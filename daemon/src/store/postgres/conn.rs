//! One PostgreSQL connection used synchronously, with its prepared statements.

use std::collections::HashMap;

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row, Statement};

use super::block_on;

/// A connection (driven on the store's runtime) and the statements prepared on it.
pub(crate) struct PgConn {
    pub(crate) client: Client,
    statements: HashMap<String, Statement>,
}

/// Parameters of a statement.
pub(crate) type Params<'p> = &'p [&'p (dyn ToSql + Sync)];

impl std::fmt::Debug for PgConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConn")
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl PgConn {
    pub(crate) fn new(client: Client) -> Self {
        Self {
            client,
            statements: HashMap::new(),
        }
    }

    /// Whether the server closed the connection (restart, network): it must be replaced.
    pub(crate) fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// `sql` prepared once per connection (a statement parsed again at each call costs a
    /// round trip).
    fn prepared(&mut self, sql: &str) -> Result<Statement, tokio_postgres::Error> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = block_on(self.client.prepare(sql))?;
        self.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    /// Rows of a query.
    pub(crate) fn query(
        &mut self,
        sql: &str,
        params: Params,
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        let statement = self.prepared(sql)?;
        block_on(self.client.query(&statement, params))
    }

    /// The row of a query returning at most one.
    pub(crate) fn query_opt(
        &mut self,
        sql: &str,
        params: Params,
    ) -> Result<Option<Row>, tokio_postgres::Error> {
        let statement = self.prepared(sql)?;
        block_on(self.client.query_opt(&statement, params))
    }

    /// The row of a query returning exactly one.
    pub(crate) fn query_one(
        &mut self,
        sql: &str,
        params: Params,
    ) -> Result<Row, tokio_postgres::Error> {
        let statement = self.prepared(sql)?;
        block_on(self.client.query_one(&statement, params))
    }

    /// Runs a statement; returns the rows it changed.
    pub(crate) fn execute(
        &mut self,
        sql: &str,
        params: Params,
    ) -> Result<u64, tokio_postgres::Error> {
        let statement = self.prepared(sql)?;
        block_on(self.client.execute(&statement, params))
    }

    /// Runs statements without parameters (transaction control).
    pub(crate) fn batch(&mut self, sql: &str) -> Result<(), tokio_postgres::Error> {
        block_on(self.client.batch_execute(sql))
    }
}
