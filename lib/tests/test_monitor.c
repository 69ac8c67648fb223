// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The monitor, driven by the fake source: delivery to subscribers, the
 * ring (with RSS), a quiet fd when nothing happens, LOW re-delivery with
 * fresh figures, combination with a second source (most severe wins,
 * flags OR'ed), subscribe/unsubscribe rules, run/stop and the internal
 * thread.  Test sources of our own check what the monitor hands a source
 * (the poll events it saw) and what it does when one fails.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "membroker.h"
#include "internal.h"
#include "tap.h"

static int readable(struct mb_monitor *mon, int timeout)
{
	struct pollfd p = { .fd = mb_monitor_get_fd(mon), .events = POLLIN };

	return poll(&p, 1, timeout);
}

struct seen {
	int calls;
	struct mb_notification last;
	struct mb_monitor *mon;
	int self_id;		/* unsubscribe ourselves on the 2nd call */
	bool state_ok;
};

static void on_note(struct mb_monitor *mon, const struct mb_notification *n,
		    void *arg)
{
	struct mb_notification cur;
	struct seen *s = arg;

	s->calls++;
	s->last = *n;
	/* the library is usable from a callback: no lock is held */
	s->state_ok = mb_monitor_get_state(mon, &cur) == 0 &&
		      cur.state == n->state &&
		      mb_ring_last_seq(mb_monitor_ring(mon)) > 0;
	if (s->self_id >= 0 && s->calls == 2)
		s->state_ok &= mb_monitor_unsubscribe(mon, s->self_id) == 0;
}

static struct mb_monitor *fake_monitor(uint32_t repeat_ms)
{
	struct mb_monitor_opts o = { .sz = sizeof(o),
				     .source = MB_SOURCE_FAKE,
				     .low_repeat_ms = repeat_ms };
	struct mb_monitor *mon = NULL;

	mb_monitor_new(&mon, &o);
	return mon;
}

static void test_fake(void)
{
	struct mb_notification n = { 0 }, recs[8];
	struct seen s = { .self_id = -1 };
	struct mb_monitor *mon;
	uint64_t seqs[8];
	int i, r, id;

	mon = fake_monitor(UINT32_MAX);
	if (!ok(mon != NULL, "fake monitor"))
		return;
	ok(mb_monitor_source(mon) == MB_SOURCE_FAKE, "source is fake");
	ok(mb_monitor_get_state(mon, &n) == 0 && n.state == MB_STATE_UNKNOWN,
	   "nothing known yet");
	id = mb_monitor_subscribe(mon, on_note, &s);
	ok(id >= 0, "subscribe");
	ok(mb_monitor_dispatch(mon) == 0 && s.calls == 0,
	   "first dispatch: nothing to deliver");
	ok(readable(mon, 0) == 0, "fd quiet when nothing happens");

	n.state = MB_STATE_LOW;
	n.available = 12345;
	ok(mb_monitor_fake_push(mon, &n) == 0, "push LOW");
	ok(readable(mon, 0) == 1, "fd readable");
	ok(mb_monitor_dispatch(mon) == 1 && s.calls == 1 &&
	   s.last.state == MB_STATE_LOW && s.last.available == 12345 &&
	   s.last.source == MB_SOURCE_FAKE && s.state_ok,
	   "delivered to the subscriber");
	ok(readable(mon, 0) == 0, "quiet again (no LOW repeat configured)");

	for (i = 0; i < 5; i++) {
		n.state = i % 2 ? MB_STATE_HIGH : MB_STATE_STEADY;
		n.seq = 100 + i;
		mb_monitor_fake_push(mon, &n);
	}
	ok(mb_monitor_dispatch(mon) == 5 && s.calls == 6,
	   "five pushed, five delivered, in one dispatch");
	r = mb_ring_read(mb_monitor_ring(mon), 1, recs, seqs, 8, NULL);
	for (i = 0; i < r; i++)
		if (!recs[i].process_rss || seqs[i] != (uint64_t)i + 1)
			break;
	ok(r == 6 && i == r && recs[0].state == MB_STATE_LOW &&
	   recs[5].seq == 104 && recs[5].state == MB_STATE_STEADY,
	   "the ring has every notification, with RSS");
	ok(mb_monitor_get_state(mon, &n) == 0 && n.seq == 104,
	   "state is the latest");
	ok(mb_monitor_unsubscribe(mon, id) == 0 &&
	   mb_monitor_unsubscribe(mon, id) == -ENOENT, "unsubscribe once");
	n.state = MB_STATE_LOW;
	mb_monitor_fake_push(mon, &n);
	ok(mb_monitor_dispatch(mon) == 1 && s.calls == 6,
	   "no calls after unsubscribe");
	n.state = 7;
	ok(mb_monitor_fake_push(mon, &n) == -EINVAL, "bad state refused");
	mb_monitor_free(mon);
	mb_monitor_free(NULL);
}

static void test_self_unsubscribe(void)
{
	struct mb_notification n = { .state = MB_STATE_HIGH };
	struct seen s = { 0 };
	struct mb_monitor *mon = fake_monitor(0);

	s.self_id = mb_monitor_subscribe(mon, on_note, &s);
	mb_monitor_dispatch(mon);
	mb_monitor_fake_push(mon, &n);
	mb_monitor_fake_push(mon, &n);
	mb_monitor_fake_push(mon, &n);
	ok(mb_monitor_dispatch(mon) == 3 && s.calls == 2 && s.state_ok,
	   "unsubscribing from its own callback: no deadlock, no more calls");
	mb_monitor_free(mon);
}

static char root[] = "/tmp/mb-test-monitor-XXXXXX";

static void write_meminfo(uint64_t avail_kb, uint64_t committed_kb)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/proc/meminfo", root);
	f = fopen(path, "w");
	fprintf(f, "MemTotal:       4194304 kB\nMemFree:         100 kB\n"
		"MemAvailable:   %llu kB\nCommitLimit:    1000000 kB\n"
		"Committed_AS:   %llu kB\n", (unsigned long long)avail_kb,
		(unsigned long long)committed_kb);
	fclose(f);
}

static bool make_root(void)
{
	char path[128];

	if (!mkdtemp(root))
		return false;
	snprintf(path, sizeof(path), "%s/proc", root);
	return mkdir(path, 0755) == 0;
}

static void drop_root(void)
{
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	if (system(cmd))
		diag("could not remove %s", root);
}

/* A file below the root, directories made as needed */
static void put(const char *rel, const char *text)
{
	char path[256], *slash;
	FILE *f;

	snprintf(path, sizeof(path), "%s%s", root, rel);
	for (slash = strchr(path + strlen(root) + 1, '/'); slash;
	     slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		mkdir(path, 0755);
		*slash = '/';
	}
	f = fopen(path, "w");
	if (!f) {
		diag("cannot write %s", path);
		return;
	}
	fputs(text, f);
	fclose(f);
}

static void test_low_repeat(void)
{
	struct mb_notification n = { .state = MB_STATE_LOW };
	struct seen s = { .self_id = -1 };
	struct mb_monitor *mon = fake_monitor(1);

	mb_monitor_subscribe(mon, on_note, &s);
	mb_monitor_dispatch(mon);
	mb_monitor_fake_push(mon, &n);
	ok(mb_monitor_dispatch(mon) == 1 && s.calls == 1, "LOW delivered");
	/* nothing pushed: the monitor's own timer wakes us */
	ok(readable(mon, -1) == 1, "fd readable by itself while LOW");
	while (mb_monitor_dispatch(mon) == 0)
		readable(mon, -1);
	ok(s.calls == 2 && s.last.state == MB_STATE_LOW,
	   "LOW delivered again");
	n.state = MB_STATE_STEADY;
	mb_monitor_fake_push(mon, &n);
	ok(mb_monitor_dispatch(mon) == 1 && s.last.state == MB_STATE_STEADY,
	   "STEADY delivered");
	ok(readable(mon, 0) == 0, "no repeats once the pressure ended");
	mb_monitor_free(mon);
}

/* Dispatch until a subscriber call arrives (the fd bounds each wait). */
static void next_call(struct mb_monitor *mon, struct seen *s)
{
	int calls = s->calls;

	while (s->calls == calls) {
		readable(mon, -1);
		mb_monitor_dispatch(mon);
	}
}

/* Each LOW repeat carries what the source measures now */
static void test_repeat_fresh(void)
{
	struct mb_notification n = { .state = MB_STATE_LOW, .available = 1000 };
	struct seen s = { .self_id = -1 };
	struct mb_monitor *mon = fake_monitor(1);
	struct mb_notification rec;

	mb_monitor_subscribe(mon, on_note, &s);
	mb_monitor_dispatch(mon);
	mb_monitor_fake_push(mon, &n);
	ok(mb_monitor_dispatch(mon) == 1 && s.last.available == 1000,
	   "LOW with 1000 available");
	n.available = 500;
	mb_monitor_fake_set(mon, &n);	/* memory moved, state did not */
	next_call(mon, &s);
	ok(s.calls == 2 && s.last.state == MB_STATE_LOW &&
	   s.last.available == 500, "the repeat carries 500, not 1000");
	mb_ring_read(mb_monitor_ring(mon), mb_ring_last_seq(
		     mb_monitor_ring(mon)), &rec, NULL, 1, NULL);
	ok(rec.available == 500, "... and so does its ring record");
	n.available = 250;
	mb_monitor_fake_set(mon, &n);
	next_call(mon, &s);
	ok(s.last.state == MB_STATE_LOW && s.last.available == 250,
	   "every repeat reads afresh (250)");
	n.state = MB_STATE_STEADY;
	n.available = 5000;
	mb_monitor_fake_set(mon, &n);
	next_call(mon, &s);
	ok(s.last.state == MB_STATE_STEADY && s.last.available == 5000,
	   "a refresh that finds the pressure gone delivers STEADY");
	ok(readable(mon, 0) == 0, "and the repeats stop");

	/* a repeat due while a change is pending: the change goes first */
	n.state = MB_STATE_LOW;
	mb_monitor_fake_push(mon, &n);
	next_call(mon, &s);
	readable(mon, -1);	/* only the repeat's timer wakes it: due */
	n.state = MB_STATE_STEADY;
	mb_monitor_fake_push(mon, &n);
	ok(mb_monitor_dispatch(mon) == 1 && s.last.state == MB_STATE_STEADY,
	   "a STEADY pushed when a repeat is due is delivered, no stale LOW");
	mb_monitor_free(mon);
}

/* The same with a source that measures: meminfo under a fake root */
static void test_repeat_meminfo(void)
{
	struct mb_monitor_opts o = {
		.sz = sizeof(o), .source = MB_SOURCE_MEMINFO, .root = root,
		.low_repeat_ms = 1,
	};
	struct seen s = { .self_id = -1 };
	struct mb_monitor *mon;

	write_meminfo(100 * 1024, 10);		/* 100 MiB: LOW */
	if (!ok(mb_monitor_new(&mon, &o) == 0, "meminfo monitor"))
		return;
	mb_monitor_subscribe(mon, on_note, &s);
	next_call(mon, &s);
	ok(s.last.state == MB_STATE_LOW &&
	   s.last.available == 100 * 1024 * 1024ULL, "LOW at 100 MiB");
	write_meminfo(60 * 1024, 10);		/* still LOW */
	next_call(mon, &s);
	ok(s.last.state == MB_STATE_LOW &&
	   s.last.available == 60 * 1024 * 1024ULL,
	   "the repeat carries the 60 MiB read since");
	mb_monitor_free(mon);
}

/* ---- test sources: what the monitor hands them ---- */

static struct {
	int fd[2];		/* [1] is the source's fd */
	uint32_t revents;	/* OR of what dispatch was given */
	int calls;
	atomic_int fail;	/* returned by dispatch if non-zero */
	atomic_int failed;	/* times it did */
	atomic_bool keep;	/* and leaves its fd readable then */
} ts;

/* A stream socket pair with urgent data: POLLPRI, like a PSI trigger */
static int oob_pair(int fd[2])
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t al = sizeof(a);
	int l;
	char c;

	if (!socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fd)) {
		if (send(fd[0], "!", 1, MSG_OOB) == 1) {
			recv(fd[1], &c, 1, MSG_OOB);	/* and clear it */
			return 0;
		}
		close(fd[0]);
		close(fd[1]);
	}
	/* kernels without AF_UNIX urgent data: TCP over loopback */
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0 || bind(l, (void *)&a, sizeof(a)) || listen(l, 1) ||
	    getsockname(l, (void *)&a, &al))
		goto err;
	fd[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd[0] < 0 || connect(fd[0], (void *)&a, sizeof(a)))
		goto err;
	fd[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (fd[1] < 0)
		goto err;
	close(l);
	return 0;
err:
	if (l >= 0)
		close(l);
	return -1;
}

static int edge_open(struct mb_source *s)
{
	ts.revents = 0;
	ts.calls = 0;
	if (oob_pair(ts.fd))
		return -EOPNOTSUPP;
	s->fd = ts.fd[1];
	s->events = POLLPRI;
	return 0;
}

static int edge_dispatch(struct mb_source *s, struct mb_notification *out)
{
	char c;

	ts.calls++;
	ts.revents |= s->revents;
	if (!(s->revents & POLLPRI))
		return 0;
	/* taking the urgent byte ends the event, as reading PSI does */
	recv(s->fd, &c, 1, MSG_OOB);
	out->state = MB_STATE_LOW;
	out->available = ts.calls;
	return 1;
}

static int edge_timeout(struct mb_source *s)
{
	(void)s;
	return -1;
}

static void edge_close(struct mb_source *s)
{
	close(ts.fd[0]);
	close(s->fd);
	s->fd = -1;
}

static const struct mb_source_ops edge_ops = {
	.type = MB_SOURCE_PSI,
	.name = "edge",
	.open = edge_open,
	.dispatch = edge_dispatch,
	.timeout_ms = edge_timeout,
	.close = edge_close,
};

static void on_stop(struct mb_monitor *mon, const struct mb_notification *n,
		    void *arg)
{
	on_note(mon, n, arg);
	mb_monitor_stop(mon);
}

static void test_revents(void)
{
	struct mb_monitor_opts o = {
		.sz = sizeof(o), .source = MB_SOURCE_PSI,
		.low_repeat_ms = UINT32_MAX,
		.extra_sources = 1U << MB_SOURCE_FAKE,
	};
	struct mb_notification n = { .state = MB_STATE_HIGH };
	struct seen s = { .self_id = -1 };
	struct mb_monitor *mon;
	int calls;

	if (mb_monitor_new_ops(&mon, &o, &edge_ops)) {
		skip("no socket with urgent data here");
		return;
	}
	mb_monitor_subscribe(mon, on_note, &s);
	mb_monitor_dispatch(mon);
	ok(readable(mon, 0) == 0 && !(ts.revents & POLLPRI),
	   "quiet before the event");
	send(ts.fd[0], "!", 1, MSG_OOB);
	ok(readable(mon, -1) == 1, "POLLPRI on the source: fd readable");
	ok(mb_monitor_dispatch(mon) == 1 && s.last.state == MB_STATE_LOW &&
	   (ts.revents & POLLPRI),
	   "dispatch handed the source the POLLPRI its epoll saw");
	ok(readable(mon, 0) == 0, "quiet once the source took the event");

	/* the events mb_monitor_run()'s own epoll_wait() reported too */
	ts.revents = 0;
	mb_monitor_unsubscribe(mon, 0);
	mb_monitor_subscribe(mon, on_stop, &s);
	send(ts.fd[0], "!", 1, MSG_OOB);
	ok(mb_monitor_run(mon, -1) == 0 && (ts.revents & POLLPRI) &&
	   s.calls == 2, "run() passes them on as well");

	/* a POLLPRI source is asked on every dispatch, events or not */
	calls = ts.calls;
	ts.revents = 0;
	mb_monitor_fake_push(mon, &n);
	mb_monitor_dispatch(mon);
	ok(ts.calls == calls + 1 && ts.revents == 0,
	   "an edge source is called when another source woke us");
	mb_monitor_free(mon);
}

static int failing_open(struct mb_source *s)
{
	ts.fd[1] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	s->fd = ts.fd[1];
	return s->fd < 0 ? -errno : 0;
}

static struct {
	pthread_mutex_t m;
	pthread_cond_t cv;
	int calls;
	struct mb_notification last;
} w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, { 0 } };

static void wake(void)
{
	pthread_mutex_lock(&w.m);
	pthread_cond_broadcast(&w.cv);
	pthread_mutex_unlock(&w.m);
}

static int failing_dispatch(struct mb_source *s, struct mb_notification *out)
{
	uint64_t v;
	int err;

	if (!s->last.state) {
		out->state = MB_STATE_HIGH;	/* the initial reading */
		return 1;
	}
	err = atomic_load(&ts.fail);
	/* nothing pending: nothing new (unless failing, fd left readable) */
	if (!(err && atomic_load(&ts.keep)) && read(s->fd, &v, sizeof(v)) < 0)
		return 0;
	if (err) {
		atomic_fetch_add(&ts.failed, 1);
		wake();
		return err;
	}
	out->state = out->state == MB_STATE_LOW ? MB_STATE_STEADY :
						  MB_STATE_LOW;
	return 1;
}

static void failing_close(struct mb_source *s)
{
	close(s->fd);
	s->fd = -1;
}

static const struct mb_source_ops failing_ops = {
	.type = MB_SOURCE_KMOD,
	.name = "failing",
	.open = failing_open,
	.dispatch = failing_dispatch,
	.timeout_ms = edge_timeout,
	.close = failing_close,
};

static void poke(void)
{
	uint64_t one = 1;

	if (write(ts.fd[1], &one, sizeof(one)) != sizeof(one))
		diag("eventfd write failed");
}

static void on_wake(struct mb_monitor *mon, const struct mb_notification *n,
		    void *arg)
{
	(void)mon;
	(void)arg;
	pthread_mutex_lock(&w.m);
	w.calls++;
	w.last = *n;
	pthread_cond_broadcast(&w.cv);
	pthread_mutex_unlock(&w.m);
}

/* Wait for @cond; false after 30 s, which only bounds a hang. */
#define WAIT_FOR(cond) ({						\
	struct timespec dl;						\
	int e = 0;							\
	clock_gettime(CLOCK_REALTIME, &dl);				\
	dl.tv_sec += 30;						\
	pthread_mutex_lock(&w.m);					\
	while (!(cond) && !e)						\
		e = pthread_cond_timedwait(&w.cv, &w.m, &dl);		\
	pthread_mutex_unlock(&w.m);					\
	!e; })

static void test_source_failures(void)
{
	struct mb_monitor_opts o = {
		.sz = sizeof(o), .source = MB_SOURCE_KMOD, .root = root,
		.low_repeat_ms = UINT32_MAX,
	};
	struct mb_monitor *mon;
	int calls;

	write_meminfo(512 * 1024, 10);
	atomic_store(&ts.fail, 0);
	if (!ok(mb_monitor_new_ops(&mon, &o, &failing_ops) == 0,
		"monitor on a test source"))
		return;
	mb_monitor_subscribe(mon, on_wake, NULL);
	mb_monitor_dispatch(mon);
	atomic_store(&ts.fail, -EIO);
	poke();
	ok(mb_monitor_dispatch(mon) == -EIO, "a failing source: -EIO");
	ok(mb_monitor_source(mon) == MB_SOURCE_KMOD, "... and stays in use");

	/* the thread must outlive a failing source */
	atomic_store(&ts.failed, 0);
	ok(mb_monitor_start_thread(mon) == 0, "thread");
	poke();
	ok(WAIT_FOR(atomic_load(&ts.failed) == 1), "it failed in the thread");
	atomic_store(&ts.fail, 0);
	pthread_mutex_lock(&w.m);
	calls = w.calls;
	pthread_mutex_unlock(&w.m);
	poke();
	ok(WAIT_FOR(w.calls > calls),
	   "the thread still dispatches after a source failed");
	mb_monitor_stop_thread(mon);

	/* gone for good: closed, and /proc/meminfo takes over */
	atomic_store(&ts.fail, -ENODEV);
	poke();
	calls = w.calls;
	ok(mb_monitor_dispatch(mon) == 1 && w.calls == calls + 1 &&
	   w.last.source == MB_SOURCE_MEMINFO &&
	   w.last.state == MB_STATE_STEADY,
	   "a source that is gone: meminfo's reading delivered");
	ok(mb_monitor_source(mon) == MB_SOURCE_MEMINFO,
	   "mb_monitor_source() reports the fallback");
	mb_monitor_free(mon);
}

/* A source that fails and leaves its fd readable must not make us spin */
static void test_backoff(void)
{
	struct mb_monitor_opts o = {
		.sz = sizeof(o), .source = MB_SOURCE_KMOD, .root = root,
		.low_repeat_ms = UINT32_MAX,
	};
	struct mb_monitor *mon;
	int calls;

	atomic_store(&ts.fail, 0);
	atomic_store(&ts.keep, true);
	if (!ok(mb_monitor_new_ops(&mon, &o, &failing_ops) == 0,
		"monitor on a test source"))
		return;
	mb_monitor_subscribe(mon, on_wake, NULL);
	mb_monitor_dispatch(mon);
	mb_monitor_set_backoff(mon, 3600 * 1000);
	atomic_store(&ts.fail, -EIO);
	poke();
	ok(mb_monitor_dispatch(mon) == -EIO, "it fails, its fd still readable");
	ok(readable(mon, 0) == 0,
	   "the monitor's fd is quiet: the failing fd rests");
	mb_monitor_free(mon);

	/* with a short rest it is watched, and asked, again */
	if (!ok(mb_monitor_new_ops(&mon, &o, &failing_ops) == 0,
		"monitor on a test source"))
		return;
	mb_monitor_subscribe(mon, on_wake, NULL);
	mb_monitor_dispatch(mon);
	mb_monitor_set_backoff(mon, 1);
	poke();
	ok(mb_monitor_dispatch(mon) == -EIO, "it fails again");
	atomic_store(&ts.fail, 0);
	calls = w.calls;
	while (w.calls == calls) {
		readable(mon, -1);
		mb_monitor_dispatch(mon);
	}
	ok(w.calls == calls + 1, "after its rest the source is asked again");
	atomic_store(&ts.keep, false);
	mb_monitor_free(mon);
}

static void test_combined(void)
{
	struct mb_monitor_opts o = {
		.sz = sizeof(o), .source = MB_SOURCE_FAKE, .root = root,
		.extra_sources = 1U << MB_SOURCE_MEMINFO,
		.low_repeat_ms = UINT32_MAX,
	};
	struct mb_notification n = { 0 };
	struct seen s = { .self_id = -1 };
	struct mb_monitor *mon;

	/* 4 GiB: thresholds 256/768 MiB; 512 MiB available is STEADY */
	write_meminfo(512 * 1024, 10);
	ok(mb_monitor_new(&mon, &o) == 0, "fake + meminfo");
	mb_monitor_subscribe(mon, on_note, &s);
	ok(mb_monitor_dispatch(mon) == 1 && s.last.state == MB_STATE_STEADY &&
	   s.last.source == MB_SOURCE_MEMINFO,
	   "initial state from meminfo delivered");
	n.state = MB_STATE_HIGH;
	mb_monitor_fake_push(mon, &n);
	ok(mb_monitor_dispatch(mon) == 0 && s.calls == 1,
	   "fake HIGH is less severe than STEADY: nothing new");
	ok(mb_monitor_get_state(mon, &n) == 0 &&
	   n.state == MB_STATE_STEADY, "combined state STEADY");
	n.state = MB_STATE_LOW;
	n.flags = 0;
	mb_monitor_fake_push(mon, &n);
	ok(mb_monitor_dispatch(mon) == 1 && s.last.state == MB_STATE_LOW &&
	   s.last.source == MB_SOURCE_FAKE, "fake LOW wins");
	write_meminfo(512 * 1024, 950000);	/* committed 95% */
	put("/proc/sys/vm/overcommit_memory", "2\n");	/* enforced */
	mb_monitor_force_poll(mon);
	ok(mb_monitor_dispatch(mon) == 1 && s.last.state == MB_STATE_LOW &&
	   s.last.flags == MB_FLAG_VIRTUAL_LOW,
	   "meminfo's VIRTUAL_LOW OR'ed into the fake's LOW");
	n.state = MB_STATE_HIGH;
	mb_monitor_fake_push(mon, &n);
	ok(mb_monitor_dispatch(mon) == 1 && s.last.state == MB_STATE_STEADY &&
	   s.last.source == MB_SOURCE_MEMINFO,
	   "fake back to HIGH: meminfo's STEADY decides");
	mb_monitor_free(mon);
}

/*
 * A memory-limited container on a host: either one running low makes
 * the process LOW.  The fake source stands for the host, the cgroup
 * source reads a fake cgroup tree (512 MiB limit: LOW below 64 MiB).
 */
static void test_container(void)
{
	struct mb_monitor_opts o = {
		.sz = sizeof(o), .source = MB_SOURCE_FAKE, .root = root,
		.extra_sources = 1U << MB_SOURCE_CGROUP,
		.low_repeat_ms = UINT32_MAX,
	};
	struct mb_notification n = { .state = MB_STATE_HIGH };
	struct seen s = { .self_id = -1 };
	struct mb_monitor *mon;

	write_meminfo(3 * 1024 * 1024, 10);
	put("/proc/self/cgroup", "0::/app\n");
	put("/proc/self/mountinfo",
	    "30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
	put("/sys/fs/cgroup/app/memory.max", "536870912\n");
	put("/sys/fs/cgroup/app/memory.high", "max\n");
	put("/sys/fs/cgroup/app/memory.current", "104857600\n");
	put("/sys/fs/cgroup/app/memory.events",
	    "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n");
	if (!ok(mb_monitor_new(&mon, &o) == 0, "fake host + cgroup limit"))
		return;
	mb_monitor_subscribe(mon, on_note, &s);
	mb_monitor_fake_push(mon, &n);
	mb_monitor_dispatch(mon);
	ok(s.last.state == MB_STATE_HIGH, "both have room: HIGH");
	n.state = MB_STATE_LOW;
	mb_monitor_fake_push(mon, &n);
	mb_monitor_dispatch(mon);
	ok(s.last.state == MB_STATE_LOW && s.last.source == MB_SOURCE_FAKE,
	   "the host runs low, the container has room: LOW");
	n.state = MB_STATE_HIGH;
	mb_monitor_fake_push(mon, &n);
	mb_monitor_dispatch(mon);
	ok(s.last.state == MB_STATE_HIGH, "the host recovers: HIGH");
	put("/sys/fs/cgroup/app/memory.current", "503316480\n");  /* 480M */
	mb_monitor_force_poll(mon);
	mb_monitor_dispatch(mon);
	ok(s.last.state == MB_STATE_LOW && s.last.source == MB_SOURCE_CGROUP &&
	   s.last.total == 512 * 1024 * 1024ULL,
	   "the container nears its limit on a roomy host: LOW");
	mb_monitor_free(mon);

	/* chosen automatically, the module does not hide the limit */
	o.source = MB_SOURCE_AUTO;
	o.extra_sources = 0;
	atomic_store(&ts.fail, 0);
	s.calls = 0;
	if (!ok(mb_monitor_new_ops(&mon, &o, &failing_ops) == 0,
		"automatic choice: a system-wide source (the module)"))
		return;
	mb_monitor_subscribe(mon, on_note, &s);
	mb_monitor_dispatch(mon);
	ok(mb_monitor_source(mon) == MB_SOURCE_KMOD && s.calls == 1 &&
	   s.last.state == MB_STATE_LOW && s.last.source == MB_SOURCE_CGROUP,
	   "the process's cgroup limit joins it by itself: LOW");
	put("/sys/fs/cgroup/app/memory.current", "104857600\n");
	mb_monitor_force_poll(mon);
	mb_monitor_dispatch(mon);
	ok(s.last.state == MB_STATE_HIGH, "room in the cgroup: HIGH");
	mb_monitor_free(mon);
	o.source = MB_SOURCE_KMOD;
	put("/sys/fs/cgroup/app/memory.current", "503316480\n");
	s.calls = 0;
	mb_monitor_new_ops(&mon, &o, &failing_ops);
	mb_monitor_subscribe(mon, on_note, &s);
	mb_monitor_dispatch(mon);
	ok(s.calls == 1 && s.last.state == MB_STATE_HIGH,
	   "asked for by name, the module is alone");
	mb_monitor_free(mon);
}

static struct {
	pthread_mutex_t m;
	pthread_cond_t cv;
	int calls;
	bool entered, go;
	atomic_bool returned;
} t;

static void on_thread(struct mb_monitor *mon, const struct mb_notification *n,
		      void *arg)
{
	(void)n;
	(void)arg;
	pthread_mutex_lock(&t.m);
	t.calls++;
	t.entered = true;
	pthread_cond_broadcast(&t.cv);
	while (!t.go)
		pthread_cond_wait(&t.cv, &t.m);
	pthread_mutex_unlock(&t.m);
	if (t.calls == 3)
		mb_monitor_stop(mon);
	atomic_store(&t.returned, true);
}

static void *unsub(void *arg)
{
	struct mb_monitor *mon = arg;

	pthread_mutex_lock(&t.m);
	t.go = true;
	pthread_cond_broadcast(&t.cv);
	pthread_mutex_unlock(&t.m);
	mb_monitor_unsubscribe(mon, 0);
	return (void *)(uintptr_t)atomic_load(&t.returned);
}

static void test_thread(void)
{
	struct mb_notification n = { .state = MB_STATE_LOW };
	struct mb_monitor *mon = fake_monitor(UINT32_MAX);
	pthread_t u;
	void *ret;

	pthread_mutex_init(&t.m, NULL);
	pthread_cond_init(&t.cv, NULL);
	ok(mb_monitor_subscribe(mon, on_thread, NULL) == 0, "first id is 0");
	ok(mb_monitor_start_thread(mon) == 0, "thread started");
	ok(mb_monitor_start_thread(mon) == -EALREADY, "only one thread");
	mb_monitor_fake_push(mon, &n);
	pthread_mutex_lock(&t.m);
	while (!t.entered)
		pthread_cond_wait(&t.cv, &t.m);
	pthread_mutex_unlock(&t.m);
	/* the callback runs in the thread; unsubscribing must wait for it */
	pthread_create(&u, NULL, unsub, mon);
	pthread_join(u, &ret);
	ok(ret == (void *)1, "unsubscribe waited for the running callback");
	ok(mb_monitor_stop_thread(mon) == 0, "thread stopped");
	ok(mb_monitor_stop_thread(mon) == 0, "stopping twice is harmless");

	/* run() until a callback calls mb_monitor_stop() */
	t.calls = 1;
	mb_monitor_subscribe(mon, on_thread, NULL);
	mb_monitor_fake_push(mon, &n);
	mb_monitor_fake_push(mon, &n);
	ok(mb_monitor_run(mon, -1) == 0 && t.calls == 3,
	   "run returns after mb_monitor_stop from a callback");
	ok(mb_monitor_run(mon, 0) == 0, "run with timeout 0 returns");
	mb_monitor_free(mon);
	pthread_cond_destroy(&t.cv);
	pthread_mutex_destroy(&t.m);
}

static struct {
	pthread_mutex_t m;
	pthread_cond_t cv;
	int calls;
	uint64_t last_seq;
	int out_of_order;
} cd = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0 };

static void on_count(struct mb_monitor *mon, const struct mb_notification *n,
		     void *arg)
{
	(void)mon;
	(void)arg;
	pthread_mutex_lock(&cd.m);
	if (n->seq != cd.last_seq + 1)
		cd.out_of_order++;
	cd.last_seq = n->seq;
	cd.calls++;
	pthread_cond_broadcast(&cd.cv);
	pthread_mutex_unlock(&cd.m);
}

/* The monitor's thread and the application dispatching at once */
static void test_concurrent_dispatch(void)
{
	struct mb_notification n = { 0 };
	struct mb_monitor *mon = fake_monitor(UINT32_MAX);
	struct timespec dl;
	int i, e = 0;

	mb_monitor_subscribe(mon, on_count, NULL);
	mb_monitor_start_thread(mon);
	for (i = 1; i <= 200; i++) {
		n.state = i % 2 ? MB_STATE_HIGH : MB_STATE_STEADY;
		n.seq = (uint64_t)i;
		mb_monitor_fake_push(mon, &n);
		/* 0 while the thread is at it */
		mb_monitor_dispatch(mon);
	}
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 30;	/* a hang, not a time limit */
	pthread_mutex_lock(&cd.m);
	while (cd.calls < 200 && !e)
		e = pthread_cond_timedwait(&cd.cv, &cd.m, &dl);
	pthread_mutex_unlock(&cd.m);
	mb_monitor_stop_thread(mon);
	while (mb_monitor_dispatch(mon) > 0)
		;
	ok(cd.calls == 200 && cd.out_of_order == 0,
	   "thread and caller dispatching: all 200 once, in order (%d, %d)",
	   cd.calls, cd.out_of_order);
	mb_monitor_free(mon);
}

/* ---- run() meeting another thread's dispatch ---- */

static struct {
	pthread_mutex_t m;
	pthread_cond_t cv;
	pthread_t helper;
	bool parked, release;
	int calls;
} pk = { .m = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

static void on_park_helper(struct mb_monitor *mon,
			   const struct mb_notification *n, void *arg)
{
	(void)mon;
	(void)n;
	(void)arg;
	pthread_mutex_lock(&pk.m);
	pk.calls++;
	if (pthread_equal(pthread_self(), pk.helper)) {
		pk.parked = true;
		pthread_cond_broadcast(&pk.cv);
		while (!pk.release)
			pthread_cond_wait(&pk.cv, &pk.m);
	}
	pthread_cond_broadcast(&pk.cv);
	pthread_mutex_unlock(&pk.m);
}

static void *helper_dispatch(void *arg)
{
	mb_monitor_dispatch(arg);
	return NULL;
}

/*
 * The monitor's thread woken while the application's dispatch runs a
 * slow subscriber: it must wait for that dispatch, not go round its
 * epoll_wait() on the fd the other one has yet to drain.
 */
static void test_run_waits(void)
{
	struct mb_notification n = { .state = MB_STATE_LOW };
	struct mb_monitor *mon = fake_monitor(UINT32_MAX);
	struct timespec dl;
	bool waited;
	int e = 0;

	mb_monitor_subscribe(mon, on_park_helper, NULL);
	mb_monitor_fake_push(mon, &n);
	pthread_mutex_lock(&pk.m);
	pthread_create(&pk.helper, NULL, helper_dispatch, mon);
	while (!pk.parked)
		pthread_cond_wait(&pk.cv, &pk.m);
	pthread_mutex_unlock(&pk.m);

	mb_monitor_start_thread(mon);
	n.state = MB_STATE_STEADY;
	mb_monitor_fake_push(mon, &n);	/* wakes the thread */
	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += 30;		/* a hang, not a time limit */
	while (!(waited = mb_monitor_busy_waits(mon) > 0)) {
		struct timespec now;

		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec > dl.tv_sec)
			break;
		sched_yield();
	}
	ok(waited, "the thread waits for the other dispatch");

	pthread_mutex_lock(&pk.m);
	pk.release = true;
	pthread_cond_broadcast(&pk.cv);
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 30;
	while (pk.calls < 2 && !e)
		e = pthread_cond_timedwait(&pk.cv, &pk.m, &dl);
	pthread_mutex_unlock(&pk.m);
	pthread_join(pk.helper, NULL);
	ok(pk.calls == 2, "then delivers what woke it");
	mb_monitor_stop_thread(mon);
	mb_monitor_free(mon);
}

static struct {
	pthread_mutex_t m;
	pthread_cond_t cv;
	pthread_t helper;
	bool parked, go, done;
	int stopped;
	struct mb_monitor *mon;
} sp = { .m = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

/* In the helper's dispatch: wait for the go, then stop the thread. */
static void on_stop_thread(struct mb_monitor *mon,
			   const struct mb_notification *n, void *arg)
{
	(void)n;
	(void)arg;
	if (!pthread_equal(pthread_self(), sp.helper))
		return;
	pthread_mutex_lock(&sp.m);
	sp.parked = true;
	pthread_cond_broadcast(&sp.cv);
	while (!sp.go)
		pthread_cond_wait(&sp.cv, &sp.m);
	pthread_mutex_unlock(&sp.m);
	sp.stopped = mb_monitor_stop_thread(mon);
}

static void *stop_helper(void *arg)
{
	mb_monitor_dispatch(arg);
	pthread_mutex_lock(&sp.m);
	sp.done = true;
	pthread_cond_broadcast(&sp.cv);
	pthread_mutex_unlock(&sp.m);
	return NULL;
}

/*
 * mb_monitor_stop_thread() from a subscriber that the application's own
 * dispatch runs, while the monitor's thread waits for that dispatch to
 * end: the thread must see the stop rather than wait for a dispatch that
 * waits for it.
 */
static void test_stop_thread_from_dispatch(void)
{
	struct mb_notification n = { .state = MB_STATE_LOW };
	struct mb_monitor *mon = fake_monitor(UINT32_MAX);
	struct timespec dl;
	int e = 0;

	mb_monitor_subscribe(mon, on_stop_thread, NULL);
	mb_monitor_fake_push(mon, &n);
	pthread_mutex_lock(&sp.m);
	pthread_create(&sp.helper, NULL, stop_helper, mon);
	while (!sp.parked)
		pthread_cond_wait(&sp.cv, &sp.m);
	pthread_mutex_unlock(&sp.m);

	mb_monitor_start_thread(mon);
	n.state = MB_STATE_STEADY;
	mb_monitor_fake_push(mon, &n);	/* wakes the thread */
	while (!mb_monitor_busy_waits(mon))
		sched_yield();

	pthread_mutex_lock(&sp.m);
	sp.go = true;
	pthread_cond_broadcast(&sp.cv);
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 30;		/* a hang, not a time limit */
	while (!sp.done && !e)
		e = pthread_cond_timedwait(&sp.cv, &sp.m, &dl);
	pthread_mutex_unlock(&sp.m);
	if (!ok(sp.done && sp.stopped == 0, "stop_thread from a subscriber "
		"of another thread's dispatch while the thread waits for it"))
		exit(done_testing());	/* both threads are stuck */
	pthread_join(sp.helper, NULL);
	mb_monitor_free(mon);
}

static void test_errors(void)
{
	struct mb_monitor_opts o = { .sz = sizeof(o), .source = 99 };
	struct mb_notification n = { .state = MB_STATE_LOW };
	struct mb_monitor *mon;

	ok(mb_monitor_new(&mon, &o) == -EINVAL && !mon, "unknown source");
	o.source = MB_SOURCE_FAKE;
	o.extra_sources = 1;
	ok(mb_monitor_new(&mon, &o) == -EINVAL, "extra 'auto' source");
	o.extra_sources = 0;
	/* the rule is the monitor's, whatever source would use them */
	o.low_bytes = o.high_bytes = 100 << 20;
	ok(mb_monitor_new(&mon, &o) == -EINVAL && !mon,
	   "fake source: low_bytes == high_bytes refused, as by the others");
	o.high_bytes = 50 << 20;
	ok(mb_monitor_new(&mon, &o) == -EINVAL && !mon,
	   "fake source: low_bytes above high_bytes refused");
	o.low_bytes = o.high_bytes = 0;
	o.root = "/nonexistent-root";
	o.source = MB_SOURCE_MEMINFO;
	ok(mb_monitor_new(&mon, &o) == -ENOENT, "requested source missing");
	setenv("MEMBROKER_SOURCE", "fake", 1);
	o.source = MB_SOURCE_AUTO;
	ok(mb_monitor_new(&mon, &o) == 0 &&
	   mb_monitor_source(mon) == MB_SOURCE_FAKE, "$MEMBROKER_SOURCE");
	mb_monitor_free(mon);
	setenv("MEMBROKER_SOURCE", "bogus", 1);
	ok(mb_monitor_new(&mon, &o) == -EINVAL, "bad $MEMBROKER_SOURCE");
	/* the caller's explicit choice is not overridden */
	setenv("MEMBROKER_SOURCE", "meminfo", 1);
	o.source = MB_SOURCE_FAKE;
	ok(mb_monitor_new(&mon, &o) == 0 &&
	   mb_monitor_source(mon) == MB_SOURCE_FAKE,
	   "$MEMBROKER_SOURCE only steers the automatic choice");
	mb_monitor_free(mon);
	o.source = MB_SOURCE_AUTO;
	o.root = root;
	ok(mb_monitor_new(&mon, &o) == 0 &&
	   mb_monitor_source(mon) == MB_SOURCE_MEMINFO,
	   "$MEMBROKER_SOURCE=meminfo: meminfo in use, and reported");
	mb_monitor_free(mon);
	o.root = "/nonexistent-root";
	unsetenv("MEMBROKER_SOURCE");
	if (mb_monitor_new(&mon, &o) == 0 &&
	    mb_monitor_source(mon) == MB_SOURCE_KMOD) {
		skip("the module is loaded: auto picks it whatever the root");
	} else {
		ok(mon == NULL, "auto on an empty root: nothing available");
	}
	mb_monitor_free(mon);
	ok(mb_monitor_dispatch(NULL) == -EINVAL &&
	   mb_monitor_get_fd(NULL) == -EINVAL &&
	   mb_monitor_fake_push(NULL, &n) == -EINVAL, "NULL checks");
}

int main(void)
{
	plan(0);
	if (!make_root()) {
		ok(0, "temporary root");
		return done_testing();
	}
	test_fake();
	test_self_unsubscribe();
	test_low_repeat();
	test_repeat_fresh();
	test_repeat_meminfo();
	test_revents();
	test_source_failures();
	test_backoff();
	test_combined();
	test_container();
	test_thread();
	test_concurrent_dispatch();
	test_run_waits();
	test_stop_thread_from_dispatch();
	test_errors();
	drop_root();
	return done_testing();
}
