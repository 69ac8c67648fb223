/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kernel side most membrokerctl tests share: a request socket and a
 * listener on "notify", the configuration to put back afterwards, and the
 * state once the module has gone quiet.  Included after mb_test.h: the
 * helpers use the harness's ASSERT/EXPECT (an ASSERT leaves the fixture's
 * setup through the harness's longjmp, as if written there).
 */
#ifndef CTL_FIXTURE_H
#define CTL_FIXTURE_H

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "ctl_test.h"

struct ctl_kernel {
	struct mb_nl nl;	/* requests */
	struct mb_nl mc;	/* subscribed to "notify" */
	struct mb_config saved;	/* put back by ctl_kernel_close() */
	struct mb_state st;	/* after ctl_settle() */
};

static inline void ctl_kernel_open(struct __test_metadata *_metadata,
				   struct ctl_kernel *k)
{
	ASSERT_EQ(0, access(ctl_path(), X_OK))
		TH_LOG("%s: %s (is tools/ built?)", ctl_path(), strerror(errno));
	MB_OPEN_OR_SKIP(&k->nl);
	ASSERT_EQ(0, mb_nl_open(&k->mc));
	ASSERT_EQ(0, mb_nl_subscribe(&k->mc));
	ASSERT_EQ(0, mb_nl_get_config(&k->nl, &k->saved));
	ASSERT_EQ(0, ctl_settle(&k->nl, &k->mc));
	ASSERT_EQ(0, mb_nl_get_state(&k->nl, &k->st));
}

static inline void ctl_kernel_close(struct __test_metadata *_metadata,
				    struct ctl_kernel *k)
{
	struct mb_config now;

	if (!mb_nl_get_config(&k->nl, &now) &&
	    !mb_config_equal(&now, &k->saved))
		EXPECT_EQ(0, mb_nl_set_config(&k->nl, &k->saved));
	mb_nl_close(&k->mc);
	mb_nl_close(&k->nl);
}

#endif
