/* certconnd.json loader: see include/certconn/config.h and certconnd.json(5). */
#include "certconn/config.h"
#include "config_sections.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certconn/util.h"
#include "jsonck.h"

/* Every string goes to the children in a message string field. */
#define STR_MAX (CC_MSG_STR_MAX - 1)
#define CERT_FILE_MAX (1u << 20)

#define DEF_KU (KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION | KU_KEY_ENCIPHERMENT | \
	KU_DATA_ENCIPHERMENT | KU_KEY_AGREEMENT)
static const char *const def_ekus[] = { "serverAuth", "clientAuth", "emailProtection", NULL };

/* An absent optional section is checked as an empty object, so its defaults apply. */
static int
section(const struct cc_jnode *obj, const char *key, cJSON *empty, struct cc_jnode *out)
{
	if (cc_jck_member(obj, key, out))
		return 0;
	memset(empty, 0, sizeof(*empty));
	empty->type = cJSON_Object;
	*out = (struct cc_jnode){ empty, obj, UINT32_MAX, key };
	return 0;
}

static int
check_abs(struct cc_jck *j, const struct cc_jnode *n, const char *s)
{
	if (s[0] != '/')
		return cc_jck_fail(j, n, "must be an absolute path");
	return 0;
}

static int
check_regular(struct cc_jck *j, const struct cc_jnode *n, const char *path)
{
	struct stat st;

	if (stat(path, &st) == -1)
		return cc_jck_fail(j, n, "%s: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return cc_jck_fail(j, n, "%s: not a regular file", path);
	return 0;
}

/* Required or optional absolute path; file_must_exist: an existing regular file. */
static int
get_path(struct cc_jck *j, const struct cc_jnode *obj, const char *key, const char *def,
    bool file_must_exist, char **out)
{
	struct cc_jnode m;
	const char *s;

	*out = NULL;
	if (!cc_jck_member(obj, key, &m)) {
		if (def == NULL)
			return 0;
		*out = strdup(def);
		return *out ? 0 : cc_jck_fail(j, obj, "out of memory");
	}
	if (cc_jck_str(j, &m, STR_MAX, &s) == -1 || check_abs(j, &m, s) == -1)
		return -1;
	if (file_must_exist && check_regular(j, &m, s) == -1)
		return -1;
	*out = strdup(s);
	return *out ? 0 : cc_jck_fail(j, &m, "out of memory");
}

static int
env_name_ok(const char *s)
{
	size_t k;

	if (!((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
		return 0;
	for (k = 1; s[k] != '\0'; k++)
		if (!((s[k] >= 'A' && s[k] <= 'Z') || (s[k] >= 'a' && s[k] <= 'z') ||
		    (s[k] >= '0' && s[k] <= '9') || s[k] == '_'))
			return 0;
	return k <= 128;
}

static int
check_pkcs11(struct cc_jck *j, const struct cc_jnode *pn, struct cc_config_pkcs11 *p)
{
	static const char *const keys[] = { "module", "env", "pin_file", "pin_credential",
		"op_timeout_ms", NULL };
	struct cc_jnode m, e, pf, pc;
	const cJSON *it;
	const char *s, *dir;
	uint64_t v;
	uint32_t i;
	int has_pf, has_pc, n;
	size_t envlen = 0;
	char buf[4096];

	if (cc_jck_object(j, pn, keys, 16) == -1)
		return -1;
	if (!cc_jck_member(pn, "module", &m))
		return cc_jck_fail_missing(j, pn, "module");
	if (get_path(j, pn, "module", NULL, true, &p->module) == -1)
		return -1;

	if (cc_jck_member(pn, "env", &m)) {
		if (cc_jck_object(j, &m, NULL, CC_CONFIG_MAX_ENV) == -1)
			return -1;
		for (it = m.item->child, i = 0; it != NULL; it = it->next, i++) {
			e = (struct cc_jnode){ it, &m, i, it->string };
			if (!env_name_ok(it->string))
				return cc_jck_fail(j, &e, "not a valid environment variable name");
			if (cc_jck_str(j, &e, STR_MAX, &s) == -1)
				return -1;
			/* keys gets them as "NAME=value" lines in one message string. */
			envlen += strlen(it->string) + 1 + strlen(s) + (i ? 1 : 0);
			if (envlen > STR_MAX)
				return cc_jck_fail(j, &e, "the environment is too long (at most "
				    "%u bytes as NAME=value lines)", STR_MAX);
			p->env[p->nenv].name = strdup(it->string);
			p->env[p->nenv].value = strdup(s);
			p->nenv++;
			if (p->env[p->nenv - 1].name == NULL || p->env[p->nenv - 1].value == NULL)
				return cc_jck_fail(j, &e, "out of memory");
		}
	}

	has_pf = cc_jck_member(pn, "pin_file", &pf);
	has_pc = cc_jck_member(pn, "pin_credential", &pc);
	if (has_pf && has_pc)
		return cc_jck_fail(j, pf.ordinal > pc.ordinal ? &pf : &pc,
		    "pin_file and pin_credential exclude each other");
	if (!has_pf && !has_pc)
		return cc_jck_fail(j, pn, "needs pin_file or pin_credential");
	if (has_pf) {
		if (get_path(j, pn, "pin_file", NULL, true, &p->pin_file) == -1)
			return -1;
		p->pin_path = strdup(p->pin_file);
	} else {
		if (cc_jck_str(j, &pc, 255, &s) == -1)
			return -1;
		if (strchr(s, '/') != NULL || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
			return cc_jck_fail(j, &pc, "not a credential name");
		p->pin_credential = strdup(s);
		if (p->pin_credential == NULL)
			return cc_jck_fail(j, &pc, "out of memory");
		/* systemd sets this for a unit with LoadCredential= / SetCredential=. */
		dir = getenv("CREDENTIALS_DIRECTORY");
		if (dir == NULL || dir[0] != '/')
			return cc_jck_fail(j, &pc, "$CREDENTIALS_DIRECTORY is not set (the "
			    "credential is passed by systemd's LoadCredential=)");
		n = snprintf(buf, sizeof(buf), "%s/%s", dir, s);
		if (n < 0 || (size_t)n >= sizeof(buf))
			return cc_jck_fail(j, &pc, "credential path too long");
		if (check_regular(j, &pc, buf) == -1)
			return -1;
		p->pin_path = strdup(buf);
	}
	if (p->pin_path == NULL)
		return cc_jck_fail(j, pn, "out of memory");

	if (cc_jck_opt_uint(j, pn, "op_timeout_ms", 5000, 100, 600000, &v) == -1)
		return -1;
	p->op_timeout_ms = (uint32_t)v;
	return 0;
}

static int
is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* NULL when u is a usable RFC 7512 URI naming one object, else what is wrong with it. */
static const char *
uri_problem(const char *u)
{
	const char *p, *end, *attr, *eq;
	size_t k;
	int named = 0;

	if (strncmp(u, "pkcs11:", 7) != 0)
		return "must start with \"pkcs11:\"";
	for (k = 0; u[k] != '\0'; k++) {
		if ((unsigned char)u[k] <= 0x20 || (unsigned char)u[k] >= 0x7f)
			return "characters outside printable ASCII must be percent-encoded";
		if (u[k] == '%' && !(is_hex(u[k + 1]) && is_hex(u[k + 2])))
			return "bad percent-encoding";
	}
	/* Path attributes: name=value separated by ';', up to '?'. */
	end = strchr(u, '?');
	if (end == NULL)
		end = u + k;
	for (p = u + 7; p < end; p = attr + 1) {
		attr = memchr(p, ';', (size_t)(end - p));
		if (attr == NULL)
			attr = end;
		eq = memchr(p, '=', (size_t)(attr - p));
		if (eq == NULL || eq == p)
			return "each path attribute must be name=value";
		if (((eq - p == 6 && strncmp(p, "object", 6) == 0) ||
		    (eq - p == 2 && strncmp(p, "id", 2) == 0)) && eq + 1 < attr)
			named = 1;
	}
	if (!named)
		return "needs an object= or id= attribute";
	/* Query attributes: the PIN goes to keys alone, never through a URI. */
	for (p = end; *p != '\0'; p++) {
		if ((*p == '?' || *p == '&') &&
		    (strncmp(p + 1, "pin-value", 9) == 0 || strncmp(p + 1, "pin-source", 10) == 0))
			return "no PIN in the URI: use pkcs11.pin_file or pkcs11.pin_credential";
	}
	return NULL;
}

/* Reads the first PEM certificate of path into DER. */
static int
load_cert(struct cc_jck *j, const struct cc_jnode *n, const char *path, uint8_t **der,
    size_t *der_len)
{
	uint8_t *buf = NULL;
	unsigned char *out = NULL;
	size_t len = 0;
	X509 *x = NULL;
	BIO *bio = NULL;
	unsigned long e;
	int dlen, ret = -1;

	if (cc_read_file(path, CERT_FILE_MAX, &buf, &len) == -1) {
		cc_jck_fail(j, n, "%s: %s", path, errno == EFBIG ? "file too large" :
		    errno == EINVAL ? "not a regular file" : strerror(errno));
		goto out;
	}
	ERR_clear_error();
	bio = BIO_new_mem_buf(buf, (int)len);
	if (bio == NULL) {
		cc_jck_fail(j, n, "out of memory");
		goto out;
	}
	x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	if (x == NULL) {
		e = ERR_peek_last_error();
		cc_jck_fail(j, n, "%s: not a PEM certificate (%s)", path,
		    ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "no details");
		goto out;
	}
	dlen = i2d_X509(x, &out);
	if (dlen <= 0) {
		cc_jck_fail(j, n, "%s: cannot encode the certificate", path);
		goto out;
	}
	*der = out;
	*der_len = (size_t)dlen;
	out = NULL;
	ret = 0;
out:
	ERR_clear_error();
	OPENSSL_free(out);
	X509_free(x);
	BIO_free(bio);
	free(buf);
	return ret;
}

/* keyUsage list; "any" (alone) allows any. */
static int
check_key_usage(struct cc_jck *j, const struct cc_jnode *kn, bool subca, uint32_t *out)
{
	struct cc_jnode en;
	const cJSON *it;
	const char *s;
	size_t count;
	uint32_t i, bit, ku = 0;

	if (cc_jck_array(j, kn, 16, &count) == -1)
		return -1;
	if (count == 0)
		return cc_jck_fail(j, kn, "must not be empty (leave it out for the default, "
		    "or write [\"any\"])");
	for (it = kn->item->child, i = 0; it != NULL; it = it->next, i++) {
		cc_jck_element(kn, it, i, &en);
		if (cc_jck_str(j, &en, 64, &s) == -1)
			return -1;
		if (strcmp(s, "any") == 0) {
			if (count != 1)
				return cc_jck_fail(j, &en, "\"any\" must stand alone");
			*out = 0;
			return 0;
		}
		bit = cc_ku_from_name(s);
		if (bit == 0)
			return cc_jck_fail(j, &en, "unknown key usage \"%s\"", s);
		if (ku & bit)
			return cc_jck_fail(j, &en, "\"%s\" is listed twice", s);
		if ((bit & (KU_KEY_CERT_SIGN | KU_CRL_SIGN)) && !subca)
			return cc_jck_fail(j, &en, "\"%s\" needs \"allow_subca\": true", s);
		ku |= bit;
	}
	*out = ku;
	return 0;
}

static int
append_oid(char *buf, size_t len, const char *oid)
{
	size_t off = strlen(buf);
	int n = snprintf(buf + off, len - off, "%s%s", off ? "," : "", oid);

	return n < 0 || (size_t)n >= len - off ? -1 : 0;
}

static int
oid_listed(const char *list, const char *oid)
{
	size_t n = strlen(oid);
	const char *p = list;

	while ((p = strstr(p, oid)) != NULL) {
		if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
			return 1;
		p += n;
	}
	return 0;
}

/* EKU list into comma-separated dotted OIDs; "any" (alone) gives "". */
static int
check_eku(struct cc_jck *j, const struct cc_jnode *kn, char **out)
{
	struct cc_jnode en;
	const cJSON *it;
	const char *s;
	char oid[CC_OID_MAX], list[STR_MAX + 1];
	size_t count, k;
	uint32_t i;

	list[0] = '\0';
	if (kn == NULL) {
		for (k = 0; def_ekus[k] != NULL; k++)
			if (cc_eku_to_oid(def_ekus[k], oid, sizeof(oid)) == -1 ||
			    append_oid(list, sizeof(list), oid) == -1)
				return -1;
		goto done;
	}
	if (cc_jck_array(j, kn, 64, &count) == -1)
		return -1;
	if (count == 0)
		return cc_jck_fail(j, kn, "must not be empty (leave it out for the default, "
		    "or write [\"any\"])");
	for (it = kn->item->child, i = 0; it != NULL; it = it->next, i++) {
		cc_jck_element(kn, it, i, &en);
		if (cc_jck_str(j, &en, CC_OID_MAX - 1, &s) == -1)
			return -1;
		if (strcmp(s, "any") == 0) {
			if (count != 1)
				return cc_jck_fail(j, &en, "\"any\" must stand alone");
			goto done;
		}
		if (cc_eku_to_oid(s, oid, sizeof(oid)) == -1)
			return cc_jck_fail(j, &en, "\"%s\" is neither a known extended key usage "
			    "nor a dotted OID", s);
		if (oid_listed(list, oid))
			return cc_jck_fail(j, &en, "\"%s\" is listed twice", s);
		if (append_oid(list, sizeof(list), oid) == -1)
			return cc_jck_fail(j, &en, "list too long");
	}
done:
	*out = strdup(list);
	return *out ? 0 : -1;
}

static int
check_role(struct cc_jck *j, const struct cc_jnode *rn, const struct cc_policy *pol,
    struct cc_config_role *r)
{
	static const char *const keys[] = { "uri", "cert", "optional", "mechanisms",
		"max_validity_days", "allow_subca", "key_usage", "eku", "max_crl_days", NULL };
	static const char *const ca_keys[] = { "max_validity_days", "allow_subca", "key_usage",
		"eku", "max_crl_days", NULL };
	const struct cc_policy_role *pr;
	struct cc_jnode m, en;
	const cJSON *it;
	const char *s, *why;
	char names[CC_MECH_NAMES_MAX];
	uint32_t bit, mechs = 0, i;
	uint64_t v;
	size_t count, k;
	bool b;

	pr = cc_policy_find(pol, rn->name);
	if (pr == NULL) {
		char list[CC_POLICY_MAX_ROLES * CC_ROLE_NAME_MAX + 64];
		size_t off = 0;

		list[0] = '\0';
		for (k = 0; k < pol->nroles; k++)
			off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s",
			    k ? ", " : "", pol->roles[k].name);
		return cc_jck_fail(j, rn, "unknown role (the policy %s has: %s)", pol->path,
		    list);
	}
	if (cc_jck_object(j, rn, keys, 16) == -1)
		return -1;
	r->name = strdup(pr->name);
	if (r->name == NULL)
		return cc_jck_fail(j, rn, "out of memory");
	r->mechs = pr->mechs;
	r->flags = pr->flags;

	if (!cc_jck_member(rn, "uri", &m))
		return cc_jck_fail_missing(j, rn, "uri");
	if (cc_jck_str(j, &m, STR_MAX, &s) == -1)
		return -1;
	why = uri_problem(s);
	if (why != NULL)
		return cc_jck_fail(j, &m, "%s", why);
	r->uri = strdup(s);
	if (r->uri == NULL)
		return cc_jck_fail(j, &m, "out of memory");

	if (get_path(j, rn, "cert", NULL, true, &r->cert_path) == -1)
		return -1;
	if (r->cert_path != NULL) {
		cc_jck_member(rn, "cert", &m);
		if (load_cert(j, &m, r->cert_path, &r->cert, &r->cert_len) == -1)
			return -1;
	}

	if (cc_jck_opt_bool(j, rn, "optional", false, &b) == -1)
		return -1;
	if (b)
		r->flags |= CC_ROLE_OPTIONAL;

	if (cc_jck_member(rn, "mechanisms", &m)) {
		if (cc_jck_array(j, &m, 16, &count) == -1)
			return -1;
		if (count == 0)
			return cc_jck_fail(j, &m, "must list at least one mechanism (leave it "
			    "out for the policy's set)");
		for (it = m.item->child, i = 0; it != NULL; it = it->next, i++) {
			cc_jck_element(&m, it, i, &en);
			if (cc_jck_str(j, &en, 64, &s) == -1)
				return -1;
			bit = cc_mech_from_name(s);
			if (bit == 0)
				return cc_jck_fail(j, &en, "unknown mechanism \"%s\"", s);
			if (mechs & bit)
				return cc_jck_fail(j, &en, "\"%s\" is listed twice", s);
			if (!(pr->mechs & bit)) {
				cc_mech_names(pr->mechs, names, sizeof(names));
				return cc_jck_fail(j, &en, "\"%s\" is not allowed for role %s by "
				    "the policy (allowed: %s)", s, pr->name, names);
			}
			mechs |= bit;
		}
		r->mechs = mechs;
	}

	if (!(pr->flags & CC_ROLE_TBS_ONLY)) {
		for (k = 0; ca_keys[k] != NULL; k++)
			if (cc_jck_member(rn, ca_keys[k], &m))
				return cc_jck_fail(j, &m, "only for a role that signs checked "
				    "certificates (tbs_only in the policy, like ca)");
		r->ekus = strdup("");
		return r->ekus ? 0 : cc_jck_fail(j, rn, "out of memory");
	}
	if (cc_jck_opt_uint(j, rn, "max_validity_days", 825, 1, 36500, &v) == -1)
		return -1;
	r->max_validity_days = (uint32_t)v;
	if (cc_jck_opt_uint(j, rn, "max_crl_days", 30, 1, 3650, &v) == -1)
		return -1;
	r->max_crl_days = (uint32_t)v;
	if (cc_jck_opt_bool(j, rn, "allow_subca", false, &b) == -1)
		return -1;
	if (b)
		r->flags |= CC_ROLE_ALLOW_SUBCA;
	r->key_usage = DEF_KU;
	if (cc_jck_member(rn, "key_usage", &m) &&
	    check_key_usage(j, &m, b, &r->key_usage) == -1)
		return -1;
	if (check_eku(j, cc_jck_member(rn, "eku", &m) ? &m : NULL, &r->ekus) == -1)
		return cc_jck_fail(j, rn, "out of memory");
	return 0;
}

static int
check_keys(struct cc_jck *j, const struct cc_jnode *kn, struct cc_config_keys *k)
{
	static const char *const keys[] = { "policy", "roles", NULL };
	struct cc_jnode m, rolesn, rn;
	const cJSON *it;
	char path[CC_POLICY_PATH_MAX], perr[1024];
	uint32_t i;

	if (cc_jck_object(j, kn, keys, 8) == -1)
		return -1;
	if (cc_jck_member(kn, "policy", &m)) {
		if (get_path(j, kn, "policy", NULL, false, &k->policy_path) == -1)
			return -1;
		if (cc_policy_load(k->policy_path, &k->policy, perr, sizeof(perr)) == -1)
			return cc_jck_fail(j, &m, "%s", perr);
	} else {
		if (cc_policy_default_path(path, sizeof(path)) == -1)
			return cc_jck_fail_at(j, kn, "policy", "default policy path too long");
		k->policy_path = strdup(path);
		if (k->policy_path == NULL)
			return cc_jck_fail(j, kn, "out of memory");
		if (cc_policy_load(k->policy_path, &k->policy, perr, sizeof(perr)) == -1)
			return cc_jck_fail_at(j, kn, "policy", "(default) %s", perr);
	}

	if (!cc_jck_member(kn, "roles", &rolesn))
		return cc_jck_fail_missing(j, kn, "roles");
	if (cc_jck_object(j, &rolesn, NULL, CC_POLICY_MAX_ROLES) == -1)
		return -1;
	if (rolesn.item->child == NULL)
		return cc_jck_fail(j, &rolesn, "must configure at least one role");
	for (it = rolesn.item->child, k->nroles = 0; it != NULL; it = it->next)
		k->nroles++;
	k->roles = calloc(k->nroles, sizeof(*k->roles));
	if (k->roles == NULL)
		return cc_jck_fail(j, &rolesn, "out of memory");
	for (it = rolesn.item->child, i = 0; it != NULL; it = it->next, i++) {
		rn = (struct cc_jnode){ it, &rolesn, i, it->string };
		if (check_role(j, &rn, &k->policy, &k->roles[i]) == -1)
			return -1;
	}
	return 0;
}

static int
check_log(struct cc_jck *j, const struct cc_jnode *ln, struct cc_config_log *l)
{
	static const char *const keys[] = { "dir", "max_bytes", "keep", "journald", "debug",
		NULL };
	static const struct {
		const char *name;
		uint32_t bit;
	} chans[] = { { "Admin", CC_CHAN_ADMIN }, { "Operational", CC_CHAN_OPERATIONAL },
		      { "Debug", CC_CHAN_DEBUG } };
	struct cc_jnode m, en;
	const cJSON *it;
	const char *s;
	uint64_t v;
	size_t count, k;
	uint32_t i;

	if (cc_jck_object(j, ln, keys, 16) == -1)
		return -1;
	if (get_path(j, ln, "dir", "/var/log/certconn", false, &l->dir) == -1)
		return -1;
	if (cc_jck_opt_uint(j, ln, "max_bytes", 52428800, 1ull << 20, 10ull << 30,
	    &l->max_bytes) == -1)
		return -1;
	if (cc_jck_opt_uint(j, ln, "keep", 5, 0, 100, &v) == -1)
		return -1;
	l->keep = (uint32_t)v;
	if (cc_jck_opt_bool(j, ln, "journald", true, &l->journald) == -1)
		return -1;
	if (!cc_jck_member(ln, "debug", &m))
		return 0;
	if (cc_jck_array(j, &m, 3, &count) == -1)
		return -1;
	for (it = m.item->child, i = 0; it != NULL; it = it->next, i++) {
		cc_jck_element(&m, it, i, &en);
		if (cc_jck_str(j, &en, 64, &s) == -1)
			return -1;
		for (k = 0; k < sizeof(chans) / sizeof(chans[0]); k++)
			if (strcmp(chans[k].name, s) == 0)
				break;
		if (k == sizeof(chans) / sizeof(chans[0]))
			return cc_jck_fail(j, &en, "unknown channel \"%s\" (channels: Admin, "
			    "Operational, Debug)", s);
		if (l->debug_mask & chans[k].bit)
			return cc_jck_fail(j, &en, "\"%s\" is listed twice", s);
		l->debug_mask |= chans[k].bit;
	}
	return 0;
}

static int
user_ok(const char *s)
{
	size_t k;

	if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_'))
		return 0;
	for (k = 1; s[k] != '\0'; k++)
		if (!((s[k] >= 'a' && s[k] <= 'z') || (s[k] >= 'A' && s[k] <= 'Z') ||
		    (s[k] >= '0' && s[k] <= '9') || s[k] == '_' || s[k] == '-' || s[k] == '.'))
			return 0;
	return k <= 32;
}

static int
get_user(struct cc_jck *j, const struct cc_jnode *dn, const char *key, const char *def,
    char **out)
{
	struct cc_jnode m;

	if (cc_jck_opt_str(j, dn, key, def, 32, out) == -1)
		return -1;
	if (user_ok(*out) && strcmp(*out, "root") != 0)
		return 0;
	if (!cc_jck_member(dn, key, &m))
		m = *dn;
	return cc_jck_fail(j, &m, "not a usable user name (not root; letters, digits, '_', "
	    "'-', '.')");
}

static int
check_daemon(struct cc_jck *j, const struct cc_jnode *dn, struct cc_config_daemon *d)
{
	static const char *const keys[] = { "control_socket", "state_dir", "user_net",
		"user_keys", "seccomp", "landlock", "restart_max", "restart_window_s", NULL };
	struct sockaddr_un sa;
	struct cc_jnode m;
	uint64_t v;

	if (cc_jck_object(j, dn, keys, 16) == -1)
		return -1;
	if (get_path(j, dn, "control_socket", "/run/certconn/control.sock", false,
	    &d->control_socket) == -1)
		return -1;
	if (strlen(d->control_socket) >= sizeof(sa.sun_path)) {
		cc_jck_member(dn, "control_socket", &m);
		return cc_jck_fail(j, &m, "longer than %zu bytes (a socket path)",
		    sizeof(sa.sun_path) - 1);
	}
	if (get_path(j, dn, "state_dir", "/var/lib/certconn", false, &d->state_dir) == -1)
		return -1;
	if (get_user(j, dn, "user_net", "_certconn-net", &d->user_net) == -1 ||
	    get_user(j, dn, "user_keys", "_certconn-keys", &d->user_keys) == -1)
		return -1;
	if (strcmp(d->user_net, d->user_keys) == 0) {
		if (!cc_jck_member(dn, "user_keys", &m) && !cc_jck_member(dn, "user_net", &m))
			m = *dn;
		return cc_jck_fail(j, &m, "net and keys must run as different users");
	}
	if (cc_jck_opt_bool(j, dn, "seccomp", true, &d->seccomp) == -1 ||
	    cc_jck_opt_bool(j, dn, "landlock", true, &d->landlock) == -1)
		return -1;
	if (cc_jck_opt_uint(j, dn, "restart_max", 5, 1, 100, &v) == -1)
		return -1;
	d->restart_max = (uint32_t)v;
	if (cc_jck_opt_uint(j, dn, "restart_window_s", 60, 1, 86400, &v) == -1)
		return -1;
	d->restart_window_s = (uint32_t)v;
	return 0;
}

static const char *
listen_problem(const char *s, struct cc_config_net *n)
{
	struct in6_addr a6;
	struct in_addr a4;
	const char *colon, *h, *hend, *p;
	unsigned long port = 0;
	size_t k, hlen;

	colon = strrchr(s, ':');
	if (colon == NULL)
		return "expected host:port";
	h = s;
	hend = colon;
	if (s[0] == '[') {
		if (colon == s || colon[-1] != ']')
			return "expected [IPv6 address]:port";
		h = s + 1;
		hend = colon - 1;
	}
	hlen = (size_t)(hend - h);
	if (hlen == 0)
		return "the host is empty";
	if (hlen >= sizeof(n->host))
		return "the host is too long";
	memcpy(n->host, h, hlen);
	n->host[hlen] = '\0';
	for (p = colon + 1; *p != '\0'; p++) {
		if (*p < '0' || *p > '9' || port > 65535)
			return "the port must be a number 1..65535";
		port = port * 10 + (unsigned long)(*p - '0');
	}
	if (colon[1] == '\0' || port == 0 || port > 65535)
		return "the port must be a number 1..65535";
	n->port = (uint16_t)port;
	if (s[0] == '[')
		return inet_pton(AF_INET6, n->host, &a6) == 1 ? NULL : "not an IPv6 address";
	if (strchr(n->host, ':') != NULL)
		return "an IPv6 address goes in brackets: [addr]:port";
	if (inet_pton(AF_INET, n->host, &a4) == 1)
		return NULL;
	for (k = 0; k < hlen; k++)
		if (!((n->host[k] >= 'a' && n->host[k] <= 'z') ||
		    (n->host[k] >= 'A' && n->host[k] <= 'Z') ||
		    (n->host[k] >= '0' && n->host[k] <= '9') || n->host[k] == '-' ||
		    n->host[k] == '.'))
			return "not a host name or IP address";
	if (hlen > 253)
		return "the host is too long";
	return NULL;
}

/* The "net" object, in the file or in net_json: the one place net's keys are checked. */
static int
check_net(struct cc_jck *j, const struct cc_jnode *nn, struct cc_config_net *n)
{
	static const char *const keys[] = { "listen", "keys_channels", "state_dir", "listen_tls",
		"tls_cert", "scep", "ca", "service", "flows", NULL };
	struct cc_jnode m = *nn, sub;
	struct cc_config_net t;
	uint8_t *der = NULL;
	size_t der_len = 0;
	const char *s = "127.0.0.1:8080", *why;
	uint64_t v;

	memset(n, 0, sizeof(*n));
	if (cc_jck_object(j, nn, keys, 16) == -1)
		return -1;
	if (cc_jck_member(nn, "listen", &m) && cc_jck_str(j, &m, CC_LISTEN_MAX - 1, &s) == -1)
		return -1;
	why = listen_problem(s, n);
	if (why != NULL)
		return cc_jck_fail(j, &m, "%s", why);
	memcpy(n->listen, s, strlen(s) + 1);
	if (cc_jck_opt_uint(j, nn, "keys_channels", 2, 1, CC_MAX_PEER_CHANNELS, &v) == -1)
		return -1;
	n->keys_channels = (uint32_t)v;
	if (cc_jck_member(nn, "state_dir", &m)) {
		if (cc_jck_str(j, &m, CC_STATE_DIR_MAX - 1, &s) == -1 || check_abs(j, &m, s) == -1)
			return -1;
		memcpy(n->state_dir, s, strlen(s) + 1);
	}
	/* HTTPS: a second listener whose server key is the tls role in the token. */
	if (cc_jck_member(nn, "tls_cert", &m)) {
		if (cc_jck_str(j, &m, sizeof(n->tls_cert) - 1, &s) == -1 ||
		    check_abs(j, &m, s) == -1 || check_regular(j, &m, s) == -1 ||
		    load_cert(j, &m, s, &der, &der_len) == -1)
			return -1;
		free(der);
		memcpy(n->tls_cert, s, strlen(s) + 1);
	}
	if (cc_jck_member(nn, "listen_tls", &m)) {
		if (cc_jck_str(j, &m, CC_LISTEN_MAX - 1, &s) == -1)
			return -1;
		memset(&t, 0, sizeof(t));
		why = listen_problem(s, &t);
		if (why != NULL)
			return cc_jck_fail(j, &m, "%s", why);
		if (n->tls_cert[0] == '\0')
			return cc_jck_fail_missing(j, nn, "tls_cert");
		memcpy(n->listen_tls, s, strlen(s) + 1);
		memcpy(n->tls_host, t.host, sizeof(t.host));
		n->tls_port = t.port;
	}
	/* Each feature section is checked by its module's file (config_<name>.c). */
	if (cc_jck_member(nn, "scep", &sub) && cc_config_check_scep(j, &sub, &n->scep) == -1)
		return -1;
	if (cc_jck_member(nn, "ca", &sub) && cc_config_check_ca(j, &sub, &n->ca) == -1)
		return -1;
	if (cc_jck_member(nn, "service", &sub) &&
	    cc_config_check_service(j, &sub, &n->service) == -1)
		return -1;
	if (cc_jck_member(nn, "flows", &sub) && cc_config_check_flows(j, &sub, &n->flows) == -1)
		return -1;
	return 0;
}

/* net gets the "net" object as written (compact); it fills in the defaults itself. */
static char *
net_to_json(const struct cc_jnode *nn, const char *state_dir)
{
	cJSON *o = cJSON_Duplicate(nn->item, 1);
	char *s = NULL;

	if (o == NULL)
		return NULL;
	if (cJSON_GetObjectItemCaseSensitive(o, "state_dir") != NULL ||
	    state_dir[0] == '\0' || cJSON_AddStringToObject(o, "state_dir", state_dir) != NULL)
		s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return s;
}

int
cc_config_load_buf(const char *text, size_t len, const char *name, struct cc_config *c,
    char *err, size_t errlen)
{
	static const char *const keys[] = { "pkcs11", "keys", "log", "daemon", "net", NULL };
	struct cc_jnode root, m;
	struct cc_jck j;
	cJSON empty;
	char *js;
	int ret = -1;

	memset(c, 0, sizeof(*c));
	if (cc_jck_parse(&j, name, text, len, err, errlen, NULL, &root) == -1)
		goto out;
	c->path = strdup(name);
	if (c->path == NULL) {
		cc_jck_fail(&j, &root, "out of memory");
		goto out;
	}
	if (cc_jck_object(&j, &root, keys, 16) == -1)
		goto out;
	if (!cc_jck_member(&root, "pkcs11", &m)) {
		cc_jck_fail_missing(&j, &root, "pkcs11");
		goto out;
	}
	if (check_pkcs11(&j, &m, &c->pkcs11) == -1)
		goto out;
	if (!cc_jck_member(&root, "keys", &m)) {
		cc_jck_fail_missing(&j, &root, "keys");
		goto out;
	}
	if (check_keys(&j, &m, &c->keys) == -1)
		goto out;
	section(&root, "log", &empty, &m);
	if (check_log(&j, &m, &c->log) == -1)
		goto out;
	section(&root, "daemon", &empty, &m);
	if (check_daemon(&j, &m, &c->daemon) == -1)
		goto out;
	section(&root, "net", &empty, &m);
	if (check_net(&j, &m, &c->net) == -1)
		goto out;
	/* check_net accepted m as an object (an absent section is an empty one). net's state
	 * directory defaults to <daemon.state_dir>/net. */
	if (c->net.state_dir[0] == '\0' && c->daemon.state_dir != NULL &&
	    snprintf(c->net.state_dir, sizeof(c->net.state_dir), "%s/net",
	    c->daemon.state_dir) >= (int)sizeof(c->net.state_dir)) {
		cc_jck_fail(&j, &m, "daemon.state_dir is too long for net");
		goto out;
	}
	js = net_to_json(&m, c->net.state_dir);
	/* Keep the copy in malloc's hands, not cJSON's. */
	c->net_json = js != NULL ? strdup(js) : NULL;
	cJSON_free(js);
	if (c->net_json == NULL || strlen(c->net_json) >= CC_MSG_MAX / 2) {
		cc_jck_fail(&j, &m, c->net_json ? "too large to pass to net" : "out of memory");
		goto out;
	}
	ret = 0;
out:
	cc_jck_done(&j);
	if (ret == -1)
		cc_config_free(c);
	return ret;
}

int
cc_config_load(const char *path, struct cc_config *c, char *err, size_t errlen)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int ret;

	memset(c, 0, sizeof(*c));
	if (cc_read_file(path, CC_JCK_MAX_TEXT, &buf, &len) == -1) {
		snprintf(err, errlen, "%s: %s", path, errno == EFBIG ? "file too large" :
		    errno == EINVAL ? "not a regular file" : strerror(errno));
		return -1;
	}
	ret = cc_config_load_buf((const char *)buf, len, path, c, err, errlen);
	free(buf);
	return ret;
}

void
cc_config_free(struct cc_config *c)
{
	size_t k;

	if (c == NULL)
		return;
	free(c->path);
	free(c->pkcs11.module);
	for (k = 0; k < c->pkcs11.nenv; k++) {
		free(c->pkcs11.env[k].name);
		free(c->pkcs11.env[k].value);
	}
	free(c->pkcs11.pin_file);
	free(c->pkcs11.pin_credential);
	free(c->pkcs11.pin_path);
	free(c->keys.policy_path);
	for (k = 0; c->keys.roles != NULL && k < c->keys.nroles; k++) {
		free(c->keys.roles[k].name);
		free(c->keys.roles[k].uri);
		free(c->keys.roles[k].cert_path);
		OPENSSL_free(c->keys.roles[k].cert);
		free(c->keys.roles[k].ekus);
	}
	free(c->keys.roles);
	free(c->log.dir);
	free(c->daemon.control_socket);
	free(c->daemon.state_dir);
	free(c->daemon.user_net);
	free(c->daemon.user_keys);
	cc_config_net_free(&c->net);
	free(c->net_json);
	memset(c, 0, sizeof(*c));
}

int
cc_config_load_net(const char *json, struct cc_config_net *n, char *err, size_t errlen)
{
	struct cc_jnode root;
	struct cc_jck j;
	int ret = -1;

	memset(n, 0, sizeof(*n));
	if (json == NULL) {
		snprintf(err, errlen, "(net config): missing");
		return -1;
	}
	if (cc_jck_parse(&j, "(net config)", json, strlen(json), err, errlen, "net",
	    &root) == -1)
		goto out;
	if (check_net(&j, &root, n) == -1)
		goto out;
	ret = 0;
out:
	cc_jck_done(&j);
	if (ret == -1)
		cc_config_net_free(n);
	return ret;
}

void
cc_config_net_free(struct cc_config_net *n)
{
	if (n == NULL)
		return;
	cc_config_scep_free(n->scep);
	cc_config_ca_free(n->ca);
	cc_config_service_free(n->service);
	cc_config_flows_free(n->flows);
	memset(n, 0, sizeof(*n));
}

void
cc_config_conf_role(const struct cc_config_role *r, struct cc_conf_role *out)
{
	memset(out, 0, sizeof(*out));
	out->name = r->name;
	out->uri = r->uri;
	out->mechs = r->mechs;
	out->flags = r->flags;
	out->cert = r->cert;
	out->cert_len = r->cert_len;
	out->max_validity_days = r->max_validity_days;
	out->key_usage = r->key_usage;
	out->ekus = r->ekus ? r->ekus : "";
	out->max_crl_days = r->max_crl_days;
}

int
cc_config_read_pin(const struct cc_config *c, uint8_t **pin, size_t *len, char *err,
    size_t errlen)
{
	uint8_t *buf = NULL;
	size_t n = 0, got;

	*pin = NULL;
	*len = 0;
	if (c->pkcs11.pin_path == NULL) {
		snprintf(err, errlen, "no PIN source configured");
		return -1;
	}
	/* Room for the PIN and a "\r\n" after it. */
	if (cc_read_file(c->pkcs11.pin_path, CC_CONFIG_PIN_MAX + 2, &buf, &n) == -1) {
		snprintf(err, errlen, "%s: %s", c->pkcs11.pin_path,
		    errno == EFBIG ? "longer than a PIN can be" :
		    errno == EINVAL ? "not a regular file" : strerror(errno));
		return -1;
	}
	got = n;
	if (n > 0 && buf[n - 1] == '\n')
		n--;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	if (n == 0 || n > CC_CONFIG_PIN_MAX) {
		snprintf(err, errlen, "%s: %s", c->pkcs11.pin_path,
		    n == 0 ? "the PIN is empty" : "longer than a PIN can be");
		cc_free_secret(buf, got);
		return -1;
	}
	*pin = buf;
	*len = n;
	return 0;
}
