// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The kernel module client without the module: opening fails cleanly
 * with -ENOENT, state/config messages built here with libnl are parsed
 * field by field (and rejected when incomplete or malformed), the extack
 * text is found in error messages, libnl's codes map back to errno, and
 * the kmod source's sequence logic asks for a resync exactly when
 * notifications were lost.  The real module is exercised in the VM
 * (selftests/lib).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

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
	return done_testing();
}
