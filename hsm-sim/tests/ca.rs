//! The test CA: SM2 root, certificates for token keys, imported beside them on the token.

mod common;
use common::*;
use cryptoki::object::{Attribute, AttributeType, CertificateType, ObjectClass};
use std::process::Command;
use x509_parser::prelude::*;

fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Checks an SM2-with-SM3 certificate signature with the sm2 crate: Z over the issuer key, default ID,
/// over the TBS bytes as found in the file.
fn sm2_cert_sig_ok(cert: &X509Certificate, issuer: &X509Certificate) -> bool {
    use sm2::dsa::signature::Verifier;
    let ipt = &issuer.public_key().subject_public_key.data;
    let vk = sm2::dsa::VerifyingKey::from_sec1_bytes("1234567812345678", ipt).unwrap();
    let Some(rs) = hsm_sim::crypto::decode_sig(&cert.signature_value.data) else {
        return false;
    };
    let sig = sm2::dsa::Signature::from_slice(&rs).unwrap();
    vk.verify(cert.tbs_certificate.as_ref(), &sig).is_ok()
}

#[test]
fn issues_sm2_certificates_and_imports_them() {
    let env = Env::new("profile = \"sansec\"");
    env.cli_ok(
        &["init-token", "--slot", "0", "--label", "ca"],
        &format!("{SO_PIN}\n{USER_PIN}\n"),
    );
    let pt = env.cli_ok(
        &[
            "keygen", "--serial", SERIAL0, "--id", "0A0B", "--label", "seal",
        ],
        &format!("{USER_PIN}\n"),
    );
    let pt = hex::decode(pt.trim()).unwrap();
    let ca = env.dir.path().join("ca");
    let ca_s = ca.to_str().unwrap();
    let root_pem = env.cli_ok(&["ca", "init", "--dir", ca_s, "--org", "Test Root Org"], "");
    let leaf_pem = env.cli_ok(
        &[
            "ca",
            "issue",
            "--dir",
            ca_s,
            "--serial",
            SERIAL0,
            "--id",
            "0A0B",
            "--org",
            "某某市某某有限公司",
            "--cn",
            "合同专用章",
            "--days",
            "30",
        ],
        "",
    );
    let (root_pem, leaf_pem) = (root_pem.trim(), leaf_pem.trim());

    // x509-parser: structure, names, key usage, key, validity.
    let root_der = std::fs::read(ca.join("root.der")).unwrap();
    let leaf_der = std::fs::read(leaf_pem.replace(".pem", ".der")).unwrap();
    let (_, root) = X509Certificate::from_der(&root_der).unwrap();
    let (_, leaf) = X509Certificate::from_der(&leaf_der).unwrap();
    assert_eq!(leaf.version(), X509Version::V3);
    assert_eq!(
        leaf.signature_algorithm.algorithm.to_id_string(),
        "1.2.156.10197.1.501"
    );
    let org = leaf
        .subject()
        .iter_organization()
        .next()
        .unwrap()
        .as_str()
        .unwrap();
    assert_eq!(org, "某某市某某有限公司");
    assert_eq!(
        leaf.subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        "合同专用章"
    );
    let ku = leaf.key_usage().unwrap().unwrap().value;
    assert!(ku.digital_signature() && ku.non_repudiation() && !ku.key_cert_sign());
    assert_eq!(&*leaf.public_key().subject_public_key.data, pt.as_slice());
    assert!(leaf.validity().is_valid());
    assert_eq!(leaf.issuer(), root.subject());
    assert!(root.is_ca());

    // Signatures: sm2 crate (Z over the issuer's key) and OpenSSL 3.
    assert!(sm2_cert_sig_ok(&leaf, &root), "leaf signature");
    assert!(sm2_cert_sig_ok(&root, &root), "root self-signature");
    let mut tampered = leaf_der.clone();
    let n = tampered.len();
    tampered[n - 5] ^= 1;
    let (_, bad) = X509Certificate::from_der(&tampered).unwrap();
    assert!(!sm2_cert_sig_ok(&bad, &root));
    let (ok, text) = openssl(&["x509", "-in", leaf_pem, "-text", "-noout"]);
    assert!(
        ok && text.contains("SM2-with-SM3") && text.contains("Non Repudiation"),
        "{text}"
    );
    // OpenSSL 3.0 needs the SM2 ID for certificate signatures (-vfyopt distid:...).
    let (ok, text) = openssl(&[
        "verify",
        "-vfyopt",
        "distid:1234567812345678",
        "-CAfile",
        root_pem,
        leaf_pem,
    ]);
    assert!(ok && text.contains(": OK"), "{text}");

    // On the token: a CKO_CERTIFICATE with the key's CKA_ID, DER value and subject.
    let slot = env.slot(0);
    let s = env.p11().open_ro_session(slot).unwrap();
    let certs = find(&s, ObjectClass::CERTIFICATE, &[0x0a, 0x0b]);
    assert_eq!(certs.len(), 1);
    let a = s
        .get_attributes(
            certs[0],
            &[
                AttributeType::CertificateType,
                AttributeType::Value,
                AttributeType::Subject,
            ],
        )
        .unwrap();
    assert!(a.contains(&Attribute::CertificateType(CertificateType::X_509)));
    assert!(a.contains(&Attribute::Value(leaf_der.clone())));
    assert!(a.contains(&Attribute::Subject(leaf.subject().as_raw().to_vec())));
}

#[test]
fn maker_and_expired_certificates() {
    let env = Env::new("");
    env.cli_ok(
        &["init-token", "--slot", "1", "--label", "ca"],
        &format!("{SO_PIN}\n{USER_PIN}\n"),
    );
    env.cli_ok(
        &[
            "keygen", "--serial", SERIAL1, "--id", "01", "--label", "maker",
        ],
        &format!("{USER_PIN}\n"),
    );
    env.cli_ok(
        &[
            "keygen", "--serial", SERIAL1, "--id", "02", "--label", "old",
        ],
        &format!("{USER_PIN}\n"),
    );
    let ca = env.dir.path().join("ca");
    let ca_s = ca.to_str().unwrap();
    let root = env.cli_ok(&["ca", "init", "--dir", ca_s, "--org", "Root"], "");
    let maker = env.cli_ok(
        &[
            "ca",
            "issue",
            "--dir",
            ca_s,
            "--serial",
            SERIAL1,
            "--id",
            "01",
            "--org",
            "Seal Maker Co",
            "--cn",
            "maker",
            "--maker",
        ],
        "",
    );
    let old = env.cli_ok(
        &[
            "ca",
            "issue",
            "--dir",
            ca_s,
            "--serial",
            SERIAL1,
            "--id",
            "02",
            "--org",
            "Org",
            "--cn",
            "old",
            "--not-before",
            "2020-01-01",
            "--not-after",
            "2021-01-01T12:00:00Z",
        ],
        "",
    );
    let der = std::fs::read(maker.trim().replace(".pem", ".der")).unwrap();
    let (_, c) = X509Certificate::from_der(&der).unwrap();
    assert_eq!(
        c.subject()
            .iter_organizational_unit()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        "Seal Maker"
    );
    let der = std::fs::read(old.trim().replace(".pem", ".der")).unwrap();
    let (_, c) = X509Certificate::from_der(&der).unwrap();
    assert!(!c.validity().is_valid());
    assert_eq!(c.validity().not_after.timestamp(), 1_609_502_400);
    let (ok, text) = openssl(&[
        "verify",
        "-vfyopt",
        "distid:1234567812345678",
        "-CAfile",
        root.trim(),
        old.trim(),
    ]);
    assert!(!ok && text.contains("expired"), "{text}");
    // Unknown key id: a clear error, nothing imported.
    let out = env.cli(
        &[
            "ca", "issue", "--dir", ca_s, "--serial", SERIAL1, "--id", "77", "--org", "O", "--cn",
            "x",
        ],
        "",
    );
    assert!(
        !out.status.success()
            && String::from_utf8_lossy(&out.stderr).contains("no SM2 key with id 77")
    );
}
