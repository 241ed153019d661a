/*
 * POST admin/pfxImports (docs/protocol.md section 12): an administrator uploads a PFX and
 * its password in plaintext; the hub encrypts the password to the pfx key the target
 * connector reported (RSA-OAEP, the Intune PFX import form of certconn/pkcs.h) and queues a
 * pfx-import request. The plaintext password is never stored and is wiped after use.
 *
 * Which key: with connectorId, that connector's, and only it may lease the request (the
 * request's target). Without, every enabled pfx-import connector of the tenant must have
 * reported the same key (connectors sharing one pfx key, as Intune's PFX connectors do);
 * otherwise any of them could lease a password it cannot decrypt, so the call is refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>

#include "certconn/log.h"
#include "hub_int.h"
#include "hub_pfx.h"

struct pick {
	const char *want;              /* connectorId or NULL */
	char tenant[HUB_ID_MAX + 1];
	bool found;                    /* want: seen in the tenant */
	char key[HUB_SPKI_MAX * 2];    /* the chosen key (base64) */
	char key_name[HUB_KEYNAME_MAX + 1];
	char problem[256];             /* why no key can be chosen */
	unsigned n;                    /* pfx-import connectors considered */
};

static int
pick_cb(void *arg, const struct hub_connector *c)
{
	struct pick *p = arg;

	if (p->want != NULL) {
		if (strcmp(c->id, p->want) != 0)
			return 0;
		p->found = true;
		if (c->disabled)
			snprintf(p->problem, sizeof(p->problem), "connector %s is disabled", c->id);
		else if (!(c->features & HUB_F_PFX_IMPORT))
			snprintf(p->problem, sizeof(p->problem), "connector %s did not register "
			    "pfx-import", c->id);
	} else if (c->disabled || !(c->features & HUB_F_PFX_IMPORT)) {
		return 0;
	}
	if (p->problem[0] != '\0')
		return 0;
	p->n++;
	if (c->pfx_key == NULL) {
		snprintf(p->problem, sizeof(p->problem), "connector %s has not reported a pfx key "
		    "yet (its health messages carry it)%s", c->id, p->want == NULL ?
		    "; name a connector with connectorId" : "");
		return 0;
	}
	if (p->key[0] == '\0') {
		snprintf(p->key, sizeof(p->key), "%s", c->pfx_key);
		snprintf(p->key_name, sizeof(p->key_name), "%s", c->pfx_key_name);
	} else if (strcmp(p->key, c->pfx_key) != 0) {
		snprintf(p->problem, sizeof(p->problem), "the pfx-import connectors of tenant %s "
		    "have different pfx keys; name one with connectorId", p->tenant);
	}
	return 0;
}

/* A base64 member that must decode to a DER object of the kind check accepts. */
static int
device_member(struct hub_body *b, const struct cc_jnode *o, const char *key, bool cert)
{
	struct cc_jnode m;
	uint8_t *der = NULL;
	const unsigned char *p;
	size_t len;
	void *obj;

	if (!cc_jck_member(o, key, &m))
		return 0;
	if (hub_jb64(b, o, key, 64 * 1024, &der, &len) == -1)
		return -1;
	p = der;
	obj = cert ? (void *)d2i_X509(NULL, &p, (long)len) : (void *)d2i_PUBKEY(NULL, &p,
	    (long)len);
	free(der);
	if (obj == NULL) {
		ERR_clear_error();
		return hub_invalid(b, &m, "not a DER %s", cert ? "X.509 certificate" :
		    "SubjectPublicKeyInfo");
	}
	if (cert)
		X509_free(obj);
	else
		EVP_PKEY_free(obj);
	return 1;
}

void
hub_admin_pfx_import(struct hub_ctx *x)
{
	static const char *const keys[] = { "tenantId", "connectorId", "requestId", "pfx",
		"password", "paddingScheme", "verifyPassword", "devicePublicKey",
		"deviceCertificate", "deviceId", "intendedPurpose", "deviceName",
		"userPrincipalName", NULL };
	static const char *const copied[] = { "devicePublicKey", "deviceCertificate", "deviceId",
		"intendedPurpose", "deviceName", "userPrincipalName", NULL };
	struct hub_body b;
	struct cc_jnode o, m;
	const char *tenant, *conn, *id, *pfx_b64, *password, *scheme, *s;
	uint8_t *pfx = NULL, *kder = NULL;
	const unsigned char *pp;
	size_t pfx_len, klen;
	PKCS12 *p12 = NULL;
	EVP_PKEY *pub = NULL;
	struct pick *pk = NULL;
	struct hub_request r;
	char why[256], uuid[37], *enc = NULL, *text = NULL;
	cJSON *payload = NULL;
	bool verify = true;
	int has_key, has_cert;
	enum hub_st st;

	memset(&r, 0, sizeof(r));
	if (hub_body_parse(x->call, &b, x->r) == -1)
		goto out;
	if (hub_wrapper(&b, "pfxImport", keys, &o) == -1 ||
	    hub_jstr(&b, &o, "tenantId", true, HUB_ID_MAX, false, false, &tenant) == -1 ||
	    hub_jstr(&b, &o, "connectorId", false, HUB_ID_MAX, false, false, &conn) == -1 ||
	    hub_jstr(&b, &o, "requestId", false, HUB_ID_MAX, false, false, &id) == -1 ||
	    hub_jstr(&b, &o, "pfx", true, HUB_OBJ_MAX, false, false, &pfx_b64) == -1 ||
	    hub_jstr(&b, &o, "password", true, HUB_PFX_PASSWORD_MAX * 2, false, false,
	    &password) == -1 ||
	    hub_jstr(&b, &o, "paddingScheme", false, 16, false, false, &scheme) == -1 ||
	    hub_jbool(&b, &o, "verifyPassword", false, &verify, NULL) == -1 ||
	    hub_jstr(&b, &o, "deviceId", false, 128, false, false, &s) == -1 ||
	    hub_jstr(&b, &o, "intendedPurpose", false, 31, false, false, &s) == -1 ||
	    hub_jstr(&b, &o, "deviceName", false, 256, false, false, &s) == -1 ||
	    hub_jstr(&b, &o, "userPrincipalName", false, 256, false, false, &s) == -1 ||
	    (has_key = device_member(&b, &o, "devicePublicKey", false)) == -1 ||
	    (has_cert = device_member(&b, &o, "deviceCertificate", true)) == -1)
		goto bad;
	if (scheme == NULL)
		scheme = "OaepSha512";
	if (hub_pfx_padding_md(scheme) == NULL) {
		cc_jck_member(&o, "paddingScheme", &m);
		hub_invalid(&b, &m, "must be OaepSha256, OaepSha384 or OaepSha512");
		goto bad;
	}
	if (has_key + has_cert != 1) {
		hub_invalid(&b, &o, "needs exactly one of devicePublicKey and deviceCertificate");
		goto bad;
	}
	if ((id != NULL && !hub_id_ok(id)) || (conn != NULL && !hub_id_ok(conn))) {
		cc_jck_member(&o, id != NULL && !hub_id_ok(id) ? "requestId" : "connectorId", &m);
		hub_invalid(&b, &m, "1-%d characters of A-Z a-z 0-9 . _ : -", HUB_ID_MAX);
		goto bad;
	}
	/* The PFX must be one, and (unless told not to) open with the password: a typo found
	 * here costs the administrator a second, found by the connector a failed request. */
	cc_jck_member(&o, "pfx", &m);
	if (hub_b64_decode(pfx_b64, HUB_OBJ_MAX, &pfx, &pfx_len) == -1) {
		hub_invalid(&b, &m, "not base64");
		goto bad;
	}
	pp = pfx;
	p12 = d2i_PKCS12(NULL, &pp, (long)pfx_len);
	if (p12 == NULL) {
		ERR_clear_error();
		hub_invalid(&b, &m, "not a DER PKCS#12");
		goto bad;
	}
	if (verify && PKCS12_mac_present(p12) && !PKCS12_verify_mac(p12, password, -1)) {
		ERR_clear_error();
		cc_jck_member(&o, "password", &m);
		hub_invalid(&b, &m, "does not open the PFX (MAC verification failed)");
		goto bad;
	}
	/* A repeated requestId is the same upload again: the ciphertext would differ (OAEP is
	 * randomised), so the existing request answers, as POST requests does. */
	if (id != NULL) {
		st = x->h->store->ops->request_get(x->h->store, tenant, id, &r);
		if (st == HUB_ST_OK) {
			if (r.feature == HUB_F_PFX_IMPORT && strcmp(r.target, conn ? conn : "") == 0)
				hub_reply_value(x->r, 200, hub_admin_request_json(&r, false));
			else
				hub_reply_error(x->r, 409, "Conflict", "request %s exists with other "
				    "content", id);
			goto out;
		}
		if (st != HUB_ST_NOT_FOUND) {
			hub_reply_store(x->r, st);
			goto out;
		}
	}
	pk = calloc(1, sizeof(*pk));
	if (pk == NULL)
		goto internal;
	pk->want = conn;
	snprintf(pk->tenant, sizeof(pk->tenant), "%s", tenant);
	st = x->h->store->ops->connector_list(x->h->store, tenant, pick_cb, pk);
	if (st != HUB_ST_OK) {
		hub_reply_store(x->r, st);
		goto out;
	}
	if (conn != NULL && !pk->found) {
		hub_reply_error(x->r, 404, "NotFound", "no connector %s in tenant %s", conn, tenant);
		goto out;
	}
	if (pk->problem[0] == '\0' && pk->n == 0)
		snprintf(pk->problem, sizeof(pk->problem), "tenant %s has no enabled connector "
		    "with pfx-import", tenant);
	if (pk->problem[0] != '\0') {
		hub_reply_error(x->r, 409, "Conflict", "%s", pk->problem);
		goto out;
	}
	if (hub_b64_decode(pk->key, HUB_SPKI_MAX, &kder, &klen) == -1 ||
	    (pub = hub_pfx_key_parse(kder, klen, why, sizeof(why))) == NULL)
		goto internal; /* it was checked when the health message brought it */
	enc = hub_pfx_encrypt_password(pub, password, scheme, why, sizeof(why));
	if (enc == NULL) {
		cc_jck_member(&o, "password", &m);
		hub_invalid(&b, &m, "%s", why);
		goto bad;
	}
	payload = cJSON_CreateObject();
	if (payload == NULL)
		goto internal;
	cJSON_AddStringToObject(payload, "pfx", pfx_b64);
	cJSON_AddStringToObject(payload, "encryptedPassword", enc);
	cJSON_AddStringToObject(payload, "paddingScheme", scheme);
	cJSON_AddStringToObject(payload, "keyName", pk->key_name);
	for (size_t i = 0; copied[i] != NULL; i++)
		if (cc_jck_member(&o, copied[i], &m))
			cJSON_AddItemToObject(payload, copied[i], cJSON_Duplicate(m.item, 1));
	text = cJSON_PrintUnformatted(payload);
	if (text == NULL)
		goto internal;
	if (strlen(text) > HUB_OBJ_MAX) {
		cc_jck_member(&o, "pfx", &m);
		hub_invalid(&b, &m, "the request's payload would be over %u bytes", HUB_OBJ_MAX);
		goto bad;
	}
	if (id == NULL) {
		hub_uuid(uuid);
		id = uuid;
	}
	hub_request_clear(&r);
	memset(&r, 0, sizeof(r));
	snprintf(r.id, sizeof(r.id), "%s", id);
	snprintf(r.tenant, sizeof(r.tenant), "%s", tenant);
	snprintf(r.target, sizeof(r.target), "%s", conn != NULL ? conn : "");
	r.feature = HUB_F_PFX_IMPORT;
	r.payload = text;
	r.created = x->now;
	hub_admin_queue(x, &r);
	r.payload = NULL;
	goto out;
internal:
	hub_reply_error(x->r, 500, "InternalError", "the PFX import could not be queued");
	goto out;
bad:
	hub_body_fail_reply(&b, x->r);
out:
	/* the plaintext password is in the body's copies: wipe them */
	if (b.text != NULL)
		OPENSSL_cleanse(b.text, strlen(b.text));
	if (b.root.item != NULL && cc_jck_member(&b.root, "pfxImport", &o) && cc_jck_member(&o, "password", &m) &&
	    cJSON_IsString(m.item) && m.item->valuestring != NULL)
		OPENSSL_cleanse(m.item->valuestring, strlen(m.item->valuestring));
	hub_request_clear(&r);
	cJSON_Delete(payload);
	free(text);
	free(enc);
	free(kder);
	free(pk);
	EVP_PKEY_free(pub);
	PKCS12_free(p12);
	free(pfx);
	hub_body_done(&b);
}
