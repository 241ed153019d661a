/*
 * The CA role's signing policy (hsm/keys_casign.c) on TBS certificates and CRLs built by
 * OpenSSL: what passes, and every refusal with its reason. A compromised net must not be
 * able to mint a sub-CA, sign for another issuer, or pick a digest the policy forbids.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certconn/proto.h"
#include "keys_int.h"
#include "tbs_build.h"

static EVP_PKEY *rsa_key, *ec_key;
static X509 *rsa_ca, *ec_ca;
static char why[512];

static int
setup(void **state)
{
	(void)state;
	rsa_ca = tbs_make_ca(&rsa_key, 0, 3650);
	ec_ca = tbs_make_ca(&ec_key, 1, 3650);
	return rsa_ca && ec_ca ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	X509_free(rsa_ca);
	X509_free(ec_ca);
	EVP_PKEY_free(rsa_key);
	EVP_PKEY_free(ec_key);
	return 0;
}

static struct keys_casign_policy
policy(int ec)
{
	struct keys_casign_policy p;

	memset(&p, 0, sizeof(p));
	p.ca = ec ? ec_ca : rsa_ca;
	p.ca_key = ec ? ec_key : rsa_key;
	p.mechs = CC_MECH_SIGN_TBS | (ec ? CC_MECH_SIGN_ECDSA :
	    CC_MECH_SIGN_RSA_PKCS1 | CC_MECH_SIGN_RSA_PSS);
	p.flags = CC_ROLE_TBS_ONLY;
	p.max_validity_days = 397;
	p.ekus = "";
	p.max_crl_days = 30;
	return p;
}

/* Builds the TBS for s (signed for its algorithm by the CA key) and checks it. */
static int
check(const struct keys_casign_policy *p, struct tbs_spec *s, struct keys_casign_sig *sig)
{
	uint8_t *tbs;
	size_t len;
	struct keys_casign_sig dummy;
	int code;

	if (s->ca == NULL)
		s->ca = p->ca;
	assert_int_equal(tbs_build_cert(s, p->ca_key, &tbs, &len), 0);
	code = keys_casign_check(p, CC_TBS_CERT, tbs, len, time(NULL), sig ? sig : &dummy, why,
	    sizeof(why));
	free(tbs);
	return code;
}

static void
test_good_leaf_rsa(void **state)
{
	struct keys_casign_policy p = policy(0);
	struct tbs_spec s = { .key_usage = "critical,digitalSignature,keyEncipherment",
		.eku = "clientAuth" };
	struct keys_casign_sig sig;

	(void)state;
	assert_int_equal(check(&p, &s, &sig), CC_KE_OK);
	assert_int_equal(sig.alg, CC_SIG_RSA_PKCS1);
	assert_int_equal(sig.md, CC_MD_SHA256);
	s.md = "SHA512";
	assert_int_equal(check(&p, &s, &sig), CC_KE_OK);
	assert_int_equal(sig.md, CC_MD_SHA512);
}

static void
test_good_leaf_pss_and_ec(void **state)
{
	struct keys_casign_policy p = policy(0), e = policy(1);
	struct tbs_spec s = { .pss = 1, .md = "SHA384" };
	struct keys_casign_sig sig;

	(void)state;
	assert_int_equal(check(&p, &s, &sig), CC_KE_OK);
	assert_int_equal(sig.alg, CC_SIG_RSA_PSS);
	assert_int_equal(sig.md, CC_MD_SHA384);
	assert_int_equal(sig.mgf1_md, CC_MD_SHA384);
	assert_int_equal(sig.saltlen, 48);
	memset(&s, 0, sizeof(s));
	s.md = "SHA384";
	assert_int_equal(check(&e, &s, &sig), CC_KE_OK);
	assert_int_equal(sig.alg, CC_SIG_ECDSA);
	assert_int_equal(sig.md, CC_MD_SHA384);
}

/* The point of the whole role: no sub-CA from a compromised net. */
static void
test_subca_refused(void **state)
{
	struct keys_casign_policy p = policy(0);
	struct tbs_spec s = { .ca_true = 1 };

	(void)state;
	assert_int_equal(check(&p, &s, NULL), CC_KE_REFUSED);
	assert_non_null(strstr(why, "basicConstraints CA:TRUE"));
	memset(&s, 0, sizeof(s));
	s.key_usage = "critical,keyCertSign";
	assert_int_equal(check(&p, &s, NULL), CC_KE_REFUSED);
	assert_non_null(strstr(why, "keyCertSign/cRLSign"));
	s.key_usage = "critical,digitalSignature,cRLSign";
	assert_int_equal(check(&p, &s, NULL), CC_KE_REFUSED);
	/* allowed only with CC_ROLE_ALLOW_SUBCA */
	p.flags |= CC_ROLE_ALLOW_SUBCA;
	s.ca_true = 1;
	s.key_usage = "critical,keyCertSign,cRLSign";
	assert_int_equal(check(&p, &s, NULL), CC_KE_OK);
}

static void
test_foreign_issuer_refused(void **state)
{
	struct keys_casign_policy p = policy(0);
	struct tbs_spec s = { .issuer = "CN=unit test CA2", .no_aki = 1 };

	(void)state;
	assert_int_equal(check(&p, &s, NULL), CC_KE_REFUSED);
	assert_non_null(strstr(why, "issuer /CN=unit test CA2 is not this CA's subject"));
	/* the CA's own name but another key's identifier */
	memset(&s, 0, sizeof(s));
	s.bad_aki = 1;
	assert_int_equal(check(&p, &s, NULL), CC_KE_REFUSED);
	assert_non_null(strstr(why, "authorityKeyIdentifier"));
	/* no AKI at all is fine */
	s.bad_aki = 0;
	s.no_aki = 1;
	assert_int_equal(check(&p, &s, NULL), CC_KE_OK);
}

static void
test_digest_and_algorithm_refused(void **state)
{
	struct keys_casign_policy p = policy(0), e = policy(1);
	struct tbs_spec s = { .md = "SHA1" };

	(void)state;
	assert_int_equal(check(&p, &s, NULL), CC_KE_REFUSED);
	assert_non_null(strstr(why, "sha1WithRSAEncryption"));
	s.md = "SHA224";
	assert_int_equal(check(&p, &s, NULL), CC_KE_REFUSED);
	s.md = "SHA256";
	s.pss = 1;
	/* the policy has no PSS */
	p.mechs &= ~CC_MECH_SIGN_RSA_PSS;
	assert_int_equal(check(&p, &s, NULL), CC_KE_REFUSED);
	assert_non_null(strstr(why, "not allowed by the role's policy"));
	/* sign-tbs alone (the default ca policy): any scheme that fits the key */
	p.mechs = CC_MECH_SIGN_TBS;
	assert_int_equal(check(&p, &s, NULL), CC_KE_OK);
	/* PSS with SHA-1 */
	p = policy(0);
	s.md = "SHA1";
	assert_int_equal(check(&p, &s, NULL), CC_KE_REFUSED);
	/* an RSA signature algorithm for an EC CA: sign the TBS for its algorithm with an RSA
	 * key while the policy's CA is EC */
	{
		uint8_t *tbs;
		size_t len;
		struct keys_casign_sig sig;
		struct tbs_spec t = { .ca = ec_ca };

		assert_int_equal(tbs_build_cert(&t, rsa_key, &tbs, &len), 0);
		assert_int_equal(keys_casign_check(&e, CC_TBS_CERT, tbs, len, time(NULL), &sig, why,
		    sizeof(why)), CC_KE_REFUSED);
		assert_non_null(strstr(why, "does not fit the CA's EC key"));
		free(tbs);
	}
}

static void
test_validity(void **state)
{
	struct keys_casign_policy p = policy(0);
	struct tbs_spec s = { .days = 398 };

	(void)state;
	assert_int_equal(check(&p, &s, NULL), CC_KE_REFUSED);
	assert_non_null(strstr(why, "exceeds the CA's maximum of 397 days"));
	s.days = 397;
	assert_int_equal(check(&p, &s, NULL), CC_KE_OK);
	/* past the CA's own notAfter (3650 days) */
	p.max_validity_days = 0;
	s.days = 4000;
	assert_int_equal(check(&p, &s, NULL), CC_KE_REFUSED);
	assert_non_null(strstr(why, "past the CA certificate's own notAfter"));
	/* the CA has expired (checked at a time after its notAfter) */
	{
		uint8_t *tbs;
		size_t len;
		struct keys_casign_sig sig;
		struct tbs_spec t = { .ca = rsa_ca };

		assert_int_equal(tbs_build_cert(&t, rsa_key, &tbs, &len), 0);
		assert_int_equal(keys_casign_check(&p, CC_TBS_CERT, tbs, len,
		    time(NULL) + 3651L * 86400, &sig, why, sizeof(why)), CC_KE_REFUSED);
		assert_non_null(strstr(why, "the CA certificate has expired"));
		free(tbs);
	}
}

static void
test_usages(void **state)
{
	struct keys_casign_policy p = policy(0);
	struct tbs_spec s = { .key_usage = "critical,digitalSignature,keyEncipherment" };

	(void)state;
	p.key_usage = KU_DIGITAL_SIGNATURE;
	assert_int_equal(check(&p, &s, NULL), CC_KE_REFUSED);
	assert_non_null(strstr(why, "keyUsage"));
	p.key_usage = KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT;
	assert_int_equal(check(&p, &s, NULL), CC_KE_OK);
	p.ekus = "clientAuth, 1.3.6.1.5.5.7.3.4";
	s.eku = "clientAuth,emailProtection";
	assert_int_equal(check(&p, &s, NULL), CC_KE_OK);
	s.eku = "clientAuth,codeSigning";
	assert_int_equal(check(&p, &s, NULL), CC_KE_REFUSED);
	assert_non_null(strstr(why, "extendedKeyUsage 1.3.6.1.5.5.7.3.3 is not allowed"));
	s.eku = "anyExtendedKeyUsage";
	assert_int_equal(check(&p, &s, NULL), CC_KE_REFUSED);
}

static void
test_other_refusals(void **state)
{
	struct keys_casign_policy p = policy(0);
	struct tbs_spec s = { .crit_ext_oid = "1.3.6.1.4.1.99999.1" };

	(void)state;
	assert_int_equal(check(&p, &s, NULL), CC_KE_REFUSED);
	assert_non_null(strstr(why, "unsupported critical extension"));
	memset(&s, 0, sizeof(s));
	s.v1 = 1;
	assert_int_equal(check(&p, &s, NULL), CC_KE_REFUSED);
	assert_non_null(strstr(why, "not an X.509 v3 certificate"));
}

static void
test_malformed(void **state)
{
	struct keys_casign_policy p = policy(0);
	struct tbs_spec s = { .ca = rsa_ca };
	struct keys_casign_sig sig;
	uint8_t *tbs, *longer;
	size_t len;
	static const uint8_t junk[] = { 0x30, 0x03, 0x02, 0x01, 0x01 };

	(void)state;
	assert_int_equal(tbs_build_cert(&s, rsa_key, &tbs, &len), 0);
	/* trailing bytes */
	longer = malloc(len + 1);
	memcpy(longer, tbs, len);
	longer[len] = 0;
	assert_int_equal(keys_casign_check(&p, CC_TBS_CERT, longer, len + 1, time(NULL), &sig, why,
	    sizeof(why)), CC_KE_BADINPUT);
	/* truncated */
	assert_int_equal(keys_casign_check(&p, CC_TBS_CERT, tbs, len - 1, time(NULL), &sig, why,
	    sizeof(why)), CC_KE_BADINPUT);
	/* a certificate sent as a CRL */
	assert_int_equal(keys_casign_check(&p, CC_TBS_CRL, tbs, len, time(NULL), &sig, why,
	    sizeof(why)), CC_KE_BADINPUT);
	/* a SEQUENCE that is no TBS */
	assert_int_equal(keys_casign_check(&p, CC_TBS_CERT, junk, sizeof(junk), time(NULL), &sig,
	    why, sizeof(why)), CC_KE_BADINPUT);
	/* BER (indefinite length) instead of DER */
	longer[0] = 0x30;
	longer[1] = 0x80;
	assert_int_equal(keys_casign_check(&p, CC_TBS_CERT, longer, len, time(NULL), &sig, why,
	    sizeof(why)), CC_KE_BADINPUT);
	free(longer);
	free(tbs);
}

static int
check_crl(const struct keys_casign_policy *p, const char *issuer, long days, const char *md)
{
	uint8_t *tbs;
	size_t len;
	struct keys_casign_sig sig;
	int code;

	assert_int_equal(tbs_build_crl(p->ca, issuer, days, md, 0, p->ca_key, &tbs, &len), 0);
	code = keys_casign_check(p, CC_TBS_CRL, tbs, len, time(NULL), &sig, why, sizeof(why));
	free(tbs);
	return code;
}

static void
test_crl(void **state)
{
	struct keys_casign_policy p = policy(0), e = policy(1);

	(void)state;
	assert_int_equal(check_crl(&p, NULL, 7, "SHA256"), CC_KE_OK);
	assert_int_equal(check_crl(&e, NULL, 30, "SHA384"), CC_KE_OK);
	assert_int_equal(check_crl(&p, NULL, 31, "SHA256"), CC_KE_REFUSED);
	assert_non_null(strstr(why, "exceeds the CA's maximum of 30 days"));
	assert_int_equal(check_crl(&p, NULL, -1, "SHA256"), CC_KE_REFUSED);
	assert_non_null(strstr(why, "without nextUpdate"));
	assert_int_equal(check_crl(&p, "CN=someone else", 7, "SHA256"), CC_KE_REFUSED);
	assert_non_null(strstr(why, "CRL issuer is not this CA's subject"));
	assert_int_equal(check_crl(&p, NULL, 7, "SHA1"), CC_KE_REFUSED);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_leaf_rsa),
		cmocka_unit_test(test_good_leaf_pss_and_ec),
		cmocka_unit_test(test_subca_refused),
		cmocka_unit_test(test_foreign_issuer_refused),
		cmocka_unit_test(test_digest_and_algorithm_refused),
		cmocka_unit_test(test_validity),
		cmocka_unit_test(test_usages),
		cmocka_unit_test(test_other_refusals),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_crl),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
