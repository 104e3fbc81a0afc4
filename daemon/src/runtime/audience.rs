//! Who sees which event: the filter of the event stream, by role and relation, matching what the
//! REST endpoints let each caller read.
//!
//! - Admins and auditors (and the local operator, seald itself) see every event.
//! - Request events (`request-created`, `-decided`, `-signed`, `-failed`): a client sees those
//!   of the requests it made; an approver those of the seals whose policy names it (as
//!   `GET /v1/stamp-requests/{id}` decides).
//! - Seal lifecycle events (`seal-enrolled`, `seal-state`) go to every role: any role may list
//!   the seals and their states (`GET /v1/seals`), and a client or approver needs to know at once
//!   that a seal stopped being usable.
//! - Device and PIN events (`device-inserted`, `device-removed`, `pcsc`, `pin-age`,
//!   `pin-unblocked`) go to custodians: any custodian may log any token in.
//! - `custody-transferred` goes to the custodians it names (previous and new).
//!
//! [`may_see`] is the pure rule. [`Audience`] keeps a subscriber's relations (the seals it
//! approves) and reads them again only when they may have changed, never once per event.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::approval::{ApprovalError, Approvals};
use crate::identity::{Caller, Identity, Role};
use crate::store::model::SealId;

use super::events::Event;

/// How old a subscriber's relations may grow before a request event they would hide makes
/// them be read again (a policy may change outside the API, e.g. through `sealctl`).
pub const RELATIONS_MAX_AGE: Duration = Duration::from_secs(5);

/// A subscriber to the event stream: the caller, and the seals whose policy names it as an
/// approver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    /// Who is watching.
    pub caller: Caller,
    /// Seals it approves (empty unless it holds the approver role).
    pub approves: BTreeSet<SealId>,
}

impl Viewer {
    /// The identity watching, unless it is the local operator or seald itself (who see all).
    fn identity(&self) -> Option<&Identity> {
        self.caller.identity()
    }

    /// Whether the viewer sees every event (admin, auditor, local operator, daemon).
    pub fn sees_everything(&self) -> bool {
        self.identity()
            .is_none_or(|me| me.has_role(Role::Admin) || me.has_role(Role::Auditor))
    }

    /// Whether what it sees depends on which seals it approves.
    fn relations_matter(&self) -> bool {
        !self.sees_everything()
            && self
                .identity()
                .is_some_and(|me| me.has_role(Role::Approver))
    }
}

/// Whether `viewer` may receive `event` (the module doc says who sees what).
pub fn may_see(viewer: &Viewer, event: &Event) -> bool {
    if viewer.sees_everything() {
        return true;
    }
    let Some(me) = viewer.identity() else {
        return true;
    };
    if let Some(parties) = event.request_parties() {
        return (me.has_role(Role::Client) && parties.requester == me.id)
            || (me.has_role(Role::Approver) && viewer.approves.contains(&parties.seal_id));
    }
    match event {
        Event::SealEnrolled { .. } | Event::SealState { .. } => true,
        Event::DeviceInserted { .. }
        | Event::DeviceRemoved { .. }
        | Event::Pcsc { .. }
        | Event::PinAge { .. }
        | Event::PinUnblocked { .. } => me.has_role(Role::Custodian),
        Event::CustodyTransferred { from, to, .. } => {
            me.has_role(Role::Custodian) && (*to == me.name || from.as_deref() == Some(&me.name))
        }
        // Request events were decided above.
        Event::RequestCreated { .. }
        | Event::RequestDecided { .. }
        | Event::RequestSigned { .. }
        | Event::RequestFailed { .. } => false,
    }
}

/// A subscriber's [`Viewer`], with its relations read from the store when it subscribed and
/// again only when they may have changed: after a `seal-enrolled` event (a new seal and policy),
/// or when a request event it would not see comes and they are older than
/// [`RELATIONS_MAX_AGE`].
#[derive(Debug)]
pub struct Audience {
    viewer: Viewer,
    approvals: Approvals,
    loaded: Instant,
}

impl Audience {
    /// Reads the relations of `caller` (blocking: one store read).
    pub fn load(approvals: Approvals, caller: Caller) -> Result<Self, ApprovalError> {
        let mut audience = Self {
            viewer: Viewer {
                caller,
                approves: BTreeSet::new(),
            },
            approvals,
            loaded: Instant::now(),
        };
        audience.reload()?;
        Ok(audience)
    }

    /// The viewer as last read.
    pub fn viewer(&self) -> &Viewer {
        &self.viewer
    }

    /// Whether the relations should be read again ([`Audience::reload`]) before `event` is
    /// judged.
    pub fn stale_for(&self, event: &Event) -> bool {
        if !self.viewer.relations_matter() {
            return false;
        }
        match event {
            Event::SealEnrolled { .. } => true,
            _ => {
                event.request_parties().is_some()
                    && self.loaded.elapsed() >= RELATIONS_MAX_AGE
                    && !may_see(&self.viewer, event)
            }
        }
    }

    /// Reads the seals the viewer approves again (blocking: one store read).
    pub fn reload(&mut self) -> Result<(), ApprovalError> {
        self.viewer.approves = match self.viewer.identity() {
            Some(me) if self.viewer.relations_matter() => {
                self.approvals.seals_approved_by(me.id)?
            }
            _ => BTreeSet::new(),
        };
        self.loaded = Instant::now();
        Ok(())
    }

    /// Whether the subscriber may receive `event`.
    pub fn admits(&self, event: &Event) -> bool {
        may_see(&self.viewer, event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::approval::RequestState;
    use crate::device::pcsc::DeviceEvent;
    use crate::runtime::events::RequestParties;
    use crate::seal::SealState;

    const CLIENT: i64 = 1;
    const OTHER_CLIENT: i64 = 2;
    const SEAL: SealId = 10;
    const OTHER_SEAL: SealId = 20;

    fn viewer(id: i64, name: &str, roles: &[Role], approves: &[SealId]) -> Viewer {
        Viewer {
            caller: Caller::User(Identity {
                id,
                name: name.into(),
                roles: roles.to_vec(),
                disabled: false,
                created_at: 0,
            }),
            approves: approves.iter().copied().collect(),
        }
    }

    fn request_events(requester: i64, seal_id: SealId) -> Vec<Event> {
        let parties = RequestParties { requester, seal_id };
        vec![
            Event::RequestCreated {
                request_id: 5,
                seal_id,
                parties,
            },
            Event::RequestDecided {
                request_id: 5,
                state: RequestState::Approved,
                parties,
            },
            Event::RequestSigned {
                request_id: 5,
                parties,
            },
            Event::RequestFailed {
                request_id: 5,
                reason: "removed".into(),
                parties,
            },
        ]
    }

    fn device_events() -> Vec<Event> {
        let serial = || "TOKEN-1".to_owned();
        vec![
            Event::DeviceInserted { serial: serial() },
            Event::DeviceRemoved { serial: serial() },
            Event::Pcsc {
                change: DeviceEvent::PcscUnavailable {
                    reason: "down".into(),
                },
            },
            Event::PinAge {
                serial: serial(),
                warning: "old".into(),
            },
            Event::PinUnblocked { serial: serial() },
        ]
    }

    fn seal_events() -> Vec<Event> {
        vec![
            Event::SealEnrolled {
                seal_id: SEAL,
                es_id: "1".into(),
                name: "章".into(),
            },
            Event::SealState {
                seal_id: SEAL,
                state: SealState::Suspended,
            },
        ]
    }

    fn custody(from: Option<&str>, to: &str) -> Event {
        Event::CustodyTransferred {
            seal_id: SEAL,
            from: from.map(str::to_owned),
            to: to.into(),
            pin_change_required: true,
        }
    }

    fn sees_all(viewer: &Viewer, events: &[Event]) -> bool {
        events.iter().all(|e| may_see(viewer, e))
    }

    fn sees_none(viewer: &Viewer, events: &[Event]) -> bool {
        !events.iter().any(|e| may_see(viewer, e))
    }

    #[test]
    fn a_client_sees_its_own_requests_only() {
        let client = viewer(CLIENT, "app", &[Role::Client], &[]);
        assert!(sees_all(&client, &request_events(CLIENT, SEAL)));
        assert!(sees_none(&client, &request_events(OTHER_CLIENT, SEAL)));
        assert!(sees_none(&client, &device_events()));
        assert!(!may_see(&client, &custody(None, "carol")));
        assert!(sees_all(&client, &seal_events()));
    }

    #[test]
    fn an_approver_sees_the_requests_of_the_seals_it_approves() {
        let alice = viewer(3, "alice", &[Role::Approver], &[SEAL]);
        assert!(sees_all(&alice, &request_events(CLIENT, SEAL)));
        assert!(sees_none(&alice, &request_events(CLIENT, OTHER_SEAL)));
        assert!(sees_none(&alice, &device_events()));
        assert!(sees_all(&alice, &seal_events()));
        // An approver whose id is a requester's sees nothing by that alone.
        let same_id = viewer(CLIENT, "x", &[Role::Approver], &[]);
        assert!(sees_none(&same_id, &request_events(CLIENT, SEAL)));
    }

    #[test]
    fn a_client_and_approver_sees_both_relations() {
        let dave = viewer(
            OTHER_CLIENT,
            "dave",
            &[Role::Approver, Role::Client],
            &[OTHER_SEAL],
        );
        assert!(sees_all(&dave, &request_events(OTHER_CLIENT, SEAL)));
        assert!(sees_all(&dave, &request_events(CLIENT, OTHER_SEAL)));
        assert!(sees_none(&dave, &request_events(CLIENT, SEAL)));
    }

    #[test]
    fn custodians_see_devices_pins_and_their_own_custody() {
        let carol = viewer(4, "carol", &[Role::Custodian], &[]);
        assert!(sees_all(&carol, &device_events()));
        assert!(sees_all(&carol, &seal_events()));
        assert!(sees_none(&carol, &request_events(CLIENT, SEAL)));
        assert!(may_see(&carol, &custody(None, "carol")));
        assert!(may_see(&carol, &custody(Some("carol"), "frank")));
        assert!(!may_see(&carol, &custody(Some("frank"), "grace")));
    }

    #[test]
    fn auditors_admins_and_the_local_operator_see_everything() {
        let mut all = request_events(CLIENT, SEAL);
        all.extend(device_events());
        all.extend(seal_events());
        all.push(custody(Some("frank"), "grace"));
        for who in [
            viewer(5, "audrey", &[Role::Auditor], &[]),
            viewer(6, "erin", &[Role::Admin], &[]),
            Viewer {
                caller: Caller::Local("root".into()),
                approves: BTreeSet::new(),
            },
        ] {
            assert!(sees_all(&who, &all), "{who:?}");
        }
    }

    #[test]
    fn only_approvers_relations_are_ever_read_again() {
        let client = viewer(CLIENT, "app", &[Role::Client], &[]);
        let auditor = viewer(5, "audrey", &[Role::Auditor, Role::Approver], &[]);
        let alice = viewer(3, "alice", &[Role::Approver], &[SEAL]);
        assert!(!client.relations_matter());
        assert!(!auditor.relations_matter());
        assert!(alice.relations_matter());
    }
}
