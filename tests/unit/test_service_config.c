/*
 * The "net.service" section (include/certconn/config_service.h): what is accepted, the
 * defaults, and that every refusal names the position and the key path.
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

#include "certconn/config.h"
#include "certconn/config_service.h"

static char dir[64], ca[128], secret[128], pw[128];

static int
setup(void **state)
{
	FILE *f;

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/svccfg.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	snprintf(secret, sizeof(secret), "%s/secret", dir);
	snprintf(pw, sizeof(pw), "%s/pw", dir);
	f = fopen(ca, "w");
	fputs("x\n", f);
	fclose(f);
	f = fopen(secret, "w");
	fputs("s\n", f);
	fclose(f);
	f = fopen(pw, "w");
	fputs("p\n", f);
	fclose(f);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	unlink(ca);
	unlink(secret);
	unlink(pw);
	rmdir(dir);
	return 0;
}

/* Loads {"listen": ..., "service": <svc>}; 0 with *n, or -1 with err. */
static int
load(const char *svc, struct cc_config_net *n, char *err, size_t errlen)
{
	char json[4096];

	snprintf(json, sizeof(json), "{\"listen\":\"127.0.0.1:8080\",\n\"service\":%s}", svc);
	return cc_config_load_net(json, n, err, errlen);
}

static void
expect_error(const char *svc, const char *needle)
{
	struct cc_config_net n;
	char err[512] = "";

	if (load(svc, &n, err, sizeof(err)) == 0) {
		cc_config_net_free(&n);
		fail_msg("accepted: %s", svc);
	}
	if (strstr(err, needle) == NULL)
		fail_msg("error \"%s\" lacks \"%s\"", err, needle);
	/* the position: "(net config):LINE:COL:" */
	assert_non_null(strstr(err, "(net config):2:"));
}

static void
test_hub(void **state)
{
	struct cc_config_net n;
	char svc[1024], err[512];

	(void)state;
	snprintf(svc, sizeof(svc), "{\"mode\":\"hub\",\"url\":\"https://hub.example:8443/\","
	    "\"ca_file\":\"%s\",\"features\":[\"pkcs\",\"revoke\"]}", ca);
	assert_int_equal(load(svc, &n, err, sizeof(err)), 0);
	assert_non_null(n.service);
	assert_int_equal(n.service->mode, CC_SERVICE_HUB);
	assert_string_equal(n.service->url, "https://hub.example:8443"); /* slash dropped */
	assert_string_equal(n.service->ca_file, ca);
	assert_int_equal(n.service->features, CC_FEATURE_PKCS | CC_FEATURE_REVOKE);
	/* defaults */
	assert_null(n.service->client_cert);
	assert_string_equal(n.service->client_key_role, "client");
	assert_int_equal(n.service->health_interval_s, 60);
	assert_int_equal(n.service->poll_interval_s, 30);
	assert_int_equal(n.service->timeout_s, 30);
	assert_int_equal(n.service->lease_s, 300);
	assert_int_equal(n.service->renew_before_days, 30);
	assert_int_equal(n.service->retry_base_ms, 1000);
	assert_int_equal(n.service->retry_max_ms, 300000);
	assert_int_equal(n.service->retry_max_attempts, 8);
	assert_null(n.service->proxy_url);
	cc_config_net_free(&n);

	snprintf(svc, sizeof(svc), "{\"mode\":\"hub\",\"url\":\"https://h\",\"client_cert\":"
	    "\"/var/lib/x/c.pem\",\"retry\":{\"base_ms\":50,\"max_ms\":60,\"max_attempts\":3},"
	    "\"proxy\":{\"url\":\"http://proxy:3128\",\"username\":\"u\",\"password_file\":\"%s\","
	    "\"no_proxy\":\"localhost,10.0.0.0/8\"}}", pw);
	assert_int_equal(load(svc, &n, err, sizeof(err)), 0);
	assert_string_equal(n.service->client_cert, "/var/lib/x/c.pem");
	assert_int_equal(n.service->retry_base_ms, 50);
	assert_string_equal(n.service->proxy_url, "http://proxy:3128");
	assert_string_equal(n.service->proxy_username, "u");
	assert_string_equal(n.service->no_proxy, "localhost,10.0.0.0/8");
	cc_config_net_free(&n);
}

static void
test_intune(void **state)
{
	struct cc_config_net n;
	char svc[1024], err[512];

	(void)state;
	snprintf(svc, sizeof(svc), "{\"mode\":\"intune\",\"features\":[\"scep\",\"revoke\"],"
	    "\"intune\":{\"tenant\":\"contoso.onmicrosoft.com\",\"client_id\":\"abc\","
	    "\"client_secret_file\":\"%s\"}}", secret);
	assert_int_equal(load(svc, &n, err, sizeof(err)), 0);
	assert_int_equal(n.service->mode, CC_SERVICE_INTUNE);
	assert_string_equal(n.service->tenant, "contoso.onmicrosoft.com");
	assert_string_equal(n.service->login_url, "https://login.microsoftonline.com");
	assert_string_equal(n.service->graph_url, "https://graph.microsoft.com");
	assert_string_equal(n.service->intune_resource, "https://api.manage.microsoft.com/");
	assert_string_equal(n.service->scep_api_version, "2018-02-20");
	assert_string_equal(n.service->revocation_api_version, "5019-05-05");
	cc_config_net_free(&n);
}

static void
test_refusals(void **state)
{
	char svc[1024];

	(void)state;
	expect_error("{\"url\":\"https://h\"}", "net.service.mode: required key is missing");
	expect_error("{\"mode\":\"cloud\"}", "net.service.mode: must be \"hub\" or \"intune\"");
	expect_error("{\"mode\":\"hub\"}", "net.service.url: required key is missing");
	expect_error("{\"mode\":\"hub\",\"url\":\"http://h\"}", "net.service.url: must be an "
	    "https:// URL");
	expect_error("{\"mode\":\"hub\",\"url\":\"https://h\",\"lease_s\":10}",
	    "net.service.lease_s: 10 is out of range 30..3600");
	expect_error("{\"mode\":\"hub\",\"url\":\"https://h\",\"colour\":1}",
	    "net.service.colour: unknown key");
	expect_error("{\"mode\":\"hub\",\"url\":\"https://h\",\"features\":[\"pkcs\",\"pkcs\"]}",
	    "net.service.features[1]: \"pkcs\" is listed twice");
	expect_error("{\"mode\":\"hub\",\"url\":\"https://h\",\"features\":[\"tea\"]}",
	    "net.service.features[0]: unknown feature");
	expect_error("{\"mode\":\"hub\",\"url\":\"https://h\",\"ca_file\":\"/nonexistent/ca.pem\"}",
	    "net.service.ca_file: /nonexistent/ca.pem: No such file");
	expect_error("{\"mode\":\"hub\",\"url\":\"https://h\",\"client_cert\":\"rel/c.pem\"}",
	    "net.service.client_cert: must be an absolute path");
	expect_error("{\"mode\":\"hub\",\"url\":\"https://h\",\"health_interval_s\":0}",
	    "net.service.health_interval_s");
	expect_error("{\"mode\":\"hub\",\"url\":\"https://h\",\"retry\":{\"base_ms\":500,"
	    "\"max_ms\":100}}", "net.service.retry: max_ms must not be less than base_ms");
	expect_error("{\"mode\":\"hub\",\"url\":\"https://h\",\"proxy\":{\"username\":\"u\"}}",
	    "net.service.proxy.url: required key is missing");
	expect_error("{\"mode\":\"hub\",\"url\":\"https://h\",\"proxy\":{\"url\":\"http://p:1\","
	    "\"username\":\"u\"}}", "net.service.proxy: username and password_file go together");
	expect_error("{\"mode\":\"hub\",\"url\":\"https://h\",\"intune\":{}}",
	    "net.service.intune: only for \"mode\": \"intune\"");
	expect_error("{\"mode\":\"intune\"}", "net.service.intune: required key is missing");
	snprintf(svc, sizeof(svc), "{\"mode\":\"intune\",\"intune\":{\"tenant\":\"t\","
	    "\"client_id\":\"c\"}}");
	expect_error(svc, "net.service.intune.client_secret_file: required key is missing");
	snprintf(svc, sizeof(svc), "{\"mode\":\"intune\",\"features\":[\"pkcs\"],\"intune\":"
	    "{\"tenant\":\"t\",\"client_id\":\"c\",\"client_secret_file\":\"%s\"}}", secret);
	expect_error(svc, "net.service.features: Intune mode serves only scep and revoke");
	snprintf(svc, sizeof(svc), "{\"mode\":\"intune\",\"intune\":{\"tenant\":\"t/x\","
	    "\"client_id\":\"c\",\"client_secret_file\":\"%s\"}}", secret);
	expect_error(svc, "net.service.intune.tenant: not a tenant name or id");
	snprintf(svc, sizeof(svc), "{\"mode\":\"intune\",\"intune\":{\"tenant\":\"t\","
	    "\"client_id\":\"c\",\"client_secret_file\":\"%s\",\"login_url\":\"ftp://x\"}}",
	    secret);
	expect_error(svc, "net.service.intune.login_url: must be an https:// URL");
}

static void
test_features(void **state)
{
	(void)state;
	assert_int_equal(cc_service_feature_bit("pkcs-recrypt"), CC_FEATURE_PKCS_RECRYPT);
	assert_int_equal(cc_service_feature_bit("pfx-import"), CC_FEATURE_PFX_IMPORT);
	assert_int_equal(cc_service_feature_bit("PKCS"), 0);
	assert_string_equal(cc_service_feature_name(CC_FEATURE_SCEP), "scep");
	assert_null(cc_service_feature_name(0x20));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hub),
		cmocka_unit_test(test_intune),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_features),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
