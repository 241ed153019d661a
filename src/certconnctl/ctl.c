/*
 * certconnctl's control-socket commands: status, keys list, log debug, selftest.
 * Exit codes: 0 success, 1 the daemon answered with an error or is unreachable, 2 usage.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "certconn/chan.h"
#include "certconn/config.h"
#include "certconn/event.h"
#include "certconn/proto.h"
#include "certconn/util.h"
#include "ctl.h"

#define CTL_TIMEOUT_MS 60000

int
ctl_connect(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "certconnctl: control socket path too long: %s\n", path);
		return -1;
	}
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		fprintf(stderr, "certconnctl: cannot reach certconnd at %s: %s\n", path,
		    strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	return fd;
}

/* Sends w (freed) and reads the first reply into f. 0 or -1 (message printed). */
static int
ctl_call(int fd, struct cc_wbuf *w, struct cc_frame *f)
{
	int r;

	r = cc_chan_send(fd, w);
	cc_wbuf_free(w);
	if (r == -1) {
		fprintf(stderr, "certconnctl: cannot send to certconnd: %s\n", strerror(errno));
		return -1;
	}
	return ctl_next(fd, f);
}

int
ctl_next(int fd, struct cc_frame *f)
{
	const char *why = NULL;
	int r = cc_chan_recv(fd, CTL_TIMEOUT_MS, f, &why);

	if (r == 1)
		return 0;
	fprintf(stderr, "certconnctl: no answer from certconnd: %s\n",
	    r == 0 ? "connection closed" : why ? why : strerror(errno));
	return -1;
}

/* Prints a CC_MSG_ERROR reply; returns 1 (the exit code). */
static int
print_error(const struct cc_frame *f)
{
	struct cc_error e;
	const char *why;

	if (cc_dec_error(&f->msg, &e, &why) == -1) {
		fprintf(stderr, "certconnctl: malformed error from certconnd: %s\n", why);
		return 1;
	}
	fprintf(stderr, "certconnctl: %s: %s\n", cc_keys_strerror(e.code), e.text);
	return 1;
}

int
ctl_status(const char *sock, int json)
{
	struct cc_wbuf w;
	struct cc_frame f;
	struct cc_ctl_status st;
	const char *why;
	int fd, ret = 1;

	if ((fd = ctl_connect(sock)) == -1)
		return 1;
	if (cc_enc_empty(&w, CC_MSG_CTL_STATUS_REQ, 1) == -1 || ctl_call(fd, &w, &f) == -1)
		goto out;
	if (f.msg.type == CC_MSG_ERROR) {
		ret = print_error(&f);
	} else if (cc_dec_ctl_status(&f.msg, &st, &why) == -1) {
		fprintf(stderr, "certconnctl: malformed status: %s\n", why);
	} else {
		if (json)
			printf("{\"version\":\"%s\",\"state\":\"%s\",\"pids\":{\"parent\":%u,"
			    "\"net\":%u,\"keys\":%u},\"restarts\":{\"net\":%u,\"keys\":%u},"
			    "\"uptimeSeconds\":%llu}\n", st.version, st.state, st.parent_pid,
			    st.net_pid, st.keys_pid, st.net_restarts, st.keys_restarts,
			    (unsigned long long)st.uptime_s);
		else
			printf("certconnd %s: %s\n  config   %s\n  uptime   %llu s\n"
			    "  parent   pid %u\n  net      pid %u (restarts %u)\n"
			    "  keys     pid %u (restarts %u)\n", st.version, st.state, st.config_path,
			    (unsigned long long)st.uptime_s, st.parent_pid, st.net_pid,
			    st.net_restarts, st.keys_pid, st.keys_restarts);
		ret = strcmp(st.state, "running") == 0 ? 0 : 1;
	}
	cc_frame_free(&f);
out:
	close(fd);
	return ret;
}

static const char *
key_type_name(uint8_t t)
{
	return t == CC_KEY_RSA ? "RSA" : t == CC_KEY_EC ? "EC" : "-";
}

int
ctl_keys_list(const char *sock)
{
	struct cc_wbuf w;
	struct cc_frame f;
	struct cc_keys_list_item it;
	const char *why;
	char mechs[256];
	int fd, ret = 1;

	if ((fd = ctl_connect(sock)) == -1)
		return 1;
	if (cc_enc_empty(&w, CC_MSG_KEYS_LIST_REQ, 1) == -1 || ctl_call(fd, &w, &f) == -1)
		goto out;
	for (;;) {
		if (f.msg.type == CC_MSG_ERROR) {
			ret = print_error(&f);
			break;
		}
		if (f.msg.type == CC_MSG_KEYS_LIST_END) {
			ret = 0;
			break;
		}
		if (cc_dec_keys_list_item(&f.msg, &it, &why) == -1) {
			fprintf(stderr, "certconnctl: malformed keys list: %s\n", why);
			break;
		}
		cc_mech_names(it.mechs, mechs, sizeof(mechs));
		printf("%s\n  key        %s %u\n  uri        %s\n  allowed    %s\n"
		    "  sign       %s\n  decrypt    %s\n  state      %s\n", it.role,
		    key_type_name(it.key_type), it.bits, it.uri, mechs[0] ? mechs : "-",
		    it.sign_path, it.decrypt_path, it.state);
		cc_frame_free(&f);
		if (ctl_next(fd, &f) == -1)
			goto out;
	}
	cc_frame_free(&f);
out:
	close(fd);
	return ret;
}

int
ctl_debug(const char *sock, uint32_t mask, int on)
{
	struct cc_wbuf w;
	struct cc_frame f;
	struct cc_set_debug d = { mask, (uint8_t)(on != 0) };
	int fd, ret = 1;

	if ((fd = ctl_connect(sock)) == -1)
		return 1;
	if (cc_enc_set_debug(&w, CC_MSG_CTL_DEBUG_REQ, 1, &d) == -1 || ctl_call(fd, &w, &f) == -1)
		goto out;
	if (f.msg.type == CC_MSG_ERROR)
		ret = print_error(&f);
	else if (f.msg.type == CC_MSG_CTL_OK)
		ret = 0;
	cc_frame_free(&f);
out:
	close(fd);
	return ret;
}

int
ctl_selftest(const char *sock, const char *prefix)
{
	struct cc_wbuf w;
	struct cc_frame f;
	struct cc_ctl_line l;
	const char *why;
	int fd, ret = 1;

	if ((fd = ctl_connect(sock)) == -1)
		return 1;
	if (cc_enc_empty(&w, CC_MSG_CTL_DEMO_REQ, 1) == -1 || ctl_call(fd, &w, &f) == -1)
		goto out;
	for (;;) {
		if (f.msg.type == CC_MSG_ERROR) {
			ret = print_error(&f);
			break;
		}
		if (f.msg.type == CC_MSG_CTL_OK) {
			ret = 0;
			break;
		}
		if (cc_dec_ctl_line(&f.msg, &l, &why) == -1) {
			fprintf(stderr, "certconnctl: malformed self-test line: %s\n", why);
			break;
		}
		printf("%s%s\n", prefix, l.text);
		fflush(stdout);
		cc_frame_free(&f);
		if (ctl_next(fd, &f) == -1)
			goto out;
	}
	cc_frame_free(&f);
out:
	close(fd);
	return ret;
}

const char *
ctl_sibling_exe(const char *name, const char *env_var)
{
	static char p[PATH_MAX];
	const char *self = cc_self_exe(), *env = getenv(env_var);
	char *slash;

	if (env != NULL && env[0] != '\0')
		return env;
	if (self != NULL) {
		snprintf(p, sizeof(p), "%s", self);
		slash = strrchr(p, '/');
		if (slash != NULL) {
			snprintf(slash + 1, sizeof(p) - (size_t)(slash + 1 - p), "%s", name);
			if (access(p, X_OK) == 0)
				return p;
		}
	}
	return name;
}
