//! `seald demo` prints curl lines that work as printed: run them with bash.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use seald_tests::bins::bin;

/// Kills the demo (and so its daemon child's parent) when the test ends, pass or fail.
struct Demo(std::process::Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_printed_curl_lines_carry_a_stamp_to_a_verified_signature() {
    let dir = tempfile::tempdir().expect("tmp");
    let demo_dir = dir.path().join("demo");
    let mut child = Command::new(bin("seald"))
        .args(["demo", "--listen", "127.0.0.1:0", "--dir"])
        .arg(&demo_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start seald demo");
    let stdout = child.stdout.take().expect("stdout");
    let _demo = Demo(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut printed = Vec::new();
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|_| panic!("demo did not print its curl lines: {printed:?}"));
        if line == "# end of curl lines" {
            break;
        }
        printed.push(line);
    }
    let script: Vec<&str> = printed
        .iter()
        .map(String::as_str)
        .skip_while(|l| !l.starts_with("source "))
        .collect();
    assert!(script.len() >= 6, "{printed:?}");

    // Tokens and the PIN are in 0600 files, and the PIN is not on any printed line.
    use std::os::unix::fs::PermissionsExt;
    for f in ["tokens.env", "login.json", "custodian.pin", "so.pin"] {
        let mode = std::fs::metadata(demo_dir.join(f))
            .expect(f)
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
    let pin = std::fs::read_to_string(demo_dir.join("custodian.pin")).expect("pin");
    assert!(!printed.iter().any(|l| l.contains(pin.trim())));

    let out = Command::new("timeout")
        .args(["120", "bash", "-e", "-c", &script.join("\n")])
        .output()
        .expect("bash");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("\"logged_in\":true"), "{text}");
    assert!(text.contains("\"state\":\"signed\""), "{text}");
    assert!(text.trim_end().ends_with("\"valid\":true"), "{text}");
    // The OFD lines: the contract uploaded, the stamp approvers saw, signed, downloaded, and
    // the sealed file valid as a document.
    assert!(text.contains("OFD request "), "{text}");
    assert!(text.contains("\"stamps\":[{\"page\":2"), "{text}");
    assert_eq!(text.matches("\"valid\":true").count(), 2, "{text}");
    assert!(demo_dir.join("contract-sealed.ofd").is_file());
}
