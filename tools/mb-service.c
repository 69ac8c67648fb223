// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * mb-service: the demo's "application", a service with two caches that
 * follow memory the way libmembroker means them to.
 *
 *   mb-service [--fill-rate MiBps] [--sample-ms N] [--max-mib N]
 *              [--max-percent P] [--shrink-step P] [--low-repeat-ms N]
 *              [--state-file PATH] [--seconds N]
 *
 * One resource monitor on the automatic source (membroker.ko where it is
 * loaded), one broker "demo" and two mb_caches in it:
 *
 *   thumbnails  priority 20 (cheap: re-rendered on a miss), 32 KiB
 *               values, an open-ended key space: it takes whatever the
 *               broker allows, up to its own bound (--max-mib, or
 *               --max-percent of total memory, which follows the total
 *               when memory is added or taken away);
 *   sessions    priority 80 (expensive: a miss logs a user out), 4 KiB
 *               values for a fixed population of 6144 sessions.
 *
 * The service keeps filling both towards the target its broker allows,
 * at --fill-rate.  The broker lowers the targets and evicts on LOW, the
 * cheap cache first, --shrink-step percent of the pool per step and a
 * step every --low-repeat-ms while LOW lasts; holds them on STEADY; and
 * on HIGH lifts their targets (the pool has no maximum), so that the
 * filling alone takes them back up to their own bounds, however long
 * the module stays quiet after that HIGH.  Nothing here prods the
 * broker: it acts on what the monitor delivers, and nothing else.
 *
 * Everything runs on one thread around poll(): the monitor's fd, a
 * signalfd for SIGTERM/SIGINT, and the fill/sample timers.  Shrink
 * callbacks therefore never race the filling.
 *
 * Output: one machine-parsable line per event on stdout, all starting
 * with "MB-SVC <seconds>" (CLOCK_MONOTONIC, the clock of the module's
 * timestamps) and made of key=value words, sizes in bytes:
 *
 *   start    source=kmod pid=N fill_rate=B ...
 *   notify   seq= state= flags= avail= total= low= high= reason= repeat=0|1
 *            (repeat=1: the monitor saying LOW again while it lasts,
 *            with fresh figures; for the module, a GET_STATE answer,
 *            reason query, that changed nothing since the LOW)
 *   decision clerk= decision=grow|shrink|stable state= allocated=
 *            target= freed=   (one per cache per notification, at its
 *            time; a lifted target is 18446744073709551615)
 *   sample   state= avail= total= thumbnails= thumbnails_target=
 *            thumbnails_bound= sessions= sessions_target= rss=
 *            (avail and total: MemAvailable and MemTotal now)
 *   stop     status=0 ...
 *
 * --state-file PATH is rewritten (atomically) with the latest sample:
 * the state, how many notifications (and LOW ones) have arrived, the
 * total memory they reported last, the caches' sizes and "warm=1" once
 * both are full up to their own bounds, so that a script can follow the
 * service without parsing its output.
 * SIGTERM and SIGINT end the service cleanly (status 0).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <linux/membroker.h>

#include "membroker.h"

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define MIB		UINT64_C(1048576)
#define NSEC_PER_MSEC	UINT64_C(1000000)
#define NSEC_PER_SEC	UINT64_C(1000000000)

#define THUMB_VALUE	(32 * 1024)
#define THUMB_PRIORITY	20
#define SESS_VALUE	4096
#define SESS_COUNT	6144
#define SESS_PRIORITY	80
/* the filler runs this often; --fill-rate is spread over the runs */
#define FILL_MS		50
#define RING_BATCH	64
/* mb_cache charges an entry a little more than its key and value */
#define ENTRY_SLACK	256

struct opts {
	uint64_t fill_rate;	/* bytes per second */
	uint32_t sample_ms;
	uint64_t max_bytes;	/* thumbnails' own bound, 0: none */
	uint32_t max_percent;	/* ... as a share of total memory, 0: none */
	uint32_t shrink_step;	/* broker's shrink_step_percent */
	uint32_t low_repeat_ms;	/* monitor's low_repeat_ms */
	const char *state_file;
	uint32_t seconds;	/* 0: until SIGTERM */
};

struct svc {
	struct opts o;
	struct mb_monitor *mon;
	struct mb_broker *broker;
	struct mb_cache *thumbs, *sess;
	uint64_t mon_seq, brk_seq;	/* next ring records to print */
	struct mb_notification last;	/* the last one printed */
	uint64_t thumb_next;		/* next thumbnail key */
	uint32_t sess_next;		/* next session to look up */
	uint32_t sess_hits_in_row;	/* consecutive hits: all present */
	uint64_t fill_credit;		/* bytes the filler may still put */
	uint64_t put_errors;
	uint64_t notifications;		/* delivered, repeats included */
	uint64_t lows;			/* ... of them LOW */
	char value[THUMB_VALUE];
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

static void print_time(uint64_t ns)
{
	printf("MB-SVC %" PRIu64 ".%03" PRIu64 " ", ns / NSEC_PER_SEC,
	       ns / NSEC_PER_MSEC % 1000);
}

static const char *decision_name(uint32_t d)
{
	switch (d) {
	case MB_DECISION_GROW:
		return "grow";
	case MB_DECISION_SHRINK:
		return "shrink";
	default:
		return "stable";
	}
}

/* The reason names of the uapi's enum membroker_reason */
static const char *reason_name(const struct mb_notification *n)
{
	static const char * const names[] = {
		"unspec", "load", "poll", "reclaim", "hotplug", "config",
		"oom", "query", "deferred",
	};

	if (n->source != MB_SOURCE_KMOD)
		return mb_source_name(n->source);
	return n->reason < ARRAY_SIZE(names) ?
	       names[n->reason] : "unknown";
}

/*
 * The monitor's LOW repeat: LOW again, from the source that said LOW, with
 * nothing new but the figures.  The module answers it with GET_STATE
 * (reason query), which carries the sequence number of its latest
 * notification; a GET_STATE may also be the first to show a relaxation
 * the module's rate limit still holds back, with that same number, and
 * that is a change, not a repeat.
 */
static bool is_repeat(const struct mb_notification *prev,
		      const struct mb_notification *n)
{
	return prev->state == MB_STATE_LOW && n->state == MB_STATE_LOW &&
	       n->source == prev->source && n->seq == prev->seq &&
	       n->flags == prev->flags &&
	       (n->source != MB_SOURCE_KMOD ||
		n->reason == MEMBROKER_REASON_QUERY);
}

/* Print what the monitor delivered since the last call. */
static void drain_monitor(struct svc *s)
{
	struct mb_notification n[RING_BATCH];
	uint64_t missed;
	int i, got;

	do {
		got = mb_ring_read(mb_monitor_ring(s->mon), s->mon_seq, n,
				   NULL, RING_BATCH, &missed);
		if (got < 0)
			return;
		if (missed)
			printf("MB-SVC-NOTE %" PRIu64
			       " notifications overwritten before printing\n",
			       missed);
		s->mon_seq += (uint64_t)got + missed;
		for (i = 0; i < got; i++) {
			print_time(n[i].time_ns);
			printf("notify seq=%" PRIu64 " state=%s flags=%u avail=%"
			       PRIu64 " total=%" PRIu64 " low=%" PRIu64
			       " high=%" PRIu64 " reason=%s repeat=%d\n",
			       n[i].seq, mb_state_name(n[i].state),
			       n[i].flags, n[i].available, n[i].total,
			       n[i].low, n[i].high, reason_name(&n[i]),
			       is_repeat(&s->last, &n[i]));
			s->last = n[i];
			s->notifications++;
			if (n[i].state == MB_STATE_LOW)
				s->lows++;
		}
	} while (got == RING_BATCH);
}

/* Print the broker's decisions since the last call. */
static void drain_broker(struct svc *s)
{
	struct mb_broker_record r[RING_BATCH];
	uint64_t missed;
	int i, got;

	do {
		got = mb_ring_read(mb_broker_ring(s->broker), s->brk_seq, r,
				   NULL, RING_BATCH, &missed);
		if (got < 0)
			return;
		if (missed)
			printf("MB-SVC-NOTE %" PRIu64
			       " decisions overwritten before printing\n",
			       missed);
		s->brk_seq += (uint64_t)got + missed;
		for (i = 0; i < got; i++) {
			print_time(r[i].time_ns);
			printf("decision clerk=%s decision=%s state=%s allocated=%"
			       PRIu64 " target=%" PRIu64 " freed=%" PRIu64 "\n",
			       r[i].clerk,
			       decision_name(r[i].decision),
			       mb_state_name(r[i].state), r[i].allocated,
			       r[i].target, r[i].freed);
		}
	} while (got == RING_BATCH);
}

static uint64_t cache_bytes(struct mb_cache *c)
{
	struct mb_cache_stats st;

	return mb_cache_stats(c, &st) ? 0 : st.bytes;
}

/* The thumbnails' own bound (0: none): --max-mib, --max-percent. */
static uint64_t thumb_bound(const struct svc *s)
{
	uint64_t bound = s->o.max_bytes, pct;
	struct mb_notification st;

	if (s->o.max_percent &&
	    mb_monitor_get_state(s->mon, &st) == 0 && st.total) {
		pct = st.total / 100 * s->o.max_percent;
		if (!bound || pct < bound)
			bound = pct;
	}
	return bound;
}

/* The cost mb_cache charges for one entry is a little more than k + v. */
static bool fits(struct mb_cache *c, uint64_t limit, size_t vlen)
{
	return cache_bytes(c) + vlen + ENTRY_SLACK <= limit;
}

/* Room for one more entry within the target and @bound (0: none)? */
static bool has_room(struct mb_cache *c, uint64_t bound, size_t vlen)
{
	uint64_t target = mb_clerk_target(mb_cache_clerk(c));

	return fits(c, bound && bound < target ? bound : target, vlen);
}

static uint64_t rss_bytes(void)
{
	unsigned long long pages = 0, res = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		return 0;
	if (fscanf(f, "%llu %llu", &pages, &res) != 2)
		res = 0;
	fclose(f);
	return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
}

static int put(struct svc *s, struct mb_cache *c, const char *key,
	       size_t vlen)
{
	int err = mb_cache_put(c, key, strlen(key), s->value, vlen);

	if (err)
		s->put_errors++;
	return err;
}

/*
 * Sessions: users come back in turn; a session not in the cache is
 * rebuilt and put back.  Once a whole round finds every session cached,
 * there is nothing left to fill.
 */
static bool sessions_hungry(const struct svc *s)
{
	return s->sess_hits_in_row < SESS_COUNT;
}

static void fill_sessions(struct svc *s)
{
	char key[32];
	uint32_t i;

	for (i = 0; i < SESS_COUNT && s->fill_credit >= SESS_VALUE; i++) {
		snprintf(key, sizeof(key), "session-%u", s->sess_next);
		s->sess_next = (s->sess_next + 1) % SESS_COUNT;
		if (mb_cache_get(s->sess, key, strlen(key), NULL, 0) >= 0) {
			if (s->sess_hits_in_row < SESS_COUNT)
				s->sess_hits_in_row++;
			continue;
		}
		s->sess_hits_in_row = 0;
		if (!has_room(s->sess, 0, SESS_VALUE) ||
		    put(s, s->sess, key, SESS_VALUE))
			break;
		s->fill_credit -= SESS_VALUE;
	}
}

/* Thumbnails: there is always another picture to render and keep. */
static void fill_thumbnails(struct svc *s)
{
	uint64_t bound = thumb_bound(s);
	char key[32];

	while (s->fill_credit >= THUMB_VALUE &&
	       has_room(s->thumbs, bound, THUMB_VALUE)) {
		snprintf(key, sizeof(key), "thumb-%" PRIu64, s->thumb_next++);
		if (put(s, s->thumbs, key, THUMB_VALUE))
			break;
		s->fill_credit -= THUMB_VALUE;
	}
}

static void fill(struct svc *s, uint64_t elapsed_ns)
{
	struct mb_notification st;

	/* no target before the first notification: wait for one */
	if (mb_monitor_get_state(s->mon, &st) || st.state == MB_STATE_UNKNOWN)
		return;
	s->fill_credit += s->o.fill_rate * elapsed_ns / NSEC_PER_SEC;
	/* what could not be spent is not saved up for a burst later */
	if (s->fill_credit > s->o.fill_rate)
		s->fill_credit = s->o.fill_rate;
	fill_sessions(s);
	fill_thumbnails(s);
}

/* MemAvailable and MemTotal in bytes (0 where unreadable) */
static void read_meminfo(uint64_t *avail, uint64_t *total)
{
	unsigned long long kib;
	char line[128];
	FILE *f = fopen("/proc/meminfo", "r");

	*avail = 0;
	*total = 0;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "MemTotal: %llu kB", &kib) == 1)
			*total = (uint64_t)kib * 1024;
		else if (sscanf(line, "MemAvailable: %llu kB", &kib) == 1)
			*avail = (uint64_t)kib * 1024;
	}
	fclose(f);
}

/* a target of UINT64_MAX (none yet) is printed as -1 */
static int64_t signed_target(struct mb_cache *c)
{
	uint64_t t = mb_clerk_target(mb_cache_clerk(c));

	return t == UINT64_MAX ? -1 : (int64_t)t;
}

static void print_sample(struct svc *s, uint64_t now)
{
	uint64_t tb = cache_bytes(s->thumbs), sb = cache_bytes(s->sess);
	uint64_t bound = thumb_bound(s), avail, total;
	struct mb_notification st;
	char tmp[4096];
	bool warm;
	FILE *f;

	if (mb_monitor_get_state(s->mon, &st))
		st.state = MB_STATE_UNKNOWN;
	read_meminfo(&avail, &total);
	print_time(now);
	printf("sample state=%s avail=%" PRIu64 " total=%" PRIu64
	       " thumbnails=%" PRIu64 " thumbnails_target=%" PRId64
	       " thumbnails_bound=%" PRIu64 " sessions=%" PRIu64
	       " sessions_target=%" PRId64 " rss=%" PRIu64 "\n",
	       mb_state_name(st.state), avail, total, tb,
	       signed_target(s->thumbs), bound, sb, signed_target(s->sess),
	       rss_bytes());
	if (!s->o.state_file)
		return;
	/* full up to their own bounds: only an unbounded cache never is */
	warm = bound && !fits(s->thumbs, bound, THUMB_VALUE) &&
	       !sessions_hungry(s);
	snprintf(tmp, sizeof(tmp), "%s.tmp", s->o.state_file);
	f = fopen(tmp, "w");
	if (!f)
		return;
	fprintf(f, "state=%s notifications=%" PRIu64 " lows=%" PRIu64
		" total=%" PRIu64 " thumbnails=%" PRIu64 " sessions=%" PRIu64
		" warm=%d\n", mb_state_name(st.state), s->notifications,
		s->lows, st.total, tb, sb, warm);
	if (fclose(f) == 0)
		rename(tmp, s->o.state_file);
}

static int setup_service(struct svc *s)
{
	struct mb_monitor_opts mo = {
		.sz = sizeof(mo),
		.source = MB_SOURCE_AUTO,
		.low_repeat_ms = s->o.low_repeat_ms,
	};
	struct mb_broker_opts bo = {
		.sz = sizeof(bo),
		.shrink_step_percent = s->o.shrink_step,
		.trim = true,
	};
	struct mb_cache_opts to = { .sz = sizeof(to),
				    .priority = THUMB_PRIORITY };
	struct mb_cache_opts so = { .sz = sizeof(so),
				    .priority = SESS_PRIORITY };
	int err;

	err = mb_monitor_new(&s->mon, &mo);
	if (err) {
		fprintf(stderr, "mb-service: no resource monitor: %s\n",
			strerror(-err));
		return err;
	}
	err = mb_broker_new(&s->broker, "demo", s->mon, &bo);
	if (!err)
		err = mb_cache_new(&s->thumbs, "thumbnails", &to);
	if (!err)
		err = mb_cache_new(&s->sess, "sessions", &so);
	if (!err)
		err = mb_broker_add_clerk(s->broker, mb_cache_clerk(s->thumbs));
	if (!err)
		err = mb_broker_add_clerk(s->broker, mb_cache_clerk(s->sess));
	if (err)
		fprintf(stderr, "mb-service: setup: %s\n", strerror(-err));
	s->mon_seq = 1;
	s->brk_seq = 1;
	return err;
}

static void teardown(struct svc *s)
{
	/* the caches leave the broker before it goes, then the monitor */
	mb_cache_free(s->thumbs);
	mb_cache_free(s->sess);
	mb_broker_free(s->broker);
	mb_monitor_free(s->mon);
	if (s->o.state_file)
		unlink(s->o.state_file);
}

static int run(struct svc *s, int sfd)
{
	uint64_t start = now_ns(), t = start, last_fill = start;
	uint64_t next_fill = start, next_sample = start;
	uint64_t end = s->o.seconds ?
		       start + s->o.seconds * NSEC_PER_SEC : UINT64_MAX;
	struct pollfd pfd[2] = {
		{ .fd = mb_monitor_get_fd(s->mon), .events = POLLIN },
		{ .fd = sfd, .events = POLLIN },
	};
	struct signalfd_siginfo si;
	uint64_t due;
	int n, err;

	while (t < end) {
		due = next_fill < next_sample ? next_fill : next_sample;
		n = poll(pfd, 2, due > t ?
			 (int)((due - t + NSEC_PER_MSEC - 1) / NSEC_PER_MSEC) :
			 0);
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n > 0 && pfd[1].revents) {
			if (read(sfd, &si, sizeof(si)) == sizeof(si))
				return 0;
		}
		if (n > 0 && pfd[0].revents) {
			err = mb_monitor_dispatch(s->mon);
			if (err < 0)
				return err;
			drain_monitor(s);
			drain_broker(s);
		}
		t = now_ns();
		if (t >= next_fill) {
			fill(s, t - last_fill);
			last_fill = t;
			next_fill = t + FILL_MS * NSEC_PER_MSEC;
		}
		if (t >= next_sample) {
			print_sample(s, t);
			next_sample = t + s->o.sample_ms * NSEC_PER_MSEC;
		}
		fflush(stdout);
	}
	return 0;
}

static void print_usage(FILE *f)
{
	fprintf(f,
		"usage: mb-service [--fill-rate MiBps] [--sample-ms N] [--max-mib N]\n"
		"                  [--max-percent P] [--shrink-step P] [--low-repeat-ms N]\n"
		"                  [--state-file PATH] [--seconds N]\n"
		"  --fill-rate MiBps   how fast the caches are filled (default 32)\n"
		"  --sample-ms N       print the caches' sizes every N ms (default 250)\n"
		"  --max-mib N         bound the thumbnails cache (default: none)\n"
		"  --max-percent P     ... to P%% of total memory (default: none)\n"
		"  --shrink-step P     give back P%% of the caches per LOW step\n"
		"                      (default 25)\n"
		"  --low-repeat-ms N   another step every N ms while LOW lasts\n"
		"                      (default 250)\n"
		"  --state-file PATH   keep the latest sample in PATH\n"
		"  --seconds N         stop after N seconds (default: at SIGTERM)\n");
}

static int parse_u32(const char *arg, uint32_t min, uint32_t *out)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(arg, &end, 10);
	if (errno || end == arg || *end || arg[0] == '-' || v < min ||
	    v > UINT32_MAX)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

static int parse_args(struct opts *o, int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "fill-rate", required_argument, NULL, 'f' },
		{ "sample-ms", required_argument, NULL, 'S' },
		{ "max-mib", required_argument, NULL, 'm' },
		{ "max-percent", required_argument, NULL, 'p' },
		{ "shrink-step", required_argument, NULL, 'k' },
		{ "low-repeat-ms", required_argument, NULL, 'r' },
		{ "state-file", required_argument, NULL, 'F' },
		{ "seconds", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint32_t v;
	int c, err = 0;

	while ((c = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			err = parse_u32(optarg, 1, &v);
			o->fill_rate = (uint64_t)v * MIB;
			break;
		case 'S':
			err = parse_u32(optarg, 10, &o->sample_ms);
			break;
		case 'm':
			err = parse_u32(optarg, 1, &v);
			o->max_bytes = (uint64_t)v * MIB;
			break;
		case 'p':
			err = parse_u32(optarg, 1, &o->max_percent);
			if (!err && o->max_percent > 100)
				err = -EINVAL;
			break;
		case 'k':
			err = parse_u32(optarg, 1, &o->shrink_step);
			if (!err && o->shrink_step > 100)
				err = -EINVAL;
			break;
		case 'r':
			err = parse_u32(optarg, 10, &o->low_repeat_ms);
			break;
		case 'F':
			o->state_file = optarg;
			break;
		case 's':
			err = parse_u32(optarg, 1, &o->seconds);
			break;
		case 'h':
			print_usage(stdout);
			exit(0);
		default:
			err = -EINVAL;
			break;
		}
		if (err) {
			if (c != '?')
				fprintf(stderr, "mb-service: bad value '%s'\n",
					optarg);
			break;
		}
	}
	if (!err && optind < argc) {
		fprintf(stderr, "mb-service: unexpected argument '%s'\n",
			argv[optind]);
		err = -EINVAL;
	}
	if (err)
		print_usage(stderr);
	return err;
}

int main(int argc, char **argv)
{
	static struct svc s = {
		.o = {
			.fill_rate = 32 * MIB,
			.sample_ms = 250,
			.shrink_step = 25,
			.low_repeat_ms = 250,
		},
	};
	sigset_t sigs;
	int sfd, err;

	if (parse_args(&s.o, argc, argv))
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* pages that are really written, not shared zero pages */
	memset(s.value, 'v', sizeof(s.value));

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	if (sfd < 0) {
		perror("mb-service: signalfd");
		return 1;
	}
	err = setup_service(&s);
	if (!err) {
		print_time(now_ns());
		printf("start source=%s pid=%d fill_rate=%" PRIu64
		       " shrink_step=%u low_repeat_ms=%u thumbnails_priority=%d sessions_priority=%d\n",
		       mb_source_name((uint32_t)mb_monitor_source(s.mon)),
		       (int)getpid(), s.o.fill_rate, s.o.shrink_step,
		       s.o.low_repeat_ms, THUMB_PRIORITY, SESS_PRIORITY);
		err = run(&s, sfd);
		/* what arrived last, and the caches as they are left */
		drain_monitor(&s);
		drain_broker(&s);
		print_sample(&s, now_ns());
		print_time(now_ns());
		printf("stop status=%d put_errors=%" PRIu64 "\n", err ? 1 : 0,
		       s.put_errors);
		if (err)
			fprintf(stderr, "mb-service: %s\n", strerror(-err));
	}
	teardown(&s);
	close(sfd);
	return err ? 1 : 0;
}
