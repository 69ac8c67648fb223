/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The contract between the resource monitor (monitor.c) and the places
 * notifications come from (source_*.c).  A source knows how to measure
 * memory; the monitor knows how to wait, combine and deliver.
 */
#ifndef MB_SOURCE_H
#define MB_SOURCE_H

#include "membroker.h"

struct mb_source;

/**
 * struct mb_source_ops - one kind of notification source
 * @type:	enum mb_source_type
 * @name:	short name reported to users ("kmod", "psi", ...)
 * @open:	probe and open.  Sets s->fd (or -1 for a timer-only source),
 *		s->events (0 means POLLIN; a PSI trigger or sysfs attribute
 *		is always POLLIN-readable and must say POLLPRI) and s->priv.
 *		s->opts is already set.  Returns 0, or -ENOENT/-ENODEV/
 *		-EOPNOTSUPP/-EACCES when the source is not usable on this machine (automatic
 *		selection then tries the next one), or another -errno.
 * @dispatch:	called by the monitor when s->fd is readable or the timeout
 *		returned by @timeout_ms expired.  Must not block.  Stores the
 *		latest reading in *out and returns 1 if it differs in state or
 *		flags from the previous one or is otherwise worth recording
 *		(thresholds or total changed), 0 if there is nothing new, or
 *		-errno.  A source that lost events (ENOBUFS) resynchronises
 *		itself before returning.  The monitor calls it once right
 *		after @open (s->last.state is then MB_STATE_UNKNOWN) to get
 *		the initial reading, and, for a source with an fd, again
 *		while it keeps returning 1 (at most a few times per round).
 * @timeout_ms:	milliseconds until @dispatch should be called even if s->fd
 *		is quiet; -1 for never.  May adapt to the headroom above the
 *		low threshold.
 * @close:	release everything @open acquired.  Called once.
 */
struct mb_source_ops {
	enum mb_source_type type;
	const char *name;
	int (*open)(struct mb_source *s);
	int (*dispatch)(struct mb_source *s, struct mb_notification *out);
	int (*timeout_ms)(struct mb_source *s);
	void (*close)(struct mb_source *s);
};

/**
 * struct mb_source - an open source, owned by one monitor
 * @ops:	its operations
 * @fd:		pollable fd (POLLIN or POLLPRI), or -1
 * @events:	poll events that mean "call @dispatch" (POLLIN if 0)
 * @priv:	the source's own state
 * @opts:	the monitor's options (root, low_bytes, high_bytes), valid
 *		from @open to @close; root is never NULL
 * @last:	the latest reading it delivered (kept by the monitor)
 */
struct mb_source {
	const struct mb_source_ops *ops;
	int fd;
	short events;
	void *priv;
	const struct mb_monitor_opts *opts;
	struct mb_notification last;
};

extern const struct mb_source_ops mb_source_kmod_ops;
extern const struct mb_source_ops mb_source_cgroup_ops;
extern const struct mb_source_ops mb_source_psi_ops;
extern const struct mb_source_ops mb_source_meminfo_ops;
extern const struct mb_source_ops mb_source_fake_ops;

#endif /* MB_SOURCE_H */
