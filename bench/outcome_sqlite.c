// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * outcome's second application: SQLite with its page cache held the way
 * examples/sqlite-cache holds it.  The database is on a read-only disk
 * (a virtio-blk device the host made with --make-db), so that the page
 * cache really is a cache: what SQLite drops it reads again from the
 * disk.  The application fills its page cache to the size asked, then
 * answers point lookups (QUERIES_PER_TICK every 10 ms, among the rows it
 * cached) for as long as it lives.
 *
 * Its reactions are those of the mb_cache application:
 *   none   nothing
 *   psi    the PSI trigger empties the page cache
 *          (sqlite3_db_release_memory(), then malloc_trim()), what a GLib
 *          low-memory-warning handler of an SQLite program would do; the
 *          cache then grows back as queries miss, with no limit
 *   poll   the 100 ms poller's notifications go to a broker
 *   kmod   the module's, through libmembroker's monitor
 * and in poll and kmod the page cache is the example's clerk: its charge
 * follows sqlite3_memory_used(), its shrink callback lowers SQLite's soft
 * heap limit to the broker's target for it and empties the cache, and a
 * target lifted on HIGH lifts the limit.  As in the example, everything
 * runs on one thread: notifications are dispatched between query
 * batches, so SQLite and the shrink callback never overlap.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/fs.h>
#include <malloc.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "outcome.h"
#include "vmbench.h"

#define PAYLOAD			1000	/* four rows to a 4 KiB page */
#define FILL_CHUNK		2000	/* rows per range query of the fill */
#define QUERIES_PER_TICK	20
#define TICK_MS			10
#define POLL_MS			100
/* the soft heap limit is never set below this: SQLite must keep working */
#define MIN_SOFT_LIMIT		(1LL << 20)
/* a smaller drop of SQLite's heap is statement churn, not a release */
#define RELEASE_MIN		(256ULL << 10)

/*
 * A VFS over the default one that knows the size of a block device:
 * SQLite asks fstat(), which says 0 for a device, and would take the
 * database for empty.  Everything else goes to the default VFS.
 */
struct blk_file {
	sqlite3_file base;
	sqlite3_int64 size;	/* of the device, or -1: ask the real file */
	sqlite3_file *real;	/* the default VFS's file, right after us */
};

static sqlite3_vfs *base_vfs;
static sqlite3_vfs blk_vfs;

#define REAL(f) (((struct blk_file *)(f))->real)

static int bf_close(sqlite3_file *f)
{
	return REAL(f)->pMethods->xClose(REAL(f));
}

static int bf_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
	return REAL(f)->pMethods->xRead(REAL(f), buf, n, off);
}

static int bf_write(sqlite3_file *f, const void *buf, int n,
		    sqlite3_int64 off)
{
	return REAL(f)->pMethods->xWrite(REAL(f), buf, n, off);
}

static int bf_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	return REAL(f)->pMethods->xTruncate(REAL(f), size);
}

static int bf_sync(sqlite3_file *f, int flags)
{
	return REAL(f)->pMethods->xSync(REAL(f), flags);
}

static int bf_size(sqlite3_file *f, sqlite3_int64 *size)
{
	struct blk_file *b = (struct blk_file *)f;

	if (b->size >= 0) {
		*size = b->size;
		return SQLITE_OK;
	}
	return b->real->pMethods->xFileSize(b->real, size);
}

static int bf_lock(sqlite3_file *f, int l)
{
	return REAL(f)->pMethods->xLock(REAL(f), l);
}

static int bf_unlock(sqlite3_file *f, int l)
{
	return REAL(f)->pMethods->xUnlock(REAL(f), l);
}

static int bf_reserved(sqlite3_file *f, int *out)
{
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}

static int bf_control(sqlite3_file *f, int op, void *arg)
{
	return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}

static int bf_sector(sqlite3_file *f)
{
	return REAL(f)->pMethods->xSectorSize(REAL(f));
}

static int bf_caps(sqlite3_file *f)
{
	return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

/* version 1: no shared memory (no WAL), no mmap */
static const sqlite3_io_methods blk_io = {
	.iVersion = 1,
	.xClose = bf_close,
	.xRead = bf_read,
	.xWrite = bf_write,
	.xTruncate = bf_truncate,
	.xSync = bf_sync,
	.xFileSize = bf_size,
	.xLock = bf_lock,
	.xUnlock = bf_unlock,
	.xCheckReservedLock = bf_reserved,
	.xFileControl = bf_control,
	.xSectorSize = bf_sector,
	.xDeviceCharacteristics = bf_caps,
};

static int bf_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f,
		   int flags, int *out_flags)
{
	struct blk_file *b = (struct blk_file *)f;
	struct stat st;
	uint64_t sz;
	int rc, fd;

	(void)vfs;
	b->real = (sqlite3_file *)(b + 1);
	b->size = -1;
	rc = base_vfs->xOpen(base_vfs, name, b->real, flags, out_flags);
	if (rc != SQLITE_OK) {
		b->base.pMethods = NULL;
		return rc;
	}
	if (name && !stat(name, &st) && S_ISBLK(st.st_mode)) {
		fd = open(name, O_RDONLY | O_CLOEXEC);
		if (fd >= 0 && !ioctl(fd, BLKGETSIZE64, &sz))
			b->size = (sqlite3_int64)sz;
		if (fd >= 0)
			close(fd);
	}
	b->base.pMethods = &blk_io;
	return SQLITE_OK;
}

static int blk_vfs_register(void)
{
	base_vfs = sqlite3_vfs_find(NULL);
	if (!base_vfs)
		return -ENOENT;
	blk_vfs = *base_vfs;
	blk_vfs.pNext = NULL;
	blk_vfs.zName = "mb-blk";
	blk_vfs.szOsFile = (int)sizeof(struct blk_file) + base_vfs->szOsFile;
	blk_vfs.xOpen = bf_open;
	return sqlite3_vfs_register(&blk_vfs, 0) == SQLITE_OK ? 0 : -EIO;
}

/* The first virtio disk that holds an SQLite database */
static const char *find_db(void)
{
	static const char *const devs[] = {
		"/dev/vda", "/dev/vdb", "/dev/vdc", "/dev/vdd",
	};
	char head[16];
	unsigned int i;
	int fd;
	bool hit;

	for (i = 0; i < sizeof(devs) / sizeof(devs[0]); i++) {
		fd = open(devs[i], O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		hit = read(fd, head, sizeof(head)) == sizeof(head) &&
		      !memcmp(head, "SQLite format 3", 16);
		close(fd);
		if (hit)
			return devs[i];
	}
	return NULL;
}

struct sq_app {
	sqlite3 *db;
	sqlite3_stmt *point;
	uint64_t rows;		/* rows cached by the fill: queries stay there */
	uint64_t rnd;
	struct mb_monitor *mon;
	struct mb_broker *b;
	struct mb_clerk *clerk;
	uint64_t charged;	/* what the clerk holds for us */
	int64_t orig_limit;	/* soft heap limit before we touched it */
	int64_t limit;		/* soft heap limit now */
	uint64_t last_bytes;
};

static uint64_t heap(void)
{
	sqlite3_int64 used = sqlite3_memory_used();

	return used > 0 ? (uint64_t)used : 0;
}

/* A drop of RELEASE_MIN or more is a release; the minimum is kept */
static void note_heap(struct sq_app *a)
{
	uint64_t now = heap();

	if (now + RELEASE_MIN <= a->last_bytes || now > a->last_bytes) {
		note_bytes_now(now);
		a->last_bytes = now;
	}
}

/* ---- the example's clerk (examples/sqlite-cache) ---- */

static int sync_charge(struct sq_app *a)
{
	uint64_t now = heap();
	int err = 0;

	if (now > a->charged)
		err = mb_clerk_charge(a->clerk, now - a->charged);
	else if (now < a->charged)
		err = mb_clerk_uncharge(a->clerk, a->charged - now);
	if (err < 0)
		return err;
	a->charged = now;
	return 0;
}

static void set_limit(struct sq_app *a, int64_t limit)
{
	if (limit == a->limit)
		return;
	sqlite3_soft_heap_limit64(limit);
	a->limit = limit;
}

/* The soft heap limit is the clerk's target while memory is taken back */
static void lower_limit(struct sq_app *a)
{
	uint64_t target = mb_clerk_target(a->clerk);
	int64_t want;

	if (target == UINT64_MAX || target > INT64_MAX)
		return;
	want = (int64_t)target < MIN_SOFT_LIMIT ? MIN_SOFT_LIMIT :
						   (int64_t)target;
	/* 0 is "no limit" to SQLite */
	if (a->limit && a->limit <= want)
		return;
	set_limit(a, want);
}

/* HIGH lifted the target (no max_bytes): the limit goes back with it */
static void follow_target(struct sq_app *a)
{
	if (a->clerk && a->limit != a->orig_limit &&
	    mb_clerk_target(a->clerk) == UINT64_MAX)
		set_limit(a, a->orig_limit);
}

static int64_t shrink_cb(struct mb_clerk *clerk, uint64_t bytes, void *arg)
{
	struct sq_app *a = arg;
	uint64_t before = heap(), after;
	int err;

	(void)clerk;
	(void)bytes;
	/* first cap the cache so that it cannot grow straight back */
	lower_limit(a);
	sqlite3_db_release_memory(a->db);
	after = heap();
	err = sync_charge(a);
	if (err < 0)
		return err;
	note_heap(a);
	return (int64_t)(before > after ? before - after : 0);
}

static void on_note(struct mb_monitor *mon, const struct mb_notification *n,
		    void *arg)
{
	(void)mon;
	(void)arg;
	if (n->state == MB_STATE_LOW)
		warned();
}

/* ---- the database ---- */

static int exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		fprintf(stderr, "outcome: %s: %s\n", sql, msg ? msg : "error");
		sqlite3_free(msg);
		return -EIO;
	}
	return 0;
}

static uint64_t next_rand(struct sq_app *a)
{
	a->rnd ^= a->rnd << 13;
	a->rnd ^= a->rnd >> 7;
	a->rnd ^= a->rnd << 17;
	return a->rnd;
}

/* Range queries over the rows until SQLite's heap holds @bytes */
static int fill(struct sq_app *a, uint64_t bytes)
{
	sqlite3_stmt *s = NULL, *mx = NULL;
	uint64_t id, nrows = 0;
	int err = -EIO;

	if (sqlite3_prepare_v2(a->db, "SELECT max(id) FROM t;", -1, &mx,
			       NULL) != SQLITE_OK ||
	    sqlite3_step(mx) != SQLITE_ROW)
		goto out;
	nrows = (uint64_t)sqlite3_column_int64(mx, 0);
	if (sqlite3_prepare_v2(a->db, "SELECT count(*), sum(length(payload)) FROM t WHERE id BETWEEN ?1 AND ?2;",
			       -1, &s, NULL) != SQLITE_OK)
		goto out;
	for (id = 1; id <= nrows && heap() < bytes; id += FILL_CHUNK) {
		sqlite3_bind_int64(s, 1, (sqlite3_int64)id);
		sqlite3_bind_int64(s, 2, (sqlite3_int64)(id + FILL_CHUNK - 1));
		if (sqlite3_step(s) != SQLITE_ROW)
			goto out;
		sqlite3_reset(s);
	}
	a->rows = id - 1 < nrows ? id - 1 : nrows;
	/* a database too small for the cache asked is an error, not a run */
	err = heap() >= bytes && a->rows ? 0 : -ENOSPC;
out:
	sqlite3_finalize(s);
	sqlite3_finalize(mx);
	return err;
}

static int open_db(struct sq_app *a, const char *db, uint64_t bytes)
{
	char uri[128], sql[96];

	if (!strcmp(db, "auto"))
		db = find_db();
	if (!db || blk_vfs_register() < 0)
		return -ENOENT;
	/* immutable: read-only media, no locks, no change detection */
	snprintf(uri, sizeof(uri), "file:%s?immutable=1", db);
	if (sqlite3_open_v2(uri, &a->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI,
			    "mb-blk") != SQLITE_OK)
		return -EIO;
	/* room for all of it: the fill decides how much is cached */
	snprintf(sql, sizeof(sql),
		 "PRAGMA cache_size=-%llu; PRAGMA mmap_size=0;",
		 (unsigned long long)(bytes / 1024 * 2));
	if (exec(a->db, sql))
		return -EIO;
	if (fill(a, bytes) < 0)
		return -ENOSPC;
	if (sqlite3_prepare_v2(a->db, "SELECT length(payload) FROM t WHERE id = ?1;",
			       -1, &a->point, NULL) != SQLITE_OK)
		return -EIO;
	return 0;
}

static void queries(struct sq_app *a)
{
	uint64_t id, ok = 0, bad = 0;
	int i;

	for (i = 0; i < QUERIES_PER_TICK; i++) {
		id = 1 + next_rand(a) % a->rows;
		sqlite3_bind_int64(a->point, 1, (sqlite3_int64)id);
		if (sqlite3_step(a->point) == SQLITE_ROW &&
		    sqlite3_column_int(a->point, 0) == PAYLOAD)
			ok++;
		else
			bad++;
		sqlite3_reset(a->point);
	}
	if (atomic_load(&sh->job_started)) {
		atomic_fetch_add(&sh->queries, ok);
		atomic_fetch_add(&sh->query_errors, bad);
	}
}

void __attribute__((noreturn)) sqlite_app_main(int reaction, uint64_t bytes,
					       const char *db)
{
	struct mb_clerk_opts co = { .sz = sizeof(co), .shrink = shrink_cb,
				    .priority = 50 };
	struct pollfd pfd = { .fd = -1 };
	struct sq_app a = { .rnd = 0x2545f4914f6cdd1dULL };
	struct poll_rule pr = { .state = MB_STATE_STEADY };
	struct mb_notification n;
	uint64_t next_poll = 0;
	int mfd = -1;

	co.arg = &a;
	a.orig_limit = sqlite3_soft_heap_limit64(-1);
	a.limit = a.orig_limit;
	if (open_db(&a, db, bytes) < 0)
		_exit(30);

	if (reaction == R_KMOD || reaction == R_POLL) {
		struct mb_broker_opts bo = { .sz = sizeof(bo), .trim = true };

		if (reaction == R_KMOD) {
			struct mb_monitor_opts mo = {
				.sz = sizeof(mo), .source = MB_SOURCE_KMOD,
			};

			/*
			 * Subscribers hear in the order they came: the warning
			 * is taken before the broker's shrink it causes
			 */
			if (mb_monitor_new(&a.mon, &mo) < 0 ||
			    mb_monitor_subscribe(a.mon, on_note, NULL) < 0)
				_exit(31);
		}
		if (mb_broker_new(&a.b, "outcome", a.mon, &bo) < 0 ||
		    mb_clerk_new(&a.clerk, "sqlite-pagecache", &co) < 0 ||
		    mb_broker_add_clerk(a.b, a.clerk) < 0 ||
		    sync_charge(&a) < 0)
			_exit(32);
		if (a.mon) {
			pfd.fd = mb_monitor_get_fd(a.mon);
			pfd.events = POLLIN;
		} else {
			mfd = open("/proc/meminfo", O_RDONLY | O_CLOEXEC);
			if (mfd < 0)
				_exit(34);
			next_poll = vb_now_ns();
		}
	} else if (reaction == R_PSI) {
		pfd.fd = open("/proc/pressure/memory",
			      O_RDWR | O_NONBLOCK | O_CLOEXEC);
		pfd.events = POLLPRI;
		if (pfd.fd < 0 || write(pfd.fd, psi_trigger,
					strlen(psi_trigger) + 1) < 0)
			_exit(35);
	}
	/* what it holds once its statements are prepared and run */
	queries(&a);
	a.last_bytes = heap();
	atomic_store(&sh->initial, a.last_bytes);
	note_bytes_now(a.last_bytes);
	atomic_store(&sh->ready, 1);
	for (;;) {
		if (pfd.fd >= 0) {
			if (poll(&pfd, 1, TICK_MS) > 0) {
				if (reaction == R_KMOD &&
				    (pfd.revents & POLLIN)) {
					if (mb_monitor_dispatch(a.mon) < 0)
						_exit(36);
					follow_target(&a);
				} else if (pfd.revents & POLLPRI) {
					warned();
					/* all of it, as on a GLib warning */
					sqlite3_db_release_memory(a.db);
					malloc_trim(0);
				}
			}
		} else {
			vb_sleep_ms(TICK_MS);
		}
		if (mfd >= 0 && vb_now_ns() >= next_poll) {
			next_poll += POLL_MS * NSEC_PER_MSEC;
			if (poll_rule_step(&pr, vb_avail(mfd), &n)) {
				if (n.state == MB_STATE_LOW)
					warned();
				mb_broker_notify(a.b, &n);
				follow_target(&a);
			}
		}
		queries(&a);
		if (a.clerk && sync_charge(&a) < 0)
			_exit(37);
		note_heap(&a);
	}
}

int sqlite_make_db(const char *path, unsigned int mib)
{
	uint64_t rows = (uint64_t)mib * (MIB / 4096) * 4, id;
	char tmp[512], payload[PAYLOAD];
	sqlite3_stmt *ins = NULL;
	sqlite3 *db = NULL;
	int err = -EIO;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	unlink(tmp);
	if (sqlite3_open(tmp, &db) != SQLITE_OK ||
	    exec(db, "PRAGMA page_size=4096; PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;") ||
	    exec(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, payload BLOB);") ||
	    exec(db, "BEGIN;") ||
	    sqlite3_prepare_v2(db, "INSERT INTO t VALUES(?1, ?2);", -1, &ins,
			       NULL) != SQLITE_OK)
		goto out;
	for (id = 1; id <= rows; id++) {
		memset(payload, 'a' + (int)(id % 26), sizeof(payload));
		sqlite3_bind_int64(ins, 1, (sqlite3_int64)id);
		sqlite3_bind_blob(ins, 2, payload, sizeof(payload),
				  SQLITE_STATIC);
		if (sqlite3_step(ins) != SQLITE_DONE)
			goto out;
		sqlite3_reset(ins);
	}
	if (exec(db, "COMMIT;"))
		goto out;
	err = 0;
out:
	if (err && db)
		fprintf(stderr, "outcome: %s: %s\n", tmp, sqlite3_errmsg(db));
	sqlite3_finalize(ins);
	sqlite3_close(db);
	if (!err && rename(tmp, path) < 0)
		err = -errno;
	return err;
}
