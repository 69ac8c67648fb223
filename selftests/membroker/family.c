// SPDX-License-Identifier: GPL-2.0
/*
 * The family can be found by the names the uapi promises, speaks the
 * promised version, and validates strictly: commands that take no
 * attributes refuse any with -EINVAL and an extended ack, and each command
 * is either a request or a dump, never both.
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

/*
 * Send @cmd (a dump with @dump) carrying one attribute of @type; it must
 * be refused with -EINVAL and an extack that points at the attribute.
 */
static void __expect_no_attrs(struct __test_metadata *_metadata,
			      struct mb_nl *nl, uint8_t cmd, bool dump,
			      int type)
{
	struct nl_msg *msg = mb_nl_msg(nl, cmd, dump ? NLM_F_DUMP : 0);
	int offs;

	ASSERT_NE(NULL, msg);
	offs = NLMSG_ALIGN(nlmsg_hdr(msg)->nlmsg_len);
	ASSERT_EQ(0, nla_put_u32(msg, type, 1));
	EXPECT_EQ(-EINVAL, mb_nl_do(nl, msg, NULL, NULL));
	TH_LOG("cmd %u attr %d: extack \"%s\", offset %d", cmd, type,
	       nl->extack, nl->extack_offs);
	EXPECT_NE(0, nl->extack[0]);
	EXPECT_EQ(offs, nl->extack_offs);
}

#define expect_no_attrs(cmd, dump, type) \
	__expect_no_attrs(_metadata, &self->nl, cmd, dump, type)

TEST_F(family, get_state_takes_no_attributes)
{
	expect_no_attrs(MEMBROKER_CMD_GET_STATE, false, MEMBROKER_A_STATE);
	expect_no_attrs(MEMBROKER_CMD_GET_STATE, false, MEMBROKER_A_REASON);
	expect_no_attrs(MEMBROKER_CMD_GET_STATE, false, MEMBROKER_A_MAX + 1);
}

TEST_F(family, get_config_takes_no_attributes)
{
	expect_no_attrs(MEMBROKER_CMD_GET_CONFIG, false, MEMBROKER_A_STATE);
	expect_no_attrs(MEMBROKER_CMD_GET_CONFIG, false,
			MEMBROKER_A_RATELIMIT_MS);
}

TEST_F(family, get_history_takes_no_attributes)
{
	expect_no_attrs(MEMBROKER_CMD_GET_HISTORY, true, MEMBROKER_A_STATE);
	expect_no_attrs(MEMBROKER_CMD_GET_HISTORY, true, MEMBROKER_A_SEQ);
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
