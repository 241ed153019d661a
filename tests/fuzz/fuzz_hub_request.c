/*
 * libFuzzer: the hub's request handling (hub_handle: headers, authentication, JSON parsing
 * and checking of every endpoint, the store behind it) on arbitrary input, without TLS.
 *
 * Input: byte 0 picks the endpoint, byte 1 the call's shape (bit 0: a connector certificate,
 * bit 1: the admin token, bit 2: the right api-version, bit 3: a client-request-id, bit 4:
 * GET instead of POST, bit 5: a wrong Content-Type), the rest is the body.
 * Beyond "no crash, no leak": every answer has a known status and a JSON body, an error body
 * names a code, and a success never comes from a call without the credential it needs.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "certconn/log.h"
#include "hub.h"
#include "store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct ep {
	const char *path;
	const char *api_version;
	int auth;          /* 0: enrollment token (body), 1: connector, 2: admin */
};

static const struct ep eps[] = {
	{ "/api/Registration/register", "1.0", 0 },
	{ "/api/Registration/renewCertificate", "1.0", 1 },
	{ "/api/ConnectorRequests/downloadRequests", "1.0", 1 },
	{ "/api/ConnectorRequests/uploadResults", "1.0", 1 },
	{ "/api/ConnectorRequests/extendLeases", "1.0", 1 },
	{ "/api/CertificateAuthorityRequests/downloadRevocationRequests", "5019-05-05", 1 },
	{ "/api/CertificateAuthorityRequests/uploadRevocationResults", "5019-05-05", 1 },
	{ "/api/ScepActions/validateRequest", "2018-02-20", 1 },
	{ "/api/ScepActions/successNotification", "2018-02-20", 1 },
	{ "/api/ScepActions/failureNotification", "2018-02-20", 1 },
	{ "/api/ConnectorHealth/uploadHealthMessage", "1.0", 1 },
	{ "/admin/tenants", "1.0", 2 },
	{ "/admin/enrollmentTokens", "1.0", 2 },
	{ "/admin/connectors", "1.0", 2 },
	{ "/admin/connectors/disable", "1.0", 2 },
	{ "/admin/requests", "1.0", 2 },
	{ "/admin/requests/fz-1", "1.0", 2 },
	{ "/admin/scepChallenges", "1.0", 2 },
	{ "/admin/scepTransactions", "1.0", 2 },
	{ "/admin/versions", "1.0", 2 },
	{ "/nowhere", "1.0", 2 },
	{ "/admin/pfxImports", "1.0", 2 },   /* appended: the seeds' byte 0 keeps its meaning */
};
#define NEPS (sizeof(eps) / sizeof(eps[0]))

#define ADMIN "fuzz-admin-token-0123456789"

static struct hub_conf conf;
static struct hub H;
static struct hub_peer peer;
static unsigned runs;

/* An RSA-2048 public key (DER SubjectPublicKeyInfo, base64): fuzz-conn's pfx key, so that a
 * pfxImports call gets as far as the encryption. */
static const char fuzz_pfx_key[] =
	"MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAyH22FzSpygqD9u7CHsG4K0CvPsO0vLz8Ysw4"
	"tzuDX6Gu0xxHeFyQIVyTUb8MoAItH3zljXv21yAk+Iv++ymQbms7NwbyYWNx18oUtnzti/4xddW15DEZ"
	"9ToC+EyMXfQlyRibQlnv483eGRwsZl67B9QnTmcEnT84hEzS1kfdjSMwLAMhL+sgK+KPkmbnuWTvpEk4"
	"eUARCYHRqUrT2/BKRP9qnxYKcKmopHetY6/xKqUopiMxSpeMVeDPd7LrTD34ugGlO/NDR/mwtM9S5tSk"
	"c9HhB11VzosWq+YGU/RKnZisFr0yKYGsjbOaBxKtgzA0RPsrRrwnPqKEmRFYP6xpVwIDAQAB";

static void
populate(void)
{
	struct hub_connector c;
	struct hub_request r;
	struct hub_challenge ch;
	char hash[65];

	H.store->ops->tenant_put(H.store, "ft", "Fuzz", 1000);
	H.store->ops->token_put(H.store, "tokhash", "ft", 0, INT64_C(1) << 40, 1000);
	memset(&c, 0, sizeof(c));
	strcpy(c.id, "fuzz-conn");
	strcpy(c.name, "fuzz");
	strcpy(c.version, "1.0.0");
	c.features = HUB_F_ALL;
	strcpy(c.serial, "01");
	c.not_after = INT64_C(1) << 40;
	H.store->ops->connector_register(H.store, "tokhash", &c, 100, 1000);
	H.store->ops->connector_pfx_key(H.store, "fuzz-conn", fuzz_pfx_key, "pfx:fuzz", 1000);
	memset(&r, 0, sizeof(r));
	strcpy(r.id, "fz-1");
	strcpy(r.tenant, "ft");
	r.feature = HUB_F_PKCS;
	r.payload = (char *)"{\"deviceId\":\"d\",\"devicePublicKey\":\"AAAA\"}";
	r.created = 1000;
	H.store->ops->request_put(H.store, &r);
	strcpy(r.id, "fz-2");
	r.feature = HUB_F_REVOKE;
	r.payload = (char *)"{\"serialNumber\":\"01\",\"issuerName\":\"CN=x\"}";
	strcpy(r.tag, "CN=x");
	H.store->ops->request_put(H.store, &r);
	memset(&ch, 0, sizeof(ch));
	strcpy(ch.tenant, "ft");
	ch.expires = INT64_C(1) << 40;
	hub_sha256_hex("fuzz-challenge", 14, hash);
	H.store->ops->challenge_put(H.store, hash, &ch, 1000);
	H.store->ops->version_put(H.store, "1.0.0", 1000);
}

static void
init(void)
{
	unsigned int len;

	cc_log_init("fuzz_hub", NULL, 0);
	conf.client_cert_days = 365;
	conf.health_interval_s = 60;
	conf.max_connectors = 100;
	conf.lease_default_s = 300;
	conf.lease_min_s = 1;
	conf.lease_max_s = 3600;
	conf.max_attempts = 3;
	conf.support_months = 6;
	conf.block_months = 18;
	conf.max_body_bytes = HUB_BODY_MAX_DEFAULT;
	H.conf = &conf;
	EVP_Digest(ADMIN, strlen(ADMIN), H.admin_hash, &len, EVP_sha256(), NULL);
	H.has_admin = true;
	peer.present = true;
	strcpy(peer.tenant, "ft");
	strcpy(peer.connector, "fuzz-conn");
	strcpy(peer.serial, "01");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct ep *ep;
	struct hub_call c;
	struct hub_reply r;
	uint8_t flags;
	cJSON *j;

	if (H.conf == NULL)
		init();
	/* A fresh store now and then, so state from earlier inputs does not pile up. */
	if (H.store == NULL || ++runs % 2000 == 0) {
		if (H.store != NULL)
			H.store->ops->close(H.store);
		H.store = hub_store_sqlite_open(":memory:");
		if (H.store == NULL)
			abort();
		populate();
	}
	if (size < 2)
		return 0;
	ep = &eps[data[0] % NEPS];
	flags = data[1];
	memset(&c, 0, sizeof(c));
	c.method = (flags & 0x10) ? HUB_M_GET : HUB_M_POST;
	c.path = ep->path;
	c.api_version = (flags & 0x04) ? ep->api_version : "0.9";
	c.client_request_id = (flags & 0x08) ? "fuzz-1" : NULL;
	c.authorization = (flags & 0x02) ? "Bearer " ADMIN : NULL;
	c.content_type = (flags & 0x20) ? "text/plain" : "application/json";
	c.body = (const char *)data + 2;
	c.body_len = size - 2;
	if (flags & 0x01)
		c.peer = peer;
	hub_handle(&H, &c, &r);

	switch (r.status) {
	case 200: case 201: case 400: case 401: case 403: case 404: case 405: case 409:
	case 415: case 500: case 503:
		break;
	default:
		abort();
	}
	if (r.body == NULL)
		abort();
	j = cJSON_Parse(r.body);
	if (j == NULL)
		abort();
	if (r.status >= 400 &&
	    !cJSON_IsString(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "code")))
		abort();
	if (r.status < 300) {
		/* the credential rules hold whatever the body says */
		if (ep->auth == 1 && !(flags & 0x01))
			abort();
		if (ep->auth == 2 && (!(flags & 0x02) || (flags & 0x01)))
			abort();
		if (!(flags & 0x08) || !(flags & 0x04))
			abort();
	}
	cJSON_Delete(j);
	hub_reply_free(&r);
	return 0;
}
