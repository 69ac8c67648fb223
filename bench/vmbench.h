/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Helpers shared by the guest benches (tails.c, outcome.c, cost.c): the
 * clock, MemAvailable without stdio, the module's sysfs files, PSI totals
 * and the "MB-JSON" lines the host collects (bench/perf_vm.sh).  Each
 * bench is one static binary; everything here is static inline so that
 * they need no object of their own.
 */
#ifndef BENCH_VMBENCH_H
#define BENCH_VMBENCH_H

#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NSEC_PER_MSEC	1000000ULL
#define NSEC_PER_SEC	1000000000ULL
#define MIB		(1ULL << 20)

static inline uint64_t vb_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

static inline void vb_sleep_until(uint64_t t)
{
	struct timespec ts = {
		.tv_sec = (time_t)(t / NSEC_PER_SEC),
		.tv_nsec = (long)(t % NSEC_PER_SEC),
	};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL))
		;
}

static inline void vb_sleep_ms(uint64_t ms)
{
	vb_sleep_until(vb_now_ns() + ms * NSEC_PER_MSEC);
}

/*
 * A "Key:   N kB" field of an open /proc/meminfo, in bytes (0 on error).
 * No stdio, no allocation: safe after fork() of a threaded process.
 */
static inline uint64_t vb_meminfo_field(int fd, const char *key)
{
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
	for (p += strlen(key); *p == ' '; p++)
		;
	for (; *p >= '0' && *p <= '9'; p++)
		kb = kb * 10 + (uint64_t)(*p - '0');
	return kb * 1024;
}

static inline uint64_t vb_avail(int fd)
{
	return vb_meminfo_field(fd, "MemAvailable:");
}

/* One decimal value from a file, or @def when it cannot be read. */
static inline uint64_t vb_read_u64(const char *path, uint64_t def)
{
	char buf[64];
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return def;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return def;
	buf[n] = '\0';
	return strtoull(buf, NULL, 10);
}

static inline bool vb_write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	bool ok;

	if (fd < 0)
		return false;
	ok = write(fd, s, strlen(s)) == (ssize_t)strlen(s);
	close(fd);
	return ok;
}

/* The module's latest notification's state is "low" */
static inline bool vb_kmod_low(void)
{
	char buf[16] = "";
	ssize_t n;
	int fd;

	fd = open("/sys/kernel/membroker/state", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n >= 3 && !strncmp(buf, "low", 3);
}

/*
 * PSI memory totals (us) of /proc/pressure/memory: "some" and "full",
 * and their avg10 (percent).
 */
struct vb_psi {
	uint64_t some_us, full_us;
	double some_avg10, full_avg10;
};

static inline bool vb_psi_read(struct vb_psi *p)
{
	char buf[512], *l;
	ssize_t n;
	int fd;

	memset(p, 0, sizeof(*p));
	fd = open("/proc/pressure/memory", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	l = strstr(buf, "some ");
	if (l)
		sscanf(l, "some avg10=%lf avg60=%*f avg300=%*f total=%lu",
		       &p->some_avg10, &p->some_us);
	l = strstr(buf, "full ");
	if (l)
		sscanf(l, "full avg10=%lf avg60=%*f avg300=%*f total=%lu",
		       &p->full_avg10, &p->full_us);
	return true;
}

/*
 * CPU time of thread @tid of this process, in ns: the kernel's per-thread
 * CPU clock (the clockid glibc's pthread_getcpuclockid() makes from a
 * tid), precise where /proc's utime and stime count 10 ms ticks.
 */
static inline uint64_t vb_task_cpu_ns(int tid)
{
	struct timespec ts;
	clockid_t cid = (clockid_t)((~(unsigned int)tid << 3) | 6);

	if (tid <= 0 || clock_gettime(cid, &ts))
		return 0;
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

/*
 * JSON lines: "MB-JSON {...}" on stdout, one object a line, collected by
 * bench/perf_vm.sh.  vb_json() takes a printf format for the members.
 */
static inline void __attribute__((format(printf, 2, 3)))
vb_json(const char *kind, const char *fmt, ...)
{
	char body[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	printf("MB-JSON {\"kind\": \"%s\", %s}\n", kind, body);
	fflush(stdout);
}

#endif /* BENCH_VMBENCH_H */
