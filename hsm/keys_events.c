/*
 * keys: events to the parent, and the audit line of every private-key operation.
 * keys has no sinks of its own: the forwarder sends each event to the parent on
 * CC_FD_PARENT, under the lock that also serialises the main thread's replies there.
 */
#include <stdarg.h>
#include <stdio.h>

#include "certconn/chan.h"
#include "certconn/event.h"
#include "certconn/log.h"
#include "keys_int.h"

int
keys_parent_send(struct keys *k, const struct cc_wbuf *w)
{
	int r;

	pthread_mutex_lock(&k->parent_lock);
	r = cc_chan_send(CC_FD_PARENT, w);
	pthread_mutex_unlock(&k->parent_lock);
	return r;
}

static int
forward(const struct cc_event_msg *m, void *arg)
{
	struct keys *k = arg;
	struct cc_wbuf w;
	int r;

	if (cc_enc_event(&w, 0, m) == -1)
		return -1;
	r = keys_parent_send(k, &w);
	cc_wbuf_free(&w);
	return r;
}

void
keys_events_install(struct keys *k)
{
	cc_event_set_forward(forward, k);
}

void
keys_audit(const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (!cc_log_verbose() && !cc_event_debug_enabled(CC_CHAN_OPERATIONAL))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	cc_log_debug("audit: %s", line);
	(void)cc_event_debug(CC_CHAN_OPERATIONAL, NULL, "keys: %s", line);
}
