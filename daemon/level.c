// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * From membroker's readings to org.freedesktop.LowMemoryMonitor's warning
 * levels, and when a level is said.  No I/O here: follow.c feeds it
 * readings and the clock, and the unit tests feed it made-up ones.
 *
 * THE MAPPING (membrokerd(8) documents it for administrators)
 *
 *   not LOW (STEADY, HIGH, UNKNOWN)                    none: silence
 *   LOW, and the reading's reason is the module's OOM  255 critical
 *   LOW, available < critical_pct% of the low threshold  255 critical
 *   LOW, available < medium_pct% of the low threshold    100 medium
 *   LOW otherwise                                        50 low
 *
 * The module evaluates memory right before the OOM killer picks a victim
 * (MEMBROKER_REASON_OOM): whatever the figures say, the kernel is about
 * to kill, which is what 255 means to its listeners.  Without the module
 * nobody tells us that, so how deep available memory has fallen below the
 * low threshold stands in for it.  VIRTUAL_LOW (committed memory near the
 * commit limit) does not count: it is about address space, not about
 * memory running out, and the levels are about the latter.
 *
 * WHEN A LEVEL IS SAID
 *
 * While LOW lasts, a level is "in force" for repeat_ns after it was
 * signalled.  A reading whose level is above the one in force is
 * signalled at once (an escalation: none -> 50, 50 -> 100, anything ->
 * 255).  Otherwise nothing is said until repeat_ns after the last signal;
 * then the level of the latest reading is signalled again.  So while LOW
 * lasts, its level goes out every repeat_ns (15 s, as low-memory-monitor
 * does) and a deeper level at once.  Nothing is sent on recovery: the
 * consumers take silence for it.
 *
 * A LOW that follows a recovery (a reading that is not LOW) is news: the
 * listeners may already have taken the silence for the end of it.  So
 * after a recovery the level in force lasts only gap_ns (one second, or
 * repeat_ns if shorter) instead of repeat_ns: memory that keeps dipping
 * below the threshold while caches give back what a hog takes (LOW,
 * STEADY, LOW...) is said about once a second, not at every dip, and not
 * only 15 s later either.
 */
#include "membrokerd.h"
#include "linux/membroker.h"

/* @x * @pct / 100 without the product wrapping for any u64 @x */
static uint64_t mbd_percent(uint64_t x, uint32_t pct)
{
	return x / 100 * pct + x % 100 * pct / 100;
}

/**
 * mbd_level_of() - the warning level of a reading
 * @cfg: the percentages
 * @n: the reading
 *
 * Return: MBD_LEVEL_NONE, _LOW, _MEDIUM or _CRITICAL, as described above.
 */
uint8_t mbd_level_of(const struct mbd_level_cfg *cfg,
		     const struct mb_notification *n)
{
	if (n->state != MB_STATE_LOW)
		return MBD_LEVEL_NONE;
	/* only the module gives reasons (the fake source, as it would) */
	if (n->reason == MEMBROKER_REASON_OOM)
		return MBD_LEVEL_CRITICAL;
	if (n->available < mbd_percent(n->low, cfg->critical_pct))
		return MBD_LEVEL_CRITICAL;
	if (n->available < mbd_percent(n->low, cfg->medium_pct))
		return MBD_LEVEL_MEDIUM;
	return MBD_LEVEL_LOW;
}

const char *mbd_level_name(uint8_t level)
{
	switch (level) {
	case MBD_LEVEL_NONE:
		return "none";
	case MBD_LEVEL_LOW:
		return "low";
	case MBD_LEVEL_MEDIUM:
		return "medium";
	case MBD_LEVEL_CRITICAL:
		return "critical";
	}
	return "unknown";
}

void mbd_warn_init(struct mbd_warn *w, uint64_t repeat_ns)
{
	*w = (struct mbd_warn){
		.repeat_ns = repeat_ns,
		.gap_ns = repeat_ns < MBD_NSEC_PER_SEC ? repeat_ns :
						       MBD_NSEC_PER_SEC,
	};
}

/* how long the last signal's level stays in force */
static uint64_t mbd_warn_span(const struct mbd_warn *w)
{
	return w->recovered ? w->gap_ns : w->repeat_ns;
}

static uint8_t mbd_warn_in_force(const struct mbd_warn *w, uint64_t now)
{
	if (!w->sent_ns || now - w->sent_ns >= mbd_warn_span(w))
		return MBD_LEVEL_NONE;
	return w->sent;
}

static uint8_t mbd_warn_say(struct mbd_warn *w, uint8_t level, uint64_t now)
{
	w->sent = level;
	w->sent_ns = now;
	w->recovered = false;
	return level;
}

/**
 * mbd_warn_reading() - a new reading of level @level at @now
 * @w: the state
 * @level: its level
 * @now: CLOCK_MONOTONIC, ns
 *
 * Return: the level to signal now, or MBD_LEVEL_NONE for nothing.
 */
uint8_t mbd_warn_reading(struct mbd_warn *w, uint8_t level, uint64_t now)
{
	w->cur = level;
	if (level == MBD_LEVEL_NONE) {
		w->recovered = true;
		return MBD_LEVEL_NONE;
	}
	if (level <= mbd_warn_in_force(w, now))
		return MBD_LEVEL_NONE;
	return mbd_warn_say(w, level, now);
}

/**
 * mbd_warn_timer() - the time mbd_warn_next() asked for has come
 * @w: the state
 * @now: CLOCK_MONOTONIC, ns
 *
 * Return: the level to signal again now, or MBD_LEVEL_NONE.
 */
uint8_t mbd_warn_timer(struct mbd_warn *w, uint64_t now)
{
	if (w->cur == MBD_LEVEL_NONE || !w->sent_ns ||
	    now - w->sent_ns < mbd_warn_span(w))
		return MBD_LEVEL_NONE;
	return mbd_warn_say(w, w->cur, now);
}

/**
 * mbd_warn_next() - when to call mbd_warn_timer()
 * @w: the state
 *
 * Return: CLOCK_MONOTONIC ns, or 0 when no re-send is due (the latest
 * reading's level is none, or nothing was ever signalled).
 */
uint64_t mbd_warn_next(const struct mbd_warn *w)
{
	if (w->cur == MBD_LEVEL_NONE || !w->sent_ns)
		return 0;
	return w->sent_ns + mbd_warn_span(w);
}
