/*
 * Imported PFX (`pfx-import`, S/MIME): the PFX password, encrypted with RSA-OAEP to the
 * connector's pfx role key in the Intune PFX import tooling's form, is decrypted in keys
 * (the token's OAEP with SHA-2, or keys' raw-RSA fallback where the role allows it), the PFX opened with it, and its key and certificate delivered to the
 * device under a fresh password (flows_deliver.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "certconn/event.h"
#include "certconn/flows.h"
#include "certconn/log.h"
#include "flows_int.h"

struct pw_step {
	const struct flows_env *env;
	const struct flows_import_req *rq;
	char *password;              /* out */
};

static int32_t
pw_step(void *arg, bool *retry, char *why, size_t whylen)
{
	struct pw_step *s = arg;
	int e;

	e = flows_c_password_decrypt(s->env->pfx_key, s->rq->enc_password,
	    s->rq->enc_password_len, s->rq->md_bits, &s->password);
	if (e != FLOWS_C_OK) {
		snprintf(why, whylen, "encryptedPassword (%s): %s", s->rq->md_bits == 256 ?
		    "OaepSha256" : s->rq->md_bits == 384 ? "OaepSha384" : "OaepSha512",
		    flows_c_strerror(e));
		return flows_c_code(e, retry);
	}
	return FLOWS_OK;
}

struct deliver_step {
	const struct flows_env *env;
	const struct flows_delivery *dl;
	cJSON *result;               /* out */
};

static int32_t
deliver_step(void *arg, bool *retry, char *why, size_t whylen)
{
	struct deliver_step *s = arg;

	return flows_deliver(s->env, s->dl, &s->result, retry, why, whylen);
}

void
flow_import_run(const struct flows_env *env, struct flows_job *j)
{
	const struct flows_events *ev = flows_events_of(FLOWS_IMPORT);
	struct flows_import_req rq;
	struct pw_step ps = { .env = env, .rq = &rq };
	struct deliver_step ds = { .env = env };
	struct flows_delivery dl;
	struct flows_cert_facts facts;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	STACK_OF(X509) *chain = NULL;
	const char *step = "payload";
	char why[768] = "", code_s[16];
	bool retry = false;
	int32_t code;
	int e;

	code = flows_parse_import(j->payload, &rq, why, sizeof(why));
	if (code != FLOWS_OK)
		goto fail;
	if (env->pfx_key == NULL) {
		code = FLOWS_E_NOT_SUPPORTED;
		snprintf(why, sizeof(why), "this connector has no pfx key");
		goto fail;
	}
	step = "password";
	code = flows_retry(env, j, "decrypt password", pw_step, &ps, why, sizeof(why));
	if (code != FLOWS_OK)
		goto fail;
	step = "pfx";
	e = flows_c_p12_open(rq.pfx, rq.pfx_len, ps.password, &key, &cert, &chain);
	if (e != FLOWS_C_OK) {
		code = flows_c_code(e, &retry);
		snprintf(why, sizeof(why), "pfx: %s", flows_c_strerror(e));
		goto fail;
	}
	step = "deliver";
	dl = (struct flows_delivery){ .key = key, .cert = cert, .chain = chain,
		.purpose = rq.purpose, .device = &rq.device };
	ds.dl = &dl;
	code = flows_retry(env, j, "re-encrypt", deliver_step, &ds, why, sizeof(why));
	if (code != FLOWS_OK)
		goto fail;
	if (flows_cert_facts(cert, &facts) == 0)
		cc_event_emit(ev->ok, j->corr, "requestId", j->id, "deviceId", rq.device_id,
		    "userPrincipalName", rq.upn, "intendedPurpose", rq.purpose, "serialNumber",
		    facts.serial, "certificateThumbprint", facts.thumbprint, "subjectName",
		    facts.subject, NULL);
	flows_succeed(j, ds.result);
	ds.result = NULL;
	goto out;
fail:
	snprintf(code_s, sizeof(code_s), "%d", (int)code);
	cc_log_warn("flows: pfx-import %s: %s: %s", j->id, step, why);
	cc_event_emit(ev->fail, j->corr, "requestId", j->id, "deviceId", rq.device_id,
	    "step", step, "errorCode", code_s, "errorName", flows_code_name(code), "reason", why,
	    NULL);
	flows_fail(j, code, "%s", why);
out:
	if (ps.password != NULL) {
		OPENSSL_cleanse(ps.password, strlen(ps.password));
		free(ps.password);
	}
	cJSON_Delete(ds.result);
	EVP_PKEY_free(key);
	X509_free(cert);
	sk_X509_pop_free(chain, X509_free);
	flows_import_req_free(&rq);
}
