#!/usr/bin/env bash
# Builds the Debian package seald_<version>_<arch>.deb (release binaries, unit, config, man
# pages, completions) with a pinned cargo-deb, and prints its path on the last line.
# Honours CARGO_TARGET_DIR; the .deb lands in <target dir>/debian/.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

cargo_deb_version=3.8.0
tools="$root/target/tools"
cargo_deb="$tools/bin/cargo-deb"
if ! "$cargo_deb" --version 2>/dev/null | grep -q "$cargo_deb_version"; then
  echo "build-deb: installing cargo-deb $cargo_deb_version into $tools" >&2
  cargo install cargo-deb --locked --version "$cargo_deb_version" --root "$tools" >&2
fi

# Man pages and completions from the clap definitions; cargo-deb needs them before it runs.
# Always into <repo>/target/packaging: the package's assets name that path.
generated="$root/target/packaging"
rm -rf "$generated"
# Dev profile: scripts/test.sh has built it already (cargo test builds examples), and a release
# build of it would compile the library a second time, with the test-keys feature.
cargo run -q -p seald --example packaging_docs -- "$generated" >&2

# cargo-deb's own output goes to stderr; it prints the .deb's path on stdout. It warns about
# every asset under ../target/ that is not a build product: expected here, so left out.
deb="$("$cargo_deb" -p seald --locked 2> >(grep -vF "does not match the pattern, and will not be built" >&2))"
echo "build-deb: built $deb" >&2
echo "$deb"
