/*
 * The connector's queued flows (src/flows/, library cc_flows), run in net: PKCS
 * certificates (`pkcs`), PKCS re-encrypt (`pkcs-recrypt`), imported PFX (`pfx-import`) and
 * revocation (`revoke`). The service client (certconn/service.h) leases the requests and
 * hands each to the flow's handler; worker threads do the work (key pool, local CA, PKCS#12
 * and CMS through certconn/pkcs.h, private-key operations of the pfx role through keys);
 * the result is written to a durable outbox and then uploaded with service_complete.
 * docs/flows.md describes the flows, their events, the result shapes and the configuration
 * (net.flows, certconn/config_flows.h).
 *
 * Payloads (docs/protocol.md section 6; every member is checked, unknown members are
 * refused; a bad payload is a final 4002 ParameterDataInvalidError naming the member):
 *
 *   pkcs:         deviceId (string, 1..128), exactly one of devicePublicKey (base64 DER
 *                 SubjectPublicKeyInfo) or deviceCertificate (base64 DER X.509); the
 *                 result is sealed to that key, optional: profile (a net.flows.pkcs_profiles name), keySpec
 *                 ("rsa-2048" .. "ec-p384", only where the profile allows overriding),
 *                 subject (object of strings: cn, o, ou, c, l, st, email, serialNumber,
 *                 uid; what the profile's subject copy/template takes), subjectAltNames
 *                 (array of "DNS:..", "email:..", "URI:..", "IP:..", "UPN:.."; within the
 *                 profile's SAN rules), deviceName, userPrincipalName (strings, for events).
 *   pkcs-recrypt: deviceId, encryptedPayload (base64 CMS EnvelopedData to the pfx role: a
 *                 keptCopy of a pkcs result), devicePublicKey | deviceCertificate, optional
 *                 deviceName, userPrincipalName.
 *   pfx-import:   pfx (base64 PKCS#12), encryptedPassword (base64 RSA-OAEP ciphertext to the
 *                 pfx role), paddingScheme ("OaepSha256", "OaepSha384", "OaepSha512"),
 *                 devicePublicKey | deviceCertificate, optional deviceId, keyName,
 *                 intendedPurpose ("unassigned", "smimeEncryption", "smimeSigning"),
 *                 deviceName, userPrincipalName.
 *   revoke:       the Intune item {requestContext, serialNumber (hex), issuerName,
 *                 caConfiguration}; issuerName and caConfiguration may be null or absent;
 *                 other members are ignored (it is a response of Intune's API).
 *
 * Error convention: 0/-1 with a one-line reason in the caller's buffer; parsers return
 * FLOWS_OK or a FLOWS_E_* code.
 */
#ifndef CERTCONN_FLOWS_H
#define CERTCONN_FLOWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <openssl/types.h>

/* Intune's CA request error codes (docs/protocol.md section 6). */
enum flows_code {
	FLOWS_OK = 0,
	FLOWS_E_NONRETRYABLE = 4000,     /* NonRetryableServiceException */
	FLOWS_E_SERIALIZATION = 4001,    /* DataSerializationError */
	FLOWS_E_PARAMETER = 4002,        /* ParameterDataInvalidError */
	FLOWS_E_CRYPTO = 4003,           /* CryptographyError */
	FLOWS_E_NOT_FOUND = 4004,        /* CertificateNotFoundError */
	FLOWS_E_CONFLICT = 4005,         /* ConflictError */
	FLOWS_E_NOT_SUPPORTED = 4006,    /* NotSupportedError */
	FLOWS_E_TOO_LARGE = 4007,        /* PayloadTooLargeError */
	FLOWS_E_RETRYABLE = 4100,        /* RetryableServiceException */
	FLOWS_E_UNAVAILABLE = 4101,      /* ServiceUnavailableException */
	FLOWS_E_BUSY = 4102,             /* ServiceTooBusyException */
	FLOWS_E_AUTH = 4103,             /* AuthenticationException */
};

/* Codes 4100..4103: the service requeues the request. */
bool flows_code_retryable(int32_t code);
/* "ParameterDataInvalidError" ...; "Success" for 0, "Unknown" otherwise. */
const char *flows_code_name(int32_t code);
/* ---- payloads ---- */

#define FLOWS_PAYLOAD_MAX (256u * 1024u)   /* bytes of a payload's JSON text */
#define FLOWS_ID_MAX 128                   /* deviceId and other ids, without the NUL */
#define FLOWS_SAN_MAX 64

enum flows_subject_attr {
	FLOWS_SUBJ_CN = 0, FLOWS_SUBJ_O, FLOWS_SUBJ_OU, FLOWS_SUBJ_C, FLOWS_SUBJ_L,
	FLOWS_SUBJ_ST, FLOWS_SUBJ_EMAIL, FLOWS_SUBJ_SERIAL, FLOWS_SUBJ_UID, FLOWS_SUBJ_N
};

/* The device a result is sealed to: its public key or its certificate (DER, owned). */
struct flows_device {
	uint8_t *der;
	size_t len;
	bool is_cert;
};

struct flows_pkcs_req {
	char device_id[FLOWS_ID_MAX + 1];
	char device_name[FLOWS_ID_MAX * 2 + 1];
	char upn[FLOWS_ID_MAX * 2 + 1];
	char profile[32];                  /* "" : the default profile */
	int keyspec;                       /* -1: the profile's */
	char *subject[FLOWS_SUBJ_N];       /* owned, NULL when absent */
	char *san[FLOWS_SAN_MAX];          /* owned, "DNS:name" etc. as given */
	size_t nsan;
	struct flows_device device;
};

struct flows_recrypt_req {
	char device_id[FLOWS_ID_MAX + 1];
	char device_name[FLOWS_ID_MAX * 2 + 1];
	char upn[FLOWS_ID_MAX * 2 + 1];
	uint8_t *payload;                  /* CMS DER, owned */
	size_t payload_len;
	struct flows_device device;
};

struct flows_import_req {
	char device_id[FLOWS_ID_MAX + 1];
	char device_name[FLOWS_ID_MAX * 2 + 1];
	char upn[FLOWS_ID_MAX * 2 + 1];
	char key_name[FLOWS_ID_MAX * 2 + 1];
	char purpose[32];
	uint8_t *pfx;                      /* owned */
	size_t pfx_len;
	uint8_t *enc_password;             /* owned */
	size_t enc_password_len;
	int md_bits;                       /* OAEP digest: 256, 384 or 512 */
	struct flows_device device;
};

struct flows_revoke_req {
	char serial[64];                   /* normalised upper-case hex (cc_ca_serial_norm) */
	char issuer[1024];                 /* "" when absent or null */
	char ca_config[256];               /* "" when absent or null */
};

/* Each parser fills *out (release with its _free, also after a failure) and returns 0, or
 * FLOWS_E_PARAMETER / FLOWS_E_TOO_LARGE with why naming the member. */
int32_t flows_parse_pkcs(const cJSON *payload, struct flows_pkcs_req *out, char *why,
    size_t whylen);
void flows_pkcs_req_free(struct flows_pkcs_req *r);
int32_t flows_parse_recrypt(const cJSON *payload, struct flows_recrypt_req *out, char *why,
    size_t whylen);
void flows_recrypt_req_free(struct flows_recrypt_req *r);
int32_t flows_parse_import(const cJSON *payload, struct flows_import_req *out, char *why,
    size_t whylen);
void flows_import_req_free(struct flows_import_req *r);
int32_t flows_parse_revoke(const cJSON *payload, struct flows_revoke_req *out, char *why,
    size_t whylen);

/* ---- durable store: result outbox and CA idempotency records (flows_store.c) ---- */

/*
 * One SQLite database (WAL, synchronous=FULL: a committed row survives a crash and a power
 * loss) under the flows state directory. Tables: outbox (results not yet finally uploaded)
 * and idem (per pkcs request: the CSR, the device key encrypted to the pfx role, and the
 * issued certificate once the CA answered). Thread-safe (serialised inside).
 */
struct flows_store;

int flows_store_open(const char *path, struct flows_store **out, char *err, size_t errlen);
void flows_store_close(struct flows_store *s);

struct flows_result {
	char request_id[FLOWS_ID_MAX + 1];
	char feature[16];
	char correlation_id[FLOWS_ID_MAX + 1];
	bool succeeded;
	int32_t code;
	char message[1024];
	char *result_json;                 /* owned; NULL when none */
	time_t created;
	uint32_t uploads;                  /* upload attempts so far */
};

void flows_result_clear(struct flows_result *r);
/* Inserts or replaces the row of r->request_id; committed (durable) on return. */
int flows_outbox_put(struct flows_store *s, const struct flows_result *r, char *err,
    size_t errlen);
/* 1 found (r filled), 0 not found, -1 error. */
int flows_outbox_get(struct flows_store *s, const char *request_id, struct flows_result *r,
    char *err, size_t errlen);
int flows_outbox_remove(struct flows_store *s, const char *request_id, char *err,
    size_t errlen);
int flows_outbox_bump(struct flows_store *s, const char *request_id, char *err, size_t errlen);
/* Calls fn for each row, oldest first. fn's r is valid during the call. */
typedef void (*flows_outbox_fn)(void *arg, const struct flows_result *r);
int flows_outbox_each(struct flows_store *s, flows_outbox_fn fn, void *arg, char *err,
    size_t errlen);
size_t flows_outbox_count(struct flows_store *s);

struct flows_idem {
	char request_id[FLOWS_ID_MAX + 1];
	uint8_t *csr;                      /* DER */
	size_t csr_len;
	uint8_t *enc_key;                  /* CMS to the pfx role of the device key (PKCS#8 DER) */
	size_t enc_key_len;
	uint8_t *cert;                     /* DER of the issued certificate; NULL before */
	size_t cert_len;
	time_t created;
};

void flows_idem_clear(struct flows_idem *r);
/* Writes the record before the CA is asked (cert may be NULL). */
int flows_idem_put(struct flows_store *s, const struct flows_idem *r, char *err, size_t errlen);
/* Stores the issued certificate in an existing record. */
int flows_idem_set_cert(struct flows_store *s, const char *request_id, const uint8_t *cert,
    size_t cert_len, char *err, size_t errlen);
int flows_idem_get(struct flows_store *s, const char *request_id, struct flows_idem *r,
    char *err, size_t errlen);
int flows_idem_remove(struct flows_store *s, const char *request_id, char *err, size_t errlen);
size_t flows_idem_count(struct flows_store *s);
/* Deletes records created before before; how many, or -1. */
int flows_idem_prune(struct flows_store *s, time_t before, char *err, size_t errlen);

/* Upload statuses after which a result leaves the outbox: done ("Recorded",
 * "AlreadyRecorded", "AlreadyCompleted", "Requeued") or dropped (the item is refused for
 * good: "LeaseLost", "NotLeased", "NotFound", "FeatureNotRegistered", "Invalid",
 * "NotRecorded"). "Failed" (the upload itself failed) keeps it. */
bool flows_upload_done(const char *status);
bool flows_upload_final(const char *status);

/* ---- key pool (flows_keypool.c) ---- */

/*
 * Device keys made ahead of need by a background thread, up to a depth per key spec
 * (enum cc_flows_keyspec). flows_keypool_take hands out a pooled key, or makes one at once
 * when the pool of that spec is empty. Thread-safe.
 */
struct flows_keypool;

struct flows_keypool *flows_keypool_new(const uint32_t *depth /* [CC_FLOWS_NKEYSPECS] */);
/* Starts the filling thread (call after the sandbox is applied). 0/-1. */
int flows_keypool_start(struct flows_keypool *p);
/* Stops the thread and frees the keys. */
void flows_keypool_free(struct flows_keypool *p);
/* A new key of spec (owned by the caller); *pooled says whether it came from the pool.
 * NULL when key generation failed. */
EVP_PKEY *flows_keypool_take(struct flows_keypool *p, int spec, bool *pooled);
/* Keys ready now for spec. */
size_t flows_keypool_ready(struct flows_keypool *p, int spec);
/* Waits up to timeout_ms until every spec is at its depth; 1 when full, 0 on time-out. */
int flows_keypool_wait_full(struct flows_keypool *p, uint32_t timeout_ms);
/* Makes one key of spec with the default provider (what the pool uses). */
EVP_PKEY *flows_keygen(int spec);

/* ---- retries ---- */

/* The delay before try number attempt+1 (attempt >= 1 failed tries so far): full jitter,
 * a random value in [0, min(max_ms, initial_ms * 2^(attempt-1))], at least 1 ms. */
uint32_t flows_backoff_ms(uint32_t initial_ms, uint32_t max_ms, uint32_t attempt);

#endif
