/* keyref internals shared by the provider's files. Not for use outside hsm/keyref. */
#ifndef KEYREF_INT_H
#define KEYREF_INT_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>

#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/err.h>

#include "certconn/keyref.h"

/* Property query for everything keyref does locally on public keys and digests. */
#define KR_DEFAULT_PROPQ "provider=default"

/*
 * Private import parameter of keyref_load_key: a struct keyref_key_info (by value, its
 * buffers borrowed) so the import does not ask keys a second time.
 */
#define KR_PARAM_KEY_INFO "keyref-key-info"

/* Pushes a keyref error (reason: cc_keys_err or KEYREF_R_*) with a formatted text. */
#define kr_raise(reason, ...) \
	(ERR_new(), ERR_set_debug(OPENSSL_FILE, OPENSSL_LINE, OPENSSL_FUNC), \
	ERR_set_error(keyref_err_lib(), (int)(reason), __VA_ARGS__))

struct kr_provctx {
	OSSL_LIB_CTX *libctx;
	const OSSL_CORE_HANDLE *handle;
	struct keyref_client *cl;   /* default client for keys imported by role alone */
};

/*
 * A keyref key (the key manager's keydata). With role == NULL it is a public key only
 * (made by importing public parameters, as EVP_PKEY_eq does when it compares keys of two
 * providers); private operations on it fail with KEYREF_R_NO_PRIVATE.
 * Reference counted: the signature and cipher contexts keep a reference.
 */
struct kr_key {
	atomic_int refs;
	struct kr_provctx *pctx;
	int type;                   /* CC_KEY_RSA or CC_KEY_EC, fixed by the key manager */
	char *role;
	struct keyref_client *cl;   /* borrowed; outlives the key */
	uint32_t mechs;
	uint32_t flags;
	EVP_PKEY *pub;              /* default provider; public part (or EC parameters only) */
	int has_pub;                /* pub holds a public key, not just domain parameters */
	uint8_t *cert;
	size_t cert_len;
};

struct kr_key *kr_key_new(struct kr_provctx *pctx, int type);
int kr_key_up_ref(struct kr_key *k);
void kr_key_free(struct kr_key *k);
/* Key size in bytes for RSA (modulus) or the largest ECDSA DER signature. */
size_t kr_key_sig_size(const struct kr_key *k);

extern const OSSL_DISPATCH kr_rsa_keymgmt_functions[];
extern const OSSL_DISPATCH kr_ec_keymgmt_functions[];
extern const OSSL_DISPATCH kr_rsa_signature_functions[];
extern const OSSL_DISPATCH kr_ecdsa_signature_functions[];
extern const OSSL_DISPATCH kr_rsa_asym_cipher_functions[];

/* OpenSSL's padding mode names <-> numbers, for the int and the string forms of params. */
int kr_pad_from_param(const OSSL_PARAM *p, int *pad);

#endif
