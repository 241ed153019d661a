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
 * The executable: $CERTCONND_KEYS if set, else $CC_BUILD_DIR/tests/lib/keys_only_main
 * (keys_main alone) if it exists, else $CERTCONND.
 *
 * Error convention: 0/-1 with a line on stderr.
 */
#ifndef CERTCONN_KEYS_HARNESS_H
#define CERTCONN_KEYS_HARNESS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

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
	const char *stderr_path;        /* keys' stderr goes to this file; NULL: inherited */
	const uint8_t *pin;             /* NULL: token->pin */
	size_t pin_len;
	int ready_timeout_ms;           /* 0 means 60000 */
};

#define KEYS_HARNESS_MAX_EVENTS 4096

struct keys_harness {
	pid_t pid;
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

/*
 * One request on a peer channel: sends w (and frees it), waits for one frame. 1 with *reply
 * filled, 0 on EOF (keys closed the channel, e.g. it exited), -1 on error or timeout.
 */
int keys_harness_rpc(int fd, struct cc_wbuf *w, struct cc_frame *reply, int timeout_ms);

/* The fault-injecting module ($CC_BUILD_DIR/tests/lib/libfaulty_pkcs11.so). */
const char *keys_harness_faulty_module(void);

/* Whether a file's content contains needle (for keys' stderr log lines). */
int keys_harness_file_contains(const char *path, const char *needle);

/*
 * A CONF_ROLE for a role of a test token, with everything allowed that suits the role's key
 * (RSA: PKCS#1, PSS, and for decrypting roles OAEP/PKCS#1 decryption; EC: ECDSA), the given
 * flags, and for "ca": SIGN_TBS, TBS_ONLY, the CA certificate, 825 days, max_crl_days 30.
 * Strings point into t (keep t alive).
 */
struct cc_conf_role keys_harness_role(const struct test_token *t, const char *role,
    uint32_t flags);

#endif
