/*
 * The SCEP server (src/scep) in-process: the test suite's own SCEP client
 * (tests/lib/scep_client.c, OpenSSL CMS, written separately) talks to scep_server_handle
 * through a transport hook instead of HTTP. The configuration goes through the real config
 * checker; the CA is the real local CA on a temporary SQLite file; keys are in memory (the
 * keys process path is covered by the integration tests). Every operation and message type,
 * and the bad inputs, with the failInfo or HTTP status each one must get.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certconn/ca.h"
#include "certconn/config.h"
#include "certconn/event.h"
#include "certconn/scep.h"
#include "scep_client.h"
#include "scep_verify.h"
#include "test_token.h"

struct fx {
	char dir[64];
	char path[256];
	struct cc_config_net conf;
	EVP_PKEY *cakey, *ra, *ra_sign, *ra_enc;
	X509 *cacert;
	struct cc_ca *ca;
	struct scep_server *srv;
	int load_calls;
};

static struct fx *F;

/* Events emitted by the server, captured (the forwarder is what net installs). */
#define EV_MAX 4096
static struct {
	pthread_mutex_t lock;
	uint32_t id[EV_MAX];
	char corr[EV_MAX][72];
	size_t n;
} EV = { .lock = PTHREAD_MUTEX_INITIALIZER };

static int
ev_capture(const struct cc_event_msg *m, void *arg)
{
	(void)arg;
	pthread_mutex_lock(&EV.lock);
	if (EV.n < EV_MAX) {
		EV.id[EV.n] = m->id;
		snprintf(EV.corr[EV.n], sizeof(EV.corr[0]), "%s", m->correlation_id != NULL ?
		    m->correlation_id : "");
		EV.n++;
	}
	pthread_mutex_unlock(&EV.lock);
	return 0;
}

/* How many events id with correlation id corr (NULL: any) were emitted. */
static int
ev_count(uint32_t id, const char *corr)
{
	int n = 0;

	pthread_mutex_lock(&EV.lock);
	for (size_t i = 0; i < EV.n; i++)
		if (EV.id[i] == id && (corr == NULL || strcmp(EV.corr[i], corr) == 0))
			n++;
	pthread_mutex_unlock(&EV.lock);
	return n;
}

static X509 *
make_ca_cert(EVP_PKEY *k)
{
	X509 *x = sc_selfsigned(k, "CN=SCEP Test CA,O=certconn", 3650);
	X509V3_CTX ctx;
	X509_EXTENSION *e;

	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints, "critical,CA:TRUE");
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	e = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_key_identifier, "hash");
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	return x;
}

static EVP_PKEY *
loader(void *arg, const char *role, X509 **cert)
{
	struct fx *f = arg;
	EVP_PKEY *k = strcmp(role, "ra") == 0 ? f->ra : strcmp(role, "ra-sign") == 0 ?
	    f->ra_sign : strcmp(role, "ra-encrypt") == 0 ? f->ra_enc : NULL;

	f->load_calls++;
	*cert = NULL;
	if (k != NULL)
		EVP_PKEY_up_ref(k);
	return k;
}

/* The transport: the URL's path and query go to scep_server_handle as net would pass them. */
static int
transport(void *arg, const char *url, const uint8_t *body, size_t len, struct sc_reply *r)
{
	struct fx *f = arg;
	struct scep_http_req q = { 0 };
	struct scep_http_resp resp;
	char path[256], op[64] = "", *msg = NULL;
	const char *p = strstr(url, "://"), *qs;

	p = strchr(p + 3, '/');
	qs = strchr(p, '?');
	snprintf(path, sizeof(path), "%.*s", qs != NULL ? (int)(qs - p) : (int)strlen(p), p);
	if (qs != NULL) {
		const char *o = strstr(qs, "operation="), *m = strstr(qs, "message=");

		if (o != NULL)
			snprintf(op, sizeof(op), "%.*s", (int)strcspn(o + 10, "&"), o + 10);
		if (m != NULL) {
			int n = 0;
			char *u = curl_easy_unescape(NULL, m + 8, (int)strcspn(m + 8, "&"), &n);
			msg = strndup(u, (size_t)n);
			curl_free(u);
		}
	}
	q.post = body != NULL;
	q.path = path;
	q.operation = op[0] != '\0' ? op : NULL;
	q.message = msg;
	q.body = body;
	q.body_len = len;
	q.peer = "127.0.0.1:5555";
	scep_server_handle(f->srv, &q, &resp);
	r->http_status = resp.status;
	snprintf(r->content_type, sizeof(r->content_type), "%s", resp.content_type);
	r->body = resp.body;
	r->body_len = resp.body_len;
	free(msg);
	return 0;
}

static const char *config_fmt =
    "{\"listen\": \"127.0.0.1:8080\", \"state_dir\": \"%s\","
    " \"ca\": {\"name\": \"test\", \"base_url\": \"http://127.0.0.1:8080\"},"
    " \"scep\": {\"replay_window_s\": 3600, \"clock_skew_s\": 600, \"profiles\": {"
    "  \"devices\": {\"challenge\": {\"mode\": \"static\", \"password_file\": \"%s/pw\"},"
    "     \"issuance\": {\"validity_days\": 30}},"
    "  \"manual\": {\"challenge\": {\"mode\": \"none\"}, \"manual_approval\": true},"
    "  \"dynamic\": {\"challenge\": {\"mode\": \"dynamic\", \"ttl_s\": 600},"
    "     \"renewal_window_days\": 10},"
    "  \"legacy\": {\"ra_sign_role\": \"ra-sign\", \"ra_encrypt_role\": \"ra-encrypt\","
    "     \"challenge\": {\"mode\": \"none\"}, \"des3\": true, \"renewal\": false},"
    "  \"service\": {\"challenge\": {\"mode\": \"service\"}}"
    " }}}";

static STACK_OF(X509) *next_ca;

static int
start_server(struct fx *f)
{
	struct scep_server_opts o = { 0 };
	char err[512];

	o.conf = f->conf.scep;
	o.ca = f->ca;
	o.load_key = loader;
	o.load_key_arg = f;
	o.state_dir = f->dir;
	o.ra_subject = "CN=Test RA,O=certconn";
	o.ra_validity_days = 365;
	o.next_ca = next_ca;
	if (scep_server_new(&o, &f->srv, err, sizeof(err)) == -1) {
		fprintf(stderr, "scep_server_new: %s\n", err);
		return -1;
	}
	return 0;
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct cc_ca_opts co = { 0 };
	char json[4096], err[512];
	FILE *pw;

	snprintf(f->dir, sizeof(f->dir), "/tmp/test_scep.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/pw", f->dir);
	pw = fopen(f->path, "w");
	fputs("s3cret-static\n", pw);
	fclose(pw);
	snprintf(json, sizeof(json), config_fmt, f->dir, f->dir);
	if (cc_config_load_net(json, &f->conf, err, sizeof(err)) == -1) {
		fprintf(stderr, "config: %s\n", err);
		return -1;
	}
	f->cakey = sc_key_ec("P-256");
	f->ra = sc_key_rsa(2048);
	f->ra_sign = sc_key_rsa(2048);
	f->ra_enc = sc_key_rsa(2048);
	f->cacert = make_ca_cert(f->cakey);
	snprintf(f->path, sizeof(f->path), "%s/ca.db", f->dir);
	co.name = "test";
	co.db_path = f->path;
	co.base_url = "http://127.0.0.1:8080";
	co.cdp = co.aia = true;
	co.crl_days = 7;
	co.cert = f->cacert;
	co.key = f->cakey;
	if (cc_ca_open(&co, &f->ca, err, sizeof(err)) == -1) {
		fprintf(stderr, "ca: %s\n", err);
		return -1;
	}
	if (start_server(f) == -1)
		return -1;
	EV.n = 0;
	cc_event_set_forward(ev_capture, NULL);
	F = f;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	scep_verify_set(NULL, NULL);
	cc_event_set_forward(NULL, NULL);
	scep_server_free(f->srv);
	cc_ca_close(f->ca);
	cc_config_net_free(&f->conf);
	EVP_PKEY_free(f->cakey);
	EVP_PKEY_free(f->ra);
	EVP_PKEY_free(f->ra_sign);
	EVP_PKEY_free(f->ra_enc);
	X509_free(f->cacert);
	test_rmtree(f->dir);
	free(f);
	return 0;
}

static void
client(struct fx *f, struct sc_client *c, const char *profile)
{
	char url[128];

	snprintf(url, sizeof(url), "http://127.0.0.1:8080/scep%s%s", profile ? "/" : "",
	    profile ? profile : "");
	sc_client_init(c, url);
	c->transport = transport;
	c->transport_arg = f;
	assert_int_equal(sc_get_ca_cert(c), 0);
}

struct device {
	EVP_PKEY *key;
	X509 *self;
	X509_REQ *csr;
};

static void
device(struct device *d, const char *subject, const char *challenge)
{
	d->key = sc_key_rsa(2048);
	d->self = sc_selfsigned(d->key, subject, 1);
	d->csr = sc_csr(d->key, subject, challenge, NULL);
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
verify_chain(X509 *ca, X509 *x)
{
	X509_STORE *st = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int r;

	X509_STORE_add_cert(st, ca);
	X509_STORE_CTX_init(ctx, st, x, NULL);
	r = X509_verify_cert(ctx);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	return r;
}

/* Asserts a FAILURE CertRep with failInfo fi and a text containing want. */
static void
assert_failure(struct sc_reply *r, int fi, const char *want)
{
	if (r->http_status != 200 || !r->certrep || r->pki_status != SC_STATUS_FAILURE ||
	    r->fail_info != fi || (want != NULL && strstr(r->fail_text, want) == NULL))
		fail_msg("expected FAILURE %d (\"%s\"), got HTTP %ld certrep %d status %d failInfo %d "
		    "\"%s\" body \"%.*s\"", fi, want ? want : "", r->http_status, r->certrep,
		    r->pki_status, r->fail_info, r->fail_text, r->certrep ? 0 : (int)r->body_len,
		    r->body != NULL ? (char *)r->body : "");
	assert_true(r->signature_ok);
}

/* ---- tests ---- */

static void
test_caps_and_cacert(void **state)
{
	struct fx *f = *state;
	struct sc_client c, l;

	client(f, &c, NULL);
	assert_int_equal(sc_get_caps(&c), 0);
	assert_string_equal(c.caps, "POSTPKIOperation\nSHA-256\nSHA-512\nAES\nSCEPStandard\n"
	    "Renewal\n");
	/* one RA key: one certificate, both usages, issued by the CA; and the CA */
	assert_int_equal(sk_X509_num(c.ca_certs), 2);
	assert_ptr_equal(X509_cmp(c.ra_sign, c.ra_enc), 0);
	assert_int_equal(X509_get_key_usage(c.ra_sign), KU_DIGITAL_SIGNATURE |
	    KU_KEY_ENCIPHERMENT);
	assert_int_equal(X509_cmp(c.ca, f->cacert), 0);
	assert_int_equal(verify_chain(f->cacert, c.ra_sign), 1);
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(c.ra_sign), f->ra), 1);

	/* two RA keys (as NDES): a signing and an encryption certificate; DES3 offered */
	client(f, &l, "legacy");
	assert_int_equal(sc_get_caps(&l), 0);
	assert_string_equal(l.caps, "POSTPKIOperation\nSHA-256\nSHA-512\nAES\nDES3\n"
	    "SCEPStandard\n");
	assert_int_equal(sk_X509_num(l.ca_certs), 3);
	assert_int_equal(X509_get_key_usage(l.ra_sign), KU_DIGITAL_SIGNATURE);
	assert_int_equal(X509_get_key_usage(l.ra_enc), KU_KEY_ENCIPHERMENT);
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(l.ra_sign), f->ra_sign), 1);
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(l.ra_enc), f->ra_enc), 1);
	sc_client_free(&c);
	sc_client_free(&l);
}

static void
test_ra_cert_kept(void **state)
{
	struct fx *f = *state;
	struct sc_client a, b;

	/* the RA certificate is issued once and kept in the state directory */
	client(f, &a, NULL);
	scep_server_free(f->srv);
	assert_int_equal(start_server(f), 0);
	client(f, &b, NULL);
	assert_int_equal(X509_cmp(a.ra_sign, b.ra_sign), 0);
	sc_client_free(&a);
	sc_client_free(&b);
}

static void
test_http_errors(void **state)
{
	struct fx *f = *state;
	struct sc_client c;
	struct sc_reply r;

	client(f, &c, NULL);
	assert_int_equal(transport(f, "http://h/scep/nope?operation=GetCACaps", NULL, 0, &r), 0);
	assert_int_equal(r.http_status, 404);
	sc_reply_free(&r);
	assert_int_equal(transport(f, "http://h/scep?operation=Nope", NULL, 0, &r), 0);
	assert_int_equal(r.http_status, 400);
	sc_reply_free(&r);
	assert_int_equal(transport(f, "http://h/scep", NULL, 0, &r), 0);
	assert_int_equal(r.http_status, 400);
	sc_reply_free(&r);
	assert_int_equal(transport(f, "http://h/scep?operation=PKIOperation&message=%%%", NULL, 0,
	    &r), 0);
	assert_int_equal(r.http_status, 400);
	sc_reply_free(&r);
	/* garbage POSTed */
	assert_int_equal(transport(f, "http://h/scep?operation=PKIOperation",
	    (const uint8_t *)"hello", 5, &r), 0);
	assert_int_equal(r.http_status, 400);
	sc_reply_free(&r);
	/* legacy paths reach the default profile */
	assert_int_equal(transport(f, "http://h/cgi-bin/pkiclient.exe?operation=GetCACaps", NULL,
	    0, &r), 0);
	assert_int_equal(r.http_status, 200);
	sc_reply_free(&r);
	assert_int_equal(transport(f, "http://h/scep/devices/pkiclient.exe?operation=GetCACaps",
	    NULL, 0, &r), 0);
	assert_int_equal(r.http_status, 200);
	sc_reply_free(&r);
	assert_int_equal(transport(f, "http://h/scep?operation=GetNextCACert", NULL, 0, &r), 0);
	assert_int_equal(r.http_status, 404);
	sc_reply_free(&r);
	sc_client_free(&c);
}

static void
test_pkcsreq_static(void **state)
{
	struct fx *f = *state;
	struct sc_client c;
	struct sc_reply r, r2;
	struct sc_req q;
	struct device d;
	uint8_t *der;
	size_t len;
	char txid[65];

	client(f, &c, NULL);
	device(&d, "CN=dev-static,O=Example", "s3cret-static");
	sc_txid(d.key, txid);
	assert_int_equal(sc_pkcsreq(&c, d.key, d.self, d.csr, NULL, &r), 0);
	assert_int_equal(r.http_status, 200);
	assert_string_equal(r.content_type, "application/x-pki-message");
	assert_true(r.certrep);
	assert_true(r.signature_ok);
	assert_int_equal(r.message_type, SC_MSG_CERTREP);
	assert_int_equal(r.pki_status, SC_STATUS_SUCCESS);
	assert_string_equal(r.txid, txid);
	assert_int_equal(r.recipient_nonce_len, 16);
	assert_non_null(r.cert);
	assert_int_equal(verify_chain(f->cacert, r.cert), 1);
	assert_int_equal(X509_NAME_cmp(X509_get_subject_name(r.cert),
	    X509_REQ_get_subject_name(d.csr)), 0);
	/* validity_days 30 from the profile */
	{
		int days, secs;
		ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(r.cert), X509_get0_notAfter(r.cert));
		assert_int_equal(days, 30);
		assert_int_equal(secs, 300);
	}

	/* events, with the transactionID as correlation id */
	assert_int_equal(ev_count(CC_EV_SCEP_REQUEST_RECEIVED, txid), 1);
	assert_int_equal(ev_count(CC_EV_SCEP_VERIFY_SUCCESS, txid), 1);
	assert_int_equal(ev_count(CC_EV_SCEP_ISSUED_SUCCESS, txid), 1);
	assert_int_equal(ev_count(CC_EV_SCEP_REQUEST_SUCCESS, txid), 1);
	assert_int_equal(ev_count(CC_EV_SCEP_REQUEST_ISSUED_FAILURE, NULL), 0);

	/* a retransmission (new nonce, same transaction and key) gets the same certificate */
	assert_int_equal(sc_pkcsreq(&c, d.key, d.self, d.csr, NULL, &r2), 0);
	assert_int_equal(r2.pki_status, SC_STATUS_SUCCESS);
	assert_int_equal(X509_cmp(r.cert, r2.cert), 0);
	sc_reply_free(&r2);

	/* the recipientNonce is the request's senderNonce */
	assert_int_equal(sc_csr_der(d.csr, &der, &len), 0);
	sc_req_pkcsreq(&q, d.key, d.self, der, len);
	assert_int_equal(sc_pkioperation(&c, &q, &r2), 0);
	assert_int_equal(r2.pki_status, SC_STATUS_SUCCESS);
	assert_memory_equal(r2.recipient_nonce, q.nonce_used, 16);
	sc_reply_free(&r2);

	/* GET works the same (certmonger sends GET) */
	c.use_get = true;
	assert_int_equal(sc_pkioperation(&c, &q, &r2), 0);
	assert_int_equal(r2.pki_status, SC_STATUS_SUCCESS);
	sc_reply_free(&r2);
	free(der);
	sc_reply_free(&r);
	device_free(&d);
	sc_client_free(&c);
}

static void
test_bad_messages(void **state)
{
	struct fx *f = *state;
	struct sc_client c;
	struct sc_reply r;
	struct sc_req q;
	struct device d, other;
	uint8_t *der, nonce[16];
	size_t len;

	client(f, &c, NULL);
	device(&d, "CN=dev-bad", "s3cret-static");
	device(&other, "CN=other", "x");
	assert_int_equal(sc_csr_der(d.csr, &der, &len), 0);
	sc_req_pkcsreq(&q, d.key, d.self, der, len);

	/* broken signature */
	q.break_signature = true;
	assert_int_equal(sc_pkioperation(&c, &q, &r), 0);
	assert_failure(&r, SC_FAIL_BADMESSAGECHECK, "signature does not verify");
	sc_reply_free(&r);
	q.break_signature = false;

	/* envelope for the wrong recipient */
	q.recipient = other.self;
	assert_int_equal(sc_pkioperation(&c, &q, &r), 0);
	assert_failure(&r, SC_FAIL_BADMESSAGECHECK, "not encrypted to this RA");
	sc_reply_free(&r);
	q.recipient = NULL;

	/* DES-only request, and 3DES where the profile does not enable it */
	c.cipher = "DES-CBC";
	assert_int_equal(sc_pkioperation(&c, &q, &r), 0);
	assert_failure(&r, SC_FAIL_BADALG, "DES-CBC is not accepted");
	sc_reply_free(&r);
	c.cipher = "DES-EDE3-CBC";
	assert_int_equal(sc_pkioperation(&c, &q, &r), 0);
	assert_failure(&r, SC_FAIL_BADALG, "not accepted (AES only)");
	sc_reply_free(&r);
	c.cipher = "AES-256-CBC";

	/* not enveloped at all */
	q.no_envelope = true;
	assert_int_equal(sc_pkioperation(&c, &q, &r), 0);
	assert_failure(&r, SC_FAIL_BADMESSAGECHECK, "not an EnvelopedData");
	sc_reply_free(&r);
	q.no_envelope = false;

	/* signingTime far off */
	q.signing_time = time(NULL) - 7200;
	assert_int_equal(sc_pkioperation(&c, &q, &r), 0);
	assert_failure(&r, SC_FAIL_BADTIME, "signingTime");
	sc_reply_free(&r);
	q.signing_time = 0;

	/* truncated base64 by GET: not even readable, HTTP 400 */
	c.use_get = true;
	q.truncate_base64 = true;
	assert_int_equal(sc_pkioperation(&c, &q, &r), 0);
	assert_int_equal(r.http_status, 400);
	sc_reply_free(&r);
	c.use_get = false;
	q.truncate_base64 = false;

	/* a replayed senderNonce is refused, even for a valid request */
	assert_int_equal(RAND_bytes(nonce, sizeof(nonce)), 1);
	q.nonce = nonce;
	assert_int_equal(sc_pkioperation(&c, &q, &r), 0);
	assert_int_equal(r.pki_status, SC_STATUS_SUCCESS);
	sc_reply_free(&r);
	assert_int_equal(sc_pkioperation(&c, &q, &r), 0);
	assert_failure(&r, SC_FAIL_BADREQUEST, "senderNonce was already used");
	sc_reply_free(&r);
	q.nonce = NULL;

	/* a signer that is neither self-signed for the key nor ours */
	q.cert = other.self;
	q.key = other.key;
	assert_int_equal(sc_pkioperation(&c, &q, &r), 0);
	assert_failure(&r, SC_FAIL_BADREQUEST, "not the request's key");
	sc_reply_free(&r);

	/* the same transactionID with another key */
	q.txid = "shared-txid";
	assert_int_equal(sc_pkcsreq(&c, d.key, d.self, d.csr, "shared-txid", &r), 0);
	assert_int_equal(r.pki_status, SC_STATUS_SUCCESS);
	sc_reply_free(&r);
	{
		X509_REQ *ocsr = sc_csr(other.key, "CN=other", "s3cret-static", NULL);
		assert_int_equal(sc_pkcsreq(&c, other.key, other.self, ocsr, "shared-txid", &r), 0);
		assert_failure(&r, SC_FAIL_BADREQUEST, "transactionID was used for another key");
		sc_reply_free(&r);
		X509_REQ_free(ocsr);
	}

	/* content that is not a CSR */
	q.cert = d.self;
	q.key = d.key;
	q.txid = NULL;
	q.content = (const uint8_t *)"not a csr";
	q.content_len = 9;
	assert_int_equal(sc_pkioperation(&c, &q, &r), 0);
	assert_failure(&r, SC_FAIL_BADREQUEST, "not a PKCS#10 request");
	sc_reply_free(&r);
	free(der);
	device_free(&d);
	device_free(&other);
	sc_client_free(&c);
}

static void
test_challenges(void **state)
{
	struct fx *f = *state;
	struct sc_client c, dy;
	struct sc_reply r;
	struct device d;
	char ch[SCEP_CHALLENGE_LEN + 1], ch2[SCEP_CHALLENGE_LEN + 1], err[256];
	X509_REQ *csr;

	/* static: wrong and missing */
	client(f, &c, NULL);
	device(&d, "CN=dev-wrong", "wrong");
	assert_int_equal(sc_pkcsreq(&c, d.key, d.self, d.csr, NULL, &r), 0);
	assert_failure(&r, SC_FAIL_BADREQUEST, "wrong challenge password");
	sc_reply_free(&r);
	device_free(&d);
	device(&d, "CN=dev-none", NULL);
	assert_int_equal(sc_pkcsreq(&c, d.key, d.self, d.csr, NULL, &r), 0);
	assert_failure(&r, SC_FAIL_BADREQUEST, "no challenge password");
	sc_reply_free(&r);
	device_free(&d);

	/* dynamic: one use, expiry, subject */
	client(f, &dy, "dynamic");
	assert_int_equal(scep_challenge_new(f->ca, "dynamic", NULL, 600, time(NULL), ch, err,
	    sizeof(err)), 0);
	assert_int_equal(strlen(ch), 32);
	device(&d, "CN=dev-dyn", ch);
	assert_int_equal(sc_pkcsreq(&dy, d.key, d.self, d.csr, NULL, &r), 0);
	assert_int_equal(r.pki_status, SC_STATUS_SUCCESS);
	sc_reply_free(&r);
	device_free(&d);
	device(&d, "CN=dev-dyn2", ch);
	assert_int_equal(sc_pkcsreq(&dy, d.key, d.self, d.csr, NULL, &r), 0);
	assert_failure(&r, SC_FAIL_BADREQUEST, "already used");
	sc_reply_free(&r);
	device_free(&d);
	/* made two hours ago with a one-hour lifetime */
	assert_int_equal(scep_challenge_new(f->ca, "dynamic", NULL, 3600, time(NULL) - 7200, ch2,
	    err, sizeof(err)), 0);
	device(&d, "CN=dev-dyn3", ch2);
	assert_int_equal(sc_pkcsreq(&dy, d.key, d.self, d.csr, NULL, &r), 0);
	assert_failure(&r, SC_FAIL_BADREQUEST, "expired");
	sc_reply_free(&r);
	device_free(&d);
	/* for another profile, and for another subject */
	assert_int_equal(scep_challenge_new(f->ca, "devices", NULL, 600, time(NULL), ch2, err,
	    sizeof(err)), 0);
	device(&d, "CN=dev-dyn4", ch2);
	assert_int_equal(sc_pkcsreq(&dy, d.key, d.self, d.csr, NULL, &r), 0);
	assert_failure(&r, SC_FAIL_BADREQUEST, "for profile devices");
	sc_reply_free(&r);
	device_free(&d);
	assert_int_equal(scep_challenge_new(f->ca, "dynamic", "CN=expected,O=Example", 600,
	    time(NULL), ch2, err, sizeof(err)), 0);
	device(&d, "CN=unexpected,O=Example", ch2);
	assert_int_equal(sc_pkcsreq(&dy, d.key, d.self, d.csr, NULL, &r), 0);
	assert_failure(&r, SC_FAIL_BADREQUEST, "not the one the challenge is for");
	sc_reply_free(&r);
	/* the right subject (same key, new transaction) gets it */
	csr = sc_csr(d.key, "CN=expected,O=Example", ch2, NULL);
	assert_int_equal(sc_pkcsreq(&dy, d.key, d.self, csr, "second-try", &r), 0);
	assert_int_equal(r.pki_status, SC_STATUS_SUCCESS);
	sc_reply_free(&r);
	X509_REQ_free(csr);
	device_free(&d);
	assert_int_equal(scep_challenge_new(f->ca, "dynamic", "no-equals-sign", 600, time(NULL),
	    ch2, err, sizeof(err)), -1);
	sc_client_free(&c);
	sc_client_free(&dy);
}

static void
test_manual_approval_poll(void **state)
{
	struct fx *f = *state;
	struct sc_client c;
	struct sc_reply r;
	struct device d, e;
	char txid[65], err[256];
	struct scep_txn t;

	client(f, &c, "manual");
	device(&d, "CN=dev-manual", NULL);
	sc_txid(d.key, txid);
	assert_int_equal(sc_pkcsreq(&c, d.key, d.self, d.csr, NULL, &r), 0);
	assert_int_equal(r.pki_status, SC_STATUS_PENDING);
	assert_true(r.signature_ok);
	sc_reply_free(&r);
	assert_int_equal(scep_txn_get(f->ca, "manual", txid, &t, err, sizeof(err)), 1);
	assert_int_equal(t.state, SCEP_TXN_PENDING);
	assert_string_equal(t.subject, "CN=dev-manual");
	free(t.csr);

	/* polling while pending */
	assert_int_equal(sc_certpoll(&c, d.key, d.self, X509_REQ_get_subject_name(d.csr), NULL,
	    &r), 0);
	assert_int_equal(r.pki_status, SC_STATUS_PENDING);
	sc_reply_free(&r);
	/* a poll for another subject, or an unknown transaction */
	{
		X509_NAME *n = sc_name("CN=someone-else");
		assert_int_equal(sc_certpoll(&c, d.key, d.self, n, NULL, &r), 0);
		assert_failure(&r, SC_FAIL_BADCERTID, "subject");
		sc_reply_free(&r);
		assert_int_equal(sc_certpoll(&c, d.key, d.self, n, "no-such-transaction", &r), 0);
		assert_failure(&r, SC_FAIL_BADCERTID, "unknown transaction");
		sc_reply_free(&r);
		X509_NAME_free(n);
	}
	/* someone else polling this transaction */
	device(&e, "CN=dev-manual", NULL);
	assert_int_equal(sc_certpoll(&c, e.key, e.self, X509_REQ_get_subject_name(d.csr), txid,
	    &r), 0);
	assert_failure(&r, SC_FAIL_BADMESSAGECHECK, "not signed by the requester");
	sc_reply_free(&r);

	/* approved: the next poll gets the certificate */
	assert_int_equal(scep_txn_move(f->ca, "manual", txid, SCEP_TXN_PENDING, SCEP_TXN_APPROVED,
	    NULL, NULL, err, sizeof(err)), 1);
	assert_int_equal(sc_certpoll(&c, d.key, d.self, X509_REQ_get_subject_name(d.csr), NULL,
	    &r), 0);
	assert_int_equal(r.pki_status, SC_STATUS_SUCCESS);
	assert_non_null(r.cert);
	assert_int_equal(verify_chain(f->cacert, r.cert), 1);
	sc_reply_free(&r);
	assert_int_equal(scep_txn_get(f->ca, "manual", txid, &t, err, sizeof(err)), 1);
	assert_int_equal(t.state, SCEP_TXN_ISSUED);
	free(t.csr);

	/* rejected: the poll fails */
	sc_txid(e.key, txid);
	assert_int_equal(sc_pkcsreq(&c, e.key, e.self, e.csr, NULL, &r), 0);
	assert_int_equal(r.pki_status, SC_STATUS_PENDING);
	sc_reply_free(&r);
	assert_int_equal(scep_txn_move(f->ca, "manual", txid, SCEP_TXN_PENDING, SCEP_TXN_REJECTED,
	    NULL, "not one of ours", err, sizeof(err)), 1);
	assert_int_equal(sc_certpoll(&c, e.key, e.self, X509_REQ_get_subject_name(e.csr), NULL,
	    &r), 0);
	assert_failure(&r, SC_FAIL_BADREQUEST, "not one of ours");
	sc_reply_free(&r);
	device_free(&d);
	device_free(&e);
	sc_client_free(&c);
}

static void
test_getcert_getcrl(void **state)
{
	struct fx *f = *state;
	struct sc_client c;
	struct sc_reply r, g;
	struct device d;
	char hex[CC_CA_SERIAL_HEX_MAX], err[256];
	ASN1_INTEGER *bogus = ASN1_INTEGER_new();
	X509_REVOKED *rv = NULL;

	client(f, &c, NULL);
	device(&d, "CN=dev-getcert", "s3cret-static");
	assert_int_equal(sc_pkcsreq(&c, d.key, d.self, d.csr, NULL, &r), 0);
	assert_int_equal(r.pki_status, SC_STATUS_SUCCESS);

	assert_int_equal(sc_getcert(&c, d.key, d.self, X509_get0_serialNumber(r.cert), &g), 0);
	assert_int_equal(g.pki_status, SC_STATUS_SUCCESS);
	assert_non_null(g.cert);
	assert_int_equal(X509_cmp(g.cert, r.cert), 0);
	sc_reply_free(&g);
	ASN1_INTEGER_set(bogus, 12345);
	assert_int_equal(sc_getcert(&c, d.key, d.self, bogus, &g), 0);
	assert_failure(&g, SC_FAIL_BADCERTID, "no certificate");
	sc_reply_free(&g);

	/* GetCRL after a revocation: the CRL names the certificate and verifies */
	assert_int_equal(cc_ca_serial_hex(X509_get0_serialNumber(r.cert), hex), 0);
	assert_int_equal(cc_ca_revoke(f->ca, hex, 1, err, sizeof(err)), 0);
	assert_int_equal(sc_getcrl(&c, d.key, d.self, X509_get0_serialNumber(r.cert), &g), 0);
	assert_int_equal(g.pki_status, SC_STATUS_SUCCESS);
	assert_non_null(g.crl);
	assert_int_equal(X509_CRL_verify(g.crl, f->cakey), 1);
	assert_int_equal(X509_CRL_get0_by_serial(g.crl, &rv, X509_get0_serialNumber(r.cert)), 1);
	sc_reply_free(&g);
	ASN1_INTEGER_free(bogus);
	sc_reply_free(&r);
	device_free(&d);
	sc_client_free(&c);
}

static void
test_renewal(void **state)
{
	struct fx *f = *state;
	struct sc_client c, dy, l;
	struct sc_reply r, n;
	struct device d;
	EVP_PKEY *k2 = sc_key_rsa(2048);
	X509_REQ *csr2 = sc_csr(k2, "CN=dev-renew,O=Example", NULL, NULL), *other;
	char hex[CC_CA_SERIAL_HEX_MAX], err[256];

	client(f, &c, NULL);
	device(&d, "CN=dev-renew,O=Example", "s3cret-static");
	assert_int_equal(sc_pkcsreq(&c, d.key, d.self, d.csr, NULL, &r), 0);
	assert_int_equal(r.pki_status, SC_STATUS_SUCCESS);

	/* RenewalReq with a new key, signed by the old certificate: no challenge needed */
	assert_int_equal(sc_renewalreq(&c, d.key, r.cert, csr2, NULL, &n), 0);
	assert_int_equal(n.pki_status, SC_STATUS_SUCCESS);
	assert_non_null(n.certs);
	assert_int_equal(sk_X509_num(n.certs), 1);
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(sk_X509_value(n.certs, 0)), k2), 1);
	sc_reply_free(&n);

	/* certmonger's way: a PKCSReq with the same key (so the same transactionID), signed by
	 * the certificate it renews: a new certificate; its retransmission gets that one again */
	{
		X509_REQ *same = sc_csr(d.key, "CN=dev-renew,O=Example", NULL, NULL);
		struct sc_reply n2;

		assert_int_equal(sc_pkcsreq(&c, d.key, r.cert, same, NULL, &n), 0);
		assert_int_equal(n.pki_status, SC_STATUS_SUCCESS);
		assert_non_null(n.cert);
		assert_int_not_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(n.cert),
		    X509_get0_serialNumber(r.cert)), 0);
		assert_int_equal(sc_pkcsreq(&c, d.key, r.cert, same, NULL, &n2), 0);
		assert_int_equal(n2.pki_status, SC_STATUS_SUCCESS);
		assert_int_equal(X509_cmp(n.cert, n2.cert), 0);
		sc_reply_free(&n2);
		sc_reply_free(&n);
		X509_REQ_free(same);
	}

	/* for another subject */
	other = sc_csr(k2, "CN=someone-else,O=Example", NULL, NULL);
	assert_int_equal(sc_renewalreq(&c, d.key, r.cert, other, "renew-other", &n), 0);
	assert_failure(&n, SC_FAIL_BADREQUEST, "not for the subject");
	sc_reply_free(&n);
	X509_REQ_free(other);

	/* outside the renewal window (dynamic profile: last 10 days of a 365-day certificate) */
	client(f, &dy, "dynamic");
	assert_int_equal(sc_renewalreq(&dy, d.key, r.cert, csr2, "renew-window", &n), 0);
	/* the old certificate has 30 days (devices profile): outside a 10-day window */
	assert_failure(&n, SC_FAIL_BADREQUEST, "last 10 days");
	sc_reply_free(&n);

	/* renewal disabled */
	client(f, &l, "legacy");
	assert_int_equal(sc_renewalreq(&l, d.key, r.cert, csr2, "renew-legacy", &n), 0);
	assert_failure(&n, SC_FAIL_BADREQUEST, "renewal is not enabled");
	sc_reply_free(&n);

	/* a self-signed signer is no renewal */
	assert_int_equal(sc_renewalreq(&c, d.key, d.self, csr2, "renew-self", &n), 0);
	assert_failure(&n, SC_FAIL_BADCERTID, "signed by a certificate of this CA");
	sc_reply_free(&n);

	/* a revoked signer */
	assert_int_equal(cc_ca_serial_hex(X509_get0_serialNumber(r.cert), hex), 0);
	assert_int_equal(cc_ca_revoke(f->ca, hex, 4, err, sizeof(err)), 0);
	assert_int_equal(sc_renewalreq(&c, d.key, r.cert, csr2, "renew-revoked", &n), 0);
	assert_failure(&n, SC_FAIL_BADCERTID, "revoked");
	sc_reply_free(&n);

	sc_reply_free(&r);
	X509_REQ_free(csr2);
	EVP_PKEY_free(k2);
	device_free(&d);
	sc_client_free(&c);
	sc_client_free(&dy);
	sc_client_free(&l);
}

static void
test_variants(void **state)
{
	struct fx *f = *state;
	struct sc_client c;
	struct sc_reply r;
	struct device d;
	static const char *const mds[] = { "SHA1", "SHA512", "SHA256" };

	/* OAEP key transport, AES-128, SHA-1 and SHA-512 signer digests; two RA keys with 3DES */
	client(f, &c, NULL);
	c.oaep = true;
	c.cipher = "AES-128-CBC";
	for (size_t i = 0; i < 3; i++) {
		char subj[64];

		snprintf(subj, sizeof(subj), "CN=dev-variant-%zu", i);
		c.md = mds[i];
		device(&d, subj, "s3cret-static");
		assert_int_equal(sc_pkcsreq(&c, d.key, d.self, d.csr, NULL, &r), 0);
		if (r.pki_status != SC_STATUS_SUCCESS)
			fail_msg("%s: status %d %s", mds[i], r.pki_status, r.fail_text);
		assert_non_null(r.cert);
		sc_reply_free(&r);
		device_free(&d);
	}
	sc_client_free(&c);
	client(f, &c, "legacy");
	c.cipher = "DES-EDE3-CBC";
	device(&d, "CN=dev-legacy", NULL);
	assert_int_equal(sc_pkcsreq(&c, d.key, d.self, d.csr, NULL, &r), 0);
	assert_int_equal(r.pki_status, SC_STATUS_SUCCESS);
	assert_true(r.signature_ok);
	assert_non_null(r.cert);
	sc_reply_free(&r);
	device_free(&d);
	sc_client_free(&c);
}

/* ---- service mode with a test double ---- */

struct double_state {
	int validate_result;
	int notify_ok;
	int validations, notifications;
	char last_kind[64];
	char last_json[4096];
};

static int
dbl_validate(void *arg, const uint8_t *csr, size_t csr_len, const char *txid,
    const char *caller, char *code, size_t codelen, char *why, size_t whylen)
{
	struct double_state *d = arg;
	const unsigned char *p = csr;
	X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)csr_len);

	assert_non_null(req);
	X509_REQ_free(req);
	assert_non_null(strstr(caller, "profile=service"));
	assert_true(strlen(txid) > 0);
	d->validations++;
	if (d->validate_result != SCEP_VERIFY_OK) {
		snprintf(code, codelen, "ChallengeExpired");
		snprintf(why, whylen, "the challenge has expired");
	}
	return d->validate_result;
}

static int
dbl_notify(void *arg, const char *kind, const char *json, char *why, size_t whylen)
{
	struct double_state *d = arg;

	d->notifications++;
	snprintf(d->last_kind, sizeof(d->last_kind), "%s", kind);
	snprintf(d->last_json, sizeof(d->last_json), "%s", json);
	if (!d->notify_ok) {
		snprintf(why, whylen, "service unreachable");
		return -1;
	}
	return 0;
}

static const struct scep_verify_ops dbl_ops = { dbl_validate, dbl_notify };

static size_t
outbox_files(struct fx *f)
{
	char cmd[256];
	FILE *p;
	size_t n = 0;

	snprintf(cmd, sizeof(cmd), "ls %s/outbox | grep -c json$", f->dir);
	p = popen(cmd, "r");
	if (fscanf(p, "%zu", &n) != 1)
		n = 0;
	pclose(p);
	return n;
}

static void
test_service_mode(void **state)
{
	struct fx *f = *state;
	struct double_state ds = { .validate_result = SCEP_VERIFY_OK, .notify_ok = 1 };
	struct sc_client c;
	struct sc_reply r;
	struct device d;
	char txid[65], err[256], outbox[128];
	struct scep_txn t;
	struct cc_ca_cert_info in;

	client(f, &c, "service");
	/* no service registered: refused */
	device(&d, "CN=dev-svc0", "from-intune");
	assert_int_equal(sc_pkcsreq(&c, d.key, d.self, d.csr, NULL, &r), 0);
	assert_failure(&r, SC_FAIL_BADREQUEST, "ServiceUnavailable");
	sc_reply_free(&r);
	device_free(&d);

	scep_verify_set(&dbl_ops, &ds);
	/* validated and notified: SUCCESS, the notification names the certificate */
	device(&d, "CN=dev-svc1", "from-intune");
	assert_int_equal(sc_pkcsreq(&c, d.key, d.self, d.csr, NULL, &r), 0);
	assert_int_equal(r.pki_status, SC_STATUS_SUCCESS);
	assert_int_equal(ds.validations, 1);
	assert_int_equal(ds.notifications, 1);
	assert_string_equal(ds.last_kind, "successNotification");
	assert_non_null(strstr(ds.last_json, "\"certificateThumbprint\":"));
	assert_non_null(strstr(ds.last_json, "\"certificateSerialNumber\":"));
	assert_int_equal(outbox_files(f), 0);
	sc_txid(d.key, txid);
	assert_int_equal(ev_count(CC_EV_SCEP_NOTIFY_SUCCESS, txid), 1);
	assert_int_equal(ev_count(CC_EV_SCEP_REQUEST_SUCCESS, txid), 1);
	sc_reply_free(&r);
	device_free(&d);

	/* denied: FAILURE, nothing issued, no notification */
	ds.validate_result = SCEP_VERIFY_DENIED;
	device(&d, "CN=dev-svc2", "expired");
	assert_int_equal(sc_pkcsreq(&c, d.key, d.self, d.csr, NULL, &r), 0);
	assert_failure(&r, SC_FAIL_BADREQUEST, "ChallengeExpired");
	assert_int_equal(ds.notifications, 1);
	sc_txid(d.key, txid);
	assert_int_equal(ev_count(CC_EV_SCEP_VERIFY_FAILURE, txid), 1);
	assert_int_equal(ev_count(CC_EV_SCEP_REQUEST_ISSUED_FAILURE, txid), 1);
	assert_int_equal(ev_count(CC_EV_SCEP_ISSUED_SUCCESS, txid), 0);
	sc_reply_free(&r);
	device_free(&d);

	/* the success notification fails: PENDING, the certificate withheld, the outbox keeps
	 * the notification; once the service takes it, the poll gets the certificate */
	ds.validate_result = SCEP_VERIFY_OK;
	ds.notify_ok = 0;
	device(&d, "CN=dev-svc3", "from-intune");
	sc_txid(d.key, txid);
	assert_int_equal(sc_pkcsreq(&c, d.key, d.self, d.csr, NULL, &r), 0);
	assert_int_equal(r.pki_status, SC_STATUS_PENDING);
	assert_null(r.cert);
	sc_reply_free(&r);
	assert_int_equal(outbox_files(f), 1);
	assert_int_equal(ev_count(CC_EV_SCEP_ISSUED_SUCCESS, txid), 1);
	assert_int_equal(ev_count(CC_EV_SCEP_NOTIFY_ATTEMPT_FAILED, txid), 1);
	assert_int_equal(ev_count(CC_EV_SCEP_REQUEST_UPLOAD_FAILURE, txid), 1);
	assert_int_equal(ev_count(CC_EV_SCEP_REQUEST_SUCCESS, txid), 0);
	assert_int_equal(scep_txn_get(f->ca, "service", txid, &t, err, sizeof(err)), 1);
	assert_int_equal(t.state, SCEP_TXN_NOTIFYING);
	free(t.csr);
	assert_int_equal(cc_ca_find(f->ca, t.serial, &in, NULL, err, sizeof(err)), 1);
	assert_int_equal(in.state, CC_CA_CERT_WITHHELD);
	/* GetCert does not hand it out either */
	{
		ASN1_INTEGER *sn = NULL;
		BIGNUM *bn = NULL;
		BN_hex2bn(&bn, t.serial);
		sn = BN_to_ASN1_INTEGER(bn, NULL);
		assert_int_equal(sc_getcert(&c, d.key, d.self, sn, &r), 0);
		assert_failure(&r, SC_FAIL_BADCERTID, NULL);
		sc_reply_free(&r);
		ASN1_INTEGER_free(sn);
		BN_free(bn);
	}
	assert_int_equal(sc_certpoll(&c, d.key, d.self, X509_REQ_get_subject_name(d.csr), NULL,
	    &r), 0);
	assert_int_equal(r.pki_status, SC_STATUS_PENDING);
	sc_reply_free(&r);
	/* a restart keeps the outbox: the new server resends it */
	scep_server_free(f->srv);
	assert_int_equal(start_server(f), 0);
	ds.notify_ok = 1;
	scep_server_tick(f->srv, time(NULL));
	assert_int_equal(outbox_files(f), 0);
	assert_string_equal(ds.last_kind, "successNotification");
	assert_int_equal(ev_count(CC_EV_SCEP_NOTIFY_SUCCESS, txid), 1);
	assert_int_equal(ev_count(CC_EV_SCEP_REQUEST_SUCCESS, txid), 1);
	assert_int_equal(sc_certpoll(&c, d.key, d.self, X509_REQ_get_subject_name(d.csr), NULL,
	    &r), 0);
	assert_int_equal(r.pki_status, SC_STATUS_SUCCESS);
	assert_non_null(r.cert);
	sc_reply_free(&r);
	device_free(&d);

	/* the outbox cannot be written: FAILURE, and the certificate is revoked */
	snprintf(outbox, sizeof(outbox), "%s/outbox", f->dir);
	scep_server_free(f->srv);
	test_rmtree(outbox);
	assert_int_equal(start_server(f), 0);
	test_rmtree(outbox);
	{
		FILE *blk = fopen(outbox, "w");
		fclose(blk);
	}
	device(&d, "CN=dev-svc4", "from-intune");
	sc_txid(d.key, txid);
	assert_int_equal(sc_pkcsreq(&c, d.key, d.self, d.csr, NULL, &r), 0);
	assert_failure(&r, SC_FAIL_BADREQUEST, "cannot be completed");
	sc_reply_free(&r);
	assert_int_equal(ev_count(CC_EV_SCEP_NOTIFY_SAVE_TO_DISK_FAILED, txid), 1);
	assert_int_equal(ev_count(CC_EV_SCEP_REQUEST_UPLOAD_FAILURE, txid), 1);
	assert_int_equal(scep_txn_get(f->ca, "service", txid, &t, err, sizeof(err)), 1);
	assert_int_equal(t.state, SCEP_TXN_FAILED);
	free(t.csr);
	assert_int_equal(cc_ca_find(f->ca, t.serial, &in, NULL, err, sizeof(err)), 1);
	assert_int_equal(in.state, CC_CA_CERT_REVOKED);
	unlink(outbox);
	device_free(&d);
	scep_verify_set(NULL, NULL);
	sc_client_free(&c);
}

static void
test_policy_refusal_and_next_ca(void **state)
{
	struct fx *f = *state;
	struct sc_client c;
	struct sc_reply r;
	struct device d;
	EVP_PKEY *k = sc_key_ec("P-256");
	X509 *next;

	/* a key the profile does not allow: FAILURE, event 4007 */
	client(f, &c, NULL);
	d.key = sc_key_rsa(1024);
	d.self = sc_selfsigned(d.key, "CN=small-key", 1);
	d.csr = sc_csr(d.key, "CN=small-key", "s3cret-static", NULL);
	assert_int_equal(sc_pkcsreq(&c, d.key, d.self, d.csr, NULL, &r), 0);
	assert_failure(&r, SC_FAIL_BADREQUEST, "at least 2048 bits");
	sc_reply_free(&r);
	{
		char txid[65];
		sc_txid(d.key, txid);
		assert_int_equal(ev_count(CC_EV_SCEP_ISSUED_FAILURE, txid), 1);
		assert_int_equal(ev_count(CC_EV_SCEP_REQUEST_ISSUED_FAILURE, txid), 1);
	}
	device_free(&d);
	sc_client_free(&c);

	/* no next CA: not offered, and 404 */
	client(f, &c, NULL);
	assert_int_equal(sc_get_caps(&c), 0);
	assert_null(strstr(c.caps, "GetNextCACert"));
	assert_int_equal(sc_get_next_ca_cert(&c, &r), 0);
	assert_int_equal(r.http_status, 404);
	assert_null(r.certs);
	sc_reply_free(&r);
	sc_client_free(&c);

	/* GetNextCACert: offered in GetCACaps once there is a next CA, signed by the RA */
	next = make_ca_cert(k);
	next_ca = sk_X509_new_null();
	sk_X509_push(next_ca, next);
	scep_server_free(f->srv);
	assert_int_equal(start_server(f), 0);
	client(f, &c, NULL);
	assert_int_equal(sc_get_caps(&c), 0);
	assert_non_null(strstr(c.caps, "GetNextCACert\n"));
	assert_int_equal(sc_get_next_ca_cert(&c, &r), 0);
	assert_int_equal(r.http_status, 200);
	assert_string_equal(r.content_type, "application/x-x509-next-ca-cert");
	assert_true(r.signature_ok);
	assert_non_null(r.certs);
	assert_int_equal(X509_cmp(sk_X509_value(r.certs, 0), next), 0);
	sc_reply_free(&r);
	sc_client_free(&c);
	/* a two-key profile's reply is signed by its own signing RA certificate, the one its
	 * clients know (the client checks the signer is c.ra_sign) */
	client(f, &c, "legacy");
	assert_int_equal(sc_get_caps(&c), 0);
	assert_non_null(strstr(c.caps, "GetNextCACert\n"));
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(c.ra_sign), f->ra_sign), 1);
	assert_int_equal(sc_get_next_ca_cert(&c, &r), 0);
	assert_int_equal(r.http_status, 200);
	assert_true(r.signature_ok);
	assert_int_equal(sk_X509_num(r.certs), 1);
	assert_int_equal(X509_cmp(sk_X509_value(r.certs, 0), next), 0);
	sc_reply_free(&r);
	sc_client_free(&c);
	sk_X509_pop_free(next_ca, X509_free);
	next_ca = NULL;
	EVP_PKEY_free(k);
}

/*
 * The SUCCESS CertRep's cipher: the strongest in the requester's SMIMECapabilities (signed
 * attribute or the PKCS#10's extensionRequest) that the profile accepts, else the request's
 * own; malformed lists change nothing. The client reports the envelope's algorithm.
 */
static void
enroll_cipher(struct fx *f, const char *profile, const char *cipher, const char *attr_caps,
    const uint8_t *raw_attr, size_t raw_len, const uint8_t *csr_caps, size_t csr_len,
    const char *want)
{
	static int n;
	struct sc_client c;
	struct sc_reply r;
	struct sc_req q;
	struct device d;
	char subj[64];
	uint8_t *der;
	size_t len;

	client(f, &c, profile);
	c.cipher = cipher;
	c.smime_caps = attr_caps;
	snprintf(subj, sizeof(subj), "CN=dev-cipher-%d", n++);
	d.key = sc_key_rsa(2048);
	d.self = sc_selfsigned(d.key, subj, 1);
	d.csr = sc_csr_ex(d.key, subj, profile == NULL ? "s3cret-static" : NULL, NULL, csr_caps,
	    csr_len);
	assert_non_null(d.csr);
	assert_int_equal(sc_csr_der(d.csr, &der, &len), 0);
	sc_req_pkcsreq(&q, d.key, d.self, der, len);
	q.smime_caps_der = raw_attr;
	q.smime_caps_der_len = raw_len;
	assert_int_equal(sc_pkioperation(&c, &q, &r), 0);
	if (r.pki_status != SC_STATUS_SUCCESS || r.cert == NULL)
		fail_msg("%s: status %d %s", subj, r.pki_status, r.fail_text);
	if (strcmp(r.reply_cipher, want) != 0)
		fail_msg("%s (request %s, caps %s): reply %s, want %s", subj, cipher,
		    attr_caps ? attr_caps : "-", r.reply_cipher, want);
	assert_true(r.signature_ok);
	assert_int_equal(verify_chain(f->cacert, r.cert), 1);
	sc_reply_free(&r);
	free(der);
	device_free(&d);
	sc_client_free(&c);
}

static void
test_reply_cipher(void **state)
{
	struct fx *f = *state;
	const uint8_t *junk = (const uint8_t *)"\x30\x03\x02\x01\x05"; /* SEQUENCE { INTEGER } */
	uint8_t *aes192, *aes256, *des3;
	size_t l192, l256, l3;

	assert_int_equal(sc_smimecaps_der("AES-192-CBC,AES-128-CBC", &aes192, &l192), 0);
	assert_int_equal(sc_smimecaps_der("AES-256-CBC", &aes256, &l256), 0);
	assert_int_equal(sc_smimecaps_der("DES-EDE3-CBC", &des3, &l3), 0);
	/* nothing advertised: the request's own */
	enroll_cipher(f, NULL, "AES-128-CBC", NULL, NULL, 0, NULL, 0, "AES-128-CBC");
	/* the signed attribute */
	enroll_cipher(f, NULL, "AES-128-CBC", "AES-256-CBC,AES-128-CBC", NULL, 0, NULL, 0,
	    "AES-256-CBC");
	/* the PKCS#10's extensionRequest (Windows) */
	enroll_cipher(f, NULL, "AES-128-CBC", NULL, NULL, 0, aes192, l192, "AES-192-CBC");
	/* both: the strongest of either */
	enroll_cipher(f, NULL, "AES-128-CBC", "AES-192-CBC", NULL, 0, aes256, l256,
	    "AES-256-CBC");
	/* never weaker than the request */
	enroll_cipher(f, NULL, "AES-256-CBC", "AES-128-CBC", NULL, 0, NULL, 0, "AES-256-CBC");
	/* malformed lists are ignored, the enrollment goes through */
	enroll_cipher(f, NULL, "AES-128-CBC", NULL, junk, 5, NULL, 0, "AES-128-CBC");
	enroll_cipher(f, NULL, "AES-128-CBC", NULL, NULL, 0, junk, 5, "AES-128-CBC");
	enroll_cipher(f, NULL, "AES-128-CBC", NULL, junk, 5, aes256, l256, "AES-256-CBC");
	/* 3DES: not for a profile without des3 (and not over AES); for one with it, when it
	 * is all the requester has */
	enroll_cipher(f, NULL, "AES-128-CBC", "DES-EDE3-CBC", NULL, 0, NULL, 0, "AES-128-CBC");
	enroll_cipher(f, "legacy", "DES-EDE3-CBC", "DES-EDE3-CBC,RC2-CBC", NULL, 0, NULL, 0,
	    "DES-EDE3-CBC");
	enroll_cipher(f, "legacy", "DES-EDE3-CBC", "DES-EDE3-CBC,AES-256-CBC", NULL, 0, NULL, 0,
	    "AES-256-CBC");
	enroll_cipher(f, "legacy", "DES-EDE3-CBC", NULL, NULL, 0, des3, l3, "DES-EDE3-CBC");
	free(aes192);
	free(aes256);
	free(des3);

	/* a CertPoll: the polled request's capabilities count */
	{
		struct sc_client c;
		struct sc_reply r;
		struct device d;
		char txid[65], err[256];

		assert_int_equal(sc_smimecaps_der("AES-256-CBC", &aes256, &l256), 0);
		client(f, &c, "manual");
		c.cipher = "AES-128-CBC";
		d.key = sc_key_rsa(2048);
		d.self = sc_selfsigned(d.key, "CN=dev-cipher-poll", 1);
		d.csr = sc_csr_ex(d.key, "CN=dev-cipher-poll", NULL, NULL, aes256, l256);
		sc_txid(d.key, txid);
		assert_int_equal(sc_pkcsreq(&c, d.key, d.self, d.csr, NULL, &r), 0);
		assert_int_equal(r.pki_status, SC_STATUS_PENDING);
		sc_reply_free(&r);
		assert_int_equal(scep_txn_move(f->ca, "manual", txid, SCEP_TXN_PENDING,
		    SCEP_TXN_APPROVED, NULL, NULL, err, sizeof(err)), 1);
		assert_int_equal(sc_certpoll(&c, d.key, d.self, X509_REQ_get_subject_name(d.csr),
		    NULL, &r), 0);
		assert_int_equal(r.pki_status, SC_STATUS_SUCCESS);
		assert_string_equal(r.reply_cipher, "AES-256-CBC");
		/* GetCert has no PKCS#10 to look at: its own attribute, else its cipher */
		{
			struct sc_reply g;

			assert_int_equal(sc_getcert(&c, d.key, d.self, X509_get0_serialNumber(r.cert),
			    &g), 0);
			assert_int_equal(g.pki_status, SC_STATUS_SUCCESS);
			assert_string_equal(g.reply_cipher, "AES-128-CBC");
			sc_reply_free(&g);
			c.smime_caps = "AES-192-CBC";
			assert_int_equal(sc_getcert(&c, d.key, d.self, X509_get0_serialNumber(r.cert),
			    &g), 0);
			assert_int_equal(g.pki_status, SC_STATUS_SUCCESS);
			assert_string_equal(g.reply_cipher, "AES-192-CBC");
			assert_int_equal(X509_cmp(g.cert, r.cert), 0);
			sc_reply_free(&g);
		}
		sc_reply_free(&r);
		free(aes256);
		device_free(&d);
		sc_client_free(&c);
	}
}

static void
test_base64(void **state)
{
	uint8_t *out = NULL;
	size_t len = 0;

	(void)state;
	/* "+" turned into " " by URL decoding, and line breaks, are tolerated */
	assert_int_equal(scep_base64_decode("+/8=\n", 5, &out, &len, 100), 0);
	assert_int_equal(len, 2);
	assert_int_equal(out[0], 0xfb);
	assert_int_equal(out[1], 0xff);
	free(out);
	assert_int_equal(scep_base64_decode(" /8=", 4, &out, &len, 100), 0);
	assert_int_equal(out[0], 0xfb);
	free(out);
	assert_int_equal(scep_base64_decode("+/8", 3, &out, &len, 100), -1);
	assert_int_equal(scep_base64_decode("+/8*", 4, &out, &len, 100), -1);
	assert_int_equal(scep_base64_decode("AAAAAAAA", 8, &out, &len, 5), -1);
	assert_int_equal(scep_base64_decode("", 0, &out, &len, 5), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_caps_and_cacert, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ra_cert_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_http_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pkcsreq_static, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_messages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_challenges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_manual_approval_poll, setup, teardown),
		cmocka_unit_test_setup_teardown(test_getcert_getcrl, setup, teardown),
		cmocka_unit_test_setup_teardown(test_renewal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_variants, setup, teardown),
		cmocka_unit_test_setup_teardown(test_service_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_policy_refusal_and_next_ca, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reply_cipher, setup, teardown),
		cmocka_unit_test(test_base64),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
