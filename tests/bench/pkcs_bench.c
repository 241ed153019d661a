/*
 * pkcs_bench: PKCS requests per second end to end, for RSA-2048 devices: the dev appliance
 * (`certconnctl dev up` in a temporary directory: certconnd with keys in SoftHSM2, the local
 * CA, the dev hub on loopback), N pkcs requests queued at once through the hub's admin API,
 * timed from the first queueing to the last completed result the hub holds. Two runs in the
 * same appliance: the key pool empty (net.flows.key_pool rsa-2048 = 0: every request makes
 * its key) and full (depth >= N, filled before the run: the bench waits until net's CPU time
 * stops growing).
 *
 * Where the time goes, two ways, both printed with their method:
 *  - service time per request: each burst's wall time x workers / requests; the difference
 *    between the pool-empty and pool-full runs is key generation;
 *  - from the connector's own events, 5 requests one at a time (no queueing): 1020
 *    PkcsDownloadedRequest -> 1050 is the CA's part, 1050 -> 1100 the delivery (the burst
 *    runs' event times are printed too, but include the wait for a worker);
 *  - (burst runs) per request, 1020 PkcsDownloadedRequest -> 1050
 *    PkcsIssuedSuccess (key pair, CSR, the CA: issuance signed by keys, stored in SQLite),
 *    1050 -> 1100 PkcsUploadSuccess (PKCS#12, CMS envelopes, the upload to the hub); the
 *    event times are the connector's clock in microseconds. With the pool full the key pair is
 *    taken ready-made, so 1020 -> 1050 is the CA's part (and CSR); the difference between the
 *    two runs is what key generation costs in the flow.
 *  - measured separately in this process, same machine, same moment: an RSA-2048 key
 *    generation with OpenSSL's default provider (what the pool does), and an RSA-3072
 *    signature with the dev CA key in the dev token through libp11/SoftHSM2 in-process
 *    (what keys does for each certificate, without the socket round trip).
 *
 *   pkcs_bench [-n REQUESTS] [-d POOL_DEPTH] [-w WORKERS]
 *
 * Needs CERTCONNCTL (and a built certconnd and certconn-hub next to it), like the
 * integration tests. A benchmark, not a test: exits 0 unless something does not work.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "device.h"
#include "hsm.h"

#define SEQ_RUNS 5

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time (user + system, clock ticks) of a process. */
static long
cpu_ticks(pid_t pid)
{
	char p[64], buf[2048], *s;
	FILE *f;
	long ut = 0, st = 0;

	snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
	f = fopen(p, "r");
	if (f == NULL)
		return -1;
	if (fgets(buf, sizeof(buf), f) == NULL)
		buf[0] = '\0';
	fclose(f);
	s = strrchr(buf, ')');
	/* fields after the command: state(3) ... utime(14) stime(15) */
	if (s == NULL || sscanf(s + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld",
	    &ut, &st) != 2)
		return -1;
	return ut + st;
}

/* Waits until net has been idle (no CPU time added) for 2 s: the pool is full. */
static void
wait_net_idle(struct flows_env *e, int max_s)
{
	pid_t net = 0;
	long last = -1;
	int idle = 0;

	if (flows_pids(e, NULL, &net, NULL) == -1 || net <= 0)
		return;
	for (int i = 0; i < max_s * 4 && idle < 8; i++) {
		long t = cpu_ticks(net);
		idle = t == last ? idle + 1 : 0;
		last = t;
		usleep(250000);
	}
}

/* The event time of one event (id, correlation id = request id) in operational.jsonl. */
static double
event_time(struct flows_env *e, int id, const char *req)
{
	char p[512], *line = NULL;
	size_t cap = 0;
	FILE *f;
	double t = -1;

	snprintf(p, sizeof(p), "%s/log/operational.jsonl", e->dir);
	f = fopen(p, "r");
	if (f == NULL)
		return -1;
	while (getline(&line, &cap, f) > 0) {
		cJSON *ev;
		const cJSON *i, *c, *tm;

		if (strstr(line, req) == NULL)
			continue;
		ev = cJSON_Parse(line);
		i = cJSON_GetObjectItem(ev, "id");
		c = cJSON_GetObjectItem(ev, "correlationId");
		tm = cJSON_GetObjectItem(ev, "time");
		if (cJSON_IsNumber(i) && i->valueint == id && cJSON_IsString(c) &&
		    strcmp(c->valuestring, req) == 0 && cJSON_IsString(tm)) {
			struct tm b = { 0 };
			char *rest = strptime(tm->valuestring, "%Y-%m-%dT%H:%M:%S", &b);
			if (rest != NULL)
				t = (double)timegm(&b) + (*rest == '.' ? strtod(rest, NULL) : 0);
		}
		cJSON_Delete(ev);
	}
	free(line);
	fclose(f);
	return t;
}

struct run {
	int n;
	double wall_s;
	double issue_ms, deliver_ms; /* means over the requests: 1020->1050, 1050->1100 */
	double issue_sd, deliver_sd;
	int ok;
};

static void
mean_sd(const double *v, int n, double *mean, double *sd)
{
	double s = 0, q = 0;

	for (int i = 0; i < n; i++)
		s += v[i];
	*mean = n > 0 ? s / n : 0;
	for (int i = 0; i < n; i++)
		q += (v[i] - *mean) * (v[i] - *mean);
	/* square root by Newton's method: the benches do not link libm */
	q = n > 1 ? q / (n - 1) : 0;
	*sd = q > 0 ? q : 0;
	for (int i = 0; i < 60 && q > 0; i++)
		*sd = 0.5 * (*sd + q / *sd);
}

static int
one_run(struct flows_env *e, const char *payload, int n, struct run *r)
{
	char (*ids)[80] = calloc((size_t)n, sizeof(*ids));
	double *a = calloc((size_t)n, sizeof(double)), *b = calloc((size_t)n, sizeof(double));
	double t0;
	int done = 0, k = 0;

	memset(r, 0, sizeof(*r));
	r->n = n;
	if (ids == NULL || a == NULL || b == NULL)
		return -1;
	t0 = now_s();
	for (int i = 0; i < n; i++)
		if (flows_queue(e, "pkcs", payload, ids[i], sizeof(ids[i])) == -1)
			return -1;
	for (int i = 0; i < n; i++) {
		cJSON *v = flows_wait(e, ids[i], 600);
		const cJSON *s = cJSON_GetObjectItem(v, "succeeded");

		if (cJSON_IsTrue(s))
			done++;
		cJSON_Delete(v);
	}
	r->wall_s = now_s() - t0;
	r->ok = done;
	usleep(500000); /* the last events reach the files */
	for (int i = 0; i < n; i++) {
		double d = event_time(e, 1020, ids[i]), is = event_time(e, 1050, ids[i]),
		    up = event_time(e, 1100, ids[i]);

		if (d < 0 || is < 0 || up < 0)
			continue;
		a[k] = (is - d) * 1e3;
		b[k] = (up - is) * 1e3;
		k++;
	}
	mean_sd(a, k, &r->issue_ms, &r->issue_sd);
	mean_sd(b, k, &r->deliver_ms, &r->deliver_sd);
	free(ids);
	free(a);
	free(b);
	return 0;
}

/* An RSA-2048 key pair with the default provider, as the pool makes them: mean ms. */
static double
keygen_ms(int count)
{
	double t0 = now_s();

	for (int i = 0; i < count; i++)
		EVP_PKEY_free(EVP_RSA_gen(2048));
	return (now_s() - t0) * 1e3 / count;
}

/* A signature with the dev CA key (RSA-3072) through libp11 in-process: mean ms. */
static double
ca_sign_ms(struct flows_env *e, int count)
{
	char env[512], pinf[512];
	uint8_t dg[32], *sig = NULL, *pin = NULL;
	size_t siglen, n;
	struct hsm *h;
	double t0, ms = -1;

	snprintf(env, sizeof(env), "SOFTHSM2_CONF=%s/softhsm2.conf", e->dir);
	snprintf(pinf, sizeof(pinf), "%s/pin", e->dir);
	pin = device_slurp(pinf, &n);
	if (pin == NULL)
		return -1;
	pin[strcspn((char *)pin, "\r\n")] = 0;
	h = hsm_open("/usr/lib/softhsm/libsofthsm2.so", env, "certconn", (char *)pin);
	OPENSSL_cleanse(pin, n);
	free(pin);
	if (h == NULL)
		return -1;
	RAND_bytes(dg, sizeof(dg));
	t0 = now_s();
	for (int i = 0; i < count; i++) {
		if (hsm_sign_digest(h, "pkcs11:token=certconn;object=ca", "SHA256", dg, sizeof(dg),
		    &sig, &siglen) == -1)
			goto out;
		free(sig);
	}
	ms = (now_s() - t0) * 1e3 / count;
out:
	hsm_close(h);
	return ms;
}

static void
print_run(const char *name, const struct run *r)
{
	printf("%-22s %3d/%-3d ok  %7.2f s  %6.2f req/s   1020->1050 %7.1f ms (sd %.1f)   "
	    "1050->1100 %6.1f ms (sd %.1f)\n", name, r->ok, r->n, r->wall_s, r->ok / r->wall_s,
	    r->issue_ms, r->issue_sd, r->deliver_ms, r->deliver_sd);
}

int
main(int argc, char **argv)
{
	struct flows_env e;
	struct device d;
	struct run empty, full;
	char patch[512], *m, *payload = NULL;
	int n = 40, depth = 0, workers = 2, ch;
	double kg, cs, seq_issue = 0, seq_deliver = 0;

	while ((ch = getopt(argc, argv, "n:d:w:")) != -1) {
		switch (ch) {
		case 'n':
			n = atoi(optarg);
			break;
		case 'd':
			depth = atoi(optarg);
			break;
		case 'w':
			workers = atoi(optarg);
			break;
		default:
			fprintf(stderr, "usage: pkcs_bench [-n REQUESTS] [-d POOL_DEPTH] [-w WORKERS]\n");
			return 2;
		}
	}
	if (n < 1 || n > 256 || workers < 1 || workers > 32) {
		fprintf(stderr, "pkcs_bench: -n 1..256, -w 1..32\n");
		return 2;
	}
	if (depth <= 0)
		depth = n + 8 > 256 ? 256 : n + 8;
	/* Poll every second (the dev default is 5 s): the bench measures the connector, not
	 * the polling interval. */
	snprintf(patch, sizeof(patch), "{\"service\":{\"poll_interval_s\":1},\"flows\":{"
	    "\"workers\":%d,\"key_pool\":{\"rsa-2048\":0,\"ec-p256\":0}}}", workers);
	if (flows_env_up(&e, patch) == -1)
		return 1;
	if (device_new(&d, "bench-device", DEVICE_RSA2048) == -1)
		goto fail;
	m = device_payload_members(&d, false);
	if (m == NULL || asprintf(&payload, "{%s,\"subject\":{\"cn\":\"bench-device\"}}", m) < 0)
		goto fail;
	free(m);
	printf("pkcs_bench: %d RSA-2048 pkcs requests per run, %d worker(s), hub and connector on "
	    "loopback, keys in SoftHSM2, %ld CPUs\n", n, workers, sysconf(_SC_NPROCESSORS_ONLN));

	/* A warm-up request: TLS sessions, SQLite pages, the hub's caches. */
	{
		struct run w;
		if (one_run(&e, payload, 1, &w) == -1 || w.ok != 1)
			goto fail;
	}
	if (one_run(&e, payload, n, &empty) == -1)
		goto fail;
	print_run("pool empty (depth 0)", &empty);

	snprintf(patch, sizeof(patch), "{\"flows\":{\"key_pool\":{\"rsa-2048\":%d}}}", depth);
	if (flows_env_patch(&e, patch) == -1)
		goto fail;
	wait_net_idle(&e, 120);
	if (one_run(&e, payload, n, &full) == -1)
		goto fail;
	snprintf(patch, sizeof(patch), "pool full (depth %d)", depth);
	print_run(patch, &full);

	/* One request at a time with the pool full: no queueing in the connector, so the event
	 * times are the work itself (1020->1050: CSR, record, CA; 1050->1100: delivery). */
	{
		double a = 0, b = 0;

		for (int i = 0; i < SEQ_RUNS; i++) {
			struct run r1;

			wait_net_idle(&e, 30);
			if (one_run(&e, payload, 1, &r1) == -1 || r1.ok != 1)
				goto fail;
			a += r1.issue_ms;
			b += r1.deliver_ms;
		}
		seq_issue = a / SEQ_RUNS;
		seq_deliver = b / SEQ_RUNS;
		printf("%-22s %d requests one at a time: 1020->1050 %.1f ms, 1050->1100 %.1f ms\n",
		    "sequential, pool full", SEQ_RUNS, seq_issue, seq_deliver);
	}
	kg = keygen_ms(20);
	cs = ca_sign_ms(&e, 200);
	printf("\nmeasured separately in this process:\n");
	printf("  RSA-2048 key generation (OpenSSL default provider)      %7.1f ms\n", kg);
	printf("  RSA-3072 CA signature, dev token via libp11/SoftHSM2     %7.2f ms\n", cs);
	{
		/* Service time per request: the run's wall time shared by the workers. The event
		 * times of the burst runs include the wait for a free worker (1020 is written when a
		 * request is accepted), so the shares below use the service time instead. */
		double se = empty.wall_s * 1e3 * workers / n, sf = full.wall_s * 1e3 * workers / n;

		printf("\nservice time per request (wall x workers / requests): pool empty %.0f ms, "
		    "pool full %.0f ms\n", se, sf);
		printf("shares of the pool-empty service time:\n");
		printf("  key generation   (empty - full service time) %7.1f ms  %3.0f%%   "
		    "(separately: %.1f ms per key)\n", se - sf, 100 * (se - sf) / se, kg);
		printf("  CA               (sequential 1020->1050)      %7.1f ms  %3.0f%%   (CSR, "
		    "idempotency record, issuance)\n", seq_issue, 100 * seq_issue / se);
		printf("    keys: the CA signature (in-process SoftHSM)  %7.2f ms  %3.0f%%\n", cs,
		    100 * cs / se);
		printf("  delivery + upload (sequential 1050->1100)    %7.1f ms  %3.0f%%   (PKCS#12, "
		    "CMS, kept copy, hub)\n", seq_deliver, 100 * seq_deliver / se);
	}
	printf("\nspeed-up of a full pool: %.2fx\n", (full.ok / full.wall_s) /
	    (empty.ok / empty.wall_s));
	free(payload);
	device_free(&d);
	flows_env_down(&e, false);
	return empty.ok == n && full.ok == n ? 0 : 1;
fail:
	fprintf(stderr, "pkcs_bench: the appliance did not work; its logs:\n");
	free(payload);
	flows_env_down(&e, true);
	return 1;
}
