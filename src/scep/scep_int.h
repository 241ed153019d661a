/* Internals of SCEP in net (src/scep/), shared by its files. */
#ifndef CC_SCEP_INT_H
#define CC_SCEP_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/types.h>
#include <openssl/x509.h>

#include "certconn/config_scep.h"
#include "certconn/scep.h"

/* ---- durable outbox of service notifications (scep_outbox.c) ---- */

struct scep_outbox;

typedef void (*scep_outbox_acked_fn)(void *arg, const char *kind, const char *profile,
    const char *txid, const char *serial);

/* The directory is created (0700) when missing. 0/-1 with err. */
int scep_outbox_open(const char *dir, scep_outbox_acked_fn acked, void *arg,
    struct scep_outbox **out, char *err, size_t errlen);
void scep_outbox_close(struct scep_outbox *ob);
/*
 * Writes a notification durably (written, fsync'd, renamed, directory fsync'd) before
 * anything is sent. id (64 bytes) gets its name. 0/-1 with why.
 */
int scep_outbox_put(struct scep_outbox *ob, const char *kind, const char *json,
    const char *profile, const char *txid, const char *serial, char id[64], char *why,
    size_t whylen);
/* Sends entry id now: 0 acknowledged (removed, acked callback NOT called), -1 kept. */
int scep_outbox_send(struct scep_outbox *ob, const char *id, char *why, size_t whylen);
/* Sends every entry that is due (all of them when force); acked is called for each one
 * the service acknowledged. Returns how many are left. */
size_t scep_outbox_retry(struct scep_outbox *ob, time_t now, bool force);
size_t scep_outbox_count(struct scep_outbox *ob);

/* ---- the service (scep_verify.c) ---- */

/* The registered service calls; -1 (why) when none is registered. */
int scep_verify_validate(const uint8_t *csr, size_t csr_len, const char *txid,
    const char *caller_info, char *code, size_t codelen, char *why, size_t whylen);
int scep_verify_notify(const char *kind, const char *json, char *why, size_t whylen);

/* ---- webhook challenge (scep_webhook.c) ---- */

/* 0 allowed, -1 denied or unreachable (why). */
int scep_webhook_check(const char *url, const uint8_t *secret, size_t secret_len,
    uint32_t timeout_ms, const char *profile, const char *txid, const char *subject,
    const uint8_t *csr, size_t csr_len, const char *peer, char *why, size_t whylen);
/* The signature header value "t=<unix time>,v1=<hex HMAC-SHA256(secret, t.body)>". */
int scep_webhook_sign(const uint8_t *secret, size_t secret_len, time_t t, const char *body,
    char *out, size_t outlen);

/* ---- the server (scep_server.c) ---- */

struct scep_ra {
	char role[CC_SCEP_ROLE_MAX];
	uint32_t ku;                 /* keyUsage its certificate needs */
	EVP_PKEY *key;
	X509 *cert;
};

struct scep_profile_rt {
	const struct cc_scep_profile *p;
	struct scep_ra *sign;
	struct scep_ra *enc;
	char caps[256];
	uint8_t *cacert;             /* GetCACert body */
	size_t cacert_len;
	const char *cacert_type;
	uint8_t *next_ca;            /* GetNextCACert body (signed by this profile's RA), or NULL */
	size_t next_ca_len;
	unsigned ciphers;            /* SCEP_CIPHER_* */
	uint8_t *secret;             /* static password or webhook key (wiped at free) */
	size_t secret_len;
};

#define SCEP_MAX_RA 8

struct scep_server {
	struct scep_server_opts o;
	struct scep_ra ra[SCEP_MAX_RA];
	size_t nra;
	struct scep_profile_rt *prof;
	size_t nprof;
	struct scep_outbox *outbox;
	pthread_mutex_t lock;        /* tick */
	time_t last_tick;
};

/* The CA certificate's DER (malloc'd), for /ca/<name>.crt. 0/-1. */
int scep_server_ca_der(struct scep_server *s, uint8_t **der, size_t *len);

#endif
