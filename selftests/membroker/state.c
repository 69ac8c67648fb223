// SPDX-License-Identifier: GPL-2.0
/*
 * GET_STATE tells the truth: it carries every attribute of a state
 * message, its numbers agree with /proc/meminfo read around it, its state
 * follows from its numbers, and sysfs shows the same state.  VIRTUAL_LOW
 * follows the overcommit mode, and holds however far Committed_AS exceeds
 * CommitLimit.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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
	int mode;

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

	/* VIRTUAL_LOW only under strict accounting, see vlow below. */
	ASSERT_LE(1, cfg.virtual_low_percent);
	ASSERT_GE(100, cfg.virtual_low_percent);
	ASSERT_EQ(0, mb_overcommit_mode(&mode));
	vlow = mode == 2 && st.committed * 100 >=
	       (uint64_t)cfg.virtual_low_percent * st.commit_limit;
	EXPECT_EQ(vlow, !!(st.flags & MEMBROKER_FLAG_VIRTUAL_LOW))
		TH_LOG("committed %llu of %llu, threshold %u%%, mode %d",
		       (unsigned long long)st.committed,
		       (unsigned long long)st.commit_limit,
		       cfg.virtual_low_percent, mode);
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
 * Every evaluation has a cause, and names it.  Queries from many threads
 * at once evaluate in their own context while kicks and timers queue the
 * work item; a run of the work item whose cause an earlier evaluation
 * already took must neither evaluate nor report a reason nobody gave
 * (the poll's, a deferred notification's).  With the poll a second or
 * more apart and nothing held back by the rate limit, the evaluations
 * are the queries' and at most one poll a second.
 */
#define QUERY_THREADS	8
#define QUERY_MS	3000
#define POLL_MS		1000	/* poll_min_ms: the largest allowed */

struct querier {
	pthread_t thread;
	uint64_t end_ns;
	int replies;
	int err;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void *query_loop(void *arg)
{
	struct querier *q = arg;
	struct mb_state st;
	struct mb_nl nl;

	q->err = mb_nl_open(&nl);
	while (!q->err && mono_ns() < q->end_ns) {
		q->err = mb_nl_get_state(&nl, &st);
		if (!q->err)
			q->replies++;
	}
	if (nl.sk)
		mb_nl_close(&nl);
	return NULL;
}

TEST_F(state, concurrent_queries_have_a_cause)
{
	struct querier q[QUERY_THREADS];
	struct mb_config saved, cfg;
	struct mb_evals e0, e1;
	uint64_t end, replies = 0;
	int i;

	ASSERT_EQ(0, mb_nl_get_config(&self->nl, &saved));
	memset(&cfg, 0, sizeof(cfg));
	cfg.have = (1ULL << MEMBROKER_A_POLL_MIN_MS) |
		   (1ULL << MEMBROKER_A_POLL_MAX_MS);
	cfg.poll_min_ms = POLL_MS;
	cfg.poll_max_ms = 60000;
	ASSERT_EQ(0, mb_nl_set_config(&self->nl, &cfg));

	ASSERT_EQ(0, mb_evals_read(&e0));
	end = mono_ns() + QUERY_MS * 1000000ULL;
	for (i = 0; i < QUERY_THREADS; i++) {
		memset(&q[i], 0, sizeof(q[i]));
		q[i].end_ns = end;
		ASSERT_EQ(0, pthread_create(&q[i].thread, NULL, query_loop,
					    &q[i]));
	}
	for (i = 0; i < QUERY_THREADS; i++) {
		pthread_join(q[i].thread, NULL);
		EXPECT_EQ(0, q[i].err);
		replies += q[i].replies;
	}
	ASSERT_EQ(0, mb_evals_read(&e1));
	EXPECT_EQ(0, mb_nl_set_config(&self->nl, &saved));

	TH_LOG("%llu replies, %llu evaluations: %llu query, %llu poll, "
	       "%llu deferred", (unsigned long long)replies,
	       (unsigned long long)(e1.total - e0.total),
	       (unsigned long long)(e1.reason[MEMBROKER_REASON_QUERY] -
				    e0.reason[MEMBROKER_REASON_QUERY]),
	       (unsigned long long)(e1.reason[MEMBROKER_REASON_POLL] -
				    e0.reason[MEMBROKER_REASON_POLL]),
	       (unsigned long long)(e1.reason[MEMBROKER_REASON_DEFERRED] -
				    e0.reason[MEMBROKER_REASON_DEFERRED]));
	/* Nothing was rate-limited, and the poll is POLL_MS apart. */
	EXPECT_EQ(e0.reason[MEMBROKER_REASON_DEFERRED],
		  e1.reason[MEMBROKER_REASON_DEFERRED]);
	EXPECT_GE(e0.reason[MEMBROKER_REASON_POLL] + QUERY_MS / POLL_MS + 1,
		  e1.reason[MEMBROKER_REASON_POLL]);
	/* No more evaluations than causes */
	EXPECT_GE(e0.total + replies + QUERY_MS / POLL_MS + 1, e1.total);
}

/*
 * VIRTUAL_LOW follows vm.overcommit_memory.  Under strict accounting (2)
 * the kernel refuses new commitments at CommitLimit, and the flag says
 * Committed_AS is within virtual_low_percent of it.  Under the heuristic
 * (0) and "always" (1) modes CommitLimit is not enforced and nothing
 * global predicts a refusal: the flag is never set, however far
 * Committed_AS exceeds CommitLimit.
 *
 * A System V segment is charged to Committed_AS in full at shmget(),
 * without touching a page, so huge commitments cost nothing.  Under mode
 * 1 any size will do; 2^62 bytes is one whose product with 100 wraps to
 * a multiple of 2^64, which would hide it from a naive committed * 100 >=
 * limit * percent.  Under mode 2 the tests raise CommitLimit to 2^62
 * (vm.overcommit_kbytes) rather than charge beyond the real one: a guest
 * whose every process is refused memory would not survive a test that
 * dies half-way (a sanitizer's runtime, init's next fork).  The module
 * reads the mode and CommitLimit at most once a second, so the tests wait
 * (bounded) for the flag to settle after a change.
 */
#define OVERCOMMIT	"/proc/sys/vm/overcommit_memory"
#define OC_RATIO	"/proc/sys/vm/overcommit_ratio"
#define OC_KBYTES	"/proc/sys/vm/overcommit_kbytes"
#define HUGE_SHM	(1ULL << 62)
/* Bound for the module to see a new overcommit mode: a hang, not a speed */
#define SETTLE_MS	5000

FIXTURE(vlow) {
	struct mb_nl nl;
	char overcommit[16];
	char ratio[32];
	char kbytes[32];
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
	ASSERT_EQ(0, read_file(OC_RATIO, self->ratio, sizeof(self->ratio)));
	ASSERT_EQ(0, read_file(OC_KBYTES, self->kbytes, sizeof(self->kbytes)));
	ASSERT_EQ(0, read_file(OVERCOMMIT, self->overcommit,
			       sizeof(self->overcommit)));
}

FIXTURE_TEARDOWN(vlow)
{
	uint64_t flags = ~0ULL;
	int i;

	/*
	 * Mode first, then the charge, then the limit: never strict
	 * accounting with more committed than the limit allows.
	 */
	if (self->overcommit[0])
		write_file(OVERCOMMIT, self->overcommit);
	if (self->shmid >= 0)
		shmctl(self->shmid, IPC_RMID, NULL);
	/* Writing one of the two clears the other. */
	if (strtoull(self->kbytes, NULL, 10))
		write_file(OC_KBYTES, self->kbytes);
	else
		write_file(OC_RATIO, self->ratio);
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

/*
 * GET_STATE until VIRTUAL_LOW is @want, for at most SETTLE_MS; @st is the
 * last reply.
 */
static void __settle(struct __test_metadata *_metadata, struct mb_nl *nl,
		     bool want, struct mb_state *st)
{
	int i;

	for (i = 0; i < SETTLE_MS / 50; i++) {
		ASSERT_EQ(0, mb_nl_get_state(nl, st));
		if (!!(st->flags & MEMBROKER_FLAG_VIRTUAL_LOW) == want)
			return;
		usleep(50000);
	}
}

#define settle(want, st) __settle(_metadata, &self->nl, want, st)

/* Committed_AS charged with 2^62 bytes, under mode 1 */
static void __huge_segment(struct __test_metadata *_metadata,
			   FIXTURE_DATA(vlow) *self)
{
	struct mb_meminfo mi;

	ASSERT_EQ(0, write_file(OVERCOMMIT, "1"));
	self->shmid = shmget(IPC_PRIVATE, HUGE_SHM, IPC_CREAT | 0600);
	ASSERT_LE(0, self->shmid)
		TH_LOG("shmget of 2^62 bytes: %s", strerror(errno));
	ASSERT_EQ(0, mb_meminfo_read(&mi));
	ASSERT_LE(HUGE_SHM, mi.committed);
}

#define huge_segment() __huge_segment(_metadata, self)

static void log_state(struct __test_metadata *_metadata,
		      const struct mb_state *st)
{
	TH_LOG("committed %llu, limit %llu, flags %u",
	       (unsigned long long)st->committed,
	       (unsigned long long)st->commit_limit, st->flags);
}

/*
 * What the flag predicts under mode 2: with Committed_AS past
 * virtual_low_percent of CommitLimit it is set, and a commitment past
 * CommitLimit is refused; with the charge gone it clears.  At a limit of
 * 2^62 bytes, where Committed_AS * 100 does not fit in 64 bits.
 */
TEST_F(vlow, strict_near_the_limit)
{
	uint64_t want, room;
	struct mb_meminfo mi;
	struct mb_config cfg;
	struct mb_state st;
	char kb[32];
	int shmid;

	ASSERT_EQ(0, mb_nl_get_config(&self->nl, &cfg));
	snprintf(kb, sizeof(kb), "%llu", HUGE_SHM >> 10);
	ASSERT_EQ(0, write_file(OC_KBYTES, kb));
	ASSERT_EQ(0, write_file(OVERCOMMIT, "2"));
	ASSERT_EQ(0, mb_meminfo_read(&mi));
	ASSERT_LE(HUGE_SHM, mi.commit_limit);
	/* Halfway between the flag's threshold and the limit */
	want = mi.commit_limit / 200 * (cfg.virtual_low_percent + 100);
	ASSERT_LT(mi.committed, want);
	self->shmid = shmget(IPC_PRIVATE, want - mi.committed,
			     IPC_CREAT | 0600);
	ASSERT_LE(0, self->shmid) TH_LOG("shmget: %s", strerror(errno));

	settle(true, &st);
	EXPECT_EQ(MEMBROKER_FLAG_VIRTUAL_LOW,
		  st.flags & MEMBROKER_FLAG_VIRTUAL_LOW)
		log_state(_metadata, &st);
	EXPECT_LE(HUGE_SHM / 100 * cfg.virtual_low_percent, st.committed);
	ASSERT_EQ(0, mb_meminfo_read(&mi));
	room = mi.commit_limit > mi.committed ?
	       mi.commit_limit - mi.committed : 0;
	shmid = shmget(IPC_PRIVATE, room + 4 * MIB, IPC_CREAT | 0600);
	EXPECT_EQ(-1, shmid);
	EXPECT_EQ(ENOMEM, errno);
	if (shmid >= 0)
		shmctl(shmid, IPC_RMID, NULL);

	ASSERT_EQ(0, shmctl(self->shmid, IPC_RMID, NULL));
	self->shmid = -1;
	settle(false, &st);
	EXPECT_EQ(0, st.flags & MEMBROKER_FLAG_VIRTUAL_LOW)
		log_state(_metadata, &st);
}

TEST_F(vlow, heuristic_never)
{
	struct mb_state st;

	huge_segment();
	ASSERT_EQ(0, write_file(OVERCOMMIT, "0"));
	settle(false, &st);
	EXPECT_LE(HUGE_SHM, st.committed);
	EXPECT_EQ(0, st.flags & MEMBROKER_FLAG_VIRTUAL_LOW)
		log_state(_metadata, &st);
}

TEST_F(vlow, always_never)
{
	struct mb_state st;

	huge_segment();
	settle(false, &st);
	EXPECT_LE(HUGE_SHM, st.committed);
	EXPECT_EQ(0, st.flags & MEMBROKER_FLAG_VIRTUAL_LOW)
		log_state(_metadata, &st);

	/* And the charge goes away with the segment. */
	ASSERT_EQ(0, shmctl(self->shmid, IPC_RMID, NULL));
	self->shmid = -1;
	ASSERT_EQ(0, mb_nl_get_state(&self->nl, &st));
	EXPECT_GT(HUGE_SHM, st.committed);
}

TEST_HARNESS_MAIN
