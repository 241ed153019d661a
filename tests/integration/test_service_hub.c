/*
 * The service client in hub mode, as net runs it, against a real certconn-hub: the client
 * key is the client role in a SoftHSM2 token, used for TLS through the keyref provider and a
 * real keys process (this test process has no private key). Registration signs the CSR in
 * the token (as certconnctl does); then service_start on a libevent loop:
 *
 *  - renewal of a certificate that is close to its end (the hub issues 1-day certificates
 *    at registration, 30-day ones afterwards; the client renews below 2 days);
 *  - health messages and events 5000, the hub marking the connector healthy;
 *  - pkcs and revocation requests leased, handed to the flows' handlers, results uploaded;
 *  - SCEP validation through the hub (Success and a refusal);
 *  - the hub going away: 5001 retries, 5002, SCEP validation failing (no certificate), a
 *    result upload retried with backoff until the hub is back, exactly once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "certconn/config.h"
#include "certconn/config_service.h"
#include "certconn/event.h"
#include "certconn/keyref.h"
#include "certconn/service.h"
#include "hub_harness.h"
#include "keys_harness.h"
#include "net.h"
#include "svc.h"
#include "test_token.h"

#if defined(__has_include)
#if __has_include("scep_verify.h")
#include <pthread.h>
#include "scep_verify.h"
#define HAVE_SCEP_VERIFY 1
#endif
#endif

static struct hub_harness H;
static struct test_token *tok;
static struct keys_harness kh;
static struct keyref_client *kc;
static OSSL_LIB_CTX *libctx;
static struct event_base *base;
static struct cc_config_net netconf;
static struct cc_config_service svc;
static struct net_ctx ctx;
static char state_dir[400], cert_path[500], connector_id[80];

/* ---- events ---- */

static uint32_t seen[64];
static size_t nseen;

static int
collect(const struct cc_event_msg *m, void *arg)
{
	(void)arg;
	if (nseen < 64)
		seen[nseen++] = m->id;
	return 0;
}

static size_t
count_events(uint32_t id)
{
	size_t n = 0;

	for (size_t i = 0; i < nseen; i++)
		n += seen[i] == id;
	return n;
}

/* ---- the loop ---- */

static void
spin_ms(int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

#define RUN_UNTIL(cond, timeout_ms) do { \
	for (int t_ = 0; !(cond) && t_ < (timeout_ms); t_ += 50) \
		spin_ms(50); \
	assert_true(cond); \
} while (0)

/* ---- registration, as certconnctl does it ---- */

struct signer {
	struct hsm *h;
	const char *uri;
};

static int
sign_cb(void *arg, const uint8_t *dg, size_t dg_len, uint8_t **sig, size_t *sig_len)
{
	struct signer *s = arg;

	return hsm_sign_digest(s->h, s->uri, "SHA256", dg, dg_len, sig, sig_len);
}

static int
do_register(void)
{
	struct service_register_params p;
	struct signer s;
	char token[128];
	int r;

	if (hub_test_token(&H, "acme", "[\"pkcs\",\"revoke\",\"scep\"]", token,
	    sizeof(token)) == -1)
		return -1;
	memset(&p, 0, sizeof(p));
	s.uri = test_token_uri(tok, "client");
	s.h = hsm_open(tok->module, tok->module_env, s.uri, tok->pin);
	if (s.h == NULL)
		return -1;
	p.pub = hsm_pubkey(s.h, s.uri);
	p.hub_url = H.url;
	p.token = token;
	p.ca_file = H.ca_pem;
	p.sign = sign_cb;
	p.sign_arg = &s;
	p.connector_name = "svc-test";
	p.version = "0.1.0";
	p.features = CC_FEATURE_PKCS | CC_FEATURE_REVOKE | CC_FEATURE_SCEP;
	p.cert_out = cert_path;
	r = service_register(&p);
	if (r == -1)
		fprintf(stderr, "register: %s\n", p.error);
	snprintf(connector_id, sizeof(connector_id), "%s", p.connector_id);
	EVP_PKEY_free(p.pub);
	hsm_close(s.h);
	return r;
}

/* ---- flows' handlers ---- */

static int pkcs_seen, rev_seen, uploads_done;
static char upload_status[1024];
static char held_id[80];
static bool hold_next;

static void
upload_cb(void *arg, const char *id, const char *status)
{
	size_t n = strlen(upload_status);

	(void)arg;
	snprintf(upload_status + n, sizeof(upload_status) - n, "%s=%s;", id, status);
	uploads_done++;
}

static void
pkcs_handler(void *arg, const struct service_request *r)
{
	cJSON *result;

	(void)arg;
	pkcs_seen++;
	assert_string_equal(r->feature, "pkcs");
	assert_non_null(cJSON_GetObjectItem(r->payload, "deviceId"));
	if (hold_next) {
		/* kept for later: completed while the hub is down */
		snprintf(held_id, sizeof(held_id), "%s", r->id);
		hold_next = false;
		return;
	}
	result = cJSON_CreateObject();
	cJSON_AddStringToObject(result, "device", cJSON_GetObjectItem(r->payload,
	    "deviceId")->valuestring);
	assert_int_equal(service_complete("pkcs", r->id, true, 0, NULL, result, upload_cb, NULL),
	    0);
}

static void
revoke_handler(void *arg, const struct service_request *r)
{
	(void)arg;
	rev_seen++;
	assert_string_equal(hub_json_str(r->payload, "serialNumber"), "0A1B");
	assert_int_equal(service_complete("revoke", r->id, true, 0, NULL, NULL, upload_cb, NULL),
	    0);
}

/* ---- setup ---- */

static int
setup(void **state)
{
	static const struct hsm_role_spec roles[] = { { "client", HSM_KEY_EC, 0, "P-256",
		HSM_USE_SIGN } };
	struct keys_harness_opts o;
	struct cc_conf_role cr;
	int fds[CC_MAX_PEER_CHANNELS];

	(void)state;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	/* 1-day certificates at registration, so that the client renews at once */
	if (hub_harness_start(&H, "\"lease\": {\"min_s\": 1}, \"client_cert_days\": 1, "
	    "\"health_interval_s\": 1") == -1)
		return -1;
	tok = test_token_new("svchub", "1357", roles, 1);
	snprintf(state_dir, sizeof(state_dir), "%s/netstate", H.dir);
	mkdir(state_dir, 0755);
	snprintf(cert_path, sizeof(cert_path), "%s/service", state_dir);
	mkdir(cert_path, 0755);
	snprintf(cert_path, sizeof(cert_path), "%s/service/client.pem", state_dir);
	if (do_register() == -1)
		return -1;
	if (hub_harness_reconfigure(&H, "\"lease\": {\"min_s\": 1}, \"client_cert_days\": 30, "
	    "\"health_interval_s\": 1") == -1)
		return -1;
	/* keys, and the keyref provider over its channels */
	memset(&o, 0, sizeof(o));
	cr = keys_harness_role(tok, "client", 0);
	o.token = tok;
	o.roles = &cr;
	o.nroles = 1;
	o.channels = 2;
	o.user = geteuid() == 0 ? TEST_KEYS_USER : NULL;
	if (keys_harness_start(&kh, &o) == -1)
		return -1;
	for (int i = 0; i < kh.npeers; i++) {
		fds[i] = kh.peer_fd[i];
		kh.peer_fd[i] = -1;
	}
	kc = keyref_client_new(fds, kh.npeers, 10000);
	libctx = OSSL_LIB_CTX_new();
	if (kc == NULL || libctx == NULL || keyref_provider_load(libctx, kc) == -1)
		return -1;
	base = event_base_new();
	svc.mode = CC_SERVICE_HUB;
	svc.url = H.url;
	svc.ca_file = H.ca_pem;
	svc.client_key_role = (char *)"client";
	svc.features = CC_FEATURE_PKCS | CC_FEATURE_REVOKE | CC_FEATURE_SCEP;
	svc.health_interval_s = 1;
	svc.poll_interval_s = 1;
	svc.lease_s = 45; /* net.service.lease_s: asserted in test_hub_down */
	svc.timeout_s = 10;
	svc.renew_before_days = 2;
	svc.retry_base_ms = 100;
	svc.retry_max_ms = 400;
	svc.retry_max_attempts = 30;
	snprintf(netconf.state_dir, sizeof(netconf.state_dir), "%s", state_dir);
	netconf.service = &svc;
	ctx = (struct net_ctx){ .base = base, .libctx = libctx, .kc = kc, .conf = &netconf };
	cc_event_set_forward(collect, NULL);
	if (service_register_feature("pkcs", pkcs_handler, NULL) == -1 ||
	    service_register_feature("revoke", revoke_handler, NULL) == -1)
		return -1;
	return service_start(&ctx);
}

static int
teardown(void **state)
{
	int st;

	(void)state;
	service_stop();
	cc_event_set_forward(NULL, NULL);
	keyref_provider_unload(libctx);
	OSSL_LIB_CTX_free(libctx);
	keyref_client_free(kc);
	keys_harness_stop(&kh);
	event_base_free(base);
	st = hub_harness_stop(&H);
	hub_harness_free(&H);
	test_token_free(tok);
	curl_global_cleanup();
	return st == 0 ? 0 : -1;
}

static int64_t
file_not_after(void)
{
	FILE *f = fopen(cert_path, "r");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	struct tm tm;
	int64_t t = 0;

	if (f != NULL)
		fclose(f);
	if (x != NULL && ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1)
		t = (int64_t)timegm(&tm);
	X509_free(x);
	return t;
}

static const cJSON *
hub_connector(struct hub_resp *r)
{
	const cJSON *c;

	assert_int_equal(hub_admin(&H, "GET", "connectors?tenantId=acme", NULL, r), 0);
	cJSON_ArrayForEach(c, cJSON_GetObjectItem(r->json, "value"))
		if (strcmp(hub_json_str(c, "connectorId"), connector_id) == 0)
			return c;
	fail_msg("connector %s not listed", connector_id);
	return NULL;
}

/* ---- tests ---- */

static void
test_renew_and_health(void **state)
{
	struct service_status st;
	struct hub_resp r;
	const cJSON *c;
	int64_t before = file_not_after(), now = (int64_t)time(NULL);
	char serial_after[80];

	(void)state;
	assert_true(before - now < 2 * 86400);
	RUN_UNTIL((service_get_status(&st), st.renewals == 1 && st.health_ok >= 1), 20000);
	assert_true(st.registered);
	/* the renewed certificate is stored and runs 30 days */
	assert_true(file_not_after() - now > 29 * 86400);
	assert_int_equal(st.cert_not_after, file_not_after());
	assert_string_equal(st.lifecycle, "unknown"); /* 0.1.0 is not in this hub's catalogue */
	assert_true(count_events(CC_EV_HEALTH_MESSAGE_UPLOAD_SUCCESS) >= 1);
	c = hub_connector(&r);
	assert_string_equal(hub_json_str(c, "health"), "healthy");
	assert_string_equal(hub_json_str(cJSON_GetObjectItem(c, "lastHealthMessage"),
	    "tokenState"), "ok");
	assert_string_equal(hub_json_str(cJSON_GetObjectItem(c, "lastHealthMessage"), "version"),
	    CC_VERSION);
	/* no net.ca: no CA backend to report on; no pfx role in this token: no pfx key */
	assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(c, "lastHealthMessage"),
	    "caReachable"));
	assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(c, "lastHealthMessage"), "pfxKey"));
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(c, "pfxKey")));
	/* the hub knows the renewed certificate as the current one */
	{
		FILE *f = fopen(cert_path, "r");
		X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
		BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
		char *hex = BN_bn2hex(bn);
		snprintf(serial_after, sizeof(serial_after), "%s", hex);
		OPENSSL_free(hex);
		BN_free(bn);
		X509_free(x);
		fclose(f);
	}
	assert_string_equal(hub_json_str(c, "certificateSerial"), serial_after);
	hub_resp_free(&r);
	/* the flows' queue figures reach the hub with the next health message */
	{
		const cJSON *q;
		uint64_t ok_now;

		service_set_queue_figures(3, 2);
		service_get_status(&st);
		ok_now = st.health_ok;
		RUN_UNTIL((service_get_status(&st), st.health_ok >= ok_now + 2), 20000);
		c = hub_connector(&r);
		q = cJSON_GetObjectItem(cJSON_GetObjectItem(c, "lastHealthMessage"), "queue");
		assert_int_equal(cJSON_GetObjectItem(q, "pending")->valueint, 3);
		assert_int_equal(cJSON_GetObjectItem(q, "outbox")->valueint, 2);
		hub_resp_free(&r);
	}
}

static void
test_work(void **state)
{
	char id[4][80], path[160];
	struct hub_resp r;

	(void)state;
	for (int i = 0; i < 3; i++) {
		char p[128];
		snprintf(p, sizeof(p), "{\"deviceId\":\"dev%d\",\"devicePublicKey\":\"AAAA\"}", i);
		assert_int_equal(hub_test_queue(&H, "acme", "pkcs", p, id[i], sizeof(id[i])), 0);
	}
	assert_int_equal(hub_test_queue(&H, "acme", "revoke", "{\"serialNumber\":\"0A1B\","
	    "\"issuerName\":\"CN=x\"}", id[3], sizeof(id[3])), 0);
	RUN_UNTIL(uploads_done == 4, 20000);
	assert_int_equal(pkcs_seen, 3);
	assert_int_equal(rev_seen, 1);
	for (int i = 0; i < 3; i++) {
		char want[120];
		snprintf(want, sizeof(want), "%.79s=Recorded;", id[i]);
		assert_non_null(strstr(upload_status, want));
		snprintf(path, sizeof(path), "requests/%.79s", id[i]);
		assert_int_equal(hub_admin(&H, "GET", path, NULL, &r), 0);
		assert_string_equal(hub_json_str(cJSON_GetObjectItem(r.json, "value"), "state"),
		    "completed");
		assert_string_equal(hub_json_str(cJSON_GetObjectItem(r.json, "value"),
		    "completedBy"), connector_id);
		assert_non_null(hub_json_str(cJSON_GetObjectItem(cJSON_GetObjectItem(r.json,
		    "value"), "result"), "device"));
		hub_resp_free(&r);
	}
	snprintf(path, sizeof(path), "requests/%s", id[3]);
	assert_int_equal(hub_admin(&H, "GET", path, NULL, &r), 0);
	assert_string_equal(hub_json_str(cJSON_GetObjectItem(r.json, "value"), "state"),
	    "completed");
	hub_resp_free(&r);
}

struct outcome {
	bool done;
	enum service_outcome out;
	char code[64];
};

static void
scep_cb(void *arg, enum service_outcome o, const char *code, const char *desc)
{
	struct outcome *r = arg;

	(void)desc;
	r->done = true;
	r->out = o;
	snprintf(r->code, sizeof(r->code), "%s", code ? code : "(none)");
}

static uint8_t *
csr_der(const char *challenge, size_t *len)
{
	char *b64 = hub_test_csr(NULL, 0, "CN=device", challenge, NULL);
	uint8_t *der = malloc(strlen(b64));
	int n = EVP_DecodeBlock(der, (const unsigned char *)b64, (int)strlen(b64));
	size_t pad = 0;

	for (size_t k = strlen(b64); k > 0 && b64[k - 1] == '='; k--)
		pad++;
	*len = (size_t)n - pad;
	free(b64);
	return der;
}

static void
test_scep(void **state)
{
	struct hub_resp r;
	struct outcome o;
	uint8_t *der;
	size_t len;
	char ch[128];

	(void)state;
	assert_int_equal(hub_admin(&H, "POST", "scepChallenges", "{\"challenge\":{\"tenantId\":"
	    "\"acme\"}}", &r), 0);
	snprintf(ch, sizeof(ch), "%s", hub_json_str(cJSON_GetObjectItem(r.json, "value"),
	    "challenge"));
	hub_resp_free(&r);
	der = csr_der(ch, &len);
	memset(&o, 0, sizeof(o));
	assert_int_equal(service_scep_validate("svc-tx-1", der, len, scep_cb, &o), 0);
	RUN_UNTIL(o.done, 10000);
	assert_int_equal(o.out, SERVICE_OK);
	free(der);
	der = csr_der("made-up", &len);
	memset(&o, 0, sizeof(o));
	assert_int_equal(service_scep_validate("svc-tx-2", der, len, scep_cb, &o), 0);
	RUN_UNTIL(o.done, 10000);
	assert_int_equal(o.out, SERVICE_REFUSED);
	assert_string_equal(o.code, "ChallengeDecodingError");
	free(der);
}

static void
test_hub_down(void **state)
{
	struct service_status st;
	struct outcome o;
	char id[80], path[160];
	uint8_t *der;
	size_t len, ok_before;
	struct hub_resp r;

	(void)state;
	/* a request is leased and held by the flow */
	hold_next = true;
	assert_int_equal(hub_test_queue(&H, "acme", "pkcs", "{\"deviceId\":\"late\","
	    "\"devicePublicKey\":\"AAAA\"}", id, sizeof(id)), 0);
	RUN_UNTIL(held_id[0] != '\0', 10000);
	assert_string_equal(held_id, id);
	/* leased for net.service.lease_s, as the hub recorded it */
	{
		struct tm tm = { 0 };
		const char *until;
		time_t left;

		snprintf(path, sizeof(path), "requests/%s", id);
		assert_int_equal(hub_admin(&H, "GET", path, NULL, &r), 0);
		until = hub_json_str(cJSON_GetObjectItem(r.json, "value"), "leaseExpiresUtc");
		assert_non_null(until);
		assert_non_null(strptime(until, "%Y-%m-%dT%H:%M:%S", &tm));
		left = timegm(&tm) - time(NULL);
		assert_true(left > 30 && left <= 45);
		hub_resp_free(&r);
	}
	/* the hub goes away */
	assert_int_equal(hub_harness_stop(&H), 0);
	nseen = 0;
	RUN_UNTIL(count_events(CC_EV_HEALTH_MESSAGE_UPLOAD_FAILURE) >= 1, 20000);
	assert_true(count_events(CC_EV_HEALTH_MESSAGE_UPLOAD_FAILED_ATTEMPT) >= 1);
	/* no validation without the service: no certificate */
	der = csr_der("whatever", &len);
	memset(&o, 0, sizeof(o));
	svc.retry_max_attempts = 2;
	assert_int_equal(service_scep_validate("svc-tx-3", der, len, scep_cb, &o), 0);
	RUN_UNTIL(o.done, 15000);
	svc.retry_max_attempts = 30;
	assert_int_equal(o.out, SERVICE_FAILED);
	free(der);
	/* the flow finishes while the hub is down; the upload waits and retries */
	uploads_done = 0;
	assert_int_equal(service_complete("pkcs", held_id, true, 0, NULL, NULL, upload_cb, NULL),
	    0);
	spin_ms(600);
	assert_int_equal(uploads_done, 0);
	assert_int_equal(hub_harness_restart(&H), 0);
	service_get_status(&st);
	ok_before = st.health_ok;
	RUN_UNTIL(uploads_done == 1, 20000);
	snprintf(path, sizeof(path), "%s=Recorded;", held_id);
	assert_non_null(strstr(upload_status, path));
	RUN_UNTIL((service_get_status(&st), st.health_ok > ok_before), 20000);
	snprintf(path, sizeof(path), "requests/%s", held_id);
	assert_int_equal(hub_admin(&H, "GET", path, NULL, &r), 0);
	assert_string_equal(hub_json_str(cJSON_GetObjectItem(r.json, "value"), "state"),
	    "completed");
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(r.json, "value"), "attempt")->
	    valueint, 1);
	hub_resp_free(&r);
}

#ifdef HAVE_SCEP_VERIFY
/*
 * SCEP's service-verified challenge mode: its worker threads call the ops this client
 * registered with scep_verify_set; the calls are made on the loop and the workers wait.
 */
struct verify_job {
	const struct scep_verify_ops *ops;
	uint8_t *csr;
	size_t len;
	const char *txid;
	int result;
	char code[64], why[256];
	int notify_ok, notify_bad;
	volatile bool done;
};

static void *
verify_thread(void *arg)
{
	struct verify_job *j = arg;
	char *b64 = malloc(j->len * 2 + 8), body[8192];

	j->result = j->ops->validate(NULL, j->csr, j->len, j->txid, "certconn-test", j->code,
	    sizeof(j->code), j->why, sizeof(j->why));
	EVP_EncodeBlock((unsigned char *)b64, j->csr, (int)j->len);
	snprintf(body, sizeof(body), "{\"notification\":{\"transactionId\":\"%s\","
	    "\"certificateRequest\":\"%s\",\"callerInfo\":\"t\",\"certificateThumbprint\":\"ab\","
	    "\"certificateSerialNumber\":\"01\",\"certificateExpirationDateUtc\":"
	    "\"2030-01-01T00:00:00.000Z\",\"issuingCertificateAuthority\":\"CN=x\"}}", j->txid,
	    b64);
	j->notify_ok = j->ops->notify(NULL, "successNotification", body, j->why, sizeof(j->why));
	/* the same notification again (an outbox resend) is acknowledged */
	j->notify_ok |= j->ops->notify(NULL, "successNotification", body, j->why,
	    sizeof(j->why));
	snprintf(body, sizeof(body), "{\"notification\":{\"transactionId\":\"%s\","
	    "\"certificateRequest\":\"%s\",\"hResult\":1,\"errorDescription\":\"x\"}}",
	    j->txid, b64);
	j->notify_bad = j->ops->notify(NULL, "failureNotification", body, j->why,
	    sizeof(j->why));
	free(b64);
	j->done = true;
	return NULL;
}

static void
test_scep_verify(void **state)
{
	struct verify_job j;
	struct hub_resp r;
	pthread_t t;
	char ch[128];

	(void)state;
	memset(&j, 0, sizeof(j));
	j.ops = svc_scep_verify_ops();
	assert_non_null(j.ops);
	assert_int_equal(hub_admin(&H, "POST", "scepChallenges", "{\"challenge\":{\"tenantId\":"
	    "\"acme\"}}", &r), 0);
	snprintf(ch, sizeof(ch), "%s", hub_json_str(cJSON_GetObjectItem(r.json, "value"),
	    "challenge"));
	hub_resp_free(&r);
	j.csr = csr_der(ch, &j.len);
	j.txid = "verify-tx-1";
	assert_int_equal(pthread_create(&t, NULL, verify_thread, &j), 0);
	RUN_UNTIL(j.done, 30000);
	pthread_join(t, NULL);
	assert_int_equal(j.result, SCEP_VERIFY_OK);
	assert_int_equal(j.notify_ok, 0);
	/* a failure after the success is refused by the hub: not acknowledged */
	assert_int_equal(j.notify_bad, -1);
	assert_non_null(strstr(j.why, "TransactionAlreadySucceeded"));
	/* a refusal carries the service's code */
	free(j.csr);
	memset(&j, 0, sizeof(j));
	j.ops = svc_scep_verify_ops();
	j.csr = csr_der("not-issued", &j.len);
	j.txid = "verify-tx-2";
	assert_int_equal(pthread_create(&t, NULL, verify_thread, &j), 0);
	RUN_UNTIL(j.done, 30000);
	pthread_join(t, NULL);
	assert_int_equal(j.result, SCEP_VERIFY_DENIED);
	assert_string_equal(j.code, "ChallengeDecodingError");
	free(j.csr);
}
#else
static void
test_scep_verify(void **state)
{
	(void)state;
	skip();
}
#endif

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_renew_and_health),
		cmocka_unit_test(test_work),
		cmocka_unit_test(test_scep),
		cmocka_unit_test(test_scep_verify),
		cmocka_unit_test(test_hub_down),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
