/* Small helpers of the hub: times, ids, hashes, base64, versions, features. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "hub.h"

static const char *const feature_names[] = { "pkcs", "pkcs-recrypt", "pfx-import", "revoke",
	"scep" };

uint32_t
hub_feature_bit(const char *name)
{
	for (size_t i = 0; i < sizeof(feature_names) / sizeof(feature_names[0]); i++)
		if (strcmp(name, feature_names[i]) == 0)
			return 1u << i;
	return 0;
}

const char *
hub_feature_name(uint32_t bit)
{
	for (size_t i = 0; i < sizeof(feature_names) / sizeof(feature_names[0]); i++)
		if (bit == 1u << i)
			return feature_names[i];
	return NULL;
}

cJSON *
hub_features_json(uint32_t mask)
{
	cJSON *a = cJSON_CreateArray();

	for (size_t i = 0; a != NULL && i < sizeof(feature_names) / sizeof(feature_names[0]); i++)
		if ((mask & (1u << i)) != 0 &&
		    !cJSON_AddItemToArray(a, cJSON_CreateString(feature_names[i]))) {
			cJSON_Delete(a);
			return NULL;
		}
	return a;
}

int64_t
hub_now(const struct hub *h)
{
	return h->clock != NULL ? h->clock(h->clock_arg) : (int64_t)time(NULL);
}

const char *
hub_time_str(int64_t t, char *buf)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (gmtime_r(&tt, &tm) == NULL || strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, 32, "1970-01-01T00:00:00Z");
	return buf;
}

static int
digits(const char *s, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

int
hub_time_parse(const char *s, int64_t *out)
{
	struct tm tm;
	int y, mo, d, h = 0, mi = 0, se = 0;
	size_t len = strlen(s);
	const char *p;

	if (len < 10 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) ||
	    s[7] != '-' || digits(s + 8, 2, &d))
		return -1;
	p = s + 10;
	if (*p != '\0') {
		if (strlen(p) < 10 || p[0] != 'T' || digits(p + 1, 2, &h) || p[3] != ':' ||
		    digits(p + 4, 2, &mi) || p[6] != ':' || digits(p + 7, 2, &se))
			return -1;
		p += 9;
		if (*p == '.') {
			p++;
			if (!isdigit((unsigned char)*p))
				return -1;
			while (isdigit((unsigned char)*p))
				p++;
		}
		if (strcmp(p, "Z") != 0)
			return -1;
	}
	if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
	    se > 60)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = se;
	*out = (int64_t)timegm(&tm);
	/* timegm normalises 31 February into March: refuse dates that do not exist. */
	{
		struct tm back;
		time_t tt = (time_t)*out;

		if (gmtime_r(&tt, &back) == NULL || back.tm_mday != d || back.tm_mon != mo - 1)
			return -1;
	}
	return 0;
}

int64_t
hub_add_months(int64_t t, int months)
{
	static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	struct tm tm;
	time_t tt = (time_t)t;
	int y, m, last;

	if (gmtime_r(&tt, &tm) == NULL)
		return t;
	m = tm.tm_mon + months;
	y = tm.tm_year + 1900 + (m >= 0 ? m / 12 : -((11 - m) / 12));
	m = ((m % 12) + 12) % 12;
	last = mdays[m];
	if (m == 1 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		last = 29;
	tm.tm_year = y - 1900;
	tm.tm_mon = m;
	if (tm.tm_mday > last)
		tm.tm_mday = last;
	return (int64_t)timegm(&tm);
}

void
hub_uuid(char out[37])
{
	unsigned char b[16];

	if (RAND_bytes(b, sizeof(b)) != 1)
		abort(); /* no randomness: nothing the hub makes would be safe */
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	    b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
	    b[14], b[15]);
}

void
hub_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int mdlen = 0;

	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
		abort();
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

int
hub_b64_decode(const char *s, size_t max, uint8_t **out, size_t *outlen)
{
	size_t len = strlen(s), cap, pad = 0;
	uint8_t *buf;
	int n;

	*out = NULL;
	*outlen = 0;
	if (len == 0 || len % 4 != 0 || len / 4 * 3 > max + 2)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '=') {
			if (i < len - 2)
				return -1;
			pad++;
		} else if (pad > 0 || !(isalnum(c) || c == '+' || c == '/')) {
			return -1;
		}
	}
	cap = len / 4 * 3;
	buf = malloc(cap + 1);
	if (buf == NULL)
		return -1;
	n = EVP_DecodeBlock(buf, (const unsigned char *)s, (int)len);
	if (n < 0 || (size_t)n < pad || (size_t)n - pad > max) {
		free(buf);
		return -1;
	}
	*out = buf;
	*outlen = (size_t)n - pad;
	return 0;
}

char *
hub_b64_encode(const uint8_t *in, size_t len)
{
	char *out;

	if (len > (1u << 28))
		return NULL;
	out = malloc((len + 2) / 3 * 4 + 1);
	if (out == NULL)
		return NULL;
	EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	return out;
}

bool
hub_id_ok(const char *s)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++)
		if (!(isalnum((unsigned char)s[n]) || s[n] == '.' || s[n] == '_' || s[n] == ':' ||
		    s[n] == '-'))
			return false;
	return n >= 1 && n <= HUB_ID_MAX;
}

/* Versions are 1 to 4 dot-separated numbers of at most 9 digits: 0.1.0, 6.2203.12.0. */
bool
hub_version_ok(const char *s)
{
	int parts = 0, d = 0;

	if (strlen(s) > HUB_VERSION_MAX)
		return false;
	for (const char *p = s;; p++) {
		if (isdigit((unsigned char)*p)) {
			if (++d > 9)
				return false;
		} else if (*p == '.' || *p == '\0') {
			if (d == 0 || ++parts > 4)
				return false;
			d = 0;
			if (*p == '\0')
				break;
		} else {
			return false;
		}
	}
	return true;
}

int
hub_version_cmp(const char *a, const char *b)
{
	/* Missing parts count as 0 (1.2 == 1.2.0); anything but digits and dots ends it. */
	while (*a != '\0' || *b != '\0') {
		const char *a0 = a, *b0 = b;
		long x = strtol(a, (char **)&a, 10), y = strtol(b, (char **)&b, 10);

		if (x != y)
			return x < y ? -1 : 1;
		if (*a == '.')
			a++;
		if (*b == '.')
			b++;
		if (a == a0 && b == b0)
			break;
	}
	return 0;
}
