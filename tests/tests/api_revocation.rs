//! Certificate status at stamping and at verification, against an independent CA: OpenSSL's
//! `ocsp` responder and `ca -gencrl` over the deployment's root ([`TestCa`]), and OpenSSL's
//! TSA ([`TestTsa`]) for trusted time.
//!
//! - Online: the seal's and maker's certificates name the CA's OCSP responder and CRL; seald
//!   follows them. Good: the request is signed, with `revocation` usage records; the verifier
//!   reports the status. Revoked after timestamped signatures (a SES_Signature, a PDF's CMS
//!   with its signature-time-stamp): they stand, and without the TSA's trust they fall
//!   (`sealctl verify`); new requests are refused with the date and reason.
//! - Offline: CRL files only. An expired CRL leaves the status unknown (refused by default), a
//!   fresh one lets the seal sign, a new one revoking it stops it; the CA down with nothing
//!   else to ask refuses, or signs under `on_unknown = "allow"`.

use std::process::Command;

use base64::Engine;
use seald::approval::PinMode;
use seald::ses::SesSignature;
use seald_tests::bins::bin;
use seald_tests::checks::b64;
use seald_tests::deployment::{Deployment, Who, SEAL_CERT_SERIAL};
use seald_tests::revocation::TestCa;
use seald_tests::softhsm::USER_PIN;
use seald_tests::stamping::digest;
use seald_tests::tsa::TestTsa;
use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};

fn deployment(ca: &TestCa, extra: &str) -> Deployment {
    let d = Deployment::softhsm_p256_revocable("", PinMode::Window { minutes: 60 }, extra, ca);
    login(&d);
    d
}

/// The custodian logs the seal's token in.
fn login(d: &Deployment) {
    let r = d.login_attempt(USER_PIN);
    assert_eq!(r.status, 200, "{}", r.body);
}

fn stamp(d: &Deployment, digests: &[[u8; 32]]) -> (i64, Value) {
    let id = d.request(d.seal_id, digests);
    d.approve_both(id);
    (id, d.wait_final(id))
}

/// The usage log's `revocation` records of request `id`.
fn status_records(d: &Deployment, id: i64) -> Vec<Value> {
    d.audit("revocation")
        .into_iter()
        .filter(|r| r["detail"]["request_id"] == id)
        .collect()
}

fn check<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id}: {report:#}"))
}

fn verify_signature(d: &Deployment, der: &[u8], want: &[u8; 32]) -> Value {
    let r = d.call(
        "POST",
        "/v1/verify",
        Some(Who::Client),
        Some(&json!({
            "ses_signature": base64::engine::general_purpose::STANDARD.encode(der),
            "digest": hex::encode(want),
        })),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

fn verify_pdf(d: &Deployment, pdf: &[u8]) -> Value {
    let r = d.call(
        "POST",
        "/v1/verify",
        Some(Who::Client),
        Some(&json!({ "pdf": base64::engine::general_purpose::STANDARD.encode(pdf) })),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

/// `sealctl verify` of a SES_Signature file; its exit code and report.
fn sealctl_verify(args: &[&str]) -> (i32, String) {
    let out = Command::new(bin("sealctl"))
        .arg("verify")
        .args(args)
        .output()
        .expect("run sealctl verify");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn online_status_at_stamping_and_verification_with_trusted_time() {
    let ca = TestCa::start();
    let tsa = TestTsa::start();
    let extra = format!("{}\n[revocation]\n", tsa.config("required", "sha256"));
    let d = deployment(&ca, &extra);

    // Good: signed, both certificates asked of the CA's OCSP responder. The PDF first, so that
    // the digest's timestamp is the later one.
    let pdf = d.sealed_pdf("contract");
    assert_eq!(verify_pdf(&d, &pdf)["valid"], true);
    let want = digest(1, 1);
    let (id, v) = stamp(&d, &[want]);
    assert_eq!(v["state"], "signed", "{v}");
    let records = status_records(&d, id);
    assert_eq!(records.len(), 2, "{records:#?}");
    for (r, which) in records.iter().zip(["seal", "maker"]) {
        assert_eq!(r["detail"]["certificate"], which);
        assert_eq!(r["detail"]["status"], "good", "{r:#}");
        let source = r["detail"]["source"].as_str().unwrap();
        assert_eq!(source, format!("OCSP {}", ca.ocsp_url()));
    }
    assert!(
        ca.answered() >= 2,
        "the responder answered {}",
        ca.answered()
    );
    let der = b64(v["signatures"][0]["ses_signature"].as_str().unwrap());
    let report = verify_signature(&d, &der, &want);
    assert_eq!(report["valid"], true, "{report:#}");
    assert_eq!(check(&report, "signer-revocation")["status"], "passed");
    assert_eq!(report["revocation"][0]["certificate"], "signer");
    assert_eq!(report["revocation"][0]["status"], "good");
    assert_eq!(report["revocation"][1]["certificate"], "maker");

    // Revoked a second after the last timestamp (the index keeps whole seconds).
    let gen_time = SesSignature::parse(&der)
        .unwrap()
        .time_stamp_token()
        .unwrap()
        .unwrap();
    let gen_time = seald::tsa::TimeStampToken::parse(&gen_time)
        .unwrap()
        .gen_time();
    let revoked_at = (gen_time + Duration::seconds(2))
        .replace_nanosecond(0)
        .unwrap();
    while OffsetDateTime::now_utc() < revoked_at {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    ca.revoke(SEAL_CERT_SERIAL, revoked_at, "keyCompromise");

    // The timestamped signature was made before the revocation: it stands, and says so.
    let report = verify_signature(&d, &der, &want);
    assert_eq!(report["valid"], true, "{report:#}");
    let status = check(&report, "signer-revocation");
    assert_eq!(status["status"], "passed", "{report:#}");
    let detail = status["detail"].as_str().unwrap();
    assert!(detail.contains("revoked on"), "{detail}");
    assert!(detail.contains("(keyCompromise)"), "{detail}");
    assert!(
        detail.contains("before the revocation and stands"),
        "{detail}"
    );
    assert_eq!(report["revocation"][0]["status"], "revoked");
    assert_eq!(report["revocation"][0]["reason"], "keyCompromise");

    // Without trusting the TSA, nothing proves when it was signed: invalid.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("signature.der");
    std::fs::write(&file, &der).unwrap();
    let root = d.trust_root();
    let common = [
        file.to_str().unwrap(),
        "--digest",
        &hex::encode(want),
        "--trust",
        root.to_str().unwrap(),
        "--online",
    ];
    let (code, text) = sealctl_verify(&common);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("no trusted timestamp proving"), "{text}");
    let tsa_root = tsa.root();
    let trusted = [&common[..], &["--tsa-trust", tsa_root.to_str().unwrap()]].concat();
    let (code, text) = sealctl_verify(&trusted);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("status   signer certificate revoked"),
        "{text}"
    );

    // The same for the PDF's CMS signature and its signature-time-stamp.
    let report = verify_pdf(&d, &pdf);
    assert_eq!(report["valid"], true, "{report:#}");
    let text = report.to_string();
    assert!(text.contains("signature-time-stamp TSA chain"), "{text}");
    assert!(text.contains("before the revocation and stands"), "{text}");
    let pdf_file = dir.path().join("sealed.pdf");
    std::fs::write(&pdf_file, &pdf).unwrap();
    let pdf_args = [
        pdf_file.to_str().unwrap(),
        "--trust",
        root.to_str().unwrap(),
        "--online",
    ];
    let (code, text) = sealctl_verify(&pdf_args);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("FAILED: the signer certificate"), "{text}");
    assert!(text.contains("no trusted timestamp proving"), "{text}");
    let trusted = [&pdf_args[..], &["--tsa-trust", tsa_root.to_str().unwrap()]].concat();
    let (code, text) = sealctl_verify(&trusted);
    assert_eq!(code, 0, "{text}");

    // The seal cannot stamp any more; the refusal is in the usage log.
    let (id, v) = stamp(&d, &[digest(1, 2)]);
    assert_eq!(v["state"], "failed", "{v}");
    let failure = v["failure"].as_str().unwrap();
    assert!(failure.contains("the seal certificate"), "{failure}");
    assert!(failure.contains("(keyCompromise)"), "{failure}");
    assert!(failure.contains("nothing was signed"), "{failure}");
    let records = status_records(&d, id);
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!(records[0]["detail"]["status"], "revoked");
    assert_eq!(
        records[0]["detail"]["consequence"],
        "the request failed; nothing was signed"
    );
}

#[test]
fn offline_crl_files_and_unknown_status_under_each_policy() {
    let mut ca = TestCa::start();
    let crl = ca.dir().join("offline.crl");
    let extra = format!(
        "[revocation]\nfetch = false\ncrl_files = [\"{}\"]\n",
        crl.display()
    );
    let mut d = deployment(&ca, &extra);
    let now = OffsetDateTime::now_utc();

    // An expired CRL says nothing: unknown, refused by default.
    std::fs::write(
        &crl,
        ca.crl_der_between(now - Duration::days(2), now - Duration::days(1)),
    )
    .unwrap();
    let (id, v) = stamp(&d, &[digest(2, 1)]);
    assert_eq!(v["state"], "failed", "{v}");
    let failure = v["failure"].as_str().unwrap();
    assert!(failure.contains("is unknown"), "{failure}");
    assert!(failure.contains("expired on"), "{failure}");
    assert!(failure.contains("on_unknown = \"refuse\""), "{failure}");
    assert_eq!(status_records(&d, id)[0]["detail"]["status"], "unknown");

    // A current CRL: signed; no network was used.
    ca.write_crl(&crl);
    let (id, v) = stamp(&d, &[digest(2, 2)]);
    assert_eq!(v["state"], "signed", "{v}");
    let records = status_records(&d, id);
    assert_eq!(records[0]["detail"]["status"], "good");
    assert_eq!(
        records[0]["detail"]["source"],
        format!("CRL {}", crl.display())
    );
    assert_eq!(ca.answered(), 0, "offline: the responder was not asked");
    assert_eq!(ca.crls_served(), 0, "offline: no CRL was fetched");

    // A new CRL revoking the seal's certificate stops it at once.
    ca.revoke(SEAL_CERT_SERIAL, now - Duration::hours(1), "superseded");
    ca.write_crl(&crl);
    let (_, v) = stamp(&d, &[digest(2, 3)]);
    assert_eq!(v["state"], "failed", "{v}");
    assert!(
        v["failure"].as_str().unwrap().contains("(superseded)"),
        "{v}"
    );

    // Online with the CA down and no CRL file: unknown, refused, each source named.
    ca.stop();
    d.restart_with_config(|text| {
        text.replace("fetch = false", "fetch = true")
            .replace(&format!("crl_files = [\"{}\"]", crl.display()), "")
    });
    login(&d);
    let (_, v) = stamp(&d, &[digest(2, 4)]);
    assert_eq!(v["state"], "failed", "{v}");
    let failure = v["failure"].as_str().unwrap();
    assert!(
        failure.contains(&format!("OCSP {}: could not be reached", ca.ocsp_url())),
        "{failure}"
    );
    assert!(
        failure.contains(&format!("CRL {}: could not be reached", ca.crl_url())),
        "{failure}"
    );

    // ... or signed under on_unknown = "allow", and the usage log says so.
    d.restart_with_config(|text| format!("{text}on_unknown = \"allow\"\n"));
    login(&d);
    let (id, v) = stamp(&d, &[digest(2, 5)]);
    assert_eq!(v["state"], "signed", "{v}");
    let records = status_records(&d, id);
    assert_eq!(records[0]["detail"]["status"], "unknown");
    assert_eq!(
        records[0]["detail"]["consequence"],
        "signed anyway: [revocation] on_unknown = \"allow\""
    );
}
