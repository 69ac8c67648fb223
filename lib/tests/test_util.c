// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The rules shared with the kernel module (automatic thresholds,
 * classification with hysteresis, VIRTUAL_LOW, adaptive poll interval),
 * names of states and sources, and the options-struct copy rules.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "membroker.h"
#include "internal.h"
#include "tap.h"

#define MIB	(1024ULL * 1024)

static void test_thresholds(void)
{
	uint64_t lo, hi;

	mb_auto_thresholds(512 * MIB, &lo, &hi);
	ok(lo == 64 * MIB && hi == 192 * MIB, "512 MiB: low 64, high 192");
	mb_auto_thresholds(64ULL * 1024 * MIB, &lo, &hi);
	ok(lo == 256 * MIB && hi == 768 * MIB, "64 GiB: low capped at 256");
	mb_auto_thresholds(200 * MIB, &lo, &hi);
	ok(lo == 32 * MIB && hi == 96 * MIB, "200 MiB: low at least 32");
	mb_auto_thresholds(100 * MIB, &lo, &hi);
	ok(lo == 25 * MIB && hi == 50 * MIB,
	   "100 MiB: low at most total/4, high at most total/2");
}

static void test_classify(void)
{
	/* low 800, high 2400: hysteresis min(100, 800) = 100 */
	ok(mb_classify(799, 800, 2400, MB_STATE_STEADY) == MB_STATE_LOW,
	   "below low: LOW");
	ok(mb_classify(800, 800, 2400, MB_STATE_STEADY) == MB_STATE_STEADY,
	   "at low: STEADY");
	ok(mb_classify(899, 800, 2400, MB_STATE_LOW) == MB_STATE_LOW,
	   "LOW stays LOW below low + hysteresis");
	ok(mb_classify(900, 800, 2400, MB_STATE_LOW) == MB_STATE_STEADY,
	   "LOW leaves at low + hysteresis");
	ok(mb_classify(2401, 800, 2400, MB_STATE_STEADY) == MB_STATE_HIGH,
	   "above high: HIGH");
	ok(mb_classify(2301, 800, 2400, MB_STATE_HIGH) == MB_STATE_HIGH,
	   "HIGH stays HIGH above high - hysteresis");
	ok(mb_classify(2300, 800, 2400, MB_STATE_HIGH) == MB_STATE_STEADY,
	   "HIGH leaves at high - hysteresis");
	ok(mb_classify(10, 800, 2400, MB_STATE_HIGH) == MB_STATE_LOW,
	   "HIGH straight to LOW");
	ok(mb_classify(3000, 800, 2400, MB_STATE_LOW) == MB_STATE_HIGH,
	   "LOW straight to HIGH");
	/* thresholds 800/900: hysteresis limited to (900-800)/2 = 50 */
	ok(mb_classify(849, 800, 900, MB_STATE_LOW) == MB_STATE_LOW &&
	   mb_classify(850, 800, 900, MB_STATE_LOW) == MB_STATE_STEADY,
	   "hysteresis at most half the gap");
	ok(mb_classify(500, 800, 800, MB_STATE_UNKNOWN) == MB_STATE_LOW &&
	   mb_classify(800, 800, 800, MB_STATE_LOW) == MB_STATE_STEADY,
	   "equal thresholds: no hysteresis");
}

static void test_flags_and_poll(void)
{
	struct mb_meminfo at90 = { .committed = 90, .commit_limit = 100,
				   .commit_enforced = true };
	struct mb_meminfo at89 = { .committed = 89, .commit_limit = 100,
				   .commit_enforced = true };
	struct mb_meminfo huge = { .committed = UINT64_MAX,
				   .commit_limit = UINT64_MAX,
				   .commit_enforced = true };
	struct mb_meminfo nolimit = { .committed = 5, .commit_enforced = true };
	struct mb_meminfo heuristic = { .committed = 500, .commit_limit = 100 };

	ok(mb_virtual_flags(&at90) == MB_FLAG_VIRTUAL_LOW &&
	   mb_virtual_flags(&at89) == 0, "VIRTUAL_LOW at 90%% of the limit");
	ok(mb_virtual_flags(&huge) == MB_FLAG_VIRTUAL_LOW &&
	   mb_virtual_flags(&nolimit) == 0, "no overflow, unknown limit: clear");
	ok(mb_virtual_flags(&heuristic) == 0,
	   "limit not enforced (overcommit 0/1): clear at 500%%");
	ok(mb_poll_interval_ms(100, 200) == 5, "no headroom: 5 ms");
	ok(mb_poll_interval_ms(200 * MIB, 100 * MIB) == 97,
	   "100 MiB headroom at 1 GiB/s: 97 ms");
	ok(mb_poll_interval_ms(8192 * MIB, 100 * MIB) == 1000,
	   "plenty: 1000 ms");
	ok(mb_poll_interval_ms(101 * MIB, 100 * MIB) == 5,
	   "1 MiB headroom: clamped to 5 ms");
}

static void test_names(void)
{
	int t;

	ok(!strcmp(mb_state_name(MB_STATE_LOW), "low") &&
	   !strcmp(mb_state_name(MB_STATE_STEADY), "steady") &&
	   !strcmp(mb_state_name(MB_STATE_HIGH), "high") &&
	   !strcmp(mb_state_name(0), "unknown") &&
	   !strcmp(mb_state_name(77), "unknown"), "state names");
	for (t = 0; t < MB_SOURCE_COUNT; t++)
		if (mb_source_parse(mb_source_name(t)) != t)
			break;
	ok(t == MB_SOURCE_COUNT, "source names parse back");
	ok(mb_source_parse("nope") == -EINVAL && mb_source_parse(NULL) ==
	   -EINVAL, "unknown source name: -EINVAL");
}

struct opts_v2 {
	struct mb_clerk_opts v1;
	uint64_t future;
};

static void test_opts(void)
{
	struct opts_v2 big = { .v1.priority = 7 };
	struct mb_clerk_opts o;
	struct mb_clerk *c;
	char buf[64];

	big.v1.sz = sizeof(big);
	ok(mb_opts_copy(&o, sizeof(o), &big) == 0 && o.priority == 7 &&
	   o.sz == sizeof(o), "larger struct with zero tail accepted");
	big.future = 1;
	ok(mb_opts_copy(&o, sizeof(o), &big) == -EINVAL,
	   "unknown non-zero field: -EINVAL");
	ok(mb_clerk_new(&c, "x", (void *)&big) == -EINVAL && !c,
	   "constructors refuse it too");
	big.v1.sz = 0;
	ok(mb_opts_copy(&o, sizeof(o), &big) == -EINVAL, "sz 0: -EINVAL");
	ok(mb_path_join("/tmp/r/", "/proc/meminfo", buf, sizeof(buf)) > 0 &&
	   !strcmp(buf, "/tmp/r/proc/meminfo"), "root joined once");
	ok(mb_path_join(NULL, "proc/x", buf, sizeof(buf)) > 0 &&
	   !strcmp(buf, "/proc/x"), "NULL root is /");
	ok(mb_path_join("/r", "proc/x", buf, 8) == -ENAMETOOLONG,
	   "too long: -ENAMETOOLONG");
	ok(mb_self_rss() > 0, "own RSS is known");
}

/*
 * A field a newer header puts where these structs have padding today
 * keeps sizeof the same, so sz cannot tell; the named reserved members
 * that hold the place must be 0, or the library would ignore the field.
 */
static void test_opts_reserved(void)
{
	struct mb_monitor_opts mo = { .sz = sizeof(mo), .source = MB_SOURCE_FAKE };
	struct mb_broker_opts bo = { .sz = sizeof(bo) };
	struct mb_clerk_opts co = { .sz = sizeof(co) };
	struct mb_cache_opts ko = { .sz = sizeof(ko) };
	struct mb_monitor *mon;
	struct mb_broker *b;
	struct mb_clerk *c;
	struct mb_cache *k;

	ok(mb_monitor_new(&mon, &mo) == 0, "monitor: reserved 0 accepted");
	mb_monitor_free(mon);
	mo.reserved = 1;
	ok(mb_monitor_new(&mon, &mo) == -EINVAL && !mon,
	   "monitor: reserved set: -EINVAL");
	mo.reserved = 0;
	mo.reserved2 = 1;
	ok(mb_monitor_new(&mon, &mo) == -EINVAL && !mon,
	   "monitor: reserved2 set: -EINVAL");

	ok(mb_broker_new(&b, "b", NULL, &bo) == 0, "broker: reserved 0 accepted");
	mb_broker_free(b);
	bo.reserved[2] = 1;
	ok(mb_broker_new(&b, "b", NULL, &bo) == -EINVAL && !b,
	   "broker: reserved set: -EINVAL");
	bo.reserved[2] = 0;
	bo.reserved2 = 1;
	ok(mb_broker_new(&b, "b", NULL, &bo) == -EINVAL && !b,
	   "broker: reserved2 set: -EINVAL");

	ok(mb_clerk_new(&c, "c", &co) == 0, "clerk: reserved 0 accepted");
	mb_clerk_free(c);
	co.reserved = 1;
	ok(mb_clerk_new(&c, "c", &co) == -EINVAL && !c,
	   "clerk: reserved set: -EINVAL");

	ok(mb_cache_new(&k, "k", &ko) == 0, "cache: reserved 0 accepted");
	mb_cache_free(k);
	ko.reserved = 1;
	ok(mb_cache_new(&k, "k", &ko) == -EINVAL && !k,
	   "cache: reserved set: -EINVAL");
}

/*
 * A size that ends inside a field would have the library read half of
 * it: every size from sizeof(size_t) up to the first release's struct
 * is refused, not only 0, and nothing is created.
 */
static void test_opts_short(void)
{
	struct mb_monitor_opts mo = { .sz = sizeof(mo),
				      .source = MB_SOURCE_FAKE,
				      .low_bytes = 1ULL << 40 };
	struct mb_broker_opts bo = { .sz = sizeof(bo), .max_bytes = 1 << 20 };
	struct mb_clerk_opts co = { .sz = sizeof(co), .priority = 7 };
	struct mb_cache_opts ko = { .sz = sizeof(ko), .max_bytes = 1 << 20 };
	struct mb_monitor *mon = NULL;
	struct mb_broker *b = NULL;
	struct mb_clerk *c = NULL;
	struct mb_cache *k = NULL;
	size_t sz;
	int bad = 0;

	for (sz = 1; sz < sizeof(mo); sz++) {
		mo.sz = sz;
		if (mb_monitor_new(&mon, &mo) != -EINVAL || mon) {
			diag("monitor opts sz %zu accepted", sz);
			mb_monitor_free(mon);
			mon = NULL;
			bad++;
		}
	}
	for (sz = 1; sz < sizeof(bo); sz++) {
		bo.sz = sz;
		if (mb_broker_new(&b, "b", NULL, &bo) != -EINVAL || b) {
			diag("broker opts sz %zu accepted", sz);
			mb_broker_free(b);
			b = NULL;
			bad++;
		}
	}
	for (sz = 1; sz < sizeof(co); sz++) {
		co.sz = sz;
		if (mb_clerk_new(&c, "c", &co) != -EINVAL || c) {
			diag("clerk opts sz %zu accepted", sz);
			mb_clerk_free(c);
			c = NULL;
			bad++;
		}
	}
	for (sz = 1; sz < sizeof(ko); sz++) {
		ko.sz = sz;
		if (mb_cache_new(&k, "k", &ko) != -EINVAL || k) {
			diag("cache opts sz %zu accepted", sz);
			mb_cache_free(k);
			k = NULL;
			bad++;
		}
	}
	ok(bad == 0, "a sz short of the first release's struct: -EINVAL "
	   "(%d accepted)", bad);
	mo.sz = sizeof(mo);
	ok(mb_monitor_new(&mon, &mo) == 0, "the full size is accepted");
	mb_monitor_free(mon);
}

int main(void)
{
	plan(0);
	test_thresholds();
	test_classify();
	test_flags_and_poll();
	test_names();
	test_opts();
	test_opts_reserved();
	test_opts_short();
	return done_testing();
}
