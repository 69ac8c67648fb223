// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * mb_ring: a fixed-size, overwrite-oldest ring of fixed-size records with
 * lock-free writers and readers.
 *
 * A writer takes a sequence number with one fetch-add on the head, which
 * decides its slot.  Each slot has a state word: the sequence number of
 * the record it holds, shifted left by two, plus two bits:
 *
 *   BUSY    a writer is copying data into the slot;
 *   STOLEN  (with BUSY) a newer writer came for the slot while it was busy;
 *           the busy writer publishes the slot as LOST for the sequence
 *           number in the word when it finishes;
 *   LOST    no data: the record with this sequence number never made it.
 *
 * Only the writer that set BUSY ever writes the slot's data, so a record
 * is never torn.  A writer that finds its slot busy (which takes a writer
 * a whole lap behind) or already holding a newer record does not wait: its
 * record is lost, and readers count it as missed.  Readers copy the data
 * and check the state word before and after (a seqlock): a slot that
 * changed under them was overwritten, and counts as missed too.
 *
 * The data is stored in relaxed atomic 64-bit words so that a reader that
 * races with a writer reads stale or new words, never undefined
 * behaviour, and the state word tells it which.
 */
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define MB_RING_BUSY	1ULL
#define MB_RING_STOLEN	2ULL
#define MB_RING_LOST	4ULL
#define MB_RING_SHIFT	3

struct mb_ring {
	size_t capacity;
	size_t record_size;
	size_t words;		/* 64-bit words per record */
	_Alignas(64) _Atomic uint64_t head;	/* last sequence number taken */
	_Alignas(64) _Atomic uint64_t *state;	/* per slot */
	_Atomic uint64_t *data;			/* capacity * words */
};

static inline uint64_t mb_ring_seq(uint64_t st)
{
	return st >> MB_RING_SHIFT;
}

int mb_ring_new(struct mb_ring **out, size_t capacity, size_t record_size)
{
	struct mb_ring *r;
	size_t words;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!capacity || !record_size)
		return -EINVAL;
	words = (record_size + 7) / 8;
	if (capacity > SIZE_MAX / 8 / words)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->capacity = capacity;
	r->record_size = record_size;
	r->words = words;
	r->state = calloc(capacity, sizeof(*r->state));
	r->data = calloc(capacity * words, sizeof(*r->data));
	if (!r->state || !r->data) {
		mb_ring_free(r);
		return -ENOMEM;
	}
	atomic_init(&r->head, 0);
	*out = r;
	return 0;
}

void mb_ring_free(struct mb_ring *ring)
{
	if (!ring)
		return;
	free(ring->state);
	free(ring->data);
	free(ring);
}

static void mb_ring_store(struct mb_ring *r, size_t slot, const void *record)
{
	_Atomic uint64_t *d = r->data + slot * r->words;
	const unsigned char *src = record;
	size_t i, left = r->record_size;
	uint64_t w;

	for (i = 0; i < r->words; i++) {
		w = 0;
		memcpy(&w, src + i * 8, MB_MIN(left, (size_t)8));
		left -= MB_MIN(left, (size_t)8);
		atomic_store_explicit(&d[i], w, memory_order_relaxed);
	}
}

static void mb_ring_load(const struct mb_ring *r, size_t slot, void *record)
{
	_Atomic uint64_t *d = r->data + slot * r->words;
	unsigned char *dst = record;
	size_t i, left = r->record_size;
	uint64_t w;

	for (i = 0; i < r->words; i++) {
		w = atomic_load_explicit(&d[i], memory_order_relaxed);
		memcpy(dst + i * 8, &w, MB_MIN(left, (size_t)8));
		left -= MB_MIN(left, (size_t)8);
	}
}

/* Publish our record, or LOST for whoever stole the slot meanwhile. */
static void mb_ring_finish(_Atomic uint64_t *st, uint64_t mine)
{
	uint64_t cur = mine, next;

	for (;;) {
		if (cur == mine)
			next = mine & ~MB_RING_BUSY;
		else
			next = (cur & ~(MB_RING_BUSY | MB_RING_STOLEN)) |
			       MB_RING_LOST;
		if (atomic_compare_exchange_weak_explicit(st, &cur, next,
				memory_order_release, memory_order_relaxed))
			return;
	}
}

int64_t mb_ring_push(struct mb_ring *ring, const void *record)
{
	_Atomic uint64_t *st;
	uint64_t seq, cur, mine;
	size_t slot;

	if (!ring || !record)
		return -EINVAL;
	seq = atomic_fetch_add_explicit(&ring->head, 1,
					memory_order_relaxed) + 1;
	slot = (seq - 1) % ring->capacity;
	st = &ring->state[slot];
	mine = (seq << MB_RING_SHIFT) | MB_RING_BUSY;

	cur = atomic_load_explicit(st, memory_order_relaxed);
	for (;;) {
		if (mb_ring_seq(cur) > seq)
			return (int64_t)seq;	/* already overwritten */
		if (cur & MB_RING_BUSY) {
			/*
			 * a writer a lap behind is still copying: hand it
			 * our number so that it publishes LOST instead
			 */
			if (atomic_compare_exchange_weak_explicit(st, &cur,
					(seq << MB_RING_SHIFT) | MB_RING_BUSY |
					MB_RING_STOLEN,
					memory_order_relaxed,
					memory_order_relaxed))
				return (int64_t)seq;
			continue;
		}
		if (atomic_compare_exchange_weak_explicit(st, &cur, mine,
				memory_order_acquire, memory_order_relaxed))
			break;
	}
	/* readers that see the new data must see BUSY first */
	atomic_thread_fence(memory_order_release);
	mb_ring_store(ring, slot, record);
	mb_ring_finish(st, mine);
	return (int64_t)seq;
}

int mb_ring_read(struct mb_ring *ring, uint64_t from_seq, void *buf,
		 uint64_t *seqs, size_t max, uint64_t *missed)
{
	uint64_t head, oldest, seq, st, st2, lost = 0;
	unsigned char *dst = buf;
	size_t slot, n = 0;

	if (!ring || (!buf && max))
		return -EINVAL;
	if (max > INT_MAX)
		max = INT_MAX;
	if (!from_seq)
		from_seq = 1;
	head = atomic_load_explicit(&ring->head, memory_order_acquire);
	oldest = head > ring->capacity ? head - ring->capacity + 1 : 1;
	seq = from_seq;
	if (seq < oldest) {
		lost = oldest - seq;
		seq = oldest;
	}
	for (; seq <= head && n < max; seq++) {
		slot = (seq - 1) % ring->capacity;
		st = atomic_load_explicit(&ring->state[slot],
					  memory_order_acquire);
		if (mb_ring_seq(st) > seq || (mb_ring_seq(st) == seq &&
					      (st & MB_RING_LOST))) {
			lost++;
			continue;
		}
		/* not written yet, or being written: stop, keep order */
		if (mb_ring_seq(st) < seq || (st & MB_RING_BUSY))
			break;
		mb_ring_load(ring, slot, dst + n * ring->record_size);
		atomic_thread_fence(memory_order_acquire);
		st2 = atomic_load_explicit(&ring->state[slot],
					   memory_order_relaxed);
		if (st2 != st) {
			lost++;		/* overwritten while we copied */
			continue;
		}
		if (seqs)
			seqs[n] = seq;
		n++;
	}
	if (missed)
		*missed = lost;
	return (int)n;
}

uint64_t mb_ring_last_seq(const struct mb_ring *ring)
{
	if (!ring)
		return 0;
	return atomic_load_explicit(&((struct mb_ring *)ring)->head,
				    memory_order_acquire);
}
