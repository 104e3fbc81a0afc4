//! The shared OFD fixtures and tampered variants made here.

use std::io::{Cursor, Read, Write};

use super::*;
use crate::ses::fixtures::fixture;
use crate::ses::{CheckStatus, Report};

fn verify_bytes(bytes: Vec<u8>) -> OfdReport {
    verify_ofd(Cursor::new(bytes), None).unwrap()
}

fn ofd(name: &str) -> OfdReport {
    verify_bytes(fixture(&format!("ses/{name}")))
}

fn report(entry: &OfdSignature) -> &Report {
    match &entry.outcome {
        OfdOutcome::Verified { report } => report,
        other => panic!("{}: {other:?}", entry.signature_xml),
    }
}

/// Every member of `name`, with its bytes.
fn members(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
    (0..zip.len())
        .filter_map(|i| {
            let mut f = zip.by_index(i).unwrap();
            if f.is_dir() {
                return None;
            }
            let mut b = Vec::new();
            f.read_to_end(&mut b).unwrap();
            Some((f.name().to_string(), b))
        })
        .collect()
}

fn zip_up(files: &[(String, Vec<u8>)], method: zip::CompressionMethod) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(method)
        .large_file(true);
    for (name, bytes) in files {
        w.start_file(name.as_str(), options).unwrap();
        w.write_all(bytes).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// `fixture` re-zipped, with `edit` applied to each member (return `None` to drop it).
fn variant(
    fixture_name: &str,
    method: zip::CompressionMethod,
    mut edit: impl FnMut(&str, Vec<u8>) -> Option<Vec<u8>>,
) -> Vec<u8> {
    let files: Vec<(String, Vec<u8>)> = members(&fixture(&format!("ses/{fixture_name}")))
        .into_iter()
        .filter_map(|(n, b)| edit(&n, b).map(|b| (n, b)))
        .collect();
    zip_up(&files, method)
}

fn replace(bytes: Vec<u8>, from: &str, to: &str) -> Vec<u8> {
    let s = String::from_utf8(bytes).unwrap();
    assert!(s.contains(from), "{from} not found");
    s.replacen(from, to, 1).into_bytes()
}

fn failed(r: &OfdReport) -> Vec<String> {
    r.failed_files()
}

#[test]
fn good_fixtures_are_valid_and_fully_checked() {
    for (file, sign) in [
        ("gomain-999.ofd", "Sign_0"),
        ("antchain-signscale.ofd", "Sign_0"),
        ("ofdrw-ride-right.ofd", "Sign_0"),
    ] {
        let r = ofd(file);
        eprintln!("{file}\n{}", r.to_text());
        assert!(r.valid, "{file}: {}", r.to_text());
        assert!(r.problems.is_empty(), "{file}");
        let s = r
            .signatures
            .iter()
            .find(|e| e.signature_xml.contains(sign))
            .unwrap_or_else(|| panic!("{file}: {sign} not found"));
        let refs = s.references.as_ref().unwrap();
        assert!(refs.checked > 0 && refs.all_ok() && !refs.weak, "{file}");
        for id in [
            "maker-signature",
            "signer-signature",
            "data-hash",
            "signer-in-seal",
            "seal-validity",
        ] {
            assert_eq!(
                report(s).check(id).unwrap().status,
                CheckStatus::Passed,
                "{file} {id}"
            );
        }
        for p in &r.pages {
            assert!(s.protects.contains(p.content.as_ref().unwrap()), "{file}");
        }
    }
    let gomain = ofd("gomain-999.ofd");
    let s = &gomain.signatures[0];
    assert_eq!(s.sign_type, "Seal");
    assert_eq!(s.id, "1");
    let r = report(s);
    assert_eq!(r.seal.vid, "GOMAIN");
    assert_eq!(r.seal.es_id, "50011200000323");
    assert_eq!(r.seal.seal_type, 3);
    assert!(r.seal.picture.starts_with("ofd 30x20"));
    assert_eq!(s.stamps.len(), 1);
    assert_eq!(s.stamps[0].page, Some(1));
    assert_eq!(s.stamps[0].boundary_mm, Some([90.0, 8.0, 30.0, 20.0]));
    assert_eq!(gomain.pages.len(), 5);
    // Signatures.xml is not protected by the gomain seal (continue mode), and is reported so.
    assert!(gomain
        .uncovered
        .contains(&"Doc_0/Signs/Signatures.xml".to_string()));

    let ride = ofd("ofdrw-ride-right.ofd");
    let s = &ride.signatures[0];
    let pages: Vec<_> = s.stamps.iter().map(|t| t.page).collect();
    assert_eq!(pages, [Some(1), Some(2), Some(3), Some(4), Some(5)]);
    assert_eq!(s.stamps[4].clip_mm, Some([32.0, 0.0, 8.0, 40.0]));
    assert_eq!(s.stamps[0].boundary_mm, Some([202.0, 40.0, 40.0, 40.0]));
    // Locked: everything is covered.
    assert!(s
        .protects
        .contains(&"Doc_0/Signs/Signatures.xml".to_string()));
    assert!(ride.uncovered.is_empty(), "{:?}", ride.uncovered);
}

#[test]
fn tongzhiweiye_keyword_is_invalid_naming_the_three_files() {
    let r = ofd("tongzhiweiye-keyword.ofd");
    eprintln!("{}", r.to_text());
    assert!(!r.valid);
    assert_eq!(
        failed(&r),
        [
            "/Doc_0/Document.xml",
            "/Doc_0/Pages/Page_0/Content.xml",
            "/OFD.xml"
        ]
    );
    assert_eq!(r.signatures.len(), 2);
    let sign1 = r
        .signatures
        .iter()
        .find(|e| e.signature_xml.contains("Sign_1"))
        .unwrap();
    assert!(!sign1.valid);
    // The SES_Signature itself verifies (raw r||s); the document it covers is not this one.
    let rep = report(sign1);
    assert!(rep.valid);
    assert!(rep
        .check("signer-signature")
        .unwrap()
        .detail
        .starts_with("raw r||s"));
    assert_eq!(rep.seal.vid, "SHANDONG.TONGZHIWEIYE");
    assert_eq!(sign1.stamps[0].page, Some(1));
    let sign3 = r
        .signatures
        .iter()
        .find(|e| e.signature_xml.contains("Sign_3"))
        .unwrap();
    assert_eq!(sign3.sign_type, "Sign");
    // The GB/T 35275 CMS (plain form: the signer signs SM3(Signature.xml)) verifies.
    match &sign3.outcome {
        OfdOutcome::Cms { report } => {
            assert!(report.valid, "{:?}", report.checks);
            assert_eq!(report.form, "plain");
            assert_eq!(
                report.signer.as_ref().unwrap().subject_cn.as_deref(),
                Some("37030000001721")
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(!sign3.valid);
}

#[test]
fn shared_tampered_fixtures_are_invalid() {
    let r = ofd("tampered/gomain-999-date-changed.ofd");
    assert!(!r.valid);
    assert_eq!(failed(&r), ["/Doc_0/Pages/Page_0/Content.xml"]);
    assert!(
        report(&r.signatures[0]).valid,
        "the signature itself verifies"
    );
    assert!(r.to_text().contains("/Doc_0/Pages/Page_0/Content.xml"));

    let r = ofd("tampered/gomain-999-file-removed.ofd");
    assert!(!r.valid);
    assert_eq!(failed(&r), ["/Doc_0/Res/qrcode.png"]);
    assert!(r.to_text().contains("/Doc_0/Res/qrcode.png is missing"));
}

#[test]
fn compression_does_not_matter_content_does() {
    for method in [
        zip::CompressionMethod::Stored,
        zip::CompressionMethod::Deflated,
    ] {
        let r = verify_bytes(variant("gomain-999.ofd", method, |_, b| Some(b)));
        assert!(r.valid, "{method:?}: {}", r.to_text());
        let r = verify_bytes(variant("ofdrw-ride-right.ofd", method, |_, b| Some(b)));
        assert!(r.valid, "{method:?}: {}", r.to_text());
    }
    // One byte more in a page's content.
    let r = verify_bytes(variant(
        "ofdrw-ride-right.ofd",
        zip::CompressionMethod::Deflated,
        |n, mut b| {
            if n == "Doc_0/Pages/Page_2/Content.xml" {
                b.push(b' ');
            }
            Some(b)
        },
    ));
    assert!(!r.valid);
    assert_eq!(failed(&r), ["/Doc_0/Pages/Page_2/Content.xml"]);
}

#[test]
fn an_added_page_is_caught() {
    let r = verify_bytes(variant(
        "ofdrw-ride-right.ofd",
        zip::CompressionMethod::Deflated,
        |n, b| {
            Some(if n == "Doc_0/Document.xml" {
                replace(
                    b,
                    "</ofd:Pages>",
                    "<ofd:Page ID=\"999\" BaseLoc=\"Pages/Page_5/Content.xml\"/></ofd:Pages>",
                )
            } else {
                b
            })
        },
    ));
    assert!(!r.valid);
    assert_eq!(failed(&r), ["/Doc_0/Document.xml"]);
    assert_eq!(r.pages.len(), 6);
    assert!(r
        .problems
        .iter()
        .any(|p| p.contains("page 6 (/Doc_0/Pages/Page_5/Content.xml) is not covered")));
}

#[test]
fn a_replaced_seal_or_image_is_caught() {
    // (user-v4.esl is this very seal, byte for byte: take another one.)
    let other = fixture("ses/hebei-bad-maker-sig.der");
    let r = verify_bytes(variant(
        "ofdrw-ride-right.ofd",
        zip::CompressionMethod::Stored,
        |n, b| {
            Some(if n.ends_with("Seal.esl") {
                other.clone()
            } else {
                b
            })
        },
    ));
    assert!(!r.valid);
    assert_eq!(failed(&r), ["/Doc_0/Signs/Sign_0/Seal.esl"]);

    let r = verify_bytes(variant(
        "gomain-999.ofd",
        zip::CompressionMethod::Deflated,
        |n, b| {
            Some(if n.ends_with("qrcode.png") {
                b"\x89PNG".to_vec()
            } else {
                b
            })
        },
    ));
    assert!(!r.valid);
    assert_eq!(failed(&r), ["/Doc_0/Res/qrcode.png"]);
}

#[test]
fn a_stamp_on_no_page_is_an_error() {
    let r = verify_bytes(variant(
        "ofdrw-ride-right.ofd",
        zip::CompressionMethod::Deflated,
        |n, b| {
            Some(if n == "Doc_0/Document.xml" {
                replace(b, "ID=\"83\"", "ID=\"84\"")
            } else {
                b
            })
        },
    ));
    assert!(!r.valid);
    let s = &r.signatures[0];
    assert_eq!(s.stamps[4].page, None);
    assert!(s.problems.iter().any(|p| p.contains("\"s006\"")));
}

#[test]
fn a_changed_signature_xml_breaks_its_signature() {
    // An extra stamp added to Signature.xml: dataHash no longer matches.
    let r = verify_bytes(variant(
        "gomain-999.ofd",
        zip::CompressionMethod::Deflated,
        |n, b| {
            Some(if n.ends_with("Sign_0/Signature.xml") {
                replace(b, "ID=\"01\"", "ID=\"02\"")
            } else {
                b
            })
        },
    ));
    assert!(!r.valid);
    assert_eq!(
        report(&r.signatures[0]).check("data-hash").unwrap().status,
        CheckStatus::Failed
    );
    assert!(r
        .uncovered
        .contains(&"Doc_0/Pages/Page_0/Content.xml".to_string()));
}

#[test]
fn unsafe_or_broken_packages_are_refused() {
    let evil = zip_up(
        &[("../evil".to_string(), b"x".to_vec())],
        zip::CompressionMethod::Stored,
    );
    assert!(matches!(
        verify_ofd(Cursor::new(evil), None),
        Err(OfdError::Package(_))
    ));
    assert!(verify_ofd(Cursor::new(b"PK\x03\x04garbage".to_vec()), None).is_err());
    // A zip without OFD.xml, and OFD.xml with no signatures: invalid, not a crash.
    let r = verify_bytes(zip_up(
        &[("a.txt".to_string(), b"x".to_vec())],
        zip::CompressionMethod::Stored,
    ));
    assert!(!r.valid);
    let r = verify_bytes(variant(
        "gomain-999.ofd",
        zip::CompressionMethod::Stored,
        |n, b| {
            Some(if n == "OFD.xml" {
                replace(
                    b,
                    "<ofd:Signatures>/Doc_0/Signs/Signatures.xml</ofd:Signatures>",
                    "",
                )
            } else {
                b
            })
        },
    ));
    assert!(!r.valid);
    assert!(r.problems.iter().any(|p| p.contains("no Signatures list")));
    // A reference that escapes the package.
    let r = verify_bytes(variant(
        "gomain-999.ofd",
        zip::CompressionMethod::Stored,
        |n, b| {
            Some(if n == "OFD.xml" {
                replace(b, "/Doc_0/Signs/Signatures.xml", "../../Signatures.xml")
            } else {
                b
            })
        },
    ));
    assert!(!r.valid);
}

#[test]
fn an_oversized_member_stops_at_the_cap() {
    let big = vec![0u8; (MAX_MEMBER + 1) as usize];
    let bytes = zip_up(
        &[("Doc_0/big.bin".to_string(), big)],
        zip::CompressionMethod::Stored,
    );
    let mut p = Package::open(Cursor::new(bytes)).unwrap();
    assert!(matches!(
        p.read("Doc_0/big.bin"),
        Err(ReadError::TooLarge(..))
    ));
    assert!(matches!(p.read("nope"), Err(ReadError::Missing(_))));
}

#[test]
fn check_methods() {
    assert_eq!(CheckMethod::parse("SM3"), Some(CheckMethod::Sm3));
    assert_eq!(
        CheckMethod::parse(" 1.2.156.10197.1.401 "),
        Some(CheckMethod::Sm3)
    );
    assert!(CheckMethod::parse("md5").unwrap().is_weak());
    assert!(CheckMethod::parse("SHA1").unwrap().is_weak());
    assert_eq!(CheckMethod::parse("SHA256"), None);
}

/// A hand-made package under `Doc_7` (not `Doc_0`), relative locations everywhere, and a
/// Signature.xml whose references use `method` with `file_refs` (name, digest-of-what).
fn handmade(method: &str, file_refs: &[(&str, &[u8])]) -> Vec<u8> {
    use base64::Engine;
    use md5::Digest;
    let page = b"<ofd:Page xmlns:ofd=\"http://www.ofdspec.org/2016\"/>".to_vec();
    let refs: String = file_refs
        .iter()
        .map(|(name, bytes)| {
            let d = match method {
                "MD5" => md5::Md5::digest(bytes).to_vec(),
                "SHA1" => sha1::Sha1::digest(bytes).to_vec(),
                _ => crate::crypto::sm3(bytes).to_vec(),
            };
            format!(
                "<ofd:Reference FileRef=\"{name}\"><ofd:CheckValue>{}</ofd:CheckValue></ofd:Reference>",
                base64::engine::general_purpose::STANDARD.encode(d)
            )
        })
        .collect();
    let files = [
        (
            "OFD.xml",
            "<ofd:OFD xmlns:ofd=\"http://www.ofdspec.org/2016\"><ofd:DocBody><ofd:DocRoot>Doc_7/Document.xml</ofd:DocRoot><ofd:Signatures>Doc_7/Signs/Signatures.xml</ofd:Signatures></ofd:DocBody></ofd:OFD>".to_string(),
        ),
        (
            "Doc_7/Document.xml",
            "<ofd:Document xmlns:ofd=\"http://www.ofdspec.org/2016\"><ofd:Pages><ofd:Page ID=\"5\" BaseLoc=\"Pages/P/Content.xml\"/></ofd:Pages></ofd:Document>".to_string(),
        ),
        ("Doc_7/Pages/P/Content.xml", String::from_utf8(page).unwrap()),
        (
            "Doc_7/Signs/Signatures.xml",
            "<ofd:Signatures xmlns:ofd=\"http://www.ofdspec.org/2016\"><ofd:Signature ID=\"s1\" Type=\"Seal\" BaseLoc=\"S/Signature.xml\"/></ofd:Signatures>".to_string(),
        ),
        (
            "Doc_7/Signs/S/Signature.xml",
            format!("<ofd:Signature xmlns:ofd=\"http://www.ofdspec.org/2016\"><ofd:SignedInfo><ofd:References CheckMethod=\"{method}\">{refs}</ofd:References><ofd:StampAnnot ID=\"s2\" PageRef=\"5\" Boundary=\"1 2 3 4\"/></ofd:SignedInfo><ofd:SignedValue>SignedValue.dat</ofd:SignedValue></ofd:Signature>"),
        ),
        ("Doc_7/Signs/S/SignedValue.dat", "not DER".to_string()),
    ];
    let files: Vec<(String, Vec<u8>)> = files
        .into_iter()
        .map(|(n, t)| (n.to_string(), t.into_bytes()))
        .collect();
    zip_up(&files, zip::CompressionMethod::Deflated)
}

#[test]
fn relative_locations_other_doc_roots_and_weak_digests() {
    let page: &[u8] = b"<ofd:Page xmlns:ofd=\"http://www.ofdspec.org/2016\"/>";
    for method in ["SM3", "1.2.156.10197.1.401", "MD5", "SHA1"] {
        let r = verify_bytes(handmade(
            method,
            &[
                ("Pages/P/Content.xml", page),
                ("/Doc_7/Pages/P/Content.xml", page),
            ],
        ));
        assert_eq!(r.doc_root.as_deref(), Some("Doc_7/Document.xml"));
        let s = &r.signatures[0];
        assert_eq!(s.signature_xml, "Doc_7/Signs/S/Signature.xml");
        assert_eq!(s.signed_value, "Doc_7/Signs/S/SignedValue.dat");
        assert_eq!(s.stamps[0].page, Some(1));
        let refs = s.references.as_ref().unwrap();
        assert!(refs.all_ok(), "{method}: {refs:?}");
        assert_eq!(refs.weak, method == "MD5" || method == "SHA1", "{method}");
        assert!(refs
            .items
            .iter()
            .all(|i| i.member.as_deref() == Some("Doc_7/Pages/P/Content.xml")));
        if refs.weak {
            assert!(r.notes.iter().any(|n| n.contains("weak")), "{method}");
        }
        // The SignedValue is not a signature: invalid, and the page is covered by nothing.
        assert!(!r.valid);
        assert!(r.problems.iter().any(|p| p.contains("page 1")));
    }
    // Unknown method, escaping FileRef, wrong digest, missing file: each named.
    let r = verify_bytes(handmade("SHA256", &[("Pages/P/Content.xml", page)]));
    assert!(r.signatures[0]
        .problems
        .iter()
        .any(|p| p.contains("SHA256")));
    let r = verify_bytes(handmade(
        "SM3",
        &[
            ("../../../etc/passwd", page),
            ("Pages/P/Content.xml", b"other"),
            ("/Doc_7/Res/none.png", page),
        ],
    ));
    assert_eq!(
        failed(&r),
        [
            "../../../etc/passwd",
            "/Doc_7/Res/none.png",
            "Pages/P/Content.xml"
        ]
    );
    let text = r.to_text();
    assert!(text.contains("escapes the package"), "{text}");
    assert!(text.contains("/Doc_7/Res/none.png is missing"), "{text}");
    assert!(
        text.contains("/Doc_7/Pages/P/Content.xml was changed"),
        "{text}"
    );
}

#[test]
fn the_page_list_and_every_page_must_be_covered() {
    let names: Vec<String> = members(&fixture("ses/gomain-999.ofd"))
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    for (dropped, words) in [
        ("Doc_0/Document.xml", "the page list /Doc_0/Document.xml"),
        (
            "Doc_0/Pages/Page_2/Content.xml",
            "page 3 (/Doc_0/Pages/Page_2/Content.xml)",
        ),
    ] {
        let mut r = ofd("gomain-999.ofd");
        assert!(r.valid);
        r.signatures[0].protects.retain(|m| m != dropped);
        r.problems.clear();
        r.notes.clear();
        super::verify::finish(&mut r, &names);
        assert!(!r.valid, "{dropped}");
        assert!(
            r.problems.iter().any(|p| p.contains(words)),
            "{dropped}: {:?}",
            r.problems
        );
        assert!(r.uncovered.contains(&dropped.to_string()));
    }
}

#[test]
fn relative_locations_fall_back_to_the_package_root() {
    let bytes = zip_up(
        &[
            (
                "Doc_0/Signs/Sign_0/Signature.xml".to_string(),
                b"x".to_vec(),
            ),
            ("Doc_0/Pages/Page_0/Content.xml".to_string(), b"x".to_vec()),
        ],
        zip::CompressionMethod::Stored,
    );
    let p = Package::open(Cursor::new(bytes)).unwrap();
    // Relative to the Signatures list's directory, as the standard reads it.
    assert_eq!(
        p.locate("Doc_0/Signs", "Sign_0/Signature.xml").unwrap(),
        "Doc_0/Signs/Sign_0/Signature.xml"
    );
    // Written relative to the package root by some vendors.
    assert_eq!(
        p.locate("Doc_0/Signs", "Doc_0/Signs/Sign_0/Signature.xml")
            .unwrap(),
        "Doc_0/Signs/Sign_0/Signature.xml"
    );
    assert_eq!(
        p.locate("Doc_0", "Doc_0/Pages/Page_0/Content.xml").unwrap(),
        "Doc_0/Pages/Page_0/Content.xml"
    );
    // Neither exists: the standard reading is reported (as missing, later).
    assert_eq!(p.locate("Doc_0", "Res/a.png").unwrap(), "Doc_0/Res/a.png");
    assert!(p.locate("Doc_0", "../../a").is_err());
}
