/*
 * A real keys process for tests. keys_harness_start spawns the keys role (cc_spawn_role)
 * with a parent channel and N peer channels (socketpairs), sends it the configuration
 * (CONF_LOG, CONF_KEYS, the roles' CONF_ROLE, CONF_PIN, CONF_END) and waits for READY.
 * The test then talks to keys as net would on peer_fd[i], and as the parent would through
 * keys_harness_parent_send / keys_harness_parent_recv.
 *
 * A reader thread drains the parent channel all the time (keys forwards every audit event
 * there and must never block on it): CC_MSG_EVENT frames are kept for
 * keys_harness_event_count / keys_harness_event_find, other frames are queued for
 * keys_harness_parent_recv.
 *
 * The executable: $CERTCONND_KEYS if set, else $CERTCONND (certconnd, which runs keys_main
 * for --role keys) if it exists, else $CC_BUILD_DIR/tests/lib/keys_only_main (keys_main
 * alone, for test binaries built without certconnd).
 *
 * Error convention: 0/-1 with a line on stderr.
 */
#ifndef CERTCONN_KEYS_HARNESS_H
#define CERTCONN_KEYS_HARNESS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/evp.h>

#include "certconn/chan.h"
#include "certconn/proto.h"
#include "certconn/util.h"
#include "test_token.h"

struct keys_harness_opts {
	const struct test_token *token; /* module_env and PIN come from it */
	const char *module;             /* NULL: token->module (SoftHSM) */
	const char *module_env;         /* NULL: token->module_env */
	const struct cc_conf_role *roles;
	size_t nroles;
	int channels;                   /* peer channels (net's); 0 means 1 */
	uint32_t op_timeout_ms;         /* 0 means 5000 */
	uint32_t max_input;             /* 0 means 65536 */
	const char *user;               /* --user (e.g. TEST_KEYS_USER when root); NULL: none */
	int no_seccomp;
	int no_landlock;
	int verbose;                    /* CONF_LOG verbose (debug lines on stderr) */
	uint32_t debug_mask;            /* CONF_LOG debug_mask (CC_CHAN_*: audit events) */
	const char *stderr_path;        /* keys' stderr goes to this file; NULL: inherited */
	const uint8_t *pin;             /* NULL: token->pin */
	size_t pin_len;
	int ready_timeout_ms;           /* 0 means 60000 */
};

#define KEYS_HARNESS_MAX_EVENTS 4096

struct keys_harness {
	pid_t pid;                      /* the child we started */
	pid_t keys_pid;                 /* the pid keys reported in READY */
	int parent_fd;                  /* our end of keys' CC_FD_PARENT */
	int peer_fd[CC_MAX_PEER_CHANNELS]; /* our ends of keys' CC_FD_PEER0.. */
	int npeers;
	int exit_status;                /* after keys_harness_wait/stop: exit code, 128+sig */
	int exited;
	char stderr_path[512];
	/* reader thread state */
	pthread_t reader;
	int reader_running;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct cc_frame *queue;         /* non-event frames from keys to the parent */
	size_t nqueue, capqueue;
	int parent_eof;
	char *events[KEYS_HARNESS_MAX_EVENTS]; /* "id role correlation details_json" */
	size_t nevents;
};

/* Starts keys and waits for READY. On -1 keys has exited (k->exit_status says how) or did
 * not become ready in time (then it was killed). */
int keys_harness_start(struct keys_harness *k, const struct keys_harness_opts *o);

/* Sends SHUTDOWN, waits (killing after 10 s), joins the reader and closes every fd.
 * Returns keys' exit status. */
int keys_harness_stop(struct keys_harness *k);

/* Waits up to timeout_ms for keys to exit by itself; its status, or -1 on timeout. */
int keys_harness_wait(struct keys_harness *k, int timeout_ms);

/* Sends a finished frame on the parent channel (and frees w). */
int keys_harness_parent_send(struct keys_harness *k, struct cc_wbuf *w);
/* Next non-event frame keys sent to the parent: 1 with *f, 0 on EOF, -1 on timeout. */
int keys_harness_parent_recv(struct keys_harness *k, struct cc_frame *f, int timeout_ms);

/* Events received so far, and the first whose text contains needle (NULL if none). The
 * returned string stays valid until keys_harness_stop. */
size_t keys_harness_event_count(struct keys_harness *k);
const char *keys_harness_event_find(struct keys_harness *k, const char *needle);
/* As keys_harness_event_find, waiting up to timeout_ms for it: keys sends an operation's
 * audit event to the parent before the reply to net, but the reader thread may not have
 * taken it in yet when the reply arrives. */
const char *keys_harness_event_wait(struct keys_harness *k, const char *needle,
    int timeout_ms);

/*
 * One request on a peer channel: sends w (and frees it), waits for one frame. 1 with *reply
 * filled, 0 on EOF (keys closed the channel, e.g. it exited), -1 on error or timeout.
 */
int keys_harness_rpc(int fd, struct cc_wbuf *w, struct cc_frame *reply, int timeout_ms);

/*
 * Typed requests on a peer channel, as net sends them. Each returns CC_KE_OK (0) with the
 * result (malloc'd, caller frees), a CC_KE_* code from keys' CC_MSG_ERROR with its text in
 * err (errlen bytes; may be NULL), or -1 when the channel failed, keys closed it, or the
 * reply was of the wrong type or did not echo reqid.
 */
int keys_harness_sign(int fd, uint64_t reqid, const char *role, uint8_t alg, uint8_t md,
    uint8_t mgf1_md, uint32_t saltlen, const uint8_t *dg, size_t dg_len, uint8_t **sig,
    size_t *sig_len, char *err, size_t errlen);
int keys_harness_sign_tbs(int fd, uint64_t reqid, const char *role, uint8_t kind,
    const uint8_t *tbs, size_t tbs_len, uint8_t **sig, size_t *sig_len, char *err,
    size_t errlen);
int keys_harness_decrypt(int fd, uint64_t reqid, const char *role, uint8_t pad, uint8_t md,
    uint8_t mgf1_md, const uint8_t *label, size_t label_len, const uint8_t *in, size_t in_len,
    uint8_t **out, size_t *out_len, char *err, size_t errlen);
/* KEY_INFO: the role's public key (caller frees) and, if cert is not NULL, its DER
 * certificate (malloc'd, *cert NULL when there is none); type, bits, mechs, flags if not
 * NULL (uint32_t[4]). */
int keys_harness_key_info(int fd, uint64_t reqid, const char *role, EVP_PKEY **pub,
    uint8_t **cert, size_t *cert_len, uint32_t *info, char *err, size_t errlen);

/* Checks with OpenSSL a signature keys made over a digest (alg, md, mgf1, saltlen as in
 * SIGN_REQ; ECDSA signatures are DER). 1 valid, 0 not. */
int keys_harness_verify(EVP_PKEY *pub, uint8_t alg, uint8_t md, uint8_t mgf1_md,
    uint32_t saltlen, const uint8_t *dg, size_t dg_len, const uint8_t *sig, size_t sig_len);
/* Encrypts with OpenSSL for keys to decrypt (pad, md, mgf1, label as in DECRYPT_REQ);
 * out holds *out_len bytes on entry, the ciphertext length on return. 0/-1. */
int keys_harness_encrypt(EVP_PKEY *pub, uint8_t pad, uint8_t md, uint8_t mgf1_md,
    const uint8_t *label, size_t label_len, const uint8_t *msg, size_t msg_len, uint8_t *out,
    size_t *out_len);

/* The fault-injecting module ($CC_BUILD_DIR/tests/lib/libfaulty_pkcs11.so). */
const char *keys_harness_faulty_module(void);

/* Whether a file's content contains needle (for keys' stderr log lines). */
int keys_harness_file_contains(const char *path, const char *needle);

/*
 * A CONF_ROLE for a role of a test token, with everything allowed that suits the role's key
 * (RSA: PKCS#1, PSS, and for decrypting roles OAEP/PKCS#1 decryption; EC: ECDSA), the given
 * flags, and for "ca" and "ca-*" (as policy/keyroles.json): SIGN_TBS alone, TBS_ONLY, the token's CA certificate (of the "ca"
 * role), 825 days, max_crl_days 30.
 * Strings point into t (keep t alive).
 */
struct cc_conf_role keys_harness_role(const struct test_token *t, const char *role,
    uint32_t flags);

#endif
