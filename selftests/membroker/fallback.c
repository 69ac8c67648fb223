// SPDX-License-Identifier: GPL-2.0
/*
 * Configured thresholds after total memory shrinks under them.  The host
 * inflates the balloon (mb_host.h) until a configured low threshold no
 * longer fits; the module falls back to automatic thresholds, as the uapi
 * documents.  What the administrator relies on meanwhile:
 *
 *  - the kernel log says so, but a balloon swinging back and forth across
 *    that point does not fill it: at most two lines a minute;
 *  - SET_CONFIG still works: values a request leaves as they are (the
 *    stale threshold, a GET_CONFIG reply sent back) are not checked
 *    against the smaller total again, so changing the rate limit is
 *    accepted; a value it changes is, and a refusal points at the
 *    attribute to blame, which the request carries.
 *
 * Every setup and teardown gives the VM all of its memory back and puts
 * the configuration back.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "mb_test.h"
#include "mb_dynmem.h"
#include "mb_host.h"

#define KMSG		"/dev/kmsg"
#define LOG_TEXT	"membroker: configured thresholds"
/* At most this many fallback lines a minute (kmod/eval.c) */
#define LOG_BURST	2
#define SWINGS		3

FIXTURE(fallback) {
	struct mb_nl nl;
	struct mb_config saved;
	bool restore;
	uint64_t guest;		/* the VM's memory, as the host counts it */
	uint64_t total;		/* MemTotal with all of it */
	uint64_t low;		/* the configured low threshold */
};

static uint64_t mib_down(uint64_t v)
{
	return v / MIB * MIB;
}

/*
 * A low threshold that fits the whole VM (the automatic high threshold,
 * half the total, is above it) and stops fitting once a balloon of a
 * third of the memory is in: then half the total is below it.
 */
FIXTURE_SETUP(fallback)
{
	struct mb_config cfg;
	struct mb_state st;

	MB_OPEN_OR_SKIP(&self->nl);
	if (!mb_host_available())
		MB_SKIP_SETUP("no host control channel on " MB_HOST_TTY);
	ASSERT_EQ(0, mb_dynmem_restore(MB_DYNMEM_TIMEOUT_MS));
	ASSERT_EQ(0, mb_host_query_balloon(&self->guest));
	ASSERT_EQ(0, mb_nl_get_config(&self->nl, &self->saved));
	ASSERT_EQ(0, mb_nl_get_state(&self->nl, &st));
	self->total = st.total;
	self->low = mib_down(st.total * 2 / 5);

	memset(&cfg, 0, sizeof(cfg));
	cfg.have = (1ULL << MEMBROKER_A_LOW_BYTES) |
		   (1ULL << MEMBROKER_A_HIGH_BYTES) |
		   (1ULL << MEMBROKER_A_HYSTERESIS_BYTES);
	cfg.low = self->low;
	ASSERT_EQ(0, mb_nl_set_config(&self->nl, &cfg));
	self->restore = true;
	ASSERT_EQ(0, mb_nl_get_state(&self->nl, &st));
	ASSERT_EQ(self->low, st.low);
}

FIXTURE_TEARDOWN(fallback)
{
	/* No ASSERT here: a failing one would jump back into the test. */
	EXPECT_EQ(0, mb_dynmem_restore(MB_DYNMEM_TIMEOUT_MS));
	if (self->restore)
		EXPECT_EQ(0, mb_nl_set_config(&self->nl, &self->saved));
	mb_nl_close(&self->nl);
}

static bool near(uint64_t a, uint64_t b, uint64_t slack)
{
	return a > b ? a - b <= slack : b - a <= slack;
}

/*
 * Have the host take @bytes of memory from the guest (0: none), then ask
 * the module until the total is down by that much and it shows the
 * configured low threshold in force, or not (@configured); bounded, a
 * hang fails.
 */
static void __squeeze(struct __test_metadata *_metadata,
		      FIXTURE_DATA(fallback) *self, uint64_t bytes,
		      bool configured, struct mb_state *st)
{
	uint64_t deadline = mb_dynmem_now_ns() +
			    MB_DYNMEM_TIMEOUT_MS * 1000000ULL;

	ASSERT_EQ(0, mb_host_balloon(bytes ? self->guest - bytes :
					     MB_BALLOON_NONE));
	for (;;) {
		ASSERT_EQ(0, mb_nl_get_state(&self->nl, st));
		if (near(st->total, self->total - bytes, 4 * MIB) &&
		    (st->low == self->low) == configured)
			return;
		ASSERT_GT(deadline, mb_dynmem_now_ns())
			TH_LOG("total %llu MiB, low %llu MiB",
			       (unsigned long long)(st->total / MIB),
			       (unsigned long long)(st->low / MIB));
		usleep(100000);
	}
}

#define squeeze(bytes, configured, st) \
	__squeeze(_metadata, self, bytes, configured, st)

/* Lines of membroker's fallback messages readable from @fd now */
static int count_log_lines(int fd)
{
	char rec[1024];
	int n = 0;
	ssize_t len;

	for (;;) {
		len = read(fd, rec, sizeof(rec) - 1);
		if (len < 0 && errno == EPIPE)	/* overwritten: go on */
			continue;
		if (len <= 0)
			return n;
		rec[len] = '\0';
		if (strstr(rec, LOG_TEXT))
			n++;
	}
}

/* First: the log's allowance is per module load and minute. */
TEST_F_TIMEOUT(fallback, log_is_rate_limited, 150)
{
	struct mb_state st;
	int fd, i, lines;

	fd = open(KMSG, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	ASSERT_LE(0, fd);
	ASSERT_LE(0, lseek(fd, 0, SEEK_END));

	for (i = 0; i < SWINGS; i++) {
		squeeze(mib_down(self->total / 3), false, &st);
		squeeze(0, true, &st);
	}
	lines = count_log_lines(fd);
	close(fd);
	TH_LOG("%d swings across the fallback, %d lines logged", SWINGS,
	       lines);
	EXPECT_LE(lines, LOG_BURST);
}

/* Append an attribute; its offset as NLMSGERR_ATTR_OFFS counts, or -1 */
static int put_attr(struct nl_msg *msg, int type, int len, uint64_t value)
{
	int offs = NLMSG_ALIGN(nlmsg_hdr(msg)->nlmsg_len);
	uint32_t v32 = value;

	if (nla_put(msg, type, len, len == 4 ? (void *)&v32 : (void *)&value))
		return -1;
	return offs;
}

/* SET_CONFIG with one attribute: 0 or -errno, offset of the attribute */
static int set_one(struct mb_nl *nl, int type, int len, uint64_t value,
		   int *offs)
{
	struct nl_msg *msg = mb_nl_msg(nl, MEMBROKER_CMD_SET_CONFIG, 0);

	if (!msg)
		return -ENOMEM;
	*offs = put_attr(msg, type, len, value);
	if (*offs < 0) {
		nlmsg_free(msg);
		return -EMSGSIZE;
	}
	return mb_nl_do(nl, msg, NULL, NULL);
}

TEST_F_TIMEOUT(fallback, set_config_after_shrink, 150)
{
	struct mb_config cfg, back;
	struct mb_state st;
	int offs, err;

	/* Two thirds away: the low threshold is now above total memory. */
	squeeze(mib_down(self->total / 3 * 2), false, &st);
	ASSERT_LT(st.total, self->low);

	/* Only the rate limit: nothing about thresholds to refuse */
	err = set_one(&self->nl, MEMBROKER_A_RATELIMIT_MS, 4,
		      self->saved.ratelimit_ms + 1, &offs);
	EXPECT_EQ(0, err) TH_LOG("%s", self->nl.extack);
	ASSERT_EQ(0, mb_nl_get_config(&self->nl, &cfg));
	EXPECT_EQ(self->saved.ratelimit_ms + 1, cfg.ratelimit_ms);
	EXPECT_EQ(self->low, cfg.low);

	/* The stale threshold sent back as it is, and the whole reply */
	err = set_one(&self->nl, MEMBROKER_A_LOW_BYTES, 8, self->low, &offs);
	EXPECT_EQ(0, err) TH_LOG("%s", self->nl.extack);
	back = cfg;
	back.have &= ~(1ULL << MEMBROKER_A_HISTORY_SIZE);
	EXPECT_EQ(0, mb_nl_set_config(&self->nl, &back))
		TH_LOG("%s", self->nl.extack);

	/* A new low threshold is checked against the total, and blamed */
	err = set_one(&self->nl, MEMBROKER_A_LOW_BYTES, 8, self->low + MIB,
		      &offs);
	EXPECT_EQ(-EINVAL, err);
	EXPECT_NE(NULL, strstr(self->nl.extack,
			       "low threshold exceeds total memory"))
		TH_LOG("extack \"%s\"", self->nl.extack);
	EXPECT_EQ(offs, self->nl.extack_offs);

	/* A new high threshold under the stale low one: high is to blame */
	err = set_one(&self->nl, MEMBROKER_A_HIGH_BYTES, 8,
		      mib_down(st.total / 2), &offs);
	EXPECT_EQ(-EINVAL, err);
	EXPECT_NE(NULL, strstr(self->nl.extack,
			       "low threshold is not below the high threshold"))
		TH_LOG("extack \"%s\"", self->nl.extack);
	EXPECT_EQ(offs, self->nl.extack_offs);

	/* Refusals changed nothing; the fallback is still in force. */
	ASSERT_EQ(0, mb_nl_get_config(&self->nl, &back));
	EXPECT_TRUE(mb_config_equal(&cfg, &back));
	ASSERT_EQ(0, mb_nl_get_state(&self->nl, &st));
	EXPECT_GT(self->low, st.low);
}

TEST_HARNESS_MAIN
