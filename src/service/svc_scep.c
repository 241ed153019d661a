/*
 * SCEP's service-verified challenge mode (src/scep/scep_verify.h) on top of this client.
 *
 * SCEP calls validate and notify from its worker threads and blocks; this client lives on
 * net's event loop. A call is handed to the loop through a pipe (a pointer per write, atomic
 * below PIPE_BUF), made there with the usual retries, and its outcome handed back under a
 * mutex and condition variable. A job is shared by the two sides and freed by whichever
 * leaves it last, so a worker that gives up waiting never leaves the loop a dangling job.
 *
 * Built only when the SCEP module provides scep_verify.h.
 */
#if defined(__has_include)
#if __has_include("scep_verify.h")
#define SVC_HAVE_SCEP_VERIFY 1
#endif
#endif

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/evp.h>

#include "certconn/config.h"
#include "certconn/log.h"
#include "certconn/util.h"
#include "net.h"
#include "svc.h"

#ifdef SVC_HAVE_SCEP_VERIFY
#include "scep_verify.h"

enum job_kind { JOB_VALIDATE, JOB_NOTIFY };

struct job {
	enum job_kind kind;
	/* in (owned copies) */
	uint8_t *csr;
	size_t csr_len;
	char *txid;
	char *caller;
	char *notify_kind;
	char *json;
	/* out */
	int result;                  /* enum scep_verify_result; notify: 0 ok / -1 */
	char code[64];
	char why[256];
	bool done;
	int refs;                    /* the worker and the loop */
	struct job *next;            /* pending on the loop */
};

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int pipefd[2];
	struct event *ev;
	struct job *pending;         /* taken by the loop, not done yet */
	bool running;
	unsigned wait_s;
} V = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, { -1, -1 }, NULL, NULL, false,
	0 };

static void
job_free(struct job *j)
{
	free(j->csr);
	free(j->txid);
	free(j->caller);
	free(j->notify_kind);
	free(j->json);
	free(j);
}

/* Drops one reference (V.mu held); frees the job when it was the last. */
static void
job_put_locked(struct job *j)
{
	if (--j->refs == 0)
		job_free(j);
}

static void
unlink_pending_locked(struct job *j)
{
	for (struct job **pp = &V.pending; *pp != NULL; pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			return;
		}
}

/* The loop's side is over: record the outcome, wake the worker. */
static void
job_finish(struct job *j, int result, const char *code, const char *why)
{
	pthread_mutex_lock(&V.mu);
	j->result = result;
	snprintf(j->code, sizeof(j->code), "%s", code != NULL ? code : "");
	snprintf(j->why, sizeof(j->why), "%s", why != NULL ? why : "");
	j->done = true;
	unlink_pending_locked(j);
	pthread_cond_broadcast(&V.cv);
	job_put_locked(j);
	pthread_mutex_unlock(&V.mu);
}

static void
job_cb(void *arg, enum service_outcome out, const char *code, const char *desc)
{
	struct job *j = arg;
	char why[300];

	if (j->kind == JOB_NOTIFY) {
		if (out == SERVICE_OK)
			job_finish(j, 0, code, NULL);
		else {
			snprintf(why, sizeof(why), "%s%s%s", code != NULL ? code : "",
			    code != NULL ? ": " : "", desc != NULL ? desc : "");
			job_finish(j, -1, code, why);
		}
		return;
	}
	job_finish(j, out == SERVICE_OK ? SCEP_VERIFY_OK : out == SERVICE_REFUSED ?
	    SCEP_VERIFY_DENIED : SCEP_VERIFY_UNAVAILABLE, code != NULL ? code : "ServiceUnavailable",
	    desc);
}

/* On the loop: start the job's call. */
static void
job_start(struct job *j)
{
	cJSON *body = NULL, *inner = NULL;
	char *b64 = NULL;
	int rc = -1;

	if (j->kind == JOB_VALIDATE) {
		b64 = malloc((j->csr_len + 2) / 3 * 4 + 1);
		if (b64 != NULL) {
			EVP_EncodeBlock((unsigned char *)b64, j->csr, (int)j->csr_len);
			inner = cJSON_CreateObject();
			cJSON_AddStringToObject(inner, "transactionId", j->txid);
			cJSON_AddStringToObject(inner, "certificateRequest", b64);
			cJSON_AddStringToObject(inner, "callerInfo", j->caller != NULL ?
			    j->caller : "certconn/" CC_VERSION);
			free(b64);
			rc = svc_scep_call("validateRequest", inner, j->txid, job_cb, j);
		}
	} else {
		body = cJSON_Parse(j->json);
		inner = cJSON_DetachItemFromObjectCaseSensitive(body, "notification");
		cJSON_Delete(body);
		if (cJSON_IsObject(inner))
			rc = svc_scep_call(j->notify_kind, inner, NULL, job_cb, j);
		else
			cJSON_Delete(inner);
	}
	if (rc == -1)
		job_cb(j, SERVICE_FAILED, NULL, "the service client cannot make the call");
}

static void
pipe_cb(evutil_socket_t fd, short what, void *arg)
{
	struct job *j;
	ssize_t n;

	(void)what; (void)arg;
	while ((n = read(fd, &j, sizeof(j))) == (ssize_t)sizeof(j))
		job_start(j);
}

/* On a SCEP worker: hand the job to the loop and wait for it. */
static int
job_run(struct job *j, char *code, size_t codelen, char *why, size_t whylen)
{
	struct timespec until;
	int result;

	j->refs = 2;
	pthread_mutex_lock(&V.mu);
	if (!V.running) {
		pthread_mutex_unlock(&V.mu);
		snprintf(why, whylen, "the service client is not running");
		job_free(j);
		return -1;
	}
	j->next = V.pending;
	V.pending = j;
	if (write(V.pipefd[1], &j, sizeof(j)) != (ssize_t)sizeof(j)) {
		unlink_pending_locked(j);
		pthread_mutex_unlock(&V.mu);
		snprintf(why, whylen, "cannot reach the service client: %s", strerror(errno));
		job_free(j);
		return -1;
	}
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += V.wait_s;
	while (!j->done)
		if (pthread_cond_timedwait(&V.cv, &V.mu, &until) == ETIMEDOUT)
			break;
	if (!j->done) {
		snprintf(why, whylen, "no answer from the service within %u s", V.wait_s);
		result = -2;
	} else {
		result = j->result;
		snprintf(why, whylen, "%s", j->why);
		if (code != NULL)
			snprintf(code, codelen, "%s", j->code);
	}
	job_put_locked(j);
	pthread_mutex_unlock(&V.mu);
	return result;
}

static int
ops_validate(void *arg, const uint8_t *csr, size_t csr_len, const char *txid,
    const char *caller_info, char *code, size_t codelen, char *why, size_t whylen)
{
	struct job *j = calloc(1, sizeof(*j));
	int r;

	(void)arg;
	if (j == NULL || csr_len == 0 || csr_len > (1u << 20) || txid == NULL) {
		free(j);
		snprintf(code, codelen, "ServiceUnavailable");
		snprintf(why, whylen, "bad arguments");
		return SCEP_VERIFY_UNAVAILABLE;
	}
	j->kind = JOB_VALIDATE;
	j->csr = malloc(csr_len);
	j->txid = strdup(txid);
	j->caller = caller_info != NULL ? strdup(caller_info) : NULL;
	if (j->csr == NULL || j->txid == NULL) {
		job_free(j);
		snprintf(code, codelen, "ServiceUnavailable");
		snprintf(why, whylen, "out of memory");
		return SCEP_VERIFY_UNAVAILABLE;
	}
	memcpy(j->csr, csr, csr_len);
	j->csr_len = csr_len;
	r = job_run(j, code, codelen, why, whylen);
	if (r < 0) {
		snprintf(code, codelen, "ServiceUnavailable");
		return SCEP_VERIFY_UNAVAILABLE;
	}
	return r;
}

static int
ops_notify(void *arg, const char *kind, const char *json, char *why, size_t whylen)
{
	struct job *j = calloc(1, sizeof(*j));

	(void)arg;
	if (j == NULL || kind == NULL || json == NULL || (strcmp(kind, "successNotification") != 0 &&
	    strcmp(kind, "failureNotification") != 0)) {
		free(j);
		snprintf(why, whylen, "bad arguments");
		return -1;
	}
	j->kind = JOB_NOTIFY;
	j->notify_kind = strdup(kind);
	j->json = strdup(json);
	if (j->notify_kind == NULL || j->json == NULL) {
		job_free(j);
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	return job_run(j, NULL, 0, why, whylen) == 0 ? 0 : -1;
}

static const struct scep_verify_ops ops = { ops_validate, ops_notify };

const void *
svc_scep_verify_ops(void)
{
	return &ops;
}

int
svc_scep_verify_start(struct net_ctx *ctx)
{
	const struct cc_config_service *cf = ctx->conf->service;

	if (!(cf->features & CC_FEATURE_SCEP))
		return 0;
	if (pipe2(V.pipefd, O_CLOEXEC | O_NONBLOCK) == -1) {
		cc_log_err("service: pipe: %s", strerror(errno));
		return -1;
	}
	V.ev = event_new(ctx->base, V.pipefd[0], EV_READ | EV_PERSIST, pipe_cb, NULL);
	if (V.ev == NULL || event_add(V.ev, NULL) == -1)
		return -1;
	/* Every attempt may take the whole timeout, and there are back-offs in between. */
	V.wait_s = cf->timeout_s * (cf->retry_max_attempts + 1) + cf->retry_max_ms / 1000 *
	    cf->retry_max_attempts + 5;
	pthread_mutex_lock(&V.mu);
	V.running = true;
	pthread_mutex_unlock(&V.mu);
	scep_verify_set(&ops, NULL);
	return 0;
}

void
svc_scep_verify_stop(void)
{
	struct job *j;

	if (V.ev == NULL)
		return;
	scep_verify_set(NULL, NULL);
	pthread_mutex_lock(&V.mu);
	V.running = false;
	/* Calls in flight are dropped with the engine: their workers learn it now. */
	while ((j = V.pending) != NULL) {
		V.pending = j->next;
		j->result = j->kind == JOB_NOTIFY ? -1 : SCEP_VERIFY_UNAVAILABLE;
		snprintf(j->why, sizeof(j->why), "the service client stopped");
		snprintf(j->code, sizeof(j->code), "ServiceUnavailable");
		j->done = true;
		job_put_locked(j);
	}
	pthread_cond_broadcast(&V.cv);
	pthread_mutex_unlock(&V.mu);
	event_free(V.ev);
	V.ev = NULL;
	close(V.pipefd[0]);
	close(V.pipefd[1]);
	V.pipefd[0] = V.pipefd[1] = -1;
}

#else /* no scep_verify.h: SCEP's service mode is not in this build */

const void *
svc_scep_verify_ops(void)
{
	return NULL;
}

int
svc_scep_verify_start(struct net_ctx *ctx)
{
	(void)ctx;
	return 0;
}

void
svc_scep_verify_stop(void)
{
}

#endif
