//! The PDF sealing engine's own work (issue 17): `pdf::seal::plan` + `pdf::seal::seal` with
//! software keys (SM2: GB/T 35275 CMS; P-256: PAdES), on generated PDFs of 1 and 100 pages
//! with a text line per page, and `pdf::verify_pdf` on the sealed result.
//!
//! `cargo bench -p seald --bench pdf_seal`. `…/sign_only` is the CMS SignedData alone
//! (attributes, software sign, verify-before-use), the part a device replaces; the rest of a
//! `plan+seal` row is the PDF work (parsing, keyword text, appearance with the seal picture,
//! the incremental update, the digest over the ByteRange).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use seald::cert::testing::{parties, sample_seal_info};
use seald::crypto::{data_digest, KeyAlgorithm};
use seald::ofd::seal::{Placement, SealMode};
use seald::pdf::sample::Sample;
use seald::pdf::seal::{plan, seal, PdfSealOptions};
use seald::ses::{build_seal, DocumentSigner};
use time::macros::datetime;

fn quick() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
}

/// A 160×160 px seal picture: a red disc with alpha, as PNG (a realistic few KiB).
fn seal_png() -> Vec<u8> {
    let side = 160u32;
    let mut rgba = Vec::with_capacity((side * side * 4) as usize);
    for y in 0..side {
        for x in 0..side {
            let (dx, dy) = (x as f64 - 80.0, y as f64 - 80.0);
            let inside = dx * dx + dy * dy < 78.0 * 78.0;
            rgba.extend_from_slice(&[220, 20, 30, if inside { 255 } else { 0 }]);
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, side, side);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(&rgba).unwrap();
    writer.finish().unwrap();
    out
}

fn document(pages: u32) -> Vec<u8> {
    let mut sample = Sample::new(pages);
    for page in 1..=pages {
        sample = sample.line(
            page,
            30.0,
            40.0,
            5.0,
            &format!("Page {page} of the contract"),
        );
    }
    sample
        .line(pages, 30.0, 250.0, 5.0, "Seal of the party")
        .build()
}

fn bench_pdf_seal(c: &mut Criterion) {
    let when = datetime!(2025-06-01 08:00:00 UTC);
    let options = PdfSealOptions::default();
    let docs = [("pdf_1p", document(1)), ("pdf_100p", document(100))];
    let at = [Placement::At {
        page: 1,
        x: 120.0,
        y: 60.0,
        width: None,
        height: None,
    }];
    let keyword = [Placement::Keyword {
        text: "Seal of the party".into(),
        all: false,
        pages: None,
    }];
    let mut group = c.benchmark_group("pdf_seal");
    for algorithm in [KeyAlgorithm::Sm2, KeyAlgorithm::P256] {
        let p = parties(algorithm);
        let seal_obj =
            build_seal(&sample_seal_info(&p, seal_png()), &p.maker_cert, &p.maker).unwrap();
        let signer = DocumentSigner::new(&seal_obj, &p.signer_cert, &p.signer).unwrap();
        let alg = format!("{algorithm:?}").to_lowercase();
        for (name, input) in &docs {
            eprintln!("{name}: {} bytes", input.len());
            for (what, placements) in [("at", &at[..]), ("keyword", &keyword[..])] {
                // Planning does not depend on the key: measured once.
                if algorithm == KeyAlgorithm::Sm2 {
                    group.bench_function(BenchmarkId::new(format!("{name}/plan"), what), |b| {
                        b.iter(|| {
                            plan(input, placements, (40.0, 40.0), SealMode::Continue).unwrap()
                        })
                    });
                }
                group.bench_function(
                    BenchmarkId::new(format!("{name}/plan+seal/{alg}"), what),
                    |b| {
                        b.iter(|| {
                            let plan =
                                plan(input, placements, (40.0, 40.0), SealMode::Continue).unwrap();
                            seal(input, &plan, &options, &signer, when).unwrap()
                        })
                    },
                );
            }
            let plan = plan(input, &at, (40.0, 40.0), SealMode::Continue).unwrap();
            let (sealed, _) = seal(input, &plan, &options, &signer, when).unwrap();
            group.bench_function(BenchmarkId::new(format!("{name}/verify"), &alg), |b| {
                b.iter(|| {
                    let report = seald::pdf::verify_pdf(&sealed, None).unwrap();
                    assert_eq!(report.signatures.len(), 1);
                })
            });
        }
        let hash = data_digest(algorithm, &[0x25u8; 4096]);
        group.bench_function(BenchmarkId::new("sign_only", &alg), |b| {
            b.iter(|| seald::pdf::cms::signed_data(&signer, &[], &hash, when).unwrap())
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = quick();
    targets = bench_pdf_seal
}
criterion_main!(benches);
