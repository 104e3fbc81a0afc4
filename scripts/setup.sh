#!/usr/bin/env bash
# Installs the system packages seald's build, daemon and tests need, if any are missing.
# Safe to run again: it does nothing when everything is there.
set -euo pipefail

# chromium, chromium-driver: the console's browser tests (headless, on loopback);
# fonts-wqy-microhei: a CJK font, so the Chinese console renders (and its screenshots read);
# qpdf, poppler-utils (pdfsig, pdftoppm), python3-venv (pyHanko, below): the PDF tests' checkers;
# gcc, libc6-dev: the independent C client of hsm-sim's SKF entry points (and Rust's linker);
# p11-kit, p11-kit-modules: p11-kit's remoting, for PKCS#11 modules run out of process;
# postgresql: the shared store's tests (a throwaway cluster, scripts/postgres.sh);
# dpkg-dev (dpkg-shlibdeps), binutils (strip): cargo-deb; systemd (systemd-analyze verify),
# man-db (verify checks the unit's man: pages), adduser: the Debian package's tests.
packages=(softhsm2 opensc pcscd vsmartcard-vpcd libpcsclite-dev pkg-config openssl sqlite3
  chromium chromium-driver fonts-wqy-microhei qpdf poppler-utils python3 python3-venv
  gcc libc6-dev p11-kit p11-kit-modules postgresql dpkg-dev binutils systemd man-db adduser)
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

# pyHanko (from PyPI, pinned), used only by the PDF tests to validate seald's PAdES signatures
# independently: a virtualenv under target/ (ignored by git, kept between runs).
pdf_tools="$(cd "$(dirname "$0")/.." && pwd)/target/pdf-tools"
pyhanko_pins=(pyHanko==0.38.0 pyhanko-cli==0.6.0 pyhanko-certvalidator==0.33.0)
if ! "$pdf_tools/bin/pyhanko" --version 2>/dev/null | grep -q "0.38.0"; then
  echo "setup: installing ${pyhanko_pins[*]} into $pdf_tools"
  /usr/bin/python3 -m venv "$pdf_tools"
  "$pdf_tools/bin/pip" install -q --disable-pip-version-check "${pyhanko_pins[@]}"
fi
