//! Device-layer scenarios on an SM2 token (hsm-sim), shared by one test binary per vendor profile.

use std::sync::Arc;

use seald::crypto::{KeyAlgorithm, PrehashSigner, RawSignature};
use seald::device::{DeviceError, FinalTry, KeySelector, Pin, TokenKey, TokenOwner, TriesLeft};
use seald_tests::hsmsim::{HsmSim, SO_PIN, USER_PIN};
use seald_tests::softhsm::TestToken;
use sm2::dsa::signature::hazmat::PrehashVerifier;
use sm2::dsa::{Signature, VerifyingKey};

fn pin(text: &str) -> Pin {
    Pin::new(text)
}

fn key_on_new_token(sim: &HsmSim, label: &str) -> (TestToken, Arc<TokenOwner>, TokenKey) {
    let token = sim.new_token(label);
    sim.keygen(&token, b"seal");
    let owner = sim.devices.token(&token.serial).expect("owner");
    let key = TokenKey::open(owner.clone(), KeySelector::Id(b"seal".to_vec())).expect("open key");
    (token, owner, key)
}

fn assert_sm2_valid(key: &TokenKey, e: &[u8; 32], signature: &RawSignature) {
    let verifying = VerifyingKey::from_sec1_bytes("1234567812345678", &key.public_key().point)
        .expect("SM2 point");
    let signature = Signature::from_slice(&signature.0).expect("r||s");
    verifying
        .verify_prehash(e, &signature)
        .expect("the device's SM2 signature verifies over e");
}

/// A key opens before login, refuses to sign until login, then signs valid SM2.
pub fn sm2_signature_verifies(sim: &HsmSim) {
    let (_token, owner, key) = key_on_new_token(sim, "sm2-sign");
    assert_eq!(key.public_key().algorithm, KeyAlgorithm::Sm2);
    let e = [0x42u8; 32];
    let err = key.sign(&e).unwrap_err();
    assert!(matches!(err, DeviceError::UserNotLoggedIn), "{err:?}");
    owner.login(&pin(USER_PIN), FinalTry::Refuse).unwrap();
    let signature = key.sign_prehash(&e).expect("sign");
    assert_sm2_valid(&key, &e, &signature);
    let mut other = e;
    other[31] ^= 1;
    let verifying =
        VerifyingKey::from_sec1_bytes("1234567812345678", &key.public_key().point).unwrap();
    assert!(verifying
        .verify_prehash(&other, &Signature::from_slice(&signature.0).unwrap())
        .is_err());
}

/// Wrong PINs count down, the last try needs confirmation, then the PIN locks until the SO
/// unblocks it.
pub fn lockout_then_unblock(sim: &HsmSim, max_tries: usize) {
    let token = sim.new_token("lockout");
    let owner = sim.devices.token(&token.serial).unwrap();
    for attempt in 1..max_tries {
        let err = owner
            .login(&pin("wrong-pin-0"), FinalTry::Refuse)
            .unwrap_err();
        let expected = if attempt + 1 == max_tries {
            TriesLeft::One
        } else {
            TriesLeft::Few
        };
        match err {
            DeviceError::PinIncorrect { tries } => assert_eq!(tries, expected, "attempt {attempt}"),
            other => panic!("attempt {attempt}: {other:?}"),
        }
    }
    assert!(owner.info().unwrap().pin.final_try);
    let err = owner
        .login(&pin("wrong-pin-0"), FinalTry::Refuse)
        .unwrap_err();
    assert!(matches!(err, DeviceError::FinalTryNotConfirmed), "{err:?}");
    assert!(owner.info().unwrap().pin.final_try, "refusing spent no try");

    let err = owner
        .login(&pin("wrong-pin-0"), FinalTry::Confirmed)
        .unwrap_err();
    assert!(matches!(err, DeviceError::PinLocked), "{err:?}");
    assert!(err.to_string().contains("unblock"), "{err}");
    let err = owner
        .login(&pin(USER_PIN), FinalTry::Confirmed)
        .unwrap_err();
    assert!(
        matches!(err, DeviceError::PinLocked),
        "the right PIN is refused too: {err:?}"
    );
    assert_eq!(owner.info().unwrap().pin.summary(), "locked");

    owner
        .unblock(&pin(SO_PIN), &pin("after-unblock-1"))
        .unwrap();
    let info = owner.info().unwrap();
    assert!(!info.pin.locked && !info.pin.final_try);
    owner
        .login(&pin("after-unblock-1"), FinalTry::Refuse)
        .unwrap();
}

/// Unplugging drops sessions and login; the token opens again when reinserted, login required.
pub fn eject_and_reinsert(sim: &HsmSim) {
    let (token, owner, key) = key_on_new_token(sim, "eject");
    owner.login(&pin(USER_PIN), FinalTry::Refuse).unwrap();
    let e = [9u8; 32];
    key.sign(&e).expect("sign while present");
    let generation = owner.generation();

    sim.eject(&token);
    let err = key.sign(&e).unwrap_err();
    assert!(err.is_removal(), "{err:?}");
    assert!(
        matches!(
            err,
            DeviceError::DeviceRemoved | DeviceError::TokenNotPresent { .. }
        ),
        "{err:?}"
    );
    assert!(
        owner.generation() > generation,
        "the owner dropped its sessions"
    );
    let err = owner.info().unwrap_err();
    assert!(
        matches!(err, DeviceError::TokenNotPresent { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains(&token.serial) && err.to_string().contains("insert"));
    assert!(!sim.devices.scan()[0]
        .tokens
        .iter()
        .any(|t| t.serial == token.serial));

    sim.insert(&token);
    let err = key.sign(&e).unwrap_err();
    assert!(
        matches!(err, DeviceError::UserNotLoggedIn),
        "a replugged token needs a new login: {err:?}"
    );
    owner.login(&pin(USER_PIN), FinalTry::Refuse).unwrap();
    let signature = key.sign(&e).expect("signs after reinsertion and login");
    assert_sm2_valid(&key, &e, &signature);
}

/// Several threads sign through the owner's pool; every signature is valid.
pub fn concurrent_signatures(sim: &HsmSim) {
    let (_token, owner, key) = key_on_new_token(sim, "concurrent");
    owner.login(&pin(USER_PIN), FinalTry::Refuse).unwrap();
    let key = Arc::new(key);
    std::thread::scope(|scope| {
        for t in 0..4u8 {
            let key = key.clone();
            scope.spawn(move || {
                for i in 0..5u8 {
                    let e = [t * 16 + i; 32];
                    let signature = key.sign(&e).expect("sign");
                    assert_sm2_valid(&key, &e, &signature);
                }
            });
        }
    });
}

/// The stamp worker's open keys: one lookup per login of the token, a fresh one after the
/// token was pulled and put back, or after the daemon forgot them (login, logout, failure).
pub fn signing_keys_stay_open_for_one_login(sim: &HsmSim) {
    use seald::runtime::SigningKeys;

    let (token, owner, _) = key_on_new_token(sim, "open-keys");
    owner.login(&pin(USER_PIN), FinalTry::Refuse).unwrap();
    let keys = SigningKeys::default();
    let first = keys.get(&owner, b"seal").expect("open");
    let again = keys.get(&owner, b"seal").expect("open again");
    assert!(Arc::ptr_eq(&first, &again), "kept open between stamps");
    let e = [3u8; 32];
    assert_sm2_valid(&again, &e, &again.sign(&e).unwrap());

    keys.forget(&token.serial);
    let after_forget = keys.get(&owner, b"seal").unwrap();
    assert!(
        !Arc::ptr_eq(&first, &after_forget),
        "forgotten keys are looked up again"
    );

    sim.eject(&token);
    assert!(after_forget.sign(&e).unwrap_err().is_removal());
    sim.insert(&token);
    owner.login(&pin(USER_PIN), FinalTry::Refuse).unwrap();
    let replugged = keys.get(&owner, b"seal").unwrap();
    assert!(
        !Arc::ptr_eq(&after_forget, &replugged),
        "a replugged token's keys are looked up again"
    );
    assert_sm2_valid(&replugged, &e, &replugged.sign(&e).unwrap());
    assert!(
        keys.get(&owner, b"missing").is_err(),
        "a key the token lacks is an error, not a cached miss"
    );
}
