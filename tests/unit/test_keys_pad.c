/*
 * The encodings keys builds around a token's raw operations (hsm/keys_pad.c), checked with
 * OpenSSL doing the raw RSA operation (RSA_NO_PADDING) in place of the token and OpenSSL's
 * own verification and decryption on the other side.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "certconn/proto.h"
#include "keys_pad.h"

static EVP_PKEY *rsa, *rsa_odd;

static int
setup(void **state)
{
	(void)state;
	rsa = EVP_RSA_gen(2048);
	/* modBits - 1 a multiple of 8: EMSA-PSS then has one byte less than the modulus */
	rsa_odd = EVP_RSA_gen(2049);
	return rsa && rsa_odd ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(rsa_odd);
	return 0;
}

/* What the token does with CKM_RSA_X_509: the bare private-key operation. */
static void
raw_private(EVP_PKEY *k, int decrypt, const uint8_t *in, uint8_t *out, size_t *out_len)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(k, NULL);
	size_t n = (size_t)EVP_PKEY_get_size(k);

	assert_non_null(ctx);
	if (decrypt) {
		assert_int_equal(EVP_PKEY_decrypt_init(ctx), 1);
		assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_NO_PADDING), 1);
		assert_int_equal(EVP_PKEY_decrypt(ctx, out, out_len, in, n), 1);
	} else {
		assert_int_equal(EVP_PKEY_sign_init(ctx), 1);
		assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_NO_PADDING), 1);
		assert_int_equal(EVP_PKEY_sign(ctx, out, out_len, in, n), 1);
	}
	EVP_PKEY_CTX_free(ctx);
}

static void
test_digestinfo(void **state)
{
	static const uint8_t sha256_prefix[] = { 0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86,
		0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20 };
	static const uint8_t sha1_prefix[] = { 0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e,
		0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14 };
	uint8_t dg[64], *di;
	size_t n;

	(void)state;
	memset(dg, 0xab, sizeof(dg));
	/* RFC 8017 section 9.2 note 1 gives these prefixes */
	assert_int_equal(keys_pad_digestinfo(CC_MD_SHA256, dg, 32, &di, &n), 0);
	assert_int_equal(n, sizeof(sha256_prefix) + 32);
	assert_memory_equal(di, sha256_prefix, sizeof(sha256_prefix));
	assert_memory_equal(di + sizeof(sha256_prefix), dg, 32);
	free(di);
	assert_int_equal(keys_pad_digestinfo(CC_MD_SHA1, dg, 20, &di, &n), 0);
	assert_int_equal(n, sizeof(sha1_prefix) + 20);
	assert_memory_equal(di, sha1_prefix, sizeof(sha1_prefix));
	free(di);
	for (uint8_t md = CC_MD_SHA1; md <= CC_MD_MAX; md++) {
		assert_int_equal(keys_pad_digestinfo(md, dg, cc_md_size(md), &di, &n), 0);
		free(di);
		/* the digest length must match the algorithm */
		assert_int_equal(keys_pad_digestinfo(md, dg, cc_md_size(md) - 1, &di, &n), -1);
	}
	assert_int_equal(keys_pad_digestinfo(CC_MD_NONE, dg, 32, &di, &n), -1);
}

/* DigestInfo + PKCS#1 v1.5 block + raw RSA = an ordinary RSA PKCS#1 v1.5 signature. */
static void
test_pkcs1_encode(void **state)
{
	uint8_t dg[32], *di, em[256], sig[256];
	size_t di_len, sig_len = sizeof(sig);
	EVP_PKEY_CTX *ctx;

	(void)state;
	RAND_bytes(dg, sizeof(dg));
	assert_int_equal(keys_pad_digestinfo(CC_MD_SHA256, dg, 32, &di, &di_len), 0);
	assert_int_equal(keys_pad_pkcs1_encode(di, di_len, em, sizeof(em)), 0);
	assert_int_equal(em[0], 0x00);
	assert_int_equal(em[1], 0x01);
	raw_private(rsa, 0, em, sig, &sig_len);
	ctx = EVP_PKEY_CTX_new(rsa, NULL);
	assert_int_equal(EVP_PKEY_verify_init(ctx), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING), 1);
	assert_int_equal(EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()), 1);
	assert_int_equal(EVP_PKEY_verify(ctx, sig, sig_len, dg, 32), 1);
	EVP_PKEY_CTX_free(ctx);
	/* too small a block */
	assert_int_equal(keys_pad_pkcs1_encode(di, di_len, em, di_len + 10), -1);
	free(di);
}

static void
pss_roundtrip(EVP_PKEY *k, uint8_t md, uint8_t mgf1, size_t salt)
{
	size_t n = (size_t)EVP_PKEY_get_size(k), dl = cc_md_size(md), sig_len = 512;
	uint8_t dg[64], em[512], sig[512];
	EVP_PKEY_CTX *ctx;

	RAND_bytes(dg, (int)dl);
	assert_int_equal(keys_pad_pss_encode(k, md, mgf1, salt, dg, dl, em, n), 0);
	raw_private(k, 0, em, sig, &sig_len);
	assert_int_equal(sig_len, n);
	ctx = EVP_PKEY_CTX_new(k, NULL);
	assert_int_equal(EVP_PKEY_verify_init(ctx), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING), 1);
	assert_int_equal(EVP_PKEY_CTX_set_signature_md(ctx, keys_pad_md(md)), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, keys_pad_md(mgf1 ? mgf1 : md)), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, (int)salt), 1);
	assert_int_equal(EVP_PKEY_verify(ctx, sig, sig_len, dg, dl), 1);
	dg[0] ^= 1;
	assert_int_not_equal(EVP_PKEY_verify(ctx, sig, sig_len, dg, dl), 1);
	EVP_PKEY_CTX_free(ctx);
}

static void
test_pss_encode(void **state)
{
	uint8_t dg[64] = { 0 }, em[512];

	(void)state;
	for (uint8_t md = CC_MD_SHA1; md <= CC_MD_MAX; md++) {
		pss_roundtrip(rsa, md, md, cc_md_size(md));
		pss_roundtrip(rsa, md, CC_MD_SHA1, 0);
		pss_roundtrip(rsa_odd, md, CC_MD_NONE, cc_md_size(md));
	}
	/* the longest salt that fits, and one byte more */
	pss_roundtrip(rsa, CC_MD_SHA256, CC_MD_SHA256, 256 - 32 - 2);
	assert_int_equal(keys_pad_pss_encode(rsa, CC_MD_SHA256, CC_MD_SHA256, 256 - 32 - 1, dg,
	    32, em, 256), -1);
	/* em must be exactly the modulus length; the digest length must match */
	assert_int_equal(keys_pad_pss_encode(rsa, CC_MD_SHA256, 0, 32, dg, 32, em, 255), -1);
	assert_int_equal(keys_pad_pss_encode(rsa, CC_MD_SHA256, 0, 32, dg, 31, em, 256), -1);
}

static void
oaep_roundtrip(uint8_t md, uint8_t mgf1, const char *label)
{
	uint8_t msg[64], ct[256], em[256], out[256];
	size_t ct_len = sizeof(ct), em_len = sizeof(em), out_len = sizeof(out);
	size_t ll = label ? strlen(label) : 0;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(rsa, NULL);

	RAND_bytes(msg, sizeof(msg));
	assert_int_equal(EVP_PKEY_encrypt_init(ctx), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_oaep_md(ctx, keys_pad_md(md)), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, keys_pad_md(mgf1 ? mgf1 : md)), 1);
	if (label != NULL)
		assert_int_equal(EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, OPENSSL_strdup(label),
		    (int)ll), 1);
	assert_int_equal(EVP_PKEY_encrypt(ctx, ct, &ct_len, msg, sizeof(msg)), 1);
	EVP_PKEY_CTX_free(ctx);
	raw_private(rsa, 1, ct, em, &em_len);
	assert_int_equal(em_len, 256);
	assert_int_equal(keys_pad_oaep_decode(rsa, md, mgf1, (const uint8_t *)label, ll, em, 256,
	    out, &out_len), 0);
	assert_int_equal(out_len, sizeof(msg));
	assert_memory_equal(out, msg, sizeof(msg));
	/* another label, another digest, a damaged block: all fail the same way */
	out_len = sizeof(out);
	assert_int_equal(keys_pad_oaep_decode(rsa, md, mgf1, (const uint8_t *)"other", 5, em, 256,
	    out, &out_len), -1);
	out_len = sizeof(out);
	assert_int_equal(keys_pad_oaep_decode(rsa, md == CC_MD_SHA1 ? CC_MD_SHA256 : CC_MD_SHA1,
	    mgf1, (const uint8_t *)label, ll, em, 256, out, &out_len), -1);
	em[100] ^= 1;
	out_len = sizeof(out);
	assert_int_equal(keys_pad_oaep_decode(rsa, md, mgf1, (const uint8_t *)label, ll, em, 256,
	    out, &out_len), -1);
}

static void
test_oaep_decode(void **state)
{
	uint8_t em[256] = { 0 }, out[256];
	size_t out_len = sizeof(out);

	(void)state;
	for (uint8_t md = CC_MD_SHA1; md <= CC_MD_MAX; md++) {
		oaep_roundtrip(md, md, NULL);
		oaep_roundtrip(md, CC_MD_SHA1, "pfx password");
	}
	assert_int_equal(keys_pad_oaep_decode(rsa, CC_MD_SHA256, 0, NULL, 0, em, 255, out,
	    &out_len), -1);
}

/* The input of a raw decryption must be below the modulus (else tokens say GENERAL_ERROR). */
static void
test_below_modulus(void **state)
{
	uint8_t b[256];
	BIGNUM *n = NULL;
	EVP_PKEY *ec = EVP_EC_gen("P-256");

	(void)state;
	assert_int_equal(EVP_PKEY_get_bn_param(rsa, OSSL_PKEY_PARAM_RSA_N, &n), 1);
	assert_int_equal(BN_bn2binpad(n, b, sizeof(b)), 256);
	assert_int_equal(keys_pad_rsa_below_modulus(rsa, b, sizeof(b)), 0); /* n itself */
	assert_int_equal(BN_sub_word(n, 1), 1);
	assert_int_equal(BN_bn2binpad(n, b, sizeof(b)), 256);
	assert_int_equal(keys_pad_rsa_below_modulus(rsa, b, sizeof(b)), 1); /* n - 1 */
	memset(b, 0xff, sizeof(b));
	assert_int_equal(keys_pad_rsa_below_modulus(rsa, b, sizeof(b)), 0);
	memset(b, 0, sizeof(b));
	assert_int_equal(keys_pad_rsa_below_modulus(rsa, b, sizeof(b)), 1);
	/* (a ciphertext for another 2048-bit key with a larger modulus is above this one now
	 * and then: what integ_pkcs_keys met as CKR_GENERAL_ERROR in one run out of five) */
	assert_int_equal(keys_pad_rsa_below_modulus(ec, b, sizeof(b)), -1);
	assert_int_equal(keys_pad_rsa_below_modulus(rsa, b, 0), -1);
	assert_int_equal(keys_pad_rsa_below_modulus(NULL, b, sizeof(b)), -1);
	BN_free(n);
	EVP_PKEY_free(ec);
}

/* r||s from PKCS#11 CKM_ECDSA to DER, against what OpenSSL itself produces. */
static void
test_ecdsa_der(void **state)
{
	EVP_PKEY *ec = EVP_EC_gen("P-384");
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	uint8_t sig[256], rs[96], *der;
	size_t sig_len = sizeof(sig), der_len;
	const unsigned char *p = sig;
	ECDSA_SIG *s;
	const BIGNUM *r, *sv;

	(void)state;
	for (int i = 0; i < 20; i++) {
		sig_len = sizeof(sig);
		assert_int_equal(EVP_DigestSignInit(m, NULL, EVP_sha384(), NULL, ec), 1);
		assert_int_equal(EVP_DigestSign(m, sig, &sig_len, (const uint8_t *)"abc", 3), 1);
		p = sig;
		s = d2i_ECDSA_SIG(NULL, &p, (long)sig_len);
		assert_non_null(s);
		ECDSA_SIG_get0(s, &r, &sv);
		assert_int_equal(BN_bn2binpad(r, rs, 48), 48);
		assert_int_equal(BN_bn2binpad(sv, rs + 48, 48), 48);
		assert_int_equal(keys_pad_ecdsa_der(rs, 96, &der, &der_len), 0);
		assert_int_equal(der_len, sig_len);
		assert_memory_equal(der, sig, sig_len);
		free(der);
		ECDSA_SIG_free(s);
	}
	assert_int_equal(keys_pad_ecdsa_der(rs, 95, &der, &der_len), -1);
	assert_int_equal(keys_pad_ecdsa_der(rs, 0, &der, &der_len), -1);
	EVP_MD_CTX_free(m);
	EVP_PKEY_free(ec);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_digestinfo),
		cmocka_unit_test(test_pkcs1_encode),
		cmocka_unit_test(test_pss_encode),
		cmocka_unit_test(test_oaep_decode),
		cmocka_unit_test(test_below_modulus),
		cmocka_unit_test(test_ecdsa_der),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
