// SPDX-License-Identifier: GPL-2.0
/*
 * libmembroker with the real module, end to end: a process keeps two
 * mb_caches of 64 MiB each in one broker driven by a kmod monitor.  A
 * forked hog eats memory until MemAvailable is below the low threshold
 * and holds it.  The test checks that LOW arrives, that the broker shrinks
 * both caches (bytes down, shrink counts up), that the kernel then sees
 * more MemAvailable than when LOW was sent, and that once the hog is gone
 * HIGH arrives and the caches are allowed to grow back, and do.
 *
 * The thresholds are set explicitly (and restored afterwards) from the
 * memory this guest actually has, so the test does not depend on the
 * automatic rule or the guest's size.  Waits are on notifications, each
 * bounded by a generous deadline that only turns a hang into a failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "membroker.h"
#include "lib_test.h"

#define MIB		(1024ULL * 1024)
#define CACHE_BYTES	(64 * MIB)
#define HOG_CHUNK	(4 * MIB)
#define DEADLINE_S	60		/* a hang, not a timing requirement */


static bool in_mask(const struct mb_notification *n, const void *arg)
{
	return *(const unsigned int *)arg & (1U << n->state);
}

/*
 * Wait for a notification after the first @after ones whose state is in
 * @mask; *@next is where the next wait should start.
 */
static int wait_state(struct lt_seen *s, uint64_t after, unsigned int mask,
		      struct mb_notification *out, uint64_t *next)
{
	uint64_t i = after;
	int err;

	err = lt_seen_wait(s, &i, in_mask, &mask, DEADLINE_S, out);
	if (!err)
		*next = i;
	return err;
}

/*
 * The hog: take MemAvailable to 12 MiB below @low, report on @ready,
 * then hold until @hold reaches EOF.  The amount is fixed up front: the
 * LOW it causes can make the caches give memory back before the hog would
 * next look, and a hog that kept going until it saw "below low" would
 * just eat what they freed.  Uses only mmap/read/write: it runs in a
 * child of a threaded process.
 */
static void hog(uint64_t low, int ready, int hold)
{
	uint64_t want, total = 0;
	char c = 1, *p;
	int64_t avail;
	size_t i;

	avail = lt_mem_available();
	if (avail < 0 || (uint64_t)avail <= low)
		_exit(2);
	want = (uint64_t)avail - low + 12 * MIB;
	while (total < want) {
		/* never into the OOM killer's zone, whatever else happens */
		avail = lt_mem_available();
		if (avail < 0 || (uint64_t)avail < low / 2)
			break;
		p = mmap(NULL, HOG_CHUNK, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			_exit(3);
		for (i = 0; i < HOG_CHUNK; i += 4096)
			p[i] = 1;
		total += HOG_CHUNK;
	}
	if (write(ready, &c, 1) != 1)
		_exit(4);
	while (read(hold, &c, 1) > 0)
		;
	_exit(0);
}

FIXTURE(pressure) {
	struct mb_kmod *k;
	struct mb_kmod_config saved;
	struct lt_pool pool;
	pid_t hog;
	int go;
	int hold;
};

FIXTURE_SETUP(pressure)
{
	int err;

	self->hog = -1;
	self->go = -1;
	self->hold = -1;
	err = mb_kmod_open(&self->k);
	if (err == -ENOENT)
		SKIP(return, "membroker.ko is not loaded");
	ASSERT_EQ(0, err);
	ASSERT_EQ(0, mb_kmod_get_config(self->k, &self->saved));

	ASSERT_EQ(0, lt_pool_open(&self->pool, "pool", "cache-a", "cache-b"));
}

FIXTURE_TEARDOWN(pressure)
{
	struct mb_kmod_config restore = self->saved;

	/* EOF on either pipe ends the hog, whatever it was doing */
	if (self->go >= 0)
		close(self->go);
	if (self->hold >= 0)
		close(self->hold);
	if (self->hog > 0)
		waitpid(self->hog, NULL, 0);
	lt_pool_close(&self->pool);
	if (self->k) {
		restore.set_mask = MB_KCFG_LOW | MB_KCFG_HIGH |
				   MB_KCFG_HYSTERESIS | MB_KCFG_POLL_MIN |
				   MB_KCFG_POLL_MAX | MB_KCFG_RATELIMIT |
				   MB_KCFG_VIRTUAL_LOW;
		EXPECT_EQ(0, mb_kmod_set_config(self->k, &restore, NULL, 0));
		mb_kmod_close(self->k);
	}
}

TEST_F_TIMEOUT(pressure, low_shrinks_high_grows, 110)
{
	struct mb_clerk_info a0, b0, a1, b1;
	struct mb_notification st, low, back, high;
	struct mb_kmod_config cfg = { 0 };
	uint64_t count, bytes_a0, bytes_b0, bytes_a1, bytes_b1;
	int go[2], ready[2], hold[2], status;
	int64_t avail;
	int err;
	char c;

	/*
	 * 0. Fork the hog first: a child forked after the caches are filled
	 * would share their pages, and freeing them here would return
	 * nothing to the kernel.  It waits for the low threshold on @go.
	 */
	ASSERT_EQ(0, pipe(go));
	ASSERT_EQ(0, pipe(ready));
	ASSERT_EQ(0, pipe(hold));
	self->hog = fork();
	ASSERT_LE(0, self->hog);
	if (self->hog == 0) {
		uint64_t low_bytes;

		close(go[1]);
		close(ready[0]);
		close(hold[1]);
		if (read(go[0], &low_bytes, sizeof(low_bytes)) !=
		    sizeof(low_bytes))
			_exit(6);
		hog(low_bytes, ready[1], hold[0]);
	}
	close(go[0]);
	close(ready[1]);
	close(hold[0]);
	self->go = go[1];
	self->hold = hold[1];

	/*
	 * 1. Fill both caches, then hand them to the broker: the test wants
	 * 64 MiB each to start from, and a STEADY arriving meanwhile would
	 * hold them at the size they had.
	 */
	ASSERT_EQ(0, lt_cache_fill(self->pool.a, 0, CACHE_BYTES));
	ASSERT_EQ(0, lt_cache_fill(self->pool.b, 1U << 20, CACHE_BYTES));
	bytes_a0 = mb_clerk_bytes(mb_cache_clerk(self->pool.a));
	bytes_b0 = mb_clerk_bytes(mb_cache_clerk(self->pool.b));
	ASSERT_GE(bytes_a0, CACHE_BYTES);
	ASSERT_GE(bytes_b0, CACHE_BYTES);
	ASSERT_EQ(0, mb_broker_add_clerk(self->pool.broker,
					 mb_cache_clerk(self->pool.a)));
	ASSERT_EQ(0, mb_broker_add_clerk(self->pool.broker,
					 mb_cache_clerk(self->pool.b)));

	/*
	 * 2. Thresholds from what is left: LOW well above the OOM zone;
	 * HIGH out of reach while the hog holds, even after the 96 MiB step
	 * (about avail - hog + 96 MiB), and within reach once it is gone
	 * (about avail + 96 MiB), so that its exit is what brings HIGH.
	 */
	avail = lt_mem_available();
	ASSERT_LT(0, avail);
	TH_LOG("MemAvailable with full caches: %lld MiB",
	       (long long)(avail / MIB));
	cfg.low_bytes = 96 * MIB;
	cfg.high_bytes = (uint64_t)avail + 32 * MIB;
	if ((uint64_t)avail < cfg.low_bytes + 64 * MIB)
		SKIP(return, "guest too small: %lld MiB available",
		     (long long)(avail / MIB));
	cfg.set_mask = MB_KCFG_LOW | MB_KCFG_HIGH;
	ASSERT_EQ(0, mb_kmod_set_config(self->k, &cfg, NULL, 0));
	/* Notifications from before the change may still be arriving. */
	count = 0;
	do {
		ASSERT_EQ(0, wait_state(&self->pool.seen, count,
					(1U << MB_STATE_HIGH) |
					(1U << MB_STATE_STEADY), &st, &count));
	} while (st.low != cfg.low_bytes);
	ASSERT_EQ(0, lt_clerk_info("cache-a", &a0));
	ASSERT_EQ(0, lt_clerk_info("cache-b", &b0));

	/* 3. The hog takes MemAvailable below low and holds. */
	ASSERT_EQ(sizeof(cfg.low_bytes),
		  write(go[1], &cfg.low_bytes, sizeof(cfg.low_bytes)));
	close(go[1]);
	self->go = -1;
	ASSERT_EQ(1, read(ready[0], &c, 1));
	close(ready[0]);

	/* 4. LOW arrives; the broker shrinks until LOW ends. */
	ASSERT_EQ(0, wait_state(&self->pool.seen, count, 1U << MB_STATE_LOW,
				&low, &count));
	TH_LOG("LOW: available %llu MiB (low %llu MiB), reason %u",
	       (unsigned long long)(low.available / MIB),
	       (unsigned long long)(low.low / MIB), low.reason);
	ASSERT_LT(low.available, low.low);
	err = wait_state(&self->pool.seen, count,
			 (1U << MB_STATE_STEADY) | (1U << MB_STATE_HIGH),
			 &back, &count);
	if (err) {
		ASSERT_EQ(0, lt_clerk_info("cache-a", &a1));
		ASSERT_EQ(0, lt_clerk_info("cache-b", &b1));
		ASSERT_EQ(0, mb_kmod_get_state(self->k, &st));
		TH_LOG("still LOW: kernel available %llu MiB state %u; "
		       "cache-a %llu MiB %llu shrinks, cache-b %llu MiB "
		       "%llu shrinks",
		       (unsigned long long)(st.available / MIB), st.state,
		       (unsigned long long)(a1.bytes / MIB),
		       (unsigned long long)a1.shrink_count,
		       (unsigned long long)(b1.bytes / MIB),
		       (unsigned long long)b1.shrink_count);
	}
	ASSERT_EQ(0, err);

	bytes_a1 = mb_clerk_bytes(mb_cache_clerk(self->pool.a));
	bytes_b1 = mb_clerk_bytes(mb_cache_clerk(self->pool.b));
	ASSERT_EQ(0, lt_clerk_info("cache-a", &a1));
	ASSERT_EQ(0, lt_clerk_info("cache-b", &b1));
	TH_LOG("after LOW: cache-a %llu -> %llu MiB, cache-b %llu -> %llu MiB",
	       (unsigned long long)(bytes_a0 / MIB),
	       (unsigned long long)(bytes_a1 / MIB),
	       (unsigned long long)(bytes_b0 / MIB),
	       (unsigned long long)(bytes_b1 / MIB));
	EXPECT_LT(bytes_a1, bytes_a0);
	EXPECT_LT(bytes_b1, bytes_b0);
	EXPECT_GT(a1.shrink_count, a0.shrink_count);
	EXPECT_GT(b1.shrink_count, b0.shrink_count);
	EXPECT_GT(a1.shrink_freed + b1.shrink_freed, 0);

	/* 5. The kernel sees the memory the caches gave back. */
	ASSERT_EQ(0, mb_kmod_get_state(self->k, &st));
	TH_LOG("kernel MemAvailable: %llu MiB at LOW, %llu MiB now",
	       (unsigned long long)(low.available / MIB),
	       (unsigned long long)(st.available / MIB));
	EXPECT_GT(st.available, low.available);
	EXPECT_GE(back.available, low.low);

	/* 6. The hog leaves: HIGH, and the caches may grow again. */
	close(self->hold);
	self->hold = -1;
	ASSERT_EQ(self->hog, waitpid(self->hog, &status, 0));
	self->hog = -1;
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
	ASSERT_EQ(0, wait_state(&self->pool.seen, count, 1U << MB_STATE_HIGH,
				&high, &count));
	EXPECT_GT(mb_clerk_target(mb_cache_clerk(self->pool.a)), bytes_a1);
	EXPECT_GT(mb_clerk_target(mb_cache_clerk(self->pool.b)), bytes_b1);

	/* 7. Refilled, they grow back (within what the broker allows). */
	ASSERT_EQ(0, lt_cache_fill(self->pool.a, 2U << 20, CACHE_BYTES));
	ASSERT_EQ(0, lt_cache_fill(self->pool.b, 3U << 20, CACHE_BYTES));
	TH_LOG("refilled: cache-a %llu MiB (target %llu), cache-b %llu MiB",
	       (unsigned long long)
	       (mb_clerk_bytes(mb_cache_clerk(self->pool.a)) / MIB),
	       (unsigned long long)
	       (mb_clerk_target(mb_cache_clerk(self->pool.a)) / MIB),
	       (unsigned long long)
	       (mb_clerk_bytes(mb_cache_clerk(self->pool.b)) / MIB));
	EXPECT_GT(mb_clerk_bytes(mb_cache_clerk(self->pool.a)), bytes_a1);
	EXPECT_GT(mb_clerk_bytes(mb_cache_clerk(self->pool.b)), bytes_b1);
	EXPECT_LE(mb_clerk_bytes(mb_cache_clerk(self->pool.a)),
		  mb_clerk_target(mb_cache_clerk(self->pool.a)));
	EXPECT_LE(mb_clerk_bytes(mb_cache_clerk(self->pool.b)),
		  mb_clerk_target(mb_cache_clerk(self->pool.b)));
}

TEST_HARNESS_MAIN
