// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Source "psi": a PSI memory trigger plus MemAvailable thresholds.
 *
 * The trigger ("some 150ms per 1s window") reports reclaim stalls, but in
 * a machine without reclaimable cache memory can run out before anything
 * stalls (Documentation, VM-NOTES: the trigger never fired before the OOM
 * kill), so the trigger alone gives no warning.  This source therefore
 * classifies MemAvailable against the low/high thresholds on an adaptive
 * poll like the meminfo source, and lets the trigger force LOW at once:
 * a stall is the strongest sign there is.
 *
 * After a trigger LOW is held until a later evaluation finds both a full
 * trigger window without another firing and MemAvailable back above the
 * low threshold plus hysteresis (mb_classify() keeps LOW until then), so a
 * stall that ends for a moment does not flap the state.
 *
 * The trigger goes on the process's cgroup v2 memory.pressure when there
 * is one (pressure the process actually feels), else on the system-wide
 * /proc/pressure/memory.
 *
 * A trigger's POLLPRI is consumed by whoever polls it first
 * (psi_trigger_poll() clears the event as it reports it).  When the
 * monitor's epoll_wait() reports it, the monitor hands it over in
 * s->revents; a poll() here only catches a firing since then.  But an
 * application that polls the monitor's fd in its own loop makes the
 * kernel poll the trigger through the nested epoll, and that consumes
 * the firing before the monitor can see it.  The monitor therefore calls
 * this source on every dispatch, and a firing is also recognised from the
 * stall time the same fd reports on read ("some ... total=<us>"): at
 * least 150 ms of stall per second over the time since a baseline at most
 * about two windows old means some 1 s window had at least 150 ms, which
 * is what the trigger fires on.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "membroker.h"
#include "internal.h"

/* 150 ms of stall in a 1 s window, in microseconds as PSI wants them */
#define MB_PSI_TRIGGER		"some 150000 1000000"
#define MB_PSI_WINDOW_NS	(1000ULL * MB_NSEC_PER_MSEC)

struct mb_src_psi {
	int fd;			/* the trigger */
	uint64_t fired_ns;	/* when it last fired, 0: never */
	uint64_t fires;		/* how often it fired */
	bool have_base;		/* a stall baseline was taken */
	uint64_t base_ns;	/* when */
	uint64_t base_stall_us;	/* "some" total stall then */
	uint64_t seq;
	struct mb_notification cur;
};

/**
 * mb_psi_parse_some_total() - the "some" line's total= (microseconds)
 * Return: 0, or -EINVAL when there is none (e.g. a fake file in tests).
 */
int mb_psi_parse_some_total(const char *text, uint64_t *us)
{
	unsigned long long v;
	const char *t;

	if (strncmp(text, "some ", 5))
		return -EINVAL;
	t = strstr(text, " total=");
	if (!t || (strchr(text, '\n') && t > strchr(text, '\n')))
		return -EINVAL;
	if (sscanf(t, " total=%llu", &v) != 1)
		return -EINVAL;
	*us = v;
	return 0;
}

/*
 * Did the trigger's condition hold since the baseline?  Reads the stall
 * total from the trigger fd; without one (or on the first call) it only
 * takes the baseline.
 */
static bool mb_src_psi_stalled(struct mb_src_psi *p, uint64_t now_ns)
{
	char buf[256];
	uint64_t us, elapsed, stall_ns;
	bool fired = false;
	ssize_t n;

	n = pread(p->fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	if (mb_psi_parse_some_total(buf, &us) < 0)
		return false;
	if (p->have_base && us >= p->base_stall_us &&
	    now_ns > p->base_ns) {
		elapsed = now_ns - p->base_ns;
		stall_ns = (us - p->base_stall_us) * 1000;
		/*
		 * 150 ms per second of the span (and per at least 1 s):
		 * stall / span >= 150 / 1000 = 3 / 20, kept in integers
		 * small enough not to overflow for decades of stall.
		 */
		fired = stall_ns * 20 >= 3 * MB_MAX(elapsed, MB_PSI_WINDOW_NS);
		if (elapsed < MB_PSI_WINDOW_NS && !fired)
			return false;	/* keep the older baseline */
	}
	p->have_base = true;
	p->base_ns = now_ns;
	p->base_stall_us = us;
	return fired;
}

/*
 * The trigger file: the own cgroup's memory.pressure if it has one,
 * else the system's.  Written into @buf relative to the root.
 */
static int mb_src_psi_path(const char *root, char *buf, size_t len)
{
	char cg[PATH_MAX], abs[PATH_MAX];
	int n;

	if (mb_cgroup_self_dir(root, cg, sizeof(cg)) >= 0) {
		n = snprintf(buf, len, "%s/memory.pressure", cg);
		if (n > 0 && (size_t)n < len &&
		    mb_path_join(root, buf, abs, sizeof(abs)) >= 0 &&
		    access(abs, F_OK) == 0)
			return 0;
	}
	n = snprintf(buf, len, "/proc/pressure/memory");
	return n > 0 && (size_t)n < len ? 0 : -ENAMETOOLONG;
}

static int mb_src_psi_open(struct mb_source *s)
{
	static const char trig[] = MB_PSI_TRIGGER;
	char rel[PATH_MAX], abs[PATH_MAX];
	struct mb_src_psi *p;
	ssize_t n;
	int err;

	err = mb_src_psi_path(s->opts->root, rel, sizeof(rel));
	if (err < 0)
		return err;
	err = mb_path_join(s->opts->root, rel, abs, sizeof(abs));
	if (err < 0)
		return err;

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->fd = open(abs, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (p->fd < 0) {
		/* 6.1 wants CAP_SYS_RESOURCE to open a trigger for writing */
		err = errno == EPERM || errno == EACCES ? -EACCES :
		      errno == ENOENT || errno == ENOTDIR ? -ENOENT : -errno;
		goto err_free;
	}
	/* PSI overwrites the last byte written with NUL: send ours. */
	n = write(p->fd, trig, sizeof(trig));
	if (n != (ssize_t)sizeof(trig)) {
		if (n < 0 && (errno == EPERM || errno == EACCES))
			err = -EACCES;
		else if (n < 0 && errno == ENOMEM)
			err = -ENOMEM;
		else
			err = -EOPNOTSUPP;	/* refused: no usable trigger */
		goto err_close;
	}

	s->fd = p->fd;
	s->events = POLLPRI;
	s->priv = p;
	return 0;

err_close:
	close(p->fd);
err_free:
	free(p);
	return err;
}

/**
 * mb_src_psi_eval() - one evaluation of the psi source
 * @fired:	poll() saw the trigger fire (the stall total is checked too)
 * @now_ns:	CLOCK_MONOTONIC now
 * Return: as &mb_source_ops.dispatch.
 */
int mb_src_psi_eval(struct mb_source *s, bool fired, uint64_t now_ns,
		    struct mb_notification *out)
{
	struct mb_src_psi *p = s->priv;
	struct mb_notification n;
	struct mb_meminfo mi;
	uint64_t low, high;
	int err;

	err = mb_meminfo_read(s->opts->root, &mi);
	if (err < 0)
		return err;
	if (mb_src_psi_stalled(p, now_ns))
		fired = true;
	if (fired) {
		p->fired_ns = now_ns;
		p->fires++;
	}

	mb_auto_thresholds(mi.total, &low, &high);
	if (s->opts->low_bytes)
		low = s->opts->low_bytes;
	if (s->opts->high_bytes)
		high = s->opts->high_bytes;

	mb_notification_from_meminfo(&n, MB_SOURCE_PSI, &mi, low, high,
				     p->cur.state, now_ns);
	if (p->fires && now_ns - p->fired_ns < MB_PSI_WINDOW_NS)
		n.state = MB_STATE_LOW;

	if (!mb_notification_news(&n, &s->last)) {
		n.seq = p->seq;
		p->cur = n;
		*out = n;
		return 0;
	}
	n.seq = ++p->seq;
	p->cur = n;
	*out = n;
	return 1;
}

static int mb_src_psi_dispatch(struct mb_source *s,
			       struct mb_notification *out)
{
	struct mb_src_psi *p = s->priv;
	struct pollfd pfd = { .fd = p->fd, .events = POLLPRI };
	uint32_t rev = s->revents;
	int r;

	/*
	 * What the monitor's epoll saw, plus a firing since: the poll that
	 * reported the earlier one consumed it.
	 */
	do {
		r = poll(&pfd, 1, 0);
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	rev |= (uint32_t)pfd.revents;
	/* The cgroup holding the trigger went away. */
	if (rev & (POLLERR | POLLNVAL))
		return -ENODEV;
	return mb_src_psi_eval(s, rev & POLLPRI, mb_now_ns(), out);
}

static int mb_src_psi_timeout(struct mb_source *s)
{
	struct mb_src_psi *p = s->priv;
	uint64_t now, left_ms;
	int ms;

	ms = mb_poll_interval_ms(p->cur.available, p->cur.low);
	if (!p->fires)
		return ms;
	/* Re-evaluate when the trigger window that holds LOW ends. */
	now = mb_now_ns();
	if (now - p->fired_ns >= MB_PSI_WINDOW_NS)
		return ms;
	left_ms = (MB_PSI_WINDOW_NS - (now - p->fired_ns) +
		   MB_NSEC_PER_MSEC - 1) / MB_NSEC_PER_MSEC;
	return (int)MB_MIN((uint64_t)ms, left_ms);
}

static void mb_src_psi_close(struct mb_source *s)
{
	struct mb_src_psi *p = s->priv;

	if (!p)
		return;
	close(p->fd);
	free(p);
	s->priv = NULL;
	s->fd = -1;
}

const struct mb_source_ops mb_source_psi_ops = {
	.type = MB_SOURCE_PSI,
	.name = "psi",
	.open = mb_src_psi_open,
	.dispatch = mb_src_psi_dispatch,
	.timeout_ms = mb_src_psi_timeout,
	.close = mb_src_psi_close,
};
