// SPDX-License-Identifier: GPL-2.0
/*
 * Programs without netlink can wait for notifications with poll(POLLPRI)
 * on /sys/kernel/membroker/seq; the uapi promises it wakes them.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>

#include "mb_test.h"

FIXTURE(sysfs) {
	struct mb_nl nl;
	struct mb_config saved;
	int fd;
};

FIXTURE_SETUP(sysfs)
{
	self->fd = -1;
	MB_OPEN_OR_SKIP(&self->nl);
	ASSERT_EQ(0, mb_nl_get_config(&self->nl, &self->saved));
	self->fd = open(MB_SYSFS_DIR "/seq", O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, self->fd);
}

FIXTURE_TEARDOWN(sysfs)
{
	struct mb_config now;

	if (!mb_nl_get_config(&self->nl, &now) &&
	    !mb_config_equal(&now, &self->saved))
		EXPECT_EQ(0, mb_nl_set_config(&self->nl, &self->saved));
	if (self->fd >= 0)
		close(self->fd);
	mb_nl_close(&self->nl);
}

/* Read the file from the start; a read also re-arms POLLPRI. */
static int read_seq(int fd, uint64_t *seq)
{
	char buf[32], *end;
	ssize_t n;

	n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return n < 0 ? -errno : -ENODATA;
	buf[n] = '\0';
	*seq = strtoull(buf, &end, 0);
	return end == buf ? -EBADMSG : 0;
}

TEST_F_TIMEOUT(sysfs, seq_wakes_poll, 60)
{
	struct pollfd pfd = { .fd = self->fd, .events = POLLPRI };
	struct mb_config moved = { 0 };
	uint64_t before, after;
	struct mb_state st;

	ASSERT_EQ(0, read_seq(self->fd, &before));
	ASSERT_EQ(0, mb_nl_get_state(&self->nl, &st));
	moved.have = 1ULL << MEMBROKER_A_LOW_BYTES;
	moved.low = st.low + 4 * MIB;
	ASSERT_LT(moved.low, st.high);
	ASSERT_EQ(0, mb_nl_set_config(&self->nl, &moved));

	ASSERT_EQ(1, poll(&pfd, 1, MB_NOTIFY_TIMEOUT_MS));
	EXPECT_TRUE(pfd.revents & POLLPRI);
	ASSERT_EQ(0, read_seq(self->fd, &after));
	EXPECT_LT(before, after);

	/* Re-armed by the read: the restore wakes it again. */
	ASSERT_EQ(0, mb_nl_set_config(&self->nl, &self->saved));
	pfd.revents = 0;
	ASSERT_EQ(1, poll(&pfd, 1, MB_NOTIFY_TIMEOUT_MS));
	EXPECT_TRUE(pfd.revents & POLLPRI);
	before = after;
	ASSERT_EQ(0, read_seq(self->fd, &after));
	EXPECT_LT(before, after);
}

TEST_HARNESS_MAIN
