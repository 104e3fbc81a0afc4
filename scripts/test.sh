#!/usr/bin/env bash
# The whole test suite, with all set-up on a fresh machine: system packages, pcscd with the
# virtual smart-card reader and a throwaway PostgreSQL cluster (each stopped again afterwards if
# this script started it), then every test; then the store, seal, approval and usage-log tests
# a second time on PostgreSQL (the same tests: `SEALD_TEST_BACKEND=postgres`); then the Debian
# package's tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cleanup=()
trap 'for c in "${cleanup[@]}"; do $c || true; done' EXIT
started="$(scripts/pcscd.sh start)"
echo "$started"
case "$started" in
"pcscd: started"*) cleanup+=("scripts/pcscd.sh stop") ;; # only stop what this run started
esac
started="$(scripts/postgres.sh start)"
echo "$started"
case "$started" in
"postgres: started"*) cleanup+=("scripts/postgres.sh stop") ;;
esac
SEALD_TEST_POSTGRES="$(scripts/postgres.sh url)"
export SEALD_TEST_POSTGRES
status=0
cargo test --workspace --no-fail-fast || status=1
SEALD_TEST_BACKEND=postgres cargo test -p seald --lib --no-fail-fast -- \
  store:: approval:: seal::tests audit:: services:: --skip cli:: --skip ofd:: --skip pdf:: || status=1
# The Debian package: build, contents, unit, install, remove, purge (packaging/test-deb.sh).
packaging/test-deb.sh || status=1
exit "$status"
