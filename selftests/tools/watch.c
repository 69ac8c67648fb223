// SPDX-License-Identifier: GPL-2.0
/*
 * "membrokerctl watch" prints each notification the module multicasts,
 * as it arrives, with exactly the figures a listener of its own receives:
 * time, sequence number, state, flags, available and total memory,
 * thresholds and reason.  Notifications are caused on purpose by
 * configuration changes (reason config), which the module announces at
 * once.  --count, --timeout, SIGINT and SIGTERM end it with the exit
 * status membrokerctl(8) promises.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "mb_host.h"
#include "mb_test.h"
#include "ctl_fixture.h"

#define READY		"source: kmod\n"

FIXTURE(watch) {
	struct ctl_proc p;
	struct ctl_kernel k;
	bool resized;		/* virtio-mem was resized from mem_size */
	uint64_t mem_size;
};

FIXTURE_SETUP(watch)
{
	ctl_kernel_open(_metadata, &self->k);
}

FIXTURE_TEARDOWN(watch)
{
	ctl_proc_free(&self->p);
	if (self->resized)
		EXPECT_EQ(0, mb_host_mem_size(self->mem_size));
	ctl_kernel_close(_metadata, &self->k);
}

/*
 * Change the thresholds and return the notification that announces it,
 * which must be the first one our own listener gets.
 */
static int __notify(struct __test_metadata *_metadata,
		    FIXTURE_DATA(watch) *self, uint64_t low, uint64_t high,
		    struct mb_state *seen)
{
	struct mb_config cfg = {
		.have = (1ULL << MEMBROKER_A_LOW_BYTES) |
			(1ULL << MEMBROKER_A_HIGH_BYTES),
		.low = low,
		.high = high,
	};
	int err;

	err = mb_nl_set_config(&self->k.nl, &cfg);
	if (err)
		return err;
	err = mb_nl_recv_notify(&self->k.mc, seen, MB_NOTIFY_TIMEOUT_MS);
	if (err)
		return err;
	EXPECT_EQ(MEMBROKER_REASON_CONFIG, seen->reason);
	EXPECT_EQ(low, seen->low);
	EXPECT_EQ(high, seen->high);
	return 0;
}

#define notify(self, low, high, seen) \
	__notify(_metadata, self, low, high, seen)

static void __count_one(struct __test_metadata *_metadata,
			FIXTURE_DATA(watch) *self, unsigned int flags)
{
	struct mb_state seen;
	char line[512], why[128];

	ASSERT_EQ(0, ctl_start(&self->p, flags, "watch", "--count", "1"));
	ASSERT_EQ(0, ctl_wait_for(&self->p, &self->p.err, READY, 0,
				  CTL_GUARD_MS))
		TH_LOG("no ready line; stderr: %s", self->p.err.s);
	ASSERT_EQ(0, notify(self, self->k.st.low + 4 * MIB, self->k.st.high,
			    &seen));
	ASSERT_EQ(CTL_OK, ctl_finish(&self->p, CTL_GUARD_MS))
		TH_LOG("stderr: %s", self->p.err.s);
	EXPECT_STREQ(READY, self->p.err.s);
	ASSERT_EQ(1, ctl_count_lines(self->p.out.s))
		TH_LOG("stdout: %s", self->p.out.s);
	ctl_nth_line(self->p.out.s, 0, line, sizeof(line));
	EXPECT_EQ(0, ctl_line_matches(line, &seen, why, sizeof(why)))
		TH_LOG("%s in '%s'", why, line);
	EXPECT_NE(NULL, strstr(line, " reason=config"));
}

/* One notification, exactly as the module sent it */
TEST_F(watch, count_one)
{
	__count_one(_metadata, self, 0);
}

/* Any user may listen */
TEST_F(watch, count_one_unprivileged)
{
	__count_one(_metadata, self, CTL_AS_NOBODY);
}

TEST_F(watch, json_lines)
{
	struct mb_state seen[2];
	char line[1024], why[128];
	struct json *j;
	bool resync;
	int i;

	ASSERT_EQ(0, ctl_start(&self->p, 0, "-j", "watch", "--count", "2"));
	ASSERT_EQ(0, ctl_wait_for(&self->p, &self->p.err, READY, 0,
				  CTL_GUARD_MS));
	ASSERT_EQ(0, notify(self, self->k.st.low + 4 * MIB, self->k.st.high,
			    &seen[0]));
	ASSERT_EQ(0, notify(self, self->k.st.low + 8 * MIB, self->k.st.high,
			    &seen[1]));
	ASSERT_EQ(CTL_OK, ctl_finish(&self->p, CTL_GUARD_MS));
	ASSERT_EQ(2, ctl_count_lines(self->p.out.s))
		TH_LOG("stdout: %s", self->p.out.s);
	EXPECT_EQ(seen[0].seq + 1, seen[1].seq);
	for (i = 0; i < 2; i++) {
		ctl_nth_line(self->p.out.s, i, line, sizeof(line));
		ASSERT_EQ(0, json_parse(line, &j)) TH_LOG("not JSON: %s", line);
		EXPECT_EQ(JSON_OBJECT, j->type);
		EXPECT_EQ(0, json_matches_state(j, &seen[i], why, sizeof(why)))
			TH_LOG("%s in %s", why, line);
		EXPECT_EQ(0, json_bool(j, "resync", &resync));
		EXPECT_FALSE(resync);
		json_free(j);
	}
}

/*
 * Transitions as a user watching would see them: to steady, then to low,
 * each line as it happens; then Ctrl-C (SIGINT) ends the watch with
 * status 0.
 */
TEST_F(watch, transitions_until_sigint)
{
	uint64_t total = self->k.st.total, avail = self->k.st.available;
	struct mb_state seen[2];
	char line[512], why[128], want[48];
	int i;

	ASSERT_EQ(MEMBROKER_STATE_HIGH, self->k.st.state);
	ASSERT_EQ(0, ctl_start(&self->p, 0, "watch"));
	ASSERT_EQ(0, ctl_wait_for(&self->p, &self->p.err, READY, 0,
				  CTL_GUARD_MS));

	ASSERT_EQ(0, notify(self, avail / 2, total, &seen[0]));
	EXPECT_EQ(MEMBROKER_STATE_STEADY, seen[0].state);
	snprintf(want, sizeof(want), " seq=%llu ",
		 (unsigned long long)seen[0].seq);
	ASSERT_EQ(0, ctl_wait_for(&self->p, &self->p.out, want, 0,
				  CTL_GUARD_MS))
		TH_LOG("no line for seq %llu; stdout: %s",
		       (unsigned long long)seen[0].seq, self->p.out.s);

	ASSERT_EQ(0, notify(self, total - 8 * MIB, total, &seen[1]));
	EXPECT_EQ(MEMBROKER_STATE_LOW, seen[1].state);
	snprintf(want, sizeof(want), " seq=%llu ",
		 (unsigned long long)seen[1].seq);
	ASSERT_EQ(0, ctl_wait_for(&self->p, &self->p.out, want, 0,
				  CTL_GUARD_MS));

	ASSERT_EQ(0, ctl_signal(&self->p, SIGINT));
	ASSERT_EQ(CTL_OK, ctl_finish(&self->p, CTL_GUARD_MS));
	ASSERT_EQ(2, ctl_count_lines(self->p.out.s))
		TH_LOG("stdout: %s", self->p.out.s);
	for (i = 0; i < 2; i++) {
		ctl_nth_line(self->p.out.s, i, line, sizeof(line));
		EXPECT_EQ(0, ctl_line_matches(line, &seen[i], why,
					      sizeof(why)))
			TH_LOG("%s in '%s'", why, line);
	}
	EXPECT_NE(NULL, strstr(self->p.out.s, " state=steady "));
	EXPECT_NE(NULL, strstr(self->p.out.s, " state=low "));
	EXPECT_STREQ(READY, self->p.err.s);
}

TEST_F(watch, sigterm)
{
	ASSERT_EQ(0, ctl_start(&self->p, 0, "watch"));
	ASSERT_EQ(0, ctl_wait_for(&self->p, &self->p.err, READY, 0,
				  CTL_GUARD_MS));
	ASSERT_EQ(0, ctl_signal(&self->p, SIGTERM));
	EXPECT_EQ(CTL_OK, ctl_finish(&self->p, CTL_GUARD_MS));
	EXPECT_STREQ(READY, self->p.err.s);
}

/*
 * With nothing happening: --timeout alone ends with 0 and no output;
 * with --count too, with 3, so a script can tell.  "Nothing happening"
 * is checked, not assumed: the run counts only if the module's sequence
 * number did not move meanwhile.
 */
static int __quiet_run(struct __test_metadata *_metadata,
		       FIXTURE_DATA(watch) *self, bool count)
{
	uint64_t seq0, seq1;
	int tries, rc;

	for (tries = 0; tries < 5; tries++) {
		EXPECT_EQ(0, mb_sysfs_read_u64("seq", &seq0));
		if (count)
			rc = ctl_run(&self->p, 0, "watch", "--count", "1",
				     "--timeout", "1");
		else
			rc = ctl_run(&self->p, 0, "watch", "--timeout", "1");
		EXPECT_EQ(0, mb_sysfs_read_u64("seq", &seq1));
		if (seq0 == seq1)
			return rc;
		TH_LOG("notification %llu came meanwhile; again",
		       (unsigned long long)seq1);
	}
	return -EAGAIN;
}

TEST_F(watch, timeout_nothing_happens)
{
	EXPECT_EQ(CTL_OK, __quiet_run(_metadata, self, false));
	EXPECT_EQ(0, self->p.out.len) TH_LOG("stdout: %s", self->p.out.s);
	EXPECT_STREQ(READY, self->p.err.s);

	EXPECT_EQ(CTL_TIMEOUT, __quiet_run(_metadata, self, true));
	EXPECT_EQ(0, self->p.out.len) TH_LOG("stdout: %s", self->p.out.s);
	EXPECT_STREQ(READY, self->p.err.s);
}

/* The next notification that shows @total bytes of memory */
static int wait_total(struct mb_nl *mc, uint64_t total, struct mb_state *seen)
{
	int err;

	do {
		err = mb_nl_recv_notify(mc, seen, MB_NOTIFY_TIMEOUT_MS);
	} while (!err && seen->total != total);
	return err;
}

/*
 * Memory that comes and goes: 256 MiB plugged through virtio-mem by the
 * host.  The line for the notification that announces the new total
 * shows it, like every other figure, as the module sent it.
 */
TEST_F_TIMEOUT(watch, memory_plugged, 90)
{
	uint64_t total0 = self->k.st.total, total1 = total0 + 256 * MIB, v;
	char want[48], line[512], why[128];
	struct mb_state seen;
	const char *at;

	if (!mb_host_available())
		SKIP(return, "no host to resize the VM (scripts/vm/director.py)");
	ASSERT_EQ(0, mb_host_query_mem(&self->mem_size));
	ASSERT_EQ(0, ctl_start(&self->p, 0, "watch"));
	ASSERT_EQ(0, ctl_wait_for(&self->p, &self->p.err, READY, 0,
				  CTL_GUARD_MS));

	self->resized = true;
	ASSERT_EQ(0, mb_host_mem_size(self->mem_size + 256 * MIB));
	ASSERT_EQ(0, wait_total(&self->k.mc, total1, &seen))
		TH_LOG("MemTotal never reached %llu",
		       (unsigned long long)total1);
	snprintf(want, sizeof(want), " seq=%llu ",
		 (unsigned long long)seen.seq);
	ASSERT_EQ(0, ctl_wait_for(&self->p, &self->p.out, want, 0,
				  CTL_GUARD_MS))
		TH_LOG("no line for seq %llu; stdout: %s",
		       (unsigned long long)seen.seq, self->p.out.s);
	ASSERT_EQ(0, ctl_signal(&self->p, SIGINT));
	ASSERT_EQ(CTL_OK, ctl_finish(&self->p, CTL_GUARD_MS));
	at = strstr(self->p.out.s, want);
	ASSERT_NE(NULL, at);
	while (at > self->p.out.s && at[-1] != '\n')
		at--;
	ctl_nth_line(at, 0, line, sizeof(line));
	EXPECT_EQ(0, ctl_line_matches(line, &seen, why, sizeof(why)))
		TH_LOG("%s in '%s'", why, line);

	/* status agrees, and the memory goes back */
	ASSERT_EQ(CTL_OK, ctl_run(&self->p, 0, "status"));
	ASSERT_EQ(0, ctl_field_bytes(self->p.out.s, "total", &v));
	EXPECT_EQ(total1, v);
	ASSERT_EQ(0, mb_host_mem_size(self->mem_size));
	ASSERT_EQ(0, wait_total(&self->k.mc, total0, &seen))
		TH_LOG("MemTotal never went back to %llu",
		       (unsigned long long)total0);
	self->resized = false;
}

TEST_HARNESS_MAIN
