/*
 * cc_pkcs: device recipients and CMS EnvelopedData (CMS_encrypt_ex with CMS_PARTIAL,
 * CMS_add1_recipient_cert, CMS_final; CMS_RecipientInfo_decrypt and CMS_decrypt).
 *
 * A recipient known by its public key alone: OpenSSL 3.0's CMS API adds key-transport and
 * key-agreement recipients only from an X509 (CMS_add1_recipient_cert / CMS_add1_recipient),
 * and with CMS_USE_KEYID it names the recipient by the certificate's subjectKeyIdentifier
 * rather than issuer and serial. So for a bare key this file makes a carrier: an unsigned
 * X509 structure in memory holding only the public key and its SKI (RFC 5280 method 1).
 * Nothing of it but the SKI ends up in the envelope; it is never signed, encoded or sent.
 * The device opens the envelope with CMS_decrypt(cms, pkey, NULL, ...), which tries every
 * recipient with its key.
 *
 * Opening: the recipient is picked here (by the caller's certificate, or the key's SKI) and
 * decrypted with CMS_RecipientInfo_decrypt, so that a failure of keys (PKCS_E_KEY) is told
 * from a ciphertext that is not ours (PKCS_E_CRYPTO). CMS_decrypt without a certificate
 * would hide both behind a random content key (its MMA countermeasure); here the only
 * private operation is keys', which answers every RSA decryption failure with one text, and
 * the key transport is OAEP.
 */
#include <string.h>

#include <openssl/cms.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "pkcs_int.h"

void
pkcs_device_clear(struct pkcs_device *dev)
{
	if (dev == NULL)
		return;
	EVP_PKEY_free(dev->pub);
	X509_free(dev->cert);
	dev->pub = NULL;
	dev->cert = NULL;
}

/* RSA 2048..8192 or EC on P-256/384/521: what devices use and CMS here supports. */
static enum pkcs_err
key_usable(EVP_PKEY *k, char *err, size_t errlen)
{
	char group[32];
	size_t gl = 0;
	int bits = EVP_PKEY_get_bits(k);

	if (EVP_PKEY_is_a(k, "RSA")) {
		if (bits < 2048 || bits > 8192)
			return pkcs_fail(PKCS_E_UNSUPPORTED, err, errlen, "RSA key of %d bits "
			    "(2048..8192)", bits);
		return PKCS_OK;
	}
	if (EVP_PKEY_is_a(k, "EC")) {
		if (EVP_PKEY_get_utf8_string_param(k, "group", group, sizeof(group), &gl) != 1 ||
		    (strcmp(group, "prime256v1") != 0 && strcmp(group, "secp384r1") != 0 &&
		    strcmp(group, "secp521r1") != 0))
			return pkcs_fail(PKCS_E_UNSUPPORTED, err, errlen, "EC key on curve %s "
			    "(P-256, P-384, P-521)", gl > 0 ? group : "(explicit or unknown)");
		return PKCS_OK;
	}
	return pkcs_fail(PKCS_E_UNSUPPORTED, err, errlen, "%s key (RSA or EC only)",
	    EVP_PKEY_get0_type_name(k) != NULL ? EVP_PKEY_get0_type_name(k) : "unknown");
}

static enum pkcs_err
b64_field(const char *what, const char *b64, uint8_t **der, size_t *len, char *err,
    size_t errlen)
{
	size_t l = strlen(b64);
	int nomem;

	if (l > PKCS_MAX_B64)
		return pkcs_fail(PKCS_E_INVALID, err, errlen, "%s: base64 over %u bytes", what,
		    PKCS_MAX_B64);
	if (pkcs_b64_decode(b64, l, der, len, &nomem) == -1)
		return pkcs_fail(nomem ? PKCS_E_NOMEM : PKCS_E_INVALID, err, errlen, "%s: %s",
		    what, nomem ? "out of memory" : "malformed base64");
	return PKCS_OK;
}

enum pkcs_err
pkcs_device_from_b64(OSSL_LIB_CTX *libctx, const char *public_key_b64, const char *cert_b64,
    struct pkcs_device *dev, char *err, size_t errlen)
{
	uint8_t *der = NULL;
	size_t len = 0;
	const unsigned char *p;
	enum pkcs_err e;

	memset(dev, 0, sizeof(*dev));
	if (cert_b64 != NULL && *cert_b64 != '\0') {
		if ((e = b64_field("device certificate", cert_b64, &der, &len, err, errlen)) !=
		    PKCS_OK)
			goto out;
		p = der;
		dev->cert = X509_new_ex(libctx, NULL);
		if (dev->cert == NULL) {
			e = pkcs_fail(PKCS_E_NOMEM, err, errlen, "device certificate");
			goto out;
		}
		if (d2i_X509(&dev->cert, &p, (long)len) == NULL || p != der + len) {
			e = pkcs_fail(PKCS_E_INVALID, err, errlen, "device certificate: not DER "
			    "X.509");
			goto out;
		}
		dev->pub = X509_get_pubkey(dev->cert);
		if (dev->pub == NULL) {
			e = pkcs_fail(PKCS_E_UNSUPPORTED, err, errlen, "device certificate: its "
			    "public key does not decode");
			goto out;
		}
	} else if (public_key_b64 != NULL && *public_key_b64 != '\0') {
		if ((e = b64_field("device public key", public_key_b64, &der, &len, err,
		    errlen)) != PKCS_OK)
			goto out;
		p = der;
		dev->pub = d2i_PUBKEY_ex(NULL, &p, (long)len, libctx, NULL);
		if (dev->pub == NULL || p != der + len) {
			e = pkcs_fail(PKCS_E_INVALID, err, errlen, "device public key: not a DER "
			    "SubjectPublicKeyInfo of a supported key");
			goto out;
		}
	} else {
		e = pkcs_fail(PKCS_E_INVALID, err, errlen, "device: neither a public key nor a "
		    "certificate");
		goto out;
	}
	e = key_usable(dev->pub, err, errlen);
	if (e == PKCS_OK)
		ERR_clear_error();
out:
	OPENSSL_free(der);
	if (e != PKCS_OK)
		pkcs_device_clear(dev);
	return e;
}

/*
 * The carrier for a bare public key (see the top of this file). NULL on failure. It must
 * encode (OpenSSL computes the SKI it reads, and the certificate's hash, from a complete
 * structure), so it is signed, by a throwaway P-256 key made for it: what matters of it is
 * only the public key and its SKI, and neither its signature nor it leaves this function's
 * caller.
 */
static X509 *
carrier_cert(OSSL_LIB_CTX *libctx, EVP_PKEY *pub)
{
	unsigned char ski[20];
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	X509 *x = X509_new_ex(libctx, NULL);
	EVP_PKEY *signer = EVP_PKEY_Q_keygen(libctx, NULL, "EC", "P-256");
	EVP_MD_CTX *mctx = EVP_MD_CTX_new();
	bool ok;

	ok = os != NULL && x != NULL && signer != NULL && mctx != NULL &&
	    pkcs_key_ski(libctx, pub, ski) == 0 &&
	    ASN1_OCTET_STRING_set(os, ski, sizeof(ski)) == 1 && X509_set_version(x, 2) == 1 &&
	    ASN1_INTEGER_set(X509_get_serialNumber(x), 1) == 1 &&
	    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
	    (const unsigned char *)"certconn recipient key carrier", -1, -1, 0) == 1 &&
	    X509_set_issuer_name(x, X509_get_subject_name(x)) == 1 &&
	    X509_gmtime_adj(X509_getm_notBefore(x), 0) != NULL &&
	    X509_gmtime_adj(X509_getm_notAfter(x), 3600) != NULL &&
	    X509_set_pubkey(x, pub) == 1 &&
	    X509_add1_ext_i2d(x, NID_subject_key_identifier, os, 0, X509V3_ADD_DEFAULT) == 1 &&
	    EVP_DigestSignInit_ex(mctx, NULL, "SHA256", libctx, NULL, signer, NULL) == 1 &&
	    X509_sign_ctx(x, mctx) > 0;
	EVP_MD_CTX_free(mctx);
	EVP_PKEY_free(signer);
	ASN1_OCTET_STRING_free(os);
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

enum pkcs_err
pkcs_envelope_seal(OSSL_LIB_CTX *libctx, const uint8_t *data, size_t len,
    const struct pkcs_device *dev, uint8_t **cms_der, size_t *cms_len, char *err,
    size_t errlen)
{
	CMS_ContentInfo *cms = NULL;
	CMS_RecipientInfo *ri;
	EVP_PKEY_CTX *pctx;
	EVP_CIPHER *aes = NULL;
	X509 *carrier = NULL, *rcpt;
	BIO *in = NULL;
	unsigned char *der = NULL;
	enum pkcs_err e;
	bool rsa;
	int n;

	*cms_der = NULL;
	*cms_len = 0;
	if (dev == NULL || dev->pub == NULL)
		return pkcs_fail(PKCS_E_INVALID, err, errlen, "envelope: no recipient");
	if (data == NULL || len > PKCS_MAX_PLAIN)
		return pkcs_fail(PKCS_E_INVALID, err, errlen, "envelope: content of %zu bytes "
		    "(at most %u)", len, PKCS_MAX_PLAIN);
	if ((e = key_usable(dev->pub, err, errlen)) != PKCS_OK)
		return e;
	rsa = EVP_PKEY_is_a(dev->pub, "RSA");
	rcpt = dev->cert;
	if (rcpt == NULL) {
		rcpt = carrier = carrier_cert(libctx, dev->pub);
		if (rcpt == NULL) {
			e = pkcs_fail(PKCS_E_CRYPTO, err, errlen, "envelope: recipient key id");
			goto out;
		}
	}
	aes = EVP_CIPHER_fetch(libctx, "AES-256-CBC", NULL);
	in = BIO_new_mem_buf(data, (int)len);
	if (aes == NULL || in == NULL) {
		e = pkcs_fail(aes == NULL ? PKCS_E_UNSUPPORTED : PKCS_E_NOMEM, err, errlen,
		    "envelope: AES-256-CBC");
		goto out;
	}
	cms = CMS_encrypt_ex(NULL, NULL, aes, CMS_BINARY | CMS_PARTIAL, libctx, NULL);
	if (cms == NULL) {
		e = pkcs_fail(PKCS_E_CRYPTO, err, errlen, "CMS_encrypt");
		goto out;
	}
	/* CMS_KEY_PARAM: the recipient's key context is left for us to set up (OAEP, KDF) */
	ri = CMS_add1_recipient_cert(cms, rcpt, CMS_KEY_PARAM |
	    (carrier != NULL ? CMS_USE_KEYID : 0));
	pctx = ri != NULL ? CMS_RecipientInfo_get0_pkey_ctx(ri) : NULL;
	if (pctx == NULL) {
		e = pkcs_fail(PKCS_E_CRYPTO, err, errlen, "envelope: recipient");
		goto out;
	}
	if (rsa) {
		if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_OAEP_PADDING) != 1 ||
		    EVP_PKEY_CTX_set_rsa_oaep_md_name(pctx, "SHA256", NULL) != 1 ||
		    EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, "SHA256", NULL) != 1) {
			e = pkcs_fail(PKCS_E_CRYPTO, err, errlen, "envelope: RSA-OAEP parameters");
			goto out;
		}
	} else if (EVP_PKEY_CTX_set_ecdh_kdf_md(pctx, EVP_sha256()) != 1) {
		/* X9.63 KDF with SHA-256: dhSinglePass-stdDH-sha256kdf-scheme (RFC 5753) */
		e = pkcs_fail(PKCS_E_CRYPTO, err, errlen, "envelope: ECDH KDF");
		goto out;
	}
	if (CMS_final(cms, in, NULL, CMS_BINARY) != 1) {
		e = pkcs_fail(PKCS_E_CRYPTO, err, errlen, "envelope: CMS_final");
		goto out;
	}
	n = i2d_CMS_ContentInfo(cms, &der);
	if (n <= 0) {
		e = pkcs_fail(PKCS_E_CRYPTO, err, errlen, "envelope: encoding");
		goto out;
	}
	*cms_der = der;
	*cms_len = (size_t)n;
	ERR_clear_error();
	e = PKCS_OK;
out:
	BIO_free(in);
	CMS_ContentInfo_free(cms);
	EVP_CIPHER_free(aes);
	X509_free(carrier);
	return e;
}

/* Does the key transport recipient ri name key (SKI) or cert? */
static bool
ktri_matches(CMS_RecipientInfo *ri, X509 *cert, const unsigned char *ski)
{
	ASN1_OCTET_STRING *keyid = NULL;
	X509_NAME *issuer = NULL;
	ASN1_INTEGER *sno = NULL;

	if (cert != NULL)
		return CMS_RecipientInfo_ktri_cert_cmp(ri, cert) == 0;
	if (ski == NULL || CMS_RecipientInfo_ktri_get0_signer_id(ri, &keyid, &issuer, &sno) != 1)
		return false;
	return keyid != NULL && ASN1_STRING_length(keyid) == 20 &&
	    memcmp(ASN1_STRING_get0_data(keyid), ski, 20) == 0;
}

static bool
rek_matches(CMS_RecipientEncryptedKey *rek, X509 *cert, const unsigned char *ski)
{
	ASN1_OCTET_STRING *keyid = NULL;
	ASN1_GENERALIZEDTIME *date = NULL;
	X509_NAME *issuer = NULL;
	ASN1_INTEGER *sno = NULL;
	CMS_OtherKeyAttribute *other = NULL;

	if (cert != NULL)
		return CMS_RecipientEncryptedKey_cert_cmp(rek, cert) == 0;
	if (ski == NULL || CMS_RecipientEncryptedKey_get0_id(rek, &keyid, &date, &other, &issuer,
	    &sno) != 1)
		return false;
	return keyid != NULL && ASN1_STRING_length(keyid) == 20 &&
	    memcmp(ASN1_STRING_get0_data(keyid), ski, 20) == 0;
}

/*
 * Decrypts the content key of a recipient that names the key (pass 0) or, on pass 1, of any
 * recipient of the key's type. 1 done, 0 no such recipient, -1 failure (queue set).
 */
static int
recipient_decrypt(CMS_ContentInfo *cms, EVP_PKEY *key, X509 *cert, const unsigned char *ski,
    int pass)
{
	STACK_OF(CMS_RecipientInfo) *ris = CMS_get0_RecipientInfos(cms);
	bool rsa = EVP_PKEY_is_a(key, "RSA");
	int tried = 0;

	for (int i = 0; i < sk_CMS_RecipientInfo_num(ris); i++) {
		CMS_RecipientInfo *ri = sk_CMS_RecipientInfo_value(ris, i);
		int type = CMS_RecipientInfo_type(ri);

		if (rsa && type == CMS_RECIPINFO_TRANS) {
			int r;

			if (pass == 0 && !ktri_matches(ri, cert, ski))
				continue;
			tried++;
			/* set0: the recipient info owns a reference until set0 NULL frees it */
			if (EVP_PKEY_up_ref(key) != 1)
				return -1;
			if (CMS_RecipientInfo_set0_pkey(ri, key) != 1) {
				EVP_PKEY_free(key);
				return -1;
			}
			r = CMS_RecipientInfo_decrypt(cms, ri);
			(void)CMS_RecipientInfo_set0_pkey(ri, NULL);
			if (r == 1)
				return 1;
			if (pass == 0)
				return -1;
		} else if (!rsa && type == CMS_RECIPINFO_AGREE) {
			STACK_OF(CMS_RecipientEncryptedKey) *reks =
			    CMS_RecipientInfo_kari_get0_reks(ri);

			for (int j = 0; j < sk_CMS_RecipientEncryptedKey_num(reks); j++) {
				CMS_RecipientEncryptedKey *rek =
				    sk_CMS_RecipientEncryptedKey_value(reks, j);
				int r;

				if (pass == 0 && !rek_matches(rek, cert, ski))
					continue;
				tried++;
				if (CMS_RecipientInfo_kari_set0_pkey_and_peer(ri, key, NULL) != 1)
					return -1;
				r = CMS_RecipientInfo_kari_decrypt(cms, ri, rek);
				/* kari keeps no reference of its own, only its key context's */
				(void)CMS_RecipientInfo_kari_set0_pkey(ri, NULL);
				if (r == 1)
					return 1;
				if (pass == 0)
					return -1;
			}
		}
	}
	return tried > 0 ? -1 : 0;
}

enum pkcs_err
pkcs_envelope_open(OSSL_LIB_CTX *libctx, const uint8_t *cms_der, size_t len, EVP_PKEY *key,
    X509 *cert, uint8_t **plain, size_t *plain_len, char *err, size_t errlen)
{
	const unsigned char *p = cms_der;
	CMS_ContentInfo *cms = NULL;
	unsigned char ski[20];
	bool have_ski;
	BIO *mem = NULL;
	BUF_MEM *bm = NULL;
	enum pkcs_err e;
	int r;

	*plain = NULL;
	*plain_len = 0;
	if (key == NULL)
		return pkcs_fail(PKCS_E_INVALID, err, errlen, "envelope: no key");
	if (cms_der == NULL || len == 0 || len > PKCS_MAX_CMS)
		return pkcs_fail(PKCS_E_INVALID, err, errlen, "envelope of %zu bytes (1..%u)",
		    len, PKCS_MAX_CMS);
	if (!EVP_PKEY_is_a(key, "RSA") && !EVP_PKEY_is_a(key, "EC"))
		return pkcs_fail(PKCS_E_UNSUPPORTED, err, errlen, "envelope: %s key (RSA or EC)",
		    EVP_PKEY_get0_type_name(key) != NULL ? EVP_PKEY_get0_type_name(key) : "?");
	cms = CMS_ContentInfo_new_ex(libctx, NULL);
	if (cms == NULL)
		return pkcs_fail(PKCS_E_NOMEM, err, errlen, "envelope");
	/* d2i into an existing object keeps its library context (or frees it on failure) */
	if (d2i_CMS_ContentInfo(&cms, &p, (long)len) == NULL || p != cms_der + len ||
	    OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_enveloped) {
		e = pkcs_fail(PKCS_E_INVALID, err, errlen, "not a DER CMS EnvelopedData");
		goto out;
	}
	have_ski = pkcs_key_ski(libctx, key, ski) == 0;
	ERR_clear_error();
	r = recipient_decrypt(cms, key, cert, have_ski ? ski : NULL, 0);
	if (r == 0 && cert == NULL)
		r = recipient_decrypt(cms, key, NULL, NULL, 1);
	if (r == 0) {
		e = pkcs_fail(PKCS_E_CRYPTO, err, errlen, "envelope: no recipient for this %s",
		    cert != NULL ? "certificate" : "key");
		goto out;
	}
	if (r < 0) {
		e = pkcs_fail_key(PKCS_E_CRYPTO, err, errlen, "envelope: the content key does "
		    "not decrypt");
		goto out;
	}
	mem = BIO_new(BIO_s_secmem());
	if (mem == NULL) {
		e = pkcs_fail(PKCS_E_NOMEM, err, errlen, "envelope");
		goto out;
	}
	/* the content key is set: CMS_decrypt with no key decrypts the content only */
	if (CMS_decrypt(cms, NULL, NULL, NULL, mem, CMS_BINARY) != 1) {
		e = pkcs_fail(PKCS_E_CRYPTO, err, errlen, "envelope: the content does not "
		    "decrypt");
		goto out;
	}
	BIO_get_mem_ptr(mem, &bm);
	if (bm->length > PKCS_MAX_CMS) {
		e = pkcs_fail(PKCS_E_INVALID, err, errlen, "envelope: content over %u bytes",
		    PKCS_MAX_CMS);
		goto out;
	}
	*plain = OPENSSL_malloc(bm->length > 0 ? bm->length : 1);
	if (*plain == NULL) {
		e = pkcs_fail(PKCS_E_NOMEM, err, errlen, "envelope");
		goto out;
	}
	memcpy(*plain, bm->data, bm->length);
	*plain_len = bm->length;
	ERR_clear_error();
	e = PKCS_OK;
out:
	/* a secure-memory BIO: BIO_free wipes what it held */
	BIO_free(mem);
	CMS_ContentInfo_free(cms);
	return e;
}
