//! pcscd absent: the PC/SC client is pointed at a socket nobody serves (PCSCLITE_CSOCK_NAME, read
//! by libpcsclite), so this binary sees "no service" while other tests' pcscd keeps running.
//! The device layer still serves PKCS#11 tokens, and the watcher says so once.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use seald::crypto::PrehashSigner;
use seald::device::pcsc::{DeviceEvent, PcscStatus, Watcher, WatcherOptions};
use seald::device::{DeviceModel, FinalTry, KeySelector, Pin, ProfileSetting, TokenKey};
use seald_tests::hsmsim::{HsmSim, USER_PIN};
use seald_tests::pcsc::{threads, wait_for, wait_until};

#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn without_pcscd_tokens_are_served_and_it_is_said_once() {
    // Before any PC/SC call in this process: the only test in this binary.
    std::env::set_var("PCSCLITE_CSOCK_NAME", "/nonexistent/seald-test/pcscd.comm");
    let logs = Logs::default();
    let writer = logs.clone();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish(),
    )
    .unwrap();

    let sim = HsmSim::shared(
        "profile = \"sansec\"\nmodel = \"ukey\"\n",
        ProfileSetting::Named("sansec".into()),
        DeviceModel::Ukey,
    );
    let token = sim.new_token("no-pcscd");
    sim.keygen(&token, b"seal");

    let (watcher, mut events) = Watcher::start_subscribed(
        sim.devices.clone(),
        Default::default(),
        WatcherOptions {
            debounce: Duration::from_millis(50),
            retry: Duration::from_millis(100),
        },
    )
    .unwrap();
    wait_until("the watcher reports pcscd unavailable", || {
        watcher.report().status == PcscStatus::Unavailable
    });
    // Several retries happen while the token is used.
    let owner = sim
        .devices
        .token(&token.serial)
        .expect("PKCS#11 token served");
    owner.login(&Pin::new(USER_PIN), FinalTry::Refuse).unwrap();
    let key = TokenKey::open(owner, KeySelector::Id(b"seal".to_vec())).unwrap();
    key.sign_prehash(&[7u8; 32]).expect("signs without pcscd");
    std::thread::sleep(Duration::from_millis(600));
    let report = watcher.report();
    assert_eq!(report.status, PcscStatus::Unavailable);
    assert!(report
        .error
        .as_deref()
        .unwrap()
        .contains("pcscd is not running"));
    assert!(report.readers.is_empty());

    watcher.stop();
    assert_eq!(threads("pcsc-watcher").1, 0, "stopped while retrying");
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let said = text.matches("pcscd is not running").count();
    assert_eq!(said, 1, "said once, however many retries:\n{text}");
    assert!(text.contains("PKCS#11 tokens are still served"), "{text}");
    // The event went out once too.
    wait_for(
        &mut events,
        "pcsc unavailable",
        |e| matches!(e, DeviceEvent::PcscUnavailable { reason } if reason == "pcscd is not running"),
    );
    let mut unavailable = 0;
    while let Ok(event) = events.try_recv() {
        if matches!(event, DeviceEvent::PcscUnavailable { .. }) {
            unavailable += 1;
        }
    }
    assert_eq!(unavailable, 0, "only one unavailable event per outage");
}
