// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The cgroup source against fake cgroup v2 trees in a temporary directory:
 * limit discovery (memory.max, memory.high, "max", ancestors), the
 * LOW/STEADY/HIGH classification of the headroom below the limit, LOW on
 * a memory.events change and the errors that make automatic selection
 * move on.  Time is passed in, so nothing waits.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "membroker.h"
#include "internal.h"
#include "tap.h"

#define MIB		(1024ULL * 1024)
#define SEC		1000000000ULL
#define CG		"/sys/fs/cgroup"

static char root[256];

static void put(const char *rel, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void put(const char *rel, const char *fmt, ...)
{
	char path[PATH_MAX], dir[PATH_MAX], *slash;
	va_list ap;
	FILE *f;

	snprintf(path, sizeof(path), "%s%s", root, rel);
	snprintf(dir, sizeof(dir), "%s", path);
	for (slash = strchr(dir + strlen(root) + 1, '/'); slash;
	     slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		mkdir(dir, 0755);
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

static void new_root(void)
{
	snprintf(root, sizeof(root), "/tmp/mb-test-cgroup-XXXXXX");
	if (!mkdtemp(root)) {
		perror("mkdtemp");
		exit(1);
	}
	put("/proc/meminfo", "MemTotal: 4194304 kB\nMemAvailable: 2097152 kB\n"
	    "CommitLimit: 2097152 kB\nCommitted_AS: 1048576 kB\n");
	put("/proc/self/mountinfo",
	    "30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
}

static void drop_root(void)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", root);
}

/* A cgroup /app limited to @max (0: "max") and @high (0: "max"). */
static void app(const char *dir, uint64_t max, uint64_t high,
		uint64_t current, uint64_t inactive_file)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), CG "%s/memory.max", dir);
	if (max)
		put(p, "%llu\n", (unsigned long long)max);
	else
		put(p, "max\n");
	snprintf(p, sizeof(p), CG "%s/memory.high", dir);
	if (high)
		put(p, "%llu\n", (unsigned long long)high);
	else
		put(p, "max\n");
	snprintf(p, sizeof(p), CG "%s/memory.current", dir);
	put(p, "%llu\n", (unsigned long long)current);
	snprintf(p, sizeof(p), CG "%s/memory.stat", dir);
	put(p, "anon 1000\nfile 2000\ninactive_anon 0\ninactive_file %llu\n",
	    (unsigned long long)inactive_file);
	snprintf(p, sizeof(p), CG "%s/memory.events", dir);
	put(p, "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n");
}

struct src {
	struct mb_monitor_opts opts;
	struct mb_source s;
};

static int src_open(struct src *x)
{
	memset(x, 0, sizeof(*x));
	x->opts = MB_OPTS(mb_monitor_opts, .root = root);
	x->s.ops = &mb_source_cgroup_ops;
	x->s.fd = -1;
	x->s.opts = &x->opts;
	return x->s.ops->open(&x->s);
}

/* Evaluate at @now and record the result as the monitor would. */
static int eval(struct src *x, uint64_t now, struct mb_notification *n)
{
	int r = mb_src_cgroup_eval(&x->s, now, n);

	if (r == 1)
		x->s.last = *n;
	return r;
}

static void test_parse(void)
{
	uint64_t v;

	ok(mb_cgroup_parse_limit("max\n", &v) == 0 && v == UINT64_MAX,
	   "\"max\" parses as unlimited");
	ok(mb_cgroup_parse_limit("536870912\n", &v) == 0 &&
	   v == 536870912ULL, "a byte count parses");
	ok(mb_cgroup_parse_limit("12k\n", &v) == -EINVAL,
	   "trailing junk is -EINVAL");
	ok(mb_cgroup_parse_limit("", &v) == -EINVAL, "empty is -EINVAL");
	ok(mb_cgroup_parse_limit("-1\n", &v) == -EINVAL,
	   "negative is -EINVAL");
	ok(mb_cgroup_parse_events("low 9\nhigh 2\nmax 3\noom 1\n"
				  "oom_kill 1\noom_group_kill 0\n", &v) == 0 &&
	   v == 7, "memory.events sums high+max+oom+oom_kill, not low");
	ok(mb_cgroup_parse_events("nothing 1\n", &v) == -EINVAL,
	   "memory.events without the counters is -EINVAL");
}

static void test_self_dir(void)
{
	char buf[PATH_MAX];

	new_root();
	put("/proc/self/cgroup", "12:memory:/v1/path\n0::/user.slice/app\n");
	ok(mb_cgroup_self_dir(root, buf, sizeof(buf)) == 0 &&
	   !strcmp(buf, CG "/user.slice/app"),
	   "the 0:: line names the cgroup below the cgroup2 mount");
	put("/proc/self/mountinfo",
	    "30 1 0:26 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n");
	ok(mb_cgroup_self_dir(root, buf, sizeof(buf)) == 0 &&
	   !strcmp(buf, CG "/unified/user.slice/app"),
	   "a hybrid hierarchy's cgroup2 mount point is honoured");
	put("/proc/self/cgroup", "0::/\n");
	ok(mb_cgroup_self_dir(root, buf, sizeof(buf)) == 0 &&
	   !strcmp(buf, CG "/unified"), "the root cgroup is the mount");
	put("/proc/self/cgroup", "4:memory:/x\n");
	ok(mb_cgroup_self_dir(root, buf, sizeof(buf)) == -ENOENT,
	   "cgroup v1 only: -ENOENT");
	drop_root();
}

static void test_unavailable(void)
{
	char path[PATH_MAX];
	struct src x;

	new_root();
	put("/proc/self/cgroup", "0::/app\n");
	app("/app", 0, 0, 100 * MIB, 0);
	ok(src_open(&x) == -ENOENT, "memory.max and memory.high \"max\": "
	   "-ENOENT");

	put("/proc/self/cgroup", "0::/\n");
	ok(src_open(&x) == -ENOENT, "root cgroup (no limit files): -ENOENT");

	put("/proc/self/cgroup", "3:cpu:/\n");
	ok(src_open(&x) == -ENOENT, "no cgroup v2: -ENOENT");

	put("/proc/self/cgroup", "0::/app\n");
	app("/app", 1024 * MIB, 0, 100 * MIB, 0);
	snprintf(path, sizeof(path), "%s" CG "/app/memory.events", root);
	unlink(path);
	ok(src_open(&x) == -ENOENT, "no memory.events: -ENOENT");

	put(CG "/app/memory.max", "lots\n");
	ok(src_open(&x) == -EINVAL, "garbage in memory.max: -EINVAL");
	drop_root();
}

static void test_limits(void)
{
	struct mb_notification n;
	struct src x;

	new_root();
	put("/proc/self/cgroup", "0::/app\n");
	app("/app", 1024 * MIB, 512 * MIB, 100 * MIB, 0);
	ok(src_open(&x) == 0, "open with memory.max and memory.high");
	ok(eval(&x, SEC, &n) == 1 && n.total == 512 * MIB,
	   "the lower of memory.max and memory.high is the limit");
	ok(n.available == 412 * MIB, "available = limit - current");
	x.s.ops->close(&x.s);

	app("/app", 1024 * MIB, 0, 100 * MIB, 0);
	ok(src_open(&x) == 0 && eval(&x, SEC, &n) == 1 &&
	   n.total == 1024 * MIB, "memory.high \"max\": memory.max counts");
	x.s.ops->close(&x.s);

	/* A child without a limit inside a limited parent */
	put("/proc/self/cgroup", "0::/app/worker\n");
	app("/app/worker", 0, 0, 10 * MIB, 0);
	app("/app", 256 * MIB, 0, 200 * MIB, 0);
	ok(src_open(&x) == 0 && eval(&x, SEC, &n) == 1 &&
	   n.total == 256 * MIB && n.available == 56 * MIB,
	   "an ancestor's limit applies, measured at the ancestor");
	x.s.ops->close(&x.s);
	drop_root();
}

static void test_classify(void)
{
	struct mb_notification n;
	uint64_t low, high;
	struct src x;

	new_root();
	put("/proc/self/cgroup", "0::/app\n");
	app("/app", 1024 * MIB, 0, 100 * MIB, 0);
	mb_auto_thresholds(1024 * MIB, &low, &high);
	ok(src_open(&x) == 0, "open");
	ok(x.s.fd >= 0 && x.s.events != 0, "fd is memory.events, POLLPRI");

	ok(eval(&x, 1 * SEC, &n) == 1 && n.state == MB_STATE_HIGH &&
	   n.source == MB_SOURCE_CGROUP,
	   "924 MiB free under 1 GiB: HIGH");
	ok(n.low == low && n.high == high,
	   "thresholds come from the limit");
	ok(n.committed == 1048576ULL * 1024 && n.flags == 0,
	   "Committed_AS comes from the system");
	ok(eval(&x, 2 * SEC, &n) == 0, "nothing changed: 0");

	app("/app", 1024 * MIB, 0, 800 * MIB, 0);
	ok(eval(&x, 3 * SEC, &n) == 1 && n.state == MB_STATE_STEADY,
	   "224 MiB free: STEADY");
	app("/app", 1024 * MIB, 0, 950 * MIB, 0);
	ok(eval(&x, 4 * SEC, &n) == 1 && n.state == MB_STATE_LOW,
	   "74 MiB free: LOW");
	app("/app", 1024 * MIB, 0, 950 * MIB, 200 * MIB);
	ok(eval(&x, 5 * SEC, &n) == 1 && n.state == MB_STATE_STEADY &&
	   n.available == 274 * MIB,
	   "inactive file cache counts as available");
	app("/app", 1100 * MIB, 0, 0, 2000 * MIB);
	ok(eval(&x, 6 * SEC, &n) == 1 && n.available == 1100 * MIB,
	   "available never exceeds the limit");
	x.s.ops->close(&x.s);
	drop_root();
}

static void test_events(void)
{
	struct mb_notification n;
	struct src x;

	new_root();
	put("/proc/self/cgroup", "0::/app\n");
	app("/app", 1024 * MIB, 0, 100 * MIB, 0);
	put(CG "/app/memory.events", "low 0\nhigh 5\nmax 0\noom 0\n"
	    "oom_kill 0\n");
	ok(src_open(&x) == 0, "open");
	ok(eval(&x, 10 * SEC, &n) == 1 && n.state == MB_STATE_HIGH,
	   "events from before open do not make it LOW");

	put(CG "/app/memory.events", "low 0\nhigh 6\nmax 0\noom 0\n"
	    "oom_kill 0\n");
	ok(eval(&x, 11 * SEC, &n) == 1 && n.state == MB_STATE_LOW,
	   "a new memory.high event: LOW at once, with room to spare");
	ok(eval(&x, 11 * SEC + SEC / 2, &n) == 0 && n.state == MB_STATE_LOW,
	   "LOW held within the window");
	ok(x.s.ops->timeout_ms(&x.s) <= 1000,
	   "timeout no longer than the rest of the window");
	ok(eval(&x, 12 * SEC + 1, &n) == 1 && n.state == MB_STATE_HIGH,
	   "a quiet window with room: LOW ends");

	put(CG "/app/memory.events", "low 0\nhigh 6\nmax 0\noom 1\n"
	    "oom_kill 1\n");
	ok(eval(&x, 13 * SEC, &n) == 1 && n.state == MB_STATE_LOW,
	   "an OOM event: LOW");
	app("/app", 1024 * MIB, 0, 950 * MIB, 0);
	ok(eval(&x, 15 * SEC, &n) == 0 && n.state == MB_STATE_LOW,
	   "after the window LOW stays while available is short");
	x.s.ops->close(&x.s);
	drop_root();
}

int main(void)
{
	plan(0);
	test_parse();
	test_self_dir();
	test_unavailable();
	test_limits();
	test_classify();
	test_events();
	return done_testing();
}
