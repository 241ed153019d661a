/*
 * certconnd's configuration: one JSON file (default CC_CONFIG_DEFAULT_PATH, --config to
 * override), documented in certconnd.json(5). The loader checks everything it can before the
 * daemon starts: types, ranges, unknown and duplicate keys, role names against the key-role
 * policy, PKCS#11 URIs, files that must exist, certificates.
 *
 * Error convention: 0/-1. On -1 err holds one line naming the file, line, column and key path,
 * e.g. "/etc/certconn/certconnd.json:12:7: keys.roles.ra.uri: expected a string, found a
 * number" ("file: problem" when the file itself cannot be read). err must hold errlen bytes.
 */
#ifndef CERTCONN_CONFIG_H
#define CERTCONN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "certconn/policy.h"
#include "certconn/proto.h"

#define CC_CONFIG_DEFAULT_PATH "/etc/certconn/certconnd.json"
#define CC_CONFIG_MAX_ENV 8
#define CC_CONFIG_PIN_MAX 256        /* bytes of PIN read from pin_file / pin_credential */

struct cc_config_env {
	char *name;                  /* [A-Za-z_][A-Za-z0-9_]* */
	char *value;
};

struct cc_config_pkcs11 {
	char *module;                /* absolute path of the PKCS#11 module, a regular file */
	struct cc_config_env env[CC_CONFIG_MAX_ENV]; /* set in keys before loading the module */
	size_t nenv;
	char *pin_file;              /* exactly one of pin_file and pin_credential is set */
	char *pin_credential;        /* systemd credential name */
	char *pin_path;              /* the file the PIN is read from (either of the above) */
	uint32_t op_timeout_ms;      /* 100..600000, default 5000 */
};

/* One configured key role, policy merged in: fills struct cc_conf_role directly. */
struct cc_config_role {
	char *name;                  /* a role of the policy */
	char *uri;                   /* RFC 7512, with object= or id= */
	char *cert_path;             /* NULL when none */
	uint8_t *cert;               /* DER of the first certificate in cert_path; NULL if none */
	size_t cert_len;
	uint32_t mechs;              /* CC_MECH_*: the policy's, or the narrower configured set */
	uint32_t flags;              /* CC_ROLE_*: the policy's, plus OPTIONAL and ALLOW_SUBCA */
	/* Signing policy of a tbs_only role (ca); all 0 / "" for other roles. */
	uint32_t max_validity_days;  /* 1..36500, default 825 */
	uint32_t key_usage;          /* KU_* allowed; 0 = any */
	char *ekus;                  /* allowed EKU OIDs, comma separated; "" = any */
	uint32_t max_crl_days;       /* 1..3650, default 30 */
};

struct cc_config_keys {
	char *policy_path;           /* the key-role policy file that was loaded */
	struct cc_policy policy;
	struct cc_config_role *roles; /* in file order */
	size_t nroles;               /* >= 1 */
};

struct cc_config_log {
	char *dir;                   /* default /var/log/certconn */
	uint64_t max_bytes;          /* per channel file before rotation; 1 MiB..10 GiB, 50 MiB */
	uint32_t keep;               /* archives kept per channel; 0..100, default 5 */
	bool journald;               /* default true */
	uint32_t debug_mask;         /* CC_CHAN_* with debug logging on at start; default 0 */
};

struct cc_config_daemon {
	char *control_socket;        /* default /run/certconn/control.sock */
	char *state_dir;             /* default /var/lib/certconn */
	char *user_net;              /* default _certconn-net */
	char *user_keys;             /* default _certconn-keys; differs from user_net */
	bool seccomp;                /* default true */
	bool landlock;               /* default true */
	uint32_t restart_max;        /* restarts of a child within restart_window_s; 1..100, 5 */
	uint32_t restart_window_s;   /* 1..86400, default 60 */
};

/* net's part. Plain data today; release with cc_config_net_free all the same. */
#define CC_LISTEN_MAX 300
#define CC_STATE_DIR_MAX 1024
struct cc_config_net {
	char listen[CC_LISTEN_MAX];  /* as written: "host:port", "[v6]:port"; 127.0.0.1:8080 */
	char host[256];              /* without brackets */
	uint16_t port;               /* 1..65535 */
	uint32_t keys_channels;      /* socketpairs between net and keys; 1..16, default 2 */
	char listen_tls[CC_LISTEN_MAX]; /* HTTPS listener, "" when none */
	char tls_host[256];
	uint16_t tls_port;
	char tls_cert[CC_STATE_DIR_MAX]; /* PEM: the tls role's certificate (and chain); required
	                                  * with listen_tls; the key is the tls role's */
	char state_dir[CC_STATE_DIR_MAX]; /* net's read-write directory (local CA database,
	                                   * outbox); default: <daemon.state_dir>/net */
	/*
	 * net's feature sections, each checked by its module's own file in src/config/
	 * (config_<name>.c, struct in include/certconn/config_<name>.h); NULL when absent.
	 */
	struct cc_config_scep *scep;       /* "net.scep": SCEP endpoint and profiles */
	struct cc_config_ca *ca;           /* "net.ca": the CA backend (local CA) */
	struct cc_config_service *service; /* "net.service": the upstream service client */
	struct cc_config_flows *flows;     /* "net.flows": the queued flows (src/flows/) */
};

struct cc_config {
	char *path;                  /* the file's name as given */
	struct cc_config_pkcs11 pkcs11;
	struct cc_config_keys keys;
	struct cc_config_log log;
	struct cc_config_daemon daemon;
	struct cc_config_net net;
	/* net's part as compact JSON (the checked "net" object of the file) for
	 * CC_MSG_CONF_NET; net reads it with cc_config_load_net, which checks it again. */
	char *net_json;
};

/* Loads and checks path. On -1 *c is zeroed (nothing to free). Free with cc_config_free. */
int cc_config_load(const char *path, struct cc_config *c, char *err, size_t errlen);
/* Same from text (len bytes, text[len] must be NUL); name is used in messages and c->path. */
int cc_config_load_buf(const char *text, size_t len, const char *name, struct cc_config *c,
    char *err, size_t errlen);
void cc_config_free(struct cc_config *c);

/*
 * net's side: parses and checks the JSON of cc_config.net_json (the same rules as the
 * "net" object of the file; errors are named "(net config):line:col: net.key: ...").
 */
int cc_config_load_net(const char *json, struct cc_config_net *n, char *err, size_t errlen);
void cc_config_net_free(struct cc_config_net *n);

/* Fills a CC_MSG_CONF_ROLE payload from a role; pointers are borrowed from r. */
void cc_config_conf_role(const struct cc_config_role *r, struct cc_conf_role *out);

/*
 * Reads the PIN from c->pkcs11.pin_path (one trailing "\n" or "\r\n" dropped) into a
 * malloc'd buffer of *len bytes, 1..CC_CONFIG_PIN_MAX, not NUL-terminated. The caller
 * releases it with cc_free_secret(*pin, *len).
 */
int cc_config_read_pin(const struct cc_config *c, uint8_t **pin, size_t *len, char *err,
    size_t errlen);

#endif
