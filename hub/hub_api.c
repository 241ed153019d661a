/*
 * The protocol (docs/protocol.md): dispatch, headers, authentication, and the connector
 * endpoints other than SCEP (hub_scep.c). The admin API is in hub_admin.c.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "certconn/log.h"
#include "hub_ca.h"
#include "hub_int.h"
#include "hub_pfx.h"

#define API_VERSION_OWN "1.0"
#define API_VERSION_SCEP "2018-02-20"
#define API_VERSION_REVOKE "5019-05-05"

/* ---- replies ---- */

void
hub_reply_json(struct hub_reply *r, int status, cJSON *body)
{
	free(r->body);
	r->body = NULL;
	r->status = status;
	if (body != NULL) {
		r->body = cJSON_PrintUnformatted(body);
		cJSON_Delete(body);
		if (r->body == NULL) {
			r->status = 500;
			r->body = strdup("{\"error\":{\"code\":\"InternalError\","
			    "\"message\":\"out of memory\"}}");
		}
	}
}

void
hub_reply_error(struct hub_reply *r, int status, const char *code, const char *fmt, ...)
{
	cJSON *o = cJSON_CreateObject(), *e;
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	e = cJSON_AddObjectToObject(o, "error");
	cJSON_AddStringToObject(e, "code", code);
	cJSON_AddStringToObject(e, "message", msg);
	if (r->client_request_id[0] != '\0')
		cJSON_AddStringToObject(e, "clientRequestId", r->client_request_id);
	hub_reply_json(r, status, o);
}

void
hub_reply_store(struct hub_reply *r, enum hub_st st)
{
	if (st == HUB_ST_BUSY) {
		r->retry_after = 5;
		hub_reply_error(r, 503, "ServiceUnavailable", "the hub's store is busy");
	} else {
		hub_reply_error(r, 500, "InternalError", "the hub's store failed (%s)",
		    hub_st_name(st));
	}
}

void
hub_reply_value(struct hub_reply *r, int status, cJSON *v)
{
	cJSON *o = cJSON_CreateObject();

	if (o == NULL || v == NULL || !cJSON_AddItemToObject(o, "value", v)) {
		cJSON_Delete(o);
		cJSON_Delete(v);
		hub_reply_error(r, 500, "InternalError", "out of memory");
		return;
	}
	hub_reply_json(r, status, o);
}

void
hub_reply_free(struct hub_reply *r)
{
	free(r->body);
	r->body = NULL;
}

/* ---- bodies ---- */

int
hub_body_parse(const struct hub_call *c, struct hub_body *b, struct hub_reply *r)
{
	memset(b, 0, sizeof(*b));
	if (c->body_len == 0) {
		hub_reply_error(r, 400, "MalformedRequest", "the request has no body");
		return -1;
	}
	if (c->body_len > CC_JCK_MAX_TEXT) {
		hub_reply_error(r, 400, "MalformedRequest", "the body is larger than %u bytes",
		    CC_JCK_MAX_TEXT);
		return -1;
	}
	b->text = malloc(c->body_len + 1);
	if (b->text == NULL) {
		hub_reply_error(r, 500, "InternalError", "out of memory");
		return -1;
	}
	memcpy(b->text, c->body, c->body_len);
	b->text[c->body_len] = '\0';
	if (cc_jck_parse(&b->j, "(request)", b->text, c->body_len, b->err, sizeof(b->err), NULL,
	    &b->root) == -1) {
		hub_reply_error(r, 400, "MalformedRequest", "%s", b->err);
		return -1;
	}
	return 0;
}

void
hub_body_done(struct hub_body *b)
{
	if (b->text != NULL)
		cc_jck_done(&b->j);
	free(b->text);
	b->text = NULL;
}

void
hub_body_fail_reply(struct hub_body *b, struct hub_reply *r)
{
	hub_reply_error(r, 400, b->kind == HUB_BAD_INVALID ? "InvalidParameter" :
	    "MalformedRequest", "%s", b->err[0] ? b->err : "the request is malformed");
}

int
hub_invalid(struct hub_body *b, const struct cc_jnode *n, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!b->j.failed)
		b->kind = HUB_BAD_INVALID;
	return cc_jck_fail(&b->j, n, "%s", msg);
}

int
hub_wrapper(struct hub_body *b, const char *key, const char *const *allowed,
    struct cc_jnode *out)
{
	const char *const top[] = { key, NULL };

	if (cc_jck_object(&b->j, &b->root, top, 1) == -1)
		return -1;
	if (!cc_jck_member(&b->root, key, out))
		return cc_jck_fail_missing(&b->j, &b->root, key);
	return cc_jck_object(&b->j, out, allowed, 64);
}

int
hub_jstr(struct hub_body *b, const struct cc_jnode *obj, const char *key, bool required,
    size_t max, bool allow_empty, bool null_ok, const char **out)
{
	struct cc_jnode m;
	const char *s;
	size_t len;

	*out = NULL;
	if (!cc_jck_member(obj, key, &m) || (null_ok && cJSON_IsNull(m.item))) {
		if (required)
			return cc_jck_fail_missing(&b->j, obj, key);
		return 0;
	}
	if (!cJSON_IsString(m.item) || m.item->valuestring == NULL)
		return cc_jck_fail(&b->j, &m, "expected a string");
	s = m.item->valuestring;
	len = strlen(s);
	if (len == 0 && !allow_empty)
		return hub_invalid(b, &m, "must not be empty");
	if (len > max)
		return hub_invalid(b, &m, "longer than %zu bytes", max);
	for (size_t k = 0; k < len; k++)
		if ((unsigned char)s[k] < 0x20 || s[k] == 0x7f)
			return hub_invalid(b, &m, "contains a control character");
	*out = s;
	return 0;
}

int
hub_jint(struct hub_body *b, const struct cc_jnode *obj, const char *key, bool required,
    int64_t min, int64_t max, int64_t *out, bool *present)
{
	struct cc_jnode m;
	double v;

	if (present != NULL)
		*present = false;
	if (!cc_jck_member(obj, key, &m)) {
		if (required)
			return cc_jck_fail_missing(&b->j, obj, key);
		return 0;
	}
	if (!cJSON_IsNumber(m.item))
		return cc_jck_fail(&b->j, &m, "expected an integer");
	v = m.item->valuedouble;
	if (v != v || v < -9.0e15 || v > 9.0e15 || v != (double)(int64_t)v)
		return hub_invalid(b, &m, "expected an integer");
	if ((int64_t)v < min || (int64_t)v > max)
		return hub_invalid(b, &m, "must be %lld..%lld", (long long)min, (long long)max);
	*out = (int64_t)v;
	if (present != NULL)
		*present = true;
	return 0;
}

int
hub_jbool(struct hub_body *b, const struct cc_jnode *obj, const char *key, bool required,
    bool *out, bool *present)
{
	struct cc_jnode m;

	if (present != NULL)
		*present = false;
	if (!cc_jck_member(obj, key, &m)) {
		if (required)
			return cc_jck_fail_missing(&b->j, obj, key);
		return 0;
	}
	if (cc_jck_bool(&b->j, &m, out) == -1)
		return -1;
	if (present != NULL)
		*present = true;
	return 0;
}

int
hub_jfeatures(struct hub_body *b, const struct cc_jnode *obj, const char *key, bool required,
    uint32_t *mask, bool *present)
{
	struct cc_jnode m, e;
	const cJSON *it;
	size_t n;
	uint32_t i = 0, bit;

	*mask = 0;
	if (present != NULL)
		*present = false;
	if (!cc_jck_member(obj, key, &m)) {
		if (required)
			return cc_jck_fail_missing(&b->j, obj, key);
		return 0;
	}
	if (cc_jck_array(&b->j, &m, 5, &n) == -1)
		return -1;
	if (n == 0)
		return hub_invalid(b, &m, "must name at least one feature");
	for (it = m.item->child; it != NULL; it = it->next, i++) {
		const char *s;

		cc_jck_element(&m, it, i, &e);
		if (cc_jck_str(&b->j, &e, 32, &s) == -1)
			return -1;
		bit = hub_feature_bit(s);
		if (bit == 0)
			return hub_invalid(b, &e, "unknown feature \"%s\" (known: pkcs, pkcs-recrypt, "
			    "pfx-import, revoke, scep)", s);
		if (*mask & bit)
			return hub_invalid(b, &e, "feature \"%s\" appears twice", s);
		*mask |= bit;
	}
	if (present != NULL)
		*present = true;
	return 0;
}

int
hub_jobject_text(struct hub_body *b, const struct cc_jnode *obj, const char *key, bool required,
    size_t max, char **out)
{
	struct cc_jnode m;
	char *t;

	*out = NULL;
	if (!cc_jck_member(obj, key, &m)) {
		if (required)
			return cc_jck_fail_missing(&b->j, obj, key);
		return 0;
	}
	if (!cJSON_IsObject(m.item))
		return cc_jck_fail(&b->j, &m, "expected an object");
	t = cJSON_PrintUnformatted(m.item);
	if (t == NULL)
		return cc_jck_fail(&b->j, &m, "out of memory");
	if (strlen(t) > max) {
		free(t);
		return hub_invalid(b, &m, "larger than %zu bytes", max);
	}
	*out = t;
	return 0;
}

int
hub_jb64(struct hub_body *b, const struct cc_jnode *obj, const char *key, size_t max,
    uint8_t **out, size_t *len)
{
	struct cc_jnode m;
	const char *s;

	*out = NULL;
	*len = 0;
	if (hub_jstr(b, obj, key, true, (max + 2) / 3 * 4, false, false, &s) == -1)
		return -1;
	cc_jck_member(obj, key, &m);
	if (hub_b64_decode(s, max, out, len) == -1)
		return hub_invalid(b, &m, "not base64 of at most %zu bytes", max);
	return 0;
}

/* ---- lifecycle helpers ---- */

static int
cat_cb(void *arg, const struct hub_version_row *v)
{
	struct hub_catalogue *c = arg;
	void *p;

	p = realloc(c->v, (c->n + 1) * sizeof(*c->v));
	if (p == NULL)
		return -1;
	c->v = p;
	p = realloc(c->names, (c->n + 1) * sizeof(*c->names));
	if (p == NULL)
		return -1;
	c->names = p;
	snprintf(c->names[c->n], sizeof(c->names[c->n]), "%s", v->version);
	c->v[c->n].released = v->released;
	c->n++;
	return 0;
}

enum hub_st
hub_catalogue_load(struct hub *h, struct hub_catalogue *c)
{
	enum hub_st st;

	memset(c, 0, sizeof(*c));
	st = h->store->ops->version_list(h->store, cat_cb, c);
	/* names may have moved while growing: point the entries at them now. */
	for (size_t i = 0; i < c->n; i++)
		c->v[i].version = c->names[i];
	return st;
}

void
hub_catalogue_free(struct hub_catalogue *c)
{
	free(c->v);
	free(c->names);
	memset(c, 0, sizeof(*c));
}

cJSON *
hub_lifecycle_json(struct hub *h, const struct hub_catalogue *c, const char *version, bool mixed,
    int64_t now, enum hub_life *status)
{
	struct hub_life_result lr;
	cJSON *o = cJSON_CreateObject();
	char tb[32];

	hub_lifecycle(c->v, c->n, version, now, (int)h->conf->support_months,
	    (int)h->conf->block_months, &lr);
	if (status != NULL)
		*status = lr.status;
	cJSON_AddStringToObject(o, "status", hub_life_name(lr.status));
	if (lr.latest != NULL)
		cJSON_AddStringToObject(o, "latestVersion", lr.latest);
	else
		cJSON_AddNullToObject(o, "latestVersion");
	if (lr.support_ends != 0) {
		cJSON_AddStringToObject(o, "supportEndsUtc", hub_time_str(lr.support_ends, tb));
		cJSON_AddStringToObject(o, "blockAfterUtc", hub_time_str(lr.block_after, tb));
	} else {
		cJSON_AddNullToObject(o, "supportEndsUtc");
		cJSON_AddNullToObject(o, "blockAfterUtc");
	}
	cJSON_AddBoolToObject(o, "mixedVersions", mixed);
	return o;
}

struct mixed_arg {
	char first[HUB_VERSION_MAX + 1];
	bool mixed;
};

static int
mixed_cb(void *arg, const struct hub_connector *c)
{
	struct mixed_arg *m = arg;

	if (c->disabled)
		return 0;
	if (m->first[0] == '\0')
		snprintf(m->first, sizeof(m->first), "%s", c->version);
	else if (hub_version_cmp(m->first, c->version) != 0)
		m->mixed = true;
	return 0;
}

enum hub_st
hub_tenant_mixed(struct hub *h, const char *tenant, bool *mixed)
{
	struct mixed_arg m;
	enum hub_st st;

	memset(&m, 0, sizeof(m));
	st = h->store->ops->connector_list(h->store, tenant, mixed_cb, &m);
	*mixed = m.mixed;
	return st;
}

const char *
hub_health_state(const struct hub *h, const struct hub_connector *c, int64_t now)
{
	uint32_t after = h->conf->unhealthy_after_s ? h->conf->unhealthy_after_s :
	    3 * h->conf->health_interval_s;

	if (c->last_health == 0)
		return "unknown";
	return now - c->last_health > (int64_t)after ? "unhealthy" : "healthy";
}

/* ---- authentication ---- */

static bool
bearer_is_admin(const struct hub *h, const char *auth)
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	const char *tok;

	if (!h->has_admin || auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0)
		return false;
	tok = auth + 7;
	if (EVP_Digest(tok, strlen(tok), md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
		return false;
	return CRYPTO_memcmp(md, h->admin_hash, 32) == 0;
}

/* 0 with x->conn when the call's certificate names a live connector; else the reply is set. */
static int
auth_connector(struct hub_ctx *x, bool current_only)
{
	const struct hub_peer *p = &x->call->peer;
	enum hub_st st;

	if (!p->present) {
		if (bearer_is_admin(x->h, x->call->authorization))
			hub_reply_error(x->r, 403, "WrongCredential", "the admin credential cannot "
			    "act as a connector");
		else
			hub_reply_error(x->r, 401, "Unauthenticated", "connector calls need the "
			    "client certificate the hub issued at registration");
		return -1;
	}
	st = x->h->store->ops->connector_get(x->h->store, p->connector, &x->conn);
	if (st == HUB_ST_NOT_FOUND) {
		hub_reply_error(x->r, 401, "Unauthenticated", "unknown connector %s", p->connector);
		return -1;
	}
	if (st != HUB_ST_OK) {
		hub_reply_store(x->r, st);
		return -1;
	}
	x->has_conn = true;
	if (strcmp(x->conn.tenant, p->tenant) != 0) {
		hub_reply_error(x->r, 401, "Unauthenticated", "the certificate names another tenant");
		return -1;
	}
	if (x->conn.disabled) {
		hub_reply_error(x->r, 401, "Unauthenticated", "connector %s is disabled",
		    x->conn.id);
		return -1;
	}
	if (strcmp(p->serial, x->conn.serial) != 0 &&
	    (current_only || x->conn.prev_serial[0] == '\0' ||
	    strcmp(p->serial, x->conn.prev_serial) != 0 || x->conn.prev_not_after <= x->now)) {
		hub_reply_error(x->r, 401, "Unauthenticated", "certificate %s is not connector "
		    "%s's current certificate", p->serial, x->conn.id);
		return -1;
	}
	(void)x->h->store->ops->connector_seen(x->h->store, x->conn.id, x->now);
	return 0;
}

/* The version gate: a blocked version is refused when the hub is told to. */
static int
version_gate(struct hub_ctx *x)
{
	struct hub_catalogue c;
	struct hub_life_result lr;

	if (!x->h->conf->refuse_blocked)
		return 0;
	if (hub_catalogue_load(x->h, &c) != HUB_ST_OK) {
		hub_catalogue_free(&c);
		return 0; /* the catalogue is advisory: a store hiccup does not stop work */
	}
	hub_lifecycle(c.v, c.n, x->conn.version, x->now, (int)x->h->conf->support_months,
	    (int)x->h->conf->block_months, &lr);
	hub_catalogue_free(&c);
	if (lr.status == HUB_LIFE_BLOCKED) {
		hub_reply_error(x->r, 403, "VersionBlocked", "version %s is past its 18-month "
		    "limit; update the connector", x->conn.version);
		return -1;
	}
	return 0;
}

/* ---- registration ---- */

/* Issues a certificate for the connector and adds the registration answer's members. */
static cJSON *
cert_value(struct hub_ctx *x, X509 *cert, const char *tenant, const char *id, uint32_t features)
{
	cJSON *v = cJSON_CreateObject(), *cas;
	unsigned char *der = NULL;
	char *b64;
	int len;
	char tb[32];
	int64_t nb, na;
	const ASN1_TIME *t;
	struct tm tm;

	cJSON_AddStringToObject(v, "connectorId", id);
	cJSON_AddStringToObject(v, "tenantId", tenant);
	cJSON_AddItemToObject(v, "features", hub_features_json(features));
	len = i2d_X509(cert, &der);
	b64 = len > 0 ? hub_b64_encode(der, (size_t)len) : NULL;
	OPENSSL_free(der);
	der = NULL;
	cJSON_AddStringToObject(v, "certificate", b64 ? b64 : "");
	free(b64);
	cas = cJSON_AddArrayToObject(v, "caCertificates");
	len = i2d_X509(hub_ca_cert(x->h->ca), &der);
	b64 = len > 0 ? hub_b64_encode(der, (size_t)len) : NULL;
	OPENSSL_free(der);
	if (b64 != NULL)
		cJSON_AddItemToArray(cas, cJSON_CreateString(b64));
	free(b64);
	t = X509_get0_notBefore(cert);
	nb = ASN1_TIME_to_tm(t, &tm) == 1 ? (int64_t)timegm(&tm) : x->now;
	t = X509_get0_notAfter(cert);
	na = ASN1_TIME_to_tm(t, &tm) == 1 ? (int64_t)timegm(&tm) : x->now;
	cJSON_AddStringToObject(v, "notBeforeUtc", hub_time_str(nb, tb));
	cJSON_AddStringToObject(v, "notAfterUtc", hub_time_str(na, tb));
	cJSON_AddStringToObject(v, "renewAfterUtc", hub_time_str(nb + (na - nb) * 2 / 3, tb));
	return v;
}

static int64_t
not_after(const X509 *x)
{
	struct tm tm;

	return ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1 ? (int64_t)timegm(&tm) : 0;
}

/* The CSR member: decoded, verified, key acceptable; the reply is set on -1. */
static int
get_csr(struct hub_ctx *x, struct hub_body *b, const struct cc_jnode *obj, X509_REQ **req)
{
	uint8_t *der = NULL;
	size_t len;
	const char *why = NULL;
	struct cc_jnode m;

	*req = NULL;
	if (hub_jb64(b, obj, "certificateRequest", HUB_CSR_MAX, &der, &len) == -1)
		return -1;
	cc_jck_member(obj, "certificateRequest", &m);
	if (hub_csr_parse(der, len, req, &why) != 0 ||
	    hub_key_ok_for_client(X509_REQ_get0_pubkey(*req), &why) == -1) {
		free(der);
		X509_REQ_free(*req);
		*req = NULL;
		return hub_invalid(b, &m, "%s", why);
	}
	free(der);
	(void)x;
	return 0;
}

static void
h_register(struct hub_ctx *x)
{
	static const char *const keys[] = { "enrollmentToken", "certificateRequest",
		"connectorName", "version", "features", NULL };
	struct hub_body b;
	struct cc_jnode reg, m;
	const char *token, *name, *version;
	X509_REQ *req = NULL;
	X509 *cert = NULL;
	struct hub_connector c;
	char hash[65], id[37], tenant[HUB_ID_MAX + 1];
	uint32_t features;
	enum hub_st st;

	memset(&c, 0, sizeof(c));
	if (hub_body_parse(x->call, &b, x->r) == -1)
		goto out;
	if (hub_wrapper(&b, "registration", keys, &reg) == -1 ||
	    hub_jstr(&b, &reg, "enrollmentToken", true, 128, false, false, &token) == -1 ||
	    hub_jstr(&b, &reg, "connectorName", false, HUB_NAME_MAX, false, false, &name) == -1 ||
	    hub_jstr(&b, &reg, "version", true, HUB_VERSION_MAX, false, false, &version) == -1 ||
	    hub_jfeatures(&b, &reg, "features", true, &features, NULL) == -1)
		goto bad;
	if (!hub_version_ok(version)) {
		cc_jck_member(&reg, "version", &m);
		hub_invalid(&b, &m, "not a version (N.N.N)");
		goto bad;
	}
	if (get_csr(x, &b, &reg, &req) == -1)
		goto bad;
	if (x->h->ca == NULL) {
		hub_reply_error(x->r, 503, "ServiceUnavailable", "this hub has no CA");
		goto out;
	}
	hub_sha256_hex(token, strlen(token), hash);
	/* The tenant is the token's; the certificate names it, so it is read first and the
	 * registration (in one transaction) checks the token again. */
	st = x->h->store->ops->token_tenant(x->h->store, hash, x->now, tenant);
	if (st == HUB_ST_TOKEN_INVALID) {
		hub_reply_error(x->r, 401, "InvalidEnrollmentToken", "the enrollment token is "
		    "unknown, used or expired");
		goto out;
	}
	if (st != HUB_ST_OK) {
		hub_reply_store(x->r, st);
		goto out;
	}
	hub_uuid(id);
	cert = hub_ca_issue_client(x->h->ca, X509_REQ_get0_pubkey(req), tenant, id, x->now,
	    x->h->conf->client_cert_days);
	if (cert == NULL) {
		hub_reply_error(x->r, 500, "InternalError", "the hub CA could not sign");
		goto out;
	}
	snprintf(c.id, sizeof(c.id), "%s", id);
	snprintf(c.name, sizeof(c.name), "%s", name != NULL ? name : id);
	snprintf(c.version, sizeof(c.version), "%s", version);
	c.features = features;
	if (hub_serial_hex(cert, c.serial, sizeof(c.serial)) == -1)
		goto internal;
	c.not_after = not_after(cert);
	st = x->h->store->ops->connector_register(x->h->store, hash, &c,
	    x->h->conf->max_connectors, x->now);
	switch (st) {
	case HUB_ST_OK:
		break;
	case HUB_ST_TOKEN_INVALID:
		hub_reply_error(x->r, 401, "InvalidEnrollmentToken", "the enrollment token is "
		    "unknown, used or expired");
		goto out;
	case HUB_ST_FEATURE:
		hub_reply_error(x->r, 403, "FeatureNotAllowed", "the enrollment token does not "
		    "allow every requested feature");
		goto out;
	case HUB_ST_LIMIT:
		hub_reply_error(x->r, 409, "TenantConnectorLimit", "tenant %s already has %u "
		    "connectors", c.tenant, x->h->conf->max_connectors);
		goto out;
	default:
		hub_reply_store(x->r, st);
		goto out;
	}
	if (strcmp(c.tenant, tenant) != 0)
		goto internal; /* the token cannot change tenants; a store that says so is broken */
	cc_log_info("[%s] registered connector %s (%s) in tenant %s, version %s",
	    x->r->client_request_id, c.id, c.name, c.tenant, c.version);
	hub_reply_value(x->r, 201, cert_value(x, cert, c.tenant, c.id, c.features));
	goto out;
internal:
	hub_reply_error(x->r, 500, "InternalError", "registration failed");
	goto out;
bad:
	hub_body_fail_reply(&b, x->r);
out:
	X509_free(cert);
	X509_REQ_free(req);
	hub_body_done(&b);
}

static void
h_renew(struct hub_ctx *x)
{
	static const char *const keys[] = { "certificateRequest", NULL };
	struct hub_body b;
	struct cc_jnode ren;
	X509_REQ *req = NULL;
	X509 *cert = NULL;
	char serial[80];
	enum hub_st st;

	if (hub_body_parse(x->call, &b, x->r) == -1)
		goto out;
	if (hub_wrapper(&b, "renewal", keys, &ren) == -1 || get_csr(x, &b, &ren, &req) == -1) {
		hub_body_fail_reply(&b, x->r);
		goto out;
	}
	if (x->h->ca == NULL) {
		hub_reply_error(x->r, 503, "ServiceUnavailable", "this hub has no CA");
		goto out;
	}
	cert = hub_ca_issue_client(x->h->ca, X509_REQ_get0_pubkey(req), x->conn.tenant,
	    x->conn.id, x->now, x->h->conf->client_cert_days);
	if (cert == NULL || hub_serial_hex(cert, serial, sizeof(serial)) == -1) {
		hub_reply_error(x->r, 500, "InternalError", "the hub CA could not sign");
		goto out;
	}
	st = x->h->store->ops->connector_set_cert(x->h->store, x->conn.id, serial,
	    not_after(cert));
	if (st != HUB_ST_OK) {
		hub_reply_store(x->r, st);
		goto out;
	}
	cc_log_info("[%s] renewed the certificate of connector %s: serial %s",
	    x->r->client_request_id, x->conn.id, serial);
	hub_reply_value(x->r, 200, cert_value(x, cert, x->conn.tenant, x->conn.id,
	    x->conn.features));
out:
	X509_free(cert);
	X509_REQ_free(req);
	hub_body_done(&b);
}

/* ---- work requests ---- */

struct lease_out {
	cJSON *arr;
	bool revocation;
};

static int
lease_cb(void *arg, const struct hub_request *r)
{
	struct lease_out *o = arg;
	cJSON *it = cJSON_CreateObject(), *p;
	char tb[32];

	if (it == NULL || !cJSON_AddItemToArray(o->arr, it))
		return -1;
	p = r->payload != NULL ? cJSON_Parse(r->payload) : NULL;
	if (o->revocation) {
		const cJSON *sn = cJSON_GetObjectItemCaseSensitive(p, "serialNumber");
		const cJSON *in = cJSON_GetObjectItemCaseSensitive(p, "issuerName");
		const cJSON *cc = cJSON_GetObjectItemCaseSensitive(p, "caConfiguration");

		cJSON_AddStringToObject(it, "requestContext", r->id);
		cJSON_AddStringToObject(it, "serialNumber", cJSON_IsString(sn) ? sn->valuestring :
		    "");
		if (cJSON_IsString(in))
			cJSON_AddStringToObject(it, "issuerName", in->valuestring);
		else
			cJSON_AddNullToObject(it, "issuerName");
		if (cJSON_IsString(cc))
			cJSON_AddStringToObject(it, "caConfiguration", cc->valuestring);
		else
			cJSON_AddNullToObject(it, "caConfiguration");
		cJSON_Delete(p);
		return 0;
	}
	cJSON_AddStringToObject(it, "requestId", r->id);
	cJSON_AddStringToObject(it, "feature", hub_feature_name(r->feature));
	cJSON_AddStringToObject(it, "createdUtc", hub_time_str(r->created, tb));
	cJSON_AddStringToObject(it, "leaseExpiresUtc", hub_time_str(r->lease_until, tb));
	cJSON_AddNumberToObject(it, "attempt", r->attempt);
	cJSON_AddItemToObject(it, "payload", p != NULL ? p : cJSON_CreateObject());
	return 0;
}

static int
need_feature(struct hub_ctx *x, uint32_t bit)
{
	if ((x->conn.features & bit) == 0) {
		hub_reply_error(x->r, 403, "FeatureNotRegistered", "connector %s has no feature %s",
		    x->conn.id, hub_feature_name(bit));
		return -1;
	}
	return 0;
}

static void
h_download(struct hub_ctx *x)
{
	static const char *const keys[] = { "feature", "maxRequests", "leaseSeconds", NULL };
	const struct hub_conf *cf = x->h->conf;
	struct hub_body b;
	struct cc_jnode dp, m;
	const char *feature;
	int64_t max, lease = cf->lease_default_s;
	uint32_t bit;
	struct lease_out o = { NULL, false };
	enum hub_st st;

	if (hub_body_parse(x->call, &b, x->r) == -1)
		goto out;
	if (hub_wrapper(&b, "downloadParameters", keys, &dp) == -1 ||
	    hub_jstr(&b, &dp, "feature", true, 32, false, false, &feature) == -1 ||
	    hub_jint(&b, &dp, "maxRequests", true, 1, HUB_BATCH_MAX, &max, NULL) == -1 ||
	    hub_jint(&b, &dp, "leaseSeconds", false, cf->lease_min_s, cf->lease_max_s, &lease,
	    NULL) == -1)
		goto bad;
	bit = hub_feature_bit(feature);
	if (bit == 0) {
		cc_jck_member(&dp, "feature", &m);
		hub_invalid(&b, &m, "unknown feature \"%s\"", feature);
		goto bad;
	}
	if (need_feature(x, bit) == -1)
		goto out;
	o.arr = cJSON_CreateArray();
	st = x->h->store->ops->request_lease(x->h->store, x->conn.tenant, bit, NULL,
	    (uint32_t)max, x->conn.id, x->now + lease, cf->max_attempts, x->now, lease_cb, &o);
	if (st != HUB_ST_OK) {
		hub_reply_store(x->r, st);
		goto out;
	}
	if (cJSON_GetArraySize(o.arr) > 0)
		cc_log_info("[%s] connector %s leased %d %s request(s) for %llds",
		    x->r->client_request_id, x->conn.id, cJSON_GetArraySize(o.arr), feature,
		    (long long)lease);
	hub_reply_value(x->r, 200, o.arr);
	o.arr = NULL;
	goto out;
bad:
	hub_body_fail_reply(&b, x->r);
out:
	cJSON_Delete(o.arr);
	hub_body_done(&b);
}

static bool
error_code_ok(int64_t c)
{
	return c == 0 || (c >= 4000 && c <= 4007) || (c >= 4100 && c <= 4103);
}

/* One result item; fills in the outcome's JSON. Structural problems fail the call (-1). */
static int
upload_item(struct hub_ctx *x, struct hub_body *b, const struct cc_jnode *it, bool revocation,
    cJSON *out, bool *all_ok)
{
	static const char *const keys[] = { "requestId", "succeeded", "errorCode", "errorMessage",
		"result", NULL };
	static const char *const rkeys[] = { "requestContext", "succeeded", "errorCode",
		"errorMessage", NULL };
	const char *id, *msg;
	int64_t code;
	bool ok;
	char *result = NULL;
	struct hub_result_in in;
	enum hub_up up = HUB_UP_INVALID;
	const char *why = NULL;
	cJSON *o;
	enum hub_st st;

	if (cc_jck_object(&b->j, it, revocation ? rkeys : keys, 8) == -1 ||
	    hub_jstr(b, it, revocation ? "requestContext" : "requestId", true, 256, false, false,
	    &id) == -1 ||
	    hub_jbool(b, it, "succeeded", true, &ok, NULL) == -1 ||
	    hub_jint(b, it, "errorCode", true, INT32_MIN, INT32_MAX, &code, NULL) == -1 ||
	    hub_jstr(b, it, "errorMessage", false, HUB_MSG_MAX, true, true, &msg) == -1)
		return -1;
	if (!revocation && hub_jobject_text(b, it, "result", false, HUB_OBJ_MAX, &result) == -1)
		return -1;
	if (!hub_id_ok(id))
		why = "not a request id";
	else if (!error_code_ok(code))
		why = "errorCode is not 0 or a CA request error code (4000-4007, 4100-4103)";
	else if (ok && code != 0)
		why = "a succeeded result has errorCode 0";
	else if (!ok && code == 0)
		why = "a failed result needs an errorCode";
	if (why == NULL) {
		in = (struct hub_result_in){ id, ok, (int32_t)code, msg, result,
			!ok && code >= 4100 };
		st = x->h->store->ops->request_complete(x->h->store, x->conn.tenant,
		    x->conn.features, x->conn.id, &in, x->h->conf->max_attempts, x->now, &up);
		if (st != HUB_ST_OK) {
			free(result);
			hub_reply_store(x->r, st);
			return -2;
		}
		cc_log_info("[%s] result for %s from connector %s: %s (%s, errorCode %lld)",
		    x->r->client_request_id, id, x->conn.id, hub_up_name(up),
		    ok ? "succeeded" : "failed", (long long)code);
	}
	free(result);
	if (up != HUB_UP_RECORDED && up != HUB_UP_REQUEUED && up != HUB_UP_ALREADY_RECORDED)
		*all_ok = false;
	if (out != NULL) {
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "requestId", id);
		cJSON_AddStringToObject(o, "status", hub_up_name(up));
		if (why != NULL)
			cJSON_AddStringToObject(o, "message", why);
		cJSON_AddItemToArray(out, o);
	}
	return 0;
}

static void
h_upload(struct hub_ctx *x, bool revocation)
{
	static const char *const keys[] = { "results", NULL };
	struct hub_body b;
	struct cc_jnode res, e;
	const cJSON *it;
	size_t n;
	uint32_t i = 0;
	cJSON *out = NULL;
	bool all_ok = true;
	int rc;

	if (hub_body_parse(x->call, &b, x->r) == -1)
		goto out;
	if (cc_jck_object(&b.j, &b.root, keys, 1) == -1)
		goto bad;
	if (!cc_jck_member(&b.root, "results", &res)) {
		cc_jck_fail_missing(&b.j, &b.root, "results");
		goto bad;
	}
	if (cc_jck_array(&b.j, &res, HUB_BATCH_MAX, &n) == -1)
		goto bad;
	if (n == 0) {
		hub_invalid(&b, &res, "needs at least one result");
		goto bad;
	}
	/* A batch names each request once: a duplicate would make its outcome ambiguous. */
	for (it = res.item->child; it != NULL; it = it->next) {
		const cJSON *a = cJSON_GetObjectItemCaseSensitive(it, revocation ? "requestContext" :
		    "requestId");
		for (const cJSON *p = res.item->child; p != it; p = p->next) {
			const cJSON *q = cJSON_GetObjectItemCaseSensitive(p, revocation ?
			    "requestContext" : "requestId");
			if (cJSON_IsString(a) && cJSON_IsString(q) &&
			    strcmp(a->valuestring, q->valuestring) == 0) {
				hub_invalid(&b, &res, "request \"%s\" appears twice", a->valuestring);
				goto bad;
			}
		}
	}
	out = revocation ? NULL : cJSON_CreateArray();
	for (it = res.item->child; it != NULL; it = it->next, i++) {
		cc_jck_element(&res, it, i, &e);
		rc = upload_item(x, &b, &e, revocation, out, &all_ok);
		if (rc == -1)
			goto bad;
		if (rc == -2)
			goto out;
	}
	if (revocation)
		hub_reply_value(x->r, 200, cJSON_CreateBool(all_ok));
	else {
		hub_reply_value(x->r, 200, out);
		out = NULL;
	}
	goto out;
bad:
	hub_body_fail_reply(&b, x->r);
out:
	cJSON_Delete(out);
	hub_body_done(&b);
}

static void
h_extend(struct hub_ctx *x)
{
	static const char *const keys[] = { "requestIds", "leaseSeconds", NULL };
	const struct hub_conf *cf = x->h->conf;
	struct hub_body b;
	struct cc_jnode lp, ids, e;
	const cJSON *it;
	size_t n;
	uint32_t i = 0;
	int64_t lease = cf->lease_default_s;
	cJSON *out = NULL;
	char tb[32];

	if (hub_body_parse(x->call, &b, x->r) == -1)
		goto out;
	if (hub_wrapper(&b, "leaseParameters", keys, &lp) == -1 ||
	    hub_jint(&b, &lp, "leaseSeconds", false, cf->lease_min_s, cf->lease_max_s, &lease,
	    NULL) == -1)
		goto bad;
	if (!cc_jck_member(&lp, "requestIds", &ids)) {
		cc_jck_fail_missing(&b.j, &lp, "requestIds");
		goto bad;
	}
	if (cc_jck_array(&b.j, &ids, HUB_BATCH_MAX, &n) == -1)
		goto bad;
	if (n == 0) {
		hub_invalid(&b, &ids, "needs at least one request id");
		goto bad;
	}
	out = cJSON_CreateArray();
	for (it = ids.item->child; it != NULL; it = it->next, i++) {
		const char *id;
		enum hub_up up = HUB_UP_INVALID;
		enum hub_st st;
		cJSON *o;

		cc_jck_element(&ids, it, i, &e);
		if (cc_jck_str(&b.j, &e, 256, &id) == -1)
			goto bad;
		if (hub_id_ok(id)) {
			st = x->h->store->ops->request_extend(x->h->store, x->conn.tenant,
			    x->conn.features, x->conn.id, id, x->now + lease, x->now, &up);
			if (st != HUB_ST_OK) {
				hub_reply_store(x->r, st);
				goto out;
			}
		}
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "requestId", id);
		cJSON_AddStringToObject(o, "status", hub_up_name(up));
		if (up == HUB_UP_EXTENDED)
			cJSON_AddStringToObject(o, "leaseExpiresUtc", hub_time_str(x->now + lease, tb));
		cJSON_AddItemToArray(out, o);
	}
	hub_reply_value(x->r, 200, out);
	out = NULL;
	goto out;
bad:
	hub_body_fail_reply(&b, x->r);
out:
	cJSON_Delete(out);
	hub_body_done(&b);
}

static void
h_rev_download(struct hub_ctx *x)
{
	static const char *const keys[] = { "maxRequests", "issuerName", NULL };
	struct hub_body b;
	struct cc_jnode dp;
	const char *issuer;
	int64_t max;
	struct lease_out o = { NULL, true };
	enum hub_st st;

	if (hub_body_parse(x->call, &b, x->r) == -1)
		goto out;
	if (hub_wrapper(&b, "downloadParameters", keys, &dp) == -1 ||
	    hub_jint(&b, &dp, "maxRequests", true, 1, HUB_BATCH_MAX, &max, NULL) == -1 ||
	    hub_jstr(&b, &dp, "issuerName", false, 255, false, true, &issuer) == -1) {
		hub_body_fail_reply(&b, x->r);
		goto out;
	}
	o.arr = cJSON_CreateArray();
	st = x->h->store->ops->request_lease(x->h->store, x->conn.tenant, HUB_F_REVOKE, issuer,
	    (uint32_t)max, x->conn.id, x->now + x->h->conf->lease_default_s,
	    x->h->conf->max_attempts, x->now, lease_cb, &o);
	if (st != HUB_ST_OK) {
		hub_reply_store(x->r, st);
		goto out;
	}
	hub_reply_value(x->r, 200, o.arr);
	o.arr = NULL;
out:
	cJSON_Delete(o.arr);
	hub_body_done(&b);
}

/* ---- health ---- */

static int
check_health(struct hub_ctx *x, struct hub_body *b, const struct cc_jnode *hm,
    const char **version)
{
	static const char *const qkeys[] = { "pending", "inFlight", "outbox", "succeeded",
		"failed", NULL };
	static const char *const ekeys[] = { "timeUtc", "eventId", "message", NULL };
	const char *s;
	struct cc_jnode m, e;
	uint32_t features;
	int64_t v, t;
	bool bv;
	size_t n;

	if (hub_jstr(b, hm, "version", true, HUB_VERSION_MAX, false, false, version) == -1 ||
	    hub_jfeatures(b, hm, "features", true, &features, NULL) == -1 ||
	    hub_jint(b, hm, "uptimeSeconds", true, 0, INT64_C(1) << 40, &v, NULL) == -1 ||
	    hub_jstr(b, hm, "tokenState", true, 16, false, false, &s) == -1 ||
	    hub_jbool(b, hm, "caReachable", false, &bv, NULL) == -1 ||
	    hub_jstr(b, hm, "clientCertificateNotAfterUtc", false, 40, false, false, &s) == -1)
		return -1;
	cc_jck_member(hm, "version", &m);
	if (!hub_version_ok(*version))
		return hub_invalid(b, &m, "not a version (N.N.N)");
	hub_jstr(b, hm, "tokenState", true, 16, false, false, &s);
	if (strcmp(s, "ok") != 0 && strcmp(s, "degraded") != 0 && strcmp(s, "unavailable") != 0) {
		cc_jck_member(hm, "tokenState", &m);
		return hub_invalid(b, &m, "must be ok, degraded or unavailable");
	}
	if ((features & ~x->conn.features) != 0) {
		cc_jck_member(hm, "features", &m);
		return hub_invalid(b, &m, "names a feature the connector did not register");
	}
	if (cc_jck_member(hm, "clientCertificateNotAfterUtc", &m) &&
	    hub_time_parse(m.item->valuestring, &t) == -1)
		return hub_invalid(b, &m, "not a UTC time");
	if (cc_jck_member(hm, "queue", &m)) {
		if (cc_jck_object(&b->j, &m, qkeys, 8) == -1)
			return -1;
		for (size_t k = 0; qkeys[k] != NULL; k++)
			if (hub_jint(b, &m, qkeys[k], false, 0, INT64_C(1) << 50, &v, NULL) == -1)
				return -1;
	}
	if (cc_jck_member(hm, "lastErrors", &m)) {
		const cJSON *it;
		uint32_t i = 0;

		if (cc_jck_array(&b->j, &m, 20, &n) == -1)
			return -1;
		for (it = m.item->child; it != NULL; it = it->next, i++) {
			cc_jck_element(&m, it, i, &e);
			if (cc_jck_object(&b->j, &e, ekeys, 4) == -1 ||
			    hub_jstr(b, &e, "timeUtc", true, 40, false, false, &s) == -1 ||
			    hub_jint(b, &e, "eventId", false, 0, 9999, &v, NULL) == -1 ||
			    hub_jstr(b, &e, "message", true, HUB_MSG_MAX, true, false, &s) == -1)
				return -1;
			hub_jstr(b, &e, "timeUtc", true, 40, false, false, &s);
			if (hub_time_parse(s, &t) == -1) {
				struct cc_jnode tn;
				cc_jck_member(&e, "timeUtc", &tn);
				return hub_invalid(b, &tn, "not a UTC time");
			}
		}
	}
	return 0;
}

/*
 * The optional pfxKey member {publicKey, keyName}: the connector's pfx role key, which the
 * PFX import encrypts passwords to. It must be an RSA key the import can use.
 */
static int
check_pfx_key(struct hub_body *b, const struct cc_jnode *hm, const char **spki_b64,
    const char **name)
{
	static const char *const pkeys[] = { "publicKey", "keyName", NULL };
	struct cc_jnode m, k;
	uint8_t *der = NULL;
	size_t len;
	EVP_PKEY *pub;
	char why[128];

	*spki_b64 = *name = NULL;
	if (!cc_jck_member(hm, "pfxKey", &m))
		return 0;
	if (cc_jck_object(&b->j, &m, pkeys, 4) == -1 ||
	    hub_jstr(b, &m, "keyName", true, HUB_KEYNAME_MAX, false, false, name) == -1 ||
	    hub_jb64(b, &m, "publicKey", HUB_SPKI_MAX, &der, &len) == -1)
		return -1;
	pub = hub_pfx_key_parse(der, len, why, sizeof(why));
	free(der);
	if (pub == NULL) {
		cc_jck_member(&m, "publicKey", &k);
		return hub_invalid(b, &k, "%s", why);
	}
	EVP_PKEY_free(pub);
	hub_jstr(b, &m, "publicKey", true, HUB_SPKI_MAX * 2, false, false, spki_b64);
	return 0;
}

static void
h_health(struct hub_ctx *x)
{
	static const char *const keys[] = { "version", "features", "uptimeSeconds", "tokenState",
		"caReachable", "queue", "lastErrors", "clientCertificateNotAfterUtc", "pfxKey", NULL };
	struct hub_body b;
	struct cc_jnode hm;
	const char *version, *pk_b64 = NULL, *pk_name = NULL;
	char *text = NULL;
	struct hub_catalogue cat;
	bool mixed = false;
	cJSON *v;
	enum hub_st st;
	enum hub_life life;

	memset(&cat, 0, sizeof(cat));
	if (hub_body_parse(x->call, &b, x->r) == -1)
		goto out;
	if (hub_wrapper(&b, "healthMessage", keys, &hm) == -1 ||
	    check_health(x, &b, &hm, &version) == -1 ||
	    check_pfx_key(&b, &hm, &pk_b64, &pk_name) == -1) {
		hub_body_fail_reply(&b, x->r);
		goto out;
	}
		text = cJSON_PrintUnformatted(hm.item);
	if (text == NULL) {
		hub_reply_error(x->r, 500, "InternalError", "out of memory");
		goto out;
	}
	st = x->h->store->ops->connector_health(x->h->store, x->conn.id, version, text, x->now);
	if (st == HUB_ST_OK && pk_b64 != NULL)
		st = x->h->store->ops->connector_pfx_key(x->h->store, x->conn.id, pk_b64, pk_name,
		    x->now);
	if (st == HUB_ST_OK)
		st = hub_tenant_mixed(x->h, x->conn.tenant, &mixed);
	if (st == HUB_ST_OK)
		st = hub_catalogue_load(x->h, &cat);
	if (st != HUB_ST_OK) {
		hub_reply_store(x->r, st);
		goto out;
	}
	v = cJSON_CreateObject();
	cJSON_AddBoolToObject(v, "accepted", 1);
	cJSON_AddNumberToObject(v, "nextHealthSeconds", x->h->conf->health_interval_s);
	cJSON_AddItemToObject(v, "lifecycle", hub_lifecycle_json(x->h, &cat, version, mixed,
	    x->now, &life));
	if (life == HUB_LIFE_WARNING || life == HUB_LIFE_ERROR || life == HUB_LIFE_BLOCKED)
		cc_log_warn("connector %s runs version %s: lifecycle %s", x->conn.id, version,
		    hub_life_name(life));
	hub_reply_value(x->r, 200, v);
out:
	free(text);
	hub_catalogue_free(&cat);
	hub_body_done(&b);
}

/* ---- dispatch ---- */

enum ep_auth { EP_TOKEN, EP_CERT, EP_CERT_CURRENT };

struct endpoint {
	const char *path;
	const char *api_version;
	enum ep_auth auth;
	uint32_t feature;            /* needed by the endpoint; 0: none */
	bool version_gate;
	void (*fn)(struct hub_ctx *);
};

static void h_upload_own(struct hub_ctx *x) { h_upload(x, false); }
static void h_upload_rev(struct hub_ctx *x) { h_upload(x, true); }

static const struct endpoint endpoints[] = {
	{ "Registration/register", API_VERSION_OWN, EP_TOKEN, 0, false, h_register },
	{ "Registration/renewCertificate", API_VERSION_OWN, EP_CERT_CURRENT, 0, true, h_renew },
	{ "ConnectorRequests/downloadRequests", API_VERSION_OWN, EP_CERT, 0, true, h_download },
	{ "ConnectorRequests/uploadResults", API_VERSION_OWN, EP_CERT, 0, true, h_upload_own },
	{ "ConnectorRequests/extendLeases", API_VERSION_OWN, EP_CERT, 0, true, h_extend },
	{ "CertificateAuthorityRequests/downloadRevocationRequests", API_VERSION_REVOKE, EP_CERT,
	  HUB_F_REVOKE, true, h_rev_download },
	{ "CertificateAuthorityRequests/uploadRevocationResults", API_VERSION_REVOKE, EP_CERT,
	  HUB_F_REVOKE, true, h_upload_rev },
	{ "ScepActions/validateRequest", API_VERSION_SCEP, EP_CERT, HUB_F_SCEP, true,
	  hub_scep_validate },
	{ "ScepActions/successNotification", API_VERSION_SCEP, EP_CERT, HUB_F_SCEP, true,
	  hub_scep_success },
	{ "ScepActions/failureNotification", API_VERSION_SCEP, EP_CERT, HUB_F_SCEP, true,
	  hub_scep_failure },
	{ "ConnectorHealth/uploadHealthMessage", API_VERSION_OWN, EP_CERT, 0, false, h_health },
};

static int
check_headers(struct hub_ctx *x, const char *accepted)
{
	const struct hub_call *c = x->call;

	if (c->client_request_id == NULL) {
		hub_reply_error(x->r, 400, "MissingClientRequestId", "the client-request-id header "
		    "is required");
		return -1;
	}
	if (!hub_id_ok(c->client_request_id)) {
		hub_reply_error(x->r, 400, "InvalidClientRequestId", "client-request-id must be 1-%d "
		    "characters of A-Z a-z 0-9 . _ : -", HUB_ID_MAX);
		return -1;
	}
	if (c->api_version == NULL) {
		hub_reply_error(x->r, 400, "MissingApiVersion", "the api-version header is required "
		    "(%s)", accepted);
		return -1;
	}
	if (strcmp(c->api_version, accepted) != 0) {
		hub_reply_error(x->r, 400, "UnsupportedApiVersion", "api-version %.64s is not "
		    "supported here (accepted: %s)", c->api_version, accepted);
		return -1;
	}
	return 0;
}

static int
check_json_post(struct hub_ctx *x)
{
	const char *ct = x->call->content_type;
	size_t n = strlen("application/json");

	if (ct == NULL || strncasecmp(ct, "application/json", n) != 0 ||
	    (ct[n] != '\0' && ct[n] != ';' && ct[n] != ' ')) {
		hub_reply_error(x->r, 415, "UnsupportedMediaType", "the body must be "
		    "application/json");
		return -1;
	}
	return 0;
}

static void
dispatch_api(struct hub_ctx *x, const char *path)
{
	const struct endpoint *ep = NULL;

	for (size_t i = 0; i < sizeof(endpoints) / sizeof(endpoints[0]); i++)
		if (strcmp(path, endpoints[i].path) == 0)
			ep = &endpoints[i];
	if (ep == NULL) {
		hub_reply_error(x->r, 404, "NotFound", "no such endpoint");
		return;
	}
	if (x->call->method != HUB_M_POST) {
		hub_reply_error(x->r, 405, "MethodNotAllowed", "connector endpoints take POST");
		return;
	}
	if (check_headers(x, ep->api_version) == -1)
		return;
	if (ep->auth != EP_TOKEN && auth_connector(x, ep->auth == EP_CERT_CURRENT) == -1)
		return;
	if (ep->auth == EP_TOKEN && bearer_is_admin(x->h, x->call->authorization)) {
		hub_reply_error(x->r, 403, "WrongCredential", "the admin credential cannot "
		    "register a connector");
		return;
	}
	if (ep->feature != 0 && need_feature(x, ep->feature) == -1)
		return;
	if (ep->version_gate && version_gate(x) == -1)
		return;
	if (check_json_post(x) == -1)
		return;
	ep->fn(x);
}

static void
dispatch_admin(struct hub_ctx *x, const char *path)
{
	if (check_headers(x, API_VERSION_OWN) == -1)
		return;
	if (!bearer_is_admin(x->h, x->call->authorization)) {
		hub_reply_error(x->r, 401, "Unauthenticated", "admin calls need the admin token");
		return;
	}
	if (x->call->peer.present) {
		hub_reply_error(x->r, 403, "WrongCredential", "a connector certificate cannot make "
		    "admin calls");
		return;
	}
	if (x->call->method == HUB_M_POST && check_json_post(x) == -1)
		return;
	hub_admin_dispatch(x, path);
}

void
hub_handle(struct hub *h, const struct hub_call *call, struct hub_reply *r)
{
	struct hub_ctx x;

	memset(r, 0, sizeof(*r));
	r->status = 500;
	if (call->client_request_id != NULL && hub_id_ok(call->client_request_id))
		snprintf(r->client_request_id, sizeof(r->client_request_id), "%s",
		    call->client_request_id);
	memset(&x, 0, sizeof(x));
	x.h = h;
	x.call = call;
	x.r = r;
	x.now = hub_now(h);
	if (call->path != NULL && strncmp(call->path, "/api/", 5) == 0)
		dispatch_api(&x, call->path + 5);
	else if (call->path != NULL && strncmp(call->path, "/admin/", 7) == 0)
		dispatch_admin(&x, call->path + 7);
	else
		hub_reply_error(r, 404, "NotFound", "no such endpoint");
	if (x.has_conn)
		hub_connector_clear(&x.conn);
	if (r->body == NULL && r->status >= 400)
		hub_reply_error(r, r->status, "InternalError", "no answer");
}
