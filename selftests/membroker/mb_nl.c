// SPDX-License-Identifier: GPL-2.0
/*
 * A minimal generic netlink client for the membroker selftests.  It talks
 * to the kernel exactly as the uapi header describes, receives raw, and
 * keeps the kernel's errno and extended ack text for the test to check.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <netlink/genl/genl.h>

#include "mb_nl.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

/* A request the kernel does not answer within this is a failure. */
#define MB_REPLY_TIMEOUT_MS	10000

/* A connected socket that knows no family yet: nl->family is -1. */
int mb_nl_connect(struct mb_nl *nl)
{
	int one = 1, err;

	memset(nl, 0, sizeof(*nl));
	nl->fd = -1;
	nl->family = -1;
	nl->group = -1;
	nl->extack_offs = -1;
	nl->buf = malloc(MB_RECV_BUF);
	nl->sk = nl_socket_alloc();
	if (!nl->buf || !nl->sk) {
		err = -ENOMEM;
		goto err_close;
	}
	err = genl_connect(nl->sk);
	if (err) {
		err = -EIO;
		goto err_close;
	}
	nl->fd = nl_socket_get_fd(nl->sk);
	/* Ask for the kernel's error message with every NLMSG_ERROR. */
	if (setsockopt(nl->fd, SOL_NETLINK, NETLINK_EXT_ACK, &one,
		       sizeof(one))) {
		err = -errno;
		goto err_close;
	}
	return 0;

err_close:
	mb_nl_close(nl);
	return err;
}

int mb_nl_open(struct mb_nl *nl)
{
	int err;

	err = mb_nl_connect(nl);
	if (err)
		return err;
	err = mb_nl_resolve(nl);
	if (err)
		mb_nl_close(nl);
	return err;
}

void mb_nl_close(struct mb_nl *nl)
{
	if (nl->sk)
		nl_socket_free(nl->sk);
	free(nl->buf);
	nl->sk = NULL;
	nl->buf = NULL;
	nl->fd = -1;
}

/* (Re)resolve family and group: ids change when the module reloads. */
int mb_nl_resolve(struct mb_nl *nl)
{
	struct mb_family f;
	int i, err;

	err = mb_nl_get_family(nl, MEMBROKER_FAMILY_NAME, &f);
	if (err)
		return err;
	for (i = 0; i < f.ngroups; i++) {
		if (!strcmp(f.group[i], MEMBROKER_MCGRP_NOTIFY)) {
			nl->family = f.id;
			nl->group = f.group_id[i];
			return 0;
		}
	}
	return -ENOENT;
}

int mb_nl_subscribe(struct mb_nl *nl)
{
	if (setsockopt(nl->fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP,
		       &nl->group, sizeof(nl->group)))
		return -errno;
	return 0;
}

struct nl_msg *mb_nl_msg(struct mb_nl *nl, uint8_t cmd, int flags)
{
	struct nl_msg *msg = nlmsg_alloc();

	if (!msg)
		return NULL;
	if (!genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, nl->family, 0,
			 flags, cmd, MEMBROKER_FAMILY_VERSION)) {
		nlmsg_free(msg);
		return NULL;
	}
	return msg;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Receive one datagram within timeout_ms; returns its length or -errno. */
static int recv_one(struct mb_nl *nl, int timeout_ms)
{
	struct pollfd pfd = { .fd = nl->fd, .events = POLLIN };
	struct iovec iov = { .iov_base = nl->buf, .iov_len = MB_RECV_BUF };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;
	int ret;

	ret = poll(&pfd, 1, timeout_ms);
	if (ret < 0)
		return -errno;
	if (ret == 0)
		return -ETIMEDOUT;
	n = recvmsg(nl->fd, &mh, 0);
	if (n < 0)
		return -errno;
	if (mh.msg_flags & MSG_TRUNC)
		return -EMSGSIZE;
	return n;
}

/*
 * Keep the text of NLMSGERR_ATTR_MSG and the offset in NLMSGERR_ATTR_OFFS,
 * if the kernel sent them.
 */
static void save_extack(struct mb_nl *nl, const struct nlmsghdr *nlh)
{
	const struct nlmsgerr *e = NLMSG_DATA(nlh);
	const struct nlattr *a;
	uint32_t offs;
	size_t off;
	int rem;

	nl->extack[0] = '\0';
	nl->extack_offs = -1;
	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return;
	off = sizeof(*e);
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		off += e->msg.nlmsg_len - NLMSG_HDRLEN;
	off = NLMSG_HDRLEN + NLMSG_ALIGN(off);
	if (off >= nlh->nlmsg_len)
		return;
	a = (const struct nlattr *)((const char *)nlh + off);
	rem = nlh->nlmsg_len - off;
	for (; nla_ok(a, rem); a = nla_next(a, &rem)) {
		if (nla_type(a) == NLMSGERR_ATTR_MSG && nla_len(a) >= 1) {
			snprintf(nl->extack, sizeof(nl->extack), "%.*s",
				 nla_len(a), (const char *)nla_data(a));
		} else if (nla_type(a) == NLMSGERR_ATTR_OFFS &&
			   nla_len(a) == sizeof(offs)) {
			memcpy(&offs, nla_data(a), sizeof(offs));
			nl->extack_offs = (int)offs;
		}
	}
}

/*
 * Walk the replies to request @seq until an ack/error or NLMSG_DONE;
 * every data message goes to @parse.
 */
static int recv_replies(struct mb_nl *nl, uint32_t seq, int type,
			void *reply,
			int (*parse)(const struct nlmsghdr *nlh, void *reply))
{
	int64_t deadline = now_ms() + MB_REPLY_TIMEOUT_MS;

	for (;;) {
		const struct nlmsghdr *nlh;
		int len, err;

		len = recv_one(nl, (int)(deadline - now_ms() > 0 ?
					 deadline - now_ms() : 0));
		if (len < 0)
			return len;
		for (nlh = (const struct nlmsghdr *)nl->buf;
		     NLMSG_OK(nlh, (unsigned int)len);
		     nlh = NLMSG_NEXT(nlh, len)) {
			if (nlh->nlmsg_seq != seq)
				continue;
			if (nlh->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(nlh);

				save_extack(nl, nlh);
				return e->error;
			}
			if (nlh->nlmsg_type == NLMSG_DONE) {
				const int *e = NLMSG_DATA(nlh);

				if (nlh->nlmsg_len >= NLMSG_LENGTH(sizeof(*e)))
					return *e;
				return 0;
			}
			if (nlh->nlmsg_type != type)
				continue;
			if (parse) {
				err = parse(nlh, reply);
				if (err < 0)
					return err;
			}
		}
	}
}

/* Send @msg (consumed) and wait for its reply and ack. */
int mb_nl_do(struct mb_nl *nl, struct nl_msg *msg, void *reply,
	     int (*parse)(const struct nlmsghdr *nlh, void *reply))
{
	int type = nlmsg_hdr(msg)->nlmsg_type;
	uint32_t seq;
	int err;

	nl->extack[0] = '\0';
	nl->extack_offs = -1;
	err = nl_send_auto(nl->sk, msg);
	seq = nlmsg_hdr(msg)->nlmsg_seq;
	nlmsg_free(msg);
	if (err < 0)
		return -EIO;
	return recv_replies(nl, seq, type, reply, parse);
}

/*
 * Send @msg (consumed) as it is: unlike mb_nl_do(), no flag is added, so
 * the caller may complete it with nl_complete_msg() and then change its
 * headers.  Waits for the ack or error.
 */
int mb_nl_do_raw(struct mb_nl *nl, struct nl_msg *msg)
{
	int type = nlmsg_hdr(msg)->nlmsg_type;
	uint32_t seq = nlmsg_hdr(msg)->nlmsg_seq;
	int err;

	nl->extack[0] = '\0';
	nl->extack_offs = -1;
	err = nl_send(nl->sk, msg);
	nlmsg_free(msg);
	if (err < 0)
		return -EIO;
	return recv_replies(nl, seq, type, NULL, NULL);
}

/* Attributes of a generic netlink message: start and length. */
static const struct nlattr *genl_attrs(const struct nlmsghdr *nlh, int *len)
{
	*len = (int)nlh->nlmsg_len - NLMSG_HDRLEN - GENL_HDRLEN;
	return (const struct nlattr *)((const char *)NLMSG_DATA(nlh) +
				       GENL_HDRLEN);
}

static int parse_groups(const struct nlattr *nest, struct mb_family *f)
{
	const struct nlattr *g, *a;
	int rem, rem2;

	for (g = nla_data(nest), rem = nla_len(nest); nla_ok(g, rem);
	     g = nla_next(g, &rem)) {
		if (f->ngroups == MB_MAX_GROUPS)
			return -ENOSPC;
		for (a = nla_data(g), rem2 = nla_len(g); nla_ok(a, rem2);
		     a = nla_next(a, &rem2)) {
			if (nla_type(a) == CTRL_ATTR_MCAST_GRP_NAME)
				snprintf(f->group[f->ngroups], GENL_NAMSIZ,
					 "%.*s", nla_len(a),
					 (const char *)nla_data(a));
			else if (nla_type(a) == CTRL_ATTR_MCAST_GRP_ID &&
				 nla_len(a) == sizeof(uint32_t))
				memcpy(&f->group_id[f->ngroups], nla_data(a),
				       sizeof(uint32_t));
		}
		f->ngroups++;
	}
	return 0;
}

static int parse_family(const struct nlmsghdr *nlh, void *arg)
{
	struct mb_family *f = arg;
	const struct nlattr *a;
	uint16_t id;
	int rem;

	for (a = genl_attrs(nlh, &rem); nla_ok(a, rem); a = nla_next(a, &rem)) {
		switch (nla_type(a)) {
		case CTRL_ATTR_FAMILY_ID:
			if (nla_len(a) != sizeof(id))
				return -EBADMSG;
			memcpy(&id, nla_data(a), sizeof(id));
			f->id = id;
			break;
		case CTRL_ATTR_VERSION:
			if (nla_len(a) != sizeof(f->version))
				return -EBADMSG;
			memcpy(&f->version, nla_data(a), sizeof(f->version));
			break;
		case CTRL_ATTR_MCAST_GROUPS:
			if (parse_groups(a, f))
				return -ENOSPC;
			break;
		}
	}
	return 0;
}

/*
 * Ask the generic netlink controller about family @name.  Done by hand
 * rather than with libnl's resolver, whose sequence bookkeeping does not
 * know about the requests this client receives itself.
 */
int mb_nl_get_family(struct mb_nl *nl, const char *name, struct mb_family *f)
{
	struct nl_msg *msg = nlmsg_alloc();
	int err;

	memset(f, 0, sizeof(*f));
	f->id = -1;
	if (!msg)
		return -ENOMEM;
	if (!genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, GENL_ID_CTRL, 0, 0,
			 CTRL_CMD_GETFAMILY, 1) ||
	    nla_put_string(msg, CTRL_ATTR_FAMILY_NAME, name)) {
		nlmsg_free(msg);
		return -EMSGSIZE;
	}
	err = mb_nl_do(nl, msg, f, parse_family);
	if (err)
		return err;
	return f->id < 0 ? -EBADMSG : 0;
}

static int get_u32(const struct nlattr *a, uint32_t *v)
{
	if (nla_len(a) != sizeof(*v))
		return -EBADMSG;
	memcpy(v, nla_data(a), sizeof(*v));
	return 0;
}

static int get_u64(const struct nlattr *a, uint64_t *v)
{
	if (nla_len(a) != sizeof(*v))
		return -EBADMSG;
	memcpy(v, nla_data(a), sizeof(*v));
	return 0;
}

int mb_parse_state(const struct nlmsghdr *nlh, void *arg)
{
	const struct genlmsghdr *g = NLMSG_DATA(nlh);
	struct mb_state *st = arg;
	const struct nlattr *a;
	int rem, err = 0;

	if (nlh->nlmsg_len < NLMSG_LENGTH(GENL_HDRLEN))
		return -EBADMSG;
	memset(st, 0, sizeof(*st));
	st->cmd = g->cmd;
	for (a = genl_attrs(nlh, &rem); nla_ok(a, rem) && !err;
	     a = nla_next(a, &rem)) {
		int type = nla_type(a);

		switch (type) {
		case MEMBROKER_A_STATE:
			err = get_u32(a, &st->state);
			break;
		case MEMBROKER_A_FLAGS:
			err = get_u32(a, &st->flags);
			break;
		case MEMBROKER_A_REASON:
			err = get_u32(a, &st->reason);
			break;
		case MEMBROKER_A_SEQ:
			err = get_u64(a, &st->seq);
			break;
		case MEMBROKER_A_TIMESTAMP_NS:
			err = get_u64(a, &st->timestamp_ns);
			break;
		case MEMBROKER_A_AVAILABLE_BYTES:
			err = get_u64(a, &st->available);
			break;
		case MEMBROKER_A_TOTAL_BYTES:
			err = get_u64(a, &st->total);
			break;
		case MEMBROKER_A_LOW_BYTES:
			err = get_u64(a, &st->low);
			break;
		case MEMBROKER_A_HIGH_BYTES:
			err = get_u64(a, &st->high);
			break;
		case MEMBROKER_A_COMMITTED_BYTES:
			err = get_u64(a, &st->committed);
			break;
		case MEMBROKER_A_COMMIT_LIMIT_BYTES:
			err = get_u64(a, &st->commit_limit);
			break;
		default:
			/* PAD, and anything newer than this test */
			break;
		}
		if (type > 0 && type < 64)
			st->have |= 1ULL << type;
	}
	return err;
}

int mb_parse_config(const struct nlmsghdr *nlh, void *arg)
{
	struct mb_config *cfg = arg;
	const struct nlattr *a;
	int rem, err = 0;

	if (nlh->nlmsg_len < NLMSG_LENGTH(GENL_HDRLEN))
		return -EBADMSG;
	memset(cfg, 0, sizeof(*cfg));
	for (a = genl_attrs(nlh, &rem); nla_ok(a, rem) && !err;
	     a = nla_next(a, &rem)) {
		int type = nla_type(a);

		switch (type) {
		case MEMBROKER_A_LOW_BYTES:
			err = get_u64(a, &cfg->low);
			break;
		case MEMBROKER_A_HIGH_BYTES:
			err = get_u64(a, &cfg->high);
			break;
		case MEMBROKER_A_HYSTERESIS_BYTES:
			err = get_u64(a, &cfg->hysteresis);
			break;
		case MEMBROKER_A_POLL_MIN_MS:
			err = get_u32(a, &cfg->poll_min_ms);
			break;
		case MEMBROKER_A_POLL_MAX_MS:
			err = get_u32(a, &cfg->poll_max_ms);
			break;
		case MEMBROKER_A_RATELIMIT_MS:
			err = get_u32(a, &cfg->ratelimit_ms);
			break;
		case MEMBROKER_A_VIRTUAL_LOW_PERCENT:
			err = get_u32(a, &cfg->virtual_low_percent);
			break;
		case MEMBROKER_A_HISTORY_SIZE:
			err = get_u32(a, &cfg->history_size);
			break;
		default:
			break;
		}
		if (type > 0 && type < 64)
			cfg->have |= 1ULL << type;
	}
	return err;
}

int mb_nl_get_state(struct mb_nl *nl, struct mb_state *st)
{
	struct nl_msg *msg = mb_nl_msg(nl, MEMBROKER_CMD_GET_STATE, 0);
	int err;

	if (!msg)
		return -ENOMEM;
	memset(st, 0, sizeof(*st));
	err = mb_nl_do(nl, msg, st, mb_parse_state);
	if (!err && !st->have)
		return -ENODATA;
	return err;
}

int mb_nl_get_config(struct mb_nl *nl, struct mb_config *cfg)
{
	struct nl_msg *msg = mb_nl_msg(nl, MEMBROKER_CMD_GET_CONFIG, 0);
	int err;

	if (!msg)
		return -ENOMEM;
	memset(cfg, 0, sizeof(*cfg));
	err = mb_nl_do(nl, msg, cfg, mb_parse_config);
	if (!err && !cfg->have)
		return -ENODATA;
	return err;
}

/* SET_CONFIG with every attribute present in cfg->have but HISTORY_SIZE. */
int mb_nl_set_config(struct mb_nl *nl, const struct mb_config *cfg)
{
	struct nl_msg *msg = mb_nl_msg(nl, MEMBROKER_CMD_SET_CONFIG, 0);
	int err = 0;

	if (!msg)
		return -ENOMEM;
	if (MB_HAS(cfg, MEMBROKER_A_LOW_BYTES))
		err |= nla_put_u64(msg, MEMBROKER_A_LOW_BYTES, cfg->low);
	if (MB_HAS(cfg, MEMBROKER_A_HIGH_BYTES))
		err |= nla_put_u64(msg, MEMBROKER_A_HIGH_BYTES, cfg->high);
	if (MB_HAS(cfg, MEMBROKER_A_HYSTERESIS_BYTES))
		err |= nla_put_u64(msg, MEMBROKER_A_HYSTERESIS_BYTES,
				   cfg->hysteresis);
	if (MB_HAS(cfg, MEMBROKER_A_POLL_MIN_MS))
		err |= nla_put_u32(msg, MEMBROKER_A_POLL_MIN_MS,
				   cfg->poll_min_ms);
	if (MB_HAS(cfg, MEMBROKER_A_POLL_MAX_MS))
		err |= nla_put_u32(msg, MEMBROKER_A_POLL_MAX_MS,
				   cfg->poll_max_ms);
	if (MB_HAS(cfg, MEMBROKER_A_RATELIMIT_MS))
		err |= nla_put_u32(msg, MEMBROKER_A_RATELIMIT_MS,
				   cfg->ratelimit_ms);
	if (MB_HAS(cfg, MEMBROKER_A_VIRTUAL_LOW_PERCENT))
		err |= nla_put_u32(msg, MEMBROKER_A_VIRTUAL_LOW_PERCENT,
				   cfg->virtual_low_percent);
	if (err) {
		nlmsg_free(msg);
		return -EMSGSIZE;
	}
	return mb_nl_do(nl, msg, NULL, NULL);
}

bool mb_config_equal(const struct mb_config *a, const struct mb_config *b)
{
	return a->have == b->have && a->low == b->low && a->high == b->high &&
	       a->hysteresis == b->hysteresis &&
	       a->poll_min_ms == b->poll_min_ms &&
	       a->poll_max_ms == b->poll_max_ms &&
	       a->ratelimit_ms == b->ratelimit_ms &&
	       a->virtual_low_percent == b->virtual_low_percent &&
	       a->history_size == b->history_size;
}

struct history {
	struct mb_state *out;
	size_t max;
	size_t n;
};

static int parse_history(const struct nlmsghdr *nlh, void *arg)
{
	struct history *h = arg;

	if (h->n == h->max)
		return -ENOSPC;
	return mb_parse_state(nlh, &h->out[h->n++]);
}

/* GET_HISTORY dump; returns the number of entries or -errno. */
int mb_nl_dump_history(struct mb_nl *nl, struct mb_state *out, size_t max)
{
	struct history h = { .out = out, .max = max };
	struct nl_msg *msg;
	uint32_t seq;
	int err;

	msg = mb_nl_msg(nl, MEMBROKER_CMD_GET_HISTORY, NLM_F_DUMP);
	if (!msg)
		return -ENOMEM;
	/* A dump ends with NLMSG_DONE; an ack on top would be stray. */
	nl_socket_disable_auto_ack(nl->sk);
	err = nl_send_auto(nl->sk, msg);
	nl_socket_enable_auto_ack(nl->sk);
	seq = nlmsg_hdr(msg)->nlmsg_seq;
	nlmsg_free(msg);
	if (err < 0)
		return -EIO;
	err = recv_replies(nl, seq, nl->family, &h, parse_history);
	return err < 0 ? err : (int)h.n;
}

/*
 * Wait up to @timeout_ms for the next NOTIFY on a subscribed socket.
 * Returns 0, -ETIMEDOUT, or -ENOBUFS if notifications were lost.
 */
int mb_nl_recv_notify(struct mb_nl *nl, struct mb_state *st, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;

	for (;;) {
		const struct nlmsghdr *nlh;
		int64_t left = deadline - now_ms();
		int len;

		len = recv_one(nl, left > 0 ? (int)left : 0);
		if (len < 0)
			return len;
		for (nlh = (const struct nlmsghdr *)nl->buf;
		     NLMSG_OK(nlh, (unsigned int)len);
		     nlh = NLMSG_NEXT(nlh, len)) {
			const struct genlmsghdr *g = NLMSG_DATA(nlh);

			if (nlh->nlmsg_type != nl->family ||
			    nlh->nlmsg_len < NLMSG_LENGTH(GENL_HDRLEN) ||
			    g->cmd != MEMBROKER_CMD_NOTIFY)
				continue;
			return mb_parse_state(nlh, st);
		}
	}
}
