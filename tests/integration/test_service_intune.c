/*
 * The service client in Intune mode against a local stand-in for Entra ID, Microsoft Graph
 * and Intune's two public services, on loopback HTTPS (docs/protocol.md section 13). The
 * stand-in speaks the documented shapes and checks what it is sent (grant type, client id
 * and secret, scope, bearer tokens, api-version, client-request-id, bodies), and can answer
 * 401 and 500 on demand.
 *
 * The client runs as in net: on a libevent loop, from service_start with a net.service
 * config. Checked: discovery and tokens, SCEP validation and both notifications (Success and
 * refusal codes), a 401 (new token, one more try), two 401s (failure), 500s (retried with
 * backoff), a 500 that does not stop (failure after the attempts), a bad client secret, a
 * service missing from discovery, revocation download and upload, and every call through an
 * authenticating HTTP proxy (and around it, for the no-proxy list).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/queue.h>
#include <cmocka.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "certconn/config.h"
#include "certconn/config_service.h"
#include "certconn/service.h"
#include "net.h"
#include "test_token.h"

/* ---- the stand-in ---- */

static struct {
	pthread_mutex_t mu;
	struct event_base *base;
	struct evhttp *http;
	SSL_CTX *ssl;
	pthread_t thread;
	int port;
	/* behaviour */
	int fail401, fail500, token_bad, omit_scep;
	/* observations */
	int graph_tokens, intune_tokens, discoveries, api_calls;
	char last_path[256], last_api_version[64], last_crid[80], last_body[8192];
	int bad_headers;
	char uploaded[8192];
	bool revocations_given;
} SI;

static char dir[256], ca_path[300], secret_path[300], graph_scope[160], pw_path[300];

#define TENANT "contoso.onmicrosoft.com"
#define CLIENT_ID "11111111-2222-3333-4444-555555555555"
#define CLIENT_SECRET "s3cr3t~with&odd=chars"

static void
reply(struct evhttp_request *req, int status, const char *body)
{
	struct evbuffer *b = evbuffer_new();

	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	    "application/json");
	evbuffer_add(b, body, strlen(body));
	evhttp_send_reply(req, status, "x", b);
	evbuffer_free(b);
}

static char *
body_of(struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t n = evbuffer_get_length(in);
	char *s = calloc(1, n + 1);

	evbuffer_copyout(in, s, n);
	return s;
}

static const char *
bearer(struct evhttp_request *req)
{
	const char *a = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "Authorization");

	return a != NULL && strncmp(a, "Bearer ", 7) == 0 ? a + 7 : "";
}

static void
token_ep(struct evhttp_request *req, char *body)
{
	struct evkeyvalq q;
	const char *gt, *id, *sec, *scope, *ct;
	char out[256];

	TAILQ_INIT(&q);
	ct = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
	if (ct == NULL || strcmp(ct, "application/x-www-form-urlencoded") != 0 ||
	    evhttp_parse_query_str(body, &q) != 0) {
		reply(req, 400, "{\"error\":\"invalid_request\"}");
		return;
	}
	gt = evhttp_find_header(&q, "grant_type");
	id = evhttp_find_header(&q, "client_id");
	sec = evhttp_find_header(&q, "client_secret");
	scope = evhttp_find_header(&q, "scope");
	if (gt == NULL || strcmp(gt, "client_credentials") != 0 || id == NULL ||
	    strcmp(id, CLIENT_ID) != 0 || sec == NULL || strcmp(sec, CLIENT_SECRET) != 0 ||
	    SI.token_bad) {
		reply(req, 401, "{\"error\":\"invalid_client\",\"error_description\":\"AADSTS7000215\"}");
		evhttp_clear_headers(&q);
		return;
	}
	if (scope != NULL && strcmp(scope, graph_scope) == 0)
		snprintf(out, sizeof(out), "{\"token_type\":\"Bearer\",\"expires_in\":3599,"
		    "\"access_token\":\"graph-%d\"}", ++SI.graph_tokens);
	else if (scope != NULL && strcmp(scope, "https://api.manage.microsoft.com//.default") == 0)
		snprintf(out, sizeof(out), "{\"token_type\":\"Bearer\",\"expires_in\":3599,"
		    "\"access_token\":\"intune-%d\"}", ++SI.intune_tokens);
	else {
		reply(req, 400, "{\"error\":\"invalid_scope\"}");
		evhttp_clear_headers(&q);
		return;
	}
	reply(req, 200, out);
	evhttp_clear_headers(&q);
}

static void
discovery_ep(struct evhttp_request *req)
{
	char out[1024];

	SI.discoveries++;
	if (strncmp(bearer(req), "graph-", 6) != 0) {
		reply(req, 401, "{\"error\":{\"code\":\"InvalidAuthenticationToken\"}}");
		return;
	}
	snprintf(out, sizeof(out), "{\"value\":[%s{\"capability\":\"x\",\"providerName\":"
	    "\"PkiConnectorFEService\",\"uri\":\"https://127.0.0.1:%d/pki\"},"
	    "{\"providerName\":\"SomethingElse\",\"uri\":\"https://127.0.0.1:%d/else\"}]}",
	    SI.omit_scep ? "" : "{\"providerName\":\"ScepRequestValidationFEService\",\"uri\":"
	    "\"https://127.0.0.1:PORT/scep\"},", SI.port, SI.port);
	{
		/* put the port into the SCEP entry too */
		char *p = strstr(out, "PORT");
		if (p != NULL) {
			char rest[1024], num[16];
			snprintf(num, sizeof(num), "%d", SI.port);
			snprintf(rest, sizeof(rest), "%s", p + 4);
			snprintf(p, sizeof(out) - (size_t)(p - out), "%s%s", num, rest);
		}
	}
	reply(req, 200, out);
}

static void
api_ep(struct evhttp_request *req, const char *path, char *body)
{
	struct evkeyvalq *h = evhttp_request_get_input_headers(req);
	const char *av = evhttp_find_header(h, "api-version");
	const char *crid = evhttp_find_header(h, "client-request-id");
	bool scep = strncmp(path, "/scep/", 6) == 0;
	cJSON *j = cJSON_Parse(body);

	SI.api_calls++;
	snprintf(SI.last_path, sizeof(SI.last_path), "%s", path);
	snprintf(SI.last_api_version, sizeof(SI.last_api_version), "%s", av ? av : "");
	snprintf(SI.last_crid, sizeof(SI.last_crid), "%s", crid ? crid : "");
	snprintf(SI.last_body, sizeof(SI.last_body), "%s", body);
	if (crid == NULL || av == NULL || strcmp(av, scep ? "2018-02-20" : "5019-05-05") != 0)
		SI.bad_headers++;
	if (SI.fail401 > 0) {
		SI.fail401--;
		reply(req, 401, "{\"error\":{\"code\":\"Unauthorized\"}}");
		goto out;
	}
	if (strncmp(bearer(req), "intune-", 7) != 0) {
		reply(req, 401, "{\"error\":{\"code\":\"Unauthorized\"}}");
		goto out;
	}
	if (SI.fail500 > 0) {
		SI.fail500--;
		reply(req, 500, "{\"error\":{\"code\":\"InternalServerError\"}}");
		goto out;
	}
	if (scep) {
		const cJSON *r = cJSON_GetObjectItem(j, strstr(path, "validateRequest") ? "request" :
		    "notification");
		const cJSON *tx = cJSON_GetObjectItem(r, "transactionId");

		if (!cJSON_IsString(tx) || !cJSON_IsString(cJSON_GetObjectItem(r,
		    "certificateRequest"))) {
			reply(req, 400, "{\"error\":{\"code\":\"BadRequest\"}}");
			goto out;
		}
		if (strncmp(tx->valuestring, "ok", 2) == 0)
			reply(req, 200, "{\"code\":\"Success\",\"errorDescription\":\"\"}");
		else
			reply(req, 200, "{\"code\":\"ChallengeExpired\",\"errorDescription\":"
			    "\"the challenge has expired\"}");
		goto out;
	}
	if (strstr(path, "downloadRevocationRequests") != NULL) {
		const cJSON *dp = cJSON_GetObjectItem(j, "downloadParameters");
		const cJSON *mx = cJSON_GetObjectItem(dp, "maxRequests");

		if (!cJSON_IsNumber(mx) || mx->valueint < 1 || mx->valueint > 500 ||
		    cJSON_GetObjectItem(dp, "issuerName") == NULL) {
			reply(req, 400, "{\"error\":{\"code\":\"BadRequest\"}}");
			goto out;
		}
		if (!SI.revocations_given) {
			SI.revocations_given = true;
			reply(req, 200, "{\"value\":[{\"requestContext\":\"ctx-1\",\"serialNumber\":"
			    "\"0A1B\",\"issuerName\":\"CN=Contoso CA\",\"caConfiguration\":\"local\"},"
			    "{\"requestContext\":\"ctx-2\",\"serialNumber\":\"0C2D\",\"issuerName\":"
			    "\"CN=Contoso CA\",\"caConfiguration\":\"local\"}]}");
		} else {
			reply(req, 200, "{\"value\":[]}");
		}
		goto out;
	}
	if (strstr(path, "uploadRevocationResults") != NULL) {
		size_t n = strlen(SI.uploaded);
		snprintf(SI.uploaded + n, sizeof(SI.uploaded) - n, "%s\n", body);
		reply(req, 200, "{\"value\":true}");
		goto out;
	}
	reply(req, 404, "{\"error\":{\"code\":\"NotFound\"}}");
out:
	cJSON_Delete(j);
}

static void
standin_cb(struct evhttp_request *req, void *arg)
{
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	char *body = body_of(req);

	(void)arg;
	pthread_mutex_lock(&SI.mu);
	if (strcmp(path, "/" TENANT "/oauth2/v2.0/token") == 0)
		token_ep(req, body);
	else if (strcmp(path, "/graph/v1.0/servicePrincipals/appId=0000000a-0000-0000-c000-"
	    "000000000000/endpoints") == 0)
		discovery_ep(req);
	else
		api_ep(req, path, body);
	pthread_mutex_unlock(&SI.mu);
	free(body);
}

static struct bufferevent *
standin_bev(struct event_base *base, void *arg)
{
	(void)arg;
	return bufferevent_openssl_socket_new(base, -1, SSL_new(SI.ssl),
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
}

static void *
standin_thread(void *arg)
{
	(void)arg;
	event_base_dispatch(SI.base);
	return NULL;
}

/* A CA and a server certificate for 127.0.0.1, made here. */
static void
make_certs(EVP_PKEY **key, X509 **cert)
{
	EVP_PKEY *cak = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509 *ca = X509_new(), *x = X509_new();
	X509V3_CTX ctx;
	X509_EXTENSION *e;
	FILE *f;

	*key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	ASN1_INTEGER_set(X509_get_serialNumber(ca), 1);
	X509_gmtime_adj(X509_getm_notBefore(ca), -60);
	X509_gmtime_adj(X509_getm_notAfter(ca), 86400);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(ca), "CN", MBSTRING_UTF8,
	    (const unsigned char *)"stand-in CA", -1, -1, 0);
	X509_set_issuer_name(ca, X509_get_subject_name(ca));
	X509_set_pubkey(ca, cak);
	X509V3_set_ctx(&ctx, ca, ca, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints, "critical,CA:TRUE");
	X509_add_ext(ca, e, -1);
	X509_EXTENSION_free(e);
	X509_sign(ca, cak, EVP_sha256());
	ASN1_INTEGER_set(X509_get_serialNumber(x), 2);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
	    (const unsigned char *)"127.0.0.1", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(ca));
	X509_set_pubkey(x, *key);
	X509V3_set_ctx(&ctx, ca, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, "IP:127.0.0.1");
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	X509_sign(x, cak, EVP_sha256());
	f = fopen(ca_path, "w");
	PEM_write_X509(f, ca);
	fclose(f);
	*cert = x;
	X509_free(ca);
	EVP_PKEY_free(cak);
}

static void
standin_start(void)
{
	EVP_PKEY *k;
	X509 *x;
	struct evhttp_bound_socket *s;
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);

	/* The stand-in's loop runs in its own thread and is stopped from this one. */
	evthread_use_pthreads();
	make_certs(&k, &x);
	SI.ssl = SSL_CTX_new(TLS_server_method());
	SSL_CTX_set_min_proto_version(SI.ssl, TLS1_2_VERSION);
	assert_int_equal(SSL_CTX_use_certificate(SI.ssl, x), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(SI.ssl, k), 1);
	X509_free(x);
	EVP_PKEY_free(k);
	SI.base = event_base_new();
	SI.http = evhttp_new(SI.base);
	evhttp_set_bevcb(SI.http, standin_bev, NULL);
	evhttp_set_gencb(SI.http, standin_cb, NULL);
	s = evhttp_bind_socket_with_handle(SI.http, "127.0.0.1", 0);
	assert_non_null(s);
	getsockname(evhttp_bound_socket_get_fd(s), (struct sockaddr *)&sin, &sl);
	SI.port = ntohs(sin.sin_port);
	pthread_mutex_init(&SI.mu, NULL);
	assert_int_equal(pthread_create(&SI.thread, NULL, standin_thread, NULL), 0);
}

static void
standin_stop(void)
{
	event_base_loopbreak(SI.base);
	pthread_join(SI.thread, NULL);
	evhttp_free(SI.http);
	event_base_free(SI.base);
	SSL_CTX_free(SI.ssl);
}

/* ---- the client, as net runs it ---- */

static struct event_base *base;
static struct cc_config_net netconf;
static struct cc_config_service svc;
static struct net_ctx ctx;
static char urls[3][128];

static int
setup(void **state)
{
	FILE *f;

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/svcintune.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(ca_path, sizeof(ca_path), "%s/standin-ca.pem", dir);
	snprintf(secret_path, sizeof(secret_path), "%s/secret", dir);
	f = fopen(secret_path, "w");
	fprintf(f, "%s\n", CLIENT_SECRET);
	fclose(f);
	snprintf(pw_path, sizeof(pw_path), "%s/proxy-password", dir);
	f = fopen(pw_path, "w");
	fprintf(f, "p\n");
	fclose(f);
	standin_start();
	snprintf(urls[0], sizeof(urls[0]), "https://127.0.0.1:%d", SI.port);
	snprintf(urls[1], sizeof(urls[1]), "https://127.0.0.1:%d/graph", SI.port);
	snprintf(graph_scope, sizeof(graph_scope), "%s/.default", urls[1]);
	svc.mode = CC_SERVICE_INTUNE;
	svc.ca_file = ca_path;
	svc.client_key_role = (char *)"client";
	svc.features = CC_FEATURE_SCEP | CC_FEATURE_REVOKE;
	svc.health_interval_s = 60;
	svc.poll_interval_s = 1;
	svc.timeout_s = 10;
	svc.renew_before_days = 30;
	svc.retry_base_ms = 20;
	svc.retry_max_ms = 100;
	svc.retry_max_attempts = 4;
	svc.tenant = (char *)TENANT;
	svc.client_id = (char *)CLIENT_ID;
	svc.client_secret_file = secret_path;
	svc.login_url = urls[0];
	svc.graph_url = urls[1];
	svc.intune_resource = (char *)"https://api.manage.microsoft.com/";
	svc.scep_api_version = (char *)"2018-02-20";
	svc.revocation_api_version = (char *)"5019-05-05";
	snprintf(netconf.state_dir, sizeof(netconf.state_dir), "%s", dir);
	netconf.service = &svc;
	base = event_base_new();
	ctx = (struct net_ctx){ .base = base, .conf = &netconf };
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	standin_stop();
	event_base_free(base);
	test_rmtree(dir);
	return 0;
}

struct outcome {
	bool done;
	enum service_outcome out;
	char code[64];
	char desc[300];
};

static void
scep_cb(void *arg, enum service_outcome o, const char *code, const char *desc)
{
	struct outcome *r = arg;

	r->done = true;
	r->out = o;
	snprintf(r->code, sizeof(r->code), "%s", code ? code : "(none)");
	snprintf(r->desc, sizeof(r->desc), "%s", desc ? desc : "");
}

/* Runs the loop until *flag or timeout. */
static void
run_until(bool *flag, int timeout_ms)
{
	struct timeval tick = { 0, 20000 };

	for (int t = 0; !*flag && t < timeout_ms; t += 20) {
		event_base_loopexit(base, &tick);
		event_base_dispatch(base);
	}
	assert_true(*flag);
}

static const uint8_t csr[] = { 0x30, 0x03, 0x02, 0x01, 0x00 }; /* opaque to the client */

static void
validate(const char *txid, struct outcome *r)
{
	memset(r, 0, sizeof(*r));
	assert_int_equal(service_scep_validate(txid, csr, sizeof(csr), scep_cb, r), 0);
	run_until(&r->done, 10000);
}

static void
with_service(void (*fn)(void))
{
	assert_int_equal(service_start(&ctx), 0);
	fn();
	service_stop();
}

static void
scep_flow(void)
{
	struct outcome r;
	struct service_scep_success ok = { "ok-tx", csr, sizeof(csr), "a1b2", "3A5F",
		"2030-01-01T00:00:00.000Z", "CN=Contoso CA", "local", "certconn" };
	char longdesc[400];

	/* first call: Intune token, Graph token, discovery, the call */
	validate("ok-1", &r);
	assert_int_equal(r.out, SERVICE_OK);
	assert_string_equal(r.code, "Success");
	pthread_mutex_lock(&SI.mu);
	assert_int_equal(SI.intune_tokens, 1);
	assert_int_equal(SI.graph_tokens, 1);
	assert_int_equal(SI.discoveries, 1);
	assert_string_equal(SI.last_path, "/scep/ScepActions/validateRequest");
	assert_string_equal(SI.last_api_version, "2018-02-20");
	assert_int_equal(strlen(SI.last_crid), 36);
	assert_non_null(strstr(SI.last_body, "\"request\":{\"transactionId\":\"ok-1\","
	    "\"certificateRequest\":\"MAMCAQA=\",\"callerInfo\":\"certconn/"));
	assert_int_equal(SI.bad_headers, 0);
	pthread_mutex_unlock(&SI.mu);
	/* a refusal is a code, and no certificate */
	validate("expired-1", &r);
	assert_int_equal(r.out, SERVICE_REFUSED);
	assert_string_equal(r.code, "ChallengeExpired");
	assert_string_equal(r.desc, "the challenge has expired");
	/* tokens and discovery are cached */
	pthread_mutex_lock(&SI.mu);
	assert_int_equal(SI.intune_tokens, 1);
	assert_int_equal(SI.discoveries, 1);
	pthread_mutex_unlock(&SI.mu);

	/* notifications */
	memset(&r, 0, sizeof(r));
	assert_int_equal(service_scep_notify_success(&ok, scep_cb, &r), 0);
	run_until(&r.done, 10000);
	assert_int_equal(r.out, SERVICE_OK);
	pthread_mutex_lock(&SI.mu);
	assert_string_equal(SI.last_path, "/scep/ScepActions/successNotification");
	assert_non_null(strstr(SI.last_body, "\"notification\":{\"transactionId\":\"ok-tx\""));
	assert_non_null(strstr(SI.last_body, "\"certificateThumbprint\":\"a1b2\""));
	assert_non_null(strstr(SI.last_body, "\"certificateSerialNumber\":\"3A5F\""));
	assert_non_null(strstr(SI.last_body, "\"certificateExpirationDateUtc\":"
	    "\"2030-01-01T00:00:00.000Z\""));
	assert_non_null(strstr(SI.last_body, "\"issuingCertificateAuthority\":\"CN=Contoso CA\""));
	pthread_mutex_unlock(&SI.mu);
	memset(longdesc, 'e', sizeof(longdesc) - 1);
	longdesc[sizeof(longdesc) - 1] = '\0';
	memset(&r, 0, sizeof(r));
	assert_int_equal(service_scep_notify_failure("ok-fail", csr, sizeof(csr),
	    (int32_t)0x80094012, longdesc, scep_cb, &r), 0);
	run_until(&r.done, 10000);
	assert_int_equal(r.out, SERVICE_OK);
	pthread_mutex_lock(&SI.mu);
	assert_string_equal(SI.last_path, "/scep/ScepActions/failureNotification");
	assert_non_null(strstr(SI.last_body, "\"hResult\":-2146877422"));
	{
		/* errorDescription cut to 255 */
		cJSON *j = cJSON_Parse(SI.last_body);
		const char *d = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "notification"),
		    "errorDescription")->valuestring;
		assert_int_equal(strlen(d), 255);
		cJSON_Delete(j);
	}
	pthread_mutex_unlock(&SI.mu);

	/* 401 once: a new Intune token and one more try */
	pthread_mutex_lock(&SI.mu);
	SI.fail401 = 1;
	pthread_mutex_unlock(&SI.mu);
	validate("ok-2", &r);
	assert_int_equal(r.out, SERVICE_OK);
	pthread_mutex_lock(&SI.mu);
	assert_int_equal(SI.intune_tokens, 2);
	SI.fail401 = 2;
	pthread_mutex_unlock(&SI.mu);
	/* 401 twice: failure, no certificate */
	validate("ok-3", &r);
	assert_int_equal(r.out, SERVICE_FAILED);
	assert_non_null(strstr(r.desc, "401"));

	/* 500s are retried with backoff */
	pthread_mutex_lock(&SI.mu);
	SI.fail500 = 2;
	SI.api_calls = 0;
	pthread_mutex_unlock(&SI.mu);
	validate("ok-4", &r);
	assert_int_equal(r.out, SERVICE_OK);
	pthread_mutex_lock(&SI.mu);
	assert_int_equal(SI.api_calls, 3);
	SI.fail500 = 100;
	SI.api_calls = 0;
	pthread_mutex_unlock(&SI.mu);
	/* ... until the attempts are used up */
	validate("ok-5", &r);
	assert_int_equal(r.out, SERVICE_FAILED);
	assert_non_null(strstr(r.desc, "500"));
	pthread_mutex_lock(&SI.mu);
	assert_int_equal(SI.api_calls, 4);   /* retry.max_attempts */
	SI.fail500 = 0;
	pthread_mutex_unlock(&SI.mu);
}

static void
test_scep(void **state)
{
	(void)state;
	with_service(scep_flow);
}

static void
bad_secret_flow(void)
{
	struct outcome r;

	validate("ok-x", &r);
	assert_int_equal(r.out, SERVICE_FAILED);
	assert_non_null(strstr(r.desc, "no access token"));
	assert_non_null(strstr(r.desc, "invalid_client"));
}

static void
test_bad_secret(void **state)
{
	(void)state;
	pthread_mutex_lock(&SI.mu);
	SI.token_bad = 1;
	pthread_mutex_unlock(&SI.mu);
	with_service(bad_secret_flow);
	pthread_mutex_lock(&SI.mu);
	SI.token_bad = 0;
	pthread_mutex_unlock(&SI.mu);
}

static void
missing_service_flow(void)
{
	struct outcome r;

	validate("ok-y", &r);
	assert_int_equal(r.out, SERVICE_FAILED);
	assert_non_null(strstr(r.desc, "ScepRequestValidationFEService is not among"));
}

static void
test_missing_service(void **state)
{
	(void)state;
	pthread_mutex_lock(&SI.mu);
	SI.omit_scep = 1;
	pthread_mutex_unlock(&SI.mu);
	with_service(missing_service_flow);
	pthread_mutex_lock(&SI.mu);
	SI.omit_scep = 0;
	pthread_mutex_unlock(&SI.mu);
}

/* ---- revocation ---- */

static int handled, uploaded;
static char statuses[256];

static void
upload_cb(void *arg, const char *id, const char *status)
{
	size_t n = strlen(statuses);

	(void)arg;
	snprintf(statuses + n, sizeof(statuses) - n, "%s=%s;", id, status);
	uploaded++;
}

static void
revoke_handler(void *arg, const struct service_request *req)
{
	const char *serial = cJSON_GetObjectItem(req->payload, "serialNumber")->valuestring;

	(void)arg;
	handled++;
	assert_string_equal(req->feature, "revoke");
	/* one revoked, one unknown to the CA (a final failure) */
	if (strcmp(serial, "0A1B") == 0)
		assert_int_equal(service_complete("revoke", req->id, true, 0, NULL, NULL, upload_cb,
		    NULL), 0);
	else
		assert_int_equal(service_complete("revoke", req->id, false, 4004,
		    "serial not issued by this CA", NULL, upload_cb, NULL), 0);
}

static void
revocation_flow(void)
{
	bool done = false;

	for (int i = 0; i < 500 && uploaded < 2; i++) {
		struct timeval tick = { 0, 20000 };
		event_base_loopexit(base, &tick);
		event_base_dispatch(base);
	}
	done = uploaded == 2;
	assert_true(done);
	assert_int_equal(handled, 2);
	assert_non_null(strstr(statuses, "ctx-1=Recorded;"));
	assert_non_null(strstr(statuses, "ctx-2=Recorded;"));
	pthread_mutex_lock(&SI.mu);
	assert_non_null(strstr(SI.uploaded, "{\"results\":[{\"requestContext\":\"ctx-1\","
	    "\"succeeded\":true,\"errorCode\":0,\"errorMessage\":\"\"}]}"));
	assert_non_null(strstr(SI.uploaded, "{\"results\":[{\"requestContext\":\"ctx-2\","
	    "\"succeeded\":false,\"errorCode\":4004,\"errorMessage\":\"serial not issued by this "
	    "CA\"}]}"));
	assert_string_equal(SI.last_api_version, "5019-05-05");
	assert_int_equal(SI.bad_headers, 0);
	pthread_mutex_unlock(&SI.mu);
	/* Intune mode has no public queue for the other features */
	assert_int_equal(service_complete("pkcs", "x", true, 0, NULL, NULL, NULL, NULL), -1);
}

static void
test_revocation(void **state)
{
	(void)state;
	assert_int_equal(service_register_feature("revoke", revoke_handler, NULL), 0);
	with_service(revocation_flow);
}

/* ---- proxy ---- */

/*
 * A CONNECT proxy for the test: one connection at a time per thread, the request line and
 * headers read up to the blank line, Basic credentials checked, then bytes copied both ways.
 */
static struct {
	int lfd, port;
	pthread_t thread;
	pthread_mutex_t mu;
	int connects, refused;
	char last_target[128];
	volatile bool stop;
} PX;

static void
px_splice(int a, int b)
{
	struct pollfd p[2] = { { a, POLLIN, 0 }, { b, POLLIN, 0 } };
	char buf[16384];

	for (;;) {
		if (poll(p, 2, 10000) <= 0)
			return;
		for (int i = 0; i < 2; i++) {
			ssize_t n;
			if (!(p[i].revents & (POLLIN | POLLHUP)))
				continue;
			n = read(p[i].fd, buf, sizeof(buf));
			if (n <= 0 || write(p[1 - i].fd, buf, (size_t)n) != n)
				return;
		}
	}
}

static void *
px_conn(void *arg)
{
	int c = (int)(intptr_t)arg, u = -1;
	char req[4096], host[100];
	size_t n = 0;
	unsigned port;
	struct sockaddr_in sin = { .sin_family = AF_INET };

again:
	n = 0;
	while (n + 1 < sizeof(req) && (n < 4 || memcmp(req + n - 4, "\r\n\r\n", 4) != 0)) {
		ssize_t r = read(c, req + n, 1);
		if (r <= 0)
			goto out;
		n += (size_t)r;
	}
	req[n] = '\0';
	/* "Basic dTpw" is u:p. Without it: 407, and the connection stays open for the retry
	 * with credentials, as a real proxy does. */
	if (strstr(req, "Proxy-Authorization: Basic dTpw\r\n") == NULL) {
		pthread_mutex_lock(&PX.mu);
		PX.refused++;
		pthread_mutex_unlock(&PX.mu);
		dprintf(c, "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic "
		    "realm=\"t\"\r\nContent-Length: 0\r\n\r\n");
		goto again;
	}
	if (sscanf(req, "CONNECT %99[^:]:%u HTTP/1.1", host, &port) != 2) {
		dprintf(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
		goto out;
	}
	pthread_mutex_lock(&PX.mu);
	PX.connects++;
	snprintf(PX.last_target, sizeof(PX.last_target), "%s:%u", host, port);
	pthread_mutex_unlock(&PX.mu);
	u = socket(AF_INET, SOCK_STREAM, 0);
	sin.sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, host, &sin.sin_addr);
	if (connect(u, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		dprintf(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
		goto out;
	}
	dprintf(c, "HTTP/1.1 200 Connection established\r\n\r\n");
	px_splice(c, u);
out:
	if (u != -1)
		close(u);
	close(c);
	return NULL;
}

static void *
px_accept(void *arg)
{
	(void)arg;
	while (!PX.stop) {
		struct pollfd p = { PX.lfd, POLLIN, 0 };
		pthread_t t;
		int c;

		if (poll(&p, 1, 100) <= 0)
			continue;
		c = accept(PX.lfd, NULL, NULL);
		if (c == -1)
			continue;
		pthread_create(&t, NULL, px_conn, (void *)(intptr_t)c);
		pthread_detach(t);
	}
	return NULL;
}

static void
proxy_flow(void)
{
	struct outcome r;

	validate("ok-proxied", &r);
	assert_int_equal(r.out, SERVICE_OK);
	pthread_mutex_lock(&PX.mu);
	/* Entra ID, Graph and Intune all went through it, to the stand-in */
	assert_true(PX.connects >= 1);
	{
		char want[64];
		snprintf(want, sizeof(want), "127.0.0.1:%d", SI.port);
		assert_string_equal(PX.last_target, want);
	}
	pthread_mutex_unlock(&PX.mu);
}

static void
no_proxy_flow(void)
{
	struct outcome r;

	validate("ok-direct", &r);
	assert_int_equal(r.out, SERVICE_OK);
}

static void
test_proxy(void **state)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sin);
	char url[64];
	int connects;

	(void)state;
	pthread_mutex_init(&PX.mu, NULL);
	PX.lfd = socket(AF_INET, SOCK_STREAM, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(PX.lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(PX.lfd, 16), 0);
	getsockname(PX.lfd, (struct sockaddr *)&sin, &sl);
	PX.port = ntohs(sin.sin_port);
	assert_int_equal(pthread_create(&PX.thread, NULL, px_accept, NULL), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", PX.port);
	svc.proxy_url = url;
	svc.proxy_username = (char *)"u";
	svc.proxy_password_file = pw_path;
	with_service(proxy_flow);
	/* the no-proxy list wins */
	pthread_mutex_lock(&PX.mu);
	connects = PX.connects;
	pthread_mutex_unlock(&PX.mu);
	svc.no_proxy = (char *)"127.0.0.1";
	with_service(no_proxy_flow);
	pthread_mutex_lock(&PX.mu);
	assert_int_equal(PX.connects, connects);
	pthread_mutex_unlock(&PX.mu);
	svc.proxy_url = svc.proxy_username = svc.proxy_password_file = svc.no_proxy = NULL;
	PX.stop = true;
	pthread_join(PX.thread, NULL);
	close(PX.lfd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scep),
		cmocka_unit_test(test_bad_secret),
		cmocka_unit_test(test_missing_service),
		cmocka_unit_test(test_proxy),
		cmocka_unit_test(test_revocation),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
