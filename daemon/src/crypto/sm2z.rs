//! SM2 user identity hash Z_A (GB/T 32918.2 §5.5) and the signed digest e = SM3(Z_A ‖ M).

use sm3::{Digest, Sm3};

/// The default SM2 user ID (GM/T 0009): `1234567812345678`.
pub const DEFAULT_USER_ID: &[u8] = b"1234567812345678";

/// SM2 curve coefficient a.
const A: [u8; 32] = hex32("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC");
/// SM2 curve coefficient b.
const B: [u8; 32] = hex32("28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93");
/// Base point x.
const GX: [u8; 32] = hex32("32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7");
/// Base point y.
const GY: [u8; 32] = hex32("BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0");

const fn hex32(s: &str) -> [u8; 32] {
    let b = s.as_bytes();
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = (nibble(b[2 * i]) << 4) | nibble(b[2 * i + 1]);
        i += 1;
    }
    out
}

const fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'A'..=b'F' => c - b'A' + 10,
        _ => panic!("bad hex constant"),
    }
}

/// Why Z could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZError {
    /// ENTL is a 16-bit count of bits, so the ID must be shorter than 8192 bytes.
    #[error("SM2 user ID is {0} bytes; at most 8191 are allowed")]
    IdTooLong(usize),
}

/// Z_A = SM3(ENTL ‖ ID ‖ a ‖ b ‖ xG ‖ yG ‖ xA ‖ yA) for an uncompressed point `04 ‖ x ‖ y`.
pub fn z_a(point: &[u8; 65], user_id: &[u8]) -> Result<[u8; 32], ZError> {
    let bits = user_id
        .len()
        .checked_mul(8)
        .and_then(|b| u16::try_from(b).ok())
        .ok_or(ZError::IdTooLong(user_id.len()))?;
    let mut h = Sm3::new();
    h.update(bits.to_be_bytes());
    h.update(user_id);
    h.update(A);
    h.update(B);
    h.update(GX);
    h.update(GY);
    h.update(&point[1..33]);
    h.update(&point[33..65]);
    Ok(h.finalize().into())
}

/// e = SM3(Z ‖ M).
pub fn e_digest(z: &[u8; 32], message: &[u8]) -> [u8; 32] {
    let mut h = Sm3::new();
    h.update(z);
    h.update(message);
    h.finalize().into()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// GB/T 32918.5 Annex A public key for d = 3945208F…C5B8.
    pub(crate) fn annex_a_point() -> [u8; 65] {
        let d = hex::decode("3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8")
            .unwrap();
        let sk = sm2::SecretKey::from_slice(&d).unwrap();
        use sm2::elliptic_curve::sec1::ToEncodedPoint;
        sk.public_key()
            .to_encoded_point(false)
            .as_bytes()
            .try_into()
            .unwrap()
    }

    #[test]
    fn annex_a_z_and_e() {
        let point = annex_a_point();
        let z = z_a(&point, DEFAULT_USER_ID).unwrap();
        assert_eq!(
            hex::encode_upper(z),
            "B2E14C5C79C6DF5B85F4FE7ED8DB7A262B9DA7E07CCB0EA9F4747B8CCDA8A4F3"
        );
        let e = e_digest(&z, b"message digest");
        assert_eq!(
            hex::encode_upper(e),
            "F0B43E94BA45ACCAACE692ED534382EB17E6AB5A19CE7B31F4486FDFC0D28640"
        );
        // Another ID gives another Z.
        assert_ne!(z_a(&point, b"ALICE123@YAHOO.COM").unwrap(), z);
    }

    #[test]
    fn overlong_id_is_refused() {
        let point = annex_a_point();
        assert_eq!(z_a(&point, &vec![0u8; 8192]), Err(ZError::IdTooLong(8192)));
        assert!(z_a(&point, &vec![0u8; 8191]).is_ok());
    }
}
