/*
 * The version lifecycle of the seed (docs/protocol.md section 10): a release is supported
 * for 6 months after the next one is released (deprecated meanwhile: a warning), then
 * unsupported (an error), and may stop working 18 months after the next release (blocked).
 */
#include <string.h>

#include "hub.h"

const char *
hub_life_name(enum hub_life s)
{
	switch (s) {
	case HUB_LIFE_SUPPORTED: return "supported";
	case HUB_LIFE_WARNING: return "warning";
	case HUB_LIFE_ERROR: return "error";
	case HUB_LIFE_BLOCKED: return "blocked";
	default: return "unknown";
	}
}

/* Whether catalogue entry a is a later release than b: by date, ties by version number. */
static int
later(const struct hub_version_entry *a, const struct hub_version_entry *b)
{
	if (a->released != b->released)
		return a->released > b->released;
	return hub_version_cmp(a->version, b->version) > 0;
}

void
hub_lifecycle(const struct hub_version_entry *cat, size_t n, const char *version, int64_t now,
    int support_months, int block_months, struct hub_life_result *out)
{
	const struct hub_version_entry *self = NULL, *next = NULL, *latest = NULL;

	memset(out, 0, sizeof(*out));
	out->status = HUB_LIFE_UNKNOWN;
	for (size_t i = 0; i < n; i++) {
		if (cat[i].released <= now && (latest == NULL || later(&cat[i], latest)))
			latest = &cat[i];
		if (version != NULL && hub_version_cmp(cat[i].version, version) == 0)
			self = &cat[i];
	}
	out->latest = latest != NULL ? latest->version : NULL;
	if (self == NULL)
		return;
	/* The next release: the earliest of those released after this one. A release the
	 * catalogue dates in the future does not deprecate anything yet. */
	for (size_t i = 0; i < n; i++)
		if (later(&cat[i], self) && cat[i].released <= now &&
		    (next == NULL || later(next, &cat[i])))
			next = &cat[i];
	if (next == NULL) {
		out->status = HUB_LIFE_SUPPORTED;
		return;
	}
	out->support_ends = hub_add_months(next->released, support_months);
	out->block_after = hub_add_months(next->released, block_months);
	if (now >= out->block_after)
		out->status = HUB_LIFE_BLOCKED;
	else if (now >= out->support_ends)
		out->status = HUB_LIFE_ERROR;
	else
		out->status = HUB_LIFE_WARNING;
}
