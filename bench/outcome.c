// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * outcome: is an application better off?  An application holds an
 * mb_cache worth --cache-frac of MemTotal (default half); a job that does
 * not wait for room then allocates as much at --job-rate MiB/s, touching
 * every page, and holds it for a second.  The application reacts in one
 * of four ways (--reaction):
 *
 *   none   it does nothing
 *   psi    a PSI trigger (--psi, default systemd's "some 200ms/2s") tells
 *          it to drop its caches, all of them, as a GLib low-memory-warning
 *          or a systemd memory pressure handler would
 *   poll   /proc/meminfo read every 100 ms against the module's low and
 *          high thresholds (and its hysteresis, low/8); LOW is fed to the
 *          same broker as the module's, repeated every second while it
 *          lasts, as the library's monitor repeats it
 *   kmod   libmembroker: a monitor on membroker.ko and a broker
 *
 * The broker of poll and kmod has the library's defaults (a step of 10 %
 * of the pool per LOW, malloc_trim after a shrink).  Per run one MB-JSON
 * line: OOM kills (the kernel's oom_kill counter) and whom they took, the
 * job's completion time, PSI some/full stall (total from
 * /proc/pressure/memory, and the peak share of any 1 s window, sampled
 * every 100 ms), bytes the cache gave back and when, from the first
 * warning.  Runs of the reactions are interleaved (--runs N each).
 *
 * --app sqlite makes the application SQLite instead, its page cache held
 * by the clerk of examples/sqlite-cache and filled from a read-only disk
 * (bench/outcome_sqlite.c; --db names the device, default the first
 * virtio disk holding a database).  --make-db PATH --db-mib N writes that
 * database, on the host.
 *
 * The runner protects itself from the OOM killer (oom_score_adj -1000)
 * and the application inherits that, so that a kill falls on the job
 * (which sets 0): --app-oom-score-adj N gives the application N instead,
 * and the OOM killer then chooses between the two.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include <membroker.h>

#include "outcome.h"
#include "vmbench.h"

#define VALUE_SZ	(64UL << 10)
#define PSI_SAMPLE_MS	100
#define PSI_WINDOW	10	/* samples: 1 s */
#define MAX_SAMPLES	4096
#define RUN_TIMEOUT_MS	120000

static const char *const rname[R_N] = { "none", "psi", "poll", "kmod" };

enum { APP_MBCACHE, APP_SQLITE };
static const char *const appname[] = { "mbcache", "sqlite" };

struct shared *sh;
const char *psi_trigger = "some 200000 2000000";
uint64_t low_b, high_b, total_b;
static const char *app_oom_adj;

void note_bytes_now(uint64_t bytes)
{
	uint64_t old = atomic_exchange(&sh->bytes, bytes), min;

	if (bytes < old)
		atomic_store(&sh->last_release_ns, vb_now_ns());
	min = atomic_load(&sh->min_bytes);
	while (bytes < min &&
	       !atomic_compare_exchange_weak(&sh->min_bytes, &min, bytes))
		;
}

static void note_bytes(struct mb_cache *c)
{
	struct mb_cache_stats st;

	if (mb_cache_stats(c, &st) == 0)
		note_bytes_now(st.bytes);
}

void warned(void)
{
	uint64_t zero = 0;

	atomic_compare_exchange_strong(&sh->first_warn_ns, &zero, vb_now_ns());
	atomic_fetch_add(&sh->warnings, 1);
}

static void on_note(struct mb_monitor *mon, const struct mb_notification *n,
		    void *arg)
{
	(void)mon;
	(void)arg;
	if (n->state == MB_STATE_LOW)
		warned();
}

struct poll_ctx {
	struct mb_broker *b;
	struct mb_cache *c;
};

bool poll_rule_step(struct poll_rule *pr, uint64_t a,
		    struct mb_notification *n)
{
	uint32_t ns;

	if (!a)
		return false;
	if (pr->state == MB_STATE_LOW && a < low_b + low_b / 8)
		ns = MB_STATE_LOW;
	else if (a < low_b)
		ns = MB_STATE_LOW;
	else if (a > high_b)
		ns = MB_STATE_HIGH;
	else
		ns = MB_STATE_STEADY;
	if (ns == pr->state && (ns != MB_STATE_LOW ||
				vb_now_ns() - pr->last_low < NSEC_PER_SEC))
		return false;
	pr->state = ns;
	memset(n, 0, sizeof(*n));
	n->state = ns;
	n->available = a;
	n->total = total_b;
	n->low = low_b;
	n->high = high_b;
	if (ns == MB_STATE_LOW)
		pr->last_low = vb_now_ns();
	return true;
}

/* The 100 ms poller: the module's state rule, fed to the broker. */
static void *poll_main(void *arg)
{
	struct poll_ctx *p = arg;
	struct poll_rule pr = { .state = MB_STATE_STEADY };
	uint64_t next = vb_now_ns();
	int fd = open("/proc/meminfo", O_RDONLY | O_CLOEXEC);
	struct mb_notification n;

	while (fd >= 0) {
		next += 100 * NSEC_PER_MSEC;
		vb_sleep_until(next);
		if (!poll_rule_step(&pr, vb_avail(fd), &n))
			continue;
		if (n.state == MB_STATE_LOW)
			warned();
		mb_broker_notify(p->b, &n);
		note_bytes(p->c);
	}
	return NULL;
}

static void __attribute__((noreturn)) app_main(int reaction, uint64_t bytes)
{
	struct mb_cache_opts copts = { .sz = sizeof(copts), .priority = 50 };
	struct mb_monitor *mon = NULL;
	struct mb_broker *b = NULL;
	struct mb_cache *c;
	struct poll_ctx pc;
	pthread_t th;
	char key[32];
	char *val;
	uint64_t i, n = bytes / VALUE_SZ;
	struct pollfd pfd = { .fd = -1, .events = POLLPRI };

	val = malloc(VALUE_SZ);
	if (!val || mb_cache_new(&c, "outcome-cache", &copts) < 0)
		_exit(10);
	memset(val, 0x33, VALUE_SZ);
	/* filled before it joins a broker, which would cap its growth */
	for (i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "k%llu", (unsigned long long)i);
		val[0] = (char)i;
		if (mb_cache_put(c, key, strlen(key), val, VALUE_SZ) < 0)
			_exit(11);
	}
	note_bytes(c);
	atomic_store(&sh->initial, atomic_load(&sh->bytes));

	if (reaction == R_KMOD || reaction == R_POLL) {
		struct mb_broker_opts bo = { .sz = sizeof(bo), .trim = true };

		if (reaction == R_KMOD) {
			struct mb_monitor_opts mo = {
				.sz = sizeof(mo), .source = MB_SOURCE_KMOD,
			};

			if (mb_monitor_new(&mon, &mo) < 0)
				_exit(12);
		}
		if (mb_broker_new(&b, "outcome", mon, &bo) < 0 ||
		    mb_broker_add_clerk(b, mb_cache_clerk(c)) < 0)
			_exit(13);
		if (mon && (mb_monitor_subscribe(mon, on_note, NULL) < 0 ||
			    mb_monitor_start_thread(mon) < 0))
			_exit(14);
		if (reaction == R_POLL) {
			pc = (struct poll_ctx){ .b = b, .c = c };
			if (pthread_create(&th, NULL, poll_main, &pc))
				_exit(15);
		}
	} else if (reaction == R_PSI) {
		pfd.fd = open("/proc/pressure/memory",
			      O_RDWR | O_NONBLOCK | O_CLOEXEC);
		if (pfd.fd < 0 || write(pfd.fd, psi_trigger,
					strlen(psi_trigger) + 1) < 0)
			_exit(16);
	}
	atomic_store(&sh->ready, 1);
	for (;;) {
		if (pfd.fd >= 0) {
			if (poll(&pfd, 1, 10) > 0 && (pfd.revents & POLLPRI)) {
				warned();
				/* drop every cache, as on a GLib warning */
				for (i = 0; i < n; i++) {
					snprintf(key, sizeof(key), "k%llu",
						 (unsigned long long)i);
					mb_cache_del(c, key, strlen(key));
				}
				malloc_trim(0);
			}
		} else {
			vb_sleep_ms(10);
		}
		note_bytes(c);
	}
}

/* The job: @bytes at @rate MiB/s (0: flat out), then hold 1 s. */
static void __attribute__((noreturn)) job_main(uint64_t bytes, unsigned int rate,
					       int out)
{
	uint64_t t0 = vb_now_ns(), done = 0, t;
	char *p;

	vb_write_str("/proc/self/oom_score_adj", "0");
	while (done < bytes) {
		p = mmap(NULL, MIB, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			_exit(20);
		memset(p, 0x77, MIB);
		done += MIB;
		if (rate)
			vb_sleep_until(t0 + done * NSEC_PER_SEC / (rate * MIB));
	}
	t = vb_now_ns() - t0;
	if (write(out, &t, sizeof(t)) != sizeof(t))
		_exit(21);
	vb_sleep_ms(1000);
	_exit(0);
}

static uint64_t vmstat(const char *key)
{
	char buf[8192], *p;
	ssize_t n;
	int fd = open("/proc/vmstat", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strstr(buf, key);
	return p ? strtoull(p + strlen(key) + 1, NULL, 10) : 0;
}

/* MiB the cache gave back, from @now; a cache that grew gave nothing */
static double given(uint64_t now)
{
	uint64_t initial = atomic_load(&sh->initial);

	return now < initial ? (double)(initial - now) / MIB : 0.0;
}

static bool dead(pid_t pid, int *status)
{
	return waitpid(pid, status, WNOHANG) == pid;
}

static void one_run(int app_kind, const char *db, int reaction, int run,
		    double frac, unsigned int rate)
{
	uint64_t cache_b = (uint64_t)((double)total_b * frac), t0, deadline;
	uint64_t job_ns = 0, oom0, oom1, some[MAX_SAMPLES], full[MAX_SAMPLES];
	uint64_t peak_some = 0, peak_full = 0, first_warn, last_rel, min_b;
	char extra[128];
	int ns = 0, st_app = 0, st_job = 0, pfd[2], i;
	bool app_dead = false, job_dead = false;
	struct vb_psi p0, p1, ps;
	pid_t app, job;
	char *killed;
	ssize_t r;

	memset(sh, 0, sizeof(*sh));
	sh->min_bytes = UINT64_MAX;
	app = fork();
	/* the runner's -1000 is inherited unless asked otherwise */
	if (!app && app_oom_adj)
		vb_write_str("/proc/self/oom_score_adj", app_oom_adj);
	if (!app && app_kind == APP_SQLITE)
		sqlite_app_main(reaction, cache_b, db);
	if (!app)
		app_main(reaction, cache_b);
	deadline = vb_now_ns() + RUN_TIMEOUT_MS * NSEC_PER_MSEC;
	while (!atomic_load(&sh->ready) && !dead(app, &st_app) &&
	       vb_now_ns() < deadline)
		vb_sleep_ms(20);
	if (!atomic_load(&sh->ready)) {
		vb_json("outcome", "\"app\": \"%s\", \"reaction\": \"%s\", "
			"\"run\": %d, "
			"\"error\": \"the application did not start (%d)\"",
			appname[app_kind], rname[reaction], run,
			WEXITSTATUS(st_app));
		kill(app, SIGKILL);
		waitpid(app, NULL, 0);
		return;
	}
	/*
	 * SQLite's fill went through the disk's page cache: drop it, so that
	 * the application's cache is the only one, as with mb_cache
	 */
	if (app_kind == APP_SQLITE)
		vb_write_str("/proc/sys/vm/drop_caches", "1");
	vb_sleep_ms(500);
	oom0 = vmstat("oom_kill");
	vb_psi_read(&p0);
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return;
	t0 = vb_now_ns();
	atomic_store(&sh->job_started, 1);
	job = fork();
	if (!job) {
		close(pfd[0]);
		job_main(cache_b, rate, pfd[1]);
	}
	close(pfd[1]);
	fcntl(pfd[0], F_SETFL, O_NONBLOCK);
	while (!job_dead && vb_now_ns() < deadline) {
		vb_sleep_ms(PSI_SAMPLE_MS);
		if (vb_psi_read(&ps) && ns < MAX_SAMPLES) {
			some[ns] = ps.some_us;
			full[ns] = ps.full_us;
			if (ns >= PSI_WINDOW) {
				if (some[ns] - some[ns - PSI_WINDOW] > peak_some)
					peak_some = some[ns] - some[ns - PSI_WINDOW];
				if (full[ns] - full[ns - PSI_WINDOW] > peak_full)
					peak_full = full[ns] - full[ns - PSI_WINDOW];
			}
			ns++;
		}
		if (!job_ns) {
			r = read(pfd[0], &job_ns, sizeof(job_ns));
			if (r != sizeof(job_ns))
				job_ns = 0;
		}
		job_dead = dead(job, &st_job);
		if (!app_dead)
			app_dead = dead(app, &st_app);
	}
	if (!job_dead) {
		kill(job, SIGKILL);
		waitpid(job, &st_job, 0);
	}
	vb_psi_read(&p1);
	/* a kill the OOM killer is still finishing shows a moment later */
	vb_sleep_ms(300);
	if (!app_dead)
		app_dead = dead(app, &st_app);
	oom1 = vmstat("oom_kill");
	first_warn = atomic_load(&sh->first_warn_ns);
	last_rel = atomic_load(&sh->last_release_ns);
	if (app_dead && job_ns == 0)
		killed = "app+job";
	else if (app_dead)
		killed = "app";
	else if (!job_ns)
		killed = "job";
	else
		killed = "none";
	if (oom1 == oom0 && !app_dead && job_ns)
		killed = "none";
	min_b = atomic_load(&sh->min_bytes);
	if (min_b > atomic_load(&sh->initial))
		min_b = atomic_load(&sh->initial);
	snprintf(extra, sizeof(extra), app_kind != APP_SQLITE ? "" :
		 ", \"queries\": %llu, \"query_errors\": %llu",
		 (unsigned long long)atomic_load(&sh->queries),
		 (unsigned long long)atomic_load(&sh->query_errors));
	vb_json("outcome",
		"\"app\": \"%s\", "
		"\"reaction\": \"%s\", \"run\": %d, \"cache_mib\": %.1f, "
		"\"job_mib\": %.1f, \"job_rate_mibs\": %u, "
		"\"oom_kills\": %llu, \"killed\": \"%s\", "
		"\"job_done\": %s, \"job_ms\": %.1f, "
		"\"psi_some_ms\": %.1f, \"psi_full_ms\": %.1f, "
		"\"psi_some_peak_pct\": %.1f, \"psi_full_peak_pct\": %.1f, "
		"\"warnings\": %llu, \"warn_ms\": %.1f, "
		"\"released_mib\": %.1f, \"released_max_mib\": %.1f, "
		"\"released_after_warn_ms\": %.1f, "
		"\"psi_samples\": %d%s",
		appname[app_kind], rname[reaction], run, (double)atomic_load(&sh->initial) / MIB,
		(double)cache_b / MIB, rate,
		(unsigned long long)(oom1 - oom0), killed,
		job_ns ? "true" : "false", (double)job_ns / 1e6,
		(double)(p1.some_us - p0.some_us) / 1e3,
		(double)(p1.full_us - p0.full_us) / 1e3,
		(double)peak_some / 1e4, (double)peak_full / 1e4,
		(unsigned long long)atomic_load(&sh->warnings),
		first_warn ? (double)(first_warn - t0) / 1e6 : -1.0,
		given(atomic_load(&sh->bytes)), given(min_b),
		first_warn && last_rel > first_warn ?
		(double)(last_rel - first_warn) / 1e6 : -1.0, ns, extra);
	if (!app_dead) {
		kill(app, SIGKILL);
		waitpid(app, NULL, 0);
	}
	close(pfd[0]);
	for (i = 0; i < 100 && vb_kmod_low(); i++)
		vb_sleep_ms(50);
	vb_sleep_ms(500);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "runs", required_argument, NULL, 'n' },
		{ "reactions", required_argument, NULL, 'r' },
		{ "cache-frac", required_argument, NULL, 'f' },
		{ "job-rate", required_argument, NULL, 'j' },
		{ "psi", required_argument, NULL, 'p' },
		{ "app", required_argument, NULL, 'a' },
		{ "db", required_argument, NULL, 'd' },
		{ "make-db", required_argument, NULL, 'm' },
		{ "db-mib", required_argument, NULL, 's' },
		{ "app-oom-score-adj", required_argument, NULL, 'o' },
		{ 0 }
	};
	const char *db = "auto", *make_db = NULL;
	unsigned int db_mib = 0;
	int app_kind = APP_MBCACHE;
	int runs = 10, c, run, i, mfd;
	double frac = 0.5;
	unsigned int rate = 32;
	char reactions[64] = "none,psi,poll,kmod", *s, *tok;
	int list[R_N], nlist = 0;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			runs = atoi(optarg);
			break;
		case 'r':
			snprintf(reactions, sizeof(reactions), "%s", optarg);
			break;
		case 'f':
			frac = atof(optarg);
			break;
		case 'j':
			rate = (unsigned int)atoi(optarg);
			break;
		case 'p':
			psi_trigger = optarg;
			break;
		case 'a':
			if (!strcmp(optarg, "sqlite"))
				app_kind = APP_SQLITE;
			else if (strcmp(optarg, "mbcache"))
				goto usage;
			break;
		case 'd':
			db = optarg;
			break;
		case 'm':
			make_db = optarg;
			break;
		case 's':
			db_mib = (unsigned int)atoi(optarg);
			break;
		case 'o':
			app_oom_adj = optarg;
			break;
		default:
			goto usage;
		}
	}
	/* on the host: the SQLite application's database, for a disk */
	if (make_db)
		return db_mib && !sqlite_make_db(make_db, db_mib) ? 0 : 1;
	for (s = reactions; (tok = strsep(&s, ",")) && nlist < R_N;)
		for (i = 0; i < R_N; i++)
			if (!strcmp(tok, rname[i]))
				list[nlist++] = i;
	setvbuf(stdout, NULL, _IOLBF, 0);
	vb_write_str("/proc/self/oom_score_adj", "-1000");
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	mfd = open("/proc/meminfo", O_RDONLY | O_CLOEXEC);
	if (sh == MAP_FAILED || mfd < 0 || !nlist || runs < 1)
		return 1;
	total_b = vb_meminfo_field(mfd, "MemTotal:");
	low_b = vb_read_u64("/sys/kernel/membroker/low_bytes", total_b / 16);
	high_b = vb_read_u64("/sys/kernel/membroker/high_bytes", 2 * low_b);
	vb_json("outcome-setup",
		"\"total_mib\": %.1f, \"low_mib\": %.2f, \"high_mib\": %.2f, "
		"\"cache_frac\": %.2f, \"job_rate_mibs\": %u, \"psi\": \"%s\", "
		"\"cpus\": %ld, \"app\": \"%s\", \"app_oom_score_adj\": %d",
		(double)total_b / MIB, (double)low_b / MIB, (double)high_b / MIB,
		frac, rate, psi_trigger, sysconf(_SC_NPROCESSORS_ONLN),
		appname[app_kind], app_oom_adj ? atoi(app_oom_adj) : -1000);
	for (run = 0; run < runs; run++)
		for (i = 0; i < nlist; i++)
			one_run(app_kind, db, list[i], run, frac, rate);
	return 0;
usage:
	fprintf(stderr, "usage: outcome [--runs N] [--reactions none,psi,poll,kmod] [--cache-frac F] [--job-rate MIBS] [--psi TRIGGER] [--app mbcache|sqlite] [--db DEVICE|auto] [--app-oom-score-adj N]\n"
		"       outcome --make-db PATH --db-mib N\n");
	return 2;
}
