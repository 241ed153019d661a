/*
 * The local CA: issuance, revocation, CRLs (include/certconn/ca.h). Certificates and CRLs
 * are built with OpenSSL's structures and signed with the CA key given at open; in net
 * that is the keyref key of the ca role, so keys checks each TBS against the CA's signing
 * policy before it signs.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certconn/issuance.h"
#include "certconn/log.h"
#include "ca_int.h"

#define CA_CRLS_KEPT 10
#define CA_SERIAL_TRIES 4

/* "what: <OpenSSL's last error, with its data>" (keys' refusal text arrives as data). */
static int
ca_ossl_err(char *err, size_t len, const char *what)
{
	const char *data = NULL, *file, *func;
	unsigned long e, last = 0;
	char buf[256], lastdata[512] = "";
	int line, flags;

	while ((e = ERR_get_error_all(&file, &line, &func, &data, &flags)) != 0) {
		last = e;
		snprintf(lastdata, sizeof(lastdata), "%s",
		    data != NULL && (flags & ERR_TXT_STRING) ? data : "");
	}
	if (last == 0)
		return ca_err(err, len, "%s", what);
	ERR_error_string_n(last, buf, sizeof(buf));
	if (lastdata[0] != '\0')
		return ca_err(err, len, "%s: %s", what, lastdata);
	return ca_err(err, len, "%s: %s", what, buf);
}

/* ---- open / close ---- */

int
cc_ca_open(const struct cc_ca_opts *o, struct cc_ca **out, char *err, size_t errlen)
{
	struct cc_ca *ca;
	size_t n;

	*out = NULL;
	if (o->name == NULL || o->db_path == NULL || o->cert == NULL ||
	    strlen(o->name) >= sizeof(ca->name))
		return ca_err(err, errlen, "CA: name, database and certificate are needed");
	ca = calloc(1, sizeof(*ca));
	if (ca == NULL)
		return ca_err(err, errlen, "out of memory");
	pthread_mutex_init(&ca->lock, NULL);
	pthread_mutex_init(&ca->crl_lock, NULL);
	memcpy(ca->name, o->name, strlen(o->name) + 1);
	ca->crl_days = o->crl_days > 0 ? o->crl_days : 7;
	ca->libctx = o->libctx;
	if (o->base_url != NULL) {
		n = strlen(o->base_url) + strlen(o->name) + 16;
		if (o->cdp && (ca->cdp_url = malloc(n)) != NULL)
			snprintf(ca->cdp_url, n, "%s/crl/%s.crl", o->base_url, o->name);
		if (o->aia && (ca->aia_url = malloc(n)) != NULL)
			snprintf(ca->aia_url, n, "%s/ca/%s.crt", o->base_url, o->name);
		if ((o->cdp && ca->cdp_url == NULL) || (o->aia && ca->aia_url == NULL)) {
			cc_ca_close(ca);
			return ca_err(err, errlen, "out of memory");
		}
	}
	if (!X509_up_ref(o->cert) || (o->key != NULL && !EVP_PKEY_up_ref(o->key))) {
		cc_ca_close(ca);
		return ca_err(err, errlen, "out of memory");
	}
	ca->cert = o->cert;
	ca->key = o->key;
	if (ca_db_open(o->db_path, o->read_only, &ca->db, err, errlen) == -1) {
		cc_ca_close(ca);
		return -1;
	}
	/* ca_db_open asked for WAL and synchronous = FULL; batches rely on both */
	ca->wal = !o->read_only && ca_db_is_wal(ca->db);
	*out = ca;
	return 0;
}

void
cc_ca_close(struct cc_ca *ca)
{
	if (ca == NULL)
		return;
	sqlite3_finalize(ca->st_serial_exists);
	sqlite3_finalize(ca->st_insert_cert);
	for (size_t i = 0; i < CC_CA_DB_STMT_SLOTS; i++)
		sqlite3_finalize(ca->db_stmts[i]);
	if (ca->db != NULL)
		sqlite3_close(ca->db);
	X509_free(ca->cert);
	EVP_PKEY_free(ca->key);
	free(ca->cdp_url);
	free(ca->aia_url);
	pthread_mutex_destroy(&ca->lock);
	pthread_mutex_destroy(&ca->crl_lock);
	free(ca);
}

X509 *
cc_ca_cert(const struct cc_ca *ca)
{
	return ca->cert;
}

const char *
cc_ca_name(const struct cc_ca *ca)
{
	return ca->name;
}

/* ---- the store's lock, and batches (one fsync for the writes of one request) ---- */

/*
 * The batch this thread is in (cc_ca_batch_begin), and whether it committed anything that is
 * not yet fsync'd. Per thread: concurrent requests each have their own batch, and a thread
 * outside any batch (the tick, certconnctl's CA, flows) commits with synchronous = FULL.
 */
static _Thread_local struct cc_ca *batch_ca;
static _Thread_local bool batch_dirty;

/* Sets the connection's synchronous level; called with ca->lock held, between transactions. */
static int
ca_set_sync(struct cc_ca *ca, bool normal)
{
	if (ca->sync_normal == normal)
		return 0;
	if (sqlite3_exec(ca->db, normal ? "PRAGMA synchronous = NORMAL" :
	    "PRAGMA synchronous = FULL", NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	ca->sync_normal = normal;
	return 0;
}

/*
 * fsyncs the WAL: every transaction committed before it, with or without its own fsync, is
 * then durable (the WAL is one append-only file). Through the VFS of SQLite's own file
 * handle (SQLITE_FCNTL_JOURNAL_POINTER), with the flags SQLite itself uses for a WAL commit
 * at synchronous = FULL. Called with ca->lock held.
 */
static int
ca_wal_sync(struct cc_ca *ca)
{
	sqlite3_file *f = NULL;

	if (sqlite3_file_control(ca->db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &f) != SQLITE_OK)
		return -1;
	if (f == NULL || f->pMethods == NULL)
		return 0; /* no WAL open: nothing was written through this connection */
	return f->pMethods->xSync(f, SQLITE_SYNC_NORMAL) == SQLITE_OK ? 0 : -1;
}

/*
 * Every use of the store goes through here. A thread in a batch on this CA commits at
 * synchronous = NORMAL (no fsync; still atomic, and visible to everyone at once); any other
 * thread gets FULL back before it touches the store. The level is switched only when the
 * kind of user changes, so concurrent batches do not pay a PRAGMA each.
 */
static void
ca_lock(struct cc_ca *ca)
{
	pthread_mutex_lock(&ca->lock);
	if (ca->db == NULL)
		return;
	(void)ca_set_sync(ca, batch_ca == ca);
	ca->changes_at_lock = sqlite3_total_changes64(ca->db);
}

static void
ca_unlock(struct cc_ca *ca)
{
	bool changed = ca->db != NULL &&
	    sqlite3_total_changes64(ca->db) != ca->changes_at_lock;

	if (changed && batch_ca == ca)
		batch_dirty = true;
	else if (changed && ca->sync_normal && ca_wal_sync(ca) == -1)
		/* FULL could not be set back (out of memory): this commit is synced here instead;
		 * if even that fails, say so, as SQLite's own failed fsync would. */
		cc_log_err("CA store %s: a commit could not be synced to disk", ca->name);
	pthread_mutex_unlock(&ca->lock);
}

void
cc_ca_batch_begin(struct cc_ca *ca)
{
	/* A read-only store writes nothing; without WAL, NORMAL would not defer the fsyncs
	 * safely (a rollback journal is synced differently), so there is no batch there. */
	if (ca == NULL || !ca->wal || batch_ca != NULL)
		return;
	batch_ca = ca;
	batch_dirty = false;
}

int
cc_ca_batch_sync(struct cc_ca *ca, char *err, size_t errlen)
{
	int r = 0;

	if (ca == NULL || batch_ca != ca || !batch_dirty)
		return 0;
	pthread_mutex_lock(&ca->lock);
	if (ca_wal_sync(ca) == -1)
		r = ca_err(err, errlen, "CA store: the writes of this request could not be synced "
		    "to disk");
	else
		batch_dirty = false;
	pthread_mutex_unlock(&ca->lock);
	return r;
}

int
cc_ca_batch_end(struct cc_ca *ca, char *err, size_t errlen)
{
	int r;

	if (ca == NULL || batch_ca != ca)
		return 0;
	r = cc_ca_batch_sync(ca, err, errlen);
	batch_ca = NULL;
	batch_dirty = false;
	return r;
}

struct sqlite3 *
cc_ca_db_lock(struct cc_ca *ca)
{
	ca_lock(ca);
	return ca->db;
}

void
cc_ca_db_unlock(struct cc_ca *ca)
{
	ca_unlock(ca);
}

/* ---- serials ---- */

int
cc_ca_serial_norm(const char *in, char out[CC_CA_SERIAL_HEX_MAX])
{
	size_t n = 0;
	const char *p = in;

	if (strncmp(p, "0x", 2) == 0 || strncmp(p, "0X", 2) == 0)
		p += 2;
	for (; *p != '\0'; p++) {
		if (*p == ':' || *p == ' ')
			continue;
		if (!isxdigit((unsigned char)*p))
			return -1;
		if (n == 0 && *p == '0')
			continue;
		if (n >= 40)
			return -1;
		out[n++] = (char)toupper((unsigned char)*p);
	}
	if (n == 0) {
		/* zero is no valid serial, but a string of only separators is no serial at all */
		if (strchr(in, '0') == NULL)
			return -1;
		out[n++] = '0';
	}
	out[n] = '\0';
	return 0;
}

int
cc_ca_serial_hex(const ASN1_INTEGER *s, char out[CC_CA_SERIAL_HEX_MAX])
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(s, NULL);
	char *h = NULL;
	int r = -1;

	if (bn != NULL && !BN_is_negative(bn) && BN_num_bytes(bn) <= 20 &&
	    (h = BN_bn2hex(bn)) != NULL)
		r = cc_ca_serial_norm(h, out);
	OPENSSL_free(h);
	BN_free(bn);
	return r;
}

static ASN1_INTEGER *
serial_from_hex(const char *hex)
{
	BIGNUM *bn = NULL;
	ASN1_INTEGER *a = NULL;

	if (BN_hex2bn(&bn, hex) > 0)
		a = BN_to_ASN1_INTEGER(bn, NULL);
	BN_free(bn);
	return a;
}

/*
 * A statement of the issuance path, prepared on first use and kept: preparing costs more
 * than running these (scep_bench). Called with ca->lock held; the caller resets the
 * statement and clears its bindings (they point to its stack) before unlocking.
 */
static sqlite3_stmt *
ca_stmt(struct cc_ca *ca, sqlite3_stmt **slot, const char *sql)
{
	if (*slot == NULL && sqlite3_prepare_v3(ca->db, sql, -1, SQLITE_PREPARE_PERSISTENT, slot,
	    NULL) != SQLITE_OK)
		*slot = NULL;
	return *slot;
}

static void
ca_stmt_done(sqlite3_stmt *st)
{
	if (st != NULL) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	}
}

sqlite3_stmt *
cc_ca_db_stmt(struct cc_ca *ca, unsigned slot, const char *sql)
{
	return slot < CC_CA_DB_STMT_SLOTS ? ca_stmt(ca, &ca->db_stmts[slot], sql) : NULL;
}

void
cc_ca_db_stmt_done(sqlite3_stmt *st)
{
	ca_stmt_done(st);
}

static int
serial_exists(struct cc_ca *ca, const char *hex)
{
	sqlite3_stmt *st;
	int r = -1;

	ca_lock(ca);
	st = ca_stmt(ca, &ca->st_serial_exists, "SELECT 1 FROM certs WHERE serial = ?");
	if (st != NULL && sqlite3_bind_text(st, 1, hex, -1, SQLITE_STATIC) == SQLITE_OK) {
		int s = sqlite3_step(st);
		r = s == SQLITE_ROW ? 1 : s == SQLITE_DONE ? 0 : -1;
	}
	ca_stmt_done(st);
	ca_unlock(ca);
	return r;
}

/* 128 random bits, positive, not zero, not already in this store. */
static ASN1_INTEGER *
serial_new(struct cc_ca *ca, char hex[CC_CA_SERIAL_HEX_MAX])
{
	BIGNUM *bn = BN_new();
	ASN1_INTEGER *a = NULL;

	for (int i = 0; bn != NULL && i < CA_SERIAL_TRIES; i++) {
		if (BN_rand(bn, 128, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1)
			break;
		if (BN_is_zero(bn))
			continue;
		a = BN_to_ASN1_INTEGER(bn, NULL);
		if (a == NULL || cc_ca_serial_hex(a, hex) == -1 || serial_exists(ca, hex) != 0) {
			ASN1_INTEGER_free(a);
			a = NULL;
			continue;
		}
		break;
	}
	BN_free(bn);
	return a;
}

/* ---- building certificates ---- */

static GENERAL_NAME *
uri_name(const char *uri)
{
	GENERAL_NAME *g = GENERAL_NAME_new();
	ASN1_IA5STRING *s = ASN1_IA5STRING_new();

	if (g == NULL || s == NULL || ASN1_STRING_set(s, uri, -1) != 1) {
		GENERAL_NAME_free(g);
		ASN1_IA5STRING_free(s);
		return NULL;
	}
	GENERAL_NAME_set0_value(g, GEN_URI, s);
	return g;
}

static int
add_ku(X509 *x, uint32_t ku)
{
	ASN1_BIT_STRING *bs = ASN1_BIT_STRING_new();
	int ok = bs != NULL;

	/* KU_* are the bits of the first two DER bytes: 0x80 is bit 0 (digitalSignature). */
	for (int bit = 0; ok && bit < 9; bit++) {
		uint32_t mask = bit < 8 ? 0x80u >> bit : 0x8000u;
		if (ku & mask)
			ok = ASN1_BIT_STRING_set_bit(bs, bit, 1) == 1;
	}
	ok = ok && X509_add1_ext_i2d(x, NID_key_usage, bs, 1, X509V3_ADD_REPLACE) == 1;
	ASN1_BIT_STRING_free(bs);
	return ok ? 0 : -1;
}

static int
add_ids(struct cc_ca *ca, X509 *x)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	ASN1_OCTET_STRING *ski = ASN1_OCTET_STRING_new();
	const ASN1_OCTET_STRING *caski = X509_get0_subject_key_id(ca->cert);
	AUTHORITY_KEYID *akid = NULL;
	int ok;

	/* RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits. */
	ok = ski != NULL && X509_pubkey_digest(x, EVP_sha1(), md, &mdlen) == 1 &&
	    ASN1_OCTET_STRING_set(ski, md, (int)mdlen) == 1 &&
	    X509_add1_ext_i2d(x, NID_subject_key_identifier, ski, 0, X509V3_ADD_REPLACE) == 1;
	/* keys accepts an AKI only when it is the CA's SKI: without one, no AKI. */
	if (ok && caski != NULL) {
		akid = AUTHORITY_KEYID_new();
		ok = akid != NULL && (akid->keyid = ASN1_OCTET_STRING_dup(caski)) != NULL &&
		    X509_add1_ext_i2d(x, NID_authority_key_identifier, akid, 0,
		    X509V3_ADD_REPLACE) == 1;
	}
	ASN1_OCTET_STRING_free(ski);
	AUTHORITY_KEYID_free(akid);
	return ok ? 0 : -1;
}

static int
add_cdp_aia(struct cc_ca *ca, X509 *x)
{
	CRL_DIST_POINTS *cdps = NULL;
	DIST_POINT *dp = NULL;
	AUTHORITY_INFO_ACCESS *aia = NULL;
	ACCESS_DESCRIPTION *ad = NULL;
	GENERAL_NAME *g = NULL;
	int ok = 1;

	if (ca->cdp_url != NULL) {
		ok = (cdps = sk_DIST_POINT_new_null()) != NULL && (dp = DIST_POINT_new()) != NULL &&
		    (dp->distpoint = DIST_POINT_NAME_new()) != NULL &&
		    (dp->distpoint->name.fullname = GENERAL_NAMES_new()) != NULL &&
		    (g = uri_name(ca->cdp_url)) != NULL &&
		    sk_GENERAL_NAME_push(dp->distpoint->name.fullname, g) > 0;
		if (ok) {
			g = NULL;
			dp->distpoint->type = 0; /* fullName */
			ok = sk_DIST_POINT_push(cdps, dp) > 0;
			if (ok)
				dp = NULL;
		}
		ok = ok && X509_add1_ext_i2d(x, NID_crl_distribution_points, cdps, 0,
		    X509V3_ADD_REPLACE) == 1;
	}
	if (ok && ca->aia_url != NULL) {
		ok = (aia = sk_ACCESS_DESCRIPTION_new_null()) != NULL &&
		    (ad = ACCESS_DESCRIPTION_new()) != NULL;
		if (ok) {
			ASN1_OBJECT_free(ad->method);
			ad->method = OBJ_nid2obj(NID_ad_ca_issuers);
			GENERAL_NAME_free(ad->location);
			ad->location = uri_name(ca->aia_url);
			ok = ad->location != NULL && sk_ACCESS_DESCRIPTION_push(aia, ad) > 0;
			if (ok)
				ad = NULL;
		}
		ok = ok && X509_add1_ext_i2d(x, NID_info_access, aia, 0, X509V3_ADD_REPLACE) == 1;
	}
	GENERAL_NAME_free(g);
	DIST_POINT_free(dp);
	sk_DIST_POINT_pop_free(cdps, DIST_POINT_free);
	ACCESS_DESCRIPTION_free(ad);
	sk_ACCESS_DESCRIPTION_pop_free(aia, ACCESS_DESCRIPTION_free);
	return ok ? 0 : -1;
}

static time_t
asn1_time_t(const ASN1_TIME *t)
{
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return timegm(&tm);
}

static int
sign_cert(struct cc_ca *ca, X509 *x, char *err, size_t errlen)
{
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	int r = -1;

	if (ca->key == NULL) {
		EVP_MD_CTX_free(m);
		return ca_err(err, errlen, "the CA key is not available here");
	}
	if (m == NULL || EVP_DigestSignInit_ex(m, NULL, "SHA256", ca->libctx, NULL, ca->key,
	    NULL) != 1 || X509_sign_ctx(x, m) <= 0)
		ca_ossl_err(err, errlen, "signing the certificate with the CA key");
	else
		r = 0;
	EVP_MD_CTX_free(m);
	return r;
}

static int
name_text(const X509_NAME *n, char *buf, size_t len)
{
	BIO *b = BIO_new(BIO_s_mem());
	int k;

	buf[0] = '\0';
	if (b == NULL)
		return -1;
	if (X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253) < 0) {
		BIO_free(b);
		return -1;
	}
	k = BIO_read(b, buf, (int)len - 1);
	buf[k > 0 ? k : 0] = '\0';
	BIO_free(b);
	return 0;
}

static int
spki_sha256(EVP_PKEY *k, unsigned char md[32])
{
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(k, &der);
	int ok = n > 0 && EVP_Digest(der, (size_t)n, md, NULL, EVP_sha256(), NULL) == 1;

	OPENSSL_free(der);
	return ok ? 0 : -1;
}

static int
record(struct cc_ca *ca, X509 *x, const char *serial, const char *profile, const char *txid,
    bool withheld, char *err, size_t errlen)
{
	unsigned char spki[32], sha1[20];
	char subj[512], sha1hex[41];
	unsigned char *der = NULL, *spki_der = NULL;
	sqlite3_stmt *st = NULL;
	unsigned int sl = 0;
	int n, spki_len, r = -1;

	n = i2d_X509(x, &der);
	/*
	 * The certificate's SubjectPublicKeyInfo as encoded in it: cert_base set it with
	 * X509_set_pubkey, so these are the bytes i2d_PUBKEY gives for the key (what
	 * cc_ca_find_by_subject_key hashes), without OpenSSL 3's encoder round trip.
	 */
	spki_len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &spki_der);
	if (n <= 0 || spki_len <= 0 ||
	    EVP_Digest(spki_der, (size_t)spki_len, spki, NULL, EVP_sha256(), NULL) != 1 ||
	    X509_digest(x, EVP_sha1(), sha1, &sl) != 1 || sl != 20 ||
	    name_text(X509_get_subject_name(x), subj, sizeof(subj)) == -1) {
		OPENSSL_free(der);
		OPENSSL_free(spki_der);
		return ca_err(err, errlen, "cannot encode the certificate");
	}
	OPENSSL_free(spki_der);
	for (int i = 0; i < 20; i++)
		snprintf(sha1hex + 2 * i, 3, "%02x", sha1[i]);
	ca_lock(ca);
	st = ca_stmt(ca, &ca->st_insert_cert, "INSERT INTO certs (serial, subject, spki_sha256, "
	    "not_before, not_after, issued_at, profile, txid, sha1, state, der) VALUES "
	    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
	if (st == NULL) {
		ca_db_err(ca->db, err, errlen, "recording the certificate");
		goto out;
	}
	sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, subj, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, spki, sizeof(spki), SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, asn1_time_t(X509_get0_notBefore(x)));
	sqlite3_bind_int64(st, 5, asn1_time_t(X509_get0_notAfter(x)));
	sqlite3_bind_int64(st, 6, time(NULL));
	if (profile != NULL)
		sqlite3_bind_text(st, 7, profile, -1, SQLITE_STATIC);
	if (txid != NULL)
		sqlite3_bind_text(st, 8, txid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 9, sha1hex, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 10, withheld ? CC_CA_CERT_WITHHELD : CC_CA_CERT_VALID);
	sqlite3_bind_blob(st, 11, der, n, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		ca_db_err(ca->db, err, errlen, "recording the certificate");
		goto out;
	}
	r = 0;
out:
	ca_stmt_done(st);
	ca_unlock(ca);
	OPENSSL_free(der);
	return r;
}

/* The certificate body every issuance shares; extensions beyond the CA's are the caller's. */
static X509 *
cert_base(struct cc_ca *ca, const X509_NAME *subject, EVP_PKEY *pub, time_t nb, time_t na,
    char serial[CC_CA_SERIAL_HEX_MAX], char *err, size_t errlen)
{
	X509 *x = X509_new_ex(ca->libctx, NULL);
	ASN1_INTEGER *sn = NULL;
	BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
	time_t ca_end = asn1_time_t(X509_get0_notAfter(ca->cert));

	if (ca_end != 0 && na > ca_end)
		na = ca_end; /* never beyond the CA itself (keys refuses that) */
	if (na <= nb) {
		ca_err(err, errlen, "the CA certificate expires too soon to issue anything");
		goto fail;
	}
	sn = serial_new(ca, serial);
	if (x == NULL || bc == NULL || sn == NULL ||
	    X509_set_version(x, X509_VERSION_3) != 1 ||
	    X509_set_serialNumber(x, sn) != 1 ||
	    X509_set_issuer_name(x, X509_get_subject_name(ca->cert)) != 1 ||
	    X509_set_subject_name(x, subject) != 1 ||
	    ASN1_TIME_set(X509_getm_notBefore(x), nb) == NULL ||
	    ASN1_TIME_set(X509_getm_notAfter(x), na) == NULL ||
	    X509_set_pubkey(x, pub) != 1) {
		ca_ossl_err(err, errlen, "building the certificate");
		goto fail;
	}
	bc->ca = 0;
	if (X509_add1_ext_i2d(x, NID_basic_constraints, bc, 1, X509V3_ADD_REPLACE) != 1 ||
	    add_ids(ca, x) == -1 || add_cdp_aia(ca, x) == -1) {
		ca_ossl_err(err, errlen, "building the certificate's extensions");
		goto fail;
	}
	ASN1_INTEGER_free(sn);
	BASIC_CONSTRAINTS_free(bc);
	return x;
fail:
	ASN1_INTEGER_free(sn);
	BASIC_CONSTRAINTS_free(bc);
	X509_free(x);
	return NULL;
}

int
cc_ca_issue(struct cc_ca *ca, const struct cc_iss_result *r, const char *profile,
    const char *txid, bool withheld, X509 **out, char *err, size_t errlen)
{
	char serial[CC_CA_SERIAL_HEX_MAX];
	X509 *x;

	*out = NULL;
	x = cert_base(ca, r->subject, r->pubkey, r->not_before, r->not_after, serial, err,
	    errlen);
	if (x == NULL)
		return -1;
	if (add_ku(x, r->key_usage) == -1 ||
	    (r->ekus != NULL && sk_ASN1_OBJECT_num(r->ekus) > 0 &&
	    X509_add1_ext_i2d(x, NID_ext_key_usage, r->ekus, 0, X509V3_ADD_REPLACE) != 1) ||
	    (r->san != NULL && X509_add1_ext_i2d(x, NID_subject_alt_name, r->san,
	    X509_NAME_entry_count(r->subject) == 0, X509V3_ADD_REPLACE) != 1)) {
		ca_ossl_err(err, errlen, "building the certificate's extensions");
		X509_free(x);
		return -1;
	}
	if (sign_cert(ca, x, err, errlen) == -1 ||
	    record(ca, x, serial, profile, txid, withheld, err, errlen) == -1) {
		X509_free(x);
		return -1;
	}
	*out = x;
	return 0;
}

int
cc_ca_issue_ra(struct cc_ca *ca, EVP_PKEY *pub, const X509_NAME *subject, uint32_t days,
    uint32_t ku, X509 **out, char *err, size_t errlen)
{
	char serial[CC_CA_SERIAL_HEX_MAX];
	time_t now = time(NULL);
	X509 *x;

	*out = NULL;
	x = cert_base(ca, subject, pub, now - 300, now + (time_t)days * 86400, serial, err,
	    errlen);
	if (x == NULL)
		return -1;
	if (add_ku(x, ku) == -1) {
		ca_ossl_err(err, errlen, "building the RA certificate");
		X509_free(x);
		return -1;
	}
	if (sign_cert(ca, x, err, errlen) == -1 ||
	    record(ca, x, serial, "ra", NULL, false, err, errlen) == -1) {
		X509_free(x);
		return -1;
	}
	*out = x;
	return 0;
}

int
cc_ca_set_withheld(struct cc_ca *ca, const char *serial_hex, bool withheld, char *err,
    size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int r = -1;

	ca_lock(ca);
	if (sqlite3_prepare_v2(ca->db, "UPDATE certs SET state = ? WHERE serial = ?", -1, &st,
	    NULL) != SQLITE_OK) {
		ca_db_err(ca->db, err, errlen, "updating the certificate");
		goto out;
	}
	sqlite3_bind_int(st, 1, withheld ? CC_CA_CERT_WITHHELD : CC_CA_CERT_VALID);
	sqlite3_bind_text(st, 2, serial_hex, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		ca_db_err(ca->db, err, errlen, "updating the certificate");
	else if (sqlite3_changes(ca->db) != 1)
		ca_err(err, errlen, "no certificate with serial %s", serial_hex);
	else
		r = 0;
out:
	sqlite3_finalize(st);
	ca_unlock(ca);
	return r;
}

/* ---- lookups ---- */

static void
col_text(sqlite3_stmt *st, int i, char *buf, size_t len)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	snprintf(buf, len, "%s", t != NULL ? (const char *)t : "");
}

#define INFO_COLS "serial, subject, profile, txid, sha1, not_before, not_after, issued_at, " \
	"revoked_at, reason, state, der"

static void
info_from_row(sqlite3_stmt *st, struct cc_ca_cert_info *in)
{
	memset(in, 0, sizeof(*in));
	col_text(st, 0, in->serial, sizeof(in->serial));
	col_text(st, 1, in->subject, sizeof(in->subject));
	col_text(st, 2, in->profile, sizeof(in->profile));
	col_text(st, 3, in->txid, sizeof(in->txid));
	col_text(st, 4, in->sha1, sizeof(in->sha1));
	in->not_before = (time_t)sqlite3_column_int64(st, 5);
	in->not_after = (time_t)sqlite3_column_int64(st, 6);
	in->issued_at = (time_t)sqlite3_column_int64(st, 7);
	in->revoked_at = (time_t)sqlite3_column_int64(st, 8);
	in->reason = sqlite3_column_type(st, 9) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 9);
	if (sqlite3_column_type(st, 8) != SQLITE_NULL)
		in->state = CC_CA_CERT_REVOKED;
	else if (in->not_after < time(NULL))
		in->state = CC_CA_CERT_EXPIRED;
	else
		in->state = sqlite3_column_int(st, 10) == CC_CA_CERT_WITHHELD ?
		    CC_CA_CERT_WITHHELD : CC_CA_CERT_VALID;
}

static X509 *
cert_from_col(sqlite3_stmt *st, int i)
{
	const unsigned char *p = sqlite3_column_blob(st, i);
	int n = sqlite3_column_bytes(st, i);

	return p != NULL && n > 0 ? d2i_X509(NULL, &p, n) : NULL;
}

int
cc_ca_find(struct cc_ca *ca, const char *serial_hex, struct cc_ca_cert_info *info, X509 **cert,
    char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int r = -1, s;

	if (cert != NULL)
		*cert = NULL;
	ca_lock(ca);
	if (sqlite3_prepare_v2(ca->db, "SELECT " INFO_COLS " FROM certs WHERE serial = ?", -1,
	    &st, NULL) != SQLITE_OK) {
		ca_db_err(ca->db, err, errlen, "looking up a certificate");
		goto out;
	}
	sqlite3_bind_text(st, 1, serial_hex, -1, SQLITE_STATIC);
	s = sqlite3_step(st);
	if (s == SQLITE_DONE) {
		r = 0;
		goto out;
	}
	if (s != SQLITE_ROW) {
		ca_db_err(ca->db, err, errlen, "looking up a certificate");
		goto out;
	}
	if (info != NULL)
		info_from_row(st, info);
	if (cert != NULL && (*cert = cert_from_col(st, 11)) == NULL) {
		ca_err(err, errlen, "certificate %s in the store does not decode", serial_hex);
		goto out;
	}
	r = 1;
out:
	sqlite3_finalize(st);
	ca_unlock(ca);
	return r;
}

int
cc_ca_find_by_subject_key(struct cc_ca *ca, const X509_NAME *subject, EVP_PKEY *key,
    time_t now, X509 **cert, char *err, size_t errlen)
{
	unsigned char spki[32];
	char subj[512];
	sqlite3_stmt *st = NULL;
	int r = -1, s;

	*cert = NULL;
	if (spki_sha256(key, spki) == -1 || name_text(subject, subj, sizeof(subj)) == -1)
		return ca_err(err, errlen, "cannot encode the subject or key");
	ca_lock(ca);
	if (sqlite3_prepare_v2(ca->db, "SELECT der FROM certs WHERE subject = ? AND "
	    "spki_sha256 = ? AND revoked_at IS NULL AND state = 0 AND not_after > ? "
	    "ORDER BY issued_at DESC LIMIT 1", -1, &st, NULL) != SQLITE_OK) {
		ca_db_err(ca->db, err, errlen, "looking up a certificate");
		goto out;
	}
	sqlite3_bind_text(st, 1, subj, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, spki, sizeof(spki), SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now);
	s = sqlite3_step(st);
	if (s == SQLITE_DONE)
		r = 0;
	else if (s != SQLITE_ROW)
		ca_db_err(ca->db, err, errlen, "looking up a certificate");
	else if ((*cert = cert_from_col(st, 0)) == NULL)
		ca_err(err, errlen, "a certificate in the store does not decode");
	else
		r = 1;
out:
	sqlite3_finalize(st);
	ca_unlock(ca);
	return r;
}

int
cc_ca_list(struct cc_ca *ca, size_t limit, cc_ca_list_fn fn, void *arg, char *err,
    size_t errlen)
{
	struct cc_ca_cert_info in;
	sqlite3_stmt *st = NULL;
	int r = -1, s;

	ca_lock(ca);
	if (sqlite3_prepare_v2(ca->db, "SELECT " INFO_COLS " FROM certs ORDER BY issued_at DESC, "
	    "rowid DESC LIMIT ?", -1, &st, NULL) != SQLITE_OK) {
		ca_db_err(ca->db, err, errlen, "listing certificates");
		goto out;
	}
	sqlite3_bind_int64(st, 1, limit == 0 ? -1 : (sqlite3_int64)limit);
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		info_from_row(st, &in);
		if (fn(&in, arg) == -1) {
			ca_err(err, errlen, "listing stopped");
			goto out;
		}
	}
	if (s != SQLITE_DONE) {
		ca_db_err(ca->db, err, errlen, "listing certificates");
		goto out;
	}
	r = 0;
out:
	sqlite3_finalize(st);
	ca_unlock(ca);
	return r;
}

/* ---- revocation ---- */

static const char *const reasons[] = {
	"unspecified", "keyCompromise", "cACompromise", "affiliationChanged", "superseded",
	"cessationOfOperation", "certificateHold", NULL, "removeFromCRL", "privilegeWithdrawn",
	"aACompromise",
};

int
cc_ca_reason_from_name(const char *name)
{
	for (int i = 0; i < (int)(sizeof(reasons) / sizeof(reasons[0])); i++)
		if (reasons[i] != NULL && strcasecmp(reasons[i], name) == 0)
			return i;
	return -1;
}

const char *
cc_ca_reason_name(int code)
{
	if (code < 0 || code >= (int)(sizeof(reasons) / sizeof(reasons[0])) ||
	    reasons[code] == NULL)
		return "unknown";
	return reasons[code];
}

int
cc_ca_revoke(struct cc_ca *ca, const char *serial_hex, int reason, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int r = -1, s;

	/* removeFromCRL belongs to delta CRLs, which this CA does not make. */
	if (reason < 0 || reason > 10 || reason == 7 || reason == 8)
		return ca_err(err, errlen, "revocation reason %d is not allowed", reason);
	ca_lock(ca);
	if (sqlite3_exec(ca->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		ca_db_err(ca->db, err, errlen, "revoking");
		goto out;
	}
	if (sqlite3_prepare_v2(ca->db, "SELECT revoked_at FROM certs WHERE serial = ?", -1, &st,
	    NULL) != SQLITE_OK) {
		ca_db_err(ca->db, err, errlen, "revoking");
		goto rollback;
	}
	sqlite3_bind_text(st, 1, serial_hex, -1, SQLITE_STATIC);
	s = sqlite3_step(st);
	if (s == SQLITE_DONE) {
		ca_err(err, errlen, "no certificate with serial %s", serial_hex);
		goto rollback;
	}
	if (s != SQLITE_ROW) {
		ca_db_err(ca->db, err, errlen, "revoking");
		goto rollback;
	}
	if (sqlite3_column_type(st, 0) != SQLITE_NULL) {
		ca_err(err, errlen, "certificate %s is already revoked", serial_hex);
		goto rollback;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(ca->db, "UPDATE certs SET revoked_at = ?, reason = ? WHERE "
	    "serial = ?", -1, &st, NULL) != SQLITE_OK) {
		ca_db_err(ca->db, err, errlen, "revoking");
		goto rollback;
	}
	sqlite3_bind_int64(st, 1, time(NULL));
	sqlite3_bind_int(st, 2, reason);
	sqlite3_bind_text(st, 3, serial_hex, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE ||
	    sqlite3_exec(ca->db, "UPDATE meta SET value = value + 1 WHERE key = "
	    "'revocation_gen'", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(ca->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		ca_db_err(ca->db, err, errlen, "revoking");
		goto rollback;
	}
	r = 0;
	goto out;
rollback:
	sqlite3_exec(ca->db, "ROLLBACK", NULL, NULL, NULL);
out:
	sqlite3_finalize(st);
	ca_unlock(ca);
	return r;
}

/* ---- CRLs ---- */

int
cc_ca_revocation_gen(struct cc_ca *ca, uint64_t *gen, uint64_t *crl_gen, char *err,
    size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int r = -1;

	*gen = *crl_gen = 0;
	ca_lock(ca);
	if (sqlite3_prepare_v2(ca->db, "SELECT (SELECT value FROM meta WHERE key = "
	    "'revocation_gen'), (SELECT revocation_gen FROM crls ORDER BY number DESC LIMIT 1)",
	    -1, &st, NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
		ca_db_err(ca->db, err, errlen, "reading the revocation generation");
		goto out;
	}
	*gen = (uint64_t)sqlite3_column_int64(st, 0);
	*crl_gen = (uint64_t)sqlite3_column_int64(st, 1);
	r = 0;
out:
	sqlite3_finalize(st);
	ca_unlock(ca);
	return r;
}

struct crl_state {
	int have;
	uint64_t number, crl_gen, gen;
	time_t this_update, next_update;
};

static int
crl_state(struct cc_ca *ca, struct crl_state *s, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int r = -1, k;

	memset(s, 0, sizeof(*s));
	if (sqlite3_prepare_v2(ca->db, "SELECT number, this_update, next_update, revocation_gen "
	    "FROM crls ORDER BY number DESC LIMIT 1", -1, &st, NULL) != SQLITE_OK)
		goto fail;
	k = sqlite3_step(st);
	if (k == SQLITE_ROW) {
		s->have = 1;
		s->number = (uint64_t)sqlite3_column_int64(st, 0);
		s->this_update = (time_t)sqlite3_column_int64(st, 1);
		s->next_update = (time_t)sqlite3_column_int64(st, 2);
		s->crl_gen = (uint64_t)sqlite3_column_int64(st, 3);
	} else if (k != SQLITE_DONE)
		goto fail;
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(ca->db, "SELECT value FROM meta WHERE key = 'revocation_gen'", -1,
	    &st, NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW)
		goto fail;
	s->gen = (uint64_t)sqlite3_column_int64(st, 0);
	r = 0;
fail:
	if (r == -1)
		ca_db_err(ca->db, err, errlen, "reading the CRL state");
	sqlite3_finalize(st);
	return r;
}

/* The revoked, unexpired certificates as CRL entries. */
static int
crl_entries(struct cc_ca *ca, X509_CRL *crl, time_t now, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int r = -1, s;

	if (sqlite3_prepare_v2(ca->db, "SELECT serial, revoked_at, reason FROM certs WHERE "
	    "revoked_at IS NOT NULL AND not_after > ?", -1, &st, NULL) != SQLITE_OK) {
		ca_db_err(ca->db, err, errlen, "reading revocations");
		goto out;
	}
	sqlite3_bind_int64(st, 1, now);
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		X509_REVOKED *rv = X509_REVOKED_new();
		ASN1_INTEGER *sn = serial_from_hex((const char *)sqlite3_column_text(st, 0));
		ASN1_TIME *t = ASN1_TIME_set(NULL, (time_t)sqlite3_column_int64(st, 1));
		ASN1_ENUMERATED *re = NULL;
		int reason = sqlite3_column_int(st, 2), ok;

		ok = rv != NULL && sn != NULL && t != NULL &&
		    X509_REVOKED_set_serialNumber(rv, sn) == 1 &&
		    X509_REVOKED_set_revocationDate(rv, t) == 1;
		/* RFC 5280 5.3.1: unspecified is better left out. */
		if (ok && reason > 0) {
			ok = (re = ASN1_ENUMERATED_new()) != NULL &&
			    ASN1_ENUMERATED_set(re, reason) == 1 &&
			    X509_REVOKED_add1_ext_i2d(rv, NID_crl_reason, re, 0, 0) == 1;
		}
		ok = ok && X509_CRL_add0_revoked(crl, rv) == 1;
		ASN1_INTEGER_free(sn);
		ASN1_TIME_free(t);
		ASN1_ENUMERATED_free(re);
		if (!ok) {
			X509_REVOKED_free(rv);
			ca_err(err, errlen, "cannot build a CRL entry");
			goto out;
		}
	}
	if (s != SQLITE_DONE) {
		ca_db_err(ca->db, err, errlen, "reading revocations");
		goto out;
	}
	r = 0;
out:
	sqlite3_finalize(st);
	return r;
}

int
cc_ca_crl_refresh(struct cc_ca *ca, bool force, time_t now, char *err, size_t errlen)
{
	struct crl_state s;
	X509_CRL *crl = NULL;
	ASN1_INTEGER *num = NULL;
	ASN1_TIME *tu = NULL, *nu = NULL;
	AUTHORITY_KEYID *akid = NULL;
	EVP_MD_CTX *m = NULL;
	const ASN1_OCTET_STRING *caski = X509_get0_subject_key_id(ca->cert);
	unsigned char *der = NULL;
	sqlite3_stmt *st = NULL;
	time_t next = now + (time_t)ca->crl_days * 86400;
	int r = -1, n, locked = 0;

	if (ca->key == NULL)
		return ca_err(err, errlen, "the CA key is not available here");
	pthread_mutex_lock(&ca->crl_lock);
	ca_lock(ca);
	locked = 1;
	if (crl_state(ca, &s, err, errlen) == -1)
		goto out;
	if (!force && s.have && s.crl_gen == s.gen && now >= s.this_update &&
	    now < s.this_update + (s.next_update - s.this_update) / 2) {
		r = 0;
		goto out;
	}
	crl = X509_CRL_new_ex(ca->libctx, NULL);
	num = ASN1_INTEGER_new();
	tu = ASN1_TIME_set(NULL, now);
	nu = ASN1_TIME_set(NULL, next);
	if (crl == NULL || num == NULL || tu == NULL || nu == NULL ||
	    X509_CRL_set_version(crl, X509_CRL_VERSION_2) != 1 ||
	    X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->cert)) != 1 ||
	    X509_CRL_set1_lastUpdate(crl, tu) != 1 || X509_CRL_set1_nextUpdate(crl, nu) != 1 ||
	    ASN1_INTEGER_set_uint64(num, s.number + 1) != 1 ||
	    X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0) != 1) {
		ca_ossl_err(err, errlen, "building the CRL");
		goto out;
	}
	if (caski != NULL && ((akid = AUTHORITY_KEYID_new()) == NULL ||
	    (akid->keyid = ASN1_OCTET_STRING_dup(caski)) == NULL ||
	    X509_CRL_add1_ext_i2d(crl, NID_authority_key_identifier, akid, 0, 0) != 1)) {
		ca_ossl_err(err, errlen, "building the CRL");
		goto out;
	}
	if (crl_entries(ca, crl, now, err, errlen) == -1)
		goto out;
	X509_CRL_sort(crl);
	/* Signing goes to keys: not under the store lock (the CRL lock keeps numbers in order). */
	ca_unlock(ca);
	locked = 0;
	m = EVP_MD_CTX_new();
	if (m == NULL || EVP_DigestSignInit_ex(m, NULL, "SHA256", ca->libctx, NULL, ca->key,
	    NULL) != 1 || X509_CRL_sign_ctx(crl, m) <= 0) {
		ca_ossl_err(err, errlen, "signing the CRL with the CA key");
		goto out;
	}
	n = i2d_X509_CRL(crl, &der);
	if (n <= 0) {
		ca_err(err, errlen, "cannot encode the CRL");
		goto out;
	}
	ca_lock(ca);
	locked = 1;
	if (sqlite3_prepare_v2(ca->db, "INSERT INTO crls (number, this_update, next_update, "
	    "revocation_gen, der) VALUES (?, ?, ?, ?, ?)", -1, &st, NULL) != SQLITE_OK) {
		ca_db_err(ca->db, err, errlen, "storing the CRL");
		goto out;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)(s.number + 1));
	sqlite3_bind_int64(st, 2, now);
	sqlite3_bind_int64(st, 3, next);
	/* s.gen was read with the entries, under the same lock: this CRL covers exactly it. */
	sqlite3_bind_int64(st, 4, (sqlite3_int64)s.gen);
	sqlite3_bind_blob(st, 5, der, n, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		ca_db_err(ca->db, err, errlen, "storing the CRL");
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(ca->db, "DELETE FROM crls WHERE number <= ?", -1, &st, NULL) ==
	    SQLITE_OK) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)(s.number + 1) - CA_CRLS_KEPT);
		(void)sqlite3_step(st);
	}
	r = 1;
out:
	sqlite3_finalize(st);
	if (locked)
		ca_unlock(ca);
	pthread_mutex_unlock(&ca->crl_lock);
	OPENSSL_free(der);
	EVP_MD_CTX_free(m);
	AUTHORITY_KEYID_free(akid);
	ASN1_TIME_free(tu);
	ASN1_TIME_free(nu);
	ASN1_INTEGER_free(num);
	X509_CRL_free(crl);
	return r;
}

int
cc_ca_crl_latest(struct cc_ca *ca, uint8_t **der, size_t *len, uint64_t *number, char *err,
    size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int r = -1, s;

	*der = NULL;
	*len = 0;
	ca_lock(ca);
	if (sqlite3_prepare_v2(ca->db, "SELECT number, der FROM crls ORDER BY number DESC "
	    "LIMIT 1", -1, &st, NULL) != SQLITE_OK) {
		ca_db_err(ca->db, err, errlen, "reading the CRL");
		goto out;
	}
	s = sqlite3_step(st);
	if (s == SQLITE_DONE) {
		r = 0;
		goto out;
	}
	if (s != SQLITE_ROW || sqlite3_column_bytes(st, 1) <= 0) {
		ca_db_err(ca->db, err, errlen, "reading the CRL");
		goto out;
	}
	*len = (size_t)sqlite3_column_bytes(st, 1);
	*der = malloc(*len);
	if (*der == NULL) {
		ca_err(err, errlen, "out of memory");
		goto out;
	}
	memcpy(*der, sqlite3_column_blob(st, 1), *len);
	if (number != NULL)
		*number = (uint64_t)sqlite3_column_int64(st, 0);
	r = 1;
out:
	sqlite3_finalize(st);
	ca_unlock(ca);
	return r;
}
