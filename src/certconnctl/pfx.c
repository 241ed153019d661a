/*
 * certconnctl pfx: the administrators' side of imported PFX files (Intune PFX import).
 *
 *   pfx public-key [--role NAME]
 *       the connector's pfx role public key, PEM, read from the token of certconnd's config
 *       (as `register` reads the client key: the PKCS#11 module in this process; the public
 *       key object needs no login, the PIN is used only if the token hides it)
 *   pfx encrypt-password --public-key FILE [--padding OaepSha512|OaepSha384|OaepSha256]
 *       [--key-name NAME] [--password-file F]
 *       the PFX password (from F, else stdin; one trailing newline dropped) encrypted to
 *       that key in the Intune import form (cc_pkcs: RSA-OAEP, one byte per character,
 *       base64), printed as JSON {"encryptedPassword","paddingScheme","keyName"} ready for a
 *       pfx-import payload. FILE: a PEM public key (SPKI) or certificate.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "certconn/config.h"
#include "certconn/pkcs.h"
#include "certconn/util.h"
#include "ctl.h"
#include "hsm.h"

#define PFX_PASSWORD_FILE_MAX 4096

static void
pfx_usage(FILE *f)
{
	fprintf(f,
	    "usage: certconnctl [-c config] pfx public-key [--role NAME]\n"
	    "       certconnctl pfx encrypt-password --public-key FILE\n"
	    "           [--padding OaepSha512|OaepSha384|OaepSha256] [--key-name NAME]\n"
	    "           [--password-file FILE]      (default: the password on stdin)\n");
}

/* The role's public key from the token of config. 0 ok, 1 failure. */
static int
pfx_public_key(const char *config, const char *role_name)
{
	struct cc_config cfg;
	const struct cc_config_role *role = NULL;
	struct hsm *h = NULL;
	EVP_PKEY *pub = NULL;
	uint8_t *pin = NULL;
	char *pin_str = NULL;
	size_t pin_len = 0;
	char err[1024];
	int ret = 1;

	if (cc_config_load(config, &cfg, err, sizeof(err)) == -1) {
		fprintf(stderr, "certconnctl: %s\n", err);
		return 1;
	}
	for (size_t i = 0; i < cfg.keys.nroles; i++)
		if (strcmp(cfg.keys.roles[i].name, role_name) == 0)
			role = &cfg.keys.roles[i];
	if (role == NULL) {
		fprintf(stderr, "certconnctl: %s has no key role \"%s\"\n", config, role_name);
		goto out;
	}
	/* The module reads its configuration from the environment (SOFTHSM2_CONF). */
	for (size_t i = 0; i < cfg.pkcs11.nenv; i++)
		setenv(cfg.pkcs11.env[i].name, cfg.pkcs11.env[i].value, 1);
	h = hsm_open(cfg.pkcs11.module, NULL, role->uri, NULL);
	if (h != NULL)
		pub = hsm_pubkey(h, role->uri);
	if (pub == NULL) {
		/* a token that shows its public objects only to a logged-in user */
		hsm_close(h);
		h = NULL;
		if (cc_config_read_pin(&cfg, &pin, &pin_len, err, sizeof(err)) == -1) {
			fprintf(stderr, "certconnctl: %s\n", err);
			goto out;
		}
		pin_str = malloc(pin_len + 1);
		if (pin_str == NULL)
			goto out;
		memcpy(pin_str, pin, pin_len);
		pin_str[pin_len] = '\0';
		h = hsm_open(cfg.pkcs11.module, NULL, role->uri, pin_str);
		if (h == NULL || (pub = hsm_pubkey(h, role->uri)) == NULL) {
			fprintf(stderr, "certconnctl: no public key for role %s (%s)\n", role_name,
			    role->uri);
			goto out;
		}
	}
	if (!EVP_PKEY_is_a(pub, "RSA"))
		fprintf(stderr, "certconnctl: warning: the %s key is not RSA; PFX passwords are "
		    "encrypted with RSA-OAEP\n", role_name);
	if (PEM_write_PUBKEY(stdout, pub) != 1) {
		ERR_print_errors_fp(stderr);
		goto out;
	}
	ret = fflush(stdout) == 0 ? 0 : 1;
out:
	EVP_PKEY_free(pub);
	hsm_close(h);
	if (pin != NULL)
		cc_free_secret(pin, pin_len);
	if (pin_str != NULL)
		cc_free_secret(pin_str, pin_len + 1);
	cc_config_free(&cfg);
	return ret;
}

/* A PEM public key or certificate's key from path. NULL with a message. */
static EVP_PKEY *
read_public_key(const char *path)
{
	BIO *b = BIO_new_file(path, "r");
	EVP_PKEY *k = NULL;
	X509 *x = NULL;

	if (b == NULL) {
		perror(path);
		return NULL;
	}
	k = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
	if (k == NULL) {
		(void)BIO_reset(b);
		ERR_clear_error();
		x = PEM_read_bio_X509(b, NULL, NULL, NULL);
		if (x != NULL)
			k = X509_get_pubkey(x);
	}
	if (k == NULL)
		fprintf(stderr, "certconnctl: %s: neither a PEM public key nor a PEM certificate\n",
		    path);
	ERR_clear_error();
	X509_free(x);
	BIO_free(b);
	return k;
}

/* The password from path ("-" or NULL: stdin), one trailing newline dropped. */
static char *
read_password(const char *path, size_t *cap)
{
	char *buf = calloc(1, PFX_PASSWORD_FILE_MAX + 1);
	FILE *f = stdin;
	size_t n;

	*cap = PFX_PASSWORD_FILE_MAX + 1;
	if (buf == NULL)
		return NULL;
	if (path != NULL && strcmp(path, "-") != 0 && (f = fopen(path, "r")) == NULL) {
		perror(path);
		free(buf);
		return NULL;
	}
	n = fread(buf, 1, PFX_PASSWORD_FILE_MAX + 1, f);
	if (f != stdin)
		fclose(f);
	if (n > PFX_PASSWORD_FILE_MAX) {
		fprintf(stderr, "certconnctl: password over %d bytes\n", PFX_PASSWORD_FILE_MAX);
		cc_free_secret(buf, *cap);
		return NULL;
	}
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	if (n > 0 && buf[n - 1] == '\r')
		buf[--n] = '\0';
	if (n == 0 || memchr(buf, '\0', n) != NULL) {
		fprintf(stderr, "certconnctl: the password is empty or holds a NUL byte\n");
		cc_free_secret(buf, *cap);
		return NULL;
	}
	return buf;
}

static int
pfx_encrypt_password(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "public-key", required_argument, NULL, 'k' },
		{ "padding", required_argument, NULL, 'p' },
		{ "key-name", required_argument, NULL, 'n' },
		{ "password-file", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *keyfile = NULL, *padding = "OaepSha512", *key_name = "pfx", *pwfile = NULL;
	char *pw = NULL, *b64 = NULL, *json = NULL, err[1024];
	EVP_PKEY *pub = NULL;
	cJSON *o = NULL;
	size_t pwcap = 0;
	enum pkcs_err e;
	int ch, ret = 1;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'k': keyfile = optarg; break;
		case 'p': padding = optarg; break;
		case 'n': key_name = optarg; break;
		case 'f': pwfile = optarg; break;
		case 'h': pfx_usage(stdout); return 0;
		default: pfx_usage(stderr); return 2;
		}
	}
	if (keyfile == NULL || optind != argc) {
		pfx_usage(stderr);
		return 2;
	}
	if (pkcs_padding_md(padding) == NULL) {
		fprintf(stderr, "certconnctl: --padding %s: OaepSha256, OaepSha384 or OaepSha512\n",
		    padding);
		return 2;
	}
	if ((pub = read_public_key(keyfile)) == NULL)
		goto out;
	if ((pw = read_password(pwfile, &pwcap)) == NULL)
		goto out;
	e = pkcs_pfx_password_encrypt(NULL, pub, pw, padding, &b64, err, sizeof(err));
	if (e != PKCS_OK) {
		fprintf(stderr, "certconnctl: %s\n", err);
		goto out;
	}
	o = cJSON_CreateObject();
	if (o == NULL || cJSON_AddStringToObject(o, "encryptedPassword", b64) == NULL ||
	    cJSON_AddStringToObject(o, "paddingScheme", padding) == NULL ||
	    cJSON_AddStringToObject(o, "keyName", key_name) == NULL ||
	    (json = cJSON_Print(o)) == NULL) {
		fprintf(stderr, "certconnctl: out of memory\n");
		goto out;
	}
	printf("%s\n", json);
	ret = fflush(stdout) == 0 ? 0 : 1;
out:
	if (pw != NULL)
		cc_free_secret(pw, pwcap);
	OPENSSL_free(b64);
	cJSON_free(json);
	cJSON_Delete(o);
	EVP_PKEY_free(pub);
	return ret;
}

int
pfx_main(const char *config, int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "public-key") == 0) {
		const char *role = "pfx";

		if (argc == 4 && strcmp(argv[2], "--role") == 0)
			role = argv[3];
		else if (argc != 2) {
			pfx_usage(stderr);
			return 2;
		}
		return pfx_public_key(config, role);
	}
	if (argc >= 2 && strcmp(argv[1], "encrypt-password") == 0)
		return pfx_encrypt_password(argc - 1, argv + 1);
	pfx_usage(argc >= 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr);
	return argc >= 2 && strcmp(argv[1], "--help") == 0 ? 0 : 2;
}
