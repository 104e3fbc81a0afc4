//! PIN policy (`[pin_policy]`): what a new PIN must look like and how old it may grow.
//!
//! The age comes from the daemon's own `pin-change` records in the usage log; the daemon never
//! stores a PIN or anything derived from one.

use std::fmt;

use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::device::Pin;

/// A class of characters a PIN may be required to contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CharClass {
    /// 0–9.
    Digit,
    /// Any letter (either case).
    Letter,
    /// a–z.
    Lower,
    /// A–Z.
    Upper,
    /// Anything that is not a letter or digit.
    Symbol,
}

impl CharClass {
    fn matches(self, c: char) -> bool {
        match self {
            CharClass::Digit => c.is_ascii_digit(),
            CharClass::Letter => c.is_alphabetic(),
            CharClass::Lower => c.is_lowercase(),
            CharClass::Upper => c.is_uppercase(),
            CharClass::Symbol => !c.is_alphanumeric(),
        }
    }

    fn words(self) -> &'static str {
        match self {
            CharClass::Digit => "a digit",
            CharClass::Letter => "a letter",
            CharClass::Lower => "a lower-case letter",
            CharClass::Upper => "a capital letter",
            CharClass::Symbol => "a symbol (neither letter nor digit)",
        }
    }
}

/// The `[pin_policy]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinPolicy {
    /// Shortest new PIN, in characters.
    #[serde(default = "default_min_length")]
    pub min_length: usize,
    /// Character classes every new PIN must contain.
    #[serde(default = "default_require")]
    pub require: Vec<CharClass>,
    /// Days a PIN may be used before it must be changed; 0 turns rotation off.
    #[serde(default = "default_max_age_days")]
    pub max_age_days: u32,
    /// Days before `max_age_days` from which warnings are shown.
    #[serde(default = "default_warn_days")]
    pub warn_days: u32,
}

fn default_min_length() -> usize {
    8
}
fn default_require() -> Vec<CharClass> {
    vec![CharClass::Letter, CharClass::Digit]
}
fn default_max_age_days() -> u32 {
    90
}
fn default_warn_days() -> u32 {
    14
}

impl Default for PinPolicy {
    fn default() -> Self {
        Self {
            min_length: default_min_length(),
            require: default_require(),
            max_age_days: default_max_age_days(),
            warn_days: default_warn_days(),
        }
    }
}

/// One way a new PIN falls short.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shortfall {
    /// Fewer characters than the policy's minimum.
    TooShort {
        /// The minimum.
        min: usize,
    },
    /// A required character class is missing.
    Missing(CharClass),
    /// The same character over and over, or a run like 123456 / abcdef.
    Trivial,
    /// The new PIN is the old one.
    SameAsOld,
}

impl fmt::Display for Shortfall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shortfall::TooShort { min } => write!(f, "it must be at least {min} characters long"),
            Shortfall::Missing(class) => write!(f, "it must contain {}", class.words()),
            Shortfall::Trivial => {
                f.write_str("it must not be one repeated character or a simple run like 123456")
            }
            Shortfall::SameAsOld => f.write_str("it must differ from the current PIN"),
        }
    }
}

/// A new PIN the policy refuses, with every reason (never the PIN itself).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PolicyViolation {
    /// What is wrong, in order.
    pub shortfalls: Vec<Shortfall>,
}

impl fmt::Display for PolicyViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the new PIN does not meet the PIN policy: ")?;
        for (i, s) in self.shortfalls.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{s}")?;
        }
        Ok(())
    }
}

fn trivial(chars: &[char]) -> bool {
    if chars.len() < 2 {
        return false;
    }
    let steps: Vec<i64> = chars
        .windows(2)
        .map(|w| i64::from(u32::from(w[1])) - i64::from(u32::from(w[0])))
        .collect();
    steps.iter().all(|&s| s == steps[0]) && steps[0].abs() <= 1
}

/// Checks a new PIN against the policy (and, when given, against the current PIN).
pub fn check_new_pin(
    new: &Pin,
    old: Option<&Pin>,
    policy: &PinPolicy,
) -> Result<(), PolicyViolation> {
    let text = new.auth().expose_secret();
    let chars: Vec<char> = text.chars().collect();
    let mut shortfalls = Vec::new();
    if chars.len() < policy.min_length {
        shortfalls.push(Shortfall::TooShort {
            min: policy.min_length,
        });
    }
    for class in &policy.require {
        if !chars.iter().any(|&c| class.matches(c)) {
            shortfalls.push(Shortfall::Missing(*class));
        }
    }
    if trivial(&chars) {
        shortfalls.push(Shortfall::Trivial);
    }
    if old.is_some_and(|old| old.auth().expose_secret() == text) {
        shortfalls.push(Shortfall::SameAsOld);
    }
    if shortfalls.is_empty() {
        Ok(())
    } else {
        Err(PolicyViolation { shortfalls })
    }
}

/// How a PIN's age stands against the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AgeStatus {
    /// Younger than the warning window.
    Ok,
    /// Inside the warning window: change it soon.
    Warn,
    /// Older than the maximum age.
    Overdue,
    /// seald has no record of a change for this device.
    Unknown,
    /// The policy sets no maximum age.
    NoLimit,
}

/// A PIN's age as seald knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PinAge {
    /// When seald last recorded a change or unblock (Unix ms), if ever.
    pub last_change_ms: Option<i64>,
    /// Whole days since then.
    pub age_days: Option<i64>,
    /// When it must be changed by (Unix ms), if there is a limit and a record.
    pub due_ms: Option<i64>,
    /// The verdict.
    pub status: AgeStatus,
}

impl PinAge {
    /// Judges a PIN last changed at `last_change_ms` (None: never seen) at `now`.
    pub fn judge(last_change_ms: Option<i64>, policy: &PinPolicy, now: OffsetDateTime) -> Self {
        let now_ms = crate::audit::unix_ms(now);
        let age_days = last_change_ms.map(|at| (now_ms - at).max(0) / 86_400_000);
        if policy.max_age_days == 0 {
            return Self {
                last_change_ms,
                age_days,
                due_ms: None,
                status: AgeStatus::NoLimit,
            };
        }
        let Some(at) = last_change_ms else {
            return Self {
                last_change_ms,
                age_days,
                due_ms: None,
                status: AgeStatus::Unknown,
            };
        };
        let max = Duration::days(i64::from(policy.max_age_days));
        let due_ms = at + max.whole_milliseconds() as i64;
        let warn_from =
            due_ms - Duration::days(i64::from(policy.warn_days)).whole_milliseconds() as i64;
        let status = if now_ms >= due_ms {
            AgeStatus::Overdue
        } else if now_ms >= warn_from {
            AgeStatus::Warn
        } else {
            AgeStatus::Ok
        };
        Self {
            last_change_ms,
            age_days,
            due_ms: Some(due_ms),
            status,
        }
    }

    /// A sentence for a custodian, or `None` when all is well.
    pub fn warning(&self) -> Option<String> {
        let days_left = |due: i64, now_days: i64| due / 86_400_000 - now_days;
        match self.status {
            AgeStatus::Ok | AgeStatus::NoLimit => None,
            AgeStatus::Unknown => Some(
                "seald has no record of a PIN change for this device; change the PIN (sealctl pin change) to start tracking its age".into(),
            ),
            AgeStatus::Warn => {
                let (due, last, age) = (self.due_ms?, self.last_change_ms?, self.age_days?);
                Some(format!(
                    "warning: the PIN is {age} days old and must be changed within {} days (sealctl pin change)",
                    days_left(due, last / 86_400_000 + age).max(0)
                ))
            }
            AgeStatus::Overdue => Some(format!(
                "warning: the PIN is {} days old, past the policy's maximum age; change it now (sealctl pin change)",
                self.age_days.unwrap_or_default()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn check(pin: &str) -> Result<(), PolicyViolation> {
        check_new_pin(&Pin::new(pin), None, &PinPolicy::default())
    }

    #[test]
    fn explains_every_shortfall() {
        assert!(check("river-stone-42").is_ok());
        let err = check("abc").unwrap_err();
        assert_eq!(
            err.shortfalls,
            vec![
                Shortfall::TooShort { min: 8 },
                Shortfall::Missing(CharClass::Digit),
                Shortfall::Trivial
            ]
        );
        let text = err.to_string();
        assert!(text.contains("at least 8 characters"), "{text}");
        assert!(text.contains("a digit"), "{text}");
        assert!(!text.contains("abc"), "the PIN is never shown: {text}");
        assert!(check("12345678")
            .unwrap_err()
            .shortfalls
            .contains(&Shortfall::Trivial));
        let same = check_new_pin(
            &Pin::new("river-stone-42"),
            Some(&Pin::new("river-stone-42")),
            &PinPolicy::default(),
        )
        .unwrap_err();
        assert_eq!(same.shortfalls, vec![Shortfall::SameAsOld]);
        let strict = PinPolicy {
            require: vec![CharClass::Upper, CharClass::Symbol],
            ..PinPolicy::default()
        };
        let err = check_new_pin(&Pin::new("riverstone42"), None, &strict).unwrap_err();
        assert_eq!(
            err.shortfalls,
            vec![
                Shortfall::Missing(CharClass::Upper),
                Shortfall::Missing(CharClass::Symbol)
            ]
        );
    }

    #[test]
    fn ages_ok_warn_overdue() {
        let policy = PinPolicy::default();
        let changed = datetime!(2026-01-01 0:00 UTC);
        let at = |days| Some(crate::audit::unix_ms(changed - Duration::days(days)));
        let now = changed;
        assert_eq!(PinAge::judge(at(10), &policy, now).status, AgeStatus::Ok);
        let warn = PinAge::judge(at(80), &policy, now);
        assert_eq!(warn.status, AgeStatus::Warn);
        assert!(
            warn.warning().unwrap().contains("within 10 days"),
            "{:?}",
            warn.warning()
        );
        let overdue = PinAge::judge(at(91), &policy, now);
        assert_eq!(overdue.status, AgeStatus::Overdue);
        assert!(overdue.warning().unwrap().contains("91 days old"));
        assert_eq!(PinAge::judge(None, &policy, now).status, AgeStatus::Unknown);
        let off = PinPolicy {
            max_age_days: 0,
            ..policy
        };
        assert_eq!(PinAge::judge(at(900), &off, now).status, AgeStatus::NoLimit);
    }
}
