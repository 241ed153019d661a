/*
 * The admin API (docs/protocol.md section 12): tenants, enrollment tokens, connectors with
 * their health and lifecycle, queued requests and their results, SCEP challenges and
 * transactions, the version catalogue. The caller is authenticated by hub_api.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/queue.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/rand.h>

#include "certconn/log.h"
#include "hub_int.h"
#include "hub_scep.h"

/* ---- helpers ---- */

static void
b64url(const unsigned char *in, size_t len, char *out)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;

	for (size_t i = 0; i < len; i++) {
		acc = acc << 8 | in[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[o++] = tab[(acc >> bits) & 0x3f];
		}
	}
	if (bits > 0)
		out[o++] = tab[(acc << (6 - bits)) & 0x3f];
	out[o] = '\0';
}

/* A query parameter (decoded by libevent), or NULL. */
static const char *
qparam(struct evkeyvalq *q, const char *key)
{
	return evhttp_find_header(q, key);
}

static int
need_method(struct hub_ctx *x, enum hub_method m)
{
	if (x->call->method != m) {
		hub_reply_error(x->r, 405, "MethodNotAllowed", "use %s here",
		    m == HUB_M_GET ? "GET" : "POST");
		return -1;
	}
	return 0;
}

/* ---- tenants ---- */

static void
tenant_post(struct hub_ctx *x)
{
	static const char *const keys[] = { "tenantId", "displayName", NULL };
	struct hub_body b;
	struct cc_jnode t, m;
	const char *id, *display;
	enum hub_st st;
	cJSON *v;
	char tb[32];

	if (hub_body_parse(x->call, &b, x->r) == -1)
		goto out;
	if (hub_wrapper(&b, "tenant", keys, &t) == -1 ||
	    hub_jstr(&b, &t, "tenantId", true, HUB_ID_MAX, false, false, &id) == -1 ||
	    hub_jstr(&b, &t, "displayName", false, HUB_NAME_MAX * 2, false, false, &display) == -1)
		goto bad;
	if (!hub_id_ok(id)) {
		cc_jck_member(&t, "tenantId", &m);
		hub_invalid(&b, &m, "1-%d characters of A-Z a-z 0-9 . _ : -", HUB_ID_MAX);
		goto bad;
	}
	if (display == NULL)
		display = id;
	st = x->h->store->ops->tenant_put(x->h->store, id, display, x->now);
	if (st == HUB_ST_CONFLICT) {
		hub_reply_error(x->r, 409, "Conflict", "tenant %s exists with another display name",
		    id);
		goto out;
	}
	if (st != HUB_ST_OK && st != HUB_ST_EXISTS) {
		hub_reply_store(x->r, st);
		goto out;
	}
	v = cJSON_CreateObject();
	cJSON_AddStringToObject(v, "tenantId", id);
	cJSON_AddStringToObject(v, "displayName", display);
	cJSON_AddStringToObject(v, "createdUtc", hub_time_str(x->now, tb));
	if (st == HUB_ST_OK)
		cc_log_info("[%s] admin: tenant %s created", x->r->client_request_id, id);
	hub_reply_value(x->r, st == HUB_ST_OK ? 201 : 200, v);
	goto out;
bad:
	hub_body_fail_reply(&b, x->r);
out:
	hub_body_done(&b);
}

struct tenant_list_arg {
	struct hub *h;
	cJSON *arr;
};

static int
tenant_cb(void *arg, const struct hub_tenant *t)
{
	struct tenant_list_arg *a = arg;
	cJSON *o = cJSON_CreateObject();
	char tb[32];
	bool mixed = false;

	if (o == NULL || !cJSON_AddItemToArray(a->arr, o))
		return -1;
	cJSON_AddStringToObject(o, "tenantId", t->id);
	cJSON_AddStringToObject(o, "displayName", t->display);
	cJSON_AddStringToObject(o, "createdUtc", hub_time_str(t->created, tb));
	cJSON_AddNumberToObject(o, "connectors", t->connectors);
	(void)hub_tenant_mixed(a->h, t->id, &mixed);
	cJSON_AddBoolToObject(o, "mixedVersions", mixed);
	return 0;
}

static void
tenant_get(struct hub_ctx *x)
{
	struct tenant_list_arg a = { x->h, cJSON_CreateArray() };
	enum hub_st st;

	st = x->h->store->ops->tenant_list(x->h->store, tenant_cb, &a);
	if (st != HUB_ST_OK) {
		cJSON_Delete(a.arr);
		hub_reply_store(x->r, st);
		return;
	}
	hub_reply_value(x->r, 200, a.arr);
}

/* ---- enrollment tokens ---- */

static void
token_post(struct hub_ctx *x)
{
	static const char *const keys[] = { "tenantId", "features", "validHours", NULL };
	struct hub_body b;
	struct cc_jnode t;
	const char *tenant;
	uint32_t features = 0;
	bool has_features;
	int64_t hours = 24;
	unsigned char rnd[32];
	char token[64], hash[65], tb[32];
	enum hub_st st;
	cJSON *v;

	if (hub_body_parse(x->call, &b, x->r) == -1)
		goto out;
	if (hub_wrapper(&b, "enrollmentToken", keys, &t) == -1 ||
	    hub_jstr(&b, &t, "tenantId", true, HUB_ID_MAX, false, false, &tenant) == -1 ||
	    hub_jfeatures(&b, &t, "features", false, &features, &has_features) == -1 ||
	    hub_jint(&b, &t, "validHours", false, 1, 720, &hours, NULL) == -1) {
		hub_body_fail_reply(&b, x->r);
		goto out;
	}
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		hub_reply_error(x->r, 500, "InternalError", "no randomness");
		goto out;
	}
	memcpy(token, "cce1.", 5);
	b64url(rnd, sizeof(rnd), token + 5);
	explicit_bzero(rnd, sizeof(rnd));
	hub_sha256_hex(token, strlen(token), hash);
	st = x->h->store->ops->token_put(x->h->store, hash, tenant, features,
	    x->now + hours * 3600, x->now);
	if (st == HUB_ST_NO_TENANT) {
		hub_reply_error(x->r, 404, "NotFound", "no tenant %s", tenant);
		goto out;
	}
	if (st != HUB_ST_OK) {
		hub_reply_store(x->r, st);
		goto out;
	}
	v = cJSON_CreateObject();
	cJSON_AddStringToObject(v, "token", token);
	cJSON_AddStringToObject(v, "tenantId", tenant);
	cJSON_AddItemToObject(v, "features", hub_features_json(has_features ? features :
	    HUB_F_ALL));
	cJSON_AddStringToObject(v, "expiresUtc", hub_time_str(x->now + hours * 3600, tb));
	cc_log_info("[%s] admin: enrollment token for tenant %s issued (valid %lld h)",
	    x->r->client_request_id, tenant, (long long)hours);
	explicit_bzero(token, sizeof(token));
	hub_reply_value(x->r, 201, v);
out:
	hub_body_done(&b);
}

/* ---- connectors ---- */

struct conn_list_arg {
	struct hub_ctx *x;
	struct hub_catalogue cat;
	cJSON *arr;
};

static int
conn_cb(void *arg, const struct hub_connector *c)
{
	struct conn_list_arg *a = arg;
	cJSON *o = cJSON_CreateObject(), *hm;
	char tb[32];
	bool mixed = false;

	if (o == NULL || !cJSON_AddItemToArray(a->arr, o))
		return -1;
	(void)hub_tenant_mixed(a->x->h, c->tenant, &mixed);
	cJSON_AddStringToObject(o, "connectorId", c->id);
	cJSON_AddStringToObject(o, "tenantId", c->tenant);
	cJSON_AddStringToObject(o, "name", c->name);
	cJSON_AddStringToObject(o, "version", c->version);
	cJSON_AddItemToObject(o, "features", hub_features_json(c->features));
	cJSON_AddStringToObject(o, "registeredUtc", hub_time_str(c->registered, tb));
	if (c->last_seen)
		cJSON_AddStringToObject(o, "lastSeenUtc", hub_time_str(c->last_seen, tb));
	else
		cJSON_AddNullToObject(o, "lastSeenUtc");
	if (c->last_health)
		cJSON_AddStringToObject(o, "lastHealthUtc", hub_time_str(c->last_health, tb));
	else
		cJSON_AddNullToObject(o, "lastHealthUtc");
	cJSON_AddStringToObject(o, "health", c->disabled ? "disabled" :
	    hub_health_state(a->x->h, c, a->x->now));
	cJSON_AddItemToObject(o, "lifecycle", hub_lifecycle_json(a->x->h, &a->cat, c->version,
	    mixed, a->x->now, NULL));
	cJSON_AddBoolToObject(o, "mixedVersions", mixed);
	cJSON_AddStringToObject(o, "certificateSerial", c->serial);
	cJSON_AddStringToObject(o, "certificateNotAfterUtc", hub_time_str(c->not_after, tb));
	cJSON_AddBoolToObject(o, "disabled", c->disabled);
	if (c->pfx_key != NULL) {
		cJSON *pk = cJSON_AddObjectToObject(o, "pfxKey");

		cJSON_AddStringToObject(pk, "publicKey", c->pfx_key);
		cJSON_AddStringToObject(pk, "keyName", c->pfx_key_name);
		cJSON_AddStringToObject(pk, "updatedUtc", hub_time_str(c->pfx_key_updated, tb));
	} else {
		cJSON_AddNullToObject(o, "pfxKey");
	}
	hm = c->health != NULL ? cJSON_Parse(c->health) : NULL;
	if (hm != NULL)
		cJSON_AddItemToObject(o, "lastHealthMessage", hm);
	else
		cJSON_AddNullToObject(o, "lastHealthMessage");
	return 0;
}

static void
conn_get(struct hub_ctx *x, struct evkeyvalq *q)
{
	struct conn_list_arg a;
	enum hub_st st;

	memset(&a, 0, sizeof(a));
	a.x = x;
	st = hub_catalogue_load(x->h, &a.cat);
	if (st == HUB_ST_OK) {
		a.arr = cJSON_CreateArray();
		st = x->h->store->ops->connector_list(x->h->store, qparam(q, "tenantId"), conn_cb,
		    &a);
	}
	hub_catalogue_free(&a.cat);
	if (st != HUB_ST_OK) {
		cJSON_Delete(a.arr);
		hub_reply_store(x->r, st);
		return;
	}
	hub_reply_value(x->r, 200, a.arr);
}

static void
conn_disable(struct hub_ctx *x)
{
	static const char *const keys[] = { "connectorId", NULL };
	struct hub_body b;
	struct cc_jnode c;
	const char *id;
	enum hub_st st;

	if (hub_body_parse(x->call, &b, x->r) == -1)
		goto out;
	if (hub_wrapper(&b, "connector", keys, &c) == -1 ||
	    hub_jstr(&b, &c, "connectorId", true, HUB_ID_MAX, false, false, &id) == -1) {
		hub_body_fail_reply(&b, x->r);
		goto out;
	}
	st = x->h->store->ops->connector_disable(x->h->store, id);
	if (st == HUB_ST_NOT_FOUND) {
		hub_reply_error(x->r, 404, "NotFound", "no connector %s", id);
		goto out;
	}
	if (st != HUB_ST_OK) {
		hub_reply_store(x->r, st);
		goto out;
	}
	cc_log_info("[%s] admin: connector %s disabled", x->r->client_request_id, id);
	hub_reply_value(x->r, 200, cJSON_CreateBool(1));
out:
	hub_body_done(&b);
}

/* ---- requests ---- */

cJSON *
hub_admin_request_json(const struct hub_request *r, bool with_payload)
{
	cJSON *o = cJSON_CreateObject(), *j;
	char tb[32];

	cJSON_AddStringToObject(o, "requestId", r->id);
	cJSON_AddStringToObject(o, "tenantId", r->tenant);
	cJSON_AddStringToObject(o, "feature", hub_feature_name(r->feature));
	cJSON_AddStringToObject(o, "state", hub_req_state_name(r->state));
	cJSON_AddStringToObject(o, "createdUtc", hub_time_str(r->created, tb));
	cJSON_AddNumberToObject(o, "attempt", r->attempt);
	if (r->target[0] != '\0')
		cJSON_AddStringToObject(o, "targetConnector", r->target);
	else
		cJSON_AddNullToObject(o, "targetConnector");
	if (r->lease_owner[0] != '\0')
		cJSON_AddStringToObject(o, "leasedBy", r->lease_owner);
	else
		cJSON_AddNullToObject(o, "leasedBy");
	if (r->state == HUB_RS_LEASED)
		cJSON_AddStringToObject(o, "leaseExpiresUtc", hub_time_str(r->lease_until, tb));
	else
		cJSON_AddNullToObject(o, "leaseExpiresUtc");
	if (r->state == HUB_RS_COMPLETED || r->state == HUB_RS_FAILED) {
		cJSON_AddStringToObject(o, "completedUtc", hub_time_str(r->completed, tb));
		cJSON_AddStringToObject(o, "completedBy", r->completed_by);
		cJSON_AddBoolToObject(o, "succeeded", r->succeeded);
	} else {
		cJSON_AddNullToObject(o, "completedUtc");
		cJSON_AddNullToObject(o, "completedBy");
		cJSON_AddNullToObject(o, "succeeded");
	}
	cJSON_AddNumberToObject(o, "errorCode", r->error_code);
	if (r->error_message != NULL)
		cJSON_AddStringToObject(o, "errorMessage", r->error_message);
	else
		cJSON_AddNullToObject(o, "errorMessage");
	j = r->result != NULL ? cJSON_Parse(r->result) : NULL;
	if (j != NULL)
		cJSON_AddItemToObject(o, "result", j);
	else
		cJSON_AddNullToObject(o, "result");
	if (with_payload) {
		j = r->payload != NULL ? cJSON_Parse(r->payload) : NULL;
		cJSON_AddItemToObject(o, "payload", j != NULL ? j : cJSON_CreateObject());
	}
	return o;
}

/* The payload members a feature needs (docs/protocol.md section 6). */
static const char *
payload_problem(uint32_t feature, const cJSON *p, char *tag, size_t taglen)
{
	const cJSON *in;
#define HAS_STR(k) (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(p, k)) && \
	cJSON_GetObjectItemCaseSensitive(p, k)->valuestring[0] != '\0')

	tag[0] = '\0';
	switch (feature) {
	case HUB_F_PKCS:
		if (!HAS_STR("deviceId"))
			return "a pkcs request needs deviceId";
		break;
	case HUB_F_PKCS_RECRYPT:
		if (!HAS_STR("deviceId") || !HAS_STR("encryptedPayload"))
			return "a pkcs-recrypt request needs deviceId and encryptedPayload";
		break;
	case HUB_F_PFX_IMPORT:
		if (!HAS_STR("pfx") || !HAS_STR("encryptedPassword") || !HAS_STR("paddingScheme"))
			return "a pfx-import request needs pfx, encryptedPassword and paddingScheme";
		{
			const char *ps = cJSON_GetObjectItemCaseSensitive(p, "paddingScheme")->
			    valuestring;
			if (strcmp(ps, "OaepSha256") != 0 && strcmp(ps, "OaepSha384") != 0 &&
			    strcmp(ps, "OaepSha512") != 0)
				return "paddingScheme must be OaepSha256, OaepSha384 or OaepSha512";
		}
		break;
	case HUB_F_REVOKE:
		if (!HAS_STR("serialNumber"))
			return "a revoke request needs serialNumber";
		in = cJSON_GetObjectItemCaseSensitive(p, "issuerName");
		if (in != NULL && !cJSON_IsString(in) && !cJSON_IsNull(in))
			return "issuerName must be a string";
		if (cJSON_IsString(in)) {
			if (strlen(in->valuestring) >= taglen)
				return "issuerName is too long";
			snprintf(tag, taglen, "%s", in->valuestring);
		}
		return NULL;
	case HUB_F_SCEP:
		if (!HAS_STR("type"))
			return "a scep request needs type";
		return NULL;
	default:
		return "unknown feature";
	}
	/* pkcs, pkcs-recrypt and pfx-import deliver to a device: they need its key. */
	if (!HAS_STR("devicePublicKey") && !HAS_STR("deviceCertificate"))
		return "the request needs devicePublicKey or deviceCertificate";
	return NULL;
#undef HAS_STR
}

void
hub_admin_queue(struct hub_ctx *x, struct hub_request *r)
{
	struct hub_request got;
	enum hub_st st, put;

	memset(&got, 0, sizeof(got));
	put = st = x->h->store->ops->request_put(x->h->store, r);
	if (st == HUB_ST_NO_TENANT) {
		hub_reply_error(x->r, 404, "NotFound", "no tenant %s", r->tenant);
		return;
	}
	if (st == HUB_ST_CONFLICT) {
		hub_reply_error(x->r, 409, "Conflict", "request %s exists with other content",
		    r->id);
		return;
	}
	if (st != HUB_ST_OK && st != HUB_ST_EXISTS) {
		hub_reply_store(x->r, st);
		return;
	}
	if (st == HUB_ST_OK)
		cc_log_info("[%s] admin: %s request %s queued for tenant %s%s%s",
		    x->r->client_request_id, hub_feature_name(r->feature), r->id, r->tenant,
		    r->target[0] ? " and connector " : "", r->target);
	st = x->h->store->ops->request_get(x->h->store, NULL, r->id, &got);
	if (st != HUB_ST_OK) {
		hub_reply_store(x->r, st);
		return;
	}
	hub_reply_value(x->r, put == HUB_ST_OK ? 201 : 200, hub_admin_request_json(&got, false));
	hub_request_clear(&got);
}

static void
request_post(struct hub_ctx *x)
{
	static const char *const keys[] = { "tenantId", "feature", "payload", "requestId", NULL };
	struct hub_body b;
	struct cc_jnode rq, m;
	const char *tenant, *feature, *id, *why;
	char *payload = NULL, uuid[37];
	struct hub_request r;
	cJSON *p;

	memset(&r, 0, sizeof(r));
	if (hub_body_parse(x->call, &b, x->r) == -1)
		goto out;
	if (hub_wrapper(&b, "request", keys, &rq) == -1 ||
	    hub_jstr(&b, &rq, "tenantId", true, HUB_ID_MAX, false, false, &tenant) == -1 ||
	    hub_jstr(&b, &rq, "feature", true, 32, false, false, &feature) == -1 ||
	    hub_jstr(&b, &rq, "requestId", false, HUB_ID_MAX, false, false, &id) == -1 ||
	    hub_jobject_text(&b, &rq, "payload", true, HUB_OBJ_MAX, &payload) == -1)
		goto bad;
	r.feature = hub_feature_bit(feature);
	if (r.feature == 0) {
		cc_jck_member(&rq, "feature", &m);
		hub_invalid(&b, &m, "unknown feature \"%s\"", feature);
		goto bad;
	}
	if (id != NULL && !hub_id_ok(id)) {
		cc_jck_member(&rq, "requestId", &m);
		hub_invalid(&b, &m, "1-%d characters of A-Z a-z 0-9 . _ : -", HUB_ID_MAX);
		goto bad;
	}
	cc_jck_member(&rq, "payload", &m);
	p = cJSON_Parse(payload);
	why = payload_problem(r.feature, p, r.tag, sizeof(r.tag));
	cJSON_Delete(p);
	if (why != NULL) {
		hub_invalid(&b, &m, "%s", why);
		goto bad;
	}
	if (id == NULL) {
		hub_uuid(uuid);
		id = uuid;
	}
	snprintf(r.id, sizeof(r.id), "%s", id);
	snprintf(r.tenant, sizeof(r.tenant), "%s", tenant);
	r.payload = payload;
	r.created = x->now;
	hub_admin_queue(x, &r);
	r.payload = NULL;
	goto out;
bad:
	hub_body_fail_reply(&b, x->r);
out:
	free(payload);
	hub_body_done(&b);
}

static int
req_cb(void *arg, const struct hub_request *r)
{
	cJSON *o = hub_admin_request_json(r, false);

	return o != NULL && cJSON_AddItemToArray(arg, o) ? 0 : -1;
}

static void
request_get_list(struct hub_ctx *x, struct evkeyvalq *q)
{
	struct hub_request_filter f = { qparam(q, "tenantId"), 0, -1, 100 };
	const char *s;
	cJSON *arr;
	enum hub_st st;

	if ((s = qparam(q, "feature")) != NULL && (f.feature = hub_feature_bit(s)) == 0) {
		hub_reply_error(x->r, 400, "InvalidParameter", "unknown feature %.40s", s);
		return;
	}
	if ((s = qparam(q, "state")) != NULL && (f.state = hub_req_state_parse(s)) < 0) {
		hub_reply_error(x->r, 400, "InvalidParameter", "state is queued, leased, completed "
		    "or failed");
		return;
	}
	if ((s = qparam(q, "limit")) != NULL) {
		char *end;
		long l = strtol(s, &end, 10);
		if (*end != '\0' || l < 1 || l > 1000) {
			hub_reply_error(x->r, 400, "InvalidParameter", "limit is 1..1000");
			return;
		}
		f.limit = (uint32_t)l;
	}
	arr = cJSON_CreateArray();
	st = x->h->store->ops->request_list(x->h->store, &f, req_cb, arr);
	if (st != HUB_ST_OK) {
		cJSON_Delete(arr);
		hub_reply_store(x->r, st);
		return;
	}
	hub_reply_value(x->r, 200, arr);
}

static void
request_get_one(struct hub_ctx *x, const char *id)
{
	struct hub_request r;
	enum hub_st st;

	if (!hub_id_ok(id)) {
		hub_reply_error(x->r, 404, "NotFound", "no such request");
		return;
	}
	st = x->h->store->ops->request_get(x->h->store, NULL, id, &r);
	if (st == HUB_ST_NOT_FOUND) {
		hub_reply_error(x->r, 404, "NotFound", "no request %s", id);
		return;
	}
	if (st != HUB_ST_OK) {
		hub_reply_store(x->r, st);
		return;
	}
	hub_reply_value(x->r, 200, hub_admin_request_json(&r, true));
	hub_request_clear(&r);
}

/* ---- SCEP ---- */

static void
challenge_post(struct hub_ctx *x)
{
	static const char *const keys[] = { "tenantId", "subjectName", "subjectAltNames",
		"minKeyBits", "validMinutes", NULL };
	struct hub_body b;
	struct cc_jnode c, m, e;
	const char *tenant, *subject;
	int64_t minbits = 0, minutes = 60;
	struct hub_challenge ch;
	unsigned char rnd[24];
	char chal[48], hash[65], tb[32];
	X509_NAME *n;
	enum hub_st st;
	cJSON *v;

	memset(&ch, 0, sizeof(ch));
	if (hub_body_parse(x->call, &b, x->r) == -1)
		goto out;
	if (hub_wrapper(&b, "challenge", keys, &c) == -1 ||
	    hub_jstr(&b, &c, "tenantId", true, HUB_ID_MAX, false, false, &tenant) == -1 ||
	    hub_jstr(&b, &c, "subjectName", false, 512, false, false, &subject) == -1 ||
	    hub_jint(&b, &c, "minKeyBits", false, 0, 16384, &minbits, NULL) == -1 ||
	    hub_jint(&b, &c, "validMinutes", false, 1, 10080, &minutes, NULL) == -1)
		goto bad;
	if (subject != NULL) {
		n = hub_subject_parse(subject);
		if (n == NULL || hub_subject_canon(n, ch.subject, sizeof(ch.subject)) == -1) {
			X509_NAME_free(n);
			cc_jck_member(&c, "subjectName", &m);
			hub_invalid(&b, &m, "not a distinguished name (CN=...,O=...)");
			goto bad;
		}
		X509_NAME_free(n);
	}
	if (cc_jck_member(&c, "subjectAltNames", &m)) {
		const cJSON *it;
		size_t cnt;
		uint32_t i = 0;

		if (cc_jck_array(&b.j, &m, 32, &cnt) == -1)
			goto bad;
		for (it = m.item->child; it != NULL; it = it->next, i++) {
			const char *s;
			cc_jck_element(&m, it, i, &e);
			if (cc_jck_str(&b.j, &e, 1024, &s) == -1)
				goto bad;
			if (strncmp(s, "DNS:", 4) != 0 && strncmp(s, "email:", 6) != 0 &&
			    strncmp(s, "URI:", 4) != 0 && strncmp(s, "IP:", 3) != 0) {
				hub_invalid(&b, &e, "must start with DNS:, email:, URI: or IP:");
				goto bad;
			}
		}
		if (cnt > 0)
			ch.sans = cJSON_PrintUnformatted(m.item);
	}
	snprintf(ch.tenant, sizeof(ch.tenant), "%s", tenant);
	ch.min_key_bits = (uint32_t)minbits;
	ch.expires = x->now + minutes * 60;
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		hub_reply_error(x->r, 500, "InternalError", "no randomness");
		goto out;
	}
	b64url(rnd, sizeof(rnd), chal);
	explicit_bzero(rnd, sizeof(rnd));
	hub_sha256_hex(chal, strlen(chal), hash);
	st = x->h->store->ops->challenge_put(x->h->store, hash, &ch, x->now);
	if (st == HUB_ST_NO_TENANT) {
		hub_reply_error(x->r, 404, "NotFound", "no tenant %s", tenant);
		goto out;
	}
	if (st != HUB_ST_OK) {
		hub_reply_store(x->r, st);
		goto out;
	}
	v = cJSON_CreateObject();
	cJSON_AddStringToObject(v, "challenge", chal);
	cJSON_AddStringToObject(v, "expiresUtc", hub_time_str(ch.expires, tb));
	explicit_bzero(chal, sizeof(chal));
	cc_log_info("[%s] admin: SCEP challenge for tenant %s issued", x->r->client_request_id,
	    tenant);
	hub_reply_value(x->r, 201, v);
	goto out;
bad:
	hub_body_fail_reply(&b, x->r);
out:
	hub_challenge_clear(&ch);
	hub_body_done(&b);
}

static int
tx_cb(void *arg, const struct hub_scep_tx *t)
{
	cJSON *o = cJSON_CreateObject();
	char tb[32];

	if (o == NULL || !cJSON_AddItemToArray(arg, o))
		return -1;
	cJSON_AddStringToObject(o, "transactionId", t->txid);
	cJSON_AddStringToObject(o, "tenantId", t->tenant);
	cJSON_AddStringToObject(o, "connectorId", t->connector);
	if (t->validated)
		cJSON_AddStringToObject(o, "validatedUtc", hub_time_str(t->validated_at, tb));
	else
		cJSON_AddNullToObject(o, "validatedUtc");
	cJSON_AddStringToObject(o, "state", hub_tx_state_name(t->state));
	cJSON_AddStringToObject(o, "certificateSerialNumber", t->serial);
	cJSON_AddStringToObject(o, "certificateThumbprint", t->thumbprint);
	cJSON_AddNumberToObject(o, "hResult", (double)t->hresult);
	cJSON_AddStringToObject(o, "errorDescription", t->error_description);
	cJSON_AddStringToObject(o, "updatedUtc", hub_time_str(t->updated, tb));
	return 0;
}

static void
tx_get_list(struct hub_ctx *x, struct evkeyvalq *q)
{
	cJSON *arr = cJSON_CreateArray();
	enum hub_st st;

	st = x->h->store->ops->tx_list(x->h->store, qparam(q, "tenantId"), tx_cb, arr);
	if (st != HUB_ST_OK) {
		cJSON_Delete(arr);
		hub_reply_store(x->r, st);
		return;
	}
	hub_reply_value(x->r, 200, arr);
}

/* ---- versions ---- */

static void
version_post(struct hub_ctx *x)
{
	static const char *const keys[] = { "version", "releasedUtc", NULL };
	struct hub_body b;
	struct cc_jnode v, m;
	const char *ver, *rel;
	int64_t t;
	enum hub_st st;

	if (hub_body_parse(x->call, &b, x->r) == -1)
		goto out;
	if (hub_wrapper(&b, "version", keys, &v) == -1 ||
	    hub_jstr(&b, &v, "version", true, HUB_VERSION_MAX, false, false, &ver) == -1 ||
	    hub_jstr(&b, &v, "releasedUtc", true, 40, false, false, &rel) == -1)
		goto bad;
	if (!hub_version_ok(ver)) {
		cc_jck_member(&v, "version", &m);
		hub_invalid(&b, &m, "not a version (N.N.N)");
		goto bad;
	}
	if (hub_time_parse(rel, &t) == -1) {
		cc_jck_member(&v, "releasedUtc", &m);
		hub_invalid(&b, &m, "not a UTC time or date");
		goto bad;
	}
	st = x->h->store->ops->version_put(x->h->store, ver, t);
	if (st != HUB_ST_OK) {
		hub_reply_store(x->r, st);
		goto out;
	}
	cc_log_info("[%s] admin: version %s released %s added to the catalogue",
	    x->r->client_request_id, ver, rel);
	hub_reply_value(x->r, 201, cJSON_CreateBool(1));
	goto out;
bad:
	hub_body_fail_reply(&b, x->r);
out:
	hub_body_done(&b);
}

static int
ver_cb(void *arg, const struct hub_version_row *v)
{
	cJSON *o = cJSON_CreateObject();
	char tb[32];

	if (o == NULL || !cJSON_AddItemToArray(arg, o))
		return -1;
	cJSON_AddStringToObject(o, "version", v->version);
	cJSON_AddStringToObject(o, "releasedUtc", hub_time_str(v->released, tb));
	return 0;
}

static void
version_get(struct hub_ctx *x)
{
	cJSON *arr = cJSON_CreateArray();
	enum hub_st st = x->h->store->ops->version_list(x->h->store, ver_cb, arr);

	if (st != HUB_ST_OK) {
		cJSON_Delete(arr);
		hub_reply_store(x->r, st);
		return;
	}
	hub_reply_value(x->r, 200, arr);
}

/* ---- dispatch ---- */

void
hub_admin_dispatch(struct hub_ctx *x, const char *path)
{
	struct evkeyvalq q;
	enum hub_method m = x->call->method;

	TAILQ_INIT(&q);
	if (x->call->query != NULL && evhttp_parse_query_str(x->call->query, &q) == -1) {
		hub_reply_error(x->r, 400, "InvalidParameter", "the query string is malformed");
		return;
	}
	if (strcmp(path, "tenants") == 0) {
		if (m == HUB_M_POST)
			tenant_post(x);
		else if (need_method(x, HUB_M_GET) == 0)
			tenant_get(x);
	} else if (strcmp(path, "enrollmentTokens") == 0) {
		if (need_method(x, HUB_M_POST) == 0)
			token_post(x);
	} else if (strcmp(path, "connectors") == 0) {
		if (need_method(x, HUB_M_GET) == 0)
			conn_get(x, &q);
	} else if (strcmp(path, "connectors/disable") == 0) {
		if (need_method(x, HUB_M_POST) == 0)
			conn_disable(x);
	} else if (strcmp(path, "requests") == 0) {
		if (m == HUB_M_POST)
			request_post(x);
		else if (need_method(x, HUB_M_GET) == 0)
			request_get_list(x, &q);
	} else if (strncmp(path, "requests/", 9) == 0) {
		if (need_method(x, HUB_M_GET) == 0)
			request_get_one(x, path + 9);
	} else if (strcmp(path, "pfxImports") == 0) {
		if (need_method(x, HUB_M_POST) == 0)
			hub_admin_pfx_import(x);
	} else if (strcmp(path, "scepChallenges") == 0) {
		if (need_method(x, HUB_M_POST) == 0)
			challenge_post(x);
	} else if (strcmp(path, "scepTransactions") == 0) {
		if (need_method(x, HUB_M_GET) == 0)
			tx_get_list(x, &q);
	} else if (strcmp(path, "versions") == 0) {
		if (m == HUB_M_POST)
			version_post(x);
		else if (need_method(x, HUB_M_GET) == 0)
			version_get(x);
	} else {
		hub_reply_error(x->r, 404, "NotFound", "no such admin endpoint");
	}
	evhttp_clear_headers(&q);
}
