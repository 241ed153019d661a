/*
 * The flows' durable state: one SQLite database (WAL, synchronous=FULL) with the result
 * outbox and the CA idempotency records (certconn/flows.h).
 *
 * Why SQLite rather than one fsync'd file per entry: an idempotency record is written in
 * two steps (CSR and encrypted key before the CA is asked, then the certificate), and a
 * transaction makes each step atomic without a write-rename-fsync(dir) dance per update;
 * a commit under synchronous=FULL is durable on return. The CA store already uses SQLite
 * in the same directory, so net's sandbox (Landlock on net.state_dir, seccomp's file
 * calls) needs nothing new.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <sqlite3.h>

#include "certconn/flows.h"
#include "flows_int.h"

struct flows_store {
	sqlite3 *db;
	pthread_mutex_t lock;
};

static int
st_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS outbox ("
    " request_id TEXT PRIMARY KEY, feature TEXT NOT NULL, correlation_id TEXT NOT NULL,"
    " succeeded INTEGER NOT NULL, code INTEGER NOT NULL, message TEXT NOT NULL,"
    " result TEXT, created INTEGER NOT NULL, uploads INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS idem ("
    " request_id TEXT PRIMARY KEY, csr BLOB NOT NULL, enc_key BLOB NOT NULL, cert BLOB,"
    " created INTEGER NOT NULL);";

int
flows_store_open(const char *path, struct flows_store **out, char *err, size_t errlen)
{
	struct flows_store *s;
	char *msg = NULL;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return st_err(err, errlen, "out of memory");
	pthread_mutex_init(&s->lock, NULL);
	if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
	    SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK) {
		st_err(err, errlen, "flows store %s: %s", path,
		    s->db != NULL ? sqlite3_errmsg(s->db) : "cannot open");
		goto fail;
	}
	sqlite3_busy_timeout(s->db, 5000);
	if (sqlite3_exec(s->db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; "
	    "PRAGMA secure_delete = ON;", NULL, NULL, &msg) != SQLITE_OK ||
	    sqlite3_exec(s->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
		st_err(err, errlen, "flows store %s: %s", path, msg != NULL ? msg : "?");
		sqlite3_free(msg);
		goto fail;
	}
	*out = s;
	return 0;
fail:
	sqlite3_close(s->db);
	pthread_mutex_destroy(&s->lock);
	free(s);
	return -1;
}

void
flows_store_close(struct flows_store *s)
{
	if (s == NULL)
		return;
	sqlite3_close(s->db);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* ---- outbox ---- */

void
flows_result_clear(struct flows_result *r)
{
	free(r->result_json);
	memset(r, 0, sizeof(*r));
}

int
flows_outbox_put(struct flows_store *s, const struct flows_result *r, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int ret = -1;

	pthread_mutex_lock(&s->lock);
	if (sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO outbox (request_id, feature, "
	    "correlation_id, succeeded, code, message, result, created, uploads) "
	    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", -1, &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_text(st, 1, r->request_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, r->feature, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, r->correlation_id, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, r->succeeded ? 1 : 0);
	sqlite3_bind_int(st, 5, r->code);
	sqlite3_bind_text(st, 6, r->message, -1, SQLITE_STATIC);
	if (r->result_json != NULL)
		sqlite3_bind_text(st, 7, r->result_json, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 7);
	sqlite3_bind_int64(st, 8, r->created != 0 ? (sqlite3_int64)r->created :
	    (sqlite3_int64)time(NULL));
	sqlite3_bind_int(st, 9, (int)r->uploads);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto out;
	ret = 0;
out:
	if (ret == -1)
		st_err(err, errlen, "outbox: writing %s: %s", r->request_id, sqlite3_errmsg(s->db));
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

static void
row_to_result(sqlite3_stmt *st, struct flows_result *r)
{
	const unsigned char *t;

	memset(r, 0, sizeof(*r));
	snprintf(r->request_id, sizeof(r->request_id), "%s", sqlite3_column_text(st, 0));
	snprintf(r->feature, sizeof(r->feature), "%s", sqlite3_column_text(st, 1));
	snprintf(r->correlation_id, sizeof(r->correlation_id), "%s", sqlite3_column_text(st, 2));
	r->succeeded = sqlite3_column_int(st, 3) != 0;
	r->code = sqlite3_column_int(st, 4);
	snprintf(r->message, sizeof(r->message), "%s", sqlite3_column_text(st, 5));
	t = sqlite3_column_text(st, 6);
	r->result_json = t != NULL ? strdup((const char *)t) : NULL;
	r->created = (time_t)sqlite3_column_int64(st, 7);
	r->uploads = (uint32_t)sqlite3_column_int(st, 8);
}

#define OUTBOX_COLS "request_id, feature, correlation_id, succeeded, code, message, result, " \
	"created, uploads"

int
flows_outbox_get(struct flows_store *s, const char *request_id, struct flows_result *r,
    char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int ret = -1, rc;

	pthread_mutex_lock(&s->lock);
	if (sqlite3_prepare_v2(s->db, "SELECT " OUTBOX_COLS " FROM outbox WHERE request_id = ?",
	    -1, &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_text(st, 1, request_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		row_to_result(st, r);
		ret = 1;
	} else if (rc == SQLITE_DONE)
		ret = 0;
out:
	if (ret == -1)
		st_err(err, errlen, "outbox: reading %s: %s", request_id, sqlite3_errmsg(s->db));
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

static int
exec_id(struct flows_store *s, const char *sql, const char *request_id, char *err,
    size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int ret = -1;

	pthread_mutex_lock(&s->lock);
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, request_id, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_DONE)
			ret = 0;
	}
	if (ret == -1)
		st_err(err, errlen, "flows store: %s: %s", request_id, sqlite3_errmsg(s->db));
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int
flows_outbox_remove(struct flows_store *s, const char *request_id, char *err, size_t errlen)
{
	return exec_id(s, "DELETE FROM outbox WHERE request_id = ?", request_id, err, errlen);
}

int
flows_outbox_bump(struct flows_store *s, const char *request_id, char *err, size_t errlen)
{
	return exec_id(s, "UPDATE outbox SET uploads = uploads + 1 WHERE request_id = ?",
	    request_id, err, errlen);
}

int
flows_outbox_each(struct flows_store *s, flows_outbox_fn fn, void *arg, char *err,
    size_t errlen)
{
	sqlite3_stmt *st = NULL;
	struct flows_result *rows = NULL, *nr;
	size_t n = 0;
	int ret = -1, rc;

	/* Rows are copied out first, so that fn may use the store (remove, bump). */
	pthread_mutex_lock(&s->lock);
	if (sqlite3_prepare_v2(s->db, "SELECT " OUTBOX_COLS " FROM outbox ORDER BY created, "
	    "request_id", -1, &st, NULL) != SQLITE_OK) {
		st_err(err, errlen, "outbox: %s", sqlite3_errmsg(s->db));
		pthread_mutex_unlock(&s->lock);
		return -1;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		nr = realloc(rows, (n + 1) * sizeof(*rows));
		if (nr == NULL)
			break;
		rows = nr;
		row_to_result(st, &rows[n++]);
	}
	if (rc == SQLITE_DONE)
		ret = 0;
	else
		st_err(err, errlen, "outbox: %s", rc == SQLITE_ROW ? "out of memory" :
		    sqlite3_errmsg(s->db));
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	for (size_t i = 0; i < n; i++) {
		if (ret == 0)
			fn(arg, &rows[i]);
		flows_result_clear(&rows[i]);
	}
	free(rows);
	return ret;
}

static size_t
count_of(struct flows_store *s, const char *sql)
{
	sqlite3_stmt *st = NULL;
	size_t n = 0;

	pthread_mutex_lock(&s->lock);
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		n = (size_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	return n;
}

size_t
flows_outbox_count(struct flows_store *s)
{
	return count_of(s, "SELECT count(*) FROM outbox");
}

bool
flows_upload_done(const char *status)
{
	static const char *const done[] = { "Recorded", "AlreadyRecorded", "AlreadyCompleted",
		"Requeued" };

	for (size_t i = 0; status != NULL && i < sizeof(done) / sizeof(done[0]); i++)
		if (strcmp(status, done[i]) == 0)
			return true;
	return false;
}

bool
flows_upload_final(const char *status)
{
	static const char *const dropped[] = { "LeaseLost", "NotLeased", "NotFound",
		"FeatureNotRegistered", "Invalid", "NotRecorded" };

	if (flows_upload_done(status))
		return true;
	for (size_t i = 0; status != NULL && i < sizeof(dropped) / sizeof(dropped[0]); i++)
		if (strcmp(status, dropped[i]) == 0)
			return true;
	return false;
}

/* ---- idempotency records ---- */

void
flows_idem_clear(struct flows_idem *r)
{
	free(r->csr);
	free(r->enc_key);
	free(r->cert);
	memset(r, 0, sizeof(*r));
}

int
flows_idem_put(struct flows_store *s, const struct flows_idem *r, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int ret = -1;

	pthread_mutex_lock(&s->lock);
	if (sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO idem (request_id, csr, enc_key, "
	    "cert, created) VALUES (?, ?, ?, ?, ?)", -1, &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_text(st, 1, r->request_id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, r->csr, (int)r->csr_len, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, r->enc_key, (int)r->enc_key_len, SQLITE_STATIC);
	if (r->cert != NULL)
		sqlite3_bind_blob(st, 4, r->cert, (int)r->cert_len, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 4);
	sqlite3_bind_int64(st, 5, r->created != 0 ? (sqlite3_int64)r->created :
	    (sqlite3_int64)time(NULL));
	if (sqlite3_step(st) == SQLITE_DONE)
		ret = 0;
out:
	if (ret == -1)
		st_err(err, errlen, "idempotency record %s: %s", r->request_id,
		    sqlite3_errmsg(s->db));
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int
flows_idem_set_cert(struct flows_store *s, const char *request_id, const uint8_t *cert,
    size_t cert_len, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int ret = -1;

	pthread_mutex_lock(&s->lock);
	if (sqlite3_prepare_v2(s->db, "UPDATE idem SET cert = ? WHERE request_id = ?", -1, &st,
	    NULL) == SQLITE_OK) {
		sqlite3_bind_blob(st, 1, cert, (int)cert_len, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, request_id, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_DONE && sqlite3_changes(s->db) == 1)
			ret = 0;
	}
	if (ret == -1)
		st_err(err, errlen, "idempotency record %s: storing the certificate: %s",
		    request_id, sqlite3_errmsg(s->db));
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

static uint8_t *
blob_dup(sqlite3_stmt *st, int col, size_t *len)
{
	const void *b = sqlite3_column_blob(st, col);
	int n = sqlite3_column_bytes(st, col);
	uint8_t *d;

	*len = 0;
	if (b == NULL || n <= 0)
		return NULL;
	d = malloc((size_t)n);
	if (d != NULL) {
		memcpy(d, b, (size_t)n);
		*len = (size_t)n;
	}
	return d;
}

int
flows_idem_get(struct flows_store *s, const char *request_id, struct flows_idem *r, char *err,
    size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int ret = -1, rc;

	memset(r, 0, sizeof(*r));
	pthread_mutex_lock(&s->lock);
	if (sqlite3_prepare_v2(s->db, "SELECT csr, enc_key, cert, created FROM idem WHERE "
	    "request_id = ?", -1, &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_text(st, 1, request_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		ret = 0;
		goto out;
	}
	if (rc != SQLITE_ROW)
		goto out;
	snprintf(r->request_id, sizeof(r->request_id), "%s", request_id);
	r->csr = blob_dup(st, 0, &r->csr_len);
	r->enc_key = blob_dup(st, 1, &r->enc_key_len);
	r->cert = blob_dup(st, 2, &r->cert_len);
	r->created = (time_t)sqlite3_column_int64(st, 3);
	if (r->csr == NULL || r->enc_key == NULL) {
		flows_idem_clear(r);
		goto out;
	}
	ret = 1;
out:
	if (ret == -1)
		st_err(err, errlen, "idempotency record %s: %s", request_id, sqlite3_errmsg(s->db));
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int
flows_idem_remove(struct flows_store *s, const char *request_id, char *err, size_t errlen)
{
	return exec_id(s, "DELETE FROM idem WHERE request_id = ?", request_id, err, errlen);
}

size_t
flows_idem_count(struct flows_store *s)
{
	return count_of(s, "SELECT count(*) FROM idem");
}

int
flows_idem_prune(struct flows_store *s, time_t before, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int ret = -1;

	pthread_mutex_lock(&s->lock);
	if (sqlite3_prepare_v2(s->db, "DELETE FROM idem WHERE created < ?", -1, &st,
	    NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)before);
		if (sqlite3_step(st) == SQLITE_DONE)
			ret = sqlite3_changes(s->db);
	}
	if (ret == -1)
		st_err(err, errlen, "pruning idempotency records: %s", sqlite3_errmsg(s->db));
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	return ret;
}
