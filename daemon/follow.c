// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Following libmembroker's monitor from the event loop: every reading
 * becomes a warning level (level.c), and when level.c says a level is to
 * be said, it goes out on the bus and the pressure socket together.
 *
 * The monitor runs in this thread: its fd is one more io source of the
 * loop, and mb_monitor_dispatch() calls our subscriber.  While the state
 * is LOW the monitor delivers it again every low_repeat_ms with figures
 * measured afresh (the module is asked, GET_STATE), which is how a level
 * that deepens within LOW (the module only notifies changes of state) is
 * seen: the daemon asks for that repeat often (--refresh-ms).
 *
 * Every reading also goes to the system broker (sysbroker.c), with the
 * hysteresis configured in the module when the module measured it: the
 * broker aims at the end of LOW, low + hysteresis.  The module's
 * configuration is read when its first reading comes and again after
 * each reading that a configuration change caused.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <systemd/sd-event.h>

#include "membrokerd.h"
#include "linux/membroker.h"

struct mbd_follow {
	struct mbd_follow_opts o;
	struct mb_monitor *mon;
	sd_event_source *mon_src;
	sd_event_source *timer;
	int sub;
	struct mbd_warn warn;
	struct mbd_bus *bus;
	struct mbd_pressure *pressure;
	void (*changed)(void *arg, bool urgent);
	void *arg;
	struct mbd_sys *sys;
	uint64_t hyst;		/* the module's configured hysteresis */
	bool hyst_known;
	bool have_last;
	int last_err;
	struct mbd_follow_stats st;
};

static const char *mbd_reason_name(uint32_t reason)
{
	static const char *const names[] = {
		[MEMBROKER_REASON_UNSPEC] = "none",
		[MEMBROKER_REASON_LOAD] = "load",
		[MEMBROKER_REASON_POLL] = "poll",
		[MEMBROKER_REASON_RECLAIM] = "reclaim",
		[MEMBROKER_REASON_HOTPLUG] = "hotplug",
		[MEMBROKER_REASON_CONFIG] = "config",
		[MEMBROKER_REASON_OOM] = "oom",
		[MEMBROKER_REASON_QUERY] = "query",
		[MEMBROKER_REASON_DEFERRED] = "deferred",
	};

	if (reason < ARRAY_SIZE(names) && names[reason])
		return names[reason];
	return "unknown";
}

/* the slot of struct mbd_follow_stats.by_state_reason for @reason */
unsigned int mbd_reason_slot(uint32_t reason)
{
	return reason <= MEMBROKER_REASON_MAX ? reason : MBD_REASON_SLOTS - 1;
}

const char *mbd_reason_slot_name(unsigned int slot)
{
	return mbd_reason_name(slot);
}

static void mbd_follow_emit(struct mbd_follow *f, uint8_t level,
			    uint64_t now)
{
	const struct mb_notification *n = &f->st.last;
	int r = 0;

	if (f->bus)
		r = mbd_bus_emit(f->bus, level);
	if (f->pressure)
		mbd_pressure_pulse(f->pressure, level);
	f->st.sent = level;
	f->st.sent_ns = now;
	if (r < 0)
		mbd_log("cannot send LowMemoryWarning(%u): %s", level,
			strerror(-r));
	if (f->o.verbose)
		mbd_log("MBD %llu.%06llu signal level=%u (%s) state=%s "
			"reason=%s available=%llu low=%llu seq=%llu "
			"reading_ns=%llu",
			(unsigned long long)(now / MBD_NSEC_PER_SEC),
			(unsigned long long)(now % MBD_NSEC_PER_SEC / 1000),
			level, mbd_level_name(level), mb_state_name(n->state),
			mbd_reason_name(n->reason),
			(unsigned long long)n->available,
			(unsigned long long)n->low,
			(unsigned long long)n->seq,
			(unsigned long long)n->time_ns);
}

/* The re-send timer follows level.c's plan. */
static void mbd_follow_arm(struct mbd_follow *f)
{
	uint64_t next = mbd_warn_next(&f->warn);

	if (!next) {
		sd_event_source_set_enabled(f->timer, SD_EVENT_OFF);
		return;
	}
	sd_event_source_set_time(f->timer, next / 1000);
	sd_event_source_set_enabled(f->timer, SD_EVENT_ONESHOT);
}

static int mbd_follow_on_timer(sd_event_source *s, uint64_t usec, void *arg)
{
	struct mbd_follow *f = arg;
	uint64_t now = mbd_now_ns();
	uint8_t level;

	(void)s;
	(void)usec;
	level = mbd_warn_timer(&f->warn, now);
	if (level)
		mbd_follow_emit(f, level, now);
	mbd_follow_arm(f);
	if (level && f->changed)
		f->changed(f->arg, true);
	return 0;
}

/* The hysteresis configured in the module, 0 for automatic or none. */
static uint64_t mbd_follow_hysteresis(struct mbd_follow *f,
				      const struct mb_notification *n)
{
	struct mb_kmod_config cfg;
	struct mb_kmod *k;

	if (n->source != MB_SOURCE_KMOD) {
		f->hyst_known = false;
		return 0;
	}
	if (f->hyst_known && n->reason != MEMBROKER_REASON_CONFIG &&
	    n->reason != MEMBROKER_REASON_LOAD)
		return f->hyst;
	if (!mb_kmod_open(&k)) {
		if (!mb_kmod_get_config(k, &cfg)) {
			f->hyst = cfg.hysteresis_bytes;
			f->hyst_known = true;
		}
		mb_kmod_close(k);
	}
	return f->hyst;
}

static void mbd_follow_on_reading(struct mb_monitor *mon,
				  const struct mb_notification *n, void *arg)
{
	struct mbd_follow *f = arg;
	struct mbd_follow_stats *st = &f->st;
	uint32_t state = n->state <= MB_STATE_HIGH ? n->state : 0;
	bool repeat, entered;
	uint64_t now;
	uint8_t level, said;

	(void)mon;
	/* a repeat of LOW carries the sequence number it repeats */
	repeat = f->have_last && n->seq == st->last.seq &&
		 n->source == st->last.source;
	entered = !f->have_last || n->state != st->last.state;
	st->readings++;
	if (!repeat)
		st->by_state_reason[state][mbd_reason_slot(n->reason)]++;
	if (entered)
		st->entered[state]++;
	st->last = *n;
	f->have_last = true;
	st->source = mb_monitor_source(f->mon);

	level = mbd_level_of(&f->o.level, n);
	st->level = level;
	now = mbd_now_ns();
	said = mbd_warn_reading(&f->warn, level, now);
	if (f->pressure)
		mbd_pressure_set_level(f->pressure, level);
	if (said)
		mbd_follow_emit(f, said, now);
	mbd_follow_arm(f);
	if (f->sys)
		mbd_sys_reading(f->sys, n, mbd_follow_hysteresis(f, n));
	if (f->changed)
		f->changed(f->arg, entered || said);
}

static int mbd_follow_on_monitor(sd_event_source *s, int fd,
				 uint32_t revents, void *arg)
{
	struct mbd_follow *f = arg;
	int r;

	(void)s;
	(void)fd;
	(void)revents;
	r = mb_monitor_dispatch(f->mon);
	/* say it once per kind of failure, not at every poll */
	if (r < 0 && r != f->last_err)
		mbd_log("reading memory failed: %s (will retry)",
			strerror(-r));
	f->last_err = r < 0 ? r : 0;
	return 0;
}

/**
 * mbd_follow_open() - open the monitor
 * @out: receives the state
 * @e: the event loop
 * @opts: the options
 *
 * The fake source is for tests: it is only accepted when asked for by
 * name in @opts (--source=fake), not through $MEMBROKER_SOURCE, so that
 * a stray environment variable cannot make a production daemon follow
 * whatever anyone pushes into it.
 *
 * Return: 0 or -errno; the message for the user is printed here.
 */
int mbd_follow_open(struct mbd_follow **out, sd_event *e,
		    const struct mbd_follow_opts *opts)
{
	struct mbd_follow *f;
	int r;

	*out = NULL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->o = *opts;
	f->sub = -1;
	mbd_warn_init(&f->warn, opts->repeat_ns);
	r = mb_monitor_new(&f->mon, &f->o.mon);
	if (r < 0) {
		mbd_log("cannot open the memory monitor (source %s): %s",
			mb_source_name(f->o.mon.source), strerror(-r));
		goto fail;
	}
	f->st.source = mb_monitor_source(f->mon);
	if (f->st.source == MB_SOURCE_FAKE &&
	    f->o.mon.source != MB_SOURCE_FAKE) {
		mbd_log("the fake source is for tests: ask for it with "
			"--source=fake, not $MEMBROKER_SOURCE");
		r = -EINVAL;
		goto fail;
	}
	r = sd_event_add_time(e, &f->timer, CLOCK_MONOTONIC, 0, 0,
			      mbd_follow_on_timer, f);
	if (r >= 0)
		r = sd_event_source_set_enabled(f->timer, SD_EVENT_OFF);
	if (r < 0) {
		mbd_log("cannot add a timer: %s", strerror(-r));
		goto fail;
	}
	r = sd_event_add_io(e, &f->mon_src, mb_monitor_get_fd(f->mon),
			    EPOLLIN, mbd_follow_on_monitor, f);
	if (r >= 0)
		r = sd_event_source_set_enabled(f->mon_src, SD_EVENT_OFF);
	if (r < 0) {
		mbd_log("cannot watch the monitor: %s", strerror(-r));
		goto fail;
	}
	*out = f;
	return 0;
fail:
	mbd_follow_close(f);
	return r;
}

void mbd_follow_close(struct mbd_follow *f)
{
	if (!f)
		return;
	sd_event_source_disable_unref(f->mon_src);
	sd_event_source_disable_unref(f->timer);
	mb_monitor_free(f->mon);
	free(f);
}

/**
 * mbd_follow_attach() - where levels go, and whom to tell of news
 * @f: the state
 * @bus: the bus, or NULL
 * @pressure: the pressure socket, or NULL
 * @changed: called after every reading and signal, @urgent when the
 *	state changed or a signal went out; may be NULL
 * @arg: its argument
 */
void mbd_follow_attach(struct mbd_follow *f, struct mbd_bus *bus,
		       struct mbd_pressure *pressure,
		       void (*changed)(void *arg, bool urgent), void *arg)
{
	f->bus = bus;
	f->pressure = pressure;
	f->changed = changed;
	f->arg = arg;
}

/**
 * mbd_follow_attach_sys() - where every reading goes too
 * @f: the state
 * @sys: the system broker, or NULL
 */
void mbd_follow_attach_sys(struct mbd_follow *f, struct mbd_sys *sys)
{
	f->sys = sys;
}

/**
 * mbd_follow_start() - subscribe and start watching; the first dispatch
 * delivers the state the monitor read when it opened
 * @f: the state
 *
 * Return: 0 or -errno.
 */
int mbd_follow_start(struct mbd_follow *f)
{
	int r;

	r = mb_monitor_subscribe(f->mon, mbd_follow_on_reading, f);
	if (r < 0)
		return r;
	f->sub = r;
	return sd_event_source_set_enabled(f->mon_src, SD_EVENT_ON);
}

void mbd_follow_stats(const struct mbd_follow *f,
		      struct mbd_follow_stats *out)
{
	*out = f->st;
}

/**
 * mbd_follow_fake_push() - queue a reading for the fake source
 * @f: the state
 * @n: the reading
 *
 * Return: 0, -EOPNOTSUPP without the fake source, -EINVAL, -EAGAIN.
 */
int mbd_follow_fake_push(struct mbd_follow *f, const struct mb_notification *n)
{
	return mb_monitor_fake_push(f->mon, n);
}
