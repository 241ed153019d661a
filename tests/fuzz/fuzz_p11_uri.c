/*
 * The RFC 7512 URI parser (hsm/p11_uri.c) on arbitrary text: no crash, no read past the
 * string, and whatever it accepts survives a format/parse round trip unchanged.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "p11_uri.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	struct p11_uri u, v;
	const char *why;
	char buf[4 * P11_URI_MAX];

	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (p11_uri_parse(s, &u, &why) == 0) {
		if (why != NULL)
			abort();
		/* token and object as text, id as bytes: formatted and parsed back the same */
		if (u.has_token && u.has_object && strlen(u.token) == strnlen(u.token, 33) &&
		    p11_uri_format(buf, sizeof(buf), u.token, u.object, u.has_id ? u.id : NULL,
		    u.id_len) == 0) {
			if (p11_uri_parse(buf, &v, &why) != 0 || strcmp(u.token, v.token) != 0 ||
			    strcmp(u.object, v.object) != 0 || u.id_len != v.id_len ||
			    memcmp(u.id, v.id, u.id_len) != 0)
				abort();
		}
	} else if (why == NULL) {
		abort();
	}
	free(s);
	return 0;
}
