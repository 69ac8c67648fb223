// SPDX-License-Identifier: GPL-2.0
/*
 * membroker: the evaluator.
 *
 * Holds the configuration and the current state, turns a measurement into
 * a state message with the rules of state.c, and publishes it: next
 * sequence number, history entry, netlink multicast, sysfs_notify.  It is
 * only ever run under trigger.c's lock (by the evaluation work item or a
 * request's mb_trigger_sync()), so there is a single publisher at a time
 * and sequence numbers, history and events stay in order.
 */
#include <linux/atomic.h>
#include <linux/jiffies.h>
#include <linux/kernel.h>
#include <linux/mutex.h>
#include <linux/string.h>
#include <linux/time64.h>
#include <linux/ktime.h>

#include "membroker.h"

/*
 * Messages about the fallback to automatic thresholds: at most this many
 * per interval.  A balloon that moves memory back and forth across the
 * point where the configured thresholds stop fitting would otherwise
 * write two lines per swing.
 */
#define MB_FALLBACK_LOG_BURST		2
#define MB_FALLBACK_LOG_INTERVAL	(60 * HZ)

static struct {
	struct mutex lock;	/* protects everything below */
	struct mb_config cfg;
	u32 state;		/* evaluated state, 0 before the first run */
	u64 tracked_total;	/* MemTotal the thresholds are based on */
	bool fallback;		/* configured thresholds did not fit */
	bool fallback_logged;	/* what the latest message said */
	unsigned int fallback_changes;	/* since the latest message */
	unsigned int log_count;	/* messages in the interval from @log_start */
	unsigned long log_start;	/* jiffies */
	bool published;		/* @last is valid */
	struct mb_msg last;	/* the latest notification */
	struct mb_msg cur;	/* the latest evaluation */
} mb_ev;

/*
 * Evaluations run, by the reason each reported; read without a lock by
 * sysfs, hence atomic (a u64 could tear on 32-bit).
 */
static atomic64_t mb_eval_counts[__MEMBROKER_REASON_MAX];

static void mb_eval_publish(struct mb_msg *msg)
{
	msg->seq = mb_ev.published ? mb_ev.last.seq + 1 : 1;
	mb_history_add(msg);
	mb_ev.last = *msg;
	mb_ev.published = true;
	mb_netlink_notify(msg);
	mb_sysfs_notify();
}

/*
 * Say in the kernel log whether the configured thresholds are in force,
 * when that changed since the latest message: at once, but at most
 * MB_FALLBACK_LOG_BURST times per MB_FALLBACK_LOG_INTERVAL.  A change
 * held back is logged by the first evaluation after the interval, if it
 * still holds then, with how many changes went unlogged; so the latest
 * line is never wrong for longer than the interval.  Called with
 * mb_ev.lock held.
 */
static void mb_eval_log_fallback(void)
{
	char more[48] = "";

	if (mb_ev.fallback == mb_ev.fallback_logged)
		return;
	if (time_after_eq(jiffies,
			  mb_ev.log_start + MB_FALLBACK_LOG_INTERVAL)) {
		mb_ev.log_start = jiffies;
		mb_ev.log_count = 0;
	}
	if (mb_ev.log_count >= MB_FALLBACK_LOG_BURST)
		return;
	mb_ev.log_count++;

	/* The changes there and back that were not logged */
	if (mb_ev.fallback_changes > 1)
		snprintf(more, sizeof(more), " (%u changes not logged)",
			 mb_ev.fallback_changes - 1);
	if (mb_ev.fallback)
		pr_warn("configured thresholds do not fit %llu bytes of memory, using automatic ones%s\n",
			mb_ev.tracked_total, more);
	else
		pr_info("configured thresholds in force again%s\n", more);
	mb_ev.fallback_logged = mb_ev.fallback;
	mb_ev.fallback_changes = 0;
}

/**
 * mb_eval_run - measure, classify, publish if due
 * @reason:	enum membroker_reason, why this evaluation runs
 * @force:	publish even if nothing changed (after SET_CONFIG)
 * @next:	when the caller should run the evaluation again
 *
 * Called under trigger.c's lock only.
 */
void mb_eval_run(u32 reason, bool force, struct mb_next *next)
{
	struct mb_thresholds t;
	struct mb_sample s;
	struct mb_msg cur, pub;
	enum mb_publish what;
	u64 wait_ns;

	mb_meminfo_sample(&s);
	reason = mb_trigger_reason(reason);

	mutex_lock(&mb_ev.lock);
	if (!mb_ev.tracked_total ||
	    mb_state_total_changed(mb_ev.tracked_total, s.total)) {
		/* CommitLimit follows MemTotal: have it read again now */
		if (mb_ev.tracked_total)
			mb_meminfo_refresh_commit_limit(true);
		mb_ev.tracked_total = s.total;
	}

	mb_state_thresholds(&mb_ev.cfg, mb_ev.tracked_total, s.wmark_high, &t);
	if (t.fallback != mb_ev.fallback) {
		mb_ev.fallback = t.fallback;
		mb_ev.fallback_changes++;
	}
	mb_eval_log_fallback();
	mb_ev.state = mb_state_next(mb_ev.state, s.available, &t);

	memset(&cur, 0, sizeof(cur));
	cur.seq = mb_ev.published ? mb_ev.last.seq : 0;
	cur.timestamp_ns = ktime_get_ns();
	cur.available = s.available;
	cur.total = s.total;
	cur.low = t.low;
	cur.high = t.high;
	cur.committed = s.committed;
	cur.commit_limit = s.commit_limit;
	cur.state = mb_ev.state;
	cur.flags = mb_state_flags(&s, mb_ev.cfg.virtual_low_percent);
	cur.reason = reason;

	if (force) {
		pub = cur;
		what = MB_PUBLISH_NOW;
		wait_ns = 0;
	} else {
		what = mb_state_decide(mb_ev.published ? &mb_ev.last : NULL,
				       &cur,
				       (u64)mb_ev.cfg.ratelimit_ms * NSEC_PER_MSEC,
				       &pub, &wait_ns);
	}
	if (what == MB_PUBLISH_NOW) {
		mb_eval_publish(&pub);
		cur.seq = pub.seq;
	}
	mb_ev.cur = cur;
	if (reason < ARRAY_SIZE(mb_eval_counts))
		atomic64_inc(&mb_eval_counts[reason]);

	next->poll_ms = mb_state_poll_ms(cur.state, cur.available, &t,
					 &mb_ev.cfg, &next->far);
	next->poll_min_ms = mb_ev.cfg.poll_min_ms;
	next->deferred_ns = wait_ns;
	mutex_unlock(&mb_ev.lock);
}

/**
 * mb_eval_query - a fresh evaluation, as GET_STATE wants it
 * @msg:	the evaluation; its seq is the latest notification's
 *
 * Runs an evaluation (which publishes if something changed) and copies
 * out its result, or that of an even later evaluation.
 */
void mb_eval_query(struct mb_msg *msg)
{
	mb_trigger_sync(MEMBROKER_REASON_QUERY);

	mutex_lock(&mb_ev.lock);
	*msg = mb_ev.cur;
	mutex_unlock(&mb_ev.lock);
	msg->reason = MEMBROKER_REASON_QUERY;
}

/**
 * mb_eval_count - how many evaluations reported a reason
 * @reason:	enum membroker_reason; MEMBROKER_REASON_UNSPEC for all of them
 *
 * Counted since the module was loaded, under the reason the evaluation
 * itself carried (the one its notification, if any, shows; a GET_STATE
 * reply always says QUERY, but its evaluation may carry a more important
 * reason that was pending).
 *
 * Return: the count; 0 for an unknown reason.
 */
u64 mb_eval_count(u32 reason)
{
	u64 sum = 0;
	unsigned int i;

	if (reason != MEMBROKER_REASON_UNSPEC)
		return reason < ARRAY_SIZE(mb_eval_counts) ?
		       atomic64_read(&mb_eval_counts[reason]) : 0;
	for (i = 0; i < ARRAY_SIZE(mb_eval_counts); i++)
		sum += atomic64_read(&mb_eval_counts[i]);
	return sum;
}

/**
 * mb_eval_get_config - the configuration as set
 * @cfg:	where to copy it
 */
void mb_eval_get_config(struct mb_config *cfg)
{
	mutex_lock(&mb_ev.lock);
	*cfg = mb_ev.cfg;
	mutex_unlock(&mb_ev.lock);
}

/* MB_CFG_F_* of the values that differ between @a and @b */
static u32 mb_eval_config_diff(const struct mb_config *a,
			       const struct mb_config *b)
{
	return (a->low_bytes != b->low_bytes ? MB_CFG_F_LOW : 0) |
	       (a->high_bytes != b->high_bytes ? MB_CFG_F_HIGH : 0) |
	       (a->hysteresis_bytes != b->hysteresis_bytes ?
		MB_CFG_F_HYST : 0) |
	       (a->poll_min_ms != b->poll_min_ms ? MB_CFG_F_POLL_MIN : 0) |
	       (a->poll_max_ms != b->poll_max_ms ? MB_CFG_F_POLL_MAX : 0) |
	       (a->ratelimit_ms != b->ratelimit_ms ? MB_CFG_F_RATELIMIT : 0) |
	       (a->virtual_low_percent != b->virtual_low_percent ?
		MB_CFG_F_PERCENT : 0);
}

/**
 * mb_eval_set_config - check and apply a whole configuration
 * @cfg:	the new configuration
 *
 * Values that do not change are not checked against total memory again
 * (see mb_state_check_config()), so a configuration sent back as it is
 * always applies.  On success, evaluates at once and publishes with
 * reason CONFIG, whether or not anything changed, so the caller sees the
 * thresholds in force.
 *
 * Return: MB_CFG_OK, or why @cfg was refused (nothing changed then).
 */
enum mb_cfg_err mb_eval_set_config(const struct mb_config *cfg)
{
	enum mb_cfg_err err;

	mutex_lock(&mb_ev.lock);
	err = mb_state_check_config(cfg, mb_eval_config_diff(cfg, &mb_ev.cfg),
				    mb_meminfo_total(),
				    mb_meminfo_wmark_high());
	if (err == MB_CFG_OK)
		mb_ev.cfg = *cfg;
	mutex_unlock(&mb_ev.lock);

	if (err == MB_CFG_OK)
		mb_trigger_sync(MEMBROKER_REASON_CONFIG);
	return err;
}

/**
 * mb_eval_init - set the initial configuration
 * @cfg:	from the module parameters
 *
 * Return: 0, or -EINVAL (with a message in the kernel log) if @cfg is
 * not acceptable.
 */
int mb_eval_init(const struct mb_config *cfg)
{
	enum mb_cfg_err err;
	unsigned int i;

	err = mb_state_check_config(cfg, MB_CFG_F_ALL, mb_meminfo_total(),
				    mb_meminfo_wmark_high());
	if (err != MB_CFG_OK) {
		pr_err("invalid module parameters: %s\n",
		       mb_state_cfg_strerror(err));
		return -EINVAL;
	}

	memset(&mb_ev, 0, sizeof(mb_ev));
	mutex_init(&mb_ev.lock);
	/* The first message is due at once. */
	mb_ev.log_start = jiffies - MB_FALLBACK_LOG_INTERVAL;
	for (i = 0; i < ARRAY_SIZE(mb_eval_counts); i++)
		atomic64_set(&mb_eval_counts[i], 0);
	mb_ev.cfg = *cfg;
	return 0;
}
