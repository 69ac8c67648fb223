// SPDX-License-Identifier: GPL-2.0
/*
 * The family can be found by the names the uapi promises, speaks the
 * promised version, and validates strictly: commands that take no
 * attributes refuse any, of any type and length, with -EINVAL and an
 * extended ack pointing at it, SET_CONFIG refuses those it does not take
 * and those of the wrong length alike, the module answers afterwards, and
 * each command is either a request or a dump, never both.
 */
#include <errno.h>

#include "mb_test.h"

FIXTURE(family) {
	struct mb_nl nl;
};

FIXTURE_SETUP(family)
{
	MB_OPEN_OR_SKIP(&self->nl);
}

FIXTURE_TEARDOWN(family)
{
	mb_nl_close(&self->nl);
}

TEST_F(family, resolves_with_version)
{
	struct mb_family f;

	ASSERT_EQ(0, mb_nl_get_family(&self->nl, MEMBROKER_FAMILY_NAME, &f));
	EXPECT_EQ(self->nl.family, f.id);
	EXPECT_EQ(MEMBROKER_FAMILY_VERSION, f.version);
	/* One group, "notify": listeners cannot pick a wrong one. */
	ASSERT_EQ(1, f.ngroups);
	EXPECT_STREQ(MEMBROKER_MCGRP_NOTIFY, f.group[0]);
	EXPECT_EQ((uint32_t)self->nl.group, f.group_id[0]);
}

TEST_F(family, rejects_unknown_command)
{
	struct nl_msg *msg = mb_nl_msg(&self->nl, MEMBROKER_CMD_MAX + 1, 0);

	ASSERT_NE(NULL, msg);
	EXPECT_EQ(-EOPNOTSUPP, mb_nl_do(&self->nl, msg, NULL, NULL));
}

TEST_F(family, notify_is_not_a_request)
{
	/* NOTIFY is an event; userspace must not be able to forge one. */
	struct nl_msg *msg = mb_nl_msg(&self->nl, MEMBROKER_CMD_NOTIFY, 0);

	ASSERT_NE(NULL, msg);
	EXPECT_EQ(-EOPNOTSUPP, mb_nl_do(&self->nl, msg, NULL, NULL));
}

/* Lengths tried for every attribute: empty, short, u32, u64, odd, long */
static const int attr_lens[] = { 0, 1, 4, 8, 9, 16 };

/*
 * The length SET_CONFIG takes attribute @type with, -1 for any (PAD,
 * ignored), 0 if it takes it at no length.
 */
static int config_len(int type)
{
	switch (type) {
	case MEMBROKER_A_LOW_BYTES:
	case MEMBROKER_A_HIGH_BYTES:
	case MEMBROKER_A_HYSTERESIS_BYTES:
		return 8;
	case MEMBROKER_A_POLL_MIN_MS:
	case MEMBROKER_A_POLL_MAX_MS:
	case MEMBROKER_A_RATELIMIT_MS:
	case MEMBROKER_A_VIRTUAL_LOW_PERCENT:
		return 4;
	case MEMBROKER_A_PAD:
		return -1;
	}
	return 0;
}

/*
 * Send @cmd (a dump with @dump) carrying one attribute of @type and @len
 * bytes; it must be refused with -EINVAL and an extack message that
 * points at the attribute.
 */
static void __expect_refused(struct __test_metadata *_metadata,
			     struct mb_nl *nl, uint8_t cmd, bool dump,
			     int type, int len)
{
	struct nl_msg *msg = mb_nl_msg(nl, cmd, dump ? NLM_F_DUMP : 0);
	static const uint8_t payload[16] = { 1 };
	int offs;

	ASSERT_NE(NULL, msg);
	offs = NLMSG_ALIGN(nlmsg_hdr(msg)->nlmsg_len);
	ASSERT_EQ(0, nla_put(msg, type, len, payload));
	EXPECT_EQ(-EINVAL, mb_nl_do(nl, msg, NULL, NULL))
		TH_LOG("cmd %u attr %d len %d: extack \"%s\"", cmd, type,
		       len, nl->extack);
	EXPECT_NE(0, nl->extack[0])
		TH_LOG("cmd %u attr %d len %d: no extack message", cmd, type,
		       len);
	EXPECT_EQ(offs, nl->extack_offs)
		TH_LOG("cmd %u attr %d len %d: extack \"%s\" at %d", cmd,
		       type, len, nl->extack, nl->extack_offs);
}

/*
 * After all that, the module still answers: GET_STATE gives a whole
 * state message, and the configuration is what it was.
 */
static void __expect_alive(struct __test_metadata *_metadata,
			   struct mb_nl *nl, const struct mb_config *before)
{
	struct mb_config cfg;
	struct mb_state st;

	ASSERT_EQ(0, mb_nl_get_state(nl, &st));
	EXPECT_EQ(MB_STATE_ATTRS, st.have & MB_STATE_ATTRS);
	EXPECT_EQ(MEMBROKER_CMD_GET_STATE, st.cmd);
	EXPECT_EQ(MEMBROKER_REASON_QUERY, st.reason);
	EXPECT_TRUE(st.state >= MEMBROKER_STATE_LOW &&
		    st.state <= MEMBROKER_STATE_HIGH);
	EXPECT_LT(0, st.total);
	EXPECT_LE(st.available, st.total);
	ASSERT_EQ(0, mb_nl_get_config(nl, &cfg));
	EXPECT_TRUE(mb_config_equal(before, &cfg));
}

/*
 * Every attribute type from 0 to one above MEMBROKER_A_MAX, at lengths
 * right and wrong, is refused by @cmd, which takes no attributes.  The
 * kernel validates with the policy and maxattr the module declares; a
 * maxattr larger than the policy makes it read past the policy (7.3's
 * genetlink did, and hit a BUG_ON in __nla_validate_parse).
 */
static void __expect_no_attrs(struct __test_metadata *_metadata,
			      struct mb_nl *nl, uint8_t cmd, bool dump)
{
	struct mb_config before;
	unsigned int i;
	int type;

	ASSERT_EQ(0, mb_nl_get_config(nl, &before));
	for (type = 0; type <= MEMBROKER_A_MAX + 1; type++)
		for (i = 0; i < ARRAY_SIZE(attr_lens); i++)
			__expect_refused(_metadata, nl, cmd, dump, type,
					 attr_lens[i]);
	__expect_alive(_metadata, nl, &before);
}

TEST_F(family, get_state_takes_no_attributes)
{
	__expect_no_attrs(_metadata, &self->nl, MEMBROKER_CMD_GET_STATE,
			  false);
}

TEST_F(family, get_config_takes_no_attributes)
{
	__expect_no_attrs(_metadata, &self->nl, MEMBROKER_CMD_GET_CONFIG,
			  false);
}

TEST_F(family, get_history_takes_no_attributes)
{
	__expect_no_attrs(_metadata, &self->nl, MEMBROKER_CMD_GET_HISTORY,
			  true);
}

/*
 * SET_CONFIG refuses every attribute it does not take, and those it takes
 * at any length but theirs.  (The right ones at the right length change
 * the configuration: config.c tests them.)
 */
TEST_F(family, set_config_refuses_bad_attributes)
{
	struct mb_config before;
	unsigned int i;
	int type, len;

	ASSERT_EQ(0, mb_nl_get_config(&self->nl, &before));
	for (type = 0; type <= MEMBROKER_A_MAX + 1; type++) {
		if (config_len(type) < 0)
			continue;
		for (i = 0; i < ARRAY_SIZE(attr_lens); i++) {
			len = attr_lens[i];
			if (config_len(type) == len)
				continue;
			__expect_refused(_metadata, &self->nl,
					 MEMBROKER_CMD_SET_CONFIG, false,
					 type, len);
		}
	}
	__expect_alive(_metadata, &self->nl, &before);
}

TEST_F(family, do_or_dump)
{
	struct nl_msg *msg;

	/* GET_HISTORY is a dump only, the others are requests only */
	msg = mb_nl_msg(&self->nl, MEMBROKER_CMD_GET_HISTORY, 0);
	ASSERT_NE(NULL, msg);
	EXPECT_EQ(-EOPNOTSUPP, mb_nl_do(&self->nl, msg, NULL, NULL));
	msg = mb_nl_msg(&self->nl, MEMBROKER_CMD_GET_STATE, NLM_F_DUMP);
	ASSERT_NE(NULL, msg);
	EXPECT_EQ(-EOPNOTSUPP, mb_nl_do(&self->nl, msg, NULL, NULL));
	msg = mb_nl_msg(&self->nl, MEMBROKER_CMD_GET_CONFIG, NLM_F_DUMP);
	ASSERT_NE(NULL, msg);
	EXPECT_EQ(-EOPNOTSUPP, mb_nl_do(&self->nl, msg, NULL, NULL));
}

TEST_HARNESS_MAIN
