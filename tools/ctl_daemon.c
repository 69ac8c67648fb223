// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Talking to membrokerd over its control socket (daemon/protocol.h):
 * where the socket is, connecting, and the requests whose replies are
 * lists (MBD_MSG_CLERKS, MBD_MSG_DECISIONS).  Needs only libc.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl.h"
#include "protocol.h"

/* -S as given, else $MEMBROKERD_SOCKET, else the default */
const char *ctl_daemon_path(const char *arg)
{
	const char *path = arg;

	if (!path || !*path)
		path = getenv("MEMBROKERD_SOCKET");
	if (!path || !*path)
		path = MBD_CONTROL_SOCKET;
	return path;
}

/* A connected control socket (close-on-exec), or -errno. */
int ctl_daemon_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, err;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

/**
 * ctl_daemon_list() - a request whose reply is a list, item by item
 * @fd: the connection
 * @type: MBD_MSG_CLERKS or MBD_MSG_DECISIONS
 * @req: the request's payload, may be NULL
 * @len: its length
 * @item: called with each item and its size (which may be larger than the
 *	structure the tool knows: newer fields come at the end)
 * @arg: its argument
 *
 * Return: 0, or -errno: the daemon's status, -EBADMSG for a reply that
 * does not parse, -ECONNRESET when the daemon hung up.
 */
int ctl_daemon_list(int fd, uint16_t type, const void *req, size_t len,
		    void (*item)(const void *p, size_t size, void *arg),
		    void *arg)
{
	struct mbd_msg h = {
		.magic = MBD_MAGIC, .version = MBD_VERSION, .type = type,
		.id = 1, .len = len,
	};
	struct iovec iov[2] = {
		{ .iov_base = &h, .iov_len = sizeof(h) },
		{ .iov_base = (void *)req, .iov_len = len },
	};
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = len ? 2 : 1 };
	struct mbd_list head;
	unsigned char *buf;
	ssize_t n;
	size_t i;
	int ret = 0;

	if (sendmsg(fd, &mh, MSG_NOSIGNAL) < 0)
		return -errno;
	buf = malloc(MBD_MSG_MAX);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		n = recv(fd, buf, MBD_MSG_MAX, 0);
		if (n < 0) {
			ret = -errno;
			break;
		}
		if ((size_t)n < sizeof(h)) {
			ret = n ? -EBADMSG : -ECONNRESET;
			break;
		}
		memcpy(&h, buf, sizeof(h));
		if (h.magic != MBD_MAGIC || h.id != 1 ||
		    h.type != (type | MBD_MSG_REPLY) ||
		    h.len != n - sizeof(h)) {
			ret = -EBADMSG;
			break;
		}
		if (h.status) {
			ret = h.status < 0 ? h.status : -EPROTO;
			break;
		}
		if (h.len < sizeof(head)) {
			ret = -EBADMSG;
			break;
		}
		memcpy(&head, buf + sizeof(h), sizeof(head));
		if (head.count &&
		    (!head.item_size ||
		     sizeof(head) + (size_t)head.count * head.item_size >
		     h.len)) {
			ret = -EBADMSG;
			break;
		}
		for (i = 0; i < head.count; i++)
			item(buf + sizeof(h) + sizeof(head) +
			     i * head.item_size, head.item_size, arg);
		if (!(h.flags & MBD_F_MORE))
			break;
	}
	free(buf);
	return ret;
}
