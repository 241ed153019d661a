/*
 * What the three PKCS#12 flows share: a key and certificate (with its chain) packed into a
 * PKCS#12 under a fresh random password and delivered to the device as two CMS envelopes,
 * plus, where the profile keeps one, a copy sealed to the connector's pfx role key. The
 * cryptography is flows_crypto.c's (OpenSSL); this file decides what goes where.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <openssl/asn1.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "certconn/ca.h"
#include "certconn/flows.h"
#include "flows_int.h"

/* ---- certificate facts for the result and the events ---- */

int
flows_cert_facts(X509 *x, struct flows_cert_facts *f)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	const ASN1_TIME *na = X509_get0_notAfter(x);
	struct tm tm;
	BIO *b;
	int n;

	memset(f, 0, sizeof(*f));
	if (cc_ca_serial_hex(X509_get0_serialNumber(x), f->serial) == -1 ||
	    X509_digest(x, EVP_sha1(), md, &mdlen) != 1 || mdlen != 20)
		return -1;
	for (unsigned int i = 0; i < mdlen; i++)
		snprintf(f->thumbprint + 2 * i, 3, "%02X", md[i]);
	if (na == NULL || ASN1_TIME_to_tm(na, &tm) != 1 ||
	    strftime(f->not_after, sizeof(f->not_after), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return -1;
	b = BIO_new(BIO_s_mem());
	if (b == NULL)
		return -1;
	if (X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) >= 0 &&
	    (n = BIO_read(b, f->subject, sizeof(f->subject) - 1)) > 0)
		f->subject[n] = '\0';
	BIO_free(b);
	return 0;
}

static int
add_b64(cJSON *o, const char *name, const uint8_t *d, size_t n)
{
	char *s = flows_b64_encode(d, n);
	int r = -1;

	if (s != NULL && cJSON_AddStringToObject(o, name, s) != NULL)
		r = 0;
	free(s);
	return r;
}

/* ---- delivery ---- */

int32_t
flows_deliver(const struct flows_env *env, const struct flows_delivery *d, cJSON **result,
    bool *retry, char *why, size_t whylen)
{
	struct flows_cert_facts facts;
	char password[FLOWS_C_PASSWORD_MAX + 1];
	uint8_t *p12 = NULL, *env_p12 = NULL, *env_pw = NULL, *kept = NULL, *certder = NULL;
	size_t p12_len = 0, env_p12_len = 0, env_pw_len = 0, kept_len = 0;
	EVP_PKEY *devkey = NULL;
	X509 *devcert = NULL;
	cJSON *o = NULL, *copy = NULL;
	char *copy_text = NULL;
	int32_t code = FLOWS_E_RETRYABLE;
	int e, n;

	*result = NULL;
	*retry = false;
	memset(password, 0, sizeof(password));
	if (flows_cert_facts(d->cert, &facts) == -1) {
		snprintf(why, whylen, "the certificate cannot be read");
		return FLOWS_E_CRYPTO;
	}
	if (d->device->is_cert) {
		const unsigned char *p = d->device->der;
		devcert = d2i_X509(NULL, &p, (long)d->device->len);
	} else
		devkey = flows_device_key(d->device);
	if (devcert == NULL && devkey == NULL) {
		snprintf(why, whylen, "the device key cannot be read");
		code = FLOWS_E_PARAMETER;
		goto out;
	}
	if ((e = flows_c_password(password, sizeof(password))) != FLOWS_C_OK) {
		code = flows_c_code(e, retry);
		snprintf(why, whylen, "password: %s", flows_c_strerror(e));
		goto out;
	}
	e = flows_c_p12_pack(d->key, d->cert, d->chain, password, d->legacy, &p12,
	    &p12_len);
	if (e != FLOWS_C_OK) {
		code = flows_c_code(e, retry);
		snprintf(why, whylen, "PKCS#12: %s", flows_c_strerror(e));
		goto out;
	}
	e = flows_c_seal(devcert, devkey, p12, p12_len, &env_p12, &env_p12_len);
	if (e == FLOWS_C_OK)
		e = flows_c_seal(devcert, devkey, (const uint8_t *)password,
		    strlen(password), &env_pw, &env_pw_len);
	if (e != FLOWS_C_OK) {
		code = flows_c_code(e, retry);
		snprintf(why, whylen, "sealing to the device: %s", flows_c_strerror(e));
		goto out;
	}
	if (d->keep_copy) {
		copy = cJSON_CreateObject();
		if (copy == NULL || cJSON_AddNumberToObject(copy, "version", 1) == NULL ||
		    add_b64(copy, "pfx", p12, p12_len) == -1 ||
		    cJSON_AddStringToObject(copy, "password", password) == NULL ||
		    (copy_text = cJSON_PrintUnformatted(copy)) == NULL) {
			snprintf(why, whylen, "out of memory");
			*retry = true;
			goto out;
		}
		e = flows_c_seal(env->pfx_cert, env->pfx_cert == NULL ? env->pfx_pub : NULL,
		    (const uint8_t *)copy_text, strlen(copy_text), &kept, &kept_len);
		if (e != FLOWS_C_OK) {
			code = flows_c_code(e, retry);
			snprintf(why, whylen, "sealing the kept copy: %s", flows_c_strerror(e));
			goto out;
		}
	}
	o = cJSON_CreateObject();
	n = i2d_X509(d->cert, &certder);
	if (o == NULL || n <= 0 ||
	    add_b64(o, "encryptedPfx", env_p12, env_p12_len) == -1 ||
	    add_b64(o, "encryptedPassword", env_pw, env_pw_len) == -1 ||
	    add_b64(o, "certificate", certder, (size_t)n) == -1 ||
	    cJSON_AddStringToObject(o, "certificateThumbprint", facts.thumbprint) == NULL ||
	    cJSON_AddStringToObject(o, "serialNumber", facts.serial) == NULL ||
	    cJSON_AddStringToObject(o, "subjectName", facts.subject) == NULL ||
	    cJSON_AddStringToObject(o, "notAfterUtc", facts.not_after) == NULL ||
	    cJSON_AddStringToObject(o, "p12Form", d->legacy ? "legacy" : "aes256") == NULL ||
	    (d->keyspec != NULL && cJSON_AddStringToObject(o, "keySpec", d->keyspec) == NULL) ||
	    (d->purpose != NULL && d->purpose[0] != '\0' &&
	    cJSON_AddStringToObject(o, "intendedPurpose", d->purpose) == NULL) ||
	    (kept != NULL && add_b64(o, "keptCopy", kept, kept_len) == -1)) {
		snprintf(why, whylen, "out of memory");
		*retry = true;
		goto out;
	}
	*result = o;
	o = NULL;
	code = FLOWS_OK;
out:
	OPENSSL_cleanse(password, sizeof(password));
	if (p12 != NULL) {
		OPENSSL_cleanse(p12, p12_len);
		free(p12);
	}
	if (copy_text != NULL) {
		OPENSSL_cleanse(copy_text, strlen(copy_text));
		free(copy_text);
	}
	flows_json_wipe_delete(copy);
	free(env_p12);
	free(env_pw);
	free(kept);
	OPENSSL_free(certder);
	cJSON_Delete(o);
	EVP_PKEY_free(devkey);
	X509_free(devcert);
	return code;
}
