/*
 * keyref client: request/reply over a pool of channels to keys (see keyref.h).
 *
 * One request at a time per channel, so keys answers each channel in order. A request that
 * times out leaves its reply in flight: the channel is marked stale and the next request on
 * it skips replies whose reqid is older than its own. A frame is only read once poll says
 * bytes are there, so a timeout never cuts a frame in half; a channel whose stream is no
 * longer in step (peer gone, frame cut, malformed reply) is marked broken and never used
 * again until keyref_client_replace_fds.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>

#include <openssl/err.h>

#include "certconn/chan.h"
#include "certconn/log.h"
#include "certconn/util.h"
#include "keyref_int.h"

#define KR_DEFAULT_TIMEOUT_MS 10000
/* Time allowed for the rest of a frame once its first bytes have arrived. */
#define KR_FRAME_GRACE_MS 2000

struct kr_chan {
	int fd;
	int busy;
	int broken;   /* out of step or peer gone: not used again */
	int stale;    /* a request on it timed out: an older reply may still come */
	int retired;  /* replaced while busy: the user closes and frees it */
};

struct keyref_client {
	pthread_mutex_t mu;
	pthread_cond_t cv;            /* a channel was released or the set changed */
	struct kr_chan *ch[CC_MAX_PEER_CHANNELS];
	int nch;
	int timeout_ms;
	uint64_t next_reqid;
	keyref_fatal_fn fatal;
	void *fatal_arg;
};

/* ---- errors ---- */

static int kr_lib = 0;
static pthread_once_t kr_lib_once = PTHREAD_ONCE_INIT;

static const struct {
	int reason;
	const char *text;
} kr_reason_text[] = {
	{ CC_KE_DENIED, "not allowed by the key role's policy" },
	{ CC_KE_NOKEY, "no such key role, or its key is missing" },
	{ CC_KE_TOKEN, "token fault" },
	{ CC_KE_TIMEOUT, "keys did not answer in time" },
	{ CC_KE_BADINPUT, "malformed or inconsistent request" },
	{ CC_KE_REFUSED, "refused by the CA signing policy" },
	{ CC_KE_INTERNAL, "internal error" },
	{ CC_KE_UNAVAILABLE, "the keys process is not reachable" },
	{ KEYREF_R_NO_PRIVATE, "public key only" },
	{ KEYREF_R_UNSUPPORTED, "not supported by keyref" },
	{ KEYREF_R_BAD_PARAM, "bad parameter" },
	{ KEYREF_R_TOO_LARGE, "input too large" },
	{ KEYREF_R_PROTOCOL, "malformed reply from keys" },
	{ KEYREF_R_BUFFER, "output buffer too small" },
	{ KEYREF_R_TBS_ONLY, "role signs only certificates and CRLs" },
	{ KEYREF_R_NOT_TBS, "not a to-be-signed certificate or CRL" },
};

/* Library name, the reasons, and the terminator; OpenSSL keeps pointers into it. */
static ERR_STRING_DATA kr_strings[2 + sizeof(kr_reason_text) / sizeof(kr_reason_text[0])];

static void
kr_lib_init(void)
{
	size_t i;

	kr_lib = ERR_get_next_error_library();
	kr_strings[0].error = ERR_PACK(kr_lib, 0, 0);
	kr_strings[0].string = "keyref";
	for (i = 0; i < sizeof(kr_reason_text) / sizeof(kr_reason_text[0]); i++) {
		kr_strings[i + 1].error = ERR_PACK(kr_lib, 0, kr_reason_text[i].reason);
		kr_strings[i + 1].string = kr_reason_text[i].text;
	}
	(void)ERR_load_strings_const(kr_strings);
}

int
keyref_err_lib(void)
{
	(void)pthread_once(&kr_lib_once, kr_lib_init);
	return kr_lib;
}

/* ---- channels ---- */

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
default_fatal(void *arg, const char *key_role, uint16_t type, const char *why)
{
	(void)arg;
	cc_fatal("malformed %s reply from keys (key role %s): %s", cc_msg_type_name(type),
	    key_role != NULL ? key_role : "-", why);
}

static int
add_channels(struct keyref_client *cl, const int *fds, int nfds)
{
	struct kr_chan *ch[CC_MAX_PEER_CHANNELS];
	int i;

	if (nfds < 1 || nfds > CC_MAX_PEER_CHANNELS) {
		errno = EINVAL;
		return -1;
	}
	for (i = 0; i < nfds; i++) {
		ch[i] = calloc(1, sizeof(*ch[i]));
		if (ch[i] == NULL) {
			while (i-- > 0)
				free(ch[i]);
			return -1;
		}
		ch[i]->fd = fds[i];
	}
	memcpy(cl->ch, ch, sizeof(ch[0]) * (size_t)nfds);
	cl->nch = nfds;
	return 0;
}

struct keyref_client *
keyref_client_new(const int *fds, int nfds, int timeout_ms)
{
	struct keyref_client *cl;
	pthread_condattr_t ca;

	cl = calloc(1, sizeof(*cl));
	if (cl == NULL)
		return NULL;
	pthread_mutex_init(&cl->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&cl->cv, &ca);
	pthread_condattr_destroy(&ca);
	cl->timeout_ms = timeout_ms > 0 ? timeout_ms : KR_DEFAULT_TIMEOUT_MS;
	cl->next_reqid = 1;
	cl->fatal = default_fatal;
	if (add_channels(cl, fds, nfds) == -1) {
		pthread_cond_destroy(&cl->cv);
		pthread_mutex_destroy(&cl->mu);
		free(cl);
		return NULL;
	}
	(void)keyref_err_lib();
	return cl;
}

void
keyref_client_free(struct keyref_client *cl)
{
	if (cl == NULL)
		return;
	for (int i = 0; i < cl->nch; i++) {
		close(cl->ch[i]->fd);
		free(cl->ch[i]);
	}
	pthread_cond_destroy(&cl->cv);
	pthread_mutex_destroy(&cl->mu);
	free(cl);
}

int
keyref_client_replace_fds(struct keyref_client *cl, const int *fds, int nfds)
{
	struct kr_chan *old[CC_MAX_PEER_CHANNELS];
	int nold, rc;

	pthread_mutex_lock(&cl->mu);
	nold = cl->nch;
	memcpy(old, cl->ch, sizeof(old[0]) * (size_t)nold);
	rc = add_channels(cl, fds, nfds);
	if (rc == 0) {
		for (int i = 0; i < nold; i++) {
			if (old[i]->busy) {
				old[i]->retired = 1;
				/* Wake the user out of poll: its request fails as keys went away. */
				(void)shutdown(old[i]->fd, SHUT_RDWR);
			} else {
				close(old[i]->fd);
				free(old[i]);
			}
		}
		pthread_cond_broadcast(&cl->cv);
	}
	pthread_mutex_unlock(&cl->mu);
	return rc;
}

void
keyref_client_set_fatal(struct keyref_client *cl, keyref_fatal_fn fn, void *arg)
{
	pthread_mutex_lock(&cl->mu);
	cl->fatal = fn != NULL ? fn : default_fatal;
	cl->fatal_arg = fn != NULL ? arg : NULL;
	pthread_mutex_unlock(&cl->mu);
}

void
keyref_client_set_timeout(struct keyref_client *cl, int timeout_ms)
{
	pthread_mutex_lock(&cl->mu);
	cl->timeout_ms = timeout_ms > 0 ? timeout_ms : KR_DEFAULT_TIMEOUT_MS;
	pthread_mutex_unlock(&cl->mu);
}

/*
 * Takes a free channel and a fresh reqid, waiting until deadline. NULL with *code set when
 * none can be had (all broken: CC_KE_UNAVAILABLE; none free in time: CC_KE_TIMEOUT).
 */
static struct kr_chan *
chan_take(struct keyref_client *cl, int64_t deadline, uint64_t *reqid, uint32_t *code)
{
	struct kr_chan *got = NULL;
	struct timespec ts;

	pthread_mutex_lock(&cl->mu);
	for (;;) {
		int usable = 0;

		for (int i = 0; i < cl->nch; i++) {
			if (cl->ch[i]->broken)
				continue;
			usable++;
			if (!cl->ch[i]->busy) {
				got = cl->ch[i];
				break;
			}
		}
		if (got != NULL || usable == 0)
			break;
		ts.tv_sec = deadline / 1000;
		ts.tv_nsec = (deadline % 1000) * 1000000;
		if (pthread_cond_timedwait(&cl->cv, &cl->mu, &ts) == ETIMEDOUT) {
			*code = CC_KE_TIMEOUT;
			goto out;
		}
	}
	if (got == NULL) {
		*code = CC_KE_UNAVAILABLE;
		goto out;
	}
	got->busy = 1;
	*reqid = cl->next_reqid++;
out:
	pthread_mutex_unlock(&cl->mu);
	return got;
}

static void
chan_release(struct keyref_client *cl, struct kr_chan *ch)
{
	pthread_mutex_lock(&cl->mu);
	ch->busy = 0;
	if (ch->retired) {
		close(ch->fd);
		free(ch);
	}
	pthread_cond_broadcast(&cl->cv);
	pthread_mutex_unlock(&cl->mu);
}

/* The user of a busy channel sets its flags under the lock, as chan_take reads them. */
static void
chan_mark(struct keyref_client *cl, struct kr_chan *ch, int broken, int stale)
{
	pthread_mutex_lock(&cl->mu);
	if (broken)
		ch->broken = 1;
	ch->stale = stale;
	pthread_mutex_unlock(&cl->mu);
}

static void
call_fatal(struct keyref_client *cl, const char *role, uint16_t type, const char *why)
{
	keyref_fatal_fn fn;
	void *arg;

	pthread_mutex_lock(&cl->mu);
	fn = cl->fatal;
	arg = cl->fatal_arg;
	pthread_mutex_unlock(&cl->mu);
	fn(arg, role, type, why);
	/* Only a test's hook comes back here. */
	kr_raise(KEYREF_R_PROTOCOL, "malformed %s reply from keys (key role %s): %s",
	    cc_msg_type_name(type), role, why);
}

/*
 * Sends the finished frame w (with reqid) and waits for the reply of type want (or ERROR).
 * On CC_KE_OK *reply holds a frame of type want; the caller decodes it with the typed
 * decoder and calls bad_reply if that fails. On failure the error is on the queue.
 */
static uint32_t
transact(struct keyref_client *cl, const char *role, uint16_t reqtype, uint16_t want,
    const void *req, struct cc_frame *reply)
{
	struct cc_wbuf w;
	struct kr_chan *ch;
	uint64_t reqid = 0;
	int64_t deadline;
	uint32_t code = CC_KE_INTERNAL;
	int timeout_ms, enc;

	memset(&w, 0, sizeof(w));
	memset(reply, 0, sizeof(*reply));
	pthread_mutex_lock(&cl->mu);
	timeout_ms = cl->timeout_ms;
	pthread_mutex_unlock(&cl->mu);
	deadline = now_ms() + timeout_ms;

	ch = chan_take(cl, deadline, &reqid, &code);
	if (ch == NULL) {
		if (code == CC_KE_TIMEOUT)
			kr_raise((int)code, "no channel to keys became free within %d ms", timeout_ms);
		else
			kr_raise((int)code, "every channel to keys is closed");
		return code;
	}
	switch (reqtype) {
	case CC_MSG_KEY_INFO_REQ: enc = cc_enc_key_info_req(&w, reqid, req); break;
	case CC_MSG_SIGN_REQ: enc = cc_enc_sign_req(&w, reqid, req); break;
	case CC_MSG_SIGN_TBS_REQ: enc = cc_enc_sign_tbs_req(&w, reqid, req); break;
	case CC_MSG_DECRYPT_REQ: enc = cc_enc_decrypt_req(&w, reqid, req); break;
	default: enc = -1; break;
	}
	if (enc == -1) {
		kr_raise(KEYREF_R_TOO_LARGE, "cannot encode %s (over %u bytes?)",
		    cc_msg_type_name(reqtype), CC_MSG_MAX);
		code = CC_KE_BADINPUT;
		goto out;
	}
	if (cc_chan_send(ch->fd, &w) == -1) {
		chan_mark(cl, ch, 1, 0);
		code = CC_KE_UNAVAILABLE;
		kr_raise((int)code, "sending %s to keys: %s", cc_msg_type_name(reqtype),
		    strerror(errno));
		goto out;
	}
	for (;;) {
		struct pollfd pfd = { .fd = ch->fd, .events = POLLIN };
		const char *why = NULL;
		int64_t left = deadline - now_ms();
		int r;

		if (left <= 0) {
			chan_mark(cl, ch, 0, 1);
			code = CC_KE_TIMEOUT;
			kr_raise((int)code, "no reply from keys to %s within %d ms (key role %s)",
			    cc_msg_type_name(reqtype), timeout_ms, role);
			goto out;
		}
		r = poll(&pfd, 1, (int)left);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			chan_mark(cl, ch, 1, 0);
			code = CC_KE_UNAVAILABLE;
			kr_raise((int)code, "waiting for keys: %s", strerror(errno));
			goto out;
		}
		if (r == 0)
			continue;
		r = cc_chan_recv(ch->fd, (int)(left > KR_FRAME_GRACE_MS ? left : KR_FRAME_GRACE_MS),
		    reply, &why);
		if (r == 0) {
			chan_mark(cl, ch, 1, 0);
			code = CC_KE_UNAVAILABLE;
			kr_raise((int)code, "keys closed the channel during %s (key role %s)",
			    cc_msg_type_name(reqtype), role);
			goto out;
		}
		if (r == -1) {
			int e = errno;

			chan_mark(cl, ch, 1, 0);
			if (e == EPROTO && why != NULL) {
				call_fatal(cl, role, 0, why);
				code = CC_KE_INTERNAL;
			} else {
				code = e == ETIMEDOUT ? CC_KE_TIMEOUT : CC_KE_UNAVAILABLE;
				kr_raise((int)code, "reading the reply to %s from keys: %s",
				    cc_msg_type_name(reqtype), strerror(e));
			}
			goto out;
		}
		if (reply->msg.reqid < reqid && ch->stale) {
			cc_log_debug("keyref: dropping a late %s reply (request %llu)",
			    cc_msg_type_name(reply->msg.type),
			    (unsigned long long)reply->msg.reqid);
			cc_frame_free(reply);
			continue;
		}
		if (reply->msg.reqid != reqid) {
			chan_mark(cl, ch, 1, 0);
			call_fatal(cl, role, reply->msg.type, "reply to a request that was not sent");
			code = CC_KE_INTERNAL;
			goto out;
		}
		chan_mark(cl, ch, 0, 0);
		if (reply->msg.type == CC_MSG_ERROR) {
			struct cc_error e;

			if (cc_dec_error(&reply->msg, &e, &why) == -1) {
				call_fatal(cl, role, reply->msg.type, why);
				code = CC_KE_INTERNAL;
				goto out;
			}
			code = e.code;
			kr_raise((int)code, "keys: %s (key role %s): %s", cc_keys_strerror(code), role,
			    e.text);
			goto out;
		}
		if (reply->msg.type != want) {
			call_fatal(cl, role, reply->msg.type, "unexpected message type");
			code = CC_KE_INTERNAL;
			goto out;
		}
		code = CC_KE_OK;
		break;
	}
out:
	cc_wbuf_free(&w);
	if (code != CC_KE_OK)
		cc_frame_free(reply);
	chan_release(cl, ch);
	return code;
}

/*
 * A reply of the right type whose payload does not decode: fatal as well. The channel is
 * still in step (the frame was whole), so it stays usable if the hook returns.
 */
static uint32_t
bad_reply(struct keyref_client *cl, const char *role, struct cc_frame *f, const char *why)
{
	call_fatal(cl, role, f->msg.type, why);
	cc_frame_free(f);
	return CC_KE_INTERNAL;
}

static int
copy_out(const uint8_t *src, size_t n, uint8_t *dst, size_t cap, size_t *outlen,
    const char *what)
{
	if (n > cap) {
		kr_raise(CC_KE_INTERNAL, "keys returned a %zu-byte %s, more than the %zu expected",
		    n, what, cap);
		return -1;
	}
	memcpy(dst, src, n);
	*outlen = n;
	return 0;
}

/* ---- requests ---- */

void
keyref_key_info_free(struct keyref_key_info *ki)
{
	if (ki == NULL)
		return;
	free(ki->role);
	free(ki->spki);
	free(ki->cert);
	memset(ki, 0, sizeof(*ki));
}

uint32_t
keyref_client_key_info(struct keyref_client *cl, const char *role, struct keyref_key_info *ki)
{
	struct cc_key_info_req req = { .role = role };
	struct cc_key_info m;
	struct cc_frame f;
	const char *why = NULL;
	uint32_t code;

	memset(ki, 0, sizeof(*ki));
	code = transact(cl, role, CC_MSG_KEY_INFO_REQ, CC_MSG_KEY_INFO, &req, &f);
	if (code != CC_KE_OK)
		return code;
	if (cc_dec_key_info(&f.msg, &m, &why) == -1)
		return bad_reply(cl, role, &f, why);
	if (strcmp(m.role, role) != 0)
		return bad_reply(cl, role, &f, "KEY_INFO for another role");
	ki->role = strdup(m.role);
	ki->key_type = m.key_type;
	ki->bits = m.bits;
	ki->mechs = m.mechs;
	ki->flags = m.flags;
	ki->spki = malloc(m.spki_len);
	ki->spki_len = m.spki_len;
	if (m.cert_len > 0) {
		ki->cert = malloc(m.cert_len);
		ki->cert_len = m.cert_len;
	}
	if (ki->role == NULL || ki->spki == NULL || (m.cert_len > 0 && ki->cert == NULL)) {
		keyref_key_info_free(ki);
		cc_frame_free(&f);
		kr_raise(CC_KE_INTERNAL, "out of memory");
		return CC_KE_INTERNAL;
	}
	memcpy(ki->spki, m.spki, m.spki_len);
	if (m.cert_len > 0)
		memcpy(ki->cert, m.cert, m.cert_len);
	cc_frame_free(&f);
	return CC_KE_OK;
}

static uint32_t
sign_common(struct keyref_client *cl, const char *role, uint16_t type, const void *req,
    uint8_t *sig, size_t cap, size_t *siglen)
{
	struct cc_sign_resp m;
	struct cc_frame f;
	const char *why = NULL;
	uint32_t code;

	code = transact(cl, role, type, CC_MSG_SIGN_RESP, req, &f);
	if (code != CC_KE_OK)
		return code;
	if (cc_dec_sign_resp(&f.msg, &m, &why) == -1)
		return bad_reply(cl, role, &f, why);
	if (copy_out(m.sig, m.sig_len, sig, cap, siglen, "signature") == -1)
		code = CC_KE_INTERNAL;
	cc_frame_free(&f);
	return code;
}

uint32_t
keyref_client_sign(struct keyref_client *cl, const struct cc_sign_req *req, uint8_t *sig,
    size_t cap, size_t *siglen)
{
	return sign_common(cl, req->role, CC_MSG_SIGN_REQ, req, sig, cap, siglen);
}

uint32_t
keyref_client_sign_tbs(struct keyref_client *cl, const struct cc_sign_tbs_req *req,
    uint8_t *sig, size_t cap, size_t *siglen)
{
	return sign_common(cl, req->role, CC_MSG_SIGN_TBS_REQ, req, sig, cap, siglen);
}

uint32_t
keyref_client_decrypt(struct keyref_client *cl, const struct cc_decrypt_req *req, uint8_t *out,
    size_t cap, size_t *outlen)
{
	struct cc_decrypt_resp m;
	struct cc_frame f;
	const char *why = NULL;
	uint32_t code;

	code = transact(cl, req->role, CC_MSG_DECRYPT_REQ, CC_MSG_DECRYPT_RESP, req, &f);
	if (code != CC_KE_OK)
		return code;
	if (cc_dec_decrypt_resp(&f.msg, &m, &why) == -1)
		return bad_reply(cl, req->role, &f, why);
	if (copy_out(m.out, m.out_len, out, cap, outlen, "plaintext") == -1)
		code = CC_KE_INTERNAL;
	cc_frame_free(&f);
	return code;
}
