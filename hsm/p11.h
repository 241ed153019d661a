/*
 * Thin PKCS#11 layer shared by the keys role and the in-process API (hsm.h): loading a
 * module with dlopen + C_GetFunctionList, finding tokens and objects by RFC 7512 URI,
 * reading public keys into OpenSSL. Nothing from libp11 or p11-kit is linked; only the
 * header-only type definitions of <p11-kit/pkcs11.h> are used.
 *
 * Error convention of this layer: functions return CK_RV (CKR_OK on success). Failures that
 * are not the module's (bad URI, no match, OpenSSL) map to CKR_FUNCTION_FAILED,
 * CKR_TOKEN_NOT_PRESENT or CKR_KEY_HANDLE_INVALID as documented per function, with a
 * reason written to the caller's err buffer when one is given.
 */
#ifndef CERTCONN_HSM_P11_H
#define CERTCONN_HSM_P11_H

#include <stddef.h>
#include <stdint.h>

#include <p11-kit/pkcs11.h>
#include <openssl/evp.h>

#include "p11_uri.h"

struct p11_mod {
	void *dl;
	CK_FUNCTION_LIST *f;
	int initialized;
};

/* dlopen(path) and C_GetFunctionList. The module is not initialised yet. */
CK_RV p11_mod_load(struct p11_mod *m, const char *path, char *err, size_t errlen);
/* C_Initialize with CKF_OS_LOCKING_OK (the caller's threads share the module). */
CK_RV p11_mod_init(struct p11_mod *m);
/* C_Finalize if initialised; the handle stays loaded so p11_mod_init may run again. */
void p11_mod_fini(struct p11_mod *m);
/* p11_mod_fini and dlclose. */
void p11_mod_unload(struct p11_mod *m);

/* "CKR_DEVICE_REMOVED"; "CKR_0x…" for unknown values. Static or thread-local buffer. */
const char *p11_rv_str(CK_RV rv);
/* "CKM_RSA_PKCS_OAEP"; "CKM_0x…" for unknown values. */
const char *p11_mech_str(CK_MECHANISM_TYPE mech);

/* Copies a blank-padded CK_TOKEN_INFO field into out (n+1 bytes), without the padding. */
void p11_field_str(const unsigned char *field, size_t n, char *out);

/*
 * Finds the one token (present, initialised) that matches the URI's token attributes.
 * CKR_TOKEN_NOT_PRESENT when none matches, CKR_FUNCTION_FAILED when several do.
 */
CK_RV p11_find_token(struct p11_mod *m, const struct p11_uri *u, CK_SLOT_ID *slot,
    CK_TOKEN_INFO *info, char *err, size_t errlen);

/*
 * Finds objects of class cls whose CKA_LABEL is label (if not NULL) and CKA_ID is id (if
 * id_len > 0). Up to max handles in out, the count in *n (may exceed max: then the match is
 * ambiguous).
 */
CK_RV p11_find_objects(struct p11_mod *m, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls,
    const char *label, const uint8_t *id, size_t id_len, CK_OBJECT_HANDLE *out, size_t max,
    size_t *n);

/* Reads one attribute into a malloc'd buffer (caller frees). */
CK_RV p11_get_attr(struct p11_mod *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
    CK_ATTRIBUTE_TYPE type, uint8_t **val, size_t *len);

/*
 * Builds an EVP_PKEY (public part only) from a public-key object, or from an RSA private
 * key's CKA_MODULUS and CKA_PUBLIC_EXPONENT. CKR_FUNCTION_FAILED if the attributes cannot be
 * read or make no key.
 */
CK_RV p11_read_pubkey(struct p11_mod *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
    EVP_PKEY **out, char *err, size_t errlen);

/* C_Login as CKU_USER; CKR_USER_ALREADY_LOGGED_IN counts as success. */
CK_RV p11_login(struct p11_mod *m, CK_SESSION_HANDLE s, const uint8_t *pin, size_t pin_len);

/* The DER of a curve's OID for CKA_EC_PARAMS from an OpenSSL NID (malloc'd). */
CK_RV p11_ec_params(int nid, uint8_t **der, size_t *len);

#endif
