//! PKCS#11 v2.40 entry points: check every pointer and length, catch every panic,
//! translate to and from the safe calls in `module`.

use cryptoki_sys::*;
use std::os::raw::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use crate::ffi_stubs as stubs;
use crate::module::{self, with, Attr, Op};
use crate::token::Rv;

/// Like `guard`, but any failure except CKR_BUFFER_TOO_SMALL ends the session's `op`
/// (the standard's rule for C_Sign, C_Verify, C_Digest and their Final forms).
fn guard_op(h: CK_SESSION_HANDLE, op: Op, f: impl FnOnce() -> Rv<()>) -> CK_RV {
    let rv = guard(f);
    if rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL {
        let _ = with(|m| {
            m.end(h, op);
            Ok(())
        });
    }
    rv
}

/// Runs `f`, turning errors into return values and panics into CKR_GENERAL_ERROR.
fn guard(f: impl FnOnce() -> Rv<()>) -> CK_RV {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => CKR_OK,
        Ok(Err(rv)) => rv,
        Err(_) => CKR_GENERAL_ERROR,
    }
}

/// Borrows caller bytes; a null pointer is only allowed with length 0.
///
/// # Safety
/// `p` must be null or point to `n` readable bytes.
unsafe fn bytes<'a>(p: *const u8, n: CK_ULONG) -> Rv<&'a [u8]> {
    if p.is_null() {
        return if n == 0 {
            Ok(&[])
        } else {
            Err(CKR_ARGUMENTS_BAD)
        };
    }
    // SAFETY: the caller promises `n` readable bytes at `p`.
    Ok(unsafe { std::slice::from_raw_parts(p, n as usize) })
}

/// Reads a `*mut T` out-parameter.
fn out<'a, T>(p: *mut T) -> Rv<&'a mut T> {
    // SAFETY: non-null pointers from the caller point to a valid T (PKCS#11 contract).
    unsafe { p.as_mut() }.ok_or(CKR_ARGUMENTS_BAD)
}

/// Copies a template of (type, value) pairs.
///
/// # Safety
/// `p` must be null or point to `n` CK_ATTRIBUTEs whose values are readable.
unsafe fn template(p: *const CK_ATTRIBUTE, n: CK_ULONG) -> Rv<Vec<(u64, Vec<u8>)>> {
    if p.is_null() {
        return if n == 0 {
            Ok(Vec::new())
        } else {
            Err(CKR_ARGUMENTS_BAD)
        };
    }
    // SAFETY: caller contract.
    let attrs = unsafe { std::slice::from_raw_parts(p, n as usize) };
    attrs
        .iter()
        .map(|a| {
            // SAFETY: caller contract for each attribute's value.
            let v = unsafe { bytes(a.pValue as *const u8, a.ulValueLen) }?;
            Ok((a.type_, v.to_vec()))
        })
        .collect()
}

/// Writes `data` to a (buffer, length) pair with the size-query convention.
///
/// # Safety
/// `buf` must be null or point to `*len` writable bytes.
unsafe fn put(buf: *mut u8, len: *mut CK_ULONG, data: &[u8]) -> Rv<()> {
    let len = out(len)?;
    if buf.is_null() {
        *len = data.len() as CK_ULONG;
        return Ok(());
    }
    if (*len as usize) < data.len() {
        *len = data.len() as CK_ULONG;
        return Err(CKR_BUFFER_TOO_SMALL);
    }
    // SAFETY: caller contract: `*len` ≥ data.len() writable bytes.
    unsafe { ptr::copy_nonoverlapping(data.as_ptr(), buf, data.len()) };
    *len = data.len() as CK_ULONG;
    Ok(())
}

/// Writes a list of ulongs with the size-query convention.
///
/// # Safety
/// `buf` must be null or point to `*len` writable elements.
unsafe fn put_list(buf: *mut CK_ULONG, len: *mut CK_ULONG, data: &[u64]) -> Rv<()> {
    let len = out(len)?;
    if buf.is_null() {
        *len = data.len() as CK_ULONG;
        return Ok(());
    }
    if (*len as usize) < data.len() {
        *len = data.len() as CK_ULONG;
        return Err(CKR_BUFFER_TOO_SMALL);
    }
    // SAFETY: caller contract.
    unsafe { ptr::copy_nonoverlapping(data.as_ptr() as *const CK_ULONG, buf, data.len()) };
    *len = data.len() as CK_ULONG;
    Ok(())
}

/// Blank-padded fixed-width text field.
fn pad<const N: usize>(s: &str) -> [u8; N] {
    let mut a = [b' '; N];
    let b = s.as_bytes();
    let n = b.len().min(N);
    a[..n].copy_from_slice(&b[..n]);
    a
}

/// Mechanism code and parameter bytes.
///
/// # Safety
/// `m` must be null or a valid CK_MECHANISM.
unsafe fn mechanism(m: *const CK_MECHANISM) -> Rv<(CK_MECHANISM_TYPE, Option<Vec<u8>>)> {
    // SAFETY: caller contract.
    let m = unsafe { m.as_ref() }.ok_or(CKR_ARGUMENTS_BAD)?;
    // SAFETY: caller contract for the parameter.
    let p = unsafe { bytes(m.pParameter as *const u8, m.ulParameterLen) }?;
    Ok((m.mechanism, (!p.is_empty()).then(|| p.to_vec())))
}

static FUNCTION_LIST: CK_FUNCTION_LIST = include!("ffi_list.rs");

/// Returns the function list (the module's only exported symbol).
///
/// # Safety
/// `pp` must be null or writable.
#[no_mangle]
pub unsafe extern "C" fn C_GetFunctionList(pp: CK_FUNCTION_LIST_PTR_PTR) -> CK_RV {
    guard(|| {
        *out(pp)? = &FUNCTION_LIST as *const CK_FUNCTION_LIST as CK_FUNCTION_LIST_PTR;
        Ok(())
    })
}

unsafe extern "C" fn C_Initialize(args: *mut c_void) -> CK_RV {
    guard(|| {
        // SAFETY: null or a CK_C_INITIALIZE_ARGS per the standard.
        if let Some(a) = unsafe { (args as *const CK_C_INITIALIZE_ARGS).as_ref() } {
            if !a.pReserved.is_null() {
                return Err(CKR_ARGUMENTS_BAD);
            }
            let set = [
                a.CreateMutex.is_some(),
                a.DestroyMutex.is_some(),
                a.LockMutex.is_some(),
                a.UnlockMutex.is_some(),
            ];
            if set.iter().any(|x| *x) && !set.iter().all(|x| *x) {
                return Err(CKR_ARGUMENTS_BAD);
            }
        }
        module::initialize()
    })
}

unsafe extern "C" fn C_Finalize(reserved: *mut c_void) -> CK_RV {
    guard(|| {
        if !reserved.is_null() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        module::finalize()
    })
}

unsafe extern "C" fn C_GetInfo(info: *mut CK_INFO) -> CK_RV {
    guard(|| {
        with(|_| Ok(()))?;
        let i = out(info)?;
        *i = CK_INFO {
            cryptokiVersion: CK_VERSION {
                major: 2,
                minor: 40,
            },
            manufacturerID: pad("hsm-sim"),
            flags: 0,
            libraryDescription: pad("hsm-sim SM2 token simulator"),
            libraryVersion: CK_VERSION { major: 0, minor: 1 },
        };
        Ok(())
    })
}

unsafe extern "C" fn C_GetSlotList(
    present: CK_BBOOL,
    list: *mut CK_SLOT_ID,
    count: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        let slots = with(|m| m.slot_list(present != 0))?;
        // SAFETY: caller contract.
        unsafe { put_list(list, count, &slots) }
    })
}

unsafe extern "C" fn C_GetSlotInfo(slot: CK_SLOT_ID, info: *mut CK_SLOT_INFO) -> CK_RV {
    guard(|| {
        let (present, manufacturer) = with(|m| m.slot_info(slot))?;
        let i = out(info)?;
        *i = CK_SLOT_INFO {
            slotDescription: pad(&format!("hsm-sim slot {slot}")),
            manufacturerID: pad(manufacturer),
            flags: CKF_REMOVABLE_DEVICE | CKF_HW_SLOT | if present { CKF_TOKEN_PRESENT } else { 0 },
            hardwareVersion: CK_VERSION { major: 1, minor: 0 },
            firmwareVersion: CK_VERSION { major: 1, minor: 0 },
        };
        Ok(())
    })
}

unsafe extern "C" fn C_GetTokenInfo(slot: CK_SLOT_ID, info: *mut CK_TOKEN_INFO) -> CK_RV {
    guard(|| {
        let t = with(|m| m.token_info(slot))?;
        let i = out(info)?;
        *i = CK_TOKEN_INFO {
            label: pad(&t.label),
            manufacturerID: pad(&t.manufacturer),
            model: pad(&t.model),
            serialNumber: pad(&t.serial),
            flags: t.flags,
            ulMaxSessionCount: CK_EFFECTIVELY_INFINITE,
            ulSessionCount: t.sessions,
            ulMaxRwSessionCount: CK_EFFECTIVELY_INFINITE,
            ulRwSessionCount: t.rw_sessions,
            ulMaxPinLen: t.max_pin,
            ulMinPinLen: t.min_pin,
            ulTotalPublicMemory: CK_UNAVAILABLE_INFORMATION,
            ulFreePublicMemory: CK_UNAVAILABLE_INFORMATION,
            ulTotalPrivateMemory: CK_UNAVAILABLE_INFORMATION,
            ulFreePrivateMemory: CK_UNAVAILABLE_INFORMATION,
            hardwareVersion: CK_VERSION { major: 1, minor: 0 },
            firmwareVersion: CK_VERSION { major: 1, minor: 0 },
            utcTime: [b' '; 16],
        };
        Ok(())
    })
}

unsafe extern "C" fn C_GetMechanismList(
    slot: CK_SLOT_ID,
    list: *mut CK_MECHANISM_TYPE,
    count: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        let mechs = with(|m| m.mech_list(slot))?;
        // SAFETY: caller contract.
        unsafe { put_list(list, count, &mechs) }
    })
}

unsafe extern "C" fn C_GetMechanismInfo(
    slot: CK_SLOT_ID,
    mech: CK_MECHANISM_TYPE,
    info: *mut CK_MECHANISM_INFO,
) -> CK_RV {
    guard(|| {
        let (min, max, flags) = with(|m| m.mech_info(slot, mech))?;
        *out(info)? = CK_MECHANISM_INFO {
            ulMinKeySize: min,
            ulMaxKeySize: max,
            flags,
        };
        Ok(())
    })
}

unsafe extern "C" fn C_InitToken(
    slot: CK_SLOT_ID,
    pin: *mut u8,
    pin_len: CK_ULONG,
    label: *mut u8,
) -> CK_RV {
    guard(|| {
        // SAFETY: caller contract.
        let pin = unsafe { bytes(pin, pin_len) }?;
        if label.is_null() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        // SAFETY: the label is 32 bytes, blank padded.
        let label = unsafe { bytes(label, 32) }?;
        let label = String::from_utf8_lossy(label).trim_end().to_string();
        with(|m| m.init_token(slot, pin, &label))
    })
}

unsafe extern "C" fn C_InitPIN(h: CK_SESSION_HANDLE, pin: *mut u8, len: CK_ULONG) -> CK_RV {
    guard(|| {
        // SAFETY: caller contract.
        let pin = unsafe { bytes(pin, len) }?;
        with(|m| m.init_pin(h, pin))
    })
}

unsafe extern "C" fn C_SetPIN(
    h: CK_SESSION_HANDLE,
    old: *mut u8,
    old_len: CK_ULONG,
    new: *mut u8,
    new_len: CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: caller contract.
        let (old, new) = unsafe { (bytes(old, old_len)?, bytes(new, new_len)?) };
        with(|m| m.set_pin(h, old, new))
    })
}

unsafe extern "C" fn C_OpenSession(
    slot: CK_SLOT_ID,
    flags: CK_FLAGS,
    _app: *mut c_void,
    _notify: CK_NOTIFY,
    ph: *mut CK_SESSION_HANDLE,
) -> CK_RV {
    guard(|| {
        let ph = out(ph)?;
        *ph = with(|m| m.open_session(slot, flags))?;
        Ok(())
    })
}

unsafe extern "C" fn C_CloseSession(h: CK_SESSION_HANDLE) -> CK_RV {
    guard(|| with(|m| m.close_session(h)))
}

unsafe extern "C" fn C_CloseAllSessions(slot: CK_SLOT_ID) -> CK_RV {
    guard(|| with(|m| m.close_all(slot)))
}

unsafe extern "C" fn C_GetSessionInfo(h: CK_SESSION_HANDLE, info: *mut CK_SESSION_INFO) -> CK_RV {
    guard(|| {
        let i = out(info)?;
        let (slot, state, flags) = with(|m| m.session_info(h))?;
        *i = CK_SESSION_INFO {
            slotID: slot,
            state,
            flags,
            ulDeviceError: 0,
        };
        Ok(())
    })
}

unsafe extern "C" fn C_Login(
    h: CK_SESSION_HANDLE,
    user: CK_USER_TYPE,
    pin: *mut u8,
    len: CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: caller contract.
        let pin = unsafe { bytes(pin, len) }?;
        with(|m| m.login_as(h, user, pin))
    })
}

unsafe extern "C" fn C_Logout(h: CK_SESSION_HANDLE) -> CK_RV {
    guard(|| with(|m| m.logout(h)))
}

unsafe extern "C" fn C_CreateObject(
    h: CK_SESSION_HANDLE,
    t: *mut CK_ATTRIBUTE,
    n: CK_ULONG,
    ph: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    guard(|| {
        // SAFETY: caller contract.
        let t = unsafe { template(t, n) }?;
        let ph = out(ph)?;
        *ph = with(|m| m.create_object(h, &t))?;
        Ok(())
    })
}

unsafe extern "C" fn C_DestroyObject(h: CK_SESSION_HANDLE, o: CK_OBJECT_HANDLE) -> CK_RV {
    guard(|| with(|m| m.destroy_object(h, o)))
}

unsafe extern "C" fn C_GetAttributeValue(
    h: CK_SESSION_HANDLE,
    o: CK_OBJECT_HANDLE,
    t: *mut CK_ATTRIBUTE,
    n: CK_ULONG,
) -> CK_RV {
    guard(|| {
        if t.is_null() && n > 0 {
            return Err(CKR_ARGUMENTS_BAD);
        }
        let attrs: &mut [CK_ATTRIBUTE] = if n == 0 {
            &mut []
        } else {
            // SAFETY: caller contract: `n` writable attributes.
            unsafe { std::slice::from_raw_parts_mut(t, n as usize) }
        };
        let types: Vec<u64> = attrs.iter().map(|a| a.type_).collect();
        let vals = with(|m| m.get_attrs(h, o, &types))?;
        let mut rv = Ok(());
        for (a, v) in attrs.iter_mut().zip(vals) {
            match v {
                Attr::Sensitive => {
                    a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                    rv = Err(CKR_ATTRIBUTE_SENSITIVE);
                }
                Attr::Invalid => {
                    a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                    rv = Err(CKR_ATTRIBUTE_TYPE_INVALID);
                }
                Attr::Value(v) => {
                    if a.pValue.is_null() {
                        a.ulValueLen = v.len() as CK_ULONG;
                    } else if (a.ulValueLen as usize) < v.len() {
                        a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                        rv = Err(CKR_BUFFER_TOO_SMALL);
                    } else {
                        // SAFETY: caller contract: ulValueLen writable bytes.
                        unsafe {
                            ptr::copy_nonoverlapping(v.as_ptr(), a.pValue as *mut u8, v.len())
                        };
                        a.ulValueLen = v.len() as CK_ULONG;
                    }
                }
            }
        }
        rv
    })
}

unsafe extern "C" fn C_SetAttributeValue(
    h: CK_SESSION_HANDLE,
    o: CK_OBJECT_HANDLE,
    t: *mut CK_ATTRIBUTE,
    n: CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: caller contract.
        let t = unsafe { template(t, n) }?;
        with(|m| m.set_attrs(h, o, &t))
    })
}

unsafe extern "C" fn C_FindObjectsInit(
    h: CK_SESSION_HANDLE,
    t: *mut CK_ATTRIBUTE,
    n: CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: caller contract.
        let t = unsafe { template(t, n) }?;
        with(|m| m.find_init(h, &t))
    })
}

unsafe extern "C" fn C_FindObjects(
    h: CK_SESSION_HANDLE,
    ph: *mut CK_OBJECT_HANDLE,
    max: CK_ULONG,
    count: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        let count = out(count)?;
        if ph.is_null() && max > 0 {
            return Err(CKR_ARGUMENTS_BAD);
        }
        let found = with(|m| m.find(h, max as usize))?;
        // SAFETY: caller contract: `max` writable handles, found.len() ≤ max.
        unsafe {
            ptr::copy_nonoverlapping(found.as_ptr() as *const CK_OBJECT_HANDLE, ph, found.len())
        };
        *count = found.len() as CK_ULONG;
        Ok(())
    })
}

unsafe extern "C" fn C_FindObjectsFinal(h: CK_SESSION_HANDLE) -> CK_RV {
    guard(|| with(|m| m.find_final(h)))
}

unsafe extern "C" fn C_DigestInit(h: CK_SESSION_HANDLE, mech: *mut CK_MECHANISM) -> CK_RV {
    guard(|| {
        // SAFETY: caller contract.
        let (mech, _) = unsafe { mechanism(mech) }?;
        with(|m| m.digest_init(h, mech))
    })
}

/// Shared tail of C_Digest and C_DigestFinal.
///
/// # Safety
/// `buf`/`len` per the size-query convention.
unsafe fn digest_out(
    h: CK_SESSION_HANDLE,
    data: Option<&[u8]>,
    buf: *mut u8,
    len: *mut CK_ULONG,
) -> Rv<()> {
    let cap = out(len)?;
    let cap = (!buf.is_null()).then_some(*cap as usize);
    let d = with(|m| m.digest(h, data, cap))?;
    // SAFETY: caller contract.
    unsafe { put(buf, len, &d) }
}

unsafe extern "C" fn C_Digest(
    h: CK_SESSION_HANDLE,
    data: *mut u8,
    n: CK_ULONG,
    buf: *mut u8,
    len: *mut CK_ULONG,
) -> CK_RV {
    guard_op(h, Op::Digest, || {
        // SAFETY: caller contract.
        let data = unsafe { bytes(data, n) }?;
        // SAFETY: caller contract.
        unsafe { digest_out(h, Some(data), buf, len) }
    })
}

unsafe extern "C" fn C_DigestUpdate(h: CK_SESSION_HANDLE, data: *mut u8, n: CK_ULONG) -> CK_RV {
    guard(|| {
        // SAFETY: caller contract.
        let data = unsafe { bytes(data, n) }?;
        with(|m| m.digest_update(h, data))
    })
}

unsafe extern "C" fn C_DigestFinal(
    h: CK_SESSION_HANDLE,
    buf: *mut u8,
    len: *mut CK_ULONG,
) -> CK_RV {
    // SAFETY: caller contract.
    guard_op(h, Op::Digest, || unsafe { digest_out(h, None, buf, len) })
}

unsafe extern "C" fn C_SignInit(
    h: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard(|| {
        // SAFETY: caller contract.
        let (mech, param) = unsafe { mechanism(mech) }?;
        with(|m| m.sign_init(h, mech, param, key))
    })
}

/// Shared tail of C_Sign and C_SignFinal.
///
/// # Safety
/// `sig`/`len` per the size-query convention.
unsafe fn sign_out(
    h: CK_SESSION_HANDLE,
    data: Option<&[u8]>,
    sig: *mut u8,
    len: *mut CK_ULONG,
) -> Rv<()> {
    let cap = out(len)?;
    if sig.is_null() {
        *cap = with(|m| m.sign_len(h))? as CK_ULONG;
        return Ok(());
    }
    let job = with(|m| m.sign_job(h, data))?;
    // The device works outside the global lock, so other sessions proceed in parallel.
    let res = job.run();
    let res = res.and_then(|s| {
        // SAFETY: caller contract.
        unsafe { put(sig, len, &s) }
    });
    if res != Err(CKR_BUFFER_TOO_SMALL) {
        let _ = with(|m| {
            m.end_sign(h);
            Ok(())
        });
    }
    res
}

unsafe extern "C" fn C_Sign(
    h: CK_SESSION_HANDLE,
    data: *mut u8,
    n: CK_ULONG,
    sig: *mut u8,
    len: *mut CK_ULONG,
) -> CK_RV {
    guard_op(h, Op::Sign, || {
        // SAFETY: caller contract.
        let data = unsafe { bytes(data, n) }?;
        // SAFETY: caller contract.
        unsafe { sign_out(h, Some(data), sig, len) }
    })
}

unsafe extern "C" fn C_SignUpdate(h: CK_SESSION_HANDLE, data: *mut u8, n: CK_ULONG) -> CK_RV {
    guard(|| {
        // SAFETY: caller contract.
        let data = unsafe { bytes(data, n) }?;
        with(|m| m.update(h, data, true))
    })
}

unsafe extern "C" fn C_SignFinal(h: CK_SESSION_HANDLE, sig: *mut u8, len: *mut CK_ULONG) -> CK_RV {
    // SAFETY: caller contract.
    guard_op(h, Op::Sign, || unsafe { sign_out(h, None, sig, len) })
}

unsafe extern "C" fn C_VerifyInit(
    h: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard(|| {
        // SAFETY: caller contract.
        let (mech, param) = unsafe { mechanism(mech) }?;
        with(|m| m.verify_init(h, mech, param, key))
    })
}

unsafe extern "C" fn C_Verify(
    h: CK_SESSION_HANDLE,
    data: *mut u8,
    n: CK_ULONG,
    sig: *mut u8,
    sig_len: CK_ULONG,
) -> CK_RV {
    guard_op(h, Op::Verify, || {
        // SAFETY: caller contract.
        let (data, sig) = unsafe { (bytes(data, n)?, bytes(sig, sig_len)?) };
        with(|m| m.verify(h, Some(data), sig))
    })
}

unsafe extern "C" fn C_VerifyUpdate(h: CK_SESSION_HANDLE, data: *mut u8, n: CK_ULONG) -> CK_RV {
    guard(|| {
        // SAFETY: caller contract.
        let data = unsafe { bytes(data, n) }?;
        with(|m| m.update(h, data, false))
    })
}

unsafe extern "C" fn C_VerifyFinal(h: CK_SESSION_HANDLE, sig: *mut u8, sig_len: CK_ULONG) -> CK_RV {
    guard_op(h, Op::Verify, || {
        // SAFETY: caller contract.
        let sig = unsafe { bytes(sig, sig_len) }?;
        with(|m| m.verify(h, None, sig))
    })
}

unsafe extern "C" fn C_GenerateKeyPair(
    h: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    pub_t: *mut CK_ATTRIBUTE,
    pub_n: CK_ULONG,
    priv_t: *mut CK_ATTRIBUTE,
    priv_n: CK_ULONG,
    pub_h: *mut CK_OBJECT_HANDLE,
    priv_h: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    guard(|| {
        // SAFETY: caller contract.
        let (mech, _) = unsafe { mechanism(mech) }?;
        // SAFETY: caller contract.
        let (pt, kt) = unsafe { (template(pub_t, pub_n)?, template(priv_t, priv_n)?) };
        let (ph, kh) = (out(pub_h)?, out(priv_h)?);
        let (a, b) = with(|m| m.generate_keypair(h, mech, &pt, &kt))?;
        *ph = a;
        *kh = b;
        Ok(())
    })
}

unsafe extern "C" fn C_GenerateRandom(h: CK_SESSION_HANDLE, buf: *mut u8, n: CK_ULONG) -> CK_RV {
    guard(|| {
        if buf.is_null() && n > 0 {
            return Err(CKR_ARGUMENTS_BAD);
        }
        let r = with(|m| m.random(h, n as usize))?;
        // SAFETY: caller contract: `n` writable bytes.
        unsafe { ptr::copy_nonoverlapping(r.as_ptr(), buf, r.len()) };
        Ok(())
    })
}
