/* SPDX-License-Identifier: GPL-2.0 */
/*
 * membroker: declarations shared by the files of the module.
 *
 * The split, one job per file:
 *   main.c     module parameters, init and exit
 *   state.c    the pure state machine: thresholds, hysteresis, rate limit
 *   meminfo.c  measuring memory (MemAvailable, MemTotal, Committed_AS, ...)
 *   eval.c     the evaluator: configuration, evaluation, publishing
 *   trigger.c  what causes evaluations, and when they run
 *   history.c  the ring of published state messages
 *   netlink.c  the generic netlink family
 *   sysfs.c    /sys/kernel/membroker/
 */
#ifndef _MEMBROKER_H
#define _MEMBROKER_H

#include <linux/bits.h>
#include <linux/types.h>
#include <linux/mutex.h>
#include <linux/membroker.h>

/* Shortest and longest allowed values, see mb_state_check_config() */
#define MB_POLL_MIN_MS_MIN		1
#define MB_POLL_MIN_MS_MAX		1000
#define MB_POLL_MAX_MS_MIN		10
#define MB_POLL_MAX_MS_MAX		60000
#define MB_RATELIMIT_MS_MAX		10000
#define MB_VIRTUAL_LOW_PERCENT_MIN	1
#define MB_VIRTUAL_LOW_PERCENT_MAX	100
#define MB_HISTORY_SIZE_MIN		256
#define MB_HISTORY_SIZE_MAX		65536

/**
 * struct mb_config - the configuration as set (0 bytes means automatic)
 * @low_bytes:		low threshold, 0 = automatic
 * @high_bytes:		high threshold, 0 = automatic
 * @hysteresis_bytes:	hysteresis, 0 = automatic (low / 8)
 * @poll_min_ms:	shortest poll interval
 * @poll_max_ms:	longest poll interval
 * @ratelimit_ms:	minimum spacing of non-escalating notifications
 * @virtual_low_percent: VIRTUAL_LOW when Committed_AS >= this % of CommitLimit
 */
struct mb_config {
	u64 low_bytes;
	u64 high_bytes;
	u64 hysteresis_bytes;
	u32 poll_min_ms;
	u32 poll_max_ms;
	u32 ratelimit_ms;
	u32 virtual_low_percent;
};

/**
 * struct mb_thresholds - thresholds in force, all in bytes
 * @low:	LOW below this
 * @high:	HIGH above this (always > @low)
 * @hyst:	effective hysteresis, at most (@high - @low) / 2
 * @fallback:	the configured thresholds did not fit the current total
 *		memory, automatic ones are used instead
 */
struct mb_thresholds {
	u64 low;
	u64 high;
	u64 hyst;
	bool fallback;
};

/**
 * struct mb_sample - one measurement, all in bytes
 * @available:		MemAvailable
 * @total:		MemTotal
 * @committed:		Committed_AS
 * @commit_limit:	CommitLimit
 * @wmark_high:		sum of the zones' high watermarks
 * @overcommit:		vm.overcommit_memory (OVERCOMMIT_*), -1 if unknown
 */
struct mb_sample {
	u64 available;
	u64 total;
	u64 committed;
	u64 commit_limit;
	u64 wmark_high;
	int overcommit;
};

/**
 * struct mb_msg - a state message (GET_STATE reply, NOTIFY, history entry)
 * @seq:		sequence number of the notification, from 1; in an
 *			evaluation that was not published, the latest one's
 * @timestamp_ns:	CLOCK_MONOTONIC of the evaluation
 * @available:		MemAvailable in bytes
 * @total:		MemTotal in bytes
 * @low:		low threshold in force, in bytes
 * @high:		high threshold in force, in bytes
 * @committed:		Committed_AS in bytes
 * @commit_limit:	CommitLimit in bytes (reread at most once a second)
 * @state:		enum membroker_state
 * @flags:		MEMBROKER_FLAG_* bits
 * @reason:		enum membroker_reason: why it was evaluated
 *
 * The fields map one to one to the MEMBROKER_A_* attributes.
 */
struct mb_msg {
	u64 seq;
	u64 timestamp_ns;
	u64 available;
	u64 total;
	u64 low;
	u64 high;
	u64 committed;
	u64 commit_limit;
	u32 state;
	u32 flags;
	u32 reason;
};

/*
 * Fields of struct mb_config, for the @changed mask of
 * mb_state_check_config(): the values a request changes.
 */
#define MB_CFG_F_LOW		BIT(0)
#define MB_CFG_F_HIGH		BIT(1)
#define MB_CFG_F_HYST		BIT(2)
#define MB_CFG_F_POLL_MIN	BIT(3)
#define MB_CFG_F_POLL_MAX	BIT(4)
#define MB_CFG_F_RATELIMIT	BIT(5)
#define MB_CFG_F_PERCENT	BIT(6)
#define MB_CFG_F_ALL		GENMASK(6, 0)

/**
 * enum mb_cfg_err - why a configuration is refused
 * @MB_CFG_OK:			not refused
 * @MB_CFG_POLL_MIN_RANGE:	poll_min_ms outside 1..1000
 * @MB_CFG_POLL_MAX_RANGE:	poll_max_ms outside 10..60000
 * @MB_CFG_POLL_ORDER:		poll_min_ms above poll_max_ms
 * @MB_CFG_RATELIMIT_RANGE:	ratelimit_ms above 10000
 * @MB_CFG_PERCENT_RANGE:	virtual_low_percent outside 1..100
 * @MB_CFG_LOW_TOTAL:		low_bytes, changed, above total memory
 * @MB_CFG_HIGH_TOTAL:		high_bytes, changed, above total memory
 * @MB_CFG_HYST_TOTAL:		hysteresis_bytes, changed, above total memory
 * @MB_CFG_LOW_NOT_BELOW_HIGH:	the resulting low threshold is not below
 *				the high one, and low_bytes was changed
 * @MB_CFG_HIGH_NOT_ABOVE_LOW:	the same with only high_bytes changed: the
 *				new high threshold is too low
 *
 * Each has a message MB_CFG_MSG_*, a string literal so that netlink.c can
 * hand it to NL_SET_ERR_MSG_ATTR(); mb_state_check_config() reports the
 * first one it finds.
 */
enum mb_cfg_err {
	MB_CFG_OK,
	MB_CFG_POLL_MIN_RANGE,
	MB_CFG_POLL_MAX_RANGE,
	MB_CFG_POLL_ORDER,
	MB_CFG_RATELIMIT_RANGE,
	MB_CFG_PERCENT_RANGE,
	MB_CFG_LOW_TOTAL,
	MB_CFG_HIGH_TOTAL,
	MB_CFG_HYST_TOTAL,
	MB_CFG_LOW_NOT_BELOW_HIGH,	/* the low threshold was set */
	MB_CFG_HIGH_NOT_ABOVE_LOW,	/* only the high threshold was set */
};

#define MB_CFG_MSG_POLL_MIN_RANGE	"poll_min_ms must be within 1..1000"
#define MB_CFG_MSG_POLL_MAX_RANGE	"poll_max_ms must be within 10..60000"
#define MB_CFG_MSG_POLL_ORDER		"poll_min_ms is greater than poll_max_ms"
#define MB_CFG_MSG_RATELIMIT_RANGE	"ratelimit_ms must be within 0..10000"
#define MB_CFG_MSG_PERCENT_RANGE	"virtual_low_percent must be within 1..100"
#define MB_CFG_MSG_LOW_TOTAL		"low threshold exceeds total memory"
#define MB_CFG_MSG_HIGH_TOTAL		"high threshold exceeds total memory"
#define MB_CFG_MSG_HYST_TOTAL		"hysteresis exceeds total memory"
#define MB_CFG_MSG_LOW_HIGH		"low threshold is not below the high threshold"

/**
 * enum mb_publish - what to do with an evaluation (mb_state_decide())
 * @MB_PUBLISH_NONE:	nothing changed since the last notification
 * @MB_PUBLISH_NOW:	notify now (possibly holding a relaxation back)
 * @MB_PUBLISH_LATER:	changed, but the rate limit holds it back
 */
enum mb_publish {
	MB_PUBLISH_NONE,
	MB_PUBLISH_NOW,
	MB_PUBLISH_LATER,
};

/* state.c: pure functions, no locking, no side effects */
void mb_state_thresholds(const struct mb_config *cfg, u64 total,
			 u64 wmark_high, struct mb_thresholds *t);
enum mb_cfg_err mb_state_check_config(const struct mb_config *cfg,
				      u32 changed, u64 total, u64 wmark_high);
const char *mb_state_cfg_strerror(enum mb_cfg_err err);
u32 mb_state_next(u32 cur, u64 available, const struct mb_thresholds *t);
u32 mb_state_flags(const struct mb_sample *s, u32 virtual_low_percent);
enum mb_publish mb_state_decide(const struct mb_msg *last,
				const struct mb_msg *cur, u64 ratelimit_ns,
				struct mb_msg *pub, u64 *wait_ns);
u32 mb_state_poll_ms(u32 state, u64 available,
		     const struct mb_thresholds *t,
		     const struct mb_config *cfg, bool *far);
bool mb_state_total_changed(u64 tracked, u64 total);

/* meminfo.c */
int mb_meminfo_init(void);
void mb_meminfo_exit(void);
void mb_meminfo_sample(struct mb_sample *s);
u64 mb_meminfo_total(void);
u64 mb_meminfo_wmark_high(void);
void mb_meminfo_refresh_commit_limit(bool force);

/**
 * struct mb_next - when the evaluator wants to run again
 * @poll_ms:	the adaptive poll interval
 * @poll_min_ms: the shortest poll interval: reclaim may not cause
 *		evaluations more often than this
 * @deferred_ns: a rate-limited notification is due in this many ns, 0 if none
 * @far:	far from the low threshold: the poll may be late, a deferrable
 *		timer will do, backed by a normal one (see trigger.c)
 */
struct mb_next {
	u32 poll_ms;
	u32 poll_min_ms;
	u64 deferred_ns;
	bool far;
};

/* eval.c */
int mb_eval_init(const struct mb_config *cfg);
void mb_eval_run(u32 reason, bool force, struct mb_next *next);
void mb_eval_get_config(struct mb_config *cfg);
enum mb_cfg_err mb_eval_set_config(const struct mb_config *cfg);
void mb_eval_query(struct mb_msg *msg);
u64 mb_eval_count(u32 reason);

/* trigger.c */
int mb_trigger_init(void);
void mb_trigger_exit(void);
void mb_trigger_sync(u32 reason);
u32 mb_trigger_reason(u32 reason);

/* history.c */
int mb_history_init(unsigned int size);
void mb_history_exit(void);
void mb_history_add(const struct mb_msg *msg);
bool mb_history_last(struct mb_msg *msg);
bool mb_history_get(u64 seq, struct mb_msg *msg);
void mb_history_range(u64 *oldest, u64 *newest);
unsigned int mb_history_size(void);

/* netlink.c */
int mb_netlink_init(bool init_netns_only);
void mb_netlink_exit(void);
void mb_netlink_notify(const struct mb_msg *msg);

/* sysfs.c */
int mb_sysfs_init(void);
void mb_sysfs_exit(void);
void mb_sysfs_notify(void);

#endif /* _MEMBROKER_H */
