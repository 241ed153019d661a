/*
 * keyref signatures: RSA (PKCS#1 v1.5, PSS) and ECDSA. Signing sends a digest to keys
 * (SIGN_REQ); digest-sign hashes here with the default provider first. For a role whose
 * keys flags say TBS_ONLY (the ca role), digest-sign keeps the whole message instead and
 * sends it as a to-be-signed certificate or CRL (SIGN_TBS_REQ), which keys checks against
 * the CA's signing policy. Verification runs locally on the public key.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1t.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/params.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "keyref_int.h"

enum kr_sig_op { KR_OP_NONE, KR_OP_SIGN, KR_OP_VERIFY };

struct kr_sig {
	struct kr_provctx *pctx;
	struct kr_key *key;
	int type;               /* CC_KEY_RSA (RSA signature) or CC_KEY_EC (ECDSA) */
	enum kr_sig_op op;
	int pad;                /* RSA_PKCS1_PADDING or RSA_PKCS1_PSS_PADDING */
	int saltlen;            /* RSA_PSS_SALTLEN_* or a byte count */
	EVP_MD *md;             /* NULL until set */
	EVP_MD *mgf1;           /* NULL: same as md */
	int digesting;          /* inside digest-sign/verify: the digest is fixed */
	EVP_MD_CTX *mdctx;      /* digest-sign/verify of a role that takes digests */
	int tbs_mode;           /* digest-sign of a TBS_ONLY role: the message is kept */
	uint8_t *tbs;
	size_t tbs_len;
	size_t tbs_cap;
};

static void *
sig_newctx(void *provctx, int type)
{
	struct kr_sig *c = OPENSSL_zalloc(sizeof(*c));

	if (c == NULL)
		return NULL;
	c->pctx = provctx;
	c->type = type;
	c->pad = RSA_PKCS1_PADDING;
	c->saltlen = RSA_PSS_SALTLEN_AUTO;
	return c;
}

static void *
rsa_newctx(void *provctx, const char *propq)
{
	(void)propq; /* keyref's own digests come from the default provider */
	return sig_newctx(provctx, CC_KEY_RSA);
}

static void *
ecdsa_newctx(void *provctx, const char *propq)
{
	(void)propq;
	return sig_newctx(provctx, CC_KEY_EC);
}

static void
tbs_clear(struct kr_sig *c)
{
	OPENSSL_free(c->tbs);
	c->tbs = NULL;
	c->tbs_len = c->tbs_cap = 0;
}

static void
sig_freectx(void *vctx)
{
	struct kr_sig *c = vctx;

	if (c == NULL)
		return;
	kr_key_free(c->key);
	EVP_MD_free(c->md);
	EVP_MD_free(c->mgf1);
	EVP_MD_CTX_free(c->mdctx);
	tbs_clear(c);
	OPENSSL_free(c);
}

static void *
sig_dupctx(void *vctx)
{
	struct kr_sig *src = vctx, *c;

	c = OPENSSL_memdup(src, sizeof(*src));
	if (c == NULL)
		return NULL;
	c->mdctx = NULL;
	c->tbs = NULL;
	if (c->key != NULL)
		kr_key_up_ref(c->key);
	if (c->md != NULL)
		EVP_MD_up_ref(c->md);
	if (c->mgf1 != NULL)
		EVP_MD_up_ref(c->mgf1);
	if (src->mdctx != NULL) {
		c->mdctx = EVP_MD_CTX_new();
		if (c->mdctx == NULL || !EVP_MD_CTX_copy_ex(c->mdctx, src->mdctx))
			goto err;
	}
	if (src->tbs != NULL) {
		c->tbs = OPENSSL_memdup(src->tbs, src->tbs_cap);
		if (c->tbs == NULL)
			goto err;
	}
	return c;
err:
	sig_freectx(c);
	return NULL;
}

/* ---- digests ---- */

static int
set_md(struct kr_sig *c, EVP_MD **slot, const char *name, const char *props)
{
	EVP_MD *md;

	md = EVP_MD_fetch(c->pctx->libctx, name, props != NULL ? props : KR_DEFAULT_PROPQ);
	if (md == NULL) {
		kr_raise(KEYREF_R_UNSUPPORTED, "unknown digest %s", name);
		return 0;
	}
	if (cc_md_from_name(EVP_MD_get0_name(md)) == CC_MD_NONE) {
		kr_raise(KEYREF_R_UNSUPPORTED, "keys signs SHA-1 and SHA-2 digests only, not %s",
		    name);
		EVP_MD_free(md);
		return 0;
	}
	EVP_MD_free(*slot);
	*slot = md;
	return 1;
}

static uint8_t
md_for_len(size_t n)
{
	for (uint8_t m = CC_MD_SHA1; m <= CC_MD_MAX; m++)
		if (cc_md_size(m) == n)
			return m;
	return CC_MD_NONE;
}

/* The digest of a pre-hashed input: the one set, or the one its length names. */
static int
digest_of(const struct kr_sig *c, size_t dlen, uint8_t *md)
{
	if (c->md != NULL) {
		*md = cc_md_from_name(EVP_MD_get0_name(c->md));
		if (dlen != (size_t)EVP_MD_get_size(c->md)) {
			kr_raise(KEYREF_R_BAD_PARAM, "a %zu-byte input is no %s digest", dlen,
			    EVP_MD_get0_name(c->md));
			return 0;
		}
		return 1;
	}
	*md = md_for_len(dlen);
	if (*md == CC_MD_NONE) {
		kr_raise(KEYREF_R_BAD_PARAM, "a %zu-byte input is no SHA-1/SHA-2 digest", dlen);
		return 0;
	}
	return 1;
}

/* The PSS salt length in bytes for signing with a digest of hlen bytes. */
static int
pss_saltlen(const struct kr_sig *c, size_t hlen, uint32_t *out)
{
	int bits = EVP_PKEY_get_bits(c->key->pub);
	int max = (bits - 1 + 7) / 8 - (int)hlen - 2;
	int want;

	if (max < 0) {
		kr_raise(KEYREF_R_BAD_PARAM, "RSA-%d is too small for PSS with this digest", bits);
		return 0;
	}
	switch (c->saltlen) {
	case RSA_PSS_SALTLEN_DIGEST:
		want = (int)hlen;
		break;
	case RSA_PSS_SALTLEN_AUTO: /* for signing, OpenSSL's "auto" is the maximum */
	case RSA_PSS_SALTLEN_MAX:
		want = max;
		break;
	default:
		want = c->saltlen;
		break;
	}
	if (want < 0 || want > max) {
		kr_raise(KEYREF_R_BAD_PARAM, "PSS salt length %d not possible with RSA-%d "
		    "(at most %d)", want, bits, max);
		return 0;
	}
	*out = (uint32_t)want;
	return 1;
}

/* ---- init ---- */

static int sig_set_ctx_params(void *vctx, const OSSL_PARAM params[]);

static int
sig_init(struct kr_sig *c, void *provkey, const OSSL_PARAM params[], enum kr_sig_op op)
{
	struct kr_key *k = provkey;

	if (k != NULL) {
		if (k->type != c->type) {
			kr_raise(KEYREF_R_BAD_PARAM, "key type does not suit this signature");
			return 0;
		}
		kr_key_up_ref(k);
		kr_key_free(c->key);
		c->key = k;
	}
	if (c->key == NULL || c->key->pub == NULL) {
		kr_raise(KEYREF_R_BAD_PARAM, "no key");
		return 0;
	}
	if (op == KR_OP_SIGN && c->key->role == NULL) {
		kr_raise(KEYREF_R_NO_PRIVATE, "this keyref key is a public key only");
		return 0;
	}
	c->op = op;
	c->digesting = 0;
	c->tbs_mode = 0;
	tbs_clear(c);
	return sig_set_ctx_params(c, params);
}

static int
sig_sign_init(void *vctx, void *provkey, const OSSL_PARAM params[])
{
	return sig_init(vctx, provkey, params, KR_OP_SIGN);
}

static int
sig_verify_init(void *vctx, void *provkey, const OSSL_PARAM params[])
{
	return sig_init(vctx, provkey, params, KR_OP_VERIFY);
}

static int
digest_init(struct kr_sig *c, const char *mdname, void *provkey, const OSSL_PARAM params[],
    enum kr_sig_op op)
{
	if (!sig_init(c, provkey, params, op))
		return 0;
	if (mdname != NULL && mdname[0] != '\0') {
		if (!set_md(c, &c->md, mdname, NULL))
			return 0;
	} else if (c->md == NULL && !set_md(c, &c->md, "SHA256", NULL)) {
		return 0;
	}
	c->digesting = 1;
	if (op == KR_OP_SIGN && (c->key->flags & CC_ROLE_TBS_ONLY) != 0) {
		c->tbs_mode = 1;
		return 1;
	}
	if (c->mdctx == NULL && (c->mdctx = EVP_MD_CTX_new()) == NULL)
		return 0;
	return EVP_DigestInit_ex2(c->mdctx, c->md, NULL);
}

static int
sig_digest_sign_init(void *vctx, const char *mdname, void *provkey, const OSSL_PARAM params[])
{
	return digest_init(vctx, mdname, provkey, params, KR_OP_SIGN);
}

static int
sig_digest_verify_init(void *vctx, const char *mdname, void *provkey,
    const OSSL_PARAM params[])
{
	return digest_init(vctx, mdname, provkey, params, KR_OP_VERIFY);
}

/* ---- private operations, in keys ---- */

static int
do_sign(struct kr_sig *c, unsigned char *sig, size_t *siglen, size_t sigsize,
    const unsigned char *dgst, size_t dlen)
{
	struct cc_sign_req req;
	size_t size = kr_key_sig_size(c->key);

	if (c->op != KR_OP_SIGN) {
		kr_raise(KEYREF_R_BAD_PARAM, "context not initialised for signing");
		return 0;
	}
	if (sig == NULL) {
		*siglen = size;
		return 1;
	}
	if (sigsize < size) {
		kr_raise(KEYREF_R_BUFFER, "signature buffer of %zu bytes, %zu needed", sigsize,
		    size);
		return 0;
	}
	if ((c->key->flags & CC_ROLE_TBS_ONLY) != 0) {
		kr_raise(KEYREF_R_TBS_ONLY, "role %s signs only whole certificates and CRLs "
		    "(use X509_sign / X509_CRL_sign)", c->key->role);
		return 0;
	}
	memset(&req, 0, sizeof(req));
	req.role = c->key->role;
	req.digest = dgst;
	req.digest_len = dlen;
	if (!digest_of(c, dlen, &req.md))
		return 0;
	if (c->type == CC_KEY_EC) {
		req.alg = CC_SIG_ECDSA;
	} else if (c->pad == RSA_PKCS1_PSS_PADDING) {
		req.alg = CC_SIG_RSA_PSS;
		req.mgf1_md = c->mgf1 != NULL ? cc_md_from_name(EVP_MD_get0_name(c->mgf1))
		    : req.md;
		if (!pss_saltlen(c, dlen, &req.saltlen))
			return 0;
	} else {
		req.alg = CC_SIG_RSA_PKCS1;
	}
	return keyref_client_sign(c->key->cl, &req, sig, size, siglen) == CC_KE_OK;
}

/*
 * X509_CINF's template with the subjectPublicKeyInfo kept as an undecoded SEQUENCE: telling a
 * TBSCertificate from a TBSCertList needs its shape, not its key, and OpenSSL 3.0 decodes a
 * key through a freshly built decoder context (about 6% of net's CPU per SCEP enrollment
 * under scep_bench). keys parses the TBS fully before it signs anything.
 */
typedef struct {
	ASN1_INTEGER *version;
	ASN1_INTEGER *serial;
	X509_ALGOR *signature;
	X509_NAME *issuer;
	X509_VAL *validity;
	X509_NAME *subject;
	ASN1_STRING *spki;
	ASN1_BIT_STRING *issuer_uid;
	ASN1_BIT_STRING *subject_uid;
	STACK_OF(X509_EXTENSION) *extensions;
} KR_TBS_CERT;

ASN1_SEQUENCE(KR_TBS_CERT) = {
	ASN1_EXP_OPT(KR_TBS_CERT, version, ASN1_INTEGER, 0),
	ASN1_SIMPLE(KR_TBS_CERT, serial, ASN1_INTEGER),
	ASN1_SIMPLE(KR_TBS_CERT, signature, X509_ALGOR),
	ASN1_SIMPLE(KR_TBS_CERT, issuer, X509_NAME),
	ASN1_SIMPLE(KR_TBS_CERT, validity, X509_VAL),
	ASN1_SIMPLE(KR_TBS_CERT, subject, X509_NAME),
	ASN1_SIMPLE(KR_TBS_CERT, spki, ASN1_SEQUENCE),
	ASN1_IMP_OPT(KR_TBS_CERT, issuer_uid, ASN1_BIT_STRING, 1),
	ASN1_IMP_OPT(KR_TBS_CERT, subject_uid, ASN1_BIT_STRING, 2),
	ASN1_EXP_SEQUENCE_OF_OPT(KR_TBS_CERT, extensions, X509_EXTENSION, 3)
} static_ASN1_SEQUENCE_END(KR_TBS_CERT)

static int
tbs_kind(const uint8_t *tbs, size_t n, uint8_t *kind)
{
	const unsigned char *p = tbs;
	ASN1_VALUE *ci;
	X509_CRL_INFO *cri;

	ci = ASN1_item_d2i(NULL, &p, (long)n, ASN1_ITEM_rptr(KR_TBS_CERT));
	ASN1_item_free(ci, ASN1_ITEM_rptr(KR_TBS_CERT));
	if (ci != NULL && p == tbs + n) {
		*kind = CC_TBS_CERT;
		return 1;
	}
	p = tbs;
	cri = d2i_X509_CRL_INFO(NULL, &p, (long)n);
	X509_CRL_INFO_free(cri);
	if (cri != NULL && p == tbs + n) {
		*kind = CC_TBS_CRL;
		return 1;
	}
	ERR_clear_error();
	kr_raise(KEYREF_R_NOT_TBS, "the %zu bytes to sign are neither a TBSCertificate nor a "
	    "TBSCertList", n);
	return 0;
}

static int
do_sign_tbs(struct kr_sig *c, unsigned char *sig, size_t *siglen, size_t sigsize)
{
	struct cc_sign_tbs_req req;
	size_t size = kr_key_sig_size(c->key);

	if (sig == NULL) {
		*siglen = size;
		return 1;
	}
	if (sigsize < size) {
		kr_raise(KEYREF_R_BUFFER, "signature buffer of %zu bytes, %zu needed", sigsize,
		    size);
		return 0;
	}
	memset(&req, 0, sizeof(req));
	req.role = c->key->role;
	req.tbs = c->tbs;
	req.tbs_len = c->tbs_len;
	if (c->tbs_len == 0 || !tbs_kind(c->tbs, c->tbs_len, &req.kind))
		return 0;
	return keyref_client_sign_tbs(c->key->cl, &req, sig, size, siglen) == CC_KE_OK;
}

static int
sig_sign(void *vctx, unsigned char *sig, size_t *siglen, size_t sigsize,
    const unsigned char *tbs, size_t tbslen)
{
	return do_sign(vctx, sig, siglen, sigsize, tbs, tbslen);
}

/* Room the frame header, the role string, the kind and the length leave for the TBS. */
static size_t
tbs_max(const struct kr_sig *c)
{
	return CC_MSG_MAX - CC_MSG_HDR_LEN - (4 + strlen(c->key->role) + 1) - 1 - 4;
}

static int
sig_digest_update(void *vctx, const unsigned char *data, size_t n)
{
	struct kr_sig *c = vctx;

	if (!c->digesting) {
		kr_raise(KEYREF_R_BAD_PARAM, "no digest operation in progress");
		return 0;
	}
	if (!c->tbs_mode)
		return EVP_DigestUpdate(c->mdctx, data, n);
	if (n > tbs_max(c) - c->tbs_len) {
		kr_raise(KEYREF_R_TOO_LARGE, "to-be-signed data over %zu bytes", tbs_max(c));
		return 0;
	}
	if (c->tbs_len + n > c->tbs_cap) {
		size_t cap = c->tbs_cap ? c->tbs_cap : 4096;
		uint8_t *p;

		while (cap < c->tbs_len + n)
			cap *= 2;
		p = OPENSSL_realloc(c->tbs, cap);
		if (p == NULL)
			return 0;
		c->tbs = p;
		c->tbs_cap = cap;
	}
	if (n > 0)
		memcpy(c->tbs + c->tbs_len, data, n);
	c->tbs_len += n;
	return 1;
}

static int
sig_digest_sign_final(void *vctx, unsigned char *sig, size_t *siglen, size_t sigsize)
{
	struct kr_sig *c = vctx;
	unsigned char dgst[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;

	if (!c->digesting || c->op != KR_OP_SIGN) {
		kr_raise(KEYREF_R_BAD_PARAM, "no digest-sign operation in progress");
		return 0;
	}
	if (c->tbs_mode)
		return do_sign_tbs(c, sig, siglen, sigsize);
	if (sig == NULL)
		return do_sign(c, NULL, siglen, 0, NULL, 0);
	if (!EVP_DigestFinal_ex(c->mdctx, dgst, &dlen))
		return 0;
	return do_sign(c, sig, siglen, sigsize, dgst, dlen);
}

/* ---- public operations, here ---- */

static int
do_verify(struct kr_sig *c, const unsigned char *sig, size_t siglen,
    const unsigned char *dgst, size_t dlen)
{
	EVP_PKEY_CTX *v;
	int ok = 0;

	v = EVP_PKEY_CTX_new_from_pkey(c->pctx->libctx, c->key->pub, KR_DEFAULT_PROPQ);
	if (v == NULL || EVP_PKEY_verify_init(v) != 1)
		goto out;
	if (c->md != NULL && EVP_PKEY_CTX_set_signature_md(v, c->md) != 1)
		goto out;
	if (c->type == CC_KEY_RSA) {
		if (EVP_PKEY_CTX_set_rsa_padding(v, c->pad) != 1)
			goto out;
		if (c->pad == RSA_PKCS1_PSS_PADDING &&
		    (EVP_PKEY_CTX_set_rsa_pss_saltlen(v, c->saltlen) != 1 ||
		    (c->mgf1 != NULL && EVP_PKEY_CTX_set_rsa_mgf1_md(v, c->mgf1) != 1)))
			goto out;
	}
	ok = EVP_PKEY_verify(v, sig, siglen, dgst, dlen) == 1;
out:
	EVP_PKEY_CTX_free(v);
	return ok;
}

static int
sig_verify(void *vctx, const unsigned char *sig, size_t siglen, const unsigned char *tbs,
    size_t tbslen)
{
	struct kr_sig *c = vctx;

	if (c->op != KR_OP_VERIFY)
		return 0;
	return do_verify(c, sig, siglen, tbs, tbslen);
}

static int
sig_digest_verify_final(void *vctx, const unsigned char *sig, size_t siglen)
{
	struct kr_sig *c = vctx;
	unsigned char dgst[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;

	if (!c->digesting || c->op != KR_OP_VERIFY || !EVP_DigestFinal_ex(c->mdctx, dgst, &dlen))
		return 0;
	return do_verify(c, sig, siglen, dgst, dlen);
}

/* ---- AlgorithmIdentifier ---- */

static X509_ALGOR *
md_algor(const EVP_MD *md)
{
	X509_ALGOR *a = X509_ALGOR_new();

	if (a != NULL)
		X509_ALGOR_set_md(a, md);
	return a;
}

/* RSASSA-PSS-params (RFC 4055), fields left out where they equal the SHA-1/20 defaults. */
static int
pss_algor(const struct kr_sig *c, X509_ALGOR *alg)
{
	const EVP_MD *mgf1 = c->mgf1 != NULL ? c->mgf1 : c->md;
	RSA_PSS_PARAMS *pss = NULL;
	X509_ALGOR *mgfmd = NULL;
	ASN1_STRING *packed = NULL;
	uint32_t saltlen;
	int ok = 0;

	if (!pss_saltlen(c, (size_t)EVP_MD_get_size(c->md), &saltlen))
		return 0;
	pss = RSA_PSS_PARAMS_new();
	if (pss == NULL)
		goto out;
	if (EVP_MD_get_type(c->md) != NID_sha1 && (pss->hashAlgorithm = md_algor(c->md)) == NULL)
		goto out;
	if (EVP_MD_get_type(mgf1) != NID_sha1) {
		if ((mgfmd = md_algor(mgf1)) == NULL ||
		    ASN1_item_pack(mgfmd, ASN1_ITEM_rptr(X509_ALGOR), &packed) == NULL ||
		    (pss->maskGenAlgorithm = X509_ALGOR_new()) == NULL ||
		    !X509_ALGOR_set0(pss->maskGenAlgorithm, OBJ_nid2obj(NID_mgf1), V_ASN1_SEQUENCE,
		    packed))
			goto out;
		packed = NULL;
	}
	if (saltlen != 20) {
		if ((pss->saltLength = ASN1_INTEGER_new()) == NULL ||
		    !ASN1_INTEGER_set(pss->saltLength, (long)saltlen))
			goto out;
	}
	if (ASN1_item_pack(pss, ASN1_ITEM_rptr(RSA_PSS_PARAMS), &packed) == NULL ||
	    !X509_ALGOR_set0(alg, OBJ_nid2obj(NID_rsassaPss), V_ASN1_SEQUENCE, packed))
		goto out;
	packed = NULL;
	ok = 1;
out:
	ASN1_STRING_free(packed);
	X509_ALGOR_free(mgfmd);
	RSA_PSS_PARAMS_free(pss);
	return ok;
}

static int
algorithm_id(const struct kr_sig *c, OSSL_PARAM *p)
{
	X509_ALGOR *alg = NULL;
	unsigned char *der = NULL;
	int sig_nid, len, ok = 0;

	if (c->md == NULL || c->key == NULL)
		return 1; /* nothing to say until the digest is known */
	alg = X509_ALGOR_new();
	if (alg == NULL)
		goto out;
	if (c->type == CC_KEY_RSA && c->pad == RSA_PKCS1_PSS_PADDING) {
		if (!pss_algor(c, alg))
			goto out;
	} else {
		int pk = c->type == CC_KEY_RSA ? NID_rsaEncryption : NID_X9_62_id_ecPublicKey;

		if (!OBJ_find_sigid_by_algs(&sig_nid, EVP_MD_get_type(c->md), pk)) {
			kr_raise(KEYREF_R_UNSUPPORTED, "no signature algorithm for %s with %s",
			    EVP_MD_get0_name(c->md), c->type == CC_KEY_RSA ? "RSA" : "ECDSA");
			goto out;
		}
		/* PKCS#1 v1.5 identifiers carry NULL parameters, ECDSA ones none (RFC 5758). */
		if (!X509_ALGOR_set0(alg, OBJ_nid2obj(sig_nid),
		    c->type == CC_KEY_RSA ? V_ASN1_NULL : V_ASN1_UNDEF, NULL))
			goto out;
	}
	len = i2d_X509_ALGOR(alg, &der);
	if (len <= 0)
		goto out;
	ok = OSSL_PARAM_set_octet_string(p, der, (size_t)len);
out:
	OPENSSL_free(der);
	X509_ALGOR_free(alg);
	return ok;
}

/* ---- parameters ---- */

static const struct {
	int mode;
	const char *name;
} kr_pads[] = {
	{ RSA_PKCS1_PADDING, OSSL_PKEY_RSA_PAD_MODE_PKCSV15 },
	{ RSA_PKCS1_PSS_PADDING, OSSL_PKEY_RSA_PAD_MODE_PSS },
	{ RSA_PKCS1_OAEP_PADDING, OSSL_PKEY_RSA_PAD_MODE_OAEP },
	{ RSA_NO_PADDING, OSSL_PKEY_RSA_PAD_MODE_NONE },
};

int
kr_pad_from_param(const OSSL_PARAM *p, int *pad)
{
	if (p->data_type == OSSL_PARAM_INTEGER)
		return OSSL_PARAM_get_int(p, pad);
	if (p->data_type == OSSL_PARAM_UTF8_STRING) {
		for (size_t i = 0; i < sizeof(kr_pads) / sizeof(kr_pads[0]); i++) {
			if (p->data != NULL && strcmp(p->data, kr_pads[i].name) == 0) {
				*pad = kr_pads[i].mode;
				return 1;
			}
		}
	}
	return 0;
}

static int
pad_to_param(OSSL_PARAM *p, int pad)
{
	if (p->data_type == OSSL_PARAM_INTEGER)
		return OSSL_PARAM_set_int(p, pad);
	for (size_t i = 0; i < sizeof(kr_pads) / sizeof(kr_pads[0]); i++)
		if (kr_pads[i].mode == pad)
			return OSSL_PARAM_set_utf8_string(p, kr_pads[i].name);
	return 0;
}

static int
saltlen_from_param(const OSSL_PARAM *p, int *saltlen)
{
	const char *s;
	char *end;
	long v;

	if (p->data_type == OSSL_PARAM_INTEGER)
		return OSSL_PARAM_get_int(p, saltlen);
	if (p->data_type != OSSL_PARAM_UTF8_STRING || (s = p->data) == NULL)
		return 0;
	if (strcmp(s, OSSL_PKEY_RSA_PSS_SALT_LEN_DIGEST) == 0)
		*saltlen = RSA_PSS_SALTLEN_DIGEST;
	else if (strcmp(s, OSSL_PKEY_RSA_PSS_SALT_LEN_MAX) == 0)
		*saltlen = RSA_PSS_SALTLEN_MAX;
	else if (strcmp(s, OSSL_PKEY_RSA_PSS_SALT_LEN_AUTO) == 0)
		*saltlen = RSA_PSS_SALTLEN_AUTO;
	else {
		v = strtol(s, &end, 10);
		if (end == s || *end != '\0' || v < 0 || v > 1024)
			return 0;
		*saltlen = (int)v;
	}
	return 1;
}

static int
saltlen_to_param(OSSL_PARAM *p, int saltlen)
{
	char buf[16];

	if (p->data_type == OSSL_PARAM_INTEGER)
		return OSSL_PARAM_set_int(p, saltlen);
	switch (saltlen) {
	case RSA_PSS_SALTLEN_DIGEST:
		return OSSL_PARAM_set_utf8_string(p, OSSL_PKEY_RSA_PSS_SALT_LEN_DIGEST);
	case RSA_PSS_SALTLEN_MAX:
		return OSSL_PARAM_set_utf8_string(p, OSSL_PKEY_RSA_PSS_SALT_LEN_MAX);
	case RSA_PSS_SALTLEN_AUTO:
		return OSSL_PARAM_set_utf8_string(p, OSSL_PKEY_RSA_PSS_SALT_LEN_AUTO);
	}
	snprintf(buf, sizeof(buf), "%d", saltlen);
	return OSSL_PARAM_set_utf8_string(p, buf);
}

static int
sig_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
	struct kr_sig *c = vctx;
	OSSL_PARAM *p;

	if (c == NULL)
		return 0;
	p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_ALGORITHM_ID);
	if (p != NULL && !algorithm_id(c, p))
		return 0;
	p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_DIGEST);
	if (p != NULL && c->md != NULL && !OSSL_PARAM_set_utf8_string(p, EVP_MD_get0_name(c->md)))
		return 0;
	if (c->type != CC_KEY_RSA)
		return 1;
	p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_PAD_MODE);
	if (p != NULL && !pad_to_param(p, c->pad))
		return 0;
	p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_PSS_SALTLEN);
	if (p != NULL && !saltlen_to_param(p, c->saltlen))
		return 0;
	p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_MGF1_DIGEST);
	if (p != NULL) {
		const EVP_MD *m = c->mgf1 != NULL ? c->mgf1 : c->md;

		if (m != NULL && !OSSL_PARAM_set_utf8_string(p, EVP_MD_get0_name(m)))
			return 0;
	}
	return 1;
}

static int
sig_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
	struct kr_sig *c = vctx;
	const OSSL_PARAM *p, *props;
	const char *name = NULL, *pq = NULL;
	int v;

	if (c == NULL)
		return 0;
	if (params == NULL)
		return 1;
	p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_DIGEST);
	if (p != NULL) {
		props = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PROPERTIES);
		if (c->digesting) {
			kr_raise(KEYREF_R_BAD_PARAM, "the digest cannot change during digest-sign");
			return 0;
		}
		if (!OSSL_PARAM_get_utf8_string_ptr(p, &name) ||
		    (props != NULL && !OSSL_PARAM_get_utf8_string_ptr(props, &pq)) ||
		    !set_md(c, &c->md, name, pq))
			return 0;
	}
	if (c->type != CC_KEY_RSA)
		return 1;
	p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PAD_MODE);
	if (p != NULL) {
		if (!kr_pad_from_param(p, &v) ||
		    (v != RSA_PKCS1_PADDING && v != RSA_PKCS1_PSS_PADDING)) {
			kr_raise(KEYREF_R_UNSUPPORTED, "RSA signatures through keys use PKCS#1 v1.5 "
			    "or PSS padding");
			return 0;
		}
		c->pad = v;
	}
	p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PSS_SALTLEN);
	if (p != NULL) {
		if (!saltlen_from_param(p, &v)) {
			kr_raise(KEYREF_R_BAD_PARAM, "bad PSS salt length");
			return 0;
		}
		c->saltlen = v;
	}
	p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_MGF1_DIGEST);
	if (p != NULL) {
		props = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_MGF1_PROPERTIES);
		pq = NULL;
		if (!OSSL_PARAM_get_utf8_string_ptr(p, &name) ||
		    (props != NULL && !OSSL_PARAM_get_utf8_string_ptr(props, &pq)) ||
		    !set_md(c, &c->mgf1, name, pq))
			return 0;
	}
	return 1;
}

static const OSSL_PARAM *
rsa_settable_ctx_params(void *vctx, void *provctx)
{
	static const OSSL_PARAM p[] = {
		OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PROPERTIES, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_PROPERTIES, NULL, 0),
		OSSL_PARAM_END
	};

	(void)vctx;
	(void)provctx;
	return p;
}

static const OSSL_PARAM *
rsa_gettable_ctx_params(void *vctx, void *provctx)
{
	static const OSSL_PARAM p[] = {
		OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, NULL, 0),
		OSSL_PARAM_END
	};

	(void)vctx;
	(void)provctx;
	return p;
}

static const OSSL_PARAM *
ecdsa_settable_ctx_params(void *vctx, void *provctx)
{
	static const OSSL_PARAM p[] = {
		OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PROPERTIES, NULL, 0),
		OSSL_PARAM_END
	};

	(void)vctx;
	(void)provctx;
	return p;
}

static const OSSL_PARAM *
ecdsa_gettable_ctx_params(void *vctx, void *provctx)
{
	static const OSSL_PARAM p[] = {
		OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
		OSSL_PARAM_END
	};

	(void)vctx;
	(void)provctx;
	return p;
}

#define KR_SIG_COMMON \
	{ OSSL_FUNC_SIGNATURE_FREECTX, (void (*)(void))sig_freectx }, \
	{ OSSL_FUNC_SIGNATURE_DUPCTX, (void (*)(void))sig_dupctx }, \
	{ OSSL_FUNC_SIGNATURE_SIGN_INIT, (void (*)(void))sig_sign_init }, \
	{ OSSL_FUNC_SIGNATURE_SIGN, (void (*)(void))sig_sign }, \
	{ OSSL_FUNC_SIGNATURE_VERIFY_INIT, (void (*)(void))sig_verify_init }, \
	{ OSSL_FUNC_SIGNATURE_VERIFY, (void (*)(void))sig_verify }, \
	{ OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT, (void (*)(void))sig_digest_sign_init }, \
	{ OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE, (void (*)(void))sig_digest_update }, \
	{ OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL, (void (*)(void))sig_digest_sign_final }, \
	{ OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_INIT, (void (*)(void))sig_digest_verify_init }, \
	{ OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_UPDATE, (void (*)(void))sig_digest_update }, \
	{ OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_FINAL, (void (*)(void))sig_digest_verify_final }, \
	{ OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS, (void (*)(void))sig_get_ctx_params }, \
	{ OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS, (void (*)(void))sig_set_ctx_params }

const OSSL_DISPATCH kr_rsa_signature_functions[] = {
	{ OSSL_FUNC_SIGNATURE_NEWCTX, (void (*)(void))rsa_newctx },
	KR_SIG_COMMON,
	{ OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS, (void (*)(void))rsa_gettable_ctx_params },
	{ OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS, (void (*)(void))rsa_settable_ctx_params },
	{ 0, NULL }
};

const OSSL_DISPATCH kr_ecdsa_signature_functions[] = {
	{ OSSL_FUNC_SIGNATURE_NEWCTX, (void (*)(void))ecdsa_newctx },
	KR_SIG_COMMON,
	{ OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS, (void (*)(void))ecdsa_gettable_ctx_params },
	{ OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS, (void (*)(void))ecdsa_settable_ctx_params },
	{ 0, NULL }
};
