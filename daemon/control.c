// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The control socket: membrokerctl asks the daemon for its metrics here,
 * and processes register with the system broker (sysbroker.c), which
 * sends them its own requests over the same connection.  protocol.h
 * describes the protocol; this file serves version 1: it checks the
 * messages and hands the system broker's to sysbroker.c.
 *
 * Like the pressure socket, nothing a client does may hold the daemon up:
 * replies are sent without blocking, and a client whose socket has no
 * room for its reply (it does not read) is disconnected; a client that
 * sends what is not a message is told so and disconnected; at most
 * MBD_CONTROL_CLIENTS are connected at once.  Who a client is comes from
 * SO_PEERCRED, taken when it connects.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <systemd/sd-event.h>

#include "membrokerd.h"
#include "protocol.h"

/* every process that uses the library is a client: room for many */
#define MBD_CONTROL_CLIENTS	1024
#define MBD_CHUNK		16384

struct mbd_cclient {
	struct mbd_control *c;
	int fd;
	sd_event_source *src;
	struct ucred cred;
	struct mbd_sclient *sc;		/* registered with the system broker */
	struct mbd_cclient *prev, *next;
};

struct mbd_control {
	struct mbd_unix u;
	sd_event_source *listen_src;
	const struct mbd_sources *src;
	struct mbd_follow *follow;
	struct mbd_sys *sys;
	bool fake;
	bool paused;		/* out of fds: not accepting */
	struct mbd_cclient *clients;
	struct mbd_control_stats st;
	/* one request at a time: the loop is single-threaded */
	unsigned char buf[MBD_MSG_MAX];
};

static void mbd_cclient_free(struct mbd_cclient *cl)
{
	struct mbd_control *c = cl->c;

	/* its clerks leave the system broker's order */
	if (cl->sc)
		mbd_sys_gone(cl->sc);
	if (cl->prev)
		cl->prev->next = cl->next;
	else
		c->clients = cl->next;
	if (cl->next)
		cl->next->prev = cl->prev;
	sd_event_source_disable_unref(cl->src);
	close(cl->fd);
	free(cl);
	c->st.clients--;
	if (c->paused) {
		c->paused = false;
		sd_event_source_set_enabled(c->listen_src, SD_EVENT_ON);
	}
}

/* 0, or -errno: the client cannot take it and must go */
static int mbd_reply(struct mbd_cclient *cl, const struct mbd_msg *req,
		     int status, uint32_t flags, const void *data,
		     size_t len)
{
	struct mbd_msg h = {
		.magic = MBD_MAGIC,
		.version = status == -EPROTONOSUPPORT ? MBD_VERSION :
			   req->version,
		.type = req->type | MBD_MSG_REPLY,
		.id = req->id,
		.flags = flags,
		.status = status,
		.len = len,
	};
	struct iovec iov[2] = {
		{ .iov_base = &h, .iov_len = sizeof(h) },
		{ .iov_base = (void *)data, .iov_len = len },
	};
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = len ? 2 : 1 };

	if (status < 0)
		cl->c->st.errors++;
	if (sendmsg(cl->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		return -errno;
	return 0;
}

static int mbd_do_metrics(struct mbd_cclient *cl, const struct mbd_msg *req)
{
	char *text = NULL;
	size_t len = 0, off = 0, n;
	int r;

	r = mbd_metrics_render(cl->c->src, &text, &len);
	if (r < 0)
		return mbd_reply(cl, req, r, 0, NULL, 0);
	do {
		n = len - off > MBD_CHUNK ? MBD_CHUNK : len - off;
		r = mbd_reply(cl, req, 0, off + n < len ? MBD_F_MORE : 0,
			      text + off, n);
		off += n;
	} while (!r && off < len);
	free(text);
	return r;
}

static int mbd_do_hello(struct mbd_cclient *cl, const struct mbd_msg *req)
{
	struct mbd_follow_stats st;
	struct mbd_hello h = {
		.version_min = MBD_VERSION,
		.version_max = MBD_VERSION,
		.pid = getpid(),
	};

	mbd_follow_stats(cl->c->follow, &st);
	h.source = st.source;
	return mbd_reply(cl, req, 0, 0, &h, sizeof(h));
}

static int mbd_do_fake_push(struct mbd_cclient *cl, const struct mbd_msg *req,
			    const void *payload)
{
	struct mbd_fake_push fp;
	struct mb_notification n = { 0 };
	int r;

	if (!cl->c->fake)
		return mbd_reply(cl, req, -EOPNOTSUPP, 0, NULL, 0);
	if (cl->cred.uid != geteuid())
		return mbd_reply(cl, req, -EPERM, 0, NULL, 0);
	if (req->len < sizeof(fp))
		return mbd_reply(cl, req, -EINVAL, 0, NULL, 0);
	memcpy(&fp, payload, sizeof(fp));
	n.time_ns = fp.time_ns;
	n.state = fp.state;
	n.flags = fp.flags;
	n.reason = fp.reason;
	n.available = fp.available;
	n.total = fp.total;
	n.low = fp.low;
	n.high = fp.high;
	r = fp.state < MB_STATE_LOW ? -EINVAL :
	    mbd_follow_fake_push(cl->c->follow, &n);
	return mbd_reply(cl, req, r, 0, NULL, 0);
}

/**
 * mbd_control_request() - a request of the daemon's to a client
 * @cl: the client
 * @type: MBD_MSG_POLL or MBD_MSG_ASK
 * @id: the daemon's id for it
 * @p: the payload
 * @len: its length
 *
 * Return: 0, or -errno when it could not be sent (-EAGAIN: the client's
 * socket is full; the system broker takes that for no answer).
 */
int mbd_control_request(struct mbd_cclient *cl, uint16_t type, uint32_t id,
			const void *p, size_t len)
{
	struct mbd_msg h = {
		.magic = MBD_MAGIC, .version = MBD_VERSION, .type = type,
		.id = id, .len = len,
	};
	struct iovec iov[2] = {
		{ .iov_base = &h, .iov_len = sizeof(h) },
		{ .iov_base = (void *)p, .iov_len = len },
	};
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = len ? 2 : 1 };

	if (sendmsg(cl->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		return -errno;
	return 0;
}

static int mbd_do_register(struct mbd_cclient *cl, const struct mbd_msg *req,
			   const void *payload)
{
	struct mbd_registered r;
	size_t rlen = 0;
	int err;

	if (!cl->c->sys)
		return mbd_reply(cl, req, -EOPNOTSUPP, 0, NULL, 0);
	if (cl->sc)
		return mbd_reply(cl, req, -EALREADY, 0, NULL, 0);
	err = mbd_sys_register(cl->c->sys, cl, &cl->cred, payload, req->len,
			       &cl->sc, &r, &rlen);
	return mbd_reply(cl, req, err, 0, err ? NULL : &r, err ? 0 : rlen);
}

/*
 * Lists in packets: a full one goes out (MBD_F_MORE) when another item
 * comes, the last without.
 */
struct mbd_lister {
	struct mbd_cclient *cl;
	const struct mbd_msg *req;
	struct mbd_list head;
	size_t len;
	int err;
};

static int mbd_list_send(struct mbd_lister *l, bool more)
{
	unsigned char *buf = l->cl->c->buf;

	memcpy(buf, &l->head, sizeof(l->head));
	l->err = mbd_reply(l->cl, l->req, 0, more ? MBD_F_MORE : 0, buf,
			   sizeof(l->head) + l->len);
	l->head.count = 0;
	l->len = 0;
	return l->err;
}

static int mbd_list_emit(void *arg, const void *item, size_t len)
{
	struct mbd_lister *l = arg;
	unsigned char *buf = l->cl->c->buf;

	if (sizeof(l->head) + l->len + len > MBD_CHUNK && mbd_list_send(l, true))
		return l->err;
	l->head.item_size = len;
	memcpy(buf + sizeof(l->head) + l->len, item, len);
	l->len += len;
	l->head.count++;
	return 0;
}

static int mbd_do_list(struct mbd_cclient *cl, const struct mbd_msg *req,
		       const void *payload)
{
	struct mbd_lister l = { .cl = cl, .req = req };
	struct mbd_decisions_req dr = { 0 };
	int err;

	if (!cl->c->sys)
		return mbd_reply(cl, req, -EOPNOTSUPP, 0, NULL, 0);
	if (req->type == MBD_MSG_CLERKS) {
		l.head.item_size = sizeof(struct mbd_clerk_row);
		err = mbd_sys_clerks(cl->c->sys, cl->cred.uid, mbd_list_emit,
				     &l);
	} else {
		memcpy(&dr, payload, req->len < sizeof(dr) ? req->len :
							    sizeof(dr));
		l.head.item_size = sizeof(struct mbd_decision);
		err = mbd_sys_decisions(cl->c->sys, cl->cred.uid, dr.from_seq,
					mbd_list_emit, &l);
	}
	/* a reply that could not be sent: the client goes */
	if (err)
		return err;
	return mbd_list_send(&l, false);
}

/* 0: go on; -errno: disconnect the client */
static int mbd_control_handle(struct mbd_cclient *cl, size_t len)
{
	struct mbd_control *c = cl->c;
	struct mbd_msg req;
	const unsigned char *payload = c->buf + sizeof(req);
	int r;

	if (len < sizeof(req)) {
		/* not even a header: answer in kind, as best we can */
		memset(&req, 0, sizeof(req));
		req.version = MBD_VERSION;
		mbd_reply(cl, &req, -EBADMSG, 0, NULL, 0);
		return -EBADMSG;
	}
	memcpy(&req, c->buf, sizeof(req));
	if (req.magic != MBD_MAGIC || req.len != len - sizeof(req) ||
	    ((req.type & MBD_MSG_REPLY) && !cl->sc)) {
		mbd_reply(cl, &req, -EBADMSG, 0, NULL, 0);
		return -EBADMSG;
	}
	if (req.type & MBD_MSG_REPLY) {
		/* an answer to the system broker's request */
		mbd_sys_answer(cl->sc, req.type, req.id, req.status, req.flags,
			       payload, req.len);
		return 0;
	}
	c->st.requests++;
	if (req.version != MBD_VERSION)
		return mbd_reply(cl, &req, -EPROTONOSUPPORT, 0, NULL, 0);
	switch (req.type) {
	case MBD_MSG_HELLO:
		return mbd_do_hello(cl, &req);
	case MBD_MSG_METRICS:
		return mbd_do_metrics(cl, &req);
	case MBD_MSG_FAKE_PUSH:
		r = mbd_do_fake_push(cl, &req, payload);
		break;
	case MBD_MSG_REGISTER:
		return mbd_do_register(cl, &req, payload);
	case MBD_MSG_REPORT:
		r = cl->sc ? mbd_sys_report(cl->sc, payload, req.len) : -EPERM;
		return mbd_reply(cl, &req, r, 0, NULL, 0);
	case MBD_MSG_CLERKS:
	case MBD_MSG_DECISIONS:
		return mbd_do_list(cl, &req, payload);
	default:
		return mbd_reply(cl, &req, -EOPNOTSUPP, 0, NULL, 0);
	}
	return r;
}

static int mbd_cclient_io(sd_event_source *s, int fd, uint32_t revents,
			  void *arg)
{
	struct mbd_cclient *cl = arg;
	struct mbd_control *c = cl->c;
	ssize_t n;
	int r;

	(void)s;
	if (!(revents & EPOLLIN))
		goto drop;
	n = recv(fd, c->buf, sizeof(c->buf), MSG_DONTWAIT | MSG_TRUNC);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0)
		goto drop;	/* 0: it hung up */
	if ((size_t)n > sizeof(c->buf))
		n = 0;		/* too long to be a message */
	r = mbd_control_handle(cl, n);
	if (r == -EAGAIN || r == -EWOULDBLOCK || r == -ENOBUFS)
		c->st.dropped++;
	if (r < 0)
		goto drop;
	return 0;
drop:
	mbd_cclient_free(cl);
	return 0;
}

static void mbd_control_add(struct mbd_control *c, int fd)
{
	struct mbd_cclient *cl;
	socklen_t sl = sizeof(cl->cred);

	if (c->st.clients >= MBD_CONTROL_CLIENTS) {
		close(fd);
		return;
	}
	cl = calloc(1, sizeof(*cl));
	if (!cl) {
		close(fd);
		return;
	}
	cl->c = c;
	cl->fd = fd;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cl->cred, &sl) ||
	    sd_event_add_io(sd_event_source_get_event(c->listen_src),
			    &cl->src, fd, EPOLLIN, mbd_cclient_io, cl) < 0) {
		close(fd);
		free(cl);
		return;
	}
	cl->next = c->clients;
	if (c->clients)
		c->clients->prev = cl;
	c->clients = cl;
	c->st.clients++;
	c->st.accepted++;
}

static int mbd_control_accept(sd_event_source *s, int fd, uint32_t revents,
			      void *arg)
{
	struct mbd_control *c = arg;
	int i, cfd;

	(void)revents;
	for (i = 0; i < 16; i++) {
		cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd >= 0) {
			mbd_control_add(c, cfd);
			continue;
		}
		if (errno == EMFILE || errno == ENFILE) {
			/* until a client leaves; else the loop would spin */
			c->paused = true;
			sd_event_source_set_enabled(s, SD_EVENT_OFF);
		}
		break;
	}
	return 0;
}

/**
 * mbd_control_open() - serve the control socket at @path
 * @out: receives its state
 * @e: the event loop
 * @path: where; a stale socket there is replaced, a live one refused
 * @src: the figures for MBD_MSG_METRICS; must outlive the socket
 * @follow: the monitor side (MBD_MSG_HELLO, MBD_MSG_FAKE_PUSH)
 * @sys: the system broker, or NULL for none
 * @fake: offer MBD_MSG_FAKE_PUSH (the daemon runs --source=fake)
 *
 * Return: 0 or -errno (-EADDRINUSE: a live process serves @path); the
 * message for the user is printed here.
 */
int mbd_control_open(struct mbd_control **out, sd_event *e, const char *path,
		     const struct mbd_sources *src, struct mbd_follow *follow,
		     struct mbd_sys *sys, bool fake)
{
	struct mbd_control *c;
	int r;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->src = src;
	c->follow = follow;
	c->sys = sys;
	c->fake = fake;
	r = mbd_unix_listen(&c->u, path, SOCK_SEQPACKET, 0666);
	if (r < 0) {
		mbd_log("cannot listen on %s: %s", path,
			r == -EADDRINUSE ? "another process serves it" :
			r == -EEXIST ? "it exists and is not a socket" :
			strerror(-r));
		free(c);
		return r;
	}
	r = sd_event_add_io(e, &c->listen_src, c->u.fd, EPOLLIN,
			    mbd_control_accept, c);
	if (r < 0) {
		mbd_log("cannot watch %s: %s", path, strerror(-r));
		mbd_control_close(c);
		return r;
	}
	*out = c;
	return 0;
}

void mbd_control_close(struct mbd_control *c)
{
	if (!c)
		return;
	while (c->clients)
		mbd_cclient_free(c->clients);
	sd_event_source_disable_unref(c->listen_src);
	mbd_unix_close(&c->u);
	free(c);
}

void mbd_control_stats(const struct mbd_control *c,
		       struct mbd_control_stats *out)
{
	*out = c->st;
}
