// SPDX-License-Identifier: GPL-2.0
/*
 * The library's psi and cgroup sources on a real kernel, where the host
 * tests can only use fake trees: the PSI trigger string is accepted, and
 * in a cgroup v2 with a memory.max the cgroup source finds the limit
 * through /proc/self/cgroup and mountinfo, reports the headroom below it,
 * and goes LOW when the process fills its cgroup and HIGH when it lets go.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "membroker.h"

#define MIB		(1024ULL * 1024)
#define CG_MNT		"/sys/fs/cgroup"
#define CG_DIR		CG_MNT "/mb-lib-test"
#define CG_LIMIT	(128 * MIB)
#define CHUNK		(4 * MIB)
#define DEADLINE_S	30		/* a hang, not a timing requirement */

struct seen {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct mb_notification last;
	uint64_t count;
};

static void on_note(struct mb_monitor *mon, const struct mb_notification *n,
		    void *arg)
{
	struct seen *s = arg;

	(void)mon;
	pthread_mutex_lock(&s->lock);
	s->last = *n;
	s->count++;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

static int wait_state(struct seen *s, uint32_t state,
		      struct mb_notification *out)
{
	struct timespec dl;
	int err = 0;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += DEADLINE_S;
	pthread_mutex_lock(&s->lock);
	while (s->last.state != state && !err)
		err = pthread_cond_timedwait(&s->cond, &s->lock, &dl);
	if (!err)
		*out = s->last;
	pthread_mutex_unlock(&s->lock);
	return err ? -err : 0;
}

static int write_str(const char *path, const char *s)
{
	ssize_t n;
	int fd;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	close(fd);
	return n == (ssize_t)strlen(s) ? 0 : -errno;
}

static int64_t read_u64(const char *path)
{
	char buf[64];
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	return (int64_t)strtoull(buf, NULL, 10);
}

TEST(psi_trigger_accepted)
{
	struct mb_monitor_opts o = MB_OPTS(mb_monitor_opts,
					   .source = MB_SOURCE_PSI);
	struct mb_notification n;
	struct mb_monitor *mon;
	int err;

	if (access("/proc/pressure/memory", F_OK))
		SKIP(return, "no PSI in this kernel (psi=0?)");
	err = mb_monitor_new(&mon, &o);
	ASSERT_EQ(0, err) TH_LOG("mb_monitor_new(psi): %s", strerror(-err));
	ASSERT_EQ(MB_SOURCE_PSI, mb_monitor_source(mon));
	ASSERT_EQ(0, mb_monitor_get_state(mon, &n));
	EXPECT_EQ(MB_SOURCE_PSI, n.source);
	EXPECT_GE(n.state, MB_STATE_LOW);
	EXPECT_LE(n.state, MB_STATE_HIGH);
	EXPECT_GT(n.total, 0);
	EXPECT_GT(n.low, 0);
	EXPECT_LT(n.low, n.high);
	mb_monitor_free(mon);
}

FIXTURE(cgroup) {
	bool mounted;
	bool made;
};

FIXTURE_SETUP(cgroup)
{
	char buf[32];

	self->made = false;
	self->mounted = !mount("none", CG_MNT, "cgroup2", 0, NULL);
	if (!self->mounted && errno != EBUSY)
		SKIP(return, "cannot mount cgroup2: %s", strerror(errno));
	if (write_str(CG_MNT "/cgroup.subtree_control", "+memory"))
		SKIP(return, "no memory controller");
	if (mkdir(CG_DIR, 0755) && errno != EEXIST)
		ASSERT_EQ(0, -errno);
	self->made = true;
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)CG_LIMIT);
	ASSERT_EQ(0, write_str(CG_DIR "/memory.max", buf));
	snprintf(buf, sizeof(buf), "%d", getpid());
	ASSERT_EQ(0, write_str(CG_DIR "/cgroup.procs", buf));
}

FIXTURE_TEARDOWN(cgroup)
{
	char buf[32];

	if (self->made) {
		snprintf(buf, sizeof(buf), "%d", getpid());
		write_str(CG_MNT "/cgroup.procs", buf);
		rmdir(CG_DIR);
	}
	if (self->mounted)
		umount(CG_MNT);
}

TEST_F_TIMEOUT(cgroup, limit_low_high, 90)
{
	struct mb_monitor_opts o = MB_OPTS(mb_monitor_opts,
					   .source = MB_SOURCE_CGROUP);
	struct seen seen = {
		.lock = PTHREAD_MUTEX_INITIALIZER,
		.cond = PTHREAD_COND_INITIALIZER,
	};
	struct mb_notification n, low, high;
	struct mb_monitor *mon;
	size_t used = 0, i, max_chunks = CG_LIMIT / CHUNK;
	char *chunks[CG_LIMIT / CHUNK];
	int64_t current;
	int err;

	err = mb_monitor_new(&mon, &o);
	ASSERT_EQ(0, err) TH_LOG("mb_monitor_new(cgroup): %s", strerror(-err));
	ASSERT_EQ(MB_SOURCE_CGROUP, mb_monitor_source(mon));
	ASSERT_EQ(0, mb_monitor_get_state(mon, &n));
	current = read_u64(CG_DIR "/memory.current");
	ASSERT_LE(0, current);
	TH_LOG("limit %llu MiB, current %lld MiB, available %llu MiB, "
	       "low %llu MiB, high %llu MiB",
	       (unsigned long long)(n.total / MIB),
	       (long long)(current / MIB),
	       (unsigned long long)(n.available / MIB),
	       (unsigned long long)(n.low / MIB),
	       (unsigned long long)(n.high / MIB));
	EXPECT_EQ(CG_LIMIT, n.total);
	EXPECT_LE(n.available, CG_LIMIT);
	EXPECT_GE(n.available + (uint64_t)current, CG_LIMIT - 4 * MIB);
	EXPECT_EQ(MB_STATE_HIGH, n.state);

	ASSERT_LE(0, mb_monitor_subscribe(mon, on_note, &seen));
	ASSERT_EQ(0, mb_monitor_start_thread(mon));

	/* Fill the cgroup until the headroom is below low, and hold. */
	while (used < max_chunks) {
		current = read_u64(CG_DIR "/memory.current");
		ASSERT_LE(0, current);
		if ((uint64_t)current + n.low - 8 * MIB > CG_LIMIT)
			break;
		chunks[used] = mmap(NULL, CHUNK, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		ASSERT_NE(MAP_FAILED, chunks[used]);
		for (i = 0; i < CHUNK; i += 4096)
			chunks[used][i] = 1;
		used++;
	}
	ASSERT_EQ(0, wait_state(&seen, MB_STATE_LOW, &low));
	TH_LOG("LOW at %llu MiB available (low %llu MiB)",
	       (unsigned long long)(low.available / MIB),
	       (unsigned long long)(low.low / MIB));
	EXPECT_LT(low.available, low.low);
	EXPECT_EQ(MB_SOURCE_CGROUP, low.source);

	/* Let go: the headroom comes back and so does HIGH. */
	for (i = 0; i < used; i++)
		munmap(chunks[i], CHUNK);
	ASSERT_EQ(0, wait_state(&seen, MB_STATE_HIGH, &high));
	EXPECT_GT(high.available, high.high);
	mb_monitor_free(mon);
}

TEST_HARNESS_MAIN
