//! CRLs and OCSP answers made by OpenSSL (`testdata/make.sh`: `openssl ca -gencrl`,
//! `openssl ocsp -index … -reqin … -respout …`), judged at fixed times inside their validity.

use time::macros::datetime;
use time::OffsetDateTime;

use super::*;
use crate::cert::{StatusUrls, TrustStore};

/// Inside every fixture's validity (the CRL is from 2026-11-29, the revocation 2026-11-01).
const NOW: OffsetDateTime = datetime!(2027-01-01 00:00 UTC);

fn cert(name: &str) -> Certificate {
    let pem = std::fs::read(format!(
        "{}/src/revocation/testdata/{name}.pem",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    TrustStore::from_pem_or_der(&pem).unwrap().roots()[0].clone()
}

fn data(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/src/revocation/testdata/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn path(name: &str) -> PathBuf {
    PathBuf::from(format!(
        "{}/src/revocation/testdata/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
}

fn crl_checker(files: &[&str]) -> Checker {
    Checker::new(Settings {
        crl_files: files.iter().map(|f| path(f)).collect(),
        timeout: std::time::Duration::from_secs(2),
        ..Settings::default()
    })
}

#[test]
fn a_crl_says_good_or_revoked_with_date_and_reason() {
    let (root, crl) = (cert("root"), data("crl.der"));
    match crl::judge(&crl, &cert("good"), &root, NOW) {
        CrlVerdict::Says(Status::Good, detail) => assert!(detail.contains("next update 2036")),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        crl::judge(&crl, &cert("revoked"), &root, NOW),
        CrlVerdict::Says(
            Status::Revoked {
                at: datetime!(2026-11-01 12:00 UTC),
                reason: Some("keyCompromise")
            },
            "issued 2026-11-29T00:00:00Z, next update 2036-11-29T00:00:00Z".into()
        )
    );
}

#[test]
fn an_expired_or_forged_crl_says_nothing() {
    let root = cert("root");
    let expired = crl::to_der(&data("expired-crl.pem")).unwrap();
    match crl::judge(&expired, &cert("revoked"), &root, NOW) {
        CrlVerdict::Unusable(why) => assert!(why.contains("expired on 2026-11-02"), "{why}"),
        other => panic!("{other:?}"),
    }
    // A byte of the signed part changed: the signature no longer verifies.
    let mut forged = data("crl.der");
    let at = forged.len() / 2;
    forged[at] ^= 1;
    assert!(matches!(
        crl::judge(&forged, &cert("good"), &root, NOW),
        CrlVerdict::Unusable(_)
    ));
    // Another CA's certificate: not this CRL's business.
    assert_eq!(
        crl::judge(&data("crl.der"), &cert("other"), &cert("other"), NOW),
        CrlVerdict::OtherIssuer
    );
}

#[test]
fn the_checker_reads_crl_files_and_says_what_it_tried() {
    let root = cert("root");
    let checker = crl_checker(&["expired-crl.pem", "crl.der"]);
    let revoked = checker.status("signer", &cert("revoked"), &root, NOW);
    assert_eq!(revoked.status, "revoked");
    assert_eq!(revoked.reason, Some("keyCompromise"));
    assert!(revoked.source.as_deref().unwrap().ends_with("crl.der"));
    assert!(revoked
        .sentence()
        .contains("revoked on 2026-11-01T12:00:00Z"));

    let only_expired = crl_checker(&["expired-crl.pem"]);
    let unknown = only_expired.status("signer", &cert("good"), &root, NOW);
    assert_eq!(unknown.status, "unknown");
    assert!(unknown.detail.contains("expired"), "{}", unknown.detail);

    let missing = crl_checker(&["no-such.crl"]);
    let unknown = missing.status("signer", &cert("good"), &root, NOW);
    assert!(
        unknown.detail.contains("no-such.crl: cannot read it"),
        "{}",
        unknown.detail
    );
}

#[test]
fn stamping_refuses_revoked_and_by_policy_unknown() {
    let root = cert("root");
    let checker = crl_checker(&["crl.der"]);
    let (_, why) = checker.check_for_signing("seal", &cert("revoked"), Some(&root), NOW);
    let why = why.unwrap();
    assert!(
        why.contains("revoked on 2026-11-01T12:00:00Z (keyCompromise)"),
        "{why}"
    );
    assert!(why.contains("nothing was signed"));
    let (status, why) = checker.check_for_signing("seal", &cert("good"), Some(&root), NOW);
    assert_eq!((status.status, why), ("good", None));
    // No root issued it: its status cannot be known; refused by default, allowed by choice.
    let (_, why) = checker.check_for_signing("seal", &cert("good"), None, NOW);
    let why = why.unwrap();
    assert!(why.contains("not a configured trust root"), "{why}");
    let lenient = Checker::new(Settings {
        on_unknown: OnUnknown::Allow,
        ..Settings::default()
    });
    let (status, why) = lenient.check_for_signing("seal", &cert("good"), Some(&root), NOW);
    assert_eq!((status.status, why), ("unknown", None));
}

#[test]
fn a_signature_stands_only_if_trusted_time_precedes_the_revocation() {
    let root = cert("root");
    let status = crl_checker(&["crl.der"]).status("signer", &cert("revoked"), &root, NOW);
    let before = datetime!(2026-10-01 00:00 UTC);
    let after = datetime!(2026-11-15 00:00 UTC);
    assert!(matches!(
        judge_signature(&status, Some(before)),
        Judgement::Stands(_)
    ));
    assert!(matches!(
        judge_signature(&status, Some(after)),
        Judgement::Fails(_)
    ));
    match judge_signature(&status, None) {
        Judgement::Fails(why) => assert!(why.contains("no trusted timestamp"), "{why}"),
        other => panic!("{other:?}"),
    }
}

fn ocsp_answer(file: &str, about: &str, at: OffsetDateTime) -> Result<(Status, String), String> {
    let root = cert("root");
    let request = OcspRequest::new(&cert(about), &root).unwrap();
    request.check_answer(&data(file), &root, at)
}

#[test]
fn ocsp_answers_from_the_issuer_or_its_delegate_are_believed() {
    let (status, detail) = ocsp_answer("ocsp-good.der", "good", NOW).unwrap();
    assert_eq!(status, Status::Good);
    assert!(
        detail.contains("the issuer Revocation Test Root"),
        "{detail}"
    );
    assert!(detail.contains("did not echo the nonce"), "{detail}");
    let (status, _) = ocsp_answer("ocsp-revoked.der", "revoked", NOW).unwrap();
    assert_eq!(
        status,
        Status::Revoked {
            at: datetime!(2026-11-01 12:00 UTC),
            reason: Some("keyCompromise")
        }
    );
    let (_, detail) = ocsp_answer("ocsp-delegated.der", "good", NOW).unwrap();
    assert!(detail.contains("a responder delegated by"), "{detail}");
}

#[test]
fn ocsp_answers_that_do_not_fit_are_refused() {
    // Signed by a certificate of the CA that may not sign OCSP answers.
    let why = ocsp_answer("ocsp-impostor.der", "good", NOW).unwrap_err();
    assert!(why.contains("does not allow OCSP signing"), "{why}");
    // About another certificate.
    let why = ocsp_answer("ocsp-good.der", "revoked", NOW).unwrap_err();
    assert!(why.contains("does not speak of the certificate"), "{why}");
    // Its nonce is another request's.
    let why = ocsp_answer("ocsp-nonce.der", "good", NOW).unwrap_err();
    assert!(why.contains("nonce"), "{why}");
    // Past its nextUpdate.
    let why = ocsp_answer("ocsp-good.der", "good", datetime!(2037-01-01 00:00 UTC)).unwrap_err();
    assert!(why.contains("stale"), "{why}");
    // Checked against another CA.
    let other = cert("other");
    let request = OcspRequest::new(&cert("good"), &other).unwrap();
    assert!(request
        .check_answer(&data("ocsp-good.der"), &other, NOW)
        .is_err());
    // Not an OCSP answer at all.
    assert!(ocsp_answer("crl.der", "good", NOW).is_err());
}

#[test]
fn the_request_is_a_well_formed_ocsp_request() {
    let request = OcspRequest::new(&cert("good"), &cert("root")).unwrap();
    let der = request.encode();
    // OpenSSL reads it back: SHA-1 CertID for serial 0x10, a nonce.
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &der).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["ocsp", "-req_text", "-reqin"])
        .arg(file.path())
        .output()
        .expect("run openssl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Hash Algorithm: sha1"), "{text}");
    assert!(text.contains("Serial Number: 10"), "{text}");
    assert!(text.contains("OCSP Nonce"), "{text}");
}

#[test]
fn certificates_name_their_status_urls() {
    let urls = cert("good").status_urls();
    assert_eq!(urls.ocsp, vec!["http://127.0.0.1:9/ocsp".to_string()]);
    assert_eq!(urls.crl, vec!["http://127.0.0.1:9/ca.crl".to_string()]);
    assert_eq!(cert("root").status_urls(), StatusUrls::default());
}

#[test]
fn urls_are_followed_only_when_fetch_is_on() {
    // The certificate names a responder and a CRL on a closed port.
    let root = cert("root");
    let offline = crl_checker(&[]);
    let status = offline.status("signer", &cert("good"), &root, NOW);
    assert!(
        status.detail.contains("no OCSP responder or CRL"),
        "{}",
        status.detail
    );
    let online = Checker::new(Settings {
        fetch: true,
        timeout: std::time::Duration::from_secs(2),
        ..Settings::default()
    });
    let status = online.status("signer", &cert("good"), &root, NOW);
    assert_eq!(status.status, "unknown");
    assert!(
        status
            .detail
            .contains("OCSP http://127.0.0.1:9/ocsp: could not be reached"),
        "{}",
        status.detail
    );
    assert!(
        status
            .detail
            .contains("CRL http://127.0.0.1:9/ca.crl: could not be reached"),
        "{}",
        status.detail
    );
}
