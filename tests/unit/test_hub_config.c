/*
 * certconn-hub's configuration file: a complete one loads with its defaults; every refusal
 * names the file, line, column and key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "hub.h"
#include "hub_conf.h"
#include "test_token.h"

static char dir[64], path[128];

static int
setup(void **state)
{
	static const char *const files[] = { "tls.pem", "tls.key", "pin", "ca.pem", "admin" };
	char p[128];
	FILE *f;

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/hubcfg.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	for (size_t i = 0; i < 5; i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
		f = fopen(p, "w");
		fputs("x\n", f);
		fclose(f);
	}
	snprintf(path, sizeof(path), "%s/hub.json", dir);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	test_rmtree(dir);
	return 0;
}

/* Writes a config whose top level has the base members plus extra (may be ""). */
static void
write_conf(const char *extra, const char *skip)
{
	FILE *f = fopen(path, "w");

	fprintf(f, "{\n");
	if (skip == NULL || strcmp(skip, "state_dir") != 0)
		fprintf(f, "  \"state_dir\": \"%s/state\",\n", dir);
	fprintf(f, "  \"tls\": {\"cert\": \"%s/tls.pem\", \"key\": \"%s/tls.key\"},\n", dir, dir);
	fprintf(f, "  \"ca\": {\"module\": \"%s\", \"env\": {\"SOFTHSM2_CONF\": \"/x\"},\n"
	    "         \"key\": \"pkcs11:token=t;object=hub-ca\", \"pin_file\": \"%s/pin\",\n"
	    "         \"cert\": \"%s/ca.pem\"},\n", TEST_SOFTHSM_MODULE, dir, dir);
	fprintf(f, "  \"admin_token_file\": \"%s/admin\"%s%s\n}\n", dir, extra[0] ? ",\n  " : "",
	    extra);
	fclose(f);
}

static void
expect(const char *extra, const char *skip, const char *needle)
{
	struct hub_conf c;
	char err[512] = "", want[256];

	write_conf(extra, skip);
	if (hub_conf_load(path, &c, err, sizeof(err)) == 0) {
		hub_conf_free(&c);
		fail_msg("accepted: %s", extra);
	}
	snprintf(want, sizeof(want), "%s:", path);
	if (strncmp(err, want, strlen(want)) != 0 || strstr(err, needle) == NULL)
		fail_msg("error \"%s\" lacks \"%s\"", err, needle);
}

static void
test_defaults(void **state)
{
	struct hub_conf c;
	char err[512];

	(void)state;
	write_conf("", NULL);
	if (hub_conf_load(path, &c, err, sizeof(err)) == -1)
		fail_msg("%s", err);
	assert_string_equal(c.host, "127.0.0.1");
	assert_int_equal(c.port, 8443);
	assert_int_equal(c.client_cert_days, 365);
	assert_int_equal(c.health_interval_s, 60);
	assert_int_equal(c.max_connectors, 100);
	assert_int_equal(c.lease_default_s, 300);
	assert_int_equal(c.lease_min_s, 30);
	assert_int_equal(c.lease_max_s, 3600);
	assert_int_equal(c.max_attempts, 10);
	assert_int_equal(c.support_months, 6);
	assert_int_equal(c.block_months, 18);
	assert_false(c.refuse_blocked);
	assert_int_equal(c.max_body_bytes, HUB_BODY_MAX_DEFAULT);
	assert_string_equal(c.ca_module_env, "SOFTHSM2_CONF=/x");
	assert_non_null(strstr(c.db_path, "/state/hub.db"));
	hub_conf_free(&c);

	write_conf("\"listen\": \"[::1]:0\", \"lifecycle\": {\"refuse_blocked\": true, "
	    "\"versions\": [{\"version\": \"1.2.3\", \"released\": \"2025-02-03\"}]}", NULL);
	if (hub_conf_load(path, &c, err, sizeof(err)) == -1)
		fail_msg("%s", err);
	assert_string_equal(c.host, "::1");
	assert_int_equal(c.port, 0);
	assert_true(c.refuse_blocked);
	assert_int_equal(c.nversions, 1);
	assert_string_equal(c.versions[0].version, "1.2.3");
	hub_conf_free(&c);
}

static void
test_refusals(void **state)
{
	(void)state;
	expect("", "state_dir", ":1:1: state_dir: required key is missing");
	expect("\"listen\": \"localhost\"", NULL, "listen: expected host:port");
	expect("\"colour\": 1", NULL, "colour: unknown key");
	expect("\"client_cert_days\": 0", NULL, "client_cert_days");
	expect("\"max_connectors_per_tenant\": 101", NULL, "max_connectors_per_tenant");
	expect("\"lease\": {\"min_s\": 100, \"max_s\": 50}", NULL,
	    "lease: needs min_s <= default_s <= max_s");
	expect("\"lifecycle\": {\"support_months\": 12, \"block_months\": 6}", NULL,
	    "block_months must not be less than support_months");
	expect("\"lifecycle\": {\"versions\": [{\"version\": \"one\", \"released\": "
	    "\"2025-01-01\"}]}", NULL, "lifecycle.versions[0].version: not a version");
	expect("\"lifecycle\": {\"versions\": [{\"version\": \"1.0\", \"released\": "
	    "\"2025-02-30\"}]}", NULL, "lifecycle.versions[0].released: not a date");
	expect("\"max_body_bytes\": 1000", NULL, "max_body_bytes");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_refusals),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
