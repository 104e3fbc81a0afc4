//! The OFD sealing engine's own work (issue 15 §6): `ofd::seal::plan` + `ofd::seal::seal` with
//! a software SM2 key, on generated invoice-like packages of 5 and 100 pages and on the real
//! 5-page tax invoice of the shared fixtures (when present).
//!
//! `cargo bench -p seald --bench ofd_seal`. `…/sign_only` is the SES_Signature alone (TBS_Sign,
//! e, software sign, verify-before-use), the part a device replaces; the rest of a
//! `plan+seal` row is the package work (reading and inflating every member, SM3 of each, XML,
//! zip writing with raw copies).

use std::io::Cursor;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use seald::cert::testing::{parties, sample_seal_info, Parties};
use seald::crypto::{data_digest, sm3, KeyAlgorithm};
use seald::ofd::sample::Sample;
use seald::ofd::seal::{plan, seal, Edge, Placement, SealMode, SealOptions};
use seald::ofd::Package;
use seald::ses::{build_seal, DocumentSigner, SealInfo};
use time::macros::datetime;

fn quick() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
}

fn seal_info(p: &Parties) -> SealInfo {
    // A stamp image of a realistic size (a few KiB of PNG).
    sample_seal_info(p, vec![0x89; 8 * 1024])
}

/// The 5-page tax invoice of the shared fixtures, if present.
fn gomain() -> Option<Vec<u8>> {
    let dir = std::env::var_os("SEALD_FIXTURES")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .ancestors()
                .map(|d| d.join("shared/fixtures"))
                .find(|d| d.is_dir())
        })?;
    std::fs::read(dir.join("ses/gomain-999.ofd")).ok()
}

/// Uncompressed bytes of every member.
fn inflated(bytes: &[u8]) -> u64 {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
    (0..zip.len())
        .map(|i| zip.by_index_raw(i).unwrap().size())
        .sum()
}

fn bench_ofd_seal(c: &mut Criterion) {
    let p = parties(KeyAlgorithm::Sm2);
    let seal_obj = build_seal(&seal_info(&p), &p.maker_cert, &p.maker).unwrap();
    let signer = DocumentSigner::new(&seal_obj, &p.signer_cert, &p.signer).unwrap();
    let size = (40.0, 40.0);
    let when = datetime!(2025-06-01 08:00:00 UTC);
    let options = SealOptions::default();

    let mut docs = vec![
        ("invoice_5p", Sample::invoice_like(5).build()),
        ("doc_100p", Sample::invoice_like(100).build()),
    ];
    if let Some(g) = gomain() {
        docs.push(("gomain_999", g));
    }
    let at = [Placement::At {
        page: 1,
        x: 120.0,
        y: 60.0,
        width: None,
        height: None,
    }];
    let keyword = [Placement::Keyword {
        text: "销售方".into(),
        all: false,
        pages: None,
    }];
    let riding = [Placement::Riding {
        edge: Edge::Right,
        from: None,
        to: None,
        offset: None,
    }];

    let mut group = c.benchmark_group("ofd_seal");
    for (name, input) in &docs {
        let inflated = inflated(input);
        eprintln!(
            "{name}: {} bytes zipped, {inflated} bytes inflated",
            input.len()
        );
        group.throughput(Throughput::Bytes(inflated));
        let mut cases: Vec<(&str, &[Placement])> = vec![("at", &at), ("riding", &riding)];
        if *name != "gomain_999" {
            cases.push(("keyword", &keyword));
        }
        // The floor: open the package, inflate every member and hash it (References need it).
        group.bench_function(
            BenchmarkId::new(name.to_string(), "read+sm3_every_member"),
            |b| {
                b.iter(|| {
                    let mut p = Package::open(Cursor::new(input)).unwrap();
                    let names: Vec<String> = p.members().map(str::to_string).collect();
                    names
                        .iter()
                        .map(|n| sm3(&p.read(n).unwrap())[0])
                        .fold(0u8, |a, b| a ^ b)
                })
            },
        );
        for (what, placements) in cases {
            group.bench_function(BenchmarkId::new(format!("{name}/plan"), what), |b| {
                b.iter(|| plan(Cursor::new(input), placements, size, SealMode::Continue).unwrap())
            });
            group.bench_function(BenchmarkId::new(format!("{name}/plan+seal"), what), |b| {
                let mut out = Vec::with_capacity(input.len() + 64 * 1024);
                b.iter(|| {
                    let plan =
                        plan(Cursor::new(input), placements, size, SealMode::Continue).unwrap();
                    out.clear();
                    seal(
                        Cursor::new(input),
                        Cursor::new(&mut out),
                        &plan,
                        &options,
                        &signer,
                        when,
                    )
                    .unwrap()
                })
            });
        }
    }
    group.throughput(Throughput::Elements(1));
    // The signature alone, over a Signature.xml-sized input's hash, as `seal` makes it.
    let hash = data_digest(KeyAlgorithm::Sm2, &[0x3cu8; 4096]);
    group.bench_function("sign_only", |b| {
        b.iter(|| {
            signer
                .sign(when, &hash, "/Doc_0/Signs/Sign_0/Signature.xml", None)
                .unwrap()
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = quick();
    targets = bench_ofd_seal
}
criterion_main!(benches);
