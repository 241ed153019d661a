/* TBS wrapping: see x509_tbs.h. */
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/x509.h>

#include "x509_tbs.h"

int
x509_tbs_is_sequence(const uint8_t *buf, size_t len)
{
	const unsigned char *p = buf;
	long clen;
	int tag, cls, r;

	if (buf == NULL || len < 2 || len > (size_t)0x7fffffff)
		return -1;
	r = ASN1_get_object(&p, &clen, &tag, &cls, (long)len);
	/* 0x80 is an error; 0x21 (constructed + indefinite length) is BER, not DER. */
	if ((r & 0x80) || r != V_ASN1_CONSTRUCTED || tag != V_ASN1_SEQUENCE ||
	    cls != V_ASN1_UNIVERSAL)
		return -1;
	if ((size_t)(p - buf) + (size_t)clen != len)
		return -1;
	return 0;
}

static ASN1_TYPE *
seq_type(const uint8_t *der, size_t len)
{
	ASN1_TYPE *t = ASN1_TYPE_new();
	ASN1_STRING *s = ASN1_STRING_type_new(V_ASN1_SEQUENCE);

	if (t == NULL || s == NULL || !ASN1_STRING_set(s, der, (int)len)) {
		ASN1_TYPE_free(t);
		ASN1_STRING_free(s);
		return NULL;
	}
	ASN1_TYPE_set(t, V_ASN1_SEQUENCE, s);
	return t;
}

int
x509_tbs_assemble(const uint8_t *tbs, size_t tbs_len, const X509_ALGOR *alg,
    const uint8_t *sig, size_t sig_len, uint8_t **out, size_t *out_len)
{
	ASN1_SEQUENCE_ANY *seq = NULL;
	ASN1_TYPE *t = NULL;
	ASN1_BIT_STRING *bits = NULL;
	unsigned char *algder = NULL, *der = NULL;
	int n, ret = -1;

	*out = NULL;
	*out_len = 0;
	if (x509_tbs_is_sequence(tbs, tbs_len) == -1 || sig_len > 65536)
		return -1;
	seq = sk_ASN1_TYPE_new_null();
	if (seq == NULL)
		goto out;
	if ((t = seq_type(tbs, tbs_len)) == NULL || !sk_ASN1_TYPE_push(seq, t))
		goto out;
	t = NULL;
	n = i2d_X509_ALGOR(alg, &algder);
	if (n <= 0 || (t = seq_type(algder, (size_t)n)) == NULL || !sk_ASN1_TYPE_push(seq, t))
		goto out;
	t = NULL;
	bits = ASN1_BIT_STRING_new();
	if (bits == NULL || !ASN1_BIT_STRING_set(bits, (unsigned char *)sig, (int)sig_len))
		goto out;
	/* A signature is whole bytes: say so, or OpenSSL trims trailing zero bits. */
	bits->flags &= ~0x07L;
	bits->flags |= ASN1_STRING_FLAG_BITS_LEFT;
	if ((t = ASN1_TYPE_new()) == NULL)
		goto out;
	ASN1_TYPE_set(t, V_ASN1_BIT_STRING, bits);
	bits = NULL;
	if (!sk_ASN1_TYPE_push(seq, t))
		goto out;
	t = NULL;
	der = NULL;
	n = i2d_ASN1_SEQUENCE_ANY(seq, &der);
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
	OPENSSL_free(algder);
	ASN1_BIT_STRING_free(bits);
	ASN1_TYPE_free(t);
	sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
	return ret;
}
