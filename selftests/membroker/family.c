// SPDX-License-Identifier: GPL-2.0
/*
 * The family can be found by the names the uapi promises, and speaks the
 * promised version.
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

TEST_HARNESS_MAIN
