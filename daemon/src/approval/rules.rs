//! Approval rules as pure functions: the request state machine, office hours, quota days, PIN.

use time::{OffsetDateTime, UtcOffset};

use crate::clock::Timestamp;
use crate::store::model::{OfficeHours, PinMode, Policy, RequestState};

use super::ApprovalError;

/// Whether a request may go from `from` to `to`:
/// pending → approved | rejected | expired | failed (its seal stopped); approved → signed |
/// failed | expired; the rest final.
pub fn transition_allowed(from: RequestState, to: RequestState) -> bool {
    use RequestState::*;
    matches!(
        (from, to),
        (Pending, Approved | Rejected | Expired | Failed) | (Approved, Signed | Failed | Expired)
    )
}

/// Refuses a transition the state machine does not allow.
pub fn check_transition(
    id: i64,
    from: RequestState,
    to: RequestState,
) -> Result<(), ApprovalError> {
    if transition_allowed(from, to) {
        Ok(())
    } else {
        Err(ApprovalError::IllegalTransition { id, from, to })
    }
}

fn offset(minutes: i32) -> Result<UtcOffset, ApprovalError> {
    UtcOffset::from_whole_seconds(minutes * 60)
        .map_err(|_| ApprovalError::BadPolicy(format!("UTC offset {minutes} min is out of range")))
}

/// Refuses `now` outside the office hours (judged in their explicit UTC offset).
pub fn check_office_hours(hours: &OfficeHours, now: OffsetDateTime) -> Result<(), ApprovalError> {
    let local = now.to_offset(offset(hours.utc_offset_minutes)?);
    let weekday = local.weekday().number_from_monday();
    let minute = u16::from(local.hour()) * 60 + u16::from(local.minute());
    if hours.weekdays.contains(&weekday)
        && minute >= hours.start_minute
        && minute < hours.end_minute
    {
        Ok(())
    } else {
        Err(ApprovalError::OutsideOfficeHours {
            local_time: format!(
                "{} {:02}:{:02} (UTC{})",
                local.weekday(),
                local.hour(),
                local.minute(),
                local.offset()
            ),
            hours: format!(
                "days {:?} {:02}:{:02}-{:02}:{:02}",
                hours.weekdays,
                hours.start_minute / 60,
                hours.start_minute % 60,
                hours.end_minute / 60,
                hours.end_minute % 60
            ),
        })
    }
}

/// Start of the local day (in the given UTC offset) that contains `now`.
pub fn start_of_local_day(
    now: OffsetDateTime,
    utc_offset_minutes: i32,
) -> Result<Timestamp, ApprovalError> {
    let local = now.to_offset(offset(utc_offset_minutes)?);
    Ok(local.replace_time(time::Time::MIDNIGHT).unix_timestamp())
}

/// Whether the custodian must enter the PIN for a stamp at `now`, given when the seal's token
/// was last logged in.
pub fn pin_needed(mode: &PinMode, last_login: Option<Timestamp>, now: Timestamp) -> bool {
    match (mode, last_login) {
        (PinMode::EachStamp, _) | (PinMode::Window { .. }, None) => true,
        (PinMode::Window { minutes }, Some(at)) => now - at >= i64::from(*minutes) * 60,
    }
}

/// Checks a policy's shape (identities are checked against the store separately).
pub fn check_policy_shape(p: &Policy) -> Result<(), ApprovalError> {
    let bad = |m: String| Err(ApprovalError::BadPolicy(m));
    let mut approvers = p.approvers.clone();
    approvers.sort_unstable();
    approvers.dedup();
    if approvers.len() != p.approvers.len() {
        return bad("an approver is listed twice".into());
    }
    if p.required_approvals == 0 {
        return bad("at least one approval must be required".into());
    }
    if p.required_approvals as usize > p.approvers.len() {
        return bad(format!(
            "{} approvals required but only {} approvers listed",
            p.required_approvals,
            p.approvers.len()
        ));
    }
    if p.allowed_clients.is_empty() {
        return bad("no client app may ask for this seal".into());
    }
    if p.request_ttl_secs <= 0 {
        return bad("requests must stay open for a positive time".into());
    }
    offset(p.quota_utc_offset_minutes)?;
    if let Some(h) = &p.office_hours {
        offset(h.utc_offset_minutes)?;
        if h.weekdays.is_empty() || h.weekdays.iter().any(|d| !(1..=7).contains(d)) {
            return bad("office-hour weekdays must be 1 (Monday) to 7 (Sunday)".into());
        }
        if h.start_minute >= h.end_minute || h.end_minute > 24 * 60 {
            return bad("office hours must start before they end, within one day".into());
        }
    }
    if let PinMode::Window { minutes: 0 } = p.pin_mode {
        return bad("a PIN window must last at least one minute".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn beijing_office() -> OfficeHours {
        OfficeHours {
            utc_offset_minutes: 480,
            weekdays: vec![1, 2, 3, 4, 5],
            start_minute: 9 * 60,
            end_minute: 18 * 60,
        }
    }

    #[test]
    fn office_hours_use_their_own_offset() {
        let h = beijing_office();
        // Monday 01:00 UTC = 09:00 Beijing: open.
        check_office_hours(&h, datetime!(2026-01-05 01:00 UTC)).unwrap();
        // Monday 00:59 UTC = 08:59 Beijing: closed.
        assert!(check_office_hours(&h, datetime!(2026-01-05 00:59 UTC)).is_err());
        // Monday 10:00 UTC = 18:00 Beijing: closed (end is exclusive).
        assert!(check_office_hours(&h, datetime!(2026-01-05 10:00 UTC)).is_err());
        // Saturday 02:00 UTC = Saturday 10:00 Beijing: closed by the day.
        assert!(check_office_hours(&h, datetime!(2026-01-10 02:00 UTC)).is_err());
        // Sunday 17:00 UTC = Monday 01:00 Beijing: closed by the hour, not the day.
        assert!(check_office_hours(&h, datetime!(2026-01-04 17:00 UTC)).is_err());
        // Monday 01:30 UTC = Monday 09:30 Beijing: open.
        check_office_hours(&h, datetime!(2026-01-05 01:30 UTC)).unwrap();
    }

    #[test]
    fn local_day_starts_at_local_midnight() {
        // 2026-01-05 17:00 UTC is 2026-01-06 01:00 in Beijing: the day began 16:00 UTC.
        let start = start_of_local_day(datetime!(2026-01-05 17:00 UTC), 480).unwrap();
        assert_eq!(start, datetime!(2026-01-05 16:00 UTC).unix_timestamp());
    }

    #[test]
    fn pin_window() {
        assert!(pin_needed(&PinMode::EachStamp, Some(100), 100));
        let w = PinMode::Window { minutes: 10 };
        assert!(pin_needed(&w, None, 100));
        assert!(!pin_needed(&w, Some(100), 100 + 599));
        assert!(pin_needed(&w, Some(100), 100 + 600));
    }

    #[test]
    fn transition_table() {
        use RequestState::*;
        let allowed = [
            (Pending, Approved),
            (Pending, Rejected),
            (Pending, Expired),
            (Pending, Failed),
            (Approved, Signed),
            (Approved, Failed),
            (Approved, Expired),
        ];
        for &from in RequestState::ALL {
            for &to in RequestState::ALL {
                assert_eq!(
                    transition_allowed(from, to),
                    allowed.contains(&(from, to)),
                    "{from} -> {to}"
                );
                assert_eq!(
                    check_transition(1, from, to).is_ok(),
                    allowed.contains(&(from, to))
                );
            }
        }
    }
}
