/*
 * PKCS re-encrypt (`pkcs-recrypt`): a kept copy of an earlier pkcs delivery (a CMS envelope
 * to the connector's pfx role) is opened, only its key transport running in keys (the
 * content is decrypted here in net), and the same key and certificate are delivered to
 * another device under a fresh password (flows_deliver.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "certconn/event.h"
#include "certconn/flows.h"
#include "certconn/log.h"
#include "flows_int.h"

struct open_step {
	const struct flows_env *env;
	const struct flows_recrypt_req *rq;
	uint8_t *plain;              /* out */
	size_t plain_len;
};

static int32_t
open_step(void *arg, bool *retry, char *why, size_t whylen)
{
	struct open_step *s = arg;
	int e;

	e = flows_c_open(s->env->pfx_key, s->rq->payload,
	    s->rq->payload_len, &s->plain, &s->plain_len);
	if (e != FLOWS_C_OK) {
		snprintf(why, whylen, "encryptedPayload: %s", flows_c_strerror(e));
		return flows_c_code(e, retry);
	}
	return FLOWS_OK;
}

/* {"version": 1, "pfx": base64, "password": string}: what flows_deliver keeps. */
static int32_t
read_copy(const uint8_t *plain, size_t len, uint8_t **pfx, size_t *pfx_len, char **password,
    char *why, size_t whylen)
{
	cJSON *o = cJSON_ParseWithLength((const char *)plain, len);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "version");
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "pfx");
	const cJSON *pw = cJSON_GetObjectItemCaseSensitive(o, "password");
	/* What decrypted under the pfx key but is not a kept copy was tampered with (or made
	 * for someone else): a cryptographic failure, as a decryption failure is. */
	int32_t code = FLOWS_E_CRYPTO;

	*pfx = NULL;
	*password = NULL;
	if (o == NULL || !cJSON_IsNumber(v) || v->valuedouble != 1 || !cJSON_IsString(p) ||
	    !cJSON_IsString(pw) || pw->valuestring == NULL) {
		snprintf(why, whylen, "encryptedPayload: not a kept copy of this connector's "
		    "(version 1)");
		goto out;
	}
	if (flows_b64_decode(p->valuestring, FLOWS_PAYLOAD_MAX, pfx, pfx_len) == -1) {
		snprintf(why, whylen, "encryptedPayload: the kept PKCS#12 is not valid base64");
		goto out;
	}
	*password = strdup(pw->valuestring);
	if (*password == NULL) {
		free(*pfx);
		*pfx = NULL;
		code = FLOWS_E_RETRYABLE;
		snprintf(why, whylen, "out of memory");
		goto out;
	}
	code = FLOWS_OK;
out:
	flows_json_wipe_delete(o);
	return code;
}

void
flow_recrypt_run(const struct flows_env *env, struct flows_job *j)
{
	const struct flows_events *ev = flows_events_of(FLOWS_RECRYPT);
	struct flows_recrypt_req rq;
	struct open_step os = { .env = env, .rq = &rq };
	struct flows_delivery dl;
	struct flows_cert_facts facts;
	uint8_t *pfx = NULL;
	size_t pfx_len = 0;
	char *password = NULL;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	STACK_OF(X509) *chain = NULL;
	cJSON *result = NULL;
	char why[768] = "", code_s[16];
	bool retry = false, decrypted = false;
	int32_t code;
	int e;

	code = flows_parse_recrypt(j->payload, &rq, why, sizeof(why));
	if (code != FLOWS_OK)
		goto fail;
	if (env->pfx_key == NULL) {
		code = FLOWS_E_NOT_SUPPORTED;
		snprintf(why, sizeof(why), "this connector has no pfx key");
		goto fail;
	}
	code = flows_retry(env, j, "decrypt", open_step, &os, why, sizeof(why));
	if (code == FLOWS_OK)
		code = read_copy(os.plain, os.plain_len, &pfx, &pfx_len, &password, why,
		    sizeof(why));
	if (code == FLOWS_OK) {
		e = flows_c_p12_open(pfx, pfx_len, password, &key, &cert, &chain);
		if (e != FLOWS_C_OK) {
			code = flows_c_code(e, &retry);
			snprintf(why, sizeof(why), "the kept PKCS#12: %s", flows_c_strerror(e));
		}
	}
	if (code != FLOWS_OK) {
		snprintf(code_s, sizeof(code_s), "%d", (int)code);
		cc_log_warn("flows: pkcs-recrypt %s: %s", j->id, why);
		cc_event_emit(CC_EV_PKCS_RECRYPT_DECRYPT_FAILURE, j->corr, "requestId", j->id,
		    "deviceId", rq.device_id, "errorCode", code_s, "errorName",
		    flows_code_name(code), "reason", why, NULL);
		flows_fail(j, code, "%s", why);
		goto out;
	}
	decrypted = true;
	if (flows_cert_facts(cert, &facts) == 0)
		cc_event_emit(CC_EV_PKCS_RECRYPT_DECRYPT_SUCCESS, j->corr, "requestId", j->id,
		    "deviceId", rq.device_id, "serialNumber", facts.serial,
		    "certificateThumbprint", facts.thumbprint, NULL);
	dl = (struct flows_delivery){ .key = key, .cert = cert, .chain = chain,
		.device = &rq.device };
	code = flows_deliver(env, &dl, &result, &retry, why, sizeof(why));
	if (code != FLOWS_OK)
		goto fail;
	cc_event_emit(ev->ok, j->corr, "requestId", j->id, "deviceId", rq.device_id,
	    "serialNumber", facts.serial, "certificateThumbprint", facts.thumbprint, NULL);
	flows_succeed(j, result);
	result = NULL;
	goto out;
fail:
	snprintf(code_s, sizeof(code_s), "%d", (int)code);
	cc_log_warn("flows: pkcs-recrypt %s: %s", j->id, why);
	/* A payload refused before anything was decrypted is a failure to re-encrypt too. */
	cc_event_emit(ev->fail, j->corr, "requestId", j->id, "deviceId", rq.device_id,
	    "decrypted", decrypted ? "true" : "false", "errorCode", code_s, "errorName",
	    flows_code_name(code), "reason", why, NULL);
	flows_fail(j, code, "%s", why);
out:
	if (os.plain != NULL) {
		OPENSSL_cleanse(os.plain, os.plain_len);
		free(os.plain);
	}
	if (pfx != NULL) {
		OPENSSL_cleanse(pfx, pfx_len);
		free(pfx);
	}
	if (password != NULL) {
		OPENSSL_cleanse(password, strlen(password));
		free(password);
	}
	cJSON_Delete(result);
	EVP_PKEY_free(key);
	X509_free(cert);
	sk_X509_pop_free(chain, X509_free);
	flows_recrypt_req_free(&rq);
}
