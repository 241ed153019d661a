/*
 * cc_pkcs (src/pkcs, certconn/pkcs.h) with real OpenSSL objects, every result checked with
 * plain OpenSSL or the `openssl` command, not with the library itself: envelopes opened by
 * CMS_decrypt with the device's key (RSA and EC, with and without a certificate), PKCS#12
 * opened by PKCS12_parse and their algorithm OIDs read, PFX files made by `openssl pkcs12
 * -export` (default and -legacy) opened, the Intune password form cross-checked with
 * `openssl pkeyutl` both ways, and every refusal with the pkcs_err it must give.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/asn1t.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certconn/pkcs.h"

static char dir[] = "/tmp/test_pkcs.XXXXXX";
static EVP_PKEY *ca_key, *rsa_key, *ec_key;
static X509 *ca_cert, *rsa_cert, *ec_cert;
static char errbuf[1024];

/* A pkcs_* call's result, with the library's message when it is not the one expected. */
#define assert_pkcs(call, want) do { \
	int r_; \
	errbuf[0] = '\0'; \
	r_ = (int)(call); \
	if (r_ != (int)(want)) \
		fail_msg("line %d: got %d, want %d: %s", __LINE__, r_, (int)(want), errbuf); \
} while (0)

/* ---- helpers (plain OpenSSL) ---- */

static X509 *
make_cert(EVP_PKEY *key, const char *cn, EVP_PKEY *issuer_key, X509 *issuer, bool ca)
{
	X509 *x = X509_new();
	X509V3_CTX v3;
	X509_EXTENSION *ext;

	assert_non_null(x);
	assert_int_equal(X509_set_version(x, 2), 1);
	ASN1_INTEGER_set(X509_get_serialNumber(x), (long)(rand() & 0x7fffffff) + 1);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
	    (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) :
	    X509_get_subject_name(x));
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	X509V3_set_ctx(&v3, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, ca ? "critical,CA:TRUE" :
	    "CA:FALSE");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	assert_true(X509_sign(x, issuer_key != NULL ? issuer_key : key, EVP_sha256()) > 0);
	/* through DER: a clean object, as one read from a request would be */
	{
		unsigned char *d = NULL;
		const unsigned char *p;
		int n = i2d_X509(x, &d);
		X509 *y;

		p = d;
		y = d2i_X509(NULL, &p, n);
		assert_non_null(y);
		OPENSSL_free(d);
		X509_free(x);
		x = y;
	}
	return x;
}

static void
write_pem_key(const char *name, EVP_PKEY *k, bool pub)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(pub ? PEM_write_PUBKEY(f, k) : PEM_write_PrivateKey(f, k, NULL, NULL, 0,
	    NULL, NULL), 1);
	fclose(f);
}

static void
write_pem_cert(const char *name, X509 *x)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, x), 1);
	fclose(f);
}

static void
write_file(const char *name, const void *b, size_t n)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(b, 1, n, f), n);
	fclose(f);
}

static uint8_t *
read_file(const char *name, size_t *n)
{
	char path[256];
	uint8_t *b;
	FILE *f;
	long l;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	l = ftell(f);
	rewind(f);
	b = malloc((size_t)l + 1);
	assert_non_null(b);
	assert_int_equal(fread(b, 1, (size_t)l, f), (size_t)l);
	b[l] = 0;
	fclose(f);
	*n = (size_t)l;
	return b;
}

static void
run(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	int r;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	r = system(cmd);
	if (r != 0)
		fail_msg("command failed (%d): %s", r, cmd);
}

static char *
b64_of(const uint8_t *d, size_t n)
{
	char *s = malloc((n + 2) / 3 * 4 + 1);

	assert_non_null(s);
	EVP_EncodeBlock((unsigned char *)s, d, (int)n);
	return s;
}

static char *
spki_b64(EVP_PKEY *k)
{
	unsigned char *d = NULL;
	int n = i2d_PUBKEY(k, &d);
	char *s;

	assert_true(n > 0);
	s = b64_of(d, (size_t)n);
	OPENSSL_free(d);
	return s;
}

static char *
cert_b64(X509 *x)
{
	unsigned char *d = NULL;
	int n = i2d_X509(x, &d);
	char *s;

	assert_true(n > 0);
	s = b64_of(d, (size_t)n);
	OPENSSL_free(d);
	return s;
}

static bool
same_key(EVP_PKEY *a, EVP_PKEY *b)
{
	return EVP_PKEY_eq(a, b) == 1;
}

/* ---- fixtures ---- */

static int
setup(void **state)
{
	(void)state;
	if (mkdtemp(dir) == NULL)
		return -1;
	ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	rsa_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	ec_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (ca_key == NULL || rsa_key == NULL || ec_key == NULL)
		return -1;
	ca_cert = make_cert(ca_key, "Test CA", NULL, NULL, true);
	rsa_cert = make_cert(rsa_key, "rsa device", ca_key, ca_cert, false);
	ec_cert = make_cert(ec_key, "ec device", ca_key, ca_cert, false);
	write_pem_key("ca.key", ca_key, false);
	write_pem_cert("ca.pem", ca_cert);
	write_pem_key("rsa.key", rsa_key, false);
	write_pem_key("rsa.pub", rsa_key, true);
	write_pem_cert("rsa.pem", rsa_cert);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[300];

	(void)state;
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(rsa_key);
	EVP_PKEY_free(ec_key);
	X509_free(ca_cert);
	X509_free(rsa_cert);
	X509_free(ec_cert);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- 1. keys ---- */

static void
test_keygen(void **state)
{
	static const struct { const char *spec, *type, *group; int bits; } want[] = {
		{ "rsa2048", "RSA", NULL, 2048 }, { "rsa3072", "RSA", NULL, 3072 },
		{ "p256", "EC", "prime256v1", 256 }, { "p384", "EC", "secp384r1", 384 },
	};
	EVP_PKEY *k;

	(void)state;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		char group[32];

		assert_true(pkcs_keyspec_valid(want[i].spec));
		assert_pkcs(pkcs_keygen(NULL, want[i].spec, &k, errbuf, sizeof(errbuf)),
		    PKCS_OK);
		assert_true(EVP_PKEY_is_a(k, want[i].type));
		assert_int_equal(EVP_PKEY_get_bits(k), want[i].bits);
		if (want[i].group != NULL) {
			assert_int_equal(EVP_PKEY_get_utf8_string_param(k, "group", group,
			    sizeof(group), NULL), 1);
			assert_string_equal(group, want[i].group);
		}
		/* a private key that works: sign and verify with plain EVP */
		{
			EVP_MD_CTX *m = EVP_MD_CTX_new();
			unsigned char sig[1024];
			size_t sl = sizeof(sig);

			assert_int_equal(EVP_DigestSignInit(m, NULL, EVP_sha256(), NULL, k), 1);
			assert_int_equal(EVP_DigestSign(m, sig, &sl, (const unsigned char *)"x", 1), 1);
			EVP_MD_CTX_reset(m);
			assert_int_equal(EVP_DigestVerifyInit(m, NULL, EVP_sha256(), NULL, k), 1);
			assert_int_equal(EVP_DigestVerify(m, sig, sl, (const unsigned char *)"x", 1), 1);
			EVP_MD_CTX_free(m);
		}
		EVP_PKEY_free(k);
	}
	assert_true(pkcs_keyspec_valid("rsa4096"));
	assert_false(pkcs_keyspec_valid("rsa1024"));
	assert_false(pkcs_keyspec_valid("P256"));
	assert_false(pkcs_keyspec_valid(NULL));
	assert_pkcs(pkcs_keygen(NULL, "ed25519", &k, errbuf, sizeof(errbuf)),
	    PKCS_E_UNSUPPORTED);
	assert_null(k);
	assert_non_null(strstr(errbuf, "ed25519"));
	assert_int_equal(ERR_peek_error(), 0);
}

/* ---- 2. CSR ---- */

static void
check_csr(EVP_PKEY *key, int want_sig_nid)
{
	const char *sans[] = { "dev1.example.com", "alt.example.com" };
	X509_REQ *req;
	STACK_OF(X509_EXTENSION) *exts;
	GENERAL_NAMES *gens;
	char buf[256];

	assert_pkcs(pkcs_csr_build(NULL, key, "CN=dev1,O=Example\\, Inc,OU=Devices", sans, 2,
	    &req, errbuf, sizeof(errbuf)), PKCS_OK);
	assert_int_equal(X509_REQ_verify(req, key), 1);
	assert_int_equal(X509_REQ_get_signature_nid(req), want_sig_nid);
	assert_true(X509_NAME_get_text_by_NID(X509_REQ_get_subject_name(req), NID_commonName, buf,
	    sizeof(buf)) > 0);
	assert_string_equal(buf, "dev1");
	assert_true(X509_NAME_get_text_by_NID(X509_REQ_get_subject_name(req),
	    NID_organizationName, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "Example, Inc");
	exts = X509_REQ_get_extensions(req);
	assert_non_null(exts);
	gens = X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL);
	assert_non_null(gens);
	assert_int_equal(sk_GENERAL_NAME_num(gens), 2);
	{
		int type;
		ASN1_IA5STRING *s = GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(gens, 1), &type);

		assert_int_equal(type, GEN_DNS);
		assert_string_equal((const char *)ASN1_STRING_get0_data(s), "alt.example.com");
	}
	GENERAL_NAMES_free(gens);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_free(req);
}

static void
test_csr(void **state)
{
	const char *bad_san[] = { "" };
	X509_REQ *req;

	(void)state;
	check_csr(rsa_key, NID_sha256WithRSAEncryption);
	check_csr(ec_key, NID_ecdsa_with_SHA256);
	/* no SANs */
	assert_pkcs(pkcs_csr_build(NULL, rsa_key, "CN=x", NULL, 0, &req, errbuf,
	    sizeof(errbuf)), PKCS_OK);
	{
		STACK_OF(X509_EXTENSION) *none = X509_REQ_get_extensions(req);

		assert_int_equal(sk_X509_EXTENSION_num(none), 0);
		sk_X509_EXTENSION_free(none);
	}
	X509_REQ_free(req);
	assert_pkcs(pkcs_csr_build(NULL, rsa_key, "CN", NULL, 0, &req, errbuf,
	    sizeof(errbuf)), PKCS_E_INVALID);
	assert_null(req);
	assert_pkcs(pkcs_csr_build(NULL, rsa_key, "NOSUCHATTR=x", NULL, 0, &req, errbuf,
	    sizeof(errbuf)), PKCS_E_INVALID);
	assert_non_null(strstr(errbuf, "NOSUCHATTR"));
	assert_pkcs(pkcs_csr_build(NULL, rsa_key, "CN=a,", NULL, 0, &req, errbuf,
	    sizeof(errbuf)), PKCS_E_INVALID);
	assert_pkcs(pkcs_csr_build(NULL, rsa_key, "CN=x", bad_san, 1, &req, errbuf,
	    sizeof(errbuf)), PKCS_E_INVALID);
	assert_int_equal(ERR_peek_error(), 0);
}

/* ---- 3. PKCS#12 ---- */

/* Algorithms of a PKCS#12 read from its structure with OpenSSL's accessors. */
struct p12_algs {
	int mac_md;          /* NID of the MAC digest */
	int key_alg;         /* NID of the shrouded key bag's algorithm (pbes2 or a PBE) */
	int key_cipher;      /* PBES2: NID of the cipher */
	int key_prf;         /* PBES2: NID of PBKDF2's PRF */
	int cert_alg;        /* NID of the encrypted certificate bag's algorithm */
	int cert_cipher;
};

static void
pbes2_of(const X509_ALGOR *alg, int *cipher, int *prf)
{
	PBE2PARAM *p2 = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBE2PARAM), alg->parameter);
	PBKDF2PARAM *kdf;

	assert_non_null(p2);
	*cipher = OBJ_obj2nid(p2->encryption->algorithm);
	assert_int_equal(OBJ_obj2nid(p2->keyfunc->algorithm), NID_id_pbkdf2);
	kdf = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBKDF2PARAM), p2->keyfunc->parameter);
	assert_non_null(kdf);
	*prf = kdf->prf != NULL ? OBJ_obj2nid(kdf->prf->algorithm) : NID_hmacWithSHA1;
	PBKDF2PARAM_free(kdf);
	PBE2PARAM_free(p2);
}

static void
p12_algorithms(const uint8_t *der, size_t len, struct p12_algs *a)
{
	const unsigned char *p = der;
	PKCS12 *p12 = d2i_PKCS12(NULL, &p, (long)len);
	STACK_OF(PKCS7) *safes;
	const X509_ALGOR *macalg;
	const ASN1_OBJECT *obj;

	memset(a, 0, sizeof(*a));
	assert_non_null(p12);
	PKCS12_get0_mac(NULL, &macalg, NULL, NULL, p12);
	X509_ALGOR_get0(&obj, NULL, NULL, macalg);
	a->mac_md = OBJ_obj2nid(obj);
	safes = PKCS12_unpack_authsafes(p12);
	assert_non_null(safes);
	for (int i = 0; i < sk_PKCS7_num(safes); i++) {
		PKCS7 *p7 = sk_PKCS7_value(safes, i);

		if (PKCS7_type_is_encrypted(p7)) {
			X509_ALGOR *alg = p7->d.encrypted->enc_data->algorithm;

			a->cert_alg = OBJ_obj2nid(alg->algorithm);
			if (a->cert_alg == NID_pbes2) {
				int prf;
				pbes2_of(alg, &a->cert_cipher, &prf);
			}
		} else if (PKCS7_type_is_data(p7)) {
			STACK_OF(PKCS12_SAFEBAG) *bags = PKCS12_unpack_p7data(p7);

			for (int j = 0; j < sk_PKCS12_SAFEBAG_num(bags); j++) {
				PKCS12_SAFEBAG *bag = sk_PKCS12_SAFEBAG_value(bags, j);
				const X509_ALGOR *alg;

				if (PKCS12_SAFEBAG_get_nid(bag) != NID_pkcs8ShroudedKeyBag)
					continue;
				X509_SIG_get0(PKCS12_SAFEBAG_get0_pkcs8(bag), &alg, NULL);
				a->key_alg = OBJ_obj2nid(alg->algorithm);
				if (a->key_alg == NID_pbes2)
					pbes2_of(alg, &a->key_cipher, &a->key_prf);
			}
			sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
		}
	}
	sk_PKCS7_pop_free(safes, PKCS7_free);
	PKCS12_free(p12);
}

static void
open_with_openssl(const uint8_t *der, size_t len, const char *pw, EVP_PKEY *want_key,
    X509 *want_cert, int want_chain)
{
	const unsigned char *p = der;
	PKCS12 *p12 = d2i_PKCS12(NULL, &p, (long)len);
	EVP_PKEY *k = NULL;
	X509 *c = NULL;
	STACK_OF(X509) *ca = NULL;

	assert_non_null(p12);
	assert_int_equal(PKCS12_verify_mac(p12, pw, -1), 1);
	assert_int_equal(PKCS12_verify_mac(p12, "wrong", -1), 0);
	assert_int_equal(PKCS12_parse(p12, pw, &k, &c, &ca), 1);
	assert_true(same_key(k, want_key));
	assert_int_equal(X509_cmp(c, want_cert), 0);
	assert_int_equal(ca != NULL ? sk_X509_num(ca) : 0, want_chain);
	EVP_PKEY_free(k);
	X509_free(c);
	sk_X509_pop_free(ca, X509_free);
	PKCS12_free(p12);
	ERR_clear_error();
}

static void
test_p12_pack(void **state)
{
	STACK_OF(X509) *chain = sk_X509_new_null();
	struct p12_algs a;
	char pw[PKCS_PASSWORD_LEN + 1];
	uint8_t *der;
	size_t len;

	(void)state;
	sk_X509_push(chain, ca_cert);
	assert_pkcs(pkcs_password_random(pw, sizeof(pw)), PKCS_OK);

	/* AES-256: PBES2 / PBKDF2-HMAC-SHA256 / AES-256-CBC for both bags, SHA-256 MAC */
	assert_pkcs(pkcs_p12_pack(NULL, rsa_key, rsa_cert, chain, pw, PKCS_P12_AES256,
	    "device", &der, &len, errbuf, sizeof(errbuf)), PKCS_OK);
	open_with_openssl(der, len, pw, rsa_key, rsa_cert, 1);
	p12_algorithms(der, len, &a);
	assert_int_equal(a.mac_md, NID_sha256);
	assert_int_equal(a.key_alg, NID_pbes2);
	assert_int_equal(a.key_cipher, NID_aes_256_cbc);
	assert_int_equal(a.key_prf, NID_hmacWithSHA256);
	assert_int_equal(a.cert_alg, NID_pbes2);
	assert_int_equal(a.cert_cipher, NID_aes_256_cbc);
	/* and the `openssl pkcs12` command reads it */
	write_file("aes.p12", der, len);
	run("openssl pkcs12 -in '%s/aes.p12' -passin pass:%s -nodes -out '%s/aes.out' "
	    "2>/dev/null", dir, pw, dir);
	pkcs_buf_free(der, len);

	/* legacy: 3DES PBE for key and certificates, SHA-1 MAC */
	assert_pkcs(pkcs_p12_pack(NULL, ec_key, ec_cert, NULL, pw, PKCS_P12_LEGACY, NULL,
	    &der, &len, errbuf, sizeof(errbuf)), PKCS_OK);
	open_with_openssl(der, len, pw, ec_key, ec_cert, 0);
	p12_algorithms(der, len, &a);
	assert_int_equal(a.mac_md, NID_sha1);
	assert_int_equal(a.key_alg, NID_pbe_WithSHA1And3_Key_TripleDES_CBC);
	assert_int_equal(a.cert_alg, NID_pbe_WithSHA1And3_Key_TripleDES_CBC);
	pkcs_buf_free(der, len);

	/* refusals */
	assert_pkcs(pkcs_p12_pack(NULL, ec_key, rsa_cert, NULL, pw, PKCS_P12_AES256, NULL,
	    &der, &len, errbuf, sizeof(errbuf)), PKCS_E_INVALID);
	assert_null(der);
	assert_pkcs(pkcs_p12_pack(NULL, rsa_key, rsa_cert, NULL, "", PKCS_P12_AES256, NULL,
	    &der, &len, errbuf, sizeof(errbuf)), PKCS_E_INVALID);
	sk_X509_free(chain);
	assert_int_equal(ERR_peek_error(), 0);
}

static void
test_password_random(void **state)
{
	char a[PKCS_PASSWORD_LEN + 1], b[PKCS_PASSWORD_LEN + 1], tiny[1] = { 'x' };

	(void)state;
	assert_pkcs(pkcs_password_random(a, sizeof(a)), PKCS_OK);
	assert_pkcs(pkcs_password_random(b, sizeof(b)), PKCS_OK);
	assert_int_equal(strlen(a), PKCS_PASSWORD_LEN);
	assert_string_not_equal(a, b);
	for (size_t i = 0; i < strlen(a); i++)
		assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		    "0123456789-_", a[i]));
	assert_pkcs(pkcs_password_random(tiny, sizeof(tiny)), PKCS_E_INVALID);
	assert_int_equal(tiny[0], '\0');
	assert_pkcs(pkcs_password_random(NULL, 10), PKCS_E_INVALID);
}

/* ---- 4. device recipients and envelopes ---- */

static void
test_device_from_b64(void **state)
{
	struct pkcs_device d;
	char *pk = spki_b64(rsa_key), *ec = spki_b64(ec_key), *crt = cert_b64(ec_cert);
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	char *edb = spki_b64(ed);

	(void)state;
	assert_pkcs(pkcs_device_from_b64(NULL, pk, NULL, &d, errbuf, sizeof(errbuf)),
	    PKCS_OK);
	assert_true(same_key(d.pub, rsa_key));
	assert_null(d.cert);
	pkcs_device_clear(&d);
	assert_null(d.pub);
	/* the certificate wins over the public key */
	assert_pkcs(pkcs_device_from_b64(NULL, pk, crt, &d, errbuf, sizeof(errbuf)),
	    PKCS_OK);
	assert_true(same_key(d.pub, ec_key));
	assert_int_equal(X509_cmp(d.cert, ec_cert), 0);
	pkcs_device_clear(&d);
	assert_pkcs(pkcs_device_from_b64(NULL, ec, "", &d, errbuf, sizeof(errbuf)), PKCS_OK);
	pkcs_device_clear(&d);
	/* refusals */
	assert_pkcs(pkcs_device_from_b64(NULL, NULL, NULL, &d, errbuf, sizeof(errbuf)),
	    PKCS_E_INVALID);
	assert_pkcs(pkcs_device_from_b64(NULL, "!!notbase64!!", NULL, &d, errbuf,
	    sizeof(errbuf)), PKCS_E_INVALID);
	pk[strlen(pk) - 5] = '\0'; /* truncated */
	assert_pkcs(pkcs_device_from_b64(NULL, pk, NULL, &d, errbuf, sizeof(errbuf)),
	    PKCS_E_INVALID);
	assert_pkcs(pkcs_device_from_b64(NULL, "aGVsbG8gd29ybGQ=", NULL, &d, errbuf,
	    sizeof(errbuf)), PKCS_E_INVALID);
	assert_pkcs(pkcs_device_from_b64(NULL, NULL, "aGVsbG8gd29ybGQ=", &d, errbuf,
	    sizeof(errbuf)), PKCS_E_INVALID);
	assert_null(d.pub);
	assert_pkcs(pkcs_device_from_b64(NULL, edb, NULL, &d, errbuf, sizeof(errbuf)),
	    PKCS_E_UNSUPPORTED);
	assert_non_null(strstr(errbuf, "ED25519"));
	{
		size_t big = PKCS_MAX_B64 + 8;
		char *huge = malloc(big + 1);

		memset(huge, 'A', big);
		huge[big] = '\0';
		assert_pkcs(pkcs_device_from_b64(NULL, huge, NULL, &d, errbuf,
		    sizeof(errbuf)), PKCS_E_INVALID);
		free(huge);
	}
	free(pk);
	free(ec);
	free(crt);
	free(edb);
	EVP_PKEY_free(ed);
	assert_int_equal(ERR_peek_error(), 0);
}

/* What plain OpenSSL sees in an envelope, opened with CMS_decrypt(cms, pkey, cert). */
static void
device_opens(const uint8_t *der, size_t len, EVP_PKEY *pkey, X509 *cert, const uint8_t *want,
    size_t want_len, int want_ri_type, bool want_keyid)
{
	const unsigned char *p = der;
	CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long)len);
	STACK_OF(CMS_RecipientInfo) *ris;
	CMS_RecipientInfo *ri;
	BIO *out = BIO_new(BIO_s_mem());
	char *data;
	long n;

	assert_non_null(cms);
	assert_int_equal(OBJ_obj2nid(CMS_get0_type(cms)), NID_pkcs7_enveloped);
	ris = CMS_get0_RecipientInfos(cms);
	assert_int_equal(sk_CMS_RecipientInfo_num(ris), 1);
	ri = sk_CMS_RecipientInfo_value(ris, 0);
	assert_int_equal(CMS_RecipientInfo_type(ri), want_ri_type);
	if (want_ri_type == CMS_RECIPINFO_TRANS) {
		X509_ALGOR *kalg;
		ASN1_OCTET_STRING *keyid = NULL;
		X509_NAME *issuer = NULL;
		ASN1_INTEGER *sno = NULL;

		assert_int_equal(CMS_RecipientInfo_ktri_get0_algs(ri, NULL, NULL, &kalg), 1);
		assert_int_equal(OBJ_obj2nid(kalg->algorithm), NID_rsaesOaep);
		{
			/* RSAES-OAEP-params: hashAlgorithm SHA-256 and MGF1 with SHA-256 (the
			 * OIDs, DER, in the parameters: OpenSSL 3 has no public decoder) */
			static const unsigned char sha256_oid[] = { 0x06, 0x09, 0x60, 0x86, 0x48,
			    0x01, 0x65, 0x03, 0x04, 0x02, 0x01 };
			static const unsigned char mgf1_oid[] = { 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
			    0xf7, 0x0d, 0x01, 0x01, 0x08 };
			unsigned char *pd = NULL;
			int pl = i2d_ASN1_TYPE(kalg->parameter, &pd);

			assert_true(pl > 0);
			assert_non_null(memmem(pd, (size_t)pl, sha256_oid, sizeof(sha256_oid)));
			assert_non_null(memmem(pd, (size_t)pl, mgf1_oid, sizeof(mgf1_oid)));
			OPENSSL_free(pd);
		}
		assert_int_equal(CMS_RecipientInfo_ktri_get0_signer_id(ri, &keyid, &issuer, &sno),
		    1);
		assert_int_equal(keyid != NULL, want_keyid);
	} else {
		STACK_OF(CMS_RecipientEncryptedKey) *reks = CMS_RecipientInfo_kari_get0_reks(ri);
		ASN1_OCTET_STRING *keyid = NULL;
		ASN1_GENERALIZEDTIME *date = NULL;
		CMS_OtherKeyAttribute *other = NULL;
		X509_NAME *issuer = NULL;
		ASN1_INTEGER *sno = NULL;
		X509_ALGOR *alg, *wrap;

		assert_int_equal(CMS_RecipientEncryptedKey_get0_id(
		    sk_CMS_RecipientEncryptedKey_value(reks, 0), &keyid, &date, &other, &issuer,
		    &sno), 1);
		assert_int_equal(keyid != NULL, want_keyid);
		assert_int_equal(CMS_RecipientInfo_kari_get0_alg(ri, &alg, NULL), 1);
		assert_int_equal(OBJ_obj2nid(alg->algorithm), NID_dhSinglePass_stdDH_sha256kdf_scheme);
		wrap = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(X509_ALGOR), alg->parameter);
		assert_non_null(wrap);
		assert_int_equal(OBJ_obj2nid(wrap->algorithm), NID_id_aes256_wrap);
		X509_ALGOR_free(wrap);
	}
	assert_int_equal(CMS_decrypt(cms, pkey, cert, NULL, out, CMS_BINARY), 1);
	n = BIO_get_mem_data(out, &data);
	assert_int_equal((size_t)n, want_len);
	assert_memory_equal(data, want, want_len);
	/* the content cipher */
	{
		const unsigned char *q = der;
		CMS_ContentInfo *c2 = d2i_CMS_ContentInfo(NULL, &q, (long)len);
		BIO *in = BIO_new_mem_buf(der, (int)len);
		X509_ALGOR *calg;

		/* AES-256-CBC: read from the EncryptedContentInfo through the printable form */
		(void)calg;
		{
			BIO *pr = BIO_new(BIO_s_mem());
			char *txt;
			long tl;

			CMS_ContentInfo_print_ctx(pr, c2, 0, NULL);
			BIO_write(pr, "", 1);
			tl = BIO_get_mem_data(pr, &txt);
			assert_true(tl > 0);
			assert_non_null(strstr(txt, "aes-256-cbc"));
			BIO_free(pr);
		}
		BIO_free(in);
		CMS_ContentInfo_free(c2);
	}
	BIO_free(out);
	CMS_ContentInfo_free(cms);
}

static void
seal_case(EVP_PKEY *key, X509 *cert, int ri_type)
{
	struct pkcs_device d;
	char *pk = spki_b64(key), *crt = cert != NULL ? cert_b64(cert) : NULL;
	uint8_t data[3000], *cms, *plain;
	size_t cms_len, plain_len;

	RAND_bytes(data, sizeof(data));
	assert_pkcs(pkcs_device_from_b64(NULL, cert != NULL ? NULL : pk, crt, &d, errbuf,
	    sizeof(errbuf)), PKCS_OK);
	if (pkcs_envelope_seal(NULL, data, sizeof(data), &d, &cms, &cms_len, errbuf,
	    sizeof(errbuf)) != PKCS_OK)
		fail_msg("seal: %s", errbuf);
	/* the device: its key alone (the form the spec promises), and key + certificate */
	device_opens(cms, cms_len, key, NULL, data, sizeof(data), ri_type, cert == NULL);
	if (cert != NULL)
		device_opens(cms, cms_len, key, cert, data, sizeof(data), ri_type, false);
	/* and back through pkcs_envelope_open, with and without the certificate */
	assert_pkcs(pkcs_envelope_open(NULL, cms, cms_len, key, cert, &plain, &plain_len,
	    errbuf, sizeof(errbuf)), PKCS_OK);
	assert_int_equal(plain_len, sizeof(data));
	assert_memory_equal(plain, data, sizeof(data));
	pkcs_buf_free(plain, plain_len);
	assert_pkcs(pkcs_envelope_open(NULL, cms, cms_len, key, NULL, &plain, &plain_len,
	    errbuf, sizeof(errbuf)), PKCS_OK);
	pkcs_buf_free(plain, plain_len);
	pkcs_buf_free(cms, cms_len);
	pkcs_device_clear(&d);
	free(pk);
	free(crt);
}

static void
test_envelope_seal(void **state)
{
	(void)state;
	seal_case(rsa_key, NULL, CMS_RECIPINFO_TRANS);
	seal_case(rsa_key, rsa_cert, CMS_RECIPINFO_TRANS);
	seal_case(ec_key, NULL, CMS_RECIPINFO_AGREE);
	seal_case(ec_key, ec_cert, CMS_RECIPINFO_AGREE);
	assert_int_equal(ERR_peek_error(), 0);
}

static void
test_envelope_open_refusals(void **state)
{
	struct pkcs_device d = { .pub = rsa_key };
	EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	uint8_t *cms, *plain;
	size_t cms_len, plain_len;
	const uint8_t data[] = "the PKCS#12";

	(void)state;
	assert_pkcs(pkcs_envelope_seal(NULL, data, sizeof(data), &d, &cms, &cms_len, errbuf,
	    sizeof(errbuf)), PKCS_OK);
	/* not for this key: no recipient names it, and the one there does not decrypt */
	assert_pkcs(pkcs_envelope_open(NULL, cms, cms_len, other, NULL, &plain, &plain_len,
	    errbuf, sizeof(errbuf)), PKCS_E_CRYPTO);
	assert_null(plain);
	/* an EC key for an RSA recipient */
	assert_pkcs(pkcs_envelope_open(NULL, cms, cms_len, ec_key, NULL, &plain, &plain_len,
	    errbuf, sizeof(errbuf)), PKCS_E_CRYPTO);
	assert_non_null(strstr(errbuf, "no recipient"));
	/* the encrypted content corrupted (its last block): the CBC padding fails */
	cms[cms_len - 1] ^= 0x5a;
	assert_pkcs(pkcs_envelope_open(NULL, cms, cms_len, rsa_key, NULL, &plain,
	    &plain_len, errbuf, sizeof(errbuf)), PKCS_E_CRYPTO);
	cms[cms_len - 1] ^= 0x5a;
	/* truncated DER, garbage, oversized */
	assert_pkcs(pkcs_envelope_open(NULL, cms, cms_len - 10, rsa_key, NULL, &plain,
	    &plain_len, errbuf, sizeof(errbuf)), PKCS_E_INVALID);
	assert_pkcs(pkcs_envelope_open(NULL, data, sizeof(data), rsa_key, NULL, &plain,
	    &plain_len, errbuf, sizeof(errbuf)), PKCS_E_INVALID);
	{
		uint8_t *big = calloc(1, PKCS_MAX_CMS + 1);

		assert_pkcs(pkcs_envelope_open(NULL, big, PKCS_MAX_CMS + 1, rsa_key, NULL,
		    &plain, &plain_len, errbuf, sizeof(errbuf)), PKCS_E_INVALID);
		uint8_t *cms2;
		size_t cms2_len;

		assert_pkcs(pkcs_envelope_seal(NULL, big, PKCS_MAX_PLAIN + 1, &d, &cms2,
		    &cms2_len, errbuf, sizeof(errbuf)), PKCS_E_INVALID);
		assert_null(cms2);
		free(big);
	}
	pkcs_buf_free(cms, cms_len);
	cms = NULL;
	/* an envelope made by plain OpenSSL (issuer and serial of a certificate, PKCS#1 v1.5):
	 * opened with the key alone (every recipient of its type tried) */
	{
		STACK_OF(X509) *r = sk_X509_new_null();
		BIO *in = BIO_new_mem_buf(data, sizeof(data));
		CMS_ContentInfo *c;
		unsigned char *der = NULL;
		int n;

		sk_X509_push(r, rsa_cert);
		c = CMS_encrypt(r, in, EVP_aes_128_cbc(), CMS_BINARY);
		assert_non_null(c);
		n = i2d_CMS_ContentInfo(c, &der);
		assert_true(n > 0);
		assert_pkcs(pkcs_envelope_open(NULL, der, (size_t)n, rsa_key, NULL, &plain,
		    &plain_len, errbuf, sizeof(errbuf)), PKCS_OK);
		assert_memory_equal(plain, data, sizeof(data));
		pkcs_buf_free(plain, plain_len);
		assert_pkcs(pkcs_envelope_open(NULL, der, (size_t)n, other, rsa_cert, &plain,
		    &plain_len, errbuf, sizeof(errbuf)), PKCS_E_CRYPTO);
		OPENSSL_free(der);
		CMS_ContentInfo_free(c);
		BIO_free(in);
		sk_X509_free(r);
	}
	EVP_PKEY_free(other);
	assert_int_equal(ERR_peek_error(), 0);
}

/* ---- 6. the Intune password form ---- */

static void
test_password_roundtrip(void **state)
{
	static const char *schemes[] = { "OaepSha256", "OaepSha384", "OaepSha512" };
	const char *pw = "Pässwörd-1!"; /* UTF-8, two Latin-1 characters */
	char *b64, *out;

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		assert_pkcs(pkcs_pfx_password_encrypt(NULL, rsa_key, pw, schemes[i], &b64,
		    errbuf, sizeof(errbuf)), PKCS_OK);
		assert_int_equal(strlen(b64), 344); /* 256 bytes */
		assert_pkcs(pkcs_pfx_password_decrypt(NULL, rsa_key, b64, schemes[i], &out,
		    errbuf, sizeof(errbuf)), PKCS_OK);
		assert_string_equal(out, pw);
		pkcs_secret_free(out);
		/* the wrong scheme: OAEP decoding fails */
		assert_pkcs(pkcs_pfx_password_decrypt(NULL, rsa_key, b64, schemes[(i + 1) % 3],
		    &out, errbuf, sizeof(errbuf)), PKCS_E_CRYPTO);
		assert_null(out);
		OPENSSL_free(b64);
	}
	/* NULL scheme: OaepSha512 */
	assert_pkcs(pkcs_pfx_password_encrypt(NULL, rsa_key, "abc", NULL, &b64, errbuf,
	    sizeof(errbuf)), PKCS_OK);
	assert_pkcs(pkcs_pfx_password_decrypt(NULL, rsa_key, b64, "OaepSha512", &out, errbuf,
	    sizeof(errbuf)), PKCS_OK);
	assert_string_equal(out, "abc");
	pkcs_secret_free(out);
	/* unknown scheme */
	assert_pkcs(pkcs_pfx_password_decrypt(NULL, rsa_key, b64, "OaepSha1", &out, errbuf,
	    sizeof(errbuf)), PKCS_E_PADDING);
	assert_pkcs(pkcs_pfx_password_decrypt(NULL, rsa_key, b64, "oaepsha512", &out, errbuf,
	    sizeof(errbuf)), PKCS_E_PADDING);
	assert_pkcs(pkcs_pfx_password_encrypt(NULL, rsa_key, "abc", "Pkcs1", &out, errbuf,
	    sizeof(errbuf)), PKCS_E_PADDING);
	/* corrupted ciphertext (one base64 character changed) */
	b64[10] = b64[10] == 'A' ? 'B' : 'A';
	assert_pkcs(pkcs_pfx_password_decrypt(NULL, rsa_key, b64, NULL, &out, errbuf,
	    sizeof(errbuf)), PKCS_E_CRYPTO);
	/* truncated base64, and base64 of the wrong length */
	b64[strlen(b64) - 3] = '\0';
	assert_pkcs(pkcs_pfx_password_decrypt(NULL, rsa_key, b64, NULL, &out, errbuf,
	    sizeof(errbuf)), PKCS_E_INVALID);
	b64[100] = '\0';
	assert_pkcs(pkcs_pfx_password_decrypt(NULL, rsa_key, b64, NULL, &out, errbuf,
	    sizeof(errbuf)), PKCS_E_INVALID);
	assert_non_null(strstr(errbuf, "modulus"));
	OPENSSL_free(b64);
	/* oversized input */
	{
		char *huge = malloc(PKCS_MAX_B64 + 5);

		memset(huge, 'A', PKCS_MAX_B64 + 4);
		huge[PKCS_MAX_B64 + 4] = '\0';
		assert_pkcs(pkcs_pfx_password_decrypt(NULL, rsa_key, huge, NULL, &out, errbuf,
		    sizeof(errbuf)), PKCS_E_INVALID);
		free(huge);
	}
	/* characters above U+00FF and passwords too long for the key */
	assert_pkcs(pkcs_pfx_password_encrypt(NULL, rsa_key, "pass\xe2\x82\xac", NULL, &b64,
	    errbuf, sizeof(errbuf)), PKCS_E_INVALID); /* the euro sign */
	assert_non_null(strstr(errbuf, "U+00FF"));
	{
		char longpw[200];

		memset(longpw, 'x', sizeof(longpw) - 1);
		longpw[sizeof(longpw) - 1] = '\0';
		assert_pkcs(pkcs_pfx_password_encrypt(NULL, rsa_key, longpw, NULL, &b64,
		    errbuf, sizeof(errbuf)), PKCS_E_INVALID);
	}
	assert_pkcs(pkcs_pfx_password_encrypt(NULL, ec_key, "abc", NULL, &b64, errbuf,
	    sizeof(errbuf)), PKCS_E_UNSUPPORTED);
	assert_int_equal(ERR_peek_error(), 0);
}

/* Cross-checks with `openssl pkeyutl`, both ways, for every scheme. */
static void
test_password_openssl(void **state)
{
	static const struct { const char *scheme, *md; } s[] = {
		{ "OaepSha256", "sha256" }, { "OaepSha384", "sha384" }, { "OaepSha512", "sha512" },
	};
	const char *pw = "Imp0rt-Pa$$word";

	(void)state;
	write_file("pw.txt", pw, strlen(pw));
	for (size_t i = 0; i < 3; i++) {
		uint8_t *ct;
		size_t n;
		char *b64, *out;

		/* openssl encrypts, we decrypt */
		run("openssl pkeyutl -encrypt -pubin -inkey '%s/rsa.pub' -pkeyopt "
		    "rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:%s -pkeyopt rsa_mgf1_md:%s "
		    "-in '%s/pw.txt' -out '%s/pw.ct'", dir, s[i].md, s[i].md, dir, dir);
		ct = read_file("pw.ct", &n);
		assert_int_equal(n, 256);
		b64 = b64_of(ct, n);
		assert_pkcs(pkcs_pfx_password_decrypt(NULL, rsa_key, b64, s[i].scheme, &out,
		    errbuf, sizeof(errbuf)), PKCS_OK);
		assert_string_equal(out, pw);
		pkcs_secret_free(out);
		free(b64);
		free(ct);
		/* we encrypt, openssl decrypts */
		assert_pkcs(pkcs_pfx_password_encrypt(NULL, rsa_key, pw, s[i].scheme, &b64,
		    errbuf, sizeof(errbuf)), PKCS_OK);
		write_file("pw.b64", b64, strlen(b64));
		OPENSSL_free(b64);
		run("openssl base64 -d -A -in '%s/pw.b64' -out '%s/pw.ct2' && openssl pkeyutl "
		    "-decrypt -inkey '%s/rsa.key' -pkeyopt rsa_padding_mode:oaep -pkeyopt "
		    "rsa_oaep_md:%s -pkeyopt rsa_mgf1_md:%s -in '%s/pw.ct2' -out '%s/pw.out'", dir,
		    dir, dir, s[i].md, s[i].md, dir, dir);
		ct = read_file("pw.out", &n);
		assert_int_equal(n, strlen(pw));
		assert_memory_equal(ct, pw, n);
		free(ct);
	}
}

/* ---- 7. imported PFX ---- */

static void
pfx_case(const char *file, const char *pw, int want_chain)
{
	EVP_PKEY *k;
	X509 *c;
	STACK_OF(X509) *chain;
	uint8_t *der;
	size_t len;

	der = read_file(file, &len);
	assert_pkcs(pkcs_pfx_open(NULL, der, len, pw, &k, &c, &chain, errbuf,
	    sizeof(errbuf)), PKCS_OK);
	assert_true(same_key(k, rsa_key));
	assert_int_equal(X509_cmp(c, rsa_cert), 0);
	assert_int_equal(X509_check_private_key(c, k), 1);
	assert_int_equal(sk_X509_num(chain), want_chain);
	if (want_chain > 0)
		assert_int_equal(X509_cmp(sk_X509_value(chain, 0), ca_cert), 0);
	EVP_PKEY_free(k);
	X509_free(c);
	sk_X509_pop_free(chain, X509_free);
	/* wrong password: the MAC */
	assert_pkcs(pkcs_pfx_open(NULL, der, len, "not-it", &k, &c, &chain, errbuf,
	    sizeof(errbuf)), PKCS_E_PASSWORD);
	assert_null(k);
	assert_null(c);
	assert_null(chain);
	/* truncated */
	assert_pkcs(pkcs_pfx_open(NULL, der, len / 2, pw, &k, &c, &chain, errbuf,
	    sizeof(errbuf)), PKCS_E_INVALID);
	free(der);
}

static void
test_pfx_open_openssl(void **state)
{
	OSSL_LIB_CTX *ctx = OSSL_LIB_CTX_new();

	(void)state;
	run("openssl pkcs12 -export -inkey '%s/rsa.key' -in '%s/rsa.pem' -certfile '%s/ca.pem' "
	    "-name dev -passout pass:s3cret -out '%s/default.pfx'", dir, dir, dir, dir);
	run("openssl pkcs12 -export -legacy -inkey '%s/rsa.key' -in '%s/rsa.pem' -certfile "
	    "'%s/ca.pem' -passout pass:s3cret -out '%s/legacy.pfx'", dir, dir, dir, dir);
	run("openssl pkcs12 -export -inkey '%s/rsa.key' -in '%s/rsa.pem' -passout pass:s3cret "
	    "-out '%s/nochain.pfx'", dir, dir, dir);
	pfx_case("default.pfx", "s3cret", 1);
	pfx_case("legacy.pfx", "s3cret", 1);
	pfx_case("nochain.pfx", "s3cret", 0);
	/* the legacy one in a library context of the caller's: the key is that context's */
	{
		EVP_PKEY *k;
		X509 *c;
		STACK_OF(X509) *chain;
		size_t len;
		uint8_t *der = read_file("legacy.pfx", &len);

		assert_non_null(ctx);
		assert_pkcs(pkcs_pfx_open(ctx, der, len, "s3cret", &k, &c, &chain, errbuf,
		    sizeof(errbuf)), PKCS_OK);
		assert_true(same_key(k, rsa_key));
		assert_int_equal(sk_X509_num(chain), 1);
		EVP_PKEY_free(k);
		X509_free(c);
		sk_X509_pop_free(chain, X509_free);
		free(der);
	}
	OSSL_LIB_CTX_free(ctx);
	assert_int_equal(ERR_peek_error(), 0);
}

static void
test_pfx_open_refusals(void **state)
{
	EVP_PKEY *k;
	X509 *c;
	STACK_OF(X509) *chain;
	uint8_t junk[64], *der;
	size_t len;

	(void)state;
	memset(junk, 0x30, sizeof(junk));
	assert_pkcs(pkcs_pfx_open(NULL, junk, sizeof(junk), "x", &k, &c, &chain, errbuf,
	    sizeof(errbuf)), PKCS_E_INVALID);
	assert_pkcs(pkcs_pfx_open(NULL, junk, 0, "x", &k, &c, &chain, errbuf,
	    sizeof(errbuf)), PKCS_E_INVALID);
	der = calloc(1, PKCS_MAX_PFX + 1);
	assert_pkcs(pkcs_pfx_open(NULL, der, PKCS_MAX_PFX + 1, "x", &k, &c, &chain, errbuf,
	    sizeof(errbuf)), PKCS_E_INVALID);
	assert_non_null(strstr(errbuf, "262144"));
	free(der);
	/* our own, both forms, back through pkcs_pfx_open */
	assert_pkcs(pkcs_p12_pack(NULL, ec_key, ec_cert, NULL, "pw", PKCS_P12_LEGACY, NULL,
	    &der, &len, errbuf, sizeof(errbuf)), PKCS_OK);
	assert_pkcs(pkcs_pfx_open(NULL, der, len, "pw", &k, &c, &chain, errbuf,
	    sizeof(errbuf)), PKCS_OK);
	assert_true(same_key(k, ec_key));
	assert_int_equal(sk_X509_num(chain), 0);
	EVP_PKEY_free(k);
	X509_free(c);
	sk_X509_pop_free(chain, X509_free);
	assert_pkcs(pkcs_pfx_open(NULL, der, len, "wrong", &k, &c, &chain, errbuf,
	    sizeof(errbuf)), PKCS_E_PASSWORD);
	assert_non_null(strstr(errbuf, "MAC"));
	pkcs_buf_free(der, len);
	/* a PKCS#12 holding only a certificate: no key */
	run("openssl pkcs12 -export -nokeys -in '%s/ca.pem' -passout pass:x -out '%s/nokey.pfx'",
	    dir, dir);
	der = read_file("nokey.pfx", &len);
	assert_pkcs(pkcs_pfx_open(NULL, der, len, "x", &k, &c, &chain, errbuf,
	    sizeof(errbuf)), PKCS_E_INVALID);
	assert_non_null(strstr(errbuf, "no private key"));
	free(der);
	assert_int_equal(ERR_peek_error(), 0);
}

static void
test_misc(void **state)
{
	char *s = OPENSSL_strdup("secret");
	uint8_t *b = OPENSSL_malloc(4);

	(void)state;
	pkcs_secret_free(s);
	pkcs_buf_free(b, 4);
	pkcs_secret_free(NULL);
	pkcs_buf_free(NULL, 0);
	pkcs_device_clear(NULL);
	assert_string_equal(pkcs_strerror(PKCS_E_PASSWORD), "wrong password");
	assert_string_equal(pkcs_strerror((enum pkcs_err)99), "unknown error");
	assert_string_equal(pkcs_padding_md("OaepSha384"), "SHA384");
	assert_null(pkcs_padding_md("OaepSha1"));
	/* errors keep OpenSSL's text: an RSA-OAEP that does not fit */
	{
		char longpw[250], *b64;

		memset(longpw, 'y', sizeof(longpw) - 1);
		longpw[sizeof(longpw) - 1] = '\0';
		assert_pkcs(pkcs_pfx_password_encrypt(NULL, rsa_key, longpw, "OaepSha512",
		    &b64, errbuf, sizeof(errbuf)), PKCS_E_INVALID);
		assert_non_null(strstr(errbuf, "data too large"));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keygen),
		cmocka_unit_test(test_csr),
		cmocka_unit_test(test_p12_pack),
		cmocka_unit_test(test_password_random),
		cmocka_unit_test(test_device_from_b64),
		cmocka_unit_test(test_envelope_seal),
		cmocka_unit_test(test_envelope_open_refusals),
		cmocka_unit_test(test_password_roundtrip),
		cmocka_unit_test(test_password_openssl),
		cmocka_unit_test(test_pfx_open_openssl),
		cmocka_unit_test(test_pfx_open_refusals),
		cmocka_unit_test(test_misc),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
