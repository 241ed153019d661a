/*
 * SCEP in net: the local CA and the SCEP server on net's HTTP(S) listeners.
 *
 * Paths: /scep, /cgi-bin/pkiclient.exe and /scep/pkiclient.exe (the default profile),
 * /scep/<profile> and /scep/<profile>/pkiclient.exe, /crl/<ca>.crl (the newest CRL, DER)
 * and /ca/<ca>.crt (the CA certificate, DER, which AIA names).
 *
 * Requests are copied out of libevent and handled by worker threads, because an answer may
 * wait on keys (every RA and CA private-key operation), on SQLite, or on the service or a
 * webhook; the event loop only moves bytes. A worker hands its finished job back through a
 * pipe and the loop thread sends the reply (libevent's HTTP objects are used by the loop
 * thread only). The workers start on the loop's first turn, after net has sandboxed itself:
 * Landlock and seccomp restrict the thread that applies them and its later children, not
 * threads that already exist.
 *
 * The periodic work (CRL refresh, outbox resends) also runs in a worker, queued by a timer.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "certconn/ca.h"
#include "certconn/config.h"
#include "certconn/config_ca.h"
#include "certconn/config_scep.h"
#include "certconn/keyref.h"
#include "certconn/log.h"
#include "certconn/scep.h"
#include "net.h"
#include "scep_int.h"

#define SCEP_TICK_S 5
#define SCEP_PATH_MAX 256

struct job {
	struct evhttp_request *req;  /* NULL for the periodic job */
	char path[SCEP_PATH_MAX];
	char *operation;
	char *message;
	uint8_t *body;
	size_t body_len;
	bool post;
	char peer[80];
	struct scep_http_resp resp;
	struct job *next;
};

static struct {
	struct net_ctx *ctx;
	struct cc_ca *ca;
	struct scep_server *srv;
	EVP_PKEY *cakey;
	X509 *cacert;
	STACK_OF(X509) *chain;
	STACK_OF(X509) *next_ca;
	char crl_path[128];
	char crt_path[128];
	size_t max_body;
	/* workers */
	pthread_t *threads;
	size_t nthreads;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct job *head, *tail;
	bool stopping;
	bool tick_queued;
	int done_pipe[2];
	struct event *done_ev;
	struct event *tick_ev;
	bool started;
} S = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER,
	.done_pipe = { -1, -1 } };

/* ---- jobs ---- */

static void
job_free(struct job *j)
{
	if (j == NULL)
		return;
	free(j->operation);
	free(j->message);
	free(j->body);
	scep_http_resp_free(&j->resp);
	free(j);
}

static void
send_reply(struct evhttp_request *req, int status, const char *type, const uint8_t *body,
    size_t len)
{
	struct evbuffer *b = evbuffer_new();
	const char *reason = status == 200 ? "OK" : status == 400 ? "Bad Request" :
	    status == 404 ? "Not Found" : status == 405 ? "Method Not Allowed" :
	    status == 413 ? "Payload Too Large" : status == 503 ? "Service Unavailable" :
	    "Error";

	if (b == NULL || (len > 0 && evbuffer_add(b, body, len) == -1)) {
		evbuffer_free(b);
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", type);
	evhttp_send_reply(req, status, reason, b);
	evbuffer_free(b);
}

static void
send_text(struct evhttp_request *req, int status, const char *text)
{
	send_reply(req, status, "text/plain", (const uint8_t *)text, strlen(text));
}

static void *
worker(void *arg)
{
	(void)arg;
	for (;;) {
		struct job *j;

		pthread_mutex_lock(&S.lock);
		while (S.head == NULL && !S.stopping)
			pthread_cond_wait(&S.cond, &S.lock);
		if (S.stopping) {
			pthread_mutex_unlock(&S.lock);
			return NULL;
		}
		j = S.head;
		S.head = j->next;
		if (S.head == NULL)
			S.tail = NULL;
		pthread_mutex_unlock(&S.lock);

		if (j->req == NULL) {
			char err[256];

			if (S.srv != NULL)
				scep_server_tick(S.srv, time(NULL));
			else if (cc_ca_crl_refresh(S.ca, false, time(NULL), err, sizeof(err)) == -1)
				cc_log_err("local CA: %s", err);
			pthread_mutex_lock(&S.lock);
			S.tick_queued = false;
			pthread_mutex_unlock(&S.lock);
			job_free(j);
			continue;
		}
		{
			struct scep_http_req q = {
				.post = j->post, .path = j->path, .operation = j->operation,
				.message = j->message, .body = j->body, .body_len = j->body_len,
				.peer = j->peer,
			};
			scep_server_handle(S.srv, &q, &j->resp);
		}
		/* A pointer is written atomically to a pipe (PIPE_BUF); the loop sends it. */
		if (write(S.done_pipe[1], &j, sizeof(j)) != (ssize_t)sizeof(j))
			cc_fatal("SCEP: cannot hand a reply to the event loop: %s", strerror(errno));
	}
}

static void
enqueue(struct job *j)
{
	pthread_mutex_lock(&S.lock);
	j->next = NULL;
	if (S.tail != NULL)
		S.tail->next = j;
	else
		S.head = j;
	S.tail = j;
	pthread_cond_signal(&S.cond);
	pthread_mutex_unlock(&S.lock);
}

static void
done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct job *j;

	(void)what;
	(void)arg;
	while (read(fd, &j, sizeof(j)) == (ssize_t)sizeof(j)) {
		send_reply(j->req, j->resp.status, j->resp.content_type, j->resp.body,
		    j->resp.body_len);
		job_free(j);
	}
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct job *j;
	bool queue;

	(void)fd;
	(void)what;
	(void)arg;
	pthread_mutex_lock(&S.lock);
	queue = !S.tick_queued;
	S.tick_queued = true;
	pthread_mutex_unlock(&S.lock);
	if (!queue)
		return;
	j = calloc(1, sizeof(*j));
	if (j == NULL) {
		pthread_mutex_lock(&S.lock);
		S.tick_queued = false;
		pthread_mutex_unlock(&S.lock);
		return;
	}
	enqueue(j);
}

/* The first turn of the loop: net is sandboxed now, the workers may start. */
static void
start_workers_cb(evutil_socket_t fd, short what, void *arg)
{
	size_t n = S.ctx->conf->scep != NULL ? S.ctx->conf->scep->workers : 2;

	(void)fd;
	(void)what;
	(void)arg;
	S.threads = calloc(n, sizeof(*S.threads));
	if (S.threads == NULL)
		cc_fatal("SCEP: out of memory");
	for (size_t i = 0; i < n; i++) {
		if (pthread_create(&S.threads[i], NULL, worker, NULL) != 0)
			cc_fatal("SCEP: cannot start a worker thread");
		S.nthreads++;
	}
	S.started = true;
	cc_log_debug("SCEP: %zu worker thread(s)", S.nthreads);
}

/* ---- HTTP callbacks ---- */

static void
scep_cb(struct evhttp_request *req, void *arg)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	const char *query = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	struct evhttp_connection *con = evhttp_request_get_connection(req);
	struct evkeyvalq params;
	struct evbuffer *in;
	struct job *j;
	const char *v;
	char *host = NULL;
	ev_uint16_t port = 0;
	char *dpath;

	(void)arg;
	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_POST && cmd != EVHTTP_REQ_HEAD) {
		send_text(req, 405, "GET or POST");
		return;
	}
	if (!S.started) {
		send_text(req, 503, "starting");
		return;
	}
	in = evhttp_request_get_input_buffer(req);
	if (cmd == EVHTTP_REQ_POST && evbuffer_get_length(in) > S.max_body) {
		send_text(req, 413, "the message is larger than net.scep.max_body");
		return;
	}
	j = calloc(1, sizeof(*j));
	if (j == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	j->req = req;
	j->post = cmd == EVHTTP_REQ_POST;
	dpath = evhttp_decode_uri(path != NULL ? path : "/");
	snprintf(j->path, sizeof(j->path), "%s", dpath != NULL ? dpath : "/");
	free(dpath);
	TAILQ_INIT(&params);
	if (query != NULL && evhttp_parse_query_str(query, &params) == -1) {
		job_free(j);
		send_text(req, 400, "the query cannot be parsed");
		return;
	}
	if ((v = evhttp_find_header(&params, "operation")) != NULL)
		j->operation = strdup(v);
	if ((v = evhttp_find_header(&params, "message")) != NULL)
		j->message = strdup(v);
	evhttp_clear_headers(&params);
	if (j->post) {
		j->body_len = evbuffer_get_length(in);
		j->body = malloc(j->body_len > 0 ? j->body_len : 1);
		if (j->body == NULL || evbuffer_remove(in, j->body, j->body_len) !=
		    (int)j->body_len) {
			job_free(j);
			evhttp_send_error(req, HTTP_INTERNAL, NULL);
			return;
		}
	}
	if (con != NULL)
		evhttp_connection_get_peer(con, &host, &port);
	snprintf(j->peer, sizeof(j->peer), "%s:%u", host != NULL ? host : "?", (unsigned)port);
	enqueue(j);
}

static void
crl_cb(struct evhttp_request *req, void *arg)
{
	uint8_t *der = NULL;
	size_t len = 0;
	char err[256];

	(void)arg;
	if (cc_ca_crl_latest(S.ca, &der, &len, NULL, err, sizeof(err)) != 1) {
		send_text(req, 503, "no CRL yet");
		return;
	}
	send_reply(req, 200, "application/pkix-crl", der, len);
	free(der);
}

static void
crt_cb(struct evhttp_request *req, void *arg)
{
	unsigned char *der = NULL;
	int len;

	(void)arg;
	len = i2d_X509(S.cacert, &der);
	if (len <= 0) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	send_reply(req, 200, "application/pkix-cert", der, (size_t)len);
	OPENSSL_free(der);
}

static int
register_paths(struct evhttp *h)
{
	char p[SCEP_PATH_MAX];
	const struct cc_config_scep *sc = S.ctx->conf->scep;
	int r = 0;

	if (h == NULL)
		return 0;
	r |= evhttp_set_cb(h, S.crl_path, crl_cb, NULL);
	r |= evhttp_set_cb(h, S.crt_path, crt_cb, NULL);
	if (sc == NULL)
		return r;
	r |= evhttp_set_cb(h, "/scep", scep_cb, NULL);
	r |= evhttp_set_cb(h, "/scep/", scep_cb, NULL);
	r |= evhttp_set_cb(h, "/scep/pkiclient.exe", scep_cb, NULL);
	r |= evhttp_set_cb(h, "/cgi-bin/pkiclient.exe", scep_cb, NULL);
	for (size_t i = 0; i < sc->nprofiles; i++) {
		snprintf(p, sizeof(p), "/scep/%s", sc->profiles[i].name);
		r |= evhttp_set_cb(h, p, scep_cb, NULL);
		snprintf(p, sizeof(p), "/scep/%s/pkiclient.exe", sc->profiles[i].name);
		r |= evhttp_set_cb(h, p, scep_cb, NULL);
	}
	return r;
}

/* ---- start and stop ---- */

static EVP_PKEY *
keyref_loader(void *arg, const char *role, X509 **cert)
{
	struct net_ctx *ctx = arg;
	EVP_PKEY *k = keyref_load_key(ctx->libctx, ctx->kc, role, cert);

	if (k == NULL)
		cc_log_openssl("SCEP: loading an RA key");
	return k;
}

static STACK_OF(X509) *
read_pem_certs(const char *path)
{
	STACK_OF(X509) *st = sk_X509_new_null();
	FILE *f = fopen(path, "r");
	X509 *x;

	if (st == NULL || f == NULL) {
		if (f != NULL)
			fclose(f);
		sk_X509_free(st);
		return NULL;
	}
	while ((x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL)
		sk_X509_push(st, x);
	ERR_clear_error();
	fclose(f);
	if (sk_X509_num(st) == 0) {
		sk_X509_free(st);
		return NULL;
	}
	return st;
}

/*
 * net starts as root and drops to its user only when it sandboxes itself: what it creates
 * in the state directory before that must belong to the directory's owner. (SQLite gives
 * its -wal and -shm files the database file's owner by itself.)
 */
static void
own_like(const char *path, const char *dir)
{
	struct stat st;

	if (geteuid() == 0 && stat(dir, &st) == 0 && lchown(path, st.st_uid, st.st_gid) == -1)
		cc_log_warn("SCEP: chown %s: %s", path, strerror(errno));
}

static int
prepare_db(const char *path, const char *dir)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	if (fd == -1) {
		cc_log_err("CA store %s: %s", path, strerror(errno));
		return -1;
	}
	close(fd);
	own_like(path, dir);
	return 0;
}

int
scep_start(struct net_ctx *ctx)
{
	const struct cc_config_net *n = ctx->conf;
	const struct cc_config_ca *cc = n->ca;
	struct cc_ca_opts co = { 0 };
	struct scep_server_opts so = { 0 };
	char db[CC_STATE_DIR_MAX + 16], base[CC_LISTEN_MAX + 16], err[512], p[CC_STATE_DIR_MAX + 32];
	struct timeval zero = { 0, 0 }, tick = { SCEP_TICK_S, 0 };

	if (n->scep == NULL && cc == NULL)
		return 0;
	S.ctx = ctx;
	if (cc == NULL) {
		cc_log_err("net.scep needs a CA: add net.ca (the local CA)");
		return -1;
	}
	if (n->state_dir[0] == '\0') {
		cc_log_err("the local CA needs net.state_dir");
		return -1;
	}
	S.cakey = keyref_load_key(ctx->libctx, ctx->kc, "ca", &S.cacert);
	if (S.cakey == NULL || S.cacert == NULL) {
		cc_log_openssl("the local CA needs the ca role with its certificate in keys");
		return -1;
	}
	if (cc->chain != NULL && (S.chain = read_pem_certs(cc->chain)) == NULL) {
		cc_log_err("net.ca.chain: %s holds no certificate", cc->chain);
		return -1;
	}
	if (cc->next_ca != NULL && (S.next_ca = read_pem_certs(cc->next_ca)) == NULL) {
		cc_log_err("net.ca.next_ca: %s holds no certificate", cc->next_ca);
		return -1;
	}
	snprintf(db, sizeof(db), "%s", cc->database != NULL ? cc->database : "");
	if (cc->database == NULL)
		snprintf(db, sizeof(db), "%s/ca.db", n->state_dir);
	if (prepare_db(db, n->state_dir) == -1)
		return -1;
	snprintf(base, sizeof(base), "http://%s", n->listen);
	co.name = cc->name;
	co.db_path = db;
	co.base_url = cc->base_url != NULL ? cc->base_url : base;
	co.cdp = cc->cdp;
	co.aia = cc->aia;
	co.crl_days = cc->crl_days;
	co.cert = S.cacert;
	co.key = S.cakey;
	co.libctx = ctx->libctx;
	if (cc_ca_open(&co, &S.ca, err, sizeof(err)) == -1) {
		cc_log_err("%s", err);
		return -1;
	}
	/* The first CRL now, so that /crl/ answers from the start. */
	if (cc_ca_crl_refresh(S.ca, false, time(NULL), err, sizeof(err)) == -1) {
		cc_log_err("local CA: %s", err);
		return -1;
	}
	snprintf(S.crl_path, sizeof(S.crl_path), "/crl/%s.crl", cc->name);
	snprintf(S.crt_path, sizeof(S.crt_path), "/ca/%s.crt", cc->name);
	if (n->scep != NULL) {
		so.conf = n->scep;
		so.ca = S.ca;
		so.ca_chain = S.chain;
		so.next_ca = S.next_ca;
		so.load_key = keyref_loader;
		so.load_key_arg = ctx;
		so.libctx = ctx->libctx;
		so.state_dir = n->state_dir;
		so.ra_subject = cc->ra_subject;
		so.ra_validity_days = cc->ra_validity_days;
		if (scep_server_new(&so, &S.srv, err, sizeof(err)) == -1) {
			cc_log_err("%s", err);
			return -1;
		}
		S.max_body = n->scep->max_body;
		for (size_t i = 0; i < 3; i++) {
			static const char *const roles[] = { "ra", "ra-sign", "ra-encrypt" };

			snprintf(p, sizeof(p), "%s/ra-%s.pem", n->state_dir, roles[i]);
			if (access(p, F_OK) == 0)
				own_like(p, n->state_dir);
		}
		snprintf(p, sizeof(p), "%s/outbox", n->state_dir);
		own_like(p, n->state_dir);
	}
	if (register_paths(ctx->http) != 0 || register_paths(ctx->https) != 0) {
		cc_log_err("SCEP: cannot register the HTTP paths");
		return -1;
	}
	if (pipe2(S.done_pipe, O_CLOEXEC | O_NONBLOCK) == -1) {
		cc_log_err("SCEP: pipe: %s", strerror(errno));
		return -1;
	}
	/* workers block on the write end; only the loop's read end is non-blocking */
	fcntl(S.done_pipe[1], F_SETFL, 0);
	S.done_ev = event_new(ctx->base, S.done_pipe[0], EV_READ | EV_PERSIST, done_cb, NULL);
	S.tick_ev = event_new(ctx->base, -1, EV_PERSIST, tick_cb, NULL);
	if (S.done_ev == NULL || S.tick_ev == NULL || event_add(S.done_ev, NULL) == -1 ||
	    event_add(S.tick_ev, &tick) == -1 ||
	    event_base_once(ctx->base, -1, EV_TIMEOUT, start_workers_cb, NULL, &zero) == -1) {
		cc_log_err("SCEP: cannot set up the event loop");
		return -1;
	}
	cc_log_info("local CA %s%s", cc->name, S.srv != NULL ? " and SCEP ready" : " ready");
	return 0;
}

struct cc_ca *
scep_ca(void)
{
	return S.ca;
}

void
scep_stop(void)
{
	struct job *j, *nx;

	pthread_mutex_lock(&S.lock);
	S.stopping = true;
	pthread_cond_broadcast(&S.cond);
	pthread_mutex_unlock(&S.lock);
	for (size_t i = 0; i < S.nthreads; i++)
		pthread_join(S.threads[i], NULL);
	free(S.threads);
	S.threads = NULL;
	S.nthreads = 0;
	/* Replies the loop did not send, then jobs never started: answered, so that libevent
	 * frees their requests. */
	if (S.done_pipe[0] != -1)
		done_cb(S.done_pipe[0], EV_READ, NULL);
	for (j = S.head; j != NULL; j = nx) {
		nx = j->next;
		if (j->req != NULL)
			send_text(j->req, 503, "shutting down");
		job_free(j);
	}
	S.head = S.tail = NULL;
	if (S.done_ev != NULL)
		event_free(S.done_ev);
	if (S.tick_ev != NULL)
		event_free(S.tick_ev);
	S.done_ev = S.tick_ev = NULL;
	for (int i = 0; i < 2; i++)
		if (S.done_pipe[i] != -1)
			close(S.done_pipe[i]);
	S.done_pipe[0] = S.done_pipe[1] = -1;
	scep_server_free(S.srv);
	cc_ca_close(S.ca);
	S.srv = NULL;
	S.ca = NULL;
	sk_X509_pop_free(S.chain, X509_free);
	sk_X509_pop_free(S.next_ca, X509_free);
	S.chain = S.next_ca = NULL;
	X509_free(S.cacert);
	EVP_PKEY_free(S.cakey);
	S.cacert = NULL;
	S.cakey = NULL;
	S.started = false;
	S.stopping = false;
}
