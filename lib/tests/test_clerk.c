// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Clerks: charge/uncharge, exact totals from many threads (the slots are
 * partitioned, the sum must not be), peak, the process-wide snapshot,
 * and argument checks.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "membroker.h"
#include "tap.h"

#define THREADS	8
#define ROUNDS	100000

static struct mb_clerk *shared;
static pthread_barrier_t go;

static struct mb_clerk_info *find(struct mb_clerk_info *ci, int n,
				  const char *name)
{
	int i;

	for (i = 0; i < n; i++)
		if (!strcmp(ci[i].name, name))
			return &ci[i];
	return NULL;
}

static void test_basic(void)
{
	struct mb_clerk_opts o = { .sz = sizeof(o), .priority = 101 };
	char longname[80];
	struct mb_clerk *c;

	ok(mb_clerk_new(&c, "", NULL) == -EINVAL && !c, "empty name");
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	ok(mb_clerk_new(&c, longname, NULL) == -ENAMETOOLONG,
	   "name longer than 63");
	ok(mb_clerk_new(&c, "p", &o) == -EINVAL, "priority above 100");
	ok(mb_clerk_new(&c, "basic", NULL) == 0 && c, "new");
	ok(!strcmp(mb_clerk_name(c), "basic"), "name");
	ok(mb_clerk_bytes(c) == 0 && mb_clerk_target(c) == UINT64_MAX,
	   "starts empty and unlimited");
	ok(mb_clerk_charge(c, 1000) == 0 && mb_clerk_charge(c, 24) == 0 &&
	   mb_clerk_bytes(c) == 1024, "charges add up");
	ok(mb_clerk_uncharge(c, 1000) == 0 && mb_clerk_bytes(c) == 24,
	   "uncharge");
	ok(mb_clerk_charge(c, UINT64_MAX) == -EINVAL &&
	   mb_clerk_charge(NULL, 1) == -EINVAL, "charge checks arguments");
	mb_clerk_free(c);
	mb_clerk_free(NULL);
}

static void *charger(void *arg)
{
	uintptr_t id = (uintptr_t)arg;
	uint64_t i;

	pthread_barrier_wait(&go);
	for (i = 0; i < ROUNDS; i++) {
		mb_clerk_charge(shared, id + i % 7 + 2);
		/* every other charge is taken back, by size */
		if (i & 1)
			mb_clerk_uncharge(shared, id + i % 7 + 2);
	}
	return NULL;
}

static void test_threads(void)
{
	pthread_t t[THREADS];
	uint64_t want = 0, i;
	uintptr_t id;

	ok(mb_clerk_new(&shared, "threads", NULL) == 0, "shared clerk");
	pthread_barrier_init(&go, NULL, THREADS);
	for (id = 0; id < THREADS; id++) {
		for (i = 0; i < ROUNDS; i += 2)
			want += id + i % 7 + 2;
		pthread_create(&t[id], NULL, charger, (void *)id);
	}
	for (id = 0; id < THREADS; id++)
		pthread_join(t[id], NULL);
	ok(mb_clerk_bytes(shared) == want,
	   "%d threads: exact total %llu", THREADS,
	   (unsigned long long)mb_clerk_bytes(shared));
	pthread_barrier_destroy(&go);
	mb_clerk_free(shared);
}

static void test_snapshot(void)
{
	struct mb_clerk_opts o = { .sz = sizeof(o), .priority = 5 };
	struct mb_clerk_info ci[16], *a, *b;
	struct mb_clerk *ca, *cb;
	int n, before;

	before = mb_clerk_snapshot(NULL, 0);
	ok(before >= 0, "count with no room");
	mb_clerk_new(&ca, "snap-a", &o);
	mb_clerk_new(&cb, "snap-b", NULL);
	mb_clerk_charge(ca, 5000);
	ok(mb_clerk_bytes(ca) == 5000, "5000 charged");
	mb_clerk_uncharge(ca, 3000);
	mb_clerk_charge(cb, 7);
	ok(mb_clerk_snapshot(ci, 1) == before + 2, "count exceeds room");
	n = mb_clerk_snapshot(ci, 16);
	a = find(ci, n, "snap-a");
	b = find(ci, n, "snap-b");
	ok(n == before + 2 && a && b, "both listed");
	ok(a && a->bytes == 2000 && a->peak == 5000 && a->priority == 5 &&
	   a->target == UINT64_MAX, "bytes, peak, priority, target");
	ok(b && b->bytes == 7 && b->priority == 50 && b->shrink_count == 0,
	   "default priority 50");
	mb_clerk_free(ca);
	n = mb_clerk_snapshot(ci, 16);
	ok(n == before + 1 && !find(ci, n, "snap-a"), "freed clerk gone");
	mb_clerk_free(cb);
	ok(mb_clerk_snapshot(ci, 16) == before, "back to the start");
}

static void test_peak_by_charges(void)
{
	struct mb_clerk_info ci[16], *a;
	struct mb_clerk *c;
	int i, n;

	mb_clerk_new(&c, "peak", NULL);
	/* folded by the charging thread itself, every 64 charges */
	for (i = 0; i < 128; i++)
		mb_clerk_charge(c, 10);
	for (i = 0; i < 128; i++)
		mb_clerk_uncharge(c, 10);
	n = mb_clerk_snapshot(ci, 16);
	a = find(ci, n, "peak");
	ok(a && a->bytes == 0 && a->peak >= 640 && a->peak <= 1280,
	   "peak seen by charges alone (%llu)",
	   a ? (unsigned long long)a->peak : 0ULL);
	mb_clerk_free(c);
}

int main(void)
{
	plan(0);
	test_basic();
	test_threads();
	test_snapshot();
	test_peak_by_charges();
	return done_testing();
}
