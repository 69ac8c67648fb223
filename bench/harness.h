/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Timing and statistics shared by the host benchmarks.
 *
 * Every figure a bench prints is the median of BENCH_REPEATS timed runs of
 * the same loop, so that one descheduled run on a busy machine does not
 * move the result.  A run starts all its threads from one barrier and is
 * timed from the barrier's release to the last thread's end.
 */
#ifndef BENCH_HARNESS_H
#define BENCH_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#define BENCH_REPEATS	5

/* bench_now_ns() - CLOCK_MONOTONIC in nanoseconds */
uint64_t bench_now_ns(void);

/* bench_median() - median of @n values; sorts @v in place */
uint64_t bench_median(uint64_t *v, size_t n);

/*
 * typedef bench_loop_fn - the timed body of one thread
 * @arg:	the bench's shared state
 * @tid:	0 .. nthreads - 1
 * @iters:	iterations to run
 */
typedef void (*bench_loop_fn)(void *arg, unsigned int tid, uint64_t iters);

/*
 * bench_threads() - run @fn on @nthreads threads, @iters iterations each,
 * BENCH_REPEATS times; @reset (may be NULL) runs before every repeat.
 * Return: median wall time of one repeat in ns, or 0 on error.
 */
uint64_t bench_threads(bench_loop_fn fn, void (*reset)(void *arg), void *arg,
		       unsigned int nthreads, uint64_t iters);

/* bench_row() - one table row: label, threads, ns/op and Mops/s */
void bench_row(const char *label, unsigned int nthreads, uint64_t ops,
	       uint64_t wall_ns);

/* bench_header() - the column titles matching bench_row() */
void bench_header(const char *title);

/*
 * bench_sink - where loops store results the compiler must not discard
 * (an optimised-away loop would time nothing).
 */
extern volatile uint64_t bench_sink;

#endif /* BENCH_HARNESS_H */
