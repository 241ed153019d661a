/*
 * The flows' engine in net: handlers registered with the service client, worker threads,
 * the retry loop, the durable outbox and the uploads.
 *
 * A request's way: the service client leases it and calls the flow's handler on net's
 * event loop; the handler copies it into a job (the request's strings die with the call)
 * and queues it. A worker thread runs the flow (flow_*.c: key pool, local CA, PKCS#12 and
 * CMS, keys for the pfx role), retrying failing steps with backoff, and writes the result
 * to the outbox (a committed SQLite row) before anything is uploaded. The job then goes
 * back to the loop through a pipe, and the loop calls service_complete (libcurl's multi
 * handle belongs to the loop). When the service's answer is final the row leaves the
 * outbox (and the request's CA idempotency record with it); when the upload failed it
 * stays and is sent again by a timer, and at the next start.
 *
 * Workers start on the loop's first turn, after net has sandboxed itself: Landlock and
 * seccomp apply to the thread that installs them and to the threads it creates later.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "certconn/config.h"
#include "certconn/config_flows.h"
#include "certconn/config_service.h"
#include "certconn/event.h"
#include "certconn/flows.h"
#include "certconn/keyref.h"
#include "certconn/log.h"
#include "certconn/service.h"
#include "flows_int.h"
#include "net.h"

#define FLOWS_RESEND_S 5
#define FLOWS_IDEM_KEEP_S (7 * 86400)

static const struct flows_events events[FLOWS_NKINDS] = {
	[FLOWS_PKCS] = { CC_EV_PKCS_DOWNLOADED_REQUEST, CC_EV_PKCS_ISSUED_SUCCESS,
		CC_EV_PKCS_ISSUED_FAILED_ATTEMPT, CC_EV_PKCS_ISSUED_FAILURE,
		CC_EV_PKCS_UPLOAD_SUCCESS, CC_EV_PKCS_UPLOAD_FAILURE, CC_EV_PKCS_UPLOADED_REQUEST,
		CC_EV_PKCS_REQUEST_SUCCESS, CC_EV_PKCS_REQUEST_FAILURE },
	[FLOWS_RECRYPT] = { CC_EV_PKCS_RECRYPT_DOWNLOADED_REQUEST,
		CC_EV_PKCS_RECRYPT_REENCRYPT_SUCCESS, 0, CC_EV_PKCS_RECRYPT_REENCRYPT_FAILURE,
		CC_EV_PKCS_RECRYPT_UPLOAD_SUCCESS, CC_EV_PKCS_RECRYPT_UPLOAD_FAILURE,
		CC_EV_PKCS_RECRYPT_UPLOADED_REQUEST, CC_EV_PKCS_RECRYPT_REQUEST_SUCCESS,
		CC_EV_PKCS_RECRYPT_REQUEST_FAILURE },
	[FLOWS_IMPORT] = { CC_EV_PKCS_IMPORT_DOWNLOADED_REQUEST,
		CC_EV_PKCS_IMPORT_REENCRYPT_SUCCESS, CC_EV_PKCS_IMPORT_REENCRYPT_FAILED_ATTEMPT,
		CC_EV_PKCS_IMPORT_REENCRYPT_FAILURE, CC_EV_PKCS_IMPORT_UPLOAD_SUCCESS,
		CC_EV_PKCS_IMPORT_UPLOAD_FAILURE, CC_EV_PKCS_IMPORT_UPLOADED_REQUEST,
		CC_EV_PKCS_IMPORT_REQUEST_SUCCESS, CC_EV_PKCS_IMPORT_REQUEST_FAILURE },
	[FLOWS_REVOKE] = { CC_EV_REVOKE_DOWNLOADED_REQUEST, CC_EV_REVOKE_SUCCESS,
		CC_EV_REVOKE_FAILED_ATTEMPT, CC_EV_REVOKE_FAILURE, CC_EV_REVOKE_UPLOAD_SUCCESS,
		CC_EV_REVOKE_UPLOAD_FAILURE, CC_EV_REVOKE_UPLOADED_REQUEST,
		CC_EV_REVOKE_REQUEST_SUCCESS, CC_EV_REVOKE_REQUEST_FAILURE },
};

static const char *const features[FLOWS_NKINDS] = { "pkcs", "pkcs-recrypt", "pfx-import",
	"revoke" };
static const uint32_t feature_bits[FLOWS_NKINDS] = { CC_FEATURE_PKCS, CC_FEATURE_PKCS_RECRYPT,
	CC_FEATURE_PFX_IMPORT, CC_FEATURE_REVOKE };

const struct flows_events *
flows_events_of(enum flows_kind k)
{
	return &events[k];
}

const char *
flows_feature_of(enum flows_kind k)
{
	return features[k];
}

static enum flows_kind
kind_of_feature(const char *f)
{
	for (int k = 0; k < FLOWS_NKINDS; k++)
		if (strcmp(features[k], f) == 0)
			return (enum flows_kind)k;
	return FLOWS_NKINDS;
}

/* An id being processed (queued or in a worker) or uploaded: a second lease of the same
 * request while it is here is not worked twice. Loop thread only. */
struct upload;
struct busy {
	char id[FLOWS_ID_MAX + 1];
	struct upload *up;           /* the upload under way, or NULL */
	struct busy *next;
};

static struct {
	struct net_ctx *ctx;
	struct flows_env env;
	X509 *pfx_cert;
	char state_dir[CC_STATE_DIR_MAX + 32];
	/* workers */
	pthread_t *threads;
	size_t nthreads;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct flows_job *head, *tail;
	uint64_t pending;            /* jobs queued, not yet taken by a worker */
	bool stopping;
	int done_pipe[2];
	struct event *done_ev;
	struct event *resend_ev;
	struct busy *busy;
	bool started;
	bool running;
} F = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER,
	.done_pipe = { -1, -1 } };

/* ---- helpers for the flows ---- */

bool
flows_sleep_ms(uint32_t ms)
{
	struct timespec ts;
	bool stop;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&F.lock);
	while (!F.stopping)
		if (pthread_cond_timedwait(&F.cond, &F.lock, &ts) == ETIMEDOUT)
			break;
	stop = F.stopping;
	pthread_mutex_unlock(&F.lock);
	return !stop;
}

uint32_t
flows_backoff_ms(uint32_t initial_ms, uint32_t max_ms, uint32_t attempt)
{
	uint64_t cap = initial_ms;
	uint32_t r;

	for (uint32_t i = 1; i < attempt && cap < max_ms; i++)
		cap *= 2;
	if (cap > max_ms)
		cap = max_ms;
	if (cap == 0)
		return 1;
	if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
		r = (uint32_t)rand();
	r = (uint32_t)(r % (cap + 1));
	return r == 0 ? 1 : r;
}

int32_t
flows_retry(const struct flows_env *env, const struct flows_job *j, const char *what,
    flows_step_fn step, void *arg, char *why, size_t whylen)
{
	const struct flows_events *ev = &events[j->kind];
	uint32_t max = env->conf->max_attempts;
	int32_t code = FLOWS_E_RETRYABLE;
	char n[16], delay[16];

	for (uint32_t a = 1; a <= max; a++) {
		bool retry = false;
		uint32_t ms;

		why[0] = '\0';
		code = step(arg, &retry, why, whylen);
		if (code == FLOWS_OK || !retry || a == max)
			return code;
		ms = flows_backoff_ms(env->conf->backoff_initial_ms, env->conf->backoff_max_ms, a);
		snprintf(n, sizeof(n), "%u", a);
		snprintf(delay, sizeof(delay), "%u", ms);
		cc_log_warn("flows: %s %s: %s: try %u of %u failed, again in %u ms", features[j->kind],
		    j->id, what, a, max, ms);
		if (ev->attempt != 0)
			cc_event_emit(ev->attempt, j->corr, "requestId", j->id, "step", what,
			    "attempt", n, "retryInMs", delay, "reason", why, NULL);
		if (!flows_sleep_ms(ms)) {
			snprintf(why, whylen, "%s: the connector is stopping", what);
			return FLOWS_E_UNAVAILABLE;
		}
	}
	return code;
}

void
flows_fail(struct flows_job *j, int32_t code, const char *fmt, ...)
{
	va_list ap;

	j->res.succeeded = false;
	j->res.code = code;
	va_start(ap, fmt);
	vsnprintf(j->res.message, sizeof(j->res.message), fmt, ap);
	va_end(ap);
	free(j->res.result_json);
	j->res.result_json = NULL;
}

void
flows_succeed(struct flows_job *j, cJSON *result)
{
	j->res.succeeded = true;
	j->res.code = 0;
	j->res.message[0] = '\0';
	free(j->res.result_json);
	j->res.result_json = result != NULL ? cJSON_PrintUnformatted(result) : NULL;
	cJSON_Delete(result);
	if (result != NULL && j->res.result_json == NULL)
		flows_fail(j, FLOWS_E_RETRYABLE, "out of memory writing the result");
}

static void
wipe_strings(cJSON *o)
{
	for (; o != NULL; o = o->next) {
		if (cJSON_IsString(o) && o->valuestring != NULL)
			OPENSSL_cleanse(o->valuestring, strlen(o->valuestring));
		wipe_strings(o->child);
	}
}

void
flows_json_wipe_delete(cJSON *o)
{
	if (o == NULL)
		return;
	if (cJSON_IsString(o) && o->valuestring != NULL)
		OPENSSL_cleanse(o->valuestring, strlen(o->valuestring));
	wipe_strings(o->child);
	cJSON_Delete(o);
}

/* ---- jobs ---- */

/* The health message's queue figures (service_set_queue_figures; any thread). */
static void
report_figures(void)
{
	uint64_t pending;

	pthread_mutex_lock(&F.lock);
	pending = F.pending;
	pthread_mutex_unlock(&F.lock);
	if (F.env.store != NULL)
		service_set_queue_figures(pending, flows_outbox_count(F.env.store));
}

static void
job_free(struct flows_job *j)
{
	if (j == NULL)
		return;
	cJSON_Delete(j->payload);
	flows_result_clear(&j->res);
	free(j);
}

static void *
worker(void *arg)
{
	(void)arg;
	for (;;) {
		struct flows_job *j;
		char err[512];

		pthread_mutex_lock(&F.lock);
		while (F.head == NULL && !F.stopping)
			pthread_cond_wait(&F.cond, &F.lock);
		if (F.stopping) {
			pthread_mutex_unlock(&F.lock);
			return NULL;
		}
		j = F.head;
		F.head = j->next;
		if (F.head == NULL)
			F.tail = NULL;
		F.pending--;
		pthread_mutex_unlock(&F.lock);

		switch (j->kind) {
		case FLOWS_PKCS:
			flow_pkcs_run(&F.env, j);
			break;
		case FLOWS_RECRYPT:
			flow_recrypt_run(&F.env, j);
			break;
		case FLOWS_IMPORT:
			flow_import_run(&F.env, j);
			break;
		default:
			flow_revoke_run(&F.env, j);
			break;
		}
		snprintf(j->res.request_id, sizeof(j->res.request_id), "%s", j->id);
		snprintf(j->res.feature, sizeof(j->res.feature), "%s", features[j->kind]);
		snprintf(j->res.correlation_id, sizeof(j->res.correlation_id), "%s", j->corr);
		j->res.created = time(NULL);
		/* Durable before it is sent: a crash from here on loses no result. */
		if (flows_outbox_put(F.env.store, &j->res, err, sizeof(err)) == -1)
			cc_log_err("flows: %s (the result is sent without a durable copy)", err);
		report_figures();
		if (write(F.done_pipe[1], &j, sizeof(j)) != (ssize_t)sizeof(j))
			cc_fatal("flows: cannot hand a result to the event loop: %s",
			    strerror(errno));
	}
}

static void
enqueue(struct flows_job *j)
{
	pthread_mutex_lock(&F.lock);
	j->next = NULL;
	if (F.tail != NULL)
		F.tail->next = j;
	else
		F.head = j;
	F.tail = j;
	F.pending++;
	pthread_cond_signal(&F.cond);
	pthread_mutex_unlock(&F.lock);
	report_figures();
}

/* ---- busy set (loop thread) ---- */

static struct busy *
busy_find(const char *id)
{
	for (struct busy *b = F.busy; b != NULL; b = b->next)
		if (strcmp(b->id, id) == 0)
			return b;
	return NULL;
}

static struct busy *
busy_add(const char *id)
{
	struct busy *b = busy_find(id);

	if (b != NULL)
		return b;
	b = calloc(1, sizeof(*b));
	if (b == NULL)
		return NULL;
	snprintf(b->id, sizeof(b->id), "%s", id);
	b->next = F.busy;
	F.busy = b;
	return b;
}

static void
busy_remove(const char *id)
{
	for (struct busy **p = &F.busy; *p != NULL; p = &(*p)->next)
		if (strcmp((*p)->id, id) == 0) {
			struct busy *b = *p;
			*p = b->next;
			/* An upload the service client dropped at stop never calls back. */
			free(b->up);
			free(b);
			return;
		}
}

/* ---- uploads (loop thread) ---- */

struct upload {
	enum flows_kind kind;
	char id[FLOWS_ID_MAX + 1];
	char corr[FLOWS_ID_MAX + 1];
	bool succeeded;
	int32_t code;
	char message[1024];
};

static void
upload_cb(void *arg, const char *request_id, const char *status)
{
	struct upload *u = arg;
	const struct flows_events *ev = &events[u->kind];
	struct busy *b = busy_find(u->id);
	char err[512], code[16];

	(void)request_id;
	if (b != NULL && b->up == u)
		b->up = NULL;
	snprintf(code, sizeof(code), "%d", (int)u->code);
	if (!flows_upload_final(status)) {
		/* Kept: the resend timer and the next start try again. */
		cc_event_emit(ev->upload_fail, u->corr, "requestId", u->id, "status",
		    status != NULL ? status : "Failed", "willRetry", "true", NULL);
		busy_remove(u->id);
		free(u);
		return;
	}
	if (flows_outbox_remove(F.env.store, u->id, err, sizeof(err)) == -1)
		cc_log_err("flows: %s", err);
	report_figures();
	/* The CA idempotency record goes with a final result. After a retryable failure the
	 * service hands the request out again, and the record (maybe with a certificate the
	 * CA already issued) lets the next try finish without a second issuance. */
	if (u->kind == FLOWS_PKCS && !(flows_upload_done(status) && flows_code_retryable(u->code)) &&
	    flows_idem_remove(F.env.store, u->id, err, sizeof(err)) == -1)
		cc_log_err("flows: %s", err);
	busy_remove(u->id);
	if (flows_upload_done(status)) {
		cc_event_emit(ev->upload_ok, u->corr, "requestId", u->id, "status", status, NULL);
		cc_event_emit(ev->uploaded, u->corr, "requestId", u->id, "succeeded",
		    u->succeeded ? "true" : "false", "errorCode", code, "errorName",
		    flows_code_name(u->code), "status", status, NULL);
		if (u->succeeded)
			cc_event_emit(ev->admin_ok, u->corr, "requestId", u->id, "status", status,
			    NULL);
		else
			cc_event_emit(ev->admin_fail, u->corr, "requestId", u->id, "errorCode", code,
			    "errorName", flows_code_name(u->code), "reason", u->message, "status",
			    status, NULL);
	} else {
		cc_log_warn("flows: the service refused the result of %s (%s); dropped", u->id,
		    status);
		cc_event_emit(ev->upload_fail, u->corr, "requestId", u->id, "status", status,
		    "willRetry", "false", NULL);
		cc_event_emit(ev->admin_fail, u->corr, "requestId", u->id, "errorCode", code,
		    "errorName", flows_code_name(u->code), "reason", u->succeeded ?
		    "the service refused the result" : u->message, "status", status, NULL);
	}
	free(u);
}

static void
upload(const struct flows_result *r)
{
	enum flows_kind k = kind_of_feature(r->feature);
	struct upload *u;
	struct busy *b;
	cJSON *result = NULL;
	char err[512];

	if (k == FLOWS_NKINDS) {
		cc_log_err("flows: outbox entry %s has unknown feature %s; dropped", r->request_id,
		    r->feature);
		flows_outbox_remove(F.env.store, r->request_id, err, sizeof(err));
		return;
	}
	b = busy_add(r->request_id);
	if (b == NULL || b->up != NULL)
		return;
	u = calloc(1, sizeof(*u));
	if (u == NULL)
		return;
	u->kind = k;
	snprintf(u->id, sizeof(u->id), "%s", r->request_id);
	snprintf(u->corr, sizeof(u->corr), "%s", r->correlation_id);
	u->succeeded = r->succeeded;
	u->code = r->code;
	snprintf(u->message, sizeof(u->message), "%s", r->message);
	if (r->result_json != NULL && (result = cJSON_Parse(r->result_json)) == NULL) {
		cc_log_err("flows: outbox entry %s holds a result that does not parse", u->id);
		free(u);
		return;
	}
	flows_outbox_bump(F.env.store, r->request_id, err, sizeof(err));
	b->up = u;
	if (service_complete(r->feature, r->request_id, r->succeeded, r->code, r->message,
	    result, upload_cb, u) == -1) {
		/* The service client is not running (or refused the arguments): kept. */
		cc_log_warn("flows: the result of %s cannot be uploaded now; it waits in the "
		    "outbox", r->request_id);
		busy_remove(r->request_id);
	}
}

static void
done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct flows_job *j;

	(void)what;
	(void)arg;
	while (read(fd, &j, sizeof(j)) == (ssize_t)sizeof(j)) {
		if (F.running)
			upload(&j->res);
		job_free(j);
	}
}

static void
resend_one(void *arg, const struct flows_result *r)
{
	(void)arg;
	if (busy_find(r->request_id) == NULL)
		upload(r);
}

static void
resend_cb(evutil_socket_t fd, short what, void *arg)
{
	char err[512];

	(void)fd;
	(void)what;
	(void)arg;
	if (flows_outbox_each(F.env.store, resend_one, NULL, err, sizeof(err)) == -1)
		cc_log_err("flows: %s", err);
}

/* ---- handlers (loop thread) ---- */

static void
handler(void *arg, const struct service_request *req)
{
	enum flows_kind k = (enum flows_kind)(uintptr_t)arg;
	const struct flows_events *ev = &events[k];
	struct flows_result prev;
	struct flows_job *j;
	char err[512], att[16];
	int r;

	if (req->id == NULL || req->id[0] == '\0' || strlen(req->id) > FLOWS_ID_MAX) {
		cc_log_err("flows: a %s request without a usable id was leased; ignored",
		    features[k]);
		return;
	}
	if (busy_find(req->id) != NULL) {
		cc_log_debug("flows: %s is already being worked on", req->id);
		return;
	}
	/* Leased again while its result waits in the outbox: send that result, do not redo. */
	r = flows_outbox_get(F.env.store, req->id, &prev, err, sizeof(err));
	if (r == 1) {
		cc_log_info("flows: %s leased again; uploading its stored result", req->id);
		upload(&prev);
		flows_result_clear(&prev);
		return;
	}
	if (r == -1)
		cc_log_err("flows: %s", err);
	j = calloc(1, sizeof(*j));
	if (j == NULL)
		return;
	j->kind = k;
	j->lease_attempt = req->attempt;
	snprintf(j->id, sizeof(j->id), "%s", req->id);
	snprintf(j->corr, sizeof(j->corr), "%s", req->correlation_id != NULL ?
	    req->correlation_id : req->id);
	j->payload = req->payload != NULL ? cJSON_Duplicate(req->payload, 1) : NULL;
	if (req->payload != NULL && j->payload == NULL) {
		job_free(j);
		return;
	}
	if (busy_add(j->id) == NULL) {
		job_free(j);
		return;
	}
	snprintf(att, sizeof(att), "%u", (unsigned)req->attempt);
	{
		const cJSON *p = req->payload;
		const cJSON *dev = cJSON_GetObjectItemCaseSensitive(p, "deviceId");
		const cJSON *ser = cJSON_GetObjectItemCaseSensitive(p, "serialNumber");

		if (k == FLOWS_REVOKE)
			cc_event_emit(ev->downloaded, j->corr, "requestId", j->id, "serialNumber",
			    cJSON_IsString(ser) ? ser->valuestring : "", "attempt", att, NULL);
		else
			cc_event_emit(ev->downloaded, j->corr, "requestId", j->id, "deviceId",
			    cJSON_IsString(dev) ? dev->valuestring : "", "attempt", att, NULL);
	}
	enqueue(j);
}

/* ---- start and stop ---- */

static void
start_workers_cb(evutil_socket_t fd, short what, void *arg)
{
	size_t n = F.env.conf->workers;

	(void)fd;
	(void)what;
	(void)arg;
	if (flows_keypool_start(F.env.pool) == -1)
		cc_log_err("flows: no key pool; every request makes its own key");
	F.threads = calloc(n, sizeof(*F.threads));
	if (F.threads == NULL)
		cc_fatal("flows: out of memory");
	for (size_t i = 0; i < n; i++) {
		if (pthread_create(&F.threads[i], NULL, worker, NULL) != 0)
			cc_fatal("flows: cannot start a worker thread");
		F.nthreads++;
	}
	F.started = true;
	cc_log_debug("flows: %zu worker thread(s)", F.nthreads);
	report_figures();
	/* What a previous run left in the outbox goes out now. */
	resend_cb(-1, 0, NULL);
}

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

/* Same owner as the state directory: net creates files as root before it drops to its
 * user (as scep_net.c does for its store). */
static void
own_like(const char *path, const char *dir)
{
	struct stat st;

	if (geteuid() == 0 && stat(dir, &st) == 0 && lchown(path, st.st_uid, st.st_gid) == -1)
		cc_log_warn("flows: chown %s: %s", path, strerror(errno));
}

int
flows_start(struct net_ctx *ctx)
{
	const struct cc_config_net *n = ctx->conf;
	const struct cc_config_flows *fc = n->flows;
	struct timeval zero = { 0, 0 }, resend = { FLOWS_RESEND_S, 0 };
	char db[sizeof(F.state_dir) + 16], err[512];
	uint32_t served = 0;
	int fd;

	if (fc == NULL)
		return 0;
	F.ctx = ctx;
	F.env.conf = fc;
	F.env.libctx = ctx->libctx;
	F.env.ca = scep_ca();
	if (n->state_dir[0] == '\0') {
		cc_log_err("net.flows needs net.state_dir");
		return -1;
	}
	if (fc->state_dir != NULL) {
		size_t l = strlen(n->state_dir);
		if (strncmp(fc->state_dir, n->state_dir, l) != 0 ||
		    (fc->state_dir[l] != '\0' && fc->state_dir[l] != '/')) {
			cc_log_err("net.flows.state_dir %s is not under net.state_dir %s (net's "
			    "sandbox writes only there)", fc->state_dir, n->state_dir);
			return -1;
		}
		snprintf(F.state_dir, sizeof(F.state_dir), "%s", fc->state_dir);
	} else
		snprintf(F.state_dir, sizeof(F.state_dir), "%s/flows", n->state_dir);
	if (mkdir(F.state_dir, 0700) == -1 && errno != EEXIST) {
		cc_log_err("flows: %s: %s", F.state_dir, strerror(errno));
		return -1;
	}
	own_like(F.state_dir, n->state_dir);
	snprintf(db, sizeof(db), "%s/flows.db", F.state_dir);
	fd = open(db, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd == -1) {
		cc_log_err("flows: %s: %s", db, strerror(errno));
		return -1;
	}
	close(fd);
	own_like(db, n->state_dir);
	if (flows_store_open(db, &F.env.store, err, sizeof(err)) == -1) {
		cc_log_err("flows: %s", err);
		return -1;
	}
	/* Records of requests that never came back (requeued, then served elsewhere). */
	if (flows_idem_prune(F.env.store, time(NULL) - FLOWS_IDEM_KEEP_S, err, sizeof(err)) == -1)
		cc_log_warn("flows: %s", err);
	/* SQLite's -wal and -shm take the database's owner by themselves. */
	if (fc->features & (CC_FEATURE_PKCS | CC_FEATURE_PKCS_RECRYPT | CC_FEATURE_PFX_IMPORT)) {
		F.env.pfx_key = keyref_load_key(ctx->libctx, ctx->kc, fc->pfx_role, &F.pfx_cert);
		if (F.env.pfx_key == NULL || (F.env.pfx_pub = public_copy(F.env.pfx_key)) == NULL) {
			cc_log_openssl("flows: loading the pfx role");
			cc_log_err("flows: pkcs, pkcs-recrypt and pfx-import need the %s key role in "
			    "keys (net.flows.pfx_role)", fc->pfx_role);
			goto fail;
		}
		F.env.pfx_cert = F.pfx_cert;
	}
	if ((fc->features & (CC_FEATURE_PKCS | CC_FEATURE_REVOKE)) && F.env.ca == NULL) {
		cc_log_err("flows: pkcs and revoke need the local CA (net.ca)");
		goto fail;
	}
	F.env.pool = flows_keypool_new(fc->pool_depth);
	if (F.env.pool == NULL) {
		cc_log_err("flows: out of memory");
		goto fail;
	}
	if (pipe2(F.done_pipe, O_CLOEXEC | O_NONBLOCK) == -1) {
		cc_log_err("flows: pipe: %s", strerror(errno));
		goto fail;
	}
	fcntl(F.done_pipe[1], F_SETFL, 0);
	F.done_ev = event_new(ctx->base, F.done_pipe[0], EV_READ | EV_PERSIST, done_cb, NULL);
	F.resend_ev = event_new(ctx->base, -1, EV_PERSIST, resend_cb, NULL);
	if (F.done_ev == NULL || F.resend_ev == NULL || event_add(F.done_ev, NULL) == -1 ||
	    event_add(F.resend_ev, &resend) == -1 ||
	    event_base_once(ctx->base, -1, EV_TIMEOUT, start_workers_cb, NULL, &zero) == -1) {
		cc_log_err("flows: cannot set up the event loop");
		goto fail;
	}
	for (int k = 0; k < FLOWS_NKINDS; k++) {
		if (!(fc->features & feature_bits[k]))
			continue;
		if (service_register_feature(features[k], handler, (void *)(uintptr_t)k) == -1)
			goto fail;
		served |= feature_bits[k];
	}
	F.running = true;
	cc_log_info("flows ready (%s%s%s%s; %zu outbox entries)",
	    served & CC_FEATURE_PKCS ? "pkcs " : "", served & CC_FEATURE_PKCS_RECRYPT ?
	    "pkcs-recrypt " : "", served & CC_FEATURE_PFX_IMPORT ? "pfx-import " : "",
	    served & CC_FEATURE_REVOKE ? "revoke" : "", flows_outbox_count(F.env.store));
	return 0;
fail:
	flows_stop();
	return -1;
}

void
flows_stop(void)
{
	struct flows_job *j, *nx;

	pthread_mutex_lock(&F.lock);
	F.stopping = true;
	pthread_cond_broadcast(&F.cond);
	pthread_mutex_unlock(&F.lock);
	for (size_t i = 0; i < F.nthreads; i++)
		pthread_join(F.threads[i], NULL);
	free(F.threads);
	F.threads = NULL;
	F.nthreads = 0;
	F.running = false;
	/* Finished jobs are in the outbox; queued ones are dropped (their leases expire and
	 * the service hands them out again). */
	if (F.done_pipe[0] != -1)
		done_cb(F.done_pipe[0], EV_READ, NULL);
	for (j = F.head; j != NULL; j = nx) {
		nx = j->next;
		job_free(j);
	}
	F.head = F.tail = NULL;
	F.pending = 0;
	while (F.busy != NULL)
		busy_remove(F.busy->id);
	if (F.done_ev != NULL)
		event_free(F.done_ev);
	if (F.resend_ev != NULL)
		event_free(F.resend_ev);
	F.done_ev = F.resend_ev = NULL;
	for (int i = 0; i < 2; i++)
		if (F.done_pipe[i] != -1)
			close(F.done_pipe[i]);
	F.done_pipe[0] = F.done_pipe[1] = -1;
	flows_keypool_free(F.env.pool);
	flows_store_close(F.env.store);
	EVP_PKEY_free(F.env.pfx_key);
	EVP_PKEY_free(F.env.pfx_pub);
	X509_free(F.pfx_cert);
	memset(&F.env, 0, sizeof(F.env));
	F.pfx_cert = NULL;
	F.started = false;
	F.stopping = false;
}
