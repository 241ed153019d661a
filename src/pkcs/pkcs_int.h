/* cc_pkcs internals: error reporting, base64, keys-failure classification. */
#ifndef CC_PKCS_INT_H
#define CC_PKCS_INT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "certconn/pkcs.h"

/*
 * Writes "what: OpenSSL's queued errors" into err (when err != NULL), clears the queue and
 * returns e. The queue's texts (with their data strings: keys' own reason for keyref
 * errors) are joined with "; ".
 */
enum pkcs_err pkcs_fail(enum pkcs_err e, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * pkcs_fail after a private-key operation failed: the result is PKCS_E_KEY when keyref
 * queued keys unreachable, a timeout, a token fault, a missing or refused key, or a
 * protocol error; PKCS_E_UNSUPPORTED when keyref does not offer the operation; else dflt
 * (the data's fault: keys answers every decryption failure with one text).
 */
enum pkcs_err pkcs_fail_key(enum pkcs_err dflt, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * Decodes standard base64 (whitespace ignored, '=' padding required to a multiple of 4) into
 * a new buffer (OPENSSL_malloc'd, *out, *outlen). 0, or -1 for malformed text / no memory
 * (*nomem says which).
 */
int pkcs_b64_decode(const char *in, size_t inlen, uint8_t **out, size_t *outlen, int *nomem);
/* Encodes into a NUL-terminated OPENSSL_malloc'd string without line breaks, NULL on ENOMEM. */
char *pkcs_b64_encode(const uint8_t *in, size_t len);

/* SHA-1 of key's subjectPublicKey bits (RFC 5280 4.2.1.2 method 1) into ski[20]. 0/-1. */
int pkcs_key_ski(OSSL_LIB_CTX *libctx, EVP_PKEY *key, unsigned char ski[20]);

#endif
