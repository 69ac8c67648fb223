// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The monitor, driven by the fake source: delivery to subscribers, the
 * ring (with RSS), a quiet fd when nothing happens, LOW re-delivery,
 * combination with a second source (most severe wins, flags OR'ed),
 * subscribe/unsubscribe rules, run/stop and the internal thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
	char path[128];

	snprintf(path, sizeof(path), "%s/proc", root);
	if (!mkdtemp(root) || (snprintf(path, sizeof(path), "%s/proc", root),
			       mkdir(path, 0755))) {
		ok(0, "temporary root");
		return;
	}
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
	unlink((snprintf(path, sizeof(path), "%s/proc/meminfo", root), path));
	rmdir((snprintf(path, sizeof(path), "%s/proc", root), path));
	rmdir(root);
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
	test_fake();
	test_self_unsubscribe();
	test_low_repeat();
	test_combined();
	test_thread();
	test_errors();
	return done_testing();
}
