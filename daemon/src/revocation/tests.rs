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
        CrlVerdict::Says(Status::Good, detail, next) => {
            assert!(detail.contains("next update 2036"));
            assert_eq!(next, datetime!(2036-11-29 00:00 UTC));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        crl::judge(&crl, &cert("revoked"), &root, NOW),
        CrlVerdict::Says(
            Status::Revoked {
                at: datetime!(2026-11-01 12:00 UTC),
                reason: Some("keyCompromise")
            },
            "issued 2026-11-29T00:00:00Z, next update 2036-11-29T00:00:00Z".into(),
            datetime!(2036-11-29 00:00 UTC)
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
    // Same issuer name, another key: not the issuer's CRL.
    match crl::judge(&data("twin-crl.der"), &cert("revoked"), &root, NOW) {
        CrlVerdict::Unusable(why) => assert!(why.contains("does not verify"), "{why}"),
        other => panic!("{other:?}"),
    }
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
    assert_eq!(revoked.kind(), "revoked");
    assert_eq!(revoked.reason(), Some("keyCompromise"));
    assert!(revoked.source.as_deref().unwrap().ends_with("crl.der"));
    assert!(revoked
        .sentence()
        .contains("revoked on 2026-11-01T12:00:00Z"));

    // A revocation in any current CRL counts, whatever the order.
    let twice = crl_checker(&["crl.der", "crl.der"]);
    assert_eq!(
        twice.status("signer", &cert("revoked"), &root, NOW).kind(),
        "revoked"
    );

    let only_expired = crl_checker(&["expired-crl.pem"]);
    let unknown = only_expired.status("signer", &cert("good"), &root, NOW);
    assert_eq!(unknown.kind(), "unknown");
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
    assert_eq!((status.kind(), why), ("good", None));
    // No root issued it: its status cannot be known; refused by default, allowed by choice.
    let (_, why) = checker.check_for_signing("seal", &cert("good"), None, NOW);
    let why = why.unwrap();
    assert!(why.contains("not a configured trust root"), "{why}");
    let lenient = Checker::new(Settings {
        on_unknown: OnUnknown::Allow,
        ..Settings::default()
    });
    let (status, why) = lenient.check_for_signing("seal", &cert("good"), Some(&root), NOW);
    assert_eq!((status.kind(), why), ("unknown", None));
}

#[test]
fn a_signature_stands_only_if_trusted_time_precedes_the_revocation() {
    let root = cert("root");
    let status = crl_checker(&["crl.der"]).status("signer", &cert("revoked"), &root, NOW);
    let before = datetime!(2026-10-01 00:00 UTC);
    let after = datetime!(2026-11-15 00:00 UTC);
    let judge = |t| judge_signature(&status, t, OnUnknown::Refuse);
    assert!(matches!(judge(Some(before)), Judgement::Stands(_)));
    assert!(matches!(judge(Some(after)), Judgement::Fails(_)));
    match judge(None) {
        Judgement::Fails(why) => assert!(why.contains("no trusted timestamp"), "{why}"),
        other => panic!("{other:?}"),
    }
    // Unknown: a failure unless the deployment allows it.
    let unknown = crl_checker(&["expired-crl.pem"]).status("signer", &cert("good"), &root, NOW);
    assert!(matches!(
        judge_signature(&unknown, Some(before), OnUnknown::Refuse),
        Judgement::Fails(_)
    ));
    assert!(matches!(
        judge_signature(&unknown, Some(before), OnUnknown::Allow),
        Judgement::NotApplicable(_)
    ));
}

#[test]
fn a_compromised_key_counts_from_its_invalidity_date() {
    let root = cert("root");
    let compromised = Status::Revoked {
        at: datetime!(2026-10-15 00:00 UTC),
        reason: Some("keyCompromise"),
    };
    match crl::judge(&data("crl.der"), &cert("compromised"), &root, NOW) {
        CrlVerdict::Says(status, _, _) => assert_eq!(status, compromised),
        other => panic!("{other:?}"),
    }
    let answer = ocsp_answer("ocsp-compromised.der", "compromised", NOW).unwrap();
    assert_eq!(answer.status, compromised);
}

#[test]
fn an_expired_certificate_said_good_is_unknown() {
    // The CA may have dropped it from its CRL once it expired.
    let after_expiry = cert("good").facts().not_after + time::Duration::days(1);
    let crl = std::fs::read(path("crl.der")).unwrap();
    assert!(matches!(
        crl::judge(&crl, &cert("good"), &cert("root"), after_expiry),
        CrlVerdict::Says(Status::Good, _, _)
    ));
    let status =
        crl_checker(&["crl.der"]).status("signer", &cert("good"), &cert("root"), after_expiry);
    assert_eq!(status.kind(), "unknown");
    assert!(
        status.detail.contains("proves nothing"),
        "{}",
        status.detail
    );
}

fn ocsp_answer(file: &str, about: &str, at: OffsetDateTime) -> Result<OcspAnswer, String> {
    let root = cert("root");
    let request = OcspRequest::new(&cert(about), &root).unwrap();
    request.check_answer(&data(file), &root, at)
}

#[test]
fn ocsp_answers_from_the_issuer_or_its_delegate_are_believed() {
    let answer = ocsp_answer("ocsp-good.der", "good", NOW).unwrap();
    assert_eq!(answer.status, Status::Good);
    assert!(
        answer.detail.contains("the issuer Revocation Test Root"),
        "{}",
        answer.detail
    );
    assert!(
        answer.detail.contains("did not echo the nonce"),
        "{}",
        answer.detail
    );
    assert!(answer.next_update.is_some());
    let answer = ocsp_answer("ocsp-revoked.der", "revoked", NOW).unwrap();
    assert_eq!(
        answer.status,
        Status::Revoked {
            at: datetime!(2026-11-01 12:00 UTC),
            reason: Some("keyCompromise")
        }
    );
    let answer = ocsp_answer("ocsp-delegated.der", "good", NOW).unwrap();
    assert!(
        answer.detail.contains("a responder delegated by"),
        "{}",
        answer.detail
    );
}

#[test]
fn ocsp_answers_that_do_not_fit_are_refused() {
    let refused = |file: &str, about: &str, at: OffsetDateTime, why: &str| {
        let err = ocsp_answer(file, about, at).unwrap_err();
        assert!(err.contains(why), "{file}: {err}");
    };
    // Signed by a certificate of the CA that may not sign OCSP answers.
    refused(
        "ocsp-impostor.der",
        "good",
        NOW,
        "does not allow OCSP signing",
    );
    // Signed by a responder with the right usage, but certified by another CA.
    refused("ocsp-foreign.der", "good", NOW, "did not certify");
    // About another certificate.
    refused(
        "ocsp-good.der",
        "revoked",
        NOW,
        "does not speak of the certificate",
    );
    // Its nonce is another request's.
    refused("ocsp-nonce.der", "good", NOW, "nonce is not the request's");
    // Past its nextUpdate.
    refused(
        "ocsp-good.der",
        "good",
        datetime!(2037-01-01 00:00 UTC),
        "stale",
    );
    // Neither our nonce nor a nextUpdate: only a fresh one is believed.
    refused("ocsp-no-next-update.der", "good", NOW, "may be replayed");
    // Checked against another CA: its key does not verify the answer.
    let other = cert("other");
    let request = OcspRequest::new(&cert("good"), &other).unwrap();
    let err = request
        .check_answer(&data("ocsp-good.der"), &other, NOW)
        .unwrap_err();
    assert!(err.contains("which Other Root did not certify"), "{err}");
    // Not an OCSP answer at all.
    refused("crl.der", "good", NOW, "malformed OCSP answer");
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
    assert_eq!(status.kind(), "unknown");
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
