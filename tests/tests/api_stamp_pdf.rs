//! PDF documents through the API (issue 17): upload (recognised by content), approval, sealing
//! on SoftHSM P-256 (PAdES, checked by pyHanko, pdfsig and qpdf) and hsm-sim SM2 (GB/T 35275
//! CMS, checked by seald's verifier and OpenSSL), the seal drawn where the placement says,
//! earlier signatures surviving later seals, tampering found, bad PDFs refused.

use std::path::Path;
use std::process::Command;

use base64::Engine;
use serde_json::{json, Value};

use seald::approval::PinMode;
use seald::pdf::sample::Sample;
use seald::pdf::{ChangesAfter, PdfReport};
use seald_tests::bins::bin;
use seald_tests::deployment::{Deployment, Who};
use seald_tests::pdf::{
    assert_qpdf_ok, keep, mm_to_px, pdfsig, pyhanko_validate, render, Rendered,
};
use seald_tests::softhsm::USER_PIN;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Uploads `files` with `request`, has both approvers approve and waits; the signed request.
fn stamp(d: &Deployment, request: &Value, files: &[(&str, &[u8])]) -> Value {
    let r = d.upload(Who::Client, request, files);
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.json()["id"].as_i64().unwrap();
    d.approve_both(id);
    let v = d.wait_final(id);
    assert_eq!(v["state"], "signed", "{v}");
    v
}

/// Downloads sealed document `n` of request `v`; asserts it is served as a PDF.
fn download(d: &Deployment, v: &Value, n: u32) -> Vec<u8> {
    let r = d.download(Who::Client, v["id"].as_i64().unwrap(), n);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), Some("application/pdf"));
    assert!(r.header("content-disposition").unwrap().contains(".pdf"));
    r.body
}

/// seald's verifier on `bytes` against `root` (PEM or DER).
fn verify(bytes: &[u8], root: &Path) -> PdfReport {
    let trust = seald::cert::TrustStore::from_pem_or_der(&std::fs::read(root).unwrap()).unwrap();
    seald::pdf::verify_pdf(bytes, Some(&trust)).expect("a readable PDF")
}

/// `POST /v1/verify` with the PDF: the report's verdict.
fn api_verdict(d: &Deployment, bytes: &[u8]) -> bool {
    let r = d.call(
        "POST",
        "/v1/verify",
        Some(Who::Auditor),
        Some(&json!({ "pdf": B64.encode(bytes) })),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["valid"].as_bool().unwrap()
}

/// Asserts the seal's ink on the rendered page lies in the box `[x, y, w, h]` (mm from the
/// top-left), give or take 2 px, and nowhere else.
fn assert_seal_at(page: &Rendered, dpi: u32, boundary: [f64; 4]) {
    let red = page.red_box().expect("the seal is drawn on the page");
    let want = [
        mm_to_px(boundary[0], dpi),
        mm_to_px(boundary[1], dpi),
        mm_to_px(boundary[0] + boundary[2], dpi),
        mm_to_px(boundary[1] + boundary[3], dpi),
    ];
    let slack = 3.0;
    assert!(
        red[0] as f64 >= want[0] - slack
            && red[1] as f64 >= want[1] - slack
            && red[2] as f64 <= want[2] + slack
            && red[3] as f64 <= want[3] + slack,
        "the ink {red:?} is inside the placement's box {want:?} (px)"
    );
    // It fills the box, not a corner of it.
    assert!(
        (red[2] - red[0]) as f64 >= (want[2] - want[0]) * 0.8
            && (red[3] - red[1]) as f64 >= (want[3] - want[1]) * 0.8,
        "the ink {red:?} fills the placement's box {want:?} (px)"
    );
}

fn boundary(v: &Value, file: usize, stamp: usize) -> [f64; 4] {
    let b = &v["files"][file]["plan"]["stamps"][stamp]["boundary"];
    [0, 1, 2, 3].map(|i| b[i].as_f64().unwrap())
}

fn p256_deployment() -> Deployment {
    let d = Deployment::softhsm_p256("", PinMode::Window { minutes: 60 }, "");
    let r = d.call(
        "POST",
        &format!("/v1/devices/{}/login", d.serial),
        Some(Who::Custodian),
        Some(&json!({ "pin": USER_PIN })),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    d
}

#[test]
fn p256_seals_validate_in_pyhanko_and_pdfsig_and_survive_a_second_seal() {
    let d = p256_deployment();
    let root = keep("p256-root.der", &std::fs::read(d.trust_root()).unwrap());
    let original = Sample::new(2)
        .line(2, 30.0, 200.0, 5.0, "Signature of the party")
        .build();
    // Recognised by content: the name says nothing.
    let v = stamp(
        &d,
        &json!({
            "seal_id": d.seal_id,
            "purpose": "contract",
            "placements": [{ "kind": "at", "page": 1, "x": 120, "y": 200, "width": 40, "height": 40 }],
        }),
        &[("contract.bin", &original)],
    );
    assert_eq!(v["files"][0]["format"], "pdf");
    let sealed = download(&d, &v, 1);
    assert!(
        sealed.starts_with(&original),
        "an incremental update: the original bytes are untouched"
    );
    let path = keep("p256-once.pdf", &sealed);
    assert_qpdf_ok(&path);

    let report = verify(&sealed, &root);
    assert!(report.valid, "{}", report.to_text());
    assert_eq!(report.signatures.len(), 1);
    assert_eq!(report.signatures[0].form, "pades");
    assert_eq!(report.signatures[0].sub_filter, "ETSI.CAdES.detached");
    assert_eq!(report.signatures[0].pages, vec![1]);
    assert!(api_verdict(&d, &sealed));

    let (ok, said) = pyhanko_validate(&path, &root);
    assert!(ok, "pyHanko validates the seal: {said}");
    let said = pdfsig(&path);
    assert!(
        said.contains("Signature Validation: Signature is Valid"),
        "pdfsig: {said}"
    );

    // The seal is drawn where the placement says.
    let page = render(&path, 1, 72);
    assert_seal_at(&page, 72, boundary(&v, 0, 0));

    // A second seal on the sealed file, by keyword: the first still validates.
    let v2 = stamp(
        &d,
        &json!({
            "seal_id": d.seal_id,
            "purpose": "countersign",
            "placements": [{ "kind": "keyword", "text": "Signature of the party" }],
        }),
        &[("contract-sealed.pdf", &sealed)],
    );
    let twice = download(&d, &v2, 1);
    assert!(twice.starts_with(&sealed));
    let path2 = keep("p256-twice.pdf", &twice);
    assert_qpdf_ok(&path2);
    let report = verify(&twice, &root);
    assert!(report.valid, "{}", report.to_text());
    assert_eq!(report.signatures.len(), 2, "{}", report.to_text());
    assert!(
        matches!(
            report.signatures[0].changes_after,
            ChangesAfter::AnnotationsOnly { revisions: 1 }
        ),
        "{}",
        report.to_text()
    );
    assert_eq!(report.signatures[1].changes_after, ChangesAfter::None);
    let (ok, said) = pyhanko_validate(&path2, &root);
    assert!(ok, "pyHanko validates both seals: {said}");
    assert_eq!(
        pdfsig(&path2)
            .matches("Signature Validation: Signature is Valid")
            .count(),
        2
    );
    let page2 = render(&path2, 2, 72);
    assert_seal_at(&page2, 72, boundary(&v2, 0, 0));
}

#[test]
fn sm2_seals_on_rotated_and_xref_stream_pdfs_verify_and_tampering_is_found() {
    let d = Deployment::hsm_sim("sansec");
    d.login_custodian();
    let root = d.demo_dir().join("ca/root.pem");
    let rotated = Sample::new(1).rotate(1, 90).build();
    let modern = Sample::new(3)
        .line(3, 40.0, 150.0, 5.0, "Stamp here")
        .xref_streams(true)
        .build();
    let v = stamp(
        &d,
        &json!({
            "seal_id": d.seal_id,
            "purpose": "rotated and modern",
            "documents": [
                { "placements": [{ "kind": "at", "page": 1, "x": 20, "y": 30 }] },
                { "placements": [{ "kind": "keyword", "text": "Stamp here" }, { "kind": "riding", "edge": "right" }] },
            ],
        }),
        &[("rotated.pdf", &rotated), ("modern.pdf", &modern)],
    );
    for (n, name, pages) in [
        (1u32, "sm2-rotated.pdf", vec![1]),
        (2, "sm2-modern.pdf", vec![3, 1, 2, 3]),
    ] {
        let sealed = download(&d, &v, n);
        let path = keep(name, &sealed);
        assert_qpdf_ok(&path);
        let report = verify(&sealed, &root);
        assert!(report.valid, "{name}: {}", report.to_text());
        let sig = &report.signatures[0];
        assert_eq!(sig.form, "gm-cms", "{}", report.to_text());
        assert_eq!(sig.sub_filter, "adbe.pkcs7.detached");
        let mut got = sig.pages.clone();
        let mut want = pages.clone();
        got.sort_unstable();
        want.sort_unstable();
        want.dedup();
        got.dedup();
        assert_eq!(got, want, "{name}");
        // The /Contents the file carries is the signature the request recorded.
        let recorded = B64
            .decode(
                v["signatures"][n as usize - 1]["ses_signature"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap();
        let hex_contents = hex::encode_upper(&recorded);
        assert!(
            String::from_utf8_lossy(&sealed)
                .to_uppercase()
                .contains(&hex_contents),
            "the recorded signature is the file's /Contents"
        );
        check_with_openssl(&sealed, &recorded, &path);
    }
    // The rotated page shows the seal upright where the placement says (as displayed).
    let sealed = download(&d, &v, 1);
    let page = render(&keep("sm2-rotated.pdf", &sealed), 1, 72);
    assert_seal_at(&page, 72, boundary(&v, 0, 0));

    // A byte changed inside the signed range (a digit of the signing date `/M(D:YYYY…`, which keeps
    // the file readable): the digest no longer matches, and sealctl says invalid with exit 1.
    let mut tampered = sealed.clone();
    let at = sealed.windows(5).rposition(|w| w == b"/M(D:").expect("/M") + 7;
    tampered[at] = if tampered[at] == b'1' { b'2' } else { b'1' };
    let report = verify(&tampered, &root);
    assert!(!report.valid, "{}", report.to_text());
    assert_eq!(report.signatures.len(), 1, "{}", report.to_text());
    assert!(
        report.signatures[0]
            .checks
            .iter()
            .any(|c| c.starts_with("FAILED") && c.contains("message-digest")),
        "{}",
        report.to_text()
    );
    let path = keep("sm2-tampered.pdf", &tampered);
    let out = Command::new(bin("sealctl"))
        .args(["verify", path.to_str().unwrap(), "--trust"])
        .arg(&root)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{:?}", out);
    assert!(!api_verdict(&d, &tampered));

    // Content appended after the signature (a page's content replaced in a new revision):
    // reported as a later revision that changes content.
    let changed = append_content_change(&sealed);
    let report = verify(&changed, &root);
    assert!(!report.valid, "{}", report.to_text());
    assert!(
        matches!(
            &report.signatures[0].changes_after,
            ChangesAfter::ContentChanged { revisions: 1, .. }
        ),
        "{}",
        report.to_text()
    );
}

/// OpenSSL's view of an SM2 PDF signature: the CMS parses, and its messageDigest attribute is
/// `openssl dgst -sm3` over the ByteRange.
fn check_with_openssl(sealed: &[u8], cms: &[u8], path: &Path) {
    let at = sealed
        .windows(10)
        .rposition(|w| w == b"/ByteRange")
        .expect("a /ByteRange");
    let open = at + sealed[at..].iter().position(|b| *b == b'[').unwrap();
    let close = at + sealed[at..].iter().position(|b| *b == b']').unwrap();
    let range: Vec<usize> = String::from_utf8_lossy(&sealed[open + 1..close])
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    let mut signed = sealed[range[0]..range[0] + range[1]].to_vec();
    signed.extend_from_slice(&sealed[range[2]..range[2] + range[3]]);
    let data = path.with_extension("signed-bytes");
    std::fs::write(&data, &signed).unwrap();
    let out = Command::new("openssl")
        .args(["dgst", "-sm3", "-r"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let sm3 = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_uppercase();
    let der = path.with_extension("p7s");
    std::fs::write(&der, cms).unwrap();
    let out = Command::new("openssl")
        .args(["asn1parse", "-inform", "DER", "-in"])
        .arg(&der)
        .output()
        .unwrap();
    assert!(out.status.success(), "OpenSSL parses the CMS: {out:?}");
    let parsed = String::from_utf8_lossy(&out.stdout);
    assert!(parsed.contains("1.2.156.10197.6.1.4.2.2"), "{parsed}");
    assert!(
        parsed.contains(&sm3),
        "the messageDigest attribute is OpenSSL's SM3 of the ByteRange ({sm3}): {parsed}"
    );
}

/// `sealed` with one more incremental update (written by lopdf) that replaces page 1's
/// content.
fn append_content_change(sealed: &[u8]) -> Vec<u8> {
    let previous = lopdf::Document::load_mem(sealed).expect("lopdf reads the sealed PDF");
    let page = *previous.get_pages().get(&1).expect("page 1");
    let mut update = lopdf::IncrementalDocument::create_from(sealed.to_vec(), previous);
    let content = update.new_document.add_object(lopdf::Stream::new(
        lopdf::Dictionary::new(),
        b"BT /F1 24 Tf 100 100 Td (CHANGED) Tj ET".to_vec(),
    ));
    update
        .opt_clone_object_to_new_document(page)
        .expect("page 1 copied into the update");
    update
        .new_document
        .get_object_mut(page)
        .and_then(lopdf::Object::as_dict_mut)
        .expect("page 1 dictionary")
        .set("Contents", content);
    let mut out = Vec::new();
    update.save_to(&mut out).expect("the update written");
    out
}

#[test]
fn bad_pdfs_are_refused_with_a_reason_and_nothing_is_kept() {
    let d = Deployment::hsm_sim("sansec");
    let request = json!({
        "seal_id": d.seal_id,
        "purpose": "bad",
        "placements": [{ "kind": "at", "page": 1, "x": 10, "y": 10 }],
    });
    let good = Sample::new(1).build();
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.pdf");
    std::fs::write(&plain, &good).unwrap();
    let locked = dir.path().join("locked.pdf");
    let out = Command::new("qpdf")
        .args(["--encrypt", "user", "owner", "256", "--"])
        .arg(&plain)
        .arg(&locked)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let encrypted = std::fs::read(&locked).unwrap();
    let find = |hay: &[u8], what: &[u8]| hay.windows(what.len()).rposition(|w| w == what).unwrap();
    let mut broken = good.clone();
    broken.truncate(find(&good, b"startxref"));
    broken.extend_from_slice(b"startxref\n999999999\n%%EOF\n");
    // The trailer's /Size made absurd (the trailer follows the xref table: offsets hold).
    let mut huge = good.clone();
    let size_at = find(&good, b"/Size") + 5;
    let digits = good[size_at..]
        .iter()
        .skip_while(|b| b.is_ascii_whitespace())
        .take_while(|b| b.is_ascii_digit())
        .count();
    let start = size_at
        + good[size_at..]
            .iter()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
    huge.splice(start..start + digits, b"2000000000".iter().copied());
    for (name, bytes, want) in [
        (
            "notes.pdf",
            b"just some text, not a PDF".to_vec(),
            "neither an OFD package",
        ),
        ("locked.pdf", encrypted, "encrypted"),
        ("broken.pdf", broken, "unreadable"),
        ("huge.pdf", huge, "too large"),
    ] {
        let r = d.upload(Who::Client, &request, &[(name, &bytes)]);
        assert_eq!(r.status, 422, "{name}: {}", r.body);
        assert!(
            r.body.to_lowercase().contains(&want.to_lowercase()),
            "{name}: the reason says {want:?}: {}",
            r.body
        );
        assert!(d.stored("uploads").is_empty(), "{name}: nothing kept");
    }
    // A placement off the page.
    let r = d.upload(
        Who::Client,
        &json!({
            "seal_id": d.seal_id,
            "purpose": "bad",
            "placements": [{ "kind": "at", "page": 3, "x": 10, "y": 10 }],
        }),
        &[("one-page.pdf", &good)],
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("page"), "{}", r.body);
    let listed = d.call("GET", "/v1/stamp-requests", Some(Who::Client), None);
    assert_eq!(listed.json()["requests"].as_array().unwrap().len(), 0);
}

#[test]
fn sealctl_stamp_seals_pdf_and_ofd_together() {
    let d = Deployment::hsm_sim("sansec");
    d.login_custodian();
    let dir = tempfile::tempdir().unwrap();
    let pdf = dir.path().join("letter.pdf");
    let ofd = dir.path().join("notice.ofd");
    std::fs::write(
        &pdf,
        Sample::new(1)
            .line(1, 40.0, 100.0, 4.0, "Seal here")
            .build(),
    )
    .unwrap();
    std::fs::write(
        &ofd,
        seald::ofd::sample::Sample::new(1)
            .line(1, 40.0, 100.0, 4.0, "Seal here")
            .build(),
    )
    .unwrap();
    let out = dir.path().join("sealed");
    let token = d.token_file(Who::Client);
    let output = std::thread::scope(|s| {
        let run = s.spawn(|| {
            d.sealctl_daemon(
                "stamp",
                &token,
                &[
                    "--seal",
                    "1",
                    pdf.to_str().unwrap(),
                    ofd.to_str().unwrap(),
                    "--keyword",
                    "Seal here",
                    "--out",
                    out.to_str().unwrap(),
                    "--wait-secs",
                    "60",
                ],
                "",
            )
        });
        // The approvers find the request and approve it while sealctl waits.
        d.approve_when_pending();
        run.join().unwrap()
    });
    assert!(output.status.success(), "{output:?}");
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(said.contains("(PDF)") && said.contains("(OFD)"), "{said}");
    let sealed_pdf = out.join("letter.pdf");
    let verified = Command::new(bin("sealctl"))
        .args(["verify", sealed_pdf.to_str().unwrap(), "--trust"])
        .arg(d.demo_dir().join("ca/root.pem"))
        .output()
        .unwrap();
    assert_eq!(verified.status.code(), Some(0), "{verified:?}");
    assert!(String::from_utf8_lossy(&verified.stdout).contains("VALID"));
    assert!(out.join("notice.ofd").is_file());
}

#[test]
fn ses_form_puts_a_gbt_38540_signature_in_contents() {
    let d = Deployment::hsm_sim_with("sansec", "[pdf]\nform = \"ses\"\n");
    d.login_custodian();
    let root = d.demo_dir().join("ca/root.pem");
    let v = stamp(
        &d,
        &json!({
            "seal_id": d.seal_id,
            "purpose": "SES form",
            "placements": [{ "kind": "at", "page": 1, "x": 100, "y": 100 }],
        }),
        &[("letter.pdf", &Sample::new(1).build())],
    );
    let sealed = download(&d, &v, 1);
    assert_qpdf_ok(&keep("sm2-ses.pdf", &sealed));
    let report = verify(&sealed, &root);
    assert!(report.valid, "{}", report.to_text());
    let sig = &report.signatures[0];
    assert_eq!(sig.form, "ses", "{}", report.to_text());
    assert!(
        sig.seal.is_some(),
        "the seal is named: {}",
        report.to_text()
    );
    // The request's signature is that SES_Signature, and it parses as one.
    let recorded = B64
        .decode(v["signatures"][0]["ses_signature"].as_str().unwrap())
        .unwrap();
    seald::ses::SesSignature::parse(&recorded).expect("a GB/T 38540 SES_Signature");
}
