/*
 * Whole certificates and CRLs from a to-be-signed part, with OpenSSL's ASN.1 (no DER by
 * hand): OpenSSL parses a TBSCertificate / TBSCertList only inside an X509 / X509_CRL, so
 * the keys role wraps a TBS to parse it, and the bootstrap CA wraps its signed TBS.
 * Error convention: 0/-1.
 */
#ifndef CERTCONN_X509_TBS_H
#define CERTCONN_X509_TBS_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

/* 0 if buf is exactly one DER SEQUENCE (definite length, nothing after it). */
int x509_tbs_is_sequence(const uint8_t *buf, size_t len);

/*
 * DER of SEQUENCE { tbs, alg, BIT STRING sig } built with ASN1_SEQUENCE_ANY: tbs is copied
 * as it is (an ASN1_TYPE V_ASN1_SEQUENCE holds a whole encoding). sig may be empty (to parse
 * a TBS). *out is malloc'd.
 */
int x509_tbs_assemble(const uint8_t *tbs, size_t tbs_len, const X509_ALGOR *alg,
    const uint8_t *sig, size_t sig_len, uint8_t **out, size_t *out_len);

#endif
