/*
 * keys: the CA role's signing policy. net sends the whole to-be-signed certificate or CRL;
 * keys parses it with OpenSSL and signs only what the CA's policy allows, so a compromised
 * net cannot mint a sub-CA or a certificate for another issuer.
 *
 * OpenSSL parses a TBSCertificate / TBSCertList only inside an X509 / X509_CRL (their
 * structures are opaque), so the TBS is wrapped into a whole Certificate / CertificateList
 * with an empty signature (x509_tbs_assemble) and parsed with d2i_X509 / d2i_X509_CRL. The
 * bytes must be canonical DER: the parsed TBS re-encoded must equal them, so what is checked
 * is exactly what is signed.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "keys_int.h"
#include "x509_tbs.h"

static int __attribute__((format(printf, 4, 5)))
fail(int code, char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return code;
}

/* The TBS's own signature AlgorithmIdentifier: its first SEQUENCE element (after the
 * optional version), read with OpenSSL's generic ASN.1. */
static X509_ALGOR *
tbs_sigalg(const uint8_t *tbs, size_t len)
{
	const unsigned char *p = tbs;
	ASN1_SEQUENCE_ANY *seq = d2i_ASN1_SEQUENCE_ANY(NULL, &p, (long)len);
	X509_ALGOR *alg = NULL;

	if (seq == NULL)
		return NULL;
	for (int i = 0; i < sk_ASN1_TYPE_num(seq) && i < 3; i++) {
		ASN1_TYPE *t = sk_ASN1_TYPE_value(seq, i);

		if (ASN1_TYPE_get(t) == V_ASN1_SEQUENCE) {
			const unsigned char *q = ASN1_STRING_get0_data(t->value.sequence);

			alg = d2i_X509_ALGOR(NULL, &q, ASN1_STRING_length(t->value.sequence));
			break;
		}
	}
	sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
	return alg;
}

static int
md_of_nid(int nid)
{
	switch (nid) {
	case NID_sha256: return CC_MD_SHA256;
	case NID_sha384: return CC_MD_SHA384;
	case NID_sha512: return CC_MD_SHA512;
	}
	return CC_MD_NONE;
}

/* RSASSA-PSS parameters: SHA-256/384/512, MGF1 with one of them, a salt of at least 20
 * bytes that fits the key, trailer 1. */
static int
pss_params(const X509_ALGOR *alg, const EVP_PKEY *key, struct keys_casign_sig *sig, char *why,
    size_t whylen)
{
	const ASN1_OBJECT *obj;
	const void *pval;
	int ptype, code = CC_KE_REFUSED;
	RSA_PSS_PARAMS *pss = NULL;
	const ASN1_STRING *s;
	const unsigned char *p;
	long salt = 20;
	int hnid = NID_sha1, mnid = NID_sha1;

	X509_ALGOR_get0(&obj, &ptype, &pval, alg);
	if (ptype != V_ASN1_SEQUENCE) {
		/* Absent parameters mean SHA-1 everywhere (RFC 4055), which this CA does not use. */
		return fail(code, why, whylen, "RSASSA-PSS without parameters means SHA-1: refused");
	}
	s = pval;
	p = ASN1_STRING_get0_data(s);
	pss = d2i_RSA_PSS_PARAMS(NULL, &p, ASN1_STRING_length(s));
	if (pss == NULL) {
		code = fail(CC_KE_BADINPUT, why, whylen, "unreadable RSASSA-PSS parameters");
		goto out;
	}
	if (pss->hashAlgorithm != NULL)
		hnid = OBJ_obj2nid(pss->hashAlgorithm->algorithm);
	if (pss->maskGenAlgorithm != NULL) {
		const ASN1_OBJECT *mobj;
		const void *mval;
		int mtype;
		X509_ALGOR *mh = NULL;

		/* MGF1's parameter is the AlgorithmIdentifier of its digest. */
		X509_ALGOR_get0(&mobj, &mtype, &mval, pss->maskGenAlgorithm);
		if (OBJ_obj2nid(mobj) == NID_mgf1 && mtype == V_ASN1_SEQUENCE) {
			const unsigned char *mp = ASN1_STRING_get0_data(mval);

			mh = d2i_X509_ALGOR(NULL, &mp, ASN1_STRING_length(mval));
		}
		if (mh == NULL) {
			code = fail(code, why, whylen, "RSASSA-PSS with a mask generation other than "
			    "MGF1");
			goto out;
		}
		mnid = OBJ_obj2nid(mh->algorithm);
		X509_ALGOR_free(mh);
	}
	if (pss->saltLength != NULL)
		salt = ASN1_INTEGER_get(pss->saltLength);
	if (pss->trailerField != NULL && ASN1_INTEGER_get(pss->trailerField) != 1) {
		code = fail(code, why, whylen, "RSASSA-PSS trailer field other than 1");
		goto out;
	}
	sig->md = (uint8_t)md_of_nid(hnid);
	sig->mgf1_md = (uint8_t)md_of_nid(mnid);
	if (sig->md == CC_MD_NONE || sig->mgf1_md == CC_MD_NONE) {
		code = fail(code, why, whylen, "RSASSA-PSS with %s / MGF1-%s: only SHA-256, SHA-384 "
		    "and SHA-512 are allowed", OBJ_nid2sn(hnid), OBJ_nid2sn(mnid));
		goto out;
	}
	if (salt < 20 || (size_t)salt + cc_md_size(sig->md) + 2 >
	    (size_t)(EVP_PKEY_get_bits(key) - 1 + 7) / 8) {
		code = fail(code, why, whylen, "RSASSA-PSS salt length %ld out of range", salt);
		goto out;
	}
	sig->alg = CC_SIG_RSA_PSS;
	sig->saltlen = (uint32_t)salt;
	code = CC_KE_OK;
out:
	RSA_PSS_PARAMS_free(pss);
	return code;
}

/* The TBS's signature algorithm must fit the CA key and the role's mechanisms. */
static int
check_sigalg(const struct keys_casign_policy *p, const X509_ALGOR *alg,
    struct keys_casign_sig *sig, char *why, size_t whylen)
{
	const ASN1_OBJECT *obj;
	const void *pval;
	int ptype, nid, code, is_rsa = EVP_PKEY_is_a(p->ca_key, "RSA");
	char name[80];

	memset(sig, 0, sizeof(*sig));
	X509_ALGOR_get0(&obj, &ptype, &pval, alg);
	nid = OBJ_obj2nid(obj);
	OBJ_obj2txt(name, sizeof(name), obj, 0);
	if (is_rsa && nid == NID_rsassaPss) {
		code = pss_params(alg, p->ca_key, sig, why, whylen);
		if (code != CC_KE_OK)
			return code;
	} else if (is_rsa && (nid == NID_sha256WithRSAEncryption ||
	    nid == NID_sha384WithRSAEncryption || nid == NID_sha512WithRSAEncryption)) {
		if (ptype != V_ASN1_NULL && ptype != V_ASN1_UNDEF)
			return fail(CC_KE_REFUSED, why, whylen, "%s with parameters", name);
		sig->alg = CC_SIG_RSA_PKCS1;
		sig->md = nid == NID_sha256WithRSAEncryption ? CC_MD_SHA256 :
		    nid == NID_sha384WithRSAEncryption ? CC_MD_SHA384 : CC_MD_SHA512;
	} else if (!is_rsa && (nid == NID_ecdsa_with_SHA256 || nid == NID_ecdsa_with_SHA384 ||
	    nid == NID_ecdsa_with_SHA512)) {
		if (ptype != V_ASN1_UNDEF)
			return fail(CC_KE_REFUSED, why, whylen, "%s with parameters", name);
		sig->alg = CC_SIG_ECDSA;
		sig->md = nid == NID_ecdsa_with_SHA256 ? CC_MD_SHA256 :
		    nid == NID_ecdsa_with_SHA384 ? CC_MD_SHA384 : CC_MD_SHA512;
	} else {
		return fail(CC_KE_REFUSED, why, whylen, "signature algorithm %s does not fit the "
		    "CA's %s key or is not allowed (%s)", name, is_rsa ? "RSA" : "EC", is_rsa ?
		    "sha256/384/512WithRSAEncryption or RSASSA-PSS" :
		    "ecdsa-with-SHA256/384/512");
	}
	/* A role with digest-signing bits besides SIGN_TBS is limited to those schemes; one
	 * with SIGN_TBS alone (the default ca policy) may use any scheme above. */
	if ((p->mechs & KEYS_SIGN_BITS) != 0 &&
	    !(p->mechs & (sig->alg == CC_SIG_RSA_PKCS1 ? CC_MECH_SIGN_RSA_PKCS1 :
	    sig->alg == CC_SIG_RSA_PSS ? CC_MECH_SIGN_RSA_PSS : CC_MECH_SIGN_ECDSA)))
		return fail(CC_KE_REFUSED, why, whylen, "signature algorithm %s is not allowed by "
		    "the role's policy", name);
	return CC_KE_OK;
}

/* Comma-separated OIDs (dotted or OpenSSL short names) contain obj. */
static int
eku_allowed(const char *list, const ASN1_OBJECT *obj)
{
	char *copy = strdup(list), *save = NULL, *tok;
	int found = 0;

	if (copy == NULL)
		return 0;
	for (tok = strtok_r(copy, ", ", &save); tok != NULL && !found;
	    tok = strtok_r(NULL, ", ", &save)) {
		ASN1_OBJECT *o = OBJ_txt2obj(tok, 0);

		found = o != NULL && OBJ_cmp(o, obj) == 0;
		ASN1_OBJECT_free(o);
	}
	free(copy);
	return found;
}

/* The CA's subject key identifier (from its certificate, else computed from its key). */
static const ASN1_OCTET_STRING *
ca_skid(X509 *ca)
{
	return X509_get0_subject_key_id(ca);
}

static int
check_cert(const struct keys_casign_policy *p, X509 *x, time_t now, char *why, size_t whylen)
{
	uint32_t exfl, ku;
	const ASN1_OCTET_STRING *aki, *skid = ca_skid(p->ca);
	int subca_ok = (p->flags & CC_ROLE_ALLOW_SUBCA) != 0;
	const ASN1_TIME *nb = X509_get0_notBefore(x), *na = X509_get0_notAfter(x);
	int days, secs;
	EXTENDED_KEY_USAGE *eku;
	int crit = -1;

	if (X509_cmp_time(X509_get0_notAfter(p->ca), &now) <= 0)
		return fail(CC_KE_REFUSED, why, whylen, "the CA certificate has expired");
	if (X509_get_version(x) != X509_VERSION_3)
		return fail(CC_KE_REFUSED, why, whylen, "not an X.509 v3 certificate");
	if (X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(p->ca)) != 0) {
		char iss[256];

		X509_NAME_oneline(X509_get_issuer_name(x), iss, sizeof(iss));
		return fail(CC_KE_REFUSED, why, whylen, "issuer %s is not this CA's subject", iss);
	}
	if (X509_get0_pubkey(x) == NULL)
		return fail(CC_KE_BADINPUT, why, whylen, "the subject public key is unreadable");
	exfl = X509_get_extension_flags(x);
	if (exfl & EXFLAG_INVALID)
		return fail(CC_KE_REFUSED, why, whylen, "invalid or duplicate extensions");
	if (exfl & EXFLAG_CRITICAL)
		return fail(CC_KE_REFUSED, why, whylen, "an unsupported critical extension");
	/* A compromised net must not be able to mint a sub-CA. */
	if ((exfl & EXFLAG_CA) && !subca_ok)
		return fail(CC_KE_REFUSED, why, whylen, "basicConstraints CA:TRUE (a sub-CA) is not "
		    "allowed by the CA's policy");
	ku = X509_get_key_usage(x);
	if ((exfl & EXFLAG_KUSAGE) && !subca_ok && (ku & (KU_KEY_CERT_SIGN | KU_CRL_SIGN)))
		return fail(CC_KE_REFUSED, why, whylen, "keyUsage keyCertSign/cRLSign is for CAs: "
		    "not allowed by the CA's policy");
	if ((exfl & EXFLAG_KUSAGE) && p->key_usage != 0 && (ku & ~p->key_usage) != 0)
		return fail(CC_KE_REFUSED, why, whylen, "keyUsage 0x%x outside the allowed 0x%x",
		    ku & 0xffffu, p->key_usage);
	aki = X509_get0_authority_key_id(x);
	if (aki != NULL && (skid == NULL || ASN1_OCTET_STRING_cmp(aki, skid) != 0))
		return fail(CC_KE_REFUSED, why, whylen, "authorityKeyIdentifier does not match the "
		    "CA's subjectKeyIdentifier");
	eku = X509_get_ext_d2i(x, NID_ext_key_usage, &crit, NULL);
	if (eku == NULL && crit != -1)
		return fail(CC_KE_REFUSED, why, whylen, "unreadable extendedKeyUsage");
	if (eku != NULL && p->ekus != NULL && p->ekus[0] != '\0') {
		for (int i = 0; i < sk_ASN1_OBJECT_num(eku); i++) {
			const ASN1_OBJECT *o = sk_ASN1_OBJECT_value(eku, i);

			if (!eku_allowed(p->ekus, o)) {
				char name[80];

				OBJ_obj2txt(name, sizeof(name), o, 1);
				EXTENDED_KEY_USAGE_free(eku);
				return fail(CC_KE_REFUSED, why, whylen, "extendedKeyUsage %s is not allowed "
				    "(allowed: %s)", name, p->ekus);
			}
		}
	}
	EXTENDED_KEY_USAGE_free(eku);
	if (!ASN1_TIME_diff(&days, &secs, nb, na) || days < 0 || (days == 0 && secs <= 0))
		return fail(CC_KE_REFUSED, why, whylen, "notAfter is not after notBefore");
	if (p->max_validity_days != 0 &&
	    ((uint64_t)days * 86400u + (uint64_t)secs > (uint64_t)p->max_validity_days * 86400u))
		return fail(CC_KE_REFUSED, why, whylen, "validity of %d days exceeds the CA's "
		    "maximum of %u days", days + (secs > 0), p->max_validity_days);
	if (ASN1_TIME_compare(na, X509_get0_notAfter(p->ca)) > 0)
		return fail(CC_KE_REFUSED, why, whylen, "notAfter is past the CA certificate's own "
		    "notAfter");
	return CC_KE_OK;
}

static int
check_crl(const struct keys_casign_policy *p, X509_CRL *c, time_t now, char *why,
    size_t whylen)
{
	const ASN1_TIME *tu = X509_CRL_get0_lastUpdate(c), *nu = X509_CRL_get0_nextUpdate(c);
	const ASN1_OCTET_STRING *skid = ca_skid(p->ca);
	AUTHORITY_KEYID *akid;
	int days, secs, crit = -1;

	if (X509_cmp_time(X509_get0_notAfter(p->ca), &now) <= 0)
		return fail(CC_KE_REFUSED, why, whylen, "the CA certificate has expired");
	if (X509_NAME_cmp(X509_CRL_get_issuer(c), X509_get_subject_name(p->ca)) != 0)
		return fail(CC_KE_REFUSED, why, whylen, "CRL issuer is not this CA's subject");
	akid = X509_CRL_get_ext_d2i(c, NID_authority_key_identifier, &crit, NULL);
	if (akid == NULL && crit != -1)
		return fail(CC_KE_REFUSED, why, whylen, "unreadable authorityKeyIdentifier");
	if (akid != NULL) {
		int bad = akid->keyid != NULL &&
		    (skid == NULL || ASN1_OCTET_STRING_cmp(akid->keyid, skid) != 0);

		AUTHORITY_KEYID_free(akid);
		if (bad)
			return fail(CC_KE_REFUSED, why, whylen, "CRL authorityKeyIdentifier does not "
			    "match the CA's subjectKeyIdentifier");
	}
	if (tu == NULL)
		return fail(CC_KE_BADINPUT, why, whylen, "CRL without thisUpdate");
	if (nu == NULL) {
		if (p->max_crl_days != 0)
			return fail(CC_KE_REFUSED, why, whylen, "CRL without nextUpdate");
		return CC_KE_OK;
	}
	if (!ASN1_TIME_diff(&days, &secs, tu, nu) || days < 0 || (days == 0 && secs <= 0))
		return fail(CC_KE_REFUSED, why, whylen, "nextUpdate is not after thisUpdate");
	if (p->max_crl_days != 0 &&
	    (uint64_t)days * 86400u + (uint64_t)secs > (uint64_t)p->max_crl_days * 86400u)
		return fail(CC_KE_REFUSED, why, whylen, "CRL validity (nextUpdate - thisUpdate) of "
		    "%d days exceeds the CA's maximum of %u days", days + (secs > 0),
		    p->max_crl_days);
	return CC_KE_OK;
}

int
keys_casign_check(const struct keys_casign_policy *p, uint8_t kind, const uint8_t *tbs,
    size_t tbs_len, time_t now, struct keys_casign_sig *sig, char *why, size_t whylen)
{
	X509_ALGOR *alg = NULL;
	uint8_t *whole = NULL;
	size_t whole_len;
	const unsigned char *q;
	unsigned char *re = NULL;
	int re_len = -1, code;
	X509 *x = NULL;
	X509_CRL *c = NULL;
	const char *what = kind == CC_TBS_CRL ? "TBSCertList" : "TBSCertificate";

	snprintf(why, whylen, "ok");
	if (kind != CC_TBS_CERT && kind != CC_TBS_CRL)
		return fail(CC_KE_BADINPUT, why, whylen, "unknown to-be-signed kind %u", kind);
	if (x509_tbs_is_sequence(tbs, tbs_len) == -1)
		return fail(CC_KE_BADINPUT, why, whylen, "not a DER %s (one SEQUENCE)", what);
	alg = tbs_sigalg(tbs, tbs_len);
	if (alg == NULL)
		return fail(CC_KE_BADINPUT, why, whylen, "%s without a signature algorithm", what);
	code = check_sigalg(p, alg, sig, why, whylen);
	if (code != CC_KE_OK)
		goto out;
	code = CC_KE_BADINPUT;
	if (x509_tbs_assemble(tbs, tbs_len, alg, NULL, 0, &whole, &whole_len) == -1) {
		fail(code, why, whylen, "cannot wrap the %s", what);
		goto out;
	}
	q = whole;
	if (kind == CC_TBS_CERT) {
		x = d2i_X509(NULL, &q, (long)whole_len);
		if (x != NULL)
			re_len = i2d_re_X509_tbs(x, &re);
	} else {
		c = d2i_X509_CRL(NULL, &q, (long)whole_len);
		if (c != NULL)
			re_len = i2d_re_X509_CRL_tbs(c, &re);
	}
	if ((x == NULL && c == NULL) || q != whole + whole_len) {
		fail(code, why, whylen, "not a valid %s", what);
		goto out;
	}
	/* What is checked must be what is signed: the parse must give back the same bytes. */
	if (re_len < 0 || (size_t)re_len != tbs_len || memcmp(re, tbs, tbs_len) != 0) {
		fail(code, why, whylen, "%s is not in canonical DER", what);
		goto out;
	}
	code = x != NULL ? check_cert(p, x, now, why, whylen) : check_crl(p, c, now, why, whylen);
out:
	OPENSSL_free(re);
	free(whole);
	X509_free(x);
	X509_CRL_free(c);
	X509_ALGOR_free(alg);
	return code;
}
