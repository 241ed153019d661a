/*
 * The service client in net (src/service/): how net's flows talk to the upstream service,
 * certconn-hub or Microsoft Intune (docs/protocol.md). Everything runs on net's event loop
 * (libcurl's multi interface driven by libevent); callbacks come from that loop, never from
 * another thread. Calls are retried with exponential backoff and jitter; callbacks see only
 * the final outcome.
 *
 * The client also runs on its own: health messages on an interval (events 5000-5002) and, in
 * hub mode, the renewal of its client certificate (key in the token, through keyref).
 *
 * Error convention: 0/-1 for calls (-1: not started, wrong mode, or bad arguments; logged).
 */
#ifndef CERTCONN_SERVICE_H
#define CERTCONN_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <openssl/types.h>

/* ---- queued work (hub: every feature; Intune: revoke) ---- */

struct service_request {
	const char *id;              /* requestId (hub) or requestContext (revocation) */
	const char *feature;         /* "pkcs", "pkcs-recrypt", "pfx-import", "revoke", "scep" */
	const cJSON *payload;        /* the request's payload; for revocation the Intune item
	                              * {requestContext, serialNumber, issuerName, caConfiguration} */
	uint32_t attempt;            /* leases so far (hub); 1 in Intune mode */
	const char *correlation_id;  /* for the events of the request */
};

/*
 * Called for each request leased for feature. The handler owns the work from then on and
 * ends it with service_complete (now or later, from the event loop). The request's strings
 * and payload are valid only during the call: copy what is needed.
 */
typedef void (*service_handler_fn)(void *arg, const struct service_request *req);

/*
 * Serves feature: the client leases its requests (when the connector's config names the
 * feature and the mode has it) and hands them to fn. Call from a module's *_start.
 */
int service_register_feature(const char *feature, service_handler_fn fn, void *arg);

/* Outcome of an upload, for the flow's events. status: "Recorded", "AlreadyRecorded",
 * "Requeued", ... (docs/protocol.md section 6), or "Failed" when the upload itself failed
 * (after retries). */
typedef void (*service_upload_cb)(void *arg, const char *request_id, const char *status);

/*
 * The result of a request a handler received. error_code: 0 when succeeded, else a CA
 * request error code (4000-4007 final, 4100-4103 retryable). result (hub only) is taken
 * (may be NULL). The upload is idempotent: the client retries it until the service answers.
 */
int service_complete(const char *feature, const char *request_id, bool succeeded,
    int32_t error_code, const char *error_message, cJSON *result, service_upload_cb cb,
    void *arg);

/* ---- SCEP validation (service-verified challenge mode) ---- */

enum service_outcome {
	SERVICE_OK = 0,       /* the service said "Success" */
	SERVICE_REFUSED,      /* it answered with another code: no certificate */
	SERVICE_FAILED,       /* it could not be asked (transport, HTTP error after retries) */
};

/* code: the service's code ("Success", "ChallengeExpired", ...) or NULL when it was not
 * reached; description: its errorDescription or the local reason. Both valid during the call. */
typedef void (*service_scep_cb)(void *arg, enum service_outcome outcome, const char *code,
    const char *description);

/* ScepActions/validateRequest for a device's CSR (DER). */
int service_scep_validate(const char *transaction_id, const uint8_t *csr, size_t csr_len,
    service_scep_cb cb, void *arg);

struct service_scep_success {
	const char *transaction_id;
	const uint8_t *csr;
	size_t csr_len;
	const char *thumbprint;        /* hex SHA-1 of the certificate */
	const char *serial;            /* hex */
	const char *expiration_utc;    /* "YYYY-MM-DDThh:mm:ss.sssZ" */
	const char *issuing_ca;        /* issuer name */
	const char *ca_configuration;  /* may be NULL */
	const char *certificate_authority; /* may be NULL */
};

/* ScepActions/successNotification: if it fails, the certificate must not be handed out. */
int service_scep_notify_success(const struct service_scep_success *n, service_scep_cb cb,
    void *arg);
/* ScepActions/failureNotification; description is cut to 255 bytes. */
int service_scep_notify_failure(const char *transaction_id, const uint8_t *csr, size_t csr_len,
    int32_t hresult, const char *description, service_scep_cb cb, void *arg);

/*
 * The flows' own queue figures, for the health messages' queue object (any thread): pending,
 * requests leased and waiting for a worker; outbox, results in the durable outbox not yet
 * acknowledged by the service. Until a module reports them, pending is 0 and outbox counts
 * the uploads the client has in flight.
 */
void service_set_queue_figures(uint64_t pending, uint64_t outbox);

/* ---- state, for status and tests ---- */

struct service_status {
	bool running;
	bool registered;               /* hub: a client certificate is loaded */
	int64_t cert_not_after;        /* unix seconds, 0 if none */
	uint64_t health_ok, health_failed;
	uint64_t renewals;
	char lifecycle[16];            /* the hub's last lifecycle status, "" if none */
};
void service_get_status(struct service_status *st);

/* ---- registration (certconnctl register; blocking, outside net) ---- */

/*
 * Signs digest dg (SHA-256) with the connector's client key: DER ECDSA or PKCS#1 v1.5
 * RSA signature in *sig (malloc'd). 0/-1.
 */
typedef int (*service_sign_fn)(void *arg, const uint8_t *dg, size_t dg_len, uint8_t **sig,
    size_t *sig_len);

struct service_register_params {
	const char *hub_url;           /* base URL */
	const char *token;             /* one-time enrollment token */
	const char *ca_file;           /* trust anchors for the hub (NULL: the system's) */
	EVP_PKEY *pub;                 /* the client key's public half */
	service_sign_fn sign;          /* signs the CSR with the private half */
	void *sign_arg;
	const char *connector_name;    /* NULL: the hub's default */
	const char *version;           /* the connector's version */
	uint32_t features;             /* CC_FEATURE_* */
	const char *cert_out;          /* where the certificate (PEM) goes */
	const char *hub_ca_out;        /* where the hub CA (PEM) goes, or NULL */
	char connector_id[80];         /* out */
	char tenant_id[80];            /* out */
	char error[512];               /* out: why it failed */
};

/* Registers with the hub (docs/protocol.md section 5) and writes the certificate. 0/-1. */
int service_register(struct service_register_params *p);

#endif
