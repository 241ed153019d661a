#!/bin/bash
# certmonger (Debian's certmonger 0.79, a SCEP client nobody here wrote) against a real
# certconnd brought up with `certconnctl dev up` (all keys in SoftHSM2, net sandboxed):
# GetCACaps / GetCACert / PKCSReq enrollment with the static challenge, renewal (certmonger
# signs with the certificate it renews), a one-time challenge from `certconnctl scep
# challenge` (and its reuse refused), a wrong challenge refused; every certificate verifies
# with `openssl verify` against the local CA; a revocation reaches the CRL served at
# /crl/dev.crl; events 4000/4003/4004/4006 are written.
#
# certmonger runs on a private session bus (dbus-run-session) with all of its state under
# the test's directory (design section 7).
set -u
CERTCONNCTL=${CERTCONNCTL:?set by ctest}

for tool in certmonger getcert dbus-run-session openssl curl python3; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "FAIL - $tool is not installed (scripts/install-deps installs certmonger and dbus)"
		exit 1
	fi
done

T=$(mktemp -d /tmp/certconn-scep-cm.XXXXXX)
chmod 755 "$T"
D=$T/dev
CM=$T/cm
pass=0
fail=0
ok() { echo "ok - $*"; pass=$((pass + 1)); }
bad() { echo "FAIL - $*"; fail=$((fail + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
cleanup() {
	"$CERTCONNCTL" dev down --dir "$D" >/dev/null 2>&1
	if [ "$fail" != 0 ]; then
		[ -f "$D/certconnd.log" ] && { echo "--- certconnd.log (last 40 lines)"; tail -40 "$D/certconnd.log"; }
		[ -f "$CM/certmonger.log" ] && { echo "--- certmonger.log (last 40 lines)"; tail -40 "$CM/certmonger.log"; }
	fi
	rm -rf "$T"
}
trap cleanup EXIT

count_events() { # file id
	[ -f "$1" ] || { echo 0; return; }
	python3 -c "
import json,sys
print(sum(json.loads(l)['id']==int(sys.argv[2]) for l in open(sys.argv[1])))" "$1" "$2"
}

if ! "$CERTCONNCTL" dev up --dir "$D" >"$T/up.log" 2>&1; then
	cat "$T/up.log"
	bad "dev up"
	exit 1
fi
ok "dev up"
SCEP_URL=$(python3 -c "import json;print(json.load(open('$D/dev.json'))['scep_url'])")
BASE=${SCEP_URL%/scep}
PW=$(head -n1 "$D/scep-password")
CTL() { "$CERTCONNCTL" -c "$D/certconnd.json" "$@"; }

# certmonger with its state redirected, one session for a list of getcert commands.
mkdir -p "$CM"/{cas,requests,local,tmp,home}
cat >"$CM/env.sh" <<EOF
export CERTMONGER_CAS_DIR=$CM/cas CERTMONGER_REQUESTS_DIR=$CM/requests
export CERTMONGER_LOCAL_CA_DIR=$CM/local CERTMONGER_SYSTEM_LOCK_FILE=$CM/lock
export CERTMONGER_TMPDIR=$CM/tmp HOME=$CM/home
EOF
cm_session() { # script (getcert commands, run with certmonger up)
	cat >"$CM/session.sh" <<EOF
. $CM/env.sh
certmonger -s -n -p $CM/pid -d 1 >>$CM/certmonger.log 2>&1 &
for i in \$(seq 1 50); do [ -s $CM/pid ] && break; sleep 0.1; done
sleep 0.5
$1
rc=\$?
kill \$(cat $CM/pid) 2>/dev/null
exit \$rc
EOF
	timeout 180 dbus-run-session -- bash "$CM/session.sh" 2>&1 | grep -v "fd limit"
}
cm_status() { # certificate file
	cm_session "getcert list -s -f $1" | sed -n 's/^[[:space:]]*status: //p' | head -n1
}

# 1. Enrollment: GetCACaps, GetCACert, PKCSReq with the static challenge.
cm_session "getcert add-scep-ca -s -c dev -u $SCEP_URL -N $D/ca.pem &&
getcert request -s -c dev -k $CM/key1.pem -f $CM/cert1.pem -N CN=cm-device-1,O=certconn \
  -L $PW -w --wait-timeout 60" >"$T/req1.log"
check "certmonger enrolled (status MONITORING)" test "$(cm_status "$CM/cert1.pem")" = MONITORING
check "the certificate verifies against the local CA" \
	openssl verify -CAfile "$D/ca.pem" "$CM/cert1.pem"
check "the certificate is for certmonger's key" bash -c "
	[ \"\$(openssl x509 -in $CM/cert1.pem -noout -pubkey)\" = \"\$(openssl pkey -in $CM/key1.pem -pubout)\" ]"
check "subject CN=cm-device-1" bash -c "openssl x509 -in $CM/cert1.pem -noout -subject | grep -q 'CN = cm-device-1'"
check "CDP names /crl/dev.crl" bash -c "openssl x509 -in $CM/cert1.pem -noout -text | grep -q '$BASE/crl/dev.crl'"
SERIAL1=$(openssl x509 -in "$CM/cert1.pem" -noout -serial | cut -d= -f2)
check "certconnctl ca list shows it" bash -c "$CERTCONNCTL -c $D/certconnd.json ca list | grep -q $SERIAL1"

# 2. Renewal: certmonger signs a new request with the certificate it renews.
cm_session "getcert resubmit -s -f $CM/cert1.pem -w --wait-timeout 60" >"$T/renew.log"
SERIAL2=$(openssl x509 -in "$CM/cert1.pem" -noout -serial | cut -d= -f2)
check "renewal gave a new certificate ($SERIAL1 -> $SERIAL2)" test "$SERIAL1" != "$SERIAL2"
check "the renewed certificate verifies" openssl verify -CAfile "$D/ca.pem" "$CM/cert1.pem"
check "renewed after enrollment: status MONITORING" test "$(cm_status "$CM/cert1.pem")" = MONITORING

# 3. A one-time challenge for the onetime profile; using it twice is refused.
cm_session "getcert add-scep-ca -s -c onetime -u $SCEP_URL/onetime -N $D/ca.pem" >/dev/null
CH=$(CTL scep challenge --profile onetime --ttl 600 2>/dev/null)
check "certconnctl scep challenge gave a challenge" test ${#CH} = 32
cm_session "getcert request -s -c onetime -k $CM/key2.pem -f $CM/cert2.pem -N CN=cm-device-2 \
  -L $CH -w --wait-timeout 60" >"$T/req2.log"
check "enrolled with the one-time challenge" test "$(cm_status "$CM/cert2.pem")" = MONITORING
check "that certificate verifies" openssl verify -CAfile "$D/ca.pem" "$CM/cert2.pem"
cm_session "getcert request -s -c onetime -k $CM/key3.pem -f $CM/cert3.pem -N CN=cm-device-3 \
  -L $CH -w --wait-timeout 60" >"$T/req3.log"
st=$(cm_status "$CM/cert3.pem")
check "the used challenge is refused (status $st)" test "$st" = CA_REJECTED
check "no certificate for the reused challenge" test ! -s "$CM/cert3.pem"

# 4. A wrong static challenge is refused.
cm_session "getcert request -s -c dev -k $CM/key4.pem -f $CM/cert4.pem -N CN=cm-device-4 \
  -L wrong-password -w --wait-timeout 60" >"$T/req4.log"
st=$(cm_status "$CM/cert4.pem")
check "a wrong challenge is refused (status $st)" test "$st" = CA_REJECTED

# 5. Revocation: the next CRL at /crl/dev.crl names the renewed certificate.
check "certconnctl ca revoke" CTL ca revoke "$SERIAL2" --reason superseded
curl -sf "$BASE/crl/dev.crl" -o "$T/dev.crl"
check "the CRL verifies against the CA" openssl crl -inform DER -in "$T/dev.crl" -noout \
	-CAfile "$D/ca.pem"
openssl crl -inform DER -in "$T/dev.crl" -out "$T/dev.crl.pem"
if openssl verify -crl_check -CAfile "$D/ca.pem" -CRLfile "$T/dev.crl.pem" "$CM/cert1.pem" \
	>"$T/verify.log" 2>&1; then
	bad "the revoked certificate still verifies with the CRL"
else
	check "openssl verify -crl_check says revoked" grep -q "certificate revoked" "$T/verify.log"
fi
check "the other certificate verifies with the CRL" openssl verify -crl_check \
	-CAfile "$D/ca.pem" -CRLfile "$T/dev.crl.pem" "$CM/cert2.pem"

# 6. Events (written by the parent a moment after net emits them).
sleep 0.5
L=$D/log
check "4003 ScepRequestReceived" test "$(count_events "$L/operational.jsonl" 4003)" -ge 5
check "4004 ScepVerifySuccess" test "$(count_events "$L/operational.jsonl" 4004)" -ge 3
check "4005 ScepVerifyFailure (reused and wrong challenge)" \
	test "$(count_events "$L/operational.jsonl" 4005)" -ge 2
check "4006 ScepIssuedSuccess" test "$(count_events "$L/operational.jsonl" 4006)" -ge 3
check "4000 ScepRequestSuccess" test "$(count_events "$L/admin.jsonl" 4000)" -ge 3
check "4001 ScepRequestIssuedFailure" test "$(count_events "$L/admin.jsonl" 4001)" -ge 2
check "events carry the transactionID" python3 -c "
import json,sys
ev=[json.loads(l) for l in open('$L/operational.jsonl')]
sys.exit(0 if all(e.get('correlationId') for e in ev if e['id']==4003) else 1)"

# 7. A clean stop, and no sanitizer report from any role (Asan builds).
check "dev down" "$CERTCONNCTL" dev down --dir "$D"
if grep -qE "Sanitizer|runtime error|killed by signal" "$D/certconnd.log"; then
	bad "certconnd.log has a sanitizer report or a killed role"
else
	ok "no sanitizer report, no killed role"
fi

echo "# $pass passed, $fail failed"
[ "$fail" = 0 ]
