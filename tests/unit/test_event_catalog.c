/*
 * The event catalogue: the compiled table is src/log/events.tsv, the generator's outputs match
 * the committed docs/events.md and appliance/journald/certconn.catalog (so neither goes
 * stale), and journalctl accepts the message catalogue.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "certconn/event.h"
#include "certconn/util.h"

extern char **environ;

static char tmpdir[64];

static int
rm_one(const char *p, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(p);
}

static int
setup(void **state)
{
	(void)state;
	strcpy(tmpdir, "/tmp/cc-evcat-XXXXXX");
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	(void)state;
	return nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Runs argv (PATH searched), stdout to out_path (NULL: inherited); the exit status. */
static int
run(char *const argv[], const char *out_path)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int st;

	assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
	if (out_path != NULL)
		assert_int_equal(posix_spawn_file_actions_addopen(&fa, 1, out_path,
		    O_WRONLY | O_CREAT | O_TRUNC, 0600), 0);
	if (posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		return -1;
	}
	posix_spawn_file_actions_destroy(&fa);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *
slurp(const char *path, size_t *len)
{
	uint8_t *buf;

	if (cc_read_file(path, 16u * 1024u * 1024u, &buf, len) == -1)
		fail_msg("cannot read %s: %s", path, strerror(errno));
	return (char *)buf;
}

static void
same_file(const char *generated, const char *committed, const char *hint)
{
	size_t a_len, b_len;
	char *a = slurp(generated, &a_len), *b = slurp(committed, &b_len);

	if (a_len != b_len || memcmp(a, b, a_len) != 0)
		fail_msg("%s differs from what scripts/gen-events.py generates now (%s); %s",
		    committed, generated, hint);
	free(a);
	free(b);
}

/* The compiled table is exactly the catalogue file, read here independently of the script. */
static void
test_table_is_tsv(void **state)
{
	char path[512], line[1024];
	FILE *f;
	size_t rows = 0;

	(void)state;
	snprintf(path, sizeof(path), "%s/src/log/events.tsv", CC_SOURCE_DIR);
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		char *cols[5], *save = NULL, *p = line;
		const struct cc_event_def *def;
		int i;

		line[strcspn(line, "\n")] = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		for (i = 0; i < 5; i++) {
			cols[i] = strtok_r(p, "\t", &save);
			p = NULL;
			assert_non_null(cols[i]);
		}
		assert_null(strtok_r(NULL, "\t", &save));
		def = cc_event_lookup((uint32_t)atoi(cols[0]));
		if (def == NULL)
			fail_msg("event %s from events.tsv is not in the table", cols[0]);
		assert_string_equal(def->name, cols[1]);
		assert_string_equal(cc_event_channel_name(def->channel), cols[2]);
		assert_int_equal(cc_event_channel_from_name(cols[2]), def->channel);
		assert_string_equal(def->category, cols[3]);
		assert_string_equal(def->meaning, cols[4]);
		rows++;
	}
	fclose(f);
	/* At least the seed's 61 events and certconn's DebugMessage. */
	assert_true(rows >= 62);
	assert_int_equal(cc_event_count(), rows);
	assert_int_equal(CC_EVENT_CATALOG_COUNT, rows);
}

static void
test_table_shape(void **state)
{
	size_t n = cc_event_count();

	(void)state;
	assert_null(cc_event_at(n));
	for (size_t i = 0; i < n; i++) {
		const struct cc_event_def *d = cc_event_at(i);
		int failure = strstr(d->name, "Fail") != NULL;

		assert_ptr_equal(cc_event_lookup(d->id), d);
		if (i > 0)
			assert_true(cc_event_at(i - 1)->id < d->id); /* sorted, unique */
		assert_true(d->id >= 1 && d->id <= 9999);         /* what the codec carries */
		assert_int_equal(strlen(d->message_id), 32);
		for (size_t k = 0; k < 32; k++)
			assert_true(isxdigit((unsigned char)d->message_id[k]) &&
			    !isupper((unsigned char)d->message_id[k]));
		for (size_t j = 0; j < i; j++) {
			assert_string_not_equal(cc_event_at(j)->message_id, d->message_id);
			assert_string_not_equal(cc_event_at(j)->name, d->name);
		}
		switch (d->channel) {
		case CC_CHAN_ADMIN:
			assert_int_equal(d->priority, failure ? LOG_ERR : LOG_INFO);
			break;
		case CC_CHAN_OPERATIONAL:
			assert_int_equal(d->priority, failure ? LOG_WARNING : LOG_INFO);
			break;
		case CC_CHAN_DEBUG:
			assert_int_equal(d->id, CC_EV_DEBUG_MESSAGE);
			assert_int_equal(d->priority, LOG_DEBUG);
			break;
		default:
			fail_msg("event %u has channel %u", d->id, d->channel);
		}
	}
	/* The constants are the ids. */
	assert_int_equal(CC_EV_PKCS_REQUEST_SUCCESS, 1000);
	assert_string_equal(cc_event_lookup(CC_EV_PKCS_DIGI_CERT_REQUEST)->name,
	    "PkcsDigiCertRequest");
	assert_string_equal(cc_event_lookup(CC_EV_HEALTH_MESSAGE_UPLOAD_FAILURE)->name,
	    "HealthMessageUploadFailure");
	/* MESSAGE_IDs are fixed for ever: a change breaks admins' saved queries. */
	assert_string_equal(cc_event_lookup(1000)->message_id, "5653d9507f465a959917cfce8fd4d6e4");
	assert_string_equal(cc_event_lookup(900)->message_id, "bef4199f700050adb3a42eef44e62ac9");
	for (uint32_t id = 0; id < 10100; id++) {
		const struct cc_event_def *d = cc_event_lookup(id);

		assert_true(d == NULL || d->id == id);
	}
	assert_null(cc_event_lookup(UINT32_MAX));
	assert_null(cc_event_channel_name(0));
	assert_null(cc_event_channel_name(CC_CHAN_ADMIN | CC_CHAN_OPERATIONAL));
	assert_int_equal(cc_event_channel_from_name("operational"), CC_CHAN_OPERATIONAL);
	assert_int_equal(cc_event_channel_from_name("nope"), 0);
	assert_int_equal(cc_event_channel_from_name(NULL), 0);
}

/* The generator run now gives the committed docs and catalogue, and the table built in. */
static void
test_generated_current(void **state)
{
	char script[512], tsv[512], tmpl[512], out[128], a[256], b[512];
	const char *build = getenv("CC_BUILD_DIR");
	char *argv[] = { "python3", script, "--tsv", tsv, "--template", tmpl, "--out-dir", out,
		NULL };
	const char *fix = "run `make -C <build dir> events-docs` and commit the result";

	(void)state;
	snprintf(script, sizeof(script), "%s/scripts/gen-events.py", CC_SOURCE_DIR);
	snprintf(tsv, sizeof(tsv), "%s/src/log/events.tsv", CC_SOURCE_DIR);
	snprintf(tmpl, sizeof(tmpl), "%s/src/log/events.md.in", CC_SOURCE_DIR);
	snprintf(out, sizeof(out), "%s/gen", tmpdir);
	assert_int_equal(run(argv, NULL), 0);

	snprintf(a, sizeof(a), "%s/events.md", out);
	snprintf(b, sizeof(b), "%s/docs/events.md", CC_SOURCE_DIR);
	same_file(a, b, fix);
	snprintf(a, sizeof(a), "%s/certconn.catalog", out);
	snprintf(b, sizeof(b), "%s/appliance/journald/certconn.catalog", CC_SOURCE_DIR);
	same_file(a, b, fix);
	/* The table this test links is the one the catalogue gives now. */
	if (build == NULL)
		fail_msg("CC_BUILD_DIR is not set (run through ctest)");
	snprintf(a, sizeof(a), "%s/event_catalog.c", out);
	snprintf(b, sizeof(b), "%s/gen/event_catalog.c", build);
	same_file(a, b, "rebuild");
	snprintf(a, sizeof(a), "%s/event_catalog.h", out);
	snprintf(b, sizeof(b), "%s/gen/event_catalog.h", build);
	same_file(a, b, "rebuild");
}

/* The generator refuses a broken catalogue rather than generating from it. */
static void
test_generator_rejects(void **state)
{
	static const char *bad[] = {
		"1000\tPkcsRequestSuccess\tAdmin\tPKCS\n",               /* 4 columns */
		"1000\tA\tAdmin\tPKCS\tm\n1000\tB\tAdmin\tPKCS\tm\n",     /* duplicate id */
		"1000\tA\tAdmin\tPKCS\tm\n1001\tA\tAdmin\tPKCS\tm\n",     /* duplicate name */
		"1000\tA\tAudit\tPKCS\tm\n",                              /* unknown channel */
		"0\tA\tAdmin\tPKCS\tm\n",                                 /* id out of range */
		"10000\tA\tAdmin\tPKCS\tm\n",
		"1000\ta-b\tAdmin\tPKCS\tm\n",                            /* not CamelCase */
		"1000\tA\tAdmin\tPKCS\t\n",                               /* empty meaning */
	};
	char script[512], tsv[128], tmpl[512], out[128];
	char *argv[] = { "python3", script, "--tsv", tsv, "--template", tmpl, "--out-dir", out,
		NULL };

	(void)state;
	snprintf(script, sizeof(script), "%s/scripts/gen-events.py", CC_SOURCE_DIR);
	snprintf(tmpl, sizeof(tmpl), "%s/src/log/events.md.in", CC_SOURCE_DIR);
	snprintf(tsv, sizeof(tsv), "%s/bad.tsv", tmpdir);
	snprintf(out, sizeof(out), "%s/out", tmpdir);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		FILE *f = fopen(tsv, "w");
		struct stat st;

		assert_non_null(f);
		fputs(bad[i], f);
		fclose(f);
		if (run(argv, "/dev/null") != 1)
			fail_msg("generator accepted: %s", bad[i]);
		assert_int_equal(stat(out, &st), -1);
	}
}

/* journalctl compiles the catalogue and lists every event's MESSAGE_ID in it. */
static void
test_journal_catalog(void **state)
{
	char root[128], dir[256], cat[512], src[512], listing[256], root_opt[160];
	char *upd[] = { "journalctl", root_opt, "--update-catalog", NULL };
	char *list[] = { "journalctl", root_opt, "--list-catalog", NULL };
	size_t len;
	char *text;

	(void)state;
	if (access("/usr/bin/journalctl", X_OK) == -1 && access("/bin/journalctl", X_OK) == -1)
		skip();
	snprintf(root, sizeof(root), "%s/root", tmpdir);
	snprintf(root_opt, sizeof(root_opt), "--root=%s", root);
	snprintf(dir, sizeof(dir), "%s/usr/lib/systemd/catalog", root);
	assert_int_equal(mkdir(root, 0755), 0);
	{
		char p[256];

		snprintf(p, sizeof(p), "%s/usr", root);
		assert_int_equal(mkdir(p, 0755), 0);
		snprintf(p, sizeof(p), "%s/usr/lib", root);
		assert_int_equal(mkdir(p, 0755), 0);
		snprintf(p, sizeof(p), "%s/usr/lib/systemd", root);
		assert_int_equal(mkdir(p, 0755), 0);
		assert_int_equal(mkdir(dir, 0755), 0);
	}
	snprintf(src, sizeof(src), "%s/appliance/journald/certconn.catalog", CC_SOURCE_DIR);
	snprintf(cat, sizeof(cat), "%s/certconn.catalog", dir);
	text = slurp(src, &len);
	{
		FILE *f = fopen(cat, "w");

		assert_non_null(f);
		assert_int_equal(fwrite(text, 1, len, f), len);
		fclose(f);
	}
	free(text);
	assert_int_equal(run(upd, "/dev/null"), 0);
	snprintf(listing, sizeof(listing), "%s/listing", tmpdir);
	assert_int_equal(run(list, listing), 0);
	text = slurp(listing, &len);
	for (size_t i = 0; i < cc_event_count(); i++) {
		const struct cc_event_def *d = cc_event_at(i);

		if (strstr(text, d->message_id) == NULL)
			fail_msg("journalctl does not list %s (event %u)", d->message_id, d->id);
	}
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_is_tsv),
		cmocka_unit_test(test_table_shape),
		cmocka_unit_test_setup_teardown(test_generated_current, setup, teardown),
		cmocka_unit_test_setup_teardown(test_generator_rejects, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal_catalog, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
