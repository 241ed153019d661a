/*
 * The CA role through a real keys process and a real SoftHSM2 token: TBS certificates and
 * CRLs built by OpenSSL are checked by keys and signed by the token's CA key; the results
 * verify against the CA certificate (X509_verify_cert, X509_CRL_verify). What the policy
 * refuses is refused with its reason, and never signed: a sub-CA, a foreign issuer, a
 * forbidden digest.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/rsa.h>
#include <openssl/x509_vfy.h>

#include "certconn/proto.h"
#include "keys_harness.h"
#include "tbs_build.h"
#include "test_token.h"

static const struct hsm_role_spec roles[] = {
	{ "ca", HSM_KEY_RSA, 2048, NULL, HSM_USE_SIGN },
	{ "ca-ec", HSM_KEY_EC, 0, "P-384", HSM_USE_SIGN },
	{ "nocert", HSM_KEY_RSA, 2048, NULL, HSM_USE_SIGN },
};

static struct test_token *tok;
static struct keys_harness kh;
static X509 *ca_rsa, *ca_ec;
static uint8_t *ec_der;
static size_t ec_der_len;
static EVP_PKEY *alg_rsa, *alg_ec; /* throw-away keys: they only set the algorithm fields */
static char errtext[512];
static uint64_t reqid = 500;

static int
setup(void **state)
{
	struct cc_conf_role cr[3];
	struct keys_harness_opts o;
	struct hsm_ca_params ca = { 0 };
	const unsigned char *p;

	(void)state;
	tok = test_token_new("catest", "8642", roles, 3);
	ca.module = tok->module;
	ca.module_env = tok->module_env;
	ca.key_uri = test_token_uri(tok, "ca-ec");
	ca.user_pin = tok->pin;
	ca.subject = "CN=certconn EC test CA";
	ca.days = 365;
	ca.md = "SHA384";
	if (hsm_selfsign_ca(&ca, &ec_der, &ec_der_len) == -1)
		return -1;
	p = tok->ca_der;
	ca_rsa = d2i_X509(NULL, &p, (long)tok->ca_der_len);
	p = ec_der;
	ca_ec = d2i_X509(NULL, &p, (long)ec_der_len);
	alg_rsa = EVP_RSA_gen(2048);
	alg_ec = EVP_EC_gen("P-384");
	cr[0] = keys_harness_role(tok, "ca", 0);
	cr[1] = keys_harness_role(tok, "ca-ec", 0);
	cr[1].cert = ec_der;
	cr[1].cert_len = ec_der_len;
	cr[1].max_validity_days = 90;
	cr[2] = keys_harness_role(tok, "ca", 0);
	cr[2].name = "nocert";
	cr[2].uri = test_token_uri(tok, "nocert");
	cr[2].cert = NULL;
	cr[2].cert_len = 0;
	memset(&o, 0, sizeof(o));
	o.token = tok;
	o.roles = cr;
	o.nroles = 3;
	o.debug_mask = CC_CHAN_OPERATIONAL;
	return keys_harness_start(&kh, &o);
}

static int
teardown(void **state)
{
	(void)state;
	assert_int_equal(keys_harness_stop(&kh), 0);
	X509_free(ca_rsa);
	X509_free(ca_ec);
	EVP_PKEY_free(alg_rsa);
	EVP_PKEY_free(alg_ec);
	free(ec_der);
	test_token_free(tok);
	return 0;
}

/* A chain check as `openssl verify -CAfile ca.pem` does it. */
static int
chain_ok(X509 *ca, X509 *leaf)
{
	X509_STORE *st = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int ok;

	X509_STORE_add_cert(st, ca);
	X509_STORE_CTX_init(ctx, st, leaf, NULL);
	ok = X509_verify_cert(ctx) == 1;
	if (!ok)
		fprintf(stderr, "verify: %s\n",
		    X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	return ok;
}

/* The TBS for spec, sent to keys for role; the code, and the certificate when signed. */
static int
sign_cert(const char *role, X509 *ca, EVP_PKEY *alg_key, struct tbs_spec *s, X509 **out)
{
	uint8_t *tbs, *sig;
	size_t len, sig_len;
	int r;

	*out = NULL;
	if (s->ca == NULL)
		s->ca = ca;
	assert_int_equal(tbs_build_cert(s, alg_key, &tbs, &len), 0);
	r = keys_harness_sign_tbs(kh.peer_fd[0], ++reqid, role, CC_TBS_CERT, tbs, len, &sig,
	    &sig_len, errtext, sizeof(errtext));
	if (r == 0) {
		*out = tbs_assemble_cert(tbs, len, sig, sig_len);
		assert_non_null(*out);
		free(sig);
	}
	free(tbs);
	return r;
}

static void
test_rsa_ca_signs_leaf(void **state)
{
	struct tbs_spec s = { .key_usage = "critical,digitalSignature", .eku = "clientAuth" };
	X509 *x;

	(void)state;
	assert_int_equal(sign_cert("ca", ca_rsa, alg_rsa, &s, &x), 0);
	assert_int_equal(X509_verify(x, X509_get0_pubkey(ca_rsa)), 1);
	assert_true(chain_ok(ca_rsa, x));
	X509_free(x);
	/* RSASSA-PSS, SHA-512 */
	memset(&s, 0, sizeof(s));
	s.pss = 1;
	s.md = "SHA512";
	assert_int_equal(sign_cert("ca", ca_rsa, alg_rsa, &s, &x), 0);
	assert_int_equal(X509_get_signature_nid(x), NID_rsassaPss);
	assert_true(chain_ok(ca_rsa, x));
	X509_free(x);
	assert_non_null(keys_harness_event_wait(&kh, "sign certificate role=ca", 2000));
}

static void
test_ec_ca_signs_leaf(void **state)
{
	struct tbs_spec s = { .md = "SHA384", .days = 90 };
	X509 *x;

	(void)state;
	assert_int_equal(sign_cert("ca-ec", ca_ec, alg_ec, &s, &x), 0);
	assert_int_equal(X509_get_signature_nid(x), NID_ecdsa_with_SHA384);
	assert_true(chain_ok(ca_ec, x));
	X509_free(x);
	/* this CA's policy: at most 90 days */
	s.days = 91;
	assert_int_equal(sign_cert("ca-ec", ca_ec, alg_ec, &s, &x), CC_KE_REFUSED);
	assert_non_null(strstr(errtext, "maximum of 90 days"));
}

static void
test_crls(void **state)
{
	uint8_t *tbs, *sig;
	size_t len, sig_len;
	X509_CRL *c;

	(void)state;
	assert_int_equal(tbs_build_crl(ca_rsa, NULL, 7, "SHA256", 0, alg_rsa, &tbs, &len), 0);
	assert_int_equal(keys_harness_sign_tbs(kh.peer_fd[0], ++reqid, "ca", CC_TBS_CRL, tbs, len,
	    &sig, &sig_len, errtext, sizeof(errtext)), 0);
	c = tbs_assemble_crl(tbs, len, sig, sig_len);
	assert_non_null(c);
	assert_int_equal(X509_CRL_verify(c, X509_get0_pubkey(ca_rsa)), 1);
	X509_CRL_free(c);
	free(sig);
	free(tbs);

	assert_int_equal(tbs_build_crl(ca_ec, NULL, 2, "SHA512", 0, alg_ec, &tbs, &len), 0);
	assert_int_equal(keys_harness_sign_tbs(kh.peer_fd[0], ++reqid, "ca-ec", CC_TBS_CRL, tbs,
	    len, &sig, &sig_len, errtext, sizeof(errtext)), 0);
	c = tbs_assemble_crl(tbs, len, sig, sig_len);
	assert_int_equal(X509_CRL_verify(c, X509_get0_pubkey(ca_ec)), 1);
	X509_CRL_free(c);
	free(sig);
	free(tbs);

	/* too long a CRL */
	assert_int_equal(tbs_build_crl(ca_rsa, NULL, 45, "SHA256", 0, alg_rsa, &tbs, &len), 0);
	assert_int_equal(keys_harness_sign_tbs(kh.peer_fd[0], ++reqid, "ca", CC_TBS_CRL, tbs, len,
	    &sig, &sig_len, errtext, sizeof(errtext)), CC_KE_REFUSED);
	assert_non_null(strstr(errtext, "maximum of 30 days"));
	free(tbs);
}

/* What a compromised net might try. Each is refused with its reason and nothing signed. */
static void
test_compromised_net_cannot_mint_subca(void **state)
{
	struct tbs_spec s = { .ca_true = 1, .key_usage = "critical,keyCertSign,cRLSign" };
	X509 *x;

	(void)state;
	assert_int_equal(sign_cert("ca", ca_rsa, alg_rsa, &s, &x), CC_KE_REFUSED);
	assert_null(x);
	assert_non_null(strstr(errtext, "basicConstraints CA:TRUE (a sub-CA) is not allowed"));
	/* keyCertSign without CA:TRUE is no way round it */
	memset(&s, 0, sizeof(s));
	s.key_usage = "critical,keyCertSign";
	assert_int_equal(sign_cert("ca", ca_rsa, alg_rsa, &s, &x), CC_KE_REFUSED);
	/* a foreign issuer */
	memset(&s, 0, sizeof(s));
	s.issuer = "CN=Some Other CA";
	s.no_aki = 1;
	assert_int_equal(sign_cert("ca", ca_rsa, alg_rsa, &s, &x), CC_KE_REFUSED);
	assert_non_null(strstr(errtext, "issuer /CN=Some Other CA is not this CA's subject"));
	/* a digest the policy forbids */
	memset(&s, 0, sizeof(s));
	s.md = "SHA1";
	assert_int_equal(sign_cert("ca", ca_rsa, alg_rsa, &s, &x), CC_KE_REFUSED);
	assert_non_null(strstr(errtext, "sha1WithRSAEncryption"));
	/* an EC CA asked for an RSA signature algorithm */
	memset(&s, 0, sizeof(s));
	assert_int_equal(sign_cert("ca-ec", ca_ec, alg_rsa, &s, &x), CC_KE_REFUSED);
	/* and the bare digest route is closed */
	{
		uint8_t dg[32] = { 0 }, *sig;
		size_t sig_len;

		assert_int_equal(keys_harness_sign(kh.peer_fd[0], ++reqid, "ca", CC_SIG_RSA_PKCS1,
		    CC_MD_SHA256, 0, 0, dg, 32, &sig, &sig_len, errtext, sizeof(errtext)),
		    CC_KE_DENIED);
	}
	assert_non_null(keys_harness_event_wait(&kh,
	    "result=refused (basicConstraints CA:TRUE", 2000));
}

static void
test_no_ca_cert(void **state)
{
	struct tbs_spec s = { 0 };
	X509 *x;

	(void)state;
	assert_int_equal(sign_cert("nocert", ca_rsa, alg_rsa, &s, &x), CC_KE_REFUSED);
	assert_non_null(strstr(errtext, "role nocert has no CA certificate"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rsa_ca_signs_leaf),
		cmocka_unit_test(test_ec_ca_signs_leaf),
		cmocka_unit_test(test_crls),
		cmocka_unit_test(test_compromised_net_cannot_mint_subca),
		cmocka_unit_test(test_no_ca_cert),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
