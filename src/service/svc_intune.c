/*
 * Intune mode of the service client, for Intune's two public third-party-CA flows: SCEP
 * validation/notification and revocation (docs/protocol.md section 13).
 *
 *   1. OAuth2 client credentials against Entra ID: a token for Graph and one for Intune,
 *      cached until shortly before they expire.
 *   2. Discovery through Microsoft Graph: servicePrincipals/appId=<Intune>/endpoints gives
 *      the base URLs of ScepRequestValidationFEService and PkiConnectorFEService.
 *   3. The calls, with Intune's api-version. A 401 drops the token and the call is made
 *      once more with a new one; a transport failure or a 404 drops the discovered map.
 *
 * Calls that need a token or an endpoint wait in a queue while it is fetched.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>

#include "certconn/config.h"
#include "certconn/log.h"
#include "certconn/util.h"
#include "net.h"
#include "svc.h"

#define INTUNE_APP_ID "0000000a-0000-0000-c000-000000000000"
#define SCEP_SERVICE "ScepRequestValidationFEService"
#define PKI_SERVICE "PkiConnectorFEService"
#define TOKEN_MARGIN_S 300
#define REVOKE_DOWNLOAD_MAX 100

enum op_kind { OP_SCEP, OP_REV_DOWNLOAD, OP_REV_UPLOAD };

struct op {
	enum op_kind kind;
	char suffix[96];               /* "ScepActions/validateRequest", ... */
	char *body;
	int auth_retries;
	service_scep_cb scep_cb;
	service_upload_cb up_cb;
	void *arg;
	char id[128];                  /* revocation upload: the requestContext */
	struct op *next;
};

struct token {
	char *value;
	int64_t expires;
	bool fetching;
};

static struct {
	struct net_ctx *ctx;
	struct svc_http *h;
	const struct cc_config_service *cf;
	char *secret;
	struct token graph, intune;
	char *scep_url, *pki_url;
	bool discovered, discovering;
	struct op *queue;
	struct event *poll;
	bool polling;
	uint64_t calls_ok, calls_failed;
} IN;

static void run(struct op *o);

static void
op_free(struct op *o)
{
	free(o->body);
	free(o);
}

/* Ends an operation that could not be made. */
static void
op_fail(struct op *o, const char *why)
{
	IN.calls_failed++;
	cc_log_warn("service: Intune %s: %s", o->suffix, why);
	if (o->kind == OP_SCEP && o->scep_cb != NULL)
		o->scep_cb(o->arg, SERVICE_FAILED, NULL, why);
	if (o->kind == OP_REV_UPLOAD && o->up_cb != NULL)
		o->up_cb(o->arg, o->id, "Failed");
	if (o->kind == OP_REV_DOWNLOAD) {
		IN.polling = false;
		svc_download_event(CC_FEATURE_REVOKE, false, 0, NULL, why);
	}
	op_free(o);
}

static void
wait_queue(struct op *o)
{
	o->next = IN.queue;
	IN.queue = o;
}

/* Runs (or fails) everything that waited. */
static void
drain(const char *why)
{
	struct op *q = IN.queue, *n;

	IN.queue = NULL;
	for (; q != NULL; q = n) {
		n = q->next;
		q->next = NULL;
		if (why != NULL)
			op_fail(q, why);
		else
			run(q);
	}
}

/* expires is already brought forward by a margin (token_done). */
static bool
token_ok(const struct token *t)
{
	return t->value != NULL && (int64_t)time(NULL) < t->expires;
}

static void
token_drop(struct token *t)
{
	if (t->value != NULL)
		cc_free_secret(t->value, strlen(t->value) + 1);
	t->value = NULL;
	t->expires = 0;
}

/* ---- OAuth2 client credentials ---- */

static void
token_done(struct svc_call *c)
{
	struct token *t = c->arg;
	const cJSON *at = cJSON_GetObjectItemCaseSensitive(c->json, "access_token");
	const cJSON *exp = cJSON_GetObjectItemCaseSensitive(c->json, "expires_in");
	const cJSON *err = cJSON_GetObjectItemCaseSensitive(c->json, "error");
	char why[400];
	int64_t life;

	t->fetching = false;
	if (!svc_call_ok(c) || !cJSON_IsString(at) || at->valuestring[0] == '\0') {
		snprintf(why, sizeof(why), "no access token from Entra ID: %s%s%s",
		    svc_call_why(c), cJSON_IsString(err) ? " " : "",
		    cJSON_IsString(err) ? err->valuestring : "");
		drain(why);
		return;
	}
	token_drop(t);
	t->value = strdup(at->valuestring);
	life = cJSON_IsNumber(exp) && exp->valuedouble >= 1 && exp->valuedouble < 86400 * 30 ?
	    (int64_t)exp->valuedouble : 3600;
	/* Renew a while before it runs out; a short-lived token at half its life. */
	t->expires = (int64_t)time(NULL) + (life > 2 * TOKEN_MARGIN_S ? life - TOKEN_MARGIN_S :
	    (life + 1) / 2);
	/* cJSON keeps its copy in the call's parsed body, freed with the call. */
	drain(t->value != NULL ? NULL : "out of memory");
}

static void
token_fetch(struct token *t, const char *scope)
{
	char url[1200], *body, *id, *sec, *sc;
	size_t len;
	struct svc_call *c;

	if (t->fetching)
		return;
	id = curl_easy_escape(NULL, IN.cf->client_id, 0);
	sec = curl_easy_escape(NULL, IN.secret, 0);
	sc = curl_easy_escape(NULL, scope, 0);
	if (id == NULL || sec == NULL || sc == NULL) {
		curl_free(id);
		curl_free(sec);
		curl_free(sc);
		drain("out of memory");
		return;
	}
	len = strlen(id) + strlen(sec) + strlen(sc) + 128;
	body = malloc(len);
	if (body != NULL)
		snprintf(body, len, "grant_type=client_credentials&client_id=%s&client_secret=%s&"
		    "scope=%s", id, sec, sc);
	curl_free(id);
	explicit_bzero(sec, strlen(sec));
	curl_free(sec);
	curl_free(sc);
	if (body == NULL) {
		drain("out of memory");
		return;
	}
	snprintf(url, sizeof(url), "%s/%s/oauth2/v2.0/token", IN.cf->login_url, IN.cf->tenant);
	c = svc_call_new(IN.h, url, body);
	if (c == NULL) {
		drain("out of memory");
		return;
	}
	c->content_type = "application/x-www-form-urlencoded";
	c->done = token_done;
	c->arg = t;
	t->fetching = true;
	svc_call_submit(c);
}

/* ---- discovery through Graph ---- */

static void
discover_done(struct svc_call *c)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(c->json, "value"), *it;
	char why[400];

	IN.discovering = false;
	if (svc_call_ok(c) && cJSON_IsArray(v)) {
		cJSON_ArrayForEach(it, v) {
			const cJSON *name = cJSON_GetObjectItemCaseSensitive(it, "providerName");
			const cJSON *uri = cJSON_GetObjectItemCaseSensitive(it, "uri");

			/* Azure AD Graph called it serviceName; accept both. */
			if (!cJSON_IsString(name))
				name = cJSON_GetObjectItemCaseSensitive(it, "serviceName");
			if (!cJSON_IsString(name) || !cJSON_IsString(uri) ||
			    strncasecmp(uri->valuestring, "https://", 8) != 0)
				continue;
			if (strcasecmp(name->valuestring, SCEP_SERVICE) == 0) {
				free(IN.scep_url);
				IN.scep_url = strdup(uri->valuestring);
			} else if (strcasecmp(name->valuestring, PKI_SERVICE) == 0) {
				free(IN.pki_url);
				IN.pki_url = strdup(uri->valuestring);
			}
		}
		IN.discovered = true;
		cc_log_info("service: Intune discovery: %s %s, %s %s", SCEP_SERVICE,
		    IN.scep_url ? IN.scep_url : "(none)", PKI_SERVICE,
		    IN.pki_url ? IN.pki_url : "(none)");
		drain(NULL);
		return;
	}
	if (c->status == 401)
		token_drop(&IN.graph);
	snprintf(why, sizeof(why), "Graph discovery failed: %s", svc_call_why(c));
	drain(why);
}

static void
discover(void)
{
	char url[1200];
	struct svc_call *c;

	if (IN.discovering)
		return;
	snprintf(url, sizeof(url), "%s/v1.0/servicePrincipals/appId=%s/endpoints",
	    IN.cf->graph_url, INTUNE_APP_ID);
	c = svc_call_new(IN.h, url, NULL);
	if (c == NULL) {
		drain("out of memory");
		return;
	}
	c->bearer = strdup(IN.graph.value);
	c->done = discover_done;
	IN.discovering = true;
	svc_call_submit(c);
}

/* ---- the calls ---- */

static void
revocation_downloaded(struct svc_call *c, struct op *o)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(c->json, "value");

	(void)o;
	IN.polling = false;
	if (!cJSON_IsArray(v)) {
		cc_log_warn("service: Intune revocation download: no value array [%s]", c->crid);
		svc_download_event(CC_FEATURE_REVOKE, false, 0, c->crid,
		    "the answer has no value array");
		return;
	}
	svc_download_event(CC_FEATURE_REVOKE, true, svc_revocations_dispatch(v, c->crid), c->crid,
	    NULL);
}

static void
call_done(struct svc_call *c)
{
	struct op *o = c->arg;
	const cJSON *code, *desc, *v;

	c->arg = NULL;
	if (c->status == 401 && o->auth_retries == 0) {
		/* An expired or revoked token: a new one, once. */
		token_drop(&IN.intune);
		o->auth_retries++;
		run(o);
		return;
	}
	if (c->rc != CURLE_OK || c->status == 404) {
		/* The service may have moved: discover again next time, as Microsoft's library. */
		free(IN.scep_url);
		free(IN.pki_url);
		IN.scep_url = IN.pki_url = NULL;
		IN.discovered = false;
	}
	if (!svc_call_ok(c)) {
		op_fail(o, svc_call_why(c));
		return;
	}
	IN.calls_ok++;
	switch (o->kind) {
	case OP_SCEP:
		code = cJSON_GetObjectItemCaseSensitive(c->json, "code");
		desc = cJSON_GetObjectItemCaseSensitive(c->json, "errorDescription");
		if (!cJSON_IsString(code))
			o->scep_cb(o->arg, SERVICE_FAILED, NULL, "the answer has no code");
		else
			o->scep_cb(o->arg, strcmp(code->valuestring, "Success") == 0 ? SERVICE_OK :
			    SERVICE_REFUSED, code->valuestring, cJSON_IsString(desc) ?
			    desc->valuestring : "");
		break;
	case OP_REV_DOWNLOAD:
		revocation_downloaded(c, o);
		break;
	case OP_REV_UPLOAD:
		v = cJSON_GetObjectItemCaseSensitive(c->json, "value");
		if (o->up_cb != NULL)
			o->up_cb(o->arg, o->id, cJSON_IsTrue(v) ? "Recorded" : "NotRecorded");
		break;
	}
	op_free(o);
}

static void
call_dispose(void *arg)
{
	if (arg != NULL)
		op_free(arg);
}

static void
run(struct op *o)
{
	const char *base = o->kind == OP_SCEP ? IN.scep_url : IN.pki_url;
	char url[1400];
	struct svc_call *c;

	if (!token_ok(&IN.intune)) {
		char scope[600];

		wait_queue(o);
		snprintf(scope, sizeof(scope), "%s/.default", IN.cf->intune_resource);
		token_fetch(&IN.intune, scope);
		return;
	}
	if (base == NULL) {
		if (IN.discovered) {
			/* discovered, and this service is not in the map */
			op_fail(o, o->kind == OP_SCEP ? SCEP_SERVICE " is not among the discovered "
			    "services" : PKI_SERVICE " is not among the discovered services");
			return;
		}
		wait_queue(o);
		if (!token_ok(&IN.graph)) {
			char scope[600];
			snprintf(scope, sizeof(scope), "%s/.default", IN.cf->graph_url);
			token_fetch(&IN.graph, scope);
			return;
		}
		discover();
		return;
	}
	snprintf(url, sizeof(url), "%s/%s", base, o->suffix);
	c = svc_call_new(IN.h, url, strdup(o->body));
	if (c == NULL) {
		op_fail(o, "out of memory");
		return;
	}
	c->api_version = o->kind == OP_SCEP ? IN.cf->scep_api_version :
	    IN.cf->revocation_api_version;
	c->bearer = strdup(IN.intune.value);
	c->done = call_done;
	c->arg = o;
	c->dispose = call_dispose;
	if (o->kind == OP_REV_DOWNLOAD)
		c->max_attempts = 2;
	svc_call_submit(c);
}

static struct op *
op_new(enum op_kind kind, const char *suffix, cJSON *body)
{
	struct op *o = calloc(1, sizeof(*o));

	if (o == NULL) {
		cJSON_Delete(body);
		return NULL;
	}
	o->kind = kind;
	snprintf(o->suffix, sizeof(o->suffix), "%s", suffix);
	o->body = cJSON_PrintUnformatted(body);
	cJSON_Delete(body);
	if (o->body == NULL) {
		free(o);
		return NULL;
	}
	return o;
}

int
svc_intune_scep(const char *op, cJSON *inner, const char *txid, service_scep_cb cb, void *arg)
{
	cJSON *body = cJSON_CreateObject();
	char suffix[96];
	struct op *o;

	(void)txid;
	cJSON_AddItemToObject(body, strcmp(op, "validateRequest") == 0 ? "request" :
	    "notification", inner);
	snprintf(suffix, sizeof(suffix), "ScepActions/%s", op);
	o = op_new(OP_SCEP, suffix, body);
	if (o == NULL)
		return -1;
	o->scep_cb = cb;
	o->arg = arg;
	run(o);
	return 0;
}

int
svc_intune_complete(const char *id, bool ok, int32_t code, const char *msg,
    service_upload_cb cb, void *arg)
{
	cJSON *body = cJSON_CreateObject(), *arr, *it;
	struct op *o;

	arr = cJSON_AddArrayToObject(body, "results");
	it = cJSON_CreateObject();
	cJSON_AddItemToArray(arr, it);
	cJSON_AddStringToObject(it, "requestContext", id);
	cJSON_AddBoolToObject(it, "succeeded", ok);
	cJSON_AddNumberToObject(it, "errorCode", code);
	cJSON_AddStringToObject(it, "errorMessage", msg != NULL ? msg : "");
	o = op_new(OP_REV_UPLOAD, "CertificateAuthorityRequests/uploadRevocationResults", body);
	if (o == NULL)
		return -1;
	o->up_cb = cb;
	o->arg = arg;
	snprintf(o->id, sizeof(o->id), "%s", id);
	run(o);
	return 0;
}

static void
poll_cb(evutil_socket_t fd, short what, void *arg)
{
	struct timeval tv = { (time_t)IN.cf->poll_interval_s, 0 };
	cJSON *body, *dp;
	struct op *o;

	(void)fd; (void)what; (void)arg;
	evtimer_add(IN.poll, &tv);
	if (IN.polling || !(IN.cf->features & CC_FEATURE_REVOKE) ||
	    svc_handler_for(CC_FEATURE_REVOKE) == NULL)
		return;
	body = cJSON_CreateObject();
	dp = cJSON_AddObjectToObject(body, "downloadParameters");
	cJSON_AddNumberToObject(dp, "maxRequests", REVOKE_DOWNLOAD_MAX);
	cJSON_AddNullToObject(dp, "issuerName");
	o = op_new(OP_REV_DOWNLOAD, "CertificateAuthorityRequests/downloadRevocationRequests",
	    body);
	if (o == NULL)
		return;
	IN.polling = true;
	run(o);
}

int
svc_intune_start(struct net_ctx *ctx, struct svc_http *h)
{
	struct timeval first = { 1, 0 };
	uint8_t *buf;
	size_t len;

	memset(&IN, 0, sizeof(IN));
	IN.ctx = ctx;
	IN.h = h;
	IN.cf = ctx->conf->service;
	/* Read before the sandbox closes the file system off. */
	if (cc_read_file(IN.cf->client_secret_file, 4096, &buf, &len) == -1) {
		cc_log_err("service: cannot read %s: %s", IN.cf->client_secret_file,
		    strerror(errno));
		return -1;
	}
	buf[strcspn((char *)buf, "\r\n")] = '\0';
	IN.secret = (char *)buf;
	if (IN.secret[0] == '\0') {
		cc_log_err("service: %s is empty", IN.cf->client_secret_file);
		svc_intune_stop();
		return -1;
	}
	IN.poll = evtimer_new(ctx->base, poll_cb, NULL);
	if (IN.poll == NULL || evtimer_add(IN.poll, &first) == -1) {
		svc_intune_stop();
		return -1;
	}
	cc_log_info("service: Intune mode, tenant %s (SCEP validation%s)", IN.cf->tenant,
	    (IN.cf->features & CC_FEATURE_REVOKE) ? ", revocation" : "");
	return 0;
}

void
svc_intune_stop(void)
{
	struct op *q = IN.queue, *n;

	for (; q != NULL; q = n) {
		n = q->next;
		op_free(q);
	}
	if (IN.poll != NULL)
		event_free(IN.poll);
	if (IN.secret != NULL)
		cc_free_secret(IN.secret, strlen(IN.secret) + 1);
	token_drop(&IN.graph);
	token_drop(&IN.intune);
	free(IN.scep_url);
	free(IN.pki_url);
	memset(&IN, 0, sizeof(IN));
}

void
svc_intune_status(struct service_status *st)
{
	st->registered = token_ok(&IN.intune);
	st->health_ok = IN.calls_ok;
	st->health_failed = IN.calls_failed;
}
