// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The kernel module client without the module: opening fails cleanly
 * with -ENOENT, state/config messages built here with libnl are parsed
 * field by field (and rejected when incomplete or malformed), the extack
 * text is found in error messages, libnl's codes map back to errno,
 * nlctrl's family events are recognised, the kmod source's sequence
 * logic asks for a resync exactly when notifications were lost or the
 * module restarted, and the source (on a scripted module) resynchronises
 * after an overrun, carries on from /proc/meminfo while the module is
 * away and comes back to it.  The real module is exercised in the VM
 * (selftests/lib).
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/netlink.h>
#include <netlink/netlink.h>
#include <netlink/attr.h>
#include <netlink/msg.h>
#include <netlink/genl/genl.h>

#include "membroker.h"
#include "../../include/uapi/linux/membroker.h"
#include "internal.h"
#include "tap.h"

#define FAMILY	0x20	/* any id: the parser does not look at it */

static struct nl_msg *state_msg(uint32_t state, int skip_attr, bool bad_seq)
{
	struct nl_msg *msg = nlmsg_alloc();

	genlmsg_put(msg, 0, 0, FAMILY, 0, 0, MEMBROKER_CMD_NOTIFY,
		    MEMBROKER_FAMILY_VERSION);
#define PUT32(a, v) do { if ((a) != skip_attr) nla_put_u32(msg, a, v); } \
	while (0)
#define PUT64(a, v) do { if ((a) != skip_attr) nla_put_u64(msg, a, v); } \
	while (0)
	PUT32(MEMBROKER_A_STATE, state);
	PUT32(MEMBROKER_A_FLAGS, MEMBROKER_FLAG_VIRTUAL_LOW);
	if (bad_seq)
		nla_put_u32(msg, MEMBROKER_A_SEQ, 7);
	else
		PUT64(MEMBROKER_A_SEQ, 42);
	/* the kernel may pad u64s; the parser must skip it */
	nla_put(msg, MEMBROKER_A_PAD, 0, NULL);
	PUT64(MEMBROKER_A_TIMESTAMP_NS, 123456789ULL);
	PUT64(MEMBROKER_A_AVAILABLE_BYTES, 1ULL << 30);
	PUT64(MEMBROKER_A_TOTAL_BYTES, 4ULL << 30);
	PUT64(MEMBROKER_A_LOW_BYTES, 256ULL << 20);
	PUT64(MEMBROKER_A_HIGH_BYTES, 768ULL << 20);
	PUT64(MEMBROKER_A_COMMITTED_BYTES, 3ULL << 30);
	PUT64(MEMBROKER_A_COMMIT_LIMIT_BYTES, 5ULL << 30);
	PUT32(MEMBROKER_A_REASON, MEMBROKER_REASON_OOM);
	return msg;
}

static void test_open(void)
{
	struct mb_kmod *k = (struct mb_kmod *)&k;
	int err = mb_kmod_open(&k);

	if (err == 0) {
		/* the module is loaded here after all: nothing to check */
		skip("membroker is loaded on this host");
		mb_kmod_close(k);
		return;
	}
	ok(err == -ENOENT && k == NULL,
	   "without the module mb_kmod_open is -ENOENT (got %d)", err);
	ok(mb_kmod_open(NULL) == -EINVAL, "NULL out: -EINVAL");
	mb_kmod_close(NULL);
	ok(mb_kmod_get_state(NULL, NULL) == -EINVAL &&
	   mb_kmod_get_config(NULL, NULL) == -EINVAL &&
	   mb_kmod_set_config(NULL, NULL, NULL, 0) == -EINVAL &&
	   mb_kmod_get_history(NULL, NULL, NULL) == -EINVAL &&
	   mb_kmod_subscribe(NULL) == -EINVAL &&
	   mb_kmod_get_fd(NULL) == -EINVAL &&
	   mb_kmod_recv(NULL, NULL) == -EINVAL,
	   "NULL handles: -EINVAL, no crash");
}

static void test_parse_state(void)
{
	struct mb_notification n;
	struct nl_msg *msg;
	int a;

	msg = state_msg(MEMBROKER_STATE_LOW, -1, false);
	memset(&n, 0xa5, sizeof(n));
	ok(mb_kmod_parse_state(nlmsg_hdr(msg), &n) == 0, "state parses");
	ok(n.state == MB_STATE_LOW && n.flags == MB_FLAG_VIRTUAL_LOW &&
	   n.seq == 42 && n.time_ns == 123456789ULL,
	   "state, flags, seq, timestamp");
	ok(n.available == 1ULL << 30 && n.total == 4ULL << 30 &&
	   n.low == 256ULL << 20 && n.high == 768ULL << 20,
	   "available, total, thresholds");
	ok(n.committed == 3ULL << 30 && n.commit_limit == 5ULL << 30 &&
	   n.reason == MEMBROKER_REASON_OOM,
	   "committed, commit limit, reason");
	ok(n.source == MB_SOURCE_KMOD && n.process_rss == 0,
	   "source kmod, no rss");
	nlmsg_free(msg);

	for (a = MEMBROKER_A_STATE; a <= MEMBROKER_A_REASON; a++) {
		msg = state_msg(MEMBROKER_STATE_HIGH, a, false);
		if (!ok(mb_kmod_parse_state(nlmsg_hdr(msg), &n) == -EBADMSG,
			"missing attribute %d: -EBADMSG", a))
			break;
		nlmsg_free(msg);
		msg = NULL;
	}
	nlmsg_free(msg);

	msg = state_msg(0, -1, false);
	ok(mb_kmod_parse_state(nlmsg_hdr(msg), &n) == -EBADMSG,
	   "state 0: -EBADMSG");
	nlmsg_free(msg);
	msg = state_msg(MEMBROKER_STATE_HIGH + 1, -1, false);
	ok(mb_kmod_parse_state(nlmsg_hdr(msg), &n) == -EBADMSG,
	   "state 4: -EBADMSG");
	nlmsg_free(msg);
	msg = state_msg(MEMBROKER_STATE_STEADY, -1, true);
	ok(mb_kmod_parse_state(nlmsg_hdr(msg), &n) == -EBADMSG,
	   "a u32 where a u64 belongs: -EBADMSG");
	nlmsg_free(msg);

	msg = nlmsg_alloc();
	nlmsg_put(msg, 0, 0, FAMILY, 0, 0);
	ok(mb_kmod_parse_state(nlmsg_hdr(msg), &n) == -EBADMSG,
	   "no genl header: -EBADMSG");
	ok(mb_kmod_parse_state(nlmsg_hdr(msg), NULL) == -EINVAL,
	   "NULL out: -EINVAL");
	nlmsg_free(msg);
}

static void test_parse_config(void)
{
	struct mb_kmod_config c;
	struct nl_msg *msg = nlmsg_alloc();
	struct nl_msg *part = nlmsg_alloc();

	genlmsg_put(msg, 0, 0, FAMILY, 0, 0, MEMBROKER_CMD_GET_CONFIG,
		    MEMBROKER_FAMILY_VERSION);
	nla_put_u64(msg, MEMBROKER_A_LOW_BYTES, 0);
	nla_put_u64(msg, MEMBROKER_A_HIGH_BYTES, 1ULL << 30);
	nla_put_u64(msg, MEMBROKER_A_HYSTERESIS_BYTES, 16ULL << 20);
	nla_put_u32(msg, MEMBROKER_A_POLL_MIN_MS, 5);
	nla_put_u32(msg, MEMBROKER_A_POLL_MAX_MS, 1000);
	nla_put_u32(msg, MEMBROKER_A_RATELIMIT_MS, 250);
	nla_put_u32(msg, MEMBROKER_A_VIRTUAL_LOW_PERCENT, 90);
	nla_put_u32(msg, MEMBROKER_A_HISTORY_SIZE, 64);
	ok(mb_kmod_parse_config(nlmsg_hdr(msg), &c) == 0 &&
	   c.low_bytes == 0 && c.high_bytes == 1ULL << 30 &&
	   c.hysteresis_bytes == 16ULL << 20 && c.poll_min_ms == 5 &&
	   c.poll_max_ms == 1000 && c.ratelimit_ms == 250 &&
	   c.virtual_low_percent == 90 && c.history_size == 64 &&
	   c.set_mask == 0, "config parses, every field");

	genlmsg_put(part, 0, 0, FAMILY, 0, 0, MEMBROKER_CMD_GET_CONFIG,
		    MEMBROKER_FAMILY_VERSION);
	nla_put_u64(part, MEMBROKER_A_LOW_BYTES, 0);
	ok(mb_kmod_parse_config(nlmsg_hdr(part), &c) == -EBADMSG,
	   "incomplete config: -EBADMSG");
	nlmsg_free(part);
	nlmsg_free(msg);
}

/* An NLMSG_ERROR the way netlink_ack() builds it */
static size_t error_msg(char *buf, size_t len, int error, bool capped,
			const char *text)
{
	struct nlmsghdr *nlh = (struct nlmsghdr *)buf;
	struct nlmsgerr *e;
	struct nlattr *a;
	size_t off, echo = capped ? 0 : 12;

	memset(buf, 0, len);
	nlh->nlmsg_type = NLMSG_ERROR;
	nlh->nlmsg_flags = NLM_F_ACK_TLVS | (capped ? NLM_F_CAPPED : 0);
	e = NLMSG_DATA(nlh);
	e->error = error;
	e->msg.nlmsg_len = NLMSG_LENGTH(echo);
	e->msg.nlmsg_type = FAMILY;
	/* the echoed request payload: bytes that look like an attribute */
	memset((char *)(e + 1), 0x01, echo);
	off = NLMSG_LENGTH(NLMSG_ALIGN(sizeof(*e) + echo));
	a = (struct nlattr *)(buf + off);
	a->nla_type = NLMSGERR_ATTR_OFFS;
	a->nla_len = NLA_HDRLEN + 4;
	off += NLA_ALIGN(a->nla_len);
	a = (struct nlattr *)(buf + off);
	a->nla_type = NLMSGERR_ATTR_MSG;
	a->nla_len = NLA_HDRLEN + strlen(text) + 1;
	memcpy((char *)a + NLA_HDRLEN, text, strlen(text) + 1);
	off += NLA_ALIGN(a->nla_len);
	nlh->nlmsg_len = off;
	return off;
}

static void test_extack(void)
{
	static const char text[] = "low threshold must be below high";
	char buf[512], out[64], small[8];

	error_msg(buf, sizeof(buf), -EINVAL, true, text);
	ok(mb_kmod_extack_msg((void *)buf, out, sizeof(out)) ==
	   strlen(text) && !strcmp(out, text), "capped ack: message found");
	error_msg(buf, sizeof(buf), -EINVAL, false, text);
	ok(mb_kmod_extack_msg((void *)buf, out, sizeof(out)) ==
	   strlen(text) && !strcmp(out, text),
	   "uncapped ack: message found after the echoed request");
	ok(mb_kmod_extack_msg((void *)buf, small, sizeof(small)) == 7 &&
	   !strcmp(small, "low thr"), "a short buffer truncates, with NUL");
	((struct nlmsghdr *)buf)->nlmsg_flags = 0;
	ok(mb_kmod_extack_msg((void *)buf, out, sizeof(out)) == 0 &&
	   out[0] == '\0', "no TLVs: empty message");
}

static void test_nlerr(void)
{
	ok(mb_kmod_nlerr(-NLE_PERM) == -EPERM &&
	   mb_kmod_nlerr(-NLE_INVAL) == -EINVAL &&
	   mb_kmod_nlerr(-NLE_OBJ_NOTFOUND) == -ENOENT &&
	   mb_kmod_nlerr(-NLE_NOMEM) == -ENOMEM &&
	   mb_kmod_nlerr(-NLE_AGAIN) == -EAGAIN &&
	   mb_kmod_nlerr(-NLE_NOACCESS) == -EACCES &&
	   mb_kmod_nlerr(0) == 0, "libnl codes map back to errno");
	ok(mb_kmod_nlerr(-9999) == -EIO, "unknown codes are -EIO");
}

static void test_feed(void)
{
	struct mb_notification cur = { 0 }, n = { 0 };
	bool have = false;

	n.seq = 10;
	ok(mb_src_kmod_feed(&cur, &have, 1, &n) == 0 && have &&
	   cur.seq == 10, "first notification taken");
	n.seq = 11;
	ok(mb_src_kmod_feed(&cur, &have, 1, &n) == 0 && cur.seq == 11,
	   "next seq taken, no resync");
	n.seq = 11;
	ok(mb_src_kmod_feed(&cur, &have, 1, &n) == 0 && cur.seq == 11,
	   "duplicate ignored");
	n.seq = 9;
	ok(mb_src_kmod_feed(&cur, &have, 1, &n) == 0 && cur.seq == 11,
	   "older than the state held: ignored");
	n.seq = 14;
	ok(mb_src_kmod_feed(&cur, &have, 1, &n) == 1 && cur.seq == 14,
	   "a gap: taken, and resync asked for");
	ok(mb_src_kmod_feed(&cur, &have, -ENOBUFS, NULL) == 1,
	   "ENOBUFS: resync");
	ok(mb_src_kmod_feed(&cur, &have, -EBADMSG, NULL) == 1,
	   "unreadable notification: resync");
	ok(mb_src_kmod_feed(&cur, &have, 0, NULL) == 0 && cur.seq == 14,
	   "nothing pending: nothing to do");

	/* a module loaded again numbers from 1, with later timestamps */
	cur.time_ns = 1000;
	n.seq = 13;
	n.time_ns = 900;
	ok(mb_src_kmod_feed(&cur, &have, 1, &n) == 0 && cur.seq == 14,
	   "lower seq, evaluated earlier: stale, ignored");
	n.seq = 14;
	n.time_ns = 1000;
	ok(mb_src_kmod_feed(&cur, &have, 1, &n) == 0,
	   "the NOTIFY of the evaluation a GET_STATE answered: ignored");
	n.seq = 1;
	n.time_ns = 2000;
	ok(mb_src_kmod_feed(&cur, &have, 1, &n) == 1 && cur.seq == 1 &&
	   cur.time_ns == 2000, "seq 1 evaluated later: restart, resync");
	n.seq = 2;
	n.time_ns = 2100;
	ok(mb_src_kmod_feed(&cur, &have, 1, &n) == 0 && cur.seq == 2,
	   "and the new module's next one follows on");
}

static struct nl_msg *ctrl_msg(uint8_t cmd, const char *name)
{
	struct nl_msg *msg = nlmsg_alloc();

	genlmsg_put(msg, 0, 0, GENL_ID_CTRL, 0, 0, cmd, 2);
	nla_put_u16(msg, CTRL_ATTR_FAMILY_ID, 0x21);
	if (name)
		nla_put_string(msg, CTRL_ATTR_FAMILY_NAME, name);
	return msg;
}

static void test_parse_ctrl(void)
{
	struct nl_msg *msg;

	msg = ctrl_msg(CTRL_CMD_DELFAMILY, MEMBROKER_FAMILY_NAME);
	ok(mb_kmod_parse_ctrl(nlmsg_hdr(msg)) == CTRL_CMD_DELFAMILY,
	   "DELFAMILY membroker: the module went away");
	nlmsg_free(msg);
	msg = ctrl_msg(CTRL_CMD_NEWFAMILY, MEMBROKER_FAMILY_NAME);
	ok(mb_kmod_parse_ctrl(nlmsg_hdr(msg)) == CTRL_CMD_NEWFAMILY,
	   "NEWFAMILY membroker: it is back");
	nlmsg_free(msg);
	msg = ctrl_msg(CTRL_CMD_DELFAMILY, "membroker2");
	ok(mb_kmod_parse_ctrl(nlmsg_hdr(msg)) == 0,
	   "another family's events are not ours");
	nlmsg_free(msg);
	msg = ctrl_msg(CTRL_CMD_NEWMCAST_GRP, MEMBROKER_FAMILY_NAME);
	ok(mb_kmod_parse_ctrl(nlmsg_hdr(msg)) == 0,
	   "group events are not family events");
	nlmsg_free(msg);
	msg = ctrl_msg(CTRL_CMD_DELFAMILY, NULL);
	ok(mb_kmod_parse_ctrl(nlmsg_hdr(msg)) == 0, "no name: not ours");
	nlmsg_free(msg);
	msg = state_msg(MEMBROKER_STATE_LOW, -1, false);
	ok(mb_kmod_parse_ctrl(nlmsg_hdr(msg)) == -EBADMSG,
	   "not an nlctrl message: -EBADMSG");
	nlmsg_free(msg);
}

/* ---- the kmod source on a scripted module ---- */

#define MIB	(1024ULL * 1024)

static struct {
	int recv[8];			/* results of recv, in order */
	struct mb_notification rn[8];	/* with these for 1 */
	int nrecv, irecv;
	struct mb_notification state;	/* what GET_STATE answers */
	int state_err;
	int refresh_err;
	int get_state_calls, refresh_calls;
	int efd;
	bool closed;
} m;

static int m_recv(void *h, struct mb_notification *n)
{
	uint64_t v;

	(void)h;
	if (m.irecv == m.nrecv) {
		/* drained: the fd goes quiet, as a socket would */
		if (m.efd >= 0 && read(m.efd, &v, sizeof(v)) < 0)
			v = 0;
		return 0;
	}
	*n = m.rn[m.irecv];
	return m.recv[m.irecv++];
}

static int m_get_state(void *h, struct mb_notification *n)
{
	(void)h;
	m.get_state_calls++;
	if (m.state_err)
		return m.state_err;
	*n = m.state;
	return 0;
}

static int m_refresh(void *h)
{
	(void)h;
	m.refresh_calls++;
	return m.refresh_err;
}

static int m_get_fd(void *h)
{
	(void)h;
	return m.efd;
}

static void m_close(void *h)
{
	(void)h;
	m.closed = true;
}

static const struct mb_src_kmod_io m_io = {
	.recv = m_recv,
	.get_state = m_get_state,
	.refresh = m_refresh,
	.get_fd = m_get_fd,
	.close = m_close,
};

static struct mb_notification kstate(uint64_t seq, uint64_t t,
				     uint32_t state, uint64_t avail)
{
	struct mb_notification n = {
		.seq = seq, .time_ns = t, .state = state,
		.source = MB_SOURCE_KMOD, .available = avail,
		.total = 4096 * MIB, .low = 256 * MIB, .high = 768 * MIB,
	};

	return n;
}

static void script(int r, struct mb_notification n)
{
	m.recv[m.nrecv] = r;
	m.rn[m.nrecv++] = n;
}

static char root[] = "/tmp/mb-test-kmod-XXXXXX";

static void meminfo(uint64_t avail_mib)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/proc/meminfo", root);
	f = fopen(path, "w");
	fprintf(f, "MemTotal: 4194304 kB\nMemAvailable: %llu kB\n"
		"CommitLimit: 1000 kB\nCommitted_AS: 10 kB\n",
		(unsigned long long)avail_mib * 1024);
	fclose(f);
}

/* dispatch the way the monitor does: *out starts as s->last */
static int disp(struct mb_source *s, bool refresh, struct mb_notification *n)
{
	int r;

	*n = s->last;
	r = refresh ? s->ops->refresh(s, n) : s->ops->dispatch(s, n);
	if (r >= 0)
		s->last = *n;
	return r;
}

static void test_source(void)
{
	struct mb_monitor_opts o = MB_OPTS(mb_monitor_opts, .root = root);
	struct mb_source s = { .ops = &mb_source_kmod_ops, .fd = -1,
			       .opts = &o };
	struct mb_notification n, none = { 0 };
	char path[PATH_MAX];
	int calls;

	if (!mkdtemp(root) ||
	    (snprintf(path, sizeof(path), "%s/proc", root),
	     mkdir(path, 0755))) {
		ok(0, "temporary root");
		return;
	}
	meminfo(100);
	memset(&m, 0, sizeof(m));
	m.efd = -1;
	m.state = kstate(50, 1000, MB_STATE_STEADY, 600 * MIB);
	ok(mb_src_kmod_attach(&s, &m_io, NULL) == 0 &&
	   m.get_state_calls == 1, "attach: subscribed, then GET_STATE");
	ok(disp(&s, false, &n) == 1 && n.seq == 50 &&
	   n.state == MB_STATE_STEADY && n.source == MB_SOURCE_KMOD,
	   "first reading: the GET_STATE reply");
	ok(disp(&s, false, &n) == 0 && s.ops->timeout_ms(&s) == -1,
	   "nothing pending: nothing new, no polling");

	script(1, kstate(51, 1100, MB_STATE_LOW, 200 * MIB));
	ok(disp(&s, false, &n) == 1 && n.seq == 51 &&
	   n.state == MB_STATE_LOW && m.get_state_calls == 1,
	   "the next NOTIFY: delivered, no resync");

	m.state = kstate(55, 1500, MB_STATE_HIGH, 900 * MIB);
	script(-ENOBUFS, none);
	ok(disp(&s, false, &n) == 1 && m.get_state_calls == 2 &&
	   n.seq == 55 && n.state == MB_STATE_HIGH,
	   "ENOBUFS: resynchronised with GET_STATE");
	script(1, kstate(54, 1400, MB_STATE_LOW, 1));
	ok(disp(&s, false, &n) == 0 && n.seq == 55 &&
	   m.get_state_calls == 2, "a NOTIFY older than that: dropped");

	/* the module was reloaded while we listened */
	m.state = kstate(2, 3100, MB_STATE_STEADY, 500 * MIB);
	script(1, kstate(1, 3000, MB_STATE_LOW, 1));
	ok(disp(&s, false, &n) == 1 && m.get_state_calls == 3 &&
	   n.seq == 2 && n.state == MB_STATE_STEADY,
	   "seq back to 1, later timestamp: a restart, resynchronised");
	script(1, kstate(3, 3200, MB_STATE_LOW, 150 * MIB));
	ok(disp(&s, false, &n) == 1 && n.seq == 3 &&
	   n.state == MB_STATE_LOW, "the new module's NOTIFYs count");

	/* LOW repeat: the module measures again */
	m.state = kstate(3, 3300, MB_STATE_LOW, 120 * MIB);
	ok(disp(&s, true, &n) == 0 && m.get_state_calls == 4 &&
	   n.available == 120 * MIB, "refresh: GET_STATE, fresh figures");

	/* the module goes away */
	script(-ENODEV, none);
	calls = m.get_state_calls;
	ok(disp(&s, false, &n) == 1 && n.source == MB_SOURCE_MEMINFO &&
	   n.state == MB_STATE_LOW && n.available == 100 * MIB &&
	   n.low == 256 * MIB && m.get_state_calls == calls,
	   "family removed: /proc/meminfo with the module's thresholds");
	ok(s.ops->timeout_ms(&s) >= 0 && s.ops->timeout_ms(&s) <= 1000,
	   "polled meanwhile, not waited for");
	meminfo(90);
	ok(disp(&s, false, &n) == 0 && n.available == 90 * MIB &&
	   n.source == MB_SOURCE_MEMINFO, "fresh figures, nothing new");
	m.refresh_err = -ENOENT;
	ok(disp(&s, true, &n) == 0 && m.refresh_calls == 1 &&
	   m.get_state_calls == calls && n.source == MB_SOURCE_MEMINFO,
	   "a refresh looks for the family, still gone: carry on");

	/* it is back: NEWFAMILY arrives as -ENOBUFS */
	m.refresh_err = 0;
	m.state = kstate(1, 5000, MB_STATE_HIGH, 900 * MIB);
	script(-ENOBUFS, none);
	ok(disp(&s, false, &n) == 1 && m.refresh_calls == 2 &&
	   n.source == MB_SOURCE_KMOD && n.seq == 1 &&
	   n.state == MB_STATE_HIGH, "back: group joined again, resynced");
	ok(s.ops->timeout_ms(&s) == -1, "and no polling any more");

	/* a reload we did not hear of, with the module gone by now */
	m.state_err = -ENOENT;
	script(-ENOBUFS, none);
	ok(disp(&s, false, &n) == 1 && n.source == MB_SOURCE_MEMINFO,
	   "GET_STATE finds no family: carry on from /proc/meminfo");
	m.state_err = -EIO;
	m.refresh_err = 0;
	ok(disp(&s, true, &n) == -EIO, "other errors are reported");
	s.ops->close(&s);
	ok(m.closed, "closed");

	memset(&m, 0, sizeof(m));
	m.state_err = -ENOENT;
	ok(mb_src_kmod_attach(&s, &m_io, NULL) == -ENOENT && m.closed,
	   "attach when the family is gone: -ENOENT, handle closed");
	unlink((snprintf(path, sizeof(path), "%s/proc/meminfo", root),
		path));
	rmdir((snprintf(path, sizeof(path), "%s/proc", root), path));
	rmdir(root);
}

/* ---- the same through a monitor ---- */

static int mk_open(struct mb_source *s)
{
	return mb_src_kmod_attach(s, &m_io, NULL);
}

struct seen {
	int calls;
	struct mb_notification last;
};

static void on_note(struct mb_monitor *mon, const struct mb_notification *n,
		    void *arg)
{
	struct seen *w = arg;

	(void)mon;
	w->calls++;
	w->last = *n;
}

static void poke(void)
{
	uint64_t one = 1;

	if (write(m.efd, &one, sizeof(one)) != sizeof(one))
		diag("eventfd write failed");
}

static void test_monitor(void)
{
	struct mb_monitor_opts o = MB_OPTS(mb_monitor_opts, .root = root,
					   .source = MB_SOURCE_KMOD,
					   .low_repeat_ms = UINT32_MAX);
	struct mb_source_ops ops = mb_source_kmod_ops;
	struct mb_notification none = { 0 };
	struct pollfd p = { .events = POLLIN };
	struct seen w = { 0 };
	struct mb_monitor *mon;
	char path[PATH_MAX];

	snprintf(root, sizeof(root), "/tmp/mb-test-kmod-XXXXXX");
	if (!mkdtemp(root) ||
	    (snprintf(path, sizeof(path), "%s/proc", root),
	     mkdir(path, 0755))) {
		ok(0, "temporary root");
		return;
	}
	meminfo(100);
	memset(&m, 0, sizeof(m));
	m.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	m.state = kstate(10, 1000, MB_STATE_STEADY, 600 * MIB);
	ops.open = mk_open;
	if (!ok(mb_monitor_new_ops(&mon, &o, &ops) == 0,
		"monitor on the kmod source, scripted module"))
		return;
	mb_monitor_subscribe(mon, on_note, &w);
	ok(mb_monitor_dispatch(mon) == 1 && w.last.seq == 10,
	   "initial state delivered");

	m.state = kstate(20, 2000, MB_STATE_LOW, 200 * MIB);
	script(-ENOBUFS, none);
	poke();
	ok(mb_monitor_dispatch(mon) == 1 && w.calls == 2 &&
	   w.last.seq == 20 && w.last.state == MB_STATE_LOW,
	   "overrun: the resynchronised state is delivered");

	script(-ENODEV, none);
	poke();
	ok(mb_monitor_dispatch(mon) == 1 && w.calls == 3 &&
	   w.last.source == MB_SOURCE_MEMINFO &&
	   w.last.available == 100 * MIB,
	   "module unloaded: subscribers hear meminfo speak");
	ok(mb_monitor_source(mon) == MB_SOURCE_KMOD,
	   "the monitor's source is still kmod");
	p.fd = mb_monitor_get_fd(mon);
	ok(poll(&p, 1, -1) == 1, "the fd wakes by itself: polling meanwhile");
	mb_monitor_dispatch(mon);

	m.state = kstate(1, 9000, MB_STATE_HIGH, 900 * MIB);
	script(-ENOBUFS, none);
	poke();
	ok(mb_monitor_dispatch(mon) >= 1 && w.last.source == MB_SOURCE_KMOD &&
	   w.last.seq == 1 && w.last.state == MB_STATE_HIGH,
	   "module loaded again: its state, seq from 1");
	mb_monitor_free(mon);
	ok(m.closed, "closed with the monitor");
	close(m.efd);
	unlink((snprintf(path, sizeof(path), "%s/proc/meminfo", root),
		path));
	rmdir((snprintf(path, sizeof(path), "%s/proc", root), path));
	rmdir(root);
}

int main(void)
{
	plan(0);
	test_open();
	test_parse_state();
	test_parse_config();
	test_extack();
	test_nlerr();
	test_feed();
	test_parse_ctrl();
	test_source();
	test_monitor();
	return done_testing();
}
