/*
 * The "net.flows" config section (src/config/config_flows.c) through net's own loader: the
 * defaults, a full section, and each mistake refused with its line, column and key path.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/x509v3.h>

#include "certconn/config.h"
#include "certconn/config_flows.h"
#include "certconn/config_service.h"

static void
defaults(void **state)
{
	struct cc_config_net n;
	char err[512];
	const char *json = "{\"listen\": \"127.0.0.1:8080\", \"state_dir\": \"/tmp\",\n"
	    " \"flows\": {\"pkcs_profiles\": {\"p\": {}}}}";

	(void)state;
	if (cc_config_load_net(json, &n, err, sizeof(err)) == -1)
		fail_msg("%s", err);
	assert_non_null(n.flows);
	assert_int_equal(n.flows->features, CC_FEATURE_PKCS | CC_FEATURE_PKCS_RECRYPT |
	    CC_FEATURE_PFX_IMPORT | CC_FEATURE_REVOKE);
	assert_int_equal(n.flows->workers, 2);
	assert_int_equal(n.flows->max_attempts, 5);
	assert_int_equal(n.flows->backoff_initial_ms, 500);
	assert_int_equal(n.flows->backoff_max_ms, 30000);
	assert_string_equal(n.flows->pfx_role, "pfx");
	assert_null(n.flows->state_dir);
	for (int i = 0; i < CC_FLOWS_NKEYSPECS; i++)
		assert_int_equal(n.flows->pool_depth[i], 0);
	assert_int_equal(n.flows->nprofiles, 1);
	assert_int_equal(n.flows->default_profile, 0);
	assert_string_equal(n.flows->profiles[0].name, "p");
	assert_int_equal(n.flows->profiles[0].key, CC_FLOWS_RSA2048);
	assert_int_equal(n.flows->profiles[0].p12, CC_FLOWS_P12_AES256);
	assert_false(n.flows->profiles[0].keep_copy);
	assert_false(n.flows->profiles[0].allow_key_override);
	assert_int_equal(n.flows->profiles[0].issuance.validity_days, 365);
	cc_config_net_free(&n);

	/* Without the section there is nothing. */
	if (cc_config_load_net("{\"listen\": \"127.0.0.1:8080\"}", &n, err, sizeof(err)) == -1)
		fail_msg("%s", err);
	assert_null(n.flows);
	cc_config_net_free(&n);
}

static void
full(void **state)
{
	struct cc_config_net n;
	char err[512];
	const struct cc_flows_profile *p;
	const char *json =
	    "{\"listen\": \"127.0.0.1:8080\",\n"
	    " \"flows\": {\"features\": [\"pkcs\", \"revoke\"], \"workers\": 4,\n"
	    "   \"max_attempts\": 3, \"backoff\": {\"initial_ms\": 100, \"max_ms\": 900},\n"
	    "   \"pfx_role\": \"pfx-2\", \"state_dir\": \"/var/lib/certconn/net/f\",\n"
	    "   \"key_pool\": {\"rsa-2048\": 8, \"ec-p384\": 2},\n"
	    "   \"default_profile\": \"legacy\",\n"
	    "   \"pkcs_profiles\": {\n"
	    "     \"devices\": {\"key\": \"ec-p256\", \"allow_key_override\": true,\n"
	    "       \"keep_copy\": true, \"issuance\": {\"subject_template\": \"CN={cn},O=Ex\",\n"
	    "       \"eku\": [\"clientAuth\", \"emailProtection\"], \"validity_days\": 30}},\n"
	    "     \"legacy\": {\"key\": \"rsa-3072\", \"p12\": \"legacy\"}}}}\n";

	(void)state;
	if (cc_config_load_net(json, &n, err, sizeof(err)) == -1)
		fail_msg("%s", err);
	assert_int_equal(n.flows->features, CC_FEATURE_PKCS | CC_FEATURE_REVOKE);
	assert_int_equal(n.flows->workers, 4);
	assert_int_equal(n.flows->max_attempts, 3);
	assert_int_equal(n.flows->backoff_initial_ms, 100);
	assert_int_equal(n.flows->backoff_max_ms, 900);
	assert_string_equal(n.flows->pfx_role, "pfx-2");
	assert_string_equal(n.flows->state_dir, "/var/lib/certconn/net/f");
	assert_int_equal(n.flows->pool_depth[CC_FLOWS_RSA2048], 8);
	assert_int_equal(n.flows->pool_depth[CC_FLOWS_EC_P384], 2);
	assert_int_equal(n.flows->pool_depth[CC_FLOWS_RSA4096], 0);
	assert_int_equal(n.flows->nprofiles, 2);
	assert_string_equal(n.flows->profiles[n.flows->default_profile].name, "legacy");
	p = cc_config_flows_profile(n.flows, "devices");
	assert_non_null(p);
	assert_int_equal(p->key, CC_FLOWS_EC_P256);
	assert_true(p->allow_key_override);
	assert_true(p->keep_copy);
	assert_int_equal(p->p12, CC_FLOWS_P12_AES256);
	assert_int_equal(p->issuance.subject_mode, CC_ISS_SUBJECT_TEMPLATE);
	assert_int_equal(p->issuance.nekus, 2);
	assert_string_equal(p->issuance.ekus[1], "1.3.6.1.5.5.7.3.4");
	assert_int_equal(p->issuance.validity_days, 30);
	p = cc_config_flows_profile(n.flows, "legacy");
	assert_int_equal(p->key, CC_FLOWS_RSA3072);
	assert_int_equal(p->p12, CC_FLOWS_P12_LEGACY);
	assert_null(cc_config_flows_profile(n.flows, "nope"));
	assert_int_equal(cc_flows_keyspec_from_name("ec-p384"), CC_FLOWS_EC_P384);
	assert_int_equal(cc_flows_keyspec_from_name("rsa-1024"), -1);
	assert_string_equal(cc_flows_keyspec_name(CC_FLOWS_RSA4096), "rsa-4096");
	assert_null(cc_flows_keyspec_name(99));
	cc_config_net_free(&n);
}

static void
bad(const char *section, const char *want)
{
	struct cc_config_net n;
	char json[2048], err[512];

	snprintf(json, sizeof(json), "{\"listen\": \"127.0.0.1:8080\",\n%s}\n", section);
	assert_int_equal(cc_config_load_net(json, &n, err, sizeof(err)), -1);
	if (getenv("SHOW") != NULL)
		printf("%s\n", err);
	if (getenv("SHOW") == NULL && strcmp(err, want) != 0)
		fail_msg("got  \"%s\"\nwant \"%s\"", err, want);
}

static void
errors(void **state)
{
	(void)state;
	bad(" \"flows\": {\"colour\": 1}",
	    "(net config):2:12: net.flows.colour: unknown key (allowed: features, workers, "
	    "max_attempts, backoff, pfx_role, state_dir, key_pool, default_profile, "
	    "pkcs_profiles)");
	bad(" \"flows\": {\"features\": [\"revoke\", \"scep\"]}",
	    "(net config):2:35: net.flows.features[1]: expected pkcs, pkcs-recrypt, pfx-import "
	    "or revoke");
	bad(" \"flows\": {\"features\": [\"revoke\", \"revoke\"]}",
	    "(net config):2:35: net.flows.features[1]: revoke is named twice");
	bad(" \"flows\": {\"features\": [\"revoke\"], \"workers\": 0}",
	    "(net config):2:36: net.flows.workers: 0 is out of range 1..32");
	bad(" \"flows\": {\"features\": [\"revoke\"], \"max_attempts\": 21}",
	    "(net config):2:36: net.flows.max_attempts: 21 is out of range 1..20");
	bad(" \"flows\": {\"features\": [\"revoke\"], \"backoff\": {\"initial_ms\": 1000, "
	    "\"max_ms\": 10}}",
	    "(net config):2:68: net.flows.backoff.max_ms: 10 is out of range 1000..600000");
	bad(" \"flows\": {\"features\": [\"revoke\"], \"pfx_role\": \"PFX\"}",
	    "(net config):2:36: net.flows.pfx_role: a role name has lower-case letters, "
	    "digits and '-' only");
	bad(" \"flows\": {\"features\": [\"revoke\"], \"state_dir\": \"flows\"}",
	    "(net config):2:36: net.flows.state_dir: must be an absolute path");
	bad(" \"flows\": {\"features\": [\"revoke\"], \"key_pool\": {\"rsa-1024\": 1}}",
	    "(net config):2:49: net.flows.key_pool.rsa-1024: unknown key (allowed: rsa-2048, "
	    "rsa-3072, rsa-4096, ec-p256, ec-p384)");
	bad(" \"flows\": {\"features\": [\"revoke\"], \"key_pool\": {\"rsa-2048\": 257}}",
	    "(net config):2:49: net.flows.key_pool.rsa-2048: 257 is out of range 0..256");
	bad(" \"flows\": {}",
	    "(net config):2:2: net.flows.pkcs_profiles: the pkcs feature needs at least one "
	    "profile");
	bad(" \"flows\": {\"pkcs_profiles\": {\"Bad!\": {}}}",
	    "(net config):2:30: net.flows.pkcs_profiles.Bad!: a profile name has lower-case "
	    "letters, digits, '-' and '_' only");
	bad(" \"flows\": {\"pkcs_profiles\": {\"p\": {\"key\": \"dsa-1024\"}}}",
	    "(net config):2:36: net.flows.pkcs_profiles.p.key: expected rsa-2048, rsa-3072, "
	    "rsa-4096, ec-p256 or ec-p384");
	bad(" \"flows\": {\"pkcs_profiles\": {\"p\": {\"p12\": \"des\"}}}",
	    "(net config):2:36: net.flows.pkcs_profiles.p.p12: expected aes256 or legacy");
	bad(" \"flows\": {\"pkcs_profiles\": {\"p\": {\"keep_copy\": \"yes\"}}}",
	    "(net config):2:36: net.flows.pkcs_profiles.p.keep_copy: expected true or false, "
	    "found a string");
	bad(" \"flows\": {\"pkcs_profiles\": {\"p\": {\"key\": \"ec-p256\",\n"
	    "   \"issuance\": {\"key_types\": [\"rsa\"]}}}}",
	    "(net config):2:30: net.flows.pkcs_profiles.p.key: ec-p256 is not allowed by the "
	    "profile's issuance key rules");
	bad(" \"flows\": {\"pkcs_profiles\": {\"p\": {\"issuance\": {\"validity_days\": 0}}}}",
	    "(net config):2:49: net.flows.pkcs_profiles.p.issuance.validity_days: 0 is out of "
	    "range 1..36500");
	bad(" \"flows\": {\"default_profile\": \"q\", \"pkcs_profiles\": {\"p\": {}}}",
	    "(net config):2:12: net.flows.default_profile: no profile is called \"q\"");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(defaults),
		cmocka_unit_test(full),
		cmocka_unit_test(errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
