// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * mb_cache: get/put/del, LRU order, the clerk charged for every byte,
 * shrinking by a broker returns what was freed (never more than asked,
 * so the pool's minimum holds, and entries larger than a step still go
 * under lasting pressure), puts honour the target, two caches stay within
 * their pool's maximum, -E2BIG, statistics, growth of the table, the
 * order of evictions after many hits and against a reference LRU list
 * over thousands of random operations, and concurrent use while a broker
 * shrinks it.
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

/*
 * Many hits, then evictions: the entries go in the order of their last
 * use, however many hits reordered them since they were put.  1000 equal
 * entries are put, all hit in one random order, half of them hit again
 * in another; a shrink of 300 entries' bytes must take exactly the 300
 * least recently used, and 500 more puts into the full cache (bounded at
 * 1000 entries) the next 200.
 */
static void test_lru_hits(void)
{
	uint64_t one = cost_of_one() + 5 + 1;
	struct mb_cache_opts o = { .sz = sizeof(o), .max_bytes = 1000 * one };
	static int p1[1000], p2[1000], order[1000], pos[1000];
	uint64_t seed = 0xfeedface;
	int i, j, t, n, bad = 0, hitbad = 0;
	struct mb_cache_stats st;
	bool again[1000] = { false };
	struct mb_cache *c;
	mb_shrink_fn fn;
	char key[8];
	void *arg;
	int64_t freed;

	for (i = 0; i < 1000; i++)
		p1[i] = p2[i] = i;
	for (i = 999; i > 0; i--) {
		j = (int)(rnd(&seed) % (uint64_t)(i + 1));
		t = p1[i];
		p1[i] = p1[j];
		p1[j] = t;
		j = (int)(rnd(&seed) % (uint64_t)(i + 1));
		t = p2[i];
		p2[i] = p2[j];
		p2[j] = t;
	}
	mb_cache_new(&c, "lru-hits", &o);
	for (i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "h%04d", i);
		mb_cache_put(c, key, 5, "v", 1);
	}
	for (i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "h%04d", p1[i]);
		if (mb_cache_get(c, key, 5, NULL, 0) != 1)
			hitbad++;
	}
	for (i = 0; i < 500; i++) {
		snprintf(key, sizeof(key), "h%04d", p2[i]);
		if (mb_cache_get(c, key, 5, NULL, 0) != 1)
			hitbad++;
		again[p2[i]] = true;
	}
	/* oldest first: those hit once, in p1's order, then p2's first half */
	for (i = 0, n = 0; i < 1000; i++)
		if (!again[p1[i]])
			order[n++] = p1[i];
	for (i = 0; i < 500; i++)
		order[n++] = p2[i];
	for (i = 0; i < 1000; i++)
		pos[order[i]] = i;

	fn = mb_clerk_shrinker(mb_cache_clerk(c), &arg);
	freed = fn(mb_cache_clerk(c), 300 * one, arg);
	mb_cache_stats(c, &st);
	ok(hitbad == 0 && freed == (int64_t)(300 * one) &&
	   st.entries == 700 && st.evictions == 300,
	   "1500 hits, then a shrink of 300 entries' bytes: 300 went "
	   "(freed %lld)", (long long)freed);
	for (i = 0; i < 500; i++) {
		snprintf(key, sizeof(key), "n%04d", i);
		mb_cache_put(c, key, 5, "v", 1);
	}
	mb_cache_stats(c, &st);
	for (i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "h%04d", i);
		/* the 500 least recently used went, the others stayed */
		if ((mb_cache_del(c, key, 5) == 0) != (pos[i] >= 500))
			bad++;
	}
	for (i = 0; i < 500; i++) {
		snprintf(key, sizeof(key), "n%04d", i);
		if (mb_cache_del(c, key, 5))
			bad++;
	}
	ok(bad == 0 && st.evictions == 500 && st.entries == 1000,
	   "... and 500 puts into the full cache the next 200: exactly the "
	   "500 least recently used of all went (%d wrong)", bad);
	mb_cache_free(c);
}

/*
 * The reference: one LRU list, most recently used first, with the
 * cache's rules written plainly.  Keys are "r%04d"; an entry costs
 * ov + 5 + its value's length.
 */
#define RK		600	/* keys */
#define REF_SKIP	64	/* MB_CACHE_SKIP: too large, passed over */

struct ref_entry {
	int key;
	size_t vlen;
	unsigned char fill;
};

struct ref {
	struct ref_entry e[RK];	/* [0] is the newest */
	int n;
	uint64_t ov, bytes, bound, evictions;
};

static uint64_t ref_cost(const struct ref *r, const struct ref_entry *e)
{
	return r->ov + 5 + e->vlen;
}

static int ref_find(const struct ref *r, int key)
{
	int i;

	for (i = 0; i < r->n; i++)
		if (r->e[i].key == key)
			return i;
	return -1;
}

static struct ref_entry ref_take(struct ref *r, int i)
{
	struct ref_entry e = r->e[i];

	memmove(&r->e[i], &r->e[i + 1], (size_t)(r->n - i - 1) * sizeof(e));
	r->n--;
	r->bytes -= ref_cost(r, &e);
	return e;
}

static void ref_front(struct ref *r, struct ref_entry e)
{
	memmove(&r->e[1], &r->e[0], (size_t)r->n * sizeof(e));
	r->e[0] = e;
	r->n++;
	r->bytes += ref_cost(r, &e);
}

static void ref_put(struct ref *r, struct ref_entry e)
{
	int i = ref_find(r, e.key);

	if (i >= 0)
		ref_take(r, i);		/* replaced, not evicted */
	ref_front(r, e);
	while (r->bytes > r->bound) {
		ref_take(r, r->n - 1);
		r->evictions++;
	}
}

static uint64_t ref_evict(struct ref *r, int i)
{
	uint64_t cost = ref_cost(r, &r->e[i]);

	ref_take(r, i);
	r->evictions++;
	return cost;
}

/*
 * The caches' walk: oldest first until @want, passing over what would go
 * beyond @limit, at most REF_SKIP + 1 of them
 */
static uint64_t ref_walk(struct ref *r, uint64_t want, uint64_t limit)
{
	uint64_t freed = 0;
	int i = r->n - 1, skipped = 0;

	while (freed < want && skipped <= REF_SKIP && i >= 0) {
		if (ref_cost(r, &r->e[i]) > limit - freed)
			skipped++;
		else
			freed += ref_evict(r, i);
		i--;
	}
	return freed;
}

/*
 * mb_cache_shrink_floor(): at most @bytes, passing over what is too
 * large, then whole entries, oldest first, until @at_least
 */
static uint64_t ref_shrink_floor(struct ref *r, uint64_t bytes,
				 uint64_t at_least)
{
	uint64_t freed = ref_walk(r, bytes, bytes);

	while (freed < at_least && r->n)
		freed += ref_evict(r, r->n - 1);
	return freed;
}

/* mb_cache_shrink_range(): until @at_least, never beyond @at_most */
static uint64_t ref_shrink_range(struct ref *r, uint64_t at_least,
				 uint64_t at_most)
{
	return ref_walk(r, at_least, at_most);
}

/*
 * 20000 random puts (of values from 0 to 600 bytes), gets, deletes and
 * shrinks of every kind (by bytes, with a floor, by a range) on a cache
 * of 16 shards, bounded at about 300 entries, against the reference.
 * After every operation the cache holds what the reference holds: every
 * get hits exactly when the reference has the key, with its value; every
 * shrink frees the same bytes; entries, bytes, evictions and the clerk's
 * charge are equal.  Phases where nearly every value is large make the
 * shrinks pass over more than 64 entries too large for what they still
 * have to free.
 */
static void test_lru_reference(void)
{
	struct mb_cache_opts o = { .sz = sizeof(o) };
	struct mb_cache_stats st;
	static struct ref r;
	mb_shrink_floor_fn floor_fn;
	mb_shrink_range_fn range_fn;
	mb_shrink_fn shrink_fn;
	uint64_t seed = 0x5eed1234, a, b, want, avg;
	int op, i, k, x, bad = 0, first = -1, nshrink = 0, small_pct;
	struct mb_clerk *clerk;
	struct ref_entry e;
	unsigned char val[600], buf[600];
	struct mb_cache *c;
	int64_t got;
	char key[8];
	void *arg;

	memset(&r, 0, sizeof(r));
	r.ov = cost_of_one();
	avg = r.ov + 5 + 150;
	r.bound = 300 * avg;
	o.max_bytes = r.bound;
	mb_cache_new(&c, "lru-reference", &o);
	clerk = mb_cache_clerk(c);
	shrink_fn = mb_clerk_shrinker(clerk, &arg);
	floor_fn = mb_clerk_shrinker_floor(clerk);
	range_fn = mb_clerk_shrinker_range(clerk);
	for (op = 0; op < 20000 && !bad; op++) {
		small_pct = (op / 2000) % 2 ? 1 : 50;
		k = (int)(rnd(&seed) % RK);
		snprintf(key, sizeof(key), "r%04d", k);
		x = (int)(rnd(&seed) % 100);
		if (x < 40) {
			got = mb_cache_get(c, key, 5, buf, sizeof(buf));
			i = ref_find(&r, k);
			if (i < 0) {
				if (got != -ENOENT)
					bad = 1;
				continue;
			}
			e = ref_take(&r, i);
			ref_front(&r, e);
			memset(val, e.fill, e.vlen);
			if (got != (int64_t)e.vlen || memcmp(buf, val, e.vlen))
				bad = 2;
		} else if (x < 75) {
			e.key = k;
			e.vlen = (size_t)(rnd(&seed) % 100 < (uint64_t)small_pct ?
					  rnd(&seed) % 21 :
					  rnd(&seed) % sizeof(val));
			e.fill = (unsigned char)op;
			memset(val, e.fill, e.vlen);
			if (mb_cache_put(c, key, 5, val, e.vlen))
				bad = 3;
			ref_put(&r, e);
		} else if (x < 80) {
			i = ref_find(&r, k);
			if (i >= 0)
				ref_take(&r, i);
			if ((mb_cache_del(c, key, 5) == 0) != (i >= 0))
				bad = 4;
		} else {
			/*
			 * what only a small entry fits, or up to a few
			 * entries, or now and then many
			 */
			x = (int)(rnd(&seed) % 100);
			if (x < 50)
				a = r.ov + 5 + rnd(&seed) % 21;
			else
				a = rnd(&seed) % (x < 95 ? 2 * avg : 20 * avg);
			b = rnd(&seed) % (a + 1);
			nshrink++;
			switch (rnd(&seed) % 3) {
			case 0:
				got = shrink_fn(clerk, a, arg);
				want = ref_shrink_floor(&r, a, 0);
				break;
			case 1:
				got = floor_fn(clerk, a, b, arg);
				want = ref_shrink_floor(&r, a, b);
				break;
			default:
				got = range_fn(clerk, b, a, arg);
				want = ref_shrink_range(&r, b, a);
				break;
			}
			if (got != (int64_t)want)
				bad = 5;
		}
		mb_cache_stats(c, &st);
		if (!bad && (st.entries != (uint64_t)r.n || st.bytes != r.bytes ||
		    st.evictions != r.evictions ||
		    mb_clerk_bytes(clerk) != r.bytes))
			bad = 6;
	}
	if (bad)
		first = op - 1;
	/* what is held now: exactly the reference's entries */
	for (k = 0; k < RK && !bad; k++) {
		snprintf(key, sizeof(key), "r%04d", k);
		if ((mb_cache_del(c, key, 5) == 0) != (ref_find(&r, k) >= 0))
			bad = 7;
	}
	ok(!bad && nshrink > 3000,
	   "20000 random puts, gets, deletes and %d shrinks against one "
	   "exact LRU list: the same entries kept, the same bytes freed "
	   "(first difference: kind %d at op %d)", nshrink, bad, first);
	mb_cache_free(c);
}

struct blocked {
	struct mb_cache *c;
	const char *key;
	pthread_mutex_t m;
	pthread_cond_t cv;
	bool done, right;
};

static void blocked_finish(struct blocked *x, bool right)
{
	pthread_mutex_lock(&x->m);
	x->right = right;
	x->done = true;
	pthread_cond_broadcast(&x->cv);
	pthread_mutex_unlock(&x->m);
}

/* Until the thread is done: 0, or ETIMEDOUT after 30 s (a hang) */
static int blocked_wait(struct blocked *x)
{
	struct timespec dl;
	int err = 0;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 30;
	pthread_mutex_lock(&x->m);
	while (!x->done && !err)
		err = pthread_cond_timedwait(&x->cv, &x->m, &dl);
	pthread_mutex_unlock(&x->m);
	return err;
}

static void *get_other(void *arg)
{
	struct blocked *x = arg;

	mb_cache_get(x->c, x->key, strlen(x->key), NULL, 0);
	mb_cache_put(x->c, x->key, strlen(x->key), "w", 1);
	blocked_finish(x, true);
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
	int i, a, err;
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
	err = blocked_wait(&x);
	mb_cache_shard_lock(x.c, a, false);
	pthread_join(t, NULL);
	ok(i < NK && x.done && !err,
	   "with shard %d held, a get and a put in shard %d went through", a,
	   mb_cache_shard_of(x.c, keys[1], 4));
	mb_cache_free(x.c);
}

static void *get_same(void *arg)
{
	struct blocked *x = arg;
	char v[8] = { 0 };
	bool right;

	right = mb_cache_get(x->c, x->key, strlen(x->key), v, sizeof(v)) ==
		5 && !memcmp(v, "value", 5) &&
		mb_cache_get(x->c, "absent", 6, v, sizeof(v)) == -ENOENT;
	blocked_finish(x, right);
	return NULL;
}

/*
 * Gets take no lock: with the lock of a key's own shard held by another
 * thread (as a put or a shrink holds it), a get of that key still
 * returns its value, and a get of an absent key of that shard its miss.
 * (The wait is a hang detector.)
 */
static void test_gets_take_no_lock(void)
{
	struct blocked x = { .m = PTHREAD_MUTEX_INITIALIZER,
			     .cv = PTHREAD_COND_INITIALIZER,
			     .key = "present" };
	int a, b, err;
	pthread_t t;

	mb_cache_new(&x.c, "no-lock", NULL);
	mb_cache_put(x.c, x.key, strlen(x.key), "value", 5);
	a = mb_cache_shard_of(x.c, x.key, strlen(x.key));
	b = mb_cache_shard_of(x.c, "absent", 6);
	mb_cache_shard_lock(x.c, a, true);
	if (b != a)
		mb_cache_shard_lock(x.c, b, true);
	pthread_create(&t, NULL, get_same, &x);
	err = blocked_wait(&x);
	if (b != a)
		mb_cache_shard_lock(x.c, b, false);
	mb_cache_shard_lock(x.c, a, false);
	pthread_join(t, NULL);
	ok(x.done && x.right && !err, "with its shard's lock held elsewhere, "
	   "a get returns the value, and a miss its -ENOENT");
	mb_cache_free(x.c);
}

/*
 * Readers without a lock against writers that replace, delete, grow the
 * tables, evict and shrink: every hit gives a value that was put for
 * that key, whole (its length and every byte say which version), and
 * nothing read was freed under it (ASan, TSan).
 */
#define RW_KEYS		1000	/* key_of()'s 4 characters */
#define RW_OPS		200000

static struct {
	struct mb_cache *c;
	atomic_bool stop;
	atomic_int bad;
	atomic_ullong hits;
} rw;

static size_t rw_value(char *v, int key, unsigned int ver)
{
	size_t len = 8 + ver % 200;

	memset(v, (int)('a' + ver % 26), len);
	memcpy(v, &key, sizeof(key));
	memcpy(v + 4, &ver, sizeof(ver));
	return len;
}

static void *rw_reader(void *arg)
{
	char key[8], v[256], want[256];
	uint64_t seed = (uintptr_t)arg;
	unsigned int ver;
	int64_t len;
	int k;

	while (!atomic_load(&rw.stop)) {
		k = (int)(rnd(&seed) % RW_KEYS);
		key_of(key, k);
		len = mb_cache_get(rw.c, key, 4, v, sizeof(v));
		if (len == -ENOENT)
			continue;
		memcpy(&ver, v + 4, sizeof(ver));
		if (len < 8 || (size_t)len != rw_value(want, k, ver) ||
		    memcmp(v, want, (size_t)len))
			atomic_store(&rw.bad, 1);
		atomic_fetch_add(&rw.hits, 1);
	}
	return NULL;
}

/* What the cache's clerk does when its broker asks for @bytes */
static int64_t shrink_by(struct mb_cache *c, uint64_t bytes)
{
	struct mb_clerk *clerk = mb_cache_clerk(c);
	void *arg;

	return mb_clerk_shrinker(clerk, &arg)(clerk, bytes, arg);
}

static void test_gets_under_writers(void)
{
	struct mb_cache_opts o = { .sz = sizeof(o),
				   .max_bytes = RW_KEYS / 2 * 300 };
	uint64_t seed = 7;
	char key[8], v[256];
	unsigned int ver;
	pthread_t t[2];
	int i, k;

	mb_cache_new(&rw.c, "readers-writers", &o);
	for (i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, rw_reader,
			       (void *)(uintptr_t)(i + 1));
	for (i = 0; i < RW_OPS; i++) {
		k = (int)(rnd(&seed) % RW_KEYS);
		key_of(key, k);
		ver = (unsigned int)i;
		if (i % 10 == 0)
			mb_cache_del(rw.c, key, 4);
		else
			mb_cache_put(rw.c, key, 4, v, rw_value(v, k, ver));
		if (i % 20000 == 0)
			shrink_by(rw.c, 50000);
	}
	atomic_store(&rw.stop, true);
	for (i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	ok(!atomic_load(&rw.bad) && atomic_load(&rw.hits) > 0,
	   "gets without a lock beside %d puts, deletes, evictions and "
	   "shrinks: every one of %llu hits whole and right", RW_OPS,
	   (unsigned long long)atomic_load(&rw.hits));
	mb_cache_free(rw.c);
}

static void *enter_and_park(void *arg)
{
	struct blocked *x = arg;
	struct mb_epoch_rec *r = mb_epoch_enter();

	pthread_mutex_lock(&x->m);
	x->key = r ? "in" : NULL;
	pthread_cond_broadcast(&x->cv);
	while (!x->done)
		pthread_cond_wait(&x->cv, &x->m);
	pthread_mutex_unlock(&x->m);
	if (r)
		mb_epoch_leave(r);
	return NULL;
}

/*
 * What a put or a delete drops is freed once no get can be reading it,
 * without waiting for gets: while a reader is inside, evictions keep
 * what they drop; then the next drops free it, and so does a shrink,
 * which waits for the gets of the moment.  Without readers, what waits
 * stays a few entries per shard, however many go.
 */
static void test_dropped_freed(void)
{
	struct mb_cache_opts o = { .sz = sizeof(o), .max_bytes = 20000 };
	struct blocked x = { .m = PTHREAD_MUTEX_INITIALIZER,
			     .cv = PTHREAD_COND_INITIALIZER };
	size_t held, after, idle, shrunk;
	char key[8];
	pthread_t t;
	int i;

	mb_cache_new(&x.c, "dropped", &o);
	pthread_create(&t, NULL, enter_and_park, &x);
	pthread_mutex_lock(&x.m);
	while (!x.key)
		pthread_cond_wait(&x.cv, &x.m);
	pthread_mutex_unlock(&x.m);
	for (i = 0; i < 5000; i++) {
		snprintf(key, sizeof(key), "%07d", i);
		mb_cache_put(x.c, key, 7, "value", 5);
	}
	held = mb_cache_limbo(x.c);
	pthread_mutex_lock(&x.m);
	x.done = true;
	pthread_cond_broadcast(&x.cv);
	pthread_mutex_unlock(&x.m);
	pthread_join(t, NULL);
	for (i = 0; i < 5000; i++) {
		snprintf(key, sizeof(key), "%07d", 5000 + i);
		mb_cache_put(x.c, key, 7, "value", 5);
	}
	after = mb_cache_limbo(x.c);
	for (i = 0; i < 50000; i++) {
		snprintf(key, sizeof(key), "%07d", 10000 + i);
		mb_cache_put(x.c, key, 7, "value", 5);
	}
	idle = mb_cache_limbo(x.c);
	shrink_by(x.c, 10000);
	shrunk = mb_cache_limbo(x.c);
	ok(held >= 4500 && after < held && idle <= 16 * 3 * 64 && !shrunk,
	   "dropped entries: %zu kept while a get was inside, %zu after, "
	   "%zu after 50000 more, %zu after a shrink", held, after, idle,
	   shrunk);
	mb_cache_free(x.c);
}

/* A thread that tells its row of use times, then hits keys on request */
struct hitter {
	pthread_t t;
	pthread_mutex_t *m;
	pthread_cond_t *cv;
	struct mb_cache *c;
	int row, key;		/* -1: none yet / nothing to do; -2: quit */
};

static void *hitter(void *arg)
{
	struct hitter *h = arg;
	struct mb_epoch_rec *r = mb_epoch_enter();
	char key[8];
	int k;

	pthread_mutex_lock(h->m);
	h->row = r ? (int)(mb_epoch_slot(r) % 4) : 0;
	if (r)
		mb_epoch_leave(r);
	pthread_cond_broadcast(h->cv);
	for (;;) {
		while (h->key == -1)
			pthread_cond_wait(h->cv, h->m);
		if (h->key == -2)
			break;
		k = h->key;
		pthread_mutex_unlock(h->m);
		key_of(key, k);
		mb_cache_get(h->c, key, 4, NULL, 0);
		pthread_mutex_lock(h->m);
		h->key = -1;
		pthread_cond_broadcast(h->cv);
	}
	pthread_mutex_unlock(h->m);
	return NULL;
}

/*
 * Threads stamp their hits in rows of their own (a row per group of
 * threads): an entry's time of use is the latest hit of any row.  Five
 * entries are put; four threads, one in each row, hit entries 0..3 in
 * turn; the next puts must evict 4 (never hit), then 0, 1, 2, 3.
 */
static void test_lru_rows(void)
{
	struct mb_cache_opts o = { .sz = sizeof(o) };
	pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
	struct hitter h[16], *in_row[4] = { NULL };
	int i, k, n = 0, rows = 0, bad = 0;
	struct mb_cache *c;
	char key[8];

	o.max_bytes = 5 * (cost_of_one() + 4 + 1);
	mb_cache_new(&c, "rows", &o);
	/* new threads until each row has one; record numbers are handed
	 * out in turn once the free ones are taken */
	while (rows < 4 && n < 16) {
		h[n] = (struct hitter){ .m = &m, .cv = &cv, .c = c,
					.row = -1, .key = -1 };
		pthread_create(&h[n].t, NULL, hitter, &h[n]);
		pthread_mutex_lock(&m);
		while (h[n].row < 0)
			pthread_cond_wait(&cv, &m);
		pthread_mutex_unlock(&m);
		if (!in_row[h[n].row]) {
			in_row[h[n].row] = &h[n];
			rows++;
		}
		n++;
	}
	for (i = 0; i < 5; i++) {
		key_of(key, i);
		mb_cache_put(c, key, 4, "v", 1);
	}
	for (k = 0; k < 4 && rows == 4; k++) {
		pthread_mutex_lock(&m);
		in_row[k]->key = k;
		pthread_cond_broadcast(&cv);
		while (in_row[k]->key != -1)
			pthread_cond_wait(&cv, &m);
		pthread_mutex_unlock(&m);
	}
	for (i = 0; i < 5 && rows == 4; i++) {
		key_of(key, 10 + i);
		mb_cache_put(c, key, 4, "v", 1);
		key_of(key, i == 0 ? 4 : i - 1);
		if (mb_cache_get(c, key, 4, NULL, 0) != -ENOENT)
			bad++;
	}
	pthread_mutex_lock(&m);
	for (i = 0; i < n; i++)
		h[i].key = -2;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&m);
	for (i = 0; i < n; i++)
		pthread_join(h[i].t, NULL);
	ok(rows == 4 && !bad, "hits stamped in 4 rows by 4 threads: "
	   "evictions in the order of the latest of them (%d rows, %d "
	   "wrong)", rows, bad);
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
	test_lru_hits();
	test_lru_reference();
	test_lru_rows();
	test_shards_independent();
	test_gets_take_no_lock();
	test_gets_under_writers();
	test_dropped_freed();
	test_concurrent();
	return done_testing();
}
