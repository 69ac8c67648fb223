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
 * @open:	probe and open.  Sets s->fd (or -1 for a timer-only source) and
 *		s->priv.  Returns 0, or -ENOENT/-ENODEV/-EOPNOTSUPP/-EACCES
 *		when the source is not usable on this machine (automatic
 *		selection then tries the next one), or another -errno.
 * @dispatch:	called by the monitor when s->fd is readable or the timeout
 *		returned by @timeout_ms expired.  Must not block.  Stores the
 *		latest reading in *out and returns 1 if it differs in state or
 *		flags from the previous one or is otherwise worth recording
 *		(thresholds or total changed), 0 if there is nothing new, or
 *		-errno.  A source that lost events (ENOBUFS) resynchronises
 *		itself before returning.
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
 * @priv:	the source's own state
 * @last:	the latest reading it delivered (kept by the monitor)
 */
struct mb_source {
	const struct mb_source_ops *ops;
	int fd;
	void *priv;
	struct mb_notification last;
};

extern const struct mb_source_ops mb_source_kmod_ops;
extern const struct mb_source_ops mb_source_cgroup_ops;
extern const struct mb_source_ops mb_source_psi_ops;
extern const struct mb_source_ops mb_source_meminfo_ops;
extern const struct mb_source_ops mb_source_fake_ops;

#endif /* MB_SOURCE_H */
