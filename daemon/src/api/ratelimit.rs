//! Per-client rate limit: a token bucket per identity.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::identity::IdentityId;

/// The bucket shared by callers without a token (loopback only, so they share one address).
pub const ANONYMOUS: IdentityId = -1;

/// Token buckets keyed by identity.
#[derive(Debug)]
pub struct RateLimiter {
    burst: f64,
    per_second: f64,
    buckets: Mutex<HashMap<IdentityId, (f64, Instant)>>,
}

impl RateLimiter {
    /// `burst` requests at once, refilled at `per_second`.
    pub fn new(burst: u32, per_second: u32) -> Self {
        Self {
            burst: f64::from(burst.max(1)),
            per_second: f64::from(per_second.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `who`; `false` when the bucket is empty.
    pub fn allow(&self, who: IdentityId) -> bool {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, last) = buckets.entry(who).or_insert((self.burst, now));
        let refill = now.duration_since(*last).as_secs_f64() * self.per_second;
        *tokens = (*tokens + refill).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RateLimiter;

    #[test]
    fn a_burst_is_allowed_then_refused_per_identity() {
        let limiter = RateLimiter::new(3, 1);
        assert!((0..3).all(|_| limiter.allow(1)));
        assert!(!limiter.allow(1));
        assert!(limiter.allow(2), "buckets are per identity");
    }
}
