/*
 * Token faults, with the fault-injecting module (tests/lib/faulty_pkcs11.c) in front of a
 * real SoftHSM2 token: a lost session, a removed device, a missing token, a device error and
 * a hung module each fail the request with a clear error, keys recovers (new session, or
 * C_Finalize + C_Initialize + login) and the next request succeeds; a module hung for more
 * than 3 x op_timeout_ms makes keys exit with status 75. A token that refuses parameters it
 * was seen to accept sends the role to its fallback. When run as root, keys runs as
 * _certconn-keys with seccomp and Landlock on, so recovery is tested inside the sandbox.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
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

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "certconn/proto.h"
#include "certconn/util.h"
#include "keys_harness.h"
#include "test_token.h"

static const struct hsm_role_spec roles[] = {
	{ "ra", HSM_KEY_RSA, 2048, NULL, HSM_USE_SIGN | HSM_USE_DECRYPT },
	{ "client", HSM_KEY_EC, 0, "P-256", HSM_USE_SIGN },
};

static struct test_token *tok;
static struct keys_harness kh;
static char control[512], logpath[512], errtext[512];
static EVP_PKEY *ra_pub, *client_pub;
static uint64_t reqid = 1000;

static void
inject(const char *lines)
{
	/* Same file (the module holds it open): truncate and write, never replace. */
	int fd = open(control, O_WRONLY | O_TRUNC | O_CLOEXEC);

	assert_true(fd != -1);
	assert_int_equal(write(fd, lines, strlen(lines)), (ssize_t)strlen(lines));
	close(fd);
}

static int
control_empty(void)
{
	struct stat st;

	return stat(control, &st) == 0 && st.st_size == 0;
}

static int
start_keys(struct keys_harness *k, int channels)
{
	struct cc_conf_role cr[2];
	struct keys_harness_opts o;

	cr[0] = keys_harness_role(tok, "ra", CC_ROLE_FALLBACK);
	cr[1] = keys_harness_role(tok, "client", 0);
	memset(&o, 0, sizeof(o));
	o.token = tok;
	o.module = keys_harness_faulty_module();
	o.roles = cr;
	o.nroles = 2;
	o.channels = channels;
	o.op_timeout_ms = 1000;
	o.stderr_path = logpath;
	o.verbose = 1;
	if (geteuid() == 0)
		o.user = TEST_KEYS_USER;
	return keys_harness_start(k, &o);
}

static int
setup(void **state)
{
	int fd;

	(void)state;
	tok = test_token_new("faults", "1357", roles, 2);
	snprintf(control, sizeof(control), "%s/faults", tok->dir);
	snprintf(logpath, sizeof(logpath), "%s/keys.log", tok->dir);
	fd = open(control, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd == -1)
		return -1;
	close(fd);
	test_token_chown_keys(control);
	setenv("FAULTY_PKCS11_CONTROL", control, 1);
	if (start_keys(&kh, 2) == -1)
		return -1;
	if (keys_harness_key_info(kh.peer_fd[0], ++reqid, "ra", &ra_pub, NULL, NULL, NULL,
	    errtext, sizeof(errtext)) != 0 ||
	    keys_harness_key_info(kh.peer_fd[0], ++reqid, "client", &client_pub, NULL, NULL,
	    NULL, errtext, sizeof(errtext)) != 0)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(ra_pub);
	EVP_PKEY_free(client_pub);
	keys_harness_stop(&kh);
	if (getenv("KEYS_TEST_KEEP_LOG") != NULL)
		fprintf(stderr, "keys log: %s\n", logpath);
	else
		test_token_free(tok);
	return 0;
}

/* 0 and a verified signature, or the keys error code. */
static int
sign(int chan, const char *role, EVP_PKEY *pk, uint8_t alg)
{
	uint8_t dg[32], *sig;
	size_t sig_len;
	int r;

	RAND_bytes(dg, sizeof(dg));
	r = keys_harness_sign(kh.peer_fd[chan], ++reqid, role, alg, CC_MD_SHA256, 0,
	    alg == CC_SIG_RSA_PSS ? 32 : 0, dg, sizeof(dg), &sig, &sig_len, errtext,
	    sizeof(errtext));
	if (r == 0) {
		assert_true(keys_harness_verify(pk, alg, CC_MD_SHA256, 0, alg == CC_SIG_RSA_PSS ?
		    32 : 0, dg, sizeof(dg), sig, sig_len));
		free(sig);
	}
	return r;
}

static int
decrypt(int chan, uint8_t md)
{
	uint8_t msg[20], ct[512], *out;
	size_t ct_len = sizeof(ct), out_len;
	int r;

	RAND_bytes(msg, sizeof(msg));
	assert_int_equal(keys_harness_encrypt(ra_pub, CC_DEC_RSA_OAEP, md, md, NULL, 0, msg,
	    sizeof(msg), ct, &ct_len), 0);
	r = keys_harness_decrypt(kh.peer_fd[chan], ++reqid, "ra", CC_DEC_RSA_OAEP, md, md, NULL,
	    0, ct, ct_len, &out, &out_len, errtext, sizeof(errtext));
	if (r == 0) {
		assert_int_equal(out_len, sizeof(msg));
		assert_memory_equal(out, msg, sizeof(msg));
		free(out);
	}
	return r;
}

static void
test_session_invalid(void **state)
{
	(void)state;
	assert_int_equal(sign(0, "ra", ra_pub, CC_SIG_RSA_PKCS1), 0);
	inject("session_invalid\n");
	assert_int_equal(sign(0, "ra", ra_pub, CC_SIG_RSA_PKCS1), CC_KE_TOKEN);
	assert_non_null(strstr(errtext, "CKR_SESSION_HANDLE_INVALID"));
	assert_non_null(strstr(errtext, "new session"));
	assert_true(control_empty());
	/* the next request on the same channel succeeds */
	assert_int_equal(sign(0, "ra", ra_pub, CC_SIG_RSA_PKCS1), 0);
	assert_int_equal(sign(0, "client", client_pub, CC_SIG_ECDSA), 0);
	assert_true(keys_harness_file_contains(logpath, "channel 0: opened a new PKCS#11 session"));
}

static void
test_session_closed_on_decrypt(void **state)
{
	(void)state;
	inject("session_closed\n");
	assert_int_equal(decrypt(1, CC_MD_SHA1), CC_KE_TOKEN);
	assert_non_null(strstr(errtext, "CKR_SESSION_CLOSED"));
	assert_int_equal(decrypt(1, CC_MD_SHA1), 0);
}

/* The three device faults: the request fails, keys re-initialises the module (C_Finalize,
 * C_Initialize, token, objects, login) and serves the next request on every channel. */
static void
device_fault(const char *fault, const char *rv)
{
	char line[128];

	inject(fault);
	assert_int_equal(sign(0, "client", client_pub, CC_SIG_ECDSA), CC_KE_TOKEN);
	assert_non_null(strstr(errtext, rv));
	assert_non_null(strstr(errtext, "re-initialising"));
	assert_int_equal(sign(0, "client", client_pub, CC_SIG_ECDSA), 0);
	/* channel 1's session died with C_Finalize: it opens a new one by itself */
	assert_int_equal(sign(1, "ra", ra_pub, CC_SIG_RSA_PSS), 0);
	assert_int_equal(decrypt(1, CC_MD_SHA512), 0);
	snprintf(line, sizeof(line), "token fault in sign (CKM_ECDSA): %s", rv);
	assert_true(keys_harness_file_contains(logpath, line));
	assert_true(keys_harness_file_contains(logpath, "re-initialised and logged in"));
}

static void
test_device_removed(void **state)
{
	(void)state;
	device_fault("device_removed\n", "CKR_DEVICE_REMOVED");
}

static void
test_token_not_present(void **state)
{
	(void)state;
	device_fault("token_not_present\n", "CKR_TOKEN_NOT_PRESENT");
}

static void
test_device_error(void **state)
{
	(void)state;
	device_fault("device_error\n", "CKR_DEVICE_ERROR");
}

/* A fault in C_Sign (after C_SignInit succeeded) leaves SoftHSM's operation active: keys
 * must not be stuck with it. */
static void
test_fault_in_second_call(void **state)
{
	(void)state;
	inject("pass\nsession_invalid\n");
	assert_int_equal(sign(0, "ra", ra_pub, CC_SIG_RSA_PKCS1), CC_KE_TOKEN);
	assert_int_equal(sign(0, "ra", ra_pub, CC_SIG_RSA_PKCS1), 0);
	inject("pass\ndevice_error\n");
	assert_int_equal(decrypt(0, CC_MD_SHA1), CC_KE_TOKEN);
	assert_int_equal(decrypt(0, CC_MD_SHA1), 0);
}

/* A hung module call: the watchdog answers CC_KE_TIMEOUT within the timeout, the late
 * result is dropped, the other channel is served meanwhile, and the next request on the
 * same channel is answered once the module returns. */
static void
test_hang_timeout(void **state)
{
	uint8_t dg[32] = { 7 }, *sig;
	size_t sig_len;
	uint64_t t0, t1;
	struct pollfd p;

	(void)state;
	inject("hang_ms 2000\n");
	t0 = cc_now_ms();
	assert_int_equal(keys_harness_sign(kh.peer_fd[0], ++reqid, "client", CC_SIG_ECDSA,
	    CC_MD_SHA256, 0, 0, dg, 32, &sig, &sig_len, errtext, sizeof(errtext)),
	    CC_KE_TIMEOUT);
	t1 = cc_now_ms();
	assert_true(t1 - t0 >= 1000);
	assert_true(t1 - t0 < 1800);
	assert_non_null(strstr(errtext, "did not answer SIGN_REQ within 1000 ms"));
	/* channel 1 is not held up by channel 0's hung call */
	t0 = cc_now_ms();
	assert_int_equal(sign(1, "ra", ra_pub, CC_SIG_RSA_PKCS1), 0);
	assert_true(cc_now_ms() - t0 < 900);
	/* the next request on channel 0 gets its own answer, not the late one */
	assert_int_equal(sign(0, "client", client_pub, CC_SIG_ECDSA), 0);
	p.fd = kh.peer_fd[0];
	p.events = POLLIN;
	assert_int_equal(poll(&p, 1, 300), 0);
	assert_true(keys_harness_file_contains(logpath, "is discarded (already answered with a "
	    "timeout)"));
}

/* A token that refuses parameters it accepted at start (CKR_MECHANISM_PARAM_INVALID at
 * first use) is remembered as lacking them: a role with the fallback uses it from then on,
 * in the same request. */
static void
test_param_invalid_falls_back(void **state)
{
	struct cc_wbuf w;
	struct cc_frame f;
	int found = 0;

	(void)state;
	assert_int_equal(decrypt(0, CC_MD_SHA1), 0);
	inject("param_invalid\n");
	assert_int_equal(decrypt(0, CC_MD_SHA1), 0);
	assert_true(keys_harness_file_contains(logpath, "the token refuses CKM_RSA_PKCS_OAEP with "
	    "SHA1/MGF1-SHA1 (CKR_MECHANISM_PARAM_INVALID); using CKM_RSA_X_509 + OAEP in keys"));
	assert_int_equal(cc_enc_empty(&w, CC_MSG_KEYS_LIST_REQ, 3), 0);
	assert_int_equal(keys_harness_parent_send(&kh, &w), 0);
	while (keys_harness_parent_recv(&kh, &f, 10000) == 1) {
		struct cc_keys_list_item it;
		const char *why;
		int end = f.msg.type == CC_MSG_KEYS_LIST_END;

		if (!end && cc_dec_keys_list_item(&f.msg, &it, &why) == 0 &&
		    strcmp(it.role, "ra") == 0) {
			printf("  ra decrypt: %s\n", it.decrypt_path);
			assert_non_null(strstr(it.decrypt_path, "CKM_RSA_PKCS_OAEP sha224/256/384/512 "
			    "via CKM_RSA_X_509 + OAEP in keys (fallback)") == NULL ?
			    strstr(it.decrypt_path, "sha1/224/256/384/512 via CKM_RSA_X_509") :
			    it.decrypt_path);
			found = 1;
		}
		cc_frame_free(&f);
		if (end)
			break;
	}
	assert_true(found);
}

/* Hung for more than 3 x op_timeout_ms: keys exits with EX_TEMPFAIL for the parent to
 * restart it. Last, since it ends this keys process. */
static void
test_hang_exit_75(void **state)
{
	uint8_t dg[32] = { 9 }, *sig;
	size_t sig_len;
	uint64_t t0 = cc_now_ms();

	(void)state;
	inject("hang_ms 20000\n");
	assert_int_equal(keys_harness_sign(kh.peer_fd[1], ++reqid, "ra", CC_SIG_RSA_PKCS1,
	    CC_MD_SHA256, 0, 0, dg, 32, &sig, &sig_len, errtext, sizeof(errtext)),
	    CC_KE_TIMEOUT);
	assert_int_equal(keys_harness_wait(&kh, 10000), 75);
	assert_true(cc_now_ms() - t0 < 6000);
	assert_true(keys_harness_file_contains(logpath, "exiting with status 75"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_session_invalid),
		cmocka_unit_test(test_session_closed_on_decrypt),
		cmocka_unit_test(test_device_removed),
		cmocka_unit_test(test_token_not_present),
		cmocka_unit_test(test_device_error),
		cmocka_unit_test(test_fault_in_second_call),
		cmocka_unit_test(test_hang_timeout),
		cmocka_unit_test(test_param_invalid_falls_back),
		cmocka_unit_test(test_hang_exit_75),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
