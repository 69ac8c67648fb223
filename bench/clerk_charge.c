// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * clerk_charge: what accounting memory through a clerk costs, next to the
 * two obvious ways of keeping a shared byte counter.
 *
 * Every variant runs the same loop (charge 64 bytes, uncharge 64 bytes) on
 * 1, 2 and 4 threads sharing one counter:
 *   mb_clerk_charge/uncharge   the library's per-CPU partitioned clerk
 *   atomic_fetch_add/sub       one shared _Atomic uint64_t
 *   mutex counter              one uint64_t under a pthread mutex
 * and then times mb_clerk_bytes(), the read that has to sum the partitions.
 *
 * Usage: clerk_charge [-n ITERATIONS_PER_THREAD]
 *        clerk_charge --callgrind VARIANT   (one thread, one short run, for
 *        valgrind --tool=callgrind --toggle-collect=loop_*)
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <membroker.h>

#include "harness.h"

#define CHARGE_BYTES	64
#define DEFAULT_ITERS	500000ULL
#define CALLGRIND_ITERS	100000ULL

struct counters {
	struct mb_clerk *clerk;
	_Atomic uint64_t atomic_bytes;
	pthread_mutex_t lock;
	uint64_t locked_bytes;
	/* set by a loop that saw the library fail */
	_Atomic int error;
};

/*
 * The loops are kept out of line so that callgrind's --toggle-collect can
 * count exactly their instructions, and so each variant is one symbol in a
 * profile.
 */
static __attribute__((noinline)) void loop_clerk(void *arg, unsigned int tid,
						 uint64_t iters)
{
	struct counters *c = arg;
	uint64_t i;

	(void)tid;
	for (i = 0; i < iters; i++) {
		if (mb_clerk_charge(c->clerk, CHARGE_BYTES) < 0 ||
		    mb_clerk_uncharge(c->clerk, CHARGE_BYTES) < 0) {
			atomic_store(&c->error, 1);
			return;
		}
	}
}

static __attribute__((noinline)) void loop_atomic(void *arg, unsigned int tid,
						  uint64_t iters)
{
	struct counters *c = arg;
	uint64_t i;

	(void)tid;
	for (i = 0; i < iters; i++) {
		atomic_fetch_add(&c->atomic_bytes, CHARGE_BYTES);
		atomic_fetch_sub(&c->atomic_bytes, CHARGE_BYTES);
	}
}

static __attribute__((noinline)) void loop_mutex(void *arg, unsigned int tid,
						 uint64_t iters)
{
	struct counters *c = arg;
	uint64_t i;

	(void)tid;
	for (i = 0; i < iters; i++) {
		pthread_mutex_lock(&c->lock);
		c->locked_bytes += CHARGE_BYTES;
		pthread_mutex_unlock(&c->lock);
		pthread_mutex_lock(&c->lock);
		c->locked_bytes -= CHARGE_BYTES;
		pthread_mutex_unlock(&c->lock);
	}
}

static __attribute__((noinline)) void loop_clerk_bytes(void *arg,
						       unsigned int tid,
						       uint64_t iters)
{
	struct counters *c = arg;
	uint64_t i, sum = 0;

	(void)tid;
	for (i = 0; i < iters; i++)
		sum += mb_clerk_bytes(c->clerk);
	bench_sink = sum;
}

static __attribute__((noinline)) void loop_atomic_load(void *arg,
						       unsigned int tid,
						       uint64_t iters)
{
	struct counters *c = arg;
	uint64_t i, sum = 0;

	(void)tid;
	for (i = 0; i < iters; i++)
		sum += atomic_load(&c->atomic_bytes);
	bench_sink = sum;
}

static const struct variant {
	const char *name;
	bench_loop_fn fn;
	unsigned int ops_per_iter;
} variants[] = {
	{ "mb_clerk_charge+uncharge", loop_clerk, 2 },
	{ "atomic_fetch_add+sub (one uint64)", loop_atomic, 2 },
	{ "mutex counter", loop_mutex, 2 },
};

static int run_callgrind(struct counters *c, const char *name)
{
	static const struct {
		const char *name;
		bench_loop_fn fn;
	} all[] = {
		{ "clerk", loop_clerk },
		{ "atomic", loop_atomic },
		{ "mutex", loop_mutex },
		{ "clerk_bytes", loop_clerk_bytes },
		{ "atomic_load", loop_atomic_load },
	};
	size_t i;

	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		if (strcmp(all[i].name, name))
			continue;
		all[i].fn(c, 0, CALLGRIND_ITERS);
		printf("%s %llu\n", name, (unsigned long long)CALLGRIND_ITERS);
		return atomic_load(&c->error) ? 1 : 0;
	}
	fprintf(stderr, "clerk_charge: unknown variant %s\n", name);
	return 2;
}

int main(int argc, char **argv)
{
	static const unsigned int threads[] = { 1, 2, 4 };
	struct counters c = { .lock = PTHREAD_MUTEX_INITIALIZER };
	uint64_t iters = DEFAULT_ITERS, wall;
	size_t v, t;
	char label[64];
	int err, ret = 0;

	err = mb_clerk_new(&c.clerk, "bench-clerk", NULL);
	if (err < 0) {
		fprintf(stderr, "clerk_charge: mb_clerk_new: %s\n",
			strerror(-err));
		return 1;
	}
	if (argc == 3 && !strcmp(argv[1], "--callgrind")) {
		ret = run_callgrind(&c, argv[2]);
		mb_clerk_free(c.clerk);
		return ret;
	}
	if (argc == 3 && !strcmp(argv[1], "-n")) {
		iters = strtoull(argv[2], NULL, 0);
	} else if (argc != 1) {
		fprintf(stderr,
			"usage: clerk_charge [-n ITERS] | --callgrind VARIANT\n");
		mb_clerk_free(c.clerk);
		return 2;
	}
	if (!iters)
		iters = DEFAULT_ITERS;

	bench_header("clerk_charge: charge 64 B + uncharge 64 B on one shared counter (op = one call)");
	for (v = 0; v < sizeof(variants) / sizeof(variants[0]); v++) {
		for (t = 0; t < sizeof(threads) / sizeof(threads[0]); t++) {
			wall = bench_threads(variants[v].fn, NULL, &c,
					     threads[t], iters);
			if (!wall || atomic_load(&c.error)) {
				fprintf(stderr, "clerk_charge: %s failed\n",
					variants[v].name);
				ret = 1;
				goto out;
			}
			bench_row(variants[v].name, threads[t],
				  iters * variants[v].ops_per_iter *
				  threads[t], wall);
		}
	}

	/*
	 * Every charge was matched by an uncharge: a total other than zero
	 * means the numbers above timed a broken counter.
	 */
	if (mb_clerk_bytes(c.clerk) || atomic_load(&c.atomic_bytes) ||
	    c.locked_bytes) {
		fprintf(stderr,
			"clerk_charge: counters not back to 0 (clerk %llu)\n",
			(unsigned long long)mb_clerk_bytes(c.clerk));
		ret = 1;
		goto out;
	}

	/* Read cost with something to sum: charge from 4 threads first. */
	wall = bench_threads(loop_clerk, NULL, &c, 4, 1000);
	err = mb_clerk_charge(c.clerk, 1 << 20);
	if (!wall || err < 0) {
		ret = 1;
		goto out;
	}
	bench_header("clerk_charge: reading the total (op = one call, 1 MiB charged)");
	wall = bench_threads(loop_clerk_bytes, NULL, &c, 1, iters * 2);
	bench_row("mb_clerk_bytes()", 1, iters * 2, wall);
	wall = bench_threads(loop_atomic_load, NULL, &c, 1, iters * 2);
	bench_row("atomic_load (one uint64)", 1, iters * 2, wall);
	snprintf(label, sizeof(label), "mb_clerk_bytes() = %llu",
		 (unsigned long long)mb_clerk_bytes(c.clerk));
	if (mb_clerk_bytes(c.clerk) != 1 << 20) {
		fprintf(stderr, "clerk_charge: %s, expected %u\n", label,
			1 << 20);
		ret = 1;
	}
	mb_clerk_uncharge(c.clerk, 1 << 20);
out:
	mb_clerk_free(c.clerk);
	return ret;
}
