/*
 * The "net.scep" and "net.ca" config sections (src/config/config_scep.c, config_ca.c,
 * policy/issuance_config.c) through net's own loader: what a good section gives, and that
 * each mistake is refused with its line, column and key path.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/x509v3.h>

#include "certconn/config.h"
#include "certconn/config_ca.h"
#include "certconn/config_scep.h"

static char pwfile[64];

static int
setup(void **state)
{
	int fd;

	(void)state;
	snprintf(pwfile, sizeof(pwfile), "/tmp/test_scep_config.XXXXXX");
	fd = mkstemp(pwfile);
	if (fd == -1 || write(fd, "pw\n", 3) != 3)
		return -1;
	close(fd);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	unlink(pwfile);
	return 0;
}

static void
good(void **state)
{
	struct cc_config_net n;
	char json[2048], err[512];
	const struct cc_scep_profile *p;

	(void)state;
	snprintf(json, sizeof(json),
	    "{\"listen\": \"127.0.0.1:8080\",\n"
	    " \"ca\": {\"name\": \"corp-ca\", \"base_url\": \"https://pki.example.com\","
	    " \"crl_days\": 3, \"ra_subject\": \"CN=RA,O=Example\", \"cdp\": false},\n"
	    " \"scep\": {\"default_profile\": \"laptops\", \"workers\": 8, \"profiles\": {\n"
	    "   \"phones\": {\"challenge\": {\"mode\": \"static\", \"password_file\": \"%s\"}},\n"
	    "   \"laptops\": {\"ra_sign_role\": \"ra-sign\", \"ra_encrypt_role\": \"ra-encrypt\",\n"
	    "     \"challenge\": {\"mode\": \"dynamic\", \"ttl_s\": 120}, \"des3\": true,\n"
	    "     \"manual_approval\": true, \"renewal_window_days\": 30,\n"
	    "     \"issuance\": {\"subject_template\": \"CN={cn},O=Example\", \"san\": [\"dns\"],\n"
	    "       \"dns_suffixes\": [\"example.com\"], \"key_types\": [\"ec\"],\n"
	    "       \"ec_curves\": [\"P-256\"], \"key_usage\": [\"digitalSignature\"],\n"
	    "       \"eku\": [\"clientAuth\", \"1.3.6.1.4.1.311.20.2.2\"], \"validity_days\": 90,\n"
	    "       \"csr_attributes\": [\"challengePassword\", \"extensionRequest\"]}}}}}\n",
	    pwfile);
	if (cc_config_load_net(json, &n, err, sizeof(err)) == -1)
		fail_msg("%s", err);
	assert_non_null(n.ca);
	assert_string_equal(n.ca->name, "corp-ca");
	assert_string_equal(n.ca->base_url, "https://pki.example.com");
	assert_int_equal(n.ca->crl_days, 3);
	assert_false(n.ca->cdp);
	assert_true(n.ca->aia);
	assert_int_equal(n.ca->ra_validity_days, 365);
	assert_non_null(n.scep);
	assert_int_equal(n.scep->nprofiles, 2);
	assert_int_equal(n.scep->workers, 8);
	assert_int_equal(n.scep->max_body, 131072);
	p = &n.scep->profiles[n.scep->default_profile];
	assert_string_equal(p->name, "laptops");
	assert_string_equal(p->ra_sign_role, "ra-sign");
	assert_string_equal(p->ra_encrypt_role, "ra-encrypt");
	assert_int_equal(p->challenge, CC_SCEP_CHALLENGE_DYNAMIC);
	assert_int_equal(p->challenge_ttl_s, 120);
	assert_true(p->des3);
	assert_true(p->manual_approval);
	assert_true(p->renewal);
	assert_int_equal(p->renewal_window_days, 30);
	assert_int_equal(p->issuance.subject_mode, CC_ISS_SUBJECT_TEMPLATE);
	assert_int_equal(p->issuance.san_copy, CC_ISS_SAN_DNS);
	assert_int_equal(p->issuance.key_types, CC_ISS_KEY_EC);
	assert_int_equal(p->issuance.key_usage, KU_DIGITAL_SIGNATURE);
	assert_int_equal(p->issuance.nekus, 2);
	assert_string_equal(p->issuance.ekus[0], "1.3.6.1.5.5.7.3.2");
	assert_int_equal(p->issuance.validity_days, 90);
	assert_true(p->issuance.attrs_restricted);
	assert_string_equal(p->issuance.allowed_attrs[0], "1.2.840.113549.1.9.7");
	p = cc_config_scep_profile(n.scep, "phones");
	assert_non_null(p);
	assert_string_equal(p->ra_sign_role, "ra");
	assert_string_equal(p->ra_encrypt_role, "ra");
	assert_string_equal(p->password_file, pwfile);
	assert_false(p->des3);
	assert_int_equal(p->issuance.validity_days, 365);
	assert_null(cc_config_scep_profile(n.scep, "nope"));
	cc_config_net_free(&n);
}

/* Loads net {..., scep} and expects the error. */
static void
bad(const char *section, const char *want)
{
	struct cc_config_net n;
	char json[2048], err[512];

	snprintf(json, sizeof(json), "{\"listen\": \"127.0.0.1:8080\",\n%s}\n", section);
	assert_int_equal(cc_config_load_net(json, &n, err, sizeof(err)), -1);
	if (getenv("SHOW") != NULL)
		printf("%s\n", err);
	else if (strcmp(err, want) != 0)
		fail_msg("got  \"%s\"\nwant \"%s\"", err, want);
}

static void
errors(void **state)
{
	char s[512], w[512];

	(void)state;
	bad(" \"scep\": {\"profiles\": {}}",
	    "(net config):2:11: net.scep.profiles: at least one profile is needed");
	bad(" \"scep\": {\"profiles\": {\"a\": {}}}",
	    "(net config):2:24: net.scep.profiles.a.challenge: required key is "
	    "missing");
	bad(" \"scep\": {\"profiles\": {\"a\": {\"challenge\": {\"mode\": \"magic\"}}}}",
	    "(net config):2:44: net.scep.profiles.a.challenge.mode: expected none, "
	    "static, dynamic, service or webhook");
	bad(" \"scep\": {\"profiles\": {\"a\": {\"challenge\": {\"mode\": \"static\"}}}}",
	    "(net config):2:30: net.scep.profiles.a.challenge.password_file: "
	    "required key is missing");
	bad(" \"scep\": {\"profiles\": {\"a\": {\"challenge\": {\"mode\": \"none\", \"ttl_s\": 5}}}}",
	    "(net config):2:60: net.scep.profiles.a.challenge.ttl_s: only for mode "
	    "dynamic");
	bad(" \"scep\": {\"profiles\": {\"A!\": {\"challenge\": {\"mode\": \"none\"}}}}",
	    "(net config):2:24: net.scep.profiles.A!: a profile name has "
	    "lower-case letters, digits, '-' and '_' only");
	bad(" \"scep\": {\"profiles\": {\"a\": {\"challenge\": {\"mode\": \"none\"},\n"
	    "  \"ra_role\": \"client\"}}}",
	    "(net config):3:3: net.scep.profiles.a.ra_role: expected one of the RA "
	    "roles ra, ra-sign, ra-encrypt");
	bad(" \"scep\": {\"default_profile\": \"b\", \"profiles\": {\"a\": {\"challenge\": "
	    "{\"mode\": \"none\"}}}}",
	    "(net config):2:11: net.scep.default_profile: no profile is called "
	    "\"b\"");
	bad(" \"scep\": {\"workers\": 0, \"profiles\": {}}",
	    "(net config):2:11: net.scep.workers: 0 is out of range 1..64");
	bad(" \"scep\": {\"profiles\": {\"a\": {\"challenge\": {\"mode\": \"none\"},\n"
	    "  \"issuance\": {\"subject_template\": \"CN={nope}\"}}}}",
	    "(net config):3:16: net.scep.profiles.a.issuance.subject_template: "
	    "subject template: unknown placeholder {nope}");
	bad(" \"scep\": {\"profiles\": {\"a\": {\"challenge\": {\"mode\": \"none\"},\n"
	    "  \"issuance\": {\"key_usage\": [\"keyCertSign\"]}}}}",
	    "(net config):3:16: net.scep.profiles.a.issuance.key_usage: "
	    "keyCertSign and cRLSign are for CAs; SCEP issues end-entity "
	    "certificates only");
	bad(" \"scep\": {\"profiles\": {\"a\": {\"challenge\": {\"mode\": \"none\"},\n"
	    "  \"issuance\": {\"eku\": [\"clientAuth\", \"nonsense\"]}}}}",
	    "(net config):3:38: net.scep.profiles.a.issuance.eku[1]: unknown "
	    "extended key usage \"nonsense\" (a name such as clientAuth, or a "
	    "dotted OID)");
	bad(" \"scep\": {\"profiles\": {\"a\": {\"challenge\": {\"mode\": \"none\"},\n"
	    "  \"issuance\": {\"san\": [\"dns\", \"dns\"]}}}}",
	    "(net config):3:31: net.scep.profiles.a.issuance.san[1]: \"dns\" is "
	    "listed twice");
	bad(" \"scep\": {\"profiles\": {\"a\": {\"challenge\": {\"mode\": \"none\"},\n"
	    "  \"issuance\": {\"colour\": \"blue\"}}}}",
	    "(net config):3:16: net.scep.profiles.a.issuance.colour: unknown key "
	    "(allowed: subject_template, require_cn, san, san_max, dns_suffixes, "
	    "sid_passthrough, key_types, rsa_min_bits, rsa_max_bits, ec_curves, "
	    "key_usage, eku, validity_days, backdate_s, csr_attributes)");
	snprintf(s, sizeof(s), " \"scep\": {\"profiles\": {\"a\": {\"challenge\": {\"mode\": "
	    "\"webhook\", \"url\": \"ftp://x\", \"secret_file\": \"%s\"}}}}", pwfile);
	snprintf(w, sizeof(w), "(net config):2:63: net.scep.profiles.a.challenge.url: expected an http:// or https:// URL");
	bad(s, w);
	bad(" \"ca\": {\"name\": \"My CA\"}",
	    "(net config):2:9: net.ca.name: use lower-case letters, digits and '-' "
	    "only");
	bad(" \"ca\": {\"base_url\": \"http://x/\"}",
	    "(net config):2:9: net.ca.base_url: expected http://host[:port][/path] "
	    "or https://..., without a query or a trailing '/'");
	bad(" \"ca\": {\"chain\": \"/nonexistent/chain.pem\"}",
	    "(net config):2:9: net.ca.chain: /nonexistent/chain.pem: No such file "
	    "or directory");
	bad(" \"ca\": {\"crl_days\": 0}",
	    "(net config):2:9: net.ca.crl_days: 0 is out of range 1..3650");
	bad(" \"ca\": {\"ra_subject\": \"nonsense\"}",
	    "(net config):2:9: net.ca.ra_subject: expected a name such as "
	    "\"CN=certconn SCEP RA,O=Example\"");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(good),
		cmocka_unit_test(errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
