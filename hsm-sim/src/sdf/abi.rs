//! GM/T 0018 SDF return codes and the byte layouts of the structs hsm-sim writes, for a
//! configurable `ECCref_MAX_LEN` (`[sdf] ecc_max_len`).
//!
//! Codes and layouts as GmSSL `src/sdf/sdf.h` declares them (GM/T 0018-2012, `#pragma pack(1)`;
//! every member is `unsigned int` or `unsigned char[]` at a 4-byte-aligned offset, so the
//! packed and natural layouts are the same).

use crate::config::SdfSettings;

/// Success.
pub const SDR_OK: u32 = 0;
/// `SDR_BASE`.
pub const SDR_BASE: u32 = 0x0100_0000;
/// Unknown error (a store error, a panic caught at the boundary).
pub const SDR_UNKNOWERR: u32 = SDR_BASE + 0x01;
/// Function not supported.
pub const SDR_NOTSUPPORT: u32 = SDR_BASE + 0x02;
/// Communication with the device failed: the token was ejected (or replugged) since the
/// device handle was opened.
pub const SDR_COMMFAIL: u32 = SDR_BASE + 0x03;
/// SDF_OpenDevice: no token to be the device, or it is ejected.
pub const SDR_OPENDEVICE: u32 = SDR_BASE + 0x05;
/// No key at that index.
pub const SDR_KEYNOTEXIST: u32 = SDR_BASE + 0x08;
/// The signature did not verify.
pub const SDR_VERIFYERR: u32 = SDR_BASE + 0x0E;
/// Private key access right: wrong password, or the right is not held by this session.
pub const SDR_PRKRERR: u32 = SDR_BASE + 0x18;
/// Bad input argument: NULL input pointer, unknown or closed handle, data not 32 bytes.
pub const SDR_INARGERR: u32 = SDR_BASE + 0x1D;
/// Bad output argument: NULL output pointer.
pub const SDR_OUTARGERR: u32 = SDR_BASE + 0x1E;
/// hsm-sim vendor code (GM/T 0018-2012 and GmSSL's header have none): the user PIN is
/// locked. Answered by the wrong password that uses the last try and by every access-right
/// request while locked, even with the right password. `SDR_BASE + 0x10000 + 0x18`, in the
/// vendor range above the standard codes.
pub const SDR_PIN_LOCKED: u32 = SDR_BASE + 0x0001_0018;

/// `SGD_SM2` (0x00020100) | `SGD_SM2_1` (0x00020200) as GmSSL's `sgd.h` numbers them.
pub const ALG_ASYM_CAP: u32 = 0x0002_0100 | 0x0002_0200;
/// `SGD_SM3`.
pub const ALG_HASH_CAP: u32 = 0x0000_0001;

/// sizeof(DEVICEINFO).
pub const DEVICEINFO_LEN: usize = 100;
/// Offset of DeviceName in DEVICEINFO.
pub const DEVICE_NAME_AT: usize = 40;
/// Offset of DeviceSerial in DEVICEINFO.
pub const DEVICE_SERIAL_AT: usize = 56;

/// Widths in effect for one configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Abi {
    /// `ECCref_MAX_LEN`: bytes of each x/y/r/s field.
    pub ecc_len: usize,
}

impl Abi {
    /// The widths of a config's `[sdf]` table.
    pub fn of(s: &SdfSettings) -> Abi {
        Abi {
            ecc_len: s.ecc_max_len,
        }
    }

    /// sizeof(ECCrefPublicKey).
    pub fn pubkey_len(&self) -> usize {
        4 + 2 * self.ecc_len
    }

    /// sizeof(ECCSignature).
    pub fn sig_len(&self) -> usize {
        2 * self.ecc_len
    }

    /// A big-endian 32-byte value right-aligned in an `ecc_len`-byte field.
    fn field(&self, out: &mut Vec<u8>, v: &[u8]) {
        out.resize(out.len() + self.ecc_len - v.len(), 0);
        out.extend_from_slice(v);
    }

    /// ECCrefPublicKey { unsigned int bits = 256; x[L]; y[L]; } from 04‖x‖y.
    pub fn pubkey(&self, point: &[u8]) -> Option<Vec<u8>> {
        if point.len() != 65 || point[0] != 4 {
            return None;
        }
        let mut v = 256u32.to_ne_bytes().to_vec();
        self.field(&mut v, &point[1..33]);
        self.field(&mut v, &point[33..]);
        Some(v)
    }

    /// ECCSignature { r[L]; s[L]; } from r‖s.
    pub fn sig(&self, rs: &[u8; 64]) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.sig_len());
        self.field(&mut v, &rs[..32]);
        self.field(&mut v, &rs[32..]);
        v
    }

    /// r‖s from ECCSignature bytes (`sig_len` of them); None if r or s has nonzero bytes
    /// left of its last 32 (not an SM2 value).
    pub fn sig_from(&self, b: &[u8]) -> Option<[u8; 64]> {
        let l = self.ecc_len;
        if b.len() != 2 * l || b[..l - 32].iter().chain(&b[l..2 * l - 32]).any(|x| *x != 0) {
            return None;
        }
        let mut rs = [0u8; 64];
        rs[..32].copy_from_slice(&b[l - 32..l]);
        rs[32..].copy_from_slice(&b[2 * l - 32..]);
        Some(rs)
    }
}

/// Text fields of DEVICEINFO.
#[derive(Debug, Clone, Default)]
pub struct DevInfo {
    /// IssuerName.
    pub issuer: String,
    /// DeviceName: the token label.
    pub name: String,
    /// DeviceSerial: the token serial.
    pub serial: String,
}

/// DEVICEINFO { IssuerName[40]; DeviceName[16]; DeviceSerial[16]; DeviceVersion;
/// StandardVersion; AsymAlgAbility[2]; SymAlgAbility; HashAlgAbility; BufferSize; }.
pub fn deviceinfo(d: &DevInfo) -> [u8; DEVICEINFO_LEN] {
    let mut v = Vec::with_capacity(DEVICEINFO_LEN);
    v.extend_from_slice(&text::<40>(&d.issuer));
    v.extend_from_slice(&text::<16>(&d.name));
    v.extend_from_slice(&text::<16>(&d.serial));
    for x in [
        1,            // DeviceVersion
        1,            // StandardVersion: GM/T 0018-2012
        ALG_ASYM_CAP, // AsymAlgAbility[0]: algorithms
        256,          // AsymAlgAbility[1]: key lengths
        0,            // SymAlgAbility: no SM1/SM4
        ALG_HASH_CAP, // HashAlgAbility
        4096,         // BufferSize
    ] {
        v.extend_from_slice(&x.to_ne_bytes());
    }
    let mut a = [0u8; DEVICEINFO_LEN];
    a.copy_from_slice(&v);
    a
}

/// NUL-padded fixed-width bytes, truncated to N (a 16-character serial fills DeviceSerial with
/// no NUL, as GM/T 0018's 8+3+5-character serials do).
fn text<const N: usize>(s: &str) -> [u8; N] {
    let mut a = [0u8; N];
    let b = s.as_bytes();
    let n = b.len().min(N);
    a[..n].copy_from_slice(&b[..n]);
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        for (l, pk, sig) in [(64, 132, 128), (32, 68, 64)] {
            let a = Abi { ecc_len: l };
            let mut pt = vec![4u8];
            pt.extend((1..=64).collect::<Vec<u8>>());
            let b = a.pubkey(&pt).unwrap();
            assert_eq!((b.len(), a.pubkey_len()), (pk, pk));
            assert_eq!(b[..4], 256u32.to_ne_bytes());
            assert!(b[4..4 + l - 32].iter().all(|x| *x == 0));
            assert_eq!(&b[4 + l - 32..4 + l], &pt[1..33]);
            assert_eq!(&b[4 + 2 * l - 32..], &pt[33..]);
            let rs: [u8; 64] = std::array::from_fn(|i| i as u8 + 1);
            let s = a.sig(&rs);
            assert_eq!((s.len(), a.sig_len()), (sig, sig));
            assert_eq!(a.sig_from(&s), Some(rs));
            let mut bad = s.clone();
            bad[0] = 1;
            assert_eq!(a.sig_from(&bad).is_some(), l == 32);
        }
        let d = deviceinfo(&DevInfo {
            issuer: "hsm-sim".into(),
            name: "a label longer than sixteen".into(),
            serial: "SIMTOKEN00000000".into(),
        });
        assert_eq!(&d[..8], b"hsm-sim\0");
        assert_eq!(&d[DEVICE_NAME_AT..DEVICE_SERIAL_AT], b"a label longer t");
        assert_eq!(&d[DEVICE_SERIAL_AT..72], b"SIMTOKEN00000000");
        assert_eq!(d[80..84], ALG_ASYM_CAP.to_ne_bytes());
        assert_eq!(d[96..], 4096u32.to_ne_bytes());
    }
}
