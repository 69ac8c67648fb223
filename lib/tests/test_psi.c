// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The psi source against fake /proc trees in a temporary directory: which
 * pressure file gets the trigger and what is written to it, the
 * LOW/STEADY/HIGH classification of MemAvailable, LOW forced and held by a
 * trigger firing, and the errors that make automatic selection move on.
 * Firings and time are passed in, so nothing waits.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "membroker.h"
#include "internal.h"
#include "tap.h"

#define MIB		(1024ULL * 1024)
#define SEC		1000000000ULL
#define TRIGGER		"some 150000 1000000"

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

/* Whole content of @rel (binary safe up to @len), or -1. */
static ssize_t get(const char *rel, char *buf, size_t len)
{
	char path[PATH_MAX];
	ssize_t n;
	FILE *f;

	snprintf(path, sizeof(path), "%s%s", root, rel);
	f = fopen(path, "r");
	if (!f)
		return -1;
	n = (ssize_t)fread(buf, 1, len, f);
	fclose(f);
	return n;
}

static void meminfo(uint64_t total, uint64_t avail)
{
	put("/proc/meminfo", "MemTotal: %llu kB\nMemFree: 1 kB\n"
	    "MemAvailable: %llu kB\nCommitLimit: 1000 kB\n"
	    "Committed_AS: 950 kB\n",
	    (unsigned long long)(total / 1024),
	    (unsigned long long)(avail / 1024));
}

static void new_root(void)
{
	snprintf(root, sizeof(root), "/tmp/mb-test-psi-XXXXXX");
	if (!mkdtemp(root)) {
		perror("mkdtemp");
		exit(1);
	}
	meminfo(4096 * MIB, 2048 * MIB);
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

struct src {
	struct mb_monitor_opts opts;
	struct mb_source s;
};

static int src_open(struct src *x, uint64_t low, uint64_t high)
{
	memset(x, 0, sizeof(*x));
	x->opts = MB_OPTS(mb_monitor_opts, .root = root, .low_bytes = low,
			  .high_bytes = high);
	x->s.ops = &mb_source_psi_ops;
	x->s.fd = -1;
	x->s.opts = &x->opts;
	return x->s.ops->open(&x->s);
}

static int eval(struct src *x, bool fired, uint64_t now,
		struct mb_notification *n)
{
	int r = mb_src_psi_eval(&x->s, fired, now, n);

	if (r == 1)
		x->s.last = *n;
	return r;
}

static void test_trigger_file(void)
{
	char buf[256];
	struct src x;
	ssize_t n;

	new_root();
	ok(src_open(&x, 0, 0) == 0, "open on /proc/pressure/memory");
	n = get("/proc/pressure/memory", buf, sizeof(buf));
	/* written at offset 0 over the fake file's longer content */
	ok(n >= (ssize_t)sizeof(TRIGGER) && !memcmp(buf, TRIGGER,
						    sizeof(TRIGGER)),
	   "the trigger is written with its NUL");
	ok(x.s.fd >= 0 && x.s.events != 0, "fd is the trigger, POLLPRI");
	x.s.ops->close(&x.s);

	put("/proc/self/cgroup", "0::/app\n");
	put("/sys/fs/cgroup/app/memory.pressure", "some total=0\n");
	put("/proc/pressure/memory", "untouched");
	ok(src_open(&x, 0, 0) == 0, "open in a cgroup");
	n = get("/sys/fs/cgroup/app/memory.pressure", buf, sizeof(buf));
	ok(n == (ssize_t)sizeof(TRIGGER) && !memcmp(buf, TRIGGER, n),
	   "the cgroup's memory.pressure gets the trigger");
	n = get("/proc/pressure/memory", buf, sizeof(buf));
	ok(n == 9 && !memcmp(buf, "untouched", 9),
	   "the system-wide file is left alone");
	x.s.ops->close(&x.s);
	drop_root();
}

static void test_unavailable(void)
{
	char path[PATH_MAX];
	struct src x;
	pid_t pid;
	int st;

	new_root();
	snprintf(path, sizeof(path), "%s/proc/pressure/memory", root);
	unlink(path);
	ok(src_open(&x, 0, 0) == -ENOENT, "no PSI: -ENOENT");

	/* A file that refuses every write stands in for a refused trigger */
	if (symlink("/dev/full", path) == 0)
		ok(src_open(&x, 0, 0) == -EOPNOTSUPP,
		   "trigger write refused: -EOPNOTSUPP");
	else
		ok(0, "symlink to /dev/full: %s", strerror(errno));
	unlink(path);

	/* Opening for write without permission, as an unprivileged user */
	put("/proc/pressure/memory", "some total=0\n");
	chmod(path, 0444);
	pid = fork();
	if (pid == 0) {
		if (geteuid() == 0 && setuid(65534) != 0)
			_exit(2);
		_exit(src_open(&x, 0, 0) == -EACCES ? 0 : 1);
	}
	ok(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
	   WEXITSTATUS(st) == 0, "no permission: -EACCES");
	drop_root();
}

static void test_classify(void)
{
	struct mb_notification n;
	struct src x;

	new_root();
	ok(src_open(&x, 512 * MIB, 1024 * MIB) == 0, "open with thresholds");
	ok(eval(&x, false, 1 * SEC, &n) == 1 && n.state == MB_STATE_HIGH &&
	   n.source == MB_SOURCE_PSI && n.low == 512 * MIB &&
	   n.high == 1024 * MIB, "2 GiB available: HIGH, opts thresholds");
	ok(n.total == 4096 * MIB && n.available == 2048 * MIB,
	   "total and available from meminfo");
	ok(n.flags == 0,
	   "Committed_AS at 95%% of CommitLimit, not enforced: no flag");
	put("/proc/sys/vm/overcommit_memory", "2\n");
	ok(eval(&x, false, 2 * SEC, &n) == 1 &&
	   n.flags == MB_FLAG_VIRTUAL_LOW,
	   "the same in overcommit mode 2: VIRTUAL_LOW");
	ok(eval(&x, false, 2 * SEC, &n) == 0, "nothing changed: 0");
	put("/proc/sys/vm/overcommit_memory", "0\n");
	ok(eval(&x, false, 2 * SEC, &n) == 1 && n.flags == 0,
	   "back to mode 0: the flag clears");
	meminfo(4096 * MIB, 800 * MIB);
	ok(eval(&x, false, 3 * SEC, &n) == 1 && n.state == MB_STATE_STEADY,
	   "800 MiB: STEADY");
	meminfo(4096 * MIB, 300 * MIB);
	ok(eval(&x, false, 4 * SEC, &n) == 1 && n.state == MB_STATE_LOW,
	   "300 MiB: LOW");
	meminfo(4096 * MIB, 520 * MIB);
	ok(eval(&x, false, 5 * SEC, &n) == 0 && n.state == MB_STATE_LOW,
	   "520 MiB: still LOW inside the hysteresis");
	meminfo(4096 * MIB, 700 * MIB);
	ok(eval(&x, false, 6 * SEC, &n) == 1 && n.state == MB_STATE_STEADY,
	   "700 MiB: STEADY again");
	x.s.ops->close(&x.s);

	ok(src_open(&x, 0, 0) == 0, "open with automatic thresholds");
	{
		uint64_t lo, hi;

		mb_auto_thresholds(4096 * MIB, &lo, &hi);
		ok(eval(&x, false, SEC, &n) == 1 && n.low == lo &&
		   n.high == hi, "automatic thresholds from MemTotal");
	}
	x.s.ops->close(&x.s);
	drop_root();
}

static void test_fired(void)
{
	struct mb_notification n;
	struct src x;

	new_root();
	ok(src_open(&x, 512 * MIB, 1024 * MIB) == 0, "open");
	ok(eval(&x, false, 10 * SEC, &n) == 1 && n.state == MB_STATE_HIGH,
	   "HIGH before the stall");
	ok(eval(&x, true, 11 * SEC, &n) == 1 && n.state == MB_STATE_LOW,
	   "the trigger fires: LOW with 2 GiB available");
	ok(x.s.ops->timeout_ms(&x.s) <= 1000,
	   "timeout no longer than the trigger window");
	ok(eval(&x, false, 11 * SEC + SEC / 2, &n) == 0 &&
	   n.state == MB_STATE_LOW, "held for the trigger window");
	ok(eval(&x, true, 11 * SEC + 9 * SEC / 10, &n) == 0 &&
	   n.state == MB_STATE_LOW, "firing again extends the hold");
	ok(eval(&x, false, 12 * SEC + SEC / 2, &n) == 0 &&
	   n.state == MB_STATE_LOW, "still held a window after the last");
	ok(eval(&x, false, 13 * SEC, &n) == 1 && n.state == MB_STATE_HIGH,
	   "a quiet window with memory back: LOW ends");

	meminfo(4096 * MIB, 530 * MIB);
	ok(eval(&x, true, 20 * SEC, &n) == 1 && n.state == MB_STATE_LOW,
	   "fires with little headroom: LOW");
	ok(eval(&x, false, 25 * SEC, &n) == 0 && n.state == MB_STATE_LOW,
	   "quiet, but below low + hysteresis: LOW stays");
	x.s.ops->close(&x.s);
	drop_root();
}

/*
 * The firing the monitor's epoll reported reaches dispatch in s->revents:
 * the poll that saw it consumed it, so the trigger fd shows nothing now
 * (a regular file never shows POLLPRI, which stands in for that).
 */
static void test_revents(void)
{
	struct mb_notification n;
	struct src x;

	new_root();
	ok(src_open(&x, 512 * MIB, 1024 * MIB) == 0, "open");
	n = x.s.last;
	ok(x.s.ops->dispatch(&x.s, &n) == 1 && n.state == MB_STATE_HIGH,
	   "dispatch without events: HIGH");
	x.s.last = n;
	x.s.revents = POLLPRI;
	ok(x.s.ops->dispatch(&x.s, &n) == 1 && n.state == MB_STATE_LOW,
	   "POLLPRI in s->revents: the firing counts, LOW");
	x.s.last = n;
	x.s.revents = 0;
	ok(x.s.ops->dispatch(&x.s, &n) == 0 && n.state == MB_STATE_LOW,
	   "held for the window afterwards");
	x.s.revents = POLLERR;
	ok(x.s.ops->dispatch(&x.s, &n) == -ENODEV,
	   "POLLERR (the cgroup went away): -ENODEV");
	x.s.ops->close(&x.s);
	drop_root();
}

static void stall(uint64_t some_us)
{
	put("/proc/pressure/memory",
	    "some avg10=1.00 avg60=0.50 avg300=0.10 total=%llu\n"
	    "full avg10=0.00 avg60=0.00 avg300=0.00 total=99999999\n",
	    (unsigned long long)some_us);
}

/* The firing the monitor's epoll consumed, seen in the stall total */
static void test_stall_total(void)
{
	struct mb_notification n;
	struct src x;
	uint64_t us;

	ok(mb_psi_parse_some_total("some avg10=0.00 avg60=0.00 avg300=0.00 "
				   "total=1234\nfull avg10=0.00 total=9\n",
				   &us) == 0 && us == 1234,
	   "the some line's total is parsed");
	ok(mb_psi_parse_some_total("full avg10=0.00 total=9\n", &us) ==
	   -EINVAL, "no some line: -EINVAL");
	ok(mb_psi_parse_some_total("some 150000 1000000", &us) == -EINVAL,
	   "a trigger string is not stats: -EINVAL");

	new_root();
	ok(src_open(&x, 512 * MIB, 1024 * MIB) == 0, "open");
	stall(5000000);
	ok(eval(&x, false, 10 * SEC, &n) == 1 && n.state == MB_STATE_HIGH,
	   "a baseline, however large, is not a firing");
	stall(5000000 + 100000);
	ok(eval(&x, false, 10 * SEC + SEC / 2, &n) == 0 &&
	   n.state == MB_STATE_HIGH, "100 ms of stall in 0.5 s: not yet");
	stall(5000000 + 200000);
	ok(eval(&x, false, 10 * SEC + 8 * SEC / 10, &n) == 1 &&
	   n.state == MB_STATE_LOW,
	   "200 ms of stall within a window: LOW without POLLPRI");
	stall(5000000 + 300000);
	ok(eval(&x, false, 13 * SEC, &n) == 1 && n.state == MB_STATE_HIGH,
	   "100 ms over 2.2 s: below the trigger's rate, LOW ends");
	stall(5000000 + 300000 + 400000);
	ok(eval(&x, false, 15 * SEC, &n) == 1 && n.state == MB_STATE_LOW,
	   "400 ms over 2 s: 200 ms per second, LOW");
	x.s.ops->close(&x.s);
	drop_root();
}

int main(void)
{
	plan(0);
	test_trigger_file();
	test_stall_total();
	test_unavailable();
	test_classify();
	test_fired();
	test_revents();
	return done_testing();
}
