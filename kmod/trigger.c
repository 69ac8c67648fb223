// SPDX-License-Identifier: GPL-2.0
/*
 * membroker: what causes evaluations, and when they run.
 *
 * Evaluations run in one work item, @eval, on a dedicated ordered
 * WQ_MEM_RECLAIM workqueue: its rescuer thread lets evaluations progress
 * when memory is so short that no new worker can be created, which is
 * exactly when a LOW notification matters most.  Requests evaluate in
 * their own context instead (mb_trigger_sync()); @lock serialises both.
 *
 * Sources of evaluations:
 *  - a shrinker: the kernel calls count_objects() on every pass of
 *    reclaim, the earliest sign of pressure it gives.  Sustained reclaim
 *    calls it hundreds of times a second, so reclaim evaluates at once
 *    only if the latest evaluation started poll_min_ms ago or more, and
 *    otherwise when that much time has passed (a separate timer, @reclaim);
 *    drop_caches runs the shrinkers too, but is not reclaim;
 *  - the memory hotplug notifier (MEM_ONLINE, MEM_OFFLINE, and their
 *    cancellations); any evaluation that runs while a memory block is
 *    being onlined or offlined is named HOTPLUG too;
 *  - the OOM notifier, called right before the OOM killer picks a victim;
 *  - an adaptive poll (interval from mb_state_poll_ms()), on a normal
 *    timer near the threshold and a deferrable one far from it, where an
 *    idle CPU need not wake up just to find nothing changed.  But a
 *    deferrable timer fires only when its CPU happens to wake, which on
 *    a NO_HZ machine may be never while a consumer on another CPU eats
 *    the headroom: far from the threshold a normal timer backs it up at
 *    MB_TRIGGER_BACKSTOP times the interval, so whatever the CPUs do,
 *    evaluations are at most that far apart;
 *  - a deferred evaluation when the rate limit held a notification back;
 *  - GET_STATE and SET_CONFIG, whose evaluation runs in their own context
 *    (mb_trigger_sync()).
 *
 * Kicks may come from reclaim and atomic context: they only record their
 * reason in an atomic mask and queue @eval (or, for reclaim, arm
 * @reclaim), never allocate, never block.
 */
#include <linux/atomic.h>
#include <linux/bitops.h>
#include <linux/jiffies.h>
#include <linux/kernel.h>
#include <linux/ktime.h>
#include <linux/memory.h>
#include <linux/mutex.h>
#include <linux/notifier.h>
#include <linux/oom.h>
#include <linux/sched.h>
#include <linux/shrinker.h>
#include <linux/workqueue.h>

#include "membroker.h"

/* Reasons by importance: the first one pending names an evaluation. */
static const u8 mb_reason_rank[] = {
	MEMBROKER_REASON_CONFIG,	/* SET_CONFIG promises this reason */
	MEMBROKER_REASON_OOM,
	MEMBROKER_REASON_HOTPLUG,
	MEMBROKER_REASON_RECLAIM,
	MEMBROKER_REASON_QUERY,
	MEMBROKER_REASON_LOAD,
	MEMBROKER_REASON_DEFERRED,
	MEMBROKER_REASON_POLL,
};

/* The far poll's normal timer, in multiples of its interval */
#define MB_TRIGGER_BACKSTOP	2

/* Every reason but RECLAIM evaluates at once, see mb_trigger_kick(). */
#define MB_TRIGGER_AT_ONCE	(~BIT(MEMBROKER_REASON_RECLAIM))

static struct {
	struct workqueue_struct *wq;
	struct delayed_work eval;	/* the evaluation, normal timer */
	struct delayed_work idle;	/* deferrable timer, only kicks @eval */
	struct delayed_work reclaim;	/* normal timer, only kicks @eval */
	atomic_t pending;		/* BIT(reason) of kicks not evaluated */
	atomic_t hotplug_busy;		/* memory blocks going on/offline */
	atomic64_t last_start_ns;	/* when the latest evaluation began */
	atomic64_t reclaim_gap_ns;	/* poll_min_ms, for reclaim kicks */
#ifdef MB_HAVE_SHRINKER_ALLOC
	struct shrinker *shrinker;
#else
	struct shrinker shrinker;
#endif
	struct notifier_block mem_nb;
	struct notifier_block oom_nb;

	struct mutex lock;	/* one evaluation at a time; and the below */
	bool stopping;		/* no more scheduling, see mb_trigger_exit() */
	bool timer_armed;	/* @eval's timer is armed ... */
	unsigned long timer_due; /* ... to expire then (jiffies) ... */
	u32 timer_reason;	/* ... for this reason */
	struct mb_next next;	/* the latest evaluation's, see _eval_work() */
} mb_trig;

static u32 mb_trigger_pick_reason(u32 mask)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(mb_reason_rank); i++)
		if (mask & BIT(mb_reason_rank[i]))
			return mb_reason_rank[i];
	return 0;
}

/*
 * Ask for an evaluation now.  If a reason that evaluates at once was
 * pending already, the work is queued and has not started (it clears the
 * mask first thing), so it will see this reason too: skipping the requeue
 * keeps a storm of kicks down to one atomic operation each.  A pending
 * RECLAIM alone may be waiting for its turn, so it does not count.
 */
static void mb_trigger_kick(u32 reason)
{
	if (atomic_fetch_or(BIT(reason), &mb_trig.pending) & MB_TRIGGER_AT_ONCE)
		return;
	mod_delayed_work(mb_trig.wq, &mb_trig.eval, 0);
}

/* Round up, and one more: a timer may fire up to a tick early in ns. */
static unsigned long mb_trigger_ns_to_jiffies(u64 ns)
{
	return nsecs_to_jiffies(ns + TICK_NSEC - 1) + 1;
}

/* How long reclaim must wait before it may evaluate: 0 for now. */
static u64 mb_trigger_reclaim_wait_ns(void)
{
	u64 due = atomic64_read(&mb_trig.last_start_ns) +
		  atomic64_read(&mb_trig.reclaim_gap_ns);
	u64 now = ktime_get_ns();

	return now < due ? due - now : 0;
}

/*
 * Reclaim is going on.  The first kick after a quiet spell evaluates at
 * once; while reclaim goes on, evaluations it causes start at least
 * poll_min_ms after the previous evaluation, whatever caused that one.  A
 * kick that finds any reason pending does nothing: either an evaluation
 * is queued to run at once, or @reclaim is armed and will queue one.
 */
static void mb_trigger_reclaim_kick(void)
{
	u64 wait;

	if (atomic_fetch_or(BIT(MEMBROKER_REASON_RECLAIM), &mb_trig.pending))
		return;
	wait = mb_trigger_reclaim_wait_ns();
	if (!wait)
		mod_delayed_work(mb_trig.wq, &mb_trig.eval, 0);
	else
		queue_delayed_work(mb_trig.wq, &mb_trig.reclaim,
				   mb_trigger_ns_to_jiffies(wait));
}

static void mb_trigger_reclaim_work(struct work_struct *work)
{
	u64 wait;

	/* Evaluated meanwhile, for another reason: nothing left to do. */
	if (!(atomic_read(&mb_trig.pending) & BIT(MEMBROKER_REASON_RECLAIM)))
		return;
	/*
	 * An evaluation ran since this timer was armed and reclaim kicked
	 * again after it (finding this timer still armed): its turn comes
	 * later.
	 */
	wait = mb_trigger_reclaim_wait_ns();
	if (wait)
		queue_delayed_work(mb_trig.wq, &mb_trig.reclaim,
				   mb_trigger_ns_to_jiffies(wait));
	else
		mod_delayed_work(mb_trig.wq, &mb_trig.eval, 0);
}

static void mb_trigger_eval_at(u64 ns, u32 reason, bool exact)
{
	unsigned long delay = exact ? mb_trigger_ns_to_jiffies(ns) :
				      nsecs_to_jiffies(ns + TICK_NSEC - 1);

	/*
	 * Never postpones: @eval is pending either at once (a kick queued
	 * it, and that run will schedule again) or, after a request's
	 * evaluation, with its timer; mb_trigger_schedule() brings that
	 * forward where it must.
	 */
	if (queue_delayed_work(mb_trig.wq, &mb_trig.eval, delay)) {
		mb_trig.timer_armed = true;
		mb_trig.timer_due = jiffies + delay;
		mb_trig.timer_reason = reason;
	}
}

/*
 * Called with mb_trig.lock held, right after an evaluation (or a run of
 * the work that had none, see mb_trigger_eval_work()).  @eval's own timer
 * is always armed, and is always a normal one: for the poll near the
 * threshold, for a deferred notification (which must not wait for an idle
 * CPU), and far from the threshold as the backstop of the deferrable
 * @idle.
 */
static void mb_trigger_schedule(const struct mb_next *next)
{
	u64 poll_ns = (u64)next->poll_ms * NSEC_PER_MSEC;
	u64 ns;
	u32 reason;

	atomic64_set(&mb_trig.reclaim_gap_ns,
		     (u64)next->poll_min_ms * NSEC_PER_MSEC);

	if (next->far) {
		mod_delayed_work(mb_trig.wq, &mb_trig.idle,
				 msecs_to_jiffies(next->poll_ms));
		poll_ns *= MB_TRIGGER_BACKSTOP;
	} else {
		cancel_delayed_work(&mb_trig.idle);
	}

	if (next->deferred_ns && next->deferred_ns <= poll_ns) {
		ns = next->deferred_ns;
		reason = MEMBROKER_REASON_DEFERRED;
	} else {
		ns = poll_ns;
		reason = MEMBROKER_REASON_POLL;
	}

	/*
	 * A request evaluates outside the work, so the timer an earlier run
	 * armed may still be pending, and later than this evaluation wants
	 * (a notification the rate limit now holds back, a threshold now
	 * near): then have the work run at once, which evaluates nothing
	 * more and arms the timer from @next.
	 */
	if (mb_trig.timer_armed && timer_pending(&mb_trig.eval.timer)) {
		if (time_before(jiffies + nsecs_to_jiffies(ns),
				mb_trig.timer_due))
			mod_delayed_work(mb_trig.wq, &mb_trig.eval, 0);
		return;
	}
	mb_trigger_eval_at(ns, reason, reason == MEMBROKER_REASON_DEFERRED);
}

/* One evaluation; called with mb_trig.lock held. */
static void mb_trigger_eval_locked(u32 reason, u32 mask)
{
	atomic64_set(&mb_trig.last_start_ns, ktime_get_ns());
	mb_eval_run(reason, mask & BIT(MEMBROKER_REASON_CONFIG), &mb_trig.next);
	mb_trigger_schedule(&mb_trig.next);
}

/*
 * A run's reason is the most important one pending, or the timer's if the
 * timer ran it.  A run with neither was queued by a kick whose reason an
 * earlier run took (the kick set its bit, that run cleared the mask, then
 * the kick queued the work), or by a request whose evaluation wants the
 * timer sooner: its cause was evaluated already, and it must not evaluate
 * again under a reason nobody gave (the poll's, a deferred
 * notification's).  It only arms the timers again.
 */
static void mb_trigger_eval_work(struct work_struct *work)
{
	u32 mask = atomic_xchg(&mb_trig.pending, 0);
	bool timer;
	u32 reason;

	mutex_lock(&mb_trig.lock);
	if (mb_trig.stopping)
		goto out;

	/* Armed, and due: a kick that cancelled it came before it expired */
	timer = mb_trig.timer_armed &&
		time_after_eq(jiffies, mb_trig.timer_due);
	mb_trig.timer_armed = false;
	reason = mb_trigger_pick_reason(mask) ?:
		 (timer ? mb_trig.timer_reason : 0);
	if (reason)
		mb_trigger_eval_locked(reason, mask);
	else
		mb_trigger_schedule(&mb_trig.next);
out:
	mutex_unlock(&mb_trig.lock);
}

static void mb_trigger_idle_work(struct work_struct *work)
{
	mb_trigger_kick(MEMBROKER_REASON_POLL);
}

/**
 * mb_trigger_sync - evaluate now, in the caller's context
 * @reason:	enum membroker_reason
 *
 * For process context only (module load, GET_STATE, SET_CONFIG).  An
 * evaluation that started after the call has finished when it returns:
 * this one, run right here under the same lock as the work item's, so
 * that the evaluator still has one publisher at a time.  It never waits
 * for the workqueue, where a request would wait for a worker (under
 * memory pressure, for the rescuer) holding genetlink's cb_lock, which
 * every generic netlink family needs.  The lock is only ever held for
 * one evaluation, which neither sleeps nor allocates in a way that waits.
 * Kicks still pending name the evaluation if they are more important,
 * and stay pending for the work item.
 */
void mb_trigger_sync(u32 reason)
{
	u32 mask;

	mutex_lock(&mb_trig.lock);
	if (!mb_trig.stopping) {
		mask = BIT(reason) | atomic_read(&mb_trig.pending);
		mb_trigger_eval_locked(mb_trigger_pick_reason(mask), mask);
	}
	mutex_unlock(&mb_trig.lock);
}

/*
 * A pass of the shrinkers.  Reclaimers run with PF_MEMALLOC set (kswapd
 * with PF_KSWAPD too; direct, memcg and node reclaim set it around
 * reclaim); writing to /proc/sys/vm/drop_caches runs the shrinkers from
 * the writing task, which has neither, and frees memory rather than
 * needing it: that is no sign of pressure.  Must not allocate or block,
 * and reports no objects so that reclaim never calls scan_objects().
 */
static unsigned long mb_trigger_count(struct shrinker *shrinker,
				      struct shrink_control *sc)
{
	if (current->flags & (PF_MEMALLOC | PF_KSWAPD))
		mb_trigger_reclaim_kick();
	return 0;
}

static unsigned long mb_trigger_scan(struct shrinker *shrinker,
				     struct shrink_control *sc)
{
	return SHRINK_STOP;
}

/*
 * Total memory changes page by page while a block is onlined or offlined,
 * before MEM_ONLINE or MEM_OFFLINE is sent: a poll that runs in between
 * sees part of the change, and must name hotplug as its cause all the
 * same.  Memory hotplug operations are serialised by the kernel, so
 * @hotplug_busy is 0 or 1; it never goes below 0 even if the module was
 * loaded in the middle of an operation.
 */
static int mb_trigger_memory_event(struct notifier_block *nb,
				   unsigned long action, void *data)
{
	switch (action) {
	case MEM_GOING_ONLINE:
	case MEM_GOING_OFFLINE:
		atomic_inc(&mb_trig.hotplug_busy);
		/* Pairs with smp_rmb() in mb_trigger_reason(). */
		smp_mb__after_atomic();
		break;
	case MEM_ONLINE:
	case MEM_OFFLINE:
	case MEM_CANCEL_ONLINE:
	case MEM_CANCEL_OFFLINE:
		/* Kick first: no evaluation in between goes unnamed. */
		mb_trigger_kick(MEMBROKER_REASON_HOTPLUG);
		atomic_dec_if_positive(&mb_trig.hotplug_busy);
		break;
	}
	return NOTIFY_OK;
}

/**
 * mb_trigger_reason - the reason an evaluation reports
 * @reason:	the reason it was run for
 *
 * Called after memory was measured: if a memory block was being onlined
 * or offlined at that moment, or has been since the evaluation started
 * (its HOTPLUG kick is pending), the measurement may show that change,
 * and HOTPLUG names it better than a poll or a query would.
 *
 * Return: @reason, or MEMBROKER_REASON_HOTPLUG where it is more important.
 */
u32 mb_trigger_reason(u32 reason)
{
	/*
	 * Pairs with smp_mb__after_atomic() in mb_trigger_memory_event():
	 * a measurement that saw pages change hands sees the block busy.
	 */
	smp_rmb();
	if (!atomic_read(&mb_trig.hotplug_busy)) {
		/*
		 * Busy when memory was measured, but not any more: then it
		 * has kicked, since the kick's atomic_fetch_or() is ordered
		 * before atomic_dec_if_positive().  The kick waits in
		 * @pending until the next evaluation.
		 */
		smp_rmb();
		if (!(atomic_read(&mb_trig.pending) &
		      BIT(MEMBROKER_REASON_HOTPLUG)))
			return reason;
	}
	return mb_trigger_pick_reason(BIT(reason) |
				      BIT(MEMBROKER_REASON_HOTPLUG));
}

static int mb_trigger_oom_event(struct notifier_block *nb,
				unsigned long action, void *freed)
{
	/* We free nothing: leave *freed alone so the OOM killer goes on. */
	mb_trigger_kick(MEMBROKER_REASON_OOM);
	return NOTIFY_OK;
}

#ifdef MB_HAVE_SHRINKER_ALLOC
static int mb_trigger_shrinker_register(void)
{
	mb_trig.shrinker = shrinker_alloc(0, KBUILD_MODNAME);
	if (!mb_trig.shrinker)
		return -ENOMEM;
	mb_trig.shrinker->count_objects = mb_trigger_count;
	mb_trig.shrinker->scan_objects = mb_trigger_scan;
	shrinker_register(mb_trig.shrinker);
	return 0;
}

static void mb_trigger_shrinker_unregister(void)
{
	shrinker_free(mb_trig.shrinker);
}
#else
static int mb_trigger_shrinker_register(void)
{
	mb_trig.shrinker.count_objects = mb_trigger_count;
	mb_trig.shrinker.scan_objects = mb_trigger_scan;
	mb_trig.shrinker.seeks = DEFAULT_SEEKS;
	return register_shrinker(&mb_trig.shrinker, KBUILD_MODNAME);
}

static void mb_trigger_shrinker_unregister(void)
{
	unregister_shrinker(&mb_trig.shrinker);
}
#endif

/*
 * Stop evaluating for good.  The callers made sure no kick can come from
 * outside this file any more; inside it, an evaluation that sees @stopping
 * schedules nothing, so once @idle and @reclaim are cancelled nothing can
 * queue @eval.
 */
static void mb_trigger_stop_works(void)
{
	mutex_lock(&mb_trig.lock);
	mb_trig.stopping = true;
	mutex_unlock(&mb_trig.lock);

	cancel_delayed_work_sync(&mb_trig.idle);
	cancel_delayed_work_sync(&mb_trig.reclaim);
	cancel_delayed_work_sync(&mb_trig.eval);
	destroy_workqueue(mb_trig.wq);
}

/**
 * mb_trigger_init - first evaluation, then start all triggers
 *
 * Return: 0 or -errno.
 */
int mb_trigger_init(void)
{
	int ret;

	mutex_init(&mb_trig.lock);
	mb_trig.stopping = false;
	mb_trig.timer_armed = false;
	mb_trig.timer_reason = MEMBROKER_REASON_POLL;
	atomic_set(&mb_trig.pending, 0);
	atomic_set(&mb_trig.hotplug_busy, 0);
	atomic64_set(&mb_trig.last_start_ns, 0);
	atomic64_set(&mb_trig.reclaim_gap_ns, 0);
	INIT_DELAYED_WORK(&mb_trig.eval, mb_trigger_eval_work);
	INIT_DEFERRABLE_WORK(&mb_trig.idle, mb_trigger_idle_work);
	INIT_DELAYED_WORK(&mb_trig.reclaim, mb_trigger_reclaim_work);
	mb_trig.mem_nb.notifier_call = mb_trigger_memory_event;
	mb_trig.oom_nb.notifier_call = mb_trigger_oom_event;

	mb_trig.wq = alloc_ordered_workqueue(KBUILD_MODNAME,
					     WQ_MEM_RECLAIM | WQ_HIGHPRI);
	if (!mb_trig.wq)
		return -ENOMEM;

	/* The state is known before anything can ask for it. */
	mb_trigger_sync(MEMBROKER_REASON_LOAD);

	ret = mb_trigger_shrinker_register();
	if (ret)
		goto err_stop;
	ret = register_memory_notifier(&mb_trig.mem_nb);
	if (ret)
		goto err_shrinker;
	ret = register_oom_notifier(&mb_trig.oom_nb);
	if (ret)
		goto err_memory;
	return 0;

err_memory:
	unregister_memory_notifier(&mb_trig.mem_nb);
err_shrinker:
	mb_trigger_shrinker_unregister();
err_stop:
	mb_trigger_stop_works();
	return ret;
}

/**
 * mb_trigger_exit - stop all triggers and evaluations
 *
 * The netlink family must be gone already, so that no GET_STATE or
 * SET_CONFIG can ask for an evaluation any more.
 */
void mb_trigger_exit(void)
{
	unregister_oom_notifier(&mb_trig.oom_nb);
	unregister_memory_notifier(&mb_trig.mem_nb);
	mb_trigger_shrinker_unregister();
	mb_trigger_stop_works();
}
