/*
 * Payload parsers of the four flows (certconn/flows.h). Every member is checked for type,
 * size and form; a hub payload with a member the flow does not know is refused (a misspelt
 * member must not pass silently, as everywhere in the protocol). The Intune-shaped
 * revocation item is a response of Intune's API, whose unknown members are ignored.
 * Nothing here touches keys or the CA: a refused payload never reaches them.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "certconn/ca.h"
#include "certconn/config_flows.h"
#include "certconn/flows.h"
#include "flows_int.h"

static int32_t
bad(char *why, size_t whylen, int32_t code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return code;
}

/* ---- base64 (OpenSSL's codec; the framing checks are ours) ---- */

int
flows_b64_decode(const char *s, size_t max, uint8_t **out, size_t *outlen)
{
	size_t n = strlen(s), pad = 0;
	uint8_t *d;
	int r;

	*out = NULL;
	*outlen = 0;
	if (n == 0 || n % 4 != 0 || n / 4 * 3 > max + 2 || n > (size_t)INT32_MAX)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '=') {
			if (i < n - 2)
				return -1;
			pad++;
		} else if (pad > 0 || !(isalnum(c) || c == '+' || c == '/'))
			return -1;
	}
	d = malloc(n / 4 * 3 + 1);
	if (d == NULL)
		return -1;
	r = EVP_DecodeBlock(d, (const unsigned char *)s, (int)n);
	if (r < 0 || (size_t)r < pad || (size_t)r - pad > max) {
		free(d);
		return -1;
	}
	*out = d;
	*outlen = (size_t)r - pad;
	return 0;
}

char *
flows_b64_encode(const uint8_t *d, size_t n)
{
	char *s;

	if (n > (size_t)INT32_MAX / 2)
		return NULL;
	s = malloc((n + 2) / 3 * 4 + 1);
	if (s != NULL)
		EVP_EncodeBlock((unsigned char *)s, d, (int)n);
	return s;
}

/* ---- members ---- */

/* Refuses a member not in allowed (NULL-terminated) and a member given twice. */
static int32_t
only_members(const cJSON *o, const char *const *allowed, char *why, size_t whylen)
{
	const cJSON *it, *it2;

	if (!cJSON_IsObject(o))
		return bad(why, whylen, FLOWS_E_PARAMETER, "payload: expected a JSON object");
	cJSON_ArrayForEach(it, o) {
		size_t i;

		if (it->string == NULL)
			return bad(why, whylen, FLOWS_E_PARAMETER, "payload: a member has no name");
		for (i = 0; allowed[i] != NULL; i++)
			if (strcmp(allowed[i], it->string) == 0)
				break;
		if (allowed[i] == NULL)
			return bad(why, whylen, FLOWS_E_PARAMETER, "payload.%.64s: unknown member",
			    it->string);
		for (it2 = it->next; it2 != NULL; it2 = it2->next)
			if (it2->string != NULL && strcmp(it2->string, it->string) == 0)
				return bad(why, whylen, FLOWS_E_PARAMETER, "payload.%.64s: given twice",
				    it->string);
	}
	return FLOWS_OK;
}

/* A string member of 1..max bytes, printable (no control characters). NULL when absent;
 * a present member of the wrong form sets *code. */
static const char *
str_member(const cJSON *o, const char *name, size_t max, bool required, int32_t *code,
    char *why, size_t whylen)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, name);
	size_t n;

	if (*code != FLOWS_OK)
		return NULL;
	if (m == NULL) {
		if (required)
			*code = bad(why, whylen, FLOWS_E_PARAMETER, "payload.%s: missing", name);
		return NULL;
	}
	if (!cJSON_IsString(m) || m->valuestring == NULL) {
		*code = bad(why, whylen, FLOWS_E_PARAMETER, "payload.%s: expected a string", name);
		return NULL;
	}
	n = strlen(m->valuestring);
	if (n == 0 || n > max) {
		*code = bad(why, whylen, n > max && max >= 4096 ? FLOWS_E_TOO_LARGE :
		    FLOWS_E_PARAMETER, "payload.%s: expected 1 to %zu bytes, found %zu", name, max,
		    n);
		return NULL;
	}
	for (const unsigned char *c = (const unsigned char *)m->valuestring; *c != '\0'; c++)
		if (*c < 0x20 || *c == 0x7f) {
			*code = bad(why, whylen, FLOWS_E_PARAMETER, "payload.%s: control character",
			    name);
			return NULL;
		}
	return m->valuestring;
}

static void
copy_str(char *dst, size_t cap, const char *s)
{
	if (s != NULL)
		snprintf(dst, cap, "%s", s);
}

/* A base64 member decoded (max bytes after decoding). */
static uint8_t *
b64_member(const cJSON *o, const char *name, size_t max, bool required, size_t *len,
    int32_t *code, char *why, size_t whylen)
{
	const char *s = str_member(o, name, (max + 2) / 3 * 4, required, code, why, whylen);
	uint8_t *d;

	*len = 0;
	if (s == NULL)
		return NULL;
	if (flows_b64_decode(s, max, &d, len) == -1) {
		*code = bad(why, whylen, FLOWS_E_PARAMETER, "payload.%s: not valid base64", name);
		return NULL;
	}
	return d;
}

/* Exactly one of devicePublicKey and deviceCertificate, and it must decode. */
static int32_t
device_member(const cJSON *o, struct flows_device *dev, char *why, size_t whylen)
{
	int32_t code = FLOWS_OK;
	const unsigned char *p;
	bool pk = cJSON_GetObjectItemCaseSensitive(o, "devicePublicKey") != NULL;
	bool cert = cJSON_GetObjectItemCaseSensitive(o, "deviceCertificate") != NULL;

	if (pk == cert)
		return bad(why, whylen, FLOWS_E_PARAMETER, pk ? "payload.devicePublicKey, "
		    "payload.deviceCertificate: give one, not both" : "payload.devicePublicKey: "
		    "missing (or payload.deviceCertificate)");
	dev->is_cert = cert;
	dev->der = b64_member(o, cert ? "deviceCertificate" : "devicePublicKey", 16384, true,
	    &dev->len, &code, why, whylen);
	if (code != FLOWS_OK)
		return code;
	p = dev->der;
	if (cert) {
		X509 *x = d2i_X509(NULL, &p, (long)dev->len);
		EVP_PKEY *k = x != NULL ? X509_get0_pubkey(x) : NULL;
		bool ok = k != NULL && p == dev->der + dev->len;

		X509_free(x);
		if (!ok)
			return bad(why, whylen, FLOWS_E_PARAMETER, "payload.deviceCertificate: not a "
			    "DER certificate with a public key");
	} else {
		EVP_PKEY *k = d2i_PUBKEY(NULL, &p, (long)dev->len);
		bool ok = k != NULL && p == dev->der + dev->len;

		EVP_PKEY_free(k);
		if (!ok)
			return bad(why, whylen, FLOWS_E_PARAMETER, "payload.devicePublicKey: not a DER "
			    "SubjectPublicKeyInfo");
	}
	return FLOWS_OK;
}

static void
device_free(struct flows_device *d)
{
	free(d->der);
	memset(d, 0, sizeof(*d));
}

static bool
id_chars_ok(const char *s)
{
	for (; *s != '\0'; s++)
		if (!(isalnum((unsigned char)*s) || strchr("._:-{}@", *s) != NULL))
			return false;
	return true;
}

/* ---- pkcs ---- */

static const char *const subject_names[FLOWS_SUBJ_N] = {
	"cn", "o", "ou", "c", "l", "st", "email", "serialNumber", "uid",
};

const char *
flows_subject_attr_name(int i)
{
	return i >= 0 && i < FLOWS_SUBJ_N ? subject_names[i] : NULL;
}

static int32_t
parse_subject(const cJSON *o, struct flows_pkcs_req *r, char *why, size_t whylen)
{
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "subject"), *it;
	static const char *const allowed[FLOWS_SUBJ_N + 1] = {
		"cn", "o", "ou", "c", "l", "st", "email", "serialNumber", "uid", NULL,
	};
	if (s == NULL)
		return FLOWS_OK;
	if (!cJSON_IsObject(s))
		return bad(why, whylen, FLOWS_E_PARAMETER, "payload.subject: expected an object");
	cJSON_ArrayForEach(it, s) {
		size_t i;

		for (i = 0; allowed[i] != NULL; i++)
			if (it->string != NULL && strcmp(allowed[i], it->string) == 0)
				break;
		if (allowed[i] == NULL)
			return bad(why, whylen, FLOWS_E_PARAMETER, "payload.subject.%.64s: unknown "
			    "attribute (cn, o, ou, c, l, st, email, serialNumber, uid)",
			    it->string != NULL ? it->string : "?");
		if (r->subject[i] != NULL)
			return bad(why, whylen, FLOWS_E_PARAMETER, "payload.subject.%s: given twice",
			    allowed[i]);
		if (!cJSON_IsString(it) || it->valuestring == NULL || it->valuestring[0] == '\0' ||
		    strlen(it->valuestring) > 256)
			return bad(why, whylen, FLOWS_E_PARAMETER, "payload.subject.%s: expected a "
			    "string of 1 to 256 bytes", allowed[i]);
		for (const unsigned char *c = (const unsigned char *)it->valuestring; *c; c++)
			if (*c < 0x20 || *c == 0x7f)
				return bad(why, whylen, FLOWS_E_PARAMETER, "payload.subject.%s: "
				    "control character", allowed[i]);
		if (i == FLOWS_SUBJ_C && strlen(it->valuestring) != 2)
			return bad(why, whylen, FLOWS_E_PARAMETER, "payload.subject.c: expected a "
			    "two-letter country code");
		r->subject[i] = strdup(it->valuestring);
		if (r->subject[i] == NULL)
			return bad(why, whylen, FLOWS_E_RETRYABLE, "out of memory");
	}
	return FLOWS_OK;
}

static int32_t
parse_sans(const cJSON *o, struct flows_pkcs_req *r, char *why, size_t whylen)
{
	static const char *const prefixes[] = { "DNS:", "email:", "URI:", "IP:", "UPN:" };
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "subjectAltNames"), *it;
	size_t i = 0;

	if (a == NULL)
		return FLOWS_OK;
	if (!cJSON_IsArray(a))
		return bad(why, whylen, FLOWS_E_PARAMETER, "payload.subjectAltNames: expected an "
		    "array");
	if (cJSON_GetArraySize(a) > FLOWS_SAN_MAX)
		return bad(why, whylen, FLOWS_E_PARAMETER, "payload.subjectAltNames: at most %d "
		    "names", FLOWS_SAN_MAX);
	cJSON_ArrayForEach(it, a) {
		const char *s = cJSON_IsString(it) ? it->valuestring : NULL;
		size_t p, n;

		if (s == NULL || (n = strlen(s)) == 0 || n > 1024)
			return bad(why, whylen, FLOWS_E_PARAMETER, "payload.subjectAltNames[%zu]: "
			    "expected a string of 1 to 1024 bytes", i);
		for (p = 0; p < sizeof(prefixes) / sizeof(prefixes[0]); p++)
			if (strncmp(s, prefixes[p], strlen(prefixes[p])) == 0 &&
			    s[strlen(prefixes[p])] != '\0')
				break;
		if (p == sizeof(prefixes) / sizeof(prefixes[0]))
			return bad(why, whylen, FLOWS_E_PARAMETER, "payload.subjectAltNames[%zu]: "
			    "expected DNS:, email:, URI:, IP: or UPN: and a value", i);
		for (const unsigned char *c = (const unsigned char *)s; *c; c++)
			if (*c < 0x20 || *c == 0x7f)
				return bad(why, whylen, FLOWS_E_PARAMETER, "payload.subjectAltNames[%zu]:"
				    " control character", i);
		r->san[r->nsan] = strdup(s);
		if (r->san[r->nsan] == NULL)
			return bad(why, whylen, FLOWS_E_RETRYABLE, "out of memory");
		r->nsan++;
		i++;
	}
	return FLOWS_OK;
}

/* The informational members every device flow takes. */
static int32_t
parse_common(const cJSON *o, bool need_device_id, char *device_id, char *device_name,
    char *upn, char *why, size_t whylen)
{
	int32_t code = FLOWS_OK;
	const char *s;

	s = str_member(o, "deviceId", FLOWS_ID_MAX, need_device_id, &code, why, whylen);
	if (s != NULL && !id_chars_ok(s))
		return bad(why, whylen, FLOWS_E_PARAMETER, "payload.deviceId: letters, digits and "
		    "._:-{}@ only");
	copy_str(device_id, FLOWS_ID_MAX + 1, s);
	copy_str(device_name, FLOWS_ID_MAX * 2 + 1,
	    str_member(o, "deviceName", FLOWS_ID_MAX * 2, false, &code, why, whylen));
	copy_str(upn, FLOWS_ID_MAX * 2 + 1,
	    str_member(o, "userPrincipalName", FLOWS_ID_MAX * 2, false, &code, why, whylen));
	return code;
}

int32_t
flows_parse_pkcs(const cJSON *o, struct flows_pkcs_req *r, char *why, size_t whylen)
{
	static const char *const allowed[] = { "deviceId", "devicePublicKey",
		"deviceCertificate", "profile", "keySpec", "subject", "subjectAltNames",
		"deviceName", "userPrincipalName", NULL };
	int32_t code;
	const char *s;

	memset(r, 0, sizeof(*r));
	r->keyspec = -1;
	if ((code = only_members(o, allowed, why, whylen)) != FLOWS_OK ||
	    (code = parse_common(o, true, r->device_id, r->device_name, r->upn, why,
	    whylen)) != FLOWS_OK)
		return code;
	s = str_member(o, "profile", CC_FLOWS_PROFILE_NAME_MAX - 1, false, &code, why, whylen);
	copy_str(r->profile, sizeof(r->profile), s);
	s = str_member(o, "keySpec", 16, false, &code, why, whylen);
	if (code != FLOWS_OK)
		return code;
	if (s != NULL && (r->keyspec = cc_flows_keyspec_from_name(s)) == -1)
		return bad(why, whylen, FLOWS_E_PARAMETER, "payload.keySpec: expected rsa-2048, "
		    "rsa-3072, rsa-4096, ec-p256 or ec-p384");
	if ((code = parse_subject(o, r, why, whylen)) != FLOWS_OK ||
	    (code = parse_sans(o, r, why, whylen)) != FLOWS_OK)
		return code;
	return device_member(o, &r->device, why, whylen);
}

void
flows_pkcs_req_free(struct flows_pkcs_req *r)
{
	for (int i = 0; i < FLOWS_SUBJ_N; i++)
		free(r->subject[i]);
	for (size_t i = 0; i < r->nsan; i++)
		free(r->san[i]);
	device_free(&r->device);
	memset(r, 0, sizeof(*r));
}

/* ---- pkcs-recrypt ---- */

int32_t
flows_parse_recrypt(const cJSON *o, struct flows_recrypt_req *r, char *why, size_t whylen)
{
	static const char *const allowed[] = { "deviceId", "encryptedPayload", "devicePublicKey",
		"deviceCertificate", "deviceName", "userPrincipalName", NULL };
	int32_t code;

	memset(r, 0, sizeof(*r));
	if ((code = only_members(o, allowed, why, whylen)) != FLOWS_OK ||
	    (code = parse_common(o, true, r->device_id, r->device_name, r->upn, why,
	    whylen)) != FLOWS_OK)
		return code;
	r->payload = b64_member(o, "encryptedPayload", FLOWS_PAYLOAD_MAX, true, &r->payload_len,
	    &code, why, whylen);
	if (code != FLOWS_OK)
		return code;
	return device_member(o, &r->device, why, whylen);
}

void
flows_recrypt_req_free(struct flows_recrypt_req *r)
{
	free(r->payload);
	device_free(&r->device);
	memset(r, 0, sizeof(*r));
}

/* ---- pfx-import ---- */

int32_t
flows_parse_import(const cJSON *o, struct flows_import_req *r, char *why, size_t whylen)
{
	static const char *const allowed[] = { "pfx", "encryptedPassword", "paddingScheme",
		"devicePublicKey", "deviceCertificate", "deviceId", "keyName", "intendedPurpose",
		"deviceName", "userPrincipalName", NULL };
	static const char *const purposes[] = { "unassigned", "smimeEncryption", "smimeSigning",
		NULL };
	int32_t code;
	const char *s;

	memset(r, 0, sizeof(*r));
	if ((code = only_members(o, allowed, why, whylen)) != FLOWS_OK ||
	    (code = parse_common(o, false, r->device_id, r->device_name, r->upn, why,
	    whylen)) != FLOWS_OK)
		return code;
	r->pfx = b64_member(o, "pfx", FLOWS_PAYLOAD_MAX, true, &r->pfx_len, &code, why, whylen);
	r->enc_password = b64_member(o, "encryptedPassword", 1024, true, &r->enc_password_len,
	    &code, why, whylen);
	s = str_member(o, "paddingScheme", 16, true, &code, why, whylen);
	if (code != FLOWS_OK)
		return code;
	if (strcmp(s, "OaepSha256") == 0)
		r->md_bits = 256;
	else if (strcmp(s, "OaepSha384") == 0)
		r->md_bits = 384;
	else if (strcmp(s, "OaepSha512") == 0)
		r->md_bits = 512;
	else
		return bad(why, whylen, FLOWS_E_PARAMETER, "payload.paddingScheme: expected "
		    "OaepSha256, OaepSha384 or OaepSha512");
	copy_str(r->key_name, sizeof(r->key_name),
	    str_member(o, "keyName", FLOWS_ID_MAX * 2, false, &code, why, whylen));
	s = str_member(o, "intendedPurpose", 31, false, &code, why, whylen);
	if (code != FLOWS_OK)
		return code;
	if (s != NULL) {
		size_t i;

		for (i = 0; purposes[i] != NULL; i++)
			if (strcmp(purposes[i], s) == 0)
				break;
		if (purposes[i] == NULL)
			return bad(why, whylen, FLOWS_E_PARAMETER, "payload.intendedPurpose: expected "
			    "unassigned, smimeEncryption or smimeSigning");
		copy_str(r->purpose, sizeof(r->purpose), s);
	}
	return device_member(o, &r->device, why, whylen);
}

void
flows_import_req_free(struct flows_import_req *r)
{
	free(r->pfx);
	free(r->enc_password);
	device_free(&r->device);
	memset(r, 0, sizeof(*r));
}

/* ---- revoke ---- */

/* An optional string member that may also be null. */
static int32_t
opt_null_str(const cJSON *o, const char *name, char *out, size_t cap, char *why,
    size_t whylen)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, name);

	out[0] = '\0';
	if (m == NULL || cJSON_IsNull(m))
		return FLOWS_OK;
	if (!cJSON_IsString(m) || m->valuestring == NULL || strlen(m->valuestring) >= cap)
		return bad(why, whylen, FLOWS_E_PARAMETER, "payload.%s: expected null or a string "
		    "of at most %zu bytes", name, cap - 1);
	for (const unsigned char *c = (const unsigned char *)m->valuestring; *c; c++)
		if (*c < 0x20 || *c == 0x7f)
			return bad(why, whylen, FLOWS_E_PARAMETER, "payload.%s: control character",
			    name);
	snprintf(out, cap, "%s", m->valuestring);
	return FLOWS_OK;
}

int32_t
flows_parse_revoke(const cJSON *o, struct flows_revoke_req *r, char *why, size_t whylen)
{
	int32_t code = FLOWS_OK;
	const char *s;

	memset(r, 0, sizeof(*r));
	if (!cJSON_IsObject(o))
		return bad(why, whylen, FLOWS_E_PARAMETER, "payload: expected a JSON object");
	s = str_member(o, "serialNumber", 128, true, &code, why, whylen);
	if (code != FLOWS_OK)
		return code;
	if (cc_ca_serial_norm(s, r->serial) == -1)
		return bad(why, whylen, FLOWS_E_PARAMETER, "payload.serialNumber: expected a "
		    "serial in hex");
	if ((code = opt_null_str(o, "issuerName", r->issuer, sizeof(r->issuer), why,
	    whylen)) != FLOWS_OK)
		return code;
	return opt_null_str(o, "caConfiguration", r->ca_config, sizeof(r->ca_config), why,
	    whylen);
}

EVP_PKEY *
flows_device_key(const struct flows_device *d)
{
	const unsigned char *p = d->der;
	EVP_PKEY *k = NULL;

	if (d->der == NULL)
		return NULL;
	if (d->is_cert) {
		X509 *x = d2i_X509(NULL, &p, (long)d->len);

		if (x != NULL)
			k = X509_get_pubkey(x);
		X509_free(x);
	} else
		k = d2i_PUBKEY(NULL, &p, (long)d->len);
	return k;
}
