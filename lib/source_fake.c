// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Source "fake": notifications injected with mb_monitor_fake_push(), for
 * tests and demonstrations.  Pushed notifications queue up and are handed
 * to the monitor one per dispatch call, in order; the eventfd is readable
 * exactly while the queue is not empty.
 *
 * What the source "measures now" is the latest notification it handed
 * out, or what mb_monitor_fake_set() says when memory moved without a
 * change of state; a refresh (the monitor's LOW repeat) returns that.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "internal.h"

#define MB_FAKE_QUEUE	256

struct mb_src_fake {
	struct mb_lock lock;
	int efd;
	uint64_t seq;
	size_t head, count;
	struct mb_notification q[MB_FAKE_QUEUE];
	struct mb_notification cur;	/* measured now */
};

static int mb_src_fake_open(struct mb_source *s)
{
	struct mb_src_fake *p;

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->efd < 0) {
		free(p);
		return -errno;
	}
	mb_lock_init(&p->lock, MB_LOCK_INNER);
	s->priv = p;
	s->fd = p->efd;
	s->events = POLLIN;
	return 0;
}

/* The monitor's copy of @n, with what the caller left at 0 filled in. */
int mb_source_fake_push(struct mb_source *s, const struct mb_notification *n)
{
	struct mb_src_fake *p = s->priv;
	struct mb_notification *q;
	uint64_t one = 1;
	int err = 0;

	if (n->state > MB_STATE_HIGH)
		return -EINVAL;
	mb_lock(&p->lock);
	if (p->count == MB_FAKE_QUEUE) {
		err = -EAGAIN;
		goto out;
	}
	q = &p->q[(p->head + p->count) % MB_FAKE_QUEUE];
	*q = *n;
	q->source = MB_SOURCE_FAKE;
	q->seq = n->seq ? n->seq : ++p->seq;
	if (!q->time_ns)
		q->time_ns = mb_now_ns();
	p->count++;
	/* under the lock, or a dispatch could drain this wakeup */
	if (write(p->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		err = -errno;
out:
	mb_unlock(&p->lock);
	return err;
}

int mb_source_fake_set(struct mb_source *s, const struct mb_notification *n)
{
	struct mb_src_fake *p = s->priv;

	if (n->state > MB_STATE_HIGH)
		return -EINVAL;
	mb_lock(&p->lock);
	p->cur = *n;
	p->cur.source = MB_SOURCE_FAKE;
	p->cur.seq = p->seq;
	mb_unlock(&p->lock);
	return 0;
}

static int mb_src_fake_dispatch(struct mb_source *s,
				struct mb_notification *out)
{
	struct mb_src_fake *p = s->priv;
	uint64_t v;
	int ret = 0;

	mb_lock(&p->lock);
	if (p->count) {
		*out = p->q[p->head];
		p->cur = *out;
		p->head = (p->head + 1) % MB_FAKE_QUEUE;
		p->count--;
		ret = 1;
	}
	if (!p->count && read(p->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		ret = -errno;
	mb_unlock(&p->lock);
	return ret;
}

static int mb_src_fake_refresh(struct mb_source *s,
			       struct mb_notification *out)
{
	struct mb_src_fake *p = s->priv;
	int ret = 0;

	mb_lock(&p->lock);
	if (p->cur.state != MB_STATE_UNKNOWN) {
		ret = p->cur.state != s->last.state ||
		      p->cur.flags != s->last.flags;
		*out = p->cur;
		out->time_ns = mb_now_ns();
	}
	mb_unlock(&p->lock);
	return ret;
}

static int mb_src_fake_timeout(struct mb_source *s)
{
	(void)s;
	return -1;
}

static void mb_src_fake_close(struct mb_source *s)
{
	struct mb_src_fake *p = s->priv;

	if (!p)
		return;
	close(p->efd);
	mb_lock_destroy(&p->lock);
	free(p);
	s->priv = NULL;
	s->fd = -1;
}

const struct mb_source_ops mb_source_fake_ops = {
	.type = MB_SOURCE_FAKE,
	.name = "fake",
	.open = mb_src_fake_open,
	.dispatch = mb_src_fake_dispatch,
	.refresh = mb_src_fake_refresh,
	.timeout_ms = mb_src_fake_timeout,
	.close = mb_src_fake_close,
};
