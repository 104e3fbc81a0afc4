//! Runs N software verifies with one cached key, for instruction counts under callgrind:
//!
//! `cargo build -p seald --release --example verify_loop`, then
//! `valgrind --tool=callgrind target/release/examples/verify_loop sm2 1000` (and with 0:
//! the difference over 1000 is the cost of one verify).

use seald::crypto::soft::SoftSigner;
use seald::crypto::{KeyAlgorithm, PrehashSigner, VerifyingKey};

fn main() {
    let mut args = std::env::args().skip(1);
    let alg = match args.next().as_deref() {
        Some("p256") => KeyAlgorithm::P256,
        _ => KeyAlgorithm::Sm2,
    };
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let signer = SoftSigner::from_seed(alg, 9);
    let vk = VerifyingKey::cached(signer.public_key()).unwrap();
    let digest = vk.message_digest(&[0x42u8; 20]);
    let sig = signer.sign_prehash(&digest).unwrap();
    // Warm up: the generator's table, then the key's (built after a few verifications).
    for _ in 0..40 {
        vk.verify_digest(&digest, &sig).unwrap();
    }
    assert!(vk.has_table());
    for _ in 0..n {
        vk.verify_digest(std::hint::black_box(&digest), std::hint::black_box(&sig))
            .unwrap();
    }
    println!("{alg:?}: {n} verifies");
}
