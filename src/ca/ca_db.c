/*
 * The local CA's store: one SQLite database in WAL mode. The schema is versioned: the
 * schema_version table holds the version the file is at, and migrations[i] takes a file
 * from version i to i + 1, in one transaction. A file newer than this build is refused.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "ca_int.h"

static const char *const migrations[] = {
	/* 0 -> 1 */
	"CREATE TABLE schema_version (version INTEGER NOT NULL);"
	"INSERT INTO schema_version VALUES (0);"
	"CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
	"INSERT INTO meta VALUES ('revocation_gen', 0);"
	/* state: 0 valid (handed out), 1 withheld; revocation in revoked_at/reason */
	"CREATE TABLE certs ("
	"  serial TEXT PRIMARY KEY,"
	"  subject TEXT NOT NULL,"
	"  spki_sha256 BLOB NOT NULL,"
	"  not_before INTEGER NOT NULL,"
	"  not_after INTEGER NOT NULL,"
	"  issued_at INTEGER NOT NULL,"
	"  profile TEXT,"
	"  txid TEXT,"
	"  sha1 TEXT NOT NULL,"
	"  state INTEGER NOT NULL DEFAULT 0,"
	"  revoked_at INTEGER,"
	"  reason INTEGER,"
	"  der BLOB NOT NULL);"
	"CREATE INDEX certs_subject ON certs (subject, spki_sha256);"
	"CREATE INDEX certs_issued ON certs (issued_at);"
	"CREATE INDEX certs_revoked ON certs (revoked_at) WHERE revoked_at IS NOT NULL;"
	"CREATE TABLE crls ("
	"  number INTEGER PRIMARY KEY,"
	"  this_update INTEGER NOT NULL,"
	"  next_update INTEGER NOT NULL,"
	"  revocation_gen INTEGER NOT NULL,"
	"  der BLOB NOT NULL);"
	/* SCEP (src/scep/scep_store.c) */
	"CREATE TABLE scep_txn ("
	"  txid TEXT NOT NULL,"
	"  profile TEXT NOT NULL,"
	"  state INTEGER NOT NULL,"
	"  subject TEXT NOT NULL,"
	"  spki_sha256 BLOB NOT NULL,"
	"  signer_spki BLOB NOT NULL,"
	"  csr BLOB NOT NULL,"
	"  created INTEGER NOT NULL,"
	"  updated INTEGER NOT NULL,"
	"  serial TEXT,"
	"  reason TEXT,"
	"  PRIMARY KEY (profile, txid));"
	"CREATE INDEX scep_txn_state ON scep_txn (state);"
	"CREATE TABLE scep_nonce (nonce BLOB PRIMARY KEY, seen INTEGER NOT NULL);"
	"CREATE INDEX scep_nonce_seen ON scep_nonce (seen);"
	"CREATE TABLE scep_challenge ("
	"  hash BLOB PRIMARY KEY,"
	"  profile TEXT NOT NULL,"
	"  subject TEXT,"
	"  created INTEGER NOT NULL,"
	"  expires INTEGER NOT NULL,"
	"  used_at INTEGER,"
	"  txid TEXT);",
};
#define NMIGRATIONS (sizeof(migrations) / sizeof(migrations[0]))

int
ca_err(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && len > 0) {
		va_start(ap, fmt);
		vsnprintf(err, len, fmt, ap);
		va_end(ap);
	}
	return -1;
}

int
ca_db_err(sqlite3 *db, char *err, size_t len, const char *what)
{
	return ca_err(err, len, "CA store: %s: %s", what, db != NULL ? sqlite3_errmsg(db) :
	    "no database");
}

static int
schema_version(sqlite3 *db, int *v)
{
	sqlite3_stmt *st = NULL;
	int r;

	*v = 0;
	r = sqlite3_prepare_v2(db, "SELECT name FROM sqlite_master WHERE type = 'table' AND "
	    "name = 'schema_version'", -1, &st, NULL);
	if (r != SQLITE_OK)
		return -1;
	r = sqlite3_step(st);
	sqlite3_finalize(st);
	if (r == SQLITE_DONE)
		return 0;
	if (r != SQLITE_ROW)
		return -1;
	if (sqlite3_prepare_v2(db, "SELECT version FROM schema_version", -1, &st, NULL) !=
	    SQLITE_OK)
		return -1;
	r = sqlite3_step(st);
	if (r == SQLITE_ROW)
		*v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return r == SQLITE_ROW ? 0 : -1;
}

static int
migrate(sqlite3 *db, char *err, size_t errlen)
{
	char sql[64];
	int v;

	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return ca_db_err(db, err, errlen, "cannot lock the database");
	if (schema_version(db, &v) == -1) {
		ca_db_err(db, err, errlen, "reading the schema version");
		goto fail;
	}
	if (v > (int)NMIGRATIONS || v < 0) {
		ca_err(err, errlen, "CA store: schema version %d is newer than this build (%d)", v,
		    (int)NMIGRATIONS);
		goto fail;
	}
	for (; v < (int)NMIGRATIONS; v++) {
		if (sqlite3_exec(db, migrations[v], NULL, NULL, NULL) != SQLITE_OK) {
			ca_db_err(db, err, errlen, "migrating the schema");
			goto fail;
		}
		snprintf(sql, sizeof(sql), "UPDATE schema_version SET version = %d", v + 1);
		if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
			ca_db_err(db, err, errlen, "migrating the schema");
			goto fail;
		}
	}
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		ca_db_err(db, err, errlen, "migrating the schema");
		goto fail;
	}
	return 0;
fail:
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/* Is the store's journal the WAL (it may not be on a file system without shared memory)? */
bool
ca_db_is_wal(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	bool wal = false;

	if (sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
		wal = strcmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
	sqlite3_finalize(st);
	return wal;
}

int
ca_db_open(const char *path, bool read_only, sqlite3 **out, char *err, size_t errlen)
{
	sqlite3 *db = NULL;
	int flags = SQLITE_OPEN_FULLMUTEX | (read_only ? SQLITE_OPEN_READONLY :
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
	int v;

	*out = NULL;
	if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
		ca_err(err, errlen, "CA store %s: %s", path, db != NULL ? sqlite3_errmsg(db) :
		    "cannot open");
		sqlite3_close(db);
		return -1;
	}
	sqlite3_busy_timeout(db, 5000);
	sqlite3_extended_result_codes(db, 1);
	if (!read_only) {
		/* FULL: an issued certificate or a revocation is on disk before it is reported. */
		if (sqlite3_exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; "
		    "PRAGMA foreign_keys = ON", NULL, NULL, NULL) != SQLITE_OK ||
		    migrate(db, err, errlen) == -1) {
			if (err != NULL && err[0] == '\0')
				ca_db_err(db, err, errlen, path);
			sqlite3_close(db);
			return -1;
		}
	} else if (schema_version(db, &v) == -1 || v != (int)NMIGRATIONS) {
		ca_err(err, errlen, "CA store %s: schema version %d, this build needs %d", path, v,
		    (int)NMIGRATIONS);
		sqlite3_close(db);
		return -1;
	}
	*out = db;
	return 0;
}
