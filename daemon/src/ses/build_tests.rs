//! Seals and signatures built by seald: they read back identically, verify in seald, and their
//! signatures verify with OpenSSL 3 on the extracted components.

use std::path::Path;
use std::process::Command;

use time::macros::datetime;

use super::*;
use crate::cert::testing::{parties, sample_seal_info, Parties};
use crate::crypto::soft::SoftSigner;
use crate::crypto::{data_digest, KeyAlgorithm, PrehashSigner};

/// A v4 seal's info for `p`'s signer (also used by the stamp batch tests).
pub(crate) fn seal_info(p: &Parties) -> SealInfo {
    SealInfo {
        ext_datas: Some(vec![ExtData {
            id: "1.2.156.112600.7.1".into(),
            critical: false,
            value: b"91110108MA00000000".to_vec(),
        }]),
        ..sample_seal_info(p, b"\x89PNG\r\n\x1a\nnot really a picture".to_vec())
    }
}

fn make(alg: KeyAlgorithm) -> (Parties, Seal, SesSignature, Vec<u8>) {
    let p = parties(alg);
    let seal = build_seal(&seal_info(&p), &p.maker_cert, &p.maker).unwrap();
    let document = b"<ofd:Signature>the protected bytes</ofd:Signature>".to_vec();
    let hash = data_digest(alg, &document);
    let ext = [ExtData {
        id: "1.2.156.112600.7.9".into(),
        critical: true,
        value: vec![1, 2, 3],
    }];
    let sig = build_signature(
        &SignRequest {
            seal: &seal,
            time_info: datetime!(2025-06-01 08:00:00 UTC),
            data_hash: &hash,
            property_info: "/Doc_0/Signs/Sign_0/Signature.xml",
            ext_datas: Some(&ext),
            signer_cert: &p.signer_cert,
        },
        &p.signer,
    )
    .unwrap();
    (p, seal, sig, document)
}

#[test]
fn built_objects_read_back_identically_and_verify() {
    for alg in [KeyAlgorithm::Sm2, KeyAlgorithm::P256] {
        let (p, seal, sig, document) = make(alg);
        assert_eq!(seal.info, seal_info(&p), "{alg:?}");
        assert_eq!(Seal::parse(&seal.der).unwrap(), seal);
        assert_eq!(SesSignature::parse(&sig.der).unwrap(), sig);
        assert_eq!(sig.tbs.seal, seal);
        assert_eq!(sig.tbs.time_info, Some(datetime!(2025-06-01 08:00:00 UTC)));
        assert!(sig.tbs.ext_datas.as_ref().unwrap()[0].critical);
        // The maker signed exactly the encoding of the info we gave.
        assert_eq!(seal.signed_bytes, encode_seal_info(&seal_info(&p)).unwrap());

        let roots =
            crate::cert::TrustStore::new(vec![
                crate::cert::Certificate::from_der(&p.root_cert).unwrap()
            ]);
        let options = VerifyOptions {
            document: Document::Bytes(&document),
            trust: Some(&roots),
            at: None,
            tsa_trust: None,
            revocation: None,
        };
        let report = verify_signature(&sig, &options);
        assert!(report.valid, "{}", report.to_text());
        assert!(
            report
                .checks
                .iter()
                .filter(|c| !c.id.ends_with("-revocation"))
                .all(|c| c.status == CheckStatus::Passed),
            "{}",
            report.to_text()
        );
        // No status sources given: the revocation checks say so.
        let status = report.check("signer-revocation").unwrap();
        assert_eq!(status.status, CheckStatus::NotApplicable);
        assert!(status.detail.contains("not checked"), "{}", status.detail);
        // Another document: the data hash check fails and the signature is invalid.
        let other = VerifyOptions {
            document: Document::Bytes(b"other bytes"),
            ..options
        };
        let report = verify_signature(&sig, &other);
        assert!(!report.valid);
        assert_eq!(
            report.check("data-hash").unwrap().status,
            CheckStatus::Failed
        );
    }
}

#[test]
fn judged_at_time_info_not_now() {
    let (p, seal, _, _) = make(KeyAlgorithm::Sm2);
    let hash = [0u8; 32];
    let late = build_signature(
        &SignRequest {
            seal: &seal,
            time_info: datetime!(2028-01-01 0:00 UTC),
            data_hash: &hash,
            property_info: "x",
            ext_datas: None,
            signer_cert: &p.signer_cert,
        },
        &p.signer,
    )
    .unwrap();
    let r = verify_signature(&late, &VerifyOptions::default());
    assert_eq!(
        r.check("seal-validity").unwrap().status,
        CheckStatus::Failed
    );
    assert_eq!(
        r.check("signer-signature").unwrap().status,
        CheckStatus::Passed
    );
    assert!(!r.valid);
}

#[test]
fn signer_outside_the_seal_list_is_reported() {
    let (p, seal, _, _) = make(KeyAlgorithm::Sm2);
    // The maker's key and certificate are not in the seal's list.
    let sig = build_signature(
        &SignRequest {
            seal: &seal,
            time_info: datetime!(2025-06-01 0:00 UTC),
            data_hash: &[0u8; 32],
            property_info: "x",
            ext_datas: None,
            signer_cert: &p.maker_cert,
        },
        &p.maker,
    )
    .unwrap();
    let r = verify_signature(&sig, &VerifyOptions::default());
    assert_eq!(
        r.check("signer-in-seal").unwrap().status,
        CheckStatus::Failed
    );
    assert_eq!(
        r.check("signer-signature").unwrap().status,
        CheckStatus::Passed
    );
    // Listed by SM3 digest instead: accepted.
    let mut info = seal_info(&p);
    info.property.cert_list_type = Some(2);
    info.property.cert_list = CertList::Digests(vec![CertDigest {
        algorithm: "SM3".into(),
        value: crate::crypto::sm3(&p.maker_cert).to_vec(),
    }]);
    let seal2 = build_seal(&info, &p.maker_cert, &p.maker).unwrap();
    assert_eq!(seal2.info, info);
    let sig2 = build_signature(
        &SignRequest {
            seal: &seal2,
            signer_cert: &p.maker_cert,
            ..SignRequest {
                seal: &seal,
                time_info: datetime!(2025-06-01 0:00 UTC),
                data_hash: &[0u8; 32],
                property_info: "x",
                ext_datas: None,
                signer_cert: &p.maker_cert,
            }
        },
        &p.maker,
    )
    .unwrap();
    let r = verify_signature(&sig2, &VerifyOptions::default());
    assert_eq!(
        r.check("signer-in-seal").unwrap().status,
        CheckStatus::Passed,
        "{}",
        r.to_text()
    );
}

#[test]
fn refuses_a_certificate_of_another_key_and_a_lying_device() {
    let p = parties(KeyAlgorithm::Sm2);
    assert!(matches!(
        build_seal(&seal_info(&p), &p.signer_cert, &p.maker),
        Err(BuildError::KeyMismatch)
    ));
    struct Liar(SoftSigner);
    impl PrehashSigner for Liar {
        fn public_key(&self) -> &crate::crypto::PublicKey {
            self.0.public_key()
        }
        fn sign_prehash(
            &self,
            digest: &[u8; 32],
        ) -> Result<crate::crypto::RawSignature, crate::crypto::SignerError> {
            let mut d = *digest;
            d[0] ^= 1;
            self.0.sign_prehash(&d)
        }
    }
    let liar = Liar(SoftSigner::from_seed(KeyAlgorithm::Sm2, 41));
    assert!(matches!(
        build_seal(&seal_info(&p), &p.maker_cert, &liar),
        Err(BuildError::BadDeviceSignature(_))
    ));
}

#[test]
fn a_device_digest_is_checked_before_anything_is_signed() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    /// Computes SM3(Z‖M) "on the device" (right, or off by one bit) and counts signatures.
    struct DeviceDigest {
        key: SoftSigner,
        wrong: bool,
        signed: AtomicUsize,
    }
    impl PrehashSigner for DeviceDigest {
        fn public_key(&self) -> &crate::crypto::PublicKey {
            self.key.public_key()
        }
        fn sign_prehash(
            &self,
            digest: &[u8; 32],
        ) -> Result<crate::crypto::RawSignature, crate::crypto::SignerError> {
            self.signed.fetch_add(1, Ordering::SeqCst);
            self.key.sign_prehash(digest)
        }
        fn device_digest(
            &self,
            message: &[u8],
        ) -> Option<Result<[u8; 32], crate::crypto::SignerError>> {
            let vk = crate::crypto::VerifyingKey::cached(self.key.public_key()).unwrap();
            let mut e = vk.message_digest(message);
            e[31] ^= self.wrong as u8;
            Some(Ok(e))
        }
    }
    for wrong in [false, true] {
        let signer = DeviceDigest {
            key: SoftSigner::from_seed(KeyAlgorithm::Sm2, 43),
            wrong,
            signed: AtomicUsize::new(0),
        };
        let result = sign_message(&signer, b"to be signed");
        assert_eq!(result.is_ok(), !wrong);
        if wrong {
            assert!(matches!(result, Err(BuildError::DeviceDigestMismatch)));
            assert_eq!(signer.signed.load(Ordering::SeqCst), 0, "nothing signed");
        }
    }
}

fn openssl(args: &[&str]) -> std::process::Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("the openssl binary runs")
}

pub(crate) fn openssl_verifies(
    dir: &Path,
    label: &str,
    cert_der: &[u8],
    signature_bits: &[u8],
    data: &[u8],
    sm2: bool,
) -> bool {
    let cert = dir.join(format!("{label}.cer"));
    let pubkey = dir.join(format!("{label}.pub.pem"));
    let sig = dir.join(format!("{label}.sig"));
    let msg = dir.join(format!("{label}.msg"));
    std::fs::write(&cert, cert_der).unwrap();
    std::fs::write(&sig, signature_bits).unwrap();
    std::fs::write(&msg, data).unwrap();
    let out = openssl(&[
        "x509",
        "-inform",
        "DER",
        "-in",
        cert.to_str().unwrap(),
        "-pubkey",
        "-noout",
        "-out",
        pubkey.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "openssl x509: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (md, sigopt): (&str, &[&str]) = if sm2 {
        ("-sm3", &["-sigopt", "distid:1234567812345678"])
    } else {
        ("-sha256", &[])
    };
    let mut args = vec![
        "dgst",
        md,
        "-verify",
        pubkey.to_str().unwrap(),
        "-signature",
        sig.to_str().unwrap(),
    ];
    args.extend_from_slice(sigopt);
    args.push(msg.to_str().unwrap());
    let out = openssl(&args);
    out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Verified OK")
}

#[test]
fn openssl_verifies_the_built_signatures() {
    let dir = tempfile::tempdir().unwrap();
    for (alg, sm2) in [(KeyAlgorithm::Sm2, true), (KeyAlgorithm::P256, false)] {
        let (_, seal, sig, _) = make(alg);
        let l = format!("{alg:?}");
        assert!(openssl_verifies(
            dir.path(),
            &format!("{l}-maker"),
            &seal.maker_cert,
            &seal.signature,
            &seal.signed_bytes,
            sm2
        ));
        assert!(openssl_verifies(
            dir.path(),
            &format!("{l}-signer"),
            &sig.signer_cert,
            &sig.signature,
            &sig.signed_bytes,
            sm2
        ));
        // The oracle is not a rubber stamp: one changed byte and it refuses.
        let mut tampered = sig.signed_bytes.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(!openssl_verifies(
            dir.path(),
            &format!("{l}-bad"),
            &sig.signer_cert,
            &sig.signature,
            &tampered,
            sm2
        ));
    }
}
