// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The daemon's listening AF_UNIX sockets, and what to do when their path
 * is taken.
 *
 * A path that holds a socket is either served (another membrokerd, or
 * anything else listening there) or stale (left behind by a daemon that
 * died without cleaning up).  Only a connect() can tell: a live listener
 * accepts it, a stale socket refuses it with ECONNREFUSED.  A live one
 * makes us refuse to start (-EADDRINUSE); a stale one is removed and the
 * path reused.  A path that holds anything but a socket is never removed
 * (-EEXIST): that is somebody's file.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "membrokerd.h"

static int mbd_unix_addr(struct sockaddr_un *sa, const char *path)
{
	size_t len = strlen(path);

	if (!len || len >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, path, len);
	return 0;
}

/* 1: something listens at @path; 0: a stale socket; -errno */
static int mbd_unix_alive(const struct sockaddr_un *sa, int type)
{
	int fd, ret;

	fd = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	ret = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	if (!ret || errno == EAGAIN || errno == EINPROGRESS)
		ret = 1;	/* EAGAIN: alive, its backlog is full */
	else if (errno == ECONNREFUSED)
		ret = 0;
	else if (errno == EPROTOTYPE)
		ret = 1;	/* a listener of another type: not ours */
	else
		ret = -errno;
	close(fd);
	return ret;
}

/**
 * mbd_unix_listen() - bind and listen on @path
 * @u: receives the socket; closed with mbd_unix_close()
 * @path: the socket's path; its directory is created if missing (mode
 *	0755, one level only)
 * @type: SOCK_STREAM or SOCK_SEQPACKET
 * @mode: the socket file's mode
 *
 * Return: 0 with @u->fd listening (non-blocking, close-on-exec);
 * -EADDRINUSE when something listens there already; -EEXIST when the path
 * holds something that is not a socket; -ENAMETOOLONG; or another -errno.
 */
int mbd_unix_listen(struct mbd_unix *u, const char *path, int type,
		    unsigned int mode)
{
	struct sockaddr_un sa;
	struct stat st;
	char dir[sizeof(sa.sun_path)];
	char *slash;
	int fd, err;

	u->fd = -1;
	err = mbd_unix_addr(&sa, path);
	if (err)
		return err;
	memcpy(dir, sa.sun_path, sizeof(dir));
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) && errno != EEXIST)
			return -errno;
	}

	fd = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		if (errno != EADDRINUSE) {
			err = -errno;
			goto fail;
		}
		if (lstat(path, &st)) {
			err = -errno;
			goto fail;
		}
		if (!S_ISSOCK(st.st_mode)) {
			err = -EEXIST;
			goto fail;
		}
		err = mbd_unix_alive(&sa, type);
		if (err) {
			err = err > 0 ? -EADDRINUSE : err;
			goto fail;
		}
		/* stale: left by a daemon that is gone */
		if (unlink(path) && errno != ENOENT) {
			err = -errno;
			goto fail;
		}
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
			err = -errno;
			goto fail;
		}
	}
	if (chmod(path, mode) || lstat(path, &st) || listen(fd, SOMAXCONN)) {
		err = -errno;
		unlink(path);
		goto fail;
	}
	u->fd = fd;
	u->dev = st.st_dev;
	u->ino = st.st_ino;
	memcpy(u->path, sa.sun_path, sizeof(u->path));
	return 0;
fail:
	close(fd);
	return err;
}

/**
 * mbd_unix_close() - close the socket, remove its path if it is still ours
 * @u: what mbd_unix_listen() filled in; a closed one (fd -1) is left alone
 *
 * A daemon that started after us and reclaimed the path keeps it.
 */
void mbd_unix_close(struct mbd_unix *u)
{
	struct stat st;

	if (u->fd < 0)
		return;
	if (!lstat(u->path, &st) && st.st_ino == u->ino && st.st_dev == u->dev)
		unlink(u->path);
	close(u->fd);
	u->fd = -1;
}
