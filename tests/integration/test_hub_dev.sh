#!/bin/bash
# certconn-hub and the connector together, brought up as `make demo` does (certconnctl dev
# up): the hub (its CA key, RSA, in its own SoftHSM2 token) runs on loopback, the dev
# connector is registered with a one-time enrollment token (its CSR signed by the client key
# in the connector's token), and net talks to the hub over mutual TLS with that key through
# keys: health messages arrive (event 5000, the hub marks it healthy). Then `certconnctl
# register` by hand (a refused token, a good one), dev up again (idempotent), dev down.
set -u
CERTCONNCTL=${CERTCONNCTL:?set by ctest}
HUB=${CERTCONN_HUB:-${CC_BUILD_DIR:?set by ctest}/certconn-hub}

T=$(mktemp -d /tmp/certconn-hubdev.XXXXXX)
chmod 755 "$T"
D=$T/dev
pass=0
fail=0
ok() { echo "ok - $*"; pass=$((pass + 1)); }
bad() { echo "FAIL - $*"; fail=$((fail + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
cleanup() {
	"$CERTCONNCTL" dev down --dir "$D" >/dev/null 2>&1
	if [ "$fail" != 0 ]; then
		[ -f "$D/certconnd.log" ] && { echo "--- certconnd.log"; tail -40 "$D/certconnd.log"; }
		[ -f "$D/hub/hub.log" ] && { echo "--- hub.log"; grep -v ' debug: ' "$D/hub/hub.log" | tail -40; }
	fi
	rm -rf "$T"
}
trap cleanup EXIT

json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }
admin() { "$HUB" admin -c "$D/hub/hub.json" "$@"; }
connectors() { admin --json connectors | python3 -c "import json,sys; d=json.load(sys.stdin)['value']; print($1)"; }

if ! "$CERTCONNCTL" dev up --dir "$D"; then
	bad "certconnctl dev up"
	exit 1
fi
ok "certconnctl dev up"

URL=$(json "$D/dev.json" "d['hub_url']")
check "dev.json names the hub" bash -c "[[ '$URL' == https://127.0.0.1:* ]]"
HUBPID=$(cat "$D/hub/hub.pid")
check "the hub runs" kill -0 "$HUBPID"
check "the hub CA key is RSA-3072 (the default of certconn-hub init)" \
	bash -c "openssl x509 -in '$D/hub/ca.pem' -noout -text | grep -q 'Public-Key: (3072 bit)'"
check "the hub CA's private key is in the hub's token, sensitive and never extractable" bash -c \
	"SOFTHSM2_CONF='$D/hub/softhsm2.conf' pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so \
	--token-label certconn-hub --login --pin \$(cat '$D/hub/pin') --list-objects --type privkey \
	--label hub-ca 2>/dev/null | grep -q 'sensitive.*never extractable'"
check "... and no file in the hub's directory holds a key but the TLS key" bash -c \
	"[ \"\$(grep -rl 'PRIVATE KEY' '$D/hub' --exclude-dir=tokens | xargs -n1 basename | sort -u)\" = tls.key ]"
check "the hub's TLS is 1.2 or later only" \
	bash -c "! openssl s_client -connect ${URL#https://} -tls1_1 </dev/null >/dev/null 2>&1"

# The dev connector: registered, its certificate bound to the key in the token.
CERT=$D/state/net/service/client.pem
check "the client certificate is where net looks" test -s "$CERT"
check "it chains to the hub CA" openssl verify -CAfile "$D/hub/ca.pem" "$CERT"
SOFTHSM2_CONF=$D/softhsm2.conf pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so \
	--token-label certconn --read-object --type pubkey --label client -o "$T/client.der" \
	>/dev/null 2>&1
check "its key is the token's client key" bash -c \
	"cmp <(openssl x509 -in '$CERT' -noout -pubkey | openssl pkey -pubin -outform DER) \
	<(openssl pkey -pubin -inform DER -in '$T/client.der' -outform DER)"
check "the client's private key is sensitive and never extractable" bash -c \
	"SOFTHSM2_CONF='$D/softhsm2.conf' pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so \
	--token-label certconn --login --pin \$(cat '$D/pin') --list-objects --type privkey \
	--label client 2>/dev/null | grep -q 'sensitive.*never extractable'"
ID=$(connectors "d[0]['connectorId']")
check "one connector, named dev-connector" test "$(connectors "len(d), d[0]['name']")" = "1 dev-connector"
check "its certificate names it" bash -c \
	"openssl x509 -in '$CERT' -noout -ext subjectAltName | grep -q 'urn:certconn:connector:dev:$ID'"

# net reports health over mutual TLS (the handshake's signature is made by keys).
for _ in $(seq 1 60); do
	[ "$(connectors "d[0]['health']")" = healthy ] && break
	sleep 0.5
done
check "the hub marks it healthy" test "$(connectors "d[0]['health']")" = healthy
check "its lifecycle is supported" test "$(connectors "d[0]['lifecycle']['status']")" = supported
check "its health message has the token state" \
	test "$(connectors "d[0]['lastHealthMessage']['tokenState']")" = ok
check "event 5000 HealthMessageUploadSuccess is logged" \
	grep -q '"id":5000' "$D/log/operational.jsonl"
check "its health message says the local CA answers" \
	test "$(connectors "d[0]['lastHealthMessage']['caReachable']")" = True

# The pfx role's public key reaches the hub with the health messages, and the hub encrypts an
# imported PFX's password to it (certconn-hub admin pfx-import).
SOFTHSM2_CONF=$D/softhsm2.conf pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so \
	--token-label certconn --read-object --type pubkey --label pfx -o "$T/pfx.der" \
	>/dev/null 2>&1
check "the hub keeps the token's pfx public key" test \
	"$(connectors "d[0]['pfxKey']['publicKey']")" = \
	"$(openssl pkey -pubin -inform DER -in "$T/pfx.der" -outform DER | base64 -w0)"
check "... with a keyName naming the role and the key" bash -c \
	"[[ '$(connectors "d[0]['pfxKey']['keyName']")' =~ ^pfx:[0-9a-f]{16}$ ]]"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/smime.key" -out "$T/smime.pem" \
	-subj "/CN=alice@example.net" -days 30 >/dev/null 2>&1
openssl pkcs12 -export -inkey "$T/smime.key" -in "$T/smime.pem" -out "$T/smime.pfx" \
	-passout pass:Import-Pass-1 >/dev/null 2>&1
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/device.key" 2>/dev/null
openssl pkey -in "$T/device.key" -pubout -out "$T/device.pub"
printf 'Import-Pass-1\n' >"$T/pfx-pass"
OUT=$(admin pfx-import --tenant dev --pfx "$T/smime.pfx" --password-file "$T/pfx-pass" \
	--device-key "$T/device.pub" --device-id laptop-1 --purpose smimeEncryption 2>&1)
check "admin pfx-import with a password that does not open the PFX is refused" bash -c \
	"! '$HUB' admin -c '$D/hub/hub.json' pfx-import --tenant dev --pfx '$T/smime.pfx' \
	--password nope --device-key '$T/device.pub' >/dev/null 2>&1"
REQ=$(tail -1 <<<"$OUT")
check "admin pfx-import queues a request" bash -c "[[ '$REQ' =~ ^[0-9a-f-]{36}$ ]]"
payload() { admin --json request "$REQ" | python3 -c "import json,sys; d=json.load(sys.stdin)['value']; print($1)"; }
check "... whose payload has the password encrypted with OAEP-SHA512 (the default)" \
	test "$(payload "d['payload']['paddingScheme'], len(d['payload']['encryptedPassword'])")" = "OaepSha512 344"
check "... the keyName of the connector's pfx key and the device's key" \
	test "$(payload "d['payload']['keyName'] == '$(connectors "d[0]['pfxKey']['keyName']")', d['payload']['deviceId'], 'password' in d['payload']")" = "True laptop-1 False"
check "... and never the password itself" bash -c "! '$HUB' admin -c '$D/hub/hub.json' --json request '$REQ' | grep -q Import-Pass-1"
admin request "$REQ" --wait 60 >/dev/null
R2=$(admin pfx-import --tenant dev --pfx "$T/smime.pfx" --password-file "$T/pfx-pass" \
	--device-cert "$T/smime.pem" --connector "$ID" --padding OaepSha256 --id import-2 2>&1 | tail -1)
check "admin pfx-import for one connector, OAEP-SHA256, a device certificate" test "$R2" = import-2
REQ2=$R2
payload2() { admin --json request "$REQ2" | python3 -c "import json,sys; d=json.load(sys.stdin)['value']; print($1)"; }
check "... the request names its target and carries the certificate" \
	test "$(payload2 "d['targetConnector'] == '$ID', d['payload']['paddingScheme'], d['payload']['deviceCertificate'] == '$(openssl x509 -in "$T/smime.pem" -outform DER | base64 -w0)'")" = "True OaepSha256 True"
admin tenant add idle >/dev/null
IDLE=$(admin queue revoke --tenant idle --payload '{"serialNumber":"0A"}')
check "request --wait gives up with status 3 on a request nobody serves" bash -c \
	"'$HUB' admin -c '$D/hub/hub.json' request '$IDLE' --wait 1 >/dev/null 2>&1; [ \$? = 3 ]"
check "... and an unknown request is an error (status 1)" bash -c \
	"'$HUB' admin -c '$D/hub/hub.json' request does-not-exist --wait 1 >/dev/null 2>&1; [ \$? = 1 ]"
check "the dev connector leases it and answers (request --wait)" \
	test "$(payload "d['state'] in ('completed', 'failed'), d['completedBy']")" = "True $ID"

# certconnctl register by hand.
OUT=$("$CERTCONNCTL" -c "$D/certconnd.json" register --hub "$URL" --token cce1.made-up \
	--ca "$D/hub/ca.pem" --cert-out "$T/second.pem" 2>&1)
RC=$?
check "register with an unknown token fails" test "$RC" = 1
check "... and says why" grep -q "InvalidEnrollmentToken" <<<"$OUT"
TOKEN=$(admin token create --tenant dev --features pkcs,revoke 2>/dev/null)
OUT=$("$CERTCONNCTL" -c "$D/certconnd.json" register --hub "$URL" --token "$TOKEN" \
	--ca "$D/hub/ca.pem" --features scep --cert-out "$T/second.pem" 2>&1)
check "register asking for a feature the token does not allow fails" grep -q "FeatureNotAllowed" <<<"$OUT"
OUT=$("$CERTCONNCTL" -c "$D/certconnd.json" register --hub "$URL" --token "$TOKEN" \
	--ca "$D/hub/ca.pem" --features pkcs,revoke --name second --cert-out "$T/second.pem" 2>&1)
RC=$?
echo "$OUT"
check "register with a fresh token succeeds" test "$RC" = 0
check "the second certificate chains to the hub CA" openssl verify -CAfile "$D/hub/ca.pem" "$T/second.pem"
check "the hub lists two connectors" test "$(connectors "len(d)")" = 2
OUT=$("$CERTCONNCTL" -c "$D/certconnd.json" register --hub "$URL" --token "$TOKEN" \
	--ca "$D/hub/ca.pem" --features pkcs --cert-out "$T/third.pem" 2>&1)
check "the enrollment token is one-time" grep -q "InvalidEnrollmentToken" <<<"$OUT"

# dev up again keeps everything; dev down stops the hub too.
check "dev up again is idempotent" "$CERTCONNCTL" dev up --dir "$D"
check "... the same hub" test "$(json "$D/dev.json" "d['hub_url']")" = "$URL"
check "... no new registration" test "$(connectors "len(d)")" = 2
"$CERTCONNCTL" dev down --dir "$D"
check "dev down stops the hub" bash -c "! kill -0 $HUBPID 2>/dev/null"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
