/*
 * The dev appliance's SCEP: `dev up` configures the local CA and three SCEP profiles;
 * `dev demo` enrolls a device: a one-time challenge from the CA's store (as `certconnctl
 * scep challenge` makes), then GetCACaps, GetCACert and a PKCSReq over HTTP like any SCEP
 * client, and prints the certificate it got, checked against the local CA.
 *
 * The device side here is a small SCEP client on OpenSSL's CMS API and libcurl, enough for
 * a PKCSReq; the test suite has a complete one (tests/lib/scep_client.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certconn/ca.h"
#include "certconn/config.h"
#include "certconn/scep.h"
#include "certconn/util.h"
#include "ctl_ca.h"

#define DEMO_BODY_MAX (1u << 20)

int
dev_scep_config(const char *dir, cJSON *net)
{
	cJSON *ca, *scep, *profiles, *p, *c;
	char pwpath[4200], hex[33];
	unsigned char r[16];
	int fd;

	snprintf(pwpath, sizeof(pwpath), "%s/scep-password", dir);
	if (access(pwpath, F_OK) == -1) {
		if (RAND_bytes(r, sizeof(r)) != 1)
			return -1;
		for (size_t i = 0; i < sizeof(r); i++)
			snprintf(hex + 2 * i, 3, "%02x", r[i]);
		explicit_bzero(r, sizeof(r));
		fd = open(pwpath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd == -1 || write(fd, hex, 32) != 32 || write(fd, "\n", 1) != 1) {
			fprintf(stderr, "certconnctl: %s: %s\n", pwpath, strerror(errno));
			if (fd != -1)
				close(fd);
			return -1;
		}
		close(fd);
		explicit_bzero(hex, sizeof(hex));
	}
	ca = cJSON_AddObjectToObject(net, "ca");
	cJSON_AddStringToObject(ca, "name", "dev");
	cJSON_AddNumberToObject(ca, "crl_days", 7);
	scep = cJSON_AddObjectToObject(net, "scep");
	cJSON_AddStringToObject(scep, "default_profile", "devices");
	profiles = cJSON_AddObjectToObject(scep, "profiles");
	/* devices: a static password (DIR/scep-password), as an MDM profile would carry */
	p = cJSON_AddObjectToObject(profiles, "devices");
	c = cJSON_AddObjectToObject(p, "challenge");
	cJSON_AddStringToObject(c, "mode", "static");
	cJSON_AddStringToObject(c, "password_file", pwpath);
	c = cJSON_AddObjectToObject(p, "issuance");
	cJSON_AddNumberToObject(c, "validity_days", 365);
	/* onetime: challenges from `certconnctl scep challenge --profile onetime` */
	p = cJSON_AddObjectToObject(profiles, "onetime");
	c = cJSON_AddObjectToObject(p, "challenge");
	cJSON_AddStringToObject(c, "mode", "dynamic");
	cJSON_AddNumberToObject(c, "ttl_s", 3600);
	/* manual: no challenge, every request waits for `certconnctl scep approve` */
	p = cJSON_AddObjectToObject(profiles, "manual");
	c = cJSON_AddObjectToObject(p, "challenge");
	cJSON_AddStringToObject(c, "mode", "none");
	cJSON_AddBoolToObject(p, "manual_approval", 1);
	return 0;
}

/* ---- the demo device ---- */

struct buf {
	uint8_t *p;
	size_t n;
};

static size_t
write_cb(char *d, size_t size, size_t nmemb, void *arg)
{
	struct buf *b = arg;
	size_t add = size * nmemb;
	uint8_t *np;

	if (b->n + add > DEMO_BODY_MAX || (np = realloc(b->p, b->n + add + 1)) == NULL)
		return 0;
	memcpy(np + b->n, d, add);
	b->p = np;
	b->n += add;
	b->p[b->n] = 0;
	return add;
}

static int
http(const char *url, const uint8_t *body, size_t len, long *status, struct buf *out,
    char *ctype, size_t ctlen)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	char *ct = NULL;
	CURLcode rc;

	memset(out, 0, sizeof(*out));
	if (c == NULL)
		return -1;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	if (body != NULL) {
		h = curl_slist_append(h, "Content-Type: application/x-pki-message");
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	}
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
		if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct != NULL)
			snprintf(ctype, ctlen, "%s", ct);
	} else {
		fprintf(stderr, "certconnctl: %s: %s\n", url, curl_easy_strerror(rc));
	}
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return rc == CURLE_OK ? 0 : -1;
}

static int
add_attr(CMS_SignerInfo *si, const char *oid, int type, const void *d, int len)
{
	ASN1_OBJECT *o = OBJ_txt2obj(oid, 1);
	int r = o != NULL && CMS_signed_add1_attr_by_OBJ(si, o, type, d, len) == 1 ? 0 : -1;

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

/* The PKCSReq: CSR enveloped to the RA (AES-256), signed with the device's self-signed cert. */
static int
pkcsreq(X509 *ra, EVP_PKEY *k, X509 *self, X509_REQ *csr, const char *txid, uint8_t **out,
    int *outlen)
{
	STACK_OF(X509) *rcpt = sk_X509_new_null();
	unsigned char *csrder = NULL, *envder = NULL, nonce[16];
	CMS_ContentInfo *env = NULL, *sd = NULL;
	CMS_SignerInfo *si;
	BIO *in = NULL, *envb = NULL;
	int n, envlen, ret = -1;

	n = i2d_X509_REQ(csr, &csrder);
	if (rcpt == NULL || n <= 0 || !sk_X509_push(rcpt, ra) || RAND_bytes(nonce, 16) != 1 ||
	    (in = BIO_new_mem_buf(csrder, n)) == NULL)
		goto out;
	env = CMS_encrypt(rcpt, in, EVP_aes_256_cbc(), CMS_BINARY);
	if (env == NULL || (envlen = i2d_CMS_ContentInfo(env, &envder)) <= 0 ||
	    (envb = BIO_new_mem_buf(envder, envlen)) == NULL)
		goto out;
	sd = CMS_sign(NULL, NULL, NULL, NULL, CMS_PARTIAL | CMS_BINARY);
	si = sd != NULL ? CMS_add1_signer(sd, self, k, EVP_sha256(), CMS_NOSMIMECAP) : NULL;
	if (si == NULL ||
	    add_attr(si, "2.16.840.1.113733.1.9.7", V_ASN1_PRINTABLESTRING, txid,
	    (int)strlen(txid)) == -1 ||
	    add_attr(si, "2.16.840.1.113733.1.9.2", V_ASN1_PRINTABLESTRING, "19", 2) == -1 ||
	    add_attr(si, "2.16.840.1.113733.1.9.5", V_ASN1_OCTET_STRING, nonce, 16) == -1 ||
	    CMS_final(sd, envb, NULL, CMS_BINARY) != 1 ||
	    (*outlen = i2d_CMS_ContentInfo(sd, out)) <= 0)
		goto out;
	ret = 0;
out:
	OPENSSL_free(csrder);
	OPENSSL_free(envder);
	BIO_free(in);
	BIO_free(envb);
	CMS_ContentInfo_free(env);
	CMS_ContentInfo_free(sd);
	sk_X509_free(rcpt);
	return ret;
}

/* Reads the CertRep: verified with the RA certificate, decrypted with the device key. */
static X509 *
certrep(const struct buf *b, X509 *ra, EVP_PKEY *k, X509 *self, char *why, size_t whylen)
{
	const unsigned char *p = b->p;
	CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long)b->n), *env = NULL,
	    *inner = NULL;
	STACK_OF(X509) *ras = sk_X509_new_null(), *certs = NULL;
	BIO *content = BIO_new(BIO_s_mem()), *dec = BIO_new(BIO_s_mem()), *empty = NULL;
	CMS_SignerInfo *si;
	const ASN1_STRING *s;
	BUF_MEM *bm;
	X509 *x = NULL;

	if (cms == NULL || ras == NULL || content == NULL || dec == NULL ||
	    !sk_X509_push(ras, ra)) {
		snprintf(why, whylen, "the reply is not a CertRep");
		goto out;
	}
	if (CMS_is_detached(cms))
		empty = BIO_new_mem_buf("", 0);
	if (CMS_verify(cms, ras, NULL, empty, content, CMS_NO_SIGNER_CERT_VERIFY |
	    CMS_BINARY) != 1) {
		snprintf(why, whylen, "the CertRep's signature does not verify with the RA "
		    "certificate");
		goto out;
	}
	si = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0);
	s = get_attr(si, "2.16.840.1.113733.1.9.3", V_ASN1_PRINTABLESTRING);
	if (s == NULL || ASN1_STRING_length(s) != 1 || ASN1_STRING_get0_data(s)[0] != '0') {
		const ASN1_STRING *t = get_attr(si, "1.3.6.1.5.5.7.24.1", V_ASN1_UTF8STRING);

		snprintf(why, whylen, "the CA answered pkiStatus %.*s%s%.*s",
		    s != NULL ? ASN1_STRING_length(s) : 1, s != NULL ?
		    (const char *)ASN1_STRING_get0_data(s) : "?", t != NULL ? ": " : "",
		    t != NULL ? ASN1_STRING_length(t) : 0, t != NULL ?
		    (const char *)ASN1_STRING_get0_data(t) : "");
		goto out;
	}
	BIO_get_mem_ptr(content, &bm);
	p = (const unsigned char *)bm->data;
	env = d2i_CMS_ContentInfo(NULL, &p, (long)bm->length);
	if (env == NULL || CMS_decrypt(env, k, self, NULL, dec, CMS_BINARY) != 1) {
		snprintf(why, whylen, "the CertRep cannot be decrypted with the device key");
		goto out;
	}
	BIO_get_mem_ptr(dec, &bm);
	p = (const unsigned char *)bm->data;
	inner = d2i_CMS_ContentInfo(NULL, &p, (long)bm->length);
	certs = inner != NULL ? CMS_get1_certs(inner) : NULL;
	for (int i = 0; certs != NULL && i < sk_X509_num(certs); i++)
		if (EVP_PKEY_eq(X509_get0_pubkey(sk_X509_value(certs, i)), k) == 1) {
			x = sk_X509_value(certs, i);
			X509_up_ref(x);
		}
	if (x == NULL)
		snprintf(why, whylen, "the CertRep holds no certificate for the device key");
out:
	ERR_clear_error();
	sk_X509_pop_free(certs, X509_free);
	sk_X509_free(ras);
	BIO_free(content);
	BIO_free(dec);
	BIO_free(empty);
	CMS_ContentInfo_free(inner);
	CMS_ContentInfo_free(env);
	CMS_ContentInfo_free(cms);
	return x;
}

static X509 *
self_signed(EVP_PKEY *k, X509_NAME *n)
{
	X509 *x = X509_new();

	if (x == NULL || X509_set_version(x, X509_VERSION_3) != 1 ||
	    ASN1_INTEGER_set(X509_get_serialNumber(x), 1) != 1 ||
	    X509_set_subject_name(x, n) != 1 || X509_set_issuer_name(x, n) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -300) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), 86400) == NULL ||
	    X509_set_pubkey(x, k) != 1 || X509_sign(x, k, EVP_sha256()) <= 0) {
		X509_free(x);
		return NULL;
	}
	return x;
}

int
dev_scep_demo(const char *config, const char *dir)
{
	struct cc_config cfg;
	struct cc_ca *ca = NULL;
	char url[256], op[400], ch[SCEP_CHALLENGE_LEN + 1], err[512], cn[64], txid[65];
	char ctype[128] = "", path[4200];
	struct buf b = { NULL, 0 };
	long status = 0;
	EVP_PKEY *k = NULL;
	X509 *self = NULL, *ra = NULL, *cert = NULL, *cacert;
	X509_REQ *csr = NULL;
	X509_NAME *name = NULL;
	STACK_OF(X509) *cacerts = NULL;
	uint8_t *msg = NULL, r[4];
	int msglen = 0, ret = 1;
	BIO *out = BIO_new_fp(stdout, BIO_NOCLOSE);

	if (ctl_ca_open(config, &cfg, &ca) == -1)
		return 1;
	cacert = cc_ca_cert(ca);
	printf("== SCEP enrollment of a device (profile onetime, one-time challenge)\n");
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/scep/onetime", (unsigned)cfg.net.port);
	RAND_bytes(r, sizeof(r));
	snprintf(cn, sizeof(cn), "demo-device-%02x%02x%02x%02x", r[0], r[1], r[2], r[3]);
	snprintf(op, sizeof(op), "CN=%s,O=certconn demo", cn);
	if (scep_challenge_new(ca, "onetime", op, 600, time(NULL), ch, err, sizeof(err)) == -1) {
		fprintf(stderr, "certconnctl: %s\n", err);
		goto out;
	}
	printf("  challenge   one-time, for %s, valid 10 minutes (certconnctl scep challenge)\n",
	    op);

	snprintf(op, sizeof(op), "%s?operation=GetCACaps", url);
	if (http(op, NULL, 0, &status, &b, ctype, sizeof(ctype)) == -1 || status != 200)
		goto httperr;
	for (char *c = (char *)b.p; c != NULL && *c != '\0'; c++)
		if (*c == '\n')
			*c = ' ';
	printf("  GetCACaps   %s\n", (char *)b.p);
	free(b.p);
	snprintf(op, sizeof(op), "%s?operation=GetCACert", url);
	if (http(op, NULL, 0, &status, &b, ctype, sizeof(ctype)) == -1 || status != 200)
		goto httperr;
	{
		const unsigned char *p = b.p;
		CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long)b.n);

		cacerts = cms != NULL ? CMS_get1_certs(cms) : NULL;
		CMS_ContentInfo_free(cms);
	}
	free(b.p);
	b.p = NULL;
	for (int i = 0; cacerts != NULL && i < sk_X509_num(cacerts); i++) {
		X509 *x = sk_X509_value(cacerts, i);

		if (X509_check_ca(x) == 0 && (X509_get_key_usage(x) & KU_KEY_ENCIPHERMENT) &&
		    (X509_get_key_usage(x) & KU_DIGITAL_SIGNATURE) && ra == NULL) {
			ra = x;
			X509_up_ref(ra);
		}
	}
	if (ra == NULL) {
		fprintf(stderr, "certconnctl: GetCACert gave no RA certificate\n");
		goto out;
	}
	X509_NAME_oneline(X509_get_subject_name(ra), err, sizeof(err));
	printf("  GetCACert   %d certificates (%s); the RA key is the ra role in the token\n",
	    sk_X509_num(cacerts), ctype);

	k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	name = X509_NAME_new();
	if (k == NULL || name == NULL ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (unsigned char *)cn, -1, -1,
	    0) != 1 || X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
	    (unsigned char *)"certconn demo", -1, -1, 0) != 1 ||
	    (self = self_signed(k, name)) == NULL || (csr = X509_REQ_new()) == NULL ||
	    X509_REQ_set_subject_name(csr, name) != 1 || X509_REQ_set_pubkey(csr, k) != 1 ||
	    X509_REQ_add1_attr_by_NID(csr, NID_pkcs9_challengePassword, MBSTRING_UTF8,
	    (unsigned char *)ch, -1) != 1 || X509_REQ_sign(csr, k, EVP_sha256()) <= 0) {
		fprintf(stderr, "certconnctl: cannot make the device's key and request\n");
		goto out;
	}
	{
		unsigned char *spki = NULL, md[32];
		int n = i2d_PUBKEY(k, &spki);

		EVP_Digest(spki, (size_t)n, md, NULL, EVP_sha256(), NULL);
		OPENSSL_free(spki);
		for (int i = 0; i < 32; i++)
			snprintf(txid + 2 * i, 3, "%02x", md[i]);
	}
	if (pkcsreq(ra, k, self, csr, txid, &msg, &msglen) == -1) {
		fprintf(stderr, "certconnctl: cannot build the PKCSReq\n");
		goto out;
	}
	snprintf(op, sizeof(op), "%s?operation=PKIOperation", url);
	if (http(op, msg, (size_t)msglen, &status, &b, ctype, sizeof(ctype)) == -1 ||
	    status != 200)
		goto httperr;
	printf("  PKCSReq     RSA-2048 device key, AES-256 envelope, transaction %.16s...\n", txid);
	cert = certrep(&b, ra, k, self, err, sizeof(err));
	if (cert == NULL) {
		fprintf(stderr, "certconnctl: %s\n", err);
		goto out;
	}
	{
		X509_STORE *st = X509_STORE_new();
		X509_STORE_CTX *vc = X509_STORE_CTX_new();
		int ok;

		X509_STORE_add_cert(st, cacert);
		X509_STORE_CTX_init(vc, st, cert, NULL);
		ok = X509_verify_cert(vc) == 1;
		X509_STORE_CTX_free(vc);
		X509_STORE_free(st);
		printf("  CertRep     SUCCESS, signed by the RA; the certificate %s against the "
		    "local CA\n", ok ? "verifies" : "does NOT verify");
		if (!ok)
			goto out;
	}
	printf("== the device's certificate\n");
	X509_print_ex(out, cert, XN_FLAG_ONELINE, X509_FLAG_NO_PUBKEY | X509_FLAG_NO_SIGDUMP |
	    X509_FLAG_NO_HEADER);
	PEM_write_bio_X509(out, cert);
	snprintf(path, sizeof(path), "%s/demo-device.pem", dir);
	{
		FILE *f = fopen(path, "w");

		if (f != NULL) {
			PEM_write_X509(f, cert);
			fclose(f);
			printf("  (also in %s; see it with certconnctl ca list)\n", path);
		}
	}
	ret = 0;
	goto out;
httperr:
	fprintf(stderr, "certconnctl: %s: HTTP %ld\n", op, status);
out:
	OPENSSL_cleanse(ch, sizeof(ch));
	BIO_free(out);
	free(b.p);
	OPENSSL_free(msg);
	X509_NAME_free(name);
	X509_REQ_free(csr);
	X509_free(self);
	X509_free(cert);
	X509_free(ra);
	sk_X509_pop_free(cacerts, X509_free);
	EVP_PKEY_free(k);
	ctl_ca_close(&cfg, ca);
	return ret;
}
