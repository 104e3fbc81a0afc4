//! 20 rapid plug/unplug cycles of the virtual UKey on a real pcscd: every plug and pull is seen,
//! no session outlives its card, the device list ends consistent and no thread is left behind.
//! Its own test binary, so the thread count of the process is this test's alone.

use std::time::Duration;

use seald::config::Config;
use seald::crypto::PrehashSigner;
use seald::device::pcsc::{DeviceEvent, PcscStatus, Watcher, WatcherOptions};
use seald::device::{DeviceModel, FinalTry, KeySelector, Pin, ProfileSetting, TokenKey};
use seald_tests::hsmsim::{HsmSim, USER_PIN};
use seald_tests::pcsc::{
    require_pcscd, threads, wait_for, wait_until, VCard, PORT, READER, VCARD_ATR_TOML,
};

const CYCLES: usize = 20;

#[test]
fn rapid_cycles_leave_no_stale_session_or_thread() {
    require_pcscd();
    let sim = HsmSim::shared(
        "profile = \"sansec\"\nmodel = \"ukey\"\n",
        ProfileSetting::Named("sansec".into()),
        DeviceModel::Ukey,
    );
    let token = sim.new_token("cycles");
    sim.keygen(&token, b"seal");
    sim.eject(&token);
    let config = Config::parse(&format!(
        "[[module]]\nname = \"hsm-sim\"\npath = \"{}\"\n{VCARD_ATR_TOML}",
        sim.module_path().display()
    ))
    .unwrap();
    // Threads before the watcher exists (the module and the test harness are already up).
    let (threads_before, watchers_before) = threads("pcsc-watcher");
    assert_eq!(watchers_before, 0);

    let watcher = Watcher::start(
        sim.devices.clone(),
        config.atr_table().unwrap(),
        WatcherOptions {
            debounce: Duration::from_millis(50),
            retry: Duration::from_millis(200),
        },
    )
    .unwrap();
    wait_until("the watcher thread runs", || threads("pcsc-watcher").1 == 1);
    wait_until("the watcher lists the vpcd reader", || {
        watcher.report().readers.iter().any(|r| r.reader == READER)
    });
    let mut events = watcher.subscribe();
    let owner = sim.devices.token(&token.serial).err().map(|_| ());
    assert!(owner.is_some(), "the token starts unplugged");

    let mut last_generation = None;
    for cycle in 0..CYCLES {
        let card = VCard::insert(&sim.conf_path(), &token.serial, PORT);
        wait_for(
            &mut events,
            "card inserted",
            |e| matches!(e, DeviceEvent::CardInserted { reader, card } if reader == READER && card.tokens == [token.serial.clone()]),
        );
        let owner = sim.devices.token(&token.serial).expect("token available");
        if let Some(previous) = last_generation {
            assert_eq!(
                owner.generation(),
                previous,
                "cycle {cycle}: one owner, kept by serial"
            );
        }
        // Every few cycles, use the token so there is a logged-in session to lose.
        if cycle % 5 == 0 {
            owner.login(&Pin::new(USER_PIN), FinalTry::Refuse).unwrap();
            let key = TokenKey::open(owner.clone(), KeySelector::Id(b"seal".to_vec())).unwrap();
            key.sign_prehash(&[cycle as u8; 32])
                .expect("sign while plugged");
        }
        let before = owner.generation();
        card.remove();
        wait_for(
            &mut events,
            "card removed",
            |e| matches!(e, DeviceEvent::CardRemoved { reader, card } if reader == READER && card.tokens.contains(&token.serial)),
        );
        assert!(
            owner.generation() > before,
            "cycle {cycle}: the removal reset the owner"
        );
        assert_eq!(
            owner.open_sessions(),
            0,
            "cycle {cycle}: a session outlived its card"
        );
        last_generation = Some(owner.generation());
    }

    // A consistent picture: reader empty, token absent from the module and from the report.
    wait_until("the report settles with the reader empty", || {
        let report = watcher.report();
        report.status == PcscStatus::Available
            && report
                .readers
                .iter()
                .any(|r| r.reader == READER && r.card.is_none())
    });
    assert!(!sim.devices.scan()[0]
        .tokens
        .iter()
        .any(|t| t.serial == token.serial));
    let owner = sim
        .devices
        .token(&token.serial)
        .expect("the owner is kept by serial");
    let err = owner.info().unwrap_err();
    assert!(err.is_removal(), "{err:?}");

    watcher.stop();
    let (threads_after, watchers_after) = threads("pcsc-watcher");
    assert_eq!(watchers_after, 0, "the watcher thread ended");
    assert!(
        threads_after <= threads_before,
        "threads before {threads_before}, after {threads_after}"
    );
}
