/*
 * Internal to the service client (src/service/). svc_http.c is the HTTP engine: libcurl's
 * multi interface on net's libevent loop, TLS 1.2+, the client certificate through keyref,
 * proxy settings, and retries with exponential backoff and full jitter. svc_hub.c and
 * svc_intune.c are the two modes; service_net.c holds the public API (certconn/service.h).
 */
#ifndef CC_SVC_H
#define CC_SVC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/types.h>

#include "certconn/config_service.h"
#include "certconn/service.h"

struct event_base;
struct net_ctx;

#define SVC_RESP_MAX (4u << 20)

struct svc_http;
struct svc_call;

typedef void (*svc_done_fn)(struct svc_call *c);
typedef void (*svc_retry_fn)(struct svc_call *c, unsigned delay_ms);

struct svc_call {
	/* set by the caller (svc_call_new fills the defaults) */
	char *url;
	char *body;                  /* POST body (owned), or NULL for GET */
	const char *content_type;    /* default application/json */
	char *bearer;                /* "Authorization: Bearer" token (owned, wiped), or NULL */
	const char *api_version;     /* NULL: no api-version header */
	bool client_cert;            /* authenticate with the keyref client certificate */
	unsigned max_attempts;       /* default: the config's retry.max_attempts */
	svc_done_fn done;            /* the final outcome */
	svc_retry_fn on_retry;       /* an attempt failed and another follows after delay_ms */
	void *arg;
	void (*dispose)(void *arg);  /* frees arg when the call ends (after done, or at stop) */
	char crid[40];               /* client-request-id (kept across retries) */
	/* the outcome of the last attempt */
	unsigned attempt;            /* 1.. */
	CURLcode rc;
	long status;                 /* HTTP status, 0 if none */
	char *resp;                  /* body, NUL-terminated (owned by the call) */
	size_t resp_len;
	cJSON *json;                 /* resp parsed, or NULL */
	char error[256];             /* what went wrong, for logs and events */
	/* internal */
	struct svc_http *h;
	CURL *easy;
	struct curl_slist *hdrs;
	struct event *retry_ev;
	long retry_after;
	struct svc_call *next;
};

/* The engine. NULL on failure (logged). */
struct svc_http *svc_http_new(struct event_base *base, const struct cc_config_service *conf);
void svc_http_free(struct svc_http *h);
/* The client certificate and key for client_cert calls (references taken; NULL clears). */
void svc_http_set_client(struct svc_http *h, X509 *cert, EVP_PKEY *key);

/* A call to url; submit it with svc_call_submit. After done returns the call is freed. */
struct svc_call *svc_call_new(struct svc_http *h, const char *url, char *body);
void svc_call_submit(struct svc_call *c);
/* Whether the last attempt ended in a 2xx answer. */
bool svc_call_ok(const struct svc_call *c);
/* "HTTP 503 ServiceUnavailable: ..." / "transport: Couldn't connect" for logs. */
const char *svc_call_why(struct svc_call *c);
/* A fresh client-request-id (UUID v4). */
void svc_uuid(char out[37]);

/* ---- the modes ---- */

struct svc_handler {
	uint32_t feature;
	service_handler_fn fn;
	void *arg;
};
/* The registered handler of a feature bit, or NULL. */
const struct svc_handler *svc_handler_for(uint32_t feature);

int svc_hub_start(struct net_ctx *ctx, struct svc_http *h);
void svc_hub_stop(void);
int svc_hub_complete(const char *feature, const char *id, bool ok, int32_t code,
    const char *msg, cJSON *result, service_upload_cb cb, void *arg);
int svc_hub_scep(const char *op, cJSON *inner, const char *txid, service_scep_cb cb,
    void *arg);
void svc_hub_status(struct service_status *st);

int svc_intune_start(struct net_ctx *ctx, struct svc_http *h);
void svc_intune_stop(void);
int svc_intune_complete(const char *id, bool ok, int32_t code, const char *msg,
    service_upload_cb cb, void *arg);
int svc_intune_scep(const char *op, cJSON *inner, const char *txid, service_scep_cb cb,
    void *arg);
void svc_intune_status(struct service_status *st);

/* Shared by both modes: makes c's done the SCEP finisher, which reads the answer
 * {"code","errorDescription"} and calls cb. 0/-1 (then c is still the caller's... and freed
 * by the engine when it completes with no callback). */
int svc_scep_prepare(struct svc_call *c, service_scep_cb cb, void *arg);
/* A SCEP call (op: validateRequest, successNotification, failureNotification) with the
 * inner object (taken), in the current mode. 0/-1 (then cb is not called). */
int svc_scep_call(const char *op, cJSON *inner, const char *txid, service_scep_cb cb,
    void *arg);
/* scep_verify.h's ops on this client (svc_scep.c), when the connector serves scep. */
int svc_scep_verify_start(struct net_ctx *ctx);
void svc_scep_verify_stop(void);
/* The struct scep_verify_ops given to scep_verify_set (for tests), or NULL without it. */
const void *svc_scep_verify_ops(void);

/* The figures service_set_queue_figures stored; false when nobody reported any. */
bool svc_queue_figures(uint64_t *pending, uint64_t *outbox);

/* Revocation items from a downloadRevocationRequests answer, handed to the handler. */
int svc_revocations_dispatch(const cJSON *value, const char *crid);

/* Emits the download event of feature bit (CC_FEATURE_*) for a batch of n requests, or its
 * failure with why (service_net.c). */
void svc_download_event(uint32_t bit, bool ok, int n, const char *crid, const char *why);

#endif
