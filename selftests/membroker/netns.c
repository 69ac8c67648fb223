// SPDX-License-Identifier: GPL-2.0
/*
 * Notifications reach every network namespace, whatever any listener
 * anywhere does.  Subscribing needs no privilege, so a listener that
 * subscribes with NETLINK_BROADCAST_ERROR and the smallest SO_RCVBUF and
 * then never reads must cost nobody else a notification: not the other
 * listeners of its own namespace, not those of any other namespace.
 *
 * Three namespaces (the initial one, then A, then B: the kernel walks
 * them in that order) each get a forked child with a counting listener;
 * in each round the hostile listener sits in another of them.  The test
 * then sends SET_CONFIG, which always notifies (reason CONFIG) before it
 * is acknowledged, so once the last ack is in every delivery has been
 * made or refused, and each child counts what its socket holds.  The
 * variants run the listeners as root, as nobody, and as nobody in a user
 * namespace of its own.
 *
 * With init_netns_only=1 the family exists in the initial namespace only:
 * a listener elsewhere gets nothing even with the group id in hand, and
 * requests there find no family.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <linux/netlink.h>

#include "mb_test.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK	270
#endif

#define NOBODY		65534
#define NOTIFIES	12	/* as in the report of the defect */
#define NNS		3	/* initial namespace, A, B */

static const char *const ns_name[NNS] = { "init", "A", "B" };

/*
 * unshare(CLONE_NEWUSER) wants a single-threaded caller, and TSan's
 * runtime starts a thread of its own again in every forked child.
 */
static const char *const userns_unavailable =
#ifdef __SANITIZE_THREAD__
	"TSan's runtime thread rules out unshare(CLONE_NEWUSER)";
#else
	NULL;
#endif

/* Where a child stopped, when it did */
enum step {
	STEP_NONE,
	STEP_DROP,		/* setgroups/setgid/setuid nobody */
	STEP_USERNS,		/* unshare(CLONE_NEWUSER | CLONE_NEWNET) */
	STEP_NETNS,		/* unshare(CLONE_NEWNET) */
	STEP_OPEN,		/* the counting listener */
	STEP_SUBSCRIBE,
	STEP_HOSTILE,		/* the never-reading listener */
	STEP_FAMILY,		/* init_only: probes in the other namespace */
};

/**
 * struct ns_report - what a child tells the test
 * @step:	STEP_NONE, or where it failed
 * @err:	-errno of that failure
 * @count:	NOTIFY messages with reason CONFIG and a seq in the range
 * @other:	other NOTIFY messages in the range
 * @enobufs:	the counting socket overflowed (it must not)
 * @overrun:	the hostile listener was refused a notification: it did
 *		what the test is about
 * @resolve:	init_only: resolving the family (0 or -errno)
 * @get_state:	init_only: GET_STATE by the family id (0 or -errno)
 * @bind:	init_only: subscribing by the group id (0 or -errno)
 */
struct ns_report {
	int step;
	int err;
	unsigned int count;
	unsigned int other;
	int enobufs;
	int overrun;
	int resolve;
	int get_state;
	int bind;
};

/* Sequence numbers of the notifications the test caused */
struct ns_range {
	uint64_t first;
	uint64_t last;
};

enum who {
	WHO_ROOT,	/* listeners as root */
	WHO_NOBODY,	/* namespaces made by root, listeners as nobody */
	WHO_USERNS,	/* nobody making a user and a network namespace */
};

struct child {
	pid_t pid;
	int to[2];	/* test -> child: the range, EOF means exit */
	int from[2];	/* child -> test: ready, then the report */
};

static int drop_to_nobody(void)
{
	if (setgroups(0, NULL) || setgid(NOBODY) || setuid(NOBODY))
		return -errno;
	return 0;
}

/*
 * The hostile listener: asks for broadcast errors, takes the smallest
 * receive buffer the kernel allows and never reads.  Once a notification
 * or two fill it, every further delivery to it fails.
 */
static int hostile_listener(int group)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	int zero = 0, one = 1, fd;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	if (fd < 0)
		return -errno;
	/*
	 * Bound, so it has a port id: an unbound socket's is 0, that of the
	 * kernel, which sends the notifications and so is left out.
	 */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &zero, sizeof(zero)) ||
	    setsockopt(fd, SOL_NETLINK, NETLINK_BROADCAST_ERROR, &one,
		       sizeof(one)) ||
	    setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group,
		       sizeof(group))) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static bool ns_send(int fd, const void *p, size_t len)
{
	return write(fd, p, len) == (ssize_t)len;
}

static bool ns_recv(int fd, void *p, size_t len)
{
	return read(fd, p, len) == (ssize_t)len;
}

/* Count what @nl holds now; nothing more arrives once the range is known */
static void count_notifications(struct mb_nl *nl, const struct ns_range *r,
				struct ns_report *rep)
{
	struct mb_state st;
	int err;

	for (;;) {
		err = mb_nl_recv_notify(nl, &st, 0);
		if (err == -ENOBUFS) {
			rep->enobufs = 1;
			continue;
		}
		if (err)
			break;
		if (st.seq < r->first || st.seq > r->last)
			continue;
		if (st.reason == MEMBROKER_REASON_CONFIG)
			rep->count++;
		else
			rep->other++;
	}
}

/*
 * A child: enter namespace @idx (0 is the initial one) as @who, listen,
 * maybe put the hostile listener next to it, say it is ready, and report
 * what arrived once the test sends the range.
 */
static int __attribute__((noreturn))
ns_child(struct child *c, int idx, enum who who, bool hostile)
{
	struct ns_report rep = { 0 };
	struct ns_range r;
	struct mb_nl nl;
	int hfd = -1, err;

	close(c->to[1]);
	close(c->from[0]);
	prctl(PR_SET_PDEATHSIG, SIGKILL);

	if (who == WHO_USERNS) {
		err = drop_to_nobody();
		if (err) {
			rep.step = STEP_DROP;
			goto fail;
		}
		if (idx && unshare(CLONE_NEWUSER | CLONE_NEWNET)) {
			err = -errno;
			rep.step = STEP_USERNS;
			goto fail;
		}
	} else {
		if (idx && unshare(CLONE_NEWNET)) {
			err = -errno;
			rep.step = STEP_NETNS;
			goto fail;
		}
		if (who == WHO_NOBODY) {
			err = drop_to_nobody();
			if (err) {
				rep.step = STEP_DROP;
				goto fail;
			}
		}
	}

	err = mb_nl_open(&nl);
	if (err) {
		rep.step = STEP_OPEN;
		goto fail;
	}
	err = mb_nl_subscribe(&nl);
	if (err) {
		rep.step = STEP_SUBSCRIBE;
		goto fail;
	}
	if (hostile) {
		hfd = hostile_listener(nl.group);
		if (hfd < 0) {
			err = hfd;
			rep.step = STEP_HOSTILE;
			goto fail;
		}
	}
	if (!ns_send(c->from[1], &rep, sizeof(rep)))
		_exit(1);
	if (!ns_recv(c->to[0], &r, sizeof(r)))
		_exit(0);
	count_notifications(&nl, &r, &rep);
	if (hfd >= 0) {
		socklen_t len = sizeof(err);

		/* netlink_overrun() left ENOBUFS for it to find */
		if (!getsockopt(hfd, SOL_SOCKET, SO_ERROR, &err, &len))
			rep.overrun = err == ENOBUFS;
	}
	ns_send(c->from[1], &rep, sizeof(rep));
	_exit(0);

fail:
	rep.err = err;
	ns_send(c->from[1], &rep, sizeof(rep));
	_exit(0);
}

static void child_reap(struct child *c)
{
	if (c->to[1] >= 0)
		close(c->to[1]);
	if (c->from[0] >= 0)
		close(c->from[0]);
	c->to[1] = c->from[0] = -1;
	if (c->pid > 0) {
		kill(c->pid, SIGKILL);
		waitpid(c->pid, NULL, 0);
	}
	c->pid = -1;
}

/* Fork a child running @fn; its ready report lands in @rep. */
static int child_start(struct child *c, struct ns_report *rep,
		       void (*fn)(struct child *c, void *arg), void *arg)
{
	c->pid = -1;
	c->to[1] = c->from[0] = -1;
	if (pipe2(c->to, O_CLOEXEC))
		return -errno;
	if (pipe2(c->from, O_CLOEXEC)) {
		close(c->to[0]);
		close(c->to[1]);
		return -errno;
	}
	fflush(NULL);
	c->pid = fork();
	if (c->pid < 0)
		return -errno;
	if (c->pid == 0)
		fn(c, arg);
	close(c->to[0]);
	close(c->from[1]);
	if (!ns_recv(c->from[0], rep, sizeof(*rep)))
		return -EPIPE;
	return 0;
}

/* The range of notifications @n SET_CONFIGs cause, from @nl (root) */
static int notify_n(struct mb_nl *nl, int n, struct ns_range *r)
{
	struct mb_config cfg, set = { 0 };
	struct mb_state st;
	int i, err;

	err = mb_nl_get_config(nl, &cfg);
	if (err)
		return err;
	/* Changes nothing, and notifies all the same */
	set.have = 1ULL << MEMBROKER_A_RATELIMIT_MS;
	set.ratelimit_ms = cfg.ratelimit_ms;

	err = mb_nl_get_state(nl, &st);
	if (err)
		return err;
	r->first = st.seq + 1;
	for (i = 0; i < n; i++) {
		err = mb_nl_set_config(nl, &set);
		if (err)
			return err;
	}
	err = mb_nl_get_state(nl, &st);
	if (err)
		return err;
	r->last = st.seq;
	return 0;
}

struct round_arg {
	int idx;
	enum who who;
	bool hostile;
};

static void round_child(struct child *c, void *p)
{
	const struct round_arg *a = p;

	ns_child(c, a->idx, a->who, a->hostile);
}

FIXTURE(netns) {
	struct mb_nl nl;
};

FIXTURE_VARIANT(netns) {
	enum who who;
};

FIXTURE_VARIANT_ADD(netns, root) {
	.who = WHO_ROOT,
};

FIXTURE_VARIANT_ADD(netns, nobody) {
	.who = WHO_NOBODY,
};

FIXTURE_VARIANT_ADD(netns, userns) {
	.who = WHO_USERNS,
};

FIXTURE_SETUP(netns)
{
	MB_OPEN_OR_SKIP(&self->nl);
}

FIXTURE_TEARDOWN(netns)
{
	mb_nl_close(&self->nl);
}

/*
 * One round: a counting listener in each namespace, the hostile one in
 * namespace @hostile (-1: none).  Fills @count; returns false with
 * *skip set if the variant cannot run here.
 */
static void one_round(struct __test_metadata *_metadata,
		      FIXTURE_DATA(netns) *self, enum who who, int hostile,
		      unsigned int count[NNS], bool *skip)
{
	struct child c[NNS];
	struct ns_report rep;
	struct ns_range r;
	int i, err;

	for (i = 0; i < NNS; i++)
		c[i].pid = c[i].to[1] = c[i].from[0] = -1;
	*skip = false;

	/* One after the other: A must exist before B, in the kernel's list */
	for (i = 0; i < NNS; i++) {
		struct round_arg a = {
			.idx = i, .who = who, .hostile = i == hostile,
		};

		err = child_start(&c[i], &rep, round_child, &a);
		if (err || rep.step != STEP_NONE)
			break;
	}
	if (i < NNS) {
		for (i = 0; i < NNS; i++)
			child_reap(&c[i]);
		if (!err && rep.step == STEP_USERNS) {
			*skip = true;
			TH_LOG("no unprivileged user namespace here: %s",
			       strerror(-rep.err));
			return;
		}
		ASSERT_EQ(0, err) TH_LOG("starting a child: %s",
					 strerror(-err));
		ASSERT_EQ(STEP_NONE, rep.step)
			TH_LOG("child setup step %d: %s", rep.step,
			       strerror(-rep.err));
	}

	err = notify_n(&self->nl, NOTIFIES, &r);
	EXPECT_EQ(0, err) TH_LOG("SET_CONFIG: %s", strerror(-err));

	for (i = 0; i < NNS; i++) {
		count[i] = 0;
		if (err || !ns_send(c[i].to[1], &r, sizeof(r)) ||
		    !ns_recv(c[i].from[0], &rep, sizeof(rep))) {
			EXPECT_EQ(0, 1) TH_LOG("no report from %s", ns_name[i]);
			continue;
		}
		count[i] = rep.count;
		EXPECT_EQ(0, rep.enobufs)
			TH_LOG("the counting listener in %s overflowed",
			       ns_name[i]);
		if (i == hostile) {
			EXPECT_EQ(1, rep.overrun)
				TH_LOG("the hostile listener in %s took them all",
				       ns_name[i]);
		}
	}
	for (i = 0; i < NNS; i++)
		child_reap(&c[i]);
}

/* "init", "A", "B" for 0..2, "none" for -1 */
static const char *where(int idx)
{
	return idx >= 0 && idx < NNS ? ns_name[idx] : "none";
}

TEST_F(netns, hostile_listener_silences_nobody)
{
	int hostile, i;

	if (variant->who == WHO_USERNS && userns_unavailable)
		SKIP(return, "%s", userns_unavailable);
	for (hostile = -1; hostile < NNS; hostile++) {
		unsigned int count[NNS];
		bool skip;

		one_round(_metadata, self, variant->who, hostile, count,
			  &skip);
		if (skip)
			SKIP(return, "unprivileged user namespaces disabled");
		TH_LOG("hostile listener %-4s: init %2u/%d, A %2u/%d, B %2u/%d",
		       where(hostile), count[0], NOTIFIES,
		       count[1], NOTIFIES, count[2], NOTIFIES);
		/* Braces: EXPECT_EQ() and its TH_LOG() are two statements */
		for (i = 0; i < NNS; i++) {
			EXPECT_EQ(NOTIFIES, count[i])
				TH_LOG("namespace %s, hostile listener %s",
				       where(i), where(hostile));
		}
	}
}

/*
 * The root of a container, with every capability in a user namespace of
 * its own, may read and listen but not configure: SET_CONFIG wants
 * CAP_NET_ADMIN in the initial user namespace.
 */
struct root_report {
	int unshare;	/* 0 or -errno */
	int caps;	/* CapEff is not empty */
	int open;
	int get_state;
	int subscribe;
	int set_config;
};

static bool caps_full(void)
{
	unsigned long long eff = 0;
	char line[128];
	FILE *f;

	f = fopen("/proc/self/status", "re");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		sscanf(line, "CapEff: %llx", &eff);
	fclose(f);
	/* CAP_NET_ADMIN (12) among them */
	return eff & (1ULL << 12);
}

static void container_root(int fd, uint32_t ratelimit_ms)
{
	struct root_report rep = { 0 };
	struct mb_config set = { 0 };
	struct mb_state st;
	struct mb_nl nl;

	if (drop_to_nobody() || unshare(CLONE_NEWUSER | CLONE_NEWNET)) {
		rep.unshare = -errno;
		goto out;
	}
	rep.caps = caps_full();
	rep.open = mb_nl_open(&nl);
	if (rep.open)
		goto out;
	rep.get_state = mb_nl_get_state(&nl, &st);
	rep.subscribe = mb_nl_subscribe(&nl);
	set.have = 1ULL << MEMBROKER_A_RATELIMIT_MS;
	set.ratelimit_ms = ratelimit_ms;
	rep.set_config = mb_nl_set_config(&nl, &set);
	mb_nl_close(&nl);
out:
	ns_send(fd, &rep, sizeof(rep));
}

TEST(container_root_cannot_configure)
{
	struct root_report rep;
	struct mb_config cfg;
	int p[2], status, err;
	struct mb_nl nl;
	pid_t pid;

	if (userns_unavailable)
		SKIP(return, "%s", userns_unavailable);
	err = mb_nl_open(&nl);
	if (err == -ENOENT)
		SKIP(return, "family " MEMBROKER_FAMILY_NAME " not registered");
	ASSERT_EQ(0, err);
	err = mb_nl_get_config(&nl, &cfg);
	mb_nl_close(&nl);
	ASSERT_EQ(0, err);
	ASSERT_EQ(0, pipe2(p, O_CLOEXEC));
	fflush(NULL);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		close(p[0]);
		container_root(p[1], cfg.ratelimit_ms);
		_exit(0);
	}
	close(p[1]);
	ASSERT_TRUE(ns_recv(p[0], &rep, sizeof(rep)));
	close(p[0]);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	if (rep.unshare)
		SKIP(return, "no unprivileged user namespace here: %s",
		     strerror(-rep.unshare));
	ASSERT_TRUE(rep.caps) TH_LOG("no CAP_NET_ADMIN in its namespace");
	ASSERT_EQ(0, rep.open);
	EXPECT_EQ(0, rep.get_state);
	EXPECT_EQ(0, rep.subscribe);
	EXPECT_EQ(-EPERM, rep.set_config);
}

/* init_netns_only=1: what a container sees */

static int load_with(const char *params)
{
	int err;

	err = mb_module_unload();
	if (err)
		return err;
	return mb_module_load_params(params);
}

/*
 * Resolve the family here, then move to a new network namespace and try
 * what a container would: resolve it, ask for the state by the id, and
 * subscribe by the group id; then count what arrives.
 */
static void __attribute__((noreturn))
init_only_child(struct child *c, void *p)
{
	struct ns_report rep = { 0 };
	struct mb_nl init, nl;
	struct ns_range r;
	struct mb_state st;
	int fam, group, err;

	(void)p;
	close(c->to[1]);
	close(c->from[0]);
	prctl(PR_SET_PDEATHSIG, SIGKILL);

	err = mb_nl_open(&init);
	if (err) {
		rep.step = STEP_OPEN;
		goto fail;
	}
	fam = init.family;
	group = init.group;
	mb_nl_close(&init);

	if (unshare(CLONE_NEWNET)) {
		err = -errno;
		rep.step = STEP_NETNS;
		goto fail;
	}
	/* The family is not there: mb_nl_open() resolves it */
	rep.resolve = mb_nl_open(&nl);
	if (!rep.resolve) {
		mb_nl_close(&nl);
		rep.step = STEP_FAMILY;
		err = -EEXIST;
		goto fail;
	}
	/* A socket that knows the ids all the same */
	err = mb_nl_connect(&nl);
	if (err) {
		rep.step = STEP_OPEN;
		goto fail;
	}
	nl.family = fam;
	nl.group = group;
	rep.bind = mb_nl_subscribe(&nl);
	rep.get_state = mb_nl_get_state(&nl, &st);

	if (!ns_send(c->from[1], &rep, sizeof(rep)))
		_exit(1);
	if (!ns_recv(c->to[0], &r, sizeof(r)))
		_exit(0);
	count_notifications(&nl, &r, &rep);
	ns_send(c->from[1], &rep, sizeof(rep));
	_exit(0);

fail:
	rep.err = err;
	ns_send(c->from[1], &rep, sizeof(rep));
	_exit(0);
}

FIXTURE(init_only) {
	struct mb_nl nl;
	struct mb_nl mc;
};

FIXTURE_SETUP(init_only)
{
	int err;

	if (!getenv("MB_MODULE"))
		MB_SKIP_SETUP("MB_MODULE not set: cannot reload");
	self->nl.sk = self->mc.sk = NULL;
	self->nl.buf = self->mc.buf = NULL;
	err = load_with("init_netns_only=1");
	ASSERT_EQ(0, err) TH_LOG("insmod membroker init_netns_only=1 failed");
	ASSERT_EQ(0, mb_nl_open(&self->nl));
	ASSERT_EQ(0, mb_nl_open(&self->mc));
	ASSERT_EQ(0, mb_nl_subscribe(&self->mc));
}

FIXTURE_TEARDOWN(init_only)
{
	mb_nl_close(&self->mc);
	mb_nl_close(&self->nl);
	/* Leave the module as the VM loaded it, without parameters */
	mb_module_unload();
	mb_module_load();
}

TEST_F(init_only, other_namespaces_get_nothing)
{
	struct ns_report rep;
	struct child c;
	struct ns_range r;
	unsigned int got = 0;
	char v[8];
	int err;

	ASSERT_EQ(0, mb_module_param("init_netns_only", v, sizeof(v)));
	EXPECT_STREQ("Y", v);

	ASSERT_EQ(0, child_start(&c, &rep, init_only_child, NULL));
	ASSERT_EQ(STEP_NONE, rep.step)
		TH_LOG("child step %d: %s", rep.step, strerror(-rep.err));
	/* A container finds no family, by name or by id */
	EXPECT_EQ(-ENOENT, rep.resolve);
	EXPECT_EQ(-ENOENT, rep.get_state);
	TH_LOG("in a new namespace: resolve %d, GET_STATE %d, subscribe %d",
	       rep.resolve, rep.get_state, rep.bind);

	err = notify_n(&self->nl, NOTIFIES, &r);
	ASSERT_EQ(0, err);
	ASSERT_TRUE(ns_send(c.to[1], &r, sizeof(r)));
	ASSERT_TRUE(ns_recv(c.from[0], &rep, sizeof(rep)));
	child_reap(&c);

	/* The initial namespace still hears every one */
	for (;;) {
		struct mb_state st;

		err = mb_nl_recv_notify(&self->mc, &st, 0);
		if (err)
			break;
		if (st.seq >= r.first && st.seq <= r.last &&
		    st.reason == MEMBROKER_REASON_CONFIG)
			got++;
	}
	EXPECT_EQ(-ETIMEDOUT, err);
	TH_LOG("init %u/%d, new namespace %u/%d", got, NOTIFIES,
	       rep.count + rep.other, NOTIFIES);
	EXPECT_EQ(NOTIFIES, got);
	EXPECT_EQ(0, rep.count + rep.other);
}

TEST_HARNESS_MAIN
