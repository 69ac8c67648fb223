/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * membrokerd's control socket: the protocol, for the daemon and its
 * clients (membrokerctl).
 *
 * TRANSPORT
 * =========
 *
 * An AF_UNIX SOCK_SEQPACKET socket, /run/membroker/control.sock by
 * default, mode 0666: anyone may connect.  The daemon learns who the peer
 * is from SO_PEERCRED when it accepts the connection; requests that need
 * privilege are checked against that identity, never against anything the
 * peer says.  Seqpacket keeps message boundaries, so every message is one
 * packet of at most MBD_MSG_MAX bytes: a header, then MBD_MSG.len bytes
 * of payload.  All integers are in the host's byte order (the socket never
 * leaves the machine).
 *
 * A client sends requests, each with an id of its choosing; the daemon
 * answers every request with one reply or a series of them (all but the
 * last with MBD_F_MORE set), in the order the requests came, each with
 * the request's id and type | MBD_MSG_REPLY.  A reply's status is 0 or a
 * negative errno:
 *   -EPROTONOSUPPORT  the request's version is not one the daemon speaks;
 *                     the reply's version field says which one it does
 *   -EOPNOTSUPP       an unknown type, or one this daemon does not offer
 *                     (MBD_MSG_FAKE_PUSH without --source=fake)
 *   -EPERM            the peer may not do that
 *   -EINVAL           a payload the type does not take
 *   -EBADMSG          not a message (short, bad magic, len not matching
 *                     the packet); the daemon closes the connection after
 *                     this reply
 * A client that does not read its replies is disconnected rather than
 * allowed to hold the daemon up.
 *
 * VERSIONS
 * ========
 *
 * MBD_VERSION is 1.  A later daemon may speak several versions and
 * answers each request in the version it came in; new message types and
 * new fields at the end of a payload do not need a new version (a peer
 * ignores payload bytes past what it knows), a changed meaning does.
 * Start with MBD_MSG_HELLO to learn what the daemon speaks.
 *
 * MESSAGES (version 1)
 * ====================
 *
 * MBD_MSG_HELLO	request: no payload.  Reply: struct mbd_hello.
 * MBD_MSG_METRICS	request: no payload.  Reply: the metrics in the
 *			Prometheus text format, the same text the daemon
 *			writes for node_exporter, in as many packets as it
 *			takes (MBD_F_MORE).
 * MBD_MSG_FAKE_PUSH	tests only: request: struct mbd_fake_push, a reading
 *			for the daemon's fake source.  Only a daemon started
 *			with --source=fake offers it (else -EOPNOTSUPP), and
 *			only to a peer with the daemon's own uid (else
 *			-EPERM).  Reply: no payload, once the reading is
 *			queued.
 *
 * THE SYSTEM BROKER (version 1, message types 4..9)
 * =================================================
 *
 * A process using libmembroker registers its brokers ("pools") and their
 * clerks, so that the daemon can decide for the whole machine: on LOW it
 * asks the cheapest clerks of all processes for what is short, and on
 * HIGH lets those it took from grow back, the most expensive first
 * (membrokerd(8), SYSTEM BROKER).  Ids of pools and clerks are chosen by
 * the client and mean something only on its own connection: the daemon
 * sends a request about a clerk only to the connection that registered
 * it, so a process can only ever be asked about its own clerks.
 *
 * Here the daemon sends requests too (MBD_MSG_POLL, MBD_MSG_ASK), each
 * with an id of its own choosing, and the client answers each with one
 * reply of the same type | MBD_MSG_REPLY and that id.  A client that
 * does not answer in time is passed over for the step at hand; one that
 * goes on sending what the daemon did not ask is disconnected.
 *
 * MBD_MSG_REGISTER	request: struct mbd_register.  Makes the connection
 *			a system broker client.  Reply: struct
 *			mbd_registered.
 * MBD_MSG_REPORT	request, from a registered client: records (below),
 *			what changed since its previous report.  Reply: no
 *			payload; -EINVAL for a malformed record (the records
 *			before it are taken), -ENOSPC past MBD_MAX_POOLS or
 *			MBD_MAX_CLERKS, -EPERM before MBD_MSG_REGISTER.
 * MBD_MSG_POLL		daemon -> client request: no payload.  Reply: a
 *			POOL record and CLERK records for everything the
 *			client has, with the bytes held now (GONE records
 *			for what it reported before and no longer has), in
 *			as many packets as it takes (MBD_F_MORE).
 * MBD_MSG_ASK		daemon -> client request: struct mbd_ask and its
 *			items.  Reply: struct mbd_ask and one struct
 *			mbd_ask_result per item, in the same order.
 * MBD_MSG_CLERKS	request: no payload.  Reply: struct mbd_list and
 *			struct mbd_clerk_row items, every registered clerk,
 *			in as many packets as it takes (MBD_F_MORE).  A
 *			peer that is not root sees the names, pids and pools
 *			of its own uid's clerks only; the others' are summed
 *			up, one row per uid and priority, with
 *			MBD_ROW_HIDDEN set and empty names.
 * MBD_MSG_DECISIONS	request: struct mbd_decisions_req.  Reply: struct
 *			mbd_list and struct mbd_decision items from the
 *			daemon's ring of decisions, oldest first, filtered
 *			as MBD_MSG_CLERKS is (MBD_F_MORE).
 *
 * Records (MBD_MSG_REPORT, MBD_MSG_POLL replies) follow one another, each
 * starting with struct mbd_rec; its len (a multiple of 8, header
 * included) says where the next one starts, so that fields added at the
 * end of a record are skipped by a peer that does not know them:
 *   MBD_REC_POOL	struct mbd_rec_pool: a pool, new or changed
 *   MBD_REC_CLERK	struct mbd_rec_clerk: a clerk, new or changed
 *   MBD_REC_BYTES	struct mbd_rec_bytes: what a clerk holds now
 *   MBD_REC_POOL_GONE	header only: the pool and its clerks are gone
 *   MBD_REC_CLERK_GONE	header only: the clerk is gone
 * Arrays (struct mbd_ask, struct mbd_list) give their items' size, which
 * a later version may enlarge: a reader takes the fields it knows.
 */
#ifndef MEMBROKERD_PROTOCOL_H
#define MEMBROKERD_PROTOCOL_H

#include <stdint.h>

#define MBD_CONTROL_SOCKET	"/run/membroker/control.sock"

#define MBD_MAGIC		0x3164626dU	/* "mbd1" in memory order */
#define MBD_VERSION		1
#define MBD_MSG_MAX		65536		/* bytes, header included */

/* Bits of struct mbd_msg.flags */
#define MBD_F_MORE		(1U << 0)	/* more replies to this request */

/* struct mbd_msg.type; a reply has MBD_MSG_REPLY set */
enum mbd_msg_type {
	MBD_MSG_HELLO = 1,
	MBD_MSG_METRICS = 2,
	MBD_MSG_FAKE_PUSH = 3,
	MBD_MSG_REGISTER = 4,
	MBD_MSG_REPORT = 5,
	MBD_MSG_POLL = 6,
	MBD_MSG_ASK = 7,
	MBD_MSG_CLERKS = 8,
	MBD_MSG_DECISIONS = 9,
};

/* What one connection may register */
#define MBD_MAX_POOLS		256
#define MBD_MAX_CLERKS		1024

#define MBD_MSG_REPLY		0x8000

/**
 * struct mbd_msg - the header of every message, either way
 * @magic: MBD_MAGIC
 * @version: MBD_VERSION of the request; of the daemon in a
 *	-EPROTONOSUPPORT reply
 * @type: enum mbd_msg_type, | MBD_MSG_REPLY in replies
 * @id: chosen by the client, echoed in every reply to the request
 * @flags: MBD_F_*
 * @status: replies: 0 or -errno; requests: 0
 * @len: bytes of payload after the header
 */
struct mbd_msg {
	uint32_t magic;
	uint16_t version;
	uint16_t type;
	uint32_t id;
	uint32_t flags;
	int32_t status;
	uint32_t len;
};

/**
 * struct mbd_hello - the reply to MBD_MSG_HELLO
 * @version_min: the oldest protocol version the daemon speaks
 * @version_max: the newest
 * @pid: the daemon's process id
 * @source: enum mb_source_type of its monitor
 */
struct mbd_hello {
	uint16_t version_min;
	uint16_t version_max;
	uint32_t pid;
	uint32_t source;
};

/**
 * struct mbd_fake_push - a reading for the fake source (tests only)
 * @time_ns: CLOCK_MONOTONIC of the reading; 0: when the daemon queues it
 * @state: enum mb_state, 1..3
 * @flags: MB_FLAG_*
 * @reason: enum membroker_reason, as the module would say it
 * @available: bytes available
 * @total: bytes total
 * @low: low threshold
 * @high: high threshold
 */
struct mbd_fake_push {
	uint64_t time_ns;
	uint32_t state;
	uint32_t flags;
	uint32_t reason;
	uint32_t pad;
	uint64_t available;
	uint64_t total;
	uint64_t low;
	uint64_t high;
};

/**
 * struct mbd_register - MBD_MSG_REGISTER
 * @comm: the program's name, NUL-terminated (for people; the daemon
 *	takes pid and uid from SO_PEERCRED)
 * @flags: 0
 * @reserved: 0
 */
struct mbd_register {
	char comm[16];
	uint32_t flags;
	uint32_t reserved;
};

/**
 * struct mbd_registered - the reply to MBD_MSG_REGISTER
 * @client: the daemon's number for this connection (for people)
 * @silence_ms: while its own monitor says LOW, a client leaves shrinking
 *	to the daemon; if it hears nothing from the daemon for this long
 *	meanwhile, it shrinks by itself again
 * @report_ms: the least spacing of MBD_MSG_REPORT the daemon wants
 * @reserved: 0
 */
struct mbd_registered {
	uint32_t client;
	uint32_t silence_ms;
	uint32_t report_ms;
	uint32_t reserved;
};

/* struct mbd_rec.kind */
enum mbd_rec_kind {
	MBD_REC_POOL = 1,
	MBD_REC_CLERK = 2,
	MBD_REC_BYTES = 3,
	MBD_REC_POOL_GONE = 4,
	MBD_REC_CLERK_GONE = 5,
};

/**
 * struct mbd_rec - the header of every record
 * @kind: enum mbd_rec_kind
 * @len: bytes of the record, header included, a multiple of 8
 * @id: the pool's or clerk's id, chosen by the client, not 0
 */
struct mbd_rec {
	uint16_t kind;
	uint16_t len;
	uint32_t id;
};

/**
 * struct mbd_rec_pool - a pool (a broker of the client)
 * @h: kind MBD_REC_POOL
 * @min_bytes: the broker's min_bytes: never asked below it
 * @max_bytes: its max_bytes (0: none)
 * @name: its name, NUL-terminated
 */
struct mbd_rec_pool {
	struct mbd_rec h;
	uint64_t min_bytes;
	uint64_t max_bytes;
	char name[32];
};

/* Bits of struct mbd_rec_clerk.flags */
#define MBD_CLERK_SHRINKABLE	(1U << 0)	/* it has a shrink callback */

/**
 * struct mbd_rec_clerk - a clerk of a pool
 * @h: kind MBD_REC_CLERK
 * @pool: the id of its pool, registered before it
 * @priority: 0 (cheap to drop) .. 100 (expensive)
 * @flags: MBD_CLERK_*
 * @reserved: 0
 * @bytes: what it holds
 * @target: what its broker allows it now (UINT64_MAX: no limit)
 * @name: its name, NUL-terminated
 */
struct mbd_rec_clerk {
	struct mbd_rec h;
	uint32_t pool;
	uint32_t priority;
	uint32_t flags;
	uint32_t reserved;
	uint64_t bytes;
	uint64_t target;
	char name[64];
};

/**
 * struct mbd_rec_bytes - what a clerk holds now
 * @h: kind MBD_REC_BYTES
 * @bytes: the bytes
 */
struct mbd_rec_bytes {
	struct mbd_rec h;
	uint64_t bytes;
};

/**
 * struct mbd_ask - the head of MBD_MSG_ASK and of its reply
 * @item_size: sizeof(struct mbd_ask_item) in the request,
 *	sizeof(struct mbd_ask_result) in the reply
 * @count: items that follow
 * @state: enum mb_state of the reading that led to it
 * @step: the daemon's step number (for the records)
 */
struct mbd_ask {
	uint16_t item_size;
	uint16_t count;
	uint32_t state;
	uint64_t step;
};

/**
 * struct mbd_ask_item - one clerk's part of a step
 * @clerk: its id
 * @reserved: 0
 * @ask: give back at least this much (whole entries of a cache, so a
 *	little more), but no more than @at_most; 0: only set @cap
 * @at_most: see @ask; the pool's min_bytes holds whatever it says
 * @cap: with @ask 0, the most the clerk may hold from now on
 *	(UINT64_MAX: no limit from the daemon).  After a shrink the clerk is
 *	held at what it kept.
 */
struct mbd_ask_item {
	uint32_t clerk;
	uint32_t reserved;
	uint64_t ask;
	uint64_t at_most;
	uint64_t cap;
};

/**
 * struct mbd_ask_result - what came of an item
 * @clerk: its id
 * @status: 0, or -errno: -ENOENT (no such clerk), -EBUSY (being shrunk
 *	already), or what its shrink callback returned
 * @freed: the bytes it gave back
 * @bytes: the bytes it holds now
 * @cap: the most it may hold now, by the daemon's word (UINT64_MAX: no
 *	limit)
 */
struct mbd_ask_result {
	uint32_t clerk;
	int32_t status;
	uint64_t freed;
	uint64_t bytes;
	uint64_t cap;
};

/**
 * struct mbd_list - the head of a MBD_MSG_CLERKS or DECISIONS reply packet
 * @item_size: the size of each item
 * @count: items in this packet
 * @reserved: 0
 */
struct mbd_list {
	uint16_t item_size;
	uint16_t count;
	uint32_t reserved;
};

/* Bits of struct mbd_clerk_row.flags */
#define MBD_ROW_HIDDEN		(1U << 0)	/* another user's, summed up */
#define MBD_ROW_SHRINKABLE	(1U << 1)
#define MBD_ROW_SKIPPED		(1U << 2)	/* its client did not answer */

/**
 * struct mbd_clerk_row - one registered clerk (sys.dm_os_memory_clerks)
 * @pid: its process (0 when hidden)
 * @uid: the process's user
 * @client: the daemon's number for the connection (0 when hidden)
 * @priority: 0..100
 * @flags: MBD_ROW_*
 * @clerks: 1, or how many clerks a hidden row sums up
 * @bytes: what it holds (as last reported)
 * @target: what its broker allows it
 * @cap: the most the daemon lets it hold (UINT64_MAX: no limit)
 * @pool_min: its pool's min_bytes
 * @pool_max: its pool's max_bytes (0: none)
 * @asked: bytes the daemon asked of it, in total
 * @freed: bytes it gave back when asked, in total
 * @taken: bytes taken and not yet let grow back
 * @comm: the program's name
 * @pool: the pool's name
 * @name: the clerk's name
 */
struct mbd_clerk_row {
	uint32_t pid;
	uint32_t uid;
	uint32_t client;
	uint32_t priority;
	uint32_t flags;
	uint32_t clerks;
	uint64_t bytes;
	uint64_t target;
	uint64_t cap;
	uint64_t pool_min;
	uint64_t pool_max;
	uint64_t asked;
	uint64_t freed;
	uint64_t taken;
	char comm[16];
	char pool[32];
	char name[64];
};

/**
 * struct mbd_decisions_req - MBD_MSG_DECISIONS
 * @from_seq: the first record wanted (0: the oldest the ring holds)
 */
struct mbd_decisions_req {
	uint64_t from_seq;
};

/* struct mbd_decision.kind */
enum mbd_decision_kind {
	MBD_DECISION_SHRINK = 1,	/* asked to give back */
	MBD_DECISION_GROW = 2,		/* let grow back */
};

/* struct mbd_decision.outcome */
enum mbd_outcome {
	MBD_OUTCOME_DONE = 0,		/* answered */
	MBD_OUTCOME_SKIPPED = 1,	/* no answer in time: next in order */
	MBD_OUTCOME_GONE = 2,		/* the client went away */
	MBD_OUTCOME_FAILED = 3,		/* answered with an error */
};

/**
 * struct mbd_decision - one clerk's part of one step of the system broker
 * @seq: its number in the daemon's ring
 * @time_ns: CLOCK_MONOTONIC when it was asked
 * @step: the step it belongs to
 * @kind: enum mbd_decision_kind
 * @outcome: enum mbd_outcome
 * @pid: the process asked (0 when hidden)
 * @uid: its user
 * @priority: the clerk's priority
 * @status: the clerk's status in the answer (0 or -errno)
 * @shortfall: for a shrink, what the step was to cover; for a grow, the
 *	room it shared out
 * @asked: what the clerk was asked to give back (shrink)
 * @freed: what it gave back
 * @cap: the most it may hold afterwards (UINT64_MAX: no limit)
 * @comm: the program's name
 * @pool: the pool's name (empty when hidden)
 * @clerk: the clerk's name (empty when hidden)
 */
struct mbd_decision {
	uint64_t seq;
	uint64_t time_ns;
	uint64_t step;
	uint32_t kind;
	uint32_t outcome;
	uint32_t pid;
	uint32_t uid;
	uint32_t priority;
	int32_t status;
	uint64_t shortfall;
	uint64_t asked;
	uint64_t freed;
	uint64_t cap;
	char comm[16];
	char pool[32];
	char clerk[64];
};

#endif /* MEMBROKERD_PROTOCOL_H */
