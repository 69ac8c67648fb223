// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The resource monitor: opens the source(s), waits for them, combines
 * their readings and delivers notifications to subscribers.
 *
 * Everything the monitor waits for sits behind one epoll fd, which is what
 * mb_monitor_get_fd() hands out: the sources' fds, a timerfd armed for the
 * earliest source timeout (or LOW repeat), and an eventfd used to ask for
 * a dispatch (first delivery, mb_monitor_stop(), a batch left over).  When
 * nothing changes the fd stays quiet except when a polling source's own
 * timeout is due.
 *
 * A dispatch learns which source fds are ready from epoll_wait() and
 * hands each source the events reported for it (s->revents).  It must not
 * poll a source's fd itself: a PSI trigger's POLLPRI is an edge that the
 * first poll to see it consumes.  mb_monitor_run() passes on what its own
 * epoll_wait() reported in the same way.
 *
 * Several sources combine to the most severe: LOW beats STEADY beats HIGH,
 * flags are OR'ed, and the other fields are those of the source that
 * decided the state.  A notification is delivered when a source reports
 * something new and either decides the combined state or changes it.
 * Readings with nothing new still refresh the combined figures, and while
 * the state is LOW every source is asked for a fresh reading before the
 * LOW is delivered again (low_repeat_ms), so a repeat never carries stale
 * figures.
 *
 * A source that fails reports -errno from mb_monitor_dispatch(); it is
 * asked again at its next event or timeout.  If an event on its fd woke
 * it, the fd leaves epoll for a while (an fd it left readable would make
 * every wait return at once) and is watched again after that, when the
 * source is also asked again.  One that is gone for good
 * (-ENODEV) is closed, and when no source is left the monitor falls back
 * to polling /proc/meminfo.  Neither stops mb_monitor_run() or the
 * monitor's thread.
 *
 * The monitor also carries the process's connection to membrokerd, the
 * system broker (sysbroker.c): its socket is one more fd behind the epoll
 * fd, its reports and reconnections one more deadline of the timerfd, and
 * its I/O runs in the dispatch, before the notifications are delivered.
 * It connects once a broker uses the monitor.
 *
 * Subscribers are called from mb_monitor_dispatch() with no lock held but
 * the dispatch lock, so one dispatch runs at a time; a second caller
 * returns 0 at once instead of blocking (and what it saw is left for the
 * running one, which looks again before it returns).  Every delivered
 * notification also goes into the monitor's ring with the process's RSS.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "internal.h"

#define MB_MONITOR_DEF_RING	1024
#define MB_MONITOR_DEF_REPEAT	1000	/* ms */
#define MB_MONITOR_DEF_BACKOFF	1000	/* ms a failing source's fd rests */
#define MB_DISPATCH_BATCH	16	/* readings per source per round */
#define MB_DISPATCH_MAX		64	/* notifications per dispatch */

static const struct mb_source_ops *const mb_source_table[MB_SOURCE_COUNT] = {
	[MB_SOURCE_KMOD] = &mb_source_kmod_ops,
	[MB_SOURCE_CGROUP] = &mb_source_cgroup_ops,
	[MB_SOURCE_PSI] = &mb_source_psi_ops,
	[MB_SOURCE_MEMINFO] = &mb_source_meminfo_ops,
	[MB_SOURCE_FAKE] = &mb_source_fake_ops,
};

/* the order of automatic selection */
static const enum mb_source_type mb_source_auto[] = {
	MB_SOURCE_KMOD, MB_SOURCE_CGROUP, MB_SOURCE_PSI, MB_SOURCE_MEMINFO,
};

struct mb_sub {
	int id;
	mb_monitor_fn fn;
	void *arg;
};

struct mb_monitor {
	struct mb_monitor_opts opts;
	char *root;
	/* slots in opening order; a closed source keeps its slot, ops NULL */
	struct mb_source src[MB_SOURCE_COUNT];
	uint64_t due[MB_SOURCE_COUNT];	/* next timeout, ns */
	/* epoll events seen for each slot and not yet dispatched */
	_Atomic uint32_t revents[MB_SOURCE_COUNT];
	/*
	 * A source that failed on an event has its fd out of epoll until
	 * unmute[i]: an fd it left readable must not make us spin.
	 */
	uint64_t unmute[MB_SOURCE_COUNT];
	uint64_t backoff_ns;
	int nsrc;
	int fake;			/* slot of the fake source, or -1 */
	_Atomic int type;		/* reported by mb_monitor_source() */
	int epfd, tfd, efd;
	/* membrokerd: its epoll events not yet dispatched, its deadline */
	struct mb_sys *sys;
	_Atomic uint32_t sys_revents;

	/* dispatch state, under dlock */
	struct mb_lock dlock;
	uint64_t sys_due;
	struct mb_notification combined;
	bool initial_pending;
	bool force;
	uint64_t repeat_due;
	uint64_t repeat_ns;

	/* under lock */
	struct mb_lock lock;
	pthread_cond_t idle;		/* a subscriber call returned */
	struct mb_notification cur;	/* latest delivered (or initial) */
	struct mb_sub *subs;		/* sorted by id */
	size_t nsubs, subs_cap;
	int next_id;
	int inflight_id;
	pthread_t inflight_thread;
	bool dispatching;		/* a dispatch holds dlock... */
	pthread_t dispatcher;		/* ...in this thread */
	pthread_cond_t done;		/* it let go */
	uint64_t busy_waits;		/* run() waited for it (tests) */
	bool thread_running;
	pthread_t thread;

	struct mb_ring *ring;
	/*
	 * The caller's reference and one per broker subscribed: what
	 * mb_monitor_free() leaves for the brokers (locks, subscribers) is
	 * freed with the last one, so the order of the frees does not matter.
	 */
	_Atomic int refs;
	_Atomic bool stop;
	_Atomic bool thread_stop;
	struct mb_monitor *prev, *next;	/* all monitors, for fork */
};

static struct mb_lock mb_monitors_lock;
static struct mb_monitor *mb_monitors;
static pthread_once_t mb_monitors_once = PTHREAD_ONCE_INIT;

static void mb_monitors_init(void)
{
	mb_lock_init(&mb_monitors_lock, MB_LOCK_INNER);
}

static bool mb_source_unavailable(int err)
{
	return err == -ENOENT || err == -ENODEV || err == -EOPNOTSUPP ||
	       err == -EACCES || err == -EPROTONOSUPPORT;
}

static void mb_kick(int efd)
{
	uint64_t one = 1;

	/* only fails when the counter is saturated: still readable then */
	if (write(efd, &one, sizeof(one)) < 0)
		return;
}

static void mb_drain(int fd)
{
	uint64_t v;

	while (read(fd, &v, sizeof(v)) > 0)
		;
}

static int mb_monitor_open_source(struct mb_monitor *mon,
				  const struct mb_source_ops *ops)
{
	struct mb_source *s;
	struct epoll_event ev = { 0 };
	int err;

	if (mon->nsrc == MB_SOURCE_COUNT)
		return -ENOSPC;
	s = &mon->src[mon->nsrc];
	memset(s, 0, sizeof(*s));
	s->ops = ops;
	s->fd = -1;
	s->opts = &mon->opts;
	err = s->ops->open(s);
	if (err) {
		s->ops = NULL;
		return err;
	}
	if (s->fd >= 0) {
		ev.events = s->events ? (uint32_t)s->events : EPOLLIN;
		ev.data.u32 = (uint32_t)mon->nsrc;
		/*
		 * EPERM: a file epoll cannot watch, which only a test root's
		 * regular files are; the source then runs on its timeout.
		 */
		if (epoll_ctl(mon->epfd, EPOLL_CTL_ADD, s->fd, &ev) < 0 &&
		    errno != EPERM) {
			err = -errno;
			s->ops->close(s);
			s->ops = NULL;
			return err;
		}
	}
	atomic_store(&mon->revents[mon->nsrc], 0);
	mon->due[mon->nsrc] = 0;
	mon->unmute[mon->nsrc] = UINT64_MAX;
	mon->nsrc++;
	return 0;
}

static void mb_monitor_watch(struct mb_monitor *mon, int i, bool on)
{
	struct mb_source *s = &mon->src[i];
	struct epoll_event ev = {
		.events = s->events ? (uint32_t)s->events : EPOLLIN,
		.data.u32 = (uint32_t)i,
	};

	/* failures: the fd was never watched (EPERM), or is already out */
	if (on)
		epoll_ctl(mon->epfd, EPOLL_CTL_ADD, s->fd, &ev);
	else
		epoll_ctl(mon->epfd, EPOLL_CTL_DEL, s->fd, NULL);
}

void mb_monitor_set_backoff(struct mb_monitor *mon, uint32_t ms)
{
	mb_lock(&mon->dlock);
	mon->backoff_ns = ms * MB_NSEC_PER_MSEC;
	mb_unlock(&mon->dlock);
}

/* The type of the first source still open, for mb_monitor_source(). */
static void mb_monitor_update_type(struct mb_monitor *mon)
{
	int i;

	for (i = 0; i < mon->nsrc; i++) {
		if (mon->src[i].ops) {
			atomic_store(&mon->type, (int)mon->src[i].ops->type);
			return;
		}
	}
	atomic_store(&mon->type, -ENODEV);
}

static int mb_monitor_open_sources(struct mb_monitor *mon,
				   const struct mb_source_ops *ops)
{
	uint32_t type = mon->opts.source, extra = mon->opts.extra_sources;
	const char *env;
	size_t i;
	int err = -ENOENT, t;

	if (type >= MB_SOURCE_COUNT || (extra & 1) ||
	    extra >= (1U << MB_SOURCE_COUNT))
		return -EINVAL;
	if (type == MB_SOURCE_AUTO && !ops) {
		env = getenv("MEMBROKER_SOURCE");
		if (env && *env) {
			t = mb_source_parse(env);
			if (t < 0)
				return t;
			type = (uint32_t)t;
		}
	}
	if (ops) {
		err = mb_monitor_open_source(mon, ops);
	} else if (type != MB_SOURCE_AUTO) {
		err = mb_monitor_open_source(mon, mb_source_table[type]);
	} else {
		for (i = 0; i < MB_ARRAY_SIZE(mb_source_auto); i++) {
			err = mb_monitor_open_source(mon,
				mb_source_table[mb_source_auto[i]]);
			if (!mb_source_unavailable(err))
				break;
		}
	}
	if (err)
		return mb_source_unavailable(err) ? -ENOENT : err;
	for (t = 1; t < MB_SOURCE_COUNT; t++) {
		if (!(extra & (1U << t)) || (int)mon->src[0].ops->type == t)
			continue;
		err = mb_monitor_open_source(mon, mb_source_table[t]);
		if (err)
			return mb_source_unavailable(err) ? -ENOENT : err;
	}
	/*
	 * Chosen automatically, the module (system-wide) would miss a limit
	 * on the process's own cgroup: add that too when there is one.
	 * Unavailable (no limit) or failing, it is simply not added.
	 */
	if (type == MB_SOURCE_AUTO &&
	    mon->src[0].ops->type != MB_SOURCE_CGROUP &&
	    !(extra & (1U << MB_SOURCE_CGROUP)))
		mb_monitor_open_source(mon, &mb_source_cgroup_ops);
	for (t = 0; t < mon->nsrc; t++)
		if (mon->src[t].ops == &mb_source_fake_ops)
			mon->fake = t;
	mb_monitor_update_type(mon);
	return 0;
}

static int mb_severity(uint32_t state)
{
	switch (state) {
	case MB_STATE_LOW:
		return 3;
	case MB_STATE_STEADY:
		return 2;
	case MB_STATE_HIGH:
		return 1;
	default:
		return 0;
	}
}

/* The most severe reading; *winner is its source index, -1 if none. */
static void mb_monitor_combine(struct mb_monitor *mon,
			       struct mb_notification *out, int *winner)
{
	uint32_t flags = 0;
	int i, best = -1;

	for (i = 0; i < mon->nsrc; i++) {
		if (!mon->src[i].ops || !mb_severity(mon->src[i].last.state))
			continue;
		flags |= mon->src[i].last.flags;
		if (best < 0 || mb_severity(mon->src[i].last.state) >
				mb_severity(mon->src[best].last.state))
			best = i;
	}
	if (best < 0) {
		memset(out, 0, sizeof(*out));
		i = atomic_load(&mon->type);
		out->source = i > 0 ? (uint32_t)i : 0;
	} else {
		*out = mon->src[best].last;
		out->flags = flags;
	}
	*winner = best;
}

static uint64_t mb_due(uint64_t now, int timeout_ms)
{
	return timeout_ms < 0 ? UINT64_MAX :
	       now + (uint64_t)timeout_ms * MB_NSEC_PER_MSEC;
}

static void mb_monitor_arm(struct mb_monitor *mon)
{
	struct itimerspec its = { 0 };
	uint64_t next = UINT64_MAX;
	int i;

	for (i = 0; i < mon->nsrc; i++)
		next = MB_MIN(next, MB_MIN(mon->due[i], mon->unmute[i]));
	if (mon->combined.state == MB_STATE_LOW && mon->repeat_ns)
		next = MB_MIN(next, mon->repeat_due);
	next = MB_MIN(next, mon->sys_due);
	if (next != UINT64_MAX) {
		/* 0 would disarm: the earliest possible time instead */
		next = MB_MAX(next, (uint64_t)1);
		its.it_value.tv_sec = (time_t)(next / MB_NSEC_PER_SEC);
		its.it_value.tv_nsec = (long)(next % MB_NSEC_PER_SEC);
	}
	timerfd_settime(mon->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* Remember what epoll reported for the sources, until a dispatch. */
static void mb_monitor_note(struct mb_monitor *mon,
			    const struct epoll_event *ev, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		if (ev[i].data.u32 < MB_SOURCE_COUNT)
			atomic_fetch_or(&mon->revents[ev[i].data.u32],
					ev[i].events);
		else if (ev[i].data.u32 == MB_SYS_EPOLL_ID)
			atomic_fetch_or(&mon->sys_revents, ev[i].events);
	}
}

/* Everything epoll has ready now, without waiting. */
static void mb_monitor_harvest(struct mb_monitor *mon)
{
	/* room for every fd: each ready one is reported in one call */
	struct epoll_event ev[MB_SOURCE_COUNT + 3];
	int n;

	n = epoll_wait(mon->epfd, ev, MB_ARRAY_SIZE(ev), 0);
	if (n > 0)
		mb_monitor_note(mon, ev, n);
}

static bool mb_monitor_has_pending(struct mb_monitor *mon)
{
	int i;

	for (i = 0; i < MB_SOURCE_COUNT; i++)
		if (atomic_load(&mon->revents[i]))
			return true;
	return atomic_load(&mon->sys_revents) != 0;
}

static void mb_monitor_after_opts(struct mb_monitor *mon)
{
	uint32_t r = mon->opts.low_repeat_ms;

	if (!r)
		r = MB_MONITOR_DEF_REPEAT;
	mon->repeat_ns = r == UINT32_MAX ? 0 : r * MB_NSEC_PER_MSEC;
}

struct mb_monitor *mb_monitor_ref(struct mb_monitor *mon)
{
	atomic_fetch_add_explicit(&mon->refs, 1, memory_order_relaxed);
	return mon;
}

/* The last reference: what mb_monitor_free() left for the brokers. */
void mb_monitor_unref(struct mb_monitor *mon)
{
	if (!mon || atomic_fetch_sub_explicit(&mon->refs, 1,
					      memory_order_acq_rel) != 1)
		return;
	mb_lock(&mb_monitors_lock);
	if (mon->prev)
		mon->prev->next = mon->next;
	else if (mb_monitors == mon)
		mb_monitors = mon->next;
	if (mon->next)
		mon->next->prev = mon->prev;
	mb_unlock(&mb_monitors_lock);

	mb_lock_destroy(&mon->lock);
	mb_lock_destroy(&mon->dlock);
	pthread_cond_destroy(&mon->idle);
	pthread_cond_destroy(&mon->done);
	mb_sys_free(mon->sys);
	free(mon->subs);
	free(mon->root);
	free(mon);
}

/*
 * Stop the thread and close everything that watches memory; a broker
 * still subscribed keeps the rest until it unsubscribes, and hears
 * nothing more: nothing can dispatch.
 */
void mb_monitor_free(struct mb_monitor *mon)
{
	int i;

	if (!mon)
		return;
	mb_monitor_stop_thread(mon);
	mb_sys_close(mon->sys);
	for (i = 0; i < mon->nsrc; i++) {
		if (mon->src[i].ops)
			mon->src[i].ops->close(&mon->src[i]);
		mon->src[i].ops = NULL;
	}
	if (mon->epfd >= 0)
		close(mon->epfd);
	if (mon->tfd >= 0)
		close(mon->tfd);
	if (mon->efd >= 0)
		close(mon->efd);
	mon->epfd = mon->tfd = mon->efd = -1;
	mb_ring_free(mon->ring);
	mon->ring = NULL;
	mb_monitor_unref(mon);
}

static int mb_monitor_add_fd(struct mb_monitor *mon, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = UINT32_MAX };

	return epoll_ctl(mon->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

/* Ask source @i for a reading; update s->last unless it failed. */
static int mb_monitor_read(struct mb_monitor *mon, int i, uint64_t now,
			   uint32_t revents, bool refresh)
{
	struct mb_source *s = &mon->src[i];
	struct mb_notification n = s->last;
	int r;

	s->revents = revents;
	if (refresh && s->ops->refresh)
		r = s->ops->refresh(s, &n);
	else
		r = s->ops->dispatch(s, &n);
	s->revents = 0;
	if (r < 0)
		return r;
	if (!n.source)
		n.source = s->ops->type;
	if (!n.time_ns)
		n.time_ns = now;
	/* a first reading that says nothing keeps the state unknown */
	if (r == 1 || s->last.state != MB_STATE_UNKNOWN)
		s->last = n;
	return r;
}

/* The first reading of every source, delivered by the first dispatch. */
static void mb_monitor_prime(struct mb_monitor *mon)
{
	uint64_t now = mb_now_ns();
	struct mb_source *s;
	int i, winner;

	for (i = 0; i < mon->nsrc; i++) {
		s = &mon->src[i];
		mb_monitor_read(mon, i, now, 0, false);
		mon->due[i] = mb_due(now, s->ops->timeout_ms(s));
	}
	mb_monitor_combine(mon, &mon->combined, &winner);
	mon->cur = mon->combined;
	mon->repeat_due = now + mon->repeat_ns;
	mon->initial_pending = true;
	mb_monitor_arm(mon);
	mb_kick(mon->efd);
}

int mb_monitor_new_ops(struct mb_monitor **out,
		       const struct mb_monitor_opts *opts,
		       const struct mb_source_ops *ops)
{
	struct mb_monitor *mon;
	int err;

	if (!out)
		return -EINVAL;
	*out = NULL;
	mon = calloc(1, sizeof(*mon));
	if (!mon)
		return -ENOMEM;
	mon->epfd = -1;
	mon->tfd = -1;
	mon->efd = -1;
	mon->inflight_id = -1;
	mon->fake = -1;
	mon->sys_due = UINT64_MAX;
	atomic_init(&mon->refs, 1);
	mb_lock_init(&mon->dlock, MB_LOCK_OUTER);
	mb_lock_init(&mon->lock, MB_LOCK_INNER);
	pthread_cond_init(&mon->idle, NULL);
	pthread_cond_init(&mon->done, NULL);
	pthread_once(&mb_monitors_once, mb_monitors_init);
	mb_lock(&mb_monitors_lock);
	mon->next = mb_monitors;
	if (mon->next)
		mon->next->prev = mon;
	mb_monitors = mon;
	mb_unlock(&mb_monitors_lock);

	err = mb_opts_copy(&mon->opts, sizeof(mon->opts), opts);
	if (!err && (mon->opts.reserved || mon->opts.reserved2))
		err = -EINVAL;
	/* one rule for every source, whether it uses the thresholds or not */
	if (!err && mon->opts.low_bytes && mon->opts.high_bytes &&
	    mon->opts.low_bytes >= mon->opts.high_bytes)
		err = -EINVAL;
	if (err)
		goto err;
	mon->backoff_ns = MB_MONITOR_DEF_BACKOFF * MB_NSEC_PER_MSEC;
	mon->root = strdup(mon->opts.root ? mon->opts.root : "/");
	if (!mon->root) {
		err = -ENOMEM;
		goto err;
	}
	mon->opts.root = mon->root;
	mb_monitor_after_opts(mon);
	err = mb_ring_new(&mon->ring, mon->opts.ring_capacity ?
			  mon->opts.ring_capacity : MB_MONITOR_DEF_RING,
			  sizeof(struct mb_notification));
	if (err)
		goto err;
	mon->epfd = epoll_create1(EPOLL_CLOEXEC);
	mon->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	mon->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (mon->epfd < 0 || mon->tfd < 0 || mon->efd < 0) {
		err = -errno;
		goto err;
	}
	err = mb_monitor_add_fd(mon, mon->tfd);
	if (!err)
		err = mb_monitor_add_fd(mon, mon->efd);
	if (!err)
		err = mb_sys_new(&mon->sys, mon->epfd, mon->efd);
	if (!err)
		err = mb_monitor_open_sources(mon, ops);
	if (err)
		goto err;
	mb_monitor_prime(mon);
	*out = mon;
	return 0;
err:
	mb_monitor_free(mon);
	return err;
}

int mb_monitor_new(struct mb_monitor **out,
		   const struct mb_monitor_opts *opts)
{
	return mb_monitor_new_ops(out, opts, NULL);
}

int mb_monitor_source(const struct mb_monitor *mon)
{
	if (!mon)
		return -EINVAL;
	return atomic_load(&((struct mb_monitor *)mon)->type);
}

int mb_monitor_get_fd(const struct mb_monitor *mon)
{
	return mon ? mon->epfd : -EINVAL;
}

/* Call every subscriber, each with no lock held. */
static void mb_monitor_deliver(struct mb_monitor *mon,
			       const struct mb_notification *n)
{
	mb_monitor_fn fn;
	int last_id = -1;
	size_t i;
	void *arg;

	mb_lock(&mon->lock);
	mon->cur = *n;
	for (;;) {
		/* by id, so that (un)subscribing meanwhile is harmless */
		for (i = 0; i < mon->nsubs; i++)
			if (mon->subs[i].id > last_id)
				break;
		if (i == mon->nsubs)
			break;
		last_id = mon->subs[i].id;
		fn = mon->subs[i].fn;
		arg = mon->subs[i].arg;
		mon->inflight_id = last_id;
		mon->inflight_thread = pthread_self();
		mb_unlock(&mon->lock);
		fn(mon, n, arg);
		mb_lock(&mon->lock);
		mon->inflight_id = -1;
		pthread_cond_broadcast(&mon->idle);
	}
	mb_unlock(&mon->lock);
}

/*
 * Source @i is gone for good: close it, and when nothing is left fall
 * back to polling /proc/meminfo.  Returns the fallback's slot or -1.
 */
static int mb_monitor_retire(struct mb_monitor *mon, int i, uint64_t now)
{
	struct mb_source *s = &mon->src[i];
	bool meminfo = s->ops->type == MB_SOURCE_MEMINFO;
	int k, slot;

	if (s->fd >= 0)
		epoll_ctl(mon->epfd, EPOLL_CTL_DEL, s->fd, NULL);
	s->ops->close(s);
	s->ops = NULL;
	s->fd = -1;
	memset(&s->last, 0, sizeof(s->last));
	mon->due[i] = UINT64_MAX;
	mon->unmute[i] = UINT64_MAX;
	atomic_store(&mon->revents[i], 0);
	for (k = 0; k < mon->nsrc; k++)
		if (mon->src[k].ops)
			break;
	slot = mon->nsrc;
	if (k < mon->nsrc || meminfo ||
	    mb_monitor_open_source(mon, &mb_source_meminfo_ops) < 0) {
		mb_monitor_update_type(mon);
		return -1;
	}
	mb_monitor_update_type(mon);
	mb_monitor_read(mon, slot, now, 0, false);
	return slot;
}

/*
 * Read what is due from every source into out[]; returns the count.
 * With @refresh every source is asked for a fresh reading.
 */
static int mb_monitor_collect(struct mb_monitor *mon, uint64_t now,
			      bool refresh, struct mb_notification *out,
			      int *err)
{
	struct mb_notification c;
	struct mb_source *s;
	int i, k, r, winner, nout = 0;
	bool unmuted;
	uint32_t rev;

	for (i = 0; i < mon->nsrc; i++) {
		s = &mon->src[i];
		if (!s->ops)
			continue;
		rev = atomic_exchange(&mon->revents[i], 0);
		unmuted = now >= mon->unmute[i];
		if (unmuted) {
			mb_monitor_watch(mon, i, true);
			mon->unmute[i] = UINT64_MAX;
		}
		if (!mon->force && !refresh && !rev && !unmuted &&
		    now < mon->due[i] && !(s->events & POLLPRI))
			continue;
		for (k = 0; k < MB_DISPATCH_BATCH; k++) {
			if (nout == MB_DISPATCH_MAX) {
				mb_kick(mon->efd);	/* more next time */
				break;
			}
			/* pending events come first: they are news */
			r = mb_monitor_read(mon, i, now, k ? 0 : rev,
					    refresh && !k && !rev);
			if (r == -ENODEV) {
				*err = r;
				r = mb_monitor_retire(mon, i, now);
				if (r < 0)
					break;
				/* the fallback's first reading: news */
				s = &mon->src[r];
				r = 1;
			} else if (r < 0) {
				*err = r;
				/* woken by its fd, and failed: the fd rests */
				if (rev && s->fd >= 0 &&
				    !(s->events & POLLPRI) &&
				    mon->unmute[i] == UINT64_MAX) {
					mb_monitor_watch(mon, i, false);
					mon->unmute[i] = now + mon->backoff_ns;
				}
				break;
			}
			mb_monitor_combine(mon, &c, &winner);
			if (r == 1 && (winner == (int)(s - mon->src) ||
				       c.state != mon->combined.state ||
				       c.flags != mon->combined.flags))
				out[nout++] = c;
			mon->combined = c;
			if (r == 0 || s->fd < 0)
				break;
		}
		if (s->ops)
			mon->due[s - mon->src] =
				mb_due(now, s->ops->timeout_ms(s));
	}
	mon->force = false;
	return nout;
}

static void mb_monitor_set_dispatching(struct mb_monitor *mon, bool on)
{
	mb_lock(&mon->lock);
	mon->dispatching = on;
	mon->dispatcher = pthread_self();
	if (!on)
		pthread_cond_broadcast(&mon->done);
	mb_unlock(&mon->lock);
}

/*
 * For mb_monitor_run() whose dispatch found another one running: the fd
 * that woke it may stay readable until that one is done, so wait for it
 * rather than go round epoll_wait() hot.  A subscriber calling run()
 * (the dispatch is its own) does not wait.  The monitor's thread stops
 * waiting when it is told to stop: the running dispatch may be the one
 * waiting for it, in mb_monitor_stop_thread() called by a subscriber.
 */
static bool mb_monitor_told_to_stop(struct mb_monitor *mon)
{
	return atomic_load(&mon->thread_stop) &&
	       pthread_equal(mon->thread, pthread_self());
}

static void mb_monitor_wait_dispatch(struct mb_monitor *mon)
{
	mb_lock(&mon->lock);
	if (mon->dispatching &&
	    !pthread_equal(mon->dispatcher, pthread_self())) {
		mon->busy_waits++;
		while (mon->dispatching && !mb_monitor_told_to_stop(mon))
			mb_cond_wait(&mon->done, &mon->lock);
	}
	mb_unlock(&mon->lock);
}

uint64_t mb_monitor_busy_waits(struct mb_monitor *mon)
{
	uint64_t n;

	mb_lock(&mon->lock);
	n = mon->busy_waits;
	mb_unlock(&mon->lock);
	return n;
}

/* mb_monitor_dispatch(); *busy if another thread is dispatching. */
static int mb_monitor_dispatch_one(struct mb_monitor *mon, bool *busy)
{
	struct mb_notification out[MB_DISPATCH_MAX + 2];
	int i, nout = 0, err = 0;
	bool refresh;
	uint64_t now;

	*busy = !mb_trylock(&mon->dlock);
	if (*busy)
		return 0;
	mb_monitor_set_dispatching(mon, true);
	mb_drain(mon->efd);
	mb_drain(mon->tfd);
	mb_monitor_harvest(mon);
	now = mb_now_ns();
	if (mon->initial_pending) {
		mon->initial_pending = false;
		if (mon->combined.state != MB_STATE_UNKNOWN)
			out[nout++] = mon->combined;
	}
	/* time to say LOW again: with figures read now, not the old ones */
	refresh = mon->combined.state == MB_STATE_LOW && mon->repeat_ns &&
		  now >= mon->repeat_due;
	nout += mb_monitor_collect(mon, now, refresh, out + nout, &err);
	/* the daemon's requests, the reports it is due */
	mon->sys_due = mb_sys_dispatch(mon->sys,
				       atomic_exchange(&mon->sys_revents, 0),
				       now);
	if (mon->combined.state == MB_STATE_LOW && mon->repeat_ns) {
		if (nout && out[nout - 1].state == MB_STATE_LOW) {
			mon->repeat_due = now + mon->repeat_ns;
		} else if (refresh) {
			/* still LOW: say so again, brokers take another step */
			out[nout++] = mon->combined;
			mon->repeat_due = now + mon->repeat_ns;
		}
	}
	mb_monitor_arm(mon);
	for (i = 0; i < nout; i++) {
		out[i].process_rss = mb_self_rss();
		mb_ring_push(mon->ring, &out[i]);
		mb_sys_note(mon->sys, &out[i]);
		mb_monitor_deliver(mon, &out[i]);
	}
	mb_monitor_set_dispatching(mon, false);
	mb_unlock(&mon->dlock);
	/* events noted by a caller that found us busy: dispatch again */
	if (mb_monitor_has_pending(mon))
		mb_kick(mon->efd);
	return nout ? nout : err;
}

int mb_monitor_dispatch(struct mb_monitor *mon)
{
	bool busy;

	if (!mon)
		return -EINVAL;
	/* another thread is dispatching: 0, it takes what we saw */
	return mb_monitor_dispatch_one(mon, &busy);
}

void mb_monitor_force_poll(struct mb_monitor *mon)
{
	mb_lock(&mon->dlock);
	mon->force = true;
	mb_unlock(&mon->dlock);
	mb_kick(mon->efd);
}

int mb_monitor_run(struct mb_monitor *mon, int timeout_ms)
{
	struct epoll_event ev[MB_SOURCE_COUNT + 3];
	uint64_t end = 0, now;
	int r, wait = -1;
	bool busy;

	if (!mon || timeout_ms < -1)
		return -EINVAL;
	if (timeout_ms >= 0)
		end = mb_now_ns() + (uint64_t)timeout_ms * MB_NSEC_PER_MSEC;
	for (;;) {
		if (atomic_exchange(&mon->stop, false))
			return 0;
		if (timeout_ms >= 0) {
			now = mb_now_ns();
			if (now >= end)
				return 0;
			/* round up: never wake just before the end */
			wait = (int)((end - now + MB_NSEC_PER_MSEC - 1) /
				     MB_NSEC_PER_MSEC);
		}
		r = epoll_wait(mon->epfd, ev, MB_ARRAY_SIZE(ev), wait);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r > 0) {
			/* the events epoll_wait() consumed go to the sources */
			mb_monitor_note(mon, ev, r);
			/* a failing source is dispatch's news, not ours */
			mb_monitor_dispatch_one(mon, &busy);
			if (busy)
				mb_monitor_wait_dispatch(mon);
		}
	}
}

void mb_monitor_stop(struct mb_monitor *mon)
{
	if (!mon)
		return;
	atomic_store(&mon->stop, true);
	mb_kick(mon->efd);
}

static void *mb_monitor_thread(void *arg)
{
	struct mb_monitor *mon = arg;

	while (!atomic_load(&mon->thread_stop))
		if (mb_monitor_run(mon, -1) < 0)
			break;
	return NULL;
}

int mb_monitor_start_thread(struct mb_monitor *mon)
{
	int err;

	if (!mon)
		return -EINVAL;
	mb_lock(&mon->lock);
	if (mon->thread_running) {
		mb_unlock(&mon->lock);
		return -EALREADY;
	}
	atomic_store(&mon->thread_stop, false);
	err = -pthread_create(&mon->thread, NULL, mb_monitor_thread, mon);
	if (!err)
		mon->thread_running = true;
	mb_unlock(&mon->lock);
	return err;
}

int mb_monitor_stop_thread(struct mb_monitor *mon)
{
	pthread_t t;

	if (!mon)
		return -EINVAL;
	mb_lock(&mon->lock);
	if (!mon->thread_running) {
		mb_unlock(&mon->lock);
		return 0;
	}
	if (pthread_equal(mon->thread, pthread_self())) {
		mb_unlock(&mon->lock);
		return -EDEADLK;
	}
	t = mon->thread;
	mon->thread_running = false;
	atomic_store(&mon->thread_stop, true);
	/* the thread may be waiting for a dispatch that waits for us */
	pthread_cond_broadcast(&mon->done);
	mb_unlock(&mon->lock);
	mb_monitor_stop(mon);
	pthread_join(t, NULL);
	return 0;
}

int mb_monitor_get_state(struct mb_monitor *mon, struct mb_notification *out)
{
	if (!mon || !out)
		return -EINVAL;
	mb_lock(&mon->lock);
	*out = mon->cur;
	mb_unlock(&mon->lock);
	return 0;
}

int mb_monitor_subscribe(struct mb_monitor *mon, mb_monitor_fn fn, void *arg)
{
	struct mb_sub *subs;
	size_t cap;
	int id;

	if (!mon || !fn)
		return -EINVAL;
	mb_lock(&mon->lock);
	if (mon->nsubs == mon->subs_cap) {
		cap = mon->subs_cap ? mon->subs_cap * 2 : 4;
		subs = realloc(mon->subs, cap * sizeof(*subs));
		if (!subs) {
			mb_unlock(&mon->lock);
			return -ENOMEM;
		}
		mon->subs = subs;
		mon->subs_cap = cap;
	}
	if (mon->next_id == INT32_MAX) {
		mb_unlock(&mon->lock);
		return -ENOSPC;
	}
	id = mon->next_id++;
	mon->subs[mon->nsubs++] = (struct mb_sub){ id, fn, arg };
	mb_unlock(&mon->lock);
	return id;
}

int mb_monitor_unsubscribe(struct mb_monitor *mon, int id)
{
	size_t i;

	if (!mon || id < 0)
		return -EINVAL;
	mb_lock(&mon->lock);
	for (i = 0; i < mon->nsubs; i++)
		if (mon->subs[i].id == id)
			break;
	if (i == mon->nsubs) {
		mb_unlock(&mon->lock);
		return -ENOENT;
	}
	memmove(&mon->subs[i], &mon->subs[i + 1],
		(mon->nsubs - i - 1) * sizeof(*mon->subs));
	mon->nsubs--;
	while (mon->inflight_id == id &&
	       !pthread_equal(mon->inflight_thread, pthread_self()))
		mb_cond_wait(&mon->idle, &mon->lock);
	mb_unlock(&mon->lock);
	return 0;
}

struct mb_ring *mb_monitor_ring(struct mb_monitor *mon)
{
	return mon ? mon->ring : NULL;
}

int mb_monitor_fake_push(struct mb_monitor *mon,
			 const struct mb_notification *n)
{
	if (!mon || !n)
		return -EINVAL;
	if (mon->fake < 0)
		return -EOPNOTSUPP;
	return mb_source_fake_push(&mon->src[mon->fake], n);
}

int mb_monitor_fake_set(struct mb_monitor *mon,
			const struct mb_notification *n)
{
	if (!mon || !n)
		return -EINVAL;
	if (mon->fake < 0)
		return -EOPNOTSUPP;
	return mb_source_fake_set(&mon->src[mon->fake], n);
}

void mb_monitor_after_fork_child(void)
{
	struct mb_monitor *mon;

	/* the threads that ran dispatches or callbacks are gone */
	for (mon = mb_monitors; mon; mon = mon->next) {
		if (mon->thread_running &&
		    !pthread_equal(mon->thread, pthread_self()))
			mon->thread_running = false;
		if (mon->inflight_id >= 0 &&
		    !pthread_equal(mon->inflight_thread, pthread_self()))
			mon->inflight_id = -1;
		if (mon->dispatching &&
		    !pthread_equal(mon->dispatcher, pthread_self()))
			mon->dispatching = false;
		/*
		 * Threads waiting on these did not come along, but glibc's
		 * conditions still count them, and pthread_cond_destroy() in
		 * mb_monitor_free() would wait for them forever.  No thread
		 * of the child waits on them: start afresh.
		 */
		pthread_cond_init(&mon->idle, NULL);
		pthread_cond_init(&mon->done, NULL);
		mb_sys_after_fork_child(mon->sys);
	}
}

/* ---- the system broker, for brokers and the application ---- */

struct mb_sys *mb_monitor_sys(struct mb_monitor *mon)
{
	return mon->sys;
}

void mb_monitor_sys_attach(struct mb_monitor *mon, struct mb_broker *b)
{
	if (mon->sys)
		mb_sys_attach(mon->sys, b);
}

void mb_monitor_sys_detach(struct mb_monitor *mon, struct mb_broker *b)
{
	if (mon->sys)
		mb_sys_detach(mon->sys, b);
}

bool mb_monitor_sys_in_charge(struct mb_monitor *mon,
			      const struct mb_notification *n)
{
	return mon->sys && mb_sys_in_charge(mon->sys, n);
}

int mb_monitor_system_status(struct mb_monitor *mon,
			     struct mb_system_status *out)
{
	if (!mon || !out || out->sz < sizeof(struct mb_system_status))
		return -EINVAL;
	return mb_sys_status(mon->sys, out);
}
