/*
 * The hub's protocol handler driven directly (hub_handle), with a real SQLite store, a real
 * CA key in a SoftHSM2 token and a clock the test moves: everything that depends on time
 * without waiting for it (token, lease and challenge expiry, attempts used up, unhealthy
 * marking, the lifecycle of a running connector and the blocking of a version past its 18
 * months, mixed versions in a tenant), and the store's schema migrations. Also the PFX import
 * (connectors' pfx keys from health messages, the password encrypted to them with RSA-OAEP
 * through certconn/pkcs.h and decrypted here with plain OpenSSL and the real private key,
 * targeting, refusals) and a queued request's
 * round trip through the admin API.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pkcs12.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <sqlite3.h>

#include "hub.h"
#include "hub_ca.h"
#include "hub_harness.h"
#include "store.h"
#include "test_token.h"

#define ADMIN "admin-token-for-unit-tests"

static struct test_token *tok;
static struct hub_conf conf;
static struct hub H;
static int64_t now;

static int64_t
clock_fn(void *arg)
{
	(void)arg;
	return now;
}

static int64_t
T(const char *s)
{
	int64_t t = 0;

	assert_int_equal(hub_time_parse(s, &t), 0);
	return t;
}

static int
setup(void **state)
{
	static const struct hsm_role_spec roles[] = { { "ca", HSM_KEY_EC, 0, "P-256",
		HSM_USE_SIGN } };
	unsigned int len;

	(void)state;
	tok = test_token_new("hubunit", "2468", roles, 1);
	if (tok == NULL)
		return -1;
	H.ca = hub_ca_open(tok->module, tok->module_env, test_token_uri(tok, "ca"), tok->pin_file,
	    tok->ca_pem);
	if (H.ca == NULL)
		return -1;
	EVP_Digest(ADMIN, strlen(ADMIN), H.admin_hash, &len, EVP_sha256(), NULL);
	H.has_admin = true;
	H.clock = clock_fn;
	H.conf = &conf;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	hub_ca_close(H.ca);
	test_token_free(tok);
	return 0;
}

/* A fresh hub state for each test: in-memory store, default config, clock at 2025-01-01. */
static int
each(void **state)
{
	(void)state;
	memset(&conf, 0, sizeof(conf));
	conf.client_cert_days = 365;
	conf.health_interval_s = 60;
	conf.max_connectors = 100;
	conf.lease_default_s = 300;
	conf.lease_min_s = 30;
	conf.lease_max_s = 3600;
	conf.max_attempts = 10;
	conf.support_months = 6;
	conf.block_months = 18;
	conf.max_body_bytes = HUB_BODY_MAX_DEFAULT;
	H.store = hub_store_sqlite_open(":memory:");
	now = T("2025-01-01T00:00:00Z");
	return H.store != NULL ? 0 : -1;
}

static int
each_done(void **state)
{
	(void)state;
	H.store->ops->close(H.store);
	H.store = NULL;
	return 0;
}

/* One call. peer NULL: no certificate; admin: with the admin token. */
static cJSON *
call(const char *method, const char *path, const struct hub_peer *peer, bool admin,
    const char *api_version, const char *body, int *status)
{
	struct hub_call c;
	struct hub_reply r;
	cJSON *j;

	memset(&c, 0, sizeof(c));
	c.method = strcmp(method, "GET") == 0 ? HUB_M_GET : HUB_M_POST;
	c.path = path;
	c.query = strchr(path, '?') ? strchr(path, '?') + 1 : NULL;
	{
		static char p[512];
		snprintf(p, sizeof(p), "%.*s", (int)strcspn(path, "?"), path);
		c.path = p;
	}
	c.api_version = api_version;
	c.client_request_id = "unit-1";
	c.authorization = admin ? "Bearer " ADMIN : NULL;
	c.content_type = "application/json";
	c.body = body;
	c.body_len = body != NULL ? strlen(body) : 0;
	if (peer != NULL)
		c.peer = *peer;
	hub_handle(&H, &c, &r);
	*status = r.status;
	j = r.body != NULL ? cJSON_Parse(r.body) : NULL;
	if (r.status >= 400 && getenv("HUB_UNIT_VERBOSE"))
		fprintf(stderr, "%s %s -> %d %s\n", method, path, r.status, r.body);
	hub_reply_free(&r);
	return j;
}

static cJSON *
admin(const char *method, const char *path, const char *body, int *status)
{
	return call(method, path, NULL, true, "1.0", body, status);
}

static const cJSON *
V(const cJSON *j)
{
	return cJSON_GetObjectItemCaseSensitive(j, "value");
}

static const char *
S(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const char *
ecode(const cJSON *j)
{
	return S(cJSON_GetObjectItemCaseSensitive(j, "error"), "code");
}

static void
make_token(const char *tenant, int hours, char *out, size_t len)
{
	char body[256];
	int st;
	cJSON *j;

	snprintf(body, sizeof(body), "{\"tenant\":{\"tenantId\":\"%s\"}}", tenant);
	cJSON_Delete(admin("POST", "/admin/tenants", body, &st));
	snprintf(body, sizeof(body), "{\"enrollmentToken\":{\"tenantId\":\"%s\",\"validHours\":%d}}",
	    tenant, hours);
	j = admin("POST", "/admin/enrollmentTokens", body, &st);
	assert_int_equal(st, 201);
	snprintf(out, len, "%s", S(V(j), "token"));
	cJSON_Delete(j);
}

static int
try_register(const char *token, const char *features, const char *version, struct hub_peer *p,
    cJSON **out)
{
	char *csr = hub_test_csr(NULL, 0, "CN=x", NULL, NULL), *body;
	int st;
	cJSON *j;

	body = malloc(strlen(csr) + 512);
	sprintf(body, "{\"registration\":{\"enrollmentToken\":\"%s\",\"certificateRequest\":"
	    "\"%s\",\"version\":\"%s\",\"features\":%s}}", token, csr, version, features);
	j = call("POST", "/api/Registration/register", NULL, false, "1.0", body, &st);
	free(body);
	free(csr);
	if (st == 201 && p != NULL) {
		const char *b64 = S(V(j), "certificate");
		unsigned char *der = malloc(strlen(b64));
		const unsigned char *q = der;
		int n = EVP_DecodeBlock(der, (const unsigned char *)b64, (int)strlen(b64));
		X509 *x = d2i_X509(NULL, &q, n);

		assert_non_null(x);
		assert_int_equal(hub_cert_identity(x, p), 0);
		X509_free(x);
		free(der);
	}
	if (out != NULL)
		*out = j;
	else
		cJSON_Delete(j);
	return st;
}

static void
reg(const char *tenant, const char *features, const char *version, struct hub_peer *p)
{
	char token[128];

	make_token(tenant, 24, token, sizeof(token));
	assert_int_equal(try_register(token, features, version, p, NULL), 201);
}

static cJSON *
cpost(const struct hub_peer *p, const char *path, const char *body, int *st)
{
	return call("POST", path, p, false, "1.0", body, st);
}

static int
lease(const struct hub_peer *p, const char *feature, int lease_s, char *id, size_t idlen)
{
	char body[256];
	int st, n;
	cJSON *j;

	snprintf(body, sizeof(body), "{\"downloadParameters\":{\"feature\":\"%s\","
	    "\"maxRequests\":10,\"leaseSeconds\":%d}}", feature, lease_s);
	j = cpost(p, "/api/ConnectorRequests/downloadRequests", body, &st);
	assert_int_equal(st, 200);
	n = cJSON_GetArraySize(V(j));
	if (n > 0 && id != NULL)
		snprintf(id, idlen, "%s", S(cJSON_GetArrayItem(V(j), 0), "requestId"));
	cJSON_Delete(j);
	return n;
}

static const char *
health(const struct hub_peer *p, const char *version, const char *features, int *st)
{
	static char status[32];
	char body[512];
	cJSON *j;

	snprintf(body, sizeof(body), "{\"healthMessage\":{\"version\":\"%s\",\"features\":%s,"
	    "\"uptimeSeconds\":5,\"tokenState\":\"ok\"}}", version, features);
	j = cpost(p, "/api/ConnectorHealth/uploadHealthMessage", body, st);
	snprintf(status, sizeof(status), "%s", *st == 200 ?
	    S(cJSON_GetObjectItem(V(j), "lifecycle"), "status") : "-");
	cJSON_Delete(j);
	return status;
}

/* ---- tests ---- */

static void
test_token_expiry(void **state)
{
	char token[128];

	(void)state;
	make_token("t1", 1, token, sizeof(token));
	now += 3600;  /* exactly at expiry: expired */
	assert_int_equal(try_register(token, "[\"pkcs\"]", "1.0.0", NULL, NULL), 401);
	now -= 1;
	assert_int_equal(try_register(token, "[\"pkcs\"]", "1.0.0", NULL, NULL), 201);
	assert_int_equal(try_register(token, "[\"pkcs\"]", "1.0.0", NULL, NULL), 401);
}

static void
test_leases_and_attempts(void **state)
{
	struct hub_peer a, b;
	char id[80], id2[80];
	int st;
	cJSON *j;

	(void)state;
	conf.max_attempts = 2;
	reg("t1", "[\"pkcs\"]", "1.0.0", &a);
	reg("t1", "[\"pkcs\"]", "1.0.0", &b);
	cJSON_Delete(admin("POST", "/admin/requests", "{\"request\":{\"tenantId\":\"t1\","
	    "\"feature\":\"pkcs\",\"requestId\":\"r1\",\"payload\":{\"deviceId\":\"d\","
	    "\"devicePublicKey\":\"AAAA\"}}}", &st));
	assert_int_equal(st, 201);
	assert_int_equal(lease(&a, "pkcs", 30, id, sizeof(id)), 1);
	assert_string_equal(id, "r1");
	/* invisible while the lease runs, also one second before it ends */
	now += 29;
	assert_int_equal(lease(&b, "pkcs", 30, NULL, 0), 0);
	/* expired: b takes it (attempt 2); a's extension is a lost lease */
	now += 1;
	assert_int_equal(lease(&b, "pkcs", 30, id2, sizeof(id2)), 1);
	j = cpost(&a, "/api/ConnectorRequests/extendLeases", "{\"leaseParameters\":"
	    "{\"requestIds\":[\"r1\"]}}", &st);
	assert_string_equal(S(cJSON_GetArrayItem(V(j), 0), "status"), "LeaseLost");
	cJSON_Delete(j);
	/* b extends, then lets it expire: with 2 attempts used it fails for good */
	j = cpost(&b, "/api/ConnectorRequests/extendLeases", "{\"leaseParameters\":"
	    "{\"requestIds\":[\"r1\"],\"leaseSeconds\":60}}", &st);
	assert_string_equal(S(cJSON_GetArrayItem(V(j), 0), "status"), "Extended");
	cJSON_Delete(j);
	now += 59;
	assert_int_equal(lease(&a, "pkcs", 30, NULL, 0), 0);
	now += 1;
	assert_int_equal(lease(&a, "pkcs", 30, NULL, 0), 0);
	j = admin("GET", "/admin/requests/r1", NULL, &st);
	assert_int_equal(st, 200);
	assert_string_equal(S(V(j), "state"), "failed");
	assert_int_equal(cJSON_GetObjectItem(V(j), "errorCode")->valueint, 4100);
	assert_int_equal(cJSON_GetObjectItem(V(j), "attempt")->valueint, 2);
	cJSON_Delete(j);
	/* a late result from b, which held the last lease, is still the one recorded */
	j = cpost(&b, "/api/ConnectorRequests/uploadResults", "{\"results\":[{\"requestId\":"
	    "\"r1\",\"succeeded\":true,\"errorCode\":0}]}", &st);
	assert_string_equal(S(cJSON_GetArrayItem(V(j), 0), "status"), "AlreadyCompleted");
	cJSON_Delete(j);
}

static void
test_retryable_uses_attempts(void **state)
{
	struct hub_peer a;
	int st;
	cJSON *j;

	(void)state;
	conf.max_attempts = 2;
	reg("t1", "[\"revoke\"]", "1.0.0", &a);
	cJSON_Delete(admin("POST", "/admin/requests", "{\"request\":{\"tenantId\":\"t1\","
	    "\"feature\":\"revoke\",\"requestId\":\"rv\",\"payload\":{\"serialNumber\":\"01\"}}}",
	    &st));
	for (int attempt = 1; attempt <= 2; attempt++) {
		assert_int_equal(lease(&a, "revoke", 30, NULL, 0), 1);
		j = cpost(&a, "/api/ConnectorRequests/uploadResults", "{\"results\":[{\"requestId\":"
		    "\"rv\",\"succeeded\":false,\"errorCode\":4101,\"errorMessage\":\"CA down\"}]}",
		    &st);
		/* the last attempt's retryable failure is final */
		assert_string_equal(S(cJSON_GetArrayItem(V(j), 0), "status"),
		    attempt < 2 ? "Requeued" : "Recorded");
		cJSON_Delete(j);
	}
	assert_int_equal(lease(&a, "revoke", 30, NULL, 0), 0);
}

static void
test_challenge_expiry(void **state)
{
	struct hub_peer a;
	char *csr, body[8192];
	const char *ch;
	int st;
	cJSON *j, *c;

	(void)state;
	reg("t1", "[\"scep\"]", "1.0.0", &a);
	c = admin("POST", "/admin/scepChallenges", "{\"challenge\":{\"tenantId\":\"t1\","
	    "\"validMinutes\":1}}", &st);
	assert_int_equal(st, 201);
	ch = S(V(c), "challenge");
	csr = hub_test_csr(NULL, 0, "CN=dev", ch, NULL);
	snprintf(body, sizeof(body), "{\"request\":{\"transactionId\":\"tx\","
	    "\"certificateRequest\":\"%s\"}}", csr);
	now += 60;
	j = call("POST", "/api/ScepActions/validateRequest", &a, false, "2018-02-20", body, &st);
	assert_int_equal(st, 200);
	assert_string_equal(S(j, "code"), "ChallengeExpired");
	cJSON_Delete(j);
	now -= 1;
	j = call("POST", "/api/ScepActions/validateRequest", &a, false, "2018-02-20", body, &st);
	assert_string_equal(S(j, "code"), "Success");
	cJSON_Delete(j);
	/* another tenant's connector does not know this challenge at all */
	{
		struct hub_peer b;
		reg("t2", "[\"scep\"]", "1.0.0", &b);
		j = call("POST", "/api/ScepActions/validateRequest", &b, false, "2018-02-20", body,
		    &st);
		assert_string_equal(S(j, "code"), "ChallengeDecodingError");
		cJSON_Delete(j);
	}
	free(csr);
	cJSON_Delete(c);
}

static const char *
conn_field(const char *id, const char *field)
{
	static char out[64];
	int st;
	cJSON *j = admin("GET", "/admin/connectors", NULL, &st), *c;

	out[0] = '\0';
	cJSON_ArrayForEach(c, V(j))
		if (strcmp(S(c, "connectorId"), id) == 0) {
			const cJSON *v = cJSON_GetObjectItem(c, field);
			if (cJSON_IsString(v))
				snprintf(out, sizeof(out), "%s", v->valuestring);
			else if (cJSON_IsBool(v))
				snprintf(out, sizeof(out), "%s", cJSON_IsTrue(v) ? "true" : "false");
			else if (cJSON_IsObject(v))
				snprintf(out, sizeof(out), "%s", S(v, "status"));
		}
	cJSON_Delete(j);
	return out;
}

static void
test_unhealthy(void **state)
{
	struct hub_peer a;
	int st;

	(void)state;
	reg("t1", "[\"pkcs\"]", "1.0.0", &a);
	assert_string_equal(conn_field(a.connector, "health"), "unknown");
	health(&a, "1.0.0", "[\"pkcs\"]", &st);
	assert_int_equal(st, 200);
	assert_string_equal(conn_field(a.connector, "health"), "healthy");
	now += 180;  /* three intervals of 60 s */
	assert_string_equal(conn_field(a.connector, "health"), "healthy");
	now += 1;
	assert_string_equal(conn_field(a.connector, "health"), "unhealthy");
	health(&a, "1.0.0", "[\"pkcs\"]", &st);
	assert_string_equal(conn_field(a.connector, "health"), "healthy");
	/* a configured threshold */
	conf.unhealthy_after_s = 30;
	now += 31;
	assert_string_equal(conn_field(a.connector, "health"), "unhealthy");
}

static void
test_lifecycle_running(void **state)
{
	struct hub_peer a;
	char body[256];
	int st;
	cJSON *j;

	(void)state;
	conf.refuse_blocked = true;
	cJSON_Delete(admin("POST", "/admin/versions", "{\"version\":{\"version\":\"1.0.0\","
	    "\"releasedUtc\":\"2024-06-01\"}}", &st));
	reg("t1", "[\"pkcs\"]", "1.0.0", &a);
	assert_string_equal(health(&a, "1.0.0", "[\"pkcs\"]", &st), "supported");
	/* 1.1.0 is released on 2025-01-15: 1.0.0 is deprecated (warning) */
	cJSON_Delete(admin("POST", "/admin/versions", "{\"version\":{\"version\":\"1.1.0\","
	    "\"releasedUtc\":\"2025-01-15\"}}", &st));
	assert_string_equal(health(&a, "1.0.0", "[\"pkcs\"]", &st), "supported");
	now = T("2025-01-15T00:00:00Z");
	assert_string_equal(health(&a, "1.0.0", "[\"pkcs\"]", &st), "warning");
	assert_string_equal(conn_field(a.connector, "lifecycle"), "warning");
	now = T("2025-07-15T00:00:00Z");
	assert_string_equal(health(&a, "1.0.0", "[\"pkcs\"]", &st), "error");
	/* still served while in error */
	assert_int_equal(lease(&a, "pkcs", 30, NULL, 0), 0);
	now = T("2026-07-15T00:00:00Z");
	assert_string_equal(health(&a, "1.0.0", "[\"pkcs\"]", &st), "blocked");
	assert_int_equal(st, 200); /* health still reaches the hub */
	snprintf(body, sizeof(body), "{\"downloadParameters\":{\"feature\":\"pkcs\","
	    "\"maxRequests\":1}}");
	j = cpost(&a, "/api/ConnectorRequests/downloadRequests", body, &st);
	assert_int_equal(st, 403);
	assert_string_equal(ecode(j), "VersionBlocked");
	cJSON_Delete(j);
	/* the update: the same connector on 1.1.0 is supported and served again */
	assert_string_equal(health(&a, "1.1.0", "[\"pkcs\"]", &st), "supported");
	assert_int_equal(lease(&a, "pkcs", 30, NULL, 0), 0);
	/* without refuse_blocked the blocked status is only reported */
	conf.refuse_blocked = false;
	assert_string_equal(health(&a, "1.0.0", "[\"pkcs\"]", &st), "blocked");
	assert_int_equal(lease(&a, "pkcs", 30, NULL, 0), 0);
}

static void
test_mixed_versions(void **state)
{
	struct hub_peer a, b, c;
	int st;
	cJSON *j, *t;
	bool t1 = false, t2 = false;

	(void)state;
	reg("t1", "[\"pkcs\"]", "1.0.0", &a);
	reg("t1", "[\"scep\"]", "1.0.0", &b);
	reg("t2", "[\"pkcs\"]", "1.0.0", &c);
	assert_string_equal(conn_field(a.connector, "mixedVersions"), "false");
	health(&b, "1.1.0", "[\"scep\"]", &st);
	assert_string_equal(conn_field(a.connector, "mixedVersions"), "true");
	assert_string_equal(conn_field(b.connector, "mixedVersions"), "true");
	assert_string_equal(conn_field(c.connector, "mixedVersions"), "false");
	j = admin("GET", "/admin/tenants", NULL, &st);
	cJSON_ArrayForEach(t, V(j)) {
		if (strcmp(S(t, "tenantId"), "t1") == 0)
			t1 = cJSON_IsTrue(cJSON_GetObjectItem(t, "mixedVersions"));
		if (strcmp(S(t, "tenantId"), "t2") == 0)
			t2 = cJSON_IsTrue(cJSON_GetObjectItem(t, "mixedVersions"));
	}
	cJSON_Delete(j);
	assert_true(t1);
	assert_false(t2);
	/* a disabled connector does not count */
	{
		char body[200];
		snprintf(body, sizeof(body), "{\"connector\":{\"connectorId\":\"%s\"}}", b.connector);
		cJSON_Delete(admin("POST", "/admin/connectors/disable", body, &st));
		assert_int_equal(st, 200);
	}
	assert_string_equal(conn_field(a.connector, "mixedVersions"), "false");
}

/* ---- PFX import ---- */

static char *
b64_of(const unsigned char *der, int n)
{
	char *o = malloc((size_t)(n + 2) / 3 * 4 + 1);

	assert_non_null(o);
	EVP_EncodeBlock((unsigned char *)o, der, n);
	return o;
}

static char *
spki_b64(EVP_PKEY *k)
{
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(k, &der);
	char *o;

	assert_true(n > 0);
	o = b64_of(der, n);
	OPENSSL_free(der);
	return o;
}

/* A PKCS#12 (key and self-signed certificate) protected by password, base64. */
static char *
make_pfx(const char *password)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	PKCS12 *p12;
	unsigned char *der = NULL;
	char *o;
	int n;

	assert_non_null(k);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	    (const unsigned char *)"smime user", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, k);
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	p12 = PKCS12_create(password, "smime", k, x, NULL, 0, 0, 0, 0, 0);
	assert_non_null(p12);
	n = i2d_PKCS12(p12, &der);
	assert_true(n > 0);
	o = b64_of(der, n);
	OPENSSL_free(der);
	PKCS12_free(p12);
	X509_free(x);
	EVP_PKEY_free(k);
	return o;
}

static int
health_pfx(const struct hub_peer *p, const char *features, const char *spki, const char *name)
{
	char *body = malloc(strlen(spki) + 512);
	int st;

	sprintf(body, "{\"healthMessage\":{\"version\":\"1.0.0\",\"features\":%s,"
	    "\"uptimeSeconds\":5,\"tokenState\":\"ok\",\"caReachable\":true,"
	    "\"pfxKey\":{\"publicKey\":\"%s\",\"keyName\":\"%s\"}}}", features, spki, name);
	cJSON_Delete(cpost(p, "/api/ConnectorHealth/uploadHealthMessage", body, &st));
	free(body);
	return st;
}

/* POST admin/pfxImports; extra: more members (",\"connectorId\":..."). */
static cJSON *
pfx_import(const char *pfx, const char *password, const char *extra, const char *device,
    int *st)
{
	char *body = malloc(strlen(pfx) + strlen(device) + 1024);
	cJSON *j;

	sprintf(body, "{\"pfxImport\":{\"tenantId\":\"t1\",\"pfx\":\"%s\",\"password\":"
	    "\"%s\",\"devicePublicKey\":\"%s\",\"deviceId\":\"dev-1\"%s}}", pfx, password,
	    device, extra);
	j = admin("POST", "/admin/pfxImports", body, st);
	free(body);
	return j;
}

/* Leases one pfx-import request as p; its payload (caller frees) or NULL when none. */
static cJSON *
lease_pfx(const struct hub_peer *p)
{
	int st;
	cJSON *j = cpost(p, "/api/ConnectorRequests/downloadRequests", "{\"downloadParameters\":"
	    "{\"feature\":\"pfx-import\",\"maxRequests\":1}}", &st), *out = NULL;

	assert_int_equal(st, 200);
	if (cJSON_GetArraySize(V(j)) == 1)
		out = cJSON_DetachItemFromObject(cJSON_GetArrayItem(V(j), 0), "payload");
	cJSON_Delete(j);
	return out;
}

/* RSA-OAEP decryption of the payload's encryptedPassword with k and digest md; the
 * plaintext (static) or NULL when it does not decrypt. */
static const char *
oaep_decrypt(EVP_PKEY *k, const cJSON *payload, const char *md)
{
	static char out[600];
	const char *b64 = S(payload, "encryptedPassword");
	unsigned char ct[1024];
	size_t len = sizeof(out) - 1;
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(k, NULL);
	int n, ok;

	assert_non_null(b64);
	assert_true(strlen(b64) < 1300);
	n = EVP_DecodeBlock(ct, (const unsigned char *)b64, (int)strlen(b64));
	/* DecodeBlock counts the bytes that the '=' padding stands for */
	n -= (int)(strlen(b64) - strcspn(b64, "="));
	assert_int_equal(n, 256);  /* an RSA-2048 ciphertext */
	ok = c != NULL && EVP_PKEY_decrypt_init(c) > 0 &&
	    EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING) > 0 &&
	    EVP_PKEY_CTX_set_rsa_oaep_md(c, EVP_get_digestbyname(md)) > 0 &&
	    EVP_PKEY_CTX_set_rsa_mgf1_md(c, EVP_get_digestbyname(md)) > 0 &&
	    EVP_PKEY_decrypt(c, (unsigned char *)out, &len, ct, 256) > 0;
	EVP_PKEY_CTX_free(c);
	if (!ok)
		return NULL;
	out[len] = '\0';
	return out;
}

static void
test_pfx_import(void **state)
{
	struct hub_peer a, b, c2;
	EVP_PKEY *ka = EVP_RSA_gen(2048), *kb = EVP_RSA_gen(2048), *ec = EVP_EC_gen("P-256");
	EVP_PKEY *dev = EVP_EC_gen("P-256");
	char *sa = spki_b64(ka), *sb = spki_b64(kb), *sec = spki_b64(ec), *sdev = spki_b64(dev);
	char *pfx = make_pfx("Secret-123"), extra[256], id1[80];
	const char *pt;
	cJSON *j, *pl;
	int st;

	(void)state;
	reg("t1", "[\"pfx-import\"]", "1.0.0", &a);
	reg("t1", "[\"pfx-import\",\"pkcs\"]", "1.0.0", &b);
	reg("t2", "[\"pfx-import\"]", "1.0.0", &c2);
	/* nobody has reported a key: nothing to encrypt to */
	j = pfx_import(pfx, "Secret-123", "", sdev, &st);
	assert_int_equal(st, 409);
	assert_string_equal(ecode(j), "Conflict");
	cJSON_Delete(j);
	/* health messages bring the keys; an EC key or garbage is refused */
	assert_int_equal(health_pfx(&a, "[\"pfx-import\"]", sec, "pfx:ec"), 400);
	assert_int_equal(health_pfx(&a, "[\"pfx-import\"]", "AAAA", "pfx:x"), 400);
	assert_int_equal(health_pfx(&a, "[\"pfx-import\"]", sa, ""), 400);
	assert_string_equal(conn_field(a.connector, "pfxKey"), "");
	assert_int_equal(health_pfx(&a, "[\"pfx-import\"]", sa, "pfx:aaaa"), 200);
	j = admin("GET", "/admin/connectors?tenantId=t1", NULL, &st);
	{
		const cJSON *c;
		int seen = 0;
		cJSON_ArrayForEach(c, V(j)) {
			const cJSON *pk = cJSON_GetObjectItem(c, "pfxKey");
			if (strcmp(S(c, "connectorId"), a.connector) == 0) {
				assert_string_equal(S(pk, "publicKey"), sa);
				assert_string_equal(S(pk, "keyName"), "pfx:aaaa");
				assert_string_equal(S(pk, "updatedUtc"), "2025-01-01T00:00:00Z");
				seen++;
			} else {
				assert_true(cJSON_IsNull(pk));
			}
		}
		assert_int_equal(seen, 1);
	}
	cJSON_Delete(j);
	/* b (pfx-import too) has not reported its key: the tenant-wide form is refused */
	j = pfx_import(pfx, "Secret-123", "", sdev, &st);
	assert_int_equal(st, 409);
	cJSON_Delete(j);
	/* b reports another key: still refused without a connector ... */
	assert_int_equal(health_pfx(&b, "[\"pfx-import\"]", sb, "pfx:bbbb"), 200);
	j = pfx_import(pfx, "Secret-123", "", sdev, &st);
	assert_int_equal(st, 409);
	cJSON_Delete(j);
	/* ... and accepted for a, with the default OAEP-SHA512; only a may lease it */
	snprintf(extra, sizeof(extra), ",\"connectorId\":\"%s\",\"requestId\":\"imp-1\"",
	    a.connector);
	j = pfx_import(pfx, "Secret-123", extra, sdev, &st);
	assert_int_equal(st, 201);
	assert_string_equal(S(V(j), "requestId"), "imp-1");
	assert_string_equal(S(V(j), "targetConnector"), a.connector);
	assert_string_equal(S(V(j), "feature"), "pfx-import");
	cJSON_Delete(j);
	/* the same requestId again is the same request */
	j = pfx_import(pfx, "Secret-123", extra, sdev, &st);
	assert_int_equal(st, 200);
	cJSON_Delete(j);
	assert_null(lease_pfx(&b));
	pl = lease_pfx(&a);
	assert_non_null(pl);
	assert_string_equal(S(pl, "paddingScheme"), "OaepSha512");
	assert_string_equal(S(pl, "keyName"), "pfx:aaaa");
	assert_string_equal(S(pl, "pfx"), pfx);
	assert_string_equal(S(pl, "devicePublicKey"), sdev);
	assert_string_equal(S(pl, "deviceId"), "dev-1");
	assert_null(cJSON_GetObjectItem(pl, "password"));
	pt = oaep_decrypt(ka, pl, "SHA512");
	assert_non_null(pt);
	assert_string_equal(pt, "Secret-123");
	assert_null(oaep_decrypt(ka, pl, "SHA256"));   /* the padding scheme is what it says */
	assert_null(oaep_decrypt(kb, pl, "SHA512"));   /* and the key is a's */
	cJSON_Delete(pl);
	/* b now reports a's key (shared pfx key): the tenant-wide form works, any may lease */
	assert_int_equal(health_pfx(&b, "[\"pfx-import\"]", sa, "pfx:aaaa"), 200);
	j = pfx_import(pfx, "Secret-123", ",\"paddingScheme\":\"OaepSha256\"", sdev, &st);
	assert_int_equal(st, 201);
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(V(j), "targetConnector")));
	snprintf(id1, sizeof(id1), "%s", S(V(j), "requestId"));
	cJSON_Delete(j);
	pl = lease_pfx(&b);
	assert_non_null(pl);
	assert_string_equal(S(pl, "paddingScheme"), "OaepSha256");
	assert_string_equal(oaep_decrypt(ka, pl, "SHA256"), "Secret-123");
	cJSON_Delete(pl);
	j = pfx_import(pfx, "Secret-123", ",\"paddingScheme\":\"OaepSha384\"", sdev, &st);
	assert_int_equal(st, 201);
	cJSON_Delete(j);
	pl = lease_pfx(&a);
	assert_string_equal(oaep_decrypt(ka, pl, "SHA384"), "Secret-123");
	cJSON_Delete(pl);
	/* one byte per character: U+00E4 is the byte 0xE4 (the form of certconn/pkcs.h) */
	j = pfx_import(pfx, "p\u00e4ss", ",\"verifyPassword\":false", sdev, &st);
	assert_int_equal(st, 201);
	cJSON_Delete(j);
	pl = lease_pfx(&b);
	assert_non_null(pl);
	assert_string_equal(oaep_decrypt(ka, pl, "SHA512"), "p\xe4ss");
	cJSON_Delete(pl);
	/* refusals */
	j = pfx_import(pfx, "Wrong-pass", "", sdev, &st);       /* the MAC says no */
	assert_int_equal(st, 400);
	assert_string_equal(ecode(j), "InvalidParameter");
	cJSON_Delete(j);
	j = pfx_import(pfx, "Secret-123", ",\"paddingScheme\":\"OaepSha1\"", sdev, &st);
	assert_int_equal(st, 400);
	cJSON_Delete(j);
	j = pfx_import("bm90IGEgcGZ4", "Secret-123", "", sdev, &st);   /* "not a pfx" */
	assert_int_equal(st, 400);
	cJSON_Delete(j);
	j = pfx_import(pfx, "Secret-123", ",\"deviceCertificate\":\"AAAA\"", sdev, &st);
	assert_int_equal(st, 400);
	cJSON_Delete(j);
	j = pfx_import(pfx, "Secret-123", ",\"surprise\":1", sdev, &st);
	assert_int_equal(st, 400);
	assert_string_equal(ecode(j), "MalformedRequest");
	cJSON_Delete(j);
	/* a character beyond U+00FF cannot be one byte */
	j = pfx_import(pfx, "\u20ac-sign", ",\"verifyPassword\":false", sdev, &st);
	assert_int_equal(st, 400);
	assert_string_equal(ecode(j), "InvalidParameter");
	cJSON_Delete(j);
	/* nor can a password longer than RSA-2048 with OAEP-SHA512 takes (126 bytes) */
	{
		char longpw[200];
		memset(longpw, 'x', 127);
		longpw[127] = '\0';
		j = pfx_import(pfx, longpw, ",\"verifyPassword\":false", sdev, &st);
		assert_int_equal(st, 400);
		cJSON_Delete(j);
		longpw[126] = '\0';
		j = pfx_import(pfx, longpw, ",\"verifyPassword\":false", sdev, &st);
		assert_int_equal(st, 201);
		cJSON_Delete(j);
	}
	/* without the check, a password the PFX does not take is queued (the flow fails it) */
	j = pfx_import(pfx, "Wrong-pass", ",\"verifyPassword\":false", sdev, &st);
	assert_int_equal(st, 201);
	cJSON_Delete(j);
	/* a connector of another tenant is not found from this one */
	snprintf(extra, sizeof(extra), ",\"connectorId\":\"%s\"", c2.connector);
	j = pfx_import(pfx, "Secret-123", extra, sdev, &st);
	assert_int_equal(st, 404);
	cJSON_Delete(j);
	/* the queued request is readable with its payload (the ciphertext, never the password) */
	{
		char path[160];
		snprintf(path, sizeof(path), "/admin/requests/%s", id1);
		j = admin("GET", path, NULL, &st);
		assert_int_equal(st, 200);
		assert_string_equal(S(V(j), "state"), "leased");
		assert_non_null(S(cJSON_GetObjectItem(V(j), "payload"), "encryptedPassword"));
		{
			char *t = cJSON_PrintUnformatted(j);
			assert_non_null(t);
			assert_null(strstr(t, "Secret-123"));
			free(t);
		}
		cJSON_Delete(j);
	}
	free(sa); free(sb); free(sec); free(sdev); free(pfx);
	EVP_PKEY_free(ka); EVP_PKEY_free(kb); EVP_PKEY_free(ec); EVP_PKEY_free(dev);
}

/* pkcs, pkcs-recrypt and revoke queued through the admin API with the members section 6
 * lists, leased, answered, and read back with their result. */
static void
test_request_roundtrip(void **state)
{
	static const char *const q[] = {
		"{\"request\":{\"tenantId\":\"t1\",\"feature\":\"pkcs\",\"requestId\":\"r-pkcs\","
		"\"payload\":{\"deviceId\":\"d1\",\"devicePublicKey\":\"AAAA\",\"profile\":\"p\"}}}",
		"{\"request\":{\"tenantId\":\"t1\",\"feature\":\"pkcs-recrypt\",\"requestId\":"
		"\"r-rec\",\"payload\":{\"deviceId\":\"d2\",\"encryptedPayload\":\"AAAA\","
		"\"deviceCertificate\":\"AAAA\"}}}",
		"{\"request\":{\"tenantId\":\"t1\",\"feature\":\"revoke\",\"requestId\":\"r-rev\","
		"\"payload\":{\"serialNumber\":\"0A1B\",\"issuerName\":\"CN=x\"}}}",
	};
	static const char *const bad[] = {
		"{\"request\":{\"tenantId\":\"t1\",\"feature\":\"pkcs\",\"payload\":{\"deviceId\":\"d\"}}}",
		"{\"request\":{\"tenantId\":\"t1\",\"feature\":\"pkcs-recrypt\",\"payload\":"
		"{\"deviceId\":\"d\",\"devicePublicKey\":\"AAAA\"}}}",
		"{\"request\":{\"tenantId\":\"t1\",\"feature\":\"revoke\",\"payload\":{}}}",
	};
	static const char *const feat[] = { "pkcs", "pkcs-recrypt", "revoke" };
	static const char *const ids[] = { "r-pkcs", "r-rec", "r-rev" };
	struct hub_peer a;
	char id[80], body[512], path[128];
	cJSON *j;
	int st;

	(void)state;
	reg("t1", "[\"pkcs\",\"pkcs-recrypt\",\"revoke\"]", "1.0.0", &a);
	for (size_t i = 0; i < 3; i++) {
		cJSON_Delete(admin("POST", "/admin/requests", q[i], &st));
		assert_int_equal(st, 201);
		j = admin("POST", "/admin/requests", bad[i], &st);
		assert_int_equal(st, 400);
		assert_string_equal(ecode(j), "InvalidParameter");
		cJSON_Delete(j);
		assert_int_equal(lease(&a, feat[i], 60, id, sizeof(id)), 1);
		assert_string_equal(id, ids[i]);
		snprintf(body, sizeof(body), "{\"results\":[{\"requestId\":\"%s\",\"succeeded\":"
		    "true,\"errorCode\":0,\"result\":{\"n\":%zu}}]}", id, i);
		cJSON_Delete(cpost(&a, "/api/ConnectorRequests/uploadResults", body, &st));
		assert_int_equal(st, 200);
		snprintf(path, sizeof(path), "/admin/requests/%s", id);
		j = admin("GET", path, NULL, &st);
		assert_int_equal(st, 200);
		assert_string_equal(S(V(j), "state"), "completed");
		assert_string_equal(S(V(j), "completedBy"), a.connector);
		assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(V(j), "result"), "n")->
		    valueint, (int)i);
		assert_non_null(cJSON_GetObjectItem(V(j), "payload"));
		cJSON_Delete(j);
	}
}

static void
test_migrations(void **state)
{
	char dir[] = "/tmp/hubstore.XXXXXX", path[128];
	struct hub_store *s;
	sqlite3 *db;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/hub.db", dir);
	s = hub_store_sqlite_open(path);
	assert_non_null(s);
	assert_int_equal(s->ops->tenant_put(s, "x", "X", 1), HUB_ST_OK);
	s->ops->close(s);
	/* reopening keeps the data and migrates nothing twice */
	s = hub_store_sqlite_open(path);
	assert_non_null(s);
	assert_int_equal(s->ops->tenant_put(s, "x", "X", 1), HUB_ST_EXISTS);
	s->ops->close(s);
	/* WAL journal */
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	{
		sqlite3_stmt *st;
		sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
		sqlite3_finalize(st);
	}
	/* a schema 1 database (before the pfx keys and targets) with a connector and a request
	 * migrates to 2 with its data: made by dropping schema 2's columns */
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version=1;"
	    "ALTER TABLE connectors DROP COLUMN pfx_key;"
	    "ALTER TABLE connectors DROP COLUMN pfx_key_name;"
	    "ALTER TABLE connectors DROP COLUMN pfx_key_updated;"
	    "ALTER TABLE requests DROP COLUMN target;"
	    "INSERT INTO connectors(id, tenant, name, version, features, serial, not_after, "
	    "registered) VALUES('c1', 'x', 'old', '1.0.0', 4, '01', 99999999999, 1);"
	    "INSERT INTO requests(id, tenant, feature, state, payload, created) "
	    "VALUES('r1', 'x', 4, 0, '{}', 1);", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	s = hub_store_sqlite_open(path);
	assert_non_null(s);
	{
		struct hub_connector c;
		struct hub_request r;

		assert_int_equal(s->ops->connector_get(s, "c1", &c), HUB_ST_OK);
		assert_string_equal(c.name, "old");
		assert_null(c.pfx_key);
		hub_connector_clear(&c);
		assert_int_equal(s->ops->connector_pfx_key(s, "c1", "AAAA", "pfx:1", 5), HUB_ST_OK);
		assert_int_equal(s->ops->connector_get(s, "c1", &c), HUB_ST_OK);
		assert_string_equal(c.pfx_key, "AAAA");
		assert_int_equal(c.pfx_key_updated, 5);
		hub_connector_clear(&c);
		/* the same key again changes nothing (not even its date) */
		assert_int_equal(s->ops->connector_pfx_key(s, "c1", "AAAA", "pfx:1", 9), HUB_ST_OK);
		assert_int_equal(s->ops->connector_get(s, "c1", &c), HUB_ST_OK);
		assert_int_equal(c.pfx_key_updated, 5);
		hub_connector_clear(&c);
		assert_int_equal(s->ops->request_get(s, "x", "r1", &r), HUB_ST_OK);
		assert_string_equal(r.target, "");
		hub_request_clear(&r);
	}
	s->ops->close(s);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	/* a database from a newer hub is refused, not damaged */
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version=99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_null(hub_store_sqlite_open(path));
	test_rmtree(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_token_expiry, each, each_done),
		cmocka_unit_test_setup_teardown(test_leases_and_attempts, each, each_done),
		cmocka_unit_test_setup_teardown(test_retryable_uses_attempts, each, each_done),
		cmocka_unit_test_setup_teardown(test_challenge_expiry, each, each_done),
		cmocka_unit_test_setup_teardown(test_unhealthy, each, each_done),
		cmocka_unit_test_setup_teardown(test_lifecycle_running, each, each_done),
		cmocka_unit_test_setup_teardown(test_mixed_versions, each, each_done),
		cmocka_unit_test_setup_teardown(test_pfx_import, each, each_done),
		cmocka_unit_test_setup_teardown(test_request_roundtrip, each, each_done),
		cmocka_unit_test(test_migrations),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
