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
 *   MEMBROKER_STATE_LOW     little memory left.  Applications should give
 *                           memory back (shrink caches, trim heaps).
 *   MEMBROKER_STATE_STEADY  between the thresholds.  Hold steady.
 *   MEMBROKER_STATE_HIGH    plenty of memory.  Caches may grow.
 *
 * Independently of the state, the flag MEMBROKER_FLAG_VIRTUAL_LOW is set
 * while the kernel is about to refuse new commitments of address space:
 * under strict overcommit accounting, when committed address space is
 * near the commit limit (see STATE RULE).  The state and the
 * configuration are global: the same in every network namespace.
 *
 * STATE RULE
 * ==========
 *
 * With "available" = MemAvailable, the thresholds in force low < high and
 * the effective hysteresis h (all in bytes), an evaluation maps available
 * memory to a state given the previous state:
 *
 *   previous LOW  and available <  low + h   ->  LOW
 *   previous HIGH and available >  high - h  ->  HIGH
 *   otherwise:        available <  low       ->  LOW
 *                     available >  high      ->  HIGH
 *                     else                   ->  STEADY
 *
 * So LOW is entered below low and left only at low + h or more; HIGH is
 * entered above high and left only at high - h or less.  h is the
 * configured or automatic hysteresis, but at most (high - low) / 2, so the
 * two bands never overlap, and available memory that moves within a band
 * narrower than h changes the state at most once.  One evaluation may go
 * from LOW straight to HIGH or back.
 *
 * VIRTUAL_LOW follows vm.overcommit_memory:
 *
 *   2 (strict accounting)  set while Committed_AS * 100 >= CommitLimit *
 *                          virtual_low_percent: the kernel refuses mmap(),
 *                          brk(), fork() and the like that would take
 *                          Committed_AS past CommitLimit, so the flag
 *                          warns before those start failing;
 *   0 (heuristic), 1       never set.  CommitLimit is not enforced and
 *   (always overcommit)    Committed_AS far above it is normal; mode 0
 *                          refuses only a single request larger than RAM
 *                          and swap together, whatever is committed, and
 *                          mode 1 nothing, so no global figure predicts a
 *                          refusal.  Running short of memory itself is
 *                          what LOW reports.
 *
 * The mode is read with CommitLimit, at most once a second, so a change
 * of it shows at an evaluation a second or so later; until it could be
 * read once, the flag is not set.  No hysteresis; the rate limit below
 * applies.
 *
 * NOTIFICATIONS AND THEIR RATE
 * ============================
 *
 * Memory is evaluated when the kernel reclaims memory, when memory is
 * onlined or offlined, right before the OOM killer picks a victim, on
 * GET_STATE and SET_CONFIG, and by a poll whose interval shrinks from
 * poll_max_ms to poll_min_ms as available memory nears the low threshold.
 * Reclaim (kswapd or an allocating task reclaiming; not a write to
 * /proc/sys/vm/drop_caches) evaluates at once if the previous evaluation
 * started poll_min_ms ago or more, else poll_min_ms after it: while it
 * goes on, reclaim causes at most one evaluation per poll_min_ms.  The
 * other causes evaluate at once.
 *
 * The poll interval is the time the headroom above the low threshold
 * would last at 1 GiB/s, within [poll_min_ms, poll_max_ms] (in LOW:
 * ratelimit_ms within the same bounds).  Far from the threshold (the
 * headroom lasts poll_max_ms or more at that rate) the poll need not wake
 * a sleeping CPU and may come late, but a normal timer backs it: whatever
 * the CPUs do (idle, NO_HZ), an evaluation follows the previous one within
 * 2 * poll_max_ms, plus a timer tick and the time to schedule it.  Nearer,
 * and in LOW, the poll is never late that way.  So a consumer that takes
 * memory at R bytes/s is noticed below the low threshold before it is
 * R * 2 * poll_max_ms / 1000 bytes below it, and at most 1 GiB/s consumers
 * near the threshold much sooner.
 * An evaluation leads to a notification when, compared with the previous
 * notification, the state or the flags changed, a threshold in force
 * changed, or total memory moved by 1 MiB or more.  A notification is a
 * NOTIFY multicast, a history entry and a sysfs_notify() (see SYSFS); it
 * carries the next sequence number.
 *
 * An escalation (the state becomes more severe, HIGH < STEADY < LOW, or a
 * flag is set) is sent at once.  Any other notification is sent no sooner
 * than ratelimit_ms after the previous notification, by an evaluation
 * scheduled for that moment (reason MEMBROKER_REASON_DEFERRED), and only if
 * there is still a difference then; so a listener always ends up with the
 * latest state.  If an escalation and a relaxation coincide (available
 * memory recovers as committed memory crosses its limit, say), the
 * escalation is sent at once with the relaxing part held back at its
 * previous value, and the relaxation follows ratelimit_ms later.
 * SET_CONFIG's notification (reason MEMBROKER_REASON_CONFIG) is the only
 * exception: it is always sent, at once.
 *
 * Hence, apart from CONFIG notifications, and as measured by
 * MEMBROKER_A_TIMESTAMP_NS:
 *  - two notifications less than ratelimit_ms apart are always an
 *    escalation following another notification;
 *  - any interval of ratelimit_ms holds at most one non-escalating
 *    notification, and only as its first; every later one raises the
 *    state or sets a flag and lowers nothing, and there are only three
 *    such steps (HIGH -> STEADY -> LOW, VIRTUAL_LOW set), so the interval
 *    holds at most four notifications, and that only if memory sweeps
 *    across the whole range that fast;
 *  - a level hovering around one threshold causes at most one escalation
 *    and one relaxation per ratelimit_ms interval.
 * A ratelimit_ms of 0 removes the bound.
 *
 * THRESHOLDS
 * ==========
 *
 * Configured thresholds of 0 are automatic.  With total = MemTotal and
 * W = the sum of all zones' high watermarks (without watermark boost):
 *
 *   low  = min(max(clamp(total / 8, 32 MiB, 256 MiB), 4 * W), total / 4)
 *   high = min(3 * low, total / 2)
 *   h    = low / 8
 *
 * where low is the configured one if set (an automatic high follows a
 * configured low).  They are recomputed on every evaluation, so they
 * follow memory hotplug, virtio-mem and balloon drivers (changes of total
 * memory below 1 MiB are ignored).  Should total memory shrink so far that
 * the configured thresholds no longer give low < high, the automatic ones
 * are used until they fit again; GET_CONFIG still shows the configured
 * values, state messages show the thresholds in force.  The kernel log
 * says when this starts and ends, at most twice a minute.
 * Documentation/membroker.rst explains the numbers.
 *
 * TRANSPORT AND ERRORS
 * ====================
 *
 * Generic netlink family MEMBROKER_FAMILY_NAME, version
 * MEMBROKER_FAMILY_VERSION, with one multicast group MEMBROKER_MCGRP_NOTIFY.
 * Resolving the family autoloads the module where it is installed.  The
 * family works in every network namespace; NOTIFY reaches listeners in
 * all of them, each namespace independently of what happens to delivery
 * in another.  Subscribing and the GET commands need no privilege.
 *
 * With the module parameter init_netns_only=1 (read-only, set at load)
 * the family exists in the initial network namespace only, for hosts
 * that do not want containers to learn when host memory runs short:
 * elsewhere resolving it and every request fail with -ENOENT, as if the
 * module were not loaded, and no NOTIFY is sent there (not even to a
 * socket that subscribed by the numeric group id).  SYSFS below is not
 * affected by it.
 *
 * Requests are validated strictly.  A request is refused with -EINVAL and
 * an extended ack message (with NLMSGERR_ATTR_OFFS pointing at the
 * offending attribute where there is one), and changes nothing, if it
 * carries an attribute its command does not take (any, for the GET
 * commands), an attribute type above MEMBROKER_A_MAX, an attribute of the
 * wrong length or with NLA_F_NESTED, trailing bytes, or a bad value (see
 * SET_CONFIG); also if the genetlink header's reserved field is not 0 or
 * nlmsg_flags has bits other than NLM_F_REQUEST, NLM_F_ACK, NLM_F_ECHO
 * and NLM_F_DUMP.  Other errors: -EPERM for SET_CONFIG without privilege;
 * -EOPNOTSUPP for an unknown command, for NOTIFY sent as a request, for
 * GET_HISTORY without NLM_F_DUMP and for the other commands with it;
 * -ENOMEM under memory pressure.
 *
 * The checks come in this order (genetlink itself makes all but the last
 * one), and the first that fails answers:
 *  1. the header: a message shorter than the genetlink header (-EINVAL,
 *     no message), a reserved field that is not 0 or nlmsg_flags as above
 *     (-EINVAL with a message);
 *  2. the command: unknown, NOTIFY, GET_HISTORY without NLM_F_DUMP, or a
 *     do command with NLM_F_DUMP (-EOPNOTSUPP); kernels before 6.2 look
 *     the command up without its kind, and refuse the last case after
 *     step 3 (so an unprivileged SET_CONFIG with NLM_F_DUMP gets -EPERM
 *     on 6.1, -EOPNOTSUPP on 6.12 and 7.3);
 *  3. privilege: SET_CONFIG without it gets -EPERM;
 *  4. the attributes, then SET_CONFIG's values (-EINVAL).
 * So an unprivileged SET_CONFIG learns nothing about its attributes or
 * values, only whether its netlink and genetlink headers were well
 * formed.  A message without NLM_F_REQUEST is not a request: netlink
 * ignores it and, if it asked for an ack, acknowledges it with 0.
 *
 * COMMANDS
 * ========
 *
 * MEMBROKER_CMD_GET_STATE (do, any user)
 *	Request: no attributes.  The module evaluates memory at once and
 *	replies with a state message (below) of that evaluation, reason
 *	MEMBROKER_REASON_QUERY.  If the evaluation leads to a notification,
 *	it is sent before the reply.  The reply's SEQ is that of the latest
 *	notification; its other values can be ahead of that notification
 *	when the rate limit holds a relaxation back.
 *
 * MEMBROKER_CMD_NOTIFY (multicast on MEMBROKER_MCGRP_NOTIFY)
 *	A state message, sent as described under NOTIFICATIONS.  Its SEQ is
 *	one more than the previous notification's; a listener that sees a
 *	gap, or gets ENOBUFS on its socket, has missed notifications and
 *	should resynchronise with GET_STATE.  Notifications are built
 *	without ever waiting for memory to be reclaimed: a listener whose
 *	receive buffer is full, or for whom no copy could be allocated, gets
 *	ENOBUFS; a notification that could not be built at all shows as a
 *	gap.  What one listener does (never reading, a tiny SO_RCVBUF,
 *	NETLINK_BROADCAST_ERROR) costs no other listener anything.
 *
 * MEMBROKER_CMD_GET_CONFIG (do, any user)
 *	Request: no attributes.  Reply: the configuration as set (0 means
 *	automatic for the byte values), i.e. every attribute SET_CONFIG
 *	takes, plus MEMBROKER_A_HISTORY_SIZE.  The reply, without
 *	HISTORY_SIZE, sent back as SET_CONFIG leaves the configuration as
 *	it is.  The thresholds in force are in the state message.
 *
 * MEMBROKER_CMD_SET_CONFIG (do, CAP_NET_ADMIN in the initial user
 * namespace, for the process that opened the socket and for the sender)
 *	Request: at least one of these; absent ones keep their value.
 *
 *	  attribute            type  unit   range               default
 *	  LOW_BYTES            u64   bytes  0 (auto) or <= total  0
 *	  HIGH_BYTES           u64   bytes  0 (auto) or <= total  0
 *	  HYSTERESIS_BYTES     u64   bytes  0 (low/8) or <= total 0
 *	  POLL_MIN_MS          u32   ms     1..1000               5
 *	  POLL_MAX_MS          u32   ms     10..60000             1000
 *	  RATELIMIT_MS         u32   ms     0..10000              100
 *	  VIRTUAL_LOW_PERCENT  u32   %      1..100                90
 *
 *	(total = MemTotal now.)  MEMBROKER_A_PAD is accepted and ignored.
 *	The request is applied whole or not at all.  It is refused with
 *	-EINVAL and a message if it sets nothing, if it carries a state
 *	attribute or HISTORY_SIZE (read-only), if a value is outside its
 *	range, if POLL_MIN_MS > POLL_MAX_MS, or if the resulting low
 *	threshold (automatic or not) is not below the resulting high one;
 *	the checks apply to the configuration as it would be after the
 *	request, except that what depends on total memory (a byte value
 *	<= total, low below high) is checked only for the values the
 *	request changes (carries with a value other than the one in
 *	force).  So after total memory shrank under configured thresholds
 *	(hot-unplug, a balloon), a request that leaves them as they are (a
 *	new rate limit, a GET_CONFIG reply sent back) applies, and the
 *	fallback described under THRESHOLDS stays in force until they fit
 *	again or are changed.  A refused value is always one the request
 *	changes, and NLMSGERR_ATTR_OFFS points at its attribute; when low
 *	and high thresholds both change and do not fit together, at
 *	LOW_BYTES, unless it is 0 (automatic).  On success the new thresholds apply at once and a NOTIFY
 *	with reason MEMBROKER_REASON_CONFIG is sent (and recorded) before the
 *	acknowledgment, whether or not anything changed.  The module
 *	parameters of the same names set the initial configuration.
 *
 * MEMBROKER_CMD_GET_HISTORY (dump, any user)
 *	Request: NLM_F_DUMP, no attributes.  One state message per
 *	notification in an in-kernel ring of the last HISTORY_SIZE
 *	notifications (module parameter history_size, 256..65536, default
 *	512), oldest first, exactly as they were sent, including those sent
 *	while nobody listened, such as the first one (SEQ 1, reason
 *	MEMBROKER_REASON_LOAD, sent at module load).  Consecutive messages
 *	have consecutive sequence numbers, except where the ring was
 *	overwritten while the dump was in progress; notifications published
 *	after the dump began are left out, so it always ends.
 *
 * STATE MESSAGE
 * =============
 *
 * GET_STATE replies, NOTIFY events and GET_HISTORY entries all carry:
 *   STATE, FLAGS, REASON      what was decided, and why it was evaluated
 *   SEQ                       the notification's sequence number (from 1)
 *   TIMESTAMP_NS              CLOCK_MONOTONIC of the evaluation
 *   AVAILABLE_BYTES, TOTAL_BYTES
 *                             MemAvailable and MemTotal
 *   LOW_BYTES, HIGH_BYTES     the thresholds in force
 *   COMMITTED_BYTES, COMMIT_LIMIT_BYTES
 *                             Committed_AS and CommitLimit (the latter
 *                             reread at most once a second); CommitLimit
 *                             is enforced only under strict accounting
 * u64 attributes may be preceded by MEMBROKER_A_PAD for alignment; ignore
 * it.  New attributes may be added; ignore those you do not know.
 *
 * SYSFS
 * =====
 *
 * /sys/kernel/membroker/ holds the latest notification (not a newer
 * evaluation), readable by everyone, one value and a newline per file:
 *   state            "low", "steady" or "high"
 *   flags            MEMBROKER_FLAG_* bits, decimal
 *   seq              sequence number, decimal
 *   available_bytes, total_bytes, low_bytes, high_bytes
 *                    decimal
 * Each read shows the notification latest at that moment: reading "seq"
 * before and after the others tells whether they belong together.
 * "state" and "seq" are sysfs_notify()'d on every notification: read the
 * file, poll() it for POLLPRI, and read it again from offset 0 when
 * poll() returns; this works without netlink.
 *
 * /sys/kernel/membroker/evaluations/ counts evaluations since the module
 * was loaded, whether or not they led to a notification, one decimal
 * value and a newline per file: "total", and one file per reason named
 * after it in lower case ("load", "poll", "reclaim", "hotplug", "config",
 * "oom", "query", "deferred"), counting the evaluations that carried
 * that reason (the one their notification shows; a GET_STATE reply says
 * QUERY whatever its evaluation carried).  Reading them evaluates
 * nothing; they show what memory pressure costs the module.  New reasons
 * get new files.  The module parameters
 * (the initial configuration) are in /sys/module/membroker/parameters/,
 * read-only.
 */
#ifndef _UAPI_LINUX_MEMBROKER_H
#define _UAPI_LINUX_MEMBROKER_H

#define MEMBROKER_FAMILY_NAME		"membroker"
#define MEMBROKER_FAMILY_VERSION	1

#define MEMBROKER_MCGRP_NOTIFY		"notify"

/**
 * enum membroker_state - physical memory state (MEMBROKER_A_STATE)
 * @MEMBROKER_STATE_LOW: available memory fell below the low threshold
 *	and has not yet risen to low + hysteresis: give memory back
 * @MEMBROKER_STATE_STEADY: between the thresholds: hold steady
 * @MEMBROKER_STATE_HIGH: available memory rose above the high threshold
 *	and has not yet fallen to high - hysteresis: caches may grow
 *
 * See STATE RULE above.  0 is not a state: every state message carries
 * one of these.
 */
enum membroker_state {
	MEMBROKER_STATE_LOW = 1,	/* available < low threshold */
	MEMBROKER_STATE_STEADY = 2,	/* between the thresholds */
	MEMBROKER_STATE_HIGH = 3,	/* available > high threshold */
};

/* Bits of MEMBROKER_A_FLAGS */
#define MEMBROKER_FLAG_VIRTUAL_LOW	(1U << 0) /* commit limit near, mode 2 */

/**
 * enum membroker_reason - what caused an evaluation (MEMBROKER_A_REASON)
 * @MEMBROKER_REASON_UNSPEC: not sent
 * @MEMBROKER_REASON_LOAD: the first evaluation, at module load; the
 *	notification with SEQ 1
 * @MEMBROKER_REASON_POLL: the adaptive poll, poll_min_ms to poll_max_ms
 *	apart (up to 2 * poll_max_ms while far from the low threshold and
 *	the CPUs sleep), see NOTIFICATIONS AND THEIR RATE
 * @MEMBROKER_REASON_RECLAIM: the kernel is reclaiming memory (kswapd or
 *	an allocating task; not drop_caches), see NOTIFICATIONS AND THEIR RATE
 * @MEMBROKER_REASON_HOTPLUG: memory was onlined or offlined (also any
 *	evaluation while a memory block is going on- or offline)
 * @MEMBROKER_REASON_CONFIG: SET_CONFIG succeeded; this notification is
 *	always sent, at once
 * @MEMBROKER_REASON_OOM: the OOM killer is about to pick a victim
 * @MEMBROKER_REASON_QUERY: a GET_STATE request; its reply always carries
 *	this reason
 * @MEMBROKER_REASON_DEFERRED: a notification the rate limit held back,
 *	sent ratelimit_ms after the previous one
 * @__MEMBROKER_REASON_MAX: one past the last reason; use
 *	MEMBROKER_REASON_MAX
 *
 * When several causes are pending for one evaluation, the message names
 * the most important one; every evaluation has a cause and names one it
 * had.  New reasons may be added: treat an unknown one like POLL.
 */
enum membroker_reason {
	MEMBROKER_REASON_UNSPEC,
	MEMBROKER_REASON_LOAD,		/* first evaluation at module load */
	MEMBROKER_REASON_POLL,		/* periodic, adaptive-interval poll */
	MEMBROKER_REASON_RECLAIM,	/* the kernel is reclaiming */
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
 * @MEMBROKER_CMD_UNSPEC: not a command; refused with -EOPNOTSUPP
 * @MEMBROKER_CMD_GET_STATE: do, any user: evaluate now and reply with a
 *	state message
 * @MEMBROKER_CMD_NOTIFY: the multicast event on MEMBROKER_MCGRP_NOTIFY,
 *	a state message; refused as a request
 * @MEMBROKER_CMD_GET_CONFIG: do, any user: reply with the configuration
 *	as set
 * @MEMBROKER_CMD_SET_CONFIG: do, CAP_NET_ADMIN: change the configuration
 * @MEMBROKER_CMD_GET_HISTORY: dump, any user: the recent notifications,
 *	oldest first
 * @__MEMBROKER_CMD_MAX: one past the last command; use MEMBROKER_CMD_MAX
 *
 * See COMMANDS above for their attributes and errors.
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
 * @MEMBROKER_A_UNSPEC: not an attribute
 * @MEMBROKER_A_STATE: u32, enum membroker_state
 * @MEMBROKER_A_FLAGS: u32, MEMBROKER_FLAG_* bits
 * @MEMBROKER_A_SEQ: u64, the notification's sequence number, from 1
 * @MEMBROKER_A_TIMESTAMP_NS: u64, CLOCK_MONOTONIC of the evaluation, in ns
 * @MEMBROKER_A_AVAILABLE_BYTES: u64, MemAvailable
 * @MEMBROKER_A_TOTAL_BYTES: u64, MemTotal
 * @MEMBROKER_A_LOW_BYTES: u64, the low threshold: in force in a state
 *	message, as set (0: automatic) in the configuration
 * @MEMBROKER_A_HIGH_BYTES: u64, the high threshold, likewise
 * @MEMBROKER_A_COMMITTED_BYTES: u64, Committed_AS
 * @MEMBROKER_A_COMMIT_LIMIT_BYTES: u64, CommitLimit
 * @MEMBROKER_A_REASON: u32, enum membroker_reason
 * @MEMBROKER_A_PAD: padding that aligns the u64 attributes; ignore it
 * @MEMBROKER_A_HYSTERESIS_BYTES: u64, configuration: the hysteresis
 *	(0: automatic, low / 8)
 * @MEMBROKER_A_POLL_MIN_MS: u32, configuration: the shortest poll
 *	interval, used near the low threshold
 * @MEMBROKER_A_POLL_MAX_MS: u32, configuration: the longest poll
 *	interval, used far from it; evaluations are never more than twice
 *	this apart
 * @MEMBROKER_A_RATELIMIT_MS: u32, configuration: the least spacing of
 *	notifications that escalate nothing (see NOTIFICATIONS above)
 * @MEMBROKER_A_VIRTUAL_LOW_PERCENT: u32, configuration: under strict
 *	overcommit accounting, VIRTUAL_LOW is set while Committed_AS is at
 *	least this percentage of CommitLimit (see STATE RULE)
 * @MEMBROKER_A_HISTORY_SIZE: u32, read only: entries in the history ring
 * @__MEMBROKER_A_MAX: one past the last attribute; use MEMBROKER_A_MAX
 *
 * STATE MESSAGE and COMMANDS above say which message carries which.
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
	MEMBROKER_A_RATELIMIT_MS,	/* u32 config: see NOTIFICATIONS above */
	MEMBROKER_A_VIRTUAL_LOW_PERCENT, /* u32 config: 1..100 of CommitLimit */
	MEMBROKER_A_HISTORY_SIZE,	/* u32: entries in the history ring */

	__MEMBROKER_A_MAX,
};
#define MEMBROKER_A_MAX (__MEMBROKER_A_MAX - 1)

#endif /* _UAPI_LINUX_MEMBROKER_H */
