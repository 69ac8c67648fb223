/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the library's VM tests share: filling caches with values a real
 * application would keep, finding a clerk in the snapshot, and reading
 * MemAvailable the way the kernel reports it.
 */
#ifndef LIB_TEST_H
#define LIB_TEST_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "membroker.h"

#define LT_SEEN_LOG	256

/*
 * Every notification a monitor delivered, for a test to wait on: a LOW
 * that the broker's shrinking ends at once is followed by STEADY before
 * the test may look, so looking at the latest is not enough.
 */
struct lt_seen {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct mb_notification log[LT_SEEN_LOG];
	uint64_t count;
};

/*
 * What the cache tests run: a monitor on the module (its own thread), a
 * broker whose LOW step (75 % of the pool) needs both caches, two caches
 * in it, and a log of the notifications subscribed after the broker, so
 * that a notification a test sees has been acted on.
 */
struct lt_pool {
	struct mb_monitor *mon;
	struct mb_broker *broker;
	struct mb_cache *a, *b;
	struct lt_seen seen;
};

/* Build @p (zeroed by the caller); 0 or -errno, -ENODEV if no module */
int lt_pool_open(struct lt_pool *p, const char *pool, const char *a,
		 const char *b);
/* Free what lt_pool_open() built, even partly */
void lt_pool_close(struct lt_pool *p);

typedef bool (*lt_match_fn)(const struct mb_notification *n, const void *arg);

void lt_seen_init(struct lt_seen *s);
/* The subscriber: mb_monitor_subscribe(mon, lt_seen_note, &seen) */
void lt_seen_note(struct mb_monitor *mon, const struct mb_notification *n,
		  void *arg);
/* How many notifications were delivered so far */
uint64_t lt_seen_count(struct lt_seen *s);
/*
 * Wait up to @timeout_s for a notification after the first *@next ones
 * that @match accepts; *@next is then where the next wait starts.
 * Returns 0 or -ETIMEDOUT.
 */
int lt_seen_wait(struct lt_seen *s, uint64_t *next, lt_match_fn match,
		 const void *arg, int timeout_s, struct mb_notification *out);

/*
 * Above the mmap threshold the tests set (128 KiB), so that a value the
 * cache evicts goes back to the kernel at once.
 */
#define LT_VAL_BYTES	(256 * 1024)

/* Insert LT_VAL_BYTES values under keys base.. until @bytes are offered */
int lt_cache_fill(struct mb_cache *cache, uint32_t base, uint64_t bytes);

/* The snapshot of the clerk called @name; -ENOENT if there is none */
int lt_clerk_info(const char *name, struct mb_clerk_info *out);

/* MemAvailable in bytes or -errno; plain syscalls only (safe after fork) */
int64_t lt_mem_available(void);

#endif
