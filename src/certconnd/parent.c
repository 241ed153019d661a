/*
 * The parent: reads and checks the config, opens the listening and control sockets, starts
 * net and keys (re-executing itself), hands each only its part of the config (the PIN to keys
 * alone), relays events to the sinks and control requests to the children, and supervises:
 * a child that dies takes its peer down with it and the pair is restarted with backoff, since
 * the socketpairs between them die too; a crash loop ends the daemon with a clear error.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <systemd/sd-daemon.h>

#include "certconn/chan.h"
#include "certconn/config.h"
#include "certconn/event.h"
#include "certconn/log.h"
#include "certconn/proto.h"
#include "certconn/util.h"
#include "certconnd.h"
#include "parent.h"

static struct parent P;

static void start_children(void);
static void child_read_cb(struct bufferevent *bev, void *arg);
static void child_event_cb(struct bufferevent *bev, short what, void *arg);

/* ---- helpers ---- */

static int
send_frame(struct bufferevent *bev, struct cc_wbuf *w)
{
	int r = -1;

	if (bev != NULL && !w->err && w->p != NULL)
		r = bufferevent_write(bev, w->p, w->len);
	cc_wbuf_free(w);
	return r;
}

int
parent_send_child(struct child *c, struct cc_wbuf *w)
{
	if (c->bev == NULL || !c->ready) {
		cc_wbuf_free(w);
		return -1;
	}
	return send_frame(c->bev, w);
}

int
parent_send_conn(struct bufferevent *bev, struct cc_wbuf *w)
{
	return send_frame(bev, w);
}

static const char *
exit_text(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "was killed by signal %d (%s)", WTERMSIG(status),
		    strsignal(WTERMSIG(status)));
	else
		snprintf(buf, len, "ended (status 0x%x)", status);
	return buf;
}

/* ---- PIN ---- */

static void
pin_wipe(void)
{
	if (P.pin != NULL) {
		explicit_bzero(P.pin, P.pin_cap);
		munlock(P.pin, P.pin_cap);
		free(P.pin);
	}
	P.pin = NULL;
	P.pin_len = P.pin_cap = 0;
}

/* Reads the PIN from its file or systemd credential; kept (locked) only to restart keys. */
static int
pin_load(const struct cc_config *cfg)
{
	char err[1024];
	uint8_t *buf = NULL;
	size_t len = 0;

	if (cc_config_read_pin(cfg, &buf, &len, err, sizeof(err)) == -1) {
		cc_log_err("%s", err);
		return -1;
	}
	pin_wipe();
	P.pin = buf;
	P.pin_len = len;
	P.pin_cap = len;
	(void)mlock(P.pin, P.pin_cap);
	return 0;
}

/* ---- sockets the parent opens for net ---- */

static int
listen_open(const char *host, const char *port)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
		.ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res = NULL, *ai;
	int fd = -1, one = 1, rc;

	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		cc_log_err("net.listen %s:%s: %s", host, port, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK, ai->ai_protocol);
		if (fd == -1)
			continue;
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 128) == 0)
			break;
		rc = errno;
		close(fd);
		fd = -1;
		errno = rc;
	}
	if (fd == -1)
		cc_log_err("net.listen %s:%s: cannot listen: %s", host, port, strerror(errno));
	freeaddrinfo(res);
	return fd;
}

static int
ctl_open(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	mode_t old;
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		cc_log_err("daemon.control_socket: path too long: %s", path);
		return -1;
	}
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	(void)unlink(path);
	old = umask(0077);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 || listen(fd, 16) == -1) {
		umask(old);
		cc_log_err("control socket %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	umask(old);
	return fd;
}

/*
 * net's state directory (local CA database, outbox) belongs to net's user: the parent makes
 * it (one level) and hands it over, since net cannot after it has dropped root.
 */
static int
net_state_dir(void)
{
	const char *dir = P.cfg.net.state_dir, *user = P.cfg.daemon.user_net;
	struct passwd *pw;

	if (dir[0] == '\0')
		return 0;
	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		cc_log_err("net.state_dir %s: %s", dir, strerror(errno));
		return -1;
	}
	if (geteuid() != 0 || user == NULL || user[0] == '\0')
		return 0;
	pw = getpwnam(user);
	if (pw == NULL) {
		cc_log_err("daemon.user_net: no such user %s", user);
		return -1;
	}
	if (chown(dir, pw->pw_uid, pw->pw_gid) == -1 || chmod(dir, 0700) == -1) {
		cc_log_err("net.state_dir %s: cannot give it to %s: %s", dir, user,
		    strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- configuration sent to the children ---- */

static int
send_conf_log(int fd)
{
	struct cc_wbuf w;
	struct cc_conf_log cl = { .debug_mask = cc_event_debug_mask(), .verbose = (uint8_t)cc_log_verbose() };
	int r;

	if (cc_enc_conf_log(&w, 0, &cl) == -1)
		return -1;
	r = cc_chan_send(fd, &w);
	cc_wbuf_free(&w);
	return r;
}

static int
send_end(int fd)
{
	struct cc_wbuf w;
	int r;

	if (cc_enc_empty(&w, CC_MSG_CONF_END, 0) == -1)
		return -1;
	r = cc_chan_send(fd, &w);
	cc_wbuf_free(&w);
	return r;
}

static int
send_keys_conf(int fd)
{
	const struct cc_config *cfg = &P.cfg;
	struct cc_wbuf w;
	struct cc_conf_keys ck = { 0 };
	struct cc_conf_pin cp = { P.pin, P.pin_len };
	char env[CC_MSG_STR_MAX - 1];

	if (send_conf_log(fd) == -1)
		return -1;
	/* The module's environment travels as "NAME=value" lines. */
	env[0] = '\0';
	for (size_t i = 0; i < cfg->pkcs11.nenv; i++) {
		size_t off = strlen(env);
		snprintf(env + off, sizeof(env) - off, "%s%s=%s", i ? "\n" : "",
		    cfg->pkcs11.env[i].name, cfg->pkcs11.env[i].value);
	}
	ck.module = cfg->pkcs11.module;
	ck.module_env = env;
	ck.op_timeout_ms = cfg->pkcs11.op_timeout_ms;
	ck.sessions = cfg->net.keys_channels;
	ck.max_input = CC_MSG_MAX - 1024;
	if (cc_enc_conf_keys(&w, 0, &ck) == -1 || cc_chan_send(fd, &w) == -1)
		goto fail;
	cc_wbuf_free(&w);
	for (size_t i = 0; i < cfg->keys.nroles; i++) {
		struct cc_conf_role cr;

		cc_config_conf_role(&cfg->keys.roles[i], &cr);
		if (cc_enc_conf_role(&w, 0, &cr) == -1 || cc_chan_send(fd, &w) == -1)
			goto fail;
		cc_wbuf_free(&w);
	}
	if (cc_enc_conf_pin(&w, 0, &cp) == -1 || cc_chan_send(fd, &w) == -1)
		goto fail;
	cc_wbuf_free(&w);
	return send_end(fd);
fail:
	cc_wbuf_free(&w);
	cc_log_err("cannot send the configuration to keys: %s", strerror(errno));
	return -1;
}

static int
send_net_conf(int fd)
{
	struct cc_wbuf w;
	struct cc_conf_net cn = { P.cfg.net_json };

	if (send_conf_log(fd) == -1)
		return -1;
	if (cc_enc_conf_net(&w, 0, &cn) == -1 || cc_chan_send(fd, &w) == -1) {
		cc_wbuf_free(&w);
		cc_log_err("cannot send the configuration to net: %s", strerror(errno));
		return -1;
	}
	cc_wbuf_free(&w);
	return send_end(fd);
}

/* ---- children ---- */

static void
sandbox_args(const char *user, const char **args, int *n)
{
	if (geteuid() == 0 && user != NULL && user[0] != '\0') {
		args[(*n)++] = "--user";
		args[(*n)++] = user;
	}
	if (!P.cfg.daemon.seccomp)
		args[(*n)++] = "--no-seccomp";
	if (!P.cfg.daemon.landlock)
		args[(*n)++] = "--no-landlock";
}

static void
child_reset(struct child *c)
{
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	c->bev = NULL;
	c->pid = 0;
	c->ready = 0;
}

static void
ready_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd; (void)what; (void)arg;
	if (P.net.ready && P.keys.ready)
		return;
	cc_log_err("%s did not become ready within %d s; restarting",
	    !P.keys.ready ? "keys" : "net", PARENT_READY_TIMEOUT_S);
	if (P.keys.pid > 0)
		kill(P.keys.pid, SIGKILL);
	if (P.net.pid > 0)
		kill(P.net.pid, SIGKILL);
}

static void
start_children(void)
{
	int pk[2] = { -1, -1 }, pn[2] = { -1, -1 }, nk[CC_MAX_PEER_CHANNELS][2];
	int kfds[1 + CC_MAX_PEER_CHANNELS], nfds[3 + CC_MAX_PEER_CHANNELS];
	const char *kargs[8], *nargs[12];
	char nchan[16];
	int ka = 0, na = 0;
	uint32_t n = P.cfg.net.keys_channels;
	const char *exe = cc_self_exe();

	for (uint32_t i = 0; i < CC_MAX_PEER_CHANNELS; i++)
		nk[i][0] = nk[i][1] = -1;
	if (exe == NULL)
		cc_fatal("cannot find my own executable in /proc/self/exe");
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pk) == -1 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pn) == -1)
		cc_fatal("socketpair: %s", strerror(errno));
	for (uint32_t i = 0; i < n; i++)
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, nk[i]) == -1)
			cc_fatal("socketpair: %s", strerror(errno));

	snprintf(nchan, sizeof(nchan), "%u", n);
	kargs[ka++] = "--channels";
	kargs[ka++] = nchan;
	sandbox_args(P.cfg.daemon.user_keys, kargs, &ka);
	kargs[ka] = NULL;
	nargs[na++] = "--channels";
	nargs[na++] = nchan;
	nargs[na++] = "--listen";
	if (P.listen_tls_fd != -1)
		nargs[na++] = "--listen-tls";
	sandbox_args(P.cfg.daemon.user_net, nargs, &na);
	nargs[na] = NULL;

	kfds[0] = pk[1];
	nfds[0] = pn[1];
	for (uint32_t i = 0; i < n; i++) {
		kfds[1 + i] = nk[i][1];
		nfds[1 + i] = nk[i][0];
	}
	nfds[1 + n] = P.listen_fd;
	nfds[2 + n] = P.listen_tls_fd; /* after the plain listener, when there is one */

	P.keys.pid = cc_spawn_role(exe, "keys", kfds, 1 + (int)n, kargs);
	if (P.keys.pid == -1)
		cc_fatal("cannot start keys: %s", strerror(errno));
	P.net.pid = cc_spawn_role(exe, "net", nfds, (P.listen_tls_fd != -1 ? 3 : 2) + (int)n,
	    nargs);
	if (P.net.pid == -1)
		cc_fatal("cannot start net: %s", strerror(errno));
	close(pk[1]);
	close(pn[1]);
	for (uint32_t i = 0; i < n; i++) {
		close(nk[i][0]);
		close(nk[i][1]);
	}
	cc_log_info("started keys (pid %d) and net (pid %d) with %u channels", (int)P.keys.pid,
	    (int)P.net.pid, n);

	/* A child that fails to read its config dies; SIGCHLD handles that. */
	(void)send_keys_conf(pk[0]);
	(void)send_net_conf(pn[0]);

	evutil_make_socket_nonblocking(pk[0]);
	evutil_make_socket_nonblocking(pn[0]);
	P.keys.bev = bufferevent_socket_new(P.base, pk[0], BEV_OPT_CLOSE_ON_FREE);
	P.net.bev = bufferevent_socket_new(P.base, pn[0], BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(P.keys.bev, child_read_cb, NULL, child_event_cb, &P.keys);
	bufferevent_setcb(P.net.bev, child_read_cb, NULL, child_event_cb, &P.net);
	bufferevent_enable(P.keys.bev, EV_READ);
	bufferevent_enable(P.net.bev, EV_READ);
	P.started_children_ms = cc_now_ms();

	struct timeval tv = { PARENT_READY_TIMEOUT_S, 0 };
	evtimer_add(P.ready_ev, &tv);
}

static void
both_ready(void)
{
	char status[256];

	evtimer_del(P.ready_ev);
	snprintf(status, sizeof(status), "running: keys pid %d, net pid %d", (int)P.keys.pid,
	    (int)P.net.pid);
	sd_notifyf(0, "READY=1\nSTATUS=%s\nMAINPID=%d", status, (int)getpid());
	if (!P.announced) {
		cc_event_emit(CC_EV_SERVICE_STARTED, NULL, "version", CC_VERSION,
		    "keysPid", status, NULL);
		P.announced = 1;
	}
	cc_log_info("%s", status);
}

/* A child broke the protocol: it is buggy or compromised; kill it and let supervision act. */
static void
child_protocol_error(struct child *c, uint16_t type, const char *why)
{
	cc_log_err("malformed message from %s (type %s): %s; killing it", c->role,
	    cc_msg_type_name(type), why);
	if (c->pid > 0)
		kill(c->pid, SIGKILL);
	if (c->bev != NULL)
		bufferevent_disable(c->bev, EV_READ);
}

static void
child_read_cb(struct bufferevent *bev, void *arg)
{
	struct child *c = arg;
	struct cc_frame f;
	const char *why;
	int r;

	while ((r = cc_chan_take(bufferevent_get_input(bev), &f, &why)) == 1) {
		switch (f.msg.type) {
		case CC_MSG_READY: {
			struct cc_ready rd;
			if (cc_dec_ready(&f.msg, &rd, &why) == -1 || strcmp(rd.role, c->role) != 0) {
				child_protocol_error(c, f.msg.type, why ? why : "wrong role");
				cc_frame_free(&f);
				return;
			}
			c->ready = 1;
			cc_log_info("%s is ready (pid %u)", c->role, rd.pid);
			if (P.net.ready && P.keys.ready)
				both_ready();
			break;
		}
		case CC_MSG_EVENT: {
			struct cc_event_msg ev;
			if (cc_dec_event(&f.msg, &ev, &why) == -1 ||
			    cc_event_validate(&ev, &why) == -1) {
				child_protocol_error(c, f.msg.type, why);
				cc_frame_free(&f);
				return;
			}
			/* The role is the one the parent started, whatever the child claims. */
			ev.role = c->role;
			(void)cc_event_sinks_write(&ev);
			break;
		}
		default:
			if (parent_ctl_reply(c, &f) == -1) {
				child_protocol_error(c, f.msg.type, "unexpected message type");
				cc_frame_free(&f);
				return;
			}
		}
		cc_frame_free(&f);
	}
	if (r == -1)
		child_protocol_error(c, 0, why);
}

static void
child_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct child *c = arg;

	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		/* The process is going or gone; SIGCHLD reaps it and decides. */
		if (!P.stopping && !P.reloading)
			cc_log_warn("%s closed its channel", c->role);
		bufferevent_free(c->bev);
		c->bev = NULL;
		c->ready = 0;
		parent_ctl_child_gone(c);
	}
}

static void
restart_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd; (void)what; (void)arg;
	if (!P.stopping)
		start_children();
}

/* Counts restarts in the window; 1 when the daemon should give up. */
static int
crash_loop(void)
{
	uint64_t now = cc_now_ms(), window = (uint64_t)P.cfg.daemon.restart_window_s * 1000;
	size_t kept = 0;

	for (size_t i = 0; i < P.nrestart; i++)
		if (now - P.restart_ms[i] < window)
			P.restart_ms[kept++] = P.restart_ms[i];
	P.nrestart = kept;
	if (P.nrestart < sizeof(P.restart_ms) / sizeof(P.restart_ms[0]))
		P.restart_ms[P.nrestart++] = now;
	return P.nrestart > P.cfg.daemon.restart_max;
}

static void
both_gone(void)
{
	struct timeval tv = { 0, 0 };
	unsigned backoff;

	/* The pair is gone: the SIGKILL deadline of stopping it must not hit the next pair. */
	evtimer_del(P.kill_ev);
	child_reset(&P.net);
	child_reset(&P.keys);
	if (P.stopping) {
		event_base_loopexit(P.base, NULL);
		return;
	}
	if (P.reloading) {
		P.reloading = 0;
		event_active(P.restart_ev, EV_TIMEOUT, 0);
		return;
	}
	if (crash_loop()) {
		cc_log_err("crash loop: the roles failed %zu times within %u s (restart_max %u); "
		    "certconnd stops. Look at the lines above for the cause.", P.nrestart,
		    P.cfg.daemon.restart_window_s, P.cfg.daemon.restart_max);
		cc_event_emit(CC_EV_SERVICE_CRASH_LOOP_FAILURE, NULL, "restarts",
		    P.crash_detail, NULL);
		sd_notifyf(0, "STATUS=crash loop: roles failed %zu times in %u s", P.nrestart,
		    P.cfg.daemon.restart_window_s);
		P.exit_status = 1;
		event_base_loopexit(P.base, NULL);
		return;
	}
	/* Exponential backoff: 1 s, 2 s, 4 s ... up to 30 s, by restarts within the window. */
	backoff = 1u << (P.nrestart > 5 ? 5 : P.nrestart - 1);
	if (backoff > 30)
		backoff = 30;
	tv.tv_sec = backoff;
	cc_log_info("restarting keys and net in %u s", backoff);
	evtimer_add(P.restart_ev, &tv);
}

static void
sigchld_cb(evutil_socket_t sig, short what, void *arg)
{
	pid_t pid;
	int status;
	char buf[128];

	(void)sig; (void)what; (void)arg;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct child *c = pid == P.net.pid ? &P.net : pid == P.keys.pid ? &P.keys : NULL;
		struct child *other;

		if (c == NULL)
			continue;
		c->pid = -1;
		other = c == &P.net ? &P.keys : &P.net;
		if (!P.stopping && !P.reloading) {
			exit_text(status, buf, sizeof(buf));
			cc_log_err("%s (pid %d) %s", c->role, (int)pid, buf);
			snprintf(P.crash_detail, sizeof(P.crash_detail), "%s %s", c->role, buf);
			if (c == &P.net)
				P.net_restarts++;
			else
				P.keys_restarts++;
			cc_event_emit(CC_EV_ROLE_PROCESS_FAILED, NULL, "role", c->role, "exit", buf, NULL);
			/* The peer's channels to it are dead: restart the pair. */
			if (other->pid > 0)
				kill(other->pid, SIGTERM);
		}
		if (P.net.pid <= 0 && P.keys.pid <= 0)
			both_gone();
	}
}

static void
kill_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd; (void)what; (void)arg;
	if (P.net.pid > 0)
		kill(P.net.pid, SIGKILL);
	if (P.keys.pid > 0)
		kill(P.keys.pid, SIGKILL);
}

static void
stop_children(void)
{
	struct timeval tv = { 5, 0 };
	struct cc_wbuf w;

	for (int i = 0; i < 2; i++) {
		struct child *c = i ? &P.net : &P.keys;
		if (c->pid <= 0)
			continue;
		if (c->bev != NULL && cc_enc_empty(&w, CC_MSG_SHUTDOWN, 0) == 0)
			send_frame(c->bev, &w);
		kill(c->pid, SIGTERM);
	}
	evtimer_add(P.kill_ev, &tv);
	if (P.net.pid <= 0 && P.keys.pid <= 0)
		both_gone();
}

static void
sigterm_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)what; (void)arg;
	if (P.stopping)
		return;
	cc_log_info("signal %d: stopping", (int)sig);
	sd_notify(0, "STOPPING=1");
	P.stopping = 1;
	evtimer_del(P.restart_ev);
	stop_children();
}

static void
sighup_cb(evutil_socket_t sig, short what, void *arg)
{
	struct cc_config ncfg;
	char err[1024];

	(void)sig; (void)what; (void)arg;
	if (P.stopping)
		return;
	memset(&ncfg, 0, sizeof(ncfg));
	if (cc_config_load(P.config_path, &ncfg, err, sizeof(err)) == -1) {
		cc_log_err("SIGHUP: the new configuration is not valid, keeping the running one: %s",
		    err);
		cc_event_emit(CC_EV_CONFIG_RELOAD_FAILURE, NULL, "error", err, NULL);
		return;
	}
	cc_config_free(&P.cfg);
	P.cfg = ncfg;
	if (pin_load(&P.cfg) == -1)
		cc_log_err("SIGHUP: keeping the PIN read at start");
	parent_open_sinks();
	(void)net_state_dir();
	cc_log_info("SIGHUP: configuration reloaded from %s; restarting keys and net",
	    P.config_path);
	cc_event_emit(CC_EV_CONFIG_RELOAD_SUCCESS, NULL, "path", P.config_path, NULL);
	sd_notify(0, "RELOADING=1");
	P.reloading = 1;
	stop_children();
}

void
parent_open_sinks(void)
{
	struct cc_event_sinks_conf sc = {
		.dir = P.cfg.log.dir, .max_bytes = P.cfg.log.max_bytes, .keep = P.cfg.log.keep,
		.journald = P.cfg.log.journald, .debug_mask = P.cfg.log.debug_mask,
	};

	if (cc_event_sinks_open(&sc) == -1) {
		cc_log_err("cannot open the event log in %s; events go to journald only",
		    P.cfg.log.dir ? P.cfg.log.dir : "(none)");
		sc.dir = NULL;
		sc.journald = 1;
		(void)cc_event_sinks_open(&sc);
	}
}

struct parent *
parent_get(void)
{
	return &P;
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: certconnd [-n] [-v] [-c config]\n"
	    "  -c, --config PATH  configuration file (default %s)\n"
	    "  -n, --check        check the configuration and exit\n"
	    "  -v, --verbose      debug diagnostics on stderr\n"
	    "  -V, --version      print the version and exit\n",
	    CC_CONFIG_DEFAULT_PATH);
}

int
parent_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 'n' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char err[1024], port[8];
	int ch, check = 0, verbose = 0;
	struct event *sigs[5];

	memset(&P, 0, sizeof(P));
	P.config_path = CC_CONFIG_DEFAULT_PATH;
	P.listen_fd = -1;
	P.listen_tls_fd = -1;
	while ((ch = getopt_long(argc, argv, "c:nvVh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': P.config_path = optarg; break;
		case 'n': check = 1; break;
		case 'v': verbose = 1; break;
		case 'V': printf("certconnd %s\n", CC_VERSION); return 0;
		case 'h': usage(); return 0;
		default: usage(); return 2;
		}
	}
	if (optind != argc) {
		usage();
		return 2;
	}
	cc_log_init("certconnd", "parent", verbose);
	P.net.role = "net";
	P.keys.role = "keys";

	if (cc_config_load(P.config_path, &P.cfg, err, sizeof(err)) == -1) {
		fprintf(stderr, "certconnd: %s\n", err);
		return 1;
	}
	if (check) {
		printf("%s: configuration OK\n", P.config_path);
		cc_config_free(&P.cfg);
		return 0;
	}
	signal(SIGPIPE, SIG_IGN);
	if (pin_load(&P.cfg) == -1)
		return 1;
	parent_open_sinks();
	snprintf(port, sizeof(port), "%u", (unsigned)P.cfg.net.port);
	P.listen_fd = listen_open(P.cfg.net.host, port);
	if (P.listen_fd == -1)
		return 1;
	if (P.cfg.net.listen_tls[0] != '\0') {
		snprintf(port, sizeof(port), "%u", (unsigned)P.cfg.net.tls_port);
		P.listen_tls_fd = listen_open(P.cfg.net.tls_host, port);
		if (P.listen_tls_fd == -1)
			return 1;
	}
	P.ctl_fd = ctl_open(P.cfg.daemon.control_socket);
	if (P.ctl_fd == -1 || net_state_dir() == -1)
		return 1;

	P.base = event_base_new();
	if (P.base == NULL)
		cc_fatal("event_base_new failed");
	sigs[0] = evsignal_new(P.base, SIGTERM, sigterm_cb, NULL);
	sigs[1] = evsignal_new(P.base, SIGINT, sigterm_cb, NULL);
	sigs[2] = evsignal_new(P.base, SIGHUP, sighup_cb, NULL);
	sigs[3] = evsignal_new(P.base, SIGCHLD, sigchld_cb, NULL);
	sigs[4] = NULL;
	for (int i = 0; i < 4; i++)
		event_add(sigs[i], NULL);
	P.restart_ev = evtimer_new(P.base, restart_cb, NULL);
	P.kill_ev = evtimer_new(P.base, kill_timer_cb, NULL);
	P.ready_ev = evtimer_new(P.base, ready_timeout_cb, NULL);
	if (parent_ctl_start(P.base, P.ctl_fd) == -1)
		return 1;
	P.started_ms = cc_now_ms();
	P.exit_status = 0;

	start_children();
	event_base_dispatch(P.base);

	cc_log_info("stopped");
	if (!P.exit_status)
		cc_event_emit(CC_EV_SERVICE_STOPPED, NULL, NULL);
	parent_ctl_stop();
	(void)unlink(P.cfg.daemon.control_socket);
	for (int i = 0; i < 4; i++)
		event_free(sigs[i]);
	event_free(P.restart_ev);
	event_free(P.kill_ev);
	event_free(P.ready_ev);
	child_reset(&P.net);
	child_reset(&P.keys);
	event_base_free(P.base);
	close(P.listen_fd);
	if (P.listen_tls_fd != -1)
		close(P.listen_tls_fd);
	pin_wipe();
	cc_event_sinks_close();
	cc_config_free(&P.cfg);
	return P.exit_status;
}
