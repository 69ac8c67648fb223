// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * tails: the distribution of detection latency, not a median of three.
 *
 * A hog (this process's main thread) drives MemAvailable across the
 * module's low threshold again and again: a ballast brings available
 * memory to low + gap, then each crossing allocates (touching every page)
 * at a fixed rate until the hog's own reading of /proc/meminfo is below
 * low.  That reading's time is the crossing.  The hog then holds its
 * memory until the slow detectors have spoken (or --hold-ms passed),
 * frees what the crossing took and waits until the module has left LOW,
 * so that every crossing is a fresh one.  The pollers' phase is drawn
 * afresh at random for every crossing, as an application's poller has no
 * relation to when memory runs short.  Side by side, each on its own
 * thread, against the same low threshold:
 *
 *   kmod      membroker.ko's multicast (libmembroker's mb_kmod), the
 *             first NOTIFY with state LOW
 *   psi500    a PSI trigger "some 50ms/500ms" (a window only root may set)
 *   psi2000   a PSI trigger "some 200ms/2s" (systemd's default, a window
 *             unprivileged users may set)
 *   poll100   /proc/meminfo read every 100 ms
 *   poll5000  /proc/meminfo read every 5 s (Firefox's and Chromium's
 *             interval)
 *
 * Latency = detection - crossing.  Negative values are real: a detector
 * can see the crossing before the hog's next reading does (the hog reads
 * after every 256 KiB it touches).  A detector that did not speak before
 * the hold ended missed that crossing.  PSI does not look at the
 * threshold at all: it fires on stalls, whenever they happen during the
 * crossing's allocation or hold.
 *
 * One "MB-JSON" line per crossing (bench/perf_vm.sh makes the tables).
 *
 * Usage: tails [--rates R,R,R] [--crossings N] [--hold-ms MS] [--gap-mib M]
 *   rates in MiB/s, 0 = as fast as one thread can (default 0,64,16)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <sys/mman.h>

#include <membroker.h>

#include "vmbench.h"

#define STEP		(256UL << 10)
#define MAX_BALLAST	8192
#define RESET_MS	15000

enum { D_KMOD, D_PSI500, D_PSI2000, D_POLL100, D_POLL5000, D_N };

struct det {
	const char *name;
	const char *trigger;		/* PSI */
	unsigned int interval_ms;	/* pollers */
	pthread_t thread;
	bool running;
	char why[96];
	int fd;
	_Atomic uint64_t fired_ns;	/* first detection while armed */
	_Atomic uint64_t rephase_ns;	/* pollers: next sample at this time */
};

static struct det dets[D_N] = {
	[D_KMOD] = { .name = "kmod" },
	[D_PSI500] = { .name = "psi500", .trigger = "some 50000 500000" },
	[D_PSI2000] = { .name = "psi2000", .trigger = "some 200000 2000000" },
	[D_POLL100] = { .name = "poll100", .interval_ms = 100 },
	[D_POLL5000] = { .name = "poll5000", .interval_ms = 5000 },
};

static _Atomic bool armed, stopping;
static _Atomic uint64_t low_bytes;
static int stop_fd;

static void fired(struct det *d)
{
	uint64_t zero = 0;

	if (atomic_load(&armed))
		atomic_compare_exchange_strong(&d->fired_ns, &zero,
					       vb_now_ns());
}

static void *poller(void *arg)
{
	struct det *d = arg;
	uint64_t next = vb_now_ns();
	int fd = open("/proc/meminfo", O_RDONLY | O_CLOEXEC);
	uint64_t a, r, t;

	while (fd >= 0 && !atomic_load(&stopping)) {
		next += d->interval_ms * NSEC_PER_MSEC;
		/*
		 * In slices, so that a new phase can be taken at once: a
		 * crossing every few seconds would otherwise stay in step with
		 * a 5 s poller, which would always just have looked.
		 */
		while ((t = vb_now_ns()) < next && !atomic_load(&stopping)) {
			r = atomic_exchange(&d->rephase_ns, 0);
			if (r)
				next = r;
			vb_sleep_until(t + 10 * NSEC_PER_MSEC < next ?
				       t + 10 * NSEC_PER_MSEC : next);
		}
		a = vb_avail(fd);
		if (a && a < atomic_load(&low_bytes))
			fired(d);
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

static void *kmod_thread(void *arg)
{
	struct mb_kmod *k = arg;
	struct mb_notification n;
	struct pollfd pfd[2] = {
		{ .fd = mb_kmod_get_fd(k), .events = POLLIN },
		{ .fd = stop_fd, .events = POLLIN },
	};
	int ret;

	while (!atomic_load(&stopping)) {
		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			break;
		if (pfd[1].revents)
			break;
		while ((ret = mb_kmod_recv(k, &n)) != 0) {
			if (ret == -ENOBUFS && !mb_kmod_get_state(k, &n))
				ret = 1;
			if (ret < 0)
				break;
			if (n.state == MB_STATE_LOW)
				fired(&dets[D_KMOD]);
		}
	}
	return NULL;
}

static void *psi_thread(void *arg)
{
	struct det *d = arg;
	struct pollfd pfd[2] = {
		{ .fd = d->fd, .events = POLLPRI },
		{ .fd = stop_fd, .events = POLLIN },
	};

	while (!atomic_load(&stopping)) {
		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			break;
		if (pfd[1].revents || (pfd[0].revents & POLLERR))
			break;
		if (pfd[0].revents & POLLPRI)
			fired(d);
	}
	return NULL;
}

static int start(struct mb_kmod **k)
{
	struct mb_notification st;
	int i, err;

	err = mb_kmod_open(k);
	if (!err)
		err = mb_kmod_get_state(*k, &st);
	if (!err)
		err = mb_kmod_subscribe(*k);
	if (err) {
		fprintf(stderr, "tails: the module is needed: %s\n",
			strerror(-err));
		return err;
	}
	atomic_store(&low_bytes, st.low);
	if (pthread_create(&dets[D_KMOD].thread, NULL, kmod_thread, *k))
		return -EAGAIN;
	dets[D_KMOD].running = true;
	for (i = 0; i < D_N; i++) {
		struct det *d = &dets[i];

		if (d->trigger) {
			d->fd = open("/proc/pressure/memory",
				     O_RDWR | O_NONBLOCK | O_CLOEXEC);
			if (d->fd < 0 ||
			    write(d->fd, d->trigger, strlen(d->trigger) + 1) < 0) {
				snprintf(d->why, sizeof(d->why), "%s",
					 strerror(errno));
				continue;
			}
			if (pthread_create(&d->thread, NULL, psi_thread, d))
				return -EAGAIN;
			d->running = true;
		} else if (d->interval_ms) {
			if (pthread_create(&d->thread, NULL, poller, d))
				return -EAGAIN;
			d->running = true;
		}
	}
	return 0;
}

static void stop(void)
{
	uint64_t one = 1;
	int i;

	atomic_store(&stopping, true);
	if (write(stop_fd, &one, sizeof(one)) < 0)
		perror("tails: eventfd");
	/* the 5 s poller may sleep up to 5 s more: that is acceptable */
	for (i = 0; i < D_N; i++)
		if (dets[i].running)
			pthread_join(dets[i].thread, NULL);
}

static void *ballast[MAX_BALLAST];
static int nballast;

/* Bring MemAvailable near @want with 1 MiB chunks of touched memory. */
static void ballast_to(int mfd, uint64_t want)
{
	uint64_t a;
	int tries;

	for (tries = 0; tries < 4 * MAX_BALLAST; tries++) {
		a = vb_avail(mfd);
		if (a > want + 2 * MIB && nballast < MAX_BALLAST) {
			void *p = mmap(NULL, MIB, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

			if (p == MAP_FAILED)
				return;
			memset(p, 0x5a, MIB);
			ballast[nballast++] = p;
		} else if (a + 2 * MIB < want && nballast) {
			munmap(ballast[--nballast], MIB);
		} else {
			return;
		}
	}
}

static void ballast_free(void)
{
	while (nballast)
		munmap(ballast[--nballast], MIB);
}

/* Wait until the module is out of LOW and available is back above @a. */
static bool wait_reset(int mfd, uint64_t a)
{
	uint64_t end = vb_now_ns() + RESET_MS * NSEC_PER_MSEC;

	while (vb_now_ns() < end) {
		if (!vb_kmod_low() && vb_avail(mfd) > a)
			return true;
		vb_sleep_ms(20);
	}
	return false;
}

static bool slow_ones_spoke(void)
{
	return atomic_load(&dets[D_KMOD].fired_ns) &&
	       atomic_load(&dets[D_POLL100].fired_ns) &&
	       atomic_load(&dets[D_POLL5000].fired_ns);
}

/* One crossing at @rate MiB/s (0: flat out); prints its JSON line. */
static int crossing(int mfd, unsigned int rate, int idx, uint64_t gap,
		    uint64_t hold_ms, size_t region_sz)
{
	uint64_t low = vb_read_u64("/sys/kernel/membroker/low_bytes",
				   atomic_load(&low_bytes));
	uint64_t t0, tc = 0, a = 0, done = 0, hold_end, t;
	char buf[1024];
	size_t off = 0;
	bool reset;
	char *p;
	int i, n;

	atomic_store(&low_bytes, low);
	ballast_to(mfd, low + gap);
	p = mmap(NULL, region_sz, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	for (i = 0; i < D_N; i++) {
		atomic_store(&dets[i].fired_ns, 0);
		/* each poller's next look at a random point of its period */
		if (dets[i].interval_ms)
			/* random() has 31 bits, fewer than 5 s of ns */
			atomic_store(&dets[i].rephase_ns, vb_now_ns() + 1 +
				     ((uint64_t)random() << 31 |
				      (uint64_t)random()) %
				     (dets[i].interval_ms * NSEC_PER_MSEC));
	}
	atomic_store(&armed, true);
	t0 = vb_now_ns();
	while (off + STEP <= region_sz) {
		memset(p + off, 0x5a, STEP);
		off += STEP;
		a = vb_avail(mfd);
		if (a && a < low) {
			tc = vb_now_ns();
			break;
		}
		if (rate)
			vb_sleep_until(t0 + off * NSEC_PER_SEC / (rate * MIB));
	}
	done = off;
	hold_end = (tc ? tc : vb_now_ns()) + hold_ms * NSEC_PER_MSEC;
	while (vb_now_ns() < hold_end && !slow_ones_spoke())
		vb_sleep_ms(5);
	/* the PSI triggers get a moment more: they are never waited for */
	vb_sleep_ms(20);
	atomic_store(&armed, false);
	t = vb_now_ns();
	munmap(p, region_sz);
	reset = wait_reset(mfd, low + gap / 2);

	n = snprintf(buf, sizeof(buf),
		     "\"rate_mibs\": %u, \"crossing\": %d, \"crossed\": %s, "
		     "\"low_mib\": %.2f, \"alloc_mib\": %.2f, "
		     "\"alloc_ms\": %.3f, \"hold_ms\": %.3f, "
		     "\"reset\": %s, \"latency_ms\": {",
		     rate, idx, tc ? "true" : "false", (double)low / MIB,
		     (double)done / MIB, (double)((tc ? tc : t) - t0) / 1e6,
		     tc ? (double)(t - tc) / 1e6 : 0.0,
		     reset ? "true" : "false");
	for (i = 0; i < D_N; i++) {
		uint64_t f = atomic_load(&dets[i].fired_ns);

		if (!dets[i].running || !tc || !f)
			n += snprintf(buf + n, sizeof(buf) - (size_t)n,
				      "%s\"%s\": null", i ? ", " : "",
				      dets[i].name);
		else
			n += snprintf(buf + n, sizeof(buf) - (size_t)n,
				      "%s\"%s\": %.3f", i ? ", " : "",
				      dets[i].name,
				      ((double)f - (double)tc) / 1e6);
	}
	snprintf(buf + n, sizeof(buf) - (size_t)n, "}");
	vb_json("tails", "%s", buf);
	return tc ? 0 : -EAGAIN;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "rates", required_argument, NULL, 'r' },
		{ "crossings", required_argument, NULL, 'n' },
		{ "hold-ms", required_argument, NULL, 'H' },
		{ "gap-mib", required_argument, NULL, 'g' },
		{ 0 }
	};
	unsigned int rates[8] = { 0, 64, 16 }, nrates = 3;
	uint64_t hold_ms = 6000, gap_mib = 0, total, gap;
	int crossings = 50, c, r, i, mfd, fails = 0;
	struct mb_kmod *k = NULL;
	char *s, *tok;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			nrates = 0;
			for (s = optarg; (tok = strsep(&s, ",")) && nrates < 8;)
				rates[nrates++] = (unsigned int)atoi(tok);
			break;
		case 'n':
			crossings = atoi(optarg);
			break;
		case 'H':
			hold_ms = strtoull(optarg, NULL, 10);
			break;
		case 'g':
			gap_mib = strtoull(optarg, NULL, 10);
			break;
		default:
			fprintf(stderr, "usage: tails [--rates R,R,R] [--crossings N] [--hold-ms MS] [--gap-mib M]\n");
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	srandom((unsigned int)vb_now_ns());
	vb_write_str("/proc/self/oom_score_adj", "-1000");
	stop_fd = eventfd(0, EFD_CLOEXEC);
	mfd = open("/proc/meminfo", O_RDONLY | O_CLOEXEC);
	if (stop_fd < 0 || mfd < 0 || crossings < 1 || !nrates)
		return 1;
	if (start(&k)) {
		stop();
		return 1;
	}
	total = vb_meminfo_field(mfd, "MemTotal:");
	gap = gap_mib ? gap_mib * MIB : atomic_load(&low_bytes) / 4;
	if (gap < 16 * MIB && !gap_mib)
		gap = 16 * MIB;
	vb_json("tails-setup",
		"\"total_mib\": %.1f, \"low_mib\": %.2f, \"gap_mib\": %.1f, "
		"\"hold_ms\": %llu, \"cpus\": %ld, \"psi500\": \"%s\", "
		"\"psi2000\": \"%s\"",
		(double)total / MIB, (double)atomic_load(&low_bytes) / MIB,
		(double)gap / MIB, (unsigned long long)hold_ms,
		sysconf(_SC_NPROCESSORS_ONLN),
		dets[D_PSI500].running ? "ok" : dets[D_PSI500].why,
		dets[D_PSI2000].running ? "ok" : dets[D_PSI2000].why);
	for (r = 0; r < (int)nrates; r++) {
		for (i = 0; i < crossings; i++)
			if (crossing(mfd, rates[r], i, gap, hold_ms,
				     (size_t)(total / 2)) < 0)
				fails++;
		printf("tails: rate %u MiB/s: %d crossings\n", rates[r],
		       crossings);
	}
	ballast_free();
	stop();
	mb_kmod_close(k);
	/* a crossing that did not cross is in the JSON; too many is broken */
	return fails > (int)nrates * crossings / 10 ? 1 : 0;
}
