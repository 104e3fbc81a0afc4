//! SignedData built for PDFs: read back by seald's verifier and by OpenSSL.

use std::process::Command;

use time::macros::datetime;

use super::*;
use crate::cert::testing::{parties, Parties};
use crate::cert::{Certificate, TrustStore};
use crate::cms::{oid, Anchors, SignedAttrs, SignedData};
use crate::crypto::data_digest;
use crate::ses::build_tests::{openssl_verifies, seal_info};
use crate::ses::{build_seal, Seal};

const WHEN: OffsetDateTime = datetime!(2025-06-01 08:00:00 UTC);

struct Keys {
    p: Parties,
    seal: Seal,
}

impl Keys {
    fn new(alg: KeyAlgorithm) -> Self {
        let p = parties(alg);
        let seal = build_seal(&seal_info(&p), &p.maker_cert, &p.maker).unwrap();
        Self { p, seal }
    }

    fn signer(&self) -> DocumentSigner<'_> {
        DocumentSigner::new(&self.seal, &self.p.signer_cert, &self.p.signer).unwrap()
    }

    fn trust(&self) -> TrustStore {
        TrustStore::new(vec![Certificate::from_der(&self.p.root_cert).unwrap()])
    }
}

const PARTS: [&[u8]; 2] = [
    b"%PDF-1.7 the bytes before /Contents ",
    b" and after it %%EOF\n",
];

fn build(keys: &Keys, alg: KeyAlgorithm) -> Vec<u8> {
    let digest = data_digest(alg, &PARTS.concat());
    signed_data(
        &keys.signer(),
        std::slice::from_ref(&keys.p.root_cert),
        &digest,
        WHEN,
    )
    .unwrap()
}

#[test]
fn built_signed_data_verifies_and_catches_changes() {
    for alg in [KeyAlgorithm::P256, KeyAlgorithm::Sm2] {
        let keys = Keys::new(alg);
        let cms = build(&keys, alg);
        let max = max_signed_data_len(&keys.signer(), std::slice::from_ref(&keys.p.root_cert));
        assert!(cms.len() <= max && max - cms.len() <= 8, "{alg:?}");
        let trust = keys.trust();
        let r = verify_contents(&cms, &PARTS, Anchors::roots(Some(&trust)), Some(WHEN)).unwrap();
        assert!(r.valid, "{alg:?} {:#?}", r.checks);
        assert_eq!(r.form, "authenticated-attributes");
        assert!(r.checks.iter().any(|c| c.starts_with("ok: chain of 2")));
        assert_eq!(r.signer.unwrap().subject_cn.as_deref(), Some("合同专用章"));
        // Zero padding (the /Contents placeholder) is allowed; anything else is not.
        let mut padded = cms.clone();
        padded.resize(max + 100, 0);
        assert!(
            verify_contents(&padded, &PARTS, Anchors::roots(None), None)
                .unwrap()
                .valid
        );
        padded.push(1);
        assert!(verify_contents(&padded, &PARTS, Anchors::roots(None), None).is_err());
        // Another byte range, another signature value: both fail.
        let r = verify_contents(
            &cms,
            &[PARTS[0], b"changed"],
            Anchors::roots(None),
            Some(WHEN),
        )
        .unwrap();
        assert!(!r.valid);
        assert!(r
            .checks
            .iter()
            .any(|c| c.starts_with("FAILED: message-digest")));
        let sd = SignedData::parse(&cms, false).unwrap();
        let sig_at = cms.len() - sd.signer.signature.len() + 10;
        let mut bad = cms.clone();
        bad[sig_at] ^= 1;
        assert!(
            !verify_contents(&bad, &PARTS, Anchors::roots(None), None)
                .unwrap()
                .valid
        );
        // Judged at a time outside the certificate's validity: invalid.
        let r = verify_contents(
            &cms,
            &PARTS,
            Anchors::roots(None),
            Some(datetime!(2040-01-01 0:00 UTC)),
        );
        assert_eq!(
            r.unwrap().valid,
            alg == KeyAlgorithm::Sm2,
            "SM2 has signing-time"
        );
        for cut in 0..cms.len() {
            assert!(verify_contents(&cms[..cut], &PARTS, Anchors::roots(None), None).is_err());
        }
    }
}

#[test]
fn the_profiles_have_their_oids_and_attributes() {
    for alg in [KeyAlgorithm::P256, KeyAlgorithm::Sm2] {
        let keys = Keys::new(alg);
        let cms = build(&keys, alg);
        let sd = SignedData::parse(&cms, false).unwrap();
        let attrs = SignedAttrs::read(sd.signer.signed_attrs.as_ref().unwrap()).unwrap();
        assert_eq!(sd.certs.len(), 2);
        assert!(sd.content.is_none(), "detached");
        let digest = data_digest(alg, &PARTS.concat());
        assert_eq!(attrs.message_digest.as_deref(), Some(&digest[..]));
        match alg {
            KeyAlgorithm::P256 => {
                assert_eq!(sd.content_type, oid::SIGNED_DATA);
                assert_eq!(sd.encap_content_type, oid::DATA);
                assert_eq!(sd.digest_algorithms, [oid::SHA256]);
                assert_eq!(sd.signer.signature_algorithm, oid::ECDSA_SHA256);
                assert_eq!(attrs.signing_time, None, "PAdES forbids signing-time");
                let ess = attrs.signing_certificate.unwrap();
                assert_eq!(ess.hash, crate::crypto::sha256(&keys.p.signer_cert));
                assert_eq!(ess.serial.as_deref(), Some(&[77u8][..]));
            }
            KeyAlgorithm::Sm2 => {
                assert_eq!(sd.content_type, oid::SIGNED_DATA_GM);
                assert_eq!(sd.encap_content_type, oid::DATA_GM);
                assert_eq!(sd.digest_algorithms, [oid::SM3]);
                assert_eq!(sd.signer.signature_algorithm, oid::SM2_SM3);
                assert_eq!(attrs.signing_time, Some(WHEN));
                assert_eq!(attrs.content_type.as_deref(), Some(oid::DATA_GM));
            }
        }
        // The written SET OF is in DER order.
        let set = sd.signer.signed_attrs.unwrap();
        let mut kids = set.children();
        let mut raws = Vec::new();
        while !kids.is_empty() {
            raws.push(kids.next_any("a").unwrap().raw.to_vec());
        }
        let mut sorted = raws.clone();
        sorted.sort();
        assert_eq!(raws, sorted);
    }
}

fn openssl(args: &[&str]) -> std::process::Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("the openssl binary runs")
}

#[test]
fn openssl_verifies_the_pades_signed_data() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Keys::new(KeyAlgorithm::P256);
    let cms = build(&keys, KeyAlgorithm::P256);
    let path = |n: &str| dir.path().join(n).to_str().unwrap().to_owned();
    std::fs::write(path("sig.der"), &cms).unwrap();
    std::fs::write(path("data.bin"), PARTS.concat()).unwrap();
    std::fs::write(path("bad.bin"), b"other data").unwrap();
    let out = openssl(&[
        "x509",
        "-inform",
        "DER",
        "-in",
        &path("sig.der"),
        "-out",
        &path("unused"),
    ]);
    assert!(!out.status.success(), "a SignedData is not a certificate");
    std::fs::write(path("root.der"), &keys.p.root_cert).unwrap();
    let out = openssl(&[
        "x509",
        "-inform",
        "DER",
        "-in",
        &path("root.der"),
        "-out",
        &path("root.pem"),
    ]);
    assert!(out.status.success());
    let verify = |data: &str| {
        openssl(&[
            "cms",
            "-verify",
            "-inform",
            "DER",
            "-in",
            &path("sig.der"),
            "-content",
            &path(data),
            "-binary",
            "-CAfile",
            &path("root.pem"),
            "-purpose",
            "any",
            "-out",
            &path("out.bin"),
        ])
    };
    let out = verify("data.bin");
    assert!(
        out.status.success(),
        "openssl cms -verify: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!verify("bad.bin").status.success());
}

#[test]
fn openssl_checks_the_gm_signed_data_by_parts() {
    // OpenSSL 3.0 does not know the GB/T 35275 content types, so `cms -verify` refuses the
    // SignedData; its parts are checked instead: the DER parses, the message digest is
    // `openssl dgst -sm3` of the data and the SM2 signature over DER(SET OF attributes)
    // verifies with `openssl dgst -sm3 -sigopt distid:1234567812345678`.
    let dir = tempfile::tempdir().unwrap();
    let keys = Keys::new(KeyAlgorithm::Sm2);
    let cms = build(&keys, KeyAlgorithm::Sm2);
    let path = |n: &str| dir.path().join(n).to_str().unwrap().to_owned();
    std::fs::write(path("sig.der"), &cms).unwrap();
    std::fs::write(path("data.bin"), PARTS.concat()).unwrap();
    let out = openssl(&["asn1parse", "-inform", "DER", "-in", &path("sig.der")]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("1.2.156.10197.6.1.4.2.2"));
    let out = openssl(&["dgst", "-sm3", "-r", &path("data.bin")]);
    let hex_md = String::from_utf8_lossy(&out.stdout)
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    let sd = SignedData::parse(&cms, false).unwrap();
    let attrs = SignedAttrs::read(sd.signer.signed_attrs.as_ref().unwrap()).unwrap();
    assert_eq!(hex::encode(attrs.message_digest.unwrap()), hex_md);
    let message = sd.signer.signed_attrs_message().unwrap();
    let cert = &keys.p.signer_cert;
    let sig = sd.signer.signature;
    assert!(openssl_verifies(
        dir.path(),
        "gm",
        cert,
        sig,
        &message,
        true
    ));
    let mut tampered = message.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert!(!openssl_verifies(
        dir.path(),
        "gm-bad",
        cert,
        sig,
        &tampered,
        true
    ));
}
