//! A policy as an administrator writes it: identities by name, not by row id. Resolved and
//! checked (names exist, roles held, shape valid) before anything is enrolled.

use serde::{Deserialize, Serialize};

use crate::identity::Role;
use crate::store::model::{IdentityId, OfficeHours, PinMode, Policy, SealId};
use crate::store::Tx;

use super::{rules, ApprovalError, Approvals};

/// The UTC offset of the quota day when none is given: Beijing time (+08:00).
pub const DEFAULT_QUOTA_UTC_OFFSET_MINUTES: i32 = 480;

fn default_quota_offset() -> i32 {
    DEFAULT_QUOTA_UTC_OFFSET_MINUTES
}

/// A seal's approval policy with identities named (the `policy` of `POST /v1/seals`, and the
/// TOML file of `sealctl seal enroll --policy`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NamedPolicy {
    /// Client apps (identity names, role client) that may ask for stamps.
    pub clients: Vec<String>,
    /// Approvers (identity names, role approver).
    pub approvers: Vec<String>,
    /// Approvals needed (N of M = `approvers.len()`).
    pub required_approvals: u32,
    /// Documents that may be stamped per local day.
    #[serde(default)]
    pub daily_quota: Option<u32>,
    /// The UTC offset of the quota day, in minutes (default 480, Beijing time).
    #[serde(default = "default_quota_offset")]
    pub quota_utc_offset_minutes: i32,
    /// When requests may be made and signed.
    #[serde(default)]
    pub office_hours: Option<OfficeHours>,
    /// When the PIN is asked for: `{mode = "each-stamp"}` or `{mode = "window", minutes = N}`.
    pub pin_mode: PinMode,
    /// How long a request stays open before it expires, in seconds.
    pub request_ttl_secs: i64,
    /// RFC 3161 timestamps for this seal: `off`, `best-effort` or `required`; absent: the
    /// daemon's `[tsa] policy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<crate::tsa::TsaPolicy>,
}

fn resolve_names(
    tx: &mut dyn Tx,
    names: &[String],
    role: Role,
) -> Result<Vec<IdentityId>, ApprovalError> {
    names
        .iter()
        .map(|name| match tx.identity_by_name(name.trim())? {
            Some(i) if i.has_role(role) => Ok(i.id),
            Some(i) => Err(ApprovalError::BadPolicy(format!(
                "{} does not have the {role} role; name identities that do, or add the role",
                i.name
            ))),
            None => Err(ApprovalError::BadPolicy(format!(
                "no identity named {name:?} (listed as {role}); add it first (sealctl user add)"
            ))),
        })
        .collect()
}

impl Approvals {
    /// The policy `named` for seal `seal_id`, with every name resolved to an identity holding
    /// the role, and its shape checked. Changes nothing.
    pub fn resolve_named(
        &self,
        named: &NamedPolicy,
        seal_id: SealId,
    ) -> Result<Policy, ApprovalError> {
        let (allowed_clients, approvers) = self.store.read(|tx| {
            Ok::<_, ApprovalError>((
                resolve_names(tx, &named.clients, Role::Client)?,
                resolve_names(tx, &named.approvers, Role::Approver)?,
            ))
        })?;
        let policy = Policy {
            seal_id,
            allowed_clients,
            approvers,
            required_approvals: named.required_approvals,
            daily_quota: named.daily_quota,
            quota_utc_offset_minutes: named.quota_utc_offset_minutes,
            office_hours: named.office_hours.clone(),
            pin_mode: named.pin_mode.clone(),
            request_ttl_secs: named.request_ttl_secs,
            timestamp: named.timestamp,
        };
        rules::check_policy_shape(&policy)?;
        Ok(policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_file_reads_with_defaults() {
        let p: NamedPolicy = toml::from_str(
            "clients = [\"app\"]\napprovers = [\"a\", \"b\"]\nrequired_approvals = 2\n\
             pin_mode = { mode = \"window\", minutes = 60 }\nrequest_ttl_secs = 3600\n",
        )
        .unwrap();
        assert_eq!(p.quota_utc_offset_minutes, 480);
        assert_eq!(p.pin_mode, PinMode::Window { minutes: 60 });
        assert!(p.daily_quota.is_none() && p.office_hours.is_none());
        assert_eq!(p.timestamp, None, "absent: the daemon's [tsa] policy");
        let p: NamedPolicy = toml::from_str(
            "clients = []\napprovers = []\nrequired_approvals = 0\n\
             pin_mode = { mode = \"each-stamp\" }\nrequest_ttl_secs = 60\ntimestamp = \"required\"\n",
        )
        .unwrap();
        assert_eq!(p.timestamp, Some(crate::tsa::TsaPolicy::Required));
        let err = toml::from_str::<NamedPolicy>("clients = []\napprovers = []\nbogus = 1\n");
        assert!(err.is_err());
    }
}
