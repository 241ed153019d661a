/* The service-verified challenge: registration of the service's calls (scep_verify.h). */
#include <pthread.h>
#include <stdio.h>

#include "scep_int.h"
#include "scep_verify.h"

static pthread_rwlock_t verify_lock = PTHREAD_RWLOCK_INITIALIZER;
static const struct scep_verify_ops *verify_ops;
static void *verify_arg;

void
scep_verify_set(const struct scep_verify_ops *ops, void *arg)
{
	pthread_rwlock_wrlock(&verify_lock);
	verify_ops = ops;
	verify_arg = arg;
	pthread_rwlock_unlock(&verify_lock);
}

int
scep_verify_validate(const uint8_t *csr, size_t csr_len, const char *txid,
    const char *caller_info, char *code, size_t codelen, char *why, size_t whylen)
{
	int r;

	/* A read lock for the whole call: scep_verify_set waits until no call is running. */
	pthread_rwlock_rdlock(&verify_lock);
	if (verify_ops == NULL || verify_ops->validate == NULL) {
		snprintf(code, codelen, "ServiceUnavailable");
		snprintf(why, whylen, "the service is not available (no service client)");
		r = SCEP_VERIFY_UNAVAILABLE;
	} else {
		r = verify_ops->validate(verify_arg, csr, csr_len, txid, caller_info, code, codelen,
		    why, whylen);
	}
	pthread_rwlock_unlock(&verify_lock);
	return r;
}

int
scep_verify_notify(const char *kind, const char *json, char *why, size_t whylen)
{
	int r;

	pthread_rwlock_rdlock(&verify_lock);
	if (verify_ops == NULL || verify_ops->notify == NULL) {
		snprintf(why, whylen, "the service is not available (no service client)");
		r = -1;
	} else {
		r = verify_ops->notify(verify_arg, kind, json, why, whylen);
	}
	pthread_rwlock_unlock(&verify_lock);
	return r;
}
