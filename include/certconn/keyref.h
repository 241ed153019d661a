/*
 * keyref: the OpenSSL 3 provider that net uses for private keys it does not hold.
 *
 * net has no private keys. keyref gives it EVP_PKEY objects (RSA and EC) whose public
 * operations run locally with the default provider and whose private operations (sign,
 * decrypt) are sent to the keys process over the internal channels (proto.h messages).
 * The rest of net uses plain EVP_PKEY / X509_sign / CMS / libssl APIs with these keys.
 *
 * Layers and their error conventions:
 *  - keyref_client: a pool of channels to keys. Request functions return an enum
 *    cc_keys_err (CC_KE_OK on success) and, on failure, also push an error on OpenSSL's
 *    error queue (library "keyref", reason = the cc_keys_err code, or a KEYREF_R_* reason
 *    for what keyref refuses itself) carrying keys' own text, so whatever logs the OpenSSL
 *    error queue with its data strings shows why keys refused.
 *  - the provider and keyref_load_key: 0/-1 and NULL, with the reason on the error queue.
 *
 * Threads: every function may be called from any thread. A client serves as many
 * concurrent private-key operations as it has channels; further callers wait for a free
 * channel (within the client's timeout).
 *
 * See docs/keyref.md.
 */
#ifndef CERTCONN_KEYREF_H
#define CERTCONN_KEYREF_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

#include "certconn/proto.h"

#define KEYREF_PROVIDER_NAME "keyref"
#define KEYREF_PROPQ "provider=keyref"

/* OSSL_PARAM names understood by the keyref key manager (EVP_PKEY_fromdata / get_params). */
#define KEYREF_PARAM_ROLE "keyref-role"     /* utf8: the key role in keys (import, get) */
#define KEYREF_PARAM_CLIENT "keyref-client" /* octet ptr: struct keyref_client * (import) */
#define KEYREF_PARAM_CERT "keyref-cert"     /* octet string: the role's DER certificate (get) */
#define KEYREF_PARAM_FLAGS "keyref-flags"   /* uint32: CC_ROLE_* of the role (get) */
#define KEYREF_PARAM_MECHS "keyref-mechs"   /* uint32: CC_MECH_* of the role (get) */

struct keyref_client;

/*
 * Called when keys sends a malformed reply or one of the wrong type: per the design that
 * is fatal for net. key_role is the key role of the request, type the received message
 * type (0 if the frame header itself was bad), why a static description. The default hook
 * logs "malformed <TYPE> reply from keys (key role R): why" and exits with status 1. A hook
 * that returns (tests) makes the request fail with CC_KE_INTERNAL and KEYREF_R_PROTOCOL on
 * the error queue (and a channel whose stream is out of step is not used again until
 * keyref_client_replace_fds).
 */
typedef void (*keyref_fatal_fn)(void *arg, const char *key_role, uint16_t type,
    const char *why);

/*
 * A client over nfds (1..CC_MAX_PEER_CHANNELS) connected stream sockets to keys. Takes
 * ownership of the descriptors: they are closed by keyref_client_free or when replaced.
 * timeout_ms bounds each request, waiting for a free channel included (<= 0: 10000).
 * NULL on failure (errno set).
 */
struct keyref_client *keyref_client_new(const int *fds, int nfds, int timeout_ms);
/* Closes the channels. Every EVP_PKEY loaded through cl must have been freed. */
void keyref_client_free(struct keyref_client *cl);
/*
 * Swaps in new channels (keys was restarted by the parent). Takes ownership of fds; the old
 * ones are closed at once, or, when a request is running on one, as soon as it ends (that
 * request fails as keys went away). Keys loaded earlier go on working with the new
 * channels. 0/-1.
 */
int keyref_client_replace_fds(struct keyref_client *cl, const int *fds, int nfds);
void keyref_client_set_fatal(struct keyref_client *cl, keyref_fatal_fn fn, void *arg);
void keyref_client_set_timeout(struct keyref_client *cl, int timeout_ms);

/* KEY_INFO of a role, copied out of the reply (free with keyref_key_info_free). */
struct keyref_key_info {
	char *role;
	uint8_t key_type;      /* enum cc_key_type */
	uint32_t bits;
	uint32_t mechs;        /* CC_MECH_* */
	uint32_t flags;        /* CC_ROLE_* */
	uint8_t *spki;         /* DER SubjectPublicKeyInfo */
	size_t spki_len;
	uint8_t *cert;         /* DER certificate, NULL when keys has none */
	size_t cert_len;
};

/*
 * The raw requests, for the provider and for tools. Each returns CC_KE_OK or the failure's
 * cc_keys_err (CC_KE_UNAVAILABLE when keys cannot be reached, CC_KE_TIMEOUT when it does not
 * answer within the client's timeout), with an error pushed on OpenSSL's queue.
 * Output buffers: *outlen gets the length; a reply longer than cap fails (CC_KE_INTERNAL).
 */
uint32_t keyref_client_key_info(struct keyref_client *cl, const char *role,
    struct keyref_key_info *ki);
void keyref_key_info_free(struct keyref_key_info *ki);
uint32_t keyref_client_sign(struct keyref_client *cl, const struct cc_sign_req *req,
    uint8_t *sig, size_t cap, size_t *siglen);
uint32_t keyref_client_sign_tbs(struct keyref_client *cl, const struct cc_sign_tbs_req *req,
    uint8_t *sig, size_t cap, size_t *siglen);
/* The plaintext in out is a secret: the caller wipes it. */
uint32_t keyref_client_decrypt(struct keyref_client *cl, const struct cc_decrypt_req *req,
    uint8_t *out, size_t cap, size_t *outlen);

/*
 * Registers keyref as a built-in provider of libctx and loads it, and the "default"
 * provider too (keyref relies on it for digests and public-key operations). cl is the
 * client used for keys imported by role without an explicit client (KEYREF_PARAM_ROLE
 * alone); it must outlive libctx's use of the provider. 0/-1.
 *
 * keyref registers key managers "RSA" and "EC", signatures "RSA" and "ECDSA" and the asym
 * cipher "RSA" with the property "provider=keyref". It has no key generation: code that
 * makes keys gets the default provider's (which OpenSSL prefers when no property query
 * is given, as providers are searched in name order).
 */
int keyref_provider_load(OSSL_LIB_CTX *libctx, struct keyref_client *cl);
/*
 * Gives back the provider references keyref_provider_load took (call it before
 * OSSL_LIB_CTX_free, after every keyref key of libctx is freed; without it the providers
 * leak at exit). Unknown libctx: nothing happens.
 */
void keyref_provider_unload(OSSL_LIB_CTX *libctx);

/*
 * Asks keys for the role's KEY_INFO and returns a keyref EVP_PKEY (RSA or EC) of libctx (a
 * context keyref_provider_load ran on): its public part is local, its private operations go
 * to keys over cl (which must outlive the key). The key also works with objects of other
 * library contexts (an SSL_CTX or CMS structure of the default context, as libcurl's): OpenSSL
 * then finds keyref's signature or cipher through the key itself.
 * When cert is not NULL, *cert gets the role's certificate if keys has one, else NULL
 * (the caller frees it). NULL on failure, with keys' reason on the error queue.
 */
EVP_PKEY *keyref_load_key(OSSL_LIB_CTX *libctx, struct keyref_client *cl, const char *role,
    X509 **cert);

/* The OpenSSL error library number of "keyref" errors (ERR_GET_LIB), registered on first use. */
int keyref_err_lib(void);

/* Local reasons, besides the cc_keys_err codes 1..8 that keys' own errors use. */
#define KEYREF_R_NO_PRIVATE 100   /* a public-only key was asked for a private operation */
#define KEYREF_R_UNSUPPORTED 101  /* operation, padding or digest keyref does not offer */
#define KEYREF_R_BAD_PARAM 102
#define KEYREF_R_TOO_LARGE 103    /* input over the message size cap */
#define KEYREF_R_PROTOCOL 104     /* malformed reply from keys (fatal hook returned) */
#define KEYREF_R_BUFFER 105       /* caller's output buffer too small */
#define KEYREF_R_TBS_ONLY 106     /* the role signs only whole certificates and CRLs */
#define KEYREF_R_NOT_TBS 107      /* data to sign for a TBS-only role is no TBS */

#endif
