// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Source "cgroup": memory below the cgroup v2 limit of this process.
 *
 * A process in a limited cgroup runs out of memory at its limit, long
 * before the machine does, so system-wide MemAvailable says nothing useful
 * there.  This source finds the tightest finite limit (memory.max or
 * memory.high, whichever is lower) on the way from the process's cgroup up
 * to the root, and reports for that cgroup:
 *
 *   total     = the limit
 *   available = limit - memory.current + inactive_file (memory.stat),
 *               at most the limit.  Inactive file pages are counted as
 *               available because the kernel reclaims them before it
 *               stalls or OOM-kills inside the cgroup, the way MemAvailable
 *               counts reclaimable page cache.
 *   low/high  = automatic thresholds computed from the limit
 *   flags     = VIRTUAL_LOW from the system's Committed_AS, as the module
 *               sets it (commit limits are not per cgroup, and are only
 *               enforced in overcommit mode 2)
 *
 * memory.events is a kernfs file that raises POLLPRI when a counter
 * changes.  A new high, max, oom or oom_kill event means the cgroup is
 * already reclaiming at its limit, so it makes the state LOW at once; LOW
 * is then held until a full window passes without another event and
 * available is back above low plus hysteresis.  Between events the limit
 * is re-read on an adaptive poll; if it is lifted ("max") the last finite
 * limit stays in force, since the monitor has already chosen this source.
 *
 * Every path is taken under s->opts->root so that tests can run against a
 * fake tree.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "membroker.h"
#include "internal.h"

#define MB_CG_WINDOW_NS		(1000ULL * MB_NSEC_PER_MSEC)
#define MB_CG_DEFAULT_MNT	"/sys/fs/cgroup"

struct mb_src_cgroup {
	char dir[PATH_MAX];	/* the limiting cgroup, relative to root */
	int efd;		/* its memory.events */
	uint64_t limit;
	uint64_t events;	/* high + max + oom + oom_kill so far */
	uint64_t event_ns;	/* when they last grew, 0: never */
	bool evented;
	uint64_t seq;
	struct mb_notification cur;
};

/* Where cgroup2 is mounted, from mountinfo; /sys/fs/cgroup if unknown. */
static void mb_cgroup_mnt(const char *root, char *buf, size_t len)
{
	char text[16384], *line, *save = NULL;

	snprintf(buf, len, "%s", MB_CG_DEFAULT_MNT);
	if (mb_read_file(root, "/proc/self/mountinfo", text,
			 sizeof(text)) < 0)
		return;
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char mnt[PATH_MAX], fstype[64];
		const char *dash = strstr(line, " - ");

		/* id parent major:minor root MOUNTPOINT ... - FSTYPE ... */
		if (!dash || sscanf(dash, " - %63s", fstype) != 1 ||
		    strcmp(fstype, "cgroup2"))
			continue;
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) == 1) {
			snprintf(buf, len, "%s", mnt);
			return;
		}
	}
}

/**
 * mb_cgroup_self_dir() - this process's cgroup v2 directory, relative to
 * @root (e.g. "/sys/fs/cgroup/user.slice/app.scope")
 * Return: 0, -ENOENT without a cgroup v2 entry ("0::/path"), -errno.
 */
int mb_cgroup_self_dir(const char *root, char *buf, size_t len)
{
	char text[4096], mnt[PATH_MAX], *line, *save = NULL;
	int err, n;

	err = mb_read_file(root, "/proc/self/cgroup", text, sizeof(text));
	if (err < 0)
		return err;
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "0::/", 4))
			continue;
		mb_cgroup_mnt(root, mnt, sizeof(mnt));
		/* "0::/" is the root cgroup: no trailing slash wanted */
		n = snprintf(buf, len, "%s%s", mnt,
			     strcmp(line + 3, "/") ? line + 3 : "");
		return n > 0 && (size_t)n < len ? 0 : -ENAMETOOLONG;
	}
	return -ENOENT;
}

/**
 * mb_cgroup_parse_limit() - parse memory.max / memory.high
 * Return: 0 with *out set (UINT64_MAX for "max"), or -EINVAL.
 */
int mb_cgroup_parse_limit(const char *text, uint64_t *out)
{
	unsigned long long v;
	char *end;

	while (*text == ' ' || *text == '\t')
		text++;
	if (!strncmp(text, "max", 3) &&
	    (text[3] == '\0' || text[3] == '\n')) {
		*out = UINT64_MAX;
		return 0;
	}
	if (*text < '0' || *text > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno || (*end != '\0' && *end != '\n'))
		return -EINVAL;
	*out = v;
	return 0;
}

/**
 * mb_cgroup_parse_events() - sum of the memory.events counters that mean
 * the cgroup hit its limit (high, max, oom, oom_kill)
 * Return: 0, or -EINVAL when none of them is there.
 */
int mb_cgroup_parse_events(const char *text, uint64_t *out)
{
	static const char *const keys[] = { "high", "max", "oom",
					    "oom_kill" };
	const char *line = text;
	unsigned long long v;
	char key[32];
	bool any = false;
	size_t i;

	*out = 0;
	while (line && *line) {
		if (sscanf(line, "%31s %llu", key, &v) == 2) {
			for (i = 0; i < MB_ARRAY_SIZE(keys); i++) {
				if (strcmp(key, keys[i]))
					continue;
				*out += v;
				any = true;
			}
		}
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	return any ? 0 : -EINVAL;
}

static int mb_cgroup_read(const char *root, const char *dir,
			  const char *file, char *buf, size_t len)
{
	char path[PATH_MAX];
	int n;

	n = snprintf(path, sizeof(path), "%s/%s", dir, file);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -ENAMETOOLONG;
	return mb_read_file(root, path, buf, len);
}

/* The lower finite one of memory.max and memory.high, or UINT64_MAX. */
static int mb_cgroup_limit(const char *root, const char *dir, uint64_t *out)
{
	static const char *const files[] = { "memory.max", "memory.high" };
	char buf[64];
	uint64_t v;
	size_t i;
	int err;

	*out = UINT64_MAX;
	for (i = 0; i < MB_ARRAY_SIZE(files); i++) {
		err = mb_cgroup_read(root, dir, files[i], buf, sizeof(buf));
		if (err == -ENOENT)
			continue;	/* the root cgroup has neither */
		if (err < 0)
			return err;
		err = mb_cgroup_parse_limit(buf, &v);
		if (err < 0)
			return err;
		*out = MB_MIN(*out, v);
	}
	return 0;
}

/* Find the tightest limit from @dir up to the mount point. */
static int mb_cgroup_find(const char *root, const char *dir, char *found,
			  size_t len, uint64_t *limit)
{
	char cur[PATH_MAX], mnt[PATH_MAX], *slash;
	uint64_t v, best = UINT64_MAX;
	int err;

	mb_cgroup_mnt(root, mnt, sizeof(mnt));
	snprintf(cur, sizeof(cur), "%s", dir);
	for (;;) {
		err = mb_cgroup_limit(root, cur, &v);
		if (err < 0)
			return err;
		if (v < best) {
			best = v;
			snprintf(found, len, "%s", cur);
		}
		if (strlen(cur) <= strlen(mnt))
			break;
		slash = strrchr(cur, '/');
		if (!slash || slash == cur)
			break;
		*slash = '\0';
	}
	if (best == UINT64_MAX)
		return -ENOENT;	/* no limit: let automatic selection go on */
	*limit = best;
	return 0;
}

static int mb_src_cgroup_events(struct mb_src_cgroup *p, uint64_t *out)
{
	char buf[1024];
	ssize_t n;

	/* Reading from the start also re-arms kernfs's POLLPRI. */
	n = pread(p->efd, buf, sizeof(buf) - 1, 0);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return mb_cgroup_parse_events(buf, out);
}

static int mb_src_cgroup_open(struct mb_source *s)
{
	const char *root = s->opts->root;
	char self[PATH_MAX], path[PATH_MAX], abs[PATH_MAX];
	struct mb_src_cgroup *p;
	int err, n;

	err = mb_cgroup_self_dir(root, self, sizeof(self));
	if (err < 0)
		return err;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	err = mb_cgroup_find(root, self, p->dir, sizeof(p->dir), &p->limit);
	if (err < 0)
		goto err_free;

	n = snprintf(path, sizeof(path), "%s/memory.events", p->dir);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		err = -ENAMETOOLONG;
		goto err_free;
	}
	err = mb_path_join(root, path, abs, sizeof(abs));
	if (err < 0)
		goto err_free;
	p->efd = open(abs, O_RDONLY | O_CLOEXEC);
	if (p->efd < 0) {
		err = errno == ENOENT ? -ENOENT :
		      errno == EACCES || errno == EPERM ? -EACCES : -errno;
		goto err_free;
	}
	/* The events so far are history, not news. */
	err = mb_src_cgroup_events(p, &p->events);
	if (err < 0)
		goto err_close;

	s->fd = p->efd;
	s->events = POLLPRI;
	s->priv = p;
	return 0;

err_close:
	close(p->efd);
err_free:
	free(p);
	return err;
}

static int mb_cgroup_u64(const char *root, const char *dir, const char *file,
			 uint64_t *out)
{
	char buf[64];
	int err;

	err = mb_cgroup_read(root, dir, file, buf, sizeof(buf));
	if (err < 0)
		return err;
	err = mb_cgroup_parse_limit(buf, out);
	if (err < 0 || *out == UINT64_MAX)
		return -EINVAL;
	return 0;
}

/* inactive_file of memory.stat; 0 when the file or the key is missing */
static uint64_t mb_cgroup_inactive_file(const char *root, const char *dir)
{
	char buf[8192];
	const char *p;
	unsigned long long v;

	if (mb_cgroup_read(root, dir, "memory.stat", buf, sizeof(buf)) < 0)
		return 0;
	for (p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (sscanf(p, "inactive_file %llu", &v) == 1)
			return v;
	return 0;
}

/**
 * mb_src_cgroup_eval() - one evaluation of the cgroup source at @now_ns
 * Return: as &mb_source_ops.dispatch.
 */
int mb_src_cgroup_eval(struct mb_source *s, uint64_t now_ns,
		       struct mb_notification *out)
{
	const char *root = s->opts->root;
	struct mb_src_cgroup *p = s->priv;
	struct mb_notification n = { 0 };
	struct mb_meminfo mi;
	uint64_t limit, current, events, avail, low, high;
	int err;

	err = mb_src_cgroup_events(p, &events);
	if (err < 0)
		return err;
	/* Counters only grow; a smaller sum is a new cgroup, not news. */
	if (events > p->events) {
		p->event_ns = now_ns;
		p->evented = true;
	}
	p->events = events;
	err = mb_cgroup_limit(root, p->dir, &limit);
	if (err < 0)
		return err;
	if (limit != UINT64_MAX)
		p->limit = limit;
	err = mb_cgroup_u64(root, p->dir, "memory.current", &current);
	if (err < 0)
		return err;

	avail = current < p->limit ? p->limit - current : 0;
	avail += mb_cgroup_inactive_file(root, p->dir);
	avail = MB_MIN(avail, p->limit);
	mb_auto_thresholds(p->limit, &low, &high);

	n.time_ns = now_ns;
	n.source = MB_SOURCE_CGROUP;
	n.available = avail;
	n.total = p->limit;
	n.low = low;
	n.high = high;
	if (mb_meminfo_read(root, &mi) >= 0) {
		n.committed = mi.committed;
		n.commit_limit = mi.commit_limit;
		n.flags = mb_virtual_flags(&mi);
	}
	n.state = mb_classify(avail, low, high, p->cur.state);
	if (p->evented && now_ns - p->event_ns < MB_CG_WINDOW_NS)
		n.state = MB_STATE_LOW;

	if (!mb_notification_news(&n, &s->last)) {
		n.seq = p->seq;
		p->cur = n;
		*out = n;
		return 0;
	}
	n.seq = ++p->seq;
	p->cur = n;
	*out = n;
	return 1;
}

static int mb_src_cgroup_dispatch(struct mb_source *s,
				  struct mb_notification *out)
{
	return mb_src_cgroup_eval(s, mb_now_ns(), out);
}

static int mb_src_cgroup_timeout(struct mb_source *s)
{
	struct mb_src_cgroup *p = s->priv;
	uint64_t now, left_ms;
	int ms;

	ms = mb_poll_interval_ms(p->cur.available, p->cur.low);
	if (!p->evented)
		return ms;
	now = mb_now_ns();
	if (now - p->event_ns >= MB_CG_WINDOW_NS)
		return ms;
	/* Re-evaluate when the window that holds LOW ends. */
	left_ms = (MB_CG_WINDOW_NS - (now - p->event_ns) +
		   MB_NSEC_PER_MSEC - 1) / MB_NSEC_PER_MSEC;
	return (int)MB_MIN((uint64_t)ms, left_ms);
}

static void mb_src_cgroup_close(struct mb_source *s)
{
	struct mb_src_cgroup *p = s->priv;

	if (!p)
		return;
	close(p->efd);
	free(p);
	s->priv = NULL;
	s->fd = -1;
}

const struct mb_source_ops mb_source_cgroup_ops = {
	.type = MB_SOURCE_CGROUP,
	.name = "cgroup",
	.open = mb_src_cgroup_open,
	.dispatch = mb_src_cgroup_dispatch,
	.timeout_ms = mb_src_cgroup_timeout,
	.close = mb_src_cgroup_close,
};
