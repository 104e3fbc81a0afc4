#!/usr/bin/env bash
# The whole test suite, with all set-up on a fresh machine: system packages, then every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test --workspace --no-fail-fast
