/* RFC 7512 URI parser: see p11_uri.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "p11_uri.h"

/* RFC 7512 pk11-pchar without pct-encoded: unreserved and pk11-res-avail (plus "/" and "&",
 * which real-world URIs carry in labels and which cannot be confused with a separator). */
static int
plain_char(unsigned char c)
{
	if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
		return 1;
	return strchr("-._~:[]@!$'()*+,=/&", c) != NULL && c != '\0';
}

static int
hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Decodes s[0..n) into out (at most cap bytes). text: the value is a string, so %00 is
 * refused. Returns the decoded length or -1 with *why.
 */
static long
pct_decode(const char *s, size_t n, uint8_t *out, size_t cap, int text, const char **why)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		int hi, lo;

		if (c == '%') {
			if (n - i < 3) {
				*why = "truncated %-escape";
				return -1;
			}
			hi = hexval((unsigned char)s[i + 1]);
			lo = hexval((unsigned char)s[i + 2]);
			if (hi < 0 || lo < 0) {
				*why = "bad %-escape";
				return -1;
			}
			c = (unsigned char)(hi << 4 | lo);
			if (c == 0 && text) {
				*why = "%00 in a text attribute";
				return -1;
			}
			i += 2;
		} else if (!plain_char(c)) {
			*why = "character not allowed in a PKCS#11 URI (pct-encode it)";
			return -1;
		}
		if (o >= cap) {
			*why = "attribute value too long";
			return -1;
		}
		out[o++] = c;
	}
	return (long)o;
}

static int
text_attr(const char *v, size_t n, char *dst, size_t cap, const char **why)
{
	long r = pct_decode(v, n, (uint8_t *)dst, cap - 1, 1, why);

	if (r < 0)
		return -1;
	dst[r] = '\0';
	return 0;
}

int
p11_uri_parse(const char *s, struct p11_uri *u, const char **why)
{
	const char *p, *end;
	size_t total;

	memset(u, 0, sizeof(*u));
	*why = NULL;
	if (s == NULL) {
		*why = "no URI";
		return -1;
	}
	total = strnlen(s, P11_URI_MAX + 1);
	if (total > P11_URI_MAX) {
		*why = "URI too long";
		return -1;
	}
	if (strncmp(s, "pkcs11:", 7) != 0) {
		*why = "not a pkcs11: URI";
		return -1;
	}
	p = s + 7;
	end = s + total;
	if (memchr(p, '?', (size_t)(end - p)) != NULL) {
		/* The only query attributes of RFC 7512 carry PINs or module choices; keys gets
		 * both from its configuration, never from a URI. */
		if (strstr(p, "pin-value") != NULL)
			*why = "pin-value is not accepted in a key URI";
		else
			*why = "query attributes are not accepted in a key URI";
		return -1;
	}
	while (p < end) {
		const char *semi = memchr(p, ';', (size_t)(end - p));
		const char *stop = semi ? semi : end;
		const char *eq = memchr(p, '=', (size_t)(stop - p));
		size_t klen, vlen;
		const char *v;

		if (stop == p) {
			*why = "empty attribute";
			return -1;
		}
		if (eq == NULL) {
			*why = "attribute without '='";
			return -1;
		}
		klen = (size_t)(eq - p);
		v = eq + 1;
		vlen = (size_t)(stop - v);

#define KEY_IS(k) (klen == sizeof(k) - 1 && memcmp(p, k, klen) == 0)
#define ONCE(flag)                                                                       \
	do {                                                                                 \
		if (u->flag) {                                                                   \
			*why = "attribute given twice";                                              \
			return -1;                                                                   \
		}                                                                                \
		u->flag = 1;                                                                     \
	} while (0)

		if (KEY_IS("token")) {
			ONCE(has_token);
			if (text_attr(v, vlen, u->token, sizeof(u->token), why) == -1)
				return -1;
		} else if (KEY_IS("manufacturer")) {
			ONCE(has_manufacturer);
			if (text_attr(v, vlen, u->manufacturer, sizeof(u->manufacturer), why) == -1)
				return -1;
		} else if (KEY_IS("serial")) {
			ONCE(has_serial);
			if (text_attr(v, vlen, u->serial, sizeof(u->serial), why) == -1)
				return -1;
		} else if (KEY_IS("model")) {
			ONCE(has_model);
			if (text_attr(v, vlen, u->model, sizeof(u->model), why) == -1)
				return -1;
		} else if (KEY_IS("object")) {
			ONCE(has_object);
			if (text_attr(v, vlen, u->object, sizeof(u->object), why) == -1)
				return -1;
		} else if (KEY_IS("id")) {
			long r;

			ONCE(has_id);
			r = pct_decode(v, vlen, u->id, sizeof(u->id), 0, why);
			if (r < 0)
				return -1;
			if (r == 0) {
				*why = "empty id";
				return -1;
			}
			u->id_len = (size_t)r;
		} else if (KEY_IS("slot-id")) {
			char num[24];
			char *ep;
			unsigned long long n;

			ONCE(has_slot_id);
			if (vlen == 0 || vlen >= sizeof(num)) {
				*why = "bad slot-id";
				return -1;
			}
			memcpy(num, v, vlen);
			num[vlen] = '\0';
			for (size_t i = 0; i < vlen; i++) {
				if (num[i] < '0' || num[i] > '9') {
					*why = "slot-id is not a decimal number";
					return -1;
				}
			}
			errno = 0;
			n = strtoull(num, &ep, 10);
			if (*ep != '\0' || errno == ERANGE || n > (unsigned long)-1) {
				*why = "bad slot-id";
				return -1;
			}
			u->slot_id = (unsigned long)n;
		} else if (KEY_IS("type")) {
			static const struct {
				const char *name;
				enum p11_uri_type t;
			} types[] = {
				{ "private", P11_TYPE_PRIVATE }, { "public", P11_TYPE_PUBLIC },
				{ "cert", P11_TYPE_CERT },       { "secret-key", P11_TYPE_SECRET },
				{ "data", P11_TYPE_DATA },
			};
			size_t i;

			if (u->type != P11_TYPE_ANY) {
				*why = "attribute given twice";
				return -1;
			}
			for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
				if (strlen(types[i].name) == vlen && memcmp(types[i].name, v, vlen) == 0)
					break;
			}
			if (i == sizeof(types) / sizeof(types[0])) {
				*why = "unknown object type";
				return -1;
			}
			u->type = types[i].t;
		} else if (KEY_IS("pin-value") || KEY_IS("pin-source")) {
			*why = "pin-value is not accepted in a key URI";
			return -1;
		} else {
			*why = "unknown attribute in PKCS#11 URI";
			return -1;
		}
#undef KEY_IS
#undef ONCE
		p = semi ? semi + 1 : end;
		if (semi != NULL && p == end) {
			*why = "empty attribute";
			return -1;
		}
	}
	return 0;
}

static int
put_pct(char *buf, size_t len, size_t *off, const uint8_t *v, size_t n, int all)
{
	static const char hex[] = "0123456789ABCDEF";

	for (size_t i = 0; i < n; i++) {
		if (!all && plain_char(v[i]) && v[i] != '&' && v[i] != '/') {
			if (*off + 1 >= len)
				return -1;
			buf[(*off)++] = (char)v[i];
		} else {
			if (*off + 3 >= len)
				return -1;
			buf[(*off)++] = '%';
			buf[(*off)++] = hex[v[i] >> 4];
			buf[(*off)++] = hex[v[i] & 15];
		}
	}
	buf[*off] = '\0';
	return 0;
}

static int
put_str(char *buf, size_t len, size_t *off, const char *s)
{
	size_t n = strlen(s);

	if (*off + n >= len)
		return -1;
	memcpy(buf + *off, s, n + 1);
	*off += n;
	return 0;
}

int
p11_uri_format(char *buf, size_t len, const char *token, const char *object,
    const uint8_t *id, size_t id_len)
{
	size_t off = 0;

	if (len == 0)
		return -1;
	buf[0] = '\0';
	if (put_str(buf, len, &off, "pkcs11:token=") == -1 ||
	    put_pct(buf, len, &off, (const uint8_t *)token, strlen(token), 0) == -1 ||
	    put_str(buf, len, &off, ";object=") == -1 ||
	    put_pct(buf, len, &off, (const uint8_t *)object, strlen(object), 0) == -1)
		return -1;
	if (id != NULL && id_len > 0) {
		if (put_str(buf, len, &off, ";id=") == -1 ||
		    put_pct(buf, len, &off, id, id_len, 1) == -1)
			return -1;
	}
	return 0;
}
