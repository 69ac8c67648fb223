// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Clerks: named accounts of memory (SQL Server's memory clerks).
 *
 * mb_clerk_charge() is on the application's allocation path, so it must
 * not bounce one cache line between CPUs.  A clerk keeps MB_CLERK_SLOTS
 * counters, each on its own cache line; a thread always adds to the same
 * slot (chosen round robin the first time it charges anything), and the
 * total is the sum of the slots.  A slot may go negative (one thread
 * charges, another uncharges); only the sum is meaningful.
 *
 * "Peak" is the largest total seen when the slots were summed ("folded"):
 * on every mb_clerk_bytes(), snapshot and broker evaluation, and by every
 * thread on each MB_CLERK_FOLD_EVERY-th charge it makes.  It is therefore
 * a lower bound of the true peak that misses only spikes shorter than
 * MB_CLERK_FOLD_EVERY charges per thread between folds: the price of a
 * charge that touches no shared cache line.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define MB_CLERK_SLOTS		32	/* power of two */
#define MB_CLERK_FOLD_EVERY	64
#define MB_CLERK_DEF_PRIORITY	50

struct mb_clerk_slot {
	_Alignas(64) _Atomic int64_t v;
};

struct mb_clerk {
	struct mb_clerk_slot slot[MB_CLERK_SLOTS];
	char name[64];
	_Atomic int refs;
	uint32_t priority;
	mb_shrink_fn shrink;
	mb_shrink_floor_fn shrink_floor;	/* mb_cache's, see internal.h */
	mb_shrink_range_fn shrink_range;	/* mb_cache's, see internal.h */
	void *arg;
	_Atomic uint64_t target;
	_Atomic uint64_t peak;
	_Atomic uint64_t shrink_count;
	_Atomic uint64_t shrink_freed;
	_Atomic uint64_t shrink_errors;
	_Atomic uint64_t shrink_ns;
	_Atomic uint64_t shrink_max_ns;
	_Atomic(struct mb_broker *) broker;
	struct mb_clerk *prev, *next;	/* registry, under mb_clerks_lock */
};

static struct mb_lock mb_clerks_lock;
static struct mb_clerk *mb_clerks;
static pthread_once_t mb_clerks_once = PTHREAD_ONCE_INIT;
static _Atomic unsigned int mb_clerk_next_slot;
static _Thread_local unsigned int mb_clerk_tls_slot = UINT_MAX;
static _Thread_local unsigned int mb_clerk_tls_charges;

static void mb_clerks_init(void)
{
	mb_lock_init(&mb_clerks_lock, MB_LOCK_INNER);
}

static unsigned int mb_clerk_my_slot(void)
{
	unsigned int n;

	if (mb_clerk_tls_slot == UINT_MAX) {
		n = atomic_fetch_add_explicit(&mb_clerk_next_slot, 1,
					      memory_order_relaxed);
		mb_clerk_tls_slot = n % MB_CLERK_SLOTS;
	}
	return mb_clerk_tls_slot;
}

/* Sum the slots and remember the largest sum seen. */
static uint64_t mb_clerk_fold(const struct mb_clerk *c)
{
	struct mb_clerk *clerk = (struct mb_clerk *)c;
	uint64_t peak, total, sum = 0;
	int i;

	/*
	 * Modulo 2^64: a slot may be negative (uncharged on another CPU
	 * than charged), and unsigned wrap-around is defined where a signed
	 * overflow would not be; the true total is what the sum means.
	 */
	for (i = 0; i < MB_CLERK_SLOTS; i++)
		sum += (uint64_t)atomic_load_explicit(&clerk->slot[i].v,
						      memory_order_relaxed);
	total = (int64_t)sum > 0 ? sum : 0;
	peak = atomic_load_explicit(&clerk->peak, memory_order_relaxed);
	while (total > peak &&
	       !atomic_compare_exchange_weak_explicit(&clerk->peak, &peak,
			total, memory_order_relaxed, memory_order_relaxed))
		;
	return total;
}

int mb_clerk_new(struct mb_clerk **out, const char *name,
		 const struct mb_clerk_opts *opts)
{
	struct mb_clerk_opts o;
	struct mb_clerk *c;
	int err;

	if (!out)
		return -EINVAL;
	*out = NULL;
	err = mb_opts_copy(&o, sizeof(o), opts);
	if (err)
		return err;
	if (!opts)
		o.priority = MB_CLERK_DEF_PRIORITY;
	if (o.priority > 100 || o.reserved)
		return -EINVAL;
	c = aligned_alloc(64, sizeof(*c));
	if (!c)
		return -ENOMEM;
	memset(c, 0, sizeof(*c));
	err = mb_name_copy(c->name, sizeof(c->name), name);
	if (err) {
		free(c);
		return err;
	}
	atomic_init(&c->refs, 1);
	c->priority = o.priority;
	c->shrink = o.shrink;
	c->arg = o.arg;
	atomic_init(&c->target, UINT64_MAX);

	pthread_once(&mb_clerks_once, mb_clerks_init);
	mb_lock(&mb_clerks_lock);
	c->next = mb_clerks;
	if (mb_clerks)
		mb_clerks->prev = c;
	mb_clerks = c;
	mb_unlock(&mb_clerks_lock);
	*out = c;
	return 0;
}

struct mb_clerk *mb_clerk_get(struct mb_clerk *clerk)
{
	atomic_fetch_add_explicit(&clerk->refs, 1, memory_order_relaxed);
	return clerk;
}

void mb_clerk_put(struct mb_clerk *clerk)
{
	if (clerk && atomic_fetch_sub_explicit(&clerk->refs, 1,
					       memory_order_acq_rel) == 1)
		free(clerk);
}

void mb_clerk_free(struct mb_clerk *clerk)
{
	struct mb_broker *b;

	if (!clerk)
		return;
	/* waits for a shrink of this clerk in another thread to return */
	b = mb_clerk_broker(clerk);
	if (b)
		mb_broker_remove_clerk(b, clerk);
	mb_lock(&mb_clerks_lock);
	if (clerk->prev)
		clerk->prev->next = clerk->next;
	else
		mb_clerks = clerk->next;
	if (clerk->next)
		clerk->next->prev = clerk->prev;
	mb_unlock(&mb_clerks_lock);
	/* a broker that is calling our shrinker holds the last reference */
	mb_clerk_put(clerk);
}

const char *mb_clerk_name(const struct mb_clerk *clerk)
{
	return clerk ? clerk->name : NULL;
}

int mb_clerk_charge(struct mb_clerk *clerk, uint64_t bytes)
{
	unsigned int i;

	if (!clerk || bytes > INT64_MAX)
		return -EINVAL;
	i = mb_clerk_my_slot();
	atomic_fetch_add_explicit(&clerk->slot[i].v, (int64_t)bytes,
				  memory_order_relaxed);
	if (++mb_clerk_tls_charges % MB_CLERK_FOLD_EVERY == 0)
		mb_clerk_fold(clerk);
	return 0;
}

int mb_clerk_uncharge(struct mb_clerk *clerk, uint64_t bytes)
{
	if (!clerk || bytes > INT64_MAX)
		return -EINVAL;
	atomic_fetch_sub_explicit(&clerk->slot[mb_clerk_my_slot()].v,
				  (int64_t)bytes, memory_order_relaxed);
	return 0;
}

uint64_t mb_clerk_bytes(const struct mb_clerk *clerk)
{
	return clerk ? mb_clerk_fold(clerk) : 0;
}

uint64_t mb_clerk_target(const struct mb_clerk *clerk)
{
	if (!clerk)
		return UINT64_MAX;
	return atomic_load_explicit(&((struct mb_clerk *)clerk)->target,
				    memory_order_relaxed);
}

int mb_clerk_snapshot(struct mb_clerk_info *out, size_t max)
{
	struct mb_clerk_info *ci;
	struct mb_clerk *c;
	size_t n = 0;

	if (!out && max)
		return -EINVAL;
	pthread_once(&mb_clerks_once, mb_clerks_init);
	mb_lock(&mb_clerks_lock);
	for (c = mb_clerks; c; c = c->next, n++) {
		if (n >= max)
			continue;
		ci = &out[n];
		memset(ci, 0, sizeof(*ci));
		memcpy(ci->name, c->name, sizeof(ci->name));
		ci->bytes = mb_clerk_fold(c);
		ci->peak = atomic_load(&c->peak);
		ci->target = atomic_load(&c->target);
		ci->shrink_count = atomic_load(&c->shrink_count);
		ci->shrink_freed = atomic_load(&c->shrink_freed);
		ci->shrink_errors = atomic_load(&c->shrink_errors);
		ci->shrink_ns = atomic_load(&c->shrink_ns);
		ci->shrink_max_ns = atomic_load(&c->shrink_max_ns);
		ci->priority = c->priority;
	}
	mb_unlock(&mb_clerks_lock);
	return n > INT_MAX ? INT_MAX : (int)n;
}

uint32_t mb_clerk_priority(const struct mb_clerk *clerk)
{
	return clerk->priority;
}

mb_shrink_fn mb_clerk_shrinker(const struct mb_clerk *clerk, void **arg)
{
	*arg = clerk->arg;
	return clerk->shrink;
}

void mb_clerk_set_shrink_floor(struct mb_clerk *clerk, mb_shrink_floor_fn fn)
{
	clerk->shrink_floor = fn;
}

mb_shrink_floor_fn mb_clerk_shrinker_floor(const struct mb_clerk *clerk)
{
	return clerk->shrink_floor;
}

void mb_clerk_set_shrink_range(struct mb_clerk *clerk, mb_shrink_range_fn fn)
{
	clerk->shrink_range = fn;
}

mb_shrink_range_fn mb_clerk_shrinker_range(const struct mb_clerk *clerk)
{
	return clerk->shrink_range;
}

void mb_clerk_set_target(struct mb_clerk *clerk, uint64_t target)
{
	atomic_store_explicit(&clerk->target, target, memory_order_relaxed);
}

/* Bookkeeping of one shrink call that returned @ret after @ns. */
void mb_clerk_account_shrink(struct mb_clerk *clerk, int64_t ret,
			     uint64_t ns)
{
	uint64_t max;

	atomic_fetch_add(&clerk->shrink_count, 1);
	if (ret < 0)
		atomic_fetch_add(&clerk->shrink_errors, 1);
	else
		atomic_fetch_add(&clerk->shrink_freed, (uint64_t)ret);
	atomic_fetch_add(&clerk->shrink_ns, ns);
	max = atomic_load(&clerk->shrink_max_ns);
	while (ns > max &&
	       !atomic_compare_exchange_weak(&clerk->shrink_max_ns, &max, ns))
		;
}

struct mb_broker *mb_clerk_broker(const struct mb_clerk *clerk)
{
	return atomic_load(&((struct mb_clerk *)clerk)->broker);
}

bool mb_clerk_claim(struct mb_clerk *clerk, struct mb_broker *broker)
{
	struct mb_broker *none = NULL;

	return atomic_compare_exchange_strong(&clerk->broker, &none, broker);
}

void mb_clerk_release(struct mb_clerk *clerk)
{
	atomic_store(&clerk->broker, NULL);
	atomic_store(&clerk->target, UINT64_MAX);
}
