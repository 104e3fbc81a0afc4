//! The `[[module]]` section of the config file: one device library (PKCS#11, SKF or SDF) to
//! load.

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
    /// The library's interface: `pkcs11` (default), `skf` (GM/T 0016) or `sdf` (GM/T 0018).
    #[serde(default)]
    pub api: DeviceApi,
    /// For `api = "skf"`: the vendor's ABI and the application seals live in.
    #[serde(default)]
    pub skf: SkfSettings,
    /// For `api = "sdf"`: the vendor's ECC field width and the key indexes a login opens.
    #[serde(default)]
    pub sdf: SdfSettings,
    /// Where the vendor library runs: `process` (seald's helper process, restarted when the
    /// library crashes or hangs), `p11-kit` (a PKCS#11 module behind p11-kit's remoting:
    /// standard mechanisms only) or `none` (inside seald). Default: `process` for SKF and SDF
    /// libraries, `none` for PKCS#11 modules.
    #[serde(default)]
    pub isolation: Option<Isolation>,
    /// With `isolation = "process"`: a call the library has not answered after this many
    /// seconds counts as a hang, and the helper is killed and restarted.
    #[serde(default = "default_call_timeout_secs")]
    pub call_timeout_secs: u64,
}

/// Where a vendor library runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Isolation {
    /// Inside seald: a crash in the library is a crash of seald.
    None,
    /// In seald's helper process (`seald-device-host`), any interface.
    Process,
    /// A PKCS#11 module behind `p11-kit server` (standard mechanisms only: no vendor SM2).
    P11Kit,
}

impl ModuleConfig {
    /// The isolation this module gets (its setting, else the default for its interface).
    pub fn isolation(&self) -> Isolation {
        self.isolation.unwrap_or(match self.api {
            DeviceApi::Pkcs11 => Isolation::None,
            DeviceApi::Skf | DeviceApi::Sdf => Isolation::Process,
        })
    }
}

/// `[module.sdf]`: how to drive an SDF library.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SdfSettings {
    /// `ECCref_MAX_LEN` of the vendor's header: 64 (GmSSL, `ECCref_MAX_BITS` 512) or 32.
    pub ecc_max_len: usize,
    /// The key indexes (1, 2, …) whose private-key access rights a custodian's login gets:
    /// the seal keys (and maker key) on this cipher machine.
    pub keys: Vec<u32>,
}

impl Default for SdfSettings {
    fn default() -> Self {
        Self {
            ecc_max_len: 64,
            keys: vec![1],
        }
    }
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
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
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
    /// Who computes e = SM3(Z‖M) before `SKF_ECCSignData`: seald (`software`, the default) or
    /// the device (`device`: `SKF_DigestInit` with the public key and ID, then `SKF_Digest`).
    pub digest: SkfDigest,
}

/// Where the SM3(Z‖M) an SKF device signs is computed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SkfDigest {
    /// By seald, in software.
    #[default]
    Software,
    /// By the device (`SKF_DigestInit`/`SKF_Digest`); seald checks it against its own.
    Device,
}

impl Default for SkfSettings {
    fn default() -> Self {
        let abi = crate::device::skf::SkfAbi::default();
        Self {
            ulong: abi.ulong,
            bool: abi.bool,
            ecc_field: abi.ecc_field,
            application: "SEALD".into(),
            digest: SkfDigest::Software,
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

fn default_call_timeout_secs() -> u64 {
    30
}
