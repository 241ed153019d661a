/*
 * keys_bench: what going through keys costs. RSA-2048 PKCS#1 v1.5 signing (SHA-256) and
 * PKCS#1 v1.5 decryption, measured in the same run two ways against the same SoftHSM2 key:
 *   direct    libp11 in this process (PKCS11_get_private_key, then EVP_PKEY_sign/decrypt)
 *   provider  the keyref provider -> a real keys process (2 channels) -> the token
 * at 1 and 2 concurrent callers, each for a fixed time. Prints ops/s and provider/direct.
 *
 *   keys_bench [-t SECONDS] [-r ROUNDS] [-v] [--no-seccomp]
 *   keys_bench [-t SECONDS] --profile direct|provider sign|decrypt CALLERS
 *       (one path alone, for perf/strace)
 *
 * Each path gets SECONDS (default 3) per operation and concurrency, in ROUNDS (default 6)
 * slices that alternate with the other path's; -v prints every round.
 *
 * Needs CC_BUILD_DIR (to find keys_only_main) or CERTCONND_KEYS, like the keys harness.
 * A benchmark, not a test: it reports the figures and the target (ratio >= 0.85) and exits 0
 * unless something does not work.
 */
/*
 * libp11.h declares its RSA_METHOD / EC_KEY_METHOD getters, types that OpenSSL hides
 * under OPENSSL_NO_DEPRECATED: this file alone (the in-process baseline) lifts it.
 */
#undef OPENSSL_NO_DEPRECATED
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libp11.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "certconn/keyref.h"
#include "keys_harness.h"
#include "test_token.h"

#define TARGET_RATIO 0.85
#define ROLE "bench"

struct bench_key {
	const char *how;        /* "direct" or "provider" */
	EVP_PKEY *key;
	OSSL_LIB_CTX *libctx;   /* for EVP_PKEY_CTX_new_from_pkey */
};

enum op { OP_SIGN, OP_DECRYPT };

static uint8_t g_digest[32];
static uint8_t g_ct[256];
static size_t g_ctlen;
static uint8_t g_secret[32];

static void
die(const char *what)
{
	fprintf(stderr, "keys_bench: %s failed\n", what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* One operation as a caller in net would do it: a fresh EVP_PKEY_CTX each time. */
static int
one_op(const struct bench_key *k, enum op op)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(k->libctx, k->key, NULL);
	uint8_t out[256];
	size_t outlen = sizeof(out);
	int ok = 0;

	if (ctx == NULL)
		return 0;
	if (op == OP_SIGN) {
		ok = EVP_PKEY_sign_init(ctx) == 1 &&
		    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
		    EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
		    EVP_PKEY_sign(ctx, out, &outlen, g_digest, sizeof(g_digest)) == 1 &&
		    outlen == 256;
	} else {
		ok = EVP_PKEY_decrypt_init(ctx) == 1 &&
		    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
		    EVP_PKEY_decrypt(ctx, out, &outlen, g_ct, g_ctlen) == 1 &&
		    outlen == sizeof(g_secret) && memcmp(out, g_secret, outlen) == 0;
	}
	OPENSSL_cleanse(out, sizeof(out));
	EVP_PKEY_CTX_free(ctx);
	return ok;
}

struct worker {
	const struct bench_key *k;
	enum op op;
	double until;
	atomic_int *go;
	long done;
	double cpu;             /* this caller thread's CPU time, seconds */
	int failed;
};

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct timespec c0, c1;

	while (!atomic_load(w->go))
		;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
	while (now_s() < w->until) {
		if (!one_op(w->k, w->op)) {
			w->failed = 1;
			ERR_print_errors_fp(stderr);
			break;
		}
		w->done++;
	}
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
	w->cpu = (double)(c1.tv_sec - c0.tv_sec) + (double)(c1.tv_nsec - c0.tv_nsec) / 1e9;
	return NULL;
}

/*
 * Operations done by nthreads callers in secs seconds; *elapsed gets the time taken and
 * *cpu the callers' CPU time (for keyref: what the provider and the client cost in net).
 */
static long
measure(const struct bench_key *k, enum op op, int nthreads, double secs, double *elapsed,
    double *cpu)
{
	struct worker w[8];
	pthread_t th[8];
	atomic_int go = 0;
	double t0, t1;
	long total = 0;

	*cpu = 0;
	for (int i = 0; i < nthreads; i++) {
		w[i] = (struct worker){ .k = k, .op = op, .go = &go };
		if (pthread_create(&th[i], NULL, worker_main, &w[i]) != 0)
			die("pthread_create");
	}
	t0 = now_s();
	for (int i = 0; i < nthreads; i++)
		w[i].until = t0 + secs;
	atomic_store(&go, 1);
	for (int i = 0; i < nthreads; i++) {
		pthread_join(th[i], NULL);
		if (w[i].failed) {
			fprintf(stderr, "keys_bench: %s %s failed\n", k->how,
			    op == OP_SIGN ? "sign" : "decrypt");
			exit(1);
		}
		total += w[i].done;
		*cpu += w[i].cpu;
	}
	t1 = now_s();
	*elapsed = t1 - t0;
	return total;
}

/* ---- direct: libp11 in this process ---- */

struct direct {
	PKCS11_CTX *ctx;
	PKCS11_SLOT *slots;
	unsigned int nslots;
	EVP_PKEY *key;
};

static void
direct_open(struct direct *d, const struct test_token *t)
{
	PKCS11_SLOT *slot = NULL;
	PKCS11_KEY *keys = NULL;
	unsigned int nkeys = 0;

	d->ctx = PKCS11_CTX_new();
	if (d->ctx == NULL || PKCS11_CTX_load(d->ctx, t->module) != 0)
		die("PKCS11_CTX_load");
	if (PKCS11_enumerate_slots(d->ctx, &d->slots, &d->nslots) != 0)
		die("PKCS11_enumerate_slots");
	for (unsigned int i = 0; i < d->nslots; i++) {
		if (d->slots[i].token != NULL && strcmp(d->slots[i].token->label, t->label) == 0) {
			slot = &d->slots[i];
			break;
		}
	}
	if (slot == NULL)
		slot = PKCS11_find_token(d->ctx, d->slots, d->nslots);
	if (slot == NULL || PKCS11_login(slot, 0, t->pin) != 0)
		die("PKCS11_login");
	if (PKCS11_enumerate_keys(slot->token, &keys, &nkeys) != 0)
		die("PKCS11_enumerate_keys");
	for (unsigned int i = 0; i < nkeys; i++) {
		if (keys[i].label != NULL && strcmp(keys[i].label, ROLE) == 0 && keys[i].isPrivate) {
			d->key = PKCS11_get_private_key(&keys[i]);
			break;
		}
	}
	if (d->key == NULL)
		die("PKCS11_get_private_key");
}

static void
direct_close(struct direct *d)
{
	EVP_PKEY_free(d->key);
	PKCS11_release_all_slots(d->ctx, d->slots, d->nslots);
	PKCS11_CTX_unload(d->ctx);
	PKCS11_CTX_free(d->ctx);
}

int
main(int argc, char **argv)
{
	static const struct hsm_role_spec roles[] = {
		{ ROLE, HSM_KEY_RSA, 2048, NULL, HSM_USE_SIGN | HSM_USE_DECRYPT },
	};
	static const struct { enum op op; const char *name; } ops[] = {
		{ OP_SIGN, "sign RSA-2048 PKCS#1 SHA-256" },
		{ OP_DECRYPT, "decrypt RSA-2048 PKCS#1" },
	};
	double secs = 3.0;
	const char *profile_path = NULL;
	enum op profile_op = OP_SIGN;
	int profile_callers = 1;
	int rounds = 6;
	int verbose = 0;
	struct test_token *t;
	struct keys_harness kh;
	struct keys_harness_opts o;
	struct cc_conf_role role;
	struct keyref_client *cl;
	struct direct d;
	struct bench_key direct_k, prov_k;
	EVP_PKEY_CTX *ectx;
	int fds[2], no_seccomp = 0, below = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-t") == 0 && i + 1 < argc)
			secs = atof(argv[++i]);
		else if (strcmp(argv[i], "-r") == 0 && i + 1 < argc)
			rounds = atoi(argv[++i]);
		else if (strcmp(argv[i], "--no-seccomp") == 0)
			no_seccomp = 1;
		else if (strcmp(argv[i], "-v") == 0)
			verbose = 1;
		else if (strcmp(argv[i], "--profile") == 0 && i + 3 < argc) {
			/* --profile direct|provider sign|decrypt N: run one path only (for perf) */
			profile_path = argv[++i];
			profile_op = strcmp(argv[++i], "sign") == 0 ? OP_SIGN : OP_DECRYPT;
			profile_callers = atoi(argv[++i]);
		}
		else {
			fprintf(stderr, "usage: keys_bench [-t SECONDS] [-r ROUNDS] [-v] [--no-seccomp] "
			    "[--profile direct|provider sign|decrypt CALLERS]\n");
			return 2;
		}
	}
	if (secs < 0.2)
		secs = 0.2;
	if (rounds < 1 || rounds > 100)
		rounds = 6;

	t = test_token_new("keys-bench", "2468", roles, 1);

	/* keys with two channels, the role allowed to sign and decrypt with PKCS#1 */
	role = keys_harness_role(t, ROLE, 0);
	role.mechs = CC_MECH_SIGN_RSA_PKCS1 | CC_MECH_DECRYPT_RSA_PKCS1;
	memset(&o, 0, sizeof(o));
	o.token = t;
	o.roles = &role;
	o.nroles = 1;
	o.channels = 2;
	o.user = geteuid() == 0 ? TEST_KEYS_USER : NULL;
	o.no_seccomp = no_seccomp;
	if (keys_harness_start(&kh, &o) == -1)
		die("starting keys");
	fds[0] = kh.peer_fd[0];
	fds[1] = kh.peer_fd[1];
	kh.peer_fd[0] = kh.peer_fd[1] = -1; /* the client owns them now */
	cl = keyref_client_new(fds, 2, 30000);
	prov_k.how = "provider";
	prov_k.libctx = OSSL_LIB_CTX_new();
	if (cl == NULL || prov_k.libctx == NULL || keyref_provider_load(prov_k.libctx, cl) == -1)
		die("keyref_provider_load");
	prov_k.key = keyref_load_key(prov_k.libctx, cl, ROLE, NULL);
	if (prov_k.key == NULL)
		die("keyref_load_key");

	direct_open(&d, t);
	direct_k.how = "direct";
	direct_k.key = d.key;
	direct_k.libctx = NULL;
	if (EVP_PKEY_eq(prov_k.key, d.key) != 1)
		die("the two paths use the same key:");

	/* inputs: a digest, and a ciphertext made with the public key */
	if (RAND_bytes(g_digest, sizeof(g_digest)) != 1 || RAND_bytes(g_secret, sizeof(g_secret)) != 1)
		die("RAND_bytes");
	ectx = EVP_PKEY_CTX_new_from_pkey(prov_k.libctx, prov_k.key, NULL);
	g_ctlen = sizeof(g_ct);
	if (ectx == NULL || EVP_PKEY_encrypt_init(ectx) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(ectx, RSA_PKCS1_PADDING) != 1 ||
	    EVP_PKEY_encrypt(ectx, g_ct, &g_ctlen, g_secret, sizeof(g_secret)) != 1)
		die("encrypting the input");
	EVP_PKEY_CTX_free(ectx);
	/* both paths work (and decrypt correctly) before anything is timed */
	for (int i = 0; i < 2; i++)
		if (!one_op(&direct_k, ops[i].op) || !one_op(&prov_k, ops[i].op))
			die("a first operation");

	if (profile_path != NULL) {
		const struct bench_key *k = strcmp(profile_path, "direct") == 0 ? &direct_k : &prov_k;
		double el;
		long cnt;

		if (profile_callers < 1 || profile_callers > 8)
			profile_callers = 1;
		double cpu;

		cnt = measure(k, profile_op, profile_callers, secs, &el, &cpu);
		printf("keys_bench: %s %s, %d callers: %.1f ops/s, callers' CPU %.1f us/op\n",
		    k->how, profile_op == OP_SIGN ? "sign" : "decrypt", profile_callers,
		    (double)cnt / el, cpu * 1e6 / (double)cnt);
		goto done;
	}
	printf("keys_bench: RSA-2048 on SoftHSM2 (%s), %.1f s per path and row in %d "
	    "alternating rounds, keys with 2 channels%s\n\n", t->module, secs, rounds,
	    no_seccomp ? ", keys without seccomp" : "");
	printf("%-30s %7s %13s %15s %7s  %-14s %s\n", "operation", "callers", "direct ops/s",
	    "provider ops/s", "ratio", "target", "net CPU us/op");
	fflush(stdout);
	for (int oi = 0; oi < 2; oi++) {
		for (int n = 1; n <= 2; n++) {
			double dt[2] = { 0, 0 }, cpus[2] = { 0, 0 }, el, cpu, dops, pops, ratio;
			long cnt[2] = { 0, 0 };

			/*
			 * Rounds that alternate the two paths (and which goes first), so that a
			 * change in the machine's load during the run hits both alike.
			 */
			(void)measure(&direct_k, ops[oi].op, n, 0.2, &el, &cpu);
			(void)measure(&prov_k, ops[oi].op, n, 0.2, &el, &cpu);
			for (int round = 0; round < rounds; round++) {
				double rate[2];

				for (int j = 0; j < 2; j++) {
					int which = (round + j) % 2;
					long c = measure(which == 0 ? &direct_k : &prov_k, ops[oi].op, n,
					    secs / rounds, &el, &cpu);

					cnt[which] += c;
					dt[which] += el;
					cpus[which] += cpu;
					rate[which] = (double)c / el;
				}
				if (verbose)
					printf("  round %2d: direct %8.1f  provider %8.1f  ratio %.3f\n", round,
					    rate[0], rate[1], rate[1] / rate[0]);
			}
			dops = (double)cnt[0] / dt[0];
			pops = (double)cnt[1] / dt[1];
			ratio = pops / dops;
			printf("%-30s %7d %13.1f %15.1f %7.3f  >= %.2f %-5s %9.1f\n", ops[oi].name, n,
			    dops, pops, ratio, TARGET_RATIO, ratio >= TARGET_RATIO ? "met" : "BELOW",
			    cpus[1] * 1e6 / (double)cnt[1]);
			fflush(stdout);
			if (ratio < TARGET_RATIO)
				below++;
		}
	}
	printf("\nnet CPU us/op: what keyref (EVP, provider, client) costs the calling threads "
	    "per provider operation\n");
	{
		/* The bare round trip to keys: a request that needs no token work. */
		struct keyref_key_info ki;
		double t0 = now_s();
		int nrt = 2000;

		for (int i = 0; i < nrt; i++) {
			if (keyref_client_key_info(cl, ROLE, &ki) != CC_KE_OK)
				die("KEY_INFO");
			keyref_key_info_free(&ki);
		}
		printf("round trip to keys without token work (KEY_INFO): %.1f us\n",
		    (now_s() - t0) * 1e6 / nrt);
	}
	printf("\nkeys_bench: %s\n", below == 0 ? "every ratio meets the target" :
	    "some ratios are below the target");

done:
	direct_close(&d);
	EVP_PKEY_free(prov_k.key);
	keyref_provider_unload(prov_k.libctx);
	OSSL_LIB_CTX_free(prov_k.libctx);
	keyref_client_free(cl);
	(void)keys_harness_stop(&kh);
	test_token_free(t);
	return 0;
}
