/*
 * keyref key management for RSA and EC. A key is a role name in keys, the client to reach
 * it, and the public key as a default-provider EVP_PKEY for everything public. Only the
 * public part is ever exported: that is what lets X509_check_private_key, EVP_PKEY_eq,
 * i2d_PUBKEY and libssl work with these keys, and what makes OpenSSL pick keyref's own
 * signature and cipher for private operations (a cross-export of the private part to
 * another provider fails, so EVP falls back to the key's own provider).
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/x509.h>

#include "keyref_int.h"

struct kr_key *
kr_key_new(struct kr_provctx *pctx, int type)
{
	struct kr_key *k = OPENSSL_zalloc(sizeof(*k));

	if (k == NULL)
		return NULL;
	atomic_init(&k->refs, 1);
	k->pctx = pctx;
	k->type = type;
	return k;
}

int
kr_key_up_ref(struct kr_key *k)
{
	atomic_fetch_add(&k->refs, 1);
	return 1;
}

void
kr_key_free(struct kr_key *k)
{
	if (k == NULL || atomic_fetch_sub(&k->refs, 1) != 1)
		return;
	OPENSSL_free(k->role);
	OPENSSL_free(k->cert);
	EVP_PKEY_free(k->pub);
	OPENSSL_free(k);
}

size_t
kr_key_sig_size(const struct kr_key *k)
{
	int n = k->pub != NULL ? EVP_PKEY_get_size(k->pub) : 0;

	return n > 0 ? (size_t)n : 0;
}

static const char *
type_name(int type)
{
	return type == CC_KEY_RSA ? "RSA" : "EC";
}

static void *
kr_rsa_new(void *provctx)
{
	return kr_key_new(provctx, CC_KEY_RSA);
}

static void *
kr_ec_new(void *provctx)
{
	return kr_key_new(provctx, CC_KEY_EC);
}

static void
kr_km_free(void *keydata)
{
	kr_key_free(keydata);
}

static void *
kr_km_dup(const void *keydata, int selection)
{
	const struct kr_key *src = keydata;
	struct kr_key *k;

	k = kr_key_new(src->pctx, src->type);
	if (k == NULL)
		return NULL;
	if (src->pub != NULL && (selection & OSSL_KEYMGMT_SELECT_ALL) != 0) {
		if (!EVP_PKEY_up_ref(src->pub))
			goto err;
		k->pub = src->pub;
		k->has_pub = src->has_pub && (selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) != 0;
	}
	if (src->role != NULL && (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0) {
		k->role = OPENSSL_strdup(src->role);
		if (k->role == NULL)
			goto err;
		k->cl = src->cl;
		k->mechs = src->mechs;
		k->flags = src->flags;
		if (src->cert != NULL) {
			k->cert = OPENSSL_memdup(src->cert, src->cert_len);
			if (k->cert == NULL)
				goto err;
			k->cert_len = src->cert_len;
		}
	}
	return k;
err:
	kr_key_free(k);
	return NULL;
}

static int
kr_km_has(const void *keydata, int selection)
{
	const struct kr_key *k = keydata;
	int ok = 1;

	if (k == NULL)
		return 0;
	if ((selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) != 0)
		ok = ok && k->has_pub;
	if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0)
		ok = ok && k->role != NULL;
	if ((selection & OSSL_KEYMGMT_SELECT_ALL_PARAMETERS) != 0 && k->type == CC_KEY_EC)
		ok = ok && k->pub != NULL;
	return ok;
}

static int
kr_km_match(const void *keydata1, const void *keydata2, int selection)
{
	const struct kr_key *a = keydata1, *b = keydata2;

	if (a->type != b->type || a->pub == NULL || b->pub == NULL)
		return 0;
	/* The private half lives in keys; its public half identifies it. */
	if ((selection & OSSL_KEYMGMT_SELECT_KEYPAIR) != 0)
		return a->has_pub && b->has_pub && EVP_PKEY_eq(a->pub, b->pub) == 1;
	/* RSA has no domain parameters; EC's are the curve. */
	if ((selection & OSSL_KEYMGMT_SELECT_ALL_PARAMETERS) != 0 && a->type == CC_KEY_EC)
		return EVP_PKEY_parameters_eq(a->pub, b->pub) == 1;
	return 1;
}

static int
kr_km_validate(const void *keydata, int selection, int checktype)
{
	const struct kr_key *k = keydata;
	EVP_PKEY_CTX *ctx;
	int ok;

	(void)checktype;
	if (!kr_km_has(keydata, selection))
		return 0;
	if ((selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) == 0)
		return 1;
	ctx = EVP_PKEY_CTX_new_from_pkey(k->pctx->libctx, k->pub, KR_DEFAULT_PROPQ);
	ok = ctx != NULL && EVP_PKEY_public_check(ctx) == 1;
	EVP_PKEY_CTX_free(ctx);
	return ok;
}

/* Takes a role's KEY_INFO into an empty key: the public key, flags, mechanisms, cert. */
static int
set_from_info(struct kr_key *k, const struct keyref_key_info *ki, struct keyref_client *cl)
{
	const unsigned char *p = ki->spki;

	if (ki->key_type != k->type) {
		kr_raise(KEYREF_R_BAD_PARAM, "role %s holds an %s key, not %s", ki->role,
		    ki->key_type == CC_KEY_RSA ? "RSA" : "EC", type_name(k->type));
		return 0;
	}
	k->pub = d2i_PUBKEY_ex(NULL, &p, (long)ki->spki_len, k->pctx->libctx, KR_DEFAULT_PROPQ);
	if (k->pub == NULL || p != ki->spki + ki->spki_len ||
	    !EVP_PKEY_is_a(k->pub, type_name(k->type))) {
		kr_raise(CC_KE_INTERNAL, "keys sent an unusable public key for role %s "
		    "(an RSA key must be rsaEncryption)", ki->role);
		EVP_PKEY_free(k->pub);
		k->pub = NULL;
		return 0;
	}
	k->has_pub = 1;
	k->role = OPENSSL_strdup(ki->role);
	if (ki->cert != NULL)
		k->cert = OPENSSL_memdup(ki->cert, ki->cert_len);
	if (k->role == NULL || (ki->cert != NULL && k->cert == NULL))
		return 0;
	k->cert_len = ki->cert_len;
	k->cl = cl;
	k->mechs = ki->mechs;
	k->flags = ki->flags;
	return 1;
}

static int
import_role(struct kr_key *k, const OSSL_PARAM params[])
{
	const OSSL_PARAM *p;
	struct keyref_client *cl = k->pctx->cl;
	struct keyref_key_info ki;
	const char *role = NULL;
	int ok;

	if (!OSSL_PARAM_get_utf8_string_ptr(OSSL_PARAM_locate_const(params, KEYREF_PARAM_ROLE),
	    &role) || role[0] == '\0') {
		kr_raise(KEYREF_R_BAD_PARAM, "bad %s parameter", KEYREF_PARAM_ROLE);
		return 0;
	}
	p = OSSL_PARAM_locate_const(params, KEYREF_PARAM_CLIENT);
	if (p != NULL) {
		/* An octet pointer whose "buffer" is the client itself. */
		const void *ptr = NULL;
		size_t n = 0;

		if (!OSSL_PARAM_get_octet_ptr(p, &ptr, &n)) {
			kr_raise(KEYREF_R_BAD_PARAM, "bad %s parameter", KEYREF_PARAM_CLIENT);
			return 0;
		}
		cl = (struct keyref_client *)ptr;
	}
	if (cl == NULL) {
		kr_raise(KEYREF_R_BAD_PARAM, "no keyref client for role %s", role);
		return 0;
	}
	p = OSSL_PARAM_locate_const(params, KR_PARAM_KEY_INFO);
	if (p != NULL) {
		const struct keyref_key_info *given;

		if (p->data_type != OSSL_PARAM_OCTET_STRING || p->data_size != sizeof(ki)) {
			kr_raise(KEYREF_R_BAD_PARAM, "bad %s parameter", KR_PARAM_KEY_INFO);
			return 0;
		}
		given = p->data;
		if (strcmp(given->role, role) != 0) {
			kr_raise(KEYREF_R_BAD_PARAM, "key info is for role %s, not %s", given->role,
			    role);
			return 0;
		}
		return set_from_info(k, given, cl);
	}
	if (keyref_client_key_info(cl, role, &ki) != CC_KE_OK)
		return 0;
	ok = set_from_info(k, &ki, cl);
	keyref_key_info_free(&ki);
	return ok;
}

/* Public parameters (from another provider's key, e.g. a certificate's) into pub. */
static int
import_public(struct kr_key *k, int selection, const OSSL_PARAM params[])
{
	EVP_PKEY_CTX *ctx = NULL;
	const char *priv = k->type == CC_KEY_RSA ? OSSL_PKEY_PARAM_RSA_D : OSSL_PKEY_PARAM_PRIV_KEY;
	int sel, ok = 0;

	if (OSSL_PARAM_locate_const(params, priv) != NULL) {
		kr_raise(KEYREF_R_UNSUPPORTED, "keyref holds no private key material; "
		    "private keys stay in the keys process");
		return 0;
	}
	sel = (selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) != 0 ? EVP_PKEY_PUBLIC_KEY
	    : EVP_PKEY_KEY_PARAMETERS;
	ctx = EVP_PKEY_CTX_new_from_name(k->pctx->libctx, type_name(k->type), KR_DEFAULT_PROPQ);
	if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &k->pub, sel, (OSSL_PARAM *)params) != 1)
		goto out;
	k->has_pub = sel == EVP_PKEY_PUBLIC_KEY;
	ok = 1;
out:
	EVP_PKEY_CTX_free(ctx);
	return ok;
}

static int
kr_km_import(void *keydata, int selection, const OSSL_PARAM params[])
{
	struct kr_key *k = keydata;

	if (k == NULL || k->pub != NULL || params == NULL)
		return 0;
	if (OSSL_PARAM_locate_const(params, KEYREF_PARAM_ROLE) != NULL)
		return import_role(k, params);
	if ((selection & OSSL_KEYMGMT_SELECT_ALL) == 0)
		return 0;
	return import_public(k, selection, params);
}

static const OSSL_PARAM kr_rsa_import_list[] = {
	OSSL_PARAM_utf8_string(KEYREF_PARAM_ROLE, NULL, 0),
	OSSL_PARAM_octet_ptr(KEYREF_PARAM_CLIENT, NULL, 0),
	OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
	OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
	OSSL_PARAM_END
};

static const OSSL_PARAM kr_ec_import_list[] = {
	OSSL_PARAM_utf8_string(KEYREF_PARAM_ROLE, NULL, 0),
	OSSL_PARAM_octet_ptr(KEYREF_PARAM_CLIENT, NULL, 0),
	OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
	OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
	OSSL_PARAM_END
};

static const OSSL_PARAM *
kr_rsa_import_types(int selection)
{
	(void)selection;
	return kr_rsa_import_list;
}

static const OSSL_PARAM *
kr_ec_import_types(int selection)
{
	(void)selection;
	return kr_ec_import_list;
}

static int
kr_km_export(void *keydata, int selection, OSSL_CALLBACK *cb, void *cbarg)
{
	struct kr_key *k = keydata;
	OSSL_PARAM *params = NULL;
	int sel, ok;

	/*
	 * Never the private part: there is none here, and saying so makes EVP use keyref's
	 * own operations instead of another provider's with a public-only copy. No error is
	 * raised: EVP tries this quietly while it looks for an implementation.
	 */
	if (k == NULL || k->pub == NULL || (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0)
		return 0;
	if ((selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) != 0) {
		if (!k->has_pub)
			return 0;
		sel = EVP_PKEY_PUBLIC_KEY;
	} else if ((selection & OSSL_KEYMGMT_SELECT_ALL_PARAMETERS) != 0) {
		sel = EVP_PKEY_KEY_PARAMETERS;
	} else {
		return 0;
	}
	if (EVP_PKEY_todata(k->pub, sel, &params) != 1)
		return 0;
	ok = cb(params, cbarg);
	OSSL_PARAM_free(params);
	return ok;
}

static const OSSL_PARAM kr_rsa_export_list[] = {
	OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
	OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
	OSSL_PARAM_END
};

static const OSSL_PARAM kr_ec_export_list[] = {
	OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
	OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
	OSSL_PARAM_END
};

static const OSSL_PARAM *
kr_rsa_export_types(int selection)
{
	return (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0 ? NULL : kr_rsa_export_list;
}

static const OSSL_PARAM *
kr_ec_export_types(int selection)
{
	return (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0 ? NULL : kr_ec_export_list;
}

static int
kr_km_get_params(void *keydata, OSSL_PARAM params[])
{
	struct kr_key *k = keydata;
	OSSL_PARAM *p;

	if (k == NULL || k->pub == NULL)
		return 0;
	p = OSSL_PARAM_locate(params, KEYREF_PARAM_ROLE);
	if (p != NULL && !OSSL_PARAM_set_utf8_string(p, k->role != NULL ? k->role : ""))
		return 0;
	p = OSSL_PARAM_locate(params, KEYREF_PARAM_CERT);
	if (p != NULL && !OSSL_PARAM_set_octet_string(p, k->cert != NULL ? k->cert
	    : (const uint8_t *)"", k->cert_len))
		return 0;
	p = OSSL_PARAM_locate(params, KEYREF_PARAM_FLAGS);
	if (p != NULL && !OSSL_PARAM_set_uint32(p, k->flags))
		return 0;
	p = OSSL_PARAM_locate(params, KEYREF_PARAM_MECHS);
	if (p != NULL && !OSSL_PARAM_set_uint32(p, k->mechs))
		return 0;
	/* bits, security-bits, max-size, default-digest, n/e, group, public point. */
	return EVP_PKEY_get_params(k->pub, params);
}

static const OSSL_PARAM *
kr_rsa_gettable_params(void *provctx)
{
	static const OSSL_PARAM p[] = {
		OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
		OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
		OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
		OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
		OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
		OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
		OSSL_PARAM_utf8_string(KEYREF_PARAM_ROLE, NULL, 0),
		OSSL_PARAM_octet_string(KEYREF_PARAM_CERT, NULL, 0),
		OSSL_PARAM_uint32(KEYREF_PARAM_FLAGS, NULL),
		OSSL_PARAM_uint32(KEYREF_PARAM_MECHS, NULL),
		OSSL_PARAM_END
	};

	(void)provctx;
	return p;
}

static const OSSL_PARAM *
kr_ec_gettable_params(void *provctx)
{
	static const OSSL_PARAM p[] = {
		OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
		OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
		OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
		OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
		OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
		OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, NULL, 0),
		OSSL_PARAM_utf8_string(KEYREF_PARAM_ROLE, NULL, 0),
		OSSL_PARAM_octet_string(KEYREF_PARAM_CERT, NULL, 0),
		OSSL_PARAM_uint32(KEYREF_PARAM_FLAGS, NULL),
		OSSL_PARAM_uint32(KEYREF_PARAM_MECHS, NULL),
		OSSL_PARAM_END
	};

	(void)provctx;
	return p;
}

static const char *
kr_rsa_query_operation_name(int operation_id)
{
	switch (operation_id) {
	case OSSL_OP_SIGNATURE:
	case OSSL_OP_ASYM_CIPHER:
		return "RSA";
	}
	return NULL;
}

static const char *
kr_ec_query_operation_name(int operation_id)
{
	return operation_id == OSSL_OP_SIGNATURE ? "ECDSA" : NULL;
}

#define KR_KEYMGMT_COMMON \
	{ OSSL_FUNC_KEYMGMT_FREE, (void (*)(void))kr_km_free }, \
	{ OSSL_FUNC_KEYMGMT_DUP, (void (*)(void))kr_km_dup }, \
	{ OSSL_FUNC_KEYMGMT_HAS, (void (*)(void))kr_km_has }, \
	{ OSSL_FUNC_KEYMGMT_MATCH, (void (*)(void))kr_km_match }, \
	{ OSSL_FUNC_KEYMGMT_VALIDATE, (void (*)(void))kr_km_validate }, \
	{ OSSL_FUNC_KEYMGMT_IMPORT, (void (*)(void))kr_km_import }, \
	{ OSSL_FUNC_KEYMGMT_EXPORT, (void (*)(void))kr_km_export }, \
	{ OSSL_FUNC_KEYMGMT_GET_PARAMS, (void (*)(void))kr_km_get_params }

const OSSL_DISPATCH kr_rsa_keymgmt_functions[] = {
	{ OSSL_FUNC_KEYMGMT_NEW, (void (*)(void))kr_rsa_new },
	KR_KEYMGMT_COMMON,
	{ OSSL_FUNC_KEYMGMT_IMPORT_TYPES, (void (*)(void))kr_rsa_import_types },
	{ OSSL_FUNC_KEYMGMT_EXPORT_TYPES, (void (*)(void))kr_rsa_export_types },
	{ OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, (void (*)(void))kr_rsa_gettable_params },
	{ OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, (void (*)(void))kr_rsa_query_operation_name },
	{ 0, NULL }
};

const OSSL_DISPATCH kr_ec_keymgmt_functions[] = {
	{ OSSL_FUNC_KEYMGMT_NEW, (void (*)(void))kr_ec_new },
	KR_KEYMGMT_COMMON,
	{ OSSL_FUNC_KEYMGMT_IMPORT_TYPES, (void (*)(void))kr_ec_import_types },
	{ OSSL_FUNC_KEYMGMT_EXPORT_TYPES, (void (*)(void))kr_ec_export_types },
	{ OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, (void (*)(void))kr_ec_gettable_params },
	{ OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, (void (*)(void))kr_ec_query_operation_name },
	{ 0, NULL }
};
