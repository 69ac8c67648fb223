// SPDX-License-Identifier: GPL-2.0
/*
 * Memory that changes size under the module: the host inflates the
 * virtio-balloon or resizes virtio-mem (through mb_host.h), and the module
 * must follow.  What listeners rely on:
 *
 *  - a balloon that takes MemAvailable below the low threshold brings a
 *    LOW whose total is smaller by the balloon; deflating brings STEADY or
 *    HIGH and the old total back;
 *  - a total that moves (balloon or virtio-mem) is notified, with the
 *    automatic thresholds recomputed by the documented formula
 *    (Documentation/membroker.rst, "Thresholds") for the new total, the
 *    same that GET_STATE reports while GET_CONFIG still says "automatic";
 *  - through all of it, every notification has the next sequence number
 *    and a timestamp no earlier than the one before.
 *
 * Sizes are checked with tolerances; times are only logged (the module's
 * timestamps against the moment the request was made).  Each wait is
 * bounded so that a missing notification fails the test rather than
 * hanging it, and the teardown gives the VM all of its memory back,
 * whatever happened, before the next test starts.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "mb_test.h"
#include "mb_dynmem.h"
#include "mb_host.h"

#define BALLOON_BYTES	(128 * MIB)	/* balloon inflated by this much */
#define VMEM_BYTES	(256 * MIB)	/* virtio-mem grown by this much */

/*
 * The module publishes total memory to 1 MiB (smaller moves are not
 * notified) and bases the thresholds on the total it last acted upon.
 */
#define TOTAL_SLACK	(2 * MIB)
#define THRESH_SLACK	MIB

#define MIB_F(x)	((double)(x) / MIB)

FIXTURE(dynmem) {
	struct mb_nl nl;
	struct mb_nl mc;
	struct mb_config saved;	/* configuration before the test */
	bool restore_config;
	struct mb_state last;	/* last notification, or the initial state */
	struct mb_state entered_low;	/* the latest that went into LOW */
	bool heard;		/* a notification after the initial state */
	int quiet_ms;		/* see wait_quiet() */
	uint64_t t_req;		/* when the latest request was made */
	pid_t hog;
	pid_t hog2;		/* tops the first up, see balloon_low_... */
	pid_t hog3[4];		/* top up after the balloon, likewise */
};

FIXTURE_SETUP(dynmem)
{
	struct mb_config cfg;
	int err;

	self->hog = -1;
	self->hog2 = -1;
	for (int i = 0; i < 4; i++)
		self->hog3[i] = -1;
	self->t_req = mb_dynmem_now_ns();
	MB_OPEN_OR_SKIP(&self->nl);
	if (!mb_host_available())
		MB_SKIP_SETUP("no host control channel on " MB_HOST_TTY);
	/* Whatever ran before, start from the VM's whole memory. */
	ASSERT_EQ(0, mb_dynmem_restore(MB_DYNMEM_TIMEOUT_MS));

	ASSERT_EQ(0, mb_nl_open(&self->mc));
	ASSERT_EQ(0, mb_nl_subscribe(&self->mc));

	/*
	 * The automatic thresholds are what this test is about.  A setup
	 * that fails has no teardown: put the configuration back here then.
	 */
	ASSERT_EQ(0, mb_nl_get_config(&self->nl, &self->saved));
	self->quiet_ms = 2 * (int)self->saved.ratelimit_ms;
	if (self->quiet_ms < 500)
		self->quiet_ms = 500;
	if (self->saved.low || self->saved.high || self->saved.hysteresis) {
		cfg = self->saved;
		cfg.low = 0;
		cfg.high = 0;
		cfg.hysteresis = 0;
		ASSERT_EQ(0, mb_nl_set_config(&self->nl, &cfg));
		self->restore_config = true;
	}

	/* Subscribed first: nothing after this seq can be missed. */
	err = mb_nl_get_state(&self->nl, &self->last);
	if (err && self->restore_config)
		mb_nl_set_config(&self->nl, &self->saved);
	ASSERT_EQ(0, err);
}

FIXTURE_TEARDOWN(dynmem)
{
	if (self->hog > 0) {
		kill(self->hog, SIGKILL);
		waitpid(self->hog, NULL, 0);
	}
	if (self->hog2 > 0) {
		kill(self->hog2, SIGKILL);
		waitpid(self->hog2, NULL, 0);
	}
	for (int i = 0; i < 4; i++) {
		if (self->hog3[i] > 0) {
			kill(self->hog3[i], SIGKILL);
			waitpid(self->hog3[i], NULL, 0);
		}
	}
	/* No ASSERT here: a failing one would jump back into the test. */
	EXPECT_EQ(0, mb_dynmem_restore(MB_DYNMEM_TIMEOUT_MS));
	if (self->restore_config)
		EXPECT_EQ(0, mb_nl_set_config(&self->nl, &self->saved));
	mb_nl_close(&self->mc);
	mb_nl_close(&self->nl);
}

static bool near(uint64_t a, uint64_t b, uint64_t slack)
{
	return a > b ? a - b <= slack : b - a <= slack;
}

/* The thresholds of @s are the formula's for its total. */
static void expect_auto(struct __test_metadata *_metadata,
			const struct mb_state *s)
{
	uint64_t wmark, low, high;

	ASSERT_EQ(0, mb_dynmem_wmark_high(&wmark));
	low = mb_dynmem_auto_low(s->total, wmark);
	high = mb_dynmem_auto_high(low, s->total);
	EXPECT_TRUE(near(s->low, low, THRESH_SLACK))
		TH_LOG("total %.1f MiB: low %.1f MiB, formula %.1f MiB",
		       MIB_F(s->total), MIB_F(s->low), MIB_F(low));
	EXPECT_TRUE(near(s->high, high, THRESH_SLACK))
		TH_LOG("total %.1f MiB: high %.1f MiB, formula %.1f MiB",
		       MIB_F(s->total), MIB_F(s->high), MIB_F(high));
}

/*
 * The next notification within @timeout_ms; it must continue the
 * sequence.  Returns 0 or -ETIMEDOUT.
 */
static int recv_within(struct __test_metadata *_metadata,
		       FIXTURE_DATA(dynmem) *self, struct mb_state *n,
		       int timeout_ms)
{
	int err;

	for (;;) {
		err = mb_nl_recv_notify(&self->mc, n, timeout_ms);
		if (err == -ETIMEDOUT)
			return err;
		EXPECT_EQ(0, err) TH_LOG("waiting for a notification: %s",
					 strerror(-err));
		if (err)
			return err;
		EXPECT_EQ(MB_STATE_ATTRS, n->have & MB_STATE_ATTRS);
		/* Sent before our GET_STATE: already accounted for. */
		if (!self->heard && n->seq <= self->last.seq)
			continue;
		break;
	}
	self->heard = true;
	EXPECT_EQ(self->last.seq + 1, n->seq);
	EXPECT_LE(self->last.timestamp_ns, n->timestamp_ns);
	TH_LOG("seq %llu at %+.0f ms: %s%s (%s), total %.1f MiB, "
	       "available %.1f MiB, low %.1f MiB, high %.1f MiB",
	       (unsigned long long)n->seq,
	       ((double)n->timestamp_ns - (double)self->t_req) / 1e6,
	       mb_state_name(n->state),
	       n->flags & MEMBROKER_FLAG_VIRTUAL_LOW ? "+virtual_low" : "",
	       mb_reason_name(n->reason), MIB_F(n->total),
	       MIB_F(n->available), MIB_F(n->low), MIB_F(n->high));
	if (n->state == MEMBROKER_STATE_LOW &&
	    self->last.state != MEMBROKER_STATE_LOW)
		self->entered_low = *n;
	self->last = *n;
	return 0;
}

/* The next notification: one must come. */
static void recv_next(struct __test_metadata *_metadata,
		      FIXTURE_DATA(dynmem) *self, struct mb_state *n)
{
	int err = recv_within(_metadata, self, n, MB_NOTIFY_TIMEOUT_MS);

	ASSERT_EQ(0, err) TH_LOG("no notification: %s", strerror(-err));
}

/* Notifications until one has a state in @want (bits 1 << state). */
static void wait_state(struct __test_metadata *_metadata,
		       FIXTURE_DATA(dynmem) *self, unsigned int want,
		       struct mb_state *out)
{
	do
		recv_next(_metadata, self, out);
	while (!(want & (1U << out->state)));
}

/* The latest notification, once it shows a total of about @total. */
static void wait_total(struct __test_metadata *_metadata,
		       FIXTURE_DATA(dynmem) *self, uint64_t total,
		       struct mb_state *out)
{
	*out = self->last;
	while (!self->heard || !near(out->total, total, TOTAL_SLACK))
		recv_next(_metadata, self, out);
}

/*
 * GET_CONFIG still says "automatic", and GET_STATE agrees with the latest
 * notification on total and thresholds.  A change GET_STATE sees may not
 * be published yet (the rate limit holds it back for a moment): then a
 * notification must follow, and GET_STATE is asked again.
 */
static void expect_consistent(struct __test_metadata *_metadata,
			      FIXTURE_DATA(dynmem) *self)
{
	uint64_t deadline = mb_dynmem_now_ns() +
			    MB_NOTIFY_TIMEOUT_MS * 1000000ULL;
	struct mb_config cfg;
	struct mb_state st, n;
	int err;

	ASSERT_EQ(0, mb_nl_get_config(&self->nl, &cfg));
	EXPECT_EQ(0, cfg.low);
	EXPECT_EQ(0, cfg.high);
	for (;;) {
		ASSERT_EQ(0, mb_nl_get_state(&self->nl, &st));
		ASSERT_LE(self->last.seq, st.seq);
		while (self->last.seq < st.seq)
			recv_next(_metadata, self, &n);
		if ((near(st.total, self->last.total, MIB) &&
		     near(st.low, self->last.low, THRESH_SLACK) &&
		     near(st.high, self->last.high, THRESH_SLACK)) ||
		    mb_dynmem_now_ns() > deadline)
			break;
		/* Not an assertion: GET_STATE is simply asked again. */
		err = recv_within(_metadata, self, &n, 500);
		ASSERT_TRUE(err == 0 || err == -ETIMEDOUT);
	}
	EXPECT_TRUE(near(st.total, self->last.total, MIB));
	EXPECT_TRUE(near(st.low, self->last.low, THRESH_SLACK));
	EXPECT_TRUE(near(st.high, self->last.high, THRESH_SLACK));
	expect_auto(_metadata, &st);
}

/*
 * Let the module fall quiet: no notification for longer than its rate
 * limit, so that the change a request causes is published as soon as it
 * is seen, under its own reason.  Bounded: a module that keeps talking in
 * an idle VM fails here.
 */
static void wait_quiet(struct __test_metadata *_metadata,
		       FIXTURE_DATA(dynmem) *self)
{
	uint64_t deadline = mb_dynmem_now_ns() +
			    MB_NOTIFY_TIMEOUT_MS * 1000000ULL;
	struct mb_state n;
	int err;

	while (!(err = recv_within(_metadata, self, &n, self->quiet_ms)))
		ASSERT_GT(deadline, mb_dynmem_now_ns())
			TH_LOG("notifications keep coming");
	ASSERT_EQ(-ETIMEDOUT, err);
}

/* Make a request to the host once all is quiet, noting when (for the log) */
#define REQUEST(call) do {						\
	wait_quiet(_metadata, self);					\
	self->t_req = mb_dynmem_now_ns();				\
	TH_LOG("request: %s", #call);					\
	ASSERT_EQ(0, call);						\
} while (0)

/*
 * A process that holds @bytes of anonymous memory: the guest's workload,
 * which the balloon then squeezes.  The kernel faults the pages in
 * (MADV_POPULATE_WRITE), which costs a sanitizer build nothing extra.
 */
static pid_t start_hog(uint64_t bytes)
{
	int ready[2];
	pid_t pid;
	char c;

	if (pipe2(ready, O_CLOEXEC))
		return -errno;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		char *p;

		close(ready[0]);
		p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED || madvise(p, bytes, MADV_POPULATE_WRITE))
			_exit(1);
		if (write(ready[1], "r", 1) != 1)
			_exit(2);
		for (;;)
			pause();
	}
	close(ready[1]);
	/* EOF instead of "r": the hog failed (or was OOM-killed). */
	if (read(ready[0], &c, 1) != 1) {
		close(ready[0]);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return -ENOMEM;
	}
	close(ready[0]);
	return pid;
}

/* Drop the clean page cache and reclaimable slab (drop_caches 3) */
static int drop_caches(void)
{
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
	int err = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, "3", 1) != 1)
		err = -errno;
	close(fd);
	return err;
}

/*
 * A loaded guest whose host takes memory back.  The hog leaves the
 * balloon's size plus half the low threshold the smaller total will have:
 * the balloon alone then takes MemAvailable below low, near the end of
 * its inflation.
 *
 * That needs MemAvailable to fall by what the hog and the balloon take,
 * which it does on 6.1 (to the MiB), but not quite on newer kernels: on
 * 6.12 and 7.3 the hog left 5-17 MiB more than asked and the 128 MiB
 * balloon took 116-121 MiB off MemAvailable (8.5 MiB less with the caches
 * dropped first on 7.3; 12 MiB less without).  So the caches are dropped
 * first, what the hog left is measured and topped up to the target, and
 * the target is half the low threshold below it rather than a quarter,
 * which 7.3 missed by 1.3 MiB.  On 6.1 that leaves about 16 MiB available
 * at the end, well above the watermarks.
 *
 * Even so, 7.3 once let the whole balloon take only 110 MiB off
 * MemAvailable and stayed 2 MiB above the new low threshold for good.
 * What this test is about is that the total, the thresholds and the
 * state follow the balloon, not how the kernel estimates MemAvailable:
 * so once all of the balloon is in, whatever is still missing to half
 * the new low is taken by one more hog (said in the log), and LOW must
 * then come with the smaller total.
 */
TEST_F_TIMEOUT(dynmem, balloon_low_then_deflate, 150)
{
	uint64_t t0 = self->last.total, l0 = self->last.low;
	uint64_t h0 = self->last.high, wmark, low1, left, guest;
	struct mb_meminfo mi;
	struct mb_state n, st;
	int i, err;

	expect_auto(_metadata, &self->last);
	ASSERT_NE(MEMBROKER_STATE_LOW, self->last.state);

	ASSERT_EQ(0, mb_dynmem_wmark_high(&wmark));
	low1 = mb_dynmem_auto_low(t0 - BALLOON_BYTES, wmark);
	left = BALLOON_BYTES + low1 / 2;
	ASSERT_EQ(0, drop_caches());
	ASSERT_EQ(0, mb_meminfo_read(&mi));
	if (mi.available < left + 32 * MIB)
		SKIP(return, "guest too small: %.1f MiB available",
		     MIB_F(mi.available));
	self->hog = start_hog(mi.available - left);
	ASSERT_LT(0, self->hog) TH_LOG("hog: %s", strerror(-self->hog));
	ASSERT_EQ(0, mb_meminfo_read(&mi));
	if (mi.available > left + MIB) {
		TH_LOG("hog left %.1f MiB, %.1f MiB more than asked",
		       MIB_F(mi.available), MIB_F(mi.available - left));
		self->hog2 = start_hog(mi.available - left);
		ASSERT_LT(0, self->hog2)
			TH_LOG("hog: %s", strerror(-self->hog2));
	}
	ASSERT_EQ(0, mb_nl_get_state(&self->nl, &st));
	TH_LOG("before: total %.1f MiB, available %.1f MiB with the hog, "
	       "low %.1f MiB, high %.1f MiB", MIB_F(t0),
	       MIB_F(st.available), MIB_F(l0), MIB_F(h0));
	/* The workload alone must not be what brings LOW. */
	ASSERT_NE(MEMBROKER_STATE_LOW, st.state);

	/* Inflate: the balloon taken off the total, and LOW. */
	ASSERT_EQ(0, mb_host_query_balloon(&guest));
	REQUEST(mb_host_balloon(guest - BALLOON_BYTES));
	wait_total(_metadata, self, t0 - BALLOON_BYTES, &n);
	/*
	 * A hog's bytes do not all come off MemAvailable either (32.6 MiB
	 * took 17.2 off it once on 6.1): top up again while no LOW comes.
	 */
	for (i = 0; i < 4 && n.state != MEMBROKER_STATE_LOW; i++) {
		ASSERT_EQ(0, mb_meminfo_read(&mi));
		TH_LOG("all of the balloon in and %.1f MiB still available "
		       "(low %.1f MiB): a hog takes what it left",
		       MIB_F(mi.available), MIB_F(n.low));
		ASSERT_LT(n.low / 2, mi.available);
		self->hog3[i] = start_hog(mi.available - n.low / 2);
		ASSERT_LT(0, self->hog3[i])
			TH_LOG("hog: %s", strerror(-self->hog3[i]));
		do
			err = recv_within(_metadata, self, &n,
					  MB_NOTIFY_TIMEOUT_MS / 2);
		while (!err && n.state != MEMBROKER_STATE_LOW);
		ASSERT_TRUE(!err || err == -ETIMEDOUT);
	}
	EXPECT_EQ(MEMBROKER_STATE_LOW, n.state);
	/*
	 * LOW is entered below low, and then held up to low + h, h at most
	 * half the band: the balloon going on inflating after LOW lowers
	 * low under what is still available (seq 27 entered LOW at 35.1 <
	 * 36.0 MiB, seq 28 stayed LOW at 34.0 with low 33.7, on 6.12).
	 */
	EXPECT_EQ(MEMBROKER_STATE_LOW, self->entered_low.state);
	EXPECT_LT(self->entered_low.available, self->entered_low.low);
	EXPECT_LT(n.available, n.low + (n.high - n.low) / 2);
	EXPECT_TRUE(near(t0 - n.total, BALLOON_BYTES, TOTAL_SLACK))
		TH_LOG("LOW with total %.1f MiB, %.1f MiB before",
		       MIB_F(n.total), MIB_F(t0));

	/* With all of it in: thresholds for the new total. */
	expect_auto(_metadata, &n);
	EXPECT_LT(n.low, l0);
	EXPECT_LT(n.high, h0);
	expect_consistent(_metadata, self);

	/* Deflate: out of LOW, total and thresholds as before. */
	REQUEST(mb_host_balloon(MB_BALLOON_NONE));
	wait_state(_metadata, self, (1U << MEMBROKER_STATE_STEADY) |
				    (1U << MEMBROKER_STATE_HIGH), &n);
	EXPECT_LE(n.low, n.available);
	wait_total(_metadata, self, t0, &n);
	EXPECT_NE(MEMBROKER_STATE_LOW, n.state);
	EXPECT_TRUE(near(n.low, l0, THRESH_SLACK));
	EXPECT_TRUE(near(n.high, h0, THRESH_SLACK));
	expect_auto(_metadata, &n);
	expect_consistent(_metadata, self);
}

/*
 * virtio-mem adds memory blocks (onlined movable) and takes them away
 * again: each change of total is notified, with thresholds to match.
 */
TEST_F_TIMEOUT(dynmem, virtio_mem_grow_shrink, 110)
{
	uint64_t t0 = self->last.total, l0 = self->last.low;
	uint64_t h0 = self->last.high, plugged;
	struct mb_state n;

	expect_auto(_metadata, &self->last);
	ASSERT_EQ(0, mb_host_query_mem(&plugged));
	ASSERT_EQ(0, plugged);

	/*
	 * Grow: onlining a memory block kicks an evaluation at once, and
	 * one that runs while a block is onlined is named hotplug too.
	 */
	REQUEST(mb_host_mem_size(VMEM_BYTES));
	recv_next(_metadata, self, &n);
	EXPECT_EQ(MEMBROKER_REASON_HOTPLUG, n.reason);
	EXPECT_LT(t0, n.total);

	/* Once all of it is in: a larger total, larger thresholds. */
	wait_total(_metadata, self, t0 + VMEM_BYTES, &n);
	EXPECT_NE(MEMBROKER_STATE_LOW, n.state);
	expect_auto(_metadata, &n);
	EXPECT_GT(n.low, l0);
	EXPECT_GT(n.high, h0);
	expect_consistent(_metadata, self);

	/*
	 * Shrink: virtio-mem takes the pages out of the online blocks first
	 * (MemTotal drops, seen by a poll), then offlines and removes them.
	 * Total and thresholds as before.
	 */
	REQUEST(mb_host_mem_size(0));
	wait_total(_metadata, self, t0, &n);
	EXPECT_TRUE(near(n.low, l0, THRESH_SLACK));
	EXPECT_TRUE(near(n.high, h0, THRESH_SLACK));
	expect_auto(_metadata, &n);
	/* Until virtio-mem has removed its blocks, total may still move. */
	ASSERT_EQ(0, mb_dynmem_restore(MB_DYNMEM_TIMEOUT_MS));
	expect_consistent(_metadata, self);
	EXPECT_TRUE(near(self->last.total, t0, TOTAL_SLACK));
}

TEST_HARNESS_MAIN
