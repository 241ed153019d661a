/*
 * The hub's store in SQLite: one database file, WAL journal, a busy timeout, foreign keys,
 * and schema migrations by PRAGMA user_version. Each operation runs in one transaction
 * (BEGIN IMMEDIATE when it writes, so the read that decides and the write that follows cannot
 * interleave with another writer's).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "certconn/log.h"
#include "store.h"

#define SQ_BUSY_MS 5000

struct sq {
	struct hub_store base;
	sqlite3 *db;
};

/* ---- schema ---- */

static const char *const migrations[] = {
	/* 1: everything */
	"CREATE TABLE tenants(id TEXT PRIMARY KEY, display TEXT NOT NULL, created INTEGER NOT NULL);"
	"CREATE TABLE enrollment_tokens(hash TEXT PRIMARY KEY,"
	"  tenant TEXT NOT NULL REFERENCES tenants(id), features INTEGER NOT NULL,"
	"  expires INTEGER NOT NULL, created INTEGER NOT NULL, used INTEGER NOT NULL DEFAULT 0,"
	"  connector TEXT NOT NULL DEFAULT '');"
	"CREATE TABLE connectors(id TEXT PRIMARY KEY, tenant TEXT NOT NULL REFERENCES tenants(id),"
	"  name TEXT NOT NULL, version TEXT NOT NULL, features INTEGER NOT NULL,"
	"  serial TEXT NOT NULL, not_after INTEGER NOT NULL, prev_serial TEXT NOT NULL DEFAULT '',"
	"  prev_not_after INTEGER NOT NULL DEFAULT 0, registered INTEGER NOT NULL,"
	"  last_seen INTEGER NOT NULL DEFAULT 0, last_health INTEGER NOT NULL DEFAULT 0,"
	"  disabled INTEGER NOT NULL DEFAULT 0, health TEXT);"
	"CREATE INDEX connectors_tenant ON connectors(tenant);"
	"CREATE TABLE requests(seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,"
	"  tenant TEXT NOT NULL REFERENCES tenants(id), feature INTEGER NOT NULL,"
	"  state INTEGER NOT NULL, payload TEXT NOT NULL, tag TEXT NOT NULL DEFAULT '',"
	"  created INTEGER NOT NULL, attempt INTEGER NOT NULL DEFAULT 0,"
	"  lease_owner TEXT NOT NULL DEFAULT '', lease_until INTEGER NOT NULL DEFAULT 0,"
	"  completed INTEGER NOT NULL DEFAULT 0, completed_by TEXT NOT NULL DEFAULT '',"
	"  succeeded INTEGER NOT NULL DEFAULT 0, error_code INTEGER NOT NULL DEFAULT 0,"
	"  error_message TEXT, result TEXT);"
	"CREATE INDEX requests_queue ON requests(tenant, feature, state, seq);"
	"CREATE TABLE request_leases(request TEXT NOT NULL, connector TEXT NOT NULL,"
	"  first_leased INTEGER NOT NULL, PRIMARY KEY(request, connector));"
	"CREATE TABLE scep_challenges(hash TEXT PRIMARY KEY,"
	"  tenant TEXT NOT NULL REFERENCES tenants(id), subject TEXT NOT NULL, sans TEXT,"
	"  min_key_bits INTEGER NOT NULL, expires INTEGER NOT NULL, created INTEGER NOT NULL,"
	"  txid TEXT NOT NULL DEFAULT '');"
	"CREATE TABLE scep_transactions(tenant TEXT NOT NULL, txid TEXT NOT NULL,"
	"  connector TEXT NOT NULL, csr_hash TEXT NOT NULL, state INTEGER NOT NULL,"
	"  validated INTEGER NOT NULL, validated_at INTEGER NOT NULL, thumbprint TEXT NOT NULL,"
	"  serial TEXT NOT NULL, expires TEXT NOT NULL, issuer TEXT NOT NULL,"
	"  ca_config TEXT NOT NULL, ca TEXT NOT NULL, hresult INTEGER NOT NULL,"
	"  error_description TEXT NOT NULL, updated INTEGER NOT NULL, PRIMARY KEY(tenant, txid));"
	"CREATE TABLE versions(version TEXT PRIMARY KEY, released INTEGER NOT NULL);",
	/* 2: the connectors' pfx keys (PFX import), requests for one connector */
	"ALTER TABLE connectors ADD COLUMN pfx_key TEXT;"
	"ALTER TABLE connectors ADD COLUMN pfx_key_name TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE connectors ADD COLUMN pfx_key_updated INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE requests ADD COLUMN target TEXT NOT NULL DEFAULT '';",
};
#define NMIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

int
hub_store_sqlite_schema_version(void)
{
	return NMIGRATIONS;
}

/* ---- small helpers ---- */

static enum hub_st
sq_err(struct sq *s, int rc, const char *what)
{
	if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
		cc_log_warn("store: %s: database busy", what);
		return HUB_ST_BUSY;
	}
	cc_log_err("store: %s: %s", what, sqlite3_errmsg(s->db));
	return HUB_ST_ERROR;
}

static int
sq_exec(struct sq *s, const char *sql)
{
	return sqlite3_exec(s->db, sql, NULL, NULL, NULL);
}

/* Prepares sql and binds the arguments described by fmt: 't' text (NULL binds NULL),
 * 'i' int64, 'u' uint32. */
static int
sq_prep(struct sq *s, sqlite3_stmt **st, const char *sql, const char *fmt, ...)
{
	va_list ap;
	int rc, i = 1;

	rc = sqlite3_prepare_v2(s->db, sql, -1, st, NULL);
	if (rc != SQLITE_OK)
		return rc;
	va_start(ap, fmt);
	for (const char *f = fmt; *f != '\0' && rc == SQLITE_OK; f++, i++) {
		switch (*f) {
		case 't': {
			const char *v = va_arg(ap, const char *);
			rc = v == NULL ? sqlite3_bind_null(*st, i) :
			    sqlite3_bind_text(*st, i, v, -1, SQLITE_TRANSIENT);
			break;
		}
		case 'i':
			rc = sqlite3_bind_int64(*st, i, va_arg(ap, int64_t));
			break;
		case 'u':
			rc = sqlite3_bind_int64(*st, i, (int64_t)va_arg(ap, uint32_t));
			break;
		default:
			rc = SQLITE_MISUSE;
		}
	}
	va_end(ap);
	if (rc != SQLITE_OK) {
		sqlite3_finalize(*st);
		*st = NULL;
	}
	return rc;
}

/* Runs a statement that returns no rows. */
static int
sq_run(struct sq *s, const char *sql, const char *fmt, ...)
{
	sqlite3_stmt *st;
	va_list ap;
	int rc, i = 1;

	rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc;
	va_start(ap, fmt);
	for (const char *f = fmt; *f != '\0' && rc == SQLITE_OK; f++, i++) {
		switch (*f) {
		case 't': {
			const char *v = va_arg(ap, const char *);
			rc = v == NULL ? sqlite3_bind_null(st, i) :
			    sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
			break;
		}
		case 'i':
			rc = sqlite3_bind_int64(st, i, va_arg(ap, int64_t));
			break;
		case 'u':
			rc = sqlite3_bind_int64(st, i, (int64_t)va_arg(ap, uint32_t));
			break;
		default:
			rc = SQLITE_MISUSE;
		}
	}
	va_end(ap);
	if (rc == SQLITE_OK) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_DONE || rc == SQLITE_ROW)
			rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return rc;
}

static void
col_str(sqlite3_stmt *st, int i, char *buf, size_t len)
{
	const unsigned char *v = sqlite3_column_text(st, i);

	snprintf(buf, len, "%s", v != NULL ? (const char *)v : "");
}

/* malloc'd copy of a text column, NULL for SQL NULL (or no memory: callers treat a missing
 * optional text as absent). */
static char *
col_dup(sqlite3_stmt *st, int i)
{
	const unsigned char *v = sqlite3_column_text(st, i);

	return v != NULL ? strdup((const char *)v) : NULL;
}

static int
sq_begin(struct sq *s, int write)
{
	return sq_exec(s, write ? "BEGIN IMMEDIATE" : "BEGIN");
}

static int
sq_commit(struct sq *s)
{
	return sq_exec(s, "COMMIT");
}

static void
sq_rollback(struct sq *s)
{
	if (!sqlite3_get_autocommit(s->db))
		(void)sq_exec(s, "ROLLBACK");
}

/* ---- rows ---- */

void
hub_connector_clear(struct hub_connector *c)
{
	free(c->health);
	free(c->pfx_key);
	c->health = NULL;
	c->pfx_key = NULL;
}

void
hub_request_clear(struct hub_request *r)
{
	free(r->payload);
	free(r->error_message);
	free(r->result);
	r->payload = r->error_message = r->result = NULL;
}

void
hub_challenge_clear(struct hub_challenge *c)
{
	free(c->sans);
	c->sans = NULL;
}

#define CONN_COLS "id, tenant, name, version, features, serial, not_after, prev_serial, " \
	"prev_not_after, registered, last_seen, last_health, disabled, health, pfx_key, " \
	"pfx_key_name, pfx_key_updated"

static void
row_connector(sqlite3_stmt *st, struct hub_connector *c)
{
	memset(c, 0, sizeof(*c));
	col_str(st, 0, c->id, sizeof(c->id));
	col_str(st, 1, c->tenant, sizeof(c->tenant));
	col_str(st, 2, c->name, sizeof(c->name));
	col_str(st, 3, c->version, sizeof(c->version));
	c->features = (uint32_t)sqlite3_column_int64(st, 4);
	col_str(st, 5, c->serial, sizeof(c->serial));
	c->not_after = sqlite3_column_int64(st, 6);
	col_str(st, 7, c->prev_serial, sizeof(c->prev_serial));
	c->prev_not_after = sqlite3_column_int64(st, 8);
	c->registered = sqlite3_column_int64(st, 9);
	c->last_seen = sqlite3_column_int64(st, 10);
	c->last_health = sqlite3_column_int64(st, 11);
	c->disabled = sqlite3_column_int64(st, 12) != 0;
	c->health = col_dup(st, 13);
	c->pfx_key = col_dup(st, 14);
	col_str(st, 15, c->pfx_key_name, sizeof(c->pfx_key_name));
	c->pfx_key_updated = sqlite3_column_int64(st, 16);
}

#define REQ_COLS "id, tenant, feature, state, payload, tag, created, attempt, lease_owner, " \
	"lease_until, completed, completed_by, succeeded, error_code, error_message, result, target"

static void
row_request(sqlite3_stmt *st, struct hub_request *r)
{
	memset(r, 0, sizeof(*r));
	col_str(st, 0, r->id, sizeof(r->id));
	col_str(st, 1, r->tenant, sizeof(r->tenant));
	r->feature = (uint32_t)sqlite3_column_int64(st, 2);
	r->state = sqlite3_column_int(st, 3);
	r->payload = col_dup(st, 4);
	col_str(st, 5, r->tag, sizeof(r->tag));
	r->created = sqlite3_column_int64(st, 6);
	r->attempt = (uint32_t)sqlite3_column_int64(st, 7);
	col_str(st, 8, r->lease_owner, sizeof(r->lease_owner));
	r->lease_until = sqlite3_column_int64(st, 9);
	r->completed = sqlite3_column_int64(st, 10);
	col_str(st, 11, r->completed_by, sizeof(r->completed_by));
	r->succeeded = sqlite3_column_int64(st, 12) != 0;
	r->error_code = (int32_t)sqlite3_column_int64(st, 13);
	r->error_message = col_dup(st, 14);
	r->result = col_dup(st, 15);
	col_str(st, 16, r->target, sizeof(r->target));
}

#define TX_COLS "tenant, txid, connector, csr_hash, state, validated, validated_at, " \
	"thumbprint, serial, expires, issuer, ca_config, ca, hresult, error_description, updated"

static void
row_tx(sqlite3_stmt *st, struct hub_scep_tx *t)
{
	memset(t, 0, sizeof(*t));
	col_str(st, 0, t->tenant, sizeof(t->tenant));
	col_str(st, 1, t->txid, sizeof(t->txid));
	col_str(st, 2, t->connector, sizeof(t->connector));
	col_str(st, 3, t->csr_hash, sizeof(t->csr_hash));
	t->state = sqlite3_column_int(st, 4);
	t->validated = sqlite3_column_int(st, 5) != 0;
	t->validated_at = sqlite3_column_int64(st, 6);
	col_str(st, 7, t->thumbprint, sizeof(t->thumbprint));
	col_str(st, 8, t->serial, sizeof(t->serial));
	col_str(st, 9, t->expires, sizeof(t->expires));
	col_str(st, 10, t->issuer, sizeof(t->issuer));
	col_str(st, 11, t->ca_config, sizeof(t->ca_config));
	col_str(st, 12, t->ca, sizeof(t->ca));
	t->hresult = sqlite3_column_int64(st, 13);
	col_str(st, 14, t->error_description, sizeof(t->error_description));
	t->updated = sqlite3_column_int64(st, 15);
}

/* ---- tenants ---- */

static enum hub_st
tenant_put(struct hub_store *hs, const char *id, const char *display, int64_t now)
{
	struct sq *s = (struct sq *)hs;
	sqlite3_stmt *st = NULL;
	enum hub_st ret;
	int rc;

	if ((rc = sq_begin(s, 1)) != SQLITE_OK)
		return sq_err(s, rc, "tenant");
	rc = sq_prep(s, &st, "SELECT display FROM tenants WHERE id=?", "t", id);
	if (rc != SQLITE_OK)
		goto fail;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		ret = strcmp((const char *)sqlite3_column_text(st, 0), display) == 0 ?
		    HUB_ST_EXISTS : HUB_ST_CONFLICT;
		sqlite3_finalize(st);
		sq_rollback(s);
		return ret;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (rc != SQLITE_DONE)
		goto fail;
	rc = sq_run(s, "INSERT INTO tenants(id, display, created) VALUES(?,?,?)", "tti", id,
	    display, now);
	if (rc != SQLITE_OK || (rc = sq_commit(s)) != SQLITE_OK)
		goto fail;
	return HUB_ST_OK;
fail:
	ret = sq_err(s, rc, "tenant");
	sqlite3_finalize(st);
	sq_rollback(s);
	return ret;
}

static enum hub_st
tenant_list(struct hub_store *hs, hub_tenant_cb cb, void *arg)
{
	struct sq *s = (struct sq *)hs;
	sqlite3_stmt *st;
	struct hub_tenant t;
	int rc;

	rc = sq_prep(s, &st, "SELECT t.id, t.display, t.created, (SELECT count(*) FROM connectors "
	    "c WHERE c.tenant=t.id) FROM tenants t ORDER BY t.id", "");
	if (rc != SQLITE_OK)
		return sq_err(s, rc, "tenant list");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&t, 0, sizeof(t));
		col_str(st, 0, t.id, sizeof(t.id));
		col_str(st, 1, t.display, sizeof(t.display));
		t.created = sqlite3_column_int64(st, 2);
		t.connectors = (uint32_t)sqlite3_column_int64(st, 3);
		if (cb(arg, &t) == -1) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? HUB_ST_OK : sq_err(s, rc, "tenant list");
}

static int
tenant_exists(struct sq *s, const char *id, int *exists)
{
	sqlite3_stmt *st;
	int rc;

	rc = sq_prep(s, &st, "SELECT 1 FROM tenants WHERE id=?", "t", id);
	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(st);
	*exists = rc == SQLITE_ROW;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* ---- enrollment tokens and connectors ---- */

static enum hub_st
token_put(struct hub_store *hs, const char *hash, const char *tenant, uint32_t features,
    int64_t expires, int64_t now)
{
	struct sq *s = (struct sq *)hs;
	int rc, exists = 0;

	if ((rc = sq_begin(s, 1)) != SQLITE_OK)
		return sq_err(s, rc, "token");
	if ((rc = tenant_exists(s, tenant, &exists)) != SQLITE_OK)
		goto fail;
	if (!exists) {
		sq_rollback(s);
		return HUB_ST_NO_TENANT;
	}
	rc = sq_run(s, "INSERT INTO enrollment_tokens(hash, tenant, features, expires, created) "
	    "VALUES(?,?,?,?,?)", "ttuii", hash, tenant, features, expires, now);
	if (rc != SQLITE_OK || (rc = sq_commit(s)) != SQLITE_OK)
		goto fail;
	return HUB_ST_OK;
fail:
	sq_rollback(s);
	return sq_err(s, rc, "token");
}

static enum hub_st
token_tenant(struct hub_store *hs, const char *hash, int64_t now, char tenant[HUB_ID_MAX + 1])
{
	struct sq *s = (struct sq *)hs;
	sqlite3_stmt *st;
	int rc;

	rc = sq_prep(s, &st, "SELECT tenant FROM enrollment_tokens WHERE hash=? AND used=0 AND "
	    "expires>?", "ti", hash, now);
	if (rc != SQLITE_OK)
		return sq_err(s, rc, "token");
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		col_str(st, 0, tenant, HUB_ID_MAX + 1);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return HUB_ST_OK;
	return rc == SQLITE_DONE ? HUB_ST_TOKEN_INVALID : sq_err(s, rc, "token");
}

static enum hub_st
connector_register(struct hub_store *hs, const char *token_hash, struct hub_connector *c,
    uint32_t max_per_tenant, int64_t now)
{
	struct sq *s = (struct sq *)hs;
	sqlite3_stmt *st = NULL;
	uint32_t allowed, count;
	int64_t expires;
	int rc, used;

	if ((rc = sq_begin(s, 1)) != SQLITE_OK)
		return sq_err(s, rc, "registration");
	rc = sq_prep(s, &st, "SELECT tenant, features, expires, used FROM enrollment_tokens "
	    "WHERE hash=?", "t", token_hash);
	if (rc != SQLITE_OK)
		goto fail;
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_finalize(st);
		sq_rollback(s);
		return HUB_ST_TOKEN_INVALID;
	}
	if (rc != SQLITE_ROW)
		goto fail;
	col_str(st, 0, c->tenant, sizeof(c->tenant));
	allowed = (uint32_t)sqlite3_column_int64(st, 1);
	expires = sqlite3_column_int64(st, 2);
	used = sqlite3_column_int(st, 3);
	sqlite3_finalize(st);
	st = NULL;
	if (used || expires <= now) {
		sq_rollback(s);
		return HUB_ST_TOKEN_INVALID;
	}
	if (allowed != 0 && (c->features & ~allowed) != 0) {
		sq_rollback(s);
		return HUB_ST_FEATURE;
	}
	rc = sq_prep(s, &st, "SELECT count(*) FROM connectors WHERE tenant=?", "t", c->tenant);
	if (rc != SQLITE_OK || (rc = sqlite3_step(st)) != SQLITE_ROW)
		goto fail;
	count = (uint32_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	st = NULL;
	if (count >= max_per_tenant) {
		sq_rollback(s);
		return HUB_ST_LIMIT;
	}
	c->registered = now;
	rc = sq_run(s, "INSERT INTO connectors(id, tenant, name, version, features, serial, "
	    "not_after, registered, last_seen) VALUES(?,?,?,?,?,?,?,?,?)", "ttttutiii", c->id,
	    c->tenant, c->name, c->version, c->features, c->serial, c->not_after, now, now);
	if (rc != SQLITE_OK)
		goto fail;
	rc = sq_run(s, "UPDATE enrollment_tokens SET used=1, connector=? WHERE hash=?", "tt",
	    c->id, token_hash);
	if (rc != SQLITE_OK || (rc = sq_commit(s)) != SQLITE_OK)
		goto fail;
	return HUB_ST_OK;
fail:
	sqlite3_finalize(st);
	sq_rollback(s);
	return sq_err(s, rc, "registration");
}

static enum hub_st
connector_get(struct hub_store *hs, const char *id, struct hub_connector *c)
{
	struct sq *s = (struct sq *)hs;
	sqlite3_stmt *st;
	int rc;

	rc = sq_prep(s, &st, "SELECT " CONN_COLS " FROM connectors WHERE id=?", "t", id);
	if (rc != SQLITE_OK)
		return sq_err(s, rc, "connector");
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		row_connector(st, c);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return HUB_ST_OK;
	return rc == SQLITE_DONE ? HUB_ST_NOT_FOUND : sq_err(s, rc, "connector");
}

static enum hub_st
connector_list(struct hub_store *hs, const char *tenant, hub_connector_cb cb, void *arg)
{
	struct sq *s = (struct sq *)hs;
	sqlite3_stmt *st;
	struct hub_connector c;
	int rc, stop = 0;

	rc = sq_prep(s, &st, "SELECT " CONN_COLS " FROM connectors WHERE ?1 IS NULL OR "
	    "tenant=?1 ORDER BY tenant, registered, id", "t", tenant);
	if (rc != SQLITE_OK)
		return sq_err(s, rc, "connector list");
	while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		row_connector(st, &c);
		stop = cb(arg, &c) == -1;
		hub_connector_clear(&c);
	}
	sqlite3_finalize(st);
	if (stop)
		return HUB_ST_ERROR;
	return rc == SQLITE_DONE ? HUB_ST_OK : sq_err(s, rc, "connector list");
}

static enum hub_st
connector_set_cert(struct hub_store *hs, const char *id, const char *serial, int64_t not_after)
{
	struct sq *s = (struct sq *)hs;
	int rc;

	rc = sq_run(s, "UPDATE connectors SET prev_serial=serial, prev_not_after=not_after, "
	    "serial=?, not_after=? WHERE id=?", "tit", serial, not_after, id);
	if (rc != SQLITE_OK)
		return sq_err(s, rc, "certificate");
	return sqlite3_changes(s->db) == 1 ? HUB_ST_OK : HUB_ST_NOT_FOUND;
}

static enum hub_st
connector_health(struct hub_store *hs, const char *id, const char *version, const char *health,
    int64_t now)
{
	struct sq *s = (struct sq *)hs;
	int rc;

	rc = sq_run(s, "UPDATE connectors SET version=?, health=?, last_health=?, last_seen=? "
	    "WHERE id=?", "ttiit", version, health, now, now, id);
	if (rc != SQLITE_OK)
		return sq_err(s, rc, "health");
	return sqlite3_changes(s->db) == 1 ? HUB_ST_OK : HUB_ST_NOT_FOUND;
}

static enum hub_st
connector_pfx_key(struct hub_store *hs, const char *id, const char *spki_b64,
    const char *key_name, int64_t now)
{
	struct sq *s = (struct sq *)hs;
	int rc;

	/* Only a change is written (and dated): a health message repeats the key each time. */
	rc = sq_run(s, "UPDATE connectors SET pfx_key=?1, pfx_key_name=?2, pfx_key_updated=?3 "
	    "WHERE id=?4 AND (pfx_key IS NULL OR pfx_key<>?1 OR pfx_key_name<>?2)", "ttit",
	    spki_b64, key_name, now, id);
	return rc == SQLITE_OK ? HUB_ST_OK : sq_err(s, rc, "pfx key");
}

static enum hub_st
connector_seen(struct hub_store *hs, const char *id, int64_t now)
{
	struct sq *s = (struct sq *)hs;
	int rc;

	rc = sq_run(s, "UPDATE connectors SET last_seen=? WHERE id=? AND last_seen<>?", "iti",
	    now, id, now);
	return rc == SQLITE_OK ? HUB_ST_OK : sq_err(s, rc, "connector");
}

static enum hub_st
connector_disable(struct hub_store *hs, const char *id)
{
	struct sq *s = (struct sq *)hs;
	int rc;

	rc = sq_run(s, "UPDATE connectors SET disabled=1 WHERE id=?", "t", id);
	if (rc != SQLITE_OK)
		return sq_err(s, rc, "connector");
	return sqlite3_changes(s->db) == 1 ? HUB_ST_OK : HUB_ST_NOT_FOUND;
}

/* ---- requests ---- */

static enum hub_st
request_put(struct hub_store *hs, const struct hub_request *r)
{
	struct sq *s = (struct sq *)hs;
	sqlite3_stmt *st = NULL;
	enum hub_st ret;
	int rc, exists = 0;

	if ((rc = sq_begin(s, 1)) != SQLITE_OK)
		return sq_err(s, rc, "request");
	if ((rc = tenant_exists(s, r->tenant, &exists)) != SQLITE_OK)
		goto fail;
	if (!exists) {
		sq_rollback(s);
		return HUB_ST_NO_TENANT;
	}
	rc = sq_prep(s, &st, "SELECT tenant, feature, payload, target FROM requests WHERE id=?",
	    "t", r->id);
	if (rc != SQLITE_OK)
		goto fail;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(st, 0);
		const char *p = (const char *)sqlite3_column_text(st, 2);
		const char *g = (const char *)sqlite3_column_text(st, 3);
		ret = t != NULL && p != NULL && g != NULL && strcmp(t, r->tenant) == 0 &&
		    (uint32_t)sqlite3_column_int64(st, 1) == r->feature &&
		    strcmp(p, r->payload) == 0 && strcmp(g, r->target) == 0 ? HUB_ST_EXISTS :
		    HUB_ST_CONFLICT;
		sqlite3_finalize(st);
		sq_rollback(s);
		return ret;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (rc != SQLITE_DONE)
		goto fail;
	rc = sq_run(s, "INSERT INTO requests(id, tenant, feature, state, payload, tag, created, "
	    "target) VALUES(?,?,?,0,?,?,?,?)", "ttuttit", r->id, r->tenant, r->feature, r->payload,
	    r->tag, r->created, r->target);
	if (rc != SQLITE_OK || (rc = sq_commit(s)) != SQLITE_OK)
		goto fail;
	return HUB_ST_OK;
fail:
	sqlite3_finalize(st);
	ret = sq_err(s, rc, "request");
	sq_rollback(s);
	return ret;
}

static enum hub_st
request_lease(struct hub_store *hs, const char *tenant, uint32_t feature, const char *tag,
    uint32_t max, const char *owner, int64_t lease_until, uint32_t max_attempts, int64_t now,
    hub_request_cb cb, void *arg)
{
	struct sq *s = (struct sq *)hs;
	sqlite3_stmt *st = NULL;
	char (*ids)[HUB_ID_MAX + 1] = NULL;
	size_t n = 0;
	int rc;

	if ((rc = sq_begin(s, 1)) != SQLITE_OK)
		return sq_err(s, rc, "lease");
	/* Expired leases that used up the attempts fail for good first. */
	rc = sq_run(s, "UPDATE requests SET state=3, completed=?, succeeded=0, error_code=4100, "
	    "error_message='the request was leased the maximum number of times without a result' "
	    "WHERE tenant=? AND feature=? AND state=1 AND lease_until<=? AND attempt>=?", "ituiu",
	    now, tenant, feature, now, max_attempts);
	if (rc != SQLITE_OK)
		goto fail;
	ids = calloc(max, sizeof(*ids));
	if (ids == NULL) {
		rc = SQLITE_NOMEM;
		goto fail;
	}
	rc = sq_prep(s, &st, "SELECT id FROM requests WHERE tenant=?1 AND feature=?2 AND "
	    "(state=0 OR (state=1 AND lease_until<=?3)) AND (?4 IS NULL OR tag=?4) "
	    "AND (target='' OR target=?6) ORDER BY seq LIMIT ?5", "tuitut", tenant, feature, now,
	    tag, max, owner);
	if (rc != SQLITE_OK)
		goto fail;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < max)
		col_str(st, 0, ids[n++], HUB_ID_MAX + 1);
	sqlite3_finalize(st);
	st = NULL;
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		rc = sq_run(s, "UPDATE requests SET state=1, lease_owner=?, lease_until=?, "
		    "attempt=attempt+1 WHERE id=?", "tit", owner, lease_until, ids[i]);
		if (rc != SQLITE_OK)
			goto fail;
		rc = sq_run(s, "INSERT OR IGNORE INTO request_leases(request, connector, "
		    "first_leased) VALUES(?,?,?)", "tti", ids[i], owner, now);
		if (rc != SQLITE_OK)
			goto fail;
	}
	/* The callback sees the rows as committed; a failing callback still leaves them leased
	 * (the lease expires), which loses nothing. */
	if ((rc = sq_commit(s)) != SQLITE_OK)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		struct hub_request r;
		int stop;

		rc = sq_prep(s, &st, "SELECT " REQ_COLS " FROM requests WHERE id=?", "t", ids[i]);
		if (rc != SQLITE_OK)
			break;
		rc = sqlite3_step(st);
		if (rc != SQLITE_ROW)
			break;
		row_request(st, &r);
		sqlite3_finalize(st);
		st = NULL;
		stop = cb(arg, &r) == -1;
		hub_request_clear(&r);
		if (stop) {
			free(ids);
			return HUB_ST_ERROR;
		}
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	free(ids);
	return rc == SQLITE_OK ? HUB_ST_OK : sq_err(s, rc, "lease");
fail:
	sqlite3_finalize(st);
	free(ids);
	sq_rollback(s);
	return sq_err(s, rc, "lease");
}

static int
leased_before(struct sq *s, const char *id, const char *owner, int *yes)
{
	sqlite3_stmt *st;
	int rc;

	rc = sq_prep(s, &st, "SELECT 1 FROM request_leases WHERE request=? AND connector=?", "tt",
	    id, owner);
	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(st);
	*yes = rc == SQLITE_ROW;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/*
 * Reads the request for a result or an extension and decides what the caller may do:
 * 0 = it holds the lease (state leased, owner caller, expired or not), else *out is final.
 */
static int
request_access(struct sq *s, const char *tenant, uint32_t features, const char *owner,
    const char *id, struct hub_request *r, enum hub_up *out, int *rc)
{
	sqlite3_stmt *st;
	int before;

	*rc = sq_prep(s, &st, "SELECT " REQ_COLS " FROM requests WHERE id=? AND tenant=?", "tt",
	    id, tenant);
	if (*rc != SQLITE_OK)
		return -1;
	*rc = sqlite3_step(st);
	if (*rc == SQLITE_DONE) {
		sqlite3_finalize(st);
		*rc = SQLITE_OK;
		*out = HUB_UP_NOT_FOUND;
		return 1;
	}
	if (*rc != SQLITE_ROW) {
		sqlite3_finalize(st);
		return -1;
	}
	row_request(st, r);
	sqlite3_finalize(st);
	*rc = SQLITE_OK;
	if ((r->feature & features) == 0) {
		*out = HUB_UP_FEATURE;
		return 1;
	}
	if (r->state == HUB_RS_COMPLETED || r->state == HUB_RS_FAILED) {
		*out = strcmp(r->completed_by, owner) == 0 ? HUB_UP_ALREADY_RECORDED :
		    HUB_UP_ALREADY_COMPLETED;
		return 1;
	}
	if (r->state == HUB_RS_LEASED && strcmp(r->lease_owner, owner) == 0)
		return 0;
	if (r->state == HUB_RS_QUEUED && strcmp(r->lease_owner, owner) == 0) {
		/* The caller's own retryable failure put it back, nobody has leased it since. */
		*out = HUB_UP_ALREADY_RECORDED;
		return 1;
	}
	if ((*rc = leased_before(s, id, owner, &before)) != SQLITE_OK)
		return -1;
	*out = before ? HUB_UP_LEASE_LOST : HUB_UP_NOT_LEASED;
	return 1;
}

static enum hub_st
request_complete(struct hub_store *hs, const char *tenant, uint32_t features, const char *owner,
    const struct hub_result_in *in, uint32_t max_attempts, int64_t now, enum hub_up *out)
{
	struct sq *s = (struct sq *)hs;
	struct hub_request r;
	int rc, a;

	memset(&r, 0, sizeof(r));
	if ((rc = sq_begin(s, 1)) != SQLITE_OK)
		return sq_err(s, rc, "result");
	a = request_access(s, tenant, features, owner, in->request_id, &r, out, &rc);
	if (a == -1)
		goto fail;
	if (a == 1) {
		hub_request_clear(&r);
		sq_rollback(s);
		return HUB_ST_OK;
	}
	if (!in->succeeded && in->retryable && r.attempt < max_attempts) {
		rc = sq_run(s, "UPDATE requests SET state=0, lease_until=0, error_code=?, "
		    "error_message=? WHERE id=?", "itt", (int64_t)in->error_code, in->error_message,
		    in->request_id);
		*out = HUB_UP_REQUEUED;
	} else {
		rc = sq_run(s, "UPDATE requests SET state=?, completed=?, completed_by=?, "
		    "succeeded=?, error_code=?, error_message=?, result=?, lease_until=0 WHERE id=?",
		    "iitiitt" "t", (int64_t)(in->succeeded ? HUB_RS_COMPLETED : HUB_RS_FAILED), now,
		    owner, (int64_t)in->succeeded, (int64_t)in->error_code, in->error_message,
		    in->result, in->request_id);
		*out = HUB_UP_RECORDED;
	}
	hub_request_clear(&r);
	if (rc != SQLITE_OK || (rc = sq_commit(s)) != SQLITE_OK)
		goto fail;
	return HUB_ST_OK;
fail:
	hub_request_clear(&r);
	sq_rollback(s);
	return sq_err(s, rc, "result");
}

static enum hub_st
request_extend(struct hub_store *hs, const char *tenant, uint32_t features, const char *owner,
    const char *id, int64_t lease_until, int64_t now, enum hub_up *out)
{
	struct sq *s = (struct sq *)hs;
	struct hub_request r;
	int rc, a;

	(void)now;
	memset(&r, 0, sizeof(r));
	if ((rc = sq_begin(s, 1)) != SQLITE_OK)
		return sq_err(s, rc, "lease extension");
	a = request_access(s, tenant, features, owner, id, &r, out, &rc);
	hub_request_clear(&r); /* only r.state is used below */
	if (a == -1)
		goto fail;
	if (a == 1) {
		/* For an extension, the caller's own requeued request is a lost lease. */
		if (*out == HUB_UP_ALREADY_RECORDED && r.state == HUB_RS_QUEUED)
			*out = HUB_UP_LEASE_LOST;
		else if (*out == HUB_UP_ALREADY_RECORDED)
			*out = HUB_UP_ALREADY_COMPLETED;
		sq_rollback(s);
		return HUB_ST_OK;
	}
	rc = sq_run(s, "UPDATE requests SET lease_until=? WHERE id=?", "it", lease_until, id);
	if (rc != SQLITE_OK || (rc = sq_commit(s)) != SQLITE_OK)
		goto fail;
	*out = HUB_UP_EXTENDED;
	return HUB_ST_OK;
fail:
	sq_rollback(s);
	return sq_err(s, rc, "lease extension");
}

static enum hub_st
request_get(struct hub_store *hs, const char *tenant, const char *id, struct hub_request *r)
{
	struct sq *s = (struct sq *)hs;
	sqlite3_stmt *st;
	int rc;

	rc = sq_prep(s, &st, "SELECT " REQ_COLS " FROM requests WHERE id=?1 AND "
	    "(?2 IS NULL OR tenant=?2)", "tt", id, tenant);
	if (rc != SQLITE_OK)
		return sq_err(s, rc, "request");
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		row_request(st, r);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return HUB_ST_OK;
	return rc == SQLITE_DONE ? HUB_ST_NOT_FOUND : sq_err(s, rc, "request");
}

static enum hub_st
request_list(struct hub_store *hs, const struct hub_request_filter *f, hub_request_cb cb,
    void *arg)
{
	struct sq *s = (struct sq *)hs;
	sqlite3_stmt *st;
	struct hub_request r;
	int rc, stop = 0;

	rc = sq_prep(s, &st, "SELECT " REQ_COLS " FROM requests WHERE (?1 IS NULL OR tenant=?1) "
	    "AND (?2=0 OR feature=?2) AND (?3<0 OR state=?3) ORDER BY seq LIMIT ?4", "tuiu",
	    f->tenant, f->feature, (int64_t)f->state, f->limit);
	if (rc != SQLITE_OK)
		return sq_err(s, rc, "request list");
	while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		row_request(st, &r);
		stop = cb(arg, &r) == -1;
		hub_request_clear(&r);
	}
	sqlite3_finalize(st);
	if (stop)
		return HUB_ST_ERROR;
	return rc == SQLITE_DONE ? HUB_ST_OK : sq_err(s, rc, "request list");
}

/* ---- SCEP ---- */

static enum hub_st
challenge_put(struct hub_store *hs, const char *hash, const struct hub_challenge *c,
    int64_t now)
{
	struct sq *s = (struct sq *)hs;
	int rc, exists = 0;

	if ((rc = sq_begin(s, 1)) != SQLITE_OK)
		return sq_err(s, rc, "challenge");
	if ((rc = tenant_exists(s, c->tenant, &exists)) != SQLITE_OK)
		goto fail;
	if (!exists) {
		sq_rollback(s);
		return HUB_ST_NO_TENANT;
	}
	rc = sq_run(s, "INSERT INTO scep_challenges(hash, tenant, subject, sans, min_key_bits, "
	    "expires, created) VALUES(?,?,?,?,?,?,?)", "ttttuii", hash, c->tenant, c->subject,
	    c->sans, c->min_key_bits, c->expires, now);
	if (rc != SQLITE_OK || (rc = sq_commit(s)) != SQLITE_OK)
		goto fail;
	return HUB_ST_OK;
fail:
	sq_rollback(s);
	return sq_err(s, rc, "challenge");
}

static enum hub_st
challenge_get(struct hub_store *hs, const char *hash, const char *tenant,
    struct hub_challenge *c)
{
	struct sq *s = (struct sq *)hs;
	sqlite3_stmt *st;
	int rc;

	rc = sq_prep(s, &st, "SELECT tenant, subject, sans, min_key_bits, expires, txid FROM "
	    "scep_challenges WHERE hash=? AND tenant=?", "tt", hash, tenant);
	if (rc != SQLITE_OK)
		return sq_err(s, rc, "challenge");
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		memset(c, 0, sizeof(*c));
		col_str(st, 0, c->tenant, sizeof(c->tenant));
		col_str(st, 1, c->subject, sizeof(c->subject));
		c->sans = col_dup(st, 2);
		c->min_key_bits = (uint32_t)sqlite3_column_int64(st, 3);
		c->expires = sqlite3_column_int64(st, 4);
		col_str(st, 5, c->txid, sizeof(c->txid));
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return HUB_ST_OK;
	return rc == SQLITE_DONE ? HUB_ST_NOT_FOUND : sq_err(s, rc, "challenge");
}

static enum hub_st
challenge_bind(struct hub_store *hs, const char *hash, const char *tenant, const char *txid)
{
	struct sq *s = (struct sq *)hs;
	int rc;

	/* One statement: binds only an unbound challenge, so two binds cannot both win. */
	rc = sq_run(s, "UPDATE scep_challenges SET txid=?1 WHERE hash=?2 AND tenant=?3 AND "
	    "(txid='' OR txid=?1)", "ttt", txid, hash, tenant);
	if (rc != SQLITE_OK)
		return sq_err(s, rc, "challenge");
	return sqlite3_changes(s->db) == 1 ? HUB_ST_OK : HUB_ST_CONFLICT;
}

static enum hub_st
tx_get(struct hub_store *hs, const char *tenant, const char *txid, struct hub_scep_tx *t)
{
	struct sq *s = (struct sq *)hs;
	sqlite3_stmt *st;
	int rc;

	rc = sq_prep(s, &st, "SELECT " TX_COLS " FROM scep_transactions WHERE tenant=? AND txid=?",
	    "tt", tenant, txid);
	if (rc != SQLITE_OK)
		return sq_err(s, rc, "transaction");
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		row_tx(st, t);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return HUB_ST_OK;
	return rc == SQLITE_DONE ? HUB_ST_NOT_FOUND : sq_err(s, rc, "transaction");
}

static enum hub_st
tx_put(struct hub_store *hs, const struct hub_scep_tx *t)
{
	struct sq *s = (struct sq *)hs;
	int rc;

	rc = sq_run(s, "INSERT OR REPLACE INTO scep_transactions(" TX_COLS ") VALUES("
	    "?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", "ttttiiittttttiti", t->tenant, t->txid,
	    t->connector, t->csr_hash, (int64_t)t->state, (int64_t)t->validated, t->validated_at,
	    t->thumbprint, t->serial, t->expires, t->issuer, t->ca_config, t->ca, t->hresult,
	    t->error_description, t->updated);
	return rc == SQLITE_OK ? HUB_ST_OK : sq_err(s, rc, "transaction");
}

static enum hub_st
tx_list(struct hub_store *hs, const char *tenant, hub_tx_cb cb, void *arg)
{
	struct sq *s = (struct sq *)hs;
	sqlite3_stmt *st;
	struct hub_scep_tx t;
	int rc, stop = 0;

	rc = sq_prep(s, &st, "SELECT " TX_COLS " FROM scep_transactions WHERE ?1 IS NULL OR "
	    "tenant=?1 ORDER BY updated, txid", "t", tenant);
	if (rc != SQLITE_OK)
		return sq_err(s, rc, "transaction list");
	while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		row_tx(st, &t);
		stop = cb(arg, &t) == -1;
	}
	sqlite3_finalize(st);
	if (stop)
		return HUB_ST_ERROR;
	return rc == SQLITE_DONE ? HUB_ST_OK : sq_err(s, rc, "transaction list");
}

/* ---- versions ---- */

static enum hub_st
version_put(struct hub_store *hs, const char *version, int64_t released)
{
	struct sq *s = (struct sq *)hs;
	int rc;

	rc = sq_run(s, "INSERT OR REPLACE INTO versions(version, released) VALUES(?,?)", "ti",
	    version, released);
	return rc == SQLITE_OK ? HUB_ST_OK : sq_err(s, rc, "version");
}

static enum hub_st
version_list(struct hub_store *hs, hub_version_cb cb, void *arg)
{
	struct sq *s = (struct sq *)hs;
	sqlite3_stmt *st;
	struct hub_version_row v;
	int rc, stop = 0;

	rc = sq_prep(s, &st, "SELECT version, released FROM versions ORDER BY released, version",
	    "");
	if (rc != SQLITE_OK)
		return sq_err(s, rc, "version list");
	while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		col_str(st, 0, v.version, sizeof(v.version));
		v.released = sqlite3_column_int64(st, 1);
		stop = cb(arg, &v) == -1;
	}
	sqlite3_finalize(st);
	if (stop)
		return HUB_ST_ERROR;
	return rc == SQLITE_DONE ? HUB_ST_OK : sq_err(s, rc, "version list");
}

/* ---- open / close ---- */

static void
sq_close(struct hub_store *hs)
{
	struct sq *s = (struct sq *)hs;

	if (s == NULL)
		return;
	sqlite3_close(s->db);
	free(s);
}

static const struct hub_store_ops sq_ops = {
	.close = sq_close,
	.tenant_put = tenant_put,
	.tenant_list = tenant_list,
	.token_put = token_put,
	.token_tenant = token_tenant,
	.connector_register = connector_register,
	.connector_get = connector_get,
	.connector_list = connector_list,
	.connector_set_cert = connector_set_cert,
	.connector_health = connector_health,
	.connector_seen = connector_seen,
	.connector_pfx_key = connector_pfx_key,
	.connector_disable = connector_disable,
	.request_put = request_put,
	.request_lease = request_lease,
	.request_complete = request_complete,
	.request_extend = request_extend,
	.request_get = request_get,
	.request_list = request_list,
	.challenge_put = challenge_put,
	.challenge_get = challenge_get,
	.challenge_bind = challenge_bind,
	.tx_get = tx_get,
	.tx_put = tx_put,
	.tx_list = tx_list,
	.version_put = version_put,
	.version_list = version_list,
};

static int
sq_migrate(struct sq *s)
{
	sqlite3_stmt *st;
	int rc, have;
	char sql[64];

	rc = sq_prep(s, &st, "PRAGMA user_version", "");
	if (rc != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		cc_log_err("store: cannot read the schema version: %s", sqlite3_errmsg(s->db));
		return -1;
	}
	have = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (have > NMIGRATIONS) {
		cc_log_err("store: the database has schema version %d, newer than this hub's %d",
		    have, NMIGRATIONS);
		return -1;
	}
	for (int v = have; v < NMIGRATIONS; v++) {
		snprintf(sql, sizeof(sql), "PRAGMA user_version=%d", v + 1);
		if (sq_begin(s, 1) != SQLITE_OK || sq_exec(s, migrations[v]) != SQLITE_OK ||
		    sq_exec(s, sql) != SQLITE_OK || sq_commit(s) != SQLITE_OK) {
			cc_log_err("store: migration to schema version %d failed: %s", v + 1,
			    sqlite3_errmsg(s->db));
			sq_rollback(s);
			return -1;
		}
		cc_log_info("store: database migrated to schema version %d", v + 1);
	}
	return 0;
}

struct hub_store *
hub_store_sqlite_open(const char *path)
{
	struct sq *s = calloc(1, sizeof(*s));
	sqlite3_stmt *st;
	int rc;

	if (s == NULL)
		return NULL;
	s->base.ops = &sq_ops;
	rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
	    SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		cc_log_err("store: cannot open %s: %s", path,
		    s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_busy_timeout(s->db, SQ_BUSY_MS);
	/* WAL: readers do not block the writer; synchronous FULL: a result the hub answered
	 * "Recorded" for survives a power cut. */
	if (sq_prep(s, &st, "PRAGMA journal_mode=WAL", "") == SQLITE_OK) {
		(void)sqlite3_step(st);
		sqlite3_finalize(st);
	}
	if (sq_exec(s, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON") != SQLITE_OK) {
		cc_log_err("store: %s: %s", path, sqlite3_errmsg(s->db));
		goto fail;
	}
	if (sq_migrate(s) == -1)
		goto fail;
	return &s->base;
fail:
	sqlite3_close(s->db);
	free(s);
	return NULL;
}

/* ---- names ---- */

const char *
hub_st_name(enum hub_st st)
{
	static const char *const n[] = { "ok", "store error", "store busy", "not found", "exists",
		"conflict", "invalid enrollment token", "feature not allowed",
		"connector limit reached", "no such tenant" };

	return (unsigned)st < sizeof(n) / sizeof(n[0]) ? n[st] : "?";
}

const char *
hub_req_state_name(int s)
{
	static const char *const n[] = { "queued", "leased", "completed", "failed" };

	return s >= 0 && s < 4 ? n[s] : "?";
}

int
hub_req_state_parse(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(s, hub_req_state_name(i)) == 0)
			return i;
	return -1;
}

const char *
hub_up_name(enum hub_up u)
{
	static const char *const n[] = { "Recorded", "Requeued", "AlreadyRecorded",
		"AlreadyCompleted", "LeaseLost", "NotLeased", "NotFound", "FeatureNotRegistered",
		"Extended", "Invalid" };

	return (unsigned)u < sizeof(n) / sizeof(n[0]) ? n[u] : "?";
}

const char *
hub_tx_state_name(int s)
{
	static const char *const n[] = { "validated", "succeeded", "failed" };

	return s >= 0 && s < 3 ? n[s] : "?";
}
