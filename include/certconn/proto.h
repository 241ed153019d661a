/*
 * Typed messages on top of the codec in msg.h: one struct, one encoder and one decoder per
 * message type. Encoders build a finished frame in w (caller frees with cc_wbuf_free).
 * Decoders fill the struct with pointers borrowed from the frame (valid while the frame is),
 * check every field and reject trailing bytes. 0/-1; on -1 *why names the problem.
 */
#ifndef CERTCONN_PROTO_H
#define CERTCONN_PROTO_H

#include "certconn/msg.h"

/* Key types. */
enum cc_key_type { CC_KEY_NONE = 0, CC_KEY_RSA = 1, CC_KEY_EC = 2 };

/* Digests, named on the wire by these numbers (not by OpenSSL NIDs). */
enum cc_md { CC_MD_NONE = 0, CC_MD_SHA1 = 1, CC_MD_SHA224 = 2, CC_MD_SHA256 = 3,
	     CC_MD_SHA384 = 4, CC_MD_SHA512 = 5, CC_MD_MAX = 5 };

/* Signature schemes over a digest. */
enum cc_sig_alg { CC_SIG_RSA_PKCS1 = 1, CC_SIG_RSA_PSS = 2, CC_SIG_ECDSA = 3, CC_SIG_MAX = 3 };

/* Decryption paddings. */
enum cc_dec_pad { CC_DEC_RSA_PKCS1 = 1, CC_DEC_RSA_OAEP = 2, CC_DEC_MAX = 2 };

/* Mechanisms a key role may use (policy bits). */
#define CC_MECH_SIGN_RSA_PKCS1 0x0001u
#define CC_MECH_SIGN_RSA_PSS 0x0002u
#define CC_MECH_SIGN_ECDSA 0x0004u
#define CC_MECH_DECRYPT_RSA_PKCS1 0x0008u
#define CC_MECH_DECRYPT_RSA_OAEP 0x0010u
#define CC_MECH_SIGN_TBS 0x0020u /* sign checked certificates and CRLs (ca role) */
#define CC_MECH_ALL 0x003fu

/* Role flags. */
#define CC_ROLE_FALLBACK 0x0001u /* may use raw RSA / raw ECDSA with padding done in keys */
#define CC_ROLE_TBS_ONLY 0x0002u /* signs only parsed, policy-checked TBS (never a bare digest) */
#define CC_ROLE_OPTIONAL 0x0004u /* start even if the key is missing */
#define CC_ROLE_ALLOW_SUBCA 0x0008u

/* Key usage bits for the ca role's signing policy (X509v3_KU_* values from OpenSSL). */

/* Error codes carried by CC_MSG_ERROR. */
enum cc_keys_err {
	CC_KE_OK = 0,
	CC_KE_DENIED = 1,   /* the role's policy does not allow this */
	CC_KE_NOKEY = 2,    /* no such role, or its key is missing */
	CC_KE_TOKEN = 3,    /* token fault; keys reopened the session, the caller may retry */
	CC_KE_TIMEOUT = 4,  /* the module did not answer in time */
	CC_KE_BADINPUT = 5, /* malformed or inconsistent request */
	CC_KE_REFUSED = 6,  /* the ca role's signing policy refused the certificate or CRL */
	CC_KE_INTERNAL = 7,
	CC_KE_UNAVAILABLE = 8 /* keys is not reachable (set by the caller side) */
};
const char *cc_keys_strerror(uint32_t code);

/* Channels of the event catalogue, as bits for debug masks. */
#define CC_CHAN_ADMIN 0x1u
#define CC_CHAN_OPERATIONAL 0x2u
#define CC_CHAN_DEBUG 0x4u

struct cc_conf_keys {
	const char *module;        /* PKCS#11 module path */
	const char *module_env;    /* "NAME=value" set before loading (e.g. SOFTHSM2_CONF), or "" */
	uint32_t op_timeout_ms;    /* a module call longer than this fails the request */
	uint32_t sessions;         /* worker sessions; one per net channel */
	uint32_t max_input;        /* largest TBS or ciphertext accepted */
};

struct cc_conf_role {
	const char *name;          /* ca, ra, ra-sign, ra-encrypt, client, pfx, tls */
	const char *uri;           /* RFC 7512 */
	uint32_t mechs;            /* CC_MECH_* */
	uint32_t flags;            /* CC_ROLE_* */
	const uint8_t *cert;       /* DER certificate of the role (the CA's own for ca), optional */
	size_t cert_len;
	/* ca role's signing policy */
	uint32_t max_validity_days;
	uint32_t key_usage;        /* allowed keyUsage bits (KU_* of OpenSSL x509v3.h); 0 = any */
	const char *ekus;          /* allowed EKU OIDs, comma separated; "" = any */
	uint32_t max_crl_days;     /* longest nextUpdate - thisUpdate */
};

struct cc_conf_pin {
	const uint8_t *pin;        /* not NUL-terminated */
	size_t len;
};

struct cc_conf_net {
	const char *json;          /* net's part of the config, re-serialised by the parent */
};

struct cc_conf_log {
	uint32_t debug_mask;       /* CC_CHAN_* with debug logging on */
	uint8_t verbose;           /* 0 info, 1 debug on stderr */
};

struct cc_ready {
	const char *role;
	uint32_t pid;
};

struct cc_event_msg {
	uint32_t id;               /* catalogue id */
	uint64_t time_us;          /* CLOCK_REALTIME, microseconds */
	const char *role;          /* emitting role */
	const char *correlation_id;
	const char *details_json;  /* a JSON object, "" for none */
};

struct cc_set_debug {
	uint32_t mask;             /* CC_CHAN_* affected */
	uint8_t on;
};

struct cc_key_info_req {
	const char *role;
};

struct cc_key_info {
	const char *role;
	uint8_t key_type;
	uint32_t bits;
	uint32_t mechs;            /* CC_MECH_* the role may use */
	uint32_t flags;            /* CC_ROLE_* (TBS_ONLY tells keyref to send whole TBS) */
	const uint8_t *spki;       /* DER SubjectPublicKeyInfo */
	size_t spki_len;
	const uint8_t *cert;       /* DER certificate, may be empty */
	size_t cert_len;
};

struct cc_sign_req {
	const char *role;
	uint8_t alg;               /* cc_sig_alg */
	uint8_t md;                /* cc_md of the digest */
	uint8_t mgf1_md;           /* PSS only */
	uint32_t saltlen;          /* PSS only, bytes */
	const uint8_t *digest;
	size_t digest_len;
};

enum cc_tbs_kind { CC_TBS_CERT = 1, CC_TBS_CRL = 2 };

struct cc_sign_tbs_req {
	const char *role;
	uint8_t kind;              /* cc_tbs_kind */
	const uint8_t *tbs;        /* DER TBSCertificate or TBSCertList */
	size_t tbs_len;
};

struct cc_sign_resp {
	const uint8_t *sig;
	size_t sig_len;
};

struct cc_decrypt_req {
	const char *role;
	uint8_t pad;               /* cc_dec_pad */
	uint8_t oaep_md;           /* OAEP only */
	uint8_t mgf1_md;           /* OAEP only */
	const uint8_t *label;      /* OAEP label, may be empty */
	size_t label_len;
	const uint8_t *in;
	size_t in_len;
};

struct cc_decrypt_resp {
	const uint8_t *out;
	size_t out_len;
};

struct cc_error {
	uint32_t code;             /* cc_keys_err */
	const char *text;
};

struct cc_keys_list_req {
	uint8_t unused;            /* no fields; kept so every type has a struct */
};

struct cc_keys_list_item {
	const char *role;
	const char *uri;
	uint8_t key_type;
	uint32_t bits;
	uint32_t mechs;            /* allowed by policy */
	const char *sign_path;     /* e.g. "CKM_SHA256_RSA_PKCS (native)", "-" */
	const char *decrypt_path;  /* e.g. "CKM_RSA_X_509 + OAEP in keys (fallback)" */
	const char *state;         /* "ok" or why the key is unusable */
};

struct cc_ctl_status {
	const char *version;
	const char *state;         /* "running", "degraded", "stopping" */
	uint32_t parent_pid;
	uint32_t net_pid;
	uint32_t keys_pid;
	uint32_t net_restarts;
	uint32_t keys_restarts;
	uint64_t uptime_s;
	const char *config_path;
};

struct cc_ctl_line {
	const char *text;
};

int cc_enc_conf_keys(struct cc_wbuf *w, uint64_t reqid, const struct cc_conf_keys *m);
int cc_dec_conf_keys(const struct cc_msg *in, struct cc_conf_keys *m, const char **why);
int cc_enc_conf_role(struct cc_wbuf *w, uint64_t reqid, const struct cc_conf_role *m);
int cc_dec_conf_role(const struct cc_msg *in, struct cc_conf_role *m, const char **why);
int cc_enc_conf_pin(struct cc_wbuf *w, uint64_t reqid, const struct cc_conf_pin *m);
int cc_dec_conf_pin(const struct cc_msg *in, struct cc_conf_pin *m, const char **why);
int cc_enc_conf_net(struct cc_wbuf *w, uint64_t reqid, const struct cc_conf_net *m);
int cc_dec_conf_net(const struct cc_msg *in, struct cc_conf_net *m, const char **why);
int cc_enc_conf_log(struct cc_wbuf *w, uint64_t reqid, const struct cc_conf_log *m);
int cc_dec_conf_log(const struct cc_msg *in, struct cc_conf_log *m, const char **why);
int cc_enc_ready(struct cc_wbuf *w, uint64_t reqid, const struct cc_ready *m);
int cc_dec_ready(const struct cc_msg *in, struct cc_ready *m, const char **why);
int cc_enc_event(struct cc_wbuf *w, uint64_t reqid, const struct cc_event_msg *m);
int cc_dec_event(const struct cc_msg *in, struct cc_event_msg *m, const char **why);
int cc_enc_set_debug(struct cc_wbuf *w, uint16_t type, uint64_t reqid, const struct cc_set_debug *m);
int cc_dec_set_debug(const struct cc_msg *in, struct cc_set_debug *m, const char **why);
int cc_enc_key_info_req(struct cc_wbuf *w, uint64_t reqid, const struct cc_key_info_req *m);
int cc_dec_key_info_req(const struct cc_msg *in, struct cc_key_info_req *m, const char **why);
int cc_enc_key_info(struct cc_wbuf *w, uint64_t reqid, const struct cc_key_info *m);
int cc_dec_key_info(const struct cc_msg *in, struct cc_key_info *m, const char **why);
int cc_enc_sign_req(struct cc_wbuf *w, uint64_t reqid, const struct cc_sign_req *m);
int cc_dec_sign_req(const struct cc_msg *in, struct cc_sign_req *m, const char **why);
int cc_enc_sign_tbs_req(struct cc_wbuf *w, uint64_t reqid, const struct cc_sign_tbs_req *m);
int cc_dec_sign_tbs_req(const struct cc_msg *in, struct cc_sign_tbs_req *m, const char **why);
int cc_enc_sign_resp(struct cc_wbuf *w, uint64_t reqid, const struct cc_sign_resp *m);
int cc_dec_sign_resp(const struct cc_msg *in, struct cc_sign_resp *m, const char **why);
int cc_enc_decrypt_req(struct cc_wbuf *w, uint64_t reqid, const struct cc_decrypt_req *m);
int cc_dec_decrypt_req(const struct cc_msg *in, struct cc_decrypt_req *m, const char **why);
int cc_enc_decrypt_resp(struct cc_wbuf *w, uint64_t reqid, const struct cc_decrypt_resp *m);
int cc_dec_decrypt_resp(const struct cc_msg *in, struct cc_decrypt_resp *m, const char **why);
int cc_enc_error(struct cc_wbuf *w, uint64_t reqid, const struct cc_error *m);
int cc_dec_error(const struct cc_msg *in, struct cc_error *m, const char **why);
int cc_enc_keys_list_item(struct cc_wbuf *w, uint64_t reqid, const struct cc_keys_list_item *m);
int cc_dec_keys_list_item(const struct cc_msg *in, struct cc_keys_list_item *m, const char **why);
int cc_enc_ctl_status(struct cc_wbuf *w, uint64_t reqid, const struct cc_ctl_status *m);
int cc_dec_ctl_status(const struct cc_msg *in, struct cc_ctl_status *m, const char **why);
int cc_enc_ctl_line(struct cc_wbuf *w, uint16_t type, uint64_t reqid, const struct cc_ctl_line *m);
int cc_dec_ctl_line(const struct cc_msg *in, struct cc_ctl_line *m, const char **why);
/* Messages with no payload: CONF_END, SHUTDOWN, KEYS_LIST_REQ, KEYS_LIST_END, CTL_STATUS_REQ,
 * CTL_OK, CTL_DEMO_REQ. */
int cc_enc_empty(struct cc_wbuf *w, uint16_t type, uint64_t reqid);
int cc_dec_empty(const struct cc_msg *in, const char **why);

/* Digest helpers shared by keys and keyref: size in bytes (0 for unknown). */
size_t cc_md_size(uint8_t md);
const char *cc_md_name(uint8_t md); /* OpenSSL name ("SHA256"), NULL for unknown */
uint8_t cc_md_from_name(const char *name); /* CC_MD_NONE when unknown */

#endif
