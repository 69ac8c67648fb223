// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The smallest complete libmembroker program: a monitor on the best
 * source available, a broker, and one cache that the broker shrinks
 * when memory runs low.  It prints the source and every state change.
 *
 *   build/examples/minimal [seconds]      (default: run until killed)
 *   MEMBROKER_SOURCE=meminfo build/examples/minimal 10
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "membroker.h"

static void on_change(struct mb_monitor *mon, const struct mb_notification *n,
		      void *arg)
{
	struct mb_cache_stats st;

	(void)mon;
	mb_cache_stats((struct mb_cache *)arg, &st);
	printf("%-6s%s available %llu MiB (low %llu, high %llu), cache %llu KiB\n",
	       mb_state_name(n->state),
	       n->flags & MB_FLAG_VIRTUAL_LOW ? " +virtual-low" : "",
	       (unsigned long long)(n->available >> 20),
	       (unsigned long long)(n->low >> 20),
	       (unsigned long long)(n->high >> 20),
	       (unsigned long long)(st.bytes >> 10));
	fflush(stdout);
}

int main(int argc, char **argv)
{
	int seconds = argc > 1 ? atoi(argv[1]) : -1;
	struct mb_monitor *mon;
	struct mb_broker *broker;
	struct mb_cache *cache;
	char key[32], val[1024];
	int err, i;

	err = mb_monitor_new(&mon, NULL);
	if (err) {
		fprintf(stderr, "monitor: %s\n", strerror(-err));
		return 1;
	}
	printf("source: %s\n", mb_source_name(mb_monitor_source(mon)));

	err = mb_cache_new(&cache, "example-cache", NULL);
	if (!err)
		err = mb_broker_new(&broker, "example", mon, NULL);
	if (!err)
		err = mb_broker_add_clerk(broker, mb_cache_clerk(cache));
	if (err) {
		fprintf(stderr, "setup: %s\n", strerror(-err));
		return 1;
	}
	/* something for the broker to take back */
	memset(val, 'x', sizeof(val));
	for (i = 0; i < 1024; i++) {
		snprintf(key, sizeof(key), "item-%d", i);
		mb_cache_put(cache, key, strlen(key), val, sizeof(val));
	}
	mb_monitor_subscribe(mon, on_change, cache);

	/* the application's loop; here the library's own */
	err = mb_monitor_run(mon, seconds < 0 ? -1 : seconds * 1000);
	if (err)
		fprintf(stderr, "run: %s\n", strerror(-err));

	mb_broker_free(broker);
	mb_cache_free(cache);
	mb_monitor_free(mon);
	return err ? 1 : 0;
}
