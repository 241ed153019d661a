/*
 * The "issuance" object of a SCEP profile in checked JSON (certconnd.json(5)):
 *
 *   "issuance": {
 *     "subject_template": "CN={cn},O=Example",   absent: the request's subject is copied
 *     "require_cn": true,
 *     "san": ["dns", "ip", "email", "uri", "upn"],
 *     "san_max": 16,
 *     "dns_suffixes": ["example.com"],
 *     "sid_passthrough": true,
 *     "key_types": ["rsa", "ec"], "rsa_min_bits": 2048, "rsa_max_bits": 8192,
 *     "ec_curves": ["P-256", "P-384", "P-521"],
 *     "key_usage": ["digitalSignature", "keyEncipherment"],
 *     "eku": ["clientAuth"],
 *     "validity_days": 365, "backdate_s": 300,
 *     "csr_attributes": ["challengePassword", "extensionRequest"]
 *   }
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/objects.h>
#include <openssl/x509.h>

#include "certconn/issuance.h"
#include "certconn/policy.h"
#include "jsonck.h"

/* Reads an array of names into bits through fn (0 = unknown name). */
static int
name_bits(struct cc_jck *j, const struct cc_jnode *obj, const char *key,
    uint32_t (*fn)(const char *), uint32_t *out)
{
	struct cc_jnode m, e;
	const cJSON *it;
	size_t count;
	uint32_t i = 0, bits = 0, b;
	const char *s;

	if (!cc_jck_member(obj, key, &m))
		return 0;
	if (cc_jck_array(j, &m, 16, &count) == -1)
		return -1;
	cJSON_ArrayForEach(it, m.item) {
		cc_jck_element(&m, it, i++, &e);
		if (cc_jck_str(j, &e, 64, &s) == -1)
			return -1;
		b = fn(s);
		if (b == 0)
			return cc_jck_fail(j, &e, "unknown value \"%s\"", s);
		if (bits & b)
			return cc_jck_fail(j, &e, "\"%s\" is listed twice", s);
		bits |= b;
	}
	*out = bits;
	return 0;
}

static uint32_t
san_bit(const char *s)
{
	static const struct { const char *n; uint32_t b; } t[] = {
		{ "dns", CC_ISS_SAN_DNS }, { "ip", CC_ISS_SAN_IP }, { "email", CC_ISS_SAN_EMAIL },
		{ "uri", CC_ISS_SAN_URI }, { "upn", CC_ISS_SAN_UPN },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strcmp(t[i].n, s) == 0)
			return t[i].b;
	return 0;
}

static uint32_t
key_bit(const char *s)
{
	return strcmp(s, "rsa") == 0 ? CC_ISS_KEY_RSA : strcmp(s, "ec") == 0 ? CC_ISS_KEY_EC : 0;
}

static uint32_t
curve_bit(const char *s)
{
	if (strcmp(s, "P-256") == 0)
		return CC_ISS_CURVE_P256;
	if (strcmp(s, "P-384") == 0)
		return CC_ISS_CURVE_P384;
	if (strcmp(s, "P-521") == 0)
		return CC_ISS_CURVE_P521;
	return 0;
}

/* CSR attribute names known by OpenSSL (challengePassword, extensionRequest...) or OIDs. */
static int
attr_oid(const char *s, char *oid, size_t len)
{
	ASN1_OBJECT *o;

	/* PKCS#9's name, which OpenSSL calls extReq */
	if (strcmp(s, "extensionRequest") == 0)
		s = "1.2.840.113549.1.9.14";
	o = OBJ_txt2obj(s, 0);
	int n;

	if (o == NULL)
		return -1;
	n = OBJ_obj2txt(oid, (int)len, o, 1);
	ASN1_OBJECT_free(o);
	return n > 0 && (size_t)n < len ? 0 : -1;
}

enum list_kind { LIST_SUFFIX, LIST_EKU, LIST_ATTR };

static int
str_list(struct cc_jck *j, const struct cc_jnode *obj, const char *key, enum list_kind kind,
    char **v, size_t *n, bool *given)
{
	struct cc_jnode m, e;
	const cJSON *it;
	size_t count;
	uint32_t i = 0;
	char oid[CC_OID_MAX];
	const char *s;

	if (!cc_jck_member(obj, key, &m))
		return 0;
	if (cc_jck_array(j, &m, CC_ISS_MAX_LIST, &count) == -1)
		return -1;
	if (given != NULL)
		*given = true;
	cJSON_ArrayForEach(it, m.item) {
		cc_jck_element(&m, it, i++, &e);
		if (cc_jck_str(j, &e, 253, &s) == -1)
			return -1;
		switch (kind) {
		case LIST_SUFFIX:
			for (const char *c = s; *c != '\0'; c++)
				if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
				    (*c >= '0' && *c <= '9') || *c == '-' || *c == '.'))
					return cc_jck_fail(j, &e, "not a DNS name suffix");
			break;
		case LIST_EKU:
			if (cc_eku_to_oid(s, oid, sizeof(oid)) == -1)
				return cc_jck_fail(j, &e, "unknown extended key usage \"%s\" (a name such "
				    "as clientAuth, or a dotted OID)", s);
			s = oid;
			break;
		case LIST_ATTR:
			if (attr_oid(s, oid, sizeof(oid)) == -1)
				return cc_jck_fail(j, &e, "unknown attribute \"%s\" (a name such as "
				    "challengePassword, or a dotted OID)", s);
			s = oid;
			break;
		}
		v[*n] = strdup(s);
		if (v[*n] == NULL)
			return cc_jck_fail(j, &e, "out of memory");
		(*n)++;
	}
	return 0;
}

int
cc_issuance_check(struct cc_jck *j, const struct cc_jnode *n, struct cc_issuance *p)
{
	static const char *const keys[] = { "subject_template", "require_cn", "san", "san_max",
		"dns_suffixes", "sid_passthrough", "key_types", "rsa_min_bits", "rsa_max_bits",
		"ec_curves", "key_usage", "eku", "validity_days", "backdate_s", "csr_attributes",
		NULL };
	struct cc_jnode m;
	X509_NAME *nm = NULL;
	char why[256];
	uint64_t v;

	cc_issuance_defaults(p);
	if (cc_jck_object(j, n, keys, 32) == -1)
		goto fail;
	if (cc_jck_opt_str(j, n, "subject_template", NULL, 1024, &p->subject_template) == -1)
		goto fail;
	if (p->subject_template != NULL) {
		cc_jck_member(n, "subject_template", &m);
		if (cc_issuance_template_build(p->subject_template, NULL, &nm, why,
		    sizeof(why)) == -1) {
			cc_jck_fail(j, &m, "%s", why);
			goto fail;
		}
		X509_NAME_free(nm);
		p->subject_mode = CC_ISS_SUBJECT_TEMPLATE;
	}
	if (cc_jck_opt_bool(j, n, "require_cn", true, &p->require_cn) == -1 ||
	    name_bits(j, n, "san", san_bit, &p->san_copy) == -1 ||
	    cc_jck_opt_uint(j, n, "san_max", 16, 0, 64, &v) == -1)
		goto fail;
	p->san_max = (uint32_t)v;
	if (str_list(j, n, "dns_suffixes", LIST_SUFFIX, p->dns_suffixes, &p->ndns_suffixes,
	    NULL) == -1 ||
	    cc_jck_opt_bool(j, n, "sid_passthrough", true, &p->sid_passthrough) == -1 ||
	    name_bits(j, n, "key_types", key_bit, &p->key_types) == -1)
		goto fail;
	if (p->key_types == 0) {
		cc_jck_member(n, "key_types", &m);
		cc_jck_fail(j, &m, "at least one key type is needed");
		goto fail;
	}
	if (cc_jck_opt_uint(j, n, "rsa_min_bits", 2048, 1024, 16384, &v) == -1)
		goto fail;
	p->rsa_min_bits = (uint32_t)v;
	if (cc_jck_opt_uint(j, n, "rsa_max_bits", 8192, p->rsa_min_bits, 16384, &v) == -1)
		goto fail;
	p->rsa_max_bits = (uint32_t)v;
	if (name_bits(j, n, "ec_curves", curve_bit, &p->ec_curves) == -1 ||
	    name_bits(j, n, "key_usage", cc_ku_from_name, &p->key_usage) == -1 ||
	    str_list(j, n, "eku", LIST_EKU, p->ekus, &p->nekus, &p->ekus_set) == -1)
		goto fail;
	if (p->key_usage & (KU_KEY_CERT_SIGN | KU_CRL_SIGN)) {
		cc_jck_member(n, "key_usage", &m);
		cc_jck_fail(j, &m, "keyCertSign and cRLSign are for CAs; SCEP issues end-entity "
		    "certificates only");
		goto fail;
	}
	if (cc_jck_opt_uint(j, n, "validity_days", 365, 1, 36500, &v) == -1)
		goto fail;
	p->validity_days = (uint32_t)v;
	if (cc_jck_opt_uint(j, n, "backdate_s", 300, 0, 86400, &v) == -1)
		goto fail;
	p->backdate_s = (uint32_t)v;
	if (str_list(j, n, "csr_attributes", LIST_ATTR, p->allowed_attrs, &p->nallowed_attrs,
	    &p->attrs_restricted) == -1)
		goto fail;
	return 0;
fail:
	cc_issuance_free(p);
	return -1;
}
