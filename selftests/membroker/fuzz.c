// SPDX-License-Identifier: GPL-2.0
/*
 * Hostile input: random generic netlink requests to the family, each
 * checked against what the uapi header and the policies in kmod/netlink.c
 * say the kernel must answer.
 *
 * A request is built from random parts (command 0..255, nlmsg_flags from
 * the valid and invalid bits, the reserved byte, attributes of every type
 * 0..MEMBROKER_A_MAX+2 with right, wrong and odd lengths, NLA_F_NESTED,
 * attribute lengths that lie, trailing bytes, nlmsg_len shorter or longer
 * than what is sent) and then judged by expect(), which re-implements the
 * checks in the order the uapi header gives them:
 *
 *  - nlmsg_len below the netlink header or beyond the datagram: not a
 *    message, netlink drops it: no answer at all;
 *  - without NLM_F_REQUEST: not a request: an ack of 0 if NLM_F_ACK;
 *  - "malformed" (answered with an error, and changing nothing): shorter
 *    than the genetlink header, reserved byte not 0, nlmsg_flags beyond
 *    REQUEST|ACK|ECHO|DUMP (-EINVAL); an unknown command or NOTIFY, a dump
 *    of a do command or a do of GET_HISTORY (-EOPNOTSUPP); SET_CONFIG
 *    without CAP_NET_ADMIN (-EPERM; on 6.1 after the dump/do mismatch);
 *    then strict attribute validation: type 0 or above MEMBROKER_A_MAX,
 *    any attribute to a GET command, a read-only one to SET_CONFIG,
 *    NLA_F_NESTED, a u32/u64 of another length, an attribute length below
 *    its header or past the message, bytes left over (-EINVAL); last
 *    SET_CONFIG's values: nothing to set, a range, POLL_MIN > POLL_MAX, a
 *    changed byte value above MemTotal (-EINVAL).  Whether changed
 *    thresholds give low < high depends on the automatic ones, so such a
 *    request may be refused or applied: either is checked below.
 *  - anything else: the reply (GET_STATE, GET_CONFIG), the dump ending in
 *    NLMSG_DONE (GET_HISTORY), and an ack of 0 where NLM_F_ACK asked.
 *
 * Netlink runs a request in the sender's sendmsg() and a dump's next part
 * in its recvmsg(), so all that answers a request is in the socket once
 * send() returned and the reads drain it: no timing is involved.
 *
 * The test keeps a model of the configuration: a SET_CONFIG that succeeds
 * changes it as the request says, anything refused changes nothing;
 * GET_CONFIG must equal it after every chunk.  Chunks of requests come
 * from forked children as root and as nobody, in the initial and in new
 * network namespaces.  Afterwards GET_STATE must answer consistently with
 * sysfs and /proc/meminfo.  MB_FUZZ_MESSAGES (default 10000) sets the
 * number of requests, MB_FUZZ_SEED the seed (printed either way).
 */
#include <errno.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>

#include <linux/genetlink.h>
#include <linux/netlink.h>

#include "mb_test.h"

#define NOBODY		65534
#define CHUNK		500
#define MAX_MSG		4096
#define MAX_SHOWN	10

enum fz_class {
	FZ_VALID,	/* well formed, every command */
	FZ_CMD,		/* unknown command, NOTIFY */
	FZ_FLAGS,	/* reserved bits, dump on do, do on dump */
	FZ_RESERVED,	/* genetlink reserved byte */
	FZ_ATTR,	/* attribute types, lengths, nesting, trailing bytes */
	FZ_VALUE,	/* SET_CONFIG values */
	FZ_SHORT,	/* nlmsg_len shorter than the headers or a lie */
	FZ_NOREQ,	/* no NLM_F_REQUEST */
	FZ_CLASSES
};

static const char * const fz_names[FZ_CLASSES] = {
	"valid", "command", "flags", "reserved", "attributes", "values",
	"truncated", "not-a-request",
};

enum fz_role { R_ROOT, R_ROOT_NETNS, R_NOBODY, R_NOBODY_NETNS, R_ROLES };

static const char * const role_names[R_ROLES] = {
	"root", "root in a new netns", "nobody", "nobody in a new netns",
};

struct fz_stats {
	unsigned long sent[FZ_CLASSES];
	unsigned long errors[FZ_CLASSES];	/* error acks received */
	unsigned long by_errno[4];		/* EINVAL EOPNOTSUPP EPERM other */
	unsigned long mismatches;
	unsigned long config_mismatches;
	unsigned long dump_msgs;
	unsigned long set_ok;
	unsigned long roles[R_ROLES];
	int failed_setup;
};

/* expect()'s verdict */
enum fz_want {
	W_NOTHING,	/* no answer at all */
	W_ACK,		/* an ack with @err, 0 included, and nothing else */
	W_ACK_IF,	/* an ack of 0 if NLM_F_ACK, else nothing */
	W_REPLY,	/* one reply of the command, then W_ACK_IF */
	W_DUMP,		/* replies, NLMSG_DONE 0, maybe an ack of 0 */
	W_SET_MAYBE,	/* -EINVAL, or applied (W_ACK_IF) */
};

struct fz_cfg {
	uint64_t v[MEMBROKER_A_MAX + 1];
};

static uint64_t rng;

static uint64_t rnd(void)
{
	/* splitmix64: deterministic for a printed seed */
	uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static unsigned int below(unsigned int n)
{
	return (unsigned int)(rnd() % n);
}

static bool is_u64(int t)
{
	return (t >= MEMBROKER_A_SEQ && t <= MEMBROKER_A_COMMIT_LIMIT_BYTES) ||
	       t == MEMBROKER_A_HYSTERESIS_BYTES;
}

static bool is_config(int t)
{
	return t == MEMBROKER_A_LOW_BYTES || t == MEMBROKER_A_HIGH_BYTES ||
	       t == MEMBROKER_A_HYSTERESIS_BYTES ||
	       (t >= MEMBROKER_A_POLL_MIN_MS &&
		t <= MEMBROKER_A_VIRTUAL_LOW_PERCENT);
}

/* A plausible, in-range or out-of-range value for config attribute @t */
static uint64_t config_value(int t, const struct fz_cfg *m, uint64_t total)
{
	switch (below(4)) {
	case 0:
		return m->v[t];		/* unchanged */
	case 1:
		if (t == MEMBROKER_A_LOW_BYTES || t == MEMBROKER_A_HIGH_BYTES ||
		    t == MEMBROKER_A_HYSTERESIS_BYTES)
			return total + 1 + below(1 << 20);
		return t == MEMBROKER_A_RATELIMIT_MS ? 10001 : 0;
	case 2:
		return rnd() & (below(2) ? 0xffffffffULL : ~0ULL);
	}
	switch (t) {
	case MEMBROKER_A_LOW_BYTES:
		return below(3) ? 0 : (32 + below(32)) * MIB;
	case MEMBROKER_A_HIGH_BYTES:
		return below(3) ? 0 : (96 + below(64)) * MIB;
	case MEMBROKER_A_HYSTERESIS_BYTES:
		return below(2) ? 0 : (1 + below(8)) * MIB;
	case MEMBROKER_A_POLL_MIN_MS:
		return 1 + below(1000);
	case MEMBROKER_A_POLL_MAX_MS:
		return 10 + below(60000 - 9);
	case MEMBROKER_A_RATELIMIT_MS:
		return below(10001);
	default:
		return 1 + below(100);
	}
}

static size_t put_attr(unsigned char *p, size_t off, uint16_t type,
		       uint16_t len_field, const void *data, size_t dlen)
{
	struct nlattr a = { .nla_len = len_field, .nla_type = type };

	memcpy(p + off, &a, sizeof(a));
	memcpy(p + off + NLA_HDRLEN, data, dlen);
	return off + NLA_ALIGN(NLA_HDRLEN + dlen);
}

/*
 * Build a request of class @c into @p; returns the bytes to send.
 * nlmsg_len is the real length unless the class makes it lie.
 */
static size_t build(unsigned char *p, enum fz_class c, int family,
		    uint32_t seq, const struct fz_cfg *m, uint64_t total)
{
	static const uint8_t cmds[] = {
		MEMBROKER_CMD_GET_STATE, MEMBROKER_CMD_GET_CONFIG,
		MEMBROKER_CMD_SET_CONFIG, MEMBROKER_CMD_GET_HISTORY,
	};
	struct nlmsghdr *nlh = (struct nlmsghdr *)p;
	struct genlmsghdr *g = (struct genlmsghdr *)(p + NLMSG_HDRLEN);
	size_t off = NLMSG_HDRLEN + GENL_HDRLEN, len;
	uint8_t cmd = cmds[below(4)];
	uint16_t flags = NLM_F_REQUEST;
	int i, n;

	memset(p, 0, MAX_MSG);
	if (below(2))
		flags |= NLM_F_ACK;
	if (below(8) == 0)
		flags |= NLM_F_ECHO;
	if (cmd == MEMBROKER_CMD_GET_HISTORY)
		flags |= NLM_F_DUMP;
	g->version = below(4) ? MEMBROKER_FAMILY_VERSION : below(256);

	switch (c) {
	case FZ_CMD:
		do {
			cmd = below(256);
		} while (cmd == MEMBROKER_CMD_GET_STATE ||
			 cmd == MEMBROKER_CMD_GET_CONFIG ||
			 cmd == MEMBROKER_CMD_SET_CONFIG ||
			 cmd == MEMBROKER_CMD_GET_HISTORY);
		if (below(2))
			flags |= NLM_F_DUMP;
		break;
	case FZ_FLAGS:
		if (below(2))
			flags ^= NLM_F_DUMP;	/* dump on do, do on dump */
		else
			flags |= (uint16_t)(1U << (1 + below(15))) &
				 ~NLM_F_REQUEST;
		break;
	case FZ_RESERVED:
		g->reserved = 1 + below(0xffff);
		break;
	case FZ_NOREQ:
		flags &= ~NLM_F_REQUEST;
		break;
	default:
		break;
	}
	g->cmd = cmd;

	if (c == FZ_VALID || c == FZ_VALUE || c == FZ_ATTR) {
		n = below(c == FZ_VALID && cmd != MEMBROKER_CMD_SET_CONFIG ?
			  1 : 6);
		if (cmd == MEMBROKER_CMD_SET_CONFIG && c != FZ_ATTR && !n)
			n = c == FZ_VALUE && below(4) == 0 ? 0 : 1;
		for (i = 0; i < n; i++) {
			int t = MEMBROKER_A_LOW_BYTES + below(13);
			uint64_t v;

			while (!is_config(t) && t != MEMBROKER_A_PAD)
				t = MEMBROKER_A_LOW_BYTES + below(13);
			v = config_value(t, m, total);
			if (c == FZ_VALID)
				v = t == MEMBROKER_A_PAD ? 0 : m->v[t];
			if (t == MEMBROKER_A_PAD)
				off = put_attr(p, off, t, NLA_HDRLEN + 4 *
					       below(3), &v, 4 * below(3));
			else if (is_u64(t))
				off = put_attr(p, off, t, NLA_HDRLEN + 8,
					       &v, 8);
			else
				off = put_attr(p, off, t, NLA_HDRLEN + 4,
					       &v, 4);
		}
	}
	if (c == FZ_ATTR) {
		/* one hostile attribute somewhere after the good ones */
		unsigned char junk[64];
		uint16_t t = below(MEMBROKER_A_MAX + 3);
		size_t dlen = below(20);

		for (i = 0; i < (int)sizeof(junk); i++)
			junk[i] = rnd();
		switch (below(6)) {
		case 0:		/* any type, any length */
			off = put_attr(p, off, t, NLA_HDRLEN + dlen, junk,
				       dlen);
			break;
		case 1:		/* NLA_F_NESTED, maybe around real attributes */
			off = put_attr(p, off, t | NLA_F_NESTED,
				       NLA_HDRLEN + 12, junk, 12);
			if (below(2))
				put_attr(p, off - 12, MEMBROKER_A_RATELIMIT_MS,
					 NLA_HDRLEN + 4, junk, 4);
			break;
		case 2:		/* NLA_F_NET_BYTEORDER on a config value */
			t = MEMBROKER_A_RATELIMIT_MS;
			junk[0] = below(100);
			memset(junk + 1, 0, 3);
			off = put_attr(p, off, t | NLA_F_NET_BYTEORDER,
				       NLA_HDRLEN + 4, junk, 4);
			break;
		case 3:		/* length below the header */
			off = put_attr(p, off, t, below(NLA_HDRLEN), junk, 4);
			break;
		case 4:		/* length past the end */
			off = put_attr(p, off, t, NLA_HDRLEN + 8 + below(200),
				       junk, 8);
			break;
		default:	/* 1..3 bytes left over */
			off += 1 + below(3);
			break;
		}
	}
	len = off;
	nlh->nlmsg_len = len;
	nlh->nlmsg_type = family;
	nlh->nlmsg_flags = flags;
	nlh->nlmsg_seq = seq;
	if (c == FZ_SHORT) {
		switch (below(3)) {
		case 0:		/* beyond the datagram: dropped */
			nlh->nlmsg_len = len + 1 + below(100);
			break;
		case 1:		/* below the netlink header: dropped */
			nlh->nlmsg_len = below(NLMSG_HDRLEN);
			break;
		default:	/* shorter: the rest is ignored (< a header) */
			nlh->nlmsg_len = NLMSG_HDRLEN + below(GENL_HDRLEN + 9);
			if (nlh->nlmsg_len > len)
				nlh->nlmsg_len = len;
			len = NLMSG_ALIGN(nlh->nlmsg_len) + below(NLMSG_HDRLEN);
			if (len < nlh->nlmsg_len)
				len = nlh->nlmsg_len;
			break;
		}
	}
	return len;
}

/* Strict attribute validation as lib/nlattr.c does it, with our policies */
static int check_attrs(const unsigned char *a, int rem, uint8_t cmd,
		       struct fz_cfg *set, uint64_t *have)
{
	*have = 0;
	while (rem >= NLA_HDRLEN) {
		struct nlattr h;
		int t, dlen;

		memcpy(&h, a, sizeof(h));
		if (h.nla_len < NLA_HDRLEN || h.nla_len > rem)
			break;
		t = h.nla_type & NLA_TYPE_MASK;
		dlen = h.nla_len - NLA_HDRLEN;
		if (t == 0 || t > MEMBROKER_A_MAX)
			return -EINVAL;
		if (h.nla_type & NLA_F_NESTED)
			return -EINVAL;
		if (cmd != MEMBROKER_CMD_SET_CONFIG)
			return -EINVAL;
		if (t != MEMBROKER_A_PAD) {
			if (!is_config(t))
				return -EINVAL;
			if (dlen != (is_u64(t) ? 8 : 4))
				return -EINVAL;
			set->v[t] = 0;
			memcpy(&set->v[t], a + NLA_HDRLEN, dlen);
			*have |= 1ULL << t;
		}
		rem -= NLA_ALIGN(h.nla_len);
		a += NLA_ALIGN(h.nla_len);
	}
	return rem > 0 ? -EINVAL : 0;
}

static bool pre_6_2;

/* What the kernel must answer to @p (@len bytes sent); *err for W_ACK */
static enum fz_want expect(const unsigned char *p, size_t len, bool priv,
			   const struct fz_cfg *m, uint64_t total,
			   struct fz_cfg *after, int *err)
{
	const struct nlmsghdr *nlh = (const void *)p;
	const struct genlmsghdr *g = (const void *)(p + NLMSG_HDRLEN);
	uint16_t f = nlh->nlmsg_flags, rest;
	bool dump = (f & NLM_F_DUMP) == NLM_F_DUMP, mismatch, known;
	uint64_t have;
	int t;

	*err = 0;
	*after = *m;
	if (nlh->nlmsg_len < NLMSG_HDRLEN || nlh->nlmsg_len > len)
		return W_NOTHING;
	if (!(f & NLM_F_REQUEST))
		return W_ACK_IF;
	*err = -EINVAL;
	if (nlh->nlmsg_len < NLMSG_HDRLEN + GENL_HDRLEN)
		return W_ACK;
	rest = dump ? f & ~NLM_F_DUMP : f;
	if (g->reserved || (rest & ~(NLM_F_REQUEST | NLM_F_ACK | NLM_F_ECHO)))
		return W_ACK;
	known = g->cmd == MEMBROKER_CMD_GET_STATE ||
		g->cmd == MEMBROKER_CMD_GET_CONFIG ||
		g->cmd == MEMBROKER_CMD_SET_CONFIG ||
		g->cmd == MEMBROKER_CMD_GET_HISTORY;
	mismatch = dump != (g->cmd == MEMBROKER_CMD_GET_HISTORY);
	*err = -EOPNOTSUPP;
	if (!known || (mismatch && !pre_6_2))
		return W_ACK;
	*err = -EPERM;
	if (g->cmd == MEMBROKER_CMD_SET_CONFIG && !priv)
		return W_ACK;
	*err = -EOPNOTSUPP;
	if (mismatch)
		return W_ACK;
	*err = check_attrs(p + NLMSG_HDRLEN + GENL_HDRLEN,
			   (int)nlh->nlmsg_len - NLMSG_HDRLEN - GENL_HDRLEN,
			   g->cmd, after, &have);
	if (*err)
		return W_ACK;
	switch (g->cmd) {
	case MEMBROKER_CMD_GET_HISTORY:
		return W_DUMP;
	case MEMBROKER_CMD_SET_CONFIG:
		break;
	default:
		return W_REPLY;
	}
	*err = -EINVAL;
	if (!have ||
	    after->v[MEMBROKER_A_POLL_MIN_MS] < 1 ||
	    after->v[MEMBROKER_A_POLL_MIN_MS] > 1000 ||
	    after->v[MEMBROKER_A_POLL_MAX_MS] < 10 ||
	    after->v[MEMBROKER_A_POLL_MAX_MS] > 60000 ||
	    after->v[MEMBROKER_A_RATELIMIT_MS] > 10000 ||
	    after->v[MEMBROKER_A_VIRTUAL_LOW_PERCENT] < 1 ||
	    after->v[MEMBROKER_A_VIRTUAL_LOW_PERCENT] > 100 ||
	    after->v[MEMBROKER_A_POLL_MIN_MS] >
	    after->v[MEMBROKER_A_POLL_MAX_MS])
		return W_ACK;
	for (t = MEMBROKER_A_LOW_BYTES; t <= MEMBROKER_A_HYSTERESIS_BYTES; t++)
		if (is_u64(t) && is_config(t) && after->v[t] != m->v[t] &&
		    after->v[t] > total)
			return W_ACK;
	*err = 0;
	if (after->v[MEMBROKER_A_LOW_BYTES] != m->v[MEMBROKER_A_LOW_BYTES] ||
	    after->v[MEMBROKER_A_HIGH_BYTES] != m->v[MEMBROKER_A_HIGH_BYTES])
		return W_SET_MAYBE;
	return W_ACK_IF;
}

struct fz_seen {
	int nerr, err, ndata, done, bad_data;
	uint8_t cmd;
};

/* Drain what answers @seq; a dump is followed until its NLMSG_DONE */
static int drain(int fd, uint32_t seq, bool until_done, struct fz_seen *s,
		 struct fz_stats *st)
{
	static unsigned char buf[64 * 1024];
	int spins = 0;

	memset(s, 0, sizeof(*s));
	for (;;) {
		struct nlmsghdr *nlh;
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		int len;

		/*
		 * Only a dump's next part may be late (the kernel makes it
		 * in recvmsg(), or may find no memory for it at once).
		 */
		if (n < 0 && errno == EAGAIN && until_done && !s->done &&
		    !s->nerr) {
			struct timespec ts = { 0, 1000000 };

			if (++spins > 5000)	/* 5 s: never ended */
				return -ETIMEDOUT;
			nanosleep(&ts, NULL);
			continue;
		}
		if (n < 0)
			return errno == EAGAIN ? 0 : -errno;
		len = (int)n;
		for (nlh = (void *)buf; NLMSG_OK(nlh, (unsigned int)len);
		     nlh = NLMSG_NEXT(nlh, len)) {
			if (nlh->nlmsg_seq != seq)
				continue;
			if (nlh->nlmsg_type == NLMSG_ERROR) {
				s->nerr++;
				s->err = ((struct nlmsgerr *)NLMSG_DATA(nlh))->error;
			} else if (nlh->nlmsg_type == NLMSG_DONE) {
				s->done++;
			} else {
				struct mb_state ms;
				struct mb_config mc;

				s->ndata++;
				s->cmd = ((struct genlmsghdr *)
					  NLMSG_DATA(nlh))->cmd;
				if (s->cmd == MEMBROKER_CMD_GET_CONFIG) {
					if (mb_parse_config(nlh, &mc) ||
					    (mc.have & MB_CONFIG_ATTRS) !=
					    MB_CONFIG_ATTRS)
						s->bad_data++;
				} else if (mb_parse_state(nlh, &ms) ||
					   (ms.have & MB_STATE_ATTRS) !=
					   MB_STATE_ATTRS) {
					s->bad_data++;
				}
				if (nlh->nlmsg_flags & NLM_F_MULTI)
					st->dump_msgs++;
			}
		}
	}
}

static bool judge(enum fz_want w, int err, uint16_t flags, uint8_t cmd,
		  const struct fz_seen *s, bool *applied)
{
	bool ack = flags & NLM_F_ACK;

	*applied = false;
	if (s->bad_data)
		return false;
	switch (w) {
	case W_NOTHING:
		return !s->nerr && !s->ndata && !s->done;
	case W_ACK:
		return s->nerr == 1 && s->err == err && !s->ndata && !s->done;
	case W_SET_MAYBE:
		if (s->nerr == 1 && s->err == -EINVAL && !s->ndata)
			return true;
		/* fall through */
	case W_ACK_IF:
		*applied = true;
		return s->nerr == (ack ? 1 : 0) && (!ack || !s->err) &&
		       !s->ndata && !s->done;
	case W_REPLY:
		return s->ndata == 1 && s->cmd == cmd &&
		       s->nerr == (ack ? 1 : 0) && (!ack || !s->err);
	case W_DUMP:
		return s->ndata >= 1 && s->done == 1 && s->nerr <= 1 &&
		       !s->err;
	}
	return false;
}

static void model_from(struct fz_cfg *m, const struct mb_config *c)
{
	memset(m, 0, sizeof(*m));
	m->v[MEMBROKER_A_LOW_BYTES] = c->low;
	m->v[MEMBROKER_A_HIGH_BYTES] = c->high;
	m->v[MEMBROKER_A_HYSTERESIS_BYTES] = c->hysteresis;
	m->v[MEMBROKER_A_POLL_MIN_MS] = c->poll_min_ms;
	m->v[MEMBROKER_A_POLL_MAX_MS] = c->poll_max_ms;
	m->v[MEMBROKER_A_RATELIMIT_MS] = c->ratelimit_ms;
	m->v[MEMBROKER_A_VIRTUAL_LOW_PERCENT] = c->virtual_low_percent;
}

static int raw_socket(void)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	int one = 1, fd;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one))) {
		close(fd);
		return -errno;
	}
	return fd;
}

static void show(const char *what, const unsigned char *p, size_t len,
		 enum fz_want w, int err, const struct fz_seen *s)
{
	const struct nlmsghdr *nlh = (const void *)p;
	size_t i;

	fprintf(stderr, "# MISMATCH %s: want %d err %d; got %d errors (last %d)"
		", %d data, %d done; nlmsg_len %u flags 0x%x sent %zu:",
		what, w, err, s->nerr, s->err, s->ndata, s->done,
		nlh->nlmsg_len, nlh->nlmsg_flags, len);
	for (i = 0; i < len && i < 64; i++)
		fprintf(stderr, " %02x", p[i]);
	fprintf(stderr, "\n");
}

/* One chunk of @n requests as @role; runs in a forked child */
static void chunk(enum fz_role role, unsigned long n, uint64_t seed,
		  struct fz_stats *st)
{
	static unsigned char p[MAX_MSG];
	bool priv = role == R_ROOT || role == R_ROOT_NETNS;
	struct mb_meminfo mi;
	struct mb_config c;
	struct fz_cfg m, after;
	struct mb_nl nl;
	uint32_t seq = 0x40000000;
	int fd, shown = 0;
	unsigned long i;

	rng = seed;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if ((role == R_ROOT_NETNS || role == R_NOBODY_NETNS) &&
	    unshare(CLONE_NEWNET))
		goto fail;
	/* half the time the socket is opened before dropping privilege */
	fd = below(2) ? raw_socket() : -1;
	if (!priv && (setgroups(0, NULL) || setgid(NOBODY) ||
		      setuid(NOBODY)))
		goto fail;
	if (fd < 0)
		fd = raw_socket();
	if (fd < 0 || mb_nl_open(&nl) || mb_nl_get_config(&nl, &c) ||
	    mb_meminfo_read(&mi))
		goto fail;
	model_from(&m, &c);

	for (i = 0; i < n; i++) {
		enum fz_class cl = below(FZ_CLASSES);
		struct fz_seen s;
		enum fz_want w;
		bool applied;
		size_t len;
		int err;

		if (cl == FZ_VALID && below(2))
			cl = FZ_VALUE;	/* more SET_CONFIG that can apply */
		len = build(p, cl, nl.family, ++seq, &m, mi.total);
		w = expect(p, len, priv, &m, mi.total, &after, &err);
		st->sent[cl]++;
		if (send(fd, p, len, 0) != (ssize_t)len) {
			st->mismatches++;
			continue;
		}
		if (drain(fd, seq, w == W_DUMP, &s, st))
			s.bad_data++;
		if (s.nerr && s.err) {
			st->errors[cl]++;
			st->by_errno[s.err == -EINVAL ? 0 :
				     s.err == -EOPNOTSUPP ? 1 :
				     s.err == -EPERM ? 2 : 3]++;
		}
		if (!judge(w, err, ((struct nlmsghdr *)p)->nlmsg_flags,
			   p[NLMSG_HDRLEN], &s, &applied)) {
			st->mismatches++;
			if (shown++ < MAX_SHOWN)
				show(fz_names[cl], p, len, w, err, &s);
			continue;
		}
		/* after is the model unless a SET_CONFIG applied */
		if (applied) {
			if (memcmp(&after, &m, sizeof(m)))
				st->set_ok++;
			m = after;
		}
	}
	/* The model must be what the kernel has. */
	if (mb_nl_get_config(&nl, &c))
		goto fail;
	model_from(&after, &c);
	if (memcmp(&after, &m, sizeof(m))) {
		st->config_mismatches++;
		fprintf(stderr, "# MISMATCH configuration differs from the model\n");
	}
	st->roles[role]++;
	mb_nl_close(&nl);
	close(fd);
	return;
fail:
	st->failed_setup++;
}

static unsigned long env_ul(const char *name, unsigned long def)
{
	const char *v = getenv(name);

	return v && *v ? strtoul(v, NULL, 0) : def;
}

FIXTURE(fuzz) {
	int unused;
};

FIXTURE_SETUP(fuzz)
{
	self->unused = 0;
}

FIXTURE_TEARDOWN(fuzz)
{
}

TEST_F_TIMEOUT(fuzz, requests, 3600)
{
	struct fz_stats *st;
	struct mb_config before, now;
	struct mb_meminfo mi;
	struct mb_state gs;
	struct utsname u;
	struct mb_nl nl;
	unsigned long total, done = 0, k;
	uint64_t seed, seq1, seq2;
	unsigned long sum_sent = 0, sum_err = 0;
	uint32_t sstate;
	int i, tries;

	MB_OPEN_OR_SKIP(&nl);
	ASSERT_EQ(0, uname(&u));
	pre_6_2 = !strncmp(u.release, "6.1.", 4) || !strncmp(u.release, "5.", 2);
	total = env_ul("MB_FUZZ_MESSAGES", 10000);
	seed = env_ul("MB_FUZZ_SEED", (unsigned long)time(NULL));
	TH_LOG("seed %llu (MB_FUZZ_SEED), %lu messages (MB_FUZZ_MESSAGES)",
	       (unsigned long long)seed, total);
	ASSERT_EQ(0, mb_nl_get_config(&nl, &before));

	st = mmap(NULL, sizeof(*st), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, st);
	memset(st, 0, sizeof(*st));

	for (k = 0; done < total; k++) {
		unsigned long n = total - done < CHUNK ? total - done : CHUNK;
		enum fz_role role = k % R_ROLES;
		pid_t pid = fork();
		int status;

		ASSERT_LE(0, pid);
		if (!pid) {
			chunk(role, n, seed + k * 0x100000001ULL, st);
			_exit(0);
		}
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status));
		done += n;
		/* the module is still there and answers */
		ASSERT_EQ(0, mb_nl_resolve(&nl));
	}

	for (i = 0; i < FZ_CLASSES; i++) {
		TH_LOG("%-14s %7lu sent, %7lu error acks", fz_names[i],
		       st->sent[i], st->errors[i]);
		sum_sent += st->sent[i];
		sum_err += st->errors[i];
	}
	for (i = 0; i < R_ROLES; i++)
		TH_LOG("chunks as %s: %lu", role_names[i], st->roles[i]);
	TH_LOG("total %lu sent, %lu error acks (EINVAL %lu, EOPNOTSUPP %lu, "
	       "EPERM %lu, other %lu); %lu dump messages; %lu configurations "
	       "applied; %lu answers not as the uapi says",
	       sum_sent, sum_err, st->by_errno[0], st->by_errno[1],
	       st->by_errno[2], st->by_errno[3], st->dump_msgs, st->set_ok,
	       st->mismatches);
	printf("# MB-FUZZ messages=%lu errors=%lu mismatches=%lu seed=%llu\n",
	       sum_sent, sum_err, st->mismatches, (unsigned long long)seed);
	EXPECT_EQ(total, sum_sent);
	EXPECT_EQ(0, st->failed_setup);
	EXPECT_EQ(0, st->mismatches);
	EXPECT_EQ(0, st->config_mismatches);
	EXPECT_LT(0, st->by_errno[2]);	/* unprivileged SET_CONFIG: EPERM */

	/* GET_STATE answers, consistently with sysfs and /proc/meminfo */
	ASSERT_EQ(0, mb_nl_set_config(&nl, &before));
	for (tries = 0; tries < 20; tries++) {
		ASSERT_EQ(0, mb_sysfs_read_u64("seq", &seq1));
		ASSERT_EQ(0, mb_nl_get_state(&nl, &gs));
		ASSERT_EQ(0, mb_sysfs_read_state(&sstate));
		ASSERT_EQ(0, mb_sysfs_read_u64("seq", &seq2));
		if (seq1 == seq2 && gs.seq == seq2)
			break;
	}
	EXPECT_EQ(MB_STATE_ATTRS, gs.have & MB_STATE_ATTRS);
	EXPECT_EQ(seq2, gs.seq);
	EXPECT_EQ(MEMBROKER_REASON_QUERY, gs.reason);
	EXPECT_TRUE(gs.state >= MEMBROKER_STATE_LOW &&
		    gs.state <= MEMBROKER_STATE_HIGH);
	EXPECT_LT(gs.low, gs.high);
	if (gs.available < gs.low)
		EXPECT_EQ(MEMBROKER_STATE_LOW, gs.state);
	if (gs.available > gs.high)
		EXPECT_EQ(MEMBROKER_STATE_HIGH, gs.state);
	ASSERT_EQ(0, mb_meminfo_read(&mi));
	EXPECT_EQ(mi.total, gs.total);
	ASSERT_EQ(0, mb_nl_get_config(&nl, &now));
	EXPECT_TRUE(mb_config_equal(&before, &now));
	mb_nl_close(&nl);
	munmap(st, sizeof(*st));
}

TEST_HARNESS_MAIN
