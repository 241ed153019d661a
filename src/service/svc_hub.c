/*
 * Hub mode of the service client: mutual TLS with the client certificate that `certconnctl
 * register` stored (its key is the client role in the token, used through keyref), health
 * messages on an interval (events 5000-5002), renewal of the certificate before it expires,
 * and the work queues of the features this connector serves.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "certconn/ca.h"
#include "certconn/config.h"
#include "certconn/config_flows.h"
#include "certconn/event.h"
#include "certconn/keyref.h"
#include "certconn/log.h"
#include "certconn/util.h"
#include "net.h"
#include "svc.h"

#define HUB_API_VERSION "1.0"
#define HUB_SCEP_API_VERSION "2018-02-20"
#define HUB_REVOKE_API_VERSION "5019-05-05"
#define UNREGISTERED_CHECK_S 5
#define DOWNLOAD_MAX 10
#define MAX_ERRORS 20

struct err_entry {
	int64_t t;
	uint32_t event;
	char msg[256];
};

static struct {
	struct net_ctx *ctx;
	struct svc_http *h;
	const struct cc_config_service *cf;
	char cert_path[1100];
	int dirfd;                         /* the certificate's directory, opened at start */
	char cert_name[256];               /* its name in dirfd */
	X509 *cert;
	EVP_PKEY *key;
	int64_t not_before, not_after;
	bool registered, waiting_logged;
	struct event *tick;
	struct event *poll;
	bool health_inflight, renew_inflight;
	uint32_t poll_inflight;            /* feature bits being downloaded */
	uint64_t started_ms;
	uint64_t health_ok, health_failed, renewals;
	uint64_t succeeded, failed, inflight, uploads;
	struct err_entry errors[MAX_ERRORS];
	size_t nerr, errpos;
	char lifecycle[16];
	uint32_t next_health_s;
} HB;

static void
note_error(uint32_t event, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
note_error(uint32_t event, const char *fmt, ...)
{
	struct err_entry *e = &HB.errors[HB.errpos];
	va_list ap;

	e->t = (int64_t)time(NULL);
	e->event = event;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	HB.errpos = (HB.errpos + 1) % MAX_ERRORS;
	if (HB.nerr < MAX_ERRORS)
		HB.nerr++;
}

static void
url_of(char *out, size_t len, const char *path)
{
	snprintf(out, len, "%s/api/%s", HB.cf->url, path);
}

static const char *
time_str(int64_t t, char *buf)
{
	struct tm tm;
	time_t tt = (time_t)t;

	gmtime_r(&tt, &tm);
	strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

static int64_t
asn1_time(const ASN1_TIME *t)
{
	struct tm tm;

	return ASN1_TIME_to_tm(t, &tm) == 1 ? (int64_t)timegm(&tm) : 0;
}

/* ---- the client certificate ---- */

/*
 * The certificate is read and written relative to a directory opened at start-up (as the
 * user net starts as): after net drops to its own user it may not be allowed to walk the
 * path down to its state directory, but it owns the directory itself.
 */
static X509 *
read_cert(void)
{
	int fd = openat(HB.dirfd, HB.cert_name, O_RDONLY | O_CLOEXEC);
	FILE *f = fd != -1 ? fdopen(fd, "r") : NULL;
	X509 *x;

	if (f == NULL) {
		if (fd != -1)
			close(fd);
		return NULL;
	}
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	ERR_clear_error();
	return x;
}

static void
install(X509 *x)
{
	X509_free(HB.cert);
	HB.cert = x;
	HB.not_before = asn1_time(X509_get0_notBefore(x));
	HB.not_after = asn1_time(X509_get0_notAfter(x));
	svc_http_set_client(HB.h, HB.cert, HB.key);
	HB.registered = true;
}

/* Loads the stored certificate and the key that goes with it. 0 when usable. */
static int
load_client(void)
{
	X509 *x = read_cert();

	if (x == NULL) {
		if (!HB.waiting_logged)
			cc_log_info("service: no client certificate at %s yet; register this "
			    "connector with `certconnctl register --hub URL --token T`", HB.cert_path);
		HB.waiting_logged = true;
		return -1;
	}
	if (HB.key == NULL) {
		HB.key = keyref_load_key(HB.ctx->libctx, HB.ctx->kc, HB.cf->client_key_role, NULL);
		if (HB.key == NULL) {
			cc_log_openssl("service: the client key (through keys)");
			X509_free(x);
			return -1;
		}
	}
	if (X509_check_private_key(x, HB.key) != 1) {
		cc_log_err("service: %s is not for the %s key in the token", HB.cert_path,
		    HB.cf->client_key_role);
		ERR_clear_error();
		X509_free(x);
		return -1;
	}
	install(x);
	cc_log_info("service: client certificate loaded from %s", HB.cert_path);
	return 0;
}

/* Writes a PEM certificate next to the old one and renames it into place. */
static int
store_cert(X509 *x)
{
	char tmp[1200];
	FILE *f;
	int fd, ok;

	snprintf(tmp, sizeof(tmp), "%s.new", HB.cert_name);
	fd = openat(HB.dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	f = fd != -1 ? fdopen(fd, "w") : NULL;
	if (f == NULL) {
		if (fd != -1)
			close(fd);
		cc_log_err("service: cannot write %s: %s", tmp, strerror(errno));
		return -1;
	}
	ok = PEM_write_X509(f, x) && fflush(f) == 0 && fsync(fileno(f)) == 0;
	if (fclose(f) != 0 || !ok || renameat(HB.dirfd, tmp, HB.dirfd, HB.cert_name) == -1) {
		cc_log_err("service: cannot store the renewed certificate in %s: %s", HB.cert_path,
		    strerror(errno));
		unlinkat(HB.dirfd, tmp, 0);
		return -1;
	}
	return 0;
}

/* ---- renewal ---- */

static void
renew_done(struct svc_call *c)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(c->json, "value");
	const cJSON *b64 = cJSON_GetObjectItemCaseSensitive(v, "certificate");
	unsigned char *der = NULL;
	const unsigned char *p;
	X509 *x = NULL;
	int n;

	HB.renew_inflight = false;
	if (!svc_call_ok(c) || !cJSON_IsString(b64)) {
		cc_log_warn("service: certificate renewal failed: %s [%s]", svc_call_why(c), c->crid);
		note_error(0, "certificate renewal failed: %s", svc_call_why(c));
		return;
	}
	der = malloc(strlen(b64->valuestring));
	if (der == NULL)
		return;
	n = EVP_DecodeBlock(der, (const unsigned char *)b64->valuestring,
	    (int)strlen(b64->valuestring));
	p = der;
	if (n > 0)
		x = d2i_X509(NULL, &p, n);
	free(der);
	if (x == NULL || X509_check_private_key(x, HB.key) != 1) {
		cc_log_err("service: the renewed certificate is not for our key [%s]", c->crid);
		ERR_clear_error();
		X509_free(x);
		return;
	}
	if (store_cert(x) == -1) {
		/* Use it anyway until the next restart: the old one is on its way out. */
		cc_log_warn("service: using the renewed certificate from memory only");
	}
	install(x);
	HB.renewals++;
	cc_log_info("service: client certificate renewed, valid until %lld [%s]",
	    (long long)HB.not_after, c->crid);
}

static void
maybe_renew(int64_t now)
{
	int64_t two_thirds = HB.not_before + (HB.not_after - HB.not_before) * 2 / 3;
	X509_REQ *req = NULL;
	X509_NAME *n = NULL;
	unsigned char *der = NULL;
	char *b64 = NULL, url[1200];
	cJSON *body, *r;
	struct svc_call *c;
	int len;

	if (HB.renew_inflight || (now < two_thirds &&
	    HB.not_after - now > (int64_t)HB.cf->renew_before_days * 86400))
		return;
	/* The CSR is signed with the client key in the token: keyref sends the digest to keys. */
	req = X509_REQ_new();
	n = X509_NAME_dup(X509_get_subject_name(HB.cert));
	if (req == NULL || n == NULL || !X509_REQ_set_subject_name(req, n) ||
	    !X509_REQ_set_pubkey(req, HB.key) ||
	    X509_REQ_sign(req, HB.key, EVP_sha256()) <= 0 ||
	    (len = i2d_X509_REQ(req, &der)) <= 0) {
		cc_log_openssl("service: the renewal request");
		goto out;
	}
	b64 = malloc((size_t)(len + 2) / 3 * 4 + 1);
	if (b64 == NULL)
		goto out;
	EVP_EncodeBlock((unsigned char *)b64, der, len);
	body = cJSON_CreateObject();
	r = cJSON_AddObjectToObject(body, "renewal");
	cJSON_AddStringToObject(r, "certificateRequest", b64);
	url_of(url, sizeof(url), "Registration/renewCertificate");
	c = svc_call_new(HB.h, url, cJSON_PrintUnformatted(body));
	cJSON_Delete(body);
	if (c == NULL)
		goto out;
	c->api_version = HUB_API_VERSION;
	c->client_cert = true;
	c->done = renew_done;
	HB.renew_inflight = true;
	cc_log_info("service: renewing the client certificate (valid until %lld) [%s]",
	    (long long)HB.not_after, c->crid);
	svc_call_submit(c);
out:
	free(b64);
	OPENSSL_free(der);
	X509_NAME_free(n);
	X509_REQ_free(req);
}

/* ---- health ---- */

static const char *
token_state(void)
{
	struct keyref_key_info ki;
	uint32_t rc;

	memset(&ki, 0, sizeof(ki));
	rc = keyref_client_key_info(HB.ctx->kc, HB.cf->client_key_role, &ki);
	keyref_key_info_free(&ki);
	if (rc == CC_KE_OK)
		return "ok";
	ERR_clear_error();
	return rc == CC_KE_UNAVAILABLE || rc == CC_KE_TIMEOUT ? "unavailable" : "degraded";
}

/*
 * caReachable: whether net's CA backend answers. The only backend is the local CA (net.ca,
 * opened by scep_start): it answers when its database does, so a read of the revocation
 * generation decides. Without net.ca there is no CA backend and the member is left out
 * (docs/protocol.md section 9).
 */
static void
add_ca_reachable(cJSON *hm)
{
	struct cc_ca *ca;
	uint64_t gen, crl_gen;
	char err[256];

	if (HB.ctx->conf->ca == NULL)
		return;
	ca = scep_ca();
	cJSON_AddBoolToObject(hm, "caReachable", ca != NULL &&
	    cc_ca_revocation_gen(ca, &gen, &crl_gen, err, sizeof(err)) == 0);
}

/*
 * pfxKey: the public half of the pfx role's key (net.flows.pfx_role, "pfx" by default), so
 * that the hub can encrypt imported PFX passwords to it (RSA-OAEP). Sent only when the
 * token has that role with an RSA key; keyName is the role and the first 16 hex digits of
 * the SHA-256 of the SubjectPublicKeyInfo, which tells a rotated key from the old one.
 */
static void
add_pfx_key(cJSON *hm)
{
	const char *role = HB.ctx->conf->flows != NULL && HB.ctx->conf->flows->pfx_role[0] ?
	    HB.ctx->conf->flows->pfx_role : "pfx";
	struct keyref_key_info ki;
	unsigned char dg[32];
	char name[128], *b64 = NULL;
	cJSON *o;
	uint32_t rc;

	memset(&ki, 0, sizeof(ki));
	rc = keyref_client_key_info(HB.ctx->kc, role, &ki);
	if (rc != CC_KE_OK) {
		ERR_clear_error();
		goto out;
	}
	if (ki.key_type != CC_KEY_RSA || ki.spki == NULL || ki.spki_len == 0)
		goto out;
	if (EVP_Digest(ki.spki, ki.spki_len, dg, NULL, EVP_sha256(), NULL) != 1)
		goto out;
	if (ki.spki_len > 16384 || (b64 = malloc((ki.spki_len + 2) / 3 * 4 + 1)) == NULL)
		goto out;
	EVP_EncodeBlock((unsigned char *)b64, ki.spki, (int)ki.spki_len);
	snprintf(name, sizeof(name), "%s:", role);
	for (size_t i = 0; i < 8; i++)
		snprintf(name + strlen(name), sizeof(name) - strlen(name), "%02x", dg[i]);
	o = cJSON_AddObjectToObject(hm, "pfxKey");
	cJSON_AddStringToObject(o, "publicKey", b64);
	cJSON_AddStringToObject(o, "keyName", name);
out:
	free(b64);
	keyref_key_info_free(&ki);
}

static cJSON *
features_json(uint32_t mask)
{
	cJSON *a = cJSON_CreateArray();

	for (uint32_t b = 1; b <= CC_FEATURE_SCEP; b <<= 1)
		if (mask & b)
			cJSON_AddItemToArray(a, cJSON_CreateString(cc_service_feature_name(b)));
	return a;
}

static void
health_retry(struct svc_call *c, unsigned delay_ms)
{
	char attempt[16], delay[16];

	snprintf(attempt, sizeof(attempt), "%u", c->attempt);
	snprintf(delay, sizeof(delay), "%u", delay_ms);
	cc_event_emit(CC_EV_HEALTH_MESSAGE_UPLOAD_FAILED_ATTEMPT, c->crid, "attempt", attempt,
	    "reason", svc_call_why(c), "retryInMs", delay, NULL);
}

static void
schedule_tick(uint32_t seconds)
{
	struct timeval tv = { (time_t)seconds, 0 };

	evtimer_add(HB.tick, &tv);
}

static void
health_done(struct svc_call *c)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(c->json, "value");
	const cJSON *life = cJSON_GetObjectItemCaseSensitive(v, "lifecycle");
	const cJSON *st = cJSON_GetObjectItemCaseSensitive(life, "status");
	const cJSON *next = cJSON_GetObjectItemCaseSensitive(v, "nextHealthSeconds");
	const char *status = cJSON_IsString(st) ? st->valuestring : "unknown";
	char attempts[16];

	HB.health_inflight = false;
	if (!svc_call_ok(c)) {
		HB.health_failed++;
		note_error(CC_EV_HEALTH_MESSAGE_UPLOAD_FAILURE, "health upload: %s",
		    svc_call_why(c));
		snprintf(attempts, sizeof(attempts), "%u", c->attempt);
		cc_event_emit(CC_EV_HEALTH_MESSAGE_UPLOAD_FAILURE, c->crid, "attempts", attempts,
		    "reason", svc_call_why(c), NULL);
		return;
	}
	HB.health_ok++;
	if (cJSON_IsNumber(next) && next->valuedouble >= 1 && next->valuedouble <= 86400)
		HB.next_health_s = (uint32_t)next->valuedouble;
	if (strcmp(HB.lifecycle, status) != 0 && strcmp(status, "supported") != 0)
		cc_log_warn("service: the hub reports version %s as %s%s", CC_VERSION, status,
		    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(life, "mixedVersions")) ?
		    " (and the tenant's connectors run mixed versions)" : "");
	snprintf(HB.lifecycle, sizeof(HB.lifecycle), "%s", status);
	cc_event_emit(CC_EV_HEALTH_MESSAGE_UPLOAD_SUCCESS, c->crid, "lifecycle", status,
	    NULL);
}

static void
send_health(void)
{
	cJSON *body = cJSON_CreateObject(), *hm, *q, *errs;
	struct svc_call *c;
	char url[1200], tb[32];
	uint64_t pending, outbox;
	size_t i;

	hm = cJSON_AddObjectToObject(body, "healthMessage");
	cJSON_AddStringToObject(hm, "version", CC_VERSION);
	cJSON_AddItemToObject(hm, "features", features_json(HB.cf->features));
	cJSON_AddNumberToObject(hm, "uptimeSeconds",
	    (double)((cc_now_ms() - HB.started_ms) / 1000));
	cJSON_AddStringToObject(hm, "tokenState", token_state());
	add_ca_reachable(hm);
	add_pfx_key(hm);
	q = cJSON_AddObjectToObject(hm, "queue");
	if (!svc_queue_figures(&pending, &outbox)) {
		pending = 0;
		outbox = HB.uploads;
	}
	cJSON_AddNumberToObject(q, "pending", (double)pending);
	cJSON_AddNumberToObject(q, "inFlight", (double)HB.inflight);
	cJSON_AddNumberToObject(q, "outbox", (double)outbox);
	cJSON_AddNumberToObject(q, "succeeded", (double)HB.succeeded);
	cJSON_AddNumberToObject(q, "failed", (double)HB.failed);
	errs = cJSON_AddArrayToObject(hm, "lastErrors");
	for (i = 0; i < HB.nerr; i++) {
		const struct err_entry *e = &HB.errors[(HB.errpos + MAX_ERRORS - HB.nerr + i) %
		    MAX_ERRORS];
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "timeUtc", time_str(e->t, tb));
		if (e->event != 0)
			cJSON_AddNumberToObject(o, "eventId", e->event);
		cJSON_AddStringToObject(o, "message", e->msg);
		cJSON_AddItemToArray(errs, o);
	}
	cJSON_AddStringToObject(hm, "clientCertificateNotAfterUtc", time_str(HB.not_after, tb));
	url_of(url, sizeof(url), "ConnectorHealth/uploadHealthMessage");
	c = svc_call_new(HB.h, url, cJSON_PrintUnformatted(body));
	cJSON_Delete(body);
	if (c == NULL)
		return;
	c->api_version = HUB_API_VERSION;
	c->client_cert = true;
	c->done = health_done;
	c->on_retry = health_retry;
	/* A health message is worth a few tries within one interval, no more. */
	if (c->max_attempts > 4)
		c->max_attempts = 4;
	HB.health_inflight = true;
	svc_call_submit(c);
}

/* ---- work queues ---- */

static void poll_features(void);

static void
download_done(struct svc_call *c)
{
	uint32_t bit = (uint32_t)(uintptr_t)c->arg;
	const struct svc_handler *hd = svc_handler_for(bit);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(c->json, "value"), *it;
	int n = 0;

	HB.poll_inflight &= ~bit;
	if (!svc_call_ok(c) || !cJSON_IsArray(v)) {
		note_error(0, "downloading %s requests: %s", cc_service_feature_name(bit),
		    svc_call_why(c));
		cc_log_warn("service: downloading %s requests failed: %s [%s]",
		    cc_service_feature_name(bit), svc_call_why(c), c->crid);
		svc_download_event(bit, false, 0, c->crid, svc_call_why(c));
		return;
	}
	if (bit == CC_FEATURE_REVOKE) {
		n = svc_revocations_dispatch(v, c->crid);
	} else {
		cJSON_ArrayForEach(it, v) {
			const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "requestId");
			const cJSON *att = cJSON_GetObjectItemCaseSensitive(it, "attempt");
			struct service_request r;

			if (!cJSON_IsString(id) || hd == NULL)
				continue;
			r.id = id->valuestring;
			r.feature = cc_service_feature_name(bit);
			r.payload = cJSON_GetObjectItemCaseSensitive(it, "payload");
			r.attempt = cJSON_IsNumber(att) ? (uint32_t)att->valuedouble : 1;
			r.correlation_id = id->valuestring;
			HB.inflight++;
			n++;
			hd->fn(hd->arg, &r);
		}
	}
	svc_download_event(bit, true, n, c->crid, NULL);
	/* A full batch: there may be more waiting. */
	if (n >= DOWNLOAD_MAX) {
		struct timeval tv = { 0, 0 };
		evtimer_add(HB.poll, &tv);
	}
}

static void
download(uint32_t bit)
{
	cJSON *body = cJSON_CreateObject(), *dp;
	struct svc_call *c;
	char url[1200];
	bool rev = bit == CC_FEATURE_REVOKE;

	dp = cJSON_AddObjectToObject(body, "downloadParameters");
	if (!rev)
		cJSON_AddStringToObject(dp, "feature", cc_service_feature_name(bit));
	cJSON_AddNumberToObject(dp, "maxRequests", DOWNLOAD_MAX);
	if (rev)
		cJSON_AddNullToObject(dp, "issuerName");
	else
		cJSON_AddNumberToObject(dp, "leaseSeconds", HB.cf->lease_s);
	url_of(url, sizeof(url), rev ? "CertificateAuthorityRequests/downloadRevocationRequests" :
	    "ConnectorRequests/downloadRequests");
	c = svc_call_new(HB.h, url, cJSON_PrintUnformatted(body));
	cJSON_Delete(body);
	if (c == NULL)
		return;
	c->api_version = rev ? HUB_REVOKE_API_VERSION : HUB_API_VERSION;
	c->client_cert = true;
	c->done = download_done;
	c->arg = (void *)(uintptr_t)bit;
	c->max_attempts = 2; /* the next poll comes soon anyway */
	HB.poll_inflight |= bit;
	svc_call_submit(c);
}

static void
poll_features(void)
{
	for (uint32_t b = 1; b <= CC_FEATURE_SCEP; b <<= 1)
		if ((HB.cf->features & b) && svc_handler_for(b) != NULL &&
		    !(HB.poll_inflight & b))
			download(b);
}

static void
poll_cb(evutil_socket_t fd, short what, void *arg)
{
	struct timeval tv = { (time_t)HB.cf->poll_interval_s, 0 };

	(void)fd; (void)what; (void)arg;
	if (HB.registered)
		poll_features();
	evtimer_add(HB.poll, &tv);
}

struct upload_ctx {
	service_upload_cb cb;
	void *arg;
	char id[128];
	bool ok;
	bool revocation;
};

static void
upload_done(struct svc_call *c)
{
	struct upload_ctx *u = c->arg;
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(c->json, "value");
	const char *status = "Failed";

	HB.uploads--;
	if (svc_call_ok(c)) {
		if (u->revocation)
			status = cJSON_IsTrue(v) ? "Recorded" : "NotRecorded";
		else {
			const cJSON *st = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(v, 0),
			    "status");
			status = cJSON_IsString(st) ? st->valuestring : "Failed";
		}
	} else {
		note_error(0, "uploading the result of %s: %s", u->id, svc_call_why(c));
		cc_log_warn("service: uploading the result of %s failed: %s [%s]", u->id,
		    svc_call_why(c), c->crid);
	}
	if (u->cb != NULL)
		u->cb(u->arg, u->id, status);
}

int
svc_hub_complete(const char *feature, const char *id, bool ok, int32_t code, const char *msg,
    cJSON *result, service_upload_cb cb, void *arg)
{
	bool rev = strcmp(feature, "revoke") == 0;
	cJSON *body = cJSON_CreateObject(), *arr, *it;
	struct upload_ctx *u = calloc(1, sizeof(*u));
	struct svc_call *c;
	char url[1200];

	if (u == NULL || body == NULL) {
		free(u);
		cJSON_Delete(body);
		cJSON_Delete(result);
		return -1;
	}
	u->cb = cb;
	u->arg = arg;
	u->ok = ok;
	u->revocation = rev;
	snprintf(u->id, sizeof(u->id), "%s", id);
	arr = cJSON_AddArrayToObject(body, "results");
	it = cJSON_CreateObject();
	cJSON_AddItemToArray(arr, it);
	cJSON_AddStringToObject(it, rev ? "requestContext" : "requestId", id);
	cJSON_AddBoolToObject(it, "succeeded", ok);
	cJSON_AddNumberToObject(it, "errorCode", code);
	cJSON_AddStringToObject(it, "errorMessage", msg != NULL ? msg : "");
	if (result != NULL && !rev)
		cJSON_AddItemToObject(it, "result", result);
	else
		cJSON_Delete(result);
	url_of(url, sizeof(url), rev ? "CertificateAuthorityRequests/uploadRevocationResults" :
	    "ConnectorRequests/uploadResults");
	c = svc_call_new(HB.h, url, cJSON_PrintUnformatted(body));
	cJSON_Delete(body);
	if (c == NULL) {
		free(u);
		return -1;
	}
	c->api_version = rev ? HUB_REVOKE_API_VERSION : HUB_API_VERSION;
	c->client_cert = true;
	c->done = upload_done;
	c->arg = u;
	c->dispose = free;
	if (HB.inflight > 0)
		HB.inflight--;
	if (ok)
		HB.succeeded++;
	else
		HB.failed++;
	HB.uploads++;
	svc_call_submit(c);
	return 0;
}

/* ---- SCEP ---- */

int
svc_hub_scep(const char *op, cJSON *inner, const char *txid, service_scep_cb cb, void *arg)
{
	cJSON *body = cJSON_CreateObject();
	struct svc_call *c;
	char url[1200], path[128];

	(void)txid;
	if (!HB.registered) {
		cJSON_Delete(inner);
		cJSON_Delete(body);
		return -1;
	}
	cJSON_AddItemToObject(body, strcmp(op, "validateRequest") == 0 ? "request" :
	    "notification", inner);
	snprintf(path, sizeof(path), "ScepActions/%s", op);
	url_of(url, sizeof(url), path);
	c = svc_call_new(HB.h, url, cJSON_PrintUnformatted(body));
	cJSON_Delete(body);
	if (c == NULL)
		return -1;
	c->api_version = HUB_SCEP_API_VERSION;
	c->client_cert = true;
	if (svc_scep_prepare(c, cb, arg) == -1)
		return -1;
	svc_call_submit(c);
	return 0;
}

/* ---- the tick ---- */

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	int64_t now = (int64_t)time(NULL);

	(void)fd; (void)what; (void)arg;
	if (!HB.registered && load_client() == -1) {
		schedule_tick(UNREGISTERED_CHECK_S);
		return;
	}
	maybe_renew(now);
	if (!HB.health_inflight)
		send_health();
	schedule_tick(HB.next_health_s);
}

/* Opens the client certificate's directory; the default one (<state_dir>/service) is made
 * if missing, owned like the state directory (net's user) so that net can renew into it. */
static int
cert_dir(struct net_ctx *ctx)
{
	char dir[1100], *slash;
	struct stat st;

	if (HB.cf->client_cert != NULL) {
		size_t sl = strlen(ctx->conf->state_dir);

		if (strncmp(HB.cf->client_cert, ctx->conf->state_dir, sl) != 0 ||
		    HB.cf->client_cert[sl] != '/')
			cc_log_warn("service: %s is outside net's state directory %s: net's sandbox "
			    "will not let it read a certificate registered later, nor renew it",
			    HB.cf->client_cert, ctx->conf->state_dir);
		snprintf(HB.cert_path, sizeof(HB.cert_path), "%s", HB.cf->client_cert);
		snprintf(dir, sizeof(dir), "%s", HB.cf->client_cert);
		slash = strrchr(dir, '/');
		if (slash == dir)
			slash[1] = '\0';
		else
			*slash = '\0';
	} else {
		snprintf(HB.cert_path, sizeof(HB.cert_path), "%s/service/client.pem",
		    ctx->conf->state_dir);
		snprintf(dir, sizeof(dir), "%s/service", ctx->conf->state_dir);
		if (mkdir(dir, 0755) == 0 && stat(ctx->conf->state_dir, &st) == 0 &&
		    chown(dir, st.st_uid, st.st_gid) == -1)
			cc_log_warn("service: chown %s: %s", dir, strerror(errno));
	}
	snprintf(HB.cert_name, sizeof(HB.cert_name), "%s", strrchr(HB.cert_path, '/') + 1);
	HB.dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (HB.dirfd == -1) {
		cc_log_err("service: cannot open %s: %s", dir, strerror(errno));
		return -1;
	}
	return 0;
}

int
svc_hub_start(struct net_ctx *ctx, struct svc_http *h)
{
	struct timeval first = { 1, 0 };

	memset(&HB, 0, sizeof(HB));
	HB.ctx = ctx;
	HB.h = h;
	HB.cf = ctx->conf->service;
	HB.started_ms = cc_now_ms();
	HB.next_health_s = HB.cf->health_interval_s;
	if (cert_dir(ctx) == -1)
		return -1;
	HB.tick = evtimer_new(ctx->base, tick_cb, NULL);
	HB.poll = evtimer_new(ctx->base, poll_cb, NULL);
	if (HB.tick == NULL || HB.poll == NULL)
		return -1;
	/* The first tick after start-up: keys is ready by then, and the sandbox is on. */
	evtimer_add(HB.tick, &first);
	first.tv_sec = 2;
	evtimer_add(HB.poll, &first);
	cc_log_info("service: hub mode, %s (client certificate %s)", HB.cf->url, HB.cert_path);
	return 0;
}

void
svc_hub_stop(void)
{
	if (HB.tick != NULL)
		event_free(HB.tick);
	if (HB.poll != NULL)
		event_free(HB.poll);
	X509_free(HB.cert);
	EVP_PKEY_free(HB.key);
	if (HB.dirfd > 0)
		close(HB.dirfd);
	memset(&HB, 0, sizeof(HB));
}

void
svc_hub_status(struct service_status *st)
{
	st->registered = HB.registered;
	st->cert_not_after = HB.not_after;
	st->health_ok = HB.health_ok;
	st->health_failed = HB.health_failed;
	st->renewals = HB.renewals;
	snprintf(st->lifecycle, sizeof(st->lifecycle), "%s", HB.lifecycle);
}
