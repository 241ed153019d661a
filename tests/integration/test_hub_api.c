/*
 * Protocol conformance of certconn-hub (docs/protocol.md), over real HTTPS against the real
 * daemon with its CA key in a SoftHSM2 token: every endpoint, its error paths, and the
 * authorisation rules (features, tenants, connector vs admin credentials, certificates).
 */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "hub_harness.h"

static struct hub_harness H;
static struct hub_test_conn A_pkcs, A_scep_rev, B_pkcs;

static const cJSON *
value(const struct hub_resp *r)
{
	return cJSON_GetObjectItemCaseSensitive(r->json, "value");
}

static const char *
err_code(const struct hub_resp *r)
{
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(r->json, "error");
	return hub_json_str(e, "code");
}

static const char *
item_status(const struct hub_resp *r, int i)
{
	return hub_json_str(cJSON_GetArrayItem(value(r), i), "status");
}

static void
expect_error(const struct hub_resp *r, long status, const char *code)
{
	if (r->status != status || err_code(r) == NULL || strcmp(err_code(r), code) != 0)
		fprintf(stderr, "expected %ld %s, got %ld %s\n", status, code, r->status,
		    r->body ? r->body : "(no body)");
	assert_int_equal(r->status, status);
	assert_non_null(err_code(r));
	assert_string_equal(err_code(r), code);
}

static long
post(const struct hub_test_conn *c, const char *path, const char *body, struct hub_resp *r)
{
	assert_int_equal(hub_conn_post(&H, c, path, "1.0", body, r), 0);
	return r->status;
}

static int
setup(void **state)
{
	(void)state;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (hub_harness_start(&H, "\"lease\": {\"min_s\": 1, \"max_s\": 600}, "
	    "\"lifecycle\": {\"versions\": [{\"version\": \"0.1.0\", \"released\": \"2024-01-01\"},"
	    " {\"version\": \"0.2.0\", \"released\": \"2024-02-01\"}]}") == -1)
		return -1;
	if (hub_test_register(&H, "tenant-a", "[\"pkcs\"]", "0.2.0", &A_pkcs) == -1 ||
	    hub_test_register(&H, "tenant-a", "[\"scep\",\"revoke\"]", "0.2.0", &A_scep_rev) ==
	    -1 ||
	    hub_test_register(&H, "tenant-b", "[\"pkcs\"]", "0.2.0", &B_pkcs) == -1)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	int st;

	(void)state;
	/* The hub must stop cleanly: exit 0 (under ASan, also no leak). */
	st = hub_harness_stop(&H);
	if (st != 0)
		fprintf(stderr, "certconn-hub exited with %d; see %s\n", st, H.log);
	hub_harness_free(&H);
	curl_global_cleanup();
	return st == 0 ? 0 : -1;
}

/* ---- headers and framing ---- */

static void
test_headers(void **state)
{
	struct hub_resp r;
	char url[300];
	const char *body = "{\"downloadParameters\":{\"feature\":\"pkcs\",\"maxRequests\":1}}";
	const char *no_crid[] = { "api-version: 1.0", "Content-Type: application/json", NULL };
	const char *bad_crid[] = { "api-version: 1.0", "client-request-id: has space",
		"Content-Type: application/json", NULL };
	const char *no_av[] = { "client-request-id: abc-123", "Content-Type: application/json",
		NULL };
	const char *bad_av[] = { "api-version: 2018-02-20", "client-request-id: abc-124",
		"Content-Type: application/json", NULL };
	const char *no_ct[] = { "api-version: 1.0", "client-request-id: abc-125",
		"Content-Type: text/plain", NULL };
	const char *ok[] = { "api-version: 1.0", "client-request-id: abc-126",
		"Content-Type: application/json", NULL };

	(void)state;
	snprintf(url, sizeof(url), "%s/api/ConnectorRequests/downloadRequests", H.url);
	assert_int_equal(hub_http(url, "POST", no_crid, body, H.ca_pem, A_pkcs.cert, A_pkcs.key,
	    &r), 0);
	expect_error(&r, 400, "MissingClientRequestId");
	hub_resp_free(&r);
	assert_int_equal(hub_http(url, "POST", bad_crid, body, H.ca_pem, A_pkcs.cert, A_pkcs.key,
	    &r), 0);
	expect_error(&r, 400, "InvalidClientRequestId");
	hub_resp_free(&r);
	assert_int_equal(hub_http(url, "POST", no_av, body, H.ca_pem, A_pkcs.cert, A_pkcs.key,
	    &r), 0);
	expect_error(&r, 400, "MissingApiVersion");
	assert_string_equal(r.client_request_id, "abc-123");
	hub_resp_free(&r);
	assert_int_equal(hub_http(url, "POST", bad_av, body, H.ca_pem, A_pkcs.cert, A_pkcs.key,
	    &r), 0);
	expect_error(&r, 400, "UnsupportedApiVersion");
	/* the error names the client-request-id too */
	assert_string_equal(hub_json_str(cJSON_GetObjectItem(r.json, "error"),
	    "clientRequestId"), "abc-124");
	hub_resp_free(&r);
	assert_int_equal(hub_http(url, "POST", no_ct, body, H.ca_pem, A_pkcs.cert, A_pkcs.key,
	    &r), 0);
	expect_error(&r, 415, "UnsupportedMediaType");
	hub_resp_free(&r);
	assert_int_equal(hub_http(url, "GET", ok, NULL, H.ca_pem, A_pkcs.cert, A_pkcs.key, &r),
	    0);
	expect_error(&r, 405, "MethodNotAllowed");
	hub_resp_free(&r);
	assert_int_equal(hub_http(url, "POST", ok, body, H.ca_pem, A_pkcs.cert, A_pkcs.key, &r),
	    0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.client_request_id, "abc-126");
	assert_true(cJSON_IsArray(value(&r)));
	hub_resp_free(&r);
	snprintf(url, sizeof(url), "%s/api/NoSuch/endpoint", H.url);
	assert_int_equal(hub_http(url, "POST", ok, body, H.ca_pem, A_pkcs.cert, A_pkcs.key, &r),
	    0);
	expect_error(&r, 404, "NotFound");
	hub_resp_free(&r);
	snprintf(url, sizeof(url), "%s/", H.url);
	assert_int_equal(hub_http(url, "GET", ok, NULL, H.ca_pem, NULL, NULL, &r), 0);
	expect_error(&r, 404, "NotFound");
	hub_resp_free(&r);
}

static void
test_malformed(void **state)
{
	static const char *const bodies[] = {
		"",                                       /* no body */
		"{\"downloadParameters\":",              /* not JSON */
		"[1,2]",                                  /* not the wrapper object */
		"{\"downloadParameters\":{\"feature\":\"pkcs\",\"maxRequests\":1,\"x\":1}}",
		"{\"downloadParameters\":{\"feature\":\"pkcs\",\"maxRequests\":1},\"y\":2}",
		"{\"downloadParameters\":{\"feature\":\"pkcs\",\"feature\":\"pkcs\","
		"\"maxRequests\":1}}",                    /* duplicate member */
		"{\"downloadParameters\":{\"feature\":7,\"maxRequests\":1}}",
		"{\"downloadParameters\":{\"feature\":\"pkcs\",\"maxRequests\":\"1\"}}",
		"{\"downloadParameters\":{\"maxRequests\":1}}",  /* missing member */
	};
	static const char *const invalid[] = {
		"{\"downloadParameters\":{\"feature\":\"pkcs\",\"maxRequests\":0}}",
		"{\"downloadParameters\":{\"feature\":\"pkcs\",\"maxRequests\":501}}",
		"{\"downloadParameters\":{\"feature\":\"pkcs\",\"maxRequests\":1.5}}",
		"{\"downloadParameters\":{\"feature\":\"pkcs\",\"maxRequests\":1,"
		"\"leaseSeconds\":601}}",
		"{\"downloadParameters\":{\"feature\":\"pkcs\",\"maxRequests\":1,"
		"\"leaseSeconds\":0}}",
		"{\"downloadParameters\":{\"feature\":\"nope\",\"maxRequests\":1}}",
	};
	struct hub_resp r;

	(void)state;
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		post(&A_pkcs, "ConnectorRequests/downloadRequests", bodies[i], &r);
		expect_error(&r, 400, "MalformedRequest");
		hub_resp_free(&r);
	}
	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
		post(&A_pkcs, "ConnectorRequests/downloadRequests", invalid[i], &r);
		expect_error(&r, 400, "InvalidParameter");
		hub_resp_free(&r);
	}
	/* An oversized body is refused by libevent before anything reads it. */
	{
		size_t n = 1100 * 1024;
		char *big = malloc(n + 1);
		memset(big, ' ', n);
		big[n] = '\0';
		big[0] = '{';
		big[n - 1] = '}';
		post(&A_pkcs, "ConnectorRequests/downloadRequests", big, &r);
		assert_int_equal(r.status, 413);
		hub_resp_free(&r);
		free(big);
	}
}

/* ---- registration ---- */

static char *
register_body(const char *token, const char *csr, const char *features)
{
	char *b = malloc(strlen(csr) + 512);

	sprintf(b, "{\"registration\":{\"enrollmentToken\":\"%s\",\"certificateRequest\":\"%s\","
	    "\"version\":\"0.2.0\",\"features\":%s}}", token, csr, features);
	return b;
}

static void
test_register(void **state)
{
	struct hub_resp r;
	char tok[128], key[400], *csr, *body;
	const cJSON *v;
	unsigned char *der;
	const unsigned char *p;
	X509 *cert, *ca;
	FILE *f;
	GENERAL_NAMES *gens;
	const char *uri;
	char want[256];
	int n;

	(void)state;
	snprintf(key, sizeof(key), "%s/reg.key", H.dir);
	assert_int_equal(hub_test_token(&H, "tenant-r", "[\"pkcs\",\"scep\"]", tok, sizeof(tok)),
	    0);
	csr = hub_test_csr(key, 0, "CN=whatever", NULL, NULL);
	assert_non_null(csr);

	/* a feature the token does not allow */
	body = register_body(tok, csr, "[\"revoke\"]");
	post(NULL, "Registration/register", body, &r);
	expect_error(&r, 403, "FeatureNotAllowed");
	hub_resp_free(&r);
	free(body);
	/* unknown feature, duplicate feature, empty list */
	body = register_body(tok, csr, "[\"pkcs\",\"bogus\"]");
	post(NULL, "Registration/register", body, &r);
	expect_error(&r, 400, "InvalidParameter");
	hub_resp_free(&r);
	free(body);
	body = register_body(tok, csr, "[\"pkcs\",\"pkcs\"]");
	post(NULL, "Registration/register", body, &r);
	expect_error(&r, 400, "InvalidParameter");
	hub_resp_free(&r);
	free(body);
	/* a CSR that is not one */
	body = register_body(tok, "AAAA", "[\"pkcs\"]");
	post(NULL, "Registration/register", body, &r);
	expect_error(&r, 400, "InvalidParameter");
	hub_resp_free(&r);
	free(body);
	/* an unknown token */
	body = register_body("cce1.nope", csr, "[\"pkcs\"]");
	post(NULL, "Registration/register", body, &r);
	expect_error(&r, 401, "InvalidEnrollmentToken");
	hub_resp_free(&r);
	free(body);
	/* the admin credential cannot register */
	{
		char url[300], auth[200];
		const char *hdr[] = { "api-version: 1.0", "client-request-id: reg-admin",
			"Content-Type: application/json", auth, NULL };
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", H.admin_token);
		snprintf(url, sizeof(url), "%s/api/Registration/register", H.url);
		body = register_body(tok, csr, "[\"pkcs\"]");
		assert_int_equal(hub_http(url, "POST", hdr, body, H.ca_pem, NULL, NULL, &r), 0);
		expect_error(&r, 403, "WrongCredential");
		hub_resp_free(&r);
		free(body);
	}

	/* the good one */
	body = register_body(tok, csr, "[\"pkcs\",\"scep\"]");
	post(NULL, "Registration/register", body, &r);
	assert_int_equal(r.status, 201);
	v = value(&r);
	assert_non_null(hub_json_str(v, "connectorId"));
	assert_string_equal(hub_json_str(v, "tenantId"), "tenant-r");
	assert_non_null(hub_json_str(v, "renewAfterUtc"));
	der = malloc(8192);
	n = EVP_DecodeBlock(der, (const unsigned char *)hub_json_str(v, "certificate"),
	    (int)strlen(hub_json_str(v, "certificate")));
	p = der;
	cert = d2i_X509(NULL, &p, n);
	assert_non_null(cert);
	f = fopen(H.ca_pem, "r");
	ca = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	assert_int_equal(X509_verify(cert, X509_get0_pubkey(ca)), 1);
	/* bound to the connector: the URN names tenant and id */
	gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	assert_non_null(gens);
	assert_int_equal(sk_GENERAL_NAME_value(gens, 0)->type, GEN_URI);
	uri = (const char *)ASN1_STRING_get0_data(
	    sk_GENERAL_NAME_value(gens, 0)->d.uniformResourceIdentifier);
	snprintf(want, sizeof(want), "urn:certconn:connector:tenant-r:%s",
	    hub_json_str(v, "connectorId"));
	assert_string_equal(uri, want);
	assert_true(X509_get_extended_key_usage(cert) & XKU_SSL_CLIENT);
	GENERAL_NAMES_free(gens);
	X509_free(cert);
	X509_free(ca);
	free(der);
	hub_resp_free(&r);
	/* the token is one-time */
	post(NULL, "Registration/register", body, &r);
	expect_error(&r, 401, "InvalidEnrollmentToken");
	hub_resp_free(&r);
	free(body);
	free(csr);

	/* a weak key */
	assert_int_equal(hub_test_token(&H, "tenant-r", NULL, tok, sizeof(tok)), 0);
	csr = hub_test_csr(NULL, 1024, "CN=weak", NULL, NULL);
	body = register_body(tok, csr, "[\"pkcs\"]");
	post(NULL, "Registration/register", body, &r);
	expect_error(&r, 400, "InvalidParameter");
	assert_non_null(strstr(r.body, "2048"));
	hub_resp_free(&r);
	free(body);
	free(csr);
}

static void
test_tenant_limit(void **state)
{
	struct hub_test_conn c;
	struct hub_resp r;
	char tok[128], *csr, *body;

	(void)state;
	/* 100 connectors per tenant: the 101st registration is refused. */
	for (int i = 0; i < 100; i++)
		assert_int_equal(hub_test_register(&H, "tenant-full", "[\"pkcs\"]", "0.2.0", &c), 0);
	assert_int_equal(hub_test_token(&H, "tenant-full", NULL, tok, sizeof(tok)), 0);
	csr = hub_test_csr(NULL, 0, "CN=x", NULL, NULL);
	body = register_body(tok, csr, "[\"pkcs\"]");
	post(NULL, "Registration/register", body, &r);
	expect_error(&r, 409, "TenantConnectorLimit");
	hub_resp_free(&r);
	/* ... and the token was not used up by the refusal: another tenant is not affected. */
	assert_int_equal(hub_test_register(&H, "tenant-other", "[\"pkcs\"]", "0.2.0", &c), 0);
	free(body);
	free(csr);
}

/* ---- authorisation ---- */

static void
test_auth(void **state)
{
	struct hub_resp r;
	char url[300], auth[200], key[400], cert[400];
	const char *body = "{\"downloadParameters\":{\"feature\":\"pkcs\",\"maxRequests\":1}}";
	const char *with_admin[] = { "api-version: 1.0", "client-request-id: auth-1",
		"Content-Type: application/json", auth, NULL };
	const char *no_auth[] = { "api-version: 1.0", "client-request-id: auth-2",
		"Content-Type: application/json", NULL };
	const char *bad_admin[] = { "api-version: 1.0", "client-request-id: auth-3",
		"Content-Type: application/json", "Authorization: Bearer not-the-admin-token",
		NULL };

	(void)state;
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", H.admin_token);
	/* connector endpoint: no certificate */
	post(NULL, "ConnectorRequests/downloadRequests", body, &r);
	expect_error(&r, 401, "Unauthenticated");
	hub_resp_free(&r);
	/* connector endpoint: the admin credential cannot act as a connector */
	snprintf(url, sizeof(url), "%s/api/ConnectorRequests/downloadRequests", H.url);
	assert_int_equal(hub_http(url, "POST", with_admin, body, H.ca_pem, NULL, NULL, &r), 0);
	expect_error(&r, 403, "WrongCredential");
	hub_resp_free(&r);
	/* admin endpoint: no token, a wrong token */
	snprintf(url, sizeof(url), "%s/admin/connectors", H.url);
	assert_int_equal(hub_http(url, "GET", no_auth, NULL, H.ca_pem, NULL, NULL, &r), 0);
	expect_error(&r, 401, "Unauthenticated");
	hub_resp_free(&r);
	assert_int_equal(hub_http(url, "GET", bad_admin, NULL, H.ca_pem, NULL, NULL, &r), 0);
	expect_error(&r, 401, "Unauthenticated");
	hub_resp_free(&r);
	/* admin endpoint: a connector's certificate, alone or with the admin token */
	assert_int_equal(hub_http(url, "GET", no_auth, NULL, H.ca_pem, A_pkcs.cert, A_pkcs.key,
	    &r), 0);
	expect_error(&r, 401, "Unauthenticated");
	hub_resp_free(&r);
	assert_int_equal(hub_http(url, "GET", with_admin, NULL, H.ca_pem, A_pkcs.cert,
	    A_pkcs.key, &r), 0);
	expect_error(&r, 403, "WrongCredential");
	hub_resp_free(&r);
	assert_int_equal(hub_http(url, "GET", with_admin, NULL, H.ca_pem, NULL, NULL, &r), 0);
	assert_int_equal(r.status, 200);
	hub_resp_free(&r);
	/* the PFX import (it decrypts nothing, but it handles a plaintext password): the same
	 * rules; the body is not read before the credential is checked */
	snprintf(url, sizeof(url), "%s/admin/pfxImports", H.url);
	assert_int_equal(hub_http(url, "POST", no_auth, "{\"pfxImport\":{}}", H.ca_pem,
	    A_pkcs.cert, A_pkcs.key, &r), 0);
	expect_error(&r, 401, "Unauthenticated");
	hub_resp_free(&r);
	assert_int_equal(hub_http(url, "POST", with_admin, "{\"pfxImport\":{}}", H.ca_pem,
	    A_pkcs.cert, A_pkcs.key, &r), 0);
	expect_error(&r, 403, "WrongCredential");
	hub_resp_free(&r);
	assert_int_equal(hub_http(url, "POST", with_admin, "{\"pfxImport\":{}}", H.ca_pem, NULL,
	    NULL, &r), 0);
	expect_error(&r, 400, "MalformedRequest");   /* admitted, then the body is checked */
	hub_resp_free(&r);

	/* a certificate from another CA does not get past the TLS handshake */
	{
		EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		X509 *x = X509_new();
		FILE *f;
		X509_NAME *n;

		snprintf(key, sizeof(key), "%s/foreign.key", H.dir);
		snprintf(cert, sizeof(cert), "%s/foreign.pem", H.dir);
		ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
		X509_gmtime_adj(X509_getm_notBefore(x), -60);
		X509_gmtime_adj(X509_getm_notAfter(x), 3600);
		n = X509_get_subject_name(x);
		X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)"foreign",
		    -1, -1, 0);
		X509_set_issuer_name(x, n);
		X509_set_pubkey(x, k);
		X509_sign(x, k, EVP_sha256());
		f = fopen(key, "w");
		PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
		fclose(f);
		f = fopen(cert, "w");
		PEM_write_X509(f, x);
		fclose(f);
		X509_free(x);
		EVP_PKEY_free(k);
		snprintf(url, sizeof(url), "%s/api/ConnectorRequests/downloadRequests", H.url);
		assert_int_equal(hub_http(url, "POST", no_auth, body, H.ca_pem, cert, key, &r), -1);
		hub_resp_free(&r);
	}

	/* a disabled connector is refused from then on */
	{
		struct hub_test_conn d;
		char b[256];

		assert_int_equal(hub_test_register(&H, "tenant-a", "[\"pkcs\"]", "0.2.0", &d), 0);
		post(&d, "ConnectorRequests/downloadRequests", body, &r);
		assert_int_equal(r.status, 200);
		hub_resp_free(&r);
		snprintf(b, sizeof(b), "{\"connector\":{\"connectorId\":\"%s\"}}", d.id);
		assert_int_equal(hub_admin(&H, "POST", "connectors/disable", b, &r), 0);
		assert_int_equal(r.status, 200);
		hub_resp_free(&r);
		post(&d, "ConnectorRequests/downloadRequests", body, &r);
		expect_error(&r, 401, "Unauthenticated");
		hub_resp_free(&r);
		assert_int_equal(hub_admin(&H, "POST", "connectors/disable",
		    "{\"connector\":{\"connectorId\":\"no-such\"}}", &r), 0);
		expect_error(&r, 404, "NotFound");
		hub_resp_free(&r);
	}
}

/* ---- work queues, leases, results ---- */

static int
lease(const struct hub_test_conn *c, const char *feature, int max, int lease_s,
    struct hub_resp *r)
{
	char body[256];

	snprintf(body, sizeof(body), "{\"downloadParameters\":{\"feature\":\"%s\","
	    "\"maxRequests\":%d,\"leaseSeconds\":%d}}", feature, max, lease_s);
	post(c, "ConnectorRequests/downloadRequests", body, r);
	return r->status == 200 ? cJSON_GetArraySize(value(r)) : -1;
}

static long
upload(const struct hub_test_conn *c, const char *id, int ok, int code, struct hub_resp *r)
{
	char body[512];

	snprintf(body, sizeof(body), "{\"results\":[{\"requestId\":\"%s\",\"succeeded\":%s,"
	    "\"errorCode\":%d,\"errorMessage\":\"%s\"%s}]}", id, ok ? "true" : "false", code,
	    ok ? "" : "failed", ok ? ",\"result\":{\"pfx\":\"AAAA\"}" : "");
	return post(c, "ConnectorRequests/uploadResults", body, r);
}

static void
test_queue(void **state)
{
	struct hub_test_conn other;
	struct hub_resp r;
	char id[3][80], req[512];
	const cJSON *it;

	(void)state;
	assert_int_equal(hub_test_register(&H, "tenant-a", "[\"pkcs\"]", "0.2.0", &other), 0);
	/* drain whatever an earlier test left */
	while (lease(&A_pkcs, "pkcs", 500, 600, &r) > 0)
		hub_resp_free(&r);
	hub_resp_free(&r);
	for (int i = 0; i < 3; i++) {
		snprintf(req, sizeof(req), "{\"deviceId\":\"dev%d\",\"devicePublicKey\":\"AAAA\"}",
		    i);
		assert_int_equal(hub_test_queue(&H, "tenant-a", "pkcs", req, id[i], sizeof(id[i])),
		    0);
	}
	/* a feature the connector did not register */
	assert_int_equal(lease(&A_pkcs, "scep", 1, 60, &r), -1);
	expect_error(&r, 403, "FeatureNotRegistered");
	hub_resp_free(&r);
	/* oldest first, maxRequests respected, attempt 1, payload as queued */
	assert_int_equal(lease(&A_pkcs, "pkcs", 2, 60, &r), 2);
	it = cJSON_GetArrayItem(value(&r), 0);
	assert_string_equal(hub_json_str(it, "requestId"), id[0]);
	assert_string_equal(hub_json_str(it, "feature"), "pkcs");
	assert_int_equal(cJSON_GetObjectItem(it, "attempt")->valueint, 1);
	assert_string_equal(hub_json_str(cJSON_GetObjectItem(it, "payload"), "deviceId"), "dev0");
	assert_non_null(hub_json_str(it, "leaseExpiresUtc"));
	assert_string_equal(hub_json_str(cJSON_GetArrayItem(value(&r), 1), "requestId"), id[1]);
	hub_resp_free(&r);
	/* leased requests are invisible to another connector; the third is not */
	assert_int_equal(lease(&other, "pkcs", 10, 60, &r), 1);
	assert_string_equal(hub_json_str(cJSON_GetArrayItem(value(&r), 0), "requestId"), id[2]);
	hub_resp_free(&r);
	assert_int_equal(lease(&other, "pkcs", 10, 60, &r), 0);
	hub_resp_free(&r);
	/* another tenant sees nothing of it */
	assert_int_equal(lease(&B_pkcs, "pkcs", 10, 60, &r), 0);
	hub_resp_free(&r);
	upload(&B_pkcs, id[0], 1, 0, &r);
	assert_string_equal(item_status(&r, 0), "NotFound");
	hub_resp_free(&r);

	/* results: recorded once; a retry is AlreadyRecorded; others get told */
	assert_int_equal(upload(&A_pkcs, id[0], 1, 0, &r), 200);
	assert_string_equal(item_status(&r, 0), "Recorded");
	hub_resp_free(&r);
	upload(&A_pkcs, id[0], 1, 0, &r);
	assert_string_equal(item_status(&r, 0), "AlreadyRecorded");
	hub_resp_free(&r);
	upload(&other, id[0], 1, 0, &r);
	assert_string_equal(item_status(&r, 0), "AlreadyCompleted");
	hub_resp_free(&r);
	upload(&other, id[1], 1, 0, &r);
	assert_string_equal(item_status(&r, 0), "NotLeased");
	hub_resp_free(&r);
	upload(&A_pkcs, "no-such-request", 1, 0, &r);
	assert_string_equal(item_status(&r, 0), "NotFound");
	hub_resp_free(&r);
	/* item rules */
	upload(&A_pkcs, id[1], 1, 4004, &r);
	assert_string_equal(item_status(&r, 0), "Invalid");
	hub_resp_free(&r);
	upload(&A_pkcs, id[1], 0, 0, &r);
	assert_string_equal(item_status(&r, 0), "Invalid");
	hub_resp_free(&r);
	upload(&A_pkcs, id[1], 0, 4999, &r);
	assert_string_equal(item_status(&r, 0), "Invalid");
	hub_resp_free(&r);
	/* a batch may not name a request twice */
	snprintf(req, sizeof(req), "{\"results\":[{\"requestId\":\"%s\",\"succeeded\":true,"
	    "\"errorCode\":0},{\"requestId\":\"%s\",\"succeeded\":true,\"errorCode\":0}]}", id[1],
	    id[1]);
	post(&A_pkcs, "ConnectorRequests/uploadResults", req, &r);
	expect_error(&r, 400, "InvalidParameter");
	hub_resp_free(&r);
	post(&A_pkcs, "ConnectorRequests/uploadResults", "{\"results\":[]}", &r);
	expect_error(&r, 400, "InvalidParameter");
	hub_resp_free(&r);

	/* a retryable failure requeues: another connector gets it, attempt 2 */
	upload(&A_pkcs, id[1], 0, 4101, &r);
	assert_string_equal(item_status(&r, 0), "Requeued");
	hub_resp_free(&r);
	upload(&A_pkcs, id[1], 0, 4101, &r);
	assert_string_equal(item_status(&r, 0), "AlreadyRecorded");
	hub_resp_free(&r);
	assert_int_equal(lease(&other, "pkcs", 10, 1, &r), 1);
	it = cJSON_GetArrayItem(value(&r), 0);
	assert_string_equal(hub_json_str(it, "requestId"), id[1]);
	assert_int_equal(cJSON_GetObjectItem(it, "attempt")->valueint, 2);
	hub_resp_free(&r);
	/* its 1 s lease expires: A leases it again; other's late result is a lost lease */
	sleep(2);
	assert_int_equal(lease(&A_pkcs, "pkcs", 10, 60, &r), 1);
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(value(&r), 0), "attempt")->
	    valueint, 3);
	hub_resp_free(&r);
	upload(&other, id[1], 1, 0, &r);
	assert_string_equal(item_status(&r, 0), "LeaseLost");
	hub_resp_free(&r);
	/* a final failure is recorded */
	upload(&A_pkcs, id[1], 0, 4004, &r);
	assert_string_equal(item_status(&r, 0), "Recorded");
	hub_resp_free(&r);

	/* lease extension */
	snprintf(req, sizeof(req), "{\"leaseParameters\":{\"requestIds\":[\"%s\",\"%s\",\"%s\","
	    "\"nope\"],\"leaseSeconds\":120}}", id[2], id[0], id[1]);
	post(&other, "ConnectorRequests/extendLeases", req, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(item_status(&r, 0), "Extended");
	assert_non_null(hub_json_str(cJSON_GetArrayItem(value(&r), 0), "leaseExpiresUtc"));
	assert_string_equal(item_status(&r, 1), "AlreadyCompleted");
	assert_string_equal(item_status(&r, 2), "AlreadyCompleted");
	assert_string_equal(item_status(&r, 3), "NotFound");
	hub_resp_free(&r);
	post(&A_pkcs, "ConnectorRequests/extendLeases", req, &r);
	assert_string_equal(item_status(&r, 0), "NotLeased");
	hub_resp_free(&r);
	assert_int_equal(upload(&other, id[2], 1, 0, &r), 200);
	assert_string_equal(item_status(&r, 0), "Recorded");
	hub_resp_free(&r);

	/* the admin view: every result once, by whom */
	snprintf(req, sizeof(req), "requests/%s", id[0]);
	assert_int_equal(hub_admin(&H, "GET", req, NULL, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(hub_json_str(value(&r), "state"), "completed");
	assert_string_equal(hub_json_str(value(&r), "completedBy"), A_pkcs.id);
	assert_string_equal(hub_json_str(cJSON_GetObjectItem(value(&r), "result"), "pfx"),
	    "AAAA");
	hub_resp_free(&r);
	snprintf(req, sizeof(req), "requests/%s", id[1]);
	assert_int_equal(hub_admin(&H, "GET", req, NULL, &r), 0);
	assert_string_equal(hub_json_str(value(&r), "state"), "failed");
	assert_int_equal(cJSON_GetObjectItem(value(&r), "errorCode")->valueint, 4004);
	hub_resp_free(&r);
}

/* ---- revocation in Intune's shape ---- */

static void
test_revocation(void **state)
{
	struct hub_resp r;
	char id1[80], id2[80], body[512];
	const cJSON *it;

	(void)state;
	assert_int_equal(hub_test_queue(&H, "tenant-a", "revoke", "{\"serialNumber\":\"0A1B\","
	    "\"issuerName\":\"CN=CA one\",\"caConfiguration\":\"local\"}", id1, sizeof(id1)), 0);
	assert_int_equal(hub_test_queue(&H, "tenant-a", "revoke", "{\"serialNumber\":\"0C2D\","
	    "\"issuerName\":\"CN=CA two\"}", id2, sizeof(id2)), 0);
	/* needs the revoke feature, and Intune's api-version */
	hub_conn_post(&H, &A_pkcs, "CertificateAuthorityRequests/downloadRevocationRequests",
	    "5019-05-05", "{\"downloadParameters\":{\"maxRequests\":10}}", &r);
	expect_error(&r, 403, "FeatureNotRegistered");
	hub_resp_free(&r);
	hub_conn_post(&H, &A_scep_rev, "CertificateAuthorityRequests/downloadRevocationRequests",
	    "1.0", "{\"downloadParameters\":{\"maxRequests\":10}}", &r);
	expect_error(&r, 400, "UnsupportedApiVersion");
	hub_resp_free(&r);
	hub_conn_post(&H, &A_scep_rev, "CertificateAuthorityRequests/downloadRevocationRequests",
	    "5019-05-05", "{\"downloadParameters\":{\"maxRequests\":0}}", &r);
	expect_error(&r, 400, "InvalidParameter");
	hub_resp_free(&r);
	/* the issuer filter */
	hub_conn_post(&H, &A_scep_rev, "CertificateAuthorityRequests/downloadRevocationRequests",
	    "5019-05-05", "{\"downloadParameters\":{\"maxRequests\":10,\"issuerName\":\"CN=CA "
	    "two\"}}", &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(cJSON_GetArraySize(value(&r)), 1);
	it = cJSON_GetArrayItem(value(&r), 0);
	assert_string_equal(hub_json_str(it, "requestContext"), id2);
	assert_string_equal(hub_json_str(it, "serialNumber"), "0C2D");
	assert_string_equal(hub_json_str(it, "issuerName"), "CN=CA two");
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(it, "caConfiguration")));
	assert_null(cJSON_GetObjectItem(it, "payload")); /* Intune's shape, nothing else */
	hub_resp_free(&r);
	hub_conn_post(&H, &A_scep_rev, "CertificateAuthorityRequests/downloadRevocationRequests",
	    "5019-05-05", "{\"downloadParameters\":{\"maxRequests\":10,\"issuerName\":null}}", &r);
	assert_int_equal(cJSON_GetArraySize(value(&r)), 1);
	it = cJSON_GetArrayItem(value(&r), 0);
	assert_string_equal(hub_json_str(it, "requestContext"), id1);
	assert_string_equal(hub_json_str(it, "caConfiguration"), "local");
	hub_resp_free(&r);
	/* results: {"value": true} when all were taken, false otherwise */
	snprintf(body, sizeof(body), "{\"results\":[{\"requestContext\":\"%s\",\"succeeded\":true,"
	    "\"errorCode\":0,\"errorMessage\":\"\"},{\"requestContext\":\"%s\",\"succeeded\":false,"
	    "\"errorCode\":4004,\"errorMessage\":\"unknown serial\"}]}", id1, id2);
	hub_conn_post(&H, &A_scep_rev, "CertificateAuthorityRequests/uploadRevocationResults",
	    "5019-05-05", body, &r);
	assert_int_equal(r.status, 200);
	assert_true(cJSON_IsTrue(value(&r)));
	hub_resp_free(&r);
	hub_conn_post(&H, &A_scep_rev, "CertificateAuthorityRequests/uploadRevocationResults",
	    "5019-05-05", body, &r);
	assert_true(cJSON_IsTrue(value(&r))); /* a retried upload: already recorded */
	hub_resp_free(&r);
	hub_conn_post(&H, &A_scep_rev, "CertificateAuthorityRequests/uploadRevocationResults",
	    "5019-05-05", "{\"results\":[{\"requestContext\":\"nope\",\"succeeded\":true,"
	    "\"errorCode\":0,\"errorMessage\":\"\"}]}", &r);
	assert_int_equal(r.status, 200);
	assert_true(cJSON_IsFalse(value(&r)));
	hub_resp_free(&r);
	/* the upload item has Intune's members only */
	hub_conn_post(&H, &A_scep_rev, "CertificateAuthorityRequests/uploadRevocationResults",
	    "5019-05-05", "{\"results\":[{\"requestId\":\"x\",\"succeeded\":true,"
	    "\"errorCode\":0}]}", &r);
	expect_error(&r, 400, "MalformedRequest");
	hub_resp_free(&r);
}

/* ---- SCEP in Intune's shape ---- */

static char *
challenge(const char *extra)
{
	struct hub_resp r;
	char body[512];
	char *c = NULL;

	snprintf(body, sizeof(body), "{\"challenge\":{\"tenantId\":\"tenant-a\"%s}}",
	    extra ? extra : "");
	assert_int_equal(hub_admin(&H, "POST", "scepChallenges", body, &r), 0);
	assert_int_equal(r.status, 201);
	c = strdup(hub_json_str(value(&r), "challenge"));
	hub_resp_free(&r);
	return c;
}

static const char *
scep_call(const char *op, const char *inner, struct hub_resp *r)
{
	char path[128];
	char *body = malloc(strlen(inner) + 64);

	snprintf(path, sizeof(path), "ScepActions/%s", op);
	sprintf(body, "{\"%s\":{%s}}", strcmp(op, "validateRequest") == 0 ? "request" :
	    "notification", inner);
	assert_int_equal(hub_conn_post(&H, &A_scep_rev, path, "2018-02-20", body, r), 0);
	free(body);
	if (r->status != 200)
		fprintf(stderr, "%s: %ld %s\n", op, r->status, r->body ? r->body : "");
	assert_int_equal(r->status, 200);
	assert_non_null(hub_json_str(r->json, "errorDescription"));
	return hub_json_str(r->json, "code");
}

static const char *
validate(const char *txid, const char *csr, struct hub_resp *r)
{
	char *inner = malloc(strlen(csr) + 256);
	const char *code;

	sprintf(inner, "\"transactionId\":\"%s\",\"certificateRequest\":\"%s\","
	    "\"callerInfo\":\"test\"", txid, csr);
	code = scep_call("validateRequest", inner, r);
	free(inner);
	return code;
}

static void
test_scep(void **state)
{
	struct hub_resp r;
	char *ch, *csr, *csr2, *inner;
	const char *good_notify;

	(void)state;
	ch = challenge(",\"subjectName\":\"CN=dev1,O=Contoso\",\"validMinutes\":5");
	csr = hub_test_csr(NULL, 0, "CN=dev1,O=Contoso", ch, NULL);
	/* needs the scep feature */
	hub_conn_post(&H, &A_pkcs, "ScepActions/validateRequest", "2018-02-20",
	    "{\"request\":{\"transactionId\":\"t\",\"certificateRequest\":\"AAAA\"}}", &r);
	expect_error(&r, 403, "FeatureNotRegistered");
	hub_resp_free(&r);
	/* the failure paths */
	assert_string_equal(validate("tx-bad64", "!!!", &r), "CertificateRequestDecodingFailed");
	hub_resp_free(&r);
	assert_string_equal(validate("tx-notcsr", "AAAAAAAA", &r),
	    "CertificateRequestDecodingFailed");
	hub_resp_free(&r);
	{
		/* flip a byte of the signature (the end of the DER) */
		size_t n = strlen(csr);
		unsigned char *der = malloc(n);
		int len = EVP_DecodeBlock(der, (const unsigned char *)csr, (int)n);
		char *b64 = malloc(n + 4);
		while (csr[n - 1] == '=') { n--; len--; }
		der[len - 5] ^= 0x55;
		EVP_EncodeBlock((unsigned char *)b64, der, len);
		assert_string_equal(validate("tx-sig", b64, &r), "SignatureValidationFailed");
		hub_resp_free(&r);
		free(der);
		free(b64);
	}
	csr2 = hub_test_csr(NULL, 0, "CN=dev1,O=Contoso", NULL, NULL);
	assert_string_equal(validate("tx-nochal", csr2, &r), "ChallengePasswordMissing");
	hub_resp_free(&r);
	free(csr2);
	csr2 = hub_test_csr(NULL, 0, "CN=dev1,O=Contoso", "not-a-challenge-we-issued", NULL);
	assert_string_equal(validate("tx-unknown", csr2, &r), "ChallengeDecodingError");
	hub_resp_free(&r);
	free(csr2);
	csr2 = hub_test_csr(NULL, 0, "CN=dev2,O=Contoso", ch, NULL);
	assert_string_equal(validate("tx-subject", csr2, &r), "SubjectNameMismatch");
	hub_resp_free(&r);
	free(csr2);
	csr2 = hub_test_csr(NULL, 0, NULL, ch, NULL);
	assert_string_equal(validate("tx-nosubject", csr2, &r), "SubjectNameMissing");
	hub_resp_free(&r);
	free(csr2);
	/* the good one, then a retry, then another transaction with the same challenge */
	assert_string_equal(validate("tx-1", csr, &r), "Success");
	hub_resp_free(&r);
	assert_string_equal(validate("tx-1", csr, &r), "Success");
	hub_resp_free(&r);
	assert_string_equal(validate("tx-2", csr, &r), "ChallengeExpired");
	assert_non_null(strstr(r.body, "already used"));
	hub_resp_free(&r);
	/* another connector's tenant does not know the challenge */

	/* SANs and key length */
	free(ch);
	ch = challenge(",\"subjectAltNames\":[\"DNS:dev3.contoso.com\"],\"minKeyBits\":3072");
	csr2 = hub_test_csr(NULL, 0, "CN=dev3", ch, NULL);
	assert_string_equal(validate("tx-3a", csr2, &r), "SubjectAltNameMissing");
	hub_resp_free(&r);
	free(csr2);
	csr2 = hub_test_csr(NULL, 0, "CN=dev3", ch, "DNS:evil.contoso.com");
	assert_string_equal(validate("tx-3b", csr2, &r), "SubjectAltNameMismatch");
	hub_resp_free(&r);
	free(csr2);
	csr2 = hub_test_csr(NULL, 0, "CN=dev3", ch, "DNS:dev3.contoso.com");
	assert_string_equal(validate("tx-3c", csr2, &r), "KeyLengthMismatch");
	hub_resp_free(&r);
	free(csr2);
	csr2 = hub_test_csr(NULL, 3072, "CN=dev3", ch, "DNS:dev3.contoso.com");
	assert_string_equal(validate("tx-3d", csr2, &r), "Success");
	hub_resp_free(&r);
	free(ch);

	/* notifications */
	inner = malloc(strlen(csr) + strlen(csr2) + 1024);
	good_notify = "\"certificateThumbprint\":\"a1b2c3\",\"certificateSerialNumber\":\"3A5F\","
	    "\"certificateExpirationDateUtc\":\"2030-01-01T00:00:00.000Z\","
	    "\"issuingCertificateAuthority\":\"CN=local CA\",\"caConfiguration\":\"local\","
	    "\"certificateAuthority\":\"certconn\"";
	sprintf(inner, "\"transactionId\":\"tx-never\",\"certificateRequest\":\"%s\","
	    "\"callerInfo\":\"t\",%s", csr, good_notify);
	assert_string_equal(scep_call("successNotification", inner, &r), "TransactionNotFound");
	hub_resp_free(&r);
	sprintf(inner, "\"transactionId\":\"tx-1\",\"certificateRequest\":\"%s\","
	    "\"callerInfo\":\"t\",%s", csr2, good_notify);
	assert_string_equal(scep_call("successNotification", inner, &r), "TransactionMismatch");
	hub_resp_free(&r);
	sprintf(inner, "\"transactionId\":\"tx-1\",\"certificateRequest\":\"%s\","
	    "\"callerInfo\":\"t\",%s", csr, good_notify);
	assert_string_equal(scep_call("successNotification", inner, &r), "Success");
	hub_resp_free(&r);
	assert_string_equal(scep_call("successNotification", inner, &r), "Success");
	hub_resp_free(&r);
	sprintf(inner, "\"transactionId\":\"tx-1\",\"certificateRequest\":\"%s\","
	    "\"certificateThumbprint\":\"ffff\",\"certificateSerialNumber\":\"3A5F\","
	    "\"certificateExpirationDateUtc\":\"2030-01-01T00:00:00Z\","
	    "\"issuingCertificateAuthority\":\"CN=local CA\"", csr);
	assert_string_equal(scep_call("successNotification", inner, &r), "TransactionMismatch");
	hub_resp_free(&r);
	sprintf(inner, "\"transactionId\":\"tx-1\",\"certificateRequest\":\"%s\","
	    "\"hResult\":-2146875374,\"errorDescription\":\"late failure\"", csr);
	assert_string_equal(scep_call("failureNotification", inner, &r),
	    "TransactionAlreadySucceeded");
	hub_resp_free(&r);
	/* a failure for a transaction never validated is recorded; success after it is not */
	sprintf(inner, "\"transactionId\":\"tx-3d\",\"certificateRequest\":\"%s\","
	    "\"callerInfo\":\"t\",\"hResult\":-2146875374,\"errorDescription\":\"CA refused\"",
	    csr2);
	assert_string_equal(scep_call("failureNotification", inner, &r), "Success");
	hub_resp_free(&r);
	assert_string_equal(scep_call("failureNotification", inner, &r), "Success");
	hub_resp_free(&r);
	sprintf(inner, "\"transactionId\":\"tx-3d\",\"certificateRequest\":\"%s\",%s", csr2,
	    good_notify);
	assert_string_equal(scep_call("successNotification", inner, &r),
	    "TransactionAlreadyFailed");
	hub_resp_free(&r);
	/* malformed notifications are protocol errors */
	hub_conn_post(&H, &A_scep_rev, "ScepActions/failureNotification", "2018-02-20",
	    "{\"notification\":{\"transactionId\":\"x\",\"certificateRequest\":\"AAAA\","
	    "\"hResult\":1}}", &r);
	expect_error(&r, 400, "MalformedRequest"); /* errorDescription missing */
	hub_resp_free(&r);
	{
		char longdesc[300];
		memset(longdesc, 'x', 256);
		longdesc[256] = '\0';
		sprintf(inner, "{\"notification\":{\"transactionId\":\"x\",\"certificateRequest\":"
		    "\"AAAA\",\"hResult\":1,\"errorDescription\":\"%s\"}}", longdesc);
		hub_conn_post(&H, &A_scep_rev, "ScepActions/failureNotification", "2018-02-20",
		    inner, &r);
		expect_error(&r, 400, "InvalidParameter"); /* over 255 */
		hub_resp_free(&r);
	}
	sprintf(inner, "\"transactionId\":\"tx-1\",\"certificateRequest\":\"%s\","
	    "\"certificateThumbprint\":\"a1b2c3\",\"certificateSerialNumber\":\"3A5F\","
	    "\"certificateExpirationDateUtc\":\"next year\",\"issuingCertificateAuthority\":\"x\"",
	    csr);
	{
		char *b = malloc(strlen(inner) + 64);
		sprintf(b, "{\"notification\":{%s}}", inner);
		hub_conn_post(&H, &A_scep_rev, "ScepActions/successNotification", "2018-02-20", b,
		    &r);
		expect_error(&r, 400, "InvalidParameter");
		hub_resp_free(&r);
		free(b);
	}
	/* the admin sees the transactions */
	assert_int_equal(hub_admin(&H, "GET", "scepTransactions?tenantId=tenant-a", NULL, &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"transactionId\":\"tx-1\""));
	assert_non_null(strstr(r.body, "\"state\":\"succeeded\""));
	assert_non_null(strstr(r.body, "\"state\":\"failed\""));
	assert_null(strstr(r.body, "tx-subject")); /* failed validations bind nothing */
	hub_resp_free(&r);
	free(inner);
	free(csr);
	free(csr2);
}

/* ---- health, lifecycle, renewal ---- */

static void
test_health(void **state)
{
	struct hub_resp r;
	const cJSON *life, *c;
	const char *hm = "{\"healthMessage\":{\"version\":\"0.2.0\",\"features\":[\"pkcs\"],"
	    "\"uptimeSeconds\":12,\"tokenState\":\"ok\",\"caReachable\":true,\"queue\":"
	    "{\"pending\":1,\"inFlight\":0,\"outbox\":0,\"succeeded\":3,\"failed\":0},"
	    "\"lastErrors\":[{\"timeUtc\":\"2025-01-01T00:00:00Z\",\"eventId\":1001,"
	    "\"message\":\"boom\"}],\"clientCertificateNotAfterUtc\":\"2030-01-01T00:00:00Z\"}}";
	bool found = false;

	(void)state;
	post(&A_pkcs, "ConnectorHealth/uploadHealthMessage", hm, &r);
	assert_int_equal(r.status, 200);
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(value(&r), "accepted")));
	assert_int_equal(cJSON_GetObjectItem(value(&r), "nextHealthSeconds")->valueint, 60);
	life = cJSON_GetObjectItem(value(&r), "lifecycle");
	assert_string_equal(hub_json_str(life, "status"), "supported");
	assert_string_equal(hub_json_str(life, "latestVersion"), "0.2.0");
	hub_resp_free(&r);
	/* bad messages */
	post(&A_pkcs, "ConnectorHealth/uploadHealthMessage", "{\"healthMessage\":{\"version\":"
	    "\"0.2.0\",\"features\":[\"pkcs\"],\"uptimeSeconds\":1,\"tokenState\":\"great\"}}", &r);
	expect_error(&r, 400, "InvalidParameter");
	hub_resp_free(&r);
	post(&A_pkcs, "ConnectorHealth/uploadHealthMessage", "{\"healthMessage\":{\"version\":"
	    "\"0.2.0\",\"features\":[\"scep\"],\"uptimeSeconds\":1,\"tokenState\":\"ok\"}}", &r);
	expect_error(&r, 400, "InvalidParameter"); /* a feature it did not register */
	hub_resp_free(&r);
	post(&A_pkcs, "ConnectorHealth/uploadHealthMessage", "{\"healthMessage\":{\"version\":"
	    "\"two\",\"features\":[\"pkcs\"],\"uptimeSeconds\":1,\"tokenState\":\"ok\"}}", &r);
	expect_error(&r, 400, "InvalidParameter");
	hub_resp_free(&r);
	/* an old version reports a warning, and the tenant now runs mixed versions */
	post(&A_scep_rev, "ConnectorHealth/uploadHealthMessage", "{\"healthMessage\":{\"version\":"
	    "\"0.1.0\",\"features\":[\"scep\"],\"uptimeSeconds\":1,\"tokenState\":\"degraded\"}}",
	    &r);
	assert_int_equal(r.status, 200);
	life = cJSON_GetObjectItem(value(&r), "lifecycle");
	/* 0.2.0 released 2024-02-01: 0.1.0 is out of support since 2024-08-01 */
	assert_string_equal(hub_json_str(life, "status"), "blocked");
	assert_string_equal(hub_json_str(life, "supportEndsUtc"), "2024-08-01T00:00:00Z");
	assert_string_equal(hub_json_str(life, "blockAfterUtc"), "2025-08-01T00:00:00Z");
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(life, "mixedVersions")));
	hub_resp_free(&r);
	/* the admin view */
	assert_int_equal(hub_admin(&H, "GET", "connectors?tenantId=tenant-a", NULL, &r), 0);
	assert_int_equal(r.status, 200);
	cJSON_ArrayForEach(c, value(&r)) {
		if (strcmp(hub_json_str(c, "connectorId"), A_pkcs.id) != 0)
			continue;
		found = true;
		assert_string_equal(hub_json_str(c, "health"), "healthy");
		assert_string_equal(hub_json_str(c, "version"), "0.2.0");
		assert_true(cJSON_IsTrue(cJSON_GetObjectItem(c, "mixedVersions")));
		assert_string_equal(hub_json_str(cJSON_GetObjectItem(c, "lastHealthMessage"),
		    "tokenState"), "ok");
	}
	assert_true(found);
	hub_resp_free(&r);
	/* the connector that never sent one is unknown */
	assert_int_equal(hub_admin(&H, "GET", "connectors?tenantId=tenant-b", NULL, &r), 0);
	assert_string_equal(hub_json_str(cJSON_GetArrayItem(value(&r), 0), "health"), "unknown");
	hub_resp_free(&r);
	/* put A_scep_rev back on the current version for the other tests */
	post(&A_scep_rev, "ConnectorHealth/uploadHealthMessage", "{\"healthMessage\":{\"version\":"
	    "\"0.2.0\",\"features\":[\"scep\",\"revoke\"],\"uptimeSeconds\":2,\"tokenState\":"
	    "\"ok\"}}", &r);
	assert_int_equal(r.status, 200);
	assert_false(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(value(&r),
	    "lifecycle"), "mixedVersions")));
	hub_resp_free(&r);
}

static void
test_renew(void **state)
{
	struct hub_test_conn c, old;
	struct hub_resp r;
	char *csr, *body;
	const char *dl = "{\"downloadParameters\":{\"feature\":\"pkcs\",\"maxRequests\":1}}";
	unsigned char der[4096];
	const unsigned char *p;
	int n;
	X509 *x;
	FILE *f;

	(void)state;
	assert_int_equal(hub_test_register(&H, "tenant-a", "[\"pkcs\"]", "0.2.0", &c), 0);
	old = c;
	/* the same key (as the appliance does: the key stays in the token) */
	{
		/* a CSR for c's own key */
		EVP_PKEY *k;
		X509_REQ *req = X509_REQ_new();
		unsigned char *d = NULL;
		int len;
		f = fopen(c.key, "r");
		k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
		fclose(f);
		X509_REQ_set_pubkey(req, k);
		X509_REQ_sign(req, k, EVP_sha256());
		len = i2d_X509_REQ(req, &d);
		csr = malloc((size_t)len * 2 + 8);
		EVP_EncodeBlock((unsigned char *)csr, d, len);
		OPENSSL_free(d);
		X509_REQ_free(req);
		EVP_PKEY_free(k);
	}
	body = malloc(strlen(csr) + 128);
	sprintf(body, "{\"renewal\":{\"certificateRequest\":\"%s\"}}", csr);
	post(&c, "Registration/renewCertificate", body, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(hub_json_str(value(&r), "connectorId"), c.id);
	n = EVP_DecodeBlock(der, (const unsigned char *)hub_json_str(value(&r), "certificate"),
	    (int)strlen(hub_json_str(value(&r), "certificate")));
	p = der;
	x = d2i_X509(NULL, &p, n);
	assert_non_null(x);
	snprintf(c.cert, sizeof(c.cert), "%s/renewed.pem", H.dir);
	f = fopen(c.cert, "w");
	PEM_write_X509(f, x);
	fclose(f);
	X509_free(x);
	hub_resp_free(&r);
	/* both certificates work; the replaced one cannot renew */
	post(&c, "ConnectorRequests/downloadRequests", dl, &r);
	assert_int_equal(r.status, 200);
	hub_resp_free(&r);
	post(&old, "ConnectorRequests/downloadRequests", dl, &r);
	assert_int_equal(r.status, 200);
	hub_resp_free(&r);
	post(&old, "Registration/renewCertificate", body, &r);
	expect_error(&r, 401, "Unauthenticated");
	hub_resp_free(&r);
	/* a second renewal retires the first certificate altogether */
	post(&c, "Registration/renewCertificate", body, &r);
	assert_int_equal(r.status, 200);
	hub_resp_free(&r);
	post(&old, "ConnectorRequests/downloadRequests", dl, &r);
	expect_error(&r, 401, "Unauthenticated");
	hub_resp_free(&r);
	free(body);
	free(csr);
}

/* ---- admin API ---- */

static void
test_admin(void **state)
{
	struct hub_resp r;

	(void)state;
	assert_int_equal(hub_admin(&H, "POST", "tenants", "{\"tenant\":{\"tenantId\":\"t-adm\","
	    "\"displayName\":\"One\"}}", &r), 0);
	assert_int_equal(r.status, 201);
	hub_resp_free(&r);
	hub_admin(&H, "POST", "tenants", "{\"tenant\":{\"tenantId\":\"t-adm\",\"displayName\":"
	    "\"One\"}}", &r);
	assert_int_equal(r.status, 200);
	hub_resp_free(&r);
	hub_admin(&H, "POST", "tenants", "{\"tenant\":{\"tenantId\":\"t-adm\",\"displayName\":"
	    "\"Two\"}}", &r);
	expect_error(&r, 409, "Conflict");
	hub_resp_free(&r);
	hub_admin(&H, "POST", "tenants", "{\"tenant\":{\"tenantId\":\"bad id\"}}", &r);
	expect_error(&r, 400, "InvalidParameter");
	hub_resp_free(&r);
	hub_admin(&H, "POST", "enrollmentTokens", "{\"enrollmentToken\":{\"tenantId\":\"nobody\"}}",
	    &r);
	expect_error(&r, 404, "NotFound");
	hub_resp_free(&r);
	hub_admin(&H, "POST", "enrollmentTokens", "{\"enrollmentToken\":{\"tenantId\":\"t-adm\","
	    "\"validHours\":721}}", &r);
	expect_error(&r, 400, "InvalidParameter");
	hub_resp_free(&r);
	/* queueing: payload rules, idempotency by requestId */
	hub_admin(&H, "POST", "requests", "{\"request\":{\"tenantId\":\"t-adm\",\"feature\":"
	    "\"pkcs\",\"payload\":{\"deviceId\":\"d\"}}}", &r);
	expect_error(&r, 400, "InvalidParameter"); /* no device key */
	hub_resp_free(&r);
	hub_admin(&H, "POST", "requests", "{\"request\":{\"tenantId\":\"t-adm\",\"feature\":"
	    "\"pfx-import\",\"payload\":{\"pfx\":\"A\",\"encryptedPassword\":\"B\",\"paddingScheme\":"
	    "\"Pkcs1\",\"devicePublicKey\":\"C\"}}}", &r);
	expect_error(&r, 400, "InvalidParameter");
	hub_resp_free(&r);
	hub_admin(&H, "POST", "requests", "{\"request\":{\"tenantId\":\"t-adm\",\"feature\":"
	    "\"revoke\",\"payload\":{\"serialNumber\":\"01\"},\"requestId\":\"rq-1\"}}", &r);
	assert_int_equal(r.status, 201);
	assert_string_equal(hub_json_str(value(&r), "state"), "queued");
	hub_resp_free(&r);
	hub_admin(&H, "POST", "requests", "{\"request\":{\"tenantId\":\"t-adm\",\"feature\":"
	    "\"revoke\",\"payload\":{\"serialNumber\":\"01\"},\"requestId\":\"rq-1\"}}", &r);
	assert_int_equal(r.status, 200);
	hub_resp_free(&r);
	hub_admin(&H, "POST", "requests", "{\"request\":{\"tenantId\":\"t-adm\",\"feature\":"
	    "\"revoke\",\"payload\":{\"serialNumber\":\"02\"},\"requestId\":\"rq-1\"}}", &r);
	expect_error(&r, 409, "Conflict");
	hub_resp_free(&r);
	hub_admin(&H, "POST", "requests", "{\"request\":{\"tenantId\":\"nobody\",\"feature\":"
	    "\"scep\",\"payload\":{\"type\":\"x\"}}}", &r);
	expect_error(&r, 404, "NotFound");
	hub_resp_free(&r);
	hub_admin(&H, "GET", "requests?tenantId=t-adm&feature=revoke&state=queued", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(cJSON_GetArraySize(value(&r)), 1);
	hub_resp_free(&r);
	hub_admin(&H, "GET", "requests?state=bogus", NULL, &r);
	expect_error(&r, 400, "InvalidParameter");
	hub_resp_free(&r);
	hub_admin(&H, "GET", "requests/does-not-exist", NULL, &r);
	expect_error(&r, 404, "NotFound");
	hub_resp_free(&r);
	hub_admin(&H, "GET", "requests/rq-1", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(hub_json_str(cJSON_GetObjectItem(value(&r), "payload"),
	    "serialNumber"), "01");
	hub_resp_free(&r);
	/* versions and tenants */
	hub_admin(&H, "POST", "versions", "{\"version\":{\"version\":\"0.3.0\",\"releasedUtc\":"
	    "\"2099-01-01T00:00:00Z\"}}", &r);
	assert_int_equal(r.status, 201);
	hub_resp_free(&r);
	hub_admin(&H, "POST", "versions", "{\"version\":{\"version\":\"x\",\"releasedUtc\":"
	    "\"2099-01-01\"}}", &r);
	expect_error(&r, 400, "InvalidParameter");
	hub_resp_free(&r);
	hub_admin(&H, "GET", "versions", NULL, &r);
	assert_int_equal(cJSON_GetArraySize(value(&r)), 3);
	hub_resp_free(&r);
	hub_admin(&H, "GET", "tenants", NULL, &r);
	assert_non_null(strstr(r.body, "\"tenantId\":\"t-adm\""));
	hub_resp_free(&r);
	hub_admin(&H, "DELETE", "tenants", NULL, &r);
	expect_error(&r, 405, "MethodNotAllowed");
	hub_resp_free(&r);
	hub_admin(&H, "GET", "nothing-here", NULL, &r);
	expect_error(&r, 404, "NotFound");
	hub_resp_free(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_headers),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_register),
		cmocka_unit_test(test_auth),
		cmocka_unit_test(test_queue),
		cmocka_unit_test(test_revocation),
		cmocka_unit_test(test_scep),
		cmocka_unit_test(test_health),
		cmocka_unit_test(test_renew),
		cmocka_unit_test(test_admin),
		cmocka_unit_test(test_tenant_limit),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
