/*
 * The SCEP server without its transport (include/certconn/scep.h): profiles, the RA keys
 * and certificates, GetCACaps / GetCACert / GetNextCACert, and PKIOperation with PKCSReq,
 * RenewalReq, CertPoll, GetCert and GetCRL against the local CA. Every request gets an HTTP
 * answer: a CertRep (SUCCESS, PENDING or FAILURE with the failInfo RFC 8894 names) when the
 * message could be read far enough to answer it, else an HTTP error.
 *
 * Order of checks for a request (each failure is answered, nothing after it runs):
 * parse and verify the signature -> senderNonce not seen before -> signingTime within
 * clock_skew_s -> decrypt (cipher allowed, our recipient) -> the operation.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certconn/ca.h"
#include "certconn/config_scep.h"
#include "certconn/event.h"
#include "certconn/issuance.h"
#include "certconn/log.h"
#include "certconn/scep.h"
#include "certconn/util.h"
#include "scep_int.h"
#include "scep_verify.h"

#define RA_RENEW_BEFORE_S (30 * 86400)
#define SECRET_FILE_MAX 4096
#define HRESULT_E_FAIL (-2147467259) /* 0x80004005, what the failure notification carries */

static int
err_set(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int
err_set(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && len > 0) {
		va_start(ap, fmt);
		vsnprintf(err, len, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static int
spki_hash(EVP_PKEY *k, uint8_t md[32])
{
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(k, &der);
	int ok = n > 0 && EVP_Digest(der, (size_t)n, md, NULL, EVP_sha256(), NULL) == 1;

	OPENSSL_free(der);
	return ok ? 0 : -1;
}

static void
name_text(const X509_NAME *n, char *buf, size_t len)
{
	BIO *b = BIO_new(BIO_s_mem());
	int k = 0;

	buf[0] = '\0';
	if (b != NULL && X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253) >= 0)
		k = BIO_read(b, buf, (int)len - 1);
	buf[k > 0 ? k : 0] = '\0';
	BIO_free(b);
}

static int
der_of(X509 *x, uint8_t **der, size_t *len)
{
	unsigned char *p = NULL;
	int n = i2d_X509(x, &p);

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

/* ---- RA keys and certificates ---- */

static struct scep_ra *
ra_slot(struct scep_server *s, const char *role, uint32_t ku)
{
	for (size_t i = 0; i < s->nra; i++)
		if (strcmp(s->ra[i].role, role) == 0) {
			s->ra[i].ku |= ku;
			return &s->ra[i];
		}
	if (s->nra == SCEP_MAX_RA)
		return NULL;
	snprintf(s->ra[s->nra].role, sizeof(s->ra[s->nra].role), "%s", role);
	s->ra[s->nra].ku = ku;
	return &s->ra[s->nra++];
}

static X509 *
read_pem_cert(const char *path)
{
	FILE *f = fopen(path, "r");
	X509 *x;

	if (f == NULL)
		return NULL;
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	return x;
}

static int
write_pem_cert(const char *path, X509 *x)
{
	char tmp[1200];
	FILE *f;
	int fd, ok;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd == -1)
		return -1;
	f = fdopen(fd, "w");
	if (f == NULL) {
		close(fd);
		return -1;
	}
	ok = PEM_write_X509(f, x) == 1 && fflush(f) == 0 && fsync(fileno(f)) == 0;
	ok = fclose(f) == 0 && ok;
	if (!ok || rename(tmp, path) == -1) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* Is x a usable RA certificate for ra: its key, issued by our CA, the usages, not ending? */
static int
ra_cert_ok(struct scep_server *s, const struct scep_ra *ra, X509 *x, time_t now)
{
	X509 *ca = cc_ca_cert(s->o.ca);
	time_t end = now + RA_RENEW_BEFORE_S;

	return x != NULL && EVP_PKEY_eq(X509_get0_pubkey(x), ra->key) == 1 &&
	    X509_check_issued(ca, x) == X509_V_OK && X509_verify(x, X509_get0_pubkey(ca)) == 1 &&
	    (X509_get_key_usage(x) & ra->ku) == ra->ku && X509_cmp_time(X509_get0_notAfter(x),
	    &end) > 0 && X509_cmp_time(X509_get0_notBefore(x), &now) < 0;
}

static int
ra_ensure(struct scep_server *s, struct scep_ra *ra, char *err, size_t errlen)
{
	X509 *x = NULL;
	X509_NAME *subj = NULL;
	char path[1100], why[256];
	time_t now = time(NULL);

	ra->key = s->o.load_key(s->o.load_key_arg, ra->role, &x);
	if (ra->key == NULL)
		return err_set(err, errlen, "SCEP: the RA role %s is not available in keys",
		    ra->role);
	/* A certificate configured for the role (keys has it) wins when it fits. */
	if (x != NULL && EVP_PKEY_eq(X509_get0_pubkey(x), ra->key) == 1 &&
	    (X509_get_key_usage(x) & ra->ku) == ra->ku) {
		ra->cert = x;
		return 0;
	}
	X509_free(x);
	ERR_clear_error();
	snprintf(path, sizeof(path), "%s/ra-%s.pem", s->o.state_dir, ra->role);
	x = read_pem_cert(path);
	if (ra_cert_ok(s, ra, x, now)) {
		ra->cert = x;
		return 0;
	}
	X509_free(x);
	ERR_clear_error();
	if (cc_issuance_template_build(s->o.ra_subject != NULL ? s->o.ra_subject :
	    "CN=certconn SCEP RA", NULL, &subj, why, sizeof(why)) == -1)
		return err_set(err, errlen, "SCEP: RA subject: %s", why);
	if (cc_ca_issue_ra(s->o.ca, ra->key, subj, s->o.ra_validity_days > 0 ?
	    s->o.ra_validity_days : 365, ra->ku, &x, why, sizeof(why)) == -1) {
		X509_NAME_free(subj);
		return err_set(err, errlen, "SCEP: cannot issue the certificate of RA role %s: %s",
		    ra->role, why);
	}
	X509_NAME_free(subj);
	if (write_pem_cert(path, x) == -1)
		cc_log_warn("SCEP: cannot keep the RA certificate in %s: %s (it is issued again at "
		    "the next start)", path, strerror(errno));
	else
		cc_log_info("SCEP: issued the certificate of RA role %s (%s)", ra->role, path);
	ra->cert = x;
	return 0;
}

/* ---- profiles ---- */

static int
read_secret(const char *path, uint8_t **out, size_t *len, char *err, size_t errlen)
{
	uint8_t *buf;
	size_t n;

	if (cc_read_file(path, SECRET_FILE_MAX, &buf, &n) == -1)
		return err_set(err, errlen, "SCEP: %s: %s", path, strerror(errno));
	/* the first line */
	for (size_t i = 0; i < n; i++)
		if (buf[i] == '\n' || buf[i] == '\r') {
			n = i;
			break;
		}
	if (n == 0) {
		cc_free_secret(buf, n + 1);
		return err_set(err, errlen, "SCEP: %s is empty", path);
	}
	*out = buf;
	*len = n;
	return 0;
}

static int
self_signed(X509 *x)
{
	return X509_check_issued(x, x) == X509_V_OK;
}

static int
ca_cert_body(struct scep_server *s, struct scep_profile_rt *pr)
{
	STACK_OF(X509) *certs = sk_X509_new_null();
	X509 *ca = cc_ca_cert(s->o.ca);
	int r = -1;

	if (certs == NULL)
		return -1;
	sk_X509_push(certs, pr->sign->cert);
	if (pr->enc != pr->sign)
		sk_X509_push(certs, pr->enc->cert);
	if (pr->p->include_root || !self_signed(ca))
		sk_X509_push(certs, ca);
	for (int i = 0; s->o.ca_chain != NULL && i < sk_X509_num(s->o.ca_chain); i++) {
		X509 *x = sk_X509_value(s->o.ca_chain, i);

		if (pr->p->include_root || !self_signed(x))
			sk_X509_push(certs, x);
	}
	if (scep_degenerate(certs, NULL, &pr->cacert, &pr->cacert_len) == 0)
		r = 0;
	pr->cacert_type = "application/x-x509-ca-ra-cert";
	sk_X509_free(certs);
	return r;
}

static int
profile_setup(struct scep_server *s, struct scep_profile_rt *pr, char *err, size_t errlen)
{
	const struct cc_scep_profile *p = pr->p;
	int n;

	pr->ciphers = SCEP_CIPHER_AES | (p->des3 ? SCEP_CIPHER_DES3 : 0);
	/* GetNextCACert's reply, signed by this profile's RA: the one its clients verify with */
	if (s->o.next_ca != NULL && sk_X509_num(s->o.next_ca) > 0) {
		uint8_t *inner = NULL;
		size_t innerlen = 0;

		n = scep_degenerate(s->o.next_ca, NULL, &inner, &innerlen);
		if (n == 0)
			n = scep_signed_data(inner, innerlen, pr->sign->cert, pr->sign->key,
			    s->o.libctx, &pr->next_ca, &pr->next_ca_len);
		free(inner);
		if (n == -1)
			return err_set(err, errlen, "SCEP: cannot sign GetNextCACert's reply for "
			    "profile %s", p->name);
	}
	n = snprintf(pr->caps, sizeof(pr->caps), "POSTPKIOperation\nSHA-256\nSHA-512\nAES\n%s"
	    "SCEPStandard\n%s%s", p->des3 ? "DES3\n" : "", p->renewal ? "Renewal\n" : "",
	    pr->next_ca != NULL ? "GetNextCACert\n" : "");
	if (n < 0 || (size_t)n >= sizeof(pr->caps))
		return err_set(err, errlen, "SCEP: capabilities too long");
	if (ca_cert_body(s, pr) == -1)
		return err_set(err, errlen, "SCEP: cannot build GetCACert for profile %s", p->name);
	if (p->challenge == CC_SCEP_CHALLENGE_STATIC)
		return read_secret(p->password_file, &pr->secret, &pr->secret_len, err, errlen);
	if (p->challenge == CC_SCEP_CHALLENGE_WEBHOOK)
		return read_secret(p->webhook_secret_file, &pr->secret, &pr->secret_len, err,
		    errlen);
	return 0;
}

static void
outbox_acked(void *arg, const char *kind, const char *profile, const char *txid,
    const char *serial)
{
	struct scep_server *s = arg;
	char err[256];

	if (strcmp(kind, "successNotification") != 0 || serial[0] == '\0')
		return;
	/* The service knows now: the certificate may be handed out at the next poll. */
	if (cc_ca_set_withheld(s->o.ca, serial, false, err, sizeof(err)) == -1 ||
	    scep_txn_move(s->o.ca, profile, txid, SCEP_TXN_NOTIFYING, SCEP_TXN_ISSUED, NULL,
	    NULL, err, sizeof(err)) == -1) {
		cc_log_err("SCEP: transaction %s: %s", txid, err);
		return;
	}
	cc_event_emit(CC_EV_SCEP_REQUEST_SUCCESS, txid, "profile", profile, "serial", serial,
	    "serviceNotified", "true", NULL);
}

int
scep_server_new(const struct scep_server_opts *o, struct scep_server **out, char *err,
    size_t errlen)
{
	struct scep_server *s;
	char dir[1100];
	size_t i;

	*out = NULL;
	if (o->conf == NULL || o->ca == NULL || o->load_key == NULL || o->state_dir == NULL)
		return err_set(err, errlen, "SCEP: incomplete options");
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return err_set(err, errlen, "out of memory");
	s->o = *o;
	pthread_mutex_init(&s->lock, NULL);
	s->nprof = o->conf->nprofiles;
	s->prof = calloc(s->nprof, sizeof(*s->prof));
	if (s->prof == NULL) {
		err_set(err, errlen, "out of memory");
		goto fail;
	}
	/* Roles and the usages their certificates need: one role for both halves needs both. */
	for (i = 0; i < s->nprof; i++) {
		const struct cc_scep_profile *p = &o->conf->profiles[i];
		int same = strcmp(p->ra_sign_role, p->ra_encrypt_role) == 0;

		s->prof[i].p = p;
		s->prof[i].sign = ra_slot(s, p->ra_sign_role, KU_DIGITAL_SIGNATURE |
		    (same ? KU_KEY_ENCIPHERMENT : 0));
		s->prof[i].enc = ra_slot(s, p->ra_encrypt_role, KU_KEY_ENCIPHERMENT |
		    (same ? KU_DIGITAL_SIGNATURE : 0));
		if (s->prof[i].sign == NULL || s->prof[i].enc == NULL) {
			err_set(err, errlen, "SCEP: too many RA roles");
			goto fail;
		}
	}
	for (i = 0; i < s->nra; i++)
		if (ra_ensure(s, &s->ra[i], err, errlen) == -1)
			goto fail;
	for (i = 0; i < s->nprof; i++)
		if (profile_setup(s, &s->prof[i], err, errlen) == -1)
			goto fail;
	if (o->outbox_dir != NULL)
		snprintf(dir, sizeof(dir), "%s", o->outbox_dir);
	else
		snprintf(dir, sizeof(dir), "%s/outbox", o->state_dir);
	if (scep_outbox_open(dir, outbox_acked, s, &s->outbox, err, errlen) == -1)
		goto fail;
	*out = s;
	return 0;
fail:
	scep_server_free(s);
	return -1;
}

void
scep_server_free(struct scep_server *s)
{
	if (s == NULL)
		return;
	scep_outbox_close(s->outbox);
	for (size_t i = 0; s->prof != NULL && i < s->nprof; i++) {
		free(s->prof[i].cacert);
		free(s->prof[i].next_ca);
		if (s->prof[i].secret != NULL)
			cc_free_secret(s->prof[i].secret, s->prof[i].secret_len);
	}
	free(s->prof);
	for (size_t i = 0; i < s->nra; i++) {
		EVP_PKEY_free(s->ra[i].key);
		X509_free(s->ra[i].cert);
	}
	pthread_mutex_destroy(&s->lock);
	free(s);
}

const char *
scep_server_caps(struct scep_server *s, const char *profile)
{
	for (size_t i = 0; i < s->nprof; i++)
		if (strcmp(s->prof[i].p->name, profile) == 0)
			return s->prof[i].caps;
	return NULL;
}

/* ---- HTTP answers ---- */

void
scep_http_resp_free(struct scep_http_resp *r)
{
	free(r->body);
	memset(r, 0, sizeof(*r));
}

static void
http_text(struct scep_http_resp *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
http_text(struct scep_http_resp *r, int status, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n > sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	free(r->body);
	r->status = status;
	snprintf(r->content_type, sizeof(r->content_type), "text/plain");
	r->body = malloc((size_t)n);
	r->body_len = r->body != NULL ? (size_t)n : 0;
	if (r->body != NULL)
		memcpy(r->body, buf, (size_t)n);
}

static void
http_bytes(struct scep_http_resp *r, const char *type, const uint8_t *p, size_t n)
{
	r->body = malloc(n > 0 ? n : 1);
	if (r->body == NULL) {
		http_text(r, 500, "out of memory");
		return;
	}
	memcpy(r->body, p, n);
	r->body_len = n;
	r->status = 200;
	snprintf(r->content_type, sizeof(r->content_type), "%s", type);
}

/* ---- one PKIOperation ---- */

struct op {
	struct scep_server *s;
	struct scep_profile_rt *pr;
	struct scep_msg m;
	const char *peer;
	struct scep_http_resp *resp;
	time_t now;
	char caller[160];
	unsigned csr_caps;           /* SCEP_CAP_* of the request's PKCS#10 (extensionRequest) */
};

/*
 * The SUCCESS CertRep's content cipher: the strongest the requester advertises in an
 * SMIMECapabilities list (its SignerInfo's, its PKCS#10's, or both) that the profile
 * accepts, else the request's own. A malformed list was read as none (scep_msg_parse,
 * scep_csr_smimecaps) and changes nothing.
 */
static int
op_reply_cipher(struct op *c)
{
	int nid = scep_reply_cipher(c->m.cipher_nid, c->m.smime_caps | c->csr_caps,
	    c->pr->ciphers);

	if (nid != c->m.cipher_nid)
		cc_event_debug(CC_CHAN_OPERATIONAL, c->m.txid, "SCEP: the CertRep is encrypted with "
		    "%s (the requester's SMIMECapabilities); the request used %s", OBJ_nid2sn(nid),
		    OBJ_nid2sn(c->m.cipher_nid));
	return nid;
}

static void
reply(struct op *c, int status, int fail, const char *text, STACK_OF(X509) *certs,
    X509_CRL *crl)
{
	struct scep_reply r = {
		.status = status, .fail_info = fail, .fail_text = text, .txid = c->m.txid,
		.recipient_nonce = c->m.nonce, .certs = certs, .crl = crl, .recipient = c->m.signer,
		.md = c->m.md[0] != '\0' ? c->m.md : "SHA256",
	};
	uint8_t *der = NULL;
	size_t len = 0;
	char why[512];

	if (status == SCEP_SUCCESS)
		r.cipher_nid = op_reply_cipher(c);
	if (scep_certrep_build(&r, c->pr->sign->cert, c->pr->sign->key, c->s->o.libctx, &der,
	    &len, why, sizeof(why)) == -1) {
		cc_log_err("SCEP: transaction %s: %s", c->m.txid, why);
		http_text(c->resp, 500, "cannot build the reply");
		return;
	}
	free(c->resp->body);
	c->resp->body = der;
	c->resp->body_len = len;
	c->resp->status = 200;
	snprintf(c->resp->content_type, sizeof(c->resp->content_type),
	    "application/x-pki-message");
}

static void
fail_reply(struct op *c, int fail, const char *why)
{
	cc_event_debug(CC_CHAN_OPERATIONAL, c->m.txid, "SCEP %s failed (%s): %s",
	    scep_msg_type_name(c->m.type), scep_fail_name(fail), why);
	reply(c, SCEP_FAILURE, fail, why, NULL, NULL);
}

static void
reply_cert(struct op *c, X509 *x)
{
	STACK_OF(X509) *certs = sk_X509_new_null();

	if (certs == NULL || !sk_X509_push(certs, x)) {
		sk_X509_free(certs);
		http_text(c->resp, 500, "out of memory");
		return;
	}
	reply(c, SCEP_SUCCESS, 0, NULL, certs, NULL);
	sk_X509_free(certs);
}

/* The certificate of serial, answered SUCCESS (or FAILURE when it cannot be found). */
static void
reply_serial(struct op *c, const char *serial)
{
	X509 *x = NULL;
	char err[256];

	if (cc_ca_find(c->s->o.ca, serial, NULL, &x, err, sizeof(err)) != 1) {
		fail_reply(c, SCEP_FAIL_BADCERTID, "the issued certificate cannot be found");
		return;
	}
	reply_cert(c, x);
	X509_free(x);
}

/* ---- notifications (service mode) ---- */

static char *
b64(const uint8_t *p, size_t n)
{
	char *out = malloc(n / 3 * 4 + 8);

	if (out != NULL)
		EVP_EncodeBlock((unsigned char *)out, p, (int)n);
	return out;
}

static char *
notification(const char *txid, const uint8_t *csr, size_t csr_len, const char *caller,
    X509 *x, const char *ca_name, X509 *ca, const char *error)
{
	cJSON *root = cJSON_CreateObject(), *n;
	char *csr64 = b64(csr, csr_len), *text = NULL, buf[512];
	unsigned char md[20];
	unsigned int mdlen = 0;

	if (root == NULL || csr64 == NULL)
		goto out;
	n = cJSON_AddObjectToObject(root, "notification");
	if (n == NULL || cJSON_AddStringToObject(n, "transactionId", txid) == NULL ||
	    cJSON_AddStringToObject(n, "certificateRequest", csr64) == NULL ||
	    cJSON_AddStringToObject(n, "callerInfo", caller) == NULL)
		goto out;
	if (x != NULL) {
		struct tm tm;
		char hex[41], serial[CC_CA_SERIAL_HEX_MAX];

		if (X509_digest(x, EVP_sha1(), md, &mdlen) != 1 || mdlen != 20 ||
		    cc_ca_serial_hex(X509_get0_serialNumber(x), serial) == -1 ||
		    ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1)
			goto out;
		for (int i = 0; i < 20; i++)
			snprintf(hex + 2 * i, 3, "%02X", md[i]);
		strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
		if (cJSON_AddStringToObject(n, "certificateThumbprint", hex) == NULL ||
		    cJSON_AddStringToObject(n, "certificateSerialNumber", serial) == NULL ||
		    cJSON_AddStringToObject(n, "certificateExpirationDateUtc", buf) == NULL)
			goto out;
		name_text(X509_get_subject_name(ca), buf, sizeof(buf));
		if (cJSON_AddStringToObject(n, "issuingCertificateAuthority", buf) == NULL ||
		    cJSON_AddStringToObject(n, "caConfiguration", ca_name) == NULL ||
		    cJSON_AddStringToObject(n, "certificateAuthority", "certconn local CA") == NULL)
			goto out;
	} else {
		snprintf(buf, sizeof(buf), "%.255s", error != NULL ? error : "failed");
		if (cJSON_AddNumberToObject(n, "hResult", HRESULT_E_FAIL) == NULL ||
		    cJSON_AddStringToObject(n, "errorDescription", buf) == NULL)
			goto out;
	}
	text = cJSON_PrintUnformatted(root);
out:
	free(csr64);
	cJSON_Delete(root);
	return text;
}

/* Records a failure notification and tries to send it; the outcome changes nothing for the
 * requester (it is refused anyway), only the events say whether the service knows. */
static void
notify_failure(struct op *c, const uint8_t *csr, size_t csr_len, const char *error)
{
	char id[64], why[512], *json;

	json = notification(c->m.txid, csr, csr_len, c->caller, NULL, NULL, NULL, error);
	if (json == NULL || cc_ca_batch_sync(c->s->o.ca, why, sizeof(why)) == -1 ||
	    scep_outbox_put(c->s->outbox, "failureNotification", json,
	    c->pr->p->name, c->m.txid, NULL, id, why, sizeof(why)) == -1) {
		cc_event_emit(CC_EV_SCEP_NOTIFY_SAVE_TO_DISK_FAILED, c->m.txid, "kind",
		    "failureNotification", "reason", json == NULL ? "out of memory" : why, NULL);
		cc_event_emit(CC_EV_SCEP_REQUEST_UPLOAD_FAILURE, c->m.txid, "profile",
		    c->pr->p->name, "reason", error, NULL);
		free(json);
		return;
	}
	free(json);
	if (scep_outbox_send(c->s->outbox, id, why, sizeof(why)) == 0) {
		cc_event_emit(CC_EV_SCEP_NOTIFY_SUCCESS, c->m.txid, "kind", "failureNotification",
		    "profile", c->pr->p->name, NULL);
		cc_event_emit(CC_EV_SCEP_REQUEST_ISSUED_FAILURE, c->m.txid, "profile",
		    c->pr->p->name, "reason", error, "serviceNotified", "true", NULL);
	} else {
		cc_event_emit(CC_EV_SCEP_NOTIFY_ATTEMPT_FAILED, c->m.txid, "kind",
		    "failureNotification", "reason", why, NULL);
		cc_event_emit(CC_EV_SCEP_REQUEST_UPLOAD_FAILURE, c->m.txid, "profile",
		    c->pr->p->name, "reason", error, NULL);
	}
}

/* A refused request: the events, the service told (service mode), the FAILURE CertRep. */
static void
refuse(struct op *c, const uint8_t *csr, size_t csr_len, int fail, const char *why,
    bool service_knows)
{
	if (service_knows && c->pr->p->challenge == CC_SCEP_CHALLENGE_SERVICE)
		notify_failure(c, csr, csr_len, why);
	else
		cc_event_emit(CC_EV_SCEP_REQUEST_ISSUED_FAILURE, c->m.txid, "profile",
		    c->pr->p->name, "reason", why, "failInfo", scep_fail_name(fail), NULL);
	fail_reply(c, fail, why);
}

/* ---- challenges ---- */

static int
challenge_of(X509_REQ *csr, char *out, size_t len)
{
	int i = X509_REQ_get_attr_by_NID(csr, NID_pkcs9_challengePassword, -1);
	X509_ATTRIBUTE *a;
	ASN1_TYPE *t;
	unsigned char *u = NULL;
	int n;

	out[0] = '\0';
	if (i < 0)
		return 0;
	a = X509_REQ_get_attr(csr, i);
	if (a == NULL || X509_ATTRIBUTE_count(a) != 1 ||
	    X509_REQ_get_attr_by_NID(csr, NID_pkcs9_challengePassword, i) >= 0)
		return -1;
	t = X509_ATTRIBUTE_get0_type(a, 0);
	if (t == NULL || (t->type != V_ASN1_PRINTABLESTRING && t->type != V_ASN1_UTF8STRING &&
	    t->type != V_ASN1_IA5STRING && t->type != V_ASN1_T61STRING &&
	    t->type != V_ASN1_BMPSTRING && t->type != V_ASN1_UNIVERSALSTRING))
		return -1;
	n = ASN1_STRING_to_UTF8(&u, t->value.asn1_string);
	if (n <= 0 || (size_t)n >= len || memchr(u, '\0', (size_t)n) != NULL) {
		OPENSSL_free(u);
		return -1;
	}
	memcpy(out, u, (size_t)n);
	out[n] = '\0';
	OPENSSL_cleanse(u, (size_t)n);
	OPENSSL_free(u);
	return 1;
}

/* 0 when the request passes the profile's challenge; -1 with why (and an Intune-like code). */
static int
check_challenge(struct op *c, X509_REQ *csr, const uint8_t *csr_der, size_t csr_len,
    char *why, size_t whylen)
{
	const struct cc_scep_profile *p = c->pr->p;
	char pw[256], code[64] = "", subj[512];
	int has, r = -1;

	has = challenge_of(csr, pw, sizeof(pw));
	if (has == -1)
		return err_set(why, whylen, "the request's challengePassword is malformed");
	switch (p->challenge) {
	case CC_SCEP_CHALLENGE_NONE:
		r = 0;
		break;
	case CC_SCEP_CHALLENGE_STATIC:
		if (has && strlen(pw) == c->pr->secret_len &&
		    CRYPTO_memcmp(pw, c->pr->secret, c->pr->secret_len) == 0)
			r = 0;
		else
			err_set(why, whylen, has ? "wrong challenge password" :
			    "the request has no challenge password");
		break;
	case CC_SCEP_CHALLENGE_DYNAMIC:
		if (!has)
			err_set(why, whylen, "the request has no challenge password");
		else
			r = scep_challenge_consume(c->s->o.ca, p->name, pw,
			    X509_REQ_get_subject_name(csr), c->m.txid, c->now, why, whylen);
		break;
	case CC_SCEP_CHALLENGE_SERVICE:
		r = scep_verify_validate(csr_der, csr_len, c->m.txid, c->caller, code, sizeof(code),
		    why, whylen) == SCEP_VERIFY_OK ? 0 : -1;
		if (r == -1 && code[0] != '\0') {
			char tmp[600];

			snprintf(tmp, sizeof(tmp), "%s: %s", code, why);
			snprintf(why, whylen, "%.500s", tmp);
		}
		break;
	case CC_SCEP_CHALLENGE_WEBHOOK:
		name_text(X509_REQ_get_subject_name(csr), subj, sizeof(subj));
		r = scep_webhook_check(p->webhook_url, c->pr->secret, c->pr->secret_len,
		    p->webhook_timeout_ms, p->name, c->m.txid, subj, csr_der, csr_len, c->peer, why,
		    whylen);
		break;
	}
	OPENSSL_cleanse(pw, sizeof(pw));
	return r;
}

static const char *
mode_name(int m)
{
	static const char *const names[] = { "none", "static", "dynamic", "service", "webhook" };

	return m >= 0 && m < 5 ? names[m] : "?";
}

/* ---- issuance ---- */

/*
 * Issues the certificate of an approved transaction and answers: SUCCESS, or in service
 * mode PENDING when the success notification could not be delivered (the certificate is
 * withheld until the service acknowledges it), or FAILURE.
 */
static void
issue_txn(struct op *c, X509_REQ *csr, const uint8_t *csr_der, size_t csr_len,
    struct cc_iss_result *ir)
{
	const struct cc_scep_profile *p = c->pr->p;
	bool service = p->challenge == CC_SCEP_CHALLENGE_SERVICE;
	char err[512], serial[CC_CA_SERIAL_HEX_MAX], id[64], subj[512], *json = NULL;
	X509 *x = NULL;

	(void)csr;
	if (cc_ca_issue(c->s->o.ca, ir, p->name, c->m.txid, service, &x, err,
	    sizeof(err)) == -1) {
		cc_event_emit(CC_EV_SCEP_ISSUED_FAILURE, c->m.txid, "profile", p->name, "reason",
		    err, NULL);
		scep_txn_move(c->s->o.ca, p->name, c->m.txid, -1, SCEP_TXN_FAILED, NULL, err, NULL,
		    0);
		refuse(c, csr_der, csr_len, SCEP_FAIL_BADREQUEST, "the CA could not issue the "
		    "certificate", true);
		cc_log_err("SCEP: transaction %s: %s", c->m.txid, err);
		return;
	}
	cc_ca_serial_hex(X509_get0_serialNumber(x), serial);
	name_text(X509_get_subject_name(x), subj, sizeof(subj));
	cc_event_emit(CC_EV_SCEP_ISSUED_SUCCESS, c->m.txid, "profile", p->name, "serial", serial,
	    "subject", subj, NULL);
	if (!service) {
		scep_txn_move(c->s->o.ca, p->name, c->m.txid, -1, SCEP_TXN_ISSUED, serial, NULL,
		    NULL, 0);
		cc_event_emit(CC_EV_SCEP_REQUEST_SUCCESS, c->m.txid, "profile", p->name, "serial",
		    serial, "subject", subj, NULL);
		reply_cert(c, x);
		X509_free(x);
		return;
	}
	scep_txn_move(c->s->o.ca, p->name, c->m.txid, -1, SCEP_TXN_NOTIFYING, serial, NULL, NULL,
	    0);
	json = notification(c->m.txid, csr_der, csr_len, c->caller, x, cc_ca_name(c->s->o.ca),
	    cc_ca_cert(c->s->o.ca), NULL);
	/* the certificate and the transaction are on disk before the service may hear of them */
	if (json == NULL || cc_ca_batch_sync(c->s->o.ca, err, sizeof(err)) == -1 ||
	    scep_outbox_put(c->s->outbox, "successNotification", json, p->name,
	    c->m.txid, serial, id, err, sizeof(err)) == -1) {
		/* The service could never learn of this certificate: it is not handed out, and
		 * revoked so that nobody can use it. */
		cc_event_emit(CC_EV_SCEP_NOTIFY_SAVE_TO_DISK_FAILED, c->m.txid, "kind",
		    "successNotification", "serial", serial, "reason", json == NULL ?
		    "out of memory" : err, NULL);
		if (cc_ca_revoke(c->s->o.ca, serial, 5, err, sizeof(err)) == -1)
			cc_log_err("SCEP: revoking %s: %s", serial, err);
		scep_txn_move(c->s->o.ca, p->name, c->m.txid, -1, SCEP_TXN_FAILED, NULL,
		    "the notification to the service could not be recorded", NULL, 0);
		cc_event_emit(CC_EV_SCEP_REQUEST_UPLOAD_FAILURE, c->m.txid, "profile", p->name,
		    "serial", serial, "reason", "the notification could not be written to disk",
		    NULL);
		fail_reply(c, SCEP_FAIL_BADREQUEST, "the request cannot be completed now");
		goto out;
	}
	if (scep_outbox_send(c->s->outbox, id, err, sizeof(err)) == -1) {
		cc_event_emit(CC_EV_SCEP_NOTIFY_ATTEMPT_FAILED, c->m.txid, "kind",
		    "successNotification", "serial", serial, "reason", err, NULL);
		cc_event_emit(CC_EV_SCEP_REQUEST_UPLOAD_FAILURE, c->m.txid, "profile", p->name,
		    "serial", serial, "reason", err, NULL);
		reply(c, SCEP_PENDING, 0, NULL, NULL, NULL);
		goto out;
	}
	cc_event_emit(CC_EV_SCEP_NOTIFY_SUCCESS, c->m.txid, "kind", "successNotification",
	    "profile", p->name, "serial", serial, NULL);
	if (cc_ca_set_withheld(c->s->o.ca, serial, false, err, sizeof(err)) == -1 ||
	    scep_txn_move(c->s->o.ca, p->name, c->m.txid, SCEP_TXN_NOTIFYING, SCEP_TXN_ISSUED,
	    NULL, NULL, err, sizeof(err)) == -1) {
		cc_log_err("SCEP: transaction %s: %s", c->m.txid, err);
		reply(c, SCEP_PENDING, 0, NULL, NULL, NULL);
		goto out;
	}
	cc_event_emit(CC_EV_SCEP_REQUEST_SUCCESS, c->m.txid, "profile", p->name, "serial",
	    serial, "subject", subj, "serviceNotified", "true", NULL);
	reply_cert(c, x);
out:
	free(json);
	X509_free(x);
}

/* What an existing transaction answers to a repeated request or a poll. */
static void
txn_answer(struct op *c, struct scep_txn *t)
{
	X509_REQ *csr = NULL;
	const unsigned char *p;
	struct cc_iss_result ir;
	char why[512];

	switch (t->state) {
	case SCEP_TXN_ISSUED:
		reply_serial(c, t->serial);
		return;
	case SCEP_TXN_PENDING:
		reply(c, SCEP_PENDING, 0, NULL, NULL, NULL);
		return;
	case SCEP_TXN_REJECTED:
		fail_reply(c, SCEP_FAIL_BADREQUEST, t->reason[0] != '\0' ? t->reason :
		    "rejected by the administrator");
		return;
	case SCEP_TXN_FAILED:
		fail_reply(c, SCEP_FAIL_BADREQUEST, t->reason[0] != '\0' ? t->reason :
		    "the request failed");
		return;
	case SCEP_TXN_NOTIFYING: {
		struct scep_txn u;

		/* a due resend may settle it right now */
		scep_outbox_retry(c->s->outbox, c->now, false);
		if (scep_txn_get(c->s->o.ca, t->profile, t->txid, &u, why, sizeof(why)) == 1 &&
		    u.state == SCEP_TXN_ISSUED)
			reply_serial(c, u.serial);
		else
			reply(c, SCEP_PENDING, 0, NULL, NULL, NULL);
		free(u.csr);
		return;
	}
	case SCEP_TXN_APPROVED:
		break;
	default:
		fail_reply(c, SCEP_FAIL_BADREQUEST, "the transaction is in an unknown state");
		return;
	}
	/* Approved by the administrator: issue now, under the profile as it is today. */
	p = t->csr;
	csr = t->csr != NULL ? d2i_X509_REQ(NULL, &p, (long)t->csr_len) : NULL;
	if (csr == NULL) {
		fail_reply(c, SCEP_FAIL_BADREQUEST, "the stored request cannot be read");
		return;
	}
	if (cc_issuance_apply(&c->pr->p->issuance, csr, c->now, &ir, why, sizeof(why)) == -1) {
		scep_txn_move(c->s->o.ca, t->profile, t->txid, -1, SCEP_TXN_FAILED, NULL, why, NULL,
		    0);
		refuse(c, t->csr, t->csr_len, SCEP_FAIL_BADREQUEST, why, true);
	} else {
		issue_txn(c, csr, t->csr, t->csr_len, &ir);
		cc_iss_result_free(&ir);
	}
	X509_REQ_free(csr);
}

/* RenewalReq (or PKCSReq signed by a certificate of ours): the signer's checks. */
static int
check_renewal(struct op *c, const X509_NAME *new_subject, int *fail, char *why, size_t whylen)
{
	struct cc_ca_cert_info in;
	X509 *x = NULL;
	char serial[CC_CA_SERIAL_HEX_MAX];
	int r;

	*fail = SCEP_FAIL_BADCERTID;
	if (cc_ca_serial_hex(X509_get0_serialNumber(c->m.signer), serial) == -1)
		return err_set(why, whylen, "the signer's serial number is not valid");
	r = cc_ca_find(c->s->o.ca, serial, &in, &x, why, whylen);
	if (r != 1 || X509_cmp(x, c->m.signer) != 0) {
		X509_free(x);
		return r == -1 ? -1 : err_set(why, whylen, "the signer's certificate was not "
		    "issued by this CA");
	}
	X509_free(x);
	if (in.state == CC_CA_CERT_REVOKED)
		return err_set(why, whylen, "the signer's certificate is revoked");
	if (in.state == CC_CA_CERT_WITHHELD)
		return err_set(why, whylen, "the signer's certificate was never handed out");
	if (c->now < in.not_before || c->now >= in.not_after)
		return err_set(why, whylen, "the signer's certificate is not valid now");
	*fail = SCEP_FAIL_BADREQUEST;
	if (c->pr->p->renewal_window_days > 0 &&
	    c->now < in.not_after - (time_t)c->pr->p->renewal_window_days * 86400)
		return err_set(why, whylen, "renewal is allowed only in the last %u days of the "
		    "certificate", c->pr->p->renewal_window_days);
	if (X509_NAME_cmp(new_subject, X509_get_subject_name(c->m.signer)) != 0)
		return err_set(why, whylen, "the renewal is not for the subject of the signer's "
		    "certificate");
	return 0;
}

/* Is the request's signer the certificate with this serial? */
static bool
signer_is(struct op *c, const char *serial)
{
	char hex[CC_CA_SERIAL_HEX_MAX];

	return serial[0] != '\0' && cc_ca_serial_hex(X509_get0_serialNumber(c->m.signer),
	    hex) == 0 && strcmp(hex, serial) == 0;
}

static int
ours(struct op *c, X509 *x)
{
	X509 *ca = cc_ca_cert(c->s->o.ca);
	int r = X509_check_issued(ca, x) == X509_V_OK && X509_verify(x, X509_get0_pubkey(ca)) == 1;

	ERR_clear_error();
	return r;
}

static void
op_enroll(struct op *c)
{
	const struct cc_scep_profile *p = c->pr->p;
	const unsigned char *q = c->m.content;
	X509_REQ *csr = d2i_X509_REQ(NULL, &q, (long)c->m.content_len);
	EVP_PKEY *ck;
	struct cc_iss_result ir = { 0 };
	struct scep_txn t = { 0 }, old = { 0 };
	bool renewal = false, self, replace = false;
	char why[512];
	int fail = SCEP_FAIL_BADREQUEST, r;

	if (csr == NULL || q != c->m.content + c->m.content_len ||
	    (ck = X509_REQ_get0_pubkey(csr)) == NULL) {
		refuse(c, NULL, 0, SCEP_FAIL_BADREQUEST, "the content is not a PKCS#10 request",
		    false);
		goto out;
	}
	(void)scep_csr_smimecaps(csr, &c->csr_caps);
	self = X509_check_issued(c->m.signer, c->m.signer) == X509_V_OK;
	if (c->m.type == SCEP_RENEWALREQ || (!self && ours(c, c->m.signer))) {
		if (!p->renewal) {
			refuse(c, c->m.content, c->m.content_len, SCEP_FAIL_BADREQUEST,
			    "renewal is not enabled for this profile", false);
			goto out;
		}
		if (!ours(c, c->m.signer)) {
			refuse(c, c->m.content, c->m.content_len, SCEP_FAIL_BADCERTID,
			    "a RenewalReq must be signed by a certificate of this CA", false);
			goto out;
		}
		renewal = true;
	} else if (!self) {
		refuse(c, c->m.content, c->m.content_len, SCEP_FAIL_BADMESSAGECHECK, "a PKCSReq "
		    "must be signed by a self-signed certificate for the request's key", false);
		goto out;
	} else if (EVP_PKEY_eq(X509_get0_pubkey(c->m.signer), ck) != 1) {
		refuse(c, c->m.content, c->m.content_len, SCEP_FAIL_BADREQUEST,
		    "the self-signed signer's key is not the request's key", false);
		goto out;
	}
	snprintf(t.txid, sizeof(t.txid), "%s", c->m.txid);
	snprintf(t.profile, sizeof(t.profile), "%s", p->name);
	/* A PKCSReq's signer key is the request's key (checked above): one hash for both, as
	 * each costs an OpenSSL 3 encoder round trip. */
	if (spki_hash(ck, t.spki) == -1 ||
	    (renewal && spki_hash(X509_get0_pubkey(c->m.signer), t.signer_spki) == -1)) {
		http_text(c->resp, 500, "cannot hash the keys");
		goto out;
	}
	if (!renewal)
		memcpy(t.signer_spki, t.spki, sizeof(t.spki));
	/* A transaction seen before: a retransmission (same key) gets the same answer. */
	r = scep_txn_get(c->s->o.ca, p->name, c->m.txid, &old, why, sizeof(why));
	if (r == -1) {
		cc_log_err("SCEP: %s", why);
		http_text(c->resp, 503, "the request cannot be processed now");
		goto out;
	}
	if (r == 1 && renewal && old.state == SCEP_TXN_ISSUED && signer_is(c, old.serial)) {
		/*
		 * Renewing the very certificate this transaction issued: clients that keep their
		 * key keep their transactionID too (certmonger derives it from the key), so this
		 * is a new issuance under the same transaction, not a retransmission.
		 */
		replace = true;
	} else if (r == 1) {
		if (memcmp(old.spki, t.spki, sizeof(t.spki)) != 0)
			fail_reply(c, SCEP_FAIL_BADREQUEST, "the transactionID was used for another "
			    "key");
		else
			txn_answer(c, &old);
		goto out;
	}
	if (cc_issuance_apply(&p->issuance, csr, c->now, &ir, why, sizeof(why)) == -1) {
		cc_event_emit(CC_EV_SCEP_ISSUED_FAILURE, c->m.txid, "profile", p->name, "reason",
		    why, NULL);
		refuse(c, c->m.content, c->m.content_len, SCEP_FAIL_BADREQUEST, why, false);
		goto out;
	}
	if (renewal) {
		if (check_renewal(c, ir.subject, &fail, why, sizeof(why)) == -1) {
			cc_event_emit(CC_EV_SCEP_VERIFY_FAILURE, c->m.txid, "profile", p->name, "mode",
			    "renewal", "reason", why, NULL);
			refuse(c, c->m.content, c->m.content_len, fail, why, false);
			goto out;
		}
	} else if (check_challenge(c, csr, c->m.content, c->m.content_len, why,
	    sizeof(why)) == -1) {
		cc_event_emit(CC_EV_SCEP_VERIFY_FAILURE, c->m.txid, "profile", p->name, "mode",
		    mode_name(p->challenge), "reason", why, NULL);
		refuse(c, c->m.content, c->m.content_len, SCEP_FAIL_BADREQUEST, why, false);
		goto out;
	}
	cc_event_emit(CC_EV_SCEP_VERIFY_SUCCESS, c->m.txid, "profile", p->name, "mode",
	    renewal ? "renewal" : mode_name(p->challenge), NULL);
	name_text(X509_REQ_get_subject_name(csr), t.subject, sizeof(t.subject));
	t.state = p->manual_approval && !renewal ? SCEP_TXN_PENDING : SCEP_TXN_APPROVED;
	t.csr = c->m.content;
	t.csr_len = c->m.content_len;
	t.created = t.updated = c->now;
	if (scep_txn_insert(c->s->o.ca, &t, replace, why, sizeof(why)) == -1) {
		/* the same transaction arriving twice at once: the other one answers it */
		cc_log_err("SCEP: %s", why);
		http_text(c->resp, 503, "the request cannot be processed now");
		goto out;
	}
	if (t.state == SCEP_TXN_PENDING) {
		cc_event_debug(CC_CHAN_OPERATIONAL, c->m.txid, "SCEP request of profile %s waits "
		    "for approval (certconnctl scep approve %s)", p->name, c->m.txid);
		reply(c, SCEP_PENDING, 0, NULL, NULL, NULL);
		goto out;
	}
	issue_txn(c, csr, c->m.content, c->m.content_len, &ir);
out:
	free(old.csr);
	cc_iss_result_free(&ir);
	X509_REQ_free(csr);
}

static void
op_certpoll(struct op *c)
{
	X509_NAME *issuer = NULL, *subject = NULL;
	X509_REQ *csr = NULL;
	struct scep_txn t = { 0 };
	const unsigned char *p;
	uint8_t sk[32];
	char why[256];
	int r;

	if (scep_parse_issuer_subject(c->m.content, c->m.content_len, &issuer, &subject) == -1) {
		fail_reply(c, SCEP_FAIL_BADREQUEST, "the content is not an IssuerAndSubject");
		goto out;
	}
	if (X509_NAME_cmp(issuer, X509_get_subject_name(cc_ca_cert(c->s->o.ca))) != 0) {
		fail_reply(c, SCEP_FAIL_BADCERTID, "the issuer is not this CA");
		goto out;
	}
	r = scep_txn_get(c->s->o.ca, c->pr->p->name, c->m.txid, &t, why, sizeof(why));
	if (r == -1) {
		cc_log_err("SCEP: %s", why);
		http_text(c->resp, 503, "the request cannot be processed now");
		goto out;
	}
	if (r == 0) {
		fail_reply(c, SCEP_FAIL_BADCERTID, "unknown transaction");
		goto out;
	}
	p = t.csr;
	csr = t.csr != NULL ? d2i_X509_REQ(NULL, &p, (long)t.csr_len) : NULL;
	if (csr == NULL || X509_NAME_cmp(subject, X509_REQ_get_subject_name(csr)) != 0) {
		fail_reply(c, SCEP_FAIL_BADCERTID, "the subject is not the transaction's");
		goto out;
	}
	/* the request being polled for says which ciphers its sender has */
	(void)scep_csr_smimecaps(csr, &c->csr_caps);
	/* Only the requester may poll: its request key or the key that signed the request. */
	if (spki_hash(X509_get0_pubkey(c->m.signer), sk) == -1 ||
	    (memcmp(sk, t.spki, 32) != 0 && memcmp(sk, t.signer_spki, 32) != 0)) {
		fail_reply(c, SCEP_FAIL_BADMESSAGECHECK, "the poll is not signed by the requester");
		goto out;
	}
	txn_answer(c, &t);
out:
	free(t.csr);
	X509_REQ_free(csr);
	X509_NAME_free(issuer);
	X509_NAME_free(subject);
}

static void
op_getcert_crl(struct op *c)
{
	X509_NAME *issuer = NULL;
	ASN1_INTEGER *sn = NULL;
	struct cc_ca_cert_info in;
	char serial[CC_CA_SERIAL_HEX_MAX], why[256];
	X509 *x = NULL;
	uint8_t *der = NULL;
	size_t len = 0;
	int r;

	if (scep_parse_issuer_serial(c->m.content, c->m.content_len, &issuer, &sn) == -1) {
		fail_reply(c, SCEP_FAIL_BADREQUEST, "the content is not an IssuerAndSerialNumber");
		goto out;
	}
	if (X509_NAME_cmp(issuer, X509_get_subject_name(cc_ca_cert(c->s->o.ca))) != 0) {
		fail_reply(c, SCEP_FAIL_BADCERTID, "the issuer is not this CA");
		goto out;
	}
	if (c->m.type == SCEP_GETCRL) {
		X509_CRL *crl;
		const unsigned char *p;

		if (cc_ca_crl_refresh(c->s->o.ca, false, c->now, why, sizeof(why)) == -1)
			cc_log_err("SCEP: CRL: %s", why);
		if (cc_ca_crl_latest(c->s->o.ca, &der, &len, NULL, why, sizeof(why)) != 1) {
			fail_reply(c, SCEP_FAIL_BADCERTID, "no CRL is available");
			goto out;
		}
		p = der;
		crl = d2i_X509_CRL(NULL, &p, (long)len);
		if (crl == NULL) {
			http_text(c->resp, 500, "the stored CRL cannot be read");
			goto out;
		}
		reply(c, SCEP_SUCCESS, 0, NULL, NULL, crl);
		X509_CRL_free(crl);
		goto out;
	}
	r = cc_ca_serial_hex(sn, serial) == -1 ? 0 :
	    cc_ca_find(c->s->o.ca, serial, &in, &x, why, sizeof(why));
	if (r != 1 || in.state == CC_CA_CERT_WITHHELD) {
		fail_reply(c, SCEP_FAIL_BADCERTID, "no certificate with this serial number");
		goto out;
	}
	reply_cert(c, x);
out:
	free(der);
	X509_free(x);
	X509_NAME_free(issuer);
	ASN1_INTEGER_free(sn);
}

static void
pkioperation(struct scep_server *s, struct scep_profile_rt *pr, const uint8_t *der,
    size_t len, const char *peer, struct scep_http_resp *resp)
{
	struct op c = { .s = s, .pr = pr, .peer = peer, .resp = resp, .now = time(NULL) };
	char why[512];
	int fail, r;

	snprintf(c.caller, sizeof(c.caller), "certconn/%s profile=%s peer=%s", CC_VERSION,
	    pr->p->name, peer != NULL ? peer : "-");
	cc_ca_batch_begin(s->o.ca); /* one fsync for this request's writes, before the reply */
	if (scep_msg_parse(der, len, &c.m, &fail, why, sizeof(why)) == -1) {
		if (fail == SCEP_FAIL_NONE) {
			cc_event_debug(CC_CHAN_OPERATIONAL, NULL, "SCEP: unreadable PKIOperation from "
			    "%s: %s", peer != NULL ? peer : "-", why);
			http_text(resp, 400, "%s", why);
		} else {
			fail_reply(&c, fail, why);
		}
		goto out;
	}
	cc_event_emit(CC_EV_SCEP_REQUEST_RECEIVED, c.m.txid, "messageType",
	    scep_msg_type_name(c.m.type), "profile", pr->p->name, "peer", peer != NULL ? peer :
	    "", NULL);
	r = scep_nonce_check(s->o.ca, c.m.nonce, c.now, s->o.conf->replay_window_s);
	if (r != 0) {
		if (r == -1)
			http_text(resp, 503, "the request cannot be processed now");
		else
			fail_reply(&c, SCEP_FAIL_BADREQUEST, "the senderNonce was already used");
		goto out;
	}
	if (c.m.signing_time != 0 && (c.m.signing_time > c.now + (time_t)s->o.conf->clock_skew_s ||
	    c.m.signing_time < c.now - (time_t)s->o.conf->clock_skew_s)) {
		fail_reply(&c, SCEP_FAIL_BADTIME, "the signingTime is too far from the server's "
		    "clock");
		goto out;
	}
	if (scep_msg_decrypt(&c.m, pr->enc->key, pr->enc->cert, pr->ciphers, s->o.libctx, &fail,
	    why, sizeof(why)) == -1) {
		fail_reply(&c, fail, why);
		goto out;
	}
	switch (c.m.type) {
	case SCEP_PKCSREQ:
	case SCEP_RENEWALREQ:
		op_enroll(&c);
		break;
	case SCEP_CERTPOLL:
		op_certpoll(&c);
		break;
	case SCEP_GETCERT:
	case SCEP_GETCRL:
		op_getcert_crl(&c);
		break;
	}
out:
	if (cc_ca_batch_end(s->o.ca, why, sizeof(why)) == -1) {
		cc_log_err("SCEP: %s", why);
		http_text(resp, 503, "the request cannot be processed now");
	}
	scep_msg_free(&c.m);
}

/* ---- the HTTP surface ---- */

static struct scep_profile_rt *
profile_for(struct scep_server *s, const char *path)
{
	char name[CC_SCEP_PROFILE_NAME_MAX + 1];
	const char *p;
	size_t n;

	if (strcmp(path, "/scep") == 0 || strcmp(path, "/scep/") == 0 ||
	    strcmp(path, "/cgi-bin/pkiclient.exe") == 0 || strcmp(path, "/scep/pkiclient.exe") == 0)
		return &s->prof[s->o.conf->default_profile];
	if (strncmp(path, "/scep/", 6) != 0)
		return NULL;
	p = path + 6;
	n = strcspn(p, "/");
	/* "/scep/<profile>", optionally followed by "/pkiclient.exe" as some clients add */
	if (n == 0 || n >= sizeof(name) || (p[n] != '\0' && strcmp(p + n, "/pkiclient.exe") != 0 &&
	    strcmp(p + n, "/") != 0))
		return NULL;
	memcpy(name, p, n);
	name[n] = '\0';
	for (size_t i = 0; i < s->nprof; i++)
		if (strcmp(s->prof[i].p->name, name) == 0)
			return &s->prof[i];
	return NULL;
}

void
scep_server_handle(struct scep_server *s, const struct scep_http_req *req,
    struct scep_http_resp *resp)
{
	struct scep_profile_rt *pr;
	uint8_t *der = NULL;
	size_t len = 0;

	memset(resp, 0, sizeof(*resp));
	pr = profile_for(s, req->path);
	if (pr == NULL) {
		http_text(resp, 404, "no such SCEP profile");
		return;
	}
	if (req->operation == NULL) {
		http_text(resp, 400, "the operation parameter is missing");
		return;
	}
	if (strcmp(req->operation, "PKIOperation") == 0) {
		if (req->post) {
			pkioperation(s, pr, req->body, req->body_len, req->peer, resp);
			return;
		}
		if (req->message == NULL || scep_base64_decode(req->message, strlen(req->message),
		    &der, &len, SCEP_MSG_MAX) == -1) {
			http_text(resp, 400, "the message parameter is missing or not base64");
			return;
		}
		pkioperation(s, pr, der, len, req->peer, resp);
		free(der);
		return;
	}
	if (req->post) {
		http_text(resp, 405, "%s is a GET operation", req->operation);
		return;
	}
	if (strcmp(req->operation, "GetCACaps") == 0) {
		http_bytes(resp, "text/plain", (const uint8_t *)pr->caps, strlen(pr->caps));
	} else if (strcmp(req->operation, "GetCACert") == 0) {
		http_bytes(resp, pr->cacert_type, pr->cacert, pr->cacert_len);
	} else if (strcmp(req->operation, "GetNextCACert") == 0) {
		if (pr->next_ca == NULL)
			http_text(resp, 404, "there is no next CA certificate");
		else
			http_bytes(resp, "application/x-x509-next-ca-cert", pr->next_ca,
			    pr->next_ca_len);
	} else {
		http_text(resp, 400, "unknown operation");
	}
}

void
scep_server_tick(struct scep_server *s, time_t now)
{
	char err[512];

	if (pthread_mutex_trylock(&s->lock) != 0)
		return; /* a tick is running */
	if (cc_ca_crl_refresh(s->o.ca, false, now, err, sizeof(err)) == -1)
		cc_log_err("SCEP: CRL: %s", err);
	(void)scep_outbox_retry(s->outbox, now, false);
	s->last_tick = now;
	pthread_mutex_unlock(&s->lock);
}

/* For net's /ca/<name>.crt: the CA certificate's DER (malloc'd). */
int
scep_server_ca_der(struct scep_server *s, uint8_t **der, size_t *len)
{
	return der_of(cc_ca_cert(s->o.ca), der, len);
}
