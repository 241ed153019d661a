/*
 * The whole daemon (certconnctl dev up: keys in SoftHSM2, net sandboxed, the RA and CA keys
 * used through keys) against the test suite's SCEP client over real HTTP and HTTPS: every
 * operation and message type, manual approval with polling, GetCert, GetCRL after a
 * revocation, renewal, the webhook challenge against a local receiver that checks the HMAC,
 * and the bad inputs (broken signature, envelope for the wrong recipient, unknown
 * transaction, replayed nonce, wrong challenge, expired and reused one-time challenges,
 * truncated base64, oversized body, DES-only request), each with its failInfo or HTTP
 * status while net keeps serving (same pid). Events 4000-4008 are checked in the JSON-lines
 * files with the transactionID as correlation id. The CertRep's cipher follows the
 * requester's SMIMECapabilities. Last, the daemon is reconfigured with a next CA
 * (GetNextCACert) and an NDES-style profile whose RA has two keys in the token
 * (ra-sign, ra-encrypt, created with certconnctl token init as an operator would).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>
#include <event2/keyvalq_struct.h>
#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "scep_client.h"
#include "test_token.h"

static char T[64], D[128], CFG[192], URL[256], HTTPS_URL[256], CTL[512];
static char PW[128];
static X509 *CACERT;
static X509 *NEXT_CA;                    /* net.ca.next_ca, once reconfigured */
static EVP_PKEY *RA_SIGN_KEY, *RA_ENC_KEY; /* the token's ra-sign and ra-encrypt keys */

/* ---- helpers ---- */

static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

/* Runs certconnctl with args; its stdout (first line) in out. Returns the exit status. */
static int
ctl(char *out, size_t outlen, const char *fmt, ...)
{
	char args[1024], cmd[2048];
	va_list ap;
	FILE *p;
	int st;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof(cmd), "%s -c %s %s 2>>%s/ctl.err", CTL, CFG, args, T);
	p = popen(cmd, "r");
	if (p == NULL)
		return -1;
	if (out != NULL) {
		out[0] = '\0';
		if (fgets(out, (int)outlen, p) != NULL)
			out[strcspn(out, "\n")] = '\0';
	}
	while (fgetc(p) != EOF)
		;
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int
net_pid(void)
{
	char out[64];
	char cmd[1024];
	FILE *p;
	int pid = -1;

	snprintf(cmd, sizeof(cmd), "%s -c %s status --json | python3 -c 'import json,sys; "
	    "print(json.load(sys.stdin)[\"pids\"][\"net\"])'", CTL, CFG);
	p = popen(cmd, "r");
	if (p != NULL && fgets(out, sizeof(out), p) != NULL)
		pid = atoi(out);
	if (p != NULL)
		pclose(p);
	return pid;
}

/* Events with id and (when given) this correlation id in a channel file. */
static int
count_events(const char *file, int id, const char *corr)
{
	char path[256], line[16384];
	FILE *f;
	int n = 0;

	snprintf(path, sizeof(path), "%s/log/%s", D, file);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		cJSON *e = cJSON_Parse(line), *i, *c;

		i = cJSON_GetObjectItem(e, "id");
		c = cJSON_GetObjectItem(e, "correlationId");
		if (cJSON_IsNumber(i) && i->valueint == id && (corr == NULL ||
		    (cJSON_IsString(c) && strcmp(c->valuestring, corr) == 0)))
			n++;
		cJSON_Delete(e);
	}
	fclose(f);
	return n;
}

static int
wait_events(const char *file, int id, const char *corr, int want)
{
	for (int i = 0; i < 50; i++) {
		if (count_events(file, id, corr) >= want)
			return 1;
		usleep(100000);
	}
	return 0;
}

static void
client(struct sc_client *c, const char *profile, bool https)
{
	char url[300];

	snprintf(url, sizeof(url), "%s%s%s", https ? HTTPS_URL : URL, profile ? "/" : "",
	    profile ? profile : "");
	sc_client_init(c, url);
	assert_int_equal(sc_get_ca_cert(c), 0);
	assert_int_equal(X509_cmp(c->ca, CACERT), 0);
}

struct device {
	EVP_PKEY *key;
	X509 *self;
	X509_REQ *csr;
	char txid[65];
};

static void
device(struct device *d, const char *subject, const char *challenge)
{
	d->key = sc_key_rsa(2048);
	d->self = sc_selfsigned(d->key, subject, 1);
	d->csr = sc_csr(d->key, subject, challenge, NULL);
	sc_txid(d->key, d->txid);
	assert_non_null(d->csr);
}

static void
device_free(struct device *d)
{
	EVP_PKEY_free(d->key);
	X509_free(d->self);
	X509_REQ_free(d->csr);
}

static int
verifies(X509 *x)
{
	X509_STORE *st = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int r;

	X509_STORE_add_cert(st, CACERT);
	X509_STORE_CTX_init(ctx, st, x, NULL);
	r = X509_verify_cert(ctx);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	return r == 1;
}

static void
assert_failure(struct sc_reply *r, int fi, const char *want)
{
	if (r->http_status != 200 || !r->certrep || !r->signature_ok ||
	    r->pki_status != SC_STATUS_FAILURE || r->fail_info != fi ||
	    (want != NULL && strstr(r->fail_text, want) == NULL))
		fail_msg("expected FAILURE %d \"%s\", got HTTP %ld certrep %d sig %d status %d "
		    "failInfo %d \"%s\"", fi, want ? want : "", r->http_status, r->certrep,
		    r->signature_ok, r->pki_status, r->fail_info, r->fail_text);
}

/* net still serves, and is the same process. */
static void
still_serving(int pid)
{
	struct sc_client c;

	sc_client_init(&c, URL);
	assert_int_equal(sc_get_caps(&c), 0);
	assert_non_null(strstr(c.caps, "SCEPStandard"));
	sc_client_free(&c);
	assert_int_equal(net_pid(), pid);
}

/* ---- the webhook receiver ---- */

static struct {
	struct event_base *base;
	struct evhttp *http;
	pthread_t thread;
	int port;
	char secret[64];
	int calls, bad_sigs;
	pthread_mutex_t lock;
} H = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void
hook_cb(struct evhttp_request *req, void *arg)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req), *out = evbuffer_new();
	const char *sig = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "X-Certconn-Signature");
	size_t n = evbuffer_get_length(in);
	char *body = calloc(1, n + 1), t[32] = "", want[200], *msg = NULL;
	unsigned char mac[32];
	unsigned int maclen = 32;
	const char *allow = "{\"allow\":false,\"reason\":\"not on the list\"}";
	int good = 0;

	(void)arg;
	evbuffer_remove(in, body, n);
	/* t=<unix>,v1=<hex HMAC-SHA256(secret, "t.body")>: checked here independently */
	if (sig != NULL && sscanf(sig, "t=%31[0-9],", t) == 1 &&
	    asprintf(&msg, "%s.%s", t, body) > 0 &&
	    HMAC(EVP_sha256(), H.secret, (int)strlen(H.secret), (unsigned char *)msg,
	    strlen(msg), mac, &maclen) != NULL) {
		int k = snprintf(want, sizeof(want), "t=%s,v1=", t);
		for (unsigned i = 0; i < maclen; i++)
			snprintf(want + k + 2 * i, 3, "%02x", mac[i]);
		good = strcmp(want, sig) == 0 && llabs(atoll(t) - (long long)time(NULL)) < 60;
	}
	pthread_mutex_lock(&H.lock);
	H.calls++;
	if (!good)
		H.bad_sigs++;
	pthread_mutex_unlock(&H.lock);
	if (good && strstr(body, "\"transactionId\"") != NULL &&
	    strstr(body, "\"certificateRequest\"") != NULL && strstr(body, "CN=allowed") != NULL)
		allow = "{\"allow\":true}";
	evbuffer_add(out, allow, strlen(allow));
	evhttp_send_reply(req, good ? 200 : 401, "OK", out);
	evbuffer_free(out);
	free(msg);
	free(body);
}

static void *
hook_loop(void *arg)
{
	(void)arg;
	event_base_dispatch(H.base);
	return NULL;
}

static void
hook_start(void)
{
	struct evhttp_bound_socket *bs;
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	/* hook_stop asks the loop to exit from another thread: libevent must know threads */
	evthread_use_pthreads();
	H.base = event_base_new();
	H.http = evhttp_new(H.base);
	evhttp_set_cb(H.http, "/hook", hook_cb, NULL);
	bs = evhttp_bind_socket_with_handle(H.http, "127.0.0.1", 0);
	assert_non_null(bs);
	getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &len);
	H.port = ntohs(sin.sin_port);
	pthread_create(&H.thread, NULL, hook_loop, NULL);
}

static void
hook_stop(void)
{
	if (H.base == NULL)
		return;
	event_base_loopexit(H.base, NULL);
	pthread_join(H.thread, NULL);
	evhttp_free(H.http);
	event_base_free(H.base);
	H.base = NULL;
}

/* ---- set-up: dev up, then a webhook profile added and the config reloaded (SIGHUP) ---- */

/* Writes j (deleted here) as the daemon's config. */
static int
write_config(cJSON *j)
{
	char *text = cJSON_Print(j);
	FILE *f;
	int r = -1;

	cJSON_Delete(j);
	if (text != NULL && (f = fopen(CFG, "w")) != NULL) {
		r = fputs(text, f) < 0 ? -1 : 0;
		if (fclose(f) != 0)
			r = -1;
	}
	free(text);
	return r;
}

/* `certconnctl dev up`, its output appended to up.log; on failure the logs' ends. */
static int
dev_up(void)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "%s dev up --dir %s >> %s/up.log 2>&1", CTL, D, T);
	if (system(cmd) == 0)
		return 0;
	snprintf(cmd, sizeof(cmd), "tail -n 30 %s/up.log %s/certconnd.log", T, D);
	if (system(cmd) != 0)
		fprintf(stderr, "(no log)\n");
	return -1;
}

static int
add_hook_profile(void)
{
	char *s = slurp(CFG), path[256];
	cJSON *j = s != NULL ? cJSON_Parse(s) : NULL, *prof, *p, *c;
	FILE *f;

	free(s);
	if (j == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/hook-secret", T);
	f = fopen(path, "w");
	fprintf(f, "%s\n", H.secret);
	fclose(f);
	prof = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "net"), "scep"),
	    "profiles");
	p = cJSON_AddObjectToObject(prof, "hook");
	c = cJSON_AddObjectToObject(p, "challenge");
	cJSON_AddStringToObject(c, "mode", "webhook");
	snprintf(path, sizeof(path), "http://127.0.0.1:%d/hook", H.port);
	cJSON_AddStringToObject(c, "url", path);
	snprintf(path, sizeof(path), "%s/hook-secret", T);
	cJSON_AddStringToObject(c, "secret_file", path);
	cJSON_AddNumberToObject(c, "timeout_ms", 3000);
	return write_config(j);
}

static int
setup(void **state)
{
	const char *bin = getenv("CERTCONNCTL");
	char cmd[1024], path[256], *s;
	FILE *f;
	unsigned char r[16];

	(void)state;
	if (bin == NULL)
		return -1;
	snprintf(CTL, sizeof(CTL), "%s", bin);
	snprintf(T, sizeof(T), "/tmp/certconn-scep-int.XXXXXX");
	if (mkdtemp(T) == NULL)
		return -1;
	chmod(T, 0755);
	snprintf(D, sizeof(D), "%s/dev", T);
	snprintf(CFG, sizeof(CFG), "%s/certconnd.json", D);
	if (dev_up() == -1)
		return -1;
	snprintf(path, sizeof(path), "%s/dev.json", D);
	s = slurp(path);
	{
		cJSON *j = cJSON_Parse(s);
		snprintf(URL, sizeof(URL), "%s", cJSON_GetObjectItem(j, "scep_url")->valuestring);
		snprintf(HTTPS_URL, sizeof(HTTPS_URL), "%s",
		    cJSON_GetObjectItem(j, "scep_https_url")->valuestring);
		cJSON_Delete(j);
	}
	free(s);
	snprintf(path, sizeof(path), "%s/scep-password", D);
	s = slurp(path);
	snprintf(PW, sizeof(PW), "%.*s", (int)strcspn(s, "\n"), s);
	free(s);
	snprintf(path, sizeof(path), "%s/ca.pem", D);
	f = fopen(path, "r");
	CACERT = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);

	/*
	 * The webhook profile: dev down, the profile added to the config (dev up keeps an
	 * existing config), dev up again.
	 */
	RAND_bytes(r, sizeof(r));
	for (int i = 0; i < 16; i++)
		snprintf(H.secret + 2 * i, 3, "%02x", r[i]);
	hook_start();
	snprintf(cmd, sizeof(cmd), "%s dev down --dir %s >> %s/up.log 2>&1", CTL, D, T);
	if (system(cmd) != 0 || add_hook_profile() == -1)
		return -1;
	return dev_up();
}

static int
teardown(void **state)
{
	char cmd[1024];

	(void)state;
	snprintf(cmd, sizeof(cmd), "%s dev down --dir %s >/dev/null 2>&1", CTL, D);
	if (system(cmd) != 0)
		fprintf(stderr, "dev down failed\n");
	hook_stop();
	X509_free(CACERT);
	X509_free(NEXT_CA);
	EVP_PKEY_free(RA_SIGN_KEY);
	EVP_PKEY_free(RA_ENC_KEY);
	if (getenv("KEEP") == NULL)
		test_rmtree(T);
	return 0;
}

/* ---- tests ---- */

static void
test_enroll_http_https(void **state)
{
	struct sc_client c, s;
	struct sc_reply r;
	struct device d, e;

	(void)state;
	client(&c, NULL, false);
	assert_int_equal(sc_get_caps(&c), 0);
	assert_string_equal(c.caps, "POSTPKIOperation\nSHA-256\nSHA-512\nAES\nSCEPStandard\n"
	    "Renewal\n");
	assert_true(verifies(c.ra_sign));
	device(&d, "CN=int-http,O=certconn", PW);
	assert_int_equal(sc_pkcsreq(&c, d.key, d.self, d.csr, NULL, &r), 0);
	assert_int_equal(r.pki_status, SC_STATUS_SUCCESS);
	assert_true(r.signature_ok);
	assert_non_null(r.cert);
	assert_true(verifies(r.cert));
	sc_reply_free(&r);
	assert_true(wait_events("admin.jsonl", 4000, d.txid, 1));
	assert_true(wait_events("operational.jsonl", 4003, d.txid, 1));
	assert_true(wait_events("operational.jsonl", 4004, d.txid, 1));
	assert_true(wait_events("operational.jsonl", 4006, d.txid, 1));

	/* over HTTPS (the tls role's key in the token), by GET with OAEP and SHA-512 */
	client(&s, NULL, true);
	s.use_get = true;
	s.oaep = true;
	s.md = "SHA512";
	device(&e, "CN=int-https", PW);
	assert_int_equal(sc_pkcsreq(&s, e.key, e.self, e.csr, NULL, &r), 0);
	assert_int_equal(r.pki_status, SC_STATUS_SUCCESS);
	assert_true(verifies(r.cert));
	sc_reply_free(&r);
	device_free(&d);
	device_free(&e);
	sc_client_free(&c);
	sc_client_free(&s);
}

static void
test_bad_inputs(void **state)
{
	struct sc_client c, o;
	struct sc_reply r;
	struct sc_req q;
	struct device d, other;
	uint8_t *der, nonce[16];
	size_t len;
	char ch[128];
	int pid = net_pid();

	(void)state;
	assert_true(pid > 0);
	client(&c, NULL, false);
	device(&d, "CN=int-bad", PW);
	device(&other, "CN=int-other", PW);
	assert_int_equal(sc_csr_der(d.csr, &der, &len), 0);
	sc_req_pkcsreq(&q, d.key, d.self, der, len);

	q.break_signature = true;
	assert_int_equal(sc_pkioperation(&c, &q, &r), 0);
	assert_failure(&r, SC_FAIL_BADMESSAGECHECK, "signature");
	sc_reply_free(&r);
	q.break_signature = false;
	still_serving(pid);

	q.recipient = other.self;
	assert_int_equal(sc_pkioperation(&c, &q, &r), 0);
	assert_failure(&r, SC_FAIL_BADMESSAGECHECK, "not encrypted to this RA");
	sc_reply_free(&r);
	q.recipient = NULL;

	c.cipher = "DES-CBC";
	assert_int_equal(sc_pkioperation(&c, &q, &r), 0);
	assert_failure(&r, SC_FAIL_BADALG, "DES-CBC");
	sc_reply_free(&r);
	c.cipher = "AES-256-CBC";
	still_serving(pid);

	/* truncated base64 by GET: HTTP 400; an oversized POST: HTTP 413 */
	c.use_get = true;
	q.truncate_base64 = true;
	assert_int_equal(sc_pkioperation(&c, &q, &r), 0);
	assert_int_equal(r.http_status, 400);
	sc_reply_free(&r);
	c.use_get = false;
	q.truncate_base64 = false;
	q.pad_to = 200 * 1024;
	assert_int_equal(sc_pkioperation(&c, &q, &r), 0);
	assert_int_equal(r.http_status, 413);
	sc_reply_free(&r);
	q.pad_to = 0;
	/* garbage */
	assert_int_equal(sc_http(URL, (const uint8_t *)"\x30\x03\x02\x01", 4, 10, &r), 0);
	assert_int_equal(r.http_status, 400);
	sc_reply_free(&r);
	still_serving(pid);

	/* a replayed senderNonce */
	RAND_bytes(nonce, sizeof(nonce));
	q.nonce = nonce;
	assert_int_equal(sc_pkioperation(&c, &q, &r), 0);
	assert_int_equal(r.pki_status, SC_STATUS_SUCCESS);
	sc_reply_free(&r);
	assert_int_equal(sc_pkioperation(&c, &q, &r), 0);
	assert_failure(&r, SC_FAIL_BADREQUEST, "senderNonce");
	sc_reply_free(&r);
	q.nonce = NULL;

	/* unknown transaction */
	assert_int_equal(sc_certpoll(&c, d.key, d.self, X509_REQ_get_subject_name(d.csr),
	    "no-such-transaction", &r), 0);
	assert_failure(&r, SC_FAIL_BADCERTID, "unknown transaction");
	sc_reply_free(&r);

	/* wrong static challenge */
	{
		struct device w;
		device(&w, "CN=int-wrong", "not-the-password");
		assert_int_equal(sc_pkcsreq(&c, w.key, w.self, w.csr, NULL, &r), 0);
		assert_failure(&r, SC_FAIL_BADREQUEST, "wrong challenge");
		sc_reply_free(&r);
		assert_true(wait_events("operational.jsonl", 4005, w.txid, 1));
		assert_true(wait_events("admin.jsonl", 4001, w.txid, 1));
		device_free(&w);
	}

	/* one-time challenges: used once, expired */
	client(&o, "onetime", false);
	assert_int_equal(ctl(ch, sizeof(ch), "scep challenge --profile onetime"), 0);
	assert_int_equal(strlen(ch), 32);
	{
		struct device a, b;
		device(&a, "CN=int-once-a", ch);
		device(&b, "CN=int-once-b", ch);
		assert_int_equal(sc_pkcsreq(&o, a.key, a.self, a.csr, NULL, &r), 0);
		assert_int_equal(r.pki_status, SC_STATUS_SUCCESS);
		sc_reply_free(&r);
		assert_int_equal(sc_pkcsreq(&o, b.key, b.self, b.csr, NULL, &r), 0);
		assert_failure(&r, SC_FAIL_BADREQUEST, "already used");
		sc_reply_free(&r);
		device_free(&a);
		device_free(&b);
	}
	assert_int_equal(ctl(ch, sizeof(ch), "scep challenge --profile onetime --ttl 1"), 0);
	sleep(2);
	{
		struct device a;
		device(&a, "CN=int-late", ch);
		assert_int_equal(sc_pkcsreq(&o, a.key, a.self, a.csr, NULL, &r), 0);
		assert_failure(&r, SC_FAIL_BADREQUEST, "expired");
		sc_reply_free(&r);
		device_free(&a);
	}
	still_serving(pid);
	free(der);
	device_free(&d);
	device_free(&other);
	sc_client_free(&c);
	sc_client_free(&o);
}

static void
test_approval_getcert_getcrl_renewal(void **state)
{
	struct sc_client m, c;
	struct sc_reply r, g;
	struct device d;
	char out[256], serial[64];
	X509_REVOKED *rv = NULL;
	EVP_PKEY *k2;
	X509_REQ *csr2;

	(void)state;
	client(&m, "manual", false);
	device(&d, "CN=int-manual", NULL);
	assert_int_equal(sc_pkcsreq(&m, d.key, d.self, d.csr, NULL, &r), 0);
	assert_int_equal(r.pki_status, SC_STATUS_PENDING);
	sc_reply_free(&r);
	assert_int_equal(sc_certpoll(&m, d.key, d.self, X509_REQ_get_subject_name(d.csr), NULL,
	    &r), 0);
	assert_int_equal(r.pki_status, SC_STATUS_PENDING);
	sc_reply_free(&r);
	assert_int_equal(ctl(out, sizeof(out), "scep approve %s", d.txid), 0);
	assert_non_null(strstr(out, "approved"));
	assert_int_equal(sc_certpoll(&m, d.key, d.self, X509_REQ_get_subject_name(d.csr), NULL,
	    &r), 0);
	assert_int_equal(r.pki_status, SC_STATUS_SUCCESS);
	assert_non_null(r.cert);
	assert_true(verifies(r.cert));
	assert_int_not_equal(ctl(NULL, 0, "scep approve %s", d.txid), 0); /* not pending now */

	/* GetCert by issuer and serial */
	assert_int_equal(sc_getcert(&m, d.key, d.self, X509_get0_serialNumber(r.cert), &g), 0);
	assert_int_equal(g.pki_status, SC_STATUS_SUCCESS);
	assert_int_equal(X509_cmp(g.cert, r.cert), 0);
	sc_reply_free(&g);

	/* RenewalReq with a new key, signed by the certificate */
	client(&c, NULL, false);
	k2 = sc_key_rsa(2048);
	csr2 = sc_csr(k2, "CN=int-manual", NULL, NULL);
	assert_int_equal(sc_renewalreq(&c, d.key, r.cert, csr2, NULL, &g), 0);
	if (g.pki_status != SC_STATUS_SUCCESS)
		fail_msg("renewal: %d %s", g.pki_status, g.fail_text);
	assert_non_null(g.certs);
	assert_true(verifies(sk_X509_value(g.certs, 0)));
	sc_reply_free(&g);

	/* revoked with certconnctl: GetCRL has it (net signed the new CRL through keys) */
	{
		BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(r.cert), NULL);
		char *h = BN_bn2hex(bn);
		snprintf(serial, sizeof(serial), "%s", h);
		OPENSSL_free(h);
		BN_free(bn);
	}
	assert_int_equal(ctl(out, sizeof(out), "ca revoke %s --reason keyCompromise", serial), 0);
	assert_int_equal(sc_getcrl(&m, d.key, d.self, X509_get0_serialNumber(r.cert), &g), 0);
	assert_int_equal(g.pki_status, SC_STATUS_SUCCESS);
	assert_non_null(g.crl);
	assert_int_equal(X509_CRL_verify(g.crl, X509_get0_pubkey(CACERT)), 1);
	assert_int_equal(X509_CRL_get0_by_serial(g.crl, &rv, X509_get0_serialNumber(r.cert)), 1);
	sc_reply_free(&g);
	/* a revoked certificate cannot renew */
	assert_int_equal(sc_renewalreq(&c, d.key, r.cert, csr2, "int-renew-revoked", &g), 0);
	assert_failure(&g, SC_FAIL_BADCERTID, "revoked");
	sc_reply_free(&g);
	X509_REQ_free(csr2);
	EVP_PKEY_free(k2);
	sc_reply_free(&r);
	device_free(&d);
	sc_client_free(&m);
	sc_client_free(&c);
}

static void
test_webhook(void **state)
{
	struct sc_client c;
	struct sc_reply r;
	struct device a, b;

	(void)state;
	client(&c, "hook", false);
	device(&a, "CN=allowed-device", NULL);
	assert_int_equal(sc_pkcsreq(&c, a.key, a.self, a.csr, NULL, &r), 0);
	if (r.pki_status != SC_STATUS_SUCCESS)
		fail_msg("webhook allow: %d %s", r.pki_status, r.fail_text);
	assert_true(verifies(r.cert));
	sc_reply_free(&r);
	device(&b, "CN=someone", NULL);
	assert_int_equal(sc_pkcsreq(&c, b.key, b.self, b.csr, NULL, &r), 0);
	assert_failure(&r, SC_FAIL_BADREQUEST, "not on the list");
	sc_reply_free(&r);
	pthread_mutex_lock(&H.lock);
	assert_int_equal(H.calls, 2);
	assert_int_equal(H.bad_sigs, 0);
	pthread_mutex_unlock(&H.lock);
	/* the receiver gone: refused, not issued */
	hook_stop();
	{
		struct device e;
		device(&e, "CN=allowed-but-down", NULL);
		assert_int_equal(sc_pkcsreq(&c, e.key, e.self, e.csr, NULL, &r), 0);
		assert_failure(&r, SC_FAIL_BADREQUEST, "webhook");
		sc_reply_free(&r);
		device_free(&e);
	}
	device_free(&a);
	device_free(&b);
	sc_client_free(&c);
}

/* A SUCCESS CertRep is encrypted with the strongest cipher the requester advertises. */
static void
test_reply_cipher(void **state)
{
	struct sc_client c;
	struct sc_reply r;
	struct device d;
	uint8_t *caps;
	size_t capslen;

	(void)state;
	client(&c, NULL, false);
	c.cipher = "AES-128-CBC";
	/* nothing advertised: the request's own cipher */
	device(&d, "CN=int-cipher-plain", PW);
	assert_int_equal(sc_pkcsreq(&c, d.key, d.self, d.csr, NULL, &r), 0);
	assert_int_equal(r.pki_status, SC_STATUS_SUCCESS);
	assert_string_equal(r.reply_cipher, "AES-128-CBC");
	sc_reply_free(&r);
	device_free(&d);
	/* AES-128 sent, AES-256 advertised in the SignerInfo's SMIMECapabilities */
	c.smime_caps = "AES-256-CBC,AES-128-CBC,DES-EDE3-CBC";
	device(&d, "CN=int-cipher-attr", PW);
	assert_int_equal(sc_pkcsreq(&c, d.key, d.self, d.csr, NULL, &r), 0);
	assert_int_equal(r.pki_status, SC_STATUS_SUCCESS);
	assert_true(r.signature_ok);
	assert_string_equal(r.reply_cipher, "AES-256-CBC");
	assert_non_null(r.cert);
	assert_true(verifies(r.cert));
	sc_reply_free(&r);
	device_free(&d);
	/* by GET, advertised in the PKCS#10's extensionRequest as Windows does */
	c.smime_caps = NULL;
	c.use_get = true;
	assert_int_equal(sc_smimecaps_der("AES-256-CBC,AES-192-CBC", &caps, &capslen), 0);
	device(&d, "CN=int-cipher-csr", PW);
	X509_REQ_free(d.csr);
	d.csr = sc_csr_ex(d.key, "CN=int-cipher-csr", PW, NULL, caps, capslen);
	assert_int_equal(sc_pkcsreq(&c, d.key, d.self, d.csr, NULL, &r), 0);
	assert_int_equal(r.pki_status, SC_STATUS_SUCCESS);
	assert_string_equal(r.reply_cipher, "AES-256-CBC");
	assert_true(verifies(r.cert));
	sc_reply_free(&r);
	device_free(&d);
	/* a malformed list (a SEQUENCE of INTEGER) is ignored: the request's own cipher */
	c.use_get = false;
	device(&d, "CN=int-cipher-junk", PW);
	X509_REQ_free(d.csr);
	d.csr = sc_csr_ex(d.key, "CN=int-cipher-junk", PW, NULL,
	    (const uint8_t *)"\x30\x03\x02\x01\x05", 5);
	assert_int_equal(sc_pkcsreq(&c, d.key, d.self, d.csr, NULL, &r), 0);
	assert_int_equal(r.pki_status, SC_STATUS_SUCCESS);
	assert_string_equal(r.reply_cipher, "AES-128-CBC");
	sc_reply_free(&r);
	device_free(&d);
	free(caps);
	sc_client_free(&c);
}

/* ---- a next CA and a two-key RA (NDES style) ---- */

/* "ROLE URI (created|existed)" lines of certconnctl token init: the URI of role. */
static int
token_uri(const char *out, const char *role, char *uri, size_t len)
{
	const char *l = out;

	while (l != NULL && *l != '\0') {
		char r[64], u[512];

		if (sscanf(l, "%63s %511s", r, u) == 2 && strcmp(r, role) == 0 &&
		    strncmp(u, "pkcs11:", 7) == 0) {
			snprintf(uri, len, "%s", u);
			return 0;
		}
		l = strchr(l, '\n');
		if (l != NULL)
			l++;
	}
	return -1;
}

/* The public key of the token object labelled role, read with OpenSC's pkcs11-tool. */
static EVP_PKEY *
token_pubkey(const char *role)
{
	char cmd[1024], path[256];
	uint8_t *der;
	const unsigned char *p;
	EVP_PKEY *k = NULL;
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.pub.der", T, role);
	snprintf(cmd, sizeof(cmd), "SOFTHSM2_CONF=%s/softhsm2.conf pkcs11-tool --module "
	    "/usr/lib/softhsm/libsofthsm2.so --token-label certconn --read-object --type pubkey "
	    "--label %s -o %s >/dev/null 2>&1", D, role, path);
	if (system(cmd) != 0)
		return NULL;
	f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	der = malloc(8192);
	n = fread(der, 1, 8192, f);
	fclose(f);
	p = der;
	if (n > 0)
		k = d2i_PUBKEY(NULL, &p, (long)n);
	free(der);
	return k;
}

/*
 * dev down; the two RA keys added to the token (certconnctl token init keeps the existing
 * ones); the config gets keys.roles ra-sign and ra-encrypt, net.ca.next_ca and a profile
 * "ndes" with ra_sign_role/ra_encrypt_role; dev up.
 */
static int
reconfigure(void)
{
	char cmd[2048], path[256], *out, *s, uri_s[512], uri_e[512];
	cJSON *j, *roles, *net, *prof, *p, *c, *r;
	EVP_PKEY *k = sc_key_rsa(2048);
	X509V3_CTX v3;
	X509_EXTENSION *e;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "%s dev down --dir %s >> %s/up.log 2>&1", CTL, D, T);
	if (system(cmd) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/token-init.out", T);
	snprintf(cmd, sizeof(cmd), "%s token init --module /usr/lib/softhsm/libsofthsm2.so "
	    "--module-env SOFTHSM2_CONF=%s/softhsm2.conf --token certconn --pin-file %s/pin "
	    "--roles ra-sign,ra-encrypt > %s 2>>%s/up.log", CTL, D, D, path, T);
	if (system(cmd) != 0)
		return -1;
	out = slurp(path);
	if (out == NULL || token_uri(out, "ra-sign", uri_s, sizeof(uri_s)) == -1 ||
	    token_uri(out, "ra-encrypt", uri_e, sizeof(uri_e)) == -1) {
		fprintf(stderr, "token init said:\n%s\n", out != NULL ? out : "(nothing)");
		free(out);
		return -1;
	}
	free(out);
	RA_SIGN_KEY = token_pubkey("ra-sign");
	RA_ENC_KEY = token_pubkey("ra-encrypt");
	if (RA_SIGN_KEY == NULL || RA_ENC_KEY == NULL)
		return -1;

	/* the next CA: another self-signed CA certificate (its key is not needed here) */
	NEXT_CA = sc_selfsigned(k, "CN=certconn dev CA 2,O=certconn", 3650);
	X509V3_set_ctx(&v3, NEXT_CA, NEXT_CA, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, "critical,CA:TRUE");
	X509_add_ext(NEXT_CA, e, -1);
	X509_EXTENSION_free(e);
	X509_sign(NEXT_CA, k, EVP_sha256());
	EVP_PKEY_free(k);
	snprintf(path, sizeof(path), "%s/next-ca.pem", T);
	f = fopen(path, "w");
	if (f == NULL || PEM_write_X509(f, NEXT_CA) != 1) {
		if (f != NULL)
			fclose(f);
		return -1;
	}
	fclose(f);
	chmod(path, 0644); /* net reads it as its own user */

	s = slurp(CFG);
	j = s != NULL ? cJSON_Parse(s) : NULL;
	free(s);
	if (j == NULL)
		return -1;
	roles = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "keys"), "roles");
	r = cJSON_AddObjectToObject(roles, "ra-sign");
	cJSON_AddStringToObject(r, "uri", uri_s);
	r = cJSON_AddObjectToObject(roles, "ra-encrypt");
	cJSON_AddStringToObject(r, "uri", uri_e);
	net = cJSON_GetObjectItem(j, "net");
	cJSON_AddStringToObject(cJSON_GetObjectItem(net, "ca"), "next_ca", path);
	prof = cJSON_GetObjectItem(cJSON_GetObjectItem(net, "scep"), "profiles");
	p = cJSON_AddObjectToObject(prof, "ndes");
	cJSON_AddStringToObject(p, "ra_sign_role", "ra-sign");
	cJSON_AddStringToObject(p, "ra_encrypt_role", "ra-encrypt");
	c = cJSON_AddObjectToObject(p, "challenge");
	cJSON_AddStringToObject(c, "mode", "static");
	snprintf(path, sizeof(path), "%s/scep-password", D);
	cJSON_AddStringToObject(c, "password_file", path);
	if (write_config(j) == -1)
		return -1;
	return dev_up();
}

/*
 * GetNextCACert's body (RFC 8894 section 4.7): a SignedData signed by signer (the profile's
 * RA) whose content is a degenerate certificates-only SignedData holding the next CA.
 */
static void
assert_next_ca_reply(const struct sc_reply *r, X509 *signer)
{
	const unsigned char *p = r->body;
	CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long)r->body_len), *inner;
	STACK_OF(X509) *trusted = sk_X509_new_null(), *signers, *certs;
	BIO *out = BIO_new(BIO_s_mem());
	BUF_MEM *bm;

	assert_int_equal(r->http_status, 200);
	assert_string_equal(r->content_type, "application/x-x509-next-ca-cert");
	assert_non_null(cms);
	assert_true(p == r->body + r->body_len);
	assert_int_equal(OBJ_obj2nid(CMS_get0_type(cms)), NID_pkcs7_signed);
	assert_int_equal(sk_CMS_SignerInfo_num(CMS_get0_SignerInfos(cms)), 1);
	sk_X509_push(trusted, signer);
	assert_int_equal(CMS_verify(cms, trusted, NULL, NULL, out, CMS_NO_SIGNER_CERT_VERIFY |
	    CMS_BINARY), 1);
	signers = CMS_get0_signers(cms);
	assert_int_equal(sk_X509_num(signers), 1);
	assert_int_equal(X509_cmp(sk_X509_value(signers, 0), signer), 0);
	sk_X509_free(signers);
	BIO_get_mem_ptr(out, &bm);
	p = (const unsigned char *)bm->data;
	inner = d2i_CMS_ContentInfo(NULL, &p, (long)bm->length);
	assert_non_null(inner);
	assert_int_equal(OBJ_obj2nid(CMS_get0_type(inner)), NID_pkcs7_signed);
	assert_true(CMS_get0_SignerInfos(inner) == NULL ||
	    sk_CMS_SignerInfo_num(CMS_get0_SignerInfos(inner)) == 0);
	certs = CMS_get1_certs(inner);
	assert_int_equal(sk_X509_num(certs), 1);
	assert_int_equal(X509_cmp(sk_X509_value(certs, 0), NEXT_CA), 0);
	sk_X509_pop_free(certs, X509_free);
	CMS_ContentInfo_free(inner);
	CMS_ContentInfo_free(cms);
	BIO_free(out);
	sk_X509_free(trusted);
}

/* The CertRep in r->body verifies and its one signer is x (read here, not by the client). */
static int
certrep_signed_by(const struct sc_reply *r, X509 *x)
{
	const unsigned char *p = r->body;
	CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long)r->body_len);
	STACK_OF(X509) *trusted = sk_X509_new_null(), *signers = NULL;
	int ok;

	sk_X509_push(trusted, x);
	ok = cms != NULL && CMS_verify(cms, trusted, NULL, NULL, NULL, CMS_NO_SIGNER_CERT_VERIFY |
	    CMS_BINARY) == 1 && (signers = CMS_get0_signers(cms)) != NULL &&
	    sk_X509_num(signers) == 1 && X509_cmp(sk_X509_value(signers, 0), x) == 0;
	sk_X509_free(signers);
	sk_X509_free(trusted);
	CMS_ContentInfo_free(cms);
	return ok;
}

static void
test_next_ca_two_key_ra(void **state)
{
	struct sc_client c, n;
	struct sc_reply r;
	struct sc_req q;
	struct device d;
	uint8_t *der;
	size_t len;
	int pid;

	(void)state;
	/* no next CA configured yet: not advertised, and none to get */
	client(&c, NULL, false);
	assert_int_equal(sc_get_caps(&c), 0);
	assert_null(strstr(c.caps, "GetNextCACert"));
	assert_int_equal(sc_get_next_ca_cert(&c, &r), 0);
	assert_int_equal(r.http_status, 404);
	sc_reply_free(&r);
	sc_client_free(&c);

	assert_int_equal(reconfigure(), 0);
	pid = net_pid();
	assert_true(pid > 0);

	/* GetNextCACert, advertised now, signed by the default profile's RA */
	client(&c, NULL, false);
	assert_int_equal(sc_get_caps(&c), 0);
	assert_string_equal(c.caps, "POSTPKIOperation\nSHA-256\nSHA-512\nAES\nSCEPStandard\n"
	    "Renewal\nGetNextCACert\n");
	assert_int_equal(sc_get_next_ca_cert(&c, &r), 0);
	assert_true(r.signature_ok);
	assert_next_ca_reply(&r, c.ra_sign);
	sc_reply_free(&r);

	/* the two-key profile: GetCACert carries both RA certificates, each with its usage */
	client(&n, "ndes", false);
	assert_int_equal(sc_get_caps(&n), 0);
	assert_non_null(strstr(n.caps, "GetNextCACert\n"));
	assert_int_equal(sk_X509_num(n.ca_certs), 3);
	assert_int_not_equal(X509_cmp(n.ra_sign, n.ra_enc), 0);
	assert_int_equal(X509_get_key_usage(n.ra_sign), KU_DIGITAL_SIGNATURE);
	assert_int_equal(X509_get_key_usage(n.ra_enc), KU_KEY_ENCIPHERMENT);
	assert_true(verifies(n.ra_sign));
	assert_true(verifies(n.ra_enc));
	/* for the token's ra-sign and ra-encrypt keys, not the one-key profile's ra */
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(n.ra_sign), RA_SIGN_KEY), 1);
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(n.ra_enc), RA_ENC_KEY), 1);
	assert_int_not_equal(X509_cmp(n.ra_sign, c.ra_sign), 0);
	/* its GetNextCACert is signed by its signing certificate */
	assert_int_equal(sc_get_next_ca_cert(&n, &r), 0);
	assert_true(r.signature_ok);
	assert_next_ca_reply(&r, n.ra_sign);
	sc_reply_free(&r);

	/* PKCSReq: enveloped to the encryption certificate, the CertRep signed by the signing
	 * certificate (the client checks the signer is n.ra_sign) */
	device(&d, "CN=int-ndes,O=certconn", PW);
	assert_int_equal(sc_pkcsreq(&n, d.key, d.self, d.csr, NULL, &r), 0);
	if (r.pki_status != SC_STATUS_SUCCESS)
		fail_msg("ndes enrollment: status %d %s", r.pki_status, r.fail_text);
	assert_true(r.signature_ok);
	assert_true(certrep_signed_by(&r, n.ra_sign));
	assert_false(certrep_signed_by(&r, n.ra_enc));
	assert_non_null(r.cert);
	assert_true(verifies(r.cert));
	sc_reply_free(&r);
	/* enveloped to the signing certificate instead: not for this RA's decryption key */
	assert_int_equal(sc_csr_der(d.csr, &der, &len), 0);
	sc_req_pkcsreq(&q, d.key, d.self, der, len);
	q.txid = "int-ndes-wrong-recipient";
	q.recipient = n.ra_sign;
	assert_int_equal(sc_pkioperation(&n, &q, &r), 0);
	assert_failure(&r, SC_FAIL_BADMESSAGECHECK, "not encrypted to this RA");
	sc_reply_free(&r);
	free(der);
	device_free(&d);
	/* the one-key profiles still enroll after the change */
	device(&d, "CN=int-after-reconfig", PW);
	assert_int_equal(sc_pkcsreq(&c, d.key, d.self, d.csr, NULL, &r), 0);
	assert_int_equal(r.pki_status, SC_STATUS_SUCCESS);
	assert_true(verifies(r.cert));
	sc_reply_free(&r);
	device_free(&d);
	still_serving(pid);
	sc_client_free(&c);
	sc_client_free(&n);
}

/* Last: stopped cleanly, and no sanitizer report from any role (Asan builds). */
static void
test_clean_stop(void **state)
{
	char cmd[1024], path[256], *log;

	(void)state;
	snprintf(cmd, sizeof(cmd), "%s dev down --dir %s >/dev/null 2>&1", CTL, D);
	assert_int_equal(system(cmd), 0);
	snprintf(path, sizeof(path), "%s/certconnd.log", D);
	log = slurp(path);
	assert_non_null(log);
	if (strstr(log, "Sanitizer") != NULL || strstr(log, "runtime error") != NULL ||
	    strstr(log, "killed by signal") != NULL)
		fail_msg("certconnd.log:\n%s", log);
	free(log);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_enroll_http_https),
		cmocka_unit_test(test_bad_inputs),
		cmocka_unit_test(test_approval_getcert_getcrl_renewal),
		cmocka_unit_test(test_webhook),
		cmocka_unit_test(test_reply_cipher),
		cmocka_unit_test(test_next_ca_two_key_ra),
		cmocka_unit_test(test_clean_stop),
	};
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
