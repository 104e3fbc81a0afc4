#!/usr/bin/env bash
# The whole test suite, with all set-up on a fresh machine: system packages, pcscd with the
# virtual smart-card reader (stopped again afterwards if this script started it), then every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
started="$(scripts/pcscd.sh start)"
echo "$started"
case "$started" in
"pcscd: started"*) trap 'scripts/pcscd.sh stop' EXIT ;; # only stop what this run started
esac
cargo test --workspace --no-fail-fast
