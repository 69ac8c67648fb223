// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Small helpers shared by every part of the library: clocks, reading
 * files under a (test) root, /proc/meminfo, and the threshold rules.  The
 * rules are the kernel module's, so that a user-space source and the
 * module classify the same numbers the same way.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/**
 * mb_path_join() - @root + @path into @buf
 * Return: the length, -EINVAL or -ENAMETOOLONG.
 */
int mb_path_join(const char *root, const char *path, char *buf, size_t len)
{
	size_t rl;
	int n;

	if (!path || !buf || !len)
		return -EINVAL;
	if (!root || !*root)
		root = "/";
	rl = strlen(root);
	/* "/" + "/proc/x" must not become "//proc/x" for error messages */
	while (rl > 0 && root[rl - 1] == '/')
		rl--;
	while (*path == '/')
		path++;
	n = snprintf(buf, len, "%.*s/%s", (int)rl, root, path);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= len)
		return -ENAMETOOLONG;
	return n;
}

/**
 * mb_read_file() - read a small file @path below @root
 * @buf: receives up to @len - 1 bytes and a terminating NUL
 * Return: the number of bytes read, or -errno.
 */
int mb_read_file(const char *root, const char *path, char *buf, size_t len)
{
	char full[4096];
	size_t got = 0;
	ssize_t r;
	int fd, err;

	if (!buf || len < 1)
		return -EINVAL;
	err = mb_path_join(root, path, full, sizeof(full));
	if (err < 0)
		return err;
	fd = open(full, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* procfs hands out a consistent snapshot only within one read */
	while (got < len - 1) {
		r = read(fd, buf + got, len - 1 - got);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			close(fd);
			return err;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	buf[got] = '\0';
	return (int)got;
}

static int mb_meminfo_field(const char *text, const char *key, uint64_t *out)
{
	size_t kl = strlen(key);
	const char *p = text;
	unsigned long long v;
	char *end;

	while (p && *p) {
		if (!strncmp(p, key, kl) && p[kl] == ':') {
			errno = 0;
			v = strtoull(p + kl + 1, &end, 10);
			if (errno || end == p + kl + 1)
				return -EINVAL;
			while (*end == ' ')
				end++;
			/* every field we use is in kB; be strict about it */
			if (strncmp(end, "kB", 2))
				return -EINVAL;
			if (v > UINT64_MAX / MB_KIB)
				return -ERANGE;
			*out = v * MB_KIB;
			return 0;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return -ENODATA;
}

/**
 * mb_meminfo_parse() - parse the text of /proc/meminfo
 * Committed_AS and CommitLimit are optional (0 when absent); MemTotal and
 * MemAvailable are required.
 * Return: 0, -ENODATA if a required field is missing, -EINVAL if malformed.
 */
int mb_meminfo_parse(const char *text, struct mb_meminfo *out)
{
	struct mb_meminfo mi = { 0 };
	int err;

	if (!text || !out)
		return -EINVAL;
	err = mb_meminfo_field(text, "MemTotal", &mi.total);
	if (!err)
		err = mb_meminfo_field(text, "MemAvailable", &mi.available);
	if (err)
		return err;
	err = mb_meminfo_field(text, "Committed_AS", &mi.committed);
	if (err && err != -ENODATA)
		return err;
	err = mb_meminfo_field(text, "CommitLimit", &mi.commit_limit);
	if (err && err != -ENODATA)
		return err;
	*out = mi;
	return 0;
}

/*
 * Whether the kernel enforces CommitLimit: only in overcommit mode 2
 * (OVERCOMMIT_NEVER).  A system without the sysctl file (none mounted
 * under a test root, say) has the kernel's default, mode 0.
 */
static bool mb_commit_enforced(const char *root)
{
	char buf[16];

	if (mb_read_file(root, "/proc/sys/vm/overcommit_memory", buf,
			 sizeof(buf)) <= 0)
		return false;
	return atoi(buf) == 2;
}

/**
 * mb_meminfo_read() - read and parse @root/proc/meminfo, and whether
 * @root/proc/sys/vm/overcommit_memory enforces the commit limit
 * Return: 0 or -errno.
 */
int mb_meminfo_read(const char *root, struct mb_meminfo *out)
{
	char buf[8192];
	int n;

	if (!out)
		return -EINVAL;
	n = mb_read_file(root, "/proc/meminfo", buf, sizeof(buf));
	if (n < 0)
		return n;
	n = mb_meminfo_parse(buf, out);
	if (n < 0)
		return n;
	out->commit_enforced = mb_commit_enforced(root);
	return 0;
}

/** mb_now_ns() - CLOCK_MONOTONIC in nanoseconds */
uint64_t mb_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * MB_NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

/** mb_self_rss() - this process's resident set size in bytes, 0 if unknown */
uint64_t mb_self_rss(void)
{
	unsigned long long size, resident;
	char buf[256];
	long page;

	/* the process's own statm, never under a test root */
	if (mb_read_file("/", "/proc/self/statm", buf, sizeof(buf)) <= 0)
		return 0;
	if (sscanf(buf, "%llu %llu", &size, &resident) != 2)
		return 0;
	page = sysconf(_SC_PAGESIZE);
	if (page <= 0)
		return 0;
	return resident * (uint64_t)page;
}

/**
 * mb_auto_thresholds() - the module's automatic thresholds for @total
 * low = total/8 clamped to 32..256 MiB, at most total/4;
 * high = min(3 * low, total/2).
 */
void mb_auto_thresholds(uint64_t total, uint64_t *low, uint64_t *high)
{
	uint64_t lo = total / 8;

	lo = MB_MAX(lo, 32 * MB_MIB);
	lo = MB_MIN(lo, 256 * MB_MIB);
	lo = MB_MIN(lo, total / 4);
	if (low)
		*low = lo;
	if (high)
		*high = MB_MIN(3 * lo, total / 2);
}

/**
 * mb_classify() - the state for @avail, given the thresholds and the
 * previous state.  Hysteresis min(low/8, (high-low)/2) keeps the state
 * from flapping: LOW is left only at low + hyst, HIGH only at high - hyst.
 */
uint32_t mb_classify(uint64_t avail, uint64_t low, uint64_t high,
		     uint32_t prev_state)
{
	uint64_t hyst = 0;

	if (high > low)
		hyst = MB_MIN(low / 8, (high - low) / 2);
	if (prev_state == MB_STATE_LOW && avail < low + hyst)
		return MB_STATE_LOW;
	if (prev_state == MB_STATE_HIGH && avail > high - hyst)
		return MB_STATE_HIGH;
	if (avail < low)
		return MB_STATE_LOW;
	if (avail > high)
		return MB_STATE_HIGH;
	return MB_STATE_STEADY;
}

/**
 * mb_virtual_flags() - MB_FLAG_VIRTUAL_LOW when the kernel enforces the
 * commit limit (@mi->commit_enforced) and Committed_AS is at or above
 * MB_VIRTUAL_LOW_PERCENT of CommitLimit, else 0 (also when unknown).
 * This is the module's rule: in overcommit modes 0 and 1 an allocation
 * never fails for Committed_AS above CommitLimit, so the flag would
 * predict nothing.
 */
uint32_t mb_virtual_flags(const struct mb_meminfo *mi)
{
	uint64_t committed = mi->committed, commit_limit = mi->commit_limit;

	if (!mi->commit_enforced || !commit_limit)
		return 0;
	/* 128-bit products: no overflow for any byte count */
	if ((unsigned __int128)committed * 100 >=
	    (unsigned __int128)commit_limit * MB_VIRTUAL_LOW_PERCENT)
		return MB_FLAG_VIRTUAL_LOW;
	return 0;
}

/*
 * mb_notification_news() - whether @n tells a subscriber anything @last
 * did not: a state, flags, thresholds or total memory of its own.  The
 * figures that move all the time (available, committed) are not news on
 * their own; every source announces a reading only when this says so.
 */
bool mb_notification_news(const struct mb_notification *n,
			  const struct mb_notification *last)
{
	return n->state != last->state || n->flags != last->flags ||
	       n->low != last->low || n->high != last->high ||
	       n->total != last->total;
}

/*
 * mb_notification_from_meminfo() - what a reading @mi means against @low
 * and @high, as @source announces it at @now_ns: the state keeps
 * @prev_state's hysteresis, the flags follow the commit figures.  seq,
 * reason and process_rss are 0, for the caller to fill in.
 */
void mb_notification_from_meminfo(struct mb_notification *n, uint32_t source,
				  const struct mb_meminfo *mi, uint64_t low,
				  uint64_t high, uint32_t prev_state,
				  uint64_t now_ns)
{
	*n = (struct mb_notification){
		.time_ns = now_ns,
		.state = mb_classify(mi->available, low, high, prev_state),
		.flags = mb_virtual_flags(mi),
		.source = source,
		.available = mi->available,
		.total = mi->total,
		.low = low,
		.high = high,
		.committed = mi->committed,
		.commit_limit = mi->commit_limit,
	};
}

/**
 * mb_poll_interval_ms() - how long until the next look: the time the
 * headroom above @low would last if memory were consumed at 1 GiB/s,
 * clamped to MB_POLL_MIN_MS..MB_POLL_MAX_MS.
 */
int mb_poll_interval_ms(uint64_t avail, uint64_t low)
{
	uint64_t headroom = avail > low ? avail - low : 0;
	uint64_t ms = headroom / (MB_GIB / 1000);

	if (ms < MB_POLL_MIN_MS)
		return MB_POLL_MIN_MS;
	if (ms > MB_POLL_MAX_MS)
		return MB_POLL_MAX_MS;
	return (int)ms;
}

/**
 * mb_opts_copy() - copy a caller's options struct whose first member is
 * its size into @dst (zero-filled, @dst_sz bytes).  A newer caller's
 * struct may be larger only if the fields we do not know are zero.
 *
 * A smaller size is refused: every options struct is still the one the
 * first release (MEMBROKER_0.1) declared, so a smaller size can only end
 * inside a field, or leave out fields the caller meant to set (a half
 * copied field would be read as a value nobody gave).  When a release
 * grows a struct, the sizes of the earlier releases become the smaller
 * sizes to accept, each ending on a field boundary by construction.
 * Return: 0 or -EINVAL.
 */
int mb_opts_copy(void *dst, size_t dst_sz, const void *src)
{
	const unsigned char *p = src;
	size_t sz, i;

	memset(dst, 0, dst_sz);
	if (!src)
		return 0;
	memcpy(&sz, src, sizeof(sz));
	if (sz < dst_sz)
		return -EINVAL;
	for (i = dst_sz; i < sz; i++)
		if (p[i])
			return -EINVAL;
	memcpy(dst, src, dst_sz);
	memcpy(dst, &dst_sz, sizeof(dst_sz));
	return 0;
}

/**
 * mb_name_copy() - copy a non-empty @name that fits in @len bytes
 * Return: 0, -EINVAL (NULL or empty) or -ENAMETOOLONG.
 */
int mb_name_copy(char *dst, size_t len, const char *name)
{
	size_t n;

	if (!name || !*name)
		return -EINVAL;
	n = strlen(name);
	if (n >= len)
		return -ENAMETOOLONG;
	memcpy(dst, name, n + 1);
	return 0;
}
