//! GM/T 0016 SKF entry points (`SKF_*`, exported by name from `libhsm_sim.so`): check every
//! pointer, catch every panic, read and write `ULONG`/`BOOL` at the configured width.
//!
//! Every function returns its SAR code as a 64-bit value: a caller whose `ULONG` is 32 bits
//! reads the low half, one whose `ULONG` is `unsigned long` on LP64 reads all of it.
//! By-value `ULONG`/`BOOL` arguments are taken as 64-bit registers and masked to the width.

use std::ffi::{c_char, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use super::abi::*;
use super::{with, Sar};

type Rv = u64;

fn guard(f: impl FnOnce() -> Sar<()>) -> Rv {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => SAR_OK as Rv,
        Ok(Err(e)) => e as Rv,
        Err(_) => SAR_FAIL as Rv,
    }
}

/// A NUL-terminated string argument's bytes.
///
/// # Safety
/// `p` must be null or a NUL-terminated string.
unsafe fn cstr<'a>(p: *const c_char) -> Sar<&'a [u8]> {
    if p.is_null() {
        return Err(SAR_INVALIDPARAMERR);
    }
    // SAFETY: caller contract.
    Ok(unsafe { CStr::from_ptr(p) }.to_bytes())
}

/// A (pointer, length) data argument: empty for a zero length, refused for a null pointer
/// with a length.
///
/// # Safety
/// `p` must be null or point to `n` readable bytes.
unsafe fn bytes<'a>(p: *const u8, n: usize) -> Sar<&'a [u8]> {
    match (p.is_null(), n) {
        (_, 0) => Ok(&[]),
        (true, _) => Err(SAR_INVALIDPARAMERR),
        // SAFETY: caller contract.
        (false, n) => Ok(unsafe { std::slice::from_raw_parts(p, n) }),
    }
}

/// A string argument as text.
///
/// # Safety
/// As `cstr`.
unsafe fn text<'a>(p: *const c_char) -> Sar<&'a str> {
    // SAFETY: caller contract.
    std::str::from_utf8(unsafe { cstr(p) }?).map_err(|_| SAR_INVALIDPARAMERR)
}

/// Writes raw bytes to a non-null out pointer.
///
/// # Safety
/// `p` must be null or point to `data.len()` writable bytes.
unsafe fn write(p: *mut c_void, data: &[u8]) -> Sar<()> {
    if p.is_null() {
        return Err(SAR_INVALIDPARAMERR);
    }
    // SAFETY: caller contract.
    unsafe { ptr::copy_nonoverlapping(data.as_ptr(), p as *mut u8, data.len()) };
    Ok(())
}

/// Writes a ULONG of the configured width.
///
/// # Safety
/// `p` must be null or point to `abi.ulong` writable bytes.
unsafe fn put_ulong(abi: Abi, p: *mut c_void, v: u64) -> Sar<()> {
    // SAFETY: caller contract.
    unsafe { write(p, &abi.ulong_bytes(v)) }
}

/// Reads a ULONG of the configured width.
///
/// # Safety
/// `p` must be null or point to `abi.ulong` readable bytes.
unsafe fn get_ulong(abi: Abi, p: *const c_void) -> Sar<u64> {
    if p.is_null() {
        return Err(SAR_INVALIDPARAMERR);
    }
    // SAFETY: caller contract.
    let b = unsafe { std::slice::from_raw_parts(p as *const u8, abi.ulong) };
    Ok(abi.ulong_from(b))
}

/// Writes `data` to (buffer, ULONG *len) with the size-query convention: a NULL buffer gets
/// the size; a short one gets the size and SAR_BUFFER_TOO_SMALL.
///
/// # Safety
/// `len` must be null or a ULONG; `buf` null or `*len` writable bytes.
unsafe fn put_sized(abi: Abi, buf: *mut u8, len: *mut c_void, data: &[u8]) -> Sar<()> {
    // SAFETY: caller contract.
    let have = unsafe { get_ulong(abi, len) }?;
    // SAFETY: caller contract.
    unsafe { put_ulong(abi, len, data.len() as u64) }?;
    if buf.is_null() {
        return Ok(());
    }
    if (have as usize) < data.len() {
        return Err(SAR_BUFFER_TOO_SMALL);
    }
    // SAFETY: caller contract: `have` ≥ data.len() writable bytes.
    unsafe { ptr::copy_nonoverlapping(data.as_ptr(), buf, data.len()) };
    Ok(())
}

/// Writes a handle.
///
/// # Safety
/// `p` must be null or writable.
unsafe fn put_handle(p: *mut *mut c_void, h: usize) -> Sar<()> {
    // SAFETY: caller contract.
    let p = unsafe { p.as_mut() }.ok_or(SAR_INVALIDPARAMERR)?;
    *p = h as *mut c_void;
    Ok(())
}

fn h(p: *mut c_void) -> usize {
    p as usize
}

/// Writes the retry count of a PIN call when the caller gave a place for it.
///
/// # Safety
/// `p` must be null or a ULONG.
unsafe fn retry(p: *mut c_void, r: Result<(), (u32, u64)>) -> Sar<()> {
    let abi = with(|s| Ok(s.abi))?;
    match r {
        Ok(()) => Ok(()),
        Err((e, left)) => {
            if !p.is_null() {
                // SAFETY: caller contract.
                unsafe { put_ulong(abi, p, left) }?;
            }
            Err(e)
        }
    }
}

/// SKF_EnumDev(BOOL bPresent, LPSTR szNameList, ULONG *pulSize).
///
/// # Safety
/// GM/T 0016 contract for the pointers.
#[no_mangle]
pub unsafe extern "C" fn SKF_EnumDev(present: u64, list: *mut c_char, size: *mut c_void) -> Rv {
    guard(|| {
        with(|s| {
            let names = s.enum_dev(s.abi.bool_arg(present))?;
            // SAFETY: caller contract.
            unsafe { put_sized(s.abi, list as *mut u8, size, &name_list(&names)) }
        })
    })
}

/// SKF_ConnectDev(LPSTR szName, DEVHANDLE *phDev).
///
/// # Safety
/// GM/T 0016 contract for the pointers.
#[no_mangle]
pub unsafe extern "C" fn SKF_ConnectDev(name: *const c_char, ph: *mut *mut c_void) -> Rv {
    guard(|| {
        // SAFETY: caller contract.
        let name = unsafe { text(name) }?;
        if ph.is_null() {
            return Err(SAR_INVALIDPARAMERR);
        }
        let hd = with(|s| s.connect(name))?;
        // SAFETY: checked non-null; caller contract.
        unsafe { put_handle(ph, hd) }
    })
}

/// SKF_DisConnectDev(DEVHANDLE hDev).
///
/// # Safety
/// None beyond passing a handle.
#[no_mangle]
pub unsafe extern "C" fn SKF_DisConnectDev(hdev: *mut c_void) -> Rv {
    guard(|| with(|s| s.disconnect(h(hdev))))
}

/// SKF_GetDevInfo(DEVHANDLE hDev, DEVINFO *pDevInfo).
///
/// # Safety
/// `info` must be null or sizeof(DEVINFO) writable bytes.
#[no_mangle]
pub unsafe extern "C" fn SKF_GetDevInfo(hdev: *mut c_void, info: *mut c_void) -> Rv {
    guard(|| {
        with(|s| {
            if info.is_null() {
                return Err(SAR_INVALIDPARAMERR);
            }
            let d = s.dev_info(h(hdev))?;
            // SAFETY: caller contract.
            unsafe { write(info, &d) }
        })
    })
}

/// SKF_EnumApplication(DEVHANDLE hDev, LPSTR szAppName, ULONG *pulSize).
///
/// # Safety
/// GM/T 0016 contract for the pointers.
#[no_mangle]
pub unsafe extern "C" fn SKF_EnumApplication(
    hdev: *mut c_void,
    list: *mut c_char,
    size: *mut c_void,
) -> Rv {
    guard(|| {
        with(|s| {
            let names = s.enum_app(h(hdev))?;
            // SAFETY: caller contract.
            unsafe { put_sized(s.abi, list as *mut u8, size, &name_list(&names)) }
        })
    })
}

/// SKF_OpenApplication(DEVHANDLE hDev, LPSTR szAppName, HAPPLICATION *phApplication).
///
/// # Safety
/// GM/T 0016 contract for the pointers.
#[no_mangle]
pub unsafe extern "C" fn SKF_OpenApplication(
    hdev: *mut c_void,
    name: *const c_char,
    ph: *mut *mut c_void,
) -> Rv {
    guard(|| {
        // SAFETY: caller contract.
        let name = unsafe { text(name) }?;
        if ph.is_null() {
            return Err(SAR_INVALIDPARAMERR);
        }
        let ha = with(|s| s.open_app(h(hdev), name))?;
        // SAFETY: checked non-null.
        unsafe { put_handle(ph, ha) }
    })
}

/// SKF_CloseApplication(HAPPLICATION hApplication).
///
/// # Safety
/// None beyond passing a handle.
#[no_mangle]
pub unsafe extern "C" fn SKF_CloseApplication(happ: *mut c_void) -> Rv {
    guard(|| with(|s| s.close_app(h(happ))))
}

/// SKF_GetPINInfo(HAPPLICATION, ULONG ulPINType, ULONG *pulMaxRetryCount,
/// ULONG *pulRemainRetryCount, BOOL *pbDefaultPin).
///
/// # Safety
/// GM/T 0016 contract for the pointers.
#[no_mangle]
pub unsafe extern "C" fn SKF_GetPINInfo(
    happ: *mut c_void,
    typ: u64,
    max: *mut c_void,
    remain: *mut c_void,
    default_pin: *mut c_void,
) -> Rv {
    guard(|| {
        with(|s| {
            if max.is_null() || remain.is_null() || default_pin.is_null() {
                return Err(SAR_INVALIDPARAMERR);
            }
            let (m, r, d) = s.pin_info(h(happ), s.abi.arg(typ))?;
            // SAFETY: caller contract.
            unsafe {
                put_ulong(s.abi, max, m)?;
                put_ulong(s.abi, remain, r)?;
                write(default_pin, &s.abi.bool_bytes(d))
            }
        })
    })
}

/// SKF_VerifyPIN(HAPPLICATION, ULONG ulPINType, LPSTR szPIN, ULONG *pulRetryCount).
///
/// # Safety
/// GM/T 0016 contract for the pointers (`pulRetryCount` may be NULL).
#[no_mangle]
pub unsafe extern "C" fn SKF_VerifyPIN(
    happ: *mut c_void,
    typ: u64,
    pin: *const c_char,
    retry_count: *mut c_void,
) -> Rv {
    guard(|| {
        // SAFETY: caller contract.
        let pin = unsafe { cstr(pin) }?;
        let r = with(|s| Ok(s.verify_pin(h(happ), s.abi.arg(typ), pin)))?;
        // SAFETY: caller contract.
        unsafe { retry(retry_count, r) }
    })
}

/// SKF_ChangePIN(HAPPLICATION, ULONG ulPINType, LPSTR szOldPin, LPSTR szNewPin,
/// ULONG *pulRetryCount).
///
/// # Safety
/// GM/T 0016 contract for the pointers (`pulRetryCount` may be NULL).
#[no_mangle]
pub unsafe extern "C" fn SKF_ChangePIN(
    happ: *mut c_void,
    typ: u64,
    old: *const c_char,
    new: *const c_char,
    retry_count: *mut c_void,
) -> Rv {
    guard(|| {
        // SAFETY: caller contract.
        let (old, new) = unsafe { (cstr(old)?, cstr(new)?) };
        let r = with(|s| Ok(s.change_pin(h(happ), s.abi.arg(typ), old, new)))?;
        // SAFETY: caller contract.
        unsafe { retry(retry_count, r) }
    })
}

/// SKF_UnblockPIN(HAPPLICATION, LPSTR szAdminPIN, LPSTR szNewUserPIN, ULONG *pulRetryCount).
///
/// # Safety
/// GM/T 0016 contract for the pointers (`pulRetryCount` may be NULL).
#[no_mangle]
pub unsafe extern "C" fn SKF_UnblockPIN(
    happ: *mut c_void,
    admin: *const c_char,
    new: *const c_char,
    retry_count: *mut c_void,
) -> Rv {
    guard(|| {
        // SAFETY: caller contract.
        let (admin, new) = unsafe { (cstr(admin)?, cstr(new)?) };
        let r = with(|s| Ok(s.unblock_pin(h(happ), admin, new)))?;
        // SAFETY: caller contract.
        unsafe { retry(retry_count, r) }
    })
}

/// SKF_ClearSecureState(HAPPLICATION).
///
/// # Safety
/// None beyond passing a handle.
#[no_mangle]
pub unsafe extern "C" fn SKF_ClearSecureState(happ: *mut c_void) -> Rv {
    guard(|| with(|s| s.clear_secure_state(h(happ))))
}

/// SKF_EnumContainer(HAPPLICATION, LPSTR szContainerName, ULONG *pulSize).
///
/// # Safety
/// GM/T 0016 contract for the pointers.
#[no_mangle]
pub unsafe extern "C" fn SKF_EnumContainer(
    happ: *mut c_void,
    list: *mut c_char,
    size: *mut c_void,
) -> Rv {
    guard(|| {
        with(|s| {
            let names = s.enum_con(h(happ))?;
            // SAFETY: caller contract.
            unsafe { put_sized(s.abi, list as *mut u8, size, &name_list(&names)) }
        })
    })
}

/// SKF_OpenContainer(HAPPLICATION, LPSTR szContainerName, HCONTAINER *phContainer).
///
/// # Safety
/// GM/T 0016 contract for the pointers.
#[no_mangle]
pub unsafe extern "C" fn SKF_OpenContainer(
    happ: *mut c_void,
    name: *const c_char,
    ph: *mut *mut c_void,
) -> Rv {
    guard(|| {
        // SAFETY: caller contract.
        let name = unsafe { text(name) }?;
        if ph.is_null() {
            return Err(SAR_INVALIDPARAMERR);
        }
        let hc = with(|s| s.open_con(h(happ), name))?;
        // SAFETY: checked non-null.
        unsafe { put_handle(ph, hc) }
    })
}

/// SKF_CloseContainer(HCONTAINER).
///
/// # Safety
/// None beyond passing a handle.
#[no_mangle]
pub unsafe extern "C" fn SKF_CloseContainer(hcon: *mut c_void) -> Rv {
    guard(|| with(|s| s.close_con(h(hcon))))
}

/// SKF_GetContainerType(HCONTAINER, ULONG *pulContainerType): 2 (ECC).
///
/// # Safety
/// GM/T 0016 contract for the pointers.
#[no_mangle]
pub unsafe extern "C" fn SKF_GetContainerType(hcon: *mut c_void, typ: *mut c_void) -> Rv {
    guard(|| {
        with(|s| {
            if typ.is_null() {
                return Err(SAR_INVALIDPARAMERR);
            }
            let t = s.con_type(h(hcon))?;
            // SAFETY: caller contract.
            unsafe { put_ulong(s.abi, typ, t) }
        })
    })
}

/// SKF_ExportCertificate(HCONTAINER, BOOL bSignFlag, BYTE *pbCert, ULONG *pulCertLen).
///
/// # Safety
/// GM/T 0016 contract for the pointers.
#[no_mangle]
pub unsafe extern "C" fn SKF_ExportCertificate(
    hcon: *mut c_void,
    sign: u64,
    cert: *mut u8,
    len: *mut c_void,
) -> Rv {
    guard(|| {
        with(|s| {
            if len.is_null() {
                return Err(SAR_INVALIDPARAMERR);
            }
            let der = s.export_cert(h(hcon), s.abi.bool_arg(sign))?;
            // SAFETY: caller contract.
            unsafe { put_sized(s.abi, cert, len, &der) }
        })
    })
}

/// SKF_ExportPublicKey(HCONTAINER, BOOL bSignFlag, BYTE *pbBlob, ULONG *pulBlobLen).
///
/// # Safety
/// GM/T 0016 contract for the pointers.
#[no_mangle]
pub unsafe extern "C" fn SKF_ExportPublicKey(
    hcon: *mut c_void,
    sign: u64,
    blob: *mut u8,
    len: *mut c_void,
) -> Rv {
    guard(|| {
        with(|s| {
            if len.is_null() {
                return Err(SAR_INVALIDPARAMERR);
            }
            let b = s.export_pubkey(h(hcon), s.abi.bool_arg(sign))?;
            // SAFETY: caller contract.
            unsafe { put_sized(s.abi, blob, len, &b) }
        })
    })
}

/// SKF_ECCSignData(HCONTAINER, BYTE *pbDigest, ULONG ulDigestLen, ECCSIGNATUREBLOB *pSignature).
///
/// # Safety
/// GM/T 0016 contract: `digest` holds `len` bytes, `sig` sizeof(ECCSIGNATUREBLOB).
#[no_mangle]
pub unsafe extern "C" fn SKF_ECCSignData(
    hcon: *mut c_void,
    digest: *const u8,
    len: u64,
    sig: *mut c_void,
) -> Rv {
    guard(|| {
        if digest.is_null() || sig.is_null() {
            return Err(SAR_INVALIDPARAMERR);
        }
        let (abi, job) = with(|s| {
            let n = s.abi.arg(len) as usize;
            if n != 32 {
                return Err(SAR_INDATALENERR);
            }
            // SAFETY: caller contract: 32 readable bytes.
            let e = unsafe { std::slice::from_raw_parts(digest, n) };
            Ok((s.abi, s.sign_job(h(hcon), e)?))
        })?;
        let rs = job.run()?;
        // SAFETY: caller contract.
        unsafe { write(sig, &abi.sig_blob(&rs)) }
    })
}

/// SKF_DigestInit(DEVHANDLE hDev, ULONG ulAlgID, ECCPUBLICKEYBLOB *pPubKey, BYTE *pucID,
/// ULONG ulIDLen, HANDLE *phHash): SGD_SM3 only; with a public key, the hash starts with Z
/// of that key and ID.
///
/// # Safety
/// GM/T 0016 contract: `pubkey` null or sizeof(ECCPUBLICKEYBLOB), `id` `id_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn SKF_DigestInit(
    hdev: *mut c_void,
    alg: u64,
    pubkey: *const c_void,
    id: *const u8,
    id_len: u64,
    ph: *mut *mut c_void,
) -> Rv {
    guard(|| {
        let handle = with(|s| {
            let blob = (!pubkey.is_null()).then(|| {
                // SAFETY: caller contract.
                unsafe { std::slice::from_raw_parts(pubkey as *const u8, s.abi.pubkey_len()) }
            });
            let n = s.abi.arg(id_len) as usize;
            let id = match (blob, id.is_null(), n) {
                (None, _, _) => &[][..],
                (Some(_), false, 1..=128) => {
                    // SAFETY: caller contract.
                    unsafe { std::slice::from_raw_parts(id, n) }
                }
                _ => return Err(SAR_INVALIDPARAMERR),
            };
            s.digest_init(h(hdev), s.abi.arg(alg), blob, id)
        })?;
        // SAFETY: caller contract.
        unsafe { put_handle(ph, handle) }
    })
}

/// SKF_Digest(HANDLE hHash, BYTE *pbData, ULONG ulDataLen, BYTE *pbHashData,
/// ULONG *pulHashLen): the whole message at once; size query as for exports.
///
/// # Safety
/// GM/T 0016 contract for the pointers.
#[no_mangle]
pub unsafe extern "C" fn SKF_Digest(
    hhash: *mut c_void,
    data: *const u8,
    len: u64,
    out: *mut u8,
    out_len: *mut c_void,
) -> Rv {
    guard(|| {
        let (abi, digest) = with(|s| {
            // SAFETY: caller contract.
            let data = unsafe { bytes(data, s.abi.arg(len) as usize) }?;
            Ok((s.abi, s.digest(h(hhash), data)?))
        })?;
        // SAFETY: caller contract.
        unsafe { put_sized(abi, out, out_len, &digest) }
    })
}

/// SKF_DigestUpdate(HANDLE hHash, BYTE *pbData, ULONG ulDataLen).
///
/// # Safety
/// GM/T 0016 contract: `data` holds `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn SKF_DigestUpdate(hhash: *mut c_void, data: *const u8, len: u64) -> Rv {
    guard(|| {
        with(|s| {
            // SAFETY: caller contract.
            let more = unsafe { bytes(data, s.abi.arg(len) as usize) }?;
            s.digest_update(h(hhash), more)
        })
    })
}

/// SKF_DigestFinal(HANDLE hHash, BYTE *pHashData, ULONG *pulHashLen); size query as for
/// exports.
///
/// # Safety
/// GM/T 0016 contract for the pointers.
#[no_mangle]
pub unsafe extern "C" fn SKF_DigestFinal(
    hhash: *mut c_void,
    out: *mut u8,
    out_len: *mut c_void,
) -> Rv {
    guard(|| {
        let (abi, digest) = with(|s| Ok((s.abi, s.digest_final(h(hhash))?)))?;
        // SAFETY: caller contract.
        unsafe { put_sized(abi, out, out_len, &digest) }
    })
}

/// SKF_CloseHandle(HANDLE hHandle): ends a hash.
///
/// # Safety
/// None beyond a handle value.
#[no_mangle]
pub unsafe extern "C" fn SKF_CloseHandle(handle: *mut c_void) -> Rv {
    guard(|| with(|s| s.close_hash(h(handle))))
}

/// SKF_WaitForDevEvent(LPSTR szDevName, ULONG *pulDevNameLen, ULONG *pulEvent): blocks until
/// a device is inserted (1) or removed (2); the name and its length with the NUL are written.
/// A buffer too small gets the length and SAR_BUFFER_TOO_SMALL, and the event is kept.
/// Cancelled: SAR_NOT_EVENTERR, `*pulEvent` = 0.
///
/// # Safety
/// GM/T 0016 contract for the pointers.
#[no_mangle]
pub unsafe extern "C" fn SKF_WaitForDevEvent(
    name: *mut c_char,
    len: *mut c_void,
    event: *mut c_void,
) -> Rv {
    guard(|| {
        if len.is_null() || event.is_null() {
            return Err(SAR_INVALIDPARAMERR);
        }
        let r = super::wait_event(|abi, ev| {
            let mut bytes = ev.name.as_bytes().to_vec();
            bytes.push(0);
            // SAFETY: caller contract.
            unsafe {
                let have = get_ulong(abi, len)?;
                put_ulong(abi, len, bytes.len() as u64)?;
                if name.is_null() || (have as usize) < bytes.len() {
                    return Err(SAR_BUFFER_TOO_SMALL);
                }
                ptr::copy_nonoverlapping(bytes.as_ptr(), name as *mut u8, bytes.len());
                put_ulong(abi, event, ev.event as u64)
            }
        });
        if r == Err(SAR_NOT_EVENTERR) {
            let abi = with(|s| Ok(s.abi))?;
            // SAFETY: checked non-null.
            unsafe { put_ulong(abi, event, 0) }?;
        }
        r
    })
}

/// SKF_CancelWaitForDevEvent(void): makes blocked SKF_WaitForDevEvent calls return.
#[no_mangle]
pub extern "C" fn SKF_CancelWaitForDevEvent() -> Rv {
    guard(|| {
        super::cancel_wait();
        Ok(())
    })
}
