/*
 * Encodings the keys role builds around a token's raw operations, all with OpenSSL:
 * DigestInfo for CKM_RSA_PKCS, ECDSA r||s to DER, and the fallback paddings (PSS encoding
 * and OAEP decoding around CKM_RSA_X_509) for tokens without the native mechanism.
 * Error convention: 0/-1 (nothing is logged: callers decide how loud a failure is).
 */
#ifndef CERTCONN_KEYS_PAD_H
#define CERTCONN_KEYS_PAD_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

/* The OpenSSL digest for a cc_md, NULL for none/unknown (fetched once, not to be freed). */
const EVP_MD *keys_pad_md(uint8_t md);

/* DER DigestInfo { AlgorithmIdentifier(md, NULL), OCTET STRING digest }; *out malloc'd.
 * -1 when dg_len is not md's size. */
int keys_pad_digestinfo(uint8_t md, const uint8_t *dg, size_t dg_len, uint8_t **out,
    size_t *out_len);

/* PKCS#11 CKM_ECDSA output (r||s, each half the length) to DER ECDSA-Sig-Value. *der malloc'd. */
int keys_pad_ecdsa_der(const uint8_t *rs, size_t rs_len, uint8_t **der, size_t *der_len);

/*
 * EMSA-PKCS1-v1_5 block (00 01 FF.. 00 DigestInfo) of em_len bytes (the modulus length) for
 * CKM_RSA_X_509, the fallback when a token lacks CKM_RSA_PKCS signing.
 */
int keys_pad_pkcs1_encode(const uint8_t *digestinfo, size_t di_len, uint8_t *em,
    size_t em_len);

/*
 * EMSA-PSS encoding of a digest for an RSA key (fallback for CKM_RSA_PKCS_PSS): em receives
 * exactly the modulus length in bytes (em_len must equal it), ready for CKM_RSA_X_509.
 * saltlen in bytes. -1 on a parameter the key cannot take.
 */
int keys_pad_pss_encode(EVP_PKEY *pub, uint8_t md, uint8_t mgf1_md, size_t saltlen,
    const uint8_t *dg, size_t dg_len, uint8_t *em, size_t em_len);

/*
 * EME-OAEP decoding of the raw RSA output em (em_len = modulus bytes) into out (capacity
 * *out_len, set to the message length). -1 on a decoding error (which must be reported
 * without detail to avoid an oracle).
 */
int keys_pad_oaep_decode(EVP_PKEY *pub, uint8_t md, uint8_t mgf1_md, const uint8_t *label,
    size_t label_len, const uint8_t *em, size_t em_len, uint8_t *out, size_t *out_len);

/*
 * Whether in (in_len bytes, big-endian) is below the RSA key's modulus, as the input of a
 * raw private-key operation must be: 1 yes, 0 no (a ciphertext for another key, or
 * corrupted), -1 not an RSA key. Checked before CKM_RSA_X_509, because tokens answer such
 * an input with CKR_GENERAL_ERROR (SoftHSM2 does), which reads as a token failure.
 */
int keys_pad_rsa_below_modulus(const EVP_PKEY *pub, const uint8_t *in, size_t in_len);

#endif
