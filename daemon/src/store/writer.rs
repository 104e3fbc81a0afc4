//! The write path both backends share: one writer thread per store that commits concurrent
//! writes together (group commit), each write in its own savepoint, and acknowledges a write
//! only after the transaction it ran in is durable.
//!
//! The contract a backend meets ([`BatchConn`]): begin a transaction (PostgreSQL also locks the
//! usage log's head row there, so batches of different nodes never interleave), open, release
//! and roll back a savepoint, commit, and say whether the transaction is still open.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::tx::Tx;
use super::StoreError;

/// Most writes committed in one transaction.
const MAX_BATCH: usize = 1024;

/// A queued write: `run` executes inside the batch transaction and says whether it succeeded;
/// `complete` is called once the batch has committed (or failed to), never before.
pub(crate) struct Job {
    run: RunFn,
    complete: CompleteFn,
}

type RunFn = Box<dyn FnOnce(&mut dyn Tx) -> bool + Send>;
type CompleteFn = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// The usage log's last `(seq, hash)` when known in the current transaction.
pub(crate) type Head = Option<(i64, Vec<u8>)>;

/// What the writer needs of a backend's connection.
pub(crate) trait BatchConn: Send + 'static {
    /// Begins a batch's transaction (reconnecting first if needed); returns the usage log's
    /// head when the backend read it (and locked it) on the way.
    fn begin(&mut self) -> Result<Head, StoreError>;
    /// Runs one transaction-control statement (`SAVEPOINT job`, `RELEASE job`,
    /// `ROLLBACK TO job`, `COMMIT`, `ROLLBACK`).
    fn control(&mut self, sql: &str) -> Result<(), StoreError>;
    /// Whether the batch's transaction is still open (the engine may end it on some errors).
    fn in_transaction(&self) -> bool;
    /// Runs `run` against this connection as a [`Tx`] that knows `head`.
    fn run(&mut self, head: &mut Head, run: RunFn) -> bool;
}

/// Commit counters, the queue's length and how long writes wait for their commit.
#[derive(Debug)]
pub(crate) struct Counters {
    pub(crate) commits: AtomicU64,
    pub(crate) writes: AtomicU64,
    /// Writes submitted and not yet acknowledged (queued or in the running batch).
    pub(crate) queued: AtomicU64,
    /// Seconds from a write's submission to its acknowledgement (the commit is durable).
    pub(crate) latency: prometheus_client::metrics::histogram::Histogram,
}

impl Default for Counters {
    fn default() -> Self {
        Self {
            commits: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            latency: crate::metrics::latency_histogram(),
        }
    }
}

/// The writer thread of a store and the queue to it.
#[derive(Debug)]
pub(crate) struct Writer {
    sender: Mutex<Option<Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    pub(crate) stats: Arc<Counters>,
}

impl Writer {
    /// Starts the writer thread over `conn`.
    pub(crate) fn start(conn: impl BatchConn) -> std::io::Result<Self> {
        let (sender, jobs) = mpsc::channel::<Job>();
        let stats = Arc::new(Counters::default());
        let counters = stats.clone();
        let thread = std::thread::Builder::new()
            .name("seald-store-writer".into())
            .spawn(move || writer_loop(conn, jobs, &counters))?;
        Ok(Self {
            sender: Mutex::new(Some(sender)),
            thread: Mutex::new(Some(thread)),
            stats,
        })
    }

    /// Queues `f`; `deliver` gets its result once the batch it ran in is committed (or the
    /// commit's error).
    pub(crate) fn submit<T, E, F>(
        &self,
        f: F,
        deliver: impl FnOnce(Result<T, E>) + Send + 'static,
    ) -> Result<(), StoreError>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&mut dyn Tx) -> Result<T, E> + Send + 'static,
    {
        let slot = Arc::new(Mutex::new(None::<Result<T, E>>));
        let filled = slot.clone();
        let stats = self.stats.clone();
        let submitted = std::time::Instant::now();
        let job = Job {
            run: Box::new(move |tx: &mut dyn Tx| {
                let result = f(tx);
                let ok = result.is_ok();
                *filled.lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
                ok
            }),
            complete: Box::new(move |commit| {
                stats.queued.fetch_sub(1, Ordering::Relaxed);
                stats.latency.observe(submitted.elapsed().as_secs_f64());
                let result = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
                deliver(match (commit, result) {
                    (Ok(()), Some(result)) => result,
                    (Err(e), _) => Err(E::from(e)),
                    (Ok(()), None) => {
                        Err(E::from(StoreError::Failed("the write did not run".into())))
                    }
                });
            }),
        };
        let sender = self
            .sender
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or(StoreError::WriterStopped)?;
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        sender.send(job).map_err(|_| {
            self.stats.queued.fetch_sub(1, Ordering::Relaxed);
            StoreError::WriterStopped
        })
    }

    /// Stops the writer after the writes already queued; later writes fail.
    pub(crate) fn close(&self) {
        self.sender.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = thread.join();
        }
    }
}

fn writer_loop(mut conn: impl BatchConn, jobs: Receiver<Job>, stats: &Counters) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        run_batch(&mut conn, batch, stats);
    }
}

/// Undoes the current job's changes and drops its savepoint; the batch's transaction and the
/// jobs before it are untouched.
fn rollback_job(conn: &mut impl BatchConn) -> Result<(), StoreError> {
    conn.control("ROLLBACK TO job")?;
    conn.control("RELEASE job")
}

/// Runs a batch in one transaction, each job in its own savepoint, then acknowledges every job
/// with the commit's outcome.
fn run_batch(conn: &mut impl BatchConn, batch: Vec<Job>, stats: &Counters) {
    let n = batch.len() as u64;
    // The chain head as of the last job that appended to the usage log, so the next append
    // needs no SELECT. Only valid inside this transaction (another process may write between
    // batches); forgotten whenever a job's changes are rolled back.
    let mut head = match conn.begin() {
        Ok(head) => head,
        Err(e) => {
            tracing::error!("store: cannot begin a write transaction: {e}");
            if conn.in_transaction() {
                let _ = conn.control("ROLLBACK");
            }
            for job in batch {
                (job.complete)(Err(e.retold("cannot begin a transaction")));
            }
            return;
        }
    };
    let mut completions = Vec::with_capacity(batch.len());
    let mut jobs = batch.into_iter();
    let mut lost: Option<StoreError> = None;
    for Job { run, complete } in jobs.by_ref() {
        if let Err(e) = conn.control("SAVEPOINT job") {
            // The transaction is in doubt (PostgreSQL aborts it on any error, and its COMMIT
            // would then roll back silently): nothing of the batch may be acknowledged.
            complete(Err(e.retold("cannot open a savepoint")));
            lost = Some(e);
            break;
        }
        let ran = catch_unwind(AssertUnwindSafe(|| conn.run(&mut head, run)));
        // A job's changes that cannot be undone must not be committed with the others.
        let mut undone = Ok(());
        match ran {
            Ok(true) => match conn.control("RELEASE job") {
                Ok(()) => completions.push((complete, None)),
                Err(e) => {
                    head = None;
                    undone = rollback_job(conn);
                    completions.push((complete, Some(e)));
                }
            },
            Ok(false) => {
                head = None;
                undone = rollback_job(conn);
                completions.push((complete, None));
            }
            Err(_) => {
                head = None;
                undone = rollback_job(conn);
                tracing::error!("store: a write panicked; its changes were rolled back");
                complete(Err(StoreError::Failed("the write panicked (a bug)".into())));
            }
        }
        if let Err(e) = undone {
            lost = Some(e);
            break;
        }
        if !conn.in_transaction() {
            // The engine ended the transaction itself (SQLite rolls back on some I/O and
            // memory errors; a PostgreSQL connection can drop): the jobs before this one are
            // gone, and no later job may run outside the batch's transaction.
            lost = Some(StoreError::Failed("the transaction was rolled back".into()));
            break;
        }
    }
    let committed = match lost {
        Some(e) => {
            tracing::error!("store: a write batch was lost ({e}); failing the whole batch");
            if conn.in_transaction() {
                let _ = conn.control("ROLLBACK");
            }
            for job in jobs {
                (job.complete)(Err(e.retold("commit failed")));
            }
            Err(e)
        }
        None => conn.control("COMMIT").inspect_err(|_| {
            if conn.in_transaction() {
                let _ = conn.control("ROLLBACK");
            }
        }),
    };
    if committed.is_ok() {
        stats.commits.fetch_add(1, Ordering::Relaxed);
        stats.writes.fetch_add(n, Ordering::Relaxed);
    }
    for (complete, own_err) in completions {
        match (&committed, own_err) {
            (Ok(()), None) => complete(Ok(())),
            (Ok(()), Some(e)) => complete(Err(e)),
            (Err(e), _) => complete(Err(e.retold("commit failed"))),
        }
    }
}
