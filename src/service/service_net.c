/*
 * The service client in net: start-up from net_ctx (config "net.service"), the public API
 * of certconn/service.h, and what both modes share (feature handlers, SCEP answers,
 * revocation items).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "certconn/config.h"
#include "certconn/event.h"
#include "certconn/log.h"
#include "certconn/service.h"
#include "certconn/util.h"
#include "net.h"
#include "svc.h"

static struct {
	struct net_ctx *ctx;
	struct svc_http *h;
	enum cc_service_mode mode;
	bool running;
} S;

static struct svc_handler handlers[5];

/* ---- handlers ---- */

const struct svc_handler *
svc_handler_for(uint32_t feature)
{
	for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++)
		if (handlers[i].feature == feature && handlers[i].fn != NULL)
			return &handlers[i];
	return NULL;
}

int
service_register_feature(const char *feature, service_handler_fn fn, void *arg)
{
	uint32_t bit = cc_service_feature_bit(feature);

	if (bit == 0 || fn == NULL) {
		cc_log_err("service: cannot serve unknown feature \"%s\"", feature);
		return -1;
	}
	for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++)
		if (handlers[i].feature == bit || handlers[i].feature == 0) {
			handlers[i] = (struct svc_handler){ bit, fn, arg };
			return 0;
		}
	return -1;
}

int
svc_revocations_dispatch(const cJSON *value, const char *crid)
{
	const struct svc_handler *hd = svc_handler_for(CC_FEATURE_REVOKE);
	const cJSON *it;
	int n = 0;

	(void)crid;
	cJSON_ArrayForEach(it, value) {
		const cJSON *ctxid = cJSON_GetObjectItemCaseSensitive(it, "requestContext");
		struct service_request r;

		if (!cJSON_IsString(ctxid) || hd == NULL)
			continue;
		r.id = ctxid->valuestring;
		r.feature = "revoke";
		r.payload = it;
		r.attempt = 1;
		r.correlation_id = ctxid->valuestring;
		n++;
		hd->fn(hd->arg, &r);
	}
	return n;
}

int
service_complete(const char *feature, const char *request_id, bool succeeded,
    int32_t error_code, const char *error_message, cJSON *result, service_upload_cb cb,
    void *arg)
{
	if (!S.running || feature == NULL || request_id == NULL ||
	    cc_service_feature_bit(feature) == 0) {
		cJSON_Delete(result);
		return -1;
	}
	if (S.mode == CC_SERVICE_INTUNE) {
		cJSON_Delete(result);
		if (strcmp(feature, "revoke") != 0)
			return -1;
		return svc_intune_complete(request_id, succeeded, error_code, error_message, cb,
		    arg);
	}
	return svc_hub_complete(feature, request_id, succeeded, error_code, error_message,
	    result, cb, arg);
}

/* ---- SCEP ---- */

struct scep_ctx {
	service_scep_cb cb;
	void *arg;
};

static void
scep_done(struct svc_call *c)
{
	struct scep_ctx *s = c->arg;
	const cJSON *code = cJSON_GetObjectItemCaseSensitive(c->json, "code");
	const cJSON *desc = cJSON_GetObjectItemCaseSensitive(c->json, "errorDescription");

	if (!svc_call_ok(c) || !cJSON_IsString(code))
		s->cb(s->arg, SERVICE_FAILED, NULL, svc_call_ok(c) ? "the answer has no code" :
		    svc_call_why(c));
	else
		s->cb(s->arg, strcmp(code->valuestring, "Success") == 0 ? SERVICE_OK :
		    SERVICE_REFUSED, code->valuestring, cJSON_IsString(desc) ? desc->valuestring :
		    "");
}

int
svc_scep_prepare(struct svc_call *c, service_scep_cb cb, void *arg)
{
	struct scep_ctx *s = malloc(sizeof(*s));

	if (s == NULL)
		cc_fatal("out of memory");
	s->cb = cb;
	s->arg = arg;
	c->arg = s;
	c->done = scep_done;
	c->dispose = free;
	return 0;
}

static char *
b64(const uint8_t *d, size_t n)
{
	char *o;

	if (n == 0 || n > (1u << 20))
		return NULL;
	o = malloc((n + 2) / 3 * 4 + 1);
	if (o != NULL)
		EVP_EncodeBlock((unsigned char *)o, d, (int)n);
	return o;
}

int
svc_scep_call(const char *op, cJSON *inner, const char *txid, service_scep_cb cb, void *arg)
{
	if (!S.running) {
		cJSON_Delete(inner);
		return -1;
	}
	if (S.mode == CC_SERVICE_INTUNE)
		return svc_intune_scep(op, inner, txid, cb, arg);
	return svc_hub_scep(op, inner, txid, cb, arg);
}

static cJSON *
scep_inner(const char *txid, const uint8_t *csr, size_t csr_len)
{
	cJSON *o;
	char *c = b64(csr, csr_len);

	if (c == NULL || txid == NULL || txid[0] == '\0') {
		free(c);
		return NULL;
	}
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "transactionId", txid);
	cJSON_AddStringToObject(o, "certificateRequest", c);
	cJSON_AddStringToObject(o, "callerInfo", "certconn/" CC_VERSION);
	free(c);
	return o;
}

int
service_scep_validate(const char *transaction_id, const uint8_t *csr, size_t csr_len,
    service_scep_cb cb, void *arg)
{
	cJSON *in = scep_inner(transaction_id, csr, csr_len);

	if (in == NULL || cb == NULL) {
		cJSON_Delete(in);
		return -1;
	}
	return svc_scep_call("validateRequest", in, transaction_id, cb, arg);
}

int
service_scep_notify_success(const struct service_scep_success *n, service_scep_cb cb,
    void *arg)
{
	cJSON *in = scep_inner(n->transaction_id, n->csr, n->csr_len);

	if (in == NULL || cb == NULL || n->thumbprint == NULL || n->serial == NULL ||
	    n->expiration_utc == NULL || n->issuing_ca == NULL) {
		cJSON_Delete(in);
		return -1;
	}
	cJSON_AddStringToObject(in, "certificateThumbprint", n->thumbprint);
	cJSON_AddStringToObject(in, "certificateSerialNumber", n->serial);
	cJSON_AddStringToObject(in, "certificateExpirationDateUtc", n->expiration_utc);
	cJSON_AddStringToObject(in, "issuingCertificateAuthority", n->issuing_ca);
	if (n->ca_configuration != NULL)
		cJSON_AddStringToObject(in, "caConfiguration", n->ca_configuration);
	if (n->certificate_authority != NULL)
		cJSON_AddStringToObject(in, "certificateAuthority", n->certificate_authority);
	return svc_scep_call("successNotification", in, n->transaction_id, cb, arg);
}

int
service_scep_notify_failure(const char *transaction_id, const uint8_t *csr, size_t csr_len,
    int32_t hresult, const char *description, service_scep_cb cb, void *arg)
{
	cJSON *in = scep_inner(transaction_id, csr, csr_len);
	char desc[256];

	if (in == NULL || cb == NULL) {
		cJSON_Delete(in);
		return -1;
	}
	/* Intune takes at most 255 characters: cut, and not inside a UTF-8 sequence. */
	snprintf(desc, sizeof(desc), "%s", description != NULL && description[0] != '\0' ?
	    description : "the request failed");
	if (strlen(description != NULL ? description : "") > 255) {
		size_t k = 255;
		while (k > 0 && ((unsigned char)desc[k] & 0xC0) == 0x80)
			k--;
		desc[k] = '\0';
	}
	cJSON_AddNumberToObject(in, "hResult", hresult);
	cJSON_AddStringToObject(in, "errorDescription", desc);
	return svc_scep_call("failureNotification", in, transaction_id, cb, arg);
}

/* ---- start / stop ---- */

/* Written by flow threads, read on the loop: atomics, no lock. */
static _Atomic uint64_t q_pending, q_outbox;
static atomic_bool q_reported;

void
service_set_queue_figures(uint64_t pending, uint64_t outbox)
{
	atomic_store(&q_pending, pending);
	atomic_store(&q_outbox, outbox);
	atomic_store(&q_reported, true);
}

bool
svc_queue_figures(uint64_t *pending, uint64_t *outbox)
{
	*pending = atomic_load(&q_pending);
	*outbox = atomic_load(&q_outbox);
	return atomic_load(&q_reported);
}

void
service_get_status(struct service_status *st)
{
	memset(st, 0, sizeof(*st));
	st->running = S.running;
	if (!S.running)
		return;
	if (S.mode == CC_SERVICE_HUB)
		svc_hub_status(st);
	else
		svc_intune_status(st);
}

int
service_start(struct net_ctx *ctx)
{
	const struct cc_config_service *cf = ctx->conf->service;

	if (cf == NULL)
		return 0;
	memset(&S, 0, sizeof(S));
	S.ctx = ctx;
	S.mode = cf->mode;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		cc_log_err("service: libcurl does not initialise");
		return -1;
	}
	S.h = svc_http_new(ctx->base, cf);
	if (S.h == NULL)
		goto fail;
	if ((cf->mode == CC_SERVICE_HUB ? svc_hub_start(ctx, S.h) :
	    svc_intune_start(ctx, S.h)) == -1)
		goto fail;
	S.running = true;
	/* SCEP's service-verified challenges go through this client from now on. */
	if (svc_scep_verify_start(ctx) == -1) {
		service_stop();
		return -1;
	}
	return 0;
fail:
	svc_http_free(S.h);
	S.h = NULL;
	curl_global_cleanup();
	return -1;
}

void
service_stop(void)
{
	if (!S.running)
		return;
	svc_scep_verify_stop();
	/* The calls go first: their callbacks may still name the modes' state. */
	svc_http_free(S.h);
	if (S.mode == CC_SERVICE_HUB)
		svc_hub_stop();
	else
		svc_intune_stop();
	curl_global_cleanup();
	memset(&S, 0, sizeof(S));
}

/*
 * The seed's batch-level download events (1002/1003, 1202/1203, 2202/2203, 3002/3003). A
 * success is logged only for a batch that brought work, so an idle connector polling every
 * few seconds does not fill the Operational channel; every failed download (after the
 * client's retries) is logged. The batch's client-request-id is the correlation id.
 */
void
svc_download_event(uint32_t bit, bool ok, int n, const char *crid, const char *why)
{
	uint32_t ev_ok, ev_fail;
	char count[16];

	switch (bit) {
	case CC_FEATURE_PKCS:
		ev_ok = CC_EV_PKCS_DOWNLOAD_SUCCESS;
		ev_fail = CC_EV_PKCS_DOWNLOAD_FAILURE;
		break;
	case CC_FEATURE_PKCS_RECRYPT:
		ev_ok = CC_EV_PKCS_RECRYPT_DOWNLOAD_SUCCESS;
		ev_fail = CC_EV_PKCS_RECRYPT_DOWNLOAD_FAILURE;
		break;
	case CC_FEATURE_PFX_IMPORT:
		ev_ok = CC_EV_PKCS_IMPORT_DOWNLOAD_SUCCESS;
		ev_fail = CC_EV_PKCS_IMPORT_DOWNLOAD_FAILURE;
		break;
	case CC_FEATURE_REVOKE:
		ev_ok = CC_EV_REVOKE_DOWNLOAD_SUCCESS;
		ev_fail = CC_EV_REVOKE_DOWNLOAD_FAILURE;
		break;
	default:
		return;
	}
	if (ok && n <= 0)
		return;
	snprintf(count, sizeof(count), "%d", n);
	if (ok)
		cc_event_emit(ev_ok, crid, "requests", count, NULL);
	else
		cc_event_emit(ev_fail, crid, "reason", why != NULL ? why : "unknown", NULL);
}
