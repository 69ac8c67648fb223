// SPDX-License-Identifier: GPL-2.0
/*
 * An application whose caches follow the VM's memory as the host changes
 * it.  One process: a kmod monitor, a broker, two mb_caches of 32 MiB and
 * a working set ("ballast") sized so that, once the host inflates the
 * balloon by 128 MiB, MemAvailable ends below the low threshold the
 * smaller machine has.  Then:
 *
 *   inflate      LOW: the broker shrinks both caches (bytes down, shrink
 *                counts and freed bytes up), which brings the state back
 *                to STEADY, where the caches are held near their size
 *                (a quarter of the headroom above low to grow into);
 *   deflate      HIGH: the caches may grow, and refilled they do;
 *   virtio-mem   +256 MiB, HIGH again with the larger total: refilled,
 *                they grow further.
 *
 * The thresholds are the module's automatic ones, so the sizes are worked
 * out from the documented formula and what this guest has.  Every wait is
 * on a notification, bounded by a deadline that only turns a hang into a
 * failure; the teardown gives the VM all of its memory back.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "membroker.h"
#include "lib_test.h"
#include "mb_dynmem.h"
#include "mb_host.h"

#define MIB		(1024ULL * 1024)
#define CACHE_BYTES	(32 * MIB)
#define BALLOON_BYTES	(128 * MIB)
#define VMEM_BYTES	(256 * MIB)
#define TOTAL_SLACK	(2 * MIB)	/* the module publishes to 1 MiB */
#define DEADLINE_S	30		/* a hang, not a timing requirement */

#define MIB_F(x)	((double)(x) / MIB)

/*
 * The 6.1 harness runs the test body even after SKIP() in the setup:
 * leave the test's child instead (255 is how it recognises a skip).
 */
#define SKIP_SETUP(fmt, ...) SKIP(_exit(255), fmt, ##__VA_ARGS__)

/* What wait_note() waits for */
struct want {
	unsigned int states;		/* bits 1 << state */
	uint64_t total;			/* about this total, 0: any */
};

static bool matches(const struct mb_notification *n, const void *arg)
{
	const struct want *w = arg;

	if (!(w->states & (1U << n->state)))
		return false;
	if (!w->total)
		return true;
	return n->total + TOTAL_SLACK >= w->total &&
	       n->total <= w->total + TOTAL_SLACK;
}

/* A notification after the first *@next ones that matches @w */
static int wait_note(struct lt_seen *s, uint64_t *next, const struct want *w,
		     struct mb_notification *out)
{
	return lt_seen_wait(s, next, matches, w, DEADLINE_S, out);
}

FIXTURE(dynmem) {
	struct mb_kmod *k;
	struct mb_kmod_config saved;
	bool restore_config;
	struct lt_pool pool;
	void *ballast;
	uint64_t ballast_bytes;
};

FIXTURE_SETUP(dynmem)
{
	struct mb_kmod_config cfg;
	int err;

	err = mb_kmod_open(&self->k);
	if (err == -ENOENT)
		SKIP_SETUP("membroker.ko is not loaded");
	ASSERT_EQ(0, err);
	if (!mb_host_available())
		SKIP_SETUP("no host control channel on " MB_HOST_TTY);
	ASSERT_EQ(0, mb_dynmem_restore(MB_DYNMEM_TIMEOUT_MS));

	ASSERT_EQ(0, lt_pool_open(&self->pool, "app", "dyn-a", "dyn-b"));

	/*
	 * The automatic thresholds: they follow the total.  Last, since a
	 * setup that fails has no teardown to put the configuration back.
	 */
	ASSERT_EQ(0, mb_kmod_get_config(self->k, &self->saved));
	if (self->saved.low_bytes || self->saved.high_bytes ||
	    self->saved.hysteresis_bytes) {
		cfg = (struct mb_kmod_config){
			.set_mask = MB_KCFG_LOW | MB_KCFG_HIGH |
				    MB_KCFG_HYSTERESIS,
		};
		ASSERT_EQ(0, mb_kmod_set_config(self->k, &cfg, NULL, 0));
		self->restore_config = true;
	}
}

FIXTURE_TEARDOWN(dynmem)
{
	struct mb_kmod_config restore = self->saved;

	lt_pool_close(&self->pool);
	if (self->ballast)
		munmap(self->ballast, self->ballast_bytes);
	/* No ASSERT here: a failing one would jump back into the test. */
	EXPECT_EQ(0, mb_dynmem_restore(MB_DYNMEM_TIMEOUT_MS));
	if (self->restore_config) {
		restore.set_mask = MB_KCFG_LOW | MB_KCFG_HIGH |
				   MB_KCFG_HYSTERESIS;
		EXPECT_EQ(0, mb_kmod_set_config(self->k, &restore, NULL, 0));
	}
	mb_kmod_close(self->k);
}

/*
 * The broker's last decision (one record per cache, pushed together) and
 * the notification it was for, found in the monitor's ring by its time:
 * *grant is what the targets allow above what the caches held.
 */
static int last_decision(struct mb_broker *b, struct mb_monitor *mon,
			 struct mb_notification *n, uint64_t *grant)
{
	struct mb_ring *br = mb_broker_ring(b), *mr = mb_monitor_ring(mon);
	struct mb_broker_record rec[2];
	uint64_t last, seq;
	int i;

	last = mb_ring_last_seq(br);
	if (last < 2 || mb_ring_read(br, last - 1, rec, NULL, 2, NULL) != 2 ||
	    rec[0].time_ns != rec[1].time_ns)
		return -EAGAIN;
	*grant = 0;
	for (i = 0; i < 2; i++)
		if (rec[i].target > rec[i].allocated)
			*grant += rec[i].target - rec[i].allocated;
	for (seq = mb_ring_last_seq(mr); seq > 0; seq--)
		if (mb_ring_read(mr, seq, n, NULL, 1, NULL) == 1 &&
		    n->time_ns == rec[0].time_ns)
			return 0;
	return -ENOENT;
}

/* "12.0 MiB" or "none" for a target HIGH lifted (UINT64_MAX) */
static const char *target_str(char *buf, size_t len, uint64_t target)
{
	if (target == UINT64_MAX)
		return "none";
	snprintf(buf, len, "%.1f MiB", MIB_F(target));
	return buf;
}

static void log_caches(struct __test_metadata *_metadata,
		       FIXTURE_DATA(dynmem) *self, const char *when)
{
	struct mb_clerk *ca = mb_cache_clerk(self->pool.a);
	struct mb_clerk *cb = mb_cache_clerk(self->pool.b);
	char ta[32], tb[32];

	TH_LOG("%s: dyn-a %.1f MiB (target %s), dyn-b %.1f MiB (target %s)",
	       when, MIB_F(mb_clerk_bytes(ca)),
	       target_str(ta, sizeof(ta), mb_clerk_target(ca)),
	       MIB_F(mb_clerk_bytes(cb)),
	       target_str(tb, sizeof(tb), mb_clerk_target(cb)));
}

static void log_note(struct __test_metadata *_metadata, const char *what,
		     const struct mb_notification *n, uint64_t t_req)
{
	TH_LOG("%s: seq %llu at %+.0f ms: %s, total %.1f MiB, available "
	       "%.1f MiB, low %.1f MiB, high %.1f MiB", what,
	       (unsigned long long)n->seq,
	       ((double)n->time_ns - (double)t_req) / 1e6,
	       mb_state_name(n->state), MIB_F(n->total),
	       MIB_F(n->available), MIB_F(n->low), MIB_F(n->high));
}

TEST_F_TIMEOUT(dynmem, caches_follow_balloon_and_virtio_mem, 110)
{
	struct mb_clerk *ca = mb_cache_clerk(self->pool.a);
	struct mb_clerk *cb = mb_cache_clerk(self->pool.b);
	struct mb_clerk_info a0, b0, a1, b1;
	struct mb_notification st, n;
	uint64_t t0, wmark, low1, left, avail, guest, next, t_req;
	int64_t got;
	uint64_t low_a, low_b, grown_a, grown_b, grant;
	struct want w;

	/* 1. Both caches full, then in the broker. */
	ASSERT_EQ(0, lt_cache_fill(self->pool.a, 0, CACHE_BYTES));
	ASSERT_EQ(0, lt_cache_fill(self->pool.b, 1U << 20, CACHE_BYTES));
	ASSERT_EQ(0, mb_broker_add_clerk(self->pool.broker, ca));
	ASSERT_EQ(0, mb_broker_add_clerk(self->pool.broker, cb));

	/*
	 * 2. The working set: after the balloon, three quarters of the low
	 * threshold the smaller total has should be left available.  The
	 * caches' 64 MiB could then take it back above low + hysteresis
	 * but not above the high threshold (3 * low).
	 */
	ASSERT_EQ(0, mb_kmod_get_state(self->k, &st));
	t0 = st.total;
	ASSERT_EQ(0, mb_dynmem_wmark_high(&wmark));
	low1 = mb_dynmem_auto_low(t0 - BALLOON_BYTES, wmark);
	left = BALLOON_BYTES + low1 - low1 / 4;
	got = lt_mem_available();
	ASSERT_LT(0, got);
	avail = (uint64_t)got;
	if (avail < left + 16 * MIB)
		SKIP(return, "guest too small: %.1f MiB available",
		     MIB_F(avail));
	self->ballast_bytes = avail - left;
	self->ballast = mmap(NULL, self->ballast_bytes,
			     PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->ballast) {
		self->ballast = NULL;
	}
	ASSERT_EQ(0, madvise(self->ballast, self->ballast_bytes,
			     MADV_POPULATE_WRITE));
	ASSERT_EQ(0, mb_kmod_get_state(self->k, &st));
	TH_LOG("before: total %.1f MiB, available %.1f MiB with %.1f MiB of "
	       "working set, low %.1f MiB, high %.1f MiB", MIB_F(st.total),
	       MIB_F(st.available), MIB_F(self->ballast_bytes),
	       MIB_F(st.low), MIB_F(st.high));
	ASSERT_NE(MB_STATE_LOW, st.state);
	log_caches(_metadata, self, "full");
	ASSERT_EQ(0, lt_clerk_info("dyn-a", &a0));
	ASSERT_EQ(0, lt_clerk_info("dyn-b", &b0));

	/* 3. Inflate: LOW, and the broker shrinks both caches. */
	next = lt_seen_count(&self->pool.seen);
	ASSERT_EQ(0, mb_host_query_balloon(&guest));
	t_req = mb_dynmem_now_ns();
	ASSERT_EQ(0, mb_host_balloon(guest - BALLOON_BYTES));
	w = (struct want){ .states = 1U << MB_STATE_LOW };
	ASSERT_EQ(0, wait_note(&self->pool.seen, &next, &w, &n));
	log_note(_metadata, "balloon", &n, t_req);
	EXPECT_LT(n.available, n.low);
	EXPECT_LT(n.total, t0 - BALLOON_BYTES / 2);
	log_caches(_metadata, self, "after LOW");
	low_a = mb_clerk_bytes(ca);
	low_b = mb_clerk_bytes(cb);
	ASSERT_EQ(0, lt_clerk_info("dyn-a", &a1));
	ASSERT_EQ(0, lt_clerk_info("dyn-b", &b1));
	EXPECT_LT(low_a, a0.bytes);
	EXPECT_LT(low_b, b0.bytes);
	EXPECT_GT(a1.shrink_count, a0.shrink_count);
	EXPECT_GT(b1.shrink_count, b0.shrink_count);
	EXPECT_GT(a1.shrink_freed, a0.shrink_freed);
	EXPECT_GT(b1.shrink_freed, b0.shrink_freed);

	/*
	 * 4. With all of the balloon in, what the caches gave back keeps
	 * the machine out of LOW: STEADY, and the caches are held near
	 * where they are: together they may grow by a quarter of the
	 * headroom above low, no more.
	 */
	w = (struct want){ .states = (1U << MB_STATE_STEADY) |
				     (1U << MB_STATE_HIGH),
			   .total = t0 - BALLOON_BYTES };
	ASSERT_EQ(0, wait_note(&self->pool.seen, &next, &w, &n));
	log_note(_metadata, "ballooned", &n, t_req);
	EXPECT_EQ(MB_STATE_STEADY, n.state);
	log_caches(_metadata, self, "ballooned");
	low_a = mb_clerk_bytes(ca);
	low_b = mb_clerk_bytes(cb);
	EXPECT_LE(low_a, mb_clerk_target(ca));
	EXPECT_LE(low_b, mb_clerk_target(cb));
	/*
	 * Later STEADY readings may have come since (memory still moves):
	 * the broker's last decision and the notification it was for
	 */
	ASSERT_EQ(0, last_decision(self->pool.broker, self->pool.mon, &n,
				   &grant));
	EXPECT_EQ(MB_STATE_STEADY, n.state);
	EXPECT_LE(grant, (n.available - n.low) / 4);

	/* 5. Deflate: HIGH; refilled, the caches grow. */
	t_req = mb_dynmem_now_ns();
	ASSERT_EQ(0, mb_host_balloon(MB_BALLOON_NONE));
	w = (struct want){ .states = 1U << MB_STATE_HIGH, .total = t0 };
	ASSERT_EQ(0, wait_note(&self->pool.seen, &next, &w, &n));
	log_note(_metadata, "deflated", &n, t_req);
	EXPECT_GT(mb_clerk_target(ca), low_a);
	EXPECT_GT(mb_clerk_target(cb), low_b);
	ASSERT_EQ(0, lt_cache_fill(self->pool.a, 2U << 20, CACHE_BYTES));
	ASSERT_EQ(0, lt_cache_fill(self->pool.b, 3U << 20, CACHE_BYTES));
	log_caches(_metadata, self, "refilled");
	grown_a = mb_clerk_bytes(ca);
	grown_b = mb_clerk_bytes(cb);
	EXPECT_GT(grown_a, low_a);
	EXPECT_GT(grown_b, low_b);

	/* 6. virtio-mem: HIGH with the larger total; they grow further. */
	t_req = mb_dynmem_now_ns();
	ASSERT_EQ(0, mb_host_mem_size(VMEM_BYTES));
	w = (struct want){ .states = 1U << MB_STATE_HIGH,
			   .total = t0 + VMEM_BYTES };
	ASSERT_EQ(0, wait_note(&self->pool.seen, &next, &w, &n));
	log_note(_metadata, "virtio-mem", &n, t_req);
	EXPECT_GT(n.low, st.low);
	EXPECT_GT(n.high, st.high);
	EXPECT_GT(mb_clerk_target(ca), grown_a);
	EXPECT_GT(mb_clerk_target(cb), grown_b);
	ASSERT_EQ(0, lt_cache_fill(self->pool.a, 4U << 20, CACHE_BYTES));
	ASSERT_EQ(0, lt_cache_fill(self->pool.b, 5U << 20, CACHE_BYTES));
	log_caches(_metadata, self, "refilled");
	EXPECT_GT(mb_clerk_bytes(ca), grown_a);
	EXPECT_GT(mb_clerk_bytes(cb), grown_b);
	EXPECT_LE(mb_clerk_bytes(ca), mb_clerk_target(ca));
	EXPECT_LE(mb_clerk_bytes(cb), mb_clerk_target(cb));
}

TEST_HARNESS_MAIN
