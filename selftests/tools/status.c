// SPDX-License-Identifier: GPL-2.0
/*
 * "membrokerctl status" tells what the kernel says: the same state,
 * sequence number and thresholds as /sys/kernel/membroker/ and GET_STATE,
 * every figure present, in text and in JSON, in each of the three states.
 *
 * Figures that the module reads afresh on each request (available and
 * committed memory) move a little between two readings in a live system;
 * they are compared with a margin far below any unit mistake.  Everything
 * else is compared exactly, bracketed by readings before and after.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mb_test.h"
#include "ctl_fixture.h"

/* What other processes may allocate or free between two readings */
#define DRIFT		(16 * MIB)

FIXTURE(status) {
	struct ctl_proc p;
	struct ctl_kernel k;
};

FIXTURE_SETUP(status)
{
	ctl_kernel_open(_metadata, &self->k);
}

FIXTURE_TEARDOWN(status)
{
	ctl_proc_free(&self->p);
	ctl_kernel_close(_metadata, &self->k);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

/* The wall clock now, in the tool's format up to the milliseconds */
static void wall_now(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03ld",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
}

static uint64_t diff(uint64_t a, uint64_t b)
{
	return a > b ? a - b : b - a;
}

/*
 * The kernel's side around one run of the tool: sysfs before and after,
 * and GET_STATE after.  "quiet" means no notification in between, so
 * that the state the tool saw is the one sysfs shows.
 */
struct around {
	uint64_t t0, t1;
	char wall0[96], wall1[96];
	uint64_t seq0, seq1;
	uint32_t sys_state;
	uint64_t sys_flags, sys_low, sys_high, sys_total;
	struct mb_state now;
	bool quiet;
};

static void before(struct around *a)
{
	memset(a, 0, sizeof(*a));
	mb_sysfs_read_u64("seq", &a->seq0);
	wall_now(a->wall0, sizeof(a->wall0));
	a->t0 = mono_ns();
}

static int after(struct around *a, struct mb_nl *nl)
{
	int err;

	a->t1 = mono_ns();
	wall_now(a->wall1, sizeof(a->wall1));
	err = mb_sysfs_read_u64("seq", &a->seq1);
	err = err ?: mb_sysfs_read_state(&a->sys_state);
	err = err ?: mb_sysfs_read_u64("flags", &a->sys_flags);
	err = err ?: mb_sysfs_read_u64("low_bytes", &a->sys_low);
	err = err ?: mb_sysfs_read_u64("high_bytes", &a->sys_high);
	err = err ?: mb_sysfs_read_u64("total_bytes", &a->sys_total);
	err = err ?: mb_nl_get_state(nl, &a->now);
	a->quiet = a->seq0 == a->seq1;
	return err;
}

static const char *const text_keys[] = {
	"source", "state", "flags", "available", "total", "low", "high",
	"committed", "commit limit", "commit ratio", "seq", "timestamp",
	"time", "reason",
};

/* "status" as text against the kernel, expecting @want_state */
static void __check_text(struct __test_metadata *_metadata,
			 FIXTURE_DATA(status) *self, uint32_t want_state)
{
	static const char *const sizes[] = { "available", "total", "low",
					     "high", "committed",
					     "commit limit" };
	uint64_t total, low, high, avail, committed, limit, seq;
	unsigned long long sec, usec;
	char buf[128];
	const char *out;
	struct around a;
	size_t i;
	int n;

	before(&a);
	ASSERT_EQ(CTL_OK, ctl_run(&self->p, 0, "status"));
	ASSERT_EQ(0, after(&a, &self->k.nl));
	out = self->p.out.s;
	EXPECT_EQ(0, self->p.err.len) TH_LOG("stderr: %s", self->p.err.s);

	for (i = 0; i < ARRAY_SIZE(text_keys); i++)
		EXPECT_NE(NULL, ctl_field(out, text_keys[i], buf, sizeof(buf)))
			TH_LOG("no '%s:' line in:\n%s", text_keys[i], out);
	for (i = 0; i < ARRAY_SIZE(sizes); i++)
		EXPECT_TRUE(ctl_field_size_ok(out, sizes[i]))
			TH_LOG("'%s' is not its figure in binary units",
			       ctl_field(out, sizes[i], buf, sizeof(buf)));

	EXPECT_STREQ("kmod", ctl_field(out, "source", buf, sizeof(buf)));
	EXPECT_STREQ("query", ctl_field(out, "reason", buf, sizeof(buf)));
	EXPECT_STREQ(ctl_state_name(want_state),
		     ctl_field(out, "state", buf, sizeof(buf)));
	if (a.quiet)
		EXPECT_STREQ(ctl_state_name(a.sys_state),
			     ctl_field(out, "state", buf, sizeof(buf)));
	EXPECT_STREQ(a.sys_flags & MEMBROKER_FLAG_VIRTUAL_LOW ?
		     "virtual_low" : "none",
		     ctl_field(out, "flags", buf, sizeof(buf)));

	ASSERT_NE(NULL, ctl_field(out, "seq", buf, sizeof(buf)));
	seq = strtoull(buf, NULL, 10);
	EXPECT_LE(a.seq0, seq);
	EXPECT_GE(a.seq1, seq);

	ASSERT_EQ(0, ctl_field_bytes(out, "total", &total));
	ASSERT_EQ(0, ctl_field_bytes(out, "low", &low));
	ASSERT_EQ(0, ctl_field_bytes(out, "high", &high));
	ASSERT_EQ(0, ctl_field_bytes(out, "available", &avail));
	ASSERT_EQ(0, ctl_field_bytes(out, "committed", &committed));
	ASSERT_EQ(0, ctl_field_bytes(out, "commit limit", &limit));
	EXPECT_EQ(a.sys_total, total);
	EXPECT_EQ(a.now.total, total);
	EXPECT_EQ(a.sys_low, low);
	EXPECT_EQ(a.now.low, low);
	EXPECT_EQ(a.sys_high, high);
	EXPECT_EQ(a.now.high, high);
	EXPECT_EQ(a.now.commit_limit, limit);
	EXPECT_GE(DRIFT, diff(a.now.available, avail))
		TH_LOG("available %llu, GET_STATE %llu",
		       (unsigned long long)avail,
		       (unsigned long long)a.now.available);
	EXPECT_GE(DRIFT, diff(a.now.committed, committed));

	/* the reading was taken while the tool ran */
	ASSERT_NE(NULL, ctl_field(out, "timestamp", buf, sizeof(buf)));
	n = sscanf(buf, "%llu.%6llu (monotonic)", &sec, &usec);
	ASSERT_EQ(2, n);
	EXPECT_LE(a.t0 / 1000, sec * 1000000 + usec);
	EXPECT_GE(a.t1 / 1000, sec * 1000000 + usec);
	ASSERT_NE(NULL, ctl_field(out, "time", buf, sizeof(buf)));
	EXPECT_LE(0, strncmp(buf, a.wall0, 23))
		TH_LOG("%s before %s", buf, a.wall0);
	EXPECT_GE(0, strncmp(buf, a.wall1, 23))
		TH_LOG("%s after %s", buf, a.wall1);
}

static void __check_json(struct __test_metadata *_metadata,
			 FIXTURE_DATA(status) *self, uint32_t want_state)
{
	static const char *const keys[] = {
		"source_in_use", "module_loaded", "time_ns", "wall_time",
		"seq", "state", "flags", "virtual_low", "available_bytes",
		"total_bytes", "low_bytes", "high_bytes", "committed_bytes",
		"commit_limit_bytes", "reason", "source",
	};
	uint64_t v, flags, seq;
	struct json *j = NULL;
	struct around a;
	bool b;
	size_t i;

	before(&a);
	ASSERT_EQ(CTL_OK, ctl_run(&self->p, 0, "-j", "status"));
	ASSERT_EQ(0, after(&a, &self->k.nl));
	ASSERT_EQ(0, json_parse(self->p.out.s, &j))
		TH_LOG("not JSON: %s", self->p.out.s);
	ASSERT_EQ(JSON_OBJECT, j->type);
	EXPECT_EQ(1, ctl_count_lines(self->p.out.s));

	for (i = 0; i < ARRAY_SIZE(keys); i++)
		EXPECT_NE(NULL, json_get(j, keys[i]))
			TH_LOG("no \"%s\" (or twice)", keys[i]);
	EXPECT_STREQ("kmod", json_str(j, "source_in_use") ?: "");
	EXPECT_STREQ("kmod", json_str(j, "source") ?: "");
	EXPECT_EQ(0, json_bool(j, "module_loaded", &b));
	EXPECT_TRUE(b);
	EXPECT_STREQ("query", json_str(j, "reason") ?: "");
	EXPECT_STREQ(ctl_state_name(want_state), json_str(j, "state") ?: "");
	if (a.quiet)
		EXPECT_STREQ(ctl_state_name(a.sys_state),
			     json_str(j, "state") ?: "");
	ASSERT_EQ(0, json_u64(j, "flags", &flags));
	EXPECT_EQ(a.sys_flags, flags);
	EXPECT_EQ(0, json_bool(j, "virtual_low", &b));
	EXPECT_EQ(!!(flags & MEMBROKER_FLAG_VIRTUAL_LOW), b);

	ASSERT_EQ(0, json_u64(j, "seq", &seq));
	EXPECT_LE(a.seq0, seq);
	EXPECT_GE(a.seq1, seq);
	ASSERT_EQ(0, json_u64(j, "time_ns", &v));
	EXPECT_LE(a.t0, v);
	EXPECT_GE(a.t1, v);
	ASSERT_EQ(0, json_u64(j, "total_bytes", &v));
	EXPECT_EQ(a.sys_total, v);
	EXPECT_EQ(a.now.total, v);
	ASSERT_EQ(0, json_u64(j, "low_bytes", &v));
	EXPECT_EQ(a.sys_low, v);
	EXPECT_EQ(a.now.low, v);
	ASSERT_EQ(0, json_u64(j, "high_bytes", &v));
	EXPECT_EQ(a.sys_high, v);
	EXPECT_EQ(a.now.high, v);
	ASSERT_EQ(0, json_u64(j, "commit_limit_bytes", &v));
	EXPECT_EQ(a.now.commit_limit, v);
	ASSERT_EQ(0, json_u64(j, "available_bytes", &v));
	EXPECT_GE(DRIFT, diff(a.now.available, v));
	ASSERT_EQ(0, json_u64(j, "committed_bytes", &v));
	EXPECT_GE(DRIFT, diff(a.now.committed, v));
	json_free(j);
}

#define check_text(self, state)	__check_text(_metadata, self, state)
#define check_json(self, state)	__check_json(_metadata, self, state)

TEST_F(status, text_matches_kernel)
{
	check_text(self, self->k.st.state);
}

TEST_F(status, json_matches_kernel)
{
	check_json(self, self->k.st.state);
}

/*
 * Thresholds moved around available memory put the module in each state
 * in turn; status must follow.  Going to steady and then low is more
 * severe each time, so nothing is held back by the rate limit.
 */
TEST_F(status, every_state)
{
	uint64_t total = self->k.st.total, avail = self->k.st.available;
	struct mb_state seen;

	ASSERT_EQ(MEMBROKER_STATE_HIGH, self->k.st.state)
		TH_LOG("an idle VM should have plenty of memory");
	check_text(self, MEMBROKER_STATE_HIGH);
	check_json(self, MEMBROKER_STATE_HIGH);

	/* high at total: available cannot be above it */
	ASSERT_EQ(0, ctl_set_thresholds(&self->k.nl, &self->k.mc, avail / 2,
					total, &seen));
	ASSERT_EQ(MEMBROKER_STATE_STEADY, seen.state);
	check_text(self, MEMBROKER_STATE_STEADY);
	check_json(self, MEMBROKER_STATE_STEADY);

	/* low above available */
	ASSERT_EQ(0, ctl_set_thresholds(&self->k.nl, &self->k.mc,
					total - 8 * MIB, total, &seen));
	ASSERT_EQ(MEMBROKER_STATE_LOW, seen.state);
	check_text(self, MEMBROKER_STATE_LOW);
	check_json(self, MEMBROKER_STATE_LOW);
}

/*
 * Any user may ask for the state (the module lets them), and the tool
 * must not demand privileges it does not need.
 */
TEST_F(status, unprivileged)
{
	char buf[64];

	EXPECT_EQ(CTL_OK, ctl_run(&self->p, CTL_AS_NOBODY, "status"));
	EXPECT_STREQ("kmod", ctl_field(self->p.out.s, "source", buf,
				       sizeof(buf)) ?: "(none)");
	EXPECT_STREQ(ctl_state_name(self->k.st.state),
		     ctl_field(self->p.out.s, "state", buf, sizeof(buf)) ?:
		     "(none)");
}

TEST_HARNESS_MAIN
