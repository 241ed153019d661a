/*
 * certconn-hub's configuration file (certconn-hub(8)): JSON, checked with the same helper as
 * certconnd's config (policy/jsonck.h), so every error names file:line:col and the key.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "certconn/util.h"
#include "hub.h"
#include "hub_conf.h"
#include "jsonck.h"

#define STR_MAX 4095

static int
get_str(struct cc_jck *j, const struct cc_jnode *obj, const char *key, const char *def,
    bool required, char **out)
{
	struct cc_jnode m;
	const char *s;

	*out = NULL;
	if (!cc_jck_member(obj, key, &m)) {
		if (required)
			return cc_jck_fail_missing(j, obj, key);
		if (def != NULL && (*out = strdup(def)) == NULL)
			return cc_jck_fail(j, obj, "out of memory");
		return 0;
	}
	if (cc_jck_str(j, &m, STR_MAX, &s) == -1)
		return -1;
	*out = strdup(s);
	return *out != NULL ? 0 : cc_jck_fail(j, &m, "out of memory");
}

static int
get_path(struct cc_jck *j, const struct cc_jnode *obj, const char *key, bool required,
    bool must_exist, char **out)
{
	struct cc_jnode m;
	struct stat st;

	if (get_str(j, obj, key, NULL, required, out) == -1)
		return -1;
	if (*out == NULL)
		return 0;   /* optional and absent */
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

static int
get_u32(struct cc_jck *j, const struct cc_jnode *obj, const char *key, uint32_t def,
    uint32_t min, uint32_t max, uint32_t *out)
{
	uint64_t v;

	if (cc_jck_opt_uint(j, obj, key, def, min, max, &v) == -1)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

int
hub_parse_listen(const char *s, char *host, size_t hostlen, uint16_t *port)
{
	const char *colon;
	char *end;
	long p;
	size_t hl;

	if (s[0] == '[') {
		const char *rb = strchr(s, ']');
		if (rb == NULL || rb[1] != ':')
			return -1;
		hl = (size_t)(rb - s - 1);
		if (hl == 0 || hl >= hostlen)
			return -1;
		memcpy(host, s + 1, hl);
		host[hl] = '\0';
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL || colon == s || memchr(s, ':', (size_t)(colon - s)) != NULL)
			return -1;
		hl = (size_t)(colon - s);
		if (hl >= hostlen)
			return -1;
		memcpy(host, s, hl);
		host[hl] = '\0';
	}
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || colon[1] == '\0' || p < 0 || p > 65535)
		return -1;
	*port = (uint16_t)p;
	return 0;
}

static int
check_ca(struct cc_jck *j, const struct cc_jnode *cn, struct hub_conf *c, bool files)
{
	static const char *const keys[] = { "module", "env", "key", "pin_file", "cert", NULL };
	struct cc_jnode m, e;
	const cJSON *it;
	const char *s;
	uint32_t i = 0;
	size_t len = 0;

	if (cc_jck_object(j, cn, keys, 8) == -1 ||
	    get_path(j, cn, "module", true, true, &c->ca_module) == -1 ||
	    get_str(j, cn, "key", NULL, true, &c->ca_key_uri) == -1 ||
	    get_path(j, cn, "pin_file", true, files, &c->ca_pin_file) == -1 ||
	    get_path(j, cn, "cert", true, files, &c->ca_cert) == -1)
		return -1;
	if (strncmp(c->ca_key_uri, "pkcs11:", 7) != 0) {
		cc_jck_member(cn, "key", &m);
		return cc_jck_fail(j, &m, "must be a pkcs11: URI");
	}
	if (cc_jck_member(cn, "env", &m)) {
		/* One variable: SoftHSM's configuration file name is the one module knob needed. */
		if (cc_jck_object(j, &m, NULL, 1) == -1)
			return -1;
		for (it = m.item->child; it != NULL; it = it->next, i++) {
			e = (struct cc_jnode){ it, &m, i, it->string };
			if (cc_jck_str(j, &e, STR_MAX, &s) == -1)
				return -1;
			len = strlen(it->string) + 1 + strlen(s) + 1;
			c->ca_module_env = malloc(len);
			if (c->ca_module_env == NULL)
				return cc_jck_fail(j, &e, "out of memory");
			snprintf(c->ca_module_env, len, "%s=%s", it->string, s);
		}
	}
	return 0;
}

static int
check_versions(struct cc_jck *j, const struct cc_jnode *vn, struct hub_conf *c)
{
	static const char *const keys[] = { "version", "released", NULL };
	struct cc_jnode e, m;
	const cJSON *it;
	const char *s;
	size_t n;
	uint32_t i = 0;

	if (cc_jck_array(j, vn, 1000, &n) == -1)
		return -1;
	c->versions = calloc(n ? n : 1, sizeof(*c->versions));
	if (c->versions == NULL)
		return cc_jck_fail(j, vn, "out of memory");
	for (it = vn->item->child; it != NULL; it = it->next, i++) {
		struct hub_version_seed *v = &c->versions[c->nversions];

		cc_jck_element(vn, it, i, &e);
		if (cc_jck_object(j, &e, keys, 2) == -1)
			return -1;
		if (!cc_jck_member(&e, "version", &m))
			return cc_jck_fail_missing(j, &e, "version");
		if (cc_jck_str(j, &m, HUB_VERSION_MAX, &s) == -1)
			return -1;
		if (!hub_version_ok(s))
			return cc_jck_fail(j, &m, "not a version (N.N.N)");
		v->version = strdup(s);
		if (v->version == NULL)
			return cc_jck_fail(j, &m, "out of memory");
		c->nversions++;
		if (!cc_jck_member(&e, "released", &m))
			return cc_jck_fail_missing(j, &e, "released");
		if (cc_jck_str(j, &m, 40, &s) == -1)
			return -1;
		if (hub_time_parse(s, &v->released) == -1)
			return cc_jck_fail(j, &m, "not a date (YYYY-MM-DD) or UTC time");
	}
	return 0;
}

int
hub_conf_load_ex(const char *path, struct hub_conf *c, bool files, char *err, size_t errlen)
{
	static const char *const keys[] = { "listen", "state_dir", "tls", "ca",
		"admin_token_file", "client_cert_days", "health_interval_s", "unhealthy_after_s",
		"max_connectors_per_tenant", "lease", "lifecycle", "max_body_bytes", NULL };
	static const char *const tls_keys[] = { "cert", "key", NULL };
	static const char *const lease_keys[] = { "default_s", "min_s", "max_s", "max_attempts",
		NULL };
	static const char *const life_keys[] = { "support_months", "block_months",
		"refuse_blocked", "versions", NULL };
	struct cc_jck j;
	struct cc_jnode root, m, sub;
	char *listen = NULL;
	uint8_t *text = NULL;
	size_t len;
	uint64_t v;
	int ret = -1;

	memset(c, 0, sizeof(*c));
	memset(&j, 0, sizeof(j));
	if (errlen > 0)
		err[0] = '\0';
	if (cc_read_file(path, CC_JCK_MAX_TEXT, &text, &len) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	c->path = strdup(path);
	if (cc_jck_parse(&j, path, (char *)text, len, err, errlen, NULL, &root) == -1)
		goto out;
	if (cc_jck_object(&j, &root, keys, 32) == -1 ||
	    get_str(&j, &root, "listen", "127.0.0.1:8443", false, &listen) == -1 ||
	    get_path(&j, &root, "state_dir", true, false, &c->state_dir) == -1 ||
	    get_path(&j, &root, "admin_token_file", true, files, &c->admin_token_file) == -1 ||
	    get_u32(&j, &root, "client_cert_days", 365, 1, 3650, &c->client_cert_days) == -1 ||
	    get_u32(&j, &root, "health_interval_s", 60, 1, 86400, &c->health_interval_s) == -1 ||
	    get_u32(&j, &root, "unhealthy_after_s", 0, 0, 864000, &c->unhealthy_after_s) == -1 ||
	    get_u32(&j, &root, "max_connectors_per_tenant", 100, 1, 100, &c->max_connectors) ==
	    -1 ||
	    cc_jck_opt_uint(&j, &root, "max_body_bytes", HUB_BODY_MAX_DEFAULT, 65536,
	    HUB_BODY_MAX_DEFAULT, &v) == -1)
		goto out;
	c->max_body_bytes = v;
	if (hub_parse_listen(listen, c->host, sizeof(c->host), &c->port) == -1) {
		cc_jck_member(&root, "listen", &m);
		cc_jck_fail(&j, &m, "expected host:port or [v6]:port");
		goto out;
	}
	if (!cc_jck_member(&root, "tls", &sub)) {
		cc_jck_fail_missing(&j, &root, "tls");
		goto out;
	}
	if (cc_jck_object(&j, &sub, tls_keys, 4) == -1 ||
	    get_path(&j, &sub, "cert", true, files, &c->tls_cert) == -1 ||
	    get_path(&j, &sub, "key", true, files, &c->tls_key) == -1)
		goto out;
	if (!cc_jck_member(&root, "ca", &sub)) {
		cc_jck_fail_missing(&j, &root, "ca");
		goto out;
	}
	if (check_ca(&j, &sub, c, files) == -1)
		goto out;
	c->lease_default_s = 300;
	c->lease_min_s = 30;
	c->lease_max_s = 3600;
	c->max_attempts = 10;
	if (cc_jck_member(&root, "lease", &sub) &&
	    (cc_jck_object(&j, &sub, lease_keys, 8) == -1 ||
	    get_u32(&j, &sub, "min_s", 30, 1, 86400, &c->lease_min_s) == -1 ||
	    get_u32(&j, &sub, "max_s", 3600, 1, 86400, &c->lease_max_s) == -1 ||
	    get_u32(&j, &sub, "default_s", 300, 1, 86400, &c->lease_default_s) == -1 ||
	    get_u32(&j, &sub, "max_attempts", 10, 1, 1000, &c->max_attempts) == -1))
		goto out;
	if (c->lease_min_s > c->lease_max_s || c->lease_default_s < c->lease_min_s ||
	    c->lease_default_s > c->lease_max_s) {
		cc_jck_fail(&j, &sub, "needs min_s <= default_s <= max_s");
		goto out;
	}
	c->support_months = 6;
	c->block_months = 18;
	if (cc_jck_member(&root, "lifecycle", &sub)) {
		if (cc_jck_object(&j, &sub, life_keys, 8) == -1 ||
		    get_u32(&j, &sub, "support_months", 6, 1, 120, &c->support_months) == -1 ||
		    get_u32(&j, &sub, "block_months", 18, 1, 240, &c->block_months) == -1 ||
		    cc_jck_opt_bool(&j, &sub, "refuse_blocked", false, &c->refuse_blocked) == -1)
			goto out;
		if (c->block_months < c->support_months) {
			cc_jck_fail(&j, &sub, "block_months must not be less than support_months");
			goto out;
		}
		if (cc_jck_member(&sub, "versions", &m) && check_versions(&j, &m, c) == -1)
			goto out;
	}
	len = strlen(c->state_dir) + sizeof("/hub.db");
	c->db_path = malloc(len);
	if (c->db_path == NULL)
		goto out;
	snprintf(c->db_path, len, "%s/hub.db", c->state_dir);
	ret = 0;
out:
	if (ret == -1 && j.failed == false && err[0] == '\0')
		snprintf(err, errlen, "%s: out of memory", path);
	if (j.root != NULL || j.ix.v != NULL)
		cc_jck_done(&j);
	free(listen);
	free(text);
	if (ret == -1)
		hub_conf_free(c);
	return ret;
}

int
hub_conf_load(const char *path, struct hub_conf *c, char *err, size_t errlen)
{
	return hub_conf_load_ex(path, c, true, err, errlen);
}

void
hub_conf_free(struct hub_conf *c)
{
	free(c->path);
	free(c->state_dir);
	free(c->db_path);
	free(c->tls_cert);
	free(c->tls_key);
	free(c->ca_module);
	free(c->ca_module_env);
	free(c->ca_key_uri);
	free(c->ca_pin_file);
	free(c->ca_cert);
	free(c->admin_token_file);
	for (size_t i = 0; i < c->nversions; i++)
		free(c->versions[i].version);
	free(c->versions);
	memset(c, 0, sizeof(*c));
}
