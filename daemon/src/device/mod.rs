//! Hardware: PKCS#11 modules and tokens, vendor mechanism profiles, PC/SC watcher.

use serde::Deserialize;

/// What kind of device a module drives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceModel {
    /// A USB key: one operation at a time, one session.
    #[default]
    Ukey,
    /// A server cipher machine: a pool of sessions.
    CipherMachine,
}

/// Placeholder until the profile module lands.
#[derive(Debug, Clone, Deserialize)]
pub struct ProfileSetting;
