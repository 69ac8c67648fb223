// SPDX-License-Identifier: GPL-2.0
/*
 * SET_CONFIG is all or nothing.  Every bad request gets -EINVAL with an
 * extended ack message that says what is wrong and, where one attribute is
 * to blame, points at it; it changes neither the configuration nor the
 * thresholds in force, and publishes nothing.  Good requests apply at
 * once, announce themselves with a CONFIG notification, and can be undone.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mb_test.h"

/* What a test compares with to tell that a request had no effect */
struct before {
	struct mb_config cfg;
	struct mb_state st;
};

static void __snapshot(struct __test_metadata *_metadata, struct mb_nl *nl,
		       struct before *b)
{
	ASSERT_EQ(0, mb_nl_get_config(nl, &b->cfg));
	ASSERT_EQ(MB_CONFIG_ATTRS, b->cfg.have & MB_CONFIG_ATTRS);
	ASSERT_EQ(0, mb_nl_get_state(nl, &b->st));
}

/*
 * Configuration, thresholds in force and history as in @b.  A SET_CONFIG
 * that is accepted publishes its CONFIG notification before it is
 * acknowledged, so it would be in the history already.
 */
static void __expect_unchanged(struct __test_metadata *_metadata,
			       struct mb_nl *nl, const struct before *b)
{
	struct mb_config cfg;
	struct mb_state st, *h;
	int n, i;

	ASSERT_EQ(0, mb_nl_get_config(nl, &cfg));
	EXPECT_TRUE(mb_config_equal(&b->cfg, &cfg));
	ASSERT_EQ(0, mb_nl_get_state(nl, &st));
	EXPECT_EQ(b->st.low, st.low);
	EXPECT_EQ(b->st.high, st.high);

	h = calloc(b->cfg.history_size, sizeof(*h));
	ASSERT_NE(NULL, h);
	n = mb_nl_dump_history(nl, h, b->cfg.history_size);
	EXPECT_LE(0, n);
	for (i = 0; i < n; i++) {
		if (h[i].seq <= b->st.seq)
			continue;
		EXPECT_NE(MEMBROKER_REASON_CONFIG, h[i].reason)
			TH_LOG("seq %llu is a CONFIG notification",
			       (unsigned long long)h[i].seq);
	}
	free(h);
}

/*
 * Send @msg and check that it is refused with -EINVAL, an extack message
 * containing @text, the bad-attribute offset @offs (-1: none), and no
 * effect.
 */
static void __expect_rejected(struct __test_metadata *_metadata,
			      struct mb_nl *nl, const struct before *b,
			      struct nl_msg *msg, const char *text, int offs)
{
	ASSERT_NE(NULL, msg);
	EXPECT_EQ(-EINVAL, mb_nl_do(nl, msg, NULL, NULL));
	TH_LOG("extack: \"%s\", offset %d", nl->extack, nl->extack_offs);
	EXPECT_NE(NULL, strstr(nl->extack, text));
	EXPECT_EQ(offs, nl->extack_offs);
	__expect_unchanged(_metadata, nl, b);
}

#define expect_rejected(msg, text, offs) \
	__expect_rejected(_metadata, &self->nl, &self->b, msg, text, offs)

/*
 * Append attribute @type carrying the low @len bytes (0, 4 or 8) of
 * @value.  Returns its offset from the start of the message, the way
 * NLMSGERR_ATTR_OFFS counts, or -1.
 */
static int put_attr(struct nl_msg *msg, int type, int len, uint64_t value)
{
	int offs = NLMSG_ALIGN(nlmsg_hdr(msg)->nlmsg_len);
	uint32_t v32 = value;

	if (nla_put(msg, type, len, len == 4 ? (void *)&v32 : (void *)&value))
		return -1;
	return offs;
}

/* Messages of the kernel and of membroker.ko (see kmod/membroker.h) */
#define MSG_LOW_HIGH	"low threshold is not below the high threshold"
#define MSG_READ_ONLY	"attribute is read-only"
#define MSG_UNKNOWN	"Unknown attribute type"
#define MSG_LENGTH	"invalid attribute length"

FIXTURE(config) {
	struct mb_nl nl;
	struct mb_nl mc;	/* subscribed to "notify" */
	struct before b;
};

FIXTURE_SETUP(config)
{
	MB_OPEN_OR_SKIP(&self->nl);
	ASSERT_EQ(0, mb_nl_open(&self->mc));
	ASSERT_EQ(0, mb_nl_subscribe(&self->mc));
	__snapshot(_metadata, &self->nl, &self->b);
}

FIXTURE_TEARDOWN(config)
{
	struct mb_config now;

	/* Leave the module as we found it for the tests that follow. */
	if (!mb_nl_get_config(&self->nl, &now) &&
	    !mb_config_equal(&now, &self->b.cfg))
		EXPECT_EQ(0, mb_nl_set_config(&self->nl, &self->b.cfg));
	mb_nl_close(&self->mc);
	mb_nl_close(&self->nl);
}

static struct nl_msg *set_msg(FIXTURE_DATA(config) *self)
{
	return mb_nl_msg(&self->nl, MEMBROKER_CMD_SET_CONFIG, 0);
}

TEST_F(config, low_equal_high)
{
	struct nl_msg *msg = set_msg(self);
	uint64_t v = self->b.st.total / 4;
	int offs;

	ASSERT_NE(NULL, msg);
	offs = put_attr(msg, MEMBROKER_A_LOW_BYTES, 8, v);
	ASSERT_LE(0, put_attr(msg, MEMBROKER_A_HIGH_BYTES, 8, v));
	expect_rejected(msg, MSG_LOW_HIGH, offs);
}

TEST_F(config, low_above_high)
{
	struct nl_msg *msg = set_msg(self);
	int offs;

	ASSERT_NE(NULL, msg);
	ASSERT_LE(0, put_attr(msg, MEMBROKER_A_HIGH_BYTES, 8,
			      self->b.st.total / 4));
	offs = put_attr(msg, MEMBROKER_A_LOW_BYTES, 8, self->b.st.total / 3);
	expect_rejected(msg, MSG_LOW_HIGH, offs);
}

/* Only low is given: it must be checked against the high in force. */
TEST_F(config, low_above_current_high)
{
	struct nl_msg *msg = set_msg(self);
	int offs;

	ASSERT_NE(NULL, msg);
	ASSERT_LT(self->b.st.high, self->b.st.total);
	offs = put_attr(msg, MEMBROKER_A_LOW_BYTES, 8, self->b.st.high +
			(self->b.st.total - self->b.st.high) / 2);
	expect_rejected(msg, MSG_LOW_HIGH, offs);
}

/* Only high is given, below the low in force: high is to blame. */
TEST_F(config, high_below_current_low)
{
	struct nl_msg *msg = set_msg(self);
	int offs;

	ASSERT_NE(NULL, msg);
	ASSERT_LT(MIB, self->b.st.low);
	offs = put_attr(msg, MEMBROKER_A_HIGH_BYTES, 8, self->b.st.low - MIB);
	expect_rejected(msg, MSG_LOW_HIGH, offs);
}

/* Each value is plausible alone; only together are they wrong. */
TEST_F(config, poll_min_above_max)
{
	struct nl_msg *msg = set_msg(self);
	int offs;

	ASSERT_NE(NULL, msg);
	offs = put_attr(msg, MEMBROKER_A_POLL_MIN_MS, 4, 500);
	ASSERT_LE(0, put_attr(msg, MEMBROKER_A_POLL_MAX_MS, 4, 200));
	expect_rejected(msg, "poll_min_ms is greater than poll_max_ms", offs);
}

/* One bad value spoils the whole request: the good one is not applied. */
TEST_F(config, partly_bad)
{
	struct nl_msg *msg = set_msg(self);
	int offs;

	ASSERT_NE(NULL, msg);
	ASSERT_LE(0, put_attr(msg, MEMBROKER_A_RATELIMIT_MS, 4,
			      self->b.cfg.ratelimit_ms + 1));
	ASSERT_LE(0, put_attr(msg, MEMBROKER_A_LOW_BYTES, 8,
			      self->b.st.low + MIB));
	offs = put_attr(msg, MEMBROKER_A_POLL_MIN_MS, 4, 500);
	ASSERT_LE(0, put_attr(msg, MEMBROKER_A_POLL_MAX_MS, 4, 200));
	expect_rejected(msg, "poll_min_ms is greater than poll_max_ms", offs);
}

/* A request that would change nothing is a mistake, not a no-op. */
TEST_F(config, empty)
{
	expect_rejected(set_msg(self), "no configuration attribute to set", -1);
}

TEST_F(config, only_pad)
{
	struct nl_msg *msg = set_msg(self);

	ASSERT_NE(NULL, msg);
	ASSERT_LE(0, put_attr(msg, MEMBROKER_A_PAD, 0, 0));
	expect_rejected(msg, "no configuration attribute to set", -1);
}

/* PAD may come with a GET_CONFIG reply fed back: it is ignored. */
TEST_F(config, pad_is_ignored)
{
	struct nl_msg *msg = set_msg(self);
	struct mb_config got;

	ASSERT_NE(NULL, msg);
	ASSERT_LE(0, put_attr(msg, MEMBROKER_A_PAD, 0, 0));
	ASSERT_LE(0, put_attr(msg, MEMBROKER_A_RATELIMIT_MS, 4,
			      self->b.cfg.ratelimit_ms));
	ASSERT_LE(0, put_attr(msg, MEMBROKER_A_PAD, 4, 0));
	EXPECT_EQ(0, mb_nl_do(&self->nl, msg, NULL, NULL));
	ASSERT_EQ(0, mb_nl_get_config(&self->nl, &got));
	EXPECT_TRUE(mb_config_equal(&self->b.cfg, &got));
}

TEST_F(config, trailing_bytes)
{
	struct nl_msg *msg = set_msg(self);
	uint32_t junk = 0;

	ASSERT_NE(NULL, msg);
	ASSERT_LE(0, put_attr(msg, MEMBROKER_A_RATELIMIT_MS, 4,
			      self->b.cfg.ratelimit_ms + 1));
	ASSERT_EQ(0, nlmsg_append(msg, &junk, sizeof(junk), NLMSG_ALIGNTO));
	expect_rejected(msg, "bytes leftover after parsing attributes", -1);
}

TEST_F(config, nested_flag)
{
	struct nl_msg *msg = set_msg(self);
	int offs;

	ASSERT_NE(NULL, msg);
	offs = put_attr(msg, MEMBROKER_A_RATELIMIT_MS | NLA_F_NESTED, 4,
			self->b.cfg.ratelimit_ms + 1);
	expect_rejected(msg, "NLA_F_NESTED not expected", offs);
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
	uint64_t low = self->b.st.low + 4 * MIB;
	uint64_t high = self->b.st.high + 8 * MIB;
	struct mb_config set = { 0 }, got;
	struct mb_state n, st;

	ASSERT_LT(high, self->b.st.total);
	set.have = (1ULL << MEMBROKER_A_LOW_BYTES) |
		   (1ULL << MEMBROKER_A_HIGH_BYTES);
	set.low = low;
	set.high = high;
	ASSERT_EQ(0, mb_nl_set_config(&self->nl, &set));

	ASSERT_EQ(0, mb_nl_get_config(&self->nl, &got));
	EXPECT_EQ(low, got.low);
	EXPECT_EQ(high, got.high);
	EXPECT_EQ(self->b.cfg.ratelimit_ms, got.ratelimit_ms);
	EXPECT_EQ(self->b.cfg.poll_min_ms, got.poll_min_ms);

	ASSERT_EQ(0, wait_config_notify(self, &n));
	EXPECT_EQ(MB_STATE_ATTRS, n.have & MB_STATE_ATTRS);
	EXPECT_EQ(low, n.low);
	EXPECT_EQ(high, n.high);
	EXPECT_LT(self->b.st.seq, n.seq);

	ASSERT_EQ(0, mb_nl_get_state(&self->nl, &st));
	EXPECT_EQ(low, st.low);
	EXPECT_EQ(high, st.high);

	/* Back to what it was: thresholds in force return too. */
	ASSERT_EQ(0, mb_nl_set_config(&self->nl, &self->b.cfg));
	ASSERT_EQ(0, mb_nl_get_config(&self->nl, &got));
	EXPECT_TRUE(mb_config_equal(&self->b.cfg, &got));
	ASSERT_EQ(0, wait_config_notify(self, &n));
	EXPECT_EQ(self->b.st.low, n.low);
	EXPECT_EQ(self->b.st.high, n.high);
	ASSERT_EQ(0, mb_nl_get_state(&self->nl, &st));
	EXPECT_EQ(self->b.st.low, st.low);
	EXPECT_EQ(self->b.st.high, st.high);
}

/* The limits themselves are accepted. */
TEST_F(config, range_limits_accepted)
{
	struct mb_config set = { 0 }, got;

	set.have = (1ULL << MEMBROKER_A_POLL_MIN_MS) |
		   (1ULL << MEMBROKER_A_POLL_MAX_MS) |
		   (1ULL << MEMBROKER_A_RATELIMIT_MS) |
		   (1ULL << MEMBROKER_A_VIRTUAL_LOW_PERCENT);
	set.poll_min_ms = 1000;
	set.poll_max_ms = 60000;
	set.ratelimit_ms = 0;
	set.virtual_low_percent = 100;
	ASSERT_EQ(0, mb_nl_set_config(&self->nl, &set));
	ASSERT_EQ(0, mb_nl_get_config(&self->nl, &got));
	EXPECT_EQ(1000, got.poll_min_ms);
	EXPECT_EQ(60000, got.poll_max_ms);
	EXPECT_EQ(0, got.ratelimit_ms);
	EXPECT_EQ(100, got.virtual_low_percent);

	set.poll_min_ms = 1;
	set.poll_max_ms = 10;
	set.ratelimit_ms = 10000;
	set.virtual_low_percent = 1;
	ASSERT_EQ(0, mb_nl_set_config(&self->nl, &set));
	ASSERT_EQ(0, mb_nl_get_config(&self->nl, &got));
	EXPECT_EQ(1, got.poll_min_ms);
	EXPECT_EQ(10, got.poll_max_ms);
	EXPECT_EQ(10000, got.ratelimit_ms);
	EXPECT_EQ(1, got.virtual_low_percent);
}

TEST_F(config, get_config_fed_back_changes_nothing)
{
	struct mb_config got;
	struct mb_state st;

	ASSERT_EQ(0, mb_nl_set_config(&self->nl, &self->b.cfg));
	ASSERT_EQ(0, mb_nl_get_config(&self->nl, &got));
	EXPECT_TRUE(mb_config_equal(&self->b.cfg, &got));
	ASSERT_EQ(0, mb_nl_get_state(&self->nl, &st));
	EXPECT_EQ(self->b.st.low, st.low);
	EXPECT_EQ(self->b.st.high, st.high);
}

/*
 * One bad attribute next to a good one: refused with the message given,
 * pointing at the bad attribute, and the good one is not applied either.
 */
FIXTURE(bad_attr) {
	struct mb_nl nl;
	struct before b;
};

FIXTURE_VARIANT(bad_attr) {
	int type;
	int len;		/* bytes sent: 0, 4 or 8 */
	uint64_t value;
	bool above_total;	/* send total memory + @value */
	const char *msg;	/* expected in the extack */
};

#define BAD(name, t, l, v, above, m)					\
	FIXTURE_VARIANT_ADD(bad_attr, name) {				\
		.type = (t), .len = (l), .value = (v),			\
		.above_total = (above), .msg = (m),			\
	}

/* Out of range: checked by the module, not by a netlink range policy */
BAD(poll_min_zero, MEMBROKER_A_POLL_MIN_MS, 4, 0, false,
	"poll_min_ms must be within 1..1000");
BAD(poll_min_1001, MEMBROKER_A_POLL_MIN_MS, 4, 1001, false,
	"poll_min_ms must be within 1..1000");
BAD(poll_max_9, MEMBROKER_A_POLL_MAX_MS, 4, 9, false,
	"poll_max_ms must be within 10..60000");
BAD(poll_max_60001, MEMBROKER_A_POLL_MAX_MS, 4, 60001, false,
	"poll_max_ms must be within 10..60000");
BAD(ratelimit_10001, MEMBROKER_A_RATELIMIT_MS, 4, 10001, false,
	"ratelimit_ms must be within 0..10000");
BAD(ratelimit_u32_max, MEMBROKER_A_RATELIMIT_MS, 4, UINT32_MAX, false,
	"ratelimit_ms must be within 0..10000");
BAD(virtual_low_percent_zero, MEMBROKER_A_VIRTUAL_LOW_PERCENT, 4, 0, false,
	"virtual_low_percent must be within 1..100");
BAD(virtual_low_percent_101, MEMBROKER_A_VIRTUAL_LOW_PERCENT, 4, 101, false,
	"virtual_low_percent must be within 1..100");
BAD(low_above_total, MEMBROKER_A_LOW_BYTES, 8, 1, true,
	"low threshold exceeds total memory");
BAD(low_u64_max, MEMBROKER_A_LOW_BYTES, 8, UINT64_MAX, false,
	"low threshold exceeds total memory");
BAD(high_above_total, MEMBROKER_A_HIGH_BYTES, 8, 1, true,
	"high threshold exceeds total memory");
BAD(hysteresis_above_total, MEMBROKER_A_HYSTERESIS_BYTES, 8, 1, true,
	"hysteresis exceeds total memory");

/* What the module reports, never what it is told */
BAD(state, MEMBROKER_A_STATE, 4, MEMBROKER_STATE_LOW, false, MSG_READ_ONLY);
BAD(flags, MEMBROKER_A_FLAGS, 4, 0, false, MSG_READ_ONLY);
BAD(seq, MEMBROKER_A_SEQ, 8, 1, false, MSG_READ_ONLY);
BAD(timestamp_ns, MEMBROKER_A_TIMESTAMP_NS, 8, 1, false, MSG_READ_ONLY);
BAD(available_bytes, MEMBROKER_A_AVAILABLE_BYTES, 8, MIB, false,
	MSG_READ_ONLY);
BAD(total_bytes, MEMBROKER_A_TOTAL_BYTES, 8, MIB, false, MSG_READ_ONLY);
BAD(committed_bytes, MEMBROKER_A_COMMITTED_BYTES, 8, MIB, false,
	MSG_READ_ONLY);
BAD(commit_limit_bytes, MEMBROKER_A_COMMIT_LIMIT_BYTES, 8, MIB, false,
	MSG_READ_ONLY);
BAD(reason, MEMBROKER_A_REASON, 4, MEMBROKER_REASON_CONFIG, false,
	MSG_READ_ONLY);
BAD(history_size, MEMBROKER_A_HISTORY_SIZE, 4, 1024, false,
	"history_size is a module parameter only");

/* Unknown and malformed */
BAD(unspec, MEMBROKER_A_UNSPEC, 4, 1, false, MSG_UNKNOWN);
BAD(above_max, MEMBROKER_A_MAX + 1, 4, 1, false, MSG_UNKNOWN);
BAD(low_as_u32, MEMBROKER_A_LOW_BYTES, 4, MIB, false, MSG_LENGTH);
BAD(low_empty, MEMBROKER_A_LOW_BYTES, 0, 0, false, MSG_LENGTH);
BAD(ratelimit_as_u64, MEMBROKER_A_RATELIMIT_MS, 8, 100, false, MSG_LENGTH);
BAD(ratelimit_empty, MEMBROKER_A_RATELIMIT_MS, 0, 0, false, MSG_LENGTH);

FIXTURE_SETUP(bad_attr)
{
	MB_OPEN_OR_SKIP(&self->nl);
	__snapshot(_metadata, &self->nl, &self->b);
}

FIXTURE_TEARDOWN(bad_attr)
{
	struct mb_config now;

	if (!mb_nl_get_config(&self->nl, &now) &&
	    !mb_config_equal(&now, &self->b.cfg))
		EXPECT_EQ(0, mb_nl_set_config(&self->nl, &self->b.cfg));
	mb_nl_close(&self->nl);
}

TEST_F(bad_attr, rejected)
{
	struct nl_msg *msg = mb_nl_msg(&self->nl, MEMBROKER_CMD_SET_CONFIG, 0);
	const struct mb_config *c = &self->b.cfg;
	uint64_t v = variant->value;
	int offs;

	ASSERT_NE(NULL, msg);
	/* A good change first, of another attribute */
	if (variant->type != MEMBROKER_A_RATELIMIT_MS)
		offs = put_attr(msg, MEMBROKER_A_RATELIMIT_MS, 4,
				c->ratelimit_ms < 10000 ? c->ratelimit_ms + 1 :
							  c->ratelimit_ms - 1);
	else
		offs = put_attr(msg, MEMBROKER_A_VIRTUAL_LOW_PERCENT, 4,
				c->virtual_low_percent % 100 + 1);
	ASSERT_LE(0, offs);

	if (variant->above_total)
		v += self->b.st.total;
	offs = put_attr(msg, variant->type, variant->len, v);
	ASSERT_LE(0, offs);
	expect_rejected(msg, variant->msg, offs);
}

TEST_HARNESS_MAIN
