/* A real keys process for tests: see keys_harness.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "keys_pad.h"

#include "certconn/util.h"
#include "keys_harness.h"

static void
hlog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
hlog(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "keys_harness: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
}

static const char *
keys_exe(void)
{
	static char path[PATH_MAX];
	const char *e = getenv("CERTCONND_KEYS");
	const char *d = getenv("CERTCONND");
	const char *b = getenv("CC_BUILD_DIR");

	if (e != NULL && e[0] != '\0')
		return e;
	if (d != NULL && d[0] != '\0' && access(d, X_OK) == 0)
		return d;
	if (b != NULL) {
		snprintf(path, sizeof(path), "%s/tests/lib/keys_only_main", b);
		if (access(path, X_OK) == 0)
			return path;
	}
	/* Run by hand from the build tree (build/bench/keys_bench): certconnd is one level up. */
	if (d == NULL) {
		const char *self = cc_self_exe();
		const char *slash = self != NULL ? strrchr(self, '/') : NULL;

		if (slash != NULL && snprintf(path, sizeof(path), "%.*s/../certconnd",
		    (int)(slash - self), self) < (int)sizeof(path) && access(path, X_OK) == 0)
			return path;
	}
	return d;
}

const char *
keys_harness_faulty_module(void)
{
	static char path[PATH_MAX];
	const char *b = getenv("CC_BUILD_DIR");

	snprintf(path, sizeof(path), "%s/tests/lib/libfaulty_pkcs11.so", b ? b : ".");
	return path;
}

static int
status_of(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return -1;
}

int
keys_harness_wait(struct keys_harness *k, int timeout_ms)
{
	uint64_t end = cc_now_ms() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms);
	int st;

	if (k->exited)
		return k->exit_status;
	for (;;) {
		pid_t r = waitpid(k->pid, &st, WNOHANG);

		if (r == k->pid) {
			k->exited = 1;
			k->exit_status = status_of(st);
			return k->exit_status;
		}
		if (r == -1 && errno != EINTR) {
			hlog("waitpid: %s", strerror(errno));
			return -1;
		}
		if (cc_now_ms() >= end)
			return -1;
		usleep(10000);
	}
}

static void *
reader_main(void *arg)
{
	struct keys_harness *k = arg;

	for (;;) {
		struct cc_frame f;
		const char *why;
		int r = cc_chan_recv(k->parent_fd, -1, &f, &why);

		if (r <= 0) {
			if (r < 0 && errno != ECONNRESET && errno != EBADF)
				hlog("parent channel: %s", why ? why : strerror(errno));
			pthread_mutex_lock(&k->lock);
			k->parent_eof = 1;
			pthread_cond_broadcast(&k->cond);
			pthread_mutex_unlock(&k->lock);
			return NULL;
		}
		pthread_mutex_lock(&k->lock);
		if (f.msg.type == CC_MSG_EVENT) {
			struct cc_event_msg ev;

			if (cc_dec_event(&f.msg, &ev, &why) == -1) {
				hlog("keys sent a bad EVENT: %s", why);
			} else if (k->nevents < KEYS_HARNESS_MAX_EVENTS) {
				char *s = NULL;

				if (asprintf(&s, "%u %s %s %s", ev.id, ev.role, ev.correlation_id,
				    ev.details_json) != -1)
					k->events[k->nevents++] = s;
			}
			cc_frame_free(&f);
		} else {
			if (k->nqueue == k->capqueue) {
				size_t cap = k->capqueue ? 2 * k->capqueue : 16;
				struct cc_frame *q = realloc(k->queue, cap * sizeof(*q));

				if (q == NULL) {
					cc_frame_free(&f);
					pthread_mutex_unlock(&k->lock);
					continue;
				}
				k->queue = q;
				k->capqueue = cap;
			}
			k->queue[k->nqueue++] = f;
		}
		pthread_cond_broadcast(&k->cond);
		pthread_mutex_unlock(&k->lock);
	}
}

int
keys_harness_parent_send(struct keys_harness *k, struct cc_wbuf *w)
{
	int r = cc_chan_send(k->parent_fd, w);

	if (r == -1)
		hlog("send to keys: %s", strerror(errno));
	cc_wbuf_free(w);
	return r;
}

int
keys_harness_parent_recv(struct keys_harness *k, struct cc_frame *f, int timeout_ms)
{
	struct timespec ts;
	int ret = -1;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&k->lock);
	for (;;) {
		if (k->nqueue > 0) {
			*f = k->queue[0];
			memmove(k->queue, k->queue + 1, (k->nqueue - 1) * sizeof(*k->queue));
			k->nqueue--;
			ret = 1;
			break;
		}
		if (k->parent_eof) {
			ret = 0;
			break;
		}
		if (pthread_cond_timedwait(&k->cond, &k->lock, &ts) == ETIMEDOUT) {
			ret = -1;
			break;
		}
	}
	pthread_mutex_unlock(&k->lock);
	return ret;
}

size_t
keys_harness_event_count(struct keys_harness *k)
{
	size_t n;

	pthread_mutex_lock(&k->lock);
	n = k->nevents;
	pthread_mutex_unlock(&k->lock);
	return n;
}

const char *
keys_harness_event_find(struct keys_harness *k, const char *needle)
{
	const char *hit = NULL;

	pthread_mutex_lock(&k->lock);
	for (size_t i = 0; i < k->nevents && hit == NULL; i++)
		if (strstr(k->events[i], needle) != NULL)
			hit = k->events[i];
	pthread_mutex_unlock(&k->lock);
	return hit;
}

const char *
keys_harness_event_wait(struct keys_harness *k, const char *needle, int timeout_ms)
{
	uint64_t end = cc_now_ms() + (uint64_t)timeout_ms;
	const char *hit;

	while ((hit = keys_harness_event_find(k, needle)) == NULL && cc_now_ms() < end)
		usleep(5000);
	return hit;
}

static int
send_frame(int fd, struct cc_wbuf *w, int enc_result)
{
	int r;

	if (enc_result == -1) {
		hlog("cannot encode a configuration message");
		return -1;
	}
	r = cc_chan_send(fd, w);
	cc_wbuf_free(w);
	return r;
}

static int
send_config(struct keys_harness *k, const struct keys_harness_opts *o)
{
	struct cc_wbuf w;
	struct cc_conf_log lg = {
		.debug_mask = o->debug_mask,
		.verbose = (uint8_t)(o->verbose ? 1 : 0),
	};
	struct cc_conf_keys ck = {
		.module = o->module ? o->module : o->token->module,
		.module_env = o->module_env ? o->module_env : o->token->module_env,
		.op_timeout_ms = o->op_timeout_ms ? o->op_timeout_ms : 5000,
		.sessions = (uint32_t)k->npeers,
		.max_input = o->max_input ? o->max_input : 65536,
	};
	struct cc_conf_pin pin = {
		.pin = o->pin ? o->pin : (const uint8_t *)o->token->pin,
		.len = o->pin ? o->pin_len : strlen(o->token->pin),
	};

	if (send_frame(k->parent_fd, &w, cc_enc_conf_log(&w, 0, &lg)) == -1 ||
	    send_frame(k->parent_fd, &w, cc_enc_conf_keys(&w, 0, &ck)) == -1)
		return -1;
	for (size_t i = 0; i < o->nroles; i++)
		if (send_frame(k->parent_fd, &w, cc_enc_conf_role(&w, 0, &o->roles[i])) == -1)
			return -1;
	if (send_frame(k->parent_fd, &w, cc_enc_conf_pin(&w, 0, &pin)) == -1 ||
	    send_frame(k->parent_fd, &w, cc_enc_empty(&w, CC_MSG_CONF_END, 0)) == -1)
		return -1;
	return 0;
}

static pid_t
spawn(struct keys_harness *k, const struct keys_harness_opts *o, const int *fds, int nfds)
{
	const char *args[12];
	char nchan[16];
	int na = 0, saved = -1, fd;
	const char *exe = keys_exe();
	pid_t pid;

	if (exe == NULL) {
		hlog("no keys executable: set CERTCONND_KEYS, CC_BUILD_DIR or CERTCONND");
		return -1;
	}
	snprintf(nchan, sizeof(nchan), "%d", k->npeers);
	args[na++] = "--channels";
	args[na++] = nchan;
	if (o->user != NULL) {
		args[na++] = "--user";
		args[na++] = o->user;
	}
	if (o->no_seccomp)
		args[na++] = "--no-seccomp";
	if (o->no_landlock)
		args[na++] = "--no-landlock";
	args[na] = NULL;
	if (o->stderr_path != NULL) {
		snprintf(k->stderr_path, sizeof(k->stderr_path), "%s", o->stderr_path);
		fd = open(o->stderr_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd == -1) {
			hlog("open %s: %s", o->stderr_path, strerror(errno));
			return -1;
		}
		/* cc_spawn_role keeps fds 0-2: give the child this file as stderr. */
		fflush(stderr);
		saved = dup(2);
		dup2(fd, 2);
		close(fd);
	}
	pid = cc_spawn_role(exe, "keys", fds, nfds, args);
	if (saved != -1) {
		dup2(saved, 2);
		close(saved);
	}
	if (pid == -1)
		hlog("cannot start %s: %s", exe, strerror(errno));
	return pid;
}

int
keys_harness_start(struct keys_harness *k, const struct keys_harness_opts *o)
{
	int fds[1 + CC_MAX_PEER_CHANNELS];
	int pair[2];
	int nfds = 0, ret = -1;
	struct cc_frame f;
	const char *why;

	memset(k, 0, sizeof(*k));
	k->pid = -1;
	k->parent_fd = -1;
	for (int i = 0; i < CC_MAX_PEER_CHANNELS; i++)
		k->peer_fd[i] = -1;
	pthread_mutex_init(&k->lock, NULL);
	pthread_cond_init(&k->cond, NULL);
	k->npeers = o->channels > 0 ? o->channels : 1;
	if (k->npeers > CC_MAX_PEER_CHANNELS || o->token == NULL) {
		hlog("bad options");
		return -1;
	}
	/* Stream sockets, as the parent uses: frames are cut by their length. */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == -1)
		goto out;
	k->parent_fd = pair[0];
	fds[nfds++] = pair[1];
	for (int i = 0; i < k->npeers; i++) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == -1)
			goto out;
		k->peer_fd[i] = pair[0];
		fds[nfds++] = pair[1];
	}
	k->pid = spawn(k, o, fds, nfds);
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	nfds = 0;
	if (k->pid == -1)
		goto out;
	if (send_config(k, o) == -1) {
		hlog("keys did not take its configuration (exited?)");
		goto fail;
	}
	/* READY, or EOF when keys gives up. Events may come first. */
	for (;;) {
		int r = cc_chan_recv(k->parent_fd, o->ready_timeout_ms ? o->ready_timeout_ms : 60000,
		    &f, &why);

		if (r == 0) {
			(void)keys_harness_wait(k, 10000);
			hlog("keys exited during start-up with status %d", k->exit_status);
			goto fail;
		}
		if (r < 0) {
			hlog("waiting for READY: %s", why ? why : strerror(errno));
			goto fail;
		}
		if (f.msg.type == CC_MSG_READY) {
			struct cc_ready rd;

			/* The pid may differ from k->pid when CERTCONND_KEYS is a wrapper (strace). */
			if (cc_dec_ready(&f.msg, &rd, &why) == -1 || strcmp(rd.role, "keys") != 0 ||
			    rd.pid == 0) {
				hlog("bad READY from keys: %s", why ? why : "wrong role or pid");
				cc_frame_free(&f);
				goto fail;
			}
			k->keys_pid = (pid_t)rd.pid;
			cc_frame_free(&f);
			break;
		}
		if (f.msg.type != CC_MSG_EVENT) {
			hlog("unexpected %s from keys before READY", cc_msg_type_name(f.msg.type));
			cc_frame_free(&f);
			goto fail;
		}
		cc_frame_free(&f);
	}
	if (pthread_create(&k->reader, NULL, reader_main, k) != 0)
		goto fail;
	k->reader_running = 1;
	ret = 0;
	goto out;
fail:
	if (!k->exited && keys_harness_wait(k, 0) == -1) {
		kill(k->pid, SIGKILL);
		(void)keys_harness_wait(k, 10000);
	}
out:
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	if (ret == -1) {
		if (k->parent_fd != -1)
			close(k->parent_fd);
		k->parent_fd = -1;
		for (int i = 0; i < CC_MAX_PEER_CHANNELS; i++) {
			if (k->peer_fd[i] != -1)
				close(k->peer_fd[i]);
			k->peer_fd[i] = -1;
		}
	}
	return ret;
}

int
keys_harness_stop(struct keys_harness *k)
{
	struct cc_wbuf w;

	if (k->pid > 0 && !k->exited && k->parent_fd != -1) {
		if (cc_enc_empty(&w, CC_MSG_SHUTDOWN, 0) == 0) {
			(void)cc_chan_send(k->parent_fd, &w);
			cc_wbuf_free(&w);
		}
	}
	if (k->pid > 0 && keys_harness_wait(k, 10000) == -1) {
		hlog("keys did not stop in 10 s; killing it");
		kill(k->pid, SIGKILL);
		(void)keys_harness_wait(k, 10000);
	}
	if (k->reader_running) {
		/* keys is gone, so the reader sees EOF. */
		pthread_join(k->reader, NULL);
		k->reader_running = 0;
	}
	if (k->parent_fd != -1)
		close(k->parent_fd);
	k->parent_fd = -1;
	for (int i = 0; i < CC_MAX_PEER_CHANNELS; i++) {
		if (k->peer_fd[i] != -1)
			close(k->peer_fd[i]);
		k->peer_fd[i] = -1;
	}
	for (size_t i = 0; i < k->nqueue; i++)
		cc_frame_free(&k->queue[i]);
	free(k->queue);
	k->queue = NULL;
	k->nqueue = k->capqueue = 0;
	for (size_t i = 0; i < k->nevents; i++)
		free(k->events[i]);
	k->nevents = 0;
	pthread_mutex_destroy(&k->lock);
	pthread_cond_destroy(&k->cond);
	return k->exit_status;
}

int
keys_harness_rpc(int fd, struct cc_wbuf *w, struct cc_frame *reply, int timeout_ms)
{
	const char *why;
	int r;

	memset(reply, 0, sizeof(*reply));
	r = cc_chan_send(fd, w);
	cc_wbuf_free(w);
	if (r == -1)
		return errno == EPIPE || errno == ECONNRESET ? 0 : -1;
	r = cc_chan_recv(fd, timeout_ms, reply, &why);
	if (r < 0 && errno == ECONNRESET)
		return 0;
	if (r < 0)
		hlog("reply from keys: %s", why ? why : strerror(errno));
	return r;
}

int
keys_harness_file_contains(const char *path, const char *needle)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	int found = 0;

	if (f == NULL)
		return 0;
	while (!found && getline(&line, &cap, f) != -1)
		found = strstr(line, needle) != NULL;
	free(line);
	fclose(f);
	return found;
}

struct cc_conf_role
keys_harness_role(const struct test_token *t, const char *role, uint32_t flags)
{
	struct cc_conf_role r;
	enum hsm_key_alg alg = HSM_KEY_RSA;
	unsigned usage = hsm_default_usage(role);

	memset(&r, 0, sizeof(r));
	r.name = role;
	r.uri = test_token_uri(t, role);
	if (r.uri == NULL)
		r.uri = "pkcs11:object=missing";
	for (size_t i = 0; i < t->nroles; i++)
		if (strcmp(t->roles[i].name, role) == 0)
			alg = t->roles[i].alg;
	r.ekus = "";
	r.flags = flags;
	if (strncmp(role, "ca", 2) == 0 && (role[2] == '\0' || role[2] == '-')) {
		/* as policy/keyroles.json: sign-tbs alone, any scheme that fits the key */
		r.mechs = CC_MECH_SIGN_TBS;
		r.flags |= CC_ROLE_TBS_ONLY;
		r.cert = t->ca_der;
		r.cert_len = t->ca_der_len;
		r.max_validity_days = 825;
		r.max_crl_days = 30;
		return r;
	}
	if (alg == HSM_KEY_EC) {
		r.mechs = CC_MECH_SIGN_ECDSA;
		return r;
	}
	if (usage & HSM_USE_SIGN)
		r.mechs |= CC_MECH_SIGN_RSA_PKCS1 | CC_MECH_SIGN_RSA_PSS;
	if (usage & HSM_USE_DECRYPT)
		r.mechs |= CC_MECH_DECRYPT_RSA_PKCS1 | CC_MECH_DECRYPT_RSA_OAEP;
	return r;
}

/* One typed request: 0 with the reply frame in *f when it has type want, a CC_KE_* code
 * (text in err) for CC_MSG_ERROR, -1 otherwise. */
static int
typed_rpc(int fd, struct cc_wbuf *w, int enc, uint64_t reqid, uint16_t want,
    struct cc_frame *f, char *err, size_t errlen)
{
	struct cc_error e;
	const char *why;
	int r;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (enc == -1) {
		hlog("cannot encode the request");
		return -1;
	}
	r = keys_harness_rpc(fd, w, f, 30000);
	if (r != 1)
		return -1;
	if (f->msg.reqid != reqid) {
		hlog("reply reqid %llu does not echo %llu", (unsigned long long)f->msg.reqid,
		    (unsigned long long)reqid);
		cc_frame_free(f);
		return -1;
	}
	if (f->msg.type == want)
		return 0;
	if (f->msg.type == CC_MSG_ERROR && cc_dec_error(&f->msg, &e, &why) == 0) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "%s", e.text);
		cc_frame_free(f);
		return (int)e.code;
	}
	hlog("unexpected reply %s", cc_msg_type_name(f->msg.type));
	cc_frame_free(f);
	return -1;
}

static uint8_t *
dup_bytes(const uint8_t *p, size_t n)
{
	uint8_t *d = malloc(n ? n : 1);

	if (d != NULL && n > 0)
		memcpy(d, p, n);
	return d;
}

int
keys_harness_sign(int fd, uint64_t reqid, const char *role, uint8_t alg, uint8_t md,
    uint8_t mgf1_md, uint32_t saltlen, const uint8_t *dg, size_t dg_len, uint8_t **sig,
    size_t *sig_len, char *err, size_t errlen)
{
	struct cc_sign_req q = { role, alg, md, mgf1_md, saltlen, dg, dg_len };
	struct cc_sign_resp resp;
	struct cc_wbuf w;
	struct cc_frame f;
	const char *why;
	int r;

	*sig = NULL;
	*sig_len = 0;
	r = typed_rpc(fd, &w, cc_enc_sign_req(&w, reqid, &q), reqid, CC_MSG_SIGN_RESP, &f, err,
	    errlen);
	if (r != 0)
		return r;
	if (cc_dec_sign_resp(&f.msg, &resp, &why) == -1) {
		hlog("bad SIGN_RESP: %s", why);
		cc_frame_free(&f);
		return -1;
	}
	*sig = dup_bytes(resp.sig, resp.sig_len);
	*sig_len = resp.sig_len;
	cc_frame_free(&f);
	return 0;
}

int
keys_harness_sign_tbs(int fd, uint64_t reqid, const char *role, uint8_t kind,
    const uint8_t *tbs, size_t tbs_len, uint8_t **sig, size_t *sig_len, char *err,
    size_t errlen)
{
	struct cc_sign_tbs_req q = { role, kind, tbs, tbs_len };
	struct cc_sign_resp resp;
	struct cc_wbuf w;
	struct cc_frame f;
	const char *why;
	int r;

	*sig = NULL;
	*sig_len = 0;
	r = typed_rpc(fd, &w, cc_enc_sign_tbs_req(&w, reqid, &q), reqid, CC_MSG_SIGN_RESP, &f,
	    err, errlen);
	if (r != 0)
		return r;
	if (cc_dec_sign_resp(&f.msg, &resp, &why) == -1) {
		hlog("bad SIGN_RESP: %s", why);
		cc_frame_free(&f);
		return -1;
	}
	*sig = dup_bytes(resp.sig, resp.sig_len);
	*sig_len = resp.sig_len;
	cc_frame_free(&f);
	return 0;
}

int
keys_harness_decrypt(int fd, uint64_t reqid, const char *role, uint8_t pad, uint8_t md,
    uint8_t mgf1_md, const uint8_t *label, size_t label_len, const uint8_t *in, size_t in_len,
    uint8_t **out, size_t *out_len, char *err, size_t errlen)
{
	struct cc_decrypt_req q = { role, pad, md, mgf1_md, label, label_len, in, in_len };
	struct cc_decrypt_resp resp;
	struct cc_wbuf w;
	struct cc_frame f;
	const char *why;
	int r;

	*out = NULL;
	*out_len = 0;
	r = typed_rpc(fd, &w, cc_enc_decrypt_req(&w, reqid, &q), reqid, CC_MSG_DECRYPT_RESP, &f,
	    err, errlen);
	if (r != 0)
		return r;
	if (cc_dec_decrypt_resp(&f.msg, &resp, &why) == -1) {
		hlog("bad DECRYPT_RESP: %s", why);
		cc_frame_free(&f);
		return -1;
	}
	*out = dup_bytes(resp.out, resp.out_len);
	*out_len = resp.out_len;
	cc_frame_free(&f);
	return 0;
}

int
keys_harness_key_info(int fd, uint64_t reqid, const char *role, EVP_PKEY **pub,
    uint8_t **cert, size_t *cert_len, uint32_t *info, char *err, size_t errlen)
{
	struct cc_key_info_req q = { role };
	struct cc_key_info ki;
	struct cc_wbuf w;
	struct cc_frame f;
	const unsigned char *p;
	const char *why;
	int r;

	*pub = NULL;
	if (cert != NULL) {
		*cert = NULL;
		*cert_len = 0;
	}
	r = typed_rpc(fd, &w, cc_enc_key_info_req(&w, reqid, &q), reqid, CC_MSG_KEY_INFO, &f,
	    err, errlen);
	if (r != 0)
		return r;
	if (cc_dec_key_info(&f.msg, &ki, &why) == -1) {
		hlog("bad KEY_INFO: %s", why);
		cc_frame_free(&f);
		return -1;
	}
	p = ki.spki;
	*pub = d2i_PUBKEY(NULL, &p, (long)ki.spki_len);
	if (cert != NULL && ki.cert_len > 0) {
		*cert = dup_bytes(ki.cert, ki.cert_len);
		*cert_len = ki.cert_len;
	}
	if (info != NULL) {
		info[0] = ki.key_type;
		info[1] = ki.bits;
		info[2] = ki.mechs;
		info[3] = ki.flags;
	}
	cc_frame_free(&f);
	return *pub != NULL ? 0 : -1;
}

int
keys_harness_verify(EVP_PKEY *pub, uint8_t alg, uint8_t md, uint8_t mgf1_md,
    uint32_t saltlen, const uint8_t *dg, size_t dg_len, const uint8_t *sig, size_t sig_len)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pub, NULL);
	int ok = 0;

	if (ctx == NULL || EVP_PKEY_verify_init(ctx) <= 0 ||
	    EVP_PKEY_CTX_set_signature_md(ctx, keys_pad_md(md)) <= 0)
		goto out;
	if (alg == CC_SIG_RSA_PKCS1 && EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) <= 0)
		goto out;
	if (alg == CC_SIG_RSA_PSS &&
	    (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, (int)saltlen) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, keys_pad_md(mgf1_md ? mgf1_md : md)) <= 0))
		goto out;
	ok = EVP_PKEY_verify(ctx, sig, sig_len, dg, dg_len) == 1;
out:
	EVP_PKEY_CTX_free(ctx);
	return ok;
}

int
keys_harness_encrypt(EVP_PKEY *pub, uint8_t pad, uint8_t md, uint8_t mgf1_md,
    const uint8_t *label, size_t label_len, const uint8_t *msg, size_t msg_len, uint8_t *out,
    size_t *out_len)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pub, NULL);
	int ret = -1;

	if (ctx == NULL || EVP_PKEY_encrypt_init(ctx) <= 0)
		goto out;
	if (pad == CC_DEC_RSA_PKCS1 && EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) <= 0)
		goto out;
	if (pad == CC_DEC_RSA_OAEP) {
		if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
		    EVP_PKEY_CTX_set_rsa_oaep_md(ctx, keys_pad_md(md)) <= 0 ||
		    EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, keys_pad_md(mgf1_md ? mgf1_md : md)) <= 0)
			goto out;
		if (label_len > 0) {
			void *l = OPENSSL_memdup(label, label_len);

			if (l == NULL || EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, l, (int)label_len) <= 0) {
				OPENSSL_free(l);
				goto out;
			}
		}
	}
	if (EVP_PKEY_encrypt(ctx, out, out_len, msg, msg_len) <= 0)
		goto out;
	ret = 0;
out:
	EVP_PKEY_CTX_free(ctx);
	return ret;
}
