//! Test certificates: a tiny X.509 v3 writer signing with any [`PrehashSigner`] (tests only).

use time::OffsetDateTime;

use super::{signature_oid, OID_EC_PUBLIC_KEY, OID_P256_CURVE, OID_SM2_CURVE};
use crate::crypto::{KeyAlgorithm, PrehashSigner, PublicKey, VerifyingKey};
use crate::ses::der::{tag, write};

/// What to put in a test certificate.
#[derive(Debug, Clone)]
pub struct CertSpec {
    /// Subject CN.
    pub cn: String,
    /// Subject O.
    pub o: String,
    /// Serial number.
    pub serial: u64,
    /// Validity start.
    pub not_before: OffsetDateTime,
    /// Validity end.
    pub not_after: OffsetDateTime,
    /// Key usage bits as in the DER first byte (0x80 digitalSignature, 0x40 nonRepudiation,
    /// 0x04 keyCertSign); `None` leaves the extension out.
    pub key_usage: Option<u8>,
    /// basicConstraints cA.
    pub ca: bool,
    /// An OCSP responder URL: writes a non-critical AuthorityInfoAccess (id-ad-ocsp).
    pub ocsp_url: Option<String>,
    /// A CRL URL: writes a non-critical CRLDistributionPoints with one full-name URI.
    pub crl_url: Option<String>,
}

fn oid(s: &str) -> Vec<u8> {
    write::oid(s).unwrap_or_else(|| unreachable!("constant OID {s}"))
}

/// The DER Name `C=CN, O=o, CN=cn`.
pub fn name(o: &str, cn: &str) -> Vec<u8> {
    let rdn = |attr: &str, value: Vec<u8>| {
        write::constructed(tag::SET, &[&write::seq(&[&oid(attr), &value])])
    };
    write::seq(&[
        &rdn("2.5.4.6", write::printable("CN")),
        &rdn("2.5.4.10", write::utf8(o)),
        &rdn("2.5.4.3", write::utf8(cn)),
    ])
}

fn spki(key: &PublicKey) -> Vec<u8> {
    let curve = match key.algorithm {
        KeyAlgorithm::Sm2 => OID_SM2_CURVE,
        KeyAlgorithm::P256 => OID_P256_CURVE,
    };
    write::seq(&[
        &write::seq(&[&oid(OID_EC_PUBLIC_KEY), &oid(curve)]),
        &write::bits(&key.point),
    ])
}

/// Issues a certificate for `subject_key`, signed by `issuer` whose name is `issuer_name`
/// (pass the subject's own name and signer for a self-signed root).
pub fn issue(
    spec: &CertSpec,
    subject_key: &PublicKey,
    issuer_name: &[u8],
    issuer: &dyn PrehashSigner,
) -> Vec<u8> {
    let alg = write::seq(&[&oid(signature_oid(issuer.public_key().algorithm))]);
    let mut exts: Vec<Vec<u8>> = Vec::new();
    if spec.ca {
        let bc = write::seq(&[&write::boolean(true)]);
        exts.push(write::seq(&[
            &oid("2.5.29.19"),
            &write::boolean(true),
            &write::octets(&bc),
        ]));
    }
    if let Some(bits) = spec.key_usage {
        let unused = if bits == 0 {
            0
        } else {
            bits.trailing_zeros() as u8
        };
        let ku = write::tlv(tag::BIT_STRING, &[unused, bits]);
        exts.push(write::seq(&[
            &oid("2.5.29.15"),
            &write::boolean(true),
            &write::octets(&ku),
        ]));
    }
    // GeneralName uniformResourceIdentifier: [6] IMPLICIT IA5String.
    let uri = |u: &str| write::tlv(0x86, u.as_bytes());
    if let Some(url) = &spec.ocsp_url {
        // AuthorityInfoAccessSyntax ::= SEQUENCE OF AccessDescription { id-ad-ocsp, uri }
        let aia = write::seq(&[&write::seq(&[&oid("1.3.6.1.5.5.7.48.1"), &uri(url)])]);
        exts.push(write::seq(&[
            &oid("1.3.6.1.5.5.7.1.1"),
            &write::octets(&aia),
        ]));
    }
    if let Some(url) = &spec.crl_url {
        // SEQUENCE OF DistributionPoint { distributionPoint [0] { fullName [0] { uri } } }
        let full_name = write::constructed(0xa0, &[&uri(url)]);
        let point = write::constructed(0xa0, &[&full_name]);
        let cdp = write::seq(&[&write::seq(&[&point])]);
        exts.push(write::seq(&[&oid("2.5.29.31"), &write::octets(&cdp)]));
    }
    let ext_refs: Vec<&[u8]> = exts.iter().map(Vec::as_slice).collect();
    let mut parts: Vec<Vec<u8>> = vec![
        write::constructed(0xa0, &[&write::int(2)]),
        write::int(spec.serial),
        alg.clone(),
        issuer_name.to_vec(),
        write::seq(&[
            &write::generalized_time(spec.not_before),
            &write::generalized_time(spec.not_after),
        ]),
        name(&spec.o, &spec.cn),
        spki(subject_key),
    ];
    if !exts.is_empty() {
        parts.push(write::constructed(0xa3, &[&write::seq(&ext_refs)]));
    }
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    let tbs = write::seq(&refs);
    let vk = VerifyingKey::new(issuer.public_key())
        .unwrap_or_else(|e| unreachable!("test signer key is valid: {e}"));
    let sig = issuer
        .sign_prehash(&vk.message_digest(&tbs))
        .unwrap_or_else(|e| unreachable!("test signer signs: {e}"));
    write::seq(&[&tbs, &alg, &write::bits(&sig.to_der())])
}

/// A root, a seal maker and a signer with deterministic software keys, the maker's and signer's
/// certificates issued by the root (organisation 示例科技有限公司). Shared by tests and benches.
#[derive(Debug)]
pub struct Parties {
    /// The root's self-issued certificate.
    pub root_cert: Vec<u8>,
    /// The seal maker's key.
    pub maker: crate::crypto::soft::SoftSigner,
    /// The seal maker's certificate.
    pub maker_cert: Vec<u8>,
    /// The signer's (stamper's) key.
    pub signer: crate::crypto::soft::SoftSigner,
    /// The signer's certificate.
    pub signer_cert: Vec<u8>,
}

/// The [`Parties`] for keys of `algorithm`.
pub fn parties(algorithm: KeyAlgorithm) -> Parties {
    use crate::crypto::soft::SoftSigner;
    let [root, maker, signer] = [40, 41, 42].map(|seed| SoftSigner::from_seed(algorithm, seed));
    let root_name = name("示例科技有限公司", "Test Root");
    let cert = |cn: &str, ca: bool, key_usage: u8, key: &SoftSigner| {
        let spec = CertSpec {
            cn: cn.into(),
            o: "示例科技有限公司".into(),
            serial: 77,
            not_before: OffsetDateTime::from_unix_timestamp(1_704_067_200).expect("2024-01-01"),
            not_after: OffsetDateTime::from_unix_timestamp(2_019_686_400).expect("2034-01-01"),
            key_usage: Some(key_usage),
            ca,
            ocsp_url: None,
            crl_url: None,
        };
        issue(&spec, key.public_key(), &root_name, &root)
    };
    Parties {
        root_cert: cert("Test Root", true, 0x06, &root),
        maker_cert: cert("Seal maker", false, 0x80, &maker),
        signer_cert: cert("合同专用章", false, 0xc0, &signer),
        maker,
        signer,
    }
}

/// A v4 seal's info for `p`'s signer with `picture` as its PNG image (40×40 mm): the seal the
/// tests and benches build with [`crate::ses::build_seal`].
pub fn sample_seal_info(p: &Parties, picture: Vec<u8>) -> crate::ses::SealInfo {
    use crate::ses::{CertList, Header, Picture, PropertyInfo, SealInfo};
    use time::macros::datetime;
    SealInfo {
        header: Header {
            id: "ES".into(),
            version: 4,
            vid: "seald".into(),
        },
        es_id: "11010800000001".into(),
        property: PropertyInfo {
            seal_type: 1,
            name: "示例科技有限公司合同专用章".into(),
            cert_list_type: Some(1),
            cert_list: CertList::Certs(vec![p.signer_cert.clone()]),
            create_date: datetime!(2025-01-02 03:04:05 UTC),
            valid_start: datetime!(2025-01-02 0:00 UTC),
            valid_end: datetime!(2027-01-02 0:00 UTC),
        },
        picture: Picture {
            kind: "PNG".into(),
            data: picture,
            width: 40,
            height: 40,
        },
        ext_datas: None,
    }
}
