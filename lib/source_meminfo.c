// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Source "meminfo": polls /proc/meminfo and classifies MemAvailable the
 * way the module does.  The works-everywhere fallback: it needs nothing
 * but procfs, at the price of polling.  The poll interval adapts to the
 * headroom above the low threshold (mb_poll_interval_ms()): a second
 * when there is plenty, 5 ms when memory is about to run out.
 */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

struct mb_src_meminfo {
	uint64_t seq;
	uint64_t avail;		/* of the latest reading */
	uint64_t low;
	uint64_t high;
};

static int mb_src_meminfo_read(struct mb_source *s,
			       struct mb_notification *out)
{
	struct mb_src_meminfo *p = s->priv;
	const struct mb_monitor_opts *o = s->opts;
	struct mb_meminfo mi;
	uint64_t low, high;
	int err;

	err = mb_meminfo_read(o->root, &mi);
	if (err)
		return err;
	mb_auto_thresholds(mi.total, &low, &high);
	/* fixed thresholds from the options; the other one stays automatic */
	if (o->low_bytes)
		low = o->low_bytes;
	if (o->high_bytes)
		high = o->high_bytes;
	if (high < low)
		high = low;
	p->avail = mi.available;
	p->low = low;
	p->high = high;

	mb_notification_from_meminfo(out, MB_SOURCE_MEMINFO, &mi, low, high,
				     s->last.state, mb_now_ns());
	out->seq = p->seq;
	return 0;
}

static int mb_src_meminfo_open(struct mb_source *s)
{
	struct mb_notification n;
	int err;

	if (s->opts->low_bytes && s->opts->high_bytes &&
	    s->opts->low_bytes >= s->opts->high_bytes)
		return -EINVAL;
	s->priv = calloc(1, sizeof(struct mb_src_meminfo));
	if (!s->priv)
		return -ENOMEM;
	/* probe: no readable meminfo with MemAvailable, no source */
	err = mb_src_meminfo_read(s, &n);
	if (err) {
		free(s->priv);
		s->priv = NULL;
		return err == -ENODATA || err == -EINVAL ? -ENODEV : err;
	}
	s->fd = -1;
	return 0;
}

static int mb_src_meminfo_dispatch(struct mb_source *s,
				   struct mb_notification *out)
{
	struct mb_src_meminfo *p = s->priv;
	const struct mb_notification *l = &s->last;
	int err;

	err = mb_src_meminfo_read(s, out);
	if (err)
		return err;
	if (!mb_notification_news(out, l))
		return 0;
	out->seq = ++p->seq;
	return 1;
}

static int mb_src_meminfo_timeout(struct mb_source *s)
{
	struct mb_src_meminfo *p = s->priv;

	return mb_poll_interval_ms(p->avail, p->low);
}

static void mb_src_meminfo_close(struct mb_source *s)
{
	free(s->priv);
	s->priv = NULL;
}

const struct mb_source_ops mb_source_meminfo_ops = {
	.type = MB_SOURCE_MEMINFO,
	.name = "meminfo",
	.open = mb_src_meminfo_open,
	.dispatch = mb_src_meminfo_dispatch,
	.timeout_ms = mb_src_meminfo_timeout,
	.close = mb_src_meminfo_close,
};
