//! `sealctl verify` run as a binary on the shared fixtures: exit codes and output.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixtures_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SEALD_FIXTURES") {
        return PathBuf::from(dir);
    }
    let start = Path::new(env!("CARGO_MANIFEST_DIR"));
    start
        .ancestors()
        .map(|d| d.join("shared").join("fixtures"))
        .find(|d| d.is_dir())
        .unwrap_or_else(|| {
            panic!(
                "shared/fixtures not found above {}; set SEALD_FIXTURES",
                start.display()
            )
        })
}

fn ses(name: &str) -> PathBuf {
    fixtures_dir().join("ses").join(name)
}

fn sealctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sealctl"))
        .arg("verify")
        .args(args)
        .output()
        .expect("sealctl runs")
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited normally, not by a signal")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)))
}

fn check<'a>(report: &'a serde_json::Value, id: &str) -> &'a str {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id}"))["status"]
        .as_str()
        .unwrap()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn unzip(ofd: &str, entry: &str, to: &Path) -> PathBuf {
    let file = std::fs::File::open(ses(ofd)).unwrap();
    let mut zip = zip::ZipArchive::new(file).unwrap();
    let mut bytes = Vec::new();
    zip.by_name(entry).unwrap().read_to_end(&mut bytes).unwrap();
    let path = to.join(entry.replace('/', "_"));
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn every_fixture_gives_its_documented_exit_code() {
    for (file, expected) in [
        ("gomain-999.ofd", 0),
        ("antchain-signscale.ofd", 0),
        ("tongzhiweiye-keyword.ofd", 1),
        ("tampered/gomain-999-date-changed.ofd", 1),
        ("tampered/gomain-999-file-removed.ofd", 1),
        ("ofdrw-ride-right.ofd", 0),
        ("signed-value-v4.dat", 0),
        ("user-v4.esl", 0),
        ("user-v1.esl", 0),
        ("hebei-bad-maker-sig.der", 1),
    ] {
        let out = sealctl(&[p(&ses(file))]);
        assert_eq!(code(&out), expected, "{file}: {}", stdout(&out));
        let text = stdout(&out);
        assert_eq!(text.contains("INVALID"), expected != 0, "{file}: {text}");
        assert!(text.contains("VALID"), "{file}: {text}");
    }
}

#[test]
fn json_reports_each_check() {
    let out = sealctl(&[p(&ses("hebei-bad-maker-sig.der")), "--json"]);
    assert_eq!(code(&out), 1);
    let v = json(&out);
    assert_eq!(v["valid"], false);
    assert_eq!(check(&v["report"], "maker-signature"), "failed");
    assert_eq!(v["report"]["seal"]["name"], "测试单位名称 合同专用章");

    let out = sealctl(&[p(&ses("user-v1.esl")), "--json"]);
    assert_eq!(code(&out), 0);
    let v = json(&out);
    assert_eq!(v["report"]["seal"]["format"], "v1");
    assert_eq!(check(&v["report"], "maker-signature"), "passed");

    let out = sealctl(&[p(&ses("tongzhiweiye-keyword.ofd")), "--json"]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    let v = json(&out);
    let sigs = v["signatures"].as_array().unwrap();
    assert_eq!(sigs.len(), 2);
    let sign1 = sigs
        .iter()
        .find(|s| s["signature_xml"].as_str().unwrap().contains("Sign_1"))
        .unwrap();
    assert_eq!(sign1["kind"], "verified");
    assert_eq!(check(&sign1["report"], "signer-signature"), "passed");
    assert_eq!(check(&sign1["report"], "data-hash"), "passed");
    let sign3 = sigs
        .iter()
        .find(|s| s["signature_xml"].as_str().unwrap().contains("Sign_3"))
        .unwrap();
    assert_eq!(sign3["kind"], "cms");
    assert_eq!(sign3["report"]["valid"], true);
    assert_eq!(sign3["report"]["form"], "plain");
    assert_eq!(sign3["type"], "Sign");
    // The signatures verify, but the document they cover is not the one in the package.
    assert_eq!(v["valid"], false);
    assert_eq!(sign1["valid"], false);
    let failed: Vec<&str> = sign1["references"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["ok"] == false)
        .map(|r| r["file_ref"].as_str().unwrap())
        .collect();
    assert_eq!(
        failed,
        [
            "/OFD.xml",
            "/Doc_0/Document.xml",
            "/Doc_0/Pages/Page_0/Content.xml"
        ]
    );
    assert_eq!(sign1["stamps"][0]["page"], 1);
    assert_eq!(
        sign1["stamps"][0]["boundary_mm"],
        serde_json::json!([90.0, 110.0, 42.0, 42.0])
    );
}

#[test]
fn a_changed_ofd_fails_naming_the_file() {
    for (file, named) in [
        (
            "tampered/gomain-999-date-changed.ofd",
            "/Doc_0/Pages/Page_0/Content.xml",
        ),
        (
            "tampered/gomain-999-file-removed.ofd",
            "/Doc_0/Res/qrcode.png",
        ),
        ("tongzhiweiye-keyword.ofd", "/Doc_0/Document.xml"),
    ] {
        let out = sealctl(&[p(&ses(file))]);
        assert_eq!(code(&out), 1, "{file}");
        let text = stdout(&out);
        assert!(text.contains("INVALID"), "{file}: {text}");
        assert!(text.contains(named), "{file}: {text}");
        assert!(text.contains("references ("), "{file}: {text}");

        let out = sealctl(&[p(&ses(file)), "--json"]);
        assert_eq!(code(&out), 1, "{file}");
        let v = json(&out);
        assert_eq!(v["valid"], false);
        assert!(v.to_string().contains(named), "{file}");
    }
}

#[test]
fn a_good_ofd_reports_references_coverage_and_stamps() {
    let out = sealctl(&[p(&ses("ofdrw-ride-right.ofd")), "--json"]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let v = json(&out);
    assert_eq!(v["valid"], true);
    assert_eq!(v["uncovered"], serde_json::json!([]));
    let s = &v["signatures"][0];
    assert_eq!(s["type"], "Seal");
    assert_eq!(s["id"], "s001");
    assert_eq!(s["references"]["checked"], 9);
    assert_eq!(s["references"]["weak"], false);
    assert_eq!(s["stamps"].as_array().unwrap().len(), 5);
    assert_eq!(s["stamps"][4]["page"], 5);
    assert_eq!(
        s["stamps"][4]["clip_mm"],
        serde_json::json!([32.0, 0.0, 8.0, 40.0])
    );

    let out = sealctl(&[p(&ses("gomain-999.ofd"))]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains("references (1.2.156.10197.1.401): 20 checked, 0 failed"),
        "{text}"
    );
    assert!(
        text.contains("stamp \"01\": page 1, x 90 y 8 w 30 h 20 mm"),
        "{text}"
    );
    assert!(
        text.contains("not covered by any valid signature: /Doc_0/Signs/Signatures.xml"),
        "{text}"
    );
}

#[test]
fn signature_against_data_or_digest() {
    let dir = tempfile::tempdir().unwrap();
    let sv = unzip(
        "ofdrw-ride-right.ofd",
        "Doc_0/Signs/Sign_0/SignedValue.dat",
        dir.path(),
    );
    let xml = unzip(
        "ofdrw-ride-right.ofd",
        "Doc_0/Signs/Sign_0/Signature.xml",
        dir.path(),
    );
    let out = sealctl(&[p(&sv), "--data", p(&xml)]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));

    let other = dir.path().join("other.xml");
    std::fs::write(&other, b"<not the signed file/>").unwrap();
    let out = sealctl(&[p(&sv), "--data", p(&other), "--json"]);
    assert_eq!(code(&out), 1);
    assert_eq!(check(&json(&out)["report"], "data-hash"), "failed");

    // The digest of the right file passes; a digest with one bit changed fails.
    let digest = seald::crypto::sm3_file(&xml).unwrap();
    let out = sealctl(&[p(&sv), "--digest", &hex::encode(digest)]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let mut wrong = digest;
    wrong[31] ^= 1;
    let out = sealctl(&[p(&sv), "--digest", &hex::encode(wrong)]);
    assert_eq!(code(&out), 1);

    // Without data the hash check is reported as not applicable.
    let out = sealctl(&[p(&sv), "--json"]);
    assert_eq!(check(&json(&out)["report"], "data-hash"), "not-applicable");
}

#[test]
fn trust_roots_that_did_not_issue_the_certificates_make_it_invalid() {
    let dir = tempfile::tempdir().unwrap();
    // The seal maker's certificate is a valid certificate, but not the signer's issuer.
    let seal = seald::ses::Seal::parse(&std::fs::read(ses("user-v4.esl")).unwrap()).unwrap();
    let root = dir.path().join("root.der");
    std::fs::write(&root, &seal.maker_cert).unwrap();
    let out = sealctl(&[
        p(&ses("signed-value-v4.dat")),
        "--trust",
        p(&root),
        "--json",
    ]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert_eq!(check(&json(&out)["report"], "signer-chain"), "failed");
}

#[test]
fn unreadable_inputs_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = sealctl(&[p(&dir.path().join("missing.esl"))]);
    assert_eq!(code(&out), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot open"));

    let garbage = dir.path().join("garbage.der");
    std::fs::write(&garbage, b"this is not DER").unwrap();
    assert_eq!(code(&sealctl(&[p(&garbage)])), 2);

    let bytes = std::fs::read(ses("signed-value-v4.dat")).unwrap();
    let cut = dir.path().join("cut.dat");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let out = sealctl(&[p(&cut), "--json"]);
    assert_eq!(code(&out), 2);
    assert!(json(&out)["error"].as_str().unwrap().contains("malformed"));

    let cms = unzip(
        "tongzhiweiye-keyword.ofd",
        "Doc_0/Signs/Sign_3/SignedValue.dat",
        dir.path(),
    );
    let out = sealctl(&[p(&cms)]);
    assert_eq!(code(&out), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("CMS"));

    let broken_zip = dir.path().join("broken.ofd");
    std::fs::write(&broken_zip, b"PK\x03\x04 and nothing else").unwrap();
    assert_eq!(code(&sealctl(&[p(&broken_zip)])), 2);

    assert_eq!(
        code(&sealctl(&[p(&ses("user-v4.esl")), "--digest", "zz"])),
        2
    );
}

/// Copies an OFD, replacing one entry's bytes.
fn ofd_with(ofd: &str, entry: &str, edit: impl Fn(&mut Vec<u8>), to: &Path) -> PathBuf {
    use std::io::Write;
    let mut src = zip::ZipArchive::new(std::fs::File::open(ses(ofd)).unwrap()).unwrap();
    let path = to.join(format!("edited-{ofd}"));
    let mut dst = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..src.len() {
        let mut f = src.by_index(i).unwrap();
        let name = f.name().to_string();
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).unwrap();
        if name == entry {
            edit(&mut bytes);
        }
        dst.start_file(name, opts).unwrap();
        dst.write_all(&bytes).unwrap();
    }
    dst.finish().unwrap();
    path
}

#[test]
fn tampered_ofd_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    // Unchanged copy still verifies (the rewrite itself is harmless).
    let same = ofd_with("gomain-999.ofd", "none", |_| {}, dir.path());
    assert_eq!(code(&sealctl(&[p(&same)])), 0);
    let edited = ofd_with(
        "gomain-999.ofd",
        "Doc_0/Signs/Sign_0/Signature.xml",
        |b| b.push(b' '),
        dir.path(),
    );
    let out = sealctl(&[p(&edited), "--json"]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert_eq!(
        check(&json(&out)["signatures"][0]["report"], "data-hash"),
        "failed"
    );
    let edited = ofd_with(
        "gomain-999.ofd",
        "Doc_0/Signs/Sign_0/SignedValue.dat",
        |b| {
            let n = b.len();
            b.truncate(n - 10)
        },
        dir.path(),
    );
    let out = sealctl(&[p(&edited), "--json"]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert_eq!(json(&out)["signatures"][0]["kind"], "unreadable");
}
