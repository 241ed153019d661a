/*
 * The device side of the flow tests (tests/lib/device.c) checked against the openssl command
 * line, so that the end-to-end tests stand on a helper that is itself right: a PKCS#12 made
 * by `openssl pkcs12 -export` and enveloped by `openssl cms -encrypt` to the device's
 * certificate (RSA and EC) is opened, its chain and key checked; a wrong password, a wrong
 * device, a corrupted envelope and a chain to another CA are refused or reported; the OAEP
 * password encryption is decrypted by `openssl pkeyutl` with the same digest and not with
 * another one.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>

#include <openssl/cms.h>
#include <openssl/pem.h>

#include "device.h"

static char T[64];

static int
sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

static void
write_pem_cert(const char *path, X509 *x)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, x), 1);
	fclose(f);
}

/* openssl cms -encrypt of file in to the device's certificate: DER in out. */
static void
envelope(const struct device *d, const char *in, const char *out)
{
	char cert[PATH_MAX];

	snprintf(cert, sizeof(cert), "%s/%s.crt", T, d->id);
	write_pem_cert(cert, d->cert);
	assert_int_equal(sh("openssl cms -encrypt -binary -aes-256-cbc -in '%s' -outform DER "
	    "-out '%s' '%s' 2>/dev/null", in, out, cert), 0);
}

static void
opens(enum device_key_type type)
{
	struct device dev, other;
	struct device_delivery o = { 0 };
	char pfx[PATH_MAX], env[PATH_MAX];
	uint8_t *der, *plain;
	size_t n, pn;
	X509 *ca;
	char *b64;

	assert_int_equal(device_new(&dev, type == DEVICE_RSA2048 ? "dev-rsa" : "dev-ec", type), 0);
	assert_int_equal(device_new(&other, "other", type), 0);
	assert_int_equal(device_make_pfx(T, "alice", "alice@example.com", "s3cret pw", false,
	    pfx, sizeof(pfx)), 0);
	snprintf(env, sizeof(env), "%s/alice-%d.cms", T, (int)type);
	envelope(&dev, pfx, env);
	snprintf(pfx, sizeof(pfx), "%s/ext-ca.pem", T);
	ca = device_load_cert(pfx);
	snprintf(pfx, sizeof(pfx), "%s/alice.p12", T);
	assert_non_null(ca);
	der = device_slurp(env, &n);
	assert_non_null(der);
	b64 = device_b64(der, n);

	assert_int_equal(device_open_delivery(&dev, b64, "s3cret pw", ca, &o), 0);
	assert_true(o.chain_ok);
	assert_true(o.key_matches);
	assert_string_equal(o.content_cipher, "AES-256-CBC");
	assert_int_equal(o.recipient_type, type == DEVICE_RSA2048 ? CMS_RECIPINFO_TRANS :
	    CMS_RECIPINFO_AGREE);
	assert_string_equal(o.key_pbe, "PBES2/AES-256-CBC");
	assert_int_equal(strlen(o.thumbprint), 40);
	assert_true(strlen(o.serial) > 0);
	assert_non_null(strstr(o.subject, "CN=alice"));
	device_delivery_free(&o);

	/* The wrong password, another device, a corrupted envelope. */
	memset(&o, 0, sizeof(o));
	assert_int_equal(device_open_delivery(&dev, b64, "wrong", ca, &o), -1);
	device_delivery_free(&o);
	memset(&o, 0, sizeof(o));
	assert_int_equal(device_decrypt(&other, der, n, false, &plain, &pn, &o), -1);
	der[n - 20] ^= 0x55;
	memset(&o, 0, sizeof(o));
	if (device_decrypt(&dev, der, n, false, &plain, &pn, &o) == 0) {
		/* CBC may decrypt a flipped block into garbage; the PKCS#12 then must not open */
		assert_int_equal(device_open_pfx(plain, pn, "s3cret pw", ca, &o), -1);
		free(plain);
	}
	device_delivery_free(&o);

	/* A chain to another CA is reported. */
	memset(&o, 0, sizeof(o));
	{
		size_t pl;
		uint8_t *p = device_slurp(pfx, &pl);
		assert_int_equal(device_open_pfx(p, pl, "s3cret pw", other.cert, &o), 0);
		assert_false(o.chain_ok);
		free(p);
	}
	device_delivery_free(&o);
	free(b64);
	free(der);
	X509_free(ca);
	device_free(&dev);
	device_free(&other);
}

static void
test_rsa_device(void **s)
{
	(void)s;
	opens(DEVICE_RSA2048);
}

static void
test_ec_device(void **s)
{
	(void)s;
	opens(DEVICE_EC_P256);
}

static void
test_legacy_pfx(void **s)
{
	struct device_delivery o = { 0 };
	char pfx[PATH_MAX];
	uint8_t *p;
	size_t n;

	(void)s;
	assert_int_equal(device_make_pfx(T, "bob", "bob@example.com", "pw", true, pfx,
	    sizeof(pfx)), 0);
	p = device_slurp(pfx, &n);
	assert_non_null(p);
	assert_int_equal(device_open_pfx(p, n, "pw", NULL, &o), 0);
	assert_string_equal(o.key_pbe, "PBE-SHA1-3DES");
	assert_true(o.key_matches);
	device_delivery_free(&o);
	free(p);
}

static void
test_payload_members(void **s)
{
	struct device d;
	char *m;

	(void)s;
	assert_int_equal(device_new(&d, "laptop-7", DEVICE_EC_P256), 0);
	m = device_payload_members(&d, false);
	assert_non_null(strstr(m, "\"deviceId\":\"laptop-7\",\"devicePublicKey\":\"MF"));
	free(m);
	m = device_payload_members(&d, true);
	assert_non_null(strstr(m, "\"deviceCertificate\":\"MII"));
	free(m);
	device_free(&d);
}

static void
test_oaep(void **s)
{
	struct device d;
	char key[PATH_MAX], ct[PATH_MAX], out[PATH_MAX];
	const char *mds[] = { "SHA256", "SHA384", "SHA512" };
	FILE *f;

	(void)s;
	assert_int_equal(device_new(&d, "rsa", DEVICE_RSA2048), 0);
	snprintf(key, sizeof(key), "%s/oaep.key", T);
	f = fopen(key, "w");
	assert_int_equal(PEM_write_PrivateKey(f, d.key, NULL, NULL, 0, NULL, NULL), 1);
	fclose(f);
	for (size_t i = 0; i < 3; i++) {
		char *b = device_oaep_encrypt_b64(d.key, "P@ssw0rd-import", mds[i]);
		size_t n;
		uint8_t *raw = device_unb64(b, &n);
		uint8_t *plain;

		assert_non_null(raw);
		assert_int_equal(n, 256);
		snprintf(ct, sizeof(ct), "%s/ct.bin", T);
		f = fopen(ct, "wb");
		fwrite(raw, 1, n, f);
		fclose(f);
		snprintf(out, sizeof(out), "%s/pt.bin", T);
		assert_int_equal(sh("openssl pkeyutl -decrypt -inkey '%s' -in '%s' -out '%s' "
		    "-pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:%s -pkeyopt rsa_mgf1_md:%s",
		    key, ct, out, mds[i], mds[i]), 0);
		plain = device_slurp(out, &n);
		assert_int_equal(n, strlen("P@ssw0rd-import"));
		assert_memory_equal(plain, "P@ssw0rd-import", n);
		free(plain);
		/* another digest does not decrypt it */
		assert_int_not_equal(sh("openssl pkeyutl -decrypt -inkey '%s' -in '%s' -out '%s' "
		    "-pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:%s 2>/dev/null", key, ct,
		    out, i == 0 ? "SHA512" : "SHA256"), 0);
		free(raw);
		free(b);
	}
	device_free(&d);
}

static int
setup(void **s)
{
	(void)s;
	snprintf(T, sizeof(T), "/tmp/certconn-device.XXXXXX");
	return mkdtemp(T) == NULL ? -1 : 0;
}

static int
teardown(void **s)
{
	(void)s;
	return sh("rm -rf '%s'", T) == 0 ? 0 : -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rsa_device),
		cmocka_unit_test(test_ec_device),
		cmocka_unit_test(test_legacy_pfx),
		cmocka_unit_test(test_payload_members),
		cmocka_unit_test(test_oaep),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
