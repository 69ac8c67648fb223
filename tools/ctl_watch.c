// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * membrokerctl watch: one line per notification, as it arrives, until
 * SIGINT/SIGTERM, --count notifications or --timeout seconds.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "ctl.h"

const char cmd_watch_usage[] =
"Usage: " CTL_NAME " [-j] [-s SOURCE] watch [--count N] [--timeout S]\n"
"\n"
"Print one line per notification as it arrives: monotonic time, wall\n"
"clock, sequence number, state, flags, available and total memory, the\n"
"thresholds and the reason.  With -j, one JSON object per line.\n"
"\n"
"  -c, --count N     exit after N notifications\n"
"  -t, --timeout S   exit after S seconds (fractions allowed)\n"
"\n"
"SIGINT and SIGTERM end the watch with exit status 0, as do --count,\n"
"--timeout alone and the reader of a pipe going away.  With both, a\n"
"timeout before N notifications exits with status 3.  The source in use\n"
"is reported on standard error once the watch has started.\n";

struct watch {
	struct ctl *c;
	unsigned long count;	/* notifications to print; 0: no limit */
	unsigned long seen;
	int write_err;		/* -errno of a failed write, which stops */
};

static void watch_print(const struct mb_notification *n, bool resync,
			void *arg)
{
	struct watch *w = arg;

	/* a dispatch can deliver several: print no more than asked */
	if ((w->count && w->seen >= w->count) || w->write_err)
		return;
	w->seen++;
	if (w->c->json) {
		ctl_print_json(stdout, n, resync);
		fputc('\n', stdout);
	} else {
		if (resync)
			printf("# notifications were lost; the next line is the current state\n");
		ctl_print_line(stdout, n);
	}
	/* a pipe reader wants each line now, not when the buffer fills */
	if (fflush(stdout) || ferror(stdout))
		w->write_err = errno ? -errno : -EIO;
}

static int watch_parse(struct watch *w, uint64_t *timeout_ns, int argc,
		       char **argv)
{
	static const struct option opts[] = {
		{ "count",   required_argument, NULL, 'c' },
		{ "timeout", required_argument, NULL, 't' },
		{ "json",   no_argument,       NULL, 'j' },
		{ "help",   no_argument,       NULL, 'h' },
		{ "source", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	uint32_t count;
	int opt;

	while ((opt = getopt_long(argc, argv, "+c:t:" CTL_COMMON_OPTS, opts,
				  NULL)) != -1) {
		switch (opt) {
		case 'c':
			if (ctl_parse_u32(optarg, &count) || !count)
				return ctl_bad_value("watch", "--count",
						     "a positive integer",
						     optarg);
			w->count = count;
			break;
		case 't':
			if (ctl_parse_seconds(optarg, timeout_ns))
				return ctl_bad_value("watch", "--timeout",
						     "a positive number of seconds",
						     optarg);
			break;
		case 'j':
			w->c->json = true;
			break;
		case 's':
			w->c->source_arg = optarg;
			break;
		case 'h':
			fputs(cmd_watch_usage, stdout);
			return -1;
		default:
			return ctl_getopt_error("watch", argv, optopt);
		}
	}
	if (optind < argc)
		return ctl_usage_error("watch", "unexpected argument '%s'",
				       argv[optind]);
	return CTL_EXIT_OK;
}

int cmd_watch(struct ctl *c, int argc, char **argv)
{
	static const int sigs[] = { SIGINT, SIGTERM };
	struct watch w = { .c = c };
	uint64_t timeout_ns = 0, deadline = 0;
	struct pollfd pfd[3];
	char note[64];
	int ret, err, sfd;

	ret = watch_parse(&w, &timeout_ns, argc, argv);
	if (ret)
		return ret < 0 ? CTL_EXIT_OK : ret;

	sfd = ctl_signals_open(sigs, ARRAY_SIZE(sigs));
	if (sfd < 0)
		return ctl_runtime_error(sfd, "cannot set up signal handling");
	if (timeout_ns)
		deadline = ctl_now_ns() + timeout_ns;

	ret = ctl_open(c);
	if (ret)
		goto out_sfd;
	ret = CTL_EXIT_RUNTIME;
	err = ctl_events_start(c, watch_print, &w);
	if (err) {
		ctl_runtime_error(err, "cannot subscribe to notifications");
		goto out_sfd;
	}
	pfd[0] = (struct pollfd){ .fd = sfd, .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = ctl_events_fd(c), .events = POLLIN };
	ctl_output_poll_init(&pfd[2]);
	if (pfd[1].fd < 0) {
		ctl_runtime_error(pfd[1].fd, "no pollable descriptor");
		goto out_sfd;
	}
	/* also tells a script driving us that signals are now handled */
	fprintf(stderr, "source: %s\n", ctl_source_note(c, note, sizeof(note)));

	while (!w.count || w.seen < w.count) {
		int timeout = ctl_poll_timeout(deadline);

		/*
		 * "watch --count 1 --timeout 60" asks whether something
		 * happened within a minute: the answer must not need the
		 * output to be read.
		 */
		if (!timeout) {
			ret = w.count ? CTL_EXIT_TIMEOUT : CTL_EXIT_OK;
			goto out_sfd;
		}
		if (poll(pfd, 3, timeout) < 0) {
			if (errno == EINTR)
				continue;
			ctl_runtime_error(errno, "poll");
			goto out_sfd;
		}
		if (pfd[0].revents) {
			err = ctl_signal_read(sfd);
			if (err < 0) {
				ctl_runtime_error(err, "reading signals");
				goto out_sfd;
			}
			if (err)
				break;
		}
		if (pfd[1].revents) {
			err = ctl_events_dispatch(c);
			if (err < 0) {
				ctl_runtime_error(err, "receiving notifications");
				goto out_sfd;
			}
		}
		if (w.write_err == -EPIPE || ctl_output_gone(&pfd[2])) {
			/* the reader stopped the watch: as asked, quietly */
			c->out_gone = true;
			break;
		}
		if (w.write_err) {
			ctl_runtime_error(w.write_err, "writing the output");
			goto out_sfd;
		}
	}
	ret = CTL_EXIT_OK;
out_sfd:
	close(sfd);
	return ret;
}
