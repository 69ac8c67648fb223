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
};

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

#endif /* MEMBROKERD_PROTOCOL_H */
