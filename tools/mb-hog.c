// SPDX-License-Identifier: GPL-2.0
/*
 * mb-hog: eat anonymous memory on purpose, to drive membroker's states.
 *
 *   mb-hog --bytes N | --until-oom [--chunk BYTES] [--hold] [--rate MiBps]
 *          [--floor BYTES] [-v]
 *
 * Every page is written, so the memory really leaves MemAvailable (an
 * untouched mapping costs nothing).  With --hold the memory is kept until
 * SIGUSR1 arrives or stdin reaches EOF, so a test can watch the system
 * while the pressure lasts and end it when it chooses.  --until-oom keeps
 * allocating until the OOM killer ends the process (SIGKILL).  --floor
 * makes a polite batch job: it never allocates while MemAvailable is below
 * BYTES, but waits for others to make room (time spent waiting does not
 * count against --rate).  Sizes take
 * K, M and G suffixes (powers of 1024).  Static and libc-only: it runs in
 * the test VM's busybox root.
 *
 * Exit status: 0 done, 1 could not allocate, 2 bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#define MIB		(1024ULL * 1024)
#define DEFAULT_CHUNK	(4 * MIB)
#define PROGRESS_STEP	(64 * MIB)

struct hog {
	uint64_t bytes;		/* target; 0 with until_oom */
	uint64_t chunk;
	uint64_t rate;		/* bytes per second, 0 = as fast as possible */
	uint64_t floor;		/* MemAvailable not to allocate below, or 0 */
	bool until_oom;
	bool hold;
	bool verbose;
	void **maps;
	uint64_t *lens;
	size_t nmaps;
	size_t cap;
	uint64_t total;		/* bytes allocated and touched so far */
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mb-hog --bytes N | --until-oom [--chunk BYTES] [--hold]\n"
		"              [--rate MiBps] [--floor BYTES] [-v]\n");
}

/*
 * Parse "123", "64K", "512M", "1G"; returns 0 or -EINVAL.  strtoull()
 * skips blanks and accepts a sign (" -1" is 2^64 - 1), and the suffix can
 * overflow: both are refused rather than turned into some other size.
 */
static int parse_size(const char *s, uint64_t *out)
{
	unsigned long long v, mult = 1;
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K':
		mult = 1024ULL;
		end++;
		break;
	case 'm': case 'M':
		mult = MIB;
		end++;
		break;
	case 'g': case 'G':
		mult = 1024ULL * MIB;
		end++;
		break;
	default:
		break;
	}
	if (*end || __builtin_mul_overflow(v, mult, &v))
		return -EINVAL;
	*out = v;
	return 0;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/*
 * Keep to --rate by sleeping until the time the bytes allocated so far
 * are due; sleeping to an absolute deadline does not accumulate drift.
 */
static void pace(const struct hog *h, uint64_t start_ns)
{
	uint64_t due = start_ns + h->total * 1000000000ULL / h->rate;
	struct timespec ts = {
		.tv_sec = due / 1000000000ULL,
		.tv_nsec = due % 1000000000ULL,
	};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
	       EINTR)
		;
}

/* MemAvailable in bytes, or 0 if /proc/meminfo cannot be read */
static uint64_t mem_available(void)
{
	static const char key[] = "MemAvailable:";
	char buf[4096], *p;
	ssize_t n;
	int fd;

	fd = open("/proc/meminfo", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strstr(buf, key);
	return p ? strtoull(p + sizeof(key) - 1, NULL, 10) * 1024 : 0;
}

/* SIGUSR1 (blocked since start-up) asks us to stop */
static bool stop_requested(void)
{
	sigset_t set;

	return !sigpending(&set) && sigismember(&set, SIGUSR1) == 1;
}

/*
 * --floor: wait until MemAvailable is at least the floor plus the next
 * chunk, or until asked to stop.  Returns how long it waited, so that
 * pacing can leave it out.
 */
static uint64_t wait_for_room(const struct hog *h, uint64_t len)
{
	static const struct timespec tick = { .tv_nsec = 10 * 1000000L };
	uint64_t start = now_ns(), avail = mem_available();

	if (avail >= h->floor + len)
		return 0;
	if (h->verbose)
		fprintf(stderr, "mb-hog: waiting for room: %llu MiB available, "
			"floor %llu MiB\n", (unsigned long long)(avail / MIB),
			(unsigned long long)(h->floor / MIB));
	while (mem_available() < h->floor + len && !stop_requested())
		nanosleep(&tick, NULL);
	return now_ns() - start;
}

static int remember(struct hog *h, void *p, uint64_t len)
{
	if (h->nmaps == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 256;
		void **maps = realloc(h->maps, cap * sizeof(*maps));
		uint64_t *lens;

		if (!maps)
			return -ENOMEM;
		h->maps = maps;
		lens = realloc(h->lens, cap * sizeof(*lens));
		if (!lens)
			return -ENOMEM;
		h->lens = lens;
		h->cap = cap;
	}
	h->maps[h->nmaps] = p;
	h->lens[h->nmaps] = len;
	h->nmaps++;
	return 0;
}

static int allocate(struct hog *h)
{
	long page = sysconf(_SC_PAGESIZE);
	uint64_t start = now_ns(), next_report = PROGRESS_STEP;

	while (h->until_oom || h->total < h->bytes) {
		uint64_t len = h->chunk, off;
		char *p;
		int err;

		if (!h->until_oom && h->bytes - h->total < len)
			len = h->bytes - h->total;
		if (h->floor) {
			start += wait_for_room(h, len);
			/* keep what we have; hold() sees the signal */
			if (stop_requested())
				break;
		}
		p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return -errno;
		err = remember(h, p, len);
		if (err) {
			munmap(p, len);
			return err;
		}
		/* A non-zero byte per page: the page must really exist. */
		for (off = 0; off < len; off += page)
			p[off] = 1;
		h->total += len;
		if (h->verbose && h->total >= next_report) {
			fprintf(stderr, "mb-hog: %llu MiB\n",
				(unsigned long long)(h->total / MIB));
			next_report += PROGRESS_STEP;
		}
		if (h->rate)
			pace(h, start);
	}
	return 0;
}

/* Wait for SIGUSR1 or EOF on stdin, whichever comes first. */
static int hold(void)
{
	struct pollfd pfd[2];
	char buf[256];
	sigset_t set;
	int sfd, err = 0;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sfd < 0)
		return -errno;
	pfd[0] = (struct pollfd){ .fd = sfd, .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = STDIN_FILENO, .events = POLLIN };
	for (;;) {
		ssize_t n;

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			break;
		}
		if (pfd[0].revents)
			break;
		if (pfd[1].revents & POLLNVAL) {
			/* stdin closed: only SIGUSR1 can end the hold */
			pfd[1].fd = -1;
			continue;
		}
		if (!pfd[1].revents)
			continue;
		n = read(STDIN_FILENO, buf, sizeof(buf));
		if (n == 0)
			break;
		if (n < 0 && errno != EINTR && errno != EAGAIN) {
			err = -errno;
			break;
		}
	}
	close(sfd);
	return err;
}

static void release(struct hog *h)
{
	size_t i;

	for (i = 0; i < h->nmaps; i++)
		munmap(h->maps[i], h->lens[i]);
	free(h->maps);
	free(h->lens);
	h->maps = NULL;
	h->lens = NULL;
	h->nmaps = 0;
}

static int parse_args(struct hog *h, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "bytes", required_argument, NULL, 'b' },
		{ "until-oom", no_argument, NULL, 'o' },
		{ "chunk", required_argument, NULL, 'c' },
		{ "hold", no_argument, NULL, 'H' },
		{ "rate", required_argument, NULL, 'r' },
		{ "floor", required_argument, NULL, 'f' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ }
	};
	bool have_bytes = false;
	uint64_t v;
	int c;

	h->chunk = DEFAULT_CHUNK;
	while ((c = getopt_long(argc, argv, "b:oc:Hr:f:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'b':
			if (parse_size(optarg, &h->bytes))
				return -EINVAL;
			have_bytes = true;
			break;
		case 'o':
			h->until_oom = true;
			break;
		case 'c':
			if (parse_size(optarg, &h->chunk) || !h->chunk)
				return -EINVAL;
			break;
		case 'H':
			h->hold = true;
			break;
		case 'r':
			if (parse_size(optarg, &v) || !v)
				return -EINVAL;
			h->rate = v * MIB;
			break;
		case 'f':
			if (parse_size(optarg, &h->floor))
				return -EINVAL;
			break;
		case 'v':
			h->verbose = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			return -EINVAL;
		}
	}
	if (optind != argc || have_bytes == h->until_oom)
		return -EINVAL;
	return 0;
}

int main(int argc, char **argv)
{
	struct hog h = { 0 };
	sigset_t set;
	int err;

	if (parse_args(&h, argc, argv)) {
		usage(stderr);
		return 2;
	}
	/*
	 * Block SIGUSR1 from the start so that a signal sent while we are
	 * still allocating ends the hold instead of killing us.
	 */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);

	err = allocate(&h);
	if (err) {
		fprintf(stderr, "mb-hog: allocation failed after %llu bytes: %s\n",
			(unsigned long long)h.total, strerror(-err));
		release(&h);
		return 1;
	}
	if (h.verbose)
		fprintf(stderr, "mb-hog: allocated %llu bytes\n",
			(unsigned long long)h.total);
	if (h.hold) {
		err = hold();
		if (err)
			fprintf(stderr, "mb-hog: waiting: %s\n", strerror(-err));
	}
	release(&h);
	return err ? 1 : 0;
}
