// SPDX-License-Identifier: GPL-2.0
/*
 * SET_CONFIG is all or nothing: bad requests get -EINVAL with a message
 * and change nothing; good ones apply at once, announce themselves with a
 * CONFIG notification, and can be undone.
 */
#include <errno.h>

#include "mb_test.h"

FIXTURE(config) {
	struct mb_nl nl;
	struct mb_nl mc;	/* subscribed to "notify" */
	struct mb_config saved;
	struct mb_state st;	/* state before the test */
};

FIXTURE_SETUP(config)
{
	MB_OPEN_OR_SKIP(&self->nl);
	ASSERT_EQ(0, mb_nl_open(&self->mc));
	ASSERT_EQ(0, mb_nl_subscribe(&self->mc));
	ASSERT_EQ(0, mb_nl_get_config(&self->nl, &self->saved));
	ASSERT_EQ(MB_CONFIG_ATTRS, self->saved.have & MB_CONFIG_ATTRS);
	ASSERT_EQ(0, mb_nl_get_state(&self->nl, &self->st));
}

FIXTURE_TEARDOWN(config)
{
	struct mb_config now;

	/* Leave the module as we found it for the tests that follow. */
	if (!mb_nl_get_config(&self->nl, &now) &&
	    !mb_config_equal(&now, &self->saved))
		EXPECT_EQ(0, mb_nl_set_config(&self->nl, &self->saved));
	mb_nl_close(&self->mc);
	mb_nl_close(&self->nl);
}

/*
 * Send @msg and check it is refused with a reason and has no effect:
 * -EINVAL, or with @range also -ERANGE, which is what netlink's own range
 * policies answer (the uapi documents the range of VIRTUAL_LOW_PERCENT
 * but not the errno for leaving it).
 */
static void __expect_rejected(struct __test_metadata *_metadata,
			      FIXTURE_DATA(config) *self, struct nl_msg *msg,
			      bool range)
{
	struct mb_config after;
	int err;

	ASSERT_NE(NULL, msg);
	err = mb_nl_do(&self->nl, msg, NULL, NULL);
	if (range && err == -ERANGE)
		err = -EINVAL;
	EXPECT_EQ(-EINVAL, err);
	EXPECT_NE(0, self->nl.extack[0]);
	TH_LOG("extack: \"%s\"", self->nl.extack);
	ASSERT_EQ(0, mb_nl_get_config(&self->nl, &after));
	EXPECT_TRUE(mb_config_equal(&self->saved, &after));
}

#define expect_rejected(m, self, msg)	__expect_rejected(m, self, msg, false)
#define expect_out_of_range(m, self, msg) __expect_rejected(m, self, msg, true)

static struct nl_msg *set_msg(FIXTURE_DATA(config) *self)
{
	return mb_nl_msg(&self->nl, MEMBROKER_CMD_SET_CONFIG, 0);
}

TEST_F(config, low_equal_high)
{
	struct nl_msg *msg = set_msg(self);
	uint64_t v = self->st.total / 4;

	ASSERT_NE(NULL, msg);
	nla_put_u64(msg, MEMBROKER_A_LOW_BYTES, v);
	nla_put_u64(msg, MEMBROKER_A_HIGH_BYTES, v);
	expect_rejected(_metadata, self, msg);
}

TEST_F(config, low_above_high)
{
	struct nl_msg *msg = set_msg(self);

	ASSERT_NE(NULL, msg);
	nla_put_u64(msg, MEMBROKER_A_LOW_BYTES, self->st.total / 3);
	nla_put_u64(msg, MEMBROKER_A_HIGH_BYTES, self->st.total / 4);
	expect_rejected(_metadata, self, msg);
}

/* Only low is given: it must be checked against the high in force. */
TEST_F(config, low_above_current_high)
{
	struct nl_msg *msg = set_msg(self);

	ASSERT_NE(NULL, msg);
	ASSERT_LT(self->st.high, self->st.total);
	nla_put_u64(msg, MEMBROKER_A_LOW_BYTES,
		    self->st.high + (self->st.total - self->st.high) / 2);
	expect_rejected(_metadata, self, msg);
}

TEST_F(config, state_attribute)
{
	struct nl_msg *msg = set_msg(self);

	ASSERT_NE(NULL, msg);
	nla_put_u32(msg, MEMBROKER_A_STATE, MEMBROKER_STATE_LOW);
	expect_rejected(_metadata, self, msg);
}

TEST_F(config, attribute_above_max)
{
	struct nl_msg *msg = set_msg(self);

	ASSERT_NE(NULL, msg);
	nla_put_u32(msg, MEMBROKER_A_MAX + 1, 1);
	expect_rejected(_metadata, self, msg);
}

TEST_F(config, history_size_is_read_only)
{
	struct nl_msg *msg = set_msg(self);

	ASSERT_NE(NULL, msg);
	nla_put_u32(msg, MEMBROKER_A_HISTORY_SIZE, 8);
	expect_rejected(_metadata, self, msg);
}

TEST_F(config, u32_for_u64)
{
	struct nl_msg *msg = set_msg(self);

	ASSERT_NE(NULL, msg);
	nla_put_u32(msg, MEMBROKER_A_LOW_BYTES, 1 << 20);
	expect_rejected(_metadata, self, msg);
}

TEST_F(config, u64_for_u32)
{
	struct nl_msg *msg = set_msg(self);

	ASSERT_NE(NULL, msg);
	nla_put_u64(msg, MEMBROKER_A_RATELIMIT_MS, 100);
	expect_rejected(_metadata, self, msg);
}

TEST_F(config, low_above_total)
{
	struct nl_msg *msg = set_msg(self);

	/* low < high, so only the comparison with total memory can fail */
	ASSERT_NE(NULL, msg);
	nla_put_u64(msg, MEMBROKER_A_LOW_BYTES, self->st.total + MIB);
	nla_put_u64(msg, MEMBROKER_A_HIGH_BYTES, self->st.total + 2 * MIB);
	expect_rejected(_metadata, self, msg);
}

TEST_F(config, poll_min_above_max)
{
	struct nl_msg *msg = set_msg(self);

	/* Each value is plausible alone; only together are they wrong. */
	ASSERT_NE(NULL, msg);
	nla_put_u32(msg, MEMBROKER_A_POLL_MIN_MS, 500);
	nla_put_u32(msg, MEMBROKER_A_POLL_MAX_MS, 200);
	expect_rejected(_metadata, self, msg);
}

TEST_F(config, virtual_low_percent_zero)
{
	struct nl_msg *msg = set_msg(self);

	ASSERT_NE(NULL, msg);
	nla_put_u32(msg, MEMBROKER_A_VIRTUAL_LOW_PERCENT, 0);
	expect_out_of_range(_metadata, self, msg);
}

TEST_F(config, virtual_low_percent_above_100)
{
	struct nl_msg *msg = set_msg(self);

	ASSERT_NE(NULL, msg);
	nla_put_u32(msg, MEMBROKER_A_VIRTUAL_LOW_PERCENT, 101);
	expect_out_of_range(_metadata, self, msg);
}

/* One bad value spoils the whole request: the good one is not applied. */
TEST_F(config, partly_bad)
{
	struct nl_msg *msg = set_msg(self);

	ASSERT_NE(NULL, msg);
	nla_put_u32(msg, MEMBROKER_A_RATELIMIT_MS,
		    self->saved.ratelimit_ms + 1);
	nla_put_u32(msg, MEMBROKER_A_POLL_MIN_MS, 500);
	nla_put_u32(msg, MEMBROKER_A_POLL_MAX_MS, 200);
	expect_rejected(_metadata, self, msg);
}

/* Wait for the CONFIG notification, skipping any other. */
static int wait_config_notify(FIXTURE_DATA(config) *self, struct mb_state *n)
{
	int err;

	do {
		err = mb_nl_recv_notify(&self->mc, n, MB_NOTIFY_TIMEOUT_MS);
	} while (!err && n->reason != MEMBROKER_REASON_CONFIG);
	return err;
}

TEST_F_TIMEOUT(config, valid_applies_and_restores, 90)
{
	uint64_t low = self->st.low + 4 * MIB, high = self->st.high + 8 * MIB;
	struct mb_config set = { 0 }, got;
	struct mb_state n, st;

	ASSERT_LT(high, self->st.total);
	set.have = (1ULL << MEMBROKER_A_LOW_BYTES) |
		   (1ULL << MEMBROKER_A_HIGH_BYTES);
	set.low = low;
	set.high = high;
	ASSERT_EQ(0, mb_nl_set_config(&self->nl, &set));

	ASSERT_EQ(0, mb_nl_get_config(&self->nl, &got));
	EXPECT_EQ(low, got.low);
	EXPECT_EQ(high, got.high);
	EXPECT_EQ(self->saved.ratelimit_ms, got.ratelimit_ms);
	EXPECT_EQ(self->saved.poll_min_ms, got.poll_min_ms);

	ASSERT_EQ(0, wait_config_notify(self, &n));
	EXPECT_EQ(MB_STATE_ATTRS, n.have & MB_STATE_ATTRS);
	EXPECT_EQ(low, n.low);
	EXPECT_EQ(high, n.high);
	EXPECT_LT(self->st.seq, n.seq);

	ASSERT_EQ(0, mb_nl_get_state(&self->nl, &st));
	EXPECT_EQ(low, st.low);
	EXPECT_EQ(high, st.high);

	/* Back to what it was: thresholds in force return too. */
	ASSERT_EQ(0, mb_nl_set_config(&self->nl, &self->saved));
	ASSERT_EQ(0, mb_nl_get_config(&self->nl, &got));
	EXPECT_TRUE(mb_config_equal(&self->saved, &got));
	ASSERT_EQ(0, wait_config_notify(self, &n));
	EXPECT_EQ(self->st.low, n.low);
	EXPECT_EQ(self->st.high, n.high);
	ASSERT_EQ(0, mb_nl_get_state(&self->nl, &st));
	EXPECT_EQ(self->st.low, st.low);
	EXPECT_EQ(self->st.high, st.high);
}

TEST_F(config, get_config_fed_back_changes_nothing)
{
	struct mb_config got;
	struct mb_state st;

	ASSERT_EQ(0, mb_nl_set_config(&self->nl, &self->saved));
	ASSERT_EQ(0, mb_nl_get_config(&self->nl, &got));
	EXPECT_TRUE(mb_config_equal(&self->saved, &got));
	ASSERT_EQ(0, mb_nl_get_state(&self->nl, &st));
	EXPECT_EQ(self->st.low, st.low);
	EXPECT_EQ(self->st.high, st.high);
}

TEST_HARNESS_MAIN
