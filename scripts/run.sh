#!/usr/bin/env bash
# Builds the workspace (seald, sealctl, hsm-sim and libhsm_sim.so side by side) and runs
# `seald demo`: a fresh store, a simulated SM2 UKey with a seal, tokens in a 0600 file, the API
# on 127.0.0.1:7780, and curl lines that carry one stamp end to end. Extra arguments go to
# `seald demo` (e.g. --dir DIR, --profile tass, --listen 127.0.0.1:0).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --workspace
exec target/release/seald demo "$@"
