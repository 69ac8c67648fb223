// SPDX-License-Identifier: GPL-2.0
/* Helpers of the library's VM tests (see lib_test.h). */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib_test.h"

int lt_cache_fill(struct mb_cache *cache, uint32_t base, uint64_t bytes)
{
	static char val[LT_VAL_BYTES];
	uint32_t i, n = bytes / LT_VAL_BYTES;
	int err;

	for (i = 0; i < n; i++) {
		uint32_t key = base + i;

		memset(val, (int)key, sizeof(val));
		err = mb_cache_put(cache, &key, sizeof(key), val,
				   sizeof(val));
		if (err < 0)
			return err;
	}
	return 0;
}

int lt_clerk_info(const char *name, struct mb_clerk_info *out)
{
	struct mb_clerk_info info[16];
	int n, i;

	n = mb_clerk_snapshot(info, 16);
	for (i = 0; i < n && i < 16; i++) {
		if (!strcmp(info[i].name, name)) {
			*out = info[i];
			return 0;
		}
	}
	return -ENOENT;
}

int64_t lt_mem_available(void)
{
	static const char key[] = "MemAvailable:";
	char buf[4096], *p;
	ssize_t n;
	int fd;

	fd = open("/proc/meminfo", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	p = strstr(buf, key);
	if (!p)
		return -EIO;
	return (int64_t)strtoull(p + sizeof(key) - 1, NULL, 10) * 1024;
}

void lt_seen_init(struct lt_seen *s)
{
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	s->count = 0;
}

void lt_seen_note(struct mb_monitor *mon, const struct mb_notification *n,
		  void *arg)
{
	struct lt_seen *s = arg;

	(void)mon;
	pthread_mutex_lock(&s->lock);
	s->log[s->count % LT_SEEN_LOG] = *n;
	s->count++;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

uint64_t lt_seen_count(struct lt_seen *s)
{
	uint64_t n;

	pthread_mutex_lock(&s->lock);
	n = s->count;
	pthread_mutex_unlock(&s->lock);
	return n;
}

int lt_seen_wait(struct lt_seen *s, uint64_t *next, lt_match_fn match,
		 const void *arg, int timeout_s, struct mb_notification *out)
{
	struct timespec dl;
	uint64_t i = *next;
	int err = 0;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += timeout_s;
	pthread_mutex_lock(&s->lock);
	while (!err) {
		if (i + LT_SEEN_LOG < s->count)
			i = s->count - LT_SEEN_LOG;	/* overwritten */
		for (; i < s->count; i++)
			if (match(&s->log[i % LT_SEEN_LOG], arg))
				break;
		if (i < s->count) {
			*out = s->log[i % LT_SEEN_LOG];
			*next = i + 1;
			break;
		}
		err = pthread_cond_timedwait(&s->cond, &s->lock, &dl);
	}
	pthread_mutex_unlock(&s->lock);
	return err ? -err : 0;
}

int lt_pool_open(struct lt_pool *p, const char *pool, const char *a,
		 const char *b)
{
	struct mb_broker_opts bopts = {
		.sz = sizeof(bopts),
		/*
		 * A step takes from the larger clerk first, each asked for at
		 * most what it holds: 75 % of the pool needs both caches.
		 */
		.shrink_step_percent = 75,
	};
	struct mb_cache_opts copts = { .sz = sizeof(copts) };
	struct mb_monitor_opts mopts = MB_OPTS(mb_monitor_opts,
					       .source = MB_SOURCE_KMOD);
	int err;

	/* Freed cache values must go back to the kernel at once. */
	if (mallopt(M_MMAP_THRESHOLD, 128 * 1024) != 1)
		return -EINVAL;
	lt_seen_init(&p->seen);
	err = mb_monitor_new(&p->mon, &mopts);
	if (err)
		return err;
	if (mb_monitor_source(p->mon) != MB_SOURCE_KMOD)
		return -ENODEV;
	err = mb_broker_new(&p->broker, pool, p->mon, &bopts);
	if (err)
		return err;
	err = mb_monitor_subscribe(p->mon, lt_seen_note, &p->seen);
	if (err < 0)
		return err;
	err = mb_cache_new(&p->a, a, &copts);
	if (!err)
		err = mb_cache_new(&p->b, b, &copts);
	if (!err)
		err = mb_monitor_start_thread(p->mon);
	return err;
}

void lt_pool_close(struct lt_pool *p)
{
	if (p->mon)
		mb_monitor_stop_thread(p->mon);
	mb_broker_free(p->broker);
	mb_cache_free(p->a);
	mb_cache_free(p->b);
	mb_monitor_free(p->mon);
}
