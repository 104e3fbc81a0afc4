//! SM3, SM2 (and P-256) sign and verify, Z and e: the software crypto of one stamp.
//!
//! `cargo bench -p seald --bench crypto`. Compare with `scripts/bench-openssl.sh`.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use seald::crypto::soft::SoftSigner;
use seald::crypto::{
    e_digest, sm3, z_a, KeyAlgorithm, PrehashSigner, VerifyingKey, DEFAULT_USER_ID,
};

/// Short runs: the whole `cargo bench` should take a few minutes.
fn quick() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
}

fn bench_sm3(c: &mut Criterion) {
    let mut group = c.benchmark_group("sm3");
    for size in [64usize, 16 * 1024, 1024 * 1024] {
        let data = vec![0x5au8; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &data, |b, data| {
            b.iter(|| sm3(std::hint::black_box(data)))
        });
    }
    group.finish();
}

fn bench_z_e(c: &mut Criterion) {
    let signer = SoftSigner::from_seed(KeyAlgorithm::Sm2, 9);
    let point = signer.public_key().point;
    let z = z_a(&point, DEFAULT_USER_ID).unwrap();
    let tbs = vec![0x30u8; 2048]; // about the size of a TBS_Sign with its seal
    let mut group = c.benchmark_group("sm2");
    group.bench_function("z", |b| {
        b.iter(|| z_a(std::hint::black_box(&point), DEFAULT_USER_ID).unwrap())
    });
    group.bench_function("e_2KiB", |b| {
        b.iter(|| e_digest(&z, std::hint::black_box(&tbs)))
    });
    group.finish();
}

/// Sign and verify for both curves; `verify_msg` is what `openssl speed` times (e from a
/// 20-byte message, then verify), with our Z and the key's table cached per key.
fn bench_sign_verify(c: &mut Criterion) {
    for (name, alg) in [("sm2", KeyAlgorithm::Sm2), ("p256", KeyAlgorithm::P256)] {
        let signer = SoftSigner::from_seed(alg, 9);
        let vk = VerifyingKey::cached(signer.public_key()).unwrap();
        let message = [0x42u8; 20];
        let digest = vk.message_digest(&message);
        let sig = signer.sign_prehash(&digest).unwrap();
        let mut group = c.benchmark_group(name);
        group.bench_function("sign_prehash", |b| {
            b.iter(|| signer.sign_prehash(std::hint::black_box(&digest)).unwrap())
        });
        group.bench_function("verify_prehash", |b| {
            b.iter(|| {
                vk.verify_digest(std::hint::black_box(&digest), &sig)
                    .unwrap()
            })
        });
        // The crates' generic verification, and ours for a key without its table.
        group.bench_function("verify_prehash_reference", |b| {
            b.iter(|| {
                vk.verify_digest_reference(std::hint::black_box(&digest), &sig)
                    .unwrap()
            })
        });
        let untabled = VerifyingKey::new(signer.public_key()).unwrap();
        group.bench_function("verify_prehash_no_key_table", |b| {
            b.iter(|| {
                untabled
                    .verify_digest(std::hint::black_box(&digest), &sig)
                    .unwrap()
            })
        });
        group.bench_function("key_table", |b| {
            b.iter(|| {
                VerifyingKey::new(std::hint::black_box(signer.public_key()))
                    .unwrap()
                    .with_table()
            })
        });
        group.bench_function("verify_msg", |b| {
            b.iter(|| {
                VerifyingKey::cached(signer.public_key())
                    .unwrap()
                    .verify(std::hint::black_box(&message), &sig)
                    .unwrap()
            })
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = quick();
    targets = bench_sm3, bench_z_e, bench_sign_verify
}
criterion_main!(benches);
