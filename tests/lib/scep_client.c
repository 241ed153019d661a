/*
 * The test suite's SCEP client (tests/lib/scep_client.h). Independent of src/scep: every
 * message is built and read here with OpenSSL's CMS API, and HTTP goes through libcurl.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pkcs7.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "scep_client.h"

#define SC_BODY_MAX (4u << 20)

static void
sc_ossl(const char *what)
{
	unsigned long e;
	char buf[256];

	fprintf(stderr, "scep_client: %s", what);
	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		fprintf(stderr, ": %s", buf);
	}
	fprintf(stderr, "\n");
}

/* ---- keys, requests, certificates ---- */

EVP_PKEY *
sc_key_rsa(int bits)
{
	return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
}

EVP_PKEY *
sc_key_ec(const char *curve)
{
	return EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
}

X509_NAME *
sc_name(const char *text)
{
	X509_NAME *n = X509_NAME_new();
	char *dup = strdup(text), *save = NULL, *tok;

	if (n == NULL || dup == NULL)
		goto fail;
	for (tok = strtok_r(dup, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');

		if (eq == NULL)
			goto fail;
		*eq = '\0';
		if (X509_NAME_add_entry_by_txt(n, tok, MBSTRING_UTF8, (unsigned char *)eq + 1, -1,
		    -1, 0) != 1)
			goto fail;
	}
	free(dup);
	return n;
fail:
	fprintf(stderr, "scep_client: bad name \"%s\"\n", text);
	free(dup);
	X509_NAME_free(n);
	return NULL;
}

int
sc_smimecaps_der(const char *ciphers, uint8_t **der, size_t *len)
{
	X509_ALGORS *algs = sk_X509_ALGOR_new_null();
	char *dup = strdup(ciphers), *save = NULL, *tok;
	unsigned char *p = NULL;
	int n, ret = -1;

	*der = NULL;
	if (algs == NULL || dup == NULL)
		goto out;
	for (tok = strtok_r(dup, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		int nid = OBJ_txt2nid(tok);

		/* SMIMECapability { capabilityID, no parameters }: OpenSSL's own helper */
		if (nid == NID_undef || CMS_add_simple_smimecap(&algs, nid, -1) != 1) {
			fprintf(stderr, "scep_client: unknown capability \"%s\"\n", tok);
			goto out;
		}
	}
	n = i2d_X509_ALGORS(algs, &p);
	if (n <= 0 || (*der = malloc((size_t)n)) == NULL)
		goto out;
	memcpy(*der, p, (size_t)n);
	*len = (size_t)n;
	ret = 0;
out:
	OPENSSL_free(p);
	free(dup);
	sk_X509_ALGOR_pop_free(algs, X509_ALGOR_free);
	return ret;
}

X509_REQ *
sc_csr(EVP_PKEY *k, const char *subject, const char *challenge, const char *sans)
{
	return sc_csr_ex(k, subject, challenge, sans, NULL, 0);
}

X509_REQ *
sc_csr_ex(EVP_PKEY *k, const char *subject, const char *challenge, const char *sans,
    const uint8_t *caps, size_t caps_len)
{
	X509_REQ *r = X509_REQ_new();
	X509_NAME *n = sc_name(subject);
	STACK_OF(X509_EXTENSION) *exts = NULL;
	X509_EXTENSION *ext = NULL;
	ASN1_OCTET_STRING *capval = NULL;

	if (r == NULL || n == NULL || X509_REQ_set_version(r, X509_REQ_VERSION_1) != 1 ||
	    X509_REQ_set_subject_name(r, n) != 1 || X509_REQ_set_pubkey(r, k) != 1)
		goto fail;
	if (challenge != NULL && X509_REQ_add1_attr_by_NID(r, NID_pkcs9_challengePassword,
	    MBSTRING_UTF8, (const unsigned char *)challenge, -1) != 1)
		goto fail;
	if (sans != NULL) {
		GENERAL_NAMES *gens = GENERAL_NAMES_new();
		char *dup = strdup(sans), *save = NULL, *tok;

		for (tok = dup != NULL ? strtok_r(dup, "|", &save) : NULL; tok != NULL && gens != NULL;
		    tok = strtok_r(NULL, "|", &save)) {
			static const struct { const char *p; int t; } kinds[] = {
				{ "DNS:", GEN_DNS }, { "IP:", GEN_IPADD }, { "URI:", GEN_URI },
				{ "email:", GEN_EMAIL },
			};
			GENERAL_NAME *g = NULL;

			for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
				if (strncmp(tok, kinds[i].p, strlen(kinds[i].p)) == 0)
					g = a2i_GENERAL_NAME(NULL, NULL, NULL, kinds[i].t,
					    tok + strlen(kinds[i].p), 0);
			if (g == NULL || !sk_GENERAL_NAME_push(gens, g)) {
				GENERAL_NAME_free(g);
				GENERAL_NAMES_free(gens);
				gens = NULL;
			}
		}
		free(dup);
		exts = sk_X509_EXTENSION_new_null();
		ext = gens != NULL ? X509V3_EXT_i2d(NID_subject_alt_name, 0, gens) : NULL;
		GENERAL_NAMES_free(gens);
		if (exts == NULL || ext == NULL || !sk_X509_EXTENSION_push(exts, ext))
			goto fail;
		ext = NULL;
	}
	if (caps != NULL) {
		/* the extension's value is the SMIMECapabilities encoding (whatever caps holds) */
		if (exts == NULL && (exts = sk_X509_EXTENSION_new_null()) == NULL)
			goto fail;
		capval = ASN1_OCTET_STRING_new();
		if (capval == NULL || ASN1_OCTET_STRING_set(capval, caps, (int)caps_len) != 1 ||
		    (ext = X509_EXTENSION_create_by_NID(NULL, NID_SMIMECapabilities, 0,
		    capval)) == NULL || !sk_X509_EXTENSION_push(exts, ext))
			goto fail;
		ext = NULL;
	}
	if (exts != NULL && X509_REQ_add_extensions(r, exts) != 1)
		goto fail;
	if (X509_REQ_sign(r, k, EVP_sha256()) <= 0)
		goto fail;
	X509_NAME_free(n);
	ASN1_OCTET_STRING_free(capval);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	return r;
fail:
	sc_ossl("cannot make the request");
	ASN1_OCTET_STRING_free(capval);
	X509_EXTENSION_free(ext);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_NAME_free(n);
	X509_REQ_free(r);
	return NULL;
}

X509 *
sc_selfsigned(EVP_PKEY *k, const char *subject, int days)
{
	X509 *x = X509_new();
	X509_NAME *n = sc_name(subject);
	ASN1_INTEGER *sn = ASN1_INTEGER_new();

	if (x == NULL || n == NULL || sn == NULL || ASN1_INTEGER_set(sn, 1) != 1 ||
	    X509_set_version(x, X509_VERSION_3) != 1 || X509_set_serialNumber(x, sn) != 1 ||
	    X509_set_subject_name(x, n) != 1 || X509_set_issuer_name(x, n) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -300) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), (long)days * 86400) == NULL ||
	    X509_set_pubkey(x, k) != 1 || X509_sign(x, k, EVP_sha256()) <= 0) {
		sc_ossl("cannot make the self-signed certificate");
		X509_free(x);
		x = NULL;
	}
	ASN1_INTEGER_free(sn);
	X509_NAME_free(n);
	return x;
}

int
sc_csr_der(X509_REQ *r, uint8_t **der, size_t *len)
{
	unsigned char *p = NULL;
	int n = i2d_X509_REQ(r, &p);

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

void
sc_txid(EVP_PKEY *k, char buf[65])
{
	unsigned char *der = NULL, md[32];
	int n = i2d_PUBKEY(k, &der);

	buf[0] = '\0';
	if (n > 0 && EVP_Digest(der, (size_t)n, md, NULL, EVP_sha256(), NULL) == 1)
		for (int i = 0; i < 32; i++)
			snprintf(buf + 2 * i, 3, "%02x", md[i]);
	OPENSSL_free(der);
}

/* ---- HTTP ---- */

struct sc_buf {
	uint8_t *p;
	size_t n;
};

static size_t
sc_write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct sc_buf *b = arg;
	size_t add = size * nmemb;
	uint8_t *np;

	if (b->n + add > SC_BODY_MAX)
		return 0;
	np = realloc(b->p, b->n + add + 1);
	if (np == NULL)
		return 0;
	memcpy(np + b->n, data, add);
	b->p = np;
	b->n += add;
	b->p[b->n] = 0;
	return add;
}

int
sc_http(const char *url, const uint8_t *body, size_t len, long timeout_s, struct sc_reply *r)
{
	static int inited;
	CURL *c;
	struct curl_slist *h = NULL;
	struct sc_buf b = { NULL, 0 };
	char *ct = NULL;
	CURLcode rc;

	memset(r, 0, sizeof(*r));
	r->fail_info = -1;
	if (!inited) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		inited = 1;
	}
	c = curl_easy_init();
	if (c == NULL)
		return -1;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sc_write_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout_s > 0 ? timeout_s : 30L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L); /* tests reach loopback servers */
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	if (body != NULL) {
		h = curl_slist_append(h, "Content-Type: application/x-pki-message");
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	}
	rc = curl_easy_perform(c);
	if (rc != CURLE_OK) {
		fprintf(stderr, "scep_client: %s: %s\n", url, curl_easy_strerror(rc));
		curl_easy_cleanup(c);
		curl_slist_free_all(h);
		free(b.p);
		return -1;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->http_status);
	if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct != NULL)
		snprintf(r->content_type, sizeof(r->content_type), "%s", ct);
	r->body = b.p;
	r->body_len = b.n;
	curl_easy_cleanup(c);
	curl_slist_free_all(h);
	return 0;
}

void
sc_reply_free(struct sc_reply *r)
{
	free(r->body);
	sk_X509_pop_free(r->certs, X509_free);
	X509_free(r->cert);
	X509_CRL_free(r->crl);
	memset(r, 0, sizeof(*r));
}

/* ---- the client ---- */

static int
sc_do(struct sc_client *c, const char *url, const uint8_t *body, size_t len,
    struct sc_reply *r)
{
	if (c->transport != NULL) {
		memset(r, 0, sizeof(*r));
		r->fail_info = -1;
		return c->transport(c->transport_arg, url, body, len, r);
	}
	return sc_http(url, body, len, c->timeout_s, r);
}

void
sc_client_init(struct sc_client *c, const char *url)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->url, sizeof(c->url), "%s", url);
	c->cipher = "AES-256-CBC";
	c->md = "SHA256";
	c->timeout_s = 30;
}

void
sc_client_free(struct sc_client *c)
{
	sk_X509_pop_free(c->ca_certs, X509_free);
	X509_free(c->ra_sign);
	X509_free(c->ra_enc);
	X509_free(c->ca);
	memset(c, 0, sizeof(*c));
}

static int
op_url(const struct sc_client *c, const char *op, char *buf, size_t len)
{
	return snprintf(buf, len, "%s?operation=%s", c->url, op) < (int)len ? 0 : -1;
}

int
sc_get_caps(struct sc_client *c)
{
	struct sc_reply r;
	char url[600];
	long status;

	if (op_url(c, "GetCACaps", url, sizeof(url)) == -1 || sc_do(c, url, NULL, 0, &r) == -1)
		return -1;
	status = r.http_status;

	snprintf(c->caps, sizeof(c->caps), "%.*s", (int)r.body_len,
	    r.body != NULL ? (char *)r.body : "");
	sc_reply_free(&r);
	return status == 200 ? 0 : -1;
}

static STACK_OF(X509) *
certs_of_signed(const uint8_t *der, size_t len)
{
	const unsigned char *p = der;
	CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long)len);
	STACK_OF(X509) *certs = NULL;

	if (cms != NULL && OBJ_obj2nid(CMS_get0_type(cms)) == NID_pkcs7_signed)
		certs = CMS_get1_certs(cms);
	CMS_ContentInfo_free(cms);
	return certs;
}

int
sc_get_ca_cert(struct sc_client *c)
{
	struct sc_reply r;
	char url[600];
	int ret = -1;

	if (op_url(c, "GetCACert", url, sizeof(url)) == -1 || sc_do(c, url, NULL, 0, &r) == -1)
		return -1;
	sk_X509_pop_free(c->ca_certs, X509_free);
	c->ca_certs = NULL;
	if (r.http_status != 200)
		goto out;
	if (strcmp(r.content_type, "application/x-x509-ca-cert") == 0) {
		const unsigned char *p = r.body;
		X509 *x = d2i_X509(NULL, &p, (long)r.body_len);

		c->ca_certs = sk_X509_new_null();
		if (x == NULL || c->ca_certs == NULL || !sk_X509_push(c->ca_certs, x)) {
			X509_free(x);
			goto out;
		}
	} else if (strcmp(r.content_type, "application/x-x509-ca-ra-cert") == 0) {
		c->ca_certs = certs_of_signed(r.body, r.body_len);
	}
	if (c->ca_certs == NULL || sk_X509_num(c->ca_certs) == 0)
		goto out;
	X509_free(c->ra_sign);
	X509_free(c->ra_enc);
	X509_free(c->ca);
	c->ra_sign = c->ra_enc = c->ca = NULL;
	for (int i = 0; i < sk_X509_num(c->ca_certs); i++) {
		X509 *x = sk_X509_value(c->ca_certs, i);
		uint32_t ku = X509_get_key_usage(x);

		if (X509_check_ca(x) > 0)
			continue;
		if ((ku & KU_DIGITAL_SIGNATURE) && c->ra_sign == NULL && X509_up_ref(x))
			c->ra_sign = x;
		if ((ku & KU_KEY_ENCIPHERMENT) && c->ra_enc == NULL && X509_up_ref(x))
			c->ra_enc = x;
	}
	/* The CA: the issuer of the RA certificate, else the only CA certificate. */
	for (int i = 0; i < sk_X509_num(c->ca_certs); i++) {
		X509 *x = sk_X509_value(c->ca_certs, i);

		if (X509_check_ca(x) <= 0)
			continue;
		if (c->ra_sign == NULL || X509_check_issued(x, c->ra_sign) == X509_V_OK) {
			if (X509_up_ref(x))
				c->ca = x;
			break;
		}
	}
	if (c->ca == NULL)
		goto out;
	if (c->ra_sign == NULL && X509_up_ref(c->ca))
		c->ra_sign = c->ca;
	if (c->ra_enc == NULL && X509_up_ref(c->ca))
		c->ra_enc = c->ca;
	ret = 0;
out:
	sc_reply_free(&r);
	return ret;
}

/* ---- SCEP attributes ---- */

#define OID_MESSAGE_TYPE "2.16.840.1.113733.1.9.2"
#define OID_PKI_STATUS "2.16.840.1.113733.1.9.3"
#define OID_FAIL_INFO "2.16.840.1.113733.1.9.4"
#define OID_SENDER_NONCE "2.16.840.1.113733.1.9.5"
#define OID_RECIPIENT_NONCE "2.16.840.1.113733.1.9.6"
#define OID_TRANSACTION_ID "2.16.840.1.113733.1.9.7"
#define OID_FAIL_INFO_TEXT "1.3.6.1.5.5.7.24.1"

static int
add_attr(CMS_SignerInfo *si, const char *oid, int type, const void *data, int len)
{
	ASN1_OBJECT *o = OBJ_txt2obj(oid, 1);

	/* len -1 would make OpenSSL take data for an ASN1_STRING: strings pass their length */
	if (len < 0)
		len = (int)strlen(data);
	int r = o != NULL && CMS_signed_add1_attr_by_OBJ(si, o, type, data, len) == 1 ? 0 : -1;

	ASN1_OBJECT_free(o);
	return r;
}

static const ASN1_STRING *
get_attr(CMS_SignerInfo *si, const char *oid, int type)
{
	ASN1_OBJECT *o = OBJ_txt2obj(oid, 1);
	const ASN1_STRING *s = o != NULL ? CMS_signed_get0_data_by_OBJ(si, o, -3, type) : NULL;

	ASN1_OBJECT_free(o);
	return s;
}

static pthread_once_t sc_legacy_once = PTHREAD_ONCE_INIT;
static pthread_once_t sc_exit_once = PTHREAD_ONCE_INIT;
static OSSL_PROVIDER *sc_prov_legacy, *sc_prov_default;
/* sc_cipher's cache; clients run in threads (scep_bench): filled under the lock */
static pthread_mutex_t sc_cipher_lock = PTHREAD_MUTEX_INITIALIZER;
static EVP_CIPHER *sc_cached[4];

/*
 * At exit, before libcrypto's own cleanup (registered earlier, so it runs later): the cached
 * ciphers and the providers sc_load_legacy loaded. OPENSSL_cleanup does not drop the
 * reference OSSL_PROVIDER_load took, so without this the providers, the legacy provider's
 * child library context, its DRBGs and method stores outlived it and LeakSanitizer reported
 * them as indirect leaks (in integ_scep_micromdm).
 */
static void
sc_release(void)
{
	for (size_t i = 0; i < sizeof(sc_cached) / sizeof(sc_cached[0]); i++) {
		EVP_CIPHER_free(sc_cached[i]);
		sc_cached[i] = NULL;
	}
	if (sc_prov_legacy != NULL)
		OSSL_PROVIDER_unload(sc_prov_legacy);
	if (sc_prov_default != NULL)
		OSSL_PROVIDER_unload(sc_prov_default);
	sc_prov_legacy = sc_prov_default = NULL;
}

static void
sc_register_release(void)
{
	/* libcrypto registers its atexit handler on its first initialisation: make sure that
	 * is before ours */
	OPENSSL_init_crypto(0, NULL);
	atexit(sc_release);
}

static void
sc_load_legacy(void)
{
	pthread_once(&sc_exit_once, sc_register_release);
	/* loading a provider explicitly turns off the implicit default one: load both */
	sc_prov_legacy = OSSL_PROVIDER_load(NULL, "legacy");
	sc_prov_default = OSSL_PROVIDER_load(NULL, "default");
}

static const EVP_CIPHER *
sc_cipher(const char *name)
{
	static const char *const names[4] = { "AES-256-CBC", "AES-128-CBC", "DES-EDE3-CBC",
		"DES-CBC" };
	const EVP_CIPHER *r = NULL;

	pthread_once(&sc_exit_once, sc_register_release);
	for (int i = 0; i < 4; i++) {
		if (strcmp(name, names[i]) != 0)
			continue;
		pthread_mutex_lock(&sc_cipher_lock);
		if (sc_cached[i] == NULL) {
			/* single DES lives in the legacy provider: the client must be able to send
			 * it, to check that the server refuses it */
			if (i == 3)
				pthread_once(&sc_legacy_once, sc_load_legacy);
			sc_cached[i] = EVP_CIPHER_fetch(NULL, name, NULL);
		}
		r = sc_cached[i];
		pthread_mutex_unlock(&sc_cipher_lock);
		break;
	}
	return r;
}

/*
 * The content-encryption algorithm of an EnvelopedData (DER), into buf ("" when unknown).
 * CMS has no getter for it; PKCS7's structures are public and the two encodings agree.
 */
static int
envelope_cipher(const uint8_t *der, size_t len, char *buf, size_t buflen)
{
	const unsigned char *p = der;
	PKCS7 *p7 = d2i_PKCS7(NULL, &p, (long)len);
	int nid = NID_undef;

	if (p7 != NULL && PKCS7_type_is_enveloped(p7) && p7->d.enveloped != NULL &&
	    p7->d.enveloped->enc_data != NULL && p7->d.enveloped->enc_data->algorithm != NULL)
		nid = OBJ_obj2nid(p7->d.enveloped->enc_data->algorithm->algorithm);
	PKCS7_free(p7);
	snprintf(buf, buflen, "%s", nid != NID_undef ? OBJ_nid2sn(nid) : "");
	return nid;
}

static int
envelope(const struct sc_client *c, const struct sc_req *q, uint8_t **out, int *outlen)
{
	X509 *to = q->recipient != NULL ? q->recipient : c->ra_enc;
	const EVP_CIPHER *ciph = sc_cipher(c->cipher);
	CMS_ContentInfo *cms = NULL;
	BIO *in = BIO_new_mem_buf(q->content, (int)q->content_len);
	STACK_OF(X509) *none = sk_X509_new_null();
	int ret = -1;

	*out = NULL;
	if (to == NULL || ciph == NULL || in == NULL || none == NULL) {
		fprintf(stderr, "scep_client: no recipient or cipher %s\n", c->cipher);
		goto out;
	}
	cms = CMS_encrypt(none, NULL, ciph, CMS_BINARY | CMS_PARTIAL);
	if (cms == NULL)
		goto fail;
	if (c->oaep) {
		CMS_RecipientInfo *ri = CMS_add1_recipient_cert(cms, to, CMS_KEY_PARAM);
		EVP_PKEY_CTX *pc = ri != NULL ? CMS_RecipientInfo_get0_pkey_ctx(ri) : NULL;

		if (pc == NULL || EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_OAEP_PADDING) <= 0 ||
		    EVP_PKEY_CTX_set_rsa_oaep_md(pc, EVP_sha256()) <= 0 ||
		    EVP_PKEY_CTX_set_rsa_mgf1_md(pc, EVP_sha256()) <= 0)
			goto fail;
	} else if (CMS_add1_recipient_cert(cms, to, 0) == NULL) {
		goto fail;
	}
	if (CMS_final(cms, in, NULL, CMS_BINARY) != 1)
		goto fail;
	*outlen = i2d_CMS_ContentInfo(cms, out);
	if (*outlen <= 0)
		goto fail;
	ret = 0;
	goto out;
fail:
	sc_ossl("cannot build the envelope");
out:
	sk_X509_free(none);
	BIO_free(in);
	CMS_ContentInfo_free(cms);
	return ret;
}

static int
build(struct sc_client *c, struct sc_req *q, uint8_t **out, int *outlen)
{
	CMS_ContentInfo *cms = NULL;
	CMS_SignerInfo *si;
	uint8_t *env = NULL, *caps = NULL;
	int envlen = 0, ret = -1;
	char type[8], txid[65];
	BIO *data = NULL;
	ASN1_TIME *t = NULL;
	const EVP_MD *md = EVP_get_digestbyname(c->md);

	*out = NULL;
	if (q->no_envelope) {
		env = OPENSSL_memdup(q->content, q->content_len);
		envlen = (int)q->content_len;
		if (env == NULL)
			return -1;
	} else if (envelope(c, q, &env, &envlen) == -1) {
		return -1;
	}
	if (q->nonce != NULL)
		memcpy(q->nonce_used, q->nonce, 16);
	else if (RAND_bytes(q->nonce_used, 16) != 1)
		goto out;
	if (q->txid == NULL)
		sc_txid(X509_get0_pubkey(q->cert), txid);
	snprintf(type, sizeof(type), "%d", q->message_type);
	data = BIO_new_mem_buf(env, envlen);
	cms = CMS_sign(NULL, NULL, NULL, NULL, CMS_PARTIAL | CMS_BINARY);
	if (md == NULL || data == NULL || cms == NULL)
		goto fail;
	si = CMS_add1_signer(cms, q->cert, q->key, md, CMS_BINARY | CMS_NOSMIMECAP);
	if (si == NULL ||
	    add_attr(si, OID_TRANSACTION_ID, V_ASN1_PRINTABLESTRING, q->txid != NULL ? q->txid :
	    txid, -1) == -1 ||
	    add_attr(si, OID_MESSAGE_TYPE, V_ASN1_PRINTABLESTRING, type, -1) == -1 ||
	    add_attr(si, OID_SENDER_NONCE, V_ASN1_OCTET_STRING, q->nonce_used, 16) == -1)
		goto fail;
	if (q->smime_caps_der != NULL || c->smime_caps != NULL) {
		const uint8_t *cd = q->smime_caps_der;
		size_t cl = q->smime_caps_der_len;

		if (cd == NULL && sc_smimecaps_der(c->smime_caps, &caps, &cl) == -1)
			goto fail;
		/* a SEQUENCE attribute value is given as its whole encoding (as CMS_add_smimecap
		 * does it) */
		if (CMS_signed_add1_attr_by_NID(si, NID_SMIMECapabilities, V_ASN1_SEQUENCE,
		    cd != NULL ? cd : caps, (int)cl) != 1)
			goto fail;
	}
	if (q->signing_time != 0) {
		t = ASN1_TIME_set(NULL, q->signing_time);
		if (t == NULL || CMS_signed_add1_attr_by_NID(si, NID_pkcs9_signingTime, t->type,
		    t, -1) != 1)
			goto fail;
	}
	if (CMS_final(cms, data, NULL, CMS_BINARY) != 1)
		goto fail;
	if (q->break_signature) {
		ASN1_OCTET_STRING *sig = CMS_SignerInfo_get0_signature(si);
		unsigned char *p = (unsigned char *)ASN1_STRING_get0_data(sig);

		p[ASN1_STRING_length(sig) / 2] ^= 0x01;
	}
	*outlen = i2d_CMS_ContentInfo(cms, out);
	if (*outlen <= 0)
		goto fail;
	ret = 0;
	goto out;
fail:
	sc_ossl("cannot build the pkiMessage");
out:
	ASN1_TIME_free(t);
	free(caps);
	BIO_free(data);
	CMS_ContentInfo_free(cms);
	OPENSSL_free(env);
	return ret;
}

/* Reads a CertRep: signature, attributes, and the decrypted degenerate SignedData. */
static void
parse_certrep(struct sc_client *c, struct sc_req *q, struct sc_reply *r)
{
	const unsigned char *p = r->body;
	CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long)r->body_len), *env = NULL,
	    *inner = NULL;
	STACK_OF(CMS_SignerInfo) *sis;
	STACK_OF(X509) *signers = NULL, *ra = sk_X509_new_null();
	CMS_SignerInfo *si;
	const ASN1_STRING *s;
	BIO *content = BIO_new(BIO_s_mem()), *dec = BIO_new(BIO_s_mem()), *empty = NULL;
	BUF_MEM *bm;
	char tmp[16];

	if (cms == NULL || OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed ||
	    content == NULL || dec == NULL || ra == NULL)
		goto out;
	sis = CMS_get0_SignerInfos(cms);
	if (sis == NULL || sk_CMS_SignerInfo_num(sis) != 1)
		goto out;
	si = sk_CMS_SignerInfo_value(sis, 0);
	r->certrep = true;
	if (c->ra_sign != NULL)
		sk_X509_push(ra, c->ra_sign);
	if (CMS_is_detached(cms))
		empty = BIO_new_mem_buf("", 0); /* FAILURE and PENDING sign an empty content */
	r->signature_ok = CMS_verify(cms, ra, NULL, empty, content,
	    CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY) == 1;
	if (r->signature_ok) {
		/* the signer must be the RA's signing certificate itself */
		signers = CMS_get0_signers(cms);
		if (signers == NULL || sk_X509_num(signers) != 1 || c->ra_sign == NULL ||
		    X509_cmp(sk_X509_value(signers, 0), c->ra_sign) != 0)
			r->signature_ok = false;
	}
	ERR_clear_error();
	s = get_attr(si, OID_MESSAGE_TYPE, V_ASN1_PRINTABLESTRING);
	if (s != NULL && ASN1_STRING_length(s) < (int)sizeof(tmp)) {
		snprintf(tmp, sizeof(tmp), "%.*s", ASN1_STRING_length(s),
		    (const char *)ASN1_STRING_get0_data(s));
		r->message_type = atoi(tmp);
	}
	r->pki_status = -1;
	s = get_attr(si, OID_PKI_STATUS, V_ASN1_PRINTABLESTRING);
	if (s != NULL && ASN1_STRING_length(s) < (int)sizeof(tmp)) {
		snprintf(tmp, sizeof(tmp), "%.*s", ASN1_STRING_length(s),
		    (const char *)ASN1_STRING_get0_data(s));
		r->pki_status = atoi(tmp);
	}
	s = get_attr(si, OID_FAIL_INFO, V_ASN1_PRINTABLESTRING);
	if (s != NULL && ASN1_STRING_length(s) < (int)sizeof(tmp)) {
		snprintf(tmp, sizeof(tmp), "%.*s", ASN1_STRING_length(s),
		    (const char *)ASN1_STRING_get0_data(s));
		r->fail_info = atoi(tmp);
	}
	s = get_attr(si, OID_FAIL_INFO_TEXT, V_ASN1_UTF8STRING);
	if (s != NULL)
		snprintf(r->fail_text, sizeof(r->fail_text), "%.*s", ASN1_STRING_length(s),
		    (const char *)ASN1_STRING_get0_data(s));
	s = get_attr(si, OID_TRANSACTION_ID, V_ASN1_PRINTABLESTRING);
	if (s != NULL)
		snprintf(r->txid, sizeof(r->txid), "%.*s", ASN1_STRING_length(s),
		    (const char *)ASN1_STRING_get0_data(s));
	s = get_attr(si, OID_SENDER_NONCE, V_ASN1_OCTET_STRING);
	if (s != NULL && ASN1_STRING_length(s) == 16)
		memcpy(r->sender_nonce, ASN1_STRING_get0_data(s), 16);
	s = get_attr(si, OID_RECIPIENT_NONCE, V_ASN1_OCTET_STRING);
	if (s != NULL && ASN1_STRING_length(s) <= 16) {
		r->recipient_nonce_len = (size_t)ASN1_STRING_length(s);
		memcpy(r->recipient_nonce, ASN1_STRING_get0_data(s), r->recipient_nonce_len);
	}
	if (r->pki_status != SC_STATUS_SUCCESS || !r->signature_ok || q == NULL)
		goto out;
	/* SUCCESS: the content is an EnvelopedData for us holding a degenerate SignedData. */
	BIO_get_mem_ptr(content, &bm);
	if (envelope_cipher((const uint8_t *)bm->data, bm->length, r->reply_cipher,
	    sizeof(r->reply_cipher)) == NID_des_cbc) {
		if (!c->accept_des_reply) {
			fprintf(stderr, "scep_client: the CertRep is encrypted with single DES\n");
			goto out;
		}
		pthread_once(&sc_legacy_once, sc_load_legacy);
	}
	p = (const unsigned char *)bm->data;
	env = d2i_CMS_ContentInfo(NULL, &p, (long)bm->length);
	if (env == NULL || CMS_decrypt(env, q->key, q->cert, NULL, dec, CMS_BINARY) != 1) {
		sc_ossl("cannot decrypt the CertRep");
		goto out;
	}
	BIO_get_mem_ptr(dec, &bm);
	p = (const unsigned char *)bm->data;
	inner = d2i_CMS_ContentInfo(NULL, &p, (long)bm->length);
	if (inner == NULL || OBJ_obj2nid(CMS_get0_type(inner)) != NID_pkcs7_signed)
		goto out;
	r->certs = CMS_get1_certs(inner);
	{
		STACK_OF(X509_CRL) *crls = CMS_get1_crls(inner);

		if (crls != NULL && sk_X509_CRL_num(crls) > 0)
			r->crl = sk_X509_CRL_shift(crls);
		sk_X509_CRL_pop_free(crls, X509_CRL_free);
	}
	/* The certificate for our key, when the request was for one. */
	for (int i = 0; r->certs != NULL && i < sk_X509_num(r->certs); i++) {
		X509 *x = sk_X509_value(r->certs, i);

		if (EVP_PKEY_eq(X509_get0_pubkey(x), q->key) == 1 && X509_check_ca(x) == 0) {
			if (X509_up_ref(x))
				r->cert = x;
			break;
		}
	}
	if (r->cert == NULL && r->certs != NULL && sk_X509_num(r->certs) > 0 &&
	    q->message_type == SC_MSG_GETCERT && X509_up_ref(sk_X509_value(r->certs, 0)))
		r->cert = sk_X509_value(r->certs, 0);
out:
	ERR_clear_error();
	sk_X509_free(signers);
	sk_X509_free(ra);
	BIO_free(empty);
	BIO_free(content);
	BIO_free(dec);
	CMS_ContentInfo_free(inner);
	CMS_ContentInfo_free(env);
	CMS_ContentInfo_free(cms);
}

void
sc_parse_certrep(struct sc_client *c, struct sc_req *q, struct sc_reply *r)
{
	r->fail_info = -1;
	parse_certrep(c, q, r);
}

void
sc_req_pkcsreq(struct sc_req *req, EVP_PKEY *key, X509 *cert, const uint8_t *csr_der,
    size_t csr_len)
{
	memset(req, 0, sizeof(*req));
	req->message_type = SC_MSG_PKCSREQ;
	req->key = key;
	req->cert = cert;
	req->content = csr_der;
	req->content_len = csr_len;
}

int
sc_pkioperation(struct sc_client *c, struct sc_req *q, struct sc_reply *r)
{
	uint8_t *msg = NULL, *body = NULL;
	int len = 0, ret = -1;
	char *url = NULL;

	memset(r, 0, sizeof(*r));
	r->fail_info = -1;
	if (build(c, q, &msg, &len) == -1)
		return -1;
	if (c->use_get) {
		CURL *cu = curl_easy_init();
		char *b64 = malloc((size_t)len * 2 + 8), *esc = NULL;
		int n;

		if (cu == NULL || b64 == NULL)
			goto get_out;
		n = EVP_EncodeBlock((unsigned char *)b64, msg, len);
		if (q->truncate_base64)
			n -= n / 4;
		esc = curl_easy_escape(cu, b64, n);
		url = malloc(strlen(c->url) + (esc != NULL ? strlen(esc) : 0) + 64);
		if (esc == NULL || url == NULL)
			goto get_out;
		sprintf(url, "%s?operation=PKIOperation&message=%s", c->url, esc);
		ret = sc_do(c, url, NULL, 0, r);
get_out:
		curl_free(esc);
		free(b64);
		if (cu != NULL)
			curl_easy_cleanup(cu);
	} else {
		size_t blen = (size_t)len > q->pad_to ? (size_t)len : q->pad_to;

		body = calloc(1, blen);
		url = malloc(strlen(c->url) + 64);
		if (body != NULL && url != NULL) {
			memcpy(body, msg, (size_t)len);
			sprintf(url, "%s?operation=PKIOperation", c->url);
			ret = sc_do(c, url, body, blen, r);
		}
	}
	if (ret == 0 && r->http_status == 200 &&
	    strcmp(r->content_type, "application/x-pki-message") == 0)
		parse_certrep(c, q, r);
	free(url);
	free(body);
	OPENSSL_free(msg);
	return ret;
}

static int
simple_req(struct sc_client *c, int type, EVP_PKEY *k, X509 *signer, const uint8_t *content,
    size_t len, const char *txid, struct sc_reply *r)
{
	struct sc_req q;

	memset(&q, 0, sizeof(q));
	q.message_type = type;
	q.key = k;
	q.cert = signer;
	q.content = content;
	q.content_len = len;
	q.txid = txid;
	return sc_pkioperation(c, &q, r);
}

int
sc_pkcsreq(struct sc_client *c, EVP_PKEY *k, X509 *signer, X509_REQ *csr, const char *txid,
    struct sc_reply *r)
{
	uint8_t *der = NULL;
	size_t len = 0;
	int ret;

	if (sc_csr_der(csr, &der, &len) == -1)
		return -1;
	ret = simple_req(c, SC_MSG_PKCSREQ, k, signer, der, len, txid, r);
	free(der);
	return ret;
}

int
sc_renewalreq(struct sc_client *c, EVP_PKEY *k, X509 *old, X509_REQ *csr, const char *txid,
    struct sc_reply *r)
{
	uint8_t *der = NULL;
	size_t len = 0;
	int ret;

	char def[65];

	/* the default transactionID names the new key, not the old certificate's */
	sc_txid(X509_REQ_get0_pubkey(csr), def);
	if (sc_csr_der(csr, &der, &len) == -1)
		return -1;
	ret = simple_req(c, SC_MSG_RENEWALREQ, k, old, der, len, txid != NULL ? txid : def, r);
	free(der);
	return ret;
}

/* IssuerAndSubject ::= SEQUENCE { issuer Name, subject Name }, as a SEQUENCE of two
 * pre-encoded Names (OpenSSL's generic sequence type; nothing hand-encoded). */
int
sc_certpoll(struct sc_client *c, EVP_PKEY *k, X509 *signer, const X509_NAME *subject,
    const char *txid, struct sc_reply *r)
{
	STACK_OF(ASN1_TYPE) *seq = sk_ASN1_TYPE_new_null();
	const X509_NAME *names[2] = { X509_get_subject_name(c->ca), subject };
	unsigned char *der = NULL;
	int len, ret = -1;

	for (int i = 0; seq != NULL && i < 2; i++) {
		unsigned char *nd = NULL;
		int nl = i2d_X509_NAME(names[i], &nd);
		ASN1_STRING *s = ASN1_STRING_new();
		ASN1_TYPE *t = ASN1_TYPE_new();

		if (nl <= 0 || s == NULL || t == NULL || ASN1_STRING_set(s, nd, nl) != 1) {
			OPENSSL_free(nd);
			ASN1_STRING_free(s);
			ASN1_TYPE_free(t);
			goto out;
		}
		OPENSSL_free(nd);
		ASN1_TYPE_set(t, V_ASN1_SEQUENCE, s);
		sk_ASN1_TYPE_push(seq, t);
	}
	len = i2d_ASN1_SEQUENCE_ANY(seq, &der);
	if (len > 0)
		ret = simple_req(c, SC_MSG_CERTPOLL, k, signer, der, (size_t)len, txid, r);
out:
	OPENSSL_free(der);
	sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
	return ret;
}

static int
by_serial(struct sc_client *c, int type, EVP_PKEY *k, X509 *signer, const ASN1_INTEGER *sn,
    struct sc_reply *r)
{
	PKCS7_ISSUER_AND_SERIAL *ias = PKCS7_ISSUER_AND_SERIAL_new();
	unsigned char *der = NULL;
	int len, ret = -1;

	if (ias == NULL || X509_NAME_set(&ias->issuer, X509_get_subject_name(c->ca)) != 1)
		goto out;
	ASN1_INTEGER_free(ias->serial);
	ias->serial = ASN1_INTEGER_dup(sn);
	if (ias->serial == NULL)
		goto out;
	len = i2d_PKCS7_ISSUER_AND_SERIAL(ias, &der);
	if (len > 0)
		ret = simple_req(c, type, k, signer, der, (size_t)len, NULL, r);
out:
	OPENSSL_free(der);
	PKCS7_ISSUER_AND_SERIAL_free(ias);
	return ret;
}

int
sc_getcert(struct sc_client *c, EVP_PKEY *k, X509 *signer, const ASN1_INTEGER *serial,
    struct sc_reply *r)
{
	return by_serial(c, SC_MSG_GETCERT, k, signer, serial, r);
}

int
sc_getcrl(struct sc_client *c, EVP_PKEY *k, X509 *signer, const ASN1_INTEGER *serial,
    struct sc_reply *r)
{
	return by_serial(c, SC_MSG_GETCRL, k, signer, serial, r);
}

int
sc_get_next_ca_cert(struct sc_client *c, struct sc_reply *r)
{
	char url[600];
	const unsigned char *p;
	CMS_ContentInfo *cms = NULL;
	STACK_OF(X509) *ra = sk_X509_new_null();
	BIO *out = BIO_new(BIO_s_mem());

	if (op_url(c, "GetNextCACert", url, sizeof(url)) == -1 ||
	    sc_do(c, url, NULL, 0, r) == -1) {
		sk_X509_free(ra);
		BIO_free(out);
		return -1;
	}
	if (r->http_status == 200 && ra != NULL && out != NULL) {
		p = r->body;
		cms = d2i_CMS_ContentInfo(NULL, &p, (long)r->body_len);
		if (c->ra_sign != NULL)
			sk_X509_push(ra, c->ra_sign);
		if (cms != NULL) {
			r->signature_ok = CMS_verify(cms, ra, NULL, NULL, out,
			    CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY) == 1;
			if (r->signature_ok) {
				/* signed by the current CA or its RA (RFC 8894 4.7): a certificate
				 * GetCACert gave us, not just any one the reply carries */
				STACK_OF(X509) *signers = CMS_get0_signers(cms);
				X509 *sx = signers != NULL && sk_X509_num(signers) == 1 ?
				    sk_X509_value(signers, 0) : NULL;

				r->signature_ok = sx != NULL && ((c->ra_sign != NULL &&
				    X509_cmp(sx, c->ra_sign) == 0) || (c->ca != NULL &&
				    X509_cmp(sx, c->ca) == 0));
				sk_X509_free(signers);
			}
			if (r->signature_ok) {
				BUF_MEM *bm;
				BIO_get_mem_ptr(out, &bm);
				r->certs = certs_of_signed((const uint8_t *)bm->data, bm->length);
			}
		}
		ERR_clear_error();
	}
	CMS_ContentInfo_free(cms);
	sk_X509_free(ra);
	BIO_free(out);
	return 0;
}
