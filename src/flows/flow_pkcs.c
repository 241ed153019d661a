/*
 * PKCS certificates (`pkcs`): a key pair for the device (from the key pool), a CSR, a
 * certificate from the local CA under the profile's issuance rules, a PKCS#12 under a random
 * password, delivered as CMS envelopes to the device's key (flows_deliver.c).
 *
 * The CA is asked at most once per request, also across a crash: before it is asked, an
 * idempotency record keyed by the request id holds the CSR and the device's private key
 * (PKCS#8) sealed to the connector's pfx role key; the certificate joins the record as soon
 * as the CA answered. A request leased again finds the record: with a certificate it is
 * delivered again from the record (the private key opened through keys), without one the
 * CA's store is asked whether it issued for that subject and key before anything is issued.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "certconn/ca.h"
#include "certconn/event.h"
#include "certconn/flows.h"
#include "certconn/issuance.h"
#include "certconn/log.h"
#include "flows_int.h"

struct issue_step {
	const struct flows_env *env;
	const struct cc_flows_profile *prof;
	const char *id;
	X509_REQ *csr;
	X509 *cert;                  /* out */
	bool refused;
};

static int32_t
issue_step(void *arg, bool *retry, char *why, size_t whylen)
{
	struct issue_step *s = arg;
	struct cc_iss_result r;
	char err[512];

	*retry = false;
	memset(&r, 0, sizeof(r));
	if (cc_issuance_apply(&s->prof->issuance, s->csr, time(NULL), &r, err,
	    sizeof(err)) == -1) {
		s->refused = true;
		snprintf(why, whylen, "profile %s: %s", s->prof->name, err);
		return FLOWS_E_PARAMETER;
	}
	if (cc_ca_issue(s->env->ca, &r, s->prof->name, s->id, false, &s->cert, err,
	    sizeof(err)) == -1) {
		cc_iss_result_free(&r);
		*retry = true;
		snprintf(why, whylen, "CA unavailable: %s", err);
		return FLOWS_E_UNAVAILABLE;
	}
	cc_iss_result_free(&r);
	return FLOWS_OK;
}

/* The device key of an idempotency record, opened through keys. */
struct open_step {
	const struct flows_env *env;
	const uint8_t *der;
	size_t len;
	EVP_PKEY *key;               /* out */
};

static int32_t
open_key_step(void *arg, bool *retry, char *why, size_t whylen)
{
	struct open_step *s = arg;
	uint8_t *p8 = NULL;
	size_t p8_len = 0;
	const unsigned char *p;
	int e;

	e = flows_c_open(s->env->pfx_key, s->der, s->len, &p8, &p8_len);
	if (e != FLOWS_C_OK) {
		snprintf(why, whylen, "opening the recorded device key: %s", flows_c_strerror(e));
		return flows_c_code(e, retry);
	}
	p = p8;
	s->key = d2i_AutoPrivateKey(NULL, &p, (long)p8_len);
	OPENSSL_cleanse(p8, p8_len);
	free(p8);
	*retry = false;
	if (s->key == NULL) {
		snprintf(why, whylen, "the recorded device key does not decode");
		return FLOWS_E_CRYPTO;
	}
	return FLOWS_OK;
}

/* The device key as PKCS#8, sealed to the pfx role: what the record keeps. */
static int32_t
seal_key(const struct flows_env *env, EVP_PKEY *key, uint8_t **out, size_t *outlen,
    bool *retry, char *why, size_t whylen)
{
	unsigned char *p8 = NULL;
	int n = 0, e;
	PKCS8_PRIV_KEY_INFO *pi = EVP_PKEY2PKCS8(key);

	*retry = false;
	if (pi == NULL || (n = i2d_PKCS8_PRIV_KEY_INFO(pi, &p8)) <= 0) {
		PKCS8_PRIV_KEY_INFO_free(pi);
		snprintf(why, whylen, "the device key cannot be encoded");
		return FLOWS_E_CRYPTO;
	}
	PKCS8_PRIV_KEY_INFO_free(pi);
	e = flows_c_seal(env->pfx_cert, env->pfx_cert == NULL ? env->pfx_pub : NULL, p8,
	    (size_t)n, out, outlen);
	OPENSSL_cleanse(p8, (size_t)n);
	OPENSSL_free(p8);
	if (e != FLOWS_C_OK) {
		snprintf(why, whylen, "sealing the device key to the pfx role: %s",
		    flows_c_strerror(e));
		return flows_c_code(e, retry);
	}
	return FLOWS_OK;
}

void
flow_pkcs_run(const struct flows_env *env, struct flows_job *j)
{
	const struct flows_events *ev = flows_events_of(FLOWS_PKCS);
	const struct cc_flows_profile *prof = NULL;
	struct flows_pkcs_req rq;
	struct flows_idem rec;
	struct issue_step is = { .env = env, .id = j->id };
	struct open_step os = { .env = env };
	struct flows_delivery dl;
	struct flows_cert_facts facts;
	X509_NAME *subject = NULL;
	GENERAL_NAMES *sans = NULL;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	STACK_OF(X509) *chain = NULL;
	cJSON *result = NULL;
	const char *step = "payload";
	char why[768] = "", err[512], code_s[16];
	bool pooled = false, retry = false, from_record = false;
	int32_t code;
	int spec, r;

	memset(&rec, 0, sizeof(rec));
	code = flows_parse_pkcs(j->payload, &rq, why, sizeof(why));
	if (code != FLOWS_OK)
		goto fail;
	if (env->ca == NULL || env->pfx_pub == NULL) {
		code = FLOWS_E_NOT_SUPPORTED;
		snprintf(why, sizeof(why), "this connector has no local CA or no pfx key");
		goto fail;
	}
	prof = rq.profile[0] != '\0' ? cc_config_flows_profile(env->conf, rq.profile) :
	    env->conf->nprofiles > 0 ? &env->conf->profiles[env->conf->default_profile] : NULL;
	if (prof == NULL) {
		code = FLOWS_E_PARAMETER;
		snprintf(why, sizeof(why), "payload.profile: no pkcs profile is called \"%s\"",
		    rq.profile);
		goto fail;
	}
	spec = prof->key;
	if (rq.keyspec != -1 && rq.keyspec != prof->key) {
		if (!prof->allow_key_override) {
			code = FLOWS_E_PARAMETER;
			snprintf(why, sizeof(why), "payload.keySpec: profile %s allows %s only",
			    prof->name, cc_flows_keyspec_name(prof->key));
			goto fail;
		}
		spec = rq.keyspec;
	}
	is.prof = prof;

	/* A record from an earlier lease of this request: never ask the CA twice. */
	step = "record";
	r = flows_idem_get(env->store, j->id, &rec, err, sizeof(err));
	if (r == -1) {
		code = FLOWS_E_UNAVAILABLE;
		snprintf(why, sizeof(why), "%s", err);
		goto fail;
	}
	if (r == 1) {
		const unsigned char *p = rec.csr;

		from_record = true;
		os.der = rec.enc_key;
		os.len = rec.enc_key_len;
		code = flows_retry(env, j, "open recorded key", open_key_step, &os, why,
		    sizeof(why));
		if (code != FLOWS_OK)
			goto fail;
		key = os.key;
		is.csr = d2i_X509_REQ(NULL, &p, (long)rec.csr_len);
		if (is.csr == NULL) {
			code = FLOWS_E_CRYPTO;
			snprintf(why, sizeof(why), "the recorded CSR does not decode");
			goto fail;
		}
		if (rec.cert != NULL) {
			p = rec.cert;
			cert = d2i_X509(NULL, &p, (long)rec.cert_len);
		} else if (cc_ca_find_by_subject_key(env->ca, X509_REQ_get_subject_name(is.csr),
		    key, time(NULL), &cert, err, sizeof(err)) == -1)
			cc_log_warn("flows: pkcs %s: %s", j->id, err);
		cc_log_info("flows: pkcs %s: resumed from its idempotency record (%s)", j->id,
		    cert != NULL ? "certificate already issued" : "not issued yet");
	} else {
		uint8_t *der = NULL;
		int n;

		step = "key";
		key = flows_keypool_take(env->pool, spec, &pooled);
		if (key == NULL) {
			code = FLOWS_E_RETRYABLE;
			snprintf(why, sizeof(why), "generating a %s key failed",
			    cc_flows_keyspec_name(spec));
			goto fail;
		}
		step = "csr";
		subject = flows_subject_build(&rq, why, sizeof(why));
		if (subject == NULL) {
			code = FLOWS_E_PARAMETER;
			goto fail;
		}
		if (rq.nsan > 0 && (sans = flows_sans_build(&rq, why, sizeof(why))) == NULL) {
			code = FLOWS_E_PARAMETER;
			goto fail;
		}
		is.csr = flows_csr_build(key, subject, sans, why, sizeof(why));
		if (is.csr == NULL) {
			code = FLOWS_E_CRYPTO;
			goto fail;
		}
		step = "record";
		if ((n = i2d_X509_REQ(is.csr, &der)) <= 0) {
			code = FLOWS_E_CRYPTO;
			snprintf(why, sizeof(why), "the CSR cannot be encoded");
			goto fail;
		}
		snprintf(rec.request_id, sizeof(rec.request_id), "%s", j->id);
		rec.csr = malloc((size_t)n);
		if (rec.csr == NULL) {
			OPENSSL_free(der);
			code = FLOWS_E_RETRYABLE;
			snprintf(why, sizeof(why), "out of memory");
			goto fail;
		}
		memcpy(rec.csr, der, (size_t)n);
		rec.csr_len = (size_t)n;
		OPENSSL_free(der);
		code = seal_key(env, key, &rec.enc_key, &rec.enc_key_len, &retry, why, sizeof(why));
		if (code != FLOWS_OK)
			goto fail;
		if (flows_idem_put(env->store, &rec, err, sizeof(err)) == -1) {
			code = FLOWS_E_UNAVAILABLE;
			snprintf(why, sizeof(why), "%s", err);
			goto fail;
		}
	}

	if (cert == NULL) {
		unsigned char *der = NULL;
		int n;

		step = "issue";
		code = flows_retry(env, j, "issue", issue_step, &is, why, sizeof(why));
		if (code != FLOWS_OK)
			goto fail;
		cert = is.cert;
		is.cert = NULL;
		n = i2d_X509(cert, &der);
		if (n <= 0 || flows_idem_set_cert(env->store, j->id, der, (size_t)n, err,
		    sizeof(err)) == -1)
			cc_log_err("flows: pkcs %s: the certificate is issued but not recorded: %s",
			    j->id, n <= 0 ? "encoding" : err);
		OPENSSL_free(der);
	}
	/* The key must be the certificate's (a record of another key is not delivered). */
	if (X509_check_private_key(cert, key) != 1) {
		code = FLOWS_E_CRYPTO;
		step = "issue";
		snprintf(why, sizeof(why), "the certificate does not match the device key");
		goto fail;
	}
	if (flows_cert_facts(cert, &facts) == 0)
		cc_event_emit(ev->ok, j->corr, "requestId", j->id, "deviceId", rq.device_id,
		    "serialNumber", facts.serial, "certificateThumbprint", facts.thumbprint,
		    "subjectName", facts.subject, "notAfterUtc", facts.not_after, "profile",
		    prof->name, "keySpec", cc_flows_keyspec_name(spec), "keyFromPool",
		    pooled ? "true" : "false", "fromRecord", from_record ? "true" : "false", NULL);

	step = "deliver";
	chain = sk_X509_new_null();
	if (chain == NULL || !sk_X509_push(chain, cc_ca_cert(env->ca))) {
		code = FLOWS_E_RETRYABLE;
		snprintf(why, sizeof(why), "out of memory");
		goto fail;
	}
	X509_up_ref(cc_ca_cert(env->ca));
	dl = (struct flows_delivery){ .key = key, .cert = cert, .chain = chain,
		.legacy = prof->p12 == CC_FLOWS_P12_LEGACY, .keep_copy = prof->keep_copy,
		.keyspec = cc_flows_keyspec_name(spec), .device = &rq.device };
	code = flows_deliver(env, &dl, &result, &retry, why, sizeof(why));
	if (code != FLOWS_OK)
		goto fail;
	flows_succeed(j, result);
	result = NULL;
	goto out;
fail:
	snprintf(code_s, sizeof(code_s), "%d", (int)code);
	cc_log_warn("flows: pkcs %s: %s: %s", j->id, step, why);
	cc_event_emit(ev->fail, j->corr, "requestId", j->id, "deviceId", rq.device_id,
	    "step", step, "errorCode", code_s, "errorName", flows_code_name(code), "reason",
	    why, NULL);
	flows_fail(j, code, "%s", why);
out:
	cJSON_Delete(result);
	sk_X509_pop_free(chain, X509_free);
	X509_free(cert);
	X509_free(is.cert);
	X509_REQ_free(is.csr);
	EVP_PKEY_free(key);
	X509_NAME_free(subject);
	GENERAL_NAMES_free(sans);
	flows_idem_clear(&rec);
	flows_pkcs_req_free(&rq);
}
