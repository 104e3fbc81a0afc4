//! PKCS#10 certification requests (RFC 2986) signed on the device: SM2-with-SM3 (e over Z with
//! the default ID `1234567812345678`) or ecdsa-with-SHA256.

use crate::cert::{OID_EC_PUBLIC_KEY, OID_P256_CURVE, OID_SM2_CURVE};
use crate::crypto::{KeyAlgorithm, PrehashSigner, PublicKey, VerifyingKey};
use crate::ses::der::{tag, write};

/// The subject of a request. `O` and `CN` are required; `OU` and `C` optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subject {
    /// Country, two letters (`CN`).
    pub country: Option<String>,
    /// Organisation: the legal name the seal carries.
    pub organisation: String,
    /// Organisational unit.
    pub unit: Option<String>,
    /// Common name.
    pub common_name: String,
}

/// Why a request could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CsrError {
    /// A subject field is empty or malformed.
    #[error("subject: {0}")]
    Subject(String),
    /// The device refused to sign.
    #[error("the device could not sign the request: {0}")]
    Sign(String),
    /// The device's signature does not verify with the key's public half.
    #[error("the device's signature over the request does not verify with the key's public half; the token may be faulty")]
    BadSignature,
}

fn oid(dotted: &str) -> Vec<u8> {
    write::oid(dotted).unwrap_or_else(|| unreachable!("constant OID {dotted}"))
}

impl Subject {
    /// The DER Name, in the order C, O, OU, CN.
    pub fn to_der(&self) -> Result<Vec<u8>, CsrError> {
        if self.organisation.trim().is_empty() {
            return Err(CsrError::Subject(
                "the organisation (O) must not be empty".into(),
            ));
        }
        if self.common_name.trim().is_empty() {
            return Err(CsrError::Subject(
                "the common name (CN) must not be empty".into(),
            ));
        }
        let rdn = |attr: &str, value: Vec<u8>| {
            write::constructed(tag::SET, &[&write::seq(&[&oid(attr), &value])])
        };
        let mut rdns = Vec::new();
        if let Some(c) = &self.country {
            if c.len() != 2 || !c.chars().all(|ch| ch.is_ascii_uppercase()) {
                return Err(CsrError::Subject(format!(
                    "the country (C) must be two capital letters such as CN, not `{c}`"
                )));
            }
            rdns.push(rdn("2.5.4.6", write::printable(c)));
        }
        rdns.push(rdn("2.5.4.10", write::utf8(&self.organisation)));
        if let Some(ou) = self.unit.as_deref().filter(|u| !u.trim().is_empty()) {
            rdns.push(rdn("2.5.4.11", write::utf8(ou)));
        }
        rdns.push(rdn("2.5.4.3", write::utf8(&self.common_name)));
        let parts: Vec<&[u8]> = rdns.iter().map(Vec::as_slice).collect();
        Ok(write::seq(&parts))
    }
}

/// SubjectPublicKeyInfo of an EC key (id-ecPublicKey with the curve's OID).
pub fn spki(key: &PublicKey) -> Vec<u8> {
    let curve = match key.algorithm {
        KeyAlgorithm::Sm2 => OID_SM2_CURVE,
        KeyAlgorithm::P256 => OID_P256_CURVE,
    };
    write::seq(&[
        &write::seq(&[&oid(OID_EC_PUBLIC_KEY), &oid(curve)]),
        &write::bits(&key.point),
    ])
}

/// Builds the request for `signer`'s key, has the signer (the device) sign the DER of the
/// CertificationRequestInfo, checks the signature in software, and returns the request's DER.
pub fn build_csr(subject: &Subject, signer: &dyn PrehashSigner) -> Result<Vec<u8>, CsrError> {
    let public = signer.public_key();
    let info = write::seq(&[
        &write::int(0),
        &subject.to_der()?,
        &spki(public),
        &write::tlv(tag::CONTEXT_0, &[]),
    ]);
    let verifier = VerifyingKey::new(public).map_err(|e| CsrError::Sign(e.to_string()))?;
    let digest = verifier.message_digest(&info);
    let signature = signer
        .sign_prehash(&digest)
        .map_err(|e| CsrError::Sign(e.to_string()))?;
    verifier
        .verify(&info, &signature)
        .map_err(|_| CsrError::BadSignature)?;
    let algorithm = write::seq(&[&oid(crate::cert::signature_oid(public.algorithm))]);
    Ok(write::seq(&[
        &info,
        &algorithm,
        &write::bits(&signature.to_der()),
    ]))
}

/// PEM armour (`-----BEGIN label-----`, base64 in 64-column lines).
pub fn pem(label: &str, der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::with_capacity(der.len() * 4 / 3 + 4);
    for chunk in der.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::soft::SoftSigner;
    use x509_parser::prelude::FromDer;

    fn subject() -> Subject {
        Subject {
            country: Some("CN".into()),
            organisation: "某某市人民政府".into(),
            unit: Some("办公室".into()),
            common_name: "公章".into(),
        }
    }

    #[test]
    fn signs_and_verifies_for_both_curves() {
        for algorithm in [KeyAlgorithm::Sm2, KeyAlgorithm::P256] {
            let signer = SoftSigner::from_seed(algorithm, 7);
            let der = build_csr(&subject(), &signer).unwrap();
            assert_eq!(der[0], 0x30);
            let (_, csr) =
                x509_parser::certification_request::X509CertificationRequest::from_der(&der)
                    .unwrap();
            assert_eq!(
                csr.signature_algorithm.algorithm.to_id_string(),
                crate::cert::signature_oid(algorithm)
            );
            let subject = csr.certification_request_info.subject.to_string();
            assert!(subject.contains("CN=公章"), "{subject}");
        }
    }

    #[test]
    fn refuses_an_empty_organisation_and_a_bad_country() {
        let signer = SoftSigner::from_seed(KeyAlgorithm::Sm2, 7);
        let mut s = subject();
        s.organisation.clear();
        assert!(build_csr(&s, &signer)
            .unwrap_err()
            .to_string()
            .contains("organisation"));
        let mut s = subject();
        s.country = Some("China".into());
        assert!(build_csr(&s, &signer)
            .unwrap_err()
            .to_string()
            .contains("two capital letters"));
    }

    #[test]
    fn pem_wraps_base64() {
        assert_eq!(
            pem("X", b"foob"),
            "-----BEGIN X-----\nZm9vYg==\n-----END X-----\n"
        );
        assert_eq!(
            pem("X", b"foo"),
            "-----BEGIN X-----\nZm9v\n-----END X-----\n"
        );
    }
}
