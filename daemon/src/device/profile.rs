//! SM2 mechanism profiles: OASIS PKCS#11 defines no SM2, so each vendor picks its own codes.
//!
//! Codes from xipki's `vendor.conf` and vendor headers; see `firmware-notes/mechanisms.md`.

use serde::{Deserialize, Serialize};

/// How a device returns an SM2 signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureEncoding {
    /// 64 bytes `r‖s`.
    #[default]
    Raw,
    /// DER `SEQUENCE { r, s }`.
    Der,
    /// Unknown (an `auto` profile): accept either.
    Any,
}

/// The vendor-defined codes a module uses for SM2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MechanismProfile {
    /// Name shown in messages (`sansec`, `tass`, `luna`, or the config's own).
    #[serde(default = "custom_name")]
    pub name: String,
    /// CKK value of an SM2 key.
    pub key_type: u64,
    /// SM2 key-pair generation mechanism.
    pub keygen: u64,
    /// Raw SM2 signature over a 32-byte e.
    pub sign_raw: u64,
    /// SM3-with-SM2 over a message (the device computes Z and e), if offered.
    #[serde(default)]
    pub sign_sm3_sm2: Option<u64>,
    /// SM3 digest, if offered.
    #[serde(default)]
    pub digest_sm3: Option<u64>,
    /// How the device returns signatures.
    #[serde(default)]
    pub encoding: SignatureEncoding,
}

fn custom_name() -> String {
    "custom".into()
}

/// A profile as written in config: a built-in name, `auto`, or a table of codes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ProfileSetting {
    /// `sansec`, `tass`, `luna` or `auto`.
    Named(String),
    /// A profile written out in full.
    Custom(MechanismProfile),
}

/// The built-in profile families.
pub fn builtin(name: &str) -> Option<MechanismProfile> {
    let (key_type, keygen, sign_raw, sign_sm3_sm2, digest_sm3) = match name {
        "sansec" => (
            0x8000_0004,
            0x8000_8001,
            0x8000_8104,
            0x8000_8100,
            0x8000_9001,
        ),
        "tass" => (
            0x8000_0004,
            0x8000_8001,
            0x8000_8000,
            0x8000_8100,
            0x8000_0005,
        ),
        "luna" => (
            0x8000_0016,
            0x8000_0B20,
            0x8000_0B21,
            0x8000_0B22,
            0x8000_0B01,
        ),
        _ => return None,
    };
    Some(MechanismProfile {
        name: name.to_owned(),
        key_type,
        keygen,
        sign_raw,
        sign_sm3_sm2: Some(sign_sm3_sm2),
        digest_sm3: Some(digest_sm3),
        encoding: SignatureEncoding::Any,
    })
}

/// Names of the built-in profiles, in probing order.
pub const BUILTIN_NAMES: [&str; 3] = ["sansec", "tass", "luna"];

/// Picks the built-in profile whose keygen and raw-sign codes a module supports.
pub fn probe(supports: &dyn Fn(u64) -> bool) -> Option<MechanismProfile> {
    BUILTIN_NAMES
        .iter()
        .filter_map(|name| builtin(name))
        .find(|p| supports(p.keygen) && supports(p.sign_raw))
}

impl ProfileSetting {
    /// Resolves a setting; `auto` needs a way to ask a token which mechanisms it supports
    /// (None when no token is present yet).
    pub fn resolve(
        &self,
        supports: Option<&dyn Fn(u64) -> bool>,
    ) -> Result<Option<MechanismProfile>, String> {
        match self {
            ProfileSetting::Custom(profile) => Ok(Some(profile.clone())),
            ProfileSetting::Named(name) if name == "auto" => Ok(supports.and_then(probe)),
            ProfileSetting::Named(name) => builtin(name).map(Some).ok_or_else(|| {
                format!(
                    "unknown profile `{name}`; expected one of {}, `auto` or a table of codes",
                    BUILTIN_NAMES.join(", ")
                )
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_tells_vendor_families_apart() {
        let tass = [0x8000_8001, 0x8000_8000, 0x8000_0005, 0x1041];
        assert_eq!(probe(&|m| tass.contains(&m)).unwrap().name, "tass");
        let sansec = [0x8000_8001, 0x8000_8104, 0x8000_9001];
        assert_eq!(probe(&|m| sansec.contains(&m)).unwrap().name, "sansec");
        let softhsm = [0x1041, 0x1040];
        assert!(probe(&|m| softhsm.contains(&m)).is_none(), "no SM2");
    }

    #[test]
    fn unknown_name_is_explained() {
        let err = ProfileSetting::Named("acme".into())
            .resolve(None)
            .unwrap_err();
        assert!(err.contains("acme") && err.contains("sansec"), "{err}");
    }

    #[test]
    fn custom_profile_reads_from_toml() {
        #[derive(Deserialize)]
        struct Wrap {
            profile: ProfileSetting,
        }
        let w: Wrap = toml::from_str(
            "[profile]\nkey_type = 0x80000004\nkeygen = 0x80008001\nsign_raw = 0x80008000\nencoding = \"der\"\n",
        )
        .unwrap();
        let p = w.profile.resolve(None).unwrap().unwrap();
        assert_eq!(
            (p.sign_raw, p.encoding),
            (0x8000_8000, SignatureEncoding::Der)
        );
    }
}
