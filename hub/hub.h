/*
 * certconn-hub: the reference control plane (docs/hub.md, docs/protocol.md).
 *
 * Layers:
 *  - hub_http.c: libevent's evhttp over TLS (bufferevent_openssl). It turns each HTTP request
 *    into a struct hub_call (method, path, the protocol's headers, body, and the identity the
 *    verified client certificate names) and sends back the struct hub_reply.
 *  - hub_api.c / hub_admin.c / hub_scep.c: hub_handle(), the whole protocol, independent of
 *    the transport (so the fuzzer and the unit tests drive it directly).
 *  - store.h: the state, behind an interface (SQLite in store_sqlite.c).
 *  - hub_ca.c: the hub CA; its key is in a PKCS#11 token, used in-process through hsm.h.
 *
 * Error convention: 0/-1 with a log line, unless a function says otherwise.
 */
#ifndef CERTCONN_HUB_H
#define CERTCONN_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <openssl/x509.h>

struct hub_store;
struct hub_ca;

/* ---- features ---- */

#define HUB_F_PKCS 0x01u
#define HUB_F_PKCS_RECRYPT 0x02u
#define HUB_F_PFX_IMPORT 0x04u
#define HUB_F_REVOKE 0x08u
#define HUB_F_SCEP 0x10u
#define HUB_F_ALL 0x1fu

/* The bit of a feature name ("pkcs", "pkcs-recrypt", ...); 0 when unknown. */
uint32_t hub_feature_bit(const char *name);
/* The name of one feature bit; NULL for anything else. */
const char *hub_feature_name(uint32_t bit);
/* A JSON array of the names of the bits in mask (NULL on allocation failure). */
cJSON *hub_features_json(uint32_t mask);

/* ---- limits (docs/protocol.md section 11) ---- */

#define HUB_ID_MAX 64               /* tenant, connector, request and client-request ids */
#define HUB_TXID_MAX 128            /* SCEP transaction ids */
#define HUB_CSR_MAX (16u * 1024u)   /* DER bytes of a CSR */
#define HUB_OBJ_MAX (256u * 1024u)  /* JSON bytes of a payload or result object */
#define HUB_BATCH_MAX 500u
#define HUB_MSG_MAX 1024u           /* errorMessage, health messages */
#define HUB_SCEP_DESC_MAX 255u      /* SCEP errorDescription */
#define HUB_VERSION_MAX 32
#define HUB_NAME_MAX 64
#define HUB_KEYNAME_MAX 128         /* keyName of a connector's pfx key */
#define HUB_SPKI_MAX (16u * 1024u)  /* DER bytes of a public key */
#define HUB_BODY_MAX_DEFAULT (1024u * 1024u)

/* ---- configuration (hub_config.c; certconn-hub.8) ---- */

struct hub_version_seed {
	char *version;
	int64_t released;            /* unix seconds */
};

struct hub_conf {
	char *path;
	char host[256];              /* listen address without brackets */
	uint16_t port;
	char *state_dir;             /* the database lives here: hub.db */
	char *db_path;
	char *tls_cert;              /* PEM: the server certificate (and chain) */
	char *tls_key;               /* PEM: its key, a file (see docs/hub.md for why) */
	char *ca_module;             /* PKCS#11 module of the CA key */
	char *ca_module_env;         /* "NAME=value" or NULL */
	char *ca_key_uri;            /* RFC 7512 URI of the CA's private key */
	char *ca_pin_file;
	char *ca_cert;               /* PEM: the hub CA certificate */
	char *admin_token_file;      /* the admin credential (a secret; its hash is kept) */
	uint32_t client_cert_days;   /* validity of connector certificates, 1..3650, 365 */
	uint32_t health_interval_s;  /* 10..86400, 60 */
	uint32_t unhealthy_after_s;  /* 0: 3 intervals */
	uint32_t max_connectors;     /* per tenant, 1..100, 100 */
	uint32_t lease_default_s;    /* 300 */
	uint32_t lease_min_s;        /* 30 (tests use 1) */
	uint32_t lease_max_s;        /* 3600 */
	uint32_t max_attempts;       /* 1..1000, 10 */
	uint32_t support_months;     /* 6 */
	uint32_t block_months;       /* 18 */
	bool refuse_blocked;         /* VersionBlocked for blocked versions */
	uint64_t max_body_bytes;     /* 64 KiB..1 MiB, 1 MiB */
	struct hub_version_seed *versions; /* catalogue entries loaded at start */
	size_t nversions;
};

/* Loads and checks a config file; errors name file:line:col and the key path. */
int hub_conf_load(const char *path, struct hub_conf *c, char *err, size_t errlen);
void hub_conf_free(struct hub_conf *c);

/* ---- the hub ---- */

typedef int64_t (*hub_clock_fn)(void *arg);   /* unix seconds */

struct hub {
	const struct hub_conf *conf;
	struct hub_store *store;
	struct hub_ca *ca;                  /* NULL: registration answers 503 (fuzzer) */
	unsigned char admin_hash[32];       /* SHA-256 of the admin token */
	bool has_admin;
	hub_clock_fn clock;                 /* NULL: time(NULL) */
	void *clock_arg;
};

int64_t hub_now(const struct hub *h);

enum hub_method { HUB_M_OTHER = 0, HUB_M_GET, HUB_M_POST };

/* What the verified TLS client certificate says (hub_http.c extracts it). */
struct hub_peer {
	bool present;                       /* a certificate that chains to the hub CA */
	char tenant[HUB_ID_MAX + 1];
	char connector[HUB_ID_MAX + 1];
	char serial[80];                    /* hex, upper case */
};

struct hub_call {
	enum hub_method method;
	const char *path;                   /* without the query */
	const char *query;                  /* raw query string or NULL */
	const char *api_version;            /* header values or NULL */
	const char *client_request_id;
	const char *authorization;
	const char *content_type;
	const char *body;                   /* not NUL-terminated */
	size_t body_len;
	struct hub_peer peer;
};

struct hub_reply {
	int status;
	char *body;                         /* malloc'd JSON text, or NULL */
	char client_request_id[HUB_ID_MAX + 1]; /* echoed when it was valid */
	int retry_after;                    /* seconds; 0: no header */
};

/*
 * Serves one call. Never fails: every outcome is a reply (status 500 when the hub itself
 * fails). Free the reply with hub_reply_free.
 */
void hub_handle(struct hub *h, const struct hub_call *call, struct hub_reply *r);
void hub_reply_free(struct hub_reply *r);

/* ---- shared helpers of the handlers (hub_util.c) ---- */

/* "2025-03-01T12:00:00Z"; buf holds 32 bytes. */
const char *hub_time_str(int64_t t, char *buf);
/* Parses "YYYY-MM-DDThh:mm:ss[.fff]Z" or "YYYY-MM-DD" (midnight UTC). 0/-1. */
int hub_time_parse(const char *s, int64_t *out);
/* Adds calendar months, clamping the day to the month's end. */
int64_t hub_add_months(int64_t t, int months);
/* A random UUID v4 (37 bytes with the NUL). */
void hub_uuid(char out[37]);
/* Lower-case hex SHA-256 of data (65 bytes with the NUL). */
void hub_sha256_hex(const void *data, size_t len, char out[65]);
/* Base64 (standard, no line breaks) decode into a malloc'd buffer; -1 if not base64 or over max. */
int hub_b64_decode(const char *s, size_t max, uint8_t **out, size_t *outlen);
/* Base64 encode; malloc'd NUL-terminated string, NULL on failure. */
char *hub_b64_encode(const uint8_t *in, size_t len);
/* An id of 1..HUB_ID_MAX characters of A-Z a-z 0-9 . _ : - */
bool hub_id_ok(const char *s);
/* "N.N.N" with numbers of at most 9 digits; compares such versions (-1, 0, 1). */
bool hub_version_ok(const char *s);
int hub_version_cmp(const char *a, const char *b);

/* ---- lifecycle (hub_lifecycle.c) ---- */

enum hub_life { HUB_LIFE_UNKNOWN, HUB_LIFE_SUPPORTED, HUB_LIFE_WARNING, HUB_LIFE_ERROR,
	HUB_LIFE_BLOCKED };

struct hub_version_entry {
	const char *version;
	int64_t released;
};

struct hub_life_result {
	enum hub_life status;
	const char *latest;            /* newest catalogue version (borrowed), or NULL */
	int64_t support_ends;          /* 0 when no newer release */
	int64_t block_after;           /* 0 when no newer release */
};

/*
 * The status of version at time now, from the catalogue (any order): supported while no
 * newer release exists; warning during support_months after the first release that is newer;
 * error afterwards; blocked from block_months after it. Newer means released later (ties:
 * the higher version number).
 */
void hub_lifecycle(const struct hub_version_entry *cat, size_t n, const char *version,
    int64_t now, int support_months, int block_months, struct hub_life_result *out);
const char *hub_life_name(enum hub_life s);

#endif
