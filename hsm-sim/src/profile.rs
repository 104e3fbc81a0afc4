//! Vendor mechanism profiles: OASIS defines no SM2/SM3 codes, so each vendor picks its own.

use cryptoki_sys::{CK_KEY_TYPE, CK_MECHANISM_TYPE};

/// How C_Sign returns an SM2 signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigEncoding {
    /// 64 bytes r‖s, each 32 bytes big-endian.
    Raw,
    /// DER SEQUENCE { INTEGER r, INTEGER s } (GM/T 0009).
    Der,
}

/// What a mechanism does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MechKind {
    /// SM2 key-pair generation.
    KeyGen,
    /// SM2 signature over a caller-computed 32-byte e.
    SignRaw,
    /// SM3 of Z‖M, then SM2; Z from the key and the user ID (default 1234567812345678).
    SignSm3,
    /// SM3 digest.
    Digest,
}

/// Codes of one vendor family.
#[derive(Debug, Clone)]
pub struct Profile {
    /// Short name used in config.
    pub name: &'static str,
    /// Manufacturer shown in token info.
    pub manufacturer: &'static str,
    /// CKA_KEY_TYPE of SM2 keys.
    pub key_type: CK_KEY_TYPE,
    /// Mechanisms offered, with their meaning.
    pub mechs: &'static [(CK_MECHANISM_TYPE, MechKind)],
    /// Encoding when the config does not say.
    pub default_encoding: SigEncoding,
}

const SANSEC: &[(CK_MECHANISM_TYPE, MechKind)] = &[
    (0x8000_8001, MechKind::KeyGen),
    (0x8000_8104, MechKind::SignRaw),
    (0x8000_8100, MechKind::SignSm3),
    (0x8000_8102, MechKind::SignSm3),
    (0x8000_9001, MechKind::Digest),
];

const TASS: &[(CK_MECHANISM_TYPE, MechKind)] = &[
    (0x8000_8001, MechKind::KeyGen),
    (0x8000_8000, MechKind::SignRaw),
    (0x8000_8100, MechKind::SignSm3),
    (0x8000_0005, MechKind::Digest),
];

impl Profile {
    /// Sansec-style codes (xipki vendor.conf; Sansec SDK headers).
    pub fn sansec() -> Profile {
        Profile {
            name: "sansec",
            manufacturer: "hsm-sim (Sansec-style)",
            key_type: 0x8000_0004,
            mechs: SANSEC,
            default_encoding: SigEncoding::Raw,
        }
    }

    /// TASS-style codes (xipki vendor.conf).
    pub fn tass() -> Profile {
        Profile {
            name: "tass",
            manufacturer: "hsm-sim (TASS-style)",
            key_type: 0x8000_0004,
            mechs: TASS,
            default_encoding: SigEncoding::Der,
        }
    }

    /// Profile by config name.
    pub fn by_name(name: &str) -> Option<Profile> {
        match name.to_ascii_lowercase().as_str() {
            "sansec" => Some(Self::sansec()),
            "tass" => Some(Self::tass()),
            _ => None,
        }
    }

    /// Meaning of a mechanism code, if this profile offers it.
    pub fn kind(&self, mech: CK_MECHANISM_TYPE) -> Option<MechKind> {
        self.mechs.iter().find(|(m, _)| *m == mech).map(|(_, k)| *k)
    }
}
