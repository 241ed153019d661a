/*
 * Registration with a certconn-hub (docs/protocol.md section 5), for `certconnctl register`
 * and `certconnctl dev up`: a CSR for the client key (signed by the caller's signer: the
 * administrator's tool signs in the token directly), the one-time enrollment token, and the
 * certificate written where net will find it. Blocking (libcurl's easy interface): it runs
 * outside certconnd.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "certconn/config_service.h"
#include "certconn/service.h"
#include "certconn/util.h"
#include "svc.h"

static int
fail(struct service_register_params *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
fail(struct service_register_params *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->error, sizeof(p->error), fmt, ap);
	va_end(ap);
	return -1;
}

/* A CSR for p->pub signed through p->sign (SHA-256). base64 DER, malloc'd. */
static char *
build_csr(struct service_register_params *p)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *n = X509_NAME_new();
	X509_ALGOR *alg = X509_ALGOR_new();
	ASN1_BIT_STRING *bs = NULL;
	unsigned char *tbs = NULL, *der = NULL, dg[32];
	unsigned int dglen = 0;
	uint8_t *sig = NULL;
	size_t siglen = 0;
	char *out = NULL;
	int len, rsa = EVP_PKEY_is_a(p->pub, "RSA");

	if (req == NULL || n == NULL || alg == NULL ||
	    !X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
	    (const unsigned char *)"certconn connector", -1, -1, 0) ||
	    !X509_REQ_set_subject_name(req, n) || !X509_REQ_set_pubkey(req, p->pub) ||
	    !X509_ALGOR_set0(alg, OBJ_nid2obj(rsa ? NID_sha256WithRSAEncryption :
	    NID_ecdsa_with_SHA256), rsa ? V_ASN1_NULL : V_ASN1_UNDEF, NULL))
		goto ossl;
	len = i2d_re_X509_REQ_tbs(req, &tbs);
	if (len <= 0 || !EVP_Digest(tbs, (size_t)len, dg, &dglen, EVP_sha256(), NULL))
		goto ossl;
	if (p->sign(p->sign_arg, dg, dglen, &sig, &siglen) == -1) {
		fail(p, "the client key did not sign the certificate request");
		goto out;
	}
	bs = ASN1_BIT_STRING_new();
	if (bs == NULL || !ASN1_BIT_STRING_set(bs, sig, (int)siglen))
		goto ossl;
	/* No unused bits (a signature is whole bytes): without the flag OpenSSL would count a
	 * last byte's trailing zero bits as unused. */
	bs->flags &= ~0x07L;
	bs->flags |= ASN1_STRING_FLAG_BITS_LEFT;
	X509_REQ_set0_signature(req, bs);
	bs = NULL;
	if (!X509_REQ_set1_signature_algo(req, alg))
		goto ossl;
	if (X509_REQ_verify(req, p->pub) != 1) {
		fail(p, "the client key's signature on the certificate request does not verify");
		goto out;
	}
	len = i2d_X509_REQ(req, &der);
	if (len <= 0)
		goto ossl;
	out = malloc((size_t)(len + 2) / 3 * 4 + 1);
	if (out != NULL)
		EVP_EncodeBlock((unsigned char *)out, der, len);
	goto out;
ossl:
	fail(p, "building the certificate request failed");
out:
	ERR_clear_error();
	ASN1_BIT_STRING_free(bs);
	OPENSSL_free(tbs);
	OPENSSL_free(der);
	free(sig);
	X509_ALGOR_free(alg);
	X509_NAME_free(n);
	X509_REQ_free(req);
	return out;
}

struct buf {
	char *p;
	size_t n;
};

static size_t
write_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct buf *b = arg;
	size_t add = size * nmemb;
	char *np;

	if (b->n + add > SVC_RESP_MAX)
		return 0;
	np = realloc(b->p, b->n + add + 1);
	if (np == NULL)
		return 0;
	memcpy(np + b->n, ptr, add);
	b->p = np;
	b->n += add;
	b->p[b->n] = '\0';
	return add;
}

/* Writes base64 DER certificate b64 as PEM to path (mode 0644, via a temporary file). */
static int
write_pem(struct service_register_params *p, const char *path, const char *b64, X509 **keep)
{
	unsigned char *der = malloc(strlen(b64) + 1);
	const unsigned char *q;
	char tmp[4200];
	X509 *x = NULL;
	FILE *f = NULL;
	int n, fd, ok = 0;

	if (der == NULL)
		return fail(p, "out of memory");
	n = EVP_DecodeBlock(der, (const unsigned char *)b64, (int)strlen(b64));
	q = der;
	if (n > 0)
		x = d2i_X509(NULL, &q, n);
	free(der);
	if (x == NULL)
		return fail(p, "the hub's certificate does not decode");
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	f = fd != -1 ? fdopen(fd, "w") : NULL;
	if (f != NULL)
		ok = PEM_write_X509(f, x) && fflush(f) == 0 && fsync(fileno(f)) == 0;
	else if (fd != -1)
		close(fd);
	if (f == NULL || fclose(f) != 0 || !ok || rename(tmp, path) == -1) {
		unlink(tmp);
		X509_free(x);
		return fail(p, "cannot write %s: %s", path, strerror(errno));
	}
	if (keep != NULL)
		*keep = x;
	else
		X509_free(x);
	return 0;
}

int
service_register(struct service_register_params *p)
{
	cJSON *body = NULL, *reg, *feats, *resp = NULL;
	const cJSON *v, *e;
	struct curl_slist *h = NULL;
	struct buf b = { NULL, 0 };
	char url[2048], crid[37], hdr[128], *csr = NULL, *text = NULL;
	long status = 0;
	CURL *c = NULL;
	CURLcode rc;
	X509 *cert = NULL;
	int ret = -1;

	p->error[0] = p->connector_id[0] = p->tenant_id[0] = '\0';
	if (p->hub_url == NULL || strncmp(p->hub_url, "https://", 8) != 0)
		return fail(p, "the hub URL must be https://");
	if (p->token == NULL || p->token[0] == '\0' || strlen(p->token) > 128)
		return fail(p, "no usable enrollment token");
	csr = build_csr(p);
	if (csr == NULL)
		goto out;
	body = cJSON_CreateObject();
	reg = cJSON_AddObjectToObject(body, "registration");
	cJSON_AddStringToObject(reg, "enrollmentToken", p->token);
	cJSON_AddStringToObject(reg, "certificateRequest", csr);
	if (p->connector_name != NULL)
		cJSON_AddStringToObject(reg, "connectorName", p->connector_name);
	cJSON_AddStringToObject(reg, "version", p->version != NULL ? p->version : CC_VERSION);
	feats = cJSON_AddArrayToObject(reg, "features");
	for (uint32_t bit = 1; bit <= CC_FEATURE_SCEP; bit <<= 1)
		if (p->features & bit)
			cJSON_AddItemToArray(feats, cJSON_CreateString(cc_service_feature_name(bit)));
	text = cJSON_PrintUnformatted(body);
	if (text == NULL) {
		fail(p, "out of memory");
		goto out;
	}
	snprintf(url, sizeof(url), "%s/api/Registration/register", p->hub_url);
	svc_uuid(crid);
	snprintf(hdr, sizeof(hdr), "client-request-id: %s", crid);
	h = curl_slist_append(h, hdr);
	h = curl_slist_append(h, "api-version: 1.0");
	h = curl_slist_append(h, "Content-Type: application/json");
	h = curl_slist_append(h, "Expect:");
	c = curl_easy_init();
	if (c == NULL || h == NULL) {
		fail(p, "libcurl does not initialise");
		goto out;
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, text);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(c, CURLOPT_PROXY, "");
	if (p->ca_file != NULL)
		curl_easy_setopt(c, CURLOPT_CAINFO, p->ca_file);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "certconnctl/" CC_VERSION);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	rc = curl_easy_perform(c);
	if (rc != CURLE_OK) {
		fail(p, "%s: %s", url, curl_easy_strerror(rc));
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	resp = b.p != NULL ? cJSON_Parse(b.p) : NULL;
	if (status != 201) {
		e = cJSON_GetObjectItemCaseSensitive(resp, "error");
		fail(p, "the hub refused the registration: HTTP %ld %s: %s [%s]", status,
		    cJSON_IsString(cJSON_GetObjectItem(e, "code")) ?
		    cJSON_GetObjectItem(e, "code")->valuestring : "",
		    cJSON_IsString(cJSON_GetObjectItem(e, "message")) ?
		    cJSON_GetObjectItem(e, "message")->valuestring : "(no message)", crid);
		goto out;
	}
	v = cJSON_GetObjectItemCaseSensitive(resp, "value");
	if (!cJSON_IsString(cJSON_GetObjectItem(v, "certificate")) ||
	    !cJSON_IsString(cJSON_GetObjectItem(v, "connectorId"))) {
		fail(p, "the hub's answer has no certificate");
		goto out;
	}
	if (write_pem(p, p->cert_out, cJSON_GetObjectItem(v, "certificate")->valuestring,
	    &cert) == -1)
		goto out;
	if (X509_check_private_key(cert, p->pub) != 1 &&
	    EVP_PKEY_eq(X509_get0_pubkey(cert), p->pub) != 1) {
		unlink(p->cert_out);
		fail(p, "the hub's certificate is not for the client key");
		goto out;
	}
	if (p->hub_ca_out != NULL) {
		const cJSON *cas = cJSON_GetObjectItemCaseSensitive(v, "caCertificates");
		const cJSON *ca0 = cJSON_GetArrayItem(cas, 0);

		if (cJSON_IsString(ca0) && write_pem(p, p->hub_ca_out, ca0->valuestring, NULL) == -1)
			goto out;
	}
	snprintf(p->connector_id, sizeof(p->connector_id), "%s",
	    cJSON_GetObjectItem(v, "connectorId")->valuestring);
	if (cJSON_IsString(cJSON_GetObjectItem(v, "tenantId")))
		snprintf(p->tenant_id, sizeof(p->tenant_id), "%s",
		    cJSON_GetObjectItem(v, "tenantId")->valuestring);
	ret = 0;
out:
	ERR_clear_error();
	X509_free(cert);
	cJSON_Delete(resp);
	cJSON_Delete(body);
	free(b.p);
	free(csr);
	free(text);
	curl_slist_free_all(h);
	if (c != NULL)
		curl_easy_cleanup(c);
	return ret;
}
