/*
 * The event sinks: validation, journald, and the per-channel JSON-lines files with their
 * rotation into gzip archives. See include/certconn/event.h and docs/events.md.
 *
 * Rotation of <base>.jsonl (e.g. admin.jsonl), crash-safe and without losing or duplicating a
 * line:
 *   1. the live file is renamed <base>.jsonl.rotating and a new live file is opened;
 *   2. the .rotating file is compressed into <base>.1.jsonl.gz.tmp and synced;
 *   3. the .rotating file is deleted;
 *   4. if <base>.1.jsonl.gz exists, the archives shift up (<base>.<keep>.jsonl.gz is deleted,
 *      <base>.<i>.jsonl.gz becomes <base>.<i+1>.jsonl.gz), and the .tmp file is renamed
 *      <base>.1.jsonl.gz.
 * So a .tmp file is complete exactly when no .rotating file is beside it. After a crash (or a
 * failed step) sk_recover() finishes the job from whichever is left, when the sinks open and
 * before the next rotation: a .rotating file is compressed again (a .tmp beside it may be
 * partial and is dropped), a lone .tmp file is renamed into place. Nothing is overwritten.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <cjson/cJSON.h>
#include <systemd/sd-journal.h>
#include <zlib.h>

#include "certconn/event.h"
#include "certconn/log.h"
#include "event_int.h"

#define SK_NFILES 3
#define SK_NAME_MAX 64
/* 9999-12-31T23:59:59.999999Z: the last instant RFC 3339 can write. */
#define SK_TIME_MAX_US UINT64_C(253402300799999999)
/* journald: field names are at most 64 characters. */
#define SK_FIELD_MAX 64
#define SK_IO_CHUNK (32 * 1024)

struct sk_file {
	const char *base;   /* "admin": admin.jsonl, admin.1.jsonl.gz, ... */
	uint32_t channel;
	int fd;             /* live file, -1 when not open */
	struct ev_ratelimit rl;
};

static pthread_mutex_t sk_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	int open;
	int dirfd;          /* -1: no file sinks */
	char *dir;          /* for messages */
	uint64_t max_bytes;
	uint32_t keep;
	int journald;
	struct sk_file files[SK_NFILES];
	struct ev_ratelimit journal_rl;
	struct ev_ratelimit reject_rl;
} sk = {
	.dirfd = -1,
	.files = {
		{ "admin", CC_CHAN_ADMIN, -1, { 0, 0 } },
		{ "operational", CC_CHAN_OPERATIONAL, -1, { 0, 0 } },
		{ "debug", CC_CHAN_DEBUG, -1, { 0, 0 } },
	},
};
static _Atomic uint64_t sk_failures;

uint64_t cc_event_sinks_failures(void) { return atomic_load(&sk_failures); }

/* Counts a sink failure and logs it, at most once per interval per sink. */
static void __attribute__((format(printf, 2, 3)))
sk_fail(struct ev_ratelimit *rl, const char *fmt, ...)
{
	char text[512];
	uint64_t supp;
	va_list ap;

	atomic_fetch_add(&sk_failures, 1);
	if (!ev_rl_allow(rl, &supp))
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	cc_log_err("events: %s (%" PRIu64 " similar errors suppressed)", text, supp);
}

/* ---- validation ---- */

/* Finds a member by exact key among the members before stop (NULL: all). */
static const cJSON *
sk_member(const cJSON *obj, const char *key, const cJSON *stop)
{
	const cJSON *it;

	for (it = obj->child; it != NULL && it != stop; it = it->next)
		if (strcmp(it->string, key) == 0)
			return it;
	return NULL;
}

/*
 * The checks of cc_event_validate(). On success *defp is the catalogue entry and *detailsp
 * the parsed details object (caller frees with cJSON_Delete).
 */
static int
sk_check(const struct cc_event_msg *m, const char **why, const struct cc_event_def **defp,
    cJSON **detailsp)
{
	const struct cc_event_def *def;
	const char *corr = m->correlation_id ? m->correlation_id : "";
	const char *dj = m->details_json ? m->details_json : "";
	const char *reason = NULL;
	const cJSON *it;
	cJSON *obj = NULL;
	size_t len, count = 0;

	if ((def = cc_event_lookup(m->id)) == NULL) {
		reason = "event id not in the catalogue";
		goto out;
	}
	if (m->time_us > SK_TIME_MAX_US) {
		reason = "event time past year 9999";
		goto out;
	}
	if (!ev_role_valid(m->role)) {
		reason = "role too long or not [a-z0-9_-]";
		goto out;
	}
	len = strnlen(corr, CC_EVENT_CORR_MAX + 1);
	if (len > CC_EVENT_CORR_MAX || !ev_utf8_valid(corr, len)) {
		reason = "correlation id too long or not UTF-8";
		goto out;
	}
	len = strnlen(dj, CC_EVENT_DETAILS_MAX + 1);
	if (len > CC_EVENT_DETAILS_MAX || !ev_utf8_valid(dj, len)) {
		reason = "details too long or not UTF-8";
		goto out;
	}
	obj = len == 0 ? cJSON_CreateObject() : cJSON_ParseWithOpts(dj, NULL, 1);
	if (obj == NULL || !cJSON_IsObject(obj)) {
		reason = "details are not a JSON object";
		goto out;
	}
	cJSON_ArrayForEach(it, obj) {
		size_t klen = strlen(it->string);

		if (++count > CC_EVENT_DETAILS_COUNT_MAX) {
			reason = "too many details";
			goto out;
		}
		if (!cJSON_IsString(it) || it->valuestring == NULL) {
			reason = "a detail's value is not a string";
			goto out;
		}
		/* A \u0000 escape shortens a key or value; harmless, but keys must stay keys. */
		if (klen == 0 || klen > CC_EVENT_KEY_MAX) {
			reason = "a detail's key is empty or too long";
			goto out;
		}
		if (strlen(it->valuestring) > CC_EVENT_VALUE_MAX) {
			reason = "a detail's value is too long";
			goto out;
		}
		if (sk_member(obj, it->string, it) != NULL) {
			reason = "duplicate detail key";
			goto out;
		}
	}
	if (def->id == CC_EV_DEBUG_MESSAGE) {
		const cJSON *ch = sk_member(obj, "debugChannel", NULL);
		uint32_t chan = ch ? cc_event_channel_from_name(ch->valuestring) : 0;

		if ((chan != CC_CHAN_ADMIN && chan != CC_CHAN_OPERATIONAL) ||
		    strcmp(ch->valuestring, cc_event_channel_name(chan)) != 0) {
			reason = "debug record without a valid debugChannel";
			goto out;
		}
		if (sk_member(obj, "message", NULL) == NULL) {
			reason = "debug record without a message";
			goto out;
		}
	}
	*defp = def;
	*detailsp = obj;
	obj = NULL;
out:
	cJSON_Delete(obj);
	if (why != NULL)
		*why = reason;
	return reason == NULL ? 0 : -1;
}

int
cc_event_validate(const struct cc_event_msg *m, const char **why)
{
	const struct cc_event_def *def;
	cJSON *details;

	if (sk_check(m, why, &def, &details) == -1)
		return -1;
	cJSON_Delete(details);
	return 0;
}

/* ---- journald ---- */

/* DETAIL_ + the key in upper snake case: requestId -> DETAIL_REQUEST_ID; others -> '_'. */
static void
sk_field_name(const char *key, char out[SK_FIELD_MAX + 1])
{
	size_t o = strlen("DETAIL_");
	int prev_lower = 0;

	memcpy(out, "DETAIL_", o);
	for (const char *k = key; *k != '\0' && o < SK_FIELD_MAX; k++) {
		char c = *k;
		int lower = (c >= 'a' && c <= 'z'), upper = (c >= 'A' && c <= 'Z');
		int digit = (c >= '0' && c <= '9');

		if (upper && prev_lower) {
			out[o++] = '_';
			if (o == SK_FIELD_MAX)
				break;
		}
		out[o++] = lower ? (char)(c - 'a' + 'A') : (upper || digit) ? c : '_';
		prev_lower = lower || digit;
	}
	out[o] = '\0';
}

/* Appends one "NAME=value" field; the strings are freed by sk_journal. */
static int __attribute__((format(printf, 4, 5)))
sk_field(struct iovec *iov, size_t *n, size_t cap, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int len;

	if (*n == cap)
		return -1;
	va_start(ap, fmt);
	len = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (len < 0)
		return -1;
	iov[*n].iov_base = s;
	iov[*n].iov_len = (size_t)len;
	(*n)++;
	return 0;
}

static void
sk_journal(const struct cc_event_msg *m, const struct cc_event_def *def, const cJSON *details,
    const char *time_text)
{
	enum { FIXED = 12, CAP = FIXED + CC_EVENT_DETAILS_COUNT_MAX };
	struct iovec iov[CAP];
	char field[SK_FIELD_MAX + 1];
	const char *corr = m->correlation_id ? m->correlation_id : "";
	const char *role = m->role ? m->role : "";
	const cJSON *it;
	size_t n = 0, i;
	int rc = -1, err = 0;

	if (def->id == CC_EV_DEBUG_MESSAGE)
		err |= sk_field(iov, &n, CAP, "MESSAGE=debug (%s): %s%s%s%s",
		    sk_member(details, "debugChannel", NULL)->valuestring,
		    sk_member(details, "message", NULL)->valuestring,
		    corr[0] ? " (correlation id " : "", corr, corr[0] ? ")" : "");
	else
		err |= sk_field(iov, &n, CAP, "MESSAGE=%s: %s (event %u%s%s)", def->name,
		    def->meaning, def->id, corr[0] ? ", correlation id " : "", corr);
	err |= sk_field(iov, &n, CAP, "MESSAGE_ID=%s", def->message_id);
	err |= sk_field(iov, &n, CAP, "PRIORITY=%d", def->priority);
	err |= sk_field(iov, &n, CAP, "SYSLOG_IDENTIFIER=%s", program_invocation_short_name);
	err |= sk_field(iov, &n, CAP, "EVENT_ID=%u", def->id);
	err |= sk_field(iov, &n, CAP, "EVENT_NAME=%s", def->name);
	err |= sk_field(iov, &n, CAP, "EVENT_TIME=%s", time_text);
	err |= sk_field(iov, &n, CAP, "CHANNEL=%s", cc_event_channel_name(def->channel));
	err |= sk_field(iov, &n, CAP, "CATEGORY=%s", def->category);
	err |= sk_field(iov, &n, CAP, "CORRELATION_ID=%s", corr);
	err |= sk_field(iov, &n, CAP, "ROLE=%s", role);
	cJSON_ArrayForEach(it, details) {
		sk_field_name(it->string, field);
		err |= sk_field(iov, &n, CAP, "%s=%s", field, it->valuestring);
	}
	if (err) {
		sk_fail(&sk.journal_rl, "journald: out of memory building event %u", def->id);
		goto out;
	}
	/* sd_journal_sendv sends values with newlines in the binary-safe form itself. */
	if ((rc = sd_journal_sendv(iov, (int)n)) < 0)
		sk_fail(&sk.journal_rl, "journald: cannot send event %u: %s", def->id,
		    strerror(-rc));
out:
	for (i = 0; i < n; i++)
		free(iov[i].iov_base);
}

/* ---- files ---- */

static int
sk_write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	ssize_t w;

	while (len > 0) {
		if ((w = write(fd, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

static int
sk_open_live(const struct sk_file *f)
{
	char name[SK_NAME_MAX];

	snprintf(name, sizeof(name), "%s.jsonl", f->base);
	return openat(sk.dirfd, name, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW |
	    O_NOCTTY, 0640);
}

static int
sk_exists(const char *name)
{
	struct stat st;

	return fstatat(sk.dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* gzip of the file in into the new file out; synced. errno on failure. */
static int
sk_gzip(const char *in_name, const char *out_name)
{
	uint8_t ibuf[SK_IO_CHUNK], obuf[SK_IO_CHUNK];
	z_stream zs;
	int in = -1, out = -1, zinit = 0, flush = Z_NO_FLUSH, zrc = Z_OK, ret = -1, saved;
	ssize_t r;

	memset(&zs, 0, sizeof(zs));
	if ((in = openat(sk.dirfd, in_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		goto out;
	out = openat(sk.dirfd, out_name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
	    0640);
	if (out == -1)
		goto out;
	/* windowBits 15 + 16: a gzip wrapper rather than zlib's. */
	if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
	    Z_DEFAULT_STRATEGY) != Z_OK) {
		errno = ENOMEM;
		goto out;
	}
	zinit = 1;
	do {
		if ((r = read(in, ibuf, sizeof(ibuf))) == -1) {
			if (errno == EINTR)
				continue;
			goto out;
		}
		flush = r == 0 ? Z_FINISH : Z_NO_FLUSH;
		zs.next_in = ibuf;
		zs.avail_in = (uInt)r;
		do {
			zs.next_out = obuf;
			zs.avail_out = sizeof(obuf);
			zrc = deflate(&zs, flush);
			if (zrc == Z_STREAM_ERROR) {
				errno = EIO;
				goto out;
			}
			if (sk_write_all(out, obuf, sizeof(obuf) - zs.avail_out) == -1)
				goto out;
		} while (zs.avail_out == 0);
	} while (flush != Z_FINISH);
	if (zrc != Z_STREAM_END) {
		errno = EIO;
		goto out;
	}
	if (fsync(out) == -1)
		goto out;
	ret = 0;
out:
	saved = errno;
	if (zinit)
		deflateEnd(&zs);
	if (in != -1)
		close(in);
	if (out != -1 && close(out) == -1 && ret == 0) {
		saved = errno;
		ret = -1;
	}
	errno = saved;
	return ret;
}

/* Deletes the oldest archive and renames the others one up, freeing <base>.1.jsonl.gz. */
static int
sk_shift(const struct sk_file *f)
{
	char from[SK_NAME_MAX], to[SK_NAME_MAX];
	uint32_t i;

	snprintf(to, sizeof(to), "%s.%u.jsonl.gz", f->base, sk.keep);
	if (unlinkat(sk.dirfd, to, 0) == -1 && errno != ENOENT)
		return -1;
	for (i = sk.keep; i > 1; i--) {
		snprintf(from, sizeof(from), "%s.%u.jsonl.gz", f->base, i - 1);
		snprintf(to, sizeof(to), "%s.%u.jsonl.gz", f->base, i);
		if (renameat(sk.dirfd, from, sk.dirfd, to) == -1 && errno != ENOENT)
			return -1;
	}
	return 0;
}

/* Puts the complete <base>.1.jsonl.gz.tmp in place as <base>.1.jsonl.gz. */
static int
sk_install_tmp(struct sk_file *f, const char *tmp, const char *arch)
{
	if (sk_exists(arch) && sk_shift(f) == -1) {
		sk_fail(&f->rl, "%s: cannot shift the archives of %s: %s", sk.dir, f->base,
		    strerror(errno));
		return -1;
	}
	if (renameat(sk.dirfd, tmp, sk.dirfd, arch) == -1) {
		sk_fail(&f->rl, "%s: cannot rename %s: %s", sk.dir, tmp, strerror(errno));
		return -1;
	}
	fsync(sk.dirfd);
	return 0;
}

/* Turns <base>.jsonl.rotating into <base>.1.jsonl.gz (see the top of the file). */
static int
sk_archive_rotating(struct sk_file *f)
{
	char rot[SK_NAME_MAX], tmp[SK_NAME_MAX], arch[SK_NAME_MAX];

	snprintf(rot, sizeof(rot), "%s.jsonl.rotating", f->base);
	snprintf(tmp, sizeof(tmp), "%s.1.jsonl.gz.tmp", f->base);
	snprintf(arch, sizeof(arch), "%s.1.jsonl.gz", f->base);
	if (sk_gzip(rot, tmp) == -1) {
		sk_fail(&f->rl, "%s: cannot compress %s: %s", sk.dir, rot, strerror(errno));
		unlinkat(sk.dirfd, tmp, 0);
		return -1;
	}
	/* The .tmp file's name must be durable before its source goes. */
	fsync(sk.dirfd);
	if (unlinkat(sk.dirfd, rot, 0) == -1) {
		sk_fail(&f->rl, "%s: cannot remove %s: %s", sk.dir, rot, strerror(errno));
		unlinkat(sk.dirfd, tmp, 0);
		return -1;
	}
	return sk_install_tmp(f, tmp, arch);
}

/* Finishes an interrupted rotation; 0 when nothing is left over. */
static int
sk_recover(struct sk_file *f)
{
	char rot[SK_NAME_MAX], tmp[SK_NAME_MAX], arch[SK_NAME_MAX];

	snprintf(rot, sizeof(rot), "%s.jsonl.rotating", f->base);
	snprintf(tmp, sizeof(tmp), "%s.1.jsonl.gz.tmp", f->base);
	snprintf(arch, sizeof(arch), "%s.1.jsonl.gz", f->base);
	if (sk_exists(rot)) {
		unlinkat(sk.dirfd, tmp, 0); /* maybe partial: made again from rot */
		return sk_archive_rotating(f);
	}
	if (sk_exists(tmp))
		return sk_install_tmp(f, tmp, arch);
	return 0;
}

static int
sk_rotate(struct sk_file *f)
{
	char live[SK_NAME_MAX], rot[SK_NAME_MAX];
	int fd;

	snprintf(live, sizeof(live), "%s.jsonl", f->base);
	snprintf(rot, sizeof(rot), "%s.jsonl.rotating", f->base);
	/* A leftover must be archived first: renaming onto it would lose its lines. */
	if (sk_recover(f) == -1)
		return -1;
	if (renameat(sk.dirfd, live, sk.dirfd, rot) == -1) {
		sk_fail(&f->rl, "%s: cannot rename %s: %s", sk.dir, live, strerror(errno));
		return -1;
	}
	if ((fd = sk_open_live(f)) == -1) {
		sk_fail(&f->rl, "%s: cannot create %s: %s", sk.dir, live, strerror(errno));
		if (renameat(sk.dirfd, rot, sk.dirfd, live) == -1)
			return -1; /* the next rotation archives the .rotating file */
		return -1;
	}
	close(f->fd);
	f->fd = fd;
	return sk_archive_rotating(f);
}

/* Appends one line (with its newline) to the channel's file, rotating first if needed. */
static void
sk_file_write(struct sk_file *f, const char *line, size_t len)
{
	struct stat st;
	struct iovec iov[2];
	off_t size;

	if (f->fd == -1 && (f->fd = sk_open_live(f)) == -1) {
		sk_fail(&f->rl, "%s: cannot open %s.jsonl: %s", sk.dir, f->base, strerror(errno));
		return;
	}
	if (fstat(f->fd, &st) == -1)
		goto fail;
	if (st.st_nlink == 0) {
		/* Someone deleted the live file: writing into the void would lose events. */
		close(f->fd);
		if ((f->fd = sk_open_live(f)) == -1 || fstat(f->fd, &st) == -1)
			goto fail;
	}
	size = st.st_size;
	if (size > 0 && (uint64_t)size + len + 1 > sk.max_bytes && sk_rotate(f) == 0) {
		if (fstat(f->fd, &st) == -1)
			goto fail;
		size = st.st_size;
	}
	/* One writev keeps the line whole for readers that tail the file. */
	iov[0].iov_base = (void *)line;
	iov[0].iov_len = len;
	iov[1].iov_base = (void *)"\n";
	iov[1].iov_len = 1;
	for (;;) {
		ssize_t w = writev(f->fd, iov, 2);

		if (w == -1 && errno == EINTR)
			continue;
		if (w == (ssize_t)len + 1)
			return;
		if (w == -1)
			goto undo;
		/* Short write (disk nearly full): finish the line, or take it back. */
		if ((size_t)w < len) {
			if (sk_write_all(f->fd, line + w, len - (size_t)w) == -1)
				goto undo;
		}
		if (sk_write_all(f->fd, "\n", 1) == -1)
			goto undo;
		return;
	}
undo:
	{
		int saved = errno;

		/* A partial line would glue itself to the next one. */
		if (ftruncate(f->fd, size) == -1) {
			/* nothing more to do: the error below is what matters */
		}
		errno = saved;
	}
fail:
	sk_fail(&f->rl, "%s: cannot write %s.jsonl: %s", sk.dir, f->base, strerror(errno));
}

static void
sk_format_time(uint64_t us, char out[40])
{
	time_t s = (time_t)(us / 1000000u);
	struct tm tm;

	if (gmtime_r(&s, &tm) == NULL) {
		snprintf(out, 40, "1970-01-01T00:00:00.000000Z");
		return;
	}
	strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + 19, 21, ".%06uZ", (unsigned)(us % 1000000u));
}

/* The JSON line, without its newline (caller frees with cJSON_free). Takes details. */
static char *
sk_line(const struct cc_event_msg *m, const struct cc_event_def *def, cJSON *details,
    const char *time_text)
{
	cJSON *o;
	char *text = NULL;

	if ((o = cJSON_CreateObject()) == NULL) {
		cJSON_Delete(details);
		return NULL;
	}
	if (cJSON_AddStringToObject(o, "time", time_text) == NULL ||
	    cJSON_AddNumberToObject(o, "id", def->id) == NULL ||
	    cJSON_AddStringToObject(o, "name", def->name) == NULL ||
	    cJSON_AddStringToObject(o, "channel", cc_event_channel_name(def->channel)) == NULL ||
	    cJSON_AddStringToObject(o, "category", def->category) == NULL ||
	    cJSON_AddStringToObject(o, "correlationId",
		m->correlation_id ? m->correlation_id : "") == NULL ||
	    cJSON_AddStringToObject(o, "role", m->role ? m->role : "") == NULL) {
		cJSON_Delete(details);
		goto out;
	}
	if (!cJSON_AddItemToObject(o, "details", details)) {
		cJSON_Delete(details);
		goto out;
	}
	text = cJSON_PrintUnformatted(o);
out:
	cJSON_Delete(o);
	return text;
}

int
cc_event_sinks_write(const struct cc_event_msg *m)
{
	const struct cc_event_def *def;
	const char *why;
	char time_text[40];
	cJSON *details = NULL;
	char *line;
	uint64_t supp;
	int ret = -1;

	pthread_mutex_lock(&sk_lock);
	if (sk_check(m, &why, &def, &details) == -1) {
		if (ev_rl_allow(&sk.reject_rl, &supp))
			cc_log_err("events: rejected event %u from role \"%.32s\": %s "
			    "(%" PRIu64 " similar suppressed)", m->id, m->role ? m->role : "", why,
			    supp);
		goto out;
	}
	ret = 0;
	if (def->id == CC_EV_DEBUG_MESSAGE) {
		uint32_t chan = cc_event_channel_from_name(
		    sk_member(details, "debugChannel", NULL)->valuestring);

		if (!cc_event_debug_enabled(chan))
			goto out;
	}
	if (!sk.open) {
		cc_log_debug("event %u %s (correlation id \"%s\"): %s", def->id, def->name,
		    m->correlation_id ? m->correlation_id : "", m->details_json);
		goto out;
	}
	sk_format_time(m->time_us, time_text);
	if (sk.journald)
		sk_journal(m, def, details, time_text);
	if (sk.dirfd != -1) {
		struct sk_file *f = NULL;

		for (size_t i = 0; i < SK_NFILES; i++)
			if (sk.files[i].channel == def->channel)
				f = &sk.files[i];
		line = sk_line(m, def, details, time_text);
		details = NULL; /* taken by sk_line */
		if (line == NULL) {
			sk_fail(&f->rl, "out of memory formatting event %u", def->id);
			goto out;
		}
		sk_file_write(f, line, strlen(line));
		cJSON_free(line);
	}
out:
	pthread_mutex_unlock(&sk_lock);
	cJSON_Delete(details);
	return ret;
}

/* ---- open / close ---- */

/* Deletes the archives of one channel beyond keep (keep may have been lowered). */
static void
sk_prune(struct sk_file *f)
{
	size_t blen = strlen(f->base);
	struct dirent *de;
	DIR *d;
	int fd;

	if ((fd = dup(sk.dirfd)) == -1 || (d = fdopendir(fd)) == NULL) {
		if (fd != -1)
			close(fd);
		sk_fail(&f->rl, "%s: cannot list: %s", sk.dir, strerror(errno));
		return;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		const char *n = de->d_name;
		char *end;
		unsigned long idx;

		if (strncmp(n, f->base, blen) != 0 || n[blen] != '.' ||
		    n[blen + 1] < '1' || n[blen + 1] > '9')
			continue;
		errno = 0;
		idx = strtoul(n + blen + 1, &end, 10);
		if (errno != 0 || strcmp(end, ".jsonl.gz") != 0 || idx <= sk.keep)
			continue;
		if (unlinkat(sk.dirfd, n, 0) == -1)
			sk_fail(&f->rl, "%s: cannot remove %s: %s", sk.dir, n, strerror(errno));
	}
	closedir(d);
}

static void
sk_close_locked(void)
{
	for (size_t i = 0; i < SK_NFILES; i++) {
		if (sk.files[i].fd != -1)
			close(sk.files[i].fd);
		sk.files[i].fd = -1;
	}
	if (sk.dirfd != -1)
		close(sk.dirfd);
	sk.dirfd = -1;
	free(sk.dir);
	sk.dir = NULL;
	sk.journald = 0;
	sk.open = 0;
}

void
cc_event_sinks_close(void)
{
	pthread_mutex_lock(&sk_lock);
	sk_close_locked();
	pthread_mutex_unlock(&sk_lock);
}

int
cc_event_sinks_open(const struct cc_event_sinks_conf *c)
{
	uint64_t max_bytes = c->max_bytes ? c->max_bytes : CC_EVENT_MAX_BYTES_DEFAULT;
	uint32_t keep = c->keep ? c->keep : CC_EVENT_KEEP_DEFAULT;
	int ret = -1;

	if (max_bytes < CC_EVENT_MAX_BYTES_MIN) {
		cc_log_err("events: max_bytes %" PRIu64 " is below the minimum %u", max_bytes,
		    CC_EVENT_MAX_BYTES_MIN);
		return -1;
	}
	if (keep > CC_EVENT_KEEP_MAX) {
		cc_log_err("events: keep %u is above the maximum %u", keep, CC_EVENT_KEEP_MAX);
		return -1;
	}
	pthread_mutex_lock(&sk_lock);
	sk_close_locked();
	sk.max_bytes = max_bytes;
	sk.keep = keep;
	sk.journald = c->journald != 0;
	if (c->dir != NULL) {
		if ((sk.dir = strdup(c->dir)) == NULL) {
			cc_log_err("events: out of memory");
			goto out;
		}
		if (mkdir(c->dir, 0750) == -1 && errno != EEXIST) {
			cc_log_err("events: cannot create %s: %s", c->dir, strerror(errno));
			goto out;
		}
		sk.dirfd = open(c->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (sk.dirfd == -1) {
			cc_log_err("events: cannot open %s: %s", c->dir, strerror(errno));
			goto out;
		}
		for (size_t i = 0; i < SK_NFILES; i++) {
			struct sk_file *f = &sk.files[i];

			sk_prune(f);
			sk_recover(f); /* logs; retried at the next rotation */
			if ((f->fd = sk_open_live(f)) == -1) {
				cc_log_err("events: cannot open %s/%s.jsonl: %s", c->dir, f->base,
				    strerror(errno));
				goto out;
			}
		}
	}
	ev_debug_store(c->debug_mask);
	sk.open = 1;
	ret = 0;
out:
	if (ret == -1)
		sk_close_locked();
	pthread_mutex_unlock(&sk_lock);
	return ret;
}
