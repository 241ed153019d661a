/*
 * certconn-hub admin ...: a client of the admin API (docs/protocol.md section 12) with the
 * admin token. Talks HTTPS with libcurl, trusting the hub CA.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "certconn/util.h"
#include "hub.h"
#include "hub_cli.h"
#include "hub_conf.h"

struct cli {
	char url[600];
	char *token;
	const char *ca;
	int json;
};

struct buf {
	char *p;
	size_t n;
};

static size_t
write_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct buf *b = arg;
	size_t add = size * nmemb;
	char *np;

	if (b->n + add > (16u << 20))
		return 0;
	np = realloc(b->p, b->n + add + 1);
	if (np == NULL)
		return 0;
	memcpy(np + b->n, ptr, add);
	b->p = np;
	b->n += add;
	b->p[b->n] = '\0';
	return add;
}

/* One call; *resp is the parsed body (NULL if none). Returns the HTTP status, -1 on failure. */
static long
call(struct cli *c, const char *method, const char *path, cJSON *body, cJSON **resp)
{
	CURL *e = curl_easy_init();
	struct curl_slist *h = NULL;
	struct buf b = { NULL, 0 };
	char url[1400], hdr[4200], id[37];
	char *text = NULL;
	long status = -1;
	CURLcode rc;

	*resp = NULL;
	if (e == NULL)
		return -1;
	snprintf(url, sizeof(url), "%s/admin/%s", c->url, path);
	hub_uuid(id);
	snprintf(hdr, sizeof(hdr), "client-request-id: %s", id);
	h = curl_slist_append(h, hdr);
	h = curl_slist_append(h, "api-version: 1.0");
	snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", c->token);
	h = curl_slist_append(h, hdr);
	explicit_bzero(hdr, sizeof(hdr));
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (c->ca != NULL)
		curl_easy_setopt(e, CURLOPT_CAINFO, c->ca);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "certconn-hub-admin/" CC_VERSION);
	if (strcmp(method, "POST") == 0) {
		text = cJSON_PrintUnformatted(body);
		h = curl_slist_append(h, "Content-Type: application/json");
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, text != NULL ? text : "{}");
	}
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	rc = curl_easy_perform(e);
	if (rc != CURLE_OK)
		fprintf(stderr, "certconn-hub admin: %s: %s\n", url, curl_easy_strerror(rc));
	else
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	if (b.p != NULL)
		*resp = cJSON_Parse(b.p);
	free(b.p);
	/* the body may carry a secret (a PFX password): wipe it (POSTFIELDS is not copied) */
	if (text != NULL)
		OPENSSL_cleanse(text, strlen(text));
	free(text);
	curl_slist_free_all(h);
	curl_easy_cleanup(e);
	return status;
}

static const char *
jstr(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsString(v) ? v->valuestring : cJSON_IsNull(v) || v == NULL ? "-" : "?";
}

/* Prints an answer: raw JSON with --json, else via fn; errors always in words. 0 ok, 1. */
static int
show(struct cli *c, long status, cJSON *resp, void (*fn)(const cJSON *value))
{
	const cJSON *err = cJSON_GetObjectItemCaseSensitive(resp, "error");
	int ret = status >= 200 && status < 300 ? 0 : 1;

	if (status < 0) {
		ret = 1;
	} else if (ret != 0) {
		fprintf(stderr, "certconn-hub admin: HTTP %ld %s: %s\n", status,
		    err ? jstr(err, "code") : "", err ? jstr(err, "message") : "(no body)");
	} else if (c->json) {
		char *t = cJSON_Print(resp);
		if (t != NULL)
			printf("%s\n", t);
		free(t);
	} else if (fn != NULL) {
		fn(cJSON_GetObjectItemCaseSensitive(resp, "value"));
	}
	cJSON_Delete(resp);
	return ret;
}

static void
features_str(const cJSON *a, char *out, size_t len)
{
	const cJSON *f;
	size_t o = 0;

	out[0] = '\0';
	cJSON_ArrayForEach(f, a)
		if (cJSON_IsString(f))
			o += (size_t)snprintf(out + o, o < len ? len - o : 0, "%s%s", o ? "," : "",
			    f->valuestring);
}

static void
print_connectors(const cJSON *v)
{
	const cJSON *c;
	char feats[128];

	printf("%-36s %-14s %-16s %-9s %-10s %-9s %s\n", "CONNECTOR", "TENANT", "NAME",
	    "VERSION", "HEALTH", "LIFECYCLE", "FEATURES");
	cJSON_ArrayForEach(c, v) {
		const cJSON *life = cJSON_GetObjectItemCaseSensitive(c, "lifecycle");
		const cJSON *mixed = cJSON_GetObjectItemCaseSensitive(c, "mixedVersions");

		features_str(cJSON_GetObjectItemCaseSensitive(c, "features"), feats, sizeof(feats));
		printf("%-36s %-14s %-16s %-9s %-10s %-9s %s%s\n", jstr(c, "connectorId"),
		    jstr(c, "tenantId"), jstr(c, "name"), jstr(c, "version"), jstr(c, "health"),
		    jstr(life, "status"), feats, cJSON_IsTrue(mixed) ? "  [mixed versions]" : "");
	}
}

static void
print_requests(const cJSON *v)
{
	const cJSON *r;

	printf("%-36s %-12s %-13s %-9s %-7s %-36s %s\n", "REQUEST", "TENANT", "FEATURE", "STATE",
	    "ATTEMPT", "BY", "ERROR");
	cJSON_ArrayForEach(r, v) {
		const cJSON *a = cJSON_GetObjectItemCaseSensitive(r, "attempt");
		const cJSON *ec = cJSON_GetObjectItemCaseSensitive(r, "errorCode");
		const char *by = jstr(r, "completedBy");

		if (strcmp(by, "-") == 0)
			by = jstr(r, "leasedBy");
		printf("%-36s %-12s %-13s %-9s %-7d %-36s %d\n", jstr(r, "requestId"),
		    jstr(r, "tenantId"), jstr(r, "feature"), jstr(r, "state"),
		    cJSON_IsNumber(a) ? a->valueint : 0, by, cJSON_IsNumber(ec) ? ec->valueint : 0);
	}
}

static void
print_value(const cJSON *v)
{
	char *t = cJSON_Print(v);

	if (t != NULL)
		printf("%s\n", t);
	free(t);
}

static void
print_token(const cJSON *v)
{
	printf("%s\n", jstr(v, "token"));
	fprintf(stderr, "tenant %s, expires %s; register with:\n  certconnctl register --hub URL "
	    "--token %s\n", jstr(v, "tenantId"), jstr(v, "expiresUtc"), jstr(v, "token"));
}

static void
print_challenge(const cJSON *v)
{
	printf("%s\n", jstr(v, "challenge"));
	fprintf(stderr, "one-time SCEP challenge, expires %s\n", jstr(v, "expiresUtc"));
}

static void
print_tenants(const cJSON *v)
{
	const cJSON *t;

	printf("%-20s %-30s %-10s %s\n", "TENANT", "NAME", "CONNECTORS", "MIXED VERSIONS");
	cJSON_ArrayForEach(t, v) {
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(t, "connectors");
		printf("%-20s %-30s %-10d %s\n", jstr(t, "tenantId"), jstr(t, "displayName"),
		    cJSON_IsNumber(n) ? n->valueint : 0,
		    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(t, "mixedVersions")) ? "yes" : "no");
	}
}

static void
print_versions(const cJSON *v)
{
	const cJSON *t;

	cJSON_ArrayForEach(t, v)
		printf("%-16s %s\n", jstr(t, "version"), jstr(t, "releasedUtc"));
}

static void
print_transactions(const cJSON *v)
{
	const cJSON *t;

	printf("%-40s %-12s %-10s %s\n", "TRANSACTION", "TENANT", "STATE", "SERIAL / ERROR");
	cJSON_ArrayForEach(t, v)
		printf("%-40s %-12s %-10s %s%s\n", jstr(t, "transactionId"), jstr(t, "tenantId"),
		    jstr(t, "state"), jstr(t, "certificateSerialNumber"),
		    jstr(t, "errorDescription"));
}

static void
print_ok(const cJSON *v)
{
	(void)v;
	printf("ok\n");
}

/* --name value options after the command words. */
static const char *
opt(int argc, char **argv, const char *name)
{
	for (int i = 0; i + 1 < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return argv[i + 1];
	return NULL;
}

static char *
query(const char *base, int argc, char **argv, const char *const *names, const char *const *keys)
{
	static char q[2048];
	size_t o;
	char *esc;

	o = (size_t)snprintf(q, sizeof(q), "%s", base);
	for (size_t i = 0; names[i] != NULL; i++) {
		const char *v = opt(argc, argv, names[i]);
		if (v == NULL)
			continue;
		esc = curl_easy_escape(NULL, v, 0);
		if (esc == NULL)
			continue;
		o += (size_t)snprintf(q + o, o < sizeof(q) ? sizeof(q) - o : 0, "%c%s=%s",
		    strchr(q, '?') ? '&' : '?', keys[i], esc);
		curl_free(esc);
	}
	return q;
}

static cJSON *
features_array(const char *list)
{
	cJSON *a = cJSON_CreateArray();
	char buf[256], *save = NULL, *t;

	snprintf(buf, sizeof(buf), "%s", list);
	for (t = strtok_r(buf, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save))
		cJSON_AddItemToArray(a, cJSON_CreateString(t));
	return a;
}

static int
cli_usage(void)
{
	fprintf(stderr,
	    "usage: certconn-hub admin [--url URL] [--token-file FILE] [--ca FILE] [-c CONFIG] "
	    "[--json] COMMAND\n"
	    "  tenant add ID [--name NAME]          tenants\n"
	    "  token create --tenant T [--features a,b] [--hours N]\n"
	    "  connectors [--tenant T]              connector disable ID\n"
	    "  queue FEATURE --tenant T --payload JSON|--payload-file F [--id ID]\n"
	    "  requests [--tenant T] [--feature F] [--state S] [--limit N]\n"
	    "  request ID [--wait SECONDS]          (exit 3: not done in time)\n"
	    "  pfx-import --tenant T --pfx FILE (--password-file F | --password P)\n"
	    "      (--device-key FILE | --device-cert FILE) [--connector ID] [--padding "
	    "OaepSha256|OaepSha384|OaepSha512]\n"
	    "      [--device-id ID] [--purpose P] [--device-name N] [--upn U] [--id ID] "
	    "[--no-verify]\n"
	    "  challenge --tenant T [--subject DN] [--san DNS:x]... [--min-key-bits N] "
	    "[--minutes M]\n"
	    "  transactions [--tenant T]\n"
	    "  version add VERSION RELEASED          versions\n");
	return 2;
}

/* A PEM or DER file's DER, base64 (malloc'd): a certificate when cert, else a public key
 * (SubjectPublicKeyInfo; a PEM certificate or public key both give one). */
static char *
der_file_b64(const char *path, bool cert)
{
	uint8_t *text = NULL;
	unsigned char *der = NULL;
	const unsigned char *p;
	size_t len;
	BIO *bio = NULL;
	X509 *x = NULL;
	EVP_PKEY *k = NULL;
	char *b64 = NULL;
	int n = 0;

	if (cc_read_file(path, 1 << 20, &text, &len) == -1) {
		fprintf(stderr, "certconn-hub admin: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	bio = BIO_new_mem_buf(text, (int)len);
	if (bio != NULL && strstr((char *)text, "-----BEGIN") != NULL) {
		if (strstr((char *)text, "-----BEGIN CERTIFICATE") != NULL)
			x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
		else if (!cert)
			k = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	} else {
		p = text;
		x = d2i_X509(NULL, &p, (long)len);
		p = text;
		if (x == NULL && !cert)
			k = d2i_PUBKEY(NULL, &p, (long)len);
	}
	if (x != NULL && cert)
		n = i2d_X509(x, &der);
	else if (x != NULL)
		n = i2d_PUBKEY(X509_get0_pubkey(x), &der);
	else if (k != NULL)
		n = i2d_PUBKEY(k, &der);
	if (n > 0)
		b64 = hub_b64_encode(der, (size_t)n);
	else
		fprintf(stderr, "certconn-hub admin: %s is not a %s (PEM or DER)\n", path,
		    cert ? "certificate" : "public key or certificate");
	OPENSSL_free(der);
	X509_free(x);
	EVP_PKEY_free(k);
	BIO_free(bio);
	free(text);
	return b64;
}

/*
 * pfx-import: the PFX and its password go to the hub, which encrypts the password to the
 * connector's pfx key (docs/protocol.md section 12). The password comes from a file (or
 * --password, which leaves it in the process list: for tests and demos only).
 */
static int
cmd_pfx_import(struct cli *c, int argc, char **argv)
{
	const char *tenant = opt(argc, argv, "--tenant"), *pfx = opt(argc, argv, "--pfx");
	const char *pwf = opt(argc, argv, "--password-file"), *pw = opt(argc, argv, "--password");
	const char *dk = opt(argc, argv, "--device-key"), *dc = opt(argc, argv, "--device-cert");
	static const char *const str_opts[][2] = { { "--connector", "connectorId" },
		{ "--id", "requestId" }, { "--padding", "paddingScheme" },
		{ "--device-id", "deviceId" }, { "--purpose", "intendedPurpose" },
		{ "--device-name", "deviceName" }, { "--upn", "userPrincipalName" } };
	uint8_t *pfx_der = NULL, *pwtext = NULL;
	size_t pfx_len = 0, pwlen = 0;
	char *pfx_b64 = NULL, *dev = NULL;
	cJSON *body = NULL, *o, *resp = NULL;
	long st = -1;
	int ret = 1;

	if (tenant == NULL || pfx == NULL || (pwf == NULL) == (pw == NULL) ||
	    (dk == NULL) == (dc == NULL))
		return cli_usage();
	if (cc_read_file(pfx, 1 << 20, &pfx_der, &pfx_len) == -1) {
		fprintf(stderr, "certconn-hub admin: %s: %s\n", pfx, strerror(errno));
		goto out;
	}
	if (pwf != NULL) {
		if (cc_read_file(pwf, 4096, &pwtext, &pwlen) == -1) {
			fprintf(stderr, "certconn-hub admin: %s: %s\n", pwf, strerror(errno));
			goto out;
		}
		pwtext[strcspn((char *)pwtext, "\r\n")] = '\0';
	}
	pfx_b64 = hub_b64_encode(pfx_der, pfx_len);
	dev = der_file_b64(dk != NULL ? dk : dc, dc != NULL);
	if (pfx_b64 == NULL || dev == NULL)
		goto out;
	body = cJSON_CreateObject();
	o = cJSON_AddObjectToObject(body, "pfxImport");
	cJSON_AddStringToObject(o, "tenantId", tenant);
	cJSON_AddStringToObject(o, "pfx", pfx_b64);
	cJSON_AddStringToObject(o, "password", pwf != NULL ? (char *)pwtext : pw);
	cJSON_AddStringToObject(o, dc != NULL ? "deviceCertificate" : "devicePublicKey", dev);
	for (size_t i = 0; i < sizeof(str_opts) / sizeof(str_opts[0]); i++) {
		const char *v = opt(argc, argv, str_opts[i][0]);
		if (v != NULL)
			cJSON_AddStringToObject(o, str_opts[i][1], v);
	}
	for (int i = 0; i < argc; i++)
		if (strcmp(argv[i], "--no-verify") == 0)
			cJSON_AddFalseToObject(o, "verifyPassword");
	st = call(c, "POST", "pfxImports", body, &resp);
	if (st >= 200 && st < 300 && !c->json) {
		printf("%s\n", jstr(cJSON_GetObjectItemCaseSensitive(resp, "value"), "requestId"));
		cJSON_Delete(resp);
		ret = 0;
	} else {
		ret = show(c, st, resp, print_value);
	}
out:
	/* the password is in the body: wipe its copy before freeing */
	o = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(body, "pfxImport"),
	    "password");
	if (cJSON_IsString(o))
		OPENSSL_cleanse(o->valuestring, strlen(o->valuestring));
	cJSON_Delete(body);
	if (pwtext != NULL)
		cc_free_secret(pwtext, pwlen + 1);
	free(pfx_der);
	free(pfx_b64);
	free(dev);
	return ret;
}

static int
dispatch(struct cli *c, int argc, char **argv)
{
	cJSON *body = NULL, *o, *resp = NULL;
	const char *cmd = argv[0], *v;
	long st;

#define NEED(x) do { if (!(x)) return cli_usage(); } while (0)
	if (strcmp(cmd, "tenants") == 0) {
		st = call(c, "GET", "tenants", NULL, &resp);
		return show(c, st, resp, print_tenants);
	}
	if (strcmp(cmd, "tenant") == 0) {
		NEED(argc >= 3 && strcmp(argv[1], "add") == 0);
		body = cJSON_CreateObject();
		o = cJSON_AddObjectToObject(body, "tenant");
		cJSON_AddStringToObject(o, "tenantId", argv[2]);
		if ((v = opt(argc, argv, "--name")) != NULL)
			cJSON_AddStringToObject(o, "displayName", v);
		st = call(c, "POST", "tenants", body, &resp);
		cJSON_Delete(body);
		return show(c, st, resp, print_ok);
	}
	if (strcmp(cmd, "token") == 0) {
		NEED(argc >= 2 && strcmp(argv[1], "create") == 0);
		NEED((v = opt(argc, argv, "--tenant")) != NULL);
		body = cJSON_CreateObject();
		o = cJSON_AddObjectToObject(body, "enrollmentToken");
		cJSON_AddStringToObject(o, "tenantId", v);
		if ((v = opt(argc, argv, "--features")) != NULL)
			cJSON_AddItemToObject(o, "features", features_array(v));
		if ((v = opt(argc, argv, "--hours")) != NULL)
			cJSON_AddNumberToObject(o, "validHours", atoi(v));
		st = call(c, "POST", "enrollmentTokens", body, &resp);
		cJSON_Delete(body);
		return show(c, st, resp, print_token);
	}
	if (strcmp(cmd, "connectors") == 0) {
		static const char *const n[] = { "--tenant", NULL }, *const k[] = { "tenantId" };
		st = call(c, "GET", query("connectors", argc, argv, n, k), NULL, &resp);
		return show(c, st, resp, print_connectors);
	}
	if (strcmp(cmd, "connector") == 0) {
		NEED(argc == 3 && strcmp(argv[1], "disable") == 0);
		body = cJSON_CreateObject();
		o = cJSON_AddObjectToObject(body, "connector");
		cJSON_AddStringToObject(o, "connectorId", argv[2]);
		st = call(c, "POST", "connectors/disable", body, &resp);
		cJSON_Delete(body);
		return show(c, st, resp, print_ok);
	}
	if (strcmp(cmd, "queue") == 0) {
		cJSON *payload = NULL;
		const char *pf;
		uint8_t *text = NULL;
		size_t len;

		NEED(argc >= 2 && (v = opt(argc, argv, "--tenant")) != NULL);
		if ((pf = opt(argc, argv, "--payload")) != NULL)
			payload = cJSON_Parse(pf);
		else if ((pf = opt(argc, argv, "--payload-file")) != NULL) {
			if (cc_read_file(pf, 1 << 20, &text, &len) == -1) {
				fprintf(stderr, "certconn-hub admin: %s: %s\n", pf, strerror(errno));
				return 1;
			}
			payload = cJSON_Parse((char *)text);
			free(text);
		}
		if (!cJSON_IsObject(payload)) {
			cJSON_Delete(payload);
			fprintf(stderr, "certconn-hub admin: the payload must be a JSON object\n");
			return 2;
		}
		body = cJSON_CreateObject();
		o = cJSON_AddObjectToObject(body, "request");
		cJSON_AddStringToObject(o, "tenantId", v);
		cJSON_AddStringToObject(o, "feature", argv[1]);
		cJSON_AddItemToObject(o, "payload", payload);
		if ((v = opt(argc, argv, "--id")) != NULL)
			cJSON_AddStringToObject(o, "requestId", v);
		st = call(c, "POST", "requests", body, &resp);
		cJSON_Delete(body);
		if (st >= 200 && st < 300 && !c->json) {
			printf("%s\n", jstr(cJSON_GetObjectItemCaseSensitive(resp, "value"),
			    "requestId"));
			cJSON_Delete(resp);
			return 0;
		}
		return show(c, st, resp, print_value);
	}
	if (strcmp(cmd, "pfx-import") == 0)
		return cmd_pfx_import(c, argc, argv);
	if (strcmp(cmd, "requests") == 0) {
		static const char *const n[] = { "--tenant", "--feature", "--state", "--limit",
			NULL };
		static const char *const k[] = { "tenantId", "feature", "state", "limit" };
		st = call(c, "GET", query("requests", argc, argv, n, k), NULL, &resp);
		return show(c, st, resp, print_requests);
	}
	if (strcmp(cmd, "request") == 0) {
		char p[256];
		int wait_s = 0;
		NEED((argc == 2 || (argc == 4 && strcmp(argv[2], "--wait") == 0 &&
		    (wait_s = atoi(argv[3])) > 0 && wait_s <= 86400)) && hub_id_ok(argv[1]));
		snprintf(p, sizeof(p), "requests/%s", argv[1]);
		/* --wait: until the request is completed or failed (a script's way to read what
		 * a device receives); exit 3 when it is not done in time. */
		for (int waited = 0;; waited++) {
			const char *state;

			st = call(c, "GET", p, NULL, &resp);
			state = jstr(cJSON_GetObjectItemCaseSensitive(resp, "value"), "state");
			if (wait_s == 0 || st != 200 || strcmp(state, "completed") == 0 ||
			    strcmp(state, "failed") == 0)
				break;
			if (waited >= wait_s * 4) {
				fprintf(stderr, "certconn-hub admin: request %s still %s after %d s\n",
				    argv[1], state, wait_s);
				cJSON_Delete(resp);   /* state points into it */
				return 3;
			}
			cJSON_Delete(resp);
			resp = NULL;
			usleep(250 * 1000);
		}
		return show(c, st, resp, print_value);
	}
	if (strcmp(cmd, "challenge") == 0) {
		cJSON *sans = NULL;
		NEED((v = opt(argc, argv, "--tenant")) != NULL);
		body = cJSON_CreateObject();
		o = cJSON_AddObjectToObject(body, "challenge");
		cJSON_AddStringToObject(o, "tenantId", v);
		if ((v = opt(argc, argv, "--subject")) != NULL)
			cJSON_AddStringToObject(o, "subjectName", v);
		for (int i = 0; i + 1 < argc; i++)
			if (strcmp(argv[i], "--san") == 0) {
				if (sans == NULL)
					sans = cJSON_AddArrayToObject(o, "subjectAltNames");
				cJSON_AddItemToArray(sans, cJSON_CreateString(argv[i + 1]));
			}
		if ((v = opt(argc, argv, "--min-key-bits")) != NULL)
			cJSON_AddNumberToObject(o, "minKeyBits", atoi(v));
		if ((v = opt(argc, argv, "--minutes")) != NULL)
			cJSON_AddNumberToObject(o, "validMinutes", atoi(v));
		st = call(c, "POST", "scepChallenges", body, &resp);
		cJSON_Delete(body);
		return show(c, st, resp, print_challenge);
	}
	if (strcmp(cmd, "transactions") == 0) {
		static const char *const n[] = { "--tenant", NULL }, *const k[] = { "tenantId" };
		st = call(c, "GET", query("scepTransactions", argc, argv, n, k), NULL, &resp);
		return show(c, st, resp, print_transactions);
	}
	if (strcmp(cmd, "versions") == 0) {
		st = call(c, "GET", "versions", NULL, &resp);
		return show(c, st, resp, print_versions);
	}
	if (strcmp(cmd, "version") == 0) {
		NEED(argc == 4 && strcmp(argv[1], "add") == 0);
		body = cJSON_CreateObject();
		o = cJSON_AddObjectToObject(body, "version");
		cJSON_AddStringToObject(o, "version", argv[2]);
		cJSON_AddStringToObject(o, "releasedUtc", argv[3]);
		st = call(c, "POST", "versions", body, &resp);
		cJSON_Delete(body);
		return show(c, st, resp, print_ok);
	}
#undef NEED
	return cli_usage();
}

int
hub_cli_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "url", required_argument, NULL, 'u' },
		{ "token-file", required_argument, NULL, 't' },
		{ "ca", required_argument, NULL, 'a' },
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	struct cli c;
	struct hub_conf conf;
	const char *url = NULL, *token_file = NULL, *config = NULL;
	char err[1024], *ca = NULL;
	uint8_t *tok = NULL;
	size_t len;
	int ch, ret, have_conf = 0;

	memset(&c, 0, sizeof(c));
	optind = 1;
	while ((ch = getopt_long(argc, argv, "+c:", opts, NULL)) != -1) {
		switch (ch) {
		case 'u': url = optarg; break;
		case 't': token_file = optarg; break;
		case 'a': c.ca = optarg; break;
		case 'c': config = optarg; break;
		case 'j': c.json = 1; break;
		default: return cli_usage();
		}
	}
	if (optind >= argc)
		return cli_usage();
	if (config != NULL) {
		if (hub_conf_load_ex(config, &conf, false, err, sizeof(err)) == -1) {
			fprintf(stderr, "certconn-hub admin: %s\n", err);
			return 1;
		}
		have_conf = 1;
		if (url == NULL)
			snprintf(c.url, sizeof(c.url), "https://%s%s%s:%u",
			    strchr(conf.host, ':') ? "[" : "", strcmp(conf.host, "0.0.0.0") == 0 ?
			    "127.0.0.1" : conf.host, strchr(conf.host, ':') ? "]" : "",
			    (unsigned)conf.port);
		if (token_file == NULL)
			token_file = conf.admin_token_file;
		if (c.ca == NULL)
			c.ca = ca = strdup(conf.ca_cert);
	}
	if (url != NULL)
		snprintf(c.url, sizeof(c.url), "%s", url);
	len = strlen(c.url);
	while (len > 0 && c.url[len - 1] == '/')
		c.url[--len] = '\0';
	if (c.url[0] == '\0' || token_file == NULL) {
		fprintf(stderr, "certconn-hub admin: give --url and --token-file, or -c CONFIG\n");
		ret = 2;
		goto out;
	}
	if (cc_read_file(token_file, 4096, &tok, &len) == -1) {
		fprintf(stderr, "certconn-hub admin: %s: %s\n", token_file, strerror(errno));
		ret = 1;
		goto out;
	}
	tok[strcspn((char *)tok, "\r\n")] = '\0';
	c.token = (char *)tok;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	ret = dispatch(&c, argc - optind, argv + optind);
	curl_global_cleanup();
	cc_free_secret(tok, len + 1);
out:
	free(ca);
	if (have_conf)
		hub_conf_free(&conf);
	return ret;
}
