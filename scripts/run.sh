#!/usr/bin/env bash
# Builds and runs the daemon on its default configuration, with all set-up on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec cargo run --release --bin seald -- --config config/seald.toml "$@"
