//! SM2/SM3 primitives, encodings, and the PIN-wrapped token key.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use rand_core::{OsRng, RngCore};
use sm2::dsa::{Signature, SigningKey, VerifyingKey};
use sm2::elliptic_curve::sec1::ToEncodedPoint;
use sm2::{PublicKey, SecretKey};
use sm3::{Digest, Sm3};
use zeroize::Zeroizing;

use crate::profile::SigEncoding;

/// Default SM2 user ID (GM/T 0009).
pub const DEFAULT_ID: &[u8] = b"1234567812345678";
/// DER of the SM2 curve OID 1.2.156.10197.1.301 (CKA_EC_PARAMS).
pub const SM2_EC_PARAMS: &[u8] = &[0x06, 0x08, 0x2A, 0x81, 0x1C, 0xCF, 0x55, 0x01, 0x82, 0x2D];
/// PBKDF2 rounds for PIN wrapping keys.
const KDF_ROUNDS: u32 = 10_000;

/// Curve constants a, b, xG, yG (GB/T 32918.5).
const CURVE: [&str; 4] = [
    "FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC",
    "28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93",
    "32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7",
    "BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0",
];

/// SM3 of `data`.
pub fn sm3(data: &[u8]) -> [u8; 32] {
    Sm3::digest(data).into()
}

/// Z = SM3(ENTL ‖ ID ‖ a ‖ b ‖ xG ‖ yG ‖ xA ‖ yA); `point` is 04‖x‖y.
pub fn z_value(id: &[u8], point: &[u8]) -> Option<[u8; 32]> {
    if point.len() != 65 || point[0] != 4 || id.len() > 8191 {
        return None;
    }
    let mut h = Sm3::new();
    h.update(((id.len() * 8) as u16).to_be_bytes());
    h.update(id);
    for c in CURVE {
        h.update(hex::decode(c).ok()?);
    }
    h.update(&point[1..]);
    Some(h.finalize().into())
}

/// e = SM3(Z ‖ M).
pub fn e_value(id: &[u8], point: &[u8], msg: &[u8]) -> Option<[u8; 32]> {
    let z = z_value(id, point)?;
    let mut h = Sm3::new();
    h.update(z);
    h.update(msg);
    Some(h.finalize().into())
}

/// A fresh SM2 key pair: (d, 04‖x‖y).
pub fn generate() -> (Zeroizing<Vec<u8>>, Vec<u8>) {
    let sk = SecretKey::random(&mut OsRng);
    let point = sk.public_key().to_encoded_point(false).as_bytes().to_vec();
    (Zeroizing::new(sk.to_bytes().to_vec()), point)
}

/// Public point 04‖x‖y of a private scalar, or None if the scalar is invalid.
pub fn public_of(d: &[u8]) -> Option<Vec<u8>> {
    let sk = SecretKey::from_slice(d).ok()?;
    Some(sk.public_key().to_encoded_point(false).as_bytes().to_vec())
}

/// Signs a 32-byte e with d (random k); returns r‖s.
pub fn sign_e(d: &[u8], e: &[u8]) -> Option<[u8; 64]> {
    let sk = SecretKey::from_slice(d).ok()?;
    let key = SigningKey::new("1234567812345678", &sk).ok()?;
    let sig: Signature =
        signature::hazmat::RandomizedPrehashSigner::sign_prehash_with_rng(&key, &mut OsRng, e)
            .ok()?;
    Some(sig.to_bytes())
}

/// Verifies r‖s over a 32-byte e with the point 04‖x‖y.
pub fn verify_e(point: &[u8], e: &[u8], rs: &[u8]) -> bool {
    let Ok(pk) = PublicKey::from_sec1_bytes(point) else {
        return false;
    };
    let Ok(vk) = VerifyingKey::new("1234567812345678", pk) else {
        return false;
    };
    let Ok(sig) = Signature::from_slice(rs) else {
        return false;
    };
    signature::hazmat::PrehashVerifier::verify_prehash(&vk, e, &sig).is_ok()
}

/// Encodes r‖s in the profile's encoding.
pub fn encode_sig(rs: &[u8; 64], enc: SigEncoding) -> Vec<u8> {
    match enc {
        SigEncoding::Raw => rs.to_vec(),
        SigEncoding::Der => der_sig(rs),
    }
}

/// DER SEQUENCE { INTEGER r, INTEGER s } from r‖s.
pub fn der_sig(rs: &[u8; 64]) -> Vec<u8> {
    let mut body = Vec::with_capacity(72);
    for half in [&rs[..32], &rs[32..]] {
        let mut v: &[u8] = half;
        while v.len() > 1 && v[0] == 0 {
            v = &v[1..];
        }
        let pad = v[0] & 0x80 != 0;
        body.push(0x02);
        body.push((v.len() + pad as usize) as u8);
        if pad {
            body.push(0);
        }
        body.extend_from_slice(v);
    }
    let mut out = vec![0x30, body.len() as u8];
    out.extend(body);
    out
}

/// r‖s from raw 64 bytes or a strict-enough DER SEQUENCE of two INTEGERs.
pub fn decode_sig(sig: &[u8]) -> Option<[u8; 64]> {
    if sig.len() == 64 {
        return sig.try_into().ok();
    }
    if sig.len() < 8 || sig[0] != 0x30 || sig[1] as usize != sig.len() - 2 {
        return None;
    }
    let mut out = [0u8; 64];
    let mut rest = &sig[2..];
    for i in 0..2 {
        if rest.len() < 2 || rest[0] != 0x02 {
            return None;
        }
        let len = rest[1] as usize;
        let val = rest.get(2..2 + len)?;
        rest = &rest[2 + len..];
        let v = if val.len() == 33 && val[0] == 0 {
            &val[1..]
        } else {
            val
        };
        if v.is_empty() || v.len() > 32 {
            return None;
        }
        out[i * 32 + 32 - v.len()..(i + 1) * 32].copy_from_slice(v);
    }
    rest.is_empty().then_some(out)
}

/// DER OCTET STRING wrapping 04‖x‖y (CKA_EC_POINT).
pub fn ec_point_attr(point: &[u8]) -> Vec<u8> {
    let mut v = vec![0x04, point.len() as u8];
    v.extend_from_slice(point);
    v
}

/// 04‖x‖y from CKA_EC_POINT (DER-wrapped or bare).
pub fn point_from_attr(attr: &[u8]) -> Option<Vec<u8>> {
    match attr.len() {
        65 if attr[0] == 4 => Some(attr.to_vec()),
        67 if attr[0] == 4 && attr[1] == 65 && attr[2] == 4 => Some(attr[2..].to_vec()),
        _ => None,
    }
}

/// Random bytes from the OS.
pub fn random(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    OsRng.fill_bytes(&mut v);
    v
}

/// A secret sealed with AES-256-GCM.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Sealed {
    /// 12-byte nonce.
    pub nonce: Vec<u8>,
    /// Ciphertext with tag.
    pub ct: Vec<u8>,
}

/// The token key wrapped under a PIN (PBKDF2-HMAC-SHA256 + AES-256-GCM).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Wrapped {
    /// KDF salt.
    pub salt: Vec<u8>,
    /// Sealed token key.
    pub key: Sealed,
}

/// Seals `plain` under a 32-byte key; `aad` binds it to its context.
pub fn seal(key: &[u8], plain: &[u8], aad: &[u8]) -> Sealed {
    let nonce = random(12);
    let ct = Aes256Gcm::new_from_slice(key)
        .ok()
        .and_then(|c| {
            c.encrypt(
                &nonce12(&nonce)?,
                aes_gcm::aead::Payload { msg: plain, aad },
            )
            .ok()
        })
        .unwrap_or_default();
    Sealed { nonce, ct }
}

/// Opens a sealed secret; None if the key is wrong or data was altered.
pub fn open(key: &[u8], s: &Sealed, aad: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if s.nonce.len() != 12 || key.len() != 32 {
        return None;
    }
    let cipher = Aes256Gcm::new_from_slice(key).ok()?;
    cipher
        .decrypt(
            &nonce12(&s.nonce)?,
            aes_gcm::aead::Payload { msg: &s.ct, aad },
        )
        .ok()
        .map(Zeroizing::new)
}

fn nonce12(n: &[u8]) -> Option<Nonce<aes_gcm::aead::consts::U12>> {
    let a: [u8; 12] = n.try_into().ok()?;
    Some(Nonce::from(a))
}

fn pin_key(pin: &[u8], salt: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut k = Zeroizing::new([0u8; 32]);
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(pin, salt, KDF_ROUNDS, &mut *k);
    k
}

/// Wraps the token key under a PIN.
pub fn wrap(token_key: &[u8], pin: &[u8]) -> Wrapped {
    let salt = random(16);
    let k = pin_key(pin, &salt);
    Wrapped {
        key: seal(&*k, token_key, b"hsm-sim token key"),
        salt,
    }
}

/// Unwraps the token key; None means a wrong PIN.
pub fn unwrap(w: &Wrapped, pin: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let k = pin_key(pin, &w.salt);
    open(&*k, &w.key, b"hsm-sim token key")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_signature_round_trip_and_rejects() {
        let mut rs = [0u8; 64];
        rs[0] = 0x80; // r needs a leading zero in DER
        rs[33] = 0x01; // s has leading zeros to strip
        rs[63] = 0x7f;
        let der = der_sig(&rs);
        assert_eq!(der[0], 0x30);
        assert_eq!(&der[2..5], &[0x02, 33, 0x00]);
        assert_eq!(decode_sig(&der), Some(rs));
        assert_eq!(decode_sig(&rs), Some(rs));
        assert_eq!(decode_sig(&der[..der.len() - 1]), None);
        let mut trailing = der.clone();
        trailing.push(0);
        assert_eq!(decode_sig(&trailing), None);
    }

    #[test]
    fn z_of_the_standard_vector() {
        let d = hex::decode("3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8")
            .unwrap();
        let point = public_of(&d).unwrap();
        let z = z_value(DEFAULT_ID, &point).unwrap();
        assert_eq!(
            hex::encode_upper(z),
            "B2E14C5C79C6DF5B85F4FE7ED8DB7A262B9DA7E07CCB0EA9F4747B8CCDA8A4F3"
        );
        let e = e_value(DEFAULT_ID, &point, b"message digest").unwrap();
        assert_eq!(
            hex::encode_upper(e),
            "F0B43E94BA45ACCAACE692ED534382EB17E6AB5A19CE7B31F4486FDFC0D28640"
        );
        assert!(z_value(DEFAULT_ID, &point[1..]).is_none());
    }

    #[test]
    fn wrapped_token_key_opens_only_with_its_pin() {
        let key = random(32);
        let w = wrap(&key, b"123456");
        assert_eq!(unwrap(&w, b"123456").as_deref(), Some(&key));
        assert!(unwrap(&w, b"123457").is_none());
        let s = seal(&key, b"secret", b"ctx");
        assert!(open(&key, &s, b"other").is_none());
        assert_eq!(
            open(&key, &s, b"ctx").as_deref().map(|v| v.as_slice()),
            Some(&b"secret"[..])
        );
    }
}
