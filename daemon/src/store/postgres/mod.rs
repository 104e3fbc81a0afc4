//! PostgreSQL backend: several seald nodes on one database.
//!
//! The connections are driven on a small runtime of the store's own and used synchronously
//! (the rules are written against the blocking [`Tx`]), so the store works the same from the
//! writer thread, the blocking pool and async handlers. Reads run in `REPEATABLE READ READ
//! ONLY` transactions on pooled connections; writes go through the writer, whose every batch
//! first locks the usage log's head row: batches of all nodes are serialised, the chain
//! cannot fork, and there is no lock-order deadlock between nodes.

mod conn;
mod notify;
pub(crate) mod schema;
#[cfg(test)]
mod tests;
mod tx;

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_postgres::config::SslMode;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::Socket;

use self::conn::PgConn;
use self::tx::PgTx;
use super::tx::Tx;
use super::writer::{BatchConn, Head};
use super::StoreError;

pub use notify::Notifications;

/// Waits for a PostgreSQL future on the calling thread. The connections are driven on the
/// store's own runtime, so this works from any thread, inside an async context or not.
pub(crate) fn block_on<F: std::future::Future>(future: F) -> F::Output {
    futures_executor::block_on(future)
}

/// How to reach a PostgreSQL store.
#[derive(Clone, PartialEq)]
pub struct PgOptions {
    /// `postgres://user:password@host:port/database?sslmode=…` (libpq's URL form).
    pub url: String,
    /// Idle read connections kept open.
    pub pool: usize,
    /// CA certificate (PEM) the server's certificate must chain to; required for
    /// `sslmode=require` (without it the connection is plain and `require` fails).
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for PgOptions {
    /// Never shows a password given in the URL.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgOptions")
            .field("url", &redacted(&self.url))
            .field("pool", &self.pool)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// `url` with any password (in the authority or a `password=` parameter) replaced by `***`.
pub fn redacted(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let mut out = redacted_authority(base);
    if let Some(query) = query {
        let params: Vec<String> = query
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                _ => p.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

fn redacted_authority(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    // The authority ends at the first `/` after its last `@` (a password may hold a `/`).
    let at = rest.rfind('@');
    let end = rest[at.map_or(0, |a| a + 1)..]
        .find('/')
        .map_or(rest.len(), |i| i + at.map_or(0, |a| a + 1));
    let (authority, tail) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _)) => format!("{scheme}://{name}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

impl PgOptions {
    /// Options for `url` with the default pool and no CA.
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            pool: 8,
            ca_file: None,
        }
    }
}

/// Makes connections: the parsed URL, the TLS set-up, the runtime that drives them.
struct Connector {
    runtime: Option<tokio::runtime::Runtime>,
    config: tokio_postgres::Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    /// `host:port/database`, for messages.
    target: String,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("target", &self.target)
            .finish()
    }
}

impl Drop for Connector {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Connector {
    fn new(options: &PgOptions) -> Result<Self, StoreError> {
        let mut config = tokio_postgres::Config::from_str(&options.url).map_err(|e| {
            StoreError::Failed(format!(
                "the PostgreSQL URL {} is not valid: {e}",
                redacted(&options.url)
            ))
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        config.keepalives_idle(Duration::from_secs(30));
        config.application_name("seald");
        let tls = match &options.ca_file {
            Some(path) => {
                // A CA given means TLS is wanted: never fall back to a plain connection.
                if config.get_ssl_mode() == SslMode::Prefer {
                    config.ssl_mode(SslMode::Require);
                }
                Some(rustls_connector(path)?)
            }
            None if config.get_ssl_mode() == SslMode::Require => {
                return Err(StoreError::Failed(
                    "sslmode=require needs [postgres] ca_file: the CA the server's certificate \
                     chains to"
                        .into(),
                ))
            }
            None => None,
        };
        let host = config
            .get_hosts()
            .first()
            .map(|h| match h {
                tokio_postgres::config::Host::Tcp(name) => name.clone(),
                tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
            })
            .unwrap_or_else(|| "localhost".into());
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let target = format!(
            "{host}:{port}/{}",
            config.get_dbname().unwrap_or("(default database)")
        );
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("seald-postgres")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Failed(format!("cannot start the PostgreSQL runtime: {e}")))?;
        Ok(Self {
            runtime: Some(runtime),
            config,
            tls,
            target,
        })
    }

    fn handle(&self) -> tokio::runtime::Handle {
        self.runtime
            .as_ref()
            .map(|r| r.handle().clone())
            .expect("the runtime lives as long as the connector")
    }

    /// A new connection (its driver spawned on the runtime).
    fn connect(&self) -> Result<PgConn, StoreError> {
        let config = self.config.clone();
        let tls = self.tls.clone();
        let target = self.target.clone();
        let task = self.handle().spawn(async move {
            match tls {
                Some(tls) => connect_with(config, tls, target).await,
                None => connect_with(config, tokio_postgres::NoTls, target).await,
            }
        });
        let client = block_on(task)
            .map_err(|e| StoreError::Failed(format!("PostgreSQL connect task failed: {e}")))?
            .map_err(|e| {
                let why = StoreError::from(e);
                let text = format!("cannot reach PostgreSQL at {}: {why}", self.target);
                if why.is_unavailable() {
                    StoreError::Unavailable(text)
                } else {
                    StoreError::Failed(text)
                }
            })?;
        Ok(PgConn::new(client))
    }
}

/// Connects and drives the connection on the current runtime until it closes.
async fn connect_with<T: MakeTlsConnect<Socket>>(
    config: tokio_postgres::Config,
    tls: T,
    target: String,
) -> Result<tokio_postgres::Client, tokio_postgres::Error>
where
    T::Stream: Send + 'static,
{
    let (client, connection) = config.connect(tls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(target = %target, error = %e, "PostgreSQL connection closed");
        }
    });
    Ok(client)
}

fn rustls_connector(
    path: &std::path::Path,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, StoreError> {
    let pem = std::fs::read(path).map_err(|e| StoreError::io(path, e))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        let cert = cert.map_err(|e| StoreError::io(path, e))?;
        roots.add(cert).map_err(|e| {
            StoreError::Failed(format!(
                "{}: not a usable CA certificate: {e}",
                path.display()
            ))
        })?;
    }
    if roots.is_empty() {
        return Err(StoreError::Failed(format!(
            "{}: no PEM certificate found",
            path.display()
        )));
    }
    // The only crypto provider built in is ring's.
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// The schema version of the seald store in the database `options` names (0: none) and the
/// version this build writes, read without changing anything (for `sealctl doctor`).
pub fn schema_versions(options: &PgOptions) -> Result<(i64, i64), StoreError> {
    let connector = Connector::new(options)?;
    let conn = connector.connect()?;
    Ok((schema::version(&conn.client)?, schema::latest_version()))
}

/// Creates database `name` on the server `server_url` names (through any database of it) and
/// returns the URL of the new database: for set-up scripts and tests.
pub fn create_database(server_url: &str, name: &str) -> Result<String, StoreError> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(StoreError::Failed(format!(
            "{name:?} is not a plain database name (letters, digits, _)"
        )));
    }
    let connector = Connector::new(&PgOptions::new(server_url))?;
    connector
        .connect()?
        .batch(&format!("CREATE DATABASE {name}"))?;
    let (base, query) = match server_url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (server_url, String::new()),
    };
    let server = match base.rfind('/') {
        Some(i) if i > base.find("://").map_or(0, |s| s + 2) => &base[..i],
        _ => base,
    };
    Ok(format!("{server}/{name}{query}"))
}

/// The PostgreSQL store's connector and pooled read connections.
#[derive(Debug)]
pub(crate) struct PgStore {
    connector: Arc<Connector>,
    readers: Mutex<Vec<PgConn>>,
    max_idle: usize,
}

impl PgStore {
    /// Connects, migrates (refusing a schema newer than this build) and returns the store with
    /// the writer's connection.
    ///
    /// Without `create`, a database with no seald store in it is refused (a mistyped URL must
    /// not become an empty store that "verifies").
    pub(crate) fn open(options: &PgOptions, create: bool) -> Result<(Self, PgWriter), StoreError> {
        let connector = Arc::new(Connector::new(options)?);
        let mut conn = connector.connect()?;
        if !create && schema::version(&conn.client)? == 0 {
            return Err(StoreError::Failed(format!(
                "the database {} holds no seald store; check the URL (a new store is made by \
                 `seald --init`)",
                connector.target
            )));
        }
        schema::migrate(&conn.client)?;
        writer_session(&mut conn)?;
        let writer = PgWriter {
            connector: connector.clone(),
            conn: Some(conn),
            open: false,
        };
        Ok((
            Self {
                connector,
                readers: Mutex::new(Vec::new()),
                max_idle: options.pool.max(1),
            },
            writer,
        ))
    }

    /// A pooled connection, or a new one (closed connections are dropped).
    fn take(&self) -> Result<PgConn, StoreError> {
        loop {
            let pooled = self.readers.lock().unwrap_or_else(|e| e.into_inner()).pop();
            match pooled {
                Some(conn) if conn.is_closed() => continue,
                Some(conn) => return Ok(conn),
                None => return self.connector.connect(),
            }
        }
    }

    fn give_back(&self, conn: PgConn) {
        if conn.is_closed() {
            return;
        }
        let mut pool = self.readers.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < self.max_idle {
            pool.push(conn);
        }
    }

    /// Runs `f` on a consistent read-only snapshot (`REPEATABLE READ READ ONLY`).
    pub(crate) fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        E: From<StoreError>,
        F: FnOnce(&mut dyn Tx) -> Result<T, E>,
    {
        let mut conn = self.take()?;
        let out = (|| {
            conn.batch("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .map_err(StoreError::from)?;
            let out = f(&mut PgTx {
                conn: &mut conn,
                head: &mut None,
            });
            let end = conn.batch(if out.is_ok() { "COMMIT" } else { "ROLLBACK" });
            let out = out?;
            end.map_err(StoreError::from)?;
            Ok(out)
        })();
        self.give_back(conn);
        out
    }

    /// Sends `payload` on `channel` to every node listening (`NOTIFY`), outside any
    /// transaction.
    pub(crate) fn notify(&self, channel: &str, payload: &str) -> Result<(), StoreError> {
        let mut conn = self.take()?;
        let sent = conn.execute("SELECT pg_notify($1, $2)", &[&channel, &payload]);
        self.give_back(conn);
        sent.map(|_| ()).map_err(StoreError::from)
    }

    /// Calls `deliver` with each payload sent on `channel` from now on (reconnecting after a
    /// lost connection), until the returned handle is dropped.
    pub(crate) fn listen(
        &self,
        channel: &str,
        deliver: impl Fn(String) + Send + Sync + 'static,
    ) -> Notifications {
        notify::listen(self.connector.clone(), channel, deliver)
    }
}

/// Sets up the writer's session: commits durable before they are acknowledged, and bounded
/// waits, so a node that stops mid-batch (frozen, cut off) cannot hold the chain's head row,
/// and with it every node's writes, for long: the server ends its transaction after a minute
/// idle, and a batch waiting more than 20 s for the head gives up (503, retry).
fn writer_session(conn: &mut PgConn) -> Result<(), StoreError> {
    conn.batch(
        "SET synchronous_commit = on; SET idle_in_transaction_session_timeout = '60s'; \
         SET lock_timeout = '20s'",
    )?;
    Ok(())
}

/// The writer's connection: reconnects at the next batch after a lost connection.
pub(crate) struct PgWriter {
    connector: Arc<Connector>,
    conn: Option<PgConn>,
    open: bool,
}

impl PgWriter {
    fn conn(&mut self) -> Result<&mut PgConn, StoreError> {
        if self.conn.as_ref().is_none_or(PgConn::is_closed) {
            self.open = false;
            let mut conn = self.connector.connect()?;
            writer_session(&mut conn)?;
            self.conn = Some(conn);
        }
        Ok(self.conn.as_mut().expect("connected above"))
    }
}

impl BatchConn for PgWriter {
    fn begin(&mut self) -> Result<Head, StoreError> {
        self.conn()?.batch("BEGIN")?;
        self.open = true;
        let conn = self.conn.as_mut().ok_or(StoreError::WriterStopped)?;
        let row = conn.query_one(
            "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE",
            &[],
        )?;
        let seq: i64 = row.try_get(0)?;
        Ok((seq > 0).then(|| (seq, row.get(1))))
    }

    fn control(&mut self, sql: &str) -> Result<(), StoreError> {
        let conn = self.conn.as_mut().ok_or(StoreError::WriterStopped)?;
        let done = conn.batch(sql);
        if sql == "COMMIT" || sql == "ROLLBACK" || conn.is_closed() {
            self.open = false;
        }
        done.map_err(StoreError::from)
    }

    fn in_transaction(&self) -> bool {
        self.open && self.conn.as_ref().is_some_and(|c| !c.is_closed())
    }

    fn run(&mut self, head: &mut Head, run: Box<dyn FnOnce(&mut dyn Tx) -> bool + Send>) -> bool {
        match self.conn.as_mut() {
            Some(conn) => run(&mut PgTx { conn, head }),
            None => false,
        }
    }
}

/// A direct connection for tests (see `store::testing::Raw`).
#[cfg(test)]
pub(crate) struct RawPg(PgConn, #[allow(dead_code)] Arc<Connector>);

#[cfg(test)]
impl RawPg {
    /// Connects; with `past_triggers`, triggers do not fire on this connection (a superuser
    /// can do this: `session_replication_role = replica`).
    pub(crate) fn connect(options: &PgOptions, past_triggers: bool) -> Self {
        let connector = Arc::new(Connector::new(options).unwrap());
        let mut conn = connector.connect().unwrap();
        if past_triggers {
            conn.batch("SET session_replication_role = replica")
                .unwrap();
        }
        Self(conn, connector) // the connector drives the connection: kept with it
    }

    /// `sql` with SQLite's `?N` placeholders turned into `$N`.
    fn sql(sql: &str) -> String {
        sql.replace('?', "$")
    }

    fn params(
        params: &[crate::store::testing::RawValue],
    ) -> Vec<Box<dyn tokio_postgres::types::ToSql + Sync>> {
        params
            .iter()
            .map(|v| -> Box<dyn tokio_postgres::types::ToSql + Sync> {
                match v {
                    crate::store::testing::RawValue::Int(i) => Box::new(*i),
                    crate::store::testing::RawValue::Bytes(b) => Box::new(b.clone()),
                }
            })
            .collect()
    }

    pub(crate) fn execute(
        &mut self,
        sql: &str,
        params: &[crate::store::testing::RawValue],
    ) -> Result<u64, String> {
        let owned = Self::params(params);
        let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
            owned.iter().map(|b| b.as_ref()).collect();
        self.0
            .execute(&Self::sql(sql), &refs)
            .map_err(|e| StoreError::from(e).to_string())
    }

    pub(crate) fn row(
        &mut self,
        sql: &str,
        params: &[crate::store::testing::RawValue],
    ) -> Vec<crate::store::testing::RawValue> {
        use crate::store::testing::RawValue;
        use tokio_postgres::types::Type;
        let owned = Self::params(params);
        let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
            owned.iter().map(|b| b.as_ref()).collect();
        let row = self.0.query_one(&Self::sql(sql), &refs).unwrap();
        (0..row.len())
            .map(|i| match *row.columns()[i].type_() {
                Type::INT8 => RawValue::Int(row.get(i)),
                Type::INT4 => RawValue::Int(row.get::<_, i32>(i).into()),
                Type::BYTEA => RawValue::Bytes(row.get(i)),
                Type::TEXT => RawValue::Bytes(row.get::<_, String>(i).into_bytes()),
                ref other => panic!("unexpected column type {other}"),
            })
            .collect()
    }
}
