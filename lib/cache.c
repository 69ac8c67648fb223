// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * mb_cache: a bounded LRU map of byte strings whose memory is accounted by
 * its own clerk, so a broker can size it and take memory back from it.
 *
 * An entry costs its key, its value and MB_CACHE_OVERHEAD (the entry
 * header and its share of the bucket array); that is what is charged to
 * the clerk.  The bound is min(max_bytes, the clerk's target): a put first
 * evicts least recently used entries until the new one fits, and an entry
 * that could not fit in an empty cache is refused with -E2BIG.  The
 * clerk's shrink callback evicts from the LRU end, least recently used
 * first, but frees no more than it was asked for (the broker relies on
 * that to keep its pool at min_bytes): an entry larger than what is still
 * to be freed is passed over for a newer, smaller one, looking at most
 * MB_CACHE_SKIP entries past it.  If nothing fits, nothing is freed; the
 * broker's next step asks for more.
 *
 * Lock order: the cache lock is taken inside the shrink callback, which
 * the broker calls with no library lock held, and the cache never takes
 * another library lock while holding its own (charging is lock-free).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define MB_CACHE_MIN_BUCKETS	16
#define MB_CACHE_SKIP		64	/* entries too large to pass over */

struct mb_cache_entry {
	struct mb_cache_entry *hnext;		/* hash chain */
	struct mb_cache_entry *prev, *next;	/* LRU, head is newest */
	uint64_t hash;
	size_t klen, vlen;
	unsigned char data[];			/* key, then value */
};

#define MB_CACHE_OVERHEAD \
	(sizeof(struct mb_cache_entry) + 2 * sizeof(struct mb_cache_entry *))

struct mb_cache {
	struct mb_lock lock;
	struct mb_clerk *clerk;
	uint64_t max_bytes;
	struct mb_cache_entry **buckets;
	size_t nbuckets;			/* power of two */
	struct mb_cache_entry *lru_head, *lru_tail;
	struct mb_cache_stats st;
};

/* FNV-1a: short keys, no need for anything stronger */
static uint64_t mb_hash(const void *key, size_t len)
{
	const unsigned char *p = key;
	uint64_t h = 0xcbf29ce484222325ULL;

	while (len--) {
		h ^= *p++;
		h *= 0x100000001b3ULL;
	}
	return h;
}

static uint64_t mb_entry_cost(size_t klen, size_t vlen)
{
	return (uint64_t)klen + vlen + MB_CACHE_OVERHEAD;
}

static void mb_lru_unlink(struct mb_cache *c, struct mb_cache_entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		c->lru_head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->lru_tail = e->prev;
	e->prev = NULL;
	e->next = NULL;
}

static void mb_lru_push(struct mb_cache *c, struct mb_cache_entry *e)
{
	e->prev = NULL;
	e->next = c->lru_head;
	if (c->lru_head)
		c->lru_head->prev = e;
	c->lru_head = e;
	if (!c->lru_tail)
		c->lru_tail = e;
}

static struct mb_cache_entry **mb_cache_slot(struct mb_cache *c,
					     const void *key, size_t klen,
					     uint64_t h)
{
	struct mb_cache_entry **pp = &c->buckets[h & (c->nbuckets - 1)];

	for (; *pp; pp = &(*pp)->hnext)
		if ((*pp)->hash == h && (*pp)->klen == klen &&
		    !memcmp((*pp)->data, key, klen))
			break;
	return pp;
}

/* Unlink *pp from its chain and the LRU, uncharge and free it. */
static uint64_t mb_cache_drop(struct mb_cache *c, struct mb_cache_entry **pp)
{
	struct mb_cache_entry *e = *pp;
	uint64_t cost = mb_entry_cost(e->klen, e->vlen);

	*pp = e->hnext;
	mb_lru_unlink(c, e);
	mb_clerk_uncharge(c->clerk, cost);
	c->st.bytes -= cost;
	c->st.entries--;
	free(e);
	return cost;
}

static uint64_t mb_cache_evict(struct mb_cache *c, struct mb_cache_entry *e)
{
	c->st.evictions++;
	return mb_cache_drop(c, mb_cache_slot(c, e->data, e->klen, e->hash));
}

static uint64_t mb_cache_evict_lru(struct mb_cache *c)
{
	return mb_cache_evict(c, c->lru_tail);
}

static void mb_cache_grow(struct mb_cache *c)
{
	struct mb_cache_entry **nb, *e, *next;
	size_t n = c->nbuckets * 2, i;

	nb = calloc(n, sizeof(*nb));
	if (!nb)
		return;		/* longer chains, still correct */
	for (i = 0; i < c->nbuckets; i++) {
		for (e = c->buckets[i]; e; e = next) {
			next = e->hnext;
			e->hnext = nb[e->hash & (n - 1)];
			nb[e->hash & (n - 1)] = e;
		}
	}
	free(c->buckets);
	c->buckets = nb;
	c->nbuckets = n;
}

/*
 * Free at most @bytes, oldest first, passing over entries too large; then,
 * if that is less than @at_least (the pool's excess over max_bytes),
 * whole entries oldest first until it is not: at most one entry more
 * than the excess.
 */
static int64_t mb_cache_shrink_floor(struct mb_clerk *clerk, uint64_t bytes,
				     uint64_t at_least, void *arg)
{
	struct mb_cache_entry *e, *prev;
	struct mb_cache *c = arg;
	uint64_t freed = 0;
	int skipped = 0;

	(void)clerk;
	mb_lock(&c->lock);
	for (e = c->lru_tail; e && freed < bytes && skipped <= MB_CACHE_SKIP;
	     e = prev) {
		prev = e->prev;
		if (mb_entry_cost(e->klen, e->vlen) > bytes - freed) {
			skipped++;
			continue;
		}
		freed += mb_cache_evict(c, e);
	}
	while (freed < at_least && c->lru_tail)
		freed += mb_cache_evict_lru(c);
	mb_unlock(&c->lock);
	return freed > INT64_MAX ? INT64_MAX : (int64_t)freed;
}

static int64_t mb_cache_shrink(struct mb_clerk *clerk, uint64_t bytes,
			       void *arg)
{
	return mb_cache_shrink_floor(clerk, bytes, 0, arg);
}

int mb_cache_new(struct mb_cache **out, const char *name,
		 const struct mb_cache_opts *opts)
{
	struct mb_clerk_opts co = { .sz = sizeof(co) };
	struct mb_cache_opts o;
	struct mb_cache *c;
	int err;

	if (!out)
		return -EINVAL;
	*out = NULL;
	err = mb_opts_copy(&o, sizeof(o), opts);
	if (err)
		return err;
	if (o.reserved)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->nbuckets = MB_CACHE_MIN_BUCKETS;
	c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
	if (!c->buckets) {
		free(c);
		return -ENOMEM;
	}
	c->max_bytes = o.max_bytes ? o.max_bytes : UINT64_MAX;
	co.shrink = mb_cache_shrink;
	co.arg = c;
	co.priority = opts ? o.priority : 50;
	err = mb_clerk_new(&c->clerk, name, &co);
	if (err) {
		free(c->buckets);
		free(c);
		return err;
	}
	mb_clerk_set_shrink_floor(c->clerk, mb_cache_shrink_floor);
	mb_lock_init(&c->lock, MB_LOCK_INNER);
	*out = c;
	return 0;
}

void mb_cache_free(struct mb_cache *cache)
{
	struct mb_cache_entry *e, *next;

	if (!cache)
		return;
	/* out of its broker first: no shrink can be running after this */
	mb_clerk_free(cache->clerk);
	for (e = cache->lru_head; e; e = next) {
		next = e->next;
		free(e);
	}
	mb_lock_destroy(&cache->lock);
	free(cache->buckets);
	free(cache);
}

struct mb_clerk *mb_cache_clerk(struct mb_cache *cache)
{
	return cache ? cache->clerk : NULL;
}

int mb_cache_put(struct mb_cache *cache, const void *key, size_t klen,
		 const void *val, size_t vlen)
{
	struct mb_cache_entry **pp, *e;
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

	mb_lock(&cache->lock);
	pp = mb_cache_slot(cache, key, klen, h);
	if (*pp)
		mb_cache_drop(cache, pp);	/* replaced, not evicted */
	while (cache->st.bytes + cost > bound && cache->lru_tail)
		mb_cache_evict_lru(cache);
	if (cache->st.entries >= cache->nbuckets)
		mb_cache_grow(cache);
	pp = &cache->buckets[h & (cache->nbuckets - 1)];
	e->hnext = *pp;
	*pp = e;
	mb_lru_push(cache, e);
	mb_clerk_charge(cache->clerk, cost);
	cache->st.bytes += cost;
	cache->st.entries++;
	cache->st.inserts++;
	mb_unlock(&cache->lock);
	return 0;
}

int64_t mb_cache_get(struct mb_cache *cache, const void *key, size_t klen,
		     void *buf, size_t buflen)
{
	struct mb_cache_entry *e;
	int64_t len;

	if (!cache || !key || !klen || (!buf && buflen))
		return -EINVAL;
	mb_lock(&cache->lock);
	e = *mb_cache_slot(cache, key, klen, mb_hash(key, klen));
	if (!e) {
		cache->st.misses++;
		mb_unlock(&cache->lock);
		return -ENOENT;
	}
	cache->st.hits++;
	mb_lru_unlink(cache, e);
	mb_lru_push(cache, e);
	if (buflen)
		memcpy(buf, e->data + e->klen, MB_MIN(buflen, e->vlen));
	len = e->vlen > INT64_MAX ? INT64_MAX : (int64_t)e->vlen;
	mb_unlock(&cache->lock);
	return len;
}

int mb_cache_del(struct mb_cache *cache, const void *key, size_t klen)
{
	struct mb_cache_entry **pp;
	int err = 0;

	if (!cache || !key || !klen)
		return -EINVAL;
	mb_lock(&cache->lock);
	pp = mb_cache_slot(cache, key, klen, mb_hash(key, klen));
	if (*pp)
		mb_cache_drop(cache, pp);
	else
		err = -ENOENT;
	mb_unlock(&cache->lock);
	return err;
}

int mb_cache_stats(struct mb_cache *cache, struct mb_cache_stats *out)
{
	if (!cache || !out)
		return -EINVAL;
	mb_lock(&cache->lock);
	*out = cache->st;
	mb_unlock(&cache->lock);
	return 0;
}
