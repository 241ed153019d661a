/* UTF-8 checks and the error rate limiter of the event module. */
#include <stdlib.h>
#include <string.h>

#include "certconn/util.h"
#include "event_int.h"

/* Length of the well-formed sequence at s (Unicode 15, table 3-7), 0 if ill-formed. */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t len, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0; /* overlong */
		else if (c == 0xed)
			hi = 0x9f; /* surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90; /* overlong */
		else if (c == 0xf4)
			hi = 0x8f; /* past U+10FFFF */
	} else
		return 0;
	if (n < len)
		return 0;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

int
ev_utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t off = 0, k;

	while (off < n) {
		if ((k = utf8_seq(p + off, n - off)) == 0)
			return 0;
		off += k;
	}
	return 1;
}

char *
ev_utf8_clean(const char *s, size_t max)
{
	static const char repl[] = "\xef\xbf\xbd";
	const unsigned char *p;
	size_t n, off = 0, out = 0, cap, k;
	char *r;

	if (s == NULL)
		s = "";
	p = (const unsigned char *)s;
	n = strlen(s);
	/* Each input byte yields at most 3 output bytes (a replacement). */
	cap = n > max / 3 ? max : n * 3;
	if ((r = malloc(cap + 1)) == NULL)
		return NULL;
	while (off < n) {
		const char *piece;

		if ((k = utf8_seq(p + off, n - off)) == 0) {
			piece = repl;
			k = 1;
			if (out + 3 > cap)
				break;
			memcpy(r + out, piece, 3);
			out += 3;
		} else {
			if (out + k > cap)
				break;
			memcpy(r + out, p + off, k);
			out += k;
		}
		off += k;
	}
	r[out] = '\0';
	return r;
}

int
ev_rl_allow(struct ev_ratelimit *rl, uint64_t *suppressed)
{
	uint64_t now = cc_now_ms();

	if (rl->last_ms != 0 && now - rl->last_ms < EV_RL_INTERVAL_MS) {
		rl->suppressed++;
		return 0;
	}
	rl->last_ms = now;
	*suppressed = rl->suppressed;
	rl->suppressed = 0;
	return 1;
}

int
ev_role_valid(const char *role)
{
	size_t i;

	if (role == NULL)
		return 1;
	for (i = 0; role[i] != '\0'; i++) {
		char c = role[i];

		if (i >= CC_EVENT_ROLE_MAX)
			return 0;
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}
