/*
 * certconn internal message codec.
 *
 * Every message between certconnd's roles (parent, net, keys) and between certconnctl and
 * the parent's control socket is one frame:
 *
 *   u32 length   whole frame, header included, big-endian, <= CC_MSG_MAX
 *   u16 version  CC_MSG_VERSION
 *   u16 type     enum cc_msg_type
 *   u64 reqid    chosen by the caller, echoed in the reply (0 for notifications)
 *   payload      the type's fields, in order, nothing after the last one
 *
 * Field encodings: integers big-endian; a string is u32 length (NUL included), the bytes, and
 * the NUL, with no NUL before it; a byte string is u32 length and the bytes. Readers check
 * every length against what is left; after the last field nothing may remain.
 *
 * Error convention of this layer: 0 on success, -1 on failure (a reader's failure is sticky
 * in struct cc_rbuf.err, so a decoder may read every field and check once at the end).
 */
#ifndef CERTCONN_MSG_H
#define CERTCONN_MSG_H

#include <stddef.h>
#include <stdint.h>

#define CC_MSG_VERSION 1
#define CC_MSG_HDR_LEN 16
#define CC_MSG_MAX (4u * 1024u * 1024u) /* frame cap, header included */
#define CC_MSG_STR_MAX 4096u            /* cap for any single string field */

enum cc_msg_type {
	CC_MSG_NONE = 0,
	/* parent -> child: configuration, sent once after start, then CC_MSG_CONF_END */
	CC_MSG_CONF_KEYS = 1,      /* keys: module and token */
	CC_MSG_CONF_ROLE = 2,      /* keys: one key role and its policy */
	CC_MSG_CONF_PIN = 3,       /* keys: the user PIN (never to net) */
	CC_MSG_CONF_NET = 4,       /* net: its part of the config */
	CC_MSG_CONF_LOG = 5,       /* both: log levels */
	CC_MSG_CONF_END = 6,       /* both: no more configuration */
	/* child -> parent */
	CC_MSG_READY = 10,         /* child finished start-up and is sandboxed */
	CC_MSG_EVENT = 11,         /* an event for the parent's sinks */
	/* parent -> child */
	CC_MSG_SET_DEBUG = 12,     /* switch debug logging of a channel on or off */
	CC_MSG_SHUTDOWN = 13,      /* orderly stop */
	/* net -> keys (and parent -> keys for KEYS_LIST) */
	CC_MSG_KEY_INFO_REQ = 20,  /* public key and certificate of a role */
	CC_MSG_KEY_INFO = 21,
	CC_MSG_SIGN_REQ = 22,      /* sign a digest */
	CC_MSG_SIGN_TBS_REQ = 23,  /* sign a to-be-signed certificate or CRL (ca role) */
	CC_MSG_SIGN_RESP = 24,
	CC_MSG_DECRYPT_REQ = 25,
	CC_MSG_DECRYPT_RESP = 26,
	CC_MSG_ERROR = 27,         /* failure reply to any request */
	CC_MSG_KEYS_LIST_REQ = 28, /* all roles, for certconnctl keys list */
	CC_MSG_KEYS_LIST = 29,     /* one per role, then CC_MSG_KEYS_LIST_END */
	CC_MSG_KEYS_LIST_END = 30,
	/* certconnctl <-> parent control socket, and parent <-> net for the demo */
	CC_MSG_CTL_STATUS_REQ = 40,
	CC_MSG_CTL_STATUS = 41,
	CC_MSG_CTL_DEBUG_REQ = 42, /* same payload as SET_DEBUG */
	CC_MSG_CTL_OK = 43,
	CC_MSG_CTL_DEMO_REQ = 44,
	CC_MSG_CTL_DEMO_LINE = 45, /* one line of the demo's report; then CTL_OK or ERROR */
	CC_MSG_TYPE_MAX = 64
};

/* Name of a message type for log lines ("SIGN_REQ"), "UNKNOWN" if none. Never NULL. */
const char *cc_msg_type_name(uint16_t type);

/* ---- writer ---- */

struct cc_wbuf {
	uint8_t *p;   /* owned; wiped and freed by cc_wbuf_free */
	size_t len;
	size_t cap;
	int err;      /* sticky: set when a write would pass CC_MSG_MAX or malloc fails */
};

/* Starts a frame of the given type; the header's length is filled in by cc_wbuf_finish. */
int cc_wbuf_init(struct cc_wbuf *w, uint16_t type, uint64_t reqid);
void cc_w_u8(struct cc_wbuf *w, uint8_t v);
void cc_w_u16(struct cc_wbuf *w, uint16_t v);
void cc_w_u32(struct cc_wbuf *w, uint32_t v);
void cc_w_u64(struct cc_wbuf *w, uint64_t v);
void cc_w_str(struct cc_wbuf *w, const char *s);          /* NULL writes "" */
void cc_w_bytes(struct cc_wbuf *w, const void *b, size_t n);
/* Fills in the length; -1 if any write failed. The frame is w->p[0 .. w->len). */
int cc_wbuf_finish(struct cc_wbuf *w);
/* Wipes (the frame may hold a PIN or plaintext) and frees. */
void cc_wbuf_free(struct cc_wbuf *w);

/* ---- reader ---- */

struct cc_msg {
	uint16_t version;
	uint16_t type;
	uint64_t reqid;
	const uint8_t *payload; /* borrowed from the frame buffer */
	size_t payload_len;
};

/*
 * Checks a whole frame's header (length matches n, version, known type, cap) and fills m,
 * borrowing from frame. -1 with a reason in *why (static string) on a bad header.
 */
int cc_msg_parse(const uint8_t *frame, size_t n, struct cc_msg *m, const char **why);

struct cc_rbuf {
	const uint8_t *p;
	size_t len;
	size_t off;
	int err;          /* sticky */
	const char *why;  /* first failure, static string */
};

void cc_rbuf_init(struct cc_rbuf *r, const struct cc_msg *m);
uint8_t cc_r_u8(struct cc_rbuf *r);
uint16_t cc_r_u16(struct cc_rbuf *r);
uint32_t cc_r_u32(struct cc_rbuf *r);
uint64_t cc_r_u64(struct cc_rbuf *r);
/* Borrowed from the frame; NUL-terminated and free of interior NULs; "" after an error. */
const char *cc_r_str(struct cc_rbuf *r);
/* Borrowed; *n is set; NULL (and *n 0) after an error or for an empty field. */
const uint8_t *cc_r_bytes(struct cc_rbuf *r, size_t *n);
/* 0 if every read succeeded and nothing is left over, else -1 with r->why set. */
int cc_r_end(struct cc_rbuf *r);

#endif
