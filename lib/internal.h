/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Private declarations of libmembroker.  Nothing here is exported from the
 * shared library; unit tests link the static archive and may use it.
 *
 * Helpers for every source file (util.c), usable by the sources engineer:
 *
 *   int mb_read_file(root, path, buf, len)    read a small file under root
 *   int mb_meminfo_read(root, &mi)            MemTotal, MemAvailable,
 *                                             Committed_AS, CommitLimit
 *   uint64_t mb_now_ns(void)                  CLOCK_MONOTONIC in ns
 *   uint64_t mb_self_rss(void)                own RSS in bytes (statm)
 *   void mb_auto_thresholds(total, &lo, &hi)  the kernel's automatic rule
 *   uint32_t mb_classify(avail, lo, hi, prev) LOW/STEADY/HIGH + hysteresis
 *   uint32_t mb_virtual_flags(&mi)            MB_FLAG_VIRTUAL_LOW or 0
 *   bool mb_notification_news(&n, &last)      anything worth announcing
 *   void mb_notification_from_meminfo(...)    a reading as a notification
 *   int mb_poll_interval_ms(avail, lo)        adaptive poll, 5..1000 ms
 *   int mb_path_join(root, path, buf, len)    root + path into buf
 *
 * Sources get the monitor's options through s->opts (root, thresholds)
 * and say which poll events their fd raises in s->events (see struct
 * mb_source_ops below).
 *
 * Every declaration that is private to the library lives here, in one
 * place; nothing else declares library functions (-Wmissing-prototypes
 * keeps it so).
 */
#ifndef MB_INTERNAL_H
#define MB_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "membroker.h"

struct nlmsghdr;
struct mb_source;

#define MB_KIB			1024ULL
#define MB_MIB			(1024ULL * MB_KIB)
#define MB_GIB			(1024ULL * MB_MIB)
#define MB_NSEC_PER_MSEC	1000000ULL
#define MB_NSEC_PER_SEC		1000000000ULL

/* Adaptive polling bounds, the same as the module's defaults */
#define MB_POLL_MIN_MS		5
#define MB_POLL_MAX_MS		1000
/* Committed_AS at or above this percentage of CommitLimit: VIRTUAL_LOW */
#define MB_VIRTUAL_LOW_PERCENT	90

#define MB_MIN(a, b)		((a) < (b) ? (a) : (b))
#define MB_MAX(a, b)		((a) > (b) ? (a) : (b))
#define MB_ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

/* ---------------------------------------------------------------- */
/* util.c                                                            */
/* ---------------------------------------------------------------- */

/** struct mb_meminfo - the /proc/meminfo fields we use, in bytes */
struct mb_meminfo {
	uint64_t total;
	uint64_t available;
	uint64_t committed;
	uint64_t commit_limit;
	bool commit_enforced;	/* vm.overcommit_memory is 2 */
};

int mb_path_join(const char *root, const char *path, char *buf, size_t len);
int mb_read_file(const char *root, const char *path, char *buf, size_t len);
int mb_meminfo_parse(const char *text, struct mb_meminfo *out);
int mb_meminfo_read(const char *root, struct mb_meminfo *out);
uint64_t mb_now_ns(void);
uint64_t mb_self_rss(void);
void mb_auto_thresholds(uint64_t total, uint64_t *low, uint64_t *high);
uint32_t mb_classify(uint64_t avail, uint64_t low, uint64_t high,
		     uint32_t prev_state);
uint32_t mb_virtual_flags(const struct mb_meminfo *mi);
bool mb_notification_news(const struct mb_notification *n,
			  const struct mb_notification *last);
void mb_notification_from_meminfo(struct mb_notification *n, uint32_t source,
				  const struct mb_meminfo *mi, uint64_t low,
				  uint64_t high, uint32_t prev_state,
				  uint64_t now_ns);
int mb_poll_interval_ms(uint64_t avail, uint64_t low);
int mb_opts_copy(void *dst, size_t dst_sz, const void *src);
int mb_name_copy(char *dst, size_t len, const char *name);

/* ---------------------------------------------------------------- */
/* lock.c: every library mutex, so that fork() can take them all     */
/* ---------------------------------------------------------------- */

/*
 * Outer locks are held while user callbacks run (the monitor's dispatch
 * lock); inner locks are never held across a callback or while taking
 * another library lock.  fork() takes every inner lock first; outer ones
 * are made free again in the child when another thread held them (see
 * lock.c).  Never wait on a condition with an outer lock.
 */
enum mb_lock_level {
	MB_LOCK_OUTER,
	MB_LOCK_INNER,
};

struct mb_lock {
	pthread_mutex_t m;
	enum mb_lock_level level;
	bool held;		/* outer locks: held, by @owner */
	pthread_t owner;
	struct mb_lock *prev, *next;
};

void mb_lock_init(struct mb_lock *l, enum mb_lock_level level);
void mb_lock_destroy(struct mb_lock *l);
void mb_lock(struct mb_lock *l);
bool mb_trylock(struct mb_lock *l);
void mb_unlock(struct mb_lock *l);
void mb_cond_wait(pthread_cond_t *c, struct mb_lock *l);
/*
 * Called by the fork child handler with every lock held: forget the work
 * of threads that do not exist in the child.
 */
void mb_broker_after_fork_child(void);
void mb_monitor_after_fork_child(void);

/* ---------------------------------------------------------------- */
/* epoch.c: freeing what readers without a lock may still be reading */
/* ---------------------------------------------------------------- */

/*
 *   r = mb_epoch_enter()      a read begins; NULL on ENOMEM (take a lock)
 *   mb_epoch_leave(r)         it ends; what it found may go
 *   mb_epoch_now()            the stamp of what was unlinked before
 *   mb_epoch_advance()        move the epoch on if every reader is at it;
 *                             the epoch after
 *   mb_epoch_quiet()          no reader is inside: what was unlinked
 *                             before may be freed at once (false too
 *                             when there are many records to look at)
 *   mb_epoch_wait(stamp)      until what was stamped @stamp may be freed:
 *                             the epoch is stamp + 2 (never while inside)
 *   mb_epoch_slot(r)          the record's number, to spread counters
 */
struct mb_epoch_rec;

struct mb_epoch_rec *mb_epoch_enter(void);
void mb_epoch_leave(struct mb_epoch_rec *r);
uint64_t mb_epoch_now(void);
uint64_t mb_epoch_advance(void);
bool mb_epoch_quiet(void);
void mb_epoch_wait(uint64_t stamp);
unsigned int mb_epoch_slot(const struct mb_epoch_rec *r);
void mb_epoch_after_fork_child(void);

/* ---------------------------------------------------------------- */
/* clerk.c / broker.c                                                */
/* ---------------------------------------------------------------- */

struct mb_clerk *mb_clerk_get(struct mb_clerk *clerk);
void mb_clerk_put(struct mb_clerk *clerk);
uint32_t mb_clerk_priority(const struct mb_clerk *clerk);
mb_shrink_fn mb_clerk_shrinker(const struct mb_clerk *clerk, void **arg);
void mb_clerk_set_target(struct mb_clerk *clerk, uint64_t target);
/*
 * A shrink callback that also takes a floor: free at most @bytes, but
 * when the pool is above its max_bytes at least @at_least (<= @bytes),
 * even if that means freeing a little more than @bytes.  mb_cache has
 * one, since it frees whole entries; the broker calls it instead of the
 * clerk's mb_shrink_fn.
 */
typedef int64_t (*mb_shrink_floor_fn)(struct mb_clerk *clerk, uint64_t bytes,
				      uint64_t at_least, void *arg);
void mb_clerk_set_shrink_floor(struct mb_clerk *clerk, mb_shrink_floor_fn fn);
mb_shrink_floor_fn mb_clerk_shrinker_floor(const struct mb_clerk *clerk);
/*
 * A shrink callback that frees whole entries, least recently used first,
 * until it has freed @at_least, without going beyond @at_most (passing
 * over entries too large for what is left of it): mb_cache's, for the
 * system broker, whose asks must be met even when they are smaller than
 * an entry.
 */
typedef int64_t (*mb_shrink_range_fn)(struct mb_clerk *clerk,
				      uint64_t at_least, uint64_t at_most,
				      void *arg);
void mb_clerk_set_shrink_range(struct mb_clerk *clerk, mb_shrink_range_fn fn);
mb_shrink_range_fn mb_clerk_shrinker_range(const struct mb_clerk *clerk);
void mb_clerk_account_shrink(struct mb_clerk *clerk, int64_t ret,
			     uint64_t ns);
/*
 * The broker a clerk belongs to, or NULL.  mb_clerk_claim() sets it only
 * if it was NULL (a clerk joins one broker at a time).
 */
struct mb_broker *mb_clerk_broker(const struct mb_clerk *clerk);
bool mb_clerk_claim(struct mb_clerk *clerk, struct mb_broker *broker);
void mb_clerk_release(struct mb_clerk *clerk);
/* how often a thread began to wait for a member's shrink call (tests) */
uint64_t mb_broker_idle_waits(struct mb_broker *broker);

/* ---------------------------------------------------------------- */
/* the system broker: sysbroker.c, and what it asks of brokers        */
/* ---------------------------------------------------------------- */

/* A pool and its clerks as reported to membrokerd */
struct mb_sys_pool {
	uint32_t id;
	uint64_t min_bytes;
	uint64_t max_bytes;
	char name[32];
};

struct mb_sys_clerk {
	uint32_t id;
	uint32_t priority;
	bool shrinkable;
	uint64_t bytes;
	uint64_t target;
	char name[64];
};

/* What came of one of the daemon's asks */
struct mb_sys_result {
	int32_t status;
	uint64_t freed;
	uint64_t bytes;
	uint64_t cap;
};

uint32_t mb_broker_sys_id(const struct mb_broker *broker);
int mb_broker_sys_snapshot(struct mb_broker *b, struct mb_sys_pool *pool,
			   struct mb_sys_clerk **clerks, size_t *n);
int mb_broker_sys_shrink(struct mb_broker *b, uint32_t id, uint64_t ask,
			 uint64_t at_most, uint32_t state,
			 struct mb_sys_result *out);
int mb_broker_sys_cap(struct mb_broker *b, uint32_t id, uint64_t cap,
		      uint32_t state, struct mb_sys_result *out);
void mb_broker_sys_uncap(struct mb_broker *b);

/*
 * sysbroker.c: a monitor's connection to membrokerd.  The monitor owns
 * one (mb_sys_new() when it is made, mb_sys_close() in mb_monitor_free(),
 * mb_sys_free() with its last reference), runs its I/O from its dispatch
 * (mb_sys_dispatch(), with the dispatch lock held) and tells it what it
 * delivers (mb_sys_note()).  Brokers attach and detach from any thread.
 */
struct mb_sys;

/* epoll data of the connection's fd in the monitor's epoll */
#define MB_SYS_EPOLL_ID		(UINT32_MAX - 1)

int mb_sys_new(struct mb_sys **out, int epfd, int efd);
void mb_sys_close(struct mb_sys *s);
void mb_sys_free(struct mb_sys *s);
uint64_t mb_sys_dispatch(struct mb_sys *s, uint32_t revents, uint64_t now);
void mb_sys_note(struct mb_sys *s, const struct mb_notification *n);
void mb_sys_attach(struct mb_sys *s, struct mb_broker *b);
void mb_sys_detach(struct mb_sys *s, struct mb_broker *b);
bool mb_sys_in_charge(struct mb_sys *s, const struct mb_notification *n);
int mb_sys_status(struct mb_sys *s, struct mb_system_status *out);
void mb_sys_after_fork_child(struct mb_sys *s);
/* tests: the report interval (0: the default), the silence allowed */
void mb_sys_set_timing(struct mb_sys *s, uint32_t report_ms,
		       uint32_t silence_ms);
/* tests: report now, whatever the interval */
void mb_sys_report_now(struct mb_sys *s);

/* monitor.c: the same, for brokers, which know only their monitor */
void mb_monitor_sys_attach(struct mb_monitor *mon, struct mb_broker *b);
void mb_monitor_sys_detach(struct mb_monitor *mon, struct mb_broker *b);
bool mb_monitor_sys_in_charge(struct mb_monitor *mon,
			      const struct mb_notification *n);
struct mb_sys *mb_monitor_sys(struct mb_monitor *mon);

/* ---------------------------------------------------------------- */
/* sources: the contract between the monitor and source_*.c          */
/* ---------------------------------------------------------------- */

/*
 * The monitor (monitor.c) knows how to wait, combine and deliver; a
 * source knows how to measure memory.
 */
/**
 * struct mb_source_ops - one kind of notification source
 * @type:	enum mb_source_type
 * @name:	short name reported to users ("kmod", "psi", ...)
 * @open:	probe and open.  Sets s->fd (or -1 for a timer-only source),
 *		s->events (0 means POLLIN; a PSI trigger or sysfs attribute
 *		is always POLLIN-readable and must say POLLPRI) and s->priv.
 *		s->opts is already set.  Returns 0, or -ENOENT/-ENODEV/
 *		-EOPNOTSUPP/-EACCES when the source is not usable on this
 *		machine (automatic selection then tries the next one), or
 *		another -errno.
 * @dispatch:	called by the monitor when s->fd is readable or the timeout
 *		returned by @timeout_ms expired.  Must not block.
 *		s->revents holds the poll events the monitor's epoll saw on
 *		s->fd since the previous call (0 on a timeout): a PSI
 *		trigger's POLLPRI is consumed by the poll that reports it,
 *		so the source must take it from there rather than poll
 *		again.  A source whose s->events is POLLPRI is called on
 *		every dispatch of the monitor, since a poll of the monitor's
 *		fd by the application's own loop consumes the edge before
 *		the monitor's epoll can report it.
 *		*out arrives holding s->last.  The source stores its latest
 *		reading there (also when it returns 0: the monitor keeps the
 *		figures fresh) and returns 1 if it differs in state or flags
 *		from the previous one or is otherwise worth recording
 *		(thresholds or total changed), 0 if there is nothing new, or
 *		-errno; -ENODEV means it is gone for good and the monitor
 *		closes it.  A source that lost events (ENOBUFS)
 *		resynchronises itself before returning.  The monitor calls
 *		it once right after @open (s->last.state is then
 *		MB_STATE_UNKNOWN) to get the initial reading, and, for a
 *		source with an fd, again while it keeps returning 1 (at most
 *		a few times per round).
 * @refresh:	optional: measure now although nothing signalled, for the
 *		LOW repeat (which must carry fresh figures, not the ones of
 *		the notification it repeats).  Returns as @dispatch.
 *		Without it the monitor calls @dispatch with s->revents 0.
 * @timeout_ms:	milliseconds until @dispatch should be called even if
 *		s->fd is quiet; -1 for never.  May adapt to the headroom above the
 *		low threshold.
 * @close:	release everything @open acquired.  Called once.
 */
struct mb_source_ops {
	enum mb_source_type type;
	const char *name;
	int (*open)(struct mb_source *s);
	int (*dispatch)(struct mb_source *s, struct mb_notification *out);
	int (*refresh)(struct mb_source *s, struct mb_notification *out);
	int (*timeout_ms)(struct mb_source *s);
	void (*close)(struct mb_source *s);
};

/**
 * struct mb_source - an open source, owned by one monitor
 * @ops:	its operations
 * @fd:		pollable fd (POLLIN or POLLPRI), or -1
 * @events:	poll events that mean "call @dispatch" (POLLIN if 0)
 * @revents:	what the monitor's epoll saw on @fd, for @dispatch
 * @priv:	the source's own state
 * @opts:	the monitor's options (root, low_bytes, high_bytes), valid
 *		from @open to @close; root is never NULL
 * @last:	its latest reading (kept by the monitor)
 */
struct mb_source {
	const struct mb_source_ops *ops;
	int fd;
	short events;
	uint32_t revents;
	void *priv;
	const struct mb_monitor_opts *opts;
	struct mb_notification last;
};

extern const struct mb_source_ops mb_source_kmod_ops;
extern const struct mb_source_ops mb_source_cgroup_ops;
extern const struct mb_source_ops mb_source_psi_ops;
extern const struct mb_source_ops mb_source_meminfo_ops;
extern const struct mb_source_ops mb_source_fake_ops;

int mb_source_fake_push(struct mb_source *s, const struct mb_notification *n);
int mb_source_fake_set(struct mb_source *s, const struct mb_notification *n);

/* source_cgroup.c; mb_cgroup_self_dir() is shared with source_psi.c */
int mb_cgroup_self_dir(const char *root, char *buf, size_t len);
int mb_cgroup_parse_limit(const char *text, uint64_t *out);
int mb_cgroup_parse_events(const char *text, uint64_t *out);
int mb_src_cgroup_eval(struct mb_source *s, uint64_t now_ns,
		       struct mb_notification *out);

/* source_psi.c: evaluation with the firing and the time passed in */
int mb_src_psi_eval(struct mb_source *s, bool fired, uint64_t now_ns,
		    struct mb_notification *out);
int mb_psi_parse_some_total(const char *text, uint64_t *us);

/*
 * monitor.c: a broker's reference, which keeps what its unsubscribing
 * needs (locks, subscribers) after mb_monitor_free()
 */
struct mb_monitor *mb_monitor_ref(struct mb_monitor *mon);
void mb_monitor_unref(struct mb_monitor *mon);

/* cache.c, for tests: the shard a key is in, and holding its lock */
int mb_cache_shard_of(struct mb_cache *cache, const void *key, size_t klen);
void mb_cache_shard_lock(struct mb_cache *cache, int shard, bool lock);
/* dropped entries not yet freed: gets may have been reading them */
size_t mb_cache_limbo(struct mb_cache *cache);

/* monitor.c, for tests */
/* make every source due now */
void mb_monitor_force_poll(struct mb_monitor *mon);
/* how often mb_monitor_run() waited for another thread's dispatch */
uint64_t mb_monitor_busy_waits(struct mb_monitor *mon);
/* how long a failing source's fd stays out of epoll (default 1 s) */
void mb_monitor_set_backoff(struct mb_monitor *mon, uint32_t ms);
/*
 * mb_monitor_new() with @ops as the primary source, as if the caller
 * (opts->source) or, for MB_SOURCE_AUTO, the automatic choice had
 * picked it
 */
int mb_monitor_new_ops(struct mb_monitor **out,
		       const struct mb_monitor_opts *opts,
		       const struct mb_source_ops *ops);
/*
 * What the fake source measures now, without notifying: the figures a
 * refresh (the LOW repeat) finds.  Its state must be the current one.
 */
int mb_monitor_fake_set(struct mb_monitor *mon,
			const struct mb_notification *n);

/* kmod.c: the module client's parts, for source_kmod.c and the tests */
int mb_kmod_nlerr(int nlerr);
int mb_kmod_parse_state(struct nlmsghdr *nlh, struct mb_notification *out);
int mb_kmod_parse_config(struct nlmsghdr *nlh, struct mb_kmod_config *out);
int mb_kmod_parse_ctrl(struct nlmsghdr *nlh);
size_t mb_kmod_extack_msg(const struct nlmsghdr *nlh, char *buf, size_t len);
int mb_kmod_refresh(struct mb_kmod *k);

/*
 * source_kmod.c.  The source talks to the module through these, so that
 * tests can put a script in the module's place.
 *   recv:	as mb_kmod_recv() (-ENODEV: the family went away)
 *   get_state:	as mb_kmod_get_state() (-ENOENT: the family is gone)
 *   refresh:	as mb_kmod_refresh(): >= 0 when the family is there
 *   get_fd:	the fd to poll, or -1
 *   close:	release the handle
 */
struct mb_src_kmod_io {
	int (*recv)(void *h, struct mb_notification *n);
	int (*get_state)(void *h, struct mb_notification *n);
	int (*refresh)(void *h);
	int (*get_fd)(void *h);
	void (*close)(void *h);
};

/* Make @s a kmod source on handle @h (owned from now on, even on error) */
int mb_src_kmod_attach(struct mb_source *s, const struct mb_src_kmod_io *io,
		       void *h);
int mb_src_kmod_feed(struct mb_notification *cur, bool *have, int r,
		     const struct mb_notification *n);

#endif /* MB_INTERNAL_H */
