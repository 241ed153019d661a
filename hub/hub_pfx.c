/*
 * The connectors' pfx keys and the password encryption of the PFX import (docs/protocol.md
 * sections 9 and 12): a connector reports the public half of its pfx role key in its health
 * messages; an administrator's PFX password is encrypted to it here, in the form of
 * Intune's PFX import tooling, so that only the connector's token can read it.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "certconn/log.h"
#include "hub_pfx.h"

EVP_PKEY *
hub_pfx_key_parse(const uint8_t *der, size_t len, char *why, size_t whylen)
{
	const unsigned char *p = der;
	EVP_PKEY *k;

	if (len == 0 || len > HUB_SPKI_MAX) {
		snprintf(why, whylen, "not a public key of at most %u bytes", HUB_SPKI_MAX);
		return NULL;
	}
	k = d2i_PUBKEY(NULL, &p, (long)len);
	if (k == NULL || p != der + len) {
		ERR_clear_error();
		EVP_PKEY_free(k);
		snprintf(why, whylen, "not a DER SubjectPublicKeyInfo");
		return NULL;
	}
	/* RSA-OAEP is the only form of the PFX import: an EC or short key is no use. */
	if (EVP_PKEY_get_base_id(k) != EVP_PKEY_RSA || EVP_PKEY_get_bits(k) < 2048) {
		EVP_PKEY_free(k);
		snprintf(why, whylen, "not an RSA key of at least 2048 bits");
		return NULL;
	}
	return k;
}

const char *
hub_pfx_padding_md(const char *scheme)
{
	if (scheme == NULL)
		return NULL;
	if (strcmp(scheme, "OaepSha256") == 0)
		return "SHA256";
	if (strcmp(scheme, "OaepSha384") == 0)
		return "SHA384";
	if (strcmp(scheme, "OaepSha512") == 0)
		return "SHA512";
	return NULL;
}

int
hub_pfx_password_bytes(const char *password, uint8_t *out, size_t cap, size_t *outlen)
{
	size_t n = 0;

	/*
	 * One byte per character. Printable ASCII only: there every reading of "one byte per
	 * character" (the tooling's, the connector's, OpenSSL's PKCS#12 password) gives the same
	 * bytes; a character beyond it would be one byte in one reading and two in another, and
	 * the PFX would not open.
	 */
	for (const char *s = password; *s != '\0'; s++) {
		if (*s < 0x20 || *s > 0x7e || n >= cap)
			return -1;
		out[n++] = (uint8_t)*s;
	}
	if (n == 0)
		return -1;
	*outlen = n;
	return 0;
}

char *
hub_pfx_encrypt_password(EVP_PKEY *pub, const char *password, const char *scheme, char *why,
    size_t whylen)
{
	const char *mdname = hub_pfx_padding_md(scheme);
	const EVP_MD *md = NULL;
	EVP_PKEY_CTX *pc = NULL;
	uint8_t pw[HUB_PFX_PASSWORD_MAX], *ct = NULL;
	size_t pwlen = 0, ctlen = 0;
	char *b64 = NULL;

	if (mdname == NULL) {
		snprintf(why, whylen, "paddingScheme must be OaepSha256, OaepSha384 or OaepSha512");
		goto out;
	}
	if (hub_pfx_password_bytes(password, pw, sizeof(pw), &pwlen) == -1) {
		snprintf(why, whylen, "the password must be 1-%u printable ASCII characters",
		    HUB_PFX_PASSWORD_MAX);
		goto out;
	}
	md = EVP_get_digestbyname(mdname);
	pc = EVP_PKEY_CTX_new(pub, NULL);
	if (md == NULL || pc == NULL || EVP_PKEY_encrypt_init(pc) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_OAEP_PADDING) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_oaep_md(pc, md) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md(pc, md) <= 0 ||
	    EVP_PKEY_encrypt(pc, NULL, &ctlen, pw, pwlen) <= 0 ||
	    (ct = malloc(ctlen)) == NULL ||
	    EVP_PKEY_encrypt(pc, ct, &ctlen, pw, pwlen) <= 0) {
		/* e.g. a password too long for OAEP-SHA512 with this key size */
		cc_log_openssl("hub: RSA-OAEP encryption of a PFX password");
		snprintf(why, whylen, "the password cannot be encrypted with %s to this key "
		    "(too long for the key size?)", scheme);
		goto out;
	}
	b64 = hub_b64_encode(ct, ctlen);
	if (b64 == NULL)
		snprintf(why, whylen, "out of memory");
out:
	OPENSSL_cleanse(pw, sizeof(pw));
	free(ct);
	EVP_PKEY_CTX_free(pc);
	return b64;
}
