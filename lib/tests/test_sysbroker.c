// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The system broker's client (sysbroker.c), against a daemon played by
 * the test on a private socket ($MEMBROKERD_SOCKET): a monitor without
 * brokers does not look for the daemon; with one it registers, pools and
 * clerks with names, priorities, bytes and bounds; charging sends nothing
 * (reports are batched, from the dispatch); a POLL is answered with fresh
 * figures; an ASK shrinks the clerk named, by at least what was asked
 * (one entry for an ask smaller than an entry), never below the pool's
 * minimum, holds it there (its target), and is recorded in the broker's
 * ring; an unknown clerk is refused; a cap is raised and lifted; while
 * the daemon is in charge a LOW takes no local step, but it does once the
 * daemon is silent, for a cgroup LOW, after the daemon went away (caps
 * gone too) and in a forked child; the monitor reconnects and registers
 * again; a freed broker is reported gone; and $MEMBROKER_SYSTEM_BROKER=0
 * turns it all off.
 *
 * Every wait is bounded by a guard that only stops a hung test.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "membroker.h"
#include "protocol.h"
#include "tap.h"

#define GUARD_MS	20000	/* a hang guard, not a time limit */
#define HOUR_MS		3600000U

static char sock_path[108];
static int lfd = -1;

/* ---- the daemon's side ---- */

static void td_listen(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	snprintf(sock_path, sizeof(sock_path), "/tmp/mb-sys-%d.sock",
		 (int)getpid());
	unlink(sock_path);
	strcpy(sa.sun_path, sock_path);
	lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(lfd, 8)) {
		perror("listen");
		exit(1);
	}
	setenv("MEMBROKERD_SOCKET", sock_path, 1);
}

/*
 * Dispatch @mon whenever its fd is readable, until @fd is readable;
 * false when the guard runs out.
 */
static bool pump_until(struct mb_monitor *mon, int fd)
{
	struct pollfd p[2] = {
		{ .fd = mb_monitor_get_fd(mon), .events = POLLIN },
		{ .fd = fd, .events = POLLIN },
	};
	int waited = 0;

	while (waited < GUARD_MS) {
		if (poll(p, 2, 10) < 0)
			return false;
		if (p[0].revents)
			mb_monitor_dispatch(mon);
		if (p[1].revents)
			return true;
		waited += 10;
	}
	return false;
}

/* dispatch whatever is pending, without waiting */
static void pump(struct mb_monitor *mon)
{
	struct pollfd p = { .fd = mb_monitor_get_fd(mon), .events = POLLIN };
	int i;

	for (i = 0; i < 100 && poll(&p, 1, 0) > 0; i++)
		mb_monitor_dispatch(mon);
}

static int td_accept(struct mb_monitor *mon)
{
	if (!pump_until(mon, lfd))
		return -1;
	return accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
}

struct msg {
	struct mbd_msg h;
	unsigned char p[MBD_MSG_MAX];
	size_t len;
};

static bool td_recv(struct mb_monitor *mon, int fd, struct msg *m)
{
	ssize_t n;

	if (!pump_until(mon, fd))
		return false;
	n = recv(fd, &m->h, MBD_MSG_MAX, 0);
	if (n < (ssize_t)sizeof(m->h))
		return false;
	m->len = (size_t)n - sizeof(m->h);
	return m->h.magic == MBD_MAGIC && m->h.len == m->len;
}

/* The next message of @type, skipping others (replies we do not need). */
static bool td_expect(struct mb_monitor *mon, int fd, uint16_t type,
		      struct msg *m)
{
	int i;

	for (i = 0; i < 20; i++) {
		if (!td_recv(mon, fd, m))
			return false;
		if (m->h.type == type)
			return true;
	}
	return false;
}

static void td_send(int fd, uint16_t type, uint32_t id, int32_t status,
		    const void *p, size_t len)
{
	unsigned char buf[MBD_MSG_MAX];
	struct mbd_msg h = {
		.magic = MBD_MAGIC, .version = MBD_VERSION, .type = type,
		.id = id, .status = status, .len = len,
	};

	memcpy(buf, &h, sizeof(h));
	if (len)
		memcpy(buf + sizeof(h), p, len);
	if (send(fd, buf, sizeof(h) + len, MSG_NOSIGNAL) < 0)
		perror("send");
}

/* What a report (or POLL reply) says, record by record. */
struct seen {
	int pools, clerks, bytes, pool_gone, clerk_gone;
	struct mbd_rec_pool pool[8];
	struct mbd_rec_clerk clerk[8];
	struct mbd_rec_bytes byte[8];
};

static bool parse(const struct msg *m, struct seen *s)
{
	size_t off = 0;
	struct mbd_rec r;

	memset(s, 0, sizeof(*s));
	while (off + sizeof(r) <= m->len) {
		memcpy(&r, m->p + off, sizeof(r));
		if (r.len < sizeof(r) || r.len % 8 || off + r.len > m->len)
			return false;
		switch (r.kind) {
		case MBD_REC_POOL:
			if (s->pools < 8)
				memcpy(&s->pool[s->pools], m->p + off,
				       sizeof(s->pool[0]));
			s->pools++;
			break;
		case MBD_REC_CLERK:
			if (s->clerks < 8)
				memcpy(&s->clerk[s->clerks], m->p + off,
				       sizeof(s->clerk[0]));
			s->clerks++;
			break;
		case MBD_REC_BYTES:
			if (s->bytes < 8)
				memcpy(&s->byte[s->bytes], m->p + off,
				       sizeof(s->byte[0]));
			s->bytes++;
			break;
		case MBD_REC_POOL_GONE:
			s->pool_gone++;
			break;
		case MBD_REC_CLERK_GONE:
			s->clerk_gone++;
			break;
		}
		off += r.len;
	}
	return off == m->len;
}

static const struct mbd_rec_clerk *clerk_named(const struct seen *s,
					       const char *name)
{
	int i;

	for (i = 0; i < s->clerks && i < 8; i++)
		if (!strcmp(s->clerk[i].name, name))
			return &s->clerk[i];
	return NULL;
}

static void td_registered(int fd, uint32_t id, uint32_t client)
{
	struct mbd_registered r = {
		.client = client, .silence_ms = HOUR_MS, .report_ms = 200,
	};

	td_send(fd, MBD_MSG_REGISTER | MBD_MSG_REPLY, id, 0, &r, sizeof(r));
}

/* ASK one item; the result, false if no proper reply came */
static bool td_ask(struct mb_monitor *mon, int fd, uint32_t clerk,
		   uint64_t ask, uint64_t at_most, uint64_t cap,
		   struct mbd_ask_result *res)
{
	unsigned char p[sizeof(struct mbd_ask) + sizeof(struct mbd_ask_item)];
	struct mbd_ask head = {
		.item_size = sizeof(struct mbd_ask_item), .count = 1,
		.state = MB_STATE_LOW, .step = 1,
	};
	struct mbd_ask_item it = {
		.clerk = clerk, .ask = ask, .at_most = at_most, .cap = cap,
	};
	static uint32_t id = 1000;
	struct msg m;

	memcpy(p, &head, sizeof(head));
	memcpy(p + sizeof(head), &it, sizeof(it));
	td_send(fd, MBD_MSG_ASK, ++id, 0, p, sizeof(p));
	if (!td_expect(mon, fd, MBD_MSG_ASK | MBD_MSG_REPLY, &m) ||
	    m.h.id != id || m.len < sizeof(head) + sizeof(*res))
		return false;
	memcpy(&head, m.p, sizeof(head));
	memcpy(res, m.p + sizeof(head), sizeof(*res));
	return head.count == 1 && head.item_size == sizeof(*res);
}

/* ---- the application's side ---- */

#define ENTRY	1000		/* value bytes per entry */
#define N	100

struct app {
	struct mb_monitor *mon;
	struct mb_broker *b;
	struct mb_cache *cheap, *dear;
};

static void fill(struct mb_cache *c, int n)
{
	char key[32], val[ENTRY];
	int i;

	memset(val, 'x', sizeof(val));
	for (i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		mb_cache_put(c, key, strlen(key), val, sizeof(val));
	}
}

static uint64_t cbytes(struct mb_cache *c)
{
	return mb_clerk_bytes(mb_cache_clerk(c));
}

static void app_new(struct app *a, uint64_t min, uint64_t max)
{
	struct mb_monitor_opts mo = MB_OPTS(mb_monitor_opts,
					    .source = MB_SOURCE_FAKE,
					    .low_repeat_ms = UINT32_MAX);
	struct mb_broker_opts bo = MB_OPTS(mb_broker_opts,
					   .min_bytes = min,
					   .max_bytes = max);
	struct mb_cache_opts cheap = MB_OPTS(mb_cache_opts, .priority = 10);
	struct mb_cache_opts dear = MB_OPTS(mb_cache_opts, .priority = 90);

	memset(a, 0, sizeof(*a));
	mb_monitor_new(&a->mon, &mo);
	/* reports only when the test asks, so charges can be counted */
	mb_sys_set_timing(mb_monitor_sys(a->mon), HOUR_MS, 0);
	mb_broker_new(&a->b, "pool", a->mon, &bo);
	mb_cache_new(&a->cheap, "cheap", &cheap);
	mb_cache_new(&a->dear, "dear", &dear);
	fill(a->cheap, N);
	fill(a->dear, N);
	mb_broker_add_clerk(a->b, mb_cache_clerk(a->cheap));
	mb_broker_add_clerk(a->b, mb_cache_clerk(a->dear));
}

static void app_free(struct app *a)
{
	mb_broker_free(a->b);
	mb_cache_free(a->cheap);
	mb_cache_free(a->dear);
	mb_monitor_free(a->mon);
}

static struct mb_system_status status(struct mb_monitor *mon)
{
	struct mb_system_status st = { .sz = sizeof(st) };

	mb_monitor_system_status(mon, &st);
	return st;
}

/* The newest record of the broker's ring */
static struct mb_broker_record last_rec(struct mb_broker *b)
{
	struct mb_broker_record r = { 0 };
	uint64_t seq = mb_ring_last_seq(mb_broker_ring(b));

	if (seq)
		mb_ring_read(mb_broker_ring(b), seq, &r, NULL, 1, NULL);
	return r;
}

/* LOW from the fake source, delivered; the local broker's part */
static void push_low(struct app *a)
{
	struct mb_notification n = {
		.state = MB_STATE_LOW, .available = 10 << 20,
		.total = 1 << 30, .low = 50 << 20, .high = 150 << 20,
	};

	mb_monitor_fake_push(a->mon, &n);
	pump(a->mon);
}

/* The registration, as far as the report of everything */
static int connect_app(struct app *a, struct seen *s)
{
	struct msg m;
	int fd;

	fd = td_accept(a->mon);
	if (fd < 0)
		return -1;
	if (!td_expect(a->mon, fd, MBD_MSG_REGISTER, &m))
		return -1;
	td_registered(fd, m.h.id, 7);
	if (!td_expect(a->mon, fd, MBD_MSG_REPORT, &m) || !parse(&m, s))
		return -1;
	/* its reply, and the REGISTER reply taken */
	td_send(fd, MBD_MSG_REPORT | MBD_MSG_REPLY, m.h.id, 0, NULL, 0);
	pump(a->mon);
	return fd;
}

static void test_idle_without_brokers(void)
{
	struct mb_monitor_opts mo = MB_OPTS(mb_monitor_opts,
					    .source = MB_SOURCE_FAKE);
	struct mb_monitor *mon;
	int fd, i;

	mb_monitor_new(&mon, &mo);
	for (i = 0; i < 20; i++)
		mb_monitor_dispatch(mon);
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	ok(fd < 0 && errno == EAGAIN &&
	   status(mon).state == MB_SYSTEM_IDLE,
	   "a monitor without brokers does not connect (state idle)");
	if (fd >= 0)
		close(fd);
	mb_monitor_free(mon);
}

static void test_register_report_ask(void)
{
	struct mbd_ask_result res = { 0 };
	const struct mbd_rec_clerk *c, *d;
	uint32_t cid, did;
	struct mb_broker_record rec;
	struct mb_system_status st;
	struct mb_clerk *plain;
	struct seen s;
	struct msg m;
	uint64_t before, pool;
	int fd, i, extra;

	{
		struct app a;

		app_new(&a, 1000, 64 << 20);
		fd = connect_app(&a, &s);
		c = clerk_named(&s, "cheap");
		d = clerk_named(&s, "dear");
		ok(fd >= 0 && s.pools == 1 && s.pool[0].min_bytes == 1000 &&
		   s.pool[0].max_bytes == 64 << 20 &&
		   !strcmp(s.pool[0].name, "pool") && s.clerks == 2 && c &&
		   d && c->priority == 10 && d->priority == 90 &&
		   c->bytes == cbytes(a.cheap) && d->bytes == cbytes(a.dear) &&
		   c->pool == s.pool[0].h.id &&
		   (c->flags & MBD_CLERK_SHRINKABLE),
		   "registers its pool (name, min, max) and clerks (names, "
		   "priorities, bytes)");
		st = status(a.mon);
		ok(st.state == MB_SYSTEM_REGISTERED && st.client == 7 &&
		   st.registrations == 1,
		   "registered: the daemon's number for it");
		if (fd < 0 || !c || !d) {
			app_free(&a);
			return;
		}
		/* the records are overwritten by the next parse() */
		cid = c->h.id;
		did = d->h.id;

		/* charges send nothing; a report says what they came to */
		mb_clerk_new(&plain, "plain", NULL);
		mb_broker_add_clerk(a.b, plain);
		for (i = 0; i < 10000; i++) {
			mb_clerk_charge(plain, 10);
			if (i % 100 == 0)
				mb_monitor_dispatch(a.mon);
		}
		pump(a.mon);
		extra = recv(fd, m.p, sizeof(m.p), MSG_DONTWAIT);
		ok(extra < 0 && errno == EAGAIN,
		   "10000 charges and 100 dispatches: no message");
		mb_sys_report_now(mb_monitor_sys(a.mon));
		ok(td_expect(a.mon, fd, MBD_MSG_REPORT, &m) && parse(&m, &s) &&
		   s.clerks == 1 && !strcmp(s.clerk[0].name, "plain") &&
		   s.clerk[0].bytes == 100000 && s.pools == 0 &&
		   !(s.clerk[0].flags & MBD_CLERK_SHRINKABLE),
		   "then one report: the new clerk with all its bytes, "
		   "nothing else");
		td_send(fd, MBD_MSG_REPORT | MBD_MSG_REPLY, m.h.id, 0, NULL,
			0);

		/* POLL: everything, as it is now */
		mb_cache_del(a.dear, "k0", 2);
		td_send(fd, MBD_MSG_POLL, 77, 0, NULL, 0);
		ok(td_expect(a.mon, fd, MBD_MSG_POLL | MBD_MSG_REPLY, &m) &&
		   m.h.id == 77 && parse(&m, &s) && s.pools == 1 &&
		   s.clerks == 3 && clerk_named(&s, "dear") &&
		   clerk_named(&s, "dear")->bytes == cbytes(a.dear),
		   "POLL: its pool and every clerk with the bytes of now");

		/* ASK: at least what was asked, whole entries */
		before = cbytes(a.cheap);
		memset(&res, 0, sizeof(res));
		ok(td_ask(a.mon, fd, cid, 10 * ENTRY, 1 << 30, 0, &res) &&
		   res.status == 0 && res.freed >= 10 * ENTRY &&
		   res.freed < 11 * ENTRY + 200 &&
		   res.bytes == cbytes(a.cheap) &&
		   res.bytes == before - res.freed && res.cap == res.bytes &&
		   mb_clerk_target(mb_cache_clerk(a.cheap)) == res.bytes,
		   "ASK: the clerk gives back what was asked (one entry more "
		   "at most) and is held there");
		rec = last_rec(a.b);
		ok(rec.decision == MB_DECISION_SYSTEM_SHRINK &&
		   !strcmp(rec.clerk, "cheap") && rec.freed == res.freed &&
		   rec.allocated == before && rec.target == res.bytes,
		   "... recorded in the broker's ring as a system decision");
		before = cbytes(a.cheap);
		ok(td_ask(a.mon, fd, cid, 10, 1 << 30, 0, &res) &&
		   res.freed > 10 && cbytes(a.cheap) < before,
		   "an ask smaller than an entry still frees one");
		before = cbytes(a.dear);
		ok(td_ask(a.mon, fd, did, 10, 10, 0, &res) &&
		   res.freed == 0 && cbytes(a.dear) == before,
		   "... but never beyond at_most");

		/* min_bytes holds whatever the daemon asks */
		pool = cbytes(a.cheap) + cbytes(a.dear) + mb_clerk_bytes(plain);
		mb_broker_free(a.b);
		{
			struct mb_broker_opts bo = MB_OPTS(mb_broker_opts,
				.min_bytes = pool - 5 * ENTRY);

			mb_broker_new(&a.b, "pool2", a.mon, &bo);
		}
		mb_broker_add_clerk(a.b, mb_cache_clerk(a.cheap));
		mb_broker_add_clerk(a.b, mb_cache_clerk(a.dear));
		mb_broker_add_clerk(a.b, plain);
		mb_sys_report_now(mb_monitor_sys(a.mon));
		ok(td_expect(a.mon, fd, MBD_MSG_REPORT, &m) && parse(&m, &s) &&
		   s.pool_gone == 1 && s.clerk_gone == 3 && s.pools == 1 &&
		   s.clerks == 3,
		   "a broker freed is reported gone, a new one new");
		td_send(fd, MBD_MSG_REPORT | MBD_MSG_REPLY, m.h.id, 0, NULL,
			0);
		c = clerk_named(&s, "cheap");
		d = clerk_named(&s, "dear");
		cid = c ? c->h.id : 0;
		did = d ? d->h.id : 0;
		before = cbytes(a.cheap);
		ok(c && td_ask(a.mon, fd, cid, 50 * ENTRY, 1 << 30, 0,
			       &res) &&
		   res.freed <= 5 * ENTRY + 5 * 200 &&
		   cbytes(a.cheap) + cbytes(a.dear) + mb_clerk_bytes(plain) >=
		   pool - 5 * ENTRY,
		   "ASK: the pool's min_bytes holds");
		ok(td_ask(a.mon, fd, 999999, 10, 10, 0, &res) &&
		   res.status == -ENOENT,
		   "ASK for a clerk it does not have: -ENOENT");

		/* the rest with a pool that has room to shrink */
		mb_broker_free(a.b);
		mb_broker_new(&a.b, "pool3", a.mon, NULL);
		mb_broker_add_clerk(a.b, mb_cache_clerk(a.cheap));
		mb_broker_add_clerk(a.b, mb_cache_clerk(a.dear));
		mb_broker_add_clerk(a.b, plain);
		mb_sys_report_now(mb_monitor_sys(a.mon));
		if (!td_expect(a.mon, fd, MBD_MSG_REPORT, &m) ||
		    !parse(&m, &s) || !clerk_named(&s, "dear")) {
			ok(false, "the third pool reported");
			app_free(&a);
			return;
		}
		td_send(fd, MBD_MSG_REPORT | MBD_MSG_REPLY, m.h.id, 0, NULL,
			0);
		did = clerk_named(&s, "dear")->h.id;

		/* caps: raised, lifted */
		mb_broker_notify(a.b, &(struct mb_notification){
				 .state = MB_STATE_HIGH });
		ok(did && td_ask(a.mon, fd, did, 0, 0, 12345, &res) &&
		   res.cap == 12345 &&
		   mb_clerk_target(mb_cache_clerk(a.dear)) == 12345 &&
		   last_rec(a.b).decision == MB_DECISION_SYSTEM_GROW,
		   "a cap is set over HIGH's unlimited target");
		ok(td_ask(a.mon, fd, did, 0, 0, UINT64_MAX, &res) &&
		   mb_clerk_target(mb_cache_clerk(a.dear)) == UINT64_MAX,
		   "... and lifted");

		/* in charge: LOW is the daemon's */
		mb_clerk_uncharge(plain, mb_clerk_bytes(plain));
		before = cbytes(a.cheap) + cbytes(a.dear);
		push_low(&a);
		rec = last_rec(a.b);
		st = status(a.mon);
		ok(cbytes(a.cheap) + cbytes(a.dear) == before &&
		   rec.decision == MB_DECISION_STABLE &&
		   rec.state == MB_STATE_LOW &&
		   (st.flags & MB_SYSTEM_IN_CHARGE),
		   "registered, LOW takes no local step: the daemon is in "
		   "charge");
		/* a cgroup LOW is the process's own */
		mb_broker_notify(a.b, &(struct mb_notification){
				 .state = MB_STATE_LOW,
				 .source = MB_SOURCE_CGROUP });
		ok(cbytes(a.cheap) + cbytes(a.dear) < before,
		   "a cgroup LOW is still shrunk locally");
		/* silent: local again */
		mb_sys_set_timing(mb_monitor_sys(a.mon), HOUR_MS, 1);
		usleep(5000);
		before = cbytes(a.cheap) + cbytes(a.dear);
		push_low(&a);
		ok(cbytes(a.cheap) + cbytes(a.dear) < before &&
		   !(status(a.mon).flags & MB_SYSTEM_IN_CHARGE),
		   "a daemon silent while LOW lasts: local steps resume");
		mb_sys_set_timing(mb_monitor_sys(a.mon), HOUR_MS, 0);

		/* a forked child is not registered: it shrinks alone */
		{
			pid_t pid = fork();
			int wst = 0;

			if (!pid) {
				uint64_t b0 = cbytes(a.cheap) +
					      cbytes(a.dear);

				mb_broker_notify(a.b, &(struct mb_notification){
						 .state = MB_STATE_LOW,
						 .source = MB_SOURCE_FAKE });
				_exit(cbytes(a.cheap) + cbytes(a.dear) < b0 ?
				      0 : 1);
			}
			waitpid(pid, &wst, 0);
			ok(WIFEXITED(wst) && WEXITSTATUS(wst) == 0,
			   "a forked child shrinks by itself");
		}
		td_send(fd, MBD_MSG_POLL, 78, 0, NULL, 0);
		ok(td_expect(a.mon, fd, MBD_MSG_POLL | MBD_MSG_REPLY, &m) &&
		   m.h.id == 78, "... and the parent's connection is intact");

		/* the daemon goes: caps go, LOW is local, it comes back */
		ok(td_ask(a.mon, fd, did, 0, 0, 1, &res) &&
		   mb_clerk_target(mb_cache_clerk(a.dear)) == 1,
		   "a cap of 1 byte");
		close(fd);
		for (i = 0; i < GUARD_MS / 10 && status(a.mon).state ==
		     MB_SYSTEM_REGISTERED; i++) {
			usleep(10000);
			pump(a.mon);
		}
		ok(status(a.mon).state == MB_SYSTEM_SEARCHING &&
		   mb_clerk_target(mb_cache_clerk(a.dear)) > 1,
		   "the daemon gone: searching, its caps lifted");
		before = cbytes(a.cheap) + cbytes(a.dear);
		push_low(&a);
		ok(cbytes(a.cheap) + cbytes(a.dear) < before,
		   "... and LOW shrinks locally");
		fd = connect_app(&a, &s);
		ok(fd >= 0 && s.pools == 1 && s.clerks == 3 &&
		   status(a.mon).registrations == 2 &&
		   status(a.mon).state == MB_SYSTEM_REGISTERED,
		   "it reconnects and registers everything again");
		if (fd >= 0)
			close(fd);
		app_free(&a);
		mb_clerk_free(plain);
	}
}

/*
 * The monitor's own thread answers the daemon while another thread makes
 * and frees brokers and caches, and the daemon asks about clerks that
 * come and go: every request is answered, nothing is used after it was
 * freed (ASan), nothing races (TSan).
 */
static _Atomic bool churn_stop;

static void *churn(void *arg)
{
	struct mb_monitor *mon = arg;
	struct mb_cache_opts co = MB_OPTS(mb_cache_opts, .priority = 5);
	struct mb_broker *b;
	struct mb_cache *c;

	while (!atomic_load(&churn_stop)) {
		mb_broker_new(&b, "churn", mon, NULL);
		mb_cache_new(&c, "churned", &co);
		fill(c, 5);
		mb_broker_add_clerk(b, mb_cache_clerk(c));
		usleep(1000);
		if (rand() % 2) {
			mb_broker_free(b);
			mb_cache_free(c);
		} else {
			mb_cache_free(c);
			mb_broker_free(b);
		}
	}
	return NULL;
}

/* Wait for the reply to @type (answering reports on the way); no pump */
static bool td_reply(int fd, uint16_t type, uint32_t id, struct msg *m)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t n;

	while (poll(&p, 1, GUARD_MS) == 1) {
		n = recv(fd, &m->h, MBD_MSG_MAX, 0);
		if (n < (ssize_t)sizeof(m->h))
			return false;
		m->len = (size_t)n - sizeof(m->h);
		if (m->h.type == MBD_MSG_REPORT)
			td_send(fd, MBD_MSG_REPORT | MBD_MSG_REPLY, m->h.id, 0,
				NULL, 0);
		else if (m->h.type == type && m->h.id == id &&
			 !(m->h.flags & MBD_F_MORE))
			return true;
	}
	return false;
}

static void test_threads(void)
{
	unsigned char p[sizeof(struct mbd_ask) + sizeof(struct mbd_ask_item)];
	struct mbd_ask head = {
		.item_size = sizeof(struct mbd_ask_item), .count = 1,
		.state = MB_STATE_LOW,
	};
	struct mbd_ask_item it = { .ask = 1, .at_most = 1 << 20 };
	struct app a;
	struct seen s;
	struct msg m;
	pthread_t t;
	int fd, i, answered = 0;
	uint32_t ids[8] = { 0 };

	app_new(&a, 0, 0);
	mb_sys_set_timing(mb_monitor_sys(a.mon), 10, 0);
	fd = connect_app(&a, &s);
	if (!ok(fd >= 0, "threads: registered"))
		return;
	mb_monitor_start_thread(a.mon);
	atomic_store(&churn_stop, false);
	pthread_create(&t, NULL, churn, a.mon);
	for (i = 0; i < 200; i++) {
		if (i % 2 == 0) {
			td_send(fd, MBD_MSG_POLL, 5000 + i, 0, NULL, 0);
			if (!td_reply(fd, MBD_MSG_POLL | MBD_MSG_REPLY,
				      5000 + i, &m))
				break;
			if (parse(&m, &s))
				for (int k = 0; k < s.clerks && k < 8; k++)
					ids[k] = s.clerk[k].h.id;
		} else {
			it.clerk = ids[i % 8] ? ids[i % 8] : ids[0];
			memcpy(p, &head, sizeof(head));
			memcpy(p + sizeof(head), &it, sizeof(it));
			td_send(fd, MBD_MSG_ASK, 5000 + i, 0, p, sizeof(p));
			if (!td_reply(fd, MBD_MSG_ASK | MBD_MSG_REPLY, 5000 + i,
				      &m))
				break;
		}
		answered++;
	}
	atomic_store(&churn_stop, true);
	pthread_join(t, NULL);
	ok(answered == 200, "the monitor's thread answered every request while "
	   "another thread made and freed brokers (%d of 200)", answered);
	close(fd);
	app_free(&a);
}

static void test_off(void)
{
	struct app a;
	int fd;

	setenv("MEMBROKER_SYSTEM_BROKER", "0", 1);
	app_new(&a, 0, 0);
	pump(a.mon);
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	ok(fd < 0 && status(a.mon).state == MB_SYSTEM_OFF,
	   "MEMBROKER_SYSTEM_BROKER=0: off, no connection");
	app_free(&a);
	unsetenv("MEMBROKER_SYSTEM_BROKER");
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	plan(0);
	unsetenv("MEMBROKER_SYSTEM_BROKER");
	td_listen();
	test_idle_without_brokers();
	test_register_report_ask();
	test_threads();
	test_off();
	close(lfd);
	unlink(sock_path);
	return done_testing();
}
