/* Key-role policy loader and the mechanism / keyUsage / EKU name tables. See policy.h. */
#include "certconn/policy.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "certconn/util.h"
#include "jsonck.h"

struct name_bit {
	const char *name;
	uint32_t bit;
};

static const struct name_bit mech_names[] = {
	{ "sign-rsa-pkcs1", CC_MECH_SIGN_RSA_PKCS1 },
	{ "sign-rsa-pss", CC_MECH_SIGN_RSA_PSS },
	{ "sign-ecdsa", CC_MECH_SIGN_ECDSA },
	{ "decrypt-rsa-pkcs1", CC_MECH_DECRYPT_RSA_PKCS1 },
	{ "decrypt-rsa-oaep", CC_MECH_DECRYPT_RSA_OAEP },
	{ "sign-tbs", CC_MECH_SIGN_TBS },
	{ NULL, 0 }
};

static const struct name_bit ku_names[] = {
	{ "digitalSignature", KU_DIGITAL_SIGNATURE },
	{ "nonRepudiation", KU_NON_REPUDIATION },
	{ "keyEncipherment", KU_KEY_ENCIPHERMENT },
	{ "dataEncipherment", KU_DATA_ENCIPHERMENT },
	{ "keyAgreement", KU_KEY_AGREEMENT },
	{ "keyCertSign", KU_KEY_CERT_SIGN },
	{ "cRLSign", KU_CRL_SIGN },
	{ "encipherOnly", KU_ENCIPHER_ONLY },
	{ "decipherOnly", KU_DECIPHER_ONLY },
	{ NULL, 0 }
};

static const struct {
	const char *name;
	const char *oid;
} eku_names[] = {
	{ "serverAuth", "1.3.6.1.5.5.7.3.1" },
	{ "clientAuth", "1.3.6.1.5.5.7.3.2" },
	{ "codeSigning", "1.3.6.1.5.5.7.3.3" },
	{ "emailProtection", "1.3.6.1.5.5.7.3.4" },
	{ "timeStamping", "1.3.6.1.5.5.7.3.8" },
	{ "OCSPSigning", "1.3.6.1.5.5.7.3.9" },
	{ NULL, NULL }
};

/* Mechanisms that sign a digest the caller chose (as opposed to a checked TBS). */
#define DIGEST_SIGN_MECHS (CC_MECH_SIGN_RSA_PKCS1 | CC_MECH_SIGN_RSA_PSS | CC_MECH_SIGN_ECDSA)

static uint32_t
bit_from_name(const struct name_bit *t, const char *name)
{
	for (; t->name != NULL; t++)
		if (strcmp(t->name, name) == 0)
			return t->bit;
	return 0;
}

static int
bits_to_names(const struct name_bit *t, uint32_t bits, char *buf, size_t len)
{
	size_t off = 0;
	int n, cut = 0;

	if (len == 0)
		return -1;
	buf[0] = '\0';
	for (; t->name != NULL; t++) {
		if (!(bits & t->bit))
			continue;
		bits &= ~t->bit;
		n = snprintf(buf + off, len - off, "%s%s", off ? "," : "", t->name);
		if (n < 0 || (size_t)n >= len - off) {
			cut = 1;
			break;
		}
		off += (size_t)n;
	}
	if (!cut && bits != 0) {
		n = snprintf(buf + off, len - off, "%s0x%x", off ? "," : "", bits);
		if (n < 0 || (size_t)n >= len - off)
			cut = 1;
	}
	if (cut) /* never leave half a name behind */
		buf[off] = '\0';
	return cut ? -1 : 0;
}

uint32_t
cc_mech_from_name(const char *name)
{
	return name ? bit_from_name(mech_names, name) : 0;
}

const char *
cc_mech_name(uint32_t bit)
{
	const struct name_bit *t;

	for (t = mech_names; t->name != NULL; t++)
		if (t->bit == bit)
			return t->name;
	return NULL;
}

int
cc_mech_names(uint32_t bits, char *buf, size_t len)
{
	return bits_to_names(mech_names, bits, buf, len);
}

uint32_t
cc_ku_from_name(const char *name)
{
	return name ? bit_from_name(ku_names, name) : 0;
}

int
cc_ku_names(uint32_t bits, char *buf, size_t len)
{
	return bits_to_names(ku_names, bits, buf, len);
}

int
cc_eku_to_oid(const char *name, char *oid, size_t len)
{
	ASN1_OBJECT *obj;
	const char *p;
	size_t k, arcs;
	int n;

	if (name == NULL || len == 0)
		return -1;
	for (k = 0; eku_names[k].name != NULL; k++) {
		if (strcmp(eku_names[k].name, name) == 0) {
			if (strlen(eku_names[k].oid) >= len)
				return -1;
			strcpy(oid, eku_names[k].oid);
			return 0;
		}
	}
	/*
	 * Strict dotted form first: OBJ_txt2obj would also take names we do not list, and it
	 * reads "1..3" as 1.0.3 and "1.3." as 1.3. Arcs are digits without leading zeros.
	 */
	arcs = 0;
	for (p = name; *p != '\0'; p++) {
		if (p == name || p[-1] == '.') {
			if (!(*p >= '0' && *p <= '9') || (*p == '0' && p[1] >= '0' && p[1] <= '9'))
				return -1;
			arcs++;
		} else if (!((*p >= '0' && *p <= '9') || (*p == '.' && p[1] != '\0'))) {
			return -1;
		}
	}
	if (arcs < 2)
		return -1;
	obj = OBJ_txt2obj(name, 1);
	if (obj == NULL)
		return -1;
	n = OBJ_obj2txt(oid, (int)(len > 0x7fffffff ? 0x7fffffff : len), obj, 1);
	ASN1_OBJECT_free(obj);
	if (n <= 0 || (size_t)n >= len)
		return -1;
	return 0;
}

const char *
cc_eku_name(const char *oid)
{
	size_t k;

	if (oid == NULL)
		return NULL;
	for (k = 0; eku_names[k].name != NULL; k++)
		if (strcmp(eku_names[k].oid, oid) == 0)
			return eku_names[k].name;
	return NULL;
}

const struct cc_policy_role *
cc_policy_find(const struct cc_policy *p, const char *name)
{
	size_t k;

	if (name == NULL)
		return NULL;
	for (k = 0; k < p->nroles; k++)
		if (strcmp(p->roles[k].name, name) == 0)
			return &p->roles[k];
	return NULL;
}

int
cc_policy_default_path(char *buf, size_t len)
{
	struct stat st;
	int n;

	n = snprintf(buf, len, "%s/keyroles.json", CC_DATADIR);
	if (n < 0 || (size_t)n >= len)
		return -1;
	if (stat(buf, &st) == 0)
		return 0;
	n = snprintf(buf, len, "%s/policy/keyroles.json", CC_SOURCE_DIR);
	if (n < 0 || (size_t)n >= len)
		return -1;
	return 0;
}

static int
role_name_ok(const char *s)
{
	size_t k, len = strlen(s);

	if (len == 0 || len >= CC_ROLE_NAME_MAX || !(s[0] >= 'a' && s[0] <= 'z'))
		return 0;
	for (k = 0; k < len; k++)
		if (!((s[k] >= 'a' && s[k] <= 'z') || (s[k] >= '0' && s[k] <= '9') || s[k] == '-'))
			return 0;
	return 1;
}

static int
policy_role(struct cc_jck *j, const struct cc_jnode *rn, struct cc_policy_role *r)
{
	static const char *const keys[] = { "description", "mechanisms", "fallback", "tbs_only",
		NULL };
	struct cc_jnode mn, en;
	const cJSON *it;
	const char *s;
	uint32_t bit, i;
	size_t count;
	bool b;

	if (!role_name_ok(rn->name))
		return cc_jck_fail(j, rn, "bad role name (1..31 of a-z, 0-9 and '-', starting "
		    "with a letter)");
	if (cc_jck_object(j, rn, keys, 8) == -1)
		return -1;
	memset(r, 0, sizeof(*r));
	memcpy(r->name, rn->name, strlen(rn->name) + 1);
	if (cc_jck_member(rn, "description", &mn) && cc_jck_str(j, &mn, 1024, &s) == -1)
		return -1;
	if (!cc_jck_member(rn, "mechanisms", &mn))
		return cc_jck_fail_missing(j, rn, "mechanisms");
	if (cc_jck_array(j, &mn, 16, &count) == -1)
		return -1;
	if (count == 0)
		return cc_jck_fail(j, &mn, "must list at least one mechanism");
	for (it = mn.item->child, i = 0; it != NULL; it = it->next, i++) {
		cc_jck_element(&mn, it, i, &en);
		if (cc_jck_str(j, &en, 64, &s) == -1)
			return -1;
		bit = cc_mech_from_name(s);
		if (bit == 0)
			return cc_jck_fail(j, &en, "unknown mechanism \"%s\"", s);
		if (r->mechs & bit)
			return cc_jck_fail(j, &en, "\"%s\" is listed twice", s);
		r->mechs |= bit;
	}
	if (cc_jck_opt_bool(j, rn, "fallback", false, &b) == -1)
		return -1;
	if (b)
		r->flags |= CC_ROLE_FALLBACK;
	if (cc_jck_opt_bool(j, rn, "tbs_only", false, &b) == -1)
		return -1;
	if (b) {
		r->flags |= CC_ROLE_TBS_ONLY;
		if (!(r->mechs & CC_MECH_SIGN_TBS) || (r->mechs & DIGEST_SIGN_MECHS))
			return cc_jck_fail(j, &mn, "a tbs_only role needs sign-tbs and no "
			    "digest signing (sign-rsa-pkcs1, sign-rsa-pss, sign-ecdsa)");
	} else if (r->mechs & CC_MECH_SIGN_TBS) {
		return cc_jck_fail(j, &mn, "sign-tbs needs \"tbs_only\": true");
	}
	return 0;
}

int
cc_policy_load_buf(const char *text, size_t len, const char *name, struct cc_policy *p,
    char *err, size_t errlen)
{
	static const char *const keys[] = { "version", "roles", NULL };
	struct cc_jnode root, rolesn, rn;
	struct cc_jck j;
	const cJSON *it;
	uint64_t version;
	uint32_t i;
	int ret = -1;

	memset(p, 0, sizeof(*p));
	if (cc_jck_parse(&j, name, text, len, err, errlen, NULL, &root) == -1)
		goto out;
	if (cc_jck_object(&j, &root, keys, 8) == -1)
		goto out;
	if (cc_jck_opt_uint(&j, &root, "version", 1, 1, 1, &version) == -1)
		goto out;
	if (!cc_jck_member(&root, "roles", &rolesn)) {
		cc_jck_fail_missing(&j, &root, "roles");
		goto out;
	}
	if (cc_jck_object(&j, &rolesn, NULL, CC_POLICY_MAX_ROLES) == -1)
		goto out;
	if (rolesn.item->child == NULL) {
		cc_jck_fail(&j, &rolesn, "must define at least one role");
		goto out;
	}
	for (it = rolesn.item->child, i = 0; it != NULL; it = it->next, i++) {
		rn = (struct cc_jnode){ it, &rolesn, i, it->string };
		if (policy_role(&j, &rn, &p->roles[p->nroles]) == -1)
			goto out;
		p->nroles++;
	}
	if (strlen(name) >= sizeof(p->path)) {
		cc_jck_fail(&j, &root, "file name too long");
		goto out;
	}
	memcpy(p->path, name, strlen(name) + 1);
	ret = 0;
out:
	cc_jck_done(&j);
	if (ret == -1)
		memset(p, 0, sizeof(*p));
	return ret;
}

int
cc_policy_load(const char *path, struct cc_policy *p, char *err, size_t errlen)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int ret;

	memset(p, 0, sizeof(*p));
	if (cc_read_file(path, CC_JCK_MAX_TEXT, &buf, &len) == -1) {
		snprintf(err, errlen, "%s: %s", path,
		    errno == EFBIG ? "file too large" :
		    errno == EINVAL ? "not a regular file" : strerror(errno));
		return -1;
	}
	ret = cc_policy_load_buf((const char *)buf, len, path, p, err, errlen);
	free(buf);
	return ret;
}
