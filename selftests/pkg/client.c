// SPDX-License-Identifier: GPL-2.0
/*
 * A third party's program: it knows libmembroker only through the
 * installed packages (<membroker.h> and `pkg-config membroker`), nothing
 * of this repository.  make check-packages (scripts/pkg/check.sh) builds
 * it inside a Debian root where libmembroker-dev was installed with apt,
 * runs it there, and runs its static build in the VM against the
 * DKMS-built module.
 *
 *   client [kmod]    the module: its state and configuration over netlink,
 *                    through the library; exits 4 (skip) when the module
 *                    is not loaded.  The default, as the VM runs tests
 *                    without arguments.
 *   client meminfo   the /proc/meminfo source: the reading must agree
 *                    with /proc/meminfo's MemTotal
 *
 * Output is TAP 13, as the VM rig counts it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <membroker.h>

static int planned, failed;

static void check(int ok, const char *what)
{
	printf("%sok %d %s\n", ok ? "" : "not ", ++planned, what);
	if (!ok)
		failed++;
}

/* MemTotal in bytes, or 0 */
static unsigned long long mem_total(void)
{
	unsigned long long kib = 0;
	char line[256];
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemTotal: %llu kB", &kib) == 1)
			break;
	fclose(f);
	return kib * 1024;
}

static int known_state(uint32_t s)
{
	return s == MB_STATE_LOW || s == MB_STATE_STEADY || s == MB_STATE_HIGH;
}

static void via_meminfo(void)
{
	struct mb_monitor_opts opts = MB_OPTS(mb_monitor_opts,
					      .source = MB_SOURCE_MEMINFO);
	struct mb_notification n;
	struct mb_monitor *mon;
	int rc;

	rc = mb_monitor_new(&mon, &opts);
	check(rc == 0, "mb_monitor_new(meminfo)");
	if (rc)
		return;
	check(mb_monitor_source(mon) == MB_SOURCE_MEMINFO &&
	      !strcmp(mb_source_name(MB_SOURCE_MEMINFO), "meminfo"),
	      "the monitor's source is meminfo");
	rc = mb_monitor_get_state(mon, &n);
	check(rc == 0 && known_state(n.state), "a known state");
	if (rc == 0)
		printf("# state %s, available %llu of %llu bytes\n",
		       mb_state_name(n.state),
		       (unsigned long long)n.available,
		       (unsigned long long)n.total);
	check(rc == 0 && n.total == mem_total() && n.available <= n.total,
	      "total is MemTotal, available below it");
	mb_monitor_free(mon);
}

static int via_kmod(void)
{
	struct mb_kmod_config cfg;
	struct mb_notification n;
	struct mb_kmod *k;
	int rc;

	rc = mb_kmod_open(&k);
	if (rc == -ENOENT) {
		printf("1..0 # SKIP membroker module not loaded\n");
		return 4;
	}
	printf("1..4\n");
	check(rc == 0, "mb_kmod_open");
	if (rc)
		return 1;
	rc = mb_kmod_get_state(k, &n);
	check(rc == 0 && known_state(n.state) && n.source == MB_SOURCE_KMOD,
	      "the module's state");
	check(rc == 0 && n.total == mem_total() && n.available <= n.total &&
	      n.low < n.high, "its figures: total is MemTotal, low below high");
	rc = mb_kmod_get_config(k, &cfg);
	/* thresholds 0 are automatic: the state then shows those in use */
	check(rc == 0 && cfg.poll_min_ms >= 1 &&
	      cfg.poll_min_ms <= cfg.poll_max_ms &&
	      cfg.virtual_low_percent >= 1 && cfg.virtual_low_percent <= 100 &&
	      cfg.history_size > 0 && cfg.set_mask == 0 &&
	      (!cfg.low_bytes || cfg.low_bytes == n.low) &&
	      (!cfg.high_bytes || cfg.high_bytes == n.high),
	      "the module's configuration, within the uapi's ranges");
	if (rc == 0)
		printf("# low %llu, high %llu (0: automatic), poll %u..%u ms, "
		       "history %u\n",
		       (unsigned long long)cfg.low_bytes,
		       (unsigned long long)cfg.high_bytes, cfg.poll_min_ms,
		       cfg.poll_max_ms, cfg.history_size);
	mb_kmod_close(k);
	return 0;
}

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "kmod";

	printf("TAP version 13\n");
	if (!strcmp(what, "meminfo")) {
		printf("1..4\n");
		via_meminfo();
	} else if (!strcmp(what, "kmod")) {
		if (via_kmod() == 4)
			return 4;
	} else {
		fprintf(stderr, "usage: %s [meminfo|kmod]\n", argv[0]);
		return 2;
	}
	return failed ? 1 : 0;
}
