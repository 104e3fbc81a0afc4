//! The C boundary itself: pointer and length checks, size queries, return codes that
//! `cryptoki` hides. Calls the same entry points through the crate's `C_GetFunctionList`.

use cryptoki_sys::*;
use std::ptr::null_mut;

struct F(&'static CK_FUNCTION_LIST);

macro_rules! call {
    ($f:expr, $name:ident ( $($a:expr),* )) => {
        // SAFETY: test calls with valid or deliberately null pointers the module must reject.
        unsafe { ($f.0.$name.expect(stringify!($name)))($($a),*) }
    };
}

fn functions() -> F {
    let mut p: CK_FUNCTION_LIST_PTR = null_mut();
    // SAFETY: valid out-pointer.
    assert_eq!(unsafe { hsm_sim::C_GetFunctionList(&mut p) }, CKR_OK);
    // SAFETY: null is rejected, not dereferenced.
    assert_eq!(
        unsafe { hsm_sim::C_GetFunctionList(null_mut()) },
        CKR_ARGUMENTS_BAD
    );
    // SAFETY: the module returns a pointer to a static list.
    F(unsafe { &*p })
}

fn ulong_attr(t: CK_ATTRIBUTE_TYPE, v: &mut CK_ULONG) -> CK_ATTRIBUTE {
    CK_ATTRIBUTE {
        type_: t,
        pValue: v as *mut CK_ULONG as *mut _,
        ulValueLen: 8,
    }
}

#[test]
fn c_boundary_checks_and_size_queries() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("c.toml");
    std::fs::write(
        &conf,
        format!(
            "store = \"{}\"\nslots = 4\nprofile = \"tass\"\nsignature_encoding = \"raw\"\n",
            dir.path().join("t").display()
        ),
    )
    .unwrap();
    std::env::set_var("HSM_SIM_CONF", &conf);
    let f = functions();
    assert_eq!(f.0.version.major, 2);
    assert_eq!(f.0.version.minor, 40);

    // Initialization rules.
    let mut info = CK_INFO::default();
    assert_eq!(call!(f, C_GetInfo(&mut info)), CKR_CRYPTOKI_NOT_INITIALIZED);
    assert_eq!(
        call!(f, C_Finalize(null_mut())),
        CKR_CRYPTOKI_NOT_INITIALIZED
    );
    let mut args = CK_C_INITIALIZE_ARGS {
        flags: CKF_OS_LOCKING_OK,
        pReserved: std::ptr::dangling_mut(),
        ..Default::default()
    };
    assert_eq!(
        call!(f, C_Initialize(&mut args as *mut _ as *mut _)),
        CKR_ARGUMENTS_BAD
    );
    args.pReserved = null_mut();
    assert_eq!(
        call!(f, C_Initialize(&mut args as *mut _ as *mut _)),
        CKR_OK
    );
    assert_eq!(
        call!(f, C_Initialize(null_mut())),
        CKR_CRYPTOKI_ALREADY_INITIALIZED
    );
    assert_eq!(call!(f, C_GetInfo(&mut info)), CKR_OK);
    assert_eq!(
        (info.cryptokiVersion.major, info.cryptokiVersion.minor),
        (2, 40)
    );
    assert_eq!(call!(f, C_GetInfo(null_mut())), CKR_ARGUMENTS_BAD);

    // Slot list: size query, too-small buffer, null count.
    let mut n: CK_ULONG = 0;
    assert_eq!(call!(f, C_GetSlotList(CK_TRUE, null_mut(), &mut n)), CKR_OK);
    assert_eq!(n, 4);
    let mut slots = [0 as CK_SLOT_ID; 4];
    n = 2;
    assert_eq!(
        call!(f, C_GetSlotList(CK_FALSE, slots.as_mut_ptr(), &mut n)),
        CKR_BUFFER_TOO_SMALL
    );
    assert_eq!(n, 4);
    assert_eq!(
        call!(f, C_GetSlotList(CK_FALSE, slots.as_mut_ptr(), &mut n)),
        CKR_OK
    );
    assert_eq!(
        call!(f, C_GetSlotList(CK_FALSE, slots.as_mut_ptr(), null_mut())),
        CKR_ARGUMENTS_BAD
    );
    let slot = slots[0];
    let mut ti = CK_TOKEN_INFO::default();
    assert_eq!(call!(f, C_GetTokenInfo(99, &mut ti)), CKR_SLOT_ID_INVALID);
    assert_eq!(
        call!(f, C_GetTokenInfo(slot, null_mut())),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(call!(f, C_GetTokenInfo(slot, &mut ti)), CKR_OK);
    assert_eq!(ti.flags & CKF_TOKEN_INITIALIZED, 0);
    assert_eq!(ti.serialNumber.len(), 16);

    // Mechanisms of the TASS-style profile.
    assert_eq!(
        call!(f, C_GetMechanismList(slot, null_mut(), &mut n)),
        CKR_OK
    );
    assert_eq!(n, 4);
    let mut mechs = [0 as CK_MECHANISM_TYPE; 4];
    let mut small: CK_ULONG = 1;
    assert_eq!(
        call!(f, C_GetMechanismList(slot, mechs.as_mut_ptr(), &mut small)),
        CKR_BUFFER_TOO_SMALL
    );
    assert_eq!(
        call!(f, C_GetMechanismList(slot, mechs.as_mut_ptr(), &mut n)),
        CKR_OK
    );
    assert!(mechs.contains(&0x8000_8000) && mechs.contains(&0x8000_0005));
    let mut mi = CK_MECHANISM_INFO::default();
    assert_eq!(
        call!(f, C_GetMechanismInfo(slot, 0x8000_8104, &mut mi)),
        CKR_MECHANISM_INVALID
    );
    assert_eq!(
        call!(f, C_GetMechanismInfo(slot, 0x8000_8000, &mut mi)),
        CKR_OK
    );
    assert_ne!(mi.flags & CKF_SIGN, 0);

    // Token and sessions.
    let mut label = [b' '; 32];
    label[..3].copy_from_slice(b"raw");
    let so = b"so-pin-1";
    let user = b"user-pin";
    let mut h: CK_SESSION_HANDLE = 0;
    assert_eq!(
        call!(
            f,
            C_OpenSession(slot, CKF_SERIAL_SESSION, null_mut(), None, &mut h)
        ),
        CKR_TOKEN_NOT_RECOGNIZED
    );
    assert_eq!(
        call!(
            f,
            C_InitToken(slot, so.as_ptr() as *mut _, so.len() as _, null_mut())
        ),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        call!(f, C_InitToken(slot, null_mut(), 8, label.as_mut_ptr())),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        call!(
            f,
            C_InitToken(
                slot,
                so.as_ptr() as *mut _,
                so.len() as _,
                label.as_mut_ptr()
            )
        ),
        CKR_OK
    );
    assert_eq!(
        call!(
            f,
            C_OpenSession(slot, CKF_RW_SESSION, null_mut(), None, &mut h)
        ),
        CKR_SESSION_PARALLEL_NOT_SUPPORTED
    );
    assert_eq!(
        call!(
            f,
            C_OpenSession(
                slot,
                CKF_SERIAL_SESSION | CKF_RW_SESSION,
                null_mut(),
                None,
                null_mut()
            )
        ),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        call!(
            f,
            C_OpenSession(
                slot,
                CKF_SERIAL_SESSION | CKF_RW_SESSION,
                null_mut(),
                None,
                &mut h
            )
        ),
        CKR_OK
    );
    assert_eq!(
        call!(
            f,
            C_Login(h, CKU_USER, user.as_ptr() as *mut _, user.len() as _)
        ),
        CKR_USER_PIN_NOT_INITIALIZED
    );
    assert_eq!(
        call!(f, C_Login(h, CKU_SO, null_mut(), 8)),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        call!(f, C_Login(h, 7, so.as_ptr() as *mut _, so.len() as _)),
        CKR_USER_TYPE_INVALID
    );
    assert_eq!(
        call!(f, C_Login(h, CKU_SO, so.as_ptr() as *mut _, so.len() as _)),
        CKR_OK
    );
    assert_eq!(
        call!(f, C_InitPIN(h, user.as_ptr() as *mut _, user.len() as _)),
        CKR_OK
    );
    assert_eq!(call!(f, C_Logout(h)), CKR_OK);
    assert_eq!(
        call!(
            f,
            C_Login(h, CKU_USER, user.as_ptr() as *mut _, user.len() as _)
        ),
        CKR_OK
    );
    let mut si = CK_SESSION_INFO::default();
    assert_eq!(call!(f, C_GetSessionInfo(h, &mut si)), CKR_OK);
    assert_eq!(si.state, CKS_RW_USER_FUNCTIONS);
    assert_eq!(
        call!(f, C_GetSessionInfo(h + 1000, &mut si)),
        CKR_SESSION_HANDLE_INVALID
    );

    // Key pair with the TASS keygen code.
    let mut kg = CK_MECHANISM {
        mechanism: 0x8000_8001,
        pParameter: null_mut(),
        ulParameterLen: 0,
    };
    let mut t = CK_TRUE;
    let mut id = *b"raw-id";
    let mut tmpl = [
        CK_ATTRIBUTE {
            type_: CKA_TOKEN,
            pValue: &mut t as *mut _ as *mut _,
            ulValueLen: 1,
        },
        CK_ATTRIBUTE {
            type_: CKA_ID,
            pValue: id.as_mut_ptr() as *mut _,
            ulValueLen: id.len() as _,
        },
    ];
    let (mut pubk, mut privk) = (0, 0);
    assert_eq!(
        call!(
            f,
            C_GenerateKeyPair(
                h,
                null_mut(),
                tmpl.as_mut_ptr(),
                2,
                tmpl.as_mut_ptr(),
                2,
                &mut pubk,
                &mut privk
            )
        ),
        CKR_ARGUMENTS_BAD
    );
    let mut bad = CK_MECHANISM {
        mechanism: 0x8000_8104,
        ..kg
    };
    assert_eq!(
        call!(
            f,
            C_GenerateKeyPair(
                h,
                &mut bad,
                tmpl.as_mut_ptr(),
                2,
                tmpl.as_mut_ptr(),
                2,
                &mut pubk,
                &mut privk
            )
        ),
        CKR_MECHANISM_INVALID
    );
    assert_eq!(
        call!(
            f,
            C_GenerateKeyPair(
                h,
                &mut kg,
                null_mut(),
                2,
                tmpl.as_mut_ptr(),
                2,
                &mut pubk,
                &mut privk
            )
        ),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        call!(
            f,
            C_GenerateKeyPair(
                h,
                &mut kg,
                tmpl.as_mut_ptr(),
                2,
                tmpl.as_mut_ptr(),
                2,
                &mut pubk,
                &mut privk
            )
        ),
        CKR_OK
    );

    // C_GetAttributeValue: length query, too-small buffer, sensitive, invalid type.
    let mut q = [
        CK_ATTRIBUTE {
            type_: CKA_EC_POINT,
            pValue: null_mut(),
            ulValueLen: 0,
        },
        CK_ATTRIBUTE {
            type_: CKA_ID,
            pValue: null_mut(),
            ulValueLen: 0,
        },
    ];
    assert_eq!(
        call!(f, C_GetAttributeValue(h, pubk, q.as_mut_ptr(), 2)),
        CKR_OK
    );
    assert_eq!((q[0].ulValueLen, q[1].ulValueLen), (67, 6));
    let mut small = [0u8; 10];
    q[0].pValue = small.as_mut_ptr() as *mut _;
    q[0].ulValueLen = 10;
    assert_eq!(
        call!(f, C_GetAttributeValue(h, pubk, q.as_mut_ptr(), 1)),
        CKR_BUFFER_TOO_SMALL
    );
    assert_eq!(q[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
    let mut kt: CK_ULONG = 0;
    let mut q2 = [
        ulong_attr(CKA_KEY_TYPE, &mut kt),
        CK_ATTRIBUTE {
            type_: CKA_VALUE,
            pValue: null_mut(),
            ulValueLen: 0,
        },
    ];
    assert_eq!(
        call!(f, C_GetAttributeValue(h, privk, q2.as_mut_ptr(), 2)),
        CKR_ATTRIBUTE_SENSITIVE
    );
    assert_eq!(kt, 0x8000_0004);
    assert_eq!(q2[1].ulValueLen, CK_UNAVAILABLE_INFORMATION);
    let mut q3 = [CK_ATTRIBUTE {
        type_: CKA_MODULUS,
        pValue: null_mut(),
        ulValueLen: 0,
    }];
    assert_eq!(
        call!(f, C_GetAttributeValue(h, privk, q3.as_mut_ptr(), 1)),
        CKR_ATTRIBUTE_TYPE_INVALID
    );
    assert_eq!(
        call!(f, C_GetAttributeValue(h, privk, null_mut(), 1)),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        call!(f, C_GetAttributeValue(h, 424242, q3.as_mut_ptr(), 1)),
        CKR_OBJECT_HANDLE_INVALID
    );

    // C_SetAttributeValue: sensitivity cannot be dropped, label can change.
    let mut fls = CK_FALSE;
    let mut set = [CK_ATTRIBUTE {
        type_: CKA_SENSITIVE,
        pValue: &mut fls as *mut _ as *mut _,
        ulValueLen: 1,
    }];
    assert_eq!(
        call!(f, C_SetAttributeValue(h, privk, set.as_mut_ptr(), 1)),
        CKR_ATTRIBUTE_READ_ONLY
    );
    let mut lbl = *b"renamed";
    let mut set = [CK_ATTRIBUTE {
        type_: CKA_LABEL,
        pValue: lbl.as_mut_ptr() as *mut _,
        ulValueLen: 7,
    }];
    assert_eq!(
        call!(f, C_SetAttributeValue(h, privk, set.as_mut_ptr(), 1)),
        CKR_OK
    );

    // Find: not initialized, active, results in batches.
    let mut found = [0 as CK_OBJECT_HANDLE; 1];
    let mut count: CK_ULONG = 0;
    assert_eq!(
        call!(f, C_FindObjects(h, found.as_mut_ptr(), 1, &mut count)),
        CKR_OPERATION_NOT_INITIALIZED
    );
    let mut idq = [CK_ATTRIBUTE {
        type_: CKA_ID,
        pValue: id.as_mut_ptr() as *mut _,
        ulValueLen: id.len() as _,
    }];
    assert_eq!(call!(f, C_FindObjectsInit(h, idq.as_mut_ptr(), 1)), CKR_OK);
    assert_eq!(
        call!(f, C_FindObjectsInit(h, idq.as_mut_ptr(), 1)),
        CKR_OPERATION_ACTIVE
    );
    assert_eq!(
        call!(f, C_FindObjects(h, found.as_mut_ptr(), 1, &mut count)),
        CKR_OK
    );
    assert_eq!(count, 1);
    assert_eq!(
        call!(f, C_FindObjects(h, found.as_mut_ptr(), 1, &mut count)),
        CKR_OK
    );
    assert_eq!(count, 1);
    assert_eq!(
        call!(f, C_FindObjects(h, found.as_mut_ptr(), 1, &mut count)),
        CKR_OK
    );
    assert_eq!(count, 0);
    assert_eq!(
        call!(f, C_FindObjects(h, null_mut(), 1, &mut count)),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(call!(f, C_FindObjectsFinal(h)), CKR_OK);
    assert_eq!(
        call!(f, C_FindObjectsFinal(h)),
        CKR_OPERATION_NOT_INITIALIZED
    );

    // C_Sign: size query keeps the operation, too small keeps it, success ends it.
    let mut raw = CK_MECHANISM {
        mechanism: 0x8000_8000,
        pParameter: null_mut(),
        ulParameterLen: 0,
    };
    let mut e = [7u8; 32];
    let mut sig = [0u8; 80];
    let mut len: CK_ULONG = 0;
    assert_eq!(
        call!(f, C_Sign(h, e.as_mut_ptr(), 32, sig.as_mut_ptr(), &mut len)),
        CKR_OPERATION_NOT_INITIALIZED
    );
    assert_eq!(
        call!(f, C_SignInit(h, &mut raw, pubk)),
        CKR_KEY_FUNCTION_NOT_PERMITTED
    );
    assert_eq!(call!(f, C_SignInit(h, &mut raw, privk)), CKR_OK);
    assert_eq!(
        call!(f, C_SignInit(h, &mut raw, privk)),
        CKR_OPERATION_ACTIVE
    );
    assert_eq!(
        call!(f, C_Sign(h, e.as_mut_ptr(), 32, null_mut(), &mut len)),
        CKR_OK
    );
    assert_eq!(len, 64);
    len = 10;
    assert_eq!(
        call!(f, C_Sign(h, e.as_mut_ptr(), 32, sig.as_mut_ptr(), &mut len)),
        CKR_BUFFER_TOO_SMALL
    );
    assert_eq!(len, 64);
    assert_eq!(
        call!(
            f,
            C_Sign(h, e.as_mut_ptr(), 32, sig.as_mut_ptr(), null_mut())
        ),
        CKR_ARGUMENTS_BAD
    );
    len = 80;
    assert_eq!(
        call!(f, C_Sign(h, null_mut(), 32, sig.as_mut_ptr(), &mut len)),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(call!(f, C_SignInit(h, &mut raw, privk)), CKR_OK);
    assert_eq!(
        call!(f, C_Sign(h, e.as_mut_ptr(), 32, sig.as_mut_ptr(), &mut len)),
        CKR_OK
    );
    assert_eq!(len, 64);
    assert_eq!(
        call!(f, C_Sign(h, e.as_mut_ptr(), 32, sig.as_mut_ptr(), &mut len)),
        CKR_OPERATION_NOT_INITIALIZED
    );
    assert_eq!(call!(f, C_VerifyInit(h, &mut raw, pubk)), CKR_OK);
    assert_eq!(
        call!(f, C_Verify(h, e.as_mut_ptr(), 32, sig.as_mut_ptr(), 64)),
        CKR_OK
    );
    assert_eq!(call!(f, C_VerifyInit(h, &mut raw, pubk)), CKR_OK);
    assert_eq!(
        call!(f, C_Verify(h, e.as_mut_ptr(), 32, sig.as_mut_ptr(), 63)),
        CKR_SIGNATURE_LEN_RANGE
    );
    // Raw SM2 takes no parameter.
    let mut param = *b"id";
    let mut raw_p = CK_MECHANISM {
        mechanism: 0x8000_8000,
        pParameter: param.as_mut_ptr() as *mut _,
        ulParameterLen: 2,
    };
    assert_eq!(
        call!(f, C_SignInit(h, &mut raw_p, privk)),
        CKR_MECHANISM_PARAM_INVALID
    );

    // C_Digest with the TASS SM3 code: size query, too small, result.
    let mut sm3 = CK_MECHANISM {
        mechanism: 0x8000_0005,
        pParameter: null_mut(),
        ulParameterLen: 0,
    };
    let mut abc = *b"abc";
    let mut d = [0u8; 32];
    assert_eq!(call!(f, C_DigestInit(h, &mut sm3)), CKR_OK);
    assert_eq!(
        call!(f, C_Digest(h, abc.as_mut_ptr(), 3, null_mut(), &mut len)),
        CKR_OK
    );
    assert_eq!(len, 32);
    len = 31;
    assert_eq!(
        call!(
            f,
            C_Digest(h, abc.as_mut_ptr(), 3, d.as_mut_ptr(), &mut len)
        ),
        CKR_BUFFER_TOO_SMALL
    );
    len = 32;
    assert_eq!(
        call!(
            f,
            C_Digest(h, abc.as_mut_ptr(), 3, d.as_mut_ptr(), &mut len)
        ),
        CKR_OK
    );
    assert_eq!(
        hex::encode_upper(d),
        "66C7F0F462EEEDD9D1F2D46BDC10E4E24167C4875CF2F7A2297DA02B8F4BA8E0"
    );
    let mut sha = CK_MECHANISM {
        mechanism: CKM_SHA256,
        ..sm3
    };
    assert_eq!(call!(f, C_DigestInit(h, &mut sha)), CKR_MECHANISM_INVALID);

    // Random, unsupported functions, object destruction.
    let mut r = [0u8; 48];
    assert_eq!(call!(f, C_GenerateRandom(h, r.as_mut_ptr(), 48)), CKR_OK);
    assert!(r.iter().any(|b| *b != 0));
    assert_eq!(
        call!(f, C_GenerateRandom(h, null_mut(), 4)),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        call!(f, C_EncryptInit(h, &mut raw, pubk)),
        CKR_FUNCTION_NOT_SUPPORTED
    );
    assert_eq!(
        call!(f, C_GenerateKey(h, &mut kg, null_mut(), 0, &mut pubk)),
        CKR_FUNCTION_NOT_SUPPORTED
    );
    assert_eq!(
        call!(f, C_WaitForSlotEvent(0, null_mut(), null_mut())),
        CKR_FUNCTION_NOT_SUPPORTED
    );
    assert_eq!(
        call!(f, C_DestroyObject(h, 999_999)),
        CKR_OBJECT_HANDLE_INVALID
    );
    assert_eq!(call!(f, C_DestroyObject(h, pubk)), CKR_OK);

    // Session objects vanish with their session.
    let mut class: CK_ULONG = CKO_DATA;
    let mut val = *b"hello";
    let mut data_t = [
        ulong_attr(CKA_CLASS, &mut class),
        CK_ATTRIBUTE {
            type_: CKA_VALUE,
            pValue: val.as_mut_ptr() as *mut _,
            ulValueLen: 5,
        },
    ];
    let mut dobj = 0;
    assert_eq!(
        call!(f, C_CreateObject(h, data_t.as_mut_ptr(), 2, &mut dobj)),
        CKR_OK
    );
    assert_eq!(
        call!(f, C_CreateObject(h, data_t.as_mut_ptr(), 2, null_mut())),
        CKR_ARGUMENTS_BAD
    );
    let mut h2 = 0;
    assert_eq!(
        call!(
            f,
            C_OpenSession(slot, CKF_SERIAL_SESSION, null_mut(), None, &mut h2)
        ),
        CKR_OK
    );
    let mut vq = [CK_ATTRIBUTE {
        type_: CKA_VALUE,
        pValue: null_mut(),
        ulValueLen: 0,
    }];
    assert_eq!(
        call!(f, C_GetAttributeValue(h2, dobj, vq.as_mut_ptr(), 1)),
        CKR_OK
    );
    assert_eq!(vq[0].ulValueLen, 5);
    assert_eq!(call!(f, C_CloseSession(h)), CKR_OK);
    assert_eq!(call!(f, C_CloseSession(h)), CKR_SESSION_HANDLE_INVALID);
    assert_eq!(
        call!(f, C_GetAttributeValue(h2, dobj, vq.as_mut_ptr(), 1)),
        CKR_OBJECT_HANDLE_INVALID
    );
    // The login belongs to the token: the other session keeps it until the last one closes.
    assert_eq!(call!(f, C_GetSessionInfo(h2, &mut si)), CKR_OK);
    assert_eq!(si.state, CKS_RO_USER_FUNCTIONS);
    assert_eq!(call!(f, C_CloseAllSessions(slot)), CKR_OK);
    assert_eq!(
        call!(f, C_GetSessionInfo(h2, &mut si)),
        CKR_SESSION_HANDLE_INVALID
    );
    assert_eq!(
        call!(
            f,
            C_OpenSession(slot, CKF_SERIAL_SESSION, null_mut(), None, &mut h2)
        ),
        CKR_OK
    );
    assert_eq!(call!(f, C_GetSessionInfo(h2, &mut si)), CKR_OK);
    assert_eq!(si.state, CKS_RO_PUBLIC_SESSION);

    assert_eq!(
        call!(f, C_Finalize(std::ptr::dangling_mut())),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(call!(f, C_Finalize(null_mut())), CKR_OK);
    assert_eq!(
        call!(f, C_GetSlotList(CK_TRUE, null_mut(), &mut n)),
        CKR_CRYPTOKI_NOT_INITIALIZED
    );
}
