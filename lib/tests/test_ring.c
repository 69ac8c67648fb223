// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * mb_ring: sequence numbers, overwrite-oldest with a missed count, odd
 * record sizes, and concurrent writers against a reader that must never
 * see a torn record or a sequence out of order.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "membroker.h"
#include "tap.h"

#define WRITERS		4
#define PER_WRITER	50000
#define WORDS		8
#define CAP		2048

struct rec {
	uint64_t w[WORDS];	/* all equal: writer << 32 | counter */
};

static void test_basic(void)
{
	struct mb_ring *r;
	uint64_t seqs[8], missed = 99;
	int v[8], i, n;

	ok(mb_ring_new(&r, 0, 4) == -EINVAL && mb_ring_new(&r, 4, 0) ==
	   -EINVAL && mb_ring_new(NULL, 4, 4) == -EINVAL, "bad sizes: -EINVAL");
	r = (struct mb_ring *)&r;
	ok(mb_ring_new(&r, 0, 4) == -EINVAL && r == NULL,
	   "refused for a zero size: *out set to NULL, as documented");
	r = (struct mb_ring *)&r;
	ok(mb_ring_new(&r, SIZE_MAX, 64) == -EINVAL && r == NULL,
	   "refused for a size that cannot fit: *out set to NULL");
	ok(mb_ring_new(&r, 4, sizeof(int)) == 0, "new");
	ok(mb_ring_last_seq(r) == 0, "empty: last seq 0");
	ok(mb_ring_read(r, 1, v, seqs, 8, &missed) == 0 && missed == 0,
	   "empty: nothing to read");
	for (i = 1; i <= 3; i++)
		if (mb_ring_push(r, &i) != i)
			break;
	ok(i == 4, "sequence numbers start at 1");
	n = mb_ring_read(r, 1, v, seqs, 8, &missed);
	ok(n == 3 && v[0] == 1 && v[2] == 3 && seqs[0] == 1 && seqs[2] == 3 &&
	   missed == 0, "read all, oldest first");
	n = mb_ring_read(r, 3, v, seqs, 8, &missed);
	ok(n == 1 && v[0] == 3 && seqs[0] == 3, "read from a sequence number");
	ok(mb_ring_read(r, 4, v, seqs, 8, &missed) == 0, "nothing newer");
	for (i = 4; i <= 10; i++)
		mb_ring_push(r, &i);
	n = mb_ring_read(r, 1, v, seqs, 8, &missed);
	ok(n == 4 && v[0] == 7 && v[3] == 10 && seqs[0] == 7 && missed == 6,
	   "overwritten: newest 4 kept, 6 missed");
	n = mb_ring_read(r, 8, v, NULL, 2, &missed);
	ok(n == 2 && v[0] == 8 && v[1] == 9 && missed == 0,
	   "max limits the copy");
	ok(mb_ring_last_seq(r) == 10, "last seq 10");
	ok(mb_ring_push(r, NULL) == -EINVAL && mb_ring_push(NULL, &i) ==
	   -EINVAL, "push checks its arguments");
	mb_ring_free(r);
	mb_ring_free(NULL);
}

static void test_odd_size(void)
{
	char in[13], out[3][13];
	struct mb_ring *r;
	int i, n;

	ok(mb_ring_new(&r, 3, sizeof(in)) == 0, "13-byte records");
	for (i = 0; i < 5; i++) {
		memset(in, 'a' + i, sizeof(in));
		mb_ring_push(r, in);
	}
	memset(out, 0, sizeof(out));
	n = mb_ring_read(r, 0, out, NULL, 3, NULL);
	ok(n == 3 && out[0][0] == 'c' && out[0][12] == 'c' &&
	   out[2][12] == 'e', "copied exactly, no bytes beyond");
	mb_ring_free(r);
}

struct ctx {
	struct mb_ring *r;
	pthread_barrier_t start;
	atomic_int writers_left;
	int id;
	uint64_t torn, disorder, seen, missed;
};

static struct ctx g;

static void *writer(void *arg)
{
	uint64_t id = (uintptr_t)arg, c;
	struct rec rec;
	int i;

	pthread_barrier_wait(&g.start);
	for (c = 1; c <= PER_WRITER; c++) {
		for (i = 0; i < WORDS; i++)
			rec.w[i] = id << 32 | c;
		mb_ring_push(g.r, &rec);
	}
	atomic_fetch_sub(&g.writers_left, 1);
	return NULL;
}

static void check(const struct rec *buf, int n, uint64_t *last)
{
	uint64_t id;
	int i, j;

	for (i = 0; i < n; i++) {
		for (j = 1; j < WORDS; j++)
			if (buf[i].w[j] != buf[i].w[0])
				g.torn++;
		id = buf[i].w[0] >> 32;
		if (id >= WRITERS ||
		    (buf[i].w[0] & 0xffffffff) <= last[id])
			g.disorder++;
		else
			last[id] = buf[i].w[0] & 0xffffffff;
	}
}

static void *reader(void *arg)
{
	uint64_t next = 1, last[WRITERS] = { 0 }, seqs[64], missed;
	struct rec buf[64];
	bool done = false;
	int n;

	(void)arg;
	pthread_barrier_wait(&g.start);
	while (!done) {
		/* one more pass after the writers finished */
		done = atomic_load(&g.writers_left) == 0;
		do {
			n = mb_ring_read(g.r, next, buf, seqs, 64, &missed);
			if (n < 0)
				return NULL;
			g.missed += missed;
			if (n > 0 && (seqs[0] < next || seqs[n - 1] < seqs[0] ||
				      seqs[n - 1] >= next + n + missed))
				g.disorder++;
			/* everything before this was read or missed */
			next += (uint64_t)n + missed;
			g.seen += (uint64_t)n;
			check(buf, n, last);
		} while (n > 0 || missed);
	}
	/* everything up to the head is accounted for, one way or another */
	g.id = (int)(next - 1);
	return NULL;
}

static void test_concurrent(void)
{
	pthread_t w[WRITERS], rd;
	uint64_t last[WRITERS] = { 0 }, missed;
	struct rec *all;
	uintptr_t i;
	int n;

	ok(mb_ring_new(&g.r, CAP, sizeof(struct rec)) == 0, "ring of %d", CAP);
	pthread_barrier_init(&g.start, NULL, WRITERS + 1);
	atomic_store(&g.writers_left, WRITERS);
	for (i = 0; i < WRITERS; i++)
		pthread_create(&w[i], NULL, writer, (void *)i);
	pthread_create(&rd, NULL, reader, NULL);
	for (i = 0; i < WRITERS; i++)
		pthread_join(w[i], NULL);
	pthread_join(rd, NULL);
	ok(mb_ring_last_seq(g.r) == WRITERS * PER_WRITER,
	   "every push got a sequence number");
	ok(g.torn == 0, "reader saw no torn record (%llu)",
	   (unsigned long long)g.torn);
	ok(g.disorder == 0, "each writer's records in order (%llu)",
	   (unsigned long long)g.disorder);
	ok(g.seen + g.missed == (uint64_t)g.id &&
	   g.id == WRITERS * PER_WRITER,
	   "read + missed = all (%llu + %llu)", (unsigned long long)g.seen,
	   (unsigned long long)g.missed);
	diag("concurrent reader saw %llu, missed %llu",
	     (unsigned long long)g.seen, (unsigned long long)g.missed);

	all = calloc(CAP, sizeof(*all));
	n = mb_ring_read(g.r, 1, all, NULL, CAP, &missed);
	g.torn = g.disorder = 0;
	check(all, n, last);
	/*
	 * A writer preempted between taking its number and claiming its
	 * slot loses its record to the writer a lap ahead, so the last lap
	 * may hold fewer than CAP records; each one lost is reported missed.
	 */
	ok(n > 0 && n <= CAP && (uint64_t)n + missed == WRITERS * PER_WRITER &&
	   !g.torn && !g.disorder,
	   "afterwards: at most the last %d, consistent (%d + %llu missed)",
	   CAP, n, (unsigned long long)missed);
	free(all);
	pthread_barrier_destroy(&g.start);
	mb_ring_free(g.r);
}

int main(void)
{
	plan(0);
	test_basic();
	test_odd_size();
	test_concurrent();
	return done_testing();
}
