#!/usr/bin/env bash
# Installs the system packages seald's build, daemon and tests need, if any are missing.
# Safe to run again: it does nothing when everything is there.
set -euo pipefail

# chromium, chromium-driver: the console's browser tests (headless, on loopback);
# fonts-wqy-microhei: a CJK font, so the Chinese console renders (and its screenshots read).
packages=(softhsm2 opensc pcscd vsmartcard-vpcd libpcsclite-dev pkg-config openssl sqlite3
  chromium chromium-driver fonts-wqy-microhei)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
command -v cargo >/dev/null || { echo "setup: cargo not found; install Rust with rustup first" >&2; exit 1; }
