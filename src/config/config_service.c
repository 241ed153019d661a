/* "net.service": the upstream service client (include/certconn/config_service.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "certconn/config_service.h"
#include "config_sections.h"

#define SVC_STR_MAX 4095

static const char *const feature_names[] = { "pkcs", "pkcs-recrypt", "pfx-import", "revoke",
	"scep" };

uint32_t
cc_service_feature_bit(const char *name)
{
	for (size_t i = 0; i < sizeof(feature_names) / sizeof(feature_names[0]); i++)
		if (strcmp(name, feature_names[i]) == 0)
			return 1u << i;
	return 0;
}

const char *
cc_service_feature_name(uint32_t bit)
{
	for (size_t i = 0; i < sizeof(feature_names) / sizeof(feature_names[0]); i++)
		if (bit == 1u << i)
			return feature_names[i];
	return NULL;
}

static int
opt_str(struct cc_jck *j, const struct cc_jnode *obj, const char *key, const char *def,
    char **out)
{
	return cc_jck_opt_str(j, obj, key, def, SVC_STR_MAX, out);
}

/* An optional absolute path; must_exist: a regular file. */
static int
opt_path(struct cc_jck *j, const struct cc_jnode *obj, const char *key, bool must_exist,
    char **out)
{
	struct cc_jnode m;
	struct stat st;

	if (opt_str(j, obj, key, NULL, out) == -1 || *out == NULL)
		return *out == NULL && !j->failed ? 0 : -1;
	cc_jck_member(obj, key, &m);
	if ((*out)[0] != '/')
		return cc_jck_fail(j, &m, "must be an absolute path");
	if (must_exist) {
		if (stat(*out, &st) == -1)
			return cc_jck_fail(j, &m, "%s: %s", *out, strerror(errno));
		if (!S_ISREG(st.st_mode))
			return cc_jck_fail(j, &m, "%s: not a regular file", *out);
	}
	return 0;
}

/* An http(s) URL (https required unless http_ok); a trailing slash is dropped. */
static int
opt_url(struct cc_jck *j, const struct cc_jnode *obj, const char *key, const char *def,
    bool http_ok, char **out)
{
	struct cc_jnode m;
	size_t n;

	if (opt_str(j, obj, key, def, out) == -1 || *out == NULL)
		return *out == NULL && !j->failed ? 0 : -1;
	if (!cc_jck_member(obj, key, &m))
		m = *obj;
	if (strncasecmp(*out, "https://", 8) != 0 &&
	    !(http_ok && strncasecmp(*out, "http://", 7) == 0))
		return cc_jck_fail(j, &m, http_ok ? "must be an http:// or https:// URL" :
		    "must be an https:// URL");
	if (strpbrk(*out, " \t\r\n\"") != NULL)
		return cc_jck_fail(j, &m, "not a URL");
	n = strlen(*out);
	while (n > 8 && (*out)[n - 1] == '/')
		(*out)[--n] = '\0';
	return 0;
}

static int
opt_u32(struct cc_jck *j, const struct cc_jnode *obj, const char *key, uint32_t def,
    uint32_t min, uint32_t max, uint32_t *out)
{
	uint64_t v;

	if (cc_jck_opt_uint(j, obj, key, def, min, max, &v) == -1)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static int
check_features(struct cc_jck *j, const struct cc_jnode *obj, uint32_t *mask)
{
	struct cc_jnode m, e;
	const cJSON *it;
	const char *s;
	size_t n;
	uint32_t i = 0, bit;

	*mask = 0;
	if (!cc_jck_member(obj, "features", &m))
		return 0;
	if (cc_jck_array(j, &m, 5, &n) == -1)
		return -1;
	for (it = m.item->child; it != NULL; it = it->next, i++) {
		cc_jck_element(&m, it, i, &e);
		if (cc_jck_str(j, &e, 32, &s) == -1)
			return -1;
		bit = cc_service_feature_bit(s);
		if (bit == 0)
			return cc_jck_fail(j, &e, "unknown feature \"%s\" (pkcs, pkcs-recrypt, "
			    "pfx-import, revoke, scep)", s);
		if (*mask & bit)
			return cc_jck_fail(j, &e, "\"%s\" is listed twice", s);
		*mask |= bit;
	}
	return 0;
}

static int
check_proxy(struct cc_jck *j, const struct cc_jnode *pn, struct cc_config_service *s)
{
	static const char *const keys[] = { "url", "username", "password_file", "no_proxy",
		NULL };
	struct cc_jnode m;

	if (cc_jck_object(j, pn, keys, 8) == -1)
		return -1;
	if (!cc_jck_member(pn, "url", &m))
		return cc_jck_fail_missing(j, pn, "url");
	if (opt_url(j, pn, "url", NULL, true, &s->proxy_url) == -1 ||
	    opt_str(j, pn, "username", NULL, &s->proxy_username) == -1 ||
	    opt_path(j, pn, "password_file", true, &s->proxy_password_file) == -1 ||
	    opt_str(j, pn, "no_proxy", NULL, &s->no_proxy) == -1)
		return -1;
	if ((s->proxy_username == NULL) != (s->proxy_password_file == NULL))
		return cc_jck_fail(j, pn, "username and password_file go together");
	return 0;
}

static int
check_intune(struct cc_jck *j, const struct cc_jnode *in, struct cc_config_service *s)
{
	static const char *const keys[] = { "tenant", "client_id", "client_secret_file",
		"login_url", "graph_url", "intune_resource", "scep_api_version",
		"revocation_api_version", NULL };
	static const char *const req[] = { "tenant", "client_id", "client_secret_file", NULL };

	if (cc_jck_object(j, in, keys, 16) == -1)
		return -1;
	for (size_t k = 0; req[k] != NULL; k++) {
		struct cc_jnode m;
		if (!cc_jck_member(in, req[k], &m))
			return cc_jck_fail_missing(j, in, req[k]);
	}
	if (opt_str(j, in, "tenant", NULL, &s->tenant) == -1 ||
	    opt_str(j, in, "client_id", NULL, &s->client_id) == -1 ||
	    opt_path(j, in, "client_secret_file", true, &s->client_secret_file) == -1 ||
	    opt_url(j, in, "login_url", "https://login.microsoftonline.com", false,
	    &s->login_url) == -1 ||
	    opt_url(j, in, "graph_url", "https://graph.microsoft.com", false, &s->graph_url) ==
	    -1 ||
	    opt_str(j, in, "intune_resource", "https://api.manage.microsoft.com/",
	    &s->intune_resource) == -1 ||
	    opt_str(j, in, "scep_api_version", "2018-02-20", &s->scep_api_version) == -1 ||
	    opt_str(j, in, "revocation_api_version", "5019-05-05", &s->revocation_api_version) ==
	    -1)
		return -1;
	if (strpbrk(s->tenant, "/?# ") != NULL) {
		struct cc_jnode m;
		cc_jck_member(in, "tenant", &m);
		return cc_jck_fail(j, &m, "not a tenant name or id");
	}
	return 0;
}

int
cc_config_check_service(struct cc_jck *j, const struct cc_jnode *n, struct cc_config_service **out)
{
	static const char *const keys[] = { "mode", "url", "ca_file", "client_cert",
		"client_key_role", "features", "health_interval_s", "poll_interval_s", "timeout_s", "lease_s",
		"renew_before_days", "retry", "proxy", "intune", NULL };
	static const char *const rkeys[] = { "base_ms", "max_ms", "max_attempts", NULL };
	struct cc_config_service *s;
	struct cc_jnode m, sub;
	const char *mode;

	*out = NULL;
	if (cc_jck_object(j, n, keys, 32) == -1)
		return -1;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return cc_jck_fail(j, n, "out of memory");
	if (!cc_jck_member(n, "mode", &m)) {
		cc_jck_fail_missing(j, n, "mode");
		goto fail;
	}
	if (cc_jck_str(j, &m, 16, &mode) == -1)
		goto fail;
	if (strcmp(mode, "hub") == 0)
		s->mode = CC_SERVICE_HUB;
	else if (strcmp(mode, "intune") == 0)
		s->mode = CC_SERVICE_INTUNE;
	else {
		cc_jck_fail(j, &m, "must be \"hub\" or \"intune\"");
		goto fail;
	}
	if (opt_url(j, n, "url", NULL, false, &s->url) == -1 ||
	    opt_path(j, n, "ca_file", true, &s->ca_file) == -1 ||
	    opt_path(j, n, "client_cert", false, &s->client_cert) == -1 ||
	    opt_str(j, n, "client_key_role", "client", &s->client_key_role) == -1 ||
	    check_features(j, n, &s->features) == -1 ||
	    opt_u32(j, n, "health_interval_s", 60, 1, 86400, &s->health_interval_s) == -1 ||
	    opt_u32(j, n, "poll_interval_s", 30, 1, 3600, &s->poll_interval_s) == -1 ||
	    opt_u32(j, n, "timeout_s", 30, 1, 600, &s->timeout_s) == -1 ||
	    opt_u32(j, n, "lease_s", 300, 30, 3600, &s->lease_s) == -1 ||
	    opt_u32(j, n, "renew_before_days", 30, 1, 3650, &s->renew_before_days) == -1)
		goto fail;
	s->retry_base_ms = 1000;
	s->retry_max_ms = 300000;
	s->retry_max_attempts = 8;
	if (cc_jck_member(n, "retry", &sub)) {
		if (cc_jck_object(j, &sub, rkeys, 4) == -1 ||
		    opt_u32(j, &sub, "base_ms", 1000, 10, 60000, &s->retry_base_ms) == -1 ||
		    opt_u32(j, &sub, "max_ms", 300000, 10, 3600000, &s->retry_max_ms) == -1 ||
		    opt_u32(j, &sub, "max_attempts", 8, 1, 100, &s->retry_max_attempts) == -1)
			goto fail;
		if (s->retry_max_ms < s->retry_base_ms) {
			cc_jck_fail(j, &sub, "max_ms must not be less than base_ms");
			goto fail;
		}
	}
	if (cc_jck_member(n, "proxy", &sub) && check_proxy(j, &sub, s) == -1)
		goto fail;
	if (s->mode == CC_SERVICE_HUB) {
		if (s->url == NULL) {
			cc_jck_fail_missing(j, n, "url");
			goto fail;
		}
		if (cc_jck_member(n, "intune", &sub)) {
			cc_jck_fail(j, &sub, "only for \"mode\": \"intune\"");
			goto fail;
		}
	} else {
		if (!cc_jck_member(n, "intune", &sub)) {
			cc_jck_fail_missing(j, n, "intune");
			goto fail;
		}
		if (check_intune(j, &sub, s) == -1)
			goto fail;
		/* Only SCEP validation and revocation are public in Intune. */
		if ((s->features & ~(CC_FEATURE_SCEP | CC_FEATURE_REVOKE)) != 0) {
			cc_jck_member(n, "features", &m);
			cc_jck_fail(j, &m, "Intune mode serves only scep and revoke (its other "
			    "connector APIs are not public)");
			goto fail;
		}
	}
	*out = s;
	return 0;
fail:
	cc_config_service_free(s);
	return -1;
}

void
cc_config_service_free(struct cc_config_service *s)
{
	if (s == NULL)
		return;
	free(s->url);
	free(s->ca_file);
	free(s->client_cert);
	free(s->client_key_role);
	free(s->proxy_url);
	free(s->proxy_username);
	free(s->proxy_password_file);
	free(s->no_proxy);
	free(s->tenant);
	free(s->client_id);
	free(s->client_secret_file);
	free(s->login_url);
	free(s->graph_url);
	free(s->intune_resource);
	free(s->scep_api_version);
	free(s->revocation_api_version);
	free(s);
}
