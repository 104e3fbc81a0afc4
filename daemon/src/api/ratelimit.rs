//! Per-client rate limit: a token bucket per identity, and per connection for callers without
//! a token (on loopback every caller has the same address, so one connection flooding a public
//! route must not empty a bucket the other verifiers share).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::identity::IdentityId;

/// Most buckets kept; past it, buckets that have refilled (idle callers) are dropped, so a
/// caller opening connection after connection cannot grow the map without bound.
const MAX_BUCKETS: usize = 4096;

/// Whose bucket a request takes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BucketKey {
    /// A caller with a token.
    Identity(IdentityId),
    /// A caller without a token, by the connection it came on.
    Connection(u64),
    /// A caller without a token whose connection is not known (requests served in-process).
    Anonymous,
}

/// Token buckets keyed by caller.
#[derive(Debug)]
pub struct RateLimiter {
    burst: f64,
    per_second: f64,
    buckets: Mutex<HashMap<BucketKey, (f64, Instant)>>,
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
    pub fn allow(&self, who: BucketKey) -> bool {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(&who) {
            let refilled = self.burst / self.per_second;
            buckets.retain(|_, (_, last)| now.duration_since(*last).as_secs_f64() < refilled);
            if buckets.len() >= MAX_BUCKETS {
                // Every bucket is in use: a new caller waits for one to refill.
                return false;
            }
        }
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

    /// Buckets kept now.
    pub fn buckets(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::{BucketKey, RateLimiter, MAX_BUCKETS};

    #[test]
    fn a_burst_is_allowed_then_refused_per_caller() {
        let limiter = RateLimiter::new(3, 1);
        let one = BucketKey::Identity(1);
        assert!((0..3).all(|_| limiter.allow(one)));
        assert!(!limiter.allow(one));
        assert!(
            limiter.allow(BucketKey::Identity(2)),
            "buckets are per identity"
        );
        let flooding = BucketKey::Connection(7);
        assert!((0..3).all(|_| limiter.allow(flooding)));
        assert!(!limiter.allow(flooding));
        assert!(
            limiter.allow(BucketKey::Connection(8)),
            "buckets are per connection"
        );
    }

    #[test]
    fn idle_buckets_make_room_and_the_map_stays_bounded() {
        // Refills in 1/1000 s: every bucket not used in the last millisecond is idle.
        let limiter = RateLimiter::new(1, 1000);
        for c in 0..MAX_BUCKETS as u64 {
            assert!(limiter.allow(BucketKey::Connection(c)));
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(limiter.allow(BucketKey::Connection(u64::MAX)));
        assert!(limiter.buckets() < MAX_BUCKETS, "{}", limiter.buckets());

        // Buckets all busy (refill takes an hour): a new caller is refused, the map does not grow.
        let slow = RateLimiter::new(2, 1);
        for c in 0..MAX_BUCKETS as u64 {
            assert!(slow.allow(BucketKey::Connection(c)));
        }
        assert!(!slow.allow(BucketKey::Connection(u64::MAX)));
        assert_eq!(slow.buckets(), MAX_BUCKETS);
    }
}
