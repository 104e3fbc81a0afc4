use super::fixtures::fixture;
use super::*;

#[test]
fn fixtures_parse() {
    let seal = Seal::parse(&fixture("ses/user-v4.esl")).unwrap();
    assert_eq!(seal.version, FormatVersion::V4);
    assert_eq!(seal.info.property.name, "OFD R&W 测试用印章");
    assert_eq!(seal.info.property.seal_type, 3);
    let seal = Seal::parse(&fixture("ses/user-v1.esl")).unwrap();
    assert_eq!(seal.version, FormatVersion::V1);
    assert_eq!(seal.info.property.name, "OFDRW测试用印章");
    let seal = Seal::parse(&fixture("ses/hebei-bad-maker-sig.der")).unwrap();
    assert_eq!(seal.info.picture.kind, "GIF");
    let ext = seal.info.ext_datas.as_ref().unwrap();
    assert_eq!(ext.len(), 3);
    assert!(!ext[0].critical && ext[1].critical);
    let sig = SesSignature::parse(&fixture("ses/signed-value-v4.dat")).unwrap();
    assert_eq!(sig.version, FormatVersion::V4);
    assert_eq!(
        detect(&fixture("ses/signed-value-v4.dat")),
        ObjectKind::Signature
    );
    assert_eq!(detect(&fixture("ses/user-v1.esl")), ObjectKind::Seal);
}

fn statuses(r: &Report) -> Vec<(&'static str, CheckStatus)> {
    r.checks.iter().map(|c| (c.id, c.status)).collect()
}

#[test]
fn fixture_seals_verify_as_documented() {
    let opts = VerifyOptions::default();
    for f in ["ses/user-v4.esl", "ses/user-v1.esl"] {
        let r = verify_seal(&Seal::parse(&fixture(f)).unwrap(), &opts);
        eprintln!("{}", r.to_text());
        assert_eq!(
            r.check("maker-signature").unwrap().status,
            CheckStatus::Passed,
            "{f}"
        );
        assert!(r.valid, "{f}: {:?}", statuses(&r));
    }
    let r = verify_seal(
        &Seal::parse(&fixture("ses/hebei-bad-maker-sig.der")).unwrap(),
        &opts,
    );
    eprintln!("{}", r.to_text());
    assert_eq!(
        r.check("maker-signature").unwrap().status,
        CheckStatus::Failed
    );
    assert!(!r.valid);
}

#[test]
fn bare_signature_verifies() {
    let sig = SesSignature::parse(&fixture("ses/signed-value-v4.dat")).unwrap();
    let r = verify_signature(&sig, &VerifyOptions::default());
    eprintln!("{}", r.to_text());
    assert_eq!(
        r.check("maker-signature").unwrap().status,
        CheckStatus::Passed
    );
    assert_eq!(
        r.check("signer-signature").unwrap().status,
        CheckStatus::Passed
    );
    assert_eq!(
        r.check("data-hash").unwrap().status,
        CheckStatus::NotApplicable
    );
    assert!(r.valid, "{:?}", statuses(&r));
}

/// Parses as a seal or signature as `detect` says, and verifies if it parses.
fn parse_and_verify(bytes: &[u8]) -> Result<bool, ParseError> {
    match detect(bytes) {
        ObjectKind::Seal => Ok(verify_seal(&Seal::parse(bytes)?, &VerifyOptions::default()).valid),
        _ => Ok(verify_signature(&SesSignature::parse(bytes)?, &VerifyOptions::default()).valid),
    }
}

#[test]
fn every_truncation_is_an_error() {
    for f in [
        "ses/signed-value-v4.dat",
        "ses/user-v1.esl",
        "ses/hebei-bad-maker-sig.der",
    ] {
        let bytes = fixture(f);
        for cut in 0..bytes.len() {
            let t = &bytes[..cut];
            assert!(Seal::parse(t).is_err(), "{f} cut at {cut}");
            assert!(SesSignature::parse(t).is_err(), "{f} cut at {cut}");
        }
    }
}

#[test]
fn flipped_bytes_never_verify() {
    // Every byte of the first 300 (headers, tags, lengths), then every 13th byte.
    for f in [
        "ses/signed-value-v4.dat",
        "ses/user-v1.esl",
        "ses/user-v4.esl",
    ] {
        let bytes = fixture(f);
        assert_eq!(parse_and_verify(&bytes), Ok(true), "{f} itself");
        // A bare seal's maker certificate is outside what the maker signs (only its key is
        // used, and its own signature is checked by the chain check, off here): skip it.
        let skip = match detect(&bytes) {
            ObjectKind::Seal => {
                let cert = Seal::parse(&bytes).unwrap().maker_cert;
                let start = bytes.windows(cert.len()).position(|w| w == cert).unwrap();
                start..start + cert.len()
            }
            _ => 0..0,
        };
        let positions = (0..300.min(bytes.len())).chain((300..bytes.len()).step_by(13));
        for pos in positions.filter(|p| !skip.contains(p)) {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[pos] ^= mask;
                let outcome = parse_and_verify(&b);
                assert!(
                    outcome != Ok(true),
                    "{f}: byte {pos} ^ {mask:#x} still verifies"
                );
            }
        }
    }
}

#[test]
fn wrong_tags_and_absurd_lengths_are_errors() {
    let bytes = fixture("ses/signed-value-v4.dat");
    // Outer tag.
    let mut b = bytes.clone();
    b[0] = 0x31;
    assert!(matches!(SesSignature::parse(&b), Err(ParseError::Der(_))));
    // Version INTEGER turned into an OCTET STRING.
    let mut b = bytes.clone();
    b[8] = 0x04;
    let err = SesSignature::parse(&b).unwrap_err();
    assert!(err.to_string().contains("TBS_Sign.version"), "{err}");
    // Outer length claiming 4 GiB.
    let mut b = bytes.clone();
    b[1] = 0x84;
    b[2] = 0xff;
    b[3] = 0xff;
    assert!(SesSignature::parse(&b).is_err());
    // Indefinite length.
    let mut b = bytes.clone();
    b[1] = 0x80;
    assert!(SesSignature::parse(&b).is_err());
    // Trailing garbage after the signature.
    let mut b = bytes.clone();
    b.extend_from_slice(b"junk");
    assert!(SesSignature::parse(&b).is_err());
    // Nothing at all, and a seal given as a signature.
    assert!(SesSignature::parse(&[]).is_err());
    assert!(SesSignature::parse(&fixture("ses/user-v4.esl")).is_err());
    assert!(Seal::parse(&bytes).is_err());
    // Random-ish data of many lengths.
    let mut x: u32 = 12345;
    for len in 0..2000 {
        let data: Vec<u8> = (0..len)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect();
        let _ = parse_and_verify(&data);
        let _ = detect(&data);
    }
}

/// A GM/T 0031 v1 SES_Signature around the v1 fixture seal, signed by a test key.
#[test]
fn v1_signature_reads_and_verifies_over_its_tbs() {
    use crate::cert::testing::{issue, name, CertSpec};
    use crate::crypto::soft::SoftSigner;
    use crate::crypto::{KeyAlgorithm, PrehashSigner};
    use der::write;
    use time::macros::datetime;

    let seal_der = fixture("ses/user-v1.esl");
    let key = SoftSigner::from_seed(KeyAlgorithm::Sm2, 60);
    let n = name("OFD R&W", "v1 signer");
    let spec = CertSpec {
        cn: "v1 signer".into(),
        o: "OFD R&W".into(),
        serial: 1,
        not_before: datetime!(2020-01-01 0:00 UTC),
        not_after: datetime!(2022-01-01 0:00 UTC),
        key_usage: Some(0x80),
        ca: false,
        ocsp_url: None,
        crl_url: None,
    };
    let cert = issue(&spec, key.public_key(), &n, &key);
    let document = b"v1 protected bytes";
    let tbs = write::seq(&[
        &write::int(1),
        &seal_der,
        &write::bits(b"20210301120000Z"),
        &write::bits(&crate::crypto::sm3(document)),
        &write::ia5("/Doc_0/Signs/Sign_0/Signature.xml"),
        &write::octets(&cert),
        &write::oid(crate::cert::OID_SM2_SM3).unwrap(),
    ]);
    let sig = build::sign_message(&key, &tbs).unwrap();
    let der = write::seq(&[&tbs, &write::bits(&sig.to_der())]);

    assert_eq!(detect(&der), ObjectKind::Signature);
    let parsed = SesSignature::parse(&der).unwrap();
    assert_eq!(parsed.version, FormatVersion::V1);
    assert_eq!(parsed.tbs.seal.version, FormatVersion::V1);
    assert_eq!(
        parsed.tbs.time_info,
        Some(datetime!(2021-03-01 12:00:00 UTC))
    );
    assert_eq!(parsed.signer_cert, cert);
    assert_eq!(parsed.signed_bytes, tbs);
    let r = verify_signature(
        &parsed,
        &VerifyOptions {
            document: Document::Bytes(document),
            ..VerifyOptions::default()
        },
    );
    for id in [
        "maker-signature",
        "signer-signature",
        "data-hash",
        "seal-validity",
        "signer-certificate-validity",
    ] {
        assert_eq!(
            r.check(id).unwrap().status,
            CheckStatus::Passed,
            "{id}: {}",
            r.to_text()
        );
    }
    // The test signer is not in the real seal's certificate list, and that is reported.
    assert_eq!(
        r.check("signer-in-seal").unwrap().status,
        CheckStatus::Failed
    );
    assert!(!r.valid);
    // v1 objects are read-only: no v4 signature is built around a v1 seal.
    let built = build_signature(
        &SignRequest {
            seal: &parsed.tbs.seal,
            time_info: datetime!(2021-03-01 12:00:00 UTC),
            data_hash: &[0; 32],
            property_info: "x",
            ext_datas: None,
            signer_cert: &cert,
        },
        &key,
    );
    assert!(matches!(built, Err(BuildError::Unsupported(_))));
    // Every truncation of it is an error too.
    for cut in 0..der.len() {
        assert!(SesSignature::parse(&der[..cut]).is_err(), "cut at {cut}");
    }
}

#[test]
fn verify_der_picks_the_object_kind() {
    let opts = VerifyOptions::default();
    assert_eq!(
        verify_der(&fixture("ses/user-v4.esl"), &opts)
            .unwrap()
            .object,
        "seal"
    );
    assert_eq!(
        verify_der(&fixture("ses/signed-value-v4.dat"), &opts)
            .unwrap()
            .object,
        "signature"
    );
    assert!(
        !verify_der(&fixture("ses/hebei-bad-maker-sig.der"), &opts)
            .unwrap()
            .valid
    );
    let cms = [
        0x30, 0x0e, 0x06, 0x0a, 0x2a, 0x81, 0x1c, 0xcf, 0x55, 0x06, 0x01, 0x04, 0x02, 0x02, 0xa0,
        0x00,
    ];
    assert!(
        matches!(verify_der(&cms, &opts), Err(ParseError::NotSes(m)) if m.contains("1.2.156.10197.6.1.4.2.2"))
    );
    assert!(matches!(
        verify_der(b"nope", &opts),
        Err(ParseError::Der(_))
    ));
}
