/*
 * keyref asymmetric cipher for RSA: decryption (PKCS#1 v1.5, OAEP) is sent to keys
 * (DECRYPT_REQ); encryption runs locally on the public key.
 */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rsa.h>

#include "keyref_int.h"

struct kr_cipher {
	struct kr_provctx *pctx;
	struct kr_key *key;
	int decrypt;            /* 1 after decrypt_init, 0 after encrypt_init */
	int pad;                /* RSA_PKCS1_PADDING or RSA_PKCS1_OAEP_PADDING */
	EVP_MD *oaep_md;        /* NULL: SHA-1, OAEP's default */
	EVP_MD *mgf1;           /* NULL: same as oaep_md */
	uint8_t *label;
	size_t label_len;
};

static void *
ciph_newctx(void *provctx)
{
	struct kr_cipher *c = OPENSSL_zalloc(sizeof(*c));

	if (c == NULL)
		return NULL;
	c->pctx = provctx;
	c->pad = RSA_PKCS1_PADDING;
	return c;
}

static void
ciph_freectx(void *vctx)
{
	struct kr_cipher *c = vctx;

	if (c == NULL)
		return;
	kr_key_free(c->key);
	EVP_MD_free(c->oaep_md);
	EVP_MD_free(c->mgf1);
	OPENSSL_free(c->label);
	OPENSSL_free(c);
}

static void *
ciph_dupctx(void *vctx)
{
	struct kr_cipher *src = vctx, *c;

	c = OPENSSL_memdup(src, sizeof(*src));
	if (c == NULL)
		return NULL;
	if (c->key != NULL)
		kr_key_up_ref(c->key);
	if (c->oaep_md != NULL)
		EVP_MD_up_ref(c->oaep_md);
	if (c->mgf1 != NULL)
		EVP_MD_up_ref(c->mgf1);
	if (src->label != NULL) {
		c->label = OPENSSL_memdup(src->label, src->label_len);
		if (c->label == NULL) {
			c->label_len = 0;
			ciph_freectx(c);
			return NULL;
		}
	}
	return c;
}

static int ciph_set_ctx_params(void *vctx, const OSSL_PARAM params[]);

static int
ciph_init(struct kr_cipher *c, void *provkey, const OSSL_PARAM params[], int decrypt)
{
	struct kr_key *k = provkey;

	if (k == NULL || k->type != CC_KEY_RSA || k->pub == NULL) {
		kr_raise(KEYREF_R_BAD_PARAM, "not an RSA keyref key");
		return 0;
	}
	if (decrypt && k->role == NULL) {
		kr_raise(KEYREF_R_NO_PRIVATE, "this keyref key is a public key only");
		return 0;
	}
	kr_key_up_ref(k);
	kr_key_free(c->key);
	c->key = k;
	c->decrypt = decrypt;
	return ciph_set_ctx_params(c, params);
}

static int
ciph_decrypt_init(void *vctx, void *provkey, const OSSL_PARAM params[])
{
	return ciph_init(vctx, provkey, params, 1);
}

static int
ciph_encrypt_init(void *vctx, void *provkey, const OSSL_PARAM params[])
{
	return ciph_init(vctx, provkey, params, 0);
}

static uint8_t
md_code(const EVP_MD *md)
{
	return md != NULL ? cc_md_from_name(EVP_MD_get0_name(md)) : CC_MD_SHA1;
}

static int
ciph_decrypt(void *vctx, unsigned char *out, size_t *outlen, size_t outsize,
    const unsigned char *in, size_t inlen)
{
	struct kr_cipher *c = vctx;
	struct cc_decrypt_req req;
	size_t size = kr_key_sig_size(c->key);

	if (!c->decrypt) {
		kr_raise(KEYREF_R_BAD_PARAM, "context not initialised for decryption");
		return 0;
	}
	if (out == NULL) {
		*outlen = size;
		return 1;
	}
	if (inlen != size) {
		kr_raise(KEYREF_R_BAD_PARAM, "a %zu-byte ciphertext for an RSA-%d key", inlen,
		    EVP_PKEY_get_bits(c->key->pub));
		return 0;
	}
	memset(&req, 0, sizeof(req));
	req.role = c->key->role;
	req.in = in;
	req.in_len = inlen;
	if (c->pad == RSA_PKCS1_OAEP_PADDING) {
		req.pad = CC_DEC_RSA_OAEP;
		req.oaep_md = md_code(c->oaep_md);
		req.mgf1_md = c->mgf1 != NULL ? md_code(c->mgf1) : req.oaep_md;
		req.label = c->label;
		req.label_len = c->label_len;
	} else {
		req.pad = CC_DEC_RSA_PKCS1;
	}
	/* The plaintext may be shorter than the key; it must fit the caller's buffer. */
	return keyref_client_decrypt(c->key->cl, &req, out, outsize < size ? outsize : size,
	    outlen) == CC_KE_OK;
}

static int
ciph_encrypt(void *vctx, unsigned char *out, size_t *outlen, size_t outsize,
    const unsigned char *in, size_t inlen)
{
	struct kr_cipher *c = vctx;
	EVP_PKEY_CTX *e;
	int ok = 0;

	if (c->decrypt)
		return 0;
	e = EVP_PKEY_CTX_new_from_pkey(c->pctx->libctx, c->key->pub, KR_DEFAULT_PROPQ);
	if (e == NULL || EVP_PKEY_encrypt_init(e) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(e, c->pad) != 1)
		goto out;
	if (c->pad == RSA_PKCS1_OAEP_PADDING) {
		if ((c->oaep_md != NULL && EVP_PKEY_CTX_set_rsa_oaep_md(e, c->oaep_md) != 1) ||
		    (c->mgf1 != NULL && EVP_PKEY_CTX_set_rsa_mgf1_md(e, c->mgf1) != 1))
			goto out;
		if (c->label != NULL) {
			/* set0 takes ownership of the label. */
			void *l = OPENSSL_memdup(c->label, c->label_len);

			if (l == NULL || EVP_PKEY_CTX_set0_rsa_oaep_label(e, l,
			    (int)c->label_len) != 1) {
				OPENSSL_free(l);
				goto out;
			}
		}
	}
	if (out == NULL) {
		ok = EVP_PKEY_encrypt(e, NULL, outlen, in, inlen) == 1;
		goto out;
	}
	*outlen = outsize;
	ok = EVP_PKEY_encrypt(e, out, outlen, in, inlen) == 1;
out:
	EVP_PKEY_CTX_free(e);
	return ok;
}

static int
set_md(struct kr_cipher *c, EVP_MD **slot, const OSSL_PARAM *p, const OSSL_PARAM *props)
{
	const char *name = NULL, *pq = NULL;
	EVP_MD *md;

	if (!OSSL_PARAM_get_utf8_string_ptr(p, &name) ||
	    (props != NULL && !OSSL_PARAM_get_utf8_string_ptr(props, &pq)))
		return 0;
	md = EVP_MD_fetch(c->pctx->libctx, name, pq != NULL ? pq : KR_DEFAULT_PROPQ);
	if (md == NULL || cc_md_from_name(EVP_MD_get0_name(md)) == CC_MD_NONE) {
		kr_raise(KEYREF_R_UNSUPPORTED, "OAEP through keys uses SHA-1 or SHA-2, not %s",
		    name);
		EVP_MD_free(md);
		return 0;
	}
	EVP_MD_free(*slot);
	*slot = md;
	return 1;
}

static int
ciph_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
	struct kr_cipher *c = vctx;
	const OSSL_PARAM *p;
	int pad;

	if (params == NULL)
		return 1;
	p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_PAD_MODE);
	if (p != NULL) {
		if (!kr_pad_from_param(p, &pad) ||
		    (pad != RSA_PKCS1_PADDING && pad != RSA_PKCS1_OAEP_PADDING)) {
			kr_raise(KEYREF_R_UNSUPPORTED, "RSA decryption through keys uses PKCS#1 v1.5 "
			    "or OAEP padding");
			return 0;
		}
		c->pad = pad;
	}
	p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST);
	if (p != NULL && !set_md(c, &c->oaep_md, p,
	    OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST_PROPS)))
		return 0;
	p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST);
	if (p != NULL && !set_md(c, &c->mgf1, p,
	    OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST_PROPS)))
		return 0;
	p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL);
	if (p != NULL) {
		void *label = NULL;
		size_t n = 0;

		if (!OSSL_PARAM_get_octet_string(p, &label, 0, &n))
			return 0;
		OPENSSL_free(c->label);
		c->label = n > 0 ? label : NULL;
		c->label_len = n;
		if (n == 0)
			OPENSSL_free(label);
	}
	p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_TLS_CLIENT_VERSION);
	if (p != NULL) {
		/* RSA key exchange as a TLS server (implicit rejection in keys) is not offered. */
		kr_raise(KEYREF_R_UNSUPPORTED, "TLS RSA key exchange is not supported");
		return 0;
	}
	return 1;
}

static int
ciph_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
	struct kr_cipher *c = vctx;
	OSSL_PARAM *p;

	p = OSSL_PARAM_locate(params, OSSL_ASYM_CIPHER_PARAM_PAD_MODE);
	if (p != NULL) {
		if (p->data_type == OSSL_PARAM_INTEGER) {
			if (!OSSL_PARAM_set_int(p, c->pad))
				return 0;
		} else if (!OSSL_PARAM_set_utf8_string(p, c->pad == RSA_PKCS1_OAEP_PADDING
		    ? OSSL_PKEY_RSA_PAD_MODE_OAEP : OSSL_PKEY_RSA_PAD_MODE_PKCSV15)) {
			return 0;
		}
	}
	p = OSSL_PARAM_locate(params, OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST);
	if (p != NULL && !OSSL_PARAM_set_utf8_string(p, c->oaep_md != NULL
	    ? EVP_MD_get0_name(c->oaep_md) : "SHA1"))
		return 0;
	p = OSSL_PARAM_locate(params, OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST);
	if (p != NULL) {
		const EVP_MD *m = c->mgf1 != NULL ? c->mgf1 : c->oaep_md;

		if (!OSSL_PARAM_set_utf8_string(p, m != NULL ? EVP_MD_get0_name(m) : "SHA1"))
			return 0;
	}
	p = OSSL_PARAM_locate(params, OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL);
	if (p != NULL && !OSSL_PARAM_set_octet_ptr(p, c->label, c->label_len))
		return 0;
	return 1;
}

static const OSSL_PARAM *
ciph_settable_ctx_params(void *vctx, void *provctx)
{
	static const OSSL_PARAM p[] = {
		OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_PAD_MODE, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST_PROPS, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST_PROPS, NULL, 0),
		OSSL_PARAM_octet_string(OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL, NULL, 0),
		OSSL_PARAM_END
	};

	(void)vctx;
	(void)provctx;
	return p;
}

static const OSSL_PARAM *
ciph_gettable_ctx_params(void *vctx, void *provctx)
{
	static const OSSL_PARAM p[] = {
		OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_PAD_MODE, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST, NULL, 0),
		OSSL_PARAM_octet_ptr(OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL, NULL, 0),
		OSSL_PARAM_END
	};

	(void)vctx;
	(void)provctx;
	return p;
}

const OSSL_DISPATCH kr_rsa_asym_cipher_functions[] = {
	{ OSSL_FUNC_ASYM_CIPHER_NEWCTX, (void (*)(void))ciph_newctx },
	{ OSSL_FUNC_ASYM_CIPHER_FREECTX, (void (*)(void))ciph_freectx },
	{ OSSL_FUNC_ASYM_CIPHER_DUPCTX, (void (*)(void))ciph_dupctx },
	{ OSSL_FUNC_ASYM_CIPHER_DECRYPT_INIT, (void (*)(void))ciph_decrypt_init },
	{ OSSL_FUNC_ASYM_CIPHER_DECRYPT, (void (*)(void))ciph_decrypt },
	{ OSSL_FUNC_ASYM_CIPHER_ENCRYPT_INIT, (void (*)(void))ciph_encrypt_init },
	{ OSSL_FUNC_ASYM_CIPHER_ENCRYPT, (void (*)(void))ciph_encrypt },
	{ OSSL_FUNC_ASYM_CIPHER_GET_CTX_PARAMS, (void (*)(void))ciph_get_ctx_params },
	{ OSSL_FUNC_ASYM_CIPHER_SET_CTX_PARAMS, (void (*)(void))ciph_set_ctx_params },
	{ OSSL_FUNC_ASYM_CIPHER_GETTABLE_CTX_PARAMS, (void (*)(void))ciph_gettable_ctx_params },
	{ OSSL_FUNC_ASYM_CIPHER_SETTABLE_CTX_PARAMS, (void (*)(void))ciph_settable_ctx_params },
	{ 0, NULL }
};
