// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * mb_cache: a bounded LRU map of byte strings whose memory is accounted by
 * its own clerk, so a broker can size it and take memory back from it.
 *
 * An entry costs its key, its value and MB_CACHE_OVERHEAD (the entry
 * header, its share of the bucket array and of its shard's heap, and its
 * column of use times: 136 bytes on 64-bit systems); that is what is
 * charged to the clerk.  The bound is min(max_bytes, the clerk's
 * target): a put evicts least recently used entries until the cache fits
 * it again, and an entry that could not fit in an empty cache is refused
 * with -E2BIG.
 * The clerk's shrink callback evicts least recently used entries first,
 * but frees no more than it was asked for (the broker relies on that to
 * keep its pool at min_bytes): an entry larger than what is still to be
 * freed is passed over for a newer, smaller one, looking at most
 * MB_CACHE_SKIP entries past it.  If nothing fits, nothing is freed; the
 * broker's next step asks for more.  The part of a request that is the
 * pool's excess over its max_bytes goes in any case, in whole entries.
 *
 * Shards.  One lock for the whole cache made every get of every thread
 * wait for the others.  The cache is MB_CACHE_SHARDS independent hash
 * tables, each under its own lock, chosen by the key's hash: puts of
 * different shards never wait for each other, as in memcached's or
 * RocksDB's sharded caches.
 *
 * Gets take no lock at all.  Even an uncontended lock is a write to a
 * line that every other get of the shard writes too, so with shard locks
 * two threads' gets together were no faster than one thread's.  A get
 * walks the chain inside an epoch (epoch.c) and writes only the entry's
 * time of use (a hit), in its thread's row of use times, and a counter
 * in its own thread's line:
 *
 *  - The time of use is not in the entry: there, every hit wrote a line
 *    the other threads' gets of the entry read, and two threads' random
 *    hits kept moving entry lines between their CPUs, lock or no lock.
 *    Each shard keeps the times in chunks of 64 entries (struct
 *    mb_uses), a row per group of threads; an entry's time of use is the
 *    latest of its column.
 *  - Entries do not change once published (a put that replaces a key
 *    puts a new entry where the old one stood), so what a get finds is
 *    whole.  A dropped entry keeps its link, so a get standing on it
 *    goes on along the chain, and it is freed only when no get can be
 *    reading it any more: on a later drop's reclaim, or at the end of a
 *    shrink, which waits for the gets in progress (short: they neither
 *    block nor call out), so that what the broker is told is freed is.
 *  - Misses are exact too: chains change only at their head (inserts) or
 *    by unlinking, which keeps the order of what stays; only a table's
 *    growth moves entries between chains, and a get that missed while
 *    one ran (the shard's seq) looks again under the lock.
 *  - An LRU list, which a hit would have to relink (writing two
 *    neighbours and the list head, lines other threads' hits write too),
 *    orders the entries of a shard only for evictions, and they pay for
 *    that order.
 *
 * What stays exact:
 *
 *  - LRU order.  Every entry has the CLOCK_MONOTONIC time of its last use
 *    (put or hit, mb_used(); one thread never uses the same nanosecond
 *    twice, and a hit never moves it back).  Each shard keeps its entries
 *    in a 4-ary min-heap keyed by the time each was placed by, which is never
 *    later than its time of use: a put places it by its time, a hit
 *    leaves the heap alone.  A shard's oldest entry is found by lazy
 *    re-keying: while the top's key is older than its entry's time, the
 *    top is placed again by that time; once they agree, no entry of the
 *    shard is older (mb_heap_oldest()).  Each hit costs at most one such
 *    step later, paid by an eviction, O(log n).
 *    An eviction takes the entry with the oldest time of all shards: the
 *    one a single LRU list would evict, for operations that do not
 *    overlap in time; overlapping ones are ordered by their times (two
 *    uses in one nanosecond, in different shards, in either order).  To
 *    find it without taking every lock, each shard publishes its heap
 *    top's key (oldest_ns), never later than its oldest entry's time.  A
 *    put that must evict locks the shard that publishes the oldest, finds
 *    that shard's oldest exactly, and evicts it if no other shard
 *    publishes an older time; else the shard now publishes its exact
 *    time and the put looks again (mb_cache_evict_oldest()).
 *  - Shrinking.  The shrink callback takes every shard's lock (in the
 *    order fork's prepare handler does, as mb_cache_stats() does) and
 *    walks all the heaps at once, oldest entry of all first, taking each
 *    shard's next exact oldest as above; the entries it passes over
 *    (too large) leave their heap until it is done: exactly the entries,
 *    and the bytes, a single LRU list would give.  Shrinking is rare;
 *    meanwhile gets wait, as they did for any put before.
 *  - Accounting.  Each entry is charged to the clerk when it is inserted
 *    and uncharged when it goes, and the cache's byte count (summed over
 *    the shards, and kept in one atomic for the bound) always equals what
 *    the clerk was charged for it.  mb_cache_stats() holds every shard's
 *    lock while it sums, so its sizes and counts of puts and evictions
 *    are of one moment; gets count without a lock, and it adds those
 *    that returned before it.  Dropped entries waiting for gets to move
 *    on are not charged: at most a few hundred per shard, beside those
 *    dropped while a get was in progress, and none once a shrink has
 *    returned.
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
#define MB_CACHE_MIN_HEAP	16
#define MB_CACHE_SKIP		64	/* entries too large to pass over */
#define MB_CACHE_WALK		64	/* a get's steps without the lock */
#define MB_CACHE_STRIPES	16	/* hit counters, power of two */
#define MB_CACHE_RECLAIM	64	/* drops between tries to free */
#define MB_CACHE_USES		4	/* rows of use times, power of two */
#define MB_USES_PER_CHUNK	64	/* entries a chunk of times serves */
/* a heap node's children share a cache line: 4 nodes of 16 bytes */
#define MB_HEAP_ARITY		4
#define MB_HEAP_PAD		(MB_HEAP_ARITY - 1)

/*
 * Written once, before it is published in a chain, but for hnext (the
 * chain changes around it); what gets never read (hidx, rnext) is the
 * writers', under the shard's lock.  Its time of use is in @uses.
 */
struct mb_cache_entry {
	_Atomic(struct mb_cache_entry *) hnext;	/* hash chain */
	uint64_t hash;
	struct mb_uses *uses;			/* its times of use, */
	unsigned int uidx;			/* ... in this column */
	union {
		size_t hidx;			/* its node in the heap */
		struct mb_cache_entry *rnext;	/* dropped: next in limbo */
	};
	size_t klen, vlen;
	unsigned char data[];			/* key, then value */
};

/* A shard's buckets; a table that was replaced waits in old_tables */
struct mb_cache_table {
	size_t n;				/* power of two */
	uint64_t stamp;				/* retired in that epoch */
	struct mb_cache_table *rnext;
	_Atomic(struct mb_cache_entry *) b[];
};

/*
 * The times of use of up to 64 entries of a shard, one row per group of
 * threads (their epoch record's number, modulo MB_CACHE_USES): a hit
 * stamps the row of its thread, 8 bytes in a line that only the threads
 * of that row write, and an entry's time of use is the latest of its
 * column.  With the time in the entry itself, two threads' hits made
 * every entry line they touched go back and forth between their CPUs.
 * A chunk is freed when none of its columns is used; a column is taken
 * again only once its entry is freed, when no get can still stamp it.
 */
struct mb_uses {
	_Atomic uint64_t t[MB_CACHE_USES][MB_USES_PER_CHUNK];
	/* the writers', under the shard lock */
	uint64_t free;				/* a bit per free column */
	struct mb_uses *next, *prev;		/* with a free column */
} __attribute__((aligned(64)));

/* A node of a shard's heap: the entry and the time it was placed by */
struct mb_heap_node {
	uint64_t key_ns;			/* <= mb_used(e) */
	struct mb_cache_entry *e;
};

/*
 * What an entry costs besides its key and value: its header, its share
 * of the bucket array and of the heap, both of which double when full,
 * so up to two pointers and two nodes per entry, and its column of use
 * times.
 */
#define MB_CACHE_OVERHEAD \
	(sizeof(struct mb_cache_entry) + \
	 2 * sizeof(struct mb_cache_entry *) + \
	 2 * sizeof(struct mb_heap_node) + MB_CACHE_USES * sizeof(uint64_t))

struct mb_cache_shard {
	/* what gets read: a line that only a table's growth writes */
	_Atomic(struct mb_cache_table *) table;
	_Atomic uint64_t seq;			/* odd while it grows */
	/* the writers', under the lock */
	_Alignas(64) struct mb_lock lock;
	/* 4-ary min-heap by key_ns, every entry of the shard once */
	struct mb_heap_node *heap;
	size_t heap_n, heap_cap;
	/*
	 * Dropped entries that gets may still be reading, by the epoch they
	 * were dropped in, modulo 3: a list's epoch is the current one or
	 * one of the two before (mb_cache_retire()); and replaced tables.
	 */
	struct mb_cache_entry *limbo[3];
	uint64_t limbo_epoch[3];
	size_t limbo_n;
	struct mb_cache_table *old_tables;
	struct mb_uses *uses_free;		/* chunks with a free column */
	struct mb_cache_stats st;		/* but hits and misses */
} __attribute__((aligned(64)));

/* Gets' counters, spread over lines by reader */
struct mb_cache_hits {
	_Atomic uint64_t hits, misses;
} __attribute__((aligned(64)));

struct mb_cache {
	struct mb_cache_shard shard[MB_CACHE_SHARDS];
	/*
	 * Each shard's heap top key, UINT64_MAX when it is empty: never
	 * later than the shard's oldest entry's time.  Written under the
	 * shard's lock, read without it.  Kept apart from the shards, whose
	 * lines every get writes: a put looking for the oldest reads two
	 * lines that gets never touch.
	 */
	_Alignas(64) _Atomic uint64_t oldest_ns[MB_CACHE_SHARDS];
	struct mb_cache_hits hits[MB_CACHE_STRIPES];
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

static int mb_shard_index(uint64_t h)
{
	return (int)(h >> MB_CACHE_SHARD_SHIFT);
}

static struct mb_cache_shard *mb_shard(struct mb_cache *c, uint64_t h)
{
	return &c->shard[mb_shard_index(h)];
}

static uint64_t mb_entry_cost(size_t klen, size_t vlen)
{
	return (uint64_t)klen + vlen + MB_CACHE_OVERHEAD;
}

static _Atomic uint64_t *mb_use(struct mb_cache_entry *e, unsigned int row)
{
	return &e->uses->t[row][e->uidx];
}

/* The entry's time of use: its put's, or its latest hit's */
static uint64_t mb_used(struct mb_cache_entry *e)
{
	uint64_t t, used = 0;
	unsigned int k;

	for (k = 0; k < MB_CACHE_USES; k++) {
		t = atomic_load_explicit(mb_use(e, k), memory_order_relaxed);
		used = MB_MAX(used, t);
	}
	return used;
}

/* ---- columns of use times; all with the shard's lock held ---- */

static void mb_uses_unlink(struct mb_cache_shard *s, struct mb_uses *u)
{
	if (u->prev)
		u->prev->next = u->next;
	else
		s->uses_free = u->next;
	if (u->next)
		u->next->prev = u->prev;
}

/* A column for @e, which is used now (its put) by @now; -ENOMEM */
static int mb_uses_take(struct mb_cache_shard *s, struct mb_cache_entry *e,
			uint64_t now)
{
	struct mb_uses *u = s->uses_free;
	unsigned int k, i;

	if (!u) {
		u = aligned_alloc(64, sizeof(*u));
		if (!u)
			return -ENOMEM;
		for (k = 0; k < MB_CACHE_USES; k++)
			for (i = 0; i < MB_USES_PER_CHUNK; i++)
				atomic_init(&u->t[k][i], 0);
		u->free = ~0ULL;
		u->prev = NULL;
		u->next = NULL;
		s->uses_free = u;
	}
	i = (unsigned int)__builtin_ctzll(u->free);
	u->free &= ~(1ULL << i);
	if (!u->free)
		mb_uses_unlink(s, u);
	e->uses = u;
	e->uidx = i;
	for (k = 0; k < MB_CACHE_USES; k++)
		atomic_store_explicit(mb_use(e, k), k ? 0 : now,
				      memory_order_relaxed);
	return 0;
}

/* @e is freed, and no get can stamp its column any more */
static void mb_uses_give(struct mb_cache_shard *s, struct mb_cache_entry *e)
{
	struct mb_uses *u = e->uses;

	if (!u->free) {
		u->prev = NULL;
		u->next = s->uses_free;
		if (u->next)
			u->next->prev = u;
		s->uses_free = u;
	}
	u->free |= 1ULL << e->uidx;
	/* an empty chunk goes, but for the only one with room */
	if (u->free == ~0ULL && (u->prev || u->next)) {
		mb_uses_unlink(s, u);
		free(u);
	}
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

/* ---- a shard's heap; all with the shard's lock held ---- */

static void mb_heap_set(struct mb_cache_shard *s, size_t i,
			struct mb_heap_node n)
{
	s->heap[i] = n;
	n.e->hidx = i;
}

static void mb_heap_up(struct mb_cache_shard *s, size_t i)
{
	struct mb_heap_node n = s->heap[i];
	size_t p;

	while (i > 0) {
		p = (i - 1) / MB_HEAP_ARITY;
		if (s->heap[p].key_ns <= n.key_ns)
			break;
		mb_heap_set(s, i, s->heap[p]);
		i = p;
	}
	mb_heap_set(s, i, n);
}

static void mb_heap_down(struct mb_cache_shard *s, size_t i)
{
	struct mb_heap_node n = s->heap[i];
	size_t c, m, end;

	for (;;) {
		c = i * MB_HEAP_ARITY + 1;
		if (c >= s->heap_n)
			break;
		end = MB_MIN(c + MB_HEAP_ARITY, s->heap_n);
		for (m = c++; c < end; c++)
			if (s->heap[c].key_ns < s->heap[m].key_ns)
				m = c;
		if (s->heap[m].key_ns >= n.key_ns)
			break;
		mb_heap_set(s, i, s->heap[m]);
		i = m;
	}
	mb_heap_set(s, i, n);
}

/*
 * The node array starts MB_HEAP_PAD nodes into a 64-byte aligned block,
 * so that the 4 children of a node, 4i+1..4i+4, are one cache line.
 */
static struct mb_heap_node *mb_heap_alloc(size_t cap)
{
	size_t sz = (cap + MB_HEAP_PAD) * sizeof(struct mb_heap_node);
	struct mb_heap_node *h;

	if (cap > SIZE_MAX / sizeof(*h) - MB_HEAP_PAD - 4)
		return NULL;
	h = aligned_alloc(64, (sz + 63) & ~(size_t)63);
	return h ? h + MB_HEAP_PAD : NULL;
}

static void mb_heap_free(struct mb_heap_node *h)
{
	if (h)
		free(h - MB_HEAP_PAD);
}

/* Room for one more node; false (and the heap as it was) on ENOMEM. */
static bool mb_heap_reserve(struct mb_cache_shard *s)
{
	struct mb_heap_node *h;

	if (s->heap_n < s->heap_cap)
		return true;
	h = mb_heap_alloc(s->heap_cap * 2);
	if (!h)
		return false;
	memcpy(h, s->heap, s->heap_n * sizeof(*h));
	mb_heap_free(s->heap);
	s->heap = h;
	s->heap_cap *= 2;
	return true;
}

/* Add @e, placed by its time of use; mb_heap_reserve() made room. */
static void mb_heap_insert(struct mb_cache_shard *s, struct mb_cache_entry *e)
{
	s->heap[s->heap_n] = (struct mb_heap_node){ mb_used(e), e };
	mb_heap_up(s, s->heap_n++);
}

static void mb_heap_remove(struct mb_cache_shard *s, struct mb_cache_entry *e)
{
	size_t i = e->hidx;

	if (i != --s->heap_n) {
		mb_heap_set(s, i, s->heap[s->heap_n]);
		if (i > 0 &&
		    s->heap[(i - 1) / MB_HEAP_ARITY].key_ns > s->heap[i].key_ns)
			mb_heap_up(s, i);
		else
			mb_heap_down(s, i);
	}
}

/*
 * The shard's least recently used entry, NULL when it is empty.  A hit
 * only moves an entry's used_ns, not its node: while the top's key is
 * older than its entry's use, the top is placed again by that time, until
 * the top's key is its entry's time.  Every key is at most its entry's
 * time, so that entry is then the oldest.  An entry is placed again at
 * most once per call and once per hit overall: the hits' share of the
 * heap's work is paid here, by evictions.
 */
static struct mb_cache_entry *mb_heap_oldest(struct mb_cache_shard *s)
{
	struct mb_heap_node *top = &s->heap[0];

	if (!s->heap_n)
		return NULL;
	while (top->key_ns < mb_used(top->e)) {
		top->key_ns = mb_used(top->e);
		mb_heap_down(s, 0);
	}
	return top->e;
}

/* Publish shard @i's heap top key for puts looking for the oldest. */
static void mb_shard_publish(struct mb_cache *c, int i)
{
	struct mb_cache_shard *s = &c->shard[i];
	uint64_t t = s->heap_n ? s->heap[0].key_ns : UINT64_MAX;

	/* stores only when it moved: a put of a newer entry seldom does */
	if (atomic_load_explicit(&c->oldest_ns[i], memory_order_relaxed) != t)
		atomic_store_explicit(&c->oldest_ns[i], t,
				      memory_order_relaxed);
}

typedef _Atomic(struct mb_cache_entry *) mb_link;

static struct mb_cache_entry *mb_next(mb_link *l)
{
	return atomic_load_explicit(l, memory_order_relaxed);
}

static struct mb_cache_table *mb_table(struct mb_cache_shard *s)
{
	return atomic_load_explicit(&s->table, memory_order_relaxed);
}

static bool mb_entry_is(const struct mb_cache_entry *e, const void *key,
			size_t klen, uint64_t h)
{
	return e->hash == h && e->klen == klen && !memcmp(e->data, key, klen);
}

/*
 * With the shard's lock: the link that points to @key's entry, or the
 * chain's last (NULL) link.
 */
static mb_link *mb_cache_slot(struct mb_cache_shard *s, const void *key,
			      size_t klen, uint64_t h)
{
	struct mb_cache_table *t = mb_table(s);
	mb_link *l = &t->b[h & (t->n - 1)];
	struct mb_cache_entry *e;

	while ((e = mb_next(l)) && !mb_entry_is(e, key, klen, h))
		l = &e->hnext;
	return l;
}

static struct mb_cache_table *mb_table_new(size_t n)
{
	struct mb_cache_table *t;
	size_t i;

	t = malloc(sizeof(*t) + n * sizeof(t->b[0]));
	if (!t)
		return NULL;
	t->n = n;
	t->rnext = NULL;
	for (i = 0; i < n; i++)
		atomic_init(&t->b[i], NULL);
	return t;
}

static void mb_entries_free(struct mb_cache_entry *e)
{
	struct mb_cache_entry *next;

	for (; e; e = next) {
		next = e->rnext;
		free(e);
	}
}

/*
 * Entries no get can read any more, taken from limbo under a shard's
 * lock and freed by the same thread once it holds no lock: free() can
 * take a while, and other threads' puts would wait for it.
 */
static _Thread_local struct mb_cache_entry *mb_garbage;

static void mb_garbage_free(void)
{
	mb_entries_free(mb_garbage);
	mb_garbage = NULL;
}

/*
 * Give to mb_garbage what no get can be reading any more: the limbo lists
 * of epochs at least two before @epoch; free such tables.
 */
static void mb_shard_reclaim(struct mb_cache_shard *s, uint64_t epoch)
{
	struct mb_cache_table **tp = &s->old_tables, *t;
	struct mb_cache_entry *e;
	int i;

	for (i = 0; i < 3; i++) {
		if (!s->limbo[i] || s->limbo_epoch[i] + 2 > epoch)
			continue;
		for (e = s->limbo[i];; e = e->rnext) {
			s->limbo_n--;
			mb_uses_give(s, e);
			if (!e->rnext)
				break;
		}
		e->rnext = mb_garbage;
		mb_garbage = s->limbo[i];
		s->limbo[i] = NULL;
	}
	while ((t = *tp)) {
		if (t->stamp + 2 <= epoch) {
			*tp = t->rnext;
			free(t);
		} else {
			tp = &t->rnext;
		}
	}
}

/*
 * @e is out of its chain: it goes when no get can be reading it; at once
 * (after the shard's lock) if no get is in progress, and so does all
 * that waits in the shard's limbo.  Else its list is the one of the epoch
 * now; what that list held is from an epoch three or more before (epochs
 * only grow), so it goes first.  Every MB_CACHE_RECLAIM drops, the epoch
 * is moved on if it can be and what is old enough goes, without waiting
 * for anyone.
 */
static void mb_cache_retire(struct mb_cache_shard *s,
			    struct mb_cache_entry *e)
{
	uint64_t epoch;
	int i;

	if (mb_epoch_quiet()) {
		/* no get can have it, nor what waits in limbo */
		if (s->limbo_n || s->old_tables)
			mb_shard_reclaim(s, UINT64_MAX);
		mb_uses_give(s, e);
		e->rnext = mb_garbage;
		mb_garbage = e;
		return;
	}
	epoch = mb_epoch_now();
	i = (int)(epoch % 3);
	if (s->limbo_epoch[i] != epoch) {
		mb_shard_reclaim(s, epoch);
		s->limbo_epoch[i] = epoch;
	}
	e->rnext = s->limbo[i];
	s->limbo[i] = e;
	if (++s->limbo_n % MB_CACHE_RECLAIM == 0)
		mb_shard_reclaim(s, mb_epoch_advance());
}

/* @e is out of its chain: out of the heap and the accounts too. */
static uint64_t mb_cache_unlinked(struct mb_cache *c,
				  struct mb_cache_shard *s,
				  struct mb_cache_entry *e)
{
	uint64_t cost = mb_entry_cost(e->klen, e->vlen);

	mb_heap_remove(s, e);
	mb_clerk_uncharge(c->clerk, cost);
	s->st.bytes -= cost;
	s->st.entries--;
	atomic_fetch_sub_explicit(&c->bytes, cost, memory_order_relaxed);
	mb_cache_retire(s, e);
	return cost;
}

/*
 * Unlink the entry @l points to.  Its own link is left as it was: a get
 * standing on it goes on along the rest of the chain.
 */
static uint64_t mb_cache_drop(struct mb_cache *c, struct mb_cache_shard *s,
			      mb_link *l)
{
	struct mb_cache_entry *e = mb_next(l);

	atomic_store(l, mb_next(&e->hnext));
	return mb_cache_unlinked(c, s, e);
}

static uint64_t mb_cache_evict(struct mb_cache *c, struct mb_cache_shard *s,
			       struct mb_cache_entry *e)
{
	s->st.evictions++;
	return mb_cache_drop(c, s, mb_cache_slot(s, e->data, e->klen,
						 e->hash));
}

/*
 * The shard whose published time is the oldest (ties to the lowest
 * index), -1 when all are empty; *@next receives the oldest time that
 * the other shards publish.
 */
static int mb_published_oldest(struct mb_cache *c, uint64_t *next)
{
	uint64_t v, oldest = UINT64_MAX, second = UINT64_MAX;
	int i, pick = -1;

	for (i = 0; i < MB_CACHE_SHARDS; i++) {
		v = atomic_load_explicit(&c->oldest_ns[i],
					 memory_order_relaxed);
		if (v < oldest) {
			second = oldest;
			oldest = v;
			pick = i;
		} else if (v < second) {
			second = v;
		}
	}
	*next = second;
	return pick;
}

/*
 * Evict the least recently used entry of the whole cache, taking one
 * shard lock at a time; returns its cost, 0 when the cache is empty.
 *
 * The shard with the oldest published time is locked and its oldest
 * entry found exactly; if no other shard published an older time, no
 * entry anywhere is older (a published time is never later than its
 * shard's oldest, and grows only, but for entries of puts that overlap
 * this one), and it goes.  Otherwise that shard's time is now exact and
 * published, and the search starts again: while nothing else happens it
 * ends after one pass per shard at most, since published times are only
 * ever made exact.
 */
static uint64_t mb_cache_evict_oldest(struct mb_cache *c)
{
	struct mb_cache_entry *e;
	struct mb_cache_shard *s;
	uint64_t next, cost;
	int pick;

	for (;;) {
		pick = mb_published_oldest(c, &next);
		if (pick < 0)
			return 0;
		s = &c->shard[pick];
		mb_lock(&s->lock);
		e = mb_heap_oldest(s);
		if (e && mb_used(e) <= next) {
			cost = mb_cache_evict(c, s, e);
			mb_shard_publish(c, pick);
			mb_unlock(&s->lock);
			return cost;
		}
		mb_shard_publish(c, pick);
		mb_unlock(&s->lock);
	}
}

/*
 * Twice the buckets.  The entries move to the new table's chains in
 * place, while gets may be walking the old ones: a get can be led from
 * one chain into another and miss its key, so the shard's seq is odd
 * meanwhile and changed after, and a get that missed looks again under
 * the lock (mb_cache_get()).  What a get finds is always right: entries
 * do not change.  The old table goes when no get can be reading it.
 */
static void mb_shard_grow(struct mb_cache_shard *s)
{
	struct mb_cache_table *t = mb_table(s), *nt;
	uint64_t seq = atomic_load_explicit(&s->seq, memory_order_relaxed);
	struct mb_cache_entry *e, *next;
	mb_link *l;
	size_t i;

	nt = mb_table_new(t->n * 2);
	if (!nt)
		return;		/* longer chains, still correct */
	atomic_store(&s->seq, seq + 1);
	for (i = 0; i < t->n; i++) {
		for (e = mb_next(&t->b[i]); e; e = next) {
			next = mb_next(&e->hnext);
			l = &nt->b[e->hash & (nt->n - 1)];
			atomic_store(&e->hnext, mb_next(l));
			atomic_store(l, e);
		}
	}
	atomic_store(&s->table, nt);
	atomic_store(&s->seq, seq + 2);
	t->stamp = mb_epoch_now();
	t->rnext = s->old_tables;
	s->old_tables = t;
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

/*
 * With every shard's lock held: the cache's entries, least recently used
 * first, one at a time.  Each shard's oldest is kept exact (old[]); the
 * oldest of those is the next (ties to the lowest shard).  An entry can
 * be evicted or passed over; those passed over leave their heaps until
 * mb_walk_end() puts them back, at most MB_CACHE_SKIP + 1 of them.
 */
struct mb_walk {
	struct mb_cache *c;
	struct mb_cache_entry *old[MB_CACHE_SHARDS];
	struct mb_cache_entry *passed[MB_CACHE_SKIP + 1];
	int npassed;
};

static void mb_walk_start(struct mb_walk *w, struct mb_cache *c)
{
	int i;

	w->c = c;
	w->npassed = 0;
	for (i = 0; i < MB_CACHE_SHARDS; i++)
		w->old[i] = mb_heap_oldest(&c->shard[i]);
}

/* The shard of the next entry, -1 when no entry is left. */
static int mb_walk_next(struct mb_walk *w)
{
	int i, pick = -1;

	for (i = 0; i < MB_CACHE_SHARDS; i++)
		if (w->old[i] && (pick < 0 ||
				  mb_used(w->old[i]) < mb_used(w->old[pick])))
			pick = i;
	return pick;
}

static uint64_t mb_walk_evict(struct mb_walk *w, int i)
{
	uint64_t cost = mb_cache_evict(w->c, &w->c->shard[i], w->old[i]);

	w->old[i] = mb_heap_oldest(&w->c->shard[i]);
	return cost;
}

static void mb_walk_pass(struct mb_walk *w, int i)
{
	struct mb_cache_shard *s = &w->c->shard[i];

	mb_heap_remove(s, w->old[i]);
	w->passed[w->npassed++] = w->old[i];
	w->old[i] = mb_heap_oldest(s);
}

/* Those passed over back in their heaps, where they were. */
static void mb_walk_restore(struct mb_walk *w)
{
	struct mb_cache_entry *e;
	int i;

	while (w->npassed > 0) {
		e = w->passed[--w->npassed];
		i = mb_shard_index(e->hash);
		mb_heap_insert(&w->c->shard[i], e);
		w->old[i] = mb_heap_oldest(&w->c->shard[i]);
	}
}

/*
 * Evict least recently used first until @want is freed, passing over
 * entries that would take what is freed beyond @limit, at most
 * MB_CACHE_SKIP + 1 of them (they stay passed over until
 * mb_walk_restore()).  Returns the bytes freed.
 */
static uint64_t mb_walk_free(struct mb_walk *w, uint64_t want,
			     uint64_t limit)
{
	struct mb_cache_entry *e;
	uint64_t freed = 0;
	int i, skipped = 0;

	while (freed < want && skipped <= MB_CACHE_SKIP &&
	       (i = mb_walk_next(w)) >= 0) {
		e = w->old[i];
		if (mb_entry_cost(e->klen, e->vlen) > limit - freed) {
			skipped++;
			mb_walk_pass(w, i);
			continue;
		}
		freed += mb_walk_evict(w, i);
	}
	return freed;
}

static void mb_walk_end(struct mb_walk *w)
{
	int i;

	mb_walk_restore(w);
	for (i = 0; i < MB_CACHE_SHARDS; i++)
		mb_shard_publish(w->c, i);
}

/*
 * After a shrink: what it dropped is given back to the allocator before
 * the broker is told it is freed, once the gets that may be reading it
 * have returned (they neither block nor call out: a short wait).
 */
static void mb_cache_reclaim(struct mb_cache *c)
{
	struct mb_cache_shard *s;
	uint64_t epoch;
	int i;

	mb_epoch_wait(mb_epoch_now());
	epoch = mb_epoch_now();
	for (i = 0; i < MB_CACHE_SHARDS; i++) {
		s = &c->shard[i];
		mb_lock(&s->lock);
		mb_shard_reclaim(s, epoch);
		mb_unlock(&s->lock);
	}
}

/*
 * The end of a shrink that freed @freed in walk @w: the locks go, and the
 * memory is back in the allocator before the broker hears of it.
 */
static int64_t mb_cache_shrunk(struct mb_walk *w, uint64_t freed)
{
	mb_walk_end(w);
	mb_cache_unlock_all(w->c);
	if (freed)
		mb_cache_reclaim(w->c);
	mb_garbage_free();
	return freed > INT64_MAX ? INT64_MAX : (int64_t)freed;
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
	struct mb_cache *c = arg;
	struct mb_walk w;
	uint64_t freed;
	int i;

	(void)clerk;
	mb_cache_lock_all(c);
	mb_walk_start(&w, c);
	freed = mb_walk_free(&w, bytes, bytes);
	mb_walk_restore(&w);
	while (freed < at_least && (i = mb_walk_next(&w)) >= 0)
		freed += mb_walk_evict(&w, i);
	return mb_cache_shrunk(&w, freed);
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
	struct mb_cache *c = arg;
	struct mb_walk w;
	uint64_t freed;

	(void)clerk;
	mb_cache_lock_all(c);
	mb_walk_start(&w, c);
	freed = mb_walk_free(&w, at_least, at_most);
	return mb_cache_shrunk(&w, freed);
}

static int64_t mb_cache_shrink(struct mb_clerk *clerk, uint64_t bytes,
			       void *arg)
{
	return mb_cache_shrink_floor(clerk, bytes, 0, arg);
}

static void mb_cache_destroy(struct mb_cache *c, int shards)
{
	struct mb_cache_shard *s;
	struct mb_uses *u;
	size_t j;
	int i;

	/* no get is running: the caller's promise */
	for (i = 0; i < shards; i++) {
		s = &c->shard[i];
		for (j = 0; j < s->heap_n; j++) {
			mb_uses_give(s, s->heap[j].e);
			free(s->heap[j].e);
		}
		mb_shard_reclaim(s, UINT64_MAX);	/* limbo, old tables */
		mb_garbage_free();
		while ((u = s->uses_free)) {
			mb_uses_unlink(s, u);
			free(u);
		}
		mb_lock_destroy(&s->lock);
		free(mb_table(s));
		mb_heap_free(s->heap);
	}
	free(c);
}

int mb_cache_new(struct mb_cache **out, const char *name,
		 const struct mb_cache_opts *opts)
{
	struct mb_clerk_opts co = { .sz = sizeof(co) };
	struct mb_cache_table *t;
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
		t = mb_table_new(MB_CACHE_MIN_BUCKETS);
		s->heap_cap = MB_CACHE_MIN_HEAP;
		s->heap = mb_heap_alloc(s->heap_cap);
		if (!t || !s->heap) {
			free(t);
			mb_heap_free(s->heap);
			mb_cache_destroy(c, i);
			return -ENOMEM;
		}
		atomic_init(&s->table, t);
		atomic_init(&s->seq, 0);
		atomic_init(&c->oldest_ns[i], UINT64_MAX);
		mb_lock_init(&s->lock, MB_LOCK_INNER);
	}
	for (i = 0; i < MB_CACHE_STRIPES; i++) {
		atomic_init(&c->hits[i].hits, 0);
		atomic_init(&c->hits[i].misses, 0);
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
	struct mb_cache_entry *e, *old;
	struct mb_cache_shard *s;
	struct mb_cache_table *t;
	uint64_t cost, bound;
	uint64_t h, now;
	mb_link *l;

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
	now = mb_cache_now();		/* the newest, placed by that */

	s = mb_shard(cache, h);
	mb_lock(&s->lock);
	if (!mb_heap_reserve(s) || mb_uses_take(s, e, now)) {
		mb_unlock(&s->lock);
		free(e);
		return -ENOMEM;
	}
	l = mb_cache_slot(s, key, klen, h);
	old = mb_next(l);
	if (old) {
		/*
		 * Replaced where it stands, not evicted: a get finds the
		 * old entry or the new one, never neither.
		 */
		atomic_init(&e->hnext, mb_next(&old->hnext));
		atomic_store(l, e);
		mb_cache_unlinked(cache, s, old);
	} else {
		if (s->st.entries >= mb_table(s)->n)
			mb_shard_grow(s);
		t = mb_table(s);
		l = &t->b[h & (t->n - 1)];
		atomic_init(&e->hnext, mb_next(l));
		/* published whole; unlinks nothing, so needs no more order */
		atomic_store_explicit(l, e, memory_order_release);
	}
	mb_heap_insert(s, e);
	mb_shard_publish(cache, mb_shard_index(h));
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
	mb_garbage_free();
	return 0;
}

/*
 * Without the lock: @key's entry, or NULL.  *@sure is false when a miss
 * proves nothing: the table grew meanwhile, or the chain was longer than
 * a table that has grown as it should has.
 */
static struct mb_cache_entry *mb_cache_find(struct mb_cache_shard *s,
					    const void *key, size_t klen,
					    uint64_t h, bool *sure)
{
	uint64_t seq = atomic_load(&s->seq);
	struct mb_cache_table *t = atomic_load(&s->table);
	struct mb_cache_entry *e;
	int steps = 0;

	*sure = false;
	if (seq & 1)
		return NULL;
	for (e = atomic_load(&t->b[h & (t->n - 1)]); e;
	     e = atomic_load(&e->hnext)) {
		if (mb_entry_is(e, key, klen, h))
			return e;
		if (++steps == MB_CACHE_WALK)
			return NULL;
	}
	*sure = atomic_load(&s->seq) == seq;
	return NULL;
}

/* A hit: @e is now the most recently used, and its value is copied. */
static int64_t mb_cache_hit(struct mb_cache_entry *e, unsigned int row,
			    uint64_t now, void *buf, size_t buflen)
{
	_Atomic uint64_t *use = mb_use(e, row);
	uint64_t used = atomic_load_explicit(use, memory_order_relaxed);

	/*
	 * Its time is all that changes (its heap node is placed again by an
	 * eviction that meets it, mb_heap_oldest()).  Never back in time,
	 * should another thread's later hit have come first.
	 */
	while (now > used &&
	       !atomic_compare_exchange_weak_explicit(use, &used, now,
						      memory_order_relaxed,
						      memory_order_relaxed))
		;
	if (buflen)
		memcpy(buf, e->data + e->klen, MB_MIN(buflen, e->vlen));
	return e->vlen > INT64_MAX ? INT64_MAX : (int64_t)e->vlen;
}

/*
 * A get takes no lock and writes nothing that another thread's gets of
 * other keys write: it finds the entry inside an epoch (epoch.c), so
 * that the entry is not freed under it, and counts in its own thread's
 * line.  Only a miss that proves nothing looks again under the lock.
 */
int64_t mb_cache_get(struct mb_cache *cache, const void *key, size_t klen,
		     void *buf, size_t buflen)
{
	struct mb_cache_entry *e;
	struct mb_cache_shard *s;
	struct mb_cache_hits *ctr;
	struct mb_epoch_rec *r;
	unsigned int row = 0;
	uint64_t h, now;
	int64_t len;
	bool sure;

	if (!cache || !key || !klen || (!buf && buflen))
		return -EINVAL;
	h = mb_hash(key, klen);
	now = mb_cache_now();
	s = mb_shard(cache, h);
	r = mb_epoch_enter();
	if (r)
		row = mb_epoch_slot(r);
	ctr = &cache->hits[row % MB_CACHE_STRIPES];
	row %= MB_CACHE_USES;
	if (r) {
		e = mb_cache_find(s, key, klen, h, &sure);
		len = e ? mb_cache_hit(e, row, now, buf, buflen) : -ENOENT;
		mb_epoch_leave(r);
		if (e || sure)
			goto out;
	}
	mb_lock(&s->lock);
	e = mb_next(mb_cache_slot(s, key, klen, h));
	len = e ? mb_cache_hit(e, row, now, buf, buflen) : -ENOENT;
	mb_unlock(&s->lock);
out:
	atomic_fetch_add_explicit(len >= 0 ? &ctr->hits : &ctr->misses, 1,
				  memory_order_relaxed);
	return len;
}

int mb_cache_del(struct mb_cache *cache, const void *key, size_t klen)
{
	struct mb_cache_shard *s;
	int err = 0;
	uint64_t h;
	mb_link *l;

	if (!cache || !key || !klen)
		return -EINVAL;
	h = mb_hash(key, klen);
	s = mb_shard(cache, h);
	mb_lock(&s->lock);
	l = mb_cache_slot(s, key, klen, h);
	if (mb_next(l)) {
		mb_cache_drop(cache, s, l);
		mb_shard_publish(cache, mb_shard_index(h));
	} else {
		err = -ENOENT;
	}
	mb_unlock(&s->lock);
	mb_garbage_free();
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
		out->evictions += st->evictions;
		out->inserts += st->inserts;
	}
	mb_cache_unlock_all(cache);
	/* gets count without the locks: those that returned before this */
	for (i = 0; i < MB_CACHE_STRIPES; i++) {
		out->hits += atomic_load_explicit(&cache->hits[i].hits,
						  memory_order_relaxed);
		out->misses += atomic_load_explicit(&cache->hits[i].misses,
						    memory_order_relaxed);
	}
	return 0;
}

int mb_cache_shard_of(struct mb_cache *cache, const void *key, size_t klen)
{
	(void)cache;
	return mb_shard_index(mb_hash(key, klen));
}

void mb_cache_shard_lock(struct mb_cache *cache, int shard, bool lock)
{
	if (lock)
		mb_lock(&cache->shard[shard].lock);
	else
		mb_unlock(&cache->shard[shard].lock);
}

size_t mb_cache_limbo(struct mb_cache *cache)
{
	size_t n = 0;
	int i;

	mb_cache_lock_all(cache);
	for (i = 0; i < MB_CACHE_SHARDS; i++)
		n += cache->shard[i].limbo_n;
	mb_cache_unlock_all(cache);
	return n;
}
