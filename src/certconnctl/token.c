/*
 * certconnctl token init: creates the key roles' key pairs in a PKCS#11 token
 * (non-extractable, sensitive, CKA_ID and labels) and prints their RFC 7512 URIs, ready to
 * paste into certconnd.json. Optionally makes the local CA's self-signed certificate.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certconn/util.h"
#include "ctl.h"
#include "hsm.h"

#define TOKEN_MAX_ROLES 8

static int
read_secret(const char *path, char **out)
{
	uint8_t *buf;
	size_t len;

	if (cc_read_file(path, 256, &buf, &len) == -1) {
		perror(path);
		return -1;
	}
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		buf[--len] = '\0';
	*out = (char *)buf;
	return 0;
}

/* "rsa:2048", "ec:P-256" */
static int
parse_spec(const char *s, struct hsm_role_spec *r)
{
	if (strncmp(s, "rsa:", 4) == 0) {
		r->alg = HSM_KEY_RSA;
		r->rsa_bits = (unsigned)strtoul(s + 4, NULL, 10);
		return r->rsa_bits >= 2048 && r->rsa_bits <= 8192 ? 0 : -1;
	}
	if (strncmp(s, "ec:", 3) == 0 && s[3] != '\0') {
		r->alg = HSM_KEY_EC;
		r->ec_curve = s + 3;
		return 0;
	}
	return -1;
}

static void
token_usage(FILE *f)
{
	fprintf(f,
	    "usage: certconnctl token init --module PATH --token LABEL --pin-file FILE\n"
	    "           [--so-pin-file FILE] [--module-env NAME=VALUE]\n"
	    "           [--roles ca,ra,client,pfx,tls] [--key ROLE=rsa:BITS|ec:CURVE]...\n"
	    "           [--ca-cert OUT.pem [--ca-subject DN] [--ca-days N]]\n");
}

int
token_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "module", required_argument, NULL, 'm' },
		{ "module-env", required_argument, NULL, 'e' },
		{ "token", required_argument, NULL, 't' },
		{ "pin-file", required_argument, NULL, 'p' },
		{ "so-pin-file", required_argument, NULL, 'P' },
		{ "roles", required_argument, NULL, 'r' },
		{ "key", required_argument, NULL, 'k' },
		{ "ca-cert", required_argument, NULL, 'C' },
		{ "ca-subject", required_argument, NULL, 'S' },
		{ "ca-days", required_argument, NULL, 'D' },
		{ NULL, 0, NULL, 0 },
	};
	struct hsm_role_spec roles[TOKEN_MAX_ROLES];
	struct hsm_role_result res[TOKEN_MAX_ROLES];
	struct hsm_token_params tp = { 0 };
	char rolebuf[256] = "ca,ra,client,pfx,tls", *save = NULL, *tok;
	char *pin = NULL, *so_pin = NULL;
	const char *pin_file = NULL, *so_pin_file = NULL, *ca_out = NULL;
	const char *ca_subject = "CN=certconn local CA,O=certconn", *keyspecs[TOKEN_MAX_ROLES];
	unsigned ca_days = 3650;
	size_t nroles = 0, nspecs = 0;
	int ch, ret = 1;

	if (argc < 2 || strcmp(argv[1], "init") != 0) {
		token_usage(stderr);
		return 2;
	}
	argc--;
	argv++;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'm': tp.module = optarg; break;
		case 'e': tp.module_env = optarg; break;
		case 't': tp.label = optarg; break;
		case 'p': pin_file = optarg; break;
		case 'P': so_pin_file = optarg; break;
		case 'r': snprintf(rolebuf, sizeof(rolebuf), "%s", optarg); break;
		case 'k':
			if (nspecs == TOKEN_MAX_ROLES) {
				token_usage(stderr);
				return 2;
			}
			keyspecs[nspecs++] = optarg;
			break;
		case 'C': ca_out = optarg; break;
		case 'S': ca_subject = optarg; break;
		case 'D': ca_days = (unsigned)strtoul(optarg, NULL, 10); break;
		default: token_usage(stderr); return 2;
		}
	}
	if (optind != argc || tp.module == NULL || tp.label == NULL || pin_file == NULL ||
	    ca_days < 1 || ca_days > 36500) {
		token_usage(stderr);
		return 2;
	}
	for (tok = strtok_r(rolebuf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		if (nroles == TOKEN_MAX_ROLES) {
			fprintf(stderr, "certconnctl: at most %d roles\n", TOKEN_MAX_ROLES);
			return 2;
		}
		roles[nroles] = (struct hsm_role_spec){ .role = tok, .alg = HSM_KEY_RSA,
			.rsa_bits = strcmp(tok, "ca") == 0 ? 3072 : 2048 };
		nroles++;
	}
	for (size_t i = 0; i < nspecs; i++) {
		const char *eq = strchr(keyspecs[i], '=');
		size_t j;

		for (j = 0; eq != NULL && j < nroles; j++)
			if (strlen(roles[j].role) == (size_t)(eq - keyspecs[i]) &&
			    strncmp(roles[j].role, keyspecs[i], (size_t)(eq - keyspecs[i])) == 0)
				break;
		if (eq == NULL || j == nroles || parse_spec(eq + 1, &roles[j]) == -1) {
			fprintf(stderr, "certconnctl: bad --key %s (ROLE=rsa:BITS or ROLE=ec:CURVE, "
			    "for a role in --roles)\n", keyspecs[i]);
			return 2;
		}
	}
	if (read_secret(pin_file, &pin) == -1)
		goto out;
	if (so_pin_file != NULL && read_secret(so_pin_file, &so_pin) == -1)
		goto out;
	tp.user_pin = pin;
	tp.so_pin = so_pin;
	tp.roles = roles;
	tp.nroles = nroles;
	if (hsm_token_init(&tp, res) == -1) {
		fprintf(stderr, "certconnctl: token init failed (see above)\n");
		goto out;
	}
	for (size_t i = 0; i < nroles; i++)
		printf("%-10s %s  (%s)\n", roles[i].role, res[i].uri,
		    res[i].created ? "created" : "existed");
	if (ca_out != NULL) {
		const char *ca_uri = NULL;
		struct hsm_ca_params cp = { 0 };

		for (size_t i = 0; i < nroles; i++)
			if (strcmp(roles[i].role, "ca") == 0)
				ca_uri = res[i].uri;
		if (ca_uri == NULL) {
			fprintf(stderr, "certconnctl: --ca-cert needs the ca role in --roles\n");
			goto out;
		}
		cp.module = tp.module;
		cp.module_env = tp.module_env;
		cp.key_uri = ca_uri;
		cp.user_pin = pin;
		cp.subject = ca_subject;
		cp.days = ca_days;
		cp.out_pem = ca_out;
		if (hsm_selfsign_ca(&cp, NULL, NULL) == -1) {
			fprintf(stderr, "certconnctl: cannot make the CA certificate\n");
			goto out;
		}
		printf("ca cert    %s\n", ca_out);
	}
	ret = 0;
out:
	if (pin != NULL)
		cc_free_secret(pin, strlen(pin) + 1);
	if (so_pin != NULL)
		cc_free_secret(so_pin, strlen(so_pin) + 1);
	return ret;
}
