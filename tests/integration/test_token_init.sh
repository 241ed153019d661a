#!/bin/bash
# certconnctl token init against a fresh SoftHSM2 token: it initialises the token, creates
# each role's key pair as sensitive and never extractable, prints RFC 7512 URIs, keeps
# existing keys on a second run, and makes the CA certificate with the ca key in the token.
# OpenSC's pkcs11-tool, which nobody here wrote, reads the attributes back.
set -u
CERTCONNCTL=${CERTCONNCTL:?set by ctest}
MODULE=/usr/lib/softhsm/libsofthsm2.so

T=$(mktemp -d /tmp/certconn-token.XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0
fail=0
ok() { echo "ok - $*"; pass=$((pass + 1)); }
bad() { echo "FAIL - $*"; fail=$((fail + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }

mkdir -p "$T/tokens"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$T" >"$T/softhsm2.conf"
export SOFTHSM2_CONF=$T/softhsm2.conf
echo 3141592653 >"$T/pin"
echo 2718281828 >"$T/so-pin"

OUT=$("$CERTCONNCTL" token init --module "$MODULE" --module-env "SOFTHSM2_CONF=$T/softhsm2.conf" \
	--token t1 --pin-file "$T/pin" --so-pin-file "$T/so-pin" --roles ca,ra,client \
	--key client=ec:P-256 --ca-cert "$T/ca.pem" --ca-subject "CN=Test CA,O=certconn tests")
RC=$?
echo "$OUT"
check "token init exits 0" test "$RC" = 0
check "prints the ca URI" grep -q "^ca  *pkcs11:token=t1;object=ca  *(created)" <<<"$OUT"
check "prints the ra URI" grep -q "^ra  *pkcs11:token=t1;object=ra" <<<"$OUT"
check "prints the client URI" grep -q "^client  *pkcs11:token=t1;object=client" <<<"$OUT"

LIST=$(pkcs11-tool --module "$MODULE" --token-label t1 --login --pin 3141592653 --list-objects --type privkey 2>/dev/null)
echo "$LIST"
check "three private keys" test "$(grep -c '^Private Key Object' <<<"$LIST")" = 3
check "the client key is EC" grep -q "Private Key Object; EC" <<<"$LIST"
check "every private key is sensitive and never extractable" \
	test "$(grep -c 'never extractable' <<<"$LIST")" = 3
check "no private key may unwrap or derive" bash -c '! grep -E "Usage:.*(unwrap|derive)" <<<"$1"' _ "$LIST"
check "the labels are the roles" bash -c 'for r in ca ra client; do grep -q "label: *$r\$" <<<"$1" || exit 1; done' _ "$LIST"

check "the CA certificate is self-signed and verifies" \
	openssl verify -CAfile "$T/ca.pem" "$T/ca.pem"
check "the CA certificate is a CA" bash -c "openssl x509 -in '$T/ca.pem' -noout -ext basicConstraints | grep -q 'CA:TRUE'"
check "the CA certificate carries the subject asked for" bash -c "openssl x509 -in '$T/ca.pem' -noout -subject | grep -q 'CN = Test CA'"
# The certificate's public key is the token's ca key.
pkcs11-tool --module "$MODULE" --token-label t1 --read-object --type pubkey --label ca -o "$T/ca-pub.der" >/dev/null 2>&1
check "the CA certificate holds the token's ca public key" bash -c \
	"cmp <(openssl pkey -pubin -inform DER -in '$T/ca-pub.der' -outform DER) <(openssl x509 -in '$T/ca.pem' -noout -pubkey | openssl pkey -pubin -outform DER)"

OUT=$("$CERTCONNCTL" token init --module "$MODULE" --module-env "SOFTHSM2_CONF=$T/softhsm2.conf" \
	--token t1 --pin-file "$T/pin" --roles ca,ra,client,pfx)
check "a second run exits 0" test $? = 0
check "a second run keeps the existing keys" grep -q "^ca  *pkcs11:token=t1;object=ca  *(existed)" <<<"$OUT"
check "a second run adds the new role" grep -q "^pfx  *pkcs11:token=t1;object=pfx  *(created)" <<<"$OUT"

echo 0000 >"$T/badpin"
"$CERTCONNCTL" token init --module "$MODULE" --module-env "SOFTHSM2_CONF=$T/softhsm2.conf" \
	--token t1 --pin-file "$T/badpin" --roles ra >/dev/null 2>&1
check "a wrong PIN fails" test $? != 0
"$CERTCONNCTL" token init --module "$MODULE" --token t1 >/dev/null 2>&1
check "missing options are a usage error (2)" test $? = 2

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
