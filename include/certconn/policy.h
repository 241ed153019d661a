/*
 * Key-role policy: which mechanisms each key role may use, and the names of mechanisms, key
 * usages and extended key usages as they are written in certconn's JSON files.
 *
 * The policy file (policy/keyroles.json, installed as ${CC_DATADIR}/keyroles.json) is
 *
 *   { "version": 1,
 *     "roles": { "<role>": { "description": "...", "mechanisms": ["sign-rsa-pkcs1", ...],
 *                            "fallback": false, "tbs_only": false }, ... } }
 *
 * Role names are 1..31 characters of [a-z0-9-], starting with a letter. A role with
 * "tbs_only" must have "sign-tbs" and no digest-signing mechanism, and "sign-tbs" needs
 * "tbs_only": a role that signs checked certificates never signs bare digests.
 *
 * Error convention: 0/-1; on -1 err holds "file:line:col: key.path: problem" (or "file:
 * problem" when the file cannot be read). err must hold errlen bytes.
 */
#ifndef CERTCONN_POLICY_H
#define CERTCONN_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "certconn/proto.h"

#define CC_POLICY_MAX_ROLES 16
#define CC_ROLE_NAME_MAX 32          /* including the NUL */
#define CC_POLICY_PATH_MAX 4096

struct cc_policy_role {
	char name[CC_ROLE_NAME_MAX];
	uint32_t mechs;              /* CC_MECH_* */
	uint32_t flags;              /* CC_ROLE_FALLBACK, CC_ROLE_TBS_ONLY */
};

/* Plain data: no heap, nothing to free, safe to copy. */
struct cc_policy {
	char path[CC_POLICY_PATH_MAX];  /* where it was loaded from (the name for _buf) */
	size_t nroles;
	struct cc_policy_role roles[CC_POLICY_MAX_ROLES];
};

int cc_policy_load(const char *path, struct cc_policy *p, char *err, size_t errlen);
/* Same from text (len bytes, text[len] must be NUL); name is used in messages. */
int cc_policy_load_buf(const char *text, size_t len, const char *name, struct cc_policy *p,
    char *err, size_t errlen);
/*
 * The default policy file: ${CC_DATADIR}/keyroles.json, or ${CC_SOURCE_DIR}/policy/
 * keyroles.json when the former does not exist (an uninstalled build). 0/-1 (too long).
 */
int cc_policy_default_path(char *buf, size_t len);
/* The role named name, or NULL. */
const struct cc_policy_role *cc_policy_find(const struct cc_policy *p, const char *name);

/*
 * Mechanism names: "sign-rsa-pkcs1", "sign-rsa-pss", "sign-ecdsa", "decrypt-rsa-pkcs1",
 * "decrypt-rsa-oaep", "sign-tbs". cc_mech_from_name gives the CC_MECH_* bit or 0 when unknown;
 * cc_mech_name the name of one bit or NULL. cc_mech_names writes the names of bits in the
 * order above, comma separated ("" for none, unknown bits as hex); -1 when it had to cut
 * (buf still terminated). CC_MECH_NAMES_MAX always suffices.
 */
#define CC_MECH_NAMES_MAX 128
uint32_t cc_mech_from_name(const char *name);
const char *cc_mech_name(uint32_t bit);
int cc_mech_names(uint32_t bits, char *buf, size_t len);

/*
 * keyUsage names <-> OpenSSL's KU_* bits (x509v3.h): digitalSignature, nonRepudiation,
 * keyEncipherment, dataEncipherment, keyAgreement, keyCertSign, cRLSign, encipherOnly,
 * decipherOnly. cc_ku_from_name gives 0 when unknown; cc_ku_names as cc_mech_names.
 */
#define CC_KU_NAMES_MAX 192
uint32_t cc_ku_from_name(const char *name);
int cc_ku_names(uint32_t bits, char *buf, size_t len);

/*
 * Extended key usages: serverAuth, clientAuth, emailProtection, codeSigning, timeStamping,
 * OCSPSigning, or a dotted OID (checked with OBJ_txt2obj(…, 1)). cc_eku_to_oid writes the
 * canonical dotted OID; -1 when name is neither (or oid is too small). cc_eku_name gives the
 * short name of a dotted OID from the list above, or NULL.
 */
#define CC_OID_MAX 128
int cc_eku_to_oid(const char *name, char *oid, size_t len);
const char *cc_eku_name(const char *oid);

#endif
