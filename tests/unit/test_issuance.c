/*
 * Issuance policy (policy/issuance.c): real PKCS#10 requests made with OpenSSL go through
 * cc_issuance_apply under different profiles; what comes out (or the refusal) is checked.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certconn/issuance.h"
#include "scep_client.h"

static EVP_PKEY *rsa2048, *rsa1024, *ec256, *ec384;

static int
setup(void **state)
{
	(void)state;
	rsa2048 = sc_key_rsa(2048);
	rsa1024 = sc_key_rsa(1024);
	ec256 = sc_key_ec("P-256");
	ec384 = sc_key_ec("P-384");
	return rsa2048 && rsa1024 && ec256 && ec384 ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(rsa2048);
	EVP_PKEY_free(rsa1024);
	EVP_PKEY_free(ec256);
	EVP_PKEY_free(ec384);
	return 0;
}

static char *
name_str(const X509_NAME *n)
{
	static char buf[512];
	BIO *b = BIO_new(BIO_s_mem());
	int k;

	X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253);
	k = BIO_read(b, buf, sizeof(buf) - 1);
	buf[k > 0 ? k : 0] = '\0';
	BIO_free(b);
	return buf;
}

/* Applies p to a request made from the arguments; returns 0/-1, why filled. */
static int
apply(const struct cc_issuance *p, EVP_PKEY *k, const char *subj, const char *sans,
    struct cc_iss_result *r, char *why, size_t len)
{
	X509_REQ *req = sc_csr(k, subj, "secret", sans);
	int ret;

	assert_non_null(req);
	ret = cc_issuance_apply(p, req, 1700000000, r, why, len);
	X509_REQ_free(req);
	return ret;
}

static void
test_defaults_copy(void **state)
{
	struct cc_issuance p;
	struct cc_iss_result r;
	char why[256];

	(void)state;
	cc_issuance_defaults(&p);
	assert_int_equal(apply(&p, rsa2048, "CN=dev1,O=Example", "DNS:dev1.example.com|"
	    "IP:10.1.2.3", &r, why, sizeof(why)), 0);
	assert_string_equal(name_str(r.subject), "O=Example,CN=dev1");
	assert_non_null(r.san);
	assert_int_equal(sk_GENERAL_NAME_num(r.san), 2);
	assert_int_equal(r.key_usage, KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
	assert_non_null(r.ekus);
	assert_int_equal(sk_ASN1_OBJECT_num(r.ekus), 1);
	assert_int_equal(OBJ_obj2nid(sk_ASN1_OBJECT_value(r.ekus, 0)), NID_client_auth);
	assert_int_equal(r.not_before, 1700000000 - 300);
	assert_int_equal(r.not_after, 1700000000 + 365 * 86400);
	assert_int_equal(EVP_PKEY_eq(r.pubkey, rsa2048), 1);
	cc_iss_result_free(&r);

	/* EC keys get keyAgreement instead of keyEncipherment */
	assert_int_equal(apply(&p, ec256, "CN=dev2", NULL, &r, why, sizeof(why)), 0);
	assert_int_equal(r.key_usage, KU_DIGITAL_SIGNATURE | KU_KEY_AGREEMENT);
	assert_null(r.san);
	cc_iss_result_free(&r);
	cc_issuance_free(&p);
}

static void
test_keys(void **state)
{
	struct cc_issuance p;
	struct cc_iss_result r;
	char why[256];

	(void)state;
	cc_issuance_defaults(&p);
	assert_int_equal(apply(&p, rsa1024, "CN=small", NULL, &r, why, sizeof(why)), -1);
	assert_string_equal(why, "key RSA-1024: the profile requires at least 2048 bits");

	p.key_types = CC_ISS_KEY_RSA;
	assert_int_equal(apply(&p, ec256, "CN=ec", NULL, &r, why, sizeof(why)), -1);
	assert_string_equal(why, "key type EC is not allowed by the profile");

	p.key_types = CC_ISS_KEY_EC;
	p.ec_curves = CC_ISS_CURVE_P384;
	assert_int_equal(apply(&p, ec256, "CN=ec", NULL, &r, why, sizeof(why)), -1);
	assert_string_equal(why, "EC curve prime256v1 is not allowed by the profile");
	assert_int_equal(apply(&p, ec384, "CN=ec", NULL, &r, why, sizeof(why)), 0);
	cc_iss_result_free(&r);

	p.key_types = CC_ISS_KEY_RSA;
	p.rsa_max_bits = 1536;
	p.rsa_min_bits = 1024;
	assert_int_equal(apply(&p, rsa2048, "CN=big", NULL, &r, why, sizeof(why)), -1);
	assert_string_equal(why, "key RSA-2048: the profile allows at most 1536 bits");
	cc_issuance_free(&p);
}

static void
test_subject_template(void **state)
{
	struct cc_issuance p;
	struct cc_iss_result r;
	X509_NAME *n = NULL;
	char why[256];

	(void)state;
	cc_issuance_defaults(&p);
	p.subject_mode = CC_ISS_SUBJECT_TEMPLATE;
	p.subject_template = strdup("CN={cn},OU=Devices,O=Example\\, Inc.");
	assert_int_equal(apply(&p, ec256, "CN=laptop-7,O=Evil,OU=Admins", NULL, &r, why,
	    sizeof(why)), 0);
	assert_string_equal(name_str(r.subject), "O=Example\\, Inc.,OU=Devices,CN=laptop-7");
	cc_iss_result_free(&r);

	/* a value with a comma stays one value: the template is split before substitution */
	assert_int_equal(apply(&p, ec256, "CN=a\\,O=Evil", NULL, &r, why, sizeof(why)), 0);
	assert_int_equal(X509_NAME_entry_count(r.subject), 3);
	cc_iss_result_free(&r);

	/* a placeholder whose attribute is missing refuses */
	free(p.subject_template);
	p.subject_template = strdup("CN={cn},serialNumber={serialNumber}");
	assert_int_equal(apply(&p, ec256, "CN=x", NULL, &r, why, sizeof(why)), -1);
	assert_string_equal(why, "the request's subject has no serialNumber, which the "
	    "profile's subject template needs");
	cc_issuance_free(&p);

	/* syntax checks (what the config checker uses) */
	assert_int_equal(cc_issuance_template_build("CN={nope}", NULL, &n, why, sizeof(why)), -1);
	assert_string_equal(why, "subject template: unknown placeholder {nope}");
	assert_int_equal(cc_issuance_template_build("XX=1", NULL, &n, why, sizeof(why)), -1);
	assert_string_equal(why, "subject template: unknown attribute type XX");
	assert_int_equal(cc_issuance_template_build("CN={cn", NULL, &n, why, sizeof(why)), -1);
	assert_int_equal(cc_issuance_template_build("C=USA", NULL, &n, why, sizeof(why)), -1);
	assert_int_equal(cc_issuance_template_build("CN={cn},C=DE", NULL, &n, why, sizeof(why)),
	    0);
	X509_NAME_free(n);

	/* copy mode with require_cn */
	cc_issuance_defaults(&p);
	assert_int_equal(apply(&p, ec256, "O=NoCN", NULL, &r, why, sizeof(why)), -1);
	assert_string_equal(why, "the request's subject has no commonName");
	p.require_cn = false;
	assert_int_equal(apply(&p, ec256, "O=NoCN", NULL, &r, why, sizeof(why)), 0);
	cc_iss_result_free(&r);
}

static void
test_san_rules(void **state)
{
	struct cc_issuance p;
	struct cc_iss_result r;
	char why[256];

	(void)state;
	cc_issuance_defaults(&p);
	p.dns_suffixes[0] = strdup("example.com");
	p.ndns_suffixes = 1;
	assert_int_equal(apply(&p, ec256, "CN=a", "DNS:a.example.com|DNS:example.com", &r, why,
	    sizeof(why)), 0);
	cc_iss_result_free(&r);
	assert_int_equal(apply(&p, ec256, "CN=a", "DNS:a.example.org", &r, why, sizeof(why)), -1);
	assert_string_equal(why, "DNS name \"a.example.org\" is not allowed");
	assert_int_equal(apply(&p, ec256, "CN=a", "DNS:badexample.com", &r, why, sizeof(why)),
	    -1);
	assert_int_equal(apply(&p, ec256, "CN=a", "DNS:*.example.com", &r, why, sizeof(why)), -1);

	p.san_copy = CC_ISS_SAN_DNS;
	assert_int_equal(apply(&p, ec256, "CN=a", "email:a@example.com", &r, why, sizeof(why)),
	    -1);
	assert_string_equal(why, "e-mail addresses are not allowed by the profile");
	assert_int_equal(apply(&p, ec256, "CN=a", "IP:10.0.0.1", &r, why, sizeof(why)), -1);
	assert_int_equal(apply(&p, ec256, "CN=a", "URI:https://x.example.com/", &r, why,
	    sizeof(why)), -1);
	assert_string_equal(why, "URIs are not allowed by the profile");

	/* the Intune SID URI passes through even when URIs are not copied */
	assert_int_equal(apply(&p, ec256, "CN=a", "URI:tag:microsoft.com,2022-09-14:sid:"
	    "S-1-5-21-1004336348-1177238915-682003330-512", &r, why, sizeof(why)), 0);
	assert_int_equal(sk_GENERAL_NAME_num(r.san), 1);
	assert_int_equal(sk_GENERAL_NAME_value(r.san, 0)->type, GEN_URI);
	cc_iss_result_free(&r);
	assert_int_equal(apply(&p, ec256, "CN=a", "URI:tag:microsoft.com,2022-09-14:sid:"
	    "S-1-5-x", &r, why, sizeof(why)), -1);
	assert_string_equal(why, "malformed SID in the Intune SID URI");
	p.sid_passthrough = false;
	assert_int_equal(apply(&p, ec256, "CN=a", "URI:tag:microsoft.com,2022-09-14:sid:"
	    "S-1-5-21-1-2-3-512", &r, why, sizeof(why)), -1);

	p.san_max = 1;
	assert_int_equal(apply(&p, ec256, "CN=a", "DNS:a.example.com|DNS:b.example.com", &r,
	    why, sizeof(why)), -1);
	assert_string_equal(why, "the request has 2 subjectAltNames; the profile allows 1");
	cc_issuance_free(&p);

	assert_true(cc_issuance_sid_ok("S-1-5-21-1-2-3"));
	assert_true(cc_issuance_sid_ok("S-1-5-18"));
	assert_false(cc_issuance_sid_ok("S-1-5"));
	assert_false(cc_issuance_sid_ok("S-1-5-"));
	assert_false(cc_issuance_sid_ok("S-2-5-18"));
	assert_false(cc_issuance_sid_ok("S-1-5-18-"));
}

static void
test_usages_and_attrs(void **state)
{
	struct cc_issuance p;
	struct cc_iss_result r;
	char why[256];

	(void)state;
	cc_issuance_defaults(&p);
	p.key_usage = KU_DIGITAL_SIGNATURE;
	p.ekus_set = true;
	p.ekus[0] = strdup("1.3.6.1.5.5.7.3.2");
	p.ekus[1] = strdup("1.3.6.1.4.1.311.20.2.2");
	p.nekus = 2;
	p.validity_days = 30;
	p.backdate_s = 0;
	assert_int_equal(apply(&p, rsa2048, "CN=a", NULL, &r, why, sizeof(why)), 0);
	assert_int_equal(r.key_usage, KU_DIGITAL_SIGNATURE);
	assert_int_equal(sk_ASN1_OBJECT_num(r.ekus), 2);
	assert_int_equal(r.not_after - r.not_before, 30 * 86400);
	cc_iss_result_free(&r);

	/* an explicitly empty EKU list: no EKU at all */
	for (size_t i = 0; i < p.nekus; i++)
		free(p.ekus[i]);
	p.nekus = 0;
	assert_int_equal(apply(&p, rsa2048, "CN=a", NULL, &r, why, sizeof(why)), 0);
	assert_null(r.ekus);
	cc_iss_result_free(&r);

	/* attributes: only the listed ones (challengePassword is on every request here) */
	p.attrs_restricted = true;
	p.allowed_attrs[0] = strdup("1.2.840.113549.1.9.14"); /* extensionRequest */
	p.nallowed_attrs = 1;
	assert_int_equal(apply(&p, rsa2048, "CN=a", NULL, &r, why, sizeof(why)), -1);
	assert_string_equal(why, "request attribute 1.2.840.113549.1.9.7 is not allowed by the "
	    "profile");
	p.allowed_attrs[1] = strdup("1.2.840.113549.1.9.7");
	p.nallowed_attrs = 2;
	assert_int_equal(apply(&p, rsa2048, "CN=a", "DNS:a.b", &r, why, sizeof(why)), 0);
	cc_iss_result_free(&r);
	cc_issuance_free(&p);
}

static void
test_bad_signature(void **state)
{
	struct cc_issuance p;
	struct cc_iss_result r;
	X509_REQ *req = sc_csr(rsa2048, "CN=a", NULL, NULL);
	char why[256];

	(void)state;
	cc_issuance_defaults(&p);
	/* the request claims another key than the one that signed it */
	assert_int_equal(X509_REQ_set_pubkey(req, ec256), 1);
	assert_int_equal(cc_issuance_apply(&p, req, 1700000000, &r, why, sizeof(why)), -1);
	assert_string_equal(why, "the request's signature does not verify");
	X509_REQ_free(req);
	cc_issuance_free(&p);
}

static void
test_copy(void **state)
{
	struct cc_issuance p, q;

	(void)state;
	cc_issuance_defaults(&p);
	p.subject_template = strdup("CN={cn}");
	p.subject_mode = CC_ISS_SUBJECT_TEMPLATE;
	p.dns_suffixes[0] = strdup("a.b");
	p.ndns_suffixes = 1;
	assert_int_equal(cc_issuance_copy(&q, &p), 0);
	assert_ptr_not_equal(q.subject_template, p.subject_template);
	assert_string_equal(q.subject_template, "CN={cn}");
	assert_string_equal(q.dns_suffixes[0], "a.b");
	cc_issuance_free(&p);
	cc_issuance_free(&q);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_copy),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_subject_template),
		cmocka_unit_test(test_san_rules),
		cmocka_unit_test(test_usages_and_attrs),
		cmocka_unit_test(test_bad_signature),
		cmocka_unit_test(test_copy),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
