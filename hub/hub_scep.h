/* Names for SCEP checks, shared by the validation and the admin API (hub_scep.c). */
#ifndef CERTCONN_HUB_SCEP_H
#define CERTCONN_HUB_SCEP_H

#include <stddef.h>

#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* The RFC 2253 text of a name, the form challenges keep their subject in. 0/-1. */
int hub_subject_canon(const X509_NAME *n, char *out, size_t len);
/* "CN=dev1,O=Contoso" (RDNs in that order) into a name; NULL if malformed. */
X509_NAME *hub_subject_parse(const char *s);
/* "DNS:x", "email:x", "URI:x", "IP:a.b.c.d" of a general name; -1 for other kinds. */
int hub_san_canon(const GENERAL_NAME *g, char *out, size_t len);

#endif
