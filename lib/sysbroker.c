// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The system broker's client: a monitor's connection to membrokerd.
 *
 * A monitor that has brokers looks for the daemon's control socket
 * ($MEMBROKERD_SOCKET, else /run/membroker/control.sock; none at all with
 * $MEMBROKER_SYSTEM_BROKER=0) and registers its brokers ("pools") and
 * their clerks (daemon/protocol.h).  The daemon decides LOW for the whole
 * machine: it asks the cheapest clerks of every process for what is
 * short, and lets them grow back on HIGH, most expensive first.
 *
 * Everything here runs from the monitor's dispatch, in the thread that
 * dispatches it (the application's loop or the monitor's own thread): the
 * connection is one more fd in the monitor's epoll, the reports and the
 * reconnections one more deadline of its timerfd.  So the library never
 * needs a loop or a thread of its own, and mb_clerk_charge() never does
 * I/O: bytes held are read from the clerks when a report is due, and
 * only what changed is sent.  A report is due at most every report_ms
 * (the daemon's word, 200 ms by default), and the interval doubles up to
 * MB_SYS_REPORT_MAX_MS while nothing changes, so an idle process wakes
 * up a few times a minute; changes smaller than MB_SYS_SIGNIFICANT wait
 * for that longest interval.  What matters at a step the daemon asks for
 * itself (MBD_MSG_POLL): the figures are then read there and then.
 *
 * Ids on the wire are the brokers' and members' ids (broker.c), unique in
 * the process; the tables below remember what the daemon was told, so a
 * report says only what changed.  A report that could not be sent (the
 * daemon's socket full) makes the next one say everything again.
 *
 * Brokers attach and detach from any thread (under @lock).  The dispatch
 * uses one broker at a time, marked in use: mb_sys_detach() waits for
 * that use to end, unless it is called from within it (a shrink callback
 * freeing another broker), in which case the broker is simply no longer
 * found.
 *
 * In charge: while the monitor's state is LOW for the whole machine (not
 * the cgroup source), and the daemon has spoken within silence_ms of now
 * or of the start of that LOW, brokers leave LOW to the daemon
 * (broker.c).  A daemon that goes silent or away therefore costs at most
 * silence_ms of local shrinking.  The connection is retried with a
 * backoff from MB_SYS_BACKOFF_MIN_MS to MB_SYS_BACKOFF_MAX_MS; it starts
 * again from the minimum once registered.
 *
 * fork(): the child inherits the connection, the parent's; it never
 * touches it (nor the epoll the two share) and is not registered.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"
#include "protocol.h"

#define MB_SYS_REPORT_MS	200	/* when the daemon does not say */
#define MB_SYS_REPORT_MAX_MS	5000	/* the spacing while nothing changes */
#define MB_SYS_REPORT_MAX_NS	(MB_SYS_REPORT_MAX_MS * MB_NSEC_PER_MSEC)
#define MB_SYS_SILENCE_MS	3000	/* when the daemon does not say */
#define MB_SYS_BACKOFF_MIN_MS	100
#define MB_SYS_BACKOFF_MAX_MS	30000
#define MB_SYS_SIGNIFICANT	(64 * MB_KIB)

struct mb_sys_att {
	struct mb_broker *b;
	uint32_t id;
};

/* what the daemon was told */
struct mb_sys_rpool {
	struct mb_sys_pool p;
	bool seen;
};

struct mb_sys_rclerk {
	struct mb_sys_clerk c;
	uint32_t pool;
	bool seen;
};

struct mb_sys {
	/* under @lock: the brokers attached, and the dispatch's use of one */
	struct mb_lock lock;
	pthread_cond_t idle;
	struct mb_sys_att *att;
	size_t natt, att_cap;
	uint32_t inuse;			/* broker id, 0: none */
	pthread_t inuse_thread;
	int efd;			/* the monitor's, to wake it; -1 */

	/* the dispatch's (the monitor's dispatch lock) */
	int epfd;
	bool disabled;
	bool forked;
	char path[108];
	int fd;
	uint32_t next_id;
	uint64_t connect_due;
	uint64_t backoff_ns;
	uint64_t report_due;
	uint64_t report_gap_ns;
	uint64_t report_min_ns;
	uint64_t last_report_ns;
	bool resync;
	struct mb_sys_rpool *pools;
	size_t npools, pools_cap;
	struct mb_sys_rclerk *clerks;
	size_t nclerks, clerks_cap;
	unsigned char *in;		/* MBD_MSG_MAX each */
	unsigned char *out;
	size_t outlen;
	struct mbd_msg outh;

	/* read from any thread */
	_Atomic uint32_t state;		/* enum mb_system_state */
	_Atomic bool registered;
	_Atomic bool report_now;
	_Atomic uint32_t client;
	_Atomic uint32_t silence_ms;
	_Atomic uint32_t test_report_ms;
	_Atomic uint32_t test_silence_ms;
	_Atomic uint64_t last_heard_ns;
	_Atomic uint64_t low_since_ns;
	_Atomic uint64_t registrations, reports, polls, shrinks, freed, grows;
};

static void mb_sys_kick(struct mb_sys *s)
{
	uint64_t one = 1;

	mb_lock(&s->lock);
	/* saturated: still readable, which is all we want */
	if (s->efd >= 0 && write(s->efd, &one, sizeof(one)) < 0)
		one = 0;
	mb_unlock(&s->lock);
}

int mb_sys_new(struct mb_sys **out, int epfd, int efd)
{
	const char *env = getenv("MEMBROKER_SYSTEM_BROKER");
	const char *path = getenv("MEMBROKERD_SOCKET");
	struct mb_sys *s;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->in = malloc(MBD_MSG_MAX);
	s->out = malloc(MBD_MSG_MAX);
	if (!s->in || !s->out) {
		free(s->in);
		free(s->out);
		free(s);
		return -ENOMEM;
	}
	mb_lock_init(&s->lock, MB_LOCK_INNER);
	pthread_cond_init(&s->idle, NULL);
	s->epfd = epfd;
	s->efd = efd;
	s->fd = -1;
	s->backoff_ns = MB_SYS_BACKOFF_MIN_MS * MB_NSEC_PER_MSEC;
	s->report_min_ns = MB_SYS_REPORT_MS * MB_NSEC_PER_MSEC;
	s->report_gap_ns = s->report_min_ns;
	atomic_init(&s->silence_ms, MB_SYS_SILENCE_MS);
	if (!path || !*path)
		path = MBD_CONTROL_SOCKET;
	s->disabled = (env && !strcmp(env, "0")) ||
		      strlen(path) >= sizeof(s->path);
	if (!s->disabled)
		strcpy(s->path, path);
	atomic_init(&s->state, s->disabled ? MB_SYSTEM_OFF : MB_SYSTEM_IDLE);
	*out = s;
	return 0;
}

/* ---- the brokers attached ---- */

void mb_sys_attach(struct mb_sys *s, struct mb_broker *b)
{
	struct mb_sys_att *a;
	size_t cap;

	if (s->disabled)
		return;
	mb_lock(&s->lock);
	if (s->natt == s->att_cap) {
		cap = s->att_cap ? s->att_cap * 2 : 4;
		a = realloc(s->att, cap * sizeof(*a));
		if (!a) {
			/* not registered: it decides alone, as without us */
			mb_unlock(&s->lock);
			return;
		}
		s->att = a;
		s->att_cap = cap;
	}
	s->att[s->natt++] = (struct mb_sys_att){ b, mb_broker_sys_id(b) };
	mb_unlock(&s->lock);
	atomic_store(&s->report_now, true);
	mb_sys_kick(s);
}

void mb_sys_detach(struct mb_sys *s, struct mb_broker *b)
{
	uint32_t id = mb_broker_sys_id(b);
	size_t i;

	mb_lock(&s->lock);
	for (i = 0; i < s->natt; i++) {
		if (s->att[i].id == id) {
			s->att[i] = s->att[--s->natt];
			break;
		}
	}
	while (s->inuse == id &&
	       !pthread_equal(s->inuse_thread, pthread_self()))
		mb_cond_wait(&s->idle, &s->lock);
	mb_unlock(&s->lock);
}

/* The attached broker @id, marked in use; NULL when not attached. */
static struct mb_broker *mb_sys_use(struct mb_sys *s, uint32_t id)
{
	struct mb_broker *b = NULL;
	size_t i;

	mb_lock(&s->lock);
	for (i = 0; i < s->natt; i++) {
		if (s->att[i].id == id) {
			b = s->att[i].b;
			s->inuse = id;
			s->inuse_thread = pthread_self();
			break;
		}
	}
	mb_unlock(&s->lock);
	return b;
}

static void mb_sys_unuse(struct mb_sys *s)
{
	mb_lock(&s->lock);
	s->inuse = 0;
	pthread_cond_broadcast(&s->idle);
	mb_unlock(&s->lock);
}

/* The smallest id of an attached broker above @after; 0: none. */
static uint32_t mb_sys_next_att(struct mb_sys *s, uint32_t after)
{
	uint32_t best = 0;
	size_t i;

	mb_lock(&s->lock);
	for (i = 0; i < s->natt; i++)
		if (s->att[i].id > after && (!best || s->att[i].id < best))
			best = s->att[i].id;
	mb_unlock(&s->lock);
	return best;
}

static size_t mb_sys_count_att(struct mb_sys *s)
{
	size_t n;

	mb_lock(&s->lock);
	n = s->natt;
	mb_unlock(&s->lock);
	return n;
}

/* ---- messages out ---- */

static int mb_sys_send(struct mb_sys *s, const void *buf, size_t len)
{
	if (send(s->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		return -errno;
	return 0;
}

static void mb_sys_begin(struct mb_sys *s, uint16_t type, uint32_t id)
{
	memset(&s->outh, 0, sizeof(s->outh));
	s->outh.magic = MBD_MAGIC;
	s->outh.version = MBD_VERSION;
	s->outh.type = type;
	s->outh.id = id;
	s->outlen = sizeof(s->outh);
}

/* Send what was built; @more: a reply that continues. */
static int mb_sys_flush(struct mb_sys *s, bool more)
{
	s->outh.len = s->outlen - sizeof(s->outh);
	s->outh.flags = more ? MBD_F_MORE : 0;
	memcpy(s->out, &s->outh, sizeof(s->outh));
	return mb_sys_send(s, s->out, s->outlen);
}

/*
 * Append a record; when the packet is full, send it and go on in the
 * next (a reply continues with MBD_F_MORE, a report is several reports).
 */
static int mb_sys_put(struct mb_sys *s, const void *rec, size_t len)
{
	int err;

	if (s->outlen + len > MBD_MSG_MAX) {
		err = mb_sys_flush(s, s->outh.type & MBD_MSG_REPLY);
		if (err)
			return err;
		s->outlen = sizeof(s->outh);
	}
	memcpy(s->out + s->outlen, rec, len);
	s->outlen += len;
	return 0;
}

static uint32_t mb_sys_id(struct mb_sys *s)
{
	return ++s->next_id ? s->next_id : ++s->next_id;
}

/* ---- the tables of what the daemon knows ---- */

static struct mb_sys_rpool *mb_sys_rpool(struct mb_sys *s, uint32_t id)
{
	size_t i;

	for (i = 0; i < s->npools; i++)
		if (s->pools[i].p.id == id)
			return &s->pools[i];
	return NULL;
}

static struct mb_sys_rclerk *mb_sys_rclerk(struct mb_sys *s, uint32_t id)
{
	size_t i;

	for (i = 0; i < s->nclerks; i++)
		if (s->clerks[i].c.id == id)
			return &s->clerks[i];
	return NULL;
}

static struct mb_sys_rpool *mb_sys_add_rpool(struct mb_sys *s)
{
	struct mb_sys_rpool *p;
	size_t cap;

	if (s->npools == s->pools_cap) {
		cap = s->pools_cap ? s->pools_cap * 2 : 8;
		p = realloc(s->pools, cap * sizeof(*p));
		if (!p)
			return NULL;
		s->pools = p;
		s->pools_cap = cap;
	}
	p = &s->pools[s->npools++];
	memset(p, 0, sizeof(*p));
	return p;
}

static struct mb_sys_rclerk *mb_sys_add_rclerk(struct mb_sys *s)
{
	struct mb_sys_rclerk *c;
	size_t cap;

	if (s->nclerks == s->clerks_cap) {
		cap = s->clerks_cap ? s->clerks_cap * 2 : 16;
		c = realloc(s->clerks, cap * sizeof(*c));
		if (!c)
			return NULL;
		s->clerks = c;
		s->clerks_cap = cap;
	}
	c = &s->clerks[s->nclerks++];
	memset(c, 0, sizeof(*c));
	return c;
}

static int mb_sys_put_pool(struct mb_sys *s, const struct mb_sys_pool *p)
{
	struct mbd_rec_pool r = {
		.h = { MBD_REC_POOL, sizeof(r), p->id },
		.min_bytes = p->min_bytes,
		.max_bytes = p->max_bytes,
	};

	memcpy(r.name, p->name, sizeof(r.name));
	r.name[sizeof(r.name) - 1] = '\0';
	return mb_sys_put(s, &r, sizeof(r));
}

static int mb_sys_put_clerk(struct mb_sys *s, const struct mb_sys_clerk *c,
			    uint32_t pool)
{
	struct mbd_rec_clerk r = {
		.h = { MBD_REC_CLERK, sizeof(r), c->id },
		.pool = pool,
		.priority = c->priority,
		.flags = c->shrinkable ? MBD_CLERK_SHRINKABLE : 0,
		.bytes = c->bytes,
		.target = c->target,
	};

	memcpy(r.name, c->name, sizeof(r.name));
	r.name[sizeof(r.name) - 1] = '\0';
	return mb_sys_put(s, &r, sizeof(r));
}

static int mb_sys_put_gone(struct mb_sys *s, uint16_t kind, uint32_t id)
{
	struct mbd_rec r = { kind, sizeof(r), id };

	return mb_sys_put(s, &r, sizeof(r));
}

static bool mb_sys_significant(uint64_t was, uint64_t now)
{
	uint64_t d = was > now ? was - now : now - was;

	return d >= MB_SYS_SIGNIFICANT || d >= was / 16;
}

/*
 * One pool's part of a report: the pool if new or changed, its clerks if
 * new or changed, their bytes if they moved enough (@all: whatever they
 * did).  @full: everything, as if the daemon knew nothing.  Returns the
 * number of records put, or -errno.
 */
static int mb_sys_report_pool(struct mb_sys *s, const struct mb_sys_pool *p,
			      const struct mb_sys_clerk *c, size_t n,
			      bool full, bool all)
{
	struct mbd_rec_bytes rb = { .h = { MBD_REC_BYTES, sizeof(rb), 0 } };
	struct mb_sys_rclerk *rc;
	struct mb_sys_rpool *rp;
	int err, put = 0;
	size_t i;

	rp = mb_sys_rpool(s, p->id);
	if (!rp || full || rp->p.min_bytes != p->min_bytes ||
	    rp->p.max_bytes != p->max_bytes ||
	    memcmp(rp->p.name, p->name, sizeof(p->name))) {
		if (!rp)
			rp = mb_sys_add_rpool(s);
		if (!rp)
			return -ENOMEM;
		rp->p = *p;
		err = mb_sys_put_pool(s, p);
		if (err)
			return err;
		put++;
	}
	rp->seen = true;
	for (i = 0; i < n; i++) {
		rc = mb_sys_rclerk(s, c[i].id);
		if (!rc || full || rc->pool != p->id ||
		    rc->c.priority != c[i].priority ||
		    rc->c.shrinkable != c[i].shrinkable ||
		    memcmp(rc->c.name, c[i].name, sizeof(c[i].name))) {
			if (!rc)
				rc = mb_sys_add_rclerk(s);
			if (!rc)
				return -ENOMEM;
			rc->c = c[i];
			rc->pool = p->id;
			err = mb_sys_put_clerk(s, &c[i], p->id);
		} else if (rc->c.bytes != c[i].bytes &&
			   (all || mb_sys_significant(rc->c.bytes,
						      c[i].bytes))) {
			rc->c.bytes = c[i].bytes;
			rb.h.id = c[i].id;
			rb.bytes = c[i].bytes;
			err = mb_sys_put(s, &rb, sizeof(rb));
		} else {
			rc->seen = true;
			continue;
		}
		if (err)
			return err;
		rc->seen = true;
		put++;
	}
	return put;
}

/*
 * Tell the daemon what changed: as a MBD_MSG_REPORT request, or as the
 * reply to its MBD_MSG_POLL (@poll_id; then everything, fresh).  Returns
 * the number of records sent, or -errno.
 */
static int mb_sys_report(struct mb_sys *s, uint64_t now, uint32_t poll_id)
{
	bool full = poll_id || s->resync;
	bool all = full || now - s->last_report_ns >=
			   MB_SYS_REPORT_MAX_MS * MB_NSEC_PER_MSEC;
	struct mb_sys_clerk *c;
	struct mb_sys_pool p;
	struct mb_broker *b;
	uint32_t id = 0;
	int err = 0, put = 0, r;
	size_t i, n;

	mb_sys_begin(s, poll_id ? MBD_MSG_POLL | MBD_MSG_REPLY :
		     MBD_MSG_REPORT, poll_id ? poll_id : mb_sys_id(s));
	for (i = 0; i < s->npools; i++)
		s->pools[i].seen = false;
	for (i = 0; i < s->nclerks; i++)
		s->clerks[i].seen = false;
	while (!err && (id = mb_sys_next_att(s, id))) {
		b = mb_sys_use(s, id);
		if (!b)
			continue;
		err = mb_broker_sys_snapshot(b, &p, &c, &n);
		mb_sys_unuse(s);
		if (err)
			break;
		r = mb_sys_report_pool(s, &p, c, n, full, all);
		free(c);
		if (r < 0)
			err = r;
		else
			put += r;
	}
	/* what was not seen is gone: clerks first, then their pools */
	for (i = 0; !err && i < s->nclerks;) {
		if (s->clerks[i].seen) {
			i++;
			continue;
		}
		err = mb_sys_put_gone(s, MBD_REC_CLERK_GONE,
				      s->clerks[i].c.id);
		s->clerks[i] = s->clerks[--s->nclerks];
		put++;
	}
	for (i = 0; !err && i < s->npools;) {
		if (s->pools[i].seen) {
			i++;
			continue;
		}
		err = mb_sys_put_gone(s, MBD_REC_POOL_GONE,
				      s->pools[i].p.id);
		s->pools[i] = s->pools[--s->npools];
		put++;
	}
	if (!err && (put || poll_id))
		err = mb_sys_flush(s, false);
	if (err) {
		/* what the daemon knows is unsure now: everything again */
		s->resync = true;
		return err;
	}
	s->resync = false;
	if (put) {
		s->last_report_ns = now;
		atomic_fetch_add(&s->reports, 1);
	}
	return put;
}

/* ---- the connection ---- */

static void mb_sys_uncap_all(struct mb_sys *s)
{
	struct mb_broker *b;
	uint32_t id = 0;

	while ((id = mb_sys_next_att(s, id))) {
		b = mb_sys_use(s, id);
		if (!b)
			continue;
		mb_broker_sys_uncap(b);
		mb_sys_unuse(s);
	}
}

static void mb_sys_disconnect(struct mb_sys *s, uint64_t now)
{
	if (s->fd < 0)
		return;
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->fd, NULL);
	close(s->fd);
	s->fd = -1;
	atomic_store(&s->registered, false);
	atomic_store(&s->client, 0);
	atomic_store(&s->state, MB_SYSTEM_SEARCHING);
	/* the daemon's caps go with it: the brokers decide alone again */
	mb_sys_uncap_all(s);
	s->connect_due = now + s->backoff_ns;
	s->backoff_ns = MB_MIN(s->backoff_ns * 2,
			       MB_SYS_BACKOFF_MAX_MS * MB_NSEC_PER_MSEC);
}

static void mb_sys_connect(struct mb_sys *s, uint64_t now)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct epoll_event ev = {
		.events = EPOLLIN, .data.u32 = MB_SYS_EPOLL_ID,
	};
	struct mbd_register reg = { 0 };
	int fd;

	atomic_store(&s->state, MB_SYSTEM_SEARCHING);
	memcpy(sa.sun_path, s->path, sizeof(s->path));
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd >= 0 && !connect(fd, (struct sockaddr *)&sa, sizeof(sa)) &&
	    !epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev)) {
		s->fd = fd;
		s->npools = 0;
		s->nclerks = 0;
		s->resync = false;
		strncpy(reg.comm, program_invocation_short_name,
			sizeof(reg.comm) - 1);
		mb_sys_begin(s, MBD_MSG_REGISTER, mb_sys_id(s));
		mb_sys_put(s, &reg, sizeof(reg));
		/* registered once the reply comes; the report goes along */
		if (!mb_sys_flush(s, false) && mb_sys_report(s, now, 0) >= 0)
			return;
		mb_sys_disconnect(s, now);
		return;
	}
	if (fd >= 0)
		close(fd);
	s->connect_due = now + s->backoff_ns;
	s->backoff_ns = MB_MIN(s->backoff_ns * 2,
			       MB_SYS_BACKOFF_MAX_MS * MB_NSEC_PER_MSEC);
}

/* ---- messages in ---- */

static int mb_sys_reply_status(struct mb_sys *s, const struct mbd_msg *req,
			       int status)
{
	mb_sys_begin(s, req->type | MBD_MSG_REPLY, req->id);
	s->outh.status = status;
	return mb_sys_flush(s, false);
}

static struct mb_broker *mb_sys_use_clerk(struct mb_sys *s, uint32_t clerk,
					  struct mb_sys_rclerk **rc)
{
	*rc = mb_sys_rclerk(s, clerk);
	return *rc ? mb_sys_use(s, (*rc)->pool) : NULL;
}

/* MBD_MSG_ASK: each item in turn, one result each */
static int mb_sys_ask(struct mb_sys *s, const struct mbd_msg *req,
		      const unsigned char *p)
{
	struct mbd_ask head, rhead = { .item_size = sizeof(struct mbd_ask_result) };
	struct mbd_ask_result res;
	struct mbd_ask_item it;
	struct mb_sys_result r;
	struct mb_sys_rclerk *rc;
	struct mb_broker *b;
	size_t i;
	int err;

	if (req->len < sizeof(head))
		return mb_sys_reply_status(s, req, -EINVAL);
	memcpy(&head, p, sizeof(head));
	if (head.item_size < sizeof(it) ||
	    (size_t)head.count * head.item_size > req->len - sizeof(head))
		return mb_sys_reply_status(s, req, -EINVAL);
	rhead.count = head.count;
	rhead.state = head.state;
	rhead.step = head.step;
	mb_sys_begin(s, req->type | MBD_MSG_REPLY, req->id);
	mb_sys_put(s, &rhead, sizeof(rhead));
	for (i = 0; i < head.count; i++) {
		memcpy(&it, p + sizeof(head) + i * head.item_size, sizeof(it));
		memset(&r, 0, sizeof(r));
		b = mb_sys_use_clerk(s, it.clerk, &rc);
		if (!b) {
			err = -ENOENT;
		} else if (it.ask) {
			err = mb_broker_sys_shrink(b, it.clerk, it.ask,
						   it.at_most, head.state, &r);
			mb_sys_unuse(s);
			if (!err) {
				atomic_fetch_add(&s->shrinks, 1);
				atomic_fetch_add(&s->freed, r.freed);
			}
		} else {
			err = mb_broker_sys_cap(b, it.clerk, it.cap,
						head.state, &r);
			mb_sys_unuse(s);
			if (!err)
				atomic_fetch_add(&s->grows, 1);
		}
		/* the daemon learns the bytes from the result */
		if (!err && rc)
			rc->c.bytes = r.bytes;
		res = (struct mbd_ask_result){
			.clerk = it.clerk,
			.status = err ? err : r.status,
			.freed = r.freed,
			.bytes = r.bytes,
			.cap = err ? UINT64_MAX : r.cap,
		};
		/* ASK items and results are the same size: one packet */
		mb_sys_put(s, &res, sizeof(res));
	}
	return mb_sys_flush(s, false);
}

static void mb_sys_registered(struct mb_sys *s, const struct mbd_msg *h,
			      const unsigned char *p)
{
	struct mbd_registered r = { 0 };

	if (h->status < 0) {
		/* a daemon that will not have us: as if there were none */
		s->backoff_ns = MB_SYS_BACKOFF_MAX_MS * MB_NSEC_PER_MSEC;
		return;
	}
	memcpy(&r, p, MB_MIN(h->len, sizeof(r)));
	if (r.silence_ms)
		atomic_store(&s->silence_ms, r.silence_ms);
	if (r.report_ms)
		s->report_min_ns = r.report_ms * MB_NSEC_PER_MSEC;
	s->report_gap_ns = s->report_min_ns;
	s->backoff_ns = MB_SYS_BACKOFF_MIN_MS * MB_NSEC_PER_MSEC;
	atomic_store(&s->client, r.client);
	atomic_store(&s->registered, true);
	atomic_store(&s->state, MB_SYSTEM_REGISTERED);
	atomic_fetch_add(&s->registrations, 1);
}

/* One message; -errno: the connection is to go. */
static int mb_sys_handle(struct mb_sys *s, size_t len, uint64_t now)
{
	const unsigned char *p = s->in + sizeof(struct mbd_msg);
	struct mbd_msg h;

	if (len < sizeof(h))
		return -EBADMSG;
	memcpy(&h, s->in, sizeof(h));
	if (h.magic != MBD_MAGIC || h.len != len - sizeof(h))
		return -EBADMSG;
	atomic_store(&s->last_heard_ns, now);
	if (h.type & MBD_MSG_REPLY) {
		if (h.type == (MBD_MSG_REGISTER | MBD_MSG_REPLY))
			mb_sys_registered(s, &h, p);
		/* a refused report: the next says everything again */
		else if (h.type == (MBD_MSG_REPORT | MBD_MSG_REPLY) &&
			 h.status < 0)
			s->resync = true;
		return 0;
	}
	if (h.version != MBD_VERSION)
		return mb_sys_reply_status(s, &h, -EPROTONOSUPPORT);
	switch (h.type) {
	case MBD_MSG_POLL:
		atomic_fetch_add(&s->polls, 1);
		return MB_MIN(mb_sys_report(s, now, h.id), 0);
	case MBD_MSG_ASK:
		return mb_sys_ask(s, &h, p);
	default:
		return mb_sys_reply_status(s, &h, -EOPNOTSUPP);
	}
}

static void mb_sys_read(struct mb_sys *s, uint64_t now)
{
	ssize_t n;
	int err;

	while (s->fd >= 0) {
		n = recv(s->fd, s->in, MBD_MSG_MAX, MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0 || n > MBD_MSG_MAX) {
			/* gone (0), failed, or not the daemon we know */
			mb_sys_disconnect(s, now);
			return;
		}
		err = mb_sys_handle(s, (size_t)n, now);
		/* a reply that did not fit is the daemon's timeout to see */
		if (err && err != -EAGAIN && err != -ENOMEM)
			mb_sys_disconnect(s, now);
	}
}

/*
 * From the monitor's dispatch: connect when due, read what came, report
 * when due.  @revents: what the monitor's epoll saw on the connection.
 * Returns when the monitor should call again even if nothing happens
 * (CLOCK_MONOTONIC ns; UINT64_MAX: never).
 */
uint64_t mb_sys_dispatch(struct mb_sys *s, uint32_t revents, uint64_t now)
{
	uint32_t test_ms;
	int put;

	if (s->disabled || s->forked)
		return UINT64_MAX;
	if (s->fd < 0) {
		if (!mb_sys_count_att(s)) {
			atomic_store(&s->state, MB_SYSTEM_IDLE);
			return UINT64_MAX;
		}
		if (now < s->connect_due)
			return s->connect_due;
		mb_sys_connect(s, now);
		if (s->fd < 0)
			return s->connect_due;
		s->report_due = now + s->report_gap_ns;
	}
	if (revents)
		mb_sys_read(s, now);
	if (s->fd < 0)
		return s->connect_due;
	test_ms = atomic_load(&s->test_report_ms);
	if (atomic_exchange(&s->report_now, false) || now >= s->report_due) {
		put = mb_sys_report(s, now, 0);
		if (put < 0 && put != -EAGAIN && put != -ENOMEM) {
			mb_sys_disconnect(s, now);
			return s->connect_due;
		}
		/* busy: the shortest interval; quiet: ever longer */
		if (put > 0)
			s->report_gap_ns = s->report_min_ns;
		else
			s->report_gap_ns = MB_MIN(s->report_gap_ns * 2,
						  MB_SYS_REPORT_MAX_NS);
		if (test_ms)
			s->report_gap_ns = test_ms * MB_NSEC_PER_MSEC;
		s->report_due = now + s->report_gap_ns;
	}
	return s->report_due;
}

void mb_sys_note(struct mb_sys *s, const struct mb_notification *n)
{
	if (n->state != MB_STATE_LOW)
		atomic_store(&s->low_since_ns, 0);
	else if (!atomic_load(&s->low_since_ns))
		atomic_store(&s->low_since_ns, mb_now_ns());
}

bool mb_sys_in_charge(struct mb_sys *s, const struct mb_notification *n)
{
	uint64_t since, silence, now;
	uint32_t ms;

	/* the cgroup's limit is this process's business, not the machine's */
	if (!atomic_load(&s->registered) || n->source == MB_SOURCE_CGROUP)
		return false;
	ms = atomic_load(&s->test_silence_ms);
	silence = (ms ? ms : atomic_load(&s->silence_ms)) * MB_NSEC_PER_MSEC;
	since = MB_MAX(atomic_load(&s->last_heard_ns),
		       atomic_load(&s->low_since_ns));
	now = mb_now_ns();
	return now < since || now - since < silence;
}

int mb_sys_status(struct mb_sys *s, struct mb_system_status *out)
{
	struct mb_system_status st = { .sz = out->sz };
	struct mb_notification n = { .state = MB_STATE_LOW };

	st.state = atomic_load(&s->state);
	if (atomic_load(&s->low_since_ns) && mb_sys_in_charge(s, &n))
		st.flags |= MB_SYSTEM_IN_CHARGE;
	st.client = atomic_load(&s->client);
	st.registrations = atomic_load(&s->registrations);
	st.reports = atomic_load(&s->reports);
	st.polls = atomic_load(&s->polls);
	st.shrinks = atomic_load(&s->shrinks);
	st.freed = atomic_load(&s->freed);
	st.grows = atomic_load(&s->grows);
	memcpy(out, &st, MB_MIN(out->sz, sizeof(st)));
	return 0;
}

void mb_sys_set_timing(struct mb_sys *s, uint32_t report_ms,
		       uint32_t silence_ms)
{
	atomic_store(&s->test_report_ms, report_ms);
	atomic_store(&s->test_silence_ms, silence_ms);
}

void mb_sys_report_now(struct mb_sys *s)
{
	atomic_store(&s->report_now, true);
	mb_sys_kick(s);
}

/*
 * mb_monitor_free(): no more connections.  The brokers still attached
 * lose their caps: nobody will lift them.
 */
void mb_sys_close(struct mb_sys *s)
{
	if (!s)
		return;
	if (s->fd >= 0) {
		if (s->forked) {
			close(s->fd);	/* the parent's: only our copy */
			s->fd = -1;
		} else {
			mb_sys_disconnect(s, mb_now_ns());
		}
	}
	s->disabled = true;
	atomic_store(&s->state, MB_SYSTEM_OFF);
	mb_lock(&s->lock);
	s->efd = -1;
	mb_unlock(&s->lock);
}

void mb_sys_free(struct mb_sys *s)
{
	if (!s)
		return;
	mb_lock_destroy(&s->lock);
	pthread_cond_destroy(&s->idle);
	free(s->att);
	free(s->pools);
	free(s->clerks);
	free(s->in);
	free(s->out);
	free(s);
}

/* In the child of fork(), with every inner lock held. */
void mb_sys_after_fork_child(struct mb_sys *s)
{
	if (!s)
		return;
	s->forked = true;
	atomic_store(&s->registered, false);
	atomic_store(&s->client, 0);
	atomic_store(&s->state, MB_SYSTEM_IDLE);
	/* nobody of the child waits on it */
	s->inuse = 0;
	pthread_cond_init(&s->idle, NULL);
}
