//! The PDF sealing engine on generated PDFs (classic xref tables and xref streams, rotated
//! and cropped pages, several pages), with the SES form (no dependency on the CMS builder):
//! qpdf checks every output; the original is a prefix; the ByteRange covers everything but
//! `/Contents`, whose digest is the one signed; poppler renders the stamps where planned.

use std::path::PathBuf;
use std::process::Command;

use time::macros::datetime;
use time::OffsetDateTime;

use super::*;
use crate::cert::testing::{parties, sample_seal_info, Parties};
use crate::crypto::{data_digest, KeyAlgorithm};
use crate::ofd::seal::{seal_size_mm, Edge, ResolvedStamp, MAX_STAMPS};
use crate::pdf::sample::{helvetica_width, Sample};
use crate::pdf::PdfError;
use crate::ses::{build_seal, Seal, SesSignature};

const WHEN: OffsetDateTime = datetime!(2025-06-01 08:00:00 UTC);

struct Keys {
    p: Parties,
    seal: Seal,
}

impl Keys {
    /// SM2 keys and a 40 × 40 mm seal whose picture is `picture`.
    fn new(picture: Vec<u8>) -> Self {
        let p = parties(KeyAlgorithm::Sm2);
        let seal = build_seal(&sample_seal_info(&p, picture), &p.maker_cert, &p.maker).unwrap();
        Self { p, seal }
    }

    /// A picture that is not an image: the vector seal is drawn.
    fn undecodable() -> Self {
        Self::new(b"\x89PNG\r\n\x1a\nnot really a picture".to_vec())
    }

    fn signer(&self) -> DocumentSigner<'_> {
        DocumentSigner::new(&self.seal, &self.p.signer_cert, &self.p.signer).unwrap()
    }

    fn size(&self) -> (f64, f64) {
        seal_size_mm(&self.seal)
    }
}

/// A PNG, top half red and bottom half blue (so that tests see which way is up).
fn red_over_blue(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().unwrap();
        let data: Vec<u8> = (0..h)
            .flat_map(|y| {
                (0..w).flat_map(move |_| if y < h / 2 { [255, 0, 0] } else { [0, 0, 255] })
            })
            .collect();
        writer.write_image_data(&data).unwrap();
    }
    out
}

/// A PNG in quadrants: red top-left, green top-right, blue bottom-left, black bottom-right
/// (so that tests see which way is up and which side is left).
fn quadrants(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().unwrap();
        let data: Vec<u8> = (0..h)
            .flat_map(|y| {
                (0..w).flat_map(move |x| match (x < w / 2, y < h / 2) {
                    (true, true) => [255, 0, 0],
                    (false, true) => [0, 255, 0],
                    (true, false) => [0, 0, 255],
                    (false, false) => [0, 0, 0],
                })
            })
            .collect();
        writer.write_image_data(&data).unwrap();
    }
    out
}

fn is_green(p: [u8; 3]) -> bool {
    p[1] > 200 && p[0] < 60 && p[2] < 60
}

fn is_black(p: [u8; 3]) -> bool {
    p.iter().all(|c| *c < 60)
}

fn ses_options() -> PdfSealOptions {
    PdfSealOptions {
        form: PdfSignatureForm::Ses,
        reason: Some("合同签署".into()),
        ..PdfSealOptions::default()
    }
}

fn out_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target")
        .join("pdf-engine-tests");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(name: &str, bytes: &[u8]) -> PathBuf {
    let path = out_dir().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn qpdf_check(name: &str, bytes: &[u8]) {
    let path = write(name, bytes);
    let out = Command::new("qpdf")
        .arg("--check")
        .arg(&path)
        .output()
        .expect("qpdf runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && !text.contains("WARNING"),
        "qpdf --check {}: {text}",
        path.display()
    );
}

fn seal_with(
    keys: &Keys,
    input: &[u8],
    placements: &[Placement],
    options: &PdfSealOptions,
) -> Result<(Vec<u8>, SealPlan, SealedPdf), SealError> {
    let plan = plan(input, placements, keys.size(), options.mode)?;
    let (out, sealed) = seal(input, &plan, options, &keys.signer(), WHEN)?;
    Ok((out, plan, sealed))
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

/// The independent checks of one sealed output.
fn check(name: &str, input: &[u8], out: &[u8], sealed: &SealedPdf, keys: &Keys) {
    assert!(out.starts_with(input), "the original bytes are a prefix");
    qpdf_check(name, out);
    let [a, b, c, d] = sealed.byte_range.map(|v| v as usize);
    assert_eq!(a, 0);
    assert_eq!(out[b], b'<');
    assert_eq!(out[c - 1], b'>');
    assert_eq!(c + d, out.len(), "the ByteRange reaches the end");
    assert!(out[b - 9..b].ends_with(b"/Contents"));
    let mut covered = out[..b].to_vec();
    covered.extend_from_slice(&out[c..]);
    assert_eq!(
        data_digest(KeyAlgorithm::Sm2, &covered),
        sealed.byte_range_digest
    );
    let hex_text = std::str::from_utf8(&out[b + 1..c - 1]).unwrap();
    let bytes = hex::decode(hex_text).unwrap();
    assert_eq!(&bytes[..sealed.contents.len()], &sealed.contents[..]);
    assert!(bytes[sealed.contents.len()..].iter().all(|z| *z == 0));
    let ses = SesSignature::parse(&sealed.contents).unwrap();
    assert_eq!(ses.tbs.data_hash, sealed.byte_range_digest);
    assert_eq!(ses.tbs.property_info, sealed.field_name);
    assert_eq!(ses.tbs.seal.der, keys.seal.der);

    // What a reader finds: the field, its /V with this ByteRange.
    let doc = crate::pdf::open(out).unwrap();
    let catalog = doc.catalog().unwrap();
    let acro = page::get(&doc, catalog, b"AcroForm")
        .unwrap()
        .as_dict()
        .unwrap();
    assert_eq!(acro.get(b"SigFlags").unwrap().as_i64().unwrap(), 3);
    let fields = page::get(&doc, acro, b"Fields")
        .unwrap()
        .as_array()
        .unwrap();
    let field = fields
        .iter()
        .map(|f| page::deref(&doc, f).as_dict().unwrap())
        .find(|f| f.get(b"T").unwrap().as_str().unwrap() == sealed.field_name.as_bytes())
        .expect("the new field is in /Fields");
    let v = page::get(&doc, field, b"V").unwrap().as_dict().unwrap();
    let br: Vec<i64> = v
        .get(b"ByteRange")
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_i64().unwrap())
        .collect();
    assert_eq!(br, sealed.byte_range.map(|v| v as i64).to_vec());
    assert_eq!(
        v.get(b"SubFilter").unwrap().as_name().unwrap(),
        b"adbe.pkcs7.detached"
    );
}

/// Renders `page` of `pdf` at 72 dpi (1 px = 1 pt) and returns (width, height, RGB).
fn render(name: &str, pdf: &[u8], page: u32) -> (u32, u32, Vec<u8>) {
    let path = write(&format!("{name}.pdf"), pdf);
    let prefix = out_dir().join(name);
    let status = Command::new("pdftoppm")
        .args(["-r", "72", "-png", "-cropbox", "-singlefile", "-f"])
        .arg(page.to_string())
        .arg("-l")
        .arg(page.to_string())
        .arg(&path)
        .arg(&prefix)
        .status()
        .expect("pdftoppm runs");
    assert!(status.success());
    let png_path = prefix.with_extension("png");
    let file = std::fs::File::open(&png_path).unwrap();
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.line_size / info.width as usize;
    let rgb = buf
        .chunks(channels)
        .take((info.width * info.height) as usize)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect();
    (info.width, info.height, rgb)
}

/// The colour at (x, y) mm of a rendering.
fn pixel(img: &(u32, u32, Vec<u8>), x: f64, y: f64) -> [u8; 3] {
    let px = (x * 72.0 / 25.4) as usize;
    let py = (y * 72.0 / 25.4) as usize;
    let i = (py * img.0 as usize + px) * 3;
    [img.2[i], img.2[i + 1], img.2[i + 2]]
}

fn is_red(p: [u8; 3]) -> bool {
    p[0] > 200 && p[1] < 60 && p[2] < 60
}

fn is_blue(p: [u8; 3]) -> bool {
    p[2] > 200 && p[0] < 60 && p[1] < 60
}

fn is_white(p: [u8; 3]) -> bool {
    p.iter().all(|c| *c > 240)
}

#[test]
fn one_page_classic_xref() {
    let keys = Keys::undecodable();
    let input = Sample::new(1).build();
    let (out, plan, sealed) =
        seal_with(&keys, &input, &[at(1, 50.0, 60.0)], &ses_options()).unwrap();
    assert_eq!(plan.pages, 1);
    assert_eq!(plan.stamps.len(), 1);
    assert_eq!(plan.stamps[0].boundary, [50.0, 60.0, 40.0, 40.0]);
    let doc = crate::pdf::open(&input).unwrap();
    let first = doc.page_iter().next().unwrap();
    assert_eq!(plan.stamps[0].page_ref, format!("{} {}", first.0, first.1));
    assert_eq!(sealed.field_name, "Seal1");
    check("one-page.pdf", &input, &out, &sealed, &keys);
    // The update uses a table, like the original, and keeps /Info and /ID.
    let tail = &out[input.len()..];
    let tail_text = String::from_utf8_lossy(tail);
    assert!(tail_text.contains("\nxref\n"), "{tail_text}");
    assert!(tail_text.contains("/Info"));
    assert!(tail_text.contains("/ID["));
    let prev = crate::pdf::open(&input).unwrap().xref_start;
    assert!(tail_text.contains(&format!("/Prev {prev}")));
}

#[test]
fn xref_stream_pdf_gets_an_xref_stream_update() {
    let keys = Keys::undecodable();
    let input = Sample::new(3).xref_streams(true).build();
    assert!(
        input.windows(10).any(|w| w == b"/Type/XRef")
            || input.windows(11).any(|w| w == b"/Type /XRef")
    );
    let (out, _, sealed) = seal_with(&keys, &input, &[at(2, 10.0, 10.0)], &ses_options()).unwrap();
    check("xref-stream.pdf", &input, &out, &sealed, &keys);
    let tail = String::from_utf8_lossy(&out[input.len()..]).to_string();
    assert!(tail.contains("/Type/XRef"), "{tail}");
    assert!(!tail.contains("\nxref\n"));
    // qpdf reads it as a whole (object streams from the original, the new objects).
    let shown = Command::new("qpdf")
        .args(["--show-npages"])
        .arg(write("xref-stream-pages.pdf", &out))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&shown.stdout).trim(), "3");
}

#[test]
fn many_pages_and_a_riding_seal_make_one_field_with_kids() {
    let keys = Keys::new(red_over_blue(40, 40));
    let input = Sample::new(5).build();
    let placements = [
        Placement::Riding {
            edge: Edge::Right,
            from: None,
            to: None,
            offset: None,
        },
        at(3, 20.0, 200.0),
    ];
    let (out, plan, sealed) = seal_with(&keys, &input, &placements, &ses_options()).unwrap();
    assert_eq!(plan.stamps.len(), 6);
    let first = &plan.stamps[0];
    assert_eq!(first.clip, Some([0.0, 0.0, 8.0, 40.0]));
    assert_eq!(first.boundary[0], 202.0);
    check("riding.pdf", &input, &out, &sealed, &keys);
    let doc = crate::pdf::open(&out).unwrap();
    let acro = page::get(&doc, doc.catalog().unwrap(), b"AcroForm")
        .unwrap()
        .as_dict()
        .unwrap();
    let field = page::deref(&doc, &acro.get(b"Fields").unwrap().as_array().unwrap()[0]);
    let kids = field
        .as_dict()
        .unwrap()
        .get(b"Kids")
        .unwrap()
        .as_array()
        .unwrap();
    assert_eq!(kids.len(), 6);
    // Every page has its widget.
    for (n, id) in doc.get_pages() {
        let annots = doc
            .get_dictionary(id)
            .unwrap()
            .get(b"Annots")
            .unwrap()
            .as_array()
            .unwrap();
        assert_eq!(annots.len(), if n == 3 { 2 } else { 1 }, "page {n}");
    }
    // The slice on page 1 is the leftmost fifth of the seal at the right edge: red on top.
    let img = render("riding-p1", &out, 1);
    assert!(
        is_red(pixel(&img, 206.0, 140.0)),
        "{:?}",
        pixel(&img, 206.0, 140.0)
    );
    assert!(
        is_blue(pixel(&img, 206.0, 155.0)),
        "{:?}",
        pixel(&img, 206.0, 155.0)
    );
    assert!(is_white(pixel(&img, 199.0, 140.0)));
}

#[test]
fn sealing_twice_keeps_the_first_signature_valid() {
    let keys = Keys::undecodable();
    let input = Sample::new(2).build();
    let (once, _, first) = seal_with(&keys, &input, &[at(1, 50.0, 60.0)], &ses_options()).unwrap();
    let (twice, _, second) = seal_with(
        &keys,
        &once,
        &[at(1, 100.0, 160.0), at(2, 50.0, 60.0)],
        &ses_options(),
    )
    .unwrap();
    assert_eq!(second.field_name, "Seal2");
    check("twice.pdf", &once, &twice, &second, &keys);
    let [_, b, c, d] = first.byte_range.map(|v| v as usize);
    let mut covered = twice[..b].to_vec();
    covered.extend_from_slice(&twice[c..c + d]);
    assert_eq!(
        data_digest(KeyAlgorithm::Sm2, &covered),
        first.byte_range_digest
    );
    let doc = crate::pdf::open(&twice).unwrap();
    let acro = page::get(&doc, doc.catalog().unwrap(), b"AcroForm")
        .unwrap()
        .as_dict()
        .unwrap();
    assert_eq!(acro.get(b"Fields").unwrap().as_array().unwrap().len(), 2);
    // Page 1 keeps the first seal's widget and gains the second's.
    let page1 = doc.get_pages()[&1];
    let annots = doc
        .get_dictionary(page1)
        .unwrap()
        .get(b"Annots")
        .unwrap()
        .as_array()
        .unwrap();
    assert_eq!(annots.len(), 2);
}

#[test]
fn sealing_a_pdf_signed_by_pyhanko_keeps_its_signature_valid() {
    let keys = Keys::undecodable();
    let signed = include_bytes!("../testdata/pyhanko-one.pdf");
    let root =
        crate::cert::TrustStore::from_pem_or_der(include_bytes!("../testdata/pyhanko-root.pem"))
            .unwrap();
    let (out, _, sealed) = seal_with(&keys, signed, &[at(2, 50.0, 60.0)], &ses_options()).unwrap();
    check("after-pyhanko.pdf", signed, &out, &sealed, &keys);
    let report = crate::pdf::verify_pdf(&out, Some(&root)).unwrap();
    assert_eq!(report.signatures.len(), 2, "{}", report.to_text());
    let earlier = &report.signatures[0];
    assert_eq!(earlier.form, "pades", "{}", report.to_text());
    assert!(earlier.valid, "{}", report.to_text());
    assert_eq!(
        earlier.changes_after,
        crate::pdf::ChangesAfter::AnnotationsOnly { revisions: 1 },
        "{}",
        report.to_text()
    );
    assert_eq!(report.signatures[1].form, "ses", "{}", report.to_text());
}

#[test]
fn lock_mode_refuses_later_seals() {
    let keys = Keys::undecodable();
    let input = Sample::new(1).build();
    let options = PdfSealOptions {
        mode: SealMode::Lock,
        ..ses_options()
    };
    let (locked, _, sealed) = seal_with(&keys, &input, &[at(1, 50.0, 60.0)], &options).unwrap();
    check("locked.pdf", &input, &locked, &sealed, &keys);
    let err = plan(
        &locked,
        &[at(1, 10.0, 10.0)],
        keys.size(),
        SealMode::Continue,
    )
    .unwrap_err();
    assert!(matches!(err, SealError::Locked(_)), "{err}");
    assert!(err.to_string().contains("Seal1"), "{err}");
}

#[test]
fn rendered_stamps_are_where_planned_and_upright_on_rotated_pages() {
    let keys = Keys::new(quadrants(40, 40));
    for rotate in [0, 90, 180, 270] {
        let input = Sample::new(1).rotate(1, rotate).build();
        let (x, y) = (60.0, 50.0);
        let (out, plan, sealed) = seal_with(&keys, &input, &[at(1, x, y)], &ses_options()).unwrap();
        check(
            &format!("rotate-{rotate}.pdf"),
            &input,
            &out,
            &sealed,
            &keys,
        );
        let img = render(&format!("rotate-{rotate}"), &out, 1);
        let landscape = rotate % 180 == 90;
        assert_eq!(
            img.0 > img.1,
            landscape,
            "rotate {rotate}: {}x{}",
            img.0,
            img.1
        );
        assert_eq!(plan.stamps[0].boundary, [x, y, 40.0, 40.0]);
        let quadrant = |dx: f64, dy: f64| pixel(&img, x + dx, y + dy);
        assert!(
            is_red(quadrant(10.0, 10.0)),
            "rotate {rotate}: {:?}",
            quadrant(10.0, 10.0)
        );
        assert!(
            is_green(quadrant(30.0, 10.0)),
            "rotate {rotate}: {:?}",
            quadrant(30.0, 10.0)
        );
        assert!(
            is_blue(quadrant(10.0, 30.0)),
            "rotate {rotate}: {:?}",
            quadrant(10.0, 30.0)
        );
        assert!(
            is_black(quadrant(30.0, 30.0)),
            "rotate {rotate}: {:?}",
            quadrant(30.0, 30.0)
        );
        for (px, py) in [
            (x - 5.0, y + 20.0),
            (x + 45.0, y + 20.0),
            (x + 20.0, y - 5.0),
            (x + 20.0, y + 45.0),
        ] {
            assert!(
                is_white(pixel(&img, px, py)),
                "rotate {rotate}: ({px}, {py}) {:?}",
                pixel(&img, px, py)
            );
        }
    }
}

#[test]
fn cropped_page_counts_from_the_crop_box() {
    let keys = Keys::new(red_over_blue(40, 40));
    // A MediaBox not at the origin and a CropBox inside it.
    let input = Sample::new(1)
        .media_box(1, [-100.0, -50.0, 495.276, 791.89])
        .crop_box(1, [0.0, 100.0, 400.0, 700.0])
        .build();
    let (out, plan, sealed) =
        seal_with(&keys, &input, &[at(1, 20.0, 30.0)], &ses_options()).unwrap();
    check("cropped.pdf", &input, &out, &sealed, &keys);
    assert_eq!(plan.stamps[0].boundary, [20.0, 30.0, 40.0, 40.0]);
    let img = render("cropped", &out, 1);
    assert_eq!((img.0, img.1), (400, 600));
    assert!(is_red(pixel(&img, 40.0, 40.0)));
    assert!(is_blue(pixel(&img, 40.0, 60.0)));
    assert!(is_white(pixel(&img, 10.0, 50.0)));
    // Outside the crop box: refused.
    let err = super::plan(
        &input,
        &[at(1, 150.0, 30.0)],
        keys.size(),
        SealMode::Continue,
    )
    .unwrap_err();
    assert!(
        matches!(err, SealError::Placement { index: 0, .. }),
        "{err}"
    );
}

#[test]
fn gif_jpeg_and_transparent_png_pictures_are_embedded() {
    // A GIF with a transparent colour.
    let mut gif_bytes = Vec::new();
    {
        let mut enc = gif::Encoder::new(&mut gif_bytes, 2, 2, &[255, 0, 0, 255, 255, 255]).unwrap();
        let frame = gif::Frame::from_indexed_pixels(2, 2, vec![0, 1, 1, 0], Some(1));
        enc.write_frame(&frame).unwrap();
    }
    let png_alpha = super::image::tests::solid_png(4, 4, [255, 0, 0, 128]);
    // A real JPEG: poppler renders a page as one.
    let jpeg = {
        let pdf = write("for-jpeg.pdf", &Sample::new(1).build());
        let prefix = out_dir().join("for-jpeg");
        let status = Command::new("pdftoppm")
            .args(["-r", "10", "-jpeg", "-singlefile"])
            .arg(&pdf)
            .arg(&prefix)
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::read(prefix.with_extension("jpg")).unwrap()
    };
    for (name, pic, smask, dct) in [
        ("gif", gif_bytes, true, false),
        ("png-alpha", png_alpha, true, false),
        ("jpeg", jpeg, false, true),
    ] {
        let keys = Keys::new(pic);
        let input = Sample::new(1).build();
        let (out, _, sealed) =
            seal_with(&keys, &input, &[at(1, 50.0, 60.0)], &ses_options()).unwrap();
        check(&format!("picture-{name}.pdf"), &input, &out, &sealed, &keys);
        let tail = &out[input.len()..];
        let has = |s: &[u8]| tail.windows(s.len()).any(|w| w == s);
        assert_eq!(has(b"/SMask"), smask, "{name}");
        assert_eq!(has(b"/DCTDecode"), dct, "{name}");
        assert!(has(b"/Subtype/Image"), "{name}");
    }
}

#[test]
fn keywords_are_found_in_latin_and_cjk_text() {
    let keys = Keys::undecodable();
    let input = Sample::new(2)
        .line(2, 30.0, 100.0, 5.0, "Contract No. 42")
        .line(2, 30.0, 200.0, 5.0, "合同专用章")
        .build();
    let plan = plan(
        &input,
        &[
            Placement::Keyword {
                text: "No. 42".into(),
                all: false,
                pages: None,
            },
            Placement::Keyword {
                text: "专用".into(),
                all: true,
                pages: Some(vec![2]),
            },
        ],
        keys.size(),
        SealMode::Continue,
    )
    .unwrap();
    assert_eq!(plan.stamps.len(), 2);
    let w = |s: &str| s.bytes().map(helvetica_width).sum::<f64>() * 5.0 / 1000.0;
    let cx = 30.0 + w("Contract ") + w("No. 42") / 2.0;
    let [x, y, bw, bh] = plan.stamps[0].boundary;
    assert_eq!(plan.stamps[0].page, 2);
    assert!((x + bw / 2.0 - cx).abs() < 0.01, "{x} {cx}");
    assert!((y + bh / 2.0 - 102.5).abs() < 0.01, "{y}");
    let [x, y, bw, bh] = plan.stamps[1].boundary;
    assert!((x + bw / 2.0 - 45.0).abs() < 0.01, "{x}");
    assert!((y + bh / 2.0 - 202.5).abs() < 0.01, "{y}");
}

#[test]
fn keywords_on_a_rotated_page_are_in_displayed_coordinates() {
    let keys = Keys::undecodable();
    let input = Sample::new(1)
        .line(1, 30.0, 100.0, 5.0, "合同专用章")
        .rotate(1, 90)
        .build();
    let p = plan(
        &input,
        &[Placement::Keyword {
            text: "合同专用章".into(),
            all: false,
            pages: None,
        }],
        keys.size(),
        SealMode::Continue,
    )
    .unwrap();
    let [x, y, w, h] = p.stamps[0].boundary;
    // Displayed (rotated clockwise): across = from the bottom of the MediaBox, down = from its left.
    assert!((x + w / 2.0 - (297.0 - 102.5)).abs() < 0.01, "{x}");
    assert!((y + h / 2.0 - 42.5).abs() < 0.01, "{y}");
}

#[test]
fn placement_errors_are_clear() {
    let keys = Keys::undecodable();
    let input = Sample::new(2).build();
    let err = plan(
        &input,
        &[at(3, 10.0, 10.0)],
        keys.size(),
        SealMode::Continue,
    )
    .unwrap_err();
    assert!(err.to_string().contains("page 3 does not exist"), "{err}");
    let err = plan(
        &input,
        &[
            at(1, 10.0, 10.0),
            Placement::Keyword {
                text: "nowhere".into(),
                all: false,
                pages: None,
            },
        ],
        keys.size(),
        SealMode::Continue,
    )
    .unwrap_err();
    assert!(
        matches!(&err, SealError::Placement { index: 1, reason } if reason.contains("not found")),
        "{err}"
    );
    let err = plan(
        &input,
        &[at(1, 300.0, 10.0)],
        keys.size(),
        SealMode::Continue,
    )
    .unwrap_err();
    assert!(err.to_string().contains("outside page 1"), "{err}");
    assert!(err.is_input_error());
}

#[test]
fn a_plan_for_another_document_is_refused() {
    let keys = Keys::undecodable();
    let input = Sample::new(2).build();
    let mut p = plan(
        &input,
        &[at(1, 10.0, 10.0)],
        keys.size(),
        SealMode::Continue,
    )
    .unwrap();
    p.stamps[0] = ResolvedStamp {
        page_ref: "999 0".into(),
        ..p.stamps[0].clone()
    };
    let err = seal(&input, &p, &ses_options(), &keys.signer(), WHEN).unwrap_err();
    assert!(err.to_string().contains("another document"), "{err}");
}

fn open_err(bytes: &[u8]) -> PdfError {
    match plan(
        bytes,
        &[at(1, 10.0, 10.0)],
        (40.0, 40.0),
        SealMode::Continue,
    )
    .unwrap_err()
    {
        SealError::Pdf(e) => e,
        other => panic!("not a PDF error: {other}"),
    }
}

#[test]
fn bad_inputs_are_refused_clearly() {
    assert!(matches!(open_err(b"PK\x03\x04 a zip"), PdfError::NotPdf));
    let good = Sample::new(1).build();
    // Truncated.
    let e = open_err(&good[..good.len() / 2]);
    assert!(matches!(e, PdfError::Unreadable(_)), "{e}");
    // A startxref pointing at garbage.
    let rfind = |s: &[u8]| good.windows(s.len()).rposition(|w| w == s).unwrap();
    let at_sx = rfind(b"startxref");
    let mut bad = good[..at_sx].to_vec();
    bad.extend(b"startxref\n17\n%%EOF\n");
    let e = open_err(&bad);
    assert!(matches!(e, PdfError::Unreadable(_)), "{e}");
    assert!(e.to_string().contains("cross-reference"), "{e}");
    // A trailer declaring too many objects.
    let size_at = rfind(b"/Size ");
    let mut huge = good[..size_at].to_vec();
    huge.extend(b"/Size 99999999");
    let rest = &good[size_at + 6..];
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    huge.extend(&rest[digits..]);
    let e = open_err(&huge);
    assert!(matches!(e, PdfError::TooLarge(_)), "{e}");
    // No page tree.
    let mut doc = lopdf::Document::load_mem(&good).unwrap();
    doc.catalog_mut().unwrap().remove(b"Pages");
    let mut no_pages = Vec::new();
    doc.save_to(&mut no_pages).unwrap();
    let e = open_err(&no_pages);
    assert!(
        matches!(e, PdfError::Unreadable(_)) && e.to_string().contains("/Pages"),
        "{e}"
    );
}

#[test]
fn encrypted_pdfs_are_refused() {
    let plain = write("plain.pdf", &Sample::new(1).build());
    for (name, user) in [("encrypted-user.pdf", "u"), ("encrypted-empty.pdf", "")] {
        let enc = out_dir().join(name);
        let status = Command::new("qpdf")
            .args(["--encrypt", user, "owner", "256", "--"])
            .arg(&plain)
            .arg(&enc)
            .status()
            .unwrap();
        assert!(status.success());
        let bytes = std::fs::read(&enc).unwrap();
        let e = open_err(&bytes);
        assert!(matches!(e, PdfError::Encrypted), "{name}: {e}");
    }
}

#[test]
fn an_oversized_signature_is_never_truncated() {
    // The SES bound holds with margin for this signer.
    let keys = Keys::undecodable();
    let bound = ses_max_len(&keys.signer(), "Seal1");
    let sig = keys.signer().sign(WHEN, &[7; 32], "Seal1", None).unwrap();
    assert!(
        sig.der.len() <= bound && bound - sig.der.len() < 64,
        "{} {bound}",
        sig.der.len()
    );
}

#[test]
fn a_certification_signature_that_allows_no_change_locks_the_document() {
    let keys = Keys::undecodable();
    let mut doc = lopdf::Document::load_mem(&Sample::new(1).build()).unwrap();
    let sig = doc.add_object(dictionary! {
        "Type" => "Sig",
        "Name" => Object::string_literal("Certifier"),
        "Reference" => vec![Object::Dictionary(dictionary! {
            "Type" => "SigRef",
            "TransformMethod" => "DocMDP",
            "TransformParams" => dictionary! { "Type" => "TransformParams", "P" => 1, "V" => Object::Name(b"1.2".to_vec()) },
        })],
    });
    doc.catalog_mut()
        .unwrap()
        .set("Perms", dictionary! { "DocMDP" => sig });
    let mut bytes = Vec::new();
    doc.save_to(&mut bytes).unwrap();
    let err = plan(
        &bytes,
        &[at(1, 10.0, 10.0)],
        keys.size(),
        SealMode::Continue,
    )
    .unwrap_err();
    assert!(
        matches!(&err, SealError::Locked(who) if who.contains("Certifier")),
        "{err}"
    );
}

#[test]
fn a_table_update_over_an_xref_stream_original_is_followed() {
    // An original with object streams and an xref stream, then an update with a classic
    // table (as some editors append): the seal's update is a table whose /Prev is that table.
    let keys = Keys::undecodable();
    let original = Sample::new(2).xref_streams(true).build();
    let doc = crate::pdf::open(&original).unwrap();
    let root = doc.trailer.get(b"Root").unwrap().as_reference().unwrap();
    let n = doc.max_id + 1;
    let mut mixed = original.clone();
    let at_obj = mixed.len();
    mixed.extend(format!("\n{n} 0 obj\n<</Producer(an editor)>>\nendobj\n").as_bytes());
    let xref_at = mixed.len();
    mixed.extend(
        format!(
            "xref\n{n} 1\n{:010} 00000 n \ntrailer\n<</Size {} /Root {} {} R /Info {n} 0 R /Prev {}>>\nstartxref\n{xref_at}\n%%EOF\n",
            at_obj + 1,
            n + 1,
            root.0,
            root.1,
            doc.xref_start
        )
        .as_bytes(),
    );
    qpdf_check("mixed-input.pdf", &mixed);
    let (out, _, sealed) = seal_with(&keys, &mixed, &[at(2, 10.0, 10.0)], &ses_options()).unwrap();
    check("mixed.pdf", &mixed, &out, &sealed, &keys);
    let tail = String::from_utf8_lossy(&out[mixed.len()..]).to_string();
    assert!(
        tail.contains("\nxref\n") && tail.contains(&format!("/Prev {xref_at}")),
        "{tail}"
    );
}

#[test]
fn a_hybrid_reference_file_is_sealed_with_a_table() {
    // Hybrid (ISO 32000-1 §7.5.8.4): a classic table for the uncompressed objects whose
    // trailer's /XRefStm points at the xref stream listing the compressed ones.
    let keys = Keys::undecodable();
    let original = Sample::new(2).xref_streams(true).build();
    let doc = crate::pdf::open(&original).unwrap();
    let stream_at = doc.xref_start;
    let mut hybrid = original.clone();
    let table_at = hybrid.len();
    // Subsections for the uncompressed objects only: the compressed ones are absent.
    let mut table = String::from("xref\n0 1\n0000000000 65535 f \n");
    let normal: Vec<(u32, u32)> = (1..=doc.max_id)
        .filter_map(|id| match doc.reference_table.get(id) {
            Some(lopdf::xref::XrefEntry::Normal { offset, .. }) => Some((id, *offset)),
            _ => None,
        })
        .collect();
    let mut i = 0;
    while i < normal.len() {
        let mut j = i + 1;
        while j < normal.len() && normal[j].0 == normal[j - 1].0 + 1 {
            j += 1;
        }
        table.push_str(&format!("{} {}\n", normal[i].0, j - i));
        for (_, offset) in &normal[i..j] {
            table.push_str(&format!("{offset:010} 00000 n \n"));
        }
        i = j;
    }
    let root = doc.trailer.get(b"Root").unwrap().as_reference().unwrap();
    table.push_str(&format!(
        "trailer\n<</Size {} /Root {} {} R /XRefStm {stream_at}>>\nstartxref\n{table_at}\n%%EOF\n",
        doc.max_id + 1,
        root.0,
        root.1
    ));
    hybrid.extend(table.as_bytes());
    qpdf_check("hybrid-input.pdf", &hybrid);
    let (out, _, sealed) = seal_with(&keys, &hybrid, &[at(2, 10.0, 10.0)], &ses_options()).unwrap();
    check("hybrid.pdf", &hybrid, &out, &sealed, &keys);
    let tail = String::from_utf8_lossy(&out[hybrid.len()..]).to_string();
    assert!(tail.contains(&format!("/Prev {table_at}")), "{tail}");
    assert_eq!(crate::pdf::open(&out).unwrap().get_pages().len(), 2);
}

#[test]
fn more_than_max_stamps_are_refused() {
    let keys = Keys::undecodable();
    let input = Sample::new(MAX_STAMPS as u32 + 1).build();
    let riding = Placement::Riding {
        edge: Edge::Left,
        from: None,
        to: None,
        offset: None,
    };
    let err = plan(&input, &[riding], keys.size(), SealMode::Continue).unwrap_err();
    assert!(
        err.to_string().contains(&format!("at most {MAX_STAMPS}")),
        "{err}"
    );
}

/// The CMS form, once `pdf::cms` is built (until then `signed_data` refuses and this test
/// only checks that the refusal is a signing error and nothing else).
#[test]
fn cms_form_when_the_builder_exists() {
    let keys = Keys::undecodable();
    let input = Sample::new(1).build();
    let options = PdfSealOptions::default();
    match seal_with(&keys, &input, &[at(1, 50.0, 60.0)], &options) {
        Err(SealError::Sign(crate::ses::BuildError::Unsupported(_))) => {}
        Err(e) => panic!("{e}"),
        Ok((out, _, sealed)) => {
            assert!(out.starts_with(&input));
            qpdf_check("cms.pdf", &out);
            let [_, b, c, _] = sealed.byte_range.map(|v| v as usize);
            assert!(2 * sealed.contents.len() <= c - b - 2);
            let sub = format!(
                "/SubFilter/{}",
                crate::pdf::cms::sub_filter(KeyAlgorithm::Sm2)
            );
            assert!(out.windows(sub.len()).any(|w| w == sub.as_bytes()));
        }
    }
}

#[test]
fn contents_that_do_not_fit_are_refused_not_truncated() {
    let mut out = b"<0000>".to_vec();
    let err = write_contents(&mut out, 0, 2, &[1, 2, 3]).unwrap_err();
    assert!(err.to_string().contains("placeholder holds 2"), "{err}");
    assert_eq!(out, b"<0000>");
    write_contents(&mut out, 0, 2, &[0xAB]).unwrap();
    assert_eq!(out, b"<AB00>");
}

#[test]
fn objects_of_a_later_generation_keep_it() {
    // The catalog at generation 1: its new version in the update is "N 1 obj" and the
    // xref entry says generation 1.
    let keys = Keys::undecodable();
    let mut doc = lopdf::Document::load_mem(&Sample::new(1).build()).unwrap();
    let old = doc.trailer.get(b"Root").unwrap().as_reference().unwrap();
    let catalog = doc.objects.remove(&old).unwrap();
    let new = (old.0, 1);
    doc.objects.insert(new, catalog);
    doc.trailer.set("Root", new);
    let mut input = Vec::new();
    doc.save_to(&mut input).unwrap();
    let (out, _, sealed) = seal_with(&keys, &input, &[at(1, 50.0, 60.0)], &ses_options()).unwrap();
    check("generation.pdf", &input, &out, &sealed, &keys);
    let tail = String::from_utf8_lossy(&out[input.len()..]).to_string();
    assert!(tail.contains(&format!("\n{} 1 obj\n", old.0)), "{tail}");
    assert!(tail.contains(" 00001 n \n"), "{tail}");
}

#[test]
fn leading_junk_before_the_header_is_kept_and_offsets_count_from_the_header() {
    let keys = Keys::undecodable();
    let mut input = b"junk before the header\n".to_vec();
    input.extend(Sample::new(1).build());
    let (out, _, sealed) = seal_with(&keys, &input, &[at(1, 50.0, 60.0)], &ses_options()).unwrap();
    assert!(out.starts_with(&input));
    assert_eq!(sealed.byte_range[0], 0);
    // lopdf (offsets from the header) reads the new revision.
    let doc = crate::pdf::open(&out).unwrap();
    let acro = page::get(&doc, doc.catalog().unwrap(), b"AcroForm");
    assert!(acro.is_some());
}

#[test]
fn an_inline_acroform_with_a_taken_name_and_an_indirect_annots_array() {
    let keys = Keys::undecodable();
    let mut doc = lopdf::Document::load_mem(&Sample::new(1).build()).unwrap();
    let page1 = doc.get_pages()[&1];
    let link = doc.add_object(dictionary! {
        "Type" => "Annot", "Subtype" => "Link",
        "Rect" => vec![0.into(), 0.into(), 10.into(), 10.into()],
    });
    let text_field = doc.add_object(dictionary! {
        "FT" => "Tx", "T" => Object::string_literal("Seal1"),
    });
    let annots = doc.add_object(Object::Array(vec![link.into()]));
    doc.get_dictionary_mut(page1).unwrap().set("Annots", annots);
    doc.catalog_mut().unwrap().set(
        "AcroForm",
        dictionary! { "Fields" => vec![text_field.into()], "DA" => Object::string_literal("/Helv 0 Tf 0 g") },
    );
    let mut input = Vec::new();
    doc.save_to(&mut input).unwrap();
    let (out, _, sealed) = seal_with(&keys, &input, &[at(1, 50.0, 60.0)], &ses_options()).unwrap();
    assert_eq!(sealed.field_name, "Seal2");
    check("inline-acroform.pdf", &input, &out, &sealed, &keys);
    let after = crate::pdf::open(&out).unwrap();
    // The array object was extended; the page still points at it.
    let page = after.get_dictionary(page1).unwrap();
    assert_eq!(page.get(b"Annots").unwrap().as_reference().unwrap(), annots);
    assert_eq!(
        after.get_object(annots).unwrap().as_array().unwrap().len(),
        2
    );
    // The AcroForm kept the text field and its /DA.
    let acro = page::get(&after, after.catalog().unwrap(), b"AcroForm")
        .unwrap()
        .as_dict()
        .unwrap();
    assert_eq!(acro.get(b"Fields").unwrap().as_array().unwrap().len(), 2);
    assert!(acro.has(b"DA"));
}

#[test]
fn a_riding_seal_on_rotated_pages_is_upright() {
    let keys = Keys::new(quadrants(40, 40));
    let input = Sample::new(2).rotate(1, 90).rotate(2, 90).build();
    let riding = Placement::Riding {
        edge: Edge::Right,
        from: None,
        to: None,
        offset: Some(50.0),
    };
    let (out, plan, sealed) = seal_with(&keys, &input, &[riding], &ses_options()).unwrap();
    check("riding-rotated.pdf", &input, &out, &sealed, &keys);
    // Displayed pages are 297 mm wide: page 1 shows the left half at x 277..297.
    assert_eq!(plan.stamps[0].boundary, [277.0, 50.0, 40.0, 40.0]);
    let img = render("riding-rotated-p1", &out, 1);
    assert!(
        is_red(pixel(&img, 287.0, 60.0)),
        "{:?}",
        pixel(&img, 287.0, 60.0)
    );
    assert!(
        is_blue(pixel(&img, 287.0, 80.0)),
        "{:?}",
        pixel(&img, 287.0, 80.0)
    );
    assert!(is_white(pixel(&img, 272.0, 70.0)));
    // Page 2 shows the right half.
    let img = render("riding-rotated-p2", &out, 2);
    assert!(
        is_green(pixel(&img, 287.0, 60.0)),
        "{:?}",
        pixel(&img, 287.0, 60.0)
    );
    assert!(
        is_black(pixel(&img, 287.0, 80.0)),
        "{:?}",
        pixel(&img, 287.0, 80.0)
    );
}

#[test]
fn rotate_and_boxes_are_inherited_from_the_page_tree() {
    let keys = Keys::undecodable();
    // Landscape as displayed: x = 250 mm fits only because /Rotate 90 is inherited.
    let input = Sample::new(1).inherited_rotate(90).build();
    let p = plan(
        &input,
        &[at(1, 250.0, 10.0)],
        keys.size(),
        SealMode::Continue,
    )
    .unwrap();
    assert_eq!(p.stamps[0].boundary, [250.0, 10.0, 40.0, 40.0]);
    let err = plan(
        &input,
        &[at(1, 10.0, 250.0)],
        keys.size(),
        SealMode::Continue,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("297 x 210 mm as displayed"),
        "{err}"
    );
}
