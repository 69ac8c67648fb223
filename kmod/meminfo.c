// SPDX-License-Identifier: GPL-2.0
/*
 * membroker: measuring memory.
 *
 * The same figures /proc/meminfo shows, taken from the kernel directly
 * where it exports them (MemAvailable, MemTotal, Committed_AS) and from
 * /proc/meminfo itself where it does not (CommitLimit: vm_commit_limit(),
 * sysctl_overcommit_*, total_swap_pages and hugetlb_total_pages are not
 * exported to modules in 6.1, 6.12 or 7.x).  The overcommit mode, which
 * decides whether CommitLimit means anything, likewise comes from
 * /proc/sys/vm/overcommit_memory.
 *
 * Those files are opened from init's root directory, not the reading
 * task's: the refresh runs in a kworker, whose root is the kernel's own
 * init_fs.  That is the initramfs on 6.1 (where /proc is not mounted once
 * init has switched root) and an empty filesystem from 7.x on, where
 * "/proc/meminfo" is not found at all.
 */
#include <linux/atomic.h>
#include <linux/fs.h>
#include <linux/fs_struct.h>
#include <linux/path.h>
#include <linux/pid.h>
#include <linux/pid_namespace.h>
#include <linux/sched/task.h>
#include <linux/kernel.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/mmzone.h>
#include <linux/nodemask.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/ktime.h>
#include <linux/workqueue.h>

#include "membroker.h"

#define MB_MEMINFO_PATH		"/proc/meminfo"
#define MB_OVERCOMMIT_PATH	"/proc/sys/vm/overcommit_memory"
#define MB_MEMINFO_BUF_SIZE	PAGE_SIZE

/*
 * CommitLimit only changes with swapon/swapoff, the overcommit sysctls,
 * hugetlb pool size and total memory, so reading it (and the overcommit
 * mode) once a second is plenty.
 */
#define MB_COMMIT_LIMIT_MAX_AGE_NS	NSEC_PER_SEC

/*
 * Reading a file allocates (struct file, the seq_file buffer), which may
 * enter reclaim or fail exactly when memory is short.  So the read runs in
 * its own work item on a workqueue of its own (not WQ_MEM_RECLAIM: it may
 * wait) and only ever updates a cached value: the evaluation, which runs
 * on a WQ_MEM_RECLAIM workqueue, never waits for it.
 */
static struct {
	struct workqueue_struct *wq;
	struct work_struct refresh;
	char *buf;			/* only used by @refresh */
	atomic64_t commit_limit;	/* bytes, 0 until first known */
	atomic_t overcommit;		/* vm.overcommit_memory, -1 unknown */
	atomic64_t requested_ns;	/* when @refresh was last queued */
	bool estimated;			/* @commit_limit is a guess */
	bool stale;			/* the last read of it failed */
} mb_mi;

/* init's root directory, referenced; or -ESRCH before there is an init */
static int mb_meminfo_init_root(struct path *root)
{
	struct task_struct *init;
	int err = -ESRCH;

	rcu_read_lock();
	init = pid_task(find_pid_ns(1, &init_pid_ns), PIDTYPE_PID);
	if (init)
		get_task_struct(init);
	rcu_read_unlock();
	if (!init)
		return err;

	task_lock(init);
	if (init->fs) {
		get_fs_root(init->fs, root);
		err = 0;
	}
	task_unlock(init);
	put_task_struct(init);
	return err;
}

/* The whole of a small text file into @buf, NUL-terminated; or -errno */
static int mb_meminfo_read_file(const char *path, char *buf, size_t size)
{
	struct file *file;
	struct path root;
	loff_t pos = 0;
	size_t len = 0;
	ssize_t n;
	int err;

	err = mb_meminfo_init_root(&root);
	if (err)
		return err;
	file = file_open_root(&root, path, O_RDONLY, 0);
	path_put(&root);
	if (IS_ERR(file))
		return PTR_ERR(file);

	/* seq_file may hand out less than asked for: read until full/EOF */
	do {
		n = kernel_read(file, buf + len, size - 1 - len, &pos);
		if (n > 0)
			len += n;
	} while (n > 0 && len < size - 1);
	filp_close(file, NULL);
	if (n < 0)
		return n;
	buf[len] = '\0';
	return 0;
}

/* CommitLimit from /proc/meminfo, in bytes, or -errno. */
static s64 mb_meminfo_read_commit_limit(char *buf, size_t size)
{
	unsigned long long kb;
	char *p;
	int err;

	err = mb_meminfo_read_file(MB_MEMINFO_PATH, buf, size);
	if (err)
		return err;

	p = strstr(buf, "\nCommitLimit:");
	if (!p || sscanf(p, "\nCommitLimit: %llu kB", &kb) != 1)
		return -EPROTO;
	return (s64)min_t(unsigned long long, kb, S64_MAX >> 10) << 10;
}

/*
 * What vm_commit_limit() returns with the default sysctls (overcommit_ratio
 * 50, no overcommit_kbytes), no swap and no huge pages.  Used only until
 * /proc/meminfo could be read once, e.g. when it is not mounted.
 */
static u64 mb_meminfo_estimate_commit_limit(void)
{
	return ((u64)totalram_pages() / 2) << PAGE_SHIFT;
}

/* vm.overcommit_memory (OVERCOMMIT_*), or -1 if it cannot be read */
static int mb_meminfo_read_overcommit(char *buf, size_t size)
{
	int mode;

	if (mb_meminfo_read_file(MB_OVERCOMMIT_PATH, buf, size) ||
	    kstrtoint(strim(buf), 10, &mode) || mode < 0)
		return -1;
	return mode;
}

static void mb_meminfo_refresh(void)
{
	s64 limit;

	atomic_set(&mb_mi.overcommit,
		   mb_meminfo_read_overcommit(mb_mi.buf, MB_MEMINFO_BUF_SIZE));

	limit = mb_meminfo_read_commit_limit(mb_mi.buf, MB_MEMINFO_BUF_SIZE);
	if (limit > 0) {
		atomic64_set(&mb_mi.commit_limit, limit);
		if (mb_mi.estimated || mb_mi.stale)
			pr_info("CommitLimit read from %s again\n",
				MB_MEMINFO_PATH);
		mb_mi.estimated = false;
		mb_mi.stale = false;
		return;
	}

	/*
	 * Keep the last value read; estimate only if there never was one.
	 * Either way say so, once per failure spell: a CommitLimit that
	 * silently stops following swapon or the sysctls makes VIRTUAL_LOW
	 * wrong without a trace.
	 */
	if (!atomic64_read(&mb_mi.commit_limit)) {
		pr_warn("cannot read %s (%lld), estimating CommitLimit\n",
			MB_MEMINFO_PATH, limit);
		mb_mi.estimated = true;
	} else if (!mb_mi.stale && !mb_mi.estimated) {
		pr_warn("cannot read %s (%lld), keeping the last CommitLimit\n",
			MB_MEMINFO_PATH, limit);
	}
	mb_mi.stale = true;
	if (mb_mi.estimated)
		atomic64_set(&mb_mi.commit_limit,
			     mb_meminfo_estimate_commit_limit());
}

static void mb_meminfo_refresh_work(struct work_struct *work)
{
	mb_meminfo_refresh();
}

/**
 * mb_meminfo_refresh_commit_limit - have CommitLimit read again soon
 * @force:	even if the value is recent (total memory just changed)
 *
 * Asynchronous and cheap; without @force does nothing if the value is
 * recent.
 */
void mb_meminfo_refresh_commit_limit(bool force)
{
	u64 now = ktime_get_ns();
	u64 last = atomic64_read(&mb_mi.requested_ns);

	if (!force && now - last < MB_COMMIT_LIMIT_MAX_AGE_NS)
		return;
	if (atomic64_cmpxchg(&mb_mi.requested_ns, last, now) != last)
		return;
	queue_work(mb_mi.wq, &mb_mi.refresh);
}

/**
 * mb_meminfo_total - MemTotal in bytes
 */
u64 mb_meminfo_total(void)
{
	return (u64)totalram_pages() << PAGE_SHIFT;
}

/**
 * mb_meminfo_wmark_high - the sum of all zones' high watermarks, in bytes
 *
 * This is what high_wmark_pages() adds up, minus the watermark boost: the
 * boost is a temporary bump after fragmentation events that kswapd decays
 * again, and following it would make the automatic thresholds jitter.
 */
u64 mb_meminfo_wmark_high(void)
{
	unsigned long pages = 0;
	int nid, i;

	for_each_online_node(nid) {
		pg_data_t *pgdat = NODE_DATA(nid);

		for (i = 0; i < MAX_NR_ZONES; i++) {
			struct zone *zone = &pgdat->node_zones[i];

			if (!populated_zone(zone))
				continue;
			pages += READ_ONCE(zone->_watermark[WMARK_HIGH]);
		}
	}
	return (u64)pages << PAGE_SHIFT;
}

/**
 * mb_meminfo_sample - measure memory
 * @s:	result, in bytes
 *
 * Never blocks and never allocates, so it may run under memory pressure.
 * CommitLimit and the overcommit mode come from a cache that is refreshed
 * in the background when it is older than a second.
 */
void mb_meminfo_sample(struct mb_sample *s)
{
	s->available = (u64)si_mem_available() << PAGE_SHIFT;
	s->total = mb_meminfo_total();
	s->committed = (u64)vm_memory_committed() << PAGE_SHIFT;
	s->wmark_high = mb_meminfo_wmark_high();
	s->commit_limit = atomic64_read(&mb_mi.commit_limit);
	s->overcommit = atomic_read(&mb_mi.overcommit);
	mb_meminfo_refresh_commit_limit(false);
}

/**
 * mb_meminfo_init - prepare measuring, read CommitLimit and the mode once
 *
 * Return: 0 or -ENOMEM.
 */
int mb_meminfo_init(void)
{
	mb_mi.buf = kmalloc(MB_MEMINFO_BUF_SIZE, GFP_KERNEL);
	if (!mb_mi.buf)
		return -ENOMEM;
	/* Not system_unbound_wq: 7.x deprecates it and warns on use. */
	mb_mi.wq = alloc_workqueue("membroker_meminfo", WQ_UNBOUND, 0);
	if (!mb_mi.wq) {
		kfree(mb_mi.buf);
		mb_mi.buf = NULL;
		return -ENOMEM;
	}

	INIT_WORK(&mb_mi.refresh, mb_meminfo_refresh_work);
	atomic64_set(&mb_mi.commit_limit, 0);
	atomic_set(&mb_mi.overcommit, -1);
	atomic64_set(&mb_mi.requested_ns, ktime_get_ns());
	mb_mi.estimated = false;
	mb_mi.stale = false;
	/* In the loading task's context, so the first value is real. */
	mb_meminfo_refresh();
	return 0;
}

/**
 * mb_meminfo_exit - undo mb_meminfo_init()
 *
 * The caller guarantees mb_meminfo_sample() is no longer called.
 */
void mb_meminfo_exit(void)
{
	cancel_work_sync(&mb_mi.refresh);
	destroy_workqueue(mb_mi.wq);
	mb_mi.wq = NULL;
	kfree(mb_mi.buf);
	mb_mi.buf = NULL;
}
