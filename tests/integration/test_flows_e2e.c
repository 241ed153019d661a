/*
 * The queued flows end to end, from the device's side: `certconnctl dev up` (certconnd with
 * keys in SoftHSM2, net sandboxed, the local CA, the dev hub on loopback, the connector
 * registered), requests queued through the hub's admin API as an MDM would, results read
 * back from the hub. The device (tests/lib/device.c, plain OpenSSL, nothing of src/pkcs)
 * holds its own key, decrypts what was delivered, opens the PKCS#12 with the delivered
 * password, checks the chain against the local CA and that the key matches the certificate.
 *
 *  - pkcs for an RSA-2048 device (public key) and an EC P-256 device (certificate), and with
 *    the legacy PKCS#12 profile;
 *  - pkcs-recrypt: the kept copy of the first result delivered to a second device, the same
 *    certificate;
 *  - pfx-import: a PFX made by `openssl pkcs12 -export` whose password was encrypted with
 *    RSA-OAEP-SHA512 (and SHA-256) to the connector's pfx key reaches the device intact;
 *  - revoke: the serial of the first certificate appears in the next CRL fetched from
 *    /crl/<ca>.crl over HTTP;
 *  - the events of each request (ids, channel, correlation id = request id) in the
 *    connector's admin/operational JSON-lines files.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <openssl/cms.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/x509.h>

#include "device.h"

static struct flows_env E;

/* State carried between the tests of the group (they run in order). */
static char first_serial[130], first_thumb[41], kept_copy_id[80];
static char *kept_copy;
/* The providers the legacy-profile device loads. OSSL_PROVIDER_load takes a reference that
 * OPENSSL_cleanup does not drop: without OSSL_PROVIDER_unload (in teardown) the providers and
 * what they made (the legacy provider's child library context, its DRBGs and method stores)
 * outlive libcrypto's own cleanup, and LeakSanitizer reports them as indirect leaks. */
static OSSL_PROVIDER *prov_legacy, *prov_default;

#define ADMIN "admin.jsonl"
#define OPER "operational.jsonl"

/* ---- helpers ---- */

static const char *
jstr(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double
jnum(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

/* Queues and waits for the final state; the request's "value" object. */
static cJSON *
run(const char *feature, const char *payload, char *id, size_t idlen)
{
	cJSON *v;

	assert_int_equal(flows_queue(&E, feature, payload, id, idlen), 0);
	v = flows_wait(&E, id, 90);
	assert_non_null(v);
	return v;
}

static void
expect_ok(const cJSON *v)
{
	const cJSON *s = cJSON_GetObjectItem(v, "succeeded");

	if (strcmp(jstr(v, "state") ? jstr(v, "state") : "", "completed") != 0 ||
	    !cJSON_IsTrue(s) || jnum(v, "errorCode") != 0)
		fail_msg("expected request %s completed, got state %s, errorCode %.0f: %s",
		    jstr(v, "requestId"), jstr(v, "state"), jnum(v, "errorCode"),
		    jstr(v, "errorMessage") ? jstr(v, "errorMessage") : "");
}

/* Every event id in ids (0-terminated) is in file with the request's id, exactly once. */
static void
expect_events(const char *file, const char *id, const int *ids)
{
	for (; *ids != 0; ids++) {
		int n = flows_wait_events(&E, file, *ids, id, 1, 5000);
		if (n != 1) {
				fail_msg("event %d for %s in %s: %d times, expected once", *ids, id, file, n);
		}
	}
}

static void
expect_no_event(const char *file, const char *id, int ev)
{
	assert_int_equal(flows_events(&E, file, ev, id), 0);
}

/* The delivery of a pkcs / recrypt / import result opened by the device. */
static void
open_result(const struct device *d, const cJSON *result, X509 *trusted,
    struct device_delivery *o)
{
	memset(o, 0, sizeof(*o));
	if (device_open_result(d, result, trusted, o) != 0) {
		fail_msg("the device cannot open its delivery: %s", o->error);
	}
	assert_true(o->key_matches);
	if (trusted != NULL && !o->chain_ok) {
		fail_msg("chain: %s", o->error);
	}
}

static char *
payload_for(const struct device *d, bool use_cert, const char *extra)
{
	char *m = device_payload_members(d, use_cert), *s = NULL;

	assert_non_null(m);
	assert_true(asprintf(&s, "{%s%s%s}", m, extra != NULL ? "," : "",
	    extra != NULL ? extra : "") > 0);
	free(m);
	return s;
}

/* ---- pkcs ---- */

static void
test_pkcs_rsa_device(void **state)
{
	struct device d;
	struct device_delivery o;
	char id[80], line[256], *p;
	cJSON *v, *res, *det;
	static const int oper[] = { 1020, 1050, 1100, 1102, 0 };
	static const int adm[] = { 1000, 0 };
	int before = flows_ca_count(&E, NULL);

	(void)state;
	assert_int_equal(device_new(&d, "laptop-rsa", DEVICE_RSA2048), 0);
	p = payload_for(&d, false, "\"subject\":{\"cn\":\"laptop-rsa\"},\"deviceName\":"
	    "\"Laptop RSA\",\"userPrincipalName\":\"alice@example.com\"");
	v = run("pkcs", p, id, sizeof(id));
	free(p);
	expect_ok(v);
	res = cJSON_GetObjectItem(v, "result");
	open_result(&d, res, E.ca, &o);
	/* The profile's defaults: AES-256 PKCS#12 (PBES2), RSA-2048 key made by the connector,
	 * enveloped to the device's RSA key by key transport. */
	assert_string_equal(o.key_pbe, "PBES2/AES-256-CBC");
	assert_int_equal(o.recipient_type, CMS_RECIPINFO_TRANS);
	assert_int_equal(EVP_PKEY_get_bits(o.key), 2048);
	assert_int_equal(EVP_PKEY_get_base_id(o.key), EVP_PKEY_RSA);
	assert_non_null(strstr(o.subject, "CN=laptop-rsa"));
	/* Not the device's own key: the connector made the key pair. */
	assert_int_not_equal(EVP_PKEY_eq(o.key, d.key), 1);
	/* The CA issued exactly one certificate, this one, and it is valid in its store. */
	assert_int_equal(flows_ca_count(&E, NULL), before + 1);
	assert_int_equal(flows_ctl(&E, line, sizeof(line), "ca show %s", o.serial), 0);
	assert_int_equal(flows_ctl(&E, NULL, 0, "ca show %s | grep -q valid", o.serial), 0);
	snprintf(first_serial, sizeof(first_serial), "%s", o.serial);
	snprintf(first_thumb, sizeof(first_thumb), "%s", o.thumbprint);
	/* The result's own members agree with what the device found. */
	assert_int_equal(strcasecmp(jstr(res, "serialNumber"), o.serial), 0);
	assert_string_equal(jstr(res, "certificateThumbprint"), o.thumbprint);
	assert_string_equal(jstr(res, "p12Form"), "aes256");
	/* The kept copy, for the re-encrypt test. */
	assert_non_null(jstr(res, "keptCopy"));
	kept_copy = strdup(jstr(res, "keptCopy"));
	snprintf(kept_copy_id, sizeof(kept_copy_id), "%s", id);

	expect_events(OPER, id, oper);
	expect_events(ADMIN, id, adm);
	expect_no_event(ADMIN, id, 1001);
	expect_no_event(OPER, id, 1051);
	det = flows_event_detail(&E, OPER, 1020, id);
	assert_string_equal(jstr(det, "deviceId"), "laptop-rsa");
	cJSON_Delete(det);
	det = flows_event_detail(&E, OPER, 1102, id);
	assert_string_equal(jstr(det, "status"), "Recorded");
	cJSON_Delete(det);
	device_delivery_free(&o);
	cJSON_Delete(v);
	device_free(&d);
}

static void
test_pkcs_ec_device_certificate(void **state)
{
	struct device d;
	struct device_delivery o;
	char id[80], *p;
	cJSON *v;
	static const int oper[] = { 1020, 1050, 1100, 1102, 0 };
	static const int adm[] = { 1000, 0 };

	(void)state;
	assert_int_equal(device_new(&d, "phone-ec", DEVICE_EC_P256), 0);
	/* The device names itself by its certificate; the profile lets it ask for an EC key. */
	p = payload_for(&d, true, "\"subject\":{\"cn\":\"phone-ec\"},\"keySpec\":\"ec-p256\"");
	v = run("pkcs", p, id, sizeof(id));
	free(p);
	expect_ok(v);
	open_result(&d, cJSON_GetObjectItem(v, "result"), E.ca, &o);
	/* Enveloped to an EC key: key agreement (ECDH), not key transport. */
	assert_int_equal(o.recipient_type, CMS_RECIPINFO_AGREE);
	assert_int_equal(EVP_PKEY_get_base_id(o.key), EVP_PKEY_EC);
	assert_non_null(strstr(o.subject, "CN=phone-ec"));
	expect_events(OPER, id, oper);
	expect_events(ADMIN, id, adm);
	device_delivery_free(&o);
	cJSON_Delete(v);
	device_free(&d);
}

static void
test_pkcs_legacy_profile(void **state)
{
	struct device d;
	struct device_delivery o;
	char id[80], *p;
	cJSON *v;

	(void)state;
	/* A device that takes the legacy form reads 3DES and RC2: OpenSSL 3 keeps RC2 in its
	 * legacy provider. */
	if (prov_legacy == NULL)
		prov_legacy = OSSL_PROVIDER_load(NULL, "legacy");
	if (prov_default == NULL)
		prov_default = OSSL_PROVIDER_load(NULL, "default");
	assert_non_null(prov_legacy);
	assert_non_null(prov_default);
	assert_int_equal(device_new(&d, "old-device", DEVICE_RSA2048), 0);
	p = payload_for(&d, false, "\"subject\":{\"cn\":\"old-device\"},\"profile\":\"legacy\"");
	v = run("pkcs", p, id, sizeof(id));
	free(p);
	expect_ok(v);
	open_result(&d, cJSON_GetObjectItem(v, "result"), E.ca, &o);
	/* The legacy form only where the profile asks for it. */
	assert_string_equal(o.key_pbe, "PBE-SHA1-3DES");
	assert_string_equal(jstr(cJSON_GetObjectItem(v, "result"), "p12Form"), "legacy");
	/* That profile keeps no copy. */
	assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(v, "result"), "keptCopy"));
	device_delivery_free(&o);
	cJSON_Delete(v);
	device_free(&d);
}

/* ---- pkcs-recrypt ---- */

static void
test_recrypt_second_device(void **state)
{
	struct device d;
	struct device_delivery o;
	char id[80], *p, *extra = NULL;
	cJSON *v;
	static const int oper[] = { 1220, 1251, 1250, 1300, 1302, 0 };
	static const int adm[] = { 1200, 0 };

	(void)state;
	assert_non_null(kept_copy);
	assert_int_equal(device_new(&d, "tablet-2", DEVICE_RSA2048), 0);
	assert_true(asprintf(&extra, "\"encryptedPayload\":\"%s\"", kept_copy) > 0);
	p = payload_for(&d, false, extra);
	free(extra);
	v = run("pkcs-recrypt", p, id, sizeof(id));
	free(p);
	expect_ok(v);
	open_result(&d, cJSON_GetObjectItem(v, "result"), E.ca, &o);
	/* The same certificate as the first device's, now for the second device. */
	assert_string_equal(o.thumbprint, first_thumb);
	assert_string_equal(o.serial, first_serial);
	expect_events(OPER, id, oper);
	expect_events(ADMIN, id, adm);
	device_delivery_free(&o);
	cJSON_Delete(v);
	device_free(&d);
}

/* ---- pfx-import ---- */

static void
import_with(const char *md, const char *scheme)
{
	struct device d;
	struct device_delivery o;
	char id[80], pfx[PATH_MAX], name[32], *p, *extra = NULL, *pfx_b64, *enc;
	uint8_t *raw;
	size_t n;
	cJSON *v;
	X509 *ext_ca, *orig;
	static const int oper[] = { 2020, 2050, 2100, 2102, 0 };
	static const int adm[] = { 2000, 0 };

	snprintf(name, sizeof(name), "smime-%s", md);
	assert_int_equal(device_make_pfx(E.tmp, name, "bob@example.com", "Imp0rt-pa55word!",
	    false, pfx, sizeof(pfx)), 0);
	raw = device_slurp(pfx, &n);
	assert_non_null(raw);
	pfx_b64 = device_b64(raw, n);
	free(raw);
	enc = device_oaep_encrypt_b64(E.pfx_pub, "Imp0rt-pa55word!", md);
	assert_non_null(enc);
	assert_int_equal(device_new(&d, "mail-client", DEVICE_RSA2048), 0);
	assert_true(asprintf(&extra, "\"pfx\":\"%s\",\"encryptedPassword\":\"%s\","
	    "\"paddingScheme\":\"%s\",\"keyName\":\"pfx\",\"intendedPurpose\":\"smimeEncryption\"",
	    pfx_b64, enc, scheme) > 0);
	p = payload_for(&d, false, extra);
	v = run("pfx-import", p, id, sizeof(id));
	expect_ok(v);
	snprintf(pfx, sizeof(pfx), "%s/ext-ca.pem", E.tmp);
	ext_ca = device_load_cert(pfx);
	snprintf(pfx, sizeof(pfx), "%s/%s.pem", E.tmp, name);
	orig = device_load_cert(pfx);
	assert_non_null(ext_ca);
	assert_non_null(orig);
	/* Intact: the very certificate the administrator imported, its key, its chain. */
	open_result(&d, cJSON_GetObjectItem(v, "result"), ext_ca, &o);
	assert_int_equal(X509_cmp(o.cert, orig), 0);
	assert_non_null(strstr(o.subject, "bob@example.com"));
	expect_events(OPER, id, oper);
	expect_events(ADMIN, id, adm);
	expect_no_event(OPER, id, 2051);
	device_delivery_free(&o);
	X509_free(ext_ca);
	X509_free(orig);
	cJSON_Delete(v);
	device_free(&d);
	free(p);
	free(extra);
	free(enc);
	free(pfx_b64);
}

static void
test_import_oaep_sha512(void **state)
{
	(void)state;
	import_with("SHA512", "OaepSha512");
}

static void
test_import_oaep_sha256(void **state)
{
	(void)state;
	import_with("SHA256", "OaepSha256");
}

/* The administrator's way: the PFX and its plaintext password to the hub (POST
 * admin/pfxImports), which encrypts the password to the connector's reported pfx key. */
static void
test_import_via_hub_admin(void **state)
{
	struct device d;
	struct device_delivery o;
	struct hub_resp r;
	char pfx[PATH_MAX], id[80], *body = NULL, *pfx_b64, *dev_b64;
	uint8_t *raw;
	size_t n;
	cJSON *v, *pl;
	X509 *ext_ca, *orig;

	(void)state;
	assert_int_equal(device_make_pfx(E.tmp, "carol", "carol@example.com", "Hub-side-pw-7",
	    false, pfx, sizeof(pfx)), 0);
	raw = device_slurp(pfx, &n);
	pfx_b64 = device_b64(raw, n);
	free(raw);
	assert_int_equal(device_new(&d, "carol-phone", DEVICE_EC_P256), 0);
	dev_b64 = device_public_key_b64(&d);
	/* A password that does not open the PFX is refused by the hub before anything is
	 * queued. */
	assert_true(asprintf(&body, "{\"pfxImport\":{\"tenantId\":\"dev\",\"pfx\":\"%s\","
	    "\"password\":\"typo\",\"devicePublicKey\":\"%s\"}}", pfx_b64, dev_b64) > 0);
	assert_int_equal(hub_admin(&E.hub, "POST", "pfxImports", body, &r), 0);
	assert_int_equal(r.status, 400);
	hub_resp_free(&r);
	free(body);
	assert_true(asprintf(&body, "{\"pfxImport\":{\"tenantId\":\"dev\",\"pfx\":\"%s\","
	    "\"password\":\"Hub-side-pw-7\",\"devicePublicKey\":\"%s\",\"deviceId\":"
	    "\"carol-phone\",\"intendedPurpose\":\"smimeSigning\"}}", pfx_b64, dev_b64) > 0);
	assert_int_equal(hub_admin(&E.hub, "POST", "pfxImports", body, &r), 0);
	if (r.status != 201)
		fail_msg("POST pfxImports: %ld %s", r.status, r.body ? r.body : "");
	snprintf(id, sizeof(id), "%s", jstr(cJSON_GetObjectItem(r.json, "value"), "requestId"));
	hub_resp_free(&r);
	/* What the hub queued: OAEP-SHA512 by default, to the key the connector reported. */
	v = flows_request(&E, id);
	pl = cJSON_GetObjectItem(v, "payload");
	assert_string_equal(jstr(pl, "paddingScheme"), "OaepSha512");
	{
		char *t = cJSON_PrintUnformatted(pl);
		/* the plaintext password is not stored with the request */
		assert_null(strstr(t, "Hub-side-pw-7"));
		free(t);
	}
	cJSON_Delete(v);
	v = flows_wait(&E, id, 90);
	expect_ok(v);
	snprintf(pfx, sizeof(pfx), "%s/ext-ca.pem", E.tmp);
	ext_ca = device_load_cert(pfx);
	snprintf(pfx, sizeof(pfx), "%s/carol.pem", E.tmp);
	orig = device_load_cert(pfx);
	open_result(&d, cJSON_GetObjectItem(v, "result"), ext_ca, &o);
	assert_int_equal(X509_cmp(o.cert, orig), 0);
	assert_int_equal(o.recipient_type, CMS_RECIPINFO_AGREE);
	assert_string_equal(jstr(cJSON_GetObjectItem(v, "result"), "intendedPurpose"),
	    "smimeSigning");
	expect_events(ADMIN, id, (const int[]){ 2000, 0 });
	device_delivery_free(&o);
	X509_free(ext_ca);
	X509_free(orig);
	cJSON_Delete(v);
	free(body);
	free(pfx_b64);
	free(dev_b64);
	device_free(&d);
}

/* ---- revoke ---- */

static void
test_revoke_then_crl(void **state)
{
	char id[80], payload[512];
	cJSON *v, *det;
	X509_CRL *crl;
	static const int oper[] = { 3020, 3050, 3100, 3102, 0 };
	static const int adm[] = { 3000, 0 };

	(void)state;
	assert_true(first_serial[0] != '\0');
	crl = flows_fetch_crl(&E, "dev");
	assert_non_null(crl);
	assert_false(flows_crl_has(crl, first_serial));
	X509_CRL_free(crl);

	snprintf(payload, sizeof(payload), "{\"serialNumber\":\"%s\",\"issuerName\":null,"
	    "\"caConfiguration\":\"local\"}", first_serial);
	v = run("revoke", payload, id, sizeof(id));
	expect_ok(v);
	expect_events(OPER, id, oper);
	expect_events(ADMIN, id, adm);
	det = flows_event_detail(&E, OPER, 3050, id);
	assert_int_equal(strcasecmp(jstr(det, "serialNumber"), first_serial), 0);
	cJSON_Delete(det);
	assert_int_equal(flows_ctl(&E, NULL, 0, "ca show %s | grep -q revoked", first_serial), 0);

	/* The next CRL, fetched over HTTP like a relying party, names the serial and is
	 * signed by the local CA. */
	crl = NULL;
	for (int i = 0; i < 50; i++) {
		crl = flows_fetch_crl(&E, "dev");
		if (crl != NULL && flows_crl_has(crl, first_serial))
			break;
		X509_CRL_free(crl);
		crl = NULL;
		usleep(200000);
	}
	assert_non_null(crl);
	assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(E.ca)), 1);
	X509_CRL_free(crl);
	cJSON_Delete(v);

	/* Revoking it again succeeds (Intune's semantics: a re-leased request must not fail). */
	v = run("revoke", payload, id, sizeof(id));
	expect_ok(v);
	det = flows_event_detail(&E, OPER, 3050, id);
	assert_string_equal(jstr(det, "alreadyRevoked"), "true");
	cJSON_Delete(det);
	cJSON_Delete(v);
}

/* The batch-level download events of each feature (they name no request): every feature
 * has downloaded at least one batch by now. */
static void
test_download_events(void **state)
{
	static const int ids[] = { 1002, 1202, 2202, 3002 };

	(void)state;
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
		if (flows_events(&E, OPER, ids[i], NULL) < 1)
			fail_msg("no event %d in %s", ids[i], OPER);
}

static int
setup(void **state)
{
	(void)state;
	return flows_env_up(&E, NULL);
}

static int
teardown(void **state)
{
	(void)state;
	/* The logs' tails go to the test's output (ctest shows it when the test fails). */
	flows_env_down(&E, true);
	free(kept_copy);
	if (prov_legacy != NULL)
		OSSL_PROVIDER_unload(prov_legacy);
	if (prov_default != NULL)
		OSSL_PROVIDER_unload(prov_default);
	prov_legacy = prov_default = NULL;
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pkcs_rsa_device),
		cmocka_unit_test(test_pkcs_ec_device_certificate),
		cmocka_unit_test(test_pkcs_legacy_profile),
		cmocka_unit_test(test_recrypt_second_device),
		cmocka_unit_test(test_import_oaep_sha512),
		cmocka_unit_test(test_import_oaep_sha256),
		cmocka_unit_test(test_import_via_hub_admin),
		cmocka_unit_test(test_revoke_then_crl),
		cmocka_unit_test(test_download_events),
	};
	/* FLOWS_TEST_FILTER=test_ca_down (a glob) runs some of the group, for debugging */
	if (getenv("FLOWS_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("FLOWS_TEST_FILTER"));
	return cmocka_run_group_tests(tests, setup, teardown);
}
