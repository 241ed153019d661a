/*
 * The hub's state behind one interface, so that a PostgreSQL backend (several hub nodes on one
 * database) can implement it later; store_sqlite.c is the SQLite one (WAL, schema migrations).
 *
 * Every operation is atomic on its own: an implementation runs each in one transaction, and
 * the multi-step ones (registration, leasing, result upload, challenge use) decide inside it,
 * so two hub nodes cannot both lease a request or both consume a token.
 *
 * Times are unix seconds. Strings in the structs are NUL-terminated; large text members
 * (payloads, results, health messages) are malloc'd and freed by the struct's *_clear.
 * Row callbacks get structs valid only during the call; a callback returning -1 stops the
 * walk (the operation then returns HUB_ST_ERROR... unless it says otherwise).
 *
 * Return values: enum hub_st. HUB_ST_ERROR means the store failed (logged); HUB_ST_BUSY that
 * it is locked by another writer beyond the busy timeout (the caller answers 503).
 */
#ifndef CERTCONN_HUB_STORE_H
#define CERTCONN_HUB_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hub.h"

enum hub_st {
	HUB_ST_OK = 0,
	HUB_ST_ERROR,
	HUB_ST_BUSY,
	HUB_ST_NOT_FOUND,
	HUB_ST_EXISTS,          /* put: the same object exists already (idempotent) */
	HUB_ST_CONFLICT,        /* put: an object with that key exists with other content */
	HUB_ST_TOKEN_INVALID,   /* registration: unknown, used or expired enrollment token */
	HUB_ST_FEATURE,         /* registration: a feature the token does not allow */
	HUB_ST_LIMIT,           /* registration: the tenant has its maximum of connectors */
	HUB_ST_NO_TENANT,       /* the tenant does not exist */
};

const char *hub_st_name(enum hub_st st);

/* ---- rows ---- */

struct hub_tenant {
	char id[HUB_ID_MAX + 1];
	char display[HUB_NAME_MAX * 2 + 1];
	int64_t created;
	uint32_t connectors;        /* list only */
};

struct hub_connector {
	char id[HUB_ID_MAX + 1];
	char tenant[HUB_ID_MAX + 1];
	char name[HUB_NAME_MAX + 1];
	char version[HUB_VERSION_MAX + 1];
	uint32_t features;          /* HUB_F_* */
	char serial[80];            /* current certificate */
	int64_t not_after;
	char prev_serial[80];       /* the one the last renewal replaced, "" if none */
	int64_t prev_not_after;
	int64_t registered;
	int64_t last_seen;          /* any authenticated call */
	int64_t last_health;        /* 0: never */
	bool disabled;
	char *health;               /* latest health message (JSON) or NULL */
	char *pfx_key;              /* base64 DER SubjectPublicKeyInfo of its pfx role, or NULL */
	char pfx_key_name[HUB_KEYNAME_MAX + 1];
	int64_t pfx_key_updated;    /* when the hub learnt that key; 0: none */
};
void hub_connector_clear(struct hub_connector *c);

enum hub_req_state { HUB_RS_QUEUED = 0, HUB_RS_LEASED, HUB_RS_COMPLETED, HUB_RS_FAILED };
const char *hub_req_state_name(int s);
int hub_req_state_parse(const char *s);   /* -1 when unknown */

struct hub_request {
	char id[HUB_ID_MAX + 1];
	char tenant[HUB_ID_MAX + 1];
	uint32_t feature;           /* one HUB_F_* bit */
	int state;                  /* enum hub_req_state */
	char *payload;              /* JSON object text */
	char tag[256];              /* revoke: issuerName ("" if none), for the issuer filter */
	int64_t created;
	uint32_t attempt;           /* leases so far */
	char lease_owner[HUB_ID_MAX + 1];
	int64_t lease_until;
	int64_t completed;
	char completed_by[HUB_ID_MAX + 1];
	bool succeeded;
	int32_t error_code;
	char *error_message;        /* NULL if none */
	char *result;               /* JSON object text or NULL */
	char target[HUB_ID_MAX + 1];/* only this connector may lease it; "" any of the tenant */
};
void hub_request_clear(struct hub_request *r);

/* Outcome of one result upload or lease extension (docs/protocol.md section 6). */
enum hub_up {
	HUB_UP_RECORDED = 0,
	HUB_UP_REQUEUED,
	HUB_UP_ALREADY_RECORDED,
	HUB_UP_ALREADY_COMPLETED,
	HUB_UP_LEASE_LOST,
	HUB_UP_NOT_LEASED,
	HUB_UP_NOT_FOUND,
	HUB_UP_FEATURE,
	HUB_UP_EXTENDED,
	HUB_UP_INVALID,
};
const char *hub_up_name(enum hub_up u);

struct hub_result_in {
	const char *request_id;
	bool succeeded;
	int32_t error_code;
	const char *error_message;  /* may be NULL */
	const char *result;         /* JSON text or NULL */
	bool retryable;             /* a retryable failure: requeue */
};

struct hub_challenge {
	char tenant[HUB_ID_MAX + 1];
	char subject[1024];         /* "" when the challenge names none */
	char *sans;                 /* JSON array of "DNS:x" strings, or NULL */
	uint32_t min_key_bits;      /* 0: any */
	int64_t expires;
	char txid[HUB_TXID_MAX + 1];/* the transaction it was used by, "" if unused */
};
void hub_challenge_clear(struct hub_challenge *c);

enum hub_tx_state { HUB_TX_VALIDATED = 0, HUB_TX_SUCCEEDED, HUB_TX_FAILED };
const char *hub_tx_state_name(int s);

struct hub_scep_tx {
	char tenant[HUB_ID_MAX + 1];
	char txid[HUB_TXID_MAX + 1];
	char connector[HUB_ID_MAX + 1];
	char csr_hash[65];          /* SHA-256 hex of the CSR DER; "" when never validated */
	int state;                  /* enum hub_tx_state */
	bool validated;
	int64_t validated_at;
	char thumbprint[129];
	char serial[129];
	char expires[64];
	char issuer[512];
	char ca_config[256];
	char ca[256];
	int64_t hresult;
	char error_description[HUB_SCEP_DESC_MAX + 1];
	int64_t updated;
};

struct hub_version_row {
	char version[HUB_VERSION_MAX + 1];
	int64_t released;
};

struct hub_request_filter {
	const char *tenant;         /* NULL: all */
	uint32_t feature;           /* 0: all */
	int state;                  /* -1: all */
	uint32_t limit;             /* 1..1000 */
};

typedef int (*hub_tenant_cb)(void *arg, const struct hub_tenant *t);
typedef int (*hub_connector_cb)(void *arg, const struct hub_connector *c);
typedef int (*hub_request_cb)(void *arg, const struct hub_request *r);
typedef int (*hub_tx_cb)(void *arg, const struct hub_scep_tx *t);
typedef int (*hub_version_cb)(void *arg, const struct hub_version_row *v);

struct hub_store_ops {
	void (*close)(struct hub_store *s);

	/* tenants */
	enum hub_st (*tenant_put)(struct hub_store *s, const char *id, const char *display,
	    int64_t now);                              /* OK, EXISTS, CONFLICT */
	enum hub_st (*tenant_list)(struct hub_store *s, hub_tenant_cb cb, void *arg);

	/* enrollment tokens (by SHA-256 hex); features 0: all */
	enum hub_st (*token_put)(struct hub_store *s, const char *hash, const char *tenant,
	    uint32_t features, int64_t expires, int64_t now);   /* OK, NO_TENANT */
	/* The tenant of a usable (known, unused, unexpired) token: OK or TOKEN_INVALID. */
	enum hub_st (*token_tenant)(struct hub_store *s, const char *hash, int64_t now,
	    char tenant[HUB_ID_MAX + 1]);
	/*
	 * Registration: consumes the token and creates connector c (id, name, version,
	 * features, certificate serial and not_after filled in; tenant comes from the token and
	 * is written to c->tenant) in one transaction. TOKEN_INVALID, FEATURE, LIMIT or OK.
	 * *token_tenant gets the token's tenant also on FEATURE and LIMIT.
	 */
	enum hub_st (*connector_register)(struct hub_store *s, const char *token_hash,
	    struct hub_connector *c, uint32_t max_per_tenant, int64_t now);
	enum hub_st (*connector_get)(struct hub_store *s, const char *id, struct hub_connector *c);
	enum hub_st (*connector_list)(struct hub_store *s, const char *tenant,
	    hub_connector_cb cb, void *arg);
	/* Renewal: the current certificate becomes the previous one. */
	enum hub_st (*connector_set_cert)(struct hub_store *s, const char *id, const char *serial,
	    int64_t not_after);
	/* A health message: version, features served, the message, the time. */
	enum hub_st (*connector_health)(struct hub_store *s, const char *id, const char *version,
	    const char *health, int64_t now);
	/* The connector's pfx role public key (docs/protocol.md section 9), kept until it
	 * changes. OK also when nothing changed. */
	enum hub_st (*connector_pfx_key)(struct hub_store *s, const char *id,
	    const char *spki_b64, const char *key_name, int64_t now);
	enum hub_st (*connector_seen)(struct hub_store *s, const char *id, int64_t now);
	enum hub_st (*connector_disable)(struct hub_store *s, const char *id);

	/* requests */
	enum hub_st (*request_put)(struct hub_store *s, const struct hub_request *r); /* OK, EXISTS, CONFLICT, NO_TENANT */
	/*
	 * Leases up to max requests of tenant and feature (oldest first) that are queued or whose
	 * lease expired, to owner until lease_until; tag: only those with this tag (NULL: any);
	 * a request with a target is leased only by that connector.
	 * A request whose expired lease used up max_attempts is failed (error 4100) instead.
	 * cb gets each leased request (attempt and lease already updated).
	 */
	enum hub_st (*request_lease)(struct hub_store *s, const char *tenant, uint32_t feature,
	    const char *tag, uint32_t max, const char *owner, int64_t lease_until,
	    uint32_t max_attempts, int64_t now, hub_request_cb cb, void *arg);
	/* One result from owner (of tenant, with features): *out the outcome. */
	enum hub_st (*request_complete)(struct hub_store *s, const char *tenant, uint32_t features,
	    const char *owner, const struct hub_result_in *in, uint32_t max_attempts, int64_t now,
	    enum hub_up *out);
	enum hub_st (*request_extend)(struct hub_store *s, const char *tenant, uint32_t features,
	    const char *owner, const char *id, int64_t lease_until, int64_t now, enum hub_up *out);
	enum hub_st (*request_get)(struct hub_store *s, const char *tenant, const char *id,
	    struct hub_request *r);              /* tenant NULL: any */
	enum hub_st (*request_list)(struct hub_store *s, const struct hub_request_filter *f,
	    hub_request_cb cb, void *arg);

	/* SCEP challenges (by SHA-256 hex) and transactions */
	enum hub_st (*challenge_put)(struct hub_store *s, const char *hash,
	    const struct hub_challenge *c, int64_t now);          /* OK, NO_TENANT */
	enum hub_st (*challenge_get)(struct hub_store *s, const char *hash, const char *tenant,
	    struct hub_challenge *c);
	/* Binds an unbound challenge to txid (OK), or OK if it is bound to txid already;
	 * CONFLICT when bound to another transaction. */
	enum hub_st (*challenge_bind)(struct hub_store *s, const char *hash, const char *tenant,
	    const char *txid);
	enum hub_st (*tx_get)(struct hub_store *s, const char *tenant, const char *txid,
	    struct hub_scep_tx *t);
	enum hub_st (*tx_put)(struct hub_store *s, const struct hub_scep_tx *t); /* upsert */
	enum hub_st (*tx_list)(struct hub_store *s, const char *tenant, hub_tx_cb cb, void *arg);

	/* version catalogue */
	enum hub_st (*version_put)(struct hub_store *s, const char *version, int64_t released);
	enum hub_st (*version_list)(struct hub_store *s, hub_version_cb cb, void *arg);
};

struct hub_store {
	const struct hub_store_ops *ops;
};

/*
 * Opens (creating if needed) the SQLite database at path (":memory:" for tests and the
 * fuzzer), sets WAL, and applies the schema migrations it lacks. NULL on failure (logged).
 */
struct hub_store *hub_store_sqlite_open(const char *path);
/* The schema version the SQLite store migrates to. */
int hub_store_sqlite_schema_version(void);

#endif
