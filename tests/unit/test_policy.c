/*
 * Key-role policy: the shipped keyroles.json loads with the intended roles; bad policy files
 * are refused with exact positions; mechanism, keyUsage and EKU names map to the right bits
 * and OIDs, checked against real OpenSSL objects.
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

#include "certconn/policy.h"

static void
test_default_policy(void **state)
{
	struct cc_policy p;
	const struct cc_policy_role *r;
	char path[CC_POLICY_PATH_MAX], err[512];

	(void)state;
	assert_int_equal(cc_policy_default_path(path, sizeof(path)), 0);
	assert_int_equal(cc_policy_load(path, &p, err, sizeof(err)), 0);
	assert_string_equal(p.path, path);
	assert_int_equal(p.nroles, 7);

	r = cc_policy_find(&p, "ca");
	assert_non_null(r);
	assert_int_equal(r->mechs, CC_MECH_SIGN_TBS);
	assert_int_equal(r->flags, CC_ROLE_TBS_ONLY);

	r = cc_policy_find(&p, "ra");
	assert_non_null(r);
	assert_int_equal(r->mechs, CC_MECH_SIGN_RSA_PKCS1 | CC_MECH_DECRYPT_RSA_PKCS1 |
	    CC_MECH_DECRYPT_RSA_OAEP);
	assert_int_equal(r->flags, CC_ROLE_FALLBACK);

	r = cc_policy_find(&p, "ra-sign");
	assert_non_null(r);
	assert_int_equal(r->mechs, CC_MECH_SIGN_RSA_PKCS1);
	assert_int_equal(r->flags, CC_ROLE_FALLBACK);

	r = cc_policy_find(&p, "ra-encrypt");
	assert_non_null(r);
	assert_int_equal(r->mechs, CC_MECH_DECRYPT_RSA_PKCS1 | CC_MECH_DECRYPT_RSA_OAEP);
	assert_int_equal(r->flags, CC_ROLE_FALLBACK);

	r = cc_policy_find(&p, "client");
	assert_non_null(r);
	assert_int_equal(r->mechs, CC_MECH_SIGN_RSA_PKCS1 | CC_MECH_SIGN_RSA_PSS |
	    CC_MECH_SIGN_ECDSA);
	assert_int_equal(r->flags, 0);

	r = cc_policy_find(&p, "tls");
	assert_non_null(r);
	assert_int_equal(r->mechs, CC_MECH_SIGN_RSA_PKCS1 | CC_MECH_SIGN_RSA_PSS |
	    CC_MECH_SIGN_ECDSA);
	assert_int_equal(r->flags, 0);

	r = cc_policy_find(&p, "pfx");
	assert_non_null(r);
	assert_int_equal(r->mechs, CC_MECH_DECRYPT_RSA_PKCS1 | CC_MECH_DECRYPT_RSA_OAEP);
	assert_int_equal(r->flags, CC_ROLE_FALLBACK);

	assert_null(cc_policy_find(&p, "CA"));
	assert_null(cc_policy_find(&p, ""));
	assert_null(cc_policy_find(&p, NULL));
}

static void
expect_policy_error(const char *text, const char *expected)
{
	struct cc_policy p;
	char err[512];

	assert_int_equal(cc_policy_load_buf(text, strlen(text), "p.json", &p, err, sizeof(err)),
	    -1);
	assert_string_equal(err, expected);
	assert_int_equal(p.nroles, 0);
}

static void
test_policy_errors(void **state)
{
	struct cc_policy p;
	char err[512], big[4096];
	int k, off;

	(void)state;
	expect_policy_error("{\n"
	    "  \"roles\": {\n"
	    "    \"ca\": { \"mechanisms\": [\"sign-tbs\"], \"tbs_only\": true },\n"
	    "    \"ra\": { \"mechanisms\": [\"sign-rsa-pkcs1\", \"decrypt-rsa\"] }\n"
	    "  }\n"
	    "}\n", "p.json:4:46: roles.ra.mechanisms[1]: unknown mechanism \"decrypt-rsa\"");
	expect_policy_error("{ \"roles\": {\n"
	    "  \"ca\": { \"mechanisms\": [\"sign-tbs\"] } } }\n",
	    "p.json:2:11: roles.ca.mechanisms: sign-tbs needs \"tbs_only\": true");
	expect_policy_error("{ \"roles\": {\n"
	    "  \"ca\": { \"mechanisms\": [\"sign-tbs\", \"sign-ecdsa\"], \"tbs_only\": true } } }\n",
	    "p.json:2:11: roles.ca.mechanisms: a tbs_only role needs sign-tbs and no digest "
	    "signing (sign-rsa-pkcs1, sign-rsa-pss, sign-ecdsa)");
	expect_policy_error("{ \"roles\": {\n"
	    "  \"x\": { \"mechanisms\": [\"sign-ecdsa\"], \"tbs_only\": true } } }\n",
	    "p.json:2:10: roles.x.mechanisms: a tbs_only role needs sign-tbs and no digest "
	    "signing (sign-rsa-pkcs1, sign-rsa-pss, sign-ecdsa)");
	expect_policy_error("{ \"roles\": {\n"
	    "  \"Ca\": { \"mechanisms\": [\"sign-ecdsa\"] } } }\n",
	    "p.json:2:3: roles.Ca: bad role name (1..31 of a-z, 0-9 and '-', starting with a "
	    "letter)");
	expect_policy_error("{ \"roles\": {\n"
	    "  \"x\": { \"mechanisms\": [\"sign-ecdsa\", \"sign-ecdsa\"] } } }\n",
	    "p.json:2:39: roles.x.mechanisms[1]: \"sign-ecdsa\" is listed twice");
	expect_policy_error("{ \"roles\": {\n"
	    "  \"x\": { \"mechanisms\": [] } } }\n",
	    "p.json:2:10: roles.x.mechanisms: must list at least one mechanism");
	expect_policy_error("{ \"roles\": {\n"
	    "  \"x\": { \"fallback\": true } } }\n",
	    "p.json:2:3: roles.x.mechanisms: required key is missing");
	expect_policy_error("{ \"roles\": {\n"
	    "  \"x\": { \"mechanisms\": [\"sign-ecdsa\"], \"fallback\": 1 } } }\n",
	    "p.json:2:40: roles.x.fallback: expected true or false, found a number");
	expect_policy_error("{ \"roles\": {\n"
	    "  \"x\": { \"mechanisms\": [\"sign-ecdsa\"], \"fallbak\": true } } }\n",
	    "p.json:2:40: roles.x.fallbak: unknown key (allowed: description, mechanisms, "
	    "fallback, tbs_only)");
	expect_policy_error("{ \"version\": 2, \"roles\": {} }",
	    "p.json:1:3: version: 2 is out of range 1..1");
	expect_policy_error("{ \"roles\": {} }", "p.json:1:3: roles: must define at least one role");
	expect_policy_error("{ }", "p.json:1:1: roles: required key is missing");
	expect_policy_error("{ \"roles\": { \"x\": { \"mechanisms\": [\"sign-ecdsa\"] }, "
	    "\"x\": { \"mechanisms\": [\"sign-ecdsa\"] } } }",
	    "p.json:1:53: roles.x: duplicate key (first at 1:14)");
	expect_policy_error("{ \"roles\": [ ] ", "p.json:1:16: syntax error");

	/* At most CC_POLICY_MAX_ROLES roles. */
	off = snprintf(big, sizeof(big), "{\"roles\":{");
	for (k = 0; k <= CC_POLICY_MAX_ROLES; k++)
		off += snprintf(big + off, sizeof(big) - (size_t)off,
		    "%s\"r%d\":{\"mechanisms\":[\"sign-ecdsa\"]}", k ? "," : "", k);
	off += snprintf(big + off, sizeof(big) - (size_t)off, "}}");
	assert_int_equal(cc_policy_load_buf(big, (size_t)off, "p.json", &p, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, ": roles.r16: too many members (at most 16)"));

	assert_int_equal(cc_policy_load("/nonexistent/keyroles.json", &p, err, sizeof(err)), -1);
	assert_string_equal(err, "/nonexistent/keyroles.json: No such file or directory");
}

static void
test_mech_names(void **state)
{
	static const struct {
		const char *name;
		uint32_t bit;
	} t[] = {
		{ "sign-rsa-pkcs1", CC_MECH_SIGN_RSA_PKCS1 },
		{ "sign-rsa-pss", CC_MECH_SIGN_RSA_PSS },
		{ "sign-ecdsa", CC_MECH_SIGN_ECDSA },
		{ "decrypt-rsa-pkcs1", CC_MECH_DECRYPT_RSA_PKCS1 },
		{ "decrypt-rsa-oaep", CC_MECH_DECRYPT_RSA_OAEP },
		{ "sign-tbs", CC_MECH_SIGN_TBS },
	};
	char buf[CC_MECH_NAMES_MAX];
	uint32_t all = 0;
	size_t k;

	(void)state;
	for (k = 0; k < sizeof(t) / sizeof(t[0]); k++) {
		assert_int_equal(cc_mech_from_name(t[k].name), t[k].bit);
		assert_string_equal(cc_mech_name(t[k].bit), t[k].name);
		assert_int_equal(cc_mech_names(t[k].bit, buf, sizeof(buf)), 0);
		assert_string_equal(buf, t[k].name);
		all |= t[k].bit;
	}
	assert_int_equal(all, CC_MECH_ALL);
	assert_int_equal(cc_mech_from_name("sign-rsa"), 0);
	assert_int_equal(cc_mech_from_name("SIGN-ECDSA"), 0);
	assert_int_equal(cc_mech_from_name(""), 0);
	assert_int_equal(cc_mech_from_name(NULL), 0);
	assert_null(cc_mech_name(CC_MECH_SIGN_ECDSA | CC_MECH_SIGN_TBS));
	assert_null(cc_mech_name(0));

	assert_int_equal(cc_mech_names(CC_MECH_ALL, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "sign-rsa-pkcs1,sign-rsa-pss,sign-ecdsa,decrypt-rsa-pkcs1,"
	    "decrypt-rsa-oaep,sign-tbs");
	assert_int_equal(cc_mech_names(0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	assert_int_equal(cc_mech_names(CC_MECH_SIGN_ECDSA | 0x100, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "sign-ecdsa,0x100");
	/* Cut short: -1, and never half a name. */
	assert_int_equal(cc_mech_names(CC_MECH_SIGN_RSA_PSS | CC_MECH_SIGN_ECDSA, buf, 16), -1);
	assert_string_equal(buf, "sign-rsa-pss");
	assert_int_equal(cc_mech_names(CC_MECH_SIGN_ECDSA, buf, 5), -1);
	assert_string_equal(buf, "");
	assert_int_equal(cc_mech_names(CC_MECH_SIGN_ECDSA, buf, 0), -1);
}

/* The keyUsage bits OpenSSL itself finds in a certificate whose extension is value. */
static uint32_t
openssl_ku(const char *value)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_EXTENSION *ext;
	X509V3_CTX ctx;
	uint32_t ku;

	assert_non_null(k);
	assert_non_null(x);
	assert_int_equal(X509_set_version(x, 2), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 7), 1);
	assert_int_equal(X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN",
	    MBSTRING_ASC, (const unsigned char *)"ku", -1, -1, 0), 1);
	assert_int_equal(X509_set_issuer_name(x, X509_get_subject_name(x)), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 60));
	assert_int_equal(X509_set_pubkey(x, k), 1);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_key_usage, value);
	assert_non_null(ext);
	assert_int_equal(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	ku = X509_get_key_usage(x);
	X509_free(x);
	EVP_PKEY_free(k);
	return ku;
}

static void
test_ku_names(void **state)
{
	static const char *const names[] = { "digitalSignature", "nonRepudiation",
		"keyEncipherment", "dataEncipherment", "keyAgreement", "keyCertSign", "cRLSign",
		"encipherOnly", "decipherOnly" };
	char buf[CC_KU_NAMES_MAX];
	uint32_t all = 0, bit;
	size_t k;

	(void)state;
	for (k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
		bit = cc_ku_from_name(names[k]);
		assert_int_not_equal(bit, 0);
		/* OpenSSL's own config parser knows the same names. */
		assert_int_equal(openssl_ku(names[k]), bit);
		assert_int_equal(cc_ku_names(bit, buf, sizeof(buf)), 0);
		assert_string_equal(buf, names[k]);
		all |= bit;
	}
	assert_int_equal(cc_ku_from_name("digitalSignature"), KU_DIGITAL_SIGNATURE);
	assert_int_equal(cc_ku_from_name("keyCertSign"), KU_KEY_CERT_SIGN);
	assert_int_equal(cc_ku_from_name("cRLSign"), KU_CRL_SIGN);
	assert_int_equal(cc_ku_from_name("crlSign"), 0);
	assert_int_equal(cc_ku_from_name(NULL), 0);
	assert_int_equal(openssl_ku("digitalSignature,keyEncipherment"),
	    cc_ku_from_name("digitalSignature") | cc_ku_from_name("keyEncipherment"));
	assert_int_equal(cc_ku_names(all, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "digitalSignature,nonRepudiation,keyEncipherment,"
	    "dataEncipherment,keyAgreement,keyCertSign,cRLSign,encipherOnly,decipherOnly");
}

static void
test_eku_names(void **state)
{
	static const struct {
		const char *name;
		int nid;
	} t[] = {
		{ "serverAuth", NID_server_auth },
		{ "clientAuth", NID_client_auth },
		{ "emailProtection", NID_email_protect },
		{ "codeSigning", NID_code_sign },
		{ "timeStamping", NID_time_stamp },
		{ "OCSPSigning", NID_OCSP_sign },
	};
	char oid[CC_OID_MAX];
	size_t k;

	(void)state;
	for (k = 0; k < sizeof(t) / sizeof(t[0]); k++) {
		assert_int_equal(cc_eku_to_oid(t[k].name, oid, sizeof(oid)), 0);
		assert_int_equal(OBJ_txt2nid(oid), t[k].nid);
		assert_string_equal(OBJ_nid2sn(t[k].nid), t[k].name);
		assert_string_equal(cc_eku_name(oid), t[k].name);
	}
	/* Dotted OIDs pass through, canonical. */
	assert_int_equal(cc_eku_to_oid("1.3.6.1.4.1.311.20.2.2", oid, sizeof(oid)), 0);
	assert_string_equal(oid, "1.3.6.1.4.1.311.20.2.2");
	assert_null(cc_eku_name(oid));
	assert_int_equal(cc_eku_to_oid("1.3.6.1.5.5.7.3.2", oid, sizeof(oid)), 0);
	assert_string_equal(cc_eku_name(oid), "clientAuth");
	assert_int_equal(cc_eku_to_oid("2.5.29.37.0", oid, sizeof(oid)), 0);
	assert_string_equal(oid, "2.5.29.37.0");
	/* Not names OpenSSL would accept but we do not list, not malformed OIDs. */
	assert_int_equal(cc_eku_to_oid("msSmartcardLogin", oid, sizeof(oid)), -1);
	assert_int_equal(cc_eku_to_oid("serverauth", oid, sizeof(oid)), -1);
	assert_int_equal(cc_eku_to_oid("1..3", oid, sizeof(oid)), -1);
	assert_int_equal(cc_eku_to_oid("1.3.", oid, sizeof(oid)), -1);
	assert_int_equal(cc_eku_to_oid("", oid, sizeof(oid)), -1);
	assert_int_equal(cc_eku_to_oid(NULL, oid, sizeof(oid)), -1);
	assert_int_equal(cc_eku_to_oid("1.3 .6", oid, sizeof(oid)), -1);
	assert_int_equal(cc_eku_to_oid(".1.3", oid, sizeof(oid)), -1);
	assert_int_equal(cc_eku_to_oid("1.3.06", oid, sizeof(oid)), -1);
	assert_int_equal(cc_eku_to_oid("1", oid, sizeof(oid)), -1);
	assert_int_equal(cc_eku_to_oid("3.1", oid, sizeof(oid)), -1);   /* first arc 0..2 */
	assert_int_equal(cc_eku_to_oid("1.40.1", oid, sizeof(oid)), -1); /* second arc < 40 */
	assert_int_equal(cc_eku_to_oid("0.0", oid, sizeof(oid)), 0);
	assert_string_equal(oid, "0.0");
	/* Too small an output buffer. */
	assert_int_equal(cc_eku_to_oid("serverAuth", oid, 10), -1);
	assert_int_equal(cc_eku_to_oid("1.3.6.1.4.1.311.20.2.2", oid, 10), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_policy),
		cmocka_unit_test(test_policy_errors),
		cmocka_unit_test(test_mech_names),
		cmocka_unit_test(test_ku_names),
		cmocka_unit_test(test_eku_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
