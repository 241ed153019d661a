/*
 * Issuance policy: applies a profile to a PKCS#10 request (include/certconn/issuance.h).
 * Everything read from the request is checked here before any of it reaches a certificate;
 * the CA only adds its own fields and signs.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certconn/issuance.h"

#define ISS_VALUE_MAX 256      /* one subject attribute value after substitution */
#define ISS_DNS_MAX 253
#define ISS_UPN_OID "1.3.6.1.4.1.311.20.2.3"

static int
why_set(char *why, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int
why_set(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (why != NULL && len > 0) {
		va_start(ap, fmt);
		vsnprintf(why, len, fmt, ap);
		va_end(ap);
	}
	return -1;
}

void
cc_issuance_defaults(struct cc_issuance *p)
{
	memset(p, 0, sizeof(*p));
	p->subject_mode = CC_ISS_SUBJECT_COPY;
	p->require_cn = true;
	p->san_copy = CC_ISS_SAN_DNS | CC_ISS_SAN_IP | CC_ISS_SAN_EMAIL | CC_ISS_SAN_URI |
	    CC_ISS_SAN_UPN;
	p->san_max = 16;
	p->sid_passthrough = true;
	p->key_types = CC_ISS_KEY_RSA | CC_ISS_KEY_EC;
	p->rsa_min_bits = 2048;
	p->rsa_max_bits = 8192;
	p->ec_curves = CC_ISS_CURVE_P256 | CC_ISS_CURVE_P384 | CC_ISS_CURVE_P521;
	p->validity_days = 365;
	p->backdate_s = 300;
}

static void
free_list(char **v, size_t *n)
{
	for (size_t i = 0; i < *n; i++) {
		free(v[i]);
		v[i] = NULL;
	}
	*n = 0;
}

void
cc_issuance_free(struct cc_issuance *p)
{
	if (p == NULL)
		return;
	free(p->subject_template);
	p->subject_template = NULL;
	free_list(p->dns_suffixes, &p->ndns_suffixes);
	free_list(p->ekus, &p->nekus);
	free_list(p->allowed_attrs, &p->nallowed_attrs);
}

static int
copy_list(char **dst, size_t *dn, char *const *src, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		dst[i] = strdup(src[i]);
		if (dst[i] == NULL)
			return -1;
		*dn = i + 1;
	}
	return 0;
}

int
cc_issuance_copy(struct cc_issuance *dst, const struct cc_issuance *src)
{
	*dst = *src;
	dst->subject_template = NULL;
	dst->ndns_suffixes = dst->nekus = dst->nallowed_attrs = 0;
	if ((src->subject_template != NULL &&
	    (dst->subject_template = strdup(src->subject_template)) == NULL) ||
	    copy_list(dst->dns_suffixes, &dst->ndns_suffixes, src->dns_suffixes,
	    src->ndns_suffixes) == -1 ||
	    copy_list(dst->ekus, &dst->nekus, src->ekus, src->nekus) == -1 ||
	    copy_list(dst->allowed_attrs, &dst->nallowed_attrs, src->allowed_attrs,
	    src->nallowed_attrs) == -1) {
		cc_issuance_free(dst);
		return -1;
	}
	return 0;
}

void
cc_iss_result_free(struct cc_iss_result *r)
{
	if (r == NULL)
		return;
	X509_NAME_free(r->subject);
	GENERAL_NAMES_free(r->san);
	sk_ASN1_OBJECT_pop_free(r->ekus, ASN1_OBJECT_free);
	EVP_PKEY_free(r->pubkey);
	memset(r, 0, sizeof(*r));
}

/* ---- keys ---- */

int
cc_issuance_check_key(const struct cc_issuance *p, EVP_PKEY *k, char *why, size_t whylen)
{
	char group[64];
	size_t glen = 0;
	int bits;

	if (k == NULL)
		return why_set(why, whylen, "the request has no usable public key");
	bits = EVP_PKEY_get_bits(k);
	if (EVP_PKEY_is_a(k, "RSA")) {
		if (!(p->key_types & CC_ISS_KEY_RSA))
			return why_set(why, whylen, "key type RSA is not allowed by the profile");
		if (bits < (int)p->rsa_min_bits)
			return why_set(why, whylen, "key RSA-%d: the profile requires at least %u bits",
			    bits, p->rsa_min_bits);
		if (bits > (int)p->rsa_max_bits)
			return why_set(why, whylen, "key RSA-%d: the profile allows at most %u bits",
			    bits, p->rsa_max_bits);
		return 0;
	}
	if (EVP_PKEY_is_a(k, "EC")) {
		uint32_t c = 0;

		if (!(p->key_types & CC_ISS_KEY_EC))
			return why_set(why, whylen, "key type EC is not allowed by the profile");
		if (EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group,
		    sizeof(group), &glen) != 1)
			return why_set(why, whylen, "EC key without a named curve");
		if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0)
			c = CC_ISS_CURVE_P256;
		else if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0)
			c = CC_ISS_CURVE_P384;
		else if (strcmp(group, "secp521r1") == 0 || strcmp(group, "P-521") == 0)
			c = CC_ISS_CURVE_P521;
		if (!(p->ec_curves & c))
			return why_set(why, whylen, "EC curve %s is not allowed by the profile", group);
		return 0;
	}
	return why_set(why, whylen, "key type %s is not allowed (RSA and EC only)",
	    EVP_PKEY_get0_type_name(k) != NULL ? EVP_PKEY_get0_type_name(k) : "unknown");
}

/* ---- subject ---- */

bool
cc_issuance_sid_ok(const char *s)
{
	const char *p = s;
	int parts = 0;

	if (strncmp(p, "S-1-", 4) != 0)
		return false;
	p += 4;
	for (;;) {
		size_t n = 0;

		while (p[n] >= '0' && p[n] <= '9')
			n++;
		if (n == 0 || n > 10)
			return false;
		p += n;
		parts++;
		if (*p == '\0')
			break;
		if (*p != '-')
			return false;
		p++;
	}
	/* the authority and 1..15 sub-authorities */
	return parts >= 2 && parts <= 16;
}

/* UTF-8 text of the first nid attribute of name, malloc'd; NULL when absent or empty. */
static char *
name_value(const X509_NAME *name, int nid)
{
	const X509_NAME_ENTRY *e;
	unsigned char *u = NULL;
	int i, n;

	i = X509_NAME_get_index_by_NID(name, nid, -1);
	if (i < 0)
		return NULL;
	e = X509_NAME_get_entry(name, i);
	n = ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(e));
	if (n <= 0 || memchr(u, '\0', (size_t)n) != NULL) {
		OPENSSL_free(u);
		return NULL;
	}
	return (char *)u;
}

static const struct {
	const char *name;
	int nid;
} placeholders[] = {
	{ "cn", NID_commonName }, { "o", NID_organizationName },
	{ "ou", NID_organizationalUnitName }, { "c", NID_countryName },
	{ "l", NID_localityName }, { "st", NID_stateOrProvinceName },
	{ "email", NID_pkcs9_emailAddress }, { "serialNumber", NID_serialNumber },
	{ "uid", NID_userId },
};

/*
 * Builds a subject from template t. With csr NULL it only checks the template (placeholders
 * get "x"). The template is split at unescaped commas and each "TYPE=value" is substituted
 * on its own, so what a request supplies is only ever an attribute's value.
 */
int
cc_issuance_template_build(const char *t, const X509_NAME *req_subject, X509_NAME **out,
    char *why, size_t whylen)
{
	X509_NAME *name = X509_NAME_new();
	char type[64], val[ISS_VALUE_MAX + 1];
	const char *p = t;
	int ret = -1;

	*out = NULL;
	if (name == NULL)
		return why_set(why, whylen, "out of memory");
	while (*p != '\0') {
		size_t tl = 0, vl = 0;
		int nid;

		while (*p == ' ')
			p++;
		while (*p != '\0' && *p != '=' && tl < sizeof(type) - 1)
			type[tl++] = *p++;
		type[tl] = '\0';
		if (*p != '=' || tl == 0) {
			why_set(why, whylen, "subject template: expected TYPE=value near \"%.20s\"", p);
			goto out;
		}
		p++;
		nid = OBJ_txt2nid(type);
		if (nid == NID_undef) {
			why_set(why, whylen, "subject template: unknown attribute type %s", type);
			goto out;
		}
		while (*p != '\0' && *p != ',') {
			if (*p == '\\') {
				if (p[1] == '\0') {
					why_set(why, whylen, "subject template: ends with a backslash");
					goto out;
				}
				if (vl >= ISS_VALUE_MAX)
					goto toolong;
				val[vl++] = p[1];
				p += 2;
				continue;
			}
			if (*p == '{') {
				const char *end = strchr(p, '}');
				char ph[32], *v = NULL;
				size_t pl, k, found = SIZE_MAX;

				if (end == NULL || (pl = (size_t)(end - p - 1)) == 0 || pl >= sizeof(ph)) {
					why_set(why, whylen, "subject template: bad placeholder near \"%.20s\"",
					    p);
					goto out;
				}
				memcpy(ph, p + 1, pl);
				ph[pl] = '\0';
				for (k = 0; k < sizeof(placeholders) / sizeof(placeholders[0]); k++)
					if (strcmp(placeholders[k].name, ph) == 0)
						found = k;
				if (found == SIZE_MAX) {
					why_set(why, whylen, "subject template: unknown placeholder {%s}", ph);
					goto out;
				}
				if (req_subject != NULL) {
					v = name_value(req_subject, placeholders[found].nid);
					if (v == NULL) {
						why_set(why, whylen, "the request's subject has no %s, which the "
						    "profile's subject template needs", ph);
						goto out;
					}
				}
				pl = v != NULL ? strlen(v) : 1;
				if (vl + pl > ISS_VALUE_MAX) {
					OPENSSL_free(v);
					goto toolong;
				}
				memcpy(val + vl, v != NULL ? v : "x", pl);
				vl += pl;
				OPENSSL_free(v);
				p = end + 1;
				continue;
			}
			if (vl >= ISS_VALUE_MAX)
				goto toolong;
			val[vl++] = *p++;
		}
		val[vl] = '\0';
		if (vl == 0) {
			why_set(why, whylen, "subject attribute %s would be empty", type);
			goto out;
		}
		if (X509_NAME_add_entry_by_NID(name, nid, MBSTRING_UTF8, (unsigned char *)val,
		    (int)vl, -1, 0) != 1) {
			why_set(why, whylen, "subject attribute %s: value \"%.64s\" is not allowed "
			    "(length or characters)", type, val);
			goto out;
		}
		if (*p == ',')
			p++;
	}
	if (X509_NAME_entry_count(name) == 0) {
		why_set(why, whylen, "subject template is empty");
		goto out;
	}
	*out = name;
	name = NULL;
	ret = 0;
	goto out;
toolong:
	why_set(why, whylen, "subject attribute %s would be longer than %d bytes", type,
	    ISS_VALUE_MAX);
out:
	X509_NAME_free(name);
	return ret;
}

static int
subject_build(const struct cc_issuance *p, X509_REQ *csr, X509_NAME **out, char *why,
    size_t whylen)
{
	const X509_NAME *rs = X509_REQ_get_subject_name(csr);
	char *cn;

	if (p->subject_mode == CC_ISS_SUBJECT_TEMPLATE)
		return cc_issuance_template_build(p->subject_template, rs, out, why, whylen);
	if (p->require_cn) {
		cn = name_value(rs, NID_commonName);
		if (cn == NULL || cn[0] == '\0') {
			OPENSSL_free(cn);
			return why_set(why, whylen, "the request's subject has no commonName");
		}
		OPENSSL_free(cn);
	}
	if (X509_NAME_entry_count(rs) == 0)
		return why_set(why, whylen, "the request's subject is empty");
	*out = X509_NAME_dup(rs);
	return *out != NULL ? 0 : why_set(why, whylen, "out of memory");
}

/* ---- subjectAltName ---- */

static int
ia5_ok(const ASN1_STRING *s, size_t max)
{
	const unsigned char *d = ASN1_STRING_get0_data(s);
	int n = ASN1_STRING_length(s);

	if (n <= 0 || (size_t)n > max)
		return 0;
	for (int i = 0; i < n; i++)
		if (d[i] <= 0x20 || d[i] >= 0x7f)
			return 0;
	return 1;
}

static int
dns_ok(const struct cc_issuance *p, const ASN1_STRING *s)
{
	const char *d = (const char *)ASN1_STRING_get0_data(s);
	size_t n = (size_t)ASN1_STRING_length(s);

	if (!ia5_ok(s, ISS_DNS_MAX))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!(isalnum((unsigned char)d[i]) || d[i] == '-' || d[i] == '.'))
			return 0;
	if (d[0] == '.' || d[n - 1] == '.' || strstr(d, "..") != NULL)
		return 0;
	if (p->ndns_suffixes == 0)
		return 1;
	for (size_t k = 0; k < p->ndns_suffixes; k++) {
		const char *suf = p->dns_suffixes[k];
		size_t sl;

		if (*suf == '.')
			suf++;
		sl = strlen(suf);
		if (n == sl && strncasecmp(d, suf, n) == 0)
			return 1;
		if (n > sl + 1 && d[n - sl - 1] == '.' && strncasecmp(d + n - sl, suf, sl) == 0)
			return 1;
	}
	return 0;
}

static int
upn_oid(const ASN1_OBJECT *o)
{
	char buf[64];

	return OBJ_obj2txt(buf, sizeof(buf), o, 1) > 0 && strcmp(buf, ISS_UPN_OID) == 0;
}

static int
san_build(const struct cc_issuance *p, X509_REQ *csr, GENERAL_NAMES **out, char *why,
    size_t whylen)
{
	STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(csr);
	GENERAL_NAMES *req = NULL, *res = NULL;
	int crit = -1, ret = -1, n;

	*out = NULL;
	if (exts == NULL)
		return 0;
	req = X509V3_get_d2i(exts, NID_subject_alt_name, &crit, NULL);
	if (req == NULL) {
		if (crit == -2) {
			why_set(why, whylen, "the request has more than one subjectAltName extension");
			goto out;
		}
		if (crit >= 0) {
			why_set(why, whylen, "the request's subjectAltName cannot be parsed");
			goto out;
		}
		ret = 0;
		goto out;
	}
	n = sk_GENERAL_NAME_num(req);
	if (n > (int)p->san_max) {
		why_set(why, whylen, "the request has %d subjectAltNames; the profile allows %u", n,
		    p->san_max);
		goto out;
	}
	res = sk_GENERAL_NAME_new_null();
	if (res == NULL)
		goto oom;
	for (int i = 0; i < n; i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(req, i), *c;
		const char *u;

		switch (g->type) {
		case GEN_DNS:
			if (!(p->san_copy & CC_ISS_SAN_DNS)) {
				why_set(why, whylen, "DNS names are not allowed by the profile");
				goto out;
			}
			if (!dns_ok(p, g->d.dNSName)) {
				why_set(why, whylen, "DNS name \"%.*s\" is not allowed",
				    ASN1_STRING_length(g->d.dNSName) > 64 ? 64 :
				    ASN1_STRING_length(g->d.dNSName),
				    (const char *)ASN1_STRING_get0_data(g->d.dNSName));
				goto out;
			}
			break;
		case GEN_IPADD:
			if (!(p->san_copy & CC_ISS_SAN_IP)) {
				why_set(why, whylen, "IP addresses are not allowed by the profile");
				goto out;
			}
			if (ASN1_STRING_length(g->d.iPAddress) != 4 &&
			    ASN1_STRING_length(g->d.iPAddress) != 16) {
				why_set(why, whylen, "malformed IP address in subjectAltName");
				goto out;
			}
			break;
		case GEN_EMAIL:
			if (!(p->san_copy & CC_ISS_SAN_EMAIL)) {
				why_set(why, whylen, "e-mail addresses are not allowed by the profile");
				goto out;
			}
			if (!ia5_ok(g->d.rfc822Name, 254) ||
			    strchr((const char *)ASN1_STRING_get0_data(g->d.rfc822Name), '@') == NULL) {
				why_set(why, whylen, "malformed e-mail address in subjectAltName");
				goto out;
			}
			break;
		case GEN_URI:
			if (!ia5_ok(g->d.uniformResourceIdentifier, 1024)) {
				why_set(why, whylen, "malformed URI in subjectAltName");
				goto out;
			}
			u = (const char *)ASN1_STRING_get0_data(g->d.uniformResourceIdentifier);
			if (strncmp(u, CC_ISS_SID_PREFIX, strlen(CC_ISS_SID_PREFIX)) == 0) {
				if (!cc_issuance_sid_ok(u + strlen(CC_ISS_SID_PREFIX))) {
					why_set(why, whylen, "malformed SID in the Intune SID URI");
					goto out;
				}
				if (p->sid_passthrough)
					break;
			}
			if (!(p->san_copy & CC_ISS_SAN_URI)) {
				why_set(why, whylen, "URIs are not allowed by the profile");
				goto out;
			}
			break;
		case GEN_OTHERNAME:
			if (!(p->san_copy & CC_ISS_SAN_UPN) || !upn_oid(g->d.otherName->type_id)) {
				why_set(why, whylen, "otherName subjectAltNames other than a UPN are not "
				    "allowed by the profile");
				goto out;
			}
			if (g->d.otherName->value == NULL ||
			    g->d.otherName->value->type != V_ASN1_UTF8STRING) {
				why_set(why, whylen, "malformed UPN in subjectAltName");
				goto out;
			}
			break;
		default:
			why_set(why, whylen, "subjectAltName type %d is not allowed", g->type);
			goto out;
		}
		c = GENERAL_NAME_dup(g);
		if (c == NULL || !sk_GENERAL_NAME_push(res, c)) {
			GENERAL_NAME_free(c);
			goto oom;
		}
	}
	if (sk_GENERAL_NAME_num(res) > 0) {
		*out = res;
		res = NULL;
	}
	ret = 0;
	goto out;
oom:
	why_set(why, whylen, "out of memory");
out:
	GENERAL_NAMES_free(req);
	GENERAL_NAMES_free(res);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	return ret;
}

/* ---- the whole request ---- */

static int
attrs_check(const struct cc_issuance *p, X509_REQ *csr, char *why, size_t whylen)
{
	char oid[128];
	int n = X509_REQ_get_attr_count(csr);

	if (!p->attrs_restricted)
		return 0;
	for (int i = 0; i < n; i++) {
		X509_ATTRIBUTE *a = X509_REQ_get_attr(csr, i);
		size_t k;

		if (OBJ_obj2txt(oid, sizeof(oid), X509_ATTRIBUTE_get0_object(a), 1) <= 0)
			return why_set(why, whylen, "unreadable attribute in the request");
		for (k = 0; k < p->nallowed_attrs; k++)
			if (strcmp(p->allowed_attrs[k], oid) == 0)
				break;
		if (k == p->nallowed_attrs)
			return why_set(why, whylen, "request attribute %s is not allowed by the profile",
			    oid);
	}
	return 0;
}

int
cc_issuance_apply(const struct cc_issuance *p, X509_REQ *csr, time_t now,
    struct cc_iss_result *r, char *why, size_t whylen)
{
	EVP_PKEY *k;

	memset(r, 0, sizeof(*r));
	k = X509_REQ_get0_pubkey(csr);
	if (k == NULL)
		return why_set(why, whylen, "the request's public key cannot be read");
	if (cc_issuance_check_key(p, k, why, whylen) == -1)
		return -1;
	if (X509_REQ_verify(csr, k) != 1)
		return why_set(why, whylen, "the request's signature does not verify");
	if (attrs_check(p, csr, why, whylen) == -1)
		return -1;
	if (subject_build(p, csr, &r->subject, why, whylen) == -1 ||
	    san_build(p, csr, &r->san, why, whylen) == -1)
		goto fail;
	r->key_usage = p->key_usage;
	if (r->key_usage == 0)
		r->key_usage = EVP_PKEY_is_a(k, "EC") ? (KU_DIGITAL_SIGNATURE | KU_KEY_AGREEMENT) :
		    (KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
	if (p->nekus > 0 || !p->ekus_set) {
		r->ekus = sk_ASN1_OBJECT_new_null();
		if (r->ekus == NULL)
			goto oom;
		for (size_t i = 0; i < (p->ekus_set ? p->nekus : 1); i++) {
			ASN1_OBJECT *o = p->ekus_set ? OBJ_txt2obj(p->ekus[i], 1) :
			    OBJ_dup(OBJ_nid2obj(NID_client_auth));

			if (o == NULL || !sk_ASN1_OBJECT_push(r->ekus, o)) {
				ASN1_OBJECT_free(o);
				goto oom;
			}
		}
	}
	r->not_before = now - (time_t)p->backdate_s;
	r->not_after = now + (time_t)p->validity_days * 86400;
	if (!EVP_PKEY_up_ref(k))
		goto oom;
	r->pubkey = k;
	return 0;
oom:
	why_set(why, whylen, "out of memory");
fail:
	cc_iss_result_free(r);
	return -1;
}
