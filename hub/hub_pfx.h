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

#define HUB_PFX_PASSWORD_MAX 256u   /* characters of a PFX password */

/* A DER SubjectPublicKeyInfo that can take the PFX import's RSA-OAEP: RSA >= 2048 bits. */
EVP_PKEY *hub_pfx_key_parse(const uint8_t *der, size_t len, char *why, size_t whylen);

/* "OaepSha256" -> "SHA256", ... ; NULL for anything else. */
const char *hub_pfx_padding_md(const char *scheme);

/* The password's bytes, one per character (printable ASCII only). 0/-1. */
int hub_pfx_password_bytes(const char *password, uint8_t *out, size_t cap, size_t *outlen);

/*
 * RSA-OAEP (scheme "OaepSha256" | "OaepSha384" | "OaepSha512": that digest for OAEP and
 * MGF1, no label) of the password's bytes to pub: the base64 ciphertext (malloc'd), the
 * encryptedPassword of a pfx-import payload. The plaintext copy is wiped.
 */
char *hub_pfx_encrypt_password(EVP_PKEY *pub, const char *password, const char *scheme,
    char *why, size_t whylen);

#endif
