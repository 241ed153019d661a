/*
 * cc_pkcs: PKCS#12 made (PKCS12_create_ex) and opened (PKCS12_verify_mac, PKCS12_parse),
 * random passwords.
 *
 * A PFX is decoded into a PKCS12 made with PKCS12_init_ex for the library context that is
 * to parse it (d2i into an existing object keeps its context, as `openssl pkcs12` does), so
 * the MAC, the PBEs and the keys use that context's providers. RC2 (the `-legacy` form's
 * certificate bag) lives only in OpenSSL's legacy provider: when parsing fails in the
 * caller's context, the PFX is parsed again in a context of its own with the legacy and
 * default providers, and the key and certificates are moved to the caller's context by
 * DER (the key's DER wiped).
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "pkcs_int.h"

enum pkcs_err
pkcs_password_random(char *out, size_t len)
{
	/* 64 symbols: a byte's low 6 bits pick one without bias */
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned char r[PKCS_MAX_PASSWORD];
	size_t n;

	if (out == NULL || len < 2 || len > PKCS_MAX_PASSWORD + 1) {
		if (out != NULL && len > 0)
			out[0] = '\0';
		return PKCS_E_INVALID;
	}
	n = len - 1;
	if (RAND_priv_bytes(r, (int)n) != 1) {
		ERR_clear_error();
		out[0] = '\0';
		return PKCS_E_CRYPTO;
	}
	for (size_t i = 0; i < n; i++)
		out[i] = alphabet[r[i] & 0x3f];
	out[n] = '\0';
	OPENSSL_cleanse(r, sizeof(r));
	return PKCS_OK;
}

enum pkcs_err
pkcs_p12_pack(OSSL_LIB_CTX *libctx, EVP_PKEY *key, X509 *cert, STACK_OF(X509) *chain,
    const char *password, enum pkcs_p12_form form, const char *friendly_name, uint8_t **der,
    size_t *len, char *err, size_t errlen)
{
	PKCS12 *p12 = NULL;
	unsigned char *d = NULL;
	EVP_MD *sha1 = NULL;
	enum pkcs_err e;
	int n = 0;

	*der = NULL;
	*len = 0;
	if (key == NULL || cert == NULL)
		return pkcs_fail(PKCS_E_INVALID, err, errlen, "PKCS#12: no key or certificate");
	if (password == NULL || *password == '\0' || strlen(password) > PKCS_MAX_PASSWORD)
		return pkcs_fail(PKCS_E_INVALID, err, errlen, "PKCS#12: password empty or over "
		    "%d bytes", PKCS_MAX_PASSWORD);
	if (friendly_name != NULL && strlen(friendly_name) > PKCS_MAX_FRIENDLY_NAME)
		return pkcs_fail(PKCS_E_INVALID, err, errlen, "PKCS#12: friendly name over %d "
		    "bytes", PKCS_MAX_FRIENDLY_NAME);
	if (X509_check_private_key(cert, key) != 1)
		return pkcs_fail(PKCS_E_INVALID, err, errlen, "PKCS#12: the certificate is not "
		    "the key's");
	switch (form) {
	case PKCS_P12_AES256:
		/* a cipher NID (not a PBE one) makes PBES2: PBKDF2 with HMAC-SHA256 and that
		 * cipher; the MAC's digest defaults to SHA-256 in OpenSSL 3 */
		p12 = PKCS12_create_ex(password, friendly_name, key, cert, chain,
		    NID_aes_256_cbc, NID_aes_256_cbc, PKCS_P12_ITER, PKCS_P12_ITER, 0, libctx,
		    NULL);
		break;
	case PKCS_P12_LEGACY:
		/* 3DES (PKCS#12 PBE with SHA-1) for both key and certificates, no MAC here:
		 * it is set below with SHA-1, the only digest old clients verify */
		p12 = PKCS12_create_ex(password, friendly_name, key, cert, chain,
		    NID_pbe_WithSHA1And3_Key_TripleDES_CBC, NID_pbe_WithSHA1And3_Key_TripleDES_CBC,
		    PKCS_P12_ITER, -1, 0, libctx, NULL);
		sha1 = EVP_MD_fetch(libctx, "SHA1", NULL);
		if (p12 != NULL && (sha1 == NULL || PKCS12_set_mac(p12, password, -1, NULL, 0,
		    PKCS_P12_ITER, sha1) != 1)) {
			e = pkcs_fail(PKCS_E_CRYPTO, err, errlen, "PKCS#12: SHA-1 MAC");
			goto out;
		}
		break;
	default:
		return pkcs_fail(PKCS_E_UNSUPPORTED, err, errlen, "PKCS#12: unknown form %d",
		    (int)form);
	}
	if (p12 == NULL) {
		e = pkcs_fail(PKCS_E_CRYPTO, err, errlen, "PKCS12_create");
		goto out;
	}
	n = i2d_PKCS12(p12, &d);
	if (n <= 0) {
		e = pkcs_fail(PKCS_E_CRYPTO, err, errlen, "PKCS#12 encoding");
		goto out;
	}
	*der = d;
	*len = (size_t)n;
	d = NULL;
	ERR_clear_error();
	e = PKCS_OK;
out:
	EVP_MD_free(sha1);
	PKCS12_free(p12);
	return e;
}

/* The caller's copy of an object parsed in another context, by DER. NULL on failure. */
static EVP_PKEY *
key_to(OSSL_LIB_CTX *libctx, EVP_PKEY *k)
{
	unsigned char *d = NULL;
	const unsigned char *p;
	EVP_PKEY *out = NULL;
	int n = i2d_PrivateKey(k, &d);

	if (n <= 0)
		return NULL;
	p = d;
	out = d2i_AutoPrivateKey_ex(NULL, &p, n, libctx, NULL);
	OPENSSL_clear_free(d, (size_t)n);
	return out;
}

static X509 *
cert_to(OSSL_LIB_CTX *libctx, X509 *x)
{
	unsigned char *d = NULL;
	const unsigned char *p;
	X509 *out;
	int n = i2d_X509(x, &d);

	if (n <= 0)
		return NULL;
	out = X509_new_ex(libctx, NULL);
	p = d;
	if (out != NULL && d2i_X509(&out, &p, n) == NULL)
		out = NULL; /* d2i freed it */
	OPENSSL_free(d);
	return out;
}

/* Outcome of one parse attempt. */
enum attempt { A_OK, A_GARBAGE, A_PASSWORD, A_PARSE };

/*
 * Decodes and parses der in ctx. A_PARSE: the MAC verified (or there is none) but the bags
 * do not parse (an algorithm the context lacks, or, without a MAC, a wrong password).
 */
static enum attempt
attempt(OSSL_LIB_CTX *ctx, const uint8_t *der, size_t len, const char *password,
    EVP_PKEY **key, X509 **cert, STACK_OF(X509) **chain, bool *has_mac)
{
	const unsigned char *p = der;
	PKCS12 *p12 = PKCS12_init_ex(NID_pkcs7_data, ctx, NULL);
	enum attempt a = A_PARSE;

	*has_mac = false;
	if (p12 == NULL)
		return A_PARSE;
	if (d2i_PKCS12(&p12, &p, (long)len) == NULL) {
		/* d2i freed p12 */
		return A_GARBAGE;
	}
	if (p != der + len) {
		a = A_GARBAGE;
		goto out;
	}
	*has_mac = PKCS12_mac_present(p12) == 1;
	if (*has_mac) {
		/* PKCS12_parse's own rule: no password may mean NULL or "" */
		bool ok = PKCS12_verify_mac(p12, password, -1) == 1;

		if (!ok && (password == NULL || *password == '\0'))
			ok = PKCS12_verify_mac(p12, password == NULL ? "" : NULL, 0) == 1;
		if (!ok) {
			a = A_PASSWORD;
			goto out;
		}
	}
	if (PKCS12_parse(p12, password, key, cert, chain) == 1)
		a = A_OK;
out:
	PKCS12_free(p12);
	return a;
}

enum pkcs_err
pkcs_pfx_open(OSSL_LIB_CTX *libctx, const uint8_t *pfx, size_t len, const char *password,
    EVP_PKEY **key, X509 **cert, STACK_OF(X509) **chain, char *err, size_t errlen)
{
	OSSL_LIB_CTX *legacy = NULL;
	OSSL_PROVIDER *prov_legacy = NULL, *prov_default = NULL;
	EVP_PKEY *k = NULL;
	X509 *c = NULL;
	STACK_OF(X509) *ca = NULL;
	enum attempt a;
	enum pkcs_err e;
	bool has_mac;

	*key = NULL;
	*cert = NULL;
	*chain = NULL;
	if (pfx == NULL || len == 0 || len > PKCS_MAX_PFX)
		return pkcs_fail(PKCS_E_INVALID, err, errlen, "PFX of %zu bytes (1..%u)", len,
		    PKCS_MAX_PFX);
	if (password != NULL && strlen(password) > PKCS_MAX_PASSWORD)
		return pkcs_fail(PKCS_E_INVALID, err, errlen, "PFX password over %d bytes",
		    PKCS_MAX_PASSWORD);
	a = attempt(libctx, pfx, len, password, &k, &c, &ca, &has_mac);
	if (a == A_PARSE) {
		/* maybe RC2 (or another algorithm only the legacy provider has) */
		sk_X509_pop_free(ca, X509_free);
		ca = NULL;
		ERR_clear_error();
		legacy = OSSL_LIB_CTX_new();
		if (legacy != NULL) {
			prov_legacy = OSSL_PROVIDER_load(legacy, "legacy");
			prov_default = OSSL_PROVIDER_load(legacy, "default");
		}
		if (prov_legacy == NULL || prov_default == NULL) {
			e = pkcs_fail(PKCS_E_UNSUPPORTED, err, errlen, "PFX: its bags do not "
			    "parse%s, and OpenSSL's legacy provider (for RC2) is not available",
			    has_mac ? "" : " (wrong password?)");
			goto out;
		}
		a = attempt(legacy, pfx, len, password, &k, &c, &ca, &has_mac);
		if (a == A_OK) {
			EVP_PKEY *k2 = k != NULL ? key_to(libctx, k) : NULL;
			X509 *c2 = c != NULL ? cert_to(libctx, c) : NULL;

			EVP_PKEY_free(k);
			X509_free(c);
			k = k2;
			c = c2;
			for (int i = 0; i < sk_X509_num(ca); i++) {
				X509 *x = cert_to(libctx, sk_X509_value(ca, i));

				X509_free(sk_X509_value(ca, i));
				(void)sk_X509_set(ca, i, x);
				if (x == NULL) {
					e = pkcs_fail(PKCS_E_NOMEM, err, errlen, "PFX: chain");
					goto out;
				}
			}
			if (k == NULL || c == NULL) {
				e = pkcs_fail(PKCS_E_INVALID, err, errlen, "PFX: %s", k == NULL ?
				    "no private key" : "no certificate for the key");
				goto out;
			}
		}
	}
	switch (a) {
	case A_OK:
		break;
	case A_GARBAGE:
		e = pkcs_fail(PKCS_E_INVALID, err, errlen, "not a DER PKCS#12 (PFX)");
		goto out;
	case A_PASSWORD:
		e = pkcs_fail(PKCS_E_PASSWORD, err, errlen, "PFX: wrong password (MAC does not "
		    "verify)");
		goto out;
	case A_PARSE:
		e = pkcs_fail(has_mac ? PKCS_E_INVALID : PKCS_E_PASSWORD, err, errlen,
		    has_mac ? "PFX: its bags do not parse" : "PFX without a MAC: its bags do not "
		    "decrypt (wrong password?)");
		goto out;
	}
	if (k == NULL || c == NULL) {
		e = pkcs_fail(PKCS_E_INVALID, err, errlen, "PFX: %s", k == NULL ?
		    "no private key" : "no certificate for the key");
		goto out;
	}
	if (ca == NULL && (ca = sk_X509_new_null()) == NULL) {
		e = pkcs_fail(PKCS_E_NOMEM, err, errlen, "PFX");
		goto out;
	}
	*key = k;
	*cert = c;
	*chain = ca;
	k = NULL;
	c = NULL;
	ca = NULL;
	ERR_clear_error();
	e = PKCS_OK;
out:
	EVP_PKEY_free(k);
	X509_free(c);
	sk_X509_pop_free(ca, X509_free);
	OSSL_PROVIDER_unload(prov_legacy);
	OSSL_PROVIDER_unload(prov_default);
	OSSL_LIB_CTX_free(legacy);
	return e;
}
