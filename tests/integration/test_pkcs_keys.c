/*
 * cc_pkcs with the connector's pfx role key in a real keys process and a SoftHSM2 token
 * (keys_harness, test_token), through the keyref provider as net uses it: the Intune
 * password form decrypted with OAEP-SHA512/256/384 (SoftHSM has OAEP with SHA-1 only: keys
 * pads itself, the CC_ROLE_FALLBACK path), ciphertexts made by `openssl pkeyutl` as well as
 * by the library; envelopes opened with only the key transport in keys, addressed by the
 * key's SKI and by a certificate's issuer and serial; and the failure classes: a ciphertext
 * that is not for the key is PKCS_E_CRYPTO, keys gone is PKCS_E_KEY.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <cmocka.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "certconn/keyref.h"
#include "certconn/pkcs.h"
#include "keys_harness.h"
#include "pkcs_int.h"
#include "test_token.h"

static struct {
	struct test_token *tok;
	struct keys_harness kh;
	struct keyref_client *cl;
	OSSL_LIB_CTX *libctx;
	EVP_PKEY *pfx;        /* keyref: private operations in keys */
	EVP_PKEY *pub;        /* its public part, default provider */
	char dir[300];
} E;

static char errbuf[1024];

#define assert_pkcs(call, want) do { \
	int r_; \
	errbuf[0] = '\0'; \
	r_ = (int)(call); \
	if (r_ != (int)(want)) \
		fail_msg("line %d: got %d, want %d: %s", __LINE__, r_, (int)(want), errbuf); \
} while (0)

static int
group_setup(void **state)
{
	struct cc_conf_role roles[1];
	struct keys_harness_opts o;
	int fds[CC_MAX_PEER_CHANNELS];
	unsigned char *der = NULL;
	const unsigned char *p;
	int n;

	(void)state;
	E.tok = test_token_new("pkcs-test", "4321", NULL, 0);
	if (E.tok == NULL)
		return -1;
	/* SoftHSM has no OAEP with SHA-2: keys pads itself for this role */
	roles[0] = keys_harness_role(E.tok, "pfx", CC_ROLE_FALLBACK);
	memset(&o, 0, sizeof(o));
	o.token = E.tok;
	o.roles = roles;
	o.nroles = 1;
	o.channels = 2;
	o.user = geteuid() == 0 ? TEST_KEYS_USER : NULL;
	if (keys_harness_start(&E.kh, &o) == -1)
		return -1;
	for (int i = 0; i < E.kh.npeers; i++) {
		fds[i] = E.kh.peer_fd[i];
		E.kh.peer_fd[i] = -1;
	}
	E.cl = keyref_client_new(fds, E.kh.npeers, 20000);
	E.libctx = OSSL_LIB_CTX_new();
	if (E.cl == NULL || E.libctx == NULL || keyref_provider_load(E.libctx, E.cl) == -1)
		return -1;
	E.pfx = keyref_load_key(E.libctx, E.cl, "pfx", NULL);
	if (E.pfx == NULL) {
		ERR_print_errors_fp(stderr);
		return -1;
	}
	n = i2d_PUBKEY(E.pfx, &der);
	if (n <= 0)
		return -1;
	p = der;
	E.pub = d2i_PUBKEY(NULL, &p, n);
	OPENSSL_free(der);
	snprintf(E.dir, sizeof(E.dir), "%s/pkcs", E.tok->dir);
	if (E.pub == NULL || mkdir(E.dir, 0700) == -1)
		return -1;
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(E.pub);
	EVP_PKEY_free(E.pfx);
	keyref_provider_unload(E.libctx);
	OSSL_LIB_CTX_free(E.libctx);
	keyref_client_free(E.cl);
	(void)keys_harness_stop(&E.kh);
	test_token_free(E.tok);
	return 0;
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

/* The password's ciphertext made by `openssl pkeyutl` (independent of cc_pkcs), base64. */
static char *
openssl_encrypt(const char *pw, const char *md)
{
	char path[400], *b64;
	unsigned char ct[1024];
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/pub.pem", E.dir);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_PUBKEY(f, E.pub), 1);
	fclose(f);
	snprintf(path, sizeof(path), "%s/pw", E.dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(pw, f);
	fclose(f);
	run("openssl pkeyutl -encrypt -pubin -inkey '%s/pub.pem' -pkeyopt rsa_padding_mode:oaep "
	    "-pkeyopt rsa_oaep_md:%s -pkeyopt rsa_mgf1_md:%s -in '%s/pw' -out '%s/ct'", E.dir,
	    md, md, E.dir, E.dir);
	snprintf(path, sizeof(path), "%s/ct", E.dir);
	f = fopen(path, "rb");
	assert_non_null(f);
	n = fread(ct, 1, sizeof(ct), f);
	fclose(f);
	assert_int_equal(n, (size_t)EVP_PKEY_get_size(E.pub));
	b64 = malloc(n / 3 * 4 + 8);
	EVP_EncodeBlock((unsigned char *)b64, ct, (int)n);
	return b64;
}

static void
test_password_decrypt_through_keys(void **state)
{
	static const struct { const char *scheme, *md; } s[] = {
		{ "OaepSha512", "sha512" }, { "OaepSha256", "sha256" }, { "OaepSha384", "sha384" },
	};
	const char *pw = "Import-P4ssword!";

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		char *b64 = openssl_encrypt(pw, s[i].md), *out;

		assert_pkcs(pkcs_pfx_password_decrypt(E.libctx, E.pfx, b64, s[i].scheme, &out,
		    errbuf, sizeof(errbuf)), PKCS_OK);
		assert_string_equal(out, pw);
		pkcs_secret_free(out);
		/* the wrong scheme: keys' OAEP decoding fails, the data's fault */
		assert_pkcs(pkcs_pfx_password_decrypt(E.libctx, E.pfx, b64, s[(i + 1) % 3].scheme,
		    &out, errbuf, sizeof(errbuf)), PKCS_E_CRYPTO);
		assert_null(out);
		free(b64);
		/* the library's own form, with a Latin-1 character */
		assert_pkcs(pkcs_pfx_password_encrypt(NULL, E.pub, "s\xc3\xa9same", s[i].scheme,
		    &b64, errbuf, sizeof(errbuf)), PKCS_OK);
		assert_pkcs(pkcs_pfx_password_decrypt(E.libctx, E.pfx, b64, s[i].scheme, &out,
		    errbuf, sizeof(errbuf)), PKCS_OK);
		assert_string_equal(out, "s\xc3\xa9same");
		pkcs_secret_free(out);
		/* corrupted ciphertext */
		b64[20] = b64[20] == 'x' ? 'y' : 'x';
		assert_pkcs(pkcs_pfx_password_decrypt(E.libctx, E.pfx, b64, s[i].scheme, &out,
		    errbuf, sizeof(errbuf)), PKCS_E_CRYPTO);
		assert_non_null(strstr(errbuf, "decryption failed"));
		OPENSSL_free(b64);
	}
	assert_int_equal(ERR_peek_error(), 0);
}

static X509 *
cert_for(EVP_PKEY *pub)
{
	EVP_PKEY *ca = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509 *x = X509_new();
	unsigned char *d = NULL;
	const unsigned char *p;
	int n;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 4242);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	    (const unsigned char *)"connector pfx", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, pub);
	assert_true(X509_sign(x, ca, EVP_sha256()) > 0);
	n = i2d_X509(x, &d);
	p = d;
	X509_free(x);
	x = d2i_X509(NULL, &p, n);
	OPENSSL_free(d);
	EVP_PKEY_free(ca);
	return x;
}

static void
test_envelope_open_through_keys(void **state)
{
	struct pkcs_device d = { 0 };
	uint8_t data[5000], *cms, *plain;
	size_t cms_len, plain_len;
	X509 *cert = cert_for(E.pub);
	EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);

	(void)state;
	/* the keyref key's SKI is computed from its (local) public part, so the kept copy's
	 * recipient is found by it, not by trying every recipient through keys */
	{
		unsigned char a[20], b[20];

		assert_int_equal(pkcs_key_ski(E.libctx, E.pfx, a), 0);
		assert_int_equal(pkcs_key_ski(NULL, E.pub, b), 0);
		assert_memory_equal(a, b, 20);
	}
	RAND_bytes(data, sizeof(data));
	/* the kept copy: to the pfx key alone (SKI recipient) */
	d.pub = E.pub;
	assert_pkcs(pkcs_envelope_seal(NULL, data, sizeof(data), &d, &cms, &cms_len, errbuf,
	    sizeof(errbuf)), PKCS_OK);
	assert_pkcs(pkcs_envelope_open(E.libctx, cms, cms_len, E.pfx, NULL, &plain, &plain_len,
	    errbuf, sizeof(errbuf)), PKCS_OK);
	assert_int_equal(plain_len, sizeof(data));
	assert_memory_equal(plain, data, sizeof(data));
	pkcs_buf_free(plain, plain_len);
	pkcs_buf_free(cms, cms_len);
	/* to a certificate of the key (issuer and serial) */
	d.cert = cert;
	assert_pkcs(pkcs_envelope_seal(NULL, data, 100, &d, &cms, &cms_len, errbuf,
	    sizeof(errbuf)), PKCS_OK);
	assert_pkcs(pkcs_envelope_open(E.libctx, cms, cms_len, E.pfx, cert, &plain, &plain_len,
	    errbuf, sizeof(errbuf)), PKCS_OK);
	assert_memory_equal(plain, data, 100);
	pkcs_buf_free(plain, plain_len);
	/* ... and without it: the recipient is tried with the key */
	assert_pkcs(pkcs_envelope_open(E.libctx, cms, cms_len, E.pfx, NULL, &plain, &plain_len,
	    errbuf, sizeof(errbuf)), PKCS_OK);
	pkcs_buf_free(plain, plain_len);
	pkcs_buf_free(cms, cms_len);
	/* not for the pfx key: keys is asked, says "decryption failed": PKCS_E_CRYPTO */
	d.cert = NULL;
	d.pub = other;
	assert_pkcs(pkcs_envelope_seal(NULL, data, 100, &d, &cms, &cms_len, errbuf,
	    sizeof(errbuf)), PKCS_OK);
	assert_pkcs(pkcs_envelope_open(E.libctx, cms, cms_len, E.pfx, NULL, &plain, &plain_len,
	    errbuf, sizeof(errbuf)), PKCS_E_CRYPTO);
	pkcs_buf_free(cms, cms_len);
	X509_free(cert);
	EVP_PKEY_free(other);
	assert_int_equal(ERR_peek_error(), 0);
}

/*
 * The PKCS flow's other steps in net's library context (keyref loaded, which registers RSA
 * and EC key managers of its own): device keys, CSRs, PKCS#12 both ways, envelopes, PFX
 * files of `openssl pkcs12` (default and -legacy). The keys made and read must be the
 * default provider's, with their private parts, not keyref's.
 */
static void
test_net_context(void **state)
{
	static const char *specs[] = { "rsa2048", "p256" };
	char pw[PKCS_PASSWORD_LEN + 1];

	(void)state;
	assert_pkcs(pkcs_password_random(pw, sizeof(pw)), PKCS_OK);
	for (size_t i = 0; i < 2; i++) {
		EVP_PKEY *k, *k2;
		X509_REQ *req;
		X509 *cert, *c2;
		STACK_OF(X509) *chain;
		struct pkcs_device d = { 0 };
		uint8_t *der, *cms, *plain;
		size_t len, cms_len, plain_len;
		const char *san = "dev.example.com";
		char path[400];
		FILE *f;

		assert_pkcs(pkcs_keygen(E.libctx, specs[i], &k, errbuf, sizeof(errbuf)), PKCS_OK);
		assert_string_equal(OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(k)), "default");
		assert_pkcs(pkcs_csr_build(E.libctx, k, "CN=dev", &san, 1, &req, errbuf,
		    sizeof(errbuf)), PKCS_OK);
		assert_int_equal(X509_REQ_verify(req, k), 1);
		X509_REQ_free(req);
		cert = X509_new();
		X509_set_version(cert, 2);
		ASN1_INTEGER_set(X509_get_serialNumber(cert), 7);
		X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC,
		    (const unsigned char *)"dev", -1, -1, 0);
		X509_set_issuer_name(cert, X509_get_subject_name(cert));
		X509_gmtime_adj(X509_getm_notBefore(cert), 0);
		X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
		X509_set_pubkey(cert, k);
		assert_true(X509_sign(cert, k, EVP_sha256()) > 0);
		/* PKCS#12, both forms, back through pkcs_pfx_open in net's context */
		for (int form = PKCS_P12_AES256; form <= PKCS_P12_LEGACY; form++) {
			assert_pkcs(pkcs_p12_pack(E.libctx, k, cert, NULL, pw,
			    (enum pkcs_p12_form)form, "dev", &der, &len, errbuf, sizeof(errbuf)),
			    PKCS_OK);
			assert_pkcs(pkcs_pfx_open(E.libctx, der, len, pw, &k2, &c2, &chain, errbuf,
			    sizeof(errbuf)), PKCS_OK);
			assert_int_equal(EVP_PKEY_eq(k, k2), 1);
			assert_string_equal(OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(k2)),
			    "default");
			assert_int_equal(X509_check_private_key(c2, k2), 1);
			EVP_PKEY_free(k2);
			X509_free(c2);
			sk_X509_pop_free(chain, X509_free);
			pkcs_buf_free(der, len);
		}
		/* an `openssl pkcs12 -export -legacy` file (RC2: the legacy provider's) */
		snprintf(path, sizeof(path), "%s/k.pem", E.dir);
		f = fopen(path, "w");
		PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
		fclose(f);
		snprintf(path, sizeof(path), "%s/c.pem", E.dir);
		f = fopen(path, "w");
		PEM_write_X509(f, cert);
		fclose(f);
		run("openssl pkcs12 -export -legacy -inkey '%s/k.pem' -in '%s/c.pem' -passout "
		    "pass:legacy -out '%s/l.pfx'", E.dir, E.dir, E.dir);
		snprintf(path, sizeof(path), "%s/l.pfx", E.dir);
		f = fopen(path, "rb");
		der = malloc(PKCS_MAX_PFX);
		len = fread(der, 1, PKCS_MAX_PFX, f);
		fclose(f);
		assert_pkcs(pkcs_pfx_open(E.libctx, der, len, "legacy", &k2, &c2, &chain, errbuf,
		    sizeof(errbuf)), PKCS_OK);
		assert_int_equal(EVP_PKEY_eq(k, k2), 1);
		assert_string_equal(OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(k2)), "default");
		/* the key read from the PFX works: an envelope to it, opened with it */
		d.pub = k;
		assert_pkcs(pkcs_envelope_seal(E.libctx, (const uint8_t *)"pkcs", 4, &d, &cms,
		    &cms_len, errbuf, sizeof(errbuf)), PKCS_OK);
		assert_pkcs(pkcs_envelope_open(E.libctx, cms, cms_len, k2, NULL, &plain,
		    &plain_len, errbuf, sizeof(errbuf)), PKCS_OK);
		assert_memory_equal(plain, "pkcs", 4);
		pkcs_buf_free(plain, plain_len);
		pkcs_buf_free(cms, cms_len);
		EVP_PKEY_free(k2);
		X509_free(c2);
		sk_X509_pop_free(chain, X509_free);
		free(der);
		X509_free(cert);
		EVP_PKEY_free(k);
	}
	assert_int_equal(ERR_peek_error(), 0);
}

/* Last: keys stopped. Every private operation is PKCS_E_KEY (retryable), not the data's. */
static void
test_keys_gone_is_key_error(void **state)
{
	struct pkcs_device d = { .pub = E.pub };
	uint8_t *cms, *plain;
	size_t cms_len, plain_len;
	char *b64, *out;

	(void)state;
	assert_pkcs(pkcs_pfx_password_encrypt(NULL, E.pub, "pw", "OaepSha512", &b64, errbuf,
	    sizeof(errbuf)), PKCS_OK);
	assert_pkcs(pkcs_envelope_seal(NULL, (const uint8_t *)"x", 1, &d, &cms, &cms_len, errbuf,
	    sizeof(errbuf)), PKCS_OK);
	/* its exit status is not the point (under ASan the sandboxed child's leak check may
	 * fail); that it is gone is */
	(void)keys_harness_stop(&E.kh);
	assert_true(E.kh.exited);
	assert_pkcs(pkcs_pfx_password_decrypt(E.libctx, E.pfx, b64, "OaepSha512", &out, errbuf,
	    sizeof(errbuf)), PKCS_E_KEY);
	fprintf(stderr, "keys gone: %s\n", errbuf);
	assert_pkcs(pkcs_envelope_open(E.libctx, cms, cms_len, E.pfx, NULL, &plain, &plain_len,
	    errbuf, sizeof(errbuf)), PKCS_E_KEY);
	OPENSSL_free(b64);
	pkcs_buf_free(cms, cms_len);
	assert_int_equal(ERR_peek_error(), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_password_decrypt_through_keys),
		cmocka_unit_test(test_envelope_open_through_keys),
		cmocka_unit_test(test_net_context),
		cmocka_unit_test(test_keys_gone_is_key_error),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
