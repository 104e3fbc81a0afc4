//! Reading EC public keys from PKCS#11 attributes (CKA_EC_PARAMS, CKA_EC_POINT).

use crate::crypto::{KeyAlgorithm, PublicKey};

/// DER OID of NIST P-256 (1.2.840.10045.3.1.7).
pub const P256_OID_DER: [u8; 10] = [0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
/// DER OID of the SM2 curve (1.2.156.10197.1.301).
pub const SM2_OID_DER: [u8; 10] = [0x06, 0x08, 0x2A, 0x81, 0x1C, 0xCF, 0x55, 0x01, 0x82, 0x2D];

/// The curve named by CKA_EC_PARAMS, if it is one seald signs with.
pub fn curve_from_params(params: &[u8]) -> Option<KeyAlgorithm> {
    match params {
        p if p == P256_OID_DER => Some(KeyAlgorithm::P256),
        p if p == SM2_OID_DER => Some(KeyAlgorithm::Sm2),
        _ => None,
    }
}

/// Reads CKA_EC_POINT: a DER OCTET STRING around `04‖x‖y` (the standard) or the bare point
/// (what some vendors return).
pub fn point_from_attribute(value: &[u8]) -> Result<[u8; 65], String> {
    let point = match value {
        [0x04, 0x41, rest @ ..] if rest.len() == 65 => rest,
        [0x04, ..] if value.len() == 65 => value,
        _ => {
            return Err(format!(
                "CKA_EC_POINT is neither an uncompressed point nor an OCTET STRING around one ({} bytes)",
                value.len()
            ))
        }
    };
    let mut out = [0u8; 65];
    out.copy_from_slice(point);
    Ok(out)
}

/// Builds a [`PublicKey`] from the two attributes.
pub fn public_key(algorithm: KeyAlgorithm, ec_point: &[u8]) -> Result<PublicKey, String> {
    Ok(PublicKey {
        algorithm,
        point: point_from_attribute(ec_point)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrapped_and_bare_points() {
        let mut bare = vec![0x04];
        bare.extend(1..=64u8);
        let mut wrapped = vec![0x04, 0x41];
        wrapped.extend(&bare);
        assert_eq!(point_from_attribute(&bare).unwrap().to_vec(), bare);
        assert_eq!(point_from_attribute(&wrapped).unwrap().to_vec(), bare);
        assert!(point_from_attribute(&bare[..40]).is_err());
        assert!(
            point_from_attribute(&[0x03; 33]).is_err(),
            "compressed points are refused"
        );
    }

    #[test]
    fn knows_both_curves() {
        assert_eq!(curve_from_params(&P256_OID_DER), Some(KeyAlgorithm::P256));
        assert_eq!(curve_from_params(&SM2_OID_DER), Some(KeyAlgorithm::Sm2));
        assert_eq!(
            curve_from_params(&[0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22]),
            None
        );
    }
}
