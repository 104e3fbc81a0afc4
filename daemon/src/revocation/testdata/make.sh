#!/bin/sh
# Regenerates the revocation fixtures with OpenSSL (run in this directory). The tests judge
# them at fixed times inside their validity (2027), so they need not be regenerated.
set -e
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/ext.cnf" <<'CNF'
[ca]
default_ca = test_ca
[test_ca]
database = WORK/index.txt
default_md = sha256
crlnumber = WORK/crlnumber
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
[v3_leaf]
keyUsage = critical,digitalSignature,nonRepudiation
authorityInfoAccess = OCSP;URI:http://127.0.0.1:9/ocsp
crlDistributionPoints = URI:http://127.0.0.1:9/ca.crl
[v3_responder]
keyUsage = critical,digitalSignature
extendedKeyUsage = OCSPSigning
[v3_plain]
keyUsage = critical,digitalSignature
CNF
sed -i "s#WORK#$work#" "$work/ext.cnf"
echo 01 > "$work/crlnumber"
key() { openssl ecparam -name prime256v1 -genkey -noout -out "$1"; }
key root.key
openssl req -new -x509 -key root.key -subj "/CN=Revocation Test Root" -days 3650 \
  -config "$work/ext.cnf" -extensions v3_ca -out root.pem
key other.key
openssl req -new -x509 -key other.key -subj "/CN=Other Root" -days 3650 \
  -config "$work/ext.cnf" -extensions v3_ca -out other.pem
issue() { # name serial extensions
  key "$work/$1.key"
  openssl req -new -key "$work/$1.key" -subj "/CN=$1" -out "$work/$1.csr"
  openssl x509 -req -in "$work/$1.csr" -CA root.pem -CAkey root.key -set_serial "$2" -days 3650 \
    -extfile "$work/ext.cnf" -extensions "$3" -out "$1.pem"
}
issue good 16 v3_leaf
issue revoked 17 v3_leaf
issue responder 18 v3_responder
cp "$work/responder.key" responder.key
issue impostor 19 v3_plain
cp "$work/impostor.key" impostor.key
issue compromised 20 v3_leaf
# A responder with the right extended key usage, certified by another CA.
key foreign.key
openssl req -new -key foreign.key -subj "/CN=foreign responder" -out "$work/foreign.csr"
openssl x509 -req -in "$work/foreign.csr" -CA other.pem -CAkey other.key -set_serial 21 -days 3650 \
  -extfile "$work/ext.cnf" -extensions v3_responder -out foreign.pem
# A root with the same name as root.pem and another key.
key twin.key
openssl req -new -x509 -key twin.key -subj "/CN=Revocation Test Root" -days 3650 \
  -config "$work/ext.cnf" -extensions v3_ca -out "$work/twin.pem"
printf 'V\t361231235959Z\t\t10\tunknown\t/CN=good\n' > "$work/index.txt"
printf 'R\t361231235959Z\t261101120000Z,keyCompromise\t11\tunknown\t/CN=revoked\n' >> "$work/index.txt"
printf 'R\t361231235959Z\t261101120000Z,keyTime,20261015000000Z\t14\tunknown\t/CN=compromised\n' >> "$work/index.txt"
crl() { openssl ca -config "$work/ext.cnf" -gencrl -keyfile root.key -cert root.pem "$@"; }
crl -crl_lastupdate 20261129000000Z -crl_nextupdate 20361129000000Z -out "$work/crl.pem"
openssl crl -in "$work/crl.pem" -outform DER -out crl.der
crl -crl_lastupdate 20261101000000Z -crl_nextupdate 20261102000000Z -out expired-crl.pem
openssl ca -config "$work/ext.cnf" -gencrl -keyfile twin.key -cert "$work/twin.pem" \
  -crl_lastupdate 20261129000000Z -crl_nextupdate 20361129000000Z -out "$work/twin.pem.crl"
openssl crl -in "$work/twin.pem.crl" -outform DER -out twin-crl.der
ocsp() { # cert out signer key [extra]
  openssl ocsp -issuer root.pem -cert "$1.pem" -no_nonce -reqout "$work/req.der"
  openssl ocsp -index "$work/index.txt" -CA root.pem -rsigner "$3" -rkey "$4" \
    -reqin "$work/req.der" -respout "$2" -ndays 3650 $5
}
ocsp good ocsp-good.der root.pem root.key
ocsp revoked ocsp-revoked.der root.pem root.key
ocsp good ocsp-delegated.der responder.pem responder.key
ocsp good ocsp-impostor.der impostor.pem impostor.key
ocsp good ocsp-foreign.der foreign.pem foreign.key
ocsp compromised ocsp-compromised.der root.pem root.key
# No nonce and no nextUpdate: nothing bounds a replay.
openssl ocsp -issuer root.pem -cert good.pem -no_nonce -reqout "$work/req.der"
openssl ocsp -index "$work/index.txt" -CA root.pem -rsigner root.pem -rkey root.key \
  -reqin "$work/req.der" -respout ocsp-no-next-update.der
openssl ocsp -issuer root.pem -cert good.pem -reqout "$work/req.der"
openssl ocsp -index "$work/index.txt" -CA root.pem -rsigner root.pem -rkey root.key \
  -reqin "$work/req.der" -respout ocsp-nonce.der -ndays 3650
rm -f root.key other.key responder.key impostor.key foreign.key twin.key
