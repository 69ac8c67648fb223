// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * cost: what membroker costs the machine.
 *
 * Three phases of --seconds each: idle; near the threshold (a ballast
 * holds MemAvailable at low + low/4, where the module polls more often);
 * sustained page-cache reclaim (a child streams --stream, a device
 * larger than RAM, through the page cache).  In each, side by side:
 *   - the module's evaluations (/sys/kernel/membroker/evaluations/total)
 *     and the time spent in mb_eval_run() from ftrace's function_graph
 *     tracer (when tracefs is there): an upper bound, as tracing adds
 *     its own cost, and TCG inflates both;
 *   - the CPU time of libmembroker's monitor thread (a monitor on the
 *     module, mb_monitor_start_thread()), from /proc/self/task/TID/stat;
 *   - the CPU time of a thread reading /proc/meminfo every 100 ms, the
 *     alternative.
 * Then page-fault throughput: a hog touching --fault-mib MiB of fresh
 * anonymous memory, --fault-reps times, with the module loaded and not
 * (rmmod/insmod of --module, alternating), once with memory to spare and
 * once with the page cache full so that the faults cause reclaim (which
 * evaluates in the module).  One MB-JSON line per figure.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <membroker.h>

#include "vmbench.h"

#define TRACING	"/sys/kernel/tracing"

static _Atomic bool stop_poller;
static _Atomic int poller_tid;
static const char *module = "/lib/modules/membroker.ko";
static const char *stream_dev = "/dev/vda";

static void *poller(void *arg)
{
	int fd = open("/proc/meminfo", O_RDONLY | O_CLOEXEC);
	uint64_t next = vb_now_ns();

	(void)arg;
	atomic_store(&poller_tid, (int)syscall(SYS_gettid));
	while (fd >= 0 && !atomic_load(&stop_poller)) {
		next += 100 * NSEC_PER_MSEC;
		vb_sleep_until(next);
		(void)vb_avail(fd);
	}
	return NULL;
}

/* The tids of this process's threads, for finding the library's. */
static int tids(int *out, int max)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)) && n < max)
		if (e->d_name[0] != '.')
			out[n++] = atoi(e->d_name);
	closedir(d);
	return n;
}

static bool ftrace_on;

/*
 * ftrace's function_graph tracer on mb_eval_run() alone: one line per
 * call with its duration (the function profiler would sum them, but
 * Debian's kernels are built without it).
 */
static void ftrace_setup(void)
{
	mkdir(TRACING, 0755);
	if (access(TRACING "/trace", F_OK) &&
	    system("mount -t tracefs nodev " TRACING " 2>/dev/null"))
		return;
	ftrace_on = vb_write_str(TRACING "/buffer_size_kb", "8192") &&
		    vb_write_str(TRACING "/set_ftrace_filter", "mb_eval_run") &&
		    vb_write_str(TRACING "/current_tracer", "function_graph") &&
		    vb_write_str(TRACING "/tracing_on", "1");
}

static void ftrace_clear(void)
{
	int fd = open(TRACING "/trace", O_WRONLY | O_TRUNC | O_CLOEXEC);

	if (fd >= 0)
		close(fd);
}

/* Calls and total us of mb_eval_run in the trace since ftrace_clear() */
static void ftrace_read(uint64_t *hits, double *us)
{
	char line[512], unit[8], *p;
	double t;
	FILE *f;

	*hits = 0;
	*us = 0;
	if (!ftrace_on)
		return;
	f = fopen(TRACING "/trace", "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (line[0] == '#' || !strstr(line, "mb_eval_run"))
			continue;
		p = strchr(line, ')');
		if (!p)
			continue;
		for (p++; *p == ' ' || strchr("+!#*@$", *p); p++)
			if (!*p)
				break;
		if (sscanf(p, "%lf %7s", &t, unit) != 2)
			continue;
		(*hits)++;
		*us += !strcmp(unit, "ms") ? t * 1e3 : !strcmp(unit, "s") ?
		       t * 1e6 : t;
	}
	fclose(f);
}

static void *ballast_p;
static size_t ballast_sz;

static void ballast_to(int mfd, uint64_t want)
{
	uint64_t a = vb_avail(mfd);

	if (a <= want)
		return;
	ballast_sz = (size_t)(a - want);
	ballast_p = mmap(NULL, ballast_sz, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ballast_p == MAP_FAILED) {
		ballast_p = NULL;
		return;
	}
	memset(ballast_p, 0x5a, ballast_sz);
}

static void ballast_free(void)
{
	if (ballast_p)
		munmap(ballast_p, ballast_sz);
	ballast_p = NULL;
}

static pid_t streamer(void)
{
	pid_t pid = fork();
	char *buf;
	int fd;

	if (pid)
		return pid;
	buf = malloc(MIB);
	for (;;) {
		fd = open(stream_dev, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || !buf)
			_exit(1);
		while (read(fd, buf, MIB) > 0)
			;
		close(fd);
	}
}

static void phase(const char *name, unsigned int secs, int lib_tid)
{
	uint64_t e0, e1, h0, h1, l0, l1, p0, p1, t0, t1;
	double us0, us1;
	struct vb_psi s0, s1;

	ftrace_clear();
	h0 = 0;
	us0 = 0;
	e0 = vb_read_u64("/sys/kernel/membroker/evaluations/total", 0);
	l0 = vb_task_cpu_ns(lib_tid);
	p0 = vb_task_cpu_ns(atomic_load(&poller_tid));
	vb_psi_read(&s0);
	t0 = vb_now_ns();
	vb_sleep_ms(secs * 1000ULL);
	t1 = vb_now_ns();
	e1 = vb_read_u64("/sys/kernel/membroker/evaluations/total", 0);
	ftrace_read(&h1, &us1);
	l1 = vb_task_cpu_ns(lib_tid);
	p1 = vb_task_cpu_ns(atomic_load(&poller_tid));
	vb_psi_read(&s1);
	vb_json("cost-phase",
		"\"phase\": \"%s\", \"seconds\": %.2f, "
		"\"evaluations\": %llu, \"evals_per_s\": %.2f, "
		"\"ftrace\": %s, \"ftrace_hits\": %llu, \"ftrace_us\": %.1f, "
		"\"lib_thread_cpu_ms\": %.2f, \"poll100_cpu_ms\": %.2f, "
		"\"psi_some_ms\": %.1f",
		name, (double)(t1 - t0) / 1e9, (unsigned long long)(e1 - e0),
		(double)(e1 - e0) * 1e9 / (double)(t1 - t0),
		ftrace_on ? "true" : "false",
		(unsigned long long)(h1 - h0), us1 - us0,
		(double)(l1 - l0) / 1e6, (double)(p1 - p0) / 1e6,
		(double)(s1.some_us - s0.some_us) / 1e3);
}

/* MiB/s of first-touch faults over @mib MiB, in a child, @reps times */
static double fault_rate(uint64_t mib, int reps, uint64_t *faults)
{
	int pfd[2], status;
	double r = 0;
	pid_t pid;

	if (pipe(pfd) < 0)
		return 0;
	pid = fork();
	if (!pid) {
		struct rusage ru0, ru1;
		uint64_t t0, t;
		size_t sz = mib * MIB, off;
		double out[2];
		char *p;
		int i;

		getrusage(RUSAGE_SELF, &ru0);
		t0 = vb_now_ns();
		for (i = 0; i < reps; i++) {
			p = mmap(NULL, sz, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (p == MAP_FAILED)
				_exit(1);
			for (off = 0; off < sz; off += 4096)
				p[off] = 1;
			munmap(p, sz);
		}
		t = vb_now_ns() - t0;
		getrusage(RUSAGE_SELF, &ru1);
		out[0] = (double)(mib * (uint64_t)reps) * 1e9 / (double)t;
		out[1] = (double)(ru1.ru_minflt - ru0.ru_minflt);
		if (write(pfd[1], out, sizeof(out)) != sizeof(out))
			_exit(1);
		_exit(0);
	}
	close(pfd[1]);
	{
		double in[2];

		if (read(pfd[0], in, sizeof(in)) == sizeof(in)) {
			r = in[0];
			*faults = (uint64_t)in[1];
		}
	}
	close(pfd[0]);
	waitpid(pid, &status, 0);
	return r;
}

static void drop_caches(void)
{
	vb_write_str("/proc/sys/vm/drop_caches", "3");
}

/* Fill the page cache from the stream device, about @mib MiB. */
static void fill_cache(uint64_t mib)
{
	char *buf = malloc(MIB);
	int fd = open(stream_dev, O_RDONLY | O_CLOEXEC);
	uint64_t i;

	for (i = 0; fd >= 0 && buf && i < mib; i++)
		if (read(fd, buf, MIB) <= 0)
			break;
	if (fd >= 0)
		close(fd);
	free(buf);
}

static bool loaded(void)
{
	return !access("/sys/kernel/membroker", F_OK);
}

static void faults(uint64_t mib, int reps, int rounds, uint64_t total_mib)
{
	static const char *const kind[] = { "spare", "reclaim" };
	char cmd[256];
	int k, r, m;

	for (k = 0; k < 2; k++) {
		for (r = 0; r < rounds; r++) {
			for (m = 0; m < 2; m++) {
				bool want = m == 0;
				uint64_t nf = 0;
				double rate;

				if (want != loaded()) {
					snprintf(cmd, sizeof(cmd), want ?
						 "insmod %s" : "rmmod membroker",
						 module);
					if (system(cmd))
						return;
				}
				drop_caches();
				if (k == 1)
					fill_cache(total_mib);
				rate = fault_rate(mib, reps, &nf);
				vb_json("cost-faults",
					"\"memory\": \"%s\", \"round\": %d, "
					"\"module\": %s, \"mib_per_s\": %.1f, "
					"\"faults\": %llu, \"mib\": %llu, "
					"\"reps\": %d", kind[k], r,
					want ? "true" : "false", rate,
					(unsigned long long)nf,
					(unsigned long long)mib, reps);
			}
		}
	}
	if (!loaded()) {
		snprintf(cmd, sizeof(cmd), "insmod %s", module);
		if (system(cmd))
			fprintf(stderr, "cost: cannot reload the module\n");
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "seconds", required_argument, NULL, 's' },
		{ "fault-reps", required_argument, NULL, 'r' },
		{ "rounds", required_argument, NULL, 'R' },
		{ "module", required_argument, NULL, 'm' },
		{ "stream", required_argument, NULL, 'd' },
		{ 0 }
	};
	struct mb_monitor_opts mo = { .sz = sizeof(mo),
				      .source = MB_SOURCE_KMOD };
	unsigned int secs = 10;
	int reps = 5, rounds = 3, c, before[64], after[64], nb, na, i, j;
	int lib_tid = 0, mfd;
	struct mb_monitor *mon;
	uint64_t total, avail, low, fmib;
	pthread_t th;
	pid_t sp;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			secs = (unsigned int)atoi(optarg);
			break;
		case 'r':
			reps = atoi(optarg);
			break;
		case 'R':
			rounds = atoi(optarg);
			break;
		case 'm':
			module = optarg;
			break;
		case 'd':
			stream_dev = optarg;
			break;
		default:
			fprintf(stderr, "usage: cost [--seconds S] [--fault-reps N] [--rounds N] [--module KO] [--stream DEV]\n");
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	vb_write_str("/proc/self/oom_score_adj", "-1000");
	mfd = open("/proc/meminfo", O_RDONLY | O_CLOEXEC);
	if (mfd < 0)
		return 1;
	total = vb_meminfo_field(mfd, "MemTotal:");
	low = vb_read_u64("/sys/kernel/membroker/low_bytes", total / 16);
	ftrace_setup();
	if (pthread_create(&th, NULL, poller, NULL))
		return 1;
	nb = tids(before, 64);
	if (mb_monitor_new(&mon, &mo) < 0 || mb_monitor_start_thread(mon) < 0) {
		fprintf(stderr, "cost: no monitor on the module\n");
		return 1;
	}
	vb_sleep_ms(200);
	na = tids(after, 64);
	for (i = 0; i < na && !lib_tid; i++) {
		for (j = 0; j < nb && before[j] != after[i]; j++)
			;
		if (j == nb)
			lib_tid = after[i];
	}
	vb_json("cost-setup", "\"total_mib\": %.1f, \"low_mib\": %.2f, "
		"\"lib_tid\": %d, \"ftrace\": %s, \"cpus\": %ld",
		(double)total / MIB, (double)low / MIB, lib_tid,
		ftrace_on ? "true" : "false", sysconf(_SC_NPROCESSORS_ONLN));

	phase("idle", secs, lib_tid);
	ballast_to(mfd, low + low / 4);
	phase("near the threshold", secs, lib_tid);
	ballast_free();
	sp = streamer();
	phase("page-cache reclaim", secs, lib_tid);
	kill(sp, SIGKILL);
	waitpid(sp, NULL, 0);

	atomic_store(&stop_poller, true);
	pthread_join(th, NULL);
	if (ftrace_on)
		vb_write_str(TRACING "/current_tracer", "nop");
	mb_monitor_free(mon);

	/* half of what is available, so that "spare" never reclaims */
	avail = vb_avail(mfd);
	fmib = avail / 2 / MIB;
	faults(fmib, reps, rounds, total / MIB);
	return 0;
}
