//! The `[[module]]` section of the config file: one device library (PKCS#11 or SKF) to load.

use std::path::PathBuf;

use serde::Deserialize;

use super::{DeviceModel, ProfileSetting};

/// One device library (`[[module]]`).
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
    /// The library's interface: `pkcs11` (default), `skf` (GM/T 0016) or `sdf` (GM/T 0018,
    /// not driven yet).
    #[serde(default)]
    pub api: DeviceApi,
    /// For `api = "skf"`: the vendor's ABI and the application seals live in.
    #[serde(default)]
    pub skf: SkfSettings,
}

/// The interface a device library offers.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum DeviceApi {
    /// PKCS#11 (cryptoki).
    #[default]
    Pkcs11,
    /// GM/T 0016 SKF, what most UKeys ship.
    Skf,
    /// GM/T 0018 SDF, what most cipher machines ship.
    Sdf,
}

/// `[module.skf]`: how to drive an SKF library.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SkfSettings {
    /// Width of the vendor's `ULONG` (4 or 8 bytes).
    pub ulong: usize,
    /// Width of the vendor's `BOOL` (4 or 8 bytes).
    pub bool: usize,
    /// Width of the X, Y, r and s fields of its ECC blobs (64 or 32 bytes).
    pub ecc_field: usize,
    /// The application holding the seal containers.
    pub application: String,
}

impl Default for SkfSettings {
    fn default() -> Self {
        let abi = crate::device::skf::SkfAbi::default();
        Self {
            ulong: abi.ulong,
            bool: abi.bool,
            ecc_field: abi.ecc_field,
            application: "SEALD".into(),
        }
    }
}

impl SkfSettings {
    /// The ABI these settings describe.
    pub fn abi(&self) -> crate::device::skf::SkfAbi {
        crate::device::skf::SkfAbi {
            ulong: self.ulong,
            bool: self.bool,
            ecc_field: self.ecc_field,
        }
    }
}

fn default_max_sessions() -> usize {
    4
}
