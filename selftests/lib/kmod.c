// SPDX-License-Identifier: GPL-2.0
/*
 * The library's kernel module client (mb_kmod_*) against the real module:
 * replies parse, errors come back as the kernel's -errno with its extack
 * text, an unprivileged SET_CONFIG is -EPERM, the history walks in seq
 * order, a SET_CONFIG is seen as a NOTIFY on the subscribed socket, and
 * an overrun socket reports -ENOBUFS once and can resynchronise; and a
 * cache that starts while the module says STEADY fills up to its
 * broker's growth allowance instead of staying empty.
 * The module's configuration is restored after every test.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "lib_test.h"
#include "membroker.h"
#include "linux/membroker.h"

#define MIB		(1024ULL * 1024)
#define KCFG_ALL	(MB_KCFG_LOW | MB_KCFG_HIGH | MB_KCFG_HYSTERESIS | \
			 MB_KCFG_POLL_MIN | MB_KCFG_POLL_MAX | \
			 MB_KCFG_RATELIMIT | MB_KCFG_VIRTUAL_LOW)
#define POLL_MS		10000		/* a hang, not a timing requirement */

FIXTURE(kmod) {
	struct mb_kmod *k;
	struct mb_kmod_config saved;
};

FIXTURE_SETUP(kmod)
{
	int err = mb_kmod_open(&self->k);

	if (err == -ENOENT)
		SKIP(return, "membroker.ko is not loaded");
	ASSERT_EQ(0, err);
	ASSERT_EQ(0, mb_kmod_get_config(self->k, &self->saved));
}

FIXTURE_TEARDOWN(kmod)
{
	struct mb_kmod_config c = self->saved;

	if (!self->k)
		return;
	c.set_mask = KCFG_ALL;
	EXPECT_EQ(0, mb_kmod_set_config(self->k, &c, NULL, 0));
	mb_kmod_close(self->k);
}

/* Drain the subscribed socket; returns how many notifications it held. */
static int drain(struct mb_kmod *k)
{
	struct mb_notification n;
	int r, count = 0;

	while ((r = mb_kmod_recv(k, &n)) != 0) {
		if (r < 0 && r != -ENOBUFS)
			return r;
		count++;
	}
	return count;
}

TEST_F(kmod, get_state)
{
	struct mb_notification n;

	ASSERT_EQ(0, mb_kmod_get_state(self->k, &n));
	EXPECT_GE(n.state, MB_STATE_LOW);
	EXPECT_LE(n.state, MB_STATE_HIGH);
	EXPECT_EQ(MB_SOURCE_KMOD, n.source);
	EXPECT_EQ(MEMBROKER_REASON_QUERY, n.reason);
	EXPECT_GT(n.total, 0);
	EXPECT_LE(n.available, n.total);
	EXPECT_LT(n.low, n.high);
	EXPECT_GT(n.commit_limit, 0);
	EXPECT_GT(n.time_ns, 0);
	EXPECT_EQ(0, n.process_rss);
}

TEST_F(kmod, config_roundtrip)
{
	struct mb_kmod_config c = self->saved, back;

	EXPECT_GT(c.history_size, 0);
	EXPECT_LE(c.poll_min_ms, c.poll_max_ms);
	c.set_mask = KCFG_ALL;
	ASSERT_EQ(0, mb_kmod_set_config(self->k, &c, NULL, 0));
	ASSERT_EQ(0, mb_kmod_get_config(self->k, &back));
	EXPECT_EQ(0, memcmp(&self->saved, &back, sizeof(back)));

	c.set_mask = MB_KCFG_RATELIMIT;
	c.ratelimit_ms = self->saved.ratelimit_ms + 7;
	ASSERT_EQ(0, mb_kmod_set_config(self->k, &c, NULL, 0));
	ASSERT_EQ(0, mb_kmod_get_config(self->k, &back));
	EXPECT_EQ(self->saved.ratelimit_ms + 7, back.ratelimit_ms);
	EXPECT_EQ(self->saved.low_bytes, back.low_bytes);
}

TEST_F(kmod, invalid_config_extack)
{
	struct mb_kmod_config c = { 0 }, back;
	char msg[256];

	c.poll_min_ms = 500;
	c.poll_max_ms = 100;
	c.set_mask = MB_KCFG_POLL_MIN | MB_KCFG_POLL_MAX;
	EXPECT_EQ(-EINVAL, mb_kmod_set_config(self->k, &c, msg, sizeof(msg)));
	TH_LOG("extack: \"%s\"", msg);
	EXPECT_NE(NULL, strstr(msg, "poll_min_ms is greater than poll_max_ms"));

	EXPECT_EQ(-EINVAL, mb_kmod_set_config(self->k, &c, NULL, 0));
	c.set_mask = 1U << 31;
	EXPECT_EQ(-EINVAL, mb_kmod_set_config(self->k, &c, msg, sizeof(msg)));

	ASSERT_EQ(0, mb_kmod_get_config(self->k, &back));
	EXPECT_EQ(0, memcmp(&self->saved, &back, sizeof(back)));
}

TEST_F(kmod, unprivileged_eperm)
{
	int status;
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct mb_kmod_config c = self->saved;
		struct mb_notification n;
		struct mb_kmod *k;

		/* nobody, without CAP_NET_ADMIN */
		if (setgid(65534) || setuid(65534))
			_exit(10);
		if (mb_kmod_open(&k))
			_exit(11);
		if (mb_kmod_get_state(k, &n))
			_exit(12);	/* reading stays open to anyone */
		c.set_mask = MB_KCFG_RATELIMIT;
		_exit(mb_kmod_set_config(k, &c, NULL, 0) == -EPERM ? 0 : 13);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

static int hist_cb(const struct mb_notification *n, void *arg)
{
	uint64_t *v = arg;	/* count, first seq, last seq, gaps */

	if (v[0] && n->seq != v[2] + 1)
		v[3]++;
	if (!v[0])
		v[1] = n->seq;
	v[2] = n->seq;
	v[0]++;
	return 0;
}

static int hist_stop(const struct mb_notification *n, void *arg)
{
	(void)n;
	return ++*(int *)arg == 2;
}

TEST_F(kmod, history)
{
	struct mb_kmod_config c = self->saved;
	struct mb_notification n;
	uint64_t v[4] = { 0 };
	int calls = 0;

	/* one more entry, for certain */
	c.set_mask = MB_KCFG_RATELIMIT;
	ASSERT_EQ(0, mb_kmod_set_config(self->k, &c, NULL, 0));
	ASSERT_EQ(0, mb_kmod_get_history(self->k, hist_cb, v));
	ASSERT_EQ(0, mb_kmod_get_state(self->k, &n));
	TH_LOG("history: %llu entries, seq %llu..%llu, state seq %llu",
	       (unsigned long long)v[0], (unsigned long long)v[1],
	       (unsigned long long)v[2], (unsigned long long)n.seq);
	EXPECT_GE(v[0], 1);
	EXPECT_LE(v[0], self->saved.history_size);
	EXPECT_EQ(0, v[3]);
	EXPECT_LE(v[2], n.seq);

	/* a callback can stop the walk, and the socket stays usable */
	ASSERT_EQ(0, mb_kmod_get_history(self->k, hist_stop, &calls));
	if (v[0] >= 2)
		EXPECT_EQ(2, calls);
	EXPECT_EQ(0, mb_kmod_get_state(self->k, &n));
	EXPECT_EQ(-EINVAL, mb_kmod_get_history(self->k, NULL, NULL));
}

TEST_F(kmod, notify_on_config)
{
	struct mb_kmod_config c = self->saved;
	struct pollfd pfd;
	struct mb_notification st, n;

	EXPECT_EQ(-ENOTCONN, mb_kmod_recv(self->k, &n));
	ASSERT_EQ(0, mb_kmod_subscribe(self->k));
	ASSERT_EQ(0, mb_kmod_subscribe(self->k));	/* idempotent */
	ASSERT_LE(0, drain(self->k));
	ASSERT_EQ(0, mb_kmod_get_state(self->k, &st));

	c.set_mask = MB_KCFG_RATELIMIT;
	ASSERT_EQ(0, mb_kmod_set_config(self->k, &c, NULL, 0));
	pfd.fd = mb_kmod_get_fd(self->k);
	pfd.events = POLLIN;
	ASSERT_EQ(1, poll(&pfd, 1, POLL_MS));
	ASSERT_EQ(1, mb_kmod_recv(self->k, &n));
	EXPECT_EQ(MEMBROKER_REASON_CONFIG, n.reason);
	EXPECT_EQ(MB_SOURCE_KMOD, n.source);
	EXPECT_GT(n.seq, st.seq);
	EXPECT_EQ(st.low, n.low);
}

TEST_F(kmod, overrun_enobufs)
{
	struct mb_kmod_config c = self->saved;
	struct mb_notification n, st;
	int i, r, small = 1, got = 0, lost = 0;

	ASSERT_EQ(0, mb_kmod_subscribe(self->k));
	/* the kernel rounds this up to its minimum: a few messages */
	ASSERT_EQ(0, setsockopt(mb_kmod_get_fd(self->k), SOL_SOCKET,
				SO_RCVBUF, &small, sizeof(small)));
	ASSERT_LE(0, drain(self->k));

	/* every accepted SET_CONFIG notifies, at once with no rate limit */
	c.ratelimit_ms = 0;
	c.set_mask = MB_KCFG_RATELIMIT;
	ASSERT_EQ(0, mb_kmod_set_config(self->k, &c, NULL, 0));
	for (i = 0; i < 64; i++)
		ASSERT_EQ(0, mb_kmod_set_config(self->k, &c, NULL, 0));

	while ((r = mb_kmod_recv(self->k, &n)) != 0) {
		if (r == -ENOBUFS) {
			lost++;
			continue;
		}
		ASSERT_EQ(1, r);
		got++;
	}
	TH_LOG("%d notifications read, %d overruns", got, lost);
	EXPECT_EQ(1, lost);
	EXPECT_GT(got, 0);
	EXPECT_LT(got, 65);
	/* the resync the caller is told to do */
	ASSERT_EQ(0, mb_kmod_get_state(self->k, &st));
	EXPECT_GE(st.seq, n.seq);
}

static bool is_steady(const struct mb_notification *n, const void *arg)
{
	(void)arg;
	return n->state == MB_STATE_STEADY;
}

/*
 * A quiet machine: the module says STEADY (thresholds set around what is
 * available now) when an application starts a cache.  Before the
 * allowance, the broker held the empty cache at 0 and every put was
 * -E2BIG for as long as STEADY lasted.
 */
TEST_F_TIMEOUT(kmod, steady_startup_cache_fills, 90)
{
	struct mb_monitor_opts mo = MB_OPTS(mb_monitor_opts,
					    .source = MB_SOURCE_KMOD);
	struct mb_kmod_config c = self->saved;
	struct mb_notification st, n;
	struct mb_cache_stats cs;
	struct mb_monitor *mon;
	struct mb_broker *b;
	struct mb_cache *cache;
	struct lt_seen seen;
	uint64_t next = 0, headroom;
	int err = 0;
	uint32_t i;

	char msg[256];

	ASSERT_EQ(0, mb_kmod_get_state(self->k, &st));
	ASSERT_GT(st.available, 64 * MIB);
	ASSERT_GT(st.total - st.available, 24 * MIB);
	/*
	 * STEADY from any state: low 32 MiB below what is available, high
	 * half way up to the total (at most total, as the module wants)
	 */
	c.low_bytes = st.available - 32 * MIB;
	c.high_bytes = st.available + (st.total - st.available) / 2;
	c.hysteresis_bytes = 4 * MIB;
	c.set_mask = MB_KCFG_LOW | MB_KCFG_HIGH | MB_KCFG_HYSTERESIS;
	EXPECT_EQ(0, mb_kmod_set_config(self->k, &c, msg, sizeof(msg)))
		TH_LOG("SET_CONFIG: %s", msg);

	lt_seen_init(&seen);
	ASSERT_EQ(0, mb_monitor_new(&mon, &mo));
	ASSERT_EQ(MB_SOURCE_KMOD, mb_monitor_source(mon));
	ASSERT_EQ(0, mb_broker_new(&b, "startup", mon, NULL));
	ASSERT_EQ(0, mb_cache_new(&cache, "startup-cache", NULL));
	ASSERT_EQ(0, mb_broker_add_clerk(b, mb_cache_clerk(cache)));
	/* after the broker: a notification seen here was acted on */
	ASSERT_LE(0, mb_monitor_subscribe(mon, lt_seen_note, &seen));
	ASSERT_EQ(0, mb_monitor_start_thread(mon));
	ASSERT_EQ(0, lt_seen_wait(&seen, &next, is_steady, NULL, 30, &n));
	headroom = n.available - n.low;
	TH_LOG("STEADY: available %llu MiB, low %llu MiB, target %llu KiB",
	       (unsigned long long)(n.available / MIB),
	       (unsigned long long)(n.low / MIB),
	       (unsigned long long)(mb_clerk_target(mb_cache_clerk(cache)) >>
				    10));
	EXPECT_GT(mb_clerk_target(mb_cache_clerk(cache)), 0);

	/* 64 KiB values until one evicts (or 16 MiB were offered) */
	for (i = 0; i < 256 && !err; i++) {
		static char val[64 * 1024];

		err = mb_cache_put(cache, &i, sizeof(i), val, sizeof(val));
		mb_cache_stats(cache, &cs);
		if (cs.evictions)
			break;
	}
	mb_cache_stats(cache, &cs);
	TH_LOG("%u puts: %llu entries, %llu KiB; headroom %llu MiB",
	       i, (unsigned long long)cs.entries,
	       (unsigned long long)(cs.bytes >> 10),
	       (unsigned long long)(headroom / MIB));
	EXPECT_EQ(0, err);
	EXPECT_GT(cs.entries, 1);
	/* a quarter per STEADY, of what is left: less than the headroom */
	EXPECT_LE(cs.bytes, mb_clerk_target(mb_cache_clerk(cache)));
	EXPECT_LT(cs.bytes, headroom);

	mb_monitor_stop_thread(mon);
	mb_broker_free(b);
	mb_cache_free(cache);
	mb_monitor_free(mon);
}

TEST_HARNESS_MAIN
