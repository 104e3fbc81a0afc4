#!/usr/bin/env bash
# Our software SM3 / SM2 beside OpenSSL 3's on this machine, in one run (DESIGN §7).
#   scripts/bench-openssl.sh            # SECS=3 per OpenSSL figure
# OpenSSL 3.0 knows SM3 only through EVP (`-evp sm3`); `speed sm2` times EVP_DigestSign/Verify
# of 20 bytes, i.e. Z, e = SM3(Z ‖ M) and the curve work every time.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SECS:-3}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "== openssl $(openssl version | cut -d' ' -f2) speed -seconds $SECS -evp sm3"
openssl speed -seconds "$SECS" -bytes 64 -evp sm3 2>/dev/null | tail -1 | tee "$out/sm3-64"
openssl speed -seconds "$SECS" -bytes 16384 -evp sm3 2>/dev/null | tail -1 | tee "$out/sm3-16k"
echo "== openssl speed -seconds $SECS sm2"
openssl speed -seconds "$SECS" sm2 2>/dev/null | tail -1 | tee "$out/sm2"

echo "== cargo bench -p seald --bench crypto"
cargo bench -p seald --bench crypto -- '^sm3/(64|16384)$|^sm2/(sign|verify)' >"$out/criterion.txt" 2>&1 ||
    { cat "$out/criterion.txt"; exit 1; }

python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
crit = os.path.join("target", "criterion")

def ns(group, name):
    path = os.path.join(crit, group, name, "new", "estimates.json")
    with open(path) as f:
        return json.load(f)["mean"]["point_estimate"]

def ossl_kbps(file):
    return float(open(os.path.join(out, file)).read().split()[-1].rstrip("k")) * 1000

sm2 = open(os.path.join(out, "sm2")).read().split()
ossl_sign, ossl_verify = float(sm2[-2]), float(sm2[-1])
rows = [
    ("SM3 64 B (MB/s)", ossl_kbps("sm3-64") / 1e6, 64 / ns("sm3", "64") * 1e3),
    ("SM3 16 KiB (MB/s)", ossl_kbps("sm3-16k") / 1e6, 16384 / ns("sm3", "16384") * 1e3),
    ("SM2 sign (ops/s)", ossl_sign, 1e9 / ns("sm2", "sign_prehash")),
    ("SM2 verify (ops/s)", ossl_verify, 1e9 / ns("sm2", "verify_msg")),
]
print("\n| figure | OpenSSL 3 | seald | seald / OpenSSL |")
print("|---|---:|---:|---:|")
for name, o, s in rows:
    print(f"| {name} | {o:,.1f} | {s:,.1f} | {s / o:.2f} |")
PY
