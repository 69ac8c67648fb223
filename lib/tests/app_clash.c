// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * An application whose own functions bear the names of the library's
 * internal ones (mb_lock, mb_now_ns, mb_classify), linked against
 * libmembroker.a: it must link, and both its functions and the
 * library's must be the ones called.  tests/static.sh builds and runs it.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>

#include "membroker.h"

static int locks;

/* names the library uses inside, with other meanings here */
int mb_lock(int n);
uint64_t mb_now_ns(void);
const char *mb_classify(void);

int mb_lock(int n)
{
	return locks += n;
}

uint64_t mb_now_ns(void)
{
	return 42;
}

const char *mb_classify(void)
{
	return "mine";
}

int main(void)
{
	struct mb_monitor_opts o = { .sz = sizeof(o),
				     .source = MB_SOURCE_FAKE };
	struct mb_notification n = { .state = MB_STATE_LOW };
	struct mb_monitor *mon;
	int err, got;

	err = mb_monitor_new(&mon, &o);
	if (err) {
		fprintf(stderr, "mb_monitor_new: %d\n", err);
		return 1;
	}
	/* the library's own clock and locks run underneath */
	mb_monitor_fake_push(mon, &n);
	got = mb_monitor_dispatch(mon);
	mb_monitor_get_state(mon, &n);
	mb_monitor_free(mon);
	if (got != 1 || n.state != MB_STATE_LOW || n.time_ns == 42) {
		fprintf(stderr, "library: dispatched %d, state %u, time %llu\n",
			got, n.state, (unsigned long long)n.time_ns);
		return 1;
	}
	if (mb_lock(2) != 2 || mb_now_ns() != 42 ||
	    mb_classify()[0] != 'm') {
		fprintf(stderr, "application: its own functions not called\n");
		return 1;
	}
	printf("ok\n");
	return 0;
}
