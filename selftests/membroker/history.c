// SPDX-License-Identifier: GPL-2.0
/*
 * GET_HISTORY is the record of what listeners were told: oldest first,
 * consecutive sequence numbers ending at the current one, and the same
 * state, seq and timestamp the multicast listener received.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mb_test.h"

#define MAX_HISTORY	4096
#define NOTES		2

FIXTURE(history) {
	struct mb_nl nl;
	struct mb_nl mc;
	struct mb_config saved;
	struct mb_state *h;
};

FIXTURE_SETUP(history)
{
	MB_OPEN_OR_SKIP(&self->nl);
	ASSERT_EQ(0, mb_nl_open(&self->mc));
	ASSERT_EQ(0, mb_nl_subscribe(&self->mc));
	ASSERT_EQ(0, mb_nl_get_config(&self->nl, &self->saved));
	self->h = calloc(MAX_HISTORY, sizeof(*self->h));
	ASSERT_NE(NULL, self->h);
}

FIXTURE_TEARDOWN(history)
{
	struct mb_config now;

	if (!mb_nl_get_config(&self->nl, &now) &&
	    !mb_config_equal(&now, &self->saved))
		EXPECT_EQ(0, mb_nl_set_config(&self->nl, &self->saved));
	free(self->h);
	mb_nl_close(&self->mc);
	mb_nl_close(&self->nl);
}

/*
 * Cause one notification by a configuration change and return it.  Other
 * notifications may arrive first; they are part of the history as well,
 * so they are returned too (*n grows).
 */
static int notify_by_config(FIXTURE_DATA(history) *self,
			    const struct mb_config *cfg,
			    struct mb_state *seen, int *n, int max)
{
	int err = mb_nl_set_config(&self->nl, cfg);

	while (!err && *n < max) {
		struct mb_state *s = &seen[(*n)++];

		err = mb_nl_recv_notify(&self->mc, s, MB_NOTIFY_TIMEOUT_MS);
		if (!err && s->reason == MEMBROKER_REASON_CONFIG)
			return 0;
	}
	return err ? err : -ENOSPC;
}

TEST_F_TIMEOUT(history, matches_what_listeners_saw, 120)
{
	struct mb_state st, st2, seen[16];
	struct mb_config moved = { 0 };
	int nseen = 0, n, i, j, tries;

	ASSERT_EQ(0, mb_nl_get_state(&self->nl, &st));
	moved.have = 1ULL << MEMBROKER_A_LOW_BYTES;
	moved.low = st.low + 4 * MIB;
	ASSERT_LT(moved.low, st.high);
	ASSERT_EQ(0, notify_by_config(self, &moved, seen, &nseen, 16));
	ASSERT_EQ(0, notify_by_config(self, &self->saved, seen, &nseen, 16));

	/* A dump framed by equal GET_STATE seqs saw nothing change. */
	for (tries = 0; tries < 10; tries++) {
		ASSERT_EQ(0, mb_nl_get_state(&self->nl, &st));
		n = mb_nl_dump_history(&self->nl, self->h, MAX_HISTORY);
		ASSERT_LE(0, n) TH_LOG("GET_HISTORY: %s", strerror(-n));
		ASSERT_EQ(0, mb_nl_get_state(&self->nl, &st2));
		if (st.seq == st2.seq)
			break;
	}
	ASSERT_LT(tries, 10);
	ASSERT_LE(NOTES, n);
	EXPECT_GE(self->saved.history_size, (uint32_t)n);
	EXPECT_EQ(st.seq, self->h[n - 1].seq);

	for (i = 0; i < n; i++) {
		EXPECT_EQ(MB_STATE_ATTRS, self->h[i].have & MB_STATE_ATTRS)
			TH_LOG("entry %d", i);
		if (i == 0)
			continue;
		EXPECT_EQ(self->h[i - 1].seq + 1, self->h[i].seq)
			TH_LOG("entry %d", i);
		EXPECT_LE(self->h[i - 1].timestamp_ns, self->h[i].timestamp_ns)
			TH_LOG("entry %d", i);
	}

	/* Everything the listener got is in the history, unchanged. */
	for (i = 0; i < nseen; i++) {
		for (j = 0; j < n && self->h[j].seq != seen[i].seq; j++)
			;
		ASSERT_LT(j, n) TH_LOG("seq %llu missing from history",
				       (unsigned long long)seen[i].seq);
		EXPECT_EQ(seen[i].state, self->h[j].state);
		EXPECT_EQ(seen[i].flags, self->h[j].flags);
		EXPECT_EQ(seen[i].timestamp_ns, self->h[j].timestamp_ns);
		EXPECT_EQ(seen[i].reason, self->h[j].reason);
		EXPECT_EQ(seen[i].low, self->h[j].low);
		EXPECT_EQ(seen[i].high, self->h[j].high);
	}
}

TEST_HARNESS_MAIN
