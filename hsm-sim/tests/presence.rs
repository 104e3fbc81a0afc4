//! Persistence across processes and presence control (eject/insert from the CLI).

mod common;
use common::*;
use cryptoki::error::RvError;
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::UserType;

const MSG: &[u8] = b"persist";

#[test]
fn cli_provisioned_token_is_seen_by_the_module_and_back() {
    let mut env = Env::new("profile = \"tass\"");
    // Another process initializes slot 1 and makes a key.
    let serial = env.cli_ok(
        &["init-token", "--slot", "1", "--label", "from-cli"],
        &format!("{SO_PIN}\n{USER_PIN}\n"),
    );
    assert_eq!(serial.trim(), SERIAL1);
    let pt_hex = env.cli_ok(
        &[
            "keygen", "--serial", SERIAL1, "--id", "c0ffee", "--label", "cli-key",
        ],
        &format!("{USER_PIN}\n"),
    );
    let slot = env.slot(1);
    let t = env.p11().get_token_info(slot).unwrap();
    assert_eq!(t.label(), "from-cli");
    assert_eq!(t.serial_number(), SERIAL1);
    assert!(t.user_pin_initialized() && t.token_initialized());

    let s = env.user_session(slot);
    let k = find(&s, ObjectClass::PRIVATE_KEY, &[0xc0, 0xff, 0xee]);
    let p = find(&s, ObjectClass::PUBLIC_KEY, &[0xc0, 0xff, 0xee]);
    assert_eq!((k.len(), p.len()), (1, 1));
    assert_eq!(hex::encode(point(&s, p[0])), pt_hex.trim());
    let sig = s.sign(&mech(codes("tass").3), k[0], MSG).unwrap();
    assert!(sm2_verify_msg(
        &hex::decode(pt_hex.trim()).unwrap(),
        MSG,
        &rs_of(&sig)
    ));

    // A key the module makes is listed by the CLI, and survives a module restart.
    let (_, k2) = keygen(&s, "tass", b"mod");
    s.update_attributes(k2, &[Attribute::Label(b"renamed".to_vec())])
        .unwrap();
    drop(s);
    let listed = env.cli_ok(&["list"], "");
    assert!(
        listed.contains("id=6d6f64") && listed.contains("renamed"),
        "{listed}"
    );
    env.restart();
    let s = env.user_session(env.slot(1));
    let k2 = find(&s, ObjectClass::PRIVATE_KEY, b"mod");
    assert_eq!(k2.len(), 1);
    s.sign(&mech(codes("tass").3), k2[0], MSG).unwrap();
    s.destroy_object(k2[0]).unwrap();
    assert!(find(&s, ObjectClass::PRIVATE_KEY, b"mod").is_empty());
    assert!(!env.cli_ok(&["list"], "").contains("renamed"));

    // Private keys are encrypted at rest: no private scalar in the clear.
    let d =
        hex::decode("3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8").unwrap();
    let mut tmpl = vec![
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::KeyType(cryptoki::object::KeyType::new_vendor_defined(0x8000_0004).unwrap()),
        Attribute::Token(true),
        Attribute::EcParams(vec![
            0x06, 0x08, 0x2A, 0x81, 0x1C, 0xCF, 0x55, 0x01, 0x82, 0x2D,
        ]),
    ];
    tmpl.push(Attribute::Value(d.clone()));
    s.create_object(&tmpl).unwrap();
    let state = std::fs::read(env.dir.path().join("tokens/slot-1/state.json")).unwrap();
    let as_json: String = d
        .iter()
        .map(|b| b.to_string())
        .collect::<Vec<_>>()
        .join(",");
    assert!(!String::from_utf8_lossy(&state).contains(&as_json));
    assert!(!state.windows(d.len()).any(|w| w == d.as_slice()));
}

#[test]
fn eject_and_insert_from_outside() {
    let env = Env::new("");
    let slot = env.init_token(0, "plug");
    let s = env.user_session(slot);
    let (_, k) = keygen(&s, "sansec", b"k");
    s.sign(&mech(0x8000_8100), k, MSG).unwrap();
    assert_eq!(env.p11().get_slots_with_token().unwrap().len(), 4);

    env.cli_ok(&["eject", SERIAL0], "");
    assert_eq!(
        rv(s.sign(&mech(0x8000_8100), k, MSG).unwrap_err()),
        RvError::DeviceRemoved
    );
    assert!(!env.p11().get_slot_info(slot).unwrap().token_present());
    assert_eq!(
        rv(env.p11().get_token_info(slot).unwrap_err()),
        RvError::TokenNotPresent
    );
    assert_eq!(
        rv(env.p11().open_rw_session(slot).unwrap_err()),
        RvError::TokenNotPresent
    );
    let present = env.p11().get_slots_with_token().unwrap();
    assert_eq!(present.len(), 3);
    assert!(!present.contains(&slot));
    assert_eq!(env.p11().get_all_slots().unwrap().len(), 4);
    assert!(env.cli_ok(&["list"], "").contains("EJECTED"));

    env.cli_ok(&["insert", SERIAL0], "");
    assert!(env.p11().get_slot_info(slot).unwrap().token_present());
    // The old session stays dead, and the login went with the replug.
    let e = rv(s.sign(&mech(0x8000_8100), k, MSG).unwrap_err());
    assert!(
        matches!(e, RvError::SessionHandleInvalid | RvError::DeviceRemoved),
        "{e:?}"
    );
    let s2 = env.p11().open_rw_session(slot).unwrap();
    assert_eq!(
        rv(s2.sign(&mech(0x8000_8100), k, MSG).unwrap_err()),
        RvError::UserNotLoggedIn
    );
    s2.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    s2.sign(&mech(0x8000_8100), k, MSG).unwrap();
    // Token identity is the serial, stable across the replug.
    assert_eq!(
        env.p11().get_token_info(slot).unwrap().serial_number(),
        SERIAL0
    );
}
