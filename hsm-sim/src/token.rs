//! Token rules on a slot's state: initialisation, PINs with retry counters, objects.
//! Shared by the PKCS#11 module and the CLI; errors are PKCS#11 return values.

use cryptoki_sys::*;
use std::collections::BTreeMap;
use zeroize::Zeroizing;

use crate::config::TokenSettings;
use crate::crypto;
use crate::store::{Obj, SlotState, TokenData};

/// Result with a PKCS#11 return value as error.
pub type Rv<T> = Result<T, CK_RV>;

/// CK_ULONG attribute bytes.
pub fn ulong(v: CK_ULONG) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

/// CK_BBOOL attribute bytes.
pub fn bool_attr(v: bool) -> Vec<u8> {
    vec![v as u8]
}

/// Reads a CK_ULONG attribute.
pub fn get_ulong(attrs: &BTreeMap<u64, Vec<u8>>, t: CK_ATTRIBUTE_TYPE) -> Option<CK_ULONG> {
    let v = attrs.get(&t)?;
    Some(CK_ULONG::from_ne_bytes(v.as_slice().try_into().ok()?))
}

/// Reads a CK_BBOOL attribute.
pub fn get_bool(attrs: &BTreeMap<u64, Vec<u8>>, t: CK_ATTRIBUTE_TYPE) -> Option<bool> {
    attrs.get(&t).and_then(|v| v.first()).map(|b| *b != 0)
}

/// Which PIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// CKU_USER.
    User,
    /// CKU_SO.
    So,
}

fn check_len(pin: &[u8], s: &TokenSettings) -> Rv<()> {
    if pin.len() < s.min_pin_len || pin.len() > s.max_pin_len {
        return Err(CKR_PIN_LEN_RANGE);
    }
    Ok(())
}

/// Initializes (or re-initializes, given the right SO PIN) the token; wipes all objects.
pub fn init_token(st: &mut SlotState, so_pin: &[u8], label: &str, s: &TokenSettings) -> Rv<()> {
    if !st.present {
        return Err(CKR_TOKEN_NOT_PRESENT);
    }
    if st.token.is_some() {
        verify_pin(st, Who::So, so_pin, s)?;
    } else {
        check_len(so_pin, s)?;
    }
    let key = Zeroizing::new(crypto::random(32));
    st.token = Some(TokenData {
        label: label.chars().take(32).collect(),
        so_wrap: crypto::wrap(&key, so_pin),
        user_wrap: None,
        user_fails: 0,
        so_fails: 0,
        next_handle: 1,
        objects: Vec::new(),
    });
    Ok(())
}

/// Checks a PIN, counting failures; returns the token key.
pub fn verify_pin(
    st: &mut SlotState,
    who: Who,
    pin: &[u8],
    s: &TokenSettings,
) -> Rv<Zeroizing<Vec<u8>>> {
    let t = st.token.as_mut().ok_or(CKR_TOKEN_NOT_RECOGNIZED)?;
    let (fails, max, wrap) = match who {
        Who::User => (
            &mut t.user_fails,
            s.user_pin_max_tries,
            t.user_wrap.as_ref(),
        ),
        Who::So => (&mut t.so_fails, s.so_pin_max_tries, Some(&t.so_wrap)),
    };
    let wrap = wrap.ok_or(CKR_USER_PIN_NOT_INITIALIZED)?;
    if *fails >= max {
        return Err(CKR_PIN_LOCKED);
    }
    if pin.len() < s.min_pin_len || pin.len() > s.max_pin_len {
        return Err(CKR_PIN_LEN_RANGE);
    }
    match crypto::unwrap(wrap, pin) {
        Some(k) => {
            *fails = 0;
            Ok(k)
        }
        None => {
            *fails += 1;
            Err(if *fails >= max {
                CKR_PIN_LOCKED
            } else {
                CKR_PIN_INCORRECT
            })
        }
    }
}

/// C_InitPIN: sets the user PIN (SO logged in, holding the token key); unblocks.
pub fn init_pin(st: &mut SlotState, key: &[u8], pin: &[u8], s: &TokenSettings) -> Rv<()> {
    check_len(pin, s)?;
    let t = st.token.as_mut().ok_or(CKR_TOKEN_NOT_RECOGNIZED)?;
    check_key(t, key)?;
    t.user_wrap = Some(crypto::wrap(key, pin));
    t.user_fails = 0;
    Ok(())
}

/// C_SetPIN: checks the old PIN of `who`, re-wraps the token key under the new one.
pub fn set_pin(st: &mut SlotState, who: Who, old: &[u8], new: &[u8], s: &TokenSettings) -> Rv<()> {
    let key = verify_pin(st, who, old, s)?;
    check_len(new, s)?;
    let t = st.token.as_mut().ok_or(CKR_TOKEN_NOT_RECOGNIZED)?;
    let w = crypto::wrap(&key, new);
    match who {
        Who::User => t.user_wrap = Some(w),
        Who::So => t.so_wrap = w,
    }
    Ok(())
}

/// A cached token key is stale if the token was re-initialized meanwhile.
fn check_key(t: &TokenData, key: &[u8]) -> Rv<()> {
    // Opening any sealed private key proves the key (cheaper than a PBKDF2 trial unwrap).
    if let Some(sec) = t.objects.iter().find_map(|o| o.secret.as_ref()) {
        crypto::open(key, sec, b"hsm-sim private key").ok_or(CKR_USER_NOT_LOGGED_IN)?;
    }
    Ok(())
}

/// Token flags for C_GetTokenInfo.
pub fn token_flags(st: &SlotState, s: &TokenSettings) -> CK_FLAGS {
    let mut f = CKF_RNG | CKF_LOGIN_REQUIRED;
    let Some(t) = &st.token else { return f };
    f |= CKF_TOKEN_INITIALIZED;
    if t.user_wrap.is_some() {
        f |= CKF_USER_PIN_INITIALIZED;
    }
    let pin_flags = |fails: u32, max: u32, low, last, locked| {
        if fails >= max {
            locked
        } else if fails + 1 == max {
            low | last
        } else if fails > 0 {
            low
        } else {
            0
        }
    };
    f |= pin_flags(
        t.user_fails,
        s.user_pin_max_tries,
        CKF_USER_PIN_COUNT_LOW,
        CKF_USER_PIN_FINAL_TRY,
        CKF_USER_PIN_LOCKED,
    );
    f |= pin_flags(
        t.so_fails,
        s.so_pin_max_tries,
        CKF_SO_PIN_COUNT_LOW,
        CKF_SO_PIN_FINAL_TRY,
        CKF_SO_PIN_LOCKED,
    );
    f
}

/// Object class.
pub fn class(o: &Obj) -> Option<CK_OBJECT_CLASS> {
    get_ulong(&o.attrs, CKA_CLASS)
}

/// Whether an object needs a user login to be seen.
pub fn is_private(o: &Obj) -> bool {
    get_bool(&o.attrs, CKA_PRIVATE).unwrap_or(class(o) == Some(CKO_PRIVATE_KEY))
}

/// Whether every template attribute matches the object.
pub fn matches(o: &Obj, tmpl: &[(u64, Vec<u8>)]) -> bool {
    tmpl.iter().all(|(t, v)| o.attrs.get(t) == Some(v))
}

/// Builds a new SM2 key pair's two objects (private sealed under `key`).
pub fn keypair_objects(
    key: &[u8],
    key_type: CK_KEY_TYPE,
    mech: CK_MECHANISM_TYPE,
    pub_tmpl: &[(u64, Vec<u8>)],
    priv_tmpl: &[(u64, Vec<u8>)],
) -> Rv<(Obj, Obj)> {
    for (t, v) in pub_tmpl.iter().chain(priv_tmpl) {
        match *t {
            CKA_EC_PARAMS if v != crypto::SM2_EC_PARAMS => return Err(CKR_ATTRIBUTE_VALUE_INVALID),
            CKA_KEY_TYPE if v != &ulong(key_type) => return Err(CKR_TEMPLATE_INCONSISTENT),
            CKA_SENSITIVE if v.first() == Some(&0) => return Err(CKR_ATTRIBUTE_VALUE_INVALID),
            CKA_EXTRACTABLE if v.first() == Some(&1) => return Err(CKR_ATTRIBUTE_VALUE_INVALID),
            CKA_VALUE | CKA_EC_POINT | CKA_CLASS => return Err(CKR_TEMPLATE_INCONSISTENT),
            _ => {}
        }
    }
    let (d, point) = crypto::generate();
    let common = |class: CK_OBJECT_CLASS| {
        let mut a = BTreeMap::new();
        a.insert(CKA_CLASS, ulong(class));
        a.insert(CKA_KEY_TYPE, ulong(key_type));
        a.insert(CKA_TOKEN, bool_attr(true));
        a.insert(CKA_MODIFIABLE, bool_attr(true));
        a.insert(CKA_LOCAL, bool_attr(true));
        a.insert(CKA_KEY_GEN_MECHANISM, ulong(mech));
        a.insert(CKA_EC_PARAMS, crypto::SM2_EC_PARAMS.to_vec());
        a.insert(CKA_ID, Vec::new());
        a.insert(CKA_LABEL, Vec::new());
        a.insert(CKA_DERIVE, bool_attr(false));
        a
    };
    let mut pubk = common(CKO_PUBLIC_KEY);
    pubk.insert(CKA_PRIVATE, bool_attr(false));
    pubk.insert(CKA_VERIFY, bool_attr(true));
    pubk.insert(CKA_ENCRYPT, bool_attr(false));
    pubk.insert(CKA_WRAP, bool_attr(false));
    pubk.insert(CKA_EC_POINT, crypto::ec_point_attr(&point));
    pubk.extend(pub_tmpl.iter().cloned());
    let mut privk = common(CKO_PRIVATE_KEY);
    privk.insert(CKA_PRIVATE, bool_attr(true));
    privk.insert(CKA_SIGN, bool_attr(true));
    privk.insert(CKA_DECRYPT, bool_attr(false));
    privk.insert(CKA_UNWRAP, bool_attr(false));
    privk.insert(CKA_SENSITIVE, bool_attr(true));
    privk.insert(CKA_ALWAYS_SENSITIVE, bool_attr(true));
    privk.insert(CKA_EXTRACTABLE, bool_attr(false));
    privk.insert(CKA_NEVER_EXTRACTABLE, bool_attr(true));
    privk.insert(CKA_ALWAYS_AUTHENTICATE, bool_attr(false));
    privk.extend(priv_tmpl.iter().cloned());
    let secret = crypto::seal(key, &d, b"hsm-sim private key");
    Ok((
        Obj {
            handle: 0,
            attrs: pubk,
            secret: None,
            point: None,
        },
        Obj {
            handle: 0,
            attrs: privk,
            secret: Some(secret),
            point: Some(point),
        },
    ))
}

/// Builds an object from a C_CreateObject template (SM2 keys, certificates, data).
pub fn object_from_template(
    key: Option<&[u8]>,
    key_type: CK_KEY_TYPE,
    tmpl: &[(u64, Vec<u8>)],
) -> Rv<Obj> {
    let mut attrs: BTreeMap<u64, Vec<u8>> = tmpl.iter().cloned().collect();
    let class = get_ulong(&attrs, CKA_CLASS).ok_or(CKR_TEMPLATE_INCOMPLETE)?;
    attrs.entry(CKA_TOKEN).or_insert(bool_attr(false));
    attrs.entry(CKA_MODIFIABLE).or_insert(bool_attr(true));
    attrs.entry(CKA_LABEL).or_default();
    let mut obj = Obj {
        handle: 0,
        attrs,
        secret: None,
        point: None,
    };
    match class {
        CKO_CERTIFICATE => {
            obj.attrs
                .entry(CKA_CERTIFICATE_TYPE)
                .or_insert(ulong(CKC_X_509));
            obj.attrs.entry(CKA_PRIVATE).or_insert(bool_attr(false));
            obj.attrs.entry(CKA_ID).or_default();
            obj.attrs.entry(CKA_SUBJECT).or_default();
            if !obj.attrs.contains_key(&CKA_VALUE) {
                return Err(CKR_TEMPLATE_INCOMPLETE);
            }
        }
        CKO_DATA => {
            obj.attrs.entry(CKA_PRIVATE).or_insert(bool_attr(false));
            obj.attrs.entry(CKA_VALUE).or_default();
        }
        CKO_PUBLIC_KEY => {
            check_sm2(&obj, key_type)?;
            let pt = obj
                .attrs
                .get(&CKA_EC_POINT)
                .and_then(|p| crypto::point_from_attr(p));
            let pt = pt.ok_or(CKR_ATTRIBUTE_VALUE_INVALID)?;
            obj.attrs.insert(CKA_EC_POINT, crypto::ec_point_attr(&pt));
            obj.attrs.entry(CKA_PRIVATE).or_insert(bool_attr(false));
            obj.attrs.entry(CKA_VERIFY).or_insert(bool_attr(true));
            obj.attrs.entry(CKA_ID).or_default();
            obj.attrs.insert(CKA_LOCAL, bool_attr(false));
        }
        CKO_PRIVATE_KEY => {
            check_sm2(&obj, key_type)?;
            let d = Zeroizing::new(
                obj.attrs
                    .remove(&CKA_VALUE)
                    .ok_or(CKR_TEMPLATE_INCOMPLETE)?,
            );
            let point = crypto::public_of(&d).ok_or(CKR_ATTRIBUTE_VALUE_INVALID)?;
            let key = key.ok_or(CKR_USER_NOT_LOGGED_IN)?;
            if get_bool(&obj.attrs, CKA_SENSITIVE) == Some(false)
                || get_bool(&obj.attrs, CKA_EXTRACTABLE) == Some(true)
            {
                return Err(CKR_ATTRIBUTE_VALUE_INVALID);
            }
            obj.secret = Some(crypto::seal(key, &d, b"hsm-sim private key"));
            obj.point = Some(point);
            obj.attrs.insert(CKA_PRIVATE, bool_attr(true));
            obj.attrs.insert(CKA_SENSITIVE, bool_attr(true));
            obj.attrs.insert(CKA_EXTRACTABLE, bool_attr(false));
            obj.attrs.insert(CKA_ALWAYS_SENSITIVE, bool_attr(false));
            obj.attrs.insert(CKA_NEVER_EXTRACTABLE, bool_attr(false));
            obj.attrs.insert(CKA_ALWAYS_AUTHENTICATE, bool_attr(false));
            obj.attrs.insert(CKA_LOCAL, bool_attr(false));
            obj.attrs.entry(CKA_SIGN).or_insert(bool_attr(true));
            obj.attrs.entry(CKA_ID).or_default();
        }
        _ => return Err(CKR_ATTRIBUTE_VALUE_INVALID),
    }
    Ok(obj)
}

fn check_sm2(o: &Obj, key_type: CK_KEY_TYPE) -> Rv<()> {
    if get_ulong(&o.attrs, CKA_KEY_TYPE) != Some(key_type) {
        return Err(CKR_TEMPLATE_INCONSISTENT);
    }
    match o.attrs.get(&CKA_EC_PARAMS) {
        Some(p) if p == crypto::SM2_EC_PARAMS => Ok(()),
        None => Err(CKR_TEMPLATE_INCOMPLETE),
        Some(_) => Err(CKR_ATTRIBUTE_VALUE_INVALID),
    }
}

/// Attributes a caller may not change.
pub fn read_only(o: &Obj, t: CK_ATTRIBUTE_TYPE, v: &[u8]) -> bool {
    match t {
        CKA_CLASS
        | CKA_KEY_TYPE
        | CKA_LOCAL
        | CKA_KEY_GEN_MECHANISM
        | CKA_ALWAYS_SENSITIVE
        | CKA_NEVER_EXTRACTABLE
        | CKA_EC_PARAMS
        | CKA_EC_POINT
        | CKA_TOKEN
        | CKA_PRIVATE => true,
        CKA_VALUE => class(o) != Some(CKO_DATA),
        CKA_SENSITIVE => v.first() == Some(&0),
        CKA_EXTRACTABLE => v.first() == Some(&1),
        _ => false,
    }
}

/// Inserts an object into the token, assigning a persistent handle.
pub fn add_object(t: &mut TokenData, mut o: Obj) -> u64 {
    o.handle = t.next_handle;
    t.next_handle += 1;
    let h = o.handle;
    t.objects.push(o);
    h
}
