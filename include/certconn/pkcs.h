/*
 * pkcs: certconn's cryptography for the queued flows (issue 5): device keys, CSRs, PKCS#12,
 * CMS envelopes to devices, the Intune PFX-import password form and imported PFX files.
 *
 * Pure, synchronous functions over OpenSSL 3 objects. Nothing here is hand-made ASN.1 or
 * cryptography: PKCS12_create_ex / PKCS12_parse, CMS_encrypt_ex / CMS_decrypt,
 * EVP_PKEY_encrypt / EVP_PKEY_decrypt with RSA-OAEP, X509_REQ_sign_ex.
 *
 * Library contexts: every function that makes or decodes objects takes the caller's
 * OSSL_LIB_CTX (NULL = OpenSSL's default). net runs with a context of its own in which the
 * keyref provider is loaded (certconn/keyref.h): a keyref EVP_PKEY given as `key` to
 * pkcs_envelope_open or pkcs_pfx_password_decrypt runs only the RSA private operation in the
 * keys process; everything else (content decryption, OAEP parameters, base64) runs here.
 *
 * Errors: every function returns an enum pkcs_err (PKCS_OK = 0) and, on failure, writes a
 * precise NUL-terminated message into err (errlen bytes, may be NULL/0) that keeps OpenSSL's
 * own error text (and keys' text, which keyref puts on the error queue). The OpenSSL error
 * queue is left empty on return, success or failure.
 *
 * Ownership: every out parameter is set (to NULL / 0 on failure) and, on success, belongs
 * to the caller, to be freed as stated at each function. Secrets (passwords, plaintext
 * PKCS#12 and envelope contents, private keys in DER) are wiped by the library before its
 * own buffers are freed; the caller frees secrets it receives with pkcs_secret_free /
 * pkcs_buf_free, which wipe them.
 *
 * Input caps: PKCS_MAX_* below; a larger input is PKCS_E_INVALID, never a crash.
 *
 * Threads: no global state except the legacy provider's library context that pkcs_pfx_open
 * makes for one call when a PFX needs RC2 (freed before it returns). Any thread may call.
 *
 * See docs/pkcs.md for the algorithms, the formats and why.
 */
#ifndef CERTCONN_PKCS_H
#define CERTCONN_PKCS_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include <openssl/types.h>
#include <openssl/x509.h>

enum pkcs_err {
	PKCS_OK = 0,
	PKCS_E_INVALID,     /* malformed input: bad base64, DER that does not decode, over a cap */
	PKCS_E_UNSUPPORTED, /* a key type, curve, size or algorithm this library does not do */
	PKCS_E_CRYPTO,      /* decryption/verification failed: corrupted ciphertext, wrong key,
	                     * an envelope not addressed to the key, wrong OAEP scheme */
	PKCS_E_PASSWORD,    /* a PFX/PKCS#12 password that does not open it (MAC check) */
	PKCS_E_PADDING,     /* a padding scheme name that is wrong or unknown */
	PKCS_E_KEY,         /* the private-key operation failed in keys or the token
	                     * (unreachable, timeout, token fault): retryable */
	PKCS_E_NOMEM,
};

/* A static English description of e ("unknown error" for values out of range). */
const char *pkcs_strerror(enum pkcs_err e);

/* Caps on outside input (bytes). */
#define PKCS_MAX_PFX (256u * 1024u)        /* a PFX / PKCS#12 (DER) */
#define PKCS_MAX_CMS (512u * 1024u)        /* an envelope (DER) */
#define PKCS_MAX_PLAIN (256u * 1024u)      /* data sealed into an envelope */
#define PKCS_MAX_B64 (64u * 1024u)         /* a base64 text (device key/cert, password) */
#define PKCS_MAX_PASSWORD 256              /* password characters (bytes in the OAEP form) */
#define PKCS_MAX_SUBJECT 1024              /* a CSR subject string */
#define PKCS_MAX_SANS 100                  /* DNS names in a CSR */
#define PKCS_MAX_FRIENDLY_NAME 256         /* a PKCS#12 friendly name */

/* ---- 1. device keys ---- */

/*
 * true when spec is one of "rsa2048", "rsa3072", "rsa4096" (RSA, e = 65537), "p256",
 * "p384" (EC, named curve). Case-sensitive.
 */
bool pkcs_keyspec_valid(const char *spec);
/*
 * A new key pair of spec in libctx. *out: the caller frees with EVP_PKEY_free.
 * PKCS_E_UNSUPPORTED for an unknown spec.
 */
enum pkcs_err pkcs_keygen(OSSL_LIB_CTX *libctx, const char *spec, EVP_PKEY **out,
    char *err, size_t errlen);

/* ---- 2. CSR ---- */

/*
 * A PKCS#10 request for key's public key, signed with key (SHA-256; ECDSA or RSA PKCS#1
 * v1.5). subject: "CN=a,O=b,OU=c" (comma-separated TYPE=value, types OpenSSL knows by short
 * or long name; a backslash escapes ',' '=' '\\' in a value; UTF-8 values), at most
 * PKCS_MAX_SUBJECT bytes; "" or NULL = empty subject. dns_sans: n DNS names (n may be 0,
 * dns_sans then may be NULL), put in a subjectAltName extension request. *out: the caller
 * frees with X509_REQ_free. PKCS_E_INVALID for a subject that does not parse, an empty or
 * over-long DNS name; PKCS_E_KEY when key is a keyref key and keys fails to sign.
 */
enum pkcs_err pkcs_csr_build(OSSL_LIB_CTX *libctx, EVP_PKEY *key, const char *subject,
    const char *const *dns_sans, size_t n, X509_REQ **out, char *err, size_t errlen);

/* ---- 3. PKCS#12 ---- */

enum pkcs_p12_form {
	PKCS_P12_AES256 = 0, /* PBES2: AES-256-CBC, PBKDF2 HMAC-SHA256; MAC HMAC-SHA256 */
	PKCS_P12_LEGACY,     /* pbeWithSHAAnd3-KeyTripleDES-CBC for key and certificates,
	                      * SHA-1 MAC: for old clients (Windows 7/8, old Android) */
};
#define PKCS_P12_ITER 10000 /* PBKDF2 / PKCS#12 KDF iterations, and MAC iterations */

/*
 * A DER PKCS#12 of key (private, shrouded), cert (must match key) and chain (may be NULL;
 * not owned) under password (non-empty, at most PKCS_MAX_PASSWORD bytes), in form.
 * friendly_name may be NULL (at most PKCS_MAX_FRIENDLY_NAME bytes, UTF-8). *der: the
 * caller frees with pkcs_buf_free(*der, *len) (it holds the encrypted private key; wiped
 * anyway). PKCS_E_INVALID when cert and key disagree, an empty or long password or name.
 */
enum pkcs_err pkcs_p12_pack(OSSL_LIB_CTX *libctx, EVP_PKEY *key, X509 *cert,
    STACK_OF(X509) *chain, const char *password, enum pkcs_p12_form form,
    const char *friendly_name, uint8_t **der, size_t *len, char *err, size_t errlen);

/*
 * Fills out with len - 1 random printable characters from RAND_priv_bytes and a NUL
 * (alphabet: the 64 characters A-Z a-z 0-9 '-' '_', no bias: 6 bits each). len must be
 * 2..PKCS_MAX_PASSWORD + 1 (25 gives 144 bits). PKCS_OK, PKCS_E_INVALID for a bad len,
 * PKCS_E_CRYPTO if the DRBG fails (out then holds "").
 */
enum pkcs_err pkcs_password_random(char *out, size_t len);
#define PKCS_PASSWORD_LEN 24 /* the flows' PKCS#12 passwords: 24 characters, 144 bits */

/* ---- 4. envelopes to devices ---- */

/*
 * A device recipient: its public key and, when the request carried one, its certificate.
 * Both owned by the struct (pkcs_device_clear frees them). pub is always set when filled
 * (the certificate's key when cert is set).
 */
struct pkcs_device {
	EVP_PKEY *pub;
	X509 *cert;
};

/*
 * From the request's base64 fields: public_key_b64 a DER SubjectPublicKeyInfo, cert_b64 a
 * DER certificate (standard base64, whitespace ignored, each at most PKCS_MAX_B64). Either
 * may be NULL or "", not both. When the certificate is given it wins: its key is used and
 * public_key_b64 is ignored. dev is zeroed first; on failure it holds nothing.
 * PKCS_E_INVALID for bad base64 or DER; PKCS_E_UNSUPPORTED for a key other than RSA
 * (2048..8192 bits) or EC on P-256/P-384/P-521.
 */
enum pkcs_err pkcs_device_from_b64(OSSL_LIB_CTX *libctx, const char *public_key_b64,
    const char *cert_b64, struct pkcs_device *dev, char *err, size_t errlen);
/* Frees what dev holds and zeroes it (NULL and an empty dev are fine). */
void pkcs_device_clear(struct pkcs_device *dev);

/*
 * A DER CMS EnvelopedData (RFC 5652) of data (at most PKCS_MAX_PLAIN bytes) to dev:
 * content AES-256-CBC; an RSA device by key transport with RSAES-OAEP (SHA-256, MGF1
 * SHA-256, no label); an EC device by ECDH key agreement (dhSinglePass-stdDH-sha256kdf,
 * AES-256 key wrap). The recipient is identified by the certificate's issuer and serial
 * when dev->cert is set, else by subjectKeyIdentifier (RFC 5280 method 1: SHA-1 of the
 * subjectPublicKey bits), so a device holding only its private key opens it with
 * CMS_decrypt(cms, pkey, NULL, ...). *cms_der: the caller frees with
 * pkcs_buf_free(*cms_der, *cms_len).
 */
enum pkcs_err pkcs_envelope_seal(OSSL_LIB_CTX *libctx, const uint8_t *data, size_t len,
    const struct pkcs_device *dev, uint8_t **cms_der, size_t *cms_len, char *err,
    size_t errlen);

/*
 * Opens a DER EnvelopedData (at most PKCS_MAX_CMS bytes) with key (an in-memory key or a
 * keyref key: only the key transport / agreement runs with it; the content is decrypted
 * here, in libctx). The recipient is chosen by cert_or_NULL (issuer and serial, or its
 * SKI), else by key's subjectKeyIdentifier; when no recipient names the key, each
 * recipient of the key's type is tried (envelopes addressed by a certificate the caller
 * does not have). *plain: a secret, the caller frees with pkcs_buf_free(*plain, *plain_len).
 * PKCS_E_INVALID: not DER CMS, or not EnvelopedData; PKCS_E_CRYPTO: no recipient for the
 * key, key transport or content decryption fails (corrupted, wrong key); PKCS_E_KEY: keys
 * or its token failed (retry); PKCS_E_UNSUPPORTED: a key type or algorithm not supported.
 */
enum pkcs_err pkcs_envelope_open(OSSL_LIB_CTX *libctx, const uint8_t *cms, size_t len,
    EVP_PKEY *key, X509 *cert_or_NULL, uint8_t **plain, size_t *plain_len, char *err,
    size_t errlen);

/* ---- 6. the Intune PFX-import password form ---- */

/*
 * RSA-OAEP of a password to the connector's pfx key, as the Intune PFX import tooling makes
 * it: OAEP and MGF1 with the scheme's hash, no label, over the password's characters one
 * byte each (ISO 8859-1: password is UTF-8 here; every character must be U+0001..U+00FF,
 * so ASCII passwords are their own bytes; a character above U+00FF is PKCS_E_INVALID);
 * the ciphertext in standard base64 without line breaks.
 * padding_scheme: "OaepSha256", "OaepSha384" or "OaepSha512" (exact spelling; NULL means
 * "OaepSha512", the tooling's default); anything else is PKCS_E_PADDING.
 * pub: RSA public key (a certificate's or an SPKI's). *b64_out: NUL-terminated, the caller
 * frees with OPENSSL_free (not a secret).
 */
enum pkcs_err pkcs_pfx_password_encrypt(OSSL_LIB_CTX *libctx, EVP_PKEY *pub,
    const char *password, const char *padding_scheme, char **b64_out, char *err,
    size_t errlen);

/*
 * The reverse with the pfx key (a keyref key: keys decrypts, with its raw-RSA fallback for
 * OAEP-SHA2 where the token lacks it). *password_out: UTF-8, NUL-terminated, the caller frees
 * with pkcs_secret_free. PKCS_E_PADDING: unknown scheme; PKCS_E_INVALID: bad base64, a
 * ciphertext that is not the modulus length, a decrypted password that is empty or holds a
 * NUL; PKCS_E_CRYPTO: OAEP decoding fails (corrupted ciphertext, wrong scheme, wrong key);
 * PKCS_E_KEY: keys or the token failed (retry).
 */
enum pkcs_err pkcs_pfx_password_decrypt(OSSL_LIB_CTX *libctx, EVP_PKEY *key, const char *b64,
    const char *padding_scheme, char **password_out, char *err, size_t errlen);

/* The digest name ("SHA256", ...) of a padding scheme, NULL when unknown. */
const char *pkcs_padding_md(const char *padding_scheme);

/* ---- 7. imported PFX ---- */

/*
 * Opens a DER PFX (at most PKCS_MAX_PFX bytes) with password (NULL = no password). Made by
 * `openssl pkcs12 -export` (OpenSSL 3's AES-256/PBKDF2 default), its -legacy form
 * (RC2-40/3DES, SHA-1 MAC: parsed in a library context of its own with OpenSSL's legacy
 * provider, loaded only when needed), Windows' exports. *key: the private key matching
 * *cert (the bag with a local key id matching, else the first certificate that matches
 * the key); *chain: the other certificates (possibly empty, never NULL on success). All in
 * libctx; the caller frees them with EVP_PKEY_free, X509_free, sk_X509_pop_free.
 * PKCS_E_INVALID: not a PKCS#12, no key or no certificate for it; PKCS_E_PASSWORD: the MAC
 * does not verify (or, without a MAC, the bags do not decrypt); PKCS_E_UNSUPPORTED: an
 * algorithm not available (the message says when the legacy provider is missing).
 */
enum pkcs_err pkcs_pfx_open(OSSL_LIB_CTX *libctx, const uint8_t *pfx, size_t len,
    const char *password, EVP_PKEY **key, X509 **cert, STACK_OF(X509) **chain, char *err,
    size_t errlen);

/* ---- 8. freeing secrets ---- */

/* Wipes the NUL-terminated s and frees it (NULL is fine). */
void pkcs_secret_free(char *s);
/* Wipes len bytes of b and frees it (NULL is fine). */
void pkcs_buf_free(uint8_t *b, size_t len);

#endif
