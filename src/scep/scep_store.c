/*
 * SCEP's tables in the CA's store (created by src/ca/ca_db.c's migrations): transactions,
 * seen senderNonces and one-time challenges. Each function takes the store's lock for its
 * whole work; multi-statement changes run in an IMMEDIATE transaction, so certconnctl (another
 * process on the same file) and net never interleave.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <sqlite3.h>

#include "certconn/ca.h"
#include "certconn/issuance.h"
#include "certconn/scep.h"

static int
st_err(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int
st_err(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && len > 0) {
		va_start(ap, fmt);
		vsnprintf(err, len, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static int
db_err(sqlite3 *db, char *err, size_t len, const char *what)
{
	return st_err(err, len, "SCEP store: %s: %s", what, sqlite3_errmsg(db));
}

const char *
scep_txn_state_name(int state)
{
	static const char *const names[] = { "pending", "approved", "rejected", "issued",
		"failed", "notifying" };

	return state >= 0 && state < (int)(sizeof(names) / sizeof(names[0])) ? names[state] :
	    "unknown";
}

/* ---- transactions ---- */

/* cc_ca_db_stmt slots: the statements every enrollment runs, prepared once. */
enum {
	STMT_TXN_GET,
	STMT_TXN_INSERT,
	STMT_TXN_REPLACE,
	STMT_TXN_MOVE,
	STMT_NONCE_FORGET,
	STMT_NONCE_ADD,
};

#define TXN_COLS "txid, profile, state, subject, spki_sha256, signer_spki, created, updated, " \
	"serial, reason, csr"

static void
txt(sqlite3_stmt *st, int i, char *buf, size_t len)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	snprintf(buf, len, "%s", t != NULL ? (const char *)t : "");
}

static void
blob32(sqlite3_stmt *st, int i, uint8_t out[32])
{
	memset(out, 0, 32);
	if (sqlite3_column_bytes(st, i) == 32)
		memcpy(out, sqlite3_column_blob(st, i), 32);
}

static int
txn_row(sqlite3_stmt *st, struct scep_txn *t, int with_csr)
{
	memset(t, 0, sizeof(*t));
	txt(st, 0, t->txid, sizeof(t->txid));
	txt(st, 1, t->profile, sizeof(t->profile));
	t->state = sqlite3_column_int(st, 2);
	txt(st, 3, t->subject, sizeof(t->subject));
	blob32(st, 4, t->spki);
	blob32(st, 5, t->signer_spki);
	t->created = (time_t)sqlite3_column_int64(st, 6);
	t->updated = (time_t)sqlite3_column_int64(st, 7);
	txt(st, 8, t->serial, sizeof(t->serial));
	txt(st, 9, t->reason, sizeof(t->reason));
	if (with_csr && sqlite3_column_bytes(st, 10) > 0) {
		t->csr_len = (size_t)sqlite3_column_bytes(st, 10);
		t->csr = malloc(t->csr_len);
		if (t->csr == NULL)
			return -1;
		memcpy(t->csr, sqlite3_column_blob(st, 10), t->csr_len);
	}
	return 0;
}

int
scep_txn_get(struct cc_ca *ca, const char *profile, const char *txid, struct scep_txn *t,
    char *err, size_t errlen)
{
	sqlite3 *db = cc_ca_db_lock(ca);
	sqlite3_stmt *st = NULL;
	int r = -1, s;

	memset(t, 0, sizeof(*t));
	st = cc_ca_db_stmt(ca, STMT_TXN_GET, "SELECT " TXN_COLS " FROM scep_txn WHERE "
	    "profile = ? AND txid = ?");
	if (st == NULL) {
		db_err(db, err, errlen, "reading a transaction");
		goto out;
	}
	sqlite3_bind_text(st, 1, profile, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, txid, -1, SQLITE_STATIC);
	s = sqlite3_step(st);
	if (s == SQLITE_DONE)
		r = 0;
	else if (s != SQLITE_ROW)
		db_err(db, err, errlen, "reading a transaction");
	else if (txn_row(st, t, 1) == -1)
		st_err(err, errlen, "out of memory");
	else
		r = 1;
out:
	cc_ca_db_stmt_done(st);
	cc_ca_db_unlock(ca);
	return r;
}

int
scep_txn_find(struct cc_ca *ca, const char *txid, struct scep_txn *t, char *err,
    size_t errlen)
{
	sqlite3 *db = cc_ca_db_lock(ca);
	sqlite3_stmt *st = NULL;
	int r = -1, s, n = 0;

	memset(t, 0, sizeof(*t));
	if (sqlite3_prepare_v2(db, "SELECT " TXN_COLS " FROM scep_txn WHERE txid = ? LIMIT 2",
	    -1, &st, NULL) != SQLITE_OK) {
		db_err(db, err, errlen, "reading a transaction");
		goto out;
	}
	sqlite3_bind_text(st, 1, txid, -1, SQLITE_STATIC);
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		if (n++ == 0 && txn_row(st, t, 0) == -1) {
			st_err(err, errlen, "out of memory");
			goto out;
		}
	}
	if (s != SQLITE_DONE) {
		db_err(db, err, errlen, "reading a transaction");
		goto out;
	}
	if (n > 1) {
		st_err(err, errlen, "transaction %s exists in several profiles: name the profile",
		    txid);
		goto out;
	}
	r = n;
out:
	sqlite3_finalize(st);
	cc_ca_db_unlock(ca);
	return r;
}

int
scep_txn_insert(struct cc_ca *ca, const struct scep_txn *t, bool replace, char *err,
    size_t errlen)
{
	sqlite3 *db = cc_ca_db_lock(ca);
	sqlite3_stmt *st = NULL;
	int r = -1;

	st = replace ? cc_ca_db_stmt(ca, STMT_TXN_REPLACE, "INSERT OR REPLACE INTO scep_txn "
	    "(txid, profile, state, subject, spki_sha256, signer_spki, created, updated, serial, "
	    "reason, csr) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)") :
	    cc_ca_db_stmt(ca, STMT_TXN_INSERT, "INSERT INTO scep_txn (txid, profile, state, "
	    "subject, spki_sha256, signer_spki, created, updated, serial, reason, csr) VALUES "
	    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
	if (st == NULL) {
		db_err(db, err, errlen, "recording a transaction");
		goto out;
	}
	sqlite3_bind_text(st, 1, t->txid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, t->profile, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, t->state);
	sqlite3_bind_text(st, 4, t->subject, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 5, t->spki, 32, SQLITE_STATIC);
	sqlite3_bind_blob(st, 6, t->signer_spki, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, t->created);
	sqlite3_bind_int64(st, 8, t->updated);
	if (t->serial[0] != '\0')
		sqlite3_bind_text(st, 9, t->serial, -1, SQLITE_STATIC);
	if (t->reason[0] != '\0')
		sqlite3_bind_text(st, 10, t->reason, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 11, t->csr, (int)t->csr_len, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		if (sqlite3_extended_errcode(db) == SQLITE_CONSTRAINT_PRIMARYKEY)
			st_err(err, errlen, "transaction %s already exists", t->txid);
		else
			db_err(db, err, errlen, "recording a transaction");
		goto out;
	}
	r = 0;
out:
	cc_ca_db_stmt_done(st);
	cc_ca_db_unlock(ca);
	return r;
}

int
scep_txn_move(struct cc_ca *ca, const char *profile, const char *txid, int from, int state,
    const char *serial, const char *reason, char *err, size_t errlen)
{
	sqlite3 *db = cc_ca_db_lock(ca);
	sqlite3_stmt *st = NULL;
	int r = -1;

	st = cc_ca_db_stmt(ca, STMT_TXN_MOVE, "UPDATE scep_txn SET state = ?, updated = ?, "
	    "serial = COALESCE(?, serial), reason = COALESCE(?, reason) WHERE profile = ? AND "
	    "txid = ? AND (? < 0 OR state = ?)");
	if (st == NULL) {
		db_err(db, err, errlen, "updating a transaction");
		goto out;
	}
	sqlite3_bind_int(st, 1, state);
	sqlite3_bind_int64(st, 2, time(NULL));
	if (serial != NULL)
		sqlite3_bind_text(st, 3, serial, -1, SQLITE_STATIC);
	if (reason != NULL)
		sqlite3_bind_text(st, 4, reason, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, profile, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, txid, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 7, from);
	sqlite3_bind_int(st, 8, from);
	if (sqlite3_step(st) != SQLITE_DONE) {
		db_err(db, err, errlen, "updating a transaction");
		goto out;
	}
	r = sqlite3_changes(db) == 1 ? 1 : 0;
out:
	cc_ca_db_stmt_done(st);
	cc_ca_db_unlock(ca);
	return r;
}

int
scep_txn_list(struct cc_ca *ca, int state, scep_txn_fn fn, void *arg, char *err,
    size_t errlen)
{
	sqlite3 *db = cc_ca_db_lock(ca);
	sqlite3_stmt *st = NULL;
	struct scep_txn t;
	int r = -1, s;

	if (sqlite3_prepare_v2(db, "SELECT " TXN_COLS " FROM scep_txn WHERE (? < 0 OR state = ?) "
	    "ORDER BY created DESC, rowid DESC", -1, &st, NULL) != SQLITE_OK) {
		db_err(db, err, errlen, "listing transactions");
		goto out;
	}
	sqlite3_bind_int(st, 1, state);
	sqlite3_bind_int(st, 2, state);
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		txn_row(st, &t, 0);
		if (fn(&t, arg) == -1)
			break;
	}
	if (s != SQLITE_DONE && s != SQLITE_ROW) {
		db_err(db, err, errlen, "listing transactions");
		goto out;
	}
	r = 0;
out:
	sqlite3_finalize(st);
	cc_ca_db_unlock(ca);
	return r;
}

/* ---- nonces ---- */

int
scep_nonce_check(struct cc_ca *ca, const uint8_t nonce[SCEP_NONCE_LEN], time_t now,
    uint32_t window_s)
{
	sqlite3 *db = cc_ca_db_lock(ca);
	sqlite3_stmt *st = NULL;
	uint8_t r8;
	int r = -1;

	/* Forget nonces older than the window now and then (one request in 64). */
	if (RAND_bytes(&r8, 1) == 1 && (r8 & 63) == 0 &&
	    (st = cc_ca_db_stmt(ca, STMT_NONCE_FORGET, "DELETE FROM scep_nonce WHERE seen < ?")) !=
	    NULL) {
		sqlite3_bind_int64(st, 1, now - (time_t)window_s);
		(void)sqlite3_step(st);
	}
	cc_ca_db_stmt_done(st);
	st = cc_ca_db_stmt(ca, STMT_NONCE_ADD, "INSERT INTO scep_nonce (nonce, seen) VALUES "
	    "(?, ?) ON CONFLICT (nonce) DO UPDATE SET seen = excluded.seen WHERE seen < ?");
	if (st == NULL)
		goto out;
	sqlite3_bind_blob(st, 1, nonce, SCEP_NONCE_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now);
	sqlite3_bind_int64(st, 3, now - (time_t)window_s);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto out;
	/* Inserted, or an entry older than the window replaced: fresh. Otherwise a replay. */
	r = sqlite3_changes(db) == 1 ? 0 : 1;
out:
	cc_ca_db_stmt_done(st);
	cc_ca_db_unlock(ca);
	return r;
}

/* ---- one-time challenges ---- */

static int
challenge_hash(const char *c, uint8_t md[32])
{
	return EVP_Digest(c, strlen(c), md, NULL, EVP_sha256(), NULL) == 1 ? 0 : -1;
}

int
scep_challenge_new(struct cc_ca *ca, const char *profile, const char *subject,
    uint32_t ttl_s, time_t now, char out[SCEP_CHALLENGE_LEN + 1], char *err, size_t errlen)
{
	uint8_t rnd[SCEP_CHALLENGE_LEN / 2], md[32];
	X509_NAME *nm = NULL;
	char why[256];
	sqlite3 *db;
	sqlite3_stmt *st = NULL;
	int r = -1;

	out[0] = '\0';
	if (subject != NULL && (strchr(subject, '{') != NULL ||
	    cc_issuance_template_build(subject, NULL, &nm, why, sizeof(why)) == -1))
		return st_err(err, errlen, "subject \"%s\": expected a name such as \"CN=dev1,"
		    "O=Example\"", subject);
	X509_NAME_free(nm);
	if (ttl_s == 0 || RAND_bytes(rnd, sizeof(rnd)) != 1)
		return st_err(err, errlen, "cannot make a challenge");
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(out + 2 * i, 3, "%02x", rnd[i]);
	OPENSSL_cleanse(rnd, sizeof(rnd));
	if (challenge_hash(out, md) == -1)
		return st_err(err, errlen, "cannot hash the challenge");
	db = cc_ca_db_lock(ca);
	if (sqlite3_prepare_v2(db, "INSERT INTO scep_challenge (hash, profile, subject, created, "
	    "expires) VALUES (?, ?, ?, ?, ?)", -1, &st, NULL) != SQLITE_OK) {
		db_err(db, err, errlen, "recording a challenge");
		goto out;
	}
	sqlite3_bind_blob(st, 1, md, sizeof(md), SQLITE_STATIC);
	sqlite3_bind_text(st, 2, profile, -1, SQLITE_STATIC);
	if (subject != NULL)
		sqlite3_bind_text(st, 3, subject, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, now);
	sqlite3_bind_int64(st, 5, now + (time_t)ttl_s);
	if (sqlite3_step(st) != SQLITE_DONE) {
		db_err(db, err, errlen, "recording a challenge");
		goto out;
	}
	r = 0;
out:
	if (r == -1)
		OPENSSL_cleanse(out, SCEP_CHALLENGE_LEN + 1);
	sqlite3_finalize(st);
	cc_ca_db_unlock(ca);
	return r;
}

int
scep_challenge_consume(struct cc_ca *ca, const char *profile, const char *challenge,
    const X509_NAME *req_subject, const char *txid, time_t now, char *err, size_t errlen)
{
	uint8_t md[32];
	char prof[64] = "", subj[512] = "", why[256];
	X509_NAME *nm = NULL;
	sqlite3 *db;
	sqlite3_stmt *st = NULL;
	int r = -1, s, has_subject;
	time_t expires;

	if (challenge == NULL || strlen(challenge) != SCEP_CHALLENGE_LEN)
		return st_err(err, errlen, "not a one-time challenge of this connector");
	if (challenge_hash(challenge, md) == -1)
		return st_err(err, errlen, "cannot hash the challenge");
	db = cc_ca_db_lock(ca);
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		db_err(db, err, errlen, "checking a challenge");
		cc_ca_db_unlock(ca);
		return -1;
	}
	if (sqlite3_prepare_v2(db, "SELECT profile, subject, expires, used_at FROM scep_challenge "
	    "WHERE hash = ?", -1, &st, NULL) != SQLITE_OK) {
		db_err(db, err, errlen, "checking a challenge");
		goto out;
	}
	sqlite3_bind_blob(st, 1, md, sizeof(md), SQLITE_STATIC);
	s = sqlite3_step(st);
	if (s == SQLITE_DONE) {
		st_err(err, errlen, "unknown challenge");
		goto out;
	}
	if (s != SQLITE_ROW) {
		db_err(db, err, errlen, "checking a challenge");
		goto out;
	}
	txt(st, 0, prof, sizeof(prof));
	has_subject = sqlite3_column_type(st, 1) != SQLITE_NULL;
	txt(st, 1, subj, sizeof(subj));
	expires = (time_t)sqlite3_column_int64(st, 2);
	if (sqlite3_column_type(st, 3) != SQLITE_NULL) {
		st_err(err, errlen, "the challenge was already used");
		goto out;
	}
	if (now >= expires) {
		st_err(err, errlen, "the challenge has expired");
		goto out;
	}
	if (strcmp(prof, profile) != 0) {
		st_err(err, errlen, "the challenge is for profile %s", prof);
		goto out;
	}
	if (has_subject) {
		if (cc_issuance_template_build(subj, NULL, &nm, why, sizeof(why)) == -1 ||
		    req_subject == NULL || X509_NAME_cmp(nm, req_subject) != 0) {
			st_err(err, errlen, "the request's subject is not the one the challenge is for");
			goto out;
		}
	}
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(db, "UPDATE scep_challenge SET used_at = ?, txid = ? WHERE "
	    "hash = ? AND used_at IS NULL", -1, &st, NULL) != SQLITE_OK) {
		db_err(db, err, errlen, "using a challenge");
		goto out;
	}
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_text(st, 2, txid, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, md, sizeof(md), SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE || sqlite3_changes(db) != 1) {
		db_err(db, err, errlen, "using a challenge");
		goto out;
	}
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		db_err(db, err, errlen, "using a challenge");
		goto out;
	}
	r = 0;
out:
	if (r == -1)
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	X509_NAME_free(nm);
	sqlite3_finalize(st);
	cc_ca_db_unlock(ca);
	return r;
}
