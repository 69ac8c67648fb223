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
#include <time.h>

#include "membroker.h"
#include "internal.h"
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

/* ---- shards: LRU order, shrinking and accounting stay exact ---- */

#define NK	64

/* A model of one LRU list: keys, most recently used first */
struct model {
	int key[NK];
	int n;
};

static void model_use(struct model *m, int k)
{
	int i;

	for (i = 0; i < m->n && m->key[i] != k; i++)
		;
	if (i == m->n)
		m->n++;
	memmove(&m->key[1], &m->key[0], (size_t)i * sizeof(m->key[0]));
	m->key[0] = k;
}

static bool model_has(const struct model *m, int k)
{
	int i;

	for (i = 0; i < m->n; i++)
		if (m->key[i] == k)
			return true;
	return false;
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void key_of(char *k, int i)
{
	snprintf(k, 8, "k%03d", i);
}

/*
 * Keys spread over every shard; a bound of 8 entries; 2000 random gets
 * and puts.  After each, the cache must hold exactly the 8 most recently
 * used keys, as one LRU list would: eviction takes the oldest of all the
 * shards, not of one.
 */
static void test_lru_across_shards(void)
{
	uint64_t one = cost_of_one() + 4 + 1;
	struct mb_cache_opts o = { .sz = sizeof(o), .max_bytes = 8 * one };
	uint64_t seed = 0x12345678;
	struct model m = { .n = 0 };
	int i, op, k, bad = 0, shards = 0, seen[16] = { 0 };
	struct mb_cache_stats st;
	struct mb_cache *c;
	char key[8], v = 'v';

	mb_cache_new(&c, "lru-shards", &o);
	for (i = 0; i < NK; i++) {
		key_of(key, i);
		seen[mb_cache_shard_of(c, key, 4) & 15] = 1;
	}
	for (i = 0; i < 16; i++)
		shards += seen[i];
	for (op = 0; op < 2000; op++) {
		k = (int)(rnd(&seed) % 24);
		key_of(key, k);
		if (rnd(&seed) % 2) {
			if (mb_cache_get(c, key, 4, NULL, 0) >= 0) {
				if (!model_has(&m, k))
					bad++;
				model_use(&m, k);
			} else if (model_has(&m, k)) {
				bad++;
			}
		} else {
			mb_cache_put(c, key, 4, &v, 1);
			model_use(&m, k);
			if (m.n > 8)
				m.n = 8;
		}
	}
	/* what is held now: exactly the model's 8 */
	for (i = 0; i < 24; i++) {
		key_of(key, i);
		if ((mb_cache_del(c, key, 4) == 0) != model_has(&m, i))
			bad++;
	}
	mb_cache_stats(c, &st);
	ok(shards > 8 && bad == 0 && st.entries == 0 && st.bytes == 0,
	   "2000 gets and puts over %d shards: evictions in exact LRU order "
	   "(%d differences from one list)", shards, bad);
	mb_cache_free(c);
}

/*
 * A broker asks for exactly 10 entries' worth out of 40 spread over the
 * shards: the 10 least recently used of all go, and exactly those bytes.
 */
static void test_shrink_across_shards(void)
{
	uint64_t one = cost_of_one() + 4 + 1;
	struct mb_broker_opts bo = { .sz = sizeof(bo),
				     .shrink_step_percent = 25 };
	struct mb_notification low = { .state = MB_STATE_LOW, .time_ns = 1 };
	uint64_t seed = 42;
	struct mb_broker_record rec;
	struct mb_cache_stats st;
	struct model m = { .n = 0 };
	int i, k, bad = 0;
	struct mb_broker *b;
	struct mb_cache *c;
	char key[8], v = 'v';

	mb_cache_new(&c, "shrink-shards", NULL);
	mb_broker_new(&b, "shrink-shards", NULL, &bo);
	mb_broker_add_clerk(b, mb_cache_clerk(c));
	for (i = 0; i < 40; i++) {
		key_of(key, i);
		mb_cache_put(c, key, 4, &v, 1);
		model_use(&m, i);
	}
	for (i = 0; i < 200; i++) {
		k = (int)(rnd(&seed) % 40);
		key_of(key, k);
		mb_cache_get(c, key, 4, NULL, 0);
		model_use(&m, k);
	}
	mb_broker_notify(b, &low);
	mb_ring_read(mb_broker_ring(b), 1, &rec, NULL, 1, NULL);
	mb_cache_stats(c, &st);
	for (i = 0; i < 40; i++) {
		key_of(key, m.key[i]);
		/* the 30 most recent stay, the 10 oldest went */
		if ((mb_cache_del(c, key, 4) == 0) != (i < 30))
			bad++;
	}
	ok(rec.freed == 10 * one && st.bytes == 30 * one &&
	   st.evictions == 10 && bad == 0,
	   "a shrink of 10 entries' bytes: exactly those, the 10 least "
	   "recently used of all shards (freed %llu, %d wrong)",
	   (unsigned long long)rec.freed, bad);
	mb_broker_free(b);
	mb_cache_free(c);
}

struct blocked {
	struct mb_cache *c;
	const char *key;
	pthread_mutex_t m;
	pthread_cond_t cv;
	bool done;
};

static void *get_other(void *arg)
{
	struct blocked *x = arg;

	mb_cache_get(x->c, x->key, strlen(x->key), NULL, 0);
	mb_cache_put(x->c, x->key, strlen(x->key), "w", 1);
	pthread_mutex_lock(&x->m);
	x->done = true;
	pthread_cond_broadcast(&x->cv);
	pthread_mutex_unlock(&x->m);
	return NULL;
}

/*
 * A thread holding one shard does not hold up gets and puts of keys in
 * another: the property that lets gets scale with threads.  (The wait
 * is a hang detector, not a timing requirement.)
 */
static void test_shards_independent(void)
{
	struct blocked x = { .m = PTHREAD_MUTEX_INITIALIZER,
			     .cv = PTHREAD_COND_INITIALIZER };
	static char keys[2][8];
	struct timespec dl;
	int i, a, err = 0;
	pthread_t t;

	mb_cache_new(&x.c, "independent", NULL);
	key_of(keys[0], 0);
	a = mb_cache_shard_of(x.c, keys[0], 4);
	for (i = 1; i < NK; i++) {
		key_of(keys[1], i);
		if (mb_cache_shard_of(x.c, keys[1], 4) != a)
			break;
	}
	mb_cache_put(x.c, keys[1], 4, "v", 1);
	x.key = keys[1];
	mb_cache_shard_lock(x.c, a, true);
	pthread_create(&t, NULL, get_other, &x);
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 30;
	pthread_mutex_lock(&x.m);
	while (!x.done && !err)
		err = pthread_cond_timedwait(&x.cv, &x.m, &dl);
	pthread_mutex_unlock(&x.m);
	mb_cache_shard_lock(x.c, a, false);
	pthread_join(t, NULL);
	ok(i < NK && x.done && !err,
	   "with shard %d held, a get and a put in shard %d went through", a,
	   mb_cache_shard_of(x.c, keys[1], 4));
	mb_cache_free(x.c);
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

/*
 * Four threads (and a shrinking broker) on one cache: afterwards the
 * stats, the clerk and the entries actually there agree to the byte.
 */
static void test_concurrent(void)
{
	uint64_t present = 0, bytes = 0, over = cost_of_one();
	struct mb_cache_stats st;
	char k[16], v[32];
	pthread_t t[5];
	uintptr_t i;
	int j;
	int64_t len;

	mb_cache_new(&g.c, "shared", NULL);
	mb_broker_new(&g.b, "shared", NULL, NULL);
	mb_broker_add_clerk(g.b, mb_cache_clerk(g.c));
	pthread_create(&t[4], NULL, shrinker, NULL);
	for (i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, user, (void *)i);
	for (i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	atomic_store(&g.stop, true);
	pthread_join(t[4], NULL);
	mb_cache_stats(g.c, &st);
	ok(st.bytes == mb_clerk_bytes(mb_cache_clerk(g.c)) &&
	   st.hits + st.misses == 4 * 13333,
	   "4 threads and a shrinking broker: stats and clerk agree");
	for (i = 0; i < 4; i++) {
		for (j = 0; j < 500; j++) {
			snprintf(k, sizeof(k), "%lu-%d", (unsigned long)i, j);
			len = mb_cache_get(g.c, k, strlen(k), v, sizeof(v));
			if (len < 0)
				continue;
			present++;
			bytes += strlen(k) + (uint64_t)len + over;
		}
	}
	ok(present == st.entries && bytes == st.bytes,
	   "... and the entries there: %llu of them, %llu bytes",
	   (unsigned long long)present, (unsigned long long)bytes);
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
	test_lru_across_shards();
	test_shrink_across_shards();
	test_shards_independent();
	test_concurrent();
	return done_testing();
}
