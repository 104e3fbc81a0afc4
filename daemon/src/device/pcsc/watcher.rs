//! The watcher thread: `SCardGetStatusChange` on `\\?PnP?\Notification` and every reader, off
//! the async runtime, debounced, stopped with `SCardCancel`.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pcsc::{Context, ReaderState, Scope, State, PNP_NOTIFICATION};
use tokio::sync::broadcast;

use super::atr::AtrTable;
use super::card::CardMapper;
use super::config::PcscConfig;
use super::debounce::{diff, Change, Seen, SeenCard};
use super::event::{DeviceEvent, PcscReport, PcscStatus, ReaderReport};
use crate::device::Devices;

/// How long one `SCardGetStatusChange` may block before the thread looks at its stop flag
/// (`SCardCancel` normally wakes it at once; this bounds a cancel that raced the call).
const MAX_BLOCK: Duration = Duration::from_secs(1);
/// Events kept for slow subscribers.
const CHANNEL_CAPACITY: usize = 256;

/// Watcher settings.
#[derive(Debug, Clone)]
pub struct WatcherOptions {
    /// Quiet time after the last change before the settled state is reported.
    pub debounce: Duration,
    /// Pause between attempts to reach pcscd while it is not running.
    pub retry: Duration,
}

impl Default for WatcherOptions {
    fn default() -> Self {
        (&PcscConfig::default()).into()
    }
}

impl From<&PcscConfig> for WatcherOptions {
    fn from(config: &PcscConfig) -> Self {
        Self {
            debounce: Duration::from_millis(config.debounce_ms),
            retry: Duration::from_millis(config.retry_ms),
        }
    }
}

/// What the thread shares with its handle.
struct Shared {
    stop: AtomicBool,
    /// The live context, so `stop` can cancel a blocking call.
    context: Mutex<Option<Context>>,
    report: Mutex<PcscReport>,
    events: broadcast::Sender<DeviceEvent>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("stop", &self.stop)
            .field("report", &self.report)
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn report(&self) -> MutexGuard<'_, PcscReport> {
        self.report.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn send(&self, event: DeviceEvent) {
        // No subscriber is not an error: nobody is listening yet.
        let _ = self.events.send(event);
    }
}

/// A running PC/SC watcher. Stops (cancels and joins its thread) on [`Watcher::stop`] or drop.
#[derive(Debug)]
pub struct Watcher {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    /// Starts the watcher thread. Card removals reset the matching token owners of `devices`.
    pub fn start(
        devices: Arc<Devices>,
        table: AtrTable,
        options: WatcherOptions,
    ) -> std::io::Result<Self> {
        Self::start_subscribed(devices, table, options).map(|(watcher, _)| watcher)
    }

    /// Like [`Watcher::start`], with a receiver subscribed before the thread runs, so even the
    /// first events (the cards present at start, pcscd unavailable) are received.
    pub fn start_subscribed(
        devices: Arc<Devices>,
        table: AtrTable,
        options: WatcherOptions,
    ) -> std::io::Result<(Self, broadcast::Receiver<DeviceEvent>)> {
        let (events, receiver) = broadcast::channel(CHANNEL_CAPACITY);
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            context: Mutex::new(None),
            report: Mutex::new(PcscReport::default()),
            events,
        });
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("pcsc-watcher".into())
            .spawn(move || {
                let mut run = Run {
                    shared: thread_shared,
                    mapper: CardMapper::new(devices, table),
                    options,
                    seen: Seen::new(),
                    said_unavailable: false,
                };
                run.main();
            })?;
        let watcher = Self {
            shared,
            thread: Some(thread),
        };
        Ok((watcher, receiver))
    }

    /// A receiver of every event from now on (the API forwards them as server-sent events;
    /// the usage log will record removals and insertions).
    pub fn subscribe(&self) -> broadcast::Receiver<DeviceEvent> {
        self.shared.events.subscribe()
    }

    /// Readers, cards and whether pcscd is reachable, as last settled.
    pub fn report(&self) -> PcscReport {
        self.shared.report().clone()
    }

    /// Stops the thread: sets the flag, cancels a blocking call, joins.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(context) = self
            .shared
            .context
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            let _ = context.cancel();
        }
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the PC/SC watcher thread panicked");
            }
        }
        self.shared.report().status = PcscStatus::Off;
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Why a watching session ended.
enum Lost {
    /// Asked to stop.
    Stopped,
    /// pcscd went away or refused us.
    Service(pcsc::Error),
}

/// The thread's state.
struct Run {
    shared: Arc<Shared>,
    mapper: CardMapper,
    options: WatcherOptions,
    /// The last settled state reported.
    seen: Seen,
    said_unavailable: bool,
}

impl Run {
    fn stopping(&self) -> bool {
        self.shared.stop.load(Ordering::SeqCst)
    }

    fn main(&mut self) {
        while !self.stopping() {
            let error = match Context::establish(Scope::User) {
                Ok(context) => {
                    *self
                        .shared
                        .context
                        .lock()
                        .unwrap_or_else(|e| e.into_inner()) = Some(context.clone());
                    let lost = self.watch(&context);
                    *self
                        .shared
                        .context
                        .lock()
                        .unwrap_or_else(|e| e.into_inner()) = None;
                    match lost {
                        Lost::Stopped => break,
                        Lost::Service(e) => e,
                    }
                }
                Err(e) => e,
            };
            self.unavailable(error);
            self.sleep(self.options.retry);
        }
    }

    /// Sleeps in short steps so a stop is seen quickly.
    fn sleep(&self, total: Duration) {
        let until = Instant::now() + total;
        while !self.stopping() {
            let now = Instant::now();
            if now >= until {
                break;
            }
            std::thread::sleep((until - now).min(Duration::from_millis(50)));
        }
    }

    /// pcscd cannot be reached: say so once per outage, forget the cards (resetting their
    /// tokens: nothing can tell us about them now), and keep serving PKCS#11.
    fn unavailable(&mut self, error: pcsc::Error) {
        let reason = match error {
            pcsc::Error::NoService | pcsc::Error::ServiceStopped => {
                "pcscd is not running".to_owned()
            }
            other => format!("PC/SC failed: {other}"),
        };
        if !self.said_unavailable {
            self.said_unavailable = true;
            tracing::warn!(
                "{reason}: UKey insertion and removal are not watched; PKCS#11 tokens are still served; retrying in the background"
            );
            self.shared.send(DeviceEvent::PcscUnavailable {
                reason: reason.clone(),
            });
        } else {
            tracing::debug!("{reason}; retrying");
        }
        let empty = Seen::new();
        let changes = diff(&self.seen, &empty);
        self.apply(None, changes);
        self.seen = empty;
        let mut report = self.shared.report();
        report.status = PcscStatus::Unavailable;
        report.error = Some(reason);
        report.readers.clear();
    }

    /// Watches until stopped or pcscd goes away.
    fn watch(&mut self, context: &Context) -> Lost {
        if self.said_unavailable {
            tracing::info!("pcscd is reachable again: watching readers");
            self.said_unavailable = false;
        }
        self.shared.send(DeviceEvent::PcscAvailable);
        {
            let mut report = self.shared.report();
            report.status = PcscStatus::Available;
            report.error = None;
        }
        let mut states = vec![ReaderState::new(PNP_NOTIFICATION(), State::UNAWARE)];
        let mut relist = true;
        // Report the state found at start after one quiet window like any other change.
        let mut last_change = Some(Instant::now());
        loop {
            if self.stopping() {
                return Lost::Stopped;
            }
            if relist {
                if let Err(e) = relist_readers(context, &mut states) {
                    return Lost::Service(e);
                }
                relist = false;
            }
            let timeout = match last_change {
                Some(at) => self.options.debounce.saturating_sub(at.elapsed()),
                None => MAX_BLOCK,
            };
            match context.get_status_change(timeout.min(MAX_BLOCK), &mut states) {
                Ok(()) => {
                    for state in states.iter_mut() {
                        if state.event_state().contains(State::CHANGED) {
                            if state.name() == PNP_NOTIFICATION() {
                                relist = true;
                            }
                            last_change = Some(Instant::now());
                        }
                        state.sync_current_state();
                    }
                }
                Err(pcsc::Error::Timeout) => {}
                Err(pcsc::Error::Cancelled) => return Lost::Stopped,
                // A reader vanished between listing and waiting: list again.
                Err(pcsc::Error::UnknownReader) => {
                    relist = true;
                    last_change = Some(Instant::now());
                }
                Err(e) => return Lost::Service(e),
            }
            if let Some(at) = last_change {
                if at.elapsed() >= self.options.debounce && !relist {
                    last_change = None;
                    self.settle(context, &states);
                }
            }
        }
    }

    /// The readers have been quiet for the window: report the difference from the last state.
    fn settle(&mut self, context: &Context, states: &[ReaderState]) {
        let now: Seen = states
            .iter()
            .filter(|s| s.name() != PNP_NOTIFICATION())
            .map(|s| {
                let state = s.event_state();
                let card = (state.contains(State::PRESENT)
                    && !state.intersects(State::MUTE | State::EMPTY))
                .then(|| SeenCard {
                    atr: s.atr().to_vec(),
                    count: s.event_count(),
                });
                (s.name().to_string_lossy().into_owned(), card)
            })
            .collect();
        let changes = diff(&self.seen, &now);
        self.seen = now;
        self.apply(Some(context), changes);
    }

    /// Turns changes into events, resetting owners on removals, and refreshes the report.
    fn apply(&mut self, context: Option<&Context>, changes: Vec<Change>) {
        for change in changes {
            let event = match change {
                Change::ReaderAdded(reader) => {
                    tracing::info!(%reader, "card reader added");
                    DeviceEvent::ReaderAdded { reader }
                }
                Change::ReaderRemoved(reader) => {
                    tracing::info!(%reader, "card reader removed");
                    DeviceEvent::ReaderRemoved { reader }
                }
                Change::CardRemoved(reader, atr) => self.mapper.removed(&reader, &atr),
                Change::CardInserted(reader, atr) => match context {
                    Some(context) => self.mapper.inserted(context, &reader, &atr),
                    None => continue,
                },
            };
            self.shared.send(event);
        }
        let readers = self
            .seen
            .keys()
            .map(|reader| ReaderReport {
                reader: reader.clone(),
                card: self.mapper.card(reader).cloned(),
            })
            .collect();
        self.shared.report().readers = readers;
    }
}

/// Replaces the reader entries after `\\?PnP?\Notification` fired, keeping the known state of
/// readers that are still there.
fn relist_readers(context: &Context, states: &mut Vec<ReaderState>) -> Result<(), pcsc::Error> {
    let names = match context.list_readers_owned() {
        Ok(names) => names,
        Err(pcsc::Error::NoReadersAvailable) => Vec::new(),
        Err(e) => return Err(e),
    };
    let mut old: BTreeMap<CString, ReaderState> = states
        .drain(1..)
        .map(|s| (s.name().to_owned(), s))
        .collect();
    for name in names {
        let state = old
            .remove(&name)
            .unwrap_or_else(|| ReaderState::new(name, State::UNAWARE));
        states.push(state);
    }
    Ok(())
}
