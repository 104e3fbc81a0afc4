//! Paths of the workspace's binaries, built by the same `cargo test --workspace` run (the `seald`
//! crate has integration tests, so cargo builds its binaries before any test runs).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The target directory the running test binary lives in (`target/<profile>`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test binary>
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("test binary inside target/<profile>/deps")
        .to_path_buf()
}

/// Newest modification time below `dir`, skipping `skip` (other binaries' sources).
fn newest_source(dir: &Path, skip: &Path) -> SystemTime {
    let mut newest = SystemTime::UNIX_EPOCH;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path == skip {
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

/// Path of a binary of the `seald` crate (`sealctl`, `seald`), refusing a stale one.
pub fn bin(name: &str) -> PathBuf {
    let path = target_dir().join(name);
    let built = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| {
            panic!(
                "{} is missing: run `cargo test --workspace`",
                path.display()
            )
        });
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../daemon/src");
    let bins = src.join("bin");
    let own = std::fs::metadata(bins.join(format!("{name}.rs")))
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let sources = newest_source(&src, &bins).max(own);
    assert!(
        built >= sources,
        "{} is older than daemon/src: run `cargo test --workspace` (or `cargo build --bins`) so the binary is rebuilt",
        path.display()
    );
    path
}
