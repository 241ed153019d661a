/*
 * certconnctl dev up | down | demo [--dir DIR]: a whole appliance on loopback for
 * development and demos. `up` creates what is missing under DIR (default ./.dev): a SoftHSM2
 * token with every role's key, the local CA's self-signed certificate (key in the token), a
 * config; then starts certconnd in the background, waits until it is ready and writes
 * DIR/dev.json. `down` stops it. `demo` runs the self-test and prints the events it caused.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
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

#include "certconn/chan.h"
#include "certconn/config.h"
#include "certconn/proto.h"
#include "certconn/event.h"
#include "certconn/util.h"
#include "ctl.h"
#include "ctl_ca.h"
#include "hsm.h"

#define DEV_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define DEV_TOKEN "certconn"
#define DEV_READY_TIMEOUT_S 90

/* DIR is at most DEV_DIR_MAX bytes, so every path under it fits in DEV_PATH_MAX. */
#define DEV_DIR_MAX 2048
#define DEV_PATH_MAX 4096

struct dev {
	char dir[DEV_DIR_MAX];
	char p[8][DEV_PATH_MAX]; /* scratch paths */
};

static const char *const dev_roles[] = { "ca", "ra", "client", "pfx", "tls" };
#define DEV_NROLES (sizeof(dev_roles) / sizeof(dev_roles[0]))

static const char *
path(char *buf, const char *dir, const char *name)
{
	snprintf(buf, DEV_PATH_MAX, "%s/%s", dir, name);
	return buf;
}

static int
exists(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0;
}

static int
write_file(const char *p, const char *text, mode_t mode)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	size_t n = strlen(text);

	if (fd == -1 || write(fd, text, n) != (ssize_t)n || fsync(fd) == -1) {
		fprintf(stderr, "certconnctl: cannot write %s: %s\n", p, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static int
random_pin(const char *p)
{
	unsigned char r[12];
	char hex[32];

	if (exists(p))
		return 0;
	if (RAND_bytes(r, sizeof(r)) != 1)
		return -1;
	for (size_t i = 0; i < sizeof(r); i++)
		snprintf(hex + 2 * i, 3, "%02x", r[i]);
	explicit_bzero(r, sizeof(r));
	return write_file(p, hex, 0600);
}

static char *
slurp(const char *p)
{
	uint8_t *buf;
	size_t len;

	if (cc_read_file(p, 1 << 20, &buf, &len) == -1)
		return NULL;
	return (char *)buf;
}

static char *
read_pin(const char *p)
{
	char *s = slurp(p);

	if (s != NULL)
		s[strcspn(s, "\r\n")] = '\0';
	return s;
}

/* A free loopback port: the preferred one when free, else one the kernel picks. */
static unsigned
free_port(unsigned preferred)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	unsigned port = 0;
	int fd, one = 1;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (int attempt = 0; attempt < 2 && port == 0; attempt++) {
		sin.sin_port = attempt == 0 ? htons((uint16_t)preferred) : 0;
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd == -1)
			return 0;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
		    getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
			port = ntohs(sin.sin_port);
		close(fd);
	}
	return port;
}

/* Gives the token's files to the keys user, who works on them after dropping root. */
static void
chown_tree(const char *dir, uid_t uid, gid_t gid)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[PATH_MAX];

	if (chown(dir, uid, gid) == -1)
		fprintf(stderr, "certconnctl: chown %s: %s\n", dir, strerror(errno));
	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (e->d_type == DT_DIR)
			chown_tree(p, uid, gid);
		else if (chown(p, uid, gid) == -1)
			fprintf(stderr, "certconnctl: chown %s: %s\n", p, strerror(errno));
	}
	closedir(d);
}

static int
write_config(struct dev *d, const char *cfgpath, const struct hsm_role_result *res,
    unsigned port, unsigned tls_port)
{
	cJSON *root = cJSON_CreateObject(), *o, *roles, *env, *dbg;
	char listen[64], envv[DEV_PATH_MAX + 32];
	char *text;
	int r;

	o = cJSON_AddObjectToObject(root, "pkcs11");
	cJSON_AddStringToObject(o, "module", DEV_MODULE);
	env = cJSON_AddObjectToObject(o, "env");
	snprintf(envv, sizeof(envv), "%s", path(d->p[0], d->dir, "softhsm2.conf"));
	cJSON_AddStringToObject(env, "SOFTHSM2_CONF", envv);
	cJSON_AddStringToObject(o, "pin_file", path(d->p[0], d->dir, "pin"));
	cJSON_AddNumberToObject(o, "op_timeout_ms", 5000);

	o = cJSON_AddObjectToObject(root, "keys");
	roles = cJSON_AddObjectToObject(o, "roles");
	for (size_t i = 0; i < DEV_NROLES; i++) {
		cJSON *r1 = cJSON_AddObjectToObject(roles, dev_roles[i]);
		cJSON_AddStringToObject(r1, "uri", res[i].uri);
		if (strcmp(dev_roles[i], "ca") == 0) {
			cJSON_AddStringToObject(r1, "cert", path(d->p[0], d->dir, "ca.pem"));
			cJSON_AddNumberToObject(r1, "max_validity_days", 825);
			cJSON_AddBoolToObject(r1, "allow_subca", 0);
			cJSON_AddNumberToObject(r1, "max_crl_days", 30);
		}
	}

	o = cJSON_AddObjectToObject(root, "log");
	cJSON_AddStringToObject(o, "dir", path(d->p[0], d->dir, "log"));
	cJSON_AddNumberToObject(o, "max_bytes", 52428800);
	cJSON_AddNumberToObject(o, "keep", 5);
	cJSON_AddBoolToObject(o, "journald", 1);
	dbg = cJSON_AddArrayToObject(o, "debug");
	(void)dbg;

	o = cJSON_AddObjectToObject(root, "daemon");
	cJSON_AddStringToObject(o, "control_socket", path(d->p[0], d->dir, "control.sock"));
	cJSON_AddStringToObject(o, "state_dir", path(d->p[0], d->dir, "state"));

	o = cJSON_AddObjectToObject(root, "net");
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
	cJSON_AddStringToObject(o, "listen", listen);
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", tls_port);
	cJSON_AddStringToObject(o, "listen_tls", listen);
	cJSON_AddStringToObject(o, "tls_cert", path(d->p[0], d->dir, "tls.pem"));
	cJSON_AddNumberToObject(o, "keys_channels", 2);
	(void)dev_hub_config(d->dir, o); /* net.service for the dev hub (dev_hub.c) */
	if (dev_scep_config(d->dir, o) == -1) /* net.ca and net.scep (dev_scep.c) */
		return -1;
	if (dev_flows_config(d->dir, o) == -1) /* net.flows (dev_flows.c) */
		return -1;

	text = cJSON_Print(root);
	cJSON_Delete(root);
	if (text == NULL)
		return -1;
	r = write_file(cfgpath, text, 0644);
	free(text);
	return r;
}

static pid_t
read_pidfile(const char *p)
{
	char *s = slurp(p);
	long pid;

	if (s == NULL)
		return 0;
	pid = strtol(s, NULL, 10);
	free(s);
	return pid > 1 && kill((pid_t)pid, 0) == 0 ? (pid_t)pid : 0;
}

static int
write_dev_json(struct dev *d, const char *sock, const char *hub_url)
{
	cJSON *root = cJSON_CreateObject(), *pids;
	struct cc_config cfg;
	char url[128], err[1024];
	char *text;
	int fd, r = -1;
	struct cc_frame f;
	struct cc_wbuf w;
	struct cc_ctl_status st;
	const char *why;

	if (cc_config_load(path(d->p[2], d->dir, "certconnd.json"), &cfg, err, sizeof(err)) == -1) {
		fprintf(stderr, "certconnctl: %s\n", err);
		cJSON_Delete(root);
		return -1;
	}
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/scep", (unsigned)cfg.net.port);
	cJSON_AddStringToObject(root, "scep_url", url);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/health", (unsigned)cfg.net.port);
	cJSON_AddStringToObject(root, "health_url", url);
	if (cfg.net.listen_tls[0] != '\0') {
		snprintf(url, sizeof(url), "https://localhost:%u/scep", (unsigned)cfg.net.tls_port);
		cJSON_AddStringToObject(root, "scep_https_url", url);
		snprintf(url, sizeof(url), "https://localhost:%u/health", (unsigned)cfg.net.tls_port);
		cJSON_AddStringToObject(root, "health_https_url", url);
	}
	if (hub_url != NULL && hub_url[0] != '\0')
		cJSON_AddStringToObject(root, "hub_url", hub_url);
	else
		cJSON_AddNullToObject(root, "hub_url");
	cJSON_AddStringToObject(root, "softhsm2_conf", path(d->p[0], d->dir, "softhsm2.conf"));
	cJSON_AddStringToObject(root, "pkcs11_module", DEV_MODULE);
	cJSON_AddStringToObject(root, "token_label", DEV_TOKEN);
	cJSON_AddStringToObject(root, "pin_file", path(d->p[0], d->dir, "pin"));
	cJSON_AddStringToObject(root, "ca_cert", path(d->p[0], d->dir, "ca.pem"));
	cJSON_AddStringToObject(root, "config", path(d->p[0], d->dir, "certconnd.json"));
	cJSON_AddStringToObject(root, "control_socket", sock);
	cJSON_AddStringToObject(root, "log_dir", cfg.log.dir);
	cJSON_AddStringToObject(root, "daemon_log", path(d->p[0], d->dir, "certconnd.log"));
	cc_config_free(&cfg);

	pids = cJSON_AddObjectToObject(root, "pids");
	fd = ctl_connect(sock);
	if (fd == -1 || cc_enc_empty(&w, CC_MSG_CTL_STATUS_REQ, 1) == -1)
		goto out;
	if (cc_chan_send(fd, &w) == -1) {
		cc_wbuf_free(&w);
		goto out;
	}
	cc_wbuf_free(&w);
	if (ctl_next(fd, &f) == -1)
		goto out;
	if (cc_dec_ctl_status(&f.msg, &st, &why) == 0) {
		cJSON_AddNumberToObject(pids, "parent", st.parent_pid);
		cJSON_AddNumberToObject(pids, "net", st.net_pid);
		cJSON_AddNumberToObject(pids, "keys", st.keys_pid);
		r = 0;
	}
	cc_frame_free(&f);
out:
	if (fd != -1)
		close(fd);
	text = cJSON_Print(root);
	cJSON_Delete(root);
	if (text == NULL)
		return -1;
	if (write_file(path(d->p[3], d->dir, "dev.json"), text, 0644) == -1)
		r = -1;
	free(text);
	return r;
}

/* Polls the control socket until certconnd says "running". */
static int
wait_ready(const char *sock, pid_t pid)
{
	for (int i = 0; i < DEV_READY_TIMEOUT_S * 5; i++) {
		int status;
		struct cc_frame f;
		struct cc_wbuf w;
		struct cc_ctl_status st;
		const char *why;
		int fd, ok = 0;

		if (waitpid(pid, &status, WNOHANG) == pid)
			return -1;
		fd = access(sock, F_OK) == 0 ? ctl_connect(sock) : -1;
		if (fd != -1 && cc_enc_empty(&w, CC_MSG_CTL_STATUS_REQ, 1) == 0) {
			if (cc_chan_send(fd, &w) == 0 && cc_chan_recv(fd, 5000, &f, &why) == 1) {
				ok = cc_dec_ctl_status(&f.msg, &st, &why) == 0 &&
				    strcmp(st.state, "running") == 0;
				cc_frame_free(&f);
			}
			cc_wbuf_free(&w);
		}
		if (fd != -1)
			close(fd);
		if (ok)
			return 0;
		usleep(200000);
	}
	return -1;
}

static void
print_tail(const char *p, int lines)
{
	char cmd[DEV_PATH_MAX + 32];

	snprintf(cmd, sizeof(cmd), "tail -n %d '%s' >&2", lines, p);
	if (system(cmd) == -1)
		fprintf(stderr, "(see %s)\n", p);
}

static int
dev_up(struct dev *d)
{
	char conf[DEV_PATH_MAX + 256], sock[DEV_PATH_MAX], logf[DEV_PATH_MAX];
	char cfgpath[DEV_PATH_MAX], pidfile[DEV_PATH_MAX], envv[DEV_PATH_MAX + 32];
	char hub_url[512] = "";
	struct hsm_role_spec specs[DEV_NROLES];
	struct hsm_role_result res[DEV_NROLES];
	struct hsm_token_params tp = { 0 };
	struct passwd *keys_pw = NULL;
	char *pin = NULL, *so_pin = NULL;
	unsigned port = 0;
	pid_t pid;
	int ret = 1;

	path(cfgpath, d->dir, "certconnd.json");
	path(pidfile, d->dir, "certconnd.pid");
	path(sock, d->dir, "control.sock");
	path(logf, d->dir, "certconnd.log");
	if ((pid = read_pidfile(pidfile)) != 0) {
		printf("certconnd is already running (pid %d) in %s\n", (int)pid, d->dir);
		if (dev_hub_up(d->dir, hub_url, sizeof(hub_url)) == -1)
			return 1;
		return write_dev_json(d, sock, hub_url) == 0 ? 0 : 1;
	}

	/* 1. SoftHSM2 configuration and PINs. */
	mkdir(path(d->p[0], d->dir, "tokens"), 0700);
	mkdir(path(d->p[0], d->dir, "log"), 0750);
	mkdir(path(d->p[0], d->dir, "state"), 0750);
	snprintf(conf, sizeof(conf), "directories.tokendir = %s/tokens\nobjectstore.backend = file\n"
	    "log.level = ERROR\nslots.removable = false\n", d->dir);
	if (write_file(path(d->p[0], d->dir, "softhsm2.conf"), conf, 0644) == -1 ||
	    random_pin(path(d->p[1], d->dir, "pin")) == -1 ||
	    random_pin(path(d->p[2], d->dir, "so-pin")) == -1)
		goto out;
	pin = read_pin(d->p[1]);
	so_pin = read_pin(d->p[2]);
	if (pin == NULL || so_pin == NULL)
		goto out;

	/* 2. The token and every role's key pair (kept when they exist). */
	snprintf(envv, sizeof(envv), "SOFTHSM2_CONF=%s/softhsm2.conf", d->dir);
	for (size_t i = 0; i < DEV_NROLES; i++)
		specs[i] = (struct hsm_role_spec){ .role = dev_roles[i], .alg = HSM_KEY_RSA,
			.rsa_bits = strcmp(dev_roles[i], "ca") == 0 ? 3072 : 2048 };
	tp.module = DEV_MODULE;
	tp.module_env = envv;
	tp.label = DEV_TOKEN;
	tp.so_pin = so_pin;
	tp.user_pin = pin;
	tp.roles = specs;
	tp.nroles = DEV_NROLES;
	printf("token     %s in %s/tokens\n", DEV_TOKEN, d->dir);
	if (hsm_token_init(&tp, res) == -1)
		goto out;
	for (size_t i = 0; i < DEV_NROLES; i++)
		printf("  %-8s %s%s\n", dev_roles[i], res[i].uri, res[i].created ? " (new)" : "");

	/* 3. The local CA's certificate, signed by its key in the token. */
	if (!exists(path(d->p[0], d->dir, "ca.pem"))) {
		struct hsm_ca_params cp = { .module = DEV_MODULE, .module_env = envv,
			.key_uri = res[0].uri, .user_pin = pin, .subject =
			"CN=certconn dev CA,O=certconn", .days = 3650, .md = "SHA256",
			.out_pem = d->p[0] };
		if (hsm_selfsign_ca(&cp, NULL, NULL) == -1)
			goto out;
	}
	printf("ca cert   %s/ca.pem\n", d->dir);

	/* 3b. net's HTTPS certificate for the tls role's key, issued by the local CA. */
	if (!exists(path(d->p[0], d->dir, "tls.pem"))) {
		struct hsm_issue_params ip = { .module = DEV_MODULE, .module_env = envv,
			.user_pin = pin, .ca_key_uri = res[0].uri,
			.ca_cert_pem = path(d->p[1], d->dir, "ca.pem"), .key_uri = res[4].uri,
			.subject = "CN=localhost,O=certconn dev", .san =
			"DNS:localhost,IP:127.0.0.1", .eku = "serverAuth", .days = 825,
			.out_pem = d->p[0] };
		if (hsm_issue_cert(&ip) == -1)
			goto out;
	}
	printf("tls cert  %s/tls.pem (key: the tls role in the token)\n", d->dir);

	/* 4. Run as root: the roles run as their own users; keys must own the token files. */
	if (geteuid() == 0) {
		keys_pw = getpwnam("_certconn-keys");
		if (keys_pw == NULL) {
			fprintf(stderr, "certconnctl: user _certconn-keys is missing: run "
			    "scripts/install-deps\n");
			goto out;
		}
		chown_tree(path(d->p[0], d->dir, "tokens"), keys_pw->pw_uid, keys_pw->pw_gid);
		chmod(d->dir, 0755);
	}

	/* 5. The config (kept when it exists, so the port stays the same). */
	if (!exists(cfgpath)) {
		unsigned tls_port;

		port = free_port(8080);
		tls_port = free_port(8443);
		if (port == 0 || tls_port == 0 || tls_port == port ||
		    write_config(d, cfgpath, res, port, tls_port) == -1)
			goto out;
	}
	printf("config    %s\n", cfgpath);

	/* 6. Start certconnd in the background. */
	pid = fork();
	if (pid == -1)
		goto out;
	if (pid == 0) {
		int lfd = open(logf, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
		int nfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		const char *exe = ctl_sibling_exe("certconnd", "CERTCONND");

		setsid();
		if (lfd == -1 || nfd == -1 || dup2(nfd, 0) == -1 || dup2(lfd, 1) == -1 ||
		    dup2(lfd, 2) == -1)
			_exit(127);
		execl(exe, exe, "--config", cfgpath, (char *)NULL);
		fprintf(stderr, "certconnctl: cannot execute %s: %s\n", exe, strerror(errno));
		_exit(127);
	}
	snprintf(conf, sizeof(conf), "%d\n", (int)pid);
	if (write_file(pidfile, conf, 0644) == -1)
		goto out;
	if (wait_ready(sock, pid) == -1) {
		fprintf(stderr, "certconnctl: certconnd did not become ready; its log:\n");
		print_tail(logf, 40);
		kill(pid, SIGTERM);
		unlink(pidfile);
		goto out;
	}
	/* 7. The hub (when this build has it), with the connector registered to it. */
	if (dev_hub_up(d->dir, hub_url, sizeof(hub_url)) == -1)
		goto out;
	if (write_dev_json(d, sock, hub_url) == -1)
		goto out;
	printf("certconnd running (pid %d); state in %s/dev.json, log in %s\n", (int)pid, d->dir,
	    logf);
	ret = 0;
out:
	if (pin != NULL)
		cc_free_secret(pin, strlen(pin) + 1);
	if (so_pin != NULL)
		cc_free_secret(so_pin, strlen(so_pin) + 1);
	return ret;
}

static int
dev_down(struct dev *d)
{
	char pidfile[DEV_PATH_MAX];
	pid_t pid;

	path(pidfile, d->dir, "certconnd.pid");
	(void)dev_hub_down(d->dir);
	pid = read_pidfile(pidfile);
	if (pid == 0) {
		printf("certconnd is not running in %s\n", d->dir);
		unlink(pidfile);
		return 0;
	}
	kill(pid, SIGTERM);
	for (int i = 0; i < 100 && kill(pid, 0) == 0; i++) {
		(void)waitpid(pid, NULL, WNOHANG);
		usleep(100000);
	}
	if (kill(pid, 0) == 0) {
		fprintf(stderr, "certconnctl: certconnd (pid %d) did not stop in 10 s; killing it\n",
		    (int)pid);
		kill(pid, SIGKILL);
	}
	unlink(pidfile);
	printf("certconnd (pid %d) stopped\n", (int)pid);
	return 0;
}

/* Prints the events of the JSON-lines files written at or after since_us. */
static void
print_events(const char *logdir, uint64_t since_us)
{
	static const char *const files[] = { "admin.jsonl", "operational.jsonl", "debug.jsonl" };
	char p[DEV_PATH_MAX + 32], line[8192];

	for (size_t i = 0; i < 3; i++) {
		FILE *f;

		snprintf(p, sizeof(p), "%s/%s", logdir, files[i]);
		f = fopen(p, "r");
		if (f == NULL)
			continue;
		while (fgets(line, sizeof(line), f) != NULL) {
			cJSON *e = cJSON_Parse(line), *t, *id, *name, *ch, *det;
			struct tm tm = { 0 };
			char *rest, *dj = NULL;
			double usec = 0;

			if (e == NULL)
				continue;
			t = cJSON_GetObjectItem(e, "time");
			id = cJSON_GetObjectItem(e, "id");
			name = cJSON_GetObjectItem(e, "name");
			ch = cJSON_GetObjectItem(e, "channel");
			det = cJSON_GetObjectItem(e, "details");
			if (cJSON_IsString(t) && (rest = strptime(t->valuestring, "%Y-%m-%dT%H:%M:%S",
			    &tm)) != NULL) {
				usec = (double)timegm(&tm) * 1e6;
				if (*rest == '.')
					usec += strtod(rest, NULL) * 1e6;
			}
			if (usec + 1 >= (double)since_us && cJSON_IsNumber(id) && cJSON_IsString(name)) {
				dj = det != NULL ? cJSON_PrintUnformatted(det) : NULL;
				printf("  %-12s %4d %-24s %s\n", cJSON_IsString(ch) ? ch->valuestring : "?",
				    id->valueint, name->valuestring, dj != NULL ? dj : "");
				free(dj);
			}
			cJSON_Delete(e);
		}
		fclose(f);
	}
}

static int
dev_demo(struct dev *d)
{
	struct cc_config cfg;
	char err[1024], cfgpath[DEV_PATH_MAX];
	uint64_t t0 = cc_wall_us();
	int ret;

	path(cfgpath, d->dir, "certconnd.json");
	if (cc_config_load(cfgpath, &cfg, err, sizeof(err)) == -1) {
		fprintf(stderr, "certconnctl: %s\n(run `certconnctl dev up` first)\n", err);
		return 1;
	}
	printf("== certconn dev demo (%s)\n", d->dir);
	ret = ctl_status(cfg.daemon.control_socket, 0);
	if (ret == 0) {
		printf("== keys\n");
		ret = ctl_keys_list(cfg.daemon.control_socket);
	}
	if (ret == 0) {
		/* Debug on for Operational while the demo runs, so the Debug channel gets a record. */
		printf("== self-test through the keys process\n");
		(void)ctl_debug(cfg.daemon.control_socket, CC_CHAN_OPERATIONAL, 1);
		ret = ctl_selftest(cfg.daemon.control_socket, "  ");
		(void)ctl_debug(cfg.daemon.control_socket, CC_CHAN_OPERATIONAL,
		    (cfg.log.debug_mask & CC_CHAN_OPERATIONAL) != 0);
	}
	if (ret == 0)
		ret = dev_scep_demo(cfgpath, d->dir); /* a device enrolls by SCEP (dev_scep.c) */
	if (ret == 0)
		ret = dev_flows_demo(cfgpath, d->dir); /* the queued flows via the hub (dev_flows.c) */
	usleep(200000); /* the parent writes the children's events asynchronously */
	printf("== events written to %s\n", cfg.log.dir);
	print_events(cfg.log.dir, t0);
	printf("== %s\n", ret == 0 ? "demo OK" : "demo FAILED");
	cc_config_free(&cfg);
	return ret;
}

int
dev_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 },
	};
	struct dev d;
	const char *dir = "./.dev", *sub;
	int ch;

	if (argc < 2) {
		fprintf(stderr, "usage: certconnctl dev up|down|demo [--dir DIR]\n");
		return 2;
	}
	sub = argv[1];
	argc--;
	argv++;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch != 'd') {
			fprintf(stderr, "usage: certconnctl dev up|down|demo [--dir DIR]\n");
			return 2;
		}
		dir = optarg;
	}
	if (optind != argc) {
		fprintf(stderr, "usage: certconnctl dev up|down|demo [--dir DIR]\n");
		return 2;
	}
	memset(&d, 0, sizeof(d));
	if (mkdir(dir, 0755) == -1 && errno != EEXIST) {
		fprintf(stderr, "certconnctl: cannot create %s: %s\n", dir, strerror(errno));
		return 1;
	}
	{
		char real[PATH_MAX];

		if (realpath(dir, real) == NULL) {
			fprintf(stderr, "certconnctl: %s: %s\n", dir, strerror(errno));
			return 1;
		}
		if (strlen(real) >= sizeof(d.dir)) {
			fprintf(stderr, "certconnctl: %s: path too long\n", real);
			return 1;
		}
		memcpy(d.dir, real, strlen(real) + 1);
	}
	if (strcmp(sub, "up") == 0)
		return dev_up(&d);
	if (strcmp(sub, "down") == 0)
		return dev_down(&d);
	if (strcmp(sub, "demo") == 0)
		return dev_demo(&d);
	fprintf(stderr, "usage: certconnctl dev up|down|demo [--dir DIR]\n");
	return 2;
}
