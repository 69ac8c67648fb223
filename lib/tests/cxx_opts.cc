// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The library from C++: every options struct filled with MB_OPTS(), as
 * in C, with no warning at -Wall -Wextra -Wpedantic -Werror from C++11
 * on (tests/cxx.sh builds it with each standard), and the values it set
 * are the ones the library acts on.  Prints TAP.
 */
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "membroker.h"

static int n_run, n_failed;

static void ok(bool cond, const char *what)
{
	n_run++;
	if (!cond)
		n_failed++;
	std::printf("%sok %d - %s\n", cond ? "" : "not ", n_run, what);
}

static int64_t shrink(struct mb_clerk *c, uint64_t bytes, void *arg)
{
	*static_cast<int *>(arg) += 1;
	mb_clerk_uncharge(c, bytes);
	return static_cast<int64_t>(bytes);
}

int main()
{
	const char *root = "/";
	int calls = 0;
	struct mb_monitor_opts mo = MB_OPTS(mb_monitor_opts,
		.source = MB_SOURCE_FAKE, .ring_capacity = 8,
		.low_bytes = 1 << 20, .high_bytes = 4 << 20, .root = root,
		.low_repeat_ms = UINT32_MAX);
	struct mb_broker_opts bo = MB_OPTS(mb_broker_opts,
		.max_bytes = 1 << 20, .shrink_step_percent = 50);
	struct mb_clerk_opts co = MB_OPTS(mb_clerk_opts, .shrink = shrink,
		.arg = &calls, .priority = 20);
	struct mb_cache_opts ko = MB_OPTS(mb_cache_opts, .max_bytes = 4096,
		.priority = 90);
	struct mb_notification low;
	struct mb_monitor *mon;
	struct mb_broker *b;
	struct mb_clerk *c;
	struct mb_cache *k;

	std::printf("TAP version 13\n");
#if __cplusplus >= 202002L
	{
		/* no field at all: C++20 allows an empty __VA_ARGS__ */
		struct mb_cache_opts none = MB_OPTS(mb_cache_opts);

		ok(none.sz == sizeof(none) && none.max_bytes == 0,
		   "MB_OPTS(mb_cache_opts) without a field (C++20)");
	}
#endif
	ok(mo.sz == sizeof(mo) && mo.source == MB_SOURCE_FAKE &&
	   mo.extra_sources == 0 && mo.ring_capacity == 8 &&
	   mo.low_bytes == 1 << 20 && mo.root == root && mo.reserved == 0,
	   "MB_OPTS(mb_monitor_opts, ...): sz, the fields given, zeros");
	ok(bo.sz == sizeof(bo) && bo.max_bytes == 1 << 20 &&
	   bo.min_bytes == 0 && bo.shrink_step_percent == 50 && !bo.trim,
	   "MB_OPTS(mb_broker_opts, ...)");
	ok(co.sz == sizeof(co) && co.shrink == shrink && co.arg == &calls &&
	   co.priority == 20, "MB_OPTS(mb_clerk_opts, ...)");
	ok(ko.sz == sizeof(ko) && ko.max_bytes == 4096 && ko.priority == 90,
	   "MB_OPTS(mb_cache_opts, ...)");

	ok(mb_monitor_new(&mon, &mo) == 0 &&
	   mb_monitor_source(mon) == MB_SOURCE_FAKE, "monitor from them");
	ok(mb_broker_new(&b, "cxx", mon, &bo) == 0, "broker");
	ok(mb_clerk_new(&c, "cxx-clerk", &co) == 0 &&
	   mb_clerk_charge(c, 1000) == 0 && mb_broker_add_clerk(b, c) == 0,
	   "clerk in it");
	ok(mb_cache_new(&k, "cxx-cache", &ko) == 0 &&
	   mb_cache_put(k, "k", 1, NULL, 5000) == -EINVAL &&
	   mb_cache_put(k, "big", 3, std::string(5000, 'x').c_str(), 5000) ==
	   -E2BIG, "cache bounded by the max_bytes given");
	std::memset(&low, 0, sizeof(low));
	low.state = MB_STATE_LOW;
	ok(mb_monitor_fake_push(mon, &low) == 0 &&
	   mb_monitor_dispatch(mon) == 1 && calls == 1 &&
	   mb_clerk_bytes(c) == 500,
	   "LOW: the broker's 50 % step, the clerk's callback and arg");
	mb_cache_free(k);
	mb_clerk_free(c);
	mb_broker_free(b);
	mb_monitor_free(mon);
	std::printf("1..%d\n", n_run);
	return n_failed ? 1 : 0;
}
