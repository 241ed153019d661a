/*
 * The flows' cryptographic operations, one small interface (flows_int.h, flows_c_*) over
 * OpenSSL's own high-level APIs: PKCS12_create_ex / PKCS12_parse, CMS_encrypt /
 * CMS_decrypt, EVP_PKEY_decrypt with RSA-OAEP. Nothing here is hand-made cryptography.
 *
 * certconn's crypto library (src/pkcs, certconn/pkcs.h) is meant to take these over; the
 * flows call only this interface, so that switch touches this file alone. Private-key
 * operations of the pfx role go through the keyref key (keys decrypts, with its raw-RSA
 * fallback where the token lacks OAEP with SHA-2): only the key transport of an envelope,
 * or the password's RSA-OAEP ciphertext, is decrypted in keys; the content is decrypted here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/cms.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "certconn/keyref.h"
#include "certconn/log.h"
#include "flows_int.h"

#define P12_ITER 10000     /* PBKDF2 iterations (OpenSSL's PKCS12_DEFAULT_ITER is 2048) */
#define PASSWORD_LEN 24    /* characters of a random PKCS#12 password (144 bits) */

const char *
flows_c_strerror(int e)
{
	switch (e) {
	case FLOWS_C_OK: return "ok";
	case FLOWS_C_INVALID: return "malformed input";
	case FLOWS_C_UNSUPPORTED: return "unsupported key or algorithm";
	case FLOWS_C_CRYPTO: return "cryptographic operation failed";
	case FLOWS_C_PASSWORD: return "wrong password";
	case FLOWS_C_PADDING: return "the OAEP padding does not check (wrong padding scheme or "
	    "corrupted ciphertext)";
	case FLOWS_C_KEY: return "the pfx key in keys is unavailable";
	case FLOWS_C_NOMEM: return "out of memory";
	default: return "unknown error";
	}
}

int32_t
flows_c_code(int e, bool *retry)
{
	*retry = false;
	switch (e) {
	case FLOWS_C_OK:
		return FLOWS_OK;
	case FLOWS_C_INVALID:
	case FLOWS_C_PADDING:
		return FLOWS_E_PARAMETER;
	case FLOWS_C_CRYPTO:
	case FLOWS_C_PASSWORD:
		return FLOWS_E_CRYPTO;
	case FLOWS_C_UNSUPPORTED:
		return FLOWS_E_NOT_SUPPORTED;
	case FLOWS_C_KEY:
	case FLOWS_C_NOMEM:
	default:
		*retry = true;
		return FLOWS_E_RETRYABLE;
	}
}

/* Was the last failure keys' (unreachable, timed out), rather than the data's? */
static bool
keys_failed(void)
{
	unsigned long e;
	bool keys = false;

	while ((e = ERR_get_error()) != 0)
		if (ERR_GET_LIB(e) == keyref_err_lib()) {
			int r = ERR_GET_REASON(e);
			/* unavailable, timeout and protocol trouble; a refusal of the data
			 * ("decryption failed", bad input) is not keys' failure */
			if (r == CC_KE_UNAVAILABLE || r == CC_KE_TIMEOUT || r == CC_KE_INTERNAL ||
			    r == CC_KE_TOKEN ||
			    r == KEYREF_R_PROTOCOL)
				keys = true;
		}
	return keys;
}

int
flows_c_password(char *out, size_t cap)
{
	static const char alphabet[] =
	    "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789-_.";
	unsigned char r[PASSWORD_LEN];

	if (cap < PASSWORD_LEN + 1)
		return FLOWS_C_INVALID;
	if (RAND_priv_bytes(r, sizeof(r)) != 1)
		return FLOWS_C_CRYPTO;
	/* 60 symbols: a byte modulo 60 is biased by under 0.4%, ~5.9 bits each, 141 in all */
	for (size_t i = 0; i < PASSWORD_LEN; i++)
		out[i] = alphabet[r[i] % (sizeof(alphabet) - 1)];
	out[PASSWORD_LEN] = '\0';
	OPENSSL_cleanse(r, sizeof(r));
	return FLOWS_C_OK;
}

int
flows_c_p12_pack(EVP_PKEY *key, X509 *cert, STACK_OF(X509) *chain, const char *password,
    bool legacy, uint8_t **der, size_t *len)
{
	PKCS12 *p12;
	unsigned char *d = NULL;
	int n, e = FLOWS_C_CRYPTO;

	*der = NULL;
	*len = 0;
	if (legacy) {
		/* 3DES with SHA-1 for both bags and a SHA-1 MAC: what older devices read */
		p12 = PKCS12_create_ex(password, NULL, key, cert, chain,
		    NID_pbe_WithSHA1And3_Key_TripleDES_CBC, NID_pbe_WithSHA1And3_Key_TripleDES_CBC,
		    P12_ITER, -1, 0, NULL, NULL);
		if (p12 != NULL && PKCS12_set_mac(p12, password, -1, NULL, 0, P12_ITER,
		    EVP_sha1()) != 1) {
			PKCS12_free(p12);
			p12 = NULL;
		}
	} else {
		/* NID 0: OpenSSL 3's default, PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC,
		 * and an HMAC-SHA256 MAC */
		p12 = PKCS12_create_ex(password, NULL, key, cert, chain, NID_aes_256_cbc,
		    NID_aes_256_cbc, P12_ITER, P12_ITER, 0, NULL, NULL);
	}
	if (p12 == NULL) {
		cc_log_openssl("flows: PKCS12_create");
		return FLOWS_C_CRYPTO;
	}
	n = i2d_PKCS12(p12, &d);
	if (n > 0) {
		*der = malloc((size_t)n);
		if (*der != NULL) {
			memcpy(*der, d, (size_t)n);
			*len = (size_t)n;
			e = FLOWS_C_OK;
		} else
			e = FLOWS_C_NOMEM;
		OPENSSL_cleanse(d, (size_t)n);
	}
	OPENSSL_free(d);
	PKCS12_free(p12);
	return e;
}

int
flows_c_p12_open(const uint8_t *der, size_t len, const char *password, EVP_PKEY **key,
    X509 **cert, STACK_OF(X509) **chain)
{
	const unsigned char *p = der;
	PKCS12 *p12;
	int e = FLOWS_C_OK;

	*key = NULL;
	*cert = NULL;
	*chain = NULL;
	p12 = d2i_PKCS12(NULL, &p, (long)len);
	if (p12 == NULL || p != der + len) {
		PKCS12_free(p12);
		ERR_clear_error();
		return FLOWS_C_INVALID;
	}
	if (PKCS12_mac_present(p12) && PKCS12_verify_mac(p12, password, -1) != 1) {
		e = FLOWS_C_PASSWORD;
		goto out;
	}
	if (PKCS12_parse(p12, password, key, cert, chain) != 1) {
		/* no MAC and a wrong password, or bags this build cannot decrypt (RC2) */
		e = PKCS12_mac_present(p12) ? FLOWS_C_UNSUPPORTED : FLOWS_C_PASSWORD;
		goto out;
	}
	if (*key == NULL || *cert == NULL || X509_check_private_key(*cert, *key) != 1) {
		e = FLOWS_C_INVALID;
		goto out;
	}
out:
	if (e != FLOWS_C_OK) {
		EVP_PKEY_free(*key);
		X509_free(*cert);
		sk_X509_pop_free(*chain, X509_free);
		*key = NULL;
		*cert = NULL;
		*chain = NULL;
	}
	ERR_clear_error();
	PKCS12_free(p12);
	return e;
}

/*
 * A certificate that only names a recipient known by its public key alone: CMS addresses a
 * key-transport or key-agreement recipient by a certificate (issuer and serial). The device
 * decrypts with its key and no certificate, as CMS_decrypt does when given none; the
 * throwaway signature is nobody's business.
 */
static X509 *
recipient_cert(EVP_PKEY *pub)
{
	EVP_PKEY *signer = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509 *x = X509_new();
	unsigned char serial[16];
	BIGNUM *bn = NULL;
	bool ok = false;

	if (signer == NULL || x == NULL || RAND_bytes(serial, sizeof(serial)) != 1)
		goto out;
	serial[0] &= 0x7f;
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	ok = bn != NULL && X509_set_version(x, 2) == 1 &&
	    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL &&
	    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
	    (const unsigned char *)"certconn device key", -1, -1, 0) == 1 &&
	    X509_set_issuer_name(x, X509_get_subject_name(x)) == 1 &&
	    X509_gmtime_adj(X509_getm_notBefore(x), 0) != NULL &&
	    X509_gmtime_adj(X509_getm_notAfter(x), 86400) != NULL &&
	    X509_set_pubkey(x, pub) == 1 && X509_sign(x, signer, EVP_sha256()) > 0;
out:
	BN_free(bn);
	EVP_PKEY_free(signer);
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

int
flows_c_seal(X509 *rcert, EVP_PKEY *rkey, const uint8_t *data, size_t len, uint8_t **out,
    size_t *outlen)
{
	STACK_OF(X509) *rcpt = sk_X509_new_null();
	X509 *made = NULL, *x = rcert;
	CMS_ContentInfo *cms = NULL;
	BIO *in = NULL;
	unsigned char *der = NULL;
	int n, e = FLOWS_C_CRYPTO;

	*out = NULL;
	*outlen = 0;
	if (rcpt == NULL)
		return FLOWS_C_NOMEM;
	if (x == NULL && rkey != NULL)
		x = made = recipient_cert(rkey);
	if (x == NULL || sk_X509_push(rcpt, x) <= 0)
		goto out;
	{
		EVP_PKEY *k = X509_get0_pubkey(x);
		if (k == NULL || (!EVP_PKEY_is_a(k, "RSA") && !EVP_PKEY_is_a(k, "EC"))) {
			e = FLOWS_C_UNSUPPORTED;
			goto out;
		}
	}
	in = BIO_new_mem_buf(data, (int)len);
	if (in == NULL) {
		e = FLOWS_C_NOMEM;
		goto out;
	}
	/* AES-256-CBC content; RSA key transport or ECDH key agreement by the key's type */
	cms = CMS_encrypt(rcpt, in, EVP_aes_256_cbc(), CMS_BINARY);
	if (cms == NULL || (n = i2d_CMS_ContentInfo(cms, &der)) <= 0) {
		cc_log_openssl("flows: CMS_encrypt");
		goto out;
	}
	*out = malloc((size_t)n);
	if (*out == NULL) {
		e = FLOWS_C_NOMEM;
		goto out;
	}
	memcpy(*out, der, (size_t)n);
	*outlen = (size_t)n;
	e = FLOWS_C_OK;
out:
	ERR_clear_error();
	OPENSSL_free(der);
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	sk_X509_free(rcpt);
	X509_free(made);
	return e;
}

int
flows_c_open(EVP_PKEY *key, const uint8_t *cms_der, size_t len, uint8_t **out,
    size_t *outlen)
{
	const unsigned char *p = cms_der;
	CMS_ContentInfo *cms = NULL;
	BIO *mem = NULL;
	BUF_MEM *bm;
	int e = FLOWS_C_CRYPTO;

	*out = NULL;
	*outlen = 0;
	cms = d2i_CMS_ContentInfo(NULL, &p, (long)len);
	if (cms == NULL || p != cms_der + len ||
	    OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_enveloped) {
		e = FLOWS_C_INVALID;
		goto out;
	}
	mem = BIO_new(BIO_s_mem());
	if (mem == NULL) {
		e = FLOWS_C_NOMEM;
		goto out;
	}
	/* No certificate: every recipient is tried with the key (the sender names the pfx key
	 * by a certificate of its own making). */
	if (CMS_decrypt(cms, key, NULL, NULL, mem, CMS_BINARY) != 1) {
		e = keys_failed() ? FLOWS_C_KEY : FLOWS_C_CRYPTO;
		goto out;
	}
	BIO_get_mem_ptr(mem, &bm);
	*out = malloc(bm->length > 0 ? bm->length : 1);
	if (*out == NULL) {
		e = FLOWS_C_NOMEM;
		goto out;
	}
	memcpy(*out, bm->data, bm->length);
	*outlen = bm->length;
	OPENSSL_cleanse(bm->data, bm->length);
	e = FLOWS_C_OK;
out:
	ERR_clear_error();
	BIO_free(mem);
	CMS_ContentInfo_free(cms);
	return e;
}

int
flows_c_password_decrypt(EVP_PKEY *key, const uint8_t *ct, size_t len, int md_bits,
    char **password)
{
	const char *md = md_bits == 256 ? "SHA256" : md_bits == 384 ? "SHA384" : "SHA512";
	EVP_PKEY_CTX *ctx = NULL;
	unsigned char pt[1024];
	size_t ptlen = sizeof(pt);
	int e = FLOWS_C_CRYPTO;

	*password = NULL;
	if (!EVP_PKEY_is_a(key, "RSA"))
		return FLOWS_C_UNSUPPORTED;
	if (len != (size_t)EVP_PKEY_get_size(key))
		return FLOWS_C_PADDING;
	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
	if (ctx == NULL || EVP_PKEY_decrypt_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_rsa_oaep_md_name(ctx, md, NULL) != 1 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md_name(ctx, md, NULL) != 1) {
		e = FLOWS_C_UNSUPPORTED;
		goto out;
	}
	if (EVP_PKEY_decrypt(ctx, pt, &ptlen, ct, len) != 1) {
		/* keys answers every decryption failure with one text (no padding oracle): a
		 * wrong scheme and a corrupted ciphertext look the same */
		e = keys_failed() ? FLOWS_C_KEY : FLOWS_C_PADDING;
		goto out;
	}
	/* The tooling's form: one byte per character; a NUL would cut the password. */
	if (ptlen == 0 || memchr(pt, '\0', ptlen) != NULL) {
		e = FLOWS_C_INVALID;
		goto out;
	}
	*password = malloc(ptlen + 1);
	if (*password == NULL) {
		e = FLOWS_C_NOMEM;
		goto out;
	}
	memcpy(*password, pt, ptlen);
	(*password)[ptlen] = '\0';
	e = FLOWS_C_OK;
out:
	ERR_clear_error();
	OPENSSL_cleanse(pt, sizeof(pt));
	EVP_PKEY_CTX_free(ctx);
	return e;
}
