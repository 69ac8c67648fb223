// SPDX-License-Identifier: GPL-2.0
/*
 * The guest's end of the host control channel (see mb_host.h and
 * scripts/vm/director.py).  The tty is opened per request in raw mode so
 * that nothing echoes or rewrites the line; requests are serialised by
 * the callers (one test at a time drives the VM's memory).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "mb_host.h"

#define MB_HOST_TIMEOUT_MS	30000

static int64_t ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int open_tty(void)
{
	struct termios t;
	int fd;

	fd = open(MB_HOST_TTY, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (tcgetattr(fd, &t) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	cfmakeraw(&t);
	cfsetspeed(&t, B115200);
	if (tcsetattr(fd, TCSANOW, &t) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	/* a reply to an earlier request that timed out must not be read */
	tcflush(fd, TCIOFLUSH);
	return fd;
}

static int write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len) {
		n = write(fd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int mb_host_request(const char *request, char *reply, size_t len,
		    int timeout_ms)
{
	char line[256];
	size_t got = 0;
	int64_t deadline;
	struct pollfd p;
	int fd, err, r;
	ssize_t n;

	if (!request || !reply || !len || strchr(request, '\n') ||
	    strlen(request) + 2 > sizeof(line))
		return -EINVAL;
	fd = open_tty();
	if (fd < 0)
		return fd;
	snprintf(line, sizeof(line), "%s\n", request);
	err = write_all(fd, line, strlen(line));
	if (err)
		goto out;
	deadline = ms_now() + (timeout_ms > 0 ? timeout_ms : MB_HOST_TIMEOUT_MS);
	for (;;) {
		int64_t left = deadline - ms_now();

		if (left <= 0) {
			err = -ETIMEDOUT;
			goto out;
		}
		p = (struct pollfd){ .fd = fd, .events = POLLIN };
		r = poll(&p, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err = -errno;
			goto out;
		}
		if (!r)
			continue;
		n = read(fd, line + got, sizeof(line) - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? -errno : -EPIPE;
			goto out;
		}
		got += (size_t)n;
		line[got] = '\0';
		if (strchr(line, '\n'))
			break;
		if (got == sizeof(line) - 1) {
			err = -EPROTO;
			goto out;
		}
	}
	line[strcspn(line, "\r\n")] = '\0';
	if (!strncmp(line, "ok", 2) && (!line[2] || line[2] == ' ')) {
		snprintf(reply, len, "%s", line[2] ? line + 3 : "");
		err = 0;
	} else {
		snprintf(reply, len, "%s", strncmp(line, "err ", 4) ? line :
			 line + 4);
		err = -EREMOTEIO;
	}
out:
	close(fd);
	return err;
}

int mb_host_available(void)
{
	char reply[64];

	return mb_host_request("ping", reply, sizeof(reply), 5000) == 0 &&
	       !strcmp(reply, "pong");
}

static int request_u64(const char *cmd, uint64_t arg)
{
	char req[64], reply[128];
	int err;

	snprintf(req, sizeof(req), "%s %" PRIu64, cmd, arg);
	err = mb_host_request(req, reply, sizeof(reply), 0);
	if (err == -EREMOTEIO)
		fprintf(stderr, "# host: %s: %s\n", req, reply);
	return err;
}

static int query_u64(const char *cmd, uint64_t *out)
{
	char reply[128], *end;
	int err;

	err = mb_host_request(cmd, reply, sizeof(reply), 0);
	if (err)
		return err;
	errno = 0;
	*out = strtoull(reply, &end, 10);
	return errno || end == reply || *end ? -EPROTO : 0;
}

int mb_host_balloon(uint64_t guest_bytes)
{
	return request_u64("balloon", guest_bytes);
}

int mb_host_mem_size(uint64_t bytes)
{
	return request_u64("mem-size", bytes);
}

int mb_host_query_mem(uint64_t *bytes)
{
	return query_u64("query-mem", bytes);
}

int mb_host_query_balloon(uint64_t *bytes)
{
	return query_u64("query-balloon", bytes);
}
