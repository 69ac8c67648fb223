// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * membrokerctl top: a live view of the state, of available memory against
 * the thresholds, of the clerks of every process registered with
 * membrokerd's system broker (when it runs), and of the latest
 * notifications.
 *
 * The state is re-read every --interval, and the view is also redrawn as
 * soon as a notification arrives, so a transition shows at once and not at
 * the next tick.  A frame is built in memory and written in one go to
 * avoid flicker.  'q' or Ctrl-C quits and gives the terminal back.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "protocol.h"

const char cmd_top_usage[] =
"Usage: " CTL_NAME " [-s SOURCE] top [--interval MS] [--iterations N]\n"
"                             [--socket PATH]\n"
"\n"
"A live view of the state, available memory against the thresholds, the\n"
"clerks of every process registered with membrokerd's system broker\n"
"(cheapest first, as \"clerks\" shows them) and the latest notifications.\n"
"q or Ctrl-C quits.\n"
"\n"
"  -i, --interval MS     refresh every MS milliseconds (default 1000)\n"
"  -n, --iterations N    quit after N refreshes\n"
"  -S, --socket PATH     membrokerd's control socket (default\n"
"                        $MEMBROKERD_SOCKET, else " MBD_CONTROL_SOCKET ")\n"
"\n"
"When standard output is not a terminal, frames are printed one after\n"
"another without escape sequences.\n";

#define TOP_RECENT	64	/* notifications kept for the list */
#define TOP_BATCH_ROWS	8	/* list length when not on a terminal */
#define TOP_HEADER_ROWS	10	/* rows above the list */
#define TOP_SYS_ROWS	8	/* clerks shown at most */

#define ANSI_RED	"\033[31m"
#define ANSI_YELLOW	"\033[33m"
#define ANSI_GREEN	"\033[32m"
#define ANSI_BOLD	"\033[1m"
#define ANSI_RESET	"\033[0m"

struct top {
	struct ctl *c;
	struct ctl_term *term;
	struct mb_notification cur;
	bool have_cur;
	/* the newest TOP_RECENT notifications, recent[(head + i) % N] */
	struct mb_notification recent[TOP_RECENT];
	size_t head;
	size_t count;
	uint64_t received;
	uint64_t resyncs;
	/* the system broker's clerks, read at every refresh */
	const char *sock;
	struct mbd_clerk_row *rows;
	size_t nrows;
	int sys_err;
};

static void top_remember(struct top *t, const struct mb_notification *n)
{
	t->recent[(t->head + t->count) % TOP_RECENT] = *n;
	if (t->count < TOP_RECENT)
		t->count++;
	else
		t->head = (t->head + 1) % TOP_RECENT;
}

static void top_event(const struct mb_notification *n, bool resync,
		      void *arg)
{
	struct top *t = arg;

	top_remember(t, n);
	t->received++;
	if (resync)
		t->resyncs++;
	if (!t->have_cur || n->time_ns >= t->cur.time_ns) {
		t->cur = *n;
		t->have_cur = true;
	}
}

static int top_seed_kmod(const struct mb_notification *n, void *arg)
{
	top_remember(arg, n);
	return 0;
}

/* What happened before we started: the module's or the monitor's ring */
static int top_seed(struct top *t)
{
	struct mb_notification buf[TOP_RECENT];
	uint64_t last, from;
	struct mb_ring *ring;
	int i, n;

	if (t->c->kmod)
		return mb_kmod_get_history(t->c->kmod, top_seed_kmod, t);

	ring = mb_monitor_ring(t->c->mon);
	if (!ring)
		return 0;
	last = mb_ring_last_seq(ring);
	if (!last)
		return 0;
	from = last > TOP_RECENT ? last - TOP_RECENT + 1 : 1;
	n = mb_ring_read(ring, from, buf, NULL, TOP_RECENT, NULL);
	for (i = 0; i < n; i++)
		top_remember(t, &buf[i]);
	return n < 0 ? n : 0;
}

static const char *top_color(const struct top *t, uint32_t state)
{
	if (!ctl_term_interactive(t->term))
		return "";
	switch (state) {
	case MB_STATE_LOW:
		return ANSI_RED;
	case MB_STATE_STEADY:
		return ANSI_YELLOW;
	case MB_STATE_HIGH:
		return ANSI_GREEN;
	}
	return "";
}

static size_t top_pos(uint64_t bytes, uint64_t total, size_t width)
{
	if (!total)
		return 0;
	if (bytes >= total)
		return width;
	return (size_t)((double)bytes / (double)total * (double)width);
}

/*
 * [#########|######......|........]   available is the '#' run, the
 *           L            H           thresholds are marked below it.
 */
static void top_bar(FILE *f, const struct top *t, int cols)
{
	const struct mb_notification *n = &t->cur;
	size_t width = cols > 24 ? (size_t)cols - 2 : 22;
	size_t fill, low, high, i;
	char *marks;

	fill = top_pos(n->available, n->total, width);
	low = top_pos(n->low, n->total, width);
	high = top_pos(n->high, n->total, width);
	low = low < width ? low : width - 1;
	high = high < width ? high : width - 1;

	fputc('[', f);
	fputs(top_color(t, n->state), f);
	for (i = 0; i < width; i++) {
		if (i == fill)
			fputs(ctl_term_interactive(t->term) ? ANSI_RESET : "",
			      f);
		fputc(i == low || i == high ? '|' : i < fill ? '#' : '.', f);
	}
	if (fill >= width)
		fputs(ctl_term_interactive(t->term) ? ANSI_RESET : "", f);
	fputs("]\n", f);

	marks = malloc(width + 2);
	if (!marks)
		return;
	memset(marks, ' ', width + 1);
	marks[width + 1] = '\0';
	marks[low + 1] = 'L';
	marks[high + 1] = 'H';
	/* trailing blanks would only be cleared again */
	for (i = width; i > 0 && marks[i] == ' '; i--)
		marks[i] = '\0';
	fprintf(f, "%s\n", marks);
	free(marks);
}

static void top_header(FILE *f, const struct top *t, int cols)
{
	const struct mb_notification *n = &t->cur;
	char note[64], now[48], flags[32], a[24], b[24], d[24];
	bool ansi = ctl_term_interactive(t->term);

	ctl_fmt_wall(now, sizeof(now), ctl_now_ns());
	fprintf(f, "%s" CTL_NAME " top%s - source: %s - %s%s\n",
		ansi ? ANSI_BOLD : "", ansi ? ANSI_RESET : "",
		ctl_source_note(t->c, note, sizeof(note)), now,
		ansi ? "  (q quits)" : "");
	fputc('\n', f);
	if (!t->have_cur) {
		fprintf(f, "state: no reading yet\n");
		return;
	}
	ctl_fmt_flags(flags, sizeof(flags), n->flags);
	fprintf(f, "state: %s%s%s   flags: %s   reason: %s   seq: %" PRIu64
		"\n", top_color(t, n->state), mb_state_name(n->state),
		ansi ? ANSI_RESET : "", flags, ctl_reason_name(n->reason),
		n->seq);
	ctl_fmt_size(a, sizeof(a), n->available);
	ctl_fmt_size(b, sizeof(b), n->total);
	fprintf(f, "available: %s of %s (%.1f%%)\n", a, b,
		n->total ? 100.0 * (double)n->available / (double)n->total :
			   0.0);
	top_bar(f, t, cols);
	ctl_fmt_size(a, sizeof(a), n->low);
	ctl_fmt_size(b, sizeof(b), n->high);
	fprintf(f, "low (L): %s   high (H): %s\n", a, b);
	ctl_fmt_size(a, sizeof(a), n->committed);
	ctl_fmt_size(d, sizeof(d), n->commit_limit);
	if (n->commit_limit)
		fprintf(f, "committed: %s of %s commit limit (%.1f%%)\n", a, d,
			100.0 * (double)n->committed /
				(double)n->commit_limit);
	else
		fprintf(f, "committed: unknown\n");
}

/* The system broker's clerks, when membrokerd runs */
static void top_sys(FILE *f, const struct top *t, int rows, int cols)
{
	fputc('\n', f);
	if (t->sys_err) {
		fprintf(f, "system broker: membrokerd not reachable at %s (%s)\n",
			t->sock, strerror(-t->sys_err));
		return;
	}
	ctl_sys_print(f, t->rows, t->nrows, rows > 0 ? (size_t)rows : 1,
		      cols);
}

/* The newest notifications that fit, oldest first, cut to the width */
static void top_list(FILE *f, const struct top *t, int rows, int cols)
{
	size_t show, i;
	char line[512];
	FILE *lf;

	fprintf(f, "\nnotifications: %" PRIu64 " received, %" PRIu64
		" resynchronised; latest:\n", t->received, t->resyncs);
	show = rows > 0 ? (size_t)rows : 0;
	show = show < t->count ? show : t->count;
	for (i = t->count - show; i < t->count; i++) {
		lf = fmemopen(line, sizeof(line), "w");
		if (!lf)
			return;
		ctl_print_line(lf, &t->recent[(t->head + i) % TOP_RECENT]);
		fclose(lf);
		line[strcspn(line, "\n")] = '\0';
		if (cols > 0 && strlen(line) > (size_t)cols)
			line[cols] = '\0';
		fprintf(f, "%s\n", line);
	}
}

static int top_draw(const struct top *t)
{
	bool ansi = ctl_term_interactive(t->term);
	int rows, cols, list_rows;
	char *frame = NULL, *p, *nl;
	size_t len = 0;
	FILE *f;

	int sys_rows = TOP_SYS_ROWS;

	ctl_term_size(t->term, &rows, &cols);
	if (ansi && rows - TOP_HEADER_ROWS - 6 < 2 * sys_rows)
		sys_rows = (rows - TOP_HEADER_ROWS - 6) / 2;
	list_rows = ansi ? rows - TOP_HEADER_ROWS - 2 -
			   (t->sys_err ? 2 : sys_rows + 3) : TOP_BATCH_ROWS;
	f = open_memstream(&frame, &len);
	if (!f)
		return -errno;
	top_header(f, t, cols);
	top_sys(f, t, sys_rows, ansi ? cols : 0);
	/* a pipe or a file gets whole lines: nothing there wraps */
	top_list(f, t, list_rows, ansi ? cols : 0);
	if (fclose(f)) {
		free(frame);
		return -ENOMEM;
	}

	if (!ansi) {
		fputs(frame, stdout);
		fputc('\n', stdout);
	} else {
		/* home, then each line cleared to its end, then below */
		fputs("\033[H", stdout);
		for (p = frame; *p; p = nl + 1) {
			nl = strchrnul(p, '\n');
			fprintf(stdout, "%.*s\033[K\n", (int)(nl - p), p);
			if (!*nl)
				break;
		}
		fputs("\033[J", stdout);
	}
	free(frame);
	return fflush(stdout) || ferror(stdout) ? (errno ? -errno : -EIO) : 0;
}

static int top_refresh(struct top *t)
{
	struct mb_notification n;
	int err;

	err = ctl_get_state(t->c, &n);
	if (err)
		return err;
	t->cur = n;
	t->have_cur = n.state != MB_STATE_UNKNOWN;
	free(t->rows);
	t->sys_err = ctl_sys_clerks(t->sock, &t->rows, &t->nrows);
	return top_draw(t);
}

/* Return: 1 to quit, 0 to go on, -errno */
static int top_keys(struct top *t, struct pollfd *pfd)
{
	char buf[32];
	ssize_t len, i;

	len = read(STDIN_FILENO, buf, sizeof(buf));
	if (len < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	if (!len) {
		/* end of input: keep running, stop listening */
		pfd->fd = -1;
		return 0;
	}
	for (i = 0; i < len; i++)
		if (buf[i] == 'q' || buf[i] == 'Q')
			return 1;
	return top_draw(t);
}

static int top_parse(struct ctl *c, uint32_t *interval, uint32_t *iterations,
		     const char **sock, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "interval",   required_argument, NULL, 'i' },
		{ "iterations", required_argument, NULL, 'n' },
		{ "socket",     required_argument, NULL, 'S' },
		{ "json",   no_argument,       NULL, 'j' },
		{ "help",   no_argument,       NULL, 'h' },
		{ "source", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	while ((opt = getopt_long(argc, argv, "+i:n:S:" CTL_COMMON_OPTS, opts,
				  NULL)) != -1) {
		switch (opt) {
		case 'S':
			*sock = optarg;
			break;
		case 'i':
			if (ctl_parse_u32(optarg, interval) || *interval < 10 ||
			    *interval > 3600000)
				return ctl_bad_value("top", "--interval",
						     "10 to 3600000 ms",
						     optarg);
			break;
		case 'n':
			if (ctl_parse_u32(optarg, iterations) || !*iterations)
				return ctl_bad_value("top", "--iterations",
						     "a positive integer",
						     optarg);
			break;
		case 'j':
			c->json = true;
			break;
		case 's':
			c->source_arg = optarg;
			break;
		case 'h':
			fputs(cmd_top_usage, stdout);
			return -1;
		default:
			return ctl_getopt_error("top", argv, optopt);
		}
	}
	if (optind < argc)
		return ctl_usage_error("top", "unexpected argument '%s'",
				       argv[optind]);
	if (c->json)
		return ctl_usage_error("top", "top has no JSON output; use watch -j");
	return CTL_EXIT_OK;
}

static int top_loop(struct top *t, int sfd, uint32_t interval,
		    uint32_t iterations)
{
	uint64_t next = ctl_now_ns();
	struct pollfd pfd[4];
	uint32_t done = 0;
	int err;

	pfd[0] = (struct pollfd){ .fd = sfd, .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = ctl_events_fd(t->c), .events = POLLIN };
	pfd[2] = (struct pollfd){
		.fd = ctl_term_keys(t->term) ? STDIN_FILENO : -1,
		.events = POLLIN,
	};
	ctl_output_poll_init(&pfd[3]);
	if (pfd[1].fd < 0)
		return pfd[1].fd;

	for (;;) {
		if (ctl_poll_timeout(next) == 0) {
			err = top_refresh(t);
			if (err)
				return err;
			if (iterations && ++done >= iterations)
				return 0;
			next += (uint64_t)interval * 1000000;
			/* after a stall, tick from now rather than catch up */
			if (next < ctl_now_ns())
				next = ctl_now_ns() + (uint64_t)interval * 1000000;
		}
		if (poll(pfd, 4, ctl_poll_timeout(next)) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (pfd[0].revents) {
			err = ctl_signal_read(sfd);
			if (err < 0)
				return err;
			if (err == SIGTSTP) {
				/*
				 * Ctrl-Z: give the terminal back, then stop
				 * as SIGTSTP would have (it is blocked: we
				 * read it here).  SIGCONT comes next.
				 */
				ctl_term_suspend(t->term);
				kill(getpid(), SIGSTOP);
				continue;
			}
			if (err == SIGCONT) {
				err = ctl_term_resume(t->term);
				if (err)
					return err;
				err = SIGWINCH;	/* and redraw */
			}
			if (err && err != SIGWINCH)
				return 0;
			if (err == SIGWINCH) {
				err = top_draw(t);
				if (err)
					return err;
			}
		}
		if (pfd[1].revents) {
			err = ctl_events_dispatch(t->c);
			if (err < 0)
				return err;
			if (err > 0) {
				err = top_draw(t);
				if (err)
					return err;
			}
		}
		if (ctl_output_gone(&pfd[3]))
			return -EPIPE;
		if (pfd[2].revents) {
			err = top_keys(t, &pfd[2]);
			if (err)
				return err < 0 ? err : 0;
		}
	}
}

int cmd_top(struct ctl *c, int argc, char **argv)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT,
				    SIGWINCH, SIGTSTP, SIGCONT };
	uint32_t interval = 1000, iterations = 0;
	const char *sock = NULL;
	struct top *t;
	int ret, err, sfd;

	ret = top_parse(c, &interval, &iterations, &sock, argc, argv);
	if (ret)
		return ret < 0 ? CTL_EXIT_OK : ret;

	sfd = ctl_signals_open(sigs, ARRAY_SIZE(sigs));
	if (sfd < 0)
		return ctl_runtime_error(sfd, "cannot set up signal handling");
	ret = CTL_EXIT_RUNTIME;
	t = calloc(1, sizeof(*t));
	if (!t) {
		ctl_runtime_error(-ENOMEM, "top");
		goto out_sfd;
	}
	t->c = c;
	t->sock = ctl_daemon_path(sock);
	ret = ctl_open(c);
	if (ret)
		goto out_free;
	ret = CTL_EXIT_RUNTIME;
	err = top_seed(t);
	if (err < 0) {
		ctl_runtime_error(err, "cannot read the recent notifications");
		goto out_free;
	}
	err = ctl_events_start(c, top_event, t);
	if (err) {
		ctl_runtime_error(err, "cannot subscribe to notifications");
		goto out_free;
	}
	err = ctl_term_open(&t->term);
	if (err) {
		ctl_runtime_error(err, "cannot set up the terminal");
		goto out_free;
	}
	err = top_loop(t, sfd, interval, iterations);
	/* the message must land on the normal screen, after restoring it */
	ctl_term_close(t->term);
	/* "top | head": the reader has seen enough, which is no error */
	c->out_gone = err == -EPIPE;
	if (err && !c->out_gone)
		ctl_runtime_error(err, "top");
	else
		ret = CTL_EXIT_OK;
out_free:
	free(t->rows);
	free(t);
out_sfd:
	close(sfd);
	return ret;
}
