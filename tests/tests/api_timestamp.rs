//! RFC 3161 timestamps at stamping and at verification, against a real TSA: OpenSSL's
//! `openssl ts -reply` behind a loopback HTTP responder ([`TestTsa`]).
//!
//! One deployment (hsm-sim, Sansec profile), restarted with four `[tsa]` configurations:
//! `required` with SM3 imprints (the token is in the SES_Signature, `openssl ts -verify`
//! accepts it, seald's verifier judges validity at its time, a token moved onto another
//! signature makes that one invalid, the usage log has the TSA's serial and genTime; an OFD
//! document's SES_Signature carries one too, and the OFD verifier uses it; a PDF's CMS carries
//! it as the unsigned signature-time-stamp attribute);
//! `best-effort` with SHA-256 imprints; `required` with the TSA down (the request fails naming
//! the TSA, nothing released); `best-effort` with the TSA down (signed without a token, the
//! failure recorded); a seal policy's `timestamp` overriding `[tsa] policy` both ways.

use std::path::Path;
use std::process::Command;

use base64::Engine;
use seald::ofd::sample::Sample;
use seald::ses::der::{read_single, tag, write};
use seald::ses::{time_stamp_field, SesSignature};
use seald_tests::bins::bin;
use seald_tests::checks::b64;
use seald_tests::deployment::{Deployment, Who};
use seald_tests::stamping::digest;
use seald_tests::tsa::{closed_url, tsa_table, TestTsa};
use serde_json::{json, Value};

/// The SES_Signatures of a signed request.
fn signatures(v: &Value) -> Vec<(Vec<u8>, SesSignature)> {
    assert_eq!(v["state"], "signed", "{v}");
    v["signatures"]
        .as_array()
        .expect("signatures")
        .iter()
        .map(|s| {
            let der = b64(s["ses_signature"].as_str().expect("ses_signature"));
            let parsed = SesSignature::parse(&der).expect("a SES_Signature");
            (der, parsed)
        })
        .collect()
}

/// `openssl ts -verify` of the token seald embedded, over the signature value's bytes.
fn openssl_accepts(tsa: &TestTsa, sig: &SesSignature, dir: &Path, name: &str) {
    let token = sig
        .time_stamp_token()
        .expect("a timeStamp")
        .expect("a readable token");
    let data = dir.join(format!("{name}.value"));
    let tok = dir.join(format!("{name}.tst"));
    std::fs::write(&data, &sig.signature).unwrap();
    std::fs::write(&tok, &token).unwrap();
    let out = Command::new("openssl")
        .args(["ts", "-verify", "-token_in", "-in"])
        .arg(&tok)
        .arg("-data")
        .arg(&data)
        .arg("-CAfile")
        .arg(tsa.root())
        .arg("-untrusted")
        .arg(tsa.cert())
        .output()
        .expect("openssl ts -verify");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("Verification: OK"),
        "openssl ts -verify refused the token: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn verify(d: &Deployment, der: &[u8], want: &[u8; 32]) -> Value {
    let r = d.call(
        "POST",
        "/v1/verify",
        Some(Who::Client),
        Some(&serde_json::json!({
            "ses_signature": base64::engine::general_purpose::STANDARD.encode(der),
            "digest": hex::encode(want),
        })),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

fn check<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id}: {report:#}"))
}

/// `der` with its timeStamp replaced by `field` (the signature itself untouched).
fn with_time_stamp(der: &[u8], own: &[u8], field: &[u8]) -> Vec<u8> {
    let tlv = read_single(der, tag::SEQUENCE, "SES_Signature").unwrap();
    let inner = tlv.value.strip_suffix(own).expect("the timeStamp is last");
    write::tlv(tag::SEQUENCE, &[inner, field].concat())
}

/// The usage log's `timestamp` records of request `id`.
fn timestamp_records(d: &Deployment, id: i64) -> Vec<Value> {
    d.audit("timestamp")
        .into_iter()
        .filter(|r| r["detail"]["request_id"] == id)
        .collect()
}

fn stamp(d: &Deployment, digests: &[[u8; 32]]) -> (i64, Value) {
    let id = d.request(1, digests);
    d.approve_both(id);
    (id, d.wait_final(id))
}

#[test]
fn timestamps_from_an_openssl_tsa_at_stamping_and_verification() {
    let tsa = TestTsa::start();
    let tmp = tempfile::tempdir().unwrap();
    let mut d = Deployment::hsm_sim_with("sansec", &tsa.config("required", "sm3"));
    d.login_custodian();

    // 1. required, SM3 imprints: every signature carries a token the TSA made for it.
    let digests = [digest(1, 1), digest(1, 2)];
    let (id, v) = stamp(&d, &digests);
    let sigs = signatures(&v);
    assert_eq!(sigs.len(), 2);
    assert!(tsa.answered() >= 2, "the TSA answered {}", tsa.answered());
    for (i, (der, sig)) in sigs.iter().enumerate() {
        openssl_accepts(&tsa, sig, tmp.path(), &format!("sm3-{i}"));
        let report = verify(&d, der, &digests[i]);
        assert_eq!(report["valid"], true, "{report:#}");
        assert_eq!(report["judged_by"], "timestamp", "{report:#}");
        assert_eq!(report["timestamp"]["hash"], "SM3", "{report:#}");
        let when = check(&report, "signing-time");
        let detail = when["detail"].as_str().unwrap();
        assert_eq!(when["status"], "passed", "{report:#}");
        assert!(
            detail.starts_with("timestamp by seald test TSA at ")
                && detail.ends_with("certificate validity judged at the timestamp's time"),
            "{detail}"
        );
        for id in [
            "timestamp-imprint",
            "timestamp-signature",
            "timestamp-chain",
        ] {
            assert_eq!(check(&report, id)["status"], "passed", "{report:#}");
        }
    }
    // The usage log: one `timestamp` record per signature, with the TSA's serial and genTime.
    let records = timestamp_records(&d, id);
    assert_eq!(records.len(), 2, "{records:#?}");
    for r in &records {
        let detail = &r["detail"];
        assert_eq!(detail["outcome"], "obtained", "{detail}");
        assert_eq!(detail["tsa"], "seald test TSA", "{detail}");
        assert_eq!(detail["tsa_url"], tsa.url(), "{detail}");
        assert!(detail["serial"].as_str().is_some_and(|s| !s.is_empty()));
        assert!(detail["gen_time"]
            .as_str()
            .is_some_and(|t| t.starts_with("20")));
        assert_eq!(detail["policy"], "required");
    }
    let mut documents: Vec<String> = records
        .iter()
        .map(|r| r["detail"]["document_digest"].as_str().unwrap().to_owned())
        .collect();
    documents.sort();
    let mut want: Vec<String> = digests.iter().map(hex::encode).collect();
    want.sort();
    assert_eq!(documents, want);

    // sealctl verify with the TSA root says the same in words.
    let file = tmp.path().join("sig0.der");
    std::fs::write(&file, &sigs[0].0).unwrap();
    let out = Command::new(bin("sealctl"))
        .arg("verify")
        .arg(&file)
        .arg("--digest")
        .arg(hex::encode(digests[0]))
        .arg("--tsa-trust")
        .arg(tsa.root())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("timestamp by seald test TSA at"), "{text}");
    assert!(
        text.contains("judged   at") && text.contains("(timestamp)"),
        "{text}"
    );

    // A token over another signature: the first signature's token on the second → invalid.
    let token0 = sigs[0].1.time_stamp_token().unwrap().unwrap();
    let token1 = sigs[1].1.time_stamp_token().unwrap().unwrap();
    let forged = with_time_stamp(
        &sigs[1].0,
        &time_stamp_field(&token1),
        &time_stamp_field(&token0),
    );
    let report = verify(&d, &forged, &digests[1]);
    assert_eq!(report["valid"], false, "{report:#}");
    let imprint = check(&report, "timestamp-imprint");
    assert_eq!(imprint["status"], "failed", "{report:#}");
    assert!(
        imprint["detail"]
            .as_str()
            .unwrap()
            .contains("made for other data"),
        "{imprint}"
    );
    assert_eq!(report["judged_by"], "timeInfo", "{report:#}");

    // An OFD document: the SES_Signature in SignedValue.dat carries the token, and the OFD
    // verifier (POST /v1/verify with the TSA roots of [tsa]) judges it at the token's time.
    let ofd = Sample::new(1).build();
    let request = json!({
        "seal_id": d.seal_id,
        "purpose": "timestamped OFD",
        "placements": [{ "kind": "at", "page": 1, "x": 100, "y": 200 }],
    });
    let r = d.upload(Who::Client, &request, &[("contract.ofd", &ofd)]);
    assert_eq!(r.status, 202, "{}", r.body);
    let ofd_id = r.json()["id"].as_i64().unwrap();
    d.approve_both(ofd_id);
    let v = d.wait_final(ofd_id);
    let sigs = signatures(&v);
    openssl_accepts(&tsa, &sigs[0].1, tmp.path(), "ofd");
    let sealed = d.download(Who::Client, ofd_id, 1);
    assert_eq!(sealed.status, 200);
    let r = d.call(
        "POST",
        "/v1/verify",
        Some(Who::Client),
        Some(&json!({ "ofd": base64::engine::general_purpose::STANDARD.encode(&sealed.body) })),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let report = r.json();
    assert_eq!(report["valid"], true, "{report:#}");
    let text = report.to_string();
    assert!(
        text.contains("\"judged_by\":\"timestamp\"")
            && text.contains("timestamp by seald test TSA at"),
        "{report:#}"
    );
    assert_eq!(timestamp_records(&d, ofd_id).len(), 1);

    // A PDF document (SM2 seal: a GB/T 35275 CMS in /Contents): the token over the
    // SignerInfo's signature value is its unsigned signature-time-stamp attribute.
    let pdf = seald::pdf::sample::Sample::new(1).build();
    let r = d.upload(Who::Client, &request, &[("contract.pdf", &pdf)]);
    assert_eq!(r.status, 202, "{}", r.body);
    let pdf_id = r.json()["id"].as_i64().unwrap();
    d.approve_both(pdf_id);
    let v = d.wait_final(pdf_id);
    assert_eq!(v["state"], "signed", "{v}");
    let cms = b64(v["signatures"][0]["ses_signature"].as_str().unwrap());
    let sd = seald::cms::SignedData::parse(&cms, true).expect("a SignedData");
    let token = sd
        .signer
        .signature_time_stamp()
        .expect("a signature-time-stamp attribute");
    let value = tmp.path().join("pdf.value");
    let tst = tmp.path().join("pdf.tst");
    std::fs::write(&value, sd.signer.signature).unwrap();
    std::fs::write(&tst, token).unwrap();
    let out = Command::new("openssl")
        .args(["ts", "-verify", "-token_in", "-in"])
        .arg(&tst)
        .arg("-data")
        .arg(&value)
        .arg("-CAfile")
        .arg(tsa.root())
        .arg("-untrusted")
        .arg(tsa.cert())
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Verification: OK"),
        "openssl ts -verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let sealed = d.download(Who::Client, pdf_id, 1);
    assert_eq!(sealed.status, 200);
    let r = d.call(
        "POST",
        "/v1/verify",
        Some(Who::Client),
        Some(&json!({ "pdf": base64::engine::general_purpose::STANDARD.encode(&sealed.body) })),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let report = r.json();
    assert_eq!(report["valid"], true, "{report:#}");
    assert!(
        report
            .to_string()
            .contains("ok: signature-time-stamp: the SM3 imprint"),
        "{report:#}"
    );
    let records = timestamp_records(&d, pdf_id);
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0]["detail"]["document_digest"], v["files"][0]["sm3"],
        "{records:#?}"
    );

    // 2. best-effort, SHA-256 imprints, TSA up: tokens as before.
    let up = tsa_table(tsa.url(), &tsa.root(), "best-effort", "sha256");
    d.restart_with_config(|c| replace_tsa(c, &up));
    d.login_custodian();
    let (_, v) = stamp(&d, &[digest(2, 1)]);
    let sigs = signatures(&v);
    openssl_accepts(&tsa, &sigs[0].1, tmp.path(), "sha256");
    let report = verify(&d, &sigs[0].0, &digest(2, 1));
    assert_eq!(report["valid"], true, "{report:#}");
    assert_eq!(report["timestamp"]["hash"], "SHA-256", "{report:#}");
    assert_eq!(report["judged_by"], "timestamp", "{report:#}");

    // 3. required, TSA down: the request fails naming the TSA; nothing is released.
    let down = closed_url();
    let table = tsa_table(&down, &tsa.root(), "required", "sm3");
    d.restart_with_config(|c| replace_tsa(c, &table));
    d.login_custodian();
    let (id, v) = stamp(&d, &[digest(3, 1)]);
    assert_eq!(v["state"], "failed", "{v}");
    let failure = v["failure"].as_str().unwrap_or_default();
    assert!(
        failure.contains(&down) && failure.contains("could not be reached"),
        "{failure}"
    );
    assert!(failure.contains("`required`"), "{failure}");
    assert!(
        v["signatures"].as_array().is_none_or(|s| s.is_empty()),
        "nothing released: {v}"
    );
    let records = timestamp_records(&d, id);
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!(records[0]["detail"]["outcome"], "failed");
    assert_eq!(records[0]["detail"]["policy"], "required");
    assert!(records[0]["detail"]["error"]
        .as_str()
        .unwrap()
        .contains(&down));
    let signed = d
        .audit("signature")
        .into_iter()
        .filter(|r| r["detail"]["request_id"] == id)
        .count();
    assert_eq!(signed, 0, "no signature record for a failed request");

    // 4. best-effort, TSA down: signed without a token, the failure in the usage log.
    let table = tsa_table(&down, &tsa.root(), "best-effort", "sm3");
    d.restart_with_config(|c| replace_tsa(c, &table));
    d.login_custodian();
    let (id, v) = stamp(&d, &[digest(4, 1)]);
    let sigs = signatures(&v);
    assert!(
        sigs[0].1.time_stamp.is_none(),
        "no token when the TSA is down"
    );
    let report = verify(&d, &sigs[0].0, &digest(4, 1));
    assert_eq!(report["valid"], true, "{report:#}");
    assert_eq!(report["judged_by"], "timeInfo", "{report:#}");
    assert!(check(&report, "signing-time")["detail"]
        .as_str()
        .unwrap()
        .starts_with("no timestamp"));
    let records = timestamp_records(&d, id);
    assert_eq!(records.len(), 1, "{records:#?}");
    let detail = &records[0]["detail"];
    assert_eq!(detail["outcome"], "failed", "{detail}");
    assert_eq!(detail["policy"], "best-effort", "{detail}");
    assert_eq!(
        detail["consequence"], "the signature was kept without a timestamp",
        "{detail}"
    );
    assert_eq!(
        detail["document_digest"],
        hex::encode(digest(4, 1)),
        "{detail}"
    );

    // 5. The seal's own policy overrides [tsa] policy: `off` asks nothing even under the
    // daemon's best-effort; `required` asks even when the daemon's default is off.
    set_seal_timestamp(&d, Some("off"));
    let (id, v) = stamp(&d, &[digest(5, 1)]);
    assert!(signatures(&v)[0].1.time_stamp.is_none());
    assert!(timestamp_records(&d, id).is_empty(), "not asked");
    let table = tsa_table(tsa.url(), &tsa.root(), "off", "sm3");
    d.restart_with_config(|c| replace_tsa(c, &table));
    d.login_custodian();
    set_seal_timestamp(&d, Some("required"));
    let (id, v) = stamp(&d, &[digest(5, 2)]);
    let sigs = signatures(&v);
    openssl_accepts(&tsa, &sigs[0].1, tmp.path(), "seal-policy");
    let records = timestamp_records(&d, id);
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!(records[0]["detail"]["policy"], "required");
    set_seal_timestamp(&d, None);
    let (id, v) = stamp(&d, &[digest(5, 3)]);
    assert!(
        signatures(&v)[0].1.time_stamp.is_none(),
        "back to [tsa] policy = off"
    );
    assert!(timestamp_records(&d, id).is_empty());
}

/// Sets (or removes) `timestamp` in seal 1's stored policy, as a policy change would.
fn set_seal_timestamp(d: &Deployment, value: Option<&str>) {
    let db = rusqlite::Connection::open(d.store()).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    let changed = match value {
        Some(v) => db.execute(
            "UPDATE policies SET body = json_set(body, '$.timestamp', ?1) WHERE seal_id = 1",
            [v],
        ),
        None => db.execute(
            "UPDATE policies SET body = json_remove(body, '$.timestamp') WHERE seal_id = 1",
            [],
        ),
    }
    .unwrap();
    assert_eq!(changed, 1);
}

/// `config` with its `[tsa]` table (the last table) replaced by `table`.
fn replace_tsa(config: &str, table: &str) -> String {
    let at = config.rfind("\n[tsa]\n").expect("a [tsa] table");
    format!("{}{table}", &config[..at])
}

/// A P-256 seal's PAdES signature with the TSA's token as its signature-time-stamp: pyHanko
/// (an independent validator) accepts the signature and its timestamp against the two roots.
#[test]
fn a_pades_signature_with_a_timestamp_validates_in_pyhanko() {
    use seald::approval::PinMode;
    use seald_tests::pdf::{keep, pyhanko};
    use seald_tests::softhsm::USER_PIN;
    let tsa = TestTsa::start();
    let d = Deployment::softhsm_p256(
        "",
        PinMode::Window { minutes: 60 },
        &tsa.config("required", "sha256"),
    );
    let r = d.call(
        "POST",
        &format!("/v1/devices/{}/login", d.serial),
        Some(Who::Custodian),
        Some(&json!({ "pin": USER_PIN })),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let sealed = d.sealed_pdf("timestamped PAdES");
    let path = keep("p256-timestamped.pdf", &sealed);
    let out = Command::new(pyhanko())
        .args([
            "--verbose",
            "sign",
            "validate",
            "--pretty-print",
            "--no-revocation-check",
            "--trust",
        ])
        .arg(d.trust_root())
        .arg("--trust")
        .arg(tsa.root())
        .arg(&path)
        .output()
        .expect("run pyhanko");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "pyHanko: {said}");
    for line in [
        "This timestamp is backed by a time stamping authority.",
        "The timestamp token is cryptographically sound.",
        "The TSA certificate is trusted.",
    ] {
        assert!(said.contains(line), "pyHanko does not say {line:?}: {said}");
    }
}
