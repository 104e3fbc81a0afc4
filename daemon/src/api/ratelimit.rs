//! Per-client rate limit: a token bucket per identity, and per connection for callers without
//! a token (on loopback every caller has the same address, so one connection flooding a public
//! route must not empty a bucket the other verifiers share). The two live in separate maps:
//! anonymous connections can never push an identity's bucket out.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::identity::IdentityId;

/// Most anonymous buckets kept; past it, the least recently used is dropped, so a caller
/// opening connection after connection cannot grow the map without bound. (A caller that
/// reconnects gets a fresh bucket either way; the connection cap bounds what that buys.)
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
    /// Per identity: as many as there are identities.
    identities: Mutex<HashMap<BucketKey, (f64, Instant)>>,
    /// Per anonymous connection: at most [`MAX_BUCKETS`].
    anonymous: Mutex<HashMap<BucketKey, (f64, Instant)>>,
}

impl RateLimiter {
    /// `burst` requests at once, refilled at `per_second`.
    pub fn new(burst: u32, per_second: u32) -> Self {
        Self {
            burst: f64::from(burst.max(1)),
            per_second: f64::from(per_second.max(1)),
            identities: Mutex::new(HashMap::new()),
            anonymous: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `who`; `false` when the bucket is empty.
    pub fn allow(&self, who: BucketKey) -> bool {
        self.allow_at(who, Instant::now())
    }

    /// [`RateLimiter::allow`] at the time `now` (tests give the time, so how long they run
    /// does not refill buckets).
    fn allow_at(&self, who: BucketKey, now: Instant) -> bool {
        let map = match who {
            BucketKey::Identity(_) => &self.identities,
            BucketKey::Connection(_) | BucketKey::Anonymous => &self.anonymous,
        };
        let mut buckets = map.lock().unwrap_or_else(|e| e.into_inner());
        if !matches!(who, BucketKey::Identity(_))
            && buckets.len() >= MAX_BUCKETS
            && !buckets.contains_key(&who)
        {
            let oldest = buckets
                .iter()
                .min_by_key(|(_, (_, last))| *last)
                .map(|(k, _)| *k);
            if let Some(oldest) = oldest {
                buckets.remove(&oldest);
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

    /// Anonymous buckets kept now.
    pub fn anonymous_buckets(&self) -> usize {
        self.anonymous
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::{BucketKey, RateLimiter, MAX_BUCKETS};
    use std::time::Instant;

    #[test]
    fn a_burst_is_allowed_then_refused_per_caller() {
        let limiter = RateLimiter::new(3, 1);
        let now = Instant::now();
        let allow = |who| limiter.allow_at(who, now);
        let one = BucketKey::Identity(1);
        assert!((0..3).all(|_| allow(one)));
        assert!(!allow(one));
        assert!(allow(BucketKey::Identity(2)), "buckets are per identity");
        let flooding = BucketKey::Connection(7);
        assert!((0..3).all(|_| allow(flooding)));
        assert!(!allow(flooding));
        assert!(
            allow(BucketKey::Connection(8)),
            "buckets are per connection"
        );
    }

    #[test]
    fn anonymous_connections_stay_bounded_and_never_push_out_an_identity() {
        let limiter = RateLimiter::new(2, 1);
        let now = Instant::now();
        let allow = |who| limiter.allow_at(who, now);
        let client = BucketKey::Identity(1);
        assert!(allow(client) && allow(client));
        assert!(!allow(client));
        // A flood of fresh connections, far more than the map holds.
        for c in 0..(2 * MAX_BUCKETS as u64) {
            assert!(allow(BucketKey::Connection(c)));
        }
        assert_eq!(limiter.anonymous_buckets(), MAX_BUCKETS);
        // The identity's bucket is still there, still empty: the flood neither refilled it nor
        // took it away.
        assert!(!allow(client));
        // The newest connections kept their buckets; the oldest were dropped.
        let newest = BucketKey::Connection(2 * MAX_BUCKETS as u64 - 1);
        assert!(allow(newest));
        assert!(!allow(newest));
    }
}
