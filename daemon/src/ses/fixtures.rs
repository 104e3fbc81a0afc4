//! Helpers for tests: locating the shared fixtures.

use std::path::{Path, PathBuf};

/// The shared fixtures directory: `$SEALD_FIXTURES`, else the first `shared/fixtures` found
/// walking up from this crate (works for /work/main and for worktrees under /work/wt/).
pub fn fixtures_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SEALD_FIXTURES") {
        return PathBuf::from(dir);
    }
    let start = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in start.ancestors() {
        let candidate = dir.join("shared").join("fixtures");
        if candidate.is_dir() {
            return candidate;
        }
    }
    panic!(
        "shared/fixtures not found above {}; set SEALD_FIXTURES",
        start.display()
    );
}

/// Reads a fixture file by its path under the fixtures directory.
pub fn fixture(rel: &str) -> Vec<u8> {
    let path = fixtures_dir().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}
