/* The event catalogue: look-ups over the generated table (see include/certconn/event.h). */
#include <strings.h>

#include "certconn/event.h"
#include "event_int.h"

const struct cc_event_def *
cc_event_lookup(uint32_t id)
{
	size_t lo = 0, hi = cc_event_table_len;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (cc_event_table[mid].id == id)
			return &cc_event_table[mid];
		if (cc_event_table[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

size_t cc_event_count(void) { return cc_event_table_len; }

const struct cc_event_def *
cc_event_at(size_t i)
{
	return i < cc_event_table_len ? &cc_event_table[i] : NULL;
}

const char *
cc_event_channel_name(uint32_t channel)
{
	switch (channel) {
	case CC_CHAN_ADMIN:
		return "Admin";
	case CC_CHAN_OPERATIONAL:
		return "Operational";
	case CC_CHAN_DEBUG:
		return "Debug";
	default:
		return NULL;
	}
}

uint32_t
cc_event_channel_from_name(const char *name)
{
	static const uint32_t chans[] = { CC_CHAN_ADMIN, CC_CHAN_OPERATIONAL, CC_CHAN_DEBUG };

	if (name == NULL)
		return 0;
	for (size_t i = 0; i < sizeof(chans) / sizeof(chans[0]); i++)
		if (strcasecmp(name, cc_event_channel_name(chans[i])) == 0)
			return chans[i];
	return 0;
}
