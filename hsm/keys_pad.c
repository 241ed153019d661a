/*
 * Paddings done in keys: see keys_pad.h.
 *
 * Why deprecated APIs here: the fallback paths need the bare EMSA-PSS and EMSA-PKCS1-v1_5
 * encodings and the EME-OAEP decoding around a raw RSA operation that happens inside the
 * token (CKM_RSA_X_509). OpenSSL 3 offers them only as RSA_padding_add_PKCS1_PSS_mgf1,
 * RSA_padding_add_PKCS1_type_1 and RSA_padding_check_PKCS1_OAEP_mgf1, deprecated in 3.0
 * with no EVP replacement (the EVP API pads and exponentiates in one step with a key it
 * holds). Writing them by hand is what the project forbids, so this one file lifts
 * OPENSSL_NO_DEPRECATED and silences the deprecation warnings for them and for
 * EVP_PKEY_get0_RSA, which they need.
 */
#undef OPENSSL_NO_DEPRECATED
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "certconn/proto.h"
#include "keys_pad.h"

const EVP_MD *
keys_pad_md(uint8_t md)
{
	switch (md) {
	case CC_MD_SHA1: return EVP_sha1();
	case CC_MD_SHA224: return EVP_sha224();
	case CC_MD_SHA256: return EVP_sha256();
	case CC_MD_SHA384: return EVP_sha384();
	case CC_MD_SHA512: return EVP_sha512();
	}
	return NULL;
}

int
keys_pad_digestinfo(uint8_t md, const uint8_t *dg, size_t dg_len, uint8_t **out,
    size_t *out_len)
{
	const EVP_MD *m = keys_pad_md(md);
	X509_SIG *sig = NULL;
	X509_ALGOR *alg;
	ASN1_OCTET_STRING *os;
	unsigned char *der = NULL;
	int n, ret = -1;

	*out = NULL;
	*out_len = 0;
	if (m == NULL || dg_len != (size_t)EVP_MD_get_size(m))
		return -1;
	sig = X509_SIG_new();
	if (sig == NULL)
		goto out;
	X509_SIG_getm(sig, &alg, &os);
	/* PKCS#1 v1.5 wants the NULL parameter explicitly (RFC 8017 section 9.2 note 1). */
	if (!X509_ALGOR_set0(alg, OBJ_nid2obj(EVP_MD_get_type(m)), V_ASN1_NULL, NULL) ||
	    !ASN1_OCTET_STRING_set(os, dg, (int)dg_len))
		goto out;
	n = i2d_X509_SIG(sig, &der);
	if (n <= 0)
		goto out;
	*out = malloc((size_t)n);
	if (*out == NULL)
		goto out;
	memcpy(*out, der, (size_t)n);
	*out_len = (size_t)n;
	ret = 0;
out:
	OPENSSL_free(der);
	X509_SIG_free(sig);
	return ret;
}

int
keys_pad_ecdsa_der(const uint8_t *rs, size_t rs_len, uint8_t **der, size_t *der_len)
{
	ECDSA_SIG *s = NULL;
	BIGNUM *r = NULL, *sv = NULL;
	unsigned char *buf = NULL;
	int n, ret = -1;

	*der = NULL;
	*der_len = 0;
	if (rs_len == 0 || rs_len % 2 != 0 || rs_len > 2 * 66)
		return -1;
	r = BN_bin2bn(rs, (int)(rs_len / 2), NULL);
	sv = BN_bin2bn(rs + rs_len / 2, (int)(rs_len / 2), NULL);
	s = ECDSA_SIG_new();
	if (r == NULL || sv == NULL || s == NULL || !ECDSA_SIG_set0(s, r, sv))
		goto out;
	r = sv = NULL; /* owned by s now */
	n = i2d_ECDSA_SIG(s, &buf);
	if (n <= 0)
		goto out;
	*der = malloc((size_t)n);
	if (*der == NULL)
		goto out;
	memcpy(*der, buf, (size_t)n);
	*der_len = (size_t)n;
	ret = 0;
out:
	OPENSSL_free(buf);
	ECDSA_SIG_free(s);
	BN_free(r);
	BN_free(sv);
	return ret;
}

int
keys_pad_pkcs1_encode(const uint8_t *digestinfo, size_t di_len, uint8_t *em, size_t em_len)
{
	if (em_len > INT32_MAX || di_len + 11 > em_len)
		return -1;
	return RSA_padding_add_PKCS1_type_1(em, (int)em_len, digestinfo, (int)di_len) == 1 ? 0 :
	    -1;
}

int
keys_pad_pss_encode(EVP_PKEY *pub, uint8_t md, uint8_t mgf1_md, size_t saltlen,
    const uint8_t *dg, size_t dg_len, uint8_t *em, size_t em_len)
{
	const EVP_MD *m = keys_pad_md(md);
	const EVP_MD *mgf = keys_pad_md(mgf1_md != CC_MD_NONE ? mgf1_md : md);
	const RSA *rsa = EVP_PKEY_get0_RSA(pub);
	int k;

	if (m == NULL || mgf == NULL || rsa == NULL)
		return -1;
	k = RSA_size(rsa);
	if (k <= 0 || em_len != (size_t)k || dg_len != (size_t)EVP_MD_get_size(m))
		return -1;
	/* emLen >= hLen + sLen + 2 (RFC 8017 9.1.1 step 3); emLen is k or k-1 bytes. */
	if (saltlen > (size_t)k || saltlen + dg_len + 2 > (size_t)k)
		return -1;
	/* RSA_padding_add_PKCS1_PSS_mgf1 writes k bytes, with a leading 0 when modBits-1 is a
	 * multiple of 8, which is what the raw RSA operation expects. */
	if (RSA_padding_add_PKCS1_PSS_mgf1((RSA *)rsa, em, dg, m, mgf, (int)saltlen) != 1)
		return -1;
	return 0;
}

int
keys_pad_oaep_decode(EVP_PKEY *pub, uint8_t md, uint8_t mgf1_md, const uint8_t *label,
    size_t label_len, const uint8_t *em, size_t em_len, uint8_t *out, size_t *out_len)
{
	const EVP_MD *m = keys_pad_md(md);
	const EVP_MD *mgf = keys_pad_md(mgf1_md != CC_MD_NONE ? mgf1_md : md);
	const RSA *rsa = EVP_PKEY_get0_RSA(pub);
	int k, n;

	if (m == NULL || mgf == NULL || rsa == NULL)
		return -1;
	k = RSA_size(rsa);
	if (k <= 0 || em_len != (size_t)k || *out_len > INT32_MAX || label_len > INT32_MAX)
		return -1;
	/* Called with the whole k-byte block, as OpenSSL's own rsa_ossl_private_decrypt does. */
	n = RSA_padding_check_PKCS1_OAEP_mgf1(out, (int)*out_len, em, k, k, label,
	    (int)label_len, m, mgf);
	if (n < 0)
		return -1;
	*out_len = (size_t)n;
	return 0;
}

int
keys_pad_rsa_below_modulus(const EVP_PKEY *pub, const uint8_t *in, size_t in_len)
{
	BIGNUM *n = NULL, *c = NULL;
	int ret = -1;

	if (pub == NULL || EVP_PKEY_get_base_id(pub) != EVP_PKEY_RSA || in == NULL ||
	    in_len == 0 || in_len > INT_MAX)
		return -1;
	if (!EVP_PKEY_get_bn_param(pub, OSSL_PKEY_PARAM_RSA_N, &n) ||
	    (c = BN_bin2bn(in, (int)in_len, NULL)) == NULL)
		goto out;
	ret = BN_cmp(c, n) < 0 ? 1 : 0;
out:
	BN_free(n);
	BN_clear_free(c);
	return ret;
}
