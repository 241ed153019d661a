/*
 * In-process PKCS#11 API for the administrator's tools (certconnctl token init / dev up) and
 * for tests. certconnd never uses this: its keys role has its own session pool (keys.h).
 *
 * Module loading sets module_env ("NAME=value", e.g. "SOFTHSM2_CONF=/x/softhsm2.conf", or
 * NULL/"") in this process's environment first, because SoftHSM reads its configuration
 * file name from the environment at C_Initialize.
 *
 * Error convention: 0/-1 (NULL for constructors); every failure is logged with cc_log_err
 * in words that name the module, token, role or PKCS#11 return value concerned.
 */
#ifndef CERTCONN_HSM_H
#define CERTCONN_HSM_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

enum hsm_key_alg { HSM_KEY_RSA = 1, HSM_KEY_EC = 2 };

/* What a role's private key may do (CKA_SIGN / CKA_DECRYPT). */
#define HSM_USE_SIGN 0x1u
#define HSM_USE_DECRYPT 0x2u

struct hsm_role_spec {
	const char *role;      /* becomes CKA_LABEL of the pair: "ca", "ra", "client", … */
	enum hsm_key_alg alg;
	unsigned rsa_bits;     /* RSA: 2048 … 4096 */
	const char *ec_curve;  /* EC: "P-256", "P-384", "P-521" or an OpenSSL curve name */
	unsigned usage;        /* HSM_USE_*; 0 = hsm_default_usage(role) */
};

struct hsm_role_result {
	char uri[512];         /* RFC 7512, e.g. "pkcs11:token=certconn;object=ca;id=%AB…" */
	int created;           /* 1: generated now; 0: a key with that label existed */
	enum hsm_key_alg alg;  /* of the key found or made */
};

struct hsm_token_params {
	const char *module;        /* PKCS#11 module path */
	const char *module_env;    /* "NAME=value" or NULL */
	const char *label;         /* token label (<= 32 bytes) */
	const char *so_pin;        /* needed (and used) only when the token is initialised here */
	const char *user_pin;
	const struct hsm_role_spec *roles;
	size_t nroles;
};

/*
 * Initialises the token if no initialised token has this label (C_InitToken on a free
 * slot, C_InitPIN), then, for each role without a private key labelled with its name,
 * generates a pair (private: CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE, not CKA_EXTRACTABLE,
 * CKA_SIGN/CKA_DECRYPT per usage; CKA_ID 16 random bytes shared by the pair; CKA_LABEL =
 * role). out[i] (nroles entries) receives each role's URI.
 */
int hsm_token_init(const struct hsm_token_params *p, struct hsm_role_result *out);

/* The usual usage of a role name: ca/client/tls/ra-sign sign, pfx/ra-encrypt decrypt, ra both. */
unsigned hsm_default_usage(const char *role);

struct hsm_ca_params {
	const char *module;
	const char *module_env;
	const char *key_uri;       /* the ca role's key */
	const char *user_pin;
	const char *subject;       /* "CN=certconn local CA,O=certconn" (comma-separated RDNs) */
	unsigned days;             /* validity from now */
	const char *md;            /* "SHA256" (default when NULL), "SHA384", "SHA512" */
	const char *out_pem;       /* written with mode 0644; NULL: not written */
};

/*
 * Makes a self-signed CA certificate for the key at key_uri: v3, 128-bit random serial,
 * basicConstraints critical CA:TRUE, keyUsage critical keyCertSign+cRLSign+
 * digitalSignature, subjectKeyIdentifier and authorityKeyIdentifier. The TBSCertificate is
 * signed in this process through PKCS#11 (the one place the ca key signs without keys: the
 * administrator's bootstrap). The certificate is checked with its own public key, written to
 * out_pem, and returned as DER in *der (malloc'd; may be NULL if not wanted).
 */
int hsm_selfsign_ca(const struct hsm_ca_params *p, uint8_t **der, size_t *der_len);

struct hsm_issue_params {
	const char *module;
	const char *module_env;
	const char *user_pin;
	const char *ca_key_uri;    /* the issuing CA's key */
	const char *ca_cert_pem;   /* its certificate (issuer name, AKI) */
	const char *key_uri;       /* the subject's key: its public key goes in the certificate */
	const char *subject;       /* "CN=localhost,O=certconn" */
	const char *san;           /* subjectAltName in OpenSSL's syntax ("DNS:x,IP:1.2.3.4"), or NULL */
	const char *eku;           /* extendedKeyUsage in OpenSSL's syntax ("serverAuth"), or NULL */
	const char *key_usage;     /* keyUsage; NULL: "critical,digitalSignature,keyEncipherment" */
	unsigned days;             /* 1..825 */
	const char *out_pem;       /* written with mode 0644 */
};

/*
 * Issues an end-entity certificate (CA:FALSE, SHA-256) for a token key, signed in this
 * process by the CA key in the same token: the administrator's bootstrap of certificates
 * certconnd needs before it runs (its HTTPS server certificate in dev mode). certconnd
 * itself issues only through keys, whose ca role checks what it signs.
 */
int hsm_issue_cert(const struct hsm_issue_params *p);

/* ---- a logged-in session, for tools and tests ---- */

struct hsm;

/* Loads the module, finds the token of token_uri (a pkcs11: URI or a bare label), opens a
 * read-write session and logs in with user_pin (no login when NULL). */
struct hsm *hsm_open(const char *module, const char *module_env, const char *token_uri,
    const char *user_pin);
/* Logs out, closes the session, finalises and unloads the module. NULL is fine. */
void hsm_close(struct hsm *h);

/* The public key of the key named by uri (its public-key object, or its certificate's key
 * when the token has no public-key object). Caller frees. */
EVP_PKEY *hsm_pubkey(struct hsm *h, const char *uri);

/*
 * Signs a digest with the private key named by uri, in this process: RSA PKCS#1 v1.5
 * (md names the digest, DigestInfo built here) or ECDSA (DER ECDSA-Sig-Value). *sig is
 * malloc'd. For tools and tests; certconnd signs only in the keys role.
 */
int hsm_sign_digest(struct hsm *h, const char *uri, const char *md, const uint8_t *dg,
    size_t dg_len, uint8_t **sig, size_t *sig_len);

/*
 * Stores a DER certificate in the token next to the private key named by key_uri: a
 * CKO_CERTIFICATE (CKC_X_509, on the token, public) with the key's CKA_ID and CKA_LABEL and
 * the certificate's CKA_SUBJECT, which keys then reports in KEY_INFO for the role. Refused if
 * the certificate is not for that key. The session must be logged in.
 */
int hsm_store_cert(struct hsm *h, const char *key_uri, const uint8_t *der, size_t der_len);

#endif
