/*
 * "net.scep": the SCEP endpoint (RFC 8894) and its profiles. Checked by
 * src/config/config_scep.c; documented in certconnd.json(5) and docs/scep.md.
 *
 *   "scep": {
 *     "default_profile": "devices",   what /scep and /cgi-bin/pkiclient.exe serve (default:
 *                                     the first profile)
 *     "max_body": 131072, "workers": 4, "replay_window_s": 86400, "clock_skew_s": 86400,
 *     "profiles": {
 *       "devices": {
 *         "ra_role": "ra",             or "ra_sign_role" + "ra_encrypt_role" (two RA keys)
 *         "challenge": { "mode": "none" | "static" | "dynamic" | "service" | "webhook",
 *                        "password_file": "...",     static
 *                        "ttl_s": 3600,              dynamic: default lifetime
 *                        "url": "https://...", "secret_file": "...", "timeout_ms": 5000
 *                                                    webhook },
 *         "des3": false, "manual_approval": false,
 *         "renewal": true, "renewal_window_days": 30,
 *         "include_root": true,
 *         "issuance": { ... }            include/certconn/issuance.h
 *       }
 *     }
 *   }
 */
#ifndef CERTCONN_CONFIG_SCEP_H
#define CERTCONN_CONFIG_SCEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "certconn/issuance.h"

#define CC_SCEP_PROFILE_NAME_MAX 32  /* including the NUL: [a-z0-9_-]{1,31} */
#define CC_SCEP_MAX_PROFILES 32
#define CC_SCEP_ROLE_MAX 32

enum cc_scep_challenge_mode {
	CC_SCEP_CHALLENGE_NONE = 0,
	CC_SCEP_CHALLENGE_STATIC,
	CC_SCEP_CHALLENGE_DYNAMIC,     /* one-time, from `certconnctl scep challenge` */
	CC_SCEP_CHALLENGE_SERVICE,     /* the upstream service validates (scep_verify.h) */
	CC_SCEP_CHALLENGE_WEBHOOK,     /* an HMAC-signed POST decides */
};

struct cc_scep_profile {
	char name[CC_SCEP_PROFILE_NAME_MAX];
	char ra_sign_role[CC_SCEP_ROLE_MAX];    /* default "ra" */
	char ra_encrypt_role[CC_SCEP_ROLE_MAX]; /* default: ra_sign_role */
	enum cc_scep_challenge_mode challenge;
	char *password_file;         /* static: the file holding the password (first line) */
	uint32_t challenge_ttl_s;    /* dynamic: default lifetime, 60..2592000, default 3600 */
	char *webhook_url;           /* webhook: http(s) URL */
	char *webhook_secret_file;   /* webhook: the HMAC-SHA256 key (first line) */
	uint32_t webhook_timeout_ms; /* 100..60000, default 5000 */
	bool des3;                   /* accept and offer 3DES content encryption; default false */
	bool manual_approval;        /* requests wait for `certconnctl scep approve` */
	bool renewal;                /* RenewalReq accepted; default true */
	uint32_t renewal_window_days; /* renewal allowed within this many days of notAfter;
	                              * 0 = any time while valid; default 0 */
	bool include_root;           /* GetCACert includes the root; default true */
	struct cc_issuance issuance;
};

struct cc_config_scep {
	struct cc_scep_profile *profiles; /* nprofiles >= 1 */
	size_t nprofiles;
	size_t default_profile;      /* index into profiles */
	uint32_t max_body;           /* bytes of a POSTed message, 1024..1048576, default 131072 */
	uint32_t workers;            /* threads that process requests, 1..64, default 4 */
	uint32_t replay_window_s;    /* senderNonces remembered, 60..2592000, default 86400 */
	uint32_t clock_skew_s;       /* signingTime tolerance, 60..604800, default 86400 */
};

/* The profile called name, or NULL. */
const struct cc_scep_profile *cc_config_scep_profile(const struct cc_config_scep *s,
    const char *name);

#endif
