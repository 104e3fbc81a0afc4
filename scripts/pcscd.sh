#!/usr/bin/env bash
# Starts or stops a pcscd with the vsmartcard-vpcd virtual reader for the tests.
#   scripts/pcscd.sh start   idempotent: uses a pcscd that already serves vpcd, else starts one
#   scripts/pcscd.sh stop    stops only a pcscd this script started (never a system one)
# vpcd listens on TCP 35963 (reader "Virtual PCD 00 00") and 35964 ("… 00 01") on all
# interfaces; the tests connect to 127.0.0.1 only, and stop pcscd when done.
set -euo pipefail
state="${SEALD_PCSCD_DIR:-/tmp/seald-pcscd}"
pidfile="$state/pcscd.pid"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

vpcd_listening() { # port 35963 = 0x8C7B in LISTEN (0A) state
  grep -qi ':8C7B 00000000:0000 0A' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}
pcscd_alive() { # any pcscd that is not a zombie (reads /proc: procps may not be installed)
  local status
  for status in /proc/[0-9]*/status; do
    grep -q '^Name:[[:space:]]*pcscd$' "$status" 2>/dev/null &&
      ! grep -q '^State:[[:space:]]*Z' "$status" 2>/dev/null && return 0
  done
  return 1
}
ours_running() {
  [ -f "$pidfile" ] && [ "$(cat "/proc/$(cat "$pidfile")/comm" 2>/dev/null)" = pcscd ]
}

case "${1:-}" in
start)
  if pcscd_alive; then
    if vpcd_listening; then
      ours_running || rm -f "$pidfile" # a stale pid file must not name someone else's pcscd
      echo "pcscd: already running with the vpcd reader; using it"
      exit 0
    fi
    echo "pcscd: a pcscd without the vpcd reader is running (started before vsmartcard-vpcd was installed?);" \
      "restart it (e.g. systemctl restart pcscd) so it loads /etc/reader.conf.d/vpcd" >&2
    exit 1
  fi
  [ -f /usr/lib/pcsc/drivers/serial/libifdvpcd.so ] || {
    echo "pcscd: the vpcd driver is missing: install vsmartcard-vpcd (scripts/setup.sh does)" >&2
    exit 1
  }
  mkdir -p "$state"
  $sudo pcscd --foreground --error >"$state/pcscd.log" 2>&1 &
  echo $! >"$pidfile"
  for _ in $(seq 100); do
    if vpcd_listening && [ -S /run/pcscd/pcscd.comm ]; then
      echo "pcscd: started (pid $(cat "$pidfile")) with the vpcd reader on port 35963"
      exit 0
    fi
    sleep 0.1
  done
  echo "pcscd: did not come up with the vpcd reader in 10 s; its log:" >&2
  cat "$state/pcscd.log" >&2
  exit 1
  ;;
stop)
  if ours_running; then
    pid="$(cat "$pidfile")"
    $sudo kill -TERM "$pid"
    for _ in $(seq 50); do
      [ -d "/proc/$pid" ] || break
      sleep 0.1
    done
    echo "pcscd: stopped (pid $pid)"
  fi
  rm -f "$pidfile"
  ;;
*)
  echo "usage: $0 start|stop" >&2
  exit 2
  ;;
esac
