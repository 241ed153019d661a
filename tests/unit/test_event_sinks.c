/*
 * Events end to end: emitting (directly and through the child -> parent codec), the
 * JSON-lines files and their rotation into gzip archives, the debug switch, validation, and
 * the journald sink against a socket bound where journald's would be.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cjson/cJSON.h>
#include <zlib.h>

#include "certconn/event.h"
#include "certconn/log.h"
#include "certconn/msg.h"
#include "certconn/proto.h"
#include "certconn/util.h"

#define LINE_MAX_TEST (128 * 1024)

struct lines {
	char **v;
	size_t n;
};

static void
lines_free(struct lines *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static void
lines_add(struct lines *l, const char *s)
{
	size_t len = strlen(s);

	assert_true(len > 0 && s[len - 1] == '\n'); /* every line is whole */
	l->v = realloc(l->v, (l->n + 1) * sizeof(*l->v));
	assert_non_null(l->v);
	l->v[l->n] = strndup(s, len - 1);
	assert_non_null(l->v[l->n]);
	l->n++;
}

/* Appends the lines of a plain (gz 0) or gzip (gz 1) file; a missing file adds nothing. */
static int
read_lines(const char *path, int gz, struct lines *l)
{
	char *buf = malloc(LINE_MAX_TEST);

	assert_non_null(buf);
	if (gz) {
		gzFile g;
		unsigned char magic[2];
		FILE *f = fopen(path, "rb");

		if (f == NULL) {
			free(buf);
			return -1;
		}
		/* A real gzip member, not a plain file gzread would pass through. */
		assert_int_equal(fread(magic, 1, 2, f), 2);
		assert_int_equal(magic[0], 0x1f);
		assert_int_equal(magic[1], 0x8b);
		fclose(f);
		g = gzopen(path, "rb");
		assert_non_null(g);
		while (gzgets(g, buf, LINE_MAX_TEST) != NULL)
			lines_add(l, buf);
		{
			int zerr;

			gzerror(g, &zerr); /* a bad CRC or a truncated member shows here */
			assert_int_equal(zerr, Z_OK);
		}
		assert_int_equal(gzclose(g), Z_OK);
	} else {
		FILE *f = fopen(path, "r");

		if (f == NULL) {
			free(buf);
			return -1;
		}
		while (fgets(buf, LINE_MAX_TEST, f) != NULL)
			lines_add(l, buf);
		fclose(f);
	}
	free(buf);
	return 0;
}

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
	umask(022);
	strcpy(tmpdir, "/tmp/cc-event-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	cc_event_set_forward(NULL, NULL);
	cc_event_set_debug(CC_CHAN_ADMIN | CC_CHAN_OPERATIONAL, 0);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	cc_event_sinks_close();
	cc_event_set_forward(NULL, NULL);
	return nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static char *
path_in(const char *name)
{
	static char p[256];

	snprintf(p, sizeof(p), "%s/%s", tmpdir, name);
	return p;
}

static void
open_sinks(uint64_t max_bytes, uint32_t keep, uint32_t debug_mask)
{
	struct cc_event_sinks_conf c = {
		.dir = tmpdir, .max_bytes = max_bytes, .keep = keep, .journald = 0,
		.debug_mask = debug_mask,
	};

	assert_int_equal(cc_event_sinks_open(&c), 0);
}

static const char *
jstr(const cJSON *o, const char *key)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);

	assert_non_null(it);
	assert_true(cJSON_IsString(it));
	return it->valuestring;
}

/* Checks the fixed fields of one JSON line against the catalogue; returns its details. */
static cJSON *
check_line(const char *line, const struct cc_event_def *def, const char *corr, const char *role,
    cJSON **root)
{
	cJSON *o = cJSON_Parse(line), *id, *details;
	const char *t;
	unsigned y, mo, d, h, mi, s, us;
	char z;

	assert_non_null(o);
	id = cJSON_GetObjectItemCaseSensitive(o, "id");
	assert_true(cJSON_IsNumber(id));
	assert_int_equal(id->valueint, def->id);
	assert_string_equal(jstr(o, "name"), def->name);
	assert_string_equal(jstr(o, "channel"), cc_event_channel_name(def->channel));
	assert_string_equal(jstr(o, "category"), def->category);
	assert_string_equal(jstr(o, "correlationId"), corr);
	if (role != NULL)
		assert_string_equal(jstr(o, "role"), role);
	t = jstr(o, "time");
	assert_int_equal(strlen(t), 27);
	assert_int_equal(sscanf(t, "%4u-%2u-%2uT%2u:%2u:%2u.%6u%c", &y, &mo, &d, &h, &mi, &s, &us,
	    &z), 8);
	assert_int_equal(z, 'Z');
	assert_true(y >= 2024 && mo >= 1 && mo <= 12 && d >= 1 && d <= 31);
	details = cJSON_GetObjectItemCaseSensitive(o, "details");
	assert_true(cJSON_IsObject(details));
	*root = o;
	return details;
}

/* A forwarder that does what a child and the parent do: encode, send, parse, decode, write. */
static int fwd_calls;

static int
fwd_through_codec(const struct cc_event_msg *m, void *arg)
{
	struct cc_wbuf w;
	struct cc_msg msg;
	struct cc_event_msg back;
	const char *why = NULL;
	int rc = -1;

	(void)arg;
	fwd_calls++;
	if (cc_enc_event(&w, 0, m) == -1)
		goto out;
	if (cc_msg_parse(w.p, w.len, &msg, &why) == -1 || cc_dec_event(&msg, &back, &why) == -1)
		goto out;
	rc = cc_event_sinks_write(&back);
out:
	cc_wbuf_free(&w);
	return rc;
}

/* Emits every catalogue event (but the debug carrier) and reads each back. */
static void
roundtrip_all(int via_codec)
{
	struct lines adm = { 0 }, ops = { 0 };
	size_t n = cc_event_count(), ia = 0, io = 0;
	char corr[64], rid[32];

	open_sinks(0, 0, 0);
	if (via_codec) {
		cc_log_init("test", "net", 0);
		cc_event_set_forward(fwd_through_codec, NULL);
	} else
		cc_log_init("test", "", 0);
	fwd_calls = 0;
	for (size_t i = 0; i < n; i++) {
		const struct cc_event_def *def = cc_event_at(i);

		assert_non_null(def);
		if (def->id == CC_EV_DEBUG_MESSAGE)
			continue;
		snprintf(corr, sizeof(corr), "corr-%u-\xc3\xa9", def->id);
		snprintf(rid, sizeof(rid), "req-%u", def->id);
		assert_int_equal(cc_event_emit(def->id, corr, "requestId", rid,
		    "note", "quote \" backslash \\ newline \n tab \t", NULL), 0);
	}
	assert_int_equal(fwd_calls, via_codec ? (int)n - 1 : 0);
	assert_true(n > 1);
	assert_int_equal(read_lines(path_in("admin.jsonl"), 0, &adm), 0);
	assert_int_equal(read_lines(path_in("operational.jsonl"), 0, &ops), 0);
	assert_int_equal(adm.n + ops.n, n - 1);
	for (size_t i = 0; i < n; i++) {
		const struct cc_event_def *def = cc_event_at(i);
		const char *line;
		cJSON *root, *details;

		if (def->id == CC_EV_DEBUG_MESSAGE)
			continue;
		if (def->channel == CC_CHAN_ADMIN) {
			assert_true(ia < adm.n);
			line = adm.v[ia++];
		} else {
			assert_int_equal(def->channel, CC_CHAN_OPERATIONAL);
			assert_true(io < ops.n);
			line = ops.v[io++];
		}
		snprintf(corr, sizeof(corr), "corr-%u-\xc3\xa9", def->id);
		snprintf(rid, sizeof(rid), "req-%u", def->id);
		details = check_line(line, def, corr, via_codec ? "net" : "", &root);
		assert_int_equal(cJSON_GetArraySize(details), 2);
		assert_string_equal(jstr(details, "requestId"), rid);
		assert_string_equal(jstr(details, "note"), "quote \" backslash \\ newline \n tab \t");
		cJSON_Delete(root);
	}
	assert_int_equal(ia, adm.n);
	assert_int_equal(io, ops.n);
	lines_free(&adm);
	lines_free(&ops);

	/* 900 DebugMessage is emitted through cc_event_debug. */
	cc_event_set_debug(CC_CHAN_ADMIN, 1);
	assert_int_equal(cc_event_debug(CC_CHAN_ADMIN, "corr-900", "text %s", "\xc3\xa9"), 0);
	cc_event_set_debug(CC_CHAN_ADMIN, 0);
	assert_int_equal(read_lines(path_in("debug.jsonl"), 0, &adm), 0);
	assert_int_equal(adm.n, 1);
	{
		cJSON *root, *details = check_line(adm.v[0], cc_event_lookup(CC_EV_DEBUG_MESSAGE),
		    "corr-900", via_codec ? "net" : "", &root);

		assert_int_equal(cJSON_GetArraySize(details), 2);
		assert_string_equal(jstr(details, "debugChannel"), "Admin");
		assert_string_equal(jstr(details, "message"), "text \xc3\xa9");
		cJSON_Delete(root);
	}
	lines_free(&adm);
	cc_log_init("test", "", 0);
}

static void test_every_id_direct(void **state) { (void)state; roundtrip_all(0); }
static void test_every_id_via_codec(void **state) { (void)state; roundtrip_all(1); }

static void
test_file_mode(void **state)
{
	struct stat st;

	(void)state;
	open_sinks(0, 0, 0);
	assert_int_equal(cc_event_emit(CC_EV_HEALTH_MESSAGE_UPLOAD_SUCCESS, NULL, NULL), 0);
	assert_int_equal(stat(path_in("operational.jsonl"), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	assert_int_equal(stat(path_in("admin.jsonl"), &st), 0);
	assert_int_equal(st.st_size, 0);
}

/* Writes n Admin events numbered from first, with padding to make lines ~pad bytes. */
static void
emit_numbered(int first, int n, size_t pad)
{
	char seq[16], *padding = malloc(pad + 1);

	assert_non_null(padding);
	memset(padding, 'x', pad);
	padding[pad] = '\0';
	for (int i = first; i < first + n; i++) {
		snprintf(seq, sizeof(seq), "%d", i);
		assert_int_equal(cc_event_emit(CC_EV_PKCS_REQUEST_SUCCESS, "rot", "seq", seq,
		    "pad", padding, NULL), 0);
	}
	free(padding);
}

static int
line_seq(const char *line)
{
	cJSON *o = cJSON_Parse(line), *d;
	int seq;

	assert_non_null(o);
	d = cJSON_GetObjectItemCaseSensitive(o, "details");
	seq = atoi(jstr(d, "seq"));
	cJSON_Delete(o);
	return seq;
}

/*
 * Reads admin archives keep..1 then the live file: each file within the cap, each archive a
 * gzip file, the sequence numbers consecutive (nothing lost or duplicated), ending at last.
 * Returns the first sequence number found.
 */
static int
check_rotated(uint64_t cap, uint32_t keep, int last, uint32_t expect_archives)
{
	struct lines all = { 0 };
	struct stat st;
	char name[64];
	uint32_t found = 0;
	int first;

	for (uint32_t i = keep + 3; i >= 1; i--) {
		snprintf(name, sizeof(name), "admin.%u.jsonl.gz", i);
		if (stat(path_in(name), &st) == -1)
			continue;
		assert_true(i <= keep);
		found++;
		{
			struct lines one = { 0 };
			size_t bytes = 0;

			assert_int_equal(read_lines(path_in(name), 1, &one), 0);
			assert_true(one.n > 0);
			for (size_t k = 0; k < one.n; k++)
				bytes += strlen(one.v[k]) + 1;
			/* Within the cap before it was compressed, and full: one more line (~600
			 * bytes) would not have fit. */
			assert_true(bytes <= cap);
			assert_true(bytes + 700 > cap);
			all.v = realloc(all.v, (all.n + one.n) * sizeof(*all.v));
			assert_non_null(all.v);
			memcpy(all.v + all.n, one.v, one.n * sizeof(*one.v));
			all.n += one.n;
			free(one.v);
		}
	}
	assert_int_equal(found, expect_archives);
	assert_int_equal(stat(path_in("admin.jsonl"), &st), 0);
	assert_true((uint64_t)st.st_size <= cap);
	assert_int_equal(read_lines(path_in("admin.jsonl"), 0, &all), 0);
	assert_true(all.n > 0);
	first = line_seq(all.v[0]);
	for (size_t k = 0; k < all.n; k++)
		assert_int_equal(line_seq(all.v[k]), first + (int)k);
	assert_int_equal(first + (int)all.n - 1, last);
	assert_int_equal(stat(path_in("admin.jsonl.rotating"), &st), -1);
	lines_free(&all);
	return first;
}

static void
test_rotation_keeps_all(void **state)
{
	(void)state;
	open_sinks(CC_EVENT_MAX_BYTES_MIN, 10, 0);
	/* ~600-byte lines, ~109 per 64 KiB file: 800 lines make 7 archives. */
	emit_numbered(0, 800, 450);
	assert_int_equal(check_rotated(CC_EVENT_MAX_BYTES_MIN, 10, 799, 7), 0);
}

static void
test_rotation_drops_oldest(void **state)
{
	int first;

	(void)state;
	open_sinks(CC_EVENT_MAX_BYTES_MIN, 3, 0);
	emit_numbered(0, 800, 450);
	/* Only 3 archives are left, so the oldest lines are gone. */
	first = check_rotated(CC_EVENT_MAX_BYTES_MIN, 3, 799, 3);
	assert_true(first > 300);
	/* Re-opening (a restart) continues the same files. */
	open_sinks(CC_EVENT_MAX_BYTES_MIN, 3, 0);
	emit_numbered(800, 300, 450);
	check_rotated(CC_EVENT_MAX_BYTES_MIN, 3, 1099, 3);
}

/* A restart after a crash in the middle of a rotation, and with a smaller keep than before. */
static void
test_rotation_recovery(void **state)
{
	struct lines l = { 0 };
	struct stat st;
	FILE *f;

	(void)state;
	/* A .rotating file (crash before compression) and archives beyond the new keep. */
	f = fopen(path_in("admin.jsonl.rotating"), "w");
	assert_non_null(f);
	fputs("{\"left\":\"over\"}\n", f);
	fclose(f);
	for (int i = 1; i <= 4; i++) {
		char name[64];
		gzFile g;

		snprintf(name, sizeof(name), "admin.%d.jsonl.gz", i);
		g = gzopen(path_in(name), "wb");
		assert_non_null(g);
		gzprintf(g, "{\"old\":\"%d\"}\n", i);
		assert_int_equal(gzclose(g), Z_OK);
	}
	f = fopen(path_in("admin.1.jsonl.gz.tmp"), "w");
	assert_non_null(f);
	fclose(f);
	open_sinks(0, 3, 0);
	assert_int_equal(stat(path_in("admin.jsonl.rotating"), &st), -1);
	assert_int_equal(stat(path_in("admin.1.jsonl.gz.tmp"), &st), -1);
	assert_int_equal(stat(path_in("admin.4.jsonl.gz"), &st), -1);
	assert_int_equal(read_lines(path_in("admin.1.jsonl.gz"), 1, &l), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0], "{\"left\":\"over\"}");
	lines_free(&l);
	assert_int_equal(read_lines(path_in("admin.2.jsonl.gz"), 1, &l), 0);
	assert_string_equal(l.v[0], "{\"old\":\"1\"}");
	lines_free(&l);
	assert_int_equal(read_lines(path_in("admin.3.jsonl.gz"), 1, &l), 0);
	assert_string_equal(l.v[0], "{\"old\":\"2\"}");
	lines_free(&l);
	cc_event_sinks_close();

	/* A crash after the .rotating file went but before its archive was renamed into place:
	 * the .tmp file alone is complete and becomes the newest archive. */
	{
		gzFile g = gzopen(path_in("admin.1.jsonl.gz.tmp"), "wb");

		assert_non_null(g);
		gzprintf(g, "{\"tmp\":\"complete\"}\n");
		assert_int_equal(gzclose(g), Z_OK);
	}
	open_sinks(0, 3, 0);
	assert_int_equal(stat(path_in("admin.1.jsonl.gz.tmp"), &st), -1);
	assert_int_equal(read_lines(path_in("admin.1.jsonl.gz"), 1, &l), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0], "{\"tmp\":\"complete\"}");
	lines_free(&l);
	assert_int_equal(read_lines(path_in("admin.2.jsonl.gz"), 1, &l), 0);
	assert_string_equal(l.v[0], "{\"left\":\"over\"}");
	lines_free(&l);
	assert_int_equal(read_lines(path_in("admin.3.jsonl.gz"), 1, &l), 0);
	assert_string_equal(l.v[0], "{\"old\":\"1\"}");
	lines_free(&l);
}

/* The live file deleted behind the sink's back is re-created, not written into the void. */
static void
test_live_file_deleted(void **state)
{
	struct lines l = { 0 };

	(void)state;
	open_sinks(0, 0, 0);
	assert_int_equal(cc_event_emit(CC_EV_PKCS_REQUEST_SUCCESS, "a", NULL), 0);
	assert_int_equal(unlink(path_in("admin.jsonl")), 0);
	assert_int_equal(cc_event_emit(CC_EV_PKCS_REQUEST_SUCCESS, "b", NULL), 0);
	assert_int_equal(read_lines(path_in("admin.jsonl"), 0, &l), 0);
	assert_int_equal(l.n, 1);
	assert_non_null(strstr(l.v[0], "\"correlationId\":\"b\""));
	lines_free(&l);
}

/* Debug lines in debug.jsonl, as (channel name, message) pairs joined by ':' for checking. */
static void
debug_lines(struct lines *out)
{
	struct lines l = { 0 };
	char buf[256];

	read_lines(path_in("debug.jsonl"), 0, &l);
	for (size_t i = 0; i < l.n; i++) {
		cJSON *root, *d;

		d = check_line(l.v[i], cc_event_lookup(CC_EV_DEBUG_MESSAGE), "dbg", NULL, &root);
		snprintf(buf, sizeof(buf), "%s:%s\n", jstr(d, "debugChannel"), jstr(d, "message"));
		lines_add(out, buf);
		cJSON_Delete(root);
	}
	lines_free(&l);
}

static void
test_debug_switch(void **state)
{
	struct lines l = { 0 };

	(void)state;
	open_sinks(0, 0, 0);
	assert_int_equal(cc_event_debug_mask(), 0);
	assert_int_equal(cc_event_debug(CC_CHAN_OPERATIONAL, "dbg", "one %d", 1), 0);
	cc_event_set_debug(CC_CHAN_OPERATIONAL, 1);
	assert_int_equal(cc_event_debug_mask(), CC_CHAN_OPERATIONAL);
	assert_true(cc_event_debug_enabled(CC_CHAN_OPERATIONAL));
	assert_false(cc_event_debug_enabled(CC_CHAN_ADMIN));
	assert_int_equal(cc_event_debug(CC_CHAN_OPERATIONAL, "dbg", "two %d", 2), 0);
	assert_int_equal(cc_event_debug(CC_CHAN_ADMIN, "dbg", "three"), 0);
	cc_event_set_debug(CC_CHAN_ADMIN, 1);
	assert_int_equal(cc_event_debug(CC_CHAN_ADMIN, "dbg", "four"), 0);
	cc_event_set_debug(CC_CHAN_OPERATIONAL, 0);
	assert_int_equal(cc_event_debug(CC_CHAN_OPERATIONAL, "dbg", "five"), 0);
	assert_int_equal(cc_event_debug(CC_CHAN_ADMIN, "dbg", "six"), 0);
	/* Bits other than Admin and Operational are not debug switches. */
	cc_event_set_debug(CC_CHAN_DEBUG | 0x80, 1);
	assert_int_equal(cc_event_debug_mask(), CC_CHAN_ADMIN);
	/* A debug record is for exactly one of the two channels. */
	assert_int_equal(cc_event_debug(CC_CHAN_DEBUG, "dbg", "x"), -1);
	assert_int_equal(cc_event_debug(CC_CHAN_ADMIN | CC_CHAN_OPERATIONAL, "dbg", "x"), -1);
	/* Events proper are never switched off, and debug records never reach their files. */
	assert_int_equal(cc_event_emit(CC_EV_PKCS_REQUEST_SUCCESS, "dbg", NULL), 0);
	debug_lines(&l);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.v[0], "Operational:two 2");
	assert_string_equal(l.v[1], "Admin:four");
	assert_string_equal(l.v[2], "Admin:six");
	lines_free(&l);
	read_lines(path_in("admin.jsonl"), 0, &l);
	assert_int_equal(l.n, 1);
	lines_free(&l);
	read_lines(path_in("operational.jsonl"), 0, &l);
	assert_int_equal(l.n, 0);
	lines_free(&l);

	/* The sinks' configuration sets the mask at start-up. */
	open_sinks(0, 0, CC_CHAN_OPERATIONAL);
	assert_int_equal(cc_event_debug_mask(), CC_CHAN_OPERATIONAL);
	cc_event_set_debug(CC_CHAN_OPERATIONAL, 0);
}

/* In a child, a switched-off debug record never reaches the forwarder; the parent filters too. */
static void
test_debug_forwarded(void **state)
{
	struct lines l = { 0 };
	struct cc_event_msg m = {
		.id = CC_EV_DEBUG_MESSAGE, .time_us = cc_wall_us(), .role = "net",
		.correlation_id = "dbg",
		.details_json = "{\"debugChannel\":\"Operational\",\"message\":\"from child\"}",
	};

	(void)state;
	open_sinks(0, 0, 0);
	cc_event_set_forward(fwd_through_codec, NULL);
	fwd_calls = 0;
	assert_int_equal(cc_event_debug(CC_CHAN_ADMIN, "dbg", "off"), 0);
	assert_int_equal(fwd_calls, 0);
	cc_event_set_debug(CC_CHAN_ADMIN, 1);
	assert_int_equal(cc_event_debug(CC_CHAN_ADMIN, "dbg", "on"), 0);
	assert_int_equal(fwd_calls, 1);
	cc_event_set_forward(NULL, NULL);
	/* A record that was in flight when the parent switched Operational off is dropped. */
	assert_int_equal(cc_event_sinks_write(&m), 0);
	cc_event_set_debug(CC_CHAN_OPERATIONAL, 1);
	assert_int_equal(cc_event_sinks_write(&m), 0);
	debug_lines(&l);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[0], "Admin:on");
	assert_string_equal(l.v[1], "Operational:from child");
	lines_free(&l);
}

static void
expect_rejected(const struct cc_event_msg *m, const char *what)
{
	const char *why = NULL;

	if (cc_event_validate(m, &why) != -1)
		fail_msg("accepted: %s", what);
	assert_non_null(why);
	assert_int_equal(cc_event_sinks_write(m), -1);
}

static void
test_rejects(void **state)
{
	static const char *bad_details[] = {
		"not json",
		"[\"an\",\"array\"]",
		"\"a string\"",
		"{\"n\":1}",
		"{\"nested\":{\"a\":\"b\"}}",
		"{\"null\":null}",
		"{\"a\":\"b\"} trailing",
		"{\"a\":\"b\"",
		"{\"\":\"empty key\"}",
		"{\"dup\":\"1\",\"dup\":\"2\"}",
		"{\"bad\":\"\xc3\x28\"}",         /* invalid UTF-8 */
		"{\"bad\":\"\xed\xa0\x80\"}",     /* encoded surrogate */
		"{\"bad\":\"\\ud800\"}",          /* lone surrogate escape */
	};
	struct cc_event_msg m = {
		.id = CC_EV_PKCS_REQUEST_SUCCESS, .time_us = cc_wall_us(), .role = "net",
		.correlation_id = "c", .details_json = "{\"ok\":\"yes\"}",
	};
	struct cc_event_msg bad;
	struct lines l = { 0 };
	char big[CC_EVENT_DETAILS_MAX + 64], *p;
	const char *why;

	(void)state;
	open_sinks(0, 0, CC_CHAN_ADMIN | CC_CHAN_OPERATIONAL);
	assert_int_equal(cc_event_validate(&m, &why), 0);
	assert_null(why);

	for (size_t i = 0; i < sizeof(bad_details) / sizeof(bad_details[0]); i++) {
		bad = m;
		bad.details_json = bad_details[i];
		expect_rejected(&bad, bad_details[i]);
	}
	/* Ids outside the catalogue. */
	{
		static const uint32_t ids[] = { 0, 1, 899, 999, 1004, 5003, 9999, 10000, UINT32_MAX };

		for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
			bad = m;
			bad.id = ids[i];
			expect_rejected(&bad, "unknown id");
			assert_int_equal(cc_event_emit(ids[i], "c", NULL), -1);
		}
	}
	bad = m;
	bad.time_us = UINT64_MAX;
	expect_rejected(&bad, "time");
	bad = m;
	bad.role = "Net";
	expect_rejected(&bad, "role upper case");
	bad = m;
	bad.role = "a-role-name-that-is-much-too-long-for-this";
	expect_rejected(&bad, "role too long");
	bad = m;
	bad.correlation_id = "\xff";
	expect_rejected(&bad, "correlation id not UTF-8");
	memset(big, 'c', CC_EVENT_CORR_MAX + 1);
	big[CC_EVENT_CORR_MAX + 1] = '\0';
	bad = m;
	bad.correlation_id = big;
	expect_rejected(&bad, "correlation id too long");
	/* Details: too many, value too long, text too long. */
	p = big;
	p += sprintf(p, "{");
	for (unsigned i = 0; i <= CC_EVENT_DETAILS_COUNT_MAX; i++)
		p += sprintf(p, "%s\"k%u\":\"v\"", i ? "," : "", i);
	sprintf(p, "}");
	bad = m;
	bad.details_json = big;
	expect_rejected(&bad, "too many details");
	p = big;
	p += sprintf(p, "{\"k\":\"");
	memset(p, 'v', CC_EVENT_VALUE_MAX + 1);
	strcpy(p + CC_EVENT_VALUE_MAX + 1, "\"}");
	bad.details_json = big;
	expect_rejected(&bad, "value too long");
	/* Debug records need their channel and text. */
	bad = m;
	bad.id = CC_EV_DEBUG_MESSAGE;
	bad.details_json = "{\"message\":\"x\"}";
	expect_rejected(&bad, "debug without channel");
	bad.details_json = "{\"debugChannel\":\"Debug\",\"message\":\"x\"}";
	expect_rejected(&bad, "debug channel Debug");
	bad.details_json = "{\"debugChannel\":\"admin\",\"message\":\"x\"}";
	expect_rejected(&bad, "debug channel spelt differently");
	bad.details_json = "{\"debugChannel\":\"Admin\"}";
	expect_rejected(&bad, "debug without message");
	/* Debug records go through cc_event_debug, not cc_event_emit. */
	assert_int_equal(cc_event_emit(CC_EV_DEBUG_MESSAGE, "c", "message", "x", NULL), -1);

	/* Nothing of the above reached a file; empty details are an empty object. */
	bad = m;
	bad.details_json = "";
	assert_int_equal(cc_event_sinks_write(&bad), 0);
	bad.details_json = NULL;
	bad.correlation_id = NULL;
	bad.role = NULL;
	assert_int_equal(cc_event_sinks_write(&bad), 0);
	read_lines(path_in("admin.jsonl"), 0, &l);
	assert_int_equal(l.n, 2);
	assert_non_null(strstr(l.v[0], "\"details\":{}"));
	assert_non_null(strstr(l.v[1], "\"correlationId\":\"\""));
	lines_free(&l);
	read_lines(path_in("debug.jsonl"), 0, &l);
	assert_int_equal(l.n, 0);
	lines_free(&l);
	read_lines(path_in("operational.jsonl"), 0, &l);
	assert_int_equal(l.n, 0);
	lines_free(&l);
}

/* What emitting does to input that breaks the limits: repair and truncate, never refuse. */
static void
test_emit_limits(void **state)
{
	struct cc_event_detail d[CC_EVENT_DETAILS_COUNT_MAX + 5];
	char keys[CC_EVENT_DETAILS_COUNT_MAX + 5][16];
	char *longval, *longcorr;
	struct lines l = { 0 };
	cJSON *root, *det;
	const struct cc_event_def *def = cc_event_lookup(CC_EV_SCEP_REQUEST_RECEIVED);

	(void)state;
	open_sinks(0, 0, 0);
	longval = malloc(3 * CC_EVENT_VALUE_MAX);
	longcorr = malloc(3 * CC_EVENT_CORR_MAX);
	assert_non_null(longval);
	assert_non_null(longcorr);
	/* Two-byte characters: a cut must not split one. */
	for (size_t i = 0; i + 2 < 3 * CC_EVENT_VALUE_MAX; i += 2)
		memcpy(longval + i, "\xc3\xa9", 2), longval[i + 2] = '\0';
	memset(longcorr, 'c', 3 * CC_EVENT_CORR_MAX - 1);
	longcorr[3 * CC_EVENT_CORR_MAX - 1] = '\0';

	/* 1: bad UTF-8 repaired, NULL value, duplicate key, long value, long correlation id. */
	assert_int_equal(cc_event_emit(def->id, longcorr, "bad", "a\xff" "b", "null", NULL,
	    "bad", "second", "long", longval, NULL), 0);
	/* 2: more details than allowed, through the array form. */
	for (size_t i = 0; i < CC_EVENT_DETAILS_COUNT_MAX + 5; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%zu", i);
		d[i].key = keys[i];
		d[i].value = "v";
	}
	assert_int_equal(cc_event_emita(def->id, "two", d, CC_EVENT_DETAILS_COUNT_MAX + 5), 0);
	/* 3: within the count, but too much text in all: trailing details go. */
	for (size_t i = 0; i < 8; i++)
		d[i].value = longval;
	assert_int_equal(cc_event_emita(def->id, "three", d, 8), 0);
	/* 4: a key that is too long is dropped. */
	memset(longcorr, 'k', CC_EVENT_KEY_MAX + 1);
	longcorr[CC_EVENT_KEY_MAX + 1] = '\0';
	assert_int_equal(cc_event_emit(def->id, "four", longcorr, "v", "ok", "v", NULL), 0);

	assert_int_equal(read_lines(path_in("operational.jsonl"), 0, &l), 0);
	assert_int_equal(l.n, 4);

	memset(longcorr, 'c', CC_EVENT_CORR_MAX);
	longcorr[CC_EVENT_CORR_MAX] = '\0';
	det = check_line(l.v[0], def, longcorr, "", &root);
	assert_string_equal(jstr(det, "bad"), "a\xef\xbf\xbd" "b");
	assert_string_equal(jstr(det, "null"), "");
	assert_int_equal(strlen(jstr(det, "long")), CC_EVENT_VALUE_MAX);
	assert_int_equal(strncmp(jstr(det, "long"), longval, CC_EVENT_VALUE_MAX), 0);
	assert_int_equal(cJSON_GetArraySize(det), 3);
	cJSON_Delete(root);

	det = check_line(l.v[1], def, "two", "", &root);
	assert_int_equal(cJSON_GetArraySize(det), CC_EVENT_DETAILS_COUNT_MAX);
	assert_string_equal(jstr(det, "detailsTruncated"), "true");
	assert_string_equal(jstr(det, "k0"), "v");
	cJSON_Delete(root);

	det = check_line(l.v[2], def, "three", "", &root);
	assert_string_equal(jstr(det, "detailsTruncated"), "true");
	assert_true(cJSON_GetArraySize(det) < 8);
	assert_string_equal(jstr(det, "k0"), jstr(det, "k1"));
	cJSON_Delete(root);

	det = check_line(l.v[3], def, "four", "", &root);
	assert_string_equal(jstr(det, "ok"), "v");
	assert_string_equal(jstr(det, "detailsTruncated"), "true");
	assert_int_equal(cJSON_GetArraySize(det), 2);
	cJSON_Delete(root);

	lines_free(&l);
	free(longval);
	free(longcorr);
}

static int
fwd_fail(const struct cc_event_msg *m, void *arg)
{
	(void)m;
	(void)arg;
	fwd_calls++;
	return -1;
}

static void
test_forward_failure(void **state)
{
	(void)state;
	cc_event_set_forward(fwd_fail, NULL);
	fwd_calls = 0;
	assert_int_equal(cc_event_emit(CC_EV_PKCS_REQUEST_SUCCESS, "x", NULL), -1);
	assert_int_equal(fwd_calls, 1);
	/* Restoring the default sends to the local sinks again (none open: accepted, dropped). */
	cc_event_set_forward(NULL, NULL);
	assert_int_equal(cc_event_emit(CC_EV_PKCS_REQUEST_SUCCESS, "x", NULL), 0);
	assert_int_equal(fwd_calls, 1);
}

static void
test_open_conf(void **state)
{
	struct cc_event_sinks_conf c = { .dir = tmpdir };
	char sub[300];
	struct stat st;

	(void)state;
	c.max_bytes = CC_EVENT_MAX_BYTES_MIN - 1;
	assert_int_equal(cc_event_sinks_open(&c), -1);
	c.max_bytes = 0;
	c.keep = CC_EVENT_KEEP_MAX + 1;
	assert_int_equal(cc_event_sinks_open(&c), -1);
	c.keep = 0;
	/* A missing directory is created (one level), 0750. */
	snprintf(sub, sizeof(sub), "%s/logs", tmpdir);
	c.dir = sub;
	assert_int_equal(cc_event_sinks_open(&c), 0);
	assert_int_equal(stat(sub, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0750);
	snprintf(sub, sizeof(sub), "%s/no/such", tmpdir);
	assert_int_equal(cc_event_sinks_open(&c), -1);
}

/* Threads emitting at once while the files rotate: every line whole, none lost. */
#define THREADS 4
#define PER_THREAD 300

static void *
emit_thread(void *arg)
{
	int t = (int)(intptr_t)arg;
	char seq[32];

	for (int i = 0; i < PER_THREAD; i++) {
		snprintf(seq, sizeof(seq), "%d", t * PER_THREAD + i);
		if (cc_event_emit(CC_EV_PKCS_REQUEST_SUCCESS, "thr", "seq", seq, "pad",
		    "..................................................................", NULL) != 0)
			return (void *)1;
		/* Debug records and the switch race with the events; neither may disturb them. */
		if (i % 50 == 0)
			cc_event_set_debug(CC_CHAN_OPERATIONAL, i % 100 == 0);
		if (cc_event_debug(CC_CHAN_OPERATIONAL, "thr", "thread %d line %d", t, i) != 0)
			return (void *)1;
	}
	return NULL;
}

static void
test_threads(void **state)
{
	pthread_t th[THREADS];
	struct lines all = { 0 };
	char name[64];
	unsigned char *seen = calloc(THREADS * PER_THREAD, 1);
	void *rv;

	(void)state;
	assert_non_null(seen);
	open_sinks(CC_EVENT_MAX_BYTES_MIN, 100, 0);
	for (int t = 0; t < THREADS; t++)
		assert_int_equal(pthread_create(&th[t], NULL, emit_thread, (void *)(intptr_t)t), 0);
	for (int t = 0; t < THREADS; t++) {
		assert_int_equal(pthread_join(th[t], &rv), 0);
		assert_null(rv);
	}
	for (int i = 100; i >= 1; i--) {
		snprintf(name, sizeof(name), "admin.%d.jsonl.gz", i);
		read_lines(path_in(name), 1, &all);
	}
	read_lines(path_in("admin.jsonl"), 0, &all);
	assert_int_equal(all.n, THREADS * PER_THREAD);
	for (size_t k = 0; k < all.n; k++) {
		int s = line_seq(all.v[k]);

		assert_true(s >= 0 && s < THREADS * PER_THREAD);
		assert_int_equal(seen[s], 0);
		seen[s] = 1;
	}
	lines_free(&all);
	free(seen);
}

/* ---- journald ---- */

#define JOURNAL_DIR "/run/systemd/journal"
#define JOURNAL_SOCK JOURNAL_DIR "/socket"

/* Value of field name in a native-protocol datagram (both forms); malloc'd, NULL if absent. */
static char *
journal_field(const uint8_t *p, size_t n, const char *name)
{
	size_t off = 0, nl = strlen(name);

	while (off < n) {
		const uint8_t *eol = memchr(p + off, '\n', n - off);
		const uint8_t *eq;
		size_t linelen;

		assert_non_null(eol);
		linelen = (size_t)(eol - (p + off));
		eq = memchr(p + off, '=', linelen);
		if (eq != NULL) {
			if ((size_t)(eq - (p + off)) == nl && memcmp(p + off, name, nl) == 0)
				return strndup((const char *)eq + 1, linelen - nl - 1);
			off += linelen + 1;
		} else {
			/* NAME\n, little-endian u64 length, value, \n */
			uint64_t vlen = 0;
			size_t v = off + linelen + 1;

			assert_true(v + 8 <= n);
			for (int i = 7; i >= 0; i--)
				vlen = (vlen << 8) | p[v + (size_t)i];
			assert_true(v + 8 + vlen + 1 <= n);
			if (linelen == nl && memcmp(p + off, name, nl) == 0)
				return strndup((const char *)p + v + 8, (size_t)vlen);
			off = v + 8 + (size_t)vlen + 1;
		}
	}
	return NULL;
}

static void
expect_field(const uint8_t *p, size_t n, const char *name, const char *value)
{
	char *v = journal_field(p, n, name);

	if (v == NULL)
		fail_msg("journal field %s missing", name);
	assert_string_equal(v, value);
	free(v);
}

/* Receives datagrams until one carries CORRELATION_ID=corr (other tests may log too). */
static size_t
journal_recv(int s, const char *corr, uint8_t *buf, size_t cap)
{
	for (int tries = 0; tries < 50; tries++) {
		ssize_t r = recv(s, buf, cap, 0);
		char *v;

		if (r <= 0)
			fail_msg("no journal datagram: %s", r == 0 ? "empty" : strerror(errno));
		v = journal_field(buf, (size_t)r, "CORRELATION_ID");
		if (v != NULL && strcmp(v, corr) == 0) {
			free(v);
			return (size_t)r;
		}
		free(v);
	}
	fail_msg("no journal datagram for %s", corr);
	return 0;
}

static struct {
	int sock;
	int made_systemd, made_journal, bound;
} jt = { .sock = -1 };

static int
teardown_journal(void **state)
{
	int rc = 0;

	cc_event_sinks_close();
	cc_event_set_debug(CC_CHAN_OPERATIONAL, 0);
	cc_log_init("test", "", 0);
	if (jt.sock != -1)
		close(jt.sock);
	jt.sock = -1;
	if (jt.bound && unlink(JOURNAL_SOCK) == -1)
		rc = -1;
	if (jt.made_journal && rmdir(JOURNAL_DIR) == -1)
		rc = -1;
	if (jt.made_systemd && rmdir("/run/systemd") == -1)
		rc = -1;
	jt.bound = jt.made_journal = jt.made_systemd = 0;
	return teardown(state) == 0 ? rc : -1;
}

/* True when a socket exists at path but nobody receives on it (a leftover). */
static int
socket_stale(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), stale;

	assert_true(s >= 0);
	strcpy(sun.sun_path, path);
	stale = connect(s, (struct sockaddr *)&sun, sizeof(sun)) == -1 && errno == ECONNREFUSED;
	close(s);
	return stale;
}

static void
test_journald(void **state)
{
	struct cc_event_sinks_conf c = { .journald = 1 };
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 5 };
	const struct cc_event_def *def = cc_event_lookup(CC_EV_PKCS_REQUEST_FAILURE);
	const struct cc_event_def *dbg = cc_event_lookup(CC_EV_DEBUG_MESSAGE);
	uint8_t buf[64 * 1024];
	char corr[64], prio[8], *msg;
	size_t n;
	struct stat st;

	(void)state;
	if (geteuid() != 0)
		skip();
	if (lstat(JOURNAL_SOCK, &st) == 0) {
		/* A real journald: do not get in its way. A dead one's socket may go. */
		if (!S_ISSOCK(st.st_mode) || !socket_stale(JOURNAL_SOCK))
			skip();
		assert_int_equal(unlink(JOURNAL_SOCK), 0);
	}
	if (mkdir("/run/systemd", 0755) == 0)
		jt.made_systemd = 1;
	else
		assert_int_equal(errno, EEXIST);
	if (mkdir(JOURNAL_DIR, 0755) == 0)
		jt.made_journal = 1;
	else
		assert_int_equal(errno, EEXIST);
	jt.sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(jt.sock >= 0);
	strcpy(sun.sun_path, JOURNAL_SOCK);
	assert_int_equal(bind(jt.sock, (struct sockaddr *)&sun, sizeof(sun)), 0);
	jt.bound = 1;
	assert_int_equal(setsockopt(jt.sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);

	cc_log_init("test", "keys", 0);
	assert_int_equal(cc_event_sinks_open(&c), 0);
	snprintf(corr, sizeof(corr), "journal-%d", (int)getpid());
	assert_int_equal(cc_event_emit(def->id, corr, "requestId", "r-1",
	    "device name", "two\nlines", "x.y", "", NULL), 0);
	n = journal_recv(jt.sock, corr, buf, sizeof(buf));
	expect_field(buf, n, "MESSAGE_ID", def->message_id);
	expect_field(buf, n, "EVENT_ID", "1001");
	expect_field(buf, n, "EVENT_NAME", "PkcsRequestFailure");
	expect_field(buf, n, "CHANNEL", "Admin");
	expect_field(buf, n, "CATEGORY", "PKCS");
	expect_field(buf, n, "ROLE", "keys");
	snprintf(prio, sizeof(prio), "%d", LOG_ERR);
	expect_field(buf, n, "PRIORITY", prio);
	expect_field(buf, n, "DETAIL_REQUEST_ID", "r-1");
	expect_field(buf, n, "DETAIL_DEVICE_NAME", "two\nlines");
	expect_field(buf, n, "DETAIL_X_Y", "");
	msg = journal_field(buf, n, "MESSAGE");
	assert_non_null(msg);
	assert_non_null(strstr(msg, "PkcsRequestFailure"));
	assert_non_null(strstr(msg, def->meaning));
	assert_non_null(strstr(msg, corr));
	free(msg);
	msg = journal_field(buf, n, "EVENT_TIME");
	assert_non_null(msg);
	assert_int_equal(strlen(msg), 27);
	free(msg);

	/* An Operational success is info; a debug record is debug with its text as MESSAGE. */
	assert_int_equal(cc_event_emit(CC_EV_SCEP_VERIFY_SUCCESS, corr, NULL), 0);
	n = journal_recv(jt.sock, corr, buf, sizeof(buf));
	snprintf(prio, sizeof(prio), "%d", LOG_INFO);
	expect_field(buf, n, "PRIORITY", prio);
	expect_field(buf, n, "CHANNEL", "Operational");
	cc_event_set_debug(CC_CHAN_OPERATIONAL, 1);
	assert_int_equal(cc_event_debug(CC_CHAN_OPERATIONAL, corr, "step %d", 7), 0);
	n = journal_recv(jt.sock, corr, buf, sizeof(buf));
	snprintf(prio, sizeof(prio), "%d", LOG_DEBUG);
	expect_field(buf, n, "PRIORITY", prio);
	expect_field(buf, n, "MESSAGE_ID", dbg->message_id);
	expect_field(buf, n, "CHANNEL", "Debug");
	expect_field(buf, n, "DETAIL_DEBUG_CHANNEL", "Operational");
	expect_field(buf, n, "DETAIL_MESSAGE", "step 7");
	msg = journal_field(buf, n, "MESSAGE");
	assert_non_null(msg);
	assert_non_null(strstr(msg, "step 7"));
	free(msg);
}

/*
 * A broken journald (a socket path nobody can receive on): the journald sink fails, counted
 * and logged, and the file sink still gets every event. (With no journald at all,
 * sd_journal_sendv succeeds silently by design.)
 */
static void
test_journald_broken(void **state)
{
	struct cc_event_sinks_conf c = { .dir = tmpdir, .journald = 1 };
	struct lines l = { 0 };
	struct stat st;
	uint64_t before = cc_event_sinks_failures();
	int fd;

	(void)state;
	if (geteuid() != 0 || lstat(JOURNAL_SOCK, &st) == 0)
		skip();
	if (mkdir("/run/systemd", 0755) == 0)
		jt.made_systemd = 1;
	if (mkdir(JOURNAL_DIR, 0755) == 0)
		jt.made_journal = 1;
	/* A regular file where the socket should be: sendmsg gets ECONNREFUSED. */
	fd = open(JOURNAL_SOCK, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	jt.bound = 1;
	assert_int_equal(cc_event_sinks_open(&c), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(cc_event_emit(CC_EV_PKCS_REQUEST_SUCCESS, "nojournal", NULL), 0);
	assert_int_equal(cc_event_sinks_failures(), before + 3);
	assert_int_equal(read_lines(path_in("admin.jsonl"), 0, &l), 0);
	assert_int_equal(l.n, 3);
	lines_free(&l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_every_id_direct, setup, teardown),
		cmocka_unit_test_setup_teardown(test_every_id_via_codec, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotation_keeps_all, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotation_drops_oldest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotation_recovery, setup, teardown),
		cmocka_unit_test_setup_teardown(test_live_file_deleted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_debug_switch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_debug_forwarded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rejects, setup, teardown),
		cmocka_unit_test_setup_teardown(test_emit_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forward_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_conf, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journald, setup, teardown_journal),
		cmocka_unit_test_setup_teardown(test_journald_broken, setup, teardown_journal),
	};

	cc_log_init("test_event_sinks", "", 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
