/*
 * The subject and subjectAltNames of a pkcs request, from its payload members, as OpenSSL
 * objects (no string is parsed into a name here: each payload attribute becomes one RDN,
 * each SAN one GeneralName, so a value can never add an attribute or a name of its own).
 * The profile's issuance rules (policy/issuance.c) then decide what the certificate gets.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certconn/flows.h"
#include "flows_int.h"

#define UPN_OID "1.3.6.1.4.1.311.20.2.3"

static const char *const attr_txt[FLOWS_SUBJ_N] = {
	"CN", "O", "OU", "C", "L", "ST", "emailAddress", "serialNumber", "UID",
};

X509_NAME *
flows_subject_build(const struct flows_pkcs_req *r, char *why, size_t whylen)
{
	X509_NAME *n = X509_NAME_new();

	if (n == NULL) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	/* Most significant first, the order certificates are read in. */
	static const int order[FLOWS_SUBJ_N] = { FLOWS_SUBJ_C, FLOWS_SUBJ_ST, FLOWS_SUBJ_L,
		FLOWS_SUBJ_O, FLOWS_SUBJ_OU, FLOWS_SUBJ_CN, FLOWS_SUBJ_SERIAL, FLOWS_SUBJ_UID,
		FLOWS_SUBJ_EMAIL };
	for (int i = 0; i < FLOWS_SUBJ_N; i++) {
		int a = order[i];
		int type = a == FLOWS_SUBJ_C || a == FLOWS_SUBJ_EMAIL || a == FLOWS_SUBJ_SERIAL ?
		    MBSTRING_ASC : MBSTRING_UTF8;

		if (r->subject[a] == NULL)
			continue;
		if (X509_NAME_add_entry_by_txt(n, attr_txt[a], type,
		    (const unsigned char *)r->subject[a], -1, -1, 0) != 1) {
			snprintf(why, whylen, "payload.subject.%s: not a valid value for %s",
			    flows_subject_attr_name(a), attr_txt[a]);
			X509_NAME_free(n);
			return NULL;
		}
	}
	return n;
}

static GENERAL_NAME *
upn_name(const char *v)
{
	GENERAL_NAME *g = GENERAL_NAME_new();
	ASN1_TYPE *t = ASN1_TYPE_new();
	ASN1_UTF8STRING *s = ASN1_UTF8STRING_new();
	ASN1_OBJECT *oid = OBJ_txt2obj(UPN_OID, 1);

	if (g == NULL || t == NULL || s == NULL || oid == NULL ||
	    ASN1_STRING_set(s, v, (int)strlen(v)) != 1)
		goto fail;
	ASN1_TYPE_set(t, V_ASN1_UTF8STRING, s);
	s = NULL;
	if (GENERAL_NAME_set0_othername(g, oid, t) != 1)
		goto fail;
	return g;
fail:
	GENERAL_NAME_free(g);
	ASN1_TYPE_free(t);
	ASN1_UTF8STRING_free(s);
	ASN1_OBJECT_free(oid);
	return NULL;
}

GENERAL_NAMES *
flows_sans_build(const struct flows_pkcs_req *r, char *why, size_t whylen)
{
	static const struct { const char *prefix; int type; } kinds[] = {
		{ "DNS:", GEN_DNS }, { "email:", GEN_EMAIL }, { "URI:", GEN_URI },
		{ "IP:", GEN_IPADD }, { "UPN:", GEN_OTHERNAME },
	};
	GENERAL_NAMES *gens;

	if (r->nsan == 0)
		return NULL;
	gens = sk_GENERAL_NAME_new_null();
	if (gens == NULL) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < r->nsan; i++) {
		GENERAL_NAME *g = NULL;
		const char *v = NULL;
		size_t k;

		for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
			if (strncmp(r->san[i], kinds[k].prefix, strlen(kinds[k].prefix)) == 0) {
				v = r->san[i] + strlen(kinds[k].prefix);
				break;
			}
		if (v != NULL && kinds[k].type == GEN_OTHERNAME)
			g = upn_name(v);
		else if (v != NULL)
			g = a2i_GENERAL_NAME(NULL, NULL, NULL, kinds[k].type, v, 0);
		if (g == NULL || !sk_GENERAL_NAME_push(gens, g)) {
			GENERAL_NAME_free(g);
			snprintf(why, whylen, "payload.subjectAltNames[%zu]: not a valid name", i);
			GENERAL_NAMES_free(gens);
			return NULL;
		}
	}
	return gens;
}

/* The CSR of a pkcs request: subject, SANs in an extensionRequest, signed by the device key. */
X509_REQ *
flows_csr_build(EVP_PKEY *key, X509_NAME *subject, GENERAL_NAMES *sans, char *why,
    size_t whylen)
{
	X509_REQ *req = X509_REQ_new();
	STACK_OF(X509_EXTENSION) *exts = NULL;
	X509_EXTENSION *e = NULL;

	if (req == NULL || X509_REQ_set_version(req, 0) != 1 ||
	    X509_REQ_set_subject_name(req, subject) != 1 || X509_REQ_set_pubkey(req, key) != 1)
		goto fail;
	if (sans != NULL) {
		exts = sk_X509_EXTENSION_new_null();
		e = X509V3_EXT_i2d(NID_subject_alt_name, 0, sans);
		if (exts == NULL || e == NULL || !sk_X509_EXTENSION_push(exts, e))
			goto fail;
		e = NULL;
		if (X509_REQ_add_extensions(req, exts) != 1)
			goto fail;
	}
	if (X509_REQ_sign(req, key, EVP_sha256()) <= 0)
		goto fail;
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	return req;
fail:
	snprintf(why, whylen, "building the CSR failed");
	X509_EXTENSION_free(e);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_free(req);
	return NULL;
}
