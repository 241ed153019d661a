/*
 * The dev appliance's queued flows (certconnctl dev up / demo). `dev up` writes net.flows
 * into the connector's config: the four flows, short retries (a demo should not wait
 * minutes), a small key pool, and two PKCS profiles (one keeps a copy for re-encryption).
 * `dev demo` queues one request of each flow through the dev hub's admin CLI, as an MDM
 * would: a PKCS certificate for a demo device, a re-encryption of the kept copy for a
 * second device, an imported PFX (made here, its password encrypted with RSA-OAEP-SHA512 to
 * the connector's pfx key) and the revocation of the PKCS certificate; it waits for each
 * result and prints it with the connector's events for that request.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cjson/cJSON.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certconn/util.h"
#include "ctl.h"
#include "hsm.h"

#define DEMO_WAIT_S 90          /* per request: a cold RSA key, the CA, keys, the hub */
#define DEMO_OUT_MAX (1u << 20) /* the admin CLI's answer */
#define DEMO_MODULE "/usr/lib/softhsm/libsofthsm2.so"

int
dev_flows_config(const char *dir, cJSON *net)
{
	cJSON *f, *o, *profs, *p, *iss;

	(void)dir;
	f = cJSON_AddObjectToObject(net, "flows");
	if (f == NULL)
		return -1;
	cJSON_AddNumberToObject(f, "workers", 2);
	/* A failing step is tried three times within a few seconds: the demo and the tests
	 * see the FailedAttempt events and the final failure without long waits. */
	cJSON_AddNumberToObject(f, "max_attempts", 3);
	o = cJSON_AddObjectToObject(f, "backoff");
	cJSON_AddNumberToObject(o, "initial_ms", 200);
	cJSON_AddNumberToObject(o, "max_ms", 2000);
	cJSON_AddStringToObject(f, "pfx_role", "pfx");
	o = cJSON_AddObjectToObject(f, "key_pool");
	cJSON_AddNumberToObject(o, "rsa-2048", 2);
	cJSON_AddNumberToObject(o, "ec-p256", 1);
	cJSON_AddStringToObject(f, "default_profile", "devices");
	profs = cJSON_AddObjectToObject(f, "pkcs_profiles");
	/* devices: RSA-2048 by default, AES-256 PKCS#12, a copy kept for re-encryption */
	p = cJSON_AddObjectToObject(profs, "devices");
	cJSON_AddStringToObject(p, "key", "rsa-2048");
	cJSON_AddBoolToObject(p, "allow_key_override", 1);
	cJSON_AddStringToObject(p, "p12", "aes256");
	cJSON_AddBoolToObject(p, "keep_copy", 1);
	iss = cJSON_AddObjectToObject(p, "issuance");
	cJSON_AddNumberToObject(iss, "validity_days", 365);
	/* legacy: the 3DES/SHA-1 PKCS#12 some older devices need, no copy kept */
	p = cJSON_AddObjectToObject(profs, "legacy");
	cJSON_AddStringToObject(p, "key", "rsa-2048");
	cJSON_AddStringToObject(p, "p12", "legacy");
	iss = cJSON_AddObjectToObject(p, "issuance");
	cJSON_AddNumberToObject(iss, "validity_days", 365);
	return 0;
}

/* ---- the demo ---- */

struct demo {
	char dir[PATH_MAX];
	char hub_conf[PATH_MAX];
	char work[PATH_MAX];     /* DIR/demo: payload files and the demo PFX */
	char logdir[PATH_MAX];
};

/*
 * `certconn-hub admin -c HUBCONF --json ARGS...`: its JSON answer (the "value" member,
 * detached; caller frees), or NULL with its stderr passed through.
 */
static cJSON *
admin(const struct demo *dm, const char *const *args)
{
	const char *argv[32];
	int pfd[2], st;
	size_t n = 0, got = 0;
	char *out;
	ssize_t r;
	pid_t pid;
	cJSON *j, *v = NULL;

	argv[n++] = ctl_sibling_exe("certconn-hub", "CERTCONN_HUB");
	argv[n++] = "admin";
	argv[n++] = "-c";
	argv[n++] = dm->hub_conf;
	argv[n++] = "--json";
	for (size_t i = 0; args[i] != NULL; i++) {
		if (n + 1 >= sizeof(argv) / sizeof(argv[0]))
			return NULL; /* a programming error: never cut arguments silently */
		argv[n++] = args[i];
	}
	argv[n] = NULL;
	out = malloc(DEMO_OUT_MAX);
	if (out == NULL || pipe(pfd) == -1) {
		free(out);
		return NULL;
	}
	fflush(stdout);
	pid = fork();
	if (pid == -1) {
		close(pfd[0]);
		close(pfd[1]);
		free(out);
		return NULL;
	}
	if (pid == 0) {
		dup2(pfd[1], 1);
		close_range(3, ~0U, 0);
		execvp(argv[0], (char *const *)argv);
		fprintf(stderr, "certconnctl: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(pfd[1]);
	while (got + 1 < DEMO_OUT_MAX && (r = read(pfd[0], out + got, DEMO_OUT_MAX - 1 - got)) > 0)
		got += (size_t)r;
	out[got] = '\0';
	close(pfd[0]);
	if (waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0 &&
	    (j = cJSON_Parse(out)) != NULL) {
		v = cJSON_DetachItemFromObjectCaseSensitive(j, "value");
		cJSON_Delete(j);
	}
	free(out);
	return v;
}

static const char *
jstr(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static char *
b64(const uint8_t *p, size_t n)
{
	char *s = malloc(4 * ((n + 2) / 3) + 1);

	if (s != NULL && n <= (size_t)INT32_MAX / 2)
		EVP_EncodeBlock((unsigned char *)s, p, (int)n);
	return s;
}

static uint8_t *
unb64(const char *s, size_t *outlen)
{
	size_t n = strlen(s), pad = 0;
	uint8_t *out;
	int r;

	if (n == 0 || n % 4 != 0 || n > (size_t)INT32_MAX / 2)
		return NULL;
	pad = (s[n - 1] == '=') + (s[n - 2] == '=');
	out = malloc(n / 4 * 3 + 1);
	if (out == NULL)
		return NULL;
	r = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
	if (r < 0 || (size_t)r < pad) {
		free(out);
		return NULL;
	}
	*outlen = (size_t)r - pad;
	return out;
}

/* A demo device: its own RSA-2048 key; the payload's devicePublicKey. */
static char *
device_spki_b64(EVP_PKEY *k)
{
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(k, &der);
	char *s = n > 0 ? b64(der, (size_t)n) : NULL;

	OPENSSL_free(der);
	return s;
}

/* CMS_decrypt of a base64 envelope with the device's key. malloc'd, *len. */
static uint8_t *
device_open(EVP_PKEY *k, const char *env_b64, size_t *len)
{
	size_t n;
	uint8_t *der = env_b64 != NULL ? unb64(env_b64, &n) : NULL, *out = NULL;
	const unsigned char *p = der;
	CMS_ContentInfo *cms = der != NULL ? d2i_CMS_ContentInfo(NULL, &p, (long)n) : NULL;
	BIO *mem = BIO_new(BIO_s_mem());
	BUF_MEM *bm;

	if (cms != NULL && mem != NULL && CMS_decrypt(cms, k, NULL, NULL, mem, 0) == 1) {
		BIO_get_mem_ptr(mem, &bm);
		out = malloc(bm->length + 1);
		if (out != NULL) {
			memcpy(out, bm->data, bm->length);
			out[bm->length] = 0;
			*len = bm->length;
		}
	}
	ERR_clear_error();
	BIO_free(mem);
	CMS_ContentInfo_free(cms);
	free(der);
	return out;
}

/*
 * What the device does with a delivery: decrypts the password and the PKCS#12 with its own
 * key, opens the PKCS#12 and prints what it holds. 0 when it opened and the key matches.
 */
static int
device_check(EVP_PKEY *k, const cJSON *result)
{
	size_t pwlen = 0, p12len = 0;
	uint8_t *pw = device_open(k, jstr(result, "encryptedPassword"), &pwlen);
	uint8_t *p12der = device_open(k, jstr(result, "encryptedPfx"), &p12len);
	const unsigned char *p = p12der;
	PKCS12 *p12 = p12der != NULL ? d2i_PKCS12(NULL, &p, (long)p12len) : NULL;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	STACK_OF(X509) *ca = NULL;
	char subj[256] = "";
	int ret = -1;

	if (pw != NULL && p12 != NULL && strlen((char *)pw) == pwlen &&
	    PKCS12_parse(p12, (char *)pw, &key, &cert, &ca) == 1 && cert != NULL &&
	    key != NULL && X509_check_private_key(cert, key) == 1) {
		X509_NAME_oneline(X509_get_subject_name(cert), subj, sizeof(subj));
		printf("  device    decrypted the password and the PKCS#12 with its own key: %s, "
		    "%d-bit %s key that matches, %d CA certificate(s)\n", subj, EVP_PKEY_get_bits(key),
		    EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA ? "RSA" : "EC",
		    ca != NULL ? sk_X509_num(ca) : 0);
		ret = 0;
	} else {
		printf("  device    could NOT open its delivery\n");
	}
	ERR_clear_error();
	if (pw != NULL) {
		OPENSSL_cleanse(pw, pwlen);
		free(pw);
	}
	if (p12der != NULL) {
		OPENSSL_cleanse(p12der, p12len);
		free(p12der);
	}
	PKCS12_free(p12);
	EVP_PKEY_free(key);
	X509_free(cert);
	sk_X509_pop_free(ca, X509_free);
	return ret;
}

/* The connector's events for one request (correlation id = request id), every channel. */
static void
print_request_events(const struct demo *dm, const char *id)
{
	static const char *const files[] = { "admin.jsonl", "operational.jsonl" };
	char p[PATH_MAX + 32];

	for (size_t i = 0; i < 2; i++) {
		char *line = NULL;
		size_t cap = 0;
		FILE *f;

		snprintf(p, sizeof(p), "%s/%s", dm->logdir, files[i]);
		f = fopen(p, "r");
		if (f == NULL)
			continue;
		while (getline(&line, &cap, f) > 0) {
			cJSON *e = cJSON_Parse(line), *det;
			const char *corr = jstr(e, "correlationId");
			char *dj = NULL;

			if (corr != NULL && strcmp(corr, id) == 0) {
				det = cJSON_GetObjectItem(e, "details");
				dj = det != NULL ? cJSON_PrintUnformatted(det) : NULL;
				printf("  event     %-11s %4d %-34s %s\n", jstr(e, "channel") ?
				    jstr(e, "channel") : "?", cJSON_GetObjectItem(e, "id") ?
				    cJSON_GetObjectItem(e, "id")->valueint : 0,
				    jstr(e, "name") ? jstr(e, "name") : "?", dj != NULL ? dj : "");
				free(dj);
			}
			cJSON_Delete(e);
		}
		free(line);
		fclose(f);
	}
}

/* Waits for the final state of request id, prints it with the connector's events. The
 * request's "value" (caller frees) or NULL. */
static cJSON *
wait_and_print(const struct demo *dm, const char *id)
{
	const char *r[] = { "request", id, NULL };
	cJSON *v = NULL, *res;

	for (int i = 0; i < DEMO_WAIT_S * 4; i++) {
		const char *st;

		cJSON_Delete(v);
		v = admin(dm, r);
		st = jstr(v, "state");
		if (st != NULL && (strcmp(st, "completed") == 0 || strcmp(st, "failed") == 0))
			break;
		usleep(250000);
	}
	usleep(300000); /* the parent writes the children's events asynchronously */
	res = cJSON_GetObjectItem(v, "result");
	printf("  result    state %s, succeeded %s, errorCode %d%s%s, attempt %d\n",
	    jstr(v, "state") ? jstr(v, "state") : "?",
	    cJSON_IsTrue(cJSON_GetObjectItem(v, "succeeded")) ? "true" : "false",
	    cJSON_GetObjectItem(v, "errorCode") ? cJSON_GetObjectItem(v, "errorCode")->valueint : -1,
	    jstr(v, "errorMessage") && jstr(v, "errorMessage")[0] ? " " : "",
	    jstr(v, "errorMessage") ? jstr(v, "errorMessage") : "",
	    cJSON_GetObjectItem(v, "attempt") ? cJSON_GetObjectItem(v, "attempt")->valueint : 0);
	if (cJSON_IsObject(res)) {
		const cJSON *m;

		cJSON_ArrayForEach(m, res) {
			if (cJSON_IsString(m) && strlen(m->valuestring) > 60)
				printf("            %-22s (%zu characters of base64)\n", m->string,
				    strlen(m->valuestring));
			else if (cJSON_IsString(m))
				printf("            %-22s %s\n", m->string, m->valuestring);
		}
	}
	print_request_events(dm, id);
	return v;
}

/* Writes text to a new 0600 file. 0/-1. */
static int
put_private(const char *path, const void *text, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd == -1 || write(fd, text, len) != (ssize_t)len) {
		fprintf(stderr, "certconnctl: cannot write %s: %s\n", path, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	return close(fd);
}

/* Queues feature with payload (through a file: payloads carry PFX files), waits for the
 * final state, prints it. The request's "value" (caller frees) or NULL. */
static cJSON *
queue_and_wait(const struct demo *dm, const char *feature, cJSON *payload)
{
	char file[PATH_MAX + 64], id[128];
	char *text = cJSON_PrintUnformatted(payload);
	const char *q[] = { "queue", feature, "--tenant", "dev", "--payload-file", file, NULL };
	cJSON *v;

	snprintf(file, sizeof(file), "%s/%s.json", dm->work, feature);
	if (text == NULL || put_private(file, text, strlen(text)) == -1) {
		free(text);
		return NULL;
	}
	free(text);
	v = admin(dm, q);
	unlink(file); /* it may hold an encrypted password: no copy is left lying around */
	if (jstr(v, "requestId") == NULL) {
		fprintf(stderr, "certconnctl: the hub did not queue the %s request\n", feature);
		cJSON_Delete(v);
		return NULL;
	}
	snprintf(id, sizeof(id), "%s", jstr(v, "requestId"));
	cJSON_Delete(v);
	printf("  queued    %s request %s through the hub's admin API\n", feature, id);
	return wait_and_print(dm, id);
}

static bool
succeeded(const cJSON *v)
{
	return v != NULL && cJSON_IsTrue(cJSON_GetObjectItem(v, "succeeded"));
}

/*
 * The demo PFX an administrator would import: an S/MIME key and certificate (self-signed
 * here; a real one comes from a mail CA), packed with the default AES-256 PKCS#12 under a
 * random password. base64 (malloc'd); the password into pw.
 */
static char *
demo_pfx(char *pw, size_t pwlen)
{
	EVP_PKEY *k = EVP_RSA_gen(2048);
	X509 *x = X509_new();
	X509_NAME *nm = X509_NAME_new();
	X509V3_CTX ctx;
	X509_EXTENSION *ext = NULL;
	PKCS12 *p12 = NULL;
	unsigned char r[12], *der = NULL;
	char *s = NULL;
	int n;

	if (RAND_bytes(r, sizeof(r)) != 1 || pwlen < 2 * sizeof(r) + 1)
		goto out;
	for (size_t i = 0; i < sizeof(r); i++)
		snprintf(pw + 2 * i, 3, "%02x", r[i]);
	if (k == NULL || x == NULL || nm == NULL ||
	    X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_UTF8,
	    (const unsigned char *)"Demo User (S/MIME)", -1, -1, 0) != 1 ||
	    X509_NAME_add_entry_by_txt(nm, "emailAddress", MBSTRING_UTF8,
	    (const unsigned char *)"demo.user@example.com", -1, -1, 0) != 1 ||
	    X509_set_version(x, 2) != 1 || ASN1_INTEGER_set(X509_get_serialNumber(x), 1) != 1 ||
	    X509_set_subject_name(x, nm) != 1 || X509_set_issuer_name(x, nm) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), 365L * 86400) == NULL ||
	    X509_set_pubkey(x, k) != 1)
		goto out;
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_ext_key_usage, "emailProtection");
	if (ext == NULL || X509_add_ext(x, ext, -1) != 1 || X509_sign(x, k, EVP_sha256()) <= 0)
		goto out;
	/* NID 0 / 0 iterations: OpenSSL 3's defaults, PBES2 with AES-256-CBC and PBKDF2 */
	p12 = PKCS12_create(pw, "demo S/MIME", k, x, NULL, 0, 0, 0, 0, 0);
	if (p12 == NULL || (n = i2d_PKCS12(p12, &der)) <= 0)
		goto out;
	s = b64(der, (size_t)n);
out:
	OPENSSL_cleanse(r, sizeof(r));
	ERR_clear_error();
	OPENSSL_free(der);
	PKCS12_free(p12);
	X509_EXTENSION_free(ext);
	X509_NAME_free(nm);
	X509_free(x);
	EVP_PKEY_free(k);
	return s;
}

/* The connector's pfx public key, read from the dev token (certconnctl is the
 * administrator's tool and logs in with the dev PIN, as `register` does). */
static EVP_PKEY *
pfx_public_key(const struct demo *dm)
{
	char env[PATH_MAX + 32], pinf[PATH_MAX + 8];
	struct hsm *h = NULL;
	EVP_PKEY *k = NULL;
	uint8_t *pin = NULL;
	size_t len = 0;

	snprintf(env, sizeof(env), "SOFTHSM2_CONF=%s/softhsm2.conf", dm->dir);
	snprintf(pinf, sizeof(pinf), "%s/pin", dm->dir);
	if (cc_read_file(pinf, 256, &pin, &len) == -1) {
		fprintf(stderr, "certconnctl: cannot read %s\n", pinf);
		return NULL;
	}
	pin[strcspn((char *)pin, "\r\n")] = '\0';
	h = hsm_open(DEMO_MODULE, env, "certconn", (const char *)pin);
	if (h != NULL)
		k = hsm_pubkey(h, "pkcs11:token=certconn;object=pfx");
	hsm_close(h);
	cc_free_secret(pin, len + 1);
	return k;
}

/* RSA-OAEP with SHA-512 (OAEP and MGF1) of the password's bytes: the Intune import form. */
static char *
oaep_sha512_b64(EVP_PKEY *pub, const char *pw)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, pub, "provider=default");
	unsigned char *ct = NULL;
	size_t n = 0;
	char *s = NULL;

	if (c != NULL && EVP_PKEY_encrypt_init(c) == 1 &&
	    EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING) == 1 &&
	    EVP_PKEY_CTX_set_rsa_oaep_md_name(c, "SHA512", NULL) == 1 &&
	    EVP_PKEY_CTX_set_rsa_mgf1_md_name(c, "SHA512", NULL) == 1 &&
	    EVP_PKEY_encrypt(c, NULL, &n, (const unsigned char *)pw, strlen(pw)) == 1 &&
	    (ct = malloc(n)) != NULL &&
	    EVP_PKEY_encrypt(c, ct, &n, (const unsigned char *)pw, strlen(pw)) == 1)
		s = b64(ct, n);
	ERR_clear_error();
	free(ct);
	EVP_PKEY_CTX_free(c);
	return s;
}

int
dev_flows_demo(const char *config, const char *dir)
{
	struct demo dm;
	EVP_PKEY *dev1 = NULL, *dev2 = NULL, *pfxpub = NULL;
	cJSON *pl = NULL, *v1 = NULL, *v2 = NULL, *v3 = NULL, *v4 = NULL, *o;
	char *spki = NULL, *pfx = NULL, *enc = NULL, pw[64] = "", serial[130] = "";
	int ok = 0, ret = 1;

	(void)config;
	memset(&dm, 0, sizeof(dm));
	snprintf(dm.dir, sizeof(dm.dir), "%s", dir);
	snprintf(dm.hub_conf, sizeof(dm.hub_conf), "%s/hub/hub.json", dir);
	snprintf(dm.work, sizeof(dm.work), "%s/demo", dir);
	snprintf(dm.logdir, sizeof(dm.logdir), "%s/log", dir);
	if (access(dm.hub_conf, F_OK) != 0) {
		printf("== queued flows: skipped (no dev hub in %s)\n", dir);
		return 0;
	}
	if (mkdir(dm.work, 0700) == -1 && errno != EEXIST) {
		fprintf(stderr, "certconnctl: %s: %s\n", dm.work, strerror(errno));
		return 1;
	}
	dev1 = EVP_RSA_gen(2048);
	dev2 = EVP_RSA_gen(2048);
	if (dev1 == NULL || dev2 == NULL)
		goto out;

	/* 1. pkcs: a certificate and key for a device, delivered encrypted to it. */
	printf("== queued flow 1/4: pkcs (a PKCS#12 made for demo-laptop)\n");
	pl = cJSON_CreateObject();
	spki = device_spki_b64(dev1);
	cJSON_AddStringToObject(pl, "deviceId", "demo-laptop");
	cJSON_AddStringToObject(pl, "devicePublicKey", spki != NULL ? spki : "");
	o = cJSON_AddObjectToObject(pl, "subject");
	cJSON_AddStringToObject(o, "cn", "demo-laptop");
	cJSON_AddStringToObject(pl, "deviceName", "Demo laptop");
	cJSON_AddStringToObject(pl, "userPrincipalName", "demo.user@example.com");
	v1 = queue_and_wait(&dm, "pkcs", pl);
	cJSON_Delete(pl);
	pl = NULL;
	free(spki);
	spki = NULL;
	if (succeeded(v1) && device_check(dev1, cJSON_GetObjectItem(v1, "result")) == 0)
		ok++;
	if (jstr(cJSON_GetObjectItem(v1, "result"), "serialNumber") != NULL)
		snprintf(serial, sizeof(serial), "%s",
		    jstr(cJSON_GetObjectItem(v1, "result"), "serialNumber"));

	/* 2. pkcs-recrypt: the kept copy of that result, for the user's second device. */
	printf("== queued flow 2/4: pkcs-recrypt (the same certificate for demo-tablet)\n");
	if (jstr(cJSON_GetObjectItem(v1, "result"), "keptCopy") != NULL) {
		pl = cJSON_CreateObject();
		spki = device_spki_b64(dev2);
		cJSON_AddStringToObject(pl, "deviceId", "demo-tablet");
		cJSON_AddStringToObject(pl, "devicePublicKey", spki != NULL ? spki : "");
		cJSON_AddStringToObject(pl, "encryptedPayload",
		    jstr(cJSON_GetObjectItem(v1, "result"), "keptCopy"));
		v2 = queue_and_wait(&dm, "pkcs-recrypt", pl);
		cJSON_Delete(pl);
		pl = NULL;
		if (succeeded(v2) && device_check(dev2, cJSON_GetObjectItem(v2, "result")) == 0 &&
		    jstr(cJSON_GetObjectItem(v2, "result"), "serialNumber") != NULL &&
		    strcmp(jstr(cJSON_GetObjectItem(v2, "result"), "serialNumber"), serial) == 0) {
			printf("  device    demo-tablet got the certificate of demo-laptop (serial %s)\n",
			    serial);
			ok++;
		}
	} else {
		printf("  skipped: the pkcs result has no keptCopy\n");
	}

	/* 3. pfx-import: an administrator's S/MIME PFX. The hub's way first: `certconn-hub
	 * admin pfx-import` with the plaintext password, which the hub encrypts with
	 * RSA-OAEP-SHA512 to the pfx key the connector reported in its health messages. If the
	 * hub cannot (the connector has not reported its key yet), the password is encrypted
	 * here the same way, to the pfx key read from the dev token, and queued as a payload. */
	printf("== queued flow 3/4: pfx-import (an S/MIME PFX for demo-laptop)\n");
	pfx = demo_pfx(pw, sizeof(pw));
	if (pfx != NULL) {
		char pfxf[PATH_MAX + 32], pwf[PATH_MAX + 32], dkf[PATH_MAX + 32];
		const char *imp[] = { "pfx-import", "--tenant", "dev", "--pfx", pfxf,
			"--password-file", pwf, "--device-key", dkf, "--device-id", "demo-laptop",
			"--purpose", "smimeEncryption", NULL };
		size_t rawlen = 0;
		uint8_t *raw = unb64(pfx, &rawlen);
		unsigned char *dk = NULL;
		int dklen = i2d_PUBKEY(dev1, &dk);

		snprintf(pfxf, sizeof(pfxf), "%s/demo-smime.p12", dm.work);
		snprintf(pwf, sizeof(pwf), "%s/demo-smime.pw", dm.work);
		snprintf(dkf, sizeof(dkf), "%s/demo-laptop.pub.der", dm.work);
		if (raw != NULL && dklen > 0 && put_private(pfxf, raw, rawlen) == 0 &&
		    put_private(pwf, pw, strlen(pw)) == 0 && put_private(dkf, dk, (size_t)dklen) == 0) {
			printf("  admin     PFX made (AES-256 PKCS#12); certconn-hub admin pfx-import: "
			    "the hub encrypts its password with RSA-OAEP-SHA512 to the connector's "
			    "pfx key\n");
			o = admin(&dm, imp);
			if (jstr(o, "requestId") != NULL) {
				char id[128];

				snprintf(id, sizeof(id), "%s", jstr(o, "requestId"));
				printf("  queued    pfx-import request %s through the hub's admin API\n",
				    id);
				v3 = wait_and_print(&dm, id);
			}
			cJSON_Delete(o);
		}
		/* the password file first: no plaintext password is left behind */
		unlink(pwf);
		unlink(pfxf);
		unlink(dkf);
		OPENSSL_free(dk);
		if (raw != NULL)
			OPENSSL_cleanse(raw, rawlen);
		free(raw);
	}
	if (pfx != NULL && v3 == NULL) {
		pfxpub = pfx_public_key(&dm);
		enc = pfxpub != NULL ? oaep_sha512_b64(pfxpub, pw) : NULL;
		if (enc != NULL) {
			printf("  admin     the hub did not take the upload; the password is encrypted "
			    "here with RSA-OAEP-SHA512 to the pfx key in the dev token\n");
			pl = cJSON_CreateObject();
			free(spki);
			spki = device_spki_b64(dev1);
			cJSON_AddStringToObject(pl, "deviceId", "demo-laptop");
			cJSON_AddStringToObject(pl, "devicePublicKey", spki != NULL ? spki : "");
			cJSON_AddStringToObject(pl, "pfx", pfx);
			cJSON_AddStringToObject(pl, "encryptedPassword", enc);
			cJSON_AddStringToObject(pl, "paddingScheme", "OaepSha512");
			cJSON_AddStringToObject(pl, "keyName", "pfx");
			cJSON_AddStringToObject(pl, "intendedPurpose", "smimeEncryption");
			v3 = queue_and_wait(&dm, "pfx-import", pl);
			cJSON_Delete(pl);
			pl = NULL;
		}
	}
	OPENSSL_cleanse(pw, sizeof(pw));
	if (succeeded(v3) && device_check(dev1, cJSON_GetObjectItem(v3, "result")) == 0)
		ok++;
	else if (v3 == NULL)
		printf("  skipped: the demo PFX could not be made or queued\n");

	/* 4. revoke: the certificate of flow 1; the next CRL names it. */
	printf("== queued flow 4/4: revoke (the certificate of demo-laptop)\n");
	if (serial[0] != '\0') {
		pl = cJSON_CreateObject();
		cJSON_AddStringToObject(pl, "serialNumber", serial);
		cJSON_AddNullToObject(pl, "issuerName");
		cJSON_AddStringToObject(pl, "caConfiguration", "local");
		v4 = queue_and_wait(&dm, "revoke", pl);
		cJSON_Delete(pl);
		pl = NULL;
		if (succeeded(v4)) {
			printf("  ca        serial %s is revoked; the next CRL at /crl/<ca>.crl names "
			    "it (certconnctl ca show %s)\n", serial, serial);
			ok++;
		}
	} else {
		printf("  skipped: no certificate from flow 1\n");
	}
	printf("== queued flows: %d of 4 succeeded\n", ok);
	ret = ok == 4 ? 0 : 1;
out:
	cJSON_Delete(pl);
	cJSON_Delete(v1);
	cJSON_Delete(v2);
	cJSON_Delete(v3);
	cJSON_Delete(v4);
	free(spki);
	free(pfx);
	free(enc);
	EVP_PKEY_free(dev1);
	EVP_PKEY_free(dev2);
	EVP_PKEY_free(pfxpub);
	return ret;
}
