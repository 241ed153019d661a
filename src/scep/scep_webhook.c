/*
 * The webhook challenge: an HMAC-SHA256-signed POST to a configured URL that answers allow or
 * deny. Request body (JSON): {"transactionId", "profile", "subject", "certificateRequest"
 * (base64 DER), "callerInfo", "timestamp"}; header "X-Certconn-Signature: t=<unix>,v1=<hex>"
 * where v1 = HMAC-SHA256(secret, "<t>.<body>") (the timestamp lets the receiver refuse
 * replays). The answer must be HTTP 200 with {"allow": true}; anything else, a timeout
 * included, is a denial ({"allow": false, "reason": "..."} gives the reason).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "certconn/util.h"
#include "scep_int.h"

#define WEBHOOK_REPLY_MAX 8192

struct reply_buf {
	char buf[WEBHOOK_REPLY_MAX + 1];
	size_t n;
};

static size_t
write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct reply_buf *b = arg;
	size_t add = size * nmemb;

	if (b->n + add > WEBHOOK_REPLY_MAX)
		return 0; /* too long: the transfer fails, which denies */
	memcpy(b->buf + b->n, data, add);
	b->n += add;
	b->buf[b->n] = '\0';
	return add;
}

int
scep_webhook_sign(const uint8_t *secret, size_t secret_len, time_t t, const char *body,
    char *out, size_t outlen)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	char ts[32];
	EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *c = m != NULL ? EVP_MAC_CTX_new(m) : NULL;
	OSSL_PARAM params[2] = {
		OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	size_t ml = 0;
	int n, r = -1;

	snprintf(ts, sizeof(ts), "%lld", (long long)t);
	if (c == NULL || EVP_MAC_init(c, secret, secret_len, params) != 1 ||
	    EVP_MAC_update(c, (const unsigned char *)ts, strlen(ts)) != 1 ||
	    EVP_MAC_update(c, (const unsigned char *)".", 1) != 1 ||
	    EVP_MAC_update(c, (const unsigned char *)body, strlen(body)) != 1 ||
	    EVP_MAC_final(c, mac, &ml, sizeof(mac)) != 1)
		goto out;
	maclen = (unsigned int)ml;
	n = snprintf(out, outlen, "t=%s,v1=", ts);
	if (n < 0 || (size_t)n + maclen * 2 + 1 > outlen)
		goto out;
	for (unsigned int i = 0; i < maclen; i++)
		snprintf(out + n + 2 * i, 3, "%02x", mac[i]);
	r = 0;
out:
	OPENSSL_cleanse(mac, sizeof(mac));
	EVP_MAC_CTX_free(c);
	EVP_MAC_free(m);
	return r;
}

int
scep_webhook_check(const char *url, const uint8_t *secret, size_t secret_len,
    uint32_t timeout_ms, const char *profile, const char *txid, const char *subject,
    const uint8_t *csr, size_t csr_len, const char *peer, char *why, size_t whylen)
{
	cJSON *req = cJSON_CreateObject(), *ans = NULL, *allow, *reason;
	char *b64 = malloc(csr_len * 4 / 3 + 8), *body = NULL, caller[128];
	char sighdr[160], hdr[200];
	struct reply_buf *rb = calloc(1, sizeof(*rb));
	struct curl_slist *h = NULL;
	CURL *c = NULL;
	CURLcode rc;
	long status = 0;
	time_t now = time(NULL);
	int r = -1;

	if (req == NULL || b64 == NULL || rb == NULL) {
		snprintf(why, whylen, "out of memory");
		goto out;
	}
	EVP_EncodeBlock((unsigned char *)b64, csr, (int)csr_len);
	snprintf(caller, sizeof(caller), "certconn/%s peer=%s", CC_VERSION,
	    peer != NULL ? peer : "-");
	if (cJSON_AddStringToObject(req, "transactionId", txid) == NULL ||
	    cJSON_AddStringToObject(req, "profile", profile) == NULL ||
	    cJSON_AddStringToObject(req, "subject", subject) == NULL ||
	    cJSON_AddStringToObject(req, "certificateRequest", b64) == NULL ||
	    cJSON_AddStringToObject(req, "callerInfo", caller) == NULL ||
	    cJSON_AddNumberToObject(req, "timestamp", (double)now) == NULL ||
	    (body = cJSON_PrintUnformatted(req)) == NULL ||
	    scep_webhook_sign(secret, secret_len, now, body, sighdr, sizeof(sighdr)) == -1) {
		snprintf(why, whylen, "cannot build the webhook request");
		goto out;
	}
	snprintf(hdr, sizeof(hdr), "X-Certconn-Signature: %s", sighdr);
	h = curl_slist_append(h, "Content-Type: application/json");
	h = curl_slist_append(h, hdr);
	c = curl_easy_init();
	if (c == NULL || h == NULL) {
		snprintf(why, whylen, "cannot set up the webhook request");
		goto out;
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, rb);
	rc = curl_easy_perform(c);
	if (rc != CURLE_OK) {
		snprintf(why, whylen, "webhook %s: %s", url, curl_easy_strerror(rc));
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		snprintf(why, whylen, "webhook answered HTTP %ld", status);
		goto out;
	}
	ans = cJSON_Parse(rb->buf);
	allow = ans != NULL ? cJSON_GetObjectItemCaseSensitive(ans, "allow") : NULL;
	reason = ans != NULL ? cJSON_GetObjectItemCaseSensitive(ans, "reason") : NULL;
	if (!cJSON_IsBool(allow)) {
		snprintf(why, whylen, "webhook answer has no \"allow\"");
		goto out;
	}
	if (!cJSON_IsTrue(allow)) {
		snprintf(why, whylen, "denied by the webhook%s%.200s",
		    cJSON_IsString(reason) ? ": " : "", cJSON_IsString(reason) ?
		    reason->valuestring : "");
		goto out;
	}
	r = 0;
out:
	cJSON_Delete(req);
	cJSON_Delete(ans);
	free(b64);
	if (body != NULL)
		cJSON_free(body);
	free(rb);
	curl_slist_free_all(h);
	if (c != NULL)
		curl_easy_cleanup(c);
	return r;
}
