/* "net.scep": the SCEP endpoint and its profiles (include/certconn/config_scep.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "certconn/config_scep.h"
#include "certconn/issuance.h"
#include "config_sections.h"

static int
file_path(struct cc_jck *j, const struct cc_jnode *obj, const char *key, char **out)
{
	struct cc_jnode m;
	struct stat st;

	*out = NULL;
	if (!cc_jck_member(obj, key, &m))
		return cc_jck_fail_missing(j, obj, key);
	if (cc_jck_opt_str(j, obj, key, NULL, 1023, out) == -1)
		return -1;
	if ((*out)[0] != '/')
		return cc_jck_fail(j, &m, "must be an absolute path");
	if (stat(*out, &st) == -1)
		return cc_jck_fail(j, &m, "%s: %s", *out, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return cc_jck_fail(j, &m, "%s: not a regular file", *out);
	return 0;
}

static int
role_name(struct cc_jck *j, const struct cc_jnode *obj, const char *key, const char *def,
    char *out)
{
	struct cc_jnode m;
	const char *s = def;

	if (cc_jck_member(obj, key, &m)) {
		if (cc_jck_str(j, &m, CC_SCEP_ROLE_MAX - 1, &s) == -1)
			return -1;
		if (strcmp(s, "ra") != 0 && strcmp(s, "ra-sign") != 0 &&
		    strcmp(s, "ra-encrypt") != 0)
			return cc_jck_fail(j, &m, "expected one of the RA roles ra, ra-sign, "
			    "ra-encrypt");
	}
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

static int
check_challenge(struct cc_jck *j, const struct cc_jnode *prof, struct cc_scep_profile *p)
{
	static const char *const keys[] = { "mode", "password_file", "ttl_s", "url",
		"secret_file", "timeout_ms", NULL };
	static const char *const modes[] = { "none", "static", "dynamic", "service", "webhook" };
	struct cc_jnode c, m;
	const char *s;
	uint64_t v;
	size_t i;

	p->challenge_ttl_s = 3600;
	p->webhook_timeout_ms = 5000;
	if (!cc_jck_member(prof, "challenge", &c))
		return cc_jck_fail_missing(j, prof, "challenge");
	if (cc_jck_object(j, &c, keys, 8) == -1)
		return -1;
	if (!cc_jck_member(&c, "mode", &m))
		return cc_jck_fail_missing(j, &c, "mode");
	if (cc_jck_str(j, &m, 16, &s) == -1)
		return -1;
	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (strcmp(modes[i], s) == 0)
			break;
	if (i == sizeof(modes) / sizeof(modes[0]))
		return cc_jck_fail(j, &m, "expected none, static, dynamic, service or webhook");
	p->challenge = (enum cc_scep_challenge_mode)i;
	/* Members that do not belong to the mode are mistakes, not ignored. */
	if (p->challenge != CC_SCEP_CHALLENGE_STATIC && cc_jck_member(&c, "password_file", &m))
		return cc_jck_fail(j, &m, "only for mode static");
	if (p->challenge != CC_SCEP_CHALLENGE_DYNAMIC && cc_jck_member(&c, "ttl_s", &m))
		return cc_jck_fail(j, &m, "only for mode dynamic");
	if (p->challenge != CC_SCEP_CHALLENGE_WEBHOOK) {
		if (cc_jck_member(&c, "url", &m) || cc_jck_member(&c, "secret_file", &m) ||
		    cc_jck_member(&c, "timeout_ms", &m))
			return cc_jck_fail(j, &m, "only for mode webhook");
	}
	switch (p->challenge) {
	case CC_SCEP_CHALLENGE_STATIC:
		return file_path(j, &c, "password_file", &p->password_file);
	case CC_SCEP_CHALLENGE_DYNAMIC:
		if (cc_jck_opt_uint(j, &c, "ttl_s", 3600, 60, 2592000, &v) == -1)
			return -1;
		p->challenge_ttl_s = (uint32_t)v;
		return 0;
	case CC_SCEP_CHALLENGE_WEBHOOK:
		if (!cc_jck_member(&c, "url", &m))
			return cc_jck_fail_missing(j, &c, "url");
		if (cc_jck_opt_str(j, &c, "url", NULL, 1024, &p->webhook_url) == -1)
			return -1;
		if (strncmp(p->webhook_url, "http://", 7) != 0 &&
		    strncmp(p->webhook_url, "https://", 8) != 0)
			return cc_jck_fail(j, &m, "expected an http:// or https:// URL");
		if (file_path(j, &c, "secret_file", &p->webhook_secret_file) == -1 ||
		    cc_jck_opt_uint(j, &c, "timeout_ms", 5000, 100, 60000, &v) == -1)
			return -1;
		p->webhook_timeout_ms = (uint32_t)v;
		return 0;
	default:
		return 0;
	}
}

static int
check_profile(struct cc_jck *j, const struct cc_jnode *n, struct cc_scep_profile *p)
{
	static const char *const keys[] = { "ra_role", "ra_sign_role", "ra_encrypt_role",
		"challenge", "des3", "manual_approval", "renewal", "renewal_window_days",
		"include_root", "issuance", NULL };
	struct cc_jnode m, iss;
	uint64_t v;

	for (const char *c = n->name; *c != '\0'; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-' ||
		    *c == '_'))
			return cc_jck_fail(j, n, "a profile name has lower-case letters, digits, '-' "
			    "and '_' only");
	if (n->name[0] == '\0' || strlen(n->name) >= CC_SCEP_PROFILE_NAME_MAX)
		return cc_jck_fail(j, n, "a profile name has 1 to %d characters",
		    CC_SCEP_PROFILE_NAME_MAX - 1);
	memcpy(p->name, n->name, strlen(n->name) + 1);
	if (cc_jck_object(j, n, keys, 16) == -1)
		return -1;
	if (cc_jck_member(n, "ra_role", &m) &&
	    (cc_jck_member(n, "ra_sign_role", &iss) || cc_jck_member(n, "ra_encrypt_role", &iss)))
		return cc_jck_fail(j, &iss, "give either ra_role or ra_sign_role and "
		    "ra_encrypt_role");
	if (role_name(j, n, "ra_role", "ra", p->ra_sign_role) == -1 ||
	    role_name(j, n, "ra_sign_role", p->ra_sign_role, p->ra_sign_role) == -1 ||
	    role_name(j, n, "ra_encrypt_role", p->ra_sign_role, p->ra_encrypt_role) == -1)
		return -1;
	if (check_challenge(j, n, p) == -1 ||
	    cc_jck_opt_bool(j, n, "des3", false, &p->des3) == -1 ||
	    cc_jck_opt_bool(j, n, "manual_approval", false, &p->manual_approval) == -1 ||
	    cc_jck_opt_bool(j, n, "renewal", true, &p->renewal) == -1 ||
	    cc_jck_opt_uint(j, n, "renewal_window_days", 0, 0, 3650, &v) == -1 ||
	    cc_jck_opt_bool(j, n, "include_root", true, &p->include_root) == -1)
		return -1;
	p->renewal_window_days = (uint32_t)v;
	if (cc_jck_member(n, "issuance", &iss))
		return cc_issuance_check(j, &iss, &p->issuance);
	cc_issuance_defaults(&p->issuance);
	return 0;
}

static void
profile_free(struct cc_scep_profile *p)
{
	free(p->password_file);
	free(p->webhook_url);
	free(p->webhook_secret_file);
	cc_issuance_free(&p->issuance);
}

int
cc_config_check_scep(struct cc_jck *j, const struct cc_jnode *n, struct cc_config_scep **out)
{
	static const char *const keys[] = { "default_profile", "max_body", "workers",
		"replay_window_s", "clock_skew_s", "profiles", NULL };
	struct cc_config_scep *s;
	struct cc_jnode m, pn;
	const cJSON *it;
	const char *def = NULL;
	uint32_t i = 0;
	uint64_t v;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return cc_jck_fail(j, n, "out of memory");
	if (cc_jck_object(j, n, keys, 16) == -1)
		goto fail;
	if (cc_jck_opt_uint(j, n, "max_body", 131072, 1024, 1048576, &v) == -1)
		goto fail;
	s->max_body = (uint32_t)v;
	if (cc_jck_opt_uint(j, n, "workers", 4, 1, 64, &v) == -1)
		goto fail;
	s->workers = (uint32_t)v;
	if (cc_jck_opt_uint(j, n, "replay_window_s", 86400, 60, 2592000, &v) == -1)
		goto fail;
	s->replay_window_s = (uint32_t)v;
	if (cc_jck_opt_uint(j, n, "clock_skew_s", 86400, 60, 604800, &v) == -1)
		goto fail;
	s->clock_skew_s = (uint32_t)v;
	if (!cc_jck_member(n, "profiles", &pn)) {
		cc_jck_fail_missing(j, n, "profiles");
		goto fail;
	}
	if (cc_jck_object(j, &pn, NULL, CC_SCEP_MAX_PROFILES) == -1)
		goto fail;
	if (cJSON_GetArraySize(pn.item) == 0) {
		cc_jck_fail(j, &pn, "at least one profile is needed");
		goto fail;
	}
	s->profiles = calloc((size_t)cJSON_GetArraySize(pn.item), sizeof(*s->profiles));
	if (s->profiles == NULL) {
		cc_jck_fail(j, &pn, "out of memory");
		goto fail;
	}
	cJSON_ArrayForEach(it, pn.item) {
		m = (struct cc_jnode){ it, &pn, i++, it->string };
		s->nprofiles++;
		if (check_profile(j, &m, &s->profiles[s->nprofiles - 1]) == -1)
			goto fail;
	}
	if (cc_jck_member(n, "default_profile", &m)) {
		if (cc_jck_str(j, &m, CC_SCEP_PROFILE_NAME_MAX - 1, &def) == -1)
			goto fail;
		for (i = 0; i < s->nprofiles; i++)
			if (strcmp(s->profiles[i].name, def) == 0)
				break;
		if (i == s->nprofiles) {
			cc_jck_fail(j, &m, "no profile is called \"%s\"", def);
			goto fail;
		}
		s->default_profile = i;
	}
	*out = s;
	return 0;
fail:
	cc_config_scep_free(s);
	return -1;
}

void
cc_config_scep_free(struct cc_config_scep *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->nprofiles; i++)
		profile_free(&s->profiles[i]);
	free(s->profiles);
	free(s);
}

const struct cc_scep_profile *
cc_config_scep_profile(const struct cc_config_scep *s, const char *name)
{
	for (size_t i = 0; s != NULL && i < s->nprofiles; i++)
		if (strcmp(s->profiles[i].name, name) == 0)
			return &s->profiles[i];
	return NULL;
}
