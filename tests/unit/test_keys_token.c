/*
 * hsm.h against a real SoftHSM2 token: token initialisation, key attributes, URIs, the
 * self-signed CA, in-process signing; through the test_token helper that other tests use.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certconn/proto.h"
#include "hsm.h"
#include "p11.h"
#include "test_token.h"

static struct test_token *tok;

static int
setup(void **state)
{
	(void)state;
	tok = test_token_new("unit-token", "1234", NULL, 0);
	return tok == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	(void)state;
	test_token_free(tok);
	return 0;
}

static void
test_uris(void **state)
{
	(void)state;
	assert_int_equal(tok->nroles, test_token_default_nroles);
	assert_string_equal(test_token_uri(tok, "ca"), "pkcs11:token=unit-token;object=ca");
	assert_string_equal(test_token_uri(tok, "client"), "pkcs11:token=unit-token;object=client");
	assert_null(test_token_uri(tok, "nope"));
}

/* The private keys are sensitive, not extractable, on the token, with a 16-byte CKA_ID
 * shared with the public key. */
static void
test_key_attributes(void **state)
{
	struct p11_mod m;
	struct p11_uri u;
	const char *why;
	CK_SLOT_ID slot;
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE priv, pub;
	size_t n;
	char err[256];
	CK_BBOOL sens = 0, extr = 1, tokn = 0, sign = 0, decr = 1;
	CK_ATTRIBUTE a[] = {
		{ CKA_SENSITIVE, &sens, sizeof(sens) },
		{ CKA_EXTRACTABLE, &extr, sizeof(extr) },
		{ CKA_TOKEN, &tokn, sizeof(tokn) },
		{ CKA_SIGN, &sign, sizeof(sign) },
		{ CKA_DECRYPT, &decr, sizeof(decr) },
	};
	uint8_t *id;
	size_t id_len;

	(void)state;
	assert_int_equal(p11_mod_load(&m, tok->module, err, sizeof(err)), CKR_OK);
	assert_int_equal(p11_mod_init(&m), CKR_OK);
	assert_int_equal(p11_uri_parse(test_token_uri(tok, "ca"), &u, &why), 0);
	assert_int_equal(p11_find_token(&m, &u, &slot, NULL, err, sizeof(err)), CKR_OK);
	assert_int_equal(m.f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s), CKR_OK);
	assert_int_equal(p11_login(&m, s, (const uint8_t *)"1234", 4), CKR_OK);
	assert_int_equal(p11_find_objects(&m, s, CKO_PRIVATE_KEY, "ca", NULL, 0, &priv, 1, &n),
	    CKR_OK);
	assert_int_equal(n, 1);
	assert_int_equal(m.f->C_GetAttributeValue(s, priv, a, 5), CKR_OK);
	assert_true(sens);
	assert_false(extr);
	assert_true(tokn);
	assert_true(sign);
	assert_false(decr); /* the ca key signs only */
	assert_int_equal(p11_get_attr(&m, s, priv, CKA_ID, &id, &id_len), CKR_OK);
	assert_int_equal(id_len, 16);
	assert_int_equal(p11_find_objects(&m, s, CKO_PUBLIC_KEY, "ca", id, id_len, &pub, 1, &n),
	    CKR_OK);
	assert_int_equal(n, 1);
	free(id);
	/* A wrong PIN is refused (the token is real). */
	(void)m.f->C_Logout(s);
	assert_int_equal(p11_login(&m, s, (const uint8_t *)"9999", 4), CKR_PIN_INCORRECT);
	(void)m.f->C_CloseSession(s);
	p11_mod_unload(&m);
}

static void
test_ca_cert(void **state)
{
	const unsigned char *p;
	X509 *x;
	EVP_PKEY *pk;
	struct hsm *h;
	BASIC_CONSTRAINTS *bc;

	(void)state;
	assert_non_null(tok->ca_der);
	p = tok->ca_der;
	x = d2i_X509(NULL, &p, (long)tok->ca_der_len);
	assert_non_null(x);
	h = hsm_open(tok->module, tok->module_env, tok->label, tok->pin);
	assert_non_null(h);
	pk = hsm_pubkey(h, test_token_uri(tok, "ca"));
	assert_non_null(pk);
	assert_int_equal(X509_verify(x, pk), 1);
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(x), pk), 1);
	bc = X509_get_ext_d2i(x, NID_basic_constraints, NULL, NULL);
	assert_non_null(bc);
	assert_true(bc->ca);
	BASIC_CONSTRAINTS_free(bc);
	assert_true(X509_get_key_usage(x) & KU_KEY_CERT_SIGN);
	assert_non_null(X509_get0_subject_key_id(x));
	assert_int_equal(ASN1_OCTET_STRING_cmp(X509_get0_subject_key_id(x),
	    X509_get0_authority_key_id(x)), 0);
	assert_int_equal(X509_check_issued(x, x), X509_V_OK);
	EVP_PKEY_free(pk);
	X509_free(x);
	hsm_close(h);
}

/* In-process signing (RSA and EC) verifies with the public key. */
static void
test_sign_digest(void **state)
{
	const char *roles[] = { "ra", "client" };
	unsigned char dg[32];
	struct hsm *h;

	(void)state;
	memset(dg, 0x5a, sizeof(dg));
	h = hsm_open(tok->module, tok->module_env, "pkcs11:token=unit-token", tok->pin);
	assert_non_null(h);
	for (size_t i = 0; i < 2; i++) {
		EVP_PKEY *pk = hsm_pubkey(h, test_token_uri(tok, roles[i]));
		EVP_PKEY_CTX *ctx;
		uint8_t *sig;
		size_t sig_len;

		assert_non_null(pk);
		assert_int_equal(hsm_sign_digest(h, test_token_uri(tok, roles[i]), "SHA256", dg,
		    sizeof(dg), &sig, &sig_len), 0);
		ctx = EVP_PKEY_CTX_new(pk, NULL);
		assert_int_equal(EVP_PKEY_verify_init(ctx), 1);
		if (EVP_PKEY_is_a(pk, "RSA"))
			assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING), 1);
		assert_int_equal(EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()), 1);
		assert_int_equal(EVP_PKEY_verify(ctx, sig, sig_len, dg, sizeof(dg)), 1);
		dg[0] ^= 1;
		assert_int_not_equal(EVP_PKEY_verify(ctx, sig, sig_len, dg, sizeof(dg)), 1);
		dg[0] ^= 1;
		EVP_PKEY_CTX_free(ctx);
		EVP_PKEY_free(pk);
		free(sig);
	}
	hsm_close(h);
}

/* A certificate goes into the token only next to its own key. */
static void
test_store_cert(void **state)
{
	struct hsm *h;

	(void)state;
	h = hsm_open(tok->module, tok->module_env, tok->label, tok->pin);
	assert_non_null(h);
	assert_int_equal(hsm_store_cert(h, test_token_uri(tok, "ra"), tok->ca_der,
	    tok->ca_der_len), -1);
	assert_int_equal(hsm_store_cert(h, test_token_uri(tok, "ca"), tok->ca_der,
	    tok->ca_der_len), 0);
	hsm_close(h);
}

/* A second init keeps existing keys and adds the new role. */
static void
test_reinit_keeps_keys(void **state)
{
	const struct hsm_role_spec more[] = {
		{ "ca", HSM_KEY_RSA, 2048, NULL, 0 },
		{ "ra-sign", HSM_KEY_EC, 0, "P-384", 0 },
	};
	struct hsm_role_result res[2];
	struct hsm_token_params p = {
		.module = tok->module, .module_env = tok->module_env, .label = tok->label,
		.so_pin = tok->so_pin, .user_pin = tok->pin, .roles = more, .nroles = 2,
	};

	(void)state;
	assert_int_equal(hsm_token_init(&p, res), 0);
	assert_int_equal(res[0].created, 0);
	assert_int_equal(res[1].created, 1);
	assert_int_equal(res[1].alg, HSM_KEY_EC);
	assert_string_equal(res[1].uri, "pkcs11:token=unit-token;object=ra-sign");
	/* a wrong user PIN fails */
	p.user_pin = "0000";
	assert_int_equal(hsm_token_init(&p, res), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uris),
		cmocka_unit_test(test_key_attributes),
		cmocka_unit_test(test_ca_cert),
		cmocka_unit_test(test_sign_digest),
		cmocka_unit_test(test_store_cert),
		cmocka_unit_test(test_reinit_keeps_keys),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
