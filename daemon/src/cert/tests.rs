use time::macros::datetime;
use time::OffsetDateTime;

use super::testing::{issue, name, CertSpec};
use super::*;
use crate::crypto::soft::SoftSigner;
use crate::crypto::{KeyAlgorithm, PrehashSigner};

struct Pki {
    root: Certificate,
    inter: Certificate,
    leaf: Certificate,
    leaf_key: SoftSigner,
}

fn spec(cn: &str, ca: bool, ku: Option<u8>) -> CertSpec {
    CertSpec {
        cn: cn.into(),
        o: "测试单位".into(),
        serial: 0x1234_5678,
        not_before: datetime!(2024-01-01 0:00 UTC),
        not_after: datetime!(2030-01-01 0:00 UTC),
        key_usage: ku,
        ca,
        ocsp_url: None,
        crl_url: None,
    }
}

fn pki(alg: KeyAlgorithm) -> Pki {
    let root_key = SoftSigner::from_seed(alg, 1);
    let inter_key = SoftSigner::from_seed(alg, 2);
    let leaf_key = SoftSigner::from_seed(alg, 3);
    let root_name = name("测试单位", "Root CA");
    let inter_name = name("测试单位", "Sub CA");
    let root = issue(
        &spec("Root CA", true, Some(0x04)),
        root_key.public_key(),
        &root_name,
        &root_key,
    );
    let inter = issue(
        &spec("Sub CA", true, Some(0x06)),
        inter_key.public_key(),
        &root_name,
        &root_key,
    );
    let leaf = issue(
        &spec("Seal", false, Some(0xc0)),
        leaf_key.public_key(),
        &inter_name,
        &inter_key,
    );
    Pki {
        root: Certificate::from_der(&root).unwrap(),
        inter: Certificate::from_der(&inter).unwrap(),
        leaf: Certificate::from_der(&leaf).unwrap(),
        leaf_key,
    }
}

const MID: OffsetDateTime = datetime!(2025-06-01 0:00 UTC);

#[test]
fn facts_are_extracted() {
    let p = pki(KeyAlgorithm::Sm2);
    let f = p.leaf.facts();
    assert_eq!(f.subject_o.as_deref(), Some("测试单位"));
    assert_eq!(f.subject_cn.as_deref(), Some("Seal"));
    assert_eq!(f.serial_hex, "12345678");
    assert_eq!(f.not_before, datetime!(2024-01-01 0:00 UTC));
    assert_eq!(f.not_after, datetime!(2030-01-01 0:00 UTC));
    assert_eq!(f.public_key.as_ref(), Some(p.leaf_key.public_key()));
    let ku = f.key_usage.unwrap();
    assert!(ku.digital_signature && ku.non_repudiation && !ku.key_cert_sign);
    assert!(!f.is_ca);
    assert!(p.root.facts().is_ca);
    let json = serde_json::to_value(f).unwrap();
    assert_eq!(json["not_after"], "2030-01-01T00:00:00Z");
    assert_eq!(json["public_key"]["algorithm"], "sm2");
}

#[test]
fn chains_verify_for_both_algorithms() {
    for alg in [KeyAlgorithm::Sm2, KeyAlgorithm::P256] {
        let p = pki(alg);
        let store = TrustStore::new(vec![p.root.clone()]);
        let chain = store
            .verify_signing_chain(&p.leaf, std::slice::from_ref(&p.inter), MID)
            .unwrap();
        let cns: Vec<_> = chain
            .iter()
            .map(|f| f.subject_cn.clone().unwrap())
            .collect();
        assert_eq!(cns, ["Seal", "Sub CA", "Root CA"]);
    }
}

#[test]
fn each_rejection_names_its_reason() {
    let p = pki(KeyAlgorithm::Sm2);
    let store = TrustStore::new(vec![p.root.clone()]);
    let inter = std::slice::from_ref(&p.inter);
    assert!(matches!(
        store.verify_signing_chain(&p.leaf, inter, datetime!(2031-01-01 0:00 UTC)),
        Err(CertError::Expired { .. })
    ));
    assert!(matches!(
        store.verify_signing_chain(&p.leaf, inter, datetime!(2023-01-01 0:00 UTC)),
        Err(CertError::NotYetValid { .. })
    ));
    assert!(matches!(
        store.verify_signing_chain(&p.leaf, &[], MID),
        Err(CertError::UnknownIssuer { .. })
    ));
    assert!(matches!(
        TrustStore::default().verify_signing_chain(&p.leaf, inter, MID),
        Err(CertError::UnknownIssuer { .. })
    ));
    // A CA certificate (keyCertSign only) may not sign documents.
    assert!(matches!(
        store.verify_signing_chain(&p.inter, &[], MID),
        Err(CertError::WrongKeyUsage { .. })
    ));
    // A leaf used as an issuer is refused for its usage.
    let leaf_name = name("测试单位", "Seal");
    let other = SoftSigner::from_seed(KeyAlgorithm::Sm2, 9);
    let under_leaf = Certificate::from_der(&issue(
        &spec("Under leaf", false, Some(0x80)),
        other.public_key(),
        &leaf_name,
        &p.leaf_key,
    ))
    .unwrap();
    assert!(matches!(
        store.verify_signing_chain(&under_leaf, &[p.leaf.clone(), p.inter.clone()], MID),
        Err(CertError::WrongKeyUsage { .. })
    ));
    // Flip one byte inside the signed part: the signature no longer verifies.
    let mut der = p.leaf.der().to_vec();
    let pos = der.windows(4).position(|w| w == b"Seal").unwrap();
    der[pos] = b'Z';
    let forged = Certificate::from_der(&der).unwrap();
    assert!(matches!(
        store.verify_signing_chain(&forged, inter, MID),
        Err(CertError::BadSignature { .. })
    ));
    // An intermediate signed by a key that is not the root's.
    let fake_root_key = SoftSigner::from_seed(KeyAlgorithm::Sm2, 5);
    let fake_inter = Certificate::from_der(&issue(
        &spec("Sub CA", true, Some(0x06)),
        &p.inter.public_key().unwrap().clone(),
        &name("测试单位", "Root CA"),
        &fake_root_key,
    ))
    .unwrap();
    assert!(matches!(
        store.verify_signing_chain(&p.leaf, &[fake_inter], MID),
        Err(CertError::BadSignature { .. })
    ));
}

#[test]
fn unsupported_algorithms_are_named() {
    // An RSA-keyed certificate (from x509-parser's own kind of test data is not at hand):
    // build one by swapping the curve OID for an unknown one.
    let p = pki(KeyAlgorithm::Sm2);
    let mut der = p.leaf.der().to_vec();
    let curve = crate::ses::der::write::oid(OID_SM2_CURVE).unwrap();
    let pos = der.windows(curve.len()).position(|w| w == curve).unwrap();
    der[pos + curve.len() - 1] ^= 0x01;
    let cert = Certificate::from_der(&der).unwrap();
    assert!(cert.facts().public_key.is_none());
    assert!(matches!(
        cert.public_key(),
        Err(CertError::UnsupportedAlgorithm(_))
    ));
    assert!(matches!(
        p.leaf.verify_signed_by(&cert),
        Err(CertError::UnsupportedAlgorithm(_))
    ));
}

#[test]
fn garbage_is_malformed_not_a_panic() {
    let p = pki(KeyAlgorithm::Sm2);
    let der = p.leaf.der();
    for cut in 0..der.len() {
        assert!(Certificate::from_der(&der[..cut]).is_err());
    }
    assert!(matches!(
        Certificate::from_der(b"hello"),
        Err(CertError::Malformed(_))
    ));
}

#[test]
fn ocsp_and_crl_urls_are_written_as_extensions() {
    use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
    use x509_parser::prelude::{FromDer, X509Certificate};
    let key = SoftSigner::from_seed(KeyAlgorithm::P256, 1);
    let der = issue(
        &CertSpec {
            ocsp_url: Some("http://127.0.0.1:1/ocsp".into()),
            crl_url: Some("http://127.0.0.1:1/crl".into()),
            ..spec("Seal", false, Some(0xc0))
        },
        key.public_key(),
        &name("测试单位", "Root CA"),
        &key,
    );
    Certificate::from_der(&der).unwrap();
    let (_, c) = X509Certificate::from_der(&der).unwrap();
    let (mut ocsp, mut crl) = (None, None);
    for e in c.extensions() {
        match e.parsed_extension() {
            ParsedExtension::AuthorityInfoAccess(aia) => {
                assert!(!e.critical);
                let [d] = aia.accessdescs.as_slice() else {
                    panic!("one access description")
                };
                assert_eq!(d.access_method.to_id_string(), "1.3.6.1.5.5.7.48.1");
                if let GeneralName::URI(u) = d.access_location {
                    ocsp = Some(u.to_owned());
                }
            }
            ParsedExtension::CRLDistributionPoints(cdp) => {
                assert!(!e.critical);
                let [p] = cdp.points.as_slice() else {
                    panic!("one distribution point")
                };
                if let Some(DistributionPointName::FullName(names)) = &p.distribution_point {
                    if let [GeneralName::URI(u)] = names.as_slice() {
                        crl = Some((*u).to_owned());
                    }
                }
            }
            ParsedExtension::UnsupportedExtension { .. } | ParsedExtension::ParseError { .. } => {
                panic!("{:?} did not parse", e.oid)
            }
            _ => {}
        }
    }
    assert_eq!(ocsp.as_deref(), Some("http://127.0.0.1:1/ocsp"));
    assert_eq!(crl.as_deref(), Some("http://127.0.0.1:1/crl"));
}
