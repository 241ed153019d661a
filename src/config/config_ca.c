/* "net.ca": the local CA (include/certconn/config_ca.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/x509.h>

#include "certconn/config_ca.h"
#include "certconn/issuance.h"
#include "config_sections.h"

static int
ca_path(struct cc_jck *j, const struct cc_jnode *obj, const char *key, int must_exist,
    char **out)
{
	struct cc_jnode m;
	struct stat st;

	*out = NULL;
	if (!cc_jck_member(obj, key, &m))
		return 0;
	if (cc_jck_opt_str(j, obj, key, NULL, 1023, out) == -1)
		return -1;
	if ((*out)[0] != '/')
		return cc_jck_fail(j, &m, "must be an absolute path");
	if (must_exist && stat(*out, &st) == -1)
		return cc_jck_fail(j, &m, "%s: %s", *out, strerror(errno));
	if (must_exist && !S_ISREG(st.st_mode))
		return cc_jck_fail(j, &m, "%s: not a regular file", *out);
	return 0;
}

/* http(s)://host[:port][/path] without query, fragment, user info or trailing slash. */
static int
url_ok(const char *u)
{
	const char *p;

	if (strncmp(u, "http://", 7) == 0)
		p = u + 7;
	else if (strncmp(u, "https://", 8) == 0)
		p = u + 8;
	else
		return 0;
	if (*p == '\0' || *p == '/')
		return 0;
	for (; *p != '\0'; p++)
		if (*p <= 0x20 || *p >= 0x7f || strchr("?#@\\\"<>{}|^`", *p) != NULL)
			return 0;
	return u[strlen(u) - 1] != '/';
}

int
cc_config_check_ca(struct cc_jck *j, const struct cc_jnode *n, struct cc_config_ca **out)
{
	static const char *const keys[] = { "name", "base_url", "database", "crl_days", "chain",
		"next_ca", "ra_subject", "ra_validity_days", "cdp", "aia", NULL };
	struct cc_config_ca *c;
	struct cc_jnode m;
	const char *s = "ca";
	X509_NAME *nm = NULL;
	char why[256];
	uint64_t v;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return cc_jck_fail(j, n, "out of memory");
	if (cc_jck_object(j, n, keys, 16) == -1)
		goto fail;
	if (cc_jck_member(n, "name", &m)) {
		if (cc_jck_str(j, &m, CC_CA_NAME_MAX - 1, &s) == -1)
			goto fail;
		for (const char *p = s; *p != '\0'; p++)
			if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-')) {
				cc_jck_fail(j, &m, "use lower-case letters, digits and '-' only");
				goto fail;
			}
	}
	memcpy(c->name, s, strlen(s) + 1);
	if (cc_jck_opt_str(j, n, "base_url", NULL, 512, &c->base_url) == -1)
		goto fail;
	if (c->base_url != NULL && !url_ok(c->base_url)) {
		cc_jck_member(n, "base_url", &m);
		cc_jck_fail(j, &m, "expected http://host[:port][/path] or https://..., without a "
		    "query or a trailing '/'");
		goto fail;
	}
	if (ca_path(j, n, "database", 0, &c->database) == -1 ||
	    cc_jck_opt_uint(j, n, "crl_days", 7, 1, 3650, &v) == -1)
		goto fail;
	c->crl_days = (uint32_t)v;
	if (ca_path(j, n, "chain", 1, &c->chain) == -1 ||
	    ca_path(j, n, "next_ca", 1, &c->next_ca) == -1 ||
	    cc_jck_opt_str(j, n, "ra_subject", "CN=certconn SCEP RA", 512, &c->ra_subject) == -1)
		goto fail;
	if (strchr(c->ra_subject, '{') != NULL ||
	    cc_issuance_template_build(c->ra_subject, NULL, &nm, why, sizeof(why)) == -1) {
		cc_jck_member(n, "ra_subject", &m);
		cc_jck_fail(j, &m, "expected a name such as \"CN=certconn SCEP RA,O=Example\"");
		goto fail;
	}
	X509_NAME_free(nm);
	if (cc_jck_opt_uint(j, n, "ra_validity_days", 365, 1, 3650, &v) == -1)
		goto fail;
	c->ra_validity_days = (uint32_t)v;
	if (cc_jck_opt_bool(j, n, "cdp", true, &c->cdp) == -1 ||
	    cc_jck_opt_bool(j, n, "aia", true, &c->aia) == -1)
		goto fail;
	*out = c;
	return 0;
fail:
	cc_config_ca_free(c);
	return -1;
}

void
cc_config_ca_free(struct cc_config_ca *c)
{
	if (c == NULL)
		return;
	free(c->base_url);
	free(c->database);
	free(c->chain);
	free(c->next_ca);
	free(c->ra_subject);
	free(c);
}
