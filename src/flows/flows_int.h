/* Internals of the flows in net (src/flows/), shared by its files. */
#ifndef CC_FLOWS_INT_H
#define CC_FLOWS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <openssl/types.h>
#include <openssl/x509v3.h>

#include "certconn/config_flows.h"
#include "certconn/flows.h"

struct cc_ca;

/* base64 of flows_payload.c: decode refuses anything but canonical padded base64 of at
 * most max decoded bytes (0/-1); encode returns a malloc'd string or NULL. */
int flows_b64_decode(const char *s, size_t max, uint8_t **out, size_t *outlen);
char *flows_b64_encode(const uint8_t *d, size_t n);
const char *flows_subject_attr_name(int i);

enum flows_kind {
	FLOWS_PKCS = 0,
	FLOWS_RECRYPT,
	FLOWS_IMPORT,
	FLOWS_REVOKE,
	FLOWS_NKINDS
};

/* The event ids of one flow (0: the flow has no such event). */
struct flows_events {
	uint32_t downloaded;         /* 1020 ... */
	uint32_t ok;                 /* the work's success event: 1050, 1250, 2050, 3050 */
	uint32_t attempt;            /* FailedAttempt: 1051, 0, 2051, 3052 */
	uint32_t fail;               /* 1052, 1253, 2052, 3051 */
	uint32_t upload_ok, upload_fail, uploaded;
	uint32_t admin_ok, admin_fail;
};

/* One leased request on its way through a worker. */
struct flows_job {
	enum flows_kind kind;
	char id[FLOWS_ID_MAX + 1];
	char corr[FLOWS_ID_MAX + 1];
	uint32_t lease_attempt;      /* the service's attempt count */
	cJSON *payload;              /* owned copy */
	struct flows_result res;     /* what the worker decided */
	struct flows_job *next;
};

/* What the flow functions get from the engine (flows.c); borrowed for net's life. */
struct flows_env {
	const struct cc_config_flows *conf;
	struct flows_store *store;
	struct flows_keypool *pool;
	struct cc_ca *ca;            /* the local CA, or NULL (no net.ca) */
	OSSL_LIB_CTX *libctx;
	EVP_PKEY *pfx_key;           /* keyref key of the pfx role (private ops in keys), or NULL */
	EVP_PKEY *pfx_pub;           /* its public half (default provider), or NULL */
	X509 *pfx_cert;              /* the role's certificate, or NULL */
};

/* The flows' bodies (flow_*.c). Each fills j->res: succeeded, code, message, result_json. */
void flow_pkcs_run(const struct flows_env *env, struct flows_job *j);
void flow_recrypt_run(const struct flows_env *env, struct flows_job *j);
void flow_import_run(const struct flows_env *env, struct flows_job *j);
void flow_revoke_run(const struct flows_env *env, struct flows_job *j);

const struct flows_events *flows_events_of(enum flows_kind k);
const char *flows_feature_of(enum flows_kind k);

/*
 * Runs step (returning FLOWS_OK, or a code with *retry saying whether trying again may
 * help) up to conf->max_attempts times with backoff between tries, emitting the flow's
 * FailedAttempt event (if it has one) for each failure that is followed by another try.
 * Returns the last code; why holds the last reason. false from flows_sleep_ms: stopping.
 */
typedef int32_t (*flows_step_fn)(void *arg, bool *retry, char *why, size_t whylen);
int32_t flows_retry(const struct flows_env *env, const struct flows_job *j, const char *what,
    flows_step_fn step, void *arg, char *why, size_t whylen);
bool flows_sleep_ms(uint32_t ms);

/* Sets j->res to a failure (the flow's failure event is the caller's). */
void flows_fail(struct flows_job *j, int32_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Sets j->res to success with result (taken, may be NULL). */
void flows_succeed(struct flows_job *j, cJSON *result);

/* A cJSON string's bytes wiped before the tree is freed (passwords). */
void flows_json_wipe_delete(cJSON *o);

/* flows_names.c: the CSR of a pkcs request from its payload (NULL with why on failure). */
X509_NAME *flows_subject_build(const struct flows_pkcs_req *r, char *why, size_t whylen);
GENERAL_NAMES *flows_sans_build(const struct flows_pkcs_req *r, char *why, size_t whylen);
X509_REQ *flows_csr_build(EVP_PKEY *key, X509_NAME *subject, GENERAL_NAMES *sans, char *why,
    size_t whylen);

/* ---- cryptography (flows_crypto.c, OpenSSL's PKCS#12, CMS and RSA-OAEP) ---- */

enum flows_cerr {
	FLOWS_C_OK = 0,
	FLOWS_C_INVALID,             /* malformed input (a PKCS#12 or CMS that does not decode) */
	FLOWS_C_UNSUPPORTED,         /* a key type or algorithm not supported */
	FLOWS_C_CRYPTO,              /* the operation failed (not for this key, tampered) */
	FLOWS_C_PASSWORD,            /* a PKCS#12 password that does not open it */
	FLOWS_C_PADDING,             /* an OAEP check that fails */
	FLOWS_C_KEY,                 /* keys unreachable or failing: worth another try */
	FLOWS_C_NOMEM,
};
#define FLOWS_C_PASSWORD_MAX 64

/* The flows' error code of a flows_cerr (docs/flows.md): INVALID, PADDING 4002; CRYPTO,
 * PASSWORD 4003; UNSUPPORTED 4006; KEY, NOMEM 4100 with *retry. */
int32_t flows_c_code(int e, bool *retry);
const char *flows_c_strerror(int e);
/* A random password of printable ASCII (out: at least FLOWS_C_PASSWORD_MAX + 1 bytes). */
int flows_c_password(char *out, size_t cap);
/* PKCS#12 (DER, malloc'd) of key, cert and chain: AES-256/PBKDF2 or legacy 3DES/SHA-1. */
int flows_c_p12_pack(EVP_PKEY *key, X509 *cert, STACK_OF(X509) *chain, const char *password,
    bool legacy, uint8_t **der, size_t *len);
int flows_c_p12_open(const uint8_t *der, size_t len, const char *password, EVP_PKEY **key,
    X509 **cert, STACK_OF(X509) **chain);
/* CMS EnvelopedData (AES-256-CBC) of data to rcert, or to the bare public key rkey. */
int flows_c_seal(X509 *rcert, EVP_PKEY *rkey, const uint8_t *data, size_t len,
    uint8_t **out, size_t *outlen);
/* Opens an EnvelopedData with key (a keyref key: the key transport runs in keys). */
int flows_c_open(EVP_PKEY *key, const uint8_t *cms, size_t len, uint8_t **out,
    size_t *outlen);
/* RSA-OAEP (SHA-256/384/512 for OAEP and MGF1) ciphertext of a password, decrypted with
 * key (in keys); *password NUL-terminated, malloc'd, the caller wipes it. */
int flows_c_password_decrypt(EVP_PKEY *key, const uint8_t *ct, size_t len, int md_bits,
    char **password);

/* ---- delivery (flows_deliver.c) ---- */

struct flows_cert_facts {
	char serial[64];             /* upper-case hex, as the CA stores it */
	char thumbprint[41];         /* SHA-1, upper-case hex */
	char not_after[32];          /* ISO 8601 UTC */
	char subject[512];           /* RFC 2253 */
};
int flows_cert_facts(X509 *x, struct flows_cert_facts *f);

struct flows_delivery {
	EVP_PKEY *key;               /* the device's private key */
	X509 *cert;
	STACK_OF(X509) *chain;       /* may be NULL */
	bool legacy;                 /* 3DES/SHA-1 PKCS#12 */
	bool keep_copy;              /* add keptCopy, sealed to the pfx role */
	const char *keyspec;         /* for the result, or NULL */
	const char *purpose;         /* intendedPurpose, or NULL */
	const struct flows_device *device;
};

/* Packs, seals for the device and builds the result object (*result, owned). FLOWS_OK or
 * a code with *retry and why. */
int32_t flows_deliver(const struct flows_env *env, const struct flows_delivery *d,
    cJSON **result, bool *retry, char *why, size_t whylen);

/* The device's public key from struct flows_device (certificate or SPKI), owned. */
EVP_PKEY *flows_device_key(const struct flows_device *d);

#endif
