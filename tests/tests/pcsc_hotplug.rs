//! UKey hot-plug on a real pcscd with the vpcd driver: `hsm-sim vcard` is the card, the daemon's
//! PC/SC watcher sees it, maps it through the ATR table and resets the token's owner on removal.
//! Needs pcscd running (`scripts/pcscd.sh start`; scripts/test.sh does it).

use std::process::Command;
use std::time::Duration;

use seald::config::Config;
use seald::crypto::PrehashSigner;
use seald::device::pcsc::{DeviceEvent, PcscStatus, Watcher, WatcherOptions};
use seald::device::{
    DeviceError, DeviceModel, FinalTry, KeySelector, Pin, ProfileSetting, TokenKey,
};
use seald_tests::bins::bin;
use seald_tests::hsmsim::{HsmSim, USER_PIN};
use seald_tests::pcsc::{
    reader_lock, require_pcscd, wait_for, wait_until, VCard, PORT, READER, VCARD_ATR,
    VCARD_ATR_TOML,
};
use sm2::dsa::signature::hazmat::PrehashVerifier;
use sm2::dsa::{Signature, VerifyingKey};

fn sim() -> &'static HsmSim {
    HsmSim::shared(
        "profile = \"sansec\"\nsignature_encoding = \"raw\"\nmodel = \"ukey\"\n",
        ProfileSetting::Named("sansec".into()),
        DeviceModel::Ukey,
    )
}

/// A watcher over the simulator with the vcard's ATR entry, once pcscd answers.
fn watcher(sim: &HsmSim) -> Watcher {
    let config = Config::parse(&format!(
        "[[module]]\nname = \"hsm-sim\"\npath = \"{}\"\n{VCARD_ATR_TOML}",
        sim.module_path().display()
    ))
    .expect("config");
    let options = WatcherOptions {
        debounce: Duration::from_millis(100),
        retry: Duration::from_millis(200),
    };
    let watcher = Watcher::start(sim.devices.clone(), config.atr_table().unwrap(), options)
        .expect("watcher thread");
    wait_until(
        "the watcher reaches pcscd and lists the vpcd reader",
        || {
            let report = watcher.report();
            report.status == PcscStatus::Available
                && report.readers.iter().any(|r| r.reader == READER)
        },
    );
    watcher
}

fn inserted(serial: &str) -> impl Fn(&DeviceEvent) -> bool + '_ {
    move |event| {
        matches!(event, DeviceEvent::CardInserted { reader, card }
            if reader == READER && card.tokens == [serial])
    }
}

fn removed(serial: &str) -> impl Fn(&DeviceEvent) -> bool + '_ {
    move |event| {
        matches!(event, DeviceEvent::CardRemoved { reader, card }
            if reader == READER && card.tokens.iter().any(|t| t == serial))
    }
}

fn listed(sim: &HsmSim, serial: &str) -> bool {
    sim.devices.scan()[0]
        .tokens
        .iter()
        .any(|t| t.serial == serial)
}

fn assert_signs(key: &TokenKey) {
    let e = [0x5Au8; 32];
    let signature = key.sign(&e).expect("sign");
    VerifyingKey::from_sec1_bytes("1234567812345678", &key.public_key().point)
        .unwrap()
        .verify_prehash(&e, &Signature::from_slice(&signature.0).unwrap())
        .expect("valid SM2 signature");
}

#[test]
fn insert_remove_reinsert() {
    require_pcscd();
    let _readers = reader_lock();
    let sim = sim();
    let token = sim.new_token("hotplug");
    sim.keygen(&token, b"seal");
    sim.eject(&token); // the UKey starts out of its reader
    assert!(!listed(sim, &token.serial));
    let watcher = watcher(sim);
    let mut events = watcher.subscribe();

    // Insert: the card is identified by ATR and serial, the token opens without a restart.
    let card = VCard::insert(&sim.conf_path(), &token.serial, PORT);
    let event = wait_for(&mut events, "card inserted", inserted(&token.serial));
    let DeviceEvent::CardInserted { card: report, .. } = &event else {
        unreachable!()
    };
    assert_eq!(report.atr, VCARD_ATR);
    assert_eq!(report.module.as_deref(), Some("hsm-sim"));
    assert_eq!(report.name.as_deref(), Some("hsm-sim virtual UKey"));
    assert_eq!(report.model, Some(DeviceModel::Ukey));
    assert!(listed(sim, &token.serial));
    let shown = watcher.report();
    let reader = shown.readers.iter().find(|r| r.reader == READER).unwrap();
    assert_eq!(reader.card.as_ref(), Some(report));
    let json = serde_json::to_value(&event).unwrap();
    assert_eq!(json["event"], "card-inserted");
    assert_eq!(json["card"]["tokens"][0], token.serial.as_str());

    let owner = sim.devices.token(&token.serial).expect("token available");
    let key = TokenKey::open(owner.clone(), KeySelector::Id(b"seal".to_vec())).unwrap();
    owner.login(&Pin::new(USER_PIN), FinalTry::Refuse).unwrap();
    assert_signs(&key);
    let generation = owner.generation();
    assert!(owner.open_sessions() > 0);

    // Remove: the watcher resets the owner itself, before anyone touches the token.
    card.remove();
    let event = wait_for(&mut events, "card removed", removed(&token.serial));
    assert_eq!(
        serde_json::to_value(&event).unwrap()["event"],
        "card-removed"
    );
    assert!(
        owner.generation() > generation,
        "the owner was reset on removal"
    );
    assert_eq!(owner.open_sessions(), 0, "no session survives the removal");
    let err = key.sign(&[1u8; 32]).unwrap_err();
    assert!(err.is_removal(), "nothing signs without the UKey: {err:?}");
    assert!(err.to_string().contains("insert"), "{err}");
    assert!(!listed(sim, &token.serial));
    wait_until("the report shows the reader empty", || {
        watcher
            .report()
            .readers
            .iter()
            .any(|r| r.reader == READER && r.card.is_none())
    });

    // Reinsert: the token is back, a custodian login is required again, then it signs.
    let card = VCard::insert(&sim.conf_path(), &token.serial, PORT);
    wait_for(&mut events, "card inserted again", inserted(&token.serial));
    let err = key.sign(&[2u8; 32]).unwrap_err();
    assert!(
        matches!(err, DeviceError::UserNotLoggedIn),
        "login required after reinsertion: {err:?}"
    );
    owner.login(&Pin::new(USER_PIN), FinalTry::Refuse).unwrap();
    assert_signs(&key);
    card.remove();
    wait_for(&mut events, "card removed again", removed(&token.serial));
    watcher.stop();
}

#[test]
fn unknown_card_is_reported_without_a_module() {
    require_pcscd();
    let _readers = reader_lock();
    let sim = sim();
    let token = sim.new_token("unknown-atr");
    sim.eject(&token);
    // A watcher with no [[atr]] entry: the card shows up, mapped to nothing, and nothing resets.
    let watcher = Watcher::start(
        sim.devices.clone(),
        Default::default(),
        WatcherOptions {
            debounce: Duration::from_millis(100),
            retry: Duration::from_millis(200),
        },
    )
    .unwrap();
    let mut events = watcher.subscribe();
    let card = VCard::insert(&sim.conf_path(), &token.serial, PORT);
    let event = wait_for(
        &mut events,
        "card inserted",
        |e| matches!(e, DeviceEvent::CardInserted { reader, .. } if reader == READER),
    );
    let DeviceEvent::CardInserted { card: report, .. } = event else {
        unreachable!()
    };
    assert_eq!(report.atr, VCARD_ATR);
    assert_eq!(report.module, None);
    assert!(report.tokens.is_empty());
    card.remove();
    let event = wait_for(
        &mut events,
        "card removed",
        |e| matches!(e, DeviceEvent::CardRemoved { reader, .. } if reader == READER),
    );
    let DeviceEvent::CardRemoved { card: report, .. } = event else {
        unreachable!()
    };
    assert!(report.tokens.is_empty(), "{report:?}");
    watcher.stop();
}

#[test]
fn sealctl_devices_shows_reader_card_and_token() {
    require_pcscd();
    let _readers = reader_lock();
    let sim = sim();
    let token = sim.new_token("sealctl-pcsc");
    sim.eject(&token);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("seald.toml");
    std::fs::write(
        &config,
        format!(
            "[[module]]\nname = \"hsm-sim\"\npath = \"{}\"\nprofile = \"sansec\"\n{VCARD_ATR_TOML}",
            sim.module_path().display()
        ),
    )
    .unwrap();
    let run = |json: bool, env: Option<(&str, &str)>| {
        let mut command = Command::new(bin("sealctl"));
        command
            .args(["devices", "--config"])
            .arg(&config)
            .env("HSM_SIM_CONF", sim.conf_path());
        if json {
            command.arg("--json");
        }
        if let Some((k, v)) = env {
            command.env(k, v);
        }
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let card = VCard::insert(&sim.conf_path(), &token.serial, PORT);
    wait_until("pcscd sees the card", || {
        let report: serde_json::Value = serde_json::from_str(&run(true, None)).unwrap();
        report["pcsc"]["readers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["reader"] == READER && !r["card"].is_null())
    });
    let report: serde_json::Value = serde_json::from_str(&run(true, None)).unwrap();
    assert_eq!(report["pcsc"]["status"], "available");
    let reader = report["pcsc"]["readers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["reader"] == READER)
        .unwrap();
    assert_eq!(reader["card"]["atr"], VCARD_ATR);
    assert_eq!(reader["card"]["module"], "hsm-sim");
    assert_eq!(reader["card"]["tokens"][0], token.serial.as_str());
    let table = run(false, None);
    assert!(
        table.contains(&format!("{READER}: card ATR {VCARD_ATR}")),
        "{table}"
    );
    assert!(
        table.contains(&format!(
            "hsm-sim virtual UKey → module hsm-sim, token(s) {}",
            token.serial
        )),
        "{table}"
    );
    card.remove();

    // pcscd unreachable: still lists the PKCS#11 tokens, says so, exits 0.
    let absent = Some(("PCSCLITE_CSOCK_NAME", "/nonexistent/pcscd.comm"));
    let table = run(false, absent);
    assert!(table.contains("module hsm-sim"), "{table}");
    assert!(table.contains("PC/SC: pcscd is not running"), "{table}");
    let report: serde_json::Value = serde_json::from_str(&run(true, absent)).unwrap();
    assert_eq!(report["pcsc"]["status"], "unavailable");
    assert!(report["modules"][0]["tokens"].as_array().is_some());
}

#[test]
fn event_json_shapes() {
    let event = DeviceEvent::PcscUnavailable {
        reason: "pcscd is not running".into(),
    };
    assert_eq!(
        serde_json::to_value(&event).unwrap(),
        serde_json::json!({"event": "pcsc-unavailable", "reason": "pcscd is not running"})
    );
}

#[test]
fn a_bouncing_plug_is_one_insertion() {
    require_pcscd();
    let _readers = reader_lock();
    let sim = sim();
    let token = sim.new_token("bounce");
    sim.eject(&token);
    let config = Config::parse(&format!(
        "[[module]]\nname = \"hsm-sim\"\npath = \"{}\"\n{VCARD_ATR_TOML}",
        sim.module_path().display()
    ))
    .unwrap();
    // A long window: the card goes in, out and in again well inside it, like a UKey's contacts
    // bouncing or its chip rebooting while it is pushed in.
    let (watcher, mut events) = Watcher::start_subscribed(
        sim.devices.clone(),
        config.atr_table().unwrap(),
        WatcherOptions {
            debounce: Duration::from_millis(2500),
            retry: Duration::from_millis(200),
        },
    )
    .unwrap();
    wait_until("the watcher lists the vpcd reader", || {
        watcher.report().readers.iter().any(|r| r.reader == READER)
    });
    while events.try_recv().is_ok() {} // reader-added and friends from start-up
    let first = VCard::insert(&sim.conf_path(), &token.serial, PORT);
    std::thread::sleep(Duration::from_millis(800));
    first.remove();
    std::thread::sleep(Duration::from_millis(800));
    let card = VCard::insert(&sim.conf_path(), &token.serial, PORT);
    wait_for(&mut events, "card inserted", inserted(&token.serial));
    // Quiet for longer than a window: nothing else was reported for the bounce.
    std::thread::sleep(Duration::from_millis(3000));
    let mut extra = Vec::new();
    while let Ok(event) = events.try_recv() {
        extra.push(event);
    }
    assert!(
        extra.is_empty(),
        "one insertion only, then nothing: {extra:?}"
    );
    card.remove();
    wait_for(&mut events, "card removed", removed(&token.serial));
    watcher.stop();
}
