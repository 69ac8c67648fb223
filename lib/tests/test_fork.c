// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * fork() and the library.
 *
 * Deterministic cases first: a fork while another thread sits in a
 * shrink callback (its clerk marked busy) and in a monitor subscriber
 * (the monitor's dispatch lock held), and a fork from inside a shrink
 * callback and from inside a subscriber.  The child must be able to use
 * the library, remove the busy clerk and free the inherited monitor
 * without waiting for threads that did not come along.
 *
 * Then a stress run: threads hammer a cache, the clerk registry and a
 * broker while the main thread forks; the pthread_atfork handlers take
 * the library's locks first, so children find them free and consistent.
 * GCC's ThreadSanitizer runtime does not take its own internal locks
 * (the allocator of its synchronisation objects) across fork(), so under
 * TSan a child forked while another thread is inside the runtime can
 * hang in it, whatever the program does.  Under TSan the hammering
 * threads therefore stop at a gate, outside the library, for each fork.
 *
 * A child that deadlocks is killed by its alarm and the test fails; the
 * alarm only bounds a hang.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "membroker.h"
#include "tap.h"

#if defined(__SANITIZE_THREAD__)
#define MB_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MB_TSAN 1
#endif
#endif

#define FORKS	40
#define GUARD_S	60	/* a deadlock guard, not a time limit */

/* Did the child exit with 0? */
static bool child_ok(pid_t pid)
{
	int st;

	return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
	       WEXITSTATUS(st) == 0;
}

/* ---- a thread parked inside a callback ---- */

static struct {
	pthread_mutex_t m;
	pthread_cond_t cv;
	bool inside, release;
} park = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0 };

static void park_here(void)
{
	pthread_mutex_lock(&park.m);
	park.inside = true;
	pthread_cond_broadcast(&park.cv);
	while (!park.release)
		pthread_cond_wait(&park.cv, &park.m);
	pthread_mutex_unlock(&park.m);
}

static void park_wait(void)
{
	pthread_mutex_lock(&park.m);
	while (!park.inside)
		pthread_cond_wait(&park.cv, &park.m);
	pthread_mutex_unlock(&park.m);
}

static void park_release(void)
{
	pthread_mutex_lock(&park.m);
	park.release = true;
	pthread_cond_broadcast(&park.cv);
	pthread_mutex_unlock(&park.m);
}

static void park_reset(void)
{
	park.inside = false;
	park.release = false;
}

static int64_t shrink_park(struct mb_clerk *c, uint64_t bytes, void *arg)
{
	(void)c;
	(void)arg;
	park_here();
	return (int64_t)bytes;
}

static void *notify_low(void *arg)
{
	struct mb_notification n = { .state = MB_STATE_LOW, .time_ns = 1 };

	mb_broker_notify(arg, &n);
	return NULL;
}

/* A clerk busy in another thread's shrink callback at fork time */
static void test_fork_busy_clerk(void)
{
	struct mb_clerk_opts o = { .sz = sizeof(o), .shrink = shrink_park };
	struct mb_notification n = { .state = MB_STATE_HIGH, .time_ns = 2 };
	struct mb_broker *b;
	struct mb_clerk *c;
	pthread_t t;
	pid_t pid;

	park_reset();
	mb_broker_new(&b, "fork-busy", NULL, NULL);
	mb_clerk_new(&c, "fork-busy", &o);
	mb_clerk_charge(c, 1000);
	mb_broker_add_clerk(b, c);
	pthread_create(&t, NULL, notify_low, b);
	park_wait();
	pid = fork();
	if (pid == 0) {
		alarm(GUARD_S);
		/* the shrink will never return here: none of it may wait */
		if (mb_broker_notify(b, &n) ||
		    mb_broker_remove_clerk(b, c))
			_exit(1);
		mb_clerk_free(c);
		mb_broker_free(b);
		_exit(0);
	}
	ok(child_ok(pid), "fork while a shrink callback runs elsewhere: "
	   "the child removes and frees that clerk");
	park_release();
	pthread_join(t, NULL);
	mb_clerk_free(c);
	mb_broker_free(b);
}

static void on_park(struct mb_monitor *mon, const struct mb_notification *n,
		    void *arg)
{
	(void)mon;
	(void)n;
	(void)arg;
	park_here();
}

static void *dispatch_once(void *arg)
{
	mb_monitor_dispatch(arg);
	return NULL;
}

static int child_new_monitor(void)
{
	struct mb_monitor_opts o = { .sz = sizeof(o),
				     .source = MB_SOURCE_FAKE };
	struct mb_notification n = { .state = MB_STATE_LOW };
	struct mb_monitor *mon;
	int bad = 0;

	if (mb_monitor_new(&mon, &o) || mb_monitor_fake_push(mon, &n) ||
	    mb_monitor_dispatch(mon) != 1)
		bad = 1;
	mb_monitor_free(mon);
	return bad;
}

static void *read_park(void *arg)
{
	struct mb_epoch_rec *r = mb_epoch_enter();

	(void)arg;
	park_here();
	if (r)
		mb_epoch_leave(r);
	return NULL;
}

/*
 * A thread in the middle of a cache get at fork time (inside its epoch):
 * in the child that get never ends, and a shrink, which waits for the
 * gets that may be reading what it drops, must not wait for it.
 */
static void test_fork_in_get(void)
{
	struct mb_cache *c;
	char key[8];
	pthread_t t;
	pid_t pid;
	int i;

	park_reset();
	mb_cache_new(&c, "fork-get", NULL);
	pthread_create(&t, NULL, read_park, NULL);
	park_wait();
	pid = fork();
	if (pid == 0) {
		struct mb_clerk *clerk = mb_cache_clerk(c);
		struct mb_cache_stats st;
		void *arg;

		alarm(GUARD_S);
		for (i = 0; i < 100; i++) {
			snprintf(key, sizeof(key), "%d", i);
			if (mb_cache_put(c, key, strlen(key), "v", 1))
				_exit(1);
		}
		if (mb_clerk_shrinker(clerk, &arg)(clerk, UINT64_MAX / 2,
						   arg) <= 0 ||
		    mb_cache_stats(c, &st) || st.entries || mb_cache_limbo(c))
			_exit(2);
		mb_cache_free(c);
		_exit(0);
	}
	ok(child_ok(pid), "fork while a get runs elsewhere: the child's "
	   "shrink frees all it dropped");
	park_release();
	pthread_join(t, NULL);
	mb_cache_free(c);
}

/* A monitor delivering to a subscriber in another thread at fork time */
static void test_fork_in_delivery(void)
{
	struct mb_monitor_opts o = { .sz = sizeof(o),
				     .source = MB_SOURCE_FAKE };
	struct mb_notification n = { .state = MB_STATE_LOW };
	struct mb_monitor *mon;
	pthread_t t;
	pid_t pid;
	int id;

	park_reset();
	mb_monitor_new(&mon, &o);
	id = mb_monitor_subscribe(mon, on_park, NULL);
	mb_monitor_fake_push(mon, &n);
	pthread_create(&t, NULL, dispatch_once, mon);
	park_wait();
	/* the fork must not wait for the callback to return */
	alarm(GUARD_S);
	pid = fork();
	if (pid == 0) {
		alarm(GUARD_S);
		if (mb_monitor_unsubscribe(mon, id) || child_new_monitor())
			_exit(1);
		mb_monitor_free(mon);
		_exit(0);
	}
	alarm(0);
	ok(child_ok(pid), "fork while a subscriber runs elsewhere: the "
	   "child unsubscribes it, frees the monitor, makes a new one");
	park_release();
	pthread_join(t, NULL);
	mb_monitor_free(mon);
}

/*
 * A thread waiting on one of the library's conditions at fork time: the
 * child does not have it, and freeing the object there must not wait
 * for it (glibc's pthread_cond_destroy() waits for the waiters it
 * counts).
 */
static void test_fork_monitor_waiter(void)
{
	struct mb_monitor_opts o = { .sz = sizeof(o),
				     .source = MB_SOURCE_FAKE,
				     .low_repeat_ms = UINT32_MAX };
	struct mb_notification n = { .state = MB_STATE_LOW };
	struct mb_monitor *mon;
	pthread_t t;
	pid_t pid;

	park_reset();
	mb_monitor_new(&mon, &o);
	mb_monitor_subscribe(mon, on_park, NULL);
	mb_monitor_fake_push(mon, &n);
	pthread_create(&t, NULL, dispatch_once, mon);
	park_wait();
	/* the monitor's thread, woken, waits for that dispatch to end */
	mb_monitor_start_thread(mon);
	n.state = MB_STATE_STEADY;
	mb_monitor_fake_push(mon, &n);
	alarm(GUARD_S);
	while (!mb_monitor_busy_waits(mon))
		sched_yield();
	pid = fork();
	if (pid == 0) {
		alarm(GUARD_S);
		mb_monitor_free(mon);
		_exit(0);
	}
	alarm(0);
	ok(child_ok(pid), "fork while a thread waits for another's dispatch: "
	   "the child frees the monitor");
	park_release();
	pthread_join(t, NULL);
	mb_monitor_stop_thread(mon);
	mb_monitor_free(mon);
}

struct remover {
	struct mb_broker *b;
	struct mb_clerk *c;
};

static void *remove_clerk(void *arg)
{
	struct remover *r = arg;

	mb_broker_remove_clerk(r->b, r->c);
	return NULL;
}

static void test_fork_broker_waiter(void)
{
	struct mb_clerk_opts o = { .sz = sizeof(o), .shrink = shrink_park };
	struct remover r;
	pthread_t t, w;
	pid_t pid;

	park_reset();
	mb_broker_new(&r.b, "fork-waiter", NULL, NULL);
	mb_clerk_new(&r.c, "fork-waiter", &o);
	mb_clerk_charge(r.c, 1000);
	mb_broker_add_clerk(r.b, r.c);
	pthread_create(&t, NULL, notify_low, r.b);
	park_wait();
	/* a second thread waits for that shrink call to return */
	pthread_create(&w, NULL, remove_clerk, &r);
	alarm(GUARD_S);
	while (!mb_broker_idle_waits(r.b))
		sched_yield();
	pid = fork();
	if (pid == 0) {
		alarm(GUARD_S);
		mb_broker_free(r.b);
		mb_clerk_free(r.c);
		_exit(0);
	}
	alarm(0);
	ok(child_ok(pid), "fork while a thread waits for a shrink call: "
	   "the child frees the broker");
	park_release();
	pthread_join(t, NULL);
	pthread_join(w, NULL);
	mb_clerk_free(r.c);
	mb_broker_free(r.b);
}

static pid_t forked;

static void on_fork(struct mb_monitor *mon, const struct mb_notification *n,
		    void *arg)
{
	(void)n;
	(void)arg;
	forked = fork();
	if (forked == 0) {
		alarm(GUARD_S);
		/* the child returns into the dispatch and finishes it */
		return;
	}
	(void)mon;
}

/* fork() from inside a subscriber, i.e. with the dispatch lock held */
static void test_fork_from_subscriber(void)
{
	struct mb_monitor_opts o = { .sz = sizeof(o),
				     .source = MB_SOURCE_FAKE };
	struct mb_notification n = { .state = MB_STATE_LOW };
	struct mb_monitor *mon;
	int r;

	mb_monitor_new(&mon, &o);
	mb_monitor_subscribe(mon, on_fork, NULL);
	mb_monitor_fake_push(mon, &n);
	forked = -1;
	alarm(GUARD_S);		/* fork() deadlocking in its handlers */
	r = mb_monitor_dispatch(mon);
	if (forked == 0) {
		/* the child: its dispatch completed and let go of the lock */
		_exit(r == 1 && mb_monitor_fake_push(mon, &n) == 0 &&
		      mb_monitor_dispatch(mon) == 1 &&
		      child_new_monitor() == 0 ? 0 : 1);
	}
	alarm(0);
	ok(r == 1 && child_ok(forked), "fork from inside a subscriber: "
	   "no deadlock, both sides go on dispatching");
	mb_monitor_free(mon);
}

static struct mb_broker *other;

static int64_t shrink_fork(struct mb_clerk *c, uint64_t bytes, void *arg)
{
	struct mb_notification n = { .state = MB_STATE_LOW, .time_ns = 9 };
	struct mb_clerk_info ci[8];
	pid_t pid;

	(void)arg;
	pid = fork();
	if (pid == 0) {
		alarm(GUARD_S);
		_exit(mb_clerk_snapshot(ci, 8) >= 1 &&
		      mb_broker_notify(other, &n) == 0 &&
		      mb_clerk_bytes(c) == 1000 ? 0 : 1);
	}
	return child_ok(pid) ? (int64_t)bytes : -ECHILD;
}

/* fork() from inside a shrink callback */
static void test_fork_from_shrinker(void)
{
	struct mb_clerk_opts o = { .sz = sizeof(o), .shrink = shrink_fork };
	struct mb_notification n = { .state = MB_STATE_LOW, .time_ns = 1 };
	struct mb_clerk_info ci[64];
	struct mb_broker *b;
	struct mb_clerk *c;
	int i, k;

	mb_broker_new(&b, "fork-shrink", NULL, NULL);
	mb_broker_new(&other, "fork-other", NULL, NULL);
	mb_clerk_new(&c, "fork-shrink", &o);
	mb_clerk_charge(c, 1000);
	mb_broker_add_clerk(b, c);
	alarm(GUARD_S);
	mb_broker_notify(b, &n);
	alarm(0);
	k = mb_clerk_snapshot(ci, 64);
	for (i = 0; i < k && i < 64; i++)
		if (!strcmp(ci[i].name, "fork-shrink"))
			break;
	ok(i < k && ci[i].shrink_count == 1 && ci[i].shrink_errors == 0,
	   "fork from inside a shrink callback: the child used the library");
	mb_clerk_free(c);
	mb_broker_free(b);
	mb_broker_free(other);
}

/* ---- stress ---- */

static struct {
	struct mb_cache *cache;
	struct mb_broker *broker;
	atomic_bool stop;
	pthread_rwlock_t gate;	/* TSan: read-held per round */
} g = { .gate = PTHREAD_RWLOCK_INITIALIZER };

static void *busy(void *arg)
{
	struct mb_notification n = { .time_ns = 1 };
	struct mb_clerk_info ci[8];
	char k[16];
	int i = 0;

	(void)arg;
	while (!atomic_load(&g.stop)) {
#ifdef MB_TSAN
		pthread_rwlock_rdlock(&g.gate);
#endif
		snprintf(k, sizeof(k), "k%d", i++ % 300);
		mb_cache_put(g.cache, k, strlen(k), k, sizeof(k));
		mb_cache_get(g.cache, "k1", 2, NULL, 0);
		mb_clerk_snapshot(ci, 8);
		n.state = i % 2 ? MB_STATE_LOW : MB_STATE_HIGH;
		n.time_ns++;
		mb_broker_notify(g.broker, &n);
#ifdef MB_TSAN
		pthread_rwlock_unlock(&g.gate);
#endif
	}
	return NULL;
}

static int child(void)
{
	struct mb_notification n = { .state = MB_STATE_LOW };
	struct mb_clerk_info ci[8];
	struct mb_clerk *c;
	int bad = 0;

	alarm(GUARD_S);
	if (mb_clerk_snapshot(ci, 8) < 1)
		bad |= 1;
	if (mb_broker_notify(g.broker, &n))
		bad |= 2;
	/* out of the broker, so that its target does not limit the put */
	if (mb_broker_remove_clerk(g.broker, mb_cache_clerk(g.cache)) ||
	    mb_cache_put(g.cache, "child", 5, "x", 1) ||
	    mb_cache_get(g.cache, "child", 5, NULL, 0) != 1)
		bad |= 4;
	if (mb_clerk_new(&c, "child-clerk", NULL) || mb_clerk_charge(c, 5) ||
	    mb_clerk_bytes(c) != 5)
		bad |= 8;
	mb_clerk_free(c);
	if (child_new_monitor())
		bad |= 16;
	mb_broker_free(g.broker);
	mb_cache_free(g.cache);
	return bad;
}

static void test_stress(void)
{
	int i, st, failed = 0, first = 0;
	pthread_t t[2];
	pid_t pid;

	mb_cache_new(&g.cache, "forked", NULL);
	mb_broker_new(&g.broker, "forked", NULL, NULL);
	mb_broker_add_clerk(g.broker, mb_cache_clerk(g.cache));
	pthread_create(&t[0], NULL, busy, NULL);
	pthread_create(&t[1], NULL, busy, NULL);
	for (i = 0; i < FORKS; i++) {
#ifdef MB_TSAN
		pthread_rwlock_wrlock(&g.gate);
#endif
		pid = fork();
		if (pid == 0)
			_exit(child());
#ifdef MB_TSAN
		pthread_rwlock_unlock(&g.gate);
#endif
		if (pid < 0 || waitpid(pid, &st, 0) != pid ||
		    !WIFEXITED(st) || WEXITSTATUS(st)) {
			if (!failed++)
				first = pid < 0 ? -1 : st;
		}
	}
	atomic_store(&g.stop, true);
	pthread_join(t[0], NULL);
	pthread_join(t[1], NULL);
	ok(failed == 0, "%d children used the library (%d failed, status %#x)",
	   FORKS, failed, first);
	mb_broker_free(g.broker);
	mb_cache_free(g.cache);
}

int main(void)
{
	plan(0);
	test_fork_busy_clerk();
	test_fork_in_get();
	test_fork_in_delivery();
	test_fork_from_subscriber();
	test_fork_monitor_waiter();
	test_fork_broker_waiter();
	test_fork_from_shrinker();
	test_stress();
	return done_testing();
}
