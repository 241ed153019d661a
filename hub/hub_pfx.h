/*
 * The connectors' pfx keys and the PFX import's password encryption (hub_pfx.c).
 * Error convention: NULL / -1 with the reason in why.
 */
#ifndef CERTCONN_HUB_PFX_H
#define CERTCONN_HUB_PFX_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

#include "hub.h"

#define HUB_PFX_PASSWORD_MAX 256u   /* characters of a PFX password (PKCS_MAX_PASSWORD) */

/* A DER SubjectPublicKeyInfo that can take the PFX import's RSA-OAEP: RSA >= 2048 bits. */
EVP_PKEY *hub_pfx_key_parse(const uint8_t *der, size_t len, char *why, size_t whylen);

/* "OaepSha256" -> "SHA256", ... ; NULL for anything else, NULL included. */
const char *hub_pfx_padding_md(const char *scheme);

/*
 * The encryptedPassword of a pfx-import payload: the password encrypted to pub in the
 * Intune PFX import form (certconn/pkcs.h, pkcs_pfx_password_encrypt: RSA-OAEP with the
 * scheme's digest for OAEP and MGF1, no label, one byte per character, U+0001..U+00FF),
 * base64 (malloc'd). NULL with why (a character beyond U+00FF, too long for the key, ...).
 */
char *hub_pfx_encrypt_password(EVP_PKEY *pub, const char *password, const char *scheme,
    char *why, size_t whylen);

#endif
