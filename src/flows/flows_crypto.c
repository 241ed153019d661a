/*
 * The flows' cryptographic operations (flows_int.h, flows_c_*) on certconn's crypto library
 * (src/pkcs, certconn/pkcs.h): PKCS#12, CMS envelopes to devices and to the pfx role, the
 * Intune PFX-import password form, imported PFX files. This file only adapts ownership and
 * error codes to the flows' (docs/flows.md); nothing here is cryptography of its own.
 *
 * Private-key operations of the pfx role go through the keyref key: pkcs runs only the RSA
 * private operation in keys (with keys' raw-RSA fallback for OAEP-SHA2 where the token
 * lacks it); the content of an envelope is decrypted here in net. pkcs's precise message
 * for a failure is logged (the flows' result carries the short reason).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "certconn/log.h"
#include "certconn/pkcs.h"
#include "flows_int.h"

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

/* pkcs's code as the flows', with pkcs's message logged. */
static int
map(enum pkcs_err e, const char *what, const char *err)
{
	if (e != PKCS_OK)
		cc_log_debug("flows: %s: %s (%s)", what, pkcs_strerror(e), err);
	switch (e) {
	case PKCS_OK: return FLOWS_C_OK;
	case PKCS_E_INVALID: return FLOWS_C_INVALID;
	case PKCS_E_UNSUPPORTED: return FLOWS_C_UNSUPPORTED;
	case PKCS_E_CRYPTO: return FLOWS_C_CRYPTO;
	case PKCS_E_PASSWORD: return FLOWS_C_PASSWORD;
	case PKCS_E_PADDING: return FLOWS_C_PADDING;
	case PKCS_E_KEY: return FLOWS_C_KEY;
	case PKCS_E_NOMEM: return FLOWS_C_NOMEM;
	default: return FLOWS_C_CRYPTO;
	}
}

/* pkcs's buffers, wiped and freed by pkcs_buf_free, as plain malloc'd ones for the flows. */
static int
take_buf(uint8_t *b, size_t n, uint8_t **out, size_t *outlen)
{
	*out = malloc(n > 0 ? n : 1);
	if (*out == NULL) {
		pkcs_buf_free(b, n);
		return FLOWS_C_NOMEM;
	}
	memcpy(*out, b, n);
	*outlen = n;
	pkcs_buf_free(b, n);
	return FLOWS_C_OK;
}

int
flows_c_password(char *out, size_t cap)
{
	if (cap < PKCS_PASSWORD_LEN + 1)
		return FLOWS_C_INVALID;
	return map(pkcs_password_random(out, PKCS_PASSWORD_LEN + 1), "password", "");
}

int
flows_c_p12_pack(EVP_PKEY *key, X509 *cert, STACK_OF(X509) *chain, const char *password,
    bool legacy, uint8_t **der, size_t *len)
{
	char err[512] = "";
	uint8_t *d = NULL;
	size_t n = 0;
	int e;

	*der = NULL;
	*len = 0;
	e = map(pkcs_p12_pack(NULL, key, cert, chain, password, legacy ? PKCS_P12_LEGACY :
	    PKCS_P12_AES256, NULL, &d, &n, err, sizeof(err)), "PKCS#12", err);
	return e == FLOWS_C_OK ? take_buf(d, n, der, len) : e;
}

int
flows_c_p12_open(const uint8_t *der, size_t len, const char *password, EVP_PKEY **key,
    X509 **cert, STACK_OF(X509) **chain)
{
	char err[512] = "";

	return map(pkcs_pfx_open(NULL, der, len, password, key, cert, chain, err, sizeof(err)),
	    "PFX", err);
}

int
flows_c_seal(X509 *rcert, EVP_PKEY *rkey, const uint8_t *data, size_t len, uint8_t **out,
    size_t *outlen)
{
	struct pkcs_device dev = { 0 };
	char err[512] = "";
	uint8_t *d = NULL;
	size_t n = 0;
	int e;

	*out = NULL;
	*outlen = 0;
	/* pkcs_device owns its members: references of the caller's objects */
	if (rcert != NULL) {
		dev.cert = rcert;
		X509_up_ref(rcert);
		dev.pub = X509_get_pubkey(rcert);
	} else if (rkey != NULL) {
		dev.pub = rkey;
		EVP_PKEY_up_ref(rkey);
	}
	if (dev.pub == NULL) {
		pkcs_device_clear(&dev);
		return FLOWS_C_INVALID;
	}
	if (!EVP_PKEY_is_a(dev.pub, "RSA") && !EVP_PKEY_is_a(dev.pub, "EC")) {
		pkcs_device_clear(&dev);
		return FLOWS_C_UNSUPPORTED;
	}
	e = map(pkcs_envelope_seal(NULL, data, len, &dev, &d, &n, err, sizeof(err)),
	    "sealing", err);
	pkcs_device_clear(&dev);
	return e == FLOWS_C_OK ? take_buf(d, n, out, outlen) : e;
}

int
flows_c_open(EVP_PKEY *key, const uint8_t *cms, size_t len, uint8_t **out, size_t *outlen)
{
	char err[512] = "";
	uint8_t *d = NULL;
	size_t n = 0;
	int e;

	*out = NULL;
	*outlen = 0;
	e = map(pkcs_envelope_open(NULL, cms, len, key, NULL, &d, &n, err, sizeof(err)),
	    "opening an envelope", err);
	return e == FLOWS_C_OK ? take_buf(d, n, out, outlen) : e;
}

int
flows_c_password_decrypt(EVP_PKEY *key, const uint8_t *ct, size_t len, int md_bits,
    char **password)
{
	const char *scheme = md_bits == 256 ? "OaepSha256" : md_bits == 384 ? "OaepSha384" :
	    "OaepSha512";
	char err[512] = "", *b64, *pw = NULL;
	int e;

	*password = NULL;
	b64 = flows_b64_encode(ct, len);
	if (b64 == NULL)
		return FLOWS_C_NOMEM;
	e = map(pkcs_pfx_password_decrypt(NULL, key, b64, scheme, &pw, err, sizeof(err)),
	    "the PFX password", err);
	free(b64);
	/* An OAEP check that fails under the announced scheme is a bad parameter of the
	 * request (a wrong scheme and a corrupted ciphertext look the same to keys). */
	if (e == FLOWS_C_CRYPTO)
		e = FLOWS_C_PADDING;
	if (e != FLOWS_C_OK)
		return e;
	*password = strdup(pw);
	pkcs_secret_free(pw);
	return *password != NULL ? FLOWS_C_OK : FLOWS_C_NOMEM;
}
