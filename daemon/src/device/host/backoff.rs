//! When to start a failed vendor library again: 1 s after its first failure, doubling to a
//! minute while failures follow each other; a library that then stays up for a minute starts
//! the count again.

use std::time::{Duration, Instant};

/// The first restart waits this long; each failure in a row doubles it up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait, and how long a library must stay up to end a run of failures.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// One library's failures and the time of its next start.
#[derive(Debug, Default)]
pub struct Backoff {
    failures: u32,
    up_since: Option<Instant>,
    down: Option<(String, Instant)>,
}

impl Backoff {
    /// The library is up (started, reconnected).
    pub fn up(&mut self) {
        self.up_since = Some(Instant::now());
        self.down = None;
    }

    /// The library failed for `reason`; a failure already recorded keeps its reason.
    pub fn fail(&mut self, reason: String) {
        if self.down.is_some() {
            return;
        }
        self.failures = match self.up_since.take() {
            Some(since) if since.elapsed() >= MAX_BACKOFF => 1,
            _ => self.failures + 1,
        };
        self.down = Some((reason, Instant::now() + wait(self.failures)));
    }

    /// A start attempt failed: the next one waits longer.
    pub fn retry_failed(&mut self, reason: String) {
        self.down = None;
        self.up_since = None;
        self.fail(reason);
    }

    /// Whether the library is down (failed and not up again).
    pub fn is_down(&self) -> bool {
        self.down.is_some()
    }

    /// Why the library is down and how long until the next attempt (zero: now).
    pub fn down(&self) -> Option<(String, Duration)> {
        self.down
            .as_ref()
            .map(|(reason, at)| (reason.clone(), at.saturating_duration_since(Instant::now())))
    }
}

/// 1 s, 2 s, 4 s … up to a minute, for the `failures`-th failure in a row.
fn wait(failures: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(1 << failures.saturating_sub(1).min(6))
        .min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_from_one_second_to_a_minute() {
        let waits: Vec<u64> = (1..=9).map(|n| wait(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn failures_in_a_row_wait_longer_and_the_first_reason_stays() {
        let mut b = Backoff::default();
        assert!(b.down().is_none());
        b.up();
        b.fail("crashed".into());
        b.fail("a later symptom".into());
        let (reason, wait) = b.down().unwrap();
        assert_eq!(reason, "crashed");
        assert!(
            wait <= FIRST_BACKOFF && wait > FIRST_BACKOFF / 2,
            "{wait:?}"
        );
        b.retry_failed("could not be restarted".into());
        let (reason, wait) = b.down().unwrap();
        assert_eq!(reason, "could not be restarted");
        assert!(
            wait > FIRST_BACKOFF,
            "the second failure in a row waits 2 s: {wait:?}"
        );
        b.up();
        assert!(b.down().is_none());
    }
}
