// SPDX-License-Identifier: GPL-2.0
/*
 * GET_STATE tells the truth: it carries every attribute of a state
 * message, its numbers agree with /proc/meminfo read around it, its state
 * follows from its numbers, and sysfs shows the same state.  VIRTUAL_LOW
 * holds however far Committed_AS exceeds CommitLimit.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>

#include "mb_test.h"

/*
 * Memory moves a little between reading /proc/meminfo and the module's
 * evaluation even in an idle VM (per-cpu counters, page cache of the
 * test itself): allow this much on top of the before/after range.
 */
#define SLACK	(4 * MIB)

FIXTURE(state) {
	struct mb_nl nl;
};

FIXTURE_SETUP(state)
{
	MB_OPEN_OR_SKIP(&self->nl);
}

FIXTURE_TEARDOWN(state)
{
	mb_nl_close(&self->nl);
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

static bool within(uint64_t v, uint64_t a, uint64_t b)
{
	uint64_t lo = min_u64(a, b), hi = max_u64(a, b);

	return v + SLACK >= lo && v <= hi + SLACK;
}

TEST_F(state, carries_every_attribute)
{
	struct mb_state st;

	ASSERT_EQ(0, mb_nl_get_state(&self->nl, &st));
	EXPECT_EQ(MB_STATE_ATTRS, st.have & MB_STATE_ATTRS);
	EXPECT_EQ(MEMBROKER_REASON_QUERY, st.reason);
	EXPECT_NE(0, st.timestamp_ns);
	EXPECT_EQ(0, st.flags & ~MEMBROKER_FLAG_VIRTUAL_LOW);
}

TEST_F(state, agrees_with_meminfo)
{
	struct mb_meminfo before, after;
	struct mb_state st;

	ASSERT_EQ(0, mb_meminfo_read(&before));
	ASSERT_EQ(0, mb_nl_get_state(&self->nl, &st));
	ASSERT_EQ(0, mb_meminfo_read(&after));

	EXPECT_EQ(before.total, st.total);
	EXPECT_EQ(after.total, st.total);
	EXPECT_TRUE(within(st.available, before.available, after.available))
		TH_LOG("available %llu, meminfo %llu..%llu",
		       (unsigned long long)st.available,
		       (unsigned long long)before.available,
		       (unsigned long long)after.available);
	EXPECT_TRUE(within(st.committed, before.committed, after.committed))
		TH_LOG("committed %llu, meminfo %llu..%llu",
		       (unsigned long long)st.committed,
		       (unsigned long long)before.committed,
		       (unsigned long long)after.committed);
	EXPECT_TRUE(within(st.commit_limit, before.commit_limit,
			   after.commit_limit))
		TH_LOG("commit limit %llu, meminfo %llu..%llu",
		       (unsigned long long)st.commit_limit,
		       (unsigned long long)before.commit_limit,
		       (unsigned long long)after.commit_limit);
}

TEST_F(state, follows_from_thresholds)
{
	struct mb_config cfg;
	struct mb_state st;
	uint64_t half_gap;
	bool vlow;

	ASSERT_EQ(0, mb_nl_get_state(&self->nl, &st));
	ASSERT_EQ(0, mb_nl_get_config(&self->nl, &cfg));

	ASSERT_LT(0, st.low);
	ASSERT_LT(st.low, st.high);
	EXPECT_LE(st.high, st.total);
	EXPECT_LE(st.available, st.total);

	/*
	 * Hysteresis lets a state outlive its condition, but never by more
	 * than half the gap between the thresholds (the uapi's bound).
	 */
	half_gap = (st.high - st.low) / 2;
	EXPECT_LE(MEMBROKER_STATE_LOW, st.state);
	EXPECT_GE(MEMBROKER_STATE_HIGH, st.state);
	switch (st.state) {
	case MEMBROKER_STATE_LOW:
		EXPECT_LT(st.available, st.low + half_gap);
		break;
	case MEMBROKER_STATE_STEADY:
		EXPECT_LE(st.low, st.available);
		EXPECT_LE(st.available, st.high);
		break;
	case MEMBROKER_STATE_HIGH:
		EXPECT_GT(st.available, st.high - half_gap);
		break;
	}
	/* An available figure beyond both bands decides the state alone. */
	if (st.available < st.low)
		EXPECT_EQ(MEMBROKER_STATE_LOW, st.state);
	if (st.available > st.high)
		EXPECT_EQ(MEMBROKER_STATE_HIGH, st.state);

	ASSERT_LE(1, cfg.virtual_low_percent);
	ASSERT_GE(100, cfg.virtual_low_percent);
	vlow = st.committed * 100 >=
	       (uint64_t)cfg.virtual_low_percent * st.commit_limit;
	EXPECT_EQ(vlow, !!(st.flags & MEMBROKER_FLAG_VIRTUAL_LOW))
		TH_LOG("committed %llu of %llu, threshold %u%%",
		       (unsigned long long)st.committed,
		       (unsigned long long)st.commit_limit,
		       cfg.virtual_low_percent);
}

/* The reply's seq is that of the latest notification: it never runs ahead */
TEST_F(state, seq_is_stable_while_idle)
{
	struct mb_state a, b;

	ASSERT_EQ(0, mb_nl_get_state(&self->nl, &a));
	ASSERT_EQ(0, mb_nl_get_state(&self->nl, &b));
	EXPECT_LE(a.seq, b.seq);
	EXPECT_LE(a.timestamp_ns, b.timestamp_ns);
	if (a.state == b.state && a.flags == b.flags)
		EXPECT_EQ(a.seq, b.seq);
}

TEST_F(state, sysfs_agrees)
{
	uint64_t seq0, seq1, total, low, high, flags, avail;
	struct mb_state st;
	uint32_t state;
	int tries;

	/* Retry until no notification slipped in between the two views. */
	for (tries = 0; tries < 10; tries++) {
		ASSERT_EQ(0, mb_nl_get_state(&self->nl, &st));
		ASSERT_EQ(0, mb_sysfs_read_u64("seq", &seq0));
		ASSERT_EQ(0, mb_sysfs_read_state(&state));
		ASSERT_EQ(0, mb_sysfs_read_u64("flags", &flags));
		ASSERT_EQ(0, mb_sysfs_read_u64("total_bytes", &total));
		ASSERT_EQ(0, mb_sysfs_read_u64("low_bytes", &low));
		ASSERT_EQ(0, mb_sysfs_read_u64("high_bytes", &high));
		ASSERT_EQ(0, mb_sysfs_read_u64("available_bytes", &avail));
		ASSERT_EQ(0, mb_sysfs_read_u64("seq", &seq1));
		if (seq0 == seq1 && seq0 == st.seq)
			break;
	}
	ASSERT_LT(tries, 10);
	EXPECT_EQ(st.state, state);
	EXPECT_EQ(st.flags, flags);
	EXPECT_EQ(st.total, total);
	EXPECT_EQ(st.low, low);
	EXPECT_EQ(st.high, high);
	EXPECT_LT(0, avail);
	EXPECT_LE(avail, total);
}

/*
 * Every GET_STATE is an evaluation, counted in evaluations/; reading the
 * counters is none.  A request's evaluation carries QUERY unless a more
 * important reason was pending, so only the total is exact.
 */
TEST_F(state, evaluations_are_counted)
{
	struct mb_evals e0, e1, e2;
	struct mb_state st;
	uint64_t sum;
	uint32_t r;
	int i;

	ASSERT_EQ(0, mb_evals_read(&e0));
	for (i = 0; i < 10; i++)
		ASSERT_EQ(0, mb_nl_get_state(&self->nl, &st));
	ASSERT_EQ(0, mb_evals_read(&e1));
	ASSERT_EQ(0, mb_evals_read(&e2));

	EXPECT_LE(e0.total + 10, e1.total);
	EXPECT_LT(e0.reason[MEMBROKER_REASON_QUERY],
		  e1.reason[MEMBROKER_REASON_QUERY]);
	EXPECT_LE(1, e1.reason[MEMBROKER_REASON_LOAD]);
	/* Idle, between two reads: at most a poll came in between. */
	EXPECT_GE(e1.total + 2, e2.total);
	for (sum = 0, r = 0; r <= MEMBROKER_REASON_MAX; r++)
		sum += e2.reason[r];
	EXPECT_LE(e1.total, sum);
}

/*
 * VIRTUAL_LOW when Committed_AS is beyond any product with 100 that fits
 * in 64 bits.  Under overcommit_memory=1 a System V segment is charged to
 * Committed_AS in full at shmget(), without touching a page; 2^62 bytes
 * is a size whose product with 100 wraps to a multiple of 2^64, which
 * hides it from a naive committed * 100 >= limit * percent.
 */
#define OVERCOMMIT	"/proc/sys/vm/overcommit_memory"
#define HUGE_SHM	(1ULL << 62)

FIXTURE(vlow) {
	struct mb_nl nl;
	char overcommit[16];
	uint64_t flags0;
	int shmid;
};

static int read_file(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "r");
	int ok;

	if (!f)
		return -errno;
	ok = fgets(buf, size, f) != NULL;
	fclose(f);
	return ok ? 0 : -EIO;
}

static int write_file(const char *path, const char *val)
{
	FILE *f = fopen(path, "w");
	int ok;

	if (!f)
		return -errno;
	ok = fputs(val, f) >= 0;
	return fclose(f) == 0 && ok ? 0 : -EIO;
}

FIXTURE_SETUP(vlow)
{
	self->shmid = -1;
	self->overcommit[0] = '\0';
	MB_OPEN_OR_SKIP(&self->nl);
	ASSERT_EQ(0, mb_sysfs_read_u64("flags", &self->flags0));
	ASSERT_EQ(0, read_file(OVERCOMMIT, self->overcommit,
			       sizeof(self->overcommit)));
}

FIXTURE_TEARDOWN(vlow)
{
	uint64_t flags = ~0ULL;
	int i;

	if (self->shmid >= 0)
		shmctl(self->shmid, IPC_RMID, NULL);
	if (self->overcommit[0])
		write_file(OVERCOMMIT, self->overcommit);
	/*
	 * Let the relaxation (held back by the rate limit) go out, so the
	 * next test starts from a quiet module; this bounds a hang only.
	 */
	for (i = 0; i < 2000 && flags != self->flags0; i++) {
		if (mb_sysfs_read_u64("flags", &flags))
			break;
		if (flags != self->flags0)
			usleep(10000);
	}
	mb_nl_close(&self->nl);
}

TEST_F(vlow, committed_beyond_2_64_over_100)
{
	struct mb_meminfo mi;
	struct mb_state st;

	ASSERT_EQ(0, write_file(OVERCOMMIT, "1"));
	self->shmid = shmget(IPC_PRIVATE, HUGE_SHM, IPC_CREAT | 0600);
	ASSERT_LE(0, self->shmid)
		TH_LOG("shmget of 2^62 bytes: %s", strerror(errno));

	ASSERT_EQ(0, mb_meminfo_read(&mi));
	ASSERT_LE(HUGE_SHM, mi.committed);
	ASSERT_EQ(0, mb_nl_get_state(&self->nl, &st));
	EXPECT_LE(HUGE_SHM, st.committed);
	ASSERT_LT(0, st.commit_limit);
	EXPECT_EQ(MEMBROKER_FLAG_VIRTUAL_LOW,
		  st.flags & MEMBROKER_FLAG_VIRTUAL_LOW)
		TH_LOG("committed %llu, limit %llu, flags %u",
		       (unsigned long long)st.committed,
		       (unsigned long long)st.commit_limit, st.flags);

	/* And it goes away with the segment. */
	ASSERT_EQ(0, shmctl(self->shmid, IPC_RMID, NULL));
	self->shmid = -1;
	ASSERT_EQ(0, mb_nl_get_state(&self->nl, &st));
	EXPECT_GT(HUGE_SHM, st.committed);
}

TEST_HARNESS_MAIN
