// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Timing and statistics shared by the host benchmarks: start threads
 * together, time them, keep the median.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

#define BENCH_MAX_THREADS	16

volatile uint64_t bench_sink;

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

uint64_t bench_median(uint64_t *v, size_t n)
{
	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_u64);
	return v[n / 2];
}

struct bench_thread {
	pthread_t thread;
	pthread_barrier_t *barrier;
	bench_loop_fn fn;
	void *arg;
	unsigned int tid;
	uint64_t iters;
	uint64_t start_ns;
	uint64_t end_ns;
};

static void *bench_thread_main(void *p)
{
	struct bench_thread *t = p;

	pthread_barrier_wait(t->barrier);
	t->start_ns = bench_now_ns();
	t->fn(t->arg, t->tid, t->iters);
	t->end_ns = bench_now_ns();
	return NULL;
}

/* One repeat: wall time from the earliest start to the latest end. */
static uint64_t bench_once(bench_loop_fn fn, void *arg, unsigned int nthreads,
			   uint64_t iters)
{
	struct bench_thread t[BENCH_MAX_THREADS];
	pthread_barrier_t barrier;
	uint64_t first = UINT64_MAX, last = 0;
	unsigned int i, started = 0;

	if (pthread_barrier_init(&barrier, NULL, nthreads))
		return 0;
	for (i = 0; i < nthreads; i++) {
		t[i] = (struct bench_thread){
			.barrier = &barrier, .fn = fn, .arg = arg,
			.tid = i, .iters = iters,
		};
		if (pthread_create(&t[i].thread, NULL, bench_thread_main,
				   &t[i]))
			break;
		started++;
	}
	if (started < nthreads) {
		/*
		 * The barrier cannot be released with a thread missing, and
		 * the started ones are stuck in it: there is no clean way
		 * back, and a bench that cannot start threads has no result.
		 */
		fprintf(stderr, "bench: cannot create thread %u\n", started);
		exit(1);
	}
	for (i = 0; i < nthreads; i++) {
		pthread_join(t[i].thread, NULL);
		if (t[i].start_ns < first)
			first = t[i].start_ns;
		if (t[i].end_ns > last)
			last = t[i].end_ns;
	}
	pthread_barrier_destroy(&barrier);
	return last > first ? last - first : 1;
}

uint64_t bench_threads(bench_loop_fn fn, void (*reset)(void *arg), void *arg,
		       unsigned int nthreads, uint64_t iters)
{
	uint64_t wall[BENCH_REPEATS];
	unsigned int r;

	if (!nthreads || nthreads > BENCH_MAX_THREADS)
		return 0;
	for (r = 0; r < BENCH_REPEATS; r++) {
		if (reset)
			reset(arg);
		wall[r] = bench_once(fn, arg, nthreads, iters);
		if (!wall[r])
			return 0;
	}
	return bench_median(wall, BENCH_REPEATS);
}

/*
 * $BENCH_JSON names a file that gets one JSON object per row, appended
 * (bench/perf_report.py makes the summary tables from it).
 */
static char bench_table[160];

static void bench_json_row(const char *label, unsigned int nthreads,
			   uint64_t ops, uint64_t wall_ns)
{
	const char *path = getenv("BENCH_JSON");
	FILE *f;

	if (!path || !*path)
		return;
	f = fopen(path, "ae");
	if (!f)
		return;
	fprintf(f, "{\"bench\": \"%s\", \"table\": \"%s\", \"variant\": \"%s\", "
		"\"threads\": %u, \"ops\": %llu, \"wall_ns\": %llu, "
		"\"ns_per_op\": %.3f}\n", program_invocation_short_name,
		bench_table, label, nthreads, (unsigned long long)ops,
		(unsigned long long)wall_ns,
		ops ? (double)wall_ns / (double)ops : 0.0);
	fclose(f);
}

void bench_header(const char *title)
{
	size_t i;

	/* a title with neither quotes nor backslashes: JSON as it is */
	snprintf(bench_table, sizeof(bench_table), "%s", title);
	for (i = 0; bench_table[i]; i++)
		if (bench_table[i] == '"' || bench_table[i] == '\\')
			bench_table[i] = '\'';
	printf("\n%s\n", title);
	printf("  %-42s %7s %10s %10s\n", "variant", "threads", "ns/op",
	       "Mops/s");
	printf("  %-42s %7s %10s %10s\n", "-------", "-------", "-----",
	       "------");
}

void bench_row(const char *label, unsigned int nthreads, uint64_t ops,
	       uint64_t wall_ns)
{
	double ns = ops ? (double)wall_ns / (double)ops : 0.0;
	double mops = wall_ns ? (double)ops * 1e3 / (double)wall_ns : 0.0;

	printf("  %-42s %7u %10.2f %10.2f\n", label, nthreads, ns, mops);
	bench_json_row(label, nthreads, ops, wall_ns);
	fflush(stdout);
}
