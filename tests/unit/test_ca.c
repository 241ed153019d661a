/*
 * The local CA (src/ca): store, issuance, revocation and CRLs with a real SQLite file in a
 * temporary directory and an in-memory CA key (the keyref path is covered by the integration
 * tests). Issued certificates and CRLs are checked with OpenSSL's verifier.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sqlite3.h>

#include "certconn/ca.h"
#include "certconn/issuance.h"
#include "scep_client.h"
#include "test_token.h"

struct fx {
	char dir[64];
	char db[128];
	EVP_PKEY *cakey;
	X509 *cacert;
	struct cc_ca *ca;
};

static X509 *
make_ca_cert(EVP_PKEY *k, int days)
{
	X509 *x = sc_selfsigned(k, "CN=Test CA,O=certconn", days);
	X509V3_CTX ctx;
	X509_EXTENSION *e;

	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints, "critical,CA:TRUE");
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	e = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_key_identifier, "hash");
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	e = X509V3_EXT_conf_nid(NULL, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	return x;
}

static void
open_ca(struct fx *f, EVP_PKEY *key, bool ro)
{
	struct cc_ca_opts o = { .name = "test", .db_path = f->db,
		.base_url = "http://pki.example.com:8080", .cdp = true, .aia = true, .crl_days = 7,
		.cert = f->cacert, .key = key, .read_only = ro };
	char err[256];

	if (cc_ca_open(&o, &f->ca, err, sizeof(err)) == -1)
		fail_msg("cc_ca_open: %s", err);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/test_ca.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->db, sizeof(f->db), "%s/ca.db", f->dir);
	f->cakey = sc_key_ec("P-256");
	f->cacert = make_ca_cert(f->cakey, 3650);
	open_ca(f, f->cakey, false);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	cc_ca_close(f->ca);
	X509_free(f->cacert);
	EVP_PKEY_free(f->cakey);
	test_rmtree(f->dir);
	free(f);
	return 0;
}

static X509 *
issue(struct fx *f, EVP_PKEY *k, const char *subj, const char *sans, bool withheld)
{
	struct cc_issuance p;
	struct cc_iss_result r;
	X509_REQ *req = sc_csr(k, subj, NULL, sans);
	X509 *x = NULL;
	char why[256];

	cc_issuance_defaults(&p);
	assert_int_equal(cc_issuance_apply(&p, req, time(NULL), &r, why, sizeof(why)), 0);
	if (cc_ca_issue(f->ca, &r, "devices", "tx-1", withheld, &x, why, sizeof(why)) == -1)
		fail_msg("cc_ca_issue: %s", why);
	cc_iss_result_free(&r);
	cc_issuance_free(&p);
	X509_REQ_free(req);
	return x;
}

static int
verify(X509 *ca, X509 *x, X509_CRL *crl)
{
	X509_STORE *st = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int r;

	X509_STORE_add_cert(st, ca);
	if (crl != NULL) {
		X509_STORE_add_crl(st, crl);
		X509_STORE_set_flags(st, X509_V_FLAG_CRL_CHECK);
	}
	X509_STORE_CTX_init(ctx, st, x, NULL);
	r = X509_verify_cert(ctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	return r;
}

static void
test_issue(void **state)
{
	struct fx *f = *state;
	EVP_PKEY *k = sc_key_ec("P-256");
	X509 *x = issue(f, k, "CN=dev1", "DNS:dev1.example.com", false);
	const ASN1_INTEGER *sn = X509_get0_serialNumber(x);
	BASIC_CONSTRAINTS *bc;
	AUTHORITY_KEYID *akid;
	CRL_DIST_POINTS *cdp;
	AUTHORITY_INFO_ACCESS *aia;
	GENERAL_NAMES *san;
	const char *u;
	int crit;

	assert_int_equal(verify(f->cacert, x, NULL), X509_V_OK);
	assert_int_equal(X509_get_version(x), X509_VERSION_3);
	/* 128 random bits: positive, at most 17 DER bytes (a leading zero when the top bit is 1),
	 * and at least 9 bytes but with a vanishing probability */
	assert_int_equal(ASN1_STRING_type(sn), V_ASN1_INTEGER);
	assert_in_range(ASN1_STRING_length(sn), 9, 16);

	bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
	assert_non_null(bc);
	assert_int_equal(bc->ca, 0);
	assert_int_equal(crit, 1);
	BASIC_CONSTRAINTS_free(bc);
	assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE | KU_KEY_AGREEMENT);
	assert_int_equal(X509_get_extended_key_usage(x), XKU_SSL_CLIENT);
	assert_non_null(X509_get0_subject_key_id(x));
	akid = X509_get_ext_d2i(x, NID_authority_key_identifier, NULL, NULL);
	assert_non_null(akid);
	assert_int_equal(ASN1_OCTET_STRING_cmp(akid->keyid, X509_get0_subject_key_id(f->cacert)),
	    0);
	AUTHORITY_KEYID_free(akid);
	cdp = X509_get_ext_d2i(x, NID_crl_distribution_points, NULL, NULL);
	assert_non_null(cdp);
	u = (const char *)ASN1_STRING_get0_data(sk_GENERAL_NAME_value(
	    sk_DIST_POINT_value(cdp, 0)->distpoint->name.fullname, 0)->d.uniformResourceIdentifier);
	assert_string_equal(u, "http://pki.example.com:8080/crl/test.crl");
	CRL_DIST_POINTS_free(cdp);
	aia = X509_get_ext_d2i(x, NID_info_access, NULL, NULL);
	assert_non_null(aia);
	assert_int_equal(OBJ_obj2nid(sk_ACCESS_DESCRIPTION_value(aia, 0)->method),
	    NID_ad_ca_issuers);
	u = (const char *)ASN1_STRING_get0_data(
	    sk_ACCESS_DESCRIPTION_value(aia, 0)->location->d.uniformResourceIdentifier);
	assert_string_equal(u, "http://pki.example.com:8080/ca/test.crt");
	AUTHORITY_INFO_ACCESS_free(aia);
	san = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	assert_non_null(san);
	assert_int_equal(sk_GENERAL_NAME_num(san), 1);
	GENERAL_NAMES_free(san);

	/* two issuances never share a serial */
	{
		X509 *y = issue(f, k, "CN=dev1", NULL, false);
		assert_int_not_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(y), sn), 0);
		X509_free(y);
	}
	X509_free(x);
	EVP_PKEY_free(k);
}

struct list_acc {
	int n;
	char first[CC_CA_SERIAL_HEX_MAX];
};

static int
list_cb(const struct cc_ca_cert_info *i, void *arg)
{
	struct list_acc *a = arg;

	if (a->n++ == 0)
		snprintf(a->first, sizeof(a->first), "%s", i->serial);
	return 0;
}

static void
test_lookup(void **state)
{
	struct fx *f = *state;
	EVP_PKEY *k = sc_key_rsa(2048);
	X509 *x = issue(f, k, "CN=dev2,O=Example", NULL, false), *y = NULL;
	struct cc_ca_cert_info in;
	char hex[CC_CA_SERIAL_HEX_MAX], err[256];
	int count = 0;

	assert_int_equal(cc_ca_serial_hex(X509_get0_serialNumber(x), hex), 0);
	assert_int_equal(cc_ca_find(f->ca, hex, &in, &y, err, sizeof(err)), 1);
	assert_int_equal(X509_cmp(x, y), 0);
	assert_string_equal(in.subject, "O=Example,CN=dev2");
	assert_string_equal(in.profile, "devices");
	assert_string_equal(in.txid, "tx-1");
	assert_int_equal(in.state, CC_CA_CERT_VALID);
	assert_int_equal(in.reason, -1);
	assert_int_equal(strlen(in.sha1), 40);
	X509_free(y);
	assert_int_equal(cc_ca_find(f->ca, "ABCDEF", &in, NULL, err, sizeof(err)), 0);

	assert_int_equal(cc_ca_find_by_subject_key(f->ca, X509_get_subject_name(x), k, time(NULL),
	    &y, err, sizeof(err)), 1);
	assert_int_equal(X509_cmp(x, y), 0);
	X509_free(y);

	/* list, newest first */
	{
		struct list_acc acc = { 0, "" };

		assert_int_equal(cc_ca_list(f->ca, 0, list_cb, &acc, err, sizeof(err)), 0);
		assert_int_equal(acc.n, 1);
		assert_string_equal(acc.first, hex);
		count = acc.n;
	}
	assert_int_equal(count, 1);
	X509_free(x);
	EVP_PKEY_free(k);
}

static void
test_withheld(void **state)
{
	struct fx *f = *state;
	EVP_PKEY *k = sc_key_ec("P-256");
	X509 *x = issue(f, k, "CN=held", NULL, true), *y = NULL;
	struct cc_ca_cert_info in;
	char hex[CC_CA_SERIAL_HEX_MAX], err[256];

	assert_int_equal(cc_ca_serial_hex(X509_get0_serialNumber(x), hex), 0);
	assert_int_equal(cc_ca_find(f->ca, hex, &in, NULL, err, sizeof(err)), 1);
	assert_int_equal(in.state, CC_CA_CERT_WITHHELD);
	assert_int_equal(cc_ca_find_by_subject_key(f->ca, X509_get_subject_name(x), k, time(NULL),
	    &y, err, sizeof(err)), 0);
	assert_int_equal(cc_ca_set_withheld(f->ca, hex, false, err, sizeof(err)), 0);
	assert_int_equal(cc_ca_find_by_subject_key(f->ca, X509_get_subject_name(x), k, time(NULL),
	    &y, err, sizeof(err)), 1);
	X509_free(y);
	assert_int_equal(cc_ca_set_withheld(f->ca, "1234", false, err, sizeof(err)), -1);
	X509_free(x);
	EVP_PKEY_free(k);
}

static X509_CRL *
latest_crl(struct fx *f, uint64_t *num)
{
	uint8_t *der = NULL;
	size_t len = 0;
	const unsigned char *p;
	X509_CRL *crl;
	char err[256];

	assert_int_equal(cc_ca_crl_latest(f->ca, &der, &len, num, err, sizeof(err)), 1);
	p = der;
	crl = d2i_X509_CRL(NULL, &p, (long)len);
	free(der);
	assert_non_null(crl);
	return crl;
}

static void
test_revoke_crl(void **state)
{
	struct fx *f = *state;
	EVP_PKEY *k = sc_key_ec("P-256");
	X509 *x = issue(f, k, "CN=lost", NULL, false), *y = NULL;
	X509_CRL *crl;
	X509_REVOKED *rv = NULL;
	ASN1_ENUMERATED *reason;
	char hex[CC_CA_SERIAL_HEX_MAX], err[256];
	uint64_t gen, cgen, num;
	time_t now = time(NULL);

	/* no CRL yet: the first refresh signs one, the next finds it good */
	{
		uint8_t *der = NULL;
		size_t len = 0;

		assert_int_equal(cc_ca_crl_latest(f->ca, &der, &len, NULL, err, sizeof(err)), 0);
		assert_null(der);
	}
	assert_int_equal(cc_ca_crl_refresh(f->ca, false, now, err, sizeof(err)), 1);
	assert_int_equal(cc_ca_crl_refresh(f->ca, false, now, err, sizeof(err)), 0);
	crl = latest_crl(f, &num);
	assert_int_equal(num, 1);
	assert_int_equal(verify(f->cacert, x, crl), X509_V_OK);
	assert_int_equal(X509_CRL_verify(crl, f->cakey), 1);
	X509_CRL_free(crl);

	assert_int_equal(cc_ca_serial_hex(X509_get0_serialNumber(x), hex), 0);
	assert_int_equal(cc_ca_revoke(f->ca, hex, 1, err, sizeof(err)), 0);
	assert_int_equal(cc_ca_revoke(f->ca, hex, 1, err, sizeof(err)), -1);
	assert_string_equal(err + strlen(err) - strlen("is already revoked"), "is already revoked");
	assert_int_equal(cc_ca_revoke(f->ca, "ABCD", 1, err, sizeof(err)), -1);
	assert_string_equal(err, "no certificate with serial ABCD");
	assert_int_equal(cc_ca_revoke(f->ca, hex, 7, err, sizeof(err)), -1);
	assert_int_equal(cc_ca_revocation_gen(f->ca, &gen, &cgen, err, sizeof(err)), 0);
	assert_int_equal(gen, 1);
	assert_int_equal(cgen, 0);

	/* the revocation makes the next refresh sign CRL number 2 with the entry */
	assert_int_equal(cc_ca_crl_refresh(f->ca, false, now, err, sizeof(err)), 1);
	assert_int_equal(cc_ca_revocation_gen(f->ca, &gen, &cgen, err, sizeof(err)), 0);
	assert_int_equal(cgen, 1);
	crl = latest_crl(f, &num);
	assert_int_equal(num, 2);
	assert_int_equal(X509_CRL_verify(crl, f->cakey), 1);
	assert_int_equal(X509_CRL_get0_by_serial(crl, &rv, X509_get0_serialNumber(x)), 1);
	reason = X509_REVOKED_get_ext_d2i(rv, NID_crl_reason, NULL, NULL);
	assert_non_null(reason);
	assert_int_equal(ASN1_ENUMERATED_get(reason), 1);
	ASN1_ENUMERATED_free(reason);
	assert_int_equal(verify(f->cacert, x, crl), X509_V_ERR_CERT_REVOKED);
	assert_int_equal(X509_cmp_time(X509_CRL_get0_nextUpdate(crl), &(time_t){ now + 7 * 86400
	    - 10 }), 1);
	X509_CRL_free(crl);

	/* a revoked certificate is no longer what a repeated request gets back */
	assert_int_equal(cc_ca_find_by_subject_key(f->ca, X509_get_subject_name(x), k, now, &y,
	    err, sizeof(err)), 0);
	/* half the lifetime later a new CRL is due even without revocations */
	assert_int_equal(cc_ca_crl_refresh(f->ca, false, now + 4 * 86400, err, sizeof(err)), 1);
	/* force */
	assert_int_equal(cc_ca_crl_refresh(f->ca, true, now + 4 * 86400, err, sizeof(err)), 1);
	crl = latest_crl(f, &num);
	assert_int_equal(num, 4);
	X509_CRL_free(crl);
	X509_free(x);
	EVP_PKEY_free(k);
}

static void
test_store(void **state)
{
	struct fx *f = *state;
	EVP_PKEY *k = sc_key_ec("P-256");
	X509 *x = issue(f, k, "CN=persist", NULL, false);
	struct cc_ca_cert_info in;
	char hex[CC_CA_SERIAL_HEX_MAX], err[256];
	sqlite3 *db;
	struct cc_ca_opts o = { .name = "test", .db_path = f->db, .cert = f->cacert };

	assert_int_equal(cc_ca_serial_hex(X509_get0_serialNumber(x), hex), 0);
	/* reopened, the certificate is still there; read-only works; without key no signing */
	cc_ca_close(f->ca);
	open_ca(f, NULL, true);
	assert_int_equal(cc_ca_find(f->ca, hex, &in, NULL, err, sizeof(err)), 1);
	assert_int_equal(cc_ca_crl_refresh(f->ca, true, time(NULL), err, sizeof(err)), -1);
	assert_string_equal(err, "the CA key is not available here");
	cc_ca_close(f->ca);
	open_ca(f, NULL, false);
	{
		struct cc_iss_result r;
		struct cc_issuance p;
		X509_REQ *req = sc_csr(k, "CN=x", NULL, NULL);
		X509 *y = NULL;

		cc_issuance_defaults(&p);
		assert_int_equal(cc_issuance_apply(&p, req, time(NULL), &r, err, sizeof(err)), 0);
		assert_int_equal(cc_ca_issue(f->ca, &r, NULL, NULL, false, &y, err, sizeof(err)), -1);
		assert_string_equal(err, "the CA key is not available here");
		cc_iss_result_free(&r);
		X509_REQ_free(req);
	}
	cc_ca_close(f->ca);

	/* the schema is versioned; a newer file is refused */
	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "UPDATE schema_version SET version = 99", NULL, NULL,
	    NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(cc_ca_open(&o, &f->ca, err, sizeof(err)), -1);
	assert_string_equal(err, "CA store: schema version 99 is newer than this build (1)");
	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "UPDATE schema_version SET version = 1", NULL, NULL,
	    NULL), SQLITE_OK);
	sqlite3_close(db);
	open_ca(f, f->cakey, false);
	X509_free(x);
	EVP_PKEY_free(k);
}

static void
test_clamp_to_ca(void **state)
{
	struct fx *f = *state;
	EVP_PKEY *k = sc_key_ec("P-256");
	X509 *shortca = make_ca_cert(f->cakey, 30), *x;

	cc_ca_close(f->ca);
	X509_free(f->cacert);
	f->cacert = shortca;
	open_ca(f, f->cakey, false);
	x = issue(f, k, "CN=clamped", NULL, false);
	assert_int_equal(ASN1_TIME_compare(X509_get0_notAfter(x), X509_get0_notAfter(shortca)), 0);
	X509_free(x);
	EVP_PKEY_free(k);
}

static void
test_serial_norm(void **state)
{
	char out[CC_CA_SERIAL_HEX_MAX];

	(void)state;
	assert_int_equal(cc_ca_serial_norm("0a:1b:2c", out), 0);
	assert_string_equal(out, "A1B2C");
	assert_int_equal(cc_ca_serial_norm("0x00FF", out), 0);
	assert_string_equal(out, "FF");
	assert_int_equal(cc_ca_serial_norm("xyz", out), -1);
	assert_int_equal(cc_ca_serial_norm(":", out), -1);
	assert_int_equal(cc_ca_serial_norm("123456789012345678901234567890123456789012", out), -1);
	assert_int_equal(cc_ca_reason_from_name("keyCompromise"), 1);
	assert_int_equal(cc_ca_reason_from_name("superseded"), 4);
	assert_int_equal(cc_ca_reason_from_name("nonsense"), -1);
	assert_string_equal(cc_ca_reason_name(5), "cessationOfOperation");
}

/* ---- batches: how many fsyncs the store pays ---- */

/*
 * A VFS over SQLite's default one that counts xSync on WAL files: the fsyncs a commit at
 * synchronous = FULL pays, and the one cc_ca_batch_sync / cc_ca_batch_end pays for a batch.
 * Registered as the default for the batch test only; every call goes to the real VFS.
 */
struct cnt_file {
	sqlite3_file base;
	sqlite3_file *real;          /* right after this struct, szOsFile of the real VFS */
	bool wal;
};

static sqlite3_vfs *real_vfs;
static atomic_int wal_syncs;

#define REAL(f) (((struct cnt_file *)(f))->real)

static int cnt_close(sqlite3_file *f) { return REAL(f)->pMethods->xClose(REAL(f)); }
static int cnt_read(sqlite3_file *f, void *b, int n, sqlite3_int64 o)
{ return REAL(f)->pMethods->xRead(REAL(f), b, n, o); }
static int cnt_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 o)
{ return REAL(f)->pMethods->xWrite(REAL(f), b, n, o); }
static int cnt_truncate(sqlite3_file *f, sqlite3_int64 n)
{ return REAL(f)->pMethods->xTruncate(REAL(f), n); }
static int
cnt_sync(sqlite3_file *f, int flags)
{
	if (((struct cnt_file *)f)->wal)
		atomic_fetch_add(&wal_syncs, 1);
	return REAL(f)->pMethods->xSync(REAL(f), flags);
}
static int cnt_size(sqlite3_file *f, sqlite3_int64 *n)
{ return REAL(f)->pMethods->xFileSize(REAL(f), n); }
static int cnt_lock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xLock(REAL(f), l); }
static int cnt_unlock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xUnlock(REAL(f), l); }
static int cnt_check(sqlite3_file *f, int *o)
{ return REAL(f)->pMethods->xCheckReservedLock(REAL(f), o); }
static int cnt_fcntl(sqlite3_file *f, int op, void *a)
{ return REAL(f)->pMethods->xFileControl(REAL(f), op, a); }
static int cnt_sector(sqlite3_file *f) { return REAL(f)->pMethods->xSectorSize(REAL(f)); }
static int cnt_dev(sqlite3_file *f) { return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f)); }
static int cnt_shm_map(sqlite3_file *f, int i, int sz, int ext, void volatile **p)
{ return REAL(f)->pMethods->xShmMap(REAL(f), i, sz, ext, p); }
static int cnt_shm_lock(sqlite3_file *f, int o, int n, int fl)
{ return REAL(f)->pMethods->xShmLock(REAL(f), o, n, fl); }
static void cnt_shm_barrier(sqlite3_file *f) { REAL(f)->pMethods->xShmBarrier(REAL(f)); }
static int cnt_shm_unmap(sqlite3_file *f, int del)
{ return REAL(f)->pMethods->xShmUnmap(REAL(f), del); }
static int cnt_fetch(sqlite3_file *f, sqlite3_int64 o, int n, void **p)
{ return REAL(f)->pMethods->xFetch(REAL(f), o, n, p); }
static int cnt_unfetch(sqlite3_file *f, sqlite3_int64 o, void *p)
{ return REAL(f)->pMethods->xUnfetch(REAL(f), o, p); }

static const sqlite3_io_methods cnt_io = {
	3, cnt_close, cnt_read, cnt_write, cnt_truncate, cnt_sync, cnt_size, cnt_lock,
	cnt_unlock, cnt_check, cnt_fcntl, cnt_sector, cnt_dev, cnt_shm_map, cnt_shm_lock,
	cnt_shm_barrier, cnt_shm_unmap, cnt_fetch, cnt_unfetch,
};

static int
cnt_open(sqlite3_vfs *v, const char *name, sqlite3_file *f, int flags, int *out)
{
	struct cnt_file *c = (struct cnt_file *)f;
	int r;

	(void)v;
	c->real = (sqlite3_file *)(c + 1);
	c->wal = (flags & SQLITE_OPEN_WAL) != 0;
	r = real_vfs->xOpen(real_vfs, name, c->real, flags, out);
	/* SQLite calls xClose only when pMethods is set: only on success */
	c->base.pMethods = r == SQLITE_OK && c->real->pMethods != NULL ? &cnt_io : NULL;
	return r;
}

static sqlite3_vfs cnt_vfs;

static void
cnt_vfs_install(void)
{
	real_vfs = sqlite3_vfs_find(NULL);
	assert_non_null(real_vfs);
	cnt_vfs = *real_vfs;
	cnt_vfs.zName = "certconn-count";
	cnt_vfs.szOsFile = (int)sizeof(struct cnt_file) + real_vfs->szOsFile;
	cnt_vfs.xOpen = cnt_open;
	cnt_vfs.pAppData = NULL;
	assert_int_equal(sqlite3_vfs_register(&cnt_vfs, 1), SQLITE_OK);
}

static int
sync_level(struct cc_ca *ca)
{
	sqlite3 *db = cc_ca_db_lock(ca);
	sqlite3_stmt *st = NULL;
	int v = -1;

	if (sqlite3_prepare_v2(db, "PRAGMA synchronous", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	cc_ca_db_unlock(ca);
	return v;
}

static int
count_certs(const char *path)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int n = -1;

	/* another connection, as certconnctl would open it */
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "SELECT count(*) FROM certs", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

struct other {
	struct fx *f;
	EVP_PKEY *k;
	int syncs;                   /* WAL fsyncs this thread's issuance paid */
	int level;                   /* synchronous as this thread sees it */
};

static void *
other_thread(void *arg)
{
	struct other *o = arg;
	int before = atomic_load(&wal_syncs);
	X509 *x;

	/* not in a batch: FULL, and its commit is fsync'd at once */
	o->level = sync_level(o->f->ca);
	x = issue(o->f, o->k, "CN=other thread", NULL, false);
	o->syncs = atomic_load(&wal_syncs) - before;
	X509_free(x);
	return NULL;
}

static void
test_batch(void **state)
{
	struct fx *f = *state;
	EVP_PKEY *k = sc_key_ec("P-256");
	char hex[CC_CA_SERIAL_HEX_MAX], err[256];
	struct other o = { .f = f, .k = k };
	pthread_t th;
	X509 *x[3];
	int s0;

	/* the fixture's store was opened before the counting VFS: reopen it through it */
	cc_ca_close(f->ca);
	cnt_vfs_install();
	open_ca(f, f->cakey, false);
	assert_int_equal(sync_level(f->ca), 2);
	/* the first commit into a fresh WAL also syncs the WAL's header: not counted */
	x[0] = issue(f, k, "CN=first", NULL, false);
	X509_free(x[0]);

	/* outside a batch every commit pays its own fsync (synchronous = FULL) */
	s0 = atomic_load(&wal_syncs);
	x[0] = issue(f, k, "CN=unbatched 1", NULL, false);
	x[1] = issue(f, k, "CN=unbatched 2", NULL, false);
	assert_int_equal(atomic_load(&wal_syncs) - s0, 2);
	X509_free(x[0]);
	X509_free(x[1]);

	/* in a batch: no fsync per commit, yet every commit is visible to other connections */
	cc_ca_batch_begin(f->ca);
	s0 = atomic_load(&wal_syncs);
	for (int i = 0; i < 3; i++)
		x[i] = issue(f, k, "CN=batched", NULL, true);
	assert_int_equal(cc_ca_serial_hex(X509_get0_serialNumber(x[1]), hex), 0);
	assert_int_equal(cc_ca_set_withheld(f->ca, hex, false, err, sizeof(err)), 0);
	assert_int_equal(atomic_load(&wal_syncs) - s0, 0);
	assert_int_equal(sync_level(f->ca), 1);
	assert_int_equal(count_certs(f->db), 6);
	/* another thread meanwhile is not in the batch: FULL for it, its own fsync */
	assert_int_equal(pthread_create(&th, NULL, other_thread, &o), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(o.level, 2);
	assert_int_equal(o.syncs, 1);
	s0 = atomic_load(&wal_syncs);
	/* cc_ca_batch_sync: one fsync for everything so far; the end has nothing left to do */
	assert_int_equal(cc_ca_batch_sync(f->ca, err, sizeof(err)), 0);
	assert_int_equal(atomic_load(&wal_syncs) - s0, 1);
	assert_int_equal(cc_ca_batch_sync(f->ca, err, sizeof(err)), 0);
	assert_int_equal(atomic_load(&wal_syncs) - s0, 1);
	assert_int_equal(cc_ca_revoke(f->ca, hex, 1, err, sizeof(err)), 0);
	assert_int_equal(atomic_load(&wal_syncs) - s0, 1);
	/* the end syncs what was written since (the revocation), once */
	assert_int_equal(cc_ca_batch_end(f->ca, err, sizeof(err)), 0);
	assert_int_equal(atomic_load(&wal_syncs) - s0, 2);
	assert_int_equal(sync_level(f->ca), 2);
	for (int i = 0; i < 3; i++)
		X509_free(x[i]);

	/* a batch that writes nothing (a refused request) pays no fsync; outside a batch the
	 * batch functions do nothing */
	s0 = atomic_load(&wal_syncs);
	cc_ca_batch_begin(f->ca);
	assert_int_equal(sync_level(f->ca), 1);
	assert_int_equal(cc_ca_batch_end(f->ca, err, sizeof(err)), 0);
	assert_int_equal(cc_ca_batch_end(f->ca, err, sizeof(err)), 0);
	assert_int_equal(cc_ca_batch_sync(f->ca, err, sizeof(err)), 0);
	assert_int_equal(atomic_load(&wal_syncs) - s0, 0);
	/* and after it, a commit is fsync'd on its own again */
	x[0] = issue(f, k, "CN=after", NULL, false);
	assert_int_equal(atomic_load(&wal_syncs) - s0, 1);
	assert_int_equal(count_certs(f->db), 8);
	X509_free(x[0]);

	/* everything is still there through a fresh connection after close */
	cc_ca_close(f->ca);
	f->ca = NULL;
	assert_int_equal(sqlite3_vfs_unregister(&cnt_vfs), SQLITE_OK);
	assert_int_equal(count_certs(f->db), 8);
	open_ca(f, f->cakey, false);
	assert_int_equal(cc_ca_find(f->ca, hex, NULL, NULL, err, sizeof(err)), 1);
	EVP_PKEY_free(k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_issue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lookup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_withheld, setup, teardown),
		cmocka_unit_test_setup_teardown(test_revoke_crl, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_clamp_to_ca, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch, setup, teardown),
		cmocka_unit_test(test_serial_norm),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
