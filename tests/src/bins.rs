//! Paths of the workspace's binaries, built by the same `cargo test` run.

use std::path::PathBuf;

/// The target directory the running test binary lives in (`target/<profile>`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test binary>
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("test binary inside target/<profile>/deps")
        .to_path_buf()
}

/// Path of a workspace binary such as `sealctl` or `seald`. `cargo test --workspace` builds them
/// because the `seald` crate has integration tests.
pub fn bin(name: &str) -> PathBuf {
    let path = target_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: run the suite with `cargo test --workspace` (scripts/test.sh)",
        path.display()
    );
    path
}
