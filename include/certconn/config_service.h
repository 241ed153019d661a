/*
 * "net.service": the client of the upstream service, certconn-hub or Microsoft Intune
 * (docs/protocol.md). Checked by src/config/config_service.c; documented in certconnd.json(5)
 * and docs/hub.md.
 *
 *   "service": {
 *     "mode": "hub" | "intune",
 *     "url": "https://hub.example:8443",           hub: the hub's base URL
 *     "ca_file": "/etc/certconn/hub-ca.pem",       trust anchors for the service (default:
 *                                                  the system's)
 *     "client_cert": "/var/lib/certconn/net/service/client.pem",
 *                                                  hub: the client certificate that
 *                                                  `certconnctl register` stores (default
 *                                                  <net.state_dir>/service/client.pem);
 *                                                  keep it under net.state_dir: net's
 *                                                  sandbox reads and writes only there
 *     "client_key_role": "client",                 hub: the key role of that certificate
 *     "features": ["pkcs", "revoke"],              what this connector serves
 *     "health_interval_s": 60, "poll_interval_s": 30, "timeout_s": 30,
 *     "lease_s": 300,                              hub: how long a download leases work
 *     "renew_before_days": 30,
 *     "retry": { "base_ms": 1000, "max_ms": 300000, "max_attempts": 8 },
 *     "proxy": { "url": "http://proxy:3128", "username": "u", "password_file": "/…",
 *                "no_proxy": "localhost,10.0.0.0/8" },
 *     "intune": { "tenant": "contoso.onmicrosoft.com", "client_id": "…",
 *                 "client_secret_file": "/etc/certconn/intune-secret",
 *                 "login_url": "https://login.microsoftonline.com",
 *                 "graph_url": "https://graph.microsoft.com",
 *                 "intune_resource": "https://api.manage.microsoft.com/",
 *                 "scep_api_version": "2018-02-20", "revocation_api_version": "5019-05-05" }
 *   }
 */
#ifndef CERTCONN_CONFIG_SERVICE_H
#define CERTCONN_CONFIG_SERVICE_H

#include <stdbool.h>
#include <stdint.h>

enum cc_service_mode { CC_SERVICE_HUB = 1, CC_SERVICE_INTUNE = 2 };

/* Feature bits (the protocol's feature names). */
#define CC_FEATURE_PKCS 0x01u
#define CC_FEATURE_PKCS_RECRYPT 0x02u
#define CC_FEATURE_PFX_IMPORT 0x04u
#define CC_FEATURE_REVOKE 0x08u
#define CC_FEATURE_SCEP 0x10u

struct cc_config_service {
	enum cc_service_mode mode;
	char *url;                   /* hub: https base URL without a trailing slash */
	char *ca_file;               /* NULL: the system's trust store */
	char *client_cert;           /* hub; NULL: <net.state_dir>/service/client.pem */
	char *client_key_role;       /* default "client" */
	uint32_t features;           /* CC_FEATURE_* */
	uint32_t health_interval_s;  /* 1..86400, default 60 */
	uint32_t poll_interval_s;    /* 1..3600, default 30 */
	uint32_t timeout_s;          /* per HTTP call, 1..600, default 30 */
	uint32_t lease_s;            /* hub: leaseSeconds of a download, 30..3600, default 300 */
	uint32_t renew_before_days;  /* 1..3650, default 30 */
	uint32_t retry_base_ms;      /* 10..60000, default 1000 */
	uint32_t retry_max_ms;       /* base..3600000, default 300000 */
	uint32_t retry_max_attempts; /* 1..100, default 8 */
	/* proxy (all NULL: none; the environment's proxy variables are not used) */
	char *proxy_url;
	char *proxy_username;
	char *proxy_password_file;
	char *no_proxy;
	/* intune */
	char *tenant;
	char *client_id;
	char *client_secret_file;
	char *login_url;             /* default https://login.microsoftonline.com */
	char *graph_url;             /* default https://graph.microsoft.com */
	char *intune_resource;       /* default https://api.manage.microsoft.com/ */
	char *scep_api_version;      /* default 2018-02-20 */
	char *revocation_api_version; /* default 5019-05-05 */
};

/* "pkcs" -> CC_FEATURE_PKCS ...; 0 when unknown. */
uint32_t cc_service_feature_bit(const char *name);
const char *cc_service_feature_name(uint32_t bit);

#endif
