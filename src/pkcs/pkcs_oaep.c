/*
 * cc_pkcs: the Intune PFX-import password form. RSA-OAEP (EVP_PKEY_encrypt/decrypt with
 * the scheme's digest for OAEP and MGF1, no label) over the password's characters one
 * byte each, base64 ciphertext. The PFX import tooling converts the password string to
 * bytes one per character; here the password is UTF-8, so characters U+0001..U+00FF are
 * mapped to one byte each (ISO 8859-1) and back, and larger ones are refused: an ASCII
 * password is its own bytes either way.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "pkcs_int.h"

const char *
pkcs_padding_md(const char *padding_scheme)
{
	if (padding_scheme == NULL || strcmp(padding_scheme, "OaepSha512") == 0)
		return "SHA512";
	if (strcmp(padding_scheme, "OaepSha384") == 0)
		return "SHA384";
	if (strcmp(padding_scheme, "OaepSha256") == 0)
		return "SHA256";
	return NULL;
}

/* UTF-8 to one byte per character (U+0001..U+00FF). Length, or -1 (why set). */
static int
to_latin1(const char *s, unsigned char *out, size_t cap, const char **why)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = 0;

	while (*p != '\0') {
		unsigned int c;

		if (n >= cap) {
			*why = "over the maximum length";
			return -1;
		}
		if (*p < 0x80) {
			c = *p++;
		} else if ((*p & 0xe0) == 0xc0 && (p[1] & 0xc0) == 0x80) {
			c = ((unsigned int)(p[0] & 0x1f) << 6) | (p[1] & 0x3f);
			if (c < 0x80) {
				*why = "malformed UTF-8 (overlong)";
				return -1;
			}
			p += 2;
		} else if ((*p & 0xc0) == 0x80) {
			*why = "malformed UTF-8";
			return -1;
		} else {
			*why = "a character above U+00FF (the form has one byte per character)";
			return -1;
		}
		if (c > 0xff) {
			*why = "a character above U+00FF (the form has one byte per character)";
			return -1;
		}
		out[n++] = (unsigned char)c;
	}
	return (int)n;
}

static EVP_PKEY_CTX *
oaep_ctx(OSSL_LIB_CTX *libctx, EVP_PKEY *k, const char *md, bool enc)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(libctx, k, NULL);

	if (ctx == NULL || (enc ? EVP_PKEY_encrypt_init(ctx) : EVP_PKEY_decrypt_init(ctx)) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_rsa_oaep_md_name(ctx, md, NULL) != 1 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md_name(ctx, md, NULL) != 1) {
		EVP_PKEY_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

enum pkcs_err
pkcs_pfx_password_encrypt(OSSL_LIB_CTX *libctx, EVP_PKEY *pub, const char *password,
    const char *padding_scheme, char **b64_out, char *err, size_t errlen)
{
	unsigned char pw[PKCS_MAX_PASSWORD];
	unsigned char *ct = NULL;
	size_t ctlen = 0;
	EVP_PKEY_CTX *ctx = NULL;
	const char *md = pkcs_padding_md(padding_scheme), *why = NULL;
	enum pkcs_err e;
	int n = 0;

	*b64_out = NULL;
	if (md == NULL)
		return pkcs_fail(PKCS_E_PADDING, err, errlen, "padding scheme \"%s\" (OaepSha256, "
		    "OaepSha384, OaepSha512)", padding_scheme);
	if (pub == NULL || !EVP_PKEY_is_a(pub, "RSA"))
		return pkcs_fail(PKCS_E_UNSUPPORTED, err, errlen, "password encryption needs an "
		    "RSA public key");
	if (password == NULL || *password == '\0') {
		e = pkcs_fail(PKCS_E_INVALID, err, errlen, "empty password");
		goto out;
	}
	n = to_latin1(password, pw, sizeof(pw), &why);
	if (n < 0) {
		e = pkcs_fail(PKCS_E_INVALID, err, errlen, "password: %s", why);
		goto out;
	}
	ctx = oaep_ctx(libctx, pub, md, true);
	if (ctx == NULL) {
		e = pkcs_fail(PKCS_E_CRYPTO, err, errlen, "RSA-OAEP-%s setup", md);
		goto out;
	}
	ct = OPENSSL_malloc((size_t)EVP_PKEY_get_size(pub));
	ctlen = (size_t)EVP_PKEY_get_size(pub);
	if (ct == NULL) {
		e = pkcs_fail(PKCS_E_NOMEM, err, errlen, "password encryption");
		goto out;
	}
	/* OAEP fits k - 2*hLen - 2 bytes: 126 for RSA-2048 with SHA-512 */
	if (EVP_PKEY_encrypt(ctx, ct, &ctlen, pw, (size_t)n) != 1) {
		e = pkcs_fail(PKCS_E_INVALID, err, errlen, "RSA-OAEP-%s of a %d-byte password "
		    "with a %d-bit key", md, n, EVP_PKEY_get_bits(pub));
		goto out;
	}
	*b64_out = pkcs_b64_encode(ct, ctlen);
	if (*b64_out == NULL) {
		e = pkcs_fail(PKCS_E_NOMEM, err, errlen, "password encryption");
		goto out;
	}
	ERR_clear_error();
	e = PKCS_OK;
out:
	OPENSSL_cleanse(pw, sizeof(pw));
	OPENSSL_free(ct);
	EVP_PKEY_CTX_free(ctx);
	return e;
}

enum pkcs_err
pkcs_pfx_password_decrypt(OSSL_LIB_CTX *libctx, EVP_PKEY *key, const char *b64,
    const char *padding_scheme, char **password_out, char *err, size_t errlen)
{
	const char *md = pkcs_padding_md(padding_scheme);
	EVP_PKEY_CTX *ctx = NULL;
	uint8_t *ct = NULL;
	size_t ctlen = 0, ptlen, outl = 0;
	unsigned char *pt = NULL;
	char *pw = NULL;
	enum pkcs_err e;
	int nomem;

	*password_out = NULL;
	if (md == NULL)
		return pkcs_fail(PKCS_E_PADDING, err, errlen, "padding scheme \"%s\" (OaepSha256, "
		    "OaepSha384, OaepSha512)", padding_scheme);
	if (key == NULL || !EVP_PKEY_is_a(key, "RSA"))
		return pkcs_fail(PKCS_E_UNSUPPORTED, err, errlen, "password decryption needs an "
		    "RSA key");
	if (b64 == NULL || strlen(b64) > PKCS_MAX_B64)
		return pkcs_fail(PKCS_E_INVALID, err, errlen, "encrypted password: missing or "
		    "over %u bytes", PKCS_MAX_B64);
	if (pkcs_b64_decode(b64, strlen(b64), &ct, &ctlen, &nomem) == -1)
		return pkcs_fail(nomem ? PKCS_E_NOMEM : PKCS_E_INVALID, err, errlen, "encrypted "
		    "password: %s", nomem ? "out of memory" : "malformed or truncated base64");
	if (ctlen != (size_t)EVP_PKEY_get_size(key)) {
		e = pkcs_fail(PKCS_E_INVALID, err, errlen, "encrypted password: %zu bytes, the "
		    "key's modulus is %d", ctlen, EVP_PKEY_get_size(key));
		goto out;
	}
	ctx = oaep_ctx(libctx, key, md, false);
	if (ctx == NULL) {
		e = pkcs_fail_key(PKCS_E_CRYPTO, err, errlen, "RSA-OAEP-%s setup", md);
		goto out;
	}
	ptlen = ctlen;
	pt = OPENSSL_secure_malloc(ptlen);
	if (pt == NULL) {
		e = pkcs_fail(PKCS_E_NOMEM, err, errlen, "password decryption");
		goto out;
	}
	if (EVP_PKEY_decrypt(ctx, pt, &ptlen, ct, ctlen) != 1) {
		/* keys answers any decryption failure with one text: a wrong scheme and a
		 * corrupted ciphertext are the same PKCS_E_CRYPTO; keys' own trouble is KEY */
		e = pkcs_fail_key(PKCS_E_CRYPTO, err, errlen, "encrypted password: RSA-OAEP-%s "
		    "decryption failed (wrong padding scheme, corrupted ciphertext or not for "
		    "this key)", md);
		goto out;
	}
	if (ptlen == 0 || ptlen > PKCS_MAX_PASSWORD || memchr(pt, '\0', ptlen) != NULL) {
		e = pkcs_fail(PKCS_E_INVALID, err, errlen, "decrypted password is empty, over %d "
		    "bytes or holds a NUL", PKCS_MAX_PASSWORD);
		goto out;
	}
	/* one byte per character back to UTF-8: at most two bytes each */
	pw = OPENSSL_malloc(ptlen * 2 + 1);
	if (pw == NULL) {
		e = pkcs_fail(PKCS_E_NOMEM, err, errlen, "password decryption");
		goto out;
	}
	for (size_t i = 0; i < ptlen; i++) {
		if (pt[i] < 0x80) {
			pw[outl++] = (char)pt[i];
		} else {
			pw[outl++] = (char)(0xc0 | (pt[i] >> 6));
			pw[outl++] = (char)(0x80 | (pt[i] & 0x3f));
		}
	}
	pw[outl] = '\0';
	*password_out = pw;
	pw = NULL;
	ERR_clear_error();
	e = PKCS_OK;
out:
	if (pt != NULL)
		OPENSSL_secure_clear_free(pt, ctlen);
	OPENSSL_free(ct);
	EVP_PKEY_CTX_free(ctx);
	return e;
}
