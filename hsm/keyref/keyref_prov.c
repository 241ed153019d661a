/* keyref provider: registration, algorithm tables, and loading keys by role. */
#include <pthread.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <openssl/x509.h>

#include "certconn/util.h"
#include "keyref_int.h"

#define KR_RSA_NAMES "RSA:rsaEncryption:1.2.840.113549.1.1.1"
#define KR_EC_NAMES "EC:id-ecPublicKey:1.2.840.10045.2.1"

static const OSSL_ALGORITHM kr_keymgmt[] = {
	{ KR_RSA_NAMES, KEYREF_PROPQ, kr_rsa_keymgmt_functions, "RSA key held by keys" },
	{ KR_EC_NAMES, KEYREF_PROPQ, kr_ec_keymgmt_functions, "EC key held by keys" },
	{ NULL, NULL, NULL, NULL }
};

static const OSSL_ALGORITHM kr_signature[] = {
	{ KR_RSA_NAMES, KEYREF_PROPQ, kr_rsa_signature_functions, "RSA signature in keys" },
	{ "ECDSA", KEYREF_PROPQ, kr_ecdsa_signature_functions, "ECDSA signature in keys" },
	{ NULL, NULL, NULL, NULL }
};

static const OSSL_ALGORITHM kr_asym_cipher[] = {
	{ KR_RSA_NAMES, KEYREF_PROPQ, kr_rsa_asym_cipher_functions, "RSA decryption in keys" },
	{ NULL, NULL, NULL, NULL }
};

static const OSSL_ALGORITHM *
kr_query(void *provctx, int operation_id, int *no_cache)
{
	(void)provctx;
	*no_cache = 0;
	switch (operation_id) {
	case OSSL_OP_KEYMGMT: return kr_keymgmt;
	case OSSL_OP_SIGNATURE: return kr_signature;
	case OSSL_OP_ASYM_CIPHER: return kr_asym_cipher;
	}
	return NULL;
}

static const OSSL_PARAM *
kr_gettable_params(void *provctx)
{
	static const OSSL_PARAM p[] = {
		OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_NAME, NULL, 0),
		OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_VERSION, NULL, 0),
		OSSL_PARAM_int(OSSL_PROV_PARAM_STATUS, NULL),
		OSSL_PARAM_END
	};

	(void)provctx;
	return p;
}

static int
kr_get_params(void *provctx, OSSL_PARAM params[])
{
	OSSL_PARAM *p;

	(void)provctx;
	p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_NAME);
	if (p != NULL && !OSSL_PARAM_set_utf8_ptr(p, "certconn keyref provider"))
		return 0;
	p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_VERSION);
	if (p != NULL && !OSSL_PARAM_set_utf8_ptr(p, CC_VERSION))
		return 0;
	p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_STATUS);
	if (p != NULL && !OSSL_PARAM_set_int(p, 1))
		return 0;
	return 1;
}

static void
kr_teardown(void *provctx)
{
	OPENSSL_free(provctx);
}

static const OSSL_DISPATCH kr_prov_functions[] = {
	{ OSSL_FUNC_PROVIDER_TEARDOWN, (void (*)(void))kr_teardown },
	{ OSSL_FUNC_PROVIDER_GETTABLE_PARAMS, (void (*)(void))kr_gettable_params },
	{ OSSL_FUNC_PROVIDER_GET_PARAMS, (void (*)(void))kr_get_params },
	{ OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))kr_query },
	{ 0, NULL }
};

/*
 * OSSL_PROVIDER_load calls the init function with no argument of ours; the client to
 * store in the provider context is handed over through this, under the lock, while
 * keyref_provider_load runs.
 */
static pthread_mutex_t kr_load_lock = PTHREAD_MUTEX_INITIALIZER;
static struct keyref_client *kr_loading_client;

/*
 * The providers keyref_provider_load loaded, per library context: OSSL_PROVIDER_load's
 * references must be given back with OSSL_PROVIDER_unload or they outlive the context.
 */
struct kr_loaded {
	OSSL_LIB_CTX *libctx;
	OSSL_PROVIDER *def;
	OSSL_PROVIDER *kr;
	struct kr_loaded *next;
};
static struct kr_loaded *kr_loaded_list;

static int
kr_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in, const OSSL_DISPATCH **out,
    void **provctx)
{
	OSSL_FUNC_core_get_libctx_fn *get_libctx = NULL;
	struct kr_provctx *pc;

	for (; in->function_id != 0; in++)
		if (in->function_id == OSSL_FUNC_CORE_GET_LIBCTX)
			get_libctx = OSSL_FUNC_core_get_libctx(in);
	if (get_libctx == NULL)
		return 0;
	pc = OPENSSL_zalloc(sizeof(*pc));
	if (pc == NULL)
		return 0;
	/* A built-in provider runs inside libcrypto's own context, as the default one does. */
	pc->libctx = (OSSL_LIB_CTX *)get_libctx(handle);
	pc->handle = handle;
	pc->cl = kr_loading_client;
	*provctx = pc;
	*out = kr_prov_functions;
	return 1;
}

int
keyref_provider_load(OSSL_LIB_CTX *libctx, struct keyref_client *cl)
{
	struct kr_loaded *l;
	int rc = -1;

	(void)keyref_err_lib();
	l = OPENSSL_zalloc(sizeof(*l));
	if (l == NULL)
		return -1;
	pthread_mutex_lock(&kr_load_lock);
	if (OSSL_PROVIDER_available(libctx, KEYREF_PROVIDER_NAME)) {
		kr_raise(KEYREF_R_BAD_PARAM, "keyref is already loaded in this library context");
		goto out;
	}
	l->def = OSSL_PROVIDER_load(libctx, "default");
	if (l->def == NULL)
		goto out;
	if (!OSSL_PROVIDER_add_builtin(libctx, KEYREF_PROVIDER_NAME, kr_init))
		goto out;
	kr_loading_client = cl;
	l->kr = OSSL_PROVIDER_load(libctx, KEYREF_PROVIDER_NAME);
	kr_loading_client = NULL;
	if (l->kr == NULL)
		goto out;
	l->libctx = libctx;
	l->next = kr_loaded_list;
	kr_loaded_list = l;
	l = NULL;
	rc = 0;
out:
	if (l != NULL && l->def != NULL)
		OSSL_PROVIDER_unload(l->def);
	OPENSSL_free(l);
	pthread_mutex_unlock(&kr_load_lock);
	return rc;
}

void
keyref_provider_unload(OSSL_LIB_CTX *libctx)
{
	struct kr_loaded **pp, *l;

	pthread_mutex_lock(&kr_load_lock);
	for (pp = &kr_loaded_list; (l = *pp) != NULL; pp = &l->next) {
		if (l->libctx == libctx) {
			*pp = l->next;
			OSSL_PROVIDER_unload(l->kr);
			OSSL_PROVIDER_unload(l->def);
			OPENSSL_free(l);
			break;
		}
	}
	pthread_mutex_unlock(&kr_load_lock);
}

EVP_PKEY *
keyref_load_key(OSSL_LIB_CTX *libctx, struct keyref_client *cl, const char *role, X509 **cert)
{
	struct keyref_key_info ki;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;
	OSSL_PARAM params[4];
	const unsigned char *p;
	const char *name;

	if (cert != NULL)
		*cert = NULL;
	if (role == NULL || cl == NULL) {
		kr_raise(KEYREF_R_BAD_PARAM, "keyref_load_key needs a role and a client");
		return NULL;
	}
	if (keyref_client_key_info(cl, role, &ki) != CC_KE_OK)
		return NULL;
	name = ki.key_type == CC_KEY_RSA ? "RSA" : "EC";
	/* The import takes the role's KEY_INFO as it is, so keys is asked only once. */
	params[0] = OSSL_PARAM_construct_utf8_string(KEYREF_PARAM_ROLE, (char *)role, 0);
	params[1] = OSSL_PARAM_construct_octet_ptr(KEYREF_PARAM_CLIENT, (void **)&cl, 0);
	params[2] = OSSL_PARAM_construct_octet_string(KR_PARAM_KEY_INFO, &ki, sizeof(ki));
	params[3] = OSSL_PARAM_construct_end();
	ctx = EVP_PKEY_CTX_new_from_name(libctx, name, KEYREF_PROPQ);
	if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_KEYPAIR, params) != 1) {
		kr_raise(CC_KE_INTERNAL, "cannot make a keyref %s key for role %s", name, role);
		pkey = NULL;
		goto out;
	}
	if (cert != NULL && ki.cert != NULL) {
		p = ki.cert;
		*cert = X509_new_ex(libctx, KR_DEFAULT_PROPQ);
		if (*cert == NULL || d2i_X509(cert, &p, (long)ki.cert_len) == NULL ||
		    p != ki.cert + ki.cert_len) {
			X509_free(*cert);
			*cert = NULL;
			kr_raise(CC_KE_INTERNAL, "keys sent an unreadable certificate for role %s",
			    role);
			EVP_PKEY_free(pkey);
			pkey = NULL;
		}
	}
out:
	EVP_PKEY_CTX_free(ctx);
	keyref_key_info_free(&ki);
	return pkey;
}
