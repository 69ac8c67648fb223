// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * membrokerd: membroker's notifications for the software that already
 * listens for memory pressure (org.freedesktop.LowMemoryMonitor on the
 * system bus, systemd's memory pressure socket), and metrics about them.
 *
 * This file parses the options, opens every interface in turn (refusing
 * to start, in one line and with a distinct exit status, if one cannot be
 * had), tells systemd it is ready once all are up, runs the loop and
 * unwinds in reverse.  membrokerd(8) documents the options.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "membrokerd.h"

#define MBD_PRESSURE_SOCKET	"/run/membroker/memory-pressure.sock"
#define MBD_CONTROL_SOCKET_PATH	"/run/membroker/control.sock"

static const char usage[] =
"Usage: " MBD_NAME " [OPTIONS]\n"
"\n"
"Serves membroker's memory notifications as org.freedesktop.LowMemoryMonitor\n"
"on the system bus and on systemd's memory pressure socket protocol.\n"
"\n"
"  --no-bus                 do not serve org.freedesktop.LowMemoryMonitor\n"
"  --pressure-socket=PATH   memory pressure socket (default\n"
"                           " MBD_PRESSURE_SOCKET "; empty: none)\n"
"  --control-socket=PATH    control socket for membrokerctl (default\n"
"                           " MBD_CONTROL_SOCKET_PATH "; empty: none)\n"
"  --metrics-dir=DIR        write DIR/membroker.prom for node_exporter\n"
"  --repeat=SECONDS         re-send a lasting level this often (default 15)\n"
"  --refresh-ms=MS          re-read memory this often while LOW (default 250)\n"
"  --medium-percent=P       level 100 below P%% of the low threshold (50)\n"
"  --critical-percent=P     level 255 below P%% of the low threshold (25)\n"
"  --max-clients=N          pressure socket clients at once (default 1024)\n"
"  --answer-timeout=SECONDS  the system broker waits this long for a\n"
"                           client's answer (default 0.5)\n"
"  --settle=SECONDS         ... and this long for a reading after a step\n"
"                           (default 1)\n"
"  --source=NAME            auto, kmod, cgroup, psi, meminfo; fake for tests\n"
"  --low=BYTES, --high=BYTES  thresholds of sources without their own\n"
"  --root=DIR               read /proc and /sys below DIR (tests)\n"
"  -v, --verbose            one line per warning sent\n"
"  -h, --help               this text\n"
"      --version            the version\n"
"\n"
"Exit status: 0 stopped by a signal, 1 failure, 2 usage error, 3 the bus\n"
"name is owned by another process, 4 a socket path is served by another\n"
"process or is not a socket.\n";

/* One write per line: other programs may share our stderr (a console). */
void mbd_log(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int len;

	len = snprintf(line, sizeof(line), MBD_NAME ": ");
	va_start(ap, fmt);
	len += vsnprintf(line + len, sizeof(line) - len - 1, fmt, ap);
	va_end(ap);
	if (len > (int)sizeof(line) - 2)
		len = sizeof(line) - 2;
	line[len++] = '\n';
	if (write(STDERR_FILENO, line, len) < 0)
		return;		/* nowhere left to complain */
}

uint64_t mbd_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * MBD_NSEC_PER_SEC + ts.tv_nsec;
}

struct mbd_args {
	struct mbd_follow_opts follow;
	struct mbd_sys_opts sys;
	bool no_bus;
	const char *pressure;
	const char *control;
	const char *metrics;
	unsigned int max_clients;
};

static int mbd_usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, MBD_NAME ": ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry '" MBD_NAME " --help'.\n");
	return MBD_EXIT_USAGE;
}

static int mbd_parse_u64(const char *s, uint64_t *out, bool suffix)
{
	unsigned long long v, mul = 1;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	if (suffix && *end) {
		switch (*end++) {
		case 'K':
			mul = 1ULL << 10;
			break;
		case 'M':
			mul = 1ULL << 20;
			break;
		case 'G':
			mul = 1ULL << 30;
			break;
		default:
			return -EINVAL;
		}
	}
	if (*end || (v && mul > UINT64_MAX / v))
		return -EINVAL;
	*out = v * mul;
	return 0;
}

/* "15", "0.05": seconds with up to millisecond precision, > 0 */
static int mbd_parse_seconds(const char *s, uint64_t *out_ns)
{
	uint64_t sec, ms = 0;
	char head[32], *frac;
	size_t i, digits;

	if (strlen(s) >= sizeof(head))
		return -EINVAL;
	strcpy(head, s);
	frac = strchr(head, '.');
	if (frac) {
		*frac++ = '\0';
		digits = strlen(frac);
		if (!digits || digits > 3)
			return -EINVAL;
		for (i = 0; i < 3; i++) {
			if (i < digits && (frac[i] < '0' || frac[i] > '9'))
				return -EINVAL;
			ms = ms * 10 + (i < digits ? frac[i] - '0' : 0);
		}
	}
	if (mbd_parse_u64(head, &sec, false) || sec > 86400 || !(sec || ms))
		return -EINVAL;
	*out_ns = sec * MBD_NSEC_PER_SEC + ms * MBD_NSEC_PER_MSEC;
	return 0;
}

enum {
	OPT_NO_BUS = 256, OPT_PRESSURE, OPT_CONTROL, OPT_METRICS, OPT_REPEAT,
	OPT_REFRESH, OPT_MEDIUM, OPT_CRITICAL, OPT_MAX_CLIENTS, OPT_SOURCE,
	OPT_LOW, OPT_HIGH, OPT_ROOT, OPT_VERSION, OPT_ANSWER, OPT_SETTLE,
};

/* >= 0: an exit status to return now; -1: go on */
static int mbd_parse_args(struct mbd_args *a, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "no-bus", no_argument, NULL, OPT_NO_BUS },
		{ "pressure-socket", required_argument, NULL, OPT_PRESSURE },
		{ "control-socket", required_argument, NULL, OPT_CONTROL },
		{ "metrics-dir", required_argument, NULL, OPT_METRICS },
		{ "repeat", required_argument, NULL, OPT_REPEAT },
		{ "refresh-ms", required_argument, NULL, OPT_REFRESH },
		{ "medium-percent", required_argument, NULL, OPT_MEDIUM },
		{ "critical-percent", required_argument, NULL, OPT_CRITICAL },
		{ "max-clients", required_argument, NULL, OPT_MAX_CLIENTS },
		{ "answer-timeout", required_argument, NULL, OPT_ANSWER },
		{ "settle", required_argument, NULL, OPT_SETTLE },
		{ "source", required_argument, NULL, OPT_SOURCE },
		{ "low", required_argument, NULL, OPT_LOW },
		{ "high", required_argument, NULL, OPT_HIGH },
		{ "root", required_argument, NULL, OPT_ROOT },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	struct mb_monitor_opts *mo = &a->follow.mon;
	uint64_t v;
	int opt, r;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (opt) {
		case OPT_NO_BUS:
			a->no_bus = true;
			break;
		case OPT_PRESSURE:
			a->pressure = optarg;
			break;
		case OPT_CONTROL:
			a->control = optarg;
			break;
		case OPT_METRICS:
			a->metrics = optarg;
			break;
		case OPT_REPEAT:
			if (mbd_parse_seconds(optarg, &a->follow.repeat_ns))
				return mbd_usage_error("--repeat needs seconds "
						       "(up to 86400, ms "
						       "precision), not '%s'",
						       optarg);
			break;
		case OPT_REFRESH:
			if (mbd_parse_u64(optarg, &v, false) || !v ||
			    v > 60000)
				return mbd_usage_error("--refresh-ms needs "
						       "1..60000, not '%s'",
						       optarg);
			mo->low_repeat_ms = v;
			break;
		case OPT_ANSWER:
		case OPT_SETTLE:
			if (mbd_parse_seconds(optarg, opt == OPT_ANSWER ?
					      &a->sys.answer_ns :
					      &a->sys.settle_ns) ||
			    (opt == OPT_ANSWER ? a->sys.answer_ns :
			     a->sys.settle_ns) > 60 * MBD_NSEC_PER_SEC)
				return mbd_usage_error("%s needs seconds, "
						       "up to 60 (ms "
						       "precision)",
						       argv[optind - 1]);
			break;
		case OPT_MEDIUM:
		case OPT_CRITICAL:
			if (mbd_parse_u64(optarg, &v, false) || v > 100)
				return mbd_usage_error("a percentage is "
						       "0..100, not '%s'",
						       optarg);
			if (opt == OPT_MEDIUM)
				a->follow.level.medium_pct = v;
			else
				a->follow.level.critical_pct = v;
			break;
		case OPT_MAX_CLIENTS:
			if (mbd_parse_u64(optarg, &v, false) || !v ||
			    v > 1000000)
				return mbd_usage_error("--max-clients needs "
						       "1..1000000, not '%s'",
						       optarg);
			a->max_clients = v;
			break;
		case OPT_SOURCE:
			r = mb_source_parse(optarg);
			if (r < 0)
				return mbd_usage_error("unknown source '%s'",
						       optarg);
			mo->source = r;
			break;
		case OPT_LOW:
		case OPT_HIGH:
			if (mbd_parse_u64(optarg, &v, true) || !v)
				return mbd_usage_error("a threshold is bytes "
						       "(K, M, G suffixes), "
						       "not '%s'", optarg);
			if (opt == OPT_LOW)
				mo->low_bytes = v;
			else
				mo->high_bytes = v;
			break;
		case OPT_ROOT:
			mo->root = optarg;
			break;
		case 'v':
			a->follow.verbose = true;
			break;
		case 'h':
			fputs(usage, stdout);
			return MBD_EXIT_OK;
		case OPT_VERSION:
			puts(MBD_NAME " " MBD_VERSION_STRING);
			return MBD_EXIT_OK;
		default:
			return mbd_usage_error("option '%s' is unknown or "
					       "needs a value",
					       argv[optind - 1]);
		}
	}
	if (optind < argc)
		return mbd_usage_error("unexpected argument '%s'",
				       argv[optind]);
	if (a->follow.level.critical_pct > a->follow.level.medium_pct)
		return mbd_usage_error("%s", "--critical-percent must not be "
				       "above --medium-percent");
	if (mo->low_bytes && mo->high_bytes &&
	    mo->low_bytes >= mo->high_bytes)
		return mbd_usage_error("%s", "--low must be below --high");
	return -1;
}

/*
 * Each pressure client is a file descriptor: allow as many as the hard
 * limit lets us, and no more clients than fit below it.
 */
static void mbd_fd_limit(struct mbd_args *a)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < a->max_clients + 64ULL)
		a->max_clients = rl.rlim_cur > 128 ? rl.rlim_cur - 64 : 64;
}

static int mbd_on_signal(sd_event_source *s, const struct signalfd_siginfo *si,
			 void *arg)
{
	(void)si;
	(void)arg;
	return sd_event_exit(sd_event_source_get_event(s), MBD_EXIT_OK);
}

static int mbd_exit_status(int r, int socket_status)
{
	if (r == -EADDRINUSE || r == -EEXIST)
		return socket_status;
	return MBD_EXIT_FAILURE;
}

int main(int argc, char **argv)
{
	struct mbd_args a = {
		.follow = {
			.mon = MB_OPTS(mb_monitor_opts,
				       .source = MB_SOURCE_AUTO,
				       .low_repeat_ms = 250),
			.level = { .medium_pct = 50, .critical_pct = 25 },
			.repeat_ns = 15 * MBD_NSEC_PER_SEC,
		},
		.sys = {
			.answer_ns = 500 * MBD_NSEC_PER_MSEC,
			.settle_ns = MBD_NSEC_PER_SEC,
			.report_ms = 200,
		},
		.pressure = MBD_PRESSURE_SOCKET,
		.control = MBD_CONTROL_SOCKET_PATH,
		.max_clients = 1024,
	};
	struct mbd_sources src = { 0 };
	struct mbd_follow_stats st;
	struct mbd_follow *follow = NULL;
	struct mbd_bus *bus = NULL;
	struct mbd_pressure *pressure = NULL;
	struct mbd_control *control = NULL;
	struct mbd_sys *sys = NULL;
	struct mbd_metrics *metrics = NULL;
	sd_event *e = NULL;
	sigset_t ss;
	int r, ret = MBD_EXIT_FAILURE;

	r = mbd_parse_args(&a, argc, argv);
	if (r >= 0)
		return r;
	mbd_fd_limit(&a);
	signal(SIGPIPE, SIG_IGN);
	/* the library's system broker client: never with ourselves */
	setenv("MEMBROKER_SYSTEM_BROKER", "0", 1);
	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	sigprocmask(SIG_BLOCK, &ss, NULL);

	r = sd_event_new(&e);
	if (r >= 0)
		r = sd_event_add_signal(e, NULL, SIGTERM, mbd_on_signal, NULL);
	if (r >= 0)
		r = sd_event_add_signal(e, NULL, SIGINT, mbd_on_signal, NULL);
	if (r < 0) {
		mbd_log("cannot set up the event loop: %s", strerror(-r));
		goto out;
	}

	r = mbd_follow_open(&follow, e, &a.follow);
	if (r < 0)
		goto out;
	src.follow = follow;
	if (!a.no_bus) {
		r = mbd_bus_open(&bus, e);
		if (r < 0) {
			ret = r == -EEXIST ? MBD_EXIT_BUS_NAME :
					     MBD_EXIT_FAILURE;
			goto out;
		}
		src.bus = bus;
	}
	if (*a.pressure) {
		r = mbd_pressure_open(&pressure, e, a.pressure, a.max_clients);
		if (r < 0) {
			ret = mbd_exit_status(r, MBD_EXIT_SOCKET);
			goto out;
		}
		src.pressure = pressure;
	}
	if (*a.control) {
		/* the system broker's clients come over the control socket */
		r = mbd_sys_open(&sys, e, &a.sys);
		if (r < 0)
			goto out;
		src.sys = sys;
		r = mbd_control_open(&control, e, a.control, &src, follow, sys,
				     a.follow.mon.source == MB_SOURCE_FAKE);
		if (r < 0) {
			ret = mbd_exit_status(r, MBD_EXIT_SOCKET);
			goto out;
		}
		src.control = control;
	}
	if (a.metrics) {
		r = mbd_metrics_open(&metrics, e, a.metrics, &src);
		if (r < 0)
			goto out;
	}
	mbd_follow_attach(follow, bus, pressure,
			  metrics ? mbd_metrics_changed : NULL, metrics);
	mbd_follow_attach_sys(follow, sys);
	r = mbd_follow_start(follow);
	if (r < 0) {
		mbd_log("cannot start following the monitor: %s",
			strerror(-r));
		goto out;
	}

	mbd_follow_stats(follow, &st);
	mbd_log("ready: source %s, bus %s, pressure socket %s, control "
		"socket %s, metrics %s", mb_source_name(st.source),
		bus ? "org.freedesktop.LowMemoryMonitor" : "none",
		pressure ? a.pressure : "none", control ? a.control : "none",
		metrics ? a.metrics : "none");
	sd_notify(0, "READY=1\nSTATUS=Serving memory notifications");
	ret = sd_event_loop(e);
	if (ret < 0) {
		mbd_log("the event loop failed: %s", strerror(-ret));
		ret = MBD_EXIT_FAILURE;
	} else if (ret != MBD_EXIT_OK) {
		mbd_log("lost the system bus");
	}
	sd_notify(0, "STOPPING=1");
out:
	mbd_metrics_close(metrics);
	/* its clients leave the system broker first */
	mbd_control_close(control);
	mbd_sys_close(sys);
	mbd_pressure_close(pressure);
	mbd_bus_close(bus);
	mbd_follow_close(follow);
	sd_event_unref(e);
	return ret;
}
