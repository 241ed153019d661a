/*
 * The keys process against a real SoftHSM2 token: every operation and mechanism, native
 * and fallback paths, RSA and EC, results checked with the public key in OpenSSL; policy
 * denials; output-size rules; KEY_INFO and KEYS_LIST; audit events; several channels at
 * once; start-up failures; a malformed frame from net is fatal.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "certconn/proto.h"
#include "keys_harness.h"
#include "test_token.h"

static const struct hsm_role_spec roles[] = {
	{ "ca", HSM_KEY_RSA, 2048, NULL, HSM_USE_SIGN },
	{ "ra", HSM_KEY_RSA, 2048, NULL, HSM_USE_SIGN | HSM_USE_DECRYPT },
	{ "pfx", HSM_KEY_RSA, 3072, NULL, HSM_USE_DECRYPT },
	{ "client", HSM_KEY_EC, 0, "P-256", HSM_USE_SIGN },
	{ "tls", HSM_KEY_EC, 0, "P-384", HSM_USE_SIGN },
};

static struct test_token *tok;
static struct keys_harness kh;
static uint8_t *tls_der;
static size_t tls_der_len;
static char errtext[512];
static uint64_t reqid = 100;

/* ra: everything, with the fallback; pfx: decryption without the fallback; opt: an
 * optional role whose key does not exist. */
static int
setup(void **state)
{
	struct cc_conf_role cr[6];
	struct keys_harness_opts o;

	(void)state;
	tok = test_token_new("ops", "2468", roles, sizeof(roles) / sizeof(roles[0]));
	/* tls gets its certificate from the token (same CKA_ID), not from the configuration */
	{
		struct hsm_ca_params cp = { .module = tok->module, .module_env = tok->module_env,
			.key_uri = test_token_uri(tok, "tls"), .user_pin = tok->pin,
			.subject = "CN=tls.example", .days = 30, .md = "SHA384" };
		struct hsm *h;
		int r;

		if (hsm_selfsign_ca(&cp, &tls_der, &tls_der_len) == -1)
			return -1;
		h = hsm_open(tok->module, tok->module_env, tok->label, tok->pin);
		r = h == NULL ? -1 : hsm_store_cert(h, cp.key_uri, tls_der, tls_der_len);
		hsm_close(h);
		if (r == -1)
			return -1;
	}
	cr[0] = keys_harness_role(tok, "ca", 0);
	cr[1] = keys_harness_role(tok, "ra", CC_ROLE_FALLBACK);
	cr[2] = keys_harness_role(tok, "pfx", 0);
	cr[3] = keys_harness_role(tok, "client", 0);
	cr[4] = keys_harness_role(tok, "tls", 0);
	cr[5] = keys_harness_role(tok, "client", CC_ROLE_OPTIONAL);
	cr[5].name = "opt";
	cr[5].uri = "pkcs11:token=ops;object=absent";
	memset(&o, 0, sizeof(o));
	o.token = tok;
	o.roles = cr;
	o.nroles = 6;
	o.channels = 2;
	o.debug_mask = CC_CHAN_OPERATIONAL;
	o.verbose = getenv("KEYS_VERBOSE") != NULL;
	return keys_harness_start(&kh, &o);
}

static int
teardown(void **state)
{
	(void)state;
	assert_int_equal(keys_harness_stop(&kh), 0);
	free(tls_der);
	test_token_free(tok);
	return 0;
}

static EVP_PKEY *
pub_of(const char *role)
{
	EVP_PKEY *pk = NULL;

	assert_int_equal(keys_harness_key_info(kh.peer_fd[0], ++reqid, role, &pk, NULL, NULL,
	    NULL, errtext, sizeof(errtext)), 0);
	return pk;
}

static void
test_key_info(void **state)
{
	EVP_PKEY *pk = NULL;
	uint8_t *cert = NULL;
	size_t cert_len = 0;
	uint32_t info[4];
	X509 *x;
	const unsigned char *p;

	(void)state;
	assert_int_equal(keys_harness_key_info(kh.peer_fd[0], ++reqid, "ca", &pk, &cert,
	    &cert_len, info, errtext, sizeof(errtext)), 0);
	assert_int_equal(info[0], CC_KEY_RSA);
	assert_int_equal(info[1], 2048);
	assert_true(info[2] & CC_MECH_SIGN_TBS);
	assert_true(info[3] & CC_ROLE_TBS_ONLY);
	/* the configured CA certificate, for the role's key */
	assert_int_equal(cert_len, tok->ca_der_len);
	assert_memory_equal(cert, tok->ca_der, cert_len);
	p = cert;
	x = d2i_X509(NULL, &p, (long)cert_len);
	assert_non_null(x);
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(x), pk), 1);
	X509_free(x);
	free(cert);
	EVP_PKEY_free(pk);

	assert_int_equal(keys_harness_key_info(kh.peer_fd[1], ++reqid, "tls", &pk, &cert,
	    &cert_len, info, errtext, sizeof(errtext)), 0);
	assert_int_equal(info[0], CC_KEY_EC);
	assert_int_equal(info[1], 384);
	assert_true(EVP_PKEY_is_a(pk, "EC"));
	/* the token's certificate for the key */
	assert_int_equal(cert_len, tls_der_len);
	assert_memory_equal(cert, tls_der, cert_len);
	free(cert);
	EVP_PKEY_free(pk);

	/* client: no certificate anywhere */
	assert_int_equal(keys_harness_key_info(kh.peer_fd[1], ++reqid, "client", &pk, &cert,
	    &cert_len, info, errtext, sizeof(errtext)), 0);
	assert_null(cert);
	assert_int_equal(cert_len, 0);
	EVP_PKEY_free(pk);

	assert_int_equal(keys_harness_key_info(kh.peer_fd[0], ++reqid, "nope", &pk, NULL, NULL,
	    NULL, errtext, sizeof(errtext)), CC_KE_NOKEY);
	assert_non_null(strstr(errtext, "no key role \"nope\""));
	assert_int_equal(keys_harness_key_info(kh.peer_fd[0], ++reqid, "opt", &pk, NULL, NULL,
	    NULL, errtext, sizeof(errtext)), CC_KE_NOKEY);
	assert_non_null(strstr(errtext, "no private key in token \"ops\""));
}

/* KEYS_LIST on the parent channel: one item per role, then KEYS_LIST_END. */
static void
test_keys_list(void **state)
{
	struct cc_wbuf w;
	struct cc_frame f;
	int seen = 0;

	(void)state;
	assert_int_equal(cc_enc_empty(&w, CC_MSG_KEYS_LIST_REQ, 77), 0);
	assert_int_equal(keys_harness_parent_send(&kh, &w), 0);
	for (;;) {
		struct cc_keys_list_item it;
		const char *why;

		assert_int_equal(keys_harness_parent_recv(&kh, &f, 10000), 1);
		assert_int_equal(f.msg.reqid, 77);
		if (f.msg.type == CC_MSG_KEYS_LIST_END) {
			cc_frame_free(&f);
			break;
		}
		assert_int_equal(f.msg.type, CC_MSG_KEYS_LIST);
		assert_int_equal(cc_dec_keys_list_item(&f.msg, &it, &why), 0);
		printf("  %-6s %-8s sign: %s\n         decrypt: %s\n", it.role, it.state,
		    it.sign_path, it.decrypt_path);
		if (strcmp(it.role, "ra") == 0) {
			/* SoftHSM 2.6.1: OAEP only with SHA-1; the rest through the fallback. */
			assert_string_equal(it.decrypt_path, "CKM_RSA_PKCS (native); CKM_RSA_PKCS_OAEP "
			    "sha1 native; sha224/256/384/512 via CKM_RSA_X_509 + OAEP in keys "
			    "(fallback)");
			assert_non_null(strstr(it.sign_path, "CKM_RSA_PKCS (native)"));
			assert_string_equal(it.state, "ok");
			seen++;
		} else if (strcmp(it.role, "pfx") == 0) {
			assert_non_null(strstr(it.decrypt_path, "OAEP sha224/256/384/512 unavailable"));
			assert_string_equal(it.sign_path, "-");
			seen++;
		} else if (strcmp(it.role, "client") == 0) {
			assert_string_equal(it.sign_path, "CKM_ECDSA (native)");
			assert_int_equal(it.key_type, CC_KEY_EC);
			seen++;
		} else if (strcmp(it.role, "ca") == 0) {
			assert_non_null(strstr(it.sign_path, "checked TBS only"));
			seen++;
		} else if (strcmp(it.role, "opt") == 0) {
			assert_int_equal(it.key_type, CC_KEY_NONE);
			assert_non_null(strstr(it.state, "no private key"));
			seen++;
		}
		cc_frame_free(&f);
	}
	assert_int_equal(seen, 5);
}

static void
sign_ok(const char *role, EVP_PKEY *pk, uint8_t alg, uint8_t md, uint8_t mgf1,
    uint32_t saltlen, int chan)
{
	uint8_t dg[64], *sig;
	size_t sig_len, n = cc_md_size(md);

	assert_int_equal(RAND_bytes(dg, (int)n), 1);
	assert_int_equal(keys_harness_sign(kh.peer_fd[chan], ++reqid, role, alg, md, mgf1,
	    saltlen, dg, n, &sig, &sig_len, errtext, sizeof(errtext)), 0);
	if (alg != CC_SIG_ECDSA)
		assert_int_equal(sig_len, (size_t)EVP_PKEY_get_size(pk)); /* from the key */
	assert_true(keys_harness_verify(pk, alg, md, mgf1, saltlen, dg, n, sig, sig_len));
	/* and not over another digest */
	dg[0] ^= 0x80;
	assert_false(keys_harness_verify(pk, alg, md, mgf1, saltlen, dg, n, sig, sig_len));
	free(sig);
}

static void
test_sign_rsa_pkcs1(void **state)
{
	EVP_PKEY *pk = pub_of("ra");

	(void)state;
	for (uint8_t md = CC_MD_SHA1; md <= CC_MD_MAX; md++)
		sign_ok("ra", pk, CC_SIG_RSA_PKCS1, md, 0, 0, md & 1);
	assert_non_null(keys_harness_event_wait(&kh,
	    "sign role=ra mech=CKM_RSA_PKCS path=native md=SHA512 in=64 out=256", 2000));
	EVP_PKEY_free(pk);
}

static void
test_sign_rsa_pss(void **state)
{
	EVP_PKEY *pk = pub_of("ra");

	(void)state;
	for (uint8_t md = CC_MD_SHA1; md <= CC_MD_MAX; md++) {
		sign_ok("ra", pk, CC_SIG_RSA_PSS, md, md, (uint32_t)cc_md_size(md), 0);
		sign_ok("ra", pk, CC_SIG_RSA_PSS, md, 0, 0, 1);
	}
	/* MGF1 with another digest, and the longest salt a 2048-bit key takes with SHA-256 */
	sign_ok("ra", pk, CC_SIG_RSA_PSS, CC_MD_SHA256, CC_MD_SHA1, 20, 0);
	sign_ok("ra", pk, CC_SIG_RSA_PSS, CC_MD_SHA256, CC_MD_SHA256, 256 - 32 - 2, 0);
	assert_non_null(keys_harness_event_wait(&kh, "mech=CKM_RSA_PKCS_PSS path=native", 2000));
	EVP_PKEY_free(pk);
}

static void
test_sign_ecdsa(void **state)
{
	EVP_PKEY *c = pub_of("client"), *t = pub_of("tls");

	(void)state;
	for (uint8_t md = CC_MD_SHA1; md <= CC_MD_MAX; md++) {
		sign_ok("client", c, CC_SIG_ECDSA, md, 0, 0, 0);
		sign_ok("tls", t, CC_SIG_ECDSA, md, 0, 0, 1);
	}
	assert_non_null(keys_harness_event_wait(&kh,
	    "sign role=tls mech=CKM_ECDSA path=native", 2000));
	EVP_PKEY_free(c);
	EVP_PKEY_free(t);
}

static void
decrypt_ok(const char *role, EVP_PKEY *pk, uint8_t pad, uint8_t md, uint8_t mgf1,
    const char *label, size_t msg_len)
{
	uint8_t msg[512], ct[512], *out;
	size_t ct_len = sizeof(ct), out_len, ll = label ? strlen(label) : 0;

	assert_int_equal(RAND_bytes(msg, (int)msg_len), 1);
	assert_int_equal(keys_harness_encrypt(pk, pad, md, mgf1, (const uint8_t *)label, ll, msg,
	    msg_len, ct, &ct_len), 0);
	assert_int_equal(keys_harness_decrypt(kh.peer_fd[0], ++reqid, role, pad, md, mgf1,
	    (const uint8_t *)label, ll, ct, ct_len, &out, &out_len, errtext, sizeof(errtext)), 0);
	assert_int_equal(out_len, msg_len);
	assert_memory_equal(out, msg, msg_len);
	free(out);
	/* the same ciphertext with a bit flipped: one answer, whatever the path */
	ct[ct_len / 2] ^= 1;
	assert_int_equal(keys_harness_decrypt(kh.peer_fd[1], ++reqid, role, pad, md, mgf1,
	    (const uint8_t *)label, ll, ct, ct_len, &out, &out_len, errtext, sizeof(errtext)),
	    CC_KE_BADINPUT);
	assert_string_equal(errtext, "decryption failed");
}

static void
test_decrypt_pkcs1(void **state)
{
	EVP_PKEY *ra = pub_of("ra"), *pfx = pub_of("pfx");

	(void)state;
	decrypt_ok("ra", ra, CC_DEC_RSA_PKCS1, 0, 0, NULL, 32);
	decrypt_ok("pfx", pfx, CC_DEC_RSA_PKCS1, 0, 0, NULL, 384 - 11);
	decrypt_ok("pfx", pfx, CC_DEC_RSA_PKCS1, 0, 0, NULL, 1);
	EVP_PKEY_free(ra);
	EVP_PKEY_free(pfx);
}

static void
test_decrypt_oaep_native_and_fallback(void **state)
{
	EVP_PKEY *ra = pub_of("ra");

	(void)state;
	for (uint8_t md = CC_MD_SHA1; md <= CC_MD_MAX; md++)
		decrypt_ok("ra", ra, CC_DEC_RSA_OAEP, md, md, NULL, 24);
	assert_non_null(keys_harness_event_wait(&kh,
	    "decrypt role=ra mech=CKM_RSA_PKCS_OAEP path=native md=SHA1", 2000));
	assert_non_null(keys_harness_event_wait(&kh,
	    "decrypt role=ra mech=CKM_RSA_X_509 path=fallback md=SHA512", 2000));
	/* labels, MGF1 with another digest, the longest message for SHA-512 and 2048 bits */
	decrypt_ok("ra", ra, CC_DEC_RSA_OAEP, CC_MD_SHA256, CC_MD_SHA256, "pfx password", 16);
	decrypt_ok("ra", ra, CC_DEC_RSA_OAEP, CC_MD_SHA1, CC_MD_SHA1, "label", 16);
	decrypt_ok("ra", ra, CC_DEC_RSA_OAEP, CC_MD_SHA384, CC_MD_SHA1, NULL, 16);
	decrypt_ok("ra", ra, CC_DEC_RSA_OAEP, CC_MD_SHA512, CC_MD_SHA512, NULL, 256 - 2 * 64 - 2);
	/*
	 * An input not below the modulus (a ciphertext for another key with a larger one, or
	 * corrupted): SoftHSM2 answers CKM_RSA_X_509 with CKR_GENERAL_ERROR, which once read as
	 * a token failure (and was retried). It is a failed decryption, and the token stays up.
	 */
	{
		uint8_t ct[256], *out;
		size_t out_len;

		memset(ct, 0xff, sizeof(ct));
		assert_int_equal(keys_harness_decrypt(kh.peer_fd[0], ++reqid, "ra",
		    CC_DEC_RSA_OAEP, CC_MD_SHA512, CC_MD_SHA512, NULL, 0, ct, sizeof(ct), &out,
		    &out_len, errtext, sizeof(errtext)), CC_KE_BADINPUT);
		assert_string_equal(errtext, "decryption failed");
		assert_non_null(keys_harness_event_wait(&kh, "result=failed (input not below the "
		    "modulus)", 2000));
		decrypt_ok("ra", ra, CC_DEC_RSA_OAEP, CC_MD_SHA512, CC_MD_SHA512, NULL, 16);
	}
	EVP_PKEY_free(ra);
}

/* pfx has no fallback: OAEP with SHA-2 is refused; SHA-1 works natively. */
static void
test_no_fallback_without_flag(void **state)
{
	EVP_PKEY *pfx = pub_of("pfx");
	uint8_t msg[16] = { 1, 2, 3 }, ct[512], *out;
	size_t ct_len = sizeof(ct), out_len;

	(void)state;
	decrypt_ok("pfx", pfx, CC_DEC_RSA_OAEP, CC_MD_SHA1, CC_MD_SHA1, NULL, 16);
	assert_int_equal(keys_harness_encrypt(pfx, CC_DEC_RSA_OAEP, CC_MD_SHA256, CC_MD_SHA256,
	    NULL, 0, msg, sizeof(msg), ct, &ct_len), 0);
	assert_int_equal(keys_harness_decrypt(kh.peer_fd[0], ++reqid, "pfx", CC_DEC_RSA_OAEP,
	    CC_MD_SHA256, CC_MD_SHA256, NULL, 0, ct, ct_len, &out, &out_len, errtext,
	    sizeof(errtext)), CC_KE_DENIED);
	assert_non_null(strstr(errtext, "may not use the fallback"));
	assert_null(keys_harness_event_find(&kh, "decrypt role=pfx mech=CKM_RSA_X_509"));
	EVP_PKEY_free(pfx);
}

static void
test_policy_denials(void **state)
{
	uint8_t dg[32] = { 0 }, ct[256] = { 1 }, *out;
	size_t out_len;

	(void)state;
	/* the ca key signs only checked TBS */
	assert_int_equal(keys_harness_sign(kh.peer_fd[0], ++reqid, "ca", CC_SIG_RSA_PKCS1,
	    CC_MD_SHA256, 0, 0, dg, 32, &out, &out_len, errtext, sizeof(errtext)), CC_KE_DENIED);
	assert_non_null(strstr(errtext, "never a bare digest"));
	/* pfx decrypts only */
	assert_int_equal(keys_harness_sign(kh.peer_fd[0], ++reqid, "pfx", CC_SIG_RSA_PKCS1,
	    CC_MD_SHA256, 0, 0, dg, 32, &out, &out_len, errtext, sizeof(errtext)), CC_KE_DENIED);
	assert_non_null(strstr(errtext, "may not sign with RSA PKCS#1"));
	/* client signs only */
	assert_int_equal(keys_harness_decrypt(kh.peer_fd[1], ++reqid, "client", CC_DEC_RSA_PKCS1,
	    0, 0, NULL, 0, ct, 32, &out, &out_len, errtext, sizeof(errtext)), CC_KE_DENIED);
	/* no PSS for client (EC), no ECDSA for an RSA role */
	assert_int_equal(keys_harness_sign(kh.peer_fd[0], ++reqid, "client", CC_SIG_RSA_PSS,
	    CC_MD_SHA256, 0, 32, dg, 32, &out, &out_len, errtext, sizeof(errtext)), CC_KE_DENIED);
	assert_int_equal(keys_harness_sign(kh.peer_fd[0], ++reqid, "ra", CC_SIG_ECDSA,
	    CC_MD_SHA256, 0, 0, dg, 32, &out, &out_len, errtext, sizeof(errtext)), CC_KE_DENIED);
	/* the ca role does not decrypt */
	assert_int_equal(keys_harness_decrypt(kh.peer_fd[0], ++reqid, "ca", CC_DEC_RSA_OAEP,
	    CC_MD_SHA1, 0, NULL, 0, ct, 256, &out, &out_len, errtext, sizeof(errtext)),
	    CC_KE_DENIED);
	/* a non-ca role does not sign TBS */
	assert_int_equal(keys_harness_sign_tbs(kh.peer_fd[0], ++reqid, "ra", CC_TBS_CERT, dg, 32,
	    &out, &out_len, errtext, sizeof(errtext)), CC_KE_DENIED);
	assert_non_null(keys_harness_event_wait(&kh, "result=denied", 2000));
}

/* Output sizes come from the key: a ciphertext of another length than the modulus is
 * refused, whatever the request says; PSS salts that do not fit the key are refused. */
static void
test_size_rules(void **state)
{
	uint8_t ct[512], dg[64] = { 0 }, *out;
	size_t out_len;

	(void)state;
	memset(ct, 0x42, sizeof(ct));
	assert_int_equal(keys_harness_decrypt(kh.peer_fd[0], ++reqid, "ra", CC_DEC_RSA_PKCS1, 0,
	    0, NULL, 0, ct, 255, &out, &out_len, errtext, sizeof(errtext)), CC_KE_BADINPUT);
	assert_non_null(strstr(errtext, "ciphertext of 255 bytes for a 256-byte modulus"));
	assert_int_equal(keys_harness_decrypt(kh.peer_fd[0], ++reqid, "ra", CC_DEC_RSA_PKCS1, 0,
	    0, NULL, 0, ct, 384, &out, &out_len, errtext, sizeof(errtext)), CC_KE_BADINPUT);
	assert_int_equal(keys_harness_sign(kh.peer_fd[0], ++reqid, "ra", CC_SIG_RSA_PSS,
	    CC_MD_SHA512, 0, 256 - 64 - 1, dg, 64, &out, &out_len, errtext, sizeof(errtext)),
	    CC_KE_BADINPUT);
	assert_non_null(strstr(errtext, "salt of 191 bytes too long"));
	/* OAEP without a digest */
	assert_int_equal(keys_harness_decrypt(kh.peer_fd[0], ++reqid, "ra", CC_DEC_RSA_OAEP, 0,
	    0, NULL, 0, ct, 256, &out, &out_len, errtext, sizeof(errtext)), CC_KE_BADINPUT);
	/* keys still serves after all this */
	{
		EVP_PKEY *pk = pub_of("ra");

		sign_ok("ra", pk, CC_SIG_RSA_PKCS1, CC_MD_SHA256, 0, 0, 0);
		EVP_PKEY_free(pk);
	}
}

struct load {
	int chan;
	const char *role;
	uint8_t alg;
	EVP_PKEY *pk;
	int ok;
};

static void *
load_main(void *arg)
{
	struct load *l = arg;

	for (int i = 0; i < 40; i++) {
		uint8_t dg[32], *sig;
		size_t sig_len;
		uint64_t id = ((uint64_t)l->chan << 32) | (uint64_t)i;

		RAND_bytes(dg, sizeof(dg));
		if (keys_harness_sign(kh.peer_fd[l->chan], id, l->role, l->alg, CC_MD_SHA256, 0, 0,
		    dg, sizeof(dg), &sig, &sig_len, NULL, 0) != 0)
			return NULL;
		if (!keys_harness_verify(l->pk, l->alg, CC_MD_SHA256, 0, 0, dg, sizeof(dg), sig,
		    sig_len)) {
			free(sig);
			return NULL;
		}
		free(sig);
		l->ok++;
	}
	return NULL;
}

/* Two channels at once: each worker has its own session; every signature verifies. */
static void
test_two_channels(void **state)
{
	struct load l[2] = {
		{ 0, "ra", CC_SIG_RSA_PKCS1, NULL, 0 },
		{ 1, "client", CC_SIG_ECDSA, NULL, 0 },
	};
	pthread_t th[2];

	(void)state;
	l[0].pk = pub_of("ra");
	l[1].pk = pub_of("client");
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, load_main, &l[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(l[0].ok, 40);
	assert_int_equal(l[1].ok, 40);
	EVP_PKEY_free(l[0].pk);
	EVP_PKEY_free(l[1].pk);
}

/* SET_DEBUG off: no more audit events. */
static void
test_debug_switch(void **state)
{
	struct cc_set_debug d = { CC_CHAN_OPERATIONAL, 0 };
	struct cc_wbuf w;
	EVP_PKEY *pk = pub_of("client");
	size_t before;

	(void)state;
	assert_int_equal(cc_enc_set_debug(&w, CC_MSG_SET_DEBUG, 0, &d), 0);
	assert_int_equal(keys_harness_parent_send(&kh, &w), 0);
	/* KEY_INFO on the parent channel is answered in order, after SET_DEBUG is applied */
	{
		struct cc_key_info_req q = { "client" };
		struct cc_frame f;

		assert_int_equal(cc_enc_key_info_req(&w, 5, &q), 0);
		assert_int_equal(keys_harness_parent_send(&kh, &w), 0);
		assert_int_equal(keys_harness_parent_recv(&kh, &f, 10000), 1);
		assert_int_equal(f.msg.type, CC_MSG_KEY_INFO);
		cc_frame_free(&f);
	}
	before = keys_harness_event_count(&kh);
	sign_ok("client", pk, CC_SIG_ECDSA, CC_MD_SHA256, 0, 0, 0);
	usleep(100000);
	assert_int_equal(keys_harness_event_count(&kh), before);
	EVP_PKEY_free(pk);
}

/* ---- separate keys processes ---- */

static int
start_one(struct keys_harness *k, struct test_token *t, const struct cc_conf_role *cr,
    size_t n, const char *log, const char *pin)
{
	struct keys_harness_opts o;

	memset(&o, 0, sizeof(o));
	o.token = t;
	o.roles = cr;
	o.nroles = n;
	o.stderr_path = log;
	if (pin != NULL) {
		o.pin = (const uint8_t *)pin;
		o.pin_len = strlen(pin);
	}
	return keys_harness_start(k, &o);
}

/* A frame from net that does not decode, or a type net may not send, ends keys with
 * status 1 and a log line naming net, the type and the reason. */
static void
test_malformed_from_net(void **state)
{
	struct keys_harness k;
	struct cc_conf_role cr = keys_harness_role(tok, "ra", 0);
	char log[512];
	struct cc_wbuf w;
	struct cc_frame f;

	(void)state;
	snprintf(log, sizeof(log), "%s/keys-malformed.log", tok->dir);

	/* SIGN_REQ whose digest is not as long as its digest algorithm says */
	assert_int_equal(start_one(&k, tok, &cr, 1, log, NULL), 0);
	assert_int_equal(cc_wbuf_init(&w, CC_MSG_SIGN_REQ, 9), 0);
	cc_w_str(&w, "ra");
	cc_w_u8(&w, CC_SIG_RSA_PKCS1);
	cc_w_u8(&w, CC_MD_SHA256);
	cc_w_u8(&w, 0);
	cc_w_u32(&w, 0);
	cc_w_bytes(&w, "short", 5);
	assert_int_equal(cc_wbuf_finish(&w), 0);
	assert_int_equal(keys_harness_rpc(k.peer_fd[0], &w, &f, 10000), 0);
	assert_int_equal(keys_harness_wait(&k, 10000), 1);
	assert_true(keys_harness_file_contains(log, "malformed message from net: SIGN_REQ"));
	assert_true(keys_harness_file_contains(log,
	    "digest length does not match the digest algorithm"));
	keys_harness_stop(&k);

	/* a type net may not send */
	assert_int_equal(start_one(&k, tok, &cr, 1, log, NULL), 0);
	{
		struct cc_conf_pin pin = { (const uint8_t *)"1", 1 };

		assert_int_equal(cc_enc_conf_pin(&w, 3, &pin), 0);
	}
	assert_int_equal(keys_harness_rpc(k.peer_fd[0], &w, &f, 10000), 0);
	assert_int_equal(keys_harness_wait(&k, 10000), 1);
	assert_true(keys_harness_file_contains(log, "malformed message from net: CONF_PIN"));
	keys_harness_stop(&k);

	/* a bad header (wrong version) */
	assert_int_equal(start_one(&k, tok, &cr, 1, log, NULL), 0);
	{
		struct cc_key_info_req q = { "ra" };

		assert_int_equal(cc_enc_key_info_req(&w, 4, &q), 0);
		w.p[5] = 99; /* version */
	}
	assert_int_equal(keys_harness_rpc(k.peer_fd[0], &w, &f, 10000), 0);
	assert_int_equal(keys_harness_wait(&k, 10000), 1);
	assert_true(keys_harness_file_contains(log, "malformed message from net: KEY_INFO_REQ"));
	keys_harness_stop(&k);
}

/* A missing key for a role without CC_ROLE_OPTIONAL, or a wrong PIN, stop keys at start
 * with a clear message. */
static void
test_start_failures(void **state)
{
	struct keys_harness k;
	struct cc_conf_role cr[2];
	char log[512];

	(void)state;
	snprintf(log, sizeof(log), "%s/keys-start.log", tok->dir);
	cr[0] = keys_harness_role(tok, "ra", 0);
	cr[1] = keys_harness_role(tok, "ra", 0);
	cr[1].name = "client";
	cr[1].uri = "pkcs11:token=ops;object=gone";
	assert_int_equal(start_one(&k, tok, cr, 2, log, NULL), -1);
	assert_int_equal(k.exit_status, 1);
	assert_true(keys_harness_file_contains(log, "role client has no usable key: no private "
	    "key in token \"ops\" matches pkcs11:token=ops;object=gone"));
	keys_harness_stop(&k);

	assert_int_equal(start_one(&k, tok, cr, 1, log, "0000"), -1);
	assert_int_equal(k.exit_status, 1);
	assert_true(keys_harness_file_contains(log, "CKR_PIN_INCORRECT (wrong PIN)"));
	keys_harness_stop(&k);

	cr[1].uri = "pkcs11:token=other;object=ra";
	assert_int_equal(start_one(&k, tok, cr, 2, log, NULL), -1);
	assert_true(keys_harness_file_contains(log, "is on another token"));
	keys_harness_stop(&k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_info),
		cmocka_unit_test(test_keys_list),
		cmocka_unit_test(test_sign_rsa_pkcs1),
		cmocka_unit_test(test_sign_rsa_pss),
		cmocka_unit_test(test_sign_ecdsa),
		cmocka_unit_test(test_decrypt_pkcs1),
		cmocka_unit_test(test_decrypt_oaep_native_and_fallback),
		cmocka_unit_test(test_no_fallback_without_flag),
		cmocka_unit_test(test_policy_denials),
		cmocka_unit_test(test_size_rules),
		cmocka_unit_test(test_two_channels),
		cmocka_unit_test(test_debug_switch),
		cmocka_unit_test(test_malformed_from_net),
		cmocka_unit_test(test_start_failures),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
