// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Epoch-based reclamation: memory that readers without a lock may still
 * be reading is freed only once every one of them has moved on.
 *
 * A reader (a cache get) runs between mb_epoch_enter() and
 * mb_epoch_leave().  Entering, it announces in a record of its own
 * thread, a cache line no other thread writes, the global epoch it saw.
 * A writer first unlinks what it removes, so that no reader arriving
 * later can reach it, and then stamps it with the global epoch it reads
 * (mb_epoch_now()).  The global epoch moves on by one only when every
 * reader inside is at the current one (mb_epoch_advance()).  Once it is
 * two past a stamp, nothing stamped so can still be read: a reader that
 * reached it had entered before the unlink, so announced an epoch no
 * later than the stamp, and it holds the epoch back from passing
 * stamp + 1 until it leaves.  (K. Fraser, "Practical lock-freedom",
 * 2004; the scheme of crossbeam-epoch; liburcu's grace periods are the
 * same idea.)
 *
 * Ordering.  The announcement, the readers' loads of pointers that
 * writers unlink, the unlinking stores, and every load or change of the
 * epoch and of the records are sequentially consistent, so that a
 * writer's stamp (read after its unlink) and a reader's announcement
 * (stored before its loads) cannot miss each other.  On x86 that costs a
 * reader one exchange on its own line and plain loads; nothing a reader
 * does writes a line another thread writes.
 *
 * Records are never freed: one per thread that ever read, on a list that
 * only grows; a thread's record goes to the next new thread when it
 * exits.  In the child of fork() only the forking thread exists: the
 * others' records are released there (mb_epoch_after_fork_child()), or
 * one of them left inside would hold the epoch back for good.  The
 * library is linked -z nodelete, as the destructor of a thread's record
 * lives in it.
 *
 * What is unlinked while no reader is inside at all can go at once
 * (mb_epoch_quiet()): a reader that found it would have announced itself
 * before the unlink, and would be seen.  That saves the wait where few
 * threads read, or none does just then.
 *
 * A wait for the epoch (mb_epoch_wait()) waits for readers' gets, which
 * neither block nor call out; it must not be called by a thread that is
 * itself between enter and leave.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

struct mb_epoch_rec {
	/* 0 outside; inside: (the epoch it saw << 1) | 1 */
	_Atomic uint64_t state;
	_Atomic bool owned;			/* by a live thread */
	unsigned int slot;			/* its number, from 0 */
	struct mb_epoch_rec *next;		/* fixed once on the list */
} __attribute__((aligned(64)));

/* records mb_epoch_quiet() looks at before it gives up */
#define MB_EPOCH_QUIET_SCAN	16

static _Alignas(64) _Atomic uint64_t mb_epoch = 1;
static _Alignas(64) _Atomic(struct mb_epoch_rec *) mb_epoch_recs;
static _Atomic unsigned int mb_epoch_nrecs;
static pthread_once_t mb_epoch_once = PTHREAD_ONCE_INIT;
static pthread_key_t mb_epoch_key;
static bool mb_epoch_key_ok;
static _Thread_local struct mb_epoch_rec *mb_epoch_self;

/* The record is free for the next thread that comes. */
static void mb_epoch_release(struct mb_epoch_rec *r)
{
	atomic_store_explicit(&r->state, 0, memory_order_release);
	atomic_store_explicit(&r->owned, false, memory_order_release);
}

/*
 * At thread exit.  A later destructor of the same thread that gets from
 * a cache takes a record again (and has it released in the next round).
 */
static void mb_epoch_thread_exit(void *arg)
{
	mb_epoch_self = NULL;
	mb_epoch_release(arg);
}

static void mb_epoch_key_init(void)
{
	mb_epoch_key_ok = !pthread_key_create(&mb_epoch_key,
					      mb_epoch_thread_exit);
}

/* This thread's record: one a thread left, or a new one; NULL on ENOMEM */
static struct mb_epoch_rec *mb_epoch_register(void)
{
	struct mb_epoch_rec *r;
	bool no;

	pthread_once(&mb_epoch_once, mb_epoch_key_init);
	if (!mb_epoch_key_ok)
		return NULL;
	for (r = atomic_load(&mb_epoch_recs); r; r = r->next) {
		no = false;
		if (!atomic_load_explicit(&r->owned, memory_order_relaxed) &&
		    atomic_compare_exchange_strong(&r->owned, &no, true))
			break;
	}
	if (!r) {
		r = aligned_alloc(64, sizeof(*r));
		if (!r)
			return NULL;
		memset(r, 0, sizeof(*r));
		atomic_init(&r->state, 0);
		atomic_init(&r->owned, true);
		r->slot = atomic_fetch_add(&mb_epoch_nrecs, 1);
		r->next = atomic_load(&mb_epoch_recs);
		while (!atomic_compare_exchange_weak(&mb_epoch_recs, &r->next,
						     r))
			;
	}
	if (pthread_setspecific(mb_epoch_key, r)) {
		mb_epoch_release(r);
		return NULL;
	}
	mb_epoch_self = r;
	return r;
}

struct mb_epoch_rec *mb_epoch_enter(void)
{
	struct mb_epoch_rec *r = mb_epoch_self;

	if (!r) {
		r = mb_epoch_register();
		if (!r)
			return NULL;
	}
	atomic_store(&r->state, atomic_load(&mb_epoch) << 1 | 1);
	return r;
}

void mb_epoch_leave(struct mb_epoch_rec *r)
{
	atomic_store_explicit(&r->state, 0, memory_order_release);
}

unsigned int mb_epoch_slot(const struct mb_epoch_rec *r)
{
	return r->slot;
}

uint64_t mb_epoch_now(void)
{
	return atomic_load(&mb_epoch);
}

uint64_t mb_epoch_advance(void)
{
	uint64_t e = atomic_load(&mb_epoch), s;
	struct mb_epoch_rec *r;

	for (r = atomic_load(&mb_epoch_recs); r; r = r->next) {
		s = atomic_load(&r->state);
		if ((s & 1) && s >> 1 != e)
			return e;	/* a reader has yet to see e */
	}
	/* on failure, another thread moved it on: e is the new epoch */
	if (atomic_compare_exchange_strong(&mb_epoch, &e, e + 1))
		e++;
	return e;
}

bool mb_epoch_quiet(void)
{
	struct mb_epoch_rec *r;
	int n = 0;

	for (r = atomic_load(&mb_epoch_recs); r; r = r->next)
		if (++n > MB_EPOCH_QUIET_SCAN || (atomic_load(&r->state) & 1))
			return false;
	return true;
}

void mb_epoch_wait(uint64_t stamp)
{
	struct timespec ts = { 0, 50000 };
	unsigned int n = 0;

	while (mb_epoch_advance() < stamp + 2) {
		if (n++ < 16) {
			sched_yield();
		} else {
			nanosleep(&ts, NULL);	/* let a preempted reader run */
			if (ts.tv_nsec < 1000000)
				ts.tv_nsec *= 2;
		}
	}
}

void mb_epoch_after_fork_child(void)
{
	struct mb_epoch_rec *r;

	for (r = atomic_load(&mb_epoch_recs); r; r = r->next)
		if (r != mb_epoch_self)
			mb_epoch_release(r);
}
