//! GM/T 0016 SKF return codes and the byte layouts of the structs hsm-sim writes, for a
//! configurable `ULONG`/`BOOL` width and ECC field width (`[skf]` in the config).
//!
//! Codes and layouts as GmSSL `src/skf/skf.h` declares them (`#pragma pack(1)`).

use crate::config::SkfSettings;

/// Success.
pub const SAR_OK: u32 = 0;
/// SGD_SM3, the algorithm id of SKF_DigestInit for SM3 (GM/T 0006).
pub const SGD_SM3: u64 = 0x0000_0001;
/// Generic failure.
pub const SAR_FAIL: u32 = 0x0A00_0001;
/// Function not supported.
pub const SAR_NOTSUPPORTYETERR: u32 = 0x0A00_0003;
/// Handle unknown or of the wrong kind.
pub const SAR_INVALIDHANDLEERR: u32 = 0x0A00_0005;
/// Bad parameter (NULL pointer, bad flag).
pub const SAR_INVALIDPARAMERR: u32 = 0x0A00_0006;
/// Input data of the wrong length (ECCSignData with other than 32 bytes).
pub const SAR_INDATALENERR: u32 = 0x0A00_0010;
/// Key not found (no encryption key pair; key deleted).
pub const SAR_KEYNOTFOUNTERR: u32 = 0x0A00_001B;
/// Certificate not found.
pub const SAR_CERTNOTFOUNTERR: u32 = 0x0A00_001C;
/// Output buffer too small (the needed size is written).
pub const SAR_BUFFER_TOO_SMALL: u32 = 0x0A00_0020;
/// No event: answered by a SKF_WaitForDevEvent cancelled by SKF_CancelWaitForDevEvent.
pub const SAR_NOT_EVENTERR: u32 = 0x0A00_0022;
/// The device was removed (ejected, or re-inserted since the handle was made).
pub const SAR_DEVICE_REMOVED: u32 = 0x0A00_0023;
/// Wrong PIN.
pub const SAR_PIN_INCORRECT: u32 = 0x0A00_0024;
/// PIN locked.
pub const SAR_PIN_LOCKED: u32 = 0x0A00_0025;
/// PIN invalid.
pub const SAR_PIN_INVALID: u32 = 0x0A00_0026;
/// PIN too short or too long.
pub const SAR_PIN_LEN_RANGE: u32 = 0x0A00_0027;
/// User PIN never set.
pub const SAR_USER_PIN_NOT_INITIALIZED: u32 = 0x0A00_0029;
/// PIN type other than ADMIN_TYPE (0) or USER_TYPE (1).
pub const SAR_USER_TYPE_INVALID: u32 = 0x0A00_002A;
/// Operation needs the user PIN verified.
pub const SAR_USER_NOT_LOGGED_IN: u32 = 0x0A00_002D;
/// No application of that name.
pub const SAR_APPLICATION_NOT_EXISTS: u32 = 0x0A00_002E;
/// No container (or device) of that name.
pub const SAR_FILE_NOT_EXIST: u32 = 0x0A00_0031;

/// `ADMIN_TYPE`: the SO PIN.
pub const ADMIN_TYPE: u32 = 0;
/// `USER_TYPE`: the user PIN.
pub const USER_TYPE: u32 = 1;
/// Container type of an ECC (SM2) container.
pub const CONTAINER_ECC: u32 = 2;
/// SKF_WaitForDevEvent: a device was inserted.
pub const EVENT_INSERTED: u32 = 1;
/// SKF_WaitForDevEvent: a device was removed.
pub const EVENT_REMOVED: u32 = 2;

/// Asymmetric capability: SM2 signature under both numberings seen for `SGD_SM2_1`
/// (0x00020100 in GM/T 0016-style headers, 0x00020200 in GM/T 0006).
pub const ALG_ASYM_CAP: u32 = 0x0002_0100 | 0x0002_0200;
/// `SGD_SM3`: hash capability.
pub const ALG_HASH_CAP: u32 = 0x0000_0001;

/// Widths in effect for one configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Abi {
    /// Bytes of a `ULONG`.
    pub ulong: usize,
    /// Bytes of a `BOOL`.
    pub bool: usize,
    /// Bytes of each X/Y/r/s field.
    pub ecc_field: usize,
}

impl Abi {
    /// The widths of a config's `[skf]` table.
    pub fn of(s: &SkfSettings) -> Abi {
        Abi {
            ulong: s.ulong,
            bool: s.bool,
            ecc_field: s.ecc_field,
        }
    }

    /// A by-value ULONG argument (passed in a 64-bit register) reduced to the configured width.
    pub fn arg(&self, v: u64) -> u64 {
        if self.ulong == 4 {
            v & 0xFFFF_FFFF
        } else {
            v
        }
    }

    /// A by-value BOOL argument reduced to the configured width; true if nonzero.
    pub fn bool_arg(&self, v: u64) -> bool {
        if self.bool == 4 {
            v & 0xFFFF_FFFF != 0
        } else {
            v != 0
        }
    }

    /// Native-endian bytes of a ULONG.
    pub fn ulong_bytes(&self, v: u64) -> Vec<u8> {
        if self.ulong == 4 {
            (v as u32).to_ne_bytes().to_vec()
        } else {
            v.to_ne_bytes().to_vec()
        }
    }

    /// Native-endian bytes of a BOOL.
    pub fn bool_bytes(&self, v: bool) -> Vec<u8> {
        if self.bool == 4 {
            (v as u32).to_ne_bytes().to_vec()
        } else {
            (v as u64).to_ne_bytes().to_vec()
        }
    }

    /// A ULONG read from native-endian bytes (`ulong` of them).
    pub fn ulong_from(&self, b: &[u8]) -> u64 {
        if self.ulong == 4 {
            let mut a = [0u8; 4];
            a.copy_from_slice(&b[..4]);
            u32::from_ne_bytes(a) as u64
        } else {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[..8]);
            u64::from_ne_bytes(a)
        }
    }

    /// sizeof(DEVINFO): 198 bytes before the eight ULONGs, then 64 reserved bytes.
    pub fn devinfo_len(&self) -> usize {
        198 + 8 * self.ulong + 64
    }

    /// sizeof(ECCPUBLICKEYBLOB).
    pub fn pubkey_len(&self) -> usize {
        self.ulong + 2 * self.ecc_field
    }

    /// sizeof(ECCSIGNATUREBLOB).
    pub fn sig_len(&self) -> usize {
        2 * self.ecc_field
    }

    /// A big-endian 32-byte value right-aligned in an `ecc_field`-byte field.
    fn field(&self, out: &mut Vec<u8>, v: &[u8]) {
        out.resize(out.len() + self.ecc_field - v.len(), 0);
        out.extend_from_slice(v);
    }

    /// ECCPUBLICKEYBLOB { ULONG BitLen = 256; BYTE X[f]; BYTE Y[f]; } from 04‖x‖y.
    pub fn pubkey_blob(&self, point: &[u8]) -> Option<Vec<u8>> {
        if point.len() != 65 || point[0] != 4 {
            return None;
        }
        let mut v = self.ulong_bytes(256);
        self.field(&mut v, &point[1..33]);
        self.field(&mut v, &point[33..]);
        Some(v)
    }

    /// 04‖x‖y from an ECCPUBLICKEYBLOB (BitLen 256; X and Y right-aligned, zeros before).
    pub fn point_from_blob(&self, blob: &[u8]) -> Option<Vec<u8>> {
        if blob.len() < self.pubkey_len() || self.ulong_from(&blob[..self.ulong]) != 256 {
            return None;
        }
        let pad = self.ecc_field - 32;
        let x = &blob[self.ulong..self.ulong + self.ecc_field];
        let y = &blob[self.ulong + self.ecc_field..self.ulong + 2 * self.ecc_field];
        if x[..pad].iter().chain(&y[..pad]).any(|b| *b != 0) {
            return None;
        }
        Some([&[4u8][..], &x[pad..], &y[pad..]].concat())
    }

    /// ECCSIGNATUREBLOB { BYTE r[f]; BYTE s[f]; } from r‖s.
    pub fn sig_blob(&self, rs: &[u8; 64]) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.sig_len());
        self.field(&mut v, &rs[..32]);
        self.field(&mut v, &rs[32..]);
        v
    }

    /// DEVINFO (packed) with the given text fields and capacities.
    pub fn devinfo(&self, d: &DevInfo) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.devinfo_len());
        v.extend_from_slice(&[1, 0]); // Version
        v.extend_from_slice(&text::<64>(&d.manufacturer));
        v.extend_from_slice(&text::<64>(&d.issuer));
        v.extend_from_slice(&text::<32>(&d.label));
        v.extend_from_slice(&text::<32>(&d.serial));
        v.extend_from_slice(&[1, 0]); // HWVersion
        v.extend_from_slice(&[1, 0]); // FirmwareVersion
        for x in [
            0, // AlgSymCap: no SM4/SM1
            ALG_ASYM_CAP as u64,
            ALG_HASH_CAP as u64,
            0, // DevAuthAlgId: device authentication not modelled
            d.total_space,
            d.free_space,
            1024, // MaxECCBufferSize
            2048, // MaxBufferSize
        ] {
            v.extend(self.ulong_bytes(x));
        }
        v.extend_from_slice(&[0u8; 64]);
        debug_assert_eq!(v.len(), self.devinfo_len());
        v
    }
}

/// Text fields of DEVINFO.
#[derive(Debug, Clone, Default)]
pub struct DevInfo {
    /// Manufacturer (the profile's).
    pub manufacturer: String,
    /// Issuer.
    pub issuer: String,
    /// Token label.
    pub label: String,
    /// Token serial.
    pub serial: String,
    /// TotalSpace.
    pub total_space: u64,
    /// FreeSpace.
    pub free_space: u64,
}

/// NUL-padded fixed-width text (truncated to leave at least one NUL).
fn text<const N: usize>(s: &str) -> [u8; N] {
    let mut a = [0u8; N];
    let b = s.as_bytes();
    let n = b.len().min(N - 1);
    a[..n].copy_from_slice(&b[..n]);
    a
}

/// A name list: each name NUL-terminated, then one more NUL (an empty list is two NULs).
pub fn name_list(names: &[String]) -> Vec<u8> {
    let mut v = Vec::new();
    for n in names {
        v.extend_from_slice(n.as_bytes());
        v.push(0);
    }
    v.push(0);
    if names.is_empty() {
        v.push(0);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        for (ul, f, dev, pk, sig) in [
            (4, 64, 294, 132, 128),
            (8, 64, 326, 136, 128),
            (4, 32, 294, 68, 64),
            (8, 32, 326, 72, 64),
        ] {
            let a = Abi {
                ulong: ul,
                bool: 4,
                ecc_field: f,
            };
            assert_eq!(a.devinfo(&DevInfo::default()).len(), dev);
            let mut pt = vec![4u8];
            pt.extend((1..=64).collect::<Vec<u8>>());
            let b = a.pubkey_blob(&pt).unwrap();
            assert_eq!(b.len(), pk);
            assert_eq!(a.ulong_from(&b), 256);
            assert_eq!(&b[ul + f - 32..ul + f], &pt[1..33]);
            assert!(b[ul..ul + f - 32].iter().all(|x| *x == 0));
            assert_eq!(&b[ul + 2 * f - 32..], &pt[33..]);
            assert_eq!(a.sig_blob(&[7u8; 64]).len(), sig);
        }
        let a = Abi {
            ulong: 4,
            bool: 4,
            ecc_field: 64,
        };
        assert_eq!(a.arg(0xdead_beef_0000_0001), 1);
        assert!(!a.bool_arg(0x1_0000_0000));
        assert_eq!(name_list(&["a".into(), "bc".into()]), b"a\0bc\0\0");
        assert_eq!(name_list(&[]), b"\0\0");
    }
}
