// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * systemd's memory pressure protocol, served on an AF_UNIX stream socket.
 *
 * A service reads $MEMORY_PRESSURE_WATCH; when it names an AF_UNIX socket
 * (sd_event_add_memory_pressure() in libsystemd 254 and later does this),
 * the service connects, writes the base64-decoded $MEMORY_PRESSURE_WRITE
 * if that is set, and then takes every POLLIN as memory pressure, reading
 * and discarding what arrived (sd-event reads up to PIPE_BUF bytes per
 * event).  An administrator points a unit at this socket with
 *
 *	[Service]
 *	Environment=MEMORY_PRESSURE_WATCH=/run/membroker/memory-pressure.sock
 *	MemoryPressureWatch=off
 *
 * (Environment= wins over the /dev/null that MemoryPressureWatch=off puts
 * there, and "off" keeps systemd from setting a PSI threshold in
 * $MEMORY_PRESSURE_WRITE that would mean nothing here.)
 *
 * So every client gets one short line, the level in decimal ("50\n"),
 * whenever the LowMemoryMonitor signal goes out: on LOW, at once when it
 * deepens, again every repeat interval while it lasts, never otherwise.
 * A client that connects while LOW lasts gets one at once.  Whatever a
 * client writes is read and thrown away: the protocol's threshold string
 * means nothing to us.
 *
 * Nothing a client does may hold up the daemon or another client:
 *  - writes never block: each client's send buffer is small
 *    (MBD_PRESSURE_SNDBUF), and an event that finds it full is dropped
 *    for that client only; one unread event already tells it everything;
 *  - a client that writes more than MBD_PRESSURE_INPUT_MAX bytes is not
 *    speaking the protocol and is disconnected;
 *  - at most max_clients are connected; more are accepted and closed at
 *    once, so the backlog never fills with people waiting;
 *  - out of file descriptors, we stop accepting until a client leaves.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <systemd/sd-event.h>

#include "membrokerd.h"

#define MBD_PRESSURE_SNDBUF	4096
#define MBD_PRESSURE_INPUT_MAX	65536
#define MBD_ACCEPT_BATCH	64

struct mbd_pclient {
	struct mbd_pressure *p;
	int fd;
	sd_event_source *src;
	uint64_t input;		/* bytes it wrote to us */
	struct mbd_pclient *prev, *next;
};

struct mbd_pressure {
	struct mbd_unix u;
	sd_event_source *listen_src;
	unsigned int max;
	uint8_t level;		/* in force; 0: no pressure */
	bool paused;		/* out of fds: not accepting */
	struct mbd_pclient *clients;
	struct mbd_pressure_stats st;
};

static void mbd_pclient_free(struct mbd_pclient *c)
{
	struct mbd_pressure *p = c->p;

	if (c->prev)
		c->prev->next = c->next;
	else
		p->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	sd_event_source_disable_unref(c->src);
	close(c->fd);
	free(c);
	p->st.clients--;
	if (p->paused) {
		p->paused = false;
		sd_event_source_set_enabled(p->listen_src, SD_EVENT_ON);
	}
}

/* 0 sent, 1 no room (dropped), -errno: the client is gone */
static int mbd_pclient_send(struct mbd_pclient *c, uint8_t level)
{
	char line[8];
	int len;

	len = snprintf(line, sizeof(line), "%u\n", level);
	if (send(c->fd, line, len, MSG_DONTWAIT | MSG_NOSIGNAL) == len) {
		c->p->st.writes++;
		return 0;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		c->p->st.dropped++;
		return 1;
	}
	return -errno;
}

static int mbd_pclient_io(sd_event_source *s, int fd, uint32_t revents,
			  void *arg)
{
	struct mbd_pclient *c = arg;
	char buf[4096];
	ssize_t n;
	int i;

	(void)s;
	/* bounded: a chatty client cannot keep the loop to itself */
	for (i = 0; i < 4 && (revents & EPOLLIN); i++) {
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0) {
			c->input += n;
			if (c->input > MBD_PRESSURE_INPUT_MAX)
				goto drop;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		goto drop;	/* 0: it hung up; or an error */
	}
	if (revents & (EPOLLHUP | EPOLLERR))
		goto drop;
	return 0;
drop:
	mbd_pclient_free(c);
	return 0;
}

static void mbd_pressure_add(struct mbd_pressure *p, int fd)
{
	int sndbuf = MBD_PRESSURE_SNDBUF;
	struct mbd_pclient *c;

	if (p->st.clients >= p->max) {
		p->st.refused++;
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		goto fail;
	c->p = p;
	c->fd = fd;
	/* a few events queue at most; one unread is as good as many */
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	if (sd_event_add_io(sd_event_source_get_event(p->listen_src), &c->src,
			    fd, EPOLLIN | EPOLLRDHUP, mbd_pclient_io, c) < 0)
		goto fail;
	c->next = p->clients;
	if (p->clients)
		p->clients->prev = c;
	p->clients = c;
	p->st.clients++;
	p->st.accepted++;
	/* LOW lasts: a service starting now should know at once */
	if (p->level && mbd_pclient_send(c, p->level) < 0)
		mbd_pclient_free(c);
	return;
fail:
	p->st.refused++;
	free(c);
	close(fd);
}

static int mbd_pressure_accept(sd_event_source *s, int fd, uint32_t revents,
			       void *arg)
{
	struct mbd_pressure *p = arg;
	int i, cfd;

	(void)revents;
	for (i = 0; i < MBD_ACCEPT_BATCH; i++) {
		cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd >= 0) {
			mbd_pressure_add(p, cfd);
			continue;
		}
		if (errno == EMFILE || errno == ENFILE) {
			/* until a client leaves; else the loop would spin */
			p->paused = true;
			sd_event_source_set_enabled(s, SD_EVENT_OFF);
		}
		break;
	}
	return 0;
}

/**
 * mbd_pressure_open() - listen on @path
 * @out: receives the socket's state
 * @e: the event loop
 * @path: where; a stale socket there is replaced, a live one refused
 * @max_clients: how many may be connected at once
 *
 * Return: 0, or -errno (-EADDRINUSE: served by a live process; -EEXIST:
 * not a socket).  The message for the user is printed here.
 */
int mbd_pressure_open(struct mbd_pressure **out, sd_event *e,
		      const char *path, unsigned int max_clients)
{
	struct mbd_pressure *p;
	int r;

	*out = NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->max = max_clients;
	r = mbd_unix_listen(&p->u, path, SOCK_STREAM, 0666);
	if (r < 0) {
		mbd_log("cannot listen on %s: %s", path,
			r == -EADDRINUSE ? "another process serves it" :
			r == -EEXIST ? "it exists and is not a socket" :
			strerror(-r));
		free(p);
		return r;
	}
	r = sd_event_add_io(e, &p->listen_src, p->u.fd, EPOLLIN,
			    mbd_pressure_accept, p);
	if (r < 0) {
		mbd_log("cannot watch %s: %s", path, strerror(-r));
		mbd_pressure_close(p);
		return r;
	}
	*out = p;
	return 0;
}

void mbd_pressure_close(struct mbd_pressure *p)
{
	if (!p)
		return;
	while (p->clients)
		mbd_pclient_free(p->clients);
	sd_event_source_disable_unref(p->listen_src);
	mbd_unix_close(&p->u);
	free(p);
}

/**
 * mbd_pressure_pulse() - tell every client about pressure at @level
 * @p: the socket
 * @level: 50, 100 or 255, the level of the D-Bus signal going out
 */
void mbd_pressure_pulse(struct mbd_pressure *p, uint8_t level)
{
	struct mbd_pclient *c, *next;

	p->st.pulses++;
	for (c = p->clients; c; c = next) {
		next = c->next;
		if (mbd_pclient_send(c, level) < 0)
			mbd_pclient_free(c);
	}
}

/**
 * mbd_pressure_set_level() - the level in force, for clients to come
 * @p: the socket
 * @level: 0 when there is no pressure
 */
void mbd_pressure_set_level(struct mbd_pressure *p, uint8_t level)
{
	p->level = level;
}

void mbd_pressure_stats(const struct mbd_pressure *p,
			struct mbd_pressure_stats *out)
{
	*out = p->st;
}
