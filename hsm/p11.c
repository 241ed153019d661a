/* PKCS#11 module access: see p11.h. */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>

#include "p11.h"

static void
set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

CK_RV
p11_mod_load(struct p11_mod *m, const char *path, char *err, size_t errlen)
{
	CK_C_GetFunctionList getfl;
	CK_RV rv;

	memset(m, 0, sizeof(*m));
	/* RTLD_LOCAL keeps the module's symbols out of our namespace; RTLD_NOW reports a
	 * broken module here, not in the middle of a request. */
	m->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (m->dl == NULL) {
		set_err(err, errlen, "cannot load PKCS#11 module %s: %s", path, dlerror());
		return CKR_LIBRARY_LOAD_FAILED;
	}
	*(void **)&getfl = dlsym(m->dl, "C_GetFunctionList");
	if (getfl == NULL) {
		set_err(err, errlen, "%s has no C_GetFunctionList: not a PKCS#11 module", path);
		dlclose(m->dl);
		m->dl = NULL;
		return CKR_LIBRARY_LOAD_FAILED;
	}
	rv = getfl(&m->f);
	if (rv != CKR_OK || m->f == NULL) {
		set_err(err, errlen, "C_GetFunctionList of %s failed: %s", path, p11_rv_str(rv));
		dlclose(m->dl);
		m->dl = NULL;
		m->f = NULL;
		return rv != CKR_OK ? rv : CKR_LIBRARY_LOAD_FAILED;
	}
	return CKR_OK;
}

CK_RV
p11_mod_init(struct p11_mod *m)
{
	CK_C_INITIALIZE_ARGS args;
	CK_RV rv;

	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	rv = m->f->C_Initialize(&args);
	if (rv == CKR_OK)
		m->initialized = 1;
	return rv;
}

void
p11_mod_fini(struct p11_mod *m)
{
	if (m->f != NULL && m->initialized)
		(void)m->f->C_Finalize(NULL);
	m->initialized = 0;
}

void
p11_mod_unload(struct p11_mod *m)
{
	p11_mod_fini(m);
	if (m->dl != NULL)
		dlclose(m->dl);
	memset(m, 0, sizeof(*m));
}

#define RV(x) { x, #x }
static const struct {
	CK_RV rv;
	const char *name;
} rv_names[] = {
	RV(CKR_OK), RV(CKR_CANCEL), RV(CKR_HOST_MEMORY), RV(CKR_SLOT_ID_INVALID),
	RV(CKR_GENERAL_ERROR), RV(CKR_FUNCTION_FAILED), RV(CKR_ARGUMENTS_BAD),
	RV(CKR_CANT_LOCK), RV(CKR_ATTRIBUTE_SENSITIVE), RV(CKR_ATTRIBUTE_TYPE_INVALID),
	RV(CKR_ATTRIBUTE_VALUE_INVALID), RV(CKR_DATA_INVALID), RV(CKR_DATA_LEN_RANGE),
	RV(CKR_DEVICE_ERROR), RV(CKR_DEVICE_MEMORY), RV(CKR_DEVICE_REMOVED),
	RV(CKR_ENCRYPTED_DATA_INVALID), RV(CKR_ENCRYPTED_DATA_LEN_RANGE),
	RV(CKR_FUNCTION_CANCELED), RV(CKR_FUNCTION_NOT_SUPPORTED), RV(CKR_KEY_HANDLE_INVALID),
	RV(CKR_KEY_SIZE_RANGE), RV(CKR_KEY_TYPE_INCONSISTENT),
	RV(CKR_KEY_FUNCTION_NOT_PERMITTED), RV(CKR_MECHANISM_INVALID),
	RV(CKR_MECHANISM_PARAM_INVALID), RV(CKR_OBJECT_HANDLE_INVALID),
	RV(CKR_OPERATION_ACTIVE), RV(CKR_OPERATION_NOT_INITIALIZED), RV(CKR_PIN_INCORRECT),
	RV(CKR_PIN_INVALID), RV(CKR_PIN_LEN_RANGE), RV(CKR_PIN_EXPIRED), RV(CKR_PIN_LOCKED),
	RV(CKR_SESSION_CLOSED), RV(CKR_SESSION_COUNT), RV(CKR_SESSION_HANDLE_INVALID),
	RV(CKR_SESSION_READ_ONLY), RV(CKR_SESSION_EXISTS), RV(CKR_SIGNATURE_INVALID),
	RV(CKR_SIGNATURE_LEN_RANGE), RV(CKR_TEMPLATE_INCOMPLETE),
	RV(CKR_TEMPLATE_INCONSISTENT), RV(CKR_TOKEN_NOT_PRESENT), RV(CKR_TOKEN_NOT_RECOGNIZED),
	RV(CKR_TOKEN_WRITE_PROTECTED), RV(CKR_USER_ALREADY_LOGGED_IN),
	RV(CKR_USER_NOT_LOGGED_IN), RV(CKR_USER_PIN_NOT_INITIALIZED), RV(CKR_USER_TYPE_INVALID),
	RV(CKR_USER_ANOTHER_ALREADY_LOGGED_IN), RV(CKR_RANDOM_NO_RNG),
	RV(CKR_DOMAIN_PARAMS_INVALID), RV(CKR_CURVE_NOT_SUPPORTED), RV(CKR_BUFFER_TOO_SMALL),
	RV(CKR_CRYPTOKI_NOT_INITIALIZED), RV(CKR_CRYPTOKI_ALREADY_INITIALIZED),
	RV(CKR_LIBRARY_LOAD_FAILED), RV(CKR_PIN_TOO_WEAK), RV(CKR_PUBLIC_KEY_INVALID),
	RV(CKR_FUNCTION_REJECTED),
};

static const struct {
	CK_MECHANISM_TYPE mech;
	const char *name;
} mech_names[] = {
	RV(CKM_RSA_PKCS_KEY_PAIR_GEN), RV(CKM_RSA_PKCS), RV(CKM_RSA_X_509),
	RV(CKM_RSA_PKCS_OAEP), RV(CKM_RSA_PKCS_PSS), RV(CKM_SHA1_RSA_PKCS),
	RV(CKM_SHA256_RSA_PKCS), RV(CKM_SHA384_RSA_PKCS), RV(CKM_SHA512_RSA_PKCS),
	RV(CKM_SHA256_RSA_PKCS_PSS), RV(CKM_SHA384_RSA_PKCS_PSS), RV(CKM_SHA512_RSA_PKCS_PSS),
	RV(CKM_EC_KEY_PAIR_GEN), RV(CKM_ECDSA), RV(CKM_ECDSA_SHA1), RV(CKM_ECDSA_SHA224),
	RV(CKM_ECDSA_SHA256), RV(CKM_ECDSA_SHA384), RV(CKM_ECDSA_SHA512),
};
#undef RV

const char *
p11_rv_str(CK_RV rv)
{
	static __thread char buf[32];

	for (size_t i = 0; i < sizeof(rv_names) / sizeof(rv_names[0]); i++)
		if (rv_names[i].rv == rv)
			return rv_names[i].name;
	snprintf(buf, sizeof(buf), "CKR_0x%lx", (unsigned long)rv);
	return buf;
}

const char *
p11_mech_str(CK_MECHANISM_TYPE mech)
{
	static __thread char buf[32];

	for (size_t i = 0; i < sizeof(mech_names) / sizeof(mech_names[0]); i++)
		if (mech_names[i].mech == mech)
			return mech_names[i].name;
	snprintf(buf, sizeof(buf), "CKM_0x%lx", (unsigned long)mech);
	return buf;
}

void
p11_field_str(const unsigned char *field, size_t n, char *out)
{
	size_t len = n;

	while (len > 0 && (field[len - 1] == ' ' || field[len - 1] == '\0'))
		len--;
	memcpy(out, field, len);
	out[len] = '\0';
}

static int
token_matches(const struct p11_uri *u, CK_SLOT_ID slot, const CK_TOKEN_INFO *ti)
{
	char v[33];

	if (u->has_slot_id && u->slot_id != slot)
		return 0;
	p11_field_str(ti->label, sizeof(ti->label), v);
	if (u->has_token && strcmp(u->token, v) != 0)
		return 0;
	p11_field_str(ti->manufacturerID, sizeof(ti->manufacturerID), v);
	if (u->has_manufacturer && strcmp(u->manufacturer, v) != 0)
		return 0;
	p11_field_str(ti->serialNumber, sizeof(ti->serialNumber), v);
	if (u->has_serial && strcmp(u->serial, v) != 0)
		return 0;
	p11_field_str(ti->model, sizeof(ti->model), v);
	if (u->has_model && strcmp(u->model, v) != 0)
		return 0;
	return 1;
}

CK_RV
p11_find_token(struct p11_mod *m, const struct p11_uri *u, CK_SLOT_ID *slot,
    CK_TOKEN_INFO *info, char *err, size_t errlen)
{
	CK_SLOT_ID *slots = NULL;
	CK_ULONG n = 0;
	CK_RV rv;
	size_t found = 0;

	rv = m->f->C_GetSlotList(CK_TRUE, NULL, &n);
	if (rv != CKR_OK) {
		set_err(err, errlen, "C_GetSlotList: %s", p11_rv_str(rv));
		return rv;
	}
	if (n == 0) {
		set_err(err, errlen, "the PKCS#11 module has no token present");
		return CKR_TOKEN_NOT_PRESENT;
	}
	slots = calloc(n, sizeof(*slots));
	if (slots == NULL)
		return CKR_HOST_MEMORY;
	rv = m->f->C_GetSlotList(CK_TRUE, slots, &n);
	if (rv != CKR_OK) {
		set_err(err, errlen, "C_GetSlotList: %s", p11_rv_str(rv));
		goto out;
	}
	for (CK_ULONG i = 0; i < n; i++) {
		CK_TOKEN_INFO ti;

		if (m->f->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
			continue;
		if (!(ti.flags & CKF_TOKEN_INITIALIZED))
			continue;
		if (!token_matches(u, slots[i], &ti))
			continue;
		if (found++ == 0) {
			*slot = slots[i];
			if (info != NULL)
				*info = ti;
		}
	}
	if (found == 0) {
		set_err(err, errlen, "no token matches%s%s", u->has_token ? " token=" : "",
		    u->has_token ? u->token : "");
		rv = CKR_TOKEN_NOT_PRESENT;
	} else if (found > 1) {
		set_err(err, errlen, "%zu tokens match the URI; add serial= to choose one", found);
		rv = CKR_FUNCTION_FAILED;
	} else {
		rv = CKR_OK;
	}
out:
	free(slots);
	return rv;
}

CK_RV
p11_find_objects(struct p11_mod *m, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls,
    const char *label, const uint8_t *id, size_t id_len, CK_OBJECT_HANDLE *out, size_t max,
    size_t *n)
{
	CK_ATTRIBUTE tmpl[3];
	CK_ULONG nt = 0, got;
	CK_OBJECT_HANDLE buf[8];
	CK_RV rv, rv2;

	*n = 0;
	tmpl[nt].type = CKA_CLASS;
	tmpl[nt].pValue = &cls;
	tmpl[nt++].ulValueLen = sizeof(cls);
	if (label != NULL) {
		tmpl[nt].type = CKA_LABEL;
		tmpl[nt].pValue = (void *)label;
		tmpl[nt++].ulValueLen = strlen(label);
	}
	if (id != NULL && id_len > 0) {
		tmpl[nt].type = CKA_ID;
		tmpl[nt].pValue = (void *)id;
		tmpl[nt++].ulValueLen = id_len;
	}
	rv = m->f->C_FindObjectsInit(s, tmpl, nt);
	if (rv != CKR_OK)
		return rv;
	for (;;) {
		rv = m->f->C_FindObjects(s, buf, sizeof(buf) / sizeof(buf[0]), &got);
		if (rv != CKR_OK || got == 0)
			break;
		for (CK_ULONG i = 0; i < got; i++) {
			if (*n < max)
				out[*n] = buf[i];
			(*n)++;
		}
	}
	rv2 = m->f->C_FindObjectsFinal(s);
	return rv != CKR_OK ? rv : rv2;
}

CK_RV
p11_get_attr(struct p11_mod *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
    CK_ATTRIBUTE_TYPE type, uint8_t **val, size_t *len)
{
	CK_ATTRIBUTE a = { type, NULL, 0 };
	CK_RV rv;

	*val = NULL;
	*len = 0;
	rv = m->f->C_GetAttributeValue(s, o, &a, 1);
	if (rv != CKR_OK)
		return rv;
	if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen > 65536)
		return CKR_ATTRIBUTE_SENSITIVE;
	a.pValue = malloc(a.ulValueLen ? a.ulValueLen : 1);
	if (a.pValue == NULL)
		return CKR_HOST_MEMORY;
	rv = m->f->C_GetAttributeValue(s, o, &a, 1);
	if (rv != CKR_OK) {
		free(a.pValue);
		return rv;
	}
	*val = a.pValue;
	*len = a.ulValueLen;
	return CKR_OK;
}

static CK_RV
rsa_pubkey(struct p11_mod *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, EVP_PKEY **out,
    char *err, size_t errlen)
{
	uint8_t *nb = NULL, *eb = NULL;
	size_t nl, el;
	BIGNUM *n = NULL, *e = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	CK_RV rv;

	rv = p11_get_attr(m, s, o, CKA_MODULUS, &nb, &nl);
	if (rv == CKR_OK)
		rv = p11_get_attr(m, s, o, CKA_PUBLIC_EXPONENT, &eb, &el);
	if (rv != CKR_OK) {
		set_err(err, errlen, "cannot read the RSA public key: %s", p11_rv_str(rv));
		goto out;
	}
	rv = CKR_FUNCTION_FAILED;
	n = BN_bin2bn(nb, (int)nl, NULL);
	e = BN_bin2bn(eb, (int)el, NULL);
	bld = OSSL_PARAM_BLD_new();
	if (n == NULL || e == NULL || bld == NULL ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL)
		goto fail;
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		goto fail;
	rv = CKR_OK;
	goto out;
fail:
	set_err(err, errlen, "the token's RSA public key is not usable by OpenSSL");
out:
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	free(nb);
	free(eb);
	return rv;
}

static CK_RV
ec_pubkey(struct p11_mod *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, EVP_PKEY **out,
    char *err, size_t errlen)
{
	uint8_t *pb = NULL, *qb = NULL;
	size_t pl, ql;
	const unsigned char *p;
	ASN1_OBJECT *oid = NULL;
	ASN1_OCTET_STRING *os = NULL;
	const uint8_t *point;
	size_t point_len;
	const char *group;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	CK_RV rv;

	rv = p11_get_attr(m, s, o, CKA_EC_PARAMS, &pb, &pl);
	if (rv == CKR_OK)
		rv = p11_get_attr(m, s, o, CKA_EC_POINT, &qb, &ql);
	if (rv != CKR_OK) {
		set_err(err, errlen, "cannot read the EC public key: %s", p11_rv_str(rv));
		goto out;
	}
	rv = CKR_FUNCTION_FAILED;
	p = pb;
	oid = d2i_ASN1_OBJECT(NULL, &p, (long)pl);
	if (oid == NULL || p != pb + pl) {
		set_err(err, errlen, "CKA_EC_PARAMS is not a named curve");
		goto out;
	}
	group = OBJ_nid2sn(OBJ_obj2nid(oid));
	if (group == NULL || OBJ_obj2nid(oid) == NID_undef) {
		set_err(err, errlen, "the key's curve is unknown to OpenSSL");
		goto out;
	}
	/* PKCS#11 says CKA_EC_POINT is a DER OCTET STRING; some tokens give the raw point. */
	p = qb;
	os = d2i_ASN1_OCTET_STRING(NULL, &p, (long)ql);
	if (os != NULL && p == qb + ql) {
		point = ASN1_STRING_get0_data(os);
		point_len = (size_t)ASN1_STRING_length(os);
	} else {
		point = qb;
		point_len = ql;
	}
	bld = OSSL_PARAM_BLD_new();
	if (bld == NULL ||
	    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, point_len) ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL)
		goto fail;
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		goto fail;
	rv = CKR_OK;
	goto out;
fail:
	set_err(err, errlen, "the token's EC public key is not usable by OpenSSL");
out:
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	ASN1_OCTET_STRING_free(os);
	ASN1_OBJECT_free(oid);
	free(pb);
	free(qb);
	return rv;
}

CK_RV
p11_read_pubkey(struct p11_mod *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, EVP_PKEY **out,
    char *err, size_t errlen)
{
	CK_KEY_TYPE kt;
	CK_ATTRIBUTE a = { CKA_KEY_TYPE, &kt, sizeof(kt) };
	CK_RV rv;

	*out = NULL;
	rv = m->f->C_GetAttributeValue(s, o, &a, 1);
	if (rv != CKR_OK) {
		set_err(err, errlen, "cannot read the key type: %s", p11_rv_str(rv));
		return rv;
	}
	if (kt == CKK_RSA)
		return rsa_pubkey(m, s, o, out, err, errlen);
	if (kt == CKK_EC)
		return ec_pubkey(m, s, o, out, err, errlen);
	set_err(err, errlen, "unsupported key type 0x%lx (only RSA and EC)", (unsigned long)kt);
	return CKR_KEY_TYPE_INCONSISTENT;
}

CK_RV
p11_login(struct p11_mod *m, CK_SESSION_HANDLE s, const uint8_t *pin, size_t pin_len)
{
	CK_RV rv = m->f->C_Login(s, CKU_USER, (CK_UTF8CHAR *)pin, pin_len);

	return rv == CKR_USER_ALREADY_LOGGED_IN ? CKR_OK : rv;
}

CK_RV
p11_ec_params(int nid, uint8_t **der, size_t *len)
{
	ASN1_OBJECT *o = OBJ_nid2obj(nid);
	unsigned char *buf = NULL;
	int n;

	*der = NULL;
	*len = 0;
	if (o == NULL)
		return CKR_CURVE_NOT_SUPPORTED;
	n = i2d_ASN1_OBJECT(o, &buf);
	if (n <= 0)
		return CKR_FUNCTION_FAILED;
	*der = malloc((size_t)n);
	if (*der == NULL) {
		OPENSSL_free(buf);
		return CKR_HOST_MEMORY;
	}
	memcpy(*der, buf, (size_t)n);
	*len = (size_t)n;
	OPENSSL_free(buf);
	return CKR_OK;
}
