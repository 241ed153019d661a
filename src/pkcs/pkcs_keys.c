/*
 * cc_pkcs: device key pairs (EVP_PKEY_Q_keygen) and PKCS#10 requests (X509_REQ_sign_ex,
 * SHA-256). The subject string is split here; each attribute goes through
 * X509_NAME_add_entry_by_txt, which knows the attribute types.
 */
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "pkcs_int.h"

static const struct {
	const char *spec, *type, *param;
	size_t bits;
} specs[] = {
	{ "rsa2048", "RSA", NULL, 2048 },
	{ "rsa3072", "RSA", NULL, 3072 },
	{ "rsa4096", "RSA", NULL, 4096 },
	{ "p256", "EC", "P-256", 0 },
	{ "p384", "EC", "P-384", 0 },
};

bool
pkcs_keyspec_valid(const char *spec)
{
	if (spec == NULL)
		return false;
	for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++)
		if (strcmp(spec, specs[i].spec) == 0)
			return true;
	return false;
}

enum pkcs_err
pkcs_keygen(OSSL_LIB_CTX *libctx, const char *spec, EVP_PKEY **out, char *err, size_t errlen)
{
	*out = NULL;
	for (size_t i = 0; spec != NULL && i < sizeof(specs) / sizeof(specs[0]); i++) {
		if (strcmp(spec, specs[i].spec) != 0)
			continue;
		/* no property query: the default provider's generator even in net's context,
		 * where keyref has none */
		if (specs[i].param == NULL)
			*out = EVP_PKEY_Q_keygen(libctx, NULL, "RSA", specs[i].bits);
		else
			*out = EVP_PKEY_Q_keygen(libctx, NULL, "EC", specs[i].param);
		if (*out == NULL)
			return pkcs_fail(PKCS_E_CRYPTO, err, errlen, "%s key generation failed",
			    spec);
		ERR_clear_error();
		return PKCS_OK;
	}
	return pkcs_fail(PKCS_E_UNSUPPORTED, err, errlen, "unknown key spec \"%s\" (rsa2048, "
	    "rsa3072, rsa4096, p256, p384)", spec != NULL ? spec : "(null)");
}

/*
 * Parses "CN=a,O=b" into name. A backslash escapes the next character (',' '=' '\\').
 * Returns 0, -1 on a malformed string (why filled).
 */
static int
subject_parse(const char *s, X509_NAME *name, char *why, size_t whylen)
{
	char type[64], value[PKCS_MAX_SUBJECT + 1];
	size_t tl, vl;
	const char *p = s;

	while (*p != '\0') {
		while (*p == ' ')
			p++;
		for (tl = 0; *p != '\0' && *p != '='; p++) {
			if (*p == ',' || tl + 1 >= sizeof(type)) {
				snprintf(why, whylen, "attribute type without '=' near \"%.20s\"", p);
				return -1;
			}
			type[tl++] = *p;
		}
		while (tl > 0 && type[tl - 1] == ' ')
			tl--;
		type[tl] = '\0';
		if (*p != '=' || tl == 0) {
			snprintf(why, whylen, "expected TYPE=value near \"%.20s\"", p);
			return -1;
		}
		p++;
		for (vl = 0; *p != '\0' && *p != ','; p++) {
			if (*p == '\\') {
				if (p[1] == '\0') {
					snprintf(why, whylen, "dangling backslash");
					return -1;
				}
				p++;
			}
			value[vl++] = *p;
		}
		value[vl] = '\0';
		if (vl == 0) {
			snprintf(why, whylen, "empty value for %s", type);
			return -1;
		}
		if (X509_NAME_add_entry_by_txt(name, type, MBSTRING_UTF8,
		    (const unsigned char *)value, (int)vl, -1, 0) != 1) {
			snprintf(why, whylen, "attribute %.40s=%.100s refused", type, value);
			return -1;
		}
		if (*p == ',')
			p++;
		if (*p == '\0' && p[-1] == ',') {
			snprintf(why, whylen, "trailing ','");
			return -1;
		}
	}
	return 0;
}

enum pkcs_err
pkcs_csr_build(OSSL_LIB_CTX *libctx, EVP_PKEY *key, const char *subject,
    const char *const *dns_sans, size_t n, X509_REQ **out, char *err, size_t errlen)
{
	X509_REQ *req = NULL;
	X509_NAME *name = NULL;
	GENERAL_NAMES *gens = NULL;
	STACK_OF(X509_EXTENSION) *exts = NULL;
	EVP_MD_CTX *mctx = NULL;
	char why[256];
	enum pkcs_err e;

	*out = NULL;
	if (key == NULL)
		return pkcs_fail(PKCS_E_INVALID, err, errlen, "CSR: no key");
	if (subject != NULL && strlen(subject) > PKCS_MAX_SUBJECT)
		return pkcs_fail(PKCS_E_INVALID, err, errlen, "CSR: subject over %u bytes",
		    PKCS_MAX_SUBJECT);
	if (n > PKCS_MAX_SANS || (n > 0 && dns_sans == NULL))
		return pkcs_fail(PKCS_E_INVALID, err, errlen, "CSR: %zu DNS names (at most %u)",
		    n, PKCS_MAX_SANS);
	req = X509_REQ_new_ex(libctx, NULL);
	name = X509_NAME_new();
	if (req == NULL || name == NULL) {
		e = pkcs_fail(PKCS_E_NOMEM, err, errlen, "CSR");
		goto out;
	}
	if (subject != NULL && subject_parse(subject, name, why, sizeof(why)) == -1) {
		e = pkcs_fail(PKCS_E_INVALID, err, errlen, "CSR subject \"%s\": %s", subject,
		    why);
		goto out;
	}
	if (n > 0) {
		gens = GENERAL_NAMES_new();
		exts = sk_X509_EXTENSION_new_null();
		if (gens == NULL || exts == NULL) {
			e = pkcs_fail(PKCS_E_NOMEM, err, errlen, "CSR");
			goto out;
		}
		for (size_t i = 0; i < n; i++) {
			GENERAL_NAME *g;
			ASN1_IA5STRING *ia5;
			size_t l = dns_sans[i] != NULL ? strlen(dns_sans[i]) : 0;

			if (l == 0 || l > 253) {
				e = pkcs_fail(PKCS_E_INVALID, err, errlen, "CSR: DNS name %zu is "
				    "empty or over 253 characters", i);
				goto out;
			}
			g = GENERAL_NAME_new();
			ia5 = ASN1_IA5STRING_new();
			if (g == NULL || ia5 == NULL ||
			    ASN1_STRING_set(ia5, dns_sans[i], (int)l) != 1) {
				GENERAL_NAME_free(g);
				ASN1_IA5STRING_free(ia5);
				e = pkcs_fail(PKCS_E_NOMEM, err, errlen, "CSR");
				goto out;
			}
			GENERAL_NAME_set0_value(g, GEN_DNS, ia5);
			if (sk_GENERAL_NAME_push(gens, g) <= 0) {
				GENERAL_NAME_free(g);
				e = pkcs_fail(PKCS_E_NOMEM, err, errlen, "CSR");
				goto out;
			}
		}
		if (X509V3_add1_i2d(&exts, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) != 1 ||
		    X509_REQ_add_extensions(req, exts) != 1) {
			e = pkcs_fail(PKCS_E_CRYPTO, err, errlen, "CSR: subjectAltName");
			goto out;
		}
	}
	if (X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1 ||
	    X509_REQ_set_subject_name(req, name) != 1 || X509_REQ_set_pubkey(req, key) != 1) {
		e = pkcs_fail(PKCS_E_CRYPTO, err, errlen, "CSR");
		goto out;
	}
	mctx = EVP_MD_CTX_new();
	if (mctx == NULL ||
	    EVP_DigestSignInit_ex(mctx, NULL, "SHA256", libctx, NULL, key, NULL) != 1 ||
	    X509_REQ_sign_ctx(req, mctx) <= 0) {
		e = pkcs_fail_key(PKCS_E_CRYPTO, err, errlen, "CSR signature");
		goto out;
	}
	*out = req;
	req = NULL;
	ERR_clear_error();
	e = PKCS_OK;
out:
	EVP_MD_CTX_free(mctx);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	GENERAL_NAMES_free(gens);
	X509_NAME_free(name);
	X509_REQ_free(req);
	return e;
}
