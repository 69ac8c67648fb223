// SPDX-License-Identifier: GPL-2.0
/*
 * Reclaim is a sign of pressure, not a clock.  The kernel asks every
 * shrinker to count its objects on each pass of reclaim, hundreds of times
 * a second while a file larger than memory streams through the page
 * cache; the module must not evaluate that often.  What a user relies on:
 *
 *  - under sustained reclaim, evaluations stay within the documented bound
 *    of one per poll_min_ms (counted, over a measured stretch of time: a
 *    bound on a count, not a timing threshold), and reclaim still causes
 *    evaluations;
 *  - writing to /proc/sys/vm/drop_caches, which runs the shrinkers too, is
 *    not reclaim: no evaluation and no notification says RECLAIM.
 *
 * The stream comes from a disk larger than the guest's memory (DISK, a
 * sparse image the VM rig attaches as virtio-blk), read with buffered I/O
 * from offset 0 again and again on one open file, so that its page cache
 * stays and every new page must evict an old one.  tmpfs would not do: it
 * is memory, not cache.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/wait.h>

#include "mb_test.h"

#define DISK		"/dev/vda"
#define DROP_CACHES	"/proc/sys/vm/drop_caches"

/* The test's poll_min_ms: the bound is one evaluation per this */
#define POLL_MIN_MS	100
/* How long evaluations are counted under reclaim */
#define WINDOW_MS	10000
/* Rounding of the window's ends, and the evaluation already running */
#define SLACK		5
/* Bound for the stream to fill memory and reclaim to start: a hang */
#define START_MS	90000

FIXTURE(reclaim) {
	struct mb_nl nl;
	struct mb_config saved;
	bool restore;
	pid_t reader;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = {
		.tv_sec = ms / 1000,
		.tv_nsec = (long)(ms % 1000) * 1000000L,
	};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* Pages reclaim has scanned so far, by kswapd and direct reclaimers */
static int pgscan(uint64_t *pages)
{
	uint64_t kswapd, direct;
	int err;

	err = mb_vmstat_read("pgscan_kswapd", &kswapd);
	err = err ?: mb_vmstat_read("pgscan_direct", &direct);
	if (!err)
		*pages = kswapd + direct;
	return err;
}

FIXTURE_SETUP(reclaim)
{
	struct mb_meminfo mi;
	struct mb_config cfg;
	uint64_t size = 0;
	int fd;

	self->reader = -1;
	MB_OPEN_OR_SKIP(&self->nl);
	fd = open(DISK, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		MB_SKIP_SETUP("no disk to stream at " DISK);
	ASSERT_EQ(0, ioctl(fd, BLKGETSIZE64, &size));
	close(fd);
	ASSERT_EQ(0, mb_meminfo_read(&mi));
	ASSERT_LT(mi.total, size)
		TH_LOG(DISK " holds %llu MiB, less than the %llu MiB of RAM",
		       (unsigned long long)(size / MIB),
		       (unsigned long long)(mi.total / MIB));

	ASSERT_EQ(0, mb_nl_get_config(&self->nl, &self->saved));
	ASSERT_LE(POLL_MIN_MS, self->saved.poll_max_ms);
	memset(&cfg, 0, sizeof(cfg));
	cfg.have = 1ULL << MEMBROKER_A_POLL_MIN_MS;
	cfg.poll_min_ms = POLL_MIN_MS;
	ASSERT_EQ(0, mb_nl_set_config(&self->nl, &cfg));
	self->restore = true;
}

FIXTURE_TEARDOWN(reclaim)
{
	if (self->reader > 0) {
		kill(self->reader, SIGKILL);
		waitpid(self->reader, NULL, 0);
	}
	if (self->restore)
		EXPECT_EQ(0, mb_nl_set_config(&self->nl, &self->saved));
	mb_nl_close(&self->nl);
}

/*
 * A child that reads DISK from start to end, over and over, through the
 * page cache.  The file stays open: closing a block device's last file
 * drops its cache, and then memory would fill up again without reclaim.
 */
static pid_t start_reader(void)
{
	static char buf[1 << 20];
	ssize_t n;
	pid_t pid;
	int fd;

	fflush(NULL);
	pid = fork();
	if (pid != 0)
		return pid < 0 ? -errno : pid;

	fd = open(DISK, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		_exit(1);
	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n < 0)
			_exit(2);
		if (n == 0 && lseek(fd, 0, SEEK_SET))
			_exit(3);
	}
}

TEST_F_TIMEOUT(reclaim, bounded_under_streaming, 150)
{
	uint64_t scan0, scan1, t0, t1, deadline, n, bound;
	struct mb_evals e0, e1;
	double secs;

	self->reader = start_reader();
	ASSERT_LT(0, self->reader);

	/* Memory fills with the stream's cache, then reclaim takes over. */
	ASSERT_EQ(0, pgscan(&scan0));
	deadline = now_ns() + START_MS * 1000000ULL;
	do {
		ASSERT_GT(deadline, now_ns())
			TH_LOG("no reclaim while streaming " DISK);
		sleep_ms(100);
		ASSERT_EQ(0, pgscan(&scan1));
	} while (scan1 == scan0);

	ASSERT_EQ(0, pgscan(&scan0));
	ASSERT_EQ(0, mb_evals_read(&e0));
	t0 = now_ns();
	sleep_ms(WINDOW_MS);
	ASSERT_EQ(0, mb_evals_read(&e1));
	t1 = now_ns();
	ASSERT_EQ(0, pgscan(&scan1));

	secs = (double)(t1 - t0) / 1e9;
	n = e1.total - e0.total;
	bound = (t1 - t0) / (POLL_MIN_MS * 1000000ULL) + SLACK;
	TH_LOG("%.1f s of reclaim, %.0f pages scanned/s: %llu evaluations "
	       "(%.1f/s; %llu reclaim, %llu poll), bound %llu",
	       secs, (double)(scan1 - scan0) / secs, (unsigned long long)n,
	       (double)n / secs,
	       (unsigned long long)(e1.reason[MEMBROKER_REASON_RECLAIM] -
				    e0.reason[MEMBROKER_REASON_RECLAIM]),
	       (unsigned long long)(e1.reason[MEMBROKER_REASON_POLL] -
				    e0.reason[MEMBROKER_REASON_POLL]),
	       (unsigned long long)bound);
	/* Without reclaim all through the window the count proves nothing */
	ASSERT_LT(scan0, scan1);
	EXPECT_LE(n, bound);
	/* Bounded, not ignored: reclaim still causes evaluations. */
	EXPECT_LT(e0.reason[MEMBROKER_REASON_RECLAIM],
		  e1.reason[MEMBROKER_REASON_RECLAIM]);
}

static int write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	close(fd);
	return n == (ssize_t)strlen(val) ? 0 : -EIO;
}

TEST_F(reclaim, drop_caches_is_not_reclaim)
{
	struct mb_state st, after, *h;
	struct mb_evals e0, e1;
	uint64_t scan0, scan1;
	struct mb_config cfg;
	int n, i;

	/* Let reclaim that a test before caused die down (bounded) */
	ASSERT_EQ(0, pgscan(&scan1));
	for (i = 0; i < 50; i++) {
		scan0 = scan1;
		sleep_ms(200);
		ASSERT_EQ(0, pgscan(&scan1));
		if (scan0 == scan1)
			break;
	}

	ASSERT_EQ(0, mb_nl_get_config(&self->nl, &cfg));
	ASSERT_EQ(0, mb_nl_get_state(&self->nl, &st));
	ASSERT_EQ(0, pgscan(&scan0));
	ASSERT_EQ(0, mb_evals_read(&e0));

	ASSERT_EQ(0, write_file(DROP_CACHES, "3"));
	/*
	 * GET_STATE evaluates and waits: a kick the shrinkers' pass caused
	 * is evaluated by then (a pending RECLAIM names that evaluation).
	 */
	ASSERT_EQ(0, mb_nl_get_state(&self->nl, &after));
	ASSERT_EQ(0, mb_evals_read(&e1));
	ASSERT_EQ(0, pgscan(&scan1));

	/* Real reclaim meanwhile would make the test meaningless. */
	ASSERT_EQ(scan0, scan1);
	EXPECT_EQ(e0.reason[MEMBROKER_REASON_RECLAIM],
		  e1.reason[MEMBROKER_REASON_RECLAIM])
		TH_LOG("drop_caches caused %llu RECLAIM evaluations",
		       (unsigned long long)
		       (e1.reason[MEMBROKER_REASON_RECLAIM] -
			e0.reason[MEMBROKER_REASON_RECLAIM]));

	h = calloc(cfg.history_size, sizeof(*h));
	ASSERT_NE(NULL, h);
	n = mb_nl_dump_history(&self->nl, h, cfg.history_size);
	EXPECT_LE(0, n);
	for (i = 0; i < n; i++)
		if (h[i].seq > st.seq)
			EXPECT_NE(MEMBROKER_REASON_RECLAIM, h[i].reason)
				TH_LOG("seq %llu says RECLAIM",
				       (unsigned long long)h[i].seq);
	free(h);
}

TEST_HARNESS_MAIN
