/*
 * cc_pkcs: errors, base64 and freeing secrets. OpenSSL's EVP_Decode* does the base64 (its
 * block decoder, so that a length not a multiple of 4, i.e. truncated text, is refused).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "certconn/keyref.h"
#include "certconn/proto.h"
#include "pkcs_int.h"

const char *
pkcs_strerror(enum pkcs_err e)
{
	switch (e) {
	case PKCS_OK: return "ok";
	case PKCS_E_INVALID: return "malformed input";
	case PKCS_E_UNSUPPORTED: return "unsupported key or algorithm";
	case PKCS_E_CRYPTO: return "decryption or verification failed";
	case PKCS_E_PASSWORD: return "wrong password";
	case PKCS_E_PADDING: return "wrong or unknown padding scheme";
	case PKCS_E_KEY: return "private-key operation failed in keys";
	case PKCS_E_NOMEM: return "out of memory";
	}
	return "unknown error";
}

/* The class of one queued error after a private-key operation failed (see pkcs_fail_key). */
static enum pkcs_err
classify(unsigned long code, enum pkcs_err e)
{
	if (ERR_GET_LIB(code) != keyref_err_lib())
		return e;
	switch (ERR_GET_REASON(code)) {
	case CC_KE_UNAVAILABLE:
	case CC_KE_TIMEOUT:
	case CC_KE_TOKEN:
	case CC_KE_INTERNAL:
	case CC_KE_NOKEY:
	case CC_KE_DENIED:
	case KEYREF_R_PROTOCOL:
	case KEYREF_R_NO_PRIVATE:
		return PKCS_E_KEY;
	case KEYREF_R_UNSUPPORTED:
		return e == PKCS_E_KEY ? e : PKCS_E_UNSUPPORTED;
	default:
		/* CC_KE_BADINPUT (keys' one text "decryption failed"): the data's fault */
		return e;
	}
}

static enum pkcs_err
vfail(enum pkcs_err e, bool key_op, char *err, size_t errlen, const char *fmt, va_list ap)
{
	const char *data;
	unsigned long code;
	size_t used = 0;
	int flags, n;

	if (err != NULL && errlen > 0) {
		n = vsnprintf(err, errlen, fmt, ap);
		used = n < 0 ? 0 : ((size_t)n >= errlen ? errlen - 1 : (size_t)n);
		err[used] = '\0';
	}
	/* ERR_get_error_all: oldest first, so the root cause comes first */
	for (int i = 0; (code = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0; i++) {
		const char *reason, *d;
		char buf[256];

		if (key_op)
			e = classify(code, e);
		if (err == NULL || used + 1 >= errlen)
			continue;
		reason = ERR_reason_error_string(code);
		if (reason == NULL) {
			ERR_error_string_n(code, buf, sizeof(buf));
			reason = buf;
		}
		d = (flags & ERR_TXT_STRING) && data != NULL ? data : "";
		n = snprintf(err + used, errlen - used, "%s%s%s%s%s", i == 0 ? ": " : "; ",
		    reason, *d != '\0' ? " (" : "", d, *d != '\0' ? ")" : "");
		if (n > 0)
			used = (size_t)n >= errlen - used ? errlen - 1 : used + (size_t)n;
	}
	return e;
}

enum pkcs_err
pkcs_fail(enum pkcs_err e, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	e = vfail(e, false, err, errlen, fmt, ap);
	va_end(ap);
	return e;
}

enum pkcs_err
pkcs_fail_key(enum pkcs_err dflt, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	enum pkcs_err e;

	va_start(ap, fmt);
	e = vfail(dflt, true, err, errlen, fmt, ap);
	va_end(ap);
	return e;
}

int
pkcs_b64_decode(const char *in, size_t inlen, uint8_t **out, size_t *outlen, int *nomem)
{
	char *clean = NULL;
	uint8_t *buf = NULL;
	size_t n = 0;
	int r = -1, dl;

	*out = NULL;
	*outlen = 0;
	*nomem = 0;
	if (inlen > PKCS_MAX_B64 * 2)
		return -1;
	clean = OPENSSL_malloc(inlen + 1);
	if (clean == NULL) {
		*nomem = 1;
		return -1;
	}
	for (size_t i = 0; i < inlen; i++)
		if (!isspace((unsigned char)in[i]))
			clean[n++] = in[i];
	/* truncated text: base64 comes in groups of 4 */
	if (n == 0 || n % 4 != 0 || n > PKCS_MAX_B64)
		goto out;
	buf = OPENSSL_malloc(n / 4 * 3);
	if (buf == NULL) {
		*nomem = 1;
		goto out;
	}
	/* EVP_DecodeBlock keeps the '=' padding's zero bytes: count them off */
	dl = EVP_DecodeBlock(buf, (const unsigned char *)clean, (int)n);
	if (dl < 0)
		goto out;
	if (clean[n - 1] == '=')
		dl--;
	if (clean[n - 2] == '=')
		dl--;
	/* '=' only at the end */
	for (size_t i = 0; i + 2 < n; i++)
		if (clean[i] == '=')
			goto out;
	if (n >= 3 && clean[n - 2] == '=' && clean[n - 1] != '=')
		goto out;
	*out = buf;
	*outlen = (size_t)dl;
	buf = NULL;
	r = 0;
out:
	OPENSSL_clear_free(clean, inlen + 1);
	OPENSSL_free(buf);
	return r;
}

char *
pkcs_b64_encode(const uint8_t *in, size_t len)
{
	size_t cap = (len + 2) / 3 * 4 + 1;
	char *s;

	if (len > INT32_MAX / 2)
		return NULL;
	s = OPENSSL_malloc(cap);
	if (s == NULL)
		return NULL;
	(void)EVP_EncodeBlock((unsigned char *)s, in, (int)len);
	return s;
}

int
pkcs_key_ski(OSSL_LIB_CTX *libctx, EVP_PKEY *key, unsigned char ski[20])
{
	X509_PUBKEY *xpk = NULL;
	const unsigned char *pk;
	EVP_MD *sha1 = NULL;
	int pklen, r = -1;

	if (X509_PUBKEY_set(&xpk, key) != 1 ||
	    X509_PUBKEY_get0_param(NULL, &pk, &pklen, NULL, xpk) != 1)
		goto out;
	sha1 = EVP_MD_fetch(libctx, "SHA1", NULL);
	if (sha1 != NULL && EVP_Digest(pk, (size_t)pklen, ski, NULL, sha1, NULL) == 1)
		r = 0;
out:
	EVP_MD_free(sha1);
	X509_PUBKEY_free(xpk);
	return r;
}

void
pkcs_secret_free(char *s)
{
	if (s == NULL)
		return;
	OPENSSL_clear_free(s, strlen(s));
}

void
pkcs_buf_free(uint8_t *b, size_t len)
{
	if (b == NULL)
		return;
	OPENSSL_clear_free(b, len);
}
