/* Internals of the event module (src/log/), shared between its files. */
#ifndef CERTCONN_EVENT_INT_H
#define CERTCONN_EVENT_INT_H

#include <stddef.h>
#include <stdint.h>

#include "certconn/event.h"

/* Generated into ${CC_GEN_DIR}/event_catalog.c: the catalogue sorted by id. */
extern const struct cc_event_def cc_event_table[];
extern const size_t cc_event_table_len;

/* Replaces the process's debug mask (CC_CHAN_ADMIN | CC_CHAN_OPERATIONAL bits) in one go. */
void ev_debug_store(uint32_t mask);

/* Non-zero when role is acceptable in an event: at most CC_EVENT_ROLE_MAX of [a-z0-9_-]. */
int ev_role_valid(const char *role);

/* Non-zero when s[0 .. n) is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF). */
int ev_utf8_valid(const char *s, size_t n);

/*
 * A malloc'd copy of s (NULL taken as "") with each ill-formed UTF-8 sequence replaced by
 * U+FFFD, cut to at most max bytes on a character boundary. NULL when out of memory.
 */
char *ev_utf8_clean(const char *s, size_t max);

/*
 * Error rate limiter: ev_rl_allow() is true for at most one message per interval; the
 * messages held back meanwhile are counted and reported by the next allowed one.
 */
struct ev_ratelimit {
	uint64_t last_ms;
	uint64_t suppressed;
};
#define EV_RL_INTERVAL_MS 10000u
/* True when a message may be logged now; *suppressed gets the number held back since. */
int ev_rl_allow(struct ev_ratelimit *rl, uint64_t *suppressed);

#endif
