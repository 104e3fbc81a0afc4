//! GM/T 0018 SDF entry points (`SDF_*`, exported by name from `libhsm_sim.so`): check every
//! pointer, catch every panic. Prototypes as GmSSL `src/sdf/sdf.h` declares them: `int` return,
//! `unsigned int` by-value arguments, `void *` handles.

use std::ffi::{c_int, c_uint, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use super::abi::*;
use super::{with, Sdr};

/// Most bytes SDF_GenerateRandom gives in one call.
const MAX_RANDOM: usize = 1 << 20;

fn guard(f: impl FnOnce() -> Sdr<()>) -> c_int {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => SDR_OK as c_int,
        Ok(Err(e)) => e as c_int,
        Err(_) => SDR_UNKNOWERR as c_int,
    }
}

fn h(p: *mut c_void) -> usize {
    p as usize
}

/// Writes raw bytes to a non-null out pointer.
///
/// # Safety
/// `p` must be null or point to `data.len()` writable bytes.
unsafe fn write(p: *mut c_void, data: &[u8]) -> Sdr<()> {
    if p.is_null() {
        return Err(SDR_OUTARGERR);
    }
    // SAFETY: caller contract.
    unsafe { ptr::copy_nonoverlapping(data.as_ptr(), p as *mut u8, data.len()) };
    Ok(())
}

/// An input buffer (NULL only if empty).
///
/// # Safety
/// `p` must be null or point to `len` readable bytes.
unsafe fn input<'a>(p: *const u8, len: c_uint) -> Sdr<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(SDR_INARGERR);
    }
    // SAFETY: caller contract.
    Ok(unsafe { std::slice::from_raw_parts(p, len as usize) })
}

/// Writes a handle.
///
/// # Safety
/// `p` must be null or writable.
unsafe fn put_handle(p: *mut *mut c_void, hd: usize) -> Sdr<()> {
    // SAFETY: caller contract.
    let p = unsafe { p.as_mut() }.ok_or(SDR_OUTARGERR)?;
    *p = hd as *mut c_void;
    Ok(())
}

/// int SDF_OpenDevice(void **phDeviceHandle).
///
/// # Safety
/// `ph` must be null or writable.
#[no_mangle]
pub unsafe extern "C" fn SDF_OpenDevice(ph: *mut *mut c_void) -> c_int {
    guard(|| {
        if ph.is_null() {
            return Err(SDR_OUTARGERR);
        }
        let hd = with(|s| s.open_device())?;
        // SAFETY: checked non-null; caller contract.
        unsafe { put_handle(ph, hd) }
    })
}

/// int SDF_CloseDevice(void *hDeviceHandle).
///
/// # Safety
/// None beyond passing a handle.
#[no_mangle]
pub unsafe extern "C" fn SDF_CloseDevice(hdev: *mut c_void) -> c_int {
    guard(|| with(|s| s.close_device(h(hdev))))
}

/// int SDF_OpenSession(void *hDeviceHandle, void **phSessionHandle).
///
/// # Safety
/// `ph` must be null or writable.
#[no_mangle]
pub unsafe extern "C" fn SDF_OpenSession(hdev: *mut c_void, ph: *mut *mut c_void) -> c_int {
    guard(|| {
        if ph.is_null() {
            return Err(SDR_OUTARGERR);
        }
        let hs = with(|s| s.open_session(h(hdev)))?;
        // SAFETY: checked non-null; caller contract.
        unsafe { put_handle(ph, hs) }
    })
}

/// int SDF_CloseSession(void *hSessionHandle).
///
/// # Safety
/// None beyond passing a handle.
#[no_mangle]
pub unsafe extern "C" fn SDF_CloseSession(hs: *mut c_void) -> c_int {
    guard(|| with(|s| s.close_session(h(hs))))
}

/// int SDF_GetDeviceInfo(void *hSessionHandle, DEVICEINFO *pstDeviceInfo).
///
/// # Safety
/// `info` must be null or sizeof(DEVICEINFO) (100) writable bytes.
#[no_mangle]
pub unsafe extern "C" fn SDF_GetDeviceInfo(hs: *mut c_void, info: *mut c_void) -> c_int {
    guard(|| {
        if info.is_null() {
            return Err(SDR_OUTARGERR);
        }
        let d = with(|s| s.device_info(h(hs)))?;
        // SAFETY: caller contract.
        unsafe { write(info, &d) }
    })
}

/// int SDF_GenerateRandom(void *hSessionHandle, unsigned int uiLength, unsigned char *pucRandom).
///
/// # Safety
/// `out` must be null or `len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn SDF_GenerateRandom(hs: *mut c_void, len: c_uint, out: *mut u8) -> c_int {
    guard(|| {
        with(|s| s.random_check(h(hs)))?;
        let n = len as usize;
        if n > MAX_RANDOM {
            return Err(SDR_INARGERR);
        }
        if n == 0 {
            return Ok(());
        }
        // SAFETY: caller contract.
        unsafe { write(out as *mut c_void, &crate::crypto::random(n)) }
    })
}

/// int SDF_GetPrivateKeyAccessRight(void *hSessionHandle, unsigned int uiKeyIndex,
/// unsigned char *pucPassword, unsigned int uiPwdLength).
///
/// # Safety
/// `pwd` must be null or `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn SDF_GetPrivateKeyAccessRight(
    hs: *mut c_void,
    index: c_uint,
    pwd: *const u8,
    len: c_uint,
) -> c_int {
    guard(|| {
        if pwd.is_null() {
            return Err(SDR_INARGERR);
        }
        // SAFETY: caller contract.
        let pwd = unsafe { input(pwd, len) }?;
        with(|s| s.get_right(h(hs), index, pwd))
    })
}

/// int SDF_ReleasePrivateKeyAccessRight(void *hSessionHandle, unsigned int uiKeyIndex).
///
/// # Safety
/// None beyond passing a handle.
#[no_mangle]
pub unsafe extern "C" fn SDF_ReleasePrivateKeyAccessRight(hs: *mut c_void, index: c_uint) -> c_int {
    guard(|| with(|s| s.release_right(h(hs), index)))
}

/// int SDF_ExportSignPublicKey_ECC(void *hSessionHandle, unsigned int uiKeyIndex,
/// ECCrefPublicKey *pucPublicKey).
///
/// # Safety
/// `pk` must be null or sizeof(ECCrefPublicKey) writable bytes.
#[no_mangle]
pub unsafe extern "C" fn SDF_ExportSignPublicKey_ECC(
    hs: *mut c_void,
    index: c_uint,
    pk: *mut c_void,
) -> c_int {
    guard(|| {
        if pk.is_null() {
            return Err(SDR_OUTARGERR);
        }
        let b = with(|s| s.export_sign_pub(h(hs), index))?;
        // SAFETY: caller contract.
        unsafe { write(pk, &b) }
    })
}

/// int SDF_InternalSign_ECC(void *hSessionHandle, unsigned int uiISKIndex,
/// unsigned char *pucData, unsigned int uiDataLength, ECCSignature *pucSignature).
///
/// # Safety
/// `data` must hold `len` bytes, `sig` sizeof(ECCSignature) writable bytes (or be null).
#[no_mangle]
pub unsafe extern "C" fn SDF_InternalSign_ECC(
    hs: *mut c_void,
    index: c_uint,
    data: *const u8,
    len: c_uint,
    sig: *mut c_void,
) -> c_int {
    guard(|| {
        if data.is_null() {
            return Err(SDR_INARGERR);
        }
        if sig.is_null() {
            return Err(SDR_OUTARGERR);
        }
        // SAFETY: caller contract.
        let e = unsafe { input(data, len) }?;
        let (abi, job) = with(|s| Ok((s.abi, s.sign_job(h(hs), index, e)?)))?;
        let rs = job.run()?;
        // SAFETY: caller contract.
        unsafe { write(sig, &abi.sig(&rs)) }
    })
}

/// int SDF_InternalVerify_ECC(void *hSessionHandle, unsigned int uiIPKIndex,
/// unsigned char *pucData, unsigned int uiDataLength, ECCSignature *pucSignature).
///
/// # Safety
/// `data` must hold `len` bytes, `sig` sizeof(ECCSignature) readable bytes (or be null).
#[no_mangle]
pub unsafe extern "C" fn SDF_InternalVerify_ECC(
    hs: *mut c_void,
    index: c_uint,
    data: *const u8,
    len: c_uint,
    sig: *const u8,
) -> c_int {
    guard(|| {
        if data.is_null() || sig.is_null() {
            return Err(SDR_INARGERR);
        }
        // SAFETY: caller contract.
        let e = unsafe { input(data, len) }?;
        with(|s| {
            // SAFETY: caller contract: sizeof(ECCSignature) readable bytes.
            let sig = unsafe { std::slice::from_raw_parts(sig, s.abi.sig_len()) };
            s.verify(h(hs), index, e, sig)
        })
    })
}
