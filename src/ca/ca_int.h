/* Internals of the local CA (src/ca/), shared by its files. */
#ifndef CC_CA_INT_H
#define CC_CA_INT_H

#include <pthread.h>
#include <stdbool.h>

#include <sqlite3.h>

#include "certconn/ca.h"
#include "certconn/config_ca.h"

struct cc_ca {
	char name[CC_CA_NAME_MAX];
	char *cdp_url;               /* <base>/crl/<name>.crl, or NULL */
	char *aia_url;               /* <base>/ca/<name>.crt, or NULL */
	uint32_t crl_days;
	X509 *cert;
	EVP_PKEY *key;               /* NULL: cannot sign */
	OSSL_LIB_CTX *libctx;
	sqlite3 *db;
	pthread_mutex_t lock;        /* every use of db (ca_lock, cc_ca_db_lock) */
	bool wal;                    /* the store is in WAL mode: batches may defer fsyncs */
	bool sync_normal;            /* db is at synchronous = NORMAL now (a batch's commit) */
	sqlite3_int64 changes_at_lock; /* sqlite3_total_changes64 when the lock was taken */
	pthread_mutex_t crl_lock;    /* one CRL signing at a time */
	/* The statements every issuance runs, prepared once (under lock; see ca_stmt). */
	sqlite3_stmt *st_serial_exists;
	sqlite3_stmt *st_insert_cert;
	sqlite3_stmt *db_stmts[CC_CA_DB_STMT_SLOTS];  /* cc_ca_db_stmt's */
};

int ca_err(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int ca_db_err(sqlite3 *db, char *err, size_t len, const char *what);
bool ca_db_is_wal(sqlite3 *db);
int ca_db_open(const char *path, bool read_only, sqlite3 **out, char *err, size_t errlen);

#endif
