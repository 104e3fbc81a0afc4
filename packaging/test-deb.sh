#!/usr/bin/env bash
# The packaging tests (issue 21): builds the .deb, checks its contents and conffiles, checks
# the unit with systemd-analyze verify, installs it, checks the user, state directory,
# binaries, man pages and config, then removes and purges it. Needs root (sudo otherwise).
# Refuses to run where a seald package is installed that this script did not install.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

failures=0
pass() { echo "PASS: $*"; }
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}
check() { # check <description> <command...>
  local what="$1"
  shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}

# A seald installed by an earlier, interrupted run of this script is recognised by this marker.
marker=/var/lib/seald-test-deb.installed
installed_state() { dpkg-query -W -f='${db:Status-Status}' seald 2>/dev/null || true; }
state="$(installed_state)"
if [ -n "$state" ] && [ "$state" != "not-installed" ]; then
  if [ -e "$marker" ]; then
    echo "test-deb: purging the seald left by an earlier run"
    $sudo dpkg -P seald >/dev/null
  else
    echo "test-deb: a seald package is installed ($state) that this script did not install;" \
      "refusing to touch it. Remove it first (dpkg -P seald) or run this in a throwaway machine." >&2
    exit 2
  fi
fi

# What this run creates besides the package (the user and /var/lib/seald survive a purge by
# design) is removed at the end, so a developer machine is left as it was.
had_user=no
getent passwd seald >/dev/null && had_user=yes
had_state=no
[ -e /var/lib/seald ] && had_state=yes
work="$(mktemp -d)"
cleanup() {
  if [ -e "$marker" ]; then
    $sudo dpkg -P seald >/dev/null 2>&1 || true
    $sudo rm -f "$marker"
  fi
  [ "$had_state" = yes ] || $sudo rm -rf /var/lib/seald
  if [ "$had_user" = no ] && getent passwd seald >/dev/null; then
    $sudo userdel seald 2>/dev/null || true
    getent group seald >/dev/null && { $sudo groupdel seald 2>/dev/null || true; }
  fi
  rm -rf "$work"
}
trap cleanup EXIT

start=$SECONDS
deb="$(packaging/build-deb.sh | tail -n 1)"
echo "test-deb: built $deb in $((SECONDS - start)) s"
check "the package file is seald_<version>_amd64.deb" \
  test -f "$deb" -a "$(basename "$deb")" = "seald_$(dpkg-deb -f "$deb" Version)_amd64.deb"

# Contents.
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' >"$work/contents"
expected=(
  /usr/bin/seald /usr/bin/sealctl /usr/bin/seald-device-host
  /lib/systemd/system/seald.service
  /etc/seald/seald.toml
  /usr/share/polkit-1/rules.d/60-seald-pcscd.rules
  /usr/share/man/man1/seald.1.gz /usr/share/man/man1/sealctl.1.gz
  /usr/share/man/man1/seald-demo.1.gz /usr/share/man/man1/sealctl-seal.1.gz
  /usr/share/bash-completion/completions/seald /usr/share/bash-completion/completions/sealctl
  /usr/share/zsh/vendor-completions/_seald /usr/share/zsh/vendor-completions/_sealctl
  /usr/share/fish/vendor_completions.d/seald.fish /usr/share/fish/vendor_completions.d/sealctl.fish
  /usr/share/doc/seald/README.md /usr/share/doc/seald/README.Debian
  /usr/share/doc/seald/seald.toml.example /usr/share/doc/seald/copyright
)
for f in "${expected[@]}"; do
  check "the package holds $f" grep -qxF "$f" "$work/contents"
done
check "no hsm-sim file in the package" bash -c "! grep -qi 'hsm.sim' '$work/contents'"
check "the binaries are 0755" test "$(dpkg-deb -c "$deb" | awk '$6 ~ /^\.\/usr\/bin\/./ {print $1}' | sort -u)" = "-rwxr-xr-x"
# Every sealctl subcommand has its man page (the list from the packaged sealctl's --help).
dpkg-deb -x "$deb" "$work/root"
subs="$("$work/root/usr/bin/sealctl" --help | sed -n '/^Commands:/,/^$/p' | awk 'NR > 1 && NF {print $1}' | grep -vx help)"
check "sealctl --help lists subcommands" test -n "$subs"
for sub in $subs; do
  check "the package holds the page sealctl-$sub.1.gz" grep -qxF "/usr/share/man/man1/sealctl-$sub.1.gz" "$work/contents"
done

# Control data.
dpkg-deb --ctrl-tarfile "$deb" | tar -x -C "$work" ./conffiles ./postinst ./prerm ./postrm
check "/etc/seald/seald.toml is a conffile" grep -qxF /etc/seald/seald.toml "$work/conffiles"
check "the package depends on adduser" bash -c "dpkg-deb -f '$deb' Depends | grep -qw adduser"
check "the package recommends pcscd" bash -c "dpkg-deb -f '$deb' Recommends | grep -qw pcscd"

# The unit: systemd-analyze verify must be silent and succeed on it (it also checks that
# ExecStart's program and the man pages in Documentation= exist, so it runs after install),
# and must fail on a unit with a misspelt key, so the check means something.
# A minimal image may keep dpkg from installing man pages (a path-exclude in dpkg.cfg.d): then
# Documentation= links are not followed (the pages are checked in the package's contents above).
man_flag=()
man_installed=true
if grep -qs '^path-exclude=/usr/share/man' /etc/dpkg/dpkg.cfg.d/*; then
  man_flag=(--man=no)
  man_installed=false
fi
verify() { # verify <unit file>: true when systemd-analyze says nothing and succeeds
  local out
  out="$(systemd-analyze verify "${man_flag[@]}" "$1" 2>&1)" || {
    echo "$out"
    return 1
  }
  [ -z "$out" ] || {
    echo "$out"
    return 1
  }
}

# Install.
$sudo touch "$marker"
check "dpkg -i installs the package" $sudo dpkg -i "$deb"
check "user seald exists, shell nologin" bash -c "getent passwd seald | grep -q ':/var/lib/seald:/usr/sbin/nologin$'"
check "group seald exists" bash -c "getent group seald >/dev/null"
check "/var/lib/seald is 0700 seald:seald" test "$(stat -c '%a %U:%G' /var/lib/seald)" = "700 seald:seald"
check "the first start will create the store (first-start.env)" \
  $sudo grep -qxF SEALD_INIT=--init /var/lib/seald/first-start.env
check "/etc/seald/seald.toml is 0640 root:seald" \
  test "$(stat -c '%a %U:%G' /etc/seald/seald.toml)" = "640 root:seald"
check "systemd-analyze verify passes on the installed unit" verify /lib/systemd/system/seald.service
mkdir -p "$work/bad"
sed 's/^ProtectSystem=/ProtectSytem=/' packaging/seald.service >"$work/bad/seald.service"
if verify "$work/bad/seald.service" >/dev/null; then
  fail "systemd-analyze verify fails on a misspelt unit"
else
  pass "systemd-analyze verify fails on a misspelt unit"
fi
check "seald --version runs from /usr/bin" bash -c '/usr/bin/seald --version | grep -q "^seald "'
check "sealctl --version runs from /usr/bin" bash -c '/usr/bin/sealctl --version | grep -q "^sealctl "'
if ! $man_installed; then
  echo "test-deb: dpkg is set to leave out man pages here; their installation is not checked"
elif command -v man >/dev/null; then
  check "man -w seald finds the page" bash -c 'man -w seald | grep -q "/usr/share/man/man1/seald.1.gz"'
  check "man -w sealctl-seal finds the page" bash -c "man -w sealctl-seal >/dev/null"
else
  check "the seald man page is installed" test -f /usr/share/man/man1/seald.1.gz
fi
check "the bash completion loads" bash -c 'source /usr/share/bash-completion/completions/sealctl && complete -p sealctl >/dev/null'

# The packaged config, read by user seald: without a store seald must stop and ask for
# --init (so the config parsed); with --init, on a copy that listens on a free port and keeps
# its store in a scratch directory, it must come up.
run_as_seald() { $sudo setpriv --reuid=seald --regid=seald --init-groups "$@"; }
out="$(run_as_seald /usr/bin/seald --config /etc/seald/seald.toml 2>&1 || true)"
check "user seald reads the packaged config; seald asks for --init without a store" \
  grep -q "seald.db does not exist.*seald --init" <<<"$out"
scratch="$(mktemp -d /var/tmp/seald-test.XXXXXX)"
$sudo chown seald:seald "$scratch"
sed -e 's|^listen = .*|listen = "127.0.0.1:0"|' -e "s|^store = .*|store = \"$scratch/seald.db\"|" \
  /etc/seald/seald.toml | $sudo tee "$scratch/seald.toml" >/dev/null
$sudo setpriv --reuid=seald --regid=seald --init-groups \
  /usr/bin/seald --config "$scratch/seald.toml" --init >"$work/run.out" 2>"$work/run.err" &
pid=$!
for _ in $(seq 1 100); do
  grep -q "seald listening on" "$work/run.out" && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
check "seald starts as user seald on the packaged config (with --init)" grep -q "seald listening on" "$work/run.out"
check "its store is 0600 seald" test "$($sudo stat -c '%a %U' "$scratch/seald.db" 2>/dev/null)" = "600 seald"
$sudo kill "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
$sudo rm -rf "$scratch"

# Remove: binaries go, the conffile and the data stay.
$sudo touch /var/lib/seald/seald.db # stands for a store with its usage log
check "dpkg -r removes the package" $sudo dpkg -r seald
check "the binaries are gone" bash -c '! test -e /usr/bin/seald && ! test -e /usr/bin/sealctl && ! test -e /usr/bin/seald-device-host'
check "the unit is gone" test ! -e /lib/systemd/system/seald.service
check "the config stays after remove" test -f /etc/seald/seald.toml
check "dpkg shows config-files" test "$(installed_state)" = "config-files"

# Purge: the config goes; the store and the user stay (usage log kept 3 years).
check "dpkg -P purges the package without errors" bash -c "$sudo dpkg -P seald >'$work/purge.out' 2>&1"
check "purge says the data is kept" grep -q "are kept" "$work/purge.out"
check "the config is gone after purge" test ! -e /etc/seald/seald.toml
check "the store stays after purge" test -e /var/lib/seald/seald.db
check "the first-start file is gone after purge" test ! -e /var/lib/seald/first-start.env
check "dpkg no longer knows seald" bash -c "[ -z \"\$(dpkg-query -W -f='\${db:Status-Status}' seald 2>/dev/null)\" ] || [ \"\$(dpkg-query -W -f='\${db:Status-Status}' seald)\" = not-installed ]"
$sudo rm -f "$marker"

echo "test-deb: $failures failure(s), $((SECONDS - start)) s"
[ "$failures" -eq 0 ]
