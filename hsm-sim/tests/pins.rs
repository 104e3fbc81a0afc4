//! PIN semantics of a real UKey: retry counters and flags, lockout, SO unblock, PIN change,
//! length limits, and login state per token per process.

mod common;
use common::*;
use cryptoki::error::RvError;
use cryptoki::object::ObjectClass;
use cryptoki::session::{SessionState, UserType};

const MSG: &[u8] = b"pin tests";

#[test]
fn user_pin_locks_after_limit_then_so_unblocks() {
    let env = Env::new("user_pin_max_tries = 3\nso_pin_max_tries = 2");
    let slot = env.init_token(0, "pins");
    {
        let s = env.user_session(slot);
        keygen(&s, "sansec", b"k1");
    }
    let s = env.p11().open_rw_session(slot).unwrap();
    let info = || env.p11().get_token_info(slot).unwrap();

    assert_eq!(
        rv(s.login(UserType::User, Some(&pin("000000"))).unwrap_err()),
        RvError::PinIncorrect
    );
    assert!(
        info().user_pin_count_low() && !info().user_pin_final_try() && !info().user_pin_locked()
    );
    // Counts persist across processes: the CLI (another process) fails once more.
    let out = env.cli(
        &["keygen", "--serial", SERIAL0, "--id", "99", "--label", "x"],
        "111111\n",
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("wrong PIN"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        info().user_pin_final_try(),
        "the second failure happened in another process"
    );
    assert_eq!(
        rv(s.login(UserType::User, Some(&pin("000000"))).unwrap_err()),
        RvError::PinLocked
    );
    assert!(info().user_pin_locked());
    // Locked: even the right PIN is refused, and the CLI sees the lock too.
    assert_eq!(
        rv(s.login(UserType::User, Some(&pin(USER_PIN))).unwrap_err()),
        RvError::PinLocked
    );
    assert!(env.cli_ok(&["list"], "").contains("user_fails 3"));

    // The SO unblocks with C_InitPIN; the key made before still signs.
    s.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
    s.init_pin(&pin("24682468")).unwrap();
    s.logout().unwrap();
    assert!(!info().user_pin_locked() && !info().user_pin_count_low());
    s.login(UserType::User, Some(&pin("24682468"))).unwrap();
    let k = find(&s, ObjectClass::PRIVATE_KEY, b"k1")[0];
    let p = point(&s, find(&s, ObjectClass::PUBLIC_KEY, b"k1")[0]);
    let sig = s.sign(&mech(0x8000_8100), k, MSG).unwrap();
    assert!(sm2_verify_msg(&p, MSG, &rs_of(&sig)));
}

#[test]
fn default_limit_is_six_and_so_pin_locks_too() {
    let env = Env::new("so_pin_max_tries = 2");
    let slot = env.init_token(0, "six");
    let s = env.p11().open_rw_session(slot).unwrap();
    for i in 1..=5 {
        assert_eq!(
            rv(s.login(UserType::User, Some(&pin("999999"))).unwrap_err()),
            RvError::PinIncorrect,
            "try {i}"
        );
    }
    assert!(env.p11().get_token_info(slot).unwrap().user_pin_final_try());
    assert_eq!(
        rv(s.login(UserType::User, Some(&pin("999999"))).unwrap_err()),
        RvError::PinLocked
    );

    assert_eq!(
        rv(s.login(UserType::So, Some(&pin("11111111"))).unwrap_err()),
        RvError::PinIncorrect
    );
    let t = env.p11().get_token_info(slot).unwrap();
    assert!(t.so_pin_count_low() && t.so_pin_final_try());
    assert_eq!(
        rv(s.login(UserType::So, Some(&pin("11111111"))).unwrap_err()),
        RvError::PinLocked
    );
    assert!(env.p11().get_token_info(slot).unwrap().so_pin_locked());
    assert_eq!(
        rv(s.login(UserType::So, Some(&pin(SO_PIN))).unwrap_err()),
        RvError::PinLocked
    );
}

#[test]
fn set_pin_rewraps_and_keys_still_sign() {
    let env = Env::new("min_pin_len = 6\nmax_pin_len = 12");
    let slot = env.init_token(0, "setpin");
    let t = env.p11().get_token_info(slot).unwrap();
    assert_eq!((t.min_pin_length(), t.max_pin_length()), (6, 12));
    let s = env.user_session(slot);
    let (pubk, privk) = keygen(&s, "sansec", b"k");
    let p = point(&s, pubk);
    assert_eq!(
        rv(s.set_pin(&pin(USER_PIN), &pin("12345")).unwrap_err()),
        RvError::PinLenRange
    );
    assert_eq!(
        rv(s.set_pin(&pin(USER_PIN), &pin("1234567890123"))
            .unwrap_err()),
        RvError::PinLenRange
    );
    s.set_pin(&pin(USER_PIN), &pin("abcdef")).unwrap();
    s.logout().unwrap();
    assert_eq!(
        rv(s.login(UserType::User, Some(&pin(USER_PIN))).unwrap_err()),
        RvError::PinIncorrect
    );
    s.login(UserType::User, Some(&pin("abcdef"))).unwrap();
    let sig = s.sign(&mech(0x8000_8100), privk, MSG).unwrap();
    assert!(sm2_verify_msg(&p, MSG, &rs_of(&sig)));
    s.logout().unwrap();

    // The SO changes its own PIN; the new one unblocks.
    s.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
    s.set_pin(&pin(SO_PIN), &pin("so-secret")).unwrap();
    s.logout().unwrap();
    assert_eq!(
        rv(s.login(UserType::So, Some(&pin(SO_PIN))).unwrap_err()),
        RvError::PinIncorrect
    );
    s.login(UserType::So, Some(&pin("so-secret"))).unwrap();
    s.init_pin(&pin("newuser1")).unwrap();
    s.logout().unwrap();
    s.login(UserType::User, Some(&pin("newuser1"))).unwrap();
    let sig = s.sign(&mech(0x8000_8100), privk, MSG).unwrap();
    assert!(sm2_verify_msg(&p, MSG, &rs_of(&sig)));

    // The PIN never reaches the store in the clear.
    let state = std::fs::read(env.dir.path().join("tokens/slot-0/state.json")).unwrap();
    for secret in ["newuser1", "so-secret", "abcdef"] {
        assert!(
            !state.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} stored in the clear"
        );
    }
    drop(s);
    // C_InitToken with an out-of-range SO PIN.
    let slot1 = env.slot(1);
    assert_eq!(
        rv(env.p11().init_token(slot1, &pin("123"), "x").unwrap_err()),
        RvError::PinLenRange
    );
}

#[test]
fn login_state_is_per_token_per_process() {
    let env = Env::new("");
    let slot = env.init_token(0, "login");
    let a = env.p11().open_rw_session(slot).unwrap();
    let b = env.p11().open_rw_session(slot).unwrap();
    let (_, privk) = {
        a.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        let k = keygen(&a, "sansec", b"k");
        a.logout().unwrap();
        k
    };
    // Private objects are hidden and unusable before login.
    assert!(find(&b, ObjectClass::PRIVATE_KEY, b"k").is_empty());
    assert_eq!(find(&b, ObjectClass::PUBLIC_KEY, b"k").len(), 1);
    assert_eq!(
        rv(b.sign(&mech(0x8000_8100), privk, MSG).unwrap_err()),
        RvError::UserNotLoggedIn
    );

    a.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    // The other session shares the login; a second C_Login is refused.
    assert_eq!(
        b.get_session_info().unwrap().session_state(),
        SessionState::RwUser
    );
    assert_eq!(
        rv(b.login(UserType::User, Some(&pin(USER_PIN))).unwrap_err()),
        RvError::UserAlreadyLoggedIn
    );
    assert_eq!(
        rv(b.login(UserType::So, Some(&pin(SO_PIN))).unwrap_err()),
        RvError::UserAnotherAlreadyLoggedIn
    );
    assert_eq!(find(&b, ObjectClass::PRIVATE_KEY, b"k").len(), 1);
    b.sign(&mech(0x8000_8100), privk, MSG).unwrap();
    b.logout().unwrap();
    assert_eq!(rv(a.logout().unwrap_err()), RvError::UserNotLoggedIn);
    assert_eq!(
        a.get_session_info().unwrap().session_state(),
        SessionState::RwPublic
    );

    // SO login is refused while a read-only session exists.
    let ro = env.p11().open_ro_session(slot).unwrap();
    assert_eq!(
        ro.get_session_info().unwrap().session_state(),
        SessionState::RoPublic
    );
    assert_eq!(
        rv(a.login(UserType::So, Some(&pin(SO_PIN))).unwrap_err()),
        RvError::SessionReadOnlyExists
    );
    drop(ro);
    a.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
    assert_eq!(
        rv(env.p11().open_ro_session(slot).unwrap_err()),
        RvError::SessionReadWriteSoExists
    );
    // C_InitToken is refused while sessions are open.
    assert_eq!(
        rv(env
            .p11()
            .init_token(slot, &pin(SO_PIN), "again")
            .unwrap_err()),
        RvError::SessionExists
    );
}
