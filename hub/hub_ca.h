/* The hub CA (hub_ca.c): its key in a PKCS#11 token, signing in-process through hsm.h. */
#ifndef CERTCONN_HUB_CA_H
#define CERTCONN_HUB_CA_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "hub.h"

/* The URI subjectAltName prefix that binds a client certificate to a connector:
 * urn:certconn:connector:<tenantId>:<connectorId>. */
#define HUB_CONNECTOR_URN "urn:certconn:connector:"

struct hub_ca;

/* Opens the token (PIN from pin_file), loads the CA certificate and checks that it is the
 * token key's. NULL on failure (logged). */
struct hub_ca *hub_ca_open(const char *module, const char *module_env, const char *key_uri,
    const char *pin_file, const char *cert_path);
void hub_ca_close(struct hub_ca *ca);
X509 *hub_ca_cert(struct hub_ca *ca);   /* borrowed */

/* A connector's client certificate (subject CN=id, OU=tenant, O=certconn connector; SAN URI
 * urn:certconn:connector:tenant:id; clientAuth), valid from now - 5 min for days. */
X509 *hub_ca_issue_client(struct hub_ca *ca, EVP_PKEY *pub, const char *tenant, const char *id,
    int64_t now, unsigned days);
/* A TLS server certificate for the hub: san is an OpenSSL SAN value ("DNS:x,IP:127.0.0.1"). */
X509 *hub_ca_issue_server(struct hub_ca *ca, EVP_PKEY *pub, const char *cn, const char *san,
    int64_t now, unsigned days);

/* Upper-case hex of the serial number. 0/-1. */
int hub_serial_hex(const X509 *x, char *out, size_t len);
/* The connector a client certificate names (its URN SAN) and its serial: 0 with p->present,
 * -1 when it names none. The caller has verified the chain. */
int hub_cert_identity(X509 *x, struct hub_peer *p);

/* Decodes a DER CSR (exactly len bytes) and verifies its self-signature: 0 with *out,
 * -1 when it does not decode, -2 when the signature does not verify (*why says). */
int hub_csr_parse(const uint8_t *der, size_t len, X509_REQ **out, const char **why);
/* Whether a key may be a connector's client key: RSA >= 2048, EC P-256/384/521. 0/-1. */
int hub_key_ok_for_client(EVP_PKEY *k, const char **why);

/* A PEM certificate file. NULL on failure (logged). */
X509 *hub_pem_cert(const char *path);

#endif
