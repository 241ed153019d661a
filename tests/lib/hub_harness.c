/* A real certconn-hub for tests: see hub_harness.h. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "hub_harness.h"
#include "test_token.h"

static const char *
hub_exe(void)
{
	static char p[512];
	const char *e = getenv("CERTCONN_HUB"), *b = getenv("CC_BUILD_DIR");

	if (e != NULL && e[0] != '\0')
		return e;
	snprintf(p, sizeof(p), "%s/certconn-hub", b != NULL ? b : ".");
	return p;
}

static int
write_text(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	size_t n = strlen(text);

	if (fd == -1 || write(fd, text, n) != (ssize_t)n) {
		fprintf(stderr, "hub_harness: cannot write %s: %s\n", path, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	return close(fd);
}

static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
		buf = calloc(1, (size_t)n + 1);
		if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		}
	}
	fclose(f);
	return buf;
}

static int
write_conf(struct hub_harness *h, unsigned port, const char *extra)
{
	char text[8192];

	snprintf(text, sizeof(text),
	    "{\n"
	    "  \"listen\": \"127.0.0.1:%u\",\n"
	    "  \"state_dir\": \"%s/state\",\n"
	    "  \"tls\": {\"cert\": \"%s/tls.pem\", \"key\": \"%s/tls.key\"},\n"
	    "  \"ca\": {\"module\": \"%s\", \"env\": {\"SOFTHSM2_CONF\": \"%s/softhsm2.conf\"},\n"
	    "         \"key\": \"pkcs11:token=hubtest;object=hub-ca\", \"pin_file\": \"%s/pin\",\n"
	    "         \"cert\": \"%s/ca.pem\"},\n"
	    "  \"admin_token_file\": \"%s\"%s%s\n"
	    "}\n", port, h->dir, h->dir, h->dir, TEST_SOFTHSM_MODULE, h->dir, h->dir, h->dir,
	    h->token_file, extra != NULL ? ",\n  " : "", extra != NULL ? extra : "");
	return write_text(h->conf, text, 0644);
}

static int
run_wait(char *const argv[], const char *logpath)
{
	pid_t pid = fork();
	int st;

	if (pid == -1)
		return -1;
	if (pid == 0) {
		int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd != -1) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return -1;
	return 0;
}

static int
serve(struct hub_harness *h)
{
	char ready[400];
	char *url = NULL;
	pid_t pid;

	snprintf(ready, sizeof(ready), "%s/ready", h->dir);
	unlink(ready);
	pid = fork();
	if (pid == -1)
		return -1;
	if (pid == 0) {
		int fd = open(h->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		const char *exe = hub_exe();
		if (fd != -1) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(exe, exe, "serve", "-c", h->conf, "--ready-file", ready, "-v", (char *)NULL);
		_exit(127);
	}
	h->pid = pid;
	for (int i = 0; i < 600 && url == NULL; i++) {
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			fprintf(stderr, "hub_harness: the hub exited (status %d); log %s\n", st, h->log);
			h->pid = 0;
			return -1;
		}
		url = slurp(ready);
		if (url == NULL)
			usleep(50000);
	}
	if (url == NULL) {
		fprintf(stderr, "hub_harness: the hub did not become ready; log %s\n", h->log);
		return -1;
	}
	url[strcspn(url, "\n")] = '\0';
	snprintf(h->url, sizeof(h->url), "%s", url);
	free(url);
	return 0;
}

int
hub_harness_start(struct hub_harness *h, const char *extra)
{
	char p[400], so[400], *tok;
	const char *tmp = getenv("TMPDIR");
	char *argv[9];
	unsigned port = 0;
	char *colon;

	memset(h, 0, sizeof(*h));
	snprintf(h->dir, sizeof(h->dir), "%s/hubtest.XXXXXX", tmp != NULL ? tmp : "/tmp");
	if (mkdtemp(h->dir) == NULL) {
		fprintf(stderr, "hub_harness: mkdtemp: %s\n", strerror(errno));
		return -1;
	}
	chmod(h->dir, 0755);
	snprintf(h->conf, sizeof(h->conf), "%s/hub.json", h->dir);
	snprintf(h->ca_pem, sizeof(h->ca_pem), "%s/ca.pem", h->dir);
	snprintf(h->token_file, sizeof(h->token_file), "%s/admin-token", h->dir);
	snprintf(h->log, sizeof(h->log), "%s/hub.log", h->dir);
	snprintf(p, sizeof(p), "%s/tokens", h->dir);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/softhsm2.conf", h->dir);
	{
		char conf[600];
		snprintf(conf, sizeof(conf), "directories.tokendir = %s/tokens\nobjectstore.backend "
		    "= file\nlog.level = ERROR\nslots.removable = false\n", h->dir);
		if (write_text(p, conf, 0644) == -1)
			return -1;
	}
	snprintf(so, sizeof(so), "%s/so-pin", h->dir);
	if (write_text(so, "so-hubtest-4321\n", 0600) == -1 ||
	    write_conf(h, 0, extra != NULL ? extra : "\"lease\": {\"min_s\": 1}") == -1)
		return -1;
	argv[0] = (char *)hub_exe();
	argv[1] = (char *)"init";
	argv[2] = (char *)"-c";
	argv[3] = h->conf;
	argv[4] = (char *)"--so-pin-file";
	argv[5] = so;
	argv[6] = (char *)"--ca-key=ec"; /* fast to make; the RSA CA path runs in test_hub_dev */
	argv[7] = NULL;
	if (run_wait(argv, h->log) == -1) {
		fprintf(stderr, "hub_harness: certconn-hub init failed; log %s\n", h->log);
		return -1;
	}
	tok = slurp(h->token_file);
	if (tok == NULL)
		return -1;
	tok[strcspn(tok, "\r\n")] = '\0';
	snprintf(h->admin_token, sizeof(h->admin_token), "%s", tok);
	free(tok);
	if (serve(h) == -1)
		return -1;
	/* Keep the port for restarts. */
	colon = strrchr(h->url, ':');
	if (colon != NULL)
		port = (unsigned)atoi(colon + 1);
	return write_conf(h, port, extra != NULL ? extra : "\"lease\": {\"min_s\": 1}");
}

int
hub_harness_restart(struct hub_harness *h)
{
	return serve(h);
}

int
hub_harness_reconfigure(struct hub_harness *h, const char *extra)
{
	char *colon = strrchr(h->url, ':');

	if (h->pid > 0 && hub_harness_stop(h) != 0)
		return -1;
	if (colon == NULL || write_conf(h, (unsigned)atoi(colon + 1), extra) == -1)
		return -1;
	return serve(h);
}

int
hub_harness_stop(struct hub_harness *h)
{
	int st = -1;

	if (h->pid <= 0)
		return -1;
	kill(h->pid, SIGTERM);
	for (int i = 0; i < 200; i++) {
		if (waitpid(h->pid, &st, WNOHANG) == h->pid) {
			h->pid = 0;
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		}
		usleep(50000);
	}
	kill(h->pid, SIGKILL);
	waitpid(h->pid, &st, 0);
	h->pid = 0;
	return -1;
}

void
hub_harness_free(struct hub_harness *h)
{
	if (h->pid > 0)
		hub_harness_stop(h);
	if (h->dir[0] == '\0')
		return;
	if (getenv("HUB_HARNESS_KEEP") == NULL)
		test_rmtree(h->dir);
	else
		fprintf(stderr, "hub_harness: kept %s\n", h->dir);
}

/* ---- HTTP ---- */

struct buf {
	char *p;
	size_t n;
};

static size_t
body_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct buf *b = arg;
	size_t add = size * nmemb;
	char *np = realloc(b->p, b->n + add + 1);

	if (np == NULL)
		return 0;
	memcpy(np + b->n, ptr, add);
	b->p = np;
	b->n += add;
	b->p[b->n] = '\0';
	return add;
}

static size_t
header_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct hub_resp *r = arg;
	size_t n = size * nmemb;
	char line[512];

	if (n < sizeof(line)) {
		memcpy(line, ptr, n);
		line[n] = '\0';
		line[strcspn(line, "\r\n")] = '\0';
		if (strncasecmp(line, "client-request-id: ", 19) == 0)
			snprintf(r->client_request_id, sizeof(r->client_request_id), "%.127s",
			    line + 19);
		if (strncasecmp(line, "Retry-After: ", 13) == 0)
			snprintf(r->retry_after, sizeof(r->retry_after), "%.15s", line + 13);
	}
	return n;
}

int
hub_http(const char *url, const char *method, const char *const *headers, const char *body,
    const char *ca, const char *cert, const char *key, struct hub_resp *r)
{
	CURL *e = curl_easy_init();
	struct curl_slist *hl = NULL;
	struct buf b = { NULL, 0 };
	CURLcode rc;

	memset(r, 0, sizeof(*r));
	r->status = -1;
	if (e == NULL)
		return -1;
	for (size_t i = 0; headers != NULL && headers[i] != NULL; i++)
		hl = curl_slist_append(hl, headers[i]);
	/* curl adds these unless told not to; the tests decide what is sent. */
	hl = curl_slist_append(hl, "Expect:");
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	if (body != NULL) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(e, CURLOPT_CAINFO, ca);
	if (cert != NULL) {
		curl_easy_setopt(e, CURLOPT_SSLCERT, cert);
		curl_easy_setopt(e, CURLOPT_SSLKEY, key);
	}
	curl_easy_setopt(e, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, body_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
	rc = curl_easy_perform(e);
	if (rc == CURLE_OK)
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(hl);
	curl_easy_cleanup(e);
	r->body = b.p;
	if (b.p != NULL)
		r->json = cJSON_Parse(b.p);
	if (rc != CURLE_OK) {
		fprintf(stderr, "hub_harness: %s %s: %s\n", method, url, curl_easy_strerror(rc));
		return -1;
	}
	return 0;
}

void
hub_resp_free(struct hub_resp *r)
{
	free(r->body);
	cJSON_Delete(r->json);
	memset(r, 0, sizeof(*r));
}

static void
new_id(char *out, size_t len)
{
	unsigned char b[8];

	RAND_bytes(b, sizeof(b));
	snprintf(out, len, "t-%02x%02x%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4],
	    b[5], b[6], b[7]);
}

int
hub_admin(struct hub_harness *h, const char *method, const char *path, const char *body,
    struct hub_resp *r)
{
	char url[1024], id[64], crid[128], auth[200];
	const char *hdr[] = { "api-version: 1.0", crid, auth, "Content-Type: application/json",
		NULL };

	new_id(id, sizeof(id));
	snprintf(crid, sizeof(crid), "client-request-id: %s", id);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", h->admin_token);
	snprintf(url, sizeof(url), "%s/admin/%s", h->url, path);
	return hub_http(url, method, hdr, body, h->ca_pem, NULL, NULL, r);
}

int
hub_conn_post(struct hub_harness *h, const struct hub_test_conn *c, const char *path,
    const char *api_version, const char *body, struct hub_resp *r)
{
	char url[1024], id[64], crid[128], av[128];
	const char *hdr[] = { av, crid, "Content-Type: application/json", NULL };

	new_id(id, sizeof(id));
	snprintf(crid, sizeof(crid), "client-request-id: %s", id);
	snprintf(av, sizeof(av), "api-version: %s", api_version);
	snprintf(url, sizeof(url), "%s/api/%s", h->url, path);
	return hub_http(url, "POST", hdr, body, h->ca_pem, c ? c->cert : NULL,
	    c ? c->key : NULL, r);
}

const char *
hub_json_str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ---- CSRs and registration ---- */

char *
hub_test_csr(const char *key_path, int rsa_bits, const char *subject, const char *challenge,
    const char *sans)
{
	EVP_PKEY *k;
	X509_REQ *req = X509_REQ_new();
	X509_NAME *n = X509_NAME_new();
	unsigned char *der = NULL;
	char *out = NULL, buf[512], *save = NULL, *rdn;
	int len;
	FILE *f;

	if (rsa_bits > 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)rsa_bits);
	else
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (k == NULL || req == NULL || n == NULL)
		goto out;
	if (key_path != NULL) {
		f = fopen(key_path, "w");
		if (f == NULL || !PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL)) {
			if (f != NULL)
				fclose(f);
			goto out;
		}
		fclose(f);
	}
	snprintf(buf, sizeof(buf), "%s", subject != NULL ? subject : "");
	for (rdn = strtok_r(buf, ",", &save); rdn != NULL; rdn = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(rdn, '=');
		if (eq == NULL)
			goto out;
		*eq = '\0';
		X509_NAME_add_entry_by_txt(n, rdn, MBSTRING_UTF8, (unsigned char *)eq + 1, -1, -1,
		    0);
	}
	X509_REQ_set_subject_name(req, n);
	X509_REQ_set_pubkey(req, k);
	if (challenge != NULL)
		X509_REQ_add1_attr_by_NID(req, NID_pkcs9_challengePassword, MBSTRING_UTF8,
		    (const unsigned char *)challenge, -1);
	if (sans != NULL) {
		STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
		X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, sans);
		if (e == NULL || exts == NULL)
			goto out;
		sk_X509_EXTENSION_push(exts, e);
		X509_REQ_add_extensions(req, exts);
		sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	}
	if (X509_REQ_sign(req, k, EVP_sha256()) <= 0)
		goto out;
	len = i2d_X509_REQ(req, &der);
	if (len <= 0)
		goto out;
	out = malloc((size_t)(len + 2) / 3 * 4 + 1);
	if (out != NULL)
		EVP_EncodeBlock((unsigned char *)out, der, len);
out:
	OPENSSL_free(der);
	X509_NAME_free(n);
	X509_REQ_free(req);
	EVP_PKEY_free(k);
	return out;
}

int
hub_test_token(struct hub_harness *h, const char *tenant, const char *features_json, char *out,
    size_t len)
{
	struct hub_resp r;
	char body[512];
	const char *tok;
	int ret = -1;

	snprintf(body, sizeof(body), "{\"tenant\":{\"tenantId\":\"%s\"}}", tenant);
	if (hub_admin(h, "POST", "tenants", body, &r) == -1 || (r.status != 201 &&
	    r.status != 200)) {
		fprintf(stderr, "hub_harness: tenant %s: %ld %s\n", tenant, r.status,
		    r.body ? r.body : "");
		hub_resp_free(&r);
		return -1;
	}
	hub_resp_free(&r);
	if (features_json != NULL)
		snprintf(body, sizeof(body), "{\"enrollmentToken\":{\"tenantId\":\"%s\","
		    "\"features\":%s}}", tenant, features_json);
	else
		snprintf(body, sizeof(body), "{\"enrollmentToken\":{\"tenantId\":\"%s\"}}", tenant);
	if (hub_admin(h, "POST", "enrollmentTokens", body, &r) == 0 && r.status == 201 &&
	    (tok = hub_json_str(cJSON_GetObjectItem(r.json, "value"), "token")) != NULL) {
		snprintf(out, len, "%s", tok);
		ret = 0;
	} else {
		fprintf(stderr, "hub_harness: token: %ld %s\n", r.status, r.body ? r.body : "");
	}
	hub_resp_free(&r);
	return ret;
}

static int
write_b64_pem(const char *path, const char *b64)
{
	unsigned char *der = malloc(strlen(b64));
	const unsigned char *p;
	X509 *x = NULL;
	FILE *f = NULL;
	int n, ret = -1;

	if (der == NULL)
		return -1;
	n = EVP_DecodeBlock(der, (const unsigned char *)b64, (int)strlen(b64));
	p = der;
	/* EVP_DecodeBlock counts padding bytes as zeros; d2i stops at the real end. */
	if (n > 0 && (x = d2i_X509(NULL, &p, n)) != NULL && (f = fopen(path, "w")) != NULL &&
	    PEM_write_X509(f, x))
		ret = 0;
	if (f != NULL && fclose(f) != 0)
		ret = -1;
	X509_free(x);
	free(der);
	return ret;
}

int
hub_test_register(struct hub_harness *h, const char *tenant, const char *features_json,
    const char *version, struct hub_test_conn *c)
{
	static int seq;
	char token[128], body[8192];
	char *csr;
	struct hub_resp r;
	const cJSON *v;
	int ret = -1;

	memset(c, 0, sizeof(*c));
	if (hub_test_token(h, tenant, NULL, token, sizeof(token)) == -1)
		return -1;
	seq++;
	snprintf(c->key, sizeof(c->key), "%s/conn%d.key", h->dir, seq);
	snprintf(c->cert, sizeof(c->cert), "%s/conn%d.pem", h->dir, seq);
	csr = hub_test_csr(c->key, 0, "CN=ignored", NULL, NULL);
	if (csr == NULL)
		return -1;
	snprintf(body, sizeof(body), "{\"registration\":{\"enrollmentToken\":\"%s\","
	    "\"certificateRequest\":\"%s\",\"connectorName\":\"conn%d\",\"version\":\"%s\","
	    "\"features\":%s}}", token, csr, seq, version, features_json);
	free(csr);
	if (hub_conn_post(h, NULL, "Registration/register", "1.0", body, &r) == -1 ||
	    r.status != 201) {
		fprintf(stderr, "hub_harness: register: %ld %s\n", r.status, r.body ? r.body : "");
		goto out;
	}
	v = cJSON_GetObjectItem(r.json, "value");
	if (hub_json_str(v, "connectorId") == NULL || hub_json_str(v, "certificate") == NULL)
		goto out;
	snprintf(c->id, sizeof(c->id), "%s", hub_json_str(v, "connectorId"));
	snprintf(c->tenant, sizeof(c->tenant), "%s", tenant);
	ret = write_b64_pem(c->cert, hub_json_str(v, "certificate"));
out:
	hub_resp_free(&r);
	return ret;
}

int
hub_test_queue(struct hub_harness *h, const char *tenant, const char *feature,
    const char *payload_json, char *id, size_t idlen)
{
	struct hub_resp r;
	char *body;
	size_t len = strlen(payload_json) + 256;
	int ret = -1;

	body = malloc(len);
	if (body == NULL)
		return -1;
	snprintf(body, len, "{\"request\":{\"tenantId\":\"%s\",\"feature\":\"%s\",\"payload\":%s}}",
	    tenant, feature, payload_json);
	if (hub_admin(h, "POST", "requests", body, &r) == 0 && r.status == 201 &&
	    hub_json_str(cJSON_GetObjectItem(r.json, "value"), "requestId") != NULL) {
		snprintf(id, idlen, "%s", hub_json_str(cJSON_GetObjectItem(r.json, "value"),
		    "requestId"));
		ret = 0;
	} else {
		fprintf(stderr, "hub_harness: queue: %ld %s\n", r.status, r.body ? r.body : "");
	}
	hub_resp_free(&r);
	free(body);
	return ret;
}
