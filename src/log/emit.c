/*
 * Emitting events and debug records (any role), and the debug switch.
 * See include/certconn/event.h.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "certconn/event.h"
#include "certconn/log.h"
#include "certconn/util.h"
#include "event_int.h"

#define EV_DEBUG_CHANS (CC_CHAN_ADMIN | CC_CHAN_OPERATIONAL)

/* Guards the forwarder and serialises delivery, so a forwarder needs no lock of its own. */
static pthread_mutex_t ev_lock = PTHREAD_MUTEX_INITIALIZER;
static cc_event_forward_fn ev_fwd;
static void *ev_fwd_arg;
static struct ev_ratelimit ev_lost_rl;
static struct ev_ratelimit ev_bad_rl;
/* Read on every cc_event_debug() call, hence atomic rather than under ev_lock. */
static _Atomic uint32_t ev_debug;

void
cc_event_set_forward(cc_event_forward_fn fn, void *arg)
{
	pthread_mutex_lock(&ev_lock);
	ev_fwd = fn;
	ev_fwd_arg = arg;
	pthread_mutex_unlock(&ev_lock);
}

void
cc_event_set_debug(uint32_t mask, int on)
{
	mask &= EV_DEBUG_CHANS;
	if (on)
		atomic_fetch_or(&ev_debug, mask);
	else
		atomic_fetch_and(&ev_debug, ~mask);
}

void ev_debug_store(uint32_t mask) { atomic_store(&ev_debug, mask & EV_DEBUG_CHANS); }

uint32_t cc_event_debug_mask(void) { return atomic_load(&ev_debug); }

int
cc_event_debug_enabled(uint32_t channel)
{
	return (channel & EV_DEBUG_CHANS) != 0 && (atomic_load(&ev_debug) & channel) == channel;
}

/* Logs a caller's mistake, rate-limited: a bug in a hot path must not flood stderr. */
static void
ev_bad_call(const char *what, uint32_t id)
{
	uint64_t supp;
	int ok;

	pthread_mutex_lock(&ev_lock);
	ok = ev_rl_allow(&ev_bad_rl, &supp);
	pthread_mutex_unlock(&ev_lock);
	if (ok)
		cc_log_err("event %u not emitted: %s (%llu similar suppressed)", id, what,
		    (unsigned long long)supp);
}

static int
ev_deliver(const struct cc_event_msg *m)
{
	uint64_t supp;
	int rc;

	pthread_mutex_lock(&ev_lock);
	if (ev_fwd != NULL) {
		rc = ev_fwd(m, ev_fwd_arg);
		/* The parent is gone or the channel broke: leave a trace on stderr (journald). */
		if (rc == -1 && ev_rl_allow(&ev_lost_rl, &supp))
			cc_log_err("event %u (correlation id \"%s\") could not be forwarded: %s "
			    "(%llu more lost since last report)", m->id, m->correlation_id,
			    m->details_json, (unsigned long long)supp);
	} else
		rc = cc_event_sinks_write(m);
	pthread_mutex_unlock(&ev_lock);
	return rc;
}

/* Drops the last member that is not the truncation marker; 0 when there was none. */
static int
ev_drop_last(cJSON *obj)
{
	cJSON *it, *last = NULL;

	cJSON_ArrayForEach(it, obj)
		if (strcmp(it->string, "detailsTruncated") != 0)
			last = it;
	if (last == NULL)
		return 0;
	cJSON_Delete(cJSON_DetachItemViaPointer(obj, last));
	return 1;
}

/*
 * Builds the details JSON text (malloc'd, caller frees) within the limits in event.h.
 * truncated: details were already dropped by the caller.
 */
static char *
ev_details(const struct cc_event_detail *d, size_t n, int truncated)
{
	cJSON *obj;
	char *text = NULL, *val;
	size_t i, count = 0;

	if ((obj = cJSON_CreateObject()) == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		const char *key = d[i].key;
		size_t klen = key ? strlen(key) : 0;

		if (klen == 0 || klen > CC_EVENT_KEY_MAX || !ev_utf8_valid(key, klen) ||
		    count == CC_EVENT_DETAILS_COUNT_MAX) {
			truncated = 1;
			continue;
		}
		if (cJSON_GetObjectItemCaseSensitive(obj, key) != NULL)
			continue; /* duplicate: the first value stands */
		if ((val = ev_utf8_clean(d[i].value, CC_EVENT_VALUE_MAX)) == NULL)
			goto out;
		if (cJSON_AddStringToObject(obj, key, val) == NULL) {
			free(val);
			goto out;
		}
		free(val);
		count++;
	}
	for (;;) {
		if (truncated && cJSON_GetObjectItemCaseSensitive(obj, "detailsTruncated") == NULL) {
			if (count == CC_EVENT_DETAILS_COUNT_MAX && ev_drop_last(obj))
				count--;
			if (cJSON_AddStringToObject(obj, "detailsTruncated", "true") == NULL)
				goto out;
		}
		if ((text = cJSON_PrintUnformatted(obj)) == NULL)
			goto out;
		if (strlen(text) <= CC_EVENT_DETAILS_MAX)
			break;
		/* Too long as a whole: drop details from the end until it fits. */
		cJSON_free(text);
		text = NULL;
		if (!ev_drop_last(obj))
			goto out; /* cannot happen: the marker alone is short */
		count--;
		truncated = 1;
	}
out:
	cJSON_Delete(obj);
	return text;
}

static int
ev_send(uint32_t id, const char *correlation_id, const struct cc_event_detail *d, size_t n,
    int truncated)
{
	struct cc_event_msg m;
	char *details = NULL, *corr = NULL;
	const char *role = cc_log_role();
	int rc = -1;

	details = ev_details(d, n, truncated);
	corr = ev_utf8_clean(correlation_id, CC_EVENT_CORR_MAX);
	if (details == NULL || corr == NULL) {
		ev_bad_call("out of memory", id);
		goto out;
	}
	m.id = id;
	m.time_us = cc_wall_us();
	m.role = ev_role_valid(role) ? role : "unknown";
	m.correlation_id = corr;
	m.details_json = details;
	rc = ev_deliver(&m);
out:
	cJSON_free(details);
	free(corr);
	return rc;
}

int
cc_event_emita(uint32_t id, const char *correlation_id, const struct cc_event_detail *d,
    size_t n)
{
	if (cc_event_lookup(id) == NULL) {
		ev_bad_call("not in the catalogue", id);
		return -1;
	}
	if (id == CC_EV_DEBUG_MESSAGE) {
		ev_bad_call("debug records go through cc_event_debug()", id);
		return -1;
	}
	return ev_send(id, correlation_id, d, d != NULL ? n : 0, 0);
}

int
cc_event_emitv(uint32_t id, const char *correlation_id, va_list ap)
{
	struct cc_event_detail d[CC_EVENT_DETAILS_COUNT_MAX];
	const char *key;
	size_t n = 0;
	int dropped = 0;

	while ((key = va_arg(ap, const char *)) != NULL) {
		const char *value = va_arg(ap, const char *);

		if (n < CC_EVENT_DETAILS_COUNT_MAX) {
			d[n].key = key;
			d[n].value = value;
			n++;
		} else
			dropped = 1;
	}
	if (cc_event_lookup(id) == NULL || id == CC_EV_DEBUG_MESSAGE)
		return cc_event_emita(id, correlation_id, d, n); /* logs why */
	return ev_send(id, correlation_id, d, n, dropped);
}

int
cc_event_emit(uint32_t id, const char *correlation_id, ...)
{
	va_list ap;
	int rc;

	va_start(ap, correlation_id);
	rc = cc_event_emitv(id, correlation_id, ap);
	va_end(ap);
	return rc;
}

int
cc_event_debug(uint32_t channel, const char *correlation_id, const char *fmt, ...)
{
	char text[CC_EVENT_VALUE_MAX + 1];
	struct cc_event_detail d[2];
	va_list ap;

	if (channel != CC_CHAN_ADMIN && channel != CC_CHAN_OPERATIONAL) {
		ev_bad_call("debug record for a channel other than Admin or Operational",
		    CC_EV_DEBUG_MESSAGE);
		return -1;
	}
	if (!cc_event_debug_enabled(channel))
		return 0;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	d[0].key = "debugChannel";
	d[0].value = cc_event_channel_name(channel);
	d[1].key = "message";
	d[1].value = text;
	return ev_send(CC_EV_DEBUG_MESSAGE, correlation_id, d, 2, 0);
}
