// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * notify_latency: how early each way of detecting low memory tells an
 * application, while a hog allocates at full speed.  Meant to run as root
 * in the test VM (statically linked); see bench/README.md.
 *
 * Detectors, each on its own thread, all against the same low threshold
 * (the kernel module's, or --low-mb without it):
 *   reference   /proc/meminfo read every 1 ms; the first reading below
 *               the threshold is "the crossing" every latency is measured
 *               from
 *   kmod        membroker.ko multicast: first NOTIFY with state LOW
 *   poll 100ms  /proc/meminfo read every 100 ms
 *   poll 1s     /proc/meminfo read every second
 *   psi         a PSI trigger "some 150000 1000000" on /proc/pressure/memory
 *
 * Latency is detection time minus the crossing (negative when a detector
 * saw it between two reference samples).  Warning is the time a detector
 * left the application before the hog stopped (at available = low / 4) or
 * was OOM-killed (--oom): negative means it spoke only afterwards.
 * Before the runs, the detectors sit through an idle period so that their
 * wakeups and CPU time when nothing happens can be compared.
 *
 * Usage: notify_latency [--runs N] [--idle SECONDS] [--oom] [--low-mb MB]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <membroker.h>

#define MAX_RUNS	16
#define NSEC_PER_MSEC	1000000ULL
#define NSEC_PER_SEC	1000000000ULL
#define HOG_CHUNK	(1UL << 20)
#define PSI_TRIGGER	"some 150000 1000000"
/* longer than the slowest poll interval, so late detectors can be seen */
#define GRACE_NS	(1200 * NSEC_PER_MSEC)
#define HOG_TIMEOUT_MS	120000
#define RECOVER_NS	(30 * NSEC_PER_SEC)

enum det_id {
	DET_REF,
	DET_KMOD,
	DET_POLL100,
	DET_POLL1000,
	DET_PSI,
	DET_COUNT,
};

struct detector {
	const char *name;
	pthread_t thread;
	bool running;
	char unavailable[80];		/* why it did not start, if it did not */
	unsigned int interval_ms;	/* pollers */
	_Atomic uint64_t wakeups;
	_Atomic uint64_t first_low_ns[MAX_RUNS];
};

static struct detector dets[DET_COUNT] = {
	[DET_REF] = { .name = "reference: meminfo every 1 ms",
		      .interval_ms = 1 },
	[DET_KMOD] = { .name = "membroker kmod multicast" },
	[DET_POLL100] = { .name = "meminfo poll every 100 ms",
			  .interval_ms = 100 },
	[DET_POLL1000] = { .name = "meminfo poll every 1 s",
			   .interval_ms = 1000 },
	[DET_PSI] = { .name = "psi trigger some 150ms/1s" },
};

static _Atomic int cur_run = -1;
static _Atomic bool stopping;
static int stop_fd = -1;
static uint64_t low_bytes, high_bytes;
static _Atomic uint64_t last_avail;
static _Atomic uint64_t min_avail[MAX_RUNS];
static _Atomic uint32_t kmod_state;
static _Atomic uint64_t kmod_eval_ns[MAX_RUNS];

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

/*
 * MemAvailable in bytes from an open /proc/meminfo, or 0 on error.  No
 * stdio and no allocation: the hog calls it after fork() from a threaded
 * process.
 */
static uint64_t read_avail(int fd)
{
	static const char key[] = "MemAvailable:";
	char buf[4096];
	uint64_t kb = 0;
	ssize_t n;
	char *p;

	n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strstr(buf, key);
	if (!p)
		return 0;
	for (p += sizeof(key) - 1; *p == ' '; p++)
		;
	for (; *p >= '0' && *p <= '9'; p++)
		kb = kb * 10 + (uint64_t)(*p - '0');
	return kb * 1024;
}

static uint64_t read_meminfo_total(void)
{
	unsigned long long kb;
	char line[256];
	FILE *f;

	f = fopen("/proc/meminfo", "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemTotal: %llu kB", &kb) == 1) {
			fclose(f);
			return kb * 1024;
		}
	fclose(f);
	return 0;
}

/* Record @d's first LOW of the current run, if it is the first. */
static void saw_low(struct detector *d, uint64_t t)
{
	int run = atomic_load(&cur_run);
	uint64_t zero = 0;

	if (run >= 0)
		atomic_compare_exchange_strong(&d->first_low_ns[run], &zero, t);
}

/* ---- pollers, including the 1 ms reference ---- */

static void *poller_main(void *arg)
{
	struct detector *d = arg;
	uint64_t avail, step = d->interval_ms * NSEC_PER_MSEC;
	struct timespec next;
	int fd, run;

	fd = open("/proc/meminfo", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	clock_gettime(CLOCK_MONOTONIC, &next);
	while (!atomic_load(&stopping)) {
		next.tv_nsec += (long)step;
		while (next.tv_nsec >= (long)NSEC_PER_SEC) {
			next.tv_nsec -= (long)NSEC_PER_SEC;
			next.tv_sec++;
		}
		/* absolute deadlines: reading the file does not add drift */
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
		atomic_fetch_add(&d->wakeups, 1);
		avail = read_avail(fd);
		if (!avail)
			continue;
		if (d == &dets[DET_REF]) {
			atomic_store(&last_avail, avail);
			run = atomic_load(&cur_run);
			if (run >= 0 && avail < atomic_load(&min_avail[run]))
				atomic_store(&min_avail[run], avail);
		}
		if (avail < low_bytes)
			saw_low(d, now_ns());
	}
	close(fd);
	return NULL;
}

/* ---- the kernel module's multicast ---- */

static void kmod_seen(const struct mb_notification *n, uint64_t t)
{
	int run = atomic_load(&cur_run);
	uint64_t zero = 0;

	atomic_store(&kmod_state, n->state);
	if (n->state != MB_STATE_LOW || run < 0)
		return;
	if (atomic_compare_exchange_strong(&dets[DET_KMOD].first_low_ns[run],
					   &zero, t))
		atomic_store(&kmod_eval_ns[run], n->time_ns);
}

static void *kmod_main(void *arg)
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
		atomic_fetch_add(&dets[DET_KMOD].wakeups, 1);
		for (;;) {
			ret = mb_kmod_recv(k, &n);
			if (ret == -ENOBUFS) {
				/* lost some: the current state is what counts */
				if (mb_kmod_get_state(k, &n) < 0)
					break;
				kmod_seen(&n, now_ns());
				continue;
			}
			if (ret <= 0)
				break;
			kmod_seen(&n, now_ns());
		}
		if (ret < 0 && ret != -EAGAIN && ret != -EINTR) {
			fprintf(stderr, "notify_latency: kmod: %s\n",
				strerror(-ret));
			break;
		}
	}
	return NULL;
}

/* ---- PSI ---- */

static void *psi_main(void *arg)
{
	struct pollfd pfd[2] = {
		{ .fd = (int)(intptr_t)arg, .events = POLLPRI },
		{ .fd = stop_fd, .events = POLLIN },
	};

	while (!atomic_load(&stopping)) {
		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			break;
		if (pfd[1].revents)
			break;
		atomic_fetch_add(&dets[DET_PSI].wakeups, 1);
		if (pfd[0].revents & POLLERR)
			break;
		if (pfd[0].revents & POLLPRI)
			saw_low(&dets[DET_PSI], now_ns());
	}
	close(pfd[0].fd);
	return NULL;
}

/* ---- the hog, a child process so that the OOM killer can take it ---- */

struct hog_report {
	uint64_t end_ns;
	uint64_t allocated;
	uint64_t avail;
};

static void set_oom_score_adj(const char *val)
{
	int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	/* not root: the OOM killer still picks the biggest, the hog */
	if (write(fd, val, strlen(val)) < 0)
		errno = 0;
	close(fd);
}

static void __attribute__((noreturn)) hog_main(int out, uint64_t stop_at,
					       bool until_oom)
{
	struct hog_report rep = { 0 };
	uint64_t avail = 0;
	int fd;
	char *p;

	set_oom_score_adj("1000");
	fd = open("/proc/meminfo", O_RDONLY | O_CLOEXEC);
	for (;;) {
		p = mmap(NULL, HOG_CHUNK, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			break;
		memset(p, 0x5a, HOG_CHUNK);
		rep.allocated += HOG_CHUNK;
		if (until_oom || fd < 0)
			continue;
		avail = read_avail(fd);
		if (avail && avail < stop_at)
			break;
	}
	rep.end_ns = now_ns();
	rep.avail = avail;
	if (write(out, &rep, sizeof(rep)) < 0)
		_exit(1);
	/* hold the memory until the parent has seen the late detectors */
	for (;;)
		pause();
}

/* ---- runs ---- */

struct run_result {
	bool done;
	bool oom_killed;
	uint64_t start_ns;
	uint64_t end_ns;
	uint64_t allocated;
	uint64_t min_avail;
	uint64_t det_ns[DET_COUNT];
	uint64_t kmod_eval_ns;
};

static int wait_recovered(void)
{
	uint64_t deadline = now_ns() + RECOVER_NS;
	/*
	 * half way up to the high threshold: headroom, without insisting on
	 * a HIGH that a small guest may never reach
	 */
	uint64_t want = high_bytes > low_bytes ?
			low_bytes + (high_bytes - low_bytes) / 2 : 2 * low_bytes;
	struct timespec ts = { 0, 50 * (long)NSEC_PER_MSEC };

	/* plain polling: this is set-up between measurements, not a test */
	while (now_ns() < deadline) {
		if (atomic_load(&last_avail) > want &&
		    (!dets[DET_KMOD].running ||
		     atomic_load(&kmod_state) != MB_STATE_LOW))
			return 0;
		nanosleep(&ts, NULL);
	}
	return -ETIMEDOUT;
}

static int one_run(int run, bool until_oom, struct run_result *res)
{
	struct hog_report rep;
	struct timespec ts;
	struct pollfd pfd;
	int pipefd[2], status, d;
	uint64_t grace_end;
	ssize_t n;
	pid_t pid;

	memset(res, 0, sizeof(*res));
	if (wait_recovered() < 0) {
		fprintf(stderr,
			"notify_latency: available memory stays below %llu MiB\n",
			(unsigned long long)((low_bytes + high_bytes) >> 21));
		return -ETIMEDOUT;
	}
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -errno;
	atomic_store(&min_avail[run], UINT64_MAX);
	res->start_ns = now_ns();
	atomic_store(&cur_run, run);
	pid = fork();
	if (pid < 0) {
		atomic_store(&cur_run, -1);
		close(pipefd[0]);
		close(pipefd[1]);
		return -errno;
	}
	if (!pid) {
		close(pipefd[0]);
		hog_main(pipefd[1], low_bytes / 4, until_oom);
	}
	close(pipefd[1]);

	pfd = (struct pollfd){ .fd = pipefd[0], .events = POLLIN };
	n = -1;
	if (poll(&pfd, 1, HOG_TIMEOUT_MS) > 0)
		n = read(pipefd[0], &rep, sizeof(rep));
	if (n < 0) {
		/* neither stopped nor killed: it is too slow to measure */
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		close(pipefd[0]);
		atomic_store(&cur_run, -1);
		return -ETIMEDOUT;
	}
	if (n == (ssize_t)sizeof(rep)) {
		res->end_ns = rep.end_ns;
		res->allocated = rep.allocated;
	} else {
		/* EOF: the hog died before stopping, i.e. the OOM killer */
		res->end_ns = now_ns();
	}

	/* let the slower detectors report late, while memory is still low */
	grace_end = now_ns() + GRACE_NS;
	ts.tv_sec = (time_t)(grace_end / NSEC_PER_SEC);
	ts.tv_nsec = (long)(grace_end % NSEC_PER_SEC);
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
	       EINTR)
		;
	kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	close(pipefd[0]);
	atomic_store(&cur_run, -1);

	res->oom_killed = n != (ssize_t)sizeof(rep);
	res->min_avail = atomic_load(&min_avail[run]);
	for (d = 0; d < DET_COUNT; d++)
		res->det_ns[d] = atomic_load(&dets[d].first_low_ns[run]);
	res->kmod_eval_ns = atomic_load(&kmod_eval_ns[run]);
	res->done = true;
	return 0;
}

/* ---- output ---- */

static double ms(int64_t ns)
{
	return (double)ns / (double)NSEC_PER_MSEC;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static void print_run(int run, const struct run_result *r)
{
	uint64_t ref = r->det_ns[DET_REF];
	int d;

	/* a killed hog cannot say how much it had; its death is seen as EOF */
	if (r->oom_killed)
		printf("\nrun %d: hog OOM-killed (exit seen) after %.0f ms, lowest available %.1f MiB\n",
		       run + 1, ms((int64_t)(r->end_ns - r->start_ns)),
		       (double)r->min_avail / (1 << 20));
	else
		printf("\nrun %d: hog stopped at low/4 after %.0f ms, %llu MiB allocated, lowest available %.1f MiB\n",
		       run + 1, ms((int64_t)(r->end_ns - r->start_ns)),
		       (unsigned long long)(r->allocated >> 20),
		       (double)r->min_avail / (1 << 20));
	printf("  %-32s %12s %12s\n", "detector", "latency ms", "warning ms");
	for (d = 0; d < DET_COUNT; d++) {
		printf("  %-32s ", dets[d].name);
		if (!dets[d].running) {
			printf("%12s %12s\n", "unavailable", "-");
		} else if (!r->det_ns[d]) {
			printf("%12s %12s\n", "no event", "-");
		} else if (!ref) {
			printf("%12s %12.1f\n", "(no ref)",
			       ms((int64_t)(r->end_ns - r->det_ns[d])));
		} else {
			printf("%12.1f %12.1f\n",
			       ms((int64_t)(r->det_ns[d] - ref)),
			       ms((int64_t)(r->end_ns - r->det_ns[d])));
		}
	}
	if (r->kmod_eval_ns && r->det_ns[DET_KMOD])
		printf("  (kmod: kernel evaluation to delivery %.3f ms)\n",
		       ms((int64_t)(r->det_ns[DET_KMOD] - r->kmod_eval_ns)));
}

static void print_summary(const struct run_result *res, int runs)
{
	int64_t lat[MAX_RUNS], warn[MAX_RUNS];
	int d, r, n;

	printf("\nsummary over %d run(s) (median of the runs with an event)\n",
	       runs);
	printf("  %-32s %8s %12s %12s\n", "detector", "events", "latency ms",
	       "warning ms");
	for (d = 0; d < DET_COUNT; d++) {
		n = 0;
		for (r = 0; r < runs; r++) {
			if (!res[r].done || !res[r].det_ns[d] ||
			    !res[r].det_ns[DET_REF])
				continue;
			lat[n] = (int64_t)(res[r].det_ns[d] -
					   res[r].det_ns[DET_REF]);
			warn[n] = (int64_t)(res[r].end_ns - res[r].det_ns[d]);
			n++;
		}
		printf("  %-32s %5d/%-2d ", dets[d].name, n, runs);
		if (!dets[d].running) {
			printf("%12s %12s\n", "unavailable", "-");
			continue;
		}
		if (!n) {
			printf("%12s %12s\n", "no event", "-");
			continue;
		}
		qsort(lat, (size_t)n, sizeof(lat[0]), cmp_i64);
		qsort(warn, (size_t)n, sizeof(warn[0]), cmp_i64);
		printf("%12.1f %12.1f\n", ms(lat[n / 2]), ms(warn[n / 2]));
	}
}

/* ---- set-up ---- */

static int start_detectors(struct mb_kmod **kmod)
{
	struct mb_notification st;
	int d, err, fd;

	err = mb_kmod_open(kmod);
	if (!err)
		err = mb_kmod_get_state(*kmod, &st);
	if (!err)
		err = mb_kmod_subscribe(*kmod);
	if (err < 0) {
		snprintf(dets[DET_KMOD].unavailable,
			 sizeof(dets[DET_KMOD].unavailable), "%s",
			 strerror(-err));
		mb_kmod_close(*kmod);
		*kmod = NULL;
	} else {
		low_bytes = st.low;
		high_bytes = st.high;
		atomic_store(&kmod_state, st.state);
		if (!pthread_create(&dets[DET_KMOD].thread, NULL, kmod_main,
				    *kmod))
			dets[DET_KMOD].running = true;
	}

	fd = open("/proc/pressure/memory", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 || write(fd, PSI_TRIGGER, strlen(PSI_TRIGGER) + 1) < 0) {
		snprintf(dets[DET_PSI].unavailable,
			 sizeof(dets[DET_PSI].unavailable), "%s%s",
			 strerror(errno),
			 errno == ENOENT || errno == EOPNOTSUPP ?
			 " (boot with psi=1)" : "");
		if (fd >= 0)
			close(fd);
	} else if (!pthread_create(&dets[DET_PSI].thread, NULL, psi_main,
				   (void *)(intptr_t)fd)) {
		dets[DET_PSI].running = true;
	} else {
		close(fd);
	}

	for (d = 0; d < DET_COUNT; d++) {
		if (!dets[d].interval_ms)
			continue;
		if (pthread_create(&dets[d].thread, NULL, poller_main,
				   &dets[d]))
			return -EAGAIN;
		dets[d].running = true;
	}
	return 0;
}

static void stop_detectors(void)
{
	uint64_t one = 1;
	int d;

	atomic_store(&stopping, true);
	if (write(stop_fd, &one, sizeof(one)) < 0)
		perror("notify_latency: eventfd");
	for (d = 0; d < DET_COUNT; d++)
		if (dets[d].running)
			pthread_join(dets[d].thread, NULL);
}

/* Wakeups and CPU time of each detector while nothing allocates. */
static void idle_phase(unsigned int seconds)
{
	uint64_t w0[DET_COUNT], cpu0[DET_COUNT], cpu1, t0, t1;
	struct timespec ts;
	clockid_t cid[DET_COUNT];
	double secs;
	int d;

	for (d = 0; d < DET_COUNT; d++) {
		cpu0[d] = 0;
		if (!dets[d].running ||
		    pthread_getcpuclockid(dets[d].thread, &cid[d]))
			cid[d] = (clockid_t)-1;
		w0[d] = atomic_load(&dets[d].wakeups);
		if (cid[d] != (clockid_t)-1 && !clock_gettime(cid[d], &ts))
			cpu0[d] = (uint64_t)ts.tv_sec * NSEC_PER_SEC +
				  (uint64_t)ts.tv_nsec;
	}
	t0 = now_ns();
	ts.tv_sec = seconds;
	ts.tv_nsec = 0;
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	t1 = now_ns();
	secs = (double)(t1 - t0) / (double)NSEC_PER_SEC;

	printf("\nidle for %.1f s: wakeups and CPU time of each detector\n",
	       secs);
	printf("  %-32s %12s %12s\n", "detector", "wakeups/s", "CPU us/s");
	for (d = 0; d < DET_COUNT; d++) {
		printf("  %-32s ", dets[d].name);
		if (!dets[d].running) {
			printf("%12s %12s  (%s)\n", "unavailable", "-",
			       dets[d].unavailable);
			continue;
		}
		cpu1 = cpu0[d];
		if (cid[d] != (clockid_t)-1 && !clock_gettime(cid[d], &ts))
			cpu1 = (uint64_t)ts.tv_sec * NSEC_PER_SEC +
			       (uint64_t)ts.tv_nsec;
		printf("%12.2f %12.1f\n",
		       (double)(atomic_load(&dets[d].wakeups) - w0[d]) / secs,
		       (double)(cpu1 - cpu0[d]) / 1e3 / secs);
	}
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: notify_latency [--runs N] [--idle SECONDS] [--oom] [--low-mb MB]\n"
		"  --runs N        hog runs (default 3, at most %d)\n"
		"  --idle SECONDS  idle period for the wakeup counts (default 5)\n"
		"  --oom           let the hog run into the OOM killer instead\n"
		"                  of stopping at available = low / 4\n"
		"  --low-mb MB     low threshold when membroker.ko is absent\n"
		"                  (default MemTotal / 16)\n", MAX_RUNS);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "runs", required_argument, NULL, 'r' },
		{ "idle", required_argument, NULL, 'i' },
		{ "oom", no_argument, NULL, 'o' },
		{ "low-mb", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct run_result res[MAX_RUNS];
	unsigned int idle = 5;
	struct mb_kmod *kmod = NULL;
	bool until_oom = false;
	uint64_t total, low_mb = 0;
	int runs = 3, c, r, err, ret = 0;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			runs = atoi(optarg);
			break;
		case 'i':
			idle = (unsigned int)atoi(optarg);
			break;
		case 'o':
			until_oom = true;
			break;
		case 'l':
			low_mb = strtoull(optarg, NULL, 0);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || runs < 1 || runs > MAX_RUNS) {
		usage(stderr);
		return 2;
	}

	/* the hog, never the bench, is what the OOM killer should take */
	set_oom_score_adj("-1000");
	setvbuf(stdout, NULL, _IOLBF, 0);
	stop_fd = eventfd(0, EFD_CLOEXEC);
	total = read_meminfo_total();
	if (stop_fd < 0 || !total) {
		fprintf(stderr, "notify_latency: cannot set up\n");
		return 1;
	}
	/* without the module, pollers and PSI are judged on this threshold */
	low_bytes = low_mb ? low_mb << 20 : total / 16;
	high_bytes = 2 * low_bytes;

	err = start_detectors(&kmod);
	if (err < 0) {
		fprintf(stderr, "notify_latency: %s\n", strerror(-err));
		stop_detectors();
		return 1;
	}
	printf("notify_latency: MemTotal %llu MiB, low %.1f MiB, high %.1f MiB (%s), hog %s\n",
	       (unsigned long long)(total >> 20),
	       (double)low_bytes / (1 << 20), (double)high_bytes / (1 << 20),
	       kmod ? "from membroker.ko" : "membroker.ko absent",
	       until_oom ? "runs to the OOM killer" : "stops at low/4");
	if (!kmod)
		printf("  kmod: %s\n", dets[DET_KMOD].unavailable);
	if (!dets[DET_PSI].running)
		printf("  psi: %s\n", dets[DET_PSI].unavailable);

	idle_phase(idle);
	for (r = 0; r < runs; r++) {
		err = one_run(r, until_oom, &res[r]);
		if (err < 0) {
			fprintf(stderr, "notify_latency: run %d: %s\n", r + 1,
				strerror(-err));
			ret = 1;
			runs = r;
			break;
		}
		print_run(r, &res[r]);
	}
	if (runs)
		print_summary(res, runs);
	stop_detectors();
	mb_kmod_close(kmod);
	close(stop_fd);
	return ret;
}
