// SPDX-License-Identifier: GPL-2.0
/*
 * Changing the configuration needs CAP_NET_ADMIN; reading the state does
 * not.  A child drops to nobody (uid/gid 65534, no groups, no caps) and
 * reports back what the kernel let it do, and in which order it refuses
 * an unprivileged SET_CONFIG with something else wrong.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include <netlink/msg.h>

#include "mb_test.h"

#define NOBODY	65534

/* What the unprivileged child saw, one bit per broken promise. */
enum {
	CHILD_DROP_FAILED	= 1 << 0,
	CHILD_STILL_CAPABLE	= 1 << 1,
	CHILD_OPEN_FAILED	= 1 << 2,
	CHILD_SET_NOT_EPERM	= 1 << 3,
	CHILD_GET_STATE_FAILED	= 1 << 4,
	CHILD_GET_CONFIG_FAILED	= 1 << 5,
	CHILD_BAD_SET_NOT_EPERM	= 1 << 6,
};

FIXTURE(perm) {
	struct mb_nl nl;
	struct mb_config saved;
	struct mb_state st;
};

FIXTURE_SETUP(perm)
{
	MB_OPEN_OR_SKIP(&self->nl);
	ASSERT_EQ(0, mb_nl_get_config(&self->nl, &self->saved));
	ASSERT_EQ(0, mb_nl_get_state(&self->nl, &self->st));
}

FIXTURE_TEARDOWN(perm)
{
	mb_nl_close(&self->nl);
}

/* True when /proc/self/status shows no effective capability. */
static bool caps_gone(void)
{
	char line[128];
	bool gone = false;
	FILE *f;

	f = fopen("/proc/self/status", "re");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long eff;

		if (sscanf(line, "CapEff: %llx", &eff) == 1)
			gone = eff == 0;
	}
	fclose(f);
	return gone;
}

static int unprivileged_child(const struct mb_state *st)
{
	struct mb_config cfg = { 0 };
	struct mb_state got;
	struct mb_config c;
	struct mb_nl nl;
	int ret = 0, err;

	if (setgroups(0, NULL) || setgid(NOBODY) || setuid(NOBODY))
		return CHILD_DROP_FAILED;
	if (!caps_gone())
		ret |= CHILD_STILL_CAPABLE;
	if (mb_nl_open(&nl))
		return ret | CHILD_OPEN_FAILED;

	cfg.have = 1ULL << MEMBROKER_A_LOW_BYTES;
	cfg.low = st->low + 4 * MIB;
	err = mb_nl_set_config(&nl, &cfg);
	if (err != -EPERM) {
		fprintf(stderr, "# unprivileged SET_CONFIG: %s\n",
			strerror(-err));
		ret |= CHILD_SET_NOT_EPERM;
	}
	/* Privilege comes first: no validation result leaks to nobody */
	cfg.have |= 1ULL << MEMBROKER_A_HIGH_BYTES;
	cfg.high = cfg.low;
	err = mb_nl_set_config(&nl, &cfg);
	if (err != -EPERM) {
		fprintf(stderr, "# unprivileged bad SET_CONFIG: %s\n",
			strerror(-err));
		ret |= CHILD_BAD_SET_NOT_EPERM;
	}
	err = mb_nl_get_state(&nl, &got);
	if (err || (got.have & MB_STATE_ATTRS) != MB_STATE_ATTRS)
		ret |= CHILD_GET_STATE_FAILED;
	if (mb_nl_get_config(&nl, &c))
		ret |= CHILD_GET_CONFIG_FAILED;
	mb_nl_close(&nl);
	return ret;
}

TEST_F(perm, unprivileged_can_read_not_write)
{
	struct mb_config after;
	struct mb_state st;
	int status;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(unprivileged_child(&self->st));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status) & CHILD_DROP_FAILED);
	EXPECT_EQ(0, WEXITSTATUS(status) & CHILD_STILL_CAPABLE);
	EXPECT_EQ(0, WEXITSTATUS(status) & CHILD_OPEN_FAILED);
	EXPECT_EQ(0, WEXITSTATUS(status) & CHILD_SET_NOT_EPERM);
	EXPECT_EQ(0, WEXITSTATUS(status) & CHILD_BAD_SET_NOT_EPERM);
	EXPECT_EQ(0, WEXITSTATUS(status) & CHILD_GET_STATE_FAILED);
	EXPECT_EQ(0, WEXITSTATUS(status) & CHILD_GET_CONFIG_FAILED);

	ASSERT_EQ(0, mb_nl_get_config(&self->nl, &after));
	EXPECT_TRUE(mb_config_equal(&self->saved, &after));
	ASSERT_EQ(0, mb_nl_get_state(&self->nl, &st));
	EXPECT_EQ(self->st.low, st.low);
}

/*
 * The order in which an unprivileged SET_CONFIG is refused: genetlink
 * checks its header and looks the command up before it checks privilege,
 * and privilege before the attributes.  Each case is one request with one
 * thing wrong (or nothing), sent by nobody; the uapi header promises the
 * answer of each.
 */
enum order_case {
	OC_VALID,		/* -EPERM */
	OC_BAD_ATTR,		/* LOW_BYTES of 4 bytes: -EPERM */
	OC_READ_ONLY,		/* carries STATE: -EPERM */
	OC_BAD_VALUE,		/* LOW_BYTES above MemTotal: -EPERM */
	OC_RESERVED,		/* genlmsghdr.reserved 1: -EINVAL */
	OC_FLAGS,		/* NLM_F_REPLACE: -EINVAL */
	OC_SHORT,		/* shorter than the genetlink header: -EINVAL */
	OC_DUMP,		/* NLM_F_DUMP: -EOPNOTSUPP (6.1: -EPERM) */
	OC_UNKNOWN_CMD,		/* -EOPNOTSUPP */
	OC_NO_REQUEST,		/* no NLM_F_REQUEST: ignored, acked with 0 */
	OC_CASES
};

static const char *const oc_name[OC_CASES] = {
	"valid", "4-byte LOW_BYTES", "read-only STATE", "LOW_BYTES > total",
	"reserved != 0", "NLM_F_REPLACE", "short header", "NLM_F_DUMP",
	"unknown command", "no NLM_F_REQUEST",
};

/* Kernels before 6.2 look a command up without its kind (do or dump) */
static bool kernel_before_6_2(void)
{
	struct utsname u;
	int maj, min;

	if (uname(&u) || sscanf(u.release, "%d.%d", &maj, &min) != 2)
		return false;
	return maj < 6 || (maj == 6 && min < 2);
}

static int order_expected(enum order_case c)
{
	switch (c) {
	case OC_RESERVED:
	case OC_FLAGS:
	case OC_SHORT:
		return -EINVAL;
	case OC_DUMP:
		return kernel_before_6_2() ? -EPERM : -EOPNOTSUPP;
	case OC_UNKNOWN_CMD:
		return -EOPNOTSUPP;
	case OC_NO_REQUEST:
		return 0;
	default:
		return -EPERM;
	}
}

static int order_request(struct mb_nl *nl, enum order_case c, uint64_t low)
{
	uint8_t cmd = c == OC_UNKNOWN_CMD ? MEMBROKER_CMD_MAX + 1 :
					   MEMBROKER_CMD_SET_CONFIG;
	struct nl_msg *msg = mb_nl_msg(nl, cmd, c == OC_DUMP ? NLM_F_DUMP : 0);
	struct genlmsghdr *g;
	struct nlmsghdr *nlh;
	uint32_t v32 = 1;
	int err;

	if (!msg)
		return -ENOMEM;
	if (c == OC_BAD_ATTR)
		err = nla_put(msg, MEMBROKER_A_LOW_BYTES, sizeof(v32), &v32);
	else
		err = nla_put_u64(msg, MEMBROKER_A_LOW_BYTES, low);
	if (!err && c == OC_READ_ONLY)
		err = nla_put_u32(msg, MEMBROKER_A_STATE, MEMBROKER_STATE_LOW);
	if (err) {
		nlmsg_free(msg);
		return -EMSGSIZE;
	}
	/* Port, sequence, NLM_F_REQUEST and NLM_F_ACK; then spoil it */
	nl_complete_msg(nl->sk, msg);
	nlh = nlmsg_hdr(msg);
	g = nlmsg_data(nlh);
	switch (c) {
	case OC_RESERVED:
		g->reserved = 1;
		break;
	case OC_FLAGS:
		nlh->nlmsg_flags |= NLM_F_REPLACE;
		break;
	case OC_SHORT:
		nlh->nlmsg_len = NLMSG_HDRLEN + GENL_HDRLEN / 2;
		break;
	case OC_NO_REQUEST:
		nlh->nlmsg_flags &= ~NLM_F_REQUEST;
		break;
	default:
		break;
	}
	return mb_nl_do_raw(nl, msg);
}

/* nobody sends every case and writes the answers to @fd */
static int order_child(int fd, const struct mb_state *st)
{
	int got[OC_CASES], i;
	struct mb_nl nl;

	if (setgroups(0, NULL) || setgid(NOBODY) || setuid(NOBODY) ||
	    !caps_gone())
		return 1;
	if (mb_nl_open(&nl))
		return 2;
	for (i = 0; i < OC_CASES; i++) {
		uint64_t low = st->low + 4 * MIB;

		if (i == OC_BAD_VALUE)
			low = st->total + MIB;
		got[i] = order_request(&nl, i, low);
	}
	mb_nl_close(&nl);
	return write(fd, got, sizeof(got)) == sizeof(got) ? 0 : 3;
}

TEST_F(perm, refusal_order)
{
	struct mb_config after;
	int got[OC_CASES], p[2], status, i;
	pid_t pid;

	ASSERT_EQ(0, pipe2(p, O_CLOEXEC));
	fflush(NULL);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		close(p[0]);
		_exit(order_child(p[1], &self->st));
	}
	close(p[1]);
	ASSERT_EQ(sizeof(got), read(p[0], got, sizeof(got)));
	close(p[0]);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	for (i = 0; i < OC_CASES; i++) {
		TH_LOG("unprivileged SET_CONFIG, %-17s -> %s", oc_name[i],
		       got[i] ? strerror(-got[i]) : "0");
		EXPECT_EQ(order_expected(i), got[i]);
	}
	/* And none of it changed anything */
	ASSERT_EQ(0, mb_nl_get_config(&self->nl, &after));
	EXPECT_TRUE(mb_config_equal(&self->saved, &after));
}

TEST_HARNESS_MAIN
