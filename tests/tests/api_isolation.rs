//! Vendor libraries that crash or hang, run out of process: in seald's own helper
//! (`[[module]] isolation = "process"`, the default for SKF and SDF, and SM2 PKCS#11 modules
//! here) or behind `p11-kit server` (`isolation = "p11-kit"`, PKCS#11 with standard
//! mechanisms). hsm-sim's `sign_fault_file` makes its SKF or SDF signature
//! abort the process or never return, as broken vendor libraries do; SoftHSM's p11-kit remote
//! is crashed with SIGSEGV and frozen with SIGSTOP. In seald's own process either would end or
//! freeze the daemon; isolated, only the helper dies (or is killed after
//! `call_timeout_secs`). The daemon keeps answering, reports the device gone with the reason,
//! keeps taking and approving requests and writing its usage log (whose chain still
//! verifies), restarts the helper after its backoff, and stamps again once the custodian has
//! logged in again.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use seald::approval::PinMode;
use seald_tests::deployment::{Deployment, Who, SERIAL};
use seald_tests::stamping::{check_signed, digest};
use serde_json::Value;

/// The demo with its token driven through `api` (`skf`, `sdf` or `pkcs11`) in seald's helper
/// process, calls timing out after 3 s, and hsm-sim signing only while the fault file says
/// nothing.
fn isolated(api: &str) -> (Deployment, PathBuf) {
    let fault = tempfile::NamedTempFile::new()
        .expect("fault file")
        .into_temp_path()
        .keep()
        .expect("keep fault file");
    std::fs::remove_file(&fault).expect("no fault yet");
    let fault_for_setup = fault.clone();
    let d = Deployment::hsm_sim_prepared(
        "sansec",
        "",
        move |demo| {
            // A top-level key: it must come before the file's tables.
            let conf = demo.join("hsm-sim.toml");
            let text = std::fs::read_to_string(&conf).expect("hsm-sim config");
            let mut text = format!(
                "sign_fault_file = \"{}\"\n{text}",
                fault_for_setup.display()
            );
            if api == "skf" {
                text += "\n[skf]\ncontainer_names = \"id\"\n";
            }
            std::fs::write(&conf, text).expect("write hsm-sim config");
            // `[[module]]` is the demo config's last table.
            let seald = demo.join("seald.toml");
            let mut text = std::fs::read_to_string(&seald).expect("seald config");
            text += &match api {
                // PKCS#11 runs inside seald unless asked.
                "pkcs11" => "isolation = \"process\"\ncall_timeout_secs = 3\n".to_owned(),
                _ => format!("api = \"{api}\"\ncall_timeout_secs = 3\n"),
            };
            if api == "sdf" {
                text += "[module.sdf]\nkeys = [1, 2]\n";
            }
            std::fs::write(&seald, text).expect("write seald config");
        },
        &[],
    );
    (d, fault)
}

/// The module's report in /v1/devices (which must answer: the daemon is alive).
fn module(d: &Deployment) -> Value {
    let r = d.call("GET", "/v1/devices", Some(Who::Client), None);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["modules"][0].clone()
}

fn token_listed(d: &Deployment, module: &Value) -> bool {
    module["tokens"]
        .as_array()
        .is_some_and(|t| t.iter().any(|t| t["serial"] == d.serial.as_str()))
}

/// Stamps one digest and checks the signature (against the demo CA, when there is one).
fn stamp_ok(d: &Deployment, tag: u8) {
    let id = d.request(d.seal_id, &[digest(tag, 1)]);
    d.approve_both(id);
    let v = d.wait_final(id);
    assert_eq!(v["state"], "signed", "{v:#}");
    if d.demo_dir().join("ca/root.pem").is_file() {
        check_signed(d, &v, &[digest(tag, 1)], 0);
    }
}

/// A request approved while the library misbehaves fails with a message naming what happened.
fn stamp_fails(d: &Deployment, tag: u8, says: &[&str]) -> Value {
    let id = d.request(d.seal_id, &[digest(tag, 1)]);
    d.approve_both(id);
    let v = d.wait_final(id);
    assert_eq!(v["state"], "failed", "{v:#}");
    let failure = v["failure"].as_str().unwrap_or_default();
    for word in says {
        assert!(failure.contains(word), "{word:?} in {failure:?}");
    }
    v
}

/// Waits until the helper is back and lists the token again (its backoff is 1 s here).
fn wait_until_back(d: &Deployment) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let m = module(d);
        if token_listed(d, &m) {
            let token = m["tokens"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|t| t["serial"] == d.serial.as_str())
                .cloned()
                .unwrap_or_default();
            assert_eq!(
                token["logged_in"], false,
                "a new helper holds no login: {token:#}"
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the helper did not come back: {m:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// What goes on while the device is gone: requests are taken and approved (they fail, as for a
/// removed device), the usage log records it all and its chain verifies.
fn daemon_keeps_working(d: &Deployment, fault: &Path) {
    let id = d.request(d.seal_id, &[digest(99, 1)]);
    d.approve_both(id);
    assert_eq!(d.wait_final(id)["state"], "failed");
    std::fs::remove_file(fault).expect("clear the fault");
    let out = d.sealctl("audit", &["verify"]);
    assert!(out.contains("chain intact"), "{out}");
}

#[test]
fn a_crashing_skf_library_takes_only_its_helper_down() {
    let (d, fault) = isolated("skf");
    d.login_custodian();
    stamp_ok(&d, 1);

    let events = d.subscribe(Who::Auditor);
    std::fs::write(&fault, "abort\n").unwrap();
    stamp_fails(&d, 2, &["crashed", "SIGABRT", "log in again"]);
    // The crash is seen at once, as a removal, and recorded with its reason.
    events.expect("device-removed", &[SERIAL]);
    let removals = d.audit("device");
    assert!(
        removals.iter().any(|r| r["detail"]["event"] == "removed"
            && r["detail"]["detail"]
                .as_str()
                .is_some_and(|s| s.contains("crashed"))),
        "{removals:#?}"
    );
    daemon_keeps_working(&d, &fault);

    wait_until_back(&d);
    d.login_custodian();
    stamp_ok(&d, 3);
}

#[test]
fn an_sm2_pkcs11_module_in_the_helper_survives_its_crash() {
    // The SM2 mechanisms are vendor-defined: p11-kit cannot carry them, seald's helper can.
    let (d, fault) = isolated("pkcs11");
    d.login_custodian();
    stamp_ok(&d, 12);
    let events = d.subscribe(Who::Auditor);
    std::fs::write(&fault, "abort\n").unwrap();
    stamp_fails(&d, 13, &["crashed", "SIGABRT", "log in again"]);
    events.expect("device-removed", &[SERIAL]);
    daemon_keeps_working(&d, &fault);
    wait_until_back(&d);
    d.login_custodian();
    stamp_ok(&d, 14);
}

#[test]
fn a_hanging_sdf_library_is_killed_after_its_call_timeout() {
    let (d, fault) = isolated("sdf");
    d.login_custodian();
    stamp_ok(&d, 4);

    std::fs::write(&fault, "hang\n").unwrap();
    let started = Instant::now();
    let v = stamp_fails(&d, 5, &["stopped answering", "sign", "3 s"]);
    // Killed after the 3 s limit, not left hanging for the request's lifetime.
    assert!(started.elapsed() < Duration::from_secs(20), "{v:#}");
    daemon_keeps_working(&d, &fault);

    wait_until_back(&d);
    d.login_custodian();
    stamp_ok(&d, 6);
}

/// The processes below `root` whose program (argv[0], without its directory) is `program`.
fn descendants_named(root: u32, program: &str) -> Vec<i32> {
    let parent_of = |pid: i32| -> Option<i32> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // pid (comm) state ppid …: comm may hold spaces, so read after the last ')'.
        stat.rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
        if argv0.rsplit(|b| *b == b'/').next() != Some(program.as_bytes()) {
            continue;
        }
        let mut up = parent_of(pid);
        while let Some(p) = up.filter(|p| *p > 1) {
            if p == root as i32 {
                found.push(pid);
                break;
            }
            up = parent_of(p);
        }
    }
    found
}

/// Sends `signal` to the p11-kit remote process that runs the vendor module for `d`.
fn signal_remote(d: &Deployment, signal: &str) {
    // The remote is forked when seald's client connects: it runs from the login on.
    let deadline = Instant::now() + Duration::from_secs(10);
    let remotes = loop {
        let remotes = descendants_named(d.daemon.pid(), "p11-kit-remote");
        if remotes.len() == 1 || Instant::now() > deadline {
            break remotes;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(remotes.len(), 1, "one remote runs the module: {remotes:?}");
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(remotes[0].to_string())
        .status()
        .expect("kill");
    assert!(status.success());
}

#[test]
fn a_pkcs11_module_behind_p11_kit_survives_its_crash_and_its_hang() {
    let d = Deployment::softhsm_p256(
        "model = \"ukey\"\nisolation = \"p11-kit\"\ncall_timeout_secs = 3",
        PinMode::Window { minutes: 60 },
        "",
    );
    d.login_custodian();
    stamp_ok(&d, 7);

    // The vendor code crashes (SIGSEGV in the remote that p11-kit forked for seald): told at
    // once as a removal.
    let events = d.subscribe(Who::Auditor);
    signal_remote(&d, "SEGV");
    stamp_fails(&d, 8, &["crashed", "p11-kit", "log in again"]);
    events.expect("device-removed", &[d.serial.as_str()]);
    wait_until_back(&d);
    d.login_custodian();
    stamp_ok(&d, 9);

    // The vendor code hangs (the remote is stopped): the watchdog kills it after 3 s.
    signal_remote(&d, "STOP");
    let started = Instant::now();
    stamp_fails(&d, 10, &["stopped answering", "3 s"]);
    assert!(started.elapsed() < Duration::from_secs(20));
    wait_until_back(&d);
    d.login_custodian();
    stamp_ok(&d, 11);
    let out = d.sealctl("audit", &["verify"]);
    assert!(out.contains("chain intact"), "{out}");
}
