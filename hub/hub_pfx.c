/*
 * The connectors' pfx keys and the password encryption of the PFX import (docs/protocol.md
 * sections 9 and 12): a connector reports the public half of its pfx role key in its health
 * messages; an administrator's PFX password is encrypted to it here, in the form of
 * Intune's PFX import tooling, so that only the connector's token can read it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "certconn/log.h"
#include "certconn/pkcs.h"
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
	/* pkcs_padding_md takes NULL as the default; here a scheme is always named */
	return scheme != NULL ? pkcs_padding_md(scheme) : NULL;
}

char *
hub_pfx_encrypt_password(EVP_PKEY *pub, const char *password, const char *scheme, char *why,
    size_t whylen)
{
	char *b64 = NULL, *out = NULL;

	if (hub_pfx_padding_md(scheme) == NULL) {
		snprintf(why, whylen, "paddingScheme must be OaepSha256, OaepSha384 or OaepSha512");
		return NULL;
	}
	/* The Intune form is certconn/pkcs.h's, so that the connector's decryption
	 * (pkcs_pfx_password_decrypt) reads exactly what is written here. */
	if (pkcs_pfx_password_encrypt(NULL, pub, password, scheme, &b64, why, whylen) != PKCS_OK)
		return NULL;
	out = strdup(b64);
	OPENSSL_free(b64);
	if (out == NULL)
		snprintf(why, whylen, "out of memory");
	return out;
}
