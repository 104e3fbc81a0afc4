//! Reading `GET /v1/events` in tests as whole events, so a test waits for the events it is
//! about and passes over any other (the PC/SC watcher's reader events, PIN-age warnings, …)
//! that the running daemon may send in between.

use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// How long a test waits for an event it expects.
const WAIT: Duration = Duration::from_secs(20);

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Its `id:` (empty if none).
    pub id: String,
    /// Its `event:` name.
    pub name: String,
    /// Its `data:` (one line: seald sends JSON).
    pub data: String,
}

impl Event {
    /// The data as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|e| panic!("event data is not JSON ({e}): {}", self.data))
    }
}

/// An open event stream: lines from the connection's reader thread, read into events.
#[derive(Debug)]
pub struct Events {
    lines: Receiver<String>,
}

impl Events {
    /// Wraps the lines of a subscribed stream (the response head already read).
    pub fn new(lines: Receiver<String>) -> Self {
        Events { lines }
    }

    /// The next event of any name, or `None` if none comes within `wait`.
    pub fn next_within(&self, wait: Duration) -> Option<Event> {
        let deadline = Instant::now() + wait;
        let mut event = Event {
            id: String::new(),
            name: String::new(),
            data: String::new(),
        };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).ok()?;
            if line.is_empty() {
                if !event.name.is_empty() {
                    return Some(event);
                }
                continue;
            }
            if let Some(v) = line.strip_prefix("id:") {
                event.id = v.trim().to_owned();
            } else if let Some(v) = line.strip_prefix("event:") {
                event.name = v.trim().to_owned();
            } else if let Some(v) = line.strip_prefix("data:") {
                event.data = v.trim().to_owned();
            }
        }
    }

    /// The next event of any name; panics if none comes in time.
    pub fn next(&self) -> Event {
        self.next_within(WAIT).expect("an SSE event")
    }

    /// The next event named one of `names`, passing over others; panics if none comes in time.
    pub fn next_of(&self, names: &[&str]) -> Event {
        self.find(|e| names.contains(&e.name.as_str()), &format!("{names:?}"))
    }

    /// The first event named `name` whose data contains every one of `needles`, passing over
    /// the others; panics (listing what came) if none comes in time.
    pub fn expect(&self, name: &str, needles: &[&str]) -> Event {
        self.find(
            |e| e.name == name && needles.iter().all(|n| e.data.contains(n)),
            &format!("{name} with {needles:?}"),
        )
    }

    /// The first event that `wanted` accepts; panics (listing what came) if none comes in time.
    pub fn find(&self, wanted: impl Fn(&Event) -> bool, what: &str) -> Event {
        let deadline = Instant::now() + WAIT;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_within(left) {
                Some(e) if wanted(&e) => return e,
                Some(e) => seen.push(format!("{}: {}", e.name, e.data)),
                None => panic!("no {what} event within {WAIT:?}; saw {seen:?}"),
            }
        }
    }
}
