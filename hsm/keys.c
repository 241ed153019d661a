/*
 * keys role: start-up (configuration from the parent, privilege drop, module, login,
 * sandbox), the parent channel on the main thread, one worker thread per net channel, and
 * the watchdog that answers for a worker stuck in the module. See keys.h and docs/keys.md.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>

#include "certconn/chan.h"
#include "certconn/event.h"
#include "certconn/log.h"
#include "certconn/sandbox.h"
#include "keys.h"
#include "keys_int.h"

struct keys *keys_g;

/* A frame from the parent that is malformed or unexpected: fatal, like one from net. */
static void __attribute__((noreturn))
parent_fatal(uint16_t type, const char *why)
{
	cc_log_err("fatal: malformed message from parent: %s (type %u): %s; exiting",
	    cc_msg_type_name(type), type, why);
	_exit(1);
}

static char *
xstrdup(const char *s)
{
	char *d = strdup(s ? s : "");

	if (d == NULL)
		cc_fatal("out of memory");
	return d;
}

static int
same_token(const struct p11_uri *a, const struct p11_uri *b)
{
	return a->has_token == b->has_token && strcmp(a->token, b->token) == 0 &&
	    a->has_serial == b->has_serial && strcmp(a->serial, b->serial) == 0 &&
	    a->has_manufacturer == b->has_manufacturer &&
	    strcmp(a->manufacturer, b->manufacturer) == 0 && a->has_model == b->has_model &&
	    strcmp(a->model, b->model) == 0 && a->has_slot_id == b->has_slot_id &&
	    a->slot_id == b->slot_id;
}

static void
add_role(struct keys *k, const struct cc_conf_role *c)
{
	struct keys_role *r;
	const char *why;

	if (k->nroles == KEYS_MAX_ROLES)
		cc_fatal("more than %d key roles", KEYS_MAX_ROLES);
	if (c->name[0] == '\0')
		cc_fatal("a key role without a name");
	if (keys_role_find(k, c->name) != NULL)
		cc_fatal("key role %s configured twice", c->name);
	r = &k->roles[k->nroles];
	memset(r, 0, sizeof(*r));
	if (p11_uri_parse(c->uri, &r->puri, &why) == -1)
		cc_fatal("role %s: bad PKCS#11 URI \"%s\": %s", c->name, c->uri, why);
	if (!r->puri.has_object && !r->puri.has_id)
		cc_fatal("role %s: URI \"%s\" names no key (object= or id=)", c->name, c->uri);
	if (r->puri.type != P11_TYPE_ANY && r->puri.type != P11_TYPE_PRIVATE)
		cc_fatal("role %s: URI \"%s\" must name a private key", c->name, c->uri);
	if (k->nroles > 0 && !same_token(&r->puri, &k->roles[0].puri))
		cc_fatal("role %s is on another token than role %s: keys logs in to one token",
		    c->name, k->roles[0].name);
	r->name = xstrdup(c->name);
	r->uri = xstrdup(c->uri);
	r->ekus = xstrdup(c->ekus);
	r->mechs = c->mechs;
	r->flags = c->flags;
	r->max_validity_days = c->max_validity_days;
	r->key_usage = c->key_usage;
	r->max_crl_days = c->max_crl_days;
	if (c->cert_len > 0) {
		r->conf_cert = malloc(c->cert_len);
		if (r->conf_cert == NULL)
			cc_fatal("out of memory");
		memcpy(r->conf_cert, c->cert, c->cert_len);
		r->conf_cert_len = c->cert_len;
	}
	snprintf(r->state, sizeof(r->state), "not loaded");
	k->nroles++;
}

/* CONF_LOG, CONF_KEYS, CONF_ROLE..., CONF_PIN, CONF_END. */
static void
read_config(struct keys *k)
{
	int have_keys = 0, have_pin = 0;

	for (;;) {
		struct cc_frame f;
		const char *why = NULL;
		int r = cc_chan_recv(CC_FD_PARENT, -1, &f, &why);

		if (r == 0)
			cc_fatal("the parent closed the channel before the end of the configuration");
		if (r < 0) {
			if (errno == EPROTO)
				parent_fatal(0, why ? why : "bad frame");
			cc_fatal("reading the configuration: %s", strerror(errno));
		}
		switch (f.msg.type) {
		case CC_MSG_CONF_LOG: {
			struct cc_conf_log c;

			if (cc_dec_conf_log(&f.msg, &c, &why) == -1)
				parent_fatal(f.msg.type, why);
			cc_log_set_verbose(c.verbose);
			if (c.debug_mask != 0)
				cc_event_set_debug(c.debug_mask, 1);
			break;
		}
		case CC_MSG_CONF_KEYS: {
			struct cc_conf_keys c;

			if (cc_dec_conf_keys(&f.msg, &c, &why) == -1)
				parent_fatal(f.msg.type, why);
			if (c.module[0] == '\0')
				cc_fatal("no PKCS#11 module configured");
			k->conf = c;
			k->conf.module = xstrdup(c.module);
			k->module_env = xstrdup(c.module_env);
			k->conf.module_env = k->module_env;
			if (k->conf.op_timeout_ms == 0)
				k->conf.op_timeout_ms = 5000;
			if (k->conf.max_input == 0 || k->conf.max_input > CC_MSG_MAX)
				k->conf.max_input = 65536;
			have_keys = 1;
			break;
		}
		case CC_MSG_CONF_ROLE: {
			struct cc_conf_role c;

			if (cc_dec_conf_role(&f.msg, &c, &why) == -1)
				parent_fatal(f.msg.type, why);
			add_role(k, &c);
			break;
		}
		case CC_MSG_CONF_PIN: {
			struct cc_conf_pin c;

			if (cc_dec_conf_pin(&f.msg, &c, &why) == -1)
				parent_fatal(f.msg.type, why);
			if (have_pin)
				keys_pin_wipe(k);
			if (keys_pin_set(k, c.pin, c.len) == -1)
				cc_fatal("cannot keep the PIN in locked memory");
			have_pin = 1;
			break;
		}
		case CC_MSG_CONF_END:
			if (cc_dec_empty(&f.msg, &why) == -1)
				parent_fatal(f.msg.type, why);
			cc_frame_free(&f);
			if (!have_keys)
				cc_fatal("no CONF_KEYS from the parent");
			if (!have_pin)
				cc_fatal("no PIN from the parent");
			if (k->nroles == 0)
				cc_fatal("no key roles configured");
			return;
		default:
			parent_fatal(f.msg.type, "not a configuration message");
		}
		/* Wipes the frame: CONF_PIN's bytes do not outlive it. */
		cc_frame_free(&f);
	}
}

static int
apply_module_env(const char *env)
{
	/* The parent sends pkcs11.env as NAME=value lines separated by '\n'. */
	const char *line = env, *eq, *end;
	char name[128], *value;
	int rc;

	if (env == NULL)
		return 0;
	for (; *line != '\0'; line = *end == '\n' ? end + 1 : end) {
		end = line + strcspn(line, "\n");
		if (end == line)
			continue;
		eq = memchr(line, '=', (size_t)(end - line));
		if (eq == NULL || eq == line || (size_t)(eq - line) >= sizeof(name)) {
			cc_log_err("module environment \"%.*s\" is not NAME=value (name < %zu "
			    "bytes)", (int)(end - line), line, sizeof(name));
			return -1;
		}
		memcpy(name, line, (size_t)(eq - line));
		name[eq - line] = '\0';
		if ((value = strndup(eq + 1, (size_t)(end - eq - 1))) == NULL) {
			cc_log_err("module environment %s: out of memory", name);
			return -1;
		}
		rc = setenv(name, value, 1);
		free(value);
		if (rc == -1) {
			cc_log_err("module environment %s: %s", name, strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* ---- workers and watchdog ---- */

static void
worker_begin(struct keys_worker *w, uint64_t reqid, uint16_t type)
{
	pthread_mutex_lock(&w->lock);
	w->busy = 1;
	w->owes_reply = 1;
	w->timed_out = 0;
	w->started_ms = cc_now_ms();
	w->reqid = reqid;
	snprintf(w->what, sizeof(w->what), "%s", cc_msg_type_name(type));
	pthread_mutex_unlock(&w->lock);
}

static void
worker_reply(struct keys_worker *w, struct cc_wbuf *reply)
{
	pthread_mutex_lock(&w->lock);
	if (w->timed_out) {
		cc_log_warn("channel %d: the late result of %s %llu is discarded (already answered "
		    "with a timeout)", w->idx, w->what, (unsigned long long)w->reqid);
	} else if (cc_chan_send(w->fd, reply) == -1) {
		cc_log_err("channel %d: cannot send the reply to net: %s", w->idx, strerror(errno));
	}
	w->owes_reply = 0;
	/* Recovery after the reply is under the watchdog too, from now. */
	w->started_ms = cc_now_ms();
	pthread_mutex_unlock(&w->lock);
}

static void
worker_end(struct keys_worker *w)
{
	pthread_mutex_lock(&w->lock);
	w->busy = 0;
	w->timed_out = 0;
	pthread_mutex_unlock(&w->lock);
}

static void *
worker_main(void *arg)
{
	struct keys_worker *w = arg;
	struct keys *k = keys_g;

	for (;;) {
		struct cc_frame f;
		struct cc_wbuf reply;
		uint8_t hdr[CC_MSG_HDR_LEN];
		uint16_t type = 0;
		const char *why = NULL;
		enum keys_recover rec;
		uint64_t gen;
		ssize_t n;
		int r;

		/* The header first, so a frame that fails to parse can still be named. */
		n = recv(w->fd, hdr, sizeof(hdr), MSG_PEEK | MSG_WAITALL);
		if (n >= 8)
			type = (uint16_t)(hdr[6] << 8 | hdr[7]);
		r = cc_chan_recv(w->fd, -1, &f, &why);
		if (atomic_load(&k->stopping))
			return NULL;
		if (r == 0) {
			cc_log_info("channel %d: net closed it", w->idx);
			return NULL;
		}
		if (r < 0) {
			if (errno == EPROTO) {
				cc_log_err("fatal: malformed message from net: %s (type %u): %s; exiting",
				    cc_msg_type_name(type), type, why ? why : "bad frame");
				_exit(1);
			}
			cc_log_err("channel %d: %s; closing it", w->idx, strerror(errno));
			return NULL;
		}
		memset(&reply, 0, sizeof(reply));
		worker_begin(w, f.msg.reqid, f.msg.type);
		rec = keys_ops_handle(k, w, &f.msg, &reply, &gen);
		if (reply.p == NULL) {
			struct cc_error e = { CC_KE_INTERNAL, "keys could not encode its reply" };

			cc_wbuf_free(&reply);
			(void)cc_enc_error(&reply, f.msg.reqid, &e);
		}
		cc_frame_free(&f);
		worker_reply(w, &reply);
		cc_wbuf_free(&reply);
		if (rec != KR_NONE)
			keys_token_recover(k, w, rec, gen);
		worker_end(w);
	}
}

static void *
watchdog_main(void *arg)
{
	struct keys *k = arg;
	uint32_t t = k->conf.op_timeout_ms;
	long tick = t / 10 < 5 ? 5 : t / 10 > 100 ? 100 : (long)t / 10;
	struct timespec ts = { 0, tick * 1000000L };

	while (!atomic_load(&k->stopping)) {
		uint64_t now;

		nanosleep(&ts, NULL);
		for (int i = 0; i < k->nworkers; i++) {
			struct keys_worker *w = &k->workers[i];

			pthread_mutex_lock(&w->lock);
			/* Read under the lock: the worker moves started_ms forward under it. */
			now = cc_now_ms();
			if (w->busy && w->owes_reply && !w->timed_out && now - w->started_ms >= t) {
				struct cc_wbuf wb;
				struct cc_error e = { CC_KE_TIMEOUT, NULL };
				char text[256];

				snprintf(text, sizeof(text), "the PKCS#11 module did not answer %s within "
				    "%u ms", w->what, t);
				e.text = text;
				cc_log_warn("channel %d: %s (request %llu); answering with a timeout", i,
				    text, (unsigned long long)w->reqid);
				if (cc_enc_error(&wb, w->reqid, &e) == 0) {
					(void)cc_chan_send(w->fd, &wb);
					cc_wbuf_free(&wb);
				}
				w->timed_out = 1;
			}
			if (w->busy && now - w->started_ms >= 3ull * t) {
				cc_log_err("fatal: the PKCS#11 module has been hung for %llu ms in %s "
				    "(more than 3 x op_timeout_ms = %u ms); exiting with status %d so "
				    "that the parent restarts keys", (unsigned long long)(now -
				    w->started_ms), w->what, 3 * t, KEYS_EXIT_HUNG);
				if (k->tok.pin != NULL)
					explicit_bzero(k->tok.pin, k->tok.pin_map_len);
				_exit(KEYS_EXIT_HUNG);
			}
			pthread_mutex_unlock(&w->lock);
		}
	}
	return NULL;
}

/* ---- the parent channel ---- */

static void
keys_list(struct keys *k, uint64_t reqid)
{
	struct cc_wbuf w;

	for (size_t i = 0; i < k->nroles; i++) {
		struct keys_role *r = &k->roles[i];
		struct cc_keys_list_item it;
		char sign[KEYS_TEXT_MAX], dec[KEYS_TEXT_MAX];

		keys_ops_paths(r, sign, sizeof(sign), dec, sizeof(dec));
		memset(&it, 0, sizeof(it));
		it.role = r->name;
		it.uri = r->uri;
		it.key_type = r->present ? r->key_type : CC_KEY_NONE;
		it.bits = r->present ? r->bits : 0;
		it.mechs = r->mechs;
		it.sign_path = sign;
		it.decrypt_path = dec;
		it.state = r->state;
		if (cc_enc_keys_list_item(&w, reqid, &it) == 0) {
			(void)keys_parent_send(k, &w);
			cc_wbuf_free(&w);
		}
	}
	if (cc_enc_empty(&w, CC_MSG_KEYS_LIST_END, reqid) == 0) {
		(void)keys_parent_send(k, &w);
		cc_wbuf_free(&w);
	}
}

/* Serves the parent until SHUTDOWN or EOF. */
static void
serve_parent(struct keys *k)
{
	for (;;) {
		struct cc_frame f;
		struct cc_wbuf w;
		const char *why = NULL;
		int r = cc_chan_recv(CC_FD_PARENT, -1, &f, &why);

		if (r == 0) {
			cc_log_info("the parent closed the channel; stopping");
			return;
		}
		if (r < 0) {
			if (errno == EPROTO)
				parent_fatal(0, why ? why : "bad frame");
			cc_log_err("parent channel: %s; stopping", strerror(errno));
			return;
		}
		switch (f.msg.type) {
		case CC_MSG_KEYS_LIST_REQ:
			if (cc_dec_empty(&f.msg, &why) == -1)
				parent_fatal(f.msg.type, why);
			keys_list(k, f.msg.reqid);
			break;
		case CC_MSG_KEY_INFO_REQ: {
			struct cc_key_info_req q;

			if (cc_dec_key_info_req(&f.msg, &q, &why) == -1)
				parent_fatal(f.msg.type, why);
			if (keys_ops_key_info(k, q.role, f.msg.reqid, &w) == 0) {
				(void)keys_parent_send(k, &w);
				cc_wbuf_free(&w);
			}
			break;
		}
		case CC_MSG_SET_DEBUG: {
			struct cc_set_debug d;

			if (cc_dec_set_debug(&f.msg, &d, &why) == -1)
				parent_fatal(f.msg.type, why);
			cc_event_set_debug(d.mask, d.on);
			cc_log_info("debug %s for channel mask 0x%x", d.on ? "on" : "off", d.mask);
			break;
		}
		case CC_MSG_SHUTDOWN:
			if (cc_dec_empty(&f.msg, &why) == -1)
				parent_fatal(f.msg.type, why);
			cc_frame_free(&f);
			cc_log_info("shutting down");
			return;
		default:
			parent_fatal(f.msg.type, "the parent may not send this message type to keys");
		}
		cc_frame_free(&f);
	}
}

static void
stop(struct keys *k)
{
	int stuck = 0;

	atomic_store(&k->stopping, 1);
	for (int i = 0; i < k->nworkers; i++)
		(void)shutdown(k->workers[i].fd, SHUT_RDWR);
	for (int i = 0; i < k->nworkers; i++) {
		struct timespec ts;

		if (!k->workers[i].started)
			continue;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 2 + (time_t)(k->conf.op_timeout_ms / 1000);
		if (pthread_timedjoin_np(k->workers[i].th, NULL, &ts) != 0)
			stuck = 1;
	}
	if (stuck) {
		/* A worker is inside the module and will not come back: nothing left to clean
		 * up safely. */
		cc_log_warn("a worker is stuck in the PKCS#11 module; exiting without finalising");
		keys_pin_wipe(k);
		_exit(0);
	}
	if (k->watchdog_started)
		pthread_join(k->watchdog, NULL);
	cc_event_set_forward(NULL, NULL);
	keys_token_stop(k);
	for (size_t i = 0; i < k->nroles; i++) {
		struct keys_role *r = &k->roles[i];

		free(r->name);
		free(r->uri);
		free(r->ekus);
		free(r->conf_cert);
	}
	free((char *)k->conf.module);
	free(k->module_env);
	for (int i = 0; i < k->nworkers; i++)
		pthread_mutex_destroy(&k->workers[i].lock);
}

static void
usage(void)
{
	cc_log_err("usage: certconnd --role keys --channels N [--user USER] [--no-seccomp] "
	    "[--no-landlock]");
}

int
keys_main(int argc, char **argv)
{
	static struct keys K;
	struct keys *k = &K;
	struct cc_sandbox_opts so;
	char *rest[16];
	int nrest = 0, nch = -1;
	struct cc_wbuf w;
	struct cc_ready ready = { "keys", 0 };

	keys_g = k;
	cc_log_init("certconnd", "keys", 0);
	rest[nrest++] = argv[0];
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--role") == 0 && i + 1 < argc) {
			if (strcmp(argv[++i], "keys") != 0) {
				usage();
				return 1;
			}
		} else if (strcmp(argv[i], "--channels") == 0 && i + 1 < argc) {
			char *end;
			long v = strtol(argv[++i], &end, 10);

			if (*end != '\0' || v < 1 || v > CC_MAX_PEER_CHANNELS) {
				cc_log_err("--channels must be 1 to %d", CC_MAX_PEER_CHANNELS);
				return 1;
			}
			nch = (int)v;
		} else if (nrest < (int)(sizeof(rest) / sizeof(rest[0]))) {
			rest[nrest++] = argv[i];
		} else {
			usage();
			return 1;
		}
	}
	if (nch < 0 || cc_sandbox_parse_args(nrest, rest, 1, &so) == -1) {
		usage();
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	pthread_mutex_init(&k->parent_lock, NULL);
	keys_events_install(k);

	read_config(k);
	if (k->conf.sessions != (uint32_t)nch)
		cc_log_warn("configured for %u sessions but given %d channels: one session per "
		    "channel", k->conf.sessions, nch);
	if (cc_sandbox_drop_user(so.user) == -1)
		return 1;
	if (apply_module_env(k->module_env) == -1)
		return 1;
	if (keys_token_start(k) == -1) {
		cc_log_err("fatal: keys cannot start (see above)");
		keys_pin_wipe(k);
		return 1;
	}
	keys_token_probe(k);
	for (size_t i = 0; i < k->nroles; i++) {
		if (!k->roles[i].present && !(k->roles[i].flags & CC_ROLE_OPTIONAL)) {
			cc_log_err("fatal: role %s: %s", k->roles[i].name, k->roles[i].state);
			keys_pin_wipe(k);
			return 1;
		}
	}
	if (keys_sandbox_apply(k, so.landlock, so.seccomp) == -1) {
		cc_log_err("fatal: cannot sandbox keys");
		keys_pin_wipe(k);
		return 1;
	}
	k->nworkers = nch;
	for (int i = 0; i < nch; i++) {
		struct keys_worker *wk = &k->workers[i];

		wk->idx = i;
		wk->fd = CC_FD_PEER0 + i;
		pthread_mutex_init(&wk->lock, NULL);
		if (pthread_create(&wk->th, NULL, worker_main, wk) != 0)
			cc_fatal("cannot start worker %d", i);
		wk->started = 1;
	}
	if (pthread_create(&k->watchdog, NULL, watchdog_main, k) != 0)
		cc_fatal("cannot start the watchdog");
	k->watchdog_started = 1;
	ready.pid = (uint32_t)getpid();
	if (cc_enc_ready(&w, 0, &ready) == -1 || keys_parent_send(k, &w) == -1)
		cc_fatal("cannot tell the parent keys is ready");
	cc_wbuf_free(&w);
	cc_log_info("ready: %zu roles on token \"%s\", %d channels, op timeout %u ms",
	    k->nroles, k->tok.label, nch, k->conf.op_timeout_ms);
	serve_parent(k);
	stop(k);
	return 0;
}
