/*
 * scep_bench: PKCSReq enrollments against certconnd with every key in SoftHSM2, then the
 * same load against micromdm/scep's server (keys in memory), the benchmark.
 *
 *   scep_bench [-n ENROLLMENTS] [-c CLIENT_THREADS] [--dir DEVDIR] [--no-micromdm]
 *              [--micromdm-bits BITS]
 *
 * Without --dir it brings a dev appliance up in a temporary directory (certconnctl dev up,
 * $CERTCONNCTL or the certconnctl of this build) and down again at the end. micromdm's
 * server is built from tests/peers/micromdm (tests/lib/micromdm_peer: Debian's
 * golang-github-micromdm-scep-dev 2.1.0, CSR signer behind a mutex) and started on loopback
 * with a fresh file-depot CA of --micromdm-bits: 3072 by default, the size of certconnd's
 * dev CA key, so both CAs sign with the same key size. micromdm's CA key is also its RA key,
 * so its decryption and CertRep signature are RSA-3072 too, where certconnd's RA key is
 * RSA-2048 (docs/scep.md gives figures for 2048, 3072 and 4096, micromdm's own default).
 *
 * Device keys (RSA-2048), self-signed certificates and requests are made before the clock
 * starts (the same keys, with new requests, for the second server). Client threads then run the enrollments (GetCACert once, then PKCSReq by POST,
 * AES-256, the static challenge; one HTTP connection per request, as SCEP clients do) and
 * the bench reports for certconnd:
 *  - enrollments/s and p50/p99 latency;
 *  - certconnd's CPU time per enrollment: utime+stime from /proc of its whole process tree
 *    (the parent and every descendant: net, keys), not the hub, not this client;
 *  - in the same run, the SoftHSM time of the private-key operations one enrollment needs,
 *    measured in this process through libp11 on the same token and keys (CPU time of this
 *    process, single thread): the RA decrypts the envelope's key (RSA-2048 PKCS#1 v1.5),
 *    the CA signs the certificate (RSA-3072 in dev, SHA-256), the RA signs the CertRep
 *    (RSA-2048, SHA-256);
 *  - the HSM-bound efficiency = SoftHSM time per enrollment / certconnd CPU per enrollment
 *    (target >= 0.8).
 * Then for micromdm: enrollments/s, latency and server CPU per enrollment (its process
 * tree), and the ratios the targets name: certconnd CPU per enrollment <= 1/3 of
 * micromdm's, certconnd's enrollments/s >= 1.5x micromdm's at the same client load. On a
 * 2-core machine client and server share the CPU: compare CPU per enrollment as well as
 * rate (this client's own CPU per enrollment is printed too).
 *
 * A benchmark, not a test: it prints the figures honestly, targets met or not, and exits 0
 * when it could measure both servers.
 */
/* libp11.h declares RSA_METHOD getters that OpenSSL hides under OPENSSL_NO_DEPRECATED;
 * this benchmark alone (the in-process SoftHSM baseline) lifts it, as keys_bench does. */
#undef OPENSSL_NO_DEPRECATED
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>
#include <libp11.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "micromdm_peer.h"
#include "scep_client.h"
#include "test_token.h"

#define TARGET_EFFICIENCY 0.8
#define TARGET_CPU_RATIO (1.0 / 3.0)
#define TARGET_RATE_RATIO 1.5
#define HSM_ROUNDS 300
#define MAX_THREADS 64
#define MAX_TREE 256

struct job {
	EVP_PKEY *key;
	X509 *self;
	X509_REQ *csr;
	double latency_ms;
	int ok;
};

struct load {
	struct job *jobs;
	int n;
	atomic_int next;
	const struct sc_client *proto;   /* after GetCACert; copied per thread */
	bool des_reply;
};

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void
die(const char *fmt, const char *arg)
{
	fprintf(stderr, "scep_bench: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n");
	exit(1);
}

static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *b;
	long len;
	size_t n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || len > (1L << 20)) {
		fclose(f);
		return NULL;
	}
	rewind(f);
	b = calloc(1, (size_t)len + 1);
	n = b != NULL ? fread(b, 1, (size_t)len, f) : 0;
	fclose(f);
	if (b != NULL)
		b[n] = '\0';
	return b;
}

/* ---- CPU time of a process tree, from /proc ---- */

struct pstat {
	int pid, ppid;
	char comm[32];
	double cpu;       /* utime + stime, seconds */
	double ccpu;      /* cutime + cstime: reaped children */
};

static int
read_pstat(int pid, struct pstat *ps)
{
	char path[64], s[1024], *open_, *close_;
	unsigned long ut, st;
	long cut, cst;
	double hz = (double)sysconf(_SC_CLK_TCK);
	FILE *f;
	size_t n;

	/* /proc files have no size: read, do not seek */
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	n = fread(s, 1, sizeof(s) - 1, f);
	fclose(f);
	s[n] = '\0';
	open_ = strchr(s, '(');
	close_ = strrchr(s, ')');
	if (open_ == NULL || close_ == NULL || close_ < open_)
		return -1;
	ps->pid = pid;
	snprintf(ps->comm, sizeof(ps->comm), "%.*s", (int)(close_ - open_ - 1), open_ + 1);
	/* after ")": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
	 * utime stime cutime cstime */
	if (sscanf(close_ + 2, "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %ld %ld",
	    &ps->ppid, &ut, &st, &cut, &cst) != 5)
		return -1;
	ps->cpu = (double)(ut + st) / hz;
	ps->ccpu = (double)(cut + cst) / hz;
	return 0;
}

/* root and all its descendants now; returns how many (at most max). */
static int
tree(int root, struct pstat *out, int max)
{
	struct pstat all[4096];
	int nall = 0, n = 0;
	DIR *d = opendir("/proc");
	struct dirent *e;

	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL && nall < (int)(sizeof(all) / sizeof(all[0]))) {
		int pid = atoi(e->d_name);

		if (pid > 0 && read_pstat(pid, &all[nall]) == 0)
			nall++;
	}
	closedir(d);
	for (int i = 0; i < nall && n < max; i++)
		if (all[i].pid == root)
			out[n++] = all[i];
	/* breadth first: every process whose parent is already in the list */
	for (int k = 0; k < n; k++)
		for (int i = 0; i < nall && n < max; i++)
			if (all[i].ppid == out[k].pid)
				out[n++] = all[i];
	return n;
}

/* The tree's CPU seconds: live processes plus what the root has reaped. */
static double
tree_cpu(int root)
{
	struct pstat t[MAX_TREE];
	int n = tree(root, t, MAX_TREE);
	double s = 0;

	for (int i = 0; i < n; i++)
		s += t[i].cpu + (i == 0 ? t[i].ccpu : 0);
	return s;
}

static double
self_cpu(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the load ---- */

static void *
worker(void *arg)
{
	struct load *l = arg;
	struct sc_client c = *l->proto;  /* shallow: the certificates are shared read-only */

	c.accept_des_reply = l->des_reply;
	for (;;) {
		int i = atomic_fetch_add(&l->next, 1);
		struct sc_reply r;
		double t0;

		if (i >= l->n)
			break;
		t0 = now_ms();
		if (sc_pkcsreq(&c, l->jobs[i].key, l->jobs[i].self, l->jobs[i].csr, NULL, &r) == 0) {
			if (r.pki_status == SC_STATUS_SUCCESS && r.cert != NULL)
				l->jobs[i].ok = 1;
			else if (i < 3)
				fprintf(stderr, "scep_bench: enrollment %d: HTTP %ld status %d "
				    "failInfo %d %s\n", i, r.http_status, r.pki_status, r.fail_info,
				    r.fail_text);
			sc_reply_free(&r);
		}
		l->jobs[i].latency_ms = now_ms() - t0;
	}
	return NULL;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

struct result {
	int ok, n;
	double secs, rate, p50, p99;
	double cpu_per;                 /* server tree, ms per enrollment */
	double client_per;              /* this process, ms per enrollment */
	int nproc;
	struct pstat before[MAX_TREE], after[MAX_TREE];
	int role_pid[3];                /* certconnd's parent, net, keys (from dev.json) */
};

static const char *const role_names[3] = { "parent", "net", "keys" };

struct keygen {
	struct job *jobs;
	int from, to;
	const char *prefix, *challenge;
	const struct job *keys_from;    /* NULL: new keys; else reuse these jobs' keys */
	int failed;
};

static void *
keygen_worker(void *arg)
{
	struct keygen *k = arg;

	for (int i = k->from; i < k->to; i++) {
		struct job *j = &k->jobs[i];
		char subj[96];

		snprintf(subj, sizeof(subj), "CN=%s-%d-%d", k->prefix, (int)getpid(), i);
		if (k->keys_from != NULL) {
			j->key = k->keys_from[i].key;
			if (!EVP_PKEY_up_ref(j->key))
				j->key = NULL;
		} else {
			j->key = sc_key_rsa(2048);
		}
		j->self = j->key != NULL ? sc_selfsigned(j->key, subj, 1) : NULL;
		j->csr = j->key != NULL ? sc_csr(j->key, subj, k->challenge, NULL) : NULL;
		if (j->self == NULL || j->csr == NULL)
			k->failed = 1;
	}
	return NULL;
}

/*
 * n device keys and requests, on two threads (before any clock starts). With keys_from,
 * the keys of those jobs are used again (each server sees every key once) with new
 * subjects, self-signed certificates and requests: RSA key generation is most of the
 * bench's wall time.
 */
static struct job *
make_jobs(int n, const char *prefix, const char *challenge, const struct job *keys_from)
{
	struct job *jobs = calloc((size_t)n, sizeof(*jobs));
	struct keygen k[2];
	pthread_t th[2];

	if (jobs == NULL)
		die("%s", "out of memory");
	for (int t = 0; t < 2; t++) {
		k[t] = (struct keygen){ jobs, t * n / 2, (t + 1) * n / 2, prefix, challenge,
			keys_from, 0 };
		pthread_create(&th[t], NULL, keygen_worker, &k[t]);
	}
	for (int t = 0; t < 2; t++)
		pthread_join(th[t], NULL);
	if (k[0].failed || k[1].failed)
		die("%s", "cannot make device keys");
	return jobs;
}

static void
free_jobs(struct job *jobs, int n)
{
	for (int i = 0; i < n; i++) {
		EVP_PKEY_free(jobs[i].key);
		X509_free(jobs[i].self);
		X509_REQ_free(jobs[i].csr);
	}
	free(jobs);
}

static void
run_load(const struct sc_client *proto, bool des_reply, struct job *jobs, int n, int threads,
    int server_pid, struct result *res)
{
	struct load l = { .jobs = jobs, .n = n, .proto = proto, .des_reply = des_reply };
	pthread_t th[MAX_THREADS];
	double *lat = calloc((size_t)n, sizeof(double)), t0, t1, c0, c1, s0, s1;
	int k = 0;

	if (lat == NULL)
		die("%s", "out of memory");
	{
		int roles[3];

		memcpy(roles, res->role_pid, sizeof(roles));
		memset(res, 0, sizeof(*res));
		memcpy(res->role_pid, roles, sizeof(roles));
	}
	res->n = n;
	atomic_init(&l.next, 0);
	res->nproc = tree(server_pid, res->before, MAX_TREE);
	c0 = tree_cpu(server_pid);
	s0 = self_cpu();
	t0 = now_ms();
	for (int i = 0; i < threads; i++)
		pthread_create(&th[i], NULL, worker, &l);
	for (int i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	t1 = now_ms();
	s1 = self_cpu();
	c1 = tree_cpu(server_pid);
	(void)tree(server_pid, res->after, MAX_TREE);
	for (int i = 0; i < n; i++)
		if (jobs[i].ok)
			lat[k++] = jobs[i].latency_ms;
	qsort(lat, (size_t)k, sizeof(double), cmp_double);
	res->ok = k;
	res->secs = (t1 - t0) / 1e3;
	if (k > 0) {
		res->rate = k / res->secs;
		res->p50 = lat[k / 2];
		res->p99 = lat[(k * 99) / 100 < k ? (k * 99) / 100 : k - 1];
		res->cpu_per = (c1 - c0) * 1e3 / k;
		res->client_per = (s1 - s0) * 1e3 / k;
	}
	free(lat);
}

static void
print_result(const char *title, const struct result *r)
{
	printf("%s\n", title);
	printf("  enrollments          %d of %d ok in %.2f s\n", r->ok, r->n, r->secs);
	printf("  enrollments/s        %.1f\n", r->rate);
	printf("  latency p50 / p99    %.1f ms / %.1f ms\n", r->p50, r->p99);
	printf("  server CPU           %.3f ms per enrollment (process tree, /proc)\n",
	    r->cpu_per);
	for (int i = 0; i < r->nproc && r->ok > 0; i++) {
		const struct pstat *b = &r->before[i];
		double d = -1;

		for (int j = 0; j < MAX_TREE && r->after[j].pid != 0; j++)
			if (r->after[j].pid == b->pid)
				d = r->after[j].cpu - b->cpu;
		if (d >= 0) {
			const char *role = "";

			for (int k = 0; k < 3; k++)
				if (r->role_pid[k] == b->pid)
					role = role_names[k];
			printf("    pid %-7d %-16s %-6s %.3f ms\n", b->pid, b->comm, role,
			    d * 1e3 / r->ok);
		}
	}
	printf("  client CPU           %.3f ms per enrollment (this process)\n", r->client_per);
}

/* ---- SoftHSM time, in this process (libp11) ---- */

struct p11 {
	PKCS11_CTX *ctx;
	PKCS11_SLOT *slots;
	unsigned int nslots;
	EVP_PKEY *ra, *ca;
};

static void
p11_open(struct p11 *p, const char *module, const char *label, const char *pin)
{
	PKCS11_SLOT *slot = NULL;
	PKCS11_KEY *keys = NULL;
	unsigned int nkeys = 0;

	p->ctx = PKCS11_CTX_new();
	if (p->ctx == NULL || PKCS11_CTX_load(p->ctx, module) != 0 ||
	    PKCS11_enumerate_slots(p->ctx, &p->slots, &p->nslots) != 0)
		die("%s", "cannot load the PKCS#11 module");
	for (unsigned int i = 0; i < p->nslots; i++)
		if (p->slots[i].token != NULL && strcmp(p->slots[i].token->label, label) == 0)
			slot = &p->slots[i];
	if (slot == NULL || PKCS11_login(slot, 0, pin) != 0 ||
	    PKCS11_enumerate_keys(slot->token, &keys, &nkeys) != 0)
		die("cannot log in to token %s", label);
	for (unsigned int i = 0; i < nkeys; i++) {
		if (keys[i].label == NULL || !keys[i].isPrivate)
			continue;
		if (strcmp(keys[i].label, "ra") == 0)
			p->ra = PKCS11_get_private_key(&keys[i]);
		if (strcmp(keys[i].label, "ca") == 0)
			p->ca = PKCS11_get_private_key(&keys[i]);
	}
	if (p->ra == NULL || p->ca == NULL)
		die("%s", "the token has no ra or ca key");
}

static void
p11_close(struct p11 *p)
{
	EVP_PKEY_free(p->ra);
	EVP_PKEY_free(p->ca);
	PKCS11_release_all_slots(p->ctx, p->slots, p->nslots);
	PKCS11_CTX_unload(p->ctx);
	PKCS11_CTX_free(p->ctx);
}

static double
cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ms of CPU (SoftHSM runs in this process) per operation. */
static double
time_sign(EVP_PKEY *k)
{
	unsigned char dg[32], sig[512];
	size_t sl;
	double t0 = cpu_now();

	RAND_bytes(dg, sizeof(dg));
	for (int i = 0; i < HSM_ROUNDS; i++) {
		EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(k, NULL);

		sl = sizeof(sig);
		if (c == NULL || EVP_PKEY_sign_init(c) != 1 ||
		    EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) != 1 ||
		    EVP_PKEY_CTX_set_signature_md(c, EVP_sha256()) != 1 ||
		    EVP_PKEY_sign(c, sig, &sl, dg, sizeof(dg)) != 1)
			die("%s", "SoftHSM sign failed");
		EVP_PKEY_CTX_free(c);
	}
	return (cpu_now() - t0) / HSM_ROUNDS;
}

static double
time_decrypt(EVP_PKEY *k)
{
	unsigned char key[32], ct[512], pt[512];
	size_t ctl = sizeof(ct), ptl;
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(k, NULL);
	double t0;

	/* the envelope's content key: 32 bytes for AES-256, PKCS#1 v1.5 */
	RAND_bytes(key, sizeof(key));
	if (c == NULL || EVP_PKEY_encrypt_init(c) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) != 1 ||
	    EVP_PKEY_encrypt(c, ct, &ctl, key, sizeof(key)) != 1)
		die("%s", "encryption to the RA key failed");
	EVP_PKEY_CTX_free(c);
	t0 = cpu_now();
	for (int i = 0; i < HSM_ROUNDS; i++) {
		c = EVP_PKEY_CTX_new(k, NULL);
		ptl = sizeof(pt);
		if (c == NULL || EVP_PKEY_decrypt_init(c) != 1 ||
		    EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) != 1 ||
		    EVP_PKEY_decrypt(c, pt, &ptl, ct, ctl) != 1)
			die("%s", "SoftHSM decrypt failed");
		EVP_PKEY_CTX_free(c);
	}
	return (cpu_now() - t0) / HSM_ROUNDS;
}

/* ---- main ---- */

static const char *
certconnctl_path(void)
{
	static char p[4096];
	const char *env = getenv("CERTCONNCTL");
	ssize_t n;
	char *slash;

	if (env != NULL)
		return env;
	/* <build>/bench/scep_bench -> <build>/src/certconnctl/certconnctl or <build>/certconnctl */
	n = readlink("/proc/self/exe", p, sizeof(p) - 64);
	if (n > 0) {
		p[n] = '\0';
		slash = strrchr(p, '/');
		if (slash != NULL) {
			*slash = '\0';
			slash = strrchr(p, '/');
		}
		if (slash != NULL) {
			static const char *const rel[] = { "/src/certconnctl/certconnctl",
				"/certconnctl" };
			size_t base = (size_t)(slash - p);

			for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
				snprintf(p + base, sizeof(p) - base, "%s", rel[i]);
				if (access(p, X_OK) == 0)
					return p;
			}
		}
	}
	return "certconnctl";
}

static const char *
jstr(cJSON *j, const char *a, const char *b)
{
	cJSON *o = cJSON_GetObjectItem(j, a);

	if (b != NULL)
		o = cJSON_GetObjectItem(o, b);
	if (!cJSON_IsString(o))
		die("dev.json has no string %s", b != NULL ? b : a);
	return o->valuestring;
}

int
main(int argc, char **argv)
{
	const char *dir = NULL, *ctl = certconnctl_path();
	int n = 400, threads = 4, own = 0, mm_bits = 3072, with_mm = 1, parent_pid;
	char tmp[64] = "", path[4200], cmd[8400], *s, *pw, *challenge;
	cJSON *j, *pids;
	struct result *r = calloc(1, sizeof(*r)), *m = calloc(1, sizeof(*m));
	struct p11 p = { 0 };
	struct job *jobs, *mjobs;
	struct sc_client proto;
	struct mm_peer mm;
	double t_dec, t_ra, t_ca, hsm, eff;
	int ca_bits;

	if (r == NULL || m == NULL)
		die("%s", "out of memory");
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
			n = atoi(argv[++i]);
		else if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			threads = atoi(argv[++i]);
		else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
			dir = argv[++i];
		else if (strcmp(argv[i], "--no-micromdm") == 0)
			with_mm = 0;
		else if (strcmp(argv[i], "--micromdm-bits") == 0 && i + 1 < argc)
			mm_bits = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: scep_bench [-n N] [-c THREADS] [--dir DEVDIR] "
			    "[--no-micromdm] [--micromdm-bits BITS (3072)]\n");
			return 2;
		}
	}
	if (n < 10 || n > 100000 || threads < 1 || threads > MAX_THREADS || mm_bits < 2048 ||
	    mm_bits > 8192)
		die("%s", "bad arguments (-n 10..100000, -c 1..64, --micromdm-bits 2048..8192)");
	signal(SIGPIPE, SIG_IGN);
	snprintf(tmp, sizeof(tmp), "/tmp/scep_bench.XXXXXX");
	if (mkdtemp(tmp) == NULL)
		die("%s", "mkdtemp");
	chmod(tmp, 0755);
	if (dir == NULL) {
		own = 1;
		snprintf(cmd, sizeof(cmd), "%s dev up --dir %s/dev > %s/up.log 2>&1", ctl, tmp,
		    tmp);
		fprintf(stderr, "scep_bench: certconnctl dev up --dir %s/dev ...\n", tmp);
		if (system(cmd) != 0)
			die("dev up failed; see %s/up.log", tmp);
		snprintf(path, sizeof(path), "%s/dev", tmp);
		dir = strdup(path);
	}
	snprintf(path, sizeof(path), "%s/dev.json", dir);
	s = slurp(path);
	j = s != NULL ? cJSON_Parse(s) : NULL;
	free(s);
	if (j == NULL)
		die("cannot read %s", path);
	pids = cJSON_GetObjectItem(j, "pids");
	if (!cJSON_IsNumber(cJSON_GetObjectItem(pids, "parent")))
		die("%s", "dev.json has no pids.parent (is certconnd running?)");
	parent_pid = cJSON_GetObjectItem(pids, "parent")->valueint;
	for (int k = 0; k < 3; k++) {
		cJSON *v = cJSON_GetObjectItem(pids, role_names[k]);

		r->role_pid[k] = cJSON_IsNumber(v) ? v->valueint : 0;
	}
	setenv("SOFTHSM2_CONF", jstr(j, "softhsm2_conf", NULL), 1);
	pw = slurp(jstr(j, "pin_file", NULL));
	if (pw == NULL)
		die("%s", "cannot read the PIN file");
	pw[strcspn(pw, "\r\n")] = '\0';
	p11_open(&p, jstr(j, "pkcs11_module", NULL), jstr(j, "token_label", NULL), pw);
	OPENSSL_cleanse(pw, strlen(pw));
	free(pw);
	snprintf(path, sizeof(path), "%s/scep-password", dir);
	challenge = slurp(path);
	if (challenge == NULL)
		die("%s has no scep-password (a dev directory from certconnctl dev up)", dir);
	challenge[strcspn(challenge, "\r\n")] = '\0';

	/* ---- certconnd ---- */
	fprintf(stderr, "scep_bench: %d device keys (RSA-2048), before the clock ...\n", n);
	jobs = make_jobs(n, "bench-cc", challenge, NULL);
	sc_client_init(&proto, jstr(j, "scep_url", NULL));
	if (sc_get_ca_cert(&proto) == -1)
		die("GetCACert from %s failed", proto.url);
	{
		/* warm-up: caches, the SQLite pages, the first CRL */
		struct job *w = make_jobs(8, "bench-cc-warm", challenge, NULL);
		run_load(&proto, false, w, 8, 2, parent_pid, r);
		free_jobs(w, 8);
	}
	fprintf(stderr, "scep_bench: certconnd: %d enrollments, %d threads ...\n", n, threads);
	run_load(&proto, false, jobs, n, threads, parent_pid, r);
	sc_client_free(&proto);

	/* SoftHSM time of one enrollment's private-key operations, same run, same token */
	t_dec = time_decrypt(p.ra);
	t_ra = time_sign(p.ra);
	t_ca = time_sign(p.ca);
	hsm = t_dec + t_ca + t_ra;
	ca_bits = EVP_PKEY_get_bits(p.ca);
	p11_close(&p);
	eff = r->cpu_per > 0 ? hsm / r->cpu_per : 0;

	snprintf(path, sizeof(path), "certconnd (keys in SoftHSM2), %d client threads, %s", threads,
	    jstr(j, "scep_url", NULL));
	print_result(path, r);
	printf("  SoftHSM time         %.3f ms per enrollment (RA decrypt RSA-2048 %.3f + CA sign "
	    "RSA-%d %.3f + RA sign RSA-2048 %.3f; in-process, libp11)\n", hsm, t_dec, ca_bits,
	    t_ca, t_ra);
	printf("  HSM-bound efficiency %.2f (target >= %.1f: %s)\n", eff, TARGET_EFFICIENCY,
	    eff >= TARGET_EFFICIENCY ? "met" : "NOT met");
	fflush(stdout);

	/* ---- micromdm/scep ---- */
	if (with_mm) {
		snprintf(path, sizeof(path), "%s/micromdm", tmp);
		if (mkdir(path, 0755) == -1 || mm_peer_start(&mm, path, mm_bits) == -1)
			die("%s", "cannot start micromdm's server (see above)");
		fprintf(stderr, "scep_bench: micromdm: %d requests (the same device keys) ...\n",
		    n);
		mjobs = make_jobs(n, "bench-mm", mm.challenge, jobs);
		sc_client_init(&proto, mm.url);
		if (sc_get_ca_cert(&proto) == -1)
			die("GetCACert from %s failed", mm.url);
		{
			struct job *w = make_jobs(8, "bench-mm-warm", mm.challenge, NULL);
			run_load(&proto, true, w, 8, 2, mm.pid, m);
			free_jobs(w, 8);
		}
		fprintf(stderr, "scep_bench: micromdm: %d enrollments, %d threads ...\n", n,
		    threads);
		run_load(&proto, true, mjobs, n, threads, mm.pid, m);
		free_jobs(mjobs, n);
		sc_client_free(&proto);
		mm_peer_stop(&mm);
		snprintf(path, sizeof(path), "micromdm/scep 2.1.0 (keys in memory, RSA-%d CA = RA, "
		    "signer behind a mutex), same load, %s", mm_bits, mm.url);
		print_result(path, m);
		printf("comparison (same client load: %d enrollments, %d threads)\n", n, threads);
		printf("  CPU per enrollment   certconnd %.3f ms / micromdm %.3f ms = %.2f "
		    "(target <= %.2f: %s)\n", r->cpu_per, m->cpu_per, m->cpu_per > 0 ?
		    r->cpu_per / m->cpu_per : 0, TARGET_CPU_RATIO, m->cpu_per > 0 &&
		    r->cpu_per / m->cpu_per <= TARGET_CPU_RATIO ? "met" : "NOT met");
		printf("  enrollments/s        certconnd %.1f / micromdm %.1f = %.2f "
		    "(target >= %.1f: %s)\n", r->rate, m->rate, m->rate > 0 ? r->rate / m->rate : 0,
		    TARGET_RATE_RATIO, m->rate > 0 && r->rate / m->rate >= TARGET_RATE_RATIO ?
		    "met" : "NOT met");
	} else {
		printf("micromdm/scep: not measured (--no-micromdm)\n");
	}
	free_jobs(jobs, n);
	OPENSSL_cleanse(challenge, strlen(challenge));
	free(challenge);
	cJSON_Delete(j);
	if (own) {
		snprintf(cmd, sizeof(cmd), "%s dev down --dir %s > /dev/null 2>&1", ctl, dir);
		if (system(cmd) != 0)
			fprintf(stderr, "scep_bench: dev down failed\n");
		free((char *)dir);
	}
	if (getenv("KEEP") == NULL)
		test_rmtree(tmp);
	else
		fprintf(stderr, "scep_bench: kept %s\n", tmp);
	{
		int ok = r->ok > 0 && (!with_mm || m->ok > 0);

		free(r);
		free(m);
		return ok ? 0 : 1;
	}
}
