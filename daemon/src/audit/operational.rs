//! The operational log: refusals, refusal summaries and verifications.
//!
//! These records say how the API was used, not how a seal was, so they are kept outside the
//! hash chain (table `ops_log`), append-only, and pruned after
//! [`AuditSettings::operational_retention_days`]. Anonymous and rate-limited refusals are not
//! written one by one: they are counted in memory and written as one `refusal-summary` record
//! per window, so a flood of junk requests costs a few bytes of store and no fsync each.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

/// Most sample paths a summary keeps.
pub const SUMMARY_SAMPLES: usize = 5;
/// Most bytes of a sample path in a summary.
pub const SAMPLE_PATH_BYTES: usize = 120;
/// Most bytes of a path or message in an individual refusal record.
pub const REFUSAL_TEXT_BYTES: usize = 300;
/// Most rate-limited callers a summary names.
const SUMMARY_CALLERS: usize = 16;

/// The `[audit]` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditSettings {
    /// How long anonymous and rate-limited refusals are counted before one summary is written.
    pub refusal_summary_window: Duration,
    /// Days operational records are kept (at least 1).
    pub operational_retention_days: u32,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            refusal_summary_window: Duration::from_secs(60),
            operational_retention_days: 90,
        }
    }
}

/// `text` cut to at most `max` bytes on a character boundary; a cut text ends with `…` and
/// says how long the original was.
pub fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &text[..end], text.len())
}

/// The refusals counted in the current window.
#[derive(Debug, Default)]
pub struct RefusalWindow {
    /// When the window's first refusal was counted (ms since the epoch).
    started_ms: Option<i64>,
    /// Count per `status code` key.
    counts: BTreeMap<String, u64>,
    /// Rate-limited callers and their counts.
    callers: BTreeMap<String, u64>,
    /// A few clipped `METHOD path` samples.
    samples: Vec<String>,
    /// Callers not named because the list was full.
    callers_dropped: u64,
}

impl RefusalWindow {
    /// Counts one refusal at `now_ms`; `caller` is the identity of a rate-limited caller.
    pub fn count(
        &mut self,
        now_ms: i64,
        status: u16,
        code: &str,
        method: &str,
        path: &str,
        caller: Option<&str>,
    ) {
        self.started_ms.get_or_insert(now_ms);
        *self.counts.entry(format!("{status} {code}")).or_default() += 1;
        if let Some(caller) = caller {
            if let Some(n) = self.callers.get_mut(caller) {
                *n += 1;
            } else if self.callers.len() < SUMMARY_CALLERS {
                self.callers.insert(caller.to_owned(), 1);
            } else {
                self.callers_dropped += 1;
            }
        }
        if self.samples.len() < SUMMARY_SAMPLES {
            self.samples
                .push(format!("{method} {}", clip(path, SAMPLE_PATH_BYTES)));
        }
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.started_ms.is_none()
    }

    /// Whether the window that started with its first refusal has run `window` by `now_ms`.
    pub fn is_due(&self, now_ms: i64, window: Duration) -> bool {
        self.started_ms
            .is_some_and(|start| now_ms.saturating_sub(start) >= window.as_millis() as i64)
    }

    /// The summary's detail, emptying the window.
    pub fn take_detail(&mut self, now_ms: i64) -> Option<serde_json::Value> {
        let started = self.started_ms.take()?;
        let window = std::mem::take(self);
        let total: u64 = window.counts.values().sum();
        Some(json!({
            "from_ms": started,
            "to_ms": now_ms,
            "total": total,
            "counts": window.counts,
            "rate_limited_callers": window.callers,
            "callers_not_named": window.callers_dropped,
            "samples": window.samples,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_keeps_char_boundaries_and_says_how_long() {
        assert_eq!(clip("short", 10), "short");
        let text = "印".repeat(100); // 3 bytes each
        let c = clip(&text, 10);
        assert!(c.starts_with("印印印…"), "{c}");
        assert!(c.ends_with("(300 bytes)"), "{c}");
        let long = "A".repeat(60_000);
        assert!(clip(&long, REFUSAL_TEXT_BYTES).len() < REFUSAL_TEXT_BYTES + 32);
    }

    #[test]
    fn a_window_counts_per_code_and_keeps_few_clipped_samples() {
        let mut w = RefusalWindow::default();
        assert!(w.is_empty());
        assert!(w.take_detail(5).is_none());
        let path = format!("/{}", "A".repeat(60_000));
        for i in 0..1000 {
            w.count(1_000 + i, 404, "not_found", "GET", &path, None);
        }
        w.count(1_500, 429, "rate_limited", "GET", "/v1/seals", Some("erp"));
        w.count(1_600, 421, "host_not_allowed", "GET", "/", None);
        assert!(!w.is_due(60_999, Duration::from_secs(60)));
        assert!(w.is_due(61_000, Duration::from_secs(60)));
        let d = w.take_detail(61_000).unwrap();
        assert_eq!(d["total"], 1002);
        assert_eq!(d["counts"]["404 not_found"], 1000);
        assert_eq!(d["counts"]["429 rate_limited"], 1);
        assert_eq!(d["rate_limited_callers"]["erp"], 1);
        assert_eq!(d["samples"].as_array().unwrap().len(), SUMMARY_SAMPLES);
        assert!(d.to_string().len() < 2_000, "{}", d.to_string().len());
        assert!(w.is_empty());
    }
}
