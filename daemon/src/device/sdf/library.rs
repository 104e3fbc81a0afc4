//! A GM/T 0018 SDF library: its functions, bound at load (a missing one disables only what
//! needs it), and the structs read with the vendor's `ECCref_MAX_LEN`.

use std::ffi::c_void;

use crate::crypto::{KeyAlgorithm, PublicKey, RawSignature};
use crate::device::skf::right_aligned;

/// A device or session handle.
pub(super) type Handle = *mut c_void;

type OpenDevice = unsafe extern "C" fn(*mut Handle) -> i32;
type Close = unsafe extern "C" fn(Handle) -> i32;
type OpenSession = unsafe extern "C" fn(Handle, *mut Handle) -> i32;
type GetDeviceInfo = unsafe extern "C" fn(Handle, *mut u8) -> i32;
type GetAccessRight = unsafe extern "C" fn(Handle, u32, *const u8, u32) -> i32;
type ReleaseAccessRight = unsafe extern "C" fn(Handle, u32) -> i32;
type ExportSignPublicKey = unsafe extern "C" fn(Handle, u32, *mut u8) -> i32;
type InternalSign = unsafe extern "C" fn(Handle, u32, *const u8, u32, *mut u8) -> i32;

/// `SDR_BASE`: every GM/T 0018 error code is above it.
const SDR_BASE: u32 = 0x0100_0000;
/// Link to the device lost.
pub const SDR_COMMFAIL: u32 = SDR_BASE + 3;
/// The device cannot be opened.
pub const SDR_OPENDEVICE: u32 = SDR_BASE + 5;
/// No key with that index.
pub const SDR_KEYNOTEXIST: u32 = SDR_BASE + 8;
/// Wrong password, or no access right to the private key.
pub const SDR_PRKRERR: u32 = SDR_BASE + 0x18;
/// A bad input argument.
pub const SDR_INARGERR: u32 = SDR_BASE + 0x1D;

/// Why an SDF call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdfFailure {
    /// The library lacks the function.
    Missing(&'static str),
    /// The function answered this code.
    Code(&'static str, u32),
}

impl std::fmt::Display for SdfFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SdfFailure::Missing(symbol) => write!(
                f,
                "the SDF library has no {symbol}, so this operation is not available with it"
            ),
            SdfFailure::Code(function, code) => write!(f, "{function} failed with {code:#010x}"),
        }
    }
}

/// The functions seald calls.
pub(super) struct Symbols {
    open_device: Option<OpenDevice>,
    close_device: Option<Close>,
    open_session: Option<OpenSession>,
    close_session: Option<Close>,
    get_device_info: Option<GetDeviceInfo>,
    get_access_right: Option<GetAccessRight>,
    release_access_right: Option<ReleaseAccessRight>,
    export_sign_public_key: Option<ExportSignPublicKey>,
    internal_sign: Option<InternalSign>,
    _library: libloading::Library,
}

impl std::fmt::Debug for Symbols {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Symbols").finish_non_exhaustive()
    }
}

fn check(function: &'static str, code: i32) -> Result<(), SdfFailure> {
    match code as u32 {
        0 => Ok(()),
        code => Err(SdfFailure::Code(function, code)),
    }
}

impl Symbols {
    /// Loads the library and binds every function it has.
    pub(super) fn load(path: &std::path::Path) -> Result<Self, String> {
        // SAFETY: loading a vendor library runs its initialisers; configuring it asks for that.
        let library = unsafe { libloading::Library::new(path) }.map_err(|e| e.to_string())?;
        // SAFETY: each symbol is read with the prototype GM/T 0018 (GmSSL `sdf.h`) gives it.
        unsafe {
            Ok(Self {
                open_device: library.get(b"SDF_OpenDevice\0").ok().map(|s| *s),
                close_device: library.get(b"SDF_CloseDevice\0").ok().map(|s| *s),
                open_session: library.get(b"SDF_OpenSession\0").ok().map(|s| *s),
                close_session: library.get(b"SDF_CloseSession\0").ok().map(|s| *s),
                get_device_info: library.get(b"SDF_GetDeviceInfo\0").ok().map(|s| *s),
                get_access_right: library
                    .get(b"SDF_GetPrivateKeyAccessRight\0")
                    .ok()
                    .map(|s| *s),
                release_access_right: library
                    .get(b"SDF_ReleasePrivateKeyAccessRight\0")
                    .ok()
                    .map(|s| *s),
                export_sign_public_key: library
                    .get(b"SDF_ExportSignPublicKey_ECC\0")
                    .ok()
                    .map(|s| *s),
                internal_sign: library.get(b"SDF_InternalSign_ECC\0").ok().map(|s| *s),
                _library: library,
            })
        }
    }

    pub(super) fn open_device(&self) -> Result<Handle, SdfFailure> {
        let f = self
            .open_device
            .ok_or(SdfFailure::Missing("SDF_OpenDevice"))?;
        let mut handle: Handle = std::ptr::null_mut();
        check("SDF_OpenDevice", unsafe { f(&mut handle) })?;
        Ok(handle)
    }

    pub(super) fn close_device(&self, device: Handle) {
        if let Some(f) = self.close_device {
            unsafe { f(device) };
        }
    }

    pub(super) fn open_session(&self, device: Handle) -> Result<Handle, SdfFailure> {
        let f = self
            .open_session
            .ok_or(SdfFailure::Missing("SDF_OpenSession"))?;
        let mut handle: Handle = std::ptr::null_mut();
        check("SDF_OpenSession", unsafe { f(device, &mut handle) })?;
        Ok(handle)
    }

    pub(super) fn close_session(&self, session: Handle) {
        if let Some(f) = self.close_session {
            unsafe { f(session) };
        }
    }

    /// DEVICEINFO: IssuerName[40], DeviceName[16], DeviceSerial[16], then seven `unsigned int`s
    /// (GmSSL `sdf.h`); returns (issuer, name, serial).
    pub(super) fn device_info(
        &self,
        session: Handle,
    ) -> Result<(String, String, String), SdfFailure> {
        let f = self
            .get_device_info
            .ok_or(SdfFailure::Missing("SDF_GetDeviceInfo"))?;
        // Room beyond the standard 100 bytes for headers with more fields.
        let mut raw = vec![0u8; 512];
        check("SDF_GetDeviceInfo", unsafe { f(session, raw.as_mut_ptr()) })?;
        let text = |field: &[u8]| {
            let end = field.iter().position(|b| *b == 0).unwrap_or(field.len());
            String::from_utf8_lossy(&field[..end]).trim().to_string()
        };
        Ok((text(&raw[..40]), text(&raw[40..56]), text(&raw[56..72])))
    }

    pub(super) fn get_access_right(
        &self,
        session: Handle,
        index: u32,
        password: &[u8],
    ) -> Result<(), SdfFailure> {
        let f = self
            .get_access_right
            .ok_or(SdfFailure::Missing("SDF_GetPrivateKeyAccessRight"))?;
        let len = u32::try_from(password.len())
            .map_err(|_| SdfFailure::Code("SDF_GetPrivateKeyAccessRight", SDR_INARGERR))?;
        // `password` is followed by a NUL in the caller's buffer, for libraries that read it
        // as a C string.
        check("SDF_GetPrivateKeyAccessRight", unsafe {
            f(session, index, password.as_ptr(), len)
        })
    }

    pub(super) fn release_access_right(&self, session: Handle, index: u32) {
        if let Some(f) = self.release_access_right {
            unsafe { f(session, index) };
        }
    }

    /// ECCrefPublicKey: `unsigned int bits`, x and y right-aligned in `field`-byte fields.
    pub(super) fn sign_public_key(
        &self,
        session: Handle,
        index: u32,
        field: usize,
    ) -> Result<Result<PublicKey, String>, SdfFailure> {
        let f = self
            .export_sign_public_key
            .ok_or(SdfFailure::Missing("SDF_ExportSignPublicKey_ECC"))?;
        let mut raw = vec![0u8; 4 + 2 * 64 + 64];
        check("SDF_ExportSignPublicKey_ECC", unsafe {
            f(session, index, raw.as_mut_ptr())
        })?;
        Ok(read_public_key(&raw, field))
    }

    /// ECCSignature: r and s right-aligned in `field`-byte fields.
    pub(super) fn internal_sign(
        &self,
        session: Handle,
        index: u32,
        e: &[u8; 32],
        field: usize,
    ) -> Result<Result<RawSignature, String>, SdfFailure> {
        let f = self
            .internal_sign
            .ok_or(SdfFailure::Missing("SDF_InternalSign_ECC"))?;
        let mut raw = vec![0u8; 2 * 64 + 64];
        check("SDF_InternalSign_ECC", unsafe {
            f(session, index, e.as_ptr(), 32, raw.as_mut_ptr())
        })?;
        Ok(read_pair(&raw, 0, field).map(|(r, s)| {
            let mut sig = [0u8; 64];
            sig[..32].copy_from_slice(r);
            sig[32..].copy_from_slice(s);
            RawSignature(sig)
        }))
    }
}

/// Two right-aligned 32-byte values in consecutive `field`-byte fields from `at`.
fn read_pair(raw: &[u8], at: usize, field: usize) -> Result<(&[u8], &[u8]), String> {
    let value = |start: usize, name| right_aligned(&raw[start..start + field], name, "ecc_max_len");
    Ok((value(at, "first")?, value(at + field, "second")?))
}

fn read_public_key(raw: &[u8], field: usize) -> Result<PublicKey, String> {
    let bits = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
    if bits != 256 {
        return Err(format!("ECCrefPublicKey bits is {bits}, not 256"));
    }
    let (x, y) = read_pair(raw, 4, field)?;
    let mut point = [0u8; 65];
    point[0] = 0x04;
    point[1..33].copy_from_slice(x);
    point[33..].copy_from_slice(y);
    Ok(PublicKey {
        algorithm: KeyAlgorithm::Sm2,
        point,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecc_structs_are_read_in_both_widths() {
        for field in [64, 32] {
            let pad = vec![0u8; field - 32];
            let mut key = 256u32.to_le_bytes().to_vec();
            for v in [[1u8; 32], [2u8; 32]] {
                key.extend(&pad);
                key.extend(v);
            }
            key.resize(4 + 2 * 64 + 64, 0);
            let read = read_public_key(&key, field).unwrap();
            assert_eq!(&read.point[1..33], &[1; 32]);
            assert_eq!(&read.point[33..], &[2; 32]);
        }
        // A 32-byte layout read as 64-byte fields: x lands in the padding.
        let mut wide = 256u32.to_le_bytes().to_vec();
        wide.extend([1u8; 32]);
        wide.extend([2u8; 32]);
        wide.resize(4 + 2 * 64 + 64, 0);
        assert!(read_public_key(&wide, 64)
            .unwrap_err()
            .contains("check ecc_max_len"));
        let mut odd = wide.clone();
        odd[..4].copy_from_slice(&384u32.to_le_bytes());
        assert!(read_public_key(&odd, 64).unwrap_err().contains("384"));
    }
}
