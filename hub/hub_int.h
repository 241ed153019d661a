/* Internal to the protocol handlers (hub_api.c, hub_scep.c, hub_admin.c). */
#ifndef CERTCONN_HUB_INT_H
#define CERTCONN_HUB_INT_H

#include <stdarg.h>

#include "hub.h"
#include "jsonck.h"
#include "store.h"

/* ---- replies ---- */

/* Sets the reply to status with body (takes it; NULL: no body). */
void hub_reply_json(struct hub_reply *r, int status, cJSON *body);
/* {"error": {"code", "message", "clientRequestId"}} */
void hub_reply_error(struct hub_reply *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* 503 ServiceUnavailable for HUB_ST_BUSY, else 500 InternalError. */
void hub_reply_store(struct hub_reply *r, enum hub_st st);
/* {"value": v} with status. */
void hub_reply_value(struct hub_reply *r, int status, cJSON *v);

/* ---- request bodies ---- */

enum hub_bad { HUB_BAD_MALFORMED = 0, HUB_BAD_INVALID };

struct hub_body {
	struct cc_jck j;
	struct cc_jnode root;
	char *text;                 /* NUL-terminated copy of the body */
	char err[512];
	enum hub_bad kind;          /* what a failure is answered as */
};

/* Parses the call's body; on -1 the reply is set (400 MalformedRequest). Always call
 * hub_body_done. */
int hub_body_parse(const struct hub_call *c, struct hub_body *b, struct hub_reply *r);
void hub_body_done(struct hub_body *b);
/* Answers the body's recorded failure: 400 MalformedRequest or InvalidParameter. */
void hub_body_fail_reply(struct hub_body *b, struct hub_reply *r);
/* Records a range/format problem of node n (answered as InvalidParameter). Returns -1. */
int hub_invalid(struct hub_body *b, const struct cc_jnode *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The single member key of the top-level object ("registration", "request", ...), which must
 * be an object with only the allowed members. */
int hub_wrapper(struct hub_body *b, const char *key, const char *const *allowed,
    struct cc_jnode *out);
/* A string member: required or optional (*out NULL when absent), at most max bytes, no
 * control characters; empty allowed only when allow_empty. null counts as absent when
 * null_ok. */
int hub_jstr(struct hub_body *b, const struct cc_jnode *obj, const char *key, bool required,
    size_t max, bool allow_empty, bool null_ok, const char **out);
/* An integer member in min..max; *present 0 when absent and not required. */
int hub_jint(struct hub_body *b, const struct cc_jnode *obj, const char *key, bool required,
    int64_t min, int64_t max, int64_t *out, bool *present);
int hub_jbool(struct hub_body *b, const struct cc_jnode *obj, const char *key, bool required,
    bool *out, bool *present);
/* A features array: distinct known names, 1..5; *mask the bits. */
int hub_jfeatures(struct hub_body *b, const struct cc_jnode *obj, const char *key,
    bool required, uint32_t *mask, bool *present);
/* A JSON object member kept as compact text (malloc'd), at most max bytes. */
int hub_jobject_text(struct hub_body *b, const struct cc_jnode *obj, const char *key,
    bool required, size_t max, char **out);
/* A base64 member decoded (at most max bytes). */
int hub_jb64(struct hub_body *b, const struct cc_jnode *obj, const char *key, size_t max,
    uint8_t **out, size_t *len);

/* ---- the caller ---- */

struct hub_ctx {
	struct hub *h;
	const struct hub_call *call;
	struct hub_reply *r;
	int64_t now;
	struct hub_connector conn;     /* the authenticated connector (connector endpoints) */
	bool has_conn;
};

/* ---- handlers ---- */

void hub_scep_validate(struct hub_ctx *x);
void hub_scep_success(struct hub_ctx *x);
void hub_scep_failure(struct hub_ctx *x);

/* Admin: path is below /admin/ (e.g. "tenants", "requests/ID"). */
void hub_admin_dispatch(struct hub_ctx *x, const char *path);

/* The admin view of a request (docs/protocol.md section 12). */
cJSON *hub_admin_request_json(const struct hub_request *r, bool with_payload);
/* Queues r (id, tenant, feature, payload, tag, target set) and answers 201 with it, 200
 * when the same request exists, 404 without the tenant, 409 when it exists otherwise. */
void hub_admin_queue(struct hub_ctx *x, struct hub_request *r);
/* POST admin/pfxImports (hub_admin_pfx.c). */
void hub_admin_pfx_import(struct hub_ctx *x);

/* ---- lifecycle helpers shared by health and admin ---- */

struct hub_catalogue {
	struct hub_version_entry *v;
	char (*names)[HUB_VERSION_MAX + 1];
	size_t n;
};
enum hub_st hub_catalogue_load(struct hub *h, struct hub_catalogue *c);
void hub_catalogue_free(struct hub_catalogue *c);
/* {"status", "latestVersion", "supportEndsUtc", "blockAfterUtc", "mixedVersions"} */
cJSON *hub_lifecycle_json(struct hub *h, const struct hub_catalogue *c, const char *version,
    bool mixed, int64_t now, enum hub_life *status);
/* Whether the tenant's enabled connectors report more than one version. */
enum hub_st hub_tenant_mixed(struct hub *h, const char *tenant, bool *mixed);
/* "healthy", "unhealthy" or "unknown" at now. */
const char *hub_health_state(const struct hub *h, const struct hub_connector *c, int64_t now);

#endif
