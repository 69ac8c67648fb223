// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * broker_scale: what one broker decision costs with 10, 1,000 and 10,000
 * clerks in the pool.
 *
 * A broker without a monitor is driven with mb_broker_notify(), one
 * thread, the clerks holding 1 MiB each:
 *   LOW      a step of 10 % of the pool, asked of the cheapest clerks
 *            first; a shrink callback uncharges what it is asked and
 *            charges it again at once, so the pool keeps its size and
 *            every LOW decides the same way (how many clerks it asked
 *            per notification is printed)
 *   STEADY   every clerk's target is set, no callback runs
 * Each decision is recorded in the broker's ring (one record per clerk),
 * which is part of what is timed.  A row is the median of 5 repeats; the
 * time per notification is printed, and per clerk.
 *
 * Usage: broker_scale [-n SCALE]   (SCALE divides the notifications, for
 *                                   short smoke runs)
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <membroker.h>

#include "harness.h"

#define CLERK_BYTES	(1ULL << 20)
#define MIB		(1ULL << 20)

struct pool {
	struct mb_broker *b;
	struct mb_clerk **clerks;
	unsigned int n;
	uint32_t state;
	_Atomic uint64_t calls;
	_Atomic int error;
};

static int64_t shrink(struct mb_clerk *clerk, uint64_t bytes, void *arg)
{
	struct pool *p = arg;

	atomic_fetch_add(&p->calls, 1);
	if (mb_clerk_uncharge(clerk, bytes) < 0 ||
	    mb_clerk_charge(clerk, bytes) < 0)
		atomic_store(&p->error, 1);
	return (int64_t)bytes;
}

static void loop_notify(void *arg, unsigned int tid, uint64_t iters)
{
	struct pool *p = arg;
	struct mb_notification n;
	uint64_t i;

	(void)tid;
	for (i = 0; i < iters; i++) {
		memset(&n, 0, sizeof(n));
		n.state = p->state;
		n.total = 4096 * MIB;
		n.low = 256 * MIB;
		n.high = 768 * MIB;
		n.available = p->state == MB_STATE_LOW ? 128 * MIB : 512 * MIB;
		if (mb_broker_notify(p->b, &n) < 0)
			atomic_store(&p->error, 1);
	}
}

static int pool_new(struct pool *p, unsigned int n)
{
	struct mb_clerk_opts co = { .sz = sizeof(co) };
	char name[32];
	unsigned int i;
	int err;

	memset(p, 0, sizeof(*p));
	p->clerks = calloc(n, sizeof(*p->clerks));
	if (!p->clerks)
		return -ENOMEM;
	err = mb_broker_new(&p->b, "scale", NULL, NULL);
	if (err < 0)
		return err;
	co.shrink = shrink;
	co.arg = p;
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "clerk-%u", i);
		co.priority = i % 100;
		err = mb_clerk_new(&p->clerks[i], name, &co);
		if (!err)
			err = mb_clerk_charge(p->clerks[i], CLERK_BYTES);
		if (!err)
			err = mb_broker_add_clerk(p->b, p->clerks[i]);
		if (err < 0)
			return err;
		p->n++;
	}
	return 0;
}

static void pool_free(struct pool *p)
{
	unsigned int i;

	mb_broker_free(p->b);
	for (i = 0; i < p->n; i++)
		mb_clerk_free(p->clerks[i]);
	free(p->clerks);
}

int main(int argc, char **argv)
{
	static const unsigned int sizes[] = { 10, 1000, 10000 };
	static const struct {
		const char *name;
		uint32_t state;
	} kinds[] = {
		{ "LOW, a step", MB_STATE_LOW },
		{ "STEADY, targets only", MB_STATE_STEADY },
	};
	unsigned long scale = 1;
	uint64_t iters, wall;
	struct pool p;
	char label[64];
	size_t s, k;
	int err;

	if (argc == 3 && !strcmp(argv[1], "-n"))
		scale = strtoul(argv[2], NULL, 0);
	else if (argc != 1) {
		fprintf(stderr, "usage: broker_scale [-n SCALE]\n");
		return 2;
	}
	if (!scale)
		scale = 1;
	bench_header("broker_scale: one mb_broker_notify() (op = one notification; threads = 1)");
	for (s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		err = pool_new(&p, sizes[s]);
		if (err < 0) {
			fprintf(stderr, "broker_scale: %u clerks: %s\n",
				sizes[s], strerror(-err));
			return 1;
		}
		/* about 200000 clerk decisions per row */
		iters = 200000 / sizes[s] / scale;
		if (!iters)
			iters = 1;
		for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
			p.state = kinds[k].state;
			atomic_store(&p.calls, 0);
			wall = bench_threads(loop_notify, NULL, &p, 1, iters);
			if (!wall || atomic_load(&p.error)) {
				fprintf(stderr, "broker_scale: %s failed\n",
					kinds[k].name);
				return 1;
			}
			/* a LOW that asks nobody timed nothing useful */
			if (kinds[k].state == MB_STATE_LOW &&
			    !atomic_load(&p.calls)) {
				fprintf(stderr, "broker_scale: LOW asked no clerk\n");
				return 1;
			}
			snprintf(label, sizeof(label), "%s, %u clerks",
				 kinds[k].name, sizes[s]);
			bench_row(label, 1, iters, wall);
			printf("  %-42s %7s %10.2f ns per clerk, %.1f shrink calls per notification\n",
			       "", "", (double)wall / (double)iters / sizes[s],
			       (double)atomic_load(&p.calls) /
			       (double)(iters * BENCH_REPEATS));
		}
		pool_free(&p);
	}
	return 0;
}
