/*
 * The local CA (src/ca/): certconn as the certificate authority, with its key in the token.
 *
 * The CA signs through an EVP_PKEY it is given: in certconnd's net role the keyref key of
 * the ca role, whose signatures keys makes only for certificates and CRLs within the CA's
 * signing policy (docs/keys.md); in unit tests a plain key. Without a key (certconnctl) the
 * CA can read and change its store (list, show, revoke) but not sign: net notices a
 * revocation and signs the new CRL (cc_ca_crl_refresh).
 *
 * The store is one SQLite database (WAL, a schema_version table, migrations in ca_db.c):
 * issued certificates, revocations, CRLs and, for src/scep, transactions, one-time
 * challenges and seen nonces. Serials are 128 random bits (unique across instances without
 * coordination; a collision in this store is detected and retried).
 *
 * Threads: every function may be called from any thread; store access is serialised inside,
 * signing is not (several signatures through keys may run at once).
 *
 * Error convention: 0/-1 (or NULL) with a one-line reason in the caller's err buffer.
 */
#ifndef CERTCONN_CA_H
#define CERTCONN_CA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/types.h>
#include <openssl/x509.h>

struct cc_iss_result;
struct sqlite3;

#define CC_CA_SCHEMA_VERSION 1
#define CC_CA_SERIAL_HEX_MAX 48      /* upper-case hex of a serial, with the NUL */

struct cc_ca;

struct cc_ca_opts {
	const char *name;            /* the CA's name ([a-z0-9-]); /crl/<name>.crl */
	const char *db_path;         /* the SQLite file (created when missing) */
	const char *base_url;        /* CDP/AIA base ("http://host:port"); NULL: no CDP/AIA */
	bool cdp;                    /* add a CRL distribution point (needs base_url) */
	bool aia;                    /* add caIssuers AIA (needs base_url) */
	uint32_t crl_days;           /* CRL lifetime */
	X509 *cert;                  /* the CA certificate (a reference is taken) */
	EVP_PKEY *key;               /* the CA signing key (a reference is taken); NULL: no
	                              * signing (certconnctl) */
	OSSL_LIB_CTX *libctx;        /* for signing; NULL: the default context */
	bool read_only;              /* open the store read-only (certconnctl ca list/show) */
};

/* Opens (creating or migrating) the store. *out NULL on failure. */
int cc_ca_open(const struct cc_ca_opts *o, struct cc_ca **out, char *err, size_t errlen);
void cc_ca_close(struct cc_ca *ca);

X509 *cc_ca_cert(const struct cc_ca *ca);          /* borrowed */
const char *cc_ca_name(const struct cc_ca *ca);

/*
 * Issues a certificate with the fields of r (from cc_issuance_apply): random serial, issuer
 * and validity clamped to the CA's notAfter, basicConstraints CA:FALSE, key identifiers,
 * CDP and AIA, signed with SHA-256, and records it (profile and txid may be NULL).
 * withheld: recorded as not yet handed out (see cc_ca_set_withheld). *out: the certificate.
 */
int cc_ca_issue(struct cc_ca *ca, const struct cc_iss_result *r, const char *profile,
    const char *txid, bool withheld, X509 **out, char *err, size_t errlen);

/* A certificate for an RA key: keyUsage ku (KU_* bits; digitalSignature + keyEncipherment
 * for an RA with one key), no EKU. */
int cc_ca_issue_ra(struct cc_ca *ca, EVP_PKEY *pub, const X509_NAME *subject, uint32_t days,
    uint32_t ku, X509 **out, char *err, size_t errlen);

/* Marks a recorded certificate handed out (withheld false) or not. */
int cc_ca_set_withheld(struct cc_ca *ca, const char *serial_hex, bool withheld, char *err,
    size_t errlen);

/* ---- lookups ---- */

enum cc_ca_cert_state {
	CC_CA_CERT_VALID = 0,
	CC_CA_CERT_WITHHELD = 1,     /* issued, not handed out (a service notification failed) */
	CC_CA_CERT_REVOKED = 2,
	CC_CA_CERT_EXPIRED = 3,      /* reported only; not stored */
};

struct cc_ca_cert_info {
	char serial[CC_CA_SERIAL_HEX_MAX];
	char subject[512];           /* RFC 2253 */
	char profile[64];
	char txid[256];
	char sha1[41];               /* thumbprint, lower-case hex */
	time_t not_before, not_after, issued_at, revoked_at;
	int reason;                  /* CRL reason code when revoked, else -1 */
	enum cc_ca_cert_state state; /* EXPIRED when valid or withheld but past notAfter */
};

/* Normalises a serial as written by a user ("0a:1b", "0x0A1B", "a1b") to upper-case hex
 * without leading zeros. 0/-1. */
int cc_ca_serial_norm(const char *in, char out[CC_CA_SERIAL_HEX_MAX]);
/* The hex of an ASN1_INTEGER serial, as stored. 0/-1. */
int cc_ca_serial_hex(const ASN1_INTEGER *s, char out[CC_CA_SERIAL_HEX_MAX]);

/* 1 found (info and, when cert is not NULL, the certificate filled), 0 not found, -1 error. */
int cc_ca_find(struct cc_ca *ca, const char *serial_hex, struct cc_ca_cert_info *info,
    X509 **cert, char *err, size_t errlen);
/*
 * The newest valid (not revoked, not withheld, not expired at now) certificate with this
 * exact subject and public key, if any: what a repeated request gets back. 1/0/-1.
 */
int cc_ca_find_by_subject_key(struct cc_ca *ca, const X509_NAME *subject, EVP_PKEY *key,
    time_t now, X509 **cert, char *err, size_t errlen);

/* Calls fn for each certificate, newest first, at most limit (0: all). 0/-1. */
typedef int (*cc_ca_list_fn)(const struct cc_ca_cert_info *info, void *arg);
int cc_ca_list(struct cc_ca *ca, size_t limit, cc_ca_list_fn fn, void *arg, char *err,
    size_t errlen);

/* ---- revocation and CRLs ---- */

/*
 * Revokes a certificate (reason: a CRLReason code 0..10 but 7). -1 when unknown or already
 * revoked (err says which). The revocation generation goes up, so the next
 * cc_ca_crl_refresh signs a new CRL.
 */
int cc_ca_revoke(struct cc_ca *ca, const char *serial_hex, int reason, char *err,
    size_t errlen);
/* Reason code of a name ("keyCompromise", "superseded", ...); -1 when unknown. */
int cc_ca_reason_from_name(const char *name);
const char *cc_ca_reason_name(int code);

/*
 * Signs a new CRL when there is none, when revocations happened since the last one, when
 * half its lifetime is gone, or when force. 1 when a new one was signed, 0 when the last
 * one is still good, -1 on error. Needs the key.
 */
int cc_ca_crl_refresh(struct cc_ca *ca, bool force, time_t now, char *err, size_t errlen);
/* The newest CRL (DER, malloc'd) and its number. 1/0 (none yet)/-1. */
int cc_ca_crl_latest(struct cc_ca *ca, uint8_t **der, size_t *len, uint64_t *number,
    char *err, size_t errlen);
/* The store's revocation generation (goes up with each revocation) and the generation
 * the newest CRL covers. 0/-1. */
int cc_ca_revocation_gen(struct cc_ca *ca, uint64_t *gen, uint64_t *crl_gen, char *err,
    size_t errlen);

/* ---- batches: one fsync for the writes of one request ---- */

/*
 * Between cc_ca_batch_begin and cc_ca_batch_end, this thread's commits on the store (the
 * CA's own and src/scep's through cc_ca_db_lock) are still atomic and visible to every
 * other request at once, but not fsync'd one by one (synchronous = NORMAL for them, in WAL
 * mode). cc_ca_batch_sync makes every one of them durable with one fsync of the WAL;
 * cc_ca_batch_end does that when anything was committed since, and ends the batch. So: call
 * cc_ca_batch_sync before telling anyone outside the store about what was written (a
 * notification to the service), and cc_ca_batch_end before the reply that hands anything
 * out. A power loss before the sync loses only writes nobody was told of. Other threads'
 * commits stay fsync'd each. One batch per thread at a time (a nested begin is ignored);
 * no batch on a read-only or non-WAL store. The sync functions return 0, or -1 when the WAL
 * could not be synced (nothing written in the batch may then be reported).
 */
void cc_ca_batch_begin(struct cc_ca *ca);
int cc_ca_batch_sync(struct cc_ca *ca, char *err, size_t errlen);
int cc_ca_batch_end(struct cc_ca *ca, char *err, size_t errlen);

/* ---- the store, for src/scep's tables ---- */

/* Locks the store and gives its handle; cc_ca_db_unlock releases it. */
struct sqlite3 *cc_ca_db_lock(struct cc_ca *ca);
void cc_ca_db_unlock(struct cc_ca *ca);

/*
 * A statement on the store prepared once and kept until cc_ca_close, for a caller holding
 * cc_ca_db_lock: slot (< CC_CA_DB_STMT_SLOTS) is the caller's own number for sql, always the
 * same text for the same slot (the SCEP store uses 0-7). Give it back with
 * cc_ca_db_stmt_done (reset, bindings cleared: they may point to the caller's stack) before
 * unlocking. NULL when it cannot be prepared (sqlite3_errmsg says why). Preparing costs
 * more than running the statements of an enrollment.
 */
#define CC_CA_DB_STMT_SLOTS 16
struct sqlite3_stmt;
struct sqlite3_stmt *cc_ca_db_stmt(struct cc_ca *ca, unsigned slot, const char *sql);
void cc_ca_db_stmt_done(struct sqlite3_stmt *st);

#endif
