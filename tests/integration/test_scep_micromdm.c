/*
 * The test suite's SCEP client (tests/lib/scep_client) against micromdm/scep's server, a SCEP
 * implementation nobody here wrote: Debian's golang-github-micromdm-scep-dev 2.1.0, built from
 * tests/peers/micromdm (its example server, CSR signer behind a mutex) and run on loopback
 * with a file-depot CA and a static challenge (tests/lib/micromdm_peer).
 *
 * GetCACaps, GetCACert (one DER certificate: the CA is its own RA), PKCSReq by POST and by
 * GET, with SHA-1/SHA-256 signer digests and AES-128/AES-256/3DES envelopes; the issued
 * certificates verify against micromdm's CA with OpenSSL (X509_verify_cert and `openssl
 * verify`). Also what micromdm does differently, so that docs/scep.md's list of quirks stays
 * true: it answers with a single-DES envelope whatever the request used (the client refuses
 * that unless told to accept it), echoes the request's senderNonce as its own, re-orders the
 * subject's attributes (Go's pkix.Name order: "CN=a,O=b" is issued as "O=b,CN=a"), refuses a
 * second certificate for the same subject, answers a wrong challenge with FAILURE
 * badRequest, and does not implement CertPoll/GetCert/GetCRL/GetNextCACert (HTTP 500, no
 * CertRep). Concurrent enrollments get distinct serials (the reason for the mutex).
 */
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
#include <sys/stat.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "micromdm_peer.h"
#include "scep_client.h"
#include "test_token.h"

static char T[64];
static struct mm_peer P;

struct device {
	EVP_PKEY *key;
	X509 *self;
	X509_REQ *csr;
};

static void
device(struct device *d, const char *subject, const char *challenge)
{
	d->key = sc_key_rsa(2048);
	assert_non_null(d->key);
	d->self = sc_selfsigned(d->key, subject, 1);
	d->csr = sc_csr(d->key, subject, challenge, NULL);
	assert_non_null(d->self);
	assert_non_null(d->csr);
}

static void
device_free(struct device *d)
{
	EVP_PKEY_free(d->key);
	X509_free(d->self);
	X509_REQ_free(d->csr);
}

static void
client(struct sc_client *c)
{
	sc_client_init(c, P.url);
	c->accept_des_reply = true;
	assert_int_equal(sc_get_ca_cert(c), 0);
}

/* X509_verify_cert against micromdm's CA alone, for a TLS client certificate. */
static int
verifies(X509 *x)
{
	X509_STORE *st = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int r = 0;

	if (st != NULL && ctx != NULL && X509_STORE_add_cert(st, P.ca) == 1 &&
	    X509_STORE_CTX_init(ctx, st, x, NULL) == 1 &&
	    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT) == 1)
		r = X509_verify_cert(ctx) == 1;
	if (!r && ctx != NULL)
		fprintf(stderr, "verify: %s\n",
		    X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	return r;
}

/* The same with the openssl command, from a PEM file. */
static int
openssl_verifies(X509 *x, const char *name)
{
	char path[128], cmd[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.pem", T, name);
	f = fopen(path, "w");
	if (f == NULL || PEM_write_X509(f, x) != 1) {
		if (f != NULL)
			fclose(f);
		return 0;
	}
	fclose(f);
	snprintf(cmd, sizeof(cmd), "openssl verify -purpose sslclient -CAfile %s %s "
	    ">>%s/openssl.log 2>&1", P.ca_pem, path, T);
	return system(cmd) == 0;
}

/* One PKCSReq with the client's settings; asserts SUCCESS and checks the certificate. */
static void
enroll_ok(struct sc_client *c, const char *subject, const char *issued_subject,
    const char *name)
{
	struct device d;
	struct sc_reply r;
	struct sc_req q;
	uint8_t *der = NULL;
	size_t len = 0;

	device(&d, subject, P.challenge);
	assert_int_equal(sc_csr_der(d.csr, &der, &len), 0);
	sc_req_pkcsreq(&q, d.key, d.self, der, len);
	assert_int_equal(sc_pkioperation(c, &q, &r), 0);
	if (r.http_status != 200 || !r.certrep || r.pki_status != SC_STATUS_SUCCESS)
		fail_msg("%s: HTTP %ld certrep %d status %d failInfo %d", subject, r.http_status,
		    r.certrep, r.pki_status, r.fail_info);
	assert_true(r.signature_ok);               /* signed by the CA, its RA */
	assert_int_equal(r.message_type, SC_MSG_CERTREP);
	assert_int_equal(r.recipient_nonce_len, 16);
	assert_memory_equal(r.recipient_nonce, q.nonce_used, 16);
	assert_non_null(r.cert);
	{
		/* Go re-encodes the subject in its own order (C, O, OU, L, ST, ..., CN) */
		char *got = X509_NAME_oneline(X509_get_subject_name(r.cert), NULL, 0);

		assert_non_null(got);
		assert_string_equal(got, issued_subject);
		OPENSSL_free(got);
	}
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(r.cert), d.key), 1);
	assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(r.cert),
	    X509_get_subject_name(P.ca)), 0);
	assert_true(verifies(r.cert));
	assert_true(openssl_verifies(r.cert, name));
	sc_reply_free(&r);
	free(der);
	device_free(&d);
}

static int
setup(void **state)
{
	(void)state;
	snprintf(T, sizeof(T), "/tmp/certconn-micromdm.XXXXXX");
	if (mkdtemp(T) == NULL)
		return -1;
	if (mm_peer_start(&P, T, 2048) == -1)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	mm_peer_stop(&P);
	if (getenv("KEEP") == NULL)
		test_rmtree(T);
	return 0;
}

/* ---- tests ---- */

static void
test_caps_and_ca_cert(void **state)
{
	struct sc_client c;
	struct sc_reply r;
	char url[400];

	(void)state;
	sc_client_init(&c, P.url);
	assert_int_equal(sc_get_caps(&c), 0);
	/* micromdm's fixed list: no SHA-512, DES3 offered, no GetNextCACert */
	assert_string_equal(c.caps, "Renewal\nSHA-1\nSHA-256\nAES\nDES3\nSCEPStandard\n"
	    "POSTPKIOperation");

	/* one DER certificate (application/x-x509-ca-cert): the CA, which is its own RA */
	snprintf(url, sizeof(url), "%s?operation=GetCACert", P.url);
	assert_int_equal(sc_http(url, NULL, 0, 10, &r), 0);
	assert_int_equal(r.http_status, 200);
	assert_string_equal(r.content_type, "application/x-x509-ca-cert");
	sc_reply_free(&r);
	assert_int_equal(sc_get_ca_cert(&c), 0);
	assert_int_equal(sk_X509_num(c.ca_certs), 1);
	assert_int_equal(X509_cmp(c.ca, P.ca), 0);
	assert_int_equal(X509_cmp(c.ra_sign, P.ca), 0);
	assert_int_equal(X509_cmp(c.ra_enc, P.ca), 0);
	sc_client_free(&c);
}

static void
test_enroll(void **state)
{
	struct sc_client c;

	(void)state;
	client(&c);
	/* the defaults: POST, AES-256-CBC envelope, SHA-256 */
	enroll_ok(&c, "CN=mm-post,O=certconn", "/O=certconn/CN=mm-post", "post");
	/* GET with SHA-1 and AES-128 */
	c.use_get = true;
	c.md = "SHA1";
	c.cipher = "AES-128-CBC";
	enroll_ok(&c, "CN=mm-get-sha1", "/CN=mm-get-sha1", "get");
	/* POST with 3DES (micromdm offers DES3) */
	c.use_get = false;
	c.md = "SHA256";
	c.cipher = "DES-EDE3-CBC";
	enroll_ok(&c, "CN=mm-3des", "/CN=mm-3des", "3des");
	sc_client_free(&c);
}

static void
test_quirks(void **state)
{
	struct sc_client c;
	struct sc_reply r;
	struct device d, same, wrong;
	struct sc_req q;
	uint8_t *der = NULL;
	size_t len = 0;

	(void)state;
	client(&c);
	device(&d, "CN=mm-quirks", P.challenge);
	assert_int_equal(sc_csr_der(d.csr, &der, &len), 0);
	sc_req_pkcsreq(&q, d.key, d.self, der, len);

	/* The reply's envelope is single DES although we sent AES-256 and AES is in the caps;
	 * a client that does not accept DES gets no certificate out of it. */
	c.accept_des_reply = false;
	assert_int_equal(sc_pkioperation(&c, &q, &r), 0);
	assert_int_equal(r.pki_status, SC_STATUS_SUCCESS);
	assert_true(r.signature_ok);
	assert_string_equal(r.reply_cipher, "DES-CBC");
	assert_null(r.cert);
	/* its senderNonce is ours echoed, not a fresh one */
	assert_memory_equal(r.sender_nonce, q.nonce_used, 16);
	sc_reply_free(&r);
	c.accept_des_reply = true;

	/* The same subject again (a new key): refused while the first certificate is valid
	 * for more than the renewal window (14 days). */
	device(&same, "CN=mm-quirks", P.challenge);
	assert_int_equal(sc_pkcsreq(&c, same.key, same.self, same.csr, NULL, &r), 0);
	assert_int_equal(r.pki_status, SC_STATUS_FAILURE);
	assert_true(r.signature_ok);
	assert_int_equal(r.fail_info, SC_FAIL_BADREQUEST);
	sc_reply_free(&r);

	/* A wrong challenge: FAILURE badRequest, no failInfoText. */
	device(&wrong, "CN=mm-wrong", "not-the-challenge");
	assert_int_equal(sc_pkcsreq(&c, wrong.key, wrong.self, wrong.csr, NULL, &r), 0);
	assert_int_equal(r.pki_status, SC_STATUS_FAILURE);
	assert_true(r.signature_ok);
	assert_int_equal(r.fail_info, SC_FAIL_BADREQUEST);
	assert_string_equal(r.fail_text, "");
	sc_reply_free(&r);

	/* CertPoll, GetCert, GetCRL, GetNextCACert: not implemented, HTTP 500, no CertRep. */
	assert_int_equal(sc_certpoll(&c, d.key, d.self, X509_REQ_get_subject_name(d.csr), NULL,
	    &r), 0);
	assert_int_equal(r.http_status, 500);
	assert_false(r.certrep);
	sc_reply_free(&r);
	assert_int_equal(sc_getcrl(&c, d.key, d.self, X509_get0_serialNumber(P.ca), &r), 0);
	assert_int_equal(r.http_status, 500);
	assert_false(r.certrep);
	sc_reply_free(&r);

	assert_int_equal(sc_get_next_ca_cert(&c, &r), 0);
	assert_int_equal(r.http_status, 500);
	assert_null(r.certs);
	sc_reply_free(&r);

	/* and it still serves */
	enroll_ok(&c, "CN=mm-after-quirks", "/CN=mm-after-quirks", "after");
	free(der);
	device_free(&d);
	device_free(&same);
	device_free(&wrong);
	sc_client_free(&c);
}

/* ---- concurrent enrollments: distinct serials, all valid ---- */

#define CONC_THREADS 4
#define CONC_EACH 4

struct conc {
	int thread;
	ASN1_INTEGER *serials[CONC_EACH];
	int ok;
};

static void *
conc_worker(void *arg)
{
	struct conc *w = arg;
	struct sc_client c;

	sc_client_init(&c, P.url);
	c.accept_des_reply = true;
	if (sc_get_ca_cert(&c) != 0)
		return NULL;
	for (int i = 0; i < CONC_EACH; i++) {
		struct device d;
		struct sc_reply r;
		char subj[64];

		snprintf(subj, sizeof(subj), "CN=mm-conc-%d-%d", w->thread, i);
		d.key = sc_key_rsa(2048);
		d.self = d.key != NULL ? sc_selfsigned(d.key, subj, 1) : NULL;
		d.csr = d.key != NULL ? sc_csr(d.key, subj, P.challenge, NULL) : NULL;
		if (d.csr != NULL && d.self != NULL &&
		    sc_pkcsreq(&c, d.key, d.self, d.csr, NULL, &r) == 0) {
			if (r.pki_status == SC_STATUS_SUCCESS && r.cert != NULL && verifies(r.cert)) {
				w->serials[i] = ASN1_INTEGER_dup(X509_get0_serialNumber(r.cert));
				w->ok++;
			}
			sc_reply_free(&r);
		}
		device_free(&d);
	}
	sc_client_free(&c);
	return NULL;
}

static void
test_concurrent(void **state)
{
	pthread_t th[CONC_THREADS];
	struct conc w[CONC_THREADS];

	(void)state;
	memset(w, 0, sizeof(w));
	for (int i = 0; i < CONC_THREADS; i++) {
		w[i].thread = i;
		assert_int_equal(pthread_create(&th[i], NULL, conc_worker, &w[i]), 0);
	}
	for (int i = 0; i < CONC_THREADS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < CONC_THREADS; i++)
		assert_int_equal(w[i].ok, CONC_EACH);
	for (int a = 0; a < CONC_THREADS * CONC_EACH; a++)
		for (int b = a + 1; b < CONC_THREADS * CONC_EACH; b++)
			assert_int_not_equal(ASN1_INTEGER_cmp(w[a / CONC_EACH].serials[a % CONC_EACH],
			    w[b / CONC_EACH].serials[b % CONC_EACH]), 0);
	for (int i = 0; i < CONC_THREADS; i++)
		for (int j = 0; j < CONC_EACH; j++)
			ASN1_INTEGER_free(w[i].serials[j]);
	/* the server is still the same process */
	assert_int_equal(kill(P.pid, 0), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_caps_and_ca_cert),
		cmocka_unit_test(test_enroll),
		cmocka_unit_test(test_quirks),
		cmocka_unit_test(test_concurrent),
	};
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
