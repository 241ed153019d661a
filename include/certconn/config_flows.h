/*
 * "net.flows": the connector's queued flows (src/flows/): PKCS certificates, PKCS
 * re-encrypt, imported PFX and revocation. Checked by src/config/config_flows.c; documented
 * in docs/flows.md ("Configuration").
 *
 *   "flows": {
 *     "features": ["pkcs", "pkcs-recrypt", "pfx-import", "revoke"],  default: all four
 *     "workers": 2,                    threads doing the work, 1..32
 *     "max_attempts": 5,               tries of a failing step, 1..20
 *     "backoff": { "initial_ms": 500, "max_ms": 30000 },
 *     "pfx_role": "pfx",               the key role that kept copies, idempotency records
 *                                      and imported PFX passwords are encrypted to
 *     "state_dir": "/var/lib/certconn/net/flows",   default <net.state_dir>/flows; must be
 *                                      net.state_dir or below it (net's sandbox)
 *     "key_pool": { "rsa-2048": 8, "ec-p256": 2 },  keys made ahead, per spec, 0..256
 *     "default_profile": "default",    default: the first profile
 *     "pkcs_profiles": {
 *       "default": {
 *         "key": "rsa-2048",           rsa-2048 | rsa-3072 | rsa-4096 | ec-p256 | ec-p384
 *         "allow_key_override": false, a request's keySpec may choose another spec
 *         "p12": "aes256",             "aes256" (PBKDF2, AES-256-CBC) or "legacy" (3DES/SHA-1)
 *         "keep_copy": false,          also return a copy encrypted to pfx_role (recrypt)
 *         "issuance": { ... }          include/certconn/issuance.h: subject (copy or
 *                                      template), SAN rules, key rules, keyUsage, EKU,
 *                                      validity_days
 *       }
 *     }
 *   }
 */
#ifndef CERTCONN_CONFIG_FLOWS_H
#define CERTCONN_CONFIG_FLOWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "certconn/issuance.h"

#define CC_FLOWS_PROFILE_NAME_MAX 32  /* including the NUL: [a-z0-9_-]{1,31} */
#define CC_FLOWS_MAX_PROFILES 32
#define CC_FLOWS_ROLE_MAX 32
#define CC_FLOWS_POOL_MAX 256

/* Device key specs. */
enum cc_flows_keyspec {
	CC_FLOWS_RSA2048 = 0,
	CC_FLOWS_RSA3072,
	CC_FLOWS_RSA4096,
	CC_FLOWS_EC_P256,
	CC_FLOWS_EC_P384,
	CC_FLOWS_NKEYSPECS
};

/* "rsa-2048" ... ; -1 when unknown. */
int cc_flows_keyspec_from_name(const char *name);
const char *cc_flows_keyspec_name(int spec);

enum cc_flows_p12 {
	CC_FLOWS_P12_AES256 = 0,
	CC_FLOWS_P12_LEGACY = 1,
};

struct cc_flows_profile {
	char name[CC_FLOWS_PROFILE_NAME_MAX];
	int key;                     /* enum cc_flows_keyspec; default RSA2048 */
	bool allow_key_override;     /* default false */
	enum cc_flows_p12 p12;       /* default AES256 */
	bool keep_copy;              /* default false */
	struct cc_issuance issuance;
};

struct cc_config_flows {
	uint32_t features;           /* CC_FEATURE_* (config_service.h); default the four */
	uint32_t workers;            /* 1..32, default 2 */
	uint32_t max_attempts;       /* 1..20, default 5 */
	uint32_t backoff_initial_ms; /* 10..60000, default 500 */
	uint32_t backoff_max_ms;     /* initial..600000, default 30000 */
	char pfx_role[CC_FLOWS_ROLE_MAX]; /* default "pfx" */
	char *state_dir;             /* NULL: <net.state_dir>/flows */
	uint32_t pool_depth[CC_FLOWS_NKEYSPECS]; /* 0..256 each, default 0 */
	struct cc_flows_profile *profiles; /* nprofiles >= 0 */
	size_t nprofiles;
	size_t default_profile;      /* index into profiles (when nprofiles > 0) */
};

/* The profile called name, or NULL. */
const struct cc_flows_profile *cc_config_flows_profile(const struct cc_config_flows *f,
    const char *name);

#endif
