//! Verifying PDFs signed by pyHanko and by seald's CMS and SES builders, with incremental
//! updates appended by hand.

use time::macros::datetime;
use time::OffsetDateTime;

use super::*;
use crate::cert::testing::parties;
use crate::cert::Certificate;
use crate::crypto::{data_digest, KeyAlgorithm};
use crate::ses::build_tests::seal_info;
use crate::ses::{build_seal, DocumentSigner};

const PLAIN: &[u8] = include_bytes!("../testdata/plain.pdf");
const ONE: &[u8] = include_bytes!("../testdata/pyhanko-one.pdf");
const TWO: &[u8] = include_bytes!("../testdata/pyhanko-two.pdf");
const ROOT: &[u8] = include_bytes!("../testdata/pyhanko-root.pem");
const WHEN: OffsetDateTime = datetime!(2025-06-01 08:00:00 UTC);

fn pyhanko_trust() -> TrustStore {
    TrustStore::from_pem_or_der(ROOT).unwrap()
}

/// Appends an incremental update with `objects` (number, body) to `base`.
fn append_update(base: &[u8], objects: &[(u32, Vec<u8>)]) -> Vec<u8> {
    let doc = lopdf::Document::load_mem(base).unwrap();
    let size = doc.trailer.get(b"Size").unwrap().as_i64().unwrap() as u32;
    let prev = {
        let at = base.windows(9).rposition(|w| w == b"startxref").unwrap();
        let text = String::from_utf8_lossy(&base[at + 9..]).into_owned();
        text.split_whitespace()
            .next()
            .unwrap()
            .parse::<usize>()
            .unwrap()
    };
    let (root, root_gen) = doc.trailer.get(b"Root").unwrap().as_reference().unwrap();
    let mut out = base.to_vec();
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    let mut offsets = Vec::new();
    for (n, body) in objects {
        offsets.push((*n, out.len()));
        out.extend_from_slice(format!("{n} 0 obj\n").as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(b"xref\n");
    for (n, off) in &offsets {
        out.extend_from_slice(format!("{n} 1\n{off:010} 00000 n \n").as_bytes());
    }
    let new_size = objects
        .iter()
        .map(|(n, _)| n + 1)
        .max()
        .unwrap_or(0)
        .max(size);
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {new_size} /Root {root} {root_gen} R /Prev {prev} >>\nstartxref\n\
             {xref}\n%%EOF\n"
        )
        .as_bytes(),
    );
    out
}

fn stream(text: &str) -> Vec<u8> {
    format!("<< /Length {} >>\nstream\n{text}\nendstream", text.len()).into_bytes()
}

const PAGE_2: &str = "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 7 0 R \
                      /Resources << /Font << /F1 5 0 R >> >>";

fn next_number(pdf: &[u8]) -> u32 {
    let doc = lopdf::Document::load_mem(pdf).unwrap();
    doc.trailer.get(b"Size").unwrap().as_i64().unwrap() as u32
}

/// An update adding a text annotation to page 2 (object 6 0), after its annotations.
fn add_annotation(pdf: &[u8]) -> Vec<u8> {
    let n = next_number(pdf);
    let doc = lopdf::Document::load_mem(pdf).unwrap();
    let mut annots = String::new();
    if let Ok(list) = doc.get_dictionary((6, 0)).unwrap().get(b"Annots") {
        for a in list.as_array().unwrap() {
            let (num, generation) = a.as_reference().unwrap();
            annots.push_str(&format!("{num} {generation} R "));
        }
    }
    append_update(
        pdf,
        &[
            (
                n,
                b"<< /Type /Annot /Subtype /Text /Rect [10 10 30 30] /Contents (note) /P 6 0 R >>"
                    .to_vec(),
            ),
            (
                6,
                format!("{PAGE_2} /Annots [{annots}{n} 0 R] >>").into_bytes(),
            ),
        ],
    )
}

#[test]
fn pyhanko_signatures_verify() {
    let trust = pyhanko_trust();
    let r = verify_pdf(ONE, Some(&trust)).unwrap();
    assert!(r.valid, "{}", r.to_text());
    assert_eq!((r.revisions, r.pages, r.signatures.len()), (2, 2, 1));
    let s = &r.signatures[0];
    assert_eq!(s.field, "Sig1");
    assert_eq!(s.form, "pades");
    assert_eq!(s.sub_filter, "ETSI.CAdES.detached");
    assert_eq!(s.revision, 2);
    assert_eq!(s.pages, [1]);
    assert_eq!(s.changes_after, ChangesAfter::None);
    assert_eq!(
        s.signer.as_ref().unwrap().subject_cn.as_deref(),
        Some("pyHanko signer")
    );
    assert!(s.signing_time.is_some());
    for wanted in [
        "ok: message-digest",
        "ok: DER ECDSA P-256",
        "ok: chain of 2",
        "ok: signing-certificate",
    ] {
        assert!(
            s.checks.iter().any(|c| c.starts_with(wanted)),
            "{wanted}: {:#?}",
            s.checks
        );
    }

    let r = verify_pdf(TWO, Some(&trust)).unwrap();
    assert!(r.valid, "{}", r.to_text());
    assert_eq!(r.revisions, 3);
    let fields: Vec<(&str, usize, &[u32])> = r
        .signatures
        .iter()
        .map(|s| (s.field.as_str(), s.revision, s.pages.as_slice()))
        .collect();
    assert_eq!(fields, [("Sig1", 2, &[1][..]), ("Sig2", 3, &[2][..])]);
    assert_eq!(
        r.signatures[0].changes_after,
        ChangesAfter::AnnotationsOnly { revisions: 1 }
    );
    assert_eq!(r.signatures[1].changes_after, ChangesAfter::None);
    // Without trust roots the chain is not applicable, not failed.
    let r = verify_pdf(TWO, None).unwrap();
    assert!(r.valid);
    assert!(r.signatures[0]
        .checks
        .iter()
        .any(|c| c.starts_with("n/a: chain")));
    let text = r.to_text();
    assert!(
        text.starts_with("VALID: 2 signature(s), 3 revision(s), 2 page(s)"),
        "{text}"
    );
    assert!(
        text.contains("Sig1 VALID: pades form, revision 2, page(s) 1"),
        "{text}"
    );
}

#[test]
fn a_changed_signed_byte_is_caught() {
    let at = ONE
        .windows(14)
        .position(|w| w == b"signed content")
        .unwrap();
    let mut bad = ONE.to_vec();
    bad[at] = b'S';
    let r = verify_pdf(&bad, Some(&pyhanko_trust())).unwrap();
    assert!(!r.valid);
    let s = &r.signatures[0];
    assert!(!s.valid);
    assert!(s
        .checks
        .iter()
        .any(|c| c.starts_with("FAILED: message-digest")));
    assert!(r.to_text().contains("FAILED: message-digest"));
}

#[test]
fn later_updates_are_classified() {
    let trust = pyhanko_trust();
    // Only an annotation: still valid.
    let annotated = add_annotation(TWO);
    let r = verify_pdf(&annotated, Some(&trust)).unwrap();
    assert!(r.valid, "{}", r.to_text());
    assert_eq!(r.revisions, 4);
    assert_eq!(
        r.signatures[0].changes_after,
        ChangesAfter::AnnotationsOnly { revisions: 2 }
    );
    assert_eq!(
        r.signatures[1].changes_after,
        ChangesAfter::AnnotationsOnly { revisions: 1 }
    );

    // New page content: both signatures are invalid and say what changed.
    let changed = append_update(
        &annotated,
        &[(
            4,
            stream("BT /F1 24 Tf 72 720 Td (Page one: CHANGED) Tj ET"),
        )],
    );
    let r = verify_pdf(&changed, Some(&trust)).unwrap();
    assert!(!r.valid);
    for s in &r.signatures {
        assert!(!s.valid);
        let ChangesAfter::ContentChanged { changes, .. } = &s.changes_after else {
            panic!("{:?}", s.changes_after)
        };
        assert_eq!(changes, &["revision 5: page 1 content stream 4 0 replaced"]);
    }
    let text = r.to_text();
    assert!(text.contains("CONTENT CHANGED (3 revision(s))"), "{text}");

    // A page's box, a font and the page tree.
    let changed = append_update(
        ONE,
        &[
            (6, b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 300] /Contents 7 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_vec()),
            (5, b"<< /Type /Font /Subtype /Type1 /BaseFont /Courier >>".to_vec()),
        ],
    );
    let r = verify_pdf(&changed, None).unwrap();
    let ChangesAfter::ContentChanged { changes, revisions } = &r.signatures[0].changes_after else {
        panic!()
    };
    assert_eq!(*revisions, 1);
    assert_eq!(
        changes,
        &[
            "revision 3: font 5 0 changed",
            "revision 3: page 2 (6 0): /MediaBox changed"
        ]
    );
}

#[test]
fn unsigned_broken_and_encrypted_files() {
    let r = verify_pdf(PLAIN, None).unwrap();
    assert!(!r.valid);
    assert!(r.signatures.is_empty());
    assert_eq!(r.problems, ["no signed signature field"]);
    assert!(matches!(verify_pdf(b"hello", None), Err(PdfError::NotPdf)));
    assert!(matches!(
        verify_pdf(b"%PDF-1.7\n1 0 obj garbage", None),
        Err(PdfError::Unreadable(_))
    ));
    let encrypted = include_bytes!("../testdata/encrypted.pdf");
    assert!(matches!(
        verify_pdf(encrypted, None),
        Err(PdfError::Encrypted)
    ));
    // Bytes after the last revision belong to nobody.
    let mut tail = ONE.to_vec();
    tail.extend_from_slice(b"1 0 obj << /Type /Catalog >> endobj\n");
    let r = verify_pdf(&tail, None).unwrap();
    assert!(!r.valid);
    assert!(
        r.problems[0].contains("after the last %%EOF"),
        "{:?}",
        r.problems
    );
}

/// `plain.pdf` signed by seald in field `Seal1` on page 1: `contents` makes the `/Contents`
/// from the ByteRange pieces.
fn seald_signed(sub_filter: &str, contents: impl Fn(&[&[u8]]) -> Vec<u8>) -> Vec<u8> {
    signed_with(sub_filter, "", "", contents)
}

/// Like [`seald_signed`], with more entries in the signature dictionary and the catalog.
fn signed_with(
    sub_filter: &str,
    sig_extra: &str,
    catalog_extra: &str,
    contents: impl Fn(&[&[u8]]) -> Vec<u8>,
) -> Vec<u8> {
    const HEX_LEN: usize = 16384;
    let sig_dict = format!(
        "<< /Type /Sig /Filter /Adobe.PPKLite /SubFilter /{sub_filter} /ByteRange [0 0 0 0]{} \
         /Contents <{}> /M (D:20250601080000Z) {sig_extra} >>",
        " ".repeat(32),
        "0".repeat(HEX_LEN)
    );
    let mut pdf = append_update(
        PLAIN,
        &[
            (8, sig_dict.into_bytes()),
            (
                9,
                b"<< /Type /Annot /Subtype /Widget /FT /Sig /T (Seal1) /V 8 0 R /Rect [0 0 0 0] /F 132 /P 3 0 R >>".to_vec(),
            ),
            (10, b"<< /Fields [9 0 R] /SigFlags 3 >>".to_vec()),
            (
                1,
                format!("<< /Type /Catalog /Pages 2 0 R /AcroForm 10 0 R {catalog_extra} >>")
                    .into_bytes(),
            ),
            (
                3,
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> /Annots [9 0 R] >>".to_vec(),
            ),
        ],
    );
    let at = pdf.windows(7).rposition(|w| w == b"<000000").unwrap();
    let (a, b) = (at, at + HEX_LEN + 2);
    let c = pdf.len() - b;
    let br_at = pdf
        .windows(14)
        .rposition(|w| w == b"[0 0 0 0]     ")
        .unwrap();
    let br = format!("[0 {a} {b} {c}]");
    pdf[br_at..br_at + br.len()].copy_from_slice(br.as_bytes());
    let der = contents(&[&pdf[..a], &pdf[b..]]);
    let hex = hex::encode_upper(&der);
    pdf[a + 1..a + 1 + hex.len()].copy_from_slice(hex.as_bytes());
    pdf
}

#[test]
fn seald_cms_and_ses_signatures_verify() {
    for alg in [KeyAlgorithm::Sm2, KeyAlgorithm::P256] {
        let p = parties(alg);
        let seal = build_seal(&seal_info(&p), &p.maker_cert, &p.maker).unwrap();
        let signer = DocumentSigner::new(&seal, &p.signer_cert, &p.signer).unwrap();
        let trust = TrustStore::new(vec![Certificate::from_der(&p.root_cert).unwrap()]);
        let digest = |pieces: &[&[u8]]| data_digest(alg, &pieces.concat());
        let cms_pdf = seald_signed(crate::pdf::cms::sub_filter(alg), |pieces| {
            crate::pdf::cms::signed_data(&signer, &[], &digest(pieces), WHEN).unwrap()
        });
        let ses_pdf = seald_signed("adbe.pkcs7.detached", |pieces| {
            signer.sign(WHEN, &digest(pieces), "", None).unwrap().der
        });
        let expected_form = match alg {
            KeyAlgorithm::Sm2 => "gm-cms",
            KeyAlgorithm::P256 => "pades",
        };
        for (pdf, form) in [(cms_pdf, expected_form), (ses_pdf, "ses")] {
            let r = verify_pdf(&pdf, Some(&trust)).unwrap();
            assert!(
                r.valid,
                "{alg:?} {form}\n{}\n{:#?}",
                r.to_text(),
                r.signatures
            );
            let s = &r.signatures[0];
            assert_eq!(
                (s.form.as_str(), s.revision, s.pages.as_slice()),
                (form, 2, &[1][..])
            );
            assert_eq!(s.signing_time.as_deref(), Some("2025-06-01T08:00:00Z"));
            assert_eq!(
                s.signer.as_ref().unwrap().subject_cn.as_deref(),
                Some("合同专用章")
            );
            assert_eq!(
                s.seal.as_deref(),
                (form == "ses").then_some("11010800000001 示例科技有限公司合同专用章")
            );
            // A later annotation is fine; a changed byte is not.
            assert!(
                verify_pdf(&add_annotation(&pdf), Some(&trust))
                    .unwrap()
                    .valid
            );
            let mut bad = pdf.clone();
            let at = bad.windows(8).position(|w| w == b"Page one").unwrap();
            bad[at] = b'p';
            let r = verify_pdf(&bad, Some(&trust)).unwrap();
            assert!(!r.valid, "{form}");
        }
    }
}

#[test]
fn revisions_end_at_eof_after_startxref() {
    let ends = load::revision_ends(TWO);
    assert_eq!(ends.len(), 3);
    assert_eq!(ends[0].end, PLAIN.len());
    assert_eq!(ends[1].end, ONE.len());
    assert_eq!(ends[2].end, TWO.len());
    assert_eq!(ends[2].eof + 1, TWO.len());
    // `%%EOF` not after `startxref <n>` (e.g. inside a stream) ends nothing, nor does one
    // whose offset is not a cross-reference section (`xref`, or an XRef stream's `N G obj`).
    let text = b"%PDF-1.7\nxref\nstream\n%%EOF\nstartxref\n21\n%%EOF\nendstream\nstartxref\n9\r\n%%EOF\r\n";
    let ends = load::revision_ends(text);
    assert_eq!(ends.len(), 1);
    assert_eq!(ends[0].end, text.len());
    assert_eq!(ends[0].eof, text.len() - 2);
    let text = b"%PDF-1.7\n5 0 obj\n<< /Type /XRef /W [1 2 1] >>\nstream\nendstream\nstartxref\n9\n%%EOF\n";
    assert_eq!(load::revision_ends(text).len(), 1);
    let text = b"%PDF-1.7\n5 0 obj\n<< /Type /XRefX >>\nstream\nendstream\nstartxref\n9\n%%EOF\n";
    assert!(load::revision_ends(text).is_empty());
}

#[test]
fn pdf_dates() {
    let d = |s: &str| fields::pdf_date(s.as_bytes());
    assert_eq!(d("D:20250601080000Z"), Some(WHEN));
    assert_eq!(d("D:20250601160000+08'00'"), Some(WHEN));
    assert_eq!(d("D:20250601030000-05'00"), Some(WHEN));
    assert_eq!(d("D:2025060108"), Some(WHEN));
    assert_eq!(d("20250601080000"), Some(WHEN));
    assert_eq!(d("D:2025"), Some(datetime!(2025-01-01 0:00 UTC)));
    assert_eq!(d("D:20251301"), None);
    assert_eq!(d("yesterday"), None);
}

/// `ONE` with its `/ByteRange` replaced by `br` (same length, padded with spaces).
fn with_byte_range(br: &str) -> Vec<u8> {
    let at = ONE.windows(12).position(|w| w == b"/ByteRange [").unwrap() + 11;
    let end = at + ONE[at..].iter().position(|&b| b == b']').unwrap() + 1;
    let mut pdf = ONE.to_vec();
    let text = format!("{br:<width$}", width = end - at);
    assert_eq!(text.len(), end - at);
    pdf[at..end].copy_from_slice(text.as_bytes());
    pdf
}

#[test]
fn byte_ranges_that_do_not_cover_a_revision_fail() {
    let first = |pdf: &[u8]| verify_pdf(pdf, None).unwrap().signatures.remove(0);
    let failed = |s: &PdfSignatureReport, what: &str| {
        assert!(!s.valid);
        assert!(
            s.checks
                .iter()
                .any(|c| c.starts_with("FAILED") && c.contains(what)),
            "{what}: {:#?}",
            s.checks
        );
    };
    let s = first(ONE);
    assert!(s.valid);
    let [_, a, b, c] = s.byte_range[..] else {
        panic!()
    };
    // Shorter than the revision: the last bytes are unsigned.
    let s = first(&with_byte_range(&format!("[0 {a} {b} {}]", c - 10)));
    failed(&s, "not at the end of a revision");
    assert_eq!(s.revision, 0);
    // Not from byte 0, beyond the file, a gap that is not the hex string.
    failed(
        &first(&with_byte_range(&format!("[1 {a} {b} {c}]"))),
        "byte 0",
    );
    failed(
        &first(&with_byte_range(&format!("[0 {a} {b} {}]", c + 1))),
        "does not fit",
    );
    failed(
        &first(&with_byte_range(&format!("[0 {} {b} {}]", a - 1, c))),
        "hex string",
    );
    failed(&first(&with_byte_range(&format!("[0 {a} {b}]"))), "not 4");
    assert!(
        !verify_pdf(&with_byte_range("[0 1 2 3]"), None)
            .unwrap()
            .valid
    );
}

#[test]
fn xref_streams_and_object_streams() {
    let pdf = include_bytes!("../testdata/pyhanko-xref-stream.pdf");
    let r = verify_pdf(pdf, Some(&pyhanko_trust())).unwrap();
    assert!(r.valid, "{}", r.to_text());
    assert_eq!((r.revisions, r.pages), (2, 2));
    assert_eq!(r.signatures[0].pages, [1]);
    assert_eq!(r.signatures[0].form, "pades");
    let pdf = include_bytes!("../testdata/pyhanko-xref-stream-two.pdf");
    let r = verify_pdf(pdf, Some(&pyhanko_trust())).unwrap();
    assert!(r.valid, "{}", r.to_text());
    assert_eq!(r.revisions, 3);
    assert_eq!(
        r.signatures[0].changes_after,
        ChangesAfter::AnnotationsOnly { revisions: 1 }
    );
}

#[test]
fn an_appearance_stream_the_page_shows_too_is_content() {
    // Page 2 draws form XObject 20 0, which an annotation also uses as its appearance.
    let base = append_update(
        ONE,
        &[
            (20, stream("0 0 m 10 10 l S")),
            (
                21,
                b"<< /Type /Annot /Subtype /Stamp /Rect [0 0 10 10] /AP << /N 20 0 R >> >>"
                    .to_vec(),
            ),
            (
                6,
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 7 0 R \
                  /Resources << /Font << /F1 5 0 R >> /XObject << /X 20 0 R >> >> \
                  /Annots [21 0 R] >>"
                    .to_vec(),
            ),
        ],
    );
    let signed_later = |pdf: &[u8]| {
        // Treat revision 3 as signed by looking at what revision 4 changes.
        let ends = load::revision_ends(pdf);
        let prev = lopdf::Document::load_mem(&pdf[..ends[2].end]).unwrap();
        let next = lopdf::Document::load_mem(pdf).unwrap();
        changes::content_changes(&prev, &next)
    };
    let changed = append_update(&base, &[(20, stream("0 0 m 99 99 l S"))]);
    assert_eq!(signed_later(&changed), ["stream 20 0 changed"]);
    // An annotation of the signed revision may not change its appearance either.
    let annot_only = append_update(
        &base,
        &[
            (
                21,
                b"<< /Type /Annot /Subtype /Stamp /Rect [0 0 10 10] /AP << /N 22 0 R >> >>"
                    .to_vec(),
            ),
            (22, stream("1 1 m 2 2 l S")),
        ],
    );
    assert_eq!(signed_later(&annot_only), ["annotation 21 0 changed (/AP)"]);
    // A new annotation with its own appearance is fine.
    let added = append_update(
        &base,
        &[
            (
                23,
                b"<< /Type /Annot /Subtype /Stamp /Rect [0 0 10 10] /AP << /N 22 0 R >> >>"
                    .to_vec(),
            ),
            (22, stream("1 1 m 2 2 l S")),
            (
                6,
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 7 0 R \
                  /Resources << /Font << /F1 5 0 R >> /XObject << /X 20 0 R >> >> \
                  /Annots [21 0 R 23 0 R] >>"
                    .to_vec(),
            ),
        ],
    );
    assert!(
        signed_later(&added).is_empty(),
        "{:?}",
        signed_later(&added)
    );
}

#[test]
fn sha384_with_a_p256_key() {
    let pdf = include_bytes!("../testdata/pyhanko-sha384.pdf");
    let r = verify_pdf(pdf, Some(&pyhanko_trust())).unwrap();
    assert!(r.valid, "{}", r.to_text());
    let s = &r.signatures[0];
    assert_eq!(s.field, "Sig384");
    assert!(s
        .checks
        .contains(&"ok: digest algorithm SHA-384".to_string()));
    assert!(s
        .checks
        .iter()
        .any(|c| c.contains("ECDSA P-256 with SHA-384")));
}

/// A two-page sample sealed once by seald's engine with a P-256 key (PAdES, like
/// `sealctl seal`), the trust root, and the objects an attacker aims at.
struct Sealed {
    pdf: Vec<u8>,
    trust: TrustStore,
    page1: (u32, u16),
    content1: (u32, u16),
    pages_root: (u32, u16),
    widget: (u32, u16),
    appearance: (u32, u16),
    sig: (u32, u16),
    acro_form: (u32, u16),
}

fn sealed_p256(input: &[u8]) -> Sealed {
    use crate::ofd::seal::{seal_size_mm, Placement, SealMode};
    use crate::pdf::seal::{plan, seal, PdfSealOptions};
    let p = parties(KeyAlgorithm::P256);
    let seal_obj = build_seal(&seal_info(&p), &p.maker_cert, &p.maker).unwrap();
    let signer = DocumentSigner::new(&seal_obj, &p.signer_cert, &p.signer).unwrap();
    let trust = TrustStore::new(vec![Certificate::from_der(&p.root_cert).unwrap()]);
    let at = Placement::At {
        page: 1,
        x: 50.0,
        y: 60.0,
        width: None,
        height: None,
    };
    let plan = plan(input, &[at], seal_size_mm(&seal_obj), SealMode::Continue).unwrap();
    let (pdf, _) = seal(input, &plan, &PdfSealOptions::default(), &signer, WHEN).unwrap();
    let doc = lopdf::Document::load_mem(&pdf).unwrap();
    let page1 = doc.get_pages()[&1];
    let page = doc.get_dictionary(page1).unwrap();
    let r = |o: &lopdf::Object| o.as_reference().unwrap();
    let content1 = r(page.get(b"Contents").unwrap());
    let widget = r(&page.get(b"Annots").unwrap().as_array().unwrap()[0]);
    let w = doc.get_dictionary(widget).unwrap();
    let appearance = r(w.get(b"AP").unwrap().as_dict().unwrap().get(b"N").unwrap());
    let sig = r(w.get(b"V").unwrap());
    let catalog = doc.catalog().unwrap();
    let acro_form = r(catalog.get(b"AcroForm").unwrap());
    let pages_root = r(catalog.get(b"Pages").unwrap());
    Sealed {
        pdf,
        trust,
        page1,
        content1,
        pages_root,
        widget,
        appearance,
        sig,
        acro_form,
    }
}

fn sample_sealed() -> Sealed {
    sealed_p256(&crate::pdf::sample::Sample::new(2).build())
}

/// The body of object `id` as the last revision of `pdf` writes it (between `obj` and
/// `endobj`).
fn body_of(pdf: &[u8], id: (u32, u16)) -> String {
    let doc = lopdf::Document::load_mem(pdf).unwrap();
    let lopdf::xref::XrefEntry::Normal { offset, .. } = doc.reference_table.get(id.0).unwrap()
    else {
        panic!()
    };
    let at = *offset as usize + format!("{} {} obj", id.0, id.1).len();
    let end = at + pdf[at..].windows(6).position(|w| w == b"endobj").unwrap();
    String::from_utf8_lossy(&pdf[at..end]).trim().to_string()
}

/// The report's content changes of the first signature, asserting that it is INVALID.
fn content_changed(pdf: &[u8], trust: &TrustStore) -> Vec<String> {
    let r = verify_pdf(pdf, Some(trust)).unwrap();
    assert!(!r.valid, "{}", r.to_text());
    let s = &r.signatures[0];
    assert!(!s.valid, "{}", r.to_text());
    match &s.changes_after {
        ChangesAfter::ContentChanged { changes, .. } => changes.clone(),
        other => panic!("{other:?}\n{}", r.to_text()),
    }
}

fn forged_stream(dict: &str) -> Vec<u8> {
    let text = "BT /F1 48 Tf 72 600 Td (FORGED: PAY 1,000,000) Tj ET";
    format!(
        "<< {dict} /Length {} >>\nstream\n{text}\nendstream",
        text.len()
    )
    .into_bytes()
}

#[test]
fn f1_a_content_stream_calling_itself_an_xref_or_object_stream_is_content() {
    let s = sample_sealed();
    let r = verify_pdf(&s.pdf, Some(&s.trust)).unwrap();
    assert!(r.valid, "{}", r.to_text());
    let c = s.content1;
    for dict in ["/Type /XRef", "/Type /ObjStm /N 0 /First 0"] {
        let forged = append_update(&s.pdf, &[(c.0, forged_stream(dict))]);
        assert_eq!(
            content_changed(&forged, &s.trust),
            [format!(
                "revision 3: page 1 content stream {} 0 replaced",
                c.0
            )],
            "{dict}"
        );
    }
}

#[test]
fn f2_what_the_pages_show_is_content_whatever_it_says_it_is() {
    let s = sample_sealed();
    let c = s.content1;
    // A content stream dressed as metadata, a signature, a field, a signature value.
    for dict in [
        "/Type /Metadata",
        "/Type /Sig",
        "/FT /Sig",
        "/ByteRange [0 1 2 3]",
        "/Type /Annot /Subtype /Widget /Rect [0 0 1 1]",
    ] {
        let forged = append_update(&s.pdf, &[(c.0, forged_stream(dict))]);
        assert_eq!(
            content_changed(&forged, &s.trust),
            [format!(
                "revision 3: page 1 content stream {} 0 replaced",
                c.0
            )],
            "{dict}"
        );
    }
    // A page tree node with a stray /FT.
    let doc = lopdf::Document::load_mem(&s.pdf).unwrap();
    let kids: Vec<String> = doc
        .get_dictionary(s.pages_root)
        .unwrap()
        .get(b"Kids")
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            let (n, g) = k.as_reference().unwrap();
            format!("{n} {g} R")
        })
        .collect();
    let node = format!("<< /Type /Pages /FT /Sig /Kids [{}] /Count 1 >>", kids[0]);
    let changed = content_changed(
        &append_update(&s.pdf, &[(s.pages_root.0, node.into_bytes())]),
        &s.trust,
    );
    assert!(
        changed[0].starts_with(&format!(
            "revision 3: page tree node {} 0: ",
            s.pages_root.0
        )),
        "{changed:?}"
    );

    // A page that draws a form XObject the file lacks: filling it in later, even with an
    // annotation-looking dictionary, changes the page.
    let input = crate::pdf::sample::Sample::new(2).build();
    let missing = next_number(&input) + 50;
    let doc = lopdf::Document::load_mem(&input).unwrap();
    let page1 = doc.get_pages()[&1];
    let res = doc
        .get_dictionary(page1)
        .unwrap()
        .get(b"Resources")
        .unwrap()
        .as_reference()
        .unwrap();
    let res_text =
        body_of(&input, res).replacen("<<", &format!("<< /XObject << /X {missing} 0 R >> "), 1);
    let input = append_update(&input, &[(res.0, res_text.into_bytes())]);
    let s = sealed_p256(&input);
    assert!(verify_pdf(&s.pdf, Some(&s.trust)).unwrap().valid);
    let filled = append_update(
        &s.pdf,
        &[(
            missing,
            forged_stream(
                "/Type /XObject /Subtype /Form /BBox [0 0 595 842] /FT /Sig /T (X) /Parent 1 0 R",
            ),
        )],
    );
    assert_eq!(
        content_changed(&filled, &s.trust),
        [format!(
            "revision 4: object {missing} 0 added where the earlier revision referred to a missing one"
        )]
    );
}

#[test]
fn f3_annotations_of_the_signed_revision_may_not_change() {
    let s = sample_sealed();
    let (w, ap) = (s.widget, s.appearance);
    let widget = body_of(&s.pdf, w);
    // The seal's own appearance replaced.
    let other = stream("0 0 1 rg 0 0 113 113 re f BT /Helv 12 Tf 5 50 Td (OTHER SEAL) Tj ET");
    let other = String::from_utf8(other).unwrap().replacen(
        "<<",
        "<< /Type /XObject /Subtype /Form /BBox [0 0 113 113]",
        1,
    );
    assert_eq!(
        content_changed(
            &append_update(&s.pdf, &[(ap.0, other.into_bytes())]),
            &s.trust
        ),
        [format!(
            "revision 3: the appearance of annotation {} 0 changed",
            w.0
        )]
    );
    // The seal moved away, hidden.
    let rect_at = widget.find("/Rect").unwrap();
    let rect_end = rect_at + widget[rect_at..].find(']').unwrap() + 1;
    let moved = format!(
        "{}/Rect [0 0 1 1]{}",
        &widget[..rect_at],
        &widget[rect_end..]
    );
    assert_eq!(
        content_changed(
            &append_update(&s.pdf, &[(w.0, moved.into_bytes())]),
            &s.trust
        ),
        [format!("revision 3: annotation {} 0 changed (/Rect)", w.0)]
    );
    let hidden = widget
        .replacen("<<", "<< /F 2", 1)
        .replacen("/F 4", "", 1)
        .replacen("/F 132", "", 1);
    let changed = content_changed(
        &append_update(&s.pdf, &[(w.0, hidden.into_bytes())]),
        &s.trust,
    );
    assert_eq!(
        changed,
        [format!("revision 3: annotation {} 0 changed (/F)", w.0)]
    );
    // The form asks the reader to draw appearances, or gains XFA.
    let acro = body_of(&s.pdf, s.acro_form);
    for (extra, key) in [
        ("/NeedAppearances true", "NeedAppearances"),
        ("/XFA 5 0 R", "XFA"),
    ] {
        let forged = acro.replacen("<<", &format!("<< {extra} "), 1);
        assert_eq!(
            content_changed(
                &append_update(&s.pdf, &[(s.acro_form.0, forged.into_bytes())]),
                &s.trust
            ),
            [format!("revision 3: /AcroForm /{key} changed")]
        );
    }
    // The seal's widget taken off the page.
    let page = body_of(&s.pdf, s.page1);
    let bare = page.replace(&format!("{} 0 R", w.0), "");
    assert_eq!(
        content_changed(
            &append_update(&s.pdf, &[(s.page1.0, bare.into_bytes())]),
            &s.trust
        ),
        [format!(
            "revision 3: annotation {} 0 removed from page 1",
            w.0
        )]
    );
    // A second seal by seald adds a field, a widget, extends /Annots and /Fields: fine.
    let again = sealed_p256(&s.pdf);
    let r = verify_pdf(&again.pdf, Some(&s.trust)).unwrap();
    assert!(r.valid, "{}", r.to_text());
    assert_eq!(
        r.signatures[0].changes_after,
        ChangesAfter::AnnotationsOnly { revisions: 1 }
    );
    // So is a new annotation.
    let n = next_number(&s.pdf);
    let note = "<< /Type /Annot /Subtype /Text /Rect [10 10 30 30] /Contents (note) >>".to_string();
    let page = page.replace(&format!("{} 0 R", w.0), &format!("{} 0 R {n} 0 R", w.0));
    let noted = append_update(
        &s.pdf,
        &[(n, note.into_bytes()), (s.page1.0, page.into_bytes())],
    );
    let r = verify_pdf(&noted, Some(&s.trust)).unwrap();
    assert!(r.valid, "{}", r.to_text());
}

#[test]
fn f3_a_certification_allowing_no_change_makes_any_update_a_change() {
    let p = parties(KeyAlgorithm::P256);
    let seal = build_seal(&seal_info(&p), &p.maker_cert, &p.maker).unwrap();
    let signer = DocumentSigner::new(&seal, &p.signer_cert, &p.signer).unwrap();
    let trust = TrustStore::new(vec![Certificate::from_der(&p.root_cert).unwrap()]);
    let pdf = signed_with(
        crate::pdf::cms::sub_filter(KeyAlgorithm::P256),
        "/Reference [<< /Type /SigRef /TransformMethod /DocMDP \
         /TransformParams << /Type /TransformParams /P 1 /V /1.2 >> >>]",
        "/Perms << /DocMDP 8 0 R >>",
        |pieces| {
            let digest = data_digest(KeyAlgorithm::P256, &pieces.concat());
            crate::pdf::cms::signed_data(&signer, &[], &digest, WHEN).unwrap()
        },
    );
    let r = verify_pdf(&pdf, Some(&trust)).unwrap();
    assert!(r.valid, "{}", r.to_text());
    assert_eq!(
        content_changed(&add_annotation(&pdf), &trust),
        ["revision 3: the document was certified allowing no changes (DocMDP /P 1)"]
    );
}

#[test]
fn f4_a_copied_signature_counts_once() {
    let s = sample_sealed();
    let doc = lopdf::Document::load_mem(&s.pdf).unwrap();
    let page2 = doc.get_pages()[&2];
    let page2_text = body_of(&s.pdf, page2);
    let acro = body_of(&s.pdf, s.acro_form);
    let w = s.widget;
    let n = next_number(&s.pdf);
    let (field, copy) = (n, n + 1);
    // A new field on page 2 whose value is a copy of Seal1's dictionary (exact, or with
    // another /Location), or Seal1's itself.
    let exact = body_of(&s.pdf, s.sig);
    let renamed = exact.replacen("<<", "<< /Location (CEO office) ", 1);
    for (value, body) in [(copy, &exact), (copy, &renamed), (s.sig.0, &exact)] {
        let forged = append_update(
            &s.pdf,
            &[
                (copy, body.clone().into_bytes()),
                (
                    field,
                    format!(
                        "<< /Type /Annot /Subtype /Widget /FT /Sig /T (CEO-Approval) \
                         /V {value} 0 R /Rect [0 0 0 0] /F 132 /P {} 0 R >>",
                        page2.0
                    )
                    .into_bytes(),
                ),
                (
                    page2.0,
                    page2_text
                        .replacen("<<", &format!("<< /Annots [{field} 0 R] "), 1)
                        .into_bytes(),
                ),
                (
                    s.acro_form.0,
                    acro.replace(&format!("{} 0 R", w.0), &format!("{} 0 R {field} 0 R", w.0))
                        .into_bytes(),
                ),
            ],
        );
        let r = verify_pdf(&forged, Some(&s.trust)).unwrap();
        assert!(!r.valid, "{}", r.to_text());
        let [first, second] = &r.signatures[..] else {
            panic!("{}", r.to_text())
        };
        assert!(first.valid && first.field == "Seal1", "{}", r.to_text());
        assert!(!second.valid, "{}", r.to_text());
        assert!(
            second
                .checks
                .contains(&"FAILED: it copies the signature of field Seal1".to_string()),
            "{:#?}",
            second.checks
        );
        if body == &renamed {
            assert!(
                second.checks.contains(
                    &"FAILED: the signature dictionary was added after the revision it signs"
                        .to_string()
                ),
                "{:#?}",
                second.checks
            );
        }
    }
}

#[test]
fn f4_the_signature_dictionary_is_read_from_the_revision_it_signs() {
    let s = sample_sealed();
    let sig = body_of(&s.pdf, s.sig);
    assert!(sig.contains("D:20250601080000"), "{sig}");
    // /M moved after signing (to judge the certificate at another time), or removed.
    for forged in [
        sig.replace("D:20250601080000", "D:20990101000000"),
        sig.replace("D:20250601080000", "D:99991231235959-12'00'"),
        sig.replace("/M", "/Mx"),
    ] {
        let pdf = append_update(&s.pdf, &[(s.sig.0, forged.into_bytes())]);
        let r = verify_pdf(&pdf, Some(&s.trust)).unwrap();
        assert!(!r.valid, "{}", r.to_text());
        let checks = &r.signatures[0].checks;
        assert!(
            checks.contains(
                &"FAILED: the signature dictionary was changed after signing (it differs from \
                  the revision it signs)"
                    .to_string()
            ),
            "{checks:#?}"
        );
        let changed = content_changed(&pdf, &s.trust);
        assert!(
            changed[0].starts_with(&format!(
                "revision 3: signature dictionary {} 0 changed (/M",
                s.sig.0
            )),
            "{changed:?}"
        );
    }
    // Unchanged, the dictionary is found where it was signed.
    let r = verify_pdf(&s.pdf, Some(&s.trust)).unwrap();
    assert!(r.signatures[0]
        .checks
        .iter()
        .any(|c| c.starts_with(&format!(
            "ok: the signature dictionary ({} 0) is defined in the signed bytes",
            s.sig.0
        ))));
}

#[test]
fn f9_re_reading_revisions_has_a_budget() {
    let s = sample_sealed();
    let mut pdf = s.pdf.clone();
    for _ in 0..3 {
        let n = next_number(&pdf);
        pdf = append_update(&pdf, &[(n, b"<< /Producer (x) >>".to_vec())]);
    }
    let r = verify_within(&pdf, Anchors::roots(Some(&s.trust)), 4 * pdf.len()).unwrap();
    assert!(r.valid, "{}", r.to_text());
    let r = verify_within(&pdf, Anchors::roots(Some(&s.trust)), 2 * pdf.len()).unwrap();
    assert!(!r.valid);
    assert!(
        r.problems[0].starts_with("too many revisions to compare"),
        "{:?}",
        r.problems
    );
    assert!(!r.signatures[0].valid);
    // `startxref … %%EOF` inside a stream, pointing at no xref section, ends no revision.
    let n = next_number(&pdf);
    let fake = append_update(
        &pdf,
        &[(n, stream("startxref\n12\n%%EOF\nstartxref\n1\n%%EOF"))],
    );
    assert_eq!(load::revision_ends(&fake).len(), 6);
    assert!(verify_pdf(&fake, Some(&s.trust)).unwrap().valid);
}

#[test]
fn with_trust_roots_a_signature_without_signing_time_is_judged_now() {
    let pdf = include_bytes!("../testdata/forged-self-signed.pdf");
    let root = include_bytes!("../testdata/forged-p256-root.der");
    let trust = TrustStore::from_pem_or_der(root).unwrap();
    let r = verify_pdf(pdf, Some(&trust)).unwrap();
    assert!(!r.valid, "{}", r.to_text());
    // No signing-time attribute and no /M: the self-signed certificate's chain is judged at
    // the time of verification, and fails.
    assert!(
        r.signatures[0]
            .checks
            .iter()
            .any(|c| c.starts_with("FAILED: chain")),
        "{}",
        r.to_text()
    );
}

#[test]
fn signing_an_empty_signature_field_after_a_seal_is_allowed() {
    // PLAIN with an empty signature field on page 2, waiting for a second party.
    let field = next_number(PLAIN);
    let waiting = append_update(
        PLAIN,
        &[
            (
                field,
                b"<< /Type /Annot /Subtype /Widget /FT /Sig /T (Party B) /Rect [300 100 400 150] /P 6 0 R /F 4 >>".to_vec(),
            ),
            (6, format!("{PAGE_2} /Annots [{field} 0 R] >>").into_bytes()),
            (
                1,
                format!("<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [{field} 0 R] >> >>")
                    .into_bytes(),
            ),
        ],
    );
    let s = sealed_p256(&waiting);
    assert!(verify_pdf(&s.pdf, Some(&s.trust)).unwrap().valid);
    // Party B signs the waiting field (its signature here is a placeholder: only what the
    // update changes is judged for the seal before it).
    let sig = next_number(&s.pdf);
    let signed = append_update(
        &s.pdf,
        &[
            (
                sig,
                b"<< /Type /Sig /Filter /Adobe.PPKLite /SubFilter /adbe.pkcs7.detached /ByteRange [0 0 0 0] /Contents <00> >>".to_vec(),
            ),
            (
                field,
                format!("<< /Type /Annot /Subtype /Widget /FT /Sig /T (Party B) /Rect [300 100 400 150] /P 6 0 R /F 4 /V {sig} 0 R >>").into_bytes(),
            ),
        ],
    );
    let r = verify_pdf(&signed, Some(&s.trust)).unwrap();
    let seal = r.signatures.iter().find(|x| x.field != "Party B").unwrap();
    assert_eq!(
        seal.changes_after,
        ChangesAfter::AnnotationsOnly { revisions: 1 },
        "{}",
        r.to_text()
    );
    assert!(seal.valid, "{}", r.to_text());
    // Moving the waiting field while signing it is a change.
    let moved = append_update(
        &s.pdf,
        &[(
            field,
            format!("<< /Type /Annot /Subtype /Widget /FT /Sig /T (Party B) /Rect [10 10 20 20] /P 6 0 R /F 4 /V {sig} 0 R >>").into_bytes(),
        )],
    );
    let r = verify_pdf(&moved, Some(&s.trust)).unwrap();
    let seal = r.signatures.iter().find(|x| x.field != "Party B").unwrap();
    assert!(
        matches!(seal.changes_after, ChangesAfter::ContentChanged { .. }),
        "{}",
        r.to_text()
    );
}

#[test]
fn a_page_tree_kids_array_of_its_own_is_part_of_the_tree() {
    // PLAIN with the page list as an object of its own (never free, whatever else names it).
    let kids = next_number(PLAIN);
    let base = append_update(
        PLAIN,
        &[
            (kids, b"[3 0 R 6 0 R]".to_vec()),
            (
                2,
                format!("<< /Type /Pages /Kids {kids} 0 R /Count 2 >>").into_bytes(),
            ),
        ],
    );
    let s = sealed_p256(&base);
    assert!(verify_pdf(&s.pdf, Some(&s.trust)).unwrap().valid);
    // The pages swapped through the array alone.
    let swapped = append_update(&s.pdf, &[(kids, b"[6 0 R 3 0 R]".to_vec())]);
    let r = verify_pdf(&swapped, Some(&s.trust)).unwrap();
    assert!(!r.valid, "{}", r.to_text());
    assert!(
        matches!(
            r.signatures[0].changes_after,
            ChangesAfter::ContentChanged { .. }
        ),
        "{}",
        r.to_text()
    );
}

#[test]
fn a_body_the_cross_reference_section_does_not_list_is_a_change() {
    let s = sample_sealed();
    // An update that lists a harmless new object but also holds, unlisted, a new body for
    // page 1's content stream: lopdf (and this verifier's object comparison) reads the listed
    // one, a viewer rebuilding the xref the hidden one.
    let n = next_number(&s.pdf);
    let mut shadowed = append_update(&s.pdf, &[(n, b"<< /Note (harmless) >>".to_vec())]);
    let hidden = format!(
        "{} {} obj\n{}\nendobj\n",
        s.content1.0,
        s.content1.1,
        String::from_utf8(stream("BT /F1 24 Tf 72 720 Td (FORGED) Tj ET")).unwrap()
    );
    // Put the hidden body before the listed one: inside the update, after the last %%EOF of
    // the sealed file.
    let at = s.pdf.len();
    shadowed.splice(at..at, hidden.bytes());
    // The offsets of the listed object and the xref moved: rewrite them.
    let shadowed = fix_offsets_after(&shadowed, at, hidden.len());
    let r = verify_pdf(&shadowed, Some(&s.trust)).unwrap();
    assert!(!r.valid, "{}", r.to_text());
    match &r.signatures[0].changes_after {
        ChangesAfter::ContentChanged { changes, .. } => assert!(
            changes
                .iter()
                .any(|c| c.contains("not in its revision's cross-reference")),
            "{changes:?}"
        ),
        other => panic!("{other:?}\n{}", r.to_text()),
    }
    // The same update without the hidden body is annotations only (the check itself is quiet).
    let clean = append_update(&s.pdf, &[(n, b"<< /Note (harmless) >>".to_vec())]);
    let r = verify_pdf(&clean, Some(&s.trust)).unwrap();
    assert!(r.valid, "{}", r.to_text());
}

/// `pdf` with `moved` bytes inserted at `at`: every xref entry and `startxref` after `at`
/// shifted by `moved` (a classic table of one-entry subsections, as `append_update` writes).
fn fix_offsets_after(pdf: &[u8], at: usize, moved: usize) -> Vec<u8> {
    let text = String::from_utf8_lossy(&pdf[at..]).into_owned();
    let mut out = pdf[..at].to_vec();
    let mut after_startxref = false;
    for line in text.split_inclusive('\n') {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if after_startxref {
            let v: usize = fields[0].parse().unwrap();
            out.extend_from_slice(format!("{}\n", v + moved).as_bytes());
            after_startxref = false;
        } else if fields.len() == 3 && fields[2] == "n" && fields[0].len() == 10 {
            let v: usize = fields[0].parse().unwrap();
            let v = if v >= at { v + moved } else { v };
            out.extend_from_slice(format!("{v:010} {} n \n", fields[1]).as_bytes());
        } else {
            after_startxref = line.trim() == "startxref";
            out.extend_from_slice(line.as_bytes());
        }
    }
    out
}

#[test]
fn endless_startxref_candidates_are_looked_at_a_bounded_number_of_times() {
    let s = sample_sealed();
    let mut pdf = s.pdf.clone();
    for _ in 0..50_000 {
        pdf.extend_from_slice(b"startxref\n10\n%%EOF\n");
    }
    assert!(load::revision_ends(&pdf).len() <= MAX_REVISIONS);
    // lopdf follows the last `startxref` (a bogus one): unreadable, or at least not valid.
    assert!(verify_pdf(&pdf, Some(&s.trust)).map_or(true, |r| !r.valid));
}
