// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * A cache that starts on a quiet machine: the first notification every
 * source delivers is STEADY, and the cache, empty, must still be able to
 * fill, up to the broker's growth allowance (a quarter of the headroom
 * above the low threshold), no further.  Once per source the host can
 * fake (fake, meminfo, psi, cgroup; the module's is a VM test,
 * selftests/lib/sources.c).  And a cache joining a broker that already
 * decided: in STEADY it gets its share of the allowance, in a capped pool
 * after HIGH a share of the room, in LOW what it holds.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "membroker.h"
#include "tap.h"

#define MIB	(1024ULL * 1024)
#define VAL	4096

static char root[PATH_MAX];

static void put(const char *rel, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void put(const char *rel, const char *fmt, ...)
{
	char path[PATH_MAX], *slash;
	va_list ap;
	FILE *f;

	snprintf(path, sizeof(path), "%s%s", root, rel);
	for (slash = path + strlen(root) + 1; (slash = strchr(slash, '/'));
	     slash++) {
		*slash = '\0';
		mkdir(path, 0755);
		*slash = '/';
	}
	f = fopen(path, "w");
	if (!f) {
		perror(path);
		exit(1);
	}
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fclose(f);
}

static void new_root(uint64_t total, uint64_t avail)
{
	snprintf(root, sizeof(root), "/tmp/mb-test-startup-XXXXXX");
	if (!mkdtemp(root)) {
		perror("mkdtemp");
		exit(1);
	}
	put("/proc/meminfo", "MemTotal: %llu kB\nMemFree: 1 kB\n"
	    "MemAvailable: %llu kB\nCommitLimit: 4194304 kB\n"
	    "Committed_AS: 1024 kB\n", (unsigned long long)(total / 1024),
	    (unsigned long long)(avail / 1024));
	put("/proc/self/cgroup", "0::/\n");
	put("/proc/self/mountinfo",
	    "30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
	put("/proc/pressure/memory",
	    "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
}

static void drop_root(void)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", root);
}

/* Put VAL-byte values until one evicts; -errno if a put fails. */
static int fill(struct mb_cache *c, int *n)
{
	static char val[VAL];
	struct mb_cache_stats st;
	char key[32];
	int err;

	for (*n = 0; *n < 100000; ++*n) {
		snprintf(key, sizeof(key), "k%d", *n);
		err = mb_cache_put(c, key, strlen(key), val, sizeof(val));
		if (err)
			return err;
		mb_cache_stats(c, &st);
		if (st.evictions)
			return 0;
	}
	return 0;
}

/*
 * A monitor on @opts, a broker and an empty cache, as an application
 * starts them; the first dispatch delivers the source's first reading.
 */
static void startup(const char *what, struct mb_monitor_opts *opts)
{
	struct mb_notification n;
	struct mb_cache_stats st;
	struct mb_monitor *mon;
	struct mb_broker *b;
	struct mb_cache *c;
	uint64_t allowance;
	int err, puts;

	err = mb_monitor_new(&mon, opts);
	if (!ok(err == 0, "%s: monitor (%d)", what, err))
		return;
	mb_broker_new(&b, "startup", mon, NULL);
	mb_cache_new(&c, "startup-cache", NULL);
	mb_broker_add_clerk(b, mb_cache_clerk(c));
	err = mb_monitor_dispatch(mon);
	mb_monitor_get_state(mon, &n);
	ok(err == 1 && n.state == MB_STATE_STEADY &&
	   n.available > n.low, "%s: the first reading is STEADY "
	   "(available %llu MiB, low %llu MiB)", what,
	   (unsigned long long)(n.available / MIB),
	   (unsigned long long)(n.low / MIB));
	allowance = (n.available - n.low) / 4;
	ok(mb_clerk_target(mb_cache_clerk(c)) == allowance,
	   "%s: the empty cache may grow by a quarter of the headroom "
	   "(target %llu, allowance %llu)", what,
	   (unsigned long long)mb_clerk_target(mb_cache_clerk(c)),
	   (unsigned long long)allowance);
	err = fill(c, &puts);
	mb_cache_stats(c, &st);
	ok(err == 0 && puts > 1 && st.entries > 1,
	   "%s: the cache fills (%d puts, first error %d)", what, puts, err);
	ok(st.bytes <= allowance && st.bytes + VAL + 256 > allowance,
	   "%s: up to the allowance and no further (%llu of %llu)", what,
	   (unsigned long long)st.bytes, (unsigned long long)allowance);
	mb_broker_free(b);
	mb_cache_free(c);
	mb_monitor_free(mon);
}

static void test_fake(void)
{
	struct mb_monitor_opts o = MB_OPTS(mb_monitor_opts,
					   .source = MB_SOURCE_FAKE);
	struct mb_notification n;
	struct mb_cache_stats st;
	struct mb_monitor *mon;
	struct mb_broker *b;
	struct mb_cache *c;
	int err, puts;

	if (!ok(mb_monitor_new(&mon, &o) == 0, "fake: monitor"))
		return;
	mb_broker_new(&b, "startup", mon, NULL);
	mb_cache_new(&c, "startup-cache", NULL);
	mb_broker_add_clerk(b, mb_cache_clerk(c));
	/* the fake source has no reading of its own: the test's first */
	memset(&n, 0, sizeof(n));
	n.state = MB_STATE_STEADY;
	n.available = 104 * MIB;
	n.total = 1024 * MIB;
	n.low = 100 * MIB;
	n.high = 300 * MIB;
	mb_monitor_fake_push(mon, &n);
	ok(mb_monitor_dispatch(mon) == 1, "fake: STEADY delivered");
	ok(mb_clerk_target(mb_cache_clerk(c)) == MIB,
	   "fake: the empty cache may grow by a quarter of the headroom "
	   "(%llu)", (unsigned long long)mb_clerk_target(mb_cache_clerk(c)));
	err = fill(c, &puts);
	mb_cache_stats(c, &st);
	ok(err == 0 && st.entries > 1 && st.bytes <= MIB &&
	   st.bytes + VAL + 256 > MIB,
	   "fake: it fills to the allowance (%llu bytes, first error %d)",
	   (unsigned long long)st.bytes, err);
	mb_broker_free(b);
	mb_cache_free(c);
	mb_monitor_free(mon);
}

static void test_sources(void)
{
	struct mb_monitor_opts o;

	/* meminfo and psi: thresholds from the options, 4 MiB headroom */
	new_root(1024 * MIB, 104 * MIB);
	o = MB_OPTS(mb_monitor_opts, .source = MB_SOURCE_MEMINFO, .root = root,
		    .low_bytes = 100 * MIB, .high_bytes = 300 * MIB);
	startup("meminfo", &o);
	o.source = MB_SOURCE_PSI;
	startup("psi", &o);
	drop_root();

	/*
	 * cgroup: a 1 GiB limit (automatic thresholds 128 and 384 MiB) with
	 * 132 MiB left below it
	 */
	new_root(4096 * MIB, 2048 * MIB);
	put("/proc/self/cgroup", "0::/app\n");
	put("/sys/fs/cgroup/app/memory.max", "%llu\n", 1024 * MIB);
	put("/sys/fs/cgroup/app/memory.high", "max\n");
	put("/sys/fs/cgroup/app/memory.current", "%llu\n", 892 * MIB);
	put("/sys/fs/cgroup/app/memory.stat", "anon 1000\ninactive_file 0\n");
	put("/sys/fs/cgroup/app/memory.events",
	    "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n");
	o = MB_OPTS(mb_monitor_opts, .source = MB_SOURCE_CGROUP, .root = root);
	startup("cgroup", &o);
	drop_root();
}

static struct mb_notification note(uint32_t state, uint64_t t)
{
	struct mb_notification n;

	memset(&n, 0, sizeof(n));
	n.state = state;
	n.time_ns = t;
	n.available = 104 * MIB;
	n.low = 100 * MIB;
	n.high = 300 * MIB;
	return n;
}

/* Joining a broker that has decided already */
static void test_join_later(void)
{
	struct mb_broker_opts bo = MB_OPTS(mb_broker_opts, .max_bytes = MIB);
	struct mb_notification n;
	struct mb_clerk *x, *y;
	struct mb_broker *b;

	mb_broker_new(&b, "later", NULL, NULL);
	mb_clerk_new(&x, "later-x", NULL);
	mb_clerk_new(&y, "later-y", NULL);
	mb_broker_add_clerk(b, x);
	n = note(MB_STATE_STEADY, 1);
	mb_broker_notify(b, &n);
	mb_clerk_charge(y, 1000);
	mb_broker_add_clerk(b, y);
	ok(mb_clerk_target(y) == 1000 + MIB / 2,
	   "STEADY: a clerk joining gets what it holds and a share of the "
	   "allowance, not an unlimited target (%llu)",
	   (unsigned long long)mb_clerk_target(y));
	mb_broker_remove_clerk(b, y);
	n = note(MB_STATE_LOW, 2);
	mb_broker_notify(b, &n);
	mb_broker_add_clerk(b, y);
	ok(mb_clerk_target(y) == 1000, "LOW: it holds what it has");
	mb_clerk_free(x);
	mb_clerk_free(y);
	mb_broker_free(b);

	/* a capped pool whose room HIGH handed out */
	mb_broker_new(&b, "later-capped", NULL, &bo);
	mb_clerk_new(&x, "capped-x", NULL);
	mb_clerk_new(&y, "capped-y", NULL);
	mb_broker_add_clerk(b, x);
	n = note(MB_STATE_HIGH, 1);
	mb_broker_notify(b, &n);
	mb_broker_add_clerk(b, y);
	ok(mb_clerk_target(y) == MIB / 2 &&
	   mb_clerk_target(x) + mb_clerk_target(y) == MIB,
	   "after HIGH a clerk joining a capped pool gets half the room it "
	   "shares, not 0 (%llu)", (unsigned long long)mb_clerk_target(y));
	mb_clerk_free(x);
	mb_clerk_free(y);
	mb_broker_free(b);
}

int main(void)
{
	plan(0);
	test_fake();
	test_sources();
	test_join_later();
	return done_testing();
}
