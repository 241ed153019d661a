/*
 * certconn-hub: the reference control plane (certconn-hub(8), docs/hub.md).
 *
 *   certconn-hub serve -c CONFIG [--ready-file F] [-v]
 *   certconn-hub init  -c CONFIG [--so-pin-file F] [--tls-name SAN]... [--ca-key rsa|ec]
 *   certconn-hub check -c CONFIG
 *   certconn-hub admin [options] COMMAND ...      (hub_cli.c)
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "certconn/log.h"
#include "certconn/util.h"
#include "hsm.h"
#include "hub.h"
#include "hub_ca.h"
#include "hub_cli.h"
#include "hub_conf.h"
#include "hub_http.h"
#include "p11_uri.h"
#include "store.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: certconn-hub serve -c CONFIG [--ready-file FILE] [-v]\n"
	    "       certconn-hub init -c CONFIG [--so-pin-file FILE] [--tls-name SAN]... "
	    "[--ca-key rsa|ec]\n"
	    "       certconn-hub check -c CONFIG\n"
	    "       certconn-hub admin [--url URL] [--token-file FILE] [--ca FILE] [-c CONFIG] "
	    "COMMAND ...\n"
	    "(see certconn-hub(8))\n");
}

static int
write_secret_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	size_t n = strlen(text);

	if (fd == -1 || write(fd, text, n) != (ssize_t)n || write(fd, "\n", 1) != 1 ||
	    fsync(fd) == -1) {
		fprintf(stderr, "certconn-hub: cannot write %s: %s\n", path, strerror(errno));
		if (fd != -1) {
			close(fd);
			unlink(path);
		}
		return -1;
	}
	return close(fd);
}

static int
random_text(char *out, size_t bytes)
{
	unsigned char r[48];

	if (bytes > sizeof(r) || RAND_bytes(r, (int)bytes) != 1)
		return -1;
	for (size_t i = 0; i < bytes; i++)
		snprintf(out + 2 * i, 3, "%02x", r[i]);
	explicit_bzero(r, sizeof(r));
	return 0;
}

static int
exists(const char *p)
{
	return access(p, F_OK) == 0;
}

/* ---- serve ---- */

static struct event_base *serve_base;

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)what; (void)arg;
	cc_log_info("signal %d: stopping", (int)sig);
	event_base_loopexit(serve_base, NULL);
}

static int
load_admin_hash(struct hub *h, const char *path)
{
	uint8_t *buf;
	size_t len;
	unsigned int mdlen = 0;

	if (cc_read_file(path, 4096, &buf, &len) == -1) {
		cc_log_err("cannot read the admin token file %s: %s", path, strerror(errno));
		return -1;
	}
	len = strcspn((char *)buf, "\r\n");
	if (len < 16) {
		cc_log_err("the admin token in %s is shorter than 16 characters", path);
		cc_free_secret(buf, len + 1);
		return -1;
	}
	if (EVP_Digest(buf, len, h->admin_hash, &mdlen, EVP_sha256(), NULL) != 1)
		return -1;
	cc_free_secret(buf, len + 1);
	h->has_admin = true;
	return 0;
}

static int
seed_versions(struct hub *h)
{
	for (size_t i = 0; i < h->conf->nversions; i++)
		if (h->store->ops->version_put(h->store, h->conf->versions[i].version,
		    h->conf->versions[i].released) != HUB_ST_OK)
			return -1;
	return 0;
}

static int
cmd_serve(const char *config, const char *ready_file)
{
	struct hub_conf conf;
	struct hub h;
	struct hub_server srv;
	struct event *sigs[3] = { NULL, NULL, NULL };
	char err[1024], url[600];
	int ret = 1;

	memset(&h, 0, sizeof(h));
	memset(&srv, 0, sizeof(srv));
	if (hub_conf_load(config, &conf, err, sizeof(err)) == -1) {
		cc_log_err("%s", err);
		return 1;
	}
	h.conf = &conf;
	signal(SIGPIPE, SIG_IGN);
	if (mkdir(conf.state_dir, 0700) == -1 && errno != EEXIST) {
		cc_log_err("cannot create %s: %s", conf.state_dir, strerror(errno));
		goto out;
	}
	h.store = hub_store_sqlite_open(conf.db_path);
	if (h.store == NULL || seed_versions(&h) == -1 ||
	    load_admin_hash(&h, conf.admin_token_file) == -1)
		goto out;
	h.ca = hub_ca_open(conf.ca_module, conf.ca_module_env, conf.ca_key_uri,
	    conf.ca_pin_file, conf.ca_cert);
	if (h.ca == NULL)
		goto out;
	serve_base = event_base_new();
	if (serve_base == NULL ||
	    hub_server_start(&srv, serve_base, &h, hub_ca_cert(h.ca)) == -1)
		goto out;
	sigs[0] = evsignal_new(serve_base, SIGTERM, on_signal, NULL);
	sigs[1] = evsignal_new(serve_base, SIGINT, on_signal, NULL);
	for (int i = 0; i < 2; i++)
		if (sigs[i] == NULL || event_add(sigs[i], NULL) == -1)
			goto out;
	snprintf(url, sizeof(url), "https://%s%s%s:%u", strchr(conf.host, ':') ? "[" : "",
	    conf.host, strchr(conf.host, ':') ? "]" : "", (unsigned)srv.port);
	cc_log_info("serving %s (database %s, schema %d)", url, conf.db_path,
	    hub_store_sqlite_schema_version());
	if (ready_file != NULL) {
		char tmp[4096];
		FILE *f;

		snprintf(tmp, sizeof(tmp), "%s.tmp", ready_file);
		f = fopen(tmp, "w");
		if (f == NULL || fprintf(f, "%s\n", url) < 0 || fclose(f) != 0 ||
		    rename(tmp, ready_file) == -1) {
			cc_log_err("cannot write %s", ready_file);
			goto out;
		}
	}
	event_base_dispatch(serve_base);
	ret = 0;
out:
	for (int i = 0; i < 2; i++)
		if (sigs[i] != NULL)
			event_free(sigs[i]);
	hub_server_stop(&srv);
	if (serve_base != NULL)
		event_base_free(serve_base);
	hub_ca_close(h.ca);
	if (h.store != NULL)
		h.store->ops->close(h.store);
	hub_conf_free(&conf);
	return ret;
}

/* ---- init ---- */

static char *
read_line_file(const char *path)
{
	uint8_t *buf;
	size_t len;

	if (cc_read_file(path, 4096, &buf, &len) == -1) {
		fprintf(stderr, "certconn-hub: cannot read %s: %s\n", path, strerror(errno));
		return NULL;
	}
	buf[strcspn((char *)buf, "\r\n")] = '\0';
	return (char *)buf;
}

static int
init_ca(const struct hub_conf *c, const char *so_pin_file, int ec)
{
	struct p11_uri u;
	const char *why;
	char *pin = NULL, *so_pin = NULL, buf[128];
	struct hsm_role_spec spec;
	struct hsm_role_result res;
	struct hsm_token_params tp;
	struct hsm_ca_params cp;
	int ret = -1;

	if (exists(c->ca_cert)) {
		printf("ca cert   %s (kept)\n", c->ca_cert);
		return 0;
	}
	if (p11_uri_parse(c->ca_key_uri, &u, &why) == -1 || !u.has_token || !u.has_object) {
		fprintf(stderr, "certconn-hub: ca.key %s: %s\n", c->ca_key_uri,
		    why ? why : "needs token= and object=");
		return -1;
	}
	if (!exists(c->ca_pin_file)) {
		if (random_text(buf, 12) == -1 || write_secret_file(c->ca_pin_file, buf) == -1)
			return -1;
		explicit_bzero(buf, sizeof(buf));
		printf("pin       %s (new)\n", c->ca_pin_file);
	}
	pin = read_line_file(c->ca_pin_file);
	if (pin == NULL)
		goto out;
	if (so_pin_file != NULL && (so_pin = read_line_file(so_pin_file)) == NULL)
		goto out;
	spec = (struct hsm_role_spec){ .role = u.object, .alg = ec ? HSM_KEY_EC : HSM_KEY_RSA,
		.rsa_bits = 3072, .ec_curve = "P-256", .usage = HSM_USE_SIGN };
	tp = (struct hsm_token_params){ .module = c->ca_module, .module_env = c->ca_module_env,
		.label = u.token, .so_pin = so_pin, .user_pin = pin, .roles = &spec, .nroles = 1 };
	if (hsm_token_init(&tp, &res) == -1)
		goto out;
	printf("ca key    %s%s\n", res.uri, res.created ? " (new)" : "");
	cp = (struct hsm_ca_params){ .module = c->ca_module, .module_env = c->ca_module_env,
		.key_uri = res.uri, .user_pin = pin, .subject = "CN=certconn-hub CA,O=certconn",
		.days = 3650, .md = "SHA256", .out_pem = c->ca_cert };
	if (hsm_selfsign_ca(&cp, NULL, NULL) == -1)
		goto out;
	printf("ca cert   %s (new)\n", c->ca_cert);
	ret = 0;
out:
	if (pin != NULL)
		cc_free_secret(pin, strlen(pin) + 1);
	if (so_pin != NULL)
		cc_free_secret(so_pin, strlen(so_pin) + 1);
	return ret;
}

static int
init_tls(const struct hub_conf *c, const char *san)
{
	struct hub_ca *ca = NULL;
	EVP_PKEY *k = NULL;
	X509 *x = NULL;
	FILE *f = NULL;
	int fd, ret = -1;

	if (exists(c->tls_cert) && exists(c->tls_key)) {
		printf("tls       %s (kept)\n", c->tls_cert);
		return 0;
	}
	/* The TLS key is a file: evhttp's TLS needs it in this process (docs/hub.md). */
	k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	fd = open(c->tls_key, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	f = fd != -1 ? fdopen(fd, "w") : NULL;
	if (k == NULL || f == NULL || !PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL)) {
		fprintf(stderr, "certconn-hub: cannot write %s\n", c->tls_key);
		if (f == NULL && fd != -1)
			close(fd);
		goto out;
	}
	fclose(f);
	f = NULL;
	ca = hub_ca_open(c->ca_module, c->ca_module_env, c->ca_key_uri, c->ca_pin_file,
	    c->ca_cert);
	if (ca == NULL)
		goto out;
	x = hub_ca_issue_server(ca, k, "certconn-hub", san, (int64_t)time(NULL), 825);
	f = fopen(c->tls_cert, "w");
	if (x == NULL || f == NULL || !PEM_write_X509(f, x) ||
	    !PEM_write_X509(f, hub_ca_cert(ca))) {
		fprintf(stderr, "certconn-hub: cannot write %s\n", c->tls_cert);
		goto out;
	}
	printf("tls       %s (new, %s)\n", c->tls_cert, san);
	ret = 0;
out:
	if (f != NULL && fclose(f) != 0)
		ret = -1;
	X509_free(x);
	EVP_PKEY_free(k);
	hub_ca_close(ca);
	return ret;
}

static int
cmd_init(const char *config, const char *so_pin_file, const char *san, int ec)
{
	struct hub_conf conf;
	struct hub_store *st;
	char err[1024], tok[128];
	int ret = 1;

	if (hub_conf_load_ex(config, &conf, false, err, sizeof(err)) == -1) {
		fprintf(stderr, "certconn-hub: %s\n", err);
		return 1;
	}
	if (mkdir(conf.state_dir, 0700) == -1 && errno != EEXIST) {
		fprintf(stderr, "certconn-hub: cannot create %s: %s\n", conf.state_dir,
		    strerror(errno));
		goto out;
	}
	if (init_ca(&conf, so_pin_file, ec) == -1 || init_tls(&conf, san) == -1)
		goto out;
	if (!exists(conf.admin_token_file)) {
		memcpy(tok, "cca1.", 5);
		if (random_text(tok + 5, 32) == -1 ||
		    write_secret_file(conf.admin_token_file, tok) == -1)
			goto out;
		explicit_bzero(tok, sizeof(tok));
		printf("admin     %s (new)\n", conf.admin_token_file);
	} else {
		printf("admin     %s (kept)\n", conf.admin_token_file);
	}
	st = hub_store_sqlite_open(conf.db_path);
	if (st == NULL)
		goto out;
	st->ops->close(st);
	printf("database  %s (schema %d)\n", conf.db_path, hub_store_sqlite_schema_version());
	ret = 0;
out:
	hub_conf_free(&conf);
	return ret;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "ready-file", required_argument, NULL, 'r' },
		{ "so-pin-file", required_argument, NULL, 's' },
		{ "tls-name", required_argument, NULL, 't' },
		{ "ca-key", required_argument, NULL, 'k' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd, *config = NULL, *ready = NULL, *so_pin = NULL;
	char san[2048] = "";
	int ch, verbose = getenv("CERTCONN_HUB_DEBUG") != NULL, ec = 0;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	cmd = argv[1];
	if (strcmp(cmd, "admin") == 0)
		return hub_cli_main(argc - 1, argv + 1);
	if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0) {
		usage(stdout);
		return 0;
	}
	optind = 2;
	while ((ch = getopt_long(argc, argv, "c:vh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': config = optarg; break;
		case 'r': ready = optarg; break;
		case 's': so_pin = optarg; break;
		case 't':
			if (strlen(san) + strlen(optarg) + 2 >= sizeof(san)) {
				fprintf(stderr, "certconn-hub: too many --tls-name\n");
				return 2;
			}
			if (san[0] != '\0')
				strcat(san, ",");
			strcat(san, optarg);
			break;
		case 'k':
			if (strcmp(optarg, "ec") != 0 && strcmp(optarg, "rsa") != 0) {
				usage(stderr);
				return 2;
			}
			ec = strcmp(optarg, "ec") == 0;
			break;
		case 'v': verbose = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (config == NULL || optind != argc) {
		usage(stderr);
		return 2;
	}
	cc_log_init("certconn-hub", NULL, verbose);
	if (strcmp(cmd, "serve") == 0)
		return cmd_serve(config, ready);
	if (strcmp(cmd, "init") == 0)
		return cmd_init(config, so_pin, san[0] ? san :
		    "DNS:localhost,IP:127.0.0.1,IP:::1", ec);
	if (strcmp(cmd, "check") == 0) {
		struct hub_conf conf;
		char err[1024];

		if (hub_conf_load(config, &conf, err, sizeof(err)) == -1) {
			fprintf(stderr, "certconn-hub: %s\n", err);
			return 1;
		}
		printf("%s: ok\n", config);
		hub_conf_free(&conf);
		return 0;
	}
	usage(stderr);
	return 2;
}
