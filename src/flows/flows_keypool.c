/*
 * The device key pool (certconn/flows.h): one background thread keeps, for each key spec,
 * up to its configured depth of fresh key pairs, so that a burst of PKCS requests does not
 * wait on RSA key generation. A request takes a pooled key or, when that spec's pool is
 * empty, makes one itself at once (and the thread refills behind it).
 *
 * Device keys are not connector keys: they leave in the device's PKCS#12, so they are made
 * in net with OpenSSL's default provider, never in the token. They are made by cc_pkcs's
 * pkcs_keygen, the one generator of device keys (the pool adds only the keeping ahead).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "certconn/config_flows.h"
#include "certconn/flows.h"
#include "certconn/log.h"
#include "certconn/pkcs.h"
#include "flows_int.h"

struct flows_keypool {
	pthread_mutex_t lock;
	pthread_cond_t want;         /* the filler waits here for room */
	pthread_cond_t filled;       /* flows_keypool_wait_full waits here */
	uint32_t depth[CC_FLOWS_NKEYSPECS];
	EVP_PKEY **keys[CC_FLOWS_NKEYSPECS];
	size_t n[CC_FLOWS_NKEYSPECS];
	pthread_t thread;
	bool running;
	bool stopping;
};

/* pkcs's name of each enum cc_flows_keyspec (the configuration's "rsa-2048" is "rsa2048"). */
static const char *const pkcs_spec[CC_FLOWS_NKEYSPECS] = {
	[CC_FLOWS_RSA2048] = "rsa2048",
	[CC_FLOWS_RSA3072] = "rsa3072",
	[CC_FLOWS_RSA4096] = "rsa4096",
	[CC_FLOWS_EC_P256] = "p256",
	[CC_FLOWS_EC_P384] = "p384",
};

/* A key of spec, or NULL with pkcs's reason in err. */
static EVP_PKEY *
keygen(int spec, char *err, size_t errlen)
{
	EVP_PKEY *k = NULL;

	if (spec < 0 || spec >= CC_FLOWS_NKEYSPECS) {
		snprintf(err, errlen, "unknown key spec %d", spec);
		return NULL;
	}
	/* NULL: net's default library context, which holds only the default provider (the
	 * token's keys live in keyref's own context), as for the flows' other pkcs calls */
	if (pkcs_keygen(NULL, pkcs_spec[spec], &k, err, errlen) != PKCS_OK)
		return NULL;
	return k;
}

EVP_PKEY *
flows_keygen(int spec)
{
	char err[256];
	EVP_PKEY *k = keygen(spec, err, sizeof(err));

	/* the request that needed it reports the failure; pkcs's detail goes to the debug log,
	 * as flows_crypto.c does */
	if (k == NULL)
		cc_log_debug("flows: key generation: %s", err);
	return k;
}

struct flows_keypool *
flows_keypool_new(const uint32_t *depth)
{
	struct flows_keypool *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->want, NULL);
	pthread_cond_init(&p->filled, NULL);
	for (int i = 0; i < CC_FLOWS_NKEYSPECS; i++) {
		p->depth[i] = depth != NULL ? depth[i] : 0;
		if (p->depth[i] > CC_FLOWS_POOL_MAX)
			p->depth[i] = CC_FLOWS_POOL_MAX;
		if (p->depth[i] > 0 &&
		    (p->keys[i] = calloc(p->depth[i], sizeof(EVP_PKEY *))) == NULL) {
			flows_keypool_free(p);
			return NULL;
		}
	}
	return p;
}

/* The spec most in need of a key (the emptiest relative to its depth), or -1. */
static int
neediest(const struct flows_keypool *p)
{
	int best = -1;
	double fill = 1.0;

	for (int i = 0; i < CC_FLOWS_NKEYSPECS; i++) {
		double f;

		if (p->depth[i] == 0 || p->n[i] >= p->depth[i])
			continue;
		f = (double)p->n[i] / (double)p->depth[i];
		if (best == -1 || f < fill) {
			best = i;
			fill = f;
		}
	}
	return best;
}

static void *
filler(void *arg)
{
	struct flows_keypool *p = arg;
	unsigned failures = 0;
	char err[256];

	pthread_mutex_lock(&p->lock);
	while (!p->stopping) {
		int spec = neediest(p);
		EVP_PKEY *k;

		if (spec == -1) {
			pthread_cond_broadcast(&p->filled);
			pthread_cond_wait(&p->want, &p->lock);
			continue;
		}
		/* Generation takes long (RSA-4096: seconds): not under the lock. */
		pthread_mutex_unlock(&p->lock);
		k = keygen(spec, err, sizeof(err));
		pthread_mutex_lock(&p->lock);
		if (k == NULL) {
			struct timespec ts;

			if (failures++ == 0)
				cc_log_err("flows: key pool: generating a %s key: %s",
				    cc_flows_keyspec_name(spec), err);
			/* Do not spin on a failing generator; a request still makes its own. */
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 5;
			pthread_cond_timedwait(&p->want, &p->lock, &ts);
			continue;
		}
		failures = 0;
		if (p->stopping || p->n[spec] >= p->depth[spec]) {
			EVP_PKEY_free(k);
			continue;
		}
		p->keys[spec][p->n[spec]++] = k;
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int
flows_keypool_start(struct flows_keypool *p)
{
	bool any = false;

	for (int i = 0; i < CC_FLOWS_NKEYSPECS; i++)
		any |= p->depth[i] > 0;
	if (!any || p->running)
		return 0;
	if (pthread_create(&p->thread, NULL, filler, p) != 0) {
		cc_log_err("flows: cannot start the key pool thread");
		return -1;
	}
	p->running = true;
	return 0;
}

void
flows_keypool_free(struct flows_keypool *p)
{
	if (p == NULL)
		return;
	if (p->running) {
		pthread_mutex_lock(&p->lock);
		p->stopping = true;
		pthread_cond_broadcast(&p->want);
		pthread_mutex_unlock(&p->lock);
		pthread_join(p->thread, NULL);
	}
	for (int i = 0; i < CC_FLOWS_NKEYSPECS; i++) {
		for (size_t j = 0; j < p->n[i]; j++)
			EVP_PKEY_free(p->keys[i][j]);
		free(p->keys[i]);
	}
	pthread_cond_destroy(&p->want);
	pthread_cond_destroy(&p->filled);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

EVP_PKEY *
flows_keypool_take(struct flows_keypool *p, int spec, bool *pooled)
{
	EVP_PKEY *k = NULL;

	*pooled = false;
	if (spec < 0 || spec >= CC_FLOWS_NKEYSPECS)
		return NULL;
	if (p != NULL) {
		pthread_mutex_lock(&p->lock);
		if (p->n[spec] > 0) {
			/* Oldest first: the array is short, a shift costs nothing. */
			k = p->keys[spec][0];
			memmove(&p->keys[spec][0], &p->keys[spec][1],
			    (p->n[spec] - 1) * sizeof(EVP_PKEY *));
			p->n[spec]--;
			*pooled = true;
		}
		pthread_cond_signal(&p->want);
		pthread_mutex_unlock(&p->lock);
	}
	if (k == NULL)
		k = flows_keygen(spec);
	return k;
}

size_t
flows_keypool_ready(struct flows_keypool *p, int spec)
{
	size_t n;

	if (p == NULL || spec < 0 || spec >= CC_FLOWS_NKEYSPECS)
		return 0;
	pthread_mutex_lock(&p->lock);
	n = p->n[spec];
	pthread_mutex_unlock(&p->lock);
	return n;
}

int
flows_keypool_wait_full(struct flows_keypool *p, uint32_t timeout_ms)
{
	struct timespec ts;
	int full;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&p->lock);
	while ((full = neediest(p) == -1) == 0 && p->running) {
		if (pthread_cond_timedwait(&p->filled, &p->lock, &ts) == ETIMEDOUT) {
			full = neediest(p) == -1;
			break;
		}
	}
	pthread_mutex_unlock(&p->lock);
	return full ? 1 : 0;
}
