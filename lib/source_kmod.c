// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Source "kmod": notifications from membroker.ko.
 *
 * The module does the measuring; this source only has to make sure no
 * change is missed.  It subscribes before asking for the state, so a
 * change that happens in between arrives as a NOTIFY rather than falling
 * into the gap, and it asks again (GET_STATE) whenever the socket
 * overflowed or the NOTIFY sequence numbers skip, since either means
 * notifications were lost.  GET_STATE carries the sequence number of the
 * latest NOTIFY, so anything older that is still queued is dropped.
 *
 * The module may be unloaded and loaded again (an upgrade, a test):
 *
 *   - When the family goes away (mb_kmod_recv() says -ENODEV, or a
 *     resync finds it gone) the source carries on from /proc/meminfo,
 *     classified with the thresholds the module last used, polled like
 *     the meminfo source.  Those readings say MB_SOURCE_MEMINFO, so
 *     subscribers see that the module is not what speaks.  It looks for
 *     the family again at most once every MB_KMOD_RETRY_NS as well.
 *   - When it comes back (NEWFAMILY, reported as -ENOBUFS, or the retry
 *     finds it) the source joins the group again and resynchronises.
 *   - A new module numbers its notifications from 1 again.  A NOTIFY
 *     whose sequence number is not above the one held is normally stale
 *     (evaluated before the GET_STATE reply we hold); one whose
 *     timestamp (CLOCK_MONOTONIC, evaluation time) is later than the one
 *     held can only come from a restarted module, and makes us
 *     resynchronise instead of ignoring everything it says from then on.
 *
 * The module is reached through struct mb_src_kmod_io so that tests can
 * script it.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "membroker.h"
#include "internal.h"

/* how often to look for a module that went away */
#define MB_KMOD_RETRY_NS	(1000 * MB_NSEC_PER_MSEC)

struct mb_src_kmod {
	const struct mb_src_kmod_io *io;
	void *h;
	struct mb_notification cur;	/* latest state from the module */
	bool have;			/* cur is valid */
	bool gone;			/* the family is not registered */
	uint64_t retry_ns;		/* when to look for it again */
	uint64_t fseq;			/* counter of fallback readings */
	struct mb_notification fb;	/* latest fallback reading */
	uint64_t resyncs;		/* for debugging */
};

static int mb_kio_recv(void *h, struct mb_notification *n)
{
	return mb_kmod_recv(h, n);
}

static int mb_kio_get_state(void *h, struct mb_notification *n)
{
	return mb_kmod_get_state(h, n);
}

static int mb_kio_refresh(void *h)
{
	return mb_kmod_refresh(h);
}

static int mb_kio_get_fd(void *h)
{
	return mb_kmod_get_fd(h);
}

static void mb_kio_close(void *h)
{
	mb_kmod_close(h);
}

static const struct mb_src_kmod_io mb_kmod_io = {
	.recv = mb_kio_recv,
	.get_state = mb_kio_get_state,
	.refresh = mb_kio_refresh,
	.get_fd = mb_kio_get_fd,
	.close = mb_kio_close,
};

/* GET_STATE into p->cur.  -ENOENT: the family is gone. */
static int mb_src_kmod_resync(struct mb_src_kmod *p)
{
	struct mb_notification n;
	int err;

	/* back from gone: join the group again, the kernel dropped us */
	if (p->gone) {
		err = p->io->refresh(p->h);
		if (err < 0)
			return err;
	}
	err = p->io->get_state(p->h, &n);
	if (err < 0)
		return err;
	p->resyncs++;
	/*
	 * The reply is an evaluation made just now; only a NOTIFY of that
	 * same evaluation may already be held, with the same seq.
	 */
	if (!p->have || n.seq >= p->cur.seq || n.time_ns > p->cur.time_ns) {
		p->cur = n;
		p->have = true;
	}
	return 0;
}

/**
 * mb_src_kmod_feed() - fold one result of mb_kmod_recv() into @cur
 * @r:	what mb_kmod_recv() returned, with @n filled when @r is 1
 * Return: 1 if a resync is needed (lost or unreadable notifications, or a
 * restarted module), 0 otherwise.
 *
 * Kept apart from the socket so that the sequence logic can be tested
 * without the module.
 */
int mb_src_kmod_feed(struct mb_notification *cur, bool *have, int r,
		     const struct mb_notification *n)
{
	if (r == -ENOBUFS || r == -EMSGSIZE || r == -EBADMSG)
		return 1;
	if (r != 1)
		return 0;
	if (*have && n->seq <= cur->seq) {
		if (n->time_ns <= cur->time_ns)
			return 0;	/* older than a GET_STATE we hold */
		/* evaluated later, numbered lower: a new module */
		*cur = *n;
		return 1;
	}
	if (*have && n->seq != cur->seq + 1) {
		/* Take it, but something between was lost. */
		*cur = *n;
		return 1;
	}
	*cur = *n;
	*have = true;
	return 0;
}

/* /proc/meminfo while the module is away, with its last thresholds. */
static int mb_src_kmod_fallback(struct mb_source *s,
				struct mb_notification *out)
{
	struct mb_src_kmod *p = s->priv;
	const struct mb_monitor_opts *o = s->opts;
	struct mb_notification n;
	struct mb_meminfo mi;
	uint64_t low, high;
	int err;

	err = mb_meminfo_read(o->root, &mi);
	if (err < 0)
		return err;
	mb_auto_thresholds(mi.total, &low, &high);
	if (p->have && p->cur.low < p->cur.high) {
		low = p->cur.low;
		high = p->cur.high;
	}
	if (o->low_bytes)
		low = o->low_bytes;
	if (o->high_bytes)
		high = o->high_bytes;
	high = MB_MAX(high, low);

	/* carry on from the module's state: same hysteresis */
	mb_notification_from_meminfo(&n, MB_SOURCE_MEMINFO, &mi, low, high,
				     s->last.state, mb_now_ns());
	if (s->last.source == MB_SOURCE_MEMINFO &&
	    !mb_notification_news(&n, &s->last)) {
		n.seq = p->fseq;
		p->fb = n;
		*out = n;
		return 0;
	}
	n.seq = ++p->fseq;
	p->fb = n;
	*out = n;
	return 1;
}

/* Drain the socket, resync as needed (always with @query), report. */
static int mb_src_kmod_run(struct mb_source *s, struct mb_notification *out,
			   bool query)
{
	struct mb_src_kmod *p = s->priv;
	struct mb_notification n;
	bool resync = query;
	uint64_t now;
	int r;

	/* Drain everything pending: only the latest state matters. */
	for (;;) {
		r = p->io->recv(p->h, &n);
		if (r == 0)
			break;
		if (r == -ENODEV) {
			/* the family was removed: whatever came before */
			p->gone = true;
			p->retry_ns = mb_now_ns() + MB_KMOD_RETRY_NS;
			resync = false;
			continue;
		}
		if (r < 0 && r != -ENOBUFS && r != -EMSGSIZE &&
		    r != -EBADMSG)
			return r;
		if (mb_src_kmod_feed(&p->cur, &p->have, r, &n))
			resync = true;
	}
	now = mb_now_ns();
	if (p->gone && now >= p->retry_ns)
		resync = true;
	if (resync) {
		r = mb_src_kmod_resync(p);
		if (r < 0 && r != -ENOENT && r != -ENODEV)
			return r;
		/* the family is gone: look again a while later */
		p->gone = r < 0;
		if (p->gone)
			p->retry_ns = now + MB_KMOD_RETRY_NS;
	}
	if (p->gone)
		return mb_src_kmod_fallback(s, out);
	if (!p->have)
		return 0;
	*out = p->cur;
	/*
	 * The kernel only notifies on a change (state, flags, thresholds,
	 * total), so anything with a new sequence number is worth recording.
	 */
	if (s->last.source != MB_SOURCE_KMOD || out->seq != s->last.seq ||
	    out->state != s->last.state || out->flags != s->last.flags)
		return 1;
	return 0;
}

static int mb_src_kmod_dispatch(struct mb_source *s,
				struct mb_notification *out)
{
	return mb_src_kmod_run(s, out, false);
}

/* For the LOW repeat: the module measures now (GET_STATE). */
static int mb_src_kmod_refresh(struct mb_source *s,
			       struct mb_notification *out)
{
	return mb_src_kmod_run(s, out, true);
}

int mb_src_kmod_attach(struct mb_source *s, const struct mb_src_kmod_io *io,
		       void *h)
{
	struct mb_src_kmod *p;
	int err;

	p = calloc(1, sizeof(*p));
	if (!p) {
		io->close(h);
		return -ENOMEM;
	}
	p->io = io;
	p->h = h;
	err = mb_src_kmod_resync(p);
	if (err < 0) {
		io->close(h);
		free(p);
		return err;
	}
	s->fd = io->get_fd(h);
	s->priv = p;
	return 0;
}

static int mb_src_kmod_open(struct mb_source *s)
{
	struct mb_kmod *k;
	int err;

	err = mb_kmod_open(&k);
	if (err < 0)
		return err;
	err = mb_kmod_subscribe(k);
	if (err < 0) {
		mb_kmod_close(k);
		return err;
	}
	return mb_src_kmod_attach(s, &mb_kmod_io, k);
}

static int mb_src_kmod_timeout(struct mb_source *s)
{
	struct mb_src_kmod *p = s->priv;
	uint64_t now, left;
	int ms;

	if (!p->gone)
		return -1;	/* the module tells us; nothing to poll */
	ms = mb_poll_interval_ms(p->fb.available, p->fb.low);
	now = mb_now_ns();
	left = p->retry_ns > now ? p->retry_ns - now : 0;
	left = (left + MB_NSEC_PER_MSEC - 1) / MB_NSEC_PER_MSEC;
	return (int)MB_MIN((uint64_t)ms, left);
}

static void mb_src_kmod_close(struct mb_source *s)
{
	struct mb_src_kmod *p = s->priv;

	if (!p)
		return;
	p->io->close(p->h);
	free(p);
	s->priv = NULL;
	s->fd = -1;
}

const struct mb_source_ops mb_source_kmod_ops = {
	.type = MB_SOURCE_KMOD,
	.name = "kmod",
	.open = mb_src_kmod_open,
	.dispatch = mb_src_kmod_dispatch,
	.refresh = mb_src_kmod_refresh,
	.timeout_ms = mb_src_kmod_timeout,
	.close = mb_src_kmod_close,
};
