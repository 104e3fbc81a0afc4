//! The sealing engine on generated OFDs and on the vendors' fixtures: every result verifies in
//! seald's verifier; independently, OpenSSL verifies the SES_Signature's signature over the
//! DER of TBS_Sign and computes the SM3 of the raw `Signature.xml` that dataHash must equal;
//! unchanged members are byte-identical (raw, compressed bytes included).

use std::collections::BTreeMap;
use std::io::{Cursor, Read, Write};
use std::process::Command;

use time::macros::datetime;
use time::OffsetDateTime;

use super::*;
use crate::cert::testing::{parties, Parties};
use crate::cert::{Certificate, TrustStore};
use crate::crypto::KeyAlgorithm;
use crate::ofd::sample::Sample;
use crate::ofd::{verify_ofd, OfdOutcome, OfdReport};
use crate::ses::build_tests::{openssl_verifies, seal_info};
use crate::ses::fixtures::fixture;
use crate::ses::{build_seal, CheckStatus, Seal};

const WHEN: OffsetDateTime = datetime!(2025-06-01 08:00:00 UTC);

struct Keys {
    p: Parties,
    seal: Seal,
    alg: KeyAlgorithm,
}

impl Keys {
    fn new(alg: KeyAlgorithm) -> Self {
        let p = parties(alg);
        let seal = build_seal(&seal_info(&p), &p.maker_cert, &p.maker).unwrap();
        Self { p, seal, alg }
    }

    fn signer(&self) -> DocumentSigner<'_> {
        DocumentSigner::new(&self.seal, &self.p.signer_cert, &self.p.signer).unwrap()
    }

    fn size(&self) -> (f64, f64) {
        seal_size_mm(&self.seal)
    }

    fn trust(&self) -> TrustStore {
        TrustStore::new(vec![Certificate::from_der(&self.p.root_cert).unwrap()])
    }
}

fn options(mode: SealMode) -> SealOptions {
    SealOptions {
        mode,
        ..SealOptions::default()
    }
}

/// Plans and seals `input`.
fn seal_with(
    keys: &Keys,
    input: &[u8],
    placements: &[Placement],
    options: &SealOptions,
) -> Result<(Vec<u8>, SealPlan, SealedDocument), SealError> {
    let plan = plan(Cursor::new(input), placements, keys.size(), options.mode)?;
    let mut out = Cursor::new(Vec::new());
    let sealed = seal(
        Cursor::new(input),
        &mut out,
        &plan,
        options,
        &keys.signer(),
        WHEN,
    )?;
    Ok((out.into_inner(), plan, sealed))
}

/// Every member's (name, uncompressed bytes, raw compressed bytes, CRC), by the zip crate
/// alone (not seald's reader).
fn raw_members(bytes: &[u8]) -> BTreeMap<String, (Vec<u8>, Vec<u8>, u32)> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
    let mut out = BTreeMap::new();
    for i in 0..zip.len() {
        let mut raw = Vec::new();
        let crc = {
            let f = zip.by_index_raw(i).unwrap();
            if f.is_dir() {
                continue;
            }
            let crc = f.crc32();
            let mut f = f;
            f.read_to_end(&mut raw).unwrap();
            crc
        };
        let mut f = zip.by_index(i).unwrap();
        let mut plain = Vec::new();
        f.read_to_end(&mut plain).unwrap();
        out.insert(f.name().to_string(), (plain, raw, crc));
    }
    out
}

fn member(bytes: &[u8], name: &str) -> Vec<u8> {
    raw_members(bytes)
        .remove(name)
        .unwrap_or_else(|| panic!("{name} not in the output"))
        .0
}

fn openssl_digest(dir: &std::path::Path, data: &[u8], md: &str) -> Vec<u8> {
    let path = dir.join("signature.xml");
    std::fs::write(&path, data).unwrap();
    let out = Command::new("openssl")
        .args(["dgst", md, "-binary", path.to_str().unwrap()])
        .output()
        .expect("the openssl binary runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The independent checks: OpenSSL verifies the signer's signature over DER(TBS_Sign) from
/// `SignedValue.dat`, and computes the digest of the raw `Signature.xml` that dataHash holds.
fn check_independently(keys: &Keys, output: &[u8], sealed: &SealedDocument) {
    let xml = member(output, &sealed.signature_path);
    let dir = parent(&sealed.signature_path);
    let value = member(output, &format!("{dir}/SignedValue.dat"));
    assert_eq!(value, sealed.signature.der);
    let sig = SesSignature::parse(&value).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let sm2 = keys.alg == KeyAlgorithm::Sm2;
    assert!(
        openssl_verifies(
            tmp.path(),
            "signer",
            &sig.signer_cert,
            &sig.signature,
            &sig.signed_bytes,
            sm2
        ),
        "OpenSSL refuses the signature over TBS_Sign"
    );
    let md = if sm2 { "-sm3" } else { "-sha256" };
    assert_eq!(sig.tbs.data_hash, openssl_digest(tmp.path(), &xml, md));
    assert_eq!(sig.tbs.property_info, format!("/{}", sealed.signature_path));
    // The seal in the package is the seal that was signed with.
    assert_eq!(member(output, &format!("{dir}/Seal.esl")), keys.seal.der);
}

/// seald's verifier: valid, our signature verified with every check passed (or not
/// applicable), the page list and pages covered.
fn check_verifies(output: &[u8], sealed: &SealedDocument, trust: Option<&TrustStore>) -> OfdReport {
    let r = verify_ofd(Cursor::new(output), trust).unwrap();
    assert!(r.valid, "{}", r.to_text());
    let ours = r
        .signatures
        .iter()
        .find(|s| s.signature_xml == sealed.signature_path)
        .unwrap_or_else(|| panic!("our signature is not listed: {}", r.to_text()));
    assert_eq!(ours.id, sealed.signature_id);
    assert!(ours.valid && ours.is_verified(), "{}", r.to_text());
    match &ours.outcome {
        OfdOutcome::Verified { report } => {
            for c in &report.checks {
                assert!(
                    c.status == CheckStatus::Passed || c.status == CheckStatus::NotApplicable,
                    "{c:?}"
                );
            }
            assert_eq!(
                report.check("data-hash").unwrap().status,
                CheckStatus::Passed
            );
            assert_eq!(
                report.check("signer-signature").unwrap().status,
                CheckStatus::Passed
            );
            assert_eq!(
                report.check("maker-signature").unwrap().status,
                CheckStatus::Passed
            );
        }
        other => panic!("{other:?}"),
    }
    let refs = ours.references.as_ref().unwrap();
    assert!(refs.all_ok() && !refs.weak);
    assert_eq!(refs.check_method.as_deref(), Some("1.2.156.10197.1.401"));
    r
}

/// Every input member is in the output; all but `changed` with the same raw bytes and CRC.
fn check_unchanged(input: &[u8], output: &[u8], changed: &[&str]) {
    let before = raw_members(input);
    let after = raw_members(output);
    for (name, (plain, raw, crc)) in &before {
        let (p2, r2, c2) = after
            .get(name.trim_start_matches('/'))
            .unwrap_or_else(|| panic!("{name} was dropped"));
        if changed.contains(&name.as_str()) {
            continue;
        }
        assert!(plain == p2 && raw == r2 && crc == c2, "{name} changed");
    }
}

fn at(page: u32, x: f64, y: f64) -> Placement {
    Placement::At {
        page,
        x,
        y,
        width: None,
        height: None,
    }
}

fn keyword(text: &str) -> Placement {
    Placement::Keyword {
        text: text.into(),
        all: false,
        pages: None,
    }
}

fn riding(edge: Edge) -> Placement {
    Placement::Riding {
        edge,
        from: None,
        to: None,
        offset: None,
    }
}

fn close(a: [f64; 4], b: [f64; 4]) -> bool {
    a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 0.0015)
}

#[test]
fn generated_documents_are_sealed_every_way_in_both_modes() {
    for alg in [KeyAlgorithm::Sm2, KeyAlgorithm::P256] {
        let keys = Keys::new(alg);
        let trust = keys.trust();
        for dir in ["Doc_0", "Doc_1"] {
            let sample = Sample::new(3)
                .doc_dir(dir)
                .line(2, 30.0, 200.0, 5.0, "甲方（盖章）");
            let input = sample.build();
            for mode in [SealMode::Continue, SealMode::Lock] {
                let placements = vec![at(1, 150.0, 240.0), keyword("盖章"), riding(Edge::Right)];
                let (out, plan, sealed) =
                    seal_with(&keys, &input, &placements, &options(mode)).unwrap();
                assert_eq!(plan.pages, 3);
                assert_eq!(plan.stamps.len(), 1 + 1 + 3);
                assert_eq!(
                    sealed.signature_path,
                    format!("{dir}/Signs/Sign_0/Signature.xml")
                );
                assert_eq!(sealed.signature_id, "s001");
                assert_eq!(sealed.stamp_ids, ["s002", "s003", "s004", "s005", "s006"]);
                let r = check_verifies(&out, &sealed, Some(&trust));
                assert_eq!(r.doc_root.as_deref(), Some(&*format!("{dir}/Document.xml")));
                let ours = &r.signatures[0];
                // Continue leaves the list unprotected; lock protects it.
                let list = format!("{dir}/Signs/Signatures.xml");
                assert_eq!(
                    ours.protects.contains(&list),
                    mode == SealMode::Lock,
                    "{mode:?}"
                );
                // The stamps as planned, on the pages' object IDs.
                assert_eq!(ours.stamps.len(), 5);
                for (s, p) in ours.stamps.iter().zip(&plan.stamps) {
                    assert_eq!(s.page, Some(p.page as usize));
                    assert_eq!(s.page_ref, sample.page_id(p.page));
                    assert_eq!(s.boundary_mm, Some(p.boundary));
                    assert_eq!(s.clip_mm, p.clip);
                }
                // 盖章 is glyphs 3 and 4 of 甲方（盖章）, a 5 mm line at (30, 200): centre (50, 202.5).
                assert!(close(plan.stamps[1].boundary, [30.0, 182.5, 40.0, 40.0]));
                let ofd = String::from_utf8(member(&out, "OFD.xml")).unwrap();
                assert!(ofd.contains(&format!(
                    "<ofd:Signatures>/{dir}/Signs/Signatures.xml</ofd:Signatures></ofd:DocBody>"
                )));
                check_unchanged(&input, &out, &["OFD.xml"]);
                check_independently(&keys, &out, &sealed);
            }
        }
    }
}

#[test]
fn the_vendors_fixtures_are_sealed_and_their_signatures_stay_valid() {
    let keys = Keys::new(KeyAlgorithm::Sm2);
    for (file, key) in [
        ("gomain-999.ofd", "财天下科技有限公司"),
        ("antchain-signscale.ofd", "购买方"),
    ] {
        let input = fixture(&format!("ses/{file}"));
        let before = verify_ofd(Cursor::new(&input), None).unwrap();
        assert!(before.valid, "{file}");
        for mode in [SealMode::Continue, SealMode::Lock] {
            for placements in [
                vec![at(1, 120.0, 60.0)],
                vec![keyword(key)],
                vec![riding(Edge::Right), riding(Edge::Bottom)],
                vec![at(1, 10.0, 10.0), keyword(key), riding(Edge::Left)],
            ] {
                let (out, _, sealed) = seal_with(&keys, &input, &placements, &options(mode))
                    .unwrap_or_else(|e| panic!("{file} {placements:?}: {e}"));
                let r = check_verifies(&out, &sealed, None);
                assert_eq!(r.signatures.len(), before.signatures.len() + 1);
                assert!(r.signatures.iter().all(|s| s.valid), "{}", r.to_text());
                assert_eq!(sealed.signature_path, "Doc_0/Signs/Sign_1/Signature.xml");
                // Only the list changes (OFD.xml already names it).
                check_unchanged(&input, &out, &["Doc_0/Signs/Signatures.xml"]);
                assert_eq!(member(&out, "OFD.xml"), member(&input, "OFD.xml"));
                check_independently(&keys, &out, &sealed);
                if mode == SealMode::Lock {
                    assert!(r.uncovered.is_empty(), "{:?}", r.uncovered);
                }
            }
        }
    }
}

#[test]
fn keywords_in_vendor_pages_and_templates() {
    let keys = Keys::new(KeyAlgorithm::Sm2);
    let input = fixture("ses/gomain-999.ofd");
    // Page text: TextObject Boundary 36 104, Size 3.175, X 0, Y 4.0875, 9 glyphs of 3.175.
    let p = planned(&input, &[keyword("财天下科技有限公司")], (40.0, 40.0));
    let (cx, cy) = (36.0 + 9.0 * 3.175 / 2.0, 104.0 + 4.0875 - 0.3 * 3.175);
    assert_eq!(p.stamps.len(), 1);
    assert_eq!(p.stamps[0].page_ref, "10");
    assert!(
        close(p.stamps[0].boundary, [cx - 20.0, cy - 20.0, 40.0, 40.0]),
        "{:?}",
        p.stamps
    );
    // The title is in each page's template (Tpl_N): 电子普通发票 is glyphs 5..=10 of
    // 重庆增值税电子普通发票 (Boundary 68.5 7, X 0.9525, advance 6.5, Size 6.7028).
    let all = Placement::Keyword {
        text: "电子普通发票".into(),
        all: true,
        pages: None,
    };
    let p = planned(&input, &[all], (40.0, 40.0));
    assert_eq!(p.stamps.len(), 5, "{:?}", p.stamps);
    let cx = 68.5 + 0.9525 + 5.0 * 6.5 + 3.0 * 6.5;
    let cy = 7.0 + 5.4504 - 0.3 * 6.7028;
    assert!(
        close(p.stamps[0].boundary, [cx - 20.0, cy - 20.0, 40.0, 40.0]),
        "{:?}",
        p.stamps
    );
    let refs: Vec<&str> = p.stamps.iter().map(|s| s.page_ref.as_str()).collect();
    assert_eq!(refs, ["10", "92", "271", "450", "629"]);
    let (out, _, sealed) = seal_with(
        &keys,
        &input,
        &[Placement::Keyword {
            text: "电子普通发票".into(),
            all: true,
            pages: Some(vec![2, 4]),
        }],
        &options(SealMode::Continue),
    )
    .unwrap();
    let r = check_verifies(&out, &sealed, None);
    let pages: Vec<_> = r.signatures[1].stamps.iter().map(|s| s.page).collect();
    assert_eq!(pages, [Some(2), Some(4)]);
}

#[test]
fn keywords_span_text_objects_and_find_every_hit() {
    // 合同 and 专用章 are two text objects side by side; 专用章 also appears on page 3.
    let input = Sample::new(3)
        .line(2, 40.0, 100.0, 4.0, "合同")
        .line(2, 48.0, 100.0, 4.0, "专用章")
        .line(3, 10.0, 10.0, 2.0, "专用章 专用章")
        .build();
    let p = planned(&input, &[keyword("合同专用章")], (20.0, 10.0));
    // Five glyphs of 4 mm from x 40: centre (50, 102).
    assert_eq!(p.stamps.len(), 1);
    assert!(
        close(p.stamps[0].boundary, [40.0, 97.0, 20.0, 10.0]),
        "{:?}",
        p.stamps
    );
    let every = Placement::Keyword {
        text: "专用章".into(),
        all: true,
        pages: None,
    };
    let p = planned(&input, &[every], (20.0, 10.0));
    let pages: Vec<u32> = p.stamps.iter().map(|s| s.page).collect();
    assert_eq!(pages, [2, 3, 3]);
    // On page 3 the second hit is glyphs 4..=6 (the space is a glyph too): centre x 10+2·5.5.
    assert!(
        close(p.stamps[2].boundary, [11.0, 6.0, 20.0, 10.0]),
        "{:?}",
        p.stamps
    );
    let first_only = Placement::Keyword {
        text: "专用章".into(),
        all: false,
        pages: Some(vec![3]),
    };
    let p = planned(&input, &[first_only], (20.0, 10.0));
    assert_eq!(p.stamps.len(), 1);
    assert_eq!(p.stamps[0].page, 3);
}

#[test]
fn riding_seals_follow_ofdrw_geometry() {
    // The ofdrw sample: 5 A4 pages, right edge, 40 mm seal at y 40.
    let input = Sample::new(5).build();
    let right = Placement::Riding {
        edge: Edge::Right,
        from: None,
        to: None,
        offset: Some(40.0),
    };
    let p = planned(&input, &[right], (40.0, 40.0));
    let ofdrw = verify_ofd(Cursor::new(fixture("ses/ofdrw-ride-right.ofd")), None).unwrap();
    let theirs = &ofdrw.signatures[0].stamps;
    assert_eq!(p.stamps.len(), theirs.len());
    for (ours, theirs) in p.stamps.iter().zip(theirs) {
        assert_eq!(Some(ours.boundary), theirs.boundary_mm);
        assert_eq!(ours.clip, theirs.clip_mm);
    }
    // Every edge: each page shows one slice, flush with the edge, and the slices of all pages
    // together make the whole seal once.
    for edge in [Edge::Right, Edge::Left, Edge::Top, Edge::Bottom] {
        let ride = Placement::Riding {
            edge,
            from: Some(2),
            to: Some(5),
            offset: None,
        };
        let p = planned(&input, &[ride], (40.0, 30.0));
        let pages: Vec<u32> = p.stamps.iter().map(|s| s.page).collect();
        assert_eq!(pages, [2, 3, 4, 5]);
        let mut slices = Vec::new();
        for s in &p.stamps {
            let (b, c) = (s.boundary, s.clip.unwrap());
            let (vx, vy) = (b[0] + c[0], b[1] + c[1]);
            match edge {
                Edge::Right => assert!((vx + c[2] - 210.0).abs() < 1e-9 && b[1] == 133.5),
                Edge::Left => assert!(vx.abs() < 1e-9 && b[1] == 133.5),
                Edge::Top => assert!(vy.abs() < 1e-9 && b[0] == 85.0),
                Edge::Bottom => assert!((vy + c[3] - 297.0).abs() < 1e-9 && b[0] == 85.0),
            }
            slices.push(if matches!(edge, Edge::Right | Edge::Left) {
                c[0]
            } else {
                c[1]
            });
        }
        slices.sort_by(f64::total_cmp);
        let item = if matches!(edge, Edge::Right | Edge::Left) {
            10.0
        } else {
            7.5
        };
        assert_eq!(slices, [0.0, item, 2.0 * item, 3.0 * item], "{edge:?}");
    }
}

#[test]
fn two_seals_then_a_lock_then_no_more() {
    let keys = Keys::new(KeyAlgorithm::Sm2);
    let trust = keys.trust();
    let input = Sample::new(2).doc_dir("Doc_1").build();
    let (one, _, s1) = seal_with(
        &keys,
        &input,
        &[at(1, 10.0, 10.0)],
        &options(SealMode::Continue),
    )
    .unwrap();
    let (two, _, s2) = seal_with(
        &keys,
        &one,
        &[at(2, 10.0, 10.0)],
        &options(SealMode::Continue),
    )
    .unwrap();
    assert_eq!(s2.signature_path, "Doc_1/Signs/Sign_1/Signature.xml");
    assert_eq!(
        (s1.signature_id.as_str(), s2.signature_id.as_str()),
        ("s001", "s003")
    );
    let r = check_verifies(&two, &s2, Some(&trust));
    assert_eq!(r.signatures.len(), 2);
    assert!(r.signatures.iter().all(|s| s.valid && s.is_verified()));
    // The second seal covers the first one's files; OFD.xml was edited once only.
    let ours = &r.signatures[1];
    for f in ["Signature.xml", "SignedValue.dat", "Seal.esl"] {
        assert!(
            ours.protects.contains(&format!("Doc_1/Signs/Sign_0/{f}")),
            "{f}"
        );
    }
    check_unchanged(&one, &two, &["Doc_1/Signs/Signatures.xml"]);
    let list = String::from_utf8(member(&two, "Doc_1/Signs/Signatures.xml")).unwrap();
    assert!(
        list.contains("<ofd:MaxSignId>s004</ofd:MaxSignId><ofd:Signature ID=\"s001\""),
        "{list}"
    );

    let (three, _, s3) = seal_with(
        &keys,
        &two,
        &[riding(Edge::Right)],
        &options(SealMode::Lock),
    )
    .unwrap();
    let r = check_verifies(&three, &s3, Some(&trust));
    assert_eq!(r.signatures.len(), 3);
    assert!(r.uncovered.is_empty(), "{:?}", r.uncovered);
    check_independently(&keys, &three, &s3);

    // Locked: refused at planning and at sealing, naming the locking signature.
    let e = plan(
        Cursor::new(&three),
        &[at(1, 1.0, 1.0)],
        keys.size(),
        SealMode::Continue,
    )
    .unwrap_err();
    assert!(
        matches!(&e, SealError::Locked(id) if id == &s3.signature_id),
        "{e}"
    );
    assert!(e.to_string().contains("locked"));
    let stale = plan(
        Cursor::new(&two),
        &[at(1, 1.0, 1.0)],
        keys.size(),
        SealMode::Continue,
    )
    .unwrap();
    let e = seal(
        Cursor::new(&three),
        Cursor::new(Vec::new()),
        &stale,
        &SealOptions::default(),
        &keys.signer(),
        WHEN,
    )
    .unwrap_err();
    assert!(matches!(e, SealError::Locked(_)), "{e}");
}

#[test]
fn documents_locked_by_others_are_refused() {
    for file in ["ofdrw-ride-right.ofd", "tongzhiweiye-keyword.ofd"] {
        let input = fixture(&format!("ses/{file}"));
        let e = plan(
            Cursor::new(&input),
            &[at(1, 1.0, 1.0)],
            (40.0, 40.0),
            SealMode::Continue,
        )
        .unwrap_err();
        assert!(matches!(e, SealError::Locked(_)), "{file}: {e}");
    }
}

#[test]
fn documents_changed_after_an_earlier_signature_are_refused() {
    for (file, names) in [
        (
            "gomain-999-date-changed.ofd",
            "/Doc_0/Pages/Page_0/Content.xml was changed",
        ),
        (
            "gomain-999-file-removed.ofd",
            "/Doc_0/Res/qrcode.png is missing",
        ),
    ] {
        let input = fixture(&format!("ses/tampered/{file}"));
        let e = plan(
            Cursor::new(&input),
            &[at(1, 1.0, 1.0)],
            (40.0, 40.0),
            SealMode::Continue,
        )
        .unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("existing signature \"1\" no longer matches"),
            "{file}: {text}"
        );
        assert!(text.contains(names), "{file}: {text}");
        assert!(e.is_input_error());
    }
}

#[test]
fn ids_follow_the_style_and_existing_ids() {
    let keys = Keys::new(KeyAlgorithm::Sm2);
    let input = fixture("ses/gomain-999.ofd");
    // gomain: MaxSignId 2, Signature ID 1, StampAnnot ID 01.
    let numbers = SealOptions {
        id_style: IdStyle::Number,
        ..SealOptions::default()
    };
    let (out, _, sealed) =
        seal_with(&keys, &input, &[at(1, 1.0, 1.0), at(2, 1.0, 1.0)], &numbers).unwrap();
    assert_eq!(sealed.signature_id, "3");
    assert_eq!(sealed.stamp_ids, ["4", "5"]);
    let list = String::from_utf8(member(&out, "Doc_0/Signs/Signatures.xml")).unwrap();
    assert!(list.contains("<ofd:MaxSignId>5</ofd:MaxSignId><ofd:Signature ID=\"1\" BaseLoc=\"Sign_0/Signature.xml\"/><ofd:Signature ID=\"3\" Type=\"Seal\" BaseLoc=\"/Doc_0/Signs/Sign_1/Signature.xml\"/></ofd:Signatures>"), "{list}");
    let (_, _, sealed) =
        seal_with(&keys, &input, &[at(1, 1.0, 1.0)], &SealOptions::default()).unwrap();
    assert_eq!(sealed.signature_id, "s003");
    let xml = String::from_utf8(member(&out, "Doc_0/Signs/Sign_1/Signature.xml")).unwrap();
    assert!(xml.contains("<ofd:SignatureMethod>1.2.156.10197.1.501</ofd:SignatureMethod><ofd:SignatureDateTime>20250601080000Z</ofd:SignatureDateTime>"), "{xml}");
    assert!(
        xml.contains("<ofd:Provider ProviderName=\"seald\""),
        "{xml}"
    );
    // References: every member before the signature, sorted, Seal.esl included, the list not.
    let parsed = crate::ofd::xml::read_signature(xml.as_bytes()).unwrap();
    let refs: Vec<&str> = parsed
        .references
        .iter()
        .map(|r| r.file_ref.as_str())
        .collect();
    let mut expected: Vec<String> = raw_members(&input)
        .into_keys()
        .map(|n| format!("/{n}"))
        .collect();
    expected.retain(|n| n != "/Doc_0/Signs/Signatures.xml");
    expected.push("/Doc_0/Signs/Sign_1/Seal.esl".into());
    expected.sort();
    assert_eq!(refs, expected);
}

fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let o = zip::write::SimpleFileOptions::default();
    for (n, b) in files {
        w.start_file(*n, o).unwrap();
        w.write_all(b).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// `bytes` with every occurrence of `from` replaced by `to` (same length).
fn patch(mut bytes: Vec<u8>, from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut n = 0;
    let mut i = 0;
    while i + from.len() <= bytes.len() {
        if &bytes[i..i + from.len()] == from {
            bytes[i..i + from.len()].copy_from_slice(to);
            n += 1;
        }
        i += 1;
    }
    assert!(n > 0);
    bytes
}

/// The plan of `input` in continue mode with a seal of `size` mm.
fn planned(input: &[u8], placements: &[Placement], size: (f64, f64)) -> SealPlan {
    plan(Cursor::new(input), placements, size, SealMode::Continue).unwrap()
}

fn plan_err(input: &[u8], placements: &[Placement]) -> SealError {
    plan(
        Cursor::new(input),
        placements,
        (40.0, 40.0),
        SealMode::Continue,
    )
    .unwrap_err()
}

#[test]
fn bad_input_is_refused_with_a_clear_error() {
    let keys = Keys::new(KeyAlgorithm::Sm2);
    let good = Sample::new(2).build();
    let a1 = [at(1, 10.0, 10.0)];
    let cases: Vec<(&str, Vec<u8>, Vec<Placement>, &str)> = vec![
        (
            "not a zip",
            b"%PDF-1.7 not a zip".to_vec(),
            a1.to_vec(),
            "not a readable OFD",
        ),
        (
            "dot-dot name",
            zip_of(&[("OFD.xml", b"x"), ("../evil", b"x")]),
            a1.to_vec(),
            "unsafe member name \"../evil\"",
        ),
        (
            "absolute name",
            zip_of(&[("OFD.xml", b"x"), ("/etc/cron.d/x", b"x")]),
            a1.to_vec(),
            "absolute path",
        ),
        (
            "drive letter",
            zip_of(&[("OFD.xml", b"x"), ("C:/x", b"x")]),
            a1.to_vec(),
            "absolute path",
        ),
        (
            "duplicate entries",
            patch(
                zip_of(&[("OFD.xml", b"x"), ("OFD.xmm", b"y")]),
                b"OFD.xmm",
                b"OFD.xml",
            ),
            a1.to_vec(),
            "two members have the same name",
        ),
        (
            "no OFD.xml",
            zip_of(&[("Doc_0/Document.xml", b"x")]),
            a1.to_vec(),
            "no /OFD.xml",
        ),
        (
            "no DocRoot",
            zip_of(&[(
                "OFD.xml",
                b"<ofd:OFD xmlns:ofd=\"u\"><ofd:DocBody/></ofd:OFD>",
            )]),
            a1.to_vec(),
            "no DocRoot",
        ),
        (
            "DocRoot names nothing",
            zip_of(&[(
                "OFD.xml",
                b"<OFD><DocBody><DocRoot>Doc_9/Document.xml</DocRoot></DocBody></OFD>",
            )]),
            a1.to_vec(),
            "/Doc_9/Document.xml is missing",
        ),
        (
            "DocRoot escapes",
            zip_of(&[(
                "OFD.xml",
                b"<OFD><DocBody><DocRoot>../../x.xml</DocRoot></DocBody></OFD>",
            )]),
            a1.to_vec(),
            "escapes the package",
        ),
        (
            "page 0",
            good.clone(),
            vec![at(0, 1.0, 1.0)],
            "page 0 does not exist",
        ),
        (
            "page 3 of 2",
            good.clone(),
            vec![at(3, 1.0, 1.0)],
            "page 3 does not exist: the document has 2",
        ),
        (
            "keyword not found",
            good.clone(),
            vec![at(1, 1.0, 1.0), keyword("合同专用章")],
            "placement 1: the keyword \"合同专用章\" was not found",
        ),
        (
            "keyword page out of range",
            good.clone(),
            vec![Placement::Keyword {
                text: "Page".into(),
                all: false,
                pages: Some(vec![1, 9]),
            }],
            "page 9 does not exist",
        ),
        ("empty keyword", good.clone(), vec![keyword(" ")], "empty"),
        (
            "NaN",
            good.clone(),
            vec![at(1, f64::NAN, 1.0)],
            "x must be a number",
        ),
        (
            "negative width",
            good.clone(),
            vec![Placement::At {
                page: 1,
                x: 1.0,
                y: 1.0,
                width: Some(-4.0),
                height: None,
            }],
            "width must be a positive number",
        ),
        (
            "infinite height",
            good.clone(),
            vec![Placement::At {
                page: 1,
                x: 1.0,
                y: 1.0,
                width: None,
                height: Some(f64::INFINITY),
            }],
            "height must be a positive number",
        ),
        (
            "off the page",
            good.clone(),
            vec![at(1, 300.0, 1.0)],
            "lies outside page 1 (210 x 297 mm as displayed)",
        ),
        (
            "riding range",
            good.clone(),
            vec![Placement::Riding {
                edge: Edge::Top,
                from: Some(2),
                to: Some(1),
                offset: None,
            }],
            "range 2..1 is empty",
        ),
        ("nothing", good.clone(), vec![], "no placement"),
    ];
    for (what, input, placements, words) in cases {
        let e = plan_err(&input, &placements);
        assert!(e.to_string().contains(words), "{what}: {e}");
        assert!(e.is_input_error(), "{what}");
    }
    // A seal picture without a usable size, when the size is needed.
    let e = plan(
        Cursor::new(&good),
        &[keyword("Page")],
        (0.0, f64::NAN),
        SealMode::Continue,
    )
    .unwrap_err();
    assert!(e.to_string().contains("seal's size"), "{e}");
    // ... but not when the placement gives it.
    let sized = Placement::At {
        page: 1,
        x: 1.0,
        y: 1.0,
        width: Some(30.0),
        height: Some(30.0),
    };
    plan(Cursor::new(&good), &[sized], (0.0, 0.0), SealMode::Continue).unwrap();

    // A plan made for another document is refused at sealing; so is a broken one.
    let other = Sample::new(2);
    let mut other = other;
    other.first_page_id = 500;
    let p = plan(
        Cursor::new(other.build()),
        &a1,
        keys.size(),
        SealMode::Continue,
    )
    .unwrap();
    let e = seal(
        Cursor::new(&good),
        Cursor::new(Vec::new()),
        &p,
        &SealOptions::default(),
        &keys.signer(),
        WHEN,
    )
    .unwrap_err();
    assert!(e.to_string().contains("another document"), "{e}");
    let mut p = plan(Cursor::new(&good), &a1, keys.size(), SealMode::Continue).unwrap();
    p.stamps[0].boundary[2] = f64::NAN;
    let e = seal(
        Cursor::new(&good),
        Cursor::new(Vec::new()),
        &p,
        &SealOptions::default(),
        &keys.signer(),
        WHEN,
    )
    .unwrap_err();
    assert!(e.to_string().contains("positive size"), "{e}");
}

#[test]
fn a_zip_bomb_is_refused_before_and_while_reading() {
    let keys = Keys::new(KeyAlgorithm::Sm2);
    let mut sample = Sample::new(1);
    // 65 MiB of zeros deflate to ~65 KiB.
    sample.resource = Some(vec![0u8; (crate::ofd::MAX_MEMBER + 1024 * 1024) as usize]);
    let bomb = sample.build();
    assert!(bomb.len() < 1024 * 1024);
    let e = plan_err(&bomb, &[at(1, 1.0, 1.0)]);
    assert!(e.to_string().contains("zip bomb"), "{e}");
    // One that lies (declares 1 KiB in both headers) passes the declared sizes, and is
    // stopped by the bounded read while the references are computed: nothing is signed.
    let declared = (crate::ofd::MAX_MEMBER + 1024 * 1024) as u32;
    let liar = patch(bomb, &declared.to_le_bytes(), &1024u32.to_le_bytes());
    let p = plan(
        Cursor::new(&liar),
        &[at(1, 1.0, 1.0)],
        keys.size(),
        SealMode::Continue,
    )
    .unwrap();
    let e = seal(
        Cursor::new(&liar),
        Cursor::new(Vec::new()),
        &p,
        &SealOptions::default(),
        &keys.signer(),
        WHEN,
    )
    .unwrap_err();
    assert!(
        matches!(e, SealError::Read(crate::ofd::ReadError::TooLarge(..))),
        "{e}"
    );
    assert!(
        e.to_string().contains("Doc_0/Res/image.bin is too large"),
        "{e}"
    );
}

/// `sample`'s members with OFD.xml naming `list_loc` and, when given, a list file of `list`.
fn with_list(sample: &Sample, list_loc: &str, list: Option<(&str, &str)>) -> Vec<u8> {
    let mut files: Vec<(String, Vec<u8>)> = sample.members();
    let ofd = String::from_utf8(files[0].1.clone()).unwrap().replace(
        "</ofd:DocBody>",
        &format!("<ofd:Signatures>{list_loc}</ofd:Signatures></ofd:DocBody>"),
    );
    files[0].1 = ofd.into_bytes();
    if let Some((name, text)) = list {
        files.push((name.to_string(), text.as_bytes().to_vec()));
    }
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    zip_of(&refs)
}

#[test]
fn relative_and_empty_or_missing_lists_are_used_where_ofd_xml_says() {
    let keys = Keys::new(KeyAlgorithm::Sm2);
    let sample = Sample::new(1).doc_dir("Doc_2");
    // A relative location and an empty, self-closing list: the list is spliced, OFD.xml kept.
    let input = with_list(
        &sample,
        "Doc_2/Sigs/List.xml",
        Some((
            "Doc_2/Sigs/List.xml",
            "<?xml version=\"1.0\"?>\n<ofd:Signatures xmlns:ofd=\"http://www.ofdspec.org/2016\"/>",
        )),
    );
    let (out, _, sealed) =
        seal_with(&keys, &input, &[at(1, 5.0, 5.0)], &options(SealMode::Lock)).unwrap();
    assert_eq!(sealed.signature_path, "Doc_2/Sigs/Sign_0/Signature.xml");
    let r = check_verifies(&out, &sealed, None);
    assert_eq!(r.signatures_xml.as_deref(), Some("Doc_2/Sigs/List.xml"));
    assert!(r.uncovered.is_empty(), "{:?}", r.uncovered);
    check_unchanged(&input, &out, &["Doc_2/Sigs/List.xml"]);
    assert_eq!(
        String::from_utf8(member(&out, "Doc_2/Sigs/List.xml")).unwrap(),
        "<?xml version=\"1.0\"?>\n<ofd:Signatures xmlns:ofd=\"http://www.ofdspec.org/2016\"><ofd:MaxSignId>s002</ofd:MaxSignId><ofd:Signature ID=\"s001\" Type=\"Seal\" BaseLoc=\"/Doc_2/Sigs/Sign_0/Signature.xml\"/></ofd:Signatures>"
    );
    // Named but missing: created there, OFD.xml untouched.
    let input = with_list(&sample, "/Doc_2/S/Signatures.xml", None);
    let (out, _, sealed) = seal_with(
        &keys,
        &input,
        &[at(1, 5.0, 5.0)],
        &options(SealMode::Continue),
    )
    .unwrap();
    assert_eq!(sealed.signature_path, "Doc_2/S/Sign_0/Signature.xml");
    check_verifies(&out, &sealed, None);
    check_unchanged(&input, &out, &[]);
    // An unlisted Signatures.xml where a new list would go is left alone.
    let mut files = sample.members();
    files.push(("Doc_2/Signs/Signatures.xml".into(), b"<stale/>".to_vec()));
    files.push(("Doc_2/Signs/Sign_4/".into(), Vec::new()));
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    let input = zip_of(&refs);
    let (out, _, sealed) = seal_with(
        &keys,
        &input,
        &[at(1, 5.0, 5.0)],
        &options(SealMode::Continue),
    )
    .unwrap();
    assert_eq!(sealed.signature_path, "Doc_2/Signs/Sign_5/Signature.xml");
    let r = check_verifies(&out, &sealed, None);
    assert_eq!(
        r.signatures_xml.as_deref(),
        Some("Doc_2/Signs/Signatures_1.xml")
    );
    check_unchanged(&input, &out, &["OFD.xml"]);
}

#[test]
fn a_failing_device_writes_nothing_and_is_not_the_clients_fault() {
    struct Unplugged(crate::crypto::soft::SoftSigner);
    impl crate::crypto::PrehashSigner for Unplugged {
        fn public_key(&self) -> &crate::crypto::PublicKey {
            self.0.public_key()
        }
        fn sign_prehash(
            &self,
            _: &[u8; 32],
        ) -> Result<crate::crypto::RawSignature, crate::crypto::SignerError> {
            Err("the UKey was removed".into())
        }
    }
    let keys = Keys::new(KeyAlgorithm::Sm2);
    let unplugged = Unplugged(crate::crypto::soft::SoftSigner::from_seed(
        KeyAlgorithm::Sm2,
        42,
    ));
    let signer = DocumentSigner::new(&keys.seal, &keys.p.signer_cert, &unplugged).unwrap();
    let input = Sample::new(1).build();
    let p = plan(
        Cursor::new(&input),
        &[at(1, 1.0, 1.0)],
        keys.size(),
        SealMode::Continue,
    )
    .unwrap();
    let mut out = Cursor::new(Vec::new());
    let e = seal(
        Cursor::new(&input),
        &mut out,
        &p,
        &SealOptions::default(),
        &signer,
        WHEN,
    )
    .unwrap_err();
    assert!(matches!(e, SealError::Sign(_)), "{e}");
    assert!(!e.is_input_error());
    assert!(e.to_string().contains("the UKey was removed"), "{e}");
    assert!(
        out.into_inner().is_empty(),
        "nothing is written before the signature exists"
    );
}

#[test]
fn placements_read_from_json_as_the_api_sends_them() {
    let list: Vec<Placement> = serde_json::from_str(
        r#"[{"kind":"at","page":1,"x":10,"y":20.5},
            {"kind":"at","page":2,"x":0,"y":0,"width":30,"height":30},
            {"kind":"keyword","text":"盖章","all":true,"pages":[1,3]},
            {"kind":"riding","edge":"right"},
            {"kind":"riding","edge":"bottom","from":2,"to":4,"offset":15}]"#,
    )
    .unwrap();
    assert_eq!(list[0], at(1, 10.0, 20.5));
    assert_eq!(
        list[2],
        Placement::Keyword {
            text: "盖章".into(),
            all: true,
            pages: Some(vec![1, 3])
        }
    );
    assert_eq!(list[3], riding(Edge::Right));
    assert!(
        serde_json::from_str::<Placement>(r#"{"kind":"at","page":1,"x":1,"y":1,"z":1}"#).is_err()
    );
    assert!(serde_json::from_str::<Placement>(r#"{"kind":"riding","edge":"middle"}"#).is_err());
}

#[test]
fn stamps_per_document_are_capped_and_repeated_pages_searched_once() {
    let keys = Keys::new(KeyAlgorithm::Sm2);
    let input = Sample::new(2).line(2, 10.0, 10.0, 4.0, "专用章").build();
    // A page repeated in the list is searched once: one stamp, not three.
    let repeated = Placement::Keyword {
        text: "专用章".into(),
        all: true,
        pages: Some(vec![2, 1, 2, 2]),
    };
    let p = planned(&input, &[repeated], (20.0, 10.0));
    assert_eq!(p.stamps.len(), 1, "{:?}", p.stamps);
    // 500k repetitions of a page: still one stamp, no huge plan.
    let huge = Placement::Keyword {
        text: "专用章".into(),
        all: true,
        pages: Some(vec![2; 500_000]),
    };
    let p = planned(&input, &[huge], (20.0, 10.0));
    assert_eq!(p.stamps.len(), 1);
    // Every hit of a keyword repeated on a page beyond the cap.
    let text = "章 ".repeat(MAX_STAMPS + 10);
    let many = Sample::new(1).line(1, 1.0, 1.0, 0.1, &text).build();
    let every = Placement::Keyword {
        text: "章".into(),
        all: true,
        pages: None,
    };
    let e = plan_err(&many, &[every]);
    assert!(matches!(e, SealError::Placement { index: 0, .. }), "{e:?}");
    assert!(
        e.to_string().contains(&format!(
            "would put {} stamps on the document; at most {MAX_STAMPS}",
            MAX_STAMPS + 10
        )),
        "{e}"
    );
    // Placements at positions: the 257th is refused.
    let positions = vec![at(1, 1.0, 1.0); MAX_STAMPS + 1];
    let e = plan_err(&input, &positions);
    assert!(e.to_string().contains("at most 256"), "{e}");
    let p = plan(
        Cursor::new(&input),
        &positions[..MAX_STAMPS],
        keys.size(),
        SealMode::Continue,
    )
    .unwrap();
    assert_eq!(p.stamps.len(), MAX_STAMPS);
    // A riding seal over more pages than the cap, refused before its pages are read.
    let long = Sample::new(MAX_STAMPS as u32 + 1).build();
    let e = plan_err(&long, &[riding(Edge::Right)]);
    assert!(
        e.to_string().contains(&format!(
            "would put {} stamps on the document",
            MAX_STAMPS + 1
        )),
        "{e}"
    );
    // A plan with too many stamps (made elsewhere, or edited) is refused at sealing.
    let mut p = p;
    p.stamps.push(p.stamps[0].clone());
    let e = seal(
        Cursor::new(&input),
        Cursor::new(Vec::new()),
        &p,
        &SealOptions::default(),
        &keys.signer(),
        WHEN,
    )
    .unwrap_err();
    assert!(e.is_input_error());
    assert!(
        e.to_string()
            .contains("would put 257 stamps on the document; at most 256"),
        "{e}"
    );
}

/// `sample`'s members with `OFD.xml`'s first `from` replaced by `to`, and `extra` added.
fn with_ofd_edit(sample: &Sample, from: &str, to: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut files: Vec<(String, Vec<u8>)> = sample.members();
    let ofd = String::from_utf8(files[0].1.clone()).unwrap();
    assert!(ofd.contains(from), "{ofd}");
    files[0].1 = ofd.replacen(from, to, 1).into_bytes();
    for (n, t) in extra {
        files.push((n.to_string(), t.as_bytes().to_vec()));
    }
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    zip_of(&refs)
}

#[test]
fn entry_files_that_readers_could_read_differently_are_refused() {
    let keys = Keys::new(KeyAlgorithm::Sm2);
    let sample = Sample::new(1);
    let good = sample.build();
    let a1 = [at(1, 5.0, 5.0)];
    let good_plan = plan(Cursor::new(&good), &a1, keys.size(), SealMode::Continue).unwrap();
    let ns = "http://www.ofdspec.org/2016";
    let list = |body: &str| {
        format!(
            "<?xml version=\"1.0\"?>\n<ofd:Signatures xmlns:ofd=\"{ns}\">{body}</ofd:Signatures>"
        )
    };
    let end = "</ofd:DocBody>";
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "two Signatures in the DocBody",
            with_ofd_edit(
                &sample,
                end,
                "<ofd:Signatures>/Doc_0/Signs/A.xml</ofd:Signatures><ofd:Signatures>/Doc_0/Signs/B.xml</ofd:Signatures></ofd:DocBody>",
                &[],
            ),
            "DocBody has 2 Signatures elements",
        ),
        (
            "Signatures in another namespace",
            with_ofd_edit(
                &sample,
                end,
                "<x:Signatures xmlns:x=\"urn:other\">/Doc_0/Signs/Signatures.xml</x:Signatures></ofd:DocBody>",
                &[("Doc_0/Signs/Signatures.xml", &list(""))],
            ),
            "a Signatures element in namespace \"urn:other\" while the file's root is in namespace \"http://www.ofdspec.org/2016\"",
        ),
        (
            "Signatures in no namespace",
            with_ofd_edit(
                &sample,
                end,
                "<Signatures>/Doc_0/Signs/Signatures.xml</Signatures></ofd:DocBody>",
                &[("Doc_0/Signs/Signatures.xml", &list(""))],
            ),
            "a Signatures element in no namespace",
        ),
        (
            "two DocRoot",
            with_ofd_edit(
                &sample,
                end,
                "<ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot></ofd:DocBody>",
                &[],
            ),
            "DocBody has 2 DocRoot elements",
        ),
        (
            "DocRoot in another namespace",
            with_ofd_edit(
                &sample,
                "<ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot>",
                "<y:DocRoot xmlns:y=\"urn:y\">Doc_0/Document.xml</y:DocRoot>",
                &[],
            ),
            "a DocRoot element in namespace \"urn:y\"",
        ),
        (
            "a DocBody in another namespace",
            with_ofd_edit(
                &sample,
                "<ofd:DocBody>",
                "<z:DocBody xmlns:z=\"urn:z\"><z:DocRoot>Doc_0/Document.xml</z:DocRoot></z:DocBody><ofd:DocBody>",
                &[],
            ),
            "a DocBody element in namespace \"urn:z\"",
        ),
        (
            "two MaxSignId",
            with_list(
                &sample,
                "/Doc_0/Signs/Signatures.xml",
                Some((
                    "Doc_0/Signs/Signatures.xml",
                    &list("<ofd:MaxSignId>1</ofd:MaxSignId><ofd:MaxSignId>9</ofd:MaxSignId>"),
                )),
            ),
            "the signature list has 2 MaxSignId elements",
        ),
        (
            "MaxSignId in another namespace",
            with_list(
                &sample,
                "/Doc_0/Signs/Signatures.xml",
                Some((
                    "Doc_0/Signs/Signatures.xml",
                    &list("<m:MaxSignId xmlns:m=\"urn:m\">1</m:MaxSignId>"),
                )),
            ),
            "a MaxSignId element in namespace \"urn:m\"",
        ),
    ];
    for (what, input, words) in cases {
        let e = plan_err(&input, &a1);
        assert!(matches!(e, SealError::Structure(_)), "{what}: {e:?}");
        assert!(e.to_string().contains(words), "{what}: {e}");
        assert!(e.to_string().contains("refuses to seal it"), "{what}: {e}");
        // seal checks again, with a plan made on a good copy.
        let e = seal(
            Cursor::new(&input),
            Cursor::new(Vec::new()),
            &good_plan,
            &SealOptions::default(),
            &keys.signer(),
            WHEN,
        )
        .unwrap_err();
        assert!(e.to_string().contains(words), "{what} (seal): {e}");
    }

    // Still sealed: a second document (its own DocBody, its own Signatures), a default
    // namespace, and a file without any namespace.
    let opts = options(SealMode::Continue);
    let second = with_ofd_edit(
        &sample,
        "</ofd:OFD>",
        "<ofd:DocBody><ofd:DocRoot>Doc_1/Document.xml</ofd:DocRoot><ofd:Signatures>/Doc_1/S.xml</ofd:Signatures></ofd:DocBody></ofd:OFD>",
        &[],
    );
    let (out, _, sealed) = seal_with(&keys, &second, &a1, &opts).unwrap();
    assert_eq!(sealed.signature_path, "Doc_0/Signs/Sign_0/Signature.xml");
    let ofd = String::from_utf8(member(&out, "OFD.xml")).unwrap();
    assert!(
        ofd.contains("<ofd:Signatures>/Doc_0/Signs/Signatures.xml</ofd:Signatures></ofd:DocBody><ofd:DocBody>"),
        "{ofd}"
    );
    let members = sample.members();
    let plain = String::from_utf8(members[0].1.clone()).unwrap();
    for ofd in [
        plain.replace("ofd:", "").replace("xmlns:ofd=", "xmlns="),
        plain
            .replace("ofd:", "")
            .replace(&format!(" xmlns:ofd=\"{ns}\""), ""),
    ] {
        let mut files = members.clone();
        files[0].1 = ofd.clone().into_bytes();
        let refs: Vec<(&str, &[u8])> = files
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice()))
            .collect();
        let input = zip_of(&refs);
        let (out, _, sealed) = seal_with(&keys, &input, &a1, &opts).unwrap();
        check_verifies(&out, &sealed, None);
        let written = String::from_utf8(member(&out, "OFD.xml")).unwrap();
        assert!(
            written.contains("<Signatures>/Doc_0/Signs/Signatures.xml</Signatures></DocBody>"),
            "{written}"
        );
    }
}
