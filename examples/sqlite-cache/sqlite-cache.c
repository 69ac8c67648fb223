// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * sqlite-cache: an SQLite page cache that gives memory back when the
 * system runs low, and takes it again when memory is plentiful.
 *
 * SQLite keeps recently used database pages in its page cache (here up to
 * 64 MiB, PRAGMA cache_size).  That memory is pure cache: dropping it costs
 * only re-reads.  The program registers a clerk "sqlite-pagecache" in a
 * broker driven by a resource monitor:
 *   - the clerk's charge follows sqlite3_memory_used(), sampled after every
 *     query batch (SQLite allocates on its own; we only learn the total);
 *   - when the broker asks for memory back, the shrink callback empties the
 *     page cache with sqlite3_db_release_memory();
 *   - SQLite's soft heap limit follows the clerk's target, so while memory
 *     is low the cache recycles its pages instead of growing back, and
 *     when HIGH lifts the target (the broker has no max_bytes) the limit
 *     is lifted with it and the cache regrows.
 *
 * Everything runs on one thread: SQLite calls and the shrink callback
 * (which runs inside mb_monitor_dispatch()) never overlap.
 *
 * Usage: sqlite-cache [options]    (see usage() below)
 *   --fake-steps N:LOW:HIGH  runs N query batches on the fake source, with
 *   a LOW notification after batch LOW and a HIGH one after batch HIGH, and
 *   prints "key=value" summary lines for examples/sqlite-cache/test.sh.
 */
#ifndef _GNU_SOURCE	/* g++ defines it */
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>
#include <membroker.h>

#define MIB			(1024.0 * 1024.0)
#define RANGE_ROWS		100
/* one range scan per this many point lookups */
#define RANGE_EVERY		25
/* the soft heap limit is never set below this: SQLite must keep working */
#define MIN_SOFT_LIMIT		(1LL << 20)
#define NSEC_PER_SEC		1000000000ULL

struct config {
	const char *db_path;
	const char *source;
	uint64_t rows;
	unsigned int payload;
	unsigned int cache_mib;
	unsigned int batch;
	unsigned int seconds;
	uint64_t low_mib, high_mib;
	bool keep;
	/* print CLOCK_MONOTONIC times, to line up with other programs */
	bool monotonic;
	/* --fake-steps */
	unsigned int steps, low_at, high_at;
};

struct app {
	struct config cfg;
	sqlite3 *db;
	sqlite3_stmt *point, *range;
	struct mb_monitor *mon;
	struct mb_broker *broker;
	struct mb_clerk *clerk;
	uint64_t start_ns;
	uint64_t rand_state;

	uint64_t charged;	/* what the clerk holds for us */
	int64_t orig_limit;	/* soft heap limit before we touched it */
	int64_t limit;		/* soft heap limit now */
	uint32_t state;		/* latest state from the monitor */

	uint64_t queries;
	uint64_t errors;
	uint64_t low_events, high_events;
	uint64_t shrinks;
	uint64_t released;	/* bytes given back by all shrinks */
	uint64_t released_on_low;
	uint64_t cache_before_release;	/* cache bytes before the last shrink */
	uint64_t cache_after_release;	/* and right after it */
	/*
	 * The process's resident memory before the last shrink, and once
	 * the broker is done with it (it trims the heap after shrinking):
	 * whether the pages really went back to the system.
	 */
	uint64_t rss_before_release;
	uint64_t rss_after_release;
	bool rss_pending;		/* a shrink awaits its "after" */
	int64_t low_limit;	/* lowest soft heap limit set */
	uint64_t restores;	/* times the limit was lifted */

	/* peaks per phase, for "did the cache regrow" */
	uint64_t cache_peak_before_low;
	uint64_t cache_peak_low;	/* from the first shrink to a restore */
	uint64_t cache_peak_restored;	/* after the limit was lifted */
	uint64_t heap_peak_restored;
	uint64_t queries_low;		/* queries completed while limited */
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

static double elapsed_s(const struct app *a)
{
	uint64_t base = a->cfg.monotonic ? 0 : a->start_ns;

	return (double)(now_ns() - base) / (double)NSEC_PER_SEC;
}

/* xorshift64: a fixed seed makes every run issue the same queries */
static uint64_t next_rand(struct app *a)
{
	a->rand_state ^= a->rand_state << 13;
	a->rand_state ^= a->rand_state >> 7;
	a->rand_state ^= a->rand_state << 17;
	return a->rand_state;
}

/* Each row's payload length follows from its id, so lookups can check it. */
static int payload_len(const struct config *cfg, uint64_t id)
{
	return (int)cfg->payload / 2 + (int)((id * 7919) % cfg->payload);
}

static uint64_t cache_bytes(struct app *a)
{
	int cur = 0, hi = 0;

	if (sqlite3_db_status(a->db, SQLITE_DBSTATUS_CACHE_USED, &cur, &hi,
			      0) != SQLITE_OK)
		return 0;
	return cur > 0 ? (uint64_t)cur : 0;
}

static uint64_t heap_bytes(void)
{
	sqlite3_int64 used = sqlite3_memory_used();

	return used > 0 ? (uint64_t)used : 0;
}

static uint64_t rss_bytes(void)
{
	unsigned long long size = 0, res = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		return 0;
	if (fscanf(f, "%llu %llu", &size, &res) != 2)
		res = 0;
	fclose(f);
	return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* ---- accounting: the clerk follows SQLite's own total ---- */

static int sync_charge(struct app *a)
{
	uint64_t now = heap_bytes();
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

static void set_limit(struct app *a, int64_t limit)
{
	if (limit == a->limit)
		return;
	sqlite3_soft_heap_limit64(limit);
	a->limit = limit;
}

/*
 * While the broker takes memory back, SQLite's soft heap limit is its
 * target for the clerk, so that the cache recycles pages instead of
 * growing straight back.  Only ever lowered here.
 */
static void lower_limit(struct app *a)
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
	if (!a->low_limit || want < a->low_limit)
		a->low_limit = want;
}

/*
 * Once memory is plentiful again, HIGH lifts the clerk's target (a broker
 * without max_bytes lets its clerks grow until the state changes), and
 * the limit goes back to what it was before we touched it.  STEADY holds
 * the target where it is, and the limit stays.  (In a pool with max_bytes
 * HIGH would raise the target to a share of it instead, and the limit
 * would follow that.)
 */
static void follow_target(struct app *a)
{
	if (a->limit == a->orig_limit ||
	    mb_clerk_target(a->clerk) != UINT64_MAX)
		return;
	a->restores++;
	printf("%8.1f  target lifted: soft heap limit %.1f MiB lifted\n",
	       elapsed_s(a), (double)a->limit / MIB);
	set_limit(a, a->orig_limit);
}

static int64_t shrink_cb(struct mb_clerk *clerk, uint64_t bytes, void *arg)
{
	struct app *a = (struct app *)arg;
	uint64_t before = heap_bytes(), after, freed;
	uint64_t cache_before = cache_bytes(a);
	struct mb_notification st;
	int err;

	(void)clerk;
	a->rss_before_release = rss_bytes();
	a->rss_pending = true;
	/* first cap the cache so that it cannot grow straight back */
	lower_limit(a);
	sqlite3_db_release_memory(a->db);
	after = heap_bytes();
	freed = before > after ? before - after : 0;
	err = sync_charge(a);
	if (err < 0)
		return err;

	a->shrinks++;
	a->released += freed;
	/*
	 * The broker may run before our own subscriber has seen the
	 * notification: ask the monitor what the state is now.
	 */
	if (mb_monitor_get_state(a->mon, &st) >= 0 &&
	    st.state == MB_STATE_LOW)
		a->released_on_low += freed;
	a->cache_before_release = cache_before;
	a->cache_after_release = cache_bytes(a);
	printf("%8.1f  shrink: asked %.1f MiB, released %.1f MiB, cache %.1f -> %.1f MiB, soft limit %.1f MiB\n",
	       elapsed_s(a), (double)bytes / MIB, (double)freed / MIB,
	       (double)cache_before / MIB,
	       (double)a->cache_after_release / MIB, (double)a->limit / MIB);
	return (int64_t)freed;
}

static void on_notification(struct mb_monitor *mon,
			    const struct mb_notification *n, void *arg)
{
	struct app *a = (struct app *)arg;

	(void)mon;
	/* every one counts: a LOW repeated while it lasts is another step */
	if (n->state == MB_STATE_LOW)
		a->low_events++;
	/* subscribed after the broker: its shrink and trim are done */
	if (a->rss_pending) {
		a->rss_after_release = rss_bytes();
		a->rss_pending = false;
	}
	if (n->state == MB_STATE_HIGH)
		a->high_events++;
	a->state = n->state;
	printf("%8.1f  event: %s, available %.1f MiB (low %.1f, high %.1f) from %s\n",
	       elapsed_s(a), mb_state_name(n->state),
	       (double)n->available / MIB, (double)n->low / MIB,
	       (double)n->high / MIB, mb_source_name(n->source));
}

/* ---- the database ---- */

static int exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		fprintf(stderr, "sqlite-cache: %s: %s\n", sql,
			msg ? msg : "error");
		sqlite3_free(msg);
		return -EIO;
	}
	return 0;
}

static int fill(struct app *a)
{
	const struct config *cfg = &a->cfg;
	char *text = (char *)malloc(cfg->payload * 2 + 1);
	sqlite3_stmt *ins = NULL;
	uint64_t id;
	int len, i, err = -EIO;

	if (!text)
		return -ENOMEM;
	if (exec(a->db, "CREATE TABLE t(id INTEGER PRIMARY KEY, payload TEXT);") ||
	    exec(a->db, "BEGIN;"))
		goto out;
	if (sqlite3_prepare_v2(a->db, "INSERT INTO t VALUES(?1, ?2);", -1,
			       &ins, NULL) != SQLITE_OK)
		goto out;
	for (id = 1; id <= cfg->rows; id++) {
		len = payload_len(cfg, id);
		for (i = 0; i < len; i++)
			text[i] = (char)('a' + (next_rand(a) % 26));
		sqlite3_bind_int64(ins, 1, (sqlite3_int64)id);
		sqlite3_bind_text(ins, 2, text, len, SQLITE_STATIC);
		if (sqlite3_step(ins) != SQLITE_DONE)
			goto out;
		sqlite3_reset(ins);
	}
	if (exec(a->db, "COMMIT;"))
		goto out;
	err = 0;
out:
	if (err)
		fprintf(stderr, "sqlite-cache: fill: %s\n", sqlite3_errmsg(a->db));
	sqlite3_finalize(ins);
	free(text);
	return err;
}

static int open_db(struct app *a)
{
	char sql[64];
	int err;

	/* a fresh database each run: the fill is part of the experiment */
	unlink(a->cfg.db_path);
	if (sqlite3_open(a->cfg.db_path, &a->db) != SQLITE_OK) {
		fprintf(stderr, "sqlite-cache: open %s: %s\n", a->cfg.db_path,
			a->db ? sqlite3_errmsg(a->db) : "out of memory");
		return -EIO;
	}
	/*
	 * No journal and no fsync: the data is throw-away.  mmap stays off
	 * so that every read goes through the page cache being measured.
	 */
	err = exec(a->db, "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA mmap_size=0;");
	if (err)
		return err;
	err = fill(a);
	if (err)
		return err;
	/* drop what the fill cached: the workload starts cold */
	sqlite3_db_release_memory(a->db);
	snprintf(sql, sizeof(sql), "PRAGMA cache_size=-%u;",
		 a->cfg.cache_mib * 1024);
	err = exec(a->db, sql);
	if (err)
		return err;
	if (sqlite3_prepare_v2(a->db, "SELECT payload FROM t WHERE id = ?1;",
			       -1, &a->point, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(a->db,
			       "SELECT count(*), sum(length(payload)) FROM t WHERE id BETWEEN ?1 AND ?1 + 99;",
			       -1, &a->range, NULL) != SQLITE_OK) {
		fprintf(stderr, "sqlite-cache: prepare: %s\n",
			sqlite3_errmsg(a->db));
		return -EIO;
	}
	return 0;
}

/* One point lookup; counts an error if the row is missing or wrong. */
static void point_lookup(struct app *a)
{
	uint64_t id = 1 + next_rand(a) % a->cfg.rows;
	int rc;

	sqlite3_bind_int64(a->point, 1, (sqlite3_int64)id);
	rc = sqlite3_step(a->point);
	if (rc != SQLITE_ROW ||
	    sqlite3_column_bytes(a->point, 0) != payload_len(&a->cfg, id))
		a->errors++;
	else
		a->queries++;
	sqlite3_reset(a->point);
}

static void range_scan(struct app *a)
{
	uint64_t start = 1 + next_rand(a) % a->cfg.rows, want;
	int rc;

	want = a->cfg.rows - start + 1;
	if (want > RANGE_ROWS)
		want = RANGE_ROWS;
	sqlite3_bind_int64(a->range, 1, (sqlite3_int64)start);
	rc = sqlite3_step(a->range);
	if (rc != SQLITE_ROW ||
	    (uint64_t)sqlite3_column_int64(a->range, 0) != want)
		a->errors++;
	else
		a->queries++;
	sqlite3_reset(a->range);
}

static void note_peaks(struct app *a)
{
	uint64_t cache = cache_bytes(a), heap = heap_bytes();

	if (!a->shrinks) {
		if (cache > a->cache_peak_before_low)
			a->cache_peak_before_low = cache;
	} else if (!a->restores) {
		if (cache > a->cache_peak_low)
			a->cache_peak_low = cache;
	} else {
		if (cache > a->cache_peak_restored)
			a->cache_peak_restored = cache;
		if (heap > a->heap_peak_restored)
			a->heap_peak_restored = heap;
	}
}

static int run_batch(struct app *a)
{
	uint64_t before = a->queries;
	unsigned int i;

	for (i = 0; i < a->cfg.batch; i++) {
		if (i % RANGE_EVERY == RANGE_EVERY - 1)
			range_scan(a);
		else
			point_lookup(a);
	}
	if (a->shrinks && !a->restores)
		a->queries_low += a->queries - before;
	note_peaks(a);
	return sync_charge(a);
}

/* ---- driving it ---- */

static void print_status(struct app *a, const char *when)
{
	printf("%8.1f  %-9s state %-7s cache %6.1f MiB  heap %6.1f MiB  ",
	       elapsed_s(a), when, mb_state_name(a->state),
	       (double)cache_bytes(a) / MIB, (double)heap_bytes() / MIB);
	printf("limit %6.1f MiB  released %7.1f MiB  queries %" PRIu64 "\n",
	       (double)a->limit / MIB, (double)a->released / MIB, a->queries);
}

static int dispatch(struct app *a)
{
	int ret = mb_monitor_dispatch(a->mon);

	if (ret < 0) {
		fprintf(stderr, "sqlite-cache: dispatch: %s\n", strerror(-ret));
		return ret;
	}
	follow_target(a);
	return 0;
}

static int push_fake(struct app *a, uint32_t state)
{
	struct mb_notification n;
	int err;

	/* field by field: the example builds as C++ too */
	memset(&n, 0, sizeof(n));
	n.time_ns = now_ns();
	n.state = state;
	n.source = MB_SOURCE_FAKE;
	n.available = state == MB_STATE_LOW ? 128ULL << 20 : 2ULL << 30;
	n.total = 4ULL << 30;
	n.low = 256ULL << 20;
	n.high = 1ULL << 30;
	err = mb_monitor_fake_push(a->mon, &n);

	if (err < 0) {
		fprintf(stderr, "sqlite-cache: fake push: %s\n", strerror(-err));
		return err;
	}
	return dispatch(a);
}

static int run_fake_steps(struct app *a)
{
	unsigned int b;
	char label[16];
	int err;

	for (b = 1; b <= a->cfg.steps && !stop_requested; b++) {
		snprintf(label, sizeof(label), "batch %u", b);
		err = run_batch(a);
		if (err < 0)
			return err;
		if (b == a->cfg.low_at) {
			print_status(a, label);
			err = push_fake(a, MB_STATE_LOW);
			if (err < 0)
				return err;
		}
		if (b == a->cfg.high_at) {
			print_status(a, label);
			err = push_fake(a, MB_STATE_HIGH);
			if (err < 0)
				return err;
		}
		if (b == a->cfg.low_at || b == a->cfg.high_at ||
		    b == a->cfg.steps)
			print_status(a, label);
	}
	return 0;
}

static int run_timed(struct app *a)
{
	uint64_t end = a->start_ns + (uint64_t)a->cfg.seconds * NSEC_PER_SEC;
	uint64_t next_print = a->start_ns + NSEC_PER_SEC, t;
	struct pollfd pfd;
	int err;

	pfd.fd = mb_monitor_get_fd(a->mon);
	pfd.events = POLLIN;
	pfd.revents = 0;

	while (!stop_requested) {
		err = run_batch(a);
		if (err < 0)
			return err;
		/* between batches: deliver what the monitor has, never wait */
		if (pfd.fd >= 0 && poll(&pfd, 1, 0) > 0) {
			err = dispatch(a);
			if (err < 0)
				return err;
		}
		t = now_ns();
		if (t >= next_print) {
			print_status(a, "");
			next_print += NSEC_PER_SEC;
		}
		if (a->cfg.seconds && t >= end)
			break;
	}
	return 0;
}

static void result(const char *key, int64_t value)
{
	printf("result %s=%" PRId64 "\n", key, value);
}

static void print_summary(struct app *a)
{
	bool regrew = a->restores &&
		      a->cache_peak_restored > a->cache_after_release &&
		      (!a->low_limit ||
		       a->heap_peak_restored > (uint64_t)a->low_limit);

	printf("\nsummary: %" PRIu64 " queries (%" PRIu64 " failed), ",
	       a->queries, a->errors);
	printf("%" PRIu64 " LOW and %" PRIu64 " HIGH events, ",
	       a->low_events, a->high_events);
	printf("%" PRIu64 " shrinks released %.1f MiB (%.1f MiB on LOW), ",
	       a->shrinks, (double)a->released / MIB,
	       (double)a->released_on_low / MIB);
	printf("cache %s\n",
	       regrew ? "regrew once the target was lifted" :
	       a->restores ? "did not regrow once the target was lifted" :
	       a->shrinks ? "is still capped (no HIGH since)" :
	       "was never asked to shrink");
	/* machine-readable, for test.sh */
	result("queries", (int64_t)a->queries);
	result("errors", (int64_t)a->errors);
	result("low_events", (int64_t)a->low_events);
	result("high_events", (int64_t)a->high_events);
	result("shrinks", (int64_t)a->shrinks);
	result("restores", (int64_t)a->restores);
	result("released", (int64_t)a->released);
	result("released_on_low", (int64_t)a->released_on_low);
	result("cache_peak_before_low", (int64_t)a->cache_peak_before_low);
	result("cache_before_release", (int64_t)a->cache_before_release);
	result("cache_after_release", (int64_t)a->cache_after_release);
	result("rss_before_release", (int64_t)a->rss_before_release);
	result("rss_after_release", (int64_t)a->rss_after_release);
	result("cache_peak_low", (int64_t)a->cache_peak_low);
	result("queries_low", (int64_t)a->queries_low);
	result("low_limit", a->low_limit);
	result("cache_peak_restored", (int64_t)a->cache_peak_restored);
	result("heap_peak_restored", (int64_t)a->heap_peak_restored);
	result("limit_now", a->limit);
	result("orig_limit", a->orig_limit);
	result("regrew", regrew);
}

static int setup_membroker(struct app *a, int source)
{
	/* MB_OPTS(): the same in C and C++ */
	struct mb_monitor_opts mo = MB_OPTS(mb_monitor_opts,
					    .source = (uint32_t)source,
					    .low_bytes = a->cfg.low_mib << 20,
					    .high_bytes = a->cfg.high_mib << 20);
	struct mb_clerk_opts co = MB_OPTS(mb_clerk_opts, .shrink = shrink_cb,
					  .arg = a, .priority = 20);
	/*
	 * free() keeps SQLite's pages in the heap; malloc_trim() after a
	 * shrink is what gives them back to the system
	 */
	struct mb_broker_opts bo = MB_OPTS(mb_broker_opts, .trim = true);
	struct mb_notification st;
	int err;

	err = mb_monitor_new(&a->mon, &mo);
	if (err < 0) {
		fprintf(stderr, "sqlite-cache: monitor (%s): %s\n",
			mb_source_name((uint32_t)source), strerror(-err));
		return err;
	}
	err = mb_broker_new(&a->broker, "sqlite", a->mon, &bo);
	if (!err)
		err = mb_clerk_new(&a->clerk, "sqlite-pagecache", &co);
	if (!err)
		err = mb_broker_add_clerk(a->broker, a->clerk);
	if (!err)
		err = mb_monitor_subscribe(a->mon, on_notification, a);
	if (err < 0) {
		fprintf(stderr, "sqlite-cache: broker/clerk: %s\n",
			strerror(-err));
		return err;
	}
	if (mb_monitor_get_state(a->mon, &st) >= 0)
		a->state = st.state;
	printf("sqlite-cache: source %s, state %s\n",
	       mb_source_name((uint32_t)mb_monitor_source(a->mon)),
	       mb_state_name(a->state));
	return 0;
}

static void teardown(struct app *a)
{
	sqlite3_finalize(a->point);
	sqlite3_finalize(a->range);
	sqlite3_close(a->db);
	if (a->db && !a->cfg.keep)
		unlink(a->cfg.db_path);
	/* the clerk leaves its broker before either goes */
	mb_clerk_free(a->clerk);
	mb_broker_free(a->broker);
	mb_monitor_free(a->mon);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sqlite-cache [options]\n"
		"  --db PATH            database file (default /tmp/sqlite-cache.PID.db)\n"
		"  --keep               keep the database file at exit\n"
		"  --rows N             rows to insert (default 200000)\n"
		"  --payload BYTES      mean payload size (default 200)\n"
		"  --cache-mib N        SQLite page cache size (default 64)\n"
		"  --batch N            queries per batch (default 500)\n"
		"  --seconds N          run time, 0 = until SIGTERM (default 30)\n"
		"  --monotonic          print CLOCK_MONOTONIC times instead of\n"
		"                       seconds since the start\n"
		"  -s, --source NAME    auto|kmod|cgroup|psi|meminfo|fake (default auto)\n"
		"  --low-mib N, --high-mib N\n"
		"                       thresholds for sources without their own\n"
		"                       (meminfo, psi; default automatic)\n"
		"  --fake-steps N:L:H   N batches on the fake source, LOW after\n"
		"                       batch L, HIGH after batch H\n");
}

static int parse_steps(struct config *cfg, const char *arg)
{
	if (sscanf(arg, "%u:%u:%u", &cfg->steps, &cfg->low_at,
		   &cfg->high_at) != 3 || !cfg->low_at ||
	    cfg->low_at >= cfg->high_at || cfg->high_at >= cfg->steps)
		return -EINVAL;
	return 0;
}

static int parse_args(struct config *cfg, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "db", required_argument, NULL, 'd' },
		{ "keep", no_argument, NULL, 'k' },
		{ "rows", required_argument, NULL, 'r' },
		{ "payload", required_argument, NULL, 'p' },
		{ "cache-mib", required_argument, NULL, 'c' },
		{ "batch", required_argument, NULL, 'b' },
		{ "seconds", required_argument, NULL, 't' },
		{ "monotonic", no_argument, NULL, 'M' },
		{ "source", required_argument, NULL, 's' },
		{ "fake-steps", required_argument, NULL, 'f' },
		{ "low-mib", required_argument, NULL, 'L' },
		{ "high-mib", required_argument, NULL, 'H' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int c;

	while ((c = getopt_long(argc, argv, "s:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			cfg->db_path = optarg;
			break;
		case 'k':
			cfg->keep = true;
			break;
		case 'r':
			cfg->rows = strtoull(optarg, NULL, 0);
			break;
		case 'p':
			cfg->payload = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case 'c':
			cfg->cache_mib = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case 'b':
			cfg->batch = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case 't':
			cfg->seconds = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case 's':
			cfg->source = optarg;
			break;
		case 'M':
			cfg->monotonic = true;
			break;
		case 'L':
			cfg->low_mib = strtoull(optarg, NULL, 0);
			break;
		case 'H':
			cfg->high_mib = strtoull(optarg, NULL, 0);
			break;
		case 'f':
			if (parse_steps(cfg, optarg) < 0) {
				fprintf(stderr,
					"sqlite-cache: --fake-steps wants N:L:H with 0 < L < H < N\n");
				return -EINVAL;
			}
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind != argc || !cfg->rows || !cfg->payload ||
	    !cfg->cache_mib || !cfg->batch) {
		usage(stderr);
		return -EINVAL;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static char default_path[64];
	struct sigaction sa;
	struct stat sb;
	struct app a;
	int source, err;

	memset(&a, 0, sizeof(a));
	a.cfg.rows = 200000;
	a.cfg.payload = 200;
	a.cfg.cache_mib = 64;
	a.cfg.batch = 500;
	a.cfg.seconds = 30;
	a.cfg.source = "auto";
	a.rand_state = 0x2545f4914f6cdd1dULL;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (parse_args(&a.cfg, argc, argv) < 0)
		return 2;
	if (!a.cfg.db_path) {
		snprintf(default_path, sizeof(default_path),
			 "/tmp/sqlite-cache.%d.db", (int)getpid());
		a.cfg.db_path = default_path;
	}
	source = a.cfg.steps ? MB_SOURCE_FAKE : mb_source_parse(a.cfg.source);
	if (source < 0) {
		fprintf(stderr, "sqlite-cache: unknown source %s\n",
			a.cfg.source);
		return 2;
	}
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	a.orig_limit = sqlite3_soft_heap_limit64(-1);
	a.limit = a.orig_limit;
	a.start_ns = now_ns();
	err = setup_membroker(&a, source);
	if (!err)
		err = open_db(&a);
	if (!err) {
		printf("sqlite-cache: %s, %" PRIu64 " rows, %.1f MiB on disk, cache_size %u MiB, filled in %.1f s\n",
		       a.cfg.db_path, a.cfg.rows,
		       stat(a.cfg.db_path, &sb) ? 0.0 : (double)sb.st_size / MIB,
		       a.cfg.cache_mib, elapsed_s(&a));
		a.start_ns = now_ns();
		err = sync_charge(&a);
	}
	if (!err)
		err = a.cfg.steps ? run_fake_steps(&a) : run_timed(&a);
	if (!err) {
		print_status(&a, "end");
		print_summary(&a);
	}
	/* leave SQLite as we found it */
	sqlite3_soft_heap_limit64(a.orig_limit);
	teardown(&a);
	if (err)
		return 1;
	return a.errors ? 1 : 0;
}
