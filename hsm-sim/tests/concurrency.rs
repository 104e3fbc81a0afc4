//! Device models: a cipher machine signs in parallel, a UKey one operation at a time.

mod common;
use common::*;
use std::time::{Duration, Instant};

const MSG: &[u8] = b"parallel";

/// Signs `per_thread` times from each of `threads` sessions; returns the wall time.
fn sign_from_threads(env: &Env, threads: usize, per_thread: usize) -> Duration {
    let slot = env.init_token(0, "dev");
    let login = env.user_session(slot);
    let (pubk, privk) = keygen(&login, "sansec", b"k");
    let pt = point(&login, pubk);
    let start = Instant::now();
    std::thread::scope(|sc| {
        for _ in 0..threads {
            let p11 = env.p11().clone();
            let pt = pt.clone();
            sc.spawn(move || {
                // Login is per token per process: this session is already logged in.
                let s = p11.open_rw_session(slot).unwrap();
                for _ in 0..per_thread {
                    let sig = s.sign(&mech(0x8000_8100), privk, MSG).unwrap();
                    assert!(sm2_verify_msg(&pt, MSG, &rs_of(&sig)));
                }
            });
        }
    });
    start.elapsed()
}

#[test]
fn cipher_machine_signs_in_parallel() {
    let env = Env::new("model = \"cipher-machine\"\nparallel = 4\nsign_latency_ms = 100");
    let t = sign_from_threads(&env, 8, 2);
    // 16 signatures × 100 ms: at least 400 ms on 4 engines, and a serial device can never take
    // less than 1.6 s, so anything below that proves operations overlapped.
    assert!(
        t >= Duration::from_millis(390),
        "{t:?}: faster than 4 engines allow"
    );
    assert!(t < Duration::from_millis(1600), "{t:?}: not parallel");
}

#[test]
fn ukey_does_one_operation_at_a_time() {
    let env = Env::new("model = \"ukey\"\nsign_latency_ms = 80");
    let t = sign_from_threads(&env, 4, 2);
    // 8 signatures × 80 ms, one at a time.
    assert!(
        t >= Duration::from_millis(640),
        "{t:?}: a UKey cannot sign in parallel"
    );
}
