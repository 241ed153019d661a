/*
 * certconnctl register --hub URL --token T: registers this connector with a certconn-hub.
 * The client key is the client role's key in the token (made by `token init` or `dev up`,
 * not extractable): certconnctl, the administrator's tool, opens the token itself to sign the
 * CSR. The certificate goes where net looks for it (net.service.client_cert, by default
 * <net.state_dir>/service/client.pem), owned by net's user so that net can renew it.
 */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "certconn/config.h"
#include "certconn/config_service.h"
#include "certconn/service.h"
#include "certconn/util.h"
#include "ctl.h"
#include "hsm.h"

struct signer {
	struct hsm *h;
	const char *uri;
};

static int
sign_cb(void *arg, const uint8_t *dg, size_t dg_len, uint8_t **sig, size_t *sig_len)
{
	struct signer *s = arg;

	return hsm_sign_digest(s->h, s->uri, "SHA256", dg, dg_len, sig, sig_len);
}

static uint32_t
parse_features(const char *list)
{
	char buf[256], *save = NULL, *t;
	uint32_t mask = 0, bit;

	snprintf(buf, sizeof(buf), "%s", list);
	for (t = strtok_r(buf, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
		bit = cc_service_feature_bit(t);
		if (bit == 0) {
			fprintf(stderr, "certconnctl: unknown feature \"%s\" (pkcs, pkcs-recrypt, "
			    "pfx-import, revoke, scep)\n", t);
			return 0;
		}
		mask |= bit;
	}
	return mask;
}

/* The directory of path is created (0755) and both are given to user when root. */
static int
prepare_dir(const char *path)
{
	char tmp[4096], *dir;

	snprintf(tmp, sizeof(tmp), "%s", path);
	dir = dirname(tmp);
	if (mkdir(dir, 0755) == -1 && errno != EEXIST) {
		fprintf(stderr, "certconnctl: cannot create %s: %s\n", dir, strerror(errno));
		return -1;
	}
	return 0;
}

static void
give_to(const char *path, const char *user)
{
	struct passwd *pw;
	char tmp[4096];

	if (geteuid() != 0 || user == NULL || (pw = getpwnam(user)) == NULL)
		return;
	snprintf(tmp, sizeof(tmp), "%s", path);
	if (chown(dirname(tmp), pw->pw_uid, pw->pw_gid) == -1 ||
	    chown(path, pw->pw_uid, pw->pw_gid) == -1)
		fprintf(stderr, "certconnctl: cannot give %s to %s: %s\n", path, user,
		    strerror(errno));
}

int
register_connector(const char *config, const char *hub, const char *token, const char *ca,
    const char *name, uint32_t features, const char *cert_out, int quiet)
{
	struct service_register_params p;
	const struct cc_config_service *svc;
	const struct cc_config_role *role = NULL;
	struct cc_config cfg;
	struct signer s = { NULL, NULL };
	const char *role_name;
	char err[1024], path[4096];
	uint8_t *pin = NULL;
	size_t pin_len = 0;
	char *pin_str = NULL;
	int ret = 1;

	memset(&p, 0, sizeof(p));
	if (cc_config_load(config, &cfg, err, sizeof(err)) == -1) {
		fprintf(stderr, "certconnctl: %s\n", err);
		return 1;
	}
	svc = cfg.net.service;
	role_name = svc != NULL ? svc->client_key_role : "client";
	for (size_t i = 0; i < cfg.keys.nroles; i++)
		if (strcmp(cfg.keys.roles[i].name, role_name) == 0)
			role = &cfg.keys.roles[i];
	if (role == NULL) {
		fprintf(stderr, "certconnctl: %s has no key role \"%s\" (the client key)\n", config,
		    role_name);
		goto out;
	}
	if (hub == NULL && svc != NULL && svc->mode == CC_SERVICE_HUB)
		hub = svc->url;
	if (ca == NULL && svc != NULL)
		ca = svc->ca_file;
	if (features == 0 && svc != NULL)
		features = svc->features;
	if (hub == NULL) {
		fprintf(stderr, "certconnctl: give --hub URL (the config has no hub)\n");
		goto out;
	}
	if (features == 0) {
		fprintf(stderr, "certconnctl: give --features (net.service.features is empty)\n");
		goto out;
	}
	if (cert_out == NULL) {
		if (svc != NULL && svc->client_cert != NULL)
			snprintf(path, sizeof(path), "%s", svc->client_cert);
		else
			snprintf(path, sizeof(path), "%s/service/client.pem", cfg.net.state_dir);
		cert_out = path;
	}
	if (prepare_dir(cert_out) == -1)
		goto out;
	if (cc_config_read_pin(&cfg, &pin, &pin_len, err, sizeof(err)) == -1) {
		fprintf(stderr, "certconnctl: %s\n", err);
		goto out;
	}
	pin_str = malloc(pin_len + 1);
	if (pin_str == NULL)
		goto out;
	memcpy(pin_str, pin, pin_len);
	pin_str[pin_len] = '\0';
	/* The module reads its configuration from the environment (SoftHSM2_CONF). */
	for (size_t i = 0; i < cfg.pkcs11.nenv; i++)
		setenv(cfg.pkcs11.env[i].name, cfg.pkcs11.env[i].value, 1);
	s.h = hsm_open(cfg.pkcs11.module, NULL, role->uri, pin_str);
	s.uri = role->uri;
	if (s.h == NULL)
		goto out;
	p.pub = hsm_pubkey(s.h, role->uri);
	if (p.pub == NULL)
		goto out;
	p.hub_url = hub;
	p.token = token;
	p.ca_file = ca;
	p.sign = sign_cb;
	p.sign_arg = &s;
	p.connector_name = name;
	p.version = CC_VERSION;
	p.features = features;
	p.cert_out = cert_out;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (service_register(&p) == -1) {
		fprintf(stderr, "certconnctl: %s\n", p.error);
		curl_global_cleanup();
		goto out;
	}
	curl_global_cleanup();
	give_to(cert_out, cfg.daemon.user_net);
	if (!quiet)
		printf("registered connector %s in tenant %s; certificate in %s\n", p.connector_id,
		    p.tenant_id, cert_out);
	ret = 0;
out:
	EVP_PKEY_free(p.pub);
	hsm_close(s.h);
	if (pin != NULL)
		cc_free_secret(pin, pin_len);
	if (pin_str != NULL)
		cc_free_secret(pin_str, pin_len + 1);
	cc_config_free(&cfg);
	return ret;
}

int
register_main(const char *config, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "hub", required_argument, NULL, 'u' },
		{ "token", required_argument, NULL, 't' },
		{ "ca", required_argument, NULL, 'a' },
		{ "name", required_argument, NULL, 'n' },
		{ "features", required_argument, NULL, 'f' },
		{ "cert-out", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	const char *hub = NULL, *token = NULL, *ca = NULL, *name = NULL, *out = NULL;
	uint32_t features = 0;
	int ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'u': hub = optarg; break;
		case 't': token = optarg; break;
		case 'a': ca = optarg; break;
		case 'n': name = optarg; break;
		case 'o': out = optarg; break;
		case 'f':
			features = parse_features(optarg);
			if (features == 0)
				return 2;
			break;
		default:
			goto usage;
		}
	}
	if (optind != argc || token == NULL)
		goto usage;
	return register_connector(config, hub, token, ca, name, features, out, 0);
usage:
	fprintf(stderr, "usage: certconnctl [-c config] register --hub URL --token T [--ca FILE] "
	    "[--name NAME] [--features a,b] [--cert-out FILE]\n");
	return 2;
}
