//! The device layer against the real SoftHSM module, through cryptoki.

use std::sync::Arc;

use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::{Signature, VerifyingKey};
use seald::crypto::{KeyAlgorithm, PrehashSigner};
use seald::device::{
    certificate_der, DeviceError, FinalTry, KeySelector, Pin, TokenKey, TokenOwner, TriesLeft,
};
use seald_tests::logs;
use seald_tests::softhsm::{Curve, SoftHsm, TestToken, SO_PIN, USER_PIN};

fn owner(token: &TestToken) -> Arc<TokenOwner> {
    SoftHsm::shared()
        .devices
        .token(&token.serial)
        .expect("token owner")
}

fn pin(text: &str) -> Pin {
    Pin::new(text)
}

fn p256_key(label: &str) -> (TestToken, Arc<TokenOwner>, TokenKey) {
    let hsm = SoftHsm::shared();
    let token = hsm.new_token(label);
    hsm.generate_key(&token, b"seal-1", Curve::P256);
    let owner = owner(&token);
    let key = TokenKey::open(owner.clone(), KeySelector::Id(b"seal-1".to_vec())).expect("open key");
    (token, owner, key)
}

fn verify_p256(key: &TokenKey, digest: &[u8; 32], signature: &seald::crypto::RawSignature) {
    let verifying = VerifyingKey::from_sec1_bytes(&key.public_key().point).expect("SEC1 point");
    let signature = Signature::from_slice(&signature.0).expect("r||s");
    verifying
        .verify_prehash(digest, &signature)
        .expect("P-256 signature verifies");
}

#[test]
fn enumerates_tokens_by_serial_with_pin_flags() {
    let hsm = SoftHsm::shared();
    let token = hsm.new_token("enumerate");
    let reports = hsm.devices.scan();
    let module = reports
        .iter()
        .find(|m| m.name == "softhsm")
        .expect("module listed");
    assert!(module.error.is_none(), "{:?}", module.error);
    let info = module
        .tokens
        .iter()
        .find(|t| t.serial == token.serial)
        .expect("token listed by serial");
    assert_eq!(info.label, "enumerate");
    assert!(info.pin.login_required && info.pin.user_pin_initialized);
    assert!(!info.pin.locked && !info.pin.final_try);
    assert_eq!(info.pin.summary(), "ok");
    assert!(info.pin_length.0 >= 1 && info.pin_length.1 >= info.pin_length.0);
}

#[test]
fn absent_serial_is_token_not_present() {
    let err = SoftHsm::shared()
        .devices
        .token("NO-SUCH-SERIAL")
        .unwrap_err();
    assert!(
        matches!(err, DeviceError::TokenNotPresent { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("NO-SUCH-SERIAL") && err.to_string().contains("insert"));
}

#[test]
fn login_and_logout() {
    let token = SoftHsm::shared().new_token("login");
    let owner = owner(&token);
    assert!(!owner.logged_in().unwrap());
    owner
        .login(&pin(USER_PIN), FinalTry::Refuse)
        .expect("login");
    assert!(owner.logged_in().unwrap());
    let again = owner.login(&pin(USER_PIN), FinalTry::Refuse).unwrap_err();
    assert!(matches!(again, DeviceError::AlreadyLoggedIn), "{again:?}");
    owner.logout().unwrap();
    assert!(!owner.logged_in().unwrap());
    owner.logout().expect("a second logout is harmless");
}

#[test]
fn wrong_pin_is_pin_incorrect_and_count_low_shows() {
    let token = SoftHsm::shared().new_token("wrong-pin");
    let owner = owner(&token);
    let err = owner
        .login(&pin("not-the-pin"), FinalTry::Refuse)
        .unwrap_err();
    // SoftHSM sets CKF_USER_PIN_COUNT_LOW after a failure (it never locks; see firmware-notes).
    assert!(
        matches!(
            err,
            DeviceError::PinIncorrect {
                tries: TriesLeft::Few
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("few tries left"), "{err}");
    assert!(owner.info().unwrap().pin.count_low);
    assert!(!owner.logged_in().unwrap());
    owner
        .login(&pin(USER_PIN), FinalTry::Refuse)
        .expect("right PIN still works");
}

#[test]
fn pin_outside_length_limits_spends_no_try() {
    let token = SoftHsm::shared().new_token("pin-length");
    let owner = owner(&token);
    let err = owner.login(&pin("12"), FinalTry::Refuse).unwrap_err();
    assert!(matches!(err, DeviceError::PinLenRange { .. }), "{err:?}");
    assert!(!owner.info().unwrap().pin.count_low, "no try was spent");
}

#[test]
fn change_pin_old_fails_new_works() {
    let token = SoftHsm::shared().new_token("change-pin");
    let owner = owner(&token);
    owner
        .change_pin(&pin(USER_PIN), &pin("brand-new-PIN-1"))
        .expect("C_SetPIN");
    let err = owner.login(&pin(USER_PIN), FinalTry::Refuse).unwrap_err();
    assert!(matches!(err, DeviceError::PinIncorrect { .. }), "{err:?}");
    owner
        .login(&pin("brand-new-PIN-1"), FinalTry::Refuse)
        .expect("new PIN");
    owner.logout().unwrap();
    let err = owner
        .change_pin(&pin("wrong-old-pin"), &pin("another-PIN-2"))
        .unwrap_err();
    assert!(matches!(err, DeviceError::PinIncorrect { .. }), "{err:?}");
}

#[test]
fn security_officer_resets_the_user_pin() {
    let token = SoftHsm::shared().new_token("unblock");
    let owner = owner(&token);
    owner.login(&pin(USER_PIN), FinalTry::Refuse).unwrap();
    owner
        .unblock(&pin(SO_PIN), &pin("reset-by-SO-9"))
        .expect("SO login + C_InitPIN, even while the user was logged in");
    assert!(
        !owner.logged_in().unwrap(),
        "unblocking drops the user login"
    );
    assert!(owner.login(&pin(USER_PIN), FinalTry::Refuse).is_err());
    owner
        .login(&pin("reset-by-SO-9"), FinalTry::Refuse)
        .expect("new PIN");
    owner.logout().unwrap();
    let err = owner
        .unblock(&pin("wrong-so-pin"), &pin("whatever-123"))
        .unwrap_err();
    assert!(matches!(err, DeviceError::SoPinIncorrect { .. }), "{err:?}");
    assert!(
        err.to_string().contains("SO (security officer) PIN"),
        "{err}"
    );
}

#[test]
fn p256_signature_verifies_with_p256_crate() {
    let (_token, owner, key) = p256_key("p256-sign");
    assert_eq!(key.public_key().algorithm, KeyAlgorithm::P256);
    let digest = [0x5au8; 32];
    let err = key.sign(&digest).unwrap_err();
    assert!(matches!(err, DeviceError::UserNotLoggedIn), "{err:?}");
    assert!(err.to_string().contains("log in"), "{err}");

    owner.login(&pin(USER_PIN), FinalTry::Refuse).unwrap();
    let signature = key.sign_prehash(&digest).expect("sign");
    verify_p256(&key, &digest, &signature);
    let mut other = digest;
    other[0] ^= 1;
    let verifying = VerifyingKey::from_sec1_bytes(&key.public_key().point).unwrap();
    assert!(verifying
        .verify_prehash(&other, &Signature::from_slice(&signature.0).unwrap())
        .is_err());
}

#[test]
fn sm2_profile_on_softhsm_is_mechanism_invalid() {
    let hsm = SoftHsm::shared();
    let token = hsm.new_token("sm2-on-softhsm");
    hsm.generate_key(&token, b"sm2", Curve::Sm2);
    let owner = owner(&token);
    let key = TokenKey::open(owner.clone(), KeySelector::Id(b"sm2".to_vec())).expect("open");
    assert_eq!(key.public_key().algorithm, KeyAlgorithm::Sm2);
    owner.login(&pin(USER_PIN), FinalTry::Refuse).unwrap();
    let err = key.sign(&[1u8; 32]).unwrap_err();
    match &err {
        DeviceError::MechanismInvalid { mechanism, what } => {
            assert_eq!(*mechanism, 0x8000_8104, "the Sansec raw-sign code");
            assert_eq!(*what, "SM2 raw sign");
        }
        other => panic!("expected MechanismInvalid, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("0x80008104") && text.contains("profile"),
        "{text}"
    );
}

#[test]
fn two_sessions_sign_at_once() {
    let (_token, owner, key) = p256_key("two-sessions");
    assert_eq!(owner.capacity(), 2);
    owner.login(&pin(USER_PIN), FinalTry::Refuse).unwrap();
    let key = Arc::new(key);
    let threads: Vec<_> = (0..4u8)
        .map(|t| {
            let key = key.clone();
            std::thread::spawn(move || {
                for i in 0..10u8 {
                    let digest = [t.wrapping_mul(31).wrapping_add(i); 32];
                    let signature = key.sign(&digest).expect("concurrent sign");
                    verify_p256(&key, &digest, &signature);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("signing thread");
    }
    let info = SoftHsm::shared()
        .module()
        .context()
        .expect("PKCS#11 context")
        .get_token_info(
            SoftHsm::shared()
                .module()
                .find_slot(owner.serial())
                .unwrap(),
        )
        .unwrap();
    if let Some(count) = info.session_count() {
        assert!(
            count <= 2,
            "the pool never opens more than max_sessions ({count})"
        );
    }
}

#[test]
fn reset_drops_login_and_the_token_reopens() {
    let (_token, owner, key) = p256_key("reset");
    owner.login(&pin(USER_PIN), FinalTry::Refuse).unwrap();
    key.sign(&[7u8; 32]).expect("sign before");
    let generation = owner.generation();
    owner.reset();
    assert_eq!(owner.generation(), generation + 1);
    assert!(
        !owner.logged_in().unwrap(),
        "closing every session logs out"
    );
    let err = key.sign(&[7u8; 32]).unwrap_err();
    assert!(matches!(err, DeviceError::UserNotLoggedIn), "{err:?}");
    owner.login(&pin(USER_PIN), FinalTry::Refuse).unwrap();
    key.sign(&[7u8; 32]).expect("signs again after a new login");
}

#[test]
fn reads_certificate_by_id() {
    let hsm = SoftHsm::shared();
    let token = hsm.new_token("certificate");
    let der = b"\x30\x03\x02\x01\x05".to_vec();
    hsm.import_certificate(&token, b"cert-id", &der);
    let owner = owner(&token);
    let read = certificate_der(&owner, &KeySelector::Id(b"cert-id".to_vec())).unwrap();
    assert_eq!(read, der);
    let err = certificate_der(&owner, &KeySelector::Label("absent".into())).unwrap_err();
    assert!(matches!(err, DeviceError::ObjectNotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("label `absent`"), "{err}");
}

#[test]
fn pins_never_reach_output_or_logs() {
    let hsm = SoftHsm::shared();
    let token = hsm.new_token("no-pin-leak");
    let owner = owner(&token);
    let wrong = "leak-canary-0451";
    let new = "leak-canary-new-8812";
    let ((), logs) = logs::capture(|| {
        let err = owner.login(&pin(wrong), FinalTry::Refuse).unwrap_err();
        assert!(!format!("{err} {err:?}").contains(wrong));
        owner.login(&pin(USER_PIN), FinalTry::Refuse).unwrap();
        owner.logout().unwrap();
        owner.change_pin(&pin(USER_PIN), &pin(new)).unwrap();
        owner.unblock(&pin(SO_PIN), &pin(USER_PIN)).unwrap();
    });
    assert!(
        logs.contains("login"),
        "the capture saw the device log lines: {logs}"
    );
    for secret in [wrong, new, USER_PIN, SO_PIN] {
        assert!(!logs.contains(secret), "a PIN reached the logs");
        assert_eq!(format!("{:?} {}", pin(secret), pin(secret)), "Pin(***) ***");
    }
}
