/* "net.flows": the queued flows (include/certconn/config_flows.h). */
#include <stdlib.h>
#include <string.h>

#include "certconn/config_flows.h"
#include "certconn/config_service.h"
#include "certconn/issuance.h"
#include "config_sections.h"

/* NULL-terminated, so that it also serves as the allowed keys of "key_pool". */
static const char *const keyspec_names[CC_FLOWS_NKEYSPECS + 1] = {
	"rsa-2048", "rsa-3072", "rsa-4096", "ec-p256", "ec-p384", NULL,
};

int
cc_flows_keyspec_from_name(const char *name)
{
	for (int i = 0; i < CC_FLOWS_NKEYSPECS; i++)
		if (name != NULL && strcmp(keyspec_names[i], name) == 0)
			return i;
	return -1;
}

const char *
cc_flows_keyspec_name(int spec)
{
	return spec >= 0 && spec < CC_FLOWS_NKEYSPECS ? keyspec_names[spec] : NULL;
}

static int
keyspec(struct cc_jck *j, const struct cc_jnode *n, int *out)
{
	const char *s;

	if (cc_jck_str(j, n, 16, &s) == -1)
		return -1;
	*out = cc_flows_keyspec_from_name(s);
	if (*out == -1)
		return cc_jck_fail(j, n, "expected rsa-2048, rsa-3072, rsa-4096, ec-p256 or "
		    "ec-p384");
	return 0;
}

static int
name_ok(struct cc_jck *j, const struct cc_jnode *n, const char *what)
{
	for (const char *c = n->name; *c != '\0'; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-' ||
		    *c == '_'))
			return cc_jck_fail(j, n, "a %s name has lower-case letters, digits, '-' "
			    "and '_' only", what);
	if (n->name[0] == '\0' || strlen(n->name) >= CC_FLOWS_PROFILE_NAME_MAX)
		return cc_jck_fail(j, n, "a %s name has 1 to %d characters", what,
		    CC_FLOWS_PROFILE_NAME_MAX - 1);
	return 0;
}

static int
check_profile(struct cc_jck *j, const struct cc_jnode *n, struct cc_flows_profile *p)
{
	static const char *const keys[] = { "key", "allow_key_override", "p12", "keep_copy",
		"issuance", NULL };
	struct cc_jnode m;
	const char *s;

	if (name_ok(j, n, "profile") == -1)
		return -1;
	memcpy(p->name, n->name, strlen(n->name) + 1);
	/* Defaults first, so that a failure below leaves a struct that frees cleanly. */
	cc_issuance_defaults(&p->issuance);
	if (cc_jck_object(j, n, keys, 16) == -1)
		return -1;
	p->key = CC_FLOWS_RSA2048;
	if (cc_jck_member(n, "key", &m) && keyspec(j, &m, &p->key) == -1)
		return -1;
	if (cc_jck_opt_bool(j, n, "allow_key_override", false, &p->allow_key_override) == -1 ||
	    cc_jck_opt_bool(j, n, "keep_copy", false, &p->keep_copy) == -1)
		return -1;
	p->p12 = CC_FLOWS_P12_AES256;
	if (cc_jck_member(n, "p12", &m)) {
		if (cc_jck_str(j, &m, 16, &s) == -1)
			return -1;
		if (strcmp(s, "aes256") == 0)
			p->p12 = CC_FLOWS_P12_AES256;
		else if (strcmp(s, "legacy") == 0)
			p->p12 = CC_FLOWS_P12_LEGACY;
		else
			return cc_jck_fail(j, &m, "expected aes256 or legacy");
	}
	if (cc_jck_member(n, "issuance", &m)) {
		cc_issuance_free(&p->issuance);
		if (cc_issuance_check(j, &m, &p->issuance) == -1)
			return -1;
	}
	/* The profile's own key spec must pass its own key rules, or no request ever could. */
	{
		bool ec = p->key == CC_FLOWS_EC_P256 || p->key == CC_FLOWS_EC_P384;
		uint32_t bits = p->key == CC_FLOWS_RSA2048 ? 2048 : p->key == CC_FLOWS_RSA3072 ?
		    3072 : 4096;
		uint32_t curve = p->key == CC_FLOWS_EC_P256 ? CC_ISS_CURVE_P256 : CC_ISS_CURVE_P384;
		const struct cc_issuance *is = &p->issuance;

		if ((ec && (!(is->key_types & CC_ISS_KEY_EC) || !(is->ec_curves & curve))) ||
		    (!ec && (!(is->key_types & CC_ISS_KEY_RSA) || bits < is->rsa_min_bits ||
		    bits > is->rsa_max_bits)))
			return cc_jck_fail_at(j, n, "key", "%s is not allowed by the profile's "
			    "issuance key rules", cc_flows_keyspec_name(p->key));
	}
	return 0;
}

static int
check_features(struct cc_jck *j, const struct cc_jnode *n, uint32_t *out)
{
	struct cc_jnode e;
	const cJSON *it;
	size_t count;
	uint32_t i = 0, bit;
	const char *s;

	if (cc_jck_array(j, n, 4, &count) == -1)
		return -1;
	*out = 0;
	cJSON_ArrayForEach(it, n->item) {
		cc_jck_element(n, it, i++, &e);
		if (cc_jck_str(j, &e, 16, &s) == -1)
			return -1;
		bit = cc_service_feature_bit(s);
		if (bit == 0 || bit == CC_FEATURE_SCEP)
			return cc_jck_fail(j, &e, "expected pkcs, pkcs-recrypt, pfx-import or revoke");
		if (*out & bit)
			return cc_jck_fail(j, &e, "%s is named twice", s);
		*out |= bit;
	}
	return 0;
}

static int
check_pool(struct cc_jck *j, const struct cc_jnode *n, uint32_t *depth)
{
	struct cc_jnode m;
	const cJSON *it;
	uint32_t i = 0;
	uint64_t v;
	int spec;

	if (cc_jck_object(j, n, keyspec_names, CC_FLOWS_NKEYSPECS) == -1)
		return -1;
	cJSON_ArrayForEach(it, n->item) {
		m = (struct cc_jnode){ it, n, i++, it->string };
		spec = cc_flows_keyspec_from_name(it->string);
		if (cc_jck_uint(j, &m, 0, CC_FLOWS_POOL_MAX, &v) == -1)
			return -1;
		depth[spec] = (uint32_t)v;
	}
	return 0;
}

int
cc_config_check_flows(struct cc_jck *j, const struct cc_jnode *n, struct cc_config_flows **out)
{
	static const char *const keys[] = { "features", "workers", "max_attempts", "backoff",
		"pfx_role", "state_dir", "key_pool", "default_profile", "pkcs_profiles", NULL };
	static const char *const bkeys[] = { "initial_ms", "max_ms", NULL };
	struct cc_config_flows *f;
	struct cc_jnode m, pn;
	const cJSON *it;
	const char *s;
	uint32_t i = 0;
	uint64_t v;

	*out = NULL;
	f = calloc(1, sizeof(*f));
	if (f == NULL)
		return cc_jck_fail(j, n, "out of memory");
	if (cc_jck_object(j, n, keys, 16) == -1)
		goto fail;
	f->features = CC_FEATURE_PKCS | CC_FEATURE_PKCS_RECRYPT | CC_FEATURE_PFX_IMPORT |
	    CC_FEATURE_REVOKE;
	if (cc_jck_member(n, "features", &m) && check_features(j, &m, &f->features) == -1)
		goto fail;
	if (cc_jck_opt_uint(j, n, "workers", 2, 1, 32, &v) == -1)
		goto fail;
	f->workers = (uint32_t)v;
	if (cc_jck_opt_uint(j, n, "max_attempts", 5, 1, 20, &v) == -1)
		goto fail;
	f->max_attempts = (uint32_t)v;
	f->backoff_initial_ms = 500;
	f->backoff_max_ms = 30000;
	if (cc_jck_member(n, "backoff", &m)) {
		if (cc_jck_object(j, &m, bkeys, 4) == -1 ||
		    cc_jck_opt_uint(j, &m, "initial_ms", 500, 10, 60000, &v) == -1)
			goto fail;
		f->backoff_initial_ms = (uint32_t)v;
		if (cc_jck_opt_uint(j, &m, "max_ms", f->backoff_initial_ms > 30000 ?
		    f->backoff_initial_ms : 30000, f->backoff_initial_ms, 600000, &v) == -1)
			goto fail;
		f->backoff_max_ms = (uint32_t)v;
	}
	memcpy(f->pfx_role, "pfx", 4);
	if (cc_jck_member(n, "pfx_role", &m)) {
		if (cc_jck_str(j, &m, CC_FLOWS_ROLE_MAX - 1, &s) == -1)
			goto fail;
		for (const char *c = s; *c != '\0'; c++)
			if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-')) {
				cc_jck_fail(j, &m, "a role name has lower-case letters, digits and "
				    "'-' only");
				goto fail;
			}
		memcpy(f->pfx_role, s, strlen(s) + 1);
	}
	if (cc_jck_member(n, "state_dir", &m)) {
		if (cc_jck_opt_str(j, n, "state_dir", NULL, 1000, &f->state_dir) == -1)
			goto fail;
		if (f->state_dir[0] != '/') {
			cc_jck_fail(j, &m, "must be an absolute path");
			goto fail;
		}
	}
	if (cc_jck_member(n, "key_pool", &m) && check_pool(j, &m, f->pool_depth) == -1)
		goto fail;
	if (cc_jck_member(n, "pkcs_profiles", &pn)) {
		if (cc_jck_object(j, &pn, NULL, CC_FLOWS_MAX_PROFILES) == -1)
			goto fail;
		f->profiles = calloc((size_t)cJSON_GetArraySize(pn.item) + 1, sizeof(*f->profiles));
		if (f->profiles == NULL) {
			cc_jck_fail(j, &pn, "out of memory");
			goto fail;
		}
		cJSON_ArrayForEach(it, pn.item) {
			m = (struct cc_jnode){ it, &pn, i++, it->string };
			f->nprofiles++;
			if (check_profile(j, &m, &f->profiles[f->nprofiles - 1]) == -1)
				goto fail;
		}
	}
	if ((f->features & CC_FEATURE_PKCS) && f->nprofiles == 0) {
		cc_jck_fail_at(j, n, "pkcs_profiles", "the pkcs feature needs at least one "
		    "profile");
		goto fail;
	}
	if (cc_jck_member(n, "default_profile", &m)) {
		if (cc_jck_str(j, &m, CC_FLOWS_PROFILE_NAME_MAX - 1, &s) == -1)
			goto fail;
		for (i = 0; i < f->nprofiles; i++)
			if (strcmp(f->profiles[i].name, s) == 0)
				break;
		if (i == f->nprofiles) {
			cc_jck_fail(j, &m, "no profile is called \"%s\"", s);
			goto fail;
		}
		f->default_profile = i;
	}
	*out = f;
	return 0;
fail:
	cc_config_flows_free(f);
	return -1;
}

void
cc_config_flows_free(struct cc_config_flows *f)
{
	if (f == NULL)
		return;
	for (size_t i = 0; i < f->nprofiles; i++)
		cc_issuance_free(&f->profiles[i].issuance);
	free(f->profiles);
	free(f->state_dir);
	free(f);
}

const struct cc_flows_profile *
cc_config_flows_profile(const struct cc_config_flows *f, const char *name)
{
	for (size_t i = 0; f != NULL && i < f->nprofiles; i++)
		if (strcmp(f->profiles[i].name, name) == 0)
			return &f->profiles[i];
	return NULL;
}
