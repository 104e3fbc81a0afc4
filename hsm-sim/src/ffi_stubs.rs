//! Entry points hsm-sim does not implement: each answers CKR_FUNCTION_NOT_SUPPORTED.
//! Generated from cryptoki-sys 0.5's CK_FUNCTION_LIST signatures.

use cryptoki_sys::*;

/// C_GetOperationState: not supported.
pub unsafe extern "C" fn C_GetOperationState(
    _arg1: CK_SESSION_HANDLE,
    _arg2: *mut CK_BYTE,
    _arg3: *mut CK_ULONG,
) -> CK_RV {
    CKR_FUNCTION_NOT_SUPPORTED
}

/// C_SetOperationState: not supported.
pub unsafe extern "C" fn C_SetOperationState(
    _arg1: CK_SESSION_HANDLE,
    _arg2: *mut CK_BYTE,
    _arg3: CK_ULONG,
    _arg4: CK_OBJECT_HANDLE,
    _arg5: CK_OBJECT_HANDLE,
) -> CK_RV {
    CKR_FUNCTION_NOT_SUPPORTED
}

/// C_CopyObject: not supported.
pub unsafe extern "C" fn C_CopyObject(
    _arg1: CK_SESSION_HANDLE,
    _arg2: CK_OBJECT_HANDLE,
    _arg3: *mut CK_ATTRIBUTE,
    _arg4: CK_ULONG,
    _arg5: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    CKR_FUNCTION_NOT_SUPPORTED
}

/// C_GetObjectSize: not supported.
pub unsafe extern "C" fn C_GetObjectSize(
    _arg1: CK_SESSION_HANDLE,
    _arg2: CK_OBJECT_HANDLE,
    _arg3: *mut CK_ULONG,
) -> CK_RV {
    CKR_FUNCTION_NOT_SUPPORTED
}

/// C_EncryptInit: not supported.
pub unsafe extern "C" fn C_EncryptInit(
    _arg1: CK_SESSION_HANDLE,
    _arg2: *mut CK_MECHANISM,
    _arg3: CK_OBJECT_HANDLE,
) -> CK_RV {
    CKR_FUNCTION_NOT_SUPPORTED
}

/// C_Encrypt: not supported.
pub unsafe extern "C" fn C_Encrypt(
    _arg1: CK_SESSION_HANDLE,
    _arg2: *mut CK_BYTE,
    _arg3: CK_ULONG,
    _arg4: *mut CK_BYTE,
    _arg5: *mut CK_ULONG,
) -> CK_RV {
    CKR_FUNCTION_NOT_SUPPORTED
}

/// C_EncryptUpdate: not supported.
pub unsafe extern "C" fn C_EncryptUpdate(
    _arg1: CK_SESSION_HANDLE,
    _arg2: *mut CK_BYTE,
    _arg3: CK_ULONG,
    _arg4: *mut CK_BYTE,
    _arg5: *mut CK_ULONG,
) -> CK_RV {
    CKR_FUNCTION_NOT_SUPPORTED
}

/// C_EncryptFinal: not supported.
pub unsafe extern "C" fn C_EncryptFinal(
    _arg1: CK_SESSION_HANDLE,
    _arg2: *mut CK_BYTE,
    _arg3: *mut CK_ULONG,
) -> CK_RV {
    CKR_FUNCTION_NOT_SUPPORTED
}

/// C_DecryptInit: not supported.
pub unsafe extern "C" fn C_DecryptInit(
    _arg1: CK_SESSION_HANDLE,
    _arg2: *mut CK_MECHANISM,
    _arg3: CK_OBJECT_HANDLE,
) -> CK_RV {
    CKR_FUNCTION_NOT_SUPPORTED
}

/// C_Decrypt: not supported.
pub unsafe extern "C" fn C_Decrypt(
    _arg1: CK_SESSION_HANDLE,
    _arg2: *mut CK_BYTE,
    _arg3: CK_ULONG,
    _arg4: *mut CK_BYTE,
    _arg5: *mut CK_ULONG,
) -> CK_RV {
    CKR_FUNCTION_NOT_SUPPORTED
}

/// C_DecryptUpdate: not supported.
pub unsafe extern "C" fn C_DecryptUpdate(
    _arg1: CK_SESSION_HANDLE,
    _arg2: *mut CK_BYTE,
    _arg3: CK_ULONG,
    _arg4: *mut CK_BYTE,
    _arg5: *mut CK_ULONG,
) -> CK_RV {
    CKR_FUNCTION_NOT_SUPPORTED
}

/// C_DecryptFinal: not supported.
pub unsafe extern "C" fn C_DecryptFinal(
    _arg1: CK_SESSION_HANDLE,
    _arg2: *mut CK_BYTE,
    _arg3: *mut CK_ULONG,
) -> CK_RV {
    CKR_FUNCTION_NOT_SUPPORTED
}

/// C_DigestKey: not supported.
pub unsafe extern "C" fn C_DigestKey(_arg1: CK_SESSION_HANDLE, _arg2: CK_OBJECT_HANDLE) -> CK_RV {
    CKR_FUNCTION_NOT_SUPPORTED
}

/// C_SignRecoverInit: not supported.
pub unsafe extern "C" fn C_SignRecoverInit(
    _arg1: CK_SESSION_HANDLE,
    _arg2: *mut CK_MECHANISM,
    _arg3: CK_OBJECT_HANDLE,
) -> CK_RV {
    CKR_FUNCTION_NOT_SUPPORTED
}

/// C_SignRecover: not supported.
pub unsafe extern "C" fn C_SignRecover(
    _arg1: CK_SESSION_HANDLE,
    _arg2: *mut CK_BYTE,
    _arg3: CK_ULONG,
    _arg4: *mut CK_BYTE,
    _arg5: *mut CK_ULONG,
) -> CK_RV {
    CKR_FUNCTION_NOT_SUPPORTED
}

/// C_VerifyRecoverInit: not supported.
pub unsafe extern "C" fn C_VerifyRecoverInit(
    _arg1: CK_SESSION_HANDLE,
    _arg2: *mut CK_MECHANISM,
    _arg3: CK_OBJECT_HANDLE,
) -> CK_RV {
    CKR_FUNCTION_NOT_SUPPORTED
}

/// C_VerifyRecover: not supported.
pub unsafe extern "C" fn C_VerifyRecover(
    _arg1: CK_SESSION_HANDLE,
    _arg2: *mut CK_BYTE,
    _arg3: CK_ULONG,
    _arg4: *mut CK_BYTE,
    _arg5: *mut CK_ULONG,
) -> CK_RV {
    CKR_FUNCTION_NOT_SUPPORTED
}

/// C_DigestEncryptUpdate: not supported.
pub unsafe extern "C" fn C_DigestEncryptUpdate(
    _arg1: CK_SESSION_HANDLE,
    _arg2: *mut CK_BYTE,
    _arg3: CK_ULONG,
    _arg4: *mut CK_BYTE,
    _arg5: *mut CK_ULONG,
) -> CK_RV {
    CKR_FUNCTION_NOT_SUPPORTED
}

/// C_DecryptDigestUpdate: not supported.
pub unsafe extern "C" fn C_DecryptDigestUpdate(
    _arg1: CK_SESSION_HANDLE,
    _arg2: *mut CK_BYTE,
    _arg3: CK_ULONG,
    _arg4: *mut CK_BYTE,
    _arg5: *mut CK_ULONG,
) -> CK_RV {
    CKR_FUNCTION_NOT_SUPPORTED
}

/// C_SignEncryptUpdate: not supported.
pub unsafe extern "C" fn C_SignEncryptUpdate(
    _arg1: CK_SESSION_HANDLE,
    _arg2: *mut CK_BYTE,
    _arg3: CK_ULONG,
    _arg4: *mut CK_BYTE,
    _arg5: *mut CK_ULONG,
) -> CK_RV {
    CKR_FUNCTION_NOT_SUPPORTED
}

/// C_DecryptVerifyUpdate: not supported.
pub unsafe extern "C" fn C_DecryptVerifyUpdate(
    _arg1: CK_SESSION_HANDLE,
    _arg2: *mut CK_BYTE,
    _arg3: CK_ULONG,
    _arg4: *mut CK_BYTE,
    _arg5: *mut CK_ULONG,
) -> CK_RV {
    CKR_FUNCTION_NOT_SUPPORTED
}

/// C_GenerateKey: not supported.
pub unsafe extern "C" fn C_GenerateKey(
    _arg1: CK_SESSION_HANDLE,
    _arg2: *mut CK_MECHANISM,
    _arg3: *mut CK_ATTRIBUTE,
    _arg4: CK_ULONG,
    _arg5: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    CKR_FUNCTION_NOT_SUPPORTED
}

/// C_WrapKey: not supported.
pub unsafe extern "C" fn C_WrapKey(
    _arg1: CK_SESSION_HANDLE,
    _arg2: *mut CK_MECHANISM,
    _arg3: CK_OBJECT_HANDLE,
    _arg4: CK_OBJECT_HANDLE,
    _arg5: *mut CK_BYTE,
    _arg6: *mut CK_ULONG,
) -> CK_RV {
    CKR_FUNCTION_NOT_SUPPORTED
}

/// C_UnwrapKey: not supported.
pub unsafe extern "C" fn C_UnwrapKey(
    _arg1: CK_SESSION_HANDLE,
    _arg2: *mut CK_MECHANISM,
    _arg3: CK_OBJECT_HANDLE,
    _arg4: *mut CK_BYTE,
    _arg5: CK_ULONG,
    _arg6: *mut CK_ATTRIBUTE,
    _arg7: CK_ULONG,
    _arg8: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    CKR_FUNCTION_NOT_SUPPORTED
}

/// C_DeriveKey: not supported.
pub unsafe extern "C" fn C_DeriveKey(
    _arg1: CK_SESSION_HANDLE,
    _arg2: *mut CK_MECHANISM,
    _arg3: CK_OBJECT_HANDLE,
    _arg4: *mut CK_ATTRIBUTE,
    _arg5: CK_ULONG,
    _arg6: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    CKR_FUNCTION_NOT_SUPPORTED
}

/// C_SeedRandom: not supported.
pub unsafe extern "C" fn C_SeedRandom(
    _arg1: CK_SESSION_HANDLE,
    _arg2: *mut CK_BYTE,
    _arg3: CK_ULONG,
) -> CK_RV {
    CKR_FUNCTION_NOT_SUPPORTED
}

/// C_GetFunctionStatus: not supported.
pub unsafe extern "C" fn C_GetFunctionStatus(_arg1: CK_SESSION_HANDLE) -> CK_RV {
    CKR_FUNCTION_NOT_SUPPORTED
}

/// C_CancelFunction: not supported.
pub unsafe extern "C" fn C_CancelFunction(_arg1: CK_SESSION_HANDLE) -> CK_RV {
    CKR_FUNCTION_NOT_SUPPORTED
}

/// C_WaitForSlotEvent: not supported.
pub unsafe extern "C" fn C_WaitForSlotEvent(
    _arg1: CK_FLAGS,
    _arg2: *mut CK_SLOT_ID,
    _arg3: *mut ::std::os::raw::c_void,
) -> CK_RV {
    CKR_FUNCTION_NOT_SUPPORTED
}
