/*
 * A throw-away SoftHSM2 token for tests: a fresh mkdtemp directory with its own
 * softhsm2.conf and token directory, a token with the given label and PINs, one key pair
 * per role (made through hsm_token_init), and, when a role is named "ca", a self-signed CA
 * certificate for it (made through hsm_selfsign_ca).
 *
 * test_token_new sets SOFTHSM2_CONF in this process's environment (SoftHSM reads it at
 * C_Initialize), so code under test that loads SoftHSM in-process finds this token. When the
 * tests run as root, the directory tree is handed to the _certconn-keys user so that a keys
 * process started with --user _certconn-keys can use the token.
 *
 * Everything lives under t->dir; test_token_free removes it. Failures abort the test with a
 * message on stderr (NULL is returned only for bad arguments).
 */
#ifndef CERTCONN_TEST_TOKEN_H
#define CERTCONN_TEST_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "hsm.h"

#define TEST_SOFTHSM_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define TEST_TOKEN_MAX_ROLES 16
#define TEST_KEYS_USER "_certconn-keys"

struct test_token_role {
	char name[32];
	char uri[512];
	enum hsm_key_alg alg;
};

struct test_token {
	char dir[256];          /* mkdtemp root; everything below is removed on free */
	char conf[320];         /* <dir>/softhsm2.conf */
	char tokendir[320];     /* <dir>/tokens */
	char module_env[340];   /* "SOFTHSM2_CONF=<conf>" (for cc_conf_keys.module_env) */
	const char *module;     /* TEST_SOFTHSM_MODULE */
	char label[33];
	char pin[64];
	char so_pin[64];
	char pin_file[320];     /* <dir>/pin, mode 0600, the user PIN without newline */
	size_t nroles;
	struct test_token_role roles[TEST_TOKEN_MAX_ROLES];
	/* CA certificate of the "ca" role (if there is one): DER (malloc'd) and a PEM file. */
	uint8_t *ca_der;
	size_t ca_der_len;
	char ca_pem[320];       /* <dir>/ca.pem, or "" */
};

/*
 * Makes the directory, the token (label, user PIN pin, SO PIN "so-" pin) and the roles'
 * keys. roles may be NULL to get test_token_default_roles.
 */
struct test_token *test_token_new(const char *label, const char *pin,
    const struct hsm_role_spec *roles, size_t nroles);

/* ca RSA-2048, ra RSA-2048, client EC P-256, pfx RSA-2048, tls EC P-256. */
extern const struct hsm_role_spec test_token_default_roles[];
extern const size_t test_token_default_nroles;

/* The URI made for a role, NULL if the token has no such role. */
const char *test_token_uri(const struct test_token *t, const char *role);

/* Adds keys for more roles to an existing token (hsm_token_init again). */
void test_token_add_roles(struct test_token *t, const struct hsm_role_spec *roles,
    size_t nroles);

/* Hands a path (and, for a directory, everything below it) to TEST_KEYS_USER when root. */
void test_token_chown_keys(const char *path);

/* Removes the directory tree (and frees t). NULL is fine. */
void test_token_free(struct test_token *t);

/* rm -rf for test directories. */
void test_rmtree(const char *path);

#endif
