/*
 * A real certconn-hub for tests: a fresh mkdtemp directory with its own SoftHSM2 token (made
 * by `certconn-hub init`, which also makes the CA, the TLS certificate and the admin token),
 * the hub started with `serve` on a free loopback port, and HTTPS helpers (libcurl) to call
 * it as an administrator or as a registered connector (whose key is a file made here: the
 * connector side of the real appliance is tested with keyref elsewhere).
 *
 * The hub binary: $CERTCONN_HUB, else $CC_BUILD_DIR/certconn-hub.
 * Error convention: 0/-1 with a line on stderr.
 */
#ifndef CERTCONN_HUB_HARNESS_H
#define CERTCONN_HUB_HARNESS_H

#include <stddef.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

struct hub_harness {
	char dir[256];
	char conf[320];
	char ca_pem[320];
	char token_file[320];
	char log[320];
	char admin_token[128];
	char url[128];
	pid_t pid;
};

/*
 * Creates everything and starts the hub. extra: more top-level members of the hub's config
 * (e.g. "\"lease\": {\"min_s\": 1}"), or NULL. The default config has lease min_s 1.
 */
int hub_harness_start(struct hub_harness *h, const char *extra);
/* Starts the hub again on the same directory and port (after hub_harness_kill/stop). */
int hub_harness_restart(struct hub_harness *h);
/* Stops the hub, rewrites its config with other extra members (same port) and starts it. */
int hub_harness_reconfigure(struct hub_harness *h, const char *extra);
/* SIGTERM and wait; returns the exit status (or -1). */
int hub_harness_stop(struct hub_harness *h);
/* Stops if running and removes the directory. */
void hub_harness_free(struct hub_harness *h);

struct hub_resp {
	long status;
	char *body;              /* NUL-terminated, or NULL */
	cJSON *json;             /* parsed body, or NULL */
	char client_request_id[128]; /* the response header, "" if absent */
	char retry_after[16];
};
void hub_resp_free(struct hub_resp *r);

/* One HTTPS call. headers: NULL-terminated "Name: value" lines (no defaults are added).
 * cert/key: PEM files for client authentication, or NULL. 0 when an HTTP answer came. */
int hub_http(const char *url, const char *method, const char *const *headers,
    const char *body, const char *ca, const char *cert, const char *key, struct hub_resp *r);

/* Admin call: api-version 1.0, a fresh client-request-id, the admin token. path below
 * /admin/; body NULL for GET. */
int hub_admin(struct hub_harness *h, const char *method, const char *path, const char *body,
    struct hub_resp *r);

struct hub_test_conn {
	char id[80];
	char tenant[80];
	char cert[320];          /* PEM files under the harness directory */
	char key[320];
};

/* Connector call (POST) with its client certificate: api_version, a fresh client-request-id. */
int hub_conn_post(struct hub_harness *h, const struct hub_test_conn *c, const char *path,
    const char *api_version, const char *body, struct hub_resp *r);

/* Makes the tenant (if needed), an enrollment token, an EC key and CSR, registers: *c. */
int hub_test_register(struct hub_harness *h, const char *tenant, const char *features_json,
    const char *version, struct hub_test_conn *c);
/* A fresh enrollment token for tenant (features_json "[...]" or NULL). */
int hub_test_token(struct hub_harness *h, const char *tenant, const char *features_json,
    char *out, size_t len);
/* base64 of a DER CSR for a new key written to key_path (EC P-256 unless rsa_bits > 0),
 * with the given subject ("CN=x") and challengePassword (or NULL) and SANs (OpenSSL form
 * "DNS:a,DNS:b" or NULL). malloc'd. */
char *hub_test_csr(const char *key_path, int rsa_bits, const char *subject,
    const char *challenge, const char *sans);

/* Queues a request through the admin API; its id into id (64+ bytes). */
int hub_test_queue(struct hub_harness *h, const char *tenant, const char *feature,
    const char *payload_json, char *id, size_t idlen);

/* A string member of the response's "value" (or of an object), or NULL. */
const char *hub_json_str(const cJSON *o, const char *key);

#endif
