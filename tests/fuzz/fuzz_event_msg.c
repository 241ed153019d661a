/*
 * The parent's path for events from a child: a frame from the socketpair goes through
 * cc_msg_parse, cc_dec_event and cc_event_sinks_write (files in a temporary directory, small
 * cap so rotation runs too, debug on, journald off). Nothing a child sends may crash the
 * parent, and the sinks must accept exactly what cc_event_validate accepts.
 */
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "certconn/event.h"
#include "certconn/log.h"
#include "certconn/msg.h"
#include "certconn/proto.h"

static char dir[64];

static int
rm_one(const char *p, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(p);
}

static void
cleanup(void)
{
	cc_event_sinks_close();
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct cc_event_sinks_conf c = {
		.max_bytes = CC_EVENT_MAX_BYTES_MIN, .keep = 2, .journald = 0,
		.debug_mask = CC_CHAN_ADMIN | CC_CHAN_OPERATIONAL,
	};

	(void)argc;
	(void)argv;
	cc_log_init("fuzz_event_msg", "parent", 0);
	snprintf(dir, sizeof(dir), "/tmp/fuzz-event-XXXXXX");
	if (mkdtemp(dir) == NULL)
		abort();
	c.dir = dir;
	if (cc_event_sinks_open(&c) != 0)
		abort();
	atexit(cleanup);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cc_msg m;
	struct cc_event_msg ev;
	const char *why = NULL;
	int valid;

	if (cc_msg_parse(data, size, &m, &why) == -1)
		return 0;
	if (cc_dec_event(&m, &ev, &why) == -1)
		return 0;
	valid = cc_event_validate(&ev, &why) == 0;
	if (valid != (why == NULL))
		abort();
	if (valid != (cc_event_sinks_write(&ev) == 0))
		abort();
	return 0;
}
