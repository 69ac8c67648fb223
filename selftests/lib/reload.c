// SPDX-License-Identifier: GPL-2.0
/*
 * The library when membroker.ko is unloaded and loaded again: a
 * subscribed mb_kmod handle hears the module go (-ENODEV) and come back
 * (-ENOBUFS: resynchronise), its requests fail with -ENOENT meanwhile
 * and work again after; a kmod monitor carries on from /proc/meminfo
 * while the module is away and follows the new module, whose sequence
 * numbers start again at 1, once it is back.
 *
 * Needs $MB_MODULE (set by the VM's init) to load the module again; the
 * module is loaded again whatever happens.  Waits are bounded by a
 * deadline that only turns a hang into a failure.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "membroker.h"
#include "linux/membroker.h"

#define DEADLINE_MS	20000	/* a hang, not a timing requirement */

/* Run a busybox applet; 0 if it exited 0, else -EIO. */
static int run(const char *prog, const char *arg)
{
	int status;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		execlp(prog, prog, arg, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

static int module_unload(void)
{
	return run("rmmod", "membroker");
}

static int module_load(void)
{
	return run("insmod", getenv("MB_MODULE"));
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Wait for the fd to be readable; false at the deadline. */
static bool wait_fd(int fd, uint64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint64_t now = now_ms();

	if (now >= deadline)
		return false;
	return poll(&p, 1, (int)(deadline - now)) == 1;
}

FIXTURE(reload) {
	struct mb_kmod *k;
};

FIXTURE_SETUP(reload)
{
	int err;

	if (!getenv("MB_MODULE"))
		SKIP(return, "MB_MODULE not set: cannot reload");
	err = mb_kmod_open(&self->k);
	if (err == -ENOENT)
		SKIP(return, "membroker.ko is not loaded");
	ASSERT_EQ(0, err);
}

FIXTURE_TEARDOWN(reload)
{
	struct mb_kmod *k;

	/* whatever happened, leave the module loaded */
	if (mb_kmod_open(&k) == -ENOENT) {
		EXPECT_EQ(0, module_load());
	} else {
		mb_kmod_close(k);
	}
	mb_kmod_close(self->k);
}

/* Next mb_kmod_recv() result that is not 0, or 0 at the deadline. */
static int next_event(struct mb_kmod *k, struct mb_notification *n,
		      uint64_t deadline)
{
	int r;

	for (;;) {
		r = mb_kmod_recv(k, n);
		if (r != 0)
			return r;
		if (!wait_fd(mb_kmod_get_fd(k), deadline))
			return 0;
	}
}

/* Make the module notify: every accepted SET_CONFIG does. */
static int poke_config(struct mb_kmod *k)
{
	struct mb_kmod_config c;
	int err;

	err = mb_kmod_get_config(k, &c);
	if (err)
		return err;
	c.set_mask = MB_KCFG_RATELIMIT;
	return mb_kmod_set_config(k, &c, NULL, 0);
}

TEST_F(reload, kmod_handle)
{
	uint64_t deadline = now_ms() + DEADLINE_MS;
	struct mb_notification n, st;
	int r;

	ASSERT_EQ(0, mb_kmod_subscribe(self->k));
	while (mb_kmod_recv(self->k, &n) != 0)
		;

	ASSERT_EQ(0, module_unload());
	/* NOTIFYs sent while going away may come first */
	do {
		r = next_event(self->k, &n, deadline);
	} while (r == 1);
	EXPECT_EQ(-ENODEV, r);
	EXPECT_EQ(-ENOENT, mb_kmod_get_state(self->k, &st));

	ASSERT_EQ(0, module_load());
	do {
		r = next_event(self->k, &n, deadline);
	} while (r == 1);
	EXPECT_EQ(-ENOBUFS, r);
	/* the resynchronisation the caller is told to do */
	ASSERT_EQ(0, mb_kmod_get_state(self->k, &st));
	TH_LOG("new module: state seq %llu", (unsigned long long)st.seq);
	EXPECT_LE(st.seq, 3);

	/* subscribed to the new module's group: its NOTIFYs arrive */
	ASSERT_EQ(0, poke_config(self->k));
	do {
		r = next_event(self->k, &n, deadline);
	} while (r == 1 && n.reason != MEMBROKER_REASON_CONFIG);
	ASSERT_EQ(1, r);
	EXPECT_GT(n.seq, st.seq);
	EXPECT_LE(n.seq, st.seq + 3);
}

struct seen {
	int calls;
	struct mb_notification last;
};

static void on_note(struct mb_monitor *mon, const struct mb_notification *n,
		    void *arg)
{
	struct seen *s = arg;

	(void)mon;
	s->calls++;
	s->last = *n;
}

/* Dispatch until a notification with @pred arrives; false at deadline. */
#define UNTIL(mon, s, deadline, pred) ({				\
	bool _ok = false;						\
	while (!_ok) {							\
		mb_monitor_dispatch(mon);				\
		_ok = (pred);						\
		if (!_ok && !wait_fd(mb_monitor_get_fd(mon), deadline))	\
			break;						\
	}								\
	_ok; })

TEST_F(reload, monitor_follows)
{
	struct mb_monitor_opts o = MB_OPTS(mb_monitor_opts,
					   .source = MB_SOURCE_KMOD,
					   .low_repeat_ms = UINT32_MAX);
	uint64_t deadline = now_ms() + DEADLINE_MS;
	struct seen s = { 0 };
	struct mb_monitor *mon;
	uint64_t seq;

	ASSERT_EQ(0, mb_monitor_new(&mon, &o));
	mb_monitor_subscribe(mon, on_note, &s);
	ASSERT_TRUE(UNTIL(mon, &s, deadline, s.calls >= 1));
	EXPECT_EQ(MB_SOURCE_KMOD, s.last.source);
	TH_LOG("before: seq %llu", (unsigned long long)s.last.seq);

	ASSERT_EQ(0, module_unload());
	EXPECT_TRUE(UNTIL(mon, &s, deadline,
			  s.last.source == MB_SOURCE_MEMINFO));
	EXPECT_GT(s.last.total, 0);
	EXPECT_LT(s.last.low, s.last.high);
	EXPECT_EQ(MB_SOURCE_KMOD, mb_monitor_source(mon));

	ASSERT_EQ(0, module_load());
	ASSERT_TRUE(UNTIL(mon, &s, deadline,
			  s.last.source == MB_SOURCE_KMOD));
	TH_LOG("after: seq %llu", (unsigned long long)s.last.seq);
	EXPECT_LE(s.last.seq, 3);

	/* the new module's notifications are news, not stale */
	seq = s.last.seq;
	ASSERT_EQ(0, poke_config(self->k));
	EXPECT_TRUE(UNTIL(mon, &s, deadline,
			  s.last.reason == MEMBROKER_REASON_CONFIG));
	EXPECT_GT(s.last.seq, seq);
	EXPECT_LE(s.last.seq, seq + 3);
	mb_monitor_free(mon);
}

TEST_HARNESS_MAIN
