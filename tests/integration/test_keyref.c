/*
 * keyref end to end: a real keys process (keys_harness) with the roles' keys in a fresh
 * SoftHSM2 token (test_token), and the keyref provider in this process as net uses it.
 * Everything made through keyref is checked by something else: the default provider,
 * the openssl command-line tools, CMS_decrypt against OpenSSL's own EnvelopedData, and a
 * TLS server on loopback that must see the client's certificate.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>

#include <cmocka.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certconn/keyref.h"
#include "keys_harness.h"
#include "test_token.h"

struct env {
	struct test_token *tok;
	struct keys_harness kh;
	struct keyref_client *cl;
	OSSL_LIB_CTX *libctx;
	char dir[300];          /* scratch files for the openssl tools */
	/* a CA made here (default provider), for the TLS client and CMS recipient certs */
	EVP_PKEY *test_ca_key;
	X509 *test_ca;
};

static struct env E;

/* ---- helpers ---- */

static void
print_errors(const char *what)
{
	fprintf(stderr, "%s failed:\n", what);
	ERR_print_errors_fp(stderr);
}

static EVP_PKEY *
load(const char *role, X509 **cert)
{
	EVP_PKEY *k = keyref_load_key(E.libctx, E.cl, role, cert);

	if (k == NULL)
		print_errors(role);
	assert_non_null(k);
	assert_string_equal(OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(k)),
	    KEYREF_PROVIDER_NAME);
	return k;
}

static EVP_PKEY *
public_copy(EVP_PKEY *k)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	EVP_PKEY *pub;
	int n = i2d_PUBKEY(k, &der);

	assert_true(n > 0);
	p = der;
	pub = d2i_PUBKEY_ex(NULL, &p, n, NULL, "provider=default");
	OPENSSL_free(der);
	assert_non_null(pub);
	return pub;
}

static void
add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;

	X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	assert_non_null(ext);
	assert_int_equal(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
}

/* An unsigned v3 certificate for key, issued by issuer (NULL: self-issued). */
static X509 *
new_cert(EVP_PKEY *key, X509 *issuer, const char *cn, long serial, int days, int ca)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();

	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : n);
	X509_NAME_free(n);
	X509_gmtime_adj(X509_getm_notBefore(x), -300);
	X509_gmtime_adj(X509_getm_notAfter(x), (long)days * 86400);
	assert_int_equal(X509_set_pubkey(x, key), 1);
	add_ext(x, issuer != NULL ? issuer : x, NID_basic_constraints,
	    ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
	add_ext(x, issuer != NULL ? issuer : x, NID_key_usage,
	    ca ? "critical,keyCertSign,cRLSign,digitalSignature"
	    : "critical,digitalSignature,keyEncipherment");
	add_ext(x, issuer != NULL ? issuer : x, NID_subject_key_identifier, "hash");
	if (issuer != NULL)
		add_ext(x, issuer, NID_authority_key_identifier, "keyid:always");
	return x;
}

static void
write_pem_cert(const char *path, X509 *x)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, x), 1);
	fclose(f);
}

/*
 * Runs a command line (through sh) with stdout and stderr into a file; returns the exit
 * status and leaves the output in out (NUL-terminated, truncated to cap).
 */
static int
run(char *out, size_t cap, const char *fmt, ...)
{
	char cmd[2048], log[400];
	va_list ap;
	FILE *f;
	size_t n;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	snprintf(log, sizeof(log), "%s/cmd.out", E.dir);
	{
		char full[2600];

		snprintf(full, sizeof(full), "%s >%s 2>&1", cmd, log);
		st = system(full);
	}
	out[0] = '\0';
	f = fopen(log, "r");
	if (f != NULL) {
		n = fread(out, 1, cap - 1, f);
		out[n] = '\0';
		fclose(f);
	}
	fprintf(stderr, "$ %s\n%s", cmd, out);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static size_t
digest_sign(EVP_PKEY *k, const char *md, int pad, int saltlen, const uint8_t *m, size_t n,
    uint8_t *sig, size_t cap)
{
	EVP_MD_CTX *mctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	size_t siglen = cap;

	assert_int_equal(EVP_DigestSignInit_ex(mctx, &pctx, md, E.libctx, NULL, k, NULL), 1);
	if (pad != 0) {
		assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, pad), 1);
		if (pad == RSA_PKCS1_PSS_PADDING)
			assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, saltlen), 1);
	}
	if (EVP_DigestSign(mctx, sig, &siglen, m, n) != 1) {
		print_errors("EVP_DigestSign");
		fail();
	}
	EVP_MD_CTX_free(mctx);
	return siglen;
}

static int
default_verify(EVP_PKEY *pub, const char *md, int pad, int saltlen, const uint8_t *m, size_t n,
    const uint8_t *sig, size_t siglen)
{
	EVP_MD_CTX *mctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	int r;

	assert_int_equal(EVP_DigestVerifyInit_ex(mctx, &pctx, md, NULL, "provider=default", pub,
	    NULL), 1);
	if (pad != 0) {
		assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, pad), 1);
		if (pad == RSA_PKCS1_PSS_PADDING)
			assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, saltlen), 1);
	}
	r = EVP_DigestVerify(mctx, sig, siglen, m, n);
	EVP_MD_CTX_free(mctx);
	return r;
}

/* ---- setup ---- */

static int
group_setup(void **state)
{
	struct cc_conf_role roles[5];
	struct keys_harness_opts o;
	int fds[CC_MAX_PEER_CHANNELS];

	(void)state;
	E.tok = test_token_new("keyref-test", "4321", NULL, 0);
	roles[0] = keys_harness_role(E.tok, "ca", 0);
	roles[1] = keys_harness_role(E.tok, "ra", 0);
	roles[2] = keys_harness_role(E.tok, "client", 0);
	/* SoftHSM has no OAEP with SHA-2: keys pads itself for this role. */
	roles[3] = keys_harness_role(E.tok, "pfx", CC_ROLE_FALLBACK);
	roles[4] = keys_harness_role(E.tok, "tls", 0);
	memset(&o, 0, sizeof(o));
	o.token = E.tok;
	o.roles = roles;
	o.nroles = 5;
	o.channels = 2;
	o.user = geteuid() == 0 ? TEST_KEYS_USER : NULL;
	o.no_seccomp = getenv("KEYREF_TEST_NO_SECCOMP") != NULL;
	if (keys_harness_start(&E.kh, &o) == -1)
		return -1;
	/* keyref owns the channels from here on: it closes them. */
	for (int i = 0; i < E.kh.npeers; i++) {
		fds[i] = E.kh.peer_fd[i];
		E.kh.peer_fd[i] = -1;
	}
	E.cl = keyref_client_new(fds, E.kh.npeers, 20000);
	E.libctx = OSSL_LIB_CTX_new();
	if (E.cl == NULL || E.libctx == NULL || keyref_provider_load(E.libctx, E.cl) == -1)
		return -1;
	snprintf(E.dir, sizeof(E.dir), "%s/keyref", E.tok->dir);
	if (mkdir(E.dir, 0700) == -1)
		return -1;
	E.test_ca_key = EVP_RSA_gen(2048);
	E.test_ca = new_cert(E.test_ca_key, NULL, "keyref test CA", 1, 30, 1);
	if (X509_sign(E.test_ca, E.test_ca_key, EVP_sha256()) <= 0)
		return -1;
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	X509_free(E.test_ca);
	EVP_PKEY_free(E.test_ca_key);
	keyref_provider_unload(E.libctx);
	OSSL_LIB_CTX_free(E.libctx);
	keyref_client_free(E.cl);
	(void)keys_harness_stop(&E.kh);
	test_token_free(E.tok);
	return 0;
}

static const uint8_t msg[] = "certconn keyref integration test message";

/* ---- signatures ---- */

static void
test_signatures_verify_with_default_provider(void **state)
{
	EVP_PKEY *ra, *client, *rapub, *clpub;
	EVP_PKEY_CTX *ctx;
	uint8_t sig[512], dg[32];
	size_t n;

	(void)state;
	ra = load("ra", NULL);
	client = load("client", NULL);
	rapub = public_copy(ra);
	clpub = public_copy(client);
	assert_int_equal(EVP_PKEY_get_bits(ra), 2048);

	n = digest_sign(ra, "SHA256", RSA_PKCS1_PADDING, 0, msg, sizeof(msg), sig, sizeof(sig));
	assert_int_equal(n, 256);
	assert_int_equal(default_verify(rapub, "SHA256", RSA_PKCS1_PADDING, 0, msg, sizeof(msg),
	    sig, n), 1);
	sig[100] ^= 0x40;
	assert_int_not_equal(default_verify(rapub, "SHA256", RSA_PKCS1_PADDING, 0, msg,
	    sizeof(msg), sig, n), 1);

	n = digest_sign(ra, "SHA256", RSA_PKCS1_PSS_PADDING, RSA_PSS_SALTLEN_DIGEST, msg,
	    sizeof(msg), sig, sizeof(sig));
	assert_int_equal(default_verify(rapub, "SHA256", RSA_PKCS1_PSS_PADDING,
	    RSA_PSS_SALTLEN_DIGEST, msg, sizeof(msg), sig, n), 1);
	n = digest_sign(ra, "SHA384", RSA_PKCS1_PSS_PADDING, RSA_PSS_SALTLEN_MAX, msg,
	    sizeof(msg), sig, sizeof(sig));
	assert_int_equal(default_verify(rapub, "SHA384", RSA_PKCS1_PSS_PADDING,
	    RSA_PSS_SALTLEN_AUTO, msg, sizeof(msg), sig, n), 1);

	n = digest_sign(client, "SHA256", 0, 0, msg, sizeof(msg), sig, sizeof(sig));
	assert_int_equal(default_verify(clpub, "SHA256", 0, 0, msg, sizeof(msg), sig, n), 1);
	n = digest_sign(client, "SHA384", 0, 0, msg, sizeof(msg), sig, sizeof(sig));
	assert_int_equal(default_verify(clpub, "SHA384", 0, 0, msg, sizeof(msg), sig, n), 1);

	/* pre-hashed, EVP_PKEY_sign */
	assert_int_equal(EVP_Digest(msg, sizeof(msg), dg, NULL, EVP_sha256(), NULL), 1);
	ctx = EVP_PKEY_CTX_new_from_pkey(E.libctx, ra, NULL);
	assert_int_equal(EVP_PKEY_sign_init(ctx), 1);
	assert_int_equal(EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()), 1);
	n = sizeof(sig);
	assert_int_equal(EVP_PKEY_sign(ctx, sig, &n, dg, sizeof(dg)), 1);
	EVP_PKEY_CTX_free(ctx);
	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, rapub, "provider=default");
	assert_int_equal(EVP_PKEY_verify_init(ctx), 1);
	assert_int_equal(EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()), 1);
	assert_int_equal(EVP_PKEY_verify(ctx, sig, n, dg, sizeof(dg)), 1);
	EVP_PKEY_CTX_free(ctx);

	/* keys enforces the role's mechanisms: pfx decrypts only. */
	{
		EVP_PKEY *pfx = load("pfx", NULL);
		EVP_MD_CTX *m = EVP_MD_CTX_new();
		unsigned long e;

		n = sizeof(sig);
		assert_int_equal(EVP_DigestSignInit_ex(m, NULL, "SHA256", E.libctx, NULL, pfx,
		    NULL), 1);
		assert_int_not_equal(EVP_DigestSign(m, sig, &n, msg, sizeof(msg)), 1);
		e = ERR_peek_last_error();
		assert_int_equal(ERR_GET_LIB(e), keyref_err_lib());
		assert_int_equal(ERR_GET_REASON(e), CC_KE_DENIED);
		ERR_clear_error();
		EVP_MD_CTX_free(m);
		EVP_PKEY_free(pfx);
	}
	EVP_PKEY_free(rapub);
	EVP_PKEY_free(clpub);
	EVP_PKEY_free(ra);
	EVP_PKEY_free(client);
}

/* ---- the ca role: certificates and CRLs, checked by the openssl tools ---- */

static void
test_ca_signs_cert_and_crl_openssl_verifies(void **state)
{
	EVP_PKEY *ca, *leafkey;
	X509 *cacert = NULL, *leaf;
	X509_CRL *crl;
	X509_REVOKED *rv;
	ASN1_TIME *t;
	ASN1_INTEGER *serial;
	char out[8192], path[400], crlpath[400], capath[400], otherca[400];
	FILE *f;

	(void)state;
	ca = load("ca", &cacert);
	assert_non_null(cacert);
	assert_int_equal(X509_check_private_key(cacert, ca), 1);
	snprintf(capath, sizeof(capath), "%s/ca.pem", E.dir);
	write_pem_cert(capath, cacert);

	/* A leaf within the CA's policy: issuer is the CA, CA:FALSE, 30 days. */
	leafkey = EVP_EC_gen("P-256");
	leaf = new_cert(leafkey, cacert, "device-0001", 1001, 30, 0);
	add_ext(leaf, cacert, NID_ext_key_usage, "clientAuth");
	if (X509_sign(leaf, ca, EVP_sha256()) <= 0) {
		print_errors("X509_sign (leaf)");
		fail();
	}
	snprintf(path, sizeof(path), "%s/leaf.pem", E.dir);
	write_pem_cert(path, leaf);
	assert_int_equal(run(out, sizeof(out), "openssl verify -CAfile %s %s", capath, path), 0);
	assert_non_null(strstr(out, ": OK"));
	/* The same check fails against another CA (the check can fail). */
	snprintf(otherca, sizeof(otherca), "%s/other-ca.pem", E.dir);
	write_pem_cert(otherca, E.test_ca);
	assert_int_not_equal(run(out, sizeof(out), "openssl verify -CAfile %s %s", otherca, path),
	    0);

	/* A CRL: 7 days, one revoked serial. */
	crl = X509_CRL_new();
	assert_int_equal(X509_CRL_set_version(crl, X509_CRL_VERSION_2), 1);
	assert_int_equal(X509_CRL_set_issuer_name(crl, X509_get_subject_name(cacert)), 1);
	t = ASN1_TIME_new();
	X509_gmtime_adj(t, 0);
	X509_CRL_set1_lastUpdate(crl, t);
	X509_gmtime_adj(t, 7 * 86400);
	X509_CRL_set1_nextUpdate(crl, t);
	rv = X509_REVOKED_new();
	serial = ASN1_INTEGER_new();
	ASN1_INTEGER_set(serial, 1001);
	X509_REVOKED_set_serialNumber(rv, serial);
	X509_gmtime_adj(t, -60);
	X509_REVOKED_set_revocationDate(rv, t);
	X509_CRL_add0_revoked(crl, rv);
	X509_CRL_sort(crl);
	if (X509_CRL_sign(crl, ca, EVP_sha256()) <= 0) {
		print_errors("X509_CRL_sign");
		fail();
	}
	snprintf(crlpath, sizeof(crlpath), "%s/crl.pem", E.dir);
	f = fopen(crlpath, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_X509_CRL(f, crl), 1);
	fclose(f);
	assert_int_equal(run(out, sizeof(out), "openssl crl -in %s -CAfile %s -noout -verify",
	    crlpath, capath), 0);
	assert_non_null(strstr(out, "verify OK"));
	assert_int_not_equal(run(out, sizeof(out),
	    "openssl crl -in %s -CAfile %s -noout -verify", crlpath, otherca), 0);
	/* And the CRL revokes the leaf for openssl verify -crl_check. */
	assert_int_not_equal(run(out, sizeof(out), "openssl verify -crl_check -CAfile %s "
	    "-CRLfile %s %s", capath, crlpath, path), 0);
	assert_non_null(strstr(out, "revoked"));

	ASN1_INTEGER_free(serial);
	ASN1_TIME_free(t);
	X509_CRL_free(crl);
	X509_free(leaf);
	EVP_PKEY_free(leafkey);
	X509_free(cacert);
	EVP_PKEY_free(ca);
}

static void
test_ca_refuses_subca(void **state)
{
	EVP_PKEY *ca, *k;
	X509 *cacert = NULL, *sub;
	const char *data = NULL;
	unsigned long e;
	int flags = 0, seen = 0;

	(void)state;
	ca = load("ca", &cacert);
	k = EVP_EC_gen("P-256");
	sub = new_cert(k, cacert, "would-be sub-CA", 2002, 30, 1);
	ERR_clear_error();
	assert_true(X509_sign(sub, ca, EVP_sha256()) <= 0);
	while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
		if (ERR_GET_LIB(e) != keyref_err_lib())
			continue;
		fprintf(stderr, "keyref error: %s\n", data != NULL ? data : "");
		assert_int_equal(ERR_GET_REASON(e), CC_KE_REFUSED);
		assert_true(flags & ERR_TXT_STRING);
		/* keys' own text follows keyref's prefix */
		assert_non_null(strstr(data, "keys: refused by the CA signing policy (key role ca): "));
		assert_true(strlen(strstr(data, "(key role ca): ") + 15) > 0);
		seen = 1;
	}
	assert_true(seen);
	X509_free(sub);
	EVP_PKEY_free(k);
	X509_free(cacert);
	EVP_PKEY_free(ca);
}

/* ---- CMS EnvelopedData to a token key ---- */

static void
cms_roundtrip(EVP_PKEY *pfx, X509 *rcert, int oaep)
{
	static const uint8_t secret[] = "PFX password: correct horse battery staple";
	STACK_OF(X509) *certs = sk_X509_new_null();
	CMS_ContentInfo *cms, *back;
	CMS_RecipientInfo *ri;
	X509_ALGOR *alg = NULL;
	BIO *in, *der, *out;
	unsigned char *p;
	long n;

	in = BIO_new_mem_buf(secret, sizeof(secret));
	if (!oaep) {
		sk_X509_push(certs, rcert);
		cms = CMS_encrypt(certs, in, EVP_aes_256_cbc(), CMS_BINARY);
		assert_non_null(cms);
	} else {
		EVP_PKEY_CTX *pctx;

		cms = CMS_encrypt(certs, in, EVP_aes_256_cbc(), CMS_BINARY | CMS_PARTIAL);
		assert_non_null(cms);
		ri = CMS_add1_recipient_cert(cms, rcert, CMS_KEY_PARAM);
		assert_non_null(ri);
		pctx = CMS_RecipientInfo_get0_pkey_ctx(ri);
		assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_OAEP_PADDING), 1);
		assert_int_equal(EVP_PKEY_CTX_set_rsa_oaep_md(pctx, EVP_sha256()), 1);
		assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()), 1);
		assert_int_equal(CMS_final(cms, in, NULL, CMS_BINARY), 1);
	}
	/* The key transport really is the one asked for. */
	ri = sk_CMS_RecipientInfo_value(CMS_get0_RecipientInfos(cms), 0);
	assert_int_equal(CMS_RecipientInfo_ktri_get0_algs(ri, NULL, NULL, &alg), 1);
	assert_int_equal(OBJ_obj2nid(alg->algorithm), oaep ? NID_rsaesOaep : NID_rsaEncryption);

	/* Through DER, as a PFX password envelope would arrive. */
	der = BIO_new(BIO_s_mem());
	assert_int_equal(i2d_CMS_bio(der, cms), 1);
	n = BIO_get_mem_data(der, &p);
	assert_true(n > 0);
	back = d2i_CMS_bio(der, NULL);
	assert_non_null(back);
	out = BIO_new(BIO_s_mem());
	if (CMS_decrypt(back, pfx, rcert, NULL, out, CMS_BINARY) != 1) {
		print_errors("CMS_decrypt");
		fail();
	}
	n = BIO_get_mem_data(out, &p);
	assert_int_equal(n, (long)sizeof(secret));
	assert_memory_equal(p, secret, sizeof(secret));

	BIO_free(out);
	BIO_free(der);
	BIO_free(in);
	CMS_ContentInfo_free(back);
	CMS_ContentInfo_free(cms);
	sk_X509_free(certs);
}

static void
test_cms_envelope_decrypts(void **state)
{
	EVP_PKEY *pfx, *pub;
	X509 *rcert;

	(void)state;
	pfx = load("pfx", NULL);
	pub = public_copy(pfx);
	rcert = new_cert(pub, E.test_ca, "connector pfx", 3003, 30, 0);
	assert_true(X509_sign(rcert, E.test_ca_key, EVP_sha256()) > 0);
	cms_roundtrip(pfx, rcert, 0);
	cms_roundtrip(pfx, rcert, 1);
	X509_free(rcert);
	EVP_PKEY_free(pub);
	EVP_PKEY_free(pfx);
}

/* ---- CMS SignedData (as a SCEP CertRep is signed) ---- */

static void
cms_sign_verify(EVP_PKEY *k, X509 *cert)
{
	static const uint8_t content[] = "SCEP CertRep payload";
	CMS_ContentInfo *cms;
	X509_STORE *st = X509_STORE_new();
	BIO *in = BIO_new_mem_buf(content, sizeof(content));
	BIO *out = BIO_new(BIO_s_mem());
	unsigned char *p;
	long n;

	cms = CMS_sign(cert, k, NULL, in, CMS_BINARY);
	if (cms == NULL) {
		print_errors("CMS_sign");
		fail();
	}
	assert_int_equal(X509_STORE_add_cert(st, E.test_ca), 1);
	if (CMS_verify(cms, NULL, st, NULL, out, CMS_BINARY) != 1) {
		print_errors("CMS_verify");
		fail();
	}
	n = BIO_get_mem_data(out, &p);
	assert_int_equal(n, (long)sizeof(content));
	assert_memory_equal(p, content, sizeof(content));
	CMS_ContentInfo_free(cms);
	BIO_free(out);
	BIO_free(in);
	X509_STORE_free(st);
}

static void
test_cms_signed_data(void **state)
{
	static const char *const roles[] = { "ra", "client" };

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		EVP_PKEY *k = load(roles[i], NULL), *pub = public_copy(k);
		X509 *c = new_cert(pub, E.test_ca, roles[i], 6006 + (long)i, 30, 0);

		assert_true(X509_sign(c, E.test_ca_key, EVP_sha256()) > 0);
		cms_sign_verify(k, c);
		X509_free(c);
		EVP_PKEY_free(pub);
		EVP_PKEY_free(k);
	}
}

/* ---- TLS with client authentication on loopback ---- */

struct tls_server {
	SSL_CTX *ctx;
	int lfd;
	int port;
	pthread_t th;
	int ok;                 /* handshake done and a client certificate seen */
	int peer_sigtype;       /* NID of the client's CertificateVerify signature type */
	char peer_cn[128];
	char err[512];
};

static void *
tls_server_main(void *arg)
{
	struct tls_server *s = arg;
	SSL *ssl = NULL;
	X509 *peer;
	char buf[16];
	int fd;
	struct timeval tv = { 20, 0 };

	fd = accept(s->lfd, NULL, NULL);
	if (fd == -1)
		return NULL;
	/* A client that failed half-way must not leave this thread waiting for ever. */
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	ssl = SSL_new(s->ctx);
	SSL_set_fd(ssl, fd);
	if (SSL_accept(ssl) != 1) {
		ERR_error_string_n(ERR_get_error(), s->err, sizeof(s->err));
		goto out;
	}
	peer = SSL_get1_peer_certificate(ssl);
	if (peer != NULL) {
		X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, s->peer_cn,
		    sizeof(s->peer_cn));
		X509_free(peer);
		s->ok = SSL_get_verify_result(ssl) == X509_V_OK;
	}
	if (SSL_read(ssl, buf, sizeof(buf)) > 0) {
		(void)SSL_get_peer_signature_type_nid(ssl, &s->peer_sigtype);
		(void)SSL_write(ssl, "pong", 4);
	}
	(void)SSL_shutdown(ssl);
out:
	SSL_free(ssl);
	close(fd);
	ERR_clear_error();
	return NULL;
}

/*
 * One TLS handshake on loopback with client authentication by ckey/ccert. The client's
 * SSL_CTX lives in lc (NULL: OpenSSL's default context, where keyref is not loaded, as
 * with libcurl's SSL_CTX: the key's own provider still does the signing).
 */
static void
tls_handshake(OSSL_LIB_CTX *lc, EVP_PKEY *ckey, X509 *ccert, int version,
    const char *client_sigalgs, const char *expect_cn, int expect_sigtype)
{
	struct tls_server s;
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	EVP_PKEY *skey;
	X509 *scert;
	SSL_CTX *cctx;
	SSL *ssl;
	X509_STORE *st;
	char buf[16];
	int fd, n;

	memset(&s, 0, sizeof(s));
	/* server: a default-provider key and certificate made here */
	skey = EVP_EC_gen("P-256");
	scert = new_cert(skey, E.test_ca, "localhost", 4004, 1, 0);
	assert_true(X509_sign(scert, E.test_ca_key, EVP_sha256()) > 0);
	s.ctx = SSL_CTX_new(TLS_server_method());
	assert_int_equal(SSL_CTX_use_certificate(s.ctx, scert), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(s.ctx, skey), 1);
	assert_int_equal(SSL_CTX_set_min_proto_version(s.ctx, version), 1);
	assert_int_equal(SSL_CTX_set_max_proto_version(s.ctx, version), 1);
	st = SSL_CTX_get_cert_store(s.ctx);
	assert_int_equal(X509_STORE_add_cert(st, E.test_ca), 1);
	SSL_CTX_set_verify(s.ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);

	s.lfd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s.lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(s.lfd, 1), 0);
	assert_int_equal(getsockname(s.lfd, (struct sockaddr *)&a, &alen), 0);
	assert_int_equal(pthread_create(&s.th, NULL, tls_server_main, &s), 0);

	/* client: the token key through keyref, as net's service client would use it */
	cctx = SSL_CTX_new_ex(lc, NULL, TLS_client_method());
	assert_non_null(cctx);
	assert_int_equal(SSL_CTX_set_min_proto_version(cctx, version), 1);
	assert_int_equal(SSL_CTX_set_max_proto_version(cctx, version), 1);
	assert_int_equal(SSL_CTX_use_certificate(cctx, ccert), 1);
	if (SSL_CTX_use_PrivateKey(cctx, ckey) != 1) {
		print_errors("SSL_CTX_use_PrivateKey");
		fail();
	}
	assert_int_equal(SSL_CTX_check_private_key(cctx), 1);
	if (client_sigalgs != NULL)
		assert_int_equal(SSL_CTX_set1_client_sigalgs_list(cctx, client_sigalgs), 1);
	assert_int_equal(X509_STORE_add_cert(SSL_CTX_get_cert_store(cctx), E.test_ca), 1);
	SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);

	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ssl = SSL_new(cctx);
	SSL_set_fd(ssl, fd);
	SSL_set_tlsext_host_name(ssl, "localhost");
	if (SSL_connect(ssl) != 1) {
		print_errors("SSL_connect");
		fail();
	}
	assert_int_equal(SSL_version(ssl), version);
	/* TLS 1.3 sends the client's CertificateVerify after the handshake "completes". */
	assert_int_equal(SSL_write(ssl, "ping", 4), 4);
	n = SSL_read(ssl, buf, sizeof(buf));
	if (n != 4)
		print_errors("SSL_read");
	assert_int_equal(n, 4);
	assert_memory_equal(buf, "pong", 4);
	(void)SSL_shutdown(ssl);
	SSL_free(ssl);
	close(fd);
	pthread_join(s.th, NULL);
	if (s.err[0] != '\0')
		fprintf(stderr, "server: %s\n", s.err);
	assert_true(s.ok);
	assert_string_equal(s.peer_cn, expect_cn);
	assert_int_equal(s.peer_sigtype, expect_sigtype);

	SSL_CTX_free(cctx);
	close(s.lfd);
	SSL_CTX_free(s.ctx);
	X509_free(scert);
	EVP_PKEY_free(skey);
}

static void
test_tls_client_auth(void **state)
{
	EVP_PKEY *client, *ra, *pub;
	X509 *ccert, *racert;

	(void)state;
	client = load("client", NULL);
	pub = public_copy(client);
	ccert = new_cert(pub, E.test_ca, "connector client", 5005, 30, 0);
	assert_true(X509_sign(ccert, E.test_ca_key, EVP_sha256()) > 0);
	EVP_PKEY_free(pub);
	/* the client role (EC P-256): ECDSA in TLS 1.3 and 1.2 */
	tls_handshake(E.libctx, client, ccert, TLS1_3_VERSION, NULL, "connector client",
	    NID_X9_62_id_ecPublicKey);
	tls_handshake(E.libctx, client, ccert, TLS1_2_VERSION, NULL, "connector client",
	    NID_X9_62_id_ecPublicKey);
	tls_handshake(NULL, client, ccert, TLS1_3_VERSION, NULL, "connector client",
	    NID_X9_62_id_ecPublicKey);

	/* an RSA role: RSA-PSS in TLS 1.3, PKCS#1 v1.5 when TLS 1.2 is told to use it */
	ra = load("ra", NULL);
	pub = public_copy(ra);
	racert = new_cert(pub, E.test_ca, "connector ra", 5006, 30, 0);
	assert_true(X509_sign(racert, E.test_ca_key, EVP_sha256()) > 0);
	EVP_PKEY_free(pub);
	tls_handshake(E.libctx, ra, racert, TLS1_3_VERSION, NULL, "connector ra", NID_rsassaPss);
	tls_handshake(E.libctx, ra, racert, TLS1_2_VERSION, "RSA+SHA256", "connector ra",
	    NID_rsaEncryption);
	tls_handshake(NULL, ra, racert, TLS1_2_VERSION, NULL, "connector ra", NID_rsassaPss);

	X509_free(racert);
	X509_free(ccert);
	EVP_PKEY_free(ra);
	EVP_PKEY_free(client);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_signatures_verify_with_default_provider),
		cmocka_unit_test(test_ca_signs_cert_and_crl_openssl_verifies),
		cmocka_unit_test(test_ca_refuses_subca),
		cmocka_unit_test(test_cms_envelope_decrypts),
		cmocka_unit_test(test_cms_signed_data),
		cmocka_unit_test(test_tls_client_auth),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
