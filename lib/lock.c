// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Every mutex of the library is an mb_lock, kept on one list so that
 * fork() cannot leave the child a lock held by a thread that does not
 * exist there.
 *
 * Inner locks are never held across a user callback or while taking
 * another library lock, so the pthread_atfork prepare handler can take
 * them all: it waits at most for short critical sections, and the child
 * starts with every one of them free and the data they guard consistent.
 * The one exception, a cache taking all its shard locks, takes them in
 * the order of the list (the last initialised first), which is the
 * prepare handler's order too.
 *
 * Outer locks (a monitor's dispatch lock) are held while user callbacks
 * run, which may take any time or call fork() themselves; taking them
 * before fork would stall every fork behind a slow callback and deadlock
 * a fork from inside one.  They are left alone, and the child handler
 * initialises afresh those that another thread held: what they guard
 * belongs to a dispatch that will never finish in the child, whose
 * monitor may only be freed there.  One the forking thread holds itself
 * stays held: the child returns from fork() into that very dispatch,
 * which releases it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "internal.h"

static pthread_mutex_t mb_locks_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mb_lock *mb_locks[2];	/* list heads, per level */
static pthread_once_t mb_atfork_once = PTHREAD_ONCE_INIT;

static void mb_fork_prepare(void)
{
	struct mb_lock *l;

	pthread_mutex_lock(&mb_locks_lock);
	for (l = mb_locks[MB_LOCK_INNER]; l; l = l->next)
		pthread_mutex_lock(&l->m);
}

static void mb_fork_release(void)
{
	struct mb_lock *l;

	for (l = mb_locks[MB_LOCK_INNER]; l; l = l->next)
		pthread_mutex_unlock(&l->m);
	pthread_mutex_unlock(&mb_locks_lock);
}

static void mb_fork_child(void)
{
	struct mb_lock *l;

	/* outer locks of threads that did not come along: free again */
	for (l = mb_locks[MB_LOCK_OUTER]; l; l = l->next) {
		if (l->held && !pthread_equal(l->owner, pthread_self())) {
			pthread_mutex_init(&l->m, NULL);
			l->held = false;
		}
	}
	/* with every inner lock held: forget what other threads were doing */
	mb_broker_after_fork_child();
	mb_monitor_after_fork_child();
	mb_epoch_after_fork_child();
	mb_fork_release();
}

static void mb_atfork_register(void)
{
	pthread_atfork(mb_fork_prepare, mb_fork_release, mb_fork_child);
}

void mb_lock_init(struct mb_lock *l, enum mb_lock_level level)
{
	pthread_once(&mb_atfork_once, mb_atfork_register);
	pthread_mutex_init(&l->m, NULL);
	l->level = level;
	l->held = false;
	l->prev = NULL;
	pthread_mutex_lock(&mb_locks_lock);
	l->next = mb_locks[level];
	if (l->next)
		l->next->prev = l;
	mb_locks[level] = l;
	pthread_mutex_unlock(&mb_locks_lock);
}

void mb_lock_destroy(struct mb_lock *l)
{
	pthread_mutex_lock(&mb_locks_lock);
	if (l->prev)
		l->prev->next = l->next;
	else
		mb_locks[l->level] = l->next;
	if (l->next)
		l->next->prev = l->prev;
	pthread_mutex_unlock(&mb_locks_lock);
	pthread_mutex_destroy(&l->m);
}

/* Who holds an outer lock, for the fork child handler. */
static void mb_lock_taken(struct mb_lock *l)
{
	if (l->level == MB_LOCK_OUTER) {
		l->owner = pthread_self();
		l->held = true;
	}
}

void mb_lock(struct mb_lock *l)
{
	pthread_mutex_lock(&l->m);
	mb_lock_taken(l);
}

bool mb_trylock(struct mb_lock *l)
{
	if (pthread_mutex_trylock(&l->m))
		return false;
	mb_lock_taken(l);
	return true;
}

void mb_unlock(struct mb_lock *l)
{
	if (l->level == MB_LOCK_OUTER)
		l->held = false;
	pthread_mutex_unlock(&l->m);
}

void mb_cond_wait(pthread_cond_t *c, struct mb_lock *l)
{
	pthread_cond_wait(c, &l->m);
}
