#!/bin/bash
# certconnctl pfx: `public-key` reads the pfx role's public key from a SoftHSM2 token named
# by a certconnd config, and `encrypt-password` encrypts a PFX password to it in the Intune
# import form; `openssl pkeyutl` (which nobody here wrote) decrypts what the tool printed,
# for each padding scheme, with the private key of a software key given as a certificate or
# a public key, and the token's own key through pkcs11-tool's RSA-OAEP where SoftHSM has it
# (SHA-1 only, so the token checks compare public keys instead).
set -u
CERTCONNCTL=${CERTCONNCTL:?set by ctest}
MODULE=/usr/lib/softhsm/libsofthsm2.so

T=$(mktemp -d /tmp/certconn-pfxtool.XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0
fail=0
ok() { echo "ok - $*"; pass=$((pass + 1)); }
bad() { echo "FAIL - $*"; fail=$((fail + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$@"; }

# ---- a software key: encrypt with the tool, decrypt with openssl pkeyutl ----
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/k.pem" 2>/dev/null
openssl pkey -in "$T/k.pem" -pubout -out "$T/pub.pem"
openssl req -x509 -new -key "$T/k.pem" -subj /CN=pfx -days 1 -out "$T/cert.pem" 2>/dev/null
PW='Imp0rt-P@ss w0rd'
printf '%s\n' "$PW" >"$T/pw"

for scheme in OaepSha512 OaepSha384 OaepSha256; do
	md=sha${scheme#OaepSha}
	for keyfile in pub.pem cert.pem; do
		"$CERTCONNCTL" pfx encrypt-password --public-key "$T/$keyfile" --padding "$scheme" \
			--key-name conn-pfx-1 --password-file "$T/pw" >"$T/out.json"
		check "$scheme to $keyfile: exits 0" test $? = 0
		check "$scheme to $keyfile: paddingScheme" test "$(field "$T/out.json" paddingScheme)" = "$scheme"
		check "$scheme to $keyfile: keyName" test "$(field "$T/out.json" keyName)" = conn-pfx-1
		field "$T/out.json" encryptedPassword | openssl base64 -d -A >"$T/ct"
		check "$scheme to $keyfile: 256 bytes of ciphertext" test "$(stat -c %s "$T/ct")" = 256
		got=$(openssl pkeyutl -decrypt -inkey "$T/k.pem" -pkeyopt rsa_padding_mode:oaep \
			-pkeyopt "rsa_oaep_md:$md" -pkeyopt "rsa_mgf1_md:$md" -in "$T/ct")
		check "$scheme to $keyfile: openssl pkeyutl decrypts the password" test "$got" = "$PW"
	done
	# the wrong hash does not decrypt
	check "$scheme: another hash does not decrypt" bash -c "! openssl pkeyutl -decrypt \
		-inkey '$T/k.pem' -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha1 \
		-in '$T/ct' >/dev/null 2>&1"
done

# defaults: OaepSha512, keyName "pfx", the password on stdin
printf '%s' "$PW" | "$CERTCONNCTL" pfx encrypt-password --public-key "$T/pub.pem" >"$T/out.json"
check "stdin: exits 0" test $? = 0
check "default paddingScheme is OaepSha512" test "$(field "$T/out.json" paddingScheme)" = OaepSha512
check "default keyName is pfx" test "$(field "$T/out.json" keyName)" = pfx
field "$T/out.json" encryptedPassword | openssl base64 -d -A >"$T/ct"
got=$(openssl pkeyutl -decrypt -inkey "$T/k.pem" -pkeyopt rsa_padding_mode:oaep \
	-pkeyopt rsa_oaep_md:sha512 -pkeyopt rsa_mgf1_md:sha512 -in "$T/ct")
check "stdin: openssl decrypts" test "$got" = "$PW"

# refusals
"$CERTCONNCTL" pfx encrypt-password --public-key "$T/pub.pem" --padding OaepSha1 \
	--password-file "$T/pw" >/dev/null 2>"$T/err"
check "unknown padding: exit 2" test $? = 2
"$CERTCONNCTL" pfx encrypt-password --public-key "$T/pw" --password-file "$T/pw" >/dev/null 2>"$T/err"
check "not a key: exit 1" test $? = 1
check "not a key: says so" grep -q "neither a PEM public key nor a PEM certificate" "$T/err"
printf 'pass\xe2\x82\xac' >"$T/euro"
"$CERTCONNCTL" pfx encrypt-password --public-key "$T/pub.pem" --password-file "$T/euro" >/dev/null 2>"$T/err"
check "a character above U+00FF: exit 1" test $? = 1
check "a character above U+00FF: says so" grep -q "U+00FF" "$T/err"
: >"$T/empty"
"$CERTCONNCTL" pfx encrypt-password --public-key "$T/pub.pem" --password-file "$T/empty" >/dev/null 2>&1
check "empty password: exit 1" test $? = 1

# ---- the token's pfx key through a certconnd config ----
mkdir -p "$T/tokens"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$T" >"$T/softhsm2.conf"
export SOFTHSM2_CONF=$T/softhsm2.conf
echo 3141592653 >"$T/pin"
echo 2718281828 >"$T/so-pin"
chmod 600 "$T/pin" "$T/so-pin"
"$CERTCONNCTL" token init --module "$MODULE" --module-env "SOFTHSM2_CONF=$T/softhsm2.conf" \
	--token pfxtool --pin-file "$T/pin" --so-pin-file "$T/so-pin" --roles client,pfx >/dev/null
check "token init" test $? = 0
cat >"$T/certconnd.json" <<JSON
{
  "pkcs11": { "module": "$MODULE", "env": { "SOFTHSM2_CONF": "$T/softhsm2.conf" },
              "pin_file": "$T/pin" },
  "keys": { "roles": {
    "client": { "uri": "pkcs11:token=pfxtool;object=client" },
    "pfx": { "uri": "pkcs11:token=pfxtool;object=pfx" } } },
  "log": { "dir": "$T/log", "journald": false },
  "daemon": { "control_socket": "$T/control.sock", "state_dir": "$T/state" }
}
JSON
"$CERTCONNCTL" -c "$T/certconnd.json" pfx public-key >"$T/token-pub.pem" 2>"$T/err"
RC=$?
cat "$T/err"
check "pfx public-key exits 0" test "$RC" = 0
check "pfx public-key prints a PEM public key" grep -q "BEGIN PUBLIC KEY" "$T/token-pub.pem"
pkcs11-tool --module "$MODULE" --token-label pfxtool --read-object --type pubkey --label pfx \
	-o "$T/pfx-pub.der" >/dev/null 2>&1
check "it is the token's pfx public key" bash -c \
	"cmp <(openssl pkey -pubin -inform DER -in '$T/pfx-pub.der' -outform DER) <(openssl pkey -pubin -in '$T/token-pub.pem' -outform DER)"
"$CERTCONNCTL" -c "$T/certconnd.json" pfx encrypt-password --public-key "$T/token-pub.pem" \
	--password-file "$T/pw" >"$T/out.json"
check "encrypt-password to the token's key" test $? = 0
"$CERTCONNCTL" -c "$T/certconnd.json" pfx public-key --role nosuch >/dev/null 2>"$T/err"
check "unknown role: exit 1" test $? = 1
check "unknown role: says so" grep -q 'no key role "nosuch"' "$T/err"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
