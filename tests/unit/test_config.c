/*
 * certconnd.json loader: the shipped example loads; every kind of error names the exact
 * file:line:col and key path; net's part round-trips; the PIN is read as configured.
 * Real files under a fresh mkdtemp directory, real OpenSSL certificates.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <unistd.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certconn/config.h"
#include "certconn/util.h"

static char dir[256];
static char cfg[300];
static char policy_default[CC_POLICY_PATH_MAX];
static unsigned char *ca_der;
static int ca_der_len;

static void
write_file(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void
path_in(char *buf, size_t len, const char *name)
{
	assert_true((size_t)snprintf(buf, len, "%s/%s", dir, name) < len);
}

/* A self-signed P-256 certificate in PEM at path; its DER in *der (caller frees). */
static void
make_cert(const char *path, const char *cn, unsigned char **der, int *der_len)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *nm;
	FILE *f;

	assert_non_null(k);
	assert_non_null(x);
	assert_int_equal(X509_set_version(x, 2), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 1), 1);
	nm = X509_get_subject_name(x);
	assert_int_equal(X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC,
	    (const unsigned char *)cn, -1, -1, 0), 1);
	assert_int_equal(X509_set_issuer_name(x, nm), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
	assert_int_equal(X509_set_pubkey(x, k), 1);
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, x), 1);
	assert_int_equal(fclose(f), 0);
	if (der != NULL) {
		*der = NULL;
		*der_len = i2d_X509(x, der);
		assert_true(*der_len > 0);
	}
	X509_free(x);
	EVP_PKEY_free(k);
}

static int
setup(void **state)
{
	char p[300];

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/cc-test-config-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	path_in(cfg, sizeof(cfg), "c.json");
	path_in(p, sizeof(p), "module.so");
	write_file(p, "not really a module\n", 20);
	path_in(p, sizeof(p), "pin");
	write_file(p, "1234\n", 5);
	path_in(p, sizeof(p), "ca.pem");
	make_cert(p, "certconn test CA", &ca_der, &ca_der_len);
	path_in(p, sizeof(p), "ra.pem");
	make_cert(p, "certconn test RA", NULL, NULL);
	path_in(p, sizeof(p), "bad.pem");
	write_file(p, "this is no certificate\n", 23);
	if (cc_policy_default_path(policy_default, sizeof(policy_default)) == -1)
		return -1;
	return 0;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int
teardown(void **state)
{
	(void)state;
	OPENSSL_free(ca_der);
	return nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Replaces the @NAME@ placeholders of the tests' texts. Caller frees. */
static char *
subst(const char *t)
{
	static const char *const names[] = { "@MOD@", "@PIN@", "@CA@", "@RA@", "@BAD@", "@CFG@",
		"@POLICY@", "@DIR@" };
	const char *vals[8];
	char mod[300], pin[300], ca[300], ra[300], bad[300];
	char *out;
	size_t cap = strlen(t) * 2 + 8192, off = 0, k;

	path_in(mod, sizeof(mod), "module.so");
	path_in(pin, sizeof(pin), "pin");
	path_in(ca, sizeof(ca), "ca.pem");
	path_in(ra, sizeof(ra), "ra.pem");
	path_in(bad, sizeof(bad), "bad.pem");
	vals[0] = mod; vals[1] = pin; vals[2] = ca; vals[3] = ra; vals[4] = bad; vals[5] = cfg;
	vals[6] = policy_default; vals[7] = dir;
	out = malloc(cap);
	assert_non_null(out);
	while (*t != '\0') {
		for (k = 0; k < 8; k++) {
			if (strncmp(t, names[k], strlen(names[k])) == 0)
				break;
		}
		if (k < 8) {
			assert_true(off + strlen(vals[k]) < cap);
			memcpy(out + off, vals[k], strlen(vals[k]));
			off += strlen(vals[k]);
			t += strlen(names[k]);
		} else {
			assert_true(off + 1 < cap);
			out[off++] = *t++;
		}
	}
	out[off] = '\0';
	return out;
}

/* Writes text to c.json and loads it. */
static int
load_text(const char *text, struct cc_config *c, char *err, size_t errlen)
{
	char *s = subst(text);
	int ret;

	write_file(cfg, s, strlen(s));
	free(s);
	ret = cc_config_load(cfg, c, err, errlen);
	return ret;
}

static void
expect_error(const char *text, const char *expected)
{
	struct cc_config c;
	char err[1024];
	char *want = subst(expected);

	assert_int_equal(load_text(text, &c, err, sizeof(err)), -1);
	assert_string_equal(err, want);
	/* Nothing is left to free after a failure. */
	assert_null(c.path);
	assert_null(c.keys.roles);
	free(want);
}

#define PKCS11_OK \
	"  \"pkcs11\": {\n" \
	"    \"module\": \"@MOD@\",\n" \
	"    \"pin_file\": \"@PIN@\"\n" \
	"  },\n"

/* ---- loading ---- */

static void
test_example_loads(void **state)
{
	char path[600], mod[300], pin[300], ca[300], ra[300], err[1024], *text;
	uint8_t *buf;
	size_t len;
	struct cc_config c;
	const struct cc_config_role *r;
	cJSON *root, *p11, *roles;

	(void)state;
	snprintf(path, sizeof(path), "%s/etc/certconnd.json.example", CC_SOURCE_DIR);
	assert_int_equal(cc_read_file(path, 1 << 20, &buf, &len), 0);
	/* The example as shipped names system paths; point them at this test's files. */
	root = cJSON_Parse((const char *)buf);
	free(buf);
	assert_non_null(root);
	path_in(mod, sizeof(mod), "module.so");
	path_in(pin, sizeof(pin), "pin");
	path_in(ca, sizeof(ca), "ca.pem");
	path_in(ra, sizeof(ra), "ra.pem");
	p11 = cJSON_GetObjectItemCaseSensitive(root, "pkcs11");
	roles = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "keys"),
	    "roles");
	assert_non_null(p11);
	assert_non_null(roles);
	cJSON_ReplaceItemInObjectCaseSensitive(p11, "module", cJSON_CreateString(mod));
	cJSON_ReplaceItemInObjectCaseSensitive(p11, "pin_file", cJSON_CreateString(pin));
	cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(roles, "ca"),
	    "cert", cJSON_CreateString(ca));
	cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(roles, "ra"),
	    "cert", cJSON_CreateString(ra));
	text = cJSON_Print(root);
	cJSON_Delete(root);
	assert_non_null(text);
	write_file(cfg, text, strlen(text));
	cJSON_free(text);

	assert_int_equal(cc_config_load(cfg, &c, err, sizeof(err)), 0);
	assert_string_equal(c.path, cfg);
	assert_string_equal(c.pkcs11.module, mod);
	assert_int_equal(c.pkcs11.nenv, 1);
	assert_string_equal(c.pkcs11.env[0].name, "SOFTHSM2_CONF");
	assert_string_equal(c.pkcs11.env[0].value, "/etc/certconn/softhsm2.conf");
	assert_string_equal(c.pkcs11.pin_file, pin);
	assert_null(c.pkcs11.pin_credential);
	assert_string_equal(c.pkcs11.pin_path, pin);
	assert_int_equal(c.pkcs11.op_timeout_ms, 5000);
	assert_string_equal(c.keys.policy_path, policy_default);
	assert_int_equal(c.keys.nroles, 4);

	r = &c.keys.roles[0];
	assert_string_equal(r->name, "ca");
	assert_string_equal(r->uri, "pkcs11:token=certconn;object=ca");
	assert_int_equal(r->mechs, CC_MECH_SIGN_TBS);
	assert_int_equal(r->flags, CC_ROLE_TBS_ONLY);
	assert_int_equal(r->max_validity_days, 825);
	assert_int_equal(r->max_crl_days, 30);
	assert_int_equal(r->key_usage, KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
	assert_string_equal(r->ekus, "1.3.6.1.5.5.7.3.1,1.3.6.1.5.5.7.3.2");
	/* The DER is the certificate that was written, byte for byte. */
	assert_int_equal(r->cert_len, (size_t)ca_der_len);
	assert_memory_equal(r->cert, ca_der, (size_t)ca_der_len);

	r = &c.keys.roles[1];
	assert_string_equal(r->name, "ra");
	assert_int_equal(r->mechs, CC_MECH_SIGN_RSA_PKCS1 | CC_MECH_DECRYPT_RSA_PKCS1 |
	    CC_MECH_DECRYPT_RSA_OAEP);
	assert_int_equal(r->flags, CC_ROLE_FALLBACK);
	assert_non_null(r->cert);
	assert_int_equal(r->max_validity_days, 0);
	assert_string_equal(r->ekus, "");

	r = &c.keys.roles[2];
	assert_string_equal(r->name, "client");
	assert_int_equal(r->mechs, CC_MECH_SIGN_RSA_PKCS1 | CC_MECH_SIGN_ECDSA);
	assert_int_equal(r->flags, 0);
	assert_null(r->cert);
	assert_null(r->cert_path);

	r = &c.keys.roles[3];
	assert_string_equal(r->name, "pfx");
	assert_int_equal(r->flags, CC_ROLE_FALLBACK | CC_ROLE_OPTIONAL);

	assert_string_equal(c.log.dir, "/var/log/certconn");
	assert_true(c.log.max_bytes == 52428800);
	assert_int_equal(c.log.keep, 5);
	assert_true(c.log.journald);
	assert_int_equal(c.log.debug_mask, 0);
	assert_string_equal(c.daemon.control_socket, "/run/certconn/control.sock");
	assert_string_equal(c.daemon.state_dir, "/var/lib/certconn");
	assert_string_equal(c.daemon.user_net, "_certconn-net");
	assert_string_equal(c.daemon.user_keys, "_certconn-keys");
	assert_true(c.daemon.seccomp);
	assert_true(c.daemon.landlock);
	assert_int_equal(c.daemon.restart_max, 5);
	assert_int_equal(c.daemon.restart_window_s, 60);
	assert_string_equal(c.net.host, "127.0.0.1");
	assert_int_equal(c.net.port, 8080);
	assert_int_equal(c.net.keys_channels, 2);
	assert_string_equal(c.net_json, "{\"listen\":\"127.0.0.1:8080\",\"keys_channels\":2,"
	    "\"state_dir\":\"/var/lib/certconn/net\"}");
	assert_string_equal(c.net.state_dir, "/var/lib/certconn/net");
	cc_config_free(&c);
	assert_null(c.path);
	cc_config_free(&c); /* twice is harmless */
}

static void
test_defaults(void **state)
{
	struct cc_config c;
	char err[1024];
	const struct cc_config_role *r;

	(void)state;
	assert_int_equal(load_text("{\n" PKCS11_OK
	    "  \"keys\": { \"roles\": {\n"
	    "    \"ca\": { \"uri\": \"pkcs11:token=t;id=%01%02\" } } }\n"
	    "}\n", &c, err, sizeof(err)), 0);
	assert_int_equal(c.pkcs11.nenv, 0);
	assert_int_equal(c.pkcs11.op_timeout_ms, 5000);
	assert_int_equal(c.keys.nroles, 1);
	r = &c.keys.roles[0];
	assert_int_equal(r->max_validity_days, 825);
	assert_int_equal(r->max_crl_days, 30);
	assert_int_equal(r->key_usage, KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION |
	    KU_KEY_ENCIPHERMENT | KU_DATA_ENCIPHERMENT | KU_KEY_AGREEMENT);
	assert_string_equal(r->ekus, "1.3.6.1.5.5.7.3.1,1.3.6.1.5.5.7.3.2,1.3.6.1.5.5.7.3.4");
	assert_int_equal(r->flags, CC_ROLE_TBS_ONLY);
	assert_true(c.log.max_bytes == 50u * 1024 * 1024);
	assert_int_equal(c.log.keep, 5);
	assert_true(c.log.journald);
	assert_string_equal(c.log.dir, "/var/log/certconn");
	assert_string_equal(c.daemon.control_socket, "/run/certconn/control.sock");
	assert_string_equal(c.daemon.state_dir, "/var/lib/certconn");
	assert_string_equal(c.daemon.user_net, "_certconn-net");
	assert_string_equal(c.daemon.user_keys, "_certconn-keys");
	assert_true(c.daemon.seccomp && c.daemon.landlock);
	assert_int_equal(c.daemon.restart_max, 5);
	assert_int_equal(c.daemon.restart_window_s, 60);
	assert_string_equal(c.net.listen, "127.0.0.1:8080");
	assert_int_equal(c.net.keys_channels, 2);
	cc_config_free(&c);
}

static void
test_values_and_ca_policy(void **state)
{
	struct cc_config c;
	char err[1024];
	const struct cc_config_role *r;

	(void)state;
	assert_int_equal(load_text("{\n"
	    "  \"pkcs11\": { \"module\": \"@MOD@\", \"pin_file\": \"@PIN@\",\n"
	    "    \"op_timeout_ms\": 100 },\n"
	    "  \"keys\": { \"roles\": {\n"
	    "    \"ca\": { \"uri\": \"pkcs11:object=ca\", \"allow_subca\": true,\n"
	    "      \"key_usage\": [\"keyCertSign\", \"cRLSign\", \"digitalSignature\"],\n"
	    "      \"eku\": [\"any\"], \"max_validity_days\": 36500, \"max_crl_days\": 1 },\n"
	    "    \"ra-sign\": { \"uri\": \"pkcs11:object=ra\", \"optional\": true },\n"
	    "    \"tls\": { \"uri\": \"pkcs11:id=%aa\", \"mechanisms\": [\"sign-ecdsa\"] } } },\n"
	    "  \"log\": { \"dir\": \"/l\", \"max_bytes\": 10737418240, \"keep\": 0,\n"
	    "    \"journald\": false, \"debug\": [\"Debug\", \"Admin\"] },\n"
	    "  \"daemon\": { \"control_socket\": \"/s\", \"state_dir\": \"/st\",\n"
	    "    \"user_net\": \"n\", \"user_keys\": \"k\", \"seccomp\": false,\n"
	    "    \"landlock\": false, \"restart_max\": 100, \"restart_window_s\": 1 },\n"
	    "  \"net\": { \"listen\": \"[::1]:443\", \"keys_channels\": 16 }\n"
	    "}\n", &c, err, sizeof(err)), 0);
	assert_int_equal(c.pkcs11.op_timeout_ms, 100);
	r = &c.keys.roles[0];
	assert_int_equal(r->flags, CC_ROLE_TBS_ONLY | CC_ROLE_ALLOW_SUBCA);
	assert_int_equal(r->key_usage, KU_KEY_CERT_SIGN | KU_CRL_SIGN | KU_DIGITAL_SIGNATURE);
	assert_string_equal(r->ekus, "");
	assert_int_equal(r->max_validity_days, 36500);
	assert_int_equal(r->max_crl_days, 1);
	r = &c.keys.roles[1];
	assert_string_equal(r->name, "ra-sign");
	assert_int_equal(r->mechs, CC_MECH_SIGN_RSA_PKCS1);
	assert_int_equal(r->flags, CC_ROLE_FALLBACK | CC_ROLE_OPTIONAL);
	r = &c.keys.roles[2];
	assert_int_equal(r->mechs, CC_MECH_SIGN_ECDSA);
	assert_true(c.log.max_bytes == 10737418240ull);
	assert_int_equal(c.log.keep, 0);
	assert_false(c.log.journald);
	assert_int_equal(c.log.debug_mask, CC_CHAN_DEBUG | CC_CHAN_ADMIN);
	assert_string_equal(c.daemon.user_net, "n");
	assert_false(c.daemon.seccomp);
	assert_int_equal(c.daemon.restart_max, 100);
	assert_int_equal(c.daemon.restart_window_s, 1);
	assert_string_equal(c.net.host, "::1");
	assert_int_equal(c.net.port, 443);
	assert_int_equal(c.net.keys_channels, 16);
	cc_config_free(&c);
}

/* ---- errors: each kind names the exact place ---- */

static void
test_err_unreadable(void **state)
{
	struct cc_config c;
	char err[1024], p[300];

	(void)state;
	path_in(p, sizeof(p), "missing.json");
	assert_int_equal(cc_config_load(p, &c, err, sizeof(err)), -1);
	assert_true(strstr(err, p) == err);
	assert_string_equal(err + strlen(p), ": No such file or directory");
	assert_int_equal(cc_config_load(dir, &c, err, sizeof(err)), -1);
	assert_string_equal(err + strlen(dir), ": not a regular file");
}

static void
test_err_syntax(void **state)
{
	(void)state;
	/* A missing comma: cJSON stops at the next key. */
	expect_error("{\n"
	    "  \"pkcs11\": {\n"
	    "    \"module\": \"@MOD@\"\n"
	    "    \"pin_file\": \"@PIN@\"\n"
	    "  }\n"
	    "}\n", "@CFG@:4:5: syntax error");
	/* A bad literal, after a multi-byte character on the same line. */
	expect_error("{\n"
	    "  \"log\": { \"dir\": \"/\u00e9\", \"journald\": tru }\n"
	    "}\n", "@CFG@:2:37: syntax error");
	/* Trailing garbage after the document. */
	expect_error("{}\n}\n", "@CFG@:2:1: syntax error");
	expect_error("", "@CFG@:1:1: syntax error");
	expect_error("{\n  \"pkcs11\": \"x\\u0000y\"\n}\n", "@CFG@:2:3: pkcs11: expected an object, "
	    "found a string");
}

static void
test_err_nul_and_depth(void **state)
{
	struct cc_config c;
	char err[1024], text[400];
	int k, off = 0;

	(void)state;
	assert_int_equal(cc_config_load_buf("{\n  \"a\0\": 1 }", 13, "x.json", &c, err,
	    sizeof(err)), -1);
	assert_string_equal(err, "x.json:2:5: NUL byte in the text");
	for (k = 0; k < 65; k++)
		off += snprintf(text + off, sizeof(text) - (size_t)off, "{\"a\":");
	off += snprintf(text + off, sizeof(text) - (size_t)off, "1");
	for (k = 0; k < 65; k++)
		off += snprintf(text + off, sizeof(text) - (size_t)off, "}");
	assert_int_equal(cc_config_load_buf(text, (size_t)off, "x.json", &c, err, sizeof(err)),
	    -1);
	assert_string_equal(err, "x.json:1:321: nested deeper than 64 levels");
}

static void
test_err_unknown_key(void **state)
{
	(void)state;
	expect_error("{\n" PKCS11_OK
	    "  \"keys\": {\n"
	    "    \"roles\": {\n"
	    "      \"ra\": {\n"
	    "        \"uri\": \"pkcs11:token=t;object=ra\",\n"
	    "        \"optionall\": true\n"
	    "      }\n"
	    "    }\n"
	    "  }\n"
	    "}\n",
	    "@CFG@:10:9: keys.roles.ra.optionall: unknown key (allowed: uri, cert, optional, "
	    "mechanisms, max_validity_days, allow_subca, key_usage, eku, max_crl_days)");
	expect_error("{\n" PKCS11_OK
	    "  \"keys\": { \"roles\": { \"ra\": { \"uri\": \"pkcs11:object=ra\" } } },\n"
	    "  \"deamon\": {}\n"
	    "}\n",
	    "@CFG@:7:3: deamon: unknown key (allowed: pkcs11, keys, log, daemon, net)");
}

static void
test_err_duplicate(void **state)
{
	(void)state;
	expect_error("{\n"
	    "  \"pkcs11\": {\n"
	    "    \"module\": \"@MOD@\",\n"
	    "    \"pin_file\": \"@PIN@\",\n"
	    "    \"op_timeout_ms\": 2000,\n"
	    "    \"op_timeout_ms\": 3000\n"
	    "  }\n"
	    "}\n", "@CFG@:6:5: pkcs11.op_timeout_ms: duplicate key (first at 5:5)");
	/* The same name spelt with an escape is the same key; positions stay right. */
	expect_error("{\n"
	    "  \"pkcs11\": {\n"
	    "    \"module\": \"@MOD@\",\n"
	    "    \"pin_file\": \"@PIN@\",\n"
	    "    \"op_timeout_m\\u0073\": 200, \"op_timeout_ms\": 300\n"
	    "  }\n"
	    "}\n", "@CFG@:5:32: pkcs11.op_timeout_ms: duplicate key (first at 5:5)");
	expect_error("{\n" PKCS11_OK
	    "  \"keys\": { \"roles\": {\n"
	    "    \"ra\": { \"uri\": \"pkcs11:object=a\" },\n"
	    "    \"ra\": { \"uri\": \"pkcs11:object=b\" } } }\n"
	    "}\n", "@CFG@:8:5: keys.roles.ra: duplicate key (first at 7:5)");
}

static void
test_err_type(void **state)
{
	(void)state;
	expect_error("{\n" PKCS11_OK
	    "  \"keys\": {\n"
	    "    \"roles\": {\n"
	    "      \"ra\": {\n"
	    "        \"uri\": 42\n"
	    "      }\n"
	    "    }\n"
	    "  }\n"
	    "}\n", "@CFG@:9:9: keys.roles.ra.uri: expected a string, found a number");
	expect_error("{\n" PKCS11_OK
	    "  \"keys\": { \"roles\": { \"ra\": { \"uri\": \"pkcs11:object=ra\" } } },\n"
	    "  \"daemon\": { \"seccomp\": \"yes\" }\n"
	    "}\n", "@CFG@:7:15: daemon.seccomp: expected true or false, found a string");
	expect_error("{\n" PKCS11_OK
	    "  \"keys\": { \"roles\": { \"ra\": { \"uri\": \"pkcs11:object=ra\" } } },\n"
	    "  \"log\": { \"debug\": [\"Admin\", 2] }\n"
	    "}\n", "@CFG@:7:31: log.debug[1]: expected a string, found a number");
	expect_error("{\n" PKCS11_OK
	    "  \"keys\": { \"roles\": { \"ra\": { \"uri\": \"pkcs11:object=ra\" } } },\n"
	    "  \"net\": [ ]\n"
	    "}\n", "@CFG@:7:3: net: expected an object, found an array");
	expect_error("[]", "@CFG@:1:1: expected an object, found an array");
}

static void
test_err_range(void **state)
{
	(void)state;
	expect_error("{\n"
	    "  \"pkcs11\": {\n"
	    "    \"module\": \"@MOD@\",\n"
	    "    \"pin_file\": \"@PIN@\",\n"
	    "    \"op_timeout_ms\": 50\n"
	    "  }\n"
	    "}\n", "@CFG@:5:5: pkcs11.op_timeout_ms: 50 is out of range 100..600000");
	expect_error("{\n"
	    "  \"pkcs11\": {\n"
	    "    \"module\": \"@MOD@\",\n"
	    "    \"pin_file\": \"@PIN@\",\n"
	    "    \"op_timeout_ms\": 1000.5\n"
	    "  }\n"
	    "}\n", "@CFG@:5:5: pkcs11.op_timeout_ms: expected an integer, found 1000.5");
	expect_error("{\n" PKCS11_OK
	    "  \"keys\": { \"roles\": { \"ra\": { \"uri\": \"pkcs11:object=ra\" } } },\n"
	    "  \"log\": { \"max_bytes\": 10737418241 }\n"
	    "}\n",
	    "@CFG@:7:12: log.max_bytes: 10737418241 is out of range 1048576..10737418240");
	expect_error("{\n" PKCS11_OK
	    "  \"keys\": { \"roles\": { \"ra\": { \"uri\": \"pkcs11:object=ra\" } } },\n"
	    "  \"net\": { \"keys_channels\": 17 }\n"
	    "}\n", "@CFG@:7:12: net.keys_channels: 17 is out of range 1..16");
	expect_error("{\n" PKCS11_OK
	    "  \"keys\": { \"roles\": { \"ra\": { \"uri\": \"pkcs11:object=ra\" } } },\n"
	    "  \"daemon\": { \"restart_max\": -1 }\n"
	    "}\n", "@CFG@:7:15: daemon.restart_max: -1 is out of range 1..100");
	expect_error("{\n" PKCS11_OK
	    "  \"keys\": { \"roles\": { \"ra\": { \"uri\": \"pkcs11:object=ra\" } } },\n"
	    "  \"net\": { \"listen\": \"127.0.0.1:65536\" }\n"
	    "}\n", "@CFG@:7:12: net.listen: the port must be a number 1..65535");
	expect_error("{\n" PKCS11_OK
	    "  \"keys\": { \"roles\": { \"ra\": { \"uri\": \"pkcs11:object=ra\" } } },\n"
	    "  \"net\": { \"listen\": \"::1:80\" }\n"
	    "}\n", "@CFG@:7:12: net.listen: an IPv6 address goes in brackets: [addr]:port");
}

static void
test_err_missing(void **state)
{
	(void)state;
	expect_error("{\n"
	    "  \"pkcs11\": {\n"
	    "    \"pin_file\": \"@PIN@\"\n"
	    "  }\n"
	    "}\n", "@CFG@:2:3: pkcs11.module: required key is missing");
	expect_error("{\n"
	    "  \"keys\": {}\n"
	    "}\n", "@CFG@:1:1: pkcs11: required key is missing");
	expect_error("{\n" PKCS11_OK "  \"log\": {}\n}\n", "@CFG@:1:1: keys: required key is missing");
	expect_error("{\n"
	    "  \"pkcs11\": {\n"
	    "    \"module\": \"@MOD@\"\n"
	    "  }\n"
	    "}\n", "@CFG@:2:3: pkcs11: needs pin_file or pin_credential");
	expect_error("{\n" PKCS11_OK
	    "  \"keys\": {\n"
	    "    \"roles\": {}\n"
	    "  }\n"
	    "}\n", "@CFG@:7:5: keys.roles: must configure at least one role");
	expect_error("{\n" PKCS11_OK
	    "  \"keys\": {\n"
	    "    \"roles\": { \"ra\": { \"cert\": \"@RA@\" } }\n"
	    "  }\n"
	    "}\n", "@CFG@:7:16: keys.roles.ra.uri: required key is missing");
}

static void
test_err_files(void **state)
{
	(void)state;
	expect_error("{\n"
	    "  \"pkcs11\": {\n"
	    "    \"module\": \"@MOD@\",\n"
	    "    \"pin_file\": \"@DIR@/nope\"\n"
	    "  }\n"
	    "}\n", "@CFG@:4:5: pkcs11.pin_file: @DIR@/nope: No such file or directory");
	expect_error("{\n"
	    "  \"pkcs11\": {\n"
	    "    \"module\": \"@DIR@\",\n"
	    "    \"pin_file\": \"@PIN@\"\n"
	    "  }\n"
	    "}\n", "@CFG@:3:5: pkcs11.module: @DIR@: not a regular file");
	expect_error("{\n"
	    "  \"pkcs11\": {\n"
	    "    \"module\": \"module.so\",\n"
	    "    \"pin_file\": \"@PIN@\"\n"
	    "  }\n"
	    "}\n", "@CFG@:3:5: pkcs11.module: must be an absolute path");
	expect_error("{\n" PKCS11_OK
	    "  \"keys\": { \"roles\": { \"ra\": { \"uri\": \"pkcs11:object=ra\",\n"
	    "    \"cert\": \"@DIR@/none.pem\" } } }\n"
	    "}\n", "@CFG@:7:5: keys.roles.ra.cert: @DIR@/none.pem: No such file or directory");
}

static void
test_err_uri(void **state)
{
	(void)state;
	expect_error("{\n" PKCS11_OK
	    "  \"keys\": {\n"
	    "    \"roles\": {\n"
	    "      \"ra\": {\n"
	    "        \"uri\": \"pkcs11:token=certconn\"\n"
	    "      }\n"
	    "    }\n"
	    "  }\n"
	    "}\n", "@CFG@:9:9: keys.roles.ra.uri: needs an object= or id= attribute");
	expect_error("{\n" PKCS11_OK
	    "  \"keys\": { \"roles\": { \"ra\": {\n"
	    "    \"uri\": \"file:///ra.key\" } } }\n"
	    "}\n", "@CFG@:7:5: keys.roles.ra.uri: must start with \"pkcs11:\"");
	expect_error("{\n" PKCS11_OK
	    "  \"keys\": { \"roles\": { \"ra\": {\n"
	    "    \"uri\": \"pkcs11:object=;id=\" } } }\n"
	    "}\n", "@CFG@:7:5: keys.roles.ra.uri: needs an object= or id= attribute");
	expect_error("{\n" PKCS11_OK
	    "  \"keys\": { \"roles\": { \"ra\": {\n"
	    "    \"uri\": \"pkcs11:object=ra?pin-value=1234\" } } }\n"
	    "}\n", "@CFG@:7:5: keys.roles.ra.uri: no PIN in the URI: use pkcs11.pin_file or "
	    "pkcs11.pin_credential");
	expect_error("{\n" PKCS11_OK
	    "  \"keys\": { \"roles\": { \"ra\": {\n"
	    "    \"uri\": \"pkcs11:object=my key\" } } }\n"
	    "}\n", "@CFG@:7:5: keys.roles.ra.uri: characters outside printable ASCII must be "
	    "percent-encoded");
	expect_error("{\n" PKCS11_OK
	    "  \"keys\": { \"roles\": { \"ra\": {\n"
	    "    \"uri\": \"pkcs11:object=a%2\" } } }\n"
	    "}\n", "@CFG@:7:5: keys.roles.ra.uri: bad percent-encoding");
}

static void
test_err_cert(void **state)
{
	(void)state;
	expect_error("{\n" PKCS11_OK
	    "  \"keys\": {\n"
	    "    \"roles\": {\n"
	    "      \"ra\": {\n"
	    "        \"uri\": \"pkcs11:token=t;object=ra\",\n"
	    "        \"cert\": \"@BAD@\"\n"
	    "      }\n"
	    "    }\n"
	    "  }\n"
	    "}\n", "@CFG@:10:9: keys.roles.ra.cert: @BAD@: not a PEM certificate (no start line)");
}

static void
test_err_mechanisms(void **state)
{
	(void)state;
	expect_error("{\n" PKCS11_OK
	    "  \"keys\": {\n"
	    "    \"roles\": {\n"
	    "      \"client\": {\n"
	    "        \"uri\": \"pkcs11:token=t;object=c\",\n"
	    "        \"mechanisms\": [\"sign-ecdsa\", \"decrypt-rsa-oaep\"]\n"
	    "      }\n"
	    "    }\n"
	    "  }\n"
	    "}\n", "@CFG@:10:38: keys.roles.client.mechanisms[1]: \"decrypt-rsa-oaep\" is not "
	    "allowed for role client by the policy (allowed: sign-rsa-pkcs1,sign-rsa-pss,"
	    "sign-ecdsa)");
	expect_error("{\n" PKCS11_OK
	    "  \"keys\": { \"roles\": { \"ra\": { \"uri\": \"pkcs11:object=ra\",\n"
	    "    \"mechanisms\": [\"sign-rsa\"] } } }\n"
	    "}\n", "@CFG@:7:20: keys.roles.ra.mechanisms[0]: unknown mechanism \"sign-rsa\"");
	expect_error("{\n" PKCS11_OK
	    "  \"keys\": { \"roles\": { \"ra\": { \"uri\": \"pkcs11:object=ra\",\n"
	    "    \"mechanisms\": [] } } }\n"
	    "}\n", "@CFG@:7:5: keys.roles.ra.mechanisms: must list at least one mechanism "
	    "(leave it out for the policy's set)");
}

static void
test_err_role(void **state)
{
	(void)state;
	expect_error("{\n" PKCS11_OK
	    "  \"keys\": {\n"
	    "    \"roles\": {\n"
	    "      \"rb\": { \"uri\": \"pkcs11:token=t;object=rb\" }\n"
	    "    }\n"
	    "  }\n"
	    "}\n", "@CFG@:8:7: keys.roles.rb: unknown role (the policy @POLICY@ has: ca, ra, "
	    "ra-sign, ra-encrypt, client, tls, pfx)");
	expect_error("{\n" PKCS11_OK
	    "  \"keys\": { \"roles\": { \"ra\": { \"uri\": \"pkcs11:object=ra\",\n"
	    "    \"max_validity_days\": 90 } } }\n"
	    "}\n", "@CFG@:7:5: keys.roles.ra.max_validity_days: only for a role that signs "
	    "checked certificates (tbs_only in the policy, like ca)");
	expect_error("{\n" PKCS11_OK
	    "  \"keys\": { \"roles\": { \"ca\": { \"uri\": \"pkcs11:object=ca\",\n"
	    "    \"key_usage\": [\"digitalSignature\", \"keyCertSign\"] } } }\n"
	    "}\n", "@CFG@:7:39: keys.roles.ca.key_usage[1]: \"keyCertSign\" needs "
	    "\"allow_subca\": true");
	expect_error("{\n" PKCS11_OK
	    "  \"keys\": { \"roles\": { \"ca\": { \"uri\": \"pkcs11:object=ca\",\n"
	    "    \"key_usage\": [\"digitalSignatur\"] } } }\n"
	    "}\n", "@CFG@:7:19: keys.roles.ca.key_usage[0]: unknown key usage "
	    "\"digitalSignatur\"");
	expect_error("{\n" PKCS11_OK
	    "  \"keys\": { \"roles\": { \"ca\": { \"uri\": \"pkcs11:object=ca\",\n"
	    "    \"eku\": [\"clientAuth\", \"1.3.6.1.5.5.7.3.2\"] } } }\n"
	    "}\n", "@CFG@:7:27: keys.roles.ca.eku[1]: \"1.3.6.1.5.5.7.3.2\" is listed twice");
	expect_error("{\n" PKCS11_OK
	    "  \"keys\": { \"roles\": { \"ca\": { \"uri\": \"pkcs11:object=ca\",\n"
	    "    \"eku\": [\"serverauth\"] } } }\n"
	    "}\n", "@CFG@:7:13: keys.roles.ca.eku[0]: \"serverauth\" is neither a known "
	    "extended key usage nor a dotted OID");
	expect_error("{\n" PKCS11_OK
	    "  \"keys\": { \"roles\": { \"ca\": { \"uri\": \"pkcs11:object=ca\",\n"
	    "    \"eku\": [\"serverAuth\", \"any\"] } } }\n"
	    "}\n", "@CFG@:7:27: keys.roles.ca.eku[1]: \"any\" must stand alone");
}

static void
test_err_policy_file(void **state)
{
	char p[300];
	static const char pol[] =
	    "{\n"
	    "  \"roles\": {\n"
	    "    \"ca\": {\n"
	    "      \"mechanisms\": [\"sign-all\"]\n"
	    "    }\n"
	    "  }\n"
	    "}\n";

	(void)state;
	path_in(p, sizeof(p), "badpol.json");
	write_file(p, pol, strlen(pol));
	expect_error("{\n" PKCS11_OK
	    "  \"keys\": {\n"
	    "    \"policy\": \"@DIR@/badpol.json\",\n"
	    "    \"roles\": { \"ca\": { \"uri\": \"pkcs11:object=ca\" } }\n"
	    "  }\n"
	    "}\n", "@CFG@:7:5: keys.policy: @DIR@/badpol.json:4:22: roles.ca.mechanisms[0]: "
	    "unknown mechanism \"sign-all\"");
	expect_error("{\n" PKCS11_OK
	    "  \"keys\": {\n"
	    "    \"policy\": \"@DIR@/nopol.json\",\n"
	    "    \"roles\": { \"ca\": { \"uri\": \"pkcs11:object=ca\" } }\n"
	    "  }\n"
	    "}\n", "@CFG@:7:5: keys.policy: @DIR@/nopol.json: No such file or directory");
}

static void
test_custom_policy(void **state)
{
	struct cc_config c;
	char err[1024], p[300];
	static const char pol[] =
	    "{ \"version\": 1, \"roles\": {\n"
	    "  \"hub\": { \"mechanisms\": [\"sign-ecdsa\"], \"fallback\": true } } }\n";

	(void)state;
	path_in(p, sizeof(p), "pol.json");
	write_file(p, pol, strlen(pol));
	assert_int_equal(load_text("{\n" PKCS11_OK
	    "  \"keys\": { \"policy\": \"@DIR@/pol.json\",\n"
	    "    \"roles\": { \"hub\": { \"uri\": \"pkcs11:object=hub\" } } }\n"
	    "}\n", &c, err, sizeof(err)), 0);
	assert_string_equal(c.keys.policy_path, p);
	assert_int_equal(c.keys.policy.nroles, 1);
	assert_string_equal(c.keys.roles[0].name, "hub");
	assert_int_equal(c.keys.roles[0].mechs, CC_MECH_SIGN_ECDSA);
	assert_int_equal(c.keys.roles[0].flags, CC_ROLE_FALLBACK);
	cc_config_free(&c);
	/* Roles come from the policy: "ra" is not in this one. */
	expect_error("{\n" PKCS11_OK
	    "  \"keys\": { \"policy\": \"@DIR@/pol.json\",\n"
	    "    \"roles\": { \"ra\": { \"uri\": \"pkcs11:object=ra\" } } }\n"
	    "}\n", "@CFG@:7:16: keys.roles.ra: unknown role (the policy @DIR@/pol.json has: hub)");
}

static void
test_err_misc(void **state)
{
	(void)state;
	expect_error("{\n"
	    "  \"pkcs11\": {\n"
	    "    \"module\": \"@MOD@\",\n"
	    "    \"pin_file\": \"@PIN@\",\n"
	    "    \"pin_credential\": \"pin\"\n"
	    "  }\n"
	    "}\n", "@CFG@:5:5: pkcs11.pin_credential: pin_file and pin_credential exclude each "
	    "other");
	expect_error("{\n"
	    "  \"pkcs11\": {\n"
	    "    \"module\": \"@MOD@\",\n"
	    "    \"pin_file\": \"@PIN@\",\n"
	    "    \"env\": { \"A\": \"1\", \"B\": \"2\", \"C\": \"3\", \"D\": \"4\", \"E\": \"5\",\n"
	    "      \"F\": \"6\", \"G\": \"7\", \"H\": \"8\", \"I\": \"9\" }\n"
	    "  }\n"
	    "}\n", "@CFG@:6:37: pkcs11.env.I: too many members (at most 8)");
	expect_error("{\n"
	    "  \"pkcs11\": {\n"
	    "    \"module\": \"@MOD@\",\n"
	    "    \"pin_file\": \"@PIN@\",\n"
	    "    \"env\": { \"1A\": \"x\" }\n"
	    "  }\n"
	    "}\n", "@CFG@:5:14: pkcs11.env.1A: not a valid environment variable name");
	expect_error("{\n"
	    "  \"pkcs11\": {\n"
	    "    \"module\": \"@MOD@\",\n"
	    "    \"pin_file\": \"@PIN@\",\n"
	    "    \"env\": { \"A\": \"x\\ny\" }\n"
	    "  }\n"
	    "}\n", "@CFG@:5:14: pkcs11.env.A: contains a control character");
	{
		/* The variables travel to keys as one message string of NAME=value lines. */
		static char text[12000];
		char v[3001];

		memset(v, 'v', 3000);
		v[3000] = '\0';
		snprintf(text, sizeof(text), "{\n"
		    "  \"pkcs11\": {\n"
		    "    \"env\": { \"A\": \"%s\", \"B\": \"%s\" },\n"
		    "    \"module\": \"@MOD@\",\n"
		    "    \"pin_file\": \"@PIN@\"\n"
		    "  }\n"
		    "}\n", v, v);
		expect_error(text, "@CFG@:3:3023: pkcs11.env.B: the environment is too long (at "
		    "most 4095 bytes as NAME=value lines)");
	}
	expect_error("{\n" PKCS11_OK
	    "  \"keys\": { \"roles\": { \"ra\": { \"uri\": \"pkcs11:object=ra\" } } },\n"
	    "  \"daemon\": { \"user_net\": \"x\", \"user_keys\": \"x\" }\n"
	    "}\n", "@CFG@:7:32: daemon.user_keys: net and keys must run as different users");
	expect_error("{\n" PKCS11_OK
	    "  \"keys\": { \"roles\": { \"ra\": { \"uri\": \"pkcs11:object=ra\" } } },\n"
	    "  \"daemon\": { \"user_keys\": \"root\" }\n"
	    "}\n", "@CFG@:7:15: daemon.user_keys: not a usable user name (not root; letters, "
	    "digits, '_', '-', '.')");
	expect_error("{\n" PKCS11_OK
	    "  \"keys\": { \"roles\": { \"ra\": { \"uri\": \"pkcs11:object=ra\" } } },\n"
	    "  \"log\": { \"debug\": [\"admin\"] }\n"
	    "}\n", "@CFG@:7:22: log.debug[0]: unknown channel \"admin\" (channels: Admin, "
	    "Operational, Debug)");
	expect_error("{\n" PKCS11_OK
	    "  \"keys\": { \"roles\": { \"ra\": { \"uri\": \"pkcs11:object=ra\" } } },\n"
	    "  \"daemon\": { \"control_socket\": \"/run/certconn/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\" }\n"
	    "}\n", "@CFG@:7:15: daemon.control_socket: longer than 107 bytes (a socket path)");
	expect_error("{\n" PKCS11_OK
	    "  \"keys\": { \"roles\": { \"ra\": { \"uri\": \"pkcs11:object=\\u0001\" } } }\n"
	    "}\n", "@CFG@:6:32: keys.roles.ra.uri: contains a control character");
}

static void
test_pin_credential(void **state)
{
	struct cc_config c;
	char err[1024], p[300];
	uint8_t *pin;
	size_t len;

	(void)state;
	path_in(p, sizeof(p), "pin");
	assert_int_equal(setenv("CREDENTIALS_DIRECTORY", dir, 1), 0);
	assert_int_equal(load_text("{\n"
	    "  \"pkcs11\": { \"module\": \"@MOD@\", \"pin_credential\": \"pin\" },\n"
	    "  \"keys\": { \"roles\": { \"pfx\": { \"uri\": \"pkcs11:object=pfx\" } } }\n"
	    "}\n", &c, err, sizeof(err)), 0);
	assert_null(c.pkcs11.pin_file);
	assert_string_equal(c.pkcs11.pin_credential, "pin");
	assert_string_equal(c.pkcs11.pin_path, p);
	assert_int_equal(cc_config_read_pin(&c, &pin, &len, err, sizeof(err)), 0);
	assert_int_equal(len, 4);
	assert_memory_equal(pin, "1234", 4);
	cc_free_secret(pin, len);
	cc_config_free(&c);

	expect_error("{\n"
	    "  \"pkcs11\": { \"pin_credential\": \"nope\", \"module\": \"@MOD@\" }\n"
	    "}\n", "@CFG@:2:15: pkcs11.pin_credential: @DIR@/nope: No such file or directory");
	expect_error("{\n"
	    "  \"pkcs11\": { \"pin_credential\": \"../pin\", \"module\": \"@MOD@\" }\n"
	    "}\n", "@CFG@:2:15: pkcs11.pin_credential: not a credential name");
	assert_int_equal(unsetenv("CREDENTIALS_DIRECTORY"), 0);
	expect_error("{\n"
	    "  \"pkcs11\": { \"pin_credential\": \"pin\", \"module\": \"@MOD@\" }\n"
	    "}\n", "@CFG@:2:15: pkcs11.pin_credential: $CREDENTIALS_DIRECTORY is not set (the "
	    "credential is passed by systemd's LoadCredential=)");
}

static void
test_read_pin(void **state)
{
	struct cc_config c;
	char err[1024], p[300], big[CC_CONFIG_PIN_MAX + 1];
	uint8_t *pin;
	size_t len;

	(void)state;
	path_in(p, sizeof(p), "pin2");
	assert_int_equal(load_text("{\n"
	    "  \"pkcs11\": { \"module\": \"@MOD@\", \"pin_file\": \"@DIR@/pin2\" },\n"
	    "  \"keys\": { \"roles\": { \"pfx\": { \"uri\": \"pkcs11:object=pfx\" } } }\n"
	    "}\n", &c, err, sizeof(err)), -1); /* pin2 does not exist yet */
	write_file(p, "s3cr3t\r\n", 8);
	assert_int_equal(load_text("{\n"
	    "  \"pkcs11\": { \"module\": \"@MOD@\", \"pin_file\": \"@DIR@/pin2\" },\n"
	    "  \"keys\": { \"roles\": { \"pfx\": { \"uri\": \"pkcs11:object=pfx\" } } }\n"
	    "}\n", &c, err, sizeof(err)), 0);
	assert_int_equal(cc_config_read_pin(&c, &pin, &len, err, sizeof(err)), 0);
	assert_int_equal(len, 6);
	assert_memory_equal(pin, "s3cr3t", 6);
	cc_free_secret(pin, len);
	/* No newline at all is fine too. */
	write_file(p, "abc", 3);
	assert_int_equal(cc_config_read_pin(&c, &pin, &len, err, sizeof(err)), 0);
	assert_int_equal(len, 3);
	cc_free_secret(pin, len);
	write_file(p, "\n", 1);
	assert_int_equal(cc_config_read_pin(&c, &pin, &len, err, sizeof(err)), -1);
	assert_null(pin);
	assert_true(strstr(err, "the PIN is empty") != NULL);
	memset(big, 'x', sizeof(big));
	write_file(p, big, sizeof(big));
	assert_int_equal(cc_config_read_pin(&c, &pin, &len, err, sizeof(err)), -1);
	assert_true(strstr(err, "longer than a PIN can be") != NULL);
	cc_config_free(&c);
}

/* ---- net's part ---- */

static void
test_net_roundtrip(void **state)
{
	struct cc_config c;
	struct cc_config_net n;
	char err[1024];

	(void)state;
	assert_int_equal(load_text("{\n" PKCS11_OK
	    "  \"keys\": { \"roles\": { \"ra\": { \"uri\": \"pkcs11:object=ra\" } } },\n"
	    "  \"net\": { \"keys_channels\": 4, \"listen\": \"[2001:db8::1]:8443\" }\n"
	    "}\n", &c, err, sizeof(err)), 0);
	/* net gets the section as written; it fills in defaults itself. */
	assert_string_equal(c.net_json,
	    "{\"keys_channels\":4,\"listen\":\"[2001:db8::1]:8443\","
	    "\"state_dir\":\"/var/lib/certconn/net\"}");
	assert_int_equal(cc_config_load_net(c.net_json, &n, err, sizeof(err)), 0);
	assert_string_equal(n.listen, c.net.listen);
	assert_string_equal(n.host, "2001:db8::1");
	assert_int_equal(n.port, 8443);
	assert_int_equal(n.keys_channels, 4);
	assert_memory_equal(&n, &c.net, sizeof(n));
	cc_config_net_free(&n);
	cc_config_free(&c);

	/* A host name is kept as written. */
	assert_int_equal(cc_config_load_net("{\"listen\":\"scep.example.org:80\"}", &n, err,
	    sizeof(err)), 0);
	assert_string_equal(n.host, "scep.example.org");
	assert_int_equal(n.port, 80);
	assert_int_equal(n.keys_channels, 2);
	cc_config_net_free(&n);

	/* net checks what it is sent by the same rules, and says where. */
	assert_int_equal(cc_config_load_net("{\"listen\":\"1.2.3.4:0\",\"keys_channels\":1}", &n,
	    err, sizeof(err)), -1);
	assert_string_equal(err, "(net config):1:2: net.listen: the port must be a number "
	    "1..65535");
	assert_int_equal(cc_config_load_net("{\"listen\":\"1.2.3.4:1\",\"x\":1}", &n, err,
	    sizeof(err)), -1);
	assert_string_equal(err, "(net config):1:23: net.x: unknown key (allowed: listen, "
	    "keys_channels, state_dir, listen_tls, tls_cert, scep, ca, service, flows)");
	assert_int_equal(cc_config_load_net("{\"listen\":", &n, err, sizeof(err)), -1);
	assert_string_equal(err, "(net config):1:11: syntax error");
	assert_int_equal(cc_config_load_net("[]", &n, err, sizeof(err)), -1);
	assert_string_equal(err, "(net config):1:1: net: expected an object, found an array");
}

static void
test_conf_role(void **state)
{
	struct cc_config c;
	struct cc_conf_role m;
	char err[1024];

	(void)state;
	assert_int_equal(load_text("{\n" PKCS11_OK
	    "  \"keys\": { \"roles\": { \"ca\": { \"uri\": \"pkcs11:object=ca\",\n"
	    "    \"cert\": \"@CA@\", \"eku\": [\"1.3.6.1.4.1.311.20.2.2\"] } } }\n"
	    "}\n", &c, err, sizeof(err)), 0);
	cc_config_conf_role(&c.keys.roles[0], &m);
	assert_string_equal(m.name, "ca");
	assert_string_equal(m.uri, "pkcs11:object=ca");
	assert_int_equal(m.mechs, CC_MECH_SIGN_TBS);
	assert_int_equal(m.flags, CC_ROLE_TBS_ONLY);
	assert_ptr_equal(m.cert, c.keys.roles[0].cert);
	assert_int_equal(m.cert_len, (size_t)ca_der_len);
	assert_int_equal(m.max_validity_days, 825);
	assert_int_equal(m.max_crl_days, 30);
	assert_string_equal(m.ekus, "1.3.6.1.4.1.311.20.2.2");
	cc_config_free(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_example_loads),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_values_and_ca_policy),
		cmocka_unit_test(test_err_unreadable),
		cmocka_unit_test(test_err_syntax),
		cmocka_unit_test(test_err_nul_and_depth),
		cmocka_unit_test(test_err_unknown_key),
		cmocka_unit_test(test_err_duplicate),
		cmocka_unit_test(test_err_type),
		cmocka_unit_test(test_err_range),
		cmocka_unit_test(test_err_missing),
		cmocka_unit_test(test_err_files),
		cmocka_unit_test(test_err_uri),
		cmocka_unit_test(test_err_cert),
		cmocka_unit_test(test_err_mechanisms),
		cmocka_unit_test(test_err_role),
		cmocka_unit_test(test_err_policy_file),
		cmocka_unit_test(test_custom_policy),
		cmocka_unit_test(test_err_misc),
		cmocka_unit_test(test_pin_credential),
		cmocka_unit_test(test_read_pin),
		cmocka_unit_test(test_net_roundtrip),
		cmocka_unit_test(test_conf_role),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
