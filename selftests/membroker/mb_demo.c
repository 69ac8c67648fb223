// SPDX-License-Identifier: GPL-2.0
/*
 * mb-demo: the VM demo's helper, speaking the uapi directly like the
 * selftests (and used where membrokerctl is not available).
 *
 *   mb-demo status            print the current state
 *   mb-demo watch             print every notification as it arrives
 *   mb-demo history           print the kernel's notification history
 *   mb-demo oom-race [-q] [-- HOG-ARGS]
 *	run "mb-hog --until-oom HOG-ARGS", watch notifications meanwhile,
 *	and when the OOM killer ends the hog (SIGKILL) tell how long before
 *	the kill LOW was announced.  -q prints only that measurement.
 *
 * Times are CLOCK_MONOTONIC, the clock of MEMBROKER_A_TIMESTAMP_NS.  The
 * moment of the kill is the OOM killer's "Killed process" record in
 * /dev/kmsg; without it, the moment the hog's death reached mb-demo,
 * which comes later (after the hog's memory has been torn down).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mb_nl.h"

#define MIB		(1024ULL * 1024)
#define MAX_HISTORY	4096
/* After the kill, how long to wait for the recovery notification. */
#define RECOVERY_MS	10000

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void print_state(const char *prefix, const struct mb_state *s)
{
	printf("%sseq %llu %-6s%s available %llu MiB (low %llu, high %llu, "
	       "total %llu MiB) reason %s at %llu.%03llu s\n",
	       prefix, (unsigned long long)s->seq, mb_state_name(s->state),
	       s->flags & MEMBROKER_FLAG_VIRTUAL_LOW ? " VIRTUAL_LOW" : "",
	       (unsigned long long)(s->available / MIB),
	       (unsigned long long)(s->low / MIB),
	       (unsigned long long)(s->high / MIB),
	       (unsigned long long)(s->total / MIB),
	       mb_reason_name(s->reason),
	       (unsigned long long)(s->timestamp_ns / 1000000000ULL),
	       (unsigned long long)(s->timestamp_ns / 1000000ULL % 1000));
	fflush(stdout);
}

static int cmd_status(struct mb_nl *nl)
{
	struct mb_state st;
	int err = mb_nl_get_state(nl, &st);

	if (err)
		return err;
	print_state("", &st);
	return 0;
}

static int cmd_watch(struct mb_nl *nl)
{
	struct mb_state st;
	int err = mb_nl_subscribe(nl);

	while (!err) {
		err = mb_nl_recv_notify(nl, &st, 60000);
		if (err == -ETIMEDOUT)
			err = 0;
		else if (!err)
			print_state("notify: ", &st);
	}
	return err;
}

static int cmd_history(struct mb_nl *nl)
{
	struct mb_state *h = calloc(MAX_HISTORY, sizeof(*h));
	int n, i;

	if (!h)
		return -ENOMEM;
	n = mb_nl_dump_history(nl, h, MAX_HISTORY);
	for (i = 0; i < n; i++)
		print_state("history: ", &h[i]);
	free(h);
	return n < 0 ? n : 0;
}

static pid_t spawn_hog(char **extra, int nextra)
{
	char *argv[nextra + 3];
	pid_t pid;
	int i;

	argv[0] = "mb-hog";
	argv[1] = "--until-oom";
	for (i = 0; i < nextra; i++)
		argv[2 + i] = extra[i];
	argv[2 + nextra] = NULL;
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execvp(argv[0], argv);
		_exit(127);
	}
	return pid;
}

/*
 * The OOM killer logs "Killed process PID" right after it sends SIGKILL.
 * The record's timestamp is the kernel log clock (local_clock()), not
 * CLOCK_MONOTONIC; a marker record written at start gives the offset
 * between the two, to within the duration of that write.
 */
struct kmsg {
	int fd;			/* /dev/kmsg, nonblocking; -1: unavailable */
	int64_t offset_ns;	/* CLOCK_MONOTONIC minus the log clock */
	pid_t victim;		/* whose kill to look for */
	uint64_t kill_ns;	/* CLOCK_MONOTONIC of the kill, 0: unseen */
};

#define KMSG_MARKER	"mb-demo: oom-race clock marker"
/* A read must take a whole record, or it fails (CONSOLE_EXT_LOG_MAX) */
#define KMSG_RECORD_MAX	8192

/* The next record's timestamp (ns, log clock) and text; false if none. */
static bool kmsg_next(int fd, uint64_t *ts_ns, char *text, size_t len)
{
	char buf[KMSG_RECORD_MAX], *msg;
	unsigned long long ts_us;
	ssize_t n;

	for (;;) {
		n = read(fd, buf, sizeof(buf) - 1);
		if (n < 0 && errno == EPIPE)
			continue;	/* records were overwritten: go on */
		if (n <= 0)
			return false;
		buf[n] = '\0';
		msg = strchr(buf, ';');
		if (!msg || sscanf(buf, "%*u,%*u,%llu", &ts_us) != 1)
			continue;
		*ts_ns = ts_us * 1000;
		snprintf(text, len, "%s", msg + 1);
		return true;
	}
}

static void kmsg_open(struct kmsg *k)
{
	uint64_t t0, t1, ts;
	char text[256];
	ssize_t n;
	int wfd;

	k->kill_ns = 0;
	k->fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (k->fd < 0)
		return;
	lseek(k->fd, 0, SEEK_END);
	wfd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
	if (wfd < 0)
		goto fail;
	/* Readers only see a record once a newline has finished it */
	t0 = now_ns();
	n = write(wfd, KMSG_MARKER "\n", strlen(KMSG_MARKER) + 1);
	t1 = now_ns();
	close(wfd);
	if (n < 0)
		goto fail;
	while (kmsg_next(k->fd, &ts, text, sizeof(text))) {
		if (strstr(text, KMSG_MARKER)) {
			k->offset_ns = (int64_t)(t0 + (t1 - t0) / 2) -
				       (int64_t)ts;
			return;
		}
	}
fail:
	close(k->fd);
	k->fd = -1;
}

/* Read what the kernel logged; note the victim's kill if it is there. */
static void kmsg_drain(struct kmsg *k)
{
	char text[256], *p, *end;
	uint64_t ts;

	if (k->fd < 0)
		return;
	while (kmsg_next(k->fd, &ts, text, sizeof(text))) {
		p = strstr(text, "Killed process ");
		if (!p || k->kill_ns)
			continue;
		if (strtol(p + strlen("Killed process "), &end, 10) ==
		    k->victim && *end == ' ')
			k->kill_ns = ts + k->offset_ns;
	}
}

struct race {
	uint64_t low_recv_ns;	/* when the first LOW reached us */
	uint64_t low_eval_ns;	/* when the kernel evaluated it */
	uint64_t kill_ns;	/* when the hog's death reached us */
	uint32_t last_state;	/* of the latest notification, 0: none */
	struct kmsg kmsg;
	bool quiet;
};

/*
 * Memory has recovered once the hog is dead and the latest notification
 * is not LOW.  The recovery may well arrive before SIGCHLD does: the
 * hog's memory is freed before its parent is told that it exited.
 */
static bool recovered(const struct race *r)
{
	return r->kill_ns && r->last_state &&
	       r->last_state != MEMBROKER_STATE_LOW;
}

static void on_notify(struct race *r, const struct mb_state *st)
{
	if (!r->quiet)
		print_state("notify: ", st);
	if (st->state == MEMBROKER_STATE_LOW && !r->low_recv_ns) {
		r->low_recv_ns = now_ns();
		r->low_eval_ns = st->timestamp_ns;
	}
	r->last_state = st->state;
}

static double ms_between(uint64_t from_ns, uint64_t to_ns)
{
	return (double)(int64_t)(to_ns - from_ns) / 1e6;
}

static void report(const struct race *r, int status)
{
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
		printf("oom-race: the hog ended without SIGKILL (status %#x)\n",
		       status);
		return;
	}
	/* monotonic, so that it lines up with the notifications' times */
	printf("oom-race: hog killed by SIGKILL (OOM killer) at %llu.%03llu s\n",
	       (unsigned long long)(r->kill_ns / 1000000000ULL),
	       (unsigned long long)(r->kill_ns / 1000000ULL % 1000));
	if (!r->low_recv_ns) {
		printf("oom-race: NO LOW notification before the OOM kill\n");
		return;
	}
	if (r->kmsg.kill_ns) {
		printf("oom-race: LOW arrived %.1f ms before the OOM kill "
		       "(evaluated %.1f ms before)\n",
		       ms_between(r->low_recv_ns, r->kmsg.kill_ns),
		       ms_between(r->low_eval_ns, r->kmsg.kill_ns));
		printf("oom-race: the hog's death reached us %.1f ms after "
		       "the kill\n", ms_between(r->kmsg.kill_ns, r->kill_ns));
	} else {
		printf("oom-race: LOW arrived %.1f ms before the hog's death "
		       "reached us (evaluated %.1f ms before); no OOM killer "
		       "record in /dev/kmsg\n",
		       ms_between(r->low_recv_ns, r->kill_ns),
		       ms_between(r->low_eval_ns, r->kill_ns));
	}
	fflush(stdout);
}

static int cmd_oom_race(struct mb_nl *nl, bool quiet, char **extra,
			int nextra)
{
	struct race r = { .quiet = quiet };
	struct pollfd pfd[3];
	int sfd, status = 0, err;
	struct mb_state st;
	sigset_t chld;
	pid_t pid;

	err = mb_nl_subscribe(nl);
	if (err)
		return err;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	sfd = signalfd(-1, &chld, SFD_CLOEXEC);
	if (sfd < 0)
		return -errno;
	kmsg_open(&r.kmsg);
	pid = spawn_hog(extra, nextra);
	if (pid < 0) {
		err = -errno;
		goto out;
	}
	r.kmsg.victim = pid;
	pfd[0] = (struct pollfd){ .fd = nl->fd, .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = sfd, .events = POLLIN };
	pfd[2] = (struct pollfd){ .fd = r.kmsg.fd, .events = POLLIN };

	/* Until the hog dies, and then until memory has recovered. */
	while (!recovered(&r)) {
		int timeout = r.kill_ns ? RECOVERY_MS : -1;
		int n = poll(pfd, 3, timeout);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			break;
		}
		if (n == 0) {
			printf("oom-race: no recovery notification within "
			       "%d ms\n", RECOVERY_MS);
			break;
		}
		if (pfd[1].revents && !r.kill_ns) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) != sizeof(si))
				continue;
			if (waitpid(pid, &status, WNOHANG) != pid)
				continue;
			r.kill_ns = now_ns();
			pfd[1].fd = -1;
			kmsg_drain(&r.kmsg);
			pfd[2].fd = -1;
			report(&r, status);
		}
		if (pfd[2].revents)
			kmsg_drain(&r.kmsg);
		if (pfd[0].revents) {
			err = mb_nl_recv_notify(nl, &st, 0);
			if (err == -ETIMEDOUT)
				err = 0;
			if (err)
				break;
			on_notify(&r, &st);
		}
	}
	if (!r.kill_ns) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
out:
	if (r.kmsg.fd >= 0)
		close(r.kmsg.fd);
	close(sfd);
	return err;
}

static void usage(void)
{
	fprintf(stderr, "usage: mb-demo status|watch|history|"
		"oom-race [-q] [-- HOG-ARGS]\n");
}

int main(int argc, char **argv)
{
	struct mb_nl nl;
	int err;

	if (argc < 2) {
		usage();
		return 2;
	}
	err = mb_nl_open(&nl);
	if (err) {
		fprintf(stderr, "mb-demo: %s: %s\n", MEMBROKER_FAMILY_NAME,
			strerror(-err));
		return 1;
	}
	if (!strcmp(argv[1], "status")) {
		err = cmd_status(&nl);
	} else if (!strcmp(argv[1], "watch")) {
		err = cmd_watch(&nl);
	} else if (!strcmp(argv[1], "history")) {
		err = cmd_history(&nl);
	} else if (!strcmp(argv[1], "oom-race")) {
		bool quiet = argc > 2 && !strcmp(argv[2], "-q");
		int i = quiet ? 3 : 2;

		if (i < argc && !strcmp(argv[i], "--"))
			i++;
		err = cmd_oom_race(&nl, quiet, argv + i, argc - i);
	} else {
		usage();
		err = -EINVAL;
	}
	if (err)
		fprintf(stderr, "mb-demo: %s\n", strerror(-err));
	mb_nl_close(&nl);
	return err ? 1 : 0;
}
