// SPDX-License-Identifier: GPL-2.0
/*
 * Changing the configuration needs CAP_NET_ADMIN; reading the state does
 * not.  A child drops to nobody (uid/gid 65534, no groups, no caps) and
 * reports back what the kernel let it do.
 */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "mb_test.h"

#define NOBODY	65534

/* What the unprivileged child saw, one bit per broken promise. */
enum {
	CHILD_DROP_FAILED	= 1 << 0,
	CHILD_STILL_CAPABLE	= 1 << 1,
	CHILD_OPEN_FAILED	= 1 << 2,
	CHILD_SET_NOT_EPERM	= 1 << 3,
	CHILD_GET_STATE_FAILED	= 1 << 4,
	CHILD_GET_CONFIG_FAILED	= 1 << 5,
	CHILD_BAD_SET_NOT_EPERM	= 1 << 6,
};

FIXTURE(perm) {
	struct mb_nl nl;
	struct mb_config saved;
	struct mb_state st;
};

FIXTURE_SETUP(perm)
{
	MB_OPEN_OR_SKIP(&self->nl);
	ASSERT_EQ(0, mb_nl_get_config(&self->nl, &self->saved));
	ASSERT_EQ(0, mb_nl_get_state(&self->nl, &self->st));
}

FIXTURE_TEARDOWN(perm)
{
	mb_nl_close(&self->nl);
}

/* True when /proc/self/status shows no effective capability. */
static bool caps_gone(void)
{
	char line[128];
	bool gone = false;
	FILE *f;

	f = fopen("/proc/self/status", "re");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long eff;

		if (sscanf(line, "CapEff: %llx", &eff) == 1)
			gone = eff == 0;
	}
	fclose(f);
	return gone;
}

static int unprivileged_child(const struct mb_state *st)
{
	struct mb_config cfg = { 0 };
	struct mb_state got;
	struct mb_config c;
	struct mb_nl nl;
	int ret = 0, err;

	if (setgroups(0, NULL) || setgid(NOBODY) || setuid(NOBODY))
		return CHILD_DROP_FAILED;
	if (!caps_gone())
		ret |= CHILD_STILL_CAPABLE;
	if (mb_nl_open(&nl))
		return ret | CHILD_OPEN_FAILED;

	cfg.have = 1ULL << MEMBROKER_A_LOW_BYTES;
	cfg.low = st->low + 4 * MIB;
	err = mb_nl_set_config(&nl, &cfg);
	if (err != -EPERM) {
		fprintf(stderr, "# unprivileged SET_CONFIG: %s\n",
			strerror(-err));
		ret |= CHILD_SET_NOT_EPERM;
	}
	/* Privilege comes first: no validation result leaks to nobody */
	cfg.have |= 1ULL << MEMBROKER_A_HIGH_BYTES;
	cfg.high = cfg.low;
	err = mb_nl_set_config(&nl, &cfg);
	if (err != -EPERM) {
		fprintf(stderr, "# unprivileged bad SET_CONFIG: %s\n",
			strerror(-err));
		ret |= CHILD_BAD_SET_NOT_EPERM;
	}
	err = mb_nl_get_state(&nl, &got);
	if (err || (got.have & MB_STATE_ATTRS) != MB_STATE_ATTRS)
		ret |= CHILD_GET_STATE_FAILED;
	if (mb_nl_get_config(&nl, &c))
		ret |= CHILD_GET_CONFIG_FAILED;
	mb_nl_close(&nl);
	return ret;
}

TEST_F(perm, unprivileged_can_read_not_write)
{
	struct mb_config after;
	struct mb_state st;
	int status;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(unprivileged_child(&self->st));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status) & CHILD_DROP_FAILED);
	EXPECT_EQ(0, WEXITSTATUS(status) & CHILD_STILL_CAPABLE);
	EXPECT_EQ(0, WEXITSTATUS(status) & CHILD_OPEN_FAILED);
	EXPECT_EQ(0, WEXITSTATUS(status) & CHILD_SET_NOT_EPERM);
	EXPECT_EQ(0, WEXITSTATUS(status) & CHILD_BAD_SET_NOT_EPERM);
	EXPECT_EQ(0, WEXITSTATUS(status) & CHILD_GET_STATE_FAILED);
	EXPECT_EQ(0, WEXITSTATUS(status) & CHILD_GET_CONFIG_FAILED);

	ASSERT_EQ(0, mb_nl_get_config(&self->nl, &after));
	EXPECT_TRUE(mb_config_equal(&self->saved, &after));
	ASSERT_EQ(0, mb_nl_get_state(&self->nl, &st));
	EXPECT_EQ(self->st.low, st.low);
}

TEST_HARNESS_MAIN
