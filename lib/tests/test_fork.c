// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * fork() while other threads hold library locks: the pthread_atfork
 * handlers take every lock first, so the child can use the library
 * (the clerks it inherited, a cache, a broker, a new monitor).  A child
 * that deadlocks is killed by its alarm and the test fails.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "membroker.h"
#include "tap.h"

#define FORKS	40

static struct {
	struct mb_cache *cache;
	struct mb_broker *broker;
	atomic_bool stop;
} g;

static void *busy(void *arg)
{
	struct mb_notification n = { .time_ns = 1 };
	struct mb_clerk_info ci[8];
	char k[16];
	int i = 0;

	(void)arg;
	while (!atomic_load(&g.stop)) {
		snprintf(k, sizeof(k), "k%d", i++ % 300);
		mb_cache_put(g.cache, k, strlen(k), k, sizeof(k));
		mb_cache_get(g.cache, "k1", 2, NULL, 0);
		mb_clerk_snapshot(ci, 8);
		n.state = i % 2 ? MB_STATE_LOW : MB_STATE_HIGH;
		n.time_ns++;
		mb_broker_notify(g.broker, &n);
	}
	return NULL;
}

static int child(void)
{
	struct mb_monitor_opts o = { .sz = sizeof(o),
				     .source = MB_SOURCE_FAKE };
	struct mb_notification n = { .state = MB_STATE_LOW };
	struct mb_clerk_info ci[8];
	struct mb_monitor *mon;
	struct mb_clerk *c;
	int bad = 0;

	alarm(60);	/* a deadlock guard, not a time limit on the test */
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
	if (mb_monitor_new(&mon, &o) || mb_monitor_fake_push(mon, &n) ||
	    mb_monitor_dispatch(mon) != 1)
		bad |= 16;
	mb_monitor_free(mon);
	mb_broker_free(g.broker);
	mb_cache_free(g.cache);
	return bad;
}

int main(void)
{
	int i, st, failed = 0, first = 0;
	pthread_t t[2];
	pid_t pid;

	plan(0);
	mb_cache_new(&g.cache, "forked", NULL);
	mb_broker_new(&g.broker, "forked", NULL, NULL);
	mb_broker_add_clerk(g.broker, mb_cache_clerk(g.cache));
	pthread_create(&t[0], NULL, busy, NULL);
	pthread_create(&t[1], NULL, busy, NULL);
	for (i = 0; i < FORKS; i++) {
		pid = fork();
		if (pid == 0)
			_exit(child());
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
	return done_testing();
}
