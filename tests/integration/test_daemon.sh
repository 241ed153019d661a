#!/bin/bash
# The whole daemon on loopback with its keys in a real SoftHSM2 token, brought up the way an
# administrator would (certconnctl dev up), then: readiness and dev.json, keys list, the
# self-test through keys, the sandbox (users, seccomp, no PKCS#11 code in net, net cannot
# open the module, the token or the PIN), events in the JSON-lines files, supervision (a
# killed role is restarted, a crash loop ends the daemon), SIGHUP reload (good and bad),
# SIGTERM.
set -u
CERTCONND=${CERTCONND:?set by ctest}
CERTCONNCTL=${CERTCONNCTL:?set by ctest}

T=$(mktemp -d /tmp/certconn-daemon.XXXXXX)
chmod 755 "$T"
D=$T/dev
pass=0
fail=0
ok() { echo "ok - $*"; pass=$((pass + 1)); }
bad() { echo "FAIL - $*"; fail=$((fail + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
cleanup() {
	"$CERTCONNCTL" dev down --dir "$D" >/dev/null 2>&1
	if [ "$fail" != 0 ] && [ -f "$D/certconnd.log" ]; then
		echo "--- certconnd.log (last 60 lines)"; tail -60 "$D/certconnd.log"
	fi
	rm -rf "$T"
}
trap cleanup EXIT

json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }
# By socket, not by config: the SIGHUP part below breaks the config on purpose.
ctl() { "$CERTCONNCTL" -s "$D/control.sock" "$@"; }
status_field() { ctl status --json | python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# Waits until status says running with pids other than the ones given.
wait_running_new() {
	local old_net=$1 old_keys=$2
	for _ in $(seq 1 150); do
		if ctl status >/dev/null 2>&1; then
			local n k
			n=$(status_field "d['pids']['net']")
			k=$(status_field "d['pids']['keys']")
			if [ "$n" != "$old_net" ] && [ "$k" != "$old_keys" ] && [ "$n" != 0 ] && [ "$k" != 0 ]; then
				return 0
			fi
		fi
		sleep 0.2
	done
	return 1
}

count_events() { # file id
	[ -f "$1" ] || { echo 0; return; }
	python3 -c "
import json,sys
n=0
for l in open(sys.argv[1]):
    e=json.loads(l)
    n += e['id']==int(sys.argv[2])
print(n)" "$1" "$2"
}

# --- bring-up -------------------------------------------------------------------------
if ! "$CERTCONNCTL" dev up --dir "$D"; then
	bad "certconnctl dev up"
	exit 1
fi
ok "certconnctl dev up"
for k in scep_url softhsm2_conf token_label pin_file ca_cert log_dir; do
	check "dev.json has $k" test -n "$(json "$D/dev.json" "d['$k']")"
done
check "dev.json hub_url names the dev hub" bash -c "grep -Eq '^https://(127.0.0.1|localhost):[0-9]+' <<<'$(json "$D/dev.json" "d['hub_url']")'"
PARENT=$(json "$D/dev.json" "d['pids']['parent']")
NET=$(json "$D/dev.json" "d['pids']['net']")
KEYS=$(json "$D/dev.json" "d['pids']['keys']")
check "dev.json has the three pids" test "$PARENT" -gt 1 -a "$NET" -gt 1 -a "$KEYS" -gt 1
check "status says running" test "$(status_field "d['state']")" = running
check "the health endpoint answers" python3 -c "
import json,urllib.request,sys
u=json.load(open(sys.argv[1]))['health_url']
d=json.load(urllib.request.urlopen(u, timeout=5))
sys.exit(d['status']!='ok')" "$D/dev.json"
check "dev up again is idempotent" "$CERTCONNCTL" dev up --dir "$D"

# --- HTTPS: the server key is the tls role in the token ----------------------------------
HURL=$(json "$D/dev.json" "d['health_https_url']")
check "the HTTPS health endpoint answers, its certificate chaining to the dev CA" \
	bash -c "curl -sS --fail --cacert '$D/ca.pem' '$HURL' | grep -q '\"status\":\"ok\"'"
HPORT=${HURL#https://localhost:}
HPORT=${HPORT%%/*}
openssl s_client -connect "127.0.0.1:$HPORT" -servername localhost </dev/null 2>/dev/null |
	openssl x509 -noout -pubkey >"$T/served.pub"
SOFTHSM2_CONF=$D/softhsm2.conf pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so \
	--token-label certconn --read-object --type pubkey --label tls -o "$T/tls-pub.der" >/dev/null 2>&1
check "the HTTPS server's key is the token's tls key" bash -c \
	"cmp <(openssl pkey -pubin -in '$T/served.pub' -outform DER) <(openssl pkey -pubin -inform DER -in '$T/tls-pub.der' -outform DER)"
check "TLS 1.3 is offered" bash -c "openssl s_client -connect 127.0.0.1:$HPORT -tls1_3 </dev/null 2>/dev/null | grep -q 'TLSv1.3'"
check "TLS 1.2 is offered" bash -c "openssl s_client -connect 127.0.0.1:$HPORT -tls1_2 </dev/null 2>/dev/null | grep -q 'TLSv1.2'"

# --- keys list and self-test ----------------------------------------------------------
KL=$(ctl keys list)
echo "$KL"
check "keys list names every role" bash -c 'for r in ca ra client pfx tls; do grep -q "^$r\$" <<<"$1" || exit 1; done' _ "$KL"
check "keys list shows the OAEP-SHA2 fallback path for pfx" grep -q "fallback" <<<"$KL"
check "keys list shows the ca role signs checked TBS only" grep -q "sign-tbs" <<<"$KL"

ST=$(ctl selftest)
echo "$ST"
check "selftest exits 0" test $? = 0
check "selftest signature verifies" grep -q "verifies with the public key" <<<"$ST"
check "selftest decryption matches" grep -q "secret matches" <<<"$ST"

# --- sandbox --------------------------------------------------------------------------
# No PKCS#11 module (SoftHSM, anything from a pkcs11/ module directory, p11-kit's proxy
# module) and no libp11. (libcurl's GnuTLS dependencies map libp11-kit.so, the module
# *loader*; Landlock keeps it from loading anything, see docs/privsep.md.)
P11RE='softhsm|/libp11\.so|/pkcs11/|p11-kit-proxy|p11-kit-trust|opensc-pkcs11'
check "net has no PKCS#11 module or libp11 mapped" bash -c "! grep -Eiq '$P11RE' /proc/$NET/maps"
check "keys does have the module mapped (control)" grep -q libsofthsm2 "/proc/$KEYS/maps"
check "net is under seccomp" grep -Eq '^Seccomp:\s+2' "/proc/$NET/status"
check "keys is under seccomp" grep -Eq '^Seccomp:\s+2' "/proc/$KEYS/status"
check "net has no_new_privs" grep -Eq '^NoNewPrivs:\s+1' "/proc/$NET/status"
if [ "$(id -u)" = 0 ]; then
	NETUID=$(id -u _certconn-net)
	KEYSUID=$(id -u _certconn-keys)
	check "net runs as _certconn-net" grep -Eq "^Uid:\s+$NETUID\s+$NETUID\s+$NETUID" "/proc/$NET/status"
	check "keys runs as _certconn-keys" grep -Eq "^Uid:\s+$KEYSUID\s+$KEYSUID\s+$KEYSUID" "/proc/$KEYS/status"
	SBARGS="--user _certconn-net"
else
	SBARGS=""
fi
# shellcheck disable=SC2086
OUT=$("$CERTCONND" --sandbox-check net $SBARGS -- /usr/lib/softhsm/libsofthsm2.so \
	/usr/lib/x86_64-linux-gnu/libp11.so.3 "$D/pin" "$D/tokens" "$D/softhsm2.conf")
RC=$?
echo "$OUT"
check "net's sandbox refuses the module, libp11, the PIN, the token and its config" test "$RC" = 0
# shellcheck disable=SC2086
"$CERTCONND" --sandbox-check net $SBARGS -- /etc/ssl/certs >/dev/null
check "net's sandbox still opens the trust store (control)" test $? = 1

# --- events ---------------------------------------------------------------------------
LOG=$(json "$D/dev.json" "d['log_dir']")
check "ServiceStarted (10) in operational.jsonl" test "$(count_events "$LOG/operational.jsonl" 10)" -ge 1
check "SelfTestStep (22) in operational.jsonl" test "$(count_events "$LOG/operational.jsonl" 22)" -ge 2
check "SelfTestSuccess (20) in admin.jsonl" test "$(count_events "$LOG/admin.jsonl" 20)" -ge 1
before=$(count_events "$LOG/debug.jsonl" 900)
ctl selftest >/dev/null
sleep 0.3
check "no debug record while debug is off" test "$(count_events "$LOG/debug.jsonl" 900)" = "$before"
check "log debug on operational" ctl log debug on operational
ctl selftest >/dev/null
sleep 0.3
check "a debug record once debug is on" test "$(count_events "$LOG/debug.jsonl" 900)" -gt "$before"
ctl log debug off operational

# --- supervision ----------------------------------------------------------------------
kill -9 "$NET"
check "a killed net is restarted with keys" wait_running_new "$NET" "$KEYS"
check "status counts the net restart" test "$(status_field "d['restarts']['net']")" = 1
check "RoleProcessFailed (12) logged" test "$(count_events "$LOG/operational.jsonl" 12)" -ge 1
check "selftest works after the restart" ctl selftest
NET=$(status_field "d['pids']['net']")
KEYS=$(status_field "d['pids']['keys']")
kill -9 "$KEYS"
check "a killed keys is restarted with net" wait_running_new "$NET" "$KEYS"
check "selftest works after the keys restart" ctl selftest

# --- SIGHUP ---------------------------------------------------------------------------
cp "$D/certconnd.json" "$T/good.json"
echo '{ "pkcs11": { "module": 5 } }' >"$D/certconnd.json"
NET=$(status_field "d['pids']['net']")
kill -HUP "$PARENT"
sleep 1
check "a bad config on SIGHUP keeps the daemon running" test -n "$NET" -a "$(status_field "d['pids']['net']")" = "$NET"
check "ConfigReloadFailure (15) logged" test "$(count_events "$LOG/admin.jsonl" 15)" -ge 1
grep -q "certconnd.json:1:" "$D/certconnd.log"
check "the reload error names file:line" test $? = 0
# A good config with a tight crash-loop limit for the next part.
python3 - "$T/good.json" "$D/certconnd.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
c["daemon"]["restart_max"] = 2
c["daemon"]["restart_window_s"] = 120
json.dump(c, open(sys.argv[2], "w"), indent=2)
EOF
KEYS=$(status_field "d['pids']['keys']")
kill -HUP "$PARENT"
check "a good config on SIGHUP restarts the roles" test -n "$KEYS"
check "... with new pids" wait_running_new "$NET" "$KEYS"
check "ConfigReloadSuccess (14) logged" test "$(count_events "$LOG/operational.jsonl" 14)" -ge 1

# --- crash loop -----------------------------------------------------------------------
# Two restarts were already counted in this window (net and keys above); one more failure
# passes restart_max 2.
kill -9 "$(status_field "d['pids']['net']")"
for _ in $(seq 1 100); do kill -0 "$PARENT" 2>/dev/null || break; sleep 0.1; done
check "a crash loop ends the daemon" bash -c "! kill -0 $PARENT 2>/dev/null"
check "the log says crash loop" grep -q "crash loop" "$D/certconnd.log"
check "ServiceCrashLoopFailure (13) logged" test "$(count_events "$LOG/admin.jsonl" 13)" -ge 1

# --- SIGTERM --------------------------------------------------------------------------
cp "$T/good.json" "$D/certconnd.json"
"$CERTCONNCTL" dev up --dir "$D" >/dev/null
PARENT=$(json "$D/dev.json" "d['pids']['parent']")
kill -TERM "$PARENT"
for _ in $(seq 1 100); do kill -0 "$PARENT" 2>/dev/null || break; sleep 0.1; done
check "SIGTERM stops the daemon" bash -c "! kill -0 $PARENT 2>/dev/null"
check "ServiceStopped (11) logged" test "$(count_events "$LOG/operational.jsonl" 11)" -ge 1
check "the control socket is removed" test ! -e "$D/control.sock"

# --- sanitizers (ASan+UBSan build): no report from any role over the whole run ----------
if grep -Eq "ERROR: (Address|Leak)Sanitizer|Sanitizer has encountered|runtime error:" "$D/certconnd.log"; then
	bad "sanitizer reports in certconnd.log"
	grep -E -A20 "ERROR: (Address|Leak)Sanitizer|Sanitizer has encountered|runtime error:" "$D/certconnd.log" | head -60
else
	ok "no sanitizer report in certconnd.log"
fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
