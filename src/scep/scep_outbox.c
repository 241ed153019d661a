/*
 * The durable outbox of service notifications. Each notification is a file in the outbox
 * directory, written before it is sent: a temporary file is written and fsync'd, renamed to
 * its final name and the directory fsync'd, so after a crash a notification is either
 * wholly there or not there at all (and then it was never sent). It is removed when the
 * service acknowledged it; whatever is left is resent by scep_outbox_retry, with backoff,
 * and at start-up.
 *
 * File: <dir>/<microseconds>-<16 hex>.json, {"kind", "profile", "txid", "serial", "body"}.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/rand.h>

#include "certconn/event.h"
#include "certconn/log.h"
#include "certconn/util.h"
#include "scep_int.h"

#define OUTBOX_ENTRY_MAX (256u * 1024u)
#define OUTBOX_BACKOFF_MIN 10
#define OUTBOX_BACKOFF_MAX 3600

struct ob_entry {
	char id[64];
	unsigned attempts;
	time_t next;
	bool busy;                   /* being sent by some thread */
	unsigned round;              /* the retry round that last tried it */
	struct ob_entry *nx;
};

struct scep_outbox {
	char dir[1024];
	int dirfd;
	pthread_mutex_t lock;
	struct ob_entry *head;
	scep_outbox_acked_fn acked;
	void *arg;
	unsigned round;
};

static struct ob_entry *
find(struct scep_outbox *ob, const char *id)
{
	for (struct ob_entry *e = ob->head; e != NULL; e = e->nx)
		if (strcmp(e->id, id) == 0)
			return e;
	return NULL;
}

static int
add(struct scep_outbox *ob, const char *id, time_t next)
{
	struct ob_entry *e = calloc(1, sizeof(*e));

	if (e == NULL)
		return -1;
	snprintf(e->id, sizeof(e->id), "%s", id);
	e->next = next;
	e->nx = ob->head;
	ob->head = e;
	return 0;
}

static void
drop(struct scep_outbox *ob, const char *id)
{
	for (struct ob_entry **pp = &ob->head; *pp != NULL; pp = &(*pp)->nx)
		if (strcmp((*pp)->id, id) == 0) {
			struct ob_entry *e = *pp;
			*pp = e->nx;
			free(e);
			return;
		}
}

static int
name_ok(const char *n)
{
	size_t len = strlen(n);

	return len > 5 && len < 60 && strcmp(n + len - 5, ".json") == 0 && n[0] != '.';
}

int
scep_outbox_open(const char *dir, scep_outbox_acked_fn acked, void *arg,
    struct scep_outbox **out, char *err, size_t errlen)
{
	struct scep_outbox *ob;
	DIR *d;
	struct dirent *de;

	*out = NULL;
	ob = calloc(1, sizeof(*ob));
	if (ob == NULL || strlen(dir) >= sizeof(ob->dir)) {
		free(ob);
		snprintf(err, errlen, "outbox: bad directory");
		return -1;
	}
	snprintf(ob->dir, sizeof(ob->dir), "%s", dir);
	pthread_mutex_init(&ob->lock, NULL);
	ob->acked = acked;
	ob->arg = arg;
	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "outbox %s: %s", dir, strerror(errno));
		goto fail;
	}
	ob->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ob->dirfd == -1) {
		snprintf(err, errlen, "outbox %s: %s", dir, strerror(errno));
		goto fail;
	}
	/* Whatever a previous run left is due now; half-written temporaries are dropped. */
	d = fdopendir(dup(ob->dirfd));
	if (d == NULL) {
		snprintf(err, errlen, "outbox %s: %s", dir, strerror(errno));
		goto fail;
	}
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, ".tmp-", 5) == 0)
			(void)unlinkat(ob->dirfd, de->d_name, 0);
		else if (name_ok(de->d_name))
			add(ob, de->d_name, 0);
	}
	closedir(d);
	*out = ob;
	return 0;
fail:
	scep_outbox_close(ob);
	return -1;
}

void
scep_outbox_close(struct scep_outbox *ob)
{
	if (ob == NULL)
		return;
	while (ob->head != NULL)
		drop(ob, ob->head->id);
	if (ob->dirfd > 0)
		close(ob->dirfd);
	pthread_mutex_destroy(&ob->lock);
	free(ob);
}

static int
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int
scep_outbox_put(struct scep_outbox *ob, const char *kind, const char *json,
    const char *profile, const char *txid, const char *serial, char id[64], char *why,
    size_t whylen)
{
	cJSON *o = cJSON_CreateObject();
	char tmp[96], *text = NULL;
	unsigned char rnd[8];
	int fd = -1, r = -1;

	id[0] = '\0';
	if (o == NULL || RAND_bytes(rnd, sizeof(rnd)) != 1 ||
	    cJSON_AddStringToObject(o, "kind", kind) == NULL ||
	    cJSON_AddStringToObject(o, "profile", profile) == NULL ||
	    cJSON_AddStringToObject(o, "txid", txid) == NULL ||
	    cJSON_AddStringToObject(o, "serial", serial != NULL ? serial : "") == NULL ||
	    cJSON_AddStringToObject(o, "body", json) == NULL ||
	    (text = cJSON_PrintUnformatted(o)) == NULL) {
		snprintf(why, whylen, "out of memory");
		goto out;
	}
	snprintf(id, 64, "%llu-%02x%02x%02x%02x%02x%02x%02x%02x.json",
	    (unsigned long long)cc_wall_us(), rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5],
	    rnd[6], rnd[7]);
	snprintf(tmp, sizeof(tmp), ".tmp-%s", id);
	fd = openat(ob->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd == -1 || write_all(fd, text, strlen(text)) == -1 || fsync(fd) == -1 ||
	    close(fd) == -1) {
		snprintf(why, whylen, "outbox %s: cannot write: %s", ob->dir, strerror(errno));
		if (fd != -1)
			(void)unlinkat(ob->dirfd, tmp, 0);
		fd = -1;
		goto out;
	}
	fd = -1;
	if (renameat(ob->dirfd, tmp, ob->dirfd, id) == -1 || fsync(ob->dirfd) == -1) {
		snprintf(why, whylen, "outbox %s: cannot commit: %s", ob->dir, strerror(errno));
		(void)unlinkat(ob->dirfd, tmp, 0);
		goto out;
	}
	pthread_mutex_lock(&ob->lock);
	r = add(ob, id, time(NULL) + OUTBOX_BACKOFF_MIN);
	if (r == 0)
		find(ob, id)->busy = true; /* the writer sends it first (scep_outbox_send) */
	pthread_mutex_unlock(&ob->lock);
	if (r == -1)
		snprintf(why, whylen, "out of memory");
out:
	if (fd != -1)
		close(fd);
	if (text != NULL)
		cJSON_free(text);
	cJSON_Delete(o);
	if (r == -1)
		id[0] = '\0';
	return r;
}

/* Reads and sends one entry; the caller holds its busy mark. 0 acked and removed. */
static int
send_one(struct scep_outbox *ob, const char *id, cJSON **meta, char *why, size_t whylen)
{
	char path[1200];
	uint8_t *buf = NULL;
	size_t len = 0;
	cJSON *o = NULL, *kind, *body;
	int r = -1;

	*meta = NULL;
	snprintf(path, sizeof(path), "%s/%s", ob->dir, id);
	if (cc_read_file(path, OUTBOX_ENTRY_MAX, &buf, &len) == -1) {
		snprintf(why, whylen, "outbox entry %s: %s", id, strerror(errno));
		return -1;
	}
	o = cJSON_ParseWithLength((const char *)buf, len);
	kind = o != NULL ? cJSON_GetObjectItemCaseSensitive(o, "kind") : NULL;
	body = o != NULL ? cJSON_GetObjectItemCaseSensitive(o, "body") : NULL;
	if (!cJSON_IsString(kind) || !cJSON_IsString(body)) {
		/* Not ours or damaged: set aside, never resent, never lost. */
		char bad[1300];

		snprintf(bad, sizeof(bad), "%s.bad", path);
		(void)rename(path, bad);
		snprintf(why, whylen, "outbox entry %s is damaged; kept as %s.bad", id, id);
		cc_log_err("%s", why);
		r = 1;
		goto out;
	}
	if (scep_verify_notify(kind->valuestring, body->valuestring, why, whylen) == -1)
		goto out;
	if (unlinkat(ob->dirfd, id, 0) == -1 || fsync(ob->dirfd) == -1)
		cc_log_warn("outbox: removing %s after it was acknowledged: %s", id,
		    strerror(errno));
	*meta = o;
	o = NULL;
	r = 0;
out:
	cJSON_Delete(o);
	free(buf);
	return r;
}

int
scep_outbox_send(struct scep_outbox *ob, const char *id, char *why, size_t whylen)
{
	cJSON *meta = NULL;
	struct ob_entry *e;
	int r = send_one(ob, id, &meta, why, whylen);

	cJSON_Delete(meta);
	pthread_mutex_lock(&ob->lock);
	e = find(ob, id);
	if (r != -1) {
		drop(ob, id);
	} else if (e != NULL) {
		e->busy = false;
		e->attempts++;
		e->next = time(NULL) + OUTBOX_BACKOFF_MIN;
	}
	pthread_mutex_unlock(&ob->lock);
	return r == 0 ? 0 : -1;
}

static const char *
str_of(cJSON *o, const char *k)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsString(v) ? v->valuestring : "";
}

size_t
scep_outbox_retry(struct scep_outbox *ob, time_t now, bool force)
{
	char why[512];
	size_t left = 0;
	unsigned round;

	pthread_mutex_lock(&ob->lock);
	round = ++ob->round;
	pthread_mutex_unlock(&ob->lock);
	for (;;) {
		struct ob_entry *e;
		char id[64] = "";
		cJSON *meta = NULL;
		int r;

		pthread_mutex_lock(&ob->lock);
		for (e = ob->head; e != NULL; e = e->nx)
			if (!e->busy && e->round != round && (force || now >= e->next)) {
				e->busy = true;
				e->round = round;
				snprintf(id, sizeof(id), "%s", e->id);
				break;
			}
		pthread_mutex_unlock(&ob->lock);
		if (id[0] == '\0')
			break;
		r = send_one(ob, id, &meta, why, sizeof(why));
		pthread_mutex_lock(&ob->lock);
		e = find(ob, id);
		if (r != -1) {
			drop(ob, id);
		} else if (e != NULL) {
			time_t b = OUTBOX_BACKOFF_MIN;

			for (unsigned i = 0; i < e->attempts && b < OUTBOX_BACKOFF_MAX; i++)
				b *= 2;
			e->attempts++;
			e->busy = false;
			e->next = now + (b < OUTBOX_BACKOFF_MAX ? b : OUTBOX_BACKOFF_MAX);
		}
		pthread_mutex_unlock(&ob->lock);
		if (r == -1) {
			cc_event_emit(CC_EV_SCEP_NOTIFY_ATTEMPT_FAILED, NULL, "outboxEntry", id,
			    "reason", why, NULL);
		} else if (r == 0 && meta != NULL) {
			cc_event_emit(CC_EV_SCEP_NOTIFY_SUCCESS, str_of(meta, "txid"), "kind",
			    str_of(meta, "kind"), "profile", str_of(meta, "profile"), "retried", "true",
			    NULL);
			if (ob->acked != NULL)
				ob->acked(ob->arg, str_of(meta, "kind"), str_of(meta, "profile"),
				    str_of(meta, "txid"), str_of(meta, "serial"));
		}
		cJSON_Delete(meta);
	}
	pthread_mutex_lock(&ob->lock);
	for (struct ob_entry *e = ob->head; e != NULL; e = e->nx)
		left++;
	pthread_mutex_unlock(&ob->lock);
	return left;
}

size_t
scep_outbox_count(struct scep_outbox *ob)
{
	size_t n = 0;

	pthread_mutex_lock(&ob->lock);
	for (struct ob_entry *e = ob->head; e != NULL; e = e->nx)
		n++;
	pthread_mutex_unlock(&ob->lock);
	return n;
}
