/*
 * SCEP messages (include/certconn/scep.h): pkiMessage parsing and verification, envelope
 * decryption through the RA key, CertRep and degenerate SignedData. OpenSSL's CMS API does
 * all of the cryptography and encoding; the PKCS#7 API is used only to read which algorithms
 * an envelope names before anything is decrypted (OpenSSL 3.0's CMS API has no accessor for
 * the content-encryption algorithm).
 */
#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pkcs7.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "certconn/scep.h"

#define SCEP_CONTENT_MAX (64u * 1024u)   /* a decrypted request (CSR, names) */

/* SCEP attributes (RFC 8894 3.2.1) */
#define OID_MESSAGE_TYPE "2.16.840.1.113733.1.9.2"
#define OID_PKI_STATUS "2.16.840.1.113733.1.9.3"
#define OID_FAIL_INFO "2.16.840.1.113733.1.9.4"
#define OID_SENDER_NONCE "2.16.840.1.113733.1.9.5"
#define OID_RECIPIENT_NONCE "2.16.840.1.113733.1.9.6"
#define OID_TRANSACTION_ID "2.16.840.1.113733.1.9.7"
#define OID_FAIL_INFO_TEXT "1.3.6.1.5.5.7.24.1"

static int
why_set(char *why, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int
why_set(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (why != NULL && len > 0) {
		va_start(ap, fmt);
		vsnprintf(why, len, fmt, ap);
		va_end(ap);
	}
	return -1;
}

const char *
scep_msg_type_name(int type)
{
	switch (type) {
	case SCEP_CERTREP: return "CertRep";
	case SCEP_RENEWALREQ: return "RenewalReq";
	case SCEP_PKCSREQ: return "PKCSReq";
	case SCEP_CERTPOLL: return "CertPoll";
	case SCEP_GETCERT: return "GetCert";
	case SCEP_GETCRL: return "GetCRL";
	default: return "unknown";
	}
}

const char *
scep_fail_name(int fail)
{
	switch (fail) {
	case SCEP_FAIL_BADALG: return "badAlg";
	case SCEP_FAIL_BADMESSAGECHECK: return "badMessageCheck";
	case SCEP_FAIL_BADREQUEST: return "badRequest";
	case SCEP_FAIL_BADTIME: return "badTime";
	case SCEP_FAIL_BADCERTID: return "badCertId";
	default: return "none";
	}
}

/* The SCEP attribute OIDs as objects, made once (not registered in OpenSSL's table). */
enum { A_MESSAGE_TYPE, A_PKI_STATUS, A_FAIL_INFO, A_SENDER_NONCE, A_RECIPIENT_NONCE,
	A_TRANSACTION_ID, A_FAIL_INFO_TEXT, A_COUNT };
static ASN1_OBJECT *attr_objs[A_COUNT];
static pthread_once_t attr_once = PTHREAD_ONCE_INIT;

static void
attr_init(void)
{
	static const char *const txt[A_COUNT] = { OID_MESSAGE_TYPE, OID_PKI_STATUS,
		OID_FAIL_INFO, OID_SENDER_NONCE, OID_RECIPIENT_NONCE, OID_TRANSACTION_ID,
		OID_FAIL_INFO_TEXT };

	for (int i = 0; i < A_COUNT; i++)
		attr_objs[i] = OBJ_txt2obj(txt[i], 1);
}

static const ASN1_OBJECT *
attr_obj(int a)
{
	pthread_once(&attr_once, attr_init);
	return attr_objs[a];
}

/* The single value of a signed attribute of the given ASN.1 type, or NULL. */
static const ASN1_STRING *
attr_get(CMS_SignerInfo *si, int a, int type)
{
	const ASN1_OBJECT *o = attr_obj(a);

	return o != NULL ? CMS_signed_get0_data_by_OBJ(si, o, -3, type) : NULL;
}

static int
attr_add(CMS_SignerInfo *si, int a, int type, const void *data, int len)
{
	const ASN1_OBJECT *o = attr_obj(a);

	/* len -1 would make OpenSSL take data for an ASN1_STRING: strings pass their length */
	if (len < 0)
		len = (int)strlen(data);
	return o != NULL && CMS_signed_add1_attr_by_OBJ(si, o, type, data, len) == 1 ? 0 : -1;
}

static int
printable_ok(const ASN1_STRING *s, size_t max)
{
	const unsigned char *d = ASN1_STRING_get0_data(s);
	int n = ASN1_STRING_length(s);

	if (n <= 0 || (size_t)n > max)
		return 0;
	for (int i = 0; i < n; i++)
		if (d[i] < 0x20 || d[i] > 0x7e)
			return 0;
	return 1;
}

static const char *
md_name(int nid)
{
	switch (nid) {
	case NID_sha1: return "SHA1";
	case NID_sha224: return "SHA224";
	case NID_sha256: return "SHA256";
	case NID_sha384: return "SHA384";
	case NID_sha512: return "SHA512";
	default: return NULL;
	}
}

static int
bio_take(BIO *b, uint8_t **out, size_t *len, size_t max)
{
	BUF_MEM *bm = NULL;

	BIO_get_mem_ptr(b, &bm);
	if (bm == NULL || bm->length == 0 || bm->length > max)
		return -1;
	*out = malloc(bm->length);
	if (*out == NULL)
		return -1;
	memcpy(*out, bm->data, bm->length);
	*len = bm->length;
	return 0;
}

/* ---- SMIMECapabilities (RFC 8551 2.5.2) ---- */

static unsigned
cap_bit(int nid)
{
	switch (nid) {
	case NID_aes_128_cbc: return SCEP_CAP_AES128;
	case NID_aes_192_cbc: return SCEP_CAP_AES192;
	case NID_aes_256_cbc: return SCEP_CAP_AES256;
	case NID_des_ede3_cbc: return SCEP_CAP_DES3;
	default: return 0;
	}
}

/*
 * SMIMECapabilities ::= SEQUENCE OF SMIMECapability, and SMIMECapability is
 * SEQUENCE { capabilityID OID, parameters ANY OPTIONAL }: the shape of an AlgorithmIdentifier,
 * so OpenSSL's X509_ALGORS decoder reads it (as its own PKCS7_get_smimecap does). Parameters
 * are not looked at: a cipher we would use is named by its OID alone (RFC 3565 section 4).
 */
int
scep_smimecaps_parse(const uint8_t *der, size_t len, unsigned *caps)
{
	const unsigned char *p = der;
	X509_ALGORS *algs = NULL;
	unsigned bits = 0;
	int n, ret = -1;

	*caps = 0;
	if (der == NULL || len == 0 || len > SCEP_CONTENT_MAX)
		return -1;
	algs = d2i_X509_ALGORS(NULL, &p, (long)len);
	if (algs == NULL || p != der + len)
		goto out;
	n = sk_X509_ALGOR_num(algs);
	if (n < 0 || n > SCEP_SMIMECAPS_MAX)
		goto out;
	for (int i = 0; i < n; i++) {
		const ASN1_OBJECT *o = NULL;

		X509_ALGOR_get0(&o, NULL, NULL, sk_X509_ALGOR_value(algs, i));
		if (o == NULL)
			goto out;
		bits |= cap_bit(OBJ_obj2nid(o));
	}
	*caps = bits;
	ret = 0;
out:
	sk_X509_ALGOR_pop_free(algs, X509_ALGOR_free);
	ERR_clear_error();
	return ret;
}

int
scep_csr_smimecaps(const X509_REQ *csr, unsigned *caps)
{
	/* OpenSSL 3.0 takes a non-const request but only reads it */
	X509_REQ *req = (X509_REQ *)csr;
	STACK_OF(X509_EXTENSION) *exts;
	const ASN1_OCTET_STRING *v = NULL;
	int ret = 0;

	*caps = 0;
	exts = X509_REQ_get_extensions(req);
	if (exts == NULL) {
		/* no extensionRequest, or one OpenSSL cannot read */
		ret = X509_REQ_get_attr_by_NID(req, NID_ext_req, -1) >= 0 ||
		    X509_REQ_get_attr_by_NID(req, NID_ms_ext_req, -1) >= 0 ? -1 : 0;
		ERR_clear_error();
		return ret;
	}
	for (int i = 0; i < sk_X509_EXTENSION_num(exts); i++) {
		X509_EXTENSION *e = sk_X509_EXTENSION_value(exts, i);

		if (OBJ_obj2nid(X509_EXTENSION_get_object(e)) != NID_SMIMECapabilities)
			continue;
		if (v != NULL) {
			ret = -1; /* two lists: which one would the requester mean? */
			goto out;
		}
		v = X509_EXTENSION_get_data(e);
	}
	if (v != NULL)
		ret = scep_smimecaps_parse(ASN1_STRING_get0_data(v), (size_t)ASN1_STRING_length(v),
		    caps) == 0 ? 1 : -1;
out:
	if (ret == -1)
		*caps = 0;
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	ERR_clear_error();
	return ret;
}

/* The SignerInfo's SMIMECapabilities attribute: 1 read, 0 absent, -1 malformed. */
static int
signer_smimecaps(CMS_SignerInfo *si, unsigned *caps)
{
	int i = CMS_signed_get_attr_by_NID(si, NID_SMIMECapabilities, -1);
	X509_ATTRIBUTE *a;
	ASN1_TYPE *t;

	*caps = 0;
	if (i < 0)
		return 0;
	if (CMS_signed_get_attr_by_NID(si, NID_SMIMECapabilities, i) >= 0)
		return -1; /* the attribute twice */
	a = CMS_signed_get_attr(si, i);
	if (a == NULL || X509_ATTRIBUTE_count(a) != 1)
		return -1;
	t = X509_ATTRIBUTE_get0_type(a, 0);
	if (t == NULL || t->type != V_ASN1_SEQUENCE || t->value.sequence == NULL)
		return -1;
	/* a SEQUENCE in an ASN1_TYPE keeps its whole encoding, tag and length included */
	return scep_smimecaps_parse(ASN1_STRING_get0_data(t->value.sequence),
	    (size_t)ASN1_STRING_length(t->value.sequence), caps) == 0 ? 1 : -1;
}

/* Strength of the content ciphers a CertRep may use (0: none of them). */
static int
cipher_rank(int nid)
{
	switch (nid) {
	case NID_aes_256_cbc: return 4;
	case NID_aes_192_cbc: return 3;
	case NID_aes_128_cbc: return 2;
	case NID_des_ede3_cbc: return 1;
	default: return 0;
	}
}

int
scep_reply_cipher(int req_nid, unsigned caps, unsigned allowed)
{
	static const struct {
		unsigned cap;
		int nid;
		unsigned need;
	} order[] = {
		{ SCEP_CAP_AES256, NID_aes_256_cbc, SCEP_CIPHER_AES },
		{ SCEP_CAP_AES192, NID_aes_192_cbc, SCEP_CIPHER_AES },
		{ SCEP_CAP_AES128, NID_aes_128_cbc, SCEP_CIPHER_AES },
		{ SCEP_CAP_DES3, NID_des_ede3_cbc, SCEP_CIPHER_DES3 },
	};
	int best = NID_undef;

	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		if ((caps & order[i].cap) && (allowed & order[i].need)) {
			best = order[i].nid;
			break;
		}
	/* The request's own cipher works for the requester: never answer with a weaker one. */
	if (best == NID_undef || cipher_rank(req_nid) >= cipher_rank(best))
		return req_nid;
	return best;
}

/* ---- parsing a request ---- */

static int
read_attrs(CMS_SignerInfo *si, struct scep_msg *m, int *fail, char *why, size_t whylen)
{
	const ASN1_STRING *s;
	char tmp[8];
	int type;

	s = attr_get(si, A_TRANSACTION_ID, V_ASN1_PRINTABLESTRING);
	if (s == NULL || !printable_ok(s, SCEP_TXID_MAX))
		return why_set(why, whylen, "no valid transactionID");
	memcpy(m->txid, ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s));
	m->txid[ASN1_STRING_length(s)] = '\0';
	s = attr_get(si, A_SENDER_NONCE, V_ASN1_OCTET_STRING);
	if (s == NULL || ASN1_STRING_length(s) != SCEP_NONCE_LEN) {
		m->txid[0] = '\0';
		return why_set(why, whylen, "no valid senderNonce (16 bytes)");
	}
	memcpy(m->nonce, ASN1_STRING_get0_data(s), SCEP_NONCE_LEN);
	/* From here on a FAILURE CertRep can be addressed to the requester. */
	*fail = SCEP_FAIL_BADREQUEST;
	s = attr_get(si, A_MESSAGE_TYPE, V_ASN1_PRINTABLESTRING);
	if (s == NULL || !printable_ok(s, sizeof(tmp) - 1))
		return why_set(why, whylen, "no valid messageType");
	memcpy(tmp, ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s));
	tmp[ASN1_STRING_length(s)] = '\0';
	for (const char *c = tmp; *c != '\0'; c++)
		if (!isdigit((unsigned char)*c))
			return why_set(why, whylen, "messageType \"%s\" is not a number", tmp);
	type = atoi(tmp);
	if (type != SCEP_PKCSREQ && type != SCEP_RENEWALREQ && type != SCEP_CERTPOLL &&
	    type != SCEP_GETCERT && type != SCEP_GETCRL)
		return why_set(why, whylen, "messageType %d is not a request", type);
	m->type = type;
	return 0;
}

static time_t
signing_time(CMS_SignerInfo *si)
{
	int i = CMS_signed_get_attr_by_NID(si, NID_pkcs9_signingTime, -1);
	X509_ATTRIBUTE *a;
	ASN1_TYPE *t;
	struct tm tm;

	if (i < 0 || (a = CMS_signed_get_attr(si, i)) == NULL || X509_ATTRIBUTE_count(a) != 1)
		return 0;
	t = X509_ATTRIBUTE_get0_type(a, 0);
	if (t == NULL || (t->type != V_ASN1_UTCTIME && t->type != V_ASN1_GENERALIZEDTIME) ||
	    ASN1_TIME_to_tm(t->value.utctime, &tm) != 1)
		return 0;
	return timegm(&tm);
}

int
scep_msg_parse(const uint8_t *der, size_t len, struct scep_msg *m, int *fail, char *why,
    size_t whylen)
{
	const unsigned char *p = der;
	CMS_ContentInfo *cms = NULL;
	STACK_OF(CMS_SignerInfo) *sis;
	STACK_OF(X509) *certs = NULL;
	CMS_SignerInfo *si;
	X509_ALGOR *dig = NULL, *sig = NULL;
	const ASN1_OBJECT *o;
	PKCS7 *p7 = NULL;
	BIO *out = NULL;
	int ret = -1;

	memset(m, 0, sizeof(*m));
	*fail = SCEP_FAIL_NONE;
	if (len == 0 || len > SCEP_MSG_MAX)
		return why_set(why, whylen, "message size %zu is out of range", len);
	cms = d2i_CMS_ContentInfo(NULL, &p, (long)len);
	if (cms == NULL || p != der + len) {
		why_set(why, whylen, "not a DER CMS/PKCS#7 message");
		goto out;
	}
	if (OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed) {
		why_set(why, whylen, "not a SignedData");
		goto out;
	}
	sis = CMS_get0_SignerInfos(cms);
	if (sis == NULL || sk_CMS_SignerInfo_num(sis) != 1) {
		why_set(why, whylen, "a pkiMessage has exactly one signer");
		goto out;
	}
	si = sk_CMS_SignerInfo_value(sis, 0);
	if (read_attrs(si, m, fail, why, whylen) == -1)
		goto out;
	CMS_SignerInfo_get0_algs(si, NULL, NULL, &dig, &sig);
	X509_ALGOR_get0(&o, NULL, NULL, dig);
	if (md_name(OBJ_obj2nid(o)) == NULL) {
		*fail = SCEP_FAIL_BADALG;
		why_set(why, whylen, "signer digest %s is not accepted (SHA-1 or SHA-2 only)",
		    OBJ_nid2sn(OBJ_obj2nid(o)));
		goto out;
	}
	snprintf(m->md, sizeof(m->md), "%s", md_name(OBJ_obj2nid(o)));
	if (CMS_is_detached(cms)) {
		*fail = SCEP_FAIL_BADREQUEST;
		why_set(why, whylen, "the message has no content");
		goto out;
	}
	/* The signer's certificate travels in the message (self-signed or the old one). */
	certs = CMS_get1_certs(cms);
	for (int i = 0; certs != NULL && i < sk_X509_num(certs); i++)
		if (CMS_SignerInfo_cert_cmp(si, sk_X509_value(certs, i)) == 0) {
			m->signer = sk_X509_value(certs, i);
			X509_up_ref(m->signer);
			break;
		}
	if (m->signer == NULL) {
		*fail = SCEP_FAIL_BADMESSAGECHECK;
		why_set(why, whylen, "the signer's certificate is not in the message");
		goto out;
	}
	out = BIO_new(BIO_s_mem());
	if (out == NULL || CMS_verify(cms, certs, NULL, NULL, out,
	    CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY) != 1) {
		*fail = SCEP_FAIL_BADMESSAGECHECK;
		why_set(why, whylen, "the message signature does not verify");
		goto out;
	}
	m->signing_time = signing_time(si);
	/* Read only now that the signature (over the signed attributes) has verified. */
	m->smime_caps_found = signer_smimecaps(si, &m->smime_caps);
	if (bio_take(out, &m->envelope, &m->envelope_len, SCEP_MSG_MAX) == -1) {
		*fail = SCEP_FAIL_BADREQUEST;
		why_set(why, whylen, "the message has no content");
		goto out;
	}
	p = m->envelope;
	p7 = d2i_PKCS7(NULL, &p, (long)m->envelope_len);
	if (p7 == NULL || p != m->envelope + m->envelope_len || !PKCS7_type_is_enveloped(p7) ||
	    p7->d.enveloped == NULL || p7->d.enveloped->enc_data == NULL ||
	    p7->d.enveloped->enc_data->algorithm == NULL) {
		*fail = SCEP_FAIL_BADMESSAGECHECK;
		why_set(why, whylen, "the content is not an EnvelopedData");
		goto out;
	}
	m->cipher_nid = OBJ_obj2nid(p7->d.enveloped->enc_data->algorithm->algorithm);
	ret = 0;
out:
	ERR_clear_error();
	PKCS7_free(p7);
	BIO_free(out);
	sk_X509_pop_free(certs, X509_free);
	CMS_ContentInfo_free(cms);
	return ret;
}

/* Is the envelope for ra_cert, and with an RSA key transport we do? */
static int
check_recipient(const struct scep_msg *m, X509 *ra_cert, int *fail, char *why, size_t whylen)
{
	const unsigned char *p = m->envelope;
	PKCS7 *p7 = d2i_PKCS7(NULL, &p, (long)m->envelope_len);
	STACK_OF(PKCS7_RECIP_INFO) *ris;
	int ret = -1, found = 0;

	*fail = SCEP_FAIL_BADMESSAGECHECK;
	if (p7 == NULL || !PKCS7_type_is_enveloped(p7)) {
		why_set(why, whylen, "the content is not an EnvelopedData");
		goto out;
	}
	ris = p7->d.enveloped->recipientinfo;
	for (int i = 0; ris != NULL && i < sk_PKCS7_RECIP_INFO_num(ris); i++) {
		PKCS7_RECIP_INFO *ri = sk_PKCS7_RECIP_INFO_value(ris, i);
		int alg;

		if (ri->issuer_and_serial == NULL ||
		    X509_NAME_cmp(ri->issuer_and_serial->issuer, X509_get_issuer_name(ra_cert)) != 0 ||
		    ASN1_INTEGER_cmp(ri->issuer_and_serial->serial,
		    X509_get0_serialNumber(ra_cert)) != 0)
			continue;
		alg = OBJ_obj2nid(ri->key_enc_algor->algorithm);
		if (alg != NID_rsaEncryption && alg != NID_rsaesOaep) {
			*fail = SCEP_FAIL_BADALG;
			why_set(why, whylen, "key transport %s is not accepted (RSA PKCS#1 v1.5 or "
			    "OAEP)", OBJ_nid2sn(alg));
			goto out;
		}
		found = 1;
	}
	if (!found) {
		why_set(why, whylen, "the envelope is not encrypted to this RA's certificate");
		goto out;
	}
	ret = 0;
out:
	PKCS7_free(p7);
	return ret;
}

int
scep_msg_decrypt(struct scep_msg *m, EVP_PKEY *ra_key, X509 *ra_cert, unsigned ciphers,
    OSSL_LIB_CTX *libctx, int *fail, char *why, size_t whylen)
{
	const unsigned char *p = m->envelope;
	CMS_ContentInfo *env = NULL;
	BIO *out = NULL;
	BUF_MEM *bm = NULL;
	int ret = -1;

	(void)libctx;
	switch (m->cipher_nid) {
	case NID_aes_128_cbc:
	case NID_aes_192_cbc:
	case NID_aes_256_cbc:
		if (ciphers & SCEP_CIPHER_AES)
			break;
		/* FALLTHROUGH */
	case NID_des_ede3_cbc:
		if (m->cipher_nid == NID_des_ede3_cbc && (ciphers & SCEP_CIPHER_DES3))
			break;
		/* FALLTHROUGH */
	default:
		*fail = SCEP_FAIL_BADALG;
		return why_set(why, whylen, "content encryption %s is not accepted%s",
		    m->cipher_nid != NID_undef ? OBJ_nid2sn(m->cipher_nid) : "(unknown)",
		    ciphers & SCEP_CIPHER_DES3 ? " (AES or 3DES)" : " (AES only)");
	}
	if (check_recipient(m, ra_cert, fail, why, whylen) == -1)
		return -1;
	*fail = SCEP_FAIL_BADMESSAGECHECK;
	env = d2i_CMS_ContentInfo(NULL, &p, (long)m->envelope_len);
	out = BIO_new(BIO_s_mem());
	if (env == NULL || out == NULL) {
		why_set(why, whylen, "the envelope cannot be read");
		goto out;
	}
	/* With the certificate given, OpenSSL decrypts only the recipient info for it. */
	if (CMS_decrypt(env, ra_key, ra_cert, NULL, out, CMS_BINARY) != 1) {
		why_set(why, whylen, "the envelope cannot be decrypted with the RA key");
		goto out;
	}
	BIO_get_mem_ptr(out, &bm);
	if (bm == NULL || bm->length == 0 || bm->length > SCEP_CONTENT_MAX) {
		*fail = SCEP_FAIL_BADREQUEST;
		why_set(why, whylen, "the decrypted content is empty or too large");
		goto out;
	}
	if (bio_take(out, &m->content, &m->content_len, SCEP_CONTENT_MAX) == -1)
		goto out;
	ret = 0;
out:
	if (bm != NULL && bm->data != NULL)
		OPENSSL_cleanse(bm->data, bm->length);
	ERR_clear_error();
	BIO_free(out);
	CMS_ContentInfo_free(env);
	return ret;
}

void
scep_msg_free(struct scep_msg *m)
{
	if (m == NULL)
		return;
	X509_free(m->signer);
	free(m->envelope);
	if (m->content != NULL)
		OPENSSL_cleanse(m->content, m->content_len);
	free(m->content);
	memset(m, 0, sizeof(*m));
}

/* ---- building replies ---- */

static int
cms_der(CMS_ContentInfo *cms, uint8_t **der, size_t *len)
{
	unsigned char *p = NULL;
	int n = i2d_CMS_ContentInfo(cms, &p);

	if (n <= 0)
		return -1;
	*der = malloc((size_t)n);
	if (*der == NULL) {
		OPENSSL_free(p);
		return -1;
	}
	memcpy(*der, p, (size_t)n);
	*len = (size_t)n;
	OPENSSL_free(p);
	return 0;
}

int
scep_degenerate(STACK_OF(X509) *certs, X509_CRL *crl, uint8_t **der, size_t *len)
{
	CMS_ContentInfo *cms;
	int ret = -1;

	*der = NULL;
	/* Certificates only: no signer, no content (RFC 8894 3.4). */
	cms = CMS_sign(NULL, NULL, certs, NULL, CMS_PARTIAL | CMS_DETACHED | CMS_BINARY);
	if (cms == NULL)
		return -1;
	if ((crl == NULL || CMS_add1_crl(cms, crl) == 1) && cms_der(cms, der, len) == 0)
		ret = 0;
	CMS_ContentInfo_free(cms);
	return ret;
}

static const EVP_CIPHER *
reply_cipher(int nid, OSSL_LIB_CTX *libctx, EVP_CIPHER **fetched)
{
	const char *name;

	switch (nid) {
	case NID_aes_128_cbc: name = "AES-128-CBC"; break;
	case NID_aes_192_cbc: name = "AES-192-CBC"; break;
	case NID_des_ede3_cbc: name = "DES-EDE3-CBC"; break;
	default: name = "AES-256-CBC"; break;
	}
	*fetched = EVP_CIPHER_fetch(libctx, name, "provider=default");
	return *fetched;
}

int
scep_certrep_build(const struct scep_reply *r, X509 *ra_cert, EVP_PKEY *ra_key,
    OSSL_LIB_CTX *libctx, uint8_t **der, size_t *len, char *why, size_t whylen)
{
	CMS_ContentInfo *cms = NULL, *env = NULL;
	CMS_SignerInfo *si;
	STACK_OF(X509) *recips = NULL;
	EVP_CIPHER *ciph = NULL;
	EVP_MD *md = NULL;
	uint8_t nonce[SCEP_NONCE_LEN], *inner = NULL, *envder = NULL;
	size_t innerlen = 0, envlen = 0;
	char status[4], fi[4];
	BIO *data = NULL, *inb = NULL;
	int ret = -1;

	*der = NULL;
	if (RAND_bytes(nonce, sizeof(nonce)) != 1)
		return why_set(why, whylen, "no randomness for the senderNonce");
	md = EVP_MD_fetch(libctx, r->md != NULL ? r->md : "SHA256", "provider=default");
	if (md == NULL) {
		why_set(why, whylen, "digest %s unavailable", r->md);
		goto out;
	}
	snprintf(status, sizeof(status), "%d", r->status);
	if (r->status == SCEP_SUCCESS) {
		/* The certificates (or CRL) in a degenerate SignedData, enveloped to the
		 * requester with the cipher the server chose (scep_reply_cipher). */
		if (scep_degenerate(r->certs, r->crl, &inner, &innerlen) == -1 ||
		    (recips = sk_X509_new_null()) == NULL || !sk_X509_push(recips, r->recipient) ||
		    reply_cipher(r->cipher_nid, libctx, &ciph) == NULL ||
		    (inb = BIO_new_mem_buf(inner, (int)innerlen)) == NULL) {
			why_set(why, whylen, "cannot build the reply's content");
			goto out;
		}
		env = CMS_encrypt_ex(recips, inb, ciph, CMS_BINARY, libctx, NULL);
		if (env == NULL || cms_der(env, &envder, &envlen) == -1) {
			why_set(why, whylen, "cannot encrypt the reply to the requester's certificate");
			goto out;
		}
		data = BIO_new_mem_buf(envder, (int)envlen);
	} else {
		data = BIO_new_mem_buf("", 0);
	}
	/*
	 * FAILURE and PENDING carry no envelope; their content is present but empty rather
	 * than absent, because clients on OpenSSL's PKCS7_verify (certmonger) refuse a
	 * SignedData without content ("no content").
	 */
	cms = CMS_sign_ex(NULL, NULL, NULL, NULL, CMS_PARTIAL | CMS_BINARY, libctx, NULL);
	if (data == NULL || cms == NULL) {
		why_set(why, whylen, "cannot build the CertRep");
		goto out;
	}
	si = CMS_add1_signer(cms, ra_cert, ra_key, md, CMS_BINARY | CMS_NOSMIMECAP);
	if (si == NULL ||
	    attr_add(si, A_TRANSACTION_ID, V_ASN1_PRINTABLESTRING, r->txid, -1) == -1 ||
	    attr_add(si, A_MESSAGE_TYPE, V_ASN1_PRINTABLESTRING, "3", -1) == -1 ||
	    attr_add(si, A_PKI_STATUS, V_ASN1_PRINTABLESTRING, status, -1) == -1 ||
	    attr_add(si, A_SENDER_NONCE, V_ASN1_OCTET_STRING, nonce, sizeof(nonce)) == -1 ||
	    attr_add(si, A_RECIPIENT_NONCE, V_ASN1_OCTET_STRING, r->recipient_nonce,
	    SCEP_NONCE_LEN) == -1) {
		why_set(why, whylen, "cannot add the CertRep's attributes");
		goto out;
	}
	if (r->status == SCEP_FAILURE) {
		snprintf(fi, sizeof(fi), "%d", r->fail_info);
		if (attr_add(si, A_FAIL_INFO, V_ASN1_PRINTABLESTRING, fi, -1) == -1 ||
		    (r->fail_text != NULL && r->fail_text[0] != '\0' &&
		    attr_add(si, A_FAIL_INFO_TEXT, V_ASN1_UTF8STRING, r->fail_text, -1) == -1)) {
			why_set(why, whylen, "cannot add the CertRep's failInfo");
			goto out;
		}
	}
	/* The signature is made here, by keys when ra_key is a keyref key. */
	if (CMS_final(cms, data, NULL, CMS_BINARY) != 1 || cms_der(cms, der, len) == -1) {
		unsigned long e = ERR_peek_last_error();
		char buf[256];

		ERR_error_string_n(e, buf, sizeof(buf));
		why_set(why, whylen, "cannot sign the CertRep with the RA key: %s", buf);
		goto out;
	}
	ret = 0;
out:
	ERR_clear_error();
	BIO_free(data);
	BIO_free(inb);
	free(inner);
	free(envder);
	sk_X509_free(recips);
	EVP_CIPHER_free(ciph);
	EVP_MD_free(md);
	CMS_ContentInfo_free(env);
	CMS_ContentInfo_free(cms);
	return ret;
}

int
scep_signed_data(const uint8_t *content, size_t len, X509 *ra_cert, EVP_PKEY *ra_key,
    OSSL_LIB_CTX *libctx, uint8_t **der, size_t *outlen)
{
	BIO *in = BIO_new_mem_buf(content, (int)len);
	CMS_ContentInfo *cms = NULL;
	int ret = -1;

	*der = NULL;
	if (in != NULL)
		cms = CMS_sign_ex(ra_cert, ra_key, NULL, in, CMS_BINARY | CMS_NOSMIMECAP, libctx,
		    NULL);
	if (cms != NULL && cms_der(cms, der, outlen) == 0)
		ret = 0;
	ERR_clear_error();
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	return ret;
}

/* ---- request contents ---- */

int
scep_parse_issuer_subject(const uint8_t *der, size_t len, X509_NAME **issuer,
    X509_NAME **subject)
{
	const unsigned char *p = der;
	STACK_OF(ASN1_TYPE) *seq = d2i_ASN1_SEQUENCE_ANY(NULL, &p, (long)len);
	X509_NAME *names[2] = { NULL, NULL };
	int ret = -1;

	*issuer = *subject = NULL;
	if (seq == NULL || p != der + len || sk_ASN1_TYPE_num(seq) != 2)
		goto out;
	for (int i = 0; i < 2; i++) {
		ASN1_TYPE *t = sk_ASN1_TYPE_value(seq, i);
		const unsigned char *q, *end;

		if (t->type != V_ASN1_SEQUENCE)
			goto out;
		q = ASN1_STRING_get0_data(t->value.sequence);
		end = q + ASN1_STRING_length(t->value.sequence);
		names[i] = d2i_X509_NAME(NULL, &q, ASN1_STRING_length(t->value.sequence));
		if (names[i] == NULL || q != end)
			goto out;
	}
	*issuer = names[0];
	*subject = names[1];
	names[0] = names[1] = NULL;
	ret = 0;
out:
	X509_NAME_free(names[0]);
	X509_NAME_free(names[1]);
	sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
	ERR_clear_error();
	return ret;
}

int
scep_parse_issuer_serial(const uint8_t *der, size_t len, X509_NAME **issuer,
    ASN1_INTEGER **serial)
{
	const unsigned char *p = der;
	PKCS7_ISSUER_AND_SERIAL *ias = d2i_PKCS7_ISSUER_AND_SERIAL(NULL, &p, (long)len);
	int ret = -1;

	*issuer = NULL;
	*serial = NULL;
	if (ias != NULL && p == der + len && ias->issuer != NULL && ias->serial != NULL) {
		*issuer = X509_NAME_dup(ias->issuer);
		*serial = ASN1_INTEGER_dup(ias->serial);
		if (*issuer != NULL && *serial != NULL)
			ret = 0;
	}
	if (ret == -1) {
		X509_NAME_free(*issuer);
		ASN1_INTEGER_free(*serial);
		*issuer = NULL;
		*serial = NULL;
	}
	PKCS7_ISSUER_AND_SERIAL_free(ias);
	ERR_clear_error();
	return ret;
}

int
scep_base64_decode(const char *in, size_t inlen, uint8_t **out, size_t *outlen, size_t max)
{
	EVP_ENCODE_CTX *ctx = NULL;
	unsigned char *clean = NULL, *buf = NULL;
	size_t n = 0;
	int l1 = 0, l2 = 0, ret = -1;

	*out = NULL;
	if (inlen == 0 || inlen > max / 3 * 4 + 16 || inlen > INT32_MAX)
		return -1;
	clean = malloc(inlen);
	buf = malloc(inlen / 4 * 3 + 3);
	ctx = EVP_ENCODE_CTX_new();
	if (clean == NULL || buf == NULL || ctx == NULL)
		goto out;
	for (size_t i = 0; i < inlen; i++) {
		char c = in[i];

		if (c == '\r' || c == '\n' || c == '\t')
			continue;
		if (c == ' ')
			c = '+'; /* a '+' that the URL decoding turned into a space */
		if (!(isalnum((unsigned char)c) || c == '+' || c == '/' || c == '='))
			goto out;
		clean[n++] = (unsigned char)c;
	}
	if (n == 0 || n % 4 != 0)
		goto out;
	EVP_DecodeInit(ctx);
	if (EVP_DecodeUpdate(ctx, buf, &l1, clean, (int)n) < 0 ||
	    EVP_DecodeFinal(ctx, buf + l1, &l2) != 1 || l1 + l2 <= 0 ||
	    (size_t)(l1 + l2) > max)
		goto out;
	*out = buf;
	*outlen = (size_t)(l1 + l2);
	buf = NULL;
	ret = 0;
out:
	EVP_ENCODE_CTX_free(ctx);
	free(clean);
	free(buf);
	return ret;
}
