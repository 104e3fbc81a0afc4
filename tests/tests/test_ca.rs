//! The revocation harness itself: the test CA over a root made in Rust answers OpenSSL's own
//! OCSP client and serves CRLs that OpenSSL reads; once stopped, its URL refuses connections.

use std::path::Path;
use std::process::Command;

use seald::cert::testing::{issue, name, CertSpec};
use seald::crypto::soft::SoftSigner;
use seald::crypto::PrehashSigner;
use seald_tests::openssl::{cert_pem, openssl};
use seald_tests::revocation::TestCa;
use time::{Duration, OffsetDateTime};

const SECRET: [u8; 32] = [0x21; 32];

/// `openssl ocsp` as a client for `cert`; stdout and stderr together.
fn ocsp_query(ca: &TestCa, dir: &Path, cert: &Path) -> String {
    let out = Command::new("openssl")
        .current_dir(dir)
        .arg("ocsp")
        .arg("-issuer")
        .arg(ca.root_pem())
        .arg("-cert")
        .arg(cert)
        .args(["-url", &ca.ocsp_url()])
        .arg("-CAfile")
        .arg(ca.root_pem())
        .output()
        .expect("run openssl ocsp");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "openssl ocsp: {text}");
    assert!(text.contains("Response verify OK"), "{text}");
    // The responder echoes the client's nonce (no "WARNING: no nonce in response").
    assert!(!text.contains("nonce"), "{text}");
    text
}

/// `openssl crl -text` of a DER CRL.
fn crl_text(dir: &Path, der: &[u8]) -> String {
    std::fs::write(dir.join("crl.der"), der).expect("write the CRL");
    let out = openssl(
        dir,
        &["crl", "-inform", "DER", "-in", "crl.der", "-noout", "-text"],
    );
    String::from_utf8(out).expect("text")
}

#[test]
fn openssl_checks_the_seal_certificate_against_the_test_ca() {
    let work = tempfile::tempdir().expect("temp dir");
    let w = work.path();
    let mut ca = TestCa::start();
    let now = OffsetDateTime::now_utc();
    let root_key = SoftSigner::p256_from_secret(&SECRET).expect("key");
    let seal_key = SoftSigner::from_seed(seald::crypto::KeyAlgorithm::P256, 9);
    let root_name = name("测试根CA", "Test Root");
    let spec = |cn: &str, serial: u64, ca: bool, ku: u8| CertSpec {
        cn: cn.into(),
        o: "测试根CA".into(),
        serial,
        not_before: now - Duration::days(1),
        not_after: now + Duration::days(365),
        key_usage: Some(ku),
        ca,
        ocsp_url: None,
        crl_url: None,
    };
    let root = issue(
        &spec("Test Root", 7, true, 0x06),
        root_key.public_key(),
        &root_name,
        &root_key,
    );
    let seal = issue(
        &CertSpec {
            ocsp_url: Some(ca.ocsp_url()),
            crl_url: Some(ca.crl_url()),
            ..spec("Seal", 9, false, 0xc0)
        },
        seal_key.public_key(),
        &root_name,
        &root_key,
    );
    ca.adopt_root(&root, &SECRET);
    ca.record(9, "/C=CN/O=测试根CA/CN=Seal", now + Duration::days(365));

    // OpenSSL reads the URLs the Rust writer put in.
    let seal_pem = cert_pem(w, "seal.pem", &seal);
    let text = String::from_utf8(openssl(w, &["x509", "-in", "seal.pem", "-noout", "-text"]))
        .expect("text");
    assert!(
        text.contains(&format!("OCSP - URI:{}", ca.ocsp_url())),
        "{text}"
    );
    assert!(text.contains(&format!("URI:{}", ca.crl_url())), "{text}");

    let good = ocsp_query(&ca, w, &seal_pem);
    assert!(good.contains("seal.pem: good"), "{good}");
    assert!(good.contains("Next Update:"), "{good}");
    assert_eq!(ca.answered(), 1);

    ca.revoke(9, now - Duration::hours(1), "keyCompromise");
    let revoked = ocsp_query(&ca, w, &seal_pem);
    assert!(revoked.contains("seal.pem: revoked"), "{revoked}");
    assert!(revoked.contains("Reason: keyCompromise"), "{revoked}");
    assert_eq!(ca.answered(), 2);

    let mut answer = ureq::get(&ca.crl_url()).call().expect("GET /crl");
    assert_eq!(
        answer.headers().get("content-type").map(|v| v.as_bytes()),
        Some(&b"application/pkix-crl"[..])
    );
    let crl = answer.body_mut().read_to_vec().expect("CRL body");
    let text = crl_text(w, &crl);
    assert!(text.contains("Serial Number: 09"), "{text}");
    assert!(text.contains("Key Compromise"), "{text}");
    assert_eq!(ca.crls_served(), 1);

    // An expired CRL: its nextUpdate is past.
    let expired = ca.crl_der_between(now - Duration::days(2), now - Duration::days(1));
    let text = crl_text(w, &expired);
    let next = (now - Duration::days(1)).year().to_string();
    assert!(text.contains("Next Update:"), "{text}");
    assert!(text.contains(&next), "{text}");

    // A request OpenSSL cannot parse: OCSPResponse malformedRequest.
    let mut answer = ureq::post(&ca.ocsp_url())
        .header("content-type", "application/ocsp-request")
        .send(&b"not DER"[..])
        .expect("POST /ocsp");
    let body = answer.body_mut().read_to_vec().expect("OCSP body");
    assert_eq!(body, [0x30, 0x03, 0x0a, 0x01, 0x01]);

    let addr = ca.ocsp_url();
    let authority = addr
        .trim_start_matches("http://")
        .trim_end_matches("/ocsp")
        .to_owned();
    ca.stop();
    let err = std::net::TcpStream::connect(authority).expect_err("the responder is down");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
}

#[test]
fn the_revocable_deployment_hands_its_root_and_serials_to_the_ca() {
    use seald::approval::PinMode;
    use seald_tests::deployment::{Deployment, MAKER_CERT_SERIAL, SEAL_CERT_SERIAL};
    let ca = TestCa::start();
    let d = Deployment::softhsm_p256_revocable("", PinMode::EachStamp, "", &ca);
    let work = tempfile::tempdir().expect("temp dir");
    let w = work.path();
    let seal = std::fs::read(d.seal_certificate()).expect("seal certificate");
    let maker = std::fs::read(d.maker_certificate()).expect("maker certificate");
    assert_eq!(
        std::fs::read(d.trust_root()).expect("root"),
        std::fs::read(ca.dir().join("root.der")).expect("the CA's root")
    );
    for (name, der) in [("seal.pem", &seal), ("maker.pem", &maker)] {
        let pem = cert_pem(w, name, der);
        let answer = ocsp_query(&ca, w, &pem);
        assert!(answer.contains(&format!("{name}: good")), "{answer}");
    }
    ca.revoke(SEAL_CERT_SERIAL, OffsetDateTime::now_utc(), "superseded");
    let answer = ocsp_query(&ca, w, &w.join("seal.pem"));
    assert!(answer.contains("seal.pem: revoked"), "{answer}");
    assert!(answer.contains("Reason: superseded"), "{answer}");
    let text = crl_text(w, &ca.crl_der());
    assert!(text.contains("Serial Number: 09"), "{text}");
    assert!(!text.contains("Serial Number: 08"), "{text}");
    assert_eq!(MAKER_CERT_SERIAL, 8);
}
