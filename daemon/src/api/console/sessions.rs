//! Console sessions: short-lived bearer credentials for the web console, so the long-lived
//! API token is never kept by the browser, and one-time sign-in codes (`sealctl console`).
//!
//! Both live only in the daemon's memory (a restart ends every session). A session or code
//! is kept by the SHA-256 of its value, never the value. Each remembers the keyed hash of the
//! API token that created it: every use checks that this token still authenticates its
//! identity, so disabling the identity or replacing its token ends its console sessions at
//! once. A session ends after `idle` without use, after `lifetime` in all, or on sign-out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::crypto::sha256;

/// Prefix of a console session credential (API tokens start with `sld_`).
pub const SESSION_PREFIX: &str = "sldc_";

/// How long a sign-in code from `sealctl console` may wait to be used.
pub const CODE_TTL: Duration = Duration::from_secs(120);
/// A session unused this long ends.
pub const IDLE: Duration = Duration::from_secs(15 * 60);
/// A session ends this long after it began, used or not.
pub const LIFETIME: Duration = Duration::from_secs(8 * 60 * 60);
/// At most this many sessions and codes are kept; the oldest go first.
const MAX_ENTRIES: usize = 4096;
/// Most sessions and codes of one grant (API token): past it, its own oldest go first, so one
/// identity opening session after session cannot sign the others out.
const MAX_PER_GRANT: usize = 8;

/// What a session or code stands for: the keyed hash of the API token that made it.
#[derive(Clone, PartialEq, Eq)]
pub struct Grant {
    /// `TokenKey::hash` of the API token (see [`crate::identity::Identities::token_hash`]).
    pub token_hash: Vec<u8>,
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Grant(..)")
    }
}

#[derive(Debug)]
struct Session {
    grant: Grant,
    started: Instant,
    used: Instant,
}

#[derive(Debug)]
struct Code {
    grant: Grant,
    until: Instant,
}

#[derive(Debug, Default)]
struct Inner {
    sessions: HashMap<[u8; 32], Session>,
    codes: HashMap<[u8; 32], Code>,
}

/// The console's sessions and pending sign-in codes.
#[derive(Debug, Clone)]
pub struct ConsoleSessions {
    inner: Arc<Mutex<Inner>>,
    idle: Duration,
    lifetime: Duration,
    code_ttl: Duration,
}

impl Default for ConsoleSessions {
    fn default() -> Self {
        Self::new(IDLE, LIFETIME, CODE_TTL)
    }
}

fn random(prefix: &str) -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("the system random generator failed: {e}"))?;
    Ok(format!("{prefix}{}", hex::encode(bytes)))
}

impl ConsoleSessions {
    /// Sessions ending after `idle` unused or `lifetime` in all; codes valid for `code_ttl`.
    pub fn new(idle: Duration, lifetime: Duration, code_ttl: Duration) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner::default())),
            idle,
            lifetime,
            code_ttl,
        }
    }

    /// The idle timeout.
    pub fn idle(&self) -> Duration {
        self.idle
    }

    /// How long a sign-in code stays valid.
    pub fn code_ttl(&self) -> Duration {
        self.code_ttl
    }

    /// Whether `bearer` has the form of a console session (not of an API token).
    pub fn is_session(bearer: &str) -> bool {
        bearer.starts_with(SESSION_PREFIX)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes room for one more session or code of `grant`, dropping its own oldest first.
    fn make_room(&self, inner: &mut Inner, grant: &Grant, now: Instant) {
        self.prune(inner, now);
        loop {
            let sessions = inner.sessions.iter().filter(|(_, s)| s.grant == *grant);
            let codes = inner.codes.iter().filter(|(_, c)| c.grant == *grant);
            if sessions.clone().count() + codes.clone().count() < MAX_PER_GRANT {
                return;
            }
            if let Some(k) = codes.min_by_key(|(_, c)| c.until).map(|(k, _)| *k) {
                inner.codes.remove(&k);
            } else if let Some(k) = sessions.min_by_key(|(_, s)| s.used).map(|(k, _)| *k) {
                inner.sessions.remove(&k);
            } else {
                return;
            }
        }
    }

    fn prune(&self, inner: &mut Inner, now: Instant) {
        let (idle, lifetime) = (self.idle, self.lifetime);
        inner
            .sessions
            .retain(|_, s| now - s.used < idle && now - s.started < lifetime);
        inner.codes.retain(|_, c| now < c.until);
        while inner.sessions.len() + inner.codes.len() >= MAX_ENTRIES {
            let oldest = inner
                .sessions
                .iter()
                .min_by_key(|(_, s)| s.used)
                .map(|(k, _)| *k);
            match oldest {
                Some(k) => inner.sessions.remove(&k),
                None => {
                    inner.codes.clear();
                    break;
                }
            };
        }
    }

    /// A new session for `grant`; its credential (shown once, to the browser).
    pub fn start(&self, grant: Grant) -> Result<String, String> {
        let value = random(SESSION_PREFIX)?;
        let now = Instant::now();
        let mut inner = self.lock();
        self.make_room(&mut inner, &grant, now);
        inner.sessions.insert(
            sha256(value.as_bytes()),
            Session {
                grant,
                started: now,
                used: now,
            },
        );
        Ok(value)
    }

    /// The grant of session `value` if it is still open; `touch` counts this as use (an
    /// event stream's periodic re-check does not keep a session alive).
    pub fn grant(&self, value: &str, touch: bool) -> Option<Grant> {
        let now = Instant::now();
        let mut inner = self.lock();
        let key = sha256(value.as_bytes());
        let session = inner.sessions.get_mut(&key)?;
        if now - session.used >= self.idle || now - session.started >= self.lifetime {
            inner.sessions.remove(&key);
            return None;
        }
        if touch {
            session.used = now;
        }
        Some(session.grant.clone())
    }

    /// Ends session `value`; whether it was open.
    pub fn end(&self, value: &str) -> bool {
        self.lock()
            .sessions
            .remove(&sha256(value.as_bytes()))
            .is_some()
    }

    /// A new one-time sign-in code for `grant`.
    pub fn new_code(&self, grant: Grant) -> Result<String, String> {
        let value = random("")?;
        let now = Instant::now();
        let mut inner = self.lock();
        self.make_room(&mut inner, &grant, now);
        inner.codes.insert(
            sha256(value.as_bytes()),
            Code {
                grant,
                until: now + self.code_ttl,
            },
        );
        Ok(value)
    }

    /// Takes sign-in code `value` (it cannot be used again); its grant if it was valid.
    pub fn take_code(&self, value: &str) -> Option<Grant> {
        let code = self.lock().codes.remove(&sha256(value.as_bytes()))?;
        (Instant::now() < code.until).then_some(code.grant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(n: u8) -> Grant {
        Grant {
            token_hash: vec![n; 32],
        }
    }

    #[test]
    fn one_identity_opening_many_sessions_signs_out_only_its_own_oldest() {
        let s = ConsoleSessions::default();
        let approver = s.start(grant(2)).unwrap();
        let first = s.start(grant(1)).unwrap();
        let mut last = first.clone();
        for _ in 0..5000 {
            last = s.start(grant(1)).unwrap();
        }
        assert_eq!(
            s.grant(&approver, true),
            Some(grant(2)),
            "others stay signed in"
        );
        assert_eq!(s.grant(&last, true), Some(grant(1)));
        assert_eq!(s.grant(&first, true), None, "its own oldest went first");
        assert!(s.lock().sessions.len() <= MAX_PER_GRANT + 1);
    }

    #[test]
    fn a_session_works_until_it_ends() {
        let s = ConsoleSessions::default();
        let value = s.start(grant(1)).unwrap();
        assert!(ConsoleSessions::is_session(&value));
        assert_eq!(s.grant(&value, true), Some(grant(1)));
        assert_eq!(s.grant("sldc_00", true), None);
        assert!(s.end(&value));
        assert_eq!(s.grant(&value, true), None);
        assert!(!s.end(&value));
    }

    #[test]
    fn an_idle_session_ends_and_a_recheck_does_not_keep_it_alive() {
        let s = ConsoleSessions::new(Duration::from_millis(60), Duration::from_secs(60), CODE_TTL);
        let value = s.start(grant(2)).unwrap();
        std::thread::sleep(Duration::from_millis(40));
        assert!(s.grant(&value, false).is_some());
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(
            s.grant(&value, true),
            None,
            "80 ms idle ends a 60 ms session"
        );
    }

    #[test]
    fn a_session_ends_after_its_lifetime_even_in_use() {
        let s = ConsoleSessions::new(Duration::from_secs(60), Duration::from_millis(50), CODE_TTL);
        let value = s.start(grant(3)).unwrap();
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(20));
            let _ = s.grant(&value, true);
        }
        assert_eq!(s.grant(&value, true), None);
    }

    #[test]
    fn a_code_is_used_once_and_not_after_its_time() {
        let s = ConsoleSessions::new(IDLE, LIFETIME, Duration::from_millis(40));
        let code = s.new_code(grant(4)).unwrap();
        assert!(!ConsoleSessions::is_session(&code));
        assert_eq!(s.take_code(&code), Some(grant(4)));
        assert_eq!(s.take_code(&code), None, "single use");
        let late = s.new_code(grant(5)).unwrap();
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(s.take_code(&late), None, "expired");
    }

    #[test]
    fn values_are_not_kept() {
        let s = ConsoleSessions::default();
        let value = s.start(grant(6)).unwrap();
        let code = s.new_code(grant(6)).unwrap();
        let kept = format!("{:?}", s);
        assert!(!kept.contains(&value[SESSION_PREFIX.len()..]));
        assert!(!kept.contains(&code));
    }
}
