/*
 * "net.ca": the CA backend, here the local CA whose key is the ca role in the token.
 * Checked by src/config/config_ca.c; documented in certconnd.json(5) and docs/scep.md.
 *
 *   "ca": {
 *     "name": "ca",                   CRL at /crl/<name>.crl, certificate at /ca/<name>.crt
 *     "base_url": "http://pki.example.com:8080",  CDP and AIA URLs; default http://<listen>
 *     "database": "/var/lib/certconn/net/ca.db",  default <net.state_dir>/ca.db
 *     "crl_days": 7,                  nextUpdate - thisUpdate (<= keys.roles.ca.max_crl_days)
 *     "chain": "/etc/certconn/chain.pem",  issuers above the CA, when it is not a root
 *     "next_ca": "/etc/certconn/next-ca.pem",  the next CA certificate (GetNextCACert)
 *     "ra_subject": "CN=certconn SCEP RA",
 *     "ra_validity_days": 365,
 *     "cdp": true, "aia": true
 *   }
 */
#ifndef CERTCONN_CONFIG_CA_H
#define CERTCONN_CONFIG_CA_H

#include <stdbool.h>
#include <stdint.h>

#define CC_CA_NAME_MAX 64            /* including the NUL: [a-z0-9-]{1,63} */

struct cc_config_ca {
	char name[CC_CA_NAME_MAX];   /* default "ca" */
	char *base_url;              /* http(s)://host[:port][/path], no trailing '/'; NULL:
	                              * http://<net.listen> */
	char *database;              /* absolute path; NULL: <net.state_dir>/ca.db */
	uint32_t crl_days;           /* 1..3650, default 7 */
	char *chain;                 /* PEM file or NULL */
	char *next_ca;               /* PEM file or NULL */
	char *ra_subject;            /* "CN=...,O=..."; default "CN=certconn SCEP RA" */
	uint32_t ra_validity_days;   /* 1..3650, default 365 */
	bool cdp;                    /* default true */
	bool aia;                    /* default true */
};

#endif
