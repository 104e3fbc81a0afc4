//! SES_Signature (GB/T 38540 v4) build, parse and full verification.
//!
//! `cargo bench -p seald --bench ses`. Build = TBS_Sign encoding + e + software sign + the
//! verify-before-use check + re-parse; with a device the sign step is the token's instead.

use std::path::PathBuf;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use seald::cert::testing::{parties, sample_seal_info, Parties};
use seald::cert::{Certificate, TrustStore};
use seald::crypto::{data_digest, KeyAlgorithm};
use seald::ses::{
    build_seal, build_signature, verify_der, Document, SealInfo, SesSignature, SignRequest,
    VerifyOptions,
};
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

/// A third-party file from the shared fixtures, if present (`$SEALD_FIXTURES` or
/// `shared/fixtures` above this crate).
fn fixture(rel: &str) -> Option<Vec<u8>> {
    let dir = std::env::var_os("SEALD_FIXTURES")
        .map(PathBuf::from)
        .or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .ancestors()
                .map(|d| d.join("shared/fixtures"))
                .find(|d| d.is_dir())
        })?;
    std::fs::read(dir.join(rel)).ok()
}

fn bench_ses(c: &mut Criterion) {
    let p = parties(KeyAlgorithm::Sm2);
    let seal = build_seal(&seal_info(&p), &p.maker_cert, &p.maker).unwrap();
    let document = vec![0x77u8; 4096];
    let hash = data_digest(KeyAlgorithm::Sm2, &document);
    let request = SignRequest {
        seal: &seal,
        time_info: datetime!(2025-06-01 08:00:00 UTC),
        data_hash: &hash,
        property_info: "/Doc_0/Signs/Sign_0/Signature.xml",
        ext_datas: None,
        signer_cert: &p.signer_cert,
    };
    let built = build_signature(&request, &p.signer).unwrap();
    let roots = TrustStore::new(vec![Certificate::from_der(&p.root_cert).unwrap()]);

    c.bench_function("ses/build_signature_sm2", |b| {
        b.iter(|| build_signature(&request, &p.signer).unwrap())
    });
    c.bench_function("ses/parse_ours", |b| {
        b.iter(|| SesSignature::parse(std::hint::black_box(&built.der)).unwrap())
    });
    c.bench_function("ses/verify_der_ours", |b| {
        let options = VerifyOptions {
            document: Document::Digest(&hash),
            trust: Some(&roots),
            at: None,
            tsa_trust: None,
            revocation: None,
        };
        b.iter(|| {
            let report = verify_der(&built.der, &options).unwrap();
            assert!(report.valid);
        })
    });
    if let Some(der) = fixture("ses/signed-value-v4.dat") {
        c.bench_function("ses/parse_fixture_v4", |b| {
            b.iter(|| SesSignature::parse(std::hint::black_box(&der)).unwrap())
        });
        c.bench_function("ses/verify_der_fixture_v4", |b| {
            let options = VerifyOptions::default();
            b.iter(|| verify_der(&der, &options).unwrap())
        });
    }
}

criterion_group! {
    name = benches;
    config = quick();
    targets = bench_ses
}
criterion_main!(benches);
