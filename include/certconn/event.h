/*
 * Catalogue events: the connector's audit trail, with stable ids (docs/events.md).
 *
 * Any role emits with cc_event_emit(). In a child the installed forwarder sends the event to
 * the parent (CC_MSG_EVENT); in the parent, certconnctl and tests (no forwarder) it goes
 * straight to the local sinks, which the parent opens: journald with structured fields, and
 * one JSON-lines file per channel (admin.jsonl, operational.jsonl, debug.jsonl), rotated into
 * gzip archives at a size cap.
 *
 * Debug records (cc_event_debug) belong to the Admin or the Operational channel and are
 * written, to debug.jsonl and journald at debug priority, only while debug is on for that
 * channel. They travel as event CC_EV_DEBUG_MESSAGE (900) whose details are
 * {"debugChannel": "Admin"|"Operational", "message": text}.
 *
 * Everything here is thread-safe. Error convention: 0/-1.
 */
#ifndef CERTCONN_EVENT_H
#define CERTCONN_EVENT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "certconn/proto.h" /* struct cc_event_msg, CC_CHAN_* */
#include "event_catalog.h"  /* enum cc_event_id (generated from src/log/events.tsv) */

/* ---- the catalogue ---- */

struct cc_event_def {
	uint32_t id;
	const char *name;       /* CamelCase, e.g. "PkcsRequestSuccess" */
	uint32_t channel;       /* exactly one CC_CHAN_* bit */
	const char *category;   /* "PKCS", "Revocation", "SCEP", "Service", ... */
	const char *meaning;    /* one line of plain English */
	const char *message_id; /* journald MESSAGE_ID: 32 lower-case hex digits */
	int priority;           /* syslog level: LOG_ERR, LOG_WARNING, LOG_INFO or LOG_DEBUG */
};

/* NULL when the id is not in the catalogue. */
const struct cc_event_def *cc_event_lookup(uint32_t id);
/* The catalogue in id order: cc_event_at(0 .. cc_event_count()-1); NULL past the end. */
size_t cc_event_count(void);
const struct cc_event_def *cc_event_at(size_t i);

/* "Admin", "Operational", "Debug"; NULL for anything but a single CC_CHAN_* bit. */
const char *cc_event_channel_name(uint32_t channel);
/* The CC_CHAN_* bit of a channel name (case-insensitive); 0 when unknown. */
uint32_t cc_event_channel_from_name(const char *name);

/* ---- emitting (any role) ---- */

/* Limits. Emitting truncates to them (on a UTF-8 boundary); the sinks reject what exceeds. */
#define CC_EVENT_CORR_MAX 256u        /* bytes of a correlation id */
#define CC_EVENT_KEY_MAX 64u          /* bytes of a detail key */
#define CC_EVENT_VALUE_MAX 1024u      /* bytes of a detail value */
#define CC_EVENT_DETAILS_COUNT_MAX 32u
#define CC_EVENT_DETAILS_MAX (CC_MSG_STR_MAX - 1u) /* bytes of the details JSON text */
#define CC_EVENT_ROLE_MAX 32u

struct cc_event_detail {
	const char *key;   /* camelCase by convention ("requestId"); journald: DETAIL_REQUEST_ID */
	const char *value; /* NULL is recorded as "" */
};

/*
 * Emits catalogue event id with the request's correlation id (NULL or "" when there is none)
 * and its details as key, value string pairs ending with a NULL key:
 *
 *   cc_event_emit(CC_EV_PKCS_REQUEST_FAILURE, req->id, "deviceName", dev, "reason", why, NULL);
 *
 * Strings that are not valid UTF-8 are repaired (U+FFFD), over-long ones truncated; details
 * past the limits are dropped and the event then carries "detailsTruncated": "true". A
 * duplicate key keeps its first value. -1 if id is not in the catalogue (or is
 * CC_EV_DEBUG_MESSAGE: use cc_event_debug) or the event could not be delivered; the reason
 * is logged.
 */
int cc_event_emit(uint32_t id, const char *correlation_id, ...) __attribute__((sentinel));
int cc_event_emitv(uint32_t id, const char *correlation_id, va_list ap);
int cc_event_emita(uint32_t id, const char *correlation_id, const struct cc_event_detail *d,
    size_t n);

/*
 * Where emitted events go. fn gets a finished message (valid only during the call) and
 * returns 0/-1; on -1 the event is logged on stderr (rate-limited) so it is not silently
 * lost. Calls to fn are serialised by the event module's lock, so fn needs no locking of its
 * own against other events, but must not emit events itself. fn NULL restores the default:
 * the local sinks (cc_event_sinks_write).
 */
typedef int (*cc_event_forward_fn)(const struct cc_event_msg *m, void *arg);
void cc_event_set_forward(cc_event_forward_fn fn, void *arg);

/*
 * A free-form debug line of channel CC_CHAN_ADMIN or CC_CHAN_OPERATIONAL (one bit), emitted
 * only while debug is on for it; the text is truncated to CC_EVENT_VALUE_MAX bytes.
 * 0 when emitted or when debug is off for the channel; -1 on a bad channel or delivery
 * failure.
 */
int cc_event_debug(uint32_t channel, const char *correlation_id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Switches debug on (on != 0) or off for the channels in mask (CC_CHAN_ADMIN and/or
 * CC_CHAN_OPERATIONAL; other bits are ignored), in this process. The parent applies a switch
 * itself and forwards it to the children in CC_MSG_SET_DEBUG; a child calls this on receipt.
 */
void cc_event_set_debug(uint32_t mask, int on);
uint32_t cc_event_debug_mask(void);
/* Non-zero while debug is on for channel: lets a caller skip building costly debug text. */
int cc_event_debug_enabled(uint32_t channel);

/* ---- sinks (the parent; certconnctl and tests may open them too) ---- */

#define CC_EVENT_MAX_BYTES_DEFAULT (50u * 1024u * 1024u)
#define CC_EVENT_MAX_BYTES_MIN (64u * 1024u) /* leaves room for the longest line */
#define CC_EVENT_KEEP_DEFAULT 5u
#define CC_EVENT_KEEP_MAX 1000u

struct cc_event_sinks_conf {
	const char *dir;       /* directory of the JSON-lines files (created 0750 if missing,
	                        * one level); NULL: no files */
	uint64_t max_bytes;    /* cap of each live file; 0: CC_EVENT_MAX_BYTES_DEFAULT */
	uint32_t keep;         /* gzip archives kept per channel; 0: CC_EVENT_KEEP_DEFAULT */
	int journald;          /* non-zero: also send every event to journald */
	uint32_t debug_mask;   /* CC_CHAN_* with debug on; replaces this process's debug mask */
};

/*
 * Opens (or, when already open, closes and re-opens with the new configuration) the sinks.
 * Also finishes a rotation that a crash interrupted and deletes archives beyond keep.
 * -1 if the configuration is invalid or the directory cannot be used (logged); then no sink
 * is open (the previous ones are closed too): to fall back to journald alone, open again
 * with dir NULL.
 */
int cc_event_sinks_open(const struct cc_event_sinks_conf *c);

/*
 * Checks an event without writing it. -1 with a static reason in *why (may be NULL) when:
 * the id is not in the catalogue, the time is past year 9999, role or correlation id is too
 * long or not UTF-8 (role: [a-z0-9_-] only), the details are not a JSON object of at most
 * CC_EVENT_DETAILS_COUNT_MAX distinct, bounded string members, or a debug record lacks a valid
 * debugChannel or message.
 */
int cc_event_validate(const struct cc_event_msg *m, const char **why);

/*
 * Validates m (as cc_event_validate, logging why on rejection) and writes it to every open
 * sink; a debug record whose channel has debug off is dropped (0). -1 only when m is
 * rejected. A failing sink (disk full, journald refusing) is logged, rate-limited, and counted in
 * cc_event_sinks_failures(), since the caller can do nothing about it; the other sinks still
 * get the event. With no sinks open a valid event is only logged at debug level.
 */
int cc_event_sinks_write(const struct cc_event_msg *m);

/* Sink write failures since the process started (for status and tests). */
uint64_t cc_event_sinks_failures(void);

void cc_event_sinks_close(void);

#endif
