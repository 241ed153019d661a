/*
 * The device's side of the queued flows, for the tests: a device that holds its own key
 * (RSA-2048 or EC P-256) builds the members of a request payload (devicePublicKey or
 * deviceCertificate, base64 DER) and opens what the connector delivered with plain OpenSSL:
 * CMS_decrypt with its private key, PKCS12_parse with the delivered password, the
 * certificate chain checked with X509_verify_cert against a trusted CA, the key checked
 * against the certificate. It also makes PFX fixtures with the `openssl pkcs12 -export`
 * command and encrypts PFX passwords with RSA-OAEP as the Intune import tooling does.
 *
 * Written independently of src/pkcs on purpose: the tests cross-check the implementation,
 * they must not reuse it.
 *
 * Error convention: 0/-1 (or NULL) with a line on stderr (and in the struct's error buffer
 * where there is one).
 */
#ifndef CERTCONN_TEST_DEVICE_H
#define CERTCONN_TEST_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

enum device_key_type { DEVICE_RSA2048, DEVICE_EC_P256 };

struct device {
	char id[64];
	enum device_key_type type;
	EVP_PKEY *key;       /* the device's own key pair; never leaves the device */
	X509 *cert;          /* a self-signed certificate for key (deviceCertificate) */
};

int device_new(struct device *d, const char *id, enum device_key_type type);
void device_free(struct device *d);

/* base64 (no line breaks) of the DER SubjectPublicKeyInfo / certificate. malloc'd. */
char *device_public_key_b64(const struct device *d);
char *device_certificate_b64(const struct device *d);
/*
 * The payload members that name the device, as JSON text without braces:
 * "deviceId":"<id>","devicePublicKey":"<b64>" (or "deviceCertificate" when use_cert).
 * malloc'd.
 */
char *device_payload_members(const struct device *d, bool use_cert);

/* What the device found in a delivery. */
struct device_delivery {
	X509 *cert;                /* the end-entity certificate of the PKCS#12 */
	EVP_PKEY *key;             /* its private key */
	STACK_OF(X509) *chain;     /* the other certificates of the PKCS#12 (may be empty) */
	char serial[130];          /* hex, upper case, no leading zeros dropped by BN */
	char thumbprint[41];       /* SHA-1 of the certificate's DER, hex upper case */
	char subject[256];         /* one-line RFC 2253 form */
	char content_cipher[64];   /* the CMS content encryption, e.g. "AES-256-CBC" */
	int recipient_type;        /* CMS_RECIPINFO_TRANS (RSA) or CMS_RECIPINFO_AGREE (EC) */
	char key_pbe[96];          /* the key bag's protection, e.g. "PBES2/AES-256-CBC" or
	                            * "PBE-SHA1-3DES" (OpenSSL short names) */
	bool chain_ok;             /* X509_verify_cert against the trusted CA succeeded */
	bool key_matches;          /* X509_check_private_key */
	char error[256];
};
void device_delivery_free(struct device_delivery *o);

/*
 * CMS_decrypt of a DER (or base64 of DER when b64) EnvelopedData / AuthEnvelopedData with
 * the device's key. *out (malloc'd) gets the content. The content cipher and recipient type
 * go to o (when not NULL). 0/-1.
 */
int device_decrypt(const struct device *d, const void *cms, size_t len, bool b64,
    uint8_t **out, size_t *outlen, struct device_delivery *o);

/*
 * Opens a PKCS#12 with password (NULL: none) and checks it against trusted (a CA; may be
 * NULL: chain_ok stays false). Fills o. 0 when it parsed and held a certificate and a key
 * (the chain and key checks are reported in o, not as an error); -1 otherwise.
 */
int device_open_pfx(const uint8_t *pfx, size_t len, const char *password, X509 *trusted,
    struct device_delivery *o);

/* decrypt + open: the whole delivery of a CMS whose content is the PKCS#12. */
int device_open_delivery(const struct device *d, const char *cms_b64, const char *password,
    X509 *trusted, struct device_delivery *o);

/* ---- fixtures for the PFX import flow ---- */

/*
 * With the `openssl` command line, under dir: an outside CA (dir/ext-ca.pem, dir/ext-ca.key)
 * unless it exists, an S/MIME certificate for email (emailProtection) issued by it and a
 * PKCS#12 of key, certificate and CA protected by password (`openssl pkcs12 -export`, the
 * default AES-256-CBC/PBKDF2 form, or 3DES/SHA-1 when legacy). The PKCS#12 path goes to
 * pfx_path (PATH_MAX). 0/-1.
 */
int device_make_pfx(const char *dir, const char *name, const char *email, const char *password,
    bool legacy, char *pfx_path, size_t pfx_path_len);

/*
 * RSA-OAEP encryption of password (its bytes, one per character) to pub with md ("SHA256",
 * "SHA384", "SHA512") as the OAEP and MGF1 digest, the Intune PFX import form. base64
 * (malloc'd). EVP directly; no certconn code.
 */
char *device_oaep_encrypt_b64(EVP_PKEY *pub, const char *password, const char *md);
/* The same with PKCS#1 v1.5 padding (a wrong padding scheme for the tests). */
char *device_pkcs1_encrypt_b64(EVP_PKEY *pub, const char *password);

/* ---- small helpers ---- */

/* base64 without line breaks (malloc'd) / decoded (malloc'd, *outlen). */
char *device_b64(const uint8_t *p, size_t n);
uint8_t *device_unb64(const char *s, size_t *outlen);
/* Reads a whole file (malloc'd, NUL-terminated, *len without the NUL); NULL on failure. */
uint8_t *device_slurp(const char *path, size_t *len);
/* A PEM or DER public key / certificate file. */
EVP_PKEY *device_load_pubkey(const char *path);
X509 *device_load_cert(const char *path);

#endif
