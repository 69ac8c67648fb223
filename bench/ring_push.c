// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * ring_push: the cost of mb_ring_push() alone and with writers contending,
 * next to the plain alternative, a ring whose push takes a mutex.
 *
 * Both rings have the same capacity, record size and overwrite-oldest
 * behaviour, and both hand out a sequence number per record.
 *
 * Usage: ring_push [-n PUSHES_PER_THREAD]
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <membroker.h>

#include "harness.h"

#define RING_CAPACITY	1024
#define DEFAULT_ITERS	500000ULL

/* The baseline: what one would write without the library. */
struct mutex_ring {
	pthread_mutex_t lock;
	uint64_t last_seq;
	size_t capacity;
	size_t record_size;
	unsigned char *data;
};

static int64_t mutex_ring_push(struct mutex_ring *r, const void *record)
{
	uint64_t seq;

	pthread_mutex_lock(&r->lock);
	seq = ++r->last_seq;
	memcpy(r->data + ((seq - 1) % r->capacity) * r->record_size, record,
	       r->record_size);
	pthread_mutex_unlock(&r->lock);
	return (int64_t)seq;
}

struct rings {
	size_t record_size;
	struct mb_ring *ring;
	struct mutex_ring mring;
	_Atomic int error;
};

static void reset_rings(void *arg)
{
	struct rings *r = arg;
	int err;

	/* A fresh ring per repeat so sequence numbers can be checked. */
	mb_ring_free(r->ring);
	r->ring = NULL;
	err = mb_ring_new(&r->ring, RING_CAPACITY, r->record_size);
	if (err < 0)
		atomic_store(&r->error, err);
	r->mring.last_seq = 0;
}

static __attribute__((noinline)) void loop_mb_ring(void *arg,
						   unsigned int tid,
						   uint64_t iters)
{
	struct rings *r = arg;
	unsigned char rec[256];
	uint64_t i;

	memset(rec, (int)tid, sizeof(rec));
	if (!r->ring)
		return;
	for (i = 0; i < iters; i++) {
		memcpy(rec, &i, sizeof(i));
		if (mb_ring_push(r->ring, rec) < 1) {
			atomic_store(&r->error, -EIO);
			return;
		}
	}
}

static __attribute__((noinline)) void loop_mutex_ring(void *arg,
						      unsigned int tid,
						      uint64_t iters)
{
	struct rings *r = arg;
	unsigned char rec[256];
	uint64_t i;

	memset(rec, (int)tid, sizeof(rec));
	for (i = 0; i < iters; i++) {
		memcpy(rec, &i, sizeof(i));
		mutex_ring_push(&r->mring, rec);
	}
}

int main(int argc, char **argv)
{
	static const unsigned int threads[] = { 1, 2, 4 };
	static const size_t sizes[] = { 64, sizeof(struct mb_notification) };
	struct rings r = { 0 };
	uint64_t iters = DEFAULT_ITERS, wall, want;
	char label[64];
	size_t s, t;
	int ret = 0;

	if (argc == 3 && !strcmp(argv[1], "-n")) {
		iters = strtoull(argv[2], NULL, 0);
	} else if (argc != 1) {
		fprintf(stderr, "usage: ring_push [-n PUSHES]\n");
		return 2;
	}
	if (!iters)
		iters = DEFAULT_ITERS;

	pthread_mutex_init(&r.mring.lock, NULL);
	r.mring.capacity = RING_CAPACITY;
	r.mring.data = malloc(RING_CAPACITY * 256);
	if (!r.mring.data)
		return 1;

	bench_header("ring_push: push one record into a 1024-record ring (op = one push)");
	for (s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		r.record_size = sizes[s];
		r.mring.record_size = sizes[s];
		for (t = 0; t < sizeof(threads) / sizeof(threads[0]); t++) {
			want = iters * threads[t];
			wall = bench_threads(loop_mb_ring, reset_rings, &r,
					     threads[t], iters);
			if (!wall || atomic_load(&r.error) ||
			    mb_ring_last_seq(r.ring) != want) {
				fprintf(stderr,
					"ring_push: mb_ring failed (%d), last seq %llu, want %llu\n",
					atomic_load(&r.error),
					(unsigned long long)(r.ring ?
					mb_ring_last_seq(r.ring) : 0),
					(unsigned long long)want);
				ret = 1;
				goto out;
			}
			snprintf(label, sizeof(label), "mb_ring_push, %zu B",
				 sizes[s]);
			bench_row(label, threads[t], want, wall);

			wall = bench_threads(loop_mutex_ring, reset_rings, &r,
					     threads[t], iters);
			if (!wall || r.mring.last_seq != want) {
				ret = 1;
				goto out;
			}
			snprintf(label, sizeof(label), "mutex ring push, %zu B",
				 sizes[s]);
			bench_row(label, threads[t], want, wall);
		}
	}
out:
	mb_ring_free(r.ring);
	free(r.mring.data);
	pthread_mutex_destroy(&r.mring.lock);
	return ret;
}
