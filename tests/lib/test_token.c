/* Throw-away SoftHSM2 tokens for tests: see test_token.h. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "certconn/log.h"
#include "test_token.h"

const struct hsm_role_spec test_token_default_roles[] = {
	{ "ca", HSM_KEY_RSA, 2048, NULL, HSM_USE_SIGN },
	{ "ra", HSM_KEY_RSA, 2048, NULL, HSM_USE_SIGN | HSM_USE_DECRYPT },
	{ "client", HSM_KEY_EC, 0, "P-256", HSM_USE_SIGN },
	{ "pfx", HSM_KEY_RSA, 2048, NULL, HSM_USE_DECRYPT },
	{ "tls", HSM_KEY_EC, 0, "P-256", HSM_USE_SIGN },
};
const size_t test_token_default_nroles =
    sizeof(test_token_default_roles) / sizeof(test_token_default_roles[0]);

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "test_token: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	abort();
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP || flag == FTW_D)
		(void)rmdir(path);
	else
		(void)unlink(path);
	return 0;
}

void
test_rmtree(const char *path)
{
	if (path == NULL || path[0] == '\0')
		return;
	(void)nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static uid_t keys_uid;
static gid_t keys_gid;

static int
chown_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (lchown(path, keys_uid, keys_gid) == -1)
		die("chown %s: %s", path, strerror(errno));
	return 0;
}

void
test_token_chown_keys(const char *path)
{
	struct passwd *pw;

	if (geteuid() != 0)
		return;
	pw = getpwnam(TEST_KEYS_USER);
	if (pw == NULL)
		return; /* no such user here: tests that need it will say so */
	keys_uid = pw->pw_uid;
	keys_gid = pw->pw_gid;
	(void)nftw(path, chown_one, 16, FTW_PHYS);
}

static void
write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	size_t n = strlen(text);

	if (fd == -1 || write(fd, text, n) != (ssize_t)n || fchmod(fd, mode) == -1)
		die("cannot write %s: %s", path, strerror(errno));
	close(fd);
}

static void
add_roles(struct test_token *t, const struct hsm_role_spec *roles, size_t nroles)
{
	struct hsm_role_result res[TEST_TOKEN_MAX_ROLES];
	struct hsm_token_params p = {
		.module = t->module,
		.module_env = t->module_env,
		.label = t->label,
		.so_pin = t->so_pin,
		.user_pin = t->pin,
		.roles = roles,
		.nroles = nroles,
	};

	if (t->nroles + nroles > TEST_TOKEN_MAX_ROLES)
		die("too many roles");
	if (hsm_token_init(&p, res) == -1)
		die("hsm_token_init of token \"%s\" in %s failed", t->label, t->dir);
	for (size_t i = 0; i < nroles; i++) {
		struct test_token_role *r = &t->roles[t->nroles++];

		snprintf(r->name, sizeof(r->name), "%s", roles[i].role);
		memcpy(r->uri, res[i].uri, sizeof(r->uri));
		r->uri[sizeof(r->uri) - 1] = '\0';
		r->alg = res[i].alg;
		if (strcmp(roles[i].role, "ca") == 0 && t->ca_der == NULL) {
			struct hsm_ca_params ca = {
				.module = t->module,
				.module_env = t->module_env,
				.key_uri = r->uri,
				.user_pin = t->pin,
				.subject = "CN=certconn test CA,O=certconn tests",
				.days = 3650,
				.md = "SHA256",
				.out_pem = t->ca_pem,
			};

			snprintf(t->ca_pem, sizeof(t->ca_pem), "%s/ca.pem", t->dir);
			if (hsm_selfsign_ca(&ca, &t->ca_der, &t->ca_der_len) == -1)
				die("hsm_selfsign_ca for token \"%s\" failed", t->label);
		}
	}
	test_token_chown_keys(t->tokendir);
}

struct test_token *
test_token_new(const char *label, const char *pin, const struct hsm_role_spec *roles,
    size_t nroles)
{
	struct test_token *t;
	char text[512];

	if (label == NULL || strlen(label) > 32 || pin == NULL || strlen(pin) > 40)
		return NULL;
	if (roles == NULL) {
		roles = test_token_default_roles;
		nroles = test_token_default_nroles;
	}
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		die("out of memory");
	if (cc_log_role()[0] == '\0')
		cc_log_init("test", "", 0);
	snprintf(t->dir, sizeof(t->dir), "%s/cc-token-XXXXXX",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(t->dir) == NULL)
		die("mkdtemp %s: %s", t->dir, strerror(errno));
	/* The keys user must be able to walk to the conf and the token directory. */
	if (chmod(t->dir, 0711) == -1)
		die("chmod %s: %s", t->dir, strerror(errno));
	snprintf(t->conf, sizeof(t->conf), "%s/softhsm2.conf", t->dir);
	snprintf(t->tokendir, sizeof(t->tokendir), "%s/tokens", t->dir);
	snprintf(t->module_env, sizeof(t->module_env), "SOFTHSM2_CONF=%s", t->conf);
	snprintf(t->pin_file, sizeof(t->pin_file), "%s/pin", t->dir);
	t->module = TEST_SOFTHSM_MODULE;
	snprintf(t->label, sizeof(t->label), "%s", label);
	snprintf(t->pin, sizeof(t->pin), "%s", pin);
	snprintf(t->so_pin, sizeof(t->so_pin), "so-%s", pin);
	if (mkdir(t->tokendir, 0700) == -1)
		die("mkdir %s: %s", t->tokendir, strerror(errno));
	snprintf(text, sizeof(text),
	    "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n"
	    "slots.removable = false\n", t->tokendir);
	write_file(t->conf, text, 0644);
	write_file(t->pin_file, t->pin, 0600);
	add_roles(t, roles, nroles);
	return t;
}

void
test_token_add_roles(struct test_token *t, const struct hsm_role_spec *roles, size_t nroles)
{
	add_roles(t, roles, nroles);
}

const char *
test_token_uri(const struct test_token *t, const char *role)
{
	for (size_t i = 0; i < t->nroles; i++)
		if (strcmp(t->roles[i].name, role) == 0)
			return t->roles[i].uri;
	return NULL;
}

void
test_token_free(struct test_token *t)
{
	if (t == NULL)
		return;
	test_rmtree(t->dir);
	free(t->ca_der);
	explicit_bzero(t->pin, sizeof(t->pin));
	explicit_bzero(t->so_pin, sizeof(t->so_pin));
	free(t);
}
