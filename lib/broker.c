// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Brokers: a pool of clerks that share one memory budget (SQL Server's
 * memory brokers).  On every notification a broker sets each clerk's
 * target and, when memory is short, asks the clerks to give some back.
 *
 * For every clerk it uses the bytes charged now ("allocated") and the
 * growth since the previous notification: growth over the same interval
 * again, capped at MB_BROKER_HORIZON_NS, is the "predicted" amount for the
 * next one.  With the pool's sum of both:
 *
 *   LOW     lower the pool's target by one step: shrink_step_percent of
 *           the pool plus the predicted growth, never below min_bytes,
 *           and ask the clerks for what they hold above it.  The step is
 *           taken from the cheapest clerks first (lowest priority; the
 *           larger one first between equals), each asked for at most what
 *           it holds.  Every LOW notification takes one more step from
 *           the target the previous one set (not from what the clerks
 *           managed to free), so what a clerk could not give back is
 *           asked again, with the next step on top: a cache whose
 *           entries are larger than a step still gets to drop one, and a
 *           failing clerk's share moves on to the others.  The monitor
 *           re-delivers LOW at its low_repeat_ms interval while the state
 *           lasts, so shrinking goes on in steps until pressure ends, and
 *           stops as soon as it does.
 *   STEADY  do not grow much: targets are the current sizes plus a
 *           growth allowance for the pool, a quarter of the headroom
 *           above the low threshold (available - low, from the
 *           notification), within max_bytes, shared out as HIGH shares
 *           its room.  Without it a cache that starts on a quiet machine
 *           would stay empty for as long as STEADY lasts (hours, with the
 *           module); with it, the pool growing by all of it still leaves
 *           three quarters of the headroom, so STEADY alone never brings
 *           LOW, and a later STEADY grants a quarter of what is left.
 *   HIGH    grow: every clerk gets its full share at once, so that its
 *           inserts alone take it back up, however long HIGH lasts (the
 *           module does not notify again while the state holds).  A
 *           pool without max_bytes has no budget to share: its targets
 *           are lifted (UINT64_MAX), and what ends the growth is the
 *           state itself, since the first notification that is not
 *           HIGH (STEADY: sent at once, as an escalation) holds the
 *           clerks near where they got to, and LOW shrinks them.  A pool with
 *           max_bytes shares out all the room below it: the predicted
 *           growth first, then what LOW took from each clerk (what it
 *           held before, until it has that again), each most expensive
 *           clerk first, then equal parts of what is left.
 *
 * In every state a pool above max_bytes gives back the excess, and the
 * targets never add up to more than max_bytes (see mb_broker_room() for
 * a clerk joining; it also gets what the previous decision's state
 * allows: in STEADY a share of its allowance, in LOW what it holds).
 * Shrink callbacks must free at most what they are asked for, so
 * min_bytes holds for LOW steps; only the excess over max_bytes is asked
 * of an mb_cache as a floor (whole entries, at least that much).  Every
 * decision, one per clerk per notification, goes into the broker's ring.
 *
 * With membrokerd in charge (sysbroker.c: the broker's monitor registered
 * its brokers with the daemon, which spoke lately), a LOW of the whole
 * machine is the daemon's to answer: the broker takes no step of its own
 * (the targets hold what the clerks have, as on any LOW; an excess over
 * max_bytes still goes), and the daemon asks the clerks it chose, through
 * mb_broker_sys_shrink(), for what it assigned them.  What the daemon took
 * it caps (sys_cap) until it lets the clerk grow back
 * (mb_broker_sys_cap()): every target the broker sets is held below the
 * cap.  Caps go when the connection does.  A LOW of the process's own
 * cgroup is the broker's alone.
 *
 * Shrink callbacks run with no library lock held.  A clerk being shrunk is
 * marked busy: another notification skips it rather than calling it
 * concurrently, and removing or freeing it waits until the call returns
 * (unless done from inside the call).  A failed call is counted on the
 * clerk and recorded with its error and freed = 0, a slow one with its
 * duration (the clerk's snapshot has the longest); the others are still
 * called, and the next step asks again.
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define MB_BROKER_HORIZON_NS	(10 * MB_NSEC_PER_SEC)
#define MB_BROKER_DEF_STEP	10
#define MB_BROKER_DEF_RING	1024
/* STEADY: the pool may grow by 1/MB_BROKER_STEADY_DIV of the headroom */
#define MB_BROKER_STEADY_DIV	4

struct mb_member {
	struct mb_clerk *clerk;
	struct mb_member *next;
	uint32_t id;		/* the system broker's name for it */
	uint64_t btarget;	/* the broker's own target... */
	uint64_t sys_cap;	/* ...and the daemon's ceiling over it */
	uint64_t prev_bytes;
	uint64_t prev_time;
	bool have_prev;
	/* what it held before LOW took some, until it holds that again */
	uint64_t regrow;
	bool busy;		/* its shrinker is running */
	bool removed;		/* removed by its own shrinker: free after */
	pthread_t busy_thread;
};

struct mb_broker {
	char name[32];
	uint32_t id;		/* the system broker's name for it */
	struct mb_broker_opts opts;
	struct mb_monitor *mon;
	int sub_id;
	struct mb_lock lock;
	pthread_cond_t idle;	/* a member stopped being busy */
	uint64_t idle_waits;	/* waits on idle begun (tests) */
	struct mb_member *members;
	size_t nmembers;
	bool in_low;		/* the previous decision was for LOW */
	uint32_t state;		/* the previous decision's (0: none) */
	uint64_t steady_grant;	/* the growth allowance it handed out */
	uint64_t low_target;	/* the pool's target it set */
	struct mb_ring *ring;
	struct mb_broker *prev, *next;	/* all brokers, for fork */
};

/* one clerk's part in one decision */
struct mb_plan {
	struct mb_member *m;
	struct mb_clerk *clerk;		/* referenced while shrinking */
	struct mb_broker_record rec;
	uint32_t priority;
	uint64_t ask;
	uint64_t floor;			/* its part of the excess */
	uint64_t growth;
	uint64_t regrow;		/* see struct mb_member */
	bool call;
};

static struct mb_lock mb_brokers_lock;
static struct mb_broker *mb_brokers;
static pthread_once_t mb_brokers_once = PTHREAD_ONCE_INIT;
/* ids of brokers and members, unique in the process (0 is none) */
static _Atomic uint32_t mb_broker_serial;

static uint32_t mb_broker_next_id(void)
{
	uint32_t id;

	do
		id = atomic_fetch_add_explicit(&mb_broker_serial, 1,
					       memory_order_relaxed) + 1;
	while (!id);
	return id;
}

/* The clerk's target: the broker's, below the daemon's cap. */
static void mb_member_target(struct mb_member *m, uint64_t target)
{
	m->btarget = target;
	mb_clerk_set_target(m->clerk, MB_MIN(target, m->sys_cap));
}

static void mb_brokers_init(void)
{
	mb_lock_init(&mb_brokers_lock, MB_LOCK_INNER);
}

static void mb_broker_on_notify(struct mb_monitor *mon,
				const struct mb_notification *n, void *arg)
{
	(void)mon;
	mb_broker_notify(arg, n);
}

int mb_broker_new(struct mb_broker **out, const char *name,
		  struct mb_monitor *mon, const struct mb_broker_opts *opts)
{
	struct mb_broker *b;
	int err;

	if (!out)
		return -EINVAL;
	*out = NULL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	err = mb_name_copy(b->name, sizeof(b->name), name);
	if (!err)
		err = mb_opts_copy(&b->opts, sizeof(b->opts), opts);
	if (err)
		goto err_free;
	if (!b->opts.shrink_step_percent)
		b->opts.shrink_step_percent = MB_BROKER_DEF_STEP;
	if (b->opts.shrink_step_percent > 100 ||
	    (b->opts.max_bytes && b->opts.min_bytes > b->opts.max_bytes) ||
	    b->opts.reserved[0] || b->opts.reserved[1] ||
	    b->opts.reserved[2] || b->opts.reserved2) {
		err = -EINVAL;
		goto err_free;
	}
	err = mb_ring_new(&b->ring, b->opts.ring_capacity ?
			  b->opts.ring_capacity : MB_BROKER_DEF_RING,
			  sizeof(struct mb_broker_record));
	if (err)
		goto err_free;
	mb_lock_init(&b->lock, MB_LOCK_INNER);
	pthread_cond_init(&b->idle, NULL);
	b->sub_id = -1;
	b->id = mb_broker_next_id();

	pthread_once(&mb_brokers_once, mb_brokers_init);
	mb_lock(&mb_brokers_lock);
	b->next = mb_brokers;
	if (b->next)
		b->next->prev = b;
	mb_brokers = b;
	mb_unlock(&mb_brokers_lock);

	if (mon) {
		/* set before the first notification can come */
		b->mon = mb_monitor_ref(mon);
		/* the system broker learns of it with the next report */
		mb_monitor_sys_attach(mon, b);
		err = mb_monitor_subscribe(mon, mb_broker_on_notify, b);
		if (err < 0) {
			mb_broker_free(b);
			return err;
		}
		b->sub_id = err;
	}
	*out = b;
	return 0;

err_free:
	mb_ring_free(b->ring);
	free(b);
	return err;
}

/* Unlink @m; called with the lock held, @m not busy in another thread. */
static void mb_broker_unlink(struct mb_broker *b, struct mb_member *m)
{
	struct mb_member **pp;

	for (pp = &b->members; *pp; pp = &(*pp)->next) {
		if (*pp == m) {
			*pp = m->next;
			break;
		}
	}
	b->nmembers--;
	mb_clerk_release(m->clerk);
	if (m->busy)
		m->removed = true;	/* the notifier frees it */
	else
		free(m);
}

static struct mb_member *mb_broker_find(struct mb_broker *b,
					const struct mb_clerk *clerk)
{
	struct mb_member *m;

	for (m = b->members; m; m = m->next)
		if (m->clerk == clerk)
			return m;
	return NULL;
}

static bool mb_busy_elsewhere(const struct mb_member *m)
{
	return m->busy && !pthread_equal(m->busy_thread, pthread_self());
}

void mb_broker_free(struct mb_broker *broker)
{
	struct mb_member *m;

	if (!broker)
		return;
	/*
	 * No notification from the monitor can start or be running after;
	 * the reference kept the monitor's subscribers valid for this even
	 * if it was freed first.
	 */
	if (broker->mon) {
		/* waits for the system broker's use of it to end */
		mb_monitor_sys_detach(broker->mon, broker);
		mb_monitor_unsubscribe(broker->mon, broker->sub_id);
		mb_monitor_unref(broker->mon);
	}
	mb_lock(&broker->lock);
	while ((m = broker->members)) {
		while (mb_busy_elsewhere(m)) {
			broker->idle_waits++;
			mb_cond_wait(&broker->idle, &broker->lock);
		}
		/* the list may have changed while we waited */
		if (m == broker->members)
			mb_broker_unlink(broker, m);
	}
	mb_unlock(&broker->lock);

	mb_lock(&mb_brokers_lock);
	if (broker->prev)
		broker->prev->next = broker->next;
	else
		mb_brokers = broker->next;
	if (broker->next)
		broker->next->prev = broker->prev;
	mb_unlock(&mb_brokers_lock);

	mb_lock_destroy(&broker->lock);
	pthread_cond_destroy(&broker->idle);
	mb_ring_free(broker->ring);
	free(broker);
}

static uint64_t mb_add_sat(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/*
 * What a clerk joining may hold by the state the previous decision was
 * for: in LOW what it holds; in STEADY that plus an equal share of the
 * growth allowance; before any decision and in HIGH no limit (a pool with
 * a maximum then shares its room, see mb_broker_room()).
 */
static uint64_t mb_broker_join_want(struct mb_broker *b, uint64_t bytes)
{
	switch (b->state) {
	case MB_STATE_LOW:
		return bytes;
	case MB_STATE_STEADY:
		return mb_add_sat(bytes, b->steady_grant / (b->nmembers + 1));
	default:
		return UINT64_MAX;
	}
}

/*
 * The target of a clerk joining.  In a pool with a maximum the targets
 * never add up to more than it: the clerk gets what it holds plus an
 * equal share of what no member holds (no more than the state allows),
 * out of the room the others' targets leave, and when that is too
 * little, out of what their targets allow above what they hold (lowered
 * for it, newest member first).  A clerk holding more than there is room
 * for gets less than it holds; the next decision asks it for the rest.
 * Called with the lock held.
 */
static uint64_t mb_broker_room(struct mb_broker *b, struct mb_clerk *clerk)
{
	uint64_t max = b->opts.max_bytes, targets = 0, held, t, free;
	uint64_t bytes, unused, want, take, slack, state_want;
	struct mb_member *m;

	bytes = held = mb_clerk_bytes(clerk);
	state_want = mb_broker_join_want(b, bytes);
	if (!max)
		return state_want;
	for (m = b->members; m; m = m->next) {
		targets = mb_add_sat(targets,
				     MB_MIN(mb_clerk_target(m->clerk), max));
		held = mb_add_sat(held, mb_clerk_bytes(m->clerk));
	}
	free = max > targets ? max - targets : 0;
	unused = max > held ? max - held : 0;
	want = mb_add_sat(MB_MIN(bytes, max), unused / (b->nmembers + 1));
	want = MB_MIN(MB_MIN(want, max), state_want);
	/* the room nobody claimed: all of it, unless the state says less */
	if (free >= want)
		return state_want == UINT64_MAX ? free : want;
	for (m = b->members; m && free < want; m = m->next) {
		t = MB_MIN(mb_clerk_target(m->clerk), max);
		bytes = mb_clerk_bytes(m->clerk);
		slack = t > bytes ? t - bytes : 0;
		take = MB_MIN(slack, want - free);
		mb_member_target(m, t - take);
		free += take;
	}
	return free;
}

int mb_broker_add_clerk(struct mb_broker *broker, struct mb_clerk *clerk)
{
	struct mb_member *m;

	if (!broker || !clerk)
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	if (!mb_clerk_claim(clerk, broker)) {
		free(m);
		return mb_clerk_broker(clerk) == broker ? -EEXIST : -EBUSY;
	}
	m->clerk = clerk;
	m->id = mb_broker_next_id();
	m->sys_cap = UINT64_MAX;
	mb_lock(&broker->lock);
	/* the targets never add up to more than the pool's maximum */
	mb_member_target(m, mb_broker_room(broker, clerk));
	m->next = broker->members;
	broker->members = m;
	broker->nmembers++;
	mb_unlock(&broker->lock);
	return 0;
}

int mb_broker_remove_clerk(struct mb_broker *broker, struct mb_clerk *clerk)
{
	struct mb_member *m;

	if (!broker || !clerk)
		return -EINVAL;
	mb_lock(&broker->lock);
	for (;;) {
		m = mb_broker_find(broker, clerk);
		if (!m || !mb_busy_elsewhere(m))
			break;
		broker->idle_waits++;
		mb_cond_wait(&broker->idle, &broker->lock);
	}
	if (m)
		mb_broker_unlink(broker, m);
	mb_unlock(&broker->lock);
	return m ? 0 : -ENOENT;
}

uint64_t mb_broker_idle_waits(struct mb_broker *broker)
{
	uint64_t n;

	mb_lock(&broker->lock);
	n = broker->idle_waits;
	mb_unlock(&broker->lock);
	return n;
}

struct mb_ring *mb_broker_ring(struct mb_broker *broker)
{
	return broker ? broker->ring : NULL;
}

/* growth * min(dt, horizon) / dt: growth over the next interval */
static uint64_t mb_broker_predict(struct mb_member *m, uint64_t alloc,
				  uint64_t now)
{
	uint64_t dt, growth = 0;

	if (m->have_prev && alloc > m->prev_bytes && now > m->prev_time) {
		dt = now - m->prev_time;
		growth = (uint64_t)((unsigned __int128)(alloc - m->prev_bytes) *
				    MB_MIN(dt, MB_BROKER_HORIZON_NS) / dt);
	}
	if (!m->have_prev || now >= m->prev_time) {
		m->prev_bytes = alloc;
		m->prev_time = now;
		m->have_prev = true;
	}
	return growth;
}

static int mb_plan_cheap_first(const void *a, const void *b)
{
	const struct mb_plan *x = a, *y = b;

	if (x->priority != y->priority)
		return x->priority < y->priority ? -1 : 1;
	if (x->rec.allocated != y->rec.allocated)
		return x->rec.allocated > y->rec.allocated ? -1 : 1;
	return 0;
}

/*
 * Take @cut bytes from the cheapest clerks first; @over of it (the excess
 * over max_bytes) must go even where whole entries make that a little
 * more than asked: each clerk's part of it is its floor.
 */
static void mb_broker_cut(struct mb_plan *p, size_t n, uint64_t cut,
			  uint64_t over)
{
	size_t i;

	qsort(p, n, sizeof(*p), mb_plan_cheap_first);
	for (i = 0; i < n && cut; i++) {
		p[i].ask = MB_MIN(cut, p[i].rec.allocated);
		p[i].floor = MB_MIN(over, p[i].ask);
		cut -= p[i].ask;
		over -= p[i].floor;
	}
}

/*
 * Raise the targets out of @grant, most expensive clerk first: by the
 * predicted growth, or with @restore back up to what LOW took.  Returns
 * what is left of @grant.
 */
static uint64_t mb_broker_give(struct mb_plan *p, size_t n, uint64_t grant,
			       bool restore)
{
	uint64_t g, want;
	size_t i;

	for (i = n; i-- > 0 && grant;) {
		if (restore)
			want = p[i].regrow > p[i].rec.target ?
			       p[i].regrow - p[i].rec.target : 0;
		else
			want = p[i].growth;
		g = MB_MIN(want, grant);
		p[i].rec.target += g;
		grant -= g;
	}
	return grant;
}

/*
 * Share @grant out: the predicted growth first, then what LOW took, each
 * to the most expensive clerks first, then what is left in equal parts.
 */
static void mb_broker_grow(struct mb_plan *p, size_t n, uint64_t grant)
{
	uint64_t share;
	size_t i;

	qsort(p, n, sizeof(*p), mb_plan_cheap_first);
	grant = mb_broker_give(p, n, grant, false);
	grant = mb_broker_give(p, n, grant, true);
	/* the remainder of the division goes to the most expensive */
	for (i = n; i-- > 0 && grant;) {
		share = grant / (i + 1) + (grant % (i + 1) ? 1 : 0);
		p[i].rec.target += share;
		grant -= share;
	}
}

/*
 * How much a pool may grow in STEADY: a quarter of the headroom above the
 * low threshold, so that the pool, growing by all of it, leaves available
 * memory three quarters of the way from LOW; 0 when the reading does not
 * say (no figures, or not above the threshold).
 */
static uint64_t mb_broker_steady_room(const struct mb_notification *n)
{
	if (n->available <= n->low)
		return 0;
	return (n->available - n->low) / MB_BROKER_STEADY_DIV;
}

/*
 * Decide for every clerk; called with the broker lock held.  @defer: the
 * system broker answers this LOW, so take no step of our own.
 */
static void mb_broker_decide(struct mb_broker *b, struct mb_plan *p,
			     size_t n, const struct mb_notification *note,
			     bool defer)
{
	uint32_t state = note->state;
	const struct mb_broker_opts *o = &b->opts;
	uint64_t alloc = 0, growth = 0, step, cut = 0, over;
	uint64_t base, want, target;
	struct mb_member *m;
	size_t i;

	for (i = 0; i < n; i++) {
		alloc += p[i].rec.allocated;
		growth += p[i].growth;
		p[i].rec.target = p[i].rec.allocated;
		/* remember the size LOW started from, until it is regrown */
		m = p[i].m;
		if (state == MB_STATE_LOW)
			m->regrow = MB_MAX(m->regrow, p[i].rec.allocated);
		else if (p[i].rec.allocated >= m->regrow)
			m->regrow = 0;
		p[i].regrow = m->regrow;
	}
	step = (uint64_t)((unsigned __int128)alloc *
			  o->shrink_step_percent / 100);
	if (o->max_bytes && alloc > o->max_bytes)
		cut = alloc - o->max_bytes;
	over = cut;
	if (state == MB_STATE_LOW && !defer) {
		/* one step below the previous LOW's target, not below min */
		base = b->in_low ? MB_MIN(alloc, b->low_target) : alloc;
		want = MB_MAX(step, (uint64_t)1) + growth;
		target = base > want ? base - want : 0;
		target = MB_MAX(target, o->min_bytes);
		if (alloc > target)
			cut = MB_MAX(cut, alloc - target);
	}
	cut = MB_MIN(cut, alloc > o->min_bytes ? alloc - o->min_bytes : 0);
	b->in_low = state == MB_STATE_LOW;
	b->low_target = alloc - cut;
	b->state = state;
	b->steady_grant = 0;
	if (cut) {
		/* min_bytes <= max_bytes: the excess is never cut short */
		mb_broker_cut(p, n, cut, MB_MIN(over, cut));
	} else if (state == MB_STATE_HIGH && o->max_bytes) {
		/* all the room there is, at once */
		mb_broker_grow(p, n, o->max_bytes - alloc);
	} else if (state == MB_STATE_HIGH) {
		/* no budget: the next state that is not HIGH ends growth */
		for (i = 0; i < n; i++)
			p[i].rec.target = UINT64_MAX;
	} else if (state == MB_STATE_STEADY) {
		/* do not grow much: an allowance, within max_bytes */
		b->steady_grant = mb_broker_steady_room(note);
		if (o->max_bytes)
			b->steady_grant = MB_MIN(b->steady_grant,
						 o->max_bytes - alloc);
		mb_broker_grow(p, n, b->steady_grant);
	}
	for (i = 0; i < n; i++) {
		if (p[i].ask)
			p[i].rec.target = p[i].rec.allocated - p[i].ask;
		mb_member_target(p[i].m, p[i].rec.target);
		/* what the clerk may really use: the daemon's cap included */
		p[i].rec.target = MB_MIN(p[i].rec.target, p[i].m->sys_cap);
		if (p[i].ask)
			p[i].rec.decision = MB_DECISION_SHRINK;
		else if (p[i].rec.target > p[i].rec.allocated)
			p[i].rec.decision = MB_DECISION_GROW;
		else
			p[i].rec.decision = MB_DECISION_STABLE;
	}
}

static int64_t mb_broker_shrink_one(struct mb_plan *p)
{
	uint64_t t0, ns;
	mb_shrink_fn fn;
	void *arg;
	int64_t r;

	mb_shrink_floor_fn ffn = mb_clerk_shrinker_floor(p->clerk);

	fn = mb_clerk_shrinker(p->clerk, &arg);
	t0 = mb_now_ns();
	if (ffn)
		r = ffn(p->clerk, p->ask, p->floor, arg);
	else
		r = fn(p->clerk, p->ask, arg);
	ns = mb_now_ns() - t0;
	/* 0 means "not called" in the record */
	p->rec.duration_ns = MB_MAX(ns, (uint64_t)1);
	if (r < 0)
		p->rec.error = r < INT32_MIN ? -EINVAL : (int32_t)r;
	mb_clerk_account_shrink(p->clerk, r, ns);
	return r;
}

int mb_broker_notify(struct mb_broker *broker, const struct mb_notification *n)
{
	uint64_t now, freed = 0;
	struct mb_member *m;
	struct mb_plan *p;
	size_t i, cnt;
	bool defer;
	void *arg;
	int64_t r;

	if (!broker || !n || n->state > MB_STATE_HIGH)
		return -EINVAL;
	if (n->state == MB_STATE_UNKNOWN)
		return 0;
	now = n->time_ns ? n->time_ns : mb_now_ns();
	defer = n->state == MB_STATE_LOW && broker->mon &&
		mb_monitor_sys_in_charge(broker->mon, n);

	mb_lock(&broker->lock);
	cnt = broker->nmembers;
	p = calloc(cnt ? cnt : 1, sizeof(*p));
	if (!p) {
		mb_unlock(&broker->lock);
		return -ENOMEM;
	}
	for (i = 0, m = broker->members; m; m = m->next, i++) {
		p[i].m = m;
		p[i].clerk = m->clerk;
		p[i].priority = mb_clerk_priority(m->clerk);
		p[i].rec.time_ns = now;
		memcpy(p[i].rec.pool, broker->name, sizeof(p[i].rec.pool));
		memcpy(p[i].rec.clerk, mb_clerk_name(m->clerk),
		       sizeof(p[i].rec.clerk));
		p[i].rec.state = n->state;
		p[i].rec.allocated = mb_clerk_bytes(m->clerk);
		p[i].growth = mb_broker_predict(m, p[i].rec.allocated, now);
		p[i].rec.predicted = p[i].rec.allocated + p[i].growth;
	}
	mb_broker_decide(broker, p, cnt, n, defer);
	for (i = 0; i < cnt; i++) {
		m = p[i].m;
		/* a clerk already being shrunk elsewhere is skipped */
		if (!p[i].ask || !mb_clerk_shrinker(m->clerk, &arg) || m->busy)
			continue;
		m->busy = true;
		m->busy_thread = pthread_self();
		mb_clerk_get(m->clerk);
		p[i].call = true;
	}
	mb_unlock(&broker->lock);

	for (i = 0; i < cnt; i++) {
		if (!p[i].call)
			continue;
		r = mb_broker_shrink_one(&p[i]);
		if (r > 0) {
			p[i].rec.freed = (uint64_t)r;
			freed += (uint64_t)r;
		}
	}
	if (freed && broker->opts.trim)
		malloc_trim(0);

	mb_lock(&broker->lock);
	for (i = 0; i < cnt; i++) {
		if (!p[i].call)
			continue;
		m = p[i].m;
		m->busy = false;
		/* growth is measured from what was left, not what was freed */
		m->prev_bytes -= MB_MIN(p[i].rec.freed, m->prev_bytes);
		if (m->removed)
			free(m);
	}
	pthread_cond_broadcast(&broker->idle);
	mb_unlock(&broker->lock);

	for (i = 0; i < cnt; i++) {
		mb_ring_push(broker->ring, &p[i].rec);
		if (p[i].call)
			mb_clerk_put(p[i].clerk);
	}
	free(p);
	return 0;
}

/* ---- what the system broker client (sysbroker.c) asks of a broker ---- */

uint32_t mb_broker_sys_id(const struct mb_broker *broker)
{
	return broker->id;
}

/*
 * The pool and its clerks as they are now, for a report to the daemon.
 * *@clerks is allocated (free() it); 0 or -ENOMEM.
 */
int mb_broker_sys_snapshot(struct mb_broker *b, struct mb_sys_pool *pool,
			   struct mb_sys_clerk **clerks, size_t *n)
{
	struct mb_sys_clerk *c;
	struct mb_member *m;
	size_t i = 0;
	void *arg;

	mb_lock(&b->lock);
	c = calloc(b->nmembers ? b->nmembers : 1, sizeof(*c));
	if (!c) {
		mb_unlock(&b->lock);
		return -ENOMEM;
	}
	pool->id = b->id;
	pool->min_bytes = b->opts.min_bytes;
	pool->max_bytes = b->opts.max_bytes;
	memcpy(pool->name, b->name, sizeof(pool->name));
	for (m = b->members; m; m = m->next, i++) {
		c[i].id = m->id;
		c[i].priority = mb_clerk_priority(m->clerk);
		c[i].shrinkable = mb_clerk_shrinker(m->clerk, &arg) != NULL;
		c[i].bytes = mb_clerk_bytes(m->clerk);
		c[i].target = mb_clerk_target(m->clerk);
		memcpy(c[i].name, mb_clerk_name(m->clerk), sizeof(c[i].name));
	}
	mb_unlock(&b->lock);
	*clerks = c;
	*n = i;
	return 0;
}

static struct mb_member *mb_broker_find_id(struct mb_broker *b, uint32_t id)
{
	struct mb_member *m;

	for (m = b->members; m; m = m->next)
		if (m->id == id)
			return m;
	return NULL;
}

static void mb_sys_record(struct mb_broker *b, struct mb_member *m,
			  uint32_t decision, uint32_t state, uint64_t before,
			  struct mb_broker_record *rec)
{
	memset(rec, 0, sizeof(*rec));
	rec->time_ns = mb_now_ns();
	memcpy(rec->pool, b->name, sizeof(rec->pool));
	memcpy(rec->clerk, mb_clerk_name(m->clerk), sizeof(rec->clerk));
	rec->decision = decision;
	rec->state = state;
	rec->allocated = before;
	rec->predicted = before;
}

/*
 * The daemon asks the clerk @id to give back at least @ask, at most
 * @at_most: the pool's min_bytes holds whatever it says, and an
 * application's shrink callback is asked for @ask alone (it frees no
 * more than asked, see mb_shrink_fn), an mb_cache's frees whole entries
 * until it has @ask, never beyond @at_most.  The clerk is then held at
 * what it kept (its cap) until the daemon lets it grow.  Recorded in the
 * ring as MB_DECISION_SYSTEM_SHRINK.  0 or -ENOENT (no such clerk),
 * -EBUSY (being shrunk already); a failing callback's -errno is in
 * @out->status.
 */
int mb_broker_sys_shrink(struct mb_broker *b, uint32_t id, uint64_t ask,
			 uint64_t at_most, uint32_t state,
			 struct mb_sys_result *out)
{
	struct mb_broker_record rec;
	mb_shrink_range_fn range;
	uint64_t pool = 0, room, t0, ns;
	struct mb_member *m, *x;
	struct mb_clerk *clerk;
	mb_shrink_fn fn;
	void *arg;
	int64_t r;

	memset(out, 0, sizeof(*out));
	mb_lock(&b->lock);
	m = mb_broker_find_id(b, id);
	if (!m || m->busy) {
		mb_unlock(&b->lock);
		return m ? -EBUSY : -ENOENT;
	}
	clerk = m->clerk;
	for (x = b->members; x; x = x->next)
		pool += mb_clerk_bytes(x->clerk);
	room = pool > b->opts.min_bytes ? pool - b->opts.min_bytes : 0;
	out->bytes = mb_clerk_bytes(clerk);
	at_most = MB_MIN(MB_MIN(at_most, room), out->bytes);
	ask = MB_MIN(ask, at_most);
	mb_sys_record(b, m, MB_DECISION_SYSTEM_SHRINK, state, out->bytes,
		      &rec);
	fn = mb_clerk_shrinker(clerk, &arg);
	range = mb_clerk_shrinker_range(clerk);
	if (!ask || (!fn && !range)) {
		/* nothing it may give: held where it is */
		m->sys_cap = out->bytes;
		mb_member_target(m, m->btarget);
		out->cap = m->sys_cap;
		rec.target = mb_clerk_target(clerk);
		mb_unlock(&b->lock);
		mb_ring_push(b->ring, &rec);
		return 0;
	}
	/* lower first, so that the cache does not refill meanwhile */
	m->sys_cap = out->bytes - ask;
	mb_member_target(m, m->btarget);
	m->busy = true;
	m->busy_thread = pthread_self();
	mb_clerk_get(clerk);
	mb_unlock(&b->lock);

	t0 = mb_now_ns();
	if (range)
		r = range(clerk, ask, at_most, arg);
	else
		r = fn(clerk, ask, arg);
	ns = mb_now_ns() - t0;
	rec.duration_ns = MB_MAX(ns, (uint64_t)1);
	mb_clerk_account_shrink(clerk, r, ns);
	if (r < 0) {
		out->status = r < INT32_MIN ? -EINVAL : (int32_t)r;
		rec.error = out->status;
	} else {
		out->freed = (uint64_t)r;
		rec.freed = out->freed;
	}
	if (out->freed && b->opts.trim)
		malloc_trim(0);

	mb_lock(&b->lock);
	m->busy = false;
	m->prev_bytes -= MB_MIN(out->freed, m->prev_bytes);
	if (m->removed) {
		free(m);
	} else {
		/* held at what it kept */
		out->bytes = mb_clerk_bytes(clerk);
		m->sys_cap = out->bytes;
		mb_member_target(m, m->btarget);
		out->cap = m->sys_cap;
	}
	rec.target = mb_clerk_target(clerk);
	pthread_cond_broadcast(&b->idle);
	mb_unlock(&b->lock);
	mb_ring_push(b->ring, &rec);
	mb_clerk_put(clerk);
	return 0;
}

/*
 * The daemon sets the clerk's cap (UINT64_MAX: lifts it): HIGH lets what
 * it took grow back.  Recorded as MB_DECISION_SYSTEM_GROW.  0 or -ENOENT.
 */
int mb_broker_sys_cap(struct mb_broker *b, uint32_t id, uint64_t cap,
		      uint32_t state, struct mb_sys_result *out)
{
	struct mb_broker_record rec;
	struct mb_member *m;

	memset(out, 0, sizeof(*out));
	mb_lock(&b->lock);
	m = mb_broker_find_id(b, id);
	if (!m) {
		mb_unlock(&b->lock);
		return -ENOENT;
	}
	out->bytes = mb_clerk_bytes(m->clerk);
	mb_sys_record(b, m, MB_DECISION_SYSTEM_GROW, state, out->bytes, &rec);
	m->sys_cap = cap;
	mb_member_target(m, m->btarget);
	out->cap = cap;
	rec.target = mb_clerk_target(m->clerk);
	mb_unlock(&b->lock);
	mb_ring_push(b->ring, &rec);
	return 0;
}

/* The daemon is gone: its caps go with it. */
void mb_broker_sys_uncap(struct mb_broker *b)
{
	struct mb_member *m;

	mb_lock(&b->lock);
	for (m = b->members; m; m = m->next) {
		if (m->sys_cap == UINT64_MAX)
			continue;
		m->sys_cap = UINT64_MAX;
		mb_member_target(m, m->btarget);
	}
	mb_unlock(&b->lock);
}

void mb_broker_after_fork_child(void)
{
	struct mb_member *m;
	struct mb_broker *b;

	for (b = mb_brokers; b; b = b->next) {
		/* shrinkers that were running in other threads never return */
		for (m = b->members; m; m = m->next)
			if (mb_busy_elsewhere(m))
				m->busy = false;
		/*
		 * Nor do the threads that were waiting on @idle, but glibc's
		 * condition still counts them, and pthread_cond_destroy() in
		 * mb_broker_free() would wait for them forever: start afresh,
		 * no thread of the child waits on it.
		 */
		pthread_cond_init(&b->idle, NULL);
	}
}
