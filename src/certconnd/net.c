/*
 * The net role: everything that touches the network, and no private key. Private-key
 * operations go through the keyref provider to the keys process; the rest of net sees plain
 * EVP_PKEY objects. At this stage net serves the HTTP listener (health) and the self-test;
 * the flows (SCEP, service client, CA backends) plug in here.
 *
 * fds: CC_FD_PARENT = parent channel; CC_FD_PEER0 .. +N-1 = channels to keys; then the
 * listening socket the parent opened (with --listen).
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "certconn/chan.h"
#include "certconn/config.h"
#include "certconn/event.h"
#include "certconn/keyref.h"
#include "certconn/log.h"
#include "certconn/proto.h"
#include "certconn/sandbox.h"
#include "certconn/util.h"
#include "certconnd.h"
#include "net.h"

#define NET_KEYS_TIMEOUT_MS 10000

struct net {
	struct event_base *base;
	struct event *parent_ev;
	struct evbuffer *parent_in;
	struct evhttp *http;
	struct evhttp *https;
	SSL_CTX *tls;
	struct cc_config_net conf;
	struct keyref_client *kc;
	OSSL_LIB_CTX *libctx;
	int nchan;
	int listen_fd;
	int listen_tls_fd;
	uint64_t started_ms;
	struct net_ctx ctx;
};

static struct net N;
static pthread_mutex_t parent_lock = PTHREAD_MUTEX_INITIALIZER;

/* Sends a frame to the parent; a parent that cannot be written to is gone: exit. */
static void
net_to_parent(struct cc_wbuf *w)
{
	int r;

	pthread_mutex_lock(&parent_lock);
	r = cc_chan_send(CC_FD_PARENT, w);
	pthread_mutex_unlock(&parent_lock);
	cc_wbuf_free(w);
	if (r == -1)
		cc_fatal("cannot write to the parent: %s", strerror(errno));
}

static int
net_forward_event(const struct cc_event_msg *m, void *arg)
{
	struct cc_wbuf w;

	(void)arg;
	if (cc_enc_event(&w, 0, m) == -1)
		return -1;
	net_to_parent(&w);
	return 0;
}

/* ---- self-test (certconnctl dev demo / selftest) ---- */

static void
demo_line(uint64_t reqid, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
demo_line(uint64_t reqid, const char *fmt, ...)
{
	char text[1024];
	struct cc_wbuf w;
	struct cc_ctl_line l = { text };
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (cc_enc_ctl_line(&w, CC_MSG_CTL_DEMO_LINE, reqid, &l) == 0)
		net_to_parent(&w);
}

/* A default-provider copy of the public half, to check what keys produced independently. */
static EVP_PKEY *
public_copy(EVP_PKEY *k)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	EVP_PKEY *pub = NULL;
	int n;

	n = i2d_PUBKEY(k, &der);
	if (n <= 0)
		return NULL;
	p = der;
	pub = d2i_PUBKEY_ex(NULL, &p, n, NULL, "provider=default");
	OPENSSL_free(der);
	return pub;
}

static EVP_PKEY *
demo_key(const char *const *roles, const char **used)
{
	EVP_PKEY *k;

	for (size_t i = 0; roles[i] != NULL; i++) {
		k = keyref_load_key(N.libctx, N.kc, roles[i], NULL);
		if (k != NULL) {
			*used = roles[i];
			return k;
		}
	}
	ERR_clear_error();
	return NULL;
}

static int
demo_sign(uint64_t reqid)
{
	static const char *const roles[] = { "ra", "ra-sign", "client", "tls", NULL };
	static const unsigned char msg[] = "certconn self-test: sign through keys";
	EVP_MD_CTX *md = NULL;
	EVP_PKEY *k = NULL, *pub = NULL;
	unsigned char sig[1024];
	size_t siglen = sizeof(sig);
	const char *role = NULL;
	uint64_t t0;
	int ok = -1;

	k = demo_key(roles, &role);
	if (k == NULL) {
		demo_line(reqid, "sign: no signing role (ra, ra-sign, client, tls) is available");
		goto out;
	}
	md = EVP_MD_CTX_new();
	t0 = cc_now_ms();
	if (md == NULL || EVP_DigestSignInit_ex(md, NULL, "SHA256", N.libctx, NULL, k, NULL) != 1 ||
	    EVP_DigestSign(md, sig, &siglen, msg, sizeof(msg) - 1) != 1) {
		cc_log_openssl("self-test signature");
		demo_line(reqid, "sign: role %s: signing through keys FAILED (see the log)", role);
		goto out;
	}
	EVP_MD_CTX_free(md);
	md = EVP_MD_CTX_new();
	pub = public_copy(k);
	if (pub == NULL || md == NULL ||
	    EVP_DigestVerifyInit_ex(md, NULL, "SHA256", NULL, "provider=default", pub, NULL) != 1 ||
	    EVP_DigestVerify(md, sig, siglen, msg, sizeof(msg) - 1) != 1) {
		demo_line(reqid, "sign: role %s: the signature does NOT verify", role);
		goto out;
	}
	demo_line(reqid, "sign: role %s (%s-%d) signed %zu bytes with SHA-256 in %llu ms; "
	    "the %zu-byte signature verifies with the public key", role,
	    EVP_PKEY_get0_type_name(k), EVP_PKEY_get_bits(k), sizeof(msg) - 1,
	    (unsigned long long)(cc_now_ms() - t0), siglen);
	cc_event_emit(CC_EV_SELF_TEST_STEP, NULL, "step", "sign", "role", role, "result", "ok", NULL);
	ok = 0;
out:
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pub);
	EVP_PKEY_free(k);
	return ok;
}

static int
demo_decrypt(uint64_t reqid)
{
	static const char *const roles[] = { "pfx", "ra", "ra-encrypt", NULL };
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *k = NULL, *pub = NULL;
	unsigned char secret[32], ct[1024], pt[1024];
	size_t ctlen = sizeof(ct), ptlen = sizeof(pt);
	const char *role = NULL;
	uint64_t t0;
	int ok = -1;

	k = demo_key(roles, &role);
	if (k == NULL) {
		demo_line(reqid, "decrypt: no decryption role (pfx, ra, ra-encrypt) is available");
		goto out;
	}
	pub = public_copy(k);
	if (pub == NULL || RAND_bytes(secret, sizeof(secret)) != 1)
		goto out;
	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pub, "provider=default");
	if (ctx == NULL || EVP_PKEY_encrypt_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_rsa_oaep_md_name(ctx, "SHA256", NULL) != 1 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md_name(ctx, "SHA256", NULL) != 1 ||
	    EVP_PKEY_encrypt(ctx, ct, &ctlen, secret, sizeof(secret)) != 1) {
		cc_log_openssl("self-test encryption");
		goto out;
	}
	EVP_PKEY_CTX_free(ctx);
	t0 = cc_now_ms();
	ctx = EVP_PKEY_CTX_new_from_pkey(N.libctx, k, NULL);
	if (ctx == NULL || EVP_PKEY_decrypt_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_rsa_oaep_md_name(ctx, "SHA256", NULL) != 1 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md_name(ctx, "SHA256", NULL) != 1 ||
	    EVP_PKEY_decrypt(ctx, pt, &ptlen, ct, ctlen) != 1) {
		cc_log_openssl("self-test decryption");
		demo_line(reqid, "decrypt: role %s: RSA-OAEP-SHA256 decryption through keys FAILED "
		    "(see the log)", role);
		goto out;
	}
	if (ptlen != sizeof(secret) || CRYPTO_memcmp(pt, secret, ptlen) != 0) {
		demo_line(reqid, "decrypt: role %s: decrypted bytes do NOT match", role);
		goto out;
	}
	demo_line(reqid, "decrypt: role %s decrypted a %zu-byte RSA-OAEP-SHA256 ciphertext in "
	    "%llu ms; the 32-byte secret matches", role, ctlen,
	    (unsigned long long)(cc_now_ms() - t0));
	cc_event_emit(CC_EV_SELF_TEST_STEP, NULL, "step", "decrypt", "role", role, "result", "ok",
	    NULL);
	ok = 0;
out:
	OPENSSL_cleanse(secret, sizeof(secret));
	OPENSSL_cleanse(pt, sizeof(pt));
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pub);
	EVP_PKEY_free(k);
	return ok;
}

static void
net_demo(uint64_t reqid)
{
	struct cc_wbuf w;
	int failed = 0;

	demo_line(reqid, "self-test: net (pid %d, no private keys) -> keys over %d channel(s)",
	    (int)getpid(), N.nchan);
	failed |= demo_sign(reqid) != 0;
	failed |= demo_decrypt(reqid) != 0;
	if (failed) {
		struct cc_error e = { CC_KE_INTERNAL, "the self-test failed" };
		cc_event_emit(CC_EV_SELF_TEST_FAILURE, NULL, "reason", "a step failed", NULL);
		if (cc_enc_error(&w, reqid, &e) == 0)
			net_to_parent(&w);
		return;
	}
	cc_event_emit(CC_EV_SELF_TEST_SUCCESS, NULL, "steps", "sign,decrypt", NULL);
	cc_event_debug(CC_CHAN_OPERATIONAL, NULL, "self-test finished: sign and decrypt through "
	    "keys succeeded");
	demo_line(reqid, "events: %u SelfTestStep x2 (Operational), %u SelfTestSuccess (Admin), "
	    "%u DebugMessage (Debug, written while debug is on for Operational)",
	    (unsigned)CC_EV_SELF_TEST_STEP, (unsigned)CC_EV_SELF_TEST_SUCCESS,
	    (unsigned)CC_EV_DEBUG_MESSAGE);
	if (cc_enc_empty(&w, CC_MSG_CTL_OK, reqid) == 0)
		net_to_parent(&w);
}

/* ---- parent channel ---- */

static void
parent_fatal(uint16_t type, const char *why)
{
	cc_fatal("malformed message from parent (type %s): %s", cc_msg_type_name(type), why);
}

static void
parent_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cc_frame f;
	const char *why;
	int r;

	(void)what; (void)arg;
	r = evbuffer_read(N.parent_in, fd, 65536);
	if (r == 0) {
		cc_log_info("the parent closed the channel; exiting");
		event_base_loopexit(N.base, NULL);
		return;
	}
	if (r == -1) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		cc_fatal("reading the parent channel: %s", strerror(errno));
	}
	if (evbuffer_get_length(N.parent_in) > CC_MSG_MAX * 2)
		parent_fatal(0, "too much unread data");
	while ((r = cc_chan_take(N.parent_in, &f, &why)) == 1) {
		switch (f.msg.type) {
		case CC_MSG_SET_DEBUG: {
			struct cc_set_debug d;
			if (cc_dec_set_debug(&f.msg, &d, &why) == -1)
				parent_fatal(f.msg.type, why);
			cc_event_set_debug(d.mask, d.on);
			break;
		}
		case CC_MSG_SHUTDOWN:
			if (cc_dec_empty(&f.msg, &why) == -1)
				parent_fatal(f.msg.type, why);
			event_base_loopexit(N.base, NULL);
			break;
		case CC_MSG_CTL_DEMO_REQ:
			if (cc_dec_empty(&f.msg, &why) == -1)
				parent_fatal(f.msg.type, why);
			net_demo(f.msg.reqid);
			break;
		default:
			parent_fatal(f.msg.type, "unexpected message type");
		}
		cc_frame_free(&f);
	}
	if (r == -1)
		parent_fatal(0, why);
}

/* ---- HTTP ---- */

static void
http_health_cb(struct evhttp_request *req, void *arg)
{
	struct evbuffer *b = evbuffer_new();

	(void)arg;
	if (b == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	evbuffer_add_printf(b, "{\"status\":\"ok\",\"version\":\"%s\",\"uptimeSeconds\":%llu}\n",
	    CC_VERSION, (unsigned long long)((cc_now_ms() - N.started_ms) / 1000));
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	    "application/json");
	evhttp_send_reply(req, HTTP_OK, "OK", b);
	evbuffer_free(b);
}

static void
http_default_cb(struct evhttp_request *req, void *arg)
{
	(void)arg;
	evhttp_send_error(req, HTTP_NOTFOUND, "no such endpoint");
}

static struct evhttp *
http_new(int fd)
{
	struct evhttp *h = evhttp_new(N.base);

	if (h == NULL)
		return NULL;
	evhttp_set_max_headers_size(h, 16 * 1024);
	evhttp_set_max_body_size(h, 1024 * 1024);
	evhttp_set_timeout(h, 30);
	evhttp_set_allowed_methods(h, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD);
	evhttp_set_cb(h, "/health", http_health_cb, NULL);
	evhttp_set_gencb(h, http_default_cb, NULL);
	if (evhttp_accept_socket(h, fd) == -1) {
		cc_log_err("cannot serve HTTP on a listening socket");
		evhttp_free(h);
		return NULL;
	}
	return h;
}

/* Each HTTPS connection gets its own SSL on the shared context (server key: tls role). */
static struct bufferevent *
https_bev_cb(struct event_base *base, void *arg)
{
	SSL *ssl = SSL_new(arg);

	if (ssl == NULL)
		return NULL;
	return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
	    BEV_OPT_CLOSE_ON_FREE);
}

/*
 * The HTTPS server's TLS context: TLS 1.2 or later, the certificate chain from net.tls_cert,
 * the private key the tls role's key in the token (through keyref).
 */
static int
tls_start(void)
{
	EVP_PKEY *k = NULL;
	int ret = -1;

	N.tls = SSL_CTX_new_ex(N.libctx, NULL, TLS_server_method());
	if (N.tls == NULL ||
	    SSL_CTX_set_min_proto_version(N.tls, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_use_certificate_chain_file(N.tls, N.conf.tls_cert) != 1) {
		cc_log_openssl("HTTPS: TLS context and certificate");
		goto out;
	}
	k = keyref_load_key(N.libctx, N.kc, "tls", NULL);
	if (k == NULL || SSL_CTX_use_PrivateKey(N.tls, k) != 1 ||
	    SSL_CTX_check_private_key(N.tls) != 1) {
		cc_log_openssl("HTTPS: the tls role's key does not fit net.tls_cert");
		goto out;
	}
	SSL_CTX_set_options(N.tls, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	N.https = http_new(N.listen_tls_fd);
	if (N.https == NULL)
		goto out;
	evhttp_set_bevcb(N.https, https_bev_cb, N.tls);
	ret = 0;
out:
	EVP_PKEY_free(k); /* the SSL_CTX keeps its own reference */
	return ret;
}

static int
http_start(void)
{
	N.http = http_new(N.listen_fd);
	if (N.http == NULL)
		return -1;
	if (N.listen_tls_fd != -1 && tls_start() == -1)
		return -1;
	return 0;
}

/* ---- start-up ---- */

static void
read_config(void)
{
	struct cc_frame f;
	const char *why;
	char err[512];
	int got_net = 0;

	for (;;) {
		int r = cc_chan_recv(CC_FD_PARENT, 30000, &f, &why);
		if (r != 1)
			cc_fatal("no configuration from the parent: %s",
			    r == 0 ? "channel closed" : why ? why : strerror(errno));
		switch (f.msg.type) {
		case CC_MSG_CONF_LOG: {
			struct cc_conf_log l;
			if (cc_dec_conf_log(&f.msg, &l, &why) == -1)
				parent_fatal(f.msg.type, why);
			cc_log_set_verbose(l.verbose);
			cc_event_set_debug(CC_CHAN_ADMIN | CC_CHAN_OPERATIONAL, 0);
			cc_event_set_debug(l.debug_mask, 1);
			break;
		}
		case CC_MSG_CONF_NET: {
			struct cc_conf_net cn;
			if (cc_dec_conf_net(&f.msg, &cn, &why) == -1)
				parent_fatal(f.msg.type, why);
			if (cc_config_load_net(cn.json, &N.conf, err, sizeof(err)) == -1)
				cc_fatal("net configuration: %s", err);
			got_net = 1;
			break;
		}
		case CC_MSG_CONF_END:
			if (cc_dec_empty(&f.msg, &why) == -1)
				parent_fatal(f.msg.type, why);
			cc_frame_free(&f);
			if (!got_net)
				cc_fatal("the parent sent no net configuration");
			return;
		default:
			parent_fatal(f.msg.type, "unexpected message type during configuration");
		}
		cc_frame_free(&f);
	}
}

int
net_main(int argc, char **argv)
{
	struct cc_sandbox_opts so;
	struct cc_wbuf w;
	struct cc_ready rd = { "net", 0 };
	int fds[CC_MAX_PEER_CHANNELS], i = 3, with_listen = 0, with_tls = 0;

	cc_log_init("certconnd", "net", 0);
	memset(&N, 0, sizeof(N));
	N.listen_fd = -1;
	N.listen_tls_fd = -1;
	if (argc >= 5 && strcmp(argv[3], "--channels") == 0) {
		N.nchan = atoi(argv[4]);
		i = 5;
	}
	if (N.nchan < 1 || N.nchan > CC_MAX_PEER_CHANNELS)
		cc_fatal("usage: certconnd --role net --channels N [--listen] [sandbox options]");
	if (i < argc && strcmp(argv[i], "--listen") == 0) {
		with_listen = 1;
		i++;
	}
	if (with_listen && i < argc && strcmp(argv[i], "--listen-tls") == 0) {
		with_tls = 1;
		i++;
	}
	if (cc_sandbox_parse_args(argc, argv, i, &so) == -1)
		return 2;
	for (int c = 0; c < N.nchan; c++)
		fds[c] = CC_FD_PEER0 + c;
	if (with_listen)
		N.listen_fd = CC_FD_PEER0 + N.nchan;
	if (with_tls)
		N.listen_tls_fd = CC_FD_PEER0 + N.nchan + 1;
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, SIG_DFL);

	read_config();
	cc_event_set_forward(net_forward_event, NULL);

	/* Everything that opens files (providers, config) before the sandbox closes them off. */
	N.libctx = OSSL_LIB_CTX_new();
	N.kc = keyref_client_new(fds, N.nchan, NET_KEYS_TIMEOUT_MS);
	if (N.libctx == NULL || N.kc == NULL || keyref_provider_load(N.libctx, N.kc) == -1)
		cc_fatal("cannot set up the keyref provider");
	N.base = event_base_new();
	if (N.base == NULL)
		cc_fatal("event_base_new failed");
	if (N.listen_fd != -1 && http_start() == -1)
		cc_fatal("cannot start the HTTP server");
	N.ctx = (struct net_ctx){ N.base, N.http, N.https, N.libctx, N.kc, &N.conf };
	if (scep_start(&N.ctx) == -1 || flows_start(&N.ctx) == -1 || service_start(&N.ctx) == -1)
		cc_fatal("cannot start net's features (see above)");

	if (net_sandbox_apply(&so, N.conf.state_dir) == -1)
		cc_fatal("cannot sandbox net");

	N.parent_in = evbuffer_new();
	evutil_make_socket_nonblocking(CC_FD_PARENT);
	N.parent_ev = event_new(N.base, CC_FD_PARENT, EV_READ | EV_PERSIST, parent_read_cb, NULL);
	if (N.parent_in == NULL || N.parent_ev == NULL || event_add(N.parent_ev, NULL) == -1)
		cc_fatal("cannot watch the parent channel");
	N.started_ms = cc_now_ms();
	rd.pid = (uint32_t)getpid();
	if (cc_enc_ready(&w, 0, &rd) == -1)
		cc_fatal("cannot encode READY");
	net_to_parent(&w);
	cc_log_debug("ready");

	event_base_dispatch(N.base);

	/* The service client first: no upload calls back into the flows after it stops. */
	service_stop();
	flows_stop();
	scep_stop();
	cc_event_set_forward(NULL, NULL);
	if (N.http != NULL)
		evhttp_free(N.http);
	if (N.https != NULL)
		evhttp_free(N.https);
	SSL_CTX_free(N.tls);
	event_free(N.parent_ev);
	evbuffer_free(N.parent_in);
	event_base_free(N.base);
	keyref_provider_unload(N.libctx);
	keyref_client_free(N.kc);
	OSSL_LIB_CTX_free(N.libctx);
	cc_config_net_free(&N.conf);
	return 0;
}
