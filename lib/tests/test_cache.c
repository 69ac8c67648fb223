// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * mb_cache: get/put/del, LRU order, the clerk charged for every byte,
 * shrinking by a broker returns what was freed (never more than asked,
 * so the pool's minimum holds, and entries larger than a step still go
 * under lasting pressure), puts honour the target, two caches stay within
 * their pool's maximum, -E2BIG, statistics, growth of the table, and
 * concurrent use while a broker shrinks it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "membroker.h"
#include "tap.h"

static uint64_t cost_of_one(void)
{
	struct mb_cache_stats st;
	struct mb_cache *c;

	mb_cache_new(&c, "probe", NULL);
	mb_cache_put(c, "k", 1, "v", 1);
	mb_cache_stats(c, &st);
	mb_cache_free(c);
	return st.bytes - 2;	/* the per-entry overhead */
}

static void test_basic(void)
{
	struct mb_cache_stats st;
	struct mb_cache *c;
	char buf[16];

	ok(mb_cache_new(&c, "", NULL) == -EINVAL, "empty name");
	ok(mb_cache_new(&c, "basic", NULL) == 0, "new");
	ok(mb_cache_put(c, "alpha", 5, "one", 3) == 0, "put");
	memset(buf, 0, sizeof(buf));
	ok(mb_cache_get(c, "alpha", 5, buf, sizeof(buf)) == 3 &&
	   !memcmp(buf, "one", 3), "get");
	ok(mb_cache_get(c, "alpha", 5, buf, 1) == 3 && buf[0] == 'o',
	   "short buffer: full length returned");
	ok(mb_cache_get(c, "beta", 4, buf, sizeof(buf)) == -ENOENT, "miss");
	ok(mb_cache_put(c, "alpha", 5, "three", 5) == 0 &&
	   mb_cache_get(c, "alpha", 5, buf, sizeof(buf)) == 5 &&
	   !memcmp(buf, "three", 5), "replace");
	mb_cache_stats(c, &st);
	ok(st.entries == 1 && st.inserts == 2 && st.hits == 3 &&
	   st.misses == 1 && st.evictions == 0, "stats");
	ok(st.bytes > 10 && st.bytes == mb_clerk_bytes(mb_cache_clerk(c)),
	   "clerk charged key + value + overhead (%llu)",
	   (unsigned long long)st.bytes);
	ok(mb_cache_del(c, "alpha", 5) == 0 &&
	   mb_cache_del(c, "alpha", 5) == -ENOENT, "del");
	mb_cache_stats(c, &st);
	ok(st.entries == 0 && st.bytes == 0 &&
	   mb_clerk_bytes(mb_cache_clerk(c)) == 0, "all uncharged");
	ok(mb_cache_put(c, NULL, 1, "x", 1) == -EINVAL &&
	   mb_cache_put(c, "k", 0, "x", 1) == -EINVAL, "argument checks");
	mb_cache_free(c);
	mb_cache_free(NULL);
}

static void test_lru(void)
{
	uint64_t one = cost_of_one() + 2;
	struct mb_cache_opts o = { .sz = sizeof(o), .max_bytes = 3 * one };
	struct mb_cache_stats st;
	struct mb_cache *c;
	char big[64];

	mb_cache_new(&c, "lru", &o);
	mb_cache_put(c, "a", 1, "1", 1);
	mb_cache_put(c, "b", 1, "2", 1);
	mb_cache_put(c, "c", 1, "3", 1);
	mb_cache_get(c, "a", 1, NULL, 0);	/* a is now the newest */
	mb_cache_put(c, "d", 1, "4", 1);
	ok(mb_cache_get(c, "b", 1, NULL, 0) == -ENOENT,
	   "least recently used evicted");
	ok(mb_cache_get(c, "a", 1, NULL, 0) == 1 &&
	   mb_cache_get(c, "c", 1, NULL, 0) == 1 &&
	   mb_cache_get(c, "d", 1, NULL, 0) == 1, "the others kept");
	mb_cache_stats(c, &st);
	ok(st.evictions == 1 && st.entries == 3 && st.bytes <= 3 * one,
	   "bounded by max_bytes");
	memset(big, 'x', sizeof(big));
	ok(mb_cache_put(c, "big", 3, big, 3 * one) == -E2BIG,
	   "entry larger than the bound: -E2BIG");
	mb_cache_stats(c, &st);
	ok(st.entries == 3, "... and nothing was evicted for it");
	mb_cache_free(c);
}

static void test_table_growth(void)
{
	struct mb_cache *c;
	char k[16];
	int i, bad = 0;
	int64_t v;

	mb_cache_new(&c, "many", NULL);
	for (i = 0; i < 5000; i++) {
		snprintf(k, sizeof(k), "key%d", i);
		if (mb_cache_put(c, k, strlen(k), &i, sizeof(i)))
			bad++;
	}
	for (i = 0; i < 5000; i++) {
		int got = -1;

		snprintf(k, sizeof(k), "key%d", i);
		v = mb_cache_get(c, k, strlen(k), &got, sizeof(got));
		if (v != sizeof(got) || got != i)
			bad++;
	}
	ok(bad == 0, "5000 entries through table growth");
	mb_cache_free(c);
}

static void test_broker(void)
{
	struct mb_notification low = { .state = MB_STATE_LOW, .time_ns = 1 };
	struct mb_broker_opts bo = { .sz = sizeof(bo),
				     .shrink_step_percent = 50 };
	uint64_t before, target, one = cost_of_one() + 8;
	struct mb_broker_record rec;
	struct mb_cache_stats st;
	struct mb_broker *b;
	struct mb_cache *c;
	char k[16];
	int i, over = 0;

	mb_cache_new(&c, "brokered", NULL);
	mb_broker_new(&b, "caches", NULL, &bo);
	ok(mb_broker_add_clerk(b, mb_cache_clerk(c)) == 0, "cache in broker");
	for (i = 0; i < 100; i++) {
		snprintf(k, sizeof(k), "k%04d", i);
		mb_cache_put(c, k, 5, "vvv", 3);
	}
	mb_cache_stats(c, &st);
	before = st.bytes;
	ok(before == 100 * one, "100 entries");
	mb_broker_notify(b, &low);
	mb_cache_stats(c, &st);
	mb_ring_read(mb_broker_ring(b), 1, &rec, NULL, 1, NULL);
	ok(rec.freed >= before / 2 && st.bytes == before - rec.freed &&
	   st.evictions == rec.freed / one,
	   "shrink evicted and returned the bytes (%llu)",
	   (unsigned long long)rec.freed);
	ok(mb_cache_get(c, "k0000", 5, NULL, 0) == -ENOENT &&
	   mb_cache_get(c, "k0099", 5, NULL, 0) == 3,
	   "the oldest went first");
	target = mb_clerk_target(mb_cache_clerk(c));
	ok(target == before / 2, "target set to half");
	for (i = 100; i < 200; i++) {
		snprintf(k, sizeof(k), "k%04d", i);
		mb_cache_put(c, k, 5, "vvv", 3);
		mb_cache_stats(c, &st);
		if (st.bytes > target)
			over++;
	}
	ok(over == 0, "puts stay within the target");
	ok(mb_cache_put(c, "huge", 4, k, 0) == 0, "small put fits");
	mb_broker_free(b);
	ok(mb_clerk_target(mb_cache_clerk(c)) == UINT64_MAX,
	   "broker gone: unbounded again");
	mb_cache_free(c);
}

/* Entries larger than a LOW step; a pool minimum between two sizes */
static void test_min_big_entries(void)
{
	uint64_t one = cost_of_one() + 1 + 1000;	/* "a", 1000 bytes */
	struct mb_broker_opts bo = { .sz = sizeof(bo),
				     .min_bytes = one * 3 / 2 };
	struct mb_notification n = { .state = MB_STATE_LOW };
	struct mb_cache_stats st;
	struct mb_broker *b;
	struct mb_cache *c;
	char v[1000] = { 0 };
	int i, below = 0;

	mb_cache_new(&c, "big", NULL);
	mb_broker_new(&b, "big", NULL, &bo);
	mb_broker_add_clerk(b, mb_cache_clerk(c));
	mb_cache_put(c, "a", 1, v, sizeof(v));
	mb_cache_put(c, "b", 1, v, sizeof(v));
	mb_cache_put(c, "c", 1, v, sizeof(v));
	n.time_ns = 1;
	mb_broker_notify(b, &n);
	mb_cache_stats(c, &st);
	ok(st.entries == 3, "a step of 10%% is less than an entry: kept");
	for (i = 2; i < 40; i++) {
		n.time_ns = i;
		mb_broker_notify(b, &n);
		mb_cache_stats(c, &st);
		if (st.bytes < bo.min_bytes)
			below++;
	}
	ok(st.entries == 2 && mb_cache_get(c, "a", 1, NULL, 0) == -ENOENT,
	   "pressure goes on: the oldest entry goes after all");
	ok(below == 0 && st.bytes == 2 * one,
	   "and the pool never went below its minimum (%llu >= %llu)",
	   (unsigned long long)st.bytes, (unsigned long long)bo.min_bytes);
	mb_broker_free(b);
	mb_cache_free(c);
}

/* Two caches filled before any notification: the pool holds max_bytes */
static void test_two_within_max(void)
{
	uint64_t one = cost_of_one() + 2 + 100;
	struct mb_broker_opts bo = { .sz = sizeof(bo),
				     .max_bytes = 10 * one };
	struct mb_cache_stats sx, sy;
	struct mb_cache *x, *y;
	struct mb_broker *b;
	char k[16], v[100] = { 0 };
	int i, over = 0;

	mb_cache_new(&x, "max-x", NULL);
	mb_cache_new(&y, "max-y", NULL);
	mb_broker_new(&b, "max", NULL, &bo);
	mb_broker_add_clerk(b, mb_cache_clerk(x));
	mb_broker_add_clerk(b, mb_cache_clerk(y));
	for (i = 0; i < 50; i++) {
		snprintf(k, sizeof(k), "%02d", i);
		mb_cache_put(i % 2 ? x : y, k, 2, v, sizeof(v));
		mb_cache_stats(x, &sx);
		mb_cache_stats(y, &sy);
		if (sx.bytes + sy.bytes > bo.max_bytes)
			over++;
	}
	ok(over == 0 && sx.bytes + sy.bytes <= bo.max_bytes,
	   "two caches in a pool of 10 entries: never more (%llu + %llu)",
	   (unsigned long long)sx.bytes, (unsigned long long)sy.bytes);
	mb_broker_free(b);
	mb_cache_free(x);
	mb_cache_free(y);
}

/*
 * A pool above max_bytes by less than one entry: the broker asks for the
 * excess, and the cache must give at least that back (a whole entry),
 * not nothing for ever
 */
static void test_excess_below_entry(void)
{
	uint64_t one = cost_of_one() + 2 + 100;
	struct mb_broker_opts bo = { .sz = sizeof(bo),
				     .max_bytes = 10 * one + one / 2 };
	struct mb_notification n = { .state = MB_STATE_STEADY };
	struct mb_cache_stats st;
	struct mb_broker *b;
	struct mb_cache *c;
	char k[16], v[100] = { 0 };
	int i;

	mb_cache_new(&c, "excess", NULL);
	for (i = 0; i < 11; i++) {
		snprintf(k, sizeof(k), "%02d", i);
		mb_cache_put(c, k, 2, v, sizeof(v));
	}
	mb_broker_new(&b, "excess", NULL, &bo);
	mb_broker_add_clerk(b, mb_cache_clerk(c));
	ok(mb_clerk_target(mb_cache_clerk(c)) <= bo.max_bytes,
	   "joined with 11 entries: its target is within max_bytes");
	for (i = 1; i <= 3; i++) {
		n.time_ns = (uint64_t)i << 30;
		mb_broker_notify(b, &n);
	}
	mb_cache_stats(c, &st);
	ok(st.bytes <= bo.max_bytes && st.entries == 10 &&
	   mb_cache_get(c, "00", 2, NULL, 0) == -ENOENT,
	   "above max_bytes by half an entry: the oldest entry went "
	   "(%llu bytes, max %llu)", (unsigned long long)st.bytes,
	   (unsigned long long)bo.max_bytes);
	mb_broker_free(b);
	mb_cache_free(c);
}

static struct {
	struct mb_cache *c;
	struct mb_broker *b;
	atomic_bool stop;
} g;

static void *user(void *arg)
{
	char k[16], v[32] = { 0 };
	uintptr_t id = (uintptr_t)arg;
	int i;

	for (i = 0; i < 20000; i++) {
		snprintf(k, sizeof(k), "%lu-%d", (unsigned long)id, i % 500);
		if (i % 3)
			mb_cache_get(g.c, k, strlen(k), v, sizeof(v));
		else
			mb_cache_put(g.c, k, strlen(k), v, sizeof(v));
	}
	return NULL;
}

static void *shrinker(void *arg)
{
	struct mb_notification n = { .time_ns = 1 };

	(void)arg;
	while (!atomic_load(&g.stop)) {
		n.state = n.time_ns % 2 ? MB_STATE_LOW : MB_STATE_HIGH;
		n.time_ns++;
		mb_broker_notify(g.b, &n);
	}
	return NULL;
}

static void test_concurrent(void)
{
	struct mb_cache_stats st;
	pthread_t t[4];
	uintptr_t i;

	mb_cache_new(&g.c, "shared", NULL);
	mb_broker_new(&g.b, "shared", NULL, NULL);
	mb_broker_add_clerk(g.b, mb_cache_clerk(g.c));
	pthread_create(&t[3], NULL, shrinker, NULL);
	for (i = 0; i < 3; i++)
		pthread_create(&t[i], NULL, user, (void *)i);
	for (i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	atomic_store(&g.stop, true);
	pthread_join(t[3], NULL);
	mb_cache_stats(g.c, &st);
	ok(st.bytes == mb_clerk_bytes(mb_cache_clerk(g.c)) &&
	   st.hits + st.misses == 3 * 13333,
	   "3 threads and a shrinking broker: accounts agree");
	mb_broker_free(g.b);
	mb_cache_free(g.c);
}

int main(void)
{
	plan(0);
	test_basic();
	test_lru();
	test_table_growth();
	test_broker();
	test_min_big_entries();
	test_two_within_max();
	test_excess_below_entry();
	test_concurrent();
	return done_testing();
}
