/*
 * The hub's HTTPS server: libevent's evhttp on bufferevent_openssl. TLS 1.2 or later; a
 * client certificate is asked for on every connection but required only by the connector
 * endpoints (hub_api.c decides), so registration and the admin API work without one. A
 * certificate that does not chain to the hub CA fails the handshake.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "certconn/log.h"
#include "hub_ca.h"
#include "hub_http.h"

static const char *
reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "Status";
	}
}

/* The identity of a verified client certificate, if the connection has one. */
static void
peer_of(struct evhttp_request *req, struct hub_peer *p)
{
	struct evhttp_connection *conn = evhttp_request_get_connection(req);
	struct bufferevent *bev = conn != NULL ? evhttp_connection_get_bufferevent(conn) : NULL;
	SSL *ssl = bev != NULL ? bufferevent_openssl_get_ssl(bev) : NULL;
	X509 *x;

	memset(p, 0, sizeof(*p));
	if (ssl == NULL)
		return;
	x = SSL_get0_peer_certificate(ssl);
	if (x == NULL || SSL_get_verify_result(ssl) != X509_V_OK)
		return;
	(void)hub_cert_identity(x, p);
}

static void
request_cb(struct evhttp_request *req, void *arg)
{
	struct hub_server *s = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	struct evbuffer *body = evhttp_request_get_input_buffer(req), *ob;
	struct hub_call c;
	struct hub_reply r;
	char ra[16];

	memset(&c, 0, sizeof(c));
	switch (evhttp_request_get_command(req)) {
	case EVHTTP_REQ_GET: c.method = HUB_M_GET; break;
	case EVHTTP_REQ_POST: c.method = HUB_M_POST; break;
	default: c.method = HUB_M_OTHER; break;
	}
	c.path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	c.query = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
	c.api_version = evhttp_find_header(in, "api-version");
	c.client_request_id = evhttp_find_header(in, "client-request-id");
	c.authorization = evhttp_find_header(in, "Authorization");
	c.content_type = evhttp_find_header(in, "Content-Type");
	c.body_len = evbuffer_get_length(body);
	c.body = c.body_len > 0 ? (const char *)evbuffer_pullup(body, -1) : NULL;
	if (c.body_len > 0 && c.body == NULL) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	peer_of(req, &c.peer);
	hub_handle(s->h, &c, &r);
	/* Bodies carry secrets (enrollment tokens, PFX passwords): wipe the copy libevent keeps
	 * in the request's input buffer (pulled up into one block above) before it is freed. */
	if (c.body_len > 0)
		OPENSSL_cleanse((void *)c.body, c.body_len);
	evhttp_add_header(out, "Content-Type", "application/json");
	evhttp_add_header(out, "Cache-Control", "no-store");
	if (r.client_request_id[0] != '\0')
		evhttp_add_header(out, "client-request-id", r.client_request_id);
	if (r.retry_after > 0) {
		snprintf(ra, sizeof(ra), "%d", r.retry_after);
		evhttp_add_header(out, "Retry-After", ra);
	}
	ob = evbuffer_new();
	if (ob != NULL && r.body != NULL)
		evbuffer_add(ob, r.body, strlen(r.body));
	cc_log_debug("%s %s -> %d [%s]%s%s", c.method == HUB_M_GET ? "GET" :
	    c.method == HUB_M_POST ? "POST" : "?", c.path ? c.path : "?", r.status,
	    r.client_request_id, c.peer.present ? " connector " : "",
	    c.peer.present ? c.peer.connector : "");
	evhttp_send_reply(req, r.status, reason(r.status), ob);
	evbuffer_free(ob);
	hub_reply_free(&r);
}

static struct bufferevent *
bev_cb(struct event_base *base, void *arg)
{
	struct hub_server *s = arg;
	SSL *ssl = SSL_new(s->ssl);
	struct bufferevent *bev;

	if (ssl == NULL)
		return NULL;
	bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
	    BEV_OPT_CLOSE_ON_FREE);
	if (bev != NULL)
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

static SSL_CTX *
server_ctx(const struct hub_conf *c, X509 *ca)
{
	static const unsigned char sid[] = "certconn-hub";
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	X509_STORE *store;
	STACK_OF(X509_NAME) *names;

	if (ctx == NULL)
		goto ossl;
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
	    SSL_CTX_use_certificate_chain_file(ctx, c->tls_cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, c->tls_key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1)
		goto ossl;
	/* Client certificates are checked against the hub CA alone, never the system's roots. */
	store = SSL_CTX_get_cert_store(ctx);
	if (X509_STORE_add_cert(store, ca) != 1)
		goto ossl;
	names = sk_X509_NAME_new_null();
	if (names == NULL || !sk_X509_NAME_push(names, X509_NAME_dup(X509_get_subject_name(ca)))) {
		sk_X509_NAME_pop_free(names, X509_NAME_free);
		goto ossl;
	}
	SSL_CTX_set_client_CA_list(ctx, names);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_verify_depth(ctx, 2);
	/* Resumed sessions keep the verified peer; OpenSSL needs a context id for that. */
	if (!SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid) - 1))
		goto ossl;
	return ctx;
ossl:
	cc_log_openssl("the hub's TLS context");
	SSL_CTX_free(ctx);
	return NULL;
}

int
hub_server_start(struct hub_server *s, struct event_base *base, struct hub *h, X509 *ca)
{
	const struct hub_conf *c = h->conf;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	evutil_socket_t fd;

	memset(s, 0, sizeof(*s));
	s->h = h;
	s->ssl = server_ctx(c, ca);
	if (s->ssl == NULL)
		return -1;
	s->http = evhttp_new(base);
	if (s->http == NULL)
		goto fail;
	evhttp_set_max_headers_size(s->http, 16 * 1024);
	evhttp_set_max_body_size(s->http, (ev_ssize_t)c->max_body_bytes);
	/* An oversized body is read (and discarded, not kept) before the 413 goes out: closing
	 * while the client still sends makes it see a reset instead of the answer. The idle
	 * timeout below still bounds a client that never stops. */
	if (evhttp_set_flags(s->http, EVHTTP_SERVER_LINGERING_CLOSE) != 0)
		cc_log_warn("hub: libevent has no lingering close; a client sending an oversized "
		    "body may see a reset instead of 413");
	evhttp_set_timeout(s->http, 60);
	evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
	    EVHTTP_REQ_DELETE | EVHTTP_REQ_HEAD | EVHTTP_REQ_PATCH);
	evhttp_set_bevcb(s->http, bev_cb, s);
	evhttp_set_gencb(s->http, request_cb, s);
	s->sock = evhttp_bind_socket_with_handle(s->http, c->host, c->port);
	if (s->sock == NULL) {
		cc_log_err("cannot listen on %s:%u: %s", c->host, (unsigned)c->port,
		    strerror(errno));
		goto fail;
	}
	fd = evhttp_bound_socket_get_fd(s->sock);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
		s->port = ntohs(ss.ss_family == AF_INET6 ?
		    ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
	return 0;
fail:
	hub_server_stop(s);
	return -1;
}

void
hub_server_stop(struct hub_server *s)
{
	if (s->http != NULL)
		evhttp_free(s->http);
	SSL_CTX_free(s->ssl);
	memset(s, 0, sizeof(*s));
}
