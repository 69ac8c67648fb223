/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libmembroker: memory notifications, clerks, brokers, ring buffers and
 * shrinkable caches for Linux applications.
 *
 * Every function that returns int returns >= 0 on success and -errno on
 * failure.  Every handle is opaque.  Destructors accept NULL.
 */
#ifndef MEMBROKER_H
#define MEMBROKER_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define MB_API __attribute__((visibility("default")))
#else
#define MB_API
#endif

/* ------------------------------------------------------------------ */
/* Notifications                                                       */
/* ------------------------------------------------------------------ */

/** enum mb_state - physical memory state, same values as the kernel ABI */
enum mb_state {
	MB_STATE_UNKNOWN = 0,
	MB_STATE_LOW = 1,	/* PHYSICAL_LOW: give memory back */
	MB_STATE_STEADY = 2,	/* hold steady */
	MB_STATE_HIGH = 3,	/* PHYSICAL_HIGH: caches may grow */
};

/* Bits of mb_notification.flags */
#define MB_FLAG_VIRTUAL_LOW	(1U << 0) /* committed memory near the limit */

/** enum mb_source_type - where notifications come from */
enum mb_source_type {
	MB_SOURCE_AUTO = 0,	/* kmod, else cgroup, else psi, else meminfo */
	MB_SOURCE_KMOD,		/* membroker.ko over generic netlink */
	MB_SOURCE_CGROUP,	/* cgroup v2 limit of this process */
	MB_SOURCE_PSI,		/* PSI trigger + MemAvailable */
	MB_SOURCE_MEMINFO,	/* /proc/meminfo polling */
	MB_SOURCE_FAKE,		/* driven by mb_monitor_fake_push() */
	MB_SOURCE_COUNT,
};

/**
 * struct mb_notification - one reading of memory, as delivered to callbacks
 * and recorded in the monitor ring.
 * @time_ns:	 CLOCK_MONOTONIC when it was taken
 * @seq:	 source sequence number (kernel seq for kmod; else a counter)
 * @state:	 enum mb_state
 * @flags:	 MB_FLAG_*
 * @source:	 enum mb_source_type that produced it
 * @reason:	 kernel's enum membroker_reason for kmod, else 0
 * @available:	 bytes available (system-wide, or below the cgroup limit)
 * @total:	 bytes total (RAM, or the cgroup limit)
 * @low:	 low threshold in bytes
 * @high:	 high threshold in bytes
 * @committed:	 Committed_AS (0 where unknown)
 * @commit_limit: CommitLimit (0 where unknown)
 * @process_rss: this process's resident set size when it was recorded
 */
struct mb_notification {
	uint64_t time_ns;
	uint64_t seq;
	uint32_t state;
	uint32_t flags;
	uint32_t source;
	uint32_t reason;
	uint64_t available;
	uint64_t total;
	uint64_t low;
	uint64_t high;
	uint64_t committed;
	uint64_t commit_limit;
	uint64_t process_rss;
};

/**
 * mb_state_name() - "low", "steady", "high" or "unknown"
 */
MB_API const char *mb_state_name(uint32_t state);

/**
 * mb_source_name() - "kmod", "cgroup", "psi", "meminfo", "fake" or "auto"
 */
MB_API const char *mb_source_name(uint32_t source);

/**
 * mb_source_parse() - the enum mb_source_type for a name, or -EINVAL
 */
MB_API int mb_source_parse(const char *name);

/* ------------------------------------------------------------------ */
/* Ring buffers                                                        */
/* ------------------------------------------------------------------ */

/*
 * Fixed capacity, overwrite-oldest.  Writers never block (a writer that
 * overtakes a slow reader overwrites); readers get a consistent copy of
 * each record together with its sequence number, and learn how many
 * records they missed.  Sequence numbers start at 1.
 */
struct mb_ring;

/**
 * mb_ring_new() - create a ring of @capacity records of @record_size bytes
 * @out: the new ring
 * Return: 0 or -EINVAL (zero sizes) / -ENOMEM.
 */
MB_API int mb_ring_new(struct mb_ring **out, size_t capacity,
		       size_t record_size);
/** mb_ring_free() - free @ring; accepts NULL */
MB_API void mb_ring_free(struct mb_ring *ring);

/**
 * mb_ring_push() - append a record, overwriting the oldest when full
 * Return: the record's sequence number (>= 1), or -EINVAL.
 */
MB_API int64_t mb_ring_push(struct mb_ring *ring, const void *record);

/**
 * mb_ring_read() - copy records with sequence numbers >= @from_seq
 * @buf:	room for @max records of the ring's record size
 * @seqs:	if not NULL, receives each copied record's sequence number
 * @missed:	if not NULL, receives how many records after @from_seq were
 *		overwritten before they could be read
 * Every sequence number from @from_seq up to where the copy stopped is
 * either copied or counted in @missed, so the next call should start at
 * @from_seq + return value + *@missed (a @from_seq of 0 is taken as 1).
 * The copy stops early at a record a writer is still writing.
 * Return: the number of records copied (oldest first), or -errno.
 */
MB_API int mb_ring_read(struct mb_ring *ring, uint64_t from_seq, void *buf,
			uint64_t *seqs, size_t max, uint64_t *missed);

/** mb_ring_last_seq() - sequence number of the newest record, 0 if none */
MB_API uint64_t mb_ring_last_seq(const struct mb_ring *ring);

/* ------------------------------------------------------------------ */
/* Resource monitor                                                    */
/* ------------------------------------------------------------------ */

struct mb_monitor;

/*
 * Options that may grow: the first field is the size of the structure the
 * caller was compiled with.  Use MB_OPTS(mb_monitor_opts, .source = ...).
 */
struct mb_monitor_opts {
	size_t sz;
	/*
	 * enum mb_source_type.  AUTO honours $MEMBROKER_SOURCE, else takes
	 * the first available of kmod, cgroup, psi, meminfo, and adds the
	 * cgroup source when the process's cgroup has a limit.
	 */
	uint32_t source;
	/* extra sources combined with the primary one, bit (1 << type) */
	uint32_t extra_sources;
	/* monitor ring capacity in records (0: 1024) */
	uint32_t ring_capacity;
	/* thresholds for sources that have none of their own (0: automatic) */
	uint64_t low_bytes;
	uint64_t high_bytes;
	/* root for /proc and /sys files, for tests (NULL: "/") */
	const char *root;
	/*
	 * while the combined state is LOW, deliver it again this often so
	 * that brokers keep shrinking in steps until the pressure ends
	 * (0: 1000 ms; UINT32_MAX: never).  Each repeat carries figures
	 * the sources measured for it.
	 */
	uint32_t low_repeat_ms;
};

#define MB_OPTS(type, ...) \
	((struct type){ .sz = sizeof(struct type), __VA_ARGS__ })

/**
 * typedef mb_monitor_fn - called for every new notification
 * Runs with no library lock held, from mb_monitor_dispatch() or the
 * monitor's thread, one call at a time per monitor.  May call into the
 * library (and fork()); mb_monitor_dispatch() of the same monitor returns
 * 0 meanwhile, and the monitor must not be freed from it.
 */
typedef void (*mb_monitor_fn)(struct mb_monitor *mon,
			      const struct mb_notification *n, void *arg);

/**
 * mb_monitor_new() - open a monitor on the chosen source(s)
 * @opts: may be NULL for defaults
 * Return: 0, -ENOENT when the requested source is not available, -errno.
 */
MB_API int mb_monitor_new(struct mb_monitor **out,
			  const struct mb_monitor_opts *opts);
/**
 * mb_monitor_free() - stop the thread, close the sources, free @mon
 * Accepts NULL.  Not from one of @mon's own callbacks.
 */
MB_API void mb_monitor_free(struct mb_monitor *mon);

/**
 * mb_monitor_source() - the enum mb_source_type in use
 * The primary source chosen when the monitor was created (by the caller,
 * $MEMBROKER_SOURCE or the automatic order) while it is open; a source
 * that is gone for good is closed, and when none is left the monitor
 * falls back to MB_SOURCE_MEMINFO.  Each notification says which source
 * produced it (the kmod source speaks for /proc/meminfo, and says so,
 * while the module is unloaded).
 * Return: the type, -EINVAL, or -ENODEV when no source is left.
 */
MB_API int mb_monitor_source(const struct mb_monitor *mon);

/**
 * mb_monitor_get_fd() - a pollable fd (POLLIN) for event loops
 * When it is readable, call mb_monitor_dispatch().
 */
MB_API int mb_monitor_get_fd(const struct mb_monitor *mon);

/**
 * mb_monitor_dispatch() - handle what is pending, never blocks
 * A source that fails is asked again at its next event or timeout; one
 * that is gone for good is closed, and when none is left the monitor
 * falls back to polling /proc/meminfo (and says so in the next
 * notification's source).  A call while another thread dispatches returns
 * 0 at once; the running dispatch picks up what this one saw.
 * Return: number of notifications delivered, else 0, or the -errno of a
 * source that failed.
 */
MB_API int mb_monitor_dispatch(struct mb_monitor *mon);

/**
 * mb_monitor_run() - wait and dispatch until @timeout_ms elapses (-1: until
 * mb_monitor_stop()).  A failing source does not end it.
 * Return: 0, or -errno when waiting itself failed.
 */
MB_API int mb_monitor_run(struct mb_monitor *mon, int timeout_ms);
/**
 * mb_monitor_stop() - make mb_monitor_run() return (any thread, or a
 * callback); a stop requested before run() makes the next run() return
 */
MB_API void mb_monitor_stop(struct mb_monitor *mon);

/**
 * mb_monitor_start_thread() - dispatch from an internal thread, for
 * programs without an event loop
 * Return: 0, -EALREADY (one runs), -EINVAL, or pthread_create()'s -errno.
 */
MB_API int mb_monitor_start_thread(struct mb_monitor *mon);
/**
 * mb_monitor_stop_thread() - stop and join the internal thread
 * Return: 0 (also when none runs), -EDEADLK from the thread itself.
 */
MB_API int mb_monitor_stop_thread(struct mb_monitor *mon);

/**
 * mb_monitor_get_state() - the latest combined notification
 * (QueryMemoryResourceNotification).  Return: 0 or -errno.
 */
MB_API int mb_monitor_get_state(struct mb_monitor *mon,
				struct mb_notification *out);

/**
 * mb_monitor_subscribe() - add a callback for every notification
 * @fn:		called with @arg, see mb_monitor_fn
 * Subscribers are called in the order they subscribed.
 * Return: an id >= 0 for mb_monitor_unsubscribe(), -EINVAL, -ENOMEM.
 */
MB_API int mb_monitor_subscribe(struct mb_monitor *mon, mb_monitor_fn fn,
				void *arg);
/**
 * mb_monitor_unsubscribe() - remove the callback @id
 * Waits for a running call of that callback to return, unless called
 * from that very callback; no call starts afterwards.
 * Return: 0, -EINVAL, -ENOENT (no such id).
 */
MB_API int mb_monitor_unsubscribe(struct mb_monitor *mon, int id);

/** mb_monitor_ring() - the ring of struct mb_notification records */
MB_API struct mb_ring *mb_monitor_ring(struct mb_monitor *mon);

/**
 * mb_monitor_fake_push() - inject a notification (MB_SOURCE_FAKE only)
 * It is delivered by the next mb_monitor_dispatch().
 */
MB_API int mb_monitor_fake_push(struct mb_monitor *mon,
				const struct mb_notification *n);

/* ------------------------------------------------------------------ */
/* Clerks                                                              */
/* ------------------------------------------------------------------ */

struct mb_clerk;

/**
 * typedef mb_shrink_fn - give back up to @bytes; return the bytes freed
 * (>= 0) or -errno.  Never more than @bytes: a broker's min_bytes relies
 * on it (when nothing small enough can go, free nothing; the next LOW
 * step asks for more).  Never called concurrently with itself for one
 * clerk, and with no library lock held.
 */
typedef int64_t (*mb_shrink_fn)(struct mb_clerk *clerk, uint64_t bytes,
				void *arg);

struct mb_clerk_opts {
	size_t sz;
	mb_shrink_fn shrink;	/* optional */
	void *arg;		/* passed to shrink */
	/*
	 * cost of dropping this clerk's memory: 0 (cheap, drop first) ..
	 * 100 (expensive, drop last); 50 when @opts is NULL
	 */
	uint32_t priority;
};

/**
 * mb_clerk_new() - a clerk named @name (1..63 bytes), in the snapshot
 * @opts: may be NULL (no shrink callback, priority 50)
 * Return: 0, -EINVAL, -ENAMETOOLONG, -ENOMEM.
 */
MB_API int mb_clerk_new(struct mb_clerk **out, const char *name,
			const struct mb_clerk_opts *opts);
/** mb_clerk_free() - removes it from its broker first; accepts NULL */
MB_API void mb_clerk_free(struct mb_clerk *clerk);
/** mb_clerk_name() - the name given to mb_clerk_new() */
MB_API const char *mb_clerk_name(const struct mb_clerk *clerk);

/** mb_clerk_charge() - account @bytes (hot path, per-CPU partitioned) */
MB_API int mb_clerk_charge(struct mb_clerk *clerk, uint64_t bytes);
/** mb_clerk_uncharge() - give back @bytes charged earlier (any thread) */
MB_API int mb_clerk_uncharge(struct mb_clerk *clerk, uint64_t bytes);
/** mb_clerk_bytes() - current total */
MB_API uint64_t mb_clerk_bytes(const struct mb_clerk *clerk);
/**
 * mb_clerk_target() - the bytes its broker allows now (UINT64_MAX when not
 * in a broker or unlimited)
 */
MB_API uint64_t mb_clerk_target(const struct mb_clerk *clerk);

/**
 * struct mb_clerk_info - one row of mb_clerk_snapshot()
 * @name:	 as given to mb_clerk_new()
 * @bytes:	 charged now
 * @peak:	 the largest total seen (see mb_clerk_charge())
 * @target:	 what its broker allows (UINT64_MAX: no limit)
 * @shrink_count: calls of its shrink callback
 * @shrink_freed: bytes they reported freed
 * @shrink_errors: calls that returned -errno
 * @priority:	 0 (cheap to drop) .. 100 (expensive)
 * @shrink_ns:	 time spent in its shrink callback, in total
 * @shrink_max_ns: the longest single call: a slow callback shows here
 */
struct mb_clerk_info {
	char name[64];
	uint64_t bytes;
	uint64_t peak;
	uint64_t target;
	uint64_t shrink_count;
	uint64_t shrink_freed;
	uint64_t shrink_errors;
	uint32_t priority;
	uint64_t shrink_ns;
	uint64_t shrink_max_ns;
};

/**
 * mb_clerk_snapshot() - every live clerk of the process
 * (sys.dm_os_memory_clerks).  Return: the number of clerks (which may
 * exceed @max: call again with more room), or -errno.
 */
MB_API int mb_clerk_snapshot(struct mb_clerk_info *out, size_t max);

/* ------------------------------------------------------------------ */
/* Brokers                                                             */
/* ------------------------------------------------------------------ */

struct mb_broker;

struct mb_broker_opts {
	size_t sz;
	uint64_t min_bytes;	/* never shrink the pool below (default 0) */
	uint64_t max_bytes;	/* never let the pool exceed (0: unlimited) */
	/* fraction of the pool asked back per LOW step, percent (default 10) */
	uint32_t shrink_step_percent;
	/* call malloc_trim(0) after a shrink that freed something */
	bool trim;
	uint32_t ring_capacity;	/* decisions kept (0: 1024) */
};

/** enum mb_decision - what a broker decided for a clerk */
enum mb_decision {
	MB_DECISION_STABLE = 0,
	MB_DECISION_GROW = 1,
	MB_DECISION_SHRINK = 2,
};

/**
 * struct mb_broker_record - one entry of the broker ring
 * @time_ns:	  the notification's time
 * @pool:	  the broker's name
 * @clerk:	  the clerk's name
 * @decision:	  enum mb_decision
 * @state:	  enum mb_state that caused it
 * @allocated:	  the clerk's bytes when deciding
 * @predicted:	  @allocated plus the growth expected by the next decision
 * @target:	  the bytes the clerk may use from now on
 * @freed:	  what its shrink callback reported freed (0 on failure)
 * @error:	  the -errno its shrink callback returned, else 0
 * @duration_ns:  how long the shrink callback ran (0: not called)
 */
struct mb_broker_record {
	uint64_t time_ns;
	char pool[32];
	char clerk[64];
	uint32_t decision;
	uint32_t state;
	uint64_t allocated;
	uint64_t predicted;
	uint64_t target;
	uint64_t freed;
	int32_t error;
	uint32_t reserved;	/* 0 */
	uint64_t duration_ns;
};

/**
 * mb_broker_new() - a pool named @name, driven by @mon's notifications
 * (@mon may be NULL: then drive it with mb_broker_notify()).
 * LOW shrinks the pool a step per notification (the monitor repeats LOW
 * while it lasts), STEADY holds every clerk at its size, and HIGH lets
 * every clerk grow at once: up to its share of max_bytes, or without
 * limit in a pool without one, until a notification that is not HIGH.
 */
MB_API int mb_broker_new(struct mb_broker **out, const char *name,
			 struct mb_monitor *mon,
			 const struct mb_broker_opts *opts);
/**
 * mb_broker_free() - unsubscribe, release every clerk (waiting for running
 * shrink calls), free; accepts NULL
 */
MB_API void mb_broker_free(struct mb_broker *broker);
/**
 * mb_broker_add_clerk() - put @clerk in the pool
 * Return: 0, -EEXIST (already in it), -EBUSY (in another broker).
 */
MB_API int mb_broker_add_clerk(struct mb_broker *broker,
			       struct mb_clerk *clerk);
/**
 * mb_broker_remove_clerk() - take @clerk out (its target becomes
 * UINT64_MAX); waits for its running shrink call unless called from it.
 * Return: 0 or -ENOENT.
 */
MB_API int mb_broker_remove_clerk(struct mb_broker *broker,
				  struct mb_clerk *clerk);
/** mb_broker_notify() - act on @n as if the monitor delivered it */
MB_API int mb_broker_notify(struct mb_broker *broker,
			    const struct mb_notification *n);
/** mb_broker_ring() - the ring of struct mb_broker_record */
MB_API struct mb_ring *mb_broker_ring(struct mb_broker *broker);

/* ------------------------------------------------------------------ */
/* Caches                                                              */
/* ------------------------------------------------------------------ */

struct mb_cache;

struct mb_cache_opts {
	size_t sz;
	uint64_t max_bytes;	/* hard bound (0: only the broker's target) */
	uint32_t priority;	/* of its clerk, see mb_clerk_opts */
};

struct mb_cache_stats {
	uint64_t bytes;
	uint64_t entries;
	uint64_t hits;
	uint64_t misses;
	uint64_t evictions;
	uint64_t inserts;
};

/** mb_cache_new() - a bounded LRU whose memory is its own clerk @name */
MB_API int mb_cache_new(struct mb_cache **out, const char *name,
			const struct mb_cache_opts *opts);
/** mb_cache_free() - leaves its broker, frees entries and clerk; NULL ok */
MB_API void mb_cache_free(struct mb_cache *cache);
/** mb_cache_clerk() - the clerk, to add it to a broker */
MB_API struct mb_clerk *mb_cache_clerk(struct mb_cache *cache);
/**
 * mb_cache_put() - insert or replace; evicts LRU entries to honour the
 * target.  Return: 0, -E2BIG if the entry alone exceeds the bound, -errno.
 */
MB_API int mb_cache_put(struct mb_cache *cache, const void *key,
			size_t klen, const void *val, size_t vlen);
/**
 * mb_cache_get() - copy the value into @buf (up to @buflen bytes)
 * Return: the value's full length, -ENOENT on a miss, -errno.
 */
MB_API int64_t mb_cache_get(struct mb_cache *cache, const void *key,
			    size_t klen, void *buf, size_t buflen);
/** mb_cache_del() - remove an entry.  Return: 0 or -ENOENT. */
MB_API int mb_cache_del(struct mb_cache *cache, const void *key,
			size_t klen);
/** mb_cache_stats() - a consistent copy of the counters */
MB_API int mb_cache_stats(struct mb_cache *cache,
			  struct mb_cache_stats *out);

/* ------------------------------------------------------------------ */
/* Kernel module client (low level)                                    */
/* ------------------------------------------------------------------ */

struct mb_kmod;

/* Bits of mb_kmod_config.set_mask: which fields mb_kmod_set_config sends */
#define MB_KCFG_LOW		(1U << 0)
#define MB_KCFG_HIGH		(1U << 1)
#define MB_KCFG_HYSTERESIS	(1U << 2)
#define MB_KCFG_POLL_MIN	(1U << 3)
#define MB_KCFG_POLL_MAX	(1U << 4)
#define MB_KCFG_RATELIMIT	(1U << 5)
#define MB_KCFG_VIRTUAL_LOW	(1U << 6)

/** struct mb_kmod_config - the module's configuration (0 bytes: automatic) */
struct mb_kmod_config {
	uint64_t low_bytes;
	uint64_t high_bytes;
	uint64_t hysteresis_bytes;
	uint32_t poll_min_ms;
	uint32_t poll_max_ms;
	uint32_t ratelimit_ms;
	uint32_t virtual_low_percent;
	uint32_t history_size;	/* read only */
	uint32_t set_mask;	/* MB_KCFG_*, for mb_kmod_set_config() */
};

/*
 * A handle survives the module being unloaded and loaded again: requests
 * then fail with -ENOENT, and work again once it is back (the family is
 * resolved anew).
 */

/** mb_kmod_open() - connect; -ENOENT when the module is not loaded */
MB_API int mb_kmod_open(struct mb_kmod **out);
/** mb_kmod_close() - close both sockets and free @k; accepts NULL */
MB_API void mb_kmod_close(struct mb_kmod *k);
/**
 * mb_kmod_get_state() - MEMBROKER_CMD_GET_STATE: the module evaluates now
 * Return: 0, -ENOENT when the module is not loaded, -errno.
 */
MB_API int mb_kmod_get_state(struct mb_kmod *k, struct mb_notification *out);
/**
 * mb_kmod_get_config() - MEMBROKER_CMD_GET_CONFIG
 * Return: 0, -ENOENT when the module is not loaded, -errno.
 */
MB_API int mb_kmod_get_config(struct mb_kmod *k, struct mb_kmod_config *out);
/**
 * mb_kmod_set_config() - send the fields named in @cfg->set_mask
 * @errmsg: if not NULL, receives the kernel's extack message on failure
 * Return: 0, -EPERM, -EINVAL, -ENOENT (module not loaded), -errno.
 */
MB_API int mb_kmod_set_config(struct mb_kmod *k,
			      const struct mb_kmod_config *cfg,
			      char *errmsg, size_t errlen);
/** typedef mb_kmod_history_fn - return non-zero to stop the walk */
typedef int (*mb_kmod_history_fn)(const struct mb_notification *n,
				  void *arg);
/** mb_kmod_get_history() - MEMBROKER_CMD_GET_HISTORY, oldest first */
MB_API int mb_kmod_get_history(struct mb_kmod *k, mb_kmod_history_fn fn,
			       void *arg);
/**
 * mb_kmod_subscribe() - join the "notify" group (non-blocking socket), and
 * nlctrl's, to hear of the module being unloaded and loaded again
 */
MB_API int mb_kmod_subscribe(struct mb_kmod *k);
/** mb_kmod_get_fd() - the subscribed socket, for poll() */
MB_API int mb_kmod_get_fd(const struct mb_kmod *k);
/**
 * mb_kmod_recv() - read one pending notification
 * Return: 1 with *out filled; 0 if none is pending; -ENOBUFS if some were
 * lost, or the module was loaded again (its sequence numbers start anew):
 * resynchronise with mb_kmod_get_state(); -ENODEV when the module was
 * unloaded (nothing more arrives until it is back, then -ENOBUFS);
 * -EMSGSIZE or -EBADMSG for a notification that could not be read
 * (resynchronise too); -errno.
 */
MB_API int mb_kmod_recv(struct mb_kmod *k, struct mb_notification *out);

#ifdef __cplusplus
}
#endif

#endif /* MEMBROKER_H */
