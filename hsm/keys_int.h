/*
 * Internals of the keys role, shared by hsm/keys*.c. Not for other modules (keys.h is the
 * role's interface, hsm.h the in-process API).
 *
 * Threads: the main thread serves the parent channel; one worker per net channel, each with
 * its own PKCS#11 session; a watchdog answers for workers stuck in the module. The token
 * state (module, slot, object handles) is shared under tok.rw: a read lock for every module
 * call, the write lock to re-initialise after a device fault; tok.gen counts
 * re-initialisations so a worker knows its session handle is stale.
 *
 * Error convention of this layer: functions that answer a request return enum cc_keys_err
 * (CC_KE_OK on success) with the reply text in a caller's buffer; the rest 0/-1.
 */
#ifndef CERTCONN_KEYS_INT_H
#define CERTCONN_KEYS_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "certconn/proto.h"
#include "certconn/util.h"
#include "p11.h"
#include "p11_uri.h"

#define KEYS_MAX_ROLES 32
/* The mechanisms that sign a digest. */
#define KEYS_SIGN_BITS (CC_MECH_SIGN_RSA_PKCS1 | CC_MECH_SIGN_RSA_PSS | CC_MECH_SIGN_ECDSA)
#define KEYS_TEXT_MAX 512

/* How one mechanism / parameter set is done for a role. */
enum keys_native {
	KN_UNKNOWN = 0,  /* not probed: try the token's mechanism */
	KN_YES = 1,      /* the token did it */
	KN_NO = 2        /* the token lacks it or refused the parameters */
};

enum keys_path { KP_NATIVE = 1, KP_FALLBACK = 2, KP_NONE = 3 };

struct keys_role {
	/* configuration (owned copies) */
	char *name;
	char *uri;
	char *ekus;
	uint32_t mechs;
	uint32_t flags;
	uint32_t max_validity_days;
	uint32_t key_usage;
	uint32_t max_crl_days;
	uint8_t *conf_cert;
	size_t conf_cert_len;
	struct p11_uri puri;

	/* the key; written at start and under tok.rw's write lock */
	int present;
	char state[KEYS_TEXT_MAX];   /* "ok" or why the key is unusable */
	CK_OBJECT_HANDLE priv;
	uint8_t key_type;            /* CC_KEY_RSA / CC_KEY_EC */
	uint32_t bits;
	size_t raw_len;              /* RSA: modulus bytes; EC: 2 x order bytes (r||s) */
	EVP_PKEY *pub;
	uint8_t *spki;
	size_t spki_len;
	uint8_t *cert;               /* the configured certificate, else the token's */
	size_t cert_len;
	X509 *cert_x509;

	/* what the token offers for this key (C_GetMechanismInfo, size and flags checked) */
	int tok_pkcs1_sign, tok_pkcs1_dec, tok_pss, tok_oaep, tok_x509_sign, tok_x509_dec,
	    tok_ecdsa;
	/* per parameter set: [md][mgf1_md] (and [label?] for OAEP) */
	_Atomic int pss_native[CC_MD_MAX + 1][CC_MD_MAX + 1];
	_Atomic int oaep_native[CC_MD_MAX + 1][CC_MD_MAX + 1][2];
};

struct keys_token {
	struct p11_mod mod;
	char module[4096];
	CK_SLOT_ID slot;
	CK_SESSION_HANDLE anchor;    /* opened at start: holds the login, used for searches */
	int have_anchor;
	char label[33];
	pthread_rwlock_t rw;
	_Atomic uint64_t gen;
	_Atomic int down;            /* the last re-initialisation failed */
	uint64_t last_reinit_ms;
	char down_why[KEYS_TEXT_MAX];
	uint8_t *pin;                /* mlock'ed page; wiped at exit */
	size_t pin_len;
	size_t pin_map_len;
};

struct keys_worker {
	int idx;
	int fd;
	pthread_t th;
	int started;
	CK_SESSION_HANDLE s;
	uint64_t s_gen;
	int have_s;
	/* the watchdog's view, under lock; the lock also serialises sends on fd */
	pthread_mutex_t lock;
	int busy;
	int owes_reply;              /* a reply is due for reqid (cleared once sent) */
	int timed_out;               /* the watchdog answered: drop the late reply */
	uint64_t started_ms;
	uint64_t reqid;
	char what[64];
};

struct keys {
	struct cc_conf_keys conf;    /* strings point into owned copies below */
	char *module_env;
	struct keys_role roles[KEYS_MAX_ROLES];
	size_t nroles;
	struct keys_token tok;
	struct keys_worker workers[CC_MAX_PEER_CHANNELS];
	int nworkers;
	pthread_mutex_t parent_lock; /* serialises sends on CC_FD_PARENT */
	pthread_t watchdog;
	int watchdog_started;
	_Atomic int stopping;
};

extern struct keys *keys_g;

/* ---- keys_token.c ---- */

/* Loads the module, initialises it, finds the token and every role's key, logs in. The
 * reasons for a fatal failure are logged; -1 then. */
int keys_token_start(struct keys *k);
/* Mechanism checks and start-up probes for every present role. */
void keys_token_probe(struct keys *k);
/* Closes sessions, logs out, finalises; wipes the PIN. */
void keys_token_stop(struct keys *k);

/* The PIN, kept in an mlock'ed page for logging in again; wiped by keys_pin_wipe. */
int keys_pin_set(struct keys *k, const uint8_t *pin, size_t len);
void keys_pin_wipe(struct keys *k);
/* PKCS#11 digest mechanism and MGF1 constant of a cc_md. */
CK_MECHANISM_TYPE keys_md_mech(uint8_t md);
CK_RSA_PKCS_MGF_TYPE keys_md_mgf(uint8_t md);

/* What a worker does after a failed module call (after the reply was sent). */
enum keys_recover { KR_NONE = 0, KR_SESSION, KR_REINIT, KR_RELOGIN };
enum keys_recover keys_token_classify(CK_RV rv);
void keys_token_recover(struct keys *k, struct keys_worker *w, enum keys_recover what,
    uint64_t gen_seen);

/*
 * One sign or decrypt call with the role's private key in the worker's session (opened on
 * demand), under the read lock. out must hold out_cap bytes; *out_len is set. *gen_seen
 * receives the token generation the call ran in.
 */
CK_RV keys_token_call(struct keys *k, struct keys_worker *w, struct keys_role *r,
    int decrypt, CK_MECHANISM *mech, const uint8_t *in, size_t in_len, uint8_t *out,
    size_t out_cap, size_t *out_len, uint64_t *gen_seen);

/*
 * Whether the token does OAEP (md, MGF1 mgf1, with or without a label) or PSS (md, mgf1)
 * natively, found by one real operation checked with OpenSSL: *result KN_YES or KN_NO,
 * or KN_UNKNOWN with a token fault in the returned CK_RV.
 */
CK_RV keys_token_probe_oaep(struct keys *k, struct keys_worker *w, struct keys_role *r,
    uint8_t md, uint8_t mgf1, int label, int *result, uint64_t *gen_seen);
CK_RV keys_token_probe_pss(struct keys *k, struct keys_worker *w, struct keys_role *r,
    uint8_t md, uint8_t mgf1, int *result, uint64_t *gen_seen);

/* ---- keys_ops.c ---- */

struct keys_role *keys_role_find(struct keys *k, const char *name);
/* Handles one request frame from net (or KEY_INFO_REQ from the parent, w NULL), filling
 * the reply frame. Returns what to recover after the reply is sent. */
enum keys_recover keys_ops_handle(struct keys *k, struct keys_worker *w,
    const struct cc_msg *m, struct cc_wbuf *reply, uint64_t *gen_seen);
/* Encodes the KEY_INFO or ERROR reply for a role. */
int keys_ops_key_info(struct keys *k, const char *role, uint64_t reqid, struct cc_wbuf *w);
/* KEYS_LIST item texts for a role. */
void keys_ops_paths(struct keys_role *r, char *sign, size_t slen, char *dec, size_t dlen);
/* The effective path of a parameterised mechanism (PSS, OAEP) for a role. */
enum keys_path keys_ops_pss_path(struct keys_role *r, uint8_t md, uint8_t mgf1);
enum keys_path keys_ops_oaep_path(struct keys_role *r, uint8_t md, uint8_t mgf1, int label);

/* ---- keys_casign.c ---- */

struct keys_casign_policy {
	X509 *ca;                    /* the CA's own certificate */
	EVP_PKEY *ca_key;            /* the role's public key */
	uint32_t mechs;              /* CC_MECH_* of the role; with no KEYS_SIGN_BITS any
	                              * scheme that fits the key is allowed */
	uint32_t flags;              /* CC_ROLE_* of the role */
	uint32_t max_validity_days;  /* 0: no limit */
	uint32_t key_usage;          /* allowed keyUsage bits, 0 = any */
	const char *ekus;            /* allowed EKU OIDs, comma separated, "" = any */
	uint32_t max_crl_days;       /* 0: no limit */
};

struct keys_casign_sig {
	uint8_t alg;                 /* cc_sig_alg */
	uint8_t md;                  /* cc_md the TBS is hashed with */
	uint8_t mgf1_md;             /* PSS */
	uint32_t saltlen;            /* PSS, bytes */
};

/*
 * Parses a DER TBSCertificate (kind CC_TBS_CERT) or TBSCertList (CC_TBS_CRL) and applies
 * the policy at time now. CC_KE_OK with the signature to make in *sig; CC_KE_BADINPUT when
 * the bytes are not a DER TBS; CC_KE_REFUSED when the policy refuses it; why says exactly
 * what.
 */
int keys_casign_check(const struct keys_casign_policy *p, uint8_t kind, const uint8_t *tbs,
    size_t tbs_len, time_t now, struct keys_casign_sig *sig, char *why, size_t whylen);

/* ---- keys_events.c ---- */

/* Installs the event forwarder that sends events to the parent on fd under k->parent_lock. */
void keys_events_install(struct keys *k);
/* Sends a frame to the parent under the lock; 0/-1. */
int keys_parent_send(struct keys *k, const struct cc_wbuf *w);
/* Audit line of a private-key operation, at debug level (stderr and debug event). */
void keys_audit(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- keys_sandbox.c ---- */

/* Landlock (module, system libraries, SoftHSM conf read-only; token directory read-write)
 * and the seccomp list. 0/-1. */
int keys_sandbox_apply(struct keys *k, int landlock, int seccomp);

#endif
