// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Every mutex of the library is an mb_lock, kept on one list so that a
 * fork() can take them all first (pthread_atfork): a child then never
 * inherits a lock that a thread which does not exist in it was holding.
 *
 * Outer locks (held while user callbacks run) are taken before inner
 * ones, which is the order the library itself nests them in: a callback
 * may take inner locks, and no inner lock is held while another library
 * lock is taken.
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
	int lv;

	pthread_mutex_lock(&mb_locks_lock);
	for (lv = MB_LOCK_OUTER; lv <= MB_LOCK_INNER; lv++)
		for (l = mb_locks[lv]; l; l = l->next)
			pthread_mutex_lock(&l->m);
}

static void mb_fork_release(void)
{
	struct mb_lock *l;
	int lv;

	for (lv = MB_LOCK_INNER; lv >= MB_LOCK_OUTER; lv--)
		for (l = mb_locks[lv]; l; l = l->next)
			pthread_mutex_unlock(&l->m);
	pthread_mutex_unlock(&mb_locks_lock);
}

static void mb_fork_child(void)
{
	/* with every lock held: forget what other threads were doing */
	mb_broker_after_fork_child();
	mb_monitor_after_fork_child();
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

void mb_lock(struct mb_lock *l)
{
	pthread_mutex_lock(&l->m);
}

bool mb_trylock(struct mb_lock *l)
{
	return pthread_mutex_trylock(&l->m) == 0;
}

void mb_unlock(struct mb_lock *l)
{
	pthread_mutex_unlock(&l->m);
}

void mb_cond_wait(pthread_cond_t *c, struct mb_lock *l)
{
	pthread_cond_wait(c, &l->m);
}
