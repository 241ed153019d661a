/*
 * The service client's HTTP engine: libcurl's multi interface driven by net's libevent loop
 * (CURLMOPT_SOCKETFUNCTION / CURLMOPT_TIMERFUNCTION with libevent events), so no thread of
 * ours blocks on the network. TLS 1.2 or later; the client certificate's private key is a
 * keyref EVP_PKEY (its signatures are made by the keys process), installed into each TLS
 * context libcurl makes through CURLOPT_SSL_CTX_FUNCTION (curl 7.88 has no provider key
 * type). Failed attempts are retried with exponential backoff and full jitter.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "certconn/log.h"
#include "certconn/util.h"
#include "svc.h"

struct svc_http {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	const struct cc_config_service *conf;
	struct curl_blob ca;          /* PEM trust anchors (owned), or len 0: the system's */
	char *proxy_password;         /* a secret (wiped) */
	X509 *cert;
	EVP_PKEY *key;
	struct svc_call *calls;       /* every live call, for svc_http_free */
};

/* One watched socket. */
struct svc_sock {
	struct event *ev;
	struct svc_http *h;
};

static void check_done(struct svc_http *h);
static void finish(struct svc_call *c);
static void fail_later(struct svc_call *c);

void
svc_uuid(char out[37])
{
	unsigned char b[16];

	if (RAND_bytes(b, sizeof(b)) != 1)
		cc_fatal("no randomness for a client-request-id");
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	    b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
	    b[14], b[15]);
}

/* ---- libevent <-> libcurl ---- */

static void
sock_event(evutil_socket_t fd, short what, void *arg)
{
	struct svc_http *h = arg;
	int running, action = 0;

	if (what & EV_READ)
		action |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		action |= CURL_CSELECT_OUT;
	curl_multi_socket_action(h->multi, fd, action, &running);
	check_done(h);
}

static int
sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct svc_http *h = userp;
	struct svc_sock *ss = socketp;
	short kind = EV_PERSIST;

	(void)e;
	if (what == CURL_POLL_REMOVE) {
		if (ss != NULL) {
			event_free(ss->ev);
			free(ss);
			curl_multi_assign(h->multi, s, NULL);
		}
		return 0;
	}
	if (what & CURL_POLL_IN)
		kind |= EV_READ;
	if (what & CURL_POLL_OUT)
		kind |= EV_WRITE;
	if (ss == NULL) {
		ss = calloc(1, sizeof(*ss));
		if (ss == NULL)
			return -1;
		ss->h = h;
		curl_multi_assign(h->multi, s, ss);
	} else {
		event_free(ss->ev);
	}
	ss->ev = event_new(h->base, s, kind, sock_event, h);
	if (ss->ev == NULL || event_add(ss->ev, NULL) == -1)
		return -1;
	return 0;
}

static void
timer_event(evutil_socket_t fd, short what, void *arg)
{
	struct svc_http *h = arg;
	int running;

	(void)fd; (void)what;
	curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(h);
}

static int
timer_cb(CURLM *m, long timeout_ms, void *userp)
{
	struct svc_http *h = userp;
	struct timeval tv;

	(void)m;
	if (timeout_ms < 0) {
		evtimer_del(h->timer);
		return 0;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	return evtimer_add(h->timer, &tv);
}

/* ---- calls ---- */

static size_t
write_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct svc_call *c = arg;
	size_t add = size * nmemb;
	char *np;

	if (c->resp_len + add > SVC_RESP_MAX)
		return 0; /* curl fails the transfer: a service answer is never this large */
	np = realloc(c->resp, c->resp_len + add + 1);
	if (np == NULL)
		return 0;
	memcpy(np + c->resp_len, ptr, add);
	c->resp = np;
	c->resp_len += add;
	c->resp[c->resp_len] = '\0';
	return add;
}

static size_t
header_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct svc_call *c = arg;
	size_t n = size * nmemb;

	if (n > 13 && n < 64 && strncasecmp(ptr, "Retry-After:", 12) == 0)
		c->retry_after = strtol(ptr + 12, NULL, 10);
	return n;
}

static CURLcode
ssl_ctx_cb(CURL *curl, void *sslctx, void *arg)
{
	struct svc_call *c = arg;
	SSL_CTX *ctx = sslctx;

	(void)curl;
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION))
		return CURLE_SSL_CIPHER;
	if (!c->client_cert)
		return CURLE_OK;
	if (c->h->cert == NULL || c->h->key == NULL) {
		snprintf(c->error, sizeof(c->error), "no client certificate (not registered)");
		return CURLE_SSL_CERTPROBLEM;
	}
	/* SSL_CTX_use_PrivateKey checks the key against the certificate: the keyref key
	 * exports its public half for that. */
	if (SSL_CTX_use_certificate(ctx, c->h->cert) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, c->h->key) != 1) {
		cc_log_openssl("installing the client certificate");
		return CURLE_SSL_CERTPROBLEM;
	}
	return CURLE_OK;
}

static void
call_unlink(struct svc_call *c)
{
	struct svc_call **pp;

	for (pp = &c->h->calls; *pp != NULL; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			return;
		}
}

static void
call_free(struct svc_call *c)
{
	if (c->easy != NULL) {
		curl_multi_remove_handle(c->h->multi, c->easy);
		curl_easy_cleanup(c->easy);
	}
	curl_slist_free_all(c->hdrs);
	if (c->retry_ev != NULL)
		event_free(c->retry_ev);
	if (c->bearer != NULL)
		cc_free_secret(c->bearer, strlen(c->bearer) + 1);
	if (c->dispose != NULL)
		c->dispose(c->arg);
	free(c->url);
	if (c->body != NULL)   /* a token request's body holds the client secret */
		cc_free_secret(c->body, strlen(c->body) + 1);
	free(c->resp);
	cJSON_Delete(c->json);
	free(c);
}

struct svc_call *
svc_call_new(struct svc_http *h, const char *url, char *body)
{
	struct svc_call *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		free(body);
		return NULL;
	}
	c->h = h;
	c->url = strdup(url);
	c->body = body;
	c->content_type = "application/json";
	c->max_attempts = h->conf->retry_max_attempts;
	svc_uuid(c->crid);
	if (c->url == NULL) {
		free(c->body);
		free(c);
		return NULL;
	}
	c->next = h->calls;
	h->calls = c;
	return c;
}

static int
add_header(struct svc_call *c, const char *fmt, const char *v)
{
	char line[8192];
	struct curl_slist *n;

	if (snprintf(line, sizeof(line), fmt, v) >= (int)sizeof(line))
		return -1;
	n = curl_slist_append(c->hdrs, line);
	explicit_bzero(line, sizeof(line));
	if (n == NULL)
		return -1;
	c->hdrs = n;
	return 0;
}

/* Starts one attempt. */
static void
attempt(struct svc_call *c)
{
	const struct cc_config_service *cf = c->h->conf;
	struct svc_http *h = c->h;
	CURL *e;

	c->attempt++;
	c->rc = CURLE_OK;
	c->status = 0;
	c->retry_after = 0;
	c->error[0] = '\0';
	free(c->resp);
	c->resp = NULL;
	c->resp_len = 0;
	cJSON_Delete(c->json);
	c->json = NULL;
	curl_slist_free_all(c->hdrs);
	c->hdrs = NULL;
	e = c->easy = curl_easy_init();
	if (e == NULL || add_header(c, "client-request-id: %s", c->crid) == -1 ||
	    (c->api_version != NULL && add_header(c, "api-version: %s", c->api_version) == -1) ||
	    (c->body != NULL && add_header(c, "Content-Type: %s", c->content_type) == -1) ||
	    (c->bearer != NULL && add_header(c, "Authorization: Bearer %s", c->bearer) == -1) ||
	    add_header(c, "%s", "Accept: application/json") == -1 ||
	    add_header(c, "%s", "Expect:") == -1) {
		c->rc = CURLE_OUT_OF_MEMORY;
		snprintf(c->error, sizeof(c->error), "out of memory");
		goto fail;
	}
	curl_easy_setopt(e, CURLOPT_URL, c->url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, c);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->hdrs);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "certconn/" CC_VERSION);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, (long)cf->timeout_s);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, (long)(cf->timeout_s < 10 ? cf->timeout_s : 10));
	curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	/* Session tickets would tie a later handshake to another client certificate. */
	curl_easy_setopt(e, CURLOPT_SSL_SESSIONID_CACHE, 0L);
	curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_cb);
	curl_easy_setopt(e, CURLOPT_SSL_CTX_DATA, c);
	if (h->ca.len > 0)
		curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &h->ca);
	/* The proxy is the config's, never the environment's. */
	curl_easy_setopt(e, CURLOPT_PROXY, cf->proxy_url != NULL ? cf->proxy_url : "");
	if (cf->proxy_url != NULL) {
		if (cf->proxy_username != NULL) {
			curl_easy_setopt(e, CURLOPT_PROXYUSERNAME, cf->proxy_username);
			curl_easy_setopt(e, CURLOPT_PROXYPASSWORD, h->proxy_password);
			curl_easy_setopt(e, CURLOPT_PROXYAUTH, (long)CURLAUTH_ANY);
		}
		if (cf->no_proxy != NULL)
			curl_easy_setopt(e, CURLOPT_NOPROXY, cf->no_proxy);
	}
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, c);
	if (c->body != NULL) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(c->body));
	}
	if (curl_multi_add_handle(h->multi, e) != CURLM_OK) {
		c->rc = CURLE_FAILED_INIT;
		snprintf(c->error, sizeof(c->error), "cannot start the transfer");
		goto fail;
	}
	return;
fail:
	/* Nothing was sent: finish from the loop, not from inside the caller. */
	fail_later(c);
}

static void
fail_later_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd; (void)what;
	finish(arg);
}

static void
fail_later(struct svc_call *c)
{
	struct timeval tv = { 0, 0 };

	if (c->retry_ev != NULL)
		event_free(c->retry_ev);
	c->retry_ev = evtimer_new(c->h->base, fail_later_cb, c);
	if (c->retry_ev == NULL || evtimer_add(c->retry_ev, &tv) == -1)
		cc_fatal("cannot schedule a service call");
}

void
svc_call_submit(struct svc_call *c)
{
	attempt(c);
}

bool
svc_call_ok(const struct svc_call *c)
{
	return c->rc == CURLE_OK && c->status >= 200 && c->status < 300;
}

const char *
svc_call_why(struct svc_call *c)
{
	const cJSON *e, *code, *msg;

	if (c->error[0] != '\0')
		return c->error;
	if (c->rc != CURLE_OK) {
		snprintf(c->error, sizeof(c->error), "transport: %s", curl_easy_strerror(c->rc));
		return c->error;
	}
	e = cJSON_GetObjectItemCaseSensitive(c->json, "error");
	code = cJSON_GetObjectItemCaseSensitive(e, "code");
	msg = cJSON_GetObjectItemCaseSensitive(e, "message");
	snprintf(c->error, sizeof(c->error), "HTTP %ld%s%s%s%s", c->status,
	    cJSON_IsString(code) ? " " : "", cJSON_IsString(code) ? code->valuestring : "",
	    cJSON_IsString(msg) ? ": " : "", cJSON_IsString(msg) ? msg->valuestring : "");
	return c->error;
}

static bool
retryable(const struct svc_call *c)
{
	switch (c->rc) {
	case CURLE_OK:
		return c->status >= 500 || c->status == 408 || c->status == 429;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_OUT_OF_MEMORY:
	case CURLE_FAILED_INIT:
		return false;   /* configuration, not weather: a retry would fail the same way */
	default:
		return true;
	}
}

/* Full jitter: a random delay in [0, min(cap, base * 2^(attempt-1))], at least Retry-After. */
static unsigned
backoff_ms(const struct svc_call *c)
{
	const struct cc_config_service *cf = c->h->conf;
	uint64_t ceil = cf->retry_base_ms;
	uint32_t r;

	for (unsigned i = 1; i < c->attempt && ceil < cf->retry_max_ms; i++)
		ceil *= 2;
	if (ceil > cf->retry_max_ms)
		ceil = cf->retry_max_ms;
	if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
		r = 0;
	ceil = (uint64_t)r % (ceil + 1);
	if (c->retry_after > 0 && (uint64_t)c->retry_after * 1000 > ceil)
		ceil = (uint64_t)c->retry_after * 1000 > cf->retry_max_ms ? cf->retry_max_ms :
		    (uint64_t)c->retry_after * 1000;
	return (unsigned)ceil;
}

static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd; (void)what;
	attempt(arg);
}

static void
finish(struct svc_call *c)
{
	unsigned delay;
	struct timeval tv;

	if (c->easy != NULL) {
		curl_multi_remove_handle(c->h->multi, c->easy);
		curl_easy_cleanup(c->easy);
		c->easy = NULL;
	}
	if (c->resp != NULL)
		c->json = cJSON_ParseWithLength(c->resp, c->resp_len);
	if (!svc_call_ok(c) && retryable(c) && c->attempt < c->max_attempts) {
		delay = backoff_ms(c);
		(void)svc_call_why(c);
		cc_log_debug("service: %s attempt %u failed (%s); retrying in %u ms [%s]", c->url,
		    c->attempt, c->error, delay, c->crid);
		if (c->on_retry != NULL)
			c->on_retry(c, delay);
		if (c->retry_ev != NULL)
			event_free(c->retry_ev);
		c->retry_ev = evtimer_new(c->h->base, retry_cb, c);
		tv.tv_sec = delay / 1000;
		tv.tv_usec = (delay % 1000) * 1000;
		if (c->retry_ev == NULL || evtimer_add(c->retry_ev, &tv) == -1)
			cc_fatal("cannot schedule a retry");
		return;
	}
	if (!svc_call_ok(c))
		(void)svc_call_why(c);
	if (c->done != NULL)
		c->done(c);
	call_unlink(c);
	call_free(c);
}

static void
check_done(struct svc_http *h)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(h->multi, &left)) != NULL) {
		struct svc_call *c = NULL;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&c);
		if (c == NULL)
			continue;
		c->rc = m->data.result;
		if (c->rc == CURLE_OK)
			curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &c->status);
		finish(c);
	}
}

/* ---- the engine ---- */

struct svc_http *
svc_http_new(struct event_base *base, const struct cc_config_service *conf)
{
	struct svc_http *h = calloc(1, sizeof(*h));
	uint8_t *buf;
	size_t len;

	if (h == NULL)
		return NULL;
	h->base = base;
	h->conf = conf;
	/* Read now: the sandbox that follows start-up may not let net see these files. */
	if (conf->ca_file != NULL) {
		if (cc_read_file(conf->ca_file, 1 << 20, &buf, &len) == -1) {
			cc_log_err("service: cannot read %s: %s", conf->ca_file, strerror(errno));
			goto fail;
		}
		h->ca.data = buf;
		h->ca.len = len;
		h->ca.flags = CURL_BLOB_NOCOPY;
	}
	if (conf->proxy_password_file != NULL) {
		if (cc_read_file(conf->proxy_password_file, 4096, &buf, &len) == -1) {
			cc_log_err("service: cannot read %s: %s", conf->proxy_password_file,
			    strerror(errno));
			goto fail;
		}
		buf[strcspn((char *)buf, "\r\n")] = '\0';
		h->proxy_password = (char *)buf;
	}
	h->multi = curl_multi_init();
	h->timer = evtimer_new(base, timer_event, h);
	if (h->multi == NULL || h->timer == NULL)
		goto fail;
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 4L);
	return h;
fail:
	svc_http_free(h);
	return NULL;
}

void
svc_http_set_client(struct svc_http *h, X509 *cert, EVP_PKEY *key)
{
	X509_free(h->cert);
	EVP_PKEY_free(h->key);
	h->cert = cert;
	h->key = key;
	if (cert != NULL)
		X509_up_ref(cert);
	if (key != NULL)
		EVP_PKEY_up_ref(key);
}

void
svc_http_free(struct svc_http *h)
{
	if (h == NULL)
		return;
	while (h->calls != NULL) {
		struct svc_call *c = h->calls;
		h->calls = c->next;
		call_free(c);
	}
	if (h->multi != NULL)
		curl_multi_cleanup(h->multi);
	if (h->timer != NULL)
		event_free(h->timer);
	free((void *)h->ca.data);
	if (h->proxy_password != NULL)
		cc_free_secret(h->proxy_password, strlen(h->proxy_password) + 1);
	X509_free(h->cert);
	EVP_PKEY_free(h->key);
	free(h);
}
