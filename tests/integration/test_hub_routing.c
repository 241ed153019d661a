/*
 * Routing by feature, leases and exactly-once results with several connectors against one
 * certconn-hub on loopback. Each connector is a separate process (this binary run with
 * --connector) that leases, "processes" (records what it took in its own log) and uploads,
 * and uploads every batch a second time as a connector retrying after a lost answer would.
 *
 *   A: pkcs, revoke      leases and then hangs; the test kills it with SIGKILL
 *   B: pkcs, scep        serves
 *   C: revoke, pfx-import serves (revocation through the Intune-shaped endpoints)
 *   nobody has pkcs-recrypt
 *
 * Checked: a connector only ever receives requests of its features; A's leased requests are
 * served by B and C once the leases expire; every request but the pkcs-recrypt ones ends
 * completed, once, by a connector with its feature; every "Recorded" answer is unique per
 * request; the pkcs-recrypt requests stay queued, never leased.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <cmocka.h>

#include <curl/curl.h>

#include "hub_harness.h"

#define N_PKCS 30
#define N_REVOKE 20
#define N_SCEP 12
#define N_PFX 10
#define N_RECRYPT 5

/* ---- the connector process ---- */

struct worker {
	const char *url, *ca, *cert, *key, *id, *features, *mode, *log, *stop;
};

static void
wlog(const char *path, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int fd;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd == -1)
		_exit(3);
	if (write(fd, line, strlen(line)) != (ssize_t)strlen(line) || fsync(fd) == -1)
		_exit(3);
	close(fd);
}

static int
wpost(const struct worker *w, const char *path, const char *av, const char *body,
    struct hub_resp *r)
{
	char url[512], crid[128], avh[64];
	static unsigned seq;
	const char *hdr[] = { avh, crid, "Content-Type: application/json", NULL };

	snprintf(url, sizeof(url), "%s/api/%s", w->url, path);
	snprintf(crid, sizeof(crid), "client-request-id: %s-%u-%u", w->id, (unsigned)getpid(),
	    ++seq);
	snprintf(avh, sizeof(avh), "api-version: %s", av);
	return hub_http(url, "POST", hdr, body, w->ca, w->cert, w->key, r);
}

/* One round for one feature: lease, record, upload twice. Returns the number leased. */
static int
work_feature(const struct worker *w, const char *feature, bool hold)
{
	bool rev = strcmp(feature, "revoke") == 0;
	struct hub_resp r, u;
	char body[65536];
	const cJSON *it;
	int n = 0;
	size_t o;

	if (rev)
		snprintf(body, sizeof(body), "{\"downloadParameters\":{\"maxRequests\":%d,"
		    "\"issuerName\":null}}", hold ? 10 : 4);
	else
		snprintf(body, sizeof(body), "{\"downloadParameters\":{\"feature\":\"%s\","
		    "\"maxRequests\":%d,\"leaseSeconds\":%d}}", feature, hold ? 10 : 4,
		    hold ? 3 : 30);
	if (wpost(w, rev ? "CertificateAuthorityRequests/downloadRevocationRequests" :
	    "ConnectorRequests/downloadRequests", rev ? "5019-05-05" : "1.0", body, &r) == -1 ||
	    r.status != 200) {
		wlog(w->log, "error download %s %ld\n", feature, r.status);
		hub_resp_free(&r);
		return 0;
	}
	o = (size_t)snprintf(body, sizeof(body), "{\"results\":[");
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(r.json, "value")) {
		const char *id = hub_json_str(it, rev ? "requestContext" : "requestId");
		const char *f = rev ? "revoke" : hub_json_str(it, "feature");

		wlog(w->log, "%s %s %s\n", hold ? "held" : "processed", f, id);
		if (rev)
			o += (size_t)snprintf(body + o, sizeof(body) - o, "%s{\"requestContext\":"
			    "\"%s\",\"succeeded\":true,\"errorCode\":0,\"errorMessage\":\"\"}",
			    n ? "," : "", id);
		else
			o += (size_t)snprintf(body + o, sizeof(body) - o, "%s{\"requestId\":\"%s\","
			    "\"succeeded\":true,\"errorCode\":0,\"result\":{\"processedBy\":\"%s\"}}",
			    n ? "," : "", id, w->id);
		n++;
	}
	hub_resp_free(&r);
	if (n == 0 || hold)
		return n;
	snprintf(body + o, sizeof(body) - o, "]}");
	for (int round = 0; round < 2; round++) {
		if (wpost(w, rev ? "CertificateAuthorityRequests/uploadRevocationResults" :
		    "ConnectorRequests/uploadResults", rev ? "5019-05-05" : "1.0", body, &u) == -1 ||
		    u.status != 200) {
			wlog(w->log, "error upload %s %ld\n", feature, u.status);
			hub_resp_free(&u);
			continue;
		}
		if (rev) {
			wlog(w->log, "%s revoke-batch %s\n", round ? "retry" : "upload",
			    cJSON_IsTrue(cJSON_GetObjectItem(u.json, "value")) ? "true" : "false");
		} else {
			cJSON_ArrayForEach(it, cJSON_GetObjectItem(u.json, "value"))
				wlog(w->log, "%s %s %s\n", round ? "retry" : "upload",
				    hub_json_str(it, "status"), hub_json_str(it, "requestId"));
		}
		hub_resp_free(&u);
	}
	return n;
}

static int
worker_main(int argc, char **argv)
{
	struct worker w;
	char feats[128], *save, *f;
	bool hold;

	if (argc != 11)
		return 2;
	w = (struct worker){ argv[2], argv[3], argv[4], argv[5], argv[6], argv[7], argv[8],
		argv[9], argv[10] };
	hold = strcmp(w.mode, "hold") == 0;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (hold) {
		snprintf(feats, sizeof(feats), "%s", w.features);
		for (f = strtok_r(feats, ",", &save); f != NULL; f = strtok_r(NULL, ",", &save))
			work_feature(&w, f, true);
		wlog(w.log, "ready\n");
		for (;;)
			pause();   /* holding the leases until SIGKILL */
	}
	while (access(w.stop, F_OK) != 0) {
		int any = 0;

		snprintf(feats, sizeof(feats), "%s", w.features);
		for (f = strtok_r(feats, ",", &save); f != NULL; f = strtok_r(NULL, ",", &save))
			any += work_feature(&w, f, false);
		if (!any)
			usleep(100000);
	}
	curl_global_cleanup();
	return 0;
}

/* ---- the test ---- */

static struct hub_harness H;
static struct hub_test_conn A, B, C;

static pid_t
spawn(const struct hub_test_conn *c, const char *features, const char *mode, const char *log,
    const char *stop)
{
	pid_t pid = fork();

	if (pid == 0) {
		execl("/proc/self/exe", "test_hub_routing", "--connector", H.url, H.ca_pem, c->cert,
		    c->key, c->id, features, mode, log, stop, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *b;
	long n;

	if (f == NULL)
		return strdup("");
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	b = calloc(1, (size_t)n + 1);
	if (fread(b, 1, (size_t)n, f) != (size_t)n)
		b[0] = '\0';
	fclose(f);
	return b;
}

static int
count_lines(const char *text, const char *prefix)
{
	int n = 0;
	size_t pl = strlen(prefix);

	for (const char *p = text; *p != '\0'; p = strchr(p, '\n') ? strchr(p, '\n') + 1 :
	    p + strlen(p))
		if (strncmp(p, prefix, pl) == 0)
			n++;
	return n;
}

/* Whether every "processed|held FEATURE" line of a log names one of the allowed features. */
static void
assert_only_features(const char *text, const char *allowed)
{
	for (const char *p = text; *p != '\0';) {
		const char *nl = strchr(p, '\n');
		char verb[32], feat[64], id[128];

		if (sscanf(p, "%31s %63s %127s", verb, feat, id) == 3 &&
		    (strcmp(verb, "processed") == 0 || strcmp(verb, "held") == 0)) {
			char want[80];
			snprintf(want, sizeof(want), ",%s,", feat);
			if (strstr(allowed, want) == NULL)
				fail_msg("a connector with %s received a %s request (%s)", allowed, feat,
				    id);
		}
		p = nl ? nl + 1 : p + strlen(p);
	}
}

static int
setup(void **state)
{
	(void)state;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (hub_harness_start(&H, "\"lease\": {\"min_s\": 1, \"default_s\": 3}") == -1 ||
	    hub_test_register(&H, "acme", "[\"pkcs\",\"revoke\"]", "0.1.0", &A) == -1 ||
	    hub_test_register(&H, "acme", "[\"pkcs\",\"scep\"]", "0.1.0", &B) == -1 ||
	    hub_test_register(&H, "acme", "[\"revoke\",\"pfx-import\"]", "0.1.0", &C) == -1)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	int st;

	(void)state;
	/* The hub must stop cleanly: exit 0 (under ASan, also no leak). */
	st = hub_harness_stop(&H);
	if (st != 0)
		fprintf(stderr, "certconn-hub exited with %d; see %s\n", st, H.log);
	hub_harness_free(&H);
	curl_global_cleanup();
	return st == 0 ? 0 : -1;
}

struct tally {
	int total, queued, completed, other;
	int by_wrong_feature;
};

static void
tally_requests(struct tally *t)
{
	struct hub_resp r;
	const cJSON *it;

	memset(t, 0, sizeof(*t));
	assert_int_equal(hub_admin(&H, "GET", "requests?tenantId=acme&limit=1000", NULL, &r), 0);
	assert_int_equal(r.status, 200);
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(r.json, "value")) {
		const char *st = hub_json_str(it, "state"), *f = hub_json_str(it, "feature");
		const char *by = hub_json_str(it, "completedBy");

		t->total++;
		if (strcmp(st, "queued") == 0)
			t->queued++;
		else if (strcmp(st, "completed") == 0)
			t->completed++;
		else
			t->other++;
		if (by != NULL) {
			bool ok = (strcmp(by, B.id) == 0 && (strcmp(f, "pkcs") == 0 ||
			    strcmp(f, "scep") == 0)) || (strcmp(by, C.id) == 0 &&
			    (strcmp(f, "revoke") == 0 || strcmp(f, "pfx-import") == 0));
			if (!ok)
				t->by_wrong_feature++;
		}
	}
	hub_resp_free(&r);
}

static void
test_routing_and_sigkill(void **state)
{
	char log_a[400], log_b[400], log_c[400], stop[400], id[80];
	char *la, *lb, *lc;
	pid_t pa, pb, pc;
	struct tally t;
	int st, i, held_pkcs, held_rev;

	(void)state;
	snprintf(log_a, sizeof(log_a), "%s/conn-a.log", H.dir);
	snprintf(log_b, sizeof(log_b), "%s/conn-b.log", H.dir);
	snprintf(log_c, sizeof(log_c), "%s/conn-c.log", H.dir);
	snprintf(stop, sizeof(stop), "%s/stop", H.dir);
	for (i = 0; i < N_PKCS; i++)
		assert_int_equal(hub_test_queue(&H, "acme", "pkcs", "{\"deviceId\":\"d\","
		    "\"devicePublicKey\":\"AAAA\"}", id, sizeof(id)), 0);
	for (i = 0; i < N_REVOKE; i++)
		assert_int_equal(hub_test_queue(&H, "acme", "revoke", "{\"serialNumber\":\"0A\"}",
		    id, sizeof(id)), 0);
	for (i = 0; i < N_SCEP; i++)
		assert_int_equal(hub_test_queue(&H, "acme", "scep", "{\"type\":\"approve\"}", id,
		    sizeof(id)), 0);
	for (i = 0; i < N_PFX; i++)
		assert_int_equal(hub_test_queue(&H, "acme", "pfx-import", "{\"pfx\":\"AA\","
		    "\"encryptedPassword\":\"BB\",\"paddingScheme\":\"OaepSha512\","
		    "\"devicePublicKey\":\"CC\"}", id, sizeof(id)), 0);
	for (i = 0; i < N_RECRYPT; i++)
		assert_int_equal(hub_test_queue(&H, "acme", "pkcs-recrypt", "{\"deviceId\":\"d\","
		    "\"encryptedPayload\":\"AA\",\"devicePublicKey\":\"CC\"}", id, sizeof(id)), 0);

	/* A leases pkcs and revoke requests, then is killed while holding them. */
	pa = spawn(&A, "pkcs,revoke", "hold", log_a, stop);
	for (i = 0; i < 600; i++) {
		la = slurp(log_a);
		if (strstr(la, "ready\n") != NULL)
			break;
		free(la);
		la = NULL;
		usleep(50000);
	}
	assert_non_null(la);
	held_pkcs = count_lines(la, "held pkcs ");
	held_rev = count_lines(la, "held revoke ");
	assert_int_equal(held_pkcs, 10);
	assert_int_equal(held_rev, 10);
	assert_int_equal(kill(pa, SIGKILL), 0);
	assert_int_equal(waitpid(pa, &st, 0), pa);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);

	/* B and C serve everything their features allow. */
	pb = spawn(&B, "pkcs,scep", "work", log_b, stop);
	pc = spawn(&C, "revoke,pfx-import", "work", log_c, stop);
	for (i = 0; i < 600; i++) {
		tally_requests(&t);
		if (t.completed == N_PKCS + N_REVOKE + N_SCEP + N_PFX)
			break;
		usleep(100000);
	}
	close(open(stop, O_WRONLY | O_CREAT, 0644));
	assert_int_equal(waitpid(pb, &st, 0), pb);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(waitpid(pc, &st, 0), pc);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);

	tally_requests(&t);
	assert_int_equal(t.total, N_PKCS + N_REVOKE + N_SCEP + N_PFX + N_RECRYPT);
	assert_int_equal(t.completed, N_PKCS + N_REVOKE + N_SCEP + N_PFX);
	assert_int_equal(t.queued, N_RECRYPT);     /* nobody has pkcs-recrypt */
	assert_int_equal(t.other, 0);
	assert_int_equal(t.by_wrong_feature, 0);

	la = la ? la : slurp(log_a);
	lb = slurp(log_b);
	lc = slurp(log_c);
	/* only their own features */
	assert_only_features(la, ",pkcs,revoke,");
	assert_only_features(lb, ",pkcs,scep,");
	assert_only_features(lc, ",revoke,pfx-import,");
	/* A's leased requests were served by the others after the leases expired */
	for (const char *p = la; (p = strstr(p, "held ")) != NULL; p++) {
		char feat[32], rid[80], want[160];
		sscanf(p, "held %31s %79s", feat, rid);
		snprintf(want, sizeof(want), "processed %s %s\n", feat, rid);
		assert_non_null(strstr(strcmp(feat, "pkcs") == 0 ? lb : lc, want));
	}
	/* every result recorded exactly once; every retry told it was already recorded */
	assert_int_equal(count_lines(lb, "upload Recorded "), N_PKCS + N_SCEP);
	assert_int_equal(count_lines(lb, "retry AlreadyRecorded "), N_PKCS + N_SCEP);
	assert_int_equal(count_lines(lc, "upload Recorded "), N_PFX);
	assert_int_equal(count_lines(lc, "retry AlreadyRecorded "), N_PFX);
	assert_int_equal(count_lines(lc, "upload revoke-batch false"), 0);
	assert_int_equal(count_lines(lc, "retry revoke-batch false"), 0);
	assert_int_equal(count_lines(lb, "error "), 0);
	assert_int_equal(count_lines(lc, "error "), 0);
	/* each request processed by exactly one serving connector (A's were never uploaded) */
	assert_int_equal(count_lines(lb, "processed ") + count_lines(lc, "processed "),
	    N_PKCS + N_REVOKE + N_SCEP + N_PFX);
	/* the admin view: A's requests were leased twice, by A then by B/C */
	{
		struct hub_resp r;
		const cJSON *it;
		int second = 0;

		assert_int_equal(hub_admin(&H, "GET", "requests?tenantId=acme&state=completed&"
		    "limit=1000", NULL, &r), 0);
		cJSON_ArrayForEach(it, cJSON_GetObjectItem(r.json, "value"))
			if (cJSON_GetObjectItem(it, "attempt")->valueint == 2)
				second++;
		assert_int_equal(second, held_pkcs + held_rev);
		hub_resp_free(&r);
	}
	free(la);
	free(lb);
	free(lc);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_routing_and_sigkill),
	};

	if (argc > 1 && strcmp(argv[1], "--connector") == 0)
		return worker_main(argc, argv);
	return cmocka_run_group_tests(tests, setup, teardown);
}
