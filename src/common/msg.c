/* Frame codec: see include/certconn/msg.h. */
#include <stdlib.h>
#include <string.h>

#include "certconn/msg.h"

static const char *const type_names[CC_MSG_TYPE_MAX] = {
	[CC_MSG_CONF_KEYS] = "CONF_KEYS",
	[CC_MSG_CONF_ROLE] = "CONF_ROLE",
	[CC_MSG_CONF_PIN] = "CONF_PIN",
	[CC_MSG_CONF_NET] = "CONF_NET",
	[CC_MSG_CONF_LOG] = "CONF_LOG",
	[CC_MSG_CONF_END] = "CONF_END",
	[CC_MSG_READY] = "READY",
	[CC_MSG_EVENT] = "EVENT",
	[CC_MSG_SET_DEBUG] = "SET_DEBUG",
	[CC_MSG_SHUTDOWN] = "SHUTDOWN",
	[CC_MSG_KEY_INFO_REQ] = "KEY_INFO_REQ",
	[CC_MSG_KEY_INFO] = "KEY_INFO",
	[CC_MSG_SIGN_REQ] = "SIGN_REQ",
	[CC_MSG_SIGN_TBS_REQ] = "SIGN_TBS_REQ",
	[CC_MSG_SIGN_RESP] = "SIGN_RESP",
	[CC_MSG_DECRYPT_REQ] = "DECRYPT_REQ",
	[CC_MSG_DECRYPT_RESP] = "DECRYPT_RESP",
	[CC_MSG_ERROR] = "ERROR",
	[CC_MSG_KEYS_LIST_REQ] = "KEYS_LIST_REQ",
	[CC_MSG_KEYS_LIST] = "KEYS_LIST",
	[CC_MSG_KEYS_LIST_END] = "KEYS_LIST_END",
	[CC_MSG_CTL_STATUS_REQ] = "CTL_STATUS_REQ",
	[CC_MSG_CTL_STATUS] = "CTL_STATUS",
	[CC_MSG_CTL_DEBUG_REQ] = "CTL_DEBUG_REQ",
	[CC_MSG_CTL_OK] = "CTL_OK",
	[CC_MSG_CTL_DEMO_REQ] = "CTL_DEMO_REQ",
	[CC_MSG_CTL_DEMO_LINE] = "CTL_DEMO_LINE",
};

const char *
cc_msg_type_name(uint16_t type)
{
	if (type < CC_MSG_TYPE_MAX && type_names[type] != NULL)
		return type_names[type];
	return "UNKNOWN";
}

static void
put_be(uint8_t *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--) {
		p[i] = (uint8_t)(v & 0xff);
		v >>= 8;
	}
}

static uint64_t
get_be(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

static int
wbuf_reserve(struct cc_wbuf *w, size_t n)
{
	size_t need, ncap;
	uint8_t *np;

	if (w->err)
		return -1;
	if (n > CC_MSG_MAX || w->len > CC_MSG_MAX - n) {
		w->err = 1;
		return -1;
	}
	need = w->len + n;
	if (need <= w->cap)
		return 0;
	ncap = w->cap ? w->cap : 256;
	while (ncap < need)
		ncap *= 2;
	if (ncap > CC_MSG_MAX)
		ncap = CC_MSG_MAX;
	/* No realloc: the old buffer may hold secrets and must be wiped, not just released. */
	np = malloc(ncap);
	if (np == NULL) {
		w->err = 1;
		return -1;
	}
	if (w->p != NULL) {
		memcpy(np, w->p, w->len);
		explicit_bzero(w->p, w->cap);
		free(w->p);
	}
	w->p = np;
	w->cap = ncap;
	return 0;
}

int
cc_wbuf_init(struct cc_wbuf *w, uint16_t type, uint64_t reqid)
{
	memset(w, 0, sizeof(*w));
	if (wbuf_reserve(w, CC_MSG_HDR_LEN) == -1)
		return -1;
	put_be(w->p + 4, CC_MSG_VERSION, 2);
	put_be(w->p + 6, type, 2);
	put_be(w->p + 8, reqid, 8);
	w->len = CC_MSG_HDR_LEN;
	return 0;
}

static void
w_int(struct cc_wbuf *w, uint64_t v, int n)
{
	if (wbuf_reserve(w, (size_t)n) == -1)
		return;
	put_be(w->p + w->len, v, n);
	w->len += (size_t)n;
}

void cc_w_u8(struct cc_wbuf *w, uint8_t v) { w_int(w, v, 1); }
void cc_w_u16(struct cc_wbuf *w, uint16_t v) { w_int(w, v, 2); }
void cc_w_u32(struct cc_wbuf *w, uint32_t v) { w_int(w, v, 4); }
void cc_w_u64(struct cc_wbuf *w, uint64_t v) { w_int(w, v, 8); }

void
cc_w_str(struct cc_wbuf *w, const char *s)
{
	size_t n;

	if (s == NULL)
		s = "";
	n = strlen(s);
	if (n >= CC_MSG_STR_MAX) {
		w->err = 1;
		return;
	}
	w_int(w, (uint64_t)n + 1, 4);
	if (wbuf_reserve(w, n + 1) == -1)
		return;
	memcpy(w->p + w->len, s, n + 1);
	w->len += n + 1;
}

void
cc_w_bytes(struct cc_wbuf *w, const void *b, size_t n)
{
	if (n > CC_MSG_MAX) {
		w->err = 1;
		return;
	}
	w_int(w, n, 4);
	if (n == 0 || wbuf_reserve(w, n) == -1)
		return;
	memcpy(w->p + w->len, b, n);
	w->len += n;
}

int
cc_wbuf_finish(struct cc_wbuf *w)
{
	if (w->err || w->p == NULL || w->len > CC_MSG_MAX)
		return -1;
	put_be(w->p, w->len, 4);
	return 0;
}

void
cc_wbuf_free(struct cc_wbuf *w)
{
	if (w->p != NULL) {
		explicit_bzero(w->p, w->cap);
		free(w->p);
	}
	memset(w, 0, sizeof(*w));
}

int
cc_msg_parse(const uint8_t *frame, size_t n, struct cc_msg *m, const char **why)
{
	uint64_t len;

	memset(m, 0, sizeof(*m));
	if (n < CC_MSG_HDR_LEN) {
		*why = "frame shorter than its header";
		return -1;
	}
	len = get_be(frame, 4);
	if (len != n) {
		*why = "frame length does not match the header";
		return -1;
	}
	if (len > CC_MSG_MAX) {
		*why = "frame larger than the cap";
		return -1;
	}
	m->version = (uint16_t)get_be(frame + 4, 2);
	m->type = (uint16_t)get_be(frame + 6, 2);
	m->reqid = get_be(frame + 8, 8);
	if (m->version != CC_MSG_VERSION) {
		*why = "unsupported message version";
		return -1;
	}
	if (m->type >= CC_MSG_TYPE_MAX || type_names[m->type] == NULL) {
		*why = "unknown message type";
		return -1;
	}
	m->payload = frame + CC_MSG_HDR_LEN;
	m->payload_len = n - CC_MSG_HDR_LEN;
	return 0;
}

void
cc_rbuf_init(struct cc_rbuf *r, const struct cc_msg *m)
{
	r->p = m->payload;
	r->len = m->payload_len;
	r->off = 0;
	r->err = 0;
	r->why = NULL;
}

static int
r_fail(struct cc_rbuf *r, const char *why)
{
	if (!r->err) {
		r->err = 1;
		r->why = why;
	}
	return -1;
}

static uint64_t
r_int(struct cc_rbuf *r, int n)
{
	uint64_t v;

	if (r->err)
		return 0;
	if (r->len - r->off < (size_t)n) {
		r_fail(r, "truncated integer field");
		return 0;
	}
	v = get_be(r->p + r->off, n);
	r->off += (size_t)n;
	return v;
}

uint8_t cc_r_u8(struct cc_rbuf *r) { return (uint8_t)r_int(r, 1); }
uint16_t cc_r_u16(struct cc_rbuf *r) { return (uint16_t)r_int(r, 2); }
uint32_t cc_r_u32(struct cc_rbuf *r) { return (uint32_t)r_int(r, 4); }
uint64_t cc_r_u64(struct cc_rbuf *r) { return r_int(r, 8); }

const char *
cc_r_str(struct cc_rbuf *r)
{
	uint32_t n;
	const char *s;

	n = cc_r_u32(r);
	if (r->err)
		return "";
	if (n == 0 || n > CC_MSG_STR_MAX) {
		r_fail(r, "string length out of bounds");
		return "";
	}
	if (r->len - r->off < n) {
		r_fail(r, "truncated string field");
		return "";
	}
	s = (const char *)(r->p + r->off);
	if (s[n - 1] != '\0' || memchr(s, '\0', n - 1) != NULL) {
		r_fail(r, "string not NUL-terminated or with an interior NUL");
		return "";
	}
	r->off += n;
	return s;
}

const uint8_t *
cc_r_bytes(struct cc_rbuf *r, size_t *np)
{
	uint32_t n;
	const uint8_t *b;

	*np = 0;
	n = cc_r_u32(r);
	if (r->err)
		return NULL;
	if (r->len - r->off < n) {
		r_fail(r, "truncated byte field");
		return NULL;
	}
	if (n == 0)
		return NULL;
	b = r->p + r->off;
	r->off += n;
	*np = n;
	return b;
}

int
cc_r_end(struct cc_rbuf *r)
{
	if (r->err)
		return -1;
	if (r->off != r->len)
		return r_fail(r, "trailing bytes after the last field");
	return 0;
}
