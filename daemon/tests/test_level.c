// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit test of level.c: the mapping of readings to LowMemoryMonitor
 * levels, and when a level is signalled (escalations at once, a lasting
 * level every repeat interval, nothing while not LOW), on a made-up clock.
 */
#include <string.h>

#include "tap.h"
#include "membrokerd.h"

#define MIB	(1024ULL * 1024)
#define SEC	MBD_NSEC_PER_SEC

static const struct mbd_level_cfg cfg = { .medium_pct = 50,
					  .critical_pct = 25 };

static uint8_t level(uint32_t state, uint64_t avail, uint32_t reason)
{
	struct mb_notification n = {
		.state = state, .available = avail, .low = 100 * MIB,
		.high = 300 * MIB, .total = 1024 * MIB, .reason = reason,
		.source = MB_SOURCE_KMOD,
	};

	return mbd_level_of(&cfg, &n);
}

static void test_mapping(void)
{
	struct mb_notification huge = {
		.state = MB_STATE_LOW, .low = UINT64_MAX,
		.available = UINT64_MAX / 2,
	};

	ok(level(MB_STATE_HIGH, 500 * MIB, 0) == 0, "HIGH: no level");
	ok(level(MB_STATE_STEADY, 200 * MIB, 0) == 0, "STEADY: no level");
	ok(level(MB_STATE_UNKNOWN, 0, 0) == 0, "UNKNOWN: no level");
	ok(level(MB_STATE_STEADY, 1 * MIB, MEMBROKER_REASON_OOM) == 0,
	   "an OOM reason outside LOW: no level");
	ok(level(MB_STATE_LOW, 99 * MIB, 0) == 50, "just below low: 50");
	ok(level(MB_STATE_LOW, 110 * MIB, 0) == 50,
	   "LOW held by hysteresis above low: 50");
	ok(level(MB_STATE_LOW, 50 * MIB, 0) == 50, "at half of low: 50");
	ok(level(MB_STATE_LOW, 50 * MIB - 1, 0) == 100,
	   "below half of low: 100");
	ok(level(MB_STATE_LOW, 25 * MIB, 0) == 100, "at a quarter: 100");
	ok(level(MB_STATE_LOW, 25 * MIB - 1, 0) == 255,
	   "below a quarter of low: 255");
	ok(level(MB_STATE_LOW, 0, 0) == 255, "nothing available: 255");
	ok(level(MB_STATE_LOW, 90 * MIB, MEMBROKER_REASON_OOM) == 255,
	   "the module's OOM reason: 255 whatever the figures");
	ok(level(MB_STATE_LOW, 90 * MIB, MEMBROKER_REASON_RECLAIM) == 50,
	   "reclaim reason: by the figures");
	/* UINT64_MAX * 50 would wrap to a small number */
	ok(mbd_level_of(&cfg, &huge) == 50,
	   "percentages of a huge threshold do not wrap");
	ok(!strcmp(mbd_level_name(100), "medium") &&
	   !strcmp(mbd_level_name(7), "unknown"), "level names");
}

static void test_pacing(void)
{
	struct mbd_warn w;
	uint64_t t = 1000 * SEC;

	mbd_warn_init(&w, 15 * SEC);
	ok(mbd_warn_reading(&w, 0, t) == 0 && mbd_warn_next(&w) == 0,
	   "HIGH: nothing said, no timer");
	ok(mbd_warn_reading(&w, 50, t) == 50, "LOW: 50 at once");
	ok(mbd_warn_next(&w) == t + 15 * SEC, "re-send planned 15 s later");
	ok(mbd_warn_reading(&w, 50, t + 1 * SEC) == 0,
	   "the same level again within 15 s: nothing");
	ok(mbd_warn_timer(&w, t + 14 * SEC) == 0, "an early timer: nothing");
	ok(mbd_warn_timer(&w, t + 15 * SEC) == 50, "15 s later: 50 again");
	t += 15 * SEC;
	ok(mbd_warn_reading(&w, 100, t + 1 * SEC) == 100,
	   "deeper: 100 at once");
	t += 1 * SEC;
	ok(mbd_warn_reading(&w, 255, t + 1) == 255, "deeper still: 255 at once");
	t += 1;
	ok(mbd_warn_reading(&w, 50, t + 2 * SEC) == 0,
	   "shallower within 15 s: nothing at once");
	ok(mbd_warn_timer(&w, t + 15 * SEC) == 50,
	   "the re-send says the current level, 50");
	t += 15 * SEC;
	ok(mbd_warn_reading(&w, 0, t + 1 * SEC) == 0, "recovery: nothing said");
	ok(mbd_warn_next(&w) == 0, "recovery: no re-send planned");
	ok(mbd_warn_timer(&w, t + 15 * SEC) == 0,
	   "a stale timer after recovery: nothing");
	ok(mbd_warn_reading(&w, 50, t + 2 * SEC) == 50,
	   "LOW again after a recovery: news, 50 at once");
	ok(mbd_warn_reading(&w, 50, t + 3 * SEC) == 0 &&
	   mbd_warn_timer(&w, t + 16 * SEC) == 0 &&
	   mbd_warn_timer(&w, t + 17 * SEC) == 50,
	   "and again 15 s after that one while it lasts");
	t += 17 * SEC;
	ok(mbd_warn_reading(&w, 0, t + SEC / 10) == 0 &&
	   mbd_warn_reading(&w, 50, t + SEC / 5) == 0,
	   "a dip out of LOW and back within a second: nothing at once");
	ok(mbd_warn_next(&w) == t + SEC && mbd_warn_timer(&w, t + SEC) == 50,
	   "it is said a second after the last signal");
	t += SEC;
	ok(mbd_warn_reading(&w, 0, t + 1) == 0 &&
	   mbd_warn_reading(&w, 255, t + 2) == 255,
	   "a deeper level after a dip: at once");
}

int main(void)
{
	plan(0);
	test_mapping();
	test_pacing();
	return done_testing();
}
