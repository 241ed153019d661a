/*
 * The SCEP message layer (src/scep/scep_msg.c) on its own: requests built here with OpenSSL's
 * CMS API, well-formed and not, through scep_msg_parse / scep_msg_decrypt (each refusal with
 * the failInfo it must get, or none when the message cannot be answered at all), and every
 * reply scep_certrep_build makes, read back with CMS and with the PKCS#7 API that clients
 * such as certmonger use.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pkcs7.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "certconn/scep.h"
#include "scep_client.h"

static EVP_PKEY *rakey, *devkey;
static X509 *racert, *devcert;

static int
setup(void **state)
{
	(void)state;
	rakey = sc_key_rsa(2048);
	devkey = sc_key_rsa(2048);
	racert = sc_selfsigned(rakey, "CN=RA", 30);
	devcert = sc_selfsigned(devkey, "CN=dev", 1);
	return rakey && devkey && racert && devcert ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(rakey);
	EVP_PKEY_free(devkey);
	X509_free(racert);
	X509_free(devcert);
	return 0;
}

struct opts {
	const char *txid;            /* NULL: none */
	const char *type;            /* NULL: none */
	int nonce_len;               /* 0: none */
	const EVP_MD *md;
	bool nocerts;
	bool two_signers;
	const uint8_t *content;      /* NULL: an envelope of "hello" to racert */
	size_t content_len;
	const uint8_t *caps;         /* an SMIMECapabilities attribute with this value */
	size_t caps_len;
	int caps_type;               /* its ASN.1 type (0: SEQUENCE) */
	bool caps_twice;             /* the attribute twice */
};

static int
attr(CMS_SignerInfo *si, const char *oid, int type, const void *d, int len)
{
	ASN1_OBJECT *o = OBJ_txt2obj(oid, 1);
	int r = CMS_signed_add1_attr_by_OBJ(si, o, type, d, len);

	ASN1_OBJECT_free(o);
	return r;
}

static uint8_t *
build(const struct opts *o, size_t *len)
{
	STACK_OF(X509) *r = sk_X509_new_null();
	BIO *in = BIO_new_mem_buf("hello", 5), *data;
	CMS_ContentInfo *env, *cms;
	CMS_SignerInfo *si;
	unsigned char *envder = NULL, *der = NULL, nonce[32];
	int envlen, n;
	uint8_t *out;

	sk_X509_push(r, racert);
	env = CMS_encrypt(r, in, EVP_aes_128_cbc(), CMS_BINARY);
	envlen = i2d_CMS_ContentInfo(env, &envder);
	data = o->content != NULL ? BIO_new_mem_buf(o->content, (int)o->content_len) :
	    BIO_new_mem_buf(envder, envlen);
	cms = CMS_sign(NULL, NULL, NULL, NULL, CMS_PARTIAL | CMS_BINARY);
	for (int i = 0; i < (o->two_signers ? 2 : 1); i++) {
		si = CMS_add1_signer(cms, devcert, devkey, o->md != NULL ? o->md : EVP_sha256(),
		    CMS_NOSMIMECAP | (o->nocerts || i > 0 ? CMS_NOCERTS : 0));
		if (si == NULL) {
			ERR_print_errors_fp(stderr);
			fail_msg("CMS_add1_signer (signer %d)", i);
		}
		RAND_bytes(nonce, sizeof(nonce));
		if (o->txid != NULL)
			attr(si, "2.16.840.1.113733.1.9.7", V_ASN1_PRINTABLESTRING, o->txid,
			    (int)strlen(o->txid));
		if (o->type != NULL)
			attr(si, "2.16.840.1.113733.1.9.2", V_ASN1_PRINTABLESTRING, o->type,
			    (int)strlen(o->type));
		if (o->nonce_len > 0)
			attr(si, "2.16.840.1.113733.1.9.5", V_ASN1_OCTET_STRING, nonce, o->nonce_len);
		for (int k = 0; o->caps != NULL && k < (o->caps_twice ? 2 : 1); k++)
			assert_int_equal(CMS_signed_add1_attr_by_NID(si, NID_SMIMECapabilities,
			    o->caps_type != 0 ? o->caps_type : V_ASN1_SEQUENCE, o->caps,
			    (int)o->caps_len), 1);
	}
	assert_int_equal(CMS_final(cms, data, NULL, CMS_BINARY), 1);
	n = i2d_CMS_ContentInfo(cms, &der);
	out = malloc((size_t)n + 8);
	memcpy(out, der, (size_t)n);
	*len = (size_t)n;
	OPENSSL_free(der);
	OPENSSL_free(envder);
	CMS_ContentInfo_free(cms);
	CMS_ContentInfo_free(env);
	BIO_free(in);
	BIO_free(data);
	sk_X509_free(r);
	return out;
}

/* Parses what o describes; returns the parse result and *fail, checking m is clean. */
static int
parse(const struct opts *o, int *fail, char *why, size_t whylen, struct scep_msg *m)
{
	size_t len;
	uint8_t *der = build(o, &len);
	int r = scep_msg_parse(der, len, m, fail, why, whylen);

	free(der);
	return r;
}

static void
test_parse_good(void **state)
{
	struct opts o = { .txid = "tx-1", .type = "19", .nonce_len = 16 };
	struct scep_msg m;
	char why[256];
	int fail;

	(void)state;
	assert_int_equal(parse(&o, &fail, why, sizeof(why), &m), 0);
	assert_int_equal(m.type, SCEP_PKCSREQ);
	assert_string_equal(m.txid, "tx-1");
	assert_string_equal(m.md, "SHA256");
	assert_int_equal(X509_cmp(m.signer, devcert), 0);
	assert_int_equal(m.cipher_nid, NID_aes_128_cbc);
	assert_true(m.signing_time > time(NULL) - 60);
	assert_int_equal(scep_msg_decrypt(&m, rakey, racert, SCEP_CIPHER_AES, NULL, &fail, why,
	    sizeof(why)), 0);
	assert_int_equal(m.content_len, 5);
	assert_memory_equal(m.content, "hello", 5);
	scep_msg_free(&m);

	/* the same with 3DES not allowed for this content: badAlg comes from the cipher only */
	o.md = EVP_sha1();
	o.type = "22";
	assert_int_equal(parse(&o, &fail, why, sizeof(why), &m), 0);
	assert_int_equal(m.type, SCEP_GETCRL);
	assert_string_equal(m.md, "SHA1");
	assert_int_equal(scep_msg_decrypt(&m, rakey, racert, SCEP_CIPHER_DES3, NULL, &fail, why,
	    sizeof(why)), -1);
	assert_int_equal(fail, SCEP_FAIL_BADALG);
	scep_msg_free(&m);
	/* the wrong RA */
	assert_int_equal(parse(&o, &fail, why, sizeof(why), &m), 0);
	assert_int_equal(scep_msg_decrypt(&m, devkey, devcert, SCEP_CIPHER_AES, NULL, &fail, why,
	    sizeof(why)), -1);
	assert_int_equal(fail, SCEP_FAIL_BADMESSAGECHECK);
	assert_string_equal(why, "the envelope is not encrypted to this RA's certificate");
	scep_msg_free(&m);
}

static void
test_parse_refusals(void **state)
{
	struct scep_msg m;
	char why[256];
	int fail;
	struct {
		struct opts o;
		int fail;
		const char *why;
	} cases[] = {
		{ { .type = "19", .nonce_len = 16 }, SCEP_FAIL_NONE, "no valid transactionID" },
		{ { .txid = "t", .type = "19" }, SCEP_FAIL_NONE, "no valid senderNonce (16 bytes)" },
		{ { .txid = "t", .type = "19", .nonce_len = 8 }, SCEP_FAIL_NONE,
		    "no valid senderNonce (16 bytes)" },
		{ { .txid = "bad\x01txid", .type = "19", .nonce_len = 16 }, SCEP_FAIL_NONE,
		    "no valid transactionID" },
		{ { .txid = "t", .nonce_len = 16 }, SCEP_FAIL_BADREQUEST, "no valid messageType" },
		{ { .txid = "t", .type = "x9", .nonce_len = 16 }, SCEP_FAIL_BADREQUEST,
		    "messageType \"x9\" is not a number" },
		{ { .txid = "t", .type = "3", .nonce_len = 16 }, SCEP_FAIL_BADREQUEST,
		    "messageType 3 is not a request" },
		{ { .txid = "t", .type = "19", .nonce_len = 16, .md = EVP_md5() }, SCEP_FAIL_BADALG,
		    "signer digest MD5 is not accepted (SHA-1 or SHA-2 only)" },
		{ { .txid = "t", .type = "19", .nonce_len = 16, .nocerts = true },
		    SCEP_FAIL_BADMESSAGECHECK, "the signer's certificate is not in the message" },
		{ { .txid = "t", .type = "19", .nonce_len = 16, .two_signers = true },
		    SCEP_FAIL_NONE, "a pkiMessage has exactly one signer" },
		{ { .txid = "t", .type = "19", .nonce_len = 16, .content = (const uint8_t *)"xy",
		    .content_len = 2 }, SCEP_FAIL_BADMESSAGECHECK,
		    "the content is not an EnvelopedData" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(parse(&cases[i].o, &fail, why, sizeof(why), &m), -1);
		if (fail != cases[i].fail || strcmp(why, cases[i].why) != 0)
			fail_msg("case %zu: fail %d \"%s\"", i, fail, why);
		/* a failure that can be answered has what the answer needs */
		if (fail != SCEP_FAIL_NONE)
			assert_string_equal(m.txid, "t");
		scep_msg_free(&m);
	}
}

static void
test_parse_garbage(void **state)
{
	struct opts o = { .txid = "t", .type = "19", .nonce_len = 16 };
	struct scep_msg m;
	char why[256];
	int fail;
	size_t len;
	uint8_t *der = build(&o, &len);

	(void)state;
	/* trailing bytes, truncation, nothing, a certificate instead of a message */
	der[len] = 0;
	assert_int_equal(scep_msg_parse(der, len + 1, &m, &fail, why, sizeof(why)), -1);
	assert_int_equal(fail, SCEP_FAIL_NONE);
	scep_msg_free(&m);
	assert_int_equal(scep_msg_parse(der, len - 10, &m, &fail, why, sizeof(why)), -1);
	assert_int_equal(fail, SCEP_FAIL_NONE);
	scep_msg_free(&m);
	assert_int_equal(scep_msg_parse(der, 0, &m, &fail, why, sizeof(why)), -1);
	scep_msg_free(&m);
	/* a flipped bit in the signature */
	{
		const unsigned char *p = der;
		CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long)len);
		CMS_SignerInfo *si = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0);
		ASN1_OCTET_STRING *sig = CMS_SignerInfo_get0_signature(si);
		unsigned char *q = NULL;
		int n;

		((unsigned char *)ASN1_STRING_get0_data(sig))[10] ^= 1;
		n = i2d_CMS_ContentInfo(cms, &q);
		assert_int_equal(scep_msg_parse(q, (size_t)n, &m, &fail, why, sizeof(why)), -1);
		assert_int_equal(fail, SCEP_FAIL_BADMESSAGECHECK);
		assert_string_equal(why, "the message signature does not verify");
		assert_string_equal(m.txid, "t");
		scep_msg_free(&m);
		OPENSSL_free(q);
		CMS_ContentInfo_free(cms);
	}
	free(der);
}

/* A CertRep read back the way a PKCS#7 client does (PKCS7_verify with the RA cert). */
static PKCS7 *
pkcs7_verified(const uint8_t *der, size_t len, BIO **content)
{
	const unsigned char *p = der;
	PKCS7 *p7 = d2i_PKCS7(NULL, &p, (long)len);
	STACK_OF(X509) *certs = sk_X509_new_null();

	assert_non_null(p7);
	sk_X509_push(certs, racert);
	*content = BIO_new(BIO_s_mem());
	assert_int_equal(PKCS7_verify(p7, certs, NULL, NULL, *content, PKCS7_NOVERIFY), 1);
	sk_X509_free(certs);
	return p7;
}

static void
test_certrep(void **state)
{
	uint8_t nonce[16], *der;
	size_t len;
	char why[256];
	STACK_OF(X509) *certs = sk_X509_new_null();
	struct scep_reply r = { .txid = "tx-9", .recipient_nonce = nonce, .md = "SHA256" };
	struct sc_client c;
	struct sc_req q = { .key = devkey, .cert = devcert };
	struct sc_reply rep;
	BIO *content;
	PKCS7 *p7;
	X509_CRL *crl = X509_CRL_new();

	(void)state;
	RAND_bytes(nonce, sizeof(nonce));
	sc_client_init(&c, "http://x/scep");
	c.ra_sign = racert;
	X509_up_ref(racert);

	/* FAILURE: failInfo and failInfoText, an empty (present) content */
	r.status = SCEP_FAILURE;
	r.fail_info = SCEP_FAIL_BADTIME;
	r.fail_text = "clock";
	assert_int_equal(scep_certrep_build(&r, racert, rakey, NULL, &der, &len, why,
	    sizeof(why)), 0);
	memset(&rep, 0, sizeof(rep));
	rep.body = der;
	rep.body_len = len;
	rep.http_status = 200;
	snprintf(rep.content_type, sizeof(rep.content_type), "application/x-pki-message");
	q.message_type = SC_MSG_PKCSREQ;
	sc_parse_certrep(&c, &q, &rep);
	assert_true(rep.certrep);
	assert_true(rep.signature_ok);
	assert_int_equal(rep.message_type, SC_MSG_CERTREP);
	assert_int_equal(rep.pki_status, SC_STATUS_FAILURE);
	assert_int_equal(rep.fail_info, SC_FAIL_BADTIME);
	assert_string_equal(rep.fail_text, "clock");
	assert_string_equal(rep.txid, "tx-9");
	assert_memory_equal(rep.recipient_nonce, nonce, 16);
	p7 = pkcs7_verified(der, len, &content);
	assert_int_equal(BIO_pending(content), 0);
	PKCS7_free(p7);
	BIO_free(content);
	sc_reply_free(&rep);

	/* PENDING */
	r.status = SCEP_PENDING;
	assert_int_equal(scep_certrep_build(&r, racert, rakey, NULL, &der, &len, why,
	    sizeof(why)), 0);
	memset(&rep, 0, sizeof(rep));
	rep.body = der;
	rep.body_len = len;
	rep.http_status = 200;
	snprintf(rep.content_type, sizeof(rep.content_type), "application/x-pki-message");
	sc_parse_certrep(&c, &q, &rep);
	assert_int_equal(rep.pki_status, SC_STATUS_PENDING);
	assert_int_equal(rep.fail_info, -1);
	sc_reply_free(&rep);

	/* SUCCESS with a certificate and with a CRL, each in 3DES and AES-192 */
	sk_X509_push(certs, devcert);
	X509_CRL_set_issuer_name(crl, X509_get_subject_name(racert));
	{
		ASN1_TIME *t = ASN1_TIME_set(NULL, time(NULL));
		X509_CRL_set1_lastUpdate(crl, t);
		ASN1_TIME_free(t);
		assert_true(X509_CRL_sign(crl, rakey, EVP_sha256()) > 0);
	}
	for (int i = 0; i < 2; i++) {
		r.status = SCEP_SUCCESS;
		r.certs = i == 0 ? certs : NULL;
		r.crl = i == 1 ? crl : NULL;
		r.recipient = devcert;
		r.cipher_nid = i == 0 ? NID_des_ede3_cbc : NID_aes_192_cbc;
		assert_int_equal(scep_certrep_build(&r, racert, rakey, NULL, &der, &len, why,
		    sizeof(why)), 0);
		p7 = pkcs7_verified(der, len, &content);
		assert_true(BIO_pending(content) > 0);
		PKCS7_free(p7);
		BIO_free(content);
		memset(&rep, 0, sizeof(rep));
		rep.body = der;
		rep.body_len = len;
		rep.http_status = 200;
		snprintf(rep.content_type, sizeof(rep.content_type), "application/x-pki-message");
		q.message_type = i == 0 ? SC_MSG_GETCERT : SC_MSG_GETCRL;
		sc_parse_certrep(&c, &q, &rep);
		assert_int_equal(rep.pki_status, SC_STATUS_SUCCESS);
		if (i == 0) {
			assert_non_null(rep.cert);
			assert_int_equal(X509_cmp(rep.cert, devcert), 0);
		} else {
			assert_non_null(rep.crl);
		}
		sc_reply_free(&rep);
	}
	sk_X509_free(certs);
	X509_CRL_free(crl);
	sc_client_free(&c);
}

static void
test_contents(void **state)
{
	X509_NAME *a = NULL, *b = NULL;
	ASN1_INTEGER *sn = NULL;
	PKCS7_ISSUER_AND_SERIAL *ias = PKCS7_ISSUER_AND_SERIAL_new();
	unsigned char *der = NULL;
	int n;

	(void)state;
	X509_NAME_set(&ias->issuer, X509_get_subject_name(racert));
	ASN1_INTEGER_set(ias->serial, 4711);
	n = i2d_PKCS7_ISSUER_AND_SERIAL(ias, &der);
	assert_int_equal(scep_parse_issuer_serial(der, (size_t)n, &a, &sn), 0);
	assert_int_equal(X509_NAME_cmp(a, X509_get_subject_name(racert)), 0);
	assert_int_equal(ASN1_INTEGER_get(sn), 4711);
	X509_NAME_free(a);
	ASN1_INTEGER_free(sn);
	assert_int_equal(scep_parse_issuer_serial(der, (size_t)n - 1, &a, &sn), -1);
	/* an IssuerAndSerialNumber is not an IssuerAndSubject */
	assert_int_equal(scep_parse_issuer_subject(der, (size_t)n, &a, &b), -1);
	OPENSSL_free(der);
	PKCS7_ISSUER_AND_SERIAL_free(ias);
	assert_int_equal(scep_parse_issuer_subject((const uint8_t *)"\x30\x00", 2, &a, &b), -1);
	assert_int_equal(scep_parse_issuer_serial((const uint8_t *)"\x30\x00", 2, &a, &sn), -1);

	/* degenerate SignedData: certificates only, read back */
	{
		STACK_OF(X509) *certs = sk_X509_new_null(), *got;
		uint8_t *d;
		size_t len;
		const unsigned char *p;
		CMS_ContentInfo *cms;

		sk_X509_push(certs, racert);
		sk_X509_push(certs, devcert);
		assert_int_equal(scep_degenerate(certs, NULL, &d, &len), 0);
		p = d;
		cms = d2i_CMS_ContentInfo(NULL, &p, (long)len);
		assert_non_null(cms);
		assert_int_equal(CMS_get0_SignerInfos(cms) != NULL ?
		    sk_CMS_SignerInfo_num(CMS_get0_SignerInfos(cms)) : 0, 0);
		got = CMS_get1_certs(cms);
		assert_int_equal(sk_X509_num(got), 2);
		sk_X509_pop_free(got, X509_free);
		CMS_ContentInfo_free(cms);
		free(d);
		sk_X509_free(certs);
	}
	assert_string_equal(scep_msg_type_name(SCEP_CERTPOLL), "CertPoll");
	assert_string_equal(scep_fail_name(SCEP_FAIL_BADCERTID), "badCertId");
}

/* ---- SMIMECapabilities and the reply's cipher ---- */

static void
caps_der(const char *names, uint8_t **der, size_t *len)
{
	assert_int_equal(sc_smimecaps_der(names, der, len), 0);
}

static void
test_smimecaps_parse(void **state)
{
	uint8_t *der;
	size_t len;
	unsigned caps;
	static const struct {
		const char *names;
		unsigned want;
	} good[] = {
		{ "AES-256-CBC,AES-128-CBC", SCEP_CAP_AES256 | SCEP_CAP_AES128 },
		{ "AES-192-CBC", SCEP_CAP_AES192 },
		/* what OpenSSL's CMS_sign advertises by default, GOST and RC2 included */
		{ "AES-256-CBC,1.2.643.2.2.21,AES-192-CBC,AES-128-CBC,DES-EDE3-CBC,RC2-CBC,"
		  "DES-CBC", SCEP_CAP_AES256 | SCEP_CAP_AES192 | SCEP_CAP_AES128 | SCEP_CAP_DES3 },
		/* single DES, RC2, a digest: nothing a CertRep uses */
		{ "DES-CBC,RC2-CBC,SHA256", 0 },
		{ "DES-EDE3-CBC", SCEP_CAP_DES3 },
	};
	/* well-formed DER that is not a list of capabilities, and broken DER */
	static const struct {
		const char *what;
		const uint8_t *der;
		size_t len;
	} bad[] = {
		{ "a SEQUENCE of INTEGER", (const uint8_t *)"\x30\x03\x02\x01\x05", 5 },
		{ "an OCTET STRING", (const uint8_t *)"\x04\x01\x00", 3 },
		{ "a capability without an OID", (const uint8_t *)"\x30\x02\x30\x00", 4 },
		{ "a length past the end", (const uint8_t *)"\x30\x7f\x30\x0b\x06\x09", 6 },
		{ "a huge length", (const uint8_t *)"\x30\x84\xff\xff\xff\xff", 6 },
		{ "one byte", (const uint8_t *)"\x30", 1 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		caps_der(good[i].names, &der, &len);
		caps = 0xdead;
		assert_int_equal(scep_smimecaps_parse(der, len, &caps), 0);
		if (caps != good[i].want)
			fail_msg("%s: caps 0x%x, want 0x%x", good[i].names, caps, good[i].want);
		/* trailing bytes and truncation make it malformed */
		{
			uint8_t *more = malloc(len + 1);

			memcpy(more, der, len);
			more[len] = 0;
			assert_int_equal(scep_smimecaps_parse(more, len + 1, &caps), -1);
			assert_int_equal(caps, 0);
			assert_int_equal(scep_smimecaps_parse(more, len - 1, &caps), -1);
			free(more);
		}
		free(der);
	}
	/* an empty list is a list: nothing advertised */
	assert_int_equal(scep_smimecaps_parse((const uint8_t *)"\x30\x00", 2, &caps), 0);
	assert_int_equal(caps, 0);
	/* OpenSSL's decoder takes BER too (an indefinite length): still nothing advertised */
	caps = 0xdead;
	(void)scep_smimecaps_parse((const uint8_t *)"\x30\x80\x00\x00", 4, &caps);
	assert_int_equal(caps, 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		caps = 0xdead;
		if (scep_smimecaps_parse(bad[i].der, bad[i].len, &caps) != -1 || caps != 0)
			fail_msg("%s was read as a capability list", bad[i].what);
	}
	assert_int_equal(scep_smimecaps_parse(NULL, 0, &caps), -1);
	assert_int_equal(scep_smimecaps_parse((const uint8_t *)"\x30\x00", 0, &caps), -1);

	/* SCEP_SMIMECAPS_MAX capabilities are read, one more is refused */
	for (int n = SCEP_SMIMECAPS_MAX; n <= SCEP_SMIMECAPS_MAX + 1; n++) {
		char names[2048] = "";

		for (int i = 0; i < n; i++)
			strcat(names, i == 0 ? "AES-128-CBC" : ",AES-256-CBC");
		caps_der(names, &der, &len);
		assert_int_equal(scep_smimecaps_parse(der, len, &caps),
		    n <= SCEP_SMIMECAPS_MAX ? 0 : -1);
		assert_int_equal(caps, n <= SCEP_SMIMECAPS_MAX ? SCEP_CAP_AES128 | SCEP_CAP_AES256 : 0);
		free(der);
	}
}

static void
test_reply_cipher(void **state)
{
	static const struct {
		int req;
		unsigned caps, allowed;
		int want;
	} cases[] = {
		/* no list, or nothing usable in it: the request's own cipher */
		{ NID_aes_128_cbc, 0, SCEP_CIPHER_AES, NID_aes_128_cbc },
		{ NID_des_ede3_cbc, 0, SCEP_CIPHER_AES | SCEP_CIPHER_DES3, NID_des_ede3_cbc },
		/* the strongest advertised */
		{ NID_aes_128_cbc, SCEP_CAP_AES256 | SCEP_CAP_AES128, SCEP_CIPHER_AES,
		  NID_aes_256_cbc },
		{ NID_aes_128_cbc, SCEP_CAP_AES192 | SCEP_CAP_AES128 | SCEP_CAP_DES3,
		  SCEP_CIPHER_AES | SCEP_CIPHER_DES3, NID_aes_192_cbc },
		{ NID_des_ede3_cbc, SCEP_CAP_AES128 | SCEP_CAP_DES3,
		  SCEP_CIPHER_AES | SCEP_CIPHER_DES3, NID_aes_128_cbc },
		/* never weaker than what the request used */
		{ NID_aes_256_cbc, SCEP_CAP_AES128, SCEP_CIPHER_AES, NID_aes_256_cbc },
		{ NID_aes_192_cbc, SCEP_CAP_AES128 | SCEP_CAP_DES3, SCEP_CIPHER_AES | SCEP_CIPHER_DES3,
		  NID_aes_192_cbc },
		/* 3DES only where the profile has des3 */
		{ NID_aes_128_cbc, SCEP_CAP_DES3, SCEP_CIPHER_AES, NID_aes_128_cbc },
		{ NID_des_ede3_cbc, SCEP_CAP_DES3, SCEP_CIPHER_AES | SCEP_CIPHER_DES3,
		  NID_des_ede3_cbc },
		/* AES advertised but not accepted (a mask without it): not chosen */
		{ NID_des_ede3_cbc, SCEP_CAP_AES256, SCEP_CIPHER_DES3, NID_des_ede3_cbc },
		/* bits that name no cipher change nothing */
		{ NID_aes_128_cbc, 0xf0u, SCEP_CIPHER_AES, NID_aes_128_cbc },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int got = scep_reply_cipher(cases[i].req, cases[i].caps, cases[i].allowed);

		if (got != cases[i].want)
			fail_msg("case %zu: %s, want %s", i, OBJ_nid2sn(got), OBJ_nid2sn(cases[i].want));
	}
}

static void
test_csr_smimecaps(void **state)
{
	uint8_t *der;
	size_t len;
	unsigned caps;
	X509_REQ *r;

	(void)state;
	/* in the extensionRequest, alone and next to a subjectAltName */
	caps_der("AES-128-CBC,AES-256-CBC,RC2-CBC", &der, &len);
	r = sc_csr_ex(devkey, "CN=win", "pw", NULL, der, len);
	assert_int_equal(scep_csr_smimecaps(r, &caps), 1);
	assert_int_equal(caps, SCEP_CAP_AES128 | SCEP_CAP_AES256);
	X509_REQ_free(r);
	r = sc_csr_ex(devkey, "CN=win", NULL, "DNS:win.example.com", der, len);
	assert_int_equal(scep_csr_smimecaps(r, &caps), 1);
	assert_int_equal(caps, SCEP_CAP_AES128 | SCEP_CAP_AES256);
	X509_REQ_free(r);
	/* none: no extensionRequest, or one without the extension */
	r = sc_csr(devkey, "CN=plain", "pw", NULL);
	assert_int_equal(scep_csr_smimecaps(r, &caps), 0);
	assert_int_equal(caps, 0);
	X509_REQ_free(r);
	r = sc_csr(devkey, "CN=plain", NULL, "DNS:a.example.com");
	assert_int_equal(scep_csr_smimecaps(r, &caps), 0);
	X509_REQ_free(r);
	/* malformed values: ignored (-1, nothing advertised) */
	r = sc_csr_ex(devkey, "CN=bad", NULL, NULL, (const uint8_t *)"\x30\x03\x02\x01\x05", 5);
	assert_int_equal(scep_csr_smimecaps(r, &caps), -1);
	assert_int_equal(caps, 0);
	X509_REQ_free(r);
	r = sc_csr_ex(devkey, "CN=bad", NULL, NULL, der, len - 3);
	assert_int_equal(scep_csr_smimecaps(r, &caps), -1);
	X509_REQ_free(r);
	r = sc_csr_ex(devkey, "CN=bad", NULL, NULL, (const uint8_t *)"", 0);
	assert_int_equal(scep_csr_smimecaps(r, &caps), -1);
	X509_REQ_free(r);
	/* the extension twice */
	{
		STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
		ASN1_OCTET_STRING *v = ASN1_OCTET_STRING_new();

		ASN1_OCTET_STRING_set(v, der, (int)len);
		for (int i = 0; i < 2; i++)
			sk_X509_EXTENSION_push(exts, X509_EXTENSION_create_by_NID(NULL,
			    NID_SMIMECapabilities, 0, v));
		r = sc_csr(devkey, "CN=twice", NULL, NULL);
		assert_int_equal(X509_REQ_add_extensions(r, exts), 1);
		assert_int_equal(scep_csr_smimecaps(r, &caps), -1);
		assert_int_equal(caps, 0);
		X509_REQ_free(r);
		ASN1_OCTET_STRING_free(v);
		sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	}
	/* an extensionRequest attribute OpenSSL cannot read as extensions */
	r = sc_csr(devkey, "CN=garbled", NULL, NULL);
	assert_int_equal(X509_REQ_add1_attr_by_NID(r, NID_ext_req, V_ASN1_OCTET_STRING,
	    (const unsigned char *)"xyz", 3), 1);
	assert_int_equal(scep_csr_smimecaps(r, &caps), -1);
	assert_int_equal(caps, 0);
	X509_REQ_free(r);
	free(der);
}

static void
test_parse_smimecaps_attr(void **state)
{
	struct opts o = { .txid = "tx-caps", .type = "19", .nonce_len = 16 };
	struct scep_msg m;
	uint8_t *der;
	size_t len;
	char why[256];
	int fail;

	(void)state;
	/* none */
	assert_int_equal(parse(&o, &fail, why, sizeof(why), &m), 0);
	assert_int_equal(m.smime_caps_found, 0);
	assert_int_equal(m.smime_caps, 0);
	scep_msg_free(&m);
	/* read from the signed attribute */
	caps_der("AES-256-CBC,DES-EDE3-CBC,RC2-CBC", &der, &len);
	o.caps = der;
	o.caps_len = len;
	assert_int_equal(parse(&o, &fail, why, sizeof(why), &m), 0);
	assert_int_equal(m.smime_caps_found, 1);
	assert_int_equal(m.smime_caps, SCEP_CAP_AES256 | SCEP_CAP_DES3);
	assert_int_equal(m.cipher_nid, NID_aes_128_cbc);
	scep_msg_free(&m);
	/* malformed: the message is still good, the list is ignored */
	{
		static const struct {
			const uint8_t *v;
			size_t len;
			int type;
			bool twice;
		} bad[] = {
			{ (const uint8_t *)"\x30\x03\x02\x01\x05", 5, 0, false },
			{ (const uint8_t *)"\x30\x04\x30\x02\x05\x00", 6, 0, false },
			{ (const uint8_t *)"AES", 3, V_ASN1_OCTET_STRING, false },
			{ (const uint8_t *)"AES", 3, V_ASN1_UTF8STRING, false },
			{ NULL, 0, 0, true },
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			o.caps = bad[i].v != NULL ? bad[i].v : der;
			o.caps_len = bad[i].v != NULL ? bad[i].len : len;
			o.caps_type = bad[i].type;
			o.caps_twice = bad[i].twice;
			if (parse(&o, &fail, why, sizeof(why), &m) != 0)
				fail_msg("case %zu: the message was refused: %s", i, why);
			assert_int_equal(m.smime_caps_found, -1);
			assert_int_equal(m.smime_caps, 0);
			assert_string_equal(m.txid, "tx-caps");
			assert_int_equal(scep_msg_decrypt(&m, rakey, racert, SCEP_CIPHER_AES, NULL,
			    &fail, why, sizeof(why)), 0);
			scep_msg_free(&m);
		}
	}
	free(der);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_refusals),
		cmocka_unit_test(test_parse_garbage),
		cmocka_unit_test(test_certrep),
		cmocka_unit_test(test_contents),
		cmocka_unit_test(test_smimecaps_parse),
		cmocka_unit_test(test_reply_cipher),
		cmocka_unit_test(test_csr_smimecaps),
		cmocka_unit_test(test_parse_smimecaps_attr),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
