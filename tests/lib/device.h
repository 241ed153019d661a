/*
 * The device's side of the queued flows, for the tests: a device that holds its own key
 * (RSA-2048 or EC P-256) builds the members of a request payload (devicePublicKey or
 * deviceCertificate, base64 DER) and opens what the connector delivered with plain OpenSSL:
 * CMS_decrypt with its private key, PKCS12_parse with the delivered password, the
 * certificate chain checked with X509_verify_cert against a trusted CA, the key checked
 * against the certificate. It also makes PFX fixtures with the `openssl pkcs12 -export`
 * command and encrypts PFX passwords with RSA-OAEP as the Intune import tooling does.
 *
 * Written independently of src/pkcs on purpose: the tests cross-check the implementation,
 * they must not reuse it.
 *
 * Error convention: 0/-1 (or NULL) with a line on stderr (and in the struct's error buffer
 * where there is one).
 */
#ifndef CERTCONN_TEST_DEVICE_H
#define CERTCONN_TEST_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

enum device_key_type { DEVICE_RSA2048, DEVICE_EC_P256 };

struct device {
	char id[64];
	enum device_key_type type;
	EVP_PKEY *key;       /* the device's own key pair; never leaves the device */
	X509 *cert;          /* a self-signed certificate for key (deviceCertificate) */
};

int device_new(struct device *d, const char *id, enum device_key_type type);
void device_free(struct device *d);

/* base64 (no line breaks) of the DER SubjectPublicKeyInfo / certificate. malloc'd. */
char *device_public_key_b64(const struct device *d);
char *device_certificate_b64(const struct device *d);
/*
 * The payload members that name the device, as JSON text without braces:
 * "deviceId":"<id>","devicePublicKey":"<b64>" (or "deviceCertificate" when use_cert).
 * malloc'd.
 */
char *device_payload_members(const struct device *d, bool use_cert);

/* What the device found in a delivery. */
struct device_delivery {
	X509 *cert;                /* the end-entity certificate of the PKCS#12 */
	EVP_PKEY *key;             /* its private key */
	STACK_OF(X509) *chain;     /* the other certificates of the PKCS#12 (may be empty) */
	char serial[130];          /* hex, upper case, no leading zeros dropped by BN */
	char thumbprint[41];       /* SHA-1 of the certificate's DER, hex upper case */
	char subject[256];         /* one-line RFC 2253 form */
	char content_cipher[64];   /* the CMS content encryption, e.g. "AES-256-CBC" */
	int recipient_type;        /* CMS_RECIPINFO_TRANS (RSA) or CMS_RECIPINFO_AGREE (EC) */
	char key_pbe[96];          /* the key bag's protection, e.g. "PBES2/AES-256-CBC" or
	                            * "PBE-SHA1-3DES" (OpenSSL short names) */
	bool chain_ok;             /* X509_verify_cert against the trusted CA succeeded */
	bool key_matches;          /* X509_check_private_key */
	char error[256];
};
void device_delivery_free(struct device_delivery *o);

/*
 * CMS_decrypt of a DER (or base64 of DER when b64) EnvelopedData / AuthEnvelopedData with
 * the device's key. *out (malloc'd) gets the content. The content cipher and recipient type
 * go to o (when not NULL). 0/-1.
 */
int device_decrypt(const struct device *d, const void *cms, size_t len, bool b64,
    uint8_t **out, size_t *outlen, struct device_delivery *o);

/*
 * Opens a PKCS#12 with password (NULL: none) and checks it against trusted (a CA; may be
 * NULL: chain_ok stays false). Fills o. 0 when it parsed and held a certificate and a key
 * (the chain and key checks are reported in o, not as an error); -1 otherwise.
 */
int device_open_pfx(const uint8_t *pfx, size_t len, const char *password, X509 *trusted,
    struct device_delivery *o);

/* decrypt + open: the whole delivery of a CMS whose content is the PKCS#12. */
int device_open_delivery(const struct device *d, const char *cms_b64, const char *password,
    X509 *trusted, struct device_delivery *o);

/*
 * A pkcs / pkcs-recrypt / pfx-import result as the hub stores it (docs/flows.md, "Result
 * shapes"): encryptedPassword (CMS of the PKCS#12's password to the device) is decrypted
 * first, then encryptedPfx (CMS of the PKCS#12) is decrypted and opened with it; the
 * certificate member must be the PKCS#12's certificate. 0/-1 as device_open_pfx.
 */
int device_open_result(const struct device *d, const cJSON *result, X509 *trusted,
    struct device_delivery *o);

/* ---- fixtures for the PFX import flow ---- */

/*
 * With the `openssl` command line, under dir: an outside CA (dir/ext-ca.pem, dir/ext-ca.key)
 * unless it exists, an S/MIME certificate for email (emailProtection) issued by it and a
 * PKCS#12 of key, certificate and CA protected by password (`openssl pkcs12 -export`, the
 * default AES-256-CBC/PBKDF2 form, or 3DES/SHA-1 when legacy). The PKCS#12 path goes to
 * pfx_path (PATH_MAX). 0/-1.
 */
int device_make_pfx(const char *dir, const char *name, const char *email, const char *password,
    bool legacy, char *pfx_path, size_t pfx_path_len);
/* The same with iter PBKDF2 iterations for the key, certificates and MAC (0: openssl's
 * default): a PKCS#12 that takes its opener a measurable time. */
int device_make_pfx_iter(const char *dir, const char *name, const char *email,
    const char *password, bool legacy, int iter, char *pfx_path, size_t pfx_path_len);

/*
 * CMS EnvelopedData (AES-256-CBC) of data to a bare public key (RSA: key transport), the way
 * a kept copy is sealed to the connector's pfx key: the recipient is named by a throwaway
 * certificate that carries pub. base64 (malloc'd).
 */
char *device_seal_b64(EVP_PKEY *pub, const uint8_t *data, size_t len);

/*
 * RSA-OAEP encryption of password (its bytes, one per character) to pub with md ("SHA256",
 * "SHA384", "SHA512") as the OAEP and MGF1 digest, the Intune PFX import form. base64
 * (malloc'd). EVP directly; no certconn code.
 */
char *device_oaep_encrypt_b64(EVP_PKEY *pub, const char *password, const char *md);
/* The same with PKCS#1 v1.5 padding (a wrong padding scheme for the tests). */
char *device_pkcs1_encrypt_b64(EVP_PKEY *pub, const char *password);

/* ---- small helpers ---- */

/* base64 without line breaks (malloc'd) / decoded (malloc'd, *outlen). */
char *device_b64(const uint8_t *p, size_t n);
uint8_t *device_unb64(const char *s, size_t *outlen);
/* Reads a whole file (malloc'd, NUL-terminated, *len without the NUL); NULL on failure. */
uint8_t *device_slurp(const char *path, size_t *len);
/* A PEM or DER public key / certificate file. */
EVP_PKEY *device_load_pubkey(const char *path);
X509 *device_load_cert(const char *path);

/* ---- the appliance under test: `certconnctl dev up` in a temporary directory ---- */

#include <cjson/cJSON.h>
#include <sys/types.h>

#include "hub_harness.h"

struct flows_env {
	char tmp[64];          /* mkdtemp */
	char dir[128];         /* tmp/dev: dev up's directory */
	char cfg[192];         /* dir/certconnd.json */
	char ctl[512];         /* $CERTCONNCTL */
	char http[128];        /* http://127.0.0.1:<port> of net (SCEP, /crl, /ca) */
	struct hub_harness hub; /* url, ca_pem, admin_token, conf of the dev hub (not started
	                         * by the harness: use the hub_admin call only) */
	X509 *ca;              /* the local CA's certificate */
	EVP_PKEY *pfx_pub;     /* the connector's pfx role key (read from the token with
	                        * pkcs11-tool, independently of certconn) */
};

/*
 * dev up under a fresh temporary directory. net_patch: JSON object text merged into the
 * "net" section of the config dev up wrote (objects member by member, anything else
 * replaced; e.g. {"flows":{"max_attempts":2},"service":{"retry":{"max_attempts":2}}}),
 * then the appliance is restarted (dev down, dev up); or NULL. 0/-1 (logs on stderr).
 */
int flows_env_up(struct flows_env *e, const char *net_patch);
/* Merges net_patch into "net" and restarts the appliance (dev down, dev up). */
int flows_env_patch(struct flows_env *e, const char *net_patch);
/* The same for the whole config (e.g. {"pkcs11":{"module":...}}). */
int flows_env_patch_root(struct flows_env *e, const char *patch);
/* dev down and the directory removed (the logs are printed first when print_logs). */
void flows_env_down(struct flows_env *e, bool print_logs);
/* certconnctl -c CFG <args>: exit status; the first line of stdout in out (may be NULL). */
int flows_ctl(struct flows_env *e, char *out, size_t outlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* pids of certconnd's parent, net and keys (0 when not known). */
int flows_pids(struct flows_env *e, pid_t *parent, pid_t *net, pid_t *keys);
pid_t flows_hub_pid(struct flows_env *e);
/* Stops (SIGTERM) / starts (dev up keeps a running certconnd) the dev hub. */
int flows_hub_stop(struct flows_env *e);
int flows_hub_start(struct flows_env *e);

/* Queues a request of feature for tenant "dev": its id into id. payload: JSON object text. */
int flows_queue(struct flows_env *e, const char *feature, const char *payload, char *id,
    size_t idlen);
/* GET requests/<id>: the "value" object (caller frees) or NULL. */
cJSON *flows_request(struct flows_env *e, const char *id);
/* Polls the request until its state is "completed" or "failed" (or timeout_s passes). */
cJSON *flows_wait(struct flows_env *e, const char *id, int timeout_s);
/* Polls until the request's state is state (e.g. "leased"); 0 when it was seen, -1 on
 * time-out or when the request finished first. */
int flows_wait_state(struct flows_env *e, const char *id, const char *state, int timeout_ms);

/*
 * Events of id in channel file ("admin.jsonl", "operational.jsonl", "debug.jsonl") whose
 * correlationId is corr (or any when corr is NULL). flows_event_detail gives a copy of the
 * last such event's details object (caller frees), or NULL.
 */
int flows_events(struct flows_env *e, const char *file, int id, const char *corr);
int flows_wait_events(struct flows_env *e, const char *file, int id, const char *corr, int want,
    int timeout_ms);
cJSON *flows_event_detail(struct flows_env *e, const char *file, int id, const char *corr);
/* Certificates in the local CA's store (`certconnctl ca list`) whose line contains needle
 * (NULL: all). -1 when the command failed. */
int flows_ca_count(struct flows_env *e, const char *needle);
/* GET <net>/crl/<name>.crl, DER-decoded (caller frees); NULL on failure. */
X509_CRL *flows_fetch_crl(struct flows_env *e, const char *name);
/* Whether serial (hex) is on crl. */
bool flows_crl_has(X509_CRL *crl, const char *serial_hex);

#endif
