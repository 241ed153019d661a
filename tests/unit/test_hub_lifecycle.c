/*
 * The version lifecycle (docs/protocol.md section 10) as the seed states it, with the seed's
 * own example: 6.2203.12.0 was released on 2022-05-04, so 6.2202.38.0 leaves support on
 * 2022-11-04 and may stop working from November 2023. Also the time and version helpers
 * the computation rests on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "hub.h"

static int64_t
T(const char *s)
{
	int64_t t = 0;

	assert_int_equal(hub_time_parse(s, &t), 0);
	return t;
}

/* The seed's "what's new" list. */
static struct hub_version_entry cat[6];

static int
setup(void **state)
{
	(void)state;
	cat[0] = (struct hub_version_entry){ "6.2301.1.0", T("2023-02-15") };
	cat[1] = (struct hub_version_entry){ "6.2206.122.0", T("2022-09-21") };
	cat[2] = (struct hub_version_entry){ "6.2205.201.0", T("2022-06-30") };
	cat[3] = (struct hub_version_entry){ "6.2203.12.0", T("2022-05-04") };
	cat[4] = (struct hub_version_entry){ "6.2202.38.0", T("2022-03-10") };
	cat[5] = (struct hub_version_entry){ "6.2101.13.0", T("2021-01-20") };
	return 0;
}

static enum hub_life
status_at(const char *version, const char *when, struct hub_life_result *lr)
{
	struct hub_life_result tmp;

	if (lr == NULL)
		lr = &tmp;
	hub_lifecycle(cat, 6, version, T(when), 6, 18, lr);
	return lr->status;
}

static void
test_seed_example(void **state)
{
	struct hub_life_result lr;
	char tb[32];

	(void)state;
	/* before the next release: supported */
	assert_int_equal(status_at("6.2202.38.0", "2022-05-03T23:59:59Z", NULL),
	    HUB_LIFE_SUPPORTED);
	/* from the next release: deprecated, still supported for 6 months (a warning) */
	assert_int_equal(status_at("6.2202.38.0", "2022-05-04T00:00:00Z", &lr), HUB_LIFE_WARNING);
	assert_string_equal(hub_time_str(lr.support_ends, tb), "2022-11-04T00:00:00Z");
	assert_string_equal(hub_time_str(lr.block_after, tb), "2023-11-04T00:00:00Z");
	assert_int_equal(status_at("6.2202.38.0", "2022-11-03T23:59:59Z", NULL), HUB_LIFE_WARNING);
	/* "removed from support on 2022-11-04": an error */
	assert_int_equal(status_at("6.2202.38.0", "2022-11-04T00:00:00Z", NULL), HUB_LIFE_ERROR);
	/* "should keep working until November 2023" */
	assert_int_equal(status_at("6.2202.38.0", "2023-11-03T23:59:59Z", NULL), HUB_LIFE_ERROR);
	/* "after November 2023 it may stop communicating": blocked */
	assert_int_equal(status_at("6.2202.38.0", "2023-11-04T00:00:00Z", NULL), HUB_LIFE_BLOCKED);
}

static void
test_each_status(void **state)
{
	struct hub_life_result lr;

	(void)state;
	/* the newest release is supported and knows no end */
	assert_int_equal(status_at("6.2301.1.0", "2024-06-01", &lr), HUB_LIFE_SUPPORTED);
	assert_int_equal(lr.support_ends, 0);
	assert_string_equal(lr.latest, "6.2301.1.0");
	/* 6.2206.122.0: next is 6.2301.1.0 (2023-02-15) */
	assert_int_equal(status_at("6.2206.122.0", "2023-03-01", NULL), HUB_LIFE_WARNING);
	assert_int_equal(status_at("6.2206.122.0", "2023-08-15", NULL), HUB_LIFE_ERROR);
	assert_int_equal(status_at("6.2206.122.0", "2024-08-15", NULL), HUB_LIFE_BLOCKED);
	/* the next release counts, not the latest: 6.2205.201.0 -> 6.2206.122.0 (2022-09-21) */
	assert_int_equal(status_at("6.2205.201.0", "2023-03-20", &lr), HUB_LIFE_WARNING);
	assert_int_equal(lr.support_ends, T("2023-03-21"));
	assert_int_equal(status_at("6.2205.201.0", "2023-03-21", NULL), HUB_LIFE_ERROR);
	/* a version the catalogue does not know */
	assert_int_equal(status_at("6.1.0.0", "2023-01-01", &lr), HUB_LIFE_UNKNOWN);
	/* "latest" is the newest release out at that time */
	assert_string_equal(lr.latest, "6.2206.122.0");
	assert_int_equal(status_at("6.1.0.0", "2023-03-01", &lr), HUB_LIFE_UNKNOWN);
	assert_string_equal(lr.latest, "6.2301.1.0");
	/* versions compare by number, not text: "6.2202.38" is 6.2202.38.0 */
	assert_int_equal(status_at("6.2202.38", "2022-05-05", NULL), HUB_LIFE_WARNING);
	/* names */
	assert_string_equal(hub_life_name(HUB_LIFE_SUPPORTED), "supported");
	assert_string_equal(hub_life_name(HUB_LIFE_WARNING), "warning");
	assert_string_equal(hub_life_name(HUB_LIFE_ERROR), "error");
	assert_string_equal(hub_life_name(HUB_LIFE_BLOCKED), "blocked");
	assert_string_equal(hub_life_name(HUB_LIFE_UNKNOWN), "unknown");
}

static void
test_future_release(void **state)
{
	struct hub_version_entry c2[2] = { { "1.0.0", 0 }, { "1.1.0", 0 } };
	struct hub_life_result lr;

	(void)state;
	c2[0].released = T("2025-01-01");
	c2[1].released = T("2025-07-01"); /* announced, not out yet */
	hub_lifecycle(c2, 2, "1.0.0", T("2025-06-30"), 6, 18, &lr);
	assert_int_equal(lr.status, HUB_LIFE_SUPPORTED);
	assert_string_equal(lr.latest, "1.0.0");
	hub_lifecycle(c2, 2, "1.0.0", T("2025-07-01"), 6, 18, &lr);
	assert_int_equal(lr.status, HUB_LIFE_WARNING);
	/* other periods from the config */
	hub_lifecycle(c2, 2, "1.0.0", T("2025-08-02"), 1, 2, &lr);
	assert_int_equal(lr.status, HUB_LIFE_ERROR);
	hub_lifecycle(c2, 2, "1.0.0", T("2025-09-01"), 1, 2, &lr);
	assert_int_equal(lr.status, HUB_LIFE_BLOCKED);
	/* an empty catalogue */
	hub_lifecycle(NULL, 0, "1.0.0", T("2025-09-01"), 6, 18, &lr);
	assert_int_equal(lr.status, HUB_LIFE_UNKNOWN);
	assert_null(lr.latest);
}

static void
test_months(void **state)
{
	char tb[32];

	(void)state;
	/* the day is clamped to the month's end; leap years count */
	assert_string_equal(hub_time_str(hub_add_months(T("2022-08-31T10:00:00Z"), 6), tb),
	    "2023-02-28T10:00:00Z");
	assert_string_equal(hub_time_str(hub_add_months(T("2022-08-31"), 18), tb),
	    "2024-02-29T00:00:00Z");
	assert_string_equal(hub_time_str(hub_add_months(T("2022-05-04"), 6), tb),
	    "2022-11-04T00:00:00Z");
	assert_string_equal(hub_time_str(hub_add_months(T("2022-12-15"), 1), tb),
	    "2023-01-15T00:00:00Z");
	assert_string_equal(hub_time_str(hub_add_months(T("2023-01-31"), 1), tb),
	    "2023-02-28T00:00:00Z");
}

static void
test_time_parse(void **state)
{
	int64_t t;

	(void)state;
	assert_int_equal(hub_time_parse("2030-01-01T00:00:00.000Z", &t), 0);
	assert_int_equal(t, T("2030-01-01"));
	assert_int_equal(hub_time_parse("2030-01-01T00:00:00Z", &t), 0);
	assert_int_equal(hub_time_parse("2023-02-29", &t), -1);       /* no such day */
	assert_int_equal(hub_time_parse("2030-01-01T00:00:00", &t), -1); /* no zone */
	assert_int_equal(hub_time_parse("2030-01-01T00:00:00+01:00", &t), -1);
	assert_int_equal(hub_time_parse("2030-13-01", &t), -1);
	assert_int_equal(hub_time_parse("2030-1-01", &t), -1);
	assert_int_equal(hub_time_parse("next year", &t), -1);
	assert_int_equal(hub_time_parse("", &t), -1);
	assert_int_equal(hub_time_parse("2030-01-01T00:00:00.Z", &t), -1);
}

static void
test_versions(void **state)
{
	(void)state;
	assert_true(hub_version_ok("0.1.0"));
	assert_true(hub_version_ok("6.2203.12.0"));
	assert_true(hub_version_ok("1"));
	assert_false(hub_version_ok("1.2.3.4.5"));
	assert_false(hub_version_ok("1..2"));
	assert_false(hub_version_ok("1.2."));
	assert_false(hub_version_ok("v1.2"));
	assert_false(hub_version_ok(""));
	assert_false(hub_version_ok("1234567890.1"));
	assert_int_equal(hub_version_cmp("1.10.0", "1.9.0"), 1);
	assert_int_equal(hub_version_cmp("1.2", "1.2.0"), 0);
	assert_int_equal(hub_version_cmp("6.2202.38.0", "6.2203.12.0"), -1);
	assert_int_equal(hub_version_cmp("x", "y"), 0); /* never loops on garbage */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seed_example),
		cmocka_unit_test(test_each_status),
		cmocka_unit_test(test_future_release),
		cmocka_unit_test(test_months),
		cmocka_unit_test(test_time_parse),
		cmocka_unit_test(test_versions),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
