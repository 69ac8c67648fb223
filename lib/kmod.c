// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Client of the membroker kernel module (generic netlink family
 * "membroker", see include/uapi/linux/membroker.h).
 *
 * Two sockets: requests and their replies go over a blocking socket with
 * sequence checking, while notifications arrive on a separate non-blocking
 * socket subscribed to the "notify" group.  Keeping them apart means a
 * request never has to step over queued notifications, and a burst of
 * notifications that overruns the event socket (ENOBUFS) never costs a
 * request its reply.
 *
 * The module can be unloaded and loaded again under us.  Unregistering
 * the family drops every listener of its groups, and the new family may
 * get another id, so the event socket also listens to nlctrl's "notify"
 * group: CTRL_CMD_DELFAMILY for "membroker" is reported as -ENODEV,
 * CTRL_CMD_NEWFAMILY makes us resolve the family and join its group
 * again and is reported as -ENOBUFS (resynchronise: the new module's
 * sequence numbers start again at 1).  A request that finds the family id
 * unknown (-ENOENT, a reload we did not hear of) resolves it again and is
 * sent once more.
 *
 * Thread safety: a struct mb_kmod is used by one thread at a time (the
 * request socket's sequence numbers and the receive buffer are not
 * locked).  Distinct handles share nothing and may be used concurrently.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/netlink.h>

#include <netlink/netlink.h>
#include <netlink/attr.h>
#include <netlink/msg.h>
#include <netlink/socket.h>
#include <netlink/handlers.h>
#include <netlink/genl/genl.h>
#include <netlink/genl/ctrl.h>

#include "membroker.h"
#include "../include/uapi/linux/membroker.h"
#include "internal.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

/* Room for one datagram of the notify group: a state message is ~200 B. */
#define MB_KMOD_RBUF	16384

/* Event socket receive buffer: absorbs bursts before ENOBUFS. */
#define MB_KMOD_EVT_RCVBUF	(256 * 1024)

struct mb_kmod {
	struct nl_sock *req;	/* requests, blocking, seq-checked */
	struct nl_sock *evt;	/* "notify" group, non-blocking */
	int family;		/* generic netlink family id */
	int group;		/* multicast group id of "notify" */
	int ctrl_group;		/* nlctrl's "notify", 0 if not joined */
	bool subscribed;
	/* the datagram mb_kmod_recv() is consuming */
	size_t rlen;
	size_t rpos;
	union {
		struct nlmsghdr align;
		char buf[MB_KMOD_RBUF];
	} r;
};

/*
 * libnl reports its own NLE_* codes, not errno.  Map them back so callers
 * see -errno as everywhere else in the library; kernel errors never pass
 * through here (they are taken verbatim from the nlmsgerr).
 */
int mb_kmod_nlerr(int nlerr)
{
	switch (nlerr < 0 ? -nlerr : nlerr) {
	case NLE_SUCCESS:
		return 0;
	case NLE_INTR:
		return -EINTR;
	case NLE_BAD_SOCK:
		return -EBADF;
	case NLE_AGAIN:
		return -EAGAIN;
	case NLE_NOMEM:
		return -ENOMEM;
	case NLE_EXIST:
		return -EEXIST;
	case NLE_INVAL:
		return -EINVAL;
	case NLE_RANGE:
	case NLE_ATTRSIZE:
		return -ERANGE;
	case NLE_MSGSIZE:
	case NLE_MSG_TRUNC:
		return -EMSGSIZE;
	case NLE_OPNOTSUPP:
	case NLE_MSGTYPE_NOSUPPORT:
		return -EOPNOTSUPP;
	case NLE_AF_NOSUPPORT:
		return -EAFNOSUPPORT;
	case NLE_OBJ_NOTFOUND:
	case NLE_NOATTR:
		return -ENOENT;
	case NLE_NOADDR:
		return -EADDRNOTAVAIL;
	case NLE_BUSY:
		return -EBUSY;
	case NLE_PROTO_MISMATCH:
		return -EPROTONOSUPPORT;
	case NLE_NOACCESS:
		return -EACCES;
	case NLE_PERM:
	case NLE_IMMUTABLE:
		return -EPERM;
	case NLE_NODEV:
		return -ENODEV;
	case NLE_DUMP_INTR:
		return -EAGAIN;
	case NLE_MISSING_ATTR:
	case NLE_MSG_OVERFLOW:
	case NLE_MSG_TOOSHORT:
	case NLE_PARSE_ERR:
		return -EBADMSG;
	case NLE_SEQ_MISMATCH:
		return -EPROTO;
	default:
		return -EIO;
	}
}

static struct nla_policy mb_kmod_state_policy[MEMBROKER_A_MAX + 1] = {
	[MEMBROKER_A_STATE]		 = { .type = NLA_U32 },
	[MEMBROKER_A_FLAGS]		 = { .type = NLA_U32 },
	[MEMBROKER_A_SEQ]		 = { .type = NLA_U64 },
	[MEMBROKER_A_TIMESTAMP_NS]	 = { .type = NLA_U64 },
	[MEMBROKER_A_AVAILABLE_BYTES]	 = { .type = NLA_U64 },
	[MEMBROKER_A_TOTAL_BYTES]	 = { .type = NLA_U64 },
	[MEMBROKER_A_LOW_BYTES]		 = { .type = NLA_U64 },
	[MEMBROKER_A_HIGH_BYTES]	 = { .type = NLA_U64 },
	[MEMBROKER_A_COMMITTED_BYTES]	 = { .type = NLA_U64 },
	[MEMBROKER_A_COMMIT_LIMIT_BYTES] = { .type = NLA_U64 },
	[MEMBROKER_A_REASON]		 = { .type = NLA_U32 },
	[MEMBROKER_A_HYSTERESIS_BYTES]	 = { .type = NLA_U64 },
	[MEMBROKER_A_POLL_MIN_MS]	 = { .type = NLA_U32 },
	[MEMBROKER_A_POLL_MAX_MS]	 = { .type = NLA_U32 },
	[MEMBROKER_A_RATELIMIT_MS]	 = { .type = NLA_U32 },
	[MEMBROKER_A_VIRTUAL_LOW_PERCENT] = { .type = NLA_U32 },
	[MEMBROKER_A_HISTORY_SIZE]	 = { .type = NLA_U32 },
};

/* Every state message carries all of these (uapi "STATE MESSAGE"). */
static const int mb_kmod_state_attrs[] = {
	MEMBROKER_A_STATE, MEMBROKER_A_FLAGS, MEMBROKER_A_SEQ,
	MEMBROKER_A_TIMESTAMP_NS, MEMBROKER_A_AVAILABLE_BYTES,
	MEMBROKER_A_TOTAL_BYTES, MEMBROKER_A_LOW_BYTES,
	MEMBROKER_A_HIGH_BYTES, MEMBROKER_A_COMMITTED_BYTES,
	MEMBROKER_A_COMMIT_LIMIT_BYTES, MEMBROKER_A_REASON,
};

/* ... and every GET_CONFIG reply all of these. */
static const int mb_kmod_config_attrs[] = {
	MEMBROKER_A_LOW_BYTES, MEMBROKER_A_HIGH_BYTES,
	MEMBROKER_A_HYSTERESIS_BYTES, MEMBROKER_A_POLL_MIN_MS,
	MEMBROKER_A_POLL_MAX_MS, MEMBROKER_A_RATELIMIT_MS,
	MEMBROKER_A_VIRTUAL_LOW_PERCENT, MEMBROKER_A_HISTORY_SIZE,
};

static int mb_kmod_parse_attrs(struct nlmsghdr *nlh, struct nlattr **tb,
			       const int *need, size_t nneed)
{
	size_t i;
	int err;

	if (!nlh || nlh->nlmsg_len < NLMSG_LENGTH(GENL_HDRLEN))
		return -EBADMSG;
	err = genlmsg_parse(nlh, 0, tb, MEMBROKER_A_MAX, mb_kmod_state_policy);
	if (err < 0)
		return -EBADMSG;
	for (i = 0; i < nneed; i++)
		if (!tb[need[i]])
			return -EBADMSG;
	return 0;
}

/**
 * mb_kmod_parse_state() - decode a state message (GET_STATE reply, NOTIFY
 * or GET_HISTORY entry) into @out.
 * Return: 0, or -EBADMSG when an attribute is missing, malformed, or the
 * state is not one the ABI defines.
 */
int mb_kmod_parse_state(struct nlmsghdr *nlh, struct mb_notification *out)
{
	struct nlattr *tb[MEMBROKER_A_MAX + 1];
	uint32_t state;
	int err;

	if (!out)
		return -EINVAL;
	err = mb_kmod_parse_attrs(nlh, tb, mb_kmod_state_attrs,
				  sizeof(mb_kmod_state_attrs) /
				  sizeof(mb_kmod_state_attrs[0]));
	if (err < 0)
		return err;
	state = nla_get_u32(tb[MEMBROKER_A_STATE]);
	if (state < MEMBROKER_STATE_LOW || state > MEMBROKER_STATE_HIGH)
		return -EBADMSG;

	memset(out, 0, sizeof(*out));
	out->state = state;
	out->flags = nla_get_u32(tb[MEMBROKER_A_FLAGS]);
	out->seq = nla_get_u64(tb[MEMBROKER_A_SEQ]);
	/* The kernel's CLOCK_MONOTONIC is the library's clock too. */
	out->time_ns = nla_get_u64(tb[MEMBROKER_A_TIMESTAMP_NS]);
	out->available = nla_get_u64(tb[MEMBROKER_A_AVAILABLE_BYTES]);
	out->total = nla_get_u64(tb[MEMBROKER_A_TOTAL_BYTES]);
	out->low = nla_get_u64(tb[MEMBROKER_A_LOW_BYTES]);
	out->high = nla_get_u64(tb[MEMBROKER_A_HIGH_BYTES]);
	out->committed = nla_get_u64(tb[MEMBROKER_A_COMMITTED_BYTES]);
	out->commit_limit = nla_get_u64(tb[MEMBROKER_A_COMMIT_LIMIT_BYTES]);
	out->reason = nla_get_u32(tb[MEMBROKER_A_REASON]);
	out->source = MB_SOURCE_KMOD;
	out->process_rss = 0;
	return 0;
}

/**
 * mb_kmod_parse_config() - decode a GET_CONFIG reply into @out
 * Return: 0, or -EBADMSG when an attribute is missing or malformed.
 */
int mb_kmod_parse_config(struct nlmsghdr *nlh, struct mb_kmod_config *out)
{
	struct nlattr *tb[MEMBROKER_A_MAX + 1];
	int err;

	if (!out)
		return -EINVAL;
	err = mb_kmod_parse_attrs(nlh, tb, mb_kmod_config_attrs,
				  sizeof(mb_kmod_config_attrs) /
				  sizeof(mb_kmod_config_attrs[0]));
	if (err < 0)
		return err;

	memset(out, 0, sizeof(*out));
	out->low_bytes = nla_get_u64(tb[MEMBROKER_A_LOW_BYTES]);
	out->high_bytes = nla_get_u64(tb[MEMBROKER_A_HIGH_BYTES]);
	out->hysteresis_bytes = nla_get_u64(tb[MEMBROKER_A_HYSTERESIS_BYTES]);
	out->poll_min_ms = nla_get_u32(tb[MEMBROKER_A_POLL_MIN_MS]);
	out->poll_max_ms = nla_get_u32(tb[MEMBROKER_A_POLL_MAX_MS]);
	out->ratelimit_ms = nla_get_u32(tb[MEMBROKER_A_RATELIMIT_MS]);
	out->virtual_low_percent =
		nla_get_u32(tb[MEMBROKER_A_VIRTUAL_LOW_PERCENT]);
	out->history_size = nla_get_u32(tb[MEMBROKER_A_HISTORY_SIZE]);
	return 0;
}

/**
 * mb_kmod_extack_msg() - copy the extended ack message of an NLMSG_ERROR
 * @nlh:	the whole error message
 * Return: the length copied (0 when the kernel sent no message).
 *
 * The TLVs follow struct nlmsgerr and, unless the ack was capped, the
 * payload of the request it answers (see netlink_ack()).
 */
size_t mb_kmod_extack_msg(const struct nlmsghdr *nlh, char *buf, size_t len)
{
	const struct nlmsgerr *e;
	const struct nlattr *nla;
	size_t off, n;
	int rem;

	if (!buf || !len)
		return 0;
	buf[0] = '\0';
	if (!nlh || nlh->nlmsg_type != NLMSG_ERROR ||
	    !(nlh->nlmsg_flags & NLM_F_ACK_TLVS) ||
	    nlh->nlmsg_len < NLMSG_LENGTH(sizeof(*e)))
		return 0;
	e = NLMSG_DATA(nlh);
	off = sizeof(*e);
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED)) {
		if (e->msg.nlmsg_len < sizeof(struct nlmsghdr))
			return 0;
		off += e->msg.nlmsg_len - sizeof(struct nlmsghdr);
	}
	off = NLMSG_LENGTH(NLMSG_ALIGN(off));
	if (off >= nlh->nlmsg_len)
		return 0;

	rem = (int)(nlh->nlmsg_len - off);
	nla = (const struct nlattr *)((const char *)nlh + off);
	for (; nla_ok(nla, rem); nla = nla_next(nla, &rem)) {
		if (nla_type(nla) != NLMSGERR_ATTR_MSG)
			continue;
		/* NUL-terminated on the wire, but never trust that. */
		n = strnlen(nla_data(nla), (size_t)nla_len(nla));
		if (n >= len)
			n = len - 1;
		memcpy(buf, nla_data(nla), n);
		buf[n] = '\0';
		return n;
	}
	return 0;
}

/* One request in flight on the request socket. */
struct mb_kmod_req {
	struct mb_kmod *k;
	int (*fn)(struct nlmsghdr *nlh, void *arg); /* < 0 error, > 0 stop */
	void *arg;
	int err;
	bool done;
	bool stopped;	/* fn asked to stop: drain the rest of a dump */
	char *errmsg;
	size_t errlen;
};

static int mb_kmod_valid_cb(struct nl_msg *msg, void *arg)
{
	struct mb_kmod_req *req = arg;
	struct nlmsghdr *nlh = nlmsg_hdr(msg);
	int r;

	if (nlh->nlmsg_type != req->k->family || req->stopped || !req->fn)
		return NL_SKIP;
	r = req->fn(nlh, req->arg);
	if (r < 0)
		req->err = r;
	if (r != 0)
		req->stopped = true;
	return NL_OK;
}

static int mb_kmod_err_cb(struct sockaddr_nl *nla, struct nlmsgerr *e,
			  void *arg)
{
	struct mb_kmod_req *req = arg;
	const struct nlmsghdr *nlh;

	(void)nla;
	/* libnl hands us the payload; the header sits right before it. */
	nlh = (const struct nlmsghdr *)((const char *)e - NLMSG_HDRLEN);
	/* Kernel errors are negative errno; guard against a positive one. */
	req->err = e->error < 0 ? e->error : -e->error;
	if (req->errmsg)
		mb_kmod_extack_msg(nlh, req->errmsg, req->errlen);
	req->done = true;
	return NL_STOP;
}

static int mb_kmod_ack_cb(struct nl_msg *msg, void *arg)
{
	struct mb_kmod_req *req = arg;

	(void)msg;
	req->done = true;
	return NL_STOP;
}

static int mb_kmod_finish_cb(struct nl_msg *msg, void *arg)
{
	struct mb_kmod_req *req = arg;
	struct nlmsghdr *nlh = nlmsg_hdr(msg);
	int dump_err;

	/* NLMSG_DONE carries the dump's own status. */
	if (nlh->nlmsg_len >= NLMSG_LENGTH(sizeof(int))) {
		memcpy(&dump_err, NLMSG_DATA(nlh), sizeof(dump_err));
		if (dump_err < 0 && !req->err)
			req->err = dump_err;
	}
	req->done = true;
	return NL_STOP;
}

/*
 * A dump the kernel had to restart still delivers valid entries; the
 * history's seq numbers show the caller what was overwritten.
 */
static int mb_kmod_intr_cb(struct nl_msg *msg, void *arg)
{
	(void)msg;
	(void)arg;
	return NL_OK;
}

/* Send @msg (consumed) and run the reply through @req until it is done. */
static int mb_kmod_transact(struct mb_kmod *k, struct nl_msg *msg,
			    struct mb_kmod_req *req)
{
	struct nl_cb *cb;
	int err;

	req->k = k;
	cb = nl_cb_alloc(NL_CB_DEFAULT);
	if (!cb) {
		nlmsg_free(msg);
		return -ENOMEM;
	}
	nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, mb_kmod_valid_cb, req);
	nl_cb_set(cb, NL_CB_ACK, NL_CB_CUSTOM, mb_kmod_ack_cb, req);
	nl_cb_set(cb, NL_CB_FINISH, NL_CB_CUSTOM, mb_kmod_finish_cb, req);
	nl_cb_set(cb, NL_CB_DUMP_INTR, NL_CB_CUSTOM, mb_kmod_intr_cb, req);
	nl_cb_err(cb, NL_CB_CUSTOM, mb_kmod_err_cb, req);

	err = nl_send_auto(k->req, msg);
	nlmsg_free(msg);
	if (err < 0) {
		err = mb_kmod_nlerr(err);
		goto out;
	}
	while (!req->done) {
		err = nl_recvmsgs(k->req, cb);
		if (req->done)
			break;
		if (err < 0) {
			if (!req->err)
				req->err = mb_kmod_nlerr(err);
			break;
		}
	}
	err = req->err;
out:
	nl_cb_put(cb);
	return err;
}

static struct nl_msg *mb_kmod_msg(struct mb_kmod *k, uint8_t cmd, int flags)
{
	struct nl_msg *msg = nlmsg_alloc();

	if (!msg)
		return NULL;
	if (!genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, k->family, 0, flags,
			 cmd, MEMBROKER_FAMILY_VERSION)) {
		nlmsg_free(msg);
		return NULL;
	}
	return msg;
}

static int mb_kmod_resolve(struct nl_sock *sk, int *family, int *group)
{
	int err;

	err = genl_ctrl_resolve(sk, MEMBROKER_FAMILY_NAME);
	if (err < 0)
		return mb_kmod_nlerr(err);
	*family = err;
	err = genl_ctrl_resolve_grp(sk, MEMBROKER_FAMILY_NAME,
				    MEMBROKER_MCGRP_NOTIFY);
	if (err < 0)
		return mb_kmod_nlerr(err);
	*group = err;
	return 0;
}

/**
 * mb_kmod_refresh() - resolve the family again after a module reload
 * On a subscribed handle the "notify" group is joined again: removing
 * the family dropped every listener, and its id may have changed.
 * Return: 1 if the family or group id changed, 0 if not, -ENOENT when
 * the family is gone, -errno.
 */
int mb_kmod_refresh(struct mb_kmod *k)
{
	int family, group, err;
	bool changed;

	err = mb_kmod_resolve(k->req, &family, &group);
	if (err < 0)
		return err;
	changed = family != k->family || group != k->group;
	if (k->subscribed) {
		if (group != k->group)
			nl_socket_drop_membership(k->evt, k->group);
		err = nl_socket_add_membership(k->evt, group);
		if (err < 0)
			return mb_kmod_nlerr(err);
	}
	k->family = family;
	k->group = group;
	return changed;
}

/*
 * Build (@fill adds the attributes), send and run one request.  A family
 * id the kernel does not know (-ENOENT) means the module was reloaded,
 * or is gone: resolve it again and, if it is back, send once more.
 */
static int mb_kmod_call(struct mb_kmod *k, uint8_t cmd, int flags,
			int (*fill)(struct nl_msg *msg, const void *arg),
			const void *fill_arg, struct mb_kmod_req *req)
{
	struct mb_kmod_req first = *req;
	struct nl_msg *msg;
	int err, tries;

	for (tries = 0;; tries++) {
		*req = first;
		msg = mb_kmod_msg(k, cmd, flags);
		if (!msg)
			return -ENOMEM;
		err = fill ? fill(msg, fill_arg) : 0;
		if (err < 0) {
			nlmsg_free(msg);
			return mb_kmod_nlerr(err);
		}
		err = mb_kmod_transact(k, msg, req);
		if (err != -ENOENT || tries)
			return err;
		err = mb_kmod_refresh(k);
		if (err < 0)
			return err;
	}
}

static struct nl_sock *mb_kmod_sock(int *err)
{
	struct nl_sock *sk = nl_socket_alloc();
	int one = 1;

	if (!sk) {
		*err = -ENOMEM;
		return NULL;
	}
	*err = genl_connect(sk);
	if (*err < 0) {
		*err = mb_kmod_nlerr(*err);
		nl_socket_free(sk);
		return NULL;
	}
	/*
	 * The extack message is what tells a user why SET_CONFIG was
	 * refused; capping the ack keeps the echo of our request out of it.
	 * Both are best effort: old kernels simply send bare errors.
	 */
	setsockopt(nl_socket_get_fd(sk), SOL_NETLINK, NETLINK_EXT_ACK,
		   &one, sizeof(one));
	setsockopt(nl_socket_get_fd(sk), SOL_NETLINK, NETLINK_CAP_ACK,
		   &one, sizeof(one));
	return sk;
}

int mb_kmod_open(struct mb_kmod **out)
{
	struct mb_kmod *k;
	int err;

	if (!out)
		return -EINVAL;
	*out = NULL;
	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;

	k->req = mb_kmod_sock(&err);
	if (!k->req)
		goto err_free;
	/* We ask for acks where we want them, per request. */
	nl_socket_disable_auto_ack(k->req);

	err = mb_kmod_resolve(k->req, &k->family, &k->group);
	if (err < 0)
		goto err_req;

	k->evt = mb_kmod_sock(&err);
	if (!k->evt)
		goto err_req;
	nl_socket_disable_seq_check(k->evt);
	err = nl_socket_set_nonblocking(k->evt);
	if (err < 0) {
		err = mb_kmod_nlerr(err);
		goto err_evt;
	}
	err = nl_socket_set_buffer_size(k->evt, MB_KMOD_EVT_RCVBUF, 0);
	if (err < 0) {
		err = mb_kmod_nlerr(err);
		goto err_evt;
	}

	*out = k;
	return 0;

err_evt:
	nl_socket_free(k->evt);
err_req:
	nl_socket_free(k->req);
err_free:
	free(k);
	return err;
}

void mb_kmod_close(struct mb_kmod *k)
{
	if (!k)
		return;
	nl_socket_free(k->evt);
	nl_socket_free(k->req);
	free(k);
}

static int mb_kmod_state_fn(struct nlmsghdr *nlh, void *arg)
{
	int err = mb_kmod_parse_state(nlh, arg);

	return err < 0 ? err : 1;
}

int mb_kmod_get_state(struct mb_kmod *k, struct mb_notification *out)
{
	struct mb_kmod_req req = { .fn = mb_kmod_state_fn, .arg = out };
	int err;

	if (!k || !out)
		return -EINVAL;
	err = mb_kmod_call(k, MEMBROKER_CMD_GET_STATE, NLM_F_ACK, NULL, NULL,
			   &req);
	if (err < 0)
		return err;
	/* An ack without a reply would leave *out unset. */
	return req.stopped ? 0 : -EBADMSG;
}

static int mb_kmod_config_fn(struct nlmsghdr *nlh, void *arg)
{
	int err = mb_kmod_parse_config(nlh, arg);

	return err < 0 ? err : 1;
}

int mb_kmod_get_config(struct mb_kmod *k, struct mb_kmod_config *out)
{
	struct mb_kmod_req req = { .fn = mb_kmod_config_fn, .arg = out };
	int err;

	if (!k || !out)
		return -EINVAL;
	err = mb_kmod_call(k, MEMBROKER_CMD_GET_CONFIG, NLM_F_ACK, NULL, NULL,
			   &req);
	if (err < 0)
		return err;
	return req.stopped ? 0 : -EBADMSG;
}

#define MB_KCFG_ALL	(MB_KCFG_LOW | MB_KCFG_HIGH | MB_KCFG_HYSTERESIS | \
			 MB_KCFG_POLL_MIN | MB_KCFG_POLL_MAX | \
			 MB_KCFG_RATELIMIT | MB_KCFG_VIRTUAL_LOW)

static int mb_kmod_config_fill(struct nl_msg *msg, const void *arg)
{
	const struct mb_kmod_config *cfg = arg;
	uint32_t m = cfg->set_mask;
	int err = 0;

	if (m & MB_KCFG_LOW)
		err = err ?: nla_put_u64(msg, MEMBROKER_A_LOW_BYTES,
					 cfg->low_bytes);
	if (m & MB_KCFG_HIGH)
		err = err ?: nla_put_u64(msg, MEMBROKER_A_HIGH_BYTES,
					 cfg->high_bytes);
	if (m & MB_KCFG_HYSTERESIS)
		err = err ?: nla_put_u64(msg, MEMBROKER_A_HYSTERESIS_BYTES,
					 cfg->hysteresis_bytes);
	if (m & MB_KCFG_POLL_MIN)
		err = err ?: nla_put_u32(msg, MEMBROKER_A_POLL_MIN_MS,
					 cfg->poll_min_ms);
	if (m & MB_KCFG_POLL_MAX)
		err = err ?: nla_put_u32(msg, MEMBROKER_A_POLL_MAX_MS,
					 cfg->poll_max_ms);
	if (m & MB_KCFG_RATELIMIT)
		err = err ?: nla_put_u32(msg, MEMBROKER_A_RATELIMIT_MS,
					 cfg->ratelimit_ms);
	if (m & MB_KCFG_VIRTUAL_LOW)
		err = err ?: nla_put_u32(msg, MEMBROKER_A_VIRTUAL_LOW_PERCENT,
					 cfg->virtual_low_percent);
	return err;
}

int mb_kmod_set_config(struct mb_kmod *k, const struct mb_kmod_config *cfg,
		       char *errmsg, size_t errlen)
{
	struct mb_kmod_req req = { .errmsg = errmsg, .errlen = errlen };

	if (errmsg && errlen)
		errmsg[0] = '\0';
	if (!k || !cfg || (cfg->set_mask & ~MB_KCFG_ALL))
		return -EINVAL;
	if (!errlen)
		req.errmsg = NULL;
	return mb_kmod_call(k, MEMBROKER_CMD_SET_CONFIG, NLM_F_ACK,
			    mb_kmod_config_fill, cfg, &req);
}

struct mb_kmod_hist {
	mb_kmod_history_fn fn;
	void *arg;
};

static int mb_kmod_hist_fn(struct nlmsghdr *nlh, void *arg)
{
	struct mb_kmod_hist *h = arg;
	struct mb_notification n;
	int err;

	err = mb_kmod_parse_state(nlh, &n);
	if (err < 0)
		return err;
	return h->fn(&n, h->arg) ? 1 : 0;
}

int mb_kmod_get_history(struct mb_kmod *k, mb_kmod_history_fn fn, void *arg)
{
	struct mb_kmod_hist h = { .fn = fn, .arg = arg };
	struct mb_kmod_req req = { .fn = mb_kmod_hist_fn, .arg = &h };

	if (!k || !fn)
		return -EINVAL;
	return mb_kmod_call(k, MEMBROKER_CMD_GET_HISTORY, NLM_F_DUMP, NULL,
			    NULL, &req);
}

int mb_kmod_subscribe(struct mb_kmod *k)
{
	int err;

	if (!k)
		return -EINVAL;
	if (k->subscribed)
		return 0;
	err = nl_socket_add_membership(k->evt, k->group);
	if (err < 0)
		return mb_kmod_nlerr(err);
	k->subscribed = true;
	/*
	 * Hear of the module going away and coming back.  Best effort:
	 * without it a reload is still noticed at the next resync.
	 */
	err = genl_ctrl_resolve_grp(k->req, "nlctrl", "notify");
	if (err > 0 && nl_socket_add_membership(k->evt, err) == 0)
		k->ctrl_group = err;
	return 0;
}

int mb_kmod_get_fd(const struct mb_kmod *k)
{
	if (!k)
		return -EINVAL;
	return nl_socket_get_fd(k->evt);
}

/**
 * mb_kmod_parse_ctrl() - is this nlctrl event about our family?
 * Return: CTRL_CMD_NEWFAMILY or CTRL_CMD_DELFAMILY when it announces
 * that "membroker" was registered or removed, 0 for anything else,
 * -EBADMSG when it is malformed.
 */
int mb_kmod_parse_ctrl(struct nlmsghdr *nlh)
{
	struct nlattr *tb[CTRL_ATTR_MAX + 1];
	struct genlmsghdr *g;

	if (!nlh || nlh->nlmsg_type != GENL_ID_CTRL ||
	    nlh->nlmsg_len < NLMSG_LENGTH(GENL_HDRLEN))
		return -EBADMSG;
	g = nlmsg_data(nlh);
	if (g->cmd != CTRL_CMD_NEWFAMILY && g->cmd != CTRL_CMD_DELFAMILY)
		return 0;
	if (genlmsg_parse(nlh, 0, tb, CTRL_ATTR_MAX, NULL) < 0)
		return -EBADMSG;
	if (!tb[CTRL_ATTR_FAMILY_NAME] ||
	    nla_strcmp(tb[CTRL_ATTR_FAMILY_NAME], MEMBROKER_FAMILY_NAME))
		return 0;
	return g->cmd;
}

/* The family went away (-ENODEV) or came back (-ENOBUFS: resync). */
static int mb_kmod_ctrl_event(struct mb_kmod *k, struct nlmsghdr *nlh)
{
	switch (mb_kmod_parse_ctrl(nlh)) {
	case CTRL_CMD_DELFAMILY:
		return -ENODEV;
	case CTRL_CMD_NEWFAMILY:
		/* gone again before we could look: the DEL event follows */
		return mb_kmod_refresh(k) < 0 ? 0 : -ENOBUFS;
	default:
		return 0;
	}
}

/*
 * Next NOTIFY of the current datagram, if any.  Messages that are not
 * ours (or not NOTIFY) are skipped; a malformed one is reported once and
 * skipped so the caller can resynchronise and carry on.
 */
static int mb_kmod_next(struct mb_kmod *k, struct mb_notification *out)
{
	int r;

	while (k->rpos < k->rlen) {
		struct nlmsghdr *nlh = (void *)(k->r.buf + k->rpos);
		int left = (int)(k->rlen - k->rpos);
		struct genlmsghdr *g;

		if (!nlmsg_ok(nlh, left)) {
			k->rpos = k->rlen;
			return -EBADMSG;
		}
		k->rpos += NLMSG_ALIGN(nlh->nlmsg_len);
		if (k->rpos > k->rlen)
			k->rpos = k->rlen;
		if (nlh->nlmsg_type == GENL_ID_CTRL) {
			r = mb_kmod_ctrl_event(k, nlh);
			if (r)
				return r;
			continue;
		}
		if (nlh->nlmsg_type != k->family ||
		    nlh->nlmsg_len < NLMSG_LENGTH(GENL_HDRLEN))
			continue;
		g = nlmsg_data(nlh);
		if (g->cmd != MEMBROKER_CMD_NOTIFY)
			continue;
		return mb_kmod_parse_state(nlh, out) < 0 ? -EBADMSG : 1;
	}
	return 0;
}

int mb_kmod_recv(struct mb_kmod *k, struct mb_notification *out)
{
	struct sockaddr_nl from;
	socklen_t fromlen;
	ssize_t n;
	int r;

	if (!k || !out)
		return -EINVAL;
	if (!k->subscribed)
		return -ENOTCONN;
	for (;;) {
		r = mb_kmod_next(k, out);
		if (r != 0)
			return r;

		fromlen = sizeof(from);
		n = recvfrom(nl_socket_get_fd(k->evt), k->r.buf,
			     sizeof(k->r.buf), MSG_DONTWAIT | MSG_TRUNC,
			     (struct sockaddr *)&from, &fromlen);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -errno;
		}
		k->rlen = 0;
		k->rpos = 0;
		/* A datagram bigger than the buffer lost its tail. */
		if ((size_t)n > sizeof(k->r.buf))
			return -EMSGSIZE;
		/* Only the kernel speaks for the family. */
		if (fromlen != sizeof(from) || from.nl_pid != 0)
			continue;
		k->rlen = (size_t)n;
	}
}
