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

/**
 * enum mb_state - physical memory state, same values as the kernel ABI
 * @MB_STATE_UNKNOWN: no reading yet: the source has not measured anything
 *	(only seen in mb_monitor_get_state() before the first reading)
 * @MB_STATE_LOW: available memory is below the low threshold: give memory
 *	back (shrink caches, trim heaps); left only at low + hysteresis
 * @MB_STATE_STEADY: between the thresholds: hold steady (do not grow
 *	much: a broker allows a quarter of the headroom above low)
 * @MB_STATE_HIGH: available memory is above the high threshold: caches may
 *	grow; left only at high - hysteresis
 *
 * Values 1..3 are those of enum membroker_state in the kernel ABI.  The
 * flags (MB_FLAG_VIRTUAL_LOW) are independent of the state.
 */
enum mb_state {
	MB_STATE_UNKNOWN = 0,
	MB_STATE_LOW = 1,	/* PHYSICAL_LOW: give memory back */
	MB_STATE_STEADY = 2,	/* hold steady */
	MB_STATE_HIGH = 3,	/* PHYSICAL_HIGH: caches may grow */
};

/* Bits of mb_notification.flags */
/*
 * MB_FLAG_VIRTUAL_LOW: the kernel is about to refuse new commitments of
 * address space: vm.overcommit_memory is 2 (strict accounting) and
 * Committed_AS is near CommitLimit.  Never set in overcommit modes 0 and
 * 1, where the commit limit is not enforced (the module's rule).
 */
#define MB_FLAG_VIRTUAL_LOW	(1U << 0) /* commit limit nearly reached */

/**
 * enum mb_source_type - where notifications come from
 * @MB_SOURCE_AUTO: let the monitor choose: $MEMBROKER_SOURCE if set, else
 *	the first available of kmod, cgroup, psi and meminfo
 * @MB_SOURCE_KMOD: the membroker kernel module over generic netlink; event
 *	driven, and sees reclaim, hotplug and the OOM killer first
 * @MB_SOURCE_CGROUP: the tightest cgroup v2 limit (memory.max or
 *	memory.high) above this process, against the cgroup's usage
 * @MB_SOURCE_PSI: a PSI memory trigger plus MemAvailable thresholds
 * @MB_SOURCE_MEMINFO: polls /proc/meminfo at an adaptive interval; works
 *	everywhere
 * @MB_SOURCE_FAKE: driven by mb_monitor_fake_push(), for tests and demos
 * @MB_SOURCE_COUNT: the number of types, not a source
 *
 * The names mb_source_name() returns and mb_source_parse() accepts are
 * "auto", "kmod", "cgroup", "psi", "meminfo" and "fake".
 */
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
 *
 * A monitor combining several sources delivers the most severe reading
 * (LOW beats STEADY beats HIGH) with the flags of all of them OR'ed; the
 * other fields are those of the source that decided the state.
 * @process_rss is filled in by the monitor when it delivers a
 * notification, and is 0 in readings that were not delivered by one
 * (mb_kmod_get_state(), the initial mb_monitor_get_state()).
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
 * mb_state_name() - the name of a state, for messages
 * @state: an enum mb_state value
 *
 * Context: Any thread; the string is static and never freed.
 * Return: "low", "steady", "high", or "unknown" for MB_STATE_UNKNOWN and
 * any value the library does not know.  Never NULL.
 */
MB_API const char *mb_state_name(uint32_t state);

/**
 * mb_source_name() - the name of a source type, for messages
 * @source: an enum mb_source_type value, such as mb_monitor_source()
 *	returns or mb_notification.source holds
 *
 * The names are those mb_source_parse() and $MEMBROKER_SOURCE accept.
 *
 * Context: Any thread; the string is static and never freed.
 * Return: "kmod", "cgroup", "psi", "meminfo", "fake" or "auto"; "unknown"
 * for a value the library does not know.  Never NULL.
 */
MB_API const char *mb_source_name(uint32_t source);

/**
 * mb_source_parse() - the source type for a name
 * @name: "auto", "kmod", "cgroup", "psi", "meminfo" or "fake"; matched
 *	exactly (case matters); may be NULL
 *
 * This is how the monitor reads $MEMBROKER_SOURCE; tools use it for
 * their command line.
 *
 * Context: Any thread.
 * Return: the enum mb_source_type (>= 0), or -EINVAL for NULL or an
 * unknown name.
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
 * @out: receives the new ring; set to NULL on failure
 * @capacity: how many records it keeps before it overwrites the oldest
 * @record_size: the size of every record, in bytes
 *
 * The ring belongs to the caller, who frees it with mb_ring_free().  The
 * rings that monitors and brokers hand out belong to them instead.
 *
 * Context: Any thread.
 * Return: 0, -EINVAL when @out is NULL, a size is 0 or the ring would
 * not fit in memory, or -ENOMEM.
 */
MB_API int mb_ring_new(struct mb_ring **out, size_t capacity,
		       size_t record_size);
/**
 * mb_ring_free() - free a ring made by mb_ring_new()
 * @ring: the ring, or NULL (nothing is done)
 *
 * Not for the rings of mb_monitor_ring() and mb_broker_ring(): their
 * owner frees them.
 *
 * Context: No other thread may use @ring any more.
 */
MB_API void mb_ring_free(struct mb_ring *ring);

/**
 * mb_ring_push() - append a record, overwriting the oldest when full
 * @ring: the ring
 * @record: the record to copy in, of the ring's record size
 *
 * The record is copied; @record may be reused as soon as this returns.
 * A writer never waits: if a writer a whole lap behind is still copying
 * into the same slot, one of the two records is lost, and readers count
 * it as missed.
 *
 * Context: Any thread, concurrently with other writers and readers;
 * lock-free, no allocation.
 * Return: the record's sequence number (>= 1), or -EINVAL when @ring or
 * @record is NULL.
 */
MB_API int64_t mb_ring_push(struct mb_ring *ring, const void *record);

/**
 * mb_ring_read() - copy records with sequence numbers >= @from_seq
 * @ring: the ring
 * @from_seq: the first sequence number wanted (0 is taken as 1)
 * @buf:	room for @max records of the ring's record size; may be NULL
 *		only when @max is 0
 * @seqs:	if not NULL, receives each copied record's sequence number
 * @max: the most records to copy
 * @missed:	if not NULL, receives how many records after @from_seq were
 *		overwritten before they could be read
 *
 * Every sequence number from @from_seq up to where the copy stopped is
 * either copied or counted in @missed, so the next call should start at
 * @from_seq + return value + *@missed (a @from_seq of 0 is taken as 1).
 * The copy stops early at a record a writer is still writing.  A record
 * is never torn: one overwritten while it was being copied counts as
 * missed.
 *
 * Context: Any thread, concurrently with writers and other readers;
 * lock-free, never blocks.
 * Return: the number of records copied (oldest first), or -EINVAL when
 * @ring is NULL or @buf is NULL with @max > 0.
 */
MB_API int mb_ring_read(struct mb_ring *ring, uint64_t from_seq, void *buf,
			uint64_t *seqs, size_t max, uint64_t *missed);

/**
 * mb_ring_last_seq() - sequence number of the newest record
 * @ring: the ring, or NULL
 *
 * A record with this number may still be being written; mb_ring_read()
 * stops before it until it is complete.
 *
 * Context: Any thread; lock-free.
 * Return: the newest sequence number taken by a writer, 0 when nothing
 * was pushed yet or @ring is NULL.
 */
MB_API uint64_t mb_ring_last_seq(const struct mb_ring *ring);

/* ------------------------------------------------------------------ */
/* Resource monitor                                                    */
/* ------------------------------------------------------------------ */

struct mb_monitor;

/**
 * struct mb_monitor_opts - options of mb_monitor_new()
 * @sz: sizeof(struct mb_monitor_opts) as the caller was compiled; set by
 *	MB_OPTS()
 * @source: the primary source, enum mb_source_type.  MB_SOURCE_AUTO
 *	honours $MEMBROKER_SOURCE, else takes the first available of kmod,
 *	cgroup, psi and meminfo, and adds the cgroup source when the
 *	process's cgroup has a limit.  A source named here (or in
 *	$MEMBROKER_SOURCE) is used alone, plus @extra_sources.
 * @extra_sources: more sources combined with the primary one, one bit
 *	(1 << type) per enum mb_source_type; bit 0 (AUTO) is invalid
 * @ring_capacity: capacity of the monitor's ring of notifications, in
 *	records (0: 1024)
 * @low_bytes: low threshold for the sources that have none of their own
 *	(meminfo, psi, and kmod while the module is unloaded); 0: automatic
 * @high_bytes: high threshold for the same sources; 0: automatic.  When
 *	both are set, @low_bytes must be below @high_bytes.
 * @root: directory that stands for "/" when the sources read /proc and
 *	/sys, for tests (NULL: "/"); copied, need not outlive the call
 * @low_repeat_ms: while the combined state is LOW, deliver it again this
 *	often, with figures measured afresh, so that brokers keep shrinking
 *	in steps until the pressure ends (0: 1000 ms; UINT32_MAX: never)
 * @reserved: must be 0
 *	(room for a later field: a library that finds it non-zero refuses
 *	the options with -EINVAL, rather than ignore what it cannot know)
 * @reserved2: must be 0, as @reserved
 *
 * Options may grow: the first field is the size of the structure the
 * caller was compiled with, so build it with MB_OPTS(mb_monitor_opts,
 * .source = ...).  Fields a newer header adds must be left 0 for an older
 * library, which refuses them otherwise.  A smaller @sz than this
 * structure (the first release's) is refused with -EINVAL, as are the
 * other options structures' with a smaller @sz.
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
	uint32_t reserved;	/* 0 */
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
	uint32_t reserved2;	/* 0 */
};

#ifndef __cplusplus
#define MB_OPTS(type, ...) \
	((struct type){ .sz = sizeof(struct type), __VA_ARGS__ })
#else
/*
 * C++ has no compound literals, and designated initialisers only from
 * C++20, where the fields left out still warn under -Wextra.  There
 * MB_OPTS() is a lambda called at once: it value-initialises the struct
 * (all zero), sets sz and assigns each ".field = value" given, in order
 * (16 at most), so that the same call compiles as C and as C++11 and
 * later without a warning.  In C++ it cannot initialise a variable at
 * namespace scope (the lambda captures by reference).
 */
#define MB_OPTS(type, ...) \
	([&]() { \
		struct type mb_opts_ = type(); \
		mb_opts_.sz = sizeof(struct type); \
		MB_OPTS_SET_(mb_opts_, __VA_ARGS__) \
		return mb_opts_; \
	}())
#define MB_OPTS_SET_(o, ...) \
	MB_OPTS_CAT_(MB_OPTS_SET_, MB_OPTS_N_(__VA_ARGS__))(o, __VA_ARGS__)
#define MB_OPTS_CAT_(a, b) MB_OPTS_CAT2_(a, b)
#define MB_OPTS_CAT2_(a, b) a##b
#define MB_OPTS_N_(...) MB_OPTS_N2_(__VA_ARGS__, 16, 15, 14, 13, 12, 11, \
	10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)
#define MB_OPTS_N2_(a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, \
	a13, a14, a15, a16, n, ...) n
#define MB_OPTS_SET_1(o, a) (void)(o a);
#define MB_OPTS_SET_2(o, a, ...) (void)(o a); MB_OPTS_SET_1(o, __VA_ARGS__)
#define MB_OPTS_SET_3(o, a, ...) (void)(o a); MB_OPTS_SET_2(o, __VA_ARGS__)
#define MB_OPTS_SET_4(o, a, ...) (void)(o a); MB_OPTS_SET_3(o, __VA_ARGS__)
#define MB_OPTS_SET_5(o, a, ...) (void)(o a); MB_OPTS_SET_4(o, __VA_ARGS__)
#define MB_OPTS_SET_6(o, a, ...) (void)(o a); MB_OPTS_SET_5(o, __VA_ARGS__)
#define MB_OPTS_SET_7(o, a, ...) (void)(o a); MB_OPTS_SET_6(o, __VA_ARGS__)
#define MB_OPTS_SET_8(o, a, ...) (void)(o a); MB_OPTS_SET_7(o, __VA_ARGS__)
#define MB_OPTS_SET_9(o, a, ...) (void)(o a); MB_OPTS_SET_8(o, __VA_ARGS__)
#define MB_OPTS_SET_10(o, a, ...) (void)(o a); MB_OPTS_SET_9(o, __VA_ARGS__)
#define MB_OPTS_SET_11(o, a, ...) (void)(o a); MB_OPTS_SET_10(o, __VA_ARGS__)
#define MB_OPTS_SET_12(o, a, ...) (void)(o a); MB_OPTS_SET_11(o, __VA_ARGS__)
#define MB_OPTS_SET_13(o, a, ...) (void)(o a); MB_OPTS_SET_12(o, __VA_ARGS__)
#define MB_OPTS_SET_14(o, a, ...) (void)(o a); MB_OPTS_SET_13(o, __VA_ARGS__)
#define MB_OPTS_SET_15(o, a, ...) (void)(o a); MB_OPTS_SET_14(o, __VA_ARGS__)
#define MB_OPTS_SET_16(o, a, ...) (void)(o a); MB_OPTS_SET_15(o, __VA_ARGS__)
#endif

/**
 * typedef mb_monitor_fn - called for every new notification
 * @mon: the monitor delivering it
 * @n: the notification; valid only during the call (copy what you keep)
 * @arg: the pointer given to mb_monitor_subscribe()
 *
 * Runs with no library lock held, from mb_monitor_dispatch() or the
 * monitor's thread, one call at a time per monitor.  May call into the
 * library (and fork()); mb_monitor_dispatch() of the same monitor returns
 * 0 meanwhile, and the monitor must not be freed from it.
 */
typedef void (*mb_monitor_fn)(struct mb_monitor *mon,
			      const struct mb_notification *n, void *arg);

/**
 * mb_monitor_new() - open a monitor on the chosen source(s)
 * @out: receives the new monitor; set to NULL on failure
 * @opts: may be NULL for defaults (MB_SOURCE_AUTO, see
 *	struct mb_monitor_opts)
 *
 * The sources are opened and read once: the first mb_monitor_dispatch()
 * delivers that initial state (when the source knows it), so subscribers
 * added right after creation see it, and the monitor's fd is readable
 * from the start.  Free the monitor with mb_monitor_free(), before or
 * after the brokers subscribed to it.
 *
 * Context: Any thread.
 * Return: 0; -ENOENT when the requested source (or one of
 * @opts->extra_sources) is not available; -EINVAL for @out NULL, a bad
 * @opts->sz or field, unknown non-zero fields, or a bad $MEMBROKER_SOURCE;
 * -ENOMEM; or the -errno of a source or of the epoll, timerfd and eventfd
 * the monitor waits with.
 */
MB_API int mb_monitor_new(struct mb_monitor **out,
			  const struct mb_monitor_opts *opts);
/**
 * mb_monitor_free() - stop the thread, close the sources, free @mon
 * @mon: the monitor, or NULL (nothing is done)
 *
 * Stops and joins the monitor's thread if one runs, closes its sources
 * and its fd, and frees its ring (mb_monitor_ring()).  Brokers subscribed
 * to it may be freed before or after it: like an sd-event source, each
 * holds a reference that keeps the little mb_broker_free() needs to
 * unsubscribe (the list of subscribers and its lock) until then; they
 * receive no notification after this call, and @mon must not be used
 * again by the caller.
 *
 * Context: Not from one of @mon's own callbacks, and not while another
 * thread uses @mon.
 */
MB_API void mb_monitor_free(struct mb_monitor *mon);

/**
 * mb_monitor_source() - the enum mb_source_type in use
 * @mon: the monitor
 *
 * The primary source chosen when the monitor was created (by the caller,
 * $MEMBROKER_SOURCE or the automatic order) while it is open; a source
 * that is gone for good is closed, and when none is left the monitor
 * falls back to MB_SOURCE_MEMINFO.  Each notification says which source
 * produced it (the kmod source speaks for /proc/meminfo, and says so,
 * while the module is unloaded).
 *
 * Context: Any thread.
 * Return: the type, -EINVAL, or -ENODEV when no source is left.
 */
MB_API int mb_monitor_source(const struct mb_monitor *mon);

/**
 * mb_monitor_get_fd() - a pollable fd (POLLIN) for event loops
 * @mon: the monitor
 *
 * When it is readable, call mb_monitor_dispatch(); it stays readable until
 * a dispatch has handled what is pending (level-triggered).  The fd is an
 * epoll fd behind which the monitor waits for its sources and timers; it
 * can be added to poll(), select() or another epoll.  It belongs to the
 * monitor: do not read, write or close it.  It is valid until
 * mb_monitor_free().
 *
 * Context: Any thread.
 * Return: the fd (>= 0), or -EINVAL when @mon is NULL.
 */
MB_API int mb_monitor_get_fd(const struct mb_monitor *mon);

/**
 * mb_monitor_dispatch() - handle what is pending, never blocks
 * @mon: the monitor
 *
 * Reads the sources that have news or are due, combines their readings
 * and calls the subscribers, in this thread, for every new notification;
 * each is also pushed into the monitor's ring.
 * A source that fails is asked again at its next event or timeout; one
 * that is gone for good is closed, and when none is left the monitor
 * falls back to polling /proc/meminfo (and says so in the next
 * notification's source).  A call while another thread dispatches returns
 * 0 at once; the running dispatch picks up what this one saw.
 *
 * Context: Any thread.  Does not wait for events, but runs the
 * subscribers, which take as long as they take.
 * Return: number of notifications delivered, else 0, or the -errno of a
 * source that failed (-EINVAL when @mon is NULL).
 */
MB_API int mb_monitor_dispatch(struct mb_monitor *mon);

/**
 * mb_monitor_run() - wait and dispatch until @timeout_ms elapses
 * @mon: the monitor
 * @timeout_ms: how long to run, in milliseconds; -1: until
 *	mb_monitor_stop()
 *
 * A loop around the monitor's fd and mb_monitor_dispatch(), for programs
 * without an event loop of their own; subscribers run in this thread.
 * A failing source does not end it.  mb_monitor_stop() makes it return
 * early.
 *
 * Context: Any thread; blocks.
 * Return: 0 when the time is up or it was stopped; -EINVAL for @mon NULL
 * or @timeout_ms < -1; or -errno when waiting itself failed.
 */
MB_API int mb_monitor_run(struct mb_monitor *mon, int timeout_ms);
/**
 * mb_monitor_stop() - make mb_monitor_run() return
 * @mon: the monitor, or NULL (nothing is done)
 *
 * Wakes a running mb_monitor_run() and makes it return 0.  A stop
 * requested while none runs makes the next one return at once; one stop
 * ends one run.  The monitor's own thread is stopped with
 * mb_monitor_stop_thread() instead.
 *
 * Context: Any thread, or a subscriber.
 */
MB_API void mb_monitor_stop(struct mb_monitor *mon);

/**
 * mb_monitor_start_thread() - dispatch from an internal thread, for
 * programs without an event loop
 * @mon: the monitor
 *
 * The thread runs mb_monitor_run() until mb_monitor_stop_thread() or
 * mb_monitor_free(); subscribers are then called from it.
 *
 * Context: Any thread.
 * Return: 0, -EALREADY (one runs), -EINVAL, or pthread_create()'s -errno.
 */
MB_API int mb_monitor_start_thread(struct mb_monitor *mon);
/**
 * mb_monitor_stop_thread() - stop and join the internal thread
 * @mon: the monitor
 *
 * Waits for a notification being delivered by the thread to finish.
 *
 * Context: Any thread but the monitor's own (so not from a subscriber
 * it runs).
 * Return: 0 (also when none runs), -EDEADLK from the thread itself,
 * -EINVAL when @mon is NULL.
 */
MB_API int mb_monitor_stop_thread(struct mb_monitor *mon);

/**
 * mb_monitor_get_state() - the latest combined notification
 * @mon: the monitor
 * @out: receives a copy
 *
 * What the monitor last delivered, or, before its first delivery, the
 * reading taken when it was created (MB_STATE_UNKNOWN if the sources had
 * none), like Windows' QueryMemoryResourceNotification.  Cheap: no
 * source is read.
 *
 * Context: Any thread, and subscribers.
 * Return: 0, or -EINVAL when @mon or @out is NULL.
 */
MB_API int mb_monitor_get_state(struct mb_monitor *mon,
				struct mb_notification *out);

/**
 * mb_monitor_subscribe() - add a callback for every notification
 * @mon: the monitor
 * @fn:		called with @arg, see mb_monitor_fn
 * @arg: passed to @fn unchanged; the library does not own it
 *
 * Subscribers are called in the order they subscribed, for every
 * notification delivered after this call.
 *
 * Context: Any thread, and subscribers.
 * Return: an id >= 0 for mb_monitor_unsubscribe(), -EINVAL (@mon or
 * @fn NULL), -ENOMEM, or -ENOSPC when the ids are used up.
 */
MB_API int mb_monitor_subscribe(struct mb_monitor *mon, mb_monitor_fn fn,
				void *arg);
/**
 * mb_monitor_unsubscribe() - remove the callback @id
 * @mon: the monitor
 * @id: what mb_monitor_subscribe() returned
 *
 * Waits for a running call of that callback to return, unless called
 * from that very callback; no call starts afterwards, so its @arg may be
 * freed when this returns.
 *
 * Context: Any thread, and subscribers (also the one removed).
 * Return: 0, -EINVAL, -ENOENT (no such id).
 */
MB_API int mb_monitor_unsubscribe(struct mb_monitor *mon, int id);

/**
 * mb_monitor_ring() - the ring of struct mb_notification records
 * @mon: the monitor, or NULL
 *
 * Every notification the monitor delivered, with its process_rss, for
 * reading with mb_ring_read() (a history, or a consumer that polls
 * instead of subscribing).  The ring belongs to the monitor: do not free
 * it; it is valid until mb_monitor_free().
 *
 * Context: Any thread.
 * Return: the ring, or NULL when @mon is NULL.
 */
MB_API struct mb_ring *mb_monitor_ring(struct mb_monitor *mon);

/**
 * mb_monitor_fake_push() - inject a notification (MB_SOURCE_FAKE only)
 * @mon: a monitor with the fake source (primary or in extra_sources)
 * @n: the reading to inject; copied.  A 0 @n->seq or @n->time_ns is
 *	filled in (a counter, the current time); @n->source becomes
 *	MB_SOURCE_FAKE.
 *
 * It is delivered by the next mb_monitor_dispatch().  The monitor's fd
 * becomes readable; readings queue up (256 at most) and are taken in
 * order.
 *
 * Context: Any thread, and subscribers.
 * Return: 0; -EINVAL for NULL or a state above MB_STATE_HIGH;
 * -EOPNOTSUPP when @mon has no fake source; -EAGAIN when the queue is
 * full.
 */
MB_API int mb_monitor_fake_push(struct mb_monitor *mon,
				const struct mb_notification *n);

/* ------------------------------------------------------------------ */
/* The system broker (membrokerd)                                      */
/* ------------------------------------------------------------------ */

/**
 * enum mb_system_state - a monitor's part in the system broker
 * @MB_SYSTEM_OFF: disabled: $MEMBROKER_SYSTEM_BROKER is "0"
 * @MB_SYSTEM_IDLE: no broker uses the monitor, so it has nothing to
 *	register and does not look for the daemon
 * @MB_SYSTEM_SEARCHING: no daemon answers at the control socket; the
 *	monitor tries again from time to time (backing off up to 30 s), and
 *	meanwhile its brokers decide alone
 * @MB_SYSTEM_REGISTERED: its brokers and clerks are registered with
 *	membrokerd, which decides on LOW of the whole machine
 */
enum mb_system_state {
	MB_SYSTEM_OFF = 0,
	MB_SYSTEM_IDLE = 1,
	MB_SYSTEM_SEARCHING = 2,
	MB_SYSTEM_REGISTERED = 3,
};

/* Bits of mb_system_status.flags */
#define MB_SYSTEM_IN_CHARGE	(1U << 0) /* LOW is left to membrokerd now */

/**
 * struct mb_system_status - what mb_monitor_system_status() reports
 * @sz: set by the caller to sizeof(struct mb_system_status) as it was
 *	compiled; the library fills the fields that fit in it
 * @state: enum mb_system_state
 * @flags: MB_SYSTEM_* bits: MB_SYSTEM_IN_CHARGE while the monitor's
 *	combined state is LOW and the daemon answers it, so the brokers
 *	take no step of their own
 * @client: the daemon's number for this connection (0 unless registered)
 * @reserved: 0
 * @registrations: times the monitor registered (a daemon restarting
 *	makes it register again)
 * @reports: reports sent (bytes held, pools and clerks that changed)
 * @polls: the daemon's requests for fresh figures, answered
 * @shrinks: clerks shrunk at the daemon's request
 * @freed: bytes they gave back then
 * @grows: caps the daemon raised or lifted (HIGH lets clerks grow back)
 *
 * Counters are of the monitor's life, across connections.
 */
struct mb_system_status {
	size_t sz;
	uint32_t state;
	uint32_t flags;
	uint32_t client;
	uint32_t reserved;	/* 0 */
	uint64_t registrations;
	uint64_t reports;
	uint64_t polls;
	uint64_t shrinks;
	uint64_t freed;
	uint64_t grows;
};

/**
 * mb_monitor_system_status() - the monitor's part in the system broker
 * @mon: the monitor
 * @out: receives the status; set @out->sz first (sizeof(*@out))
 *
 * A monitor that has brokers looks for membrokerd at its control socket
 * ($MEMBROKERD_SOCKET, else /run/membroker/control.sock) and registers
 * their pools and clerks with it: names, priorities, bytes held, each
 * pool's min_bytes and max_bytes.  The monitor does this from its own
 * dispatch (mb_monitor_dispatch() or its thread): the connection is one
 * more fd behind mb_monitor_get_fd(), and bytes held are reported in
 * batches, at most every few hundred milliseconds, never by
 * mb_clerk_charge().  The daemon then decides LOW for the whole machine:
 * it asks the cheapest clerks of all processes for what memory is short,
 * and no more, and on HIGH lets them grow back, the most expensive first
 * (each decision goes into the broker's ring as MB_DECISION_SYSTEM_*).
 * Meanwhile the brokers take no LOW step of their own, unless the LOW is
 * of the process's cgroup, or the daemon stays silent for a few seconds
 * while it lasts.  Without the daemon, or with $MEMBROKER_SYSTEM_BROKER
 * set to "0", the brokers decide alone, as they always did; a daemon that
 * goes away is looked for again, with a backoff, and registered with when
 * it is back.  Nothing needs configuring.
 *
 * Context: Any thread.
 * Return: 0, or -EINVAL (@mon or @out NULL, @out->sz smaller than the
 * first release of the structure).
 */
MB_API int mb_monitor_system_status(struct mb_monitor *mon,
				    struct mb_system_status *out);

/* ------------------------------------------------------------------ */
/* Clerks                                                              */
/* ------------------------------------------------------------------ */

struct mb_clerk;

/**
 * typedef mb_shrink_fn - give back up to @bytes; return the bytes freed
 * @clerk: the clerk asked to shrink
 * @bytes: the most it may free
 * @arg: mb_clerk_opts.arg
 *
 * Called by the clerk's broker, in the thread that delivers the
 * notification (mb_broker_notify(), or the monitor's dispatch), when the
 * state is LOW or the pool is above its max_bytes.  Free never more than
 * @bytes: a broker's min_bytes relies on it (when nothing small enough
 * can go, free nothing; the next LOW step asks for more).  The broker
 * sets the clerk's target before it calls: a callback that frees in units
 * larger than asked should still bring the clerk to its target when it is
 * above the pool's max_bytes, which the broker cannot know how to do for
 * it (mb_cache does so).  What is freed
 * must also be uncharged from @clerk (mb_clerk_uncharge()), as the
 * application's own free path would.  Never called concurrently with
 * itself for one clerk, and with no library lock held: it may call into
 * the library, including removing or freeing @clerk.
 *
 * Return: the bytes freed (>= 0), or -errno: the broker counts the error
 * on the clerk and asks again at its next step.
 */
typedef int64_t (*mb_shrink_fn)(struct mb_clerk *clerk, uint64_t bytes,
				void *arg);

/**
 * struct mb_clerk_opts - options of mb_clerk_new()
 * @sz: sizeof(struct mb_clerk_opts) as the caller was compiled; set by
 *	MB_OPTS()
 * @shrink: called by the clerk's broker to take memory back, see
 *	mb_shrink_fn (optional: without it, the clerk is only given targets)
 * @arg: passed to @shrink unchanged; the library does not own it
 * @priority: cost of dropping this clerk's memory: 0 (cheap, dropped
 *	first) .. 100 (expensive, dropped last).  With @opts given, 0 unless
 *	set; 50 when mb_clerk_new() gets no options at all.
 * @reserved: must be 0
 *	(room for a later field: a library that finds it non-zero refuses
 *	the options with -EINVAL, rather than ignore what it cannot know)
 */
struct mb_clerk_opts {
	size_t sz;
	mb_shrink_fn shrink;	/* optional */
	void *arg;		/* passed to shrink */
	/*
	 * cost of dropping this clerk's memory: 0 (cheap, drop first) ..
	 * 100 (expensive, drop last); 50 when @opts is NULL
	 */
	uint32_t priority;
	uint32_t reserved;	/* 0 */
};

/**
 * mb_clerk_new() - a clerk named @name (1..63 bytes), in the snapshot
 * @out: receives the new clerk; set to NULL on failure
 * @name: copied; need not be unique
 * @opts: may be NULL (no shrink callback, priority 50)
 *
 * A clerk is a named account of memory that the application charges and
 * uncharges; it is listed by mb_clerk_snapshot() until freed, and can be
 * put in a broker (mb_broker_add_clerk()).  Its target is UINT64_MAX
 * until a broker sets one.
 *
 * Context: Any thread.
 * Return: 0, -EINVAL (@out or @name NULL, empty name, bad @opts or a
 * priority above 100), -ENAMETOOLONG, -ENOMEM.
 */
MB_API int mb_clerk_new(struct mb_clerk **out, const char *name,
			const struct mb_clerk_opts *opts);
/**
 * mb_clerk_free() - removes it from its broker first; accepts NULL
 * @clerk: the clerk, or NULL (nothing is done)
 *
 * Leaves its broker (waiting for a shrink call of this clerk running in
 * another thread to return, so the callback's data may be freed right
 * after), leaves the snapshot, and frees it.  Allowed from the clerk's
 * own shrink callback.
 *
 * Context: No other thread may use @clerk any more; do not free a clerk
 * and its broker concurrently.
 */
MB_API void mb_clerk_free(struct mb_clerk *clerk);
/**
 * mb_clerk_name() - the name given to mb_clerk_new()
 * @clerk: the clerk, or NULL
 *
 * Context: Any thread.
 * Return: the clerk's copy of the name, valid until mb_clerk_free(), or
 * NULL when @clerk is NULL.
 */
MB_API const char *mb_clerk_name(const struct mb_clerk *clerk);

/**
 * mb_clerk_charge() - account @bytes (hot path, per-CPU partitioned)
 * @clerk: the clerk
 * @bytes: how much more the application holds, at most INT64_MAX
 *
 * Adds to one of 32 cache-line counters chosen per thread, so threads
 * charging the same clerk do not contend.  Charging is not refused above
 * the clerk's target: staying under it is the application's part.
 *
 * Context: Any thread; lock-free.
 * Return: 0, or -EINVAL when @clerk is NULL or @bytes too large.
 */
MB_API int mb_clerk_charge(struct mb_clerk *clerk, uint64_t bytes);
/**
 * mb_clerk_uncharge() - give back @bytes charged earlier (any thread)
 * @clerk: the clerk
 * @bytes: how much less the application holds, at most INT64_MAX
 *
 * Need not be the thread that charged them.  A total driven below 0 by
 * uncharging more than was charged reads as 0.
 *
 * Context: Any thread; lock-free.
 * Return: 0, or -EINVAL when @clerk is NULL or @bytes too large.
 */
MB_API int mb_clerk_uncharge(struct mb_clerk *clerk, uint64_t bytes);
/**
 * mb_clerk_bytes() - current total
 * @clerk: the clerk, or NULL
 *
 * The sum of the clerk's counters, exact for the charges that completed
 * before the call; it also updates the clerk's peak.
 *
 * Context: Any thread; lock-free.
 * Return: the bytes charged and not uncharged, 0 when @clerk is NULL.
 */
MB_API uint64_t mb_clerk_bytes(const struct mb_clerk *clerk);
/**
 * mb_clerk_target() - the bytes its broker allows now (UINT64_MAX when not
 * in a broker or unlimited)
 * @clerk: the clerk, or NULL
 *
 * The broker sets it on every notification and when the clerk joins;
 * it is advice that the library does not enforce: an application should
 * keep mb_clerk_bytes() at or below it (mb_cache does).
 *
 * Context: Any thread; lock-free.
 * Return: the target in bytes, UINT64_MAX when @clerk is NULL, in no
 * broker, or not limited.
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
 *
 * @peak is the largest total seen whenever the clerk's counters were
 * summed (mb_clerk_bytes(), a snapshot, a broker decision, and every
 * 64th charge of a thread).  It is an estimate: it can miss a spike
 * shorter than that, and a sum taken while other threads charge and
 * uncharge may count one thread's charge before another's uncharge, so
 * it can also exceed the true peak by what was in flight.
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
 * (sys.dm_os_memory_clerks).
 * @out: room for @max rows; may be NULL when @max is 0 (to count)
 * @max: the most rows to fill
 *
 * Lists the clerks of every broker and those in none, with their
 * counters as they are when each row is filled.
 *
 * Context: Any thread, and callbacks.
 * Return: the number of clerks (which may exceed @max: call again with
 * more room), or -EINVAL when @out is NULL and @max is not 0.
 */
MB_API int mb_clerk_snapshot(struct mb_clerk_info *out, size_t max);

/* ------------------------------------------------------------------ */
/* Brokers                                                             */
/* ------------------------------------------------------------------ */

struct mb_broker;

/**
 * struct mb_broker_opts - options of mb_broker_new()
 * @sz: sizeof(struct mb_broker_opts) as the caller was compiled; set by
 *	MB_OPTS()
 * @min_bytes: never shrink the pool below this (default 0): LOW steps
 *	stop there.  Only giving back an excess over @max_bytes can take a
 *	pool of caches below it, by less than one entry, when the two are
 *	closer than the size of that entry
 * @max_bytes: never let the pool exceed this (0: unlimited); the clerks'
 *	targets never add up to more, and a pool above it (a clerk that
 *	joined holding more than the room, charges beyond a target) is asked
 *	for the excess at every decision, in every state.  An mb_cache frees
 *	whole entries, so it gives back at least the excess (less than one
 *	entry more); a shrink callback of the application's frees at most
 *	what it is asked (see mb_shrink_fn)
 * @shrink_step_percent: fraction of the pool asked back per LOW
 *	notification, in percent, 1..100 (0: 10)
 * @trim: call malloc_trim(0) after a shrink that freed something, to
 *	return the freed heap to the system
 * @ring_capacity: decisions kept in the broker's ring (0: 1024)
 * @reserved: must be all 0
 *	(room for a later field: a library that finds it non-zero refuses
 *	the options with -EINVAL, rather than ignore what it cannot know)
 * @reserved2: must be 0, as @reserved
 *
 * Documentation/libmembroker.rst explains how a broker decides.
 */
struct mb_broker_opts {
	size_t sz;
	uint64_t min_bytes;	/* never shrink the pool below (default 0) */
	uint64_t max_bytes;	/* never let the pool exceed (0: unlimited) */
	/* fraction of the pool asked back per LOW step, percent (default 10) */
	uint32_t shrink_step_percent;
	/* call malloc_trim(0) after a shrink that freed something */
	bool trim;
	uint8_t reserved[3];	/* 0 */
	uint32_t ring_capacity;	/* decisions kept (0: 1024) */
	uint32_t reserved2;	/* 0 */
};

/**
 * enum mb_decision - what a broker decided for a clerk
 * @MB_DECISION_STABLE: its target is what it holds now
 * @MB_DECISION_GROW: its target is above what it holds: it may grow
 * @MB_DECISION_SHRINK: its target is below what it holds; its shrink
 *	callback, if any, was asked for the difference (unless a call of
 *	it was still running: then the record's duration_ns is 0)
 * @MB_DECISION_SYSTEM_SHRINK: membrokerd, deciding for the whole machine,
 *	asked this clerk for memory: @allocated is what it held, @freed what
 *	it gave back, @target what it may hold until the daemon lets it grow
 * @MB_DECISION_SYSTEM_GROW: membrokerd raised or lifted the cap it had
 *	put on the clerk: @target is what the clerk may hold now
 *
 * The SYSTEM decisions are made by membrokerd (see
 * mb_monitor_system_status()), not by the broker; the broker records
 * them so that its ring tells everything that happened to its clerks.
 */
enum mb_decision {
	MB_DECISION_STABLE = 0,
	MB_DECISION_GROW = 1,
	MB_DECISION_SHRINK = 2,
	MB_DECISION_SYSTEM_SHRINK = 3,
	MB_DECISION_SYSTEM_GROW = 4,
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
 * @reserved:	  always 0
 * @duration_ns:  how long the shrink callback ran (0: not called)
 *
 * A broker records one per clerk per notification it acts on.
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
 * @out: receives the new broker; set to NULL on failure
 * @name: 1..31 bytes, copied; recorded in its ring
 * @mon: the monitor to subscribe to (freeing it before or after the
 *	broker are both fine; after mb_monitor_free() the broker gets no
 *	more notifications); or NULL: then drive it with mb_broker_notify()
 * @opts: may be NULL for defaults, see struct mb_broker_opts
 *
 * A broker is a pool of clerks sharing one budget.  On every
 * notification it sets each clerk's target (mb_clerk_target()) and,
 * when the state is LOW or the pool is above max_bytes, calls the shrink
 * callbacks to take memory back, the cheapest clerks first.  LOW shrinks
 * the pool a step per notification (the monitor repeats LOW while it
 * lasts), STEADY holds every clerk near its size, and HIGH lets every
 * clerk grow at once: up to its share of max_bytes, or without limit in a
 * pool without one, until a notification that is not HIGH.  "Near": in
 * STEADY the pool may grow by a quarter of the headroom above the low
 * threshold (@n->available - @n->low of the notification; nothing when
 * it has no figures), within max_bytes, shared out among the clerks, so
 * that a cache starting empty on a quiet machine can fill that far.  A
 * clerk joining later gets, in a pool that decided STEADY, what it holds
 * plus an equal share of that allowance; after LOW, what it holds.  With
 * @mon, this runs in whichever thread dispatches the monitor.
 *
 * Context: Any thread.
 * Return: 0, -EINVAL (@out or @name NULL, empty name, bad @opts, a step
 * above 100 %, or @opts->min_bytes above a non-zero @opts->max_bytes),
 * -ENAMETOOLONG, -ENOMEM, or the -errno of mb_monitor_subscribe().
 */
MB_API int mb_broker_new(struct mb_broker **out, const char *name,
			 struct mb_monitor *mon,
			 const struct mb_broker_opts *opts);
/**
 * mb_broker_free() - unsubscribe, release every clerk (waiting for running
 * shrink calls), free; accepts NULL
 * @broker: the broker, or NULL (nothing is done)
 *
 * The clerks are not freed: they leave the pool, their targets become
 * UINT64_MAX, and they may join another broker.  The broker's ring is
 * freed.
 *
 * Context: Not from a shrink callback of its clerks, and not while
 * another thread uses @broker or frees one of its clerks.
 */
MB_API void mb_broker_free(struct mb_broker *broker);
/**
 * mb_broker_add_clerk() - put @clerk in the pool
 * @broker: the broker
 * @clerk: the clerk; it stays the caller's, and is in one broker at most
 *
 * The clerk's target is set at once.  In a pool with max_bytes the
 * targets never add up to more than it: the clerk gets what it holds
 * plus an equal share of what no member holds, out of the room the other
 * members' targets leave, lowering those that allow more than their
 * clerks hold when that room is too small; a clerk holding more than can
 * be made room for gets less than it holds, and the next decision asks it
 * for the rest.  Without max_bytes, see Documentation/libmembroker.rst.
 *
 * Context: Any thread, and callbacks.
 * Return: 0, -EINVAL (NULL), -ENOMEM, -EEXIST (already in it), -EBUSY
 * (in another broker).
 */
MB_API int mb_broker_add_clerk(struct mb_broker *broker,
			       struct mb_clerk *clerk);
/**
 * mb_broker_remove_clerk() - take @clerk out of the pool
 * @broker: the broker
 * @clerk: the clerk; it stays the caller's
 *
 * Its target becomes UINT64_MAX.  Waits for a running shrink call of
 * @clerk in another thread to return, so the callback's data may be
 * freed right after.
 *
 * Context: Any thread, and callbacks, including @clerk's own shrink
 * callback.
 * Return: 0, -EINVAL (NULL), or -ENOENT (not in @broker).
 */
MB_API int mb_broker_remove_clerk(struct mb_broker *broker,
				  struct mb_clerk *clerk);
/**
 * mb_broker_notify() - act on @n as if the monitor delivered it
 * @broker: the broker
 * @n: the notification; a 0 @n->time_ns means now
 *
 * Decides for every clerk, calls the shrink callbacks it chose in this
 * thread, with no library lock held, and records each decision in the
 * broker's ring before it returns.  A notification with MB_STATE_UNKNOWN
 * is ignored.  For brokers without a monitor, or to replay readings.
 *
 * Context: Any thread; concurrent calls skip a clerk whose shrink
 * callback is already running.
 * Return: 0, -EINVAL (NULL, or a state above MB_STATE_HIGH), -ENOMEM.
 */
MB_API int mb_broker_notify(struct mb_broker *broker,
			    const struct mb_notification *n);
/**
 * mb_broker_ring() - the ring of struct mb_broker_record
 * @broker: the broker, or NULL
 *
 * Every decision, one per clerk per notification, for reading with
 * mb_ring_read().  The ring belongs to the broker: do not free it; it is
 * valid until mb_broker_free().
 *
 * Context: Any thread.
 * Return: the ring, or NULL when @broker is NULL.
 */
MB_API struct mb_ring *mb_broker_ring(struct mb_broker *broker);

/* ------------------------------------------------------------------ */
/* Caches                                                              */
/* ------------------------------------------------------------------ */

struct mb_cache;

/**
 * struct mb_cache_opts - options of mb_cache_new()
 * @sz: sizeof(struct mb_cache_opts) as the caller was compiled; set by
 *	MB_OPTS()
 * @max_bytes: hard bound on what the cache holds, entries' overhead
 *	included (0: only its broker's target bounds it)
 * @priority: priority of its clerk, see struct mb_clerk_opts: 0 unless
 *	set, 50 when mb_cache_new() gets no options
 * @reserved: must be 0
 *	(room for a later field: a library that finds it non-zero refuses
 *	the options with -EINVAL, rather than ignore what it cannot know)
 */
struct mb_cache_opts {
	size_t sz;
	uint64_t max_bytes;	/* hard bound (0: only the broker's target) */
	uint32_t priority;	/* of its clerk, see mb_clerk_opts */
	uint32_t reserved;	/* 0 */
};

/**
 * struct mb_cache_stats - the counters of a cache
 * @bytes: charged to its clerk now: keys, values and a fixed overhead
 *	per entry
 * @entries: entries held now
 * @hits: mb_cache_get() calls that found their key
 * @misses: mb_cache_get() calls that did not
 * @evictions: entries dropped to make room or by the shrink callback
 *	(not those replaced or deleted)
 * @inserts: successful mb_cache_put() calls
 */
struct mb_cache_stats {
	uint64_t bytes;
	uint64_t entries;
	uint64_t hits;
	uint64_t misses;
	uint64_t evictions;
	uint64_t inserts;
};

/**
 * mb_cache_new() - a bounded LRU whose memory is its own clerk @name
 * @out: receives the new cache; set to NULL on failure
 * @name: the clerk's name, 1..63 bytes, copied
 * @opts: may be NULL for defaults, see struct mb_cache_opts
 *
 * A map of byte strings to byte strings that evicts least recently used
 * entries to stay within min(max_bytes, its clerk's target), and whose
 * clerk's shrink callback evicts entries when its broker asks for
 * memory.  Add the clerk (mb_cache_clerk()) to a broker to size it.
 *
 * It is 16 shards, each a hash table under its own lock, chosen by the
 * key's hash, so that threads using different keys seldom wait for each
 * other; and a hit writes only its entry's time of use, not an LRU list.
 * The LRU order is still the whole cache's, and exact: every entry
 * carries the monotonic time of its last use, each shard orders its
 * entries in a heap that an eviction brings up to date, and an eviction
 * (by a put or by the shrink callback) takes the least recently used
 * entry of all the shards, the one a single list would take for
 * operations that do not overlap in time.  The shrink callback frees
 * exactly what one list would, and the bytes charged to the clerk are
 * always those of the entries held, 136 bytes of overhead per entry
 * included.  Documentation/libmembroker.rst ("Shards") has the details.
 *
 * Context: Any thread.
 * Return: 0, -EINVAL (@out or @name NULL, empty name, bad @opts or a
 * priority above 100), -ENAMETOOLONG, -ENOMEM.
 */
MB_API int mb_cache_new(struct mb_cache **out, const char *name,
			const struct mb_cache_opts *opts);
/**
 * mb_cache_free() - leaves its broker, frees entries and clerk; NULL ok
 * @cache: the cache, or NULL (nothing is done)
 *
 * Waits for its shrink callback if another thread's broker is running it.
 *
 * Context: No other thread may use @cache any more; do not free it and
 * its broker concurrently.
 */
MB_API void mb_cache_free(struct mb_cache *cache);
/**
 * mb_cache_clerk() - the clerk, to add it to a broker
 * @cache: the cache, or NULL
 *
 * The clerk belongs to the cache: do not free it; mb_cache_free() does.
 *
 * Context: Any thread.
 * Return: the clerk, or NULL when @cache is NULL.
 */
MB_API struct mb_clerk *mb_cache_clerk(struct mb_cache *cache);
/**
 * mb_cache_put() - insert or replace; evicts LRU entries to honour the
 * target.
 * @cache: the cache
 * @key: the key, copied
 * @klen: its length in bytes, at least 1
 * @val: the value, copied; may be NULL when @vlen is 0
 * @vlen: its length in bytes
 *
 * An entry with the same key is replaced (not counted as an eviction).
 * The new entry is the most recently used.  The entry costs @klen + @vlen
 * plus a fixed overhead (136 bytes on 64-bit systems), charged to the
 * cache's clerk.
 *
 * Context: Any thread; takes the lock of the key's shard, then one
 * shard's at a time to evict.  Once it returns, the cache is within its
 * bound unless another put overlapped it, which may leave the cache
 * above it by that put's entry until that put has evicted in turn.
 * Return: 0, -E2BIG if the entry alone exceeds the bound (max_bytes or
 * the clerk's target, whichever is lower), -EINVAL (NULL @cache or @key,
 * @klen 0, @val NULL with @vlen > 0), -ENOMEM.
 */
MB_API int mb_cache_put(struct mb_cache *cache, const void *key,
			size_t klen, const void *val, size_t vlen);
/**
 * mb_cache_get() - copy the value into @buf (up to @buflen bytes)
 * @cache: the cache
 * @key: the key
 * @klen: its length in bytes, at least 1
 * @buf: receives the first min(@buflen, value length) bytes of the
 *	value; may be NULL when @buflen is 0
 * @buflen: the size of @buf
 *
 * A hit makes the entry the most recently used (it stamps the entry
 * with the time; evictions put it in its place).  A return value above
 * @buflen means the copy was cut short: call again with more room.  The
 * value is the one of a put that completed before the get returned and
 * was not replaced or deleted before it began, copied whole.
 *
 * Context: Any thread; takes no lock (but for a miss while the key's
 * shard grows its table, which looks again under the shard's lock) and
 * writes nothing other threads' gets of other keys write.  Not
 * async-signal-safe.
 * Return: the value's full length, -ENOENT on a miss, -EINVAL (NULL
 * @cache or @key, @klen 0, @buf NULL with @buflen > 0).
 */
MB_API int64_t mb_cache_get(struct mb_cache *cache, const void *key,
			    size_t klen, void *buf, size_t buflen);
/**
 * mb_cache_del() - remove an entry
 * @cache: the cache
 * @key: the key
 * @klen: its length in bytes, at least 1
 *
 * Its memory is uncharged from the clerk; it is not counted as an
 * eviction.
 *
 * Context: Any thread; takes the lock of the key's shard only.
 * Return: 0, -ENOENT (no such key), or -EINVAL (NULL @cache or @key,
 * @klen 0).
 */
MB_API int mb_cache_del(struct mb_cache *cache, const void *key,
			size_t klen);
/**
 * mb_cache_stats() - a consistent copy of the counters
 * @cache: the cache
 * @out: receives the counters
 *
 * Context: Any thread; takes every shard's lock, so that bytes, entries,
 * evictions and inserts are of one moment.  Gets count without a lock:
 * hits and misses include every get that returned before the call, and
 * may include gets that overlap it.
 * Return: 0, or -EINVAL when @cache or @out is NULL.
 */
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

/**
 * struct mb_kmod_config - the module's configuration (0 bytes: automatic)
 * @low_bytes: low threshold; 0: automatic
 * @high_bytes: high threshold; 0: automatic
 * @hysteresis_bytes: hysteresis; 0: automatic (low / 8)
 * @poll_min_ms: shortest poll interval, 1..1000 ms
 * @poll_max_ms: longest poll interval, 10..60000 ms
 * @ratelimit_ms: least spacing of notifications that escalate nothing,
 *	0..10000 ms
 * @virtual_low_percent: MB_FLAG_VIRTUAL_LOW is set while Committed_AS is
 *	at least this percentage of CommitLimit, 1..100
 * @history_size: entries in the module's history ring; read only
 * @set_mask: MB_KCFG_* bits naming the fields mb_kmod_set_config() sends;
 *	0 from mb_kmod_get_config()
 *
 * The fields are those of MEMBROKER_CMD_GET_CONFIG and SET_CONFIG, whose
 * ranges and rules include/uapi/linux/membroker.h describes.
 */
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

/**
 * mb_kmod_open() - connect; -ENOENT when the module is not loaded
 * @out: receives the new handle; set to NULL on failure
 *
 * Opens two generic netlink sockets, one for requests and one for
 * notifications (see mb_kmod_subscribe()), and resolves the family;
 * resolving it makes the kernel load the module where it is installed.
 * A handle survives the module being unloaded and loaded again: requests
 * fail with -ENOENT meanwhile, and work again once it is back (the family
 * is resolved anew).
 *
 * Context: One thread at a time per handle; distinct handles share
 * nothing.
 * Return: 0, -EINVAL (@out NULL), -ENOENT (the module is not loaded),
 * -ENOMEM, or the -errno of the sockets.
 */
MB_API int mb_kmod_open(struct mb_kmod **out);
/**
 * mb_kmod_close() - close both sockets and free @k; accepts NULL
 * @k: the handle, or NULL (nothing is done)
 *
 * Context: No other thread may use @k any more.
 */
MB_API void mb_kmod_close(struct mb_kmod *k);
/**
 * mb_kmod_get_state() - MEMBROKER_CMD_GET_STATE: the module evaluates now
 * @k: the handle
 * @out: receives the reply: reason MEMBROKER_REASON_QUERY, source
 *	MB_SOURCE_KMOD, the sequence number of the latest notification
 *
 * If the evaluation leads to a notification, the module sends it before
 * the reply.
 *
 * Context: One thread at a time per handle; waits for the reply.
 * Return: 0, -ENOENT when the module is not loaded, -EINVAL (NULL),
 * -EBADMSG for a reply that could not be read, -errno.
 */
MB_API int mb_kmod_get_state(struct mb_kmod *k, struct mb_notification *out);
/**
 * mb_kmod_get_config() - MEMBROKER_CMD_GET_CONFIG
 * @k: the handle
 * @out: receives the configuration as set (0 bytes: automatic), with
 *	history_size, and set_mask 0
 *
 * The thresholds in force are in a state message (mb_kmod_get_state()).
 *
 * Context: One thread at a time per handle; waits for the reply.
 * Return: 0, -ENOENT when the module is not loaded, -EINVAL (NULL),
 * -EBADMSG for a reply that could not be read, -errno.
 */
MB_API int mb_kmod_get_config(struct mb_kmod *k, struct mb_kmod_config *out);
/**
 * mb_kmod_set_config() - send the fields named in @cfg->set_mask
 * @k: the handle
 * @cfg: the values; only those named in @cfg->set_mask are sent, the
 *	others keep their value in the module
 * @errmsg: if not NULL, receives the kernel's extack message on failure
 * @errlen: the size of @errmsg; the message is cut to fit and always
 *	NUL-terminated (empty when the kernel sent none)
 *
 * The module applies the request whole or not at all, and on success
 * sends a notification with reason MEMBROKER_REASON_CONFIG before it
 * acknowledges.  Needs CAP_NET_ADMIN.
 *
 * Context: One thread at a time per handle; waits for the reply.
 * Return: 0, -EPERM, -EINVAL (NULL, unknown bits in set_mask, nothing
 * set, or a value the module refuses), -ENOENT (module not loaded),
 * -errno.
 */
MB_API int mb_kmod_set_config(struct mb_kmod *k,
			      const struct mb_kmod_config *cfg,
			      char *errmsg, size_t errlen);
/**
 * typedef mb_kmod_history_fn - return non-zero to stop the walk
 * @n: one history entry, source MB_SOURCE_KMOD; valid only during the
 *	call
 * @arg: the pointer given to mb_kmod_get_history()
 *
 * Called by mb_kmod_get_history() in its caller's thread.
 */
typedef int (*mb_kmod_history_fn)(const struct mb_notification *n,
				  void *arg);
/**
 * mb_kmod_get_history() - MEMBROKER_CMD_GET_HISTORY, oldest first
 * @k: the handle
 * @fn: called for every notification in the module's history ring, until
 *	it returns non-zero
 * @arg: passed to @fn unchanged
 *
 * The entries are the module's last notifications exactly as they were
 * sent (see struct mb_kmod_config.history_size); a gap in their sequence
 * numbers shows entries overwritten while the walk ran.
 *
 * Context: One thread at a time per handle; @fn runs before this returns.
 * Return: 0 (also when @fn stopped the walk), -EINVAL (NULL), -ENOENT
 * (module not loaded), -EBADMSG for an entry that could not be read,
 * -errno.
 */
MB_API int mb_kmod_get_history(struct mb_kmod *k, mb_kmod_history_fn fn,
			       void *arg);
/**
 * mb_kmod_subscribe() - join the "notify" group (non-blocking socket), and
 * nlctrl's, to hear of the module being unloaded and loaded again
 * @k: the handle
 *
 * Notifications then queue on the socket of mb_kmod_get_fd(); read them
 * with mb_kmod_recv().  Subscribing twice does nothing.
 *
 * Context: One thread at a time per handle.
 * Return: 0, -EINVAL (NULL), or the -errno of joining the group.
 */
MB_API int mb_kmod_subscribe(struct mb_kmod *k);
/**
 * mb_kmod_get_fd() - the subscribed socket, for poll()
 * @k: the handle
 *
 * Poll it for POLLIN, then call mb_kmod_recv() until it returns 0.  The
 * fd belongs to the handle: do not read or close it.
 *
 * Context: Any thread.
 * Return: the fd (>= 0), or -EINVAL when @k is NULL.
 */
MB_API int mb_kmod_get_fd(const struct mb_kmod *k);
/**
 * mb_kmod_recv() - read one pending notification
 * @k: a subscribed handle (mb_kmod_subscribe())
 * @out: receives the notification, source MB_SOURCE_KMOD
 *
 * Never blocks.
 *
 * Context: One thread at a time per handle.
 * Return: 1 with *out filled; 0 if none is pending; -ENOBUFS if some were
 * lost, or the module was loaded again (its sequence numbers start anew):
 * resynchronise with mb_kmod_get_state(); -ENODEV when the module was
 * unloaded (nothing more arrives until it is back, then -ENOBUFS);
 * -EMSGSIZE or -EBADMSG for a notification that could not be read
 * (resynchronise too); -ENOTCONN when @k is not subscribed; -EINVAL
 * (NULL); -errno.
 */
MB_API int mb_kmod_recv(struct mb_kmod *k, struct mb_notification *out);

#ifdef __cplusplus
}
#endif

#endif /* MEMBROKER_H */
