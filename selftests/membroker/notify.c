// SPDX-License-Identifier: GPL-2.0
/*
 * The promise applications build on: when memory runs short, listeners
 * hear LOW; when it comes back, they hear STEADY or HIGH; and they can
 * tell that they missed nothing (seq +1 each time, time moving forward).
 *
 * A child eats available - low + low/2 bytes, which leaves about half the
 * low threshold available: below it, but far from the OOM killer.
 */
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "mb_test.h"

FIXTURE(notify) {
	struct mb_nl nl;
	struct mb_nl mc;
	struct mb_state last;	/* last notification, or the initial state */
	bool heard;		/* a notification after the initial state */
	pid_t hog;
	int ready[2];		/* hog -> test: memory is touched */
	int hold[2];		/* test -> hog: EOF means exit */
};

FIXTURE_SETUP(notify)
{
	self->hog = -1;
	MB_OPEN_OR_SKIP(&self->nl);
	ASSERT_EQ(0, mb_nl_open(&self->mc));
	ASSERT_EQ(0, mb_nl_subscribe(&self->mc));
	/* Subscribed first: nothing after this seq can be missed. */
	ASSERT_EQ(0, mb_nl_get_state(&self->nl, &self->last));
	ASSERT_EQ(0, pipe2(self->ready, O_CLOEXEC));
	ASSERT_EQ(0, pipe2(self->hold, O_CLOEXEC));
}

FIXTURE_TEARDOWN(notify)
{
	if (self->hog > 0) {
		kill(self->hog, SIGKILL);
		waitpid(self->hog, NULL, 0);
	}
	mb_nl_close(&self->mc);
	mb_nl_close(&self->nl);
}

/*
 * The kernel faults every page in for us (MADV_POPULATE_WRITE, 5.14+):
 * unlike a store per page, it costs a sanitizer build no shadow memory,
 * so the arithmetic above holds in every build.
 */
static void __attribute__((noreturn)) hog(uint64_t bytes, int ready, int hold)
{
	char *p, c;

	p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		_exit(1);
	if (madvise(p, bytes, MADV_POPULATE_WRITE))
		_exit(3);
	if (write(ready, "r", 1) != 1)
		_exit(2);
	while (read(hold, &c, 1) > 0)
		;
	_exit(0);
}

/*
 * Receive notifications until one has a state accepted by @want (a bit
 * mask of 1 << state), checking the sequence on the way.
 */
static void wait_state(struct __test_metadata *_metadata,
		       FIXTURE_DATA(notify) *self, unsigned int want,
		       struct mb_state *out)
{
	for (;;) {
		struct mb_state n;
		int err;

		err = mb_nl_recv_notify(&self->mc, &n, MB_NOTIFY_TIMEOUT_MS);
		ASSERT_EQ(0, err) TH_LOG("waiting for a notification: %s",
					 strerror(-err));
		EXPECT_EQ(MB_STATE_ATTRS, n.have & MB_STATE_ATTRS);
		/* Sent before our GET_STATE: already accounted for. */
		if (!self->heard && n.seq <= self->last.seq)
			continue;
		self->heard = true;
		EXPECT_EQ(self->last.seq + 1, n.seq);
		EXPECT_LE(self->last.timestamp_ns, n.timestamp_ns);
		TH_LOG("seq %llu: %s, available %llu MiB (low %llu MiB)",
		       (unsigned long long)n.seq, mb_state_name(n.state),
		       (unsigned long long)(n.available / MIB),
		       (unsigned long long)(n.low / MIB));
		self->last = n;
		if (want & (1U << n.state)) {
			*out = n;
			return;
		}
	}
}

TEST_F_TIMEOUT(notify, low_then_recovery, 150)
{
	struct mb_meminfo mi;
	struct mb_state n;
	uint64_t bytes;
	int status;
	char c;

	ASSERT_NE(MEMBROKER_STATE_LOW, self->last.state);
	ASSERT_EQ(0, mb_meminfo_read(&mi));
	ASSERT_LT(self->last.low, mi.available);
	bytes = mi.available - self->last.low + self->last.low / 2;

	fflush(NULL);
	self->hog = fork();
	ASSERT_LE(0, self->hog);
	if (self->hog == 0) {
		close(self->ready[0]);
		close(self->hold[1]);
		hog(bytes, self->ready[1], self->hold[0]);
	}
	close(self->ready[1]);
	close(self->hold[0]);

	wait_state(_metadata, self, 1U << MEMBROKER_STATE_LOW, &n);
	EXPECT_LT(n.available, n.low);

	/* EOF instead of "r": the hog died (OOM) before it was done. */
	ASSERT_EQ(1, read(self->ready[0], &c, 1));
	close(self->hold[1]);
	ASSERT_EQ(self->hog, waitpid(self->hog, &status, 0));
	self->hog = -1;
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	wait_state(_metadata, self, (1U << MEMBROKER_STATE_STEADY) |
				    (1U << MEMBROKER_STATE_HIGH), &n);
	EXPECT_LE(n.low, n.available);
}

TEST_HARNESS_MAIN
