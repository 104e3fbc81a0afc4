//! OFD documents through the API (issue 15): upload, what approvers see, approval of the exact
//! file, sealing on the device, download, verification; a batch on the cipher-machine model;
//! bad input refused with nothing kept or signed; a file changed after approval; who may
//! download; backups carrying the sealed files.

use std::io::Cursor;
use std::process::Command;

use base64::Engine;
use serde_json::{json, Value};

use seald::ofd::sample::Sample;
use seald_tests::bins::bin;
use seald_tests::deployment::{Deployment, Who};
use seald_tests::ofd::{sample_members, verify, zip, Member};

fn sm3_hex(bytes: &[u8]) -> String {
    hex::encode(seald::crypto::sm3(bytes))
}

/// Checks a downloaded sealed file: seald's verifier says valid, with one new signature whose
/// stamps are on `pages`; `POST /v1/verify` agrees.
fn check_sealed(d: &Deployment, bytes: &[u8], signatures: usize, pages: &[usize]) {
    let report = verify(d, bytes);
    assert!(
        report.valid,
        "the sealed file verifies: {}",
        report.to_text()
    );
    assert_eq!(report.signatures.len(), signatures, "{}", report.to_text());
    let last = report.signatures.last().unwrap();
    assert!(last.is_verified(), "{}", report.to_text());
    let stamped: Vec<usize> = last.stamps.iter().filter_map(|s| s.page).collect();
    assert_eq!(stamped, pages, "{}", report.to_text());
    let r = d.call(
        "POST",
        "/v1/verify",
        Some(Who::Client),
        Some(&json!({ "ofd": base64::engine::general_purpose::STANDARD.encode(bytes) })),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["valid"], true, "{}", r.body);
}

/// Uploads `files` with `request` as the client; asserts 202; the answer.
fn upload_ok(d: &Deployment, request: &Value, files: &[(&str, &[u8])]) -> Value {
    let r = d.upload(Who::Client, request, files);
    assert_eq!(r.status, 202, "{}", r.body);
    r.json()
}

#[test]
fn ukey_position_keyword_riding_batch_download_verify_and_backup() {
    let d = Deployment::hsm_sim("sansec");
    d.login_custodian();
    let contract = Sample::new(3)
        .line(2, 30.0, 200.0, 5.0, "甲方（盖章）")
        .build();
    let licence = Sample::new(1).doc_dir("Doc_1").build();
    let bundle = Sample::new(4).build();
    let request = json!({
        "seal_id": d.seal_id,
        "purpose": "contract, licence and bundle",
        "documents": [
            { "placements": [{ "kind": "keyword", "text": "甲方（盖章）" }] },
            { "name": "营业执照.ofd", "placements": [{ "kind": "at", "page": 1, "x": 120, "y": 200 }], "mode": "lock" },
            { "placements": [{ "kind": "riding", "edge": "right" }] },
        ],
    });
    let created = upload_ok(
        &d,
        &request,
        &[
            ("contract.ofd", &contract),
            ("licence.ofd", &licence),
            ("bundle.ofd", &bundle),
        ],
    );
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created["state"], "pending");
    assert_eq!(
        d.stored("uploads").len(),
        1,
        "one upload file holds the request's documents"
    );

    // Approvers see each document: name, size, SM3 of the upload, pages, stamps resolved.
    let pending = d.call(
        "GET",
        "/v1/stamp-requests?state=pending",
        Some(Who::Approver1),
        None,
    );
    assert_eq!(pending.status, 200, "{}", pending.body);
    let seen = pending.json()["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .cloned()
        .expect("the request is pending for alice");
    let files = seen["files"].as_array().unwrap();
    assert_eq!(files.len(), 3);
    for (f, (name, bytes, pages)) in files.iter().zip([
        ("contract.ofd", &contract, 3),
        ("营业执照.ofd", &licence, 1),
        ("bundle.ofd", &bundle, 4),
    ]) {
        assert_eq!(f["name"], name);
        assert_eq!(f["size"], bytes.len());
        assert_eq!(f["sm3"], sm3_hex(bytes));
        assert_eq!(f["plan"]["pages"], pages);
        assert_eq!(f["sealed"], false);
    }
    // The documents' digests are the uploads' SM3: what approvers approve.
    assert_eq!(seen["documents"][0]["digest"], sm3_hex(&contract));
    // The keyword resolved to page 2, centred on the text (30..60 × 200..205 mm).
    let k = &files[0]["plan"]["stamps"][0];
    assert_eq!(k["page"], 2);
    let b: Vec<f64> = k["boundary"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(
        (b[0] + b[2] / 2.0 - 45.0).abs() < 0.01 && (b[1] + b[3] / 2.0 - 202.5).abs() < 0.01,
        "{b:?}"
    );
    assert_eq!(files[1]["plan"]["stamps"][0]["boundary"][0], 120.0);
    assert_eq!(files[1]["mode"], "lock");
    // Riding: one slice per page, each with a clip.
    let riding = files[2]["plan"]["stamps"].as_array().unwrap();
    assert_eq!(riding.len(), 4);
    assert!(riding.iter().all(|s| s["clip"].is_array()));

    // Nothing to fetch before signing.
    let early = d.download(Who::Client, id, 1);
    assert_eq!(early.status, 409);
    assert!(String::from_utf8_lossy(&early.body).contains("not_signed"));

    d.approve_both(id);
    let v = d.wait_final(id);
    assert_eq!(v["state"], "signed", "{v}");
    assert_eq!(v["signatures"].as_array().unwrap().len(), 3);
    assert!(v["files"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["sealed"] == true));

    let mut sealed = Vec::new();
    for (n, pages) in [(1u32, vec![2]), (2, vec![1]), (3, vec![1, 2, 3, 4])] {
        let r = d.download(Who::Client, id, n);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.header("content-type"), Some("application/ofd"));
        assert!(r
            .header("content-disposition")
            .unwrap()
            .starts_with("attachment"));
        check_sealed(&d, &r.body, 1, &pages);
        // The SES_Signature in the request is the one in the file.
        let report = verify(&d, &r.body);
        let sig_path = &report.signatures[0].signed_value;
        let mut package = seald::ofd::Package::open(Cursor::new(r.body.clone())).unwrap();
        let in_file = package.read(sig_path.trim_start_matches('/')).unwrap();
        let in_request = base64::engine::general_purpose::STANDARD
            .decode(
                v["signatures"][n as usize - 1]["ses_signature"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap();
        assert_eq!(in_file, in_request);
        sealed.push(r.body);
    }
    // Uploads go once the request is final; the sealed files stay.
    assert!(d.stored("uploads").is_empty(), "{:?}", d.stored("uploads"));
    assert_eq!(d.stored("sealed").len(), 3);

    // The usage log names each document by the SM3 approvers saw, and what they were shown.
    let signed: Vec<Value> = d
        .audit("signature")
        .into_iter()
        .filter(|r| r["detail"]["request_id"] == id)
        .collect();
    assert_eq!(signed.len(), 3);
    assert_eq!(signed[0]["detail"]["document_digest"], sm3_hex(&contract));
    let asked: Vec<Value> = d
        .audit("stamp-request")
        .into_iter()
        .filter(|r| r["detail"]["request_id"] == id)
        .collect();
    assert_eq!(
        asked[0]["detail"]["files"][2]["stamps"]
            .as_array()
            .unwrap()
            .len(),
        4
    );

    // Who may fetch: the requester, its approvers, auditors; not another client (dave asks
    // only on seal 2), nor anyone without a token.
    assert_eq!(d.download(Who::Approver2, id, 2).status, 200);
    assert_eq!(d.download(Who::Auditor, id, 2).status, 200);
    let other = d.download(Who::Dual, id, 1);
    assert_eq!(
        other.status,
        404,
        "{}",
        String::from_utf8_lossy(&other.body)
    );
    assert!(String::from_utf8_lossy(&other.body).contains("request_not_found"));
    assert_eq!(d.download(Who::Custodian, id, 1).status, 404);
    assert_eq!(d.download(Who::Client, id, 4).status, 404);
    assert_eq!(d.download(Who::Client, id, 0).status, 404);
    let r = d.call(
        "GET",
        &format!("/v1/stamp-requests/{id}/documents/x"),
        Some(Who::Client),
        None,
    );
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["code"], "document_not_found");

    // sealctl verify accepts the output.
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("contract.ofd");
    std::fs::write(&file, &sealed[0]).unwrap();
    let verified = Command::new(bin("sealctl"))
        .arg("verify")
        .arg(&file)
        .arg("--trust")
        .arg(d.demo_dir().join("ca/root.pem"))
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verified.stdout),
        String::from_utf8_lossy(&verified.stderr)
    );

    // A second seal on the continue-mode contract: both verify. The locked licence refuses one.
    let again = upload_ok(
        &d,
        &json!({ "seal_id": d.seal_id, "purpose": "countersign", "placements": [{ "kind": "at", "page": 1, "x": 20, "y": 240 }] }),
        &[("contract-sealed.ofd", &sealed[0])],
    );
    let id2 = again["id"].as_i64().unwrap();
    d.approve_both(id2);
    assert_eq!(d.wait_final(id2)["state"], "signed");
    let twice = d.download(Who::Client, id2, 1);
    assert_eq!(twice.status, 200);
    check_sealed(&d, &twice.body, 2, &[1]);
    let locked = d.upload(
        Who::Client,
        &json!({ "seal_id": d.seal_id, "purpose": "x", "placements": [{ "kind": "at", "page": 1, "x": 20, "y": 20 }] }),
        &[("licence-sealed.ofd", &sealed[1])],
    );
    assert_eq!(locked.status, 422, "{}", locked.body);
    assert_eq!(locked.json()["code"], "invalid_document");
    assert!(locked.body.contains("locked"), "{}", locked.body);

    // The backup carries the sealed files; restored elsewhere, they are there, byte for byte.
    let backup = out.path().join("backup.sqlite");
    d.sealctl("backup", &[backup.to_str().unwrap()]);
    let elsewhere = out.path().join("restored");
    std::fs::create_dir(&elsewhere).unwrap();
    let restored_store = elsewhere.join("seald.db");
    let restore = Command::new(bin("sealctl"))
        .arg("restore")
        .arg("--store")
        .arg(&restored_store)
        .arg(&backup)
        .output()
        .unwrap();
    assert!(
        restore.status.success(),
        "{}",
        String::from_utf8_lossy(&restore.stderr)
    );
    let sealed_dir = elsewhere.join("seald.db.documents/sealed");
    let name = std::fs::read_dir(&sealed_dir)
        .expect("sealed files restored")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .find(|n| n.starts_with(&format!("{id}-1-")) && n.ends_with(".ofd"))
        .expect("the sealed file was restored");
    let restored = std::fs::read(sealed_dir.join(name)).expect("read the restored file");
    assert_eq!(restored, sealed[0]);
}

#[test]
fn cipher_machine_batch_of_invoices() {
    let d = Deployment::hsm_sim_tuned(
        "sansec",
        "model = \"cipher-machine\"\nparallel = 4\n",
        "model = \"cipher-machine\"\nmax_sessions = 4\n",
        "",
    );
    d.login_custodian();
    let invoices: Vec<Vec<u8>> = (0..8)
        .map(|i| {
            Sample::invoice_like(2)
                .line(1, 20.0, 280.0, 3.0, &format!("No. {i:08}"))
                .build()
        })
        .collect();
    let names: Vec<String> = (0..8).map(|i| format!("invoice-{i}.ofd")).collect();
    let files: Vec<(&str, &[u8])> = names
        .iter()
        .map(String::as_str)
        .zip(invoices.iter().map(Vec::as_slice))
        .collect();
    let created = upload_ok(
        &d,
        &json!({ "seal_id": d.seal_id, "purpose": "invoices", "placements": [{ "kind": "keyword", "text": "价税合计" }] }),
        &files,
    );
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created["files"].as_array().unwrap().len(), 8);
    d.approve_both(id);
    let v = d.wait_final(id);
    assert_eq!(v["state"], "signed", "{v}");
    for n in 1..=8u32 {
        let r = d.download(Who::Client, id, n);
        assert_eq!(r.status, 200);
        let report = verify(&d, &r.body);
        assert!(report.valid, "{}", report.to_text());
        assert_eq!(report.signatures.len(), 1);
    }
}

/// A bad input: what it is, the file, its placements, and the status, code and a piece of the
/// message expected.
type Case<'a> = (&'a str, Vec<u8>, Value, u16, &'a str, &'a str);

/// Every refusal: a clear 4xx, no request recorded, no upload left, nothing signed.
#[test]
fn bad_input_is_refused_with_a_reason_and_nothing_is_kept() {
    let d = Deployment::hsm_sim_with(
        "sansec",
        "\n[api]\nmax_body_bytes = 65536\nmax_document_bytes = 300000\n",
    );
    d.login_custodian();
    let at = json!([{ "kind": "at", "page": 1, "x": 10, "y": 10 }]);
    let body = |placements: &Value| json!({ "seal_id": d.seal_id, "purpose": "bad", "placements": placements });
    let good = Sample::new(2).build();

    let with = |f: &dyn Fn(&mut Vec<Member>)| {
        let mut members = sample_members(2);
        f(&mut members);
        zip(&members)
    };
    let escaping = with(&|m| m.push(Member::new("Doc_0/../../etc/passwd", b"x".to_vec())));
    let absolute = with(&|m| m.push(Member::new("/etc/passwd", b"x".to_vec())));
    let duplicate = with(&|m| {
        let first = m[0].clone();
        m.push(first)
    });
    let no_ofd_xml = with(&|m| m.retain(|m| m.name != "OFD.xml"));
    let no_doc_root = with(&|m| {
        let ofd = &mut m[0];
        assert_eq!(ofd.name, "OFD.xml");
        let text = String::from_utf8(ofd.data.clone()).unwrap();
        ofd.data = text
            .replace("<ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot>", "")
            .into_bytes();
    });
    let bomb = with(&|m| {
        m.push(Member {
            name: "Doc_0/Res/bomb.bin".into(),
            data: vec![0; 16],
            declared: Some(4_000_000_000),
        })
    });
    let big = Sample {
        resource: Some((0..400_000u32).map(|i| (i * 7 + i / 13) as u8).collect()),
        deflate: false,
        ..Sample::new(1)
    }
    .build();
    assert!(big.len() > 300_000);

    let cases: Vec<Case> = vec![
        (
            "neither a zip nor a PDF",
            b"plain text, not an OFD".to_vec(),
            at.clone(),
            422,
            "unsupported_document",
            "neither an OFD package (a zip) nor a PDF",
        ),
        (
            "a PDF header and nothing else",
            b"%PDF-1.7 not an OFD".to_vec(),
            at.clone(),
            422,
            "invalid_document",
            "the PDF structure is unreadable",
        ),
        (
            "zip bomb",
            bomb,
            at.clone(),
            422,
            "invalid_document",
            "zip bomb",
        ),
        (
            "escaping name",
            escaping,
            at.clone(),
            422,
            "invalid_document",
            "..",
        ),
        (
            "absolute name",
            absolute,
            at.clone(),
            422,
            "invalid_document",
            "absolute",
        ),
        (
            "duplicate entries",
            duplicate,
            at.clone(),
            422,
            "invalid_document",
            "same name",
        ),
        (
            "no OFD.xml",
            no_ofd_xml,
            at.clone(),
            422,
            "invalid_document",
            "OFD.xml",
        ),
        (
            "no DocRoot",
            no_doc_root,
            at.clone(),
            422,
            "invalid_document",
            "DocRoot",
        ),
        (
            "page out of range",
            good.clone(),
            json!([{ "kind": "at", "page": 9, "x": 10, "y": 10 }]),
            422,
            "invalid_document",
            "page 9",
        ),
        (
            "keyword not found",
            good.clone(),
            json!([{ "kind": "keyword", "text": "不存在的关键字" }]),
            422,
            "invalid_document",
            "不存在的关键字",
        ),
        (
            "no placement",
            good.clone(),
            json!([]),
            422,
            "invalid_placement",
            "placement",
        ),
        (
            "too large",
            big,
            at.clone(),
            413,
            "body_too_large",
            "max_document_bytes",
        ),
    ];
    for (what, bytes, placements, status, code, needle) in cases {
        let r = d.upload(Who::Client, &body(&placements), &[("bad.ofd", &bytes)]);
        assert_eq!(r.status, status, "{what}: {}", r.body);
        let v = r.json();
        assert_eq!(v["code"], code, "{what}: {}", r.body);
        let message = v["message"].as_str().unwrap();
        assert!(message.contains(needle), "{what}: {message}");
        if status == 422 && code == "invalid_document" {
            assert!(
                message.starts_with("document 1 (bad.ofd)"),
                "{what}: {message}"
            );
        }
        assert!(
            d.stored("uploads").is_empty(),
            "{what}: the upload was removed"
        );
    }

    // A `request` part over the JSON limit (64 KiB here) is cut off as it streams, though the
    // whole form is within the upload limit.
    let huge = json!({ "seal_id": d.seal_id, "purpose": "x".repeat(100_000), "placements": at });
    let r = d.upload(Who::Client, &huge, &[("good.ofd", &good)]);
    assert_eq!(r.status, 413, "{}", r.body);
    assert!(
        r.body.contains("the `request` part is larger than"),
        "{}",
        r.body
    );
    assert!(d.stored("uploads").is_empty());

    // Sent chunked, with no Content-Length for the guard to judge: the route's own limit cuts
    // the upload off while it streams, and nothing is kept.
    {
        use std::io::{Read, Write};
        let big = Sample {
            resource: Some((0..400_000u32).map(|i| (i * 31 + i / 7) as u8).collect()),
            deflate: false,
            ..Sample::new(1)
        }
        .build();
        let (content_type, form) = seald_tests::ofd::multipart(&body(&at), &[("big.ofd", &big)]);
        let mut stream = std::net::TcpStream::connect(d.daemon.authority()).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(60)))
            .unwrap();
        write!(
            stream,
            "POST /v1/stamp-requests HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
            d.daemon.authority(),
            d.token(Who::Client)
        )
        .unwrap();
        for chunk in form.chunks(16 * 1024) {
            if write!(stream, "{:x}\r\n", chunk.len()).is_err()
                || stream.write_all(chunk).is_err()
                || stream.write_all(b"\r\n").is_err()
            {
                break; // answered and closed early
            }
        }
        let _ = stream.write_all(b"0\r\n\r\n");
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(
            answer.contains("body_too_large") && answer.contains("max_document_bytes"),
            "{answer}"
        );
        assert!(
            d.stored("uploads").is_empty(),
            "the cut-off upload was removed"
        );
    }

    // Form mistakes.
    let (content_type, form) = seald_tests::ofd::multipart(&body(&at), &[]);
    let auth = format!("Bearer {}", d.token(Who::Client));
    let r = d.daemon.raw(
        "POST",
        "/v1/stamp-requests",
        &[("Authorization", &auth), ("Content-Type", &content_type)],
        Some(&form),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("no `file` part"), "{}", r.body);
    let r = d.upload(
        Who::Client,
        &json!({ "seal_id": d.seal_id, "purpose": "x", "placements": at, "documents": [{}, {}] }),
        &[("one.ofd", &good)],
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body.contains("2 documents but the form has 1"),
        "{}",
        r.body
    );
    // Only clients upload; and only to this route.
    let r = d.upload(Who::Approver1, &body(&at), &[("a.ofd", &good)]);
    assert_eq!(r.status, 403, "{}", r.body);
    let r = d.daemon.raw(
        "POST",
        "/v1/verify",
        &[("Authorization", &auth), ("Content-Type", &content_type)],
        Some(&form),
    );
    assert_eq!(r.status, 415, "{}", r.body);
    // The Host and Origin guards hold for uploads too.
    let r = d.daemon.raw(
        "POST",
        "/v1/stamp-requests",
        &[
            ("Authorization", &auth),
            ("Content-Type", &content_type),
            ("Origin", "https://evil.example"),
        ],
        Some(&form),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("origin_not_allowed"));
    let r = d.daemon.raw(
        "POST",
        "/v1/stamp-requests",
        &[
            ("Host", "attacker.example:80"),
            ("Authorization", &auth),
            ("Content-Type", &content_type),
        ],
        Some(&form),
    );
    assert_eq!(r.status, 421, "{}", r.body);

    // Nothing was recorded, nothing signed.
    let pending = d.call(
        "GET",
        "/v1/stamp-requests?state=pending",
        Some(Who::Approver1),
        None,
    );
    assert_eq!(pending.json()["requests"].as_array().unwrap().len(), 0);
    assert!(d.audit("stamp-request").is_empty());
    assert!(d.audit("signature").is_empty());
    assert!(d.stored("uploads").is_empty() && d.stored("sealed").is_empty());
}

#[test]
fn a_file_changed_between_approval_and_signing_fails_and_nothing_is_signed() {
    let d = Deployment::hsm_sim("sansec");
    d.login_custodian();
    let first = Sample::new(1).build();
    let second = Sample::new(2).build();
    let created = upload_ok(
        &d,
        &json!({ "seal_id": d.seal_id, "purpose": "two", "placements": [{ "kind": "at", "page": 1, "x": 10, "y": 10 }] }),
        &[("a.ofd", &first), ("b.ofd", &second)],
    );
    let id = created["id"].as_i64().unwrap();
    // Someone with access to the disk changes the second document in the stored upload after
    // approvers were shown it (one byte of its page content).
    let uploads = d.stored("uploads");
    assert_eq!(uploads.len(), 1);
    let mut stored = std::fs::read(&uploads[0]).unwrap();
    let at = stored
        .windows(second.len())
        .position(|w| w == second.as_slice())
        .expect("the second document is in the upload");
    assert_eq!(&stored[..first.len()], first.as_slice());
    stored[at + second.len() / 2] ^= 0x01;
    std::fs::write(&uploads[0], &stored).unwrap();

    d.approve_both(id);
    let v = d.wait_final(id);
    assert_eq!(v["state"], "failed", "{v}");
    let failure = v["failure"].as_str().unwrap();
    assert!(
        failure.contains("document 2 (b.ofd) changed after it was shown to approvers")
            && failure.contains("nothing was signed"),
        "{failure}"
    );
    assert!(v["signatures"].is_null());
    assert!(d
        .audit("signature")
        .iter()
        .all(|r| r["detail"]["request_id"] != id));
    let r = d.download(Who::Client, id, 1);
    assert_eq!(r.status, 409);
    assert!(d.stored("sealed").is_empty(), "{:?}", d.stored("sealed"));
    assert!(
        d.stored("uploads").is_empty(),
        "uploads of a failed request are removed"
    );
}

#[test]
fn sealctl_stamp_uploads_shows_progress_and_downloads_sealed_files() {
    let d = Deployment::hsm_sim("sansec");
    d.login_custodian();
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("合同.ofd");
    let b = dir.path().join("annex.ofd");
    std::fs::write(
        &a,
        Sample::new(2).line(2, 40.0, 150.0, 4.0, "盖章处").build(),
    )
    .unwrap();
    std::fs::write(
        &b,
        Sample::new(1).line(1, 40.0, 100.0, 4.0, "盖章处").build(),
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
                    a.to_str().unwrap(),
                    b.to_str().unwrap(),
                    "--keyword",
                    "盖章处",
                    "--lock",
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
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("waiting for approval"), "{stdout}");
    // Off a terminal no progress is drawn: plain lines only.
    assert!(!stdout.contains('\u{1b}'), "{stdout:?}");
    assert!(!String::from_utf8_lossy(&output.stderr).contains('\u{1b}'));
    assert!(stdout.contains("seal on page 2"), "{stdout}");
    assert!(stdout.contains("approved: signing"), "{stdout}");
    assert!(stdout.contains("signed"), "{stdout}");
    for (name, page) in [("合同.ofd", 2), ("annex.ofd", 1)] {
        let bytes = std::fs::read(out.join(name)).expect("sealed file written");
        check_sealed(&d, &bytes, 1, &[page]);
        let verified = Command::new(bin("sealctl"))
            .arg("verify")
            .arg(out.join(name))
            .arg("--trust")
            .arg(d.demo_dir().join("ca/root.pem"))
            .output()
            .unwrap();
        assert!(verified.status.success(), "{name}");
    }
    // Run again into the same directory: refused before anything is sent.
    let again = d.sealctl_daemon(
        "stamp",
        &token,
        &[
            "--seal",
            "1",
            a.to_str().unwrap(),
            "--page",
            "1",
            "--x",
            "10",
            "--y",
            "10",
            "--out",
            out.to_str().unwrap(),
        ],
        "",
    );
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    // A refusal from the daemon is shown as it was given.
    let bad = d.sealctl_daemon(
        "stamp",
        &token,
        &[
            "--seal",
            "1",
            a.to_str().unwrap(),
            "--page",
            "7",
            "--x",
            "10",
            "--y",
            "10",
            "--out",
            dir.path().join("o2").to_str().unwrap(),
        ],
        "",
    );
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("invalid_document") && stderr.contains("page 7"),
        "{stderr}"
    );
}

/// On a terminal (`script` gives sealctl a pseudo-terminal) `sealctl stamp` draws a spinner
/// while it waits and a bar while it downloads (indicatif's cursor controls), and still prints
/// its plain lines; off a terminal (the test above) there are only the plain lines.
#[test]
fn sealctl_stamp_on_a_terminal_draws_progress() {
    let d = Deployment::hsm_sim("sansec");
    d.login_custodian();
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.ofd");
    std::fs::write(
        &a,
        Sample::new(1).line(1, 40.0, 100.0, 4.0, "盖章处").build(),
    )
    .unwrap();
    let out = dir.path().join("sealed");
    let token = d.token_file(Who::Client);
    let command = format!(
        "{} stamp --daemon http://{} --token-file '{}' --seal 1 '{}' --keyword 盖章处 --out '{}' --wait-secs 60",
        bin("sealctl").display(),
        d.daemon.authority(),
        token.display(),
        a.display(),
        out.display()
    );
    let output = std::thread::scope(|s| {
        let run = s.spawn(|| {
            Command::new("script")
                .args(["--quiet", "--return", "--command", &command, "/dev/null"])
                .env("TERM", "xterm")
                .output()
                .expect("run script")
        });
        d.approve_when_pending();
        run.join().unwrap()
    });
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{shown}");
    assert!(
        shown.contains("\u{1b}["),
        "cursor controls of a spinner: {shown:?}"
    );
    assert!(shown.contains("waiting for approval"), "{shown}");
    assert!(shown.contains("sealed: "), "{shown}");
    assert!(out.join("a.ofd").exists());
}
