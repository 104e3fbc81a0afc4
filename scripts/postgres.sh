#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests, on loopback in a temporary directory.
#   scripts/postgres.sh start   starts it if it is not running; prints "postgres: … URL"
#   scripts/postgres.sh url     prints its URL (postgres://seald@127.0.0.1:PORT/postgres)
#   scripts/postgres.sh stop    stops it and removes its directory
#   scripts/postgres.sh down|up stops it keeping its data, starts it again on the same port
# SEALD_PG_STATE names another state directory (a second cluster, e.g. one a test restarts).
# PostgreSQL refuses to run as root: as root the cluster belongs to the `postgres` user the
# Debian package creates. Trust authentication on 127.0.0.1 only (a test cluster, never data).
set -euo pipefail
cd "$(dirname "$0")/.."
state="${SEALD_PG_STATE:-$PWD/target/postgres}"
bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
[ -x "$bin/pg_ctl" ] || { echo "postgres: PostgreSQL is not installed (scripts/setup.sh installs it)" >&2; exit 1; }

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

running() {
  [ -f "$state/dir" ] && as_owner "$bin/pg_ctl" status -D "$(cat "$state/dir")/data" >/dev/null 2>&1
}

serve() {
  local dir port
  dir="$(cat "$state/dir")"
  port="$(cat "$state/port")"
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=400 -c shared_buffers=64MB -c max_wal_size=256MB" >/dev/null \
    || { cat "$dir/server.log" >&2; exit 1; }
}

case "${1:-}" in
start)
  if running; then
    echo "postgres: running at $(cat "$state/url")"
    exit 0
  fi
  mkdir -p "$state"
  dir="$(mktemp -d /tmp/seald-pg.XXXXXX)"
  [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  as_owner "$bin/initdb" -D "$dir/data" -A trust -U seald -E UTF8 --locale=C.UTF-8 >"$state/initdb.log" 2>&1 \
    || { cat "$state/initdb.log" >&2; exit 1; }
  echo "$dir" >"$state/dir"
  echo "$port" >"$state/port"
  serve
  echo "postgres://seald@127.0.0.1:$port/postgres" >"$state/url"
  echo "postgres: started at $(cat "$state/url")"
  ;;
down)
  running && as_owner "$bin/pg_ctl" -D "$(cat "$state/dir")/data" -m fast -w stop >/dev/null
  echo "postgres: down"
  ;;
up)
  running || serve
  echo "postgres: up"
  ;;
url)
  running || { echo "postgres: not running (scripts/postgres.sh start)" >&2; exit 1; }
  cat "$state/url"
  ;;
stop)
  if running; then
    as_owner "$bin/pg_ctl" -D "$(cat "$state/dir")/data" -m fast -w stop >/dev/null
  fi
  [ -f "$state/dir" ] && rm -rf "$(cat "$state/dir")"
  rm -f "$state/dir" "$state/url" "$state/port"
  echo "postgres: stopped"
  ;;
*)
  echo "usage: $0 start|url|stop|down|up" >&2
  exit 2
  ;;
esac
