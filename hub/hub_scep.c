/*
 * SCEP validation and notification in Intune's shapes (docs/protocol.md section 8): the hub
 * issues one-time challenges (admin API), and connectors in service-verified mode ask it
 * whether a device's CSR may be served, then report the outcome. Every outcome of the check
 * itself is a 200 with {"code", "errorDescription"}.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certconn/log.h"
#include "hub_ca.h"
#include "hub_int.h"
#include "hub_scep.h"

static void
scep_code(struct hub_ctx *x, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
scep_code(struct hub_ctx *x, const char *code, const char *fmt, ...)
{
	cJSON *o = cJSON_CreateObject();
	char desc[HUB_SCEP_DESC_MAX + 1];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(desc, sizeof(desc), fmt, ap);
	va_end(ap);
	cJSON_AddStringToObject(o, "code", code);
	cJSON_AddStringToObject(o, "errorDescription", desc);
	if (strcmp(code, "Success") != 0)
		cc_log_info("[%s] SCEP: %s: %s", x->r->client_request_id, code, desc);
	hub_reply_json(x->r, 200, o);
}

static void
scep_ok(struct hub_ctx *x)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "code", "Success");
	cJSON_AddStringToObject(o, "errorDescription", "");
	hub_reply_json(x->r, 200, o);
}

/* ---- names ---- */

int
hub_subject_canon(const X509_NAME *n, char *out, size_t len)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p;
	long l;
	int ret = -1;

	if (b == NULL)
		return -1;
	if (X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253) >= 0) {
		l = BIO_get_mem_data(b, &p);
		if (l >= 0 && (size_t)l < len) {
			memcpy(out, p, (size_t)l);
			out[l] = '\0';
			ret = 0;
		}
	}
	BIO_free(b);
	return ret;
}

X509_NAME *
hub_subject_parse(const char *s)
{
	X509_NAME *n = X509_NAME_new();
	char buf[1024], *save = NULL, *rdn, *eq;

	if (n == NULL || strlen(s) >= sizeof(buf))
		goto fail;
	memcpy(buf, s, strlen(s) + 1);
	for (rdn = strtok_r(buf, ",", &save); rdn != NULL; rdn = strtok_r(NULL, ",", &save)) {
		while (*rdn == ' ')
			rdn++;
		eq = strchr(rdn, '=');
		if (eq == NULL || eq == rdn || eq[1] == '\0')
			goto fail;
		*eq = '\0';
		if (!X509_NAME_add_entry_by_txt(n, rdn, MBSTRING_UTF8, (unsigned char *)eq + 1, -1,
		    -1, 0))
			goto fail;
	}
	if (X509_NAME_entry_count(n) == 0)
		goto fail;
	return n;
fail:
	ERR_clear_error();
	X509_NAME_free(n);
	return NULL;
}

int
hub_san_canon(const GENERAL_NAME *g, char *out, size_t len)
{
	const ASN1_STRING *s;
	const unsigned char *d;
	const char *pfx;
	int l;

	switch (g->type) {
	case GEN_DNS: pfx = "DNS"; s = g->d.dNSName; break;
	case GEN_EMAIL: pfx = "email"; s = g->d.rfc822Name; break;
	case GEN_URI: pfx = "URI"; s = g->d.uniformResourceIdentifier; break;
	case GEN_IPADD: {
		char ip[64];
		d = ASN1_STRING_get0_data(g->d.iPAddress);
		l = ASN1_STRING_length(g->d.iPAddress);
		if (l == 4)
			snprintf(ip, sizeof(ip), "%u.%u.%u.%u", d[0], d[1], d[2], d[3]);
		else if (l == 16) {
			size_t o = 0;
			for (int i = 0; i < 16; i += 2)
				o += (size_t)snprintf(ip + o, sizeof(ip) - o, "%s%x", i ? ":" : "",
				    (unsigned)(d[i] << 8 | d[i + 1]));
		} else
			return -1;
		return snprintf(out, len, "IP:%s", ip) < (int)len ? 0 : -1;
	}
	default:
		return -1;
	}
	d = ASN1_STRING_get0_data(s);
	l = ASN1_STRING_length(s);
	if (l <= 0 || memchr(d, '\0', (size_t)l) != NULL)
		return -1;
	return snprintf(out, len, "%s:%.*s", pfx, l, (const char *)d) < (int)len ? 0 : -1;
}

/* The challengePassword attribute as text, or -1 when absent or not a string. */
static int
csr_challenge(X509_REQ *req, char *out, size_t len)
{
	int i = X509_REQ_get_attr_by_NID(req, NID_pkcs9_challengePassword, -1);
	X509_ATTRIBUTE *a;
	ASN1_TYPE *t;
	const unsigned char *d;
	int l;

	if (i < 0)
		return -1;
	a = X509_REQ_get_attr(req, i);
	t = a != NULL ? X509_ATTRIBUTE_get0_type(a, 0) : NULL;
	if (t == NULL || (t->type != V_ASN1_PRINTABLESTRING && t->type != V_ASN1_UTF8STRING &&
	    t->type != V_ASN1_IA5STRING && t->type != V_ASN1_T61STRING &&
	    t->type != V_ASN1_BMPSTRING))
		return -1;
	d = ASN1_STRING_get0_data(t->value.asn1_string);
	l = ASN1_STRING_length(t->value.asn1_string);
	if (l <= 0 || (size_t)l >= len || memchr(d, '\0', (size_t)l) != NULL)
		return -1;
	memcpy(out, d, (size_t)l);
	out[l] = '\0';
	return 0;
}

/* Compares the CSR's requested subjectAltNames with the challenge's (a JSON array). */
static const char *
check_sans(X509_REQ *req, const char *want_json, const char **code)
{
	STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
	GENERAL_NAMES *gens = NULL;
	cJSON *want = cJSON_Parse(want_json);
	const char *why = NULL;
	char buf[1100];
	int nwant = cJSON_GetArraySize(want), matched = 0;

	for (int i = 0; exts != NULL && i < sk_X509_EXTENSION_num(exts); i++) {
		X509_EXTENSION *e = sk_X509_EXTENSION_value(exts, i);
		if (OBJ_obj2nid(X509_EXTENSION_get_object(e)) == NID_subject_alt_name) {
			gens = X509V3_EXT_d2i(e);
			break;
		}
	}
	if (gens == NULL || sk_GENERAL_NAME_num(gens) == 0) {
		*code = "SubjectAltNameMissing";
		why = "the request has no subjectAltName";
		goto out;
	}
	for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		const cJSON *w;
		int found = 0;

		if (hub_san_canon(sk_GENERAL_NAME_value(gens, i), buf, sizeof(buf)) == -1) {
			*code = "SubjectAltNameMismatch";
			why = "the request has a subjectAltName of a kind the challenge cannot name";
			goto out;
		}
		cJSON_ArrayForEach(w, want)
			if (cJSON_IsString(w) && strcmp(w->valuestring, buf) == 0)
				found = 1;
		if (!found) {
			*code = "SubjectAltNameMismatch";
			why = "the request has a subjectAltName the challenge does not name";
			goto out;
		}
		matched++;
	}
	if (matched < nwant) {
		*code = "SubjectAltNameMissing";
		why = "the request lacks a subjectAltName the challenge names";
	}
out:
	GENERAL_NAMES_free(gens);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	cJSON_Delete(want);
	return why;
}

/* ---- validateRequest ---- */

void
hub_scep_validate(struct hub_ctx *x)
{
	static const char *const keys[] = { "transactionId", "certificateRequest", "callerInfo",
		NULL };
	struct hub_body b;
	struct cc_jnode rq;
	const char *txid, *csr_b64, *caller, *why = NULL, *code;
	uint8_t *der = NULL;
	size_t der_len;
	X509_REQ *req = NULL;
	char csr_hash[65], chal[256], chash[65], subj[1024];
	struct hub_challenge ch;
	struct hub_scep_tx tx;
	enum hub_st st;
	int rc;

	memset(&ch, 0, sizeof(ch));
	if (hub_body_parse(x->call, &b, x->r) == -1)
		goto out;
	if (hub_wrapper(&b, "request", keys, &rq) == -1 ||
	    hub_jstr(&b, &rq, "transactionId", true, HUB_TXID_MAX, false, false, &txid) == -1 ||
	    hub_jstr(&b, &rq, "certificateRequest", true, HUB_CSR_MAX * 4 / 3 + 4, false, false,
	    &csr_b64) == -1 ||
	    hub_jstr(&b, &rq, "callerInfo", false, 255, true, false, &caller) == -1) {
		hub_body_fail_reply(&b, x->r);
		goto out;
	}
	if (hub_b64_decode(csr_b64, HUB_CSR_MAX, &der, &der_len) == -1) {
		scep_code(x, "CertificateRequestDecodingFailed", "certificateRequest is not base64 "
		    "of at most %u bytes", HUB_CSR_MAX);
		goto out;
	}
	hub_sha256_hex(der, der_len, csr_hash);
	st = x->h->store->ops->tx_get(x->h->store, x->conn.tenant, txid, &tx);
	if (st == HUB_ST_OK && tx.validated && strcmp(tx.csr_hash, csr_hash) == 0 &&
	    tx.state != HUB_TX_FAILED) {
		scep_ok(x);    /* a retried validation */
		goto out;
	}
	if (st != HUB_ST_OK && st != HUB_ST_NOT_FOUND) {
		hub_reply_store(x->r, st);
		goto out;
	}
	if (st == HUB_ST_OK && tx.state != HUB_TX_VALIDATED) {
		scep_code(x, "TransactionMismatch", "transaction %s is already %s", txid,
		    hub_tx_state_name(tx.state));
		goto out;
	}
	rc = hub_csr_parse(der, der_len, &req, &why);
	if (rc == -1) {
		scep_code(x, "CertificateRequestDecodingFailed", "%s", why);
		goto out;
	}
	if (rc == -2) {
		scep_code(x, "SignatureValidationFailed", "%s", why);
		goto out;
	}
	if (csr_challenge(req, chal, sizeof(chal)) == -1) {
		scep_code(x, "ChallengePasswordMissing", "the request has no challengePassword");
		goto out;
	}
	hub_sha256_hex(chal, strlen(chal), chash);
	explicit_bzero(chal, sizeof(chal));
	st = x->h->store->ops->challenge_get(x->h->store, chash, x->conn.tenant, &ch);
	if (st == HUB_ST_NOT_FOUND) {
		scep_code(x, "ChallengeDecodingError", "the challenge is not one this hub issued");
		goto out;
	}
	if (st != HUB_ST_OK) {
		hub_reply_store(x->r, st);
		goto out;
	}
	if (ch.expires <= x->now) {
		scep_code(x, "ChallengeExpired", "the challenge has expired");
		goto out;
	}
	if (ch.txid[0] != '\0' && strcmp(ch.txid, txid) != 0) {
		scep_code(x, "ChallengeExpired", "the challenge was already used by another "
		    "transaction");
		goto out;
	}
	if (ch.subject[0] != '\0') {
		const X509_NAME *n = X509_REQ_get_subject_name(req);
		if (n == NULL || X509_NAME_entry_count(n) == 0) {
			scep_code(x, "SubjectNameMissing", "the request has an empty subject");
			goto out;
		}
		if (hub_subject_canon(n, subj, sizeof(subj)) == -1 ||
		    strcmp(subj, ch.subject) != 0) {
			scep_code(x, "SubjectNameMismatch", "the subject is not the challenge's (%s)",
			    ch.subject);
			goto out;
		}
	}
	if (ch.sans != NULL && (why = check_sans(req, ch.sans, &code)) != NULL) {
		scep_code(x, code, "%s", why);
		goto out;
	}
	if (ch.min_key_bits != 0 &&
	    EVP_PKEY_get_bits(X509_REQ_get0_pubkey(req)) < (int)ch.min_key_bits) {
		scep_code(x, "KeyLengthMismatch", "the key has %d bits; the challenge needs %u",
		    EVP_PKEY_get_bits(X509_REQ_get0_pubkey(req)), ch.min_key_bits);
		goto out;
	}
	st = x->h->store->ops->challenge_bind(x->h->store, chash, x->conn.tenant, txid);
	if (st == HUB_ST_CONFLICT) {
		scep_code(x, "ChallengeExpired", "the challenge was already used by another "
		    "transaction");
		goto out;
	}
	if (st != HUB_ST_OK) {
		hub_reply_store(x->r, st);
		goto out;
	}
	memset(&tx, 0, sizeof(tx));
	snprintf(tx.tenant, sizeof(tx.tenant), "%s", x->conn.tenant);
	snprintf(tx.txid, sizeof(tx.txid), "%s", txid);
	snprintf(tx.connector, sizeof(tx.connector), "%s", x->conn.id);
	memcpy(tx.csr_hash, csr_hash, sizeof(tx.csr_hash));
	tx.state = HUB_TX_VALIDATED;
	tx.validated = true;
	tx.validated_at = tx.updated = x->now;
	st = x->h->store->ops->tx_put(x->h->store, &tx);
	if (st != HUB_ST_OK) {
		hub_reply_store(x->r, st);
		goto out;
	}
	cc_log_info("[%s] SCEP transaction %s validated for connector %s",
	    x->r->client_request_id, txid, x->conn.id);
	scep_ok(x);
out:
	hub_challenge_clear(&ch);
	X509_REQ_free(req);
	free(der);
	hub_body_done(&b);
}

/* ---- notifications ---- */

/* Reads the common members and the transaction; 1 when answered already. */
static int
notify_begin(struct hub_ctx *x, struct hub_body *b, const char *const *keys,
    struct cc_jnode *n, const char **txid, char csr_hash[65], struct hub_scep_tx *tx,
    bool *exists)
{
	const char *csr_b64, *caller;
	uint8_t *der = NULL;
	size_t der_len;
	enum hub_st st;

	if (hub_wrapper(b, "notification", keys, n) == -1 ||
	    hub_jstr(b, n, "transactionId", true, HUB_TXID_MAX, false, false, txid) == -1 ||
	    hub_jstr(b, n, "certificateRequest", true, HUB_CSR_MAX * 4 / 3 + 4, false, false,
	    &csr_b64) == -1 ||
	    hub_jstr(b, n, "callerInfo", false, 255, true, false, &caller) == -1) {
		hub_body_fail_reply(b, x->r);
		return 1;
	}
	if (hub_b64_decode(csr_b64, HUB_CSR_MAX, &der, &der_len) == -1) {
		scep_code(x, "CertificateRequestDecodingFailed", "certificateRequest is not base64 "
		    "of at most %u bytes", HUB_CSR_MAX);
		return 1;
	}
	hub_sha256_hex(der, der_len, csr_hash);
	free(der);
	st = x->h->store->ops->tx_get(x->h->store, x->conn.tenant, *txid, tx);
	if (st != HUB_ST_OK && st != HUB_ST_NOT_FOUND) {
		hub_reply_store(x->r, st);
		return 1;
	}
	*exists = st == HUB_ST_OK;
	if (*exists && tx->validated && strcmp(tx->csr_hash, csr_hash) != 0) {
		scep_code(x, "TransactionMismatch", "transaction %s was validated with another "
		    "certificate request", *txid);
		return 1;
	}
	return 0;
}

void
hub_scep_success(struct hub_ctx *x)
{
	static const char *const keys[] = { "transactionId", "certificateRequest", "callerInfo",
		"certificateThumbprint", "certificateSerialNumber", "certificateExpirationDateUtc",
		"issuingCertificateAuthority", "caConfiguration", "certificateAuthority", NULL };
	struct hub_body b;
	struct cc_jnode n, m;
	const char *txid, *thumb, *serial, *expires, *issuer, *cacfg, *ca;
	char csr_hash[65];
	struct hub_scep_tx tx;
	bool exists;
	int64_t t;
	enum hub_st st;

	memset(&tx, 0, sizeof(tx));
	if (hub_body_parse(x->call, &b, x->r) == -1)
		goto out;
	if (notify_begin(x, &b, keys, &n, &txid, csr_hash, &tx, &exists) == 1)
		goto out;
	if (hub_jstr(&b, &n, "certificateThumbprint", true, 128, false, false, &thumb) == -1 ||
	    hub_jstr(&b, &n, "certificateSerialNumber", true, 128, false, false, &serial) == -1 ||
	    hub_jstr(&b, &n, "certificateExpirationDateUtc", true, 63, false, false, &expires) ==
	    -1 ||
	    hub_jstr(&b, &n, "issuingCertificateAuthority", true, 511, false, false, &issuer) ==
	    -1 ||
	    hub_jstr(&b, &n, "caConfiguration", false, 255, true, true, &cacfg) == -1 ||
	    hub_jstr(&b, &n, "certificateAuthority", false, 255, true, true, &ca) == -1)
		goto bad;
	if (hub_time_parse(expires, &t) == -1) {
		cc_jck_member(&n, "certificateExpirationDateUtc", &m);
		hub_invalid(&b, &m, "not a UTC time (YYYY-MM-DDThh:mm:ss[.sss]Z)");
		goto bad;
	}
	if (!exists || !tx.validated) {
		scep_code(x, "TransactionNotFound", "transaction %s was never validated", txid);
		goto out;
	}
	if (tx.state == HUB_TX_FAILED) {
		scep_code(x, "TransactionAlreadyFailed", "a failure was already notified for "
		    "transaction %s", txid);
		goto out;
	}
	if (tx.state == HUB_TX_SUCCEEDED) {
		if (strcasecmp(tx.thumbprint, thumb) == 0 && strcasecmp(tx.serial, serial) == 0)
			scep_ok(x);
		else
			scep_code(x, "TransactionMismatch", "another certificate was already notified "
			    "for transaction %s", txid);
		goto out;
	}
	tx.state = HUB_TX_SUCCEEDED;
	snprintf(tx.thumbprint, sizeof(tx.thumbprint), "%s", thumb);
	snprintf(tx.serial, sizeof(tx.serial), "%s", serial);
	snprintf(tx.expires, sizeof(tx.expires), "%s", expires);
	snprintf(tx.issuer, sizeof(tx.issuer), "%s", issuer);
	snprintf(tx.ca_config, sizeof(tx.ca_config), "%s", cacfg ? cacfg : "");
	snprintf(tx.ca, sizeof(tx.ca), "%s", ca ? ca : "");
	tx.updated = x->now;
	st = x->h->store->ops->tx_put(x->h->store, &tx);
	if (st != HUB_ST_OK) {
		hub_reply_store(x->r, st);
		goto out;
	}
	cc_log_info("[%s] SCEP transaction %s succeeded: serial %s", x->r->client_request_id,
	    txid, serial);
	scep_ok(x);
	goto out;
bad:
	hub_body_fail_reply(&b, x->r);
out:
	hub_body_done(&b);
}

void
hub_scep_failure(struct hub_ctx *x)
{
	static const char *const keys[] = { "transactionId", "certificateRequest", "callerInfo",
		"hResult", "errorDescription", NULL };
	struct hub_body b;
	struct cc_jnode n;
	const char *txid, *desc;
	char csr_hash[65];
	struct hub_scep_tx tx;
	bool exists;
	int64_t hr;
	enum hub_st st;

	memset(&tx, 0, sizeof(tx));
	if (hub_body_parse(x->call, &b, x->r) == -1)
		goto out;
	if (notify_begin(x, &b, keys, &n, &txid, csr_hash, &tx, &exists) == 1)
		goto out;
	/* HRESULTs are 32-bit; Intune's library sends them as a signed long. */
	if (hub_jint(&b, &n, "hResult", true, INT32_MIN, UINT32_MAX, &hr, NULL) == -1 ||
	    hub_jstr(&b, &n, "errorDescription", true, HUB_SCEP_DESC_MAX, false, false, &desc) ==
	    -1) {
		hub_body_fail_reply(&b, x->r);
		goto out;
	}
	if (exists && tx.state == HUB_TX_SUCCEEDED) {
		scep_code(x, "TransactionAlreadySucceeded", "a success was already notified for "
		    "transaction %s", txid);
		goto out;
	}
	if (exists && tx.state == HUB_TX_FAILED) {
		scep_ok(x);    /* a repeated notification */
		goto out;
	}
	if (!exists) {
		snprintf(tx.tenant, sizeof(tx.tenant), "%s", x->conn.tenant);
		snprintf(tx.txid, sizeof(tx.txid), "%s", txid);
		snprintf(tx.connector, sizeof(tx.connector), "%s", x->conn.id);
		memcpy(tx.csr_hash, csr_hash, sizeof(tx.csr_hash));
	}
	tx.state = HUB_TX_FAILED;
	tx.hresult = hr;
	snprintf(tx.error_description, sizeof(tx.error_description), "%s", desc);
	tx.updated = x->now;
	st = x->h->store->ops->tx_put(x->h->store, &tx);
	if (st != HUB_ST_OK) {
		hub_reply_store(x->r, st);
		goto out;
	}
	cc_log_info("[%s] SCEP transaction %s failed on connector %s: 0x%08llx %s",
	    x->r->client_request_id, txid, x->conn.id, (unsigned long long)(uint32_t)hr, desc);
	scep_ok(x);
out:
	hub_body_done(&b);
}
