//! The `[[module]]` section of the config file: one PKCS#11 module to load.

use std::path::PathBuf;

use serde::Deserialize;

use super::{DeviceModel, ProfileSetting};

/// One PKCS#11 module (`[[module]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleConfig {
    /// A short name used in messages and the API.
    pub name: String,
    /// Path of the module's shared library.
    pub path: PathBuf,
    /// SM2 mechanism profile: a built-in name (`sansec`, `tass`, `luna`, `auto`) or a table.
    /// Absent: the module offers no SM2 (P-256 ECDSA still works).
    #[serde(default)]
    pub profile: Option<ProfileSetting>,
    /// What kind of device this is; decides how many sessions a token gets.
    #[serde(default)]
    pub model: DeviceModel,
    /// Sessions per token for a cipher machine (a UKey always gets one).
    #[serde(default = "default_max_sessions")]
    pub max_sessions: usize,
}

fn default_max_sessions() -> usize {
    4
}
