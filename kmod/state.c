// SPDX-License-Identifier: GPL-2.0
/*
 * membroker: the state machine.
 *
 * Pure functions of their arguments: how thresholds are derived from the
 * configuration and total memory, which state a measurement maps to given
 * the previous one, and whether a change may be published now.  Nothing
 * here measures memory, takes a lock or talks to userspace, so the rules
 * can be read (and reasoned about) in one place.
 */
#include <linux/kernel.h>
#include <linux/math64.h>
#include <linux/minmax.h>
#include <linux/mman.h>
#include <linux/sizes.h>
#include <linux/time64.h>

#include "membroker.h"

/*
 * Automatic low threshold: an eighth of RAM, but at least 32 MiB so that a
 * small machine still gets a useful warning, and at most 256 MiB so that a
 * large one is not told to shrink while gigabytes are free.
 */
#define MB_AUTO_LOW_MIN		((u64)SZ_32M)
#define MB_AUTO_LOW_MAX		((u64)SZ_256M)

/*
 * The kernel itself starts reclaiming when free memory falls to the high
 * watermarks; four times their sum keeps the LOW warning well ahead of
 * that on machines whose watermarks are large (big min_free_kbytes).
 */
#define MB_AUTO_LOW_WMARK_MULT	4

/* Windows uses high = 3 * low; so do we, within half of RAM. */
#define MB_AUTO_HIGH_MULT	3

/*
 * Changes of MemTotal smaller than this are ignored: balloon drivers move
 * memory in steps of pages, and neither thresholds nor listeners need to
 * follow every page.
 */
#define MB_TOTAL_GRANULE	((u64)SZ_1M)

/*
 * The adaptive poll assumes memory can be consumed at up to 1 GiB/s (a
 * single thread faulting in anonymous memory on current hardware is in that
 * range; under QEMU TCG it is about 95 MiB/s).  Polling every
 * headroom / rate therefore looks again before the headroom above the low
 * threshold can have been used up.  Reclaim kicks an evaluation anyway,
 * so this only has to bound the delay when reclaim has not started yet.
 */
#define MB_DRAIN_BYTES_PER_MS	((u64)SZ_1G / MSEC_PER_SEC)

static u64 mb_auto_low(u64 total, u64 wmark_high)
{
	u64 low = clamp(total / 8, MB_AUTO_LOW_MIN, MB_AUTO_LOW_MAX);

	low = max(low, MB_AUTO_LOW_WMARK_MULT * wmark_high);
	return min(low, total / 4);
}

static u64 mb_auto_high(u64 low, u64 total)
{
	return min(MB_AUTO_HIGH_MULT * low, total / 2);
}

/* The thresholds @cfg asks for, without any fallback. */
static void mb_resolve(const struct mb_config *cfg, u64 total,
		       u64 wmark_high, u64 *low, u64 *high)
{
	*low = cfg->low_bytes ?: mb_auto_low(total, wmark_high);
	*high = cfg->high_bytes ?: mb_auto_high(*low, total);
}

/**
 * mb_state_thresholds - the thresholds in force
 * @cfg:	configuration (0 bytes = automatic)
 * @total:	total memory in bytes
 * @wmark_high:	sum of the zones' high watermarks in bytes
 * @t:		result
 *
 * A configuration is checked against total memory when it is set, but
 * total memory can shrink afterwards (hot-unplug, balloon).  If the
 * configured thresholds then no longer leave low below high, the automatic
 * ones are used until they fit again: a machine without a working
 * threshold would never leave LOW or never enter it.
 */
void mb_state_thresholds(const struct mb_config *cfg, u64 total,
			 u64 wmark_high, struct mb_thresholds *t)
{
	u64 low, high, hyst;

	t->fallback = false;
	mb_resolve(cfg, total, wmark_high, &low, &high);
	if (low >= high) {
		t->fallback = true;
		low = mb_auto_low(total, wmark_high);
		high = mb_auto_high(low, total);
		/* Only possible with a few bytes of RAM; stay well defined. */
		if (high <= low)
			high = low + 1;
	}

	hyst = cfg->hysteresis_bytes ?: low / 8;
	t->low = low;
	t->high = high;
	t->hyst = min(hyst, (high - low) / 2);
}

/**
 * mb_state_check_config - may @cfg be applied?
 * @cfg:	the complete configuration that would be in force
 * @changed:	MB_CFG_F_* of the values that differ from those in force
 *		(all of them for the initial configuration)
 * @total:	current total memory in bytes
 * @wmark_high:	current sum of the high watermarks in bytes
 *
 * Ranges are checked for every value.  What depends on total memory is
 * checked only for values being changed: total memory may have shrunk
 * since the others were set (hot-unplug, balloon), and mb_state_thresholds()
 * then falls back to automatic thresholds until they fit again; refusing
 * every later change (of the rate limit, say) for them would leave the
 * administrator no way to configure anything short of undoing the
 * thresholds.  A refusal always blames a value being changed.
 *
 * Return: MB_CFG_OK, or the first reason found to refuse it.
 */
enum mb_cfg_err mb_state_check_config(const struct mb_config *cfg,
				      u32 changed, u64 total, u64 wmark_high)
{
	u64 low, high;

	if (cfg->poll_min_ms < MB_POLL_MIN_MS_MIN ||
	    cfg->poll_min_ms > MB_POLL_MIN_MS_MAX)
		return MB_CFG_POLL_MIN_RANGE;
	if (cfg->poll_max_ms < MB_POLL_MAX_MS_MIN ||
	    cfg->poll_max_ms > MB_POLL_MAX_MS_MAX)
		return MB_CFG_POLL_MAX_RANGE;
	if (cfg->poll_min_ms > cfg->poll_max_ms)
		return MB_CFG_POLL_ORDER;
	if (cfg->ratelimit_ms > MB_RATELIMIT_MS_MAX)
		return MB_CFG_RATELIMIT_RANGE;
	if (cfg->virtual_low_percent < MB_VIRTUAL_LOW_PERCENT_MIN ||
	    cfg->virtual_low_percent > MB_VIRTUAL_LOW_PERCENT_MAX)
		return MB_CFG_PERCENT_RANGE;
	if ((changed & MB_CFG_F_LOW) && cfg->low_bytes > total)
		return MB_CFG_LOW_TOTAL;
	if ((changed & MB_CFG_F_HIGH) && cfg->high_bytes > total)
		return MB_CFG_HIGH_TOTAL;
	if ((changed & MB_CFG_F_HYST) && cfg->hysteresis_bytes > total)
		return MB_CFG_HYST_TOTAL;

	if (!(changed & (MB_CFG_F_LOW | MB_CFG_F_HIGH)))
		return MB_CFG_OK;
	mb_resolve(cfg, total, wmark_high, &low, &high);
	if (low >= high) {
		/*
		 * Blame a value being changed; of two, the low threshold if
		 * it was set rather than made automatic.
		 */
		if (!(changed & MB_CFG_F_HIGH) ||
		    ((changed & MB_CFG_F_LOW) && cfg->low_bytes))
			return MB_CFG_LOW_NOT_BELOW_HIGH;
		return MB_CFG_HIGH_NOT_ABOVE_LOW;
	}
	return MB_CFG_OK;
}

/**
 * mb_state_cfg_strerror - the message for a configuration error
 * @err:	the error
 *
 * Return: a static string.
 */
const char *mb_state_cfg_strerror(enum mb_cfg_err err)
{
	switch (err) {
	case MB_CFG_OK:
		return "no error";
	case MB_CFG_POLL_MIN_RANGE:
		return MB_CFG_MSG_POLL_MIN_RANGE;
	case MB_CFG_POLL_MAX_RANGE:
		return MB_CFG_MSG_POLL_MAX_RANGE;
	case MB_CFG_POLL_ORDER:
		return MB_CFG_MSG_POLL_ORDER;
	case MB_CFG_RATELIMIT_RANGE:
		return MB_CFG_MSG_RATELIMIT_RANGE;
	case MB_CFG_PERCENT_RANGE:
		return MB_CFG_MSG_PERCENT_RANGE;
	case MB_CFG_LOW_TOTAL:
		return MB_CFG_MSG_LOW_TOTAL;
	case MB_CFG_HIGH_TOTAL:
		return MB_CFG_MSG_HIGH_TOTAL;
	case MB_CFG_HYST_TOTAL:
		return MB_CFG_MSG_HYST_TOTAL;
	case MB_CFG_LOW_NOT_BELOW_HIGH:
	case MB_CFG_HIGH_NOT_ABOVE_LOW:
		return MB_CFG_MSG_LOW_HIGH;
	}
	return "unknown error";
}

/**
 * mb_state_next - the state a measurement maps to
 * @cur:	the current state, or 0 if there is none yet
 * @available:	MemAvailable in bytes
 * @t:		thresholds in force
 *
 * LOW is left only once available >= low + hysteresis, HIGH only once
 * available <= high - hysteresis; otherwise the plain classification
 * applies.  Since the hysteresis is at most half the gap between the
 * thresholds, the two bands never overlap.
 *
 * Return: an enum membroker_state value.
 */
u32 mb_state_next(u32 cur, u64 available, const struct mb_thresholds *t)
{
	if (cur == MEMBROKER_STATE_LOW && available < t->low + t->hyst)
		return MEMBROKER_STATE_LOW;
	if (cur == MEMBROKER_STATE_HIGH && available > t->high - t->hyst)
		return MEMBROKER_STATE_HIGH;

	if (available < t->low)
		return MEMBROKER_STATE_LOW;
	if (available > t->high)
		return MEMBROKER_STATE_HIGH;
	return MEMBROKER_STATE_STEADY;
}

/**
 * mb_state_flags - the MEMBROKER_FLAG_* bits of a measurement
 * @s:			the measurement
 * @virtual_low_percent: threshold in percent of the commit limit
 *
 * VIRTUAL_LOW says that new commitments of address space are about to be
 * refused.  Only strict accounting (vm.overcommit_memory 2) refuses them
 * at CommitLimit.  The heuristic mode (0) refuses only a single request
 * larger than RAM and swap together, whatever is committed already, and
 * mode 1 refuses nothing: Committed_AS far above CommitLimit is normal
 * there, and no global figure predicts a refusal, so the flag stays clear;
 * running short of memory itself is what LOW reports.
 *
 * Return: the flags; none while the commit limit or the mode is unknown.
 */
u32 mb_state_flags(const struct mb_sample *s, u32 virtual_low_percent)
{
	u64 threshold;
	u32 rem;

	if (s->overcommit != OVERCOMMIT_NEVER || !s->commit_limit)
		return 0;

	/*
	 * committed * 100 >= commit_limit * percent, without the products:
	 * Committed_AS has no useful bound (under overcommit_memory=1 a
	 * single shmget() charges any size, up to 2^63 bytes), and a product
	 * that wrapped would clear the flag exactly when committed memory is
	 * largest.  With commit_limit = 100 q + r, the smallest committed
	 * that qualifies is q * percent + ceil(r * percent / 100); percent
	 * is at most 100, so nothing here can overflow.
	 */
	threshold = div_u64_rem(s->commit_limit, 100, &rem);
	threshold = threshold * virtual_low_percent +
		    DIV_ROUND_UP(rem * virtual_low_percent, 100);
	return s->committed >= threshold ? MEMBROKER_FLAG_VIRTUAL_LOW : 0;
}

/* Higher is more severe. */
static int mb_severity(u32 state)
{
	switch (state) {
	case MEMBROKER_STATE_LOW:
		return 2;
	case MEMBROKER_STATE_STEADY:
		return 1;
	default:
		return 0;
	}
}

/**
 * mb_state_total_changed - is @total different enough from @tracked?
 * @tracked:	the total memory last acted upon, in bytes
 * @total:	the current total memory, in bytes
 *
 * Return: true if they differ by at least MB_TOTAL_GRANULE.
 */
bool mb_state_total_changed(u64 tracked, u64 total)
{
	u64 diff = tracked > total ? tracked - total : total - tracked;

	return diff >= MB_TOTAL_GRANULE;
}

/**
 * mb_state_decide - publish an evaluation now, later or not at all?
 * @last:	the latest published message, NULL if none yet
 * @cur:	the evaluation
 * @ratelimit_ns: minimum spacing before a relaxing notification
 * @pub:	for MB_PUBLISH_NOW, the message to publish
 * @wait_ns:	if not 0, evaluate again after this long: something is
 *		held back by the rate limit
 *
 * A notification is due when the state, the flags or a threshold changed,
 * or total memory moved by MB_TOTAL_GRANULE or more.  Escalations (state
 * towards LOW, a flag set) are a call to act and go out at once.  Every
 * other change waits until @ratelimit_ns after the previous notification
 * of any kind; when an escalation and a relaxation coincide (available
 * memory recovers while committed memory crosses the limit, say), the
 * escalation goes out with the relaxing part held back at its previous
 * value.  Thus two notifications less than @ratelimit_ns apart are always
 * an escalation following another notification, and a level hovering
 * around a threshold causes at most one escalation and one relaxation per
 * interval.
 *
 * Return: an enum mb_publish value.
 */
enum mb_publish mb_state_decide(const struct mb_msg *last,
				const struct mb_msg *cur, u64 ratelimit_ns,
				struct mb_msg *pub, u64 *wait_ns)
{
	bool escalates, relaxes;
	u64 due;

	*pub = *cur;
	*wait_ns = 0;
	if (!last)
		return MB_PUBLISH_NOW;

	escalates = mb_severity(cur->state) > mb_severity(last->state) ||
		    (cur->flags & ~last->flags);
	relaxes = mb_severity(cur->state) < mb_severity(last->state) ||
		  (last->flags & ~cur->flags);
	if (!escalates && !relaxes &&
	    cur->low == last->low && cur->high == last->high &&
	    !mb_state_total_changed(last->total, cur->total))
		return MB_PUBLISH_NONE;

	due = last->timestamp_ns + ratelimit_ns;
	if (cur->timestamp_ns >= due)
		return MB_PUBLISH_NOW;

	if (!escalates) {
		*wait_ns = due - cur->timestamp_ns;
		return MB_PUBLISH_LATER;
	}

	if (relaxes) {
		if (mb_severity(cur->state) < mb_severity(last->state))
			pub->state = last->state;
		pub->flags |= last->flags;
		/* Published now, so the relaxation is due one interval later */
		*wait_ns = ratelimit_ns;
	}
	return MB_PUBLISH_NOW;
}

/**
 * mb_state_poll_ms - how long until the next periodic evaluation
 * @state:	the state just evaluated
 * @available:	MemAvailable in bytes
 * @t:		thresholds in force
 * @cfg:	configuration (poll bounds, rate limit)
 * @far:	set if the headroom lasts at least poll_max_ms even at
 *		MB_DRAIN_BYTES_PER_MS: the poll may then be late (and use a
 *		deferrable timer)
 *
 * Outside LOW: the time the headroom above the low threshold lasts at
 * MB_DRAIN_BYTES_PER_MS, within [poll_min_ms, poll_max_ms].  In LOW there
 * is nothing more severe to detect, and leaving LOW cannot be notified
 * sooner than ratelimit_ms after entering it, so polling faster than that
 * would only burn CPU while memory is short; but LOW is never far.
 *
 * Return: milliseconds.
 */
u32 mb_state_poll_ms(u32 state, u64 available,
		     const struct mb_thresholds *t,
		     const struct mb_config *cfg, bool *far)
{
	u64 ms;

	*far = false;
	if (state == MEMBROKER_STATE_LOW) {
		ms = cfg->ratelimit_ms;
	} else if (available > t->low) {
		ms = div64_u64(available - t->low, MB_DRAIN_BYTES_PER_MS);
		/* Not from the clamped value: poll_min_ms may equal it */
		*far = ms >= cfg->poll_max_ms;
	} else {
		ms = 0;
	}

	return clamp_t(u64, ms, cfg->poll_min_ms, cfg->poll_max_ms);
}
