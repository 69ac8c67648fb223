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
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "membroker.h"
#include "internal.h"

struct mb_src_kmod {
	struct mb_kmod *k;
	struct mb_notification cur;	/* latest known state */
	bool have;			/* cur is valid */
	uint64_t resyncs;		/* for tests and debugging */
};

static int mb_src_kmod_resync(struct mb_src_kmod *p)
{
	struct mb_notification n;
	int err;

	err = mb_kmod_get_state(p->k, &n);
	if (err < 0)
		return err;
	p->resyncs++;
	/* A NOTIFY newer than the reply may already have been taken. */
	if (!p->have || n.seq >= p->cur.seq) {
		p->cur = n;
		p->have = true;
	}
	return 0;
}

static int mb_src_kmod_open(struct mb_source *s)
{
	struct mb_src_kmod *p;
	int err;

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	err = mb_kmod_open(&p->k);
	if (err < 0)
		goto err_free;
	err = mb_kmod_subscribe(p->k);
	if (err < 0)
		goto err_close;
	err = mb_src_kmod_resync(p);
	if (err < 0)
		goto err_close;
	s->fd = mb_kmod_get_fd(p->k);
	s->priv = p;
	return 0;

err_close:
	mb_kmod_close(p->k);
err_free:
	free(p);
	return err;
}

/**
 * mb_src_kmod_feed() - fold one result of mb_kmod_recv() into @p
 * @r:	what mb_kmod_recv() returned, with @n filled when @r is 1
 * Return: 1 if a resync is needed (lost or unreadable notifications),
 * 0 otherwise.
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
	if (*have && n->seq <= cur->seq)
		return 0;	/* older than a GET_STATE we already hold */
	if (*have && n->seq != cur->seq + 1) {
		/* Take it, but something between was lost. */
		*cur = *n;
		return 1;
	}
	*cur = *n;
	*have = true;
	return 0;
}

static int mb_src_kmod_dispatch(struct mb_source *s,
				struct mb_notification *out)
{
	struct mb_src_kmod *p = s->priv;
	struct mb_notification n;
	bool resync = false;
	int r;

	/* Drain everything pending: only the latest state matters. */
	for (;;) {
		r = mb_kmod_recv(p->k, &n);
		if (r == 0)
			break;
		if (r < 0 && r != -ENOBUFS && r != -EMSGSIZE &&
		    r != -EBADMSG)
			return r;
		if (mb_src_kmod_feed(&p->cur, &p->have, r, &n))
			resync = true;
	}
	if (resync) {
		r = mb_src_kmod_resync(p);
		if (r < 0)
			return r;
	}
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

static int mb_src_kmod_timeout(struct mb_source *s)
{
	(void)s;
	return -1;	/* the module tells us; nothing to poll */
}

static void mb_src_kmod_close(struct mb_source *s)
{
	struct mb_src_kmod *p = s->priv;

	if (!p)
		return;
	mb_kmod_close(p->k);
	free(p);
	s->priv = NULL;
	s->fd = -1;
}

const struct mb_source_ops mb_source_kmod_ops = {
	.type = MB_SOURCE_KMOD,
	.name = "kmod",
	.open = mb_src_kmod_open,
	.dispatch = mb_src_kmod_dispatch,
	.timeout_ms = mb_src_kmod_timeout,
	.close = mb_src_kmod_close,
};
