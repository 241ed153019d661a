/* To-be-signed certificates and CRLs for tests: see tbs_build.h. */
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tbs_build.h"
#include "x509_tbs.h"

static X509_NAME *
name_of(const char *s)
{
	X509_NAME *n = X509_NAME_new();

	if (n != NULL && !X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
	    (const unsigned char *)(strncmp(s, "CN=", 3) == 0 ? s + 3 : s), -1, -1, 0)) {
		X509_NAME_free(n);
		return NULL;
	}
	return n;
}

static int
add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *v)
{
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, v);
	int ok = e != NULL && X509_add_ext(x, e, -1);

	X509_EXTENSION_free(e);
	return ok ? 0 : -1;
}

/* Signs with alg_key to set the signature algorithms, then takes the re-encoded TBS. */
static int
sign_for_alg(X509 *x, X509_CRL *c, EVP_PKEY *alg_key, const char *md, int pss)
{
	EVP_MD_CTX *mctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	int ok = 0;

	if (mctx == NULL ||
	    EVP_DigestSignInit_ex(mctx, &pctx, md ? md : "SHA256", NULL, NULL, alg_key, NULL) <= 0)
		goto out;
	if (pss && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) <= 0))
		goto out;
	ok = x != NULL ? X509_sign_ctx(x, mctx) > 0 : X509_CRL_sign_ctx(c, mctx) > 0;
out:
	EVP_MD_CTX_free(mctx);
	return ok ? 0 : -1;
}

static int
copy_out(unsigned char *der, int n, uint8_t **tbs, size_t *len)
{
	if (n <= 0)
		return -1;
	*tbs = malloc((size_t)n);
	if (*tbs == NULL)
		return -1;
	memcpy(*tbs, der, (size_t)n);
	*len = (size_t)n;
	return 0;
}

int
tbs_build_cert(const struct tbs_spec *s, EVP_PKEY *alg_key, uint8_t **tbs, size_t *len)
{
	X509 *x = X509_new();
	EVP_PKEY *subj = EVP_EC_gen("P-256");
	X509_NAME *iss = NULL, *sub = NULL;
	X509V3_CTX ctx;
	unsigned char *der = NULL;
	int ret = -1;

	*tbs = NULL;
	*len = 0;
	iss = s->issuer ? name_of(s->issuer) : X509_NAME_dup(X509_get_subject_name(s->ca));
	sub = name_of(s->subject ? s->subject : "CN=leaf");
	if (x == NULL || subj == NULL || iss == NULL || sub == NULL ||
	    !X509_set_version(x, s->v1 ? X509_VERSION_1 : X509_VERSION_3) ||
	    !ASN1_INTEGER_set(X509_get_serialNumber(x), 0x1234567) ||
	    !X509_set_issuer_name(x, iss) || !X509_set_subject_name(x, sub) ||
	    !X509_set_pubkey(x, subj) ||
	    X509_gmtime_adj(X509_getm_notBefore(x), s->not_before_s) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), (int)(s->days ? s->days : 30),
	    s->not_before_s, NULL) == NULL)
		goto out;
	if (!s->v1) {
		X509V3_set_ctx(&ctx, s->ca, x, NULL, NULL, 0);
		if (s->ca_true && add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE") == -1)
			goto out;
		if (!s->ca_true && add_ext(x, &ctx, NID_basic_constraints, "CA:FALSE") == -1)
			goto out;
		if (s->key_usage && add_ext(x, &ctx, NID_key_usage, s->key_usage) == -1)
			goto out;
		if (s->eku && add_ext(x, &ctx, NID_ext_key_usage, s->eku) == -1)
			goto out;
		if (add_ext(x, &ctx, NID_subject_key_identifier, "hash") == -1)
			goto out;
		if (s->bad_aki) {
			/* the identifier of some other key */
			AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
			static const unsigned char other_id[20] = { 0xde, 0xad, 0xbe, 0xef };

			if (akid == NULL || (akid->keyid = ASN1_OCTET_STRING_new()) == NULL ||
			    !ASN1_OCTET_STRING_set(akid->keyid, other_id, sizeof(other_id)) ||
			    !X509_add1_ext_i2d(x, NID_authority_key_identifier, akid, 0, 0)) {
				AUTHORITY_KEYID_free(akid);
				goto out;
			}
			AUTHORITY_KEYID_free(akid);
		} else if (!s->no_aki &&
		    add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always") == -1) {
			goto out;
		}
		if (s->crit_ext_oid != NULL) {
			ASN1_OBJECT *o = OBJ_txt2obj(s->crit_ext_oid, 1);
			ASN1_OCTET_STRING *v = ASN1_OCTET_STRING_new();
			X509_EXTENSION *e = NULL;
			static const unsigned char null_der[] = { 0x05, 0x00 };

			if (o != NULL && v != NULL && ASN1_OCTET_STRING_set(v, null_der, 2))
				e = X509_EXTENSION_create_by_OBJ(NULL, o, 1, v);
			ASN1_OBJECT_free(o);
			ASN1_OCTET_STRING_free(v);
			if (e == NULL || !X509_add_ext(x, e, -1)) {
				X509_EXTENSION_free(e);
				goto out;
			}
			X509_EXTENSION_free(e);
		}
	}
	if (sign_for_alg(x, NULL, alg_key, s->md, s->pss) == -1)
		goto out;
	ret = copy_out(der, i2d_re_X509_tbs(x, &der), tbs, len);
out:
	OPENSSL_free(der);
	X509_NAME_free(iss);
	X509_NAME_free(sub);
	EVP_PKEY_free(subj);
	X509_free(x);
	return ret;
}

int
tbs_build_crl(X509 *ca, const char *issuer, long days, const char *md, int no_aki,
    EVP_PKEY *alg_key, uint8_t **tbs, size_t *len)
{
	X509_CRL *c = X509_CRL_new();
	X509_REVOKED *rv = X509_REVOKED_new();
	ASN1_TIME *t = ASN1_TIME_new();
	ASN1_INTEGER *serial = ASN1_INTEGER_new();
	X509_NAME *iss = issuer ? name_of(issuer) : X509_NAME_dup(X509_get_subject_name(ca));
	X509V3_CTX ctx;
	unsigned char *der = NULL;
	int ret = -1;

	*tbs = NULL;
	*len = 0;
	if (c == NULL || rv == NULL || t == NULL || serial == NULL || iss == NULL ||
	    !X509_CRL_set_version(c, X509_CRL_VERSION_2) || !X509_CRL_set_issuer_name(c, iss) ||
	    X509_gmtime_adj(t, 0) == NULL || !X509_CRL_set1_lastUpdate(c, t))
		goto out;
	if (days >= 0 && (X509_time_adj_ex(t, (int)days, 0, NULL) == NULL ||
	    !X509_CRL_set1_nextUpdate(c, t)))
		goto out;
	if (!ASN1_INTEGER_set(serial, 4711) || !X509_REVOKED_set_serialNumber(rv, serial) ||
	    X509_gmtime_adj(t, -3600) == NULL || !X509_REVOKED_set_revocationDate(rv, t) ||
	    !X509_CRL_add0_revoked(c, rv))
		goto out;
	rv = NULL;
	if (!no_aki) {
		X509_EXTENSION *e;

		X509V3_set_ctx(&ctx, ca, NULL, NULL, c, 0);
		e = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always");
		if (e == NULL || !X509_CRL_add_ext(c, e, -1)) {
			X509_EXTENSION_free(e);
			goto out;
		}
		X509_EXTENSION_free(e);
	}
	if (sign_for_alg(NULL, c, alg_key, md, 0) == -1)
		goto out;
	ret = copy_out(der, i2d_re_X509_CRL_tbs(c, &der), tbs, len);
out:
	OPENSSL_free(der);
	X509_NAME_free(iss);
	ASN1_INTEGER_free(serial);
	ASN1_TIME_free(t);
	X509_REVOKED_free(rv);
	X509_CRL_free(c);
	return ret;
}

/* The TBS's own signature AlgorithmIdentifier: its first SEQUENCE element. */
static X509_ALGOR *
tbs_alg(const uint8_t *tbs, size_t len)
{
	const unsigned char *q = tbs;
	ASN1_SEQUENCE_ANY *seq = d2i_ASN1_SEQUENCE_ANY(NULL, &q, (long)len);
	X509_ALGOR *alg = NULL;

	for (int i = 0; seq != NULL && i < sk_ASN1_TYPE_num(seq) && alg == NULL; i++) {
		ASN1_TYPE *t = sk_ASN1_TYPE_value(seq, i);

		if (ASN1_TYPE_get(t) == V_ASN1_SEQUENCE) {
			const unsigned char *r = ASN1_STRING_get0_data(t->value.sequence);

			alg = d2i_X509_ALGOR(NULL, &r, ASN1_STRING_length(t->value.sequence));
		}
	}
	sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
	return alg;
}

static uint8_t *
assemble(const uint8_t *tbs, size_t len, const uint8_t *sig, size_t sig_len, size_t *out_len)
{
	X509_ALGOR *alg = tbs_alg(tbs, len);
	uint8_t *out = NULL;

	if (alg == NULL || x509_tbs_assemble(tbs, len, alg, sig, sig_len, &out, out_len) == -1)
		out = NULL;
	X509_ALGOR_free(alg);
	return out;
}

X509 *
tbs_assemble_cert(const uint8_t *tbs, size_t len, const uint8_t *sig, size_t sig_len)
{
	size_t n;
	uint8_t *der = assemble(tbs, len, sig, sig_len, &n);
	const unsigned char *p = der;
	X509 *x = der ? d2i_X509(NULL, &p, (long)n) : NULL;

	free(der);
	return x;
}

X509_CRL *
tbs_assemble_crl(const uint8_t *tbs, size_t len, const uint8_t *sig, size_t sig_len)
{
	size_t n;
	uint8_t *der = assemble(tbs, len, sig, sig_len, &n);
	const unsigned char *p = der;
	X509_CRL *c = der ? d2i_X509_CRL(NULL, &p, (long)n) : NULL;

	free(der);
	return c;
}

X509 *
tbs_make_ca(EVP_PKEY **key, int ec, long days)
{
	X509 *x = X509_new();
	X509_NAME *n = name_of("CN=unit test CA");
	X509V3_CTX ctx;

	*key = ec ? EVP_EC_gen("P-256") : EVP_RSA_gen(2048);
	if (x == NULL || n == NULL || *key == NULL || !X509_set_version(x, X509_VERSION_3) ||
	    !ASN1_INTEGER_set(X509_get_serialNumber(x), 1) || !X509_set_subject_name(x, n) ||
	    !X509_set_issuer_name(x, n) || !X509_set_pubkey(x, *key) ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), (int)days, 0, NULL) == NULL)
		goto fail;
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	if (add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE") == -1 ||
	    add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign") == -1 ||
	    add_ext(x, &ctx, NID_subject_key_identifier, "hash") == -1 ||
	    X509_sign(x, *key, EVP_sha256()) <= 0)
		goto fail;
	X509_NAME_free(n);
	return x;
fail:
	X509_NAME_free(n);
	X509_free(x);
	EVP_PKEY_free(*key);
	*key = NULL;
	return NULL;
}
