/*
 * Revocation (`revoke`): the Intune-shaped item {requestContext, serialNumber, issuerName,
 * caConfiguration} revoked at the local CA, then a new CRL signed (through keys).
 *
 * Intune's error semantics: a serial this CA never issued is final (4004
 * CertificateNotFoundError); a CA store that cannot be read or locked is retried here and
 * then reported retryable (4101 ServiceUnavailableException), so the service queues the
 * request again. Revoking a certificate that is already revoked succeeds: a request leased
 * again after a crash between revocation and upload must not fail.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/x509.h>

#include "certconn/ca.h"
#include "certconn/event.h"
#include "certconn/flows.h"
#include "certconn/log.h"
#include "flows_int.h"

#define REVOKE_REASON 0 /* unspecified: Intune's requests carry no reason */

struct revoke_step {
	const struct flows_env *env;
	const struct flows_revoke_req *rq;
	bool already;
};

/* Compares two names ignoring case, blanks and the RFC 2253 / oneline separators' spacing. */
static bool
name_eq(const char *a, const char *b)
{
	for (;;) {
		while (*a == ' ')
			a++;
		while (*b == ' ')
			b++;
		if (*a == '\0' || *b == '\0')
			return *a == *b;
		if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
			return false;
		a++;
		b++;
	}
}

/* issuerName as Intune gives it may be in RFC 2253 order or in the reverse (most
 * significant first) order; either matches. */
static bool
issuer_matches(X509 *cacert, const char *issuer)
{
	const X509_NAME *n = X509_get_subject_name(cacert);
	static const unsigned long forms[] = {
		XN_FLAG_RFC2253,
		(XN_FLAG_RFC2253 & ~XN_FLAG_DN_REV),
		XN_FLAG_ONELINE,
	};
	char buf[1024];
	bool ok = false;

	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]) && !ok; i++) {
		BIO *b = BIO_new(BIO_s_mem());
		int len;

		if (b == NULL)
			return false;
		if (X509_NAME_print_ex(b, n, 0, forms[i]) >= 0 &&
		    (len = BIO_read(b, buf, sizeof(buf) - 1)) > 0) {
			buf[len] = '\0';
			ok = name_eq(buf, issuer);
		}
		BIO_free(b);
	}
	return ok;
}

static int32_t
revoke_step(void *arg, bool *retry, char *why, size_t whylen)
{
	struct revoke_step *s = arg;
	struct cc_ca_cert_info info;
	char err[512];
	int r;

	*retry = false;
	r = cc_ca_find(s->env->ca, s->rq->serial, &info, NULL, err, sizeof(err));
	if (r == -1) {
		*retry = true;
		snprintf(why, whylen, "CA unavailable: %s", err);
		return FLOWS_E_UNAVAILABLE;
	}
	if (r == 0) {
		snprintf(why, whylen, "serial %s was not issued by this CA (%s)", s->rq->serial,
		    cc_ca_name(s->env->ca));
		return FLOWS_E_NOT_FOUND;
	}
	if (info.state == CC_CA_CERT_REVOKED) {
		s->already = true;
		return FLOWS_OK;
	}
	if (cc_ca_revoke(s->env->ca, s->rq->serial, REVOKE_REASON, err, sizeof(err)) == -1) {
		/* A revocation that raced with another one is a success; anything else is the
		 * store's failure. */
		if (cc_ca_find(s->env->ca, s->rq->serial, &info, NULL, NULL, 0) == 1 &&
		    info.state == CC_CA_CERT_REVOKED) {
			s->already = true;
			return FLOWS_OK;
		}
		*retry = true;
		snprintf(why, whylen, "CA unavailable: %s", err);
		return FLOWS_E_UNAVAILABLE;
	}
	return FLOWS_OK;
}

static int32_t
crl_step(void *arg, bool *retry, char *why, size_t whylen)
{
	struct revoke_step *s = arg;
	char err[512];

	*retry = true;
	if (cc_ca_crl_refresh(s->env->ca, false, time(NULL), err, sizeof(err)) == -1) {
		snprintf(why, whylen, "CRL: %s", err);
		return FLOWS_E_UNAVAILABLE;
	}
	return FLOWS_OK;
}

void
flow_revoke_run(const struct flows_env *env, struct flows_job *j)
{
	const struct flows_events *ev = flows_events_of(FLOWS_REVOKE);
	struct flows_revoke_req rq;
	struct revoke_step s = { env, &rq, false };
	char why[768], code[16];
	int32_t c;

	c = flows_parse_revoke(j->payload, &rq, why, sizeof(why));
	if (c == FLOWS_OK && env->ca == NULL) {
		c = FLOWS_E_NOT_SUPPORTED;
		snprintf(why, sizeof(why), "this connector has no CA to revoke at");
	}
	if (c == FLOWS_OK && rq.ca_config[0] != '\0' && strcmp(rq.ca_config, "local") != 0 &&
	    strcmp(rq.ca_config, cc_ca_name(env->ca)) != 0) {
		c = FLOWS_E_NOT_SUPPORTED;
		snprintf(why, sizeof(why), "caConfiguration \"%s\": this connector's CA is the "
		    "local CA \"%s\"", rq.ca_config, cc_ca_name(env->ca));
	}
	if (c == FLOWS_OK && rq.issuer[0] != '\0' && !issuer_matches(cc_ca_cert(env->ca),
	    rq.issuer)) {
		c = FLOWS_E_NOT_FOUND;
		snprintf(why, sizeof(why), "issuerName \"%.512s\" is not this connector's CA",
		    rq.issuer);
	}
	if (c == FLOWS_OK)
		c = flows_retry(env, j, "revoke", revoke_step, &s, why, sizeof(why));
	if (c != FLOWS_OK) {
		snprintf(code, sizeof(code), "%d", (int)c);
		cc_log_warn("flows: revoke %s: %s", j->id, why);
		cc_event_emit(ev->fail, j->corr, "requestId", j->id, "serialNumber", rq.serial,
		    "errorCode", code, "errorName", flows_code_name(c), "reason", why, NULL);
		flows_fail(j, c, "%s", why);
		return;
	}
	cc_event_emit(ev->ok, j->corr, "requestId", j->id, "serialNumber", rq.serial,
	    "alreadyRevoked", s.already ? "true" : "false", "ca", cc_ca_name(env->ca), NULL);
	/* The revocation is recorded; a CRL that cannot be signed now is signed by the CA's
	 * periodic refresh (SCEP's tick), so the request still succeeds. */
	if (flows_retry(env, j, "crl", crl_step, &s, why, sizeof(why)) != FLOWS_OK)
		cc_log_warn("flows: revoke %s: %s; the periodic refresh publishes it later", j->id,
		    why);
	flows_succeed(j, NULL);
}
