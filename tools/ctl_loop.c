// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * membrokerctl: signals and deadlines for the commands that wait.
 *
 * Signals are blocked and read from a signalfd, so that "watch" and "top"
 * see SIGINT/SIGTERM as one more readable fd in their poll() and can leave
 * through the same path as after --count or 'q': output flushed, terminal
 * restored, exit status 0.  Blocking happens before the library is opened
 * so that any thread it starts inherits the mask.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"

uint64_t ctl_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Return: a signalfd for @sigs (now blocked), or -errno */
int ctl_signals_open(const int *sigs, size_t n)
{
	sigset_t set;
	size_t i;
	int fd;

	sigemptyset(&set);
	for (i = 0; i < n; i++)
		sigaddset(&set, sigs[i]);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		return -errno;
	fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	return fd < 0 ? -errno : fd;
}

/* Return: the number of the pending signal, 0 if none, or -errno */
int ctl_signal_read(int sfd)
{
	struct signalfd_siginfo si;
	ssize_t len;

	len = read(sfd, &si, sizeof(si));
	if (len < 0)
		return errno == EAGAIN ? 0 : -errno;
	if (len != sizeof(si))
		return -EIO;
	return (int)si.ssi_signo;
}

/*
 * poll() timeout in milliseconds until @deadline_ns (0: none), rounded up
 * so that a wake-up never comes before the deadline.
 */
int ctl_poll_timeout(uint64_t deadline_ns)
{
	uint64_t now, ms;

	if (!deadline_ns)
		return -1;
	now = ctl_now_ns();
	if (now >= deadline_ns)
		return 0;
	ms = (deadline_ns - now + 999999) / 1000000;
	return ms > INT32_MAX ? INT32_MAX : (int)ms;
}

/*
 * "watch | head -1": once the reader has gone, only the next write would
 * tell, and that may be hours away.  A pipe's or socket's write end polls
 * POLLERR (pipe) or POLLHUP (socket) when its reader is gone, even with
 * no events asked for, while a file or a terminal reports nothing, so
 * stdout can sit in the poll set of the commands that wait.  They also
 * ignore SIGPIPE, so that a write racing with the reader's exit ends the
 * same way (EPIPE) instead of killing the process with the terminal still
 * switched by "top".
 */
void ctl_output_poll_init(struct pollfd *pfd)
{
	signal(SIGPIPE, SIG_IGN);
	*pfd = (struct pollfd){ .fd = STDOUT_FILENO, .events = 0 };
}

/* Return: whether the reader of stdout has gone; stop polling a bad fd */
bool ctl_output_gone(struct pollfd *pfd)
{
	if (pfd->revents & POLLNVAL) {
		pfd->fd = -1;
		return false;
	}
	return pfd->revents & (POLLERR | POLLHUP);
}
