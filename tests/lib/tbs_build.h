/*
 * To-be-signed certificates and CRLs built with OpenSSL, for the CA signing tests: what
 * net's keyref provider hands to keys (SIGN_TBS_REQ), good and bad on purpose. The TBS's
 * signature algorithm comes from signing it once with alg_key (the CA key itself in unit
 * tests, a throw-away key of the same type when the real key is in the token), then the TBS
 * is re-encoded. Error convention: 0/-1 (NULL).
 */
#ifndef CERTCONN_TBS_BUILD_H
#define CERTCONN_TBS_BUILD_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

struct tbs_spec {
	X509 *ca;                 /* issuer name and AKI from it */
	const char *issuer;       /* "CN=…" to use instead of the CA's subject (foreign issuer) */
	const char *subject;      /* default "CN=leaf" */
	long not_before_s;        /* offset from now, seconds (may be negative) */
	long days;                /* validity, from notBefore; default 30 */
	int ca_true;              /* basicConstraints critical CA:TRUE */
	const char *key_usage;    /* e.g. "critical,digitalSignature,keyEncipherment" */
	const char *eku;          /* e.g. "clientAuth" */
	int no_aki;               /* leave out authorityKeyIdentifier */
	int bad_aki;              /* an authorityKeyIdentifier of another key */
	const char *crit_ext_oid; /* a critical extension OpenSSL does not know */
	int v1;                   /* an X.509 v1 certificate (no extensions) */
	const char *md;           /* "SHA256" (default), "SHA1", … */
	int pss;                  /* RSASSA-PSS (salt = digest length) */
};

/* A TBSCertificate (*tbs malloc'd). */
int tbs_build_cert(const struct tbs_spec *s, EVP_PKEY *alg_key, uint8_t **tbs, size_t *len);

/* A TBSCertList issued by ca: thisUpdate now, nextUpdate after days (none when days < 0),
 * one revoked serial, AKI unless no_aki. */
int tbs_build_crl(X509 *ca, const char *issuer, long days, const char *md, int no_aki,
    EVP_PKEY *alg_key, uint8_t **tbs, size_t *len);

/* The whole certificate / CRL from a TBS and the signature keys returned. */
X509 *tbs_assemble_cert(const uint8_t *tbs, size_t len, const uint8_t *sig, size_t sig_len);
X509_CRL *tbs_assemble_crl(const uint8_t *tbs, size_t len, const uint8_t *sig,
    size_t sig_len);

/* An in-memory CA for unit tests: key (RSA-2048 or EC P-256), self-signed certificate with
 * SKI, valid days days. */
X509 *tbs_make_ca(EVP_PKEY **key, int ec, long days);

#endif
