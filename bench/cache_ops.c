// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * cache_ops: mb_cache get/put throughput with 1, 2 and 4 threads, next to
 *   "mutex map"   an uncharged hash table + LRU list behind one mutex
 *                 (what an application would write itself), and
 *   "mb_cache 0.1" the library's first design, kept here as the baseline:
 *                 the same table and list behind one mutex, with the
 *                 clerk charged and the statistics kept, as mb_cache did
 *                 before it was sharded;
 * and the share of a put that goes to clerk accounting.
 *
 * Keys are 16 bytes, values 100 bytes.  Workloads:
 *   get, hit       random keys from 20000 cached entries
 *   get, miss      keys never inserted
 *   put, replace   existing keys, same size value
 *   put, evict     new keys into a full 1 MiB cache: each put evicts
 *
 * Usage: cache_ops [-n OPS]
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <membroker.h>

#include "harness.h"

#define NKEYS		20000U
#define KEY_LEN		16
#define VAL_LEN		100
#define EVICT_BOUND	(1U << 20)
#define DEFAULT_ITERS	400000ULL

/*
 * ---- the baselines: chained hash + LRU list, one mutex; without a
 * clerk, the mutex map; with one and statistics, mb_cache 0.1 ----
 */

struct plain_entry {
	struct plain_entry *hnext;
	struct plain_entry *prev, *next;	/* LRU, most recent first */
	size_t klen, vlen;
	unsigned char data[];			/* key then value */
};

struct plain_cache {
	pthread_mutex_t lock;
	struct plain_entry **buckets;
	size_t nbuckets;			/* power of two */
	struct plain_entry *head, *tail;
	uint64_t bytes, max_bytes;
	/* mb_cache 0.1: its clerk and counters, all under the one mutex */
	struct mb_clerk *clerk;
	uint64_t hits, misses, evictions, inserts, entries;
};

static uint64_t fnv1a(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t h = 0xcbf29ce484222325ULL;

	while (n--)
		h = (h ^ *s++) * 0x100000001b3ULL;
	return h;
}

static int plain_init(struct plain_cache *c, size_t nbuckets,
		      uint64_t max_bytes, const char *clerk)
{
	int err;

	memset(c, 0, sizeof(*c));
	if (clerk) {
		err = mb_clerk_new(&c->clerk, clerk, NULL);
		if (err < 0)
			return err;
	}
	c->buckets = calloc(nbuckets, sizeof(*c->buckets));
	if (!c->buckets) {
		mb_clerk_free(c->clerk);
		return -ENOMEM;
	}
	c->nbuckets = nbuckets;
	c->max_bytes = max_bytes;
	pthread_mutex_init(&c->lock, NULL);
	return 0;
}

static void lru_unlink(struct plain_cache *c, struct plain_entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
}

static void lru_push_front(struct plain_cache *c, struct plain_entry *e)
{
	e->prev = NULL;
	e->next = c->head;
	if (c->head)
		c->head->prev = e;
	c->head = e;
	if (!c->tail)
		c->tail = e;
}

static struct plain_entry **plain_slot(struct plain_cache *c,
				       const void *key, size_t klen)
{
	struct plain_entry **pp;

	pp = &c->buckets[fnv1a(key, klen) & (c->nbuckets - 1)];
	for (; *pp; pp = &(*pp)->hnext)
		if ((*pp)->klen == klen && !memcmp((*pp)->data, key, klen))
			break;
	return pp;
}

static size_t plain_size(const struct plain_entry *e)
{
	return sizeof(*e) + e->klen + e->vlen;
}

static void plain_remove(struct plain_cache *c, struct plain_entry **pp)
{
	struct plain_entry *e = *pp;

	*pp = e->hnext;
	lru_unlink(c, e);
	c->bytes -= plain_size(e);
	if (c->clerk) {
		mb_clerk_uncharge(c->clerk, plain_size(e));
		c->entries--;
	}
	free(e);
}

static int plain_put(struct plain_cache *c, const void *key, size_t klen,
		     const void *val, size_t vlen)
{
	struct plain_entry **pp, *e;

	e = malloc(sizeof(*e) + klen + vlen);
	if (!e)
		return -ENOMEM;
	e->klen = klen;
	e->vlen = vlen;
	memcpy(e->data, key, klen);
	memcpy(e->data + klen, val, vlen);

	pthread_mutex_lock(&c->lock);
	pp = plain_slot(c, key, klen);
	if (*pp)
		plain_remove(c, pp);
	while (c->max_bytes && c->tail &&
	       c->bytes + plain_size(e) > c->max_bytes) {
		c->evictions++;
		plain_remove(c, plain_slot(c, c->tail->data, c->tail->klen));
	}
	pp = plain_slot(c, key, klen);
	e->hnext = NULL;
	*pp = e;
	lru_push_front(c, e);
	c->bytes += plain_size(e);
	if (c->clerk) {
		mb_clerk_charge(c->clerk, plain_size(e));
		c->entries++;
		c->inserts++;
	}
	pthread_mutex_unlock(&c->lock);
	return 0;
}

static int64_t plain_get(struct plain_cache *c, const void *key, size_t klen,
			 void *buf, size_t buflen)
{
	struct plain_entry *e;
	int64_t ret = -ENOENT;

	pthread_mutex_lock(&c->lock);
	e = *plain_slot(c, key, klen);
	if (e) {
		c->hits++;
		lru_unlink(c, e);
		lru_push_front(c, e);
		memcpy(buf, e->data + klen, e->vlen < buflen ? e->vlen : buflen);
		ret = (int64_t)e->vlen;
	} else {
		c->misses++;
	}
	pthread_mutex_unlock(&c->lock);
	return ret;
}

static void plain_destroy(struct plain_cache *c)
{
	struct plain_entry *e, *next;

	for (e = c->head; e; e = next) {
		next = e->next;
		free(e);
	}
	free(c->buckets);
	pthread_mutex_destroy(&c->lock);
	mb_clerk_free(c->clerk);
}

/* ---- the workloads, run against either cache ---- */

enum impl { IMPL_PLAIN, IMPL_V01, IMPL_MB, IMPL_COUNT };

static const char *const impl_names[IMPL_COUNT] = {
	"mutex map", "mb_cache 0.1 (one mutex)", "mb_cache (16 shards)",
};

struct bench {
	struct mb_cache *mb;
	struct plain_cache plain, v01;
	enum impl impl;
	_Atomic uint64_t next_key;	/* put-evict: keys never seen */
	_Atomic uint64_t hits;
	_Atomic int error;
};

static void make_key(char key[KEY_LEN], uint64_t n)
{
	char tmp[KEY_LEN + 1];

	snprintf(tmp, sizeof(tmp), "k%015llu", (unsigned long long)n);
	memcpy(key, tmp, KEY_LEN);
}

/* xorshift64: cheap, and the same sequence for both caches */
static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static int do_put(struct bench *b, const char *key, const char *val)
{
	switch (b->impl) {
	case IMPL_MB:
		return mb_cache_put(b->mb, key, KEY_LEN, val, VAL_LEN);
	case IMPL_V01:
		return plain_put(&b->v01, key, KEY_LEN, val, VAL_LEN);
	default:
		return plain_put(&b->plain, key, KEY_LEN, val, VAL_LEN);
	}
}

static int64_t do_get(struct bench *b, const char *key, char *buf)
{
	switch (b->impl) {
	case IMPL_MB:
		return mb_cache_get(b->mb, key, KEY_LEN, buf, VAL_LEN);
	case IMPL_V01:
		return plain_get(&b->v01, key, KEY_LEN, buf, VAL_LEN);
	default:
		return plain_get(&b->plain, key, KEY_LEN, buf, VAL_LEN);
	}
}

static __attribute__((noinline)) void loop_get_hit(void *arg,
						   unsigned int tid,
						   uint64_t iters)
{
	struct bench *b = arg;
	uint64_t i, s = 0x9e3779b97f4a7c15ULL + tid, hits = 0;
	char key[KEY_LEN], buf[VAL_LEN];

	for (i = 0; i < iters; i++) {
		make_key(key, next_rand(&s) % NKEYS);
		if (do_get(b, key, buf) == VAL_LEN)
			hits++;
	}
	atomic_fetch_add(&b->hits, hits);
}

static __attribute__((noinline)) void loop_get_miss(void *arg,
						    unsigned int tid,
						    uint64_t iters)
{
	struct bench *b = arg;
	uint64_t i, s = 0x9e3779b97f4a7c15ULL + tid, hits = 0;
	char key[KEY_LEN], buf[VAL_LEN];

	for (i = 0; i < iters; i++) {
		make_key(key, NKEYS + next_rand(&s) % NKEYS);
		if (do_get(b, key, buf) >= 0)
			hits++;
	}
	atomic_fetch_add(&b->hits, hits);
}

static __attribute__((noinline)) void loop_put_replace(void *arg,
						       unsigned int tid,
						       uint64_t iters)
{
	struct bench *b = arg;
	uint64_t i, s = 0x9e3779b97f4a7c15ULL + tid;
	char key[KEY_LEN], val[VAL_LEN];

	memset(val, 'v', sizeof(val));
	for (i = 0; i < iters; i++) {
		make_key(key, next_rand(&s) % NKEYS);
		if (do_put(b, key, val) < 0) {
			atomic_store(&b->error, 1);
			return;
		}
	}
}

static __attribute__((noinline)) void loop_put_evict(void *arg,
						     unsigned int tid,
						     uint64_t iters)
{
	struct bench *b = arg;
	char key[KEY_LEN], val[VAL_LEN];
	uint64_t i;

	(void)tid;
	memset(val, 'e', sizeof(val));
	for (i = 0; i < iters; i++) {
		make_key(key, atomic_fetch_add(&b->next_key, 1));
		if (do_put(b, key, val) < 0) {
			atomic_store(&b->error, 1);
			return;
		}
	}
}

static int fill(struct bench *b)
{
	char key[KEY_LEN], val[VAL_LEN];
	unsigned int i;
	int err;

	memset(val, 'f', sizeof(val));
	for (i = 0; i < NKEYS; i++) {
		make_key(key, i);
		err = do_put(b, key, val);
		if (err < 0)
			return err;
	}
	return 0;
}

static int open_caches(struct bench *b, uint64_t max_bytes)
{
	struct mb_cache_opts o = { .sz = sizeof(o), .max_bytes = max_bytes };
	int err;

	err = mb_cache_new(&b->mb, "bench-cache", &o);
	if (err < 0)
		return err;
	err = plain_init(&b->plain, 1U << 16, max_bytes, NULL);
	if (!err) {
		err = plain_init(&b->v01, 1U << 16, max_bytes, "bench-v01");
		if (err < 0)
			plain_destroy(&b->plain);
	}
	if (err < 0) {
		mb_cache_free(b->mb);
		b->mb = NULL;
	}
	return err;
}

static void close_caches(struct bench *b)
{
	mb_cache_free(b->mb);
	b->mb = NULL;
	plain_destroy(&b->plain);
	plain_destroy(&b->v01);
}

/*
 * Time one workload on the three caches, with 1, 2 and 4 threads of
 * @iters / threads iterations each (the same work in total).
 * @want_hits_per_op is 1 or 0 for the get workloads (checked, so a broken
 * lookup cannot pass for a fast one) and -1 where hits are not counted.
 */
static int compare(struct bench *b, const char *what, bench_loop_fn fn,
		   uint64_t iters, int want_hits_per_op)
{
	static const unsigned int threads[] = { 1, 2, 4 };
	uint64_t wall, want, per;
	unsigned int t, nthreads;
	char label[64];
	int impl;

	for (t = 0; t < sizeof(threads) / sizeof(threads[0]); t++) {
		nthreads = threads[t];
		per = iters / nthreads;
		for (impl = 0; impl < IMPL_COUNT; impl++) {
			b->impl = (enum impl)impl;
			atomic_store(&b->hits, 0);
			wall = bench_threads(fn, NULL, b, nthreads, per);
			want = want_hits_per_op > 0 ?
			       (uint64_t)BENCH_REPEATS * nthreads * per : 0;
			if (!wall || atomic_load(&b->error) ||
			    (want_hits_per_op >= 0 &&
			     atomic_load(&b->hits) != want)) {
				fprintf(stderr,
					"cache_ops: %s on %s failed (hits %llu, want %llu)\n",
					what, impl_names[impl],
					(unsigned long long)atomic_load(&b->hits),
					(unsigned long long)want);
				return -EIO;
			}
			snprintf(label, sizeof(label), "%s: %s", what,
				 impl_names[impl]);
			bench_row(label, nthreads, per * nthreads, wall);
		}
	}
	return 0;
}

static __attribute__((noinline)) void loop_charge(void *arg,
						  unsigned int tid,
						  uint64_t iters)
{
	struct mb_clerk *clerk = arg;
	uint64_t i;

	(void)tid;
	for (i = 0; i < iters; i++) {
		mb_clerk_charge(clerk, KEY_LEN + VAL_LEN);
		mb_clerk_uncharge(clerk, KEY_LEN + VAL_LEN);
	}
}

/* The price of the sharded cache's global clock: one read per get/put */
static __attribute__((noinline)) void loop_clock(void *arg, unsigned int tid,
						 uint64_t iters)
{
	uint64_t i, sum = 0;

	(void)arg;
	(void)tid;
	for (i = 0; i < iters; i++)
		sum += bench_now_ns();
	bench_sink = sum;
}

static uint64_t time_evict(struct bench *b, uint64_t iters)
{
	b->impl = IMPL_MB;
	return bench_threads(loop_put_evict, NULL, b, 1, iters);
}

int main(int argc, char **argv)
{
	struct bench b = { 0 };
	struct mb_cache_stats st;
	struct mb_clerk *clerk;
	uint64_t iters = DEFAULT_ITERS, charge_wall, evict_wall;
	int err;

	if (argc == 3 && !strcmp(argv[1], "-n")) {
		iters = strtoull(argv[2], NULL, 0);
	} else if (argc != 1) {
		fprintf(stderr, "usage: cache_ops [-n OPS]\n");
		return 2;
	}
	if (!iters)
		iters = DEFAULT_ITERS;

	err = open_caches(&b, 0);
	if (err < 0) {
		fprintf(stderr, "cache_ops: %s\n", strerror(-err));
		return 1;
	}
	for (b.impl = 0; b.impl < IMPL_COUNT && !err; b.impl++)
		err = fill(&b);
	if (err < 0) {
		fprintf(stderr, "cache_ops: fill: %s\n", strerror(-err));
		close_caches(&b);
		return 1;
	}

	bench_header("cache_ops: 16 B keys, 100 B values, 20000 entries (op = one call)");
	err = compare(&b, "get, hit", loop_get_hit, iters, 1);
	if (!err)
		err = compare(&b, "get, miss", loop_get_miss, iters, 0);
	if (!err)
		err = compare(&b, "put, replace", loop_put_replace, iters, -1);
	if (!err && mb_cache_stats(b.mb, &st) >= 0 && st.entries != NKEYS) {
		fprintf(stderr, "cache_ops: %llu entries, want %u\n",
			(unsigned long long)st.entries, NKEYS);
		err = -EIO;
	}
	close_caches(&b);
	if (err)
		return 1;

	/* A bounded cache: from the first repeat on, every put evicts. */
	err = open_caches(&b, EVICT_BOUND);
	if (err < 0)
		return 1;
	err = compare(&b, "put, evict (1 MiB)", loop_put_evict, iters, -1);
	if (!err && (mb_cache_stats(b.mb, &st) < 0 || !st.evictions ||
		     st.bytes > EVICT_BOUND)) {
		fprintf(stderr, "cache_ops: bounded cache did not evict\n");
		err = -EIO;
	}
	evict_wall = err ? 0 : time_evict(&b, iters);
	close_caches(&b);
	if (err || !evict_wall)
		return 1;

	/*
	 * How much of a put is the clerk's accounting: a put-with-eviction
	 * charges the new entry and uncharges the evicted one, the same pair
	 * this times on a lone clerk.
	 */
	err = mb_clerk_new(&clerk, "bench-charge", NULL);
	if (err < 0)
		return 1;
	charge_wall = bench_threads(loop_charge, NULL, clerk, 1, iters);
	mb_clerk_free(clerk);
	printf("\n  clerk charge+uncharge pair: %.2f ns; mb_cache put with eviction: %.2f ns; accounting share ~%.1f%%\n",
	       (double)charge_wall / (double)iters,
	       (double)evict_wall / (double)iters,
	       evict_wall ? 100.0 * (double)charge_wall / (double)evict_wall :
	       0.0);
	/* what the exact LRU order over the shards costs every get and put */
	printf("  clock_gettime(CLOCK_MONOTONIC), read once per get and put for the LRU order: %.2f ns\n",
	       (double)bench_threads(loop_clock, NULL, NULL, 1, iters) /
	       (double)iters);
	return 0;
}
