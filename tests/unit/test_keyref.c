/*
 * keyref provider and client against a small fake keys server (a thread per channel that
 * answers with in-memory OpenSSL keys). The fake exercises every provider path quickly,
 * and misbehaves on request (errors, delays, malformed replies, closing) to test the
 * client's error mapping, timeouts and the fatal hook. The real keys process and a SoftHSM
 * token are used by tests/integration/test_keyref.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certconn/chan.h"
#include "certconn/keyref.h"
#include "certconn/proto.h"

/* ---- fake keys ---- */

/* The fake runs in its own threads, where cmocka's asserts cannot jump: abort instead. */
#define FCHECK(x) do { \
	if (!(x)) { \
		fprintf(stderr, "fake keys: check failed at line %d: %s\n", __LINE__, #x); \
		abort(); \
	} \
} while (0)

enum fake_mode {
	FAKE_OK = 0,
	FAKE_ERROR,        /* CC_MSG_ERROR with err_code / err_text */
	FAKE_DELAY,        /* sleep delay_ms, then answer */
	FAKE_WRONG_TYPE,   /* DECRYPT_RESP to anything */
	FAKE_TRAILING,     /* right type, a byte after the last field */
	FAKE_BAD_HEADER,   /* a frame with an unknown version */
	FAKE_WRONG_REQID,  /* answer for a request that was never sent */
	FAKE_CLOSE,        /* close the channel without answering */
	FAKE_GARBAGE,      /* random bytes, then close */
	FAKE_MUTATED,      /* a valid SIGN_RESP frame with one byte changed */
};

struct fake_role {
	const char *name;
	EVP_PKEY *key;
	uint32_t flags;
	X509 *cert;
};

struct fake {
	struct fake_role roles[4];
	int nroles;
	pthread_mutex_t mu;
	int mode;          /* applied to the next request, then back to FAKE_OK */
	int delay_ms;
	uint32_t err_code;
	const char *err_text;
	/* what was asked */
	int n_received;    /* frames read, under mu */
	int n_key_info, n_sign, n_tbs, n_decrypt;
	struct cc_sign_req last_sign; /* role and digest pointers not kept */
	uint8_t last_tbs_kind;
	uint8_t last_pad, last_oaep_md, last_mgf1_md;
};

struct fake_chan {
	struct fake *f;
	int fd;
	pthread_t th;
};

static struct fake_role *
fake_role(struct fake *f, const char *name)
{
	for (int i = 0; i < f->nroles; i++)
		if (strcmp(f->roles[i].name, name) == 0)
			return &f->roles[i];
	return NULL;
}

static void
send_error(int fd, uint64_t reqid, uint32_t code, const char *text)
{
	struct cc_wbuf w;
	struct cc_error e = { .code = code, .text = text };

	FCHECK((cc_enc_error(&w, reqid, &e)) == (0));
	(void)cc_chan_send(fd, &w);
	cc_wbuf_free(&w);
}

static void
send_sig(int fd, uint64_t reqid, const uint8_t *sig, size_t n)
{
	struct cc_wbuf w;
	struct cc_sign_resp r = { .sig = sig, .sig_len = n };

	FCHECK((cc_enc_sign_resp(&w, reqid, &r)) == (0));
	(void)cc_chan_send(fd, &w);
	cc_wbuf_free(&w);
}

static void
answer_key_info(struct fake *f, int fd, const struct cc_msg *m)
{
	struct cc_key_info_req req;
	struct cc_key_info ki;
	struct fake_role *r;
	struct cc_wbuf w;
	unsigned char *spki = NULL, *cert = NULL;
	const char *why;
	int n, cn = 0;

	FCHECK((cc_dec_key_info_req(m, &req, &why)) == (0));
	f->n_key_info++;
	r = fake_role(f, req.role);
	if (r == NULL) {
		send_error(fd, m->reqid, CC_KE_NOKEY, "no such role in the fake");
		return;
	}
	n = i2d_PUBKEY(r->key, &spki);
	if (r->cert != NULL)
		cn = i2d_X509(r->cert, &cert);
	memset(&ki, 0, sizeof(ki));
	ki.role = req.role;
	ki.key_type = EVP_PKEY_is_a(r->key, "RSA") ? CC_KEY_RSA : CC_KEY_EC;
	ki.bits = (uint32_t)EVP_PKEY_get_bits(r->key);
	ki.mechs = CC_MECH_ALL;
	ki.flags = r->flags;
	ki.spki = spki;
	ki.spki_len = (size_t)n;
	ki.cert = cert;
	ki.cert_len = (size_t)cn;
	FCHECK((cc_enc_key_info(&w, m->reqid, &ki)) == (0));
	(void)cc_chan_send(fd, &w);
	cc_wbuf_free(&w);
	OPENSSL_free(spki);
	OPENSSL_free(cert);
}

static void
answer_sign(struct fake *f, int fd, const struct cc_msg *m)
{
	struct cc_sign_req req;
	struct fake_role *r;
	EVP_PKEY_CTX *ctx;
	uint8_t sig[1024];
	size_t siglen = sizeof(sig);
	const char *why;

	FCHECK((cc_dec_sign_req(m, &req, &why)) == (0));
	f->n_sign++;
	f->last_sign = req;
	r = fake_role(f, req.role);
	if (r == NULL || (r->flags & CC_ROLE_TBS_ONLY)) {
		send_error(fd, m->reqid, CC_KE_DENIED, "the fake does not sign digests for this role");
		return;
	}
	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, r->key, "provider=default");
	FCHECK((ctx) != NULL);
	FCHECK((EVP_PKEY_sign_init(ctx)) == (1));
	FCHECK((EVP_PKEY_CTX_set_signature_md(ctx, EVP_get_digestbyname(cc_md_name(req.md)))) == (1));
	if (req.alg == CC_SIG_RSA_PSS) {
		FCHECK((EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING)) == (1));
		FCHECK((EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, (int)req.saltlen)) == (1));
		FCHECK((EVP_PKEY_CTX_set_rsa_mgf1_md(ctx,
		    EVP_get_digestbyname(cc_md_name(req.mgf1_md)))) == (1));
	} else if (req.alg == CC_SIG_RSA_PKCS1) {
		FCHECK((EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING)) == (1));
	}
	FCHECK((EVP_PKEY_sign(ctx, sig, &siglen, req.digest, req.digest_len)) == (1));
	EVP_PKEY_CTX_free(ctx);
	send_sig(fd, m->reqid, sig, siglen);
}

static void
answer_tbs(struct fake *f, int fd, const struct cc_msg *m)
{
	struct cc_sign_tbs_req req;
	struct fake_role *r;
	EVP_MD_CTX *md;
	uint8_t sig[1024];
	size_t siglen = sizeof(sig);
	const char *why;

	FCHECK((cc_dec_sign_tbs_req(m, &req, &why)) == (0));
	f->n_tbs++;
	f->last_tbs_kind = req.kind;
	r = fake_role(f, req.role);
	if (r == NULL || !(r->flags & CC_ROLE_TBS_ONLY)) {
		send_error(fd, m->reqid, CC_KE_DENIED, "not a TBS role");
		return;
	}
	/* The fake trusts the TBS and signs it as sha256WithRSAEncryption / ecdsa-with-SHA256. */
	md = EVP_MD_CTX_new();
	FCHECK((EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, "provider=default",
	    r->key, NULL)) == (1));
	FCHECK((EVP_DigestSign(md, sig, &siglen, req.tbs, req.tbs_len)) == (1));
	EVP_MD_CTX_free(md);
	send_sig(fd, m->reqid, sig, siglen);
}

static void
answer_decrypt(struct fake *f, int fd, const struct cc_msg *m)
{
	struct cc_decrypt_req req;
	struct cc_decrypt_resp resp;
	struct fake_role *r;
	EVP_PKEY_CTX *ctx;
	struct cc_wbuf w;
	uint8_t out[1024];
	size_t outlen = sizeof(out);
	const char *why;

	FCHECK((cc_dec_decrypt_req(m, &req, &why)) == (0));
	f->n_decrypt++;
	f->last_pad = req.pad;
	f->last_oaep_md = req.oaep_md;
	f->last_mgf1_md = req.mgf1_md;
	r = fake_role(f, req.role);
	FCHECK((r) != NULL);
	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, r->key, "provider=default");
	FCHECK((EVP_PKEY_decrypt_init(ctx)) == (1));
	if (req.pad == CC_DEC_RSA_OAEP) {
		FCHECK((EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING)) == (1));
		FCHECK((EVP_PKEY_CTX_set_rsa_oaep_md_name(ctx, cc_md_name(req.oaep_md),
		    NULL)) == (1));
		FCHECK((EVP_PKEY_CTX_set_rsa_mgf1_md_name(ctx, cc_md_name(req.mgf1_md),
		    NULL)) == (1));
		if (req.label_len > 0)
			FCHECK((EVP_PKEY_CTX_set0_rsa_oaep_label(ctx,
			    OPENSSL_memdup(req.label, req.label_len), (int)req.label_len)) == (1));
	}
	if (EVP_PKEY_decrypt(ctx, out, &outlen, req.in, req.in_len) != 1) {
		EVP_PKEY_CTX_free(ctx);
		ERR_clear_error();
		send_error(fd, m->reqid, CC_KE_BADINPUT, "decryption failed");
		return;
	}
	EVP_PKEY_CTX_free(ctx);
	resp.out = out;
	resp.out_len = outlen;
	FCHECK((cc_enc_decrypt_resp(&w, m->reqid, &resp)) == (0));
	(void)cc_chan_send(fd, &w);
	cc_wbuf_free(&w);
}

/* A frame whose payload is one byte string plus a stray byte (the decoder must refuse). */
static void
send_trailing(int fd, uint64_t reqid, uint16_t type)
{
	struct cc_wbuf w;
	uint8_t b[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };

	FCHECK((cc_wbuf_init(&w, type, reqid)) == (0));
	cc_w_bytes(&w, b, sizeof(b));
	cc_w_u8(&w, 0);
	FCHECK((cc_wbuf_finish(&w)) == (0));
	(void)cc_chan_send(fd, &w);
	cc_wbuf_free(&w);
}

static void *
fake_thread(void *arg)
{
	struct fake_chan *fc = arg;
	struct fake *f = fc->f;

	for (;;) {
		struct cc_frame fr;
		const char *why;
		int mode, delay;

		if (cc_chan_recv(fc->fd, -1, &fr, &why) != 1)
			break;
		pthread_mutex_lock(&f->mu);
		f->n_received++;
		mode = f->mode;
		delay = f->delay_ms;
		f->mode = FAKE_OK;
		pthread_mutex_unlock(&f->mu);
		switch (mode) {
		case FAKE_ERROR:
			send_error(fc->fd, fr.msg.reqid, f->err_code, f->err_text);
			cc_frame_free(&fr);
			continue;
		case FAKE_DELAY:
			usleep((useconds_t)delay * 1000);
			break;
		case FAKE_WRONG_TYPE: {
			struct cc_wbuf w;
			struct cc_decrypt_resp r = { .out = (const uint8_t *)"x", .out_len = 1 };

			FCHECK((cc_enc_decrypt_resp(&w, fr.msg.reqid, &r)) == (0));
			(void)cc_chan_send(fc->fd, &w);
			cc_wbuf_free(&w);
			cc_frame_free(&fr);
			continue;
		}
		case FAKE_TRAILING:
			send_trailing(fc->fd, fr.msg.reqid, CC_MSG_SIGN_RESP);
			cc_frame_free(&fr);
			continue;
		case FAKE_BAD_HEADER: {
			struct cc_wbuf w;

			FCHECK((cc_enc_empty(&w, CC_MSG_CTL_OK, fr.msg.reqid)) == (0));
			w.p[5] = 99; /* version */
			(void)cc_chan_send(fc->fd, &w);
			cc_wbuf_free(&w);
			cc_frame_free(&fr);
			continue;
		}
		case FAKE_WRONG_REQID:
			send_sig(fc->fd, fr.msg.reqid + 1000, (const uint8_t *)"sig", 3);
			cc_frame_free(&fr);
			continue;
		case FAKE_CLOSE:
			cc_frame_free(&fr);
			shutdown(fc->fd, SHUT_RDWR);
			goto out;
		case FAKE_GARBAGE: {
			uint8_t junk[64];
			size_t n = (size_t)delay % sizeof(junk) + 1;

			FCHECK(RAND_bytes(junk, (int)n) == 1);
			(void)send(fc->fd, junk, n, MSG_NOSIGNAL);
			cc_frame_free(&fr);
			shutdown(fc->fd, SHUT_RDWR);
			goto out;
		}
		case FAKE_MUTATED: {
			struct cc_wbuf w;
			struct cc_sign_resp r;
			uint8_t sig[256];
			uint8_t pos;

			memset(sig, 0xab, sizeof(sig));
			r.sig = sig;
			r.sig_len = sizeof(sig);
			FCHECK(cc_enc_sign_resp(&w, fr.msg.reqid, &r) == 0);
			FCHECK(RAND_bytes(&pos, 1) == 1);
			/* anywhere in the header or the length field of the signature */
			w.p[pos % (CC_MSG_HDR_LEN + 4)] ^= (uint8_t)(1u << (delay % 8));
			(void)cc_chan_send(fc->fd, &w);
			cc_wbuf_free(&w);
			cc_frame_free(&fr);
			shutdown(fc->fd, SHUT_RDWR);
			goto out;
		}
		}
		switch (fr.msg.type) {
		case CC_MSG_KEY_INFO_REQ: answer_key_info(f, fc->fd, &fr.msg); break;
		case CC_MSG_SIGN_REQ: answer_sign(f, fc->fd, &fr.msg); break;
		case CC_MSG_SIGN_TBS_REQ: answer_tbs(f, fc->fd, &fr.msg); break;
		case CC_MSG_DECRYPT_REQ: answer_decrypt(f, fc->fd, &fr.msg); break;
		default: send_error(fc->fd, fr.msg.reqid, CC_KE_BADINPUT, "unexpected"); break;
		}
		cc_frame_free(&fr);
	}
out:
	return NULL;
}

/* ---- fixture ---- */

static EVP_PKEY *g_rsa, *g_rsa2, *g_ec;
static X509 *g_ca_cert;

struct fx {
	struct fake f;
	struct fake_chan ch[4];
	int nch;
	OSSL_LIB_CTX *libctx;
	struct keyref_client *cl;
	/* fatal hook record */
	int fatal_calls;
	uint16_t fatal_type;
	char fatal_role[64];
};

static X509 *
make_cert(EVP_PKEY *subject_key, EVP_PKEY *issuer_key, const char *cn, int ca)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();
	X509V3_CTX v3;
	X509_EXTENSION *ext;

	X509_set_version(x, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 42);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, n);
	X509_NAME_free(n);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, subject_key);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, ca ? "critical,CA:TRUE"
	    : "CA:FALSE");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	if (issuer_key != NULL)
		assert_true(X509_sign(x, issuer_key, EVP_sha256()) > 0);
	return x;
}

static int
group_setup(void **state)
{
	(void)state;
	g_rsa = EVP_RSA_gen(2048);
	g_rsa2 = EVP_RSA_gen(2048);
	g_ec = EVP_EC_gen("P-256");
	if (g_rsa == NULL || g_rsa2 == NULL || g_ec == NULL)
		return -1;
	g_ca_cert = make_cert(g_rsa2, g_rsa2, "fake CA", 1);
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	X509_free(g_ca_cert);
	EVP_PKEY_free(g_rsa);
	EVP_PKEY_free(g_rsa2);
	EVP_PKEY_free(g_ec);
	return 0;
}

static void
fx_fatal(void *arg, const char *role, uint16_t type, const char *why)
{
	struct fx *x = arg;

	(void)why;
	x->fatal_calls++;
	x->fatal_type = type;
	snprintf(x->fatal_role, sizeof(x->fatal_role), "%s", role);
}

static void
fx_start_chans(struct fx *x, int n, int *client_fds)
{
	for (int i = 0; i < n; i++) {
		int sv[2];

		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
		x->ch[x->nch].f = &x->f;
		x->ch[x->nch].fd = sv[1];
		assert_int_equal(pthread_create(&x->ch[x->nch].th, NULL, fake_thread,
		    &x->ch[x->nch]), 0);
		x->nch++;
		client_fds[i] = sv[0];
	}
}

static struct fx *
fx_new(int nchan, int timeout_ms)
{
	struct fx *x = calloc(1, sizeof(*x));
	int fds[4];

	pthread_mutex_init(&x->f.mu, NULL);
	x->f.roles[0] = (struct fake_role){ "rsa", g_rsa, 0, NULL };
	x->f.roles[1] = (struct fake_role){ "ec", g_ec, 0, NULL };
	x->f.roles[2] = (struct fake_role){ "ca", g_rsa2, CC_ROLE_TBS_ONLY, g_ca_cert };
	x->f.nroles = 3;
	fx_start_chans(x, nchan, fds);
	x->cl = keyref_client_new(fds, nchan, timeout_ms);
	assert_non_null(x->cl);
	keyref_client_set_fatal(x->cl, fx_fatal, x);
	x->libctx = OSSL_LIB_CTX_new();
	assert_non_null(x->libctx);
	assert_int_equal(keyref_provider_load(x->libctx, x->cl), 0);
	return x;
}

static void
fx_free(struct fx *x)
{
	keyref_provider_unload(x->libctx);
	OSSL_LIB_CTX_free(x->libctx);
	keyref_client_free(x->cl); /* closes our ends: the fake threads see EOF */
	for (int i = 0; i < x->nch; i++) {
		pthread_join(x->ch[i].th, NULL);
		close(x->ch[i].fd);
	}
	pthread_mutex_destroy(&x->f.mu);
	free(x);
	ERR_clear_error();
}

static void
fx_mode(struct fx *x, int mode)
{
	pthread_mutex_lock(&x->f.mu);
	x->f.mode = mode;
	pthread_mutex_unlock(&x->f.mu);
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

/* keyref_load_key that prints OpenSSL's queue when it fails (for the test log). */
static EVP_PKEY *
load(struct fx *x, const char *role, X509 **cert)
{
	EVP_PKEY *k = keyref_load_key(x->libctx, x->cl, role, cert);

	if (k == NULL)
		ERR_print_errors_fp(stderr);
	return k;
}

static const char *
provider_of(EVP_PKEY *k)
{
	return OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(k));
}

/* Whether OpenSSL's queue holds a keyref error with this reason whose text has needle. */
static int
err_queue_has(int reason, const char *needle)
{
	const char *data = NULL;
	unsigned long e;
	int flags = 0, found = 0;

	while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
		if (ERR_GET_LIB(e) == keyref_err_lib() && ERR_GET_REASON(e) == reason &&
		    (needle == NULL || (data != NULL && (flags & ERR_TXT_STRING) &&
		    strstr(data, needle) != NULL)))
			found = 1;
	}
	return found;
}

/* DigestSign through keyref with optional RSA padding settings; returns the length. */
static size_t
digest_sign(struct fx *x, EVP_PKEY *k, const char *md, int pad, int saltlen, const char *mgf1,
    const uint8_t *msg, size_t n, uint8_t *sig, size_t cap)
{
	EVP_MD_CTX *mctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	size_t siglen = 0;

	assert_int_equal(EVP_DigestSignInit_ex(mctx, &pctx, md, x->libctx, NULL, k, NULL), 1);
	if (pad != 0) {
		assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, pad), 1);
		if (pad == RSA_PKCS1_PSS_PADDING) {
			assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, saltlen), 1);
			if (mgf1 != NULL)
				assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, mgf1, NULL), 1);
		}
	}
	/* The size query first, as libssl does. */
	assert_int_equal(EVP_DigestSign(mctx, NULL, &siglen, msg, n), 1);
	assert_true(siglen <= cap);
	siglen = cap;
	assert_int_equal(EVP_DigestSign(mctx, sig, &siglen, msg, n), 1);
	EVP_MD_CTX_free(mctx);
	return siglen;
}

static int
default_verify(EVP_PKEY *pub, const char *md, int pad, int saltlen, const char *mgf1,
    const uint8_t *msg, size_t n, const uint8_t *sig, size_t siglen)
{
	EVP_MD_CTX *mctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	int r;

	assert_int_equal(EVP_DigestVerifyInit_ex(mctx, &pctx, md, NULL, "provider=default", pub,
	    NULL), 1);
	if (pad != 0) {
		assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, pad), 1);
		if (pad == RSA_PKCS1_PSS_PADDING) {
			assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, saltlen), 1);
			if (mgf1 != NULL)
				assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, mgf1, NULL), 1);
		}
	}
	r = EVP_DigestVerify(mctx, sig, siglen, msg, n);
	EVP_MD_CTX_free(mctx);
	return r;
}

static const uint8_t msg[] = "the quick brown fox jumps over the lazy dog";

/* ---- tests ---- */

static void
test_rsa_pkcs1_and_pss(void **state)
{
	struct fx *x = fx_new(1, 5000);
	EVP_PKEY *k, *pub;
	uint8_t sig[512];
	size_t n;

	(void)state;
	k = load(x, "rsa", NULL);
	assert_non_null(k);
	assert_string_equal(provider_of(k), KEYREF_PROVIDER_NAME);
	pub = public_copy(k);

	n = digest_sign(x, k, "SHA256", 0, 0, NULL, msg, sizeof(msg), sig, sizeof(sig));
	assert_int_equal(n, 256);
	assert_int_equal(x->f.last_sign.alg, CC_SIG_RSA_PKCS1);
	assert_int_equal(x->f.last_sign.md, CC_MD_SHA256);
	assert_int_equal(default_verify(pub, "SHA256", 0, 0, NULL, msg, sizeof(msg), sig, n), 1);
	sig[7] ^= 1;
	assert_int_not_equal(default_verify(pub, "SHA256", 0, 0, NULL, msg, sizeof(msg), sig, n), 1);

	/* PSS: salt = digest length */
	n = digest_sign(x, k, "SHA384", RSA_PKCS1_PSS_PADDING, RSA_PSS_SALTLEN_DIGEST, NULL, msg,
	    sizeof(msg), sig, sizeof(sig));
	assert_int_equal(x->f.last_sign.alg, CC_SIG_RSA_PSS);
	assert_int_equal(x->f.last_sign.saltlen, 48);
	assert_int_equal(x->f.last_sign.mgf1_md, CC_MD_SHA384);
	assert_int_equal(default_verify(pub, "SHA384", RSA_PKCS1_PSS_PADDING,
	    RSA_PSS_SALTLEN_DIGEST, NULL, msg, sizeof(msg), sig, n), 1);

	/* PSS: max salt, MGF1 with another digest */
	n = digest_sign(x, k, "SHA256", RSA_PKCS1_PSS_PADDING, RSA_PSS_SALTLEN_MAX, "SHA1", msg,
	    sizeof(msg), sig, sizeof(sig));
	assert_int_equal(x->f.last_sign.saltlen, 256 - 32 - 2);
	assert_int_equal(x->f.last_sign.mgf1_md, CC_MD_SHA1);
	assert_int_equal(default_verify(pub, "SHA256", RSA_PKCS1_PSS_PADDING, RSA_PSS_SALTLEN_AUTO,
	    "SHA1", msg, sizeof(msg), sig, n), 1);

	/* PSS: an explicit salt length */
	n = digest_sign(x, k, "SHA512", RSA_PKCS1_PSS_PADDING, 10, NULL, msg, sizeof(msg), sig,
	    sizeof(sig));
	assert_int_equal(x->f.last_sign.saltlen, 10);
	assert_int_equal(default_verify(pub, "SHA512", RSA_PKCS1_PSS_PADDING, 10, NULL, msg,
	    sizeof(msg), sig, n), 1);

	/* Verification through keyref runs on the public key. */
	{
		EVP_MD_CTX *m = EVP_MD_CTX_new();
		EVP_PKEY_CTX *pc = NULL;

		assert_int_equal(EVP_DigestVerifyInit_ex(m, &pc, "SHA512", x->libctx, NULL, k, NULL), 1);
		assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING), 1);
		assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, 10), 1);
		assert_int_equal(EVP_DigestVerify(m, sig, n, msg, sizeof(msg)), 1);
		EVP_MD_CTX_free(m);
	}
	assert_int_equal(x->f.n_sign, 4);
	EVP_PKEY_free(pub);
	EVP_PKEY_free(k);
	fx_free(x);
}

static void
test_prehashed_sign(void **state)
{
	struct fx *x = fx_new(1, 5000);
	EVP_PKEY *k = load(x, "rsa", NULL);
	EVP_PKEY *e = load(x, "ec", NULL);
	EVP_PKEY_CTX *ctx;
	uint8_t dg[32], sig[512];
	size_t n = sizeof(sig);

	(void)state;
	assert_non_null(k);
	assert_non_null(e);
	assert_int_equal(EVP_Digest(msg, sizeof(msg), dg, NULL, EVP_sha256(), NULL), 1);

	ctx = EVP_PKEY_CTX_new_from_pkey(x->libctx, k, NULL);
	assert_int_equal(EVP_PKEY_sign_init(ctx), 1);
	assert_int_equal(EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()), 1);
	assert_int_equal(EVP_PKEY_sign(ctx, NULL, &n, dg, sizeof(dg)), 1);
	assert_int_equal(n, 256);
	assert_int_equal(EVP_PKEY_sign(ctx, sig, &n, dg, sizeof(dg)), 1);
	EVP_PKEY_CTX_free(ctx);
	/* verify with the same keyref key, pre-hashed */
	ctx = EVP_PKEY_CTX_new_from_pkey(x->libctx, k, NULL);
	assert_int_equal(EVP_PKEY_verify_init(ctx), 1);
	assert_int_equal(EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()), 1);
	assert_int_equal(EVP_PKEY_verify(ctx, sig, n, dg, sizeof(dg)), 1);
	EVP_PKEY_CTX_free(ctx);

	/* a digest of the wrong length for the set digest is refused locally */
	ctx = EVP_PKEY_CTX_new_from_pkey(x->libctx, k, NULL);
	assert_int_equal(EVP_PKEY_sign_init(ctx), 1);
	assert_int_equal(EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha384()), 1);
	n = sizeof(sig);
	assert_int_not_equal(EVP_PKEY_sign(ctx, sig, &n, dg, sizeof(dg)), 1);
	assert_true(err_queue_has(KEYREF_R_BAD_PARAM, "digest"));
	EVP_PKEY_CTX_free(ctx);

	/* ECDSA without a digest set: SHA-256 inferred from the length */
	ctx = EVP_PKEY_CTX_new_from_pkey(x->libctx, e, NULL);
	assert_int_equal(EVP_PKEY_sign_init(ctx), 1);
	n = sizeof(sig);
	assert_int_equal(EVP_PKEY_sign(ctx, sig, &n, dg, sizeof(dg)), 1);
	assert_int_equal(x->f.last_sign.alg, CC_SIG_ECDSA);
	assert_int_equal(x->f.last_sign.md, CC_MD_SHA256);
	EVP_PKEY_CTX_free(ctx);
	{
		EVP_PKEY *pub = public_copy(e);

		ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pub, "provider=default");
		assert_int_equal(EVP_PKEY_verify_init(ctx), 1);
		assert_int_equal(EVP_PKEY_verify(ctx, sig, n, dg, sizeof(dg)), 1);
		EVP_PKEY_CTX_free(ctx);
		EVP_PKEY_free(pub);
	}
	EVP_PKEY_free(k);
	EVP_PKEY_free(e);
	fx_free(x);
}

static void
test_ecdsa(void **state)
{
	struct fx *x = fx_new(1, 5000);
	EVP_PKEY *k, *pub;
	uint8_t sig[256];
	size_t n;
	char group[64];

	(void)state;
	k = load(x, "ec", NULL);
	assert_non_null(k);
	assert_true(EVP_PKEY_is_a(k, "EC"));
	assert_int_equal(EVP_PKEY_get_bits(k), 256);
	assert_int_equal(EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group,
	    sizeof(group), NULL), 1);
	assert_string_equal(group, "prime256v1");
	pub = public_copy(k);
	n = digest_sign(x, k, "SHA384", 0, 0, NULL, msg, sizeof(msg), sig, sizeof(sig));
	assert_int_equal(x->f.last_sign.md, CC_MD_SHA384);
	assert_int_equal(default_verify(pub, "SHA384", 0, 0, NULL, msg, sizeof(msg), sig, n), 1);
	n = digest_sign(x, k, NULL, 0, 0, NULL, msg, sizeof(msg), sig, sizeof(sig));
	assert_int_equal(x->f.last_sign.md, CC_MD_SHA256); /* the default digest */
	assert_int_equal(default_verify(pub, "SHA256", 0, 0, NULL, msg, sizeof(msg), sig, n), 1);
	EVP_PKEY_free(pub);
	EVP_PKEY_free(k);
	fx_free(x);
}

static void
test_keymgmt_public_only(void **state)
{
	struct fx *x = fx_new(1, 5000);
	EVP_PKEY *k, *pub, *other, *dup, *gen = NULL;
	EVP_PKEY_CTX *g;
	OSSL_PARAM *params = NULL;
	unsigned char *der = NULL, *der2 = NULL;
	BIGNUM *nbn = NULL;
	X509 *cert = NULL, *ccert = NULL;
	char role[32];
	int n, n2;

	(void)state;
	k = load(x, "rsa", &cert);
	assert_non_null(k);
	assert_null(cert); /* the fake has no certificate for this role */
	assert_int_equal(x->f.n_key_info, 1);
	assert_string_equal(EVP_PKEY_get0_type_name(k), "RSA");
	assert_true(EVP_PKEY_is_a(k, "rsaEncryption"));
	assert_int_equal(EVP_PKEY_get_bits(k), 2048);
	assert_int_equal(EVP_PKEY_get_size(k), 256);
	assert_int_equal(EVP_PKEY_get_security_bits(k), 112);
	assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &nbn), 1);
	assert_int_equal(BN_num_bits(nbn), 2048);
	BN_free(nbn);
	assert_int_equal(EVP_PKEY_get_utf8_string_param(k, KEYREF_PARAM_ROLE, role, sizeof(role),
	    NULL), 1);
	assert_string_equal(role, "rsa");
	assert_false(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_D, &nbn));

	/* Public export works both ways; the public key is the one keys holds. */
	pub = public_copy(k);
	assert_int_equal(EVP_PKEY_eq(k, pub), 1);
	assert_int_equal(EVP_PKEY_eq(pub, k), 1);
	assert_int_equal(EVP_PKEY_eq(k, g_rsa), 1);
	other = public_copy(g_rsa2);
	assert_int_equal(EVP_PKEY_eq(k, other), 0);
	n = i2d_PUBKEY(k, &der);
	n2 = i2d_PUBKEY(g_rsa, &der2);
	assert_int_equal(n, n2);
	assert_memory_equal(der, der2, (size_t)n);
	assert_int_equal(EVP_PKEY_todata(k, EVP_PKEY_PUBLIC_KEY, &params), 1);
	OSSL_PARAM_free(params);
	params = NULL;
	/* ... and never the private part */
	assert_int_not_equal(EVP_PKEY_todata(k, EVP_PKEY_KEYPAIR, &params), 1);
	assert_null(params);

	/* X509_check_private_key, as SSL_CTX_use_PrivateKey does */
	ccert = make_cert(pub, g_rsa2, "leaf", 0);
	assert_int_equal(X509_check_private_key(ccert, k), 1);
	X509_free(ccert);
	ccert = make_cert(other, g_rsa2, "other", 0);
	assert_int_equal(X509_check_private_key(ccert, k), 0);
	X509_free(ccert);
	ERR_clear_error();

	/* dup keeps the role */
	dup = EVP_PKEY_dup(k);
	assert_non_null(dup);
	assert_int_equal(EVP_PKEY_eq(dup, pub), 1);
	{
		uint8_t sig[512];
		size_t sl = digest_sign(x, dup, "SHA256", 0, 0, NULL, msg, sizeof(msg), sig,
		    sizeof(sig));
		assert_int_equal(default_verify(pub, "SHA256", 0, 0, NULL, msg, sizeof(msg), sig, sl), 1);
	}
	EVP_PKEY_free(dup);

	/* Key generation without a property query still gets the default provider. */
	g = EVP_PKEY_CTX_new_from_name(x->libctx, "EC", NULL);
	assert_non_null(g);
	assert_int_equal(EVP_PKEY_keygen_init(g), 1);
	assert_int_equal(EVP_PKEY_CTX_set_group_name(g, "P-256"), 1);
	assert_int_equal(EVP_PKEY_keygen(g, &gen), 1);
	assert_string_equal(provider_of(gen), "default");
	EVP_PKEY_free(gen);
	EVP_PKEY_CTX_free(g);

	/* The ca role comes with its certificate. */
	EVP_PKEY_free(k);
	k = load(x, "ca", &cert);
	assert_non_null(k);
	assert_non_null(cert);
	assert_int_equal(X509_cmp(cert, g_ca_cert), 0);
	assert_int_equal(X509_check_private_key(cert, k), 1);
	X509_free(cert);

	/* An unknown role: NULL with keys' reason on the queue. */
	assert_null(keyref_load_key(x->libctx, x->cl, "nope", NULL));
	assert_true(err_queue_has(CC_KE_NOKEY, "no such role in the fake"));

	OPENSSL_free(der);
	OPENSSL_free(der2);
	EVP_PKEY_free(other);
	EVP_PKEY_free(pub);
	EVP_PKEY_free(k);
	fx_free(x);
}

static void
test_import_by_role(void **state)
{
	struct fx *x = fx_new(1, 5000);
	EVP_PKEY_CTX *ctx;
	EVP_PKEY *k = NULL;
	OSSL_PARAM p[2];

	(void)state;
	/* With the role alone the provider's own client (keyref_provider_load's) is used. */
	p[0] = OSSL_PARAM_construct_utf8_string(KEYREF_PARAM_ROLE, (char *)"ec", 0);
	p[1] = OSSL_PARAM_construct_end();
	ctx = EVP_PKEY_CTX_new_from_name(x->libctx, "EC", KEYREF_PROPQ);
	assert_non_null(ctx);
	assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
	assert_int_equal(EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_KEYPAIR, p), 1);
	assert_int_equal(EVP_PKEY_eq(k, g_ec), 1);
	EVP_PKEY_free(k);
	k = NULL;
	/* A role holding an RSA key cannot become an EC key. */
	p[0] = OSSL_PARAM_construct_utf8_string(KEYREF_PARAM_ROLE, (char *)"rsa", 0);
	assert_int_not_equal(EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_KEYPAIR, p), 1);
	assert_null(k);
	assert_true(err_queue_has(KEYREF_R_BAD_PARAM, "not EC"));
	EVP_PKEY_CTX_free(ctx);
	fx_free(x);
}

static void
test_decrypt(void **state)
{
	struct fx *x = fx_new(1, 5000);
	EVP_PKEY *k;
	EVP_PKEY_CTX *ctx;
	uint8_t secret[32], ct[256], pt[256];
	size_t ctlen, ptlen;
	static const char label[] = "certconn";

	(void)state;
	k = load(x, "rsa", NULL);
	assert_non_null(k);
	memset(secret, 0x5a, sizeof(secret));

	/* PKCS#1 v1.5: encrypt with the default provider, decrypt through keys */
	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, g_rsa, "provider=default");
	assert_int_equal(EVP_PKEY_encrypt_init(ctx), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING), 1);
	ctlen = sizeof(ct);
	assert_int_equal(EVP_PKEY_encrypt(ctx, ct, &ctlen, secret, sizeof(secret)), 1);
	EVP_PKEY_CTX_free(ctx);
	ctx = EVP_PKEY_CTX_new_from_pkey(x->libctx, k, NULL);
	assert_int_equal(EVP_PKEY_decrypt_init(ctx), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING), 1);
	assert_int_equal(EVP_PKEY_decrypt(ctx, NULL, &ptlen, ct, ctlen), 1);
	assert_int_equal(ptlen, 256);
	assert_int_equal(EVP_PKEY_decrypt(ctx, pt, &ptlen, ct, ctlen), 1);
	assert_int_equal(ptlen, sizeof(secret));
	assert_memory_equal(pt, secret, sizeof(secret));
	assert_int_equal(x->f.last_pad, CC_DEC_RSA_PKCS1);
	EVP_PKEY_CTX_free(ctx);

	/* OAEP-SHA256 with a label: encrypt through keyref (public, local), decrypt in keys */
	ctx = EVP_PKEY_CTX_new_from_pkey(x->libctx, k, NULL);
	assert_int_equal(EVP_PKEY_encrypt_init(ctx), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_oaep_md_name(ctx, "SHA256", NULL), 1);
	assert_int_equal(EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, OPENSSL_strdup(label),
	    (int)strlen(label)), 1);
	ctlen = sizeof(ct);
	assert_int_equal(EVP_PKEY_encrypt(ctx, ct, &ctlen, secret, sizeof(secret)), 1);
	EVP_PKEY_CTX_free(ctx);
	assert_int_equal(x->f.n_decrypt, 1); /* encryption did not go to keys */

	ctx = EVP_PKEY_CTX_new_from_pkey(x->libctx, k, NULL);
	assert_int_equal(EVP_PKEY_decrypt_init(ctx), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_oaep_md_name(ctx, "SHA256", NULL), 1);
	assert_int_equal(EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, OPENSSL_strdup(label),
	    (int)strlen(label)), 1);
	ptlen = sizeof(pt);
	assert_int_equal(EVP_PKEY_decrypt(ctx, pt, &ptlen, ct, ctlen), 1);
	assert_int_equal(ptlen, sizeof(secret));
	assert_memory_equal(pt, secret, sizeof(secret));
	assert_int_equal(x->f.last_pad, CC_DEC_RSA_OAEP);
	assert_int_equal(x->f.last_oaep_md, CC_MD_SHA256);
	assert_int_equal(x->f.last_mgf1_md, CC_MD_SHA256);
	EVP_PKEY_CTX_free(ctx);

	/* keys' refusal reaches the caller's error queue */
	ct[10] ^= 0xff;
	ctx = EVP_PKEY_CTX_new_from_pkey(x->libctx, k, NULL);
	assert_int_equal(EVP_PKEY_decrypt_init(ctx), 1);
	ptlen = sizeof(pt);
	assert_int_not_equal(EVP_PKEY_decrypt(ctx, pt, &ptlen, ct, ctlen), 1);
	assert_true(err_queue_has(CC_KE_BADINPUT, "decryption failed"));
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(k);
	fx_free(x);
}

static void
test_x509_sign_digest_roles(void **state)
{
	struct fx *x = fx_new(1, 5000);
	EVP_PKEY *k, *e, *pub;
	EVP_MD_CTX *m;
	EVP_PKEY_CTX *pc = NULL;
	X509 *c;

	(void)state;
	k = load(x, "rsa", NULL);
	e = load(x, "ec", NULL);
	pub = public_copy(k);

	c = make_cert(pub, NULL, "signed by rsa", 0);
	assert_true(X509_sign(c, k, EVP_sha256()) > 0);
	assert_int_equal(X509_get_signature_nid(c), NID_sha256WithRSAEncryption);
	assert_int_equal(X509_verify(c, g_rsa), 1);
	X509_free(c);

	/* RSA-PSS through X509_sign_ctx: the AlgorithmIdentifier carries the PSS parameters. */
	c = make_cert(pub, NULL, "signed by rsa-pss", 0);
	m = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestSignInit_ex(m, &pc, "SHA256", x->libctx, NULL, k, NULL), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_DIGEST), 1);
	assert_true(X509_sign_ctx(c, m) > 0);
	EVP_MD_CTX_free(m);
	assert_int_equal(X509_get_signature_nid(c), NID_rsassaPss);
	assert_int_equal(x->f.last_sign.saltlen, 32);
	assert_int_equal(X509_verify(c, g_rsa), 1);
	X509_free(c);

	c = make_cert(pub, NULL, "signed by ec", 0);
	assert_true(X509_sign(c, e, EVP_sha384()) > 0);
	assert_int_equal(X509_get_signature_nid(c), NID_ecdsa_with_SHA384);
	assert_int_equal(X509_verify(c, g_ec), 1);
	X509_free(c);
	assert_int_equal(x->f.n_tbs, 0);

	EVP_PKEY_free(pub);
	EVP_PKEY_free(k);
	EVP_PKEY_free(e);
	fx_free(x);
}

static X509_CRL *
make_crl(X509 *issuer)
{
	X509_CRL *crl = X509_CRL_new();
	X509_REVOKED *rv = X509_REVOKED_new();
	ASN1_TIME *t = ASN1_TIME_new();
	ASN1_INTEGER *serial = ASN1_INTEGER_new();

	X509_CRL_set_version(crl, X509_CRL_VERSION_2);
	X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer));
	X509_gmtime_adj(t, 0);
	X509_CRL_set1_lastUpdate(crl, t);
	X509_gmtime_adj(t, 86400);
	X509_CRL_set1_nextUpdate(crl, t);
	ASN1_INTEGER_set(serial, 7);
	X509_REVOKED_set_serialNumber(rv, serial);
	X509_gmtime_adj(t, -10);
	X509_REVOKED_set_revocationDate(rv, t);
	X509_CRL_add0_revoked(crl, rv);
	ASN1_TIME_free(t);
	ASN1_INTEGER_free(serial);
	return crl;
}

static void
test_tbs_role(void **state)
{
	struct fx *x = fx_new(1, 5000);
	EVP_PKEY *k, *pub;
	EVP_PKEY_CTX *ctx;
	EVP_MD_CTX *m;
	X509 *cacert = NULL, *c;
	X509_CRL *crl;
	uint8_t dg[32], sig[512];
	size_t n = sizeof(sig);

	(void)state;
	k = load(x, "ca", &cacert);
	assert_non_null(k);
	pub = public_copy(g_rsa);

	/* A certificate: keyref sends the whole TBSCertificate. */
	c = make_cert(pub, NULL, "leaf via ca", 0);
	X509_set_issuer_name(c, X509_get_subject_name(cacert));
	assert_true(X509_sign(c, k, EVP_sha256()) > 0);
	assert_int_equal(x->f.n_tbs, 1);
	assert_int_equal(x->f.n_sign, 0);
	assert_int_equal(x->f.last_tbs_kind, CC_TBS_CERT);
	assert_int_equal(X509_verify(c, g_rsa2), 1);
	X509_free(c);

	/* A CRL: the TBSCertList. */
	crl = make_crl(cacert);
	assert_true(X509_CRL_sign(crl, k, EVP_sha256()) > 0);
	assert_int_equal(x->f.n_tbs, 2);
	assert_int_equal(x->f.last_tbs_kind, CC_TBS_CRL);
	assert_int_equal(X509_CRL_verify(crl, g_rsa2), 1);
	X509_CRL_free(crl);

	/* No bare digests for this role... */
	assert_int_equal(EVP_Digest(msg, sizeof(msg), dg, NULL, EVP_sha256(), NULL), 1);
	ctx = EVP_PKEY_CTX_new_from_pkey(x->libctx, k, NULL);
	assert_int_equal(EVP_PKEY_sign_init(ctx), 1);
	assert_int_not_equal(EVP_PKEY_sign(ctx, sig, &n, dg, sizeof(dg)), 1);
	assert_true(err_queue_has(KEYREF_R_TBS_ONLY, "ca"));
	EVP_PKEY_CTX_free(ctx);

	/* ... and digest-sign of anything that is no TBS never reaches keys. */
	m = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestSignInit_ex(m, NULL, "SHA256", x->libctx, NULL, k, NULL), 1);
	n = sizeof(sig);
	assert_int_not_equal(EVP_DigestSign(m, sig, &n, msg, sizeof(msg)), 1);
	assert_true(err_queue_has(KEYREF_R_NOT_TBS, NULL));
	EVP_MD_CTX_free(m);

	/* Over the message cap: refused while buffering. */
	{
		size_t big = CC_MSG_MAX;
		uint8_t *buf = calloc(1, big);

		m = EVP_MD_CTX_new();
		assert_int_equal(EVP_DigestSignInit_ex(m, NULL, "SHA256", x->libctx, NULL, k, NULL), 1);
		assert_int_not_equal(EVP_DigestSignUpdate(m, buf, big), 1);
		assert_true(err_queue_has(KEYREF_R_TOO_LARGE, NULL));
		EVP_MD_CTX_free(m);
		free(buf);
	}
	assert_int_equal(x->f.n_tbs, 2);

	/* keys' refusal, with its text, as an X509_sign failure */
	c = make_cert(pub, NULL, "sub-CA attempt", 1);
	x->f.err_code = CC_KE_REFUSED;
	x->f.err_text = "CA:TRUE is not allowed for this CA";
	fx_mode(x, FAKE_ERROR);
	assert_true(X509_sign(c, k, EVP_sha256()) <= 0);
	assert_true(err_queue_has(CC_KE_REFUSED, "CA:TRUE is not allowed"));
	X509_free(c);

	X509_free(cacert);
	EVP_PKEY_free(pub);
	EVP_PKEY_free(k);
	fx_free(x);
}

static int
try_sign(struct fx *x, EVP_PKEY *k)
{
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	uint8_t sig[512];
	size_t n = sizeof(sig);
	int r;

	assert_int_equal(EVP_DigestSignInit_ex(m, NULL, "SHA256", x->libctx, NULL, k, NULL), 1);
	r = EVP_DigestSign(m, sig, &n, msg, sizeof(msg));
	EVP_MD_CTX_free(m);
	return r;
}

static void
test_malformed_replies_are_fatal(void **state)
{
	static const int modes[] = { FAKE_WRONG_TYPE, FAKE_TRAILING, FAKE_BAD_HEADER,
	    FAKE_WRONG_REQID };
	static const uint16_t types[] = { CC_MSG_DECRYPT_RESP, CC_MSG_SIGN_RESP, 0,
	    CC_MSG_SIGN_RESP };

	(void)state;
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		struct fx *x = fx_new(1, 5000);
		EVP_PKEY *k = load(x, "rsa", NULL);

		assert_non_null(k);
		fx_mode(x, modes[i]);
		assert_int_not_equal(try_sign(x, k), 1);
		assert_int_equal(x->fatal_calls, 1);
		assert_int_equal(x->fatal_type, types[i]);
		assert_string_equal(x->fatal_role, "rsa");
		assert_true(err_queue_has(KEYREF_R_PROTOCOL, NULL));
		EVP_PKEY_free(k);
		fx_free(x);
	}
}

/* The default hook ends the process with status 1 (net is restarted by the parent). */
static void
test_default_fatal_exits(void **state)
{
	struct fx *x = fx_new(1, 5000);
	EVP_PKEY *k = load(x, "rsa", NULL);
	int status = 0;
	pid_t pid;

	(void)state;
	assert_non_null(k);
	keyref_client_set_fatal(x->cl, NULL, NULL);
	fx_mode(x, FAKE_WRONG_TYPE);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);

		dup2(fd, 2); /* the fatal line is expected */
		(void)try_sign(x, k);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 1);
	EVP_PKEY_free(k);
	fx_free(x);
}

static void
test_timeout_then_stale_reply_dropped(void **state)
{
	struct fx *x = fx_new(1, 300);
	EVP_PKEY *k = load(x, "rsa", NULL);

	(void)state;
	assert_non_null(k);
	x->f.delay_ms = 800;
	fx_mode(x, FAKE_DELAY);
	assert_int_not_equal(try_sign(x, k), 1);
	assert_true(err_queue_has(CC_KE_TIMEOUT, "no reply from keys"));
	/* The late reply to the first request arrives first and must be skipped. */
	keyref_client_set_timeout(x->cl, 5000);
	assert_int_equal(try_sign(x, k), 1);
	assert_int_equal(x->fatal_calls, 0);
	assert_int_equal(x->f.n_sign, 2);
	assert_int_equal(try_sign(x, k), 1);
	EVP_PKEY_free(k);
	fx_free(x);
}

struct holder {
	struct fx *x;
	EVP_PKEY *k;
	int r;
};

static void *
holder_main(void *arg)
{
	struct holder *h = arg;

	h->r = try_sign(h->x, h->k);
	ERR_clear_error();
	return NULL;
}

/* Waiting for a free channel counts against the request's time too. */
static void
test_no_free_channel_in_time(void **state)
{
	struct fx *x = fx_new(1, 3000);
	struct holder h;
	pthread_t th;

	(void)state;
	h.x = x;
	h.k = load(x, "rsa", NULL);
	assert_non_null(h.k);
	x->f.delay_ms = 700;
	fx_mode(x, FAKE_DELAY);
	assert_int_equal(pthread_create(&th, NULL, holder_main, &h), 0);
	/* until the fake has the holder's request: the holder has the only channel */
	for (int i = 0; i < 500; i++) {
		int got;

		pthread_mutex_lock(&x->f.mu);
		got = x->f.n_received;
		pthread_mutex_unlock(&x->f.mu);
		if (got >= 2) /* KEY_INFO, then the holder's SIGN_REQ */
			break;
		usleep(10 * 1000);
	}
	keyref_client_set_timeout(x->cl, 200);
	assert_int_not_equal(try_sign(x, h.k), 1);
	assert_true(err_queue_has(CC_KE_TIMEOUT, "no channel to keys became free"));
	pthread_join(th, NULL);
	assert_int_equal(h.r, 1); /* the holder's own 3 s were enough */
	keyref_client_set_timeout(x->cl, 3000);
	assert_int_equal(try_sign(x, h.k), 1);
	EVP_PKEY_free(h.k);
	fx_free(x);
}

struct worker {
	struct fx *x;
	EVP_PKEY *k;
	EVP_PKEY *pub;
	int ok;
};

static void *
worker_main(void *arg)
{
	struct worker *w = arg;

	for (int i = 0; i < 10; i++) {
		EVP_MD_CTX *m = EVP_MD_CTX_new();
		uint8_t sig[512];
		size_t n = sizeof(sig);
		char text[64];
		int good;

		snprintf(text, sizeof(text), "message %p %d", (void *)w, i);
		good = EVP_DigestSignInit_ex(m, NULL, "SHA256", w->x->libctx, NULL, w->k, NULL) == 1 &&
		    EVP_DigestSign(m, sig, &n, (const uint8_t *)text, strlen(text)) == 1;
		EVP_MD_CTX_free(m);
		m = EVP_MD_CTX_new();
		good = good && EVP_DigestVerifyInit_ex(m, NULL, "SHA256", NULL, "provider=default",
		    w->pub, NULL) == 1 &&
		    EVP_DigestVerify(m, sig, n, (const uint8_t *)text, strlen(text)) == 1;
		EVP_MD_CTX_free(m);
		if (good)
			w->ok++;
	}
	return NULL;
}

static void
test_concurrent_callers(void **state)
{
	struct fx *x = fx_new(2, 5000);
	EVP_PKEY *k = load(x, "rsa", NULL);
	EVP_PKEY *pub = public_copy(k);
	struct worker w[4];
	pthread_t th[4];

	(void)state;
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){ x, k, pub, 0 };
		assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].ok, 10);
	}
	assert_int_equal(x->f.n_sign, 40);
	EVP_PKEY_free(pub);
	EVP_PKEY_free(k);
	fx_free(x);
}

static void
test_keys_gone_then_replaced(void **state)
{
	struct fx *x = fx_new(1, 5000);
	EVP_PKEY *k = load(x, "rsa", NULL);
	int fds[2];

	(void)state;
	assert_non_null(k);
	fx_mode(x, FAKE_CLOSE);
	assert_int_not_equal(try_sign(x, k), 1);
	assert_true(err_queue_has(CC_KE_UNAVAILABLE, "closed the channel"));
	/* Every channel is gone: fail at once, no waiting. */
	assert_int_not_equal(try_sign(x, k), 1);
	assert_true(err_queue_has(CC_KE_UNAVAILABLE, "every channel"));
	assert_int_equal(x->fatal_calls, 0);

	/* The parent restarted keys: new channels, same keys, same EVP_PKEY. */
	fx_start_chans(x, 2, fds);
	assert_int_equal(keyref_client_replace_fds(x->cl, fds, 2), 0);
	assert_int_equal(try_sign(x, k), 1);
	assert_int_equal(try_sign(x, k), 1);
	EVP_PKEY_free(k);
	fx_free(x);
}

/*
 * Garbage and damaged frames from keys: every outcome is a failed request (through the
 * fatal hook, or as keys being unreachable), never a crash or a signature taken from a
 * broken frame. Under ASan this is a small fuzz of the reply path.
 */
static void
test_garbage_replies(void **state)
{
	(void)state;
	for (int i = 0; i < 40; i++) {
		struct fx *x = fx_new(1, 2000);
		EVP_PKEY *k = load(x, "rsa", NULL);

		assert_non_null(k);
		x->f.delay_ms = i * 7 + 3;
		fx_mode(x, i % 2 ? FAKE_GARBAGE : FAKE_MUTATED);
		assert_int_not_equal(try_sign(x, k), 1);
		/* damage in the header or the length: always the fatal path */
		if (i % 2 == 0)
			assert_int_equal(x->fatal_calls, 1);
		ERR_clear_error();
		EVP_PKEY_free(k);
		fx_free(x);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rsa_pkcs1_and_pss),
		cmocka_unit_test(test_prehashed_sign),
		cmocka_unit_test(test_ecdsa),
		cmocka_unit_test(test_keymgmt_public_only),
		cmocka_unit_test(test_import_by_role),
		cmocka_unit_test(test_decrypt),
		cmocka_unit_test(test_x509_sign_digest_roles),
		cmocka_unit_test(test_tbs_role),
		cmocka_unit_test(test_malformed_replies_are_fatal),
		cmocka_unit_test(test_default_fatal_exits),
		cmocka_unit_test(test_timeout_then_stale_reply_dropped),
		cmocka_unit_test(test_concurrent_callers),
		cmocka_unit_test(test_no_free_channel_in_time),
		cmocka_unit_test(test_keys_gone_then_replaced),
		cmocka_unit_test(test_garbage_replies),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
