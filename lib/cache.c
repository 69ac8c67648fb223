// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * mb_cache: a bounded LRU map of byte strings whose memory is accounted by
 * its own clerk, so a broker can size it and take memory back from it.
 *
 * An entry costs its key, its value and MB_CACHE_OVERHEAD (the entry
 * header and its share of the bucket array); that is what is charged to
 * the clerk.  The bound is min(max_bytes, the clerk's target): a put
 * evicts least recently used entries until the cache fits it again, and
 * an entry that could not fit in an empty cache is refused with -E2BIG.
 * The clerk's shrink callback evicts least recently used entries first,
 * but frees no more than it was asked for (the broker relies on that to
 * keep its pool at min_bytes): an entry larger than what is still to be
 * freed is passed over for a newer, smaller one, looking at most
 * MB_CACHE_SKIP entries past it.  If nothing fits, nothing is freed; the
 * broker's next step asks for more.  The part of a request that is the
 * pool's excess over its max_bytes goes in any case, in whole entries.
 *
 * Shards.  One lock for the whole cache made every get of every thread
 * wait for the others (a hit moves the entry in the LRU list, so even
 * lookups write).  The cache is MB_CACHE_SHARDS independent hash tables
 * and LRU lists, each under its own lock, chosen by the key's hash: gets
 * and puts of different shards never wait for each other, as in
 * memcached's or RocksDB's sharded LRU caches.  What stays exact:
 *
 *  - LRU order.  Every entry carries the CLOCK_MONOTONIC time of its last
 *    use (put or hit; one thread never uses the same nanosecond twice),
 *    taken under its shard's lock, so each shard's list is in the order
 *    of those times, and its tail is its oldest entry.
 *    An eviction takes the entry with the oldest time of all shards: the
 *    one a single LRU list would evict, for operations that do not
 *    overlap in time; overlapping ones are ordered by their times (two
 *    uses in one nanosecond, in different shards, in either order).  To
 *    find it without taking every lock, each shard publishes its tail's
 *    time (tail_ns); a put reads them, locks the shard with the oldest
 *    and evicts its tail if it is still the one published, else looks
 *    again.  A published time only grows (a tail leaves, is used again,
 *    or an empty shard gets an entry used now), so the oldest seen is
 *    still the oldest when it goes.
 *  - Shrinking.  The shrink callback takes every shard's lock (in the
 *    order fork's prepare handler does, as mb_cache_stats() does) and
 *    walks all the lists at once from their tails, oldest time first:
 *    exactly the entries, and the bytes, a single LRU list would give.  Shrinking is rare; meanwhile
 *    gets wait, as they did for any put before.
 *  - Accounting.  Each entry is charged to the clerk when it is inserted
 *    and uncharged when it goes, and the cache's byte count (summed over
 *    the shards, and kept in one atomic for the bound) always equals what
 *    the clerk was charged for it.  mb_cache_stats() holds every shard's
 *    lock while it sums, so its counters are of one moment.
 *  - The bound.  A put inserts, then evicts the oldest entries until the
 *    cache is within its bound: exact once it returns, as long as no
 *    other put overlaps it; overlapping puts can see the cache above its
 *    bound by their own entries until each has evicted for itself.
 *
 * Lock order: a cache's shard locks, when it takes them all, in the order
 * of lock.c's list, which fork's prepare handler follows; none is held
 * while taking another library lock (charging is lock-free); the shrink
 * callback takes them with no library lock held by the broker.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define MB_CACHE_SHARDS		16	/* power of two */
#define MB_CACHE_SHARD_SHIFT	60	/* 64 - log2(MB_CACHE_SHARDS) */
#define MB_CACHE_MIN_BUCKETS	16
#define MB_CACHE_SKIP		64	/* entries too large to pass over */

struct mb_cache_entry {
	struct mb_cache_entry *hnext;		/* hash chain */
	struct mb_cache_entry *prev, *next;	/* LRU, head is newest */
	uint64_t hash;
	uint64_t used_ns;			/* its last put or hit */
	size_t klen, vlen;
	unsigned char data[];			/* key, then value */
};

#define MB_CACHE_OVERHEAD \
	(sizeof(struct mb_cache_entry) + 2 * sizeof(struct mb_cache_entry *))

struct mb_cache_shard {
	struct mb_lock lock;
	struct mb_cache_entry **buckets;
	size_t nbuckets;			/* power of two */
	struct mb_cache_entry *lru_head, *lru_tail;
	/* lru_tail->used_ns, UINT64_MAX when empty; read without the lock */
	_Atomic uint64_t tail_ns;
	uint64_t last_ns;			/* the latest time given */
	struct mb_cache_stats st;
} __attribute__((aligned(64)));

struct mb_cache {
	struct mb_cache_shard shard[MB_CACHE_SHARDS];
	struct mb_clerk *clerk;
	uint64_t max_bytes;
	_Alignas(64) _Atomic uint64_t bytes;	/* of all shards */
};

/* FNV-1a, then a finaliser, so that the top bits pick shards evenly */
static uint64_t mb_hash(const void *key, size_t len)
{
	const unsigned char *p = key;
	uint64_t h = 0xcbf29ce484222325ULL;

	while (len--) {
		h ^= *p++;
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

static struct mb_cache_shard *mb_shard(struct mb_cache *c, uint64_t h)
{
	return &c->shard[h >> MB_CACHE_SHARD_SHIFT];
}

static uint64_t mb_entry_cost(size_t klen, size_t vlen)
{
	return (uint64_t)klen + vlen + MB_CACHE_OVERHEAD;
}

static void mb_shard_publish(struct mb_cache_shard *s)
{
	atomic_store_explicit(&s->tail_ns, s->lru_tail ?
			      s->lru_tail->used_ns : UINT64_MAX,
			      memory_order_relaxed);
}

static void mb_lru_unlink(struct mb_cache_shard *s, struct mb_cache_entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		s->lru_head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		s->lru_tail = e->prev;
	e->prev = NULL;
	e->next = NULL;
}

/*
 * Now, for an entry's time of use: CLOCK_MONOTONIC, but never the same
 * twice in one thread, so that a thread's uses are ordered even where
 * the clock is coarser than they are frequent.
 */
static uint64_t mb_cache_now(void)
{
	static _Thread_local uint64_t last;
	uint64_t now = mb_now_ns();

	last = now > last ? now : last + 1;
	return last;
}

/* Make @e the newest, used now; called with the shard's lock held. */
static void mb_lru_push(struct mb_cache_shard *s, struct mb_cache_entry *e)
{
	uint64_t now = mb_cache_now();

	/* after everything in the list, whatever another thread's clock */
	e->used_ns = now > s->last_ns ? now : s->last_ns + 1;
	s->last_ns = e->used_ns;
	e->prev = NULL;
	e->next = s->lru_head;
	if (s->lru_head)
		s->lru_head->prev = e;
	s->lru_head = e;
	if (!s->lru_tail)
		s->lru_tail = e;
}

static struct mb_cache_entry **mb_cache_slot(struct mb_cache_shard *s,
					     const void *key, size_t klen,
					     uint64_t h)
{
	struct mb_cache_entry **pp = &s->buckets[h & (s->nbuckets - 1)];

	for (; *pp; pp = &(*pp)->hnext)
		if ((*pp)->hash == h && (*pp)->klen == klen &&
		    !memcmp((*pp)->data, key, klen))
			break;
	return pp;
}

/* Unlink *pp from its chain and the LRU, uncharge and free it. */
static uint64_t mb_cache_drop(struct mb_cache *c, struct mb_cache_shard *s,
			      struct mb_cache_entry **pp)
{
	struct mb_cache_entry *e = *pp;
	uint64_t cost = mb_entry_cost(e->klen, e->vlen);

	*pp = e->hnext;
	mb_lru_unlink(s, e);
	mb_clerk_uncharge(c->clerk, cost);
	s->st.bytes -= cost;
	s->st.entries--;
	atomic_fetch_sub_explicit(&c->bytes, cost, memory_order_relaxed);
	free(e);
	return cost;
}

static uint64_t mb_cache_evict(struct mb_cache *c, struct mb_cache_shard *s,
			       struct mb_cache_entry *e)
{
	s->st.evictions++;
	return mb_cache_drop(c, s, mb_cache_slot(s, e->data, e->klen,
						 e->hash));
}

/*
 * Evict the least recently used entry of the whole cache, taking one
 * shard lock at a time; returns its cost, 0 when the cache is empty.
 */
static uint64_t mb_cache_evict_oldest(struct mb_cache *c)
{
	struct mb_cache_shard *s;
	uint64_t t, oldest, cost;
	int i, pick;

	for (;;) {
		oldest = UINT64_MAX;
		pick = -1;
		for (i = 0; i < MB_CACHE_SHARDS; i++) {
			t = atomic_load_explicit(&c->shard[i].tail_ns,
						 memory_order_relaxed);
			if (t < oldest) {
				oldest = t;
				pick = i;
			}
		}
		if (pick < 0)
			return 0;
		s = &c->shard[pick];
		mb_lock(&s->lock);
		/* still its tail: nothing anywhere is older */
		if (s->lru_tail && s->lru_tail->used_ns == oldest) {
			cost = mb_cache_evict(c, s, s->lru_tail);
			mb_shard_publish(s);
			mb_unlock(&s->lock);
			return cost;
		}
		mb_unlock(&s->lock);
	}
}

static void mb_shard_grow(struct mb_cache_shard *s)
{
	struct mb_cache_entry **nb, *e, *next;
	size_t n = s->nbuckets * 2, i;

	nb = calloc(n, sizeof(*nb));
	if (!nb)
		return;		/* longer chains, still correct */
	for (i = 0; i < s->nbuckets; i++) {
		for (e = s->buckets[i]; e; e = next) {
			next = e->hnext;
			e->hnext = nb[e->hash & (n - 1)];
			nb[e->hash & (n - 1)] = e;
		}
	}
	free(s->buckets);
	s->buckets = nb;
	s->nbuckets = n;
}

/*
 * Every shard, the last initialised first: the order in which fork's
 * prepare handler takes the library's locks (lock.c), or the two could
 * each hold a lock the other waits for.
 */
static void mb_cache_lock_all(struct mb_cache *c)
{
	int i;

	for (i = MB_CACHE_SHARDS; i-- > 0;)
		mb_lock(&c->shard[i].lock);
}

static void mb_cache_unlock_all(struct mb_cache *c)
{
	int i;

	for (i = 0; i < MB_CACHE_SHARDS; i++)
		mb_unlock(&c->shard[i].lock);
}

/* The shard whose *cursor is the oldest, -1 when all are NULL. */
static int mb_cursor_oldest(struct mb_cache_entry **cur)
{
	uint64_t oldest = UINT64_MAX;
	int i, pick = -1;

	for (i = 0; i < MB_CACHE_SHARDS; i++) {
		if (cur[i] && (pick < 0 || cur[i]->used_ns < oldest)) {
			oldest = cur[i]->used_ns;
			pick = i;
		}
	}
	return pick;
}

/*
 * Free at most @bytes, least recently used first over all shards, passing
 * over entries too large; then, if that is less than @at_least (the
 * pool's excess over max_bytes), whole entries oldest first until it is
 * not: at most one entry more than the excess.
 */
static int64_t mb_cache_shrink_floor(struct mb_clerk *clerk, uint64_t bytes,
				     uint64_t at_least, void *arg)
{
	struct mb_cache_entry *cur[MB_CACHE_SHARDS], *e;
	struct mb_cache *c = arg;
	uint64_t freed = 0;
	int i, skipped = 0;

	(void)clerk;
	mb_cache_lock_all(c);
	for (i = 0; i < MB_CACHE_SHARDS; i++)
		cur[i] = c->shard[i].lru_tail;
	while (freed < bytes && skipped <= MB_CACHE_SKIP &&
	       (i = mb_cursor_oldest(cur)) >= 0) {
		e = cur[i];
		cur[i] = e->prev;
		if (mb_entry_cost(e->klen, e->vlen) > bytes - freed) {
			skipped++;
			continue;
		}
		freed += mb_cache_evict(c, &c->shard[i], e);
	}
	while (freed < at_least) {
		for (i = 0; i < MB_CACHE_SHARDS; i++)
			cur[i] = c->shard[i].lru_tail;
		i = mb_cursor_oldest(cur);
		if (i < 0)
			break;
		freed += mb_cache_evict(c, &c->shard[i], cur[i]);
	}
	for (i = 0; i < MB_CACHE_SHARDS; i++)
		mb_shard_publish(&c->shard[i]);
	mb_cache_unlock_all(c);
	return freed > INT64_MAX ? INT64_MAX : (int64_t)freed;
}

/*
 * For the system broker: whole entries, least recently used first, until
 * @at_least is freed, none that would take the total beyond @at_most (an
 * entry too large is passed over for a newer one, as above).  What the
 * daemon asks must be met even when it is less than an entry, or the
 * same shortfall would be asked again and again for nothing.
 */
static int64_t mb_cache_shrink_range(struct mb_clerk *clerk,
				     uint64_t at_least, uint64_t at_most,
				     void *arg)
{
	struct mb_cache_entry *cur[MB_CACHE_SHARDS], *e;
	struct mb_cache *c = arg;
	uint64_t freed = 0, cost;
	int i, skipped = 0;

	(void)clerk;
	mb_cache_lock_all(c);
	for (i = 0; i < MB_CACHE_SHARDS; i++)
		cur[i] = c->shard[i].lru_tail;
	while (freed < at_least && skipped <= MB_CACHE_SKIP &&
	       (i = mb_cursor_oldest(cur)) >= 0) {
		e = cur[i];
		cur[i] = e->prev;
		cost = mb_entry_cost(e->klen, e->vlen);
		if (cost > at_most - freed) {
			skipped++;
			continue;
		}
		freed += mb_cache_evict(c, &c->shard[i], e);
	}
	for (i = 0; i < MB_CACHE_SHARDS; i++)
		mb_shard_publish(&c->shard[i]);
	mb_cache_unlock_all(c);
	return freed > INT64_MAX ? INT64_MAX : (int64_t)freed;
}

static int64_t mb_cache_shrink(struct mb_clerk *clerk, uint64_t bytes,
			       void *arg)
{
	return mb_cache_shrink_floor(clerk, bytes, 0, arg);
}

static void mb_cache_destroy(struct mb_cache *c, int shards)
{
	struct mb_cache_entry *e, *next;
	struct mb_cache_shard *s;
	int i;

	for (i = 0; i < shards; i++) {
		s = &c->shard[i];
		for (e = s->lru_head; e; e = next) {
			next = e->next;
			free(e);
		}
		mb_lock_destroy(&s->lock);
		free(s->buckets);
	}
	free(c);
}

int mb_cache_new(struct mb_cache **out, const char *name,
		 const struct mb_cache_opts *opts)
{
	struct mb_clerk_opts co = { .sz = sizeof(co) };
	struct mb_cache_shard *s;
	struct mb_cache_opts o;
	struct mb_cache *c;
	int err, i;

	if (!out)
		return -EINVAL;
	*out = NULL;
	err = mb_opts_copy(&o, sizeof(o), opts);
	if (err)
		return err;
	if (o.reserved)
		return -EINVAL;
	c = aligned_alloc(64, sizeof(*c));
	if (!c)
		return -ENOMEM;
	memset(c, 0, sizeof(*c));
	for (i = 0; i < MB_CACHE_SHARDS; i++) {
		s = &c->shard[i];
		s->nbuckets = MB_CACHE_MIN_BUCKETS;
		s->buckets = calloc(s->nbuckets, sizeof(*s->buckets));
		if (!s->buckets) {
			mb_cache_destroy(c, i);
			return -ENOMEM;
		}
		atomic_init(&s->tail_ns, UINT64_MAX);
		mb_lock_init(&s->lock, MB_LOCK_INNER);
	}
	atomic_init(&c->bytes, 0);
	c->max_bytes = o.max_bytes ? o.max_bytes : UINT64_MAX;
	co.shrink = mb_cache_shrink;
	co.arg = c;
	co.priority = opts ? o.priority : 50;
	err = mb_clerk_new(&c->clerk, name, &co);
	if (err) {
		mb_cache_destroy(c, MB_CACHE_SHARDS);
		return err;
	}
	mb_clerk_set_shrink_floor(c->clerk, mb_cache_shrink_floor);
	mb_clerk_set_shrink_range(c->clerk, mb_cache_shrink_range);
	*out = c;
	return 0;
}

void mb_cache_free(struct mb_cache *cache)
{
	if (!cache)
		return;
	/* out of its broker first: no shrink can be running after this */
	mb_clerk_free(cache->clerk);
	mb_cache_destroy(cache, MB_CACHE_SHARDS);
}

struct mb_clerk *mb_cache_clerk(struct mb_cache *cache)
{
	return cache ? cache->clerk : NULL;
}

int mb_cache_put(struct mb_cache *cache, const void *key, size_t klen,
		 const void *val, size_t vlen)
{
	struct mb_cache_entry **pp, *e;
	struct mb_cache_shard *s;
	uint64_t cost, bound;
	uint64_t h;

	if (!cache || !key || !klen || (!val && vlen))
		return -EINVAL;
	if (klen > SIZE_MAX / 2 || vlen > SIZE_MAX / 2 - klen -
	    sizeof(*e))
		return -E2BIG;
	cost = mb_entry_cost(klen, vlen);
	bound = MB_MIN(cache->max_bytes, mb_clerk_target(cache->clerk));
	if (cost > bound)
		return -E2BIG;
	e = malloc(sizeof(*e) + klen + vlen);
	if (!e)
		return -ENOMEM;
	memcpy(e->data, key, klen);
	if (vlen)
		memcpy(e->data + klen, val, vlen);
	e->klen = klen;
	e->vlen = vlen;
	h = mb_hash(key, klen);
	e->hash = h;

	s = mb_shard(cache, h);
	mb_lock(&s->lock);
	pp = mb_cache_slot(s, key, klen, h);
	if (*pp)
		mb_cache_drop(cache, s, pp);	/* replaced, not evicted */
	if (s->st.entries >= s->nbuckets)
		mb_shard_grow(s);
	pp = &s->buckets[h & (s->nbuckets - 1)];
	e->hnext = *pp;
	*pp = e;
	mb_lru_push(s, e);
	mb_shard_publish(s);
	mb_clerk_charge(cache->clerk, cost);
	atomic_fetch_add_explicit(&cache->bytes, cost, memory_order_relaxed);
	s->st.bytes += cost;
	s->st.entries++;
	s->st.inserts++;
	mb_unlock(&s->lock);

	/* the new entry is the newest: the oldest go first */
	while (atomic_load_explicit(&cache->bytes, memory_order_relaxed) >
	       bound && mb_cache_evict_oldest(cache))
		;
	return 0;
}

int64_t mb_cache_get(struct mb_cache *cache, const void *key, size_t klen,
		     void *buf, size_t buflen)
{
	struct mb_cache_entry *e;
	struct mb_cache_shard *s;
	int64_t len;
	uint64_t h;

	if (!cache || !key || !klen || (!buf && buflen))
		return -EINVAL;
	h = mb_hash(key, klen);
	s = mb_shard(cache, h);
	mb_lock(&s->lock);
	e = *mb_cache_slot(s, key, klen, h);
	if (!e) {
		s->st.misses++;
		mb_unlock(&s->lock);
		return -ENOENT;
	}
	s->st.hits++;
	mb_lru_unlink(s, e);
	mb_lru_push(s, e);
	mb_shard_publish(s);
	if (buflen)
		memcpy(buf, e->data + e->klen, MB_MIN(buflen, e->vlen));
	len = e->vlen > INT64_MAX ? INT64_MAX : (int64_t)e->vlen;
	mb_unlock(&s->lock);
	return len;
}

int mb_cache_del(struct mb_cache *cache, const void *key, size_t klen)
{
	struct mb_cache_entry **pp;
	struct mb_cache_shard *s;
	int err = 0;
	uint64_t h;

	if (!cache || !key || !klen)
		return -EINVAL;
	h = mb_hash(key, klen);
	s = mb_shard(cache, h);
	mb_lock(&s->lock);
	pp = mb_cache_slot(s, key, klen, h);
	if (*pp) {
		mb_cache_drop(cache, s, pp);
		mb_shard_publish(s);
	} else {
		err = -ENOENT;
	}
	mb_unlock(&s->lock);
	return err;
}

int mb_cache_stats(struct mb_cache *cache, struct mb_cache_stats *out)
{
	const struct mb_cache_stats *st;
	int i;

	if (!cache || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	mb_cache_lock_all(cache);
	for (i = 0; i < MB_CACHE_SHARDS; i++) {
		st = &cache->shard[i].st;
		out->bytes += st->bytes;
		out->entries += st->entries;
		out->hits += st->hits;
		out->misses += st->misses;
		out->evictions += st->evictions;
		out->inserts += st->inserts;
	}
	mb_cache_unlock_all(cache);
	return 0;
}

int mb_cache_shard_of(struct mb_cache *cache, const void *key, size_t klen)
{
	(void)cache;
	return (int)(mb_hash(key, klen) >> MB_CACHE_SHARD_SHIFT);
}

void mb_cache_shard_lock(struct mb_cache *cache, int shard, bool lock)
{
	if (lock)
		mb_lock(&cache->shard[shard].lock);
	else
		mb_unlock(&cache->shard[shard].lock);
}
