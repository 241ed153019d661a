#!/bin/bash
# `certconnctl dev up` + `dev demo` (what `make demo` runs): the demo queues one request of
# each queued flow through the dev hub (pkcs, pkcs-recrypt of the kept copy, pfx-import of a
# demo PFX whose password is encrypted with RSA-OAEP-SHA512 to the connector's pfx key,
# revoke of the pkcs certificate), waits for the results and prints them with their events.
# Checked here: the demo's exit status and output, and behind it the hub's records, the
# local CA's store and the CRL served over HTTP.
set -u
CERTCONNCTL=${CERTCONNCTL:?set by ctest}
HUB=${CERTCONN_HUB:-${CC_BUILD_DIR:?set by ctest}/certconn-hub}

T=$(mktemp -d /tmp/certconn-flowsdemo.XXXXXX)
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
		[ -f "$T/demo.out" ] && { echo "--- demo output"; cat "$T/demo.out"; }
		[ -f "$D/certconnd.log" ] && { echo "--- certconnd.log"; tail -40 "$D/certconnd.log"; }
	fi
	rm -rf "$T"
}
trap cleanup EXIT

if ! "$CERTCONNCTL" dev up --dir "$D" >"$T/up.out" 2>&1; then
	cat "$T/up.out"
	bad "certconnctl dev up"
	exit 1
fi
ok "certconnctl dev up"
check "dev up configured net.flows" python3 -c "
import json,sys; n=json.load(open('$D/certconnd.json'))['net']
f=n['flows']; assert f['pfx_role']=='pfx' and f['pkcs_profiles']['devices']['keep_copy']
assert set(n['service']['features']) >= {'pkcs','pkcs-recrypt','pfx-import','revoke'}"
check "the connector registered every flow's feature" bash -c "'$HUB' admin -c '$D/hub/hub.json' \
	--json connectors | python3 -c \"import json,sys; f=json.load(sys.stdin)['value'][0]['features']; \
	assert {'pkcs','pkcs-recrypt','pfx-import','revoke'} <= set(f), f\""

"$CERTCONNCTL" dev demo --dir "$D" >"$T/demo.out" 2>&1
RC=$?
check "dev demo succeeds" test "$RC" = 0
OUT=$T/demo.out
has() { grep -qE -- "$1" "$OUT"; }
check "it prints demo OK" has '^== demo OK'
check "all four queued flows succeeded" has '^== queued flows: 4 of 4 succeeded'
for f in pkcs pkcs-recrypt pfx-import revoke; do
	check "a $f request was queued through the hub" has "queued +$f request [0-9a-f-]+ through"
done
check "four results completed" test "$(grep -cE 'result +state completed, succeeded true, errorCode 0' "$OUT")" = 4
check "the pkcs device opened its delivery" has 'device +decrypted the password and the PKCS#12 .*CN *= *demo-laptop, 2048-bit RSA key that matches'
check "the second device got the same certificate" has 'demo-tablet got the certificate of demo-laptop'
check "the imported S/MIME certificate reached the device" has 'device +decrypted .*Demo User \(S.?/MIME\)'
check "the password was encrypted with OAEP-SHA512" has 'RSA-OAEP-SHA512'
check "the import named its device" has '2020 PkcsImportDownloadedRequest .*"deviceId":"demo-laptop"'
# Each flow's events, printed with the request (Admin success and the upload details).
for e in '1000 PkcsRequestSuccess' '1020 PkcsDownloadedRequest' '1050 PkcsIssuedSuccess' \
	'1102 PkcsUploadedRequest' '1200 PkcsRecryptRequestSuccess' '1251 PkcsRecryptDecryptSuccess' \
	'1250 PkcsRecryptReencryptSuccess' '2000 PkcsImportRequestSuccess' \
	'2050 PkcsImportReencryptSuccess' '3000 RevokeRequestSuccess' '3050 RevokeSuccess' \
	'3102 RevokeUploadedRequest'; do
	check "event $e is printed with its request" has "event +(Admin|Operational) +$e"
done

# Behind the output: the hub recorded four completed requests, one per flow.
check "the hub has one completed request of each flow" bash -c "'$HUB' admin -c '$D/hub/hub.json' \
	--json requests --tenant dev | python3 -c \"import json,sys
v=json.load(sys.stdin)['value']
for f in ('pkcs','pkcs-recrypt','pfx-import','revoke'):
    assert [r['state'] for r in v if r['feature']==f]==['completed'], (f, v)\""
SERIAL=$(grep -oE 'serial [0-9A-F]+ is revoked' "$OUT" | awk '{print $2}')
check "the revoked serial is printed" test -n "$SERIAL"
check "the CA's store says revoked" bash -c "'$CERTCONNCTL' -c '$D/certconnd.json' ca show '$SERIAL' | grep -q revoked"
HTTP=$(python3 -c "import json; print(json.load(open('$D/dev.json'))['scep_url'].rsplit('/scep',1)[0])")
ok_crl=no
for _ in $(seq 1 30); do
	if curl -sf "$HTTP/crl/dev.crl" -o "$T/dev.crl" &&
		openssl crl -inform DER -in "$T/dev.crl" -noout -text | tr -d ' ' | grep -qi "SerialNumber:$SERIAL"; then
		ok_crl=yes
		break
	fi
	sleep 0.5
done
check "the CRL served over HTTP names the revoked serial" test "$ok_crl" = yes
check "the CRL is signed by the local CA" bash -c "openssl crl -inform DER -in '$T/dev.crl' -CAfile '$D/ca.pem' -noout 2>&1 | grep -q 'verify OK'"
check "no payload file is left behind" bash -c "[ -z \"\$(ls -A '$D/demo' 2>/dev/null)\" ]"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
