//! `LISTEN` on a dedicated connection: what other nodes `NOTIFY` reaches this one.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::poll_fn;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{AsyncMessage, Socket};

use super::Connector;

/// A running listener; stops when dropped.
#[derive(Debug)]
pub struct Notifications {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Notifications {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Listens on `channel` and calls `deliver` with each payload; after a lost connection it
/// connects again (every second until it can).
pub(super) fn listen(
    connector: Arc<Connector>,
    channel: &str,
    deliver: impl Fn(String) + Send + Sync + 'static,
) -> Notifications {
    let channel = channel.to_owned();
    let handle = connector.handle();
    let task = handle.spawn(async move {
        loop {
            if let Err(e) = listen_once(&connector, &channel, &deliver).await {
                tracing::warn!(channel = %channel, error = %e, "PostgreSQL notifications lost; listening again in 1 s");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    Notifications { task }
}

async fn listen_once(
    connector: &Connector,
    channel: &str,
    deliver: &(impl Fn(String) + Send + Sync),
) -> Result<(), tokio_postgres::Error> {
    let sql = format!("LISTEN \"{}\"", channel.replace('"', ""));
    match connector.tls.clone() {
        Some(tls) => listen_with(connector, tls, &sql, deliver).await,
        None => listen_with(connector, tokio_postgres::NoTls, &sql, deliver).await,
    }
}

async fn listen_with<T: MakeTlsConnect<Socket>>(
    connector: &Connector,
    tls: T,
    sql: &str,
    deliver: &(impl Fn(String) + Send + Sync),
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = connector.config.connect(tls).await?;
    let drive = async {
        while let Some(message) = poll_fn(|cx| connection.poll_message(cx)).await {
            if let AsyncMessage::Notification(n) = message? {
                deliver(n.payload().to_owned());
            }
        }
        Ok(())
    };
    tokio::pin!(drive);
    // LISTEN must succeed (a hot standby refuses it, for one): else connect again.
    tokio::select! {
        listened = client.batch_execute(sql) => listened?,
        closed = &mut drive => return closed,
    }
    drive.await
}
