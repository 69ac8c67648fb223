// SPDX-License-Identifier: GPL-2.0
/*
 * Running membrokerctl and reading what it says.  Every run has its own
 * pipes for stdout and stderr, /dev/null (or a terminal) as stdin, and a
 * clean environment for what the tool reads ($MEMBROKER_SOURCE); waits are
 * bounded only to turn a hang into a failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "ctl_test.h"

#define CTL_DEFAULT	"/bin/membrokerctl"

const char *ctl_path(void)
{
	const char *p = getenv("MEMBROKERCTL");

	return p && *p ? p : CTL_DEFAULT;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int buf_init(struct ctl_buf *b, int fd)
{
	b->fd = fd;
	b->cap = 4096;
	b->len = 0;
	b->s = calloc(1, b->cap);
	return b->s ? 0 : -ENOMEM;
}

/* Read what @b's descriptor has; 0, or -errno.  EIO is a pty's EOF. */
static int buf_read(struct ctl_buf *b)
{
	for (;;) {
		ssize_t n;

		if (b->cap - b->len < 1024) {
			char *s = realloc(b->s, b->cap * 2);

			if (!s)
				return -ENOMEM;
			b->s = s;
			b->cap *= 2;
		}
		n = read(b->fd, b->s + b->len, b->cap - b->len - 1);
		if (n > 0) {
			b->len += (size_t)n;
			b->s[b->len] = '\0';
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n < 0 && errno != EIO)
			return -errno;
		/* end of file */
		close(b->fd);
		b->fd = -1;
		return 0;
	}
}

/* One poll() over the open streams; -ETIMEDOUT if nothing came */
static int pump(struct ctl_proc *p, int timeout_ms)
{
	struct ctl_buf *bufs[2] = { &p->out, &p->err };
	struct pollfd pfd[2];
	int i, n, err;

	for (i = 0; i < 2; i++)
		pfd[i] = (struct pollfd){ .fd = bufs[i]->fd, .events = POLLIN };
	n = poll(pfd, 2, timeout_ms < 0 ? 0 : timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	if (!n)
		return -ETIMEDOUT;
	for (i = 0; i < 2; i++) {
		if (pfd[i].fd < 0 || !pfd[i].revents)
			continue;
		err = buf_read(bufs[i]);
		if (err)
			return err;
	}
	return 0;
}

static void buf_free(struct ctl_buf *b)
{
	if (b->s && b->fd >= 0)
		close(b->fd);
	free(b->s);
	memset(b, 0, sizeof(*b));
}

/* Safe on a zeroed struct ctl_proc, which was never started */
void ctl_proc_free(struct ctl_proc *p)
{
	if (p->out.s || p->err.s) {
		if (p->pid > 0 && p->status < 0) {
			kill(p->pid, SIGKILL);
			waitpid(p->pid, NULL, 0);
		}
		buf_free(&p->out);
		buf_free(&p->err);
		if (p->pty >= 0)
			close(p->pty);
	}
	memset(p, 0, sizeof(*p));
	p->pty = -1;
	p->status = -1;
}

/* Only for the child: become who the test asked for, then the tool */
#define CTL_ON_TTY	(1U << 31)

static void child_exec(unsigned int flags, char *const argv[])
{
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	unsetenv("MEMBROKER_SOURCE");
	/* Ctrl-C on the terminal must reach the tool and only the tool */
	if ((flags & CTL_ON_TTY) &&
	    (setsid() < 0 || ioctl(STDIN_FILENO, TIOCSCTTY, 0))) {
		perror("taking the terminal");
		_exit(126);
	}
	if (flags & CTL_AS_NOBODY) {
		if (setgroups(0, NULL) || setgid(NOBODY) || setuid(NOBODY)) {
			perror("dropping privileges");
			_exit(126);
		}
	}
	execv(argv[0], argv);
	fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

/*
 * Fork the tool with @in_fd and @out_fd as stdin and stdout and a new
 * pipe as stderr; p->out must already be set up by the caller.
 */
static int start(struct ctl_proc *p, unsigned int flags, char *const argv[],
		 int in_fd, int out_fd)
{
	int err_pipe[2];
	int err;

	if (pipe2(err_pipe, O_CLOEXEC))
		return -errno;
	err = buf_init(&p->err, err_pipe[0]);
	if (err) {
		close(err_pipe[0]);
		close(err_pipe[1]);
		return err;
	}
	fflush(NULL);
	p->pid = fork();
	if (p->pid < 0) {
		err = -errno;
		close(err_pipe[1]);
		return err;
	}
	if (!p->pid) {
		if (dup2(in_fd, STDIN_FILENO) < 0 ||
		    dup2(out_fd, STDOUT_FILENO) < 0 ||
		    dup2(err_pipe[1], STDERR_FILENO) < 0)
			_exit(126);
		child_exec(flags, argv);
	}
	close(err_pipe[1]);
	fcntl(p->out.fd, F_SETFL, O_NONBLOCK);
	fcntl(p->err.fd, F_SETFL, O_NONBLOCK);
	return 0;
}

int ctl_startv(struct ctl_proc *p, unsigned int flags, char *const argv[])
{
	int out_pipe[2], null_fd, err;

	ctl_proc_free(p);
	null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (null_fd < 0)
		return -errno;
	if (pipe2(out_pipe, O_CLOEXEC)) {
		err = -errno;
		close(null_fd);
		return err;
	}
	err = buf_init(&p->out, out_pipe[0]);
	if (err)
		close(out_pipe[0]);
	else
		err = start(p, flags, argv, null_fd, out_pipe[1]);
	close(out_pipe[1]);
	close(null_fd);
	return err;
}

/*
 * The test VM's init mounts no devpts; a pseudo-terminal needs one at
 * /dev/pts for /dev/ptmx to work.
 */
static int need_devpts(void)
{
	struct stat st;

	if (!stat("/dev/pts/ptmx", &st))
		return 0;
	if (mkdir("/dev/pts", 0755) && errno != EEXIST)
		return -errno;
	if (mount("devpts", "/dev/pts", "devpts", 0, "ptmxmode=0666"))
		return -errno;
	return 0;
}

/*
 * Run the tool on a new terminal, as an interactive user would: the
 * terminal is its stdin, stdout and controlling tty; p->out reads the
 * screen and p->pty (the master) is where keys are typed.  stderr stays a
 * pipe.
 */
int ctl_start_pty(struct ctl_proc *p, char *const argv[])
{
	struct winsize ws = { .ws_row = 24, .ws_col = 80 };
	int master, slave, screen, err;
	char *name;

	ctl_proc_free(p);
	err = need_devpts();
	if (err)
		return err;
	master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		return -errno;
	if (grantpt(master) || unlockpt(master))
		goto fail;
	name = ptsname(master);
	if (!name)
		goto fail;
	slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0)
		goto fail;
	ioctl(slave, TIOCSWINSZ, &ws);
	/*
	 * The screen is read through a copy of the master, closed at the
	 * end of output; the master itself stays open until
	 * ctl_proc_free(), so the terminal can still be inspected.
	 */
	screen = fcntl(master, F_DUPFD_CLOEXEC, 0);
	err = screen < 0 ? -errno : buf_init(&p->out, screen);
	if (err) {
		if (screen >= 0)
			close(screen);
		close(slave);
		close(master);
		return err;
	}
	p->pty = master;
	err = start(p, CTL_ON_TTY, argv, slave, slave);
	close(slave);
	return err;
fail:
	err = -errno;
	close(master);
	return err;
}

/*
 * Read until @needle appears in @b after offset @from.
 * Return: 0, -EPIPE if the stream ended without it, -ETIMEDOUT.
 */
int ctl_wait_for(struct ctl_proc *p, struct ctl_buf *b, const char *needle,
		 size_t from, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	int err;

	for (;;) {
		if (from <= b->len && strstr(b->s + from, needle))
			return 0;
		if (b->fd < 0)
			return -EPIPE;
		err = pump(p, (int)(deadline - now_ms()));
		if (err == -ETIMEDOUT && now_ms() < deadline)
			continue;
		if (err)
			return err;
	}
}

/*
 * Read both streams to their end and reap the tool.
 * Return: its exit status (128 + signal if killed), or -ETIMEDOUT after
 * killing it when it did not end within @timeout_ms.
 */
int ctl_finish(struct ctl_proc *p, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	int status, err;
	pid_t r;

	while (p->out.fd >= 0 || p->err.fd >= 0) {
		err = pump(p, (int)(deadline - now_ms()));
		if (err == -ETIMEDOUT && now_ms() >= deadline)
			goto kill;
		if (err && err != -ETIMEDOUT)
			return err;
	}
	for (;;) {
		r = waitpid(p->pid, &status, WNOHANG);
		if (r == p->pid)
			break;
		if (r < 0)
			return -errno;
		if (now_ms() >= deadline)
			goto kill;
		usleep(10000);
	}
	if (WIFSIGNALED(status))
		p->status = 128 + WTERMSIG(status);
	else
		p->status = WEXITSTATUS(status);
	return p->status;
kill:
	kill(p->pid, SIGKILL);
	waitpid(p->pid, NULL, 0);
	p->status = 128 + SIGKILL;
	return -ETIMEDOUT;
}

int ctl_signal(struct ctl_proc *p, int sig)
{
	return kill(p->pid, sig) ? -errno : 0;
}

int ctl_runv(struct ctl_proc *p, unsigned int flags, char *const argv[])
{
	int err = ctl_startv(p, flags, argv);

	return err ? err : ctl_finish(p, CTL_GUARD_MS);
}

size_t ctl_count_lines(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* Line @n (from 0) of @s without its newline, or NULL */
const char *ctl_nth_line(const char *s, size_t n, char *buf, size_t len)
{
	const char *nl;

	while (n--) {
		s = strchr(s, '\n');
		if (!s)
			return NULL;
		s++;
	}
	if (!*s)
		return NULL;
	nl = strchrnul(s, '\n');
	snprintf(buf, len, "%.*s", (int)(nl - s), s);
	return buf;
}

/* The value of the line "KEY: value" in @text, or NULL */
const char *ctl_field(const char *text, const char *key, char *buf,
		      size_t len)
{
	size_t klen = strlen(key);
	const char *line;

	for (line = text; line && *line;
	     line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		if (!strncmp(line, key, klen) && line[klen] == ':' &&
		    line[klen + 1] == ' ') {
			const char *v = line + klen + 2;
			const char *nl = strchrnul(v, '\n');

			snprintf(buf, len, "%.*s", (int)(nl - v), v);
			return buf;
		}
	}
	return NULL;
}

/* The exact figure of "KEY: 1.5 MiB (1572864 bytes)" */
int ctl_field_bytes(const char *text, const char *key, uint64_t *bytes)
{
	unsigned long long v;
	char buf[128], tail[8];
	const char *p;

	if (!ctl_field(text, key, buf, sizeof(buf)))
		return -ENOENT;
	p = strrchr(buf, '(');
	if (!p || sscanf(p, "(%llu %7[^)])", &v, tail) != 2 ||
	    strcmp(tail, "bytes"))
		return -EBADMSG;
	*bytes = v;
	return 0;
}

/*
 * Whether the human-readable part of "KEY: 1.5 MiB (1572864 bytes)" is
 * the exact figure in binary units to one decimal.
 */
int ctl_field_size_ok(const char *text, const char *key)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB",
					     "TiB" };
	char buf[128], unit[8];
	uint64_t bytes;
	double v, scale = 1;
	size_t i;

	if (ctl_field_bytes(text, key, &bytes) ||
	    !ctl_field(text, key, buf, sizeof(buf)) ||
	    sscanf(buf, "%lf %7s", &v, unit) != 2)
		return 0;
	for (i = 0; i < ARRAY_SIZE(units); i++, scale *= 1024) {
		if (strcmp(unit, units[i]))
			continue;
		if (!i)
			return (uint64_t)v == bytes;
		/* one decimal: off by at most half a tenth of the unit */
		return (double)bytes / scale >= 1 &&
		       (double)bytes / scale < 1024 &&
		       v - (double)bytes / scale <= 0.0500001 &&
		       (double)bytes / scale - v <= 0.0500001;
	}
	return 0;
}

/* The value of " KEY=value" in a watch/history line, or NULL */
const char *ctl_kv(const char *line, const char *key, char *buf,
		   size_t len)
{
	size_t klen = strlen(key);
	const char *p;

	for (p = strchr(line, ' '); p; p = strchr(p + 1, ' ')) {
		if (!strncmp(p + 1, key, klen) && p[1 + klen] == '=') {
			const char *v = p + klen + 2;

			snprintf(buf, len, "%.*s", (int)strcspn(v, "\n "), v);
			return buf;
		}
	}
	return NULL;
}

/* The names membrokerctl(8) uses */
const char *ctl_state_name(uint32_t state)
{
	switch (state) {
	case MEMBROKER_STATE_LOW:
		return "low";
	case MEMBROKER_STATE_STEADY:
		return "steady";
	case MEMBROKER_STATE_HIGH:
		return "high";
	}
	return "unknown";
}

const char *ctl_reason_name(uint32_t reason)
{
	static const char *const names[] = {
		[MEMBROKER_REASON_UNSPEC] = "none",
		[MEMBROKER_REASON_LOAD] = "load",
		[MEMBROKER_REASON_POLL] = "poll",
		[MEMBROKER_REASON_RECLAIM] = "reclaim",
		[MEMBROKER_REASON_HOTPLUG] = "hotplug",
		[MEMBROKER_REASON_CONFIG] = "config",
		[MEMBROKER_REASON_OOM] = "oom",
		[MEMBROKER_REASON_QUERY] = "query",
		[MEMBROKER_REASON_DEFERRED] = "deferred",
	};

	return reason < ARRAY_SIZE(names) ? names[reason] : "unknown";
}

/* The man page's compact size: 312.4M is 312.4 MiB, bytes below 1K */
void ctl_fmt_short(char *buf, size_t len, uint64_t bytes)
{
	static const char units[] = "KMGTPE";
	double v = (double)bytes / 1024;
	size_t u = 0;

	if (bytes < 1024) {
		snprintf(buf, len, "%llu", (unsigned long long)bytes);
		return;
	}
	while (v >= 1024 && u + 1 < sizeof(units) - 1) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, "%.1f%c", v, units[u]);
}

/*
 * Whether a line of "watch" or "history" shows the notification @st:
 * "[monotonic] wall-clock seq=N state=S flags=F available=A total=T
 * low=L high=H reason=R".  Return: 0, or -1 with the first difference in
 * @why.
 */
int ctl_line_matches(const char *line, const struct mb_state *st,
		     char *why, size_t len)
{
	static const char *const keys[] = { "seq", "state", "flags",
					    "available", "total", "low",
					    "high", "reason" };
	char want[ARRAY_SIZE(keys)][48], got[64], time[48];
	size_t i;

	snprintf(time, sizeof(time), "[%llu.%06llu] ",
		 (unsigned long long)(st->timestamp_ns / 1000000000),
		 (unsigned long long)(st->timestamp_ns % 1000000000 / 1000));
	if (strncmp(line, time, strlen(time))) {
		snprintf(why, len, "time: want '%s'", time);
		return -1;
	}
	snprintf(want[0], sizeof(want[0]), "%llu",
		 (unsigned long long)st->seq);
	snprintf(want[1], sizeof(want[1]), "%s", ctl_state_name(st->state));
	snprintf(want[2], sizeof(want[2]), "%s",
		 st->flags == MEMBROKER_FLAG_VIRTUAL_LOW ? "virtual_low" :
		 st->flags ? "?" : "none");
	ctl_fmt_short(want[3], sizeof(want[3]), st->available);
	ctl_fmt_short(want[4], sizeof(want[4]), st->total);
	ctl_fmt_short(want[5], sizeof(want[5]), st->low);
	ctl_fmt_short(want[6], sizeof(want[6]), st->high);
	snprintf(want[7], sizeof(want[7]), "%s", ctl_reason_name(st->reason));
	for (i = 0; i < ARRAY_SIZE(keys); i++) {
		if (!ctl_kv(line, keys[i], got, sizeof(got)) ||
		    strcmp(want[i], got)) {
			snprintf(why, len, "%s: want '%s'", keys[i], want[i]);
			return -1;
		}
	}
	return 0;
}

/*
 * Wait until what sysfs shows (the latest notification) is what the
 * module would say now: a relaxing change may be held back by the rate
 * limit, and a test must not start in that gap.  Then forget every
 * notification @mc received so far.
 */
int ctl_settle(struct mb_nl *nl, struct mb_nl *mc)
{
	struct mb_state st, ignored;
	uint64_t low, high;
	uint32_t state;
	int i, err;

	for (i = 0; i < 20; i++) {
		err = mb_nl_get_state(nl, &st);
		if (!err)
			err = mb_sysfs_read_state(&state);
		if (!err)
			err = mb_sysfs_read_u64("low_bytes", &low);
		if (!err)
			err = mb_sysfs_read_u64("high_bytes", &high);
		if (err)
			return err;
		if (state == st.state && low == st.low && high == st.high)
			break;
		err = mb_nl_recv_notify(mc, &ignored, 2000);
		if (err && err != -ETIMEDOUT)
			return err;
	}
	if (i == 20)
		return -ETIMEDOUT;
	while (!(err = mb_nl_recv_notify(mc, &ignored, 0)))
		;
	return err == -ETIMEDOUT ? 0 : err;
}

/* The next notification on @mc with these thresholds in force */
int ctl_wait_notify(struct mb_nl *mc, uint64_t low, uint64_t high,
		    struct mb_state *seen)
{
	int64_t deadline = now_ms() + CTL_NOTIFY_MS;
	int err;

	do {
		err = mb_nl_recv_notify(mc, seen, (int)(deadline - now_ms()));
		if (err)
			return err;
	} while (seen->low != low || seen->high != high);
	return 0;
}

/* SET_CONFIG low and high, and wait for the notification that says so */
int ctl_set_thresholds(struct mb_nl *nl, struct mb_nl *mc, uint64_t low,
		       uint64_t high, struct mb_state *seen)
{
	struct mb_config cfg = {
		.have = (1ULL << MEMBROKER_A_LOW_BYTES) |
			(1ULL << MEMBROKER_A_HIGH_BYTES),
		.low = low,
		.high = high,
	};
	int err = mb_nl_set_config(nl, &cfg);

	return err ? err : ctl_wait_notify(mc, low, high, seen);
}
