/*
 * The dev appliance's certconn-hub (certconnctl dev up / down). Everything lives under
 * DIR/hub: its own SoftHSM2 token (the hub CA key), config, TLS certificate, admin token,
 * database and log. `dev up` writes net.service into the connector's config (dev_hub_config,
 * before certconnd starts: the hub CA must exist for the config to load), then starts the
 * hub on loopback, registers the dev connector with a one-time enrollment token and waits
 * for its first health message.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cjson/cJSON.h>
#include <openssl/rand.h>

#include "certconn/config_service.h"
#include "certconn/util.h"
#include "ctl.h"

#define HUB_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define HUB_READY_S 30
#define HUB_HEALTH_WAIT_S 25

static void
hp(char *out, size_t len, const char *dir, const char *name)
{
	snprintf(out, len, "%s/hub/%s", dir, name);
}

static int
exists(const char *p)
{
	return access(p, F_OK) == 0;
}

static int
put_file(const char *p, const char *text, mode_t mode)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	size_t n = strlen(text);

	if (fd == -1 || write(fd, text, n) != (ssize_t)n) {
		fprintf(stderr, "certconnctl: cannot write %s: %s\n", p, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	return close(fd);
}

static char *
get_file(const char *p)
{
	uint8_t *buf;
	size_t len;

	if (cc_read_file(p, 1 << 16, &buf, &len) == -1)
		return NULL;
	buf[strcspn((char *)buf, "\r\n")] = '\0';
	return (char *)buf;
}

/*
 * Runs certconn-hub with args; its stdout goes to out (when not NULL, else to ours), its
 * stderr to log (when not NULL). Returns the exit status, -1 if it did not run.
 */
static int
run_hub(const char *const *args, char *out, size_t outlen, const char *log)
{
	const char *argv[16];
	int pfd[2] = { -1, -1 }, st;
	size_t n = 0, got = 0;
	pid_t pid;

	argv[n++] = ctl_sibling_exe("certconn-hub", "CERTCONN_HUB");
	for (size_t i = 0; args[i] != NULL && n < 15; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	if (out != NULL && pipe(pfd) == -1)
		return -1;
	fflush(stdout); /* our lines before the child's */
	pid = fork();
	if (pid == -1)
		return -1;
	if (pid == 0) {
		if (out != NULL) {
			dup2(pfd[1], 1);
			close(pfd[0]);
		}
		if (log != NULL) {
			/* with a log and no capture, the child's chatter goes to the log only */
			int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0640);
			if (fd != -1) {
				dup2(fd, 2);
				if (out == NULL)
					dup2(fd, 1);
			}
		}
		close_range(3, ~0U, 0); /* nothing of ours leaks into the hub */
		execvp(argv[0], (char *const *)argv);
		fprintf(stderr, "certconnctl: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	if (out != NULL) {
		ssize_t r;

		close(pfd[1]);
		while (got + 1 < outlen && (r = read(pfd[0], out + got, outlen - 1 - got)) > 0)
			got += (size_t)r;
		out[got] = '\0';
		close(pfd[0]);
	}
	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static unsigned
free_port(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	unsigned port = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd != -1 && bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
		port = ntohs(sin.sin_port);
	if (fd != -1)
		close(fd);
	return port;
}

static int
random_hex(char *out, size_t bytes)
{
	unsigned char r[32];

	if (bytes > sizeof(r) || RAND_bytes(r, (int)bytes) != 1)
		return -1;
	for (size_t i = 0; i < bytes; i++)
		snprintf(out + 2 * i, 3, "%02x", r[i]);
	explicit_bzero(r, sizeof(r));
	return 0;
}

/* The hub's files and its CA (idempotent). *port gets the hub's port. */
static int
hub_prepare(const char *dir, unsigned *port)
{
	char p[PATH_MAX], q[PATH_MAX], text[8192], log[PATH_MAX], so[64];
	char *s;
	cJSON *c, *o, *v, *vs;
	char today[16];
	time_t now = time(NULL);
	struct tm tm;
	const char *args[] = { "init", "-c", q, "--so-pin-file", p, NULL };

	snprintf(p, sizeof(p), "%s/hub", dir);
	mkdir(p, 0755);
	hp(p, sizeof(p), dir, "tokens");
	mkdir(p, 0700);
	hp(p, sizeof(p), dir, "port");
	s = get_file(p);
	*port = s != NULL ? (unsigned)atoi(s) : 0;
	free(s);
	if (*port == 0) {
		*port = free_port();
		snprintf(text, sizeof(text), "%u\n", *port);
		if (*port == 0 || put_file(p, text, 0644) == -1)
			return -1;
	}
	hp(p, sizeof(p), dir, "softhsm2.conf");
	if (!exists(p)) {
		snprintf(text, sizeof(text), "directories.tokendir = %s/hub/tokens\n"
		    "objectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", dir);
		if (put_file(p, text, 0644) == -1)
			return -1;
	}
	hp(p, sizeof(p), dir, "so-pin");
	if (!exists(p) && (random_hex(so, 12) == -1 || put_file(p, so, 0600) == -1))
		return -1;
	hp(q, sizeof(q), dir, "hub.json");
	if (!exists(q)) {
		gmtime_r(&now, &tm);
		strftime(today, sizeof(today), "%Y-%m-%d", &tm);
		c = cJSON_CreateObject();
		snprintf(text, sizeof(text), "127.0.0.1:%u", *port);
		cJSON_AddStringToObject(c, "listen", text);
		hp(text, sizeof(text), dir, "state");
		cJSON_AddStringToObject(c, "state_dir", text);
		o = cJSON_AddObjectToObject(c, "tls");
		hp(text, sizeof(text), dir, "tls.pem");
		cJSON_AddStringToObject(o, "cert", text);
		hp(text, sizeof(text), dir, "tls.key");
		cJSON_AddStringToObject(o, "key", text);
		o = cJSON_AddObjectToObject(c, "ca");
		cJSON_AddStringToObject(o, "module", HUB_MODULE);
		v = cJSON_AddObjectToObject(o, "env");
		hp(text, sizeof(text), dir, "softhsm2.conf");
		cJSON_AddStringToObject(v, "SOFTHSM2_CONF", text);
		cJSON_AddStringToObject(o, "key", "pkcs11:token=certconn-hub;object=hub-ca");
		hp(text, sizeof(text), dir, "pin");
		cJSON_AddStringToObject(o, "pin_file", text);
		hp(text, sizeof(text), dir, "ca.pem");
		cJSON_AddStringToObject(o, "cert", text);
		hp(text, sizeof(text), dir, "admin-token");
		cJSON_AddStringToObject(c, "admin_token_file", text);
		cJSON_AddNumberToObject(c, "health_interval_s", 15);
		o = cJSON_AddObjectToObject(c, "lifecycle");
		vs = cJSON_AddArrayToObject(o, "versions");
		v = cJSON_CreateObject();
		cJSON_AddStringToObject(v, "version", CC_VERSION);
		cJSON_AddStringToObject(v, "released", today);
		cJSON_AddItemToArray(vs, v);
		s = cJSON_Print(c);
		cJSON_Delete(c);
		if (s == NULL || put_file(q, s, 0644) == -1) {
			free(s);
			return -1;
		}
		free(s);
	}
	hp(log, sizeof(log), dir, "hub.log");
	hp(p, sizeof(p), dir, "so-pin");
	if (run_hub(args, NULL, 0, log) != 0) {
		fprintf(stderr, "certconnctl: certconn-hub init failed (see %s)\n", log);
		return -1;
	}
	return 0;
}

/* On failure net gets no service section (and dev up's dev_hub_up says why again). */
int
dev_hub_config(const char *dir, cJSON *net)
{
	cJSON *s, *f;
	char url[128], ca[PATH_MAX];
	unsigned port;

	if (hub_prepare(dir, &port) == -1)
		return -1;
	/*
	 * net drops to its own user before it applies Landlock, and Landlock leaves out a path
	 * that user cannot reach: with DIR/state at 0750 root, net's own state directory
	 * (DIR/state/net, where its client certificate lives) would be out of its reach.
	 * Others may pass through DIR/state (not list it).
	 */
	{
		char st[PATH_MAX];
		snprintf(st, sizeof(st), "%s/state", dir);
		if (chmod(st, 0751) == -1 && errno != ENOENT)
			fprintf(stderr, "certconnctl: chmod %s: %s\n", st, strerror(errno));
	}
	s = cJSON_AddObjectToObject(net, "service");
	cJSON_AddStringToObject(s, "mode", "hub");
	snprintf(url, sizeof(url), "https://127.0.0.1:%u", port);
	cJSON_AddStringToObject(s, "url", url);
	hp(ca, sizeof(ca), dir, "ca.pem");
	cJSON_AddStringToObject(s, "ca_file", ca);
	f = cJSON_AddArrayToObject(s, "features");
	for (uint32_t bit = 1; bit <= CC_FEATURE_SCEP; bit <<= 1)
		cJSON_AddItemToArray(f, cJSON_CreateString(cc_service_feature_name(bit)));
	cJSON_AddNumberToObject(s, "health_interval_s", 15);
	cJSON_AddNumberToObject(s, "poll_interval_s", 5);
	return 0;
}

static pid_t
hub_pid(const char *dir)
{
	char p[PATH_MAX];
	char *s;
	long pid;

	hp(p, sizeof(p), dir, "hub.pid");
	s = get_file(p);
	if (s == NULL)
		return 0;
	pid = strtol(s, NULL, 10);
	free(s);
	return pid > 1 && kill((pid_t)pid, 0) == 0 ? (pid_t)pid : 0;
}

static int
hub_start(const char *dir)
{
	char conf[PATH_MAX], ready[PATH_MAX], log[PATH_MAX], pidf[PATH_MAX], text[32];
	pid_t pid;
	int st;

	hp(conf, sizeof(conf), dir, "hub.json");
	hp(ready, sizeof(ready), dir, "ready");
	hp(log, sizeof(log), dir, "hub.log");
	hp(pidf, sizeof(pidf), dir, "hub.pid");
	unlink(ready);
	pid = fork();
	if (pid == -1)
		return -1;
	if (pid == 0) {
		int lfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
		int nfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		const char *exe = ctl_sibling_exe("certconn-hub", "CERTCONN_HUB");

		setsid();
		if (lfd == -1 || nfd == -1 || dup2(nfd, 0) == -1 || dup2(lfd, 1) == -1 ||
		    dup2(lfd, 2) == -1)
			_exit(127);
		/* The hub outlives us: it must not hold our caller's descriptors open. */
		close_range(3, ~0U, 0);
		execlp(exe, exe, "serve", "-c", conf, "--ready-file", ready, (char *)NULL);
		_exit(127);
	}
	snprintf(text, sizeof(text), "%d\n", (int)pid);
	if (put_file(pidf, text, 0644) == -1)
		return -1;
	for (int i = 0; i < HUB_READY_S * 10; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid) {
			fprintf(stderr, "certconnctl: certconn-hub exited; see %s\n", log);
			unlink(pidf);
			return -1;
		}
		if (exists(ready))
			return 0;
		usleep(100000);
	}
	fprintf(stderr, "certconnctl: certconn-hub did not become ready; see %s\n", log);
	kill(pid, SIGTERM);
	return -1;
}

/* Whether the hub has had a health message from the dev connector yet. */
static int
hub_has_health(const char *conf)
{
	const char *args[] = { "admin", "-c", conf, "--json", "connectors", NULL };
	char out[65536];
	cJSON *j, *c;
	int ok = 0;

	if (run_hub(args, out, sizeof(out), NULL) != 0)
		return 0;
	j = cJSON_Parse(out);
	cJSON_ArrayForEach(c, cJSON_GetObjectItem(j, "value"))
		if (cJSON_IsString(cJSON_GetObjectItem(c, "lastHealthUtc")))
			ok = 1;
	cJSON_Delete(j);
	return ok;
}

int
dev_hub_up(const char *dir, char *hub_url, size_t len)
{
	char conf[PATH_MAX], ready[PATH_MAX], ca[PATH_MAX], cert[PATH_MAX], cfg[PATH_MAX];
	char log[PATH_MAX], out[4096], *url = NULL;
	const char *tenant[] = { "admin", "-c", conf, "tenant", "add", "dev", "--name",
		"certconn dev", NULL };
	const char *token[] = { "admin", "-c", conf, "token", "create", "--tenant", "dev",
		"--hours", "1", NULL };
	const char *list[] = { "admin", "-c", conf, "connectors", NULL };
	unsigned port;
	int ret = -1;

	if (len > 0)
		hub_url[0] = '\0';
	hp(conf, sizeof(conf), dir, "hub.json");
	hp(ready, sizeof(ready), dir, "ready");
	hp(ca, sizeof(ca), dir, "ca.pem");
	hp(log, sizeof(log), dir, "hub.log");
	snprintf(cert, sizeof(cert), "%s/state/net/service/client.pem", dir);
	snprintf(cfg, sizeof(cfg), "%s/certconnd.json", dir);
	if (hub_prepare(dir, &port) == -1)
		return -1;
	if (hub_pid(dir) == 0 && hub_start(dir) == -1)
		return -1;
	url = get_file(ready);
	if (url == NULL)
		return -1;
	snprintf(hub_url, len, "%s", url);
	printf("hub       %s (pid %d, log %s/hub/hub.log)\n", url, (int)hub_pid(dir), dir);
	if (!exists(cert)) {
		/* A tenant, a one-time token, and the registration with the connector's key. */
		if (run_hub(tenant, out, sizeof(out), log) != 0 ||
		    run_hub(token, out, sizeof(out), log) != 0) {
			fprintf(stderr, "certconnctl: the hub's admin API did not answer\n");
			goto out;
		}
		out[strcspn(out, "\r\n")] = '\0';
		if (register_connector(cfg, url, out, ca, "dev-connector", 0x1f, NULL, 0) != 0)
			goto out;
		explicit_bzero(out, sizeof(out));
	}
	/* net looks for its certificate every few seconds and reports health at once. */
	for (int i = 0; i < HUB_HEALTH_WAIT_S * 2 && !hub_has_health(conf); i++)
		usleep(500000);
	(void)run_hub(list, NULL, 0, NULL);
	ret = 0;
out:
	free(url);
	return ret;
}

int
dev_hub_down(const char *dir)
{
	char pidf[PATH_MAX];
	pid_t pid = hub_pid(dir);

	hp(pidf, sizeof(pidf), dir, "hub.pid");
	if (pid == 0) {
		unlink(pidf);
		return 0;
	}
	kill(pid, SIGTERM);
	for (int i = 0; i < 100 && kill(pid, 0) == 0; i++) {
		(void)waitpid(pid, NULL, WNOHANG);
		usleep(100000);
	}
	if (kill(pid, 0) == 0)
		kill(pid, SIGKILL);
	unlink(pidf);
	printf("certconn-hub (pid %d) stopped\n", (int)pid);
	return 0;
}
