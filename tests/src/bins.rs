//! Paths of the workspace's binaries, built by the same `cargo test --workspace` run (the `seald`
//! crate has integration tests, so cargo builds its binaries before any test runs).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The target directory the running binary lives in (`target/<profile>`): test binaries sit in
/// its `deps/`, the harness's own binaries (`seald-load`) in it directly.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().expect("binary inside target/<profile>");
    if dir.ends_with("deps") {
        dir.parent().expect("deps inside target/<profile>")
    } else {
        dir
    }
    .to_path_buf()
}

/// Whether `path` is compiled only into unit tests (`tests.rs`, `*_tests.rs`, `testdata/`):
/// editing it does not relink the binaries, so it must not make them look stale.
fn test_only(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    name == "tests.rs" || name.ends_with("_tests.rs") || name == "testdata"
}

/// Newest modification time below `dir`, skipping `skip` (other binaries' sources) and
/// test-only files.
fn newest_source(dir: &Path, skip: &Path) -> SystemTime {
    let mut newest = SystemTime::UNIX_EPOCH;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path == skip || test_only(&path) {
            continue;
        }
        let time = if path.is_dir() {
            newest_source(&path, skip)
        } else {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH)
        };
        newest = newest.max(time);
    }
    newest
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Refuses an artifact older than its crate's sources (other binaries' sources aside).
fn fresh(path: PathBuf, crate_dir: &str, own_source: &str) -> PathBuf {
    let built = modified(&path).unwrap_or_else(|| {
        panic!(
            "{} is missing: run `cargo test --workspace`",
            path.display()
        )
    });
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(crate_dir)
        .join("src");
    let bins = src.join("bin");
    let own = modified(&src.join(own_source)).unwrap_or(SystemTime::UNIX_EPOCH);
    // The web console's assets are compiled into the daemon's binaries too.
    let assets = newest_source(&src.join("..").join("console"), &bins);
    let sources = newest_source(&src, &bins).max(own).max(assets);
    assert!(
        built >= sources,
        "{} is older than {crate_dir}/src (or its console assets): run `cargo test --workspace` (or `cargo build --workspace`) so it is rebuilt",
        path.display()
    );
    path
}

/// Path of a binary of the `seald` crate (`sealctl`, `seald`), refusing a stale one.
pub fn bin(name: &str) -> PathBuf {
    fresh(target_dir().join(name), "daemon", &format!("bin/{name}.rs"))
}

/// Path of the `hsm-sim` provisioning CLI.
pub fn hsm_sim_cli() -> PathBuf {
    fresh(target_dir().join("hsm-sim"), "hsm-sim", "main.rs")
}

/// Path of hsm-sim's PKCS#11 module: the newest of the copies cargo leaves in the target dir.
pub fn hsm_sim_module() -> PathBuf {
    let candidates = [
        target_dir().join("libhsm_sim.so"),
        target_dir().join("deps/libhsm_sim.so"),
    ];
    let newest = candidates
        .into_iter()
        .filter(|p| p.exists())
        .max_by_key(|p| modified(p))
        .expect("libhsm_sim.so is missing: run `cargo test --workspace`");
    fresh(newest, "hsm-sim", "lib.rs")
}

/// Runs `command` with `stdin` written to its standard input; returns its output (whatever its
/// exit status). PINs reach the programs under test this way, never through argv.
pub fn run_with_stdin(command: &mut std::process::Command, stdin: &str) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", command.get_program()));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("program output")
}
