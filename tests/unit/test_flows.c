/*
 * The flows' parts that run without a daemon (src/flows/): payload parsers and their
 * refusals, Intune error codes, the durable outbox and the CA idempotency records in a real
 * SQLite file (reopened to stand for a restart), the key pool's thread, the backoff, and
 * the revocation flow against a real local CA (src/ca) with its events captured.
 * The flows end to end (hub, keys, SoftHSM) are tests/integration's.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/pkcs12.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sqlite3.h>

#include "certconn/ca.h"
#include "certconn/config_flows.h"
#include "certconn/event.h"
#include "certconn/flows.h"
#include "certconn/issuance.h"
#include "flows_int.h"
#include "scep_client.h"
#include "test_token.h"

/* ---- helpers ---- */

static char *
b64_of(const uint8_t *d, size_t n)
{
	char *s = flows_b64_encode(d, n);

	assert_non_null(s);
	return s;
}

static char *
spki_b64(EVP_PKEY *k)
{
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(k, &der);
	char *s;

	assert_true(n > 0);
	s = b64_of(der, (size_t)n);
	OPENSSL_free(der);
	return s;
}

static char *
cert_b64(X509 *x)
{
	unsigned char *der = NULL;
	int n = i2d_X509(x, &der);
	char *s;

	assert_true(n > 0);
	s = b64_of(der, (size_t)n);
	OPENSSL_free(der);
	return s;
}

static EVP_PKEY *devkey;
static char *devpub;
static char *devcert;

static int
group_setup(void **state)
{
	X509 *x;

	(void)state;
	devkey = sc_key_rsa(2048);
	devpub = spki_b64(devkey);
	x = sc_selfsigned(devkey, "CN=device-1", 30);
	devcert = cert_b64(x);
	X509_free(x);
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(devkey);
	free(devpub);
	free(devcert);
	return 0;
}

/* Parses the JSON text (with %s standing for devpub) with the parser of kind. */
static int32_t
parse(enum flows_kind kind, const char *fmt, char *why, size_t whylen)
{
	char text[8192];
	cJSON *o;
	int32_t c;

	snprintf(text, sizeof(text), fmt, devpub);
	o = cJSON_Parse(text);
	if (o == NULL)
		fail_msg("test JSON does not parse: %s", text);
	switch (kind) {
	case FLOWS_PKCS: {
		struct flows_pkcs_req r;
		c = flows_parse_pkcs(o, &r, why, whylen);
		flows_pkcs_req_free(&r);
		break;
	}
	case FLOWS_RECRYPT: {
		struct flows_recrypt_req r;
		c = flows_parse_recrypt(o, &r, why, whylen);
		flows_recrypt_req_free(&r);
		break;
	}
	case FLOWS_IMPORT: {
		struct flows_import_req r;
		c = flows_parse_import(o, &r, why, whylen);
		flows_import_req_free(&r);
		break;
	}
	default: {
		struct flows_revoke_req r;
		c = flows_parse_revoke(o, &r, why, whylen);
		break;
	}
	}
	cJSON_Delete(o);
	return c;
}

static void
refused(enum flows_kind kind, const char *fmt, int32_t code, const char *want)
{
	char why[512] = "";
	int32_t c = parse(kind, fmt, why, sizeof(why));

	if (c != code || strstr(why, want) == NULL)
		fail_msg("payload %s: got %d \"%s\", want %d \"%s\"", fmt, (int)c, why, (int)code,
		    want);
}

/* ---- payloads ---- */

static void
pkcs_good(void **state)
{
	struct flows_pkcs_req r;
	char text[8192], why[256] = "";
	cJSON *o;

	(void)state;
	snprintf(text, sizeof(text), "{\"deviceId\": \"dev-1\", \"devicePublicKey\": \"%s\","
	    " \"profile\": \"devices\", \"keySpec\": \"ec-p256\", \"subject\": {\"cn\": \"alice\","
	    " \"o\": \"Contoso\", \"email\": \"alice@contoso.com\"}, \"subjectAltNames\": "
	    "[\"DNS:alice.contoso.com\", \"email:alice@contoso.com\", \"UPN:alice@contoso.com\"],"
	    " \"deviceName\": \"Alice's phone\", \"userPrincipalName\": \"alice@contoso.com\"}",
	    devpub);
	o = cJSON_Parse(text);
	assert_int_equal(flows_parse_pkcs(o, &r, why, sizeof(why)), FLOWS_OK);
	assert_string_equal(r.device_id, "dev-1");
	assert_string_equal(r.profile, "devices");
	assert_int_equal(r.keyspec, CC_FLOWS_EC_P256);
	assert_string_equal(r.subject[FLOWS_SUBJ_CN], "alice");
	assert_string_equal(r.subject[FLOWS_SUBJ_O], "Contoso");
	assert_string_equal(r.subject[FLOWS_SUBJ_EMAIL], "alice@contoso.com");
	assert_null(r.subject[FLOWS_SUBJ_OU]);
	assert_int_equal(r.nsan, 3);
	assert_string_equal(r.san[2], "UPN:alice@contoso.com");
	assert_string_equal(r.device_name, "Alice's phone");
	assert_false(r.device.is_cert);
	{
		/* The device key decodes to the key the test holds. */
		EVP_PKEY *k = flows_device_key(&r.device);
		assert_non_null(k);
		assert_int_equal(EVP_PKEY_eq(k, devkey), 1);
		EVP_PKEY_free(k);
	}
	flows_pkcs_req_free(&r);
	cJSON_Delete(o);

	/* The device's certificate instead of its key. */
	snprintf(text, sizeof(text), "{\"deviceId\": \"dev-1\", \"deviceCertificate\": \"%s\"}",
	    devcert);
	o = cJSON_Parse(text);
	assert_int_equal(flows_parse_pkcs(o, &r, why, sizeof(why)), FLOWS_OK);
	assert_true(r.device.is_cert);
	assert_int_equal(r.keyspec, -1);
	assert_string_equal(r.profile, "");
	{
		EVP_PKEY *k = flows_device_key(&r.device);
		assert_non_null(k);
		assert_int_equal(EVP_PKEY_eq(k, devkey), 1);
		EVP_PKEY_free(k);
	}
	flows_pkcs_req_free(&r);
	cJSON_Delete(o);
}

static void
pkcs_refusals(void **state)
{
	(void)state;
	refused(FLOWS_PKCS, "[1, 2]%s", FLOWS_E_PARAMETER, "payload: expected a JSON object");
	refused(FLOWS_PKCS, "{\"devicePublicKey\": \"%s\"}", FLOWS_E_PARAMETER,
	    "payload.deviceId: missing");
	refused(FLOWS_PKCS, "{\"deviceId\": 7, \"devicePublicKey\": \"%s\"}", FLOWS_E_PARAMETER,
	    "payload.deviceId: expected a string");
	refused(FLOWS_PKCS, "{\"deviceId\": \"\", \"devicePublicKey\": \"%s\"}",
	    FLOWS_E_PARAMETER, "payload.deviceId: expected 1 to 128 bytes");
	refused(FLOWS_PKCS, "{\"deviceId\": \"a b\", \"devicePublicKey\": \"%s\"}",
	    FLOWS_E_PARAMETER, "payload.deviceId: letters, digits");
	refused(FLOWS_PKCS, "{\"deviceId\": \"d\", \"devicePublicKey\": \"%s\", \"colour\": 1}",
	    FLOWS_E_PARAMETER, "payload.colour: unknown member");
	refused(FLOWS_PKCS, "{\"deviceId\": \"d\", \"devicePublicKey\": \"%s\", \"deviceId\": "
	    "\"e\"}", FLOWS_E_PARAMETER, "payload.deviceId: given twice");
	refused(FLOWS_PKCS, "{\"deviceId\": \"d\"}%s", FLOWS_E_PARAMETER,
	    "payload.devicePublicKey: missing (or payload.deviceCertificate)");
	refused(FLOWS_PKCS, "{\"deviceId\": \"d\", \"devicePublicKey\": \"%s\", "
	    "\"deviceCertificate\": \"AAAA\"}", FLOWS_E_PARAMETER, "give one, not both");
	refused(FLOWS_PKCS, "{\"deviceId\": \"d\", \"devicePublicKey\": \"not base64!\"}%s",
	    FLOWS_E_PARAMETER, "payload.devicePublicKey: not valid base64");
	refused(FLOWS_PKCS, "{\"deviceId\": \"d\", \"devicePublicKey\": \"AAAA\"}%s",
	    FLOWS_E_PARAMETER, "payload.devicePublicKey: not a DER SubjectPublicKeyInfo");
	refused(FLOWS_PKCS, "{\"deviceId\": \"d\", \"deviceCertificate\": \"MAMCAQA=\"}%s",
	    FLOWS_E_PARAMETER, "payload.deviceCertificate: not a DER certificate");
	refused(FLOWS_PKCS, "{\"deviceId\": \"d\", \"devicePublicKey\": \"%s\", \"keySpec\": "
	    "\"rsa-1024\"}", FLOWS_E_PARAMETER, "payload.keySpec: expected rsa-2048");
	refused(FLOWS_PKCS, "{\"deviceId\": \"d\", \"devicePublicKey\": \"%s\", \"subject\": "
	    "\"CN=x\"}", FLOWS_E_PARAMETER, "payload.subject: expected an object");
	refused(FLOWS_PKCS, "{\"deviceId\": \"d\", \"devicePublicKey\": \"%s\", \"subject\": "
	    "{\"title\": \"x\"}}", FLOWS_E_PARAMETER, "payload.subject.title: unknown attribute");
	refused(FLOWS_PKCS, "{\"deviceId\": \"d\", \"devicePublicKey\": \"%s\", \"subject\": "
	    "{\"c\": \"USA\"}}", FLOWS_E_PARAMETER, "payload.subject.c: expected a two-letter");
	refused(FLOWS_PKCS, "{\"deviceId\": \"d\", \"devicePublicKey\": \"%s\", \"subject\": "
	    "{\"cn\": \"a\\u0001b\"}}", FLOWS_E_PARAMETER, "payload.subject.cn: control character");
	refused(FLOWS_PKCS, "{\"deviceId\": \"d\", \"devicePublicKey\": \"%s\", "
	    "\"subjectAltNames\": [\"DNS:a\", \"RID:1.2.3\"]}", FLOWS_E_PARAMETER,
	    "payload.subjectAltNames[1]: expected DNS:, email:, URI:, IP: or UPN:");
	refused(FLOWS_PKCS, "{\"deviceId\": \"d\", \"devicePublicKey\": \"%s\", "
	    "\"subjectAltNames\": [\"DNS:\"]}", FLOWS_E_PARAMETER,
	    "payload.subjectAltNames[0]: expected DNS:");
	refused(FLOWS_PKCS, "{\"deviceId\": \"d\", \"devicePublicKey\": \"%s\", "
	    "\"subjectAltNames\": \"DNS:a\"}", FLOWS_E_PARAMETER,
	    "payload.subjectAltNames: expected an array");
	refused(FLOWS_PKCS, "{\"deviceId\": \"d\", \"devicePublicKey\": \"%s\", \"profile\": "
	    "\"a-profile-name-that-is-far-too-long\"}", FLOWS_E_PARAMETER,
	    "payload.profile: expected 1 to 31 bytes");
}

static void
other_payloads(void **state)
{
	struct flows_import_req im;
	struct flows_revoke_req rv;
	struct flows_recrypt_req rc;
	char text[8192], why[256] = "";
	cJSON *o;

	(void)state;
	snprintf(text, sizeof(text), "{\"deviceId\": \"d2\", \"encryptedPayload\": \"AAECAw==\","
	    " \"deviceCertificate\": \"%s\"}", devcert);
	o = cJSON_Parse(text);
	assert_int_equal(flows_parse_recrypt(o, &rc, why, sizeof(why)), FLOWS_OK);
	assert_int_equal(rc.payload_len, 4);
	assert_int_equal(rc.payload[3], 3);
	assert_true(rc.device.is_cert);
	flows_recrypt_req_free(&rc);
	cJSON_Delete(o);
	refused(FLOWS_RECRYPT, "{\"deviceId\": \"d\", \"devicePublicKey\": \"%s\"}",
	    FLOWS_E_PARAMETER, "payload.encryptedPayload: missing");
	refused(FLOWS_RECRYPT, "{\"deviceId\": \"d\", \"devicePublicKey\": \"%s\", "
	    "\"encryptedPayload\": \"AAEC=A==\"}", FLOWS_E_PARAMETER,
	    "payload.encryptedPayload: not valid base64");
	refused(FLOWS_RECRYPT, "{\"deviceId\": \"d\", \"devicePublicKey\": \"%s\", "
	    "\"encryptedPayload\": \"AAECAw==\", \"profile\": \"x\"}", FLOWS_E_PARAMETER,
	    "payload.profile: unknown member");

	snprintf(text, sizeof(text), "{\"pfx\": \"MIIB\", \"encryptedPassword\": \"AAAA\", "
	    "\"paddingScheme\": \"OaepSha384\", \"devicePublicKey\": \"%s\", \"keyName\": "
	    "\"pfx\", \"intendedPurpose\": \"smimeEncryption\", \"userPrincipalName\": "
	    "\"bob@contoso.com\"}", devpub);
	o = cJSON_Parse(text);
	assert_int_equal(flows_parse_import(o, &im, why, sizeof(why)), FLOWS_OK);
	assert_int_equal(im.md_bits, 384);
	assert_int_equal(im.pfx_len, 3);
	assert_int_equal(im.enc_password_len, 3);
	assert_string_equal(im.purpose, "smimeEncryption");
	assert_string_equal(im.key_name, "pfx");
	assert_string_equal(im.device_id, "");
	flows_import_req_free(&im);
	cJSON_Delete(o);
	refused(FLOWS_IMPORT, "{\"pfx\": \"MIIB\", \"encryptedPassword\": \"AAAA\", "
	    "\"paddingScheme\": \"Pkcs1\", \"devicePublicKey\": \"%s\"}", FLOWS_E_PARAMETER,
	    "payload.paddingScheme: expected OaepSha256, OaepSha384 or OaepSha512");
	refused(FLOWS_IMPORT, "{\"pfx\": \"MIIB\", \"paddingScheme\": \"OaepSha512\", "
	    "\"devicePublicKey\": \"%s\"}", FLOWS_E_PARAMETER,
	    "payload.encryptedPassword: missing");
	refused(FLOWS_IMPORT, "{\"pfx\": \"MIIB\", \"encryptedPassword\": \"AAAA\", "
	    "\"paddingScheme\": \"OaepSha512\", \"devicePublicKey\": \"%s\", "
	    "\"intendedPurpose\": \"everything\"}", FLOWS_E_PARAMETER,
	    "payload.intendedPurpose: expected unassigned");

	o = cJSON_Parse("{\"requestContext\": \"c1\", \"serialNumber\": \"0a:1B\", "
	    "\"issuerName\": \"CN=Test CA\", \"caConfiguration\": null, \"future\": 1}");
	assert_int_equal(flows_parse_revoke(o, &rv, why, sizeof(why)), FLOWS_OK);
	assert_string_equal(rv.serial, "A1B");
	assert_string_equal(rv.issuer, "CN=Test CA");
	assert_string_equal(rv.ca_config, "");
	cJSON_Delete(o);
	refused(FLOWS_REVOKE, "{\"requestContext\": \"c1\"}%s", FLOWS_E_PARAMETER,
	    "payload.serialNumber: missing");
	refused(FLOWS_REVOKE, "{\"serialNumber\": \"xyz\"}%s", FLOWS_E_PARAMETER,
	    "payload.serialNumber: expected a serial in hex");
	refused(FLOWS_REVOKE, "{\"serialNumber\": \"0A\", \"issuerName\": 5}%s",
	    FLOWS_E_PARAMETER, "payload.issuerName: expected null or a string");
}

static void
base64(void **state)
{
	uint8_t *d;
	size_t n;

	(void)state;
	assert_int_equal(flows_b64_decode("aGVsbG8=", 100, &d, &n), 0);
	assert_int_equal(n, 5);
	assert_memory_equal(d, "hello", 5);
	free(d);
	assert_int_equal(flows_b64_decode("aGVsbG8", 100, &d, &n), -1);   /* no padding */
	assert_int_equal(flows_b64_decode("aGVs\nbG8=", 100, &d, &n), -1); /* line break */
	assert_int_equal(flows_b64_decode("a=Vsb G8", 100, &d, &n), -1);
	assert_int_equal(flows_b64_decode("aGVsbG8=", 4, &d, &n), -1);   /* over max */
	assert_int_equal(flows_b64_decode("", 100, &d, &n), -1);
}

/* ---- codes ---- */

static void
codes(void **state)
{
	(void)state;
	assert_string_equal(flows_code_name(4002), "ParameterDataInvalidError");
	assert_string_equal(flows_code_name(4004), "CertificateNotFoundError");
	assert_string_equal(flows_code_name(4101), "ServiceUnavailableException");
	assert_string_equal(flows_code_name(0), "Success");
	assert_string_equal(flows_code_name(1234), "Unknown");
	assert_false(flows_code_retryable(4004));
	assert_false(flows_code_retryable(4007));
	assert_true(flows_code_retryable(4100));
	assert_true(flows_code_retryable(4103));
	assert_false(flows_code_retryable(0));
	assert_true(flows_upload_done("Recorded"));
	assert_true(flows_upload_done("AlreadyRecorded"));
	assert_true(flows_upload_done("AlreadyCompleted"));
	assert_true(flows_upload_done("Requeued"));
	assert_false(flows_upload_done("LeaseLost"));
	assert_true(flows_upload_final("LeaseLost"));
	assert_true(flows_upload_final("NotRecorded"));
	assert_false(flows_upload_final("Failed"));
	assert_false(flows_upload_final(NULL));
}

static void
backoff(void **state)
{
	(void)state;
	for (int i = 0; i < 200; i++) {
		uint32_t a = flows_backoff_ms(100, 1000, 1);
		uint32_t b = flows_backoff_ms(100, 1000, 3);
		uint32_t c = flows_backoff_ms(100, 1000, 30);

		assert_true(a >= 1 && a <= 100);
		assert_true(b >= 1 && b <= 400);
		assert_true(c >= 1 && c <= 1000);
	}
}

/* ---- store ---- */

struct collect {
	char ids[8][FLOWS_ID_MAX + 1];
	size_t n;
};

static void
collect_fn(void *arg, const struct flows_result *r)
{
	struct collect *c = arg;

	if (c->n < 8)
		snprintf(c->ids[c->n++], sizeof(c->ids[0]), "%s", r->request_id);
}

static void
outbox(void **state)
{
	char dir[64], db[128], err[256];
	struct flows_store *s;
	struct flows_result r, g;
	struct collect c = { 0 };

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_flows.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(db, sizeof(db), "%s/flows.db", dir);
	if (flows_store_open(db, &s, err, sizeof(err)) == -1)
		fail_msg("%s", err);
	memset(&r, 0, sizeof(r));
	snprintf(r.request_id, sizeof(r.request_id), "req-1");
	snprintf(r.feature, sizeof(r.feature), "pkcs");
	snprintf(r.correlation_id, sizeof(r.correlation_id), "corr-1");
	r.succeeded = true;
	r.result_json = strdup("{\"encryptedPfx\":\"AAAA\"}");
	r.created = 1000;
	assert_int_equal(flows_outbox_put(s, &r, err, sizeof(err)), 0);
	flows_result_clear(&r);
	snprintf(r.request_id, sizeof(r.request_id), "req-0");
	snprintf(r.feature, sizeof(r.feature), "revoke");
	snprintf(r.correlation_id, sizeof(r.correlation_id), "corr-0");
	r.code = 4004;
	snprintf(r.message, sizeof(r.message), "serial 0A was not issued by this CA");
	r.created = 999;
	assert_int_equal(flows_outbox_put(s, &r, err, sizeof(err)), 0);
	assert_int_equal(flows_outbox_count(s), 2);
	/* "Restart": everything is read back from the file by a new handle. */
	flows_store_close(s);
	if (flows_store_open(db, &s, err, sizeof(err)) == -1)
		fail_msg("%s", err);
	assert_int_equal(flows_outbox_count(s), 2);
	assert_int_equal(flows_outbox_each(s, collect_fn, &c, err, sizeof(err)), 0);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.ids[0], "req-0"); /* oldest first */
	assert_string_equal(c.ids[1], "req-1");
	assert_int_equal(flows_outbox_get(s, "req-1", &g, err, sizeof(err)), 1);
	assert_true(g.succeeded);
	assert_string_equal(g.feature, "pkcs");
	assert_string_equal(g.correlation_id, "corr-1");
	assert_string_equal(g.result_json, "{\"encryptedPfx\":\"AAAA\"}");
	assert_int_equal(g.uploads, 0);
	flows_result_clear(&g);
	assert_int_equal(flows_outbox_bump(s, "req-1", err, sizeof(err)), 0);
	assert_int_equal(flows_outbox_get(s, "req-1", &g, err, sizeof(err)), 1);
	assert_int_equal(g.uploads, 1);
	flows_result_clear(&g);
	assert_int_equal(flows_outbox_get(s, "req-0", &g, err, sizeof(err)), 1);
	assert_false(g.succeeded);
	assert_int_equal(g.code, 4004);
	assert_null(g.result_json);
	assert_string_equal(g.message, "serial 0A was not issued by this CA");
	flows_result_clear(&g);
	/* The acknowledgement removes it, for good. */
	assert_int_equal(flows_outbox_remove(s, "req-0", err, sizeof(err)), 0);
	assert_int_equal(flows_outbox_get(s, "req-0", &g, err, sizeof(err)), 0);
	flows_store_close(s);
	if (flows_store_open(db, &s, err, sizeof(err)) == -1)
		fail_msg("%s", err);
	assert_int_equal(flows_outbox_count(s), 1);
	flows_store_close(s);
	/* A store that cannot be created is an error with the reason. */
	assert_int_equal(flows_store_open("/nonexistent/dir/flows.db", &s, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent/dir/flows.db"));
	test_rmtree(dir);
}

static void
idem(void **state)
{
	char dir[64], db[128], err[256];
	struct flows_store *s;
	struct flows_idem r, g;
	uint8_t csr[3] = { 1, 2, 3 }, key[4] = { 9, 8, 7, 6 }, cert[2] = { 0x30, 0 };

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_flows.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(db, sizeof(db), "%s/flows.db", dir);
	if (flows_store_open(db, &s, err, sizeof(err)) == -1)
		fail_msg("%s", err);
	memset(&r, 0, sizeof(r));
	snprintf(r.request_id, sizeof(r.request_id), "req-9");
	r.csr = csr;
	r.csr_len = sizeof(csr);
	r.enc_key = key;
	r.enc_key_len = sizeof(key);
	assert_int_equal(flows_idem_put(s, &r, err, sizeof(err)), 0);
	assert_int_equal(flows_idem_get(s, "req-9", &g, err, sizeof(err)), 1);
	assert_int_equal(g.csr_len, 3);
	assert_memory_equal(g.csr, csr, 3);
	assert_int_equal(g.enc_key_len, 4);
	assert_memory_equal(g.enc_key, key, 4);
	assert_null(g.cert);
	flows_idem_clear(&g);
	assert_int_equal(flows_idem_set_cert(s, "req-9", cert, sizeof(cert), err, sizeof(err)), 0);
	/* No record, no certificate stored. */
	assert_int_equal(flows_idem_set_cert(s, "req-x", cert, sizeof(cert), err, sizeof(err)),
	    -1);
	flows_store_close(s);
	if (flows_store_open(db, &s, err, sizeof(err)) == -1)
		fail_msg("%s", err);
	assert_int_equal(flows_idem_count(s), 1);
	assert_int_equal(flows_idem_get(s, "req-9", &g, err, sizeof(err)), 1);
	assert_int_equal(g.cert_len, 2);
	assert_memory_equal(g.cert, cert, 2);
	flows_idem_clear(&g);
	assert_int_equal(flows_idem_get(s, "req-x", &g, err, sizeof(err)), 0);
	assert_int_equal(flows_idem_remove(s, "req-9", err, sizeof(err)), 0);
	assert_int_equal(flows_idem_count(s), 0);
	/* Old records are pruned, recent ones kept. */
	snprintf(r.request_id, sizeof(r.request_id), "old");
	r.created = 1000;
	assert_int_equal(flows_idem_put(s, &r, err, sizeof(err)), 0);
	snprintf(r.request_id, sizeof(r.request_id), "new");
	r.created = 0; /* now */
	assert_int_equal(flows_idem_put(s, &r, err, sizeof(err)), 0);
	assert_int_equal(flows_idem_prune(s, time(NULL) - 86400, err, sizeof(err)), 1);
	assert_int_equal(flows_idem_get(s, "old", &g, err, sizeof(err)), 0);
	assert_int_equal(flows_idem_get(s, "new", &g, err, sizeof(err)), 1);
	flows_idem_clear(&g);
	flows_store_close(s);
	test_rmtree(dir);
}

/* ---- key pool ---- */

static void
keypool(void **state)
{
	uint32_t depth[CC_FLOWS_NKEYSPECS] = { 0 };
	struct flows_keypool *p;
	EVP_PKEY *k;
	bool pooled;

	(void)state;
	depth[CC_FLOWS_RSA2048] = 2;
	depth[CC_FLOWS_EC_P256] = 3;
	p = flows_keypool_new(depth);
	assert_non_null(p);
	assert_int_equal(flows_keypool_ready(p, CC_FLOWS_RSA2048), 0);
	assert_int_equal(flows_keypool_start(p), 0);
	assert_int_equal(flows_keypool_wait_full(p, 60000), 1);
	assert_int_equal(flows_keypool_ready(p, CC_FLOWS_RSA2048), 2);
	assert_int_equal(flows_keypool_ready(p, CC_FLOWS_EC_P256), 3);
	assert_int_equal(flows_keypool_ready(p, CC_FLOWS_RSA4096), 0);
	/* Served from the pool, of the right kind, and different each time. */
	k = flows_keypool_take(p, CC_FLOWS_RSA2048, &pooled);
	assert_non_null(k);
	assert_true(pooled);
	assert_string_equal(EVP_PKEY_get0_type_name(k), "RSA");
	assert_int_equal(EVP_PKEY_get_bits(k), 2048);
	{
		EVP_PKEY *k2 = flows_keypool_take(p, CC_FLOWS_RSA2048, &pooled);
		assert_true(pooled);
		assert_int_not_equal(EVP_PKEY_eq(k, k2), 1);
		EVP_PKEY_free(k2);
	}
	EVP_PKEY_free(k);
	k = flows_keypool_take(p, CC_FLOWS_EC_P256, &pooled);
	assert_true(pooled);
	assert_string_equal(EVP_PKEY_get0_type_name(k), "EC");
	EVP_PKEY_free(k);
	/* A spec without a pool: made at once, not pooled. */
	k = flows_keypool_take(p, CC_FLOWS_EC_P384, &pooled);
	assert_non_null(k);
	assert_false(pooled);
	assert_int_equal(EVP_PKEY_get_bits(k), 384);
	EVP_PKEY_free(k);
	/* The thread refills behind the takers. */
	assert_int_equal(flows_keypool_wait_full(p, 60000), 1);
	assert_int_equal(flows_keypool_ready(p, CC_FLOWS_RSA2048), 2);
	assert_int_equal(flows_keypool_ready(p, CC_FLOWS_EC_P256), 3);
	assert_null(flows_keypool_take(p, 99, &pooled));
	flows_keypool_free(p);
	/* No pool at all: every key made on demand. */
	k = flows_keypool_take(NULL, CC_FLOWS_EC_P256, &pooled);
	assert_non_null(k);
	assert_false(pooled);
	EVP_PKEY_free(k);
	/* Every spec names the right key for pkcs_keygen (the pool's one generation path). */
	{
		static const struct { int spec; const char *type; int bits; } want[] = {
			{ CC_FLOWS_RSA2048, "RSA", 2048 }, { CC_FLOWS_RSA3072, "RSA", 3072 },
			{ CC_FLOWS_RSA4096, "RSA", 4096 }, { CC_FLOWS_EC_P256, "EC", 256 },
			{ CC_FLOWS_EC_P384, "EC", 384 },
		};

		assert_int_equal(sizeof(want) / sizeof(want[0]), CC_FLOWS_NKEYSPECS);
		for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
			k = flows_keygen(want[i].spec);
			assert_non_null(k);
			assert_string_equal(EVP_PKEY_get0_type_name(k), want[i].type);
			assert_int_equal(EVP_PKEY_get_bits(k), want[i].bits);
			EVP_PKEY_free(k);
		}
		assert_null(flows_keygen(CC_FLOWS_NKEYSPECS));
		assert_null(flows_keygen(-1));
	}
}

/* ---- revocation against a real local CA, events captured ---- */

#define MAX_EV 64
static struct {
	uint32_t id[MAX_EV];
	char corr[MAX_EV][64];
	char details[MAX_EV][512];
	size_t n;
} ev;

static int
capture(const struct cc_event_msg *m, void *arg)
{
	(void)arg;
	if (ev.n < MAX_EV) {
		ev.id[ev.n] = m->id;
		snprintf(ev.corr[ev.n], sizeof(ev.corr[0]), "%s", m->correlation_id);
		snprintf(ev.details[ev.n], sizeof(ev.details[0]), "%s", m->details_json);
		ev.n++;
	}
	return 0;
}

static size_t
count_ev(uint32_t id, const char *corr)
{
	size_t n = 0;

	for (size_t i = 0; i < ev.n; i++)
		if (ev.id[i] == id && strcmp(ev.corr[i], corr) == 0)
			n++;
	return n;
}

static X509 *
make_ca_cert(EVP_PKEY *k)
{
	X509 *x = sc_selfsigned(k, "CN=Flows Test CA,O=certconn", 3650);
	X509V3_CTX ctx;
	X509_EXTENSION *e;

	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints, "critical,CA:TRUE");
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	e = X509V3_EXT_conf_nid(NULL, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	return x;
}

static void
run_revoke(struct flows_env *env, const char *id, const char *payload, struct flows_job *j)
{
	memset(j, 0, sizeof(*j));
	j->kind = FLOWS_REVOKE;
	snprintf(j->id, sizeof(j->id), "%s", id);
	snprintf(j->corr, sizeof(j->corr), "%s", id);
	j->payload = cJSON_Parse(payload);
	assert_non_null(j->payload);
	flow_revoke_run(env, j);
	cJSON_Delete(j->payload);
	j->payload = NULL;
}

static void
revoke_flow(void **state)
{
	char dir[64], db[128], err[256], payload[512], serial[CC_CA_SERIAL_HEX_MAX];
	struct cc_config_flows conf = { .max_attempts = 2, .backoff_initial_ms = 10,
		.backoff_max_ms = 20, .workers = 1 };
	EVP_PKEY *cakey = sc_key_ec("P-256"), *k = sc_key_ec("P-256");
	X509 *cacert = make_ca_cert(cakey), *x = NULL;
	struct cc_ca_opts o = { .name = "flows", .crl_days = 7, .cert = cacert, .key = cakey };
	struct cc_ca_cert_info info;
	struct flows_env env = { .conf = &conf };
	struct cc_issuance p;
	struct cc_iss_result r;
	struct flows_job j;
	X509_REQ *req;
	sqlite3 *lock;
	uint64_t gen, crl_gen;

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_flows.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(db, sizeof(db), "%s/ca.db", dir);
	o.db_path = db;
	if (cc_ca_open(&o, &env.ca, err, sizeof(err)) == -1)
		fail_msg("%s", err);
	req = sc_csr(k, "CN=victim", NULL, NULL);
	cc_issuance_defaults(&p);
	assert_int_equal(cc_issuance_apply(&p, req, time(NULL), &r, err, sizeof(err)), 0);
	assert_int_equal(cc_ca_issue(env.ca, &r, "pkcs", NULL, false, &x, err, sizeof(err)), 0);
	assert_int_equal(cc_ca_serial_hex(X509_get0_serialNumber(x), serial), 0);
	cc_iss_result_free(&r);
	cc_issuance_free(&p);
	X509_REQ_free(req);
	cc_event_set_forward(capture, NULL);

	/* A serial the CA never issued: final 4004, no retries. */
	ev.n = 0;
	run_revoke(&env, "rv-unknown", "{\"requestContext\": \"rv-unknown\", \"serialNumber\": "
	    "\"0BADBADBAD\"}", &j);
	assert_false(j.res.succeeded);
	assert_int_equal(j.res.code, FLOWS_E_NOT_FOUND);
	assert_non_null(strstr(j.res.message, "was not issued by this CA"));
	assert_int_equal(count_ev(CC_EV_REVOKE_FAILURE, "rv-unknown"), 1);
	assert_int_equal(count_ev(CC_EV_REVOKE_FAILED_ATTEMPT, "rv-unknown"), 0);
	flows_result_clear(&j.res);

	/* Another CA's issuer name or CA configuration. */
	snprintf(payload, sizeof(payload), "{\"serialNumber\": \"%s\", \"issuerName\": "
	    "\"CN=Other CA\"}", serial);
	run_revoke(&env, "rv-issuer", payload, &j);
	assert_int_equal(j.res.code, FLOWS_E_NOT_FOUND);
	flows_result_clear(&j.res);
	snprintf(payload, sizeof(payload), "{\"serialNumber\": \"%s\", \"caConfiguration\": "
	    "\"digicert\"}", serial);
	run_revoke(&env, "rv-config", payload, &j);
	assert_int_equal(j.res.code, FLOWS_E_NOT_SUPPORTED);
	flows_result_clear(&j.res);
	/* A bad payload: 4002. */
	run_revoke(&env, "rv-bad", "{\"serialNumber\": 12}", &j);
	assert_int_equal(j.res.code, FLOWS_E_PARAMETER);
	assert_non_null(strstr(j.res.message, "payload.serialNumber"));
	flows_result_clear(&j.res);

	/* The store locked by someone else: retried, then 4101 (retryable). */
	assert_int_equal(sqlite3_open(db, &lock), SQLITE_OK);
	assert_int_equal(sqlite3_exec(lock, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	ev.n = 0;
	snprintf(payload, sizeof(payload), "{\"serialNumber\": \"%s\", \"issuerName\": "
	    "\"O=certconn, CN=Flows Test CA\", \"caConfiguration\": \"local\"}", serial);
	run_revoke(&env, "rv-locked", payload, &j);
	assert_false(j.res.succeeded);
	assert_int_equal(j.res.code, FLOWS_E_UNAVAILABLE);
	assert_true(flows_code_retryable(j.res.code));
	assert_int_equal(count_ev(CC_EV_REVOKE_FAILED_ATTEMPT, "rv-locked"), 1);
	assert_int_equal(count_ev(CC_EV_REVOKE_FAILURE, "rv-locked"), 1);
	flows_result_clear(&j.res);
	sqlite3_exec(lock, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(lock);
	assert_int_equal(cc_ca_find(env.ca, serial, &info, NULL, err, sizeof(err)), 1);
	assert_int_equal(info.state, CC_CA_CERT_VALID);

	/* Revoked, and the next CRL covers it. */
	ev.n = 0;
	run_revoke(&env, "rv-ok", payload, &j);
	assert_true(j.res.succeeded);
	assert_int_equal(j.res.code, 0);
	assert_null(j.res.result_json);
	assert_int_equal(count_ev(CC_EV_REVOKE_SUCCESS, "rv-ok"), 1);
	flows_result_clear(&j.res);
	assert_int_equal(cc_ca_find(env.ca, serial, &info, NULL, err, sizeof(err)), 1);
	assert_int_equal(info.state, CC_CA_CERT_REVOKED);
	assert_int_equal(cc_ca_revocation_gen(env.ca, &gen, &crl_gen, err, sizeof(err)), 0);
	assert_int_equal(gen, crl_gen);
	{
		uint8_t *der = NULL;
		size_t len = 0;
		const unsigned char *pp;
		X509_CRL *crl;
		X509_REVOKED *rev = NULL;

		assert_int_equal(cc_ca_crl_latest(env.ca, &der, &len, NULL, err, sizeof(err)), 1);
		pp = der;
		crl = d2i_X509_CRL(NULL, &pp, (long)len);
		assert_non_null(crl);
		assert_int_equal(X509_CRL_get0_by_serial(crl, &rev,
		    X509_get0_serialNumber(x)), 1);
		X509_CRL_free(crl);
		free(der);
	}
	/* Leased again after a crash: already revoked is a success. */
	ev.n = 0;
	run_revoke(&env, "rv-again", payload, &j);
	assert_true(j.res.succeeded);
	assert_int_equal(count_ev(CC_EV_REVOKE_SUCCESS, "rv-again"), 1);
	assert_non_null(strstr(ev.details[0], "\"alreadyRevoked\":\"true\""));
	flows_result_clear(&j.res);

	cc_event_set_forward(NULL, NULL);
	cc_ca_close(env.ca);
	X509_free(x);
	X509_free(cacert);
	EVP_PKEY_free(cakey);
	EVP_PKEY_free(k);
	test_rmtree(dir);
}


/* ---- cryptography (flows_crypto.c) and delivery (flows_deliver.c) ---- */

static void
crypto_p12(void **state)
{
	EVP_PKEY *k = sc_key_ec("P-256"), *k2 = NULL;
	X509 *x = sc_selfsigned(k, "CN=p12 test", 30), *x2 = NULL;
	STACK_OF(X509) *chain = NULL;
	char pw[FLOWS_C_PASSWORD_MAX + 1], pw2[FLOWS_C_PASSWORD_MAX + 1];
	uint8_t *der = NULL;
	size_t len = 0;
	bool retry;

	(void)state;
	assert_int_equal(flows_c_password(pw, sizeof(pw)), FLOWS_C_OK);
	assert_int_equal(flows_c_password(pw2, sizeof(pw2)), FLOWS_C_OK);
	assert_int_equal(strlen(pw), 24);
	assert_string_not_equal(pw, pw2);
	assert_int_equal(flows_c_password(pw, 8), FLOWS_C_INVALID);
	assert_int_equal(flows_c_password(pw, sizeof(pw)), FLOWS_C_OK);
	for (int legacy = 0; legacy < 2; legacy++) {
		const unsigned char *p;
		PKCS12 *p12;
		const X509_ALGOR *macalg = NULL;
		const ASN1_OBJECT *obj = NULL;

		assert_int_equal(flows_c_p12_pack(k, x, NULL, pw, legacy, &der, &len),
		    FLOWS_C_OK);
		/* The MAC's digest says which form it is. */
		p = der;
		p12 = d2i_PKCS12(NULL, &p, (long)len);
		assert_non_null(p12);
		PKCS12_get0_mac(NULL, &macalg, NULL, NULL, p12);
		X509_ALGOR_get0(&obj, NULL, NULL, macalg);
		assert_int_equal(OBJ_obj2nid(obj), legacy ? NID_sha1 : NID_sha256);
		PKCS12_free(p12);
		assert_int_equal(flows_c_p12_open(der, len, pw, &k2, &x2, &chain), FLOWS_C_OK);
		assert_int_equal(EVP_PKEY_eq(k, k2), 1);
		assert_int_equal(X509_cmp(x, x2), 0);
		EVP_PKEY_free(k2);
		X509_free(x2);
		sk_X509_pop_free(chain, X509_free);
		assert_int_equal(flows_c_p12_open(der, len, "wrong", &k2, &x2, &chain),
		    FLOWS_C_PASSWORD);
		assert_null(k2);
		assert_int_equal(flows_c_code(FLOWS_C_PASSWORD, &retry), FLOWS_E_CRYPTO);
		assert_false(retry);
		assert_int_equal(flows_c_p12_open(der, len - 1, pw, &k2, &x2, &chain),
		    FLOWS_C_INVALID);
		free(der);
	}
	assert_int_equal(flows_c_code(FLOWS_C_INVALID, &retry), FLOWS_E_PARAMETER);
	assert_int_equal(flows_c_code(FLOWS_C_PADDING, &retry), FLOWS_E_PARAMETER);
	assert_int_equal(flows_c_code(FLOWS_C_UNSUPPORTED, &retry), FLOWS_E_NOT_SUPPORTED);
	assert_int_equal(flows_c_code(FLOWS_C_KEY, &retry), FLOWS_E_RETRYABLE);
	assert_true(retry);
	X509_free(x);
	EVP_PKEY_free(k);
}

static void
crypto_envelope(void **state)
{
	EVP_PKEY *rsa = sc_key_rsa(2048), *ec = sc_key_ec("P-256"), *other = sc_key_rsa(2048);
	X509 *rsa_cert = sc_selfsigned(rsa, "CN=rsa device", 30);
	static const uint8_t msg[] = "the PKCS#12 would be here";
	uint8_t *ct = NULL, *pt = NULL;
	size_t ctlen, ptlen;

	(void)state;
	/* To a bare RSA key, a bare EC key (key agreement) and a certificate. */
	for (int i = 0; i < 3; i++) {
		EVP_PKEY *k = i == 1 ? ec : rsa;

		assert_int_equal(flows_c_seal(i == 2 ? rsa_cert : NULL, i == 2 ? NULL : k, msg,
		    sizeof(msg), &ct, &ctlen), FLOWS_C_OK);
		assert_int_equal(flows_c_open(k, ct, ctlen, &pt, &ptlen), FLOWS_C_OK);
		assert_int_equal(ptlen, sizeof(msg));
		assert_memory_equal(pt, msg, sizeof(msg));
		free(pt);
		/* Another key cannot open it. */
		if (i != 1)
			assert_int_equal(flows_c_open(other, ct, ctlen, &pt, &ptlen),
			    FLOWS_C_CRYPTO);
		free(ct);
	}
	assert_int_equal(flows_c_open(rsa, msg, sizeof(msg), &pt, &ptlen), FLOWS_C_INVALID);
	X509_free(rsa_cert);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(other);
}

static void
crypto_password(void **state)
{
	EVP_PKEY *k = sc_key_rsa(2048);
	static const char *const mds[] = { "SHA256", "SHA384", "SHA512" };
	static const int bits[] = { 256, 384, 512 };
	unsigned char ct[256];
	char *pw = NULL;

	(void)state;
	for (int i = 0; i < 3; i++) {
		EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
		size_t ctlen = sizeof(ct);

		assert_non_null(c);
		assert_int_equal(EVP_PKEY_encrypt_init(c), 1);
		assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING), 1);
		assert_int_equal(EVP_PKEY_CTX_set_rsa_oaep_md_name(c, mds[i], NULL), 1);
		assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md_name(c, mds[i], NULL), 1);
		assert_int_equal(EVP_PKEY_encrypt(c, ct, &ctlen, (const unsigned char *)"Pfx-pw-1",
		    8), 1);
		EVP_PKEY_CTX_free(c);
		assert_int_equal(flows_c_password_decrypt(k, ct, ctlen, bits[i], &pw), FLOWS_C_OK);
		assert_string_equal(pw, "Pfx-pw-1");
		free(pw);
		/* Announced with another digest: the OAEP check fails. */
		assert_int_equal(flows_c_password_decrypt(k, ct, ctlen, bits[(i + 1) % 3], &pw),
		    FLOWS_C_PADDING);
		assert_null(pw);
		/* A ciphertext of the wrong size: a bad parameter too. */
		{
			bool retry;
			int e = flows_c_password_decrypt(k, ct, ctlen - 1, bits[i], &pw);
			assert_int_not_equal(e, FLOWS_C_OK);
			assert_int_equal(flows_c_code(e, &retry), FLOWS_E_PARAMETER);
			assert_false(retry);
		}
	}
	EVP_PKEY_free(k);
}

static void
deliver(void **state)
{
	EVP_PKEY *key = sc_key_rsa(2048), *pfx = sc_key_rsa(2048), *k2 = NULL;
	X509 *cert = sc_selfsigned(key, "CN=delivered", 30), *x2 = NULL;
	STACK_OF(X509) *chain = NULL;
	struct flows_env env = { .pfx_pub = pfx };
	struct flows_device dev = { 0 };
	struct flows_delivery d = { .key = key, .cert = cert, .keep_copy = true,
		.keyspec = "rsa-2048", .device = &dev };
	unsigned char *spki = NULL;
	uint8_t *env_pfx, *env_pw, *p12, *pw, *copy;
	size_t n1, n2, n3, n4, n5;
	cJSON *res = NULL, *kc;
	char why[256];
	bool retry;
	int n;

	(void)state;
	n = i2d_PUBKEY(devkey, &spki);
	dev.der = spki;
	dev.len = (size_t)n;
	assert_int_equal(flows_deliver(&env, &d, &res, &retry, why, sizeof(why)), FLOWS_OK);
	assert_string_equal(cJSON_GetObjectItem(res, "p12Form")->valuestring, "aes256");
	assert_string_equal(cJSON_GetObjectItem(res, "keySpec")->valuestring, "rsa-2048");
	assert_string_equal(cJSON_GetObjectItem(res, "subjectName")->valuestring, "CN=delivered");
	assert_int_equal(strlen(cJSON_GetObjectItem(res, "certificateThumbprint")->valuestring),
	    40);
	/* The device opens the password and the PKCS#12 with its own key. */
	assert_int_equal(flows_b64_decode(cJSON_GetObjectItem(res, "encryptedPfx")->valuestring,
	    1 << 20, &env_pfx, &n1), 0);
	assert_int_equal(flows_b64_decode(cJSON_GetObjectItem(res, "encryptedPassword")->
	    valuestring, 1 << 20, &env_pw, &n2), 0);
	assert_int_equal(flows_c_open(devkey, env_pfx, n1, &p12, &n3), FLOWS_C_OK);
	assert_int_equal(flows_c_open(devkey, env_pw, n2, &pw, &n4), FLOWS_C_OK);
	pw = realloc(pw, n4 + 1);
	pw[n4] = '\0';
	assert_int_equal(flows_c_p12_open(p12, n3, (char *)pw, &k2, &x2, &chain), FLOWS_C_OK);
	assert_int_equal(EVP_PKEY_eq(k2, key), 1);
	assert_int_equal(X509_cmp(x2, cert), 0);
	EVP_PKEY_free(k2);
	X509_free(x2);
	sk_X509_pop_free(chain, X509_free);
	/* The kept copy opens with the pfx key and holds the same PKCS#12 and password. */
	kc = cJSON_GetObjectItem(res, "keptCopy");
	assert_non_null(kc);
	free(env_pfx);
	assert_int_equal(flows_b64_decode(kc->valuestring, 1 << 20, &env_pfx, &n1), 0);
	assert_int_equal(flows_c_open(pfx, env_pfx, n1, &copy, &n5), FLOWS_C_OK);
	{
		cJSON *o = cJSON_ParseWithLength((const char *)copy, n5);
		assert_non_null(o);
		assert_int_equal(cJSON_GetObjectItem(o, "version")->valueint, 1);
		assert_string_equal(cJSON_GetObjectItem(o, "password")->valuestring, (char *)pw);
		cJSON_Delete(o);
	}
	free(copy);
	free(env_pfx);
	free(env_pw);
	free(p12);
	free(pw);
	cJSON_Delete(res);
	OPENSSL_free(spki);
	X509_free(cert);
	EVP_PKEY_free(key);
	EVP_PKEY_free(pfx);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pkcs_good),
		cmocka_unit_test(pkcs_refusals),
		cmocka_unit_test(other_payloads),
		cmocka_unit_test(base64),
		cmocka_unit_test(codes),
		cmocka_unit_test(backoff),
		cmocka_unit_test(outbox),
		cmocka_unit_test(idem),
		cmocka_unit_test(keypool),
		cmocka_unit_test(revoke_flow),
		cmocka_unit_test(crypto_p12),
		cmocka_unit_test(crypto_envelope),
		cmocka_unit_test(crypto_password),
		cmocka_unit_test(deliver),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
