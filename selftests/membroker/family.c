// SPDX-License-Identifier: GPL-2.0
/*
 * The family can be found by the names the uapi promises, and speaks the
 * promised version.
 */
#include <errno.h>

#include <netlink/genl/ctrl.h>
#include <netlink/genl/family.h>
#include <netlink/genl/genl.h>

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
	struct genl_family *fam;
	struct nl_cache *cache;

	ASSERT_LT(0, self->nl.family);
	ASSERT_LT(0, self->nl.group);
	ASSERT_EQ(0, genl_ctrl_alloc_cache(self->nl.sk, &cache));
	fam = genl_ctrl_search_by_name(cache, MEMBROKER_FAMILY_NAME);
	ASSERT_NE(NULL, fam);
	EXPECT_EQ(self->nl.family, genl_family_get_id(fam));
	EXPECT_EQ(MEMBROKER_FAMILY_VERSION, genl_family_get_version(fam));
	genl_family_put(fam);
	nl_cache_free(cache);
}

TEST_F(family, has_no_other_group)
{
	/* Only "notify" exists: listeners cannot pick a wrong one. */
	EXPECT_GT(0, genl_ctrl_resolve_grp(self->nl.sk, MEMBROKER_FAMILY_NAME,
					   "notify2"));
	EXPECT_GT(0, genl_ctrl_resolve_grp(self->nl.sk, MEMBROKER_FAMILY_NAME,
					   ""));
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
