//! The real `seald` without pcscd (its PC/SC client pointed at a socket nobody serves): it starts,
//! answers, keeps its PKCS#11 modules, and says once that hot-plug is off.

use std::path::Path;
use std::time::Duration;

use seald_tests::daemon::Daemon;
use seald_tests::pcsc::wait_until;
use seald_tests::softhsm::{SoftHsm, LIBRARY};

#[test]
fn seald_without_pcscd_serves_and_says_so_once() {
    let hsm = SoftHsm::shared();
    hsm.new_token("no-pcscd-daemon");
    let config = format!(
        "[pcsc]\nretry_ms = 100\n[[module]]\nname = \"softhsm\"\npath = \"{LIBRARY}\"\nmodel = \"cipher-machine\"\n"
    );
    let daemon = Daemon::start_logged(
        &config,
        &[
            ("SOFTHSM2_CONF", &hsm.conf_path()),
            (
                "PCSCLITE_CSOCK_NAME",
                Path::new("/nonexistent/seald/pcscd.comm"),
            ),
        ],
    );
    wait_until("seald logs that pcscd is not running", || {
        daemon.log().contains("pcscd is not running")
    });
    // Ten retry periods later it is still said once, and the daemon answers.
    std::thread::sleep(Duration::from_millis(1000));
    let (status, _) = daemon.get("/v1/health");
    assert_eq!(status, 200);
    let log = daemon.log();
    assert_eq!(log.matches("pcscd is not running").count(), 1, "{log}");
    assert!(log.contains("PKCS#11 tokens are still served"), "{log}");
}
