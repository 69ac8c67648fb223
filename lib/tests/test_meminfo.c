// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * /proc/meminfo parsing and the "meminfo" source, against a fake root
 * directory: fields in bytes, missing and malformed files, thresholds
 * (automatic and from the options), classification with hysteresis, the
 * VIRTUAL_LOW flag, "nothing new" when only MemAvailable moved, the
 * adaptive timeout, and automatic selection falling back to meminfo.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "membroker.h"
#include "internal.h"
#include "tap.h"

#define MIB	(1024ULL * 1024)

static char root[] = "/tmp/mb-test-meminfo-XXXXXX";
static char file[128];
static char overcommit[160];

/* vm.overcommit_memory as the sysctl file shows it; -1: no such file */
static void put_overcommit(int mode)
{
	FILE *f;

	if (mode < 0) {
		unlink(overcommit);
		return;
	}
	f = fopen(overcommit, "w");
	fprintf(f, "%d\n", mode);
	fclose(f);
}

static void put(const char *text)
{
	FILE *f = fopen(file, "w");

	fputs(text, f);
	fclose(f);
}

static void put_mem(uint64_t total_mib, uint64_t avail_mib,
		    uint64_t committed_mib, uint64_t limit_mib)
{
	char buf[512];

	snprintf(buf, sizeof(buf),
		 "MemTotal:       %llu kB\nMemFree:          1 kB\n"
		 "MemAvailable:   %llu kB\nBuffers:          2 kB\n"
		 "CommitLimit:    %llu kB\nCommitted_AS:   %llu kB\n",
		 (unsigned long long)total_mib * 1024,
		 (unsigned long long)avail_mib * 1024,
		 (unsigned long long)limit_mib * 1024,
		 (unsigned long long)committed_mib * 1024);
	put(buf);
}

static void test_parse(void)
{
	struct mb_meminfo mi;

	put_mem(4096, 1000, 300, 2000);
	ok(mb_meminfo_read(root, &mi) == 0 && mi.total == 4096 * MIB &&
	   mi.available == 1000 * MIB && mi.committed == 300 * MIB &&
	   mi.commit_limit == 2000 * MIB, "fields in bytes");
	put("MemTotal: 100 kB\n");
	ok(mb_meminfo_read(root, &mi) == -ENODATA, "no MemAvailable");
	put("MemTotal: 100 kB\nMemAvailable: x kB\n");
	ok(mb_meminfo_read(root, &mi) == -EINVAL, "malformed number");
	put("MemTotal: 100 MB\nMemAvailable: 5 kB\n");
	ok(mb_meminfo_read(root, &mi) == -EINVAL, "unexpected unit");
	put("MemTotal: 100 kB\nMemAvailable: 50 kB\n");
	ok(mb_meminfo_read(root, &mi) == 0 && mi.committed == 0 &&
	   mi.commit_limit == 0, "commit fields optional");
	ok(mb_meminfo_read("/nonexistent", &mi) == -ENOENT, "missing file");
}

/*
 * The kernel enforces CommitLimit only in overcommit mode 2; in modes 0
 * and 1 Committed_AS above it is normal, and VIRTUAL_LOW would be noise
 * (the module's rule, include/uapi/linux/membroker.h).
 */
static void test_overcommit_modes(void)
{
	struct mb_notification n;
	struct mb_meminfo mi;

	put_mem(4096, 2048, 7500, 8000);	/* committed at 94% */
	put_overcommit(2);
	ok(mb_meminfo_read(root, &mi) == 0, "read in mode 2");
	mb_notification_from_meminfo(&n, MB_SOURCE_MEMINFO, &mi, 256 * MIB,
				     768 * MIB, MB_STATE_UNKNOWN, 1);
	ok(n.flags == MB_FLAG_VIRTUAL_LOW, "mode 2, 94%%: VIRTUAL_LOW");
	put_overcommit(0);
	ok(mb_meminfo_read(root, &mi) == 0, "read in mode 0");
	mb_notification_from_meminfo(&n, MB_SOURCE_MEMINFO, &mi, 256 * MIB,
				     768 * MIB, MB_STATE_UNKNOWN, 1);
	ok(n.flags == 0 && n.committed == 7500 * MIB,
	   "mode 0 (heuristic), 94%%: no VIRTUAL_LOW, figures kept");
	put_mem(4096, 2048, 80000, 8000);	/* ten times the limit */
	put_overcommit(1);
	ok(mb_meminfo_read(root, &mi) == 0, "read in mode 1");
	mb_notification_from_meminfo(&n, MB_SOURCE_MEMINFO, &mi, 256 * MIB,
				     768 * MIB, MB_STATE_UNKNOWN, 1);
	ok(n.flags == 0, "mode 1 (always), 1000%%: no VIRTUAL_LOW");
	put_overcommit(-1);
	ok(mb_meminfo_read(root, &mi) == 0, "read without the sysctl");
	mb_notification_from_meminfo(&n, MB_SOURCE_MEMINFO, &mi, 256 * MIB,
				     768 * MIB, MB_STATE_UNKNOWN, 1);
	ok(n.flags == 0, "no sysctl file: the kernel's default, mode 0");
	put_overcommit(2);
}

static int eval(struct mb_source *s, struct mb_notification *n)
{
	int r = s->ops->dispatch(s, n);

	if (r == 1)
		s->last = *n;	/* what the monitor does */
	return r;
}

static void test_source(void)
{
	struct mb_monitor_opts o = { .sz = sizeof(o), .root = root };
	struct mb_source s = { .ops = &mb_source_meminfo_ops, .opts = &o };
	struct mb_notification n;

	put("garbage\n");
	ok(s.ops->open(&s) == -ENODEV, "no MemAvailable: source unusable");

	put_mem(4096, 2048, 100, 8000);	/* auto: 256 / 768 MiB */
	ok(s.ops->open(&s) == 0 && s.fd == -1, "open: timer only");
	ok(eval(&s, &n) == 1 && n.state == MB_STATE_HIGH &&
	   n.low == 256 * MIB && n.high == 768 * MIB &&
	   n.total == 4096 * MIB && n.source == MB_SOURCE_MEMINFO &&
	   n.flags == 0, "first reading: HIGH with automatic thresholds");
	ok(s.ops->timeout_ms(&s) == 1000, "plenty of headroom: 1 s");
	put_mem(4096, 2000, 100, 8000);
	ok(eval(&s, &n) == 0, "only MemAvailable moved: nothing new");
	put_mem(4096, 740, 100, 8000);
	ok(eval(&s, &n) == 0 && n.state == MB_STATE_HIGH,
	   "hysteresis (32 MiB): still HIGH at 740 MiB");
	put_mem(4096, 500, 100, 8000);
	ok(eval(&s, &n) == 1 && n.state == MB_STATE_STEADY &&
	   n.available == 500 * MIB, "STEADY");
	put_mem(4096, 260, 100, 8000);
	ok(eval(&s, &n) == 0 && s.ops->timeout_ms(&s) == 5,
	   "near the low threshold: polled every 5 ms");
	put_mem(4096, 200, 7500, 8000);
	ok(eval(&s, &n) == 1 && n.state == MB_STATE_LOW &&
	   n.flags == MB_FLAG_VIRTUAL_LOW && n.committed == 7500 * MIB,
	   "LOW with VIRTUAL_LOW");
	put_mem(4096, 280, 100, 8000);
	ok(eval(&s, &n) == 1 && n.state == MB_STATE_LOW && n.flags == 0,
	   "flag cleared, still LOW below low + hysteresis");
	put_mem(8192, 280, 100, 8000);
	ok(eval(&s, &n) == 1 && n.total == 8192 * MIB,
	   "total changed: worth recording");
	s.ops->close(&s);

	o.low_bytes = 100 * MIB;
	o.high_bytes = 200 * MIB;
	s.last.state = MB_STATE_UNKNOWN;
	put_mem(4096, 150, 0, 0);
	ok(s.ops->open(&s) == 0 && eval(&s, &n) == 1 &&
	   n.state == MB_STATE_STEADY && n.low == 100 * MIB &&
	   n.high == 200 * MIB, "thresholds from the options");
	s.ops->close(&s);
	o.low_bytes = 300 * MIB;
	ok(s.ops->open(&s) == -EINVAL, "low above high: -EINVAL");
}

static void test_auto(void)
{
	struct mb_monitor_opts o = { .sz = sizeof(o), .root = root };
	struct mb_notification n;
	struct mb_monitor *mon;
	int r;

	put_mem(4096, 100, 0, 0);
	unsetenv("MEMBROKER_SOURCE");
	r = mb_monitor_new(&mon, &o);
	if (r == 0 && mb_monitor_source(mon) == MB_SOURCE_KMOD) {
		skip("the module is loaded: auto picks it");
	} else {
		ok(r == 0 && mb_monitor_source(mon) == MB_SOURCE_MEMINFO,
		   "auto under a root with only meminfo: meminfo");
		ok(mb_monitor_get_state(mon, &n) == 0 &&
		   n.state == MB_STATE_LOW && n.available == 100 * MIB,
		   "initial state known at once");
		ok(mb_monitor_dispatch(mon) == 1, "and delivered first");
	}
	mb_monitor_free(mon);
}

int main(void)
{
	char dir[128];

	plan(0);
	snprintf(dir, sizeof(dir), "%s/proc", root);
	if (!mkdtemp(root) ||
	    (snprintf(dir, sizeof(dir), "%s/proc", root), mkdir(dir, 0755))) {
		ok(0, "temporary root");
		return done_testing();
	}
	snprintf(file, sizeof(file), "%s/proc/meminfo", root);
	snprintf(dir, sizeof(dir), "%s/proc/sys", root);
	mkdir(dir, 0755);
	snprintf(dir, sizeof(dir), "%s/proc/sys/vm", root);
	mkdir(dir, 0755);
	snprintf(overcommit, sizeof(overcommit),
		 "%s/proc/sys/vm/overcommit_memory", root);
	put_overcommit(2);
	test_parse();
	test_overcommit_modes();
	test_source();
	test_auto();
	unlink(file);
	unlink(overcommit);
	rmdir(dir);
	snprintf(dir, sizeof(dir), "%s/proc/sys", root);
	rmdir(dir);
	snprintf(dir, sizeof(dir), "%s/proc", root);
	rmdir(dir);
	rmdir(root);
	return done_testing();
}
