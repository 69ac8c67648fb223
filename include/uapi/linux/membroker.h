/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * membroker: physical memory resource notifications for Linux.
 *
 * Copyright (C) 2026 The membroker developers.
 *
 * OVERVIEW
 * ========
 *
 * The membroker module watches the amount of physical memory the kernel
 * could hand out without swapping (MemAvailable in /proc/meminfo) and
 * classifies it into one of three states, the way Windows' memory resource
 * notifications do:
 *
 *   MEMBROKER_STATE_LOW     available < low threshold.  Applications should
 *                           give memory back (shrink caches, trim heaps).
 *   MEMBROKER_STATE_STEADY  between the thresholds.  Hold steady.
 *   MEMBROKER_STATE_HIGH    available > high threshold.  Caches may grow.
 *
 * Independently of the state, the flag MEMBROKER_FLAG_VIRTUAL_LOW is set
 * while committed address space (Committed_AS) is at or above
 * virtual_low_percent of the commit limit (CommitLimit).
 *
 * The states are level based with hysteresis: once LOW, the state leaves LOW
 * only when available >= low + hysteresis; once HIGH, it leaves HIGH only
 * when available <= high - hysteresis.  The effective hysteresis is at most
 * half the distance between the thresholds.  Notifications that make things
 * more severe (towards LOW, or VIRTUAL_LOW set) are sent at once; all other
 * notifications are sent no sooner than ratelimit_ms after the previous one,
 * so at most two notifications are sent per ratelimit_ms interval and a
 * listener always ends up with the latest state.
 *
 * Thresholds of 0 are automatic: they are computed from total RAM and the
 * zones' high watermarks (see Documentation/membroker.rst) and recomputed
 * whenever total memory changes (memory hotplug, virtio-mem, balloon).
 *
 * TRANSPORT
 * =========
 *
 * Generic netlink family MEMBROKER_FAMILY_NAME, version
 * MEMBROKER_FAMILY_VERSION, with one multicast group MEMBROKER_MCGRP_NOTIFY.
 * Resolving the family autoloads the module where it is installed.
 * Attributes are validated strictly: unknown attributes, attributes that do
 * not belong to a command, and malformed values are rejected with -EINVAL
 * and an extended ack message, and change nothing.
 *
 * COMMANDS
 * ========
 *
 * MEMBROKER_CMD_GET_STATE (do, any user)
 *	Request: no attributes.  The module evaluates memory at once and
 *	replies with a state message (below), reason MEMBROKER_REASON_QUERY.
 *	If that evaluation changed the state, a NOTIFY is also multicast.
 *
 * MEMBROKER_CMD_NOTIFY (multicast on MEMBROKER_MCGRP_NOTIFY, to every
 * network namespace)
 *	A state message, sent whenever the state or the flags change, and
 *	whenever the thresholds or total memory change.  Every NOTIFY carries
 *	a new MEMBROKER_A_SEQ, one more than the previous one; a listener that
 *	sees a gap, or gets ENOBUFS on its socket, has missed notifications and
 *	should resynchronise with GET_STATE.
 *
 * MEMBROKER_CMD_GET_CONFIG (do, any user)
 *	Reply: the configuration as set (0 means automatic for the byte
 *	values), i.e. every attribute accepted by SET_CONFIG, plus
 *	MEMBROKER_A_HISTORY_SIZE.  A GET_CONFIG reply sent back as SET_CONFIG
 *	(without HISTORY_SIZE) changes nothing.  The thresholds in force are
 *	in the state message.
 *
 * MEMBROKER_CMD_SET_CONFIG (do, CAP_NET_ADMIN in the initial user namespace)
 *	Request: any subset of LOW_BYTES, HIGH_BYTES, HYSTERESIS_BYTES,
 *	POLL_MIN_MS, POLL_MAX_MS, RATELIMIT_MS, VIRTUAL_LOW_PERCENT.  Absent
 *	attributes keep their value.  The request is applied whole or not at
 *	all; it is rejected with -EINVAL if the resulting low threshold is not
 *	below the high one, if a byte value exceeds total memory, or if
 *	POLL_MIN_MS > POLL_MAX_MS.  Unprivileged callers get -EPERM.
 *	On success the new thresholds are applied at once and a NOTIFY with
 *	reason MEMBROKER_REASON_CONFIG is sent.
 *
 * MEMBROKER_CMD_GET_HISTORY (dump, any user)
 *	One state message per recorded notification, oldest first, from an
 *	in-kernel ring of the last MEMBROKER_A_HISTORY_SIZE notifications.
 *	Consecutive messages have consecutive sequence numbers, except where
 *	the ring was overwritten while the dump was in progress.
 *
 * STATE MESSAGE
 * =============
 *
 * GET_STATE replies, NOTIFY events and GET_HISTORY entries all carry:
 * STATE, FLAGS, SEQ, TIMESTAMP_NS, AVAILABLE_BYTES, TOTAL_BYTES, LOW_BYTES,
 * HIGH_BYTES, COMMITTED_BYTES, COMMIT_LIMIT_BYTES and REASON.  A GET_STATE
 * reply carries the SEQ of the latest notification sent.  u64 attributes may
 * be preceded by MEMBROKER_A_PAD for alignment; ignore it.
 *
 * SYSFS
 * =====
 *
 * The same state is readable under /sys/kernel/membroker/ (state, flags,
 * seq, available_bytes, total_bytes, low_bytes, high_bytes).  "state" and
 * "seq" are sysfs_notify()'d on every notification, so poll(POLLPRI) on them
 * works without netlink.
 */
#ifndef _UAPI_LINUX_MEMBROKER_H
#define _UAPI_LINUX_MEMBROKER_H

#define MEMBROKER_FAMILY_NAME		"membroker"
#define MEMBROKER_FAMILY_VERSION	1

#define MEMBROKER_MCGRP_NOTIFY		"notify"

/**
 * enum membroker_state - physical memory state (MEMBROKER_A_STATE)
 */
enum membroker_state {
	MEMBROKER_STATE_LOW = 1,	/* available < low threshold */
	MEMBROKER_STATE_STEADY = 2,	/* between the thresholds */
	MEMBROKER_STATE_HIGH = 3,	/* available > high threshold */
};

/* Bits of MEMBROKER_A_FLAGS */
#define MEMBROKER_FLAG_VIRTUAL_LOW	(1U << 0) /* committed near the limit */

/**
 * enum membroker_reason - what caused an evaluation (MEMBROKER_A_REASON)
 */
enum membroker_reason {
	MEMBROKER_REASON_UNSPEC,
	MEMBROKER_REASON_LOAD,		/* first evaluation at module load */
	MEMBROKER_REASON_POLL,		/* periodic, adaptive-interval poll */
	MEMBROKER_REASON_RECLAIM,	/* the kernel started reclaiming */
	MEMBROKER_REASON_HOTPLUG,	/* memory was onlined or offlined */
	MEMBROKER_REASON_CONFIG,	/* the configuration changed */
	MEMBROKER_REASON_OOM,		/* the OOM killer is about to run */
	MEMBROKER_REASON_QUERY,		/* a GET_STATE request */
	MEMBROKER_REASON_DEFERRED,	/* a rate-limited notification */

	__MEMBROKER_REASON_MAX,
};
#define MEMBROKER_REASON_MAX (__MEMBROKER_REASON_MAX - 1)

/**
 * enum membroker_cmd - generic netlink commands
 */
enum membroker_cmd {
	MEMBROKER_CMD_UNSPEC,
	MEMBROKER_CMD_GET_STATE,	/* do: reply is a state message */
	MEMBROKER_CMD_NOTIFY,		/* multicast event: a state message */
	MEMBROKER_CMD_GET_CONFIG,	/* do: reply is the configuration */
	MEMBROKER_CMD_SET_CONFIG,	/* do, admin: change configuration */
	MEMBROKER_CMD_GET_HISTORY,	/* dump: recent notifications */

	__MEMBROKER_CMD_MAX,
};
#define MEMBROKER_CMD_MAX (__MEMBROKER_CMD_MAX - 1)

/**
 * enum membroker_attr - generic netlink attributes
 */
enum membroker_attr {
	MEMBROKER_A_UNSPEC,
	MEMBROKER_A_STATE,		/* u32: enum membroker_state */
	MEMBROKER_A_FLAGS,		/* u32: MEMBROKER_FLAG_* */
	MEMBROKER_A_SEQ,		/* u64: notification sequence number */
	MEMBROKER_A_TIMESTAMP_NS,	/* u64: CLOCK_MONOTONIC of evaluation */
	MEMBROKER_A_AVAILABLE_BYTES,	/* u64: MemAvailable */
	MEMBROKER_A_TOTAL_BYTES,	/* u64: MemTotal */
	MEMBROKER_A_LOW_BYTES,		/* u64: low threshold (config: 0=auto) */
	MEMBROKER_A_HIGH_BYTES,		/* u64: high threshold (config: 0=auto) */
	MEMBROKER_A_COMMITTED_BYTES,	/* u64: Committed_AS */
	MEMBROKER_A_COMMIT_LIMIT_BYTES,	/* u64: CommitLimit */
	MEMBROKER_A_REASON,		/* u32: enum membroker_reason */
	MEMBROKER_A_PAD,		/* padding for 64-bit attributes */
	MEMBROKER_A_HYSTERESIS_BYTES,	/* u64 config: 0=auto */
	MEMBROKER_A_POLL_MIN_MS,	/* u32 config: shortest poll interval */
	MEMBROKER_A_POLL_MAX_MS,	/* u32 config: longest poll interval */
	MEMBROKER_A_RATELIMIT_MS,	/* u32 config: see "hysteresis" above */
	MEMBROKER_A_VIRTUAL_LOW_PERCENT, /* u32 config: 1..100 of CommitLimit */
	MEMBROKER_A_HISTORY_SIZE,	/* u32: entries in the history ring */

	__MEMBROKER_A_MAX,
};
#define MEMBROKER_A_MAX (__MEMBROKER_A_MAX - 1)

#endif /* _UAPI_LINUX_MEMBROKER_H */
